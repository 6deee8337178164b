//! rootfs (placeholder while the real module is built on its branch)
use oci_spec::runtime::Spec;
use std::path::Path;
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {0}")]
    Other(String),
}
pub struct RootfsOptions {
    pub terminal: bool,
    pub in_user_ns: bool,
    pub new_cgroup_ns: bool,
    pub has_mount_ns: bool,
}
pub fn prepare(_s: &Spec, _r: &Path, _o: &RootfsOptions) -> Result<(), RootfsError> {
    todo!()
}
pub fn enter(_r: &Path, _n: bool) -> Result<(), RootfsError> {
    todo!()
}
pub fn finish(_s: &Spec) -> Result<(), RootfsError> {
    todo!()
}
