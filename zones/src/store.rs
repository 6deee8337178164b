//! The persistent zone store under `ALTROOT/etc/zones`:
//!
//! - `<zone>.json`: one zone's configuration ([`Zone`] as JSON);
//! - `index`: the index of all zones (name, state, zonepath, uuid, brand, ip-type) as JSON.
//!   It is named like the illumos `/etc/zones/index` and, having no `.json` suffix, can never
//!   collide with the file of a zone (a zone may well be called `index`);
//! - `zones.conf`: host settings (`cgroup_parent = /zones`);
//! - `.zone-<zone>.lock`, `.index.lock`: flock(2) lock files (zone names never start with `.`).
//!
//! Every write is atomic: a temporary file in the same directory, fsync, rename over the
//! target, fsync of the directory. The index is authoritative: a zone exists when the index
//! lists it; a save writes the zone file first and the index second, a delete removes the index
//! entry first, so a crash in between leaves at worst an unreferenced file.
//!
//! Commands that change a zone hold its [`ZoneLock`] (blocking flock on the zone's lock file)
//! for the whole operation, so concurrent commands on one zone serialise; the mutating methods
//! take the lock as proof. The index has its own short-lived lock taken inside each update.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::model::{validate_zone_name, Brand, IpType, ModelError, Zone};
use crate::state::ZoneState;

/// The cgroup parent when neither `ZONES_CGROUP_PARENT` nor `zones.conf` sets one.
pub const DEFAULT_CGROUP_PARENT: &str = "/zones";
/// The environment variable that overrides `cgroup_parent`.
pub const CGROUP_PARENT_ENV: &str = "ZONES_CGROUP_PARENT";

const INDEX_FILE: &str = "index";
const INDEX_LOCK: &str = ".index.lock";
const CONF_FILE: &str = "zones.conf";
/// The size past which the events log is rotated.
const EVENTS_MAX: u64 = 4 << 20;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alternate root \"{0}\": expected an absolute path")]
    BadAltroot(PathBuf),
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: corrupt: {msg}", .path.display())]
    Corrupt { path: PathBuf, msg: String },
    #[error("{0}: No such zone configured")]
    NoSuchZone(String),
    #[error("zone '{0}' already exists")]
    Exists(String),
    #[error("internal error: the lock held is for zone '{held}', not '{wanted}'")]
    WrongLock { held: String, wanted: String },
    #[error("{}: line {line}: {msg}", .path.display())]
    Conf {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error(transparent)]
    Invalid(#[from] ModelError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IndexEntry {
    pub name: String,
    pub state: ZoneState,
    pub zonepath: Option<PathBuf>,
    pub uuid: String,
    pub brand: Brand,
    pub ip_type: IpType,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    zones: Vec<IndexEntry>,
}

/// An exclusive lock on one zone; released on drop.
#[derive(Debug)]
pub struct ZoneLock {
    name: String,
    /// The lock file, and the configuration whose absence at drop makes it go too.
    path: PathBuf,
    zone_file: PathBuf,
    _lock: Flock<File>,
}

impl Drop for ZoneLock {
    /// A zone with no configuration (never made, a failed create, just deleted) keeps no lock
    /// file: it is unlinked while still held. A waiter that then gets the unlinked file sees
    /// it is no longer at its path and locks the new one ([`Store::lock`]).
    fn drop(&mut self) {
        if !self.zone_file.exists() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl ZoneLock {
    /// The zone this lock is for.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `zones.conf`: `key = value` lines, `#` comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZonesConf {
    pub values: BTreeMap<String, String>,
}

impl ZonesConf {
    /// Parses the text of a zones.conf; `path` is for messages.
    pub fn parse(path: &Path, text: &str) -> Result<ZonesConf, StoreError> {
        let mut values = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |msg: String| StoreError::Conf {
                path: path.to_path_buf(),
                line: i + 1,
                msg,
            };
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("expected key = value, got \"{line}\"")))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(bad(format!("expected key = value, got \"{line}\"")));
            }
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            values.insert(k.to_string(), v.to_string());
        }
        Ok(ZonesConf { values })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// The cgroup parent for zones: `env` (the value of `ZONES_CGROUP_PARENT`) when set and not
