//! mounts: the OCI mount option table, safe path resolution inside the rootfs, and one mount.
//!
//! Everything here runs in the container's init, inside its own mount namespace, *before*
//! pivot_root: paths on the host are still visible, and every destination is resolved relative to
//! an `O_PATH` descriptor of the rootfs so that a symlink planted in the image can never send a
//! mount outside the rootfs. The actual `mount(2)` target is `/proc/self/fd/N` of the resolved
//! descriptor (runc's `WithProcfd`), so the path is never resolved twice.
//!
//! The option table mirrors runc's `libcontainer/specconv` (`mountFlags`,
//! `mountPropagationMapping`, `recAttrFlags`, `extensionFlags`).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{Mount, Spec};
use zones_mountapi as mountapi;

/// Errors from mounting one spec entry. Each names the offending destination or value.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("resolving {path:?} inside the rootfs: {source}")]
    Resolve { path: PathBuf, source: Errno },
    #[error("mount destination {dest:?}: {reason}")]
    InvalidDestination { dest: PathBuf, reason: String },
    #[error("mount source {src:?} for {dest:?}: {source}")]
    Source {
        src: PathBuf,
        dest: PathBuf,
        source: Errno,
    },
    #[error("mount {fstype} {src:?} on {dest:?} (flags {flags:#x}, data {data:?}): {source}")]
    Mount {
        src: String,
        dest: PathBuf,
        fstype: String,
        flags: u64,
        data: String,
        source: Errno,
    },
    #[error("remount {dest:?} with flags {flags:#x}: {source}")]
    Remount {
        dest: PathBuf,
        flags: u64,
        source: Errno,
    },
    #[error("setting propagation {flags:#x} on {dest:?}: {source}")]
    Propagation {
        dest: PathBuf,
        flags: u64,
        source: Errno,
    },
    #[error("mount_setattr on {dest:?} (set {set:#x}, clear {clear:#x}): {source}")]
    SetAttr {
        dest: PathBuf,
        set: u64,
        clear: u64,
        source: Errno,
    },
    #[error("{dest:?} cannot be mounted: {reason}")]
    ProcMount { dest: PathBuf, reason: String },
    /// runc's text: a proc or sysfs destination that exists as a symlink (or a file) could put
    /// the filesystem anywhere the link points.
    #[error("error mounting {fstype:?} to rootfs at {dest:?}: filesystem {fstype:?} must be mounted on ordinary directory")]
    NotDirectory { dest: PathBuf, fstype: String },
    #[error("mount {dest:?}: {what} is not supported")]
    Unsupported { dest: PathBuf, what: String },
    #[error("tmpcopyup into {dest:?} at {path:?}: {source}")]
    CopyUp {
        dest: PathBuf,
        path: PathBuf,
        source: Errno,
    },
    #[error("cgroup mount: {what}: {source}")]
    Cgroup {
        what: String,
        source: std::io::Error,
    },
    #[error("cgroup mount: no cgroup hierarchy found in /proc/self/mountinfo")]
    NoCgroups,
}

// ---------------------------------------------------------------------------------------------
// The option table
// ---------------------------------------------------------------------------------------------

/// `mount_setattr(2)` attribute bits (linux/mount.h); not in libc.
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
pub const MOUNT_ATTR_ATIME: u64 = 0x0000_0070;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// `MS_NOSYMFOLLOW` (5.10+), missing from nix's `MsFlags`.
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);
/// `MS_POSIXACL` for the `acl`/`noacl` options.
const MS_POSIXACL: MsFlags = MsFlags::MS_POSIXACL;

/// Flags a mount in a user namespace inherits locked from its source (cannot be cleared).
pub const LOCKED_FLAGS: MsFlags =
    MsFlags::from_bits_retain(libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
/// The atime flags: on a locked mount they must be kept as they are.
pub const ATIME_FLAGS: MsFlags = MsFlags::from_bits_retain(
    libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME | libc::MS_STRICTATIME,
);

/// (option, clear?, flag): plain `mount(2)` flags.
const FLAG_TABLE: &[(&str, bool, MsFlags)] = &[
    ("acl", false, MS_POSIXACL),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noacl", true, MS_POSIXACL),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("symfollow", true, MS_NOSYMFOLLOW),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

/// Propagation options; each becomes one extra `mount(2)` call after the mount.
const PROPAGATION_TABLE: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Recursive attributes, applied with `mount_setattr(AT_RECURSIVE)`: (option, clear?, attr).
const REC_ATTR_TABLE: &[(&str, bool, u64)] = &[
    ("rro", false, MOUNT_ATTR_RDONLY),
    ("rrw", true, MOUNT_ATTR_RDONLY),
    ("rnosuid", false, MOUNT_ATTR_NOSUID),
    ("rsuid", true, MOUNT_ATTR_NOSUID),
    ("rnodev", false, MOUNT_ATTR_NODEV),
    ("rdev", true, MOUNT_ATTR_NODEV),
    ("rnoexec", false, MOUNT_ATTR_NOEXEC),
    ("rexec", true, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, MOUNT_ATTR_RELATIME),
    ("rnoatime", false, MOUNT_ATTR_NOATIME),
    ("ratime", true, MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
];

/// Runtime extensions that are not kernel flags.
const EXTENSION_TABLE: &[&str] = &["tmpcopyup", "idmap", "ridmap"];

/// Extensions that need runtime work beyond `mount(2)` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountExtensions {
    /// `tmpcopyup`: copy the directory's previous contents into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap`: id-mapped mount (the user namespace comes from the parent, see `idmap.rs`).
    pub idmap: bool,
    /// `ridmap`: recursive id-mapped mount.
    pub ridmap: bool,
}

/// The parsed form of a mount's `options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to pass to `mount(2)`.
    pub flags: MsFlags,
    /// Flags the user explicitly cleared (`rw`, `suid`, `dev`, ...). Needed to refuse keeping a
    /// locked flag the user asked to be off.
    pub clear: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// `mount_setattr` attributes to set recursively.
    pub rec_attr_set: u64,
    /// `mount_setattr` attributes to clear recursively.
    pub rec_attr_clear: u64,
    /// Filesystem-specific data: every unknown option, joined by ','.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind` (recursive bind) was given.
    pub rbind: bool,
    /// Non-kernel extensions.
    pub extra: MountExtensions,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            rec_attr_set: 0,
            rec_attr_clear: 0,
            data: String::new(),
            bind: false,
            rbind: false,
            extra: MountExtensions::default(),
        }
    }
}

impl MountOptions {
    /// Whether any recursive attribute was requested.
    pub fn has_rec_attrs(&self) -> bool {
        self.rec_attr_set != 0 || self.rec_attr_clear != 0
    }
}

/// Parses OCI mount options the way runc does; later options override earlier ones.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let o = opt.as_str();
        if let Some(&(_, clear, flag)) = FLAG_TABLE.iter().find(|(n, _, _)| *n == o) {
            apply_flag(&mut out, clear, flag);
            if o == "bind" || o == "rbind" {
                out.bind = true;
                out.rbind |= o == "rbind";
            }
        } else if let Some(&(_, flag)) = PROPAGATION_TABLE.iter().find(|(n, _)| *n == o) {
            out.propagation.push(flag);
        } else if let Some(&(_, clear, attr)) = REC_ATTR_TABLE.iter().find(|(n, _, _)| *n == o) {
            apply_rec_attr(&mut out, clear, attr);
        } else if EXTENSION_TABLE.contains(&o) {
            match o {
                "tmpcopyup" => out.extra.tmpcopyup = true,
                "idmap" => out.extra.idmap = true,
                _ => out.extra.ridmap = true,
            }
        } else if !o.is_empty() {
            data.push(o);
        }
    }
    out.data = data.join(",");
    out
}

