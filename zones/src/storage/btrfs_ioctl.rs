//! The few btrfs ioctls the btrfs backend needs (linux/btrfs.h): subvolume create, snapshot
//! (read-only or writable), subvolume delete, quota enable and a qgroup limit.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MAGIC: u8 = 0x94;
const PATH_NAME_MAX: usize = 4087;
const SUBVOL_NAME_MAX: usize = 4039;
/// `BTRFS_SUBVOL_RDONLY`.
const SUBVOL_RDONLY: u64 = 1 << 1;
const QUOTA_CTL_ENABLE: u64 = 1;
const QGROUP_LIMIT_MAX_EXCL: u64 = 1 << 1;
/// The inode number of every subvolume's root directory (`BTRFS_FIRST_FREE_OBJECTID`).
const SUBVOL_ROOT_INO: u64 = 256;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_vol_args_v2` (the qgroup-inherit union unused).
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_quota_ctl_args`.
#[repr(C)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

/// `struct btrfs_ioctl_qgroup_limit_args`.
#[repr(C)]
struct QgroupLimitArgs {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

nix::ioctl_write_ptr!(ioc_subvol_create, MAGIC, 14, VolArgs);
nix::ioctl_write_ptr!(ioc_snap_destroy, MAGIC, 15, VolArgs);
nix::ioctl_write_ptr!(ioc_snap_create_v2, MAGIC, 23, VolArgsV2);
nix::ioctl_readwrite!(ioc_quota_ctl, MAGIC, 40, QuotaCtlArgs);
// The kernel header declares QGROUP_LIMIT with _IOR although it only reads the argument.
nix::ioctl_read!(ioc_qgroup_limit, MAGIC, 43, QgroupLimitArgs);
nix::ioctl_none!(ioc_quota_rescan_wait, MAGIC, 46);
nix::ioctl_read!(ioc_subvol_getflags, MAGIC, 25, u64);
nix::ioctl_write_ptr!(ioc_subvol_setflags, MAGIC, 26, u64);

/// The parent directory (opened) and the last component of `path`, checked to fit `max`.
fn split(path: &Path, max: usize) -> io::Result<(File, Vec<u8>)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no final component"))?;
    let bytes = name.as_bytes().to_vec();
    if bytes.len() > max || CString::new(bytes.clone()).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "subvolume name too long or with a NUL byte",
        ));
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    Ok((File::open(parent)?, bytes))
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// Whether `path` is on a btrfs filesystem.
pub fn is_btrfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
}

/// Whether `path` is the root of a btrfs subvolume.
pub fn is_subvolume(path: &Path) -> bool {
    is_btrfs(path) && std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == SUBVOL_ROOT_INO)
}

/// Make the subvolume `path` (its parent exists).
pub fn subvol_create(path: &Path) -> io::Result<()> {
    let (dir, name) = split(path, PATH_NAME_MAX)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    args.name[..name.len()].copy_from_slice(&name);
    // SAFETY: `dir` is an open directory and `args` a valid, NUL-terminated vol_args the
    // kernel only reads.
    unsafe { ioc_subvol_create(dir.as_raw_fd(), &args) }
        .map(drop)
        .map_err(errno)
}

/// Snapshot the subvolume `src` at `dst` (same filesystem; `dst`'s parent exists).
pub fn snapshot(src: &Path, dst: &Path, readonly: bool) -> io::Result<()> {
    let source = File::open(src)?;
    let (dir, name) = split(dst, SUBVOL_NAME_MAX)?;
    let mut args = VolArgsV2 {
        fd: i64::from(source.as_raw_fd()),
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    args.name[..name.len()].copy_from_slice(&name);
    // SAFETY: `dir` and `source` are open for the duration of the call; `args` is a valid
    // vol_args_v2 (no qgroup inherit) the kernel only reads.
    unsafe { ioc_snap_create_v2(dir.as_raw_fd(), &args) }
        .map(drop)
        .map_err(errno)
}

/// Delete the subvolume `path` with everything in it (not subvolumes nested in it).
pub fn subvol_delete(path: &Path) -> io::Result<()> {
    let (dir, name) = split(path, PATH_NAME_MAX)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    args.name[..name.len()].copy_from_slice(&name);
    // SAFETY: as in `subvol_create`.
    unsafe { ioc_snap_destroy(dir.as_raw_fd(), &args) }
        .map(drop)
        .map_err(errno)
}

/// Make the subvolume `path` read-only (or writable).
pub fn set_readonly(path: &Path, readonly: bool) -> io::Result<()> {
    let f = File::open(path)?;
    let mut flags: u64 = 0;
    // SAFETY: `f` is open; `flags` is a u64 the kernel writes.
    unsafe { ioc_subvol_getflags(f.as_raw_fd(), &mut flags) }.map_err(errno)?;
    let flags = if readonly {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    // SAFETY: `f` is open; `flags` is a u64 the kernel reads.
    unsafe { ioc_subvol_setflags(f.as_raw_fd(), &flags) }
        .map(drop)
        .map_err(errno)
}

/// Turn quota accounting on for the filesystem of `path` (a no-op when it is on), and wait
/// for the initial rescan.
pub fn quota_enable(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    let mut args = QuotaCtlArgs {
        cmd: QUOTA_CTL_ENABLE,
        status: 0,
    };
    // SAFETY: `f` is open; `args` is a valid quota_ctl_args.
    unsafe { ioc_quota_ctl(f.as_raw_fd(), &mut args) }.map_err(errno)?;
    // SAFETY: `f` is open; the ioctl takes no argument.
    match unsafe { ioc_quota_rescan_wait(f.as_raw_fd()) } {
        Ok(_) | Err(nix::Error::ENOTCONN) => Ok(()),
        Err(e) => Err(errno(e)),
    }
}

/// Limit the space the subvolume `path` holds exclusively (its own data, not what it shares
/// with the image it was snapshotted from) to `bytes`; `None` removes the limit.
pub fn limit_exclusive(path: &Path, bytes: Option<u64>) -> io::Result<()> {
    let f = File::open(path)?;
    let mut args = QgroupLimitArgs {
        // 0: the qgroup of the subvolume `f` is in.
        qgroupid: 0,
        flags: QGROUP_LIMIT_MAX_EXCL,
        max_rfer: 0,
        max_excl: bytes.unwrap_or(u64::MAX),
        rsv_rfer: 0,
        rsv_excl: 0,
    };
    // SAFETY: `f` is open; `args` is a valid qgroup_limit_args (the kernel only reads it).
    unsafe { ioc_qgroup_limit(f.as_raw_fd(), &mut args) }
        .map(drop)
        .map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_structs_have_the_kernel_sizes() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
        assert_eq!(std::mem::size_of::<QgroupLimitArgs>(), 48);
        assert_eq!(std::mem::size_of::<QuotaCtlArgs>(), 16);
    }
}
