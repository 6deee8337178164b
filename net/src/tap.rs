//! Persistent tap devices for virtual machines, made inside a network namespace.
//!
//! A forked child enters the namespace, opens `/dev/net/tun` and makes the device with
//! TUNSETIFF (IFF_TAP | IFF_NO_PI, exclusive: an existing device is an error, not joined),
//! gives it an owner and group (TUNSETOWNER, TUNSETGROUP: host ids) and keeps it after the
//! child's descriptor closes (TUNSETPERSIST). The owner, an unprivileged hypervisor, later
//! attaches to it by name (TUNSETIFF) without any capability. The calling process never
//! changes namespace. A tap goes with its namespace, or with [`remove_tap`].

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use crate::names::check_ifname;
use crate::netns::{child_code, errno_code, netlink_in, ns_err, split_code};
use crate::{NetError, Result};

/// `_IOW('T', 202, int)` and its neighbours (linux/if_tun.h).
pub const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;
pub const IFF_TAP: u16 = 0x0002;
pub const IFF_NO_PI: u16 = 0x1000;
const IFF_TUN_EXCL: u16 = 0x8000;

/// A `struct ifreq` (40 bytes on 64-bit Linux) naming `name`, with `flags` in ifr_flags.
/// `name` must have passed [`check_ifname`] (at most 15 bytes).
pub fn ifreq(name: &str, flags: u16) -> [u8; 40] {
    let mut r = [0u8; 40];
    let n = name.len().min(crate::names::MAX_IFNAME);
    r[..n].copy_from_slice(&name.as_bytes()[..n]);
    r[16..18].copy_from_slice(&flags.to_ne_bytes());
    r
}

const STEPS: [&str; 7] = [
    "?",
    "setns",
    "open /dev/net/tun",
    "TUNSETIFF",
    "TUNSETOWNER",
    "TUNSETGROUP",
    "TUNSETPERSIST",
];

/// Make the persistent tap `name` in the namespace open at `ns` (`label`, its file, names it
/// in errors), owned by host user `uid` and group `gid`. The device is left down.
pub fn create_tap(ns: BorrowedFd, label: &Path, name: &str, uid: u32, gid: u32) -> Result<()> {
    check_ifname(name)?;
    let mut req = ifreq(name, IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL);
    let nsfd = ns.as_raw_fd();
    let code = child_code(label, || {
        // SAFETY: setns/open/ioctl/close on descriptors of this process, with the ifreq on
        // the stack, prepared before the fork.
        unsafe {
            if libc::setns(nsfd, libc::CLONE_NEWNET) != 0 {
                return errno_code(1);
            }
            let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if fd < 0 {
                return errno_code(2);
            }
            let steps: [(libc::c_ulong, libc::c_ulong); 4] = [
                (TUNSETIFF, req.as_mut_ptr() as libc::c_ulong),
                (TUNSETOWNER, libc::c_ulong::from(uid)),
                (TUNSETGROUP, libc::c_ulong::from(gid)),
                (TUNSETPERSIST, 1),
            ];
            let mut code = 0;
            for (i, (op, arg)) in steps.iter().enumerate() {
                if libc::ioctl(fd, *op, *arg) != 0 {
                    code = errno_code(3 + i as u32);
                    break;
                }
            }
            libc::close(fd);
            code
        }
    })?;
    match split_code(code) {
        (0, _) => Ok(()),
        (3, nix::Error::EBUSY) => Err(NetError::LinkExists(name.to_string())),
        (step, errno) => {
            let what = STEPS.get(step).copied().unwrap_or("?");
            let arg = match step {
                4 => format!(" {uid}"),
                5 => format!(" {gid}"),
                _ => String::new(),
            };
            Err(ns_err(
                label,
                format!("tap {name}: {what}{arg}: {}", errno.desc()),
            ))
        }
    }
}

/// Remove tap `name` from the namespace open at `ns` (detaching whoever holds it); true
/// when there was one.
pub fn remove_tap(ns: BorrowedFd, label: &Path, name: &str) -> Result<bool> {
    netlink_in(ns, label)?.delete_if_exists(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_layout() {
        let r = ifreq("vmtap0", IFF_TAP | IFF_NO_PI);
        assert_eq!(&r[..7], b"vmtap0\0");
        assert_eq!(u16::from_ne_bytes([r[16], r[17]]), 0x1002);
        let long = ifreq("a23456789012345", 0);
        assert_eq!(long[15], 0, "NUL-terminated within IFNAMSIZ");
    }
}
