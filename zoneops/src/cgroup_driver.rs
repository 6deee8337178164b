//! zones.conf `cgroup_driver = systemd | cgroupfs | auto`: whether a zone's cgroup is a
//! directory `<cgroup_parent>/<zone>` (cgroupfs) or a transient systemd scope
//! `zone-<zone>.scope` (runz's systemd driver), so that on a systemd host `systemctl status` and
//! `systemd-cgls` show zones and systemd never fights their caps. `auto` (the default) is
//! systemd when systemd is PID 1 on a pure cgroup v2 host, else cgroupfs. The scope's slice is
//! `cgroup_parent` when that names a slice (`zones.slice`), else `machine.slice` (where
//! systemd-nspawn and podman put theirs).
//!
//! The choice is carried by the bundle: the spec's cgroupsPath is `slice:zone:<zone>` with
//! systemd (no "/"), `<cgroup_parent>/<zone>` with cgroupfs (always a "/").

use std::path::Path;

use oci_spec::runtime::Spec;
use zones::store::{Store, ZonesConf};
use zones_cgroup::Mode;

/// The zones.conf key.
pub const KEY: &str = "cgroup_driver";
/// The slice of zone scopes when `cgroup_parent` names none.
pub const DEFAULT_SLICE: &str = "machine.slice";
/// The scope prefix: a zone's unit is `zone-<zone>.scope`.
pub const SCOPE_PREFIX: &str = "zone";

/// The two drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

/// A `cgroup_driver` value that is none of the three.
#[derive(Debug, thiserror::Error)]
#[error("zones.conf: {KEY}: expected systemd, cgroupfs or auto, got \"{0}\"")]
pub struct BadDriver(pub String);

/// Whether `auto` means systemd here: systemd is PID 1 and the host is pure cgroup v2.
pub fn systemd_host() -> bool {
    zones_cgroup::systemd::running() && zones_cgroup::mode() == Mode::V2
}

/// The driver zones.conf asks for; `systemd_host` decides `auto` (and an unset key).
pub fn from_conf(
    conf: &ZonesConf,
    systemd_host: impl FnOnce() -> bool,
) -> Result<Driver, BadDriver> {
    match conf.get(KEY).unwrap_or("auto") {
        "cgroupfs" => Ok(Driver::Cgroupfs),
        "systemd" => Ok(Driver::Systemd),
        "auto" | "" => Ok(if systemd_host() {
            Driver::Systemd
        } else {
            Driver::Cgroupfs
        }),
        other => Err(BadDriver(other.to_string())),
    }
}

/// The systemd driver's cgroupsPath of `zonename`: `<slice>:zone:<zonename>`.
pub fn systemd_path(cgroup_parent: &str, zonename: &str) -> String {
    let parent = cgroup_parent.trim_matches('/');
    let slice = if parent.ends_with(".slice") && !parent.contains('/') {
        parent
    } else {
        DEFAULT_SLICE
    };
    format!("{slice}:{SCOPE_PREFIX}:{zonename}")
}

/// Puts the zone's cgroup under the driver of `store`'s zones.conf: with systemd the spec's
/// cgroupsPath becomes the scope's. Returns the driver.
pub fn place(store: &Store, spec: &mut Spec, zonename: &str) -> Result<Driver, String> {
    let conf = store.conf().map_err(|e| e.to_string())?;
    let driver = from_conf(&conf, systemd_host).map_err(|e| e.to_string())?;
    if driver == Driver::Systemd {
        let parent = store.cgroup_parent().map_err(|e| e.to_string())?;
        if let Some(linux) = spec.linux_mut() {
            linux.set_cgroups_path(Some(systemd_path(&parent, zonename).into()));
        }
    }
    Ok(driver)
}

/// Whether a spec cgroupsPath is the systemd driver's (see the module docs).
pub fn is_systemd_path(cgroups_path: &str) -> bool {
    !cgroups_path.contains('/') && cgroups_path.split(':').count() == 3
}

/// Whether the bundle's config.json puts the zone in a systemd scope ([`place`] wrote it).
pub fn in_bundle(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/linux/cgroupsPath")?
                .as_str()
                .map(is_systemd_path)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> ZonesConf {
        ZonesConf::parse(Path::new("zones.conf"), text).unwrap()
    }

    #[test]
    fn the_driver_comes_from_zones_conf_and_auto_asks_the_host() {
        let d = |t: &str, host: bool| from_conf(&conf(t), || host).map_err(|e| e.to_string());
        assert_eq!(
            d("cgroup_driver = systemd", false).unwrap(),
            Driver::Systemd
        );
        assert_eq!(
            d("cgroup_driver = cgroupfs", true).unwrap(),
            Driver::Cgroupfs
        );
        assert_eq!(d("cgroup_driver = auto", true).unwrap(), Driver::Systemd);
        assert_eq!(d("cgroup_driver = auto", false).unwrap(), Driver::Cgroupfs);
        assert_eq!(d("", true).unwrap(), Driver::Systemd);
        assert_eq!(d("", false).unwrap(), Driver::Cgroupfs);
        assert_eq!(
            d("cgroup_driver = sytemd", true).unwrap_err(),
            "zones.conf: cgroup_driver: expected systemd, cgroupfs or auto, got \"sytemd\""
        );
    }

    #[test]
    fn zone_scopes_go_in_the_parent_slice_or_machine_slice() {
        assert_eq!(systemd_path("/zones", "web"), "machine.slice:zone:web");
        assert_eq!(systemd_path("zones.slice", "web"), "zones.slice:zone:web");
        assert_eq!(systemd_path("/zones.slice/", "db"), "zones.slice:zone:db");
        assert_eq!(systemd_path("a/b.slice", "db"), "machine.slice:zone:db");
        assert!(is_systemd_path("machine.slice:zone:web"));
        assert!(!is_systemd_path("/zones/web"));
        assert!(!is_systemd_path("runz-test-1/a:b:c/web"));
    }
}
