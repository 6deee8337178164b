//! Images and copy-on-write zone storage through the real binaries: `imgadm import` by every
//! route (OCI layout, oci-archive, docker-archive, rootfs tarball, a local registry), bad
//! archives and bad registries that change nothing, `imgadm create` from a halted zone, and
//! zones installed from an image (overlay and dir) that boot, keep their changes to
//! themselves, and leave no mount behind.

mod common;
#[allow(dead_code)]
#[path = "common/registry.rs"]
mod registry;

use std::fs;
use std::path::{Path, PathBuf};

use common::require_root;
use common::zonehost::ZoneHost;
use serde_json::Value;
use zones::image::build;
use zones::image::ImageConfig;

// Host: a busybox rootfs (`image`) to make images from.
common::zonehost::host_type!();

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

    /// Install `zone` from `image`, boot it, and return what it says its hostname and
    /// /etc/route are ("none" without one); halted and uninstalled again.
    fn boot_from(&self, zone: &str, image: &str) -> String {
        self.configure(zone, "");
        self.ok("zoneadm", &["-z", zone, "install", "-i", image]);
        self.ok("zoneadm", &["-z", zone, "boot"]);
        let out = self.ok(
            "zlogin",
            &[
                zone,
                "hostname; cat /etc/route 2>/dev/null || echo -n none; echo",
            ],
        );
        self.ok("zoneadm", &["-z", zone, "halt"]);
        self.ok("zoneadm", &["-z", zone, "uninstall", "-F"]);
        out
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
    // A zone from each: installed, booted, its files the image's.
    for (i, (name, route)) in [
        ("test/busybox:layout", "layout"),
        ("test/busybox:ociar", "oci-archive"),
        ("test/busybox:docker", "docker-archive"),
        ("plain", "none"),
    ]
    .into_iter()
    .enumerate()
    {
        let zone = format!("r{i}");
        assert_eq!(h.boot_from(&zone, name), format!("{zone}\n{route}\n"));
    }
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
    // A layer of a media type nobody knows (the manifest rewritten, its digest updated).
    let weird = h.root.join("weird");
    build::write_oci_layout(&h.layers("weird"), &weird, "weird", &cfg()).unwrap();
    let mut m: Value =
        serde_json::from_slice(&registry::read_blob(&weird, &manifest_digest(&weird))).unwrap();
    m["layers"][0]["mediaType"] = "application/vnd.example.layer.v9+brotli".into();
    let data = serde_json::to_vec(&m).unwrap();
    let d = zones::image::digest::Digest::of_bytes(&data);
    fs::write(weird.join("blobs/sha256").join(d.hex()), &data).unwrap();
    let mut index: Value =
        serde_json::from_slice(&fs::read(weird.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"] = d.to_string().into();
    index["manifests"][0]["size"] = data.len().into();
    fs::write(
        weird.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    // Not an image.
    let junk = h.root.join("junk.tar");
    fs::write(&junk, raw_tar("hello.txt", b"hi")).unwrap();

    for (path, rootfs, expect) in [
        (&cut, false, "truncated"),
        (&corrupt, false, "digest mismatch"),
        (&dotdot, true, "'..' component leaves the image root"),
        (&viasym, false, "goes through the symlink 'up'"),
        (&junk, false, "neither an OCI image layout"),
        (
            &weird,
            false,
            "unknown media type 'application/vnd.example.layer.v9+brotli'",
        ),
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

/// A tar of raw names (written into the header bytes, so `/` and `/etc/x` survive): a
/// directory where the data is `None`.
fn raw_tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut hd = tar::Header::new_gnu();
        let (kind, mode, data) = match data {
            Some(d) => (tar::EntryType::Regular, 0o644, *d),
            None => (tar::EntryType::Directory, 0o755, &b""[..]),
        };
        hd.set_entry_type(kind);
        hd.set_size(data.len() as u64);
        hd.set_mode(mode);
        hd.set_uid(0);
        hd.set_gid(0);
        hd.set_mtime(0);
        let field = &mut hd.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        hd.set_cksum();
        b.append(&hd, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Issue 20 item 11: a layer whose entries start with `/` (as `umoci insert ROOTFS /` writes
/// them) names the layer's root, as containerd and umoci read it; `..` is still refused.
#[test]
fn imgadm_reads_a_leading_slash_as_the_layer_root() {
    if !require_root() {
        return;
    }
    let h = Host::new("slash");
    let top = raw_tar_of(&[
        ("/", None),
        ("/etc/", None),
        ("/etc/x", Some(b"x\n")),
        ("./bin/", None),
        ("./bin/y", Some(b"y\n")),
    ]);
    let layout = h.root.join("slash-layout");
    let layers = vec![build::tar_rootfs(&h.image).unwrap(), top];
    build::write_oci_layout(&layers, &layout, "test/slash:1", &cfg()).unwrap();
    h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    let m = h
        .images()
        .into_iter()
        .find(|m| m["name"] == "test/slash:1")
        .unwrap();
    let rootfs = h.image_dir().join(m["id"].as_str().unwrap()).join("rootfs");
    assert_eq!(fs::read_to_string(rootfs.join("etc/x")).unwrap(), "x\n");
    assert_eq!(fs::read_to_string(rootfs.join("bin/y")).unwrap(), "y\n");
    assert!(rootfs.join("bin/busybox").is_file());
    h.ok("imgadm", &["delete", "test/slash:1"]);
    // `/..` still climbs out: refused, nothing left behind.
    let bad = h.root.join("climb-layout");
    let layers = vec![raw_tar_of(&[("/../../runz-test-climbed", Some(b"x"))])];
    build::write_oci_layout(&layers, &bad, "test/climb:1", &cfg()).unwrap();
    let e = h.fails("imgadm", &["import", bad.to_str().unwrap()]);
    assert!(e.contains("a '..' component leaves the image root"), "{e}");
    assert!(h.images().is_empty());
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
    // A real umoci layout, where umoci is installed (scripts/install-deps.sh).
    if umoci_layout(&h).is_none() {
        eprintln!("umoci not installed: the umoci layout is not tried");
    }
}

/// `umoci init/new/insert ROOTFS /` a layout of the busybox rootfs plus a file, imported and
/// booted; `None` without umoci.
fn umoci_layout(h: &Host) -> Option<()> {
    let umoci = ["/usr/bin/umoci", "/usr/local/bin/umoci"]
        .into_iter()
        .find(|p| Path::new(p).is_file())?;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(umoci)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let layout = h.root.join("umoci-layout");
    let l = layout.to_str().unwrap();
    let tagged = format!("{l}:runz-test");
    let src = h.root.join("umoci-src");
    fs::create_dir_all(src.join("etc")).unwrap();
    fs::write(src.join("etc/route"), "umoci").unwrap();
    run(&["init", "--layout", l]);
    run(&["new", "--image", &tagged]);
    run(&["insert", "--image", &tagged, h.image.to_str().unwrap(), "/"]);
    run(&["insert", "--image", &tagged, src.to_str().unwrap(), "/"]);
    run(&["config", "--image", &tagged, "--config.cmd", "/bin/sh"]);
    h.ok("imgadm", &["import", "--name", "umoci", l]);
    assert_eq!(h.boot_from("um0", "umoci"), "um0\numoci\n");
    h.ok("imgadm", &["delete", "umoci"]);
    Some(())
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

/// The images of the registry tests: a two-layer busybox image (the second layer zstd) in an
/// OCI layout, with `route` in /etc/route.
fn registry_layout(h: &Host, route: &str) -> PathBuf {
    let layout = h.root.join(format!("layout-{route}"));
    let mut layers = h.layers(route).into_iter();
    let layers = [
        (
            layers.next().unwrap(),
            zones::image::layer::Compression::Gzip,
        ),
        (
            layers.next().unwrap(),
            zones::image::layer::Compression::Zstd,
        ),
    ];
    build::write_oci_layout_with(&layers, &layout, route, &cfg()).unwrap();
    layout
}

fn manifest_digest(layout: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn registry_pull_installs_and_boots() {
    if !require_root() {
        return;
    }
    let h = Host::new("pull");
    let reg = registry::LocalRegistry::start("pull", None);
    let v1 = registry_layout(&h, "registry");
    let v1_digest = registry::push_layout(&reg, &v1, "runz-test/busybox", "v1");
    // A multi-platform index: an arm64 manifest first, then amd64 (another image).
    let multi = registry_layout(&h, "multi");
    let amd64 = registry::push_layout(&reg, &multi, "runz-test/busybox", "amd64-only");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": v1_digest,
             "size": registry::read_blob(&v1, &v1_digest).len(),
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64,
             "size": registry::read_blob(&multi, &amd64).len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }))
    .unwrap();
    registry::put_manifest(&reg, "runz-test/busybox", "multi", &index);

    // Without --insecure it speaks https to a plain-http registry: a clear error.
    let reference = format!("docker://{}/runz-test/busybox:v1", reg.addr);
    let e = h.fails("imgadm", &["import", &reference]);
    assert!(e.contains("--insecure") && e.contains(&reg.addr), "{e}");

    let out = h.cmd("imgadm", &["import", "--insecure", &reference]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "Imported image {}/runz-test/busybox:v1 (",
            reg.addr
        )),
        "{stdout}"
    );
    // stderr is not a terminal here: no progress bars.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = &h.images()[0];
    assert_eq!(m["source"], "registry");
    assert_eq!(m["id"], v1_digest.trim_start_matches("sha256:"));
    assert_eq!(m["origin"], reference);
    assert_eq!(m["config"]["env"][1], "IMAGE=busybox");
    assert_eq!(m["config"]["workdir"], "/tmp");
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    let rootfs = h.image_dir().join(m["id"].as_str().unwrap()).join("rootfs");
    assert!(rootfs.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/route")).unwrap(),
        "registry"
    );

    // The index resolves to the amd64 manifest.
    let multi_ref = format!("docker://{}/runz-test/busybox:multi", reg.addr);
    h.ok(
        "imgadm",
        &["import", "--insecure", "--name", "multi", &multi_ref],
    );
    let got: Value = serde_json::from_str(&h.ok("imgadm", &["get", "multi"])).unwrap();
    assert_eq!(got["id"], amd64.trim_start_matches("sha256:"));
    // By digest: the same image, already imported.
    let by_digest = format!("docker://{}/runz-test/busybox@{amd64}", reg.addr);
    let e = h.fails("imgadm", &["import", "--insecure", &by_digest]);
    assert!(e.contains("already imported (as 'multi')"), "{e}");

    // Zones from both pulls boot with the image's files.
    assert_eq!(
        h.boot_from("p1", &format!("{}/runz-test/busybox:v1", reg.addr)),
        "p1\nregistry\n"
    );
    assert_eq!(h.boot_from("p2", "multi"), "p2\nmulti\n");
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
}

#[test]
fn registry_auth_basic_and_bearer() {
    if !require_root() {
        return;
    }
    let h = Host::new("auth");
    let layout = registry_layout(&h, "auth");
    // Basic: the registry's htpasswd auth.
    let reg = registry::LocalRegistry::start("auth", Some("runz:s3cret"));
    registry::push_layout(&reg, &layout, "private/busybox", "v1");
    let reference = format!("docker://{}/private/busybox:v1", reg.addr);
    let e = h.fails("imgadm", &["import", "--insecure", &reference]);
    assert!(
        e.contains("not authorized") && e.contains("--creds USER:PASSWORD"),
        "{e}"
    );
    let e = h.fails(
        "imgadm",
        &["import", "--insecure", "--creds", "runz:wrong", &reference],
    );
    assert!(e.contains("refused these credentials"), "{e}");
    assert!(h.images().is_empty());
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
    // The credentials from the environment.
    let out = std::process::Command::new(common::zonehost::bin("imgadm"))
        .arg("-R")
        .arg(&h.root)
        .args(["import", "--insecure", "--name", "basic", &reference])
        .env("IMGADM_CREDS", "runz:s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rootfs = h
        .image_dir()
        .join(manifest_digest(&layout).trim_start_matches("sha256:"));
    assert_eq!(
        fs::read_to_string(rootfs.join("rootfs/etc/route")).unwrap(),
        "auth"
    );
    h.ok("imgadm", &["delete", "basic"]);

    // Bearer: a registry that sends clients to a token endpoint (served by the same fake).
    let token_layout = layout.clone();
    let fake = registry::FakeRegistry::start(move |req| {
        if req.path.starts_with("/token?") {
            return if req.headers.get("authorization").map(String::as_str)
                == Some("Basic cnVuejpzM2NyZXQ=")
            {
                registry::Answer::new(200, br#"{"token":"tok-123"}"#.to_vec())
            } else {
                registry::Answer::new(401, b"{}".to_vec())
            };
        }
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer tok-123") {
            let host = req.headers.get("host").cloned().unwrap_or_default();
            return registry::Answer::new(401, br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec())
                .header(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://{host}/token",service="runz-test",scope="repository:team/busybox:pull""#),
                );
        }
        registry::serve_layout(&token_layout, "team/busybox", "v2", req)
    });
    let reference = format!("docker://{}/team/busybox:v2", fake.addr);
    let e = h.fails("imgadm", &["import", "--insecure", &reference]);
    assert!(e.contains("token endpoint") && e.contains("401"), "{e}");
    h.ok(
        "imgadm",
        &["import", "--insecure", "--creds", "runz:s3cret", &reference],
    );
    assert_eq!(
        fs::read_to_string(rootfs.join("rootfs/etc/route")).unwrap(),
        "auth"
    );
    let seen = fake.seen.lock().unwrap().clone();
    let token_req = seen
        .iter()
        .rev()
        .find(|r| r.path.starts_with("/token?"))
        .unwrap();
    assert_eq!(
        token_req.path,
        "/token?scope=repository%3Ateam%2Fbusybox%3Apull&service=runz-test"
    );
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
}

#[test]
fn bad_registry_answers_change_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("badreg");
    let reg = registry::LocalRegistry::start("badreg", None);
    let good = registry_layout(&h, "good");
    registry::push_layout(&reg, &good, "ok/busybox", "v1");
    h.ok(
        "imgadm",
        &[
            "import",
            "--insecure",
            &format!("docker://{}/ok/busybox:v1", reg.addr),
        ],
    );
    let before = h.images();

    // A layer whose blob in the registry's storage was changed behind its back.
    let corrupt = registry_layout(&h, "corrupt");
    registry::push_layout(&reg, &corrupt, "bad/corrupt", "v1");
    let m: Value =
        serde_json::from_slice(&registry::read_blob(&corrupt, &manifest_digest(&corrupt))).unwrap();
    let big = m["layers"][1]["digest"].as_str().unwrap();
    let file = reg.blob_file(big);
    let mut data = fs::read(&file).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&file, data).unwrap();
    // A manifest whose layer has a media type nobody knows.
    let weird = registry_layout(&h, "weird");
    registry::push_layout(&reg, &weird, "bad/weird", "v0");
    let mut wm: Value =
        serde_json::from_slice(&registry::read_blob(&weird, &manifest_digest(&weird))).unwrap();
    wm["layers"][1]["mediaType"] = "application/vnd.example.layer.v9+brotli".into();
    registry::put_manifest(&reg, "bad/weird", "v1", &serde_json::to_vec(&wm).unwrap());
    // A registry that cuts a layer short (announces more than it sends).
    let cut_layout = registry_layout(&h, "cut");
    let cm: Value = serde_json::from_slice(&registry::read_blob(
        &cut_layout,
        &manifest_digest(&cut_layout),
    ))
    .unwrap();
    let cut_blob = format!(
        "/v2/bad/cut/blobs/{}",
        cm["layers"][0]["digest"].as_str().unwrap()
    );
    let served = cut_layout.clone();
    let fake = registry::FakeRegistry::start(move |req| {
        let mut a = registry::serve_layout(&served, "bad/cut", "v1", req);
        if req.path == cut_blob {
            a.claimed_len = Some(a.body.len());
            a.body.truncate(a.body.len() / 3);
        }
        a
    });

    let at = |repo: &str| format!("docker://{}/{repo}", reg.addr);
    for (reference, expect) in [
        (
            at("ok/busybox:nosuchtag"),
            "404 not found (manifest unknown)",
        ),
        (at("no/such-repo:v1"), "404 not found"),
        (at("bad/corrupt:v1"), "digest mismatch"),
        (
            at("bad/weird:v1"),
            "unknown media type 'application/vnd.example.layer.v9+brotli'",
        ),
        (format!("docker://{}/bad/cut:v1", fake.addr), "truncated"),
        (format!("docker://{}/ok/busybox:v1", fake.addr), "404"),
        (at("Bad/Name:v1"), "lowercase"),
    ] {
        let e = h.fails("imgadm", &["import", "--insecure", &reference]);
        assert!(
            e.contains(expect),
            "{reference}: expected '{expect}' in: {e}"
        );
        assert_eq!(h.images(), before, "{reference}: the store changed");
        assert!(h.leftovers().is_empty(), "{reference}: {:?}", h.leftovers());
    }
}

#[test]
fn imgadm_create_makes_an_image_of_a_halted_zone() {
    if !require_root() {
        return;
    }
    let h = Host::new("create");
    let layout = h.root.join("layout");
    build::write_oci_layout(&h.layers("create"), &layout, "base", &cfg()).unwrap();
    h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    h.configure("src", "");
    h.ok("zoneadm", &["-z", "src", "install", "-i", "base"]);
    h.ok("zoneadm", &["-z", "src", "boot"]);
    h.ok(
        "zlogin",
        &["src", "echo made-in-src > /root/made; rm /etc/route"],
    );
    let out = h.root.join("src-image.tar");
    // Running: refused, nothing written.
    let e = h.fails("imgadm", &["create", "src", "-o", out.to_str().unwrap()]);
    assert!(
        e.contains("zone src is running") && e.contains("halt"),
        "{e}"
    );
    assert!(!out.exists());
    h.ok(
        "zlogin",
        &["src", "ln /root/made /root/made-link; mkfifo /root/fifo"],
    );
    h.ok("zoneadm", &["-z", "src", "halt"]);
    // A socket left behind in the zone's files: not archived, not an error.
    let _sock =
        std::os::unix::net::UnixListener::bind(h.zonepath("src").join("upper/root/sock")).unwrap();
    let e = h.fails("imgadm", &["create", "nosuch", "-o", out.to_str().unwrap()]);
    assert!(e.contains("nosuch"), "{e}");
    let nodir = h.root.join("no-such-dir/x.tar");
    let e = h.fails("imgadm", &["create", "src", "-o", nodir.to_str().unwrap()]);
    assert!(e.contains("no-such-dir is not a directory"), "{e}");
    assert!(!nodir.parent().unwrap().exists());
    assert!(common::mounts_under(&h.root).is_empty());

    let said = h.ok(
        "imgadm",
        &[
            "create",
            "src",
            "-o",
            out.to_str().unwrap(),
            "--name",
            "from-src",
        ],
    );
    assert!(said.contains("Created image of zone src"), "{said}");
    // The zone's storage is unmounted again and nothing is left beside the archive.
    assert!(
        common::mounts_under(&h.root).is_empty(),
        "{:?}",
        common::mounts_under(&h.root)
    );
    let beside: Vec<String> = fs::read_dir(&h.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");

    let imported = h.ok("imgadm", &["import", out.to_str().unwrap()]);
    assert!(
        imported.starts_with("Imported image from-src ("),
        "{imported}"
    );
    let m: Value = serde_json::from_str(&h.ok("imgadm", &["get", "from-src"])).unwrap();
    assert_eq!(m["source"], "oci-archive");
    // The configuration of the image the zone came from is kept.
    assert_eq!(m["config"]["env"][1], "IMAGE=busybox");
    h.configure("copy", "");
    h.ok("zoneadm", &["-z", "copy", "install", "-i", "from-src"]);
    h.ok("zoneadm", &["-z", "copy", "boot"]);
    assert_eq!(h.ok("zlogin", &["copy", "cat /root/made"]), "made-in-src\n");
    assert_eq!(
        h.ok(
            "zlogin",
            &[
                "copy",
                "stat -c %h /root/made; test -p /root/fifo && test ! -e /root/sock && echo ok"
            ]
        ),
        "2\nok\n"
    );
    assert!(!h
        .cmd("zlogin", &["copy", "test -e /etc/route"])
        .status
        .success());
    h.ok("zoneadm", &["-z", "copy", "halt"]);
    // The source image is in use by src, the new one by copy.
    let e = h.fails("imgadm", &["delete", "from-src"]);
    assert!(e.contains("used by zone(s): copy"), "{e}");
}

#[test]
fn app_zone_runs_as_the_image_user() {
    if !require_root() {
        return;
    }
    let h = Host::new("appuser");
    for (name, user) in [("as-zone", "zone"), ("as-ghost", "ghost")] {
        let layout = h.root.join(name);
        let cfg = ImageConfig {
            entrypoint: vec!["/bin/sleep".into()],
            cmd: vec!["1000".into()],
            env: vec!["PATH=/bin:/sbin".into(), "IMAGE=busybox".into()],
            workdir: Some("/tmp".into()),
            user: Some(user.into()),
        };
        build::write_oci_layout(&h.layers(name), &layout, name, &cfg).unwrap();
        h.ok("imgadm", &["import", layout.to_str().unwrap()]);
    }
    h.configure("au", "; set brand=app");
    h.ok("zoneadm", &["-z", "au", "install", "-i", "as-zone"]);
    h.ok("zoneadm", &["-z", "au", "boot"]);
    let out = h.ok(
        "zlogin",
        &[
            "au",
            "awk '/^Uid|^Gid/{print $2}' /proc/1/status; readlink /proc/1/cwd; \
             tr '\\0' '\\n' </proc/1/environ | grep IMAGE; tr '\\0' ' ' </proc/1/cmdline",
        ],
    );
    assert_eq!(out, "1000\n1000\n/tmp\nIMAGE=busybox\n/bin/sleep 1000 ");
    h.ok("zoneadm", &["-z", "au", "halt"]);
    // A user the image's /etc/passwd does not know: the boot fails and says so.
    h.configure("ag", "; set brand=app");
    h.ok("zoneadm", &["-z", "ag", "install", "-i", "as-ghost"]);
    let e = h.fails("zoneadm", &["-z", "ag", "boot"]);
    assert!(
        e.contains("user 'ghost'") && e.contains("/etc/passwd"),
        "{e}"
    );
    assert_eq!(h.state("ag"), "installed");
    assert!(
        common::mounts_under(&h.root).is_empty(),
        "{:?}",
        common::mounts_under(&h.root)
    );
}
