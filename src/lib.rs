//! Zones for Linux: the container engine (`runtime`, the `zones-engine` crate), the zone
//! operations on it (`zone`, the `zones-ops` crate: supervisor, zoneadm verbs, zlogin),
//! diagnostics (`log`) and the command-line faces (`cli`).

pub mod cli;

/// The zone operations, a crate of their own (zoneops/), under the name every face already uses.
pub use zones_ops as zone;

/// The engine, a crate of its own (engine/), under the name every caller already uses.
pub use zones_engine as runtime;
/// Diagnostics and fault points live in the engine (it calls them); the faces configure them.
pub use zones_engine::{fault, log};
