//! A zone's files as its user namespace sees them.
//!
//! A zone with a user namespace sees host id `base + N` as its id N. Its root filesystem is
//! made to match in one of two ways:
//! - **id-mapped** (overlay storage): the image's rootfs, shared by every zone made from it and
//!   owned by host ids 0..65535, becomes the overlay's lower layer through an id-mapped mount
//!   (open_tree + mount_setattr `MOUNT_ATTR_IDMAP`), so the image stays untouched; only the
//!   zone's own upper dir holds shifted ids. (An overlay mount itself cannot be id-mapped.)
//! - **shifted** (dir, btrfs, zfs: a private copy): every file's owner is moved by `base`
//!   once (lchown, keeping set-id bits), at install or when the range changes.
//!
//! `<zonepath>/idshift` records the base the zone's own files are shifted to (absent: 0), so
//! a re-shift (userns toggled, a clone of another zone, an attach) moves ids from the recorded
//! base to the new one and an interrupted shift is finished by the next one.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use zones_mountapi as mountapi;

use crate::idrange::RANGE_SIZE;

const MARKER: &str = "idshift";

#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "id-mapped mount of {}: its filesystem ({fstype}) cannot be id-mapped on this kernel: \
         keep the zone store on ext4, xfs or btrfs (tmpfs from Linux 6.3), or give the zone \
         no user namespace (zonecfg: set userns=false)",
        .path.display()
    )]
    Unsupported { path: PathBuf, fstype: String },
    #[error("id-mapped mount of {}: {what}: {errno}", .path.display())]
    Sys {
        path: PathBuf,
        what: &'static str,
        errno: Errno,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ShiftError + '_ {
    move |source| ShiftError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The base the zone's files are shifted to (0: host ids as in the image).
pub fn recorded(zonepath: &Path) -> u32 {
    fs::read_to_string(zonepath.join(MARKER))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

pub fn record(zonepath: &Path, base: u32) -> Result<(), ShiftError> {
    crate::store::write_atomic(zonepath, MARKER, format!("{base}\n").as_bytes()).map_err(|e| {
        ShiftError::Io {
            path: zonepath.join(MARKER),
            source: io::Error::other(e.to_string()),
        }
    })
}

/// The id `id` moved from the range at `from` to the range at `to` (ids outside the zone's
/// 65536 are left alone).
pub fn moved(id: u32, from: u32, to: u32) -> u32 {
    if id >= from && id - from < RANGE_SIZE {
        id - from + to
    } else {
        id
    }
}

/// Shift the files below `dir` (not crossing mount points) from `from` to `to`, then record
/// `to` in `<zonepath>/idshift`. Nothing to do when they are already there.
pub fn shift(zonepath: &Path, dir: &Path, to: u32) -> Result<(), ShiftError> {
    let from = recorded(zonepath);
    if from == to {
        return Ok(());
    }
    if dir.exists() {
        let dev = fs::symlink_metadata(dir).map_err(io_err(dir))?.dev();
        shift_tree(dir, dev, from, to)?;
    }
    record(zonepath, to)
}

fn shift_tree(path: &Path, dev: u64, from: u32, to: u32) -> Result<(), ShiftError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.dev() != dev {
        return Ok(());
    }
    let (uid, gid) = (moved(meta.uid(), from, to), moved(meta.gid(), from, to));
    if (uid, gid) != (meta.uid(), meta.gid()) {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io_err(path))?;
        // chown clears set-id bits: put them back.
        if !meta.file_type().is_symlink() && meta.mode() & 0o6000 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_err(path))?;
        }
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            shift_tree(&entry.path(), dev, from, to)?;
        }
    }
    Ok(())
}

/// A detached, id-mapped clone of the mount tree at `src`: host id N of `src` appears as
/// `base + N`, to be attached somewhere with [`attach`].
pub fn idmapped_clone(src: &Path, base: u32) -> Result<OwnedFd, ShiftError> {
    let sys = |what: &'static str| {
        move |errno: Errno| ShiftError::Sys {
            path: src.to_path_buf(),
            what,
            errno,
        }
    };
    let userns = userns_of(base).map_err(sys("a user namespace for the mapping"))?;
    let c = std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
        .map_err(|_| sys("path")(Errno::EINVAL))?;
    let tree = mountapi::clone_tree(&c, true).map_err(sys("open_tree"))?;
    let idmap = mountapi::set_attr(
        tree.as_fd(),
        mountapi::MOUNT_ATTR_IDMAP,
        0,
        Some(userns.as_fd()),
        true,
    );
    match idmap {
        Ok(()) => Ok(tree),
        // EINVAL for a well-formed request: the filesystem has no FS_ALLOW_IDMAP.
        Err(Errno::EINVAL) => Err(ShiftError::Unsupported {
            path: src.to_path_buf(),
            fstype: fs_type(src),
        }),
        Err(e) => Err(sys("mount_setattr(MOUNT_ATTR_IDMAP)")(e)),
    }
}

