//! What zoneadm's verbs do. Each one: lock the zone, check the state table, record the
//! in-progress state, do the work, record the final state. Refusals happen before anything on
//! disk changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use zones::model::{Brand, IpType, Zone};
use zones::state::{self, Verb, ZoneState};
use zones::store::{Store, ZoneLock};

use super::control::{self, Request};
use super::recover;
use super::supervisor::{self, StartMode};
use super::{engine, supervisor_alive, ZoneInfo, ZonePaths};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error(transparent)]
    State(#[from] zones::state::StateError),
    #[error(transparent)]
    Storage(#[from] zones::storage::StorageError),
    #[error(transparent)]
    Image(#[from] zones::image::ImageError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Spec(#[from] zones::spec::SpecError),
    #[error(transparent)]
    Network(#[from] super::network::NetworkError),
    #[error("zone '{zone}': {msg}")]
    Zone { zone: String, msg: String },
}

type Result<T> = std::result::Result<T, AdminError>;

fn zerr(zone: &str, msg: impl std::fmt::Display) -> AdminError {
    AdminError::Zone {
        zone: zone.to_string(),
        msg: msg.to_string(),
    }
}

/// How long zoneadm waits for a supervisor to finish a halt or reboot.
const CONTROL_WAIT: Duration = Duration::from_secs(60);

/// Load a configured zone with its lock and state (also for `zoneadm update`, hence the
/// store's own error).
pub(super) fn open(
    store: &Store,
    name: &str,
) -> std::result::Result<(Zone, ZoneLock, ZoneState), zones::store::StoreError> {
    let lock = store.lock(name)?;
    let zone = store
        .load(name)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(name.to_string()))?;
    let st = store
        .state(name)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(name.to_string()))?;
    Ok((zone, lock, st))
}

/// The state to act on: a live-looking state whose supervisor is gone is really `down`, and
/// so is an `installed` zone that a supervisor killed while starting it left debris of (a
/// container, mounts, links: see `recover`).
pub fn effective_state(store: &Store, name: &str, recorded: ZoneState) -> ZoneState {
    let live = matches!(
        recorded,
        ZoneState::Ready | ZoneState::Running | ZoneState::ShuttingDown
    );
    let paths = ZonePaths::new(store, name);
    let maybe_debris = live || recorded == ZoneState::Installed;
    if maybe_debris && !supervisor_alive(&paths) && (live || recover::leftovers(&paths)) {
        ZoneState::Down
    } else {
        recorded
    }
}

/// The state a verb that starts or removes a zone acts on: a zone that is `down` because its
/// supervisor died is cleaned up first (and is `installed` again), with a note saying so.
fn settled_state(store: &Store, name: &str, lock: &ZoneLock, recorded: ZoneState) -> ZoneState {
    let eff = effective_state(store, name, recorded);
    if eff != ZoneState::Down || !recover::clean(store, name, lock) {
        return eff;
    }
    zones_engine::log::warn(&format!(
        "zone '{name}': cleaned up after a zoneadmd that died (container, mounts, links)"
    ));
    store
        .state(name)
        .ok()
        .flatten()
        .map_or(eff, |st| effective_state(store, name, st))
}

/// `zoneadm verify`: the configuration is complete and its zonepath usable. Returns the
/// warnings: every secure default the configuration weakens ([`zones::weakened`]).
pub fn verify(store: &Store, name: &str) -> Result<Vec<String>> {
    let (zone, _lock, st) = open(store, name)?;
    state::check(name, st, Verb::Verify)?;
    zone.verify().map_err(|e| zerr(name, e))?;
    check_vm(store, &zone)?;
    super::network::check(&zone)?;
    zones::spec::check_host(&zone)?;
    zones::spec::check_kernel(&zone)?;
    let host = check_zonepath(store, &zone, None)?;
    let kind = match zones::storage::read_record(&host)? {
        Some(rec) => rec.kind,
        None => storage_kind(store, &zone, &host)?,
    };
    check_quota(&zone, &kind)?;
    check_datasets(store, &zone, &host)?;
    let mut store_dirs = vec![store.config_dir().to_path_buf(), store.state_dir()];
    for e in store.list()? {
        if let Some(z) = store.load(&e.name)? {
            if let Ok(zp) = engine::zonepath(store, &z) {
                store_dirs.push(zp);
            }
        }
    }
    Ok(zones::weakened::warnings(&zone, &store_dirs))
}

/// A kvm zone's VM (see `kvm::check`); nothing for other brands.
fn check_vm(store: &Store, zone: &Zone) -> Result<()> {
    if zone.brand != Brand::Kvm {
        return Ok(());
    }
    super::kvm::check(store, zone)
        .map(drop)
        .map_err(|e| zerr(&zone.zonename, e))
}

/// `add dataset`: OpenZFS >= 2.2, the zone's own user namespace, and datasets that exist on
/// an imported pool, are not another zone's and do not hold the zone's own root.
fn check_datasets(store: &Store, zone: &Zone, zonepath: &Path) -> Result<()> {
    let datasets: Vec<String> = zone.dataset.iter().filter_map(|d| d.name.clone()).collect();
    if datasets.is_empty() {
        return Ok(());
    }
    let root = zones::storage::read_record(zonepath)
        .ok()
        .flatten()
        .and_then(|r| r.dataset);
    let held = super::delegation::held(store, &zone.zonename);
    zones::storage::delegate::check(
        &datasets,
        root.as_deref(),
        zones::spec::wants_userns(zone),
        &held,
    )
    .map_err(|e| zerr(&zone.zonename, e))
}

/// The storage backend a new install of `zone` uses: the zone's `storage`, else the host's
/// (`storage` in zones.conf), else detected from the zonepath's filesystem.
pub fn storage_kind(store: &Store, zone: &Zone, host: &Path) -> Result<zones::storage::Kind> {
    let conf = store.conf()?;
    Ok(zones::storage::resolve(
        zone.storage.as_deref(),
        conf.get("storage"),
        host,
    )?)
}

/// A quota is refused (before anything is made) where the backend cannot enforce it.
fn check_quota(zone: &Zone, kind: &zones::storage::Kind) -> Result<()> {
    if let Some(q) = zone.quota {
        if !zones::storage::supports_quota(kind) {
            return Err(zerr(
                &zone.zonename,
                format!(
                    "quota {q}: storage {kind} cannot enforce a disk quota; use storage btrfs or zfs, or clear the quota (zonecfg -z {} clear quota)",
                    zone.zonename
                ),
            ));
        }
    }
    Ok(())
}

/// The zonepath must be set, not used by another zone, and (for a new install) empty.
/// `fresh`: the verb (install, clone, move) that makes the zone's files there, so the zonepath
/// must be empty (or absent).
fn check_zonepath(store: &Store, zone: &Zone, fresh: Option<&str>) -> Result<PathBuf> {
    let name = &zone.zonename;
    let zp = zone
        .zonepath
        .as_deref()
        .ok_or_else(|| zerr(name, "zonepath is not set; use zonecfg to set it"))?;
    if let Some(other) = store.zonepath_user(name, zp)? {
        return Err(zerr(
            name,
            format!(
                "zonepath {} overlaps the zonepath of zone '{other}'",
                zp.display()
            ),
        ));
    }
    let host = engine::zonepath(store, zone)?;
    if let Some(verb) = fresh {
        if host.join("SUNWdetached.json").exists() {
            return Err(zerr(
                name,
                format!(
                    "Cannot {verb} detached zone. Use attach or remove {} directory.",
                    host.display()
                ),
            ));
        }
        if let Ok(mut entries) = fs::read_dir(&host) {
            if entries.next().is_some() {
                return Err(zerr(
                    name,
                    format!(
                        "zonepath {} exists and is not empty; remove its contents or choose another zonepath",
                        host.display()
                    ),
                ));
            }
        }
    }
    Ok(host)
}

/// `zoneadm install -d PATH`: the root filesystem from a directory or a (gzip) tar archive.
/// The zone is `incomplete` while the copy runs, so an interrupted install never looks
/// installed; a failed one leaves the zone configured with nothing on disk.
pub fn install(store: &Store, name: &str, source: &Path) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let t = state::check(name, st, Verb::Install)?;
    zone.verify().map_err(|e| zerr(name, e))?;
    refuse_vm_source(&zone)?;
    check_source(name, source)?;
    zones::storage::source_kind(source)?;
    let host = check_zonepath(store, &zone, Some("install"))?;
    store.set_state(&lock, t.during.unwrap_or(ZoneState::Incomplete))?;
    zones_engine::fault::point("install:after-incomplete");
    let made = (|| -> Result<()> {
        make_zonepath(name, &host)?;
        zones::storage::populate(source, &host.join("root"))?;
        zones_engine::fault::point("install:after-populate");
        engine::id_range(store, &zone)?;
        Ok(())
    })();
    if let Err(e) = made {
        return Err(undo_install(store, &zone, &lock, &host, e));
    }
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Installed))?;
    Ok(())
}

