//! `add dataset` (illumos delegated datasets) through the real binaries. On OpenZFS >= 2.2
//! (the qemu guest of `integration/vm/run.sh --openzfs`, which scripts/test.sh runs) a dataset
//! is handed to a running zone (`zfs zone`): from inside, its root creates a child and a
//! snapshot and lists only its own; it cannot destroy what is outside; after halt the dataset
//! is the host's again. Bad input (missing dataset, another zone's, the zone's own root, a pool
//! that is not imported) is refused with nothing changed. Where there is no OpenZFS (this host:
//! zfs-fuse), `verify` and `boot` refuse the zone, naming what they found.

mod common;

use std::path::Path;
use std::process::Command;

use common::require_root;
use common::zonehost::ZoneHost;

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("dataset", tag, true))
    }

    /// `imgadm import --rootfs` of the busybox rootfs as `name`.
    fn import_image_as(&self, name: &str) {
        let image = self.image.to_str().unwrap();
        self.ok("imgadm", &["import", "--rootfs", "--name", name, image]);
    }
}

/// Halts a host's zones when dropped (declared after the pool, so it runs first).
struct HaltFirst<'a>(&'a ZoneHost);

impl Drop for HaltFirst<'_> {
    fn drop(&mut self) {
        self.0.halt_all();
    }
}

fn openzfs() -> bool {
    Path::new("/dev/zfs").exists()
}

/// `zfs ARGS` on the host: (success, stdout + stderr).
fn host_zfs(args: &[&str]) -> (bool, String) {
    let out = Command::new("zfs").args(args).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn prop(ds: &str, p: &str) -> String {
    let (ok, out) = host_zfs(&["get", "-H", "-o", "value", p, ds]);
    assert!(ok, "zfs get {p} {ds}: {out}");
    out.trim().to_string()
}

/// The zone runs the host's OpenZFS `zfs` through the host's dynamic loader, from read-only
/// lofs mounts of the host's /usr (the busybox zone has no libc), with /dev/zfs.
const HOST_TOOLS: &str = "add fs; set dir=/host/usr; set special=/usr; set type=lofs; \
     add options ro; end; add device; set match=/dev/zfs; end";
const ZFS_IN_ZONE: &str = "/host/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path \
     /host/usr/lib/x86_64-linux-gnu /host/usr/sbin/zfs";

#[test]
fn a_delegated_dataset_is_the_zones_to_manage_and_the_hosts_again_after_halt() {
    if !require_root() {
        return;
    }
    let h = Host::new("deleg");
    if !openzfs() {
        // zfs-fuse (or nothing): refused at verify and at boot, naming what was found.
        h.ok(
            "zonecfg",
            &[
                "-z",
                "d1",
                "create; set zonepath=/zones/d1; add dataset; set name=tank/d1-data; end",
            ],
        );
        h.ok(
            "zoneadm",
            &["-z", "d1", "install", "-d", h.image.to_str().unwrap()],
        );
        for verb in ["verify", "boot"] {
            let e = h.fails("zoneadm", &["-z", "d1", verb]);
            assert!(
                e.starts_with(
                    "zoneadm: zone 'd1': add dataset needs OpenZFS 2.2 or later (zfs zone); \
                     this host has "
                ),
                "{verb}: {e}"
            );
            assert_eq!(h.state("d1"), "installed");
        }
        return;
    }
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    let ds = format!("{p}/d1data");
    pool.zfs(&["create", &ds]);
    let cfg = format!("add dataset; set name={ds}; end; {HOST_TOOLS}");
    h.boot_zone("d1", &cfg);
    assert_eq!(prop(&ds, "zoned"), "on");
    // Inside: the dataset is mounted where the zone sees it, and the zone's root manages it.
    let mounts = h.ok("zlogin", &["d1", "cat /proc/mounts"]);
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with(&format!("{ds} /{ds} zfs "))),
        "{mounts}"
    );
    h.ok("zlogin", &["d1", &format!("echo inside > /{ds}/f")]);
    let z = |cmd: &str| h.cmd("zlogin", &["d1", &format!("{ZFS_IN_ZONE} {cmd}")]);
    let out = z(&format!("create {ds}/child"));
    assert!(out.status.success(), "{out:?}");
    let out = z(&format!("snapshot {ds}/child@s1"));
    assert!(out.status.success(), "{out:?}");
    let out = z("list -H -o name -t all");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    // Its own (and the ancestors back to the pool, read-only); nothing else of the pool.
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            p.as_str(),
            &ds,
            &format!("{ds}/child"),
            &format!("{ds}/child@s1")
        ],
        "{listed}"
    );
    // Outside its dataset: refused (and still there).
    pool.zfs(&["create", &format!("{p}/other")]);
    let out = z(&format!("destroy {p}/other"));
    assert!(!out.status.success(), "{out:?}");
    assert!(pool.datasets().contains(&format!("{p}/other")));
    h.ok("zoneadm", &["-z", "d1", "halt"]);
    // Back on the host: not zoned, its children and data there, mountable by the host.
    assert_eq!(prop(&ds, "zoned"), "off");
    let (ok, src) = host_zfs(&["get", "-H", "-o", "source", "mountpoint", &ds]);
    assert!(ok && src.trim() != "local", "mountpoint left set: {src}");
    let all = pool.datasets();
    assert!(all.contains(&format!("{ds}/child@s1")), "{all:?}");
    let (ok, out) = host_zfs(&["destroy", "-r", &ds]);
    assert!(ok, "{out}");
}

