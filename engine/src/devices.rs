//! devices: the container's /dev: default and configured device nodes, the standard symlinks,
//! `/dev/ptmx`, a placeholder for the console, and the default cgroup device rules.
//!
//! Runs before pivot_root, relative to an `O_PATH` descriptor of the rootfs (see
//! `mounts::open_in_root`). In a user namespace `mknod` is not allowed, so host devices are
//! bind-mounted onto empty files instead (runc's `bindMountDeviceNode`).

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, Mount};

use super::mounts::{self, open_in_root, open_parent_in_root, openat_fd, MountError, NodeKind};

/// Errors while populating /dev. Each names the device path.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Resolve(#[from] MountError),
    #[error("device {path:?}: type {typ:?} cannot be created (use b, c, u or p)")]
    BadType { path: PathBuf, typ: String },
    #[error("device {path:?}: {what}: {source}")]
    Create {
        path: PathBuf,
        what: &'static str,
        source: Errno,
    },
    #[error("device {path:?}: bind-mounting the host device: {source}")]
    Bind { path: PathBuf, source: Errno },
    #[error("/dev symlink {path:?} -> {target:?}: {source}")]
    Symlink {
        path: PathBuf,
        target: PathBuf,
        source: Errno,
    },
    #[error("reopening /dev/null for stdio: {0}")]
    DevNull(Errno),
}

fn device(path: &str, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(PathBuf::from(path))
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_file_mode(Some(0o666))
        .set_uid(Some(0))
        .set_gid(Some(0));
    d
}

/// The devices every container gets (runc's `AllowedDevices` that have a path).
pub fn default_devices() -> Vec<LinuxDevice> {
    use LinuxDeviceType::C;
    vec![
        device("/dev/null", C, 1, 3),
        device("/dev/zero", C, 1, 5),
        device("/dev/full", C, 1, 7),
        device("/dev/random", C, 1, 8),
        device("/dev/urandom", C, 1, 9),
        device("/dev/tty", C, 5, 0),
    ]
}

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true)
        .set_typ(Some(typ))
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// The allow rules runc adds to every container's device cgroup (`specconv.AllowedDevices`):
/// mknod of anything, the default devices, /dev/pts/*, /dev/ptmx, /dev/console and tun.
/// The caller puts them after the spec's own rules' leading deny-all, as runc does.
pub fn default_cgroup_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut v = vec![rule(C, None, None, "m"), rule(B, None, None, "m")];
    v.extend(default_devices().iter().map(LinuxDeviceCgroup::from));
    v.push(rule(C, Some(136), None, "rwm")); // /dev/pts/*
    v.push(rule(C, Some(5), Some(2), "rwm")); // /dev/ptmx
    v.push(rule(C, Some(5), Some(1), "rwm")); // /dev/console
    v.push(rule(C, Some(10), Some(200), "rwm")); // /dev/net/tun
    v
}

/// runc's `needsSetupDev`: /dev is populated unless it is bind-mounted from somewhere.
/// (Like runc, this also happens when /dev is not a separate mount at all.)
pub fn needs_setup_dev(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        mounts::is_bind_mount(m) && mounts::clean_in_root(m.destination()) == Path::new("/dev")
    })
}

/// The defaults plus the spec's devices; a spec device replaces a default with the same path.
pub fn devices_to_create(spec_devices: &[LinuxDevice]) -> Vec<LinuxDevice> {
    let mut all: Vec<LinuxDevice> = default_devices()
        .into_iter()
        .filter(|d| !spec_devices.iter().any(|s| s.path() == d.path()))
        .collect();
    all.extend(spec_devices.iter().cloned());
    all
}

/// Restores the umask when dropped.
struct UmaskGuard(Mode);

impl UmaskGuard {
    fn zero() -> Self {
        UmaskGuard(nix::sys::stat::umask(Mode::empty()))
    }
}

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// Everything runc does for /dev: devices (defaults + `spec_devices`), `/dev/ptmx` →
/// `pts/ptmx`, the /proc symlinks and, with `terminal`, an empty `/dev/console` to bind the pty
/// onto later. `bind`: bind host devices instead of mknod (user namespace).
pub fn setup_dev(
    root: BorrowedFd<'_>,
    spec_devices: &[LinuxDevice],
    bind: bool,
    terminal: bool,
) -> Result<(), DeviceError> {
    let _umask = UmaskGuard::zero();
    create_devices(root, &devices_to_create(spec_devices), bind)?;
    setup_ptmx(root)?;
    setup_dev_symlinks(root)?;
    if terminal {
        create_console_placeholder(root)?;
    }
    Ok(())
}

/// Creates each device node inside the rootfs (mknod, or bind from the host when `bind` or
/// when mknod is refused with EPERM). Existing nodes are left alone.
pub fn create_devices(
    root: BorrowedFd<'_>,
    devices: &[LinuxDevice],
    bind: bool,
) -> Result<(), DeviceError> {
    devices
        .iter()
        .try_for_each(|d| create_device(root, d, bind))
}

