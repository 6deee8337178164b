//! process.rlimits, set by the runtime (outside any user namespace) with prlimit.
//!
//! Names: oci-spec 0.10 deserializes `type` into its `PosixRlimitType` enum (RLIMIT_CPU ..
//! RLIMIT_RTTIME, exact upper-case names); an unknown name fails config.json deserialization
//! in the spec loader ("unknown variant"), so `validate` only sees known names. It checks what
//! the kernel would otherwise report late: duplicates and soft > hard.

use nix::unistd::Pid;
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

#[derive(Debug, thiserror::Error)]
pub enum RlimitError {
    #[error("rlimit: {0}")]
    Invalid(String),
    #[error("rlimit {0} given twice")]
    Duplicate(String),
    #[error("rlimit {name}: soft limit {soft} is above the hard limit {hard}")]
    SoftAboveHard {
        name: String,
        soft: String,
        hard: String,
    },
    #[error("rlimit {name}: cannot set soft={soft} hard={hard} on pid {pid}: permission denied (raising a hard limit above its current value {current_hard} needs CAP_SYS_RESOURCE, which the runtime lacks)")]
    NotPermitted {
        name: String,
        soft: String,
        hard: String,
        current_hard: String,
        pid: i32,
    },
    #[error("rlimit {name}: cannot set soft={soft} hard={hard} on pid {pid}: {source}")]
    Apply {
        name: String,
        soft: String,
        hard: String,
        pid: i32,
        source: std::io::Error,
    },
}

/// Check names and duplicates without touching any process.
pub fn validate(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    let mut seen: Vec<PosixRlimitType> = Vec::with_capacity(limits.len());
    for l in limits {
        if seen.contains(&l.typ()) {
            return Err(RlimitError::Duplicate(l.typ().to_string()));
        }
        seen.push(l.typ());
        if l.soft() > l.hard() {
            return Err(RlimitError::SoftAboveHard {
                name: l.typ().to_string(),
                soft: show(l.soft()),
                hard: show(l.hard()),
            });
        }
    }
    Ok(())
}

/// Set every limit on `pid` with prlimit(2).
pub fn apply(pid: Pid, limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    validate(limits)?;
    for l in limits {
        apply_one(pid, l)?;
    }
    Ok(())
}

fn apply_one(pid: Pid, l: &PosixRlimit) -> Result<(), RlimitError> {
    let new = libc::rlimit {
        rlim_cur: l.soft(),
        rlim_max: l.hard(),
    };
    // SAFETY: `new` is a valid rlimit for the duration of the call; old_limit is null (not
    // wanted). prlimit only touches the target process's limits.
    let r = unsafe {
        libc::prlimit(
            pid.as_raw(),
            resource(l.typ()) as _,
            &new,
            std::ptr::null_mut(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let source = std::io::Error::last_os_error();
    let (name, soft, hard) = (l.typ().to_string(), show(l.soft()), show(l.hard()));
    if source.raw_os_error() == Some(libc::EPERM) {
        let current_hard =
            current(pid, l.typ()).map_or_else(|| "unknown".into(), |c| show(c.rlim_max));
        return Err(RlimitError::NotPermitted {
            name,
            soft,
            hard,
            current_hard,
            pid: pid.as_raw(),
        });
    }
    Err(RlimitError::Apply {
        name,
        soft,
        hard,
        pid: pid.as_raw(),
        source,
    })
}

/// The current limit of `pid`, for error messages.
fn current(pid: Pid, typ: PosixRlimitType) -> Option<libc::rlimit> {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: new_limit is null (read only); `old` is valid for writes.
    let r = unsafe { libc::prlimit(pid.as_raw(), resource(typ) as _, std::ptr::null(), &mut old) };
    (r == 0).then_some(old)
}

/// "unlimited" for RLIM_INFINITY, the number otherwise.
fn show(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// The kernel resource number of an OCI rlimit type.
pub fn resource(typ: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType as T;
    let r = match typ {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    };
    // The constants are 0..=15 whatever their libc type.
    r as libc::c_int
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::PosixRlimitBuilder;

    fn lim(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    #[test]
    fn duplicate_is_an_error() {
        let l = [
            lim(PosixRlimitType::RlimitNofile, 10, 10),
            lim(PosixRlimitType::RlimitCore, 0, 0),
            lim(PosixRlimitType::RlimitNofile, 20, 20),
        ];
        let e = validate(&l).unwrap_err().to_string();
        assert_eq!(e, "rlimit RLIMIT_NOFILE given twice");
    }

    #[test]
    fn soft_above_hard_is_an_error() {
        let e = validate(&[lim(PosixRlimitType::RlimitNproc, 11, 10)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "rlimit RLIMIT_NPROC: soft limit 11 is above the hard limit 10"
        );
        let e = validate(&[lim(PosixRlimitType::RlimitCore, u64::MAX, 10)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("soft limit unlimited"), "{e}");
    }

    #[test]
    fn valid_list_passes() {
        let l = [
            lim(PosixRlimitType::RlimitNofile, 1024, 4096),
            lim(PosixRlimitType::RlimitCore, 0, u64::MAX),
        ];
        validate(&l).unwrap();
        validate(&[]).unwrap();
    }

    #[test]
    fn names_from_json_and_resource_numbers() {
        let l: PosixRlimit =
            serde_json::from_str(r#"{"type":"RLIMIT_RTTIME","hard":5,"soft":1}"#).unwrap();
        assert_eq!(l.typ().to_string(), "RLIMIT_RTTIME");
        assert_eq!(resource(l.typ()), libc::RLIMIT_RTTIME as libc::c_int);
        let bad: Result<PosixRlimit, _> =
            serde_json::from_str(r#"{"type":"RLIMIT_FOO","hard":5,"soft":1}"#);
        assert!(bad.is_err());
    }

    /// A sleeping child whose limits we set from here and read back from /proc/<pid>/limits.
    struct Sleeper(std::process::Child);
    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn limits_line(pid: u32, label: &str) -> String {
        let s = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let line = s.lines().find(|l| l.starts_with(label)).unwrap();
        line[label.len()..]
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn apply_on_another_process() {
        let mut s = Sleeper(
            std::process::Command::new("sleep")
                .arg("1000")
                .spawn()
                .unwrap(),
        );
        let pid = Pid::from_raw(s.0.id() as i32);
        let l = [
            lim(PosixRlimitType::RlimitNofile, 100, 200),
            lim(PosixRlimitType::RlimitCore, 0, u64::MAX),
        ];
        apply(pid, &l).unwrap();
        assert_eq!(limits_line(s.0.id(), "Max open files"), "100 200");
        assert_eq!(limits_line(s.0.id(), "Max core file size"), "0 unlimited");

        // Lowering is allowed; raising the hard limit back needs CAP_SYS_RESOURCE, which only a
        // process that has it can do. The error must name the limit, the values and the hint.
        let has_sys_resource = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false);
        let r = apply(pid, &[lim(PosixRlimitType::RlimitNofile, 100, 300)]);
        if has_sys_resource {
            r.unwrap();
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("RLIMIT_NOFILE"), "{e}");
            assert!(e.contains("soft=100 hard=300"), "{e}");
            assert!(e.contains("current value 200"), "{e}");
            assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
            assert_eq!(limits_line(s.0.id(), "Max open files"), "100 200");
        }
        s.0.kill().unwrap();
    }
}
