//! Network namespaces without entering them: a namespace is made by a forked child
//! (unshare + bind mount of its nsfs file), and work inside one goes through a netlink socket
//! that a forked child opens there and passes back. The calling process never changes
//! namespace and needs no threads.
//!
//! The children run only raw system calls (no allocation), so the callers may be
//! multi-threaded (tests) as well as single-threaded (the zone supervisor).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};

use crate::netlink::Netlink;
use crate::{NetError, Result};

pub(crate) fn ns_err(path: &Path, msg: impl std::fmt::Display) -> NetError {
    NetError::Netns {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

fn cstr(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ns_err(path, "path contains NUL"))
}

/// Run `child` in a forked process; it returns 0 or (step << 16 | errno), reported through a
/// pipe. `child` must only make raw system calls.
pub(crate) fn in_child(path: &Path, what: &[&str], child: impl FnOnce() -> u32) -> Result<()> {
    let code = child_code(path, child)?;
    if code == 0 {
        return Ok(());
    }
    let (step, errno) = split_code(code);
    let step = what.get(step).copied().unwrap_or("?");
    Err(ns_err(path, format!("{step}: {}", errno.desc())))
}

/// A child's failure code as (step, errno).
pub(crate) fn split_code(code: u32) -> (usize, nix::Error) {
    (
        (code >> 16) as usize,
        nix::Error::from_raw((code & 0xffff) as i32),
    )
}

/// Run `child` in a forked process and return its code (0, or step << 16 | errno).
pub(crate) fn child_code(path: &Path, child: impl FnOnce() -> u32) -> Result<u32> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| ns_err(path, e))?;
    // SAFETY: the child only runs `child` (raw system calls, no allocation or locks) and
    // leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(|e| ns_err(path, format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            let code = child();
            let bytes = code.to_ne_bytes();
            // SAFETY: write(2) and _exit(2) are async-signal-safe; `bytes` lives on the stack.
            unsafe {
                libc::write(wr.as_raw_fd(), bytes.as_ptr().cast(), 4);
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let mut buf = [0u8; 4];
            let n = nix::unistd::read(rd.as_raw_fd(), &mut buf).unwrap_or(0);
            let status = waitpid(child, None);
            if n != 4 || !matches!(status, Ok(WaitStatus::Exited(_, 0))) {
                return Err(ns_err(path, format!("helper process failed: {status:?}")));
            }
            Ok(u32::from_ne_bytes(buf))
        }
    }
}

pub(crate) fn errno_code(step: u32) -> u32 {
    (step << 16) | (nix::Error::last_raw() as u32 & 0xffff)
}

/// A new, empty network namespace (only `lo`, down), kept alive by a bind mount of its nsfs
/// file at `path` (created here; its directory must exist).
pub fn create(path: &Path) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ns_err(path, format!("create: {e}")))?;
    let target = cstr(path)?;
    let source = c"/proc/self/ns/net";
    let r = in_child(path, &["?", "unshare", "bind mount"], || {
        // SAFETY: unshare and mount with NUL-terminated strings prepared before the fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return errno_code(1);
            }
            if libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            ) != 0
            {
                return errno_code(2);
            }
        }
        0
    });
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r
}

/// Whether `path` is a mounted network namespace file.
pub fn is_netns(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type().0 == libc::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Unmount and remove a namespace file made by [`create`]. The namespace itself ends when no
/// process is left in it; its links go with it. A missing file is not an error.
pub fn remove(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    while is_netns(path) {
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| ns_err(path, format!("unmount: {e}")))?;
    }
    std::fs::remove_file(path).map_err(|e| ns_err(path, format!("remove: {e}")))
}

/// Open a namespace file (for `setns` or IFLA_NET_NS_FD).
pub fn open(path: &Path) -> Result<OwnedFd> {
    if !is_netns(path) {
        return Err(ns_err(path, "not a network namespace file"));
    }
    let f = std::fs::File::open(path).map_err(|e| ns_err(path, format!("open: {e}")))?;
    Ok(OwnedFd::from(f))
}