/// A kvm zone has no root filesystem to install: its disks come from `attr diskN`.
fn refuse_vm_source(zone: &Zone) -> Result<()> {
    if zone.brand != Brand::Kvm {
        return Ok(());
    }
    Err(zerr(
        &zone.zonename,
        format!(
            "brand kvm installs without a root filesystem or image: zoneadm -z {} install (disks come from attr disk0..disk7)",
            zone.zonename
        ),
    ))
}

/// `zoneadm install` without -d or -i: a kvm zone (SmartOS installs VMs without an OS
/// image): its small zone root and the host's qemu brand root; other brands are refused.
pub fn install_vm(store: &Store, name: &str) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    if zone.brand != Brand::Kvm {
        return Err(zerr(
            name,
            "install: give the root filesystem with -d PATH (a directory or a tar archive) or an image with -i IMAGE",
        ));
    }
    let t = state::check(name, st, Verb::Install)?;
    zone.verify().map_err(|e| zerr(name, e))?;
    check_vm(store, &zone)?;
    let host = check_zonepath(store, &zone, Some("install"))?;
    store.set_state(&lock, t.during.unwrap_or(ZoneState::Incomplete))?;
    zones_engine::fault::point("install:after-incomplete");
    let made = (|| -> Result<()> {
        make_zonepath(name, &host)?;
        super::kvm::install(store, &host).map_err(|e| zerr(name, e))?;
        zones_engine::fault::point("install:after-populate");
        let base = engine::id_range(store, &zone)?;
        super::kvm::provision_disks(store, &zone, &host, base).map_err(|e| zerr(name, e))?;
        Ok(())
    })();
    if let Err(e) = made {
        return Err(undo_install(store, &zone, &lock, &host, e));
    }
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Installed))?;
    Ok(())
}

