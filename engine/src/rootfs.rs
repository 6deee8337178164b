//! rootfs: everything between "init is in its mount namespace" and "init sees only its rootfs".
//!
//! Call order in the init (runc's `prepareRootfs` / `finalizeRootfs` / standard_init):
//! 1. [`prepare`]: `/` rslave (or `linux.rootfsPropagation`), the rootfs's parent mount private,
//!    rootfs bind-mounted onto itself, every `spec.mounts` entry (see `mounts`), then /dev (see
//!    `devices`) unless /dev is a bind mount. If the spec has a cgroup mount and the container
//!    gets a cgroup namespace, unshare `CLONE_NEWCGROUP` *before* `prepare`: the cgroup
//!    hierarchies are then mounted fresh and the kernel roots them at the namespace root.
//!    Without one, the init's own cgroup directories (read from /proc/self/cgroup) are bound.
//! 2. (hooks: prestart, createRuntime, createContainer)
//! 3. [`enter`]: pivot_root (or MS_MOVE+chroot with --no-pivot, or chroot without a mount ns).
//! 4. (console: bind the pty onto the `/dev/console` placeholder)
//! 5. [`finalize`]: rootfsPropagation on `/`, deferred read-only of tmpfs and /dev, `root.readonly`.
//! 6. (hostname, sysctl: /proc/sys is usually a readonly path, so sysctl must come before 7)
//! 7. [`protect_paths`]: readonlyPaths, then maskedPaths.
//!
//! [`finish`] is 5 + 7 for callers without sysctls.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Spec;

use super::devices::{self, DeviceError};
use super::mounts::{
    self, do_mount, mount_flags_of, openat_fd, proc_fd_path, remount_bind, CgroupLayout,
    MountContext, MountError, MountInfoLine, LOCKED_FLAGS,
};

/// Errors while building the container's filesystem view.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("the spec has {count} mounts but the container has no mount namespace")]
    NoMountNamespace { count: usize },
    /// Without a mount namespace these would change the host's mounts (runc does, and leaves
    /// them behind).
    #[error("the spec sets {what} but the container has no mount namespace")]
    NoMountNamespaceFor { what: &'static str },
    #[error("rootfs path {0:?} must be absolute")]
    RelativeRootfs(PathBuf),
    #[error("linux.rootfsPropagation {0:?} is not one of shared, rshared, slave, rslave, private, rprivate, unbindable, runbindable")]
    InvalidPropagation(String),
    #[error("setting propagation {flags:#x} on {path:?}: {source}")]
    Propagation {
        path: PathBuf,
        flags: u64,
        source: Errno,
    },
    #[error("bind-mounting the rootfs {rootfs:?} onto itself: {source}")]
    BindRootfs { rootfs: PathBuf, source: Errno },
    #[error("opening the rootfs {rootfs:?}: {source}")]
    OpenRootfs { rootfs: PathBuf, source: Errno },
    #[error("mounts[{index}] ({dest:?}): {source}")]
    Mount {
        index: usize,
        dest: PathBuf,
        source: Box<MountError>,
    },
    #[error("setting up /dev: {0}")]
    Devices(#[from] Box<DeviceError>),
    #[error("entering the rootfs {rootfs:?}: {step}: {source}")]
    Enter {
        rootfs: PathBuf,
        step: &'static str,
        source: Errno,
    },
    #[error("read-only remount: {0}")]
    Remount(#[from] Box<MountError>),
    #[error("masking {path:?}: {source}")]
    Mask { path: PathBuf, source: Errno },
    #[error("making {path:?} read-only: {source}")]
    Readonly { path: PathBuf, source: Errno },
}

/// How the init's environment affects the mounts.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// `process.terminal`: create an empty `/dev/console` for the pty.
    pub terminal: bool,
    /// The init is in a new user namespace: bind devices instead of mknod, keep locked flags.
    pub in_user_ns: bool,
    /// The init already unshared `CLONE_NEWCGROUP`: cgroup hierarchies are mounted fresh.
    pub new_cgroup_ns: bool,
    /// The init has its own mount namespace. Without one, [`prepare`] refuses spec mounts.
    pub has_mount_ns: bool,
    /// Host cgroup layout; None: read from /proc/self/{mountinfo,cgroup} when needed.
    pub cgroup: Option<CgroupLayout>,
    /// Bundle directory: relative bind-mount sources are relative to it (else to the cwd).
    pub bundle: Option<PathBuf>,
    /// Per spec mount (by index), the user namespace an id-mapped mount uses
    /// ([`crate::idmap::prepare`]); the descriptors stay open in the caller.
    pub idmap_userns: Vec<Option<std::os::fd::RawFd>>,
    /// Per spec mount (by index), a detached tree made on the host side
    /// ([`mounts::host_trees`]); the descriptors stay open in the caller.
    pub host_trees: Vec<Option<std::os::fd::RawFd>>,
}

/// `linux.rootfsPropagation` as mount flags; None when unset or empty.
pub fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>, RootfsError> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    if p.is_empty() {
        return Ok(None);
    }
    mounts::parse_propagation(&p)
        .map(Some)
        .ok_or(RootfsError::InvalidPropagation(p))
}

