//! cgroup management (placeholder API while the real crate is being built on its branch).
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {0}")]
    Other(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cgroup {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {}
impl Stats {
    pub fn oom_kills(&self) -> u64 {
        todo!()
    }
}

impl Cgroup {
    pub fn resolve(_p: Option<&Path>, _id: &str) -> Result<Self, CgroupError> {
        todo!()
    }
    pub fn create(&mut self) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn apply(&self, _r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn add_pid(&self, _pid: i32) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        todo!()
    }
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        todo!()
    }
    pub fn freeze(&self) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn thaw(&self) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        todo!()
    }
    pub fn kill_all(&self, _signal: i32) -> Result<(), CgroupError> {
        todo!()
    }
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        todo!()
    }
    pub fn remove(&self) -> Result<(), CgroupError> {
        todo!()
    }
}
