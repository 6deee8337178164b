//! `add dataset` (illumos delegated datasets) through the real binaries. On OpenZFS >= 2.2
//! (the qemu guest of `integration/vm/run.sh --openzfs`, which scripts/test.sh runs) a dataset
//! is handed to a running zone (`zfs zone`): from inside, its root creates a child and a
//! snapshot and lists only its own; it cannot destroy what is outside; after halt the dataset
//! is the host's again. Bad input (missing dataset, another zone's, the zone's own root, a pool
//! that is not imported) is refused with nothing changed, naming the zone that has a dataset.
//! A zoneadmd killed while a dataset is delegated: the zone's next boot or halt gives it back.
//! Where there is no OpenZFS (this host: zfs-fuse), `verify` and `boot` refuse the zone, naming
//! what they found (after the bad input, which is refused here too).

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
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    let ds = format!("{p}/d1data");
    pool.zfs(&["create", &ds]);
    if !openzfs() {
        // zfs-fuse: a dataset that exists, on a pool that is imported, is refused at verify
        // and at boot, naming what was found; nothing changed.
        h.ok(
            "zonecfg",
            &[
                "-z",
                "d1",
                &format!("create; set zonepath=/zones/d1; add dataset; set name={ds}; end"),
            ],
        );
        h.ok(
            "zoneadm",
            &["-z", "d1", "install", "-d", h.image.to_str().unwrap()],
        );
        for verb in ["verify", "boot"] {
            let e = h.fails("zoneadm", &["-z", "d1", verb]);
            assert_eq!(
                e.trim_end(),
                "zoneadm: zone 'd1': add dataset needs OpenZFS 2.2 or later (zfs zone); \
                 this host has zfs-fuse (no /dev/zfs, no zfs zone)",
                "{verb}"
            );
            assert_eq!(h.state("d1"), "installed");
            assert_eq!(prop(&ds, "zoned"), "off");
        }
        return;
    }
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

/// Every dataset and snapshot of `pool` with its `zoned` and `mountpoint` (and their sources):
/// what "nothing changed" compares.
fn pool_state(pool: &str) -> Vec<String> {
    let (ok, out) = host_zfs(&[
        "get",
        "-H",
        "-r",
        "-o",
        "name,property,value,source",
        "zoned,mountpoint",
        pool,
    ]);
    assert!(ok, "zfs get -r {pool}: {out}");
    out.lines().map(str::to_string).collect()
}