fn apply_flag(out: &mut MountOptions, clear: bool, flag: MsFlags) {
    if clear {
        out.flags.remove(flag);
        out.clear.insert(flag);
    } else {
        out.flags.insert(flag);
        out.clear.remove(flag);
    }
}

fn apply_rec_attr(out: &mut MountOptions, clear: bool, attr: u64) {
    if clear {
        out.rec_attr_set &= !attr;
        // mount_setattr(2) takes the atime mode as one field: clearing part of it is EINVAL,
        // so `ratime`/`rnostrictatime` clear the whole field (back to relatime) unless another
        // atime option sets a mode again later.
        out.rec_attr_clear |= if attr & MOUNT_ATTR_ATIME == attr && attr != 0 {
            MOUNT_ATTR_ATIME
        } else {
            attr
        };
    } else {
        out.rec_attr_set |= attr;
        out.rec_attr_clear &= !attr;
        // mount_setattr(2): an atime setting must also clear MOUNT_ATTR__ATIME.
        if attr & MOUNT_ATTR_ATIME == attr {
            out.rec_attr_clear |= MOUNT_ATTR_ATIME;
        }
    }
}

/// Parses one propagation keyword (`linux.rootfsPropagation`); None if unknown.
pub fn parse_propagation(s: &str) -> Option<MsFlags> {
    PROPAGATION_TABLE
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, f)| *f)
}

/// Every mount option this runtime understands, for `runz features`.
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FLAG_TABLE.iter().map(|(n, _, _)| *n).collect();
    v.extend(PROPAGATION_TABLE.iter().map(|(n, _)| *n));
    v.extend(REC_ATTR_TABLE.iter().map(|(n, _, _)| *n));
    v.extend(EXTENSION_TABLE.iter());
    v.sort_unstable();
    v
}

// ---------------------------------------------------------------------------------------------
// Small syscall helpers
// ---------------------------------------------------------------------------------------------

/// `openat(2)` returning an `OwnedFd`; always `O_CLOEXEC`.
pub(crate) fn openat_fd<P: ?Sized + nix::NixPath>(
    dir: Option<BorrowedFd<'_>>,
    path: &P,
    flags: OFlag,
    mode: Mode,
) -> nix::Result<OwnedFd> {
    let raw = nix::fcntl::openat(
        dir.map(|d| d.as_raw_fd()),
        path,
        flags | OFlag::O_CLOEXEC,
        mode,
    )?;
    // SAFETY: openat just returned this descriptor, nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The `/proc/self/fd/N` path naming `fd`; usable as a mount source or target.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Current mount flags of the mount holding `fd`, as `MsFlags` (ST_* == MS_* for these bits).
pub fn mount_flags_of(fd: BorrowedFd<'_>) -> nix::Result<MsFlags> {
    let st = nix::sys::statvfs::fstatvfs(fd)?;
    Ok(MsFlags::from_bits_truncate(st.flags().bits()) & (LOCKED_FLAGS | ATIME_FLAGS))
}

// ---------------------------------------------------------------------------------------------
// Safe path resolution inside the rootfs
// ---------------------------------------------------------------------------------------------

/// What to create when the last component of a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
}

/// A path resolved inside the rootfs: an `O_PATH` descriptor and the symlink-free path (absolute,
/// relative to the rootfs) it was found at.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

const MAX_SYMLINKS: usize = 40;
const MAX_STEPS: usize = 4096;

/// Splits `path` into the components a walk must visit: `..` is kept, `.` and `/` are dropped.
fn walk_components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Lexically cleans `path` as if it were absolute inside a root: `..` never goes above `/`.
pub fn clean_in_root(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in walk_components(path) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// Resolves `path` inside the directory `root` as if `root` were `/`, following symlinks inside
/// the root only (absolute link targets and `..` never leave it; securejoin semantics). Every
/// directory is entered with `O_NOFOLLOW`, so a component swapped for a symlink during the walk
/// makes it fail instead of escape. With `create`, missing intermediate directories are created
/// (0755) and a missing last component is created as `create` says.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Option<NodeKind>,
) -> Result<Resolved, MountError> {
    let err = |source| MountError::Resolve {
        path: path.to_path_buf(),
        source,
    };
    let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
    let mut pending = walk_components(path);
    let (mut links, mut steps) = (0usize, 0usize);
    while let Some(comp) = pending.pop_front() {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(err(Errno::ELOOP));
        }
        if comp == ".." {
            stack.pop();
            continue;
        }
        let cur = stack.last().map(|(fd, _)| fd.as_fd()).unwrap_or(root);
        let last = pending.is_empty();
        match nix::sys::stat::fstatat(
            Some(cur.as_raw_fd()),
            comp.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => {
                let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                if fmt == SFlag::S_IFLNK {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(err(Errno::ELOOP));
                    }
                    let target = nix::fcntl::readlinkat(Some(cur.as_raw_fd()), comp.as_os_str())
                        .map_err(err)?;
                    let target = PathBuf::from(target);
                    if target.is_absolute() {
                        stack.clear();
                    }
                    for c in walk_components(&target).into_iter().rev() {
                        pending.push_front(c);
                    }
                    continue;
                }
                let is_dir = fmt == SFlag::S_IFDIR;
                if !is_dir && !last {
                    return Err(err(Errno::ENOTDIR));
                }
                let mut flags = OFlag::O_PATH | OFlag::O_NOFOLLOW;
                if is_dir {
                    flags |= OFlag::O_DIRECTORY;
                }
                let fd =
                    openat_fd(Some(cur), comp.as_os_str(), flags, Mode::empty()).map_err(err)?;
                stack.push((fd, comp));
            }
            Err(Errno::ENOENT) if create.is_some() => {
                let kind = if last {
                    create.unwrap_or(NodeKind::Dir)
                } else {
                    NodeKind::Dir
                };
                create_node(cur, &comp, kind).map_err(err)?;
                // Look at the new node again: if something raced us, it is resolved normally.
                pending.push_front(comp);
            }
            Err(e) => return Err(err(e)),
        }
    }
    let path_out = PathBuf::from("/").join(
        stack
            .iter()
            .map(|(_, n)| n.as_os_str())
            .collect::<PathBuf>(),
    );
    let fd = match stack.pop() {
        Some((fd, _)) => fd,
        None => openat_fd(
            Some(root),
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .map_err(err)?,
    };
    Ok(Resolved { fd, path: path_out })
}

/// Creates one missing node in `dir`; an existing node (lost race) is fine.
fn create_node(dir: BorrowedFd<'_>, name: &OsStr, kind: NodeKind) -> nix::Result<()> {
    let res = match kind {
        NodeKind::Dir => {
            nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
        }
        NodeKind::File => openat_fd(
            Some(dir),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o755),
        )
        .map(drop),
    };
    match res {
        Err(Errno::EEXIST) => Ok(()),
        other => other,
    }
}

