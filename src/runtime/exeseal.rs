//! The runtime binary is not writable from inside a container (CVE-2019-5736).
//!
//! A container process that executes `#!/proc/self/exe` (or opens `/proc/<pid>/exe` of a
//! process runz is starting) reaches the binary of runz, zlogin or zoneadm itself; as the
//! host's root (no user namespace) it could then rewrite it. Before entering a container these
//! tools re-execute themselves from a read-only, detached bind mount of their own binary, as
//! crun does: `open_tree(OPEN_TREE_CLONE)` of /proc/self/exe, `mount_setattr(MOUNT_ATTR_RDONLY)`,
//! `execveat(AT_EMPTY_PATH)`. No copy is made; the cost is one execve of the static binary.
//! A binary already on a read-only mount (including this clone) is used as it is.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use zones_mountapi as mountapi;

#[derive(Debug, thiserror::Error)]
pub enum ExesealError {
    #[error("statvfs /proc/self/exe: {0}")]
    Stat(Errno),
    #[error("open_tree /proc/self/exe: {0}")]
    Clone(Errno),
    #[error("mount_setattr MOUNT_ATTR_RDONLY on the clone of /proc/self/exe: {0}")]
    ReadOnly(Errno),
    #[error("execveat the read-only clone of /proc/self/exe: {0}")]
    Exec(Errno),
    #[error("argument or environment entry contains a NUL byte")]
    Nul,
}

/// Whether the running binary sits on a read-only mount: nothing can open it for writing.
pub fn is_sealed() -> Result<bool, ExesealError> {
    let st = nix::sys::statvfs::statvfs("/proc/self/exe").map_err(ExesealError::Stat)?;
    Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Re-execute the running binary, with the same arguments and environment, from a read-only
/// clone of itself, unless it already runs from a read-only mount. Returns only when nothing
/// needs doing, or when the caller may not make mounts (EPERM: an unprivileged caller, whose
/// containers cannot write a binary it cannot write either).
///
/// The caller must be single-threaded (execve) and must not hold anything that has to survive.
pub fn ensure_sealed() -> Result<(), ExesealError> {
    if is_sealed()? {
        return Ok(());
    }
    let tree = match mountapi::clone_tree(c"/proc/self/exe", false) {
        Ok(fd) => fd,
        Err(Errno::EPERM) => return Ok(()),
        Err(e) => return Err(ExesealError::Clone(e)),
    };
    mountapi::set_attr(tree.as_fd(), MOUNT_ATTR_RDONLY, 0, None, false)
        .map_err(ExesealError::ReadOnly)?;
    Err(reexec(&tree))
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

fn reexec(exe: &OwnedFd) -> ExesealError {
    let argv = match cstrings(std::env::args_os()) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let envp = match cstrings(std::env::vars_os().map(|(k, v)| {
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
