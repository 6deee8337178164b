//! OCI seccomp profile → BPF programs (seccompiler), and installing them.

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::BpfProgram;

/// Why a seccomp profile could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Invalid(String),
}

/// Compile an OCI profile into the filters to install, in install order.
pub fn compile(_profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, SeccompError> {
    todo!("seccomp::compile")
}

/// Install compiled filters on the calling thread (no_new_privs or CAP_SYS_ADMIN needed).
pub fn install(_filters: &[BpfProgram]) -> Result<(), SeccompError> {
    todo!("seccomp::install")
}
pub fn supported_actions() -> Vec<&'static str> {
    todo!()
}
pub fn supported_operators() -> Vec<&'static str> {
    todo!()
}
pub fn supported_archs() -> Vec<&'static str> {
    todo!()
}
