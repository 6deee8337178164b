//! Images and copy-on-write zone storage through the real binaries: `imgadm import` by every
//! route (OCI layout, oci-archive, docker-archive, rootfs tarball), bad archives that change
//! nothing, and zones installed from an image (overlay and dir) that boot, keep their
//! changes to themselves, and leave no mount behind.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::require_root;
use common::zonehost::ZoneHost;
use serde_json::Value;
use zones::image::build;
use zones::image::ImageConfig;

/// A zone host with a busybox rootfs (`image`) to make images from; see `common::zonehost`.
struct Host(ZoneHost);

impl std::ops::Deref for Host {
    type Target = ZoneHost;
    fn deref(&self) -> &ZoneHost {
        &self.0
    }
}

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("images", tag, true))
    }

    fn layers(&self, route: &str) -> Vec<Vec<u8>> {
        let extra = self.root.join(format!("extra-{route}"));
        fs::create_dir_all(extra.join("etc")).unwrap();
        fs::write(extra.join("etc/route"), route).unwrap();
        vec![
            build::tar_rootfs(&self.image).unwrap(),
            build::tar_rootfs(&extra).unwrap(),
        ]
    }

    fn images(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok("imgadm", &["list", "-j"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn image_dir(&self) -> PathBuf {
        self.root.join("var/lib/zones/images")
    }

    /// Names in the image store other than images and the lock (leftover staging dirs).
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.image_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n != ".lock")
            .collect()
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
}

fn cfg() -> ImageConfig {
    ImageConfig {
        entrypoint: vec![],
        cmd: vec!["/bin/sh".into(), "-c".into(), "echo from-image".into()],
        env: vec!["PATH=/bin:/sbin".into(), "IMAGE=busybox".into()],
        workdir: Some("/tmp".into()),
        user: None,
    }
}

#[test]
fn imgadm_imports_by_every_route() {
    if !require_root() {
        return;
    }
    let h = Host::new("routes");
    let layout = h.root.join("layout");
    build::write_oci_layout(&h.layers("layout"), &layout, "test/busybox:layout", &cfg()).unwrap();
    let ociar = h.root.join("busybox-oci.tar");
    let d = h.root.join("ociar");
    build::write_oci_layout(&h.layers("oci-archive"), &d, "test/busybox:ociar", &cfg()).unwrap();
    build::tar_dir(&d, &ociar).unwrap();
    let dockar = h.root.join("busybox-docker.tar");
    let d = h.root.join("dockar");
    build::write_docker_dir(
        &h.layers("docker-archive"),
        &d,
        "test/busybox:docker",
        &cfg(),
    )
    .unwrap();
    build::tar_dir(&d, &dockar).unwrap();
    let rootfs_tgz = h.root.join("rootfs.tar.gz");
    fs::write(
        &rootfs_tgz,
        build::gzip(&build::tar_rootfs(&h.image).unwrap()),
    )
    .unwrap();

    let out = h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    assert!(
        out.starts_with("Imported image test/busybox:layout ("),
        "{out}"
    );
    h.ok("imgadm", &["import", ociar.to_str().unwrap()]);
    h.ok("imgadm", &["import", dockar.to_str().unwrap()]);
    h.ok(
        "imgadm",
        &[
            "import",
            "--rootfs",
            "--name",
            "plain",
            rootfs_tgz.to_str().unwrap(),
        ],
    );

    let list = h.images();
    let by_name = |n: &str| list.iter().find(|m| m["name"] == n).unwrap().clone();
    for (name, source, route) in [
        ("test/busybox:layout", "oci-layout", Some("layout")),
        ("test/busybox:ociar", "oci-archive", Some("oci-archive")),
        (
            "test/busybox:docker",
            "docker-archive",
            Some("docker-archive"),
        ),
        ("plain", "rootfs", None),
    ] {
        let m = by_name(name);
        assert_eq!(m["source"], source, "{m}");
        let id = m["id"].as_str().unwrap();
        let rootfs = h.image_dir().join(id).join("rootfs");
        assert!(rootfs.join("bin/busybox").is_file(), "{name}: no busybox");
        assert_eq!(
            fs::read_link(rootfs.join("bin/sh")).unwrap(),
            fs::read_link(h.image.join("bin/sh")).unwrap()
        );
        match route {
            Some(r) => {
                assert_eq!(fs::read_to_string(rootfs.join("etc/route")).unwrap(), r);
                assert_eq!(m["config"]["env"][1], "IMAGE=busybox");
                assert_eq!(m["config"]["workdir"], "/tmp");
                assert_eq!(m["layers"].as_array().unwrap().len(), 2);
            }
            None => assert!(!rootfs.join("etc/route").exists()),
        }
    }
    // get by name and by id prefix give the same manifest.
    let m = by_name("test/busybox:docker");
    let short = &m["id"].as_str().unwrap()[..12];
    let got: Value = serde_json::from_str(&h.ok("imgadm", &["get", short])).unwrap();
    assert_eq!(got, m);
    // The table: a header and one line per image.
    let table = h.ok("imgadm", &["list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME"),
        "{table}"
    );
    assert_eq!(lines.len(), 5, "{table}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with(short) && l.contains("docker-archive")));
    // Re-import: refused.
    let e = h.fails("imgadm", &["import", layout.to_str().unwrap()]);
    assert!(e.contains("already imported"), "{e}");
    // delete and vacuum.
    h.ok("imgadm", &["delete", "plain"]);
    let e = h.fails("imgadm", &["get", "plain"]);
    assert!(e.contains("plain: no such image"), "{e}");
    let out = h.ok("imgadm", &["vacuum"]);
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("Deleted image"))
            .count(),
        3,
        "{out}"
    );
    assert!(h.images().is_empty());
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
}