/// Attach a detached mount tree (from [`idmapped_clone`]) at the directory `at`.
pub fn attach(tree: &OwnedFd, at: &Path) -> Result<(), ShiftError> {
    let sys = |what: &'static str| {
        move |errno: Errno| ShiftError::Sys {
            path: at.to_path_buf(),
            what,
            errno,
        }
    };
    let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes())
        .map_err(|_| sys("path")(Errno::EINVAL))?;
    mountapi::move_to_path(tree.as_fd(), &c).map_err(sys("move_mount"))
}

/// The name of the filesystem type holding `path` (from its statfs magic), for messages.
fn fs_type(path: &Path) -> String {
    use nix::sys::statfs::{self, FsType};
    let Ok(st) = statfs::statfs(path) else {
        return "unknown".into();
    };
    let t = st.filesystem_type();
    let known: [(FsType, &str); 8] = [
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
        (statfs::EXT4_SUPER_MAGIC, "ext4"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
        (statfs::FUSE_SUPER_MAGIC, "fuse"),
        (FsType(0x0102_1997), "9p"),
    ];
    known
        .iter()
        .find(|(m, _)| *m == t)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("magic {:#x}", t.0))
}

/// A user namespace mapping 0..65535 to `base`.. (see `mountapi::userns_with`).
fn userns_of(base: u32) -> Result<OwnedFd, Errno> {
    let map = format!("0 {base} {RANGE_SIZE}\n");
    let errno = |e: io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(0));
    mountapi::userns_with(|pid| {
        let w = |f: &str, s: &str| fs::write(format!("/proc/{pid}/{f}"), s);
        w("uid_map", &map)
            .and_then(|()| w("setgroups", "deny"))
            .and_then(|()| w("gid_map", &map))
    })
    .map_err(|e| match e {
        mountapi::UsernsError::Sys(_, e) => e,
        mountapi::UsernsError::Unshare => Errno::EPERM,
        mountapi::UsernsError::Maps(e) | mountapi::UsernsError::Open(e) => errno(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_move_between_ranges_and_others_stay() {
        assert_eq!(moved(0, 0, 1_000_000_000), 1_000_000_000);
        assert_eq!(moved(65535, 0, 1_000_000_000), 1_000_065_535);
        assert_eq!(moved(65536, 0, 1_000_000_000), 65536);
        assert_eq!(moved(1_000_000_005, 1_000_000_000, 0), 5);
        assert_eq!(
            moved(1_000_000_005, 1_000_000_000, 1_000_065_536),
            1_000_065_541
        );
    }

    #[test]
    fn a_tree_is_shifted_once_and_back_keeping_setid_bits() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let zp = std::env::temp_dir().join(format!("runz-test-idshift-{}", std::process::id()));
        let _ = fs::remove_dir_all(&zp);
        let root = zp.join("root");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/su"), "x").unwrap();
        std::os::unix::fs::lchown(root.join("bin/su"), Some(0), Some(5)).unwrap();
        fs::set_permissions(root.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("su", root.join("bin/link")).unwrap();
        let base = 1_000_000_000;
        shift(&zp, &root, base).unwrap();
        let m = fs::symlink_metadata(root.join("bin/su")).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (base, base + 5, 0o4755)
        );
        assert_eq!(
            fs::symlink_metadata(root.join("bin/link")).unwrap().uid(),
            base
        );
        assert_eq!(recorded(&zp), base);
        // Again: nothing moves twice.
        shift(&zp, &root, base).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().uid(), base);
        shift(&zp, &root, 0).unwrap();
        assert_eq!(fs::symlink_metadata(root.join("bin/su")).unwrap().gid(), 5);
        assert_eq!(recorded(&zp), 0);
        fs::remove_dir_all(&zp).unwrap();
    }
}
