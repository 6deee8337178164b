//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while resolving, creating, configuring or
/// tearing down a cgroup. Every variant names the offending path or value.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// An I/O operation on a cgroup file or directory failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing a value into a cgroup file failed.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    /// A cgroup file held something we could not parse.
    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    /// A line of /proc/self/cgroup or /proc/self/mountinfo is malformed.
    #[error("malformed {source_name} line: {line:?}")]
    ProcLine {
        source_name: &'static str,
        line: String,
    },
    /// The cgroups path given in the spec is unusable.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// No cgroup filesystem is mounted at all.
    #[error("no cgroup hierarchy is mounted (nothing usable in /proc/self/cgroup and /proc/self/mountinfo)")]
    NoHierarchy,
    /// The spec asks for a resource whose controller is not available here.
    #[error(
        "{resource} requested but the {controller} cgroup controller is not available for {path}"
    )]
    MissingController {
        resource: &'static str,
        controller: String,
        path: PathBuf,
    },
    /// A resource value is out of range or inconsistent.
    #[error("invalid {resource} value {value}: {reason}")]
    InvalidValue {
        resource: &'static str,
        value: String,
        reason: String,
    },
    /// The kernel does not offer what a resource needs (a scheduler, a controller, a device).
    #[error("{resource} cannot be applied on this host: the kernel has no {missing}; {remedy}")]
    NotInKernel {
        resource: String,
        missing: String,
        remedy: String,
    },
    /// The request cannot be expressed on this cgroup version.
    #[error("{0}")]
    Unsupported(String),
    /// libcgroups failed to apply cgroup v2 resources.
    #[error("cannot apply cgroup v2 resources to {path}: {source}")]
    V2Apply {
        path: PathBuf,
        #[source]
        source: libcgroups::v2::manager::V2ManagerError,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("cgroup {path} did not become {wanted} (last state {state:?})")]
    FreezeTimeout {
        path: PathBuf,
        wanted: &'static str,
        state: String,
    },
    /// Sending a signal to a cgroup member failed.
    #[error("cannot send signal {signal} to pid {pid}: {source}")]
    Signal {
        pid: i32,
        signal: i32,
        #[source]
        source: nix::Error,
    },
    /// The systemd driver refused or failed.
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    /// rmdir kept failing (the cgroup still has members) until the deadline.
    #[error("cannot remove cgroup {path}: {source} (gave up after retrying)")]
    Busy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the systemd driver (`runz --systemd-cgroup`) refuses or fails at, in runc's words
/// where runc has them.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    /// The cgroupsPath is not `slice:prefix:name`.
    #[error("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {0:?} instead")]
    PathFormat(String),
    /// A slice name systemd would not accept (runc's `ExpandSlice`).
    #[error("invalid slice name: {0}")]
    InvalidSlice(String),
    /// `/run/systemd/system` is missing: PID 1 is not systemd.
    #[error("systemd not running on this host, cannot use systemd cgroups manager")]
    NotRunning,
    /// The host or the request is something the driver does not do (with the reason).
    #[error("systemd cgroup driver: {0}")]
    Unsupported(String),
    /// A D-Bus call to systemd failed.
    #[error("systemd: {op} {unit}: {source}")]
    Dbus {
        op: &'static str,
        unit: String,
        #[source]
        source: Box<libcgroups::systemd::manager::SystemdManagerError>,
    },
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