#[test]
fn bad_archives_are_refused_and_change_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("bad");
    let good = h.root.join("good");
    build::write_oci_layout(&h.layers("good"), &good, "good", &cfg()).unwrap();
    h.ok("imgadm", &["import", good.to_str().unwrap()]);
    let before = h.images();

    // Truncated oci-archive.
    let full = h.root.join("full.tar");
    build::tar_dir(&good, &full).unwrap();
    let bytes = fs::read(&full).unwrap();
    let cut = h.root.join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    // Corrupt layer: the biggest blob (the busybox layer) gets a byte flipped.
    let corrupt = h.root.join("corrupt");
    build::write_oci_layout(&h.layers("corrupt"), &corrupt, "corrupt", &cfg()).unwrap();
    let blob = fs::read_dir(corrupt.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut data = fs::read(&blob).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&blob, data).unwrap();
    // A layer that climbs out with '..'; one that writes through a symlink to /.
    let dotdot = h.root.join("dotdot.tar");
    fs::write(&dotdot, raw_tar("../../escaped-dotdot", b"x")).unwrap();
    let viasym = h.root.join("viasym");
    let mut evil = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(tar::EntryType::Symlink);
    hd.set_size(0);
    hd.set_mode(0o777);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(0);
    evil.append_link(&mut hd, "up", "/var/tmp").unwrap();
    let mut hd = tar::Header::new_gnu();
    hd.set_size(1);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(0);
    let name = format!("up/runz-test-escaped-{}", std::process::id());
    evil.append_data(&mut hd, &name, &b"x"[..]).unwrap();
    build::write_oci_layout(&[evil.into_inner().unwrap()], &viasym, "viasym", &cfg()).unwrap();
    // Not an image.
    let junk = h.root.join("junk.tar");
    fs::write(&junk, raw_tar("hello.txt", b"hi")).unwrap();

    for (path, rootfs, expect) in [
        (&cut, false, "truncated"),
        (&corrupt, false, "digest mismatch"),
        (&dotdot, true, "'..' component leaves the image root"),
        (&viasym, false, "goes through the symlink 'up'"),
        (&junk, false, "neither an OCI image layout"),
    ] {
        let mut args = vec!["import"];
        if rootfs {
            args.push("--rootfs");
        }
        args.push(path.to_str().unwrap());
        let e = h.fails("imgadm", &args);
        assert!(
            e.contains(expect),
            "{}: expected '{expect}' in: {e}",
            path.display()
        );
        assert_eq!(h.images(), before, "{}: the store changed", path.display());
        assert!(
            h.leftovers().is_empty(),
            "{}: {:?}",
            path.display(),
            h.leftovers()
        );
    }
    assert!(!Path::new(&format!(
        "/var/tmp/runz-test-escaped-{}",
        std::process::id()
    ))
    .exists());
    let root_parent = h.root.parent().unwrap().parent().unwrap();
    assert!(!root_parent.join("escaped-dotdot").exists());
}