#[test]
fn bad_datasets_are_refused_at_verify_with_nothing_changed() {
    if !require_root() || !openzfs() {
        // Without OpenZFS every dataset is refused before these checks (the test above).
        return;
    }
    let h = Host::new("bad");
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    pool.zfs(&["create", &format!("{p}/zones")]);
    h.import_image_as("bb");
    let cfg = |zone: &str, ds: &str| {
        h.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!(
                    "create; set zonepath=/zones/{zone}; set storage=zfs:{p}/zones; \
                     add dataset; set name={ds}; end"
                ),
            ],
        );
        h.ok("zoneadm", &["-z", zone, "install", "-i", "bb"]);
    };
    let before = pool.datasets();
    let refused = |zone: &str, want: &str| {
        let e = h.fails("zoneadm", &["-z", zone, "verify"]);
        assert_eq!(e.trim_end(), format!("zoneadm: zone '{zone}': {want}"));
        let e = h.fails("zoneadm", &["-z", zone, "boot"]);
        assert_eq!(e.trim_end(), format!("zoneadm: zone '{zone}': {want}"));
        assert_eq!(h.state(zone), "installed");
    };
    cfg("m", &format!("{p}/missing"));
    refused("m", &format!("dataset {p}/missing does not exist"));
    cfg("n", "runztestnopool/x");
    refused(
        "n",
        "dataset runztestnopool/x: pool 'runztestnopool' is not imported",
    );
    // The zone's own root dataset's ancestor.
    cfg("r", &format!("{p}/zones"));
    refused(
        "r",
        &format!("dataset {p}/zones holds the zone's own root ({p}/zones/r): delegate a dataset beside it"),
    );
    // Delegated to a running zone already.
    let ds = format!("{p}/shared");
    pool.zfs(&["create", &ds]);
    cfg("a", &ds);
    h.ok("zoneadm", &["-z", "a", "boot"]);
    cfg("b", &ds);
    refused(
        "b",
        &format!("dataset {ds} is delegated to another zone already (zoned=on)"),
    );
    h.ok("zoneadm", &["-z", "a", "halt"]);
    let after: Vec<String> = pool
        .datasets()
        .into_iter()
        .filter(|d| d != &ds && !d.contains("/zones/"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|d| !d.contains("/zones/"))
        .collect();
    assert_eq!(after, before);
    assert_eq!(prop(&ds, "zoned"), "off");
    for z in ["m", "n", "r", "a", "b"] {
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
    }
}
