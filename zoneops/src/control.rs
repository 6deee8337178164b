//! zoneadm ↔ zoneadmd: one JSON request line on `control.sock`, one JSON reply line when the
//! request is done (a halt is answered once the zone is down).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ZonePaths;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Start the init of a ready zone.
    Boot,
    /// Kill everything at once; the zone goes back to installed.
    Halt,
    /// Ask init to stop (the brand's signal), halt after `timeout_secs`; with `reboot`, boot
    /// again afterwards.
    Shutdown { timeout_secs: u64, reboot: bool },
    /// Halt and boot again.
    Reboot,
    /// Is the supervisor there? (replies Ok)
    Ping,
    /// Set the console's window size (the pty's; its foreground process gets SIGWINCH).
    Resize { cols: u16, rows: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("zone '{zone}': its zoneadmd is not answering on {path}: {reason}")]
    Unreachable {
        zone: String,
        path: String,
        reason: String,
    },
    #[error("zone '{0}': {1}")]
    Failed(String, String),
}

/// Send `req` to the zone's supervisor and wait (up to `timeout`) for its reply.
pub fn request(paths: &ZonePaths, req: &Request, timeout: Duration) -> Result<(), ControlError> {
    let sock = paths.control_sock();
    let unreachable = |reason: String| ControlError::Unreachable {
        zone: paths.name.clone(),
        path: sock.display().to_string(),
        reason,
    };
    let mut s = UnixStream::connect(&sock).map_err(|e| unreachable(e.to_string()))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| unreachable(e.to_string()))?;
    let mut line = serde_json::to_string(req).expect("requests serialise");
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .map_err(|e| unreachable(format!("no reply: {e}")))?;
    match serde_json::from_str(reply.trim()) {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Error(e)) => Err(ControlError::Failed(paths.name.clone(), e)),
        Err(_) if reply.is_empty() => Err(unreachable("it closed the connection".into())),
        Err(e) => Err(unreachable(format!("bad reply {reply:?}: {e}"))),
    }
}

/// Parse one request line (supervisor side).
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line.trim()).map_err(|e| format!("bad request {line:?}: {e}"))
}

/// Encode a reply line (supervisor side).
pub fn reply_line(r: &Reply) -> String {
    let mut s = serde_json::to_string(r).expect("replies serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        for r in [
            Request::Boot,
            Request::Halt,
            Request::Shutdown {
                timeout_secs: 5,
                reboot: true,
            },
            Request::Reboot,
            Request::Ping,
            Request::Resize { cols: 80, rows: 24 },
        ] {
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(parse_request(&line).unwrap(), r);
        }
        assert_eq!(reply_line(&Reply::Error("x".into())), "{\"error\":\"x\"}\n");
        assert!(parse_request("nonsense").is_err());
    }
}
