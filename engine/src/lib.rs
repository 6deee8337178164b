//! The container engine: everything between an OCI bundle and a running init.
//!
//! A library crate of its own (as youki's libcontainer is): runz and the zone supervisor run
//! containers through it, and every face of the project (the CLIs, vmadm, zonesd) reaches it
//! through the one `zones-linux` library. It knows nothing about zones: it depends on no zone
//! model, no CLI parser and not on `zones-linux`, and the compiler now holds it to that.
//! `zones_linux::runtime` re-exports it under its old name.
//!
//! One module per mechanism (crun style), so you always know where a syscall lives:
//! - `spec`: load and validate config.json
//! - `state`: state.json, the state directory, status, the exec fifo
//! - `container`: the operations (create, start, kill, delete, state, list) used by every CLI
//! - `checkpoint`: checkpoint and restore through CRIU's command line
//! - `process`: the fork sequence (clone3, the second fork for PID/time namespaces, the channel)
//! - `init`: what the container's init does between clone and execve
//! - `namespaces`: namespace flags, joining by path, id maps
//! - `mounts`: the mount option table and one mount; `rootfs`: prepare, pivot_root, finish;
//!   `devices`: /dev
//! - `agent`: handing a seccomp notify listener to the profile's agent (listenerPath)
//! - `capabilities`, `rlimits`, `user`, `seccomp`, `hooks`, `console`, `sched` (scheduler,
//!   I/O priority, personality, CPU affinity): one mechanism each
//! - `exeseal`: re-execute from a read-only clone of the binary before entering a container
//! - `sysctl`: which linux.sysctl keys a container may set, and setting them
//! - `errno`: errno texts in runc's (Go's) words, for messages tools match
//! - `sys`: small safe wrappers around raw syscalls the crates do not cover
//! - `trace`: phase timestamps for profiling (`RUNZ_TRACE_TIMES=1`)
//! - `log`: where diagnostics go and in which shape (the CLIs configure it)
//! - `fault`: named fault-injection points for the fault suite (`ZONES_FAULT`)

pub mod agent;
pub mod capabilities;
pub mod checkpoint;
pub mod console;
pub mod container;
pub mod devices;
pub mod errno;
pub mod exeseal;
pub mod fault;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod log;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod rdt;
pub mod rlimits;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sys;
pub mod sysctl;
pub mod trace;
pub mod user;