/// Configure `zone` with `cfg` (after `create; set zonepath=/zones/ZONE`) and install it from
/// the busybox image.
fn configure(h: &Host, zone: &str, cfg: &str) {
    h.ok(
        "zonecfg",
        &[
            "-z",
            zone,
            &format!("create; set zonepath=/zones/{zone}; {cfg}"),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", zone, "install", "-d", h.image.to_str().unwrap()],
    );
}

/// `zoneadm verify` and `boot` of `zone` both fail with exactly `zoneadm: zone 'ZONE': WANT`
/// and leave it installed.
fn refused(h: &Host, zone: &str, want: &str) {
    for verb in ["verify", "boot"] {
        let e = h.fails("zoneadm", &["-z", zone, verb]);
        assert_eq!(
            e.trim_end(),
            format!("zoneadm: zone '{zone}': {want}"),
            "{verb}"
        );
        assert_eq!(h.state(zone), "installed", "{verb}");
    }
}

/// The refusal of the zfs-fuse host (no `zfs zone`), for the tests that need OpenZFS.
const NO_OPENZFS: &str = "add dataset needs OpenZFS 2.2 or later (zfs zone); this host has \
     zfs-fuse (no /dev/zfs, no zfs zone)";

/// The zone's root dataset's ancestor, a dataset that does not exist, a pool that is not
/// imported and a dataset zoned by no zone here are refused before the version is looked at
/// (so on zfs-fuse too), with nothing changed on the pool.
#[test]
fn bad_datasets_are_refused_at_verify_and_boot_with_nothing_changed() {
    if !require_root() {
        return;
    }
    let h = Host::new("bad");
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    pool.zfs(&["create", &format!("{p}/zones")]);
    pool.zfs(&["create", &format!("{p}/foreign")]);
    pool.zfs(&["set", "zoned=on", &format!("{p}/foreign")]);
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
    cfg("r", &format!("{p}/zones"));
    cfg("m", &format!("{p}/missing"));
    cfg("n", "runztestnopool/x");
    cfg("f", &format!("{p}/foreign"));
    let before = pool_state(&p);
    refused(
        &h,
        "r",
        &format!("dataset '{p}/zones' contains the zone's root dataset '{p}/zones/r'"),
    );
    refused(&h, "m", &format!("dataset '{p}/missing' does not exist"));
    refused(
        &h,
        "n",
        "dataset 'runztestnopool/x': pool 'runztestnopool' is not imported",
    );
    refused(
        &h,
        "f",
        &format!(
            "dataset '{p}/foreign' is zoned (zoned=on) to no zone of this host; \
             zfs set zoned=off {p}/foreign gives it back"
        ),
    );
    assert_eq!(pool_state(&p), before);
    for z in ["r", "m", "n", "f"] {
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
    }
}

/// A dataset delegated to a running zone is refused to every other zone, naming the zone that
/// has it: the same dataset, an ancestor of it, a child of it; nothing changes. Once that zone
/// is halted, another boots with it.
#[test]
fn a_dataset_delegated_to_a_zone_is_refused_to_another_naming_it() {
    if !require_root() {
        return;
    }
    let h = Host::new("held");
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    let par = format!("{p}/par");
    let shared = format!("{par}/shared");
    pool.zfs(&["create", "-p", &shared]);
    configure(&h, "a", &format!("add dataset; set name={shared}; end"));
    if !openzfs() {
        refused(&h, "a", NO_OPENZFS);
        return;
    }
    h.ok("zoneadm", &["-z", "a", "boot"]);
    configure(&h, "b", &format!("add dataset; set name={shared}; end"));
    configure(&h, "c", &format!("add dataset; set name={par}; end"));
    configure(&h, "d", &format!("add dataset; set name={shared}/kid; end"));
    let before = pool_state(&p);
    refused(
        &h,
        "b",
        &format!("dataset '{shared}' is delegated to zone 'a'"),
    );
    refused(
        &h,
        "c",
        &format!("dataset '{par}' contains dataset '{shared}', delegated to zone 'a'"),
    );
    refused(
        &h,
        "d",
        &format!("dataset '{shared}/kid' is within dataset '{shared}', delegated to zone 'a'"),
    );
    assert_eq!(pool_state(&p), before);
    assert_eq!(h.state("a"), "running");
    h.ok("zoneadm", &["-z", "a", "halt"]);
    assert_eq!(prop(&shared, "zoned"), "off");
    h.ok("zoneadm", &["-z", "b", "boot"]);
    assert_eq!(prop(&shared, "zoned"), "on");
    h.ok("zoneadm", &["-z", "b", "halt"]);
    assert_eq!(prop(&shared, "zoned"), "off");
}

/// zoneadmd's pid for `zone`.
fn supervisor_pid(h: &Host, zone: &str) -> i32 {
    let f = h.root.join(format!("run/zones/{zone}/zoneadmd.pid"));
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .parse()
        .unwrap()
}

/// SIGKILL `zone`'s zoneadmd and wait (20 s at most) until the zone is listed down.
fn kill_supervisor(h: &Host, zone: &str) {
    use nix::sys::signal::{kill, Signal};
    let pid = supervisor_pid(h, zone);
    kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while h.state(zone) != "down" && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(h.state(zone), "down");
}

/// zoneadmd killed (SIGKILL) while a dataset is delegated: the dataset stays the dead zone's
/// (another zone is told so) until the zone's next boot, which gives it back (`zfs unzone`
/// through the namespace zoneadmd pinned) and boots with it, data and all; killed again, halt
/// gives it back; then nothing of the delegation is left and another zone boots with it.
#[test]
fn a_dataset_is_given_back_after_zoneadmd_is_killed() {
    if !require_root() {
        return;
    }
    let h = Host::new("crash");
    let pool = common::cowfs::ZfsPool::new(&h.root.join("pool"), 256 << 20);
    let _halt = HaltFirst(&h);
    let p = pool.name.clone();
    let ds = format!("{p}/kept");
    pool.zfs(&["create", &ds]);
    configure(&h, "a", &format!("add dataset; set name={ds}; end"));
    if !openzfs() {
        refused(&h, "a", NO_OPENZFS);
        return;
    }
    let pin = h.root.join("run/zones/a/userns");
    h.ok("zoneadm", &["-z", "a", "boot"]);
    assert!(common::zonehost::mounted(&pin), "{}", pin.display());
    h.ok("zlogin", &["a", &format!("echo before > /{ds}/f")]);
    kill_supervisor(&h, "a");
    assert_eq!(prop(&ds, "zoned"), "on");
    configure(&h, "b", &format!("add dataset; set name={ds}; end"));
    refused(&h, "b", &format!("dataset '{ds}' is delegated to zone 'a'"));
    // The next boot cleans up after the dead zoneadmd and boots with the dataset.
    h.ok("zoneadm", &["-z", "a", "boot"]);
    assert_eq!(h.state("a"), "running");
    assert_eq!(
        h.ok("zlogin", &["a", &format!("cat /{ds}/f")]).trim(),
        "before"
    );
    h.ok("zlogin", &["a", &format!("echo again >> /{ds}/f")]);
    // Killed again: halt gives it back.
    kill_supervisor(&h, "a");
    h.ok("zoneadm", &["-z", "a", "halt"]);
    assert_eq!(h.state("a"), "installed");
    assert_eq!(prop(&ds, "zoned"), "off");
    let (ok, src) = host_zfs(&["get", "-H", "-o", "source", "mountpoint", &ds]);
    assert!(ok && src.trim() != "local", "mountpoint left set: {src}");
    assert!(!pin.exists() && !common::zonehost::mounted(&pin));
    assert!(!h.root.join("run/zones/a/datasets.json").exists());
    // The host has it back, data and all.
    if prop(&ds, "mounted") == "no" {
        let (ok, out) = host_zfs(&["mount", &ds]);
        assert!(ok, "{out}");
    }
    let mp = prop(&ds, "mountpoint");
    assert_eq!(
        std::fs::read_to_string(Path::new(&mp).join("f")).unwrap(),
        "before\nagain\n"
    );
    let (ok, out) = host_zfs(&["umount", &ds]);
    assert!(ok, "{out}");
    h.ok("zoneadm", &["-z", "b", "boot"]);
    assert_eq!(prop(&ds, "zoned"), "on");
    h.ok("zoneadm", &["-z", "b", "halt"]);
    assert_eq!(prop(&ds, "zoned"), "off");
}
