//! The kvm brand's runtime: a zone whose workload is qemu-system-x86_64.
//!
//! - [`check`]: what `zoneadm verify`, `install` and `boot` refuse before anything is made.
//! - [`install`]: the zone root (no image: a small directory, see `zones::kvm_root`) and the
//!   host's brand root (made once per qemu binary).
//! - [`prepare`] (zoneadmd, before the container is made): the accelerator, and the host-side
//!   mounts in the zone root (`vmroot`): the brand root read-only on /usr, the kernel and
//!   initrd read-only on /vm/kernel and /vm/initrd, the host-made QMP directory on /vm/qmp,
//!   the disk clones' directory on /vm/disks and each disk image read-only on
//!   /vm/images/<id>; returns qemu's command line (with `kvm_disk::qemu_args` and
//!   `vmnet::vm_nic_qemu_args`). [`release`] undoes the mounts.
//! - [`qmp`]: shutdown (`system_powerdown`, the ACPI power button), halt (`quit`), reboot
//!   (`system_reset`) from the host.

pub mod accel;
pub mod qmp;
pub mod vmroot;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zones::kvm::{KvmConfig, QEMU_ID, QMP_SOCKET};
use zones::model::Zone;
use zones::store::Store;

use super::ZonePaths;

/// The VM of `zone` as verify sees it: its attrs, its kernel and initrd, its memory cap,
/// its disks (`kvm_disk::check`) and qemu. `Err` is the message after `zone 'NAME': `.
pub fn check(store: &Store, zone: &Zone) -> Result<KvmConfig, String> {
    let cfg = KvmConfig::from_zone(zone)
        .map_err(|e| unprefixed(zone, &e.to_string()))?
        .ok_or_else(|| "not a kvm zone".to_string())?;
    if !zones::spec::wants_userns(zone) {
        // Its uid 100 would be the host's.
        return Err(
            "brand kvm runs qemu as uid 100 of the zone's own user namespace: remove userns=false"
                .into(),
        );
    }
    for (attr, p) in [("kernel", &cfg.kernel), ("initrd", &cfg.initrd)] {
        if let Some(p) = p {
            check_boot_file(attr, p)?;
        }
    }
    if let Some(phys) = zone.capped_memory.as_ref().and_then(|m| m.physical) {
        if phys.bytes() < cfg.memory_cap() {
            return Err(format!(
                "capped-memory physical={} is below the VM's ram ({} MiB) plus qemu's overhead ({} MiB): raise physical to at least {}m or lower attr ram",
                phys,
                cfg.ram >> 20,
                zones::kvm::MEMORY_OVERHEAD >> 20,
                cfg.memory_cap() >> 20
            ));
        }
    }
    let images = zones::image::ImageStore::open(store.altroot());
    zones::kvm_disk::check(&images, zone, &cfg).map_err(|e| unprefixed(zone, &e.to_string()))?;
    zones::kvm_root::find_qemu().map_err(|e| e.to_string())?;
    accel::choose(cfg.accel)?;
    Ok(cfg)
}

