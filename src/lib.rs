//! Zones for Linux: the container engine (`runtime`), its diagnostics (`log`) and the
//! command-line faces (`cli`).

pub mod cli;
pub mod log;
pub mod runtime;