fn set_propagation(path: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    do_mount(None::<&Path>, path, None, flags, None).map_err(|source| RootfsError::Propagation {
        path: path.to_path_buf(),
        flags: flags.bits(),
        source,
    })
}

/// Makes the mount holding `path` private: walk up until a mount point is found (EINVAL means
/// "not a mount point"). Keeps the rootfs bind from propagating and satisfies pivot_root.
fn make_parent_mount_private(path: &Path) -> Result<(), RootfsError> {
    let mut p = path.to_path_buf();
    loop {
        match do_mount(None::<&Path>, &p, None, MsFlags::MS_PRIVATE, None) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) if p != Path::new("/") => {
                p = p.parent().unwrap_or(Path::new("/")).to_path_buf();
            }
            Err(source) => {
                return Err(RootfsError::Propagation {
                    path: p,
                    flags: MsFlags::MS_PRIVATE.bits(),
                    source,
                })
            }
        }
    }
}

/// Step 1: see the module docs. `rootfs` is the absolute host path of the root filesystem.
pub fn prepare(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let mounts_list = spec.mounts().as_deref().unwrap_or(&[]);
    if !opts.has_mount_ns {
        if !mounts_list.is_empty() {
            return Err(RootfsError::NoMountNamespace {
                count: mounts_list.len(),
            });
        }
        let linux = spec.linux().as_ref();
        let set = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
        if set(linux.and_then(|l| l.masked_paths().as_ref())) {
            return Err(RootfsError::NoMountNamespaceFor {
                what: "linux.maskedPaths",
            });
        }
        if set(linux.and_then(|l| l.readonly_paths().as_ref())) {
            return Err(RootfsError::NoMountNamespaceFor {
                what: "linux.readonlyPaths",
            });
        }
        if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            return Err(RootfsError::NoMountNamespaceFor {
                what: "root.readonly",
            });
        }
        return Ok(());
    }
    if !rootfs.is_absolute() {
        return Err(RootfsError::RelativeRootfs(rootfs.to_path_buf()));
    }
    let prop = root_propagation(spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    set_propagation(Path::new("/"), prop)?;
    make_parent_mount_private(rootfs)?;
    do_mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(|source| RootfsError::BindRootfs {
        rootfs: rootfs.to_path_buf(),
        source,
    })?;
    let root = openat_fd(
        None,
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|source| RootfsError::OpenRootfs {
        rootfs: rootfs.to_path_buf(),
        source,
    })?;
    let mut ctx = MountContext {
        root: root.as_fd(),
        rootfs,
        bundle: opts.bundle.as_deref(),
        in_user_ns: opts.in_user_ns,
        new_cgroup_ns: opts.new_cgroup_ns,
        cgroup: opts.cgroup.as_ref(),
        idmap_userns: None,
        host_tree: None,
    };
    for (index, m) in mounts_list.iter().enumerate() {
        ctx.idmap_userns = opts.idmap_userns.get(index).copied().flatten();
        ctx.host_tree = opts.host_trees.get(index).copied().flatten();
        mounts::mount_one(&ctx, m).map_err(|source| RootfsError::Mount {
            index,
            dest: m.destination().clone(),
            source: Box::new(source),
        })?;
    }
    if devices::needs_setup_dev(mounts_list) {
        let spec_devices = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default();
        devices::setup_dev(root.as_fd(), &spec_devices, opts.in_user_ns, opts.terminal)
            .map_err(Box::new)?;
    }
    Ok(())
}

