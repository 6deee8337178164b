//! Filesystem operations confined to a root directory, for the archive readers.
//!
//! Every path is walked from the root's directory fd one component at a time with
//! `O_NOFOLLOW`, and every change is made with a `*at` call on the parent's fd, never
//! following the final component: a symlink an archive planted (`d -> /host/path`) is never
//! gone through, whatever later entries or the final directory-times pass name.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// Why a walk below the root stopped.
#[derive(Debug)]
pub enum Walk {
    /// A component is a symlink: named relative to the root.
    Symlink(String),
    /// A component is neither a directory nor a symlink.
    NotDir(String),
    /// A component is missing (only when not creating).
    Missing(String),
    Io(String, io::Error),
}

impl std::fmt::Display for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Walk::Symlink(p) => write!(f, "goes through the symlink '{p}'"),
            Walk::NotDir(p) => write!(f, "'{p}' is not a directory"),
            Walk::Missing(p) => write!(f, "'{p}' does not exist"),
            Walk::Io(p, e) => write!(f, "'{p}': {e}"),
        }
    }
}

/// Take ownership of an fd an open call just returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Open the directory `name` in `dir` without following a symlink. `O_PATH` when `path_only`
/// (enough for a `*at` call), else readable (for `fchmod`, `futimens`, listing).
pub fn open_dir(dir: RawFd, name: &OsStr, path_only: bool) -> nix::Result<OwnedFd> {
    let access = if path_only {
        OFlag::O_PATH
    } else {
        OFlag::O_RDONLY
    };
    let flags = access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(Some(dir), name, flags, Mode::empty()).map(owned)
}

/// The type bits of `name` in `dir` (not followed), or None when it is missing.
pub fn kind_at(dir: RawFd, name: &OsStr) -> io::Result<Option<SFlag>> {
    match nix::sys::stat::fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(SFlag::from_bits_truncate(
            st.st_mode & SFlag::S_IFMT.bits(),
        ))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(errno_io(e)),
    }
}

/// A directory tree being written, held by an fd on its root.
pub struct RootDir {
    fd: OwnedFd,
}

impl RootDir {
    pub fn open(path: &Path) -> io::Result<RootDir> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(None, path, flags, Mode::empty()).map_err(errno_io)?;
        Ok(RootDir { fd: owned(fd) })
    }

    /// The directory `rel` (relative, only normal components), each component opened without
    /// following symlinks; missing ones are made (0755, as tar does) when `create`.
    pub fn walk(&self, rel: &Path, create: bool) -> Result<OwnedFd, Walk> {
        let mut cur = self
            .fd
            .try_clone()
            .map_err(|e| Walk::Io(String::new(), e))?;
        let mut seen = std::path::PathBuf::new();
        for c in rel.components() {
            let Component::Normal(name) = c else {
                if matches!(c, Component::CurDir) {
                    continue;
                }
                return Err(Walk::Io(
                    rel.display().to_string(),
                    io::Error::from(io::ErrorKind::InvalidInput),
                ));
            };
            seen.push(name);
            let shown = || seen.display().to_string();
            cur = match open_dir(cur.as_raw_fd(), name, true) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match nix::sys::stat::mkdirat(
                        Some(cur.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(Walk::Io(shown(), errno_io(e))),
                    }
                    open_dir(cur.as_raw_fd(), name, true)
                        .map_err(|e| Walk::Io(shown(), errno_io(e)))?
                }
                Err(Errno::ENOENT) => return Err(Walk::Missing(shown())),
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => {
                    return Err(match kind_at(cur.as_raw_fd(), name) {
                        Ok(Some(SFlag::S_IFLNK)) => Walk::Symlink(shown()),
                        _ => Walk::NotDir(shown()),
                    })
                }
                Err(e) => return Err(Walk::Io(shown(), errno_io(e))),
            };
        }
        Ok(cur)
    }
}

/// Remove `name` from `dir` whatever it is (a tree too, never crossing a symlink); missing is
/// fine.
pub fn remove_at(dir: RawFd, name: &OsStr) -> io::Result<()> {
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(SFlag::S_IFDIR) => {
            let sub = open_dir(dir, name, false).map_err(errno_io)?;
            empty_dir(&sub, |_| true)?;
            nix::unistd::unlinkat(Some(dir), name, UnlinkatFlags::RemoveDir).map_err(errno_io)
        }
        Some(_) => {
            nix::unistd::unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir).map_err(errno_io)
        }
    }
}

/// Remove every entry of the open directory `dir` for which `doomed(name)` holds.
pub fn empty_dir(dir: &OwnedFd, mut doomed: impl FnMut(&OsStr) -> bool) -> io::Result<()> {
    for name in list(dir)? {
        if doomed(&name) {
            remove_at(dir.as_raw_fd(), &name)?;
        }
    }
    Ok(())
}

/// The names in the open directory `dir` (not `.` or `..`).
pub fn list(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    use std::os::unix::ffi::OsStrExt;
    // Dir takes ownership of the fd it reads: give it a duplicate.
    let dup = dir.try_clone()?;
    let mut d =
        nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup)).map_err(errno_io)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e.map_err(errno_io)?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            out.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(out)
}

/// A new regular file `name` in `dir` (0600 until its mode is set), never through a symlink.
pub fn create_file(dir: RawFd, name: &OsStr) -> io::Result<fs::File> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(Some(dir), name, flags, Mode::from_bits_truncate(0o600))
        .map_err(errno_io)?;
    Ok(fs::File::from(owned(fd)))
}

/// What a file type is called in messages.
pub fn type_name(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "a regular file"
    }
}

/// Open `path` for reading only if it is a regular file: a FIFO or a device is refused at
/// once (opened non-blocking, checked with fstat) instead of blocking the reader for ever.
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let fd = nix::fcntl::openat(None, path, flags, Mode::empty()).map_err(errno_io)?;
    let f = fs::File::from(owned(fd));
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, not a regular file", type_name(&ft)),
        ));
    }
    // Reads of a regular file never block: clear O_NONBLOCK all the same.
    nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(errno_io)?;
    Ok(f)
}

/// Read the regular file `rel` of the untrusted tree at `root` (a zone's or an image's root)
/// from the host: resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so its
/// symlinks (`/etc/passwd -> /etc/shadow`) stay inside `root`; a FIFO or device is refused
/// without blocking; more than `max` bytes is an error (`/dev/zero` cannot grow the reader).
pub fn read_in_root(root: &Path, rel: &str, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let dir = fs::File::open(root)?;
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), rel, how).map_err(errno_io)?;
    let f = fs::File::from(owned(fd));
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {}, not a regular file", type_name(&ft)),
        ));
    }
    let mut data = Vec::new();
    f.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("is larger than {max} bytes"),
        ));
    }
    Ok(data)
}