/// empty, else `cgroup_parent` from zones.conf, else `/zones`. A relative result is meant to be
/// placed beneath the calling process's own cgroup in every hierarchy.
pub fn cgroup_parent_from(env: Option<&str>, conf: &ZonesConf) -> String {
    env.filter(|e| !e.is_empty())
        .or_else(|| conf.get("cgroup_parent").filter(|c| !c.is_empty()))
        .unwrap_or(DEFAULT_CGROUP_PARENT)
        .to_string()
}

/// The zone store of one (alternate) root.
#[derive(Debug, Clone)]
pub struct Store {
    altroot: PathBuf,
    dir: PathBuf,
}

impl Store {
    /// The store of `/` or of `altroot` (`ALTROOT/etc/zones`). Touches nothing on disk.
    pub fn open(altroot: Option<&Path>) -> Result<Store, StoreError> {
        let altroot = altroot.unwrap_or(Path::new("/")).to_path_buf();
        if !altroot.is_absolute() {
            return Err(StoreError::BadAltroot(altroot));
        }
        Ok(Store {
            dir: altroot.join("etc/zones"),
            altroot,
        })
    }

    /// The alternate root (`/` by default).
    pub fn altroot(&self) -> &Path {
        &self.altroot
    }

    /// `ALTROOT/etc/zones`.
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// `ALTROOT/var/lib/zones`: persistent per-zone state of other components.
    pub fn state_dir(&self) -> PathBuf {
        self.altroot.join("var/lib/zones")
    }

    /// `ALTROOT/run/zones`: runtime state (supervisors, consoles).
    pub fn run_dir(&self) -> PathBuf {
        self.altroot.join("run/zones")
    }

    /// The configuration file of zone `name`.
    pub fn zone_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// All zones in the index, in index order.
    pub fn list(&self) -> Result<Vec<IndexEntry>, StoreError> {
        Ok(self.read_index()?.zones)
    }

    /// The index entry of zone `name`.
    pub fn entry(&self, name: &str) -> Result<Option<IndexEntry>, StoreError> {
        Ok(self.list()?.into_iter().find(|e| e.name == name))
    }

    /// The state of zone `name`, `None` when it is not configured.
    pub fn state(&self, name: &str) -> Result<Option<ZoneState>, StoreError> {
        Ok(self.entry(name)?.map(|e| e.state))
    }

    /// The index entry of the zone with this uuid.
    pub fn find_uuid(&self, uuid: &str) -> Result<Option<IndexEntry>, StoreError> {
        Ok(self.list()?.into_iter().find(|e| e.uuid == uuid))
    }

