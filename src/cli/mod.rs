//! Command-line faces. Each is thin: it parses argv, calls the engine, and turns errors into
//! the text a user reads. Nothing below `runtime/` knows about clap.

pub mod dladm;
pub mod imgadm;
pub mod runz;
pub mod zlogin;
pub mod zoneadm;
pub mod zonecfg;
pub mod zonestat;
