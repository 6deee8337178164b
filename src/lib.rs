//! Zones for Linux: the container engine (`runtime`), zones on it (`zone`: supervisor, zoneadm
//! verbs, zlogin), diagnostics (`log`) and the command-line faces (`cli`).

pub mod cli;
pub mod fault;
pub mod log;
pub mod runtime;
pub mod zone;
