//! qemu's QMP socket, from the host side.
//!
//! The socket lives in a host-made directory that is bound into the zone, where qemu (the
//! zone's unprivileged user) creates it: the zone could put a symlink there instead. The
//! host opens the name with O_PATH|O_NOFOLLOW, checks that it is a socket, and connects
//! through `/proc/self/fd/N`, so it never follows anything the zone made.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("QMP socket {path}: {why}")]
    Socket { path: String, why: String },
    #[error("QMP {command}: {why}")]
    Command { command: String, why: String },
}

/// How long one QMP exchange may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Connect to `dir/name` without following a symlink the zone may have put there.
pub fn connect(dir: &Path, name: &str) -> Result<UnixStream, QmpError> {
    let bad = |why: String| QmpError::Socket {
        path: dir.join(name).display().to_string(),
        why,
    };
    let d = open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bad(e.to_string()))?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    let d = unsafe { OwnedFd::from_raw_fd(d) };
    let f = openat(
        Some(d.as_raw_fd()),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bad(e.to_string()))?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let f = unsafe { OwnedFd::from_raw_fd(f) };
    let st = fstat(f.as_raw_fd()).map_err(|e| bad(e.to_string()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(bad("not a socket".into()));
    }
    let s = UnixStream::connect(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .map_err(|e| bad(e.to_string()))?;
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.set_write_timeout(Some(TIMEOUT));
    Ok(s)
}

/// Run one QMP command (`system_powerdown`, `system_reset`, `quit`) on the socket `dir/name`.
pub fn execute(dir: &Path, name: &str, command: &str) -> Result<(), QmpError> {
    let s = connect(dir, name)?;
    let err = |why: String| QmpError::Command {
        command: command.to_string(),
        why,
    };
    let mut r = BufReader::new(s.try_clone().map_err(|e| err(e.to_string()))?);
    let mut w = s;
    // The greeting, then capabilities negotiation, then the command.
    read_reply(&mut r, true).map_err(err)?;
    for cmd in ["qmp_capabilities", command] {
        writeln!(w, "{{\"execute\":\"{cmd}\"}}").map_err(|e| err(e.to_string()))?;
        match read_reply(&mut r, false) {
            Ok(()) => {}
            // `quit` may close the socket before its answer arrives.
            Err(_) if cmd == "quit" => return Ok(()),
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

/// Read lines until a greeting (`greeting`) or a return/error; events are skipped.
fn read_reply(r: &mut impl BufRead, greeting: bool) -> Result<(), String> {
    for _ in 0..64 {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return Err("qemu closed the socket".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("not QMP: {e}"))?;
        if greeting && v.get("QMP").is_some() {
            return Ok(());
        }
        if v.get("return").is_some() {
            return Ok(());
        }
        if let Some(e) = v.get("error") {
            return Err(e
                .get("desc")
                .and_then(|d| d.as_str())
                .unwrap_or("error")
                .to_string());
        }
    }
    Err("no answer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_in_place_of_the_socket_is_refused() {
        let dir = std::env::temp_dir().join(format!("qmp-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("real.sock");
        let _l = std::os::unix::net::UnixListener::bind(&target).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("qmp.sock")).unwrap();
        let e = connect(&dir, "qmp.sock").unwrap_err();
        std::fs::write(dir.join("plain"), "").unwrap();
        let e2 = connect(&dir, "plain").unwrap_err();
        assert!(connect(&dir, "real.sock").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.to_string().contains("qmp.sock"), "{e}");
        assert!(e2.to_string().contains("not a socket"), "{e2}");
    }
}