/// Makes the zonepath `host`, private to root (see [`private_zonepath`]).
fn make_zonepath(name: &str, host: &Path) -> Result<()> {
    fs::create_dir_all(host).map_err(|e| zerr(name, format!("{}: {e}", host.display())))?;
    private_zonepath(name, host)
}

/// The zonepath is 0700: the zone's root keeps its files' owners and modes (setuid binaries,
/// device nodes), which no host user may reach through it.
fn private_zonepath(name: &str, host: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(host, fs::Permissions::from_mode(0o700))
        .map_err(|e| zerr(name, format!("chmod 0700 {}: {e}", host.display())))
}

/// An install source is a directory or a regular file (an archive): anything else (a FIFO,
/// a device, a socket) is refused before it is opened, so zoneadm never blocks on it.
fn check_source(name: &str, source: &Path) -> Result<()> {
    let meta =
        fs::metadata(source).map_err(|e| zerr(name, format!("{}: {e}", source.display())))?;
    if meta.is_dir() || meta.is_file() {
        return Ok(());
    }
    Err(zerr(
        name,
        format!(
            "{}: is {}, not a directory or a regular file; give a root directory or a tar archive",
            source.display(),
            zones::image::rootdir::type_name(&meta.file_type())
        ),
    ))
}

/// After a failed install: free the id range, remove whatever was made under the zonepath
/// and record the zone `configured` again. Returns the install's error, saying so.
fn undo_install(
    store: &Store,
    zone: &Zone,
    lock: &ZoneLock,
    host: &Path,
    cause: AdminError,
) -> AdminError {
    let name = &zone.zonename;
    let _ = zones::idrange::free(store, &zones::idrange::key(zone));
    let _ = zones::storage::destroy(host);
    let cleaned = remove_zone_files(host).is_ok() && !host.exists();
    if let Err(e) = store.set_state(lock, ZoneState::Configured) {
        return zerr(
            name,
            format!("{cause}; and recording the zone configured again failed: {e}"),
        );
    }
    if cleaned {
        zerr(
            name,
            format!("install failed: {cause}; the zone is configured, nothing was installed"),
        )
    } else {
        zerr(
            name,
            format!(
                "install failed: {cause}; the zone is configured, but {} could not be removed in full: remove it by hand",
                host.display()
            ),
        )
    }
}