    /// Another zone (not `name`) whose zonepath is `path`, inside it, or contains it. zoneadm
    /// refuses install, clone and move into such a path (illumos `crosscheck_zonepaths`).
    pub fn zonepath_user(&self, name: &str, path: &Path) -> Result<Option<String>, StoreError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|e| {
                e.name != name
                    && e.zonepath
                        .as_deref()
                        .is_some_and(|p| p.starts_with(path) || path.starts_with(p))
            })
            .map(|e| e.name))
    }

    /// The configuration of zone `name`, `None` when it is not configured.
    pub fn load(&self, name: &str) -> Result<Option<Zone>, StoreError> {
        if self.entry(name)?.is_none() {
            return Ok(None);
        }
        let path = self.zone_file(name);
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let zone: Zone = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        if zone.zonename != name {
            return Err(StoreError::Corrupt {
                path,
                msg: format!("it configures zone '{}'", zone.zonename),
            });
        }
        Ok(Some(zone))
    }

    /// Waits for and takes the lock of zone `name`.
    pub fn lock(&self, name: &str) -> Result<ZoneLock, StoreError> {
        self.take_lock(name, FlockArg::LockExclusive)
            .map(|l| l.expect("a blocking flock returns a lock"))
    }

    /// Takes the lock of zone `name` if nobody holds it.
    pub fn try_lock(&self, name: &str) -> Result<Option<ZoneLock>, StoreError> {
        self.take_lock(name, FlockArg::LockExclusiveNonblock)
    }

    fn take_lock(&self, name: &str, how: FlockArg) -> Result<Option<ZoneLock>, StoreError> {
        validate_zone_name(name)?;
        let path = self.dir.join(format!(".zone-{name}.lock"));
        // Each retry follows a holder that unlinked the file we waited on (see ZoneLock's
        // drop); a bounded number keeps a pathological race from spinning for ever.
        for _ in 0..LOCK_RETRIES {
            let Some(lock) = flock_file(&self.dir, &path, how)? else {
                return Ok(None);
            };
            if still_at(&lock, &path) {
                return Ok(Some(ZoneLock {
                    name: name.to_string(),
                    path,
                    zone_file: self.zone_file(name),
                    _lock: lock,
                }));
            }
        }
        Err(io_err(&path)(io::Error::other(format!(
            "the lock file was replaced {LOCK_RETRIES} times while waiting for it"
        ))))
    }

    /// `ALTROOT/etc/zones/metadata/UUID.json`: the customer metadata of the zone `uuid`.
    pub fn metadata_file(&self, uuid: &str) -> PathBuf {
        self.dir.join("metadata").join(format!("{uuid}.json"))
    }

    /// Writes `zone` (named like the lock) and its index entry. A new zone enters the index
    /// as `configured`; an existing one keeps its state.
    pub fn save(&self, lock: &ZoneLock, zone: &Zone) -> Result<IndexEntry, StoreError> {
        check_lock(lock, &zone.zonename)?;
        validate_zone_name(&zone.zonename)?;
        self.write_zone(zone)?;
        let (entry, new) = self.update_index(|zones| {
            let found = zones.iter().find(|e| e.name == zone.zonename);
            let new = found.is_none();
            let state = found.map_or(ZoneState::Configured, |e| e.state);
            let entry = entry_for(zone, state);
            upsert(zones, &zone.zonename, entry.clone());
            Ok((entry, new))
        })?;
        if new {
            self.record_event(&entry.name, &entry.uuid, None, entry.state);
        }
        Ok(entry)
    }

    /// Renames zone `old` to `zone.zonename` (locked by `new`), keeping its state and its place
    /// in the index.
    pub fn rename(&self, old: &ZoneLock, new: &ZoneLock, zone: &Zone) -> Result<(), StoreError> {
        check_lock(new, &zone.zonename)?;
        validate_zone_name(&zone.zonename)?;
        if self.entry(&zone.zonename)?.is_some() {
            return Err(StoreError::Exists(zone.zonename.clone()));
        }
        self.write_zone(zone)?;
        self.update_index(|zones| {
            let e = zones
                .iter_mut()
                .find(|e| e.name == old.name)
                .ok_or_else(|| StoreError::NoSuchZone(old.name.clone()))?;
            *e = entry_for(zone, e.state);
            Ok(())
        })?;
        self.remove_file(&self.zone_file(&old.name))
    }

    /// Records the state of the locked zone.
    pub fn set_state(&self, lock: &ZoneLock, state: ZoneState) -> Result<(), StoreError> {
        let (uuid, previous) = self.update_index(|zones| {
            let e = zones
                .iter_mut()
                .find(|e| e.name == lock.name)
                .ok_or_else(|| StoreError::NoSuchZone(lock.name.clone()))?;
            let previous = std::mem::replace(&mut e.state, state);
            Ok((e.uuid.clone(), previous))
        })?;
        if previous != state {
            self.record_event(&lock.name, &uuid, Some(previous), state);
        }
        Ok(())
    }

    /// `ALTROOT/run/zones/events`: every state change, one JSON object a line (`zoneadm
    /// events` reads it).
    pub fn events_file(&self) -> PathBuf {
        self.run_dir().join("events")
    }

    fn record_deleted(&self, name: &str) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.append_event(serde_json::json!({
            "time_ms": ms, "zone": name, "state": "deleted", "previous": "configured",
        }));
    }

    /// Appends a state change to [`Store::events_file`] (best effort: a lost event never fails
    /// the change itself). One `write` of a line opened `O_APPEND` keeps concurrent writers'
    /// lines whole.
    fn record_event(&self, name: &str, uuid: &str, previous: Option<ZoneState>, state: ZoneState) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.append_event(serde_json::json!({
            "time_ms": ms, "zone": name, "uuid": uuid,
            "state": state.to_string(),
            "previous": previous.map(|p| p.to_string()),
        }));
    }

    fn append_event(&self, line: serde_json::Value) {
        // Bounded: past EVENTS_MAX the log starts over, the previous one kept as `events.old`.
        let path = self.events_file();
        if fs::metadata(&path).is_ok_and(|m| m.len() > EVENTS_MAX) {
            let _ = fs::rename(&path, path.with_extension("old"));
        }
        let mut text = line.to_string();
        text.push('\n');
        let _ = fs::create_dir_all(self.run_dir());
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(&path)
        {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// Removes the locked zone from the index, then its configuration file.
    /// Then what else the zone kept: its metadata file and its runtime directory
    /// (`run/zones/<zone>`: the lock and log of its last zoneadmd; a zone is deleted only when
    /// configured, so no zoneadmd is left). Its lock file goes when the lock is dropped.
    pub fn delete(&self, lock: &ZoneLock) -> Result<(), StoreError> {
        let uuid = self.update_index(|zones| {
            let uuid = zones
                .iter()
                .find(|e| e.name == lock.name)
                .map(|e| e.uuid.clone())
                .ok_or_else(|| StoreError::NoSuchZone(lock.name.clone()))?;
            zones.retain(|e| e.name != lock.name);
            Ok(uuid)
        })?;
        self.record_deleted(&lock.name);
        self.remove_file(&self.zone_file(&lock.name))?;
        self.remove_file(&self.metadata_file(&uuid))?;
        let run = self.run_dir().join(&lock.name);
        match fs::remove_dir_all(&run) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&run)(e)),
            _ => Ok(()),
        }
    }

    /// `ALTROOT/etc/zones/zones.conf` (empty when absent).
    pub fn conf(&self) -> Result<ZonesConf, StoreError> {
        let path = self.dir.join(CONF_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => ZonesConf::parse(&path, &text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ZonesConf::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The cgroup parent of zones: `$ZONES_CGROUP_PARENT`, else `cgroup_parent` in zones.conf,
    /// else `/zones`. See [`cgroup_parent_from`].
    pub fn cgroup_parent(&self) -> Result<String, StoreError> {
        let env = std::env::var(CGROUP_PARENT_ENV).ok();
        Ok(cgroup_parent_from(env.as_deref(), &self.conf()?))
    }

    fn write_zone(&self, zone: &Zone) -> Result<(), StoreError> {
        let mut json = serde_json::to_vec_pretty(zone).map_err(|e| StoreError::Corrupt {
            path: self.zone_file(&zone.zonename),
            msg: e.to_string(),
        })?;
        json.push(b'\n');
        ensure_dir(&self.dir)?;
        write_atomic(&self.dir, &format!("{}.json", zone.zonename), &json)
    }

    fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.dir.join(INDEX_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path,
                msg: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Read-modify-write of the index under the index lock.
    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Vec<IndexEntry>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _guard = flock_file(
            &self.dir,
            &self.dir.join(INDEX_LOCK),
            FlockArg::LockExclusive,
        )?;
        let mut index = self.read_index()?;
        let out = change(&mut index.zones)?;
        let mut json = serde_json::to_vec_pretty(&index).map_err(|e| StoreError::Corrupt {
            path: self.dir.join(INDEX_FILE),
            msg: e.to_string(),
        })?;
        json.push(b'\n');
        write_atomic(&self.dir, INDEX_FILE, &json)?;
        Ok(out)
    }

    fn remove_file(&self, path: &Path) -> Result<(), StoreError> {
        match fs::remove_file(path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path)(e)),
        }
    }
}

