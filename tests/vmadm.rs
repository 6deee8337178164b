//! `vmadm` through the real binaries: a SmartOS payload (uuid, alias, brand joyent, image_uuid
//! of an image imported with imgadm, ram, nics[].ip/netmask/gateway on an etherstub, tags,
//! customer_metadata with a user-script) created, listed, read, updated, stopped, started and
//! deleted; mdata-get on the zone's PATH; the user-script runs at the first boot only; a
//! payload with keys it cannot honour names their JSON paths.
//!
//! Each test has its own alternate root (-R) under /var/tmp/runz-tests and its zone cgroups
//! beneath the test process's own (tests/common/zonehost.rs); its links are deleted on drop.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, static_mdata_get, Links, ZoneHost};
use serde_json::{json, Value};
use zones::image::build;

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("vmadm", tag, true))
    }

    /// `vmadm -R ROOT ARGS` with the static mdata-get for the zones it boots.
    fn vmadm(&self, args: &[&str]) -> Output {
        Command::new(bin("vmadm"))
            .arg("-R")
            .arg(&self.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .env("ZONES_MDATA_GET", mdata_get())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `vmadm ARGS`, which must succeed; its stdout.
    fn vm_ok(&self, args: &[&str]) -> (String, String) {
        let out = self.vmadm(args);
        let (so, se) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "vmadm {args:?}: {se}\n{so}");
        (so, se)
    }

    fn get(&self, uuid: &str) -> Value {
        serde_json::from_str(&self.vm_ok(&["get", uuid]).0).unwrap()
    }

    fn file(&self, name: &str, doc: &Value) -> String {
        let path = self.root.join(name);
        std::fs::write(&path, doc.to_string()).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// The busybox image imported with imgadm; its id.
    fn import_image(&self) -> String {
        let tgz = self.root.join("rootfs.tar.gz");
        std::fs::write(&tgz, build::gzip(&build::tar_rootfs(&self.image).unwrap())).unwrap();
        self.ok(
            "imgadm",
            &[
                "import",
                "--rootfs",
                "--name",
                "vmbase",
                tgz.to_str().unwrap(),
            ],
        );
        let list: Value = serde_json::from_str(&self.ok("imgadm", &["list", "-j"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "vmbase")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `cat FILE` in the zone (empty when it is missing).
    fn zone_file(&self, zone: &str, file: &str) -> String {
        let out = self.cmd("zlogin", &[zone, &format!("cat {file} 2>/dev/null; true")]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (10 s at most) until `file` in the zone is not empty; its text.
    fn wait_zone_file(&self, zone: &str, file: &str) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.zone_file(zone, file);
            if !text.is_empty() || Instant::now() > until {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The static mdata-get, built now; where no toolchain runs (the test guest of
/// integration/vm has no rustc) the one the host built beside the other binaries.
fn mdata_get() -> std::path::PathBuf {
    let toolchain = Command::new("rustc")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if toolchain {
        static_mdata_get()
    } else {
        bin("mdata-get")
    }
}

fn test_uuid(h: &Host) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", std::process::id(), h.seq)
}

#[test]
fn a_smartos_payload_lives_its_whole_life_through_vmadm() {
    if !require_root() {
        return;
    }
    let mut links = Links(Vec::new());
    let h = Host::new("life");
    let stub = h.link_name("rzv", "s");
    links.0.push(stub.clone());
    h.ok("dladm", &["create-etherstub", &stub]);
    let image = h.import_image();
    let uuid = test_uuid(&h);
    let payload = json!({
        "uuid": uuid, "alias": "vmweb", "brand": "joyent", "image_uuid": image,
        "ram": 256, "cpu_shares": 50, "max_lwps": 400, "zfs_io_priority": 100,
        "hostname": "vmweb", "resolvers": ["10.219.0.1"], "autoboot": false,
        "nics": [{"nic_tag": stub, "ip": "10.219.0.5", "netmask": "255.255.255.0",
                  "gateway": "10.219.0.1", "primary": true, "vlan_id": 0}],
        "tags": {"role": "web", "tier": 1},
        "customer_metadata": {
            "role": "web",
            "user-script": "#!/bin/sh\nmkdir -p /var/tmp\necho ran >> /var/tmp/first-boot\n"
        }
    });
    let f = h.file("vm.json", &payload);

    // validate, create.
    let (so, _) = h.vm_ok(&["validate", "create", "-f", &f]);
    assert_eq!(so, "VALID 'create' payload for joyent brand VMs.\n");
    let (_, se) = h.vm_ok(&["create", "-f", &f]);
    assert!(
        se.contains(&format!("Successfully created VM {uuid}")),
        "{se}"
    );

    // list, get, lookup.
    let (so, _) = h.vm_ok(&["list", "-p", "-o", "uuid,alias,state,ram"]);
    assert_eq!(so, format!("{uuid}:vmweb:running:256\n"));
    let (so, _) = h.vm_ok(&["list"]);
    let mut lines = so.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["UUID", "TYPE", "RAM", "STATE", "ALIAS"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, [uuid.as_str(), "OS", "256", "running", "vmweb"]);
    let doc = h.get(&uuid);
    assert_eq!(doc["uuid"], uuid.as_str());
    assert_eq!(doc["zonename"], uuid.as_str());
    assert_eq!(doc["alias"], "vmweb");
    assert_eq!(doc["brand"], "joyent");
    assert_eq!(doc["type"], "OS");
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["image_uuid"], image.as_str());
    assert_eq!(doc["ram"], 256);
    assert_eq!(doc["max_physical_memory"], 256);
    assert_eq!(doc["cpu_shares"], 50);
    assert_eq!(doc["max_lwps"], 400);
    assert_eq!(doc["zonepath"], format!("/zones/{uuid}"));
    assert_eq!(doc["nics"][0]["ip"], "10.219.0.5");
    assert_eq!(doc["nics"][0]["netmask"], "255.255.255.0");
    assert_eq!(doc["nics"][0]["gateway"], "10.219.0.1");
    assert_eq!(doc["nics"][0]["nic_tag"], stub.as_str());
    assert_eq!(doc["nics"][0]["primary"], true);
    assert_eq!(doc["tags"], json!({"role": "web", "tier": 1}));
    assert_eq!(doc["customer_metadata"]["role"], "web");
    assert!(doc["pid"].as_i64().unwrap() > 0, "{doc}");
    let (so, _) = h.vm_ok(&["lookup", "alias=vmweb", "nics.*.ip=10.219.0.5"]);
    assert_eq!(so, format!("{uuid}\n"));
    let (so, _) = h.vm_ok(&["lookup", "-1", "tags.role=web"]);
    assert_eq!(so, format!("{uuid}\n"));
    assert_eq!(h.vm_ok(&["lookup", "alias=nosuch"]).0, "");
    assert_eq!(
        h.vmadm(&["lookup", "-1", "alias=nosuch"]).status.code(),
        Some(1)
    );

    // mdata-get and mdata-list are on the zone's PATH; the user-script ran at first boot.
    let md = h.ok("zlogin", &[&uuid, "mdata-get role; mdata-list"]);
    assert_eq!(md, "web\nrole\nuser-script\n");
    assert_eq!(
        h.wait_zone_file(&uuid, "/var/tmp/first-boot"),
        "ran\n",
        "the user-script did not run at first boot"
    );

    // update: ram is live; tags and alias are stored.
    let (_, se) = h.vm_ok(&[
        "update",
        &uuid,
        "ram=512",
        "set_tags.tier=2",
        "alias=vmweb2",
    ]);
    assert!(
        se.contains(&format!("Successfully updated VM {uuid}")),
        "{se}"
    );
    let doc = h.get(&uuid);
    assert_eq!(doc["ram"], 512);
    assert_eq!(doc["alias"], "vmweb2");
    assert_eq!(doc["tags"], json!({"role": "web", "tier": 2}));
    let bad = h.vmadm(&["update", &uuid, "brand=lx", "ram=-1"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("$.brand: cannot be updated"), "{err}");
    assert!(err.contains("$.ram: "), "{err}");
    assert_eq!(h.get(&uuid)["ram"], 512, "a refused update changed nothing");

    // reboot, stop, start: the user-script does not run again.
    let pid = h.get(&uuid)["pid"].clone();
    let (_, se) = h.vm_ok(&["reboot", &uuid]);
    assert!(se.contains("Successfully completed reboot"), "{se}");
    let doc = h.get(&uuid);
    assert_eq!(doc["state"], "running", "{doc}");
    assert_ne!(doc["pid"], pid, "a new init after reboot");
    let (_, se) = h.vm_ok(&["stop", &uuid]);
    assert!(se.contains("Successfully completed stop"), "{se}");
    assert_eq!(h.get(&uuid)["autoboot"], false, "stop turns autoboot off");
    h.vm_ok(&["start", &uuid]);
    let (_, se) = h.vm_ok(&["stop", &uuid, "-F"]);
    assert!(se.contains("Successfully completed stop"), "{se}");
    assert_eq!(
        h.vm_ok(&["list", "-p", "-o", "uuid,state"]).0,
        format!("{uuid}:stopped\n")
    );
    let (_, se) = h.vm_ok(&["start", &uuid]);
    assert!(
        se.contains(&format!("Successfully started VM {uuid}")),
        "{se}"
    );
    let doc = h.get(&uuid);
    assert_eq!(doc["state"], "running");
    assert_eq!(doc["autoboot"], true, "start turns autoboot on, as SmartOS");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        h.zone_file(&uuid, "/var/tmp/first-boot"),
        "ran\n",
        "the user-script ran again"
    );
    let info: Value = serde_json::from_str(&h.vm_ok(&["info", &uuid, "status"]).0).unwrap();
    assert_eq!(info["status"]["state"], "running", "{info}");
    assert_eq!(info["status"]["pid"], h.get(&uuid)["pid"], "{info}");

    // send (over detach/attach: the VM stays, stopped), delete, receive: the same VM, with
    // its files; the user-script still does not run again.
    assert_eq!(h.vmadm(&["send", &uuid]).status.code(), Some(1), "running");
    h.vm_ok(&["stop", &uuid, "-F"]);
    let stream = h.root.join("vm.send");
    let out = Command::new(bin("vmadm"))
        .arg("-R")
        .arg(&h.root)
        .args(["send", &uuid])
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stream).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "send: {out:?}");
    assert_eq!(h.get(&uuid)["state"], "stopped");
    h.vm_ok(&["delete", &uuid]);
    let out = Command::new(bin("vmadm"))
        .arg("-R")
        .arg(&h.root)
        .arg("receive")
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .stdin(std::fs::File::open(&stream).unwrap())
        .output()
        .unwrap();
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "receive: {se}");
    assert!(
        se.contains(&format!("Successfully received VM {uuid}")),
        "{se}"
    );
    let doc = h.get(&uuid);
    assert_eq!(doc["state"], "stopped", "{doc}");
    assert_eq!(doc["alias"], "vmweb2");
    assert_eq!(doc["ram"], 512);
    assert_eq!(doc["customer_metadata"]["role"], "web");
    // A second receive of the same stream is refused and changes nothing.
    let out = Command::new(bin("vmadm"))
        .arg("-R")
        .arg(&h.root)
        .arg("receive")
        .stdin(std::fs::File::open(&stream).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    h.vm_ok(&["start", &uuid]);
    assert_eq!(h.ok("zlogin", &[&uuid, "mdata-get role"]), "web\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.zone_file(&uuid, "/var/tmp/first-boot"), "ran\n");

    // delete: nothing is left.
    let (_, se) = h.vm_ok(&["delete", &uuid]);
    assert!(
        se.contains(&format!("Successfully deleted VM {uuid}")),
        "{se}"
    );
    assert_eq!(h.vm_ok(&["list", "-H"]).0, "");
    assert_eq!(h.vmadm(&["get", &uuid]).status.code(), Some(1));
    assert!(!h.root.join(format!("etc/zones/{uuid}.json")).exists());
    let md_left: Vec<_> = std::fs::read_dir(h.root.join("etc/zones/metadata"))
        .into_iter()
        .flatten()
        .collect();
    assert!(md_left.is_empty(), "metadata left: {md_left:?}");
    let left = h.zone_cgroups_left();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

#[test]
fn keys_that_cannot_be_honoured_are_refused_with_their_paths() {
    if !require_root() {
        return;
    }
    let h = Host::new("refuse");
    let payload = json!({
        "alias": "x", "brand": "hvm", "image_uuid": "nosuch", "ram": 128, "vcpus": 2,
        "bogus": 1, "zfs_io_priority": 5000,
        "filesystems": [{"source": "/srv", "target": "/srv", "type": "lofs", "raw": "/dev/sdz"}],
        "nics": [{"nic_tag": "stub", "ip": "10.219.1.5", "netmask": "255.0.255.0", "speed": 1}]
    });
    let f = h.file("bad.json", &payload);
    for verb in [&["validate", "create", "-f", &f][..], &["create", "-f", &f]] {
        let out = h.vmadm(verb);
        assert_eq!(out.status.code(), Some(1), "{verb:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for path in [
            "$.bogus: unknown property",
            "$.vcpus: only for brand kvm or bhyve",
            "$.brand: ",
            "$.zfs_io_priority: 5000: expected an integer from 1 to 1000",
            "$.nics[0].netmask: ",
            "$.nics[0].speed: unknown property",
            "$.filesystems[0].raw: not supported",
        ] {
            assert!(err.contains(path), "{verb:?}: {path} not in {err}");
        }
    }
    // Nothing was made.
    assert_eq!(h.vm_ok(&["list", "-H"]).0, "");
    // A good payload whose ram is given twice, differently.
    let f = h.file(
        "twice.json",
        &json!({"image_uuid": "i", "ram": 128, "max_physical_memory": 256}),
    );
    let err =
        String::from_utf8_lossy(&h.vmadm(&["validate", "create", "-f", &f]).stderr).into_owned();
    assert!(err.contains("$.ram: "), "{err}");
    // The payload on stdin without -f.
    let out = h.cmd_in(
        "vmadm",
        &["validate", "create"],
        Some(&json!({"image_uuid": "i", "disks": []}).to_string()),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("$.disks: only for brand kvm or bhyve"));
    // update payloads are checked on their own too.
    let f = h.file(
        "upd.json",
        &json!({"ram": 512, "nics": [], "colour": "red"}),
    );
    let out = h.vmadm(&["validate", "update", "-f", &f]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("$.nics: "), "{err}");
    assert!(err.contains("$.colour: unknown property"), "{err}");
    let f = h.file("upd2.json", &json!({"ram": 512, "set_tags": {"a": "b"}}));
    assert_eq!(
        h.vm_ok(&["validate", "update", "-f", &f]).0,
        "VALID 'update' payload for joyent brand VMs.\n"
    );
    // receive refuses what is not a send stream, and a device node, leaving nothing.
    let recv = |data: &[u8]| {
        let f = h.root.join("stream");
        std::fs::write(&f, data).unwrap();
        Command::new(bin("vmadm"))
            .arg("-R")
            .arg(&h.root)
            .arg("receive")
            .stdin(std::fs::File::open(&f).unwrap())
            .output()
            .unwrap()
    };
    let out = recv(b"not a stream");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let mut zone = zones::model::Zone::new("4a4a4a4a-0000-4000-8000-000000000001");
    zone.zonepath = Some("/zones/recv".into());
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [
        (".vmadm-send/zone.json", serde_json::to_vec(&zone).unwrap()),
        (".vmadm-send/metadata.json", b"{}".to_vec()),
    ] {
        let mut hd = tar::Header::new_gnu();
        hd.set_size(data.len() as u64);
        hd.set_mode(0o600);
        hd.set_cksum();
        b.append_data(&mut hd, path, data.as_slice()).unwrap();
    }
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(tar::EntryType::Block);
    hd.set_device_major(8).unwrap();
    hd.set_device_minor(0).unwrap();
    hd.set_size(0);
    hd.set_mode(0o666);
    hd.set_cksum();
    b.append_data(&mut hd, "root/dev/sda", std::io::empty())
        .unwrap();
    let out = recv(&b.into_inner().unwrap());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a device node (refused)"),
        "{out:?}"
    );
    assert_eq!(h.vm_ok(&["list", "-H"]).0, "");
    assert!(!h.root.join("zones/recv").exists());

    // Usage errors exit 2.
    assert_eq!(h.vmadm(&["validate", "delete"]).status.code(), Some(2));
}

/// zfs_io_priority other than the default 100 is the zone's rctl zone.zfs-io-priority (its
/// block I/O weight). Where this kernel can weight I/O (as `zoneadm verify` of the same rctl in
/// a zonecfg zone says) the VM gets it; where it cannot, create, validate and update refuse it
/// at $.zfs_io_priority with the kernel's reason, and nothing is made or changed.
#[test]
fn zfs_io_priority_is_the_io_weight_or_refused_with_the_kernels_reason() {
    if !require_root() {
        return;
    }
    let h = Host::new("iop");
    h.ok(
        "zonecfg",
        &[
            "-z",
            "ref",
            "create; set zonepath=/zones/ref; add rctl; set name=zone.zfs-io-priority; \
             add value (priv=privileged,limit=30,action=none); end",
        ],
    );
    let verify = h.cmd("zoneadm", &["-z", "ref", "verify"]);
    h.ok("zonecfg", &["-z", "ref", "delete", "-F"]);
    eprintln!(
        "zfs_io_priority: this kernel {} I/O",
        if verify.status.success() {
            "weights"
        } else {
            "cannot weight"
        }
    );
    let image = h.import_image();
    let uuid = test_uuid(&h);
    let payload = |p: u64| json!({"uuid": uuid, "alias": "iop", "image_uuid": image, "ram": 128, "zfs_io_priority": p});
    let update = |name: &str, p: u64| {
        let f = h.file(name, &json!({ "zfs_io_priority": p }));
        h.vmadm(&["update", &uuid, "-f", &f])
    };
    let priority = |h: &Host| h.get(&uuid)["zfs_io_priority"].clone();
    if verify.status.success() {
        // The kernel weights I/O: the VM has the priority, and update changes it.
        let f = h.file("io.json", &payload(30));
        h.vm_ok(&["create", "-f", &f]);
        assert_eq!(priority(&h), 30);
        let rctl = h.ok("zonecfg", &["-z", &uuid, "info", "rctl"]);
        assert!(
            rctl.contains("zone.zfs-io-priority") && rctl.contains("limit=30"),
            "{rctl}"
        );
        let out = update("up.json", 150);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(priority(&h), 150);
        // Back to the default: no rctl at all.
        assert!(update("def.json", 100).status.success());
        assert_eq!(priority(&h), 100);
        assert!(!h
            .ok("zonecfg", &["-z", &uuid, "info"])
            .contains("zfs-io-priority"));
    } else {
        let err = String::from_utf8_lossy(&verify.stderr).into_owned();
        let why = err
            .split("rctl zone.zfs-io-priority: ")
            .nth(1)
            .unwrap_or_else(|| panic!("zoneadm verify: {err}"))
            .trim_end()
            .to_string();
        let want = format!("$.zfs_io_priority: 30: this host cannot weight I/O: {why}");
        let f = h.file("io.json", &payload(30));
        for verb in [&["validate", "create", "-f", &f][..], &["create", "-f", &f]] {
            let out = h.vmadm(verb);
            assert_eq!(out.status.code(), Some(1), "{verb:?}: {out:?}");
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(e.contains(&want), "{verb:?}: {want} not in {e}");
        }
        assert_eq!(h.vm_ok(&["list", "-H"]).0, "");
        // The default is no rctl: created, and an update to 30 is refused, changing nothing.
        let f = h.file("def.json", &payload(100));
        h.vm_ok(&["create", "-f", &f]);
        assert_eq!(priority(&h), 100);
        let out = update("up.json", 30);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(&want), "{want} not in {e}");
        assert_eq!(priority(&h), 100);
        assert!(!h
            .ok("zonecfg", &["-z", &uuid, "info"])
            .contains("zfs-io-priority"));
    }
    h.vm_ok(&["delete", &uuid]);
    assert_eq!(h.vm_ok(&["list", "-H"]).0, "");
}
