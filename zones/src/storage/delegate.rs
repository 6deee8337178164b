//! `add dataset` (illumos delegated datasets) on OpenZFS >= 2.2: at boot the dataset gets
//! `zoned=on` and is attached to the zone's user namespace with `zfs zone <nsfile> DS`, then
//! mounted inside the zone (its `mountpoint`, as the zone sees it); at halt it is unmounted
//! there with the zone and given back with `zfs unzone` and `zoned=off`.
//!
//! Inside the zone its root then manages DS and its children (`zfs create DS/child`, snapshots,
//! properties) and sees no other dataset; `quota` stays the host's. zfs-fuse has no `zfs zone`
//! and OpenZFS before 2.2 neither: both are refused by [`check`], with the version found.
//! [`check`] also refuses, before anything changes, a dataset that does not exist, one on a
//! pool that is not imported, one another zone has (naming it; `zoned=on` without a zone is
//! refused too), and the zone's own root dataset or an ancestor of it.

use std::path::Path;

use super::zfs::zfs;
use super::StorageError;

/// Why a dataset cannot be delegated (the boot stops; nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    #[error("add dataset needs OpenZFS 2.2 or later (zfs zone); this host has {found}")]
    Unsupported { found: String },
    #[error("dataset '{ds}': pool '{pool}' is not imported")]
    PoolNotImported { ds: String, pool: String },
    #[error("dataset '{ds}' does not exist")]
    Missing { ds: String },
    #[error("dataset '{ds}' is delegated to zone '{zone}'")]
    DelegatedTo { ds: String, zone: String },
    #[error("dataset '{ds}' {how} dataset '{other}', delegated to zone '{zone}'")]
    Overlaps {
        ds: String,
        how: &'static str,
        other: String,
        zone: String,
    },
    #[error("dataset '{ds}' is zoned (zoned=on) to no zone of this host; zfs set zoned=off {ds} gives it back")]
    Zoned { ds: String },
    #[error("dataset '{ds}' contains the zone's root dataset '{root}'")]
    HoldsRoot { ds: String, root: String },
    #[error("add dataset needs the zone's own user namespace (set userns=true)")]
    NoUserns,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The OpenZFS version in use: the kernel module's (`zfs-kmod-X.Y.Z`), else the userland's.
/// `Err(Unsupported)` names what was found instead (zfs-fuse, no zfs, an old OpenZFS).
pub fn openzfs_version() -> Result<(u32, u32, u32), DelegateError> {
    let text = match zfs(&["version"]) {
        Ok(t) => t,
        Err(StorageError::Command { msg, .. }) => {
            let found = if msg.contains("not installed") {
                "no zfs command".to_string()
            } else if Path::new("/dev/zfs").exists() {
                format!("an OpenZFS without `zfs version` (older than 0.8): {msg}")
            } else {
                "zfs-fuse (no /dev/zfs, no zfs zone)".to_string()
            };
            return Err(DelegateError::Unsupported { found });
        }
        Err(e) => return Err(e.into()),
    };
    let pick = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
    };
    let v =
        pick("zfs-kmod-")
            .or_else(|| pick("zfs-"))
            .ok_or_else(|| DelegateError::Unsupported {
                found: format!("an unknown zfs ({})", text.trim()),
            })?;
    parse_version(&v).ok_or_else(|| DelegateError::Unsupported {
        found: format!("an unknown zfs version {v}"),
    })
}