/// Opens the parent directory of `path` inside `root` (creating it if asked) and returns it with
/// the last component's name. For `mknodat`/`symlinkat` that must not follow the last component.
pub fn open_parent_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    create: bool,
) -> Result<(Resolved, OsString), MountError> {
    let clean = clean_in_root(path);
    let name = clean
        .file_name()
        .ok_or_else(|| MountError::InvalidDestination {
            dest: path.to_path_buf(),
            reason: "resolves to the rootfs itself".into(),
        })?
        .to_os_string();
    let parent = clean.parent().unwrap_or(Path::new("/"));
    let dir = open_in_root(root, parent, create.then_some(NodeKind::Dir))?;
    Ok((dir, name))
}

// ---------------------------------------------------------------------------------------------
// One mount
// ---------------------------------------------------------------------------------------------

/// What `mount_one` needs to know besides the mount entry.
pub struct MountContext<'a> {
    /// `O_PATH` descriptor of the (already self-bind-mounted) rootfs.
    pub root: BorrowedFd<'a>,
    /// Host path of the rootfs (informational; all resolution goes through `root`).
    pub rootfs: &'a Path,
    /// Relative bind sources are relative to this directory (the bundle); else to the cwd.
    pub bundle: Option<&'a Path>,
    /// The init runs in a user namespace: locked flags, sysfs/cgroup fallbacks.
    pub in_user_ns: bool,
    /// The init has its own cgroup namespace (already unshared): cgroup mounts are fresh.
    pub new_cgroup_ns: bool,
    /// Host cgroup layout; discovered from /proc/self on first use if None.
    pub cgroup: Option<&'a CgroupLayout>,
    /// For an id-mapped mount: the user namespace (an open descriptor) holding its mappings.
    pub idmap_userns: Option<std::os::fd::RawFd>,
    /// A detached tree of this mount's source made on the host side ([`host_trees`]): the
    /// id-mapped clone, or the bind source for when the container's user namespace cannot
    /// reach it.
    pub host_tree: Option<std::os::fd::RawFd>,
}

/// Mounts one spec entry into the rootfs. Read-only on tmpfs and on `/dev` is deferred to
/// [`crate::rootfs::finish`] (as runc), so devices and copy-ups can still be written.
pub fn mount_one(ctx: &MountContext<'_>, m: &Mount) -> Result<(), MountError> {
    let dest = m.destination();
    // A relative destination is taken relative to "/" (runc warns and does the same).
    if clean_in_root(dest) == Path::new("/") {
        return Err(MountError::InvalidDestination {
            dest: dest.clone(),
            reason: "cannot mount over the rootfs itself".into(),
        });
    }
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    if opts.extra.idmap
        || opts.extra.ridmap
        || m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
    {
        if let Some(tree) = ctx.host_tree {
            return move_host_tree(ctx, dest, tree, &opts);
        }
        return match ctx.idmap_userns {
            Some(userns) => mount_bind_idmapped(ctx, m, &opts, userns),
            None => Err(MountError::Unsupported {
                dest: dest.clone(),
                what: "an id-mapped mount without the user namespace of its mappings (a bind \
                       mount with uidMappings/gidMappings, or idmap in a user namespace)"
                    .into(),
            }),
        };
    }
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = opts.bind || typ == "bind";
    if is_bind {
        return mount_bind(ctx, m, &opts);
    }
    match typ {
        "cgroup" => mount_cgroup(ctx, m, &opts),
        "sysfs" => match mount_fs(ctx, m, &opts, "sysfs") {
            Err(MountError::Mount {
                source: Errno::EPERM | Errno::EBUSY,
                ..
            }) => {
                // A userns without its own netns may not mount sysfs: rbind the host's /sys
                // (as runc).
                let mut o = opts.clone();
                o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                o.rbind = true;
                bind_from(ctx, dest, Path::new("/sys"), &o)
            }
            other => other,
        },
        "" => Err(MountError::InvalidDestination {
            dest: dest.clone(),
            reason: "mount has no type and is not a bind mount".into(),
        }),
        other => mount_fs(ctx, m, &opts, other),
    }
}

/// Source of a bind mount, made absolute against the bundle.
fn bind_source(ctx: &MountContext<'_>, m: &Mount) -> Result<PathBuf, MountError> {
    source_path(ctx.bundle, m)
}

fn source_path(bundle: Option<&Path>, m: &Mount) -> Result<PathBuf, MountError> {
    let src = m
        .source()
        .clone()
        .ok_or_else(|| MountError::InvalidDestination {
            dest: m.destination().clone(),
            reason: "bind mount without a source".into(),
        })?;
    Ok(match (src.is_absolute(), bundle) {
        (false, Some(b)) => b.join(src),
        _ => src,
    })
}

/// Run by the runtime on the host side, before init enters the container's user namespace:
/// per spec mount, a detached tree of what init could not make itself from inside it.
/// - an id-mapped mount: its source cloned and marked with the mapping (`MOUNT_ATTR_IDMAP`
///   needs privilege over the source's filesystem, which root of the container lacks);
/// - a bind mount: its source cloned (recursively for `rbind`), used by init only if it cannot
///   open the source itself (EACCES/EPERM: a 0700 directory of host root, as runc opens
///   sources before entering the user namespace). Init tries its own path first so that a
///   source under an earlier mount of the spec still sees that mount.
///
/// Without a user namespace in the spec nothing is needed: every entry is None.
pub fn host_trees(
    spec: &Spec,
    bundle: &Path,
    idmaps: &[Option<OwnedFd>],
) -> Result<Vec<Option<OwnedFd>>, MountError> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let in_userns = spec.linux().as_ref().is_some_and(|l| {
        l.namespaces()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
    });
    if !in_userns {
        return Ok(mounts.iter().map(|_| None).collect());
    }
    let mut out = Vec::with_capacity(mounts.len());
    for (i, m) in mounts.iter().enumerate() {
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let is_bind = opts.bind || m.typ().as_deref() == Some("bind");
        let userns = idmaps.get(i).and_then(|u| u.as_ref());
        let tree = match userns {
            Some(userns) => {
                let src = source_path(Some(bundle), m)?;
                let dest = m.destination();
                let recursive = crate::idmap::recursive(m);
                let tree = crate::idmap::clone_mapped(dest, &src, userns.as_fd(), recursive)
                    .map_err(|e| MountError::Unsupported {
                        dest: dest.clone(),
                        what: e.to_string(),
                    })?;
                Some(tree)
            }
            None if is_bind => {
                // A source that cannot be cloned here is reported by init, which tries it too.
                let src = source_path(Some(bundle), m)?;
                std::ffi::CString::new(src.as_os_str().as_encoded_bytes())
                    .ok()
                    .and_then(|c| mountapi::clone_tree(&c, opts.rbind).ok())
            }
            None => None,
        };
        out.push(tree);
    }
    Ok(out)
}

