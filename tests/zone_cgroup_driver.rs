//! zones.conf `cgroup_driver = systemd | cgroupfs | auto` on a host where systemd is not PID 1:
//! `systemd` refuses the boot with the reason (runc's words) and leaves the zone installed with
//! no cgroup; a value that is none of the three is refused naming it; `auto` (and `cgroupfs`)
//! boot the zone in `<cgroup_parent>/<zone>`. (A zone in a systemd scope on a systemd host is
//! not covered by a test yet.)

mod common;

use std::path::Path;

use common::require_root;
use common::zonehost::ZoneHost;

fn set_conf(h: &ZoneHost, text: &str) {
    let dir = h.root.join("etc/zones");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("zones.conf"), text).unwrap();
}

#[test]
fn cgroup_driver_in_zones_conf_places_the_zone_or_says_why_not() {
    if !require_root() {
        return;
    }
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipping: systemd is PID 1 here");
        return;
    }
    let h = ZoneHost::new("cgdriver", "conf", true);
    h.ok("zonecfg", &["-z", "web", "create; set zonepath=/zones/web"]);
    h.ok(
        "zoneadm",
        &["-z", "web", "install", "-d", h.image.to_str().unwrap()],
    );

    set_conf(&h, "cgroup_driver = systemd\n");
    let err = h.fails("zoneadm", &["-z", "web", "boot"]);
    assert!(
        err.contains("zone 'web'")
            && err.contains("systemd not running on this host, cannot use systemd cgroups manager"),
        "{err}"
    );
    assert_eq!(h.state("web"), "installed");
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );

    set_conf(&h, "cgroup_driver = sytemd\n");
    let err = h.fails("zoneadm", &["-z", "web", "boot"]);
    assert!(
        err.contains(
            "zones.conf: cgroup_driver: expected systemd, cgroupfs or auto, got \"sytemd\""
        ),
        "{err}"
    );
    assert_eq!(h.state("web"), "installed");

    for driver in ["auto", "cgroupfs"] {
        set_conf(&h, &format!("cgroup_driver = {driver}\n"));
        h.ok("zoneadm", &["-z", "web", "boot"]);
        assert_eq!(h.state("web"), "running", "{driver}");
        let dirs = h.zone_cgroups_left();
        assert!(
            !dirs.is_empty() && dirs.iter().all(|d| d.ends_with("web")),
            "{driver}: zone cgroups {dirs:?}"
        );
        h.ok("zoneadm", &["-z", "web", "halt"]);
        assert_eq!(h.state("web"), "installed", "{driver}");
    }
}