/// `2.3.2-2~bpo12+2` -> (2, 3, 2).
fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.split(['-', '~', '+']).next()?;
    let mut it = core.split('.').map(|n| n.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Everything [`attach`] needs, checked before anything changes. `root_dataset` is the zone's
/// own (storage zfs), `userns` whether the zone has its own user namespace, `held` the
/// datasets other zones of this host have delegated now, as (zone, dataset).
///
/// The bad input comes first (a dataset of another zone, the zone's own root or an ancestor
/// of it, a pool that is not imported, a dataset that does not exist), then the OpenZFS
/// version: zfs-fuse answers `zpool list` and `zfs get` too.
pub fn check(
    datasets: &[String],
    root_dataset: Option<&str>,
    userns: bool,
    held: &[(String, String)],
) -> Result<(), DelegateError> {
    if datasets.is_empty() {
        return Ok(());
    }
    if !userns {
        return Err(DelegateError::NoUserns);
    }
    let within = |inner: &str, outer: &str| inner.starts_with(&format!("{outer}/"));
    for ds in datasets {
        if let Some(root) = root_dataset {
            if root == ds || within(root, ds) {
                return Err(DelegateError::HoldsRoot {
                    ds: ds.clone(),
                    root: root.to_string(),
                });
            }
        }
        for (zone, other) in held {
            let overlap = |how| DelegateError::Overlaps {
                ds: ds.clone(),
                how,
                other: other.clone(),
                zone: zone.clone(),
            };
            if other == ds {
                return Err(DelegateError::DelegatedTo {
                    ds: ds.clone(),
                    zone: zone.clone(),
                });
            } else if within(ds, other) {
                return Err(overlap("is within"));
            } else if within(other, ds) {
                return Err(overlap("contains"));
            }
        }
        let pool = ds.split('/').next().unwrap_or(ds);
        if super::zfs::zpool(&["list", "-H", "-o", "name", pool]).is_err() {
            return Err(DelegateError::PoolNotImported {
                ds: ds.clone(),
                pool: pool.to_string(),
            });
        }
        let zoned = match zfs(&["get", "-H", "-o", "value", "zoned", ds]) {
            Ok(z) => z.trim().to_string(),
            Err(StorageError::Command { msg, .. }) if msg.contains("does not exist") => {
                return Err(DelegateError::Missing { ds: ds.clone() })
            }
            Err(e) => return Err(e.into()),
        };
        if zoned == "on" {
            return Err(DelegateError::Zoned { ds: ds.clone() });
        }
    }
    let v = openzfs_version()?;
    if v < (2, 2, 0) {
        return Err(DelegateError::Unsupported {
            found: format!("OpenZFS {}.{}.{}", v.0, v.1, v.2),
        });
    }
    Ok(())
}

/// The path inside the zone where `ds` is mounted: the `mountpoint` set on the dataset itself
/// (source local), which with `zoned=on` is the zone's to choose and means a path in the
/// zone; else `/DS` (illumos's default for a delegated dataset), which [`attach`] sets so
/// that the children the zone makes inherit paths under it.
pub fn mountpoint_in_zone(ds: &str) -> Result<String, DelegateError> {
    let (value, local) = mountpoint(ds)?;
    Ok(if local && value.starts_with('/') {
        value
    } else {
        format!("/{ds}")
    })
}

/// (`mountpoint`, whether it is set on `ds` itself).
fn mountpoint(ds: &str) -> Result<(String, bool), DelegateError> {
    let out = zfs(&["get", "-H", "-o", "value,source", "mountpoint", ds])?;
    let mut it = out.trim().split('\t');
    let (value, source) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    Ok((value.to_string(), source == "local"))
}

/// Whether [`attach`] sets `mountpoint=/DS` on `ds`: it has no mountpoint of its own (an
/// inherited one is the host's; a path in the zone is wanted, which its children inherit).
/// What [`detach`] takes back; recorded before [`attach`] so that a crash can be undone.
pub fn sets_mountpoint(ds: &str) -> Result<bool, DelegateError> {
    Ok(!mountpoint(ds)?.1)
}

/// `zoned=on`, then `zfs zone NSFILE DS` (NSFILE: the zone's user namespace, like
/// `/proc/PID/ns/user`). `set_mp`: [`sets_mountpoint`]'s answer. On failure `zoned` and the
/// mountpoint are put back.
pub fn attach(nsfile: &Path, ds: &str, set_mp: bool) -> Result<(), DelegateError> {
    let ns = nsfile.to_string_lossy();
    // Off the host's tree first (a zoned dataset is the zone's to mount), then the
    // mountpoint (the host may not set it once the dataset is zoned).
    if let Err(e) = zfs(&["umount", ds]) {
        if !e.to_string().contains("not currently mounted") {
            return Err(e.into());
        }
    }
    let done = (|| {
        if set_mp {
            zfs(&["set", &format!("mountpoint=/{ds}"), ds])?;
        }
        zfs(&["set", "zoned=on", ds])?;
        zfs(&["zone", &ns, ds]).map(drop)
    })();
    if let Err(e) = done {
        let _ = zfs(&["set", "zoned=off", ds]);
        if set_mp {
            let _ = zfs(&["inherit", "mountpoint", ds]);
        }
        return Err(e.into());
    }
    Ok(())
}

/// `zfs unzone NSFILE DS` and `zoned=off`: the dataset is the host's again. Every step is tried;
/// the first failure is returned.
/// `set_mp`: what [`attach`] was given (its mountpoint is taken back).
pub fn detach(nsfile: &Path, ds: &str, set_mp: bool) -> Result<(), DelegateError> {
    let ns = nsfile.to_string_lossy();
    let unzoned = zfs(&["unzone", &ns, ds]);
    // A dataset the zone mounted (and its children) stays zoned=on for the host otherwise.
    let off = zfs(&["set", "zoned=off", ds]);
    let mp = match set_mp {
        true => zfs(&["inherit", "mountpoint", ds]).map(drop),
        false => Ok(()),
    };
    unzoned?;
    off?;
    mp?;
    Ok(())
}

/// Mount `ds` at `path` inside the zone whose init is `pid` (its user and mount namespaces),
/// as the zone's own root would with `zfs mount`: a child joins both namespaces, makes the
/// directory and mounts. The zone must be the dataset's zone already ([`attach`]).
pub fn mount_in_zone(pid: i32, ds: &str, path: &str) -> Result<(), DelegateError> {
    use nix::sched::{setns, CloneFlags};
    use nix::sys::wait::{waitpid, WaitStatus};
    use std::ffi::CString;
    use std::fs::File;

    let fail = |msg: String| StorageError::Command {
        cmd: format!("mount {ds} at {path} in the zone"),
        msg,
    };
    let open = |ns: &str| {
        File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|e| fail(format!("{ns} namespace: {e}")))
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    let src = CString::new(ds).map_err(|e| fail(e.to_string()))?;
    let target = CString::new(path).map_err(|e| fail(e.to_string()))?;
    // SAFETY: the child only makes async-signal-safe calls (setns, mkdir, mount, _exit) on
    // memory prepared before the fork, and never returns into the caller's code.
    match unsafe { nix::unistd::fork() }.map_err(|e| fail(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            let code = (|| -> nix::Result<()> {
                setns(&user, CloneFlags::CLONE_NEWUSER)?;
                setns(&mnt, CloneFlags::CLONE_NEWNS)?;
                // mkdir -p, component by component, on the C string's bytes.
                let bytes = target.as_bytes();
                for (i, b) in bytes.iter().enumerate().skip(1) {
                    if *b == b'/' {
                        let part = &bytes[..i];
                        let mut buf = [0u8; 4096];
                        if part.len() < buf.len() {
                            buf[..part.len()].copy_from_slice(part);
                            // SAFETY: buf is NUL-terminated (zeroed beyond part).
                            unsafe { libc_mkdir(buf.as_ptr()) };
                        }
                    }
                }
                // SAFETY: target is a valid NUL-terminated path.
                unsafe { libc_mkdir(target.as_ptr().cast()) };
                nix::mount::mount(
                    Some(src.as_c_str()),
                    target.as_c_str(),
                    Some("zfs"),
                    nix::mount::MsFlags::empty(),
                    Some("zfsutil"),
                )
            })();
            let status = match code {
                Ok(()) => 0,
                Err(e) => (e as i32).clamp(1, 255),
            };
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { nix::libc::_exit(status) }
        }
        nix::unistd::ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, e)) => {
                Err(fail(nix::errno::Errno::from_raw(e).desc().to_string()).into())
            }
            other => Err(fail(format!("{other:?}")).into()),
        },
    }
}

