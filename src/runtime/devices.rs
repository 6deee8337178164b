//! devices (placeholder while the real module is built on its branch)
use oci_spec::runtime::LinuxDeviceCgroup;
pub fn default_cgroup_rules() -> Vec<LinuxDeviceCgroup> {
    todo!()
}
