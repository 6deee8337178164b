//! Fault injection for the fault suite (`tests/faults.rs`): named points in zoneadm, zoneadmd
//! and runz where the process SIGKILLs itself when asked to.
//!
//! Compiled in always and inert unless `ZONES_FAULT` is set in the environment. Its value is
//! one point name, `VERB:STEP` (e.g. `boot:after-cgroup`); when the process reaches that point
//! it kills itself with SIGKILL, exactly as `kill -9` from outside would, but at a known step.
//! The points (see `docs/ARCHITECTURE.md`, "Fault points"):
//!
//! - `install:after-incomplete`, `install:after-populate` (zoneadm install)
//! - `boot:after-lock`, `boot:after-storage`, `boot:after-network`, `boot:after-create`,
//!   `boot:after-ready`, `boot:after-running` (zoneadmd, starting a zone)
//! - `halt:after-kill`, `halt:after-destroy`, `halt:after-storage` (zoneadmd, halting)
//! - `uninstall:after-incomplete`, `uninstall:after-destroy` (zoneadm uninstall)
//! - `create:after-cgroup`, `create:after-fork`, `create:after-state` (runz create, and the
//!   container create inside zoneadmd)
//! - `restore:after-bind` (runz restore, the rootfs bound for CRIU)
//!
//! The variable is read at each point (a handful per command), so a supervisor that outlives
//! the command that started it only dies at a point its own environment names.

/// The environment variable that names the point to die at.
pub const ENV: &str = "ZONES_FAULT";

/// Die here (SIGKILL, no cleanup) when `ZONES_FAULT` names `point`.
pub fn point(point: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == point) {
        // SAFETY: kill(2) on our own pid; SIGKILL cannot be caught, so this does not return.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
