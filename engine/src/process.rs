//! The channel between `runz create` (the parent) and the processes it forks (the intermediate
//! child and init): a SOCK_SEQPACKET socketpair carrying one small JSON message per packet.
//! A closed peer (every holder of the other end exited) reads as `Eof`. One message carries an
//! fd (SCM_RIGHTS): `SeccompFd`, the seccomp notify listener.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, send, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// Messages of the create handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// parent → child: maps written, cgroup joined, rlimits set; go on.
    Go,
    /// child → parent: I have unshared my user namespace; write my uid/gid maps.
    WriteIdMaps,
    /// intermediate → parent: the pid (in the parent's pid namespace) of the real init.
    InitPid(i32),
    /// init → parent: run the prestart and createRuntime hooks now.
    RunHooks,
    /// parent → init: hooks done.
    HooksDone,
    /// init → parent: set up, now blocking on the exec fifo.
    Ready,
    /// init or exec'd process → parent, with the seccomp notify listener fd attached: hand it
    /// to the profile's agent; the parent answers `Go` (or `Error`).
    SeccompFd,
    /// either way: what failed.
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel: {0}")]
    Sys(nix::Error),
    #[error("the container's init exited during create")]
    Eof,
    #[error("channel: bad message: {0}")]
    Bad(String),
}

/// The longest error text sent whole; recv's buffer is 64 KiB and JSON escaping can double it.
const MAX_ERROR: usize = 16 * 1024;

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end). Both close on exec.
pub fn pair() -> Result<(Channel, Channel), ChannelError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ChannelError::Sys)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<(), ChannelError> {
        let msg = match msg {
            // An error text longer than a packet would be lost with the packet (EMSGSIZE) and
            // the parent would only see init exit.
            Msg::Error(e) if e.len() > MAX_ERROR => {
                let mut end = MAX_ERROR;
                while !e.is_char_boundary(end) {
                    end -= 1;
                }
                &Msg::Error(format!("{}...", &e[..end]))
            }
            m => m,
        };
        let data = serde_json::to_vec(msg).map_err(|e| ChannelError::Bad(e.to_string()))?;
        send(self.fd.as_raw_fd(), &data, MsgFlags::MSG_NOSIGNAL).map_err(ChannelError::Sys)?;
        Ok(())
    }

    /// Send `msg` with `fd` attached (SCM_RIGHTS); the peer gets it from [`Channel::recv_with_fd`].
    pub fn send_with_fd(&self, msg: &Msg, fd: &OwnedFd) -> Result<(), ChannelError> {
        let data = serde_json::to_vec(msg).map_err(|e| ChannelError::Bad(e.to_string()))?;
        let fds = [fd.as_raw_fd()];
        let iov = [IoSlice::new(&data)];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(ChannelError::Sys)?;
        Ok(())
    }

    /// The next message; an fd sent with it is closed.
    pub fn recv(&self) -> Result<Msg, ChannelError> {
        self.recv_with_fd().map(|(msg, _)| msg)
    }

    /// The next message and the fd sent with it, if any (received close-on-exec).
    pub fn recv_with_fd(&self) -> Result<(Msg, Option<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cbuf = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let got = match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cbuf),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(got) => got,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ChannelError::Sys(e)),
            };
            let mut fd = None;
            for c in got.cmsgs().map_err(ChannelError::Sys)? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for raw in fds {
                        // SAFETY: the kernel just installed this fd for us; nothing else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            let n = got.bytes;
            if n == 0 {
                return Err(ChannelError::Eof);
            }
            let msg =
                serde_json::from_slice(&buf[..n]).map_err(|e| ChannelError::Bad(e.to_string()))?;
            return Ok((msg, fd));
        }
    }

    /// Receive and require `want`; an `Error` message becomes the error text.
    pub fn expect(&self, want: &Msg) -> Result<(), String> {
        match self.recv() {
            Ok(m) if &m == want => Ok(()),
            Ok(Msg::Error(e)) => Err(e),
            Ok(other) => Err(format!("expected {want:?}, got {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_and_eof_is_seen() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::InitPid(42)).unwrap();
        a.send(&Msg::Error("x failed".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::InitPid(42));
        assert_eq!(b.expect(&Msg::Ready), Err("x failed".to_string()));
        a.send(&Msg::Error("\"é".repeat(40_000))).unwrap();
        match b.recv().unwrap() {
            Msg::Error(e) => assert!(
                e.len() <= MAX_ERROR + 3 && e.ends_with("..."),
                "{}",
                e.len()
            ),
            other => panic!("{other:?}"),
        }
        let (r, w) = nix::unistd::pipe().unwrap();
        a.send_with_fd(&Msg::SeccompFd, &w).unwrap();
        drop(w);
        let (msg, fd) = b.recv_with_fd().unwrap();
        assert_eq!(msg, Msg::SeccompFd);
        nix::unistd::write(fd.as_ref().expect("an fd came with it"), b"y").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut one).unwrap(), 1);
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Eof)));
    }
}
