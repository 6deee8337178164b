//! User namespaces of zones: each installed zone gets its own 65536-id range from the pool
//! (distinct even when installs run concurrently), recorded in the store and given back at
//! uninstall; its root filesystem matches the range (shifted copy, or an id-mapped image
//! under overlay: the image itself stays owned by host root); `set userns=false` opts out;
//! and `zoneadm verify` warns on every weakened default while still succeeding.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use common::require_root;
use common::zonehost::ZoneHost;

/// The recorded ranges: zone name → base.
fn ranges(h: &ZoneHost) -> Vec<(String, u32)> {
    let text = std::fs::read_to_string(h.root.join("etc/zones/idranges")).unwrap_or_default();
    if text.is_empty() {
        return Vec::new();
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["ranges"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| {
            (
                r["zone"].as_str().unwrap().to_string(),
                r["base"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

fn uid_map(h: &ZoneHost, zone: &str) -> Vec<u64> {
    h.ok("zlogin", &[zone, "cat /proc/self/uid_map"])
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect()
}

#[test]
fn concurrent_installs_get_distinct_ranges_freed_at_uninstall() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("userns", "ranges", true);
    let names: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    for n in &names {
        h.ok(
            "zonecfg",
            &["-z", n, &format!("create; set zonepath=/zones/{n}")],
        );
    }
    std::thread::scope(|s| {
        for n in &names {
            let h = &h;
            s.spawn(move || {
                h.ok(
                    "zoneadm",
                    &["-z", n, "install", "-d", h.image.to_str().unwrap()],
                )
            });
        }
    });
    let got = ranges(&h);
    assert_eq!(got.len(), names.len(), "{got:?}");
    let bases: BTreeSet<u32> = got.iter().map(|r| r.1).collect();
    assert_eq!(bases.len(), names.len(), "two zones share a range: {got:?}");
    for b in &bases {
        assert_eq!((b - 1_000_000_000) % 65536, 0, "{got:?}");
    }
    // Each zone's root files were shifted to its range, and its zonepath belongs to it.
    for (zone, base) in &got {
        let root = h.root.join(format!("zones/{zone}/root"));
        assert_eq!(std::fs::metadata(&root).unwrap().uid(), *base);
        assert_eq!(
            std::fs::symlink_metadata(root.join("bin/sh"))
                .unwrap()
                .uid(),
            *base
        );
        let zp = h.root.join(format!("zones/{zone}"));
        assert_eq!(std::fs::metadata(&zp).unwrap().mode() & 0o777, 0o700);
    }
    // Two zones run with their own ranges at once.
    h.ok("zoneadm", &["-z", "u0", "boot"]);
    h.ok("zoneadm", &["-z", "u1", "boot"]);
    let (m0, m1) = (uid_map(&h, "u0"), uid_map(&h, "u1"));
    let base_of = |z: &str| got.iter().find(|r| r.0 == z).unwrap().1 as u64;
    assert_eq!(m0, vec![0, base_of("u0"), 65536]);
    assert_eq!(m1, vec![0, base_of("u1"), 65536]);
    // A file made by the zone's root is its range's on the host.
    h.ok("zlogin", &["u0", "echo hi > /root-made"]);
    let made = h.root.join("zones/u0/root/root-made");
    assert_eq!(std::fs::metadata(made).unwrap().uid() as u64, base_of("u0"));
    h.ok("zoneadm", &["-z", "u0", "halt"]);
    h.ok("zoneadm", &["-z", "u1", "halt"]);
    // Uninstall gives the range back; the next install takes the lowest free one.
    let freed = base_of("u2") as u32;
    h.ok("zoneadm", &["-z", "u2", "uninstall", "-F"]);
    assert!(!ranges(&h).iter().any(|r| r.0 == "u2"));
    h.ok(
        "zonecfg",
        &["-z", "late", "create; set zonepath=/zones/late"],
    );
    h.ok(
        "zoneadm",
        &["-z", "late", "install", "-d", h.image.to_str().unwrap()],
    );
    let late = ranges(&h).into_iter().find(|r| r.0 == "late").unwrap().1;
    let lowest_free = (0..)
        .map(|n| 1_000_000_000 + n * 65536)
        .find(|b| !ranges(&h).iter().any(|r| r.0 != "late" && r.1 == *b))
        .unwrap();
    assert_eq!(late, lowest_free);
    assert!(late <= freed);
}

#[test]
fn userns_false_opts_out_and_back_in() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("userns", "optout", true);
    h.ok(
        "zonecfg",
        &["-z", "o", "create; set zonepath=/zones/o; set userns=false"],
    );
    h.ok(
        "zoneadm",
        &["-z", "o", "install", "-d", h.image.to_str().unwrap()],
    );
    assert!(ranges(&h).is_empty(), "an opted-out zone took a range");
    let root = h.root.join("zones/o/root");
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), 0);
    h.ok("zoneadm", &["-z", "o", "boot"]);
    assert_eq!(uid_map(&h, "o"), vec![0, 0, 4294967295]);
    h.ok("zoneadm", &["-z", "o", "halt"]);
    // Back in: the next boot takes a range and shifts the files to it.
    h.ok("zonecfg", &["-z", "o", "clear userns"]);
    h.ok("zoneadm", &["-z", "o", "boot"]);
    let base = ranges(&h)[0].1;
    assert_eq!(uid_map(&h, "o"), vec![0, base as u64, 65536]);
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), base);
    h.ok("zoneadm", &["-z", "o", "halt"]);
}