/// The delegated dataset's top directory, mounted at `path` in the zone of init `pid`, to the
/// zone's root (its user namespace's uid and gid 0) when it belongs to the host's root (a new
/// dataset: unmapped in the zone, where its root could not write there). Done from the host,
/// through `/proc/PID/root`.
pub fn give_to_zone_root(pid: i32, path: &str) -> Result<(), DelegateError> {
    use std::os::unix::fs::MetadataExt;
    let fail = |msg: String| StorageError::Command {
        cmd: format!("chown {path} in the zone"),
        msg,
    };
    let base = |map: &str| -> Result<u32, StorageError> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{map}"))
            .map_err(|e| fail(format!("{map}: {e}")))?;
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&"0"))
            .and_then(|f| f.get(1)?.parse().ok())
            .ok_or_else(|| fail(format!("{map} has no mapping for 0")))
    };
    let (uid, gid) = (base("uid_map")?, base("gid_map")?);
    let dir = format!("/proc/{pid}/root{path}");
    let meta = std::fs::metadata(&dir).map_err(|e| fail(e.to_string()))?;
    if meta.uid() == 0 && meta.gid() == 0 && uid != 0 {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// mkdir(2) with mode 0755, errors ignored (an existing directory is what is wanted).
///
/// # Safety
/// `path` must point to a NUL-terminated string.
unsafe fn libc_mkdir(path: *const u8) {
    // SAFETY: the caller passes a NUL-terminated string.
    unsafe { nix::libc::mkdir(path.cast(), 0o755) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.3.2-2~bpo12+2"), Some((2, 3, 2)));
        assert_eq!(parse_version("2.1.11-1+deb12u1"), Some((2, 1, 11)));
        assert_eq!(parse_version("2.2"), Some((2, 2, 0)));
        assert_eq!(parse_version("x"), None);
        assert!((2, 1, 11) < (2, 2, 0));
    }
}