/// `zoneadm install -i IMAGE`: the zone's root from an image in the image store, made by the
/// zone's storage backend (`storage` property; overlay when unset). An `app` zone also gets
/// `<zonepath>/app.json` from the image's config. A failed install leaves the zone configured.
pub fn install_image(store: &Store, name: &str, image: &str) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let t = state::check(name, st, Verb::Install)?;
    zone.verify().map_err(|e| zerr(name, e))?;
    refuse_vm_source(&zone)?;
    let images = zones::image::ImageStore::open(store.altroot());
    let m = images.zone_image(image)?;
    let host = check_zonepath(store, &zone, Some("install"))?;
    let kind = storage_kind(store, &zone, &host)?;
    check_quota(&zone, &kind)?;
    store.set_state(&lock, t.during.unwrap_or(ZoneState::Incomplete))?;
    zones_engine::fault::point("install:after-incomplete");
    let made = (|| -> Result<()> {
        make_zonepath(name, &host)?;
        let rootfs = images.rootfs(&m.id);
        let image = zones::storage::ImageRef {
            id: &m.id,
            rootfs: &rootfs,
        };
        zones::storage::provision(&kind, &image, &host, name, zone.quota.map(|q| q.bytes()))?;
        zones::storage::note_image_copy(&store.state_dir(), &kind, &host, &m.id)?;
        if zone.brand == Brand::App {
            let json =
                serde_json::to_vec_pretty(&m.config.app_process()).map_err(|e| zerr(name, e))?;
            zones::store::write_atomic(&host, "app.json", &json)?;
        }
        zones_engine::fault::point("install:after-populate");
        engine::id_range(store, &zone)?;
        Ok(())
    })();
    if let Err(e) = made {
        return Err(undo_install(store, &zone, &lock, &host, e));
    }
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Installed))?;
    Ok(())
}

/// `zoneadm uninstall`: remove the root filesystem; the zone is configured again.
pub fn uninstall(store: &Store, name: &str) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let t = state::check(name, settled_state(store, name, &lock, st), Verb::Uninstall)?;
    store.set_state(&lock, ZoneState::Incomplete)?;
    zones_engine::fault::point("uninstall:after-incomplete");
    let host = engine::zonepath(store, &zone)?;
    zones::storage::destroy(&host)?;
    zones_engine::fault::point("uninstall:after-destroy");
    remove_zone_files(&host)?;
    zones::idrange::free(store, &zones::idrange::key(&zone)).map_err(engine::EngineError::from)?;
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Configured))?;
    Ok(())
}

fn remove_zone_files(host: &Path) -> Result<()> {
    // A kvm zone's VM mounts (left by a supervisor that died) go before its files.
    super::kvm::vmroot::unmount(&host.join("root"));
    if super::kvm::vmroot::mounted(&host.join("root")) {
        return Err(zerr(
            &host.display().to_string(),
            "the VM's mounts in the zone root are still there; halt the zone first",
        ));
    }
    zones::storage::destroy(host)?;
    // A kvm zone's disks.
    zones::storage::remove_tree(&host.join("vm"))?;
    zones::storage::remove_tree(&host.join("root"))?;
    // The zone-owned device nodes of a user-namespace zone (engine::write_bundle).
    zones::storage::remove_tree(&host.join("devices"))?;
    for f in [
        "config.json",
        "app.json",
        "SUNWdetached.json",
        zones::storage::zfs::DETACH_STREAM,
        zones::storage::zfs::DETACH_INCR,
        "idshift",
    ] {
        let _ = fs::remove_file(host.join(f));
    }
    let _ = fs::remove_dir(host);
    Ok(())
}

/// `zoneadm ready`: a supervisor sets the zone up; init waits for boot.
pub fn ready(store: &Store, name: &str) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    state::check(name, settled_state(store, name, &lock, st), Verb::Ready)?;
    zones::spec::check_kernel(&zone)?;
    check_vm(store, &zone)?;
    drop(lock);
    supervisor::spawn(store, name, StartMode::Ready, None).map_err(|e| zerr(name, e))
}

/// `zoneadm boot [-- ARGS]`.
pub fn boot(store: &Store, name: &str, args: Option<Vec<String>>) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let st = settled_state(store, name, &lock, st);
    state::check(name, st, Verb::Boot)?;
    // A configuration that verify refuses (one made before a check was added) stops here.
    zone.verify().map_err(|e| zerr(name, e))?;
    // A cap this kernel cannot apply stops the boot here, with the reason, not in zoneadmd.
    zones::spec::check_kernel(&zone)?;
    check_vm(store, &zone)?;
    check_datasets(store, &zone, &engine::zonepath(store, &zone)?)?;
    if zone.brand == Brand::Linux
        && !zones::storage::root_has(&engine::zonepath(store, &zone)?, "sbin/init")
    {
        return Err(zerr(
            name,
            "brand linux boots /sbin/init, which the zone's root does not have",
        ));
    }
    drop(lock);
    if st == ZoneState::Ready {
        return Ok(control::request(
            &ZonePaths::new(store, name),
            &Request::Boot,
            CONTROL_WAIT,
        )?);
    }
    supervisor::spawn(store, name, StartMode::Boot, args).map_err(|e| zerr(name, e))
}

