//! The user-namespace id ranges of zones: each zone with `userns` (the default) runs with its
//! own 65536 uids and gids, zone id N being host id `base + N`, taken from a pool like
//! `/etc/subuid`'s and never handed to two zones.
//!
//! The pool is set in `ALTROOT/etc/zones/zones.conf`:
//!
//! ```text
//! userns_pool_start = 1000000000   # first host id of the pool (default)
//! userns_pool_size = 1073741824    # ids in the pool, a multiple of 65536 (default: 16384 zones)
//! ```
//!
//! Allocations are in `ALTROOT/etc/zones/idranges` (JSON, zone uuid → name and base), changed
//! only under the flock of `.idranges.lock`, so concurrent installs never share a range. A
//! zone gets the lowest free slot (`start + n × 65536`) at install (or at its first boot with
//! a user namespace) and gives it back at uninstall. Keyed by uuid, the range follows a rename.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::store::{Store, ZonesConf};

/// Ids per zone: uid and gid 0..65535 inside the zone.
pub const RANGE_SIZE: u32 = 65536;
/// The pool's first host id when zones.conf does not say.
pub const DEFAULT_POOL_START: u32 = 1_000_000_000;
/// The pool's size when zones.conf does not say: 16384 zones.
pub const DEFAULT_POOL_SIZE: u32 = 16384 * RANGE_SIZE;

const FILE: &str = "idranges";
const LOCK: &str = ".idranges.lock";

#[derive(Debug, thiserror::Error)]
pub enum IdRangeError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: corrupt: {msg}", .path.display())]
    Corrupt { path: PathBuf, msg: String },
    #[error("zones.conf {key} = {value:?}: {msg}")]
    Conf {
        key: &'static str,
        value: String,
        msg: String,
    },
    #[error("zone '{zone}': the user-namespace id pool ({start}, {size} ids) is exhausted: every range of {RANGE_SIZE} ids is in use; raise userns_pool_size in zones.conf or uninstall a zone")]
    Exhausted { zone: String, start: u32, size: u32 },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The pool ranges are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub start: u32,
    pub size: u32,
}

impl Pool {
    /// The pool of zones.conf (`userns_pool_start`, `userns_pool_size`), defaults otherwise.
    pub fn from_conf(conf: &ZonesConf) -> Result<Pool, IdRangeError> {
        let num = |key: &'static str, default: u32| -> Result<u32, IdRangeError> {
            match conf.get(key) {
                None | Some("") => Ok(default),
                Some(v) => v.parse::<u32>().map_err(|_| IdRangeError::Conf {
                    key,
                    value: v.to_string(),
                    msg: "expected a number of ids".into(),
                }),
            }
        };
        let start = num("userns_pool_start", DEFAULT_POOL_START)?;
        let size = num("userns_pool_size", DEFAULT_POOL_SIZE)?;
        let bad = |key: &'static str, value: u32, msg: &str| IdRangeError::Conf {
            key,
            value: value.to_string(),
            msg: msg.to_string(),
        };
        if start < RANGE_SIZE {
            return Err(bad(
                "userns_pool_start",
                start,
                "the pool must start above the host's own ids (at least 65536)",
            ));
        }
        if size < RANGE_SIZE || size % RANGE_SIZE != 0 {
            return Err(bad(
                "userns_pool_size",
                size,
                "expected a positive multiple of 65536",
            ));
        }
        if u64::from(start) + u64::from(size) > u64::from(u32::MAX) {
            return Err(bad(
                "userns_pool_size",
                size,
                "the pool would end beyond the largest id (4294967295)",
            ));
        }
        Ok(Pool { start, size })
    }

    fn slots(&self) -> u32 {
        self.size / RANGE_SIZE
    }
}

/// One zone's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The zone's name when allocated (for people reading the file).
    pub zone: String,
    /// Host id of the zone's id 0.
    pub base: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Table {
    /// Zone uuid → range.
    ranges: BTreeMap<String, Range>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IdRangeError + '_ {
    move |source| IdRangeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn lock(store: &Store) -> Result<Flock<File>, IdRangeError> {
    let dir = store.config_dir();
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(l) => return Ok(l),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(io_err(&path)(io::Error::from(errno))),
        }
    }
}