/// A direct-boot kernel or initrd: a regular file qemu (an unprivileged user) can read.
fn check_boot_file(attr: &str, p: &Path) -> Result<(), String> {
    let meta = fs::metadata(p).map_err(|e| {
        format!(
            "attr {attr} {}: {e}; set it to an existing host file",
            p.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!("attr {attr} {}: not a regular file", p.display()));
    }
    if meta.mode() & 0o004 == 0 {
        return Err(format!(
            "attr {attr} {}: not readable by others (mode {:o}): qemu runs unprivileged; chmod o+r it",
            p.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

fn unprefixed(zone: &Zone, msg: &str) -> String {
    let prefix = format!("zone '{}': ", zone.zonename);
    msg.strip_prefix(&prefix).unwrap_or(msg).to_string()
}

/// `zoneadm install` of a kvm zone: the brand root (cached) and the zone root at
/// `<zonepath>/root`.
pub fn install(store: &Store, zonepath: &Path) -> Result<(), String> {
    let qemu = zones::kvm_root::find_qemu().map_err(|e| e.to_string())?;
    zones::kvm_root::brand_root(&store.state_dir(), &qemu).map_err(|e| e.to_string())?;
    zones::kvm_root::make_zone_root(&zonepath.join("root")).map_err(|e| e.to_string())
}

/// `zoneadm install`, once the zone's id range is known (`base`; `None` without a user
/// namespace): the VM's copy-on-write disk clones, owned by its qemu user.
pub fn provision_disks(
    store: &Store,
    zone: &Zone,
    zonepath: &Path,
    base: Option<u32>,
) -> Result<(), String> {
    let cfg = check(store, zone)?;
    let images = zones::image::ImageStore::open(store.altroot());
    zones::kvm_disk::provision(
        &images,
        zone,
        &cfg,
        zonepath,
        super::vmnet::vm_owner(base.unwrap_or(0)),
    )
    .map(drop)
    .map_err(|e| unprefixed(zone, &e.to_string()))
}

/// The host-made directory of qemu's QMP socket (bound on /vm/qmp in the zone).
pub fn qmp_dir(paths: &ZonePaths) -> PathBuf {
    paths.run.join("vm-qmp")
}

/// The accelerator of the running zone (`name`, then its description).
pub fn accel_file(paths: &ZonePaths) -> PathBuf {
    paths.run.join("accel")
}

/// Set up the zone's VM for a boot (zoneadmd, with the zone root unmounted by nothing else):
/// the host-side mounts and qemu's command line. `base`: the zone's id-range base (`None`
/// without a user namespace).
pub fn prepare(
    store: &Store,
    zone: &Zone,
    paths: &ZonePaths,
    zonepath: &Path,
    base: Option<u32>,
) -> Result<Vec<String>, String> {
    let name = &zone.zonename;
    let cfg = check(store, zone).map_err(|e| format!("zone '{name}': {e}"))?;
    let images = zones::image::ImageStore::open(store.altroot());
    let disks = zones::kvm_disk::zone_disks(&images, zone, &cfg, zonepath)
        .map_err(|e| format!("zone '{name}': {}", unprefixed(zone, &e.to_string())))?;
    let accel = accel::choose(cfg.accel).map_err(|e| format!("zone '{name}': {e}"))?;
    let qemu = zones::kvm_root::find_qemu().map_err(|e| e.to_string())?;
    let brand = zones::kvm_root::brand_root(&store.state_dir(), &qemu)
        .map_err(|e| format!("zone '{name}': brand root: {e}"))?;
    let owner = base.unwrap_or(0) + QEMU_ID;
    let qmp = qmp_dir(paths);
    let _ = fs::remove_dir_all(&qmp);
    fs::create_dir_all(&qmp)
        .and_then(|_| fs::set_permissions(&qmp, fs::Permissions::from_mode(0o700)))
        .and_then(|_| std::os::unix::fs::chown(&qmp, Some(owner), Some(owner)))
        .map_err(|e| format!("zone '{name}': {}: {e}", qmp.display()))?;
    let root = zonepath.join("root");
    // What a supervisor that died may have left mounted.
    vmroot::unmount(&root);
    let disks_dir = zonepath.join("vm/disks");
    let mut images: Vec<(String, PathBuf)> = Vec::new();
    for d in &disks {
        if !images.iter().any(|(id, _)| *id == d.image.id) {
            images.push((d.image.id.clone(), d.image.path.clone()));
        }
    }
    let binds = vmroot::Binds {
        brand: &brand,
        kernel: cfg.kernel.as_deref(),
        initrd: cfg.initrd.as_deref(),
        qmp: &qmp,
        disks: (!disks.is_empty()).then_some(disks_dir.as_path()),
        images: &images,
    };
    if let Err(e) = vmroot::mount_all(&root, &binds) {
        vmroot::unmount(&root);
        return Err(format!("zone '{name}': {e}"));
    }
    let _ = fs::write(
        accel_file(paths),
        format!("{}\n{}\n", accel.name(), accel.describe()),
    );
    let mut extra = zones::kvm_disk::qemu_args(&disks);
    extra.extend(super::vmnet::vm_nic_qemu_args(&super::vmnet::vm_nics(zone)));
    Ok(cfg.qemu_args(&accel.qemu_arg(), &extra))
}

/// Undo [`prepare`]: the mounts in the zone root and the QMP directory. Idempotent.
pub fn release(paths: &ZonePaths, zonepath: &Path) {
    vmroot::unmount(&zonepath.join("root"));
    let _ = fs::remove_dir_all(qmp_dir(paths));
    let _ = fs::remove_file(accel_file(paths));
}

/// Send `command` to the zone's qemu over QMP.
pub fn qmp_command(paths: &ZonePaths, command: &str) -> Result<(), String> {
    qmp::execute(&qmp_dir(paths), QMP_SOCKET, command).map_err(|e| e.to_string())
}

/// The accelerator to report for `zone`: the running zone's, else what a boot would use.
pub fn accel_of(paths: &ZonePaths, zone: &Zone) -> Option<(String, String)> {
    if let Ok(text) = fs::read_to_string(accel_file(paths)) {
        let mut l = text.lines();
        if let (Some(n), Some(d)) = (l.next(), l.next()) {
            return Some((n.to_string(), d.to_string()));
        }
    }
    let cfg = KvmConfig::from_zone(zone).ok().flatten()?;
    match accel::choose(cfg.accel) {
        Ok(a) => Some((a.name().to_string(), a.describe())),
        Err(e) => Some(("none".to_string(), e)),
    }
}
