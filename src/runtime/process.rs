//! The channel between `runz create` (the parent) and the processes it forks (the intermediate
//! child and init): a SOCK_SEQPACKET socketpair carrying one small JSON message per packet.
//! A closed peer (every holder of the other end exited) reads as `Eof`.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
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

    pub fn recv(&self) -> Result<Msg, ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return Err(ChannelError::Eof),
                Ok(n) => {
                    return serde_json::from_slice(&buf[..n])
                        .map_err(|e| ChannelError::Bad(e.to_string()))
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ChannelError::Sys(e)),
            }
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
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Eof)));
    }
}