/// A netlink socket inside the namespace open at `ns`: a forked child enters it, opens the
/// socket there and passes it back (a socket stays in the namespace it was made in).
pub fn netlink_in(ns: BorrowedFd, label: &Path) -> Result<Netlink> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Datagram,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ns_err(label, format!("socketpair: {e}")))?;
    let nsfd = ns.as_raw_fd();
    let out = theirs.as_raw_fd();
    in_child(label, &["?", "setns", "netlink socket", "send"], || {
        // SAFETY: setns/socket/sendmsg on fds owned by this process, with stack buffers only.
        unsafe {
            if libc::setns(nsfd, libc::CLONE_NEWNET) != 0 {
                return errno_code(1);
            }
            let s = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if s < 0 {
                return errno_code(2);
            }
            if send_fd(out, s) != 0 {
                return errno_code(3);
            }
        }
        0
    })?;
    drop(theirs);
    let fd = recv_fd(&ours).map_err(|e| ns_err(label, format!("receive socket: {e}")))?;
    Netlink::from_fd(fd)
}

/// Write `value` to the sysctl `key` (`net/ipv6/conf/vmbr0/disable_ipv6`) of the namespace
/// open at `ns`: a forked child enters it (/proc/sys/net is the opener's namespace's).
/// `Ok(false)` when the key does not exist (e.g. IPv6 is off on this host).
pub fn sysctl_in(ns: BorrowedFd, label: &Path, key: &str, value: &str) -> Result<bool> {
    let file = PathBuf::from("/proc/sys").join(key);
    let path = cstr(&file)?;
    let nsfd = ns.as_raw_fd();
    let code = child_code(label, || {
        // SAFETY: setns/open/write/close with a NUL-terminated path and a byte slice made
        // before the fork.
        unsafe {
            if libc::setns(nsfd, libc::CLONE_NEWNET) != 0 {
                return errno_code(1);
            }
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return errno_code(2);
            }
            let n = libc::write(fd, value.as_ptr().cast(), value.len());
            let code = if n == value.len() as isize {
                0
            } else {
                errno_code(3)
            };
            libc::close(fd);
            code
        }
    })?;
    match split_code(code) {
        (0, _) => Ok(true),
        (2, nix::Error::ENOENT) => Ok(false),
        (step, errno) => {
            let what = ["?", "setns", "open", "write"][step.min(3)];
            Err(ns_err(
                label,
                format!("{what} {}: {}", file.display(), errno.desc()),
            ))
        }
    }
}

/// Turn IPv6 off on link `dev` of the namespace open at `ns` (a bridge port that must send
/// nothing of its own: no link-local address, router solicitation or MLD report).
pub fn disable_ipv6(ns: BorrowedFd, label: &Path, dev: &str) -> Result<()> {
    crate::names::check_ifname(dev)?;
    sysctl_in(ns, label, &format!("net/ipv6/conf/{dev}/disable_ipv6"), "1").map(drop)
}

/// Send `fd` over the unix socket `sock` (SCM_RIGHTS) with no allocation.
///
/// # Safety
/// `sock` and `fd` must be open descriptors.
unsafe fn send_fd(sock: RawFd, fd: RawFd) -> i32 {
    // Room for one cmsghdr carrying one int, aligned for cmsghdr.
    #[repr(C)]
    struct Cmsg {
        hdr: libc::cmsghdr,
        fd: RawFd,
        pad: u32,
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: an all-zero cmsghdr/msghdr is a valid starting value.
    let mut c: Cmsg = std::mem::zeroed();
    c.hdr.cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
    c.hdr.cmsg_level = libc::SOL_SOCKET;
    c.hdr.cmsg_type = libc::SCM_RIGHTS;
    c.fd = fd;
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut c as *mut Cmsg).cast();
    msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
    if libc::sendmsg(sock, &msg, 0) == 1 {
        0
    } else {
        -1
    }
}

fn recv_fd(sock: &OwnedFd) -> std::result::Result<OwnedFd, String> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| e.to_string())?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err("no descriptor received".into())
}

/// A namespace file made by [`create`], with a netlink socket inside it; removed on drop.
#[derive(Debug)]
pub struct NetnsGuard {
    pub path: PathBuf,
}

impl NetnsGuard {
    pub fn create(path: &Path) -> Result<NetnsGuard> {
        create(path)?;
        Ok(NetnsGuard {
            path: path.to_path_buf(),
        })
    }

    pub fn open(&self) -> Result<OwnedFd> {
        open(&self.path)
    }

    pub fn netlink(&self) -> Result<Netlink> {
        let fd = self.open()?;
        netlink_in(std::os::fd::AsFd::as_fd(&fd), &self.path)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = remove(&self.path);
    }
}