/// The accelerator a kvm zone runs with, as `zoneadm boot` states it: `TCG (why)`.
pub fn vm_accel(store: &Store, name: &str) -> Option<String> {
    let zone = store.load(name).ok().flatten()?;
    (zone.brand == Brand::Kvm)
        .then(|| super::kvm::accel_of(&ZonePaths::new(store, name), &zone))
        .flatten()
        .map(|(_, d)| d)
}

/// `zoneadm halt`: everything in the zone is killed; the zone is installed again.
pub fn halt(store: &Store, name: &str) -> Result<()> {
    let (_zone, lock, st) = open(store, name)?;
    let eff = effective_state(store, name, st);
    state::check(name, eff, Verb::Halt)?;
    let paths = ZonePaths::new(store, name);
    drop(lock);
    if supervisor_alive(&paths) {
        let pid = super::supervisor_pid(&paths);
        let asked = control::request(&paths, &Request::Halt, CONTROL_WAIT);
        // The supervisor answers when init is gone, then tears down and exits: wait for
        // that, so the zone is installed (and its links gone) when halt returns.
        super::wait_supervisor_gone(&paths, pid, std::time::Instant::now() + CONTROL_WAIT);
        match asked {
            Ok(()) => return Ok(()),
            Err(e) if supervisor_alive(&paths) => return Err(e.into()),
            // It went away without answering: another halt finished first, or it was
            // killed half-way through this one. Either way, finish its work below.
            Err(_) => {}
        }
    }
    // The supervisor is gone: clean up after it (its container, links and storage mount).
    let lock = store.lock(name)?;
    if !recover::clean(store, name, &lock) {
        return Err(zerr(
            name,
            "a zoneadmd started for the zone while halting it; run halt again",
        ));
    }
    store.set_state(&lock, ZoneState::Installed)?;
    Ok(())
}

/// `zoneadm shutdown [-r]`: ask init to stop (and with `reboot` to come back), halting after
/// `timeout`.
pub fn shutdown(store: &Store, name: &str, reboot: bool, timeout: Duration) -> Result<()> {
    let (_zone, lock, st) = open(store, name)?;
    state::check(name, effective_state(store, name, st), Verb::Shutdown)?;
    drop(lock);
    let req = Request::Shutdown {
        timeout_secs: timeout.as_secs().max(1),
        reboot,
    };
    let paths = ZonePaths::new(store, name);
    let pid = super::supervisor_pid(&paths);
    control::request(&paths, &req, timeout + CONTROL_WAIT)?;
    // As halt: the supervisor answers once the zone is installed, then exits; a shutdown
    // that returns leaves no zoneadmd behind (a check for leaks right after saw one).
    if !reboot {
        super::wait_supervisor_gone(&paths, pid, std::time::Instant::now() + CONTROL_WAIT);
    }
    Ok(())
}

/// `zoneadm reboot`: halt and boot again.
pub fn reboot(store: &Store, name: &str) -> Result<()> {
    let (_zone, lock, st) = open(store, name)?;
    state::check(name, effective_state(store, name, st), Verb::Reboot)?;
    drop(lock);
    Ok(control::request(
        &ZonePaths::new(store, name),
        &Request::Reboot,
        CONTROL_WAIT,
    )?)
}

/// `zoneadm apply`: the stored caps take effect in the running zone, without a reboot.
pub fn apply(store: &Store, name: &str) -> Result<()> {
    let (zone, _lock, _st) = open(store, name)?;
    apply_live(store, &zone)
}

/// Apply `zone`'s caps to its ready or running instance (live re-capping, also behind
/// `zonecfg -r`). A cap the kernel refuses leaves the caps in force unchanged.
pub fn apply_live(store: &Store, zone: &Zone) -> Result<()> {
    check_live(store, &zone.zonename)?;
    engine::update_caps(&ZonePaths::new(store, &zone.zonename), zone)?;
    Ok(())
}