fn read(store: &Store) -> Result<Table, IdRangeError> {
    let path = store.config_dir().join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| IdRangeError::Corrupt {
            path,
            msg: e.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Table::default()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn write(store: &Store, table: &Table) -> Result<(), IdRangeError> {
    let mut json = serde_json::to_vec_pretty(table).map_err(|e| IdRangeError::Corrupt {
        path: store.config_dir().join(FILE),
        msg: e.to_string(),
    })?;
    json.push(b'\n');
    Ok(crate::store::write_atomic(store.config_dir(), FILE, &json)?)
}

/// The key of `zone`'s range: its uuid (which survives a rename), or its name for a zone
/// without one.
pub fn key(zone: &crate::model::Zone) -> String {
    if zone.uuid.is_empty() {
        format!("name:{}", zone.zonename)
    } else {
        zone.uuid.clone()
    }
}

/// The range of the zone with `uuid`, if it has one.
pub fn get(store: &Store, uuid: &str) -> Result<Option<Range>, IdRangeError> {
    Ok(read(store)?.ranges.get(uuid).cloned())
}

/// The zone's range: its recorded one, or the lowest free slot of the pool, recorded now.
pub fn allocate(store: &Store, uuid: &str, zone: &str) -> Result<Range, IdRangeError> {
    let pool = Pool::from_conf(&store.conf()?)?;
    let _guard = lock(store)?;
    let mut table = read(store)?;
    if let Some(r) = table.ranges.get(uuid) {
        return Ok(r.clone());
    }
    let used: std::collections::BTreeSet<u32> = table.ranges.values().map(|r| r.base).collect();
    let base = (0..pool.slots())
        .map(|n| pool.start + n * RANGE_SIZE)
        .find(|b| !overlaps_any(&used, *b))
        .ok_or_else(|| IdRangeError::Exhausted {
            zone: zone.to_string(),
            start: pool.start,
            size: pool.size,
        })?;
    let range = Range {
        zone: zone.to_string(),
        base,
    };
    table.ranges.insert(uuid.to_string(), range.clone());
    write(store, &table)?;
    Ok(range)
}

/// Whether `[base, base + RANGE_SIZE)` meets a used range (ranges recorded under another pool
/// setting need not be aligned to this one's slots).
fn overlaps_any(used: &std::collections::BTreeSet<u32>, base: u32) -> bool {
    let lo = base.saturating_sub(RANGE_SIZE - 1);
    used.range(lo..base.saturating_add(RANGE_SIZE))
        .next()
        .is_some()
}

/// Give the zone's range back to the pool (nothing to do when it has none).
pub fn free(store: &Store, uuid: &str) -> Result<(), IdRangeError> {
    let _guard = lock(store)?;
    let mut table = read(store)?;
    if table.ranges.remove(uuid).is_some() {
        write(store, &table)?;
    }
    Ok(())
}

/// Every recorded range (uuid, range).
pub fn list(store: &Store) -> Result<Vec<(String, Range)>, IdRangeError> {
    Ok(read(store)?.ranges.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(tag: &str) -> (Store, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("runz-test-idrange-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        (Store::open(Some(&dir)).unwrap(), dir)
    }

    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn ranges_are_distinct_recorded_and_reused_after_free() {
        let (s, dir) = store("basic");
        let _c = Cleanup(dir);
        let a = allocate(&s, "u-a", "a").unwrap();
        let b = allocate(&s, "u-b", "b").unwrap();
        assert_eq!(a.base, DEFAULT_POOL_START);
        assert_eq!(b.base, DEFAULT_POOL_START + RANGE_SIZE);
        // Asking again gives the same range.
        assert_eq!(allocate(&s, "u-a", "a").unwrap(), a);
        assert_eq!(get(&s, "u-b").unwrap(), Some(b.clone()));
        free(&s, "u-a").unwrap();
        assert_eq!(get(&s, "u-a").unwrap(), None);
        let c = allocate(&s, "u-c", "c").unwrap();
        assert_eq!(c.base, a.base, "the freed slot is handed out again");
        assert_eq!(list(&s).unwrap().len(), 2);
    }

    #[test]
    fn concurrent_allocations_never_share_a_range() {
        let (s, dir) = store("concurrent");
        let _c = Cleanup(dir);
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    allocate(&s, &format!("u-{i}"), &format!("z{i}"))
                        .unwrap()
                        .base
                })
            })
            .collect();
        let mut bases: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        bases.sort();
        bases.dedup();
        assert_eq!(bases.len(), 16, "{bases:?}");
        assert_eq!(list(&s).unwrap().len(), 16);
    }

    #[test]
    fn the_pool_comes_from_zones_conf_and_runs_out() {
        let (s, dir) = store("pool");
        let _c = Cleanup(dir.clone());
        fs::create_dir_all(s.config_dir()).unwrap();
        fs::write(
            s.config_dir().join("zones.conf"),
            "userns_pool_start = 200000\nuserns_pool_size = 131072\n",
        )
        .unwrap();
        assert_eq!(allocate(&s, "1", "a").unwrap().base, 200000);
        assert_eq!(allocate(&s, "2", "b").unwrap().base, 265536);
        let err = allocate(&s, "3", "c").unwrap_err().to_string();
        assert!(
            err.contains("zone 'c'") && err.contains("exhausted"),
            "{err}"
        );
        fs::write(
            s.config_dir().join("zones.conf"),
            "userns_pool_size = 1000\n",
        )
        .unwrap();
        let err = allocate(&s, "3", "c").unwrap_err().to_string();
        assert!(
            err.contains("userns_pool_size") && err.contains("65536"),
            "{err}"
        );
    }

    #[test]
    fn a_range_from_another_pool_setting_is_not_overlapped() {
        let used: std::collections::BTreeSet<u32> = [100_000 + 10].into_iter().collect();
        assert!(overlaps_any(&used, 100_000));
        assert!(overlaps_any(&used, 100_000 + 10 - RANGE_SIZE + 1));
        assert!(!overlaps_any(&used, 100_000 + 10 + RANGE_SIZE));
        assert!(!overlaps_any(&used, 100_000 + 10 - RANGE_SIZE));
    }
}