/// A one-entry tar whose name is written raw (the tar crate's builder refuses `..`).
fn raw_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(tar::EntryType::Regular);
    hd.set_size(data.len() as u64);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(0);
    let field = &mut hd.as_old_mut().name;
    field[..name.len()].copy_from_slice(name.as_bytes());
    hd.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&hd, data).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn zones_from_an_image_on_overlay_and_dir() {
    if !require_root() {
        return;
    }
    let h = Host::new("zones");
    let layout = h.root.join("layout");
    build::write_oci_layout(&h.layers("zones"), &layout, "bb", &cfg()).unwrap();
    h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    let id = h.images()[0]["id"].as_str().unwrap().to_string();
    let image_rootfs = h.image_dir().join(&id).join("rootfs");

    // a: overlay (the default); b: a clone of a; c: dir.
    h.configure("a", "");
    h.ok("zoneadm", &["-z", "a", "install", "-i", "bb"]);
    assert_eq!(h.state("a"), "installed");
    let rec: Value =
        serde_json::from_slice(&fs::read(h.zonepath("a").join("storage.json")).unwrap()).unwrap();
    assert_eq!(rec["kind"]["type"], "overlay");
    assert_eq!(rec["image"], id.as_str());
    // Not mounted while installed: the zone's root is empty, its files are the image's.
    assert!(common::mounts_under(&h.root).is_empty());
    h.configure("b", "");
    h.ok("zoneadm", &["-z", "b", "clone", "a"]);
    h.configure("c", "; set storage=dir");
    h.ok("zoneadm", &["-z", "c", "install", "-i", &id[..12]]);
    assert!(h.zonepath("c").join("root/bin/busybox").is_file());

    for z in ["a", "b", "c"] {
        h.ok("zoneadm", &["-z", z, "boot"]);
        assert_eq!(h.state(z), "running");
        assert_eq!(
            h.ok("zlogin", &[z, "hostname; cat /etc/route"]),
            format!("{z}\nzones")
        );
    }
    assert!(common::mounts_under(&h.root).contains(&h.zonepath("a").join("root")));
    h.ok(
        "zlogin",
        &["a", "echo only-in-a > /root/mark; rm /etc/route"],
    );
    assert_eq!(h.ok("zlogin", &["a", "cat /root/mark"]), "only-in-a\n");
    let e = h.cmd("zlogin", &["b", "cat /root/mark"]);
    assert!(!e.status.success(), "the sibling sees a's file");
    assert_eq!(h.ok("zlogin", &["b", "cat /etc/route"]), "zones");
    assert!(!h.zonepath("c").join("root/root/mark").exists());
    // a's change is in a's upper dir, not in the shared image.
    assert_eq!(
        fs::read_to_string(h.zonepath("a").join("upper/root/mark")).unwrap(),
        "only-in-a\n"
    );
    assert!(!image_rootfs.join("root/mark").exists());
    assert!(image_rootfs.join("etc/route").exists());

    // The image is in use: delete refused, naming the zones.
    let e = h.fails("imgadm", &["delete", "bb"]);
    assert!(e.contains("used by zone(s): a, b, c"), "{e}");
    let out = h.ok("imgadm", &["vacuum", "-n"]);
    assert!(!out.contains("bb"), "{out}");

    // Halt: unmounted; a's change survives a reboot of the zone.
    for z in ["a", "b", "c"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
    }
    assert!(
        common::mounts_under(&h.root).is_empty(),
        "{:?}",
        common::mounts_under(&h.root)
    );
    h.ok("zoneadm", &["-z", "a", "boot"]);
    assert_eq!(h.ok("zlogin", &["a", "cat /root/mark"]), "only-in-a\n");
    assert!(!h
        .cmd("zlogin", &["a", "test -e /etc/route"])
        .status
        .success());
    h.ok("zoneadm", &["-z", "a", "halt"]);

    for z in ["a", "b", "c"] {
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
        assert_eq!(h.state(z), "configured");
        assert!(!h.zonepath(z).exists(), "{z} left files");
    }
    h.ok("imgadm", &["delete", "bb"]);
    assert!(!h.image_dir().join(&id).exists());
}

#[test]
fn app_zone_gets_the_image_config_and_bad_installs_change_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("app");
    let layout = h.root.join("layout");
    build::write_oci_layout(&h.layers("app"), &layout, "app-img", &cfg()).unwrap();
    h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    h.configure("ap", "; set brand=app; set ip-type=shared");
    h.ok("zoneadm", &["-z", "ap", "install", "-i", "app-img"]);
    let app: Value =
        serde_json::from_slice(&fs::read(h.zonepath("ap").join("app.json")).unwrap()).unwrap();
    assert_eq!(app["args"][2], "echo from-image");
    assert_eq!(app["env"][1], "IMAGE=busybox");
    assert_eq!(app["cwd"], "/tmp");
    // An unknown image: refused, the zone stays configured, no zonepath made.
    h.configure("none", "");
    let e = h.fails("zoneadm", &["-z", "none", "install", "-i", "no-such-image"]);
    assert!(e.contains("no-such-image: no such image"), "{e}");
    assert_eq!(h.state("none"), "configured");
    assert!(!h.zonepath("none").exists());
    // A bad storage value is refused by zonecfg.
    let e = h.fails("zonecfg", &["-z", "none", "set storage=nfs"]);
    assert!(e.contains("nfs"), "{e}");
    // zfs on a dataset that does not exist (or with no zfs at all): refused, and the zone
    // stays configured.
    h.configure("zf", "; set storage=zfs:tank/zones");
    let e = h.fails("zoneadm", &["-z", "zf", "install", "-i", "app-img"]);
    assert!(e.contains("zfs"), "{e}");
    assert_eq!(h.state("zf"), "configured");
    assert!(!h.zonepath("zf").exists());
}