/// Step 3: make `rootfs` the process's `/`. Without a mount namespace only chroot is possible.
pub fn enter(rootfs: &Path, no_pivot: bool, has_mount_ns: bool) -> Result<(), RootfsError> {
    let step = |step| {
        move |source| RootfsError::Enter {
            rootfs: rootfs.to_path_buf(),
            step,
            source,
        }
    };
    nix::unistd::chdir(rootfs).map_err(step("chdir"))?;
    if !has_mount_ns {
        // The rootfs has no /proc of ours: keep a way to reopen our own fds (the exec fifo).
        let dir = openat_fd(
            None,
            "/proc/self/fd",
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(step("open /proc/self/fd"))?;
        let _ = OWN_FD_DIR.set(dir);
        chroot_here().map_err(step("chroot"))?;
    } else if no_pivot {
        ms_move_root(rootfs).map_err(step("MS_MOVE"))?;
        chroot_here().map_err(step("chroot"))?;
    } else {
        pivot_root(rootfs)?;
    }
    devices::reopen_dev_null().map_err(Box::new)?;
    Ok(())
}

/// `/proc/self/fd` of init, opened before a chroot without a mount namespace (see [`enter`]).
static OWN_FD_DIR: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Reopens one of this process's descriptors (an O_PATH one, say) with `flags`, through
/// `/proc/self/fd`, or through the handle on it kept by [`enter`] when the root has no /proc.
/// Always `O_CLOEXEC`.
pub fn reopen_own_fd(fd: BorrowedFd<'_>, flags: OFlag) -> nix::Result<OwnedFd> {
    let name = fd.as_raw_fd().to_string();
    match OWN_FD_DIR.get() {
        Some(dir) => openat_fd(Some(dir.as_fd()), name.as_str(), flags, Mode::empty()),
        None => openat_fd(
            None,
            Path::new("/proc/self/fd").join(&name).as_path(),
            flags,
            Mode::empty(),
        ),
    }
}

fn chroot_here() -> nix::Result<()> {
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")
}

/// pivot_root(".", ".") without a put_old directory (the LXC trick runc and youki use).
fn pivot_root(rootfs: &Path) -> Result<(), RootfsError> {
    let step = |step| {
        move |source| RootfsError::Enter {
            rootfs: rootfs.to_path_buf(),
            step,
            source,
        }
    };
    let dir = OFlag::O_DIRECTORY | OFlag::O_RDONLY;
    let old = openat_fd(None, "/", dir, Mode::empty()).map_err(step("open /"))?;
    let new = openat_fd(None, rootfs, dir, Mode::empty()).map_err(step("open rootfs"))?;
    nix::unistd::fchdir(new.as_raw_fd()).map_err(step("fchdir rootfs"))?;
    nix::unistd::pivot_root(".", ".").map_err(step("pivot_root"))?;
    // "." is now the old root (stacked under the new one); be explicit anyway.
    nix::unistd::fchdir(old.as_raw_fd()).map_err(step("fchdir old root"))?;
    // rslave, not rprivate, so host unmounts still reach us but ours never reach the host.
    do_mount(
        None::<&Path>,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )
    .map_err(step("make old root rslave"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(step("detach old root"))?;
    nix::unistd::chdir("/").map_err(step("chdir /"))
}

/// --no-pivot: hide full proc/sysfs mounts outside the rootfs (chroot does not protect them),
/// then move the rootfs onto `/`. The cwd must be the rootfs.
fn ms_move_root(rootfs: &Path) -> nix::Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|_| Errno::EIO)?;
    let mut targets: Vec<PathBuf> = text
        .lines()
        .filter_map(MountInfoLine::parse)
        .filter(|mi| mi.root == Path::new("/") && (mi.fstype == "proc" || mi.fstype == "sysfs"))
        .filter(|mi| !mi.mountpoint.starts_with(rootfs))
        .map(|mi| mi.mountpoint)
        .collect();
    // Deepest first, so nested ones go before their parents.
    targets.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in targets {
        match do_mount(
            None::<&Path>,
            &p,
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
        ) {
            Err(Errno::ENOENT) => continue,
            other => other?,
        }
        match nix::mount::umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::EPERM) => {
                do_mount(Some("tmpfs"), &p, Some("tmpfs"), MsFlags::empty(), None)?
            }
            Err(e) => return Err(e),
        }
    }
    do_mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)
}

/// Steps 5 and 7 together.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    finalize(spec)?;
    protect_paths(spec)
}

