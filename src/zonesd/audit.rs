//! The audit log: every change asked of the API (POST, PUT, PATCH, DELETE), allowed or not,
//! as one JSON line appended to `ALTROOT/var/log/zones/zonesd-audit.log` (0600):
//! `{"time", "token_id", "token_name", "role", "method", "path", "target", "status", "error"}`.
//! Opening a zone's console is a change too (`GET .../console`, 101); when it closes, a second
//! line adds `console` (`closed`, `ended_by`, `bytes_to_zone`, `bytes_from_zone`, `seconds`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub time: String,
    pub token_id: Option<String>,
    pub token_name: Option<String>,
    pub role: Option<String>,
    pub method: String,
    pub path: String,
    /// What the change is about: the zone, image, link or token of the path (`None` for a
    /// collection, e.g. a create).
    pub target: Option<String>,
    pub status: u16,
    pub error: Option<String>,
    /// A console session's second line, written when it closes (the first is its opening).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<ConsoleEnd>,
}

/// How a zone console session ended: by whom (`zone`: the zone halted; `client`; `revoked`:
/// its token was; `bad-frame`), the bytes relayed each way and how long it was open.
#[derive(Debug, Clone, Serialize)]
pub struct ConsoleEnd {
    pub closed: bool,
    pub ended_by: &'static str,
    pub bytes_to_zone: u64,
    pub bytes_from_zone: u64,
    pub seconds: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    path: String,
    #[source]
    source: std::io::Error,
}

pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn new(root: &Path) -> AuditLog {
        AuditLog {
            path: root.join("var/log/zones/zonesd-audit.log"),
        }
    }

    /// Appends `r` as one line (one write(2) with O_APPEND: lines never interleave).
    pub fn append(&self, r: &Record) -> Result<(), AuditError> {
        let err = |source| AuditError {
            path: self.path.display().to_string(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(err)?;
        }
        let mut line = serde_json::to_vec(r).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&line))
            .map_err(err)
    }
}

/// The target of a change from its path: `/api/zones/U/boot` → `U`.
pub fn target_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/")?;
    let mut parts = rest.split('/');
    let _collection = parts.next()?;
    parts.next().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Now, RFC 3339 with milliseconds.
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    zones_linux::runtime::state::rfc3339(d.as_secs() as i64, d.subsec_millis() * 1_000_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_target_is_the_paths_second_segment() {
        assert_eq!(
            super::target_of("/api/zones/u1/boot").as_deref(),
            Some("u1")
        );
        assert_eq!(super::target_of("/api/zones"), None);
        assert_eq!(super::target_of("/api/images/abc").as_deref(), Some("abc"));
    }
}
