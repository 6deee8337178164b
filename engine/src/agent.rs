//! The seccomp agent protocol (runtime-spec "seccomp agent", as runc speaks it): when a
//! profile has SCMP_ACT_NOTIFY rules, the process that installed the filter hands its listener
//! fd to the runtime, which connects to the profile's `listenerPath` (a Unix stream socket),
//! sends one message — the container process state JSON, the listener fd in SCM_RIGHTS — and
//! closes its copy. From then on the agent alone holds the listener: it answers the notified
//! calls, and when it closes it (or dies) they fail with ENOSYS.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::LinuxSeccomp;

use super::errno;

/// Why the listener could not be handed over; the texts are runc's.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("listenerPath is not set")]
    NoListenerPath,
    #[error("failed to connect with seccomp agent specified in the seccomp profile: dial unix {path}: connect: {text}")]
    Connect { path: String, text: String },
    #[error("cannot send seccomp fd to {path}: {text}")]
    Send { path: String, text: String },
}

/// The message for the agent (runtime-spec `ContainerProcessState`): `state` is the container's
/// state JSON, `pid` the process whose filter it is.
pub fn process_state(state: &str, pid: i32, metadata: Option<&str>) -> String {
    let mut out = format!(
        "{{\"ociVersion\":{},\"fds\":[\"seccompFd\"],\"pid\":{pid}",
        serde_json::to_string(super::spec::OCI_VERSION).unwrap_or_else(|_| "\"\"".into())
    );
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        out.push_str(",\"metadata\":");
        out.push_str(&serde_json::to_string(m).unwrap_or_else(|_| "\"\"".into()));
    }
    out.push_str(",\"state\":");
    out.push_str(state);
    out.push('}');
    out
}

/// Send `listener` with the state to the profile's agent; the listener is closed here either
/// way (this process must not keep the notified calls waiting).
pub fn hand_over(
    profile: &LinuxSeccomp,
    listener: OwnedFd,
    state: &str,
    pid: i32,
) -> Result<(), AgentError> {
    let path = profile
        .listener_path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or(AgentError::NoListenerPath)?;
    let msg = process_state(state, pid, profile.listener_metadata().as_deref());
    send(path, &msg, &listener)
}

fn send(path: &Path, msg: &str, fd: &OwnedFd) -> Result<(), AgentError> {
    let shown = path.display().to_string();
    let stream = UnixStream::connect(path).map_err(|e| AgentError::Connect {
        path: shown.clone(),
        text: errno::io_text(&e),
    })?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(msg.as_bytes())];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) if n == msg.len() => return Ok(()),
            Ok(n) => {
                return Err(AgentError::Send {
                    path: shown,
                    text: format!("short write ({n} of {} bytes)", msg.len()),
                })
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Err(AgentError::Send {
                    path: shown,
                    text: errno::nix_text(e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSliceMut;
    use std::os::fd::FromRawFd;

    #[test]
    fn the_state_and_the_fd_reach_the_agent() {
        let dir = std::env::temp_dir().join(format!("runz-test-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("agent.sock");
        let _ = std::fs::remove_file(&sock);
        let server = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let profile: LinuxSeccomp = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock, "listenerMetadata": "m1"}))
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        hand_over(&profile, w, "{\"id\":\"c\"}", 42).unwrap();
        let (conn, _) = server.accept().unwrap();
        let mut buf = [0u8; 512];
        let mut cbuf = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let got = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cbuf),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in got.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let n = got.bytes;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(
            (v["pid"].as_i64(), v["metadata"].as_str()),
            (Some(42), Some("m1"))
        );
        assert_eq!(v["state"]["id"], "c");
        assert_eq!(fds.len(), 1);
        // SAFETY: the fd just received is ours alone.
        let passed = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        nix::unistd::write(&passed, b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(nix::unistd::read(r.as_raw_fd(), &mut one).unwrap(), 1);
        drop(server);
        let err = hand_over(&profile, passed, "{}", 1).unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "dial unix {}: connect: connection refused",
                sock.display()
            )),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
