//! process.rlimits, set by the runtime (outside any user namespace) with prlimit.

use nix::unistd::Pid;
use oci_spec::runtime::PosixRlimit;

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("rlimit: {0}")]
    Invalid(String),
}

/// Check names and duplicates without touching any process.
pub fn validate(_limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    todo!("rlimits::validate")
}

/// Set every limit on `pid` with prlimit(2).
pub fn apply(_pid: Pid, _limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    todo!("rlimits::apply")
}
