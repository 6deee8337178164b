//! The VM's side of a tap, without a VM, for the tap tests here and the kvm zone network
//! test of the zones crate (`tests/vmnet.rs` includes this file): forked children that run
//! only raw system calls (the test process is multi-threaded), each waited for in bounded
//! time.

#![allow(dead_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use zones_net::tap::{ifreq, IFF_NO_PI, IFF_TAP, TUNSETIFF};

/// Run `f` in a forked child (raw system calls only); its exit code, waited for at most
/// `limit` (then the child is killed and the test fails).
pub fn run_child(limit: Duration, f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` (raw system calls only) and leaves with _exit.
    let pid = match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let code = f();
            // SAFETY: _exit skips the parent's destructors and atexit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    let until = Instant::now() + limit;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::Exited(_, c) => return c,
            WaitStatus::StillAlive if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20))
            }
            WaitStatus::StillAlive => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(pid, None);
                panic!("child {pid} still running after {limit:?}");
            }
            s => panic!("child: {s:?}"),
        }
    }
}

/// The contents (up to 63 bytes, trimmed) of `file` in the sysfs of the network namespace
/// open at `ns`, as a process inside it sees them: a child in a private mount namespace
/// mounts that namespace's sysfs on /sys.
pub fn read_sysfs_in(ns: &OwnedFd, file: &str) -> String {
    let path = std::ffi::CString::new(file).unwrap();
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let (nsraw, wraw) = (ns.as_raw_fd(), wr.as_raw_fd());
    let code = run_child(Duration::from_secs(10), || {
        // SAFETY: unshare/mount/setns/open/read/write with buffers made before the fork.
        unsafe {
            let none = std::ptr::null();
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return 10;
            }
            let private = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(none, c"/".as_ptr(), none, private, none.cast()) != 0 {
                return 11;
            }
            if libc::setns(nsraw, libc::CLONE_NEWNET) != 0 {
                return 12;
            }
            let sysfs = c"sysfs".as_ptr();
            if libc::mount(sysfs, c"/sys".as_ptr(), sysfs, 0, none.cast()) != 0 {
                return 13;
            }
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            if fd < 0 {
                return 14;
            }
            let mut buf = [0u8; 64];
            let n = libc::read(fd, buf.as_mut_ptr().cast(), 63);
            if n < 0 {
                return 15;
            }
            libc::write(wraw, buf.as_ptr().cast(), n as usize);
            0
        }
    });
    drop(wr);
    assert_eq!(code, 0, "reading {file} inside the namespace");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut out).unwrap();
    out.trim().to_string()
}

/// An ARP exchange: the VM (`mac`, `ip`) asks who has `peer`.
#[derive(Debug, Clone, Copy)]
pub struct Arp {
    pub mac: [u8; 6],
    pub ip: [u8; 4],
    pub peer: [u8; 4],
}

impl Arp {
    /// The broadcast request.
    pub fn request(&self) -> [u8; 42] {
        let mut f = [0u8; 42];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&self.mac);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&self.mac);
        f[28..32].copy_from_slice(&self.ip);
        f[38..42].copy_from_slice(&self.peer);
        f
    }

    /// Whether frame `f` is the peer's reply.
    pub fn is_reply(&self, f: &[u8]) -> bool {
        f.len() >= 42
            && f[0..6] == self.mac
            && f[12..14] == [0x08, 0x06]
            && f[20..22] == [0, 2]
            && f[28..32] == self.peer
            && f[32..38] == self.mac
            && f[38..42] == self.ip
    }
}

/// Exit codes of [`vm_child`].
pub const REPLIED: i32 = 0;
pub const REFUSED: i32 = 1;
pub const NO_REPLY: i32 = 20;

/// In a child: enter the network namespace open at `ns`, become `uid`/`gid` (no capability
/// left), attach to tap `name` as qemu does (TUNSETIFF by name). With `arp`, send its
/// request `tries` times, 200 ms apart, until the reply comes. [`REPLIED`] (or attached,
/// without `arp`), [`REFUSED`] (TUNSETIFF: EPERM), [`NO_REPLY`], or 10+ for a failed step.
pub fn vm_child(ns: &OwnedFd, name: &str, ids: (u32, u32), arp: Option<Arp>, tries: u32) -> i32 {
    let mut req = ifreq(name, IFF_TAP | IFF_NO_PI);
    let request = arp.map(|a| a.request());
    let nsraw = ns.as_raw_fd();
    let (uid, gid) = ids;
    run_child(Duration::from_secs(5 + u64::from(tries)), || {
        // SAFETY: raw system calls on this process's descriptors and stack buffers made
        // before the fork; the ids are dropped before the tap is opened.
        unsafe {
            if libc::setns(nsraw, libc::CLONE_NEWNET) != 0 {
                return 10;
            }
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return 11;
            }
            let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return 12;
            }
            if libc::ioctl(fd, TUNSETIFF, req.as_mut_ptr()) != 0 {
                return match nix::Error::last() {
                    nix::Error::EPERM => REFUSED,
                    _ => 13,
                };
            }
            let (Some(arp), Some(request)) = (arp, request) else {
                return REPLIED;
            };
            let mut buf = [0u8; 2048];
            for _ in 0..tries {
                if libc::write(fd, request.as_ptr().cast(), request.len()) != 42 {
                    return 14;
                }
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                let mut frames = 0;
                while frames < 64 && libc::poll(&mut pfd, 1, 200) > 0 {
                    frames += 1;
                    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                    if n > 0 && arp.is_reply(&buf[..n as usize]) {
                        return REPLIED;
                    }
                }
            }
            NO_REPLY
        }
    })
}
