//! sysfs for a container with a new user namespace that joins an existing network namespace
//! (a zone: the host makes its netns, the zone runs in a user namespace of its own).
//!
//! sysfs shows the network devices of the mounter's network namespace and may only be
//! mounted with privilege over that namespace's owner. Inside the new user namespace the
//! init has none over a host-owned netns, so mount(2) fails with EPERM (runc then binds the
//! host's /sys, which lists the host's links). Instead the intermediate process, after joining
//! the netns and before unsharing the user namespace, makes a detached sysfs mount
//! (fsopen/fsconfig/fsmount: read-only, nosuid, nodev, noexec); init later moves it onto the
//! destination with move_mount(2).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Mutex;

use nix::errno::Errno;

static PREMADE: Mutex<Option<OwnedFd>> = Mutex::new(None);

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// Make the detached sysfs of the current network namespace and keep it for [`take`].
pub fn premake() -> Result<(), Errno> {
    // SAFETY: fsopen reads a NUL-terminated name and returns a new descriptor or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"sysfs".as_ptr(), FSOPEN_CLOEXEC) };
    let fs = Errno::result(fs)?;
    // SAFETY: the kernel just returned this descriptor; we own it.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(r)?;
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: a live filesystem context descriptor; returns a new mount descriptor or -1.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    let m = Errno::result(m)?;
    // SAFETY: as above.
    let m = unsafe { OwnedFd::from_raw_fd(m as i32) };
    *PREMADE.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
    Ok(())
}

/// The sysfs made by [`premake`], if any (once).
pub fn take() -> Option<OwnedFd> {
    PREMADE.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Move the detached mount `tree` onto `target` (an O_PATH descriptor).
pub fn attach(tree: &OwnedFd, target: BorrowedFd<'_>) -> Result<(), Errno> {
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
