//! Zones for Linux: the container engine (`runtime`, the `zones-engine` crate), zones on it
//! (`zone`: supervisor, zoneadm verbs, zlogin), diagnostics (`log`) and the command-line faces
//! (`cli`).

pub mod cli;
pub mod zone;

/// The engine, a crate of its own (engine/), under the name every caller already uses.
pub use zones_engine as runtime;
/// Diagnostics and fault points live in the engine (it calls them); the faces configure them.
pub use zones_engine::{fault, log};
