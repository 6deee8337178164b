//! The runtime binary is not writable from inside a container (CVE-2019-5736).
//!
//! A container process that executes `#!/proc/self/exe` (or opens `/proc/<pid>/exe` of a
//! process runz is starting) reaches the binary of runz, zlogin or zoneadm itself; as the
//! host's root (no user namespace) it could then rewrite it. Before entering a container these
//! tools re-execute themselves from a read-only, detached bind mount of their own binary, as
//! crun does: `open_tree(OPEN_TREE_CLONE)` of /proc/self/exe, `mount_setattr(MOUNT_ATTR_RDONLY)`,
//! `execveat(AT_EMPTY_PATH)`. No copy is made; the cost is one execve of the static binary.
//! A binary already on a read-only mount (including this clone) is used as it is. Where the
//! mount API is missing (Linux < 5.12) or not permitted (an unprivileged caller), the binary is
//! copied into a memfd sealed against writes instead (runc's fallback), which costs a copy.
//!
//! The clone has no path of its own (`std::env::current_exe` names the detached mount), so the
//! original path travels in `ZONES_ORIGINAL_EXE`: use [`original_exe`] to find files beside
//! the binary or to run it again.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use zones_mountapi as mountapi;

#[derive(Debug, thiserror::Error)]
pub enum ExesealError {
    #[error("statvfs /proc/self/exe: {0}")]
    Stat(Errno),
    #[error("a read-only clone of /proc/self/exe (open_tree, mount_setattr): {0}")]
    ReadOnly(Errno),
    #[error("execveat the sealed copy of /proc/self/exe: {0}")]
    Exec(Errno),
    #[error("copy /proc/self/exe into a sealed memfd: {0}")]
    Memfd(String),
    #[error("argument or environment entry contains a NUL byte")]
    Nul,
}

/// Whether nothing can open the running binary for writing: it sits on a read-only mount, or
/// it is a memfd sealed against writes.
pub fn is_sealed() -> Result<bool, ExesealError> {
    let st = nix::sys::statvfs::statvfs("/proc/self/exe").map_err(ExesealError::Stat)?;
    if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    Ok(std::fs::File::open("/proc/self/exe").is_ok_and(|f| write_sealed(&f)))
}

fn write_sealed(f: &impl AsRawFd) -> bool {
    // SAFETY: F_GET_SEALS only reads the seals of a descriptor we hold (EINVAL: no memfd).
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Re-execute the running binary, with the same arguments and environment, from a read-only
/// clone of itself (or, without the mount API, a sealed memfd copy), unless it already is one.
/// Returns only when nothing needs doing, or with the error.
///
/// The caller must be single-threaded (execve) and must not hold anything that has to survive.
pub fn ensure_sealed() -> Result<(), ExesealError> {
    if is_sealed()? {
        return Ok(());
    }
    let exe = match read_only_clone() {
        Ok(fd) => fd,
        Err(Errno::ENOSYS | Errno::EPERM | Errno::EINVAL) => sealed_copy()?,
        Err(e) => return Err(ExesealError::ReadOnly(e)),
    };
    Err(reexec(&exe))
}

/// A detached bind mount of the running binary, made read-only.
fn read_only_clone() -> Result<OwnedFd, Errno> {
    let tree = mountapi::clone_tree(c"/proc/self/exe", false)?;
    mountapi::set_attr(tree.as_fd(), MOUNT_ATTR_RDONLY, 0, None, false)?;
    Ok(tree)
}

/// A memfd holding a copy of the running binary, sealed against writes, growth and shrinking.
fn sealed_copy() -> Result<OwnedFd, ExesealError> {
    let err = |e: std::io::Error| ExesealError::Memfd(e.to_string());
    // SAFETY: memfd_create reads a NUL-terminated name and returns a new descriptor or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"zones-exe".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let memfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(memfd.try_clone().map_err(err)?);
    let mut src = std::fs::File::open("/proc/self/exe").map_err(err)?;
    std::io::copy(&mut src, &mut dst).map_err(err)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on the memfd we own; no shared writable mapping of it exists.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(memfd)
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// The environment variable that carries the binary's path across the re-exec.
const ORIGINAL_EXE: &str = "ZONES_ORIGINAL_EXE";

/// The path of the running binary as it was started, also after [`ensure_sealed`] re-executed
/// it from its read-only clone: `ZONES_ORIGINAL_EXE` when it names the very file that runs
/// (same device and inode; any file when running from a sealed memfd copy), else
/// `std::env::current_exe`.
pub fn original_exe() -> std::io::Result<PathBuf> {
    original_exe_from(std::env::var_os(ORIGINAL_EXE))
}

fn original_exe_from(var: Option<OsString>) -> std::io::Result<PathBuf> {
    if let Some(p) = var.map(PathBuf::from) {
        // A memfd copy is another file: then the path only has to exist.
        let memfd = std::fs::File::open("/proc/self/exe").is_ok_and(|f| write_sealed(&f));
        if same_file(&p, Path::new("/proc/self/exe")) || (memfd && p.is_file()) {
            return Ok(p);
        }
    }
    std::env::current_exe()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

fn reexec(exe: &OwnedFd) -> ExesealError {
    let argv = match cstrings(std::env::args_os()) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let original = std::env::current_exe().unwrap_or_default();
    let env = std::env::vars_os()
        .filter(|(k, _)| k != ORIGINAL_EXE)
        .chain(std::iter::once((
            OsString::from(ORIGINAL_EXE),
            original.into_os_string(),
        )));
    let envp = match cstrings(env.map(|(k, v)| {
        std::os::unix::ffi::OsStringExt::from_vec([k.as_bytes(), b"=", v.as_bytes()].concat())
    })) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: execveat with an fd we own, an empty NUL-terminated path and NULL-terminated
    // arrays of pointers into CStrings that outlive the call; it returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    ExesealError::Exec(Errno::last())
}

fn cstrings(items: impl Iterator<Item = OsString>) -> Result<Vec<CString>, ExesealError> {
    items
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ExesealError::Nul))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_path_is_believed_only_for_the_running_file() {
        let me = std::env::current_exe().unwrap();
        // A hard link elsewhere is the same file: believed (the clone shares the inode too).
        let dir = std::env::temp_dir().join(format!("runz-test-exeseal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("me");
        let _ = std::fs::remove_file(&link);
        let linked = std::fs::hard_link(&me, &link).is_ok();
        if linked {
            assert_eq!(original_exe_from(Some(link.clone().into())).unwrap(), link);
        }
        // Another file, or nothing: current_exe.
        assert_eq!(original_exe_from(Some("/bin/sh".into())).unwrap(), me);
        assert_eq!(original_exe_from(None).unwrap(), me);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_memfd_fallback_cannot_be_written() {
        let copy = sealed_copy().unwrap();
        assert!(write_sealed(&copy));
        let len = std::fs::metadata(format!("/proc/self/fd/{}", copy.as_raw_fd()))
            .unwrap()
            .len();
        assert_eq!(len, std::fs::metadata("/proc/self/exe").unwrap().len());
        // What a container would try through /proc/<pid>/exe: reopen for writing, and write.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", copy.as_raw_fd()))
            .unwrap();
        let e = std::io::Write::write(&mut w, b"PWNED").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    }
}
