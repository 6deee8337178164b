//! A synchronous rtnetlink socket: build a request, send it, read the ack or the dump.
//!
//! Raw netlink rather than a crate: the few messages zones need (links, addresses, routes)
//! are simple TLV structures, and a blocking socket with no runtime keeps the supervisor
//! single-threaded.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{NetError, Result};

pub(crate) const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One request under construction: header, fixed family struct, then attributes.
#[derive(Debug, Clone)]
pub struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Msg { buf }
    }

    /// The family header (ifinfomsg, ifaddrmsg, rtmsg), padded to 4 bytes.
    pub fn header(&mut self, bytes: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }

    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Msg {
        let len = u16::try_from(4 + data.len()).expect("netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d)
    }

    /// Start a nested attribute; close it with `end_nest(returned offset)`.
    pub fn begin_nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.attr(ty | NLA_F_NESTED, &[]);
        at
    }

    pub fn end_nest(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).expect("nest under 64 KiB");
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    #[cfg(test)]
    pub(crate) fn bytes_for_test(&mut self) -> Vec<u8> {
        self.finish(0).to_vec()
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = u32::try_from(self.buf.len()).expect("message under 4 GiB");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// An attribute of a reply.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub ty: u16,
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.data.get(..4)?.try_into().ok()?))
    }

    pub fn str(&self) -> Option<&'a str> {
        let d = self.data.split(|b| *b == 0).next()?;
        std::str::from_utf8(d).ok()
    }
}

/// The attributes in `data` (nested flags masked off).
pub fn attrs(mut data: &[u8]) -> Vec<Attr<'_>> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            break;
        }
        out.push(Attr {
            ty,
            data: &data[4..len],
        });
        data = &data[align4(len).min(data.len())..];
    }
    out
}

/// A reply message: its type and its payload after the netlink header.
#[derive(Debug, Clone)]
pub struct Reply {
    pub ty: u16,
    pub payload: Vec<u8>,
}

/// A NETLINK_ROUTE socket bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the caller's network namespace.
    pub fn open() -> Result<Netlink> {
        // SAFETY: plain socket(2); the returned fd is checked and owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(NetError::Socket(nix::Error::last()));
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Netlink::from_fd(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Wrap a NETLINK_ROUTE socket (e.g. one opened inside another namespace).
    pub fn from_fd(fd: OwnedFd) -> Result<Netlink> {
        let one: libc::c_int = 1;
        for opt in [libc::NETLINK_EXT_ACK, libc::NETLINK_CAP_ACK] {
            // SAFETY: setsockopt with a pointer to a c_int of the right size.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        // A reply that never comes is an error, not a hang.
        let tv = libc::timeval {
            tv_sec: 30,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a pointer to a timeval of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Netlink { fd, seq: 1 })
    }

    fn send(&mut self, msg: &mut Msg) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        let n = nix::unistd::write(&self.fd, bytes).map_err(NetError::Socket)?;
        if n != bytes.len() {
            return Err(NetError::Protocol("short write"));
        }
        Ok(seq)
    }

    fn recv_batch(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nix::unistd::read(self.fd.as_raw_fd(), &mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EAGAIN) => return Err(NetError::Protocol("no reply in 30 s")),
                Err(e) => return Err(NetError::Socket(e)),
            }
        }
    }

    /// Send `msg` and collect replies until the ack (or error), or NLMSG_DONE for a dump.
    /// `op` and `target` name the operation in an error.
    pub fn request(&mut self, op: &'static str, target: &str, msg: &mut Msg) -> Result<Vec<Reply>> {
        let seq = self.send(msg)?;
        let mut out = Vec::new();
        loop {
            let batch = self.recv_batch()?;
            let mut rest = &batch[..];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let ty = u16::from_ne_bytes([rest[4], rest[5]]);
                let flags = u16::from_ne_bytes([rest[6], rest[7]]);
                let mseq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(NetError::Protocol("bad message length"));
                }
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align4(len).min(rest.len())..];
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => return error_reply(op, target, flags, payload).map(|()| out),
                    _ => out.push(Reply {
                        ty,
                        payload: payload.to_vec(),
                    }),
                }
            }
        }
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An NLMSG_ERROR payload: code 0 is the ack.
fn error_reply(op: &'static str, target: &str, flags: u16, payload: &[u8]) -> Result<()> {
    let code = i32::from_ne_bytes(
        payload
            .get(..4)
            .ok_or(NetError::Protocol("short error"))?
            .try_into()
            .expect("4 bytes"),
    );
    if code == 0 {
        return Ok(());
    }
    // With NETLINK_CAP_ACK the echoed request is only its header; TLVs follow.
    let msg = if flags & NLM_F_ACK_TLVS != 0 && payload.len() > 4 + NLMSG_HDRLEN {
        attrs(&payload[4 + NLMSG_HDRLEN..])
            .into_iter()
            .find(|a| a.ty == NLMSGERR_ATTR_MSG)
            .and_then(|a| a.str().map(str::to_string))
    } else {
        None
    };
    Err(NetError::Kernel {
        op,
        target: target.to_string(),
        errno: nix::Error::from_raw(-code),
        msg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_sized() {
        let mut m = Msg::new(16, NLM_F_ACK);
        m.header(&[0u8; 16]);
        m.attr_str(3, "eth0");
        let n = m.begin_nest(18);
        m.attr_str(1, "veth");
        m.end_nest(n);
        let bytes = m.finish(7).to_vec();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        let a = attrs(&bytes[NLMSG_HDRLEN + 16..]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].str(), Some("eth0"));
        assert_eq!(a[1].ty, 18, "nested flag masked");
        let inner = attrs(a[1].data);
        assert_eq!(inner[0].str(), Some("veth"));
    }

    #[test]
    fn error_codes_name_the_target() {
        let mut p = (-libc::ENODEV).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0u8; 16]);
        let e = error_reply("delete link", "nope0", 0, &p).unwrap_err();
        assert_eq!(e.to_string(), "delete link 'nope0': No such device");
        assert!(error_reply("x", "y", 0, &0i32.to_ne_bytes()).is_ok());
    }
}