/// The zone `name` is ready or running: live changes have something to change.
pub fn check_live(store: &Store, name: &str) -> Result<()> {
    let recorded = store
        .state(name)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(name.to_string()))?;
    let st = effective_state(store, name, recorded);
    if !matches!(st, ZoneState::Ready | ZoneState::Running) {
        return Err(zerr(
            name,
            format!("the zone is {st}: live changes need a ready or running zone"),
        ));
    }
    Ok(())
}

/// `zoneadm clone SOURCE`: install this zone as a copy of an installed, halted zone.
pub fn clone(store: &Store, name: &str, source: &str) -> Result<()> {
    let src_zone = store
        .load(source)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(source.to_string()))?;
    let src_state = store
        .state(source)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(source.to_string()))?;
    state::check_clone_source(source, effective_state(store, source, src_state))?;
    let (zone, lock, st) = open(store, name)?;
    let t = state::check(name, st, Verb::Clone)?;
    zone.verify().map_err(|e| zerr(name, e))?;
    if zone.brand == Brand::Kvm || src_zone.brand == Brand::Kvm {
        // A VM's disks are clones of images already: a new VM is installed from them.
        return Err(zerr(
            name,
            format!("clone of a kvm zone is not supported: give it the same diskN images and run zoneadm -z {name} install"),
        ));
    }
    let host = check_zonepath(store, &zone, Some("clone"))?;
    let src_host = engine::zonepath(store, &src_zone)?;
    store.set_state(&lock, t.during.unwrap_or(ZoneState::Incomplete))?;
    let made = (|| -> Result<()> {
        make_zonepath(name, &host)?;
        // The source's backend clones; a zone installed from a directory is copied.
        let quota = zone.quota.map(|q| q.bytes());
        if zones::storage::clone_zone(&src_host, &host, name, quota)?.is_none() {
            if let Some(q) = zone.quota {
                return Err(zerr(
                    name,
                    format!("quota {q}: the source zone was installed from a directory, which cannot enforce a disk quota"),
                ));
            }
            zones::storage::populate(&src_host.join("root"), &host.join("root"))?;
        }
        // The copy has the source's owners: shift them from the source's range to ours.
        zones::idshift::record(&host, zones::idshift::recorded(&src_host))
            .map_err(|e| zerr(name, e))?;
        engine::id_range(store, &zone)?;
        Ok(())
    })();
    if let Err(e) = made {
        let _ = zones::idrange::free(store, &zones::idrange::key(&zone));
        let _ = remove_zone_files(&host);
        store.set_state(&lock, ZoneState::Configured)?;
        return Err(e);
    }
    let src_app = engine::zonepath(store, &src_zone)?.join("app.json");
    if src_app.exists() {
        let _ = fs::copy(src_app, host.join("app.json"));
    }
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Installed))?;
    Ok(())
}

/// `zoneadm move NEWPATH`: move an installed zone's files and record the new zonepath.
pub fn move_zone(store: &Store, name: &str, new_path: &Path) -> Result<()> {
    let (mut zone, lock, st) = open(store, name)?;
    state::check(name, st, Verb::Move)?;
    let old_host = engine::zonepath(store, &zone)?;
    let mut moved = zone.clone();
    // zonecfg's rule for a zonepath: absolute, no `..`, not `/`; so the new place stays
    // inside the alternate root (`-R`) like every zonepath.
    let text = new_path.to_str().unwrap_or_default();
    moved
        .set_global("zonepath", &zones::model::Value::simple(text))
        .map_err(|_| {
            zerr(
                name,
                format!(
                    "move {}: the new zonepath must be an absolute path without '..', other than /",
                    new_path.display()
                ),
            )
        })?;
    let new_path = moved.zonepath.clone().unwrap_or_default();
    let new_host = check_zonepath(store, &moved, Some("move"))?;
    if let Some(parent) = new_host.parent() {
        fs::create_dir_all(parent).map_err(|e| zerr(name, format!("{}: {e}", parent.display())))?;
    }
    let _ = fs::remove_dir(&new_host);
    fs::rename(&old_host, &new_host).map_err(|e| {
        zerr(
            name,
            format!(
                "move {} to {}: {e} (moves across filesystems are not supported)",
                old_host.display(),
                new_host.display()
            ),
        )
    })?;
    zones::storage::moved(&new_host)?;
    zone.zonepath = Some(new_path);
    store.save(&lock, &zone)?;
    Ok(())
}