fn device_kind(d: &LinuxDevice) -> Result<SFlag, DeviceError> {
    match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => Ok(SFlag::S_IFCHR),
        LinuxDeviceType::B => Ok(SFlag::S_IFBLK),
        LinuxDeviceType::P => Ok(SFlag::S_IFIFO),
        LinuxDeviceType::A => Err(DeviceError::BadType {
            path: d.path().clone(),
            typ: "a".into(),
        }),
    }
}

/// The permission bits of a device: `fileMode` without the type bits, 0666 by default.
pub fn device_mode(d: &LinuxDevice) -> Mode {
    Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666) & 0o7777)
}

fn create_device(root: BorrowedFd<'_>, d: &LinuxDevice, bind: bool) -> Result<(), DeviceError> {
    let kind = device_kind(d)?;
    let (dir, name) = open_parent_in_root(root, d.path(), true)?;
    if bind {
        return bind_device(root, d);
    }
    let dev = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
    // *at() calls accept the O_PATH directory descriptor.
    match nix::sys::stat::mknodat(
        Some(dir.fd.as_raw_fd()),
        name.as_os_str(),
        kind,
        device_mode(d),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(()),
        Err(Errno::EPERM) => return bind_device(root, d),
        Err(source) => return Err(create_err(d, "mknod", source)),
    }
    finish_node(dir.fd.as_fd(), name.as_os_str(), d)
}

