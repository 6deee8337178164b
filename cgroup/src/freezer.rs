//! Freezing, thawing and killing every member of a cgroup.
//!
//! The v2 freezer (`cgroup.freeze`) is used wherever this cgroup has a v2
//! directory (pure v2, or the unified hierarchy of a hybrid host); otherwise
//! the v1 freezer controller.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{fsutil, Cgroup, CgroupError};

/// Upper bound for a freeze to take effect.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(1);

enum Target {
    V2(PathBuf),
    V1(PathBuf),
}

impl Cgroup {
    fn freezer_target(&self) -> Result<Target, CgroupError> {
        if let Some(h) = self.v2_hierarchy() {
            return Ok(Target::V2(h.dir.clone()));
        }
        if let Some(h) = self.v1_with("freezer") {
            return Ok(Target::V1(h.dir.clone()));
        }
        Err(CgroupError::MissingController {
            resource: "freeze",
            controller: "freezer".into(),
            path: self.primary().map(|h| h.path.clone()).unwrap_or_default(),
        })
    }

    /// Freezes every process of the cgroup and waits (bounded) until the kernel
    /// reports it frozen. On timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        match self.freezer_target()? {
            Target::V2(dir) => freeze_v2(&dir),
            Target::V1(dir) => freeze_v1(&dir),
        }
    }

    /// Thaws the cgroup.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer_target()? {
            Target::V2(dir) => {
                fsutil::write_in(&dir, "cgroup.freeze", "0")?;
                wait_v2_frozen(&dir, false)
            }
            Target::V1(dir) => fsutil::write_in(&dir, "freezer.state", "THAWED"),
        }
    }

    /// Whether the cgroup is frozen (v2: `cgroup.freeze` is 1; v1: `freezer.state` is FROZEN).
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self.freezer_target()? {
            Target::V2(dir) => Ok(fsutil::read(&dir.join("cgroup.freeze"))?.trim() == "1"),
            Target::V1(dir) => Ok(fsutil::read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
        }
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL goes through
    /// `cgroup.kill` where a v2 directory has one; otherwise the cgroup is frozen
    /// (when possible) so no member can fork away, each pid is signalled, and the
    /// cgroup is thawed so the signals are delivered. Vanished pids are ignored.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        let sig = Signal::try_from(signal).map_err(|_| CgroupError::InvalidValue {
            resource: "signal",
            value: signal.to_string(),
            reason: "not a signal number".into(),
        })?;
        if sig == Signal::SIGKILL {
            if let Some(h) = self.v2_hierarchy() {
                let file = h.dir.join("cgroup.kill");
                if file.exists() {
                    return fsutil::write(&file, "1");
                }
            }
        }
        let frozen = self.freeze().is_ok();
        let result = self.signal_members(sig);
        if frozen {
            self.thaw()?;
        }
        result
    }

    fn signal_members(&self, sig: Signal) -> Result<(), CgroupError> {
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(CgroupError::Signal {
                        pid,
                        signal: sig as i32,
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

fn freeze_v2(dir: &Path) -> Result<(), CgroupError> {
    fsutil::write_in(dir, "cgroup.freeze", "1")?;
    if let Err(e) = wait_v2_frozen(dir, true) {
        let _ = fsutil::write_in(dir, "cgroup.freeze", "0");
        return Err(e);
    }
    Ok(())
}

/// Waits until `cgroup.events` says `frozen <want>`; kernels without the key are trusted.
fn wait_v2_frozen(dir: &Path, want: bool) -> Result<(), CgroupError> {
    let events = dir.join("cgroup.events");
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        let map = fsutil::read_flat_keyed(&events)?;
        let Some(&frozen) = map.get("frozen") else {
            return Ok(());
        };
        if (frozen == 1) == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                wanted: if want { "frozen" } else { "thawed" },
                state: format!("frozen {frozen}"),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// runc's v1 loop: keep writing FROZEN until the state reads FROZEN; a
/// FREEZING that lingers gets an occasional thaw-and-retry; give up (thawed) at the deadline.
fn freeze_v1(dir: &Path) -> Result<(), CgroupError> {
    let state_file = dir.join("freezer.state");
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut state = String::new();
    for i in 0u32.. {
        if i % 50 == 49 {
            let _ = fsutil::write(&state_file, "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        fsutil::write(&state_file, "FROZEN")?;
        state = fsutil::read(&state_file)?.trim().to_string();
        match state.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => {}
            _ => {
                return Err(CgroupError::Parse {
                    path: state_file,
                    content: state,
                })
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    let _ = fsutil::write(&state_file, "THAWED");
    Err(CgroupError::FreezeTimeout {
        path: dir.to_path_buf(),
        wanted: "FROZEN",
        state,
    })
}