/// Step 5 (after pivot_root and the console): rootfsPropagation on `/`, then the read-only
/// remounts that were deferred (tmpfs and /dev), then `root.readonly`.
pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    if let Some(p) = root_propagation(spec)? {
        // Private was already done to the rootfs's parent in prepare.
        if !p.contains(MsFlags::MS_PRIVATE) {
            set_propagation(Path::new("/"), p)?;
        }
    }
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let o = mounts::parse_options(m.options().as_deref().unwrap_or(&[]));
        if o.flags.contains(MsFlags::MS_RDONLY) && mounts::defers_readonly(m) && !o.bind {
            let dest = mounts::clean_in_root(m.destination());
            let fd = open_path(&dest).map_err(|source| RootfsError::Readonly {
                path: m.destination().clone(),
                source,
            })?;
            remount_bind(fd.as_fd(), m.destination(), o.flags, o.clear).map_err(Box::new)?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let fd = open_path(Path::new("/")).map_err(|source| RootfsError::Readonly {
            path: "/".into(),
            source,
        })?;
        remount_readonly(fd.as_fd(), Path::new("/")).map_err(Box::new)?;
    }
    Ok(())
}

/// Step 7: `linux.readonlyPaths`, then `linux.maskedPaths` (runc's order). Missing paths are
/// skipped.
pub fn protect_paths(spec: &Spec) -> Result<(), RootfsError> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    for p in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        readonly_path(Path::new(p))?;
    }
    let mut shared_tmpfs = None;
    for p in dedup_paths(linux.masked_paths().as_deref().unwrap_or(&[])) {
        mask_path_sharing(&p, &mut shared_tmpfs)?;
    }
    Ok(())
}

