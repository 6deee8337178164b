//! The record of a zone's delegated datasets (`add dataset`), kept so that a zoneadmd killed
//! while they are delegated does not leave them zoned to its dead zone for ever.
//!
//! OpenZFS frees a `zfs zone` entry only on `zfs unzone NSFILE DS` (or module unload): a user
//! namespace whose processes are gone stays pinned by the entry, and with no process left
//! there is no `/proc/PID/ns/user` to name it with. So before the first `zfs zone`, zoneadmd
//! bind-mounts the zone's user namespace file on `ALTROOT/run/zones/NAME/userns` (a mount of
//! the host's, outliving zoneadmd) and writes `datasets.json` (each dataset and whether it got
//! a mountpoint), one entry before each attach. [`release`] (at halt by zoneadmd, after a
//! crash by `recover::clean`) unzones each recorded dataset through that file, then removes
//! the mount and the record. [`held`] lists what the other zones of the store have now, for
//! `add dataset`'s checks to name the zone holding a dataset.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zones::store::Store;

use super::ZonePaths;

/// One delegated dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    /// `mountpoint=/NAME` was set on it at delegation (taken back at release).
    pub set_mountpoint: bool,
}

fn record_file(paths: &ZonePaths) -> PathBuf {
    paths.run.join("datasets.json")
}

/// The bind mount of the zone's user namespace file.
pub fn userns_file(paths: &ZonePaths) -> PathBuf {
    paths.run.join("userns")
}

/// Whether anything of a delegation is there (a record or the namespace's mount).
pub fn leftovers(paths: &ZonePaths) -> bool {
    record_file(paths).exists() || userns_file(paths).exists()
}

/// The recorded datasets (none when there is no record).
pub fn load(paths: &ZonePaths) -> Vec<Entry> {
    fs::read(record_file(paths))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Replace the record with `entries`, durably: it is what a crash is undone from.
pub fn save(paths: &ZonePaths, entries: &[Entry]) -> io::Result<()> {
    let json = serde_json::to_vec(entries).map_err(io::Error::other)?;
    zones_engine::state::write_replace(&record_file(paths), &json)?;
    fs::File::open(&paths.run)?.sync_all()
}

/// Bind-mount `/proc/PID/ns/user` (the zone's init `pid`) on [`userns_file`]; returns that path.
pub fn pin_userns(paths: &ZonePaths, pid: i32) -> io::Result<PathBuf> {
    let target = userns_file(paths);
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&target)?;
    let source = format!("/proc/{pid}/ns/user");
    nix::mount::mount(
        Some(source.as_str()),
        &target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| io::Error::other(format!("bind mount {source} on {}: {e}", target.display())))?;
    Ok(target)
}

/// Give every recorded dataset back to the host (`zfs unzone` through the pinned namespace,
/// `zoned=off`, its mountpoint taken back), then unmount the namespace file and remove the
/// record. Idempotent. Returns what failed, one line per dataset (the record goes anyway: a
/// dataset that cannot be unzoned through its namespace cannot be unzoned later either).
pub fn release(paths: &ZonePaths) -> Vec<String> {
    let ns = userns_file(paths);
    let mut failed = Vec::new();
    for e in load(paths) {
        if let Err(err) = zones::storage::delegate::detach(&ns, &e.name, e.set_mountpoint) {
            failed.push(format!("dataset '{}': {err}", e.name));
        }
    }
    if ns.exists() {
        // The namespace stays mounted while unmounting is refused (it is a file's mount:
        // nothing is busy on it); the file goes once it is not a mount point.
        if nix::mount::umount2(&ns, nix::mount::MntFlags::MNT_DETACH).is_ok()
            || !is_mount_point(&ns)
        {
            let _ = fs::remove_file(&ns);
        }
    }
    let _ = fs::remove_file(record_file(paths));
    failed
}

fn is_mount_point(path: &std::path::Path) -> bool {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = path.to_string_lossy();
    text.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == want))
}

/// The datasets the store's zones other than `except` have delegated now: (zone, dataset).
pub fn held(store: &Store, except: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in store.list().unwrap_or_default() {
        if entry.name == except {
            continue;
        }
        let paths = ZonePaths::new(store, &entry.name);
        for e in load(&paths) {
            out.push((entry.name.clone(), e.name));
        }
    }
    out
}
