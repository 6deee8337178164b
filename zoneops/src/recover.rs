//! Recovery after a zoneadmd that died (kill -9, power cut): what it left behind is found and
//! removed, and the zone's recorded state made true again.
//!
//! A supervisor makes, in order: its pid file and `zone.json`, the zone's storage mount, its
//! network namespace and links (`net.json` records them), the container (runz state under
//! `run/zones/.runz/NAME`, a cgroup, an init process), its delegated datasets (`delegation`:
//! `datasets.json` and the pinned user namespace), then records `ready`/`running`. Killed
//! at any of those steps it leaves a prefix of that list. [`leftovers`] says whether any of it
//! is there; [`clean`] undoes all of it, in reverse order, idempotently.
//!
//! Cleaning holds `zoneadmd.lock` (the supervisor's own record lock) for its whole run, so a
//! supervisor cannot start for the zone while it cleans, and a live supervisor is never
//! cleaned away: when the lock is held, nothing is done.

use std::fs;

use zones::state::ZoneState;
use zones::store::{Store, ZoneLock};

use super::{delegation, engine, network, ZonePaths};

/// Whether a dead supervisor left anything of the zone's platform behind. Only meaningful
/// when no supervisor is alive.
pub fn leftovers(paths: &ZonePaths) -> bool {
    paths.pid_file().exists()
        || paths.info_file().exists()
        || network::netns_file(paths).exists()
        || paths.run.join("net.json").exists()
        || paths.runz_root.join(&paths.name).exists()
        || delegation::leftovers(paths)
}

/// Remove what a dead supervisor of `name` left behind and record the zone `installed`
/// (when its recorded state was a live one). `lock` is the zone's store lock, held by the
/// caller. Returns false (and does nothing) when a supervisor is alive.
pub fn clean(store: &Store, name: &str, lock: &ZoneLock) -> bool {
    let paths = ZonePaths::new(store, name);
    let Ok(f) = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock_file())
    else {
        // No run dir at all: nothing was ever started here.
        return true;
    };
    if !super::try_record_lock(&f) {
        return false;
    }
    // The container first: its processes hold the zone's mounts and links.
    let _ = engine::signal_all(&paths, libc::SIGKILL);
    let _ = engine::destroy(&paths);
    // Delegated datasets stay zoned to the dead zone's user namespace (pinned by OpenZFS)
    // until unzoned through the namespace file zoneadmd mounted.
    for e in delegation::release(&paths) {
        zones_engine::log::warn(&format!("zone '{name}': {e}"));
    }
    network::teardown(&paths);
    let zonepath = store
        .load(name)
        .ok()
        .flatten()
        .and_then(|z| engine::zonepath(store, &z).ok());
    if let Some(zp) = zonepath {
        super::kvm::release(&paths, &zp);
        let _ = zones::storage::deactivate(&zp);
    }
    for file in [
        paths.control_sock(),
        paths.console_sock(),
        paths.pid_file(),
        paths.info_file(),
    ] {
        let _ = fs::remove_file(file);
    }
    // The metadata socket and reader served to the zone (remade at the next boot).
    let _ = fs::remove_dir_all(super::metadata::control_dir(&paths));
    if store
        .state(name)
        .ok()
        .flatten()
        .is_some_and(ZoneState::is_active)
    {
        let _ = store.set_state(lock, ZoneState::Installed);
    }
    drop(f);
    true
}