#[test]
fn an_overlay_zone_sees_the_image_id_mapped_and_the_image_is_untouched() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("userns", "overlay", true);
    let tar = h.root.join("image.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&h.image)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    h.ok(
        "imgadm",
        &["import", "--rootfs", "--name", "bb", tar.to_str().unwrap()],
    );
    let id = "bb";
    h.ok("zonecfg", &["-z", "ov", "create; set zonepath=/zones/ov"]);
    h.ok("zoneadm", &["-z", "ov", "install", "-i", id]);
    h.ok("zoneadm", &["-z", "ov", "boot"]);
    let base = ranges(&h)[0].1 as u64;
    // Inside, the image's files are root's; a change lands in the zone's upper dir.
    assert_eq!(h.ok("zlogin", &["ov", "stat -c %u /bin/busybox"]), "0\n");
    h.ok("zlogin", &["ov", "echo changed > /etc/motd"]);
    let upper = h.root.join("zones/ov/upper/etc/motd");
    assert_eq!(std::fs::metadata(&upper).unwrap().uid() as u64, base);
    h.ok("zoneadm", &["-z", "ov", "halt"]);
    // An image made of the zone has the zone's view of owners, not the host range's.
    let out = h.root.join("ov.tar");
    h.ok(
        "imgadm",
        &[
            "create",
            "ov",
            "-o",
            out.to_str().unwrap(),
            "--name",
            "from-ov",
        ],
    );
    h.ok("imgadm", &["import", out.to_str().unwrap()]);
    let motd = std::fs::read_dir(h.root.join("var/lib/zones/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("rootfs/etc/motd"))
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t == "changed\n"))
        .expect("the created image has the zone's change");
    assert_eq!(std::fs::metadata(motd).unwrap().uid(), 0);
    // ... and the zone boots again in its range.
    h.ok("zoneadm", &["-z", "ov", "boot"]);
    assert_eq!(h.ok("zlogin", &["ov", "stat -c %u /etc/motd"]), "0\n");
    h.ok("zoneadm", &["-z", "ov", "halt"]);
    // The shared image stays owned by host root.
    let images = h.root.join("var/lib/zones/images");
    let img_busybox = std::fs::read_dir(&images)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("rootfs/bin/busybox"))
        .find(|p| p.exists())
        .expect("the image's rootfs");
    assert_eq!(std::fs::metadata(img_busybox).unwrap().uid(), 0);
}