/// Moves a tree made by [`host_trees`] onto `dest` inside the root, then finishes it as a bind.
fn move_host_tree(
    ctx: &MountContext<'_>,
    dest: &Path,
    tree: std::os::fd::RawFd,
    opts: &MountOptions,
) -> Result<(), MountError> {
    // SAFETY: the caller (init) keeps the descriptors of host_trees open for the whole of
    // rootfs::prepare.
    let tree = unsafe { BorrowedFd::borrow_raw(tree) };
    let st = nix::sys::stat::fstat(tree.as_raw_fd()).map_err(|source| MountError::Source {
        src: proc_fd_path(tree),
        dest: dest.to_path_buf(),
        source,
    })?;
    let kind = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
        NodeKind::Dir
    } else {
        NodeKind::File
    };
    let target = open_in_root(ctx.root, dest, Some(kind))?;
    check_proc_mount(ctx, &target, dest, Some(tree), "bind")?;
    mountapi::move_to_fd(tree, target.fd.as_fd()).map_err(|source| {
        mount_err(
            "(source opened on the host)".into(),
            dest,
            "bind",
            MsFlags::MS_BIND,
            "",
            source,
        )
    })?;
    finish_bind(ctx, &target.path, dest, opts)
}

/// An id-mapped bind mount: the source cloned, marked with the mapping's user namespace, and
/// moved onto the destination (see [`crate::idmap`]); then flags as for any bind.
fn mount_bind_idmapped(
    ctx: &MountContext<'_>,
    m: &Mount,
    opts: &MountOptions,
    userns: std::os::fd::RawFd,
) -> Result<(), MountError> {
    let dest = m.destination();
    let src = bind_source(ctx, m)?;
    let kind = if src.is_dir() {
        NodeKind::Dir
    } else {
        NodeKind::File
    };
    let target = open_in_root(ctx.root, dest, Some(kind))?;
    // SAFETY: the caller keeps the user namespace descriptor open for the whole of prepare.
    let userns = unsafe { BorrowedFd::borrow_raw(userns) };
    let recursive = opts.rbind || opts.extra.ridmap;
    crate::idmap::mount(dest, &src, target.fd.as_fd(), userns, recursive).map_err(|e| {
        MountError::Unsupported {
            dest: dest.clone(),
            what: e.to_string(),
        }
    })?;
    finish_bind(ctx, &target.path, dest, opts)
}

fn mount_bind(ctx: &MountContext<'_>, m: &Mount, opts: &MountOptions) -> Result<(), MountError> {
    let src = bind_source(ctx, m)?;
    bind_from(ctx, m.destination(), &src, opts)
}

/// Bind-mounts host path `src` onto `dest` inside the rootfs, then applies flags, propagation
/// and recursive attributes.
fn bind_from(
    ctx: &MountContext<'_>,
    dest: &Path,
    src: &Path,
    opts: &MountOptions,
) -> Result<(), MountError> {
    let src_fd = match (
        openat_fd(None, src, OFlag::O_PATH, Mode::empty()),
        ctx.host_tree,
    ) {
        (Ok(fd), _) => fd,
        (Err(Errno::EACCES | Errno::EPERM), Some(tree)) => {
            return move_host_tree(ctx, dest, tree, opts);
        }
        (Err(source), _) => {
            return Err(MountError::Source {
                src: src.to_path_buf(),
                dest: dest.to_path_buf(),
                source,
            })
        }
    };
    let st = nix::sys::stat::fstat(src_fd.as_raw_fd()).map_err(|source| MountError::Source {
        src: src.to_path_buf(),
        dest: dest.to_path_buf(),
        source,
    })?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let kind = if is_dir {
        NodeKind::Dir
    } else {
        NodeKind::File
    };
    let target = open_in_root(ctx.root, dest, Some(kind))?;
    check_proc_mount(ctx, &target, dest, Some(src_fd.as_fd()), "bind")?;
    let mut flags = MsFlags::MS_BIND;
    if opts.rbind {
        flags |= MsFlags::MS_REC;
    }
    let tpath = proc_fd_path(target.fd.as_fd());
    do_mount(
        Some(&proc_fd_path(src_fd.as_fd())),
        &tpath,
        None,
        flags,
        None,
    )
    .map_err(|source| mount_err(src.display().to_string(), dest, "bind", flags, "", source))?;
    finish_bind(ctx, &target.path, dest, opts)
}

/// A readable directory handle on what `fd` (an O_PATH handle) points to now.
fn open_dir_of(fd: BorrowedFd<'_>, dest: &Path) -> Result<OwnedFd, MountError> {
    openat_fd(
        Some(fd),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|source| MountError::Resolve {
        path: dest.to_path_buf(),
        source,
    })
}

/// After a bind lands on `path`: the remaining flags (a remount, since a bind ignores them),
/// propagation and recursive attributes. The new mount sits on top of any descriptor opened
/// before it, so the path is opened again.
fn finish_bind(
    ctx: &MountContext<'_>,
    path: &Path,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), MountError> {
    let target = open_in_root(ctx.root, path, None)?;
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount_bind(target.fd.as_fd(), dest, opts.flags, opts.clear)?;
    }
    finish_mount(&target, dest, opts)
}

/// `MS_REMOUNT|MS_BIND` with `flags`. On EPERM (locked flags in a user namespace, or a locked
/// mount), retries keeping the locked flags of the mount, unless the user explicitly cleared one.
pub fn remount_bind(
    fd: BorrowedFd<'_>,
    dest: &Path,
    flags: MsFlags,
    cleared: MsFlags,
) -> Result<(), MountError> {
    let base = (flags - MsFlags::MS_REC) | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let path = proc_fd_path(fd);
    let rerr = |flags: MsFlags, source| MountError::Remount {
        dest: dest.to_path_buf(),
        flags: flags.bits(),
        source,
    };
    match do_mount(None::<&Path>, &path, None, base, None) {
        Err(Errno::EPERM) => {
            let current = mount_flags_of(fd).map_err(|e| rerr(base, e))?;
            if !(cleared & current & LOCKED_FLAGS).is_empty() {
                return Err(rerr(base, Errno::EPERM));
            }
            let mut retry = base | (current & LOCKED_FLAGS);
            if (base & ATIME_FLAGS).is_empty() {
                retry |= current & ATIME_FLAGS;
            }
            do_mount(None::<&Path>, &path, None, retry, None).map_err(|e| rerr(retry, e))
        }
        other => other.map_err(|e| rerr(base, e)),
    }
}

/// Propagation flags and recursive attributes, the common tail of every mount.
fn finish_mount(target: &Resolved, dest: &Path, opts: &MountOptions) -> Result<(), MountError> {
    let tpath = proc_fd_path(target.fd.as_fd());
    for p in &opts.propagation {
        do_mount(None::<&Path>, &tpath, None, *p, None).map_err(|source| {
            MountError::Propagation {
                dest: dest.to_path_buf(),
                flags: p.bits(),
                source,
            }
        })?;
    }
    if opts.has_rec_attrs() {
        mountapi::set_attr(
            target.fd.as_fd(),
            opts.rec_attr_set,
            opts.rec_attr_clear,
            None,
            true,
        )
        .map_err(|source| MountError::SetAttr {
            dest: dest.to_path_buf(),
            set: opts.rec_attr_set,
            clear: opts.rec_attr_clear,
            source,
        })?;
    }
    Ok(())
}

/// Whether read-only must wait until `finish` (runc's `mountPropagate`): tmpfs and `/dev`.
pub fn defers_readonly(m: &Mount) -> bool {
    m.typ().as_deref() == Some("tmpfs") || clean_in_root(m.destination()) == Path::new("/dev")
}