/// chmod (umask-proof) and chown of a freshly made node.
fn finish_node(dir: BorrowedFd<'_>, name: &OsStr, d: &LinuxDevice) -> Result<(), DeviceError> {
    let dirfd = Some(dir.as_raw_fd());
    nix::sys::stat::fchmodat(
        dirfd,
        name,
        device_mode(d),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .map_err(|source| create_err(d, "chmod", source))?;
    nix::unistd::fchownat(
        dirfd,
        name,
        Some(Uid::from_raw(d.uid().unwrap_or(0))),
        Some(Gid::from_raw(d.gid().unwrap_or(0))),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|source| create_err(d, "chown", source))
}

fn create_err(d: &LinuxDevice, what: &'static str, source: Errno) -> DeviceError {
    DeviceError::Create {
        path: d.path().clone(),
        what,
        source,
    }
}

/// Bind-mounts the host's device at the same path onto an empty file in the rootfs.
fn bind_device(root: BorrowedFd<'_>, d: &LinuxDevice) -> Result<(), DeviceError> {
    let target = open_in_root(root, d.path(), Some(NodeKind::File))?;
    let src = openat_fd(None, d.path(), OFlag::O_PATH, Mode::empty()).map_err(|source| {
        DeviceError::Bind {
            path: d.path().clone(),
            source,
        }
    })?;
    mounts::do_mount(
        Some(&mounts::proc_fd_path(src.as_fd())),
        &mounts::proc_fd_path(target.fd.as_fd()),
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(|source| DeviceError::Bind {
        path: d.path().clone(),
        source,
    })
}

/// `/dev/ptmx` → `pts/ptmx` (replacing whatever was there), as runc's `setupPtmx`.
pub fn setup_ptmx(root: BorrowedFd<'_>) -> Result<(), DeviceError> {
    let (dir, _) = open_parent_in_root(root, Path::new("/dev/ptmx"), true)?;
    let real = dir.fd;
    match nix::unistd::unlinkat(
        Some(real.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(source) => return Err(symlink_err("/dev/ptmx", "pts/ptmx", source)),
    }
    nix::unistd::symlinkat("pts/ptmx", Some(real.as_raw_fd()), "ptmx")
        .map_err(|source| symlink_err("/dev/ptmx", "pts/ptmx", source))
}

fn symlink_err(path: &str, target: &str, source: Errno) -> DeviceError {
    DeviceError::Symlink {
        path: PathBuf::from(path),
        target: PathBuf::from(target),
        source,
    }
}

/// The /dev symlinks into /proc (fd, stdin, stdout, stderr, and core if /proc/kcore exists).
/// Existing entries are kept.
pub fn setup_dev_symlinks(root: BorrowedFd<'_>) -> Result<(), DeviceError> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let real = open_in_root(root, Path::new("/dev"), Some(NodeKind::Dir))?.fd;
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(real.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(source) => return Err(symlink_err(&format!("/dev/{name}"), target, source)),
        }
    }
    Ok(())
}

/// An empty `/dev/console` (0666) that the console pty is bind-mounted onto after pivot_root.
pub fn create_console_placeholder(root: BorrowedFd<'_>) -> Result<(), DeviceError> {
    let f = open_in_root(root, Path::new("/dev/console"), Some(NodeKind::File))?;
    let path = mounts::proc_fd_path(f.fd.as_fd());
    nix::sys::stat::fchmodat(
        None,
        &path,
        Mode::from_bits_truncate(0o666),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|source| DeviceError::Create {
        path: PathBuf::from("/dev/console"),
        what: "chmod",
        source,
    })
}

/// After pivot_root: stdio descriptors that point at the host's /dev/null are re-pointed at
/// the container's (runc's `reOpenDevNull`). Does nothing if the container has no /dev/null.
pub fn reopen_dev_null() -> Result<(), DeviceError> {
    let null = match openat_fd(None, "/dev/null", OFlag::O_RDWR, Mode::empty()) {
        Ok(f) => f,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(DeviceError::DevNull(e)),
    };
    let null_st = nix::sys::stat::fstat(null.as_raw_fd()).map_err(DeviceError::DevNull)?;
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
        if is_chr && st.st_rdev == null_st.st_rdev {
            nix::unistd::dup3(null.as_raw_fd(), fd, OFlag::empty())
                .map_err(DeviceError::DevNull)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_runcs() {
        let d = default_devices();
        let names: Vec<_> = d.iter().map(|d| d.path().display().to_string()).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
        let null = &d[0];
        assert_eq!((null.major(), null.minor()), (1, 3));
        assert_eq!(device_mode(null), Mode::from_bits_truncate(0o666));
    }

    #[test]
    fn cgroup_rules() {
        let r: Vec<String> = default_cgroup_rules()
            .iter()
            .map(|r| r.to_string())
            .collect();
        for must in [
            "c *:* m",
            "b *:* m",
            "c 1:3 rwm",
            "c 5:0 rwm",
            "c 136:* rwm",
            "c 5:2 rwm",
            "c 5:1 rwm",
            "c 10:200 rwm",
        ] {
            assert!(r.contains(&must.to_string()), "{must} missing from {r:?}");
        }
        assert!(default_cgroup_rules().iter().all(|r| r.allow()));
    }

    #[test]
    fn spec_devices_override_defaults() {
        let mut fuse = device("/dev/fuse", LinuxDeviceType::C, 10, 229);
        fuse.set_file_mode(Some(0o20600)); // type bits are ignored
        let mut null = device("/dev/null", LinuxDeviceType::C, 1, 3);
        null.set_uid(Some(1000));
        let all = devices_to_create(&[fuse.clone(), null]);
        assert_eq!(all.len(), 7);
        assert_eq!(
            all.iter()
                .filter(|d| d.path() == Path::new("/dev/null"))
                .count(),
            1
        );
        assert_eq!(
            all.iter()
                .find(|d| d.path() == Path::new("/dev/null"))
                .unwrap()
                .uid(),
            Some(1000)
        );
        assert_eq!(device_mode(&fuse), Mode::from_bits_truncate(0o600));
    }

    #[test]
    fn device_types() {
        let mut d = device("/dev/x", LinuxDeviceType::U, 1, 1);
        assert_eq!(device_kind(&d).unwrap(), SFlag::S_IFCHR);
        d.set_typ(LinuxDeviceType::P);
        assert_eq!(device_kind(&d).unwrap(), SFlag::S_IFIFO);
        d.set_typ(LinuxDeviceType::A);
        assert!(matches!(device_kind(&d), Err(DeviceError::BadType { .. })));
    }

    fn mount(dest: &str, typ: &str, opts: &[&str]) -> Mount {
        oci_spec::runtime::MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(typ)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn setup_dev_unless_dev_is_bound() {
        assert!(needs_setup_dev(&[mount("/dev", "tmpfs", &["nosuid"])]));
        assert!(needs_setup_dev(&[]));
        assert!(!needs_setup_dev(&[mount("/dev/", "none", &["rbind"])]));
        assert!(!needs_setup_dev(&[mount("/dev", "bind", &[])]));
    }

    #[test]
    fn symlinks_and_console_in_plain_dir() {
        // No privileges needed: symlinks and a regular file in a scratch rootfs.
        let t = crate::mounts::tests::TempDir::new("devlinks");
        let root = openat_fd(
            None,
            &t.0,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        setup_ptmx(root.as_fd()).unwrap();
        setup_dev_symlinks(root.as_fd()).unwrap();
        setup_dev_symlinks(root.as_fd()).unwrap(); // idempotent
        create_console_placeholder(root.as_fd()).unwrap();
        assert_eq!(
            std::fs::read_link(t.0.join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert_eq!(
            std::fs::read_link(t.0.join("dev/fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
        assert_eq!(
            std::fs::read_link(t.0.join("dev/stderr")).unwrap(),
            Path::new("/proc/self/fd/2")
        );
        let md = std::fs::metadata(t.0.join("dev/console")).unwrap();
        assert!(md.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
            0o666
        );
    }
}