#[test]
fn verify_warns_on_every_weakened_default() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("userns", "verify", false);
    let verify = |zone: &str, cfg: &str| -> String {
        h.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!("create; set zonepath=/zones/{zone}; {cfg}"),
            ],
        );
        let out = h.cmd("zoneadm", &["-z", zone, "verify"]);
        assert!(
            out.status.success(),
            "verify of {zone} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(verify("plain", ""), "", "a default zone has no warning");
    let w = verify("nouserns", "set userns=false");
    assert!(
        w.starts_with(
            "zoneadm: zone 'nouserns': warning: userns=false: the zone has no user namespace"
        ),
        "{w}"
    );
    let w = verify("all", "set limitpriv=all");
    assert!(
        w.contains("warning: limitpriv=all (every privilege a zone may have): adds ")
            && w.contains("warning: limitpriv=all: dangerous privileges: ")
            // In a user namespace of its own, CAP_SYS_ADMIN is part of the default set.
            && !w.contains("CAP_SYS_ADMIN")
            && w.contains("CAP_BPF (loading BPF programs into the kernel)"),
        "{w}"
    );
    // With a user namespace, default already holds CAP_SYS_ADMIN (namespaced): no warning.
    assert_eq!(verify("nsadmin", "set limitpriv=default,sys_admin"), "");
    let w = verify("admin", "set userns=false; set limitpriv=default,sys_admin");
    assert!(
        w.contains("limitpriv=default,sys_admin: adds CAP_SYS_ADMIN beyond the default set")
            && w.contains("dangerous privileges: CAP_SYS_ADMIN (mount"),
        "{w}"
    );
    let w = verify("dev", "add device; set match=/dev/kmsg; end");
    assert!(
        w.contains("warning: device match=/dev/kmsg: a host device beyond the default allowlist"),
        "{w}"
    );
    let w = verify(
        "etc",
        "add fs; set dir=/hostetc; set special=/etc; set type=lofs; end",
    );
    assert!(
        w.contains("warning: fs dir=/hostetc special=/etc: /etc is a sensitive host path; the zone can see and change host files there"),
        "{w}"
    );
    let store = h.root.join("etc/zones");
    let w = verify(
        "store",
        &format!(
            "add fs; set dir=/cfg; set special={}; set type=lofs; set options=ro; end",
            store.display()
        ),
    );
    assert!(
        w.contains("meets the zone store") && w.contains("the zone can see host files there"),
        "{w}"
    );
    // ip-type=shared, which boot refuses, fails verify with boot's reason.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "shared",
            "create; set zonepath=/zones/shared; set ip-type=shared",
        ],
    );
    assert_eq!(
        h.fails("zoneadm", &["-z", "shared", "verify"]),
        "zoneadm: zone 'shared': ip-type=shared is not supported (zones have exclusive IP stacks only); set ip-type=exclusive\n"
    );
    // Every warning on one line each: all of them together.
    let w = verify(
        "worst",
        "set userns=false; set limitpriv=all; add device; set match=/dev/kmsg; end",
    );
    assert_eq!(w.lines().count(), 4, "{w}");
}

/// A privilege the kernel checks only in the host's user namespace (sys_time, syslog, ...)
/// grants nothing to a zone with its own: zonecfg refuses it with the way out, and a stored
/// configuration that names one (written before the check) is refused by verify and boot,
/// which leave the zone installed. With userns=false it is what it says.
#[test]
fn limitpriv_naming_a_host_only_privilege_is_refused_with_a_user_namespace() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("userns", "hostpriv", true);
    h.ok("zonecfg", &["-z", "t", "create; set zonepath=/zones/t"]);
    let img = h.image.to_str().unwrap().to_string();
    h.ok("zoneadm", &["-z", "t", "install", "-d", &img]);
    let e = h.fails("zonecfg", &["-z", "t", "set limitpriv=default,sys_time"]);
    assert!(
        e.contains("limitpriv \"default,sys_time\": privilege \"sys_time\" has no effect in a zone with a user namespace (the kernel checks CAP_SYS_TIME only in the host's); set userns=false or remove it from limitpriv"),
        "{e}"
    );
    assert_eq!(
        h.ok("zonecfg", &["-z", "t", "info limitpriv"]).trim(),
        "limitpriv:"
    );
    // A stored configuration from before the check.
    let file = h.root.join("etc/zones/t.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["limitpriv"] = "default,syslog".into();
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    for verb in ["verify", "boot"] {
        let e = h.fails("zoneadm", &["-z", "t", verb]);
        assert!(
            e.starts_with("zoneadm: zone 't': limitpriv \"default,syslog\": privilege \"syslog\" has no effect"),
            "{verb}: {e}"
        );
    }
    assert_eq!(h.state("t"), "installed");
    // all names no privilege (verify warns); userns=false makes sys_time a real setting.
    h.ok("zonecfg", &["-z", "t", "set limitpriv=all"]);
    h.ok(
        "zonecfg",
        &[
            "-z",
            "t",
            "set userns=false; set limitpriv=default,sys_time",
        ],
    );
    h.ok("zoneadm", &["-z", "t", "verify"]);
}
