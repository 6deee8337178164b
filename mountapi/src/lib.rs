//! The new mount API (Linux 5.12+) and the user namespaces id-mapped mounts are made with.
//!
//! Shared by the runtime (OCI `idmap` mounts, recursive mount attributes) and the zones'
//! storage (an image's rootfs id-mapped into a zone's user-namespace range): the system calls,
//! `struct mount_attr` and the short-lived child that holds a user namespace live here once.
//! Callers turn `Errno`s into their own errors, with their own context.

use std::ffi::CStr;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// `MOUNT_ATTR_IDMAP` of mount_setattr(2).
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached copy of the mount at `src` (with its submounts if `recursive`):
/// open_tree(2) with `OPEN_TREE_CLONE`.
pub fn clone_tree(src: &CStr, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree reads a NUL-terminated path and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, src.as_ptr(), flags) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// mount_setattr(2) on the mount `fd` names (and its submounts if `recursive`): set and clear
/// `MOUNT_ATTR_*` bits; with `userns`, `MOUNT_ATTR_IDMAP` maps ids through that namespace.
pub fn set_attr(
    fd: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut at = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        at |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: an empty NUL-terminated path, a live `struct mount_attr` with its exact size;
    // the kernel only reads from it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            at,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

/// move_mount(2) of a detached tree onto the mount point `target` names (an O_PATH
/// descriptor).
pub fn move_to_fd(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both paths empty, with the flags that make the descriptors source and target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// move_mount(2) of a detached tree onto the directory at `target`.
pub fn move_to_path(tree: BorrowedFd<'_>, target: &CStr) -> Result<(), Errno> {
    // SAFETY: an empty source path with MOVE_MOUNT_F_EMPTY_PATH, a NUL-terminated target.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// Why [`userns_with`] made no user namespace.
#[derive(Debug)]
pub enum UsernsError<E> {
    /// pipe(2) or fork(2) failed.
    Sys(&'static str, Errno),
    /// The child could not unshare a user namespace.
    Unshare,
    /// Writing the maps failed.
    Maps(E),
    /// `/proc/<child>/ns/user` could not be opened.
    Open(std::io::Error),
}

/// A new user namespace, kept alive by the returned descriptor: a short-lived child unshares
/// it and waits while `write_maps(child_pid)` writes its maps from here; this process keeps
/// `/proc/<child>/ns/user` open and lets the child go.
///
/// The caller must be single-threaded (it forks).
pub fn userns_with<E>(
    write_maps: impl FnOnce(i32) -> Result<(), E>,
) -> Result<OwnedFd, UsernsError<E>> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| UsernsError::Sys("pipe", e))?;
    let (hold_r, hold_w) = nix::unistd::pipe().map_err(|e| UsernsError::Sys("pipe", e))?;
    // SAFETY: callers are single-threaded here (documented); the child only makes raw system
    // calls and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| UsernsError::Sys("fork", e))? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: plain syscalls on fds this process owns; _exit ends it without unwinding.
            unsafe {
                let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                let b = [u8::from(ok)];
                libc::write(ready_w.as_raw_fd(), b.as_ptr().cast(), 1);
                let mut x = [0u8; 1];
                libc::read(hold_r.as_raw_fd(), x.as_mut_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(ready_w);
            drop(hold_r);
            let mut b = [0u8; 1];
            let unshared = fs::File::from(ready_r)
                .read(&mut b)
                .map(|n| n == 1 && b[0] == 1);
            let pid = child.as_raw();
            let result = match unshared {
                Ok(true) => write_maps(pid).map_err(UsernsError::Maps).and_then(|()| {
                    fs::File::open(format!("/proc/{pid}/ns/user"))
                        .map(OwnedFd::from)
                        .map_err(UsernsError::Open)
                }),
                _ => Err(UsernsError::Unshare),
            };
            let _ = fs::File::from(hold_w).write_all(b"x");
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_namespace_with_the_maps_written() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let ns = userns_with(|pid| {
            fs::write(format!("/proc/{pid}/uid_map"), "0 100000 65536\n")?;
            fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
            fs::write(format!("/proc/{pid}/gid_map"), "0 100000 65536\n")
        })
        .expect("user namespace");
        let mine = fs::read_link("/proc/self/ns/user").unwrap();
        let theirs = fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap();
        assert_ne!(mine, theirs, "a namespace of its own");
        assert!(theirs.to_string_lossy().starts_with("user:["));
    }

    #[test]
    fn maps_that_fail_are_reported_as_such() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let r = userns_with(|_| Err::<(), &str>("no maps"));
        assert!(matches!(r, Err(UsernsError::Maps("no maps"))), "{r:?}");
    }
}