/// `zoneadm detach`: the zone's files stay, with its configuration beside them
/// (`SUNWdetached.json`) and its storage record (`storage.json`); on zfs also a `zfs send`
/// stream (`SUNWdetached.zfs`), the dataset unmounted. The zone is only configured here; the
/// zonepath can be copied to another host and attached there.
pub fn detach(store: &Store, name: &str) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let t = state::check(name, st, Verb::Detach)?;
    let host = engine::zonepath(store, &zone)?;
    zones::storage::detach(&host)?;
    let json = serde_json::to_vec_pretty(&zone).map_err(|e| zerr(name, e))?;
    zones::store::write_atomic(&host, "SUNWdetached.json", &json)?;
    // The files keep their owners (and `idshift` says which); attach takes a range again.
    zones::idrange::free(store, &zones::idrange::key(&zone)).map_err(engine::EngineError::from)?;
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Configured))?;
    Ok(())
}

/// `zoneadm attach [-F]`: take over the files at the zonepath, maybe detached on another
/// host: the storage backend of this host's configuration takes them (zfs receives the
/// stream into its dataset; overlay needs the zone's image imported here).
pub fn attach(store: &Store, name: &str, force: bool) -> Result<()> {
    let (zone, lock, st) = open(store, name)?;
    let verb = if force {
        Verb::AttachForce
    } else {
        Verb::Attach
    };
    let t = state::check(name, st, verb)?;
    let host = engine::zonepath(store, &zone)?;
    let rec = zones::storage::read_record(&host)?;
    if !host.join("root").is_dir() && rec.is_none() {
        return Err(zerr(
            name,
            format!("{}/root does not exist: nothing to attach", host.display()),
        ));
    }
    if !force && !host.join("SUNWdetached.json").exists() {
        return Err(zerr(
            name,
            format!(
                "{} was not detached (no SUNWdetached.json); use attach -F to take it anyway",
                host.display()
            ),
        ));
    }
    if let Some(rec) = rec {
        // This host's choice (the zone's storage, else zones.conf) where one is made; the
        // zone keeps its kind of backend either way.
        let configured = zone.storage.is_some() || store.conf()?.get("storage").is_some();
        let kind = if configured {
            storage_kind(store, &zone, &host)?
        } else {
            rec.kind.clone()
        };
        let lower = rec
            .image
            .as_deref()
            .map(|id| zones::image::ImageStore::open(store.altroot()).rootfs(id));
        check_quota(&zone, &rec.kind)?;
        zones::storage::attach(&host, &kind, name, lower.as_deref())?;
    }
    private_zonepath(name, &host)?;
    engine::id_range(store, &zone)?;
    let _ = fs::remove_file(host.join("SUNWdetached.json"));
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Installed))?;
    Ok(())
}

/// The zonepath of an installed zone for a snapshot verb, with its lock and live state.
fn for_snapshot(store: &Store, name: &str, verb: &str) -> Result<(PathBuf, ZoneLock, ZoneState)> {
    let (zone, lock, st) = open(store, name)?;
    let st = effective_state(store, name, st);
    if matches!(st, ZoneState::Configured | ZoneState::Incomplete) {
        return Err(zerr(name, format!("must be installed before {verb}.")));
    }
    Ok((engine::zonepath(store, &zone)?, lock, st))
}

/// `zoneadm snapshot NAME`: a snapshot of the zone's root (installed or running zone).
pub fn snapshot(store: &Store, name: &str, snap: &str) -> Result<()> {
    let (host, _lock, _st) = for_snapshot(store, name, "snapshot")?;
    Ok(zones::storage::snapshot(&host, snap)?)
}

/// `zoneadm rollback [-r] NAME`: the zone's root as it was at the snapshot; a running zone
/// is halted first and booted again after.
pub fn rollback(store: &Store, name: &str, snap: &str, destroy_later: bool) -> Result<()> {
    let (host, lock, st) = for_snapshot(store, name, "rollback")?;
    // Refuse a missing snapshot (or newer ones without -r) before touching a running zone.
    if !zones::storage::snapshots(&host)?
        .iter()
        .any(|s| s.name == snap)
    {
        return Err(zerr(
            name,
            format!("{snap}: no such snapshot; see zoneadm -z {name} list-snapshots"),
        ));
    }
    zones::storage::check_rollback(&host, snap, destroy_later)?;
    let was_live = st != ZoneState::Installed;
    drop(lock);
    if was_live {
        halt(store, name)?;
    }
    {
        let (_zone, _lock, st) = open(store, name)?;
        if st != ZoneState::Installed {
            return Err(zerr(
                name,
                format!("is {st}; it must be halted to roll back"),
            ));
        }
        zones::storage::rollback(&host, snap, destroy_later)?;
    }
    if was_live {
        boot(store, name, None)?;
    }
    Ok(())
}