/// Mounts a filesystem of type `fstype` (tmpfs, proc, sysfs, devpts, mqueue, anything else).
fn mount_fs(
    ctx: &MountContext<'_>,
    m: &Mount,
    opts: &MountOptions,
    fstype: &str,
) -> Result<(), MountError> {
    let dest = m.destination();
    if fstype == "proc" || fstype == "sysfs" {
        refuse_non_directory(ctx.root, dest, fstype)?;
    }
    // A tmpfs keeps the mode of a directory that was there; one on a directory made here gets
    // tmpfs's own default (1777), as with runc.
    let existed = fstype != "tmpfs" || open_in_root(ctx.root, dest, None).is_ok();
    let target = open_in_root(ctx.root, dest, Some(NodeKind::Dir))?;
    check_proc_mount(ctx, &target, dest, None, fstype)?;
    let mut flags = opts.flags;
    if defers_readonly(m) {
        flags -= MsFlags::MS_RDONLY;
    }
    let src = m
        .source()
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| fstype.to_string());
    let old_mode = nix::sys::stat::fstat(target.fd.as_raw_fd())
        .ok()
        .filter(|_| existed)
        .map(|st| st.st_mode & 0o7777);
    // For tmpcopyup: a readable handle on the directory that the tmpfs is about to cover.
    let lower = if opts.extra.tmpcopyup && fstype == "tmpfs" {
        Some(open_dir_of(target.fd.as_fd(), dest)?)
    } else {
        None
    };
    let tpath = proc_fd_path(target.fd.as_fd());
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    do_mount(Some(src.as_str()), &tpath, Some(fstype), flags, data)
        .map_err(|source| mount_err(src.clone(), dest, fstype, flags, &opts.data, source))?;
    let mounted = open_in_root(ctx.root, &target.path, None)?;
    if fstype == "tmpfs" {
        // As runc: an existing directory keeps its mode unless the options set one.
        if let (Some(mode), false) = (
            old_mode,
            opts.data.split(',').any(|o| o.starts_with("mode=")),
        ) {
            let _ = chmod_fd(mounted.fd.as_fd(), mode);
        }
        if let Some(lower) = lower {
            let upper = open_dir_of(mounted.fd.as_fd(), dest)?;
            copy_dir(lower.as_fd(), upper.as_fd(), Path::new("")).map_err(|(path, source)| {
                MountError::CopyUp {
                    dest: dest.clone(),
                    path,
                    source,
                }
            })?;
        }
    }
    finish_mount(&mounted, dest, opts)
}

