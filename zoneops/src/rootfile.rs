//! Reading a zone's own files from the host (zlogin's `/etc/passwd`, a user's home).
//!
//! The zone's root is the zone's to shape: any component may be a symlink to a host path, a
//! magic link (`/proc/self/fd/N`), a FIFO or a device. Every path is therefore opened with
//! openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS relative to the root, so a symlink resolves
//! inside the zone; a file is opened O_NONBLOCK (a FIFO never blocks the open) and must then be
//! a regular file, read up to a limit. Errors name the path, never the file's content.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RootFileError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not a regular file")]
    NotRegular { path: String },
    #[error("{path}: larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
}

/// The zone's root, open for lookups beneath it.
pub struct ZoneRoot {
    fd: OwnedFd,
}

impl ZoneRoot {
    /// Opens the root directory `host` (itself a host path zoneadm made, not the zone's).
    pub fn open(host: &Path) -> Result<ZoneRoot, RootFileError> {
        let fd = nix::fcntl::open(
            host,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| RootFileError::Io {
            path: host.display().to_string(),
            err: e.into(),
        })?;
        // SAFETY: a fresh descriptor from open(2) that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ZoneRoot { fd })
    }

    /// `path` (as the zone sees it) resolved inside the root with `flags` (O_CLOEXEC added).
    fn open_in(&self, path: &str, flags: i32) -> std::io::Result<OwnedFd> {
        open_in_root(&self.fd, path, flags, 0)
    }

    /// The regular file `path` of the zone, at most `limit` bytes.
    pub fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, RootFileError> {
        let io = |err: std::io::Error| RootFileError::Io {
            path: path.to_string(),
            err,
        };
        let fd = self
            .open_in(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
            .map_err(io)?;
        let file = std::fs::File::from(fd);
        if !file.metadata().map_err(io)?.is_file() {
            return Err(RootFileError::NotRegular {
                path: path.to_string(),
            });
        }
        let mut buf = Vec::new();
        file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
        if buf.len() as u64 > limit {
            return Err(RootFileError::TooLarge {
                path: path.to_string(),
                limit,
            });
        }
        Ok(buf)
    }

    /// The directory `path` of the zone as a path with no symlinks left in it (the zone's
    /// view, `/`-rooted), or None when it is not a directory inside the root.
    pub fn resolve_dir(&self, path: &str) -> Option<String> {
        self.resolve_with(path, libc::O_PATH | libc::O_DIRECTORY)
    }

    /// `path` of the zone (any kind of file) with every symlink followed inside the root, as
    /// the zone sees it: `/sbin/init` → `/bin/busybox`. None when it does not resolve there.
    pub fn resolve(&self, path: &str) -> Option<String> {
        self.resolve_with(path, libc::O_PATH)
    }

    fn resolve_with(&self, path: &str, flags: i32) -> Option<String> {
        let fd = self.open_in(path, flags).ok()?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        let root = std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).ok()?;
        let rel = real.strip_prefix(&root).ok()?;
        let inside = Path::new("/").join(rel);
        inside.to_str().map(str::to_string)
    }
}

/// `path` resolved beneath the directory `root` as if `root` were `/` (openat2
/// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), with `flags` (O_CLOEXEC added) and `mode` for a
/// file it creates. The one way the host opens a path a zone controls.
pub fn open_in_root(
    root: &impl AsRawFd,
    path: &str,
    flags: i32,
    mode: u32,
) -> std::io::Result<OwnedFd> {
    let c = CString::new(path).map_err(std::io::Error::other)?;
    // SAFETY: open_how is plain integers; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = u64::from(mode);
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and an open_how of the size
    // passed; the returned fd is checked and then owned.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from openat2 that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(tag: &str) -> Dir {
        let d =
            std::env::temp_dir().join(format!("runz-test-rootfile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/etc")).unwrap();
        std::fs::create_dir_all(d.join("outside")).unwrap();
        Dir(d)
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = dir("symlink");
        let secret = d.0.join("outside/secret");
        std::fs::write(&secret, "host only").unwrap();
        std::os::unix::fs::symlink(&secret, d.0.join("root/etc/passwd")).unwrap();
        let r = ZoneRoot::open(&d.0.join("root")).unwrap();
        let e = r.read("/etc/passwd", 1024).unwrap_err();
        assert!(!e.to_string().contains("host only"), "{e}");
        // ../../outside climbs no higher than the root either.
        std::fs::remove_file(d.0.join("root/etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../outside/secret", d.0.join("root/etc/passwd")).unwrap();
        assert!(r.read("/etc/passwd", 1024).is_err());
    }

    #[test]
    fn fifos_devices_and_big_files_are_refused_at_once() {
        let d = dir("kinds");
        nix::unistd::mkfifo(
            &d.0.join("root/etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let r = ZoneRoot::open(&d.0.join("root")).unwrap();
        let e = r.read("/etc/passwd", 1024).unwrap_err();
        assert!(matches!(e, RootFileError::NotRegular { .. }), "{e}");
        std::fs::write(d.0.join("root/etc/big"), vec![b'x'; 2048]).unwrap();
        let e = r.read("/etc/big", 1024).unwrap_err();
        assert!(matches!(e, RootFileError::TooLarge { .. }), "{e}");
        assert_eq!(r.read("/etc/big", 4096).unwrap().len(), 2048);
    }

    #[test]
    fn directories_resolve_to_their_path_in_the_zone() {
        let d = dir("home");
        std::fs::create_dir_all(d.0.join("root/home/real")).unwrap();
        std::os::unix::fs::symlink("/home/real", d.0.join("root/home/link")).unwrap();
        std::os::unix::fs::symlink(d.0.join("outside"), d.0.join("root/home/out")).unwrap();
        std::os::unix::fs::symlink("/proc/self/fd/3", d.0.join("root/home/magic")).unwrap();
        let r = ZoneRoot::open(&d.0.join("root")).unwrap();
        assert_eq!(r.resolve_dir("/home/link").as_deref(), Some("/home/real"));
        assert_eq!(r.resolve_dir("/home/out"), None);
        assert_eq!(r.resolve_dir("/home/magic"), None);
        assert_eq!(r.resolve_dir("/").as_deref(), Some("/"));
    }

    #[test]
    fn files_resolve_through_symlink_chains_inside_the_root() {
        let d = dir("init");
        let root = d.0.join("root");
        std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
        std::fs::write(root.join("bin/busybox"), "").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("etc/init")).unwrap();
        std::os::unix::fs::symlink("../bin/busybox", root.join("etc/bb")).unwrap();
        // A host directory with an init of its own: never what the zone's path means.
        std::fs::write(d.0.join("outside/init"), "").unwrap();
        std::os::unix::fs::symlink(d.0.join("outside"), root.join("sbin")).unwrap();
        let r = ZoneRoot::open(&root).unwrap();
        assert_eq!(
            r.resolve("/etc/init").as_deref(),
            Some("/usr/lib/systemd/systemd")
        );
        assert_eq!(r.resolve("/etc/bb").as_deref(), Some("/bin/busybox"));
        assert_eq!(r.resolve("/sbin/init"), None);
    }
}
