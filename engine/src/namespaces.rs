//! Namespaces: clone flags for new ones, joining existing ones by path, and user-namespace id maps
//! (written by the parent, from outside the new namespace).

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespace, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("open namespace {typ} at {path}: {errno}")]
    Open {
        typ: String,
        path: String,
        errno: nix::Error,
    },
    #[error("join namespace {typ}: {errno}")]
    Join { typ: String, errno: nix::Error },
    #[error("unshare {what}: {errno}")]
    Unshare { what: String, errno: nix::Error },
    #[error("write {file} of pid {pid}: {reason}")]
    IdMap {
        file: &'static str,
        pid: i32,
        reason: String,
    },
}

/// The clone flag of a namespace type.
pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join, opened before anything is joined (paths may stop resolving after).
pub struct ToJoin {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
}

/// Open every namespace the spec joins by path. User first, so that after joining it the
/// others (owned by that user namespace) can be joined with its privileges.
pub fn open_joins(namespaces: &[LinuxNamespace]) -> Result<Vec<ToJoin>, NamespaceError> {
    let mut joins = Vec::new();
    for ns in namespaces {
        if let Some(path) = ns.path() {
            let fd = open(
                path.as_path(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|errno| NamespaceError::Open {
                typ: ns.typ().to_string(),
                path: path.display().to_string(),
                errno,
            })?;
            // SAFETY: `open` just returned this fd and nothing else owns it.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            joins.push(ToJoin { typ: ns.typ(), fd });
        }
    }
    joins.sort_by_key(|j| j.typ != LinuxNamespaceType::User);
    Ok(joins)
}

/// Join the namespaces opened by [`open_joins`], except those in `skip`.
///
/// After joining a user namespace the caller becomes its root (uid/gid 0 there), as runc does:
/// host root is not mapped inside it, and files created with an unmapped owner fail with
/// EOVERFLOW (the first being `/dev/pts` of the rootfs).
pub fn join(joins: &[ToJoin], skip: &[LinuxNamespaceType]) -> Result<(), NamespaceError> {
    for j in joins.iter().filter(|j| !skip.contains(&j.typ)) {
        let err = |errno| NamespaceError::Join {
            typ: j.typ.to_string(),
            errno,
        };
        setns(j.fd.as_fd(), flag(j.typ)).map_err(err)?;
        if j.typ == LinuxNamespaceType::User {
            become_userns_root().map_err(err)?;
        }
    }
    Ok(())
}

/// uid and gid 0 of the user namespace just joined, with no supplementary groups where the
/// namespace allows setgroups (host root's groups are not mapped in it).
fn become_userns_root() -> nix::Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    match setgroups(&[]) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(e) => return Err(e),
    }
    let (g, u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(g, g, g)?;
    setresuid(u, u, u)
}

/// Unshare the given new namespaces.
pub fn unshare_new(flags: CloneFlags) -> Result<(), NamespaceError> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).map_err(|errno| NamespaceError::Unshare {
        what: format!("{flags:?}"),
        errno,
    })
}

/// The flags of every *new* namespace in the spec among `types`.
pub fn new_flags(spec: &Spec, types: &[LinuxNamespaceType]) -> CloneFlags {
    super::spec::namespaces(spec)
        .iter()
        .filter(|n| n.path().is_none() && types.contains(&n.typ()))
        .fold(CloneFlags::empty(), |acc, n| acc | flag(n.typ()))
}

/// Render id mappings in the kernel's `uid_map` format.
pub fn render_map(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write uid/gid maps of `pid` (a process that has just unshared its user namespace).
/// With no gid map given, setgroups stays allowed; runc does the same as root.
pub fn write_id_maps(
    pid: Pid,
    uid: &[LinuxIdMapping],
    gid: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    let w = |file: &'static str, data: String| {
        if data.is_empty() {
            return Ok(());
        }
        fs::write(format!("/proc/{}/{file}", pid.as_raw()), data.as_bytes()).map_err(|e| {
            NamespaceError::IdMap {
                file,
                pid: pid.as_raw(),
                reason: format!("{e} (mapping {:?})", data.trim_end()),
            }
        })
    };
    w("uid_map", render_map(uid))?;
    w("gid_map", render_map(gid))
}

/// Write time namespace offsets for the calling process (after unshare(CLONE_NEWTIME), before
/// the first child is created in it).
pub fn write_time_offsets(spec: &Spec) -> Result<(), NamespaceError> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    // Becoming root of a new user namespace changed our ids, which made us non-dumpable, and
    // then /proc/self belongs to host root: the offsets file cannot be opened (EACCES). Be
    // dumpable just for the write (no process of the container exists yet), then as before.
    let was = nix::sys::prctl::get_dumpable().unwrap_or(false);
    if !was {
        let _ = nix::sys::prctl::set_dumpable(true);
    }
    let res = fs::write("/proc/self/timens_offsets", text.as_bytes());
    if !was {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
    res.map_err(|e| NamespaceError::IdMap {
        file: "timens_offsets",
        pid: std::process::id() as i32,
        reason: format!("{e} (offsets {:?})", text.trim_end()),
    })
}

/// Whether `path` names the same namespace the caller is in (joining it would be a no-op).
pub fn is_own(path: &Path, typ: LinuxNamespaceType) -> bool {
    let own = format!("/proc/self/ns/{}", proc_name(typ));
    match (fs::metadata(path), fs::metadata(own)) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.ino() == b.ino() && a.dev() == b.dev()
        }
        _ => false,
    }
}

/// The name of a namespace under /proc/<pid>/ns.
pub fn proc_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_render_in_kernel_format() {
        let maps: Vec<LinuxIdMapping> = serde_json::from_str(
            r#"[{"containerID":0,"hostID":100000,"size":65536},{"containerID":65536,"hostID":5,"size":1}]"#,
        )
        .unwrap();
        assert_eq!(render_map(&maps), "0 100000 65536\n65536 5 1\n");
    }

    #[test]
    fn flags_match_the_kernel_constants() {
        assert_eq!(flag(LinuxNamespaceType::Pid).bits(), libc::CLONE_NEWPID);
        assert_eq!(flag(LinuxNamespaceType::Time).bits(), libc::CLONE_NEWTIME);
        assert_eq!(flag(LinuxNamespaceType::Network).bits(), libc::CLONE_NEWNET);
    }

    #[test]
    fn own_namespace_is_recognised() {
        assert!(is_own(
            Path::new("/proc/self/ns/uts"),
            LinuxNamespaceType::Uts
        ));
        assert!(!is_own(
            Path::new("/proc/self/ns/uts"),
            LinuxNamespaceType::Ipc
        ));
    }
}
