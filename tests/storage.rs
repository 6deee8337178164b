//! Zone storage backends through the real binaries: btrfs on a loop device and ZFS on a
//! zfs-fuse pool (both made and removed by the test), overlay and dir; on each, zones from one
//! image boot and keep their files to themselves; quotas (enforced on btrfs and zfs, refused
//! on overlay and dir), zone snapshots and rollback, detach/attach between two hosts, and
//! failed clones that leave nothing half-made.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::cowfs::{LoopBtrfs, ZfsPool};
use common::require_root;
use common::zonehost::ZoneHost;
use serde_json::Value;

const MIB: u64 = 1 << 20;

/// Halts a host's zones when dropped: declared after the filesystem their roots are on, so
/// that on a failure the zones go before the filesystem does.
struct HaltFirst<'a>(&'a ZoneHost);

impl Drop for HaltFirst<'_> {
    fn drop(&mut self) {
        self.0.halt_all();
    }
}

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("storage", tag, true))
    }

    /// `imgadm import --rootfs` of the busybox rootfs as `name`.
    fn import(&self, name: &str) {
        self.ok(
            "imgadm",
            &[
                "import",
                "--rootfs",
                "--name",
                name,
                self.image.to_str().unwrap(),
            ],
        );
    }

    fn zonepath(&self, zone: &str) -> PathBuf {
        self.root.join("zones").join(zone)
    }

    fn configure(&self, zone: &str, extra: &str) {
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!("create; set zonepath=/zones/{zone}; set max-processes=100{extra}"),
            ],
        );
    }

    fn record(&self, zone: &str) -> Value {
        serde_json::from_slice(&fs::read(self.zonepath(zone).join("storage.json")).unwrap())
            .unwrap()
    }

    fn snapshots(&self, zone: &str) -> Vec<String> {
        let v: Value =
            serde_json::from_str(&self.ok("zoneadm", &["-z", zone, "list-snapshots", "-j"]))
                .unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Boot `a` and `b` (from the same image), write a file in `a`, see it absent in `b`.
    fn isolated_siblings(&self, a: &str, b: &str) {
        for z in [a, b] {
            self.ok("zoneadm", &["-z", z, "boot"]);
            assert_eq!(self.state(z), "running");
            assert_eq!(self.ok("zlogin", &[z, "hostname"]), format!("{z}\n"));
        }
        self.ok("zlogin", &[a, &format!("echo only-in-{a} > /root/mark")]);
        assert_eq!(
            self.ok("zlogin", &[a, "cat /root/mark"]),
            format!("only-in-{a}\n")
        );
        assert!(
            !self
                .cmd("zlogin", &[b, "test -e /root/mark"])
                .status
                .success(),
            "{b} sees {a}'s file"
        );
        for z in [a, b] {
            self.ok("zoneadm", &["-z", z, "halt"]);
        }
    }

    /// Boot `z`, check that writing `mib` MiB in it stops at its quota, clean up and halt it.
    fn quota_stops_writes(&self, z: &str, mib: u32) {
        self.ok("zoneadm", &["-z", z, "boot"]);
        // Random bytes: OpenZFS compresses zeros to nothing (a quota never reached).
        let dd = format!("dd if=/dev/urandom of=/root/big bs=1M count={mib} conv=fsync 2>&1; sync");
        let out = self.cmd("zlogin", &[z, &dd]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Disk quota exceeded"), "{text}");
        self.ok("zlogin", &[z, "rm -f /root/big; sync"]);
        self.ok("zoneadm", &["-z", z, "halt"]);
    }

    /// snapshot s1; change; snapshot s2; rollback -r s1 of the running zone (halted, booted
    /// again); list and delete.
    fn snapshots_round_trip(&self, z: &str) {
        self.ok("zoneadm", &["-z", z, "boot"]);
        self.ok("zlogin", &[z, "echo v1 > /root/state"]);
        self.ok("zoneadm", &["-z", z, "snapshot", "s1"]);
        self.ok("zlogin", &[z, "echo v2 > /root/state; rm /bin/vi"]);
        self.ok("zoneadm", &["-z", z, "snapshot", "s2"]);
        assert_eq!(self.snapshots(z), ["s1", "s2"]);
        let e = self.fails("zoneadm", &["-z", z, "snapshot", "s1"]);
        assert!(e.contains("already has a snapshot"), "{e}");
        let e = self.fails("zoneadm", &["-z", z, "snapshot", "_x"]);
        assert!(e.contains("snapshot name"), "{e}");
        let e = self.fails("zoneadm", &["-z", z, "rollback", "s1"]);
        assert!(e.contains("newer snapshots exist (s2)"), "{e}");
        assert_eq!(
            self.state(z),
            "running",
            "a refused rollback halted the zone"
        );
        let e = self.fails("zoneadm", &["-z", z, "rollback", "nope"]);
        assert!(e.contains("nope: no such snapshot"), "{e}");
        self.ok("zoneadm", &["-z", z, "rollback", "-r", "s1"]);
        assert_eq!(self.state(z), "running");
        assert_eq!(self.ok("zlogin", &[z, "cat /root/state"]), "v1\n");
        assert!(self.cmd("zlogin", &[z, "test -e /bin/vi"]).status.success());
        assert_eq!(self.snapshots(z), ["s1"]);
        let p = self.ok("zoneadm", &["-z", z, "list-snapshots", "-p"]);
        let fields: Vec<&str> = p.trim().split(':').collect();
        assert_eq!(fields[0], "s1", "{p}");
        assert!(fields[1].parse::<i64>().unwrap() > 1_700_000_000, "{p}");
        let table = self.ok("zoneadm", &["-z", z, "list-snapshots"]);
        assert!(table.starts_with("NAME") && table.contains("s1"), "{table}");
        self.ok("zoneadm", &["-z", z, "halt"]);
        self.ok("zoneadm", &["-z", z, "delete-snapshot", "s1"]);
        assert!(self.snapshots(z).is_empty());
    }
}

#[test]
fn overlay_and_dir_refuse_a_quota_and_keep_snapshots_as_copies() {
    if !require_root() {
        return;
    }
    let h = Host::new("overlay");
    h.import("bb");
    // The zonepath is on ext4: detected as overlay. A quota is refused at verify and install.
    h.configure("q", "; set quota=64m");
    let e = h.fails("zoneadm", &["-z", "q", "verify"]);
    assert!(
        e.contains("quota 64M") && e.contains("storage overlay cannot enforce"),
        "{e}"
    );
    let e = h.fails("zoneadm", &["-z", "q", "install", "-i", "bb"]);
    assert!(e.contains("cannot enforce a disk quota"), "{e}");
    assert_eq!(h.state("q"), "configured");
    assert!(!h.zonepath("q").exists());
    h.configure("qd", "; set quota=64m; set storage=dir");
    let e = h.fails("zoneadm", &["-z", "qd", "install", "-i", "bb"]);
    assert!(e.contains("storage dir cannot enforce"), "{e}");

    // zones.conf's storage is the host default for zones without one.
    fs::write(h.root.join("etc/zones/zones.conf"), "storage = dir\n").unwrap();
    h.configure("d", "");
    h.ok("zoneadm", &["-z", "d", "install", "-i", "bb"]);
    assert_eq!(h.record("d")["kind"]["type"], "dir");
    fs::remove_file(h.root.join("etc/zones/zones.conf")).unwrap();
    h.configure("o", "");
    h.ok("zoneadm", &["-z", "o", "install", "-i", "bb"]);
    assert_eq!(h.record("o")["kind"]["type"], "overlay");
    h.isolated_siblings("o", "d");
    h.snapshots_round_trip("o");
    h.snapshots_round_trip("d");
    // Snapshots go with the zone.
    h.ok("zoneadm", &["-z", "o", "snapshot", "keep"]);
    h.ok("zoneadm", &["-z", "o", "uninstall", "-F"]);
    assert!(!h.zonepath("o").exists());
}

/// Issue 20 item 6: a zone installed from a directory (`install -d`, the README's path) has
/// no storage record; its snapshots are copies under the zonepath, as the dir backend's are.
#[test]
fn install_d_zones_keep_snapshots_as_copies() {
    if !require_root() {
        return;
    }
    let h = Host::new("installd");
    h.configure("p", "");
    h.ok(
        "zoneadm",
        &["-z", "p", "install", "-d", h.image.to_str().unwrap()],
    );
    assert!(!h.zonepath("p").join("storage.json").exists());
    assert!(h.snapshots("p").is_empty());
    h.snapshots_round_trip("p");
    h.ok("zoneadm", &["-z", "p", "snapshot", "keep"]);
    assert!(h.zonepath("p").join("snapshots/keep/bin/busybox").is_file());
    // Snapshots go with the zone.
    h.ok("zoneadm", &["-z", "p", "uninstall", "-F"]);
    assert!(!h.zonepath("p").exists());
}

#[test]
fn btrfs_zones_are_snapshots_with_a_quota() {
    if !require_root() {
        return;
    }
    let h = Host::new("btrfs");
    let fs_ = LoopBtrfs::new(&h.root.join("zones"), 512 * MIB);
    let _halt = HaltFirst(&h);
    h.import("bb");
    // storage unset: the zonepath is on btrfs, so btrfs.
    h.configure("a", "; set quota=40m");
    h.ok("zoneadm", &["-z", "a", "verify"]);
    h.ok("zoneadm", &["-z", "a", "install", "-i", "bb"]);
    let rec = h.record("a");
    assert_eq!(rec["kind"]["type"], "btrfs", "{rec}");
    assert_eq!(rec["quota"], 40 * MIB);
    let root = h.zonepath("a").join("root");
    assert_eq!(
        fs::metadata(&root).unwrap().ino(),
        256,
        "root is not a subvolume"
    );
    let id = h.ok("imgadm", &["list", "-j"]);
    let id: Value = serde_json::from_str(&id).unwrap();
    let image_sub = fs_
        .mnt
        .join(".zone-images")
        .join(id[0]["id"].as_str().unwrap());
    assert_eq!(fs::metadata(&image_sub).unwrap().ino(), 256);
    // The image subvolume is read-only.
    assert!(fs::write(image_sub.join("x"), "x").is_err());
    // b: a clone of a; c: from the image again.
    h.configure("b", "; set storage=btrfs");
    h.ok("zoneadm", &["-z", "b", "clone", "a"]);
    h.configure("c", "");
    h.ok("zoneadm", &["-z", "c", "install", "-i", "bb"]);
    assert_eq!(
        fs::metadata(h.zonepath("b").join("root")).unwrap().ino(),
        256
    );
    h.isolated_siblings("a", "c");
    h.isolated_siblings("c", "b");

    // A clone that cannot be made (the new zonepath is not on btrfs): refused, the zone
    // stays configured, nothing made on either filesystem.
    let zones_before = fs::read_dir(&fs_.mnt).unwrap().count();
    h.ok(
        "zonecfg",
        &[
            "-z",
            "x",
            "create; set zonepath=/elsewhere/x; set max-processes=100",
        ],
    );
    let e = h.fails("zoneadm", &["-z", "x", "clone", "a"]);
    assert!(e.contains("is not on a btrfs filesystem"), "{e}");
    assert_eq!(h.state("x"), "configured");
    assert!(!h.root.join("elsewhere/x").exists());
    assert_eq!(fs::read_dir(&fs_.mnt).unwrap().count(), zones_before);

    // The quota: a's exclusive data stops near 40 MiB (the qgroup limit); c has none.
    h.quota_stops_writes("a", 80);

    h.snapshots_round_trip("c");
    h.ok("zoneadm", &["-z", "c", "snapshot", "kept"]);
    assert_eq!(
        fs::metadata(h.zonepath("c").join("snapshots/kept"))
            .unwrap()
            .ino(),
        256
    );
    for z in ["a", "b", "c"] {
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
        assert!(!h.zonepath(z).exists(), "{z} left files");
    }
    // imgadm delete takes the image's subvolume with it.
    h.ok("imgadm", &["delete", "bb"]);
    assert!(!image_sub.exists());
}

#[test]
fn zfs_zones_are_clones_with_quota_snapshots_and_move_between_hosts() {
    if !require_root() {
        return;
    }
    let a = Host::new("zfs-a");
    let b = Host::new("zfs-b");
    let pool = ZfsPool::new(&a.root.join("pool"), 512 * MIB);
    let p = pool.name.clone();
    pool.zfs(&["create", &format!("{p}/ha")]);
    // On OpenZFS host b's pool is another pool (standing in for another host's): attach
    // receives there. zfs-fuse cannot receive a clone's stream into another pool: same pool.
    let openzfs = Path::new("/dev/zfs").exists();
    let pool_b = openzfs.then(|| SecondPool::new(&pool, &b.root.join("pool-b")));
    let q = pool_b.as_ref().map_or(p.clone(), |s| s.name.clone());
    let _halt = (HaltFirst(&a), HaltFirst(&b));
    pool.zfs(&["create", &format!("{q}/hb")]);
    // Host a's zones dir is a dataset: zones there are detected as zfs.
    let zones_mp = format!("mountpoint={}", a.root.join("zones").display());
    pool.zfs(&["create", "-o", &zones_mp, &format!("{p}/ha/auto")]);
    a.import("bb");

    // A missing parent dataset: a clear error, nothing made.
    a.configure("bad", &format!("; set storage=zfs:{p}/nope"));
    let e = a.fails("zoneadm", &["-z", "bad", "install", "-i", "bb"]);
    assert!(
        e.contains(&format!("dataset {p}/nope does not exist")),
        "{e}"
    );
    assert_eq!(a.state("bad"), "configured");

    // An install that fails half-way (the image does not fit under the parent's quota):
    // the half-made image dataset goes, the zone stays configured.
    pool.zfs(&["create", "-o", "quota=1m", &format!("{p}/tiny")]);
    a.configure("full", &format!("; set storage=zfs:{p}/tiny"));
    let before = pool.datasets();
    let e = a.fails("zoneadm", &["-z", "full", "install", "-i", "bb"]);
    assert!(e.contains("quota") || e.contains("space"), "{e}");
    assert_eq!(a.state("full"), "configured");
    let after: Vec<String> = pool
        .datasets()
        .into_iter()
        .filter(|d| !d.ends_with("/tiny/images"))
        .collect();
    assert_eq!(after, before);
    assert!(!a.zonepath("full").exists());

    a.configure("z1", &format!("; set storage=zfs:{p}/ha; set quota=32m"));
    a.ok("zoneadm", &["-z", "z1", "install", "-i", "bb"]);
    let rec = a.record("z1");
    assert_eq!(rec["dataset"], format!("{p}/ha/z1"), "{rec}");
    let id = rec["image"].as_str().unwrap().to_string();
    let ds = pool.datasets();
    assert!(ds.contains(&format!("{p}/ha/images/{id}@final")), "{ds:?}");
    assert_eq!(
        pool.zfs(&[
            "get",
            "-H",
            "-p",
            "-o",
            "value",
            "quota",
            &format!("{p}/ha/z1")
        ])
        .trim(),
        (32 * MIB).to_string()
    );
    assert_eq!(
        pool.zfs(&["get", "-H", "-o", "value", "origin", &format!("{p}/ha/z1")])
            .trim(),
        format!("{p}/ha/images/{id}@final")
    );
    // z2: detected (zonepath on the dataset ha/auto), a clone of the same image.
    a.configure("z2", "");
    a.ok("zoneadm", &["-z", "z2", "install", "-i", "bb"]);
    assert_eq!(a.record("z2")["dataset"], format!("{p}/ha/auto/z2"));
    a.isolated_siblings("z1", "z2");

    // The quota is enforced.
    a.quota_stops_writes("z1", 64);

    a.snapshots_round_trip("z2");
    // move: the clone's mountpoint follows the zonepath.
    a.ok("zoneadm", &["-z", "z2", "move", "/zones/z2moved"]);
    assert_eq!(
        pool.zfs(&[
            "get",
            "-H",
            "-o",
            "value",
            "mountpoint",
            &format!("{p}/ha/auto/z2")
        ])
        .trim(),
        a.root.join("zones/z2moved/root").to_str().unwrap()
    );
    a.ok("zoneadm", &["-z", "z2", "boot"]);
    assert_eq!(a.ok("zlogin", &["z2", "cat /root/state"]), "v1\n");
    a.ok("zoneadm", &["-z", "z2", "halt"]);

    // A failed clone: the target dataset exists already. Refused, the zone stays
    // configured, the other dataset untouched, nothing new made.
    pool.zfs(&["create", &format!("{p}/ha/z3")]);
    let before = pool.datasets();
    a.configure("z3", &format!("; set storage=zfs:{p}/ha"));
    let e = a.fails("zoneadm", &["-z", "z3", "clone", "z1"]);
    assert!(e.contains(&format!("{p}/ha/z3 already exists")), "{e}");
    assert_eq!(a.state("z3"), "configured");
    assert_eq!(pool.datasets(), before);
    assert!(!a.zonepath("z3").exists());
    pool.zfs(&["destroy", &format!("{p}/ha/z3")]);
    // A good clone of z1, which then survives z1's uninstall.
    a.ok("zoneadm", &["-z", "z3", "clone", "z1"]);

    // Move z1 to host b: detach (a zfs send stream), copy the zonepath, create -a, attach
    // into b's dataset.
    a.ok("zoneadm", &["-z", "z1", "boot"]);
    a.ok("zlogin", &["z1", "echo moved > /root/moved"]);
    a.ok("zoneadm", &["-z", "z1", "halt"]);
    a.ok("zoneadm", &["-z", "z1", "snapshot", "before-move"]);
    a.ok("zoneadm", &["-z", "z1", "detach"]);
    assert_eq!(a.state("z1"), "configured");
    let src = a.zonepath("z1");
    // Self-contained streams (no clone relation): a full one and the snapshots since.
    assert!(src.join("SUNWdetached.zfs").is_file());
    assert_eq!(src.join("SUNWdetached.incr.zfs").is_file(), openzfs);
    assert!(!common::zonehost::mounted(&src.join("root")));
    fs::create_dir_all(b.root.join("zones")).unwrap();
    copy_files(&src, &b.zonepath("z1"));
    b.ok("zonecfg", &["-z", "z1", "create -a /zones/z1"]);
    b.ok("zonecfg", &["-z", "z1", &format!("set storage=zfs:{q}/hb")]);
    b.ok("zoneadm", &["-z", "z1", "attach"]);
    assert_eq!(b.state("z1"), "installed");
    assert_eq!(b.record("z1")["dataset"], format!("{q}/hb/z1"));
    assert!(!b.zonepath("z1").join("SUNWdetached.zfs").exists());
    assert!(!b.zonepath("z1").join("SUNWdetached.incr.zfs").exists());
    assert_eq!(
        pool.zfs(&[
            "get",
            "-H",
            "-p",
            "-o",
            "value",
            "quota",
            &format!("{q}/hb/z1")
        ])
        .trim(),
        (32 * MIB).to_string()
    );
    assert_eq!(b.snapshots("z1"), ["before-move"]);
    b.ok("zoneadm", &["-z", "z1", "boot"]);
    assert_eq!(b.ok("zlogin", &["z1", "cat /root/moved"]), "moved\n");
    b.ok("zoneadm", &["-z", "z1", "halt"]);
    b.ok("zoneadm", &["-z", "z1", "uninstall", "-F"]);
    let on_b = match &pool_b {
        Some(s) => s.datasets(),
        None => pool.datasets(),
    };
    assert!(!on_b.iter().any(|d| d.starts_with(&format!("{q}/hb/z1"))));

    // Back on a: attach again takes the dataset that stayed there.
    a.ok("zoneadm", &["-z", "z1", "attach"]);
    a.ok("zoneadm", &["-z", "z1", "uninstall", "-F"]);
    a.ok("zoneadm", &["-z", "z3", "boot"]);
    assert_eq!(a.ok("zlogin", &["z3", "hostname"]), "z3\n");
    a.ok("zoneadm", &["-z", "z3", "halt"]);
    for z in ["z2", "z3"] {
        a.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
    }
    let left: Vec<String> = pool
        .datasets()
        .into_iter()
        .filter(|d| d.contains("/z"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // imgadm delete takes the image datasets (under ha and ha/auto) with it.
    a.ok("imgadm", &["delete", "bb"]);
    let left: Vec<String> = pool
        .datasets()
        .into_iter()
        .filter(|d| d.contains(&id))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn overlay_zone_moves_between_hosts() {
    if !require_root() {
        return;
    }
    let a = Host::new("move-a");
    let b = Host::new("move-b");
    // The same archive on both hosts: the same image id.
    let tar = a.root.join("bb.tar");
    fs::write(&tar, zones::image::build::tar_rootfs(&a.image).unwrap()).unwrap();
    let import = |h: &Host| {
        h.ok(
            "imgadm",
            &["import", "--rootfs", "--name", "bb", tar.to_str().unwrap()],
        )
    };
    import(&a);
    a.configure("m", "");
    a.ok("zoneadm", &["-z", "m", "install", "-i", "bb"]);
    a.ok("zoneadm", &["-z", "m", "boot"]);
    a.ok("zlogin", &["m", "echo here > /root/f"]);
    a.ok("zoneadm", &["-z", "m", "halt"]);
    a.ok("zoneadm", &["-z", "m", "detach"]);
    fs::create_dir_all(b.root.join("zones")).unwrap();
    copy_files(&a.zonepath("m"), &b.zonepath("m"));
    b.ok("zonecfg", &["-z", "m", "create -a /zones/m"]);
    // b lacks the image: attach says so and changes nothing.
    let e = b.fails("zoneadm", &["-z", "m", "attach"]);
    assert!(e.contains("is not imported on this host"), "{e}");
    assert_eq!(b.state("m"), "configured");
    import(&b);
    b.ok("zoneadm", &["-z", "m", "attach"]);
    b.ok("zoneadm", &["-z", "m", "boot"]);
    assert_eq!(b.ok("zlogin", &["m", "cat /root/f; hostname"]), "here\nm\n");
    b.ok("zoneadm", &["-z", "m", "halt"]);
}

/// Copy a detached zonepath (plain files, as a host-to-host transfer would).
/// A second pool on the daemon (or kernel module) of `first`, destroyed on drop (before
/// `first`, which is declared earlier).
struct SecondPool {
    name: String,
    file: PathBuf,
}

impl SecondPool {
    fn new(first: &ZfsPool, mnt: &Path) -> SecondPool {
        let name = format!("{}b", first.name);
        let file = first.file.with_file_name(format!("{name}.img"));
        fs::File::create(&file).unwrap().set_len(512 * MIB).unwrap();
        fs::create_dir_all(mnt).unwrap();
        let out = std::process::Command::new("zpool")
            .args(["create", "-f", "-m", mnt.to_str().unwrap(), &name])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zpool create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SecondPool { name, file }
    }

    fn datasets(&self) -> Vec<String> {
        let out = std::process::Command::new("zfs")
            .args(["list", "-H", "-o", "name", "-t", "all", "-r", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for SecondPool {
    fn drop(&mut self) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ok = std::process::Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .status()
                .is_ok_and(|s| s.success());
            if ok || std::time::Instant::now() > until {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = fs::remove_file(&self.file);
    }
}

fn copy_files(src: &Path, dst: &Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