fn check_lock(lock: &ZoneLock, name: &str) -> Result<(), StoreError> {
    if lock.name == name {
        Ok(())
    } else {
        Err(StoreError::WrongLock {
            held: lock.name.clone(),
            wanted: name.to_string(),
        })
    }
}

fn entry_for(zone: &Zone, state: ZoneState) -> IndexEntry {
    IndexEntry {
        name: zone.zonename.clone(),
        state,
        zonepath: zone.zonepath.clone(),
        uuid: zone.uuid.clone(),
        brand: zone.brand,
        ip_type: zone.ip_type,
    }
}

fn upsert(zones: &mut Vec<IndexEntry>, name: &str, entry: IndexEntry) {
    match zones.iter_mut().find(|e| e.name == name) {
        Some(e) => *e = entry,
        None => zones.push(entry),
    }
}

/// Opens (creating) `path` in `dir` and flocks it; `None` when non-blocking and held.
/// How many times [`Store::lock`] follows a lock file unlinked under it.
const LOCK_RETRIES: usize = 1000;

/// True when the locked file is (still) the one at `path`.
fn still_at(lock: &Flock<File>, path: &Path) -> bool {
    match (lock.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn flock_file(dir: &Path, path: &Path, how: FlockArg) -> Result<Option<Flock<File>>, StoreError> {
    ensure_dir(dir)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    loop {
        match Flock::lock(file, how) {
            Ok(lock) => return Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(io_err(path)(io::Error::from(errno))),
        }
    }
}

/// Creates `dir` (and parents) if missing, syncing the parent so the entry is durable.
fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `dir/name` with `data` atomically: temp file, fsync, rename, fsync of `dir`. On
/// failure the old file is untouched and the temp file removed.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), StoreError> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}-{name}", std::process::id()));
    let target = dir.join(name);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(data).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &target).map_err(io_err(&target))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Value;
    use std::sync::Arc;

    /// A temporary alternate root, removed on drop.
    pub(crate) struct TempRoot(pub PathBuf);

    impl TempRoot {
        pub(crate) fn new(tag: &str) -> TempRoot {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("runz-test-{}-zones-{tag}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempRoot(p)
        }
        pub(crate) fn store(&self) -> Store {
            Store::open(Some(&self.0)).unwrap()
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn zone(name: &str) -> Zone {
        let mut z = Zone::new(name);
        z.set_global("zonepath", &Value::simple(&format!("/zones/{name}")))
            .unwrap();
        z
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn save_load_list_state_delete() {
        let root = TempRoot::new("crud");
        let store = root.store();
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.load("a").unwrap(), None);
        let z = zone("a");
        let lock = store.lock("a").unwrap();
        let entry = store.save(&lock, &z).unwrap();
        assert_eq!(entry.state, ZoneState::Configured);
        assert_eq!(entry.uuid, z.uuid);
        assert_eq!(store.load("a").unwrap(), Some(z.clone()));
        assert_eq!(store.find_uuid(&z.uuid).unwrap().unwrap().name, "a");
        store.set_state(&lock, ZoneState::Installed).unwrap();
        store.save(&lock, &z).unwrap();
        assert_eq!(store.state("a").unwrap(), Some(ZoneState::Installed));
        assert_eq!(
            dir_names(store.config_dir()),
            [".index.lock", ".zone-a.lock", "a.json", "index"]
        );
        store.delete(&lock).unwrap();
        assert_eq!(store.load("a").unwrap(), None);
        assert!(!store.zone_file("a").exists());
        assert!(matches!(store.delete(&lock), Err(StoreError::NoSuchZone(n)) if n == "a"));
    }

    #[test]
    fn a_zone_called_index_does_not_clash_with_the_index() {
        let root = TempRoot::new("index");
        let store = root.store();
        let lock = store.lock("index").unwrap();
        store.save(&lock, &zone("index")).unwrap();
        assert_eq!(store.list().unwrap()[0].name, "index");
        assert!(store.load("index").unwrap().is_some());
    }

    #[test]
    fn rename_keeps_state_and_position() {
        let root = TempRoot::new("rename");
        let store = root.store();
        for n in ["a", "b"] {
            let l = store.lock(n).unwrap();
            store.save(&l, &zone(n)).unwrap();
        }
        let (la, lc) = (store.lock("a").unwrap(), store.lock("c").unwrap());
        store.set_state(&la, ZoneState::Installed).unwrap();
        let mut z = store.load("a").unwrap().unwrap();
        z.zonename = "c".into();
        store.rename(&la, &lc, &z).unwrap();
        let names: Vec<_> = store.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["c", "b"]);
        assert_eq!(store.state("c").unwrap(), Some(ZoneState::Installed));
        assert!(!store.zone_file("a").exists());
        let lb = store.lock("b").unwrap();
        z.zonename = "b".into();
        assert!(matches!(
            store.rename(&lc, &lb, &z),
            Err(StoreError::Exists(_))
        ));
    }

    #[test]
    fn locks_are_exclusive_and_checked() {
        let root = TempRoot::new("lock");
        let store = root.store();
        let held = store.lock("a").unwrap();
        assert_eq!(held.name(), "a");
        assert!(store.try_lock("a").unwrap().is_none());
        assert!(store.try_lock("b").unwrap().is_some());
        assert!(matches!(
            store.save(&held, &zone("b")),
            Err(StoreError::WrongLock { .. })
        ));
        drop(held);
        assert!(store.try_lock("a").unwrap().is_some());
        assert!(matches!(store.lock("../x"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn a_zone_without_configuration_keeps_no_lock_file() {
        let root = TempRoot::new("nolock");
        let store = root.store();
        drop(store.lock("nosuch").unwrap());
        assert!(!store.config_dir().join(".zone-nosuch.lock").exists());
        // Delete takes the configuration, metadata, runtime dir and (at unlock) the lock.
        let l = store.lock("a").unwrap();
        let entry = store.save(&l, &zone("a")).unwrap();
        let md = store.metadata_file(&entry.uuid);
        fs::create_dir_all(md.parent().unwrap()).unwrap();
        fs::write(&md, "{}").unwrap();
        let run = store.run_dir().join("a");
        fs::create_dir_all(&run).unwrap();
        fs::write(run.join("zoneadmd.log"), "x").unwrap();
        store.delete(&l).unwrap();
        drop(l);
        assert!(!md.exists() && !run.exists());
        assert_eq!(
            dir_names(store.config_dir()),
            [".index.lock", "index", "metadata"]
        );
    }

    #[test]
    fn locks_stay_exclusive_while_their_files_are_unlinked() {
        let root = TempRoot::new("unlinked");
        let store = Arc::new(root.store());
        let inside = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (store, inside) = (Arc::clone(&store), Arc::clone(&inside));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let l = store.lock("x").unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(l);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!store.config_dir().join(".zone-x.lock").exists());
    }

    #[test]
    fn concurrent_updates_of_one_zone_serialise() {
        let root = TempRoot::new("serial");
        let store = Arc::new(root.store());
        {
            let l = store.lock("a").unwrap();
            let mut z = zone("a");
            z.bootargs = Some("0".into());
            store.save(&l, &z).unwrap();
        }
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let l = store.lock("a").unwrap();
                        let mut z = store.load("a").unwrap().unwrap();
                        let n: u32 = z.bootargs.as_deref().unwrap().parse().unwrap();
                        z.bootargs = Some((n + 1).to_string());
                        store.save(&l, &z).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let z = store.load("a").unwrap().unwrap();
        assert_eq!(z.bootargs.as_deref(), Some("40"));
    }

    #[test]
    fn concurrent_creates_all_reach_the_index() {
        let root = TempRoot::new("index-race");
        let store = Arc::new(root.store());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    let name = format!("z{i}");
                    let l = store.lock(&name).unwrap();
                    store.save(&l, &zone(&name)).unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let mut names: Vec<_> = store.list().unwrap().into_iter().map(|e| e.name).collect();
        names.sort();
        assert_eq!(names, (0..8).map(|i| format!("z{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp() {
        let root = TempRoot::new("atomic");
        let store = root.store();
        let l = store.lock("a").unwrap();
        store.save(&l, &zone("a")).unwrap();
        let index_before = fs::read(store.config_dir().join("index")).unwrap();
        // The zone file of "b" cannot be replaced: a directory is in the way.
        fs::create_dir(store.zone_file("b")).unwrap();
        let lb = store.lock("b").unwrap();
        assert!(matches!(
            store.save(&lb, &zone("b")),
            Err(StoreError::Io { .. })
        ));
        assert_eq!(
            fs::read(store.config_dir().join("index")).unwrap(),
            index_before
        );
        assert!(!dir_names(store.config_dir())
            .iter()
            .any(|n| n.starts_with(".tmp-")));
        write_atomic(store.config_dir(), "x", b"one").unwrap();
        write_atomic(store.config_dir(), "x", b"two").unwrap();
        assert_eq!(fs::read(store.config_dir().join("x")).unwrap(), b"two");
    }

    #[test]
    fn corrupt_files_are_reported_with_their_path() {
        let root = TempRoot::new("corrupt");
        let store = root.store();
        fs::create_dir_all(store.config_dir()).unwrap();
        fs::write(store.config_dir().join("index"), "{not json").unwrap();
        let err = store.list().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: corrupt:",
                store.config_dir().join("index").display()
            )),
            "{err}"
        );
    }

    #[test]
    fn paths_under_the_altroot() {
        let store = Store::open(Some(Path::new("/alt"))).unwrap();
        assert_eq!(store.config_dir(), Path::new("/alt/etc/zones"));
        assert_eq!(store.state_dir(), Path::new("/alt/var/lib/zones"));
        assert_eq!(store.run_dir(), Path::new("/alt/run/zones"));
        assert_eq!(
            Store::open(None).unwrap().config_dir(),
            Path::new("/etc/zones")
        );
        assert_eq!(
            Store::open(Some(Path::new("alt"))).unwrap_err().to_string(),
            "alternate root \"alt\": expected an absolute path"
        );
    }

    #[test]
    fn zones_conf_and_cgroup_parent() {
        let p = Path::new("zones.conf");
        let conf = ZonesConf::parse(
            p,
            "# comment\n\ncgroup_parent = zones-test\nother=\"x y\"\n",
        )
        .unwrap();
        assert_eq!(conf.get("cgroup_parent"), Some("zones-test"));
        assert_eq!(conf.get("other"), Some("x y"));
        assert_eq!(
            ZonesConf::parse(p, "a = 1\nbogus\n")
                .unwrap_err()
                .to_string(),
            "zones.conf: line 2: expected key = value, got \"bogus\""
        );
        assert_eq!(cgroup_parent_from(None, &ZonesConf::default()), "/zones");
        assert_eq!(cgroup_parent_from(None, &conf), "zones-test");
        assert_eq!(cgroup_parent_from(Some("/env"), &conf), "/env");
        assert_eq!(cgroup_parent_from(Some(""), &conf), "zones-test");
        let root = TempRoot::new("conf");
        let store = root.store();
        assert_eq!(store.conf().unwrap(), ZonesConf::default());
        fs::create_dir_all(store.config_dir()).unwrap();
        fs::write(store.config_dir().join("zones.conf"), "cgroup_parent=/z\n").unwrap();
        assert_eq!(store.conf().unwrap().get("cgroup_parent"), Some("/z"));
    }
}