/// As runc: proc and sysfs go only on a directory or on nothing yet; an existing last component
/// that is a symlink (or anything else) is refused rather than followed.
fn refuse_non_directory(root: BorrowedFd<'_>, dest: &Path, fstype: &str) -> Result<(), MountError> {
    let (parent, name) = match open_parent_in_root(root, dest, false) {
        Ok(found) => found,
        Err(MountError::Resolve {
            source: Errno::ENOENT,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    match nix::sys::stat::fstatat(
        Some(parent.fd.as_raw_fd()),
        name.as_os_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR => {
            Err(MountError::NotDirectory {
                dest: dest.to_path_buf(),
                fstype: fstype.to_string(),
            })
        }
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(source) => Err(MountError::Resolve {
            path: dest.to_path_buf(),
            source,
        }),
    }
}

fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> nix::Result<()> {
    // fchmod does not work on O_PATH descriptors; go through /proc.
    nix::sys::stat::fchmodat(
        None,
        &proc_fd_path(fd),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// `mount(2)` through nix with the types this module uses.
pub(crate) fn do_mount<S: ?Sized + nix::NixPath>(
    src: Option<&S>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(src, target, fstype, flags, data)
}

fn mount_err(
    src: String,
    dest: &Path,
    fstype: &str,
    flags: MsFlags,
    data: &str,
    source: Errno,
) -> MountError {
    MountError::Mount {
        src,
        dest: dest.to_path_buf(),
        fstype: fstype.to_string(),
        flags: flags.bits(),
        data: data.to_string(),
        source,
    }
}

/// Entries under /proc that may be bind-mounted over (lxcfs and friends); as runc.
const VALID_PROC_MOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Refuses mounts that would hide or fake parts of /proc (CVE-2019-16884, CVE-2019-19921): only
/// `proc` (or a bind of a procfs) on /proc itself, and only the lxcfs-style files below it.
/// `target.path` is the symlink-free in-root path, so a symlink to /proc cannot dodge the check.
fn check_proc_mount(
    _ctx: &MountContext<'_>,
    target: &Resolved,
    dest: &Path,
    bind_src: Option<BorrowedFd<'_>>,
    fstype: &str,
) -> Result<(), MountError> {
    let p = &target.path;
    let refuse = |reason: &str| MountError::ProcMount {
        dest: dest.to_path_buf(),
        reason: reason.to_string(),
    };
    if p == Path::new("/proc") {
        if fstype == "proc" {
            return Ok(());
        }
        if let Some(src) = bind_src {
            let st = nix::sys::statfs::fstatfs(src).map_err(|source| MountError::Source {
                src: proc_fd_path(src),
                dest: dest.to_path_buf(),
                source,
            })?;
            if st.filesystem_type().0 as i64 == PROC_SUPER_MAGIC {
                return Ok(());
            }
        }
        return Err(refuse("only a proc filesystem may be mounted on /proc"));
    }
    if p.starts_with("/proc") && !VALID_PROC_MOUNTS.iter().any(|v| p == Path::new(v)) {
        return Err(refuse(&format!("{} is inside /proc", p.display())));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// tmpcopyup
// ---------------------------------------------------------------------------------------------

type CopyResult = Result<(), (PathBuf, Errno)>;

/// Recursively copies the contents of directory `src` into directory `dst`, keeping modes,
/// owners, symlinks and device nodes. `rel` is only for error messages.
fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> CopyResult {
    let at = |e| (rel.to_path_buf(), e);
    let dup = nix::unistd::dup(src.as_raw_fd()).map_err(at)?;
    // SAFETY: dup returned a fresh descriptor owned by nobody else.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    let mut dir = nix::dir::Dir::from(dup).map_err(at)?;
    let names: Vec<OsString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    for name in names {
        copy_entry(src, dst, &name, &rel.join(&name))?;
    }
    let st = nix::sys::stat::fstat(src.as_raw_fd()).map_err(at)?;
    let _ = nix::unistd::fchown(
        dst.as_raw_fd(),
        Some(st.st_uid.into()),
        Some(st.st_gid.into()),
    );
    nix::sys::stat::fchmod(
        dst.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(at)
}

fn copy_entry(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> CopyResult {
    let at = |e| (rel.to_path_buf(), e);
    let (s, d) = (Some(src.as_raw_fd()), Some(dst.as_raw_fd()));
    let st = nix::sys::stat::fstatat(s, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(at)?;
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    match fmt {
        SFlag::S_IFDIR => {
            nix::sys::stat::mkdirat(d, name, mode).map_err(at)?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
            let sfd = openat_fd(Some(src), name, flags, Mode::empty()).map_err(at)?;
            let dfd = openat_fd(Some(dst), name, flags, Mode::empty()).map_err(at)?;
            return copy_dir(sfd.as_fd(), dfd.as_fd(), rel);
        }
        SFlag::S_IFREG => {
            let sfd = openat_fd(
                Some(src),
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(at)?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let dfd = openat_fd(Some(dst), name, flags, mode).map_err(at)?;
            let (mut r, mut w) = (File::from(sfd), File::from(dfd));
            std::io::copy(&mut r, &mut w)
                .map_err(|e| at(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(s, name).map_err(at)?;
            nix::unistd::symlinkat(target.as_os_str(), d, name).map_err(at)?;
        }
        _ => {
            nix::sys::stat::mknodat(d, name, fmt, mode, st.st_rdev).map_err(at)?;
        }
    }
    let _ = nix::unistd::fchownat(
        d,
        name,
        Some(st.st_uid.into()),
        Some(st.st_gid.into()),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    if fmt != SFlag::S_IFLNK {
        nix::sys::stat::fchmodat(
            d,
            name,
            mode,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .map_err(at)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cgroup mounts
// ---------------------------------------------------------------------------------------------

/// One host cgroup hierarchy, as seen by the init before pivot_root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Host mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct` or `/sys/fs/cgroup/unified`.
    pub mountpoint: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4), usually `/`.
    pub root: PathBuf,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// Mount data that selects this hierarchy: controllers and `name=`, e.g. `cpu,cpuacct`,
    /// `name=systemd`; empty for cgroup2.
    pub options: String,
    /// This process's cgroup in the hierarchy (from /proc/self/cgroup), if found.
    pub own_path: Option<PathBuf>,
}

impl CgroupHierarchy {
    /// Name of the directory under the container's cgroup mount (as runc: the host basename).
    pub fn dir_name(&self) -> OsString {
        self.mountpoint
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| OsString::from("unified"))
    }

    /// Host path of this process's own cgroup in the hierarchy.
    pub fn own_dir(&self) -> PathBuf {
        let own = self.own_path.clone().unwrap_or_else(|| PathBuf::from("/"));
        let rel = own.strip_prefix(&self.root).unwrap_or(Path::new(""));
        self.mountpoint.join(rel)
    }
}

/// The host's cgroup layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    /// Pure cgroup v2 (cgroup2 mounted at /sys/fs/cgroup).
    pub unified_only: bool,
    /// v1 hierarchies plus the hybrid `unified` one (or the single v2 one if `unified_only`).
    pub hierarchies: Vec<CgroupHierarchy>,
}

impl CgroupLayout {
    /// Reads /proc/self/mountinfo, /proc/self/cgroup and /proc/cgroups.
    pub fn discover() -> Result<Self, MountError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| MountError::Cgroup {
                what: format!("reading {p}"),
                source,
            })
        };
        let controllers = read("/proc/cgroups").unwrap_or_default();
        let layout = Self::parse(
            &read("/proc/self/mountinfo")?,
            &read("/proc/self/cgroup")?,
            &controllers,
        );
        if layout.hierarchies.is_empty() {
            return Err(MountError::NoCgroups);
        }
        Ok(layout)
    }

    /// Builds the layout from the text of mountinfo, /proc/self/cgroup and /proc/cgroups.
    pub fn parse(mountinfo: &str, proc_cgroup: &str, proc_cgroups: &str) -> Self {
        let known: Vec<&str> = proc_cgroups
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let own = parse_proc_cgroup(proc_cgroup);
        let mut layout = CgroupLayout::default();
        let mut seen: Vec<String> = Vec::new();
        for line in mountinfo.lines() {
            let Some(mi) = MountInfoLine::parse(line) else {
                continue;
            };
            if mi.fstype != "cgroup" && mi.fstype != "cgroup2" {
                continue;
            }
            let options = if mi.fstype == "cgroup2" {
                String::new()
            } else {
                mi.super_opts
                    .split(',')
                    .filter(|o| o.starts_with("name=") || known.contains(o))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let key = format!("{}:{}", mi.fstype, options);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if mi.fstype == "cgroup2" && mi.mountpoint == Path::new("/sys/fs/cgroup") {
                layout.unified_only = true;
            }
            let own_path = own_cgroup_path(&own, &mi.fstype, &options);
            layout.hierarchies.push(CgroupHierarchy {
                mountpoint: mi.mountpoint,
                root: mi.root,
                fstype: mi.fstype,
                options,
                own_path,
            });
        }
        if layout.unified_only {
            layout.hierarchies.retain(|h| h.fstype == "cgroup2");
            layout.hierarchies.truncate(1);
        }
        layout
    }
}

/// (controllers or names, path) from /proc/self/cgroup; "" for the v2 line.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, PathBuf)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_id, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            let names = ctrls
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            Some((names, PathBuf::from(path)))
        })
        .collect()
}

fn own_cgroup_path(own: &[(Vec<String>, PathBuf)], fstype: &str, options: &str) -> Option<PathBuf> {
    if fstype == "cgroup2" {
        return own
            .iter()
            .find(|(n, _)| n.is_empty())
            .map(|(_, p)| p.clone());
    }
    let wanted: Vec<&str> = options.split(',').filter(|s| !s.is_empty()).collect();
    own.iter()
        .find(|(n, _)| !n.is_empty() && n.iter().all(|c| wanted.contains(&c.as_str())))
        .map(|(_, p)| p.clone())
}

/// The fields of one /proc/self/mountinfo line this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfoLine {
    pub root: PathBuf,
    pub mountpoint: PathBuf,
    pub mount_opts: String,
    pub fstype: String,
    pub source: String,
    pub super_opts: String,
}

impl MountInfoLine {
    /// Parses one line (`man 5 proc`), unescaping `\040`-style octal escapes in paths.
    pub fn parse(line: &str) -> Option<Self> {
        let (left, right) = line.split_once(" - ")?;
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.len() < 3 {
            return None;
        }
        Some(MountInfoLine {
            root: PathBuf::from(unescape_octal(l[3])),
            mountpoint: PathBuf::from(unescape_octal(l[4])),
            mount_opts: l[5].to_string(),
            fstype: r[0].to_string(),
            source: r[1].to_string(),
            super_opts: r[2].to_string(),
        })
    }
}

fn unescape_octal(s: &str) -> OsString {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    <OsString as std::os::unix::ffi::OsStringExt>::from_vec(out)
}

/// nosuid,nodev,noexec: runc's defaultMountFlags for cgroup mounts.
const CGROUP_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The `cgroup` mount type. Pure v2: a cgroup2 mount (bind of our own cgroup if that is refused).
/// v1/hybrid: a tmpfs, then per hierarchy either a fresh `cgroup` mount (own cgroup namespace:
/// the kernel roots it at the namespace root) or a bind of our own cgroup directory; `unified`
/// for the hybrid v2 tree and `systemd` for name=systemd; symlinks for co-mounted controllers.
fn mount_cgroup(ctx: &MountContext<'_>, m: &Mount, opts: &MountOptions) -> Result<(), MountError> {
    let discovered;
    let layout = match ctx.cgroup {
        Some(l) => l,
        None => {
            discovered = CgroupLayout::discover()?;
            &discovered
        }
    };
    let dest = m.destination();
    if layout.unified_only {
        let h = layout.hierarchies.first().ok_or(MountError::NoCgroups)?;
        return mount_cgroup_v2(ctx, dest, h, opts);
    }
    let tmpfs_opts = MountOptions {
        flags: CGROUP_FLAGS,
        data: "mode=755".into(),
        propagation: opts.propagation.clone(),
        ..Default::default()
    };
    let tmpfs = oci_spec::runtime::MountBuilder::default()
        .destination(dest.clone())
        .typ("tmpfs")
        .source("tmpfs")
        .build()
        .map_err(|e| MountError::InvalidDestination {
            dest: dest.clone(),
            reason: e.to_string(),
        })?;
    mount_fs(ctx, &tmpfs, &tmpfs_opts, "tmpfs")?;
    let sub_flags = CGROUP_FLAGS | (opts.flags & MsFlags::MS_RDONLY);
    for h in &layout.hierarchies {
        let sub = dest.join(h.dir_name());
        if ctx.new_cgroup_ns {
            mount_cgroup_fresh(ctx, &sub, h, sub_flags)?;
        } else {
            let mut o = opts.clone();
            o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC | CGROUP_FLAGS;
            o.rbind = true;
            o.propagation.clear();
            bind_from(ctx, &sub, &h.own_dir(), &o)?;
        }
        // Co-mounted controllers ("cpu,cpuacct") get one symlink per controller, as on hosts.
        let name = h.dir_name();
        let name_s = name.to_string_lossy();
        if name_s.contains(',') {
            let dir = open_in_root(ctx.root, dest, None)?;
            for part in name_s.split(',') {
                match nix::unistd::symlinkat(name.as_os_str(), Some(dir.fd.as_raw_fd()), part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(source) => {
                        return Err(MountError::Resolve {
                            path: dest.join(part),
                            source,
                        })
                    }
                }
            }
        }
    }
    let top = open_in_root(ctx.root, dest, None)?;
    if opts.flags.contains(MsFlags::MS_RDONLY) {
        remount_bind(
            top.fd.as_fd(),
            dest,
            CGROUP_FLAGS | MsFlags::MS_RDONLY,
            opts.clear,
        )?;
    }
    Ok(())
}

fn mount_cgroup_fresh(
    ctx: &MountContext<'_>,
    sub: &Path,
    h: &CgroupHierarchy,
    flags: MsFlags,
) -> Result<(), MountError> {
    let target = open_in_root(ctx.root, sub, Some(NodeKind::Dir))?;
    let src = if h.options.starts_with("name=") {
        h.options.trim_start_matches("name=").to_string()
    } else {
        h.fstype.clone()
    };
    let data = (!h.options.is_empty()).then_some(h.options.as_str());
    do_mount(
        Some(src.as_str()),
        &proc_fd_path(target.fd.as_fd()),
        Some(&h.fstype),
        flags,
        data,
    )
    .map_err(|source| mount_err(src.clone(), sub, &h.fstype, flags, &h.options, source))
}

fn mount_cgroup_v2(
    ctx: &MountContext<'_>,
    dest: &Path,
    h: &CgroupHierarchy,
    opts: &MountOptions,
) -> Result<(), MountError> {
    let target = open_in_root(ctx.root, dest, Some(NodeKind::Dir))?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    let res = do_mount(
        Some("cgroup2"),
        &proc_fd_path(target.fd.as_fd()),
        Some("cgroup2"),
        flags,
        None,
    );
    match res {
        Ok(()) => {
            let mounted = open_in_root(ctx.root, &target.path, None)?;
            finish_mount(&mounted, dest, opts)
        }
        Err(Errno::EPERM | Errno::EBUSY) => {
            // A userns without a cgroupns cannot mount cgroup2 (runc #2158): bind our own cgroup.
            let mut o = opts.clone();
            o.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            o.rbind = true;
            bind_from(ctx, dest, &h.own_dir(), &o)
        }
        Err(source) => Err(mount_err(
            "cgroup2".into(),
            dest,
            "cgroup2",
            flags,
            "",
            source,
        )),
    }
}

/// Lookup by destination used by `rootfs` to decide about /dev; kept here with the table.
pub fn is_bind_mount(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|o| o == "bind" || o == "rbind")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn set_and_clear_flags() {
        let o = opts(&["nosuid", "nodev", "noexec", "ro"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY
        );
        assert!(o.clear.is_empty());
        let o = opts(&["ro", "rw", "suid", "dev", "exec"]);
        assert!(o.flags.is_empty());
        assert!(o
            .clear
            .contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV));
        // Later wins, and re-setting un-clears.
        let o = opts(&["rw", "ro"]);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert!(o.clear.is_empty());
    }

    #[test]
    fn every_flag_option_is_recognised() {
        for (name, clear, flag) in FLAG_TABLE {
            let o = opts(&[name]);
            assert!(o.data.is_empty(), "{name} leaked into data");
            if *clear {
                assert!(o.flags.is_empty(), "{name}");
                assert_eq!(o.clear, *flag, "{name}");
            } else {
                assert_eq!(o.flags, *flag, "{name}");
            }
        }
        assert_eq!(opts(&["nosymfollow"]).flags.bits(), libc::MS_NOSYMFOLLOW);
        assert_eq!(opts(&["strictatime"]).flags, MsFlags::MS_STRICTATIME);
        assert_eq!(opts(&["async"]).clear, MsFlags::MS_SYNCHRONOUS);
    }

    #[test]
    fn bind_and_rbind() {
        let o = opts(&["bind"]);
        assert!(o.bind && !o.rbind);
        assert_eq!(o.flags, MsFlags::MS_BIND);
        let o = opts(&["rbind", "ro"]);
        assert!(o.bind && o.rbind);
        assert_eq!(
            o.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn propagation_is_ordered() {
        let o = opts(&["rprivate", "shared", "slave", "runbindable"]);
        assert_eq!(
            o.propagation,
            vec![
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                MsFlags::MS_SHARED,
                MsFlags::MS_SLAVE,
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC
            ]
        );
        assert!(o.flags.is_empty());
        assert_eq!(
            parse_propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(parse_propagation("bogus"), None);
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&["rro", "rnosuid", "rnodev", "rnoexec"]);
        assert_eq!(
            o.rec_attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
        );
        assert_eq!(o.rec_attr_clear, 0);
        assert!(o.flags.is_empty());
        let o = opts(&["rro", "rrw"]);
        assert_eq!(o.rec_attr_set, 0);
        assert_eq!(o.rec_attr_clear, MOUNT_ATTR_RDONLY);
        // atime attributes also clear the atime field.
        let o = opts(&["rnoatime"]);
        assert_eq!(o.rec_attr_set, MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_attr_clear, MOUNT_ATTR_ATIME);
        let o = opts(&["rrelatime"]);
        assert!(o.has_rec_attrs());
        assert_eq!(o.rec_attr_clear, MOUNT_ATTR_ATIME);
        // Clearing one atime mode clears the whole field (a partial mask is EINVAL).
        for o in [opts(&["ratime"]), opts(&["rstrictatime", "rnostrictatime"])] {
            assert_eq!(o.rec_attr_set, 0);
            assert_eq!(o.rec_attr_clear, MOUNT_ATTR_ATIME);
        }
        let o = opts(&["rnoatime", "rnostrictatime"]);
        assert_eq!(o.rec_attr_set, MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_attr_clear, MOUNT_ATTR_ATIME);
        let o = opts(&["rnosymfollow", "rexec"]);
        assert_eq!(o.rec_attr_set, MOUNT_ATTR_NOSYMFOLLOW);
        assert_eq!(o.rec_attr_clear, MOUNT_ATTR_NOEXEC);
    }

    #[test]
    fn unknown_options_go_to_data() {
        let o = opts(&[
            "nosuid",
            "mode=755",
            "size=65536k",
            "defaults",
            "newinstance",
        ]);
        assert_eq!(o.data, "mode=755,size=65536k,newinstance");
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
    }

    #[test]
    fn extensions() {
        let o = opts(&["tmpcopyup", "idmap"]);
        assert!(o.extra.tmpcopyup && o.extra.idmap && !o.extra.ridmap);
        assert!(o.data.is_empty());
        assert!(opts(&["ridmap"]).extra.ridmap);
    }

    #[test]
    fn known_options_cover_the_tables() {
        let k = known_options();
        for must in [
            "rro",
            "rbind",
            "tmpcopyup",
            "nosymfollow",
            "rslave",
            "strictatime",
            "rw",
        ] {
            assert!(k.contains(&must), "{must}");
        }
        assert!(k.contains(&"idmap") && k.contains(&"ridmap"));
        let mut d = k.clone();
        d.dedup();
        assert_eq!(d.len(), k.len());
    }

    #[test]
    fn clean_never_leaves_root() {
        assert_eq!(
            clean_in_root(Path::new("/../../etc/./x/..")),
            Path::new("/etc")
        );
        assert_eq!(clean_in_root(Path::new("proc")), Path::new("/proc"));
        assert_eq!(clean_in_root(Path::new("/")), Path::new("/"));
    }

    #[test]
    fn mountinfo_line() {
        let l = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        let mi = MountInfoLine::parse(l).unwrap();
        assert_eq!(mi.mountpoint, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(mi.fstype, "cgroup2");
        let l = "99 1 8:1 /a\\040b /mnt/x\\040y rw shared:1 - ext4 /dev/sda1 rw";
        let mi = MountInfoLine::parse(l).unwrap();
        assert_eq!(mi.root, Path::new("/a b"));
        assert_eq!(mi.mountpoint, Path::new("/mnt/x y"));
        assert!(MountInfoLine::parse("garbage").is_none());
    }

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
77 60 0:32 /x /mnt/again rw,relatime - cgroup cgroup rw,memory
";
    const PROC_CGROUP: &str =
        "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n1:name=systemd:/s\n0::/u\n";
    const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\ncpuacct\t1\t1\t1\nmemory\t4\t1\t1\n";

    #[test]
    fn cgroup_layout_hybrid() {
        let l = CgroupLayout::parse(HYBRID, PROC_CGROUP, PROC_CGROUPS);
        assert!(!l.unified_only);
        let names: Vec<_> = l.hierarchies.iter().map(|h| h.options.as_str()).collect();
        assert_eq!(names, vec!["cpu,cpuacct", "memory", "name=systemd", ""]);
        let mem = &l.hierarchies[1];
        assert_eq!(
            mem.own_dir(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(
            l.hierarchies[2].own_dir(),
            Path::new("/sys/fs/cgroup/systemd/s")
        );
        assert_eq!(
            l.hierarchies[3].own_dir(),
            Path::new("/sys/fs/cgroup/unified/u")
        );
        assert_eq!(l.hierarchies[0].dir_name(), OsStr::new("cpu,cpuacct"));
    }

    #[test]
    fn cgroup_layout_unified() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = CgroupLayout::parse(mi, "0::/user.slice\n", "");
        assert!(l.unified_only);
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(
            l.hierarchies[0].own_dir(),
            Path::new("/sys/fs/cgroup/user.slice")
        );
    }

    #[test]
    fn is_bind_detection() {
        let m = oci_spec::runtime::MountBuilder::default()
            .destination("/x")
            .typ("none")
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap();
        assert!(is_bind_mount(&m));
        let m = oci_spec::runtime::MountBuilder::default()
            .destination("/x")
            .typ("tmpfs")
            .build()
            .unwrap();
        assert!(!is_bind_mount(&m));
        assert!(defers_readonly(&m));
    }

    /// A scratch directory removed on drop.
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "runz-test-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn root_fd(p: &Path) -> OwnedFd {
        openat_fd(None, p, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn resolve_follows_symlinks_inside_root_only() {
        let t = TempDir::new("resolve");
        let r = &t.0;
        std::fs::create_dir_all(r.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../real", r.join("rel")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("escape")).unwrap();
        let fd = root_fd(r);
        let got = open_in_root(fd.as_fd(), Path::new("/abs/dir"), None).unwrap();
        assert_eq!(got.path, Path::new("/real/dir"));
        let got = open_in_root(fd.as_fd(), Path::new("rel/dir"), None).unwrap();
        assert_eq!(got.path, Path::new("/real/dir"));
        // "/etc" inside the root does not exist: not the host's /etc.
        let e = open_in_root(fd.as_fd(), Path::new("/escape/passwd"), None).unwrap_err();
        assert!(
            matches!(
                e,
                MountError::Resolve {
                    source: Errno::ENOENT,
                    ..
                }
            ),
            "{e}"
        );
        let got = open_in_root(fd.as_fd(), Path::new("/../.."), None).unwrap();
        assert_eq!(got.path, Path::new("/"));
    }

    #[test]
    fn resolve_creates_inside_root() {
        let t = TempDir::new("create");
        let r = &t.0;
        std::os::unix::fs::symlink("/etc", r.join("escape")).unwrap();
        let fd = root_fd(r);
        let got = open_in_root(
            fd.as_fd(),
            Path::new("/escape/x/file"),
            Some(NodeKind::File),
        )
        .unwrap();
        assert_eq!(got.path, Path::new("/etc/x/file"));
        assert!(r.join("etc/x/file").is_file());
        assert!(!Path::new("/etc/x/file").exists());
        let got = open_in_root(fd.as_fd(), Path::new("/a/b"), Some(NodeKind::Dir)).unwrap();
        assert_eq!(got.path, Path::new("/a/b"));
        assert!(r.join("a/b").is_dir());
        // A file in the middle of a path is an error, not a silent replacement.
        let e =
            open_in_root(fd.as_fd(), Path::new("/etc/x/file/y"), Some(NodeKind::Dir)).unwrap_err();
        assert!(
            matches!(
                e,
                MountError::Resolve {
                    source: Errno::ENOTDIR,
                    ..
                }
            ),
            "{e}"
        );
        // Dangling symlink: the target is created inside the root (securejoin semantics).
        std::os::unix::fs::symlink("../run/stub.conf", r.join("etc/resolv.conf")).unwrap();
        let got = open_in_root(
            fd.as_fd(),
            Path::new("/etc/resolv.conf"),
            Some(NodeKind::File),
        )
        .unwrap();
        assert_eq!(got.path, Path::new("/run/stub.conf"));
        assert!(r.join("run/stub.conf").is_file());
    }

    #[test]
    fn resolve_symlink_loop_is_eloop() {
        let t = TempDir::new("loop");
        std::os::unix::fs::symlink("b", t.0.join("a")).unwrap();
        std::os::unix::fs::symlink("a", t.0.join("b")).unwrap();
        let fd = root_fd(&t.0);
        let e = open_in_root(fd.as_fd(), Path::new("/a"), Some(NodeKind::Dir)).unwrap_err();
        assert!(
            matches!(
                e,
                MountError::Resolve {
                    source: Errno::ELOOP,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn parent_in_root() {
        let t = TempDir::new("parent");
        let fd = root_fd(&t.0);
        let (dir, name) = open_parent_in_root(fd.as_fd(), Path::new("/dev/null"), true).unwrap();
        assert_eq!(dir.path, Path::new("/dev"));
        assert_eq!(name, "null");
        assert!(open_parent_in_root(fd.as_fd(), Path::new("/"), true).is_err());
    }
}