/// `zoneadm list-snapshots`.
pub fn list_snapshots(store: &Store, name: &str) -> Result<Vec<zones::storage::Snapshot>> {
    let (host, _lock, _st) = for_snapshot(store, name, "list-snapshots")?;
    Ok(zones::storage::snapshots(&host)?)
}

/// `zoneadm delete-snapshot NAME`.
pub fn delete_snapshot(store: &Store, name: &str, snap: &str) -> Result<()> {
    let (host, _lock, _st) = for_snapshot(store, name, "delete-snapshot")?;
    Ok(zones::storage::delete_snapshot(&host, snap)?)
}

/// `zoneadm mark incomplete`.
pub fn mark_incomplete(store: &Store, name: &str) -> Result<()> {
    let (_zone, lock, st) = open(store, name)?;
    let t = state::check(name, st, Verb::MarkIncomplete)?;
    store.set_state(&lock, t.to.unwrap_or(ZoneState::Incomplete))?;
    Ok(())
}

/// One line of `zoneadm list`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ListEntry {
    /// `None` prints as `-` (the zone has no id: it is not ready or running).
    pub zoneid: Option<u32>,
    pub zonename: String,
    pub state: String,
    pub zonepath: String,
    pub uuid: String,
    pub brand: String,
    #[serde(rename = "ip-type")]
    pub ip_type: String,
}

/// Which zones `list` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListScope {
    /// -c: every configured zone.
    pub configured: bool,
    /// -i: installed zones too.
    pub installed: bool,
}

/// The zones to list, the global zone first, as illumos does.
pub fn list(store: &Store, scope: ListScope, only: Option<&str>) -> Result<Vec<ListEntry>> {
    let mut out = vec![ListEntry {
        zoneid: Some(0),
        zonename: "global".into(),
        state: "running".into(),
        zonepath: "/".into(),
        uuid: String::new(),
        brand: "linux".into(),
        ip_type: "shared".into(),
    }];
    for e in store.list()? {
        if only.is_some_and(|n| n != e.name) {
            continue;
        }
        let st = effective_state(store, &e.name, e.state);
        let shown = only.is_some()
            || scope.configured
            || (scope.installed && st != ZoneState::Configured && st != ZoneState::Incomplete)
            || matches!(
                st,
                ZoneState::Ready | ZoneState::Running | ZoneState::ShuttingDown | ZoneState::Down
            );
        if !shown {
            continue;
        }
        let zoneid = matches!(
            st,
            ZoneState::Ready | ZoneState::Running | ZoneState::ShuttingDown
        )
        .then(|| ZoneInfo::load(&ZonePaths::new(store, &e.name)).map(|i| i.zoneid))
        .flatten();
        out.push(ListEntry {
            zoneid,
            zonename: e.name.clone(),
            state: st.to_string(),
            zonepath: e
                .zonepath
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            uuid: e.uuid.clone(),
            brand: match e.brand {
                Brand::Linux => "linux".into(),
                Brand::App => "app".into(),
                Brand::Kvm => "kvm".into(),
            },
            ip_type: match e.ip_type {
                IpType::Exclusive => "excl".into(),
                IpType::Shared => "shared".into(),
            },
        });
    }
    if only.is_some() {
        out.retain(|e| Some(e.zonename.as_str()) == only);
    }
    Ok(out)
}

/// `\:` and `\\` escaping of one parsable field (illumos `zoneadm list -p`).
pub fn escape_field(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// One `zoneadm list -p` line: `zoneid:zonename:state:zonepath:uuid:brand:ip-type`.
pub fn parsable_line(e: &ListEntry) -> String {
    let id = e.zoneid.map_or("-".to_string(), |i| i.to_string());
    [
        id,
        escape_field(&e.zonename),
        e.state.clone(),
        escape_field(&e.zonepath),
        e.uuid.clone(),
        e.brand.clone(),
        e.ip_type.clone(),
    ]
    .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsable_lines_escape_colons_and_backslashes() {
        let e = ListEntry {
            zoneid: None,
            zonename: "web".into(),
            state: "installed".into(),
            zonepath: "/zones/a:b\\c".into(),
            uuid: "u-1".into(),
            brand: "linux".into(),
            ip_type: "excl".into(),
        };
        assert_eq!(
            parsable_line(&e),
            "-:web:installed:/zones/a\\:b\\\\c:u-1:linux:excl"
        );
    }
}
