//! A container's state on disk: `<root>/<id>/state.json` (written atomically), the exec fifo that
//! holds init between create and start, a lock, and the status derived from the live process.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use zones_cgroup::Cgroup;

use super::sys;

/// The file init blocks on until `start` opens it.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("invalid container id {0:?}: use letters, digits, '-', '_', '.', '+' (not starting with '.')")]
    BadId(String),
    #[error("state of {id}: {reason}")]
    Io { id: String, reason: String },
}

/// OCI status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// Everything a later command needs about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of init; 0 once known stopped.
    pub pid: i32,
    /// Start time of init (clock ticks since boot), so a reused pid is not taken for init.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339, UTC, nanoseconds.
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// Whether `start` has been run (the fifo is gone).
    pub started: bool,
    pub cgroup: Option<Cgroup>,
    /// The config as it was at create: delete needs its poststop hooks.
    pub config: Spec,
}

/// The JSON `runz state` prints (runc's shape).
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

/// Container ids are path components: refuse anything that could escape the state root.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

/// The directory of one container under the state root.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

fn io_err(id: &str, what: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Io {
        id: id.to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Make `<root>/<id>` exclusively; fails with `Exists` when it is there already.
pub fn create_dir(root: &Path, id: &str) -> Result<PathBuf, StateError> {
    check_id(id)?;
    fs::create_dir_all(root).map_err(|e| io_err(id, &format!("create {}", root.display()), e))?;
    let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
    let d = dir(root, id);
    match fs::create_dir(&d) {
        Ok(()) => Ok(d),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(StateError::Exists),
        Err(e) => Err(io_err(id, &format!("create {}", d.display()), e)),
    }
}

/// Take the container's lock (held until the returned guard drops); commands serialise on it.
pub fn lock(root: &Path, id: &str) -> Result<Flock<fs::File>, StateError> {
    check_id(id)?;
    let d = dir(root, id);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(d.join(LOCK_FILE))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StateError::NotExist
            } else {
                io_err(id, "open lock", e)
            }
        })?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io_err(id, "lock", e))
}

impl ContainerState {
    /// Load `<root>/<id>/state.json`.
    pub fn load(root: &Path, id: &str) -> Result<Self, StateError> {
        check_id(id)?;
        let path = dir(root, id).join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StateError::NotExist),
            Err(e) => return Err(io_err(id, "read state.json", e)),
        };
        serde_json::from_str(&text).map_err(|e| io_err(id, "parse state.json", e))
    }

    /// Write state.json atomically (temp file, rename). No fsync: the state describes live
    /// processes, which a crash ends anyway, and it normally sits on tmpfs (/run); an fsync
    /// on a disk-backed root cost 2–10 ms per create.
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let d = dir(root, &self.id);
        let json = serde_json::to_vec(self).map_err(|e| io_err(&self.id, "encode", e))?;
        write_replace(&d.join(STATE_FILE), &json).map_err(|e| io_err(&self.id, "write", e))
    }

    /// The status from the live process: stopped if init is gone (or its pid was reused),
    /// created while the exec fifo exists, paused when the cgroup is frozen, else running.
    pub fn status(&self, root: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if !self.started && dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// Whether init is alive: same pid, same start time, not a zombie.
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match sys::proc_stat(self.pid) {
            Some(st) => st.start_time == self.pid_start && st.state != 'Z' && st.state != 'X',
            None => false,
        }
    }

    /// The OCI view of this state.
    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: super::spec::OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }
}

/// Write `data` to `path` atomically: a temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, data, true)
}

/// Replace `path` with `data` atomically for readers (temp file, rename), without fsync: for
/// runtime files that only describe live processes (state.json, pid files).
pub fn write_replace(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, data, false)
}

fn write_via_temp(path: &Path, data: &[u8], sync: bool) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Ids of all containers under `root` that have a state file, sorted.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

/// Now as RFC 3339 UTC with nanoseconds, e.g. `2026-08-20T10:00:00.123456789Z`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Format seconds since the epoch (UTC) as RFC 3339 with nanoseconds.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Now as runc writes a container's `created` (Go's RFC3339Nano): nanoseconds without their
/// trailing zeros, and no fraction at all on a whole second.
pub fn created_now() -> String {
    trim_nanos(now_rfc3339())
}

/// `…:05.120000000Z` → `…:05.12Z`, `…:05.000000000Z` → `…:05Z`.
fn trim_nanos(mut t: String) -> String {
    if let Some(z) = t.strip_suffix('Z').map(str::len) {
        t.truncate(z);
        while t.ends_with('0') && t.contains('.') {
            t.pop();
        }
        if t.ends_with('.') {
            t.pop();
        }
        t.push('Z');
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_drops_trailing_zeros_as_go_does() {
        assert_eq!(
            trim_nanos(rfc3339(1_787_220_000, 120_000_000)),
            "2026-08-20T10:00:00.12Z"
        );
        assert_eq!(trim_nanos(rfc3339(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            trim_nanos(rfc3339(1_787_220_000, 123_456_789)),
            "2026-08-20T10:00:00.123456789Z"
        );
        assert_eq!(
            trim_nanos(rfc3339(1_787_220_010, 5)),
            "2026-08-20T10:00:10.000000005Z"
        );
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_787_220_000, 123_456_789),
            "2026-08-20T10:00:00.123456789Z"
        );
        // A leap day.
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
    }

    #[test]
    fn ids_that_could_escape_the_root_are_refused() {
        for bad in ["", "..", ".hidden", "a/b", "a b", "x\0"] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["c1", "my-container_2.0", "k8s+pod"] {
            check_id(good).unwrap();
        }
    }

    #[test]
    fn status_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Status::Created).unwrap(),
            "\"created\""
        );
        assert_eq!(Status::Paused.to_string(), "paused");
    }

    #[test]
    fn create_dir_twice_is_exists_and_load_of_missing_is_not_exist() {
        let root = std::env::temp_dir().join(format!("runz-unit-state-{}", std::process::id()));
        create_dir(&root, "c1").unwrap();
        assert!(matches!(create_dir(&root, "c1"), Err(StateError::Exists)));
        assert!(matches!(
            ContainerState::load(&root, "c1"),
            Err(StateError::NotExist)
        ));
        assert!(list_ids(&root).is_empty());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn write_atomic_replaces_content() {
        let d = std::env::temp_dir().join(format!("runz-unit-atomic-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
