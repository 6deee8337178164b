//! Placing a freshly forked process into its cgroup without the kernel's global lock.
//!
//! Writing a pid to `cgroup.procs` write-locks the kernel's `cgroup_threadgroup_rwsem`, which
//! costs an RCU grace period (5–25 ms on a busy 2-CPU host): the largest single cost of
//! `runz create` on a v1 or hybrid host. Two ways around it:
//! - the unified (v2) hierarchy, on pure v2 and hybrid hosts, is entered at fork time with
//!   `clone3(CLONE_INTO_CGROUP)` and the fd of [`Cgroup::clone_into_fd`];
//! - in each v1 hierarchy the child moves itself by writing `0` to `tasks`: the kernel moves
//!   just the calling thread, for which it skips the global lock (Linux ≥ 5.17). The child is
//!   single-threaded, so that is the whole process.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::{fsutil, Cgroup, CgroupError};

impl Cgroup {
    /// An `O_DIRECTORY` fd of this cgroup's unified (v2) directory, on pure v2 and on hybrid
    /// hosts, for `clone3(CLONE_INTO_CGROUP)`. The v1 hierarchies of a hybrid host are then
    /// joined by the child with [`Cgroup::join_self`].
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        let h = self.v2_hierarchy()?;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&h.dir)
            .ok()
            .map(OwnedFd::from)
    }

    /// Move the calling (single-threaded) process into this cgroup in every hierarchy:
    /// `0` to `tasks` in each v1 hierarchy, and `0` to `cgroup.procs` in the unified one
    /// unless `in_v2` says clone3 already put it there.
    pub fn join_self(&self, in_v2: bool) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.v2 {
                if !in_v2 {
                    fsutil::write_in(&h.dir, "cgroup.procs", "0")?;
                }
            } else {
                fsutil::write_in(&h.dir, "tasks", "0")?;
            }
        }
        Ok(())
    }
}