/// Each path once, in first-seen order, compared after cleaning (`/a/`, `/a/./` and `/a` are one
/// path): masking a path twice would stack a second mount that hides nothing more.
fn dedup_paths(paths: &[String]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    paths
        .iter()
        .map(|p| mounts::clean_in_root(Path::new(p)))
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

fn open_path(p: &Path) -> nix::Result<std::os::fd::OwnedFd> {
    openat_fd(None, p, OFlag::O_PATH, Mode::empty())
}

/// MS_BIND|MS_REMOUNT|MS_RDONLY, keeping nosuid/nodev/noexec that are already set (dropping
/// them is both a downgrade and, in a user namespace, EPERM).
fn remount_readonly(fd: BorrowedFd<'_>, path: &Path) -> Result<(), MountError> {
    let current = mount_flags_of(fd).map_err(|source| MountError::Remount {
        dest: path.to_path_buf(),
        flags: 0,
        source,
    })?;
    let keep = current & (LOCKED_FLAGS - MsFlags::MS_RDONLY);
    remount_bind(fd, path, MsFlags::MS_RDONLY | keep, MsFlags::empty())
}

/// Bind `path` onto itself (recursively) and remount it read-only. ENOENT is not an error.
pub fn readonly_path(path: &Path) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Readonly {
        path: path.to_path_buf(),
        source,
    };
    let fd = match open_path(path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let p = proc_fd_path(fd.as_fd());
    do_mount(Some(&p), &p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).map_err(err)?;
    let fd = open_path(path).map_err(err)?;
    remount_readonly(fd.as_fd(), path).map_err(Box::new)?;
    Ok(())
}

/// Hide `path`: a read-only empty tmpfs over a directory, /dev/null over anything else.
/// ENOENT is not an error.
pub fn mask_path(path: &Path) -> Result<(), RootfsError> {
    mask_path_sharing(path, &mut None)
}

/// [`mask_path`], with every masked directory showing one read-only empty tmpfs: the first
/// one mounted is kept in `shared` (an O_PATH handle on it) and bound over the next ones, so a
/// container with many masked directories costs one tmpfs instance, not one each.
fn mask_path_sharing(path: &Path, shared: &mut Option<OwnedFd>) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Mask {
        path: path.to_path_buf(),
        source,
    };
    let fd = match open_path(path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(err)?;
    let target = proc_fd_path(fd.as_fd());
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        if let Some(tmpfs) = shared.as_ref() {
            // A bind keeps the source mount's read-only flag.
            return do_mount(
                Some(&proc_fd_path(tmpfs.as_fd())),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(err);
        }
        do_mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )
        .map_err(err)?;
        *shared = Some(open_path(path).map_err(err)?);
        return Ok(());
    }
    let null = openat_fd(None, "/dev/null", OFlag::O_PATH, Mode::empty()).map_err(err)?;
    let nst = nix::sys::stat::fstat(null.as_raw_fd()).map_err(err)?;
    let is_null = SFlag::from_bits_truncate(nst.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
        && nst.st_rdev == nix::sys::stat::makedev(1, 3);
    if !is_null {
        // Someone replaced /dev/null; binding it would not mask anything.
        return Err(err(Errno::ENODEV));
    }
    do_mount(
        Some(&proc_fd_path(null.as_fd())),
        &target,
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, Mount, MountBuilder, RootBuilder, SpecBuilder};
    use std::io::Write;

    fn mount(dest: &str, typ: &str, src: &str, opts: &[&str]) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(src)
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn propagation_from_spec() {
        let spec = |p: &str| {
            SpecBuilder::default()
                .linux(
                    LinuxBuilder::default()
                        .rootfs_propagation(p)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        assert_eq!(
            root_propagation(&spec("rshared")).unwrap(),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(root_propagation(&spec("")).unwrap(), None);
        let e = root_propagation(&spec("sideways")).unwrap_err();
        assert!(e.to_string().contains("\"sideways\""), "{e}");
    }

    #[test]
    fn no_mount_ns_refuses_mounts() {
        let spec = SpecBuilder::default()
            .mounts(vec![mount("/proc", "proc", "proc", &[])])
            .build()
            .unwrap();
        let e = prepare(&spec, Path::new("/nonexistent"), &RootfsOptions::default()).unwrap_err();
        assert!(
            matches!(e, RootfsError::NoMountNamespace { count: 1 }),
            "{e}"
        );
    }

    // ---- root tests: everything risky happens in a forked child ----

    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("runz-test-rootfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Runs `f` in a forked child and returns its exit code. The child writes diagnostics
    /// straight to fd 2 (the harness's capture does not follow a fork).
    fn in_child(f: impl FnOnce() -> Result<(), String>) -> i32 {
        // SAFETY: the child only runs `f` and then _exits; it never returns into the harness.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                    Ok(Ok(())) => 0,
                    Ok(Err(msg)) => {
                        let _ = writeln!(std::io::stderr(), "child failed: {msg}");
                        1
                    }
                    Err(_) => 2,
                };
                // SAFETY: _exit is always safe; it skips the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).expect("waitpid") {
                    nix::sys::wait::WaitStatus::Exited(_, c) => c,
                    other => panic!("child ended with {other:?}"),
                }
            }
        }
    }

    fn check(cond: bool, what: &str) -> Result<(), String> {
        if cond {
            Ok(())
        } else {
            Err(what.to_string())
        }
    }

    /// Mount options (field 6) of the mountinfo entry at `mp`, last one wins.
    fn mount_opts(mp: &str) -> Result<String, String> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        text.lines()
            .filter_map(MountInfoLine::parse)
            .rfind(|m| m.mountpoint == Path::new(mp))
            .map(|m| format!("{} {}", m.mount_opts, m.fstype))
            .ok_or_else(|| format!("{mp} is not a mount point"))
    }

    fn has_opt(mp: &str, opt: &str) -> Result<bool, String> {
        Ok(mount_opts(mp)?.split([',', ' ']).any(|o| o == opt))
    }

    fn build_rootfs(base: &Path) -> PathBuf {
        let r = base.join("rootfs");
        for d in [
            "proc",
            "sys",
            "dev",
            "etc",
            "masked_dir",
            "ro_dir",
            "tmpcopy/sub",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/secret"), "secret").unwrap();
        std::fs::write(r.join("masked_dir/inside"), "x").unwrap();
        std::fs::write(r.join("tmpcopy/sub/keep.txt"), "kept").unwrap();
        std::os::unix::fs::symlink("keep.txt", r.join("tmpcopy/sub/link")).unwrap();
        std::fs::create_dir_all(base.join("bindsrc")).unwrap();
        std::fs::write(base.join("bindsrc/hello"), "hi").unwrap();
        r
    }

    fn parent_mountinfo_clean(tag: &str) {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let leaked: Vec<&str> = text.lines().filter(|l| l.contains(tag)).collect();
        assert!(
            leaked.is_empty(),
            "mounts leaked into the test's namespace: {leaked:?}"
        );
    }

    fn base_spec(base: &Path, extra: Vec<Mount>) -> Spec {
        let mut mounts = vec![
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777"],
            ),
            mount(
                "/data",
                "bind",
                base.join("bindsrc").to_str().unwrap(),
                &["rbind", "ro", "nosuid"],
            ),
            mount("/tmpcopy", "tmpfs", "tmpfs", &["tmpcopyup", "ro"]),
        ];
        mounts.extend(extra);
        SpecBuilder::default()
            .root(
                RootBuilder::default()
                    .path("rootfs")
                    .readonly(true)
                    .build()
                    .unwrap(),
            )
            .mounts(mounts)
            .linux(
                LinuxBuilder::default()
                    .masked_paths(vec![
                        "/etc/secret".into(),
                        "/masked_dir".into(),
                        "/nonexistent".into(),
                    ])
                    .readonly_paths(vec!["/proc/sys".into(), "/ro_dir".into(), "/nope".into()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    /// Checks shared by both root tests, run inside the container view.
    fn check_common(base_tag: &str) -> Result<(), String> {
        let null = nix::sys::stat::stat("/dev/null").map_err(|e| format!("stat /dev/null: {e}"))?;
        check(
            SFlag::from_bits_truncate(null.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR,
            "/dev/null not a char device",
        )?;
        check(
            null.st_rdev == nix::sys::stat::makedev(1, 3),
            "/dev/null is not 1:3",
        )?;
        let ptmx =
            std::fs::read_link("/dev/ptmx").map_err(|e| format!("readlink /dev/ptmx: {e}"))?;
        check(
            ptmx == Path::new("pts/ptmx"),
            "/dev/ptmx is not -> pts/ptmx",
        )?;
        check(Path::new("/dev/pts/ptmx").exists(), "devpts not mounted")?;
        check(
            std::fs::read_link("/dev/fd").ok() == Some("/proc/self/fd".into()),
            "/dev/fd link",
        )?;
        check(
            std::fs::metadata("/dev/console")
                .map(|m| m.len() == 0)
                .unwrap_or(false),
            "/dev/console placeholder",
        )?;
        check(
            std::fs::read_to_string("/data/hello").ok().as_deref() == Some("hi"),
            "bind content",
        )?;
        check(
            has_opt("/data", "ro")? && has_opt("/data", "nosuid")?,
            "/data not ro,nosuid",
        )?;
        check(has_opt("/", "ro")?, "/ not read-only")?;
        let e = std::fs::write("/newfile", "x").unwrap_err();
        check(
            e.raw_os_error() == Some(libc::EROFS),
            "write to / did not give EROFS",
        )?;
        check(!has_opt("/dev", "ro")?, "/dev should stay rw")?;
        check(
            std::fs::read_to_string("/etc/secret")
                .map_err(|e| e.to_string())?
                .is_empty(),
            "masked file not empty",
        )?;
        check(
            std::fs::read_dir("/masked_dir")
                .map_err(|e| e.to_string())?
                .count()
                == 0,
            "masked dir not empty",
        )?;
        check(has_opt("/masked_dir", "ro")?, "masked dir not ro")?;
        check(has_opt("/ro_dir", "ro")?, "readonly path not ro")?;
        check(
            std::fs::read_to_string("/tmpcopy/sub/keep.txt")
                .ok()
                .as_deref()
                == Some("kept"),
            "tmpcopyup content",
        )?;
        check(
            std::fs::read_link("/tmpcopy/sub/link").ok() == Some("keep.txt".into()),
            "tmpcopyup symlink",
        )?;
        check(
            has_opt("/tmpcopy", "ro")? && mount_opts("/tmpcopy")?.ends_with("tmpfs"),
            "tmpcopy not ro tmpfs",
        )?;
        check(
            std::env::current_dir().ok() == Some("/".into()),
            "cwd is not /",
        )?;
        // The old root is gone: nothing in our mount table mentions the host path.
        let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let outside: Vec<&str> = mi
            .lines()
            .filter(|l| {
                MountInfoLine::parse(l)
                    .is_some_and(|m| m.mountpoint.to_string_lossy().contains(base_tag))
            })
            .collect();
        check(
            outside.is_empty(),
            &format!("host mounts still visible: {outside:?}"),
        )?;
        check(!Path::new("/bindsrc").exists(), "host paths visible")
    }

    #[test]
    fn full_rootfs_in_a_mount_namespace() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let s = scratch("full");
        let rootfs = build_rootfs(&s.0);
        let spec = base_spec(
            &s.0,
            vec![
                mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
                mount(
                    "/sys",
                    "sysfs",
                    "sysfs",
                    &["nosuid", "noexec", "nodev", "ro"],
                ),
                mount(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    &["nosuid", "noexec", "nodev", "relatime", "ro"],
                ),
                mount(
                    "/dev/mqueue",
                    "mqueue",
                    "mqueue",
                    &["nosuid", "noexec", "nodev"],
                ),
            ],
        );
        let tag = s.0.file_name().unwrap().to_string_lossy().to_string();
        let code = in_child(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            // Belt and braces: nothing this child mounts may reach the test's namespace.
            set_propagation(Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)
                .map_err(|e| e.to_string())?;
            let opts = RootfsOptions {
                terminal: true,
                has_mount_ns: true,
                ..Default::default()
            };
            prepare(&spec, &rootfs, &opts).map_err(|e| format!("prepare: {e}"))?;
            enter(&rootfs, false, true).map_err(|e| format!("enter: {e}"))?;
            finish(&spec).map_err(|e| format!("finish: {e}"))?;
            let proc = nix::sys::statfs::statfs("/proc").map_err(|e| e.to_string())?;
            check(
                proc.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC,
                "/proc is not procfs",
            )?;
            check(Path::new("/proc/self/status").exists(), "/proc not usable")?;
            check(has_opt("/sys", "ro")?, "/sys not ro")?;
            check(
                has_opt("/proc/sys", "ro")? && has_opt("/proc/sys", "nosuid")?,
                "/proc/sys not ro,nosuid",
            )?;
            check(has_opt("/sys/fs/cgroup", "ro")?, "cgroup tmpfs not ro")?;
            check(
                Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists(),
                "memory hierarchy missing",
            )?;
            check(
                mount_opts("/sys/fs/cgroup/unified")?.ends_with("cgroup2"),
                "unified missing",
            )?;
            check(
                has_opt("/sys/fs/cgroup/memory", "ro")?,
                "memory hierarchy not ro",
            )?;
            check(mount_opts("/dev/mqueue")?.ends_with("mqueue"), "mqueue")?;
            check(
                mount_opts("/dev/null").is_err(),
                "/dev/null should be a node, not a mount",
            )?;
            check_common(&tag)
        });
        assert_eq!(code, 0, "child failed (see stderr)");
        parent_mountinfo_clean(&tag);
    }

    #[test]
    fn rootfs_in_a_user_namespace() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let s = scratch("userns");
        let rootfs = build_rootfs(&s.0);
        let spec = base_spec(
            &s.0,
            vec![
                // proc needs a pid namespace owned by the userns: bind the host's instead.
                mount(
                    "/proc",
                    "bind",
                    "/proc",
                    &["rbind", "nosuid", "noexec", "nodev"],
                ),
                // sysfs is refused without an owned netns: must fall back to rbind of /sys.
                mount(
                    "/sys",
                    "sysfs",
                    "sysfs",
                    &["nosuid", "noexec", "nodev", "ro"],
                ),
            ],
        );
        let tag = s.0.file_name().unwrap().to_string_lossy().to_string();
        let code = in_child(|| {
            use nix::sched::CloneFlags;
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
                .map_err(|e| e.to_string())?;
            std::fs::write("/proc/self/setgroups", "deny").map_err(|e| e.to_string())?;
            std::fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| e.to_string())?;
            std::fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| e.to_string())?;
            let opts = RootfsOptions {
                terminal: true,
                in_user_ns: true,
                has_mount_ns: true,
                ..Default::default()
            };
            prepare(&spec, &rootfs, &opts).map_err(|e| format!("prepare: {e}"))?;
            enter(&rootfs, false, true).map_err(|e| format!("enter: {e}"))?;
            finish(&spec).map_err(|e| format!("finish: {e}"))?;
            check(
                mount_opts("/sys")?.ends_with("sysfs") && has_opt("/sys", "ro")?,
                "/sys fallback not ro sysfs",
            )?;
            // Devices are bind mounts of the host's, not mknod'ed nodes.
            check(
                mount_opts("/dev/null").is_ok(),
                "/dev/null is not a bind mount",
            )?;
            check_common(&tag)
        });
        assert_eq!(code, 0, "child failed (see stderr)");
        parent_mountinfo_clean(&tag);
    }

    #[test]
    fn no_pivot_moves_the_root() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let s = scratch("nopivot");
        let rootfs = build_rootfs(&s.0);
        let spec = base_spec(&s.0, vec![mount("/proc", "proc", "proc", &[])]);
        let tag = s.0.file_name().unwrap().to_string_lossy().to_string();
        let code = in_child(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            set_propagation(Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)
                .map_err(|e| e.to_string())?;
            let opts = RootfsOptions {
                terminal: true,
                has_mount_ns: true,
                ..Default::default()
            };
            prepare(&spec, &rootfs, &opts).map_err(|e| format!("prepare: {e}"))?;
            enter(&rootfs, true, true).map_err(|e| format!("enter: {e}"))?;
            finish(&spec).map_err(|e| format!("finish: {e}"))?;
            check(
                Path::new("/etc/secret").exists() && Path::new("/dev/null").exists(),
                "not in the rootfs",
            )?;
            check(has_opt("/", "ro")?, "/ not read-only")?;
            check(!Path::new("/bindsrc").exists(), "host paths visible")
        });
        assert_eq!(code, 0, "child failed (see stderr)");
        parent_mountinfo_clean(&tag);
    }

    #[test]
    fn cgroup_mount_in_a_cgroup_namespace() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let s = scratch("cgns");
        let rootfs = build_rootfs(&s.0);
        let spec = SpecBuilder::default()
            .mounts(vec![
                mount("/proc", "proc", "proc", &[]),
                mount(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    &["nosuid", "noexec", "nodev"],
                ),
            ])
            .build()
            .unwrap();
        let tag = s.0.file_name().unwrap().to_string_lossy().to_string();
        let code = in_child(|| {
            use nix::sched::CloneFlags;
            nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP)
                .map_err(|e| e.to_string())?;
            set_propagation(Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)
                .map_err(|e| e.to_string())?;
            let opts = RootfsOptions {
                has_mount_ns: true,
                new_cgroup_ns: true,
                ..Default::default()
            };
            prepare(&spec, &rootfs, &opts).map_err(|e| format!("prepare: {e}"))?;
            enter(&rootfs, false, true).map_err(|e| format!("enter: {e}"))?;
            finish(&spec).map_err(|e| format!("finish: {e}"))?;
            // Fresh mounts are rooted at the namespace root: mountinfo shows root "/".
            let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
            let mem = mi
                .lines()
                .filter_map(MountInfoLine::parse)
                .find(|m| m.mountpoint == Path::new("/sys/fs/cgroup/memory"))
                .ok_or("no memory hierarchy")?;
            check(
                mem.fstype == "cgroup" && mem.root == Path::new("/"),
                &format!("memory mount {mem:?}"),
            )?;
            check(
                mount_opts("/sys/fs/cgroup/systemd")?.ends_with("cgroup"),
                "name=systemd missing",
            )?;
            check(
                mount_opts("/sys/fs/cgroup/unified")?.ends_with("cgroup2"),
                "unified missing",
            )?;
            let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
            check(
                own.lines().all(|l| l.ends_with(":/")),
                &format!("not in a cgroupns: {own}"),
            )?;
            check(
                Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists(),
                "memory not usable",
            )
        });
        assert_eq!(code, 0, "child failed (see stderr)");
        parent_mountinfo_clean(&tag);
    }

    #[test]
    fn symlink_cannot_redirect_a_mount_to_proc() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let s = scratch("procsym");
        let rootfs = build_rootfs(&s.0);
        std::os::unix::fs::symlink("/proc/self", rootfs.join("evil")).unwrap();
        let spec = SpecBuilder::default()
            .mounts(vec![mount("/evil/attr", "tmpfs", "tmpfs", &[])])
            .build()
            .unwrap();
        let tag = s.0.file_name().unwrap().to_string_lossy().to_string();
        let code = in_child(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            set_propagation(Path::new("/"), MsFlags::MS_SLAVE | MsFlags::MS_REC)
                .map_err(|e| e.to_string())?;
            let opts = RootfsOptions {
                has_mount_ns: true,
                ..Default::default()
            };
            match prepare(&spec, &rootfs, &opts) {
                Err(RootfsError::Mount { source, .. })
                    if matches!(*source, MountError::ProcMount { .. }) =>
                {
                    Ok(())
                }
                other => Err(format!("expected a /proc refusal, got {other:?}")),
            }
        });
        assert_eq!(code, 0, "child failed (see stderr)");
        parent_mountinfo_clean(&tag);
    }
}
