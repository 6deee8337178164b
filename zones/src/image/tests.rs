use super::build::*;
use super::layer::tests::{tar_of, tmp, E};
use super::*;

fn cfg() -> ImageConfig {
    ImageConfig {
        entrypoint: vec!["/bin/echo".into()],
        cmd: vec!["hello".into()],
        env: vec!["PATH=/bin".into(), "A=1".into()],
        workdir: Some("/srv".into()),
        user: Some("1000".into()),
    }
}

fn two_layers() -> Vec<Vec<u8>> {
    vec![
        tar_of(&[
            E::Dir("etc/"),
            E::File("etc/passwd", "root\n"),
            E::File("etc/old", "x"),
        ]),
        tar_of(&[E::File("etc/.wh.old", ""), E::File("etc/new", "n")]),
    ]
}

fn check_rootfs(store: &ImageStore, m: &ImageManifest) {
    let r = store.rootfs(&m.id);
    assert_eq!(fs::read_to_string(r.join("etc/passwd")).unwrap(), "root\n");
    assert_eq!(fs::read_to_string(r.join("etc/new")).unwrap(), "n");
    assert!(!r.join("etc/old").exists());
    assert!(!r.join("etc/.wh.old").exists());
}

fn staging_left(store: &ImageStore) -> Vec<String> {
    fs::read_dir(store.dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect()
}

#[test]
fn import_by_every_route() {
    let t = tmp("img-routes");
    let store = ImageStore::open(&t.0.join("alt"));
    // OCI layout directory.
    let layout = t.0.join("layout");
    let md = write_oci_layout(&two_layers(), &layout, "example.org/app:1", &cfg()).unwrap();
    let m = store.import(&layout, &ImportOptions::default()).unwrap();
    assert_eq!(m.id, md.hex());
    assert_eq!(m.name, "example.org/app:1");
    assert_eq!(m.source, SourceType::OciLayout);
    assert_eq!(m.layers.len(), 2);
    assert_eq!(m.config, cfg());
    check_rootfs(&store, &m);
    let p = m.config.app_process();
    assert_eq!(p.args, ["/bin/echo", "hello"]);
    assert_eq!(p.cwd.as_deref(), Some("/srv"));
    // The same again: refused, nothing new.
    let e = store
        .import(&layout, &ImportOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("already imported"), "{e}");
    // oci-archive (under another name: same content, so delete the first).
    let archive = t.0.join("app.oci.tar");
    tar_dir(&layout, &archive).unwrap();
    store.delete("example.org/app:1", &[]).unwrap();
    let m = store
        .import(
            &archive,
            &ImportOptions {
                rootfs: false,
                name: Some("arch".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(m.source, SourceType::OciArchive);
    assert_eq!(m.name, "arch");
    check_rootfs(&store, &m);
    // docker-archive.
    let ddir = t.0.join("docker");
    let cd = write_docker_dir(&two_layers(), &ddir, "docker.io/x/app:2", &cfg()).unwrap();
    let dtar = t.0.join("app-docker.tar");
    tar_dir(&ddir, &dtar).unwrap();
    let m = store.import(&dtar, &ImportOptions::default()).unwrap();
    assert_eq!(m.source, SourceType::DockerArchive);
    assert_eq!(m.id, cd.hex());
    assert_eq!(m.name, "docker.io/x/app:2");
    assert_eq!(m.config.user.as_deref(), Some("1000"));
    check_rootfs(&store, &m);
    // Plain rootfs tarball, gzip.
    let gz = t.0.join("base.tar.gz");
    fs::write(&gz, gzip(&two_layers()[0])).unwrap();
    let m = store
        .import(
            &gz,
            &ImportOptions {
                rootfs: true,
                name: None,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(m.source, SourceType::Rootfs);
    assert_eq!(m.name, "base");
    assert!(store.rootfs(&m.id).join("etc/old").exists());
    // Lookup by name, id prefix; list.
    assert_eq!(store.get(&m.id[..8]).unwrap().name, "base");
    assert_eq!(store.list().unwrap().len(), 3);
    assert!(staging_left(&store).iter().all(|n| !n.starts_with('.')));
    // In use: refused, naming the zones.
    let e = store
        .delete("base", &["web".into(), "db".into()])
        .unwrap_err();
    assert!(e.to_string().contains("web, db"), "{e}");
    store.delete("base", &[]).unwrap();
    assert!(matches!(store.get("base"), Err(ImageError::NotFound(_))));
}

fn assert_fails_clean(store: &ImageStore, path: &Path, rootfs: bool, expect: &str) {
    let before = store.list().unwrap();
    let e = store
        .import(
            path,
            &ImportOptions {
                rootfs,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains(expect), "expected '{expect}' in: {e}");
    assert_eq!(store.list().unwrap(), before, "another image was touched");
    assert!(
        staging_left(store)
            .iter()
            .all(|n| !n.starts_with(".import")),
        "partial import left: {:?}",
        staging_left(store)
    );
}

#[test]
fn bad_images_fail_cleanly() {
    let t = tmp("img-bad");
    let store = ImageStore::open(&t.0.join("alt"));
    let good = t.0.join("good");
    write_oci_layout(&two_layers(), &good, "good", &cfg()).unwrap();
    store.import(&good, &ImportOptions::default()).unwrap();

    // A layer blob whose content does not match its digest.
    let l = t.0.join("corrupt");
    let md = write_oci_layout(&[tar_of(&[E::File("a", "1")])], &l, "c", &cfg()).unwrap();
    let manifest: Value =
        serde_json::from_slice(&fs::read(l.join("blobs/sha256").join(md.hex())).unwrap()).unwrap();
    let ld = Digest::parse(manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
    fs::write(l.join("blobs/sha256").join(ld.hex()), gzip(b"other")).unwrap();
    assert_fails_clean(&store, &l, false, "digest mismatch");

    // An unknown layer media type (manifest rewritten, index re-pointed).
    let u = t.0.join("unknown");
    let md = write_oci_layout(&[tar_of(&[E::File("a", "1")])], &u, "u", &cfg()).unwrap();
    let mp = u.join("blobs/sha256").join(md.hex());
    let text = fs::read_to_string(&mp)
        .unwrap()
        .replace("layer.v1.tar+gzip", "layer.v9.squashfs");
    let nd = Digest::of_bytes(text.as_bytes());
    fs::write(u.join("blobs/sha256").join(nd.hex()), &text).unwrap();
    let idx = fs::read_to_string(u.join("index.json"))
        .unwrap()
        .replace(md.hex(), nd.hex());
    fs::write(u.join("index.json"), idx).unwrap();
    assert_fails_clean(
        &store,
        &u,
        false,
        "unknown media type 'application/vnd.oci.image.layer.v9.squashfs'",
    );

    // A truncated oci-archive.
    let full = t.0.join("full.tar");
    tar_dir(&good, &full).unwrap();
    let bytes = fs::read(&full).unwrap();
    let cut = t.0.join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() / 2 + 100]).unwrap();
    assert_fails_clean(&store, &cut, false, "");

    // A layer that escapes, in an otherwise valid image: refused, nothing written outside.
    let e = t.0.join("escape");
    write_oci_layout(
        &[tar_of(&[
            E::Sym("x", "/"),
            E::File("x/escaped-by-test", "pwned"),
        ])],
        &e,
        "e",
        &cfg(),
    )
    .unwrap();
    assert_fails_clean(&store, &e, false, "goes through the symlink 'x'");
    assert!(!Path::new("/escaped-by-test").exists());

    // A truncated rootfs tarball.
    let rt = tar_of(&[E::File("big", &"y".repeat(100_000))]);
    let rp = t.0.join("trunc.tar");
    fs::write(&rp, &rt[..50_000]).unwrap();
    assert_fails_clean(&store, &rp, true, "");

    // Not an image at all.
    let junk = t.0.join("junkdir");
    fs::create_dir(&junk).unwrap();
    assert_fails_clean(&store, &junk, false, "neither an OCI image layout");
    assert_eq!(store.list().unwrap().len(), 1);
}

/// Replace `member` of the image directory `dir` by a symlink to `target`.
fn plant(dir: &Path, member: &str, target: &Path) {
    let p = dir.join(member);
    fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

#[test]
fn members_that_are_symlinks_or_fifos_are_refused_unread() {
    let t = tmp("img-symlinks");
    let store = ImageStore::open(&t.0.join("alt"));
    // A host file in valid JSON: were it read, its digest would show in a mismatch.
    let host = t.0.join("host-secret.json");
    fs::write(&host, br#"{"secret": "host only"}"#).unwrap();
    let host_digest = Digest::of_bytes(&fs::read(&host).unwrap())
        .hex()
        .to_string();
    let layers = [tar_of(&[E::File("a", "1")])];
    let mut n = 0;
    let mut attack = |make: &dyn Fn(&Path), archive: bool| {
        n += 1;
        let dir = t.0.join(format!("img{n}"));
        make(&dir);
        let path = if archive {
            let a = t.0.join(format!("img{n}.tar"));
            tar_dir(&dir, &a).unwrap();
            a
        } else {
            dir
        };
        let before = store.list().unwrap();
        let e = store
            .import(&path, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a symlink"), "{e}");
        assert!(!e.contains(&host_digest) && !e.contains("host only"), "{e}");
        assert_eq!(store.list().unwrap(), before);
        assert!(staging_left(&store)
            .iter()
            .all(|n| !n.starts_with(".import")));
    };
    for archive in [false, true] {
        attack(
            &|d| {
                write_docker_dir(&layers, d, "x", &cfg()).unwrap();
                plant(d, "manifest.json", &host);
            },
            archive,
        );
        attack(
            &|d| {
                let cd = write_docker_dir(&layers, d, "x", &cfg()).unwrap();
                plant(d, &format!("{}.json", cd.hex()), &host);
            },
            archive,
        );
        attack(
            &|d| {
                write_oci_layout(&layers, d, "x", &cfg()).unwrap();
                plant(d, "index.json", &host);
            },
            archive,
        );
        attack(
            &|d| {
                write_oci_layout(&layers, d, "x", &cfg()).unwrap();
                plant(d, "oci-layout", &host);
            },
            archive,
        );
        attack(
            &|d| {
                let md = write_oci_layout(&layers, d, "x", &cfg()).unwrap();
                plant(d, &format!("blobs/sha256/{}", md.hex()), &host);
            },
            archive,
        );
    }
    // A FIFO is refused at once, for either kind of import.
    let fifo = t.0.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for rootfs in [false, true] {
        let e = store
            .import(
                &fifo,
                &ImportOptions {
                    rootfs,
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a FIFO: give an image archive"), "{e}");
    }
    // The store is closed to host users.
    let mode = fs::metadata(store.dir()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_docker_layer_symlinked_inside_the_archive_is_followed_there_only() {
    let t = tmp("img-docker-dedupe");
    let store = ImageStore::open(&t.0.join("alt"));
    let layer = tar_of(&[E::File("a", "1")]);
    let d = t.0.join("docker");
    write_docker_dir(&[layer.clone(), layer.clone()], &d, "dup", &cfg()).unwrap();
    let hex = Digest::of_bytes(&layer).hex().to_string();
    let manifest_of = |second: &str| {
        let mut m: Value =
            serde_json::from_slice(&fs::read(d.join("manifest.json")).unwrap()).unwrap();
        m[0]["Layers"][1] = second.into();
        fs::write(d.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    };
    // docker save's dedupe: `dup/layer.tar -> ../<hex>/layer.tar`.
    fs::create_dir(d.join("dup")).unwrap();
    std::os::unix::fs::symlink(format!("../{hex}/layer.tar"), d.join("dup/layer.tar")).unwrap();
    manifest_of("dup/layer.tar");
    let archive = t.0.join("dup.tar");
    tar_dir(&d, &archive).unwrap();
    let m = store.import(&archive, &ImportOptions::default()).unwrap();
    assert_eq!(m.layers.len(), 2);
    // A layer symlinked to a host file: resolved inside the archive, where it is not.
    let host = t.0.join("host-layer.tar");
    fs::write(&host, &layer).unwrap();
    fs::create_dir(d.join("out")).unwrap();
    std::os::unix::fs::symlink(&host, d.join("out/layer.tar")).unwrap();
    manifest_of("out/layer.tar");
    let archive = t.0.join("out.tar");
    tar_dir(&d, &archive).unwrap();
    store.delete("dup", &[]).unwrap();
    let e = store
        .import(&archive, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("out/layer.tar: is missing"), "{e}");
}

#[test]
fn disk_images_import_as_zvols_and_are_no_zone_roots() {
    let t = tmp("img-disk");
    let store = ImageStore::open(&t.0.join("alt"));
    let q = t.0.join("vm.qcow2");
    fs::write(&q, super::qcow2::tests::header(1 << 30, None, &[])).unwrap();
    // Told by its header: no option needed.
    let m = store.import(&q, &ImportOptions::default()).unwrap();
    assert_eq!(
        (m.image_type, m.source),
        (ImageType::Zvol, SourceType::Qcow2)
    );
    assert_eq!((m.name.as_str(), m.virtual_size), ("vm", Some(1 << 30)));
    assert_eq!(m.id, Digest::of_file(&q).unwrap().hex());
    let d = store.disk_image("vm").unwrap();
    assert_eq!((d.format, d.virtual_size), (DiskFormat::Qcow2, 1 << 30));
    assert_eq!(fs::read(&d.path).unwrap(), fs::read(&q).unwrap());
    assert!(!store.dir().join(&m.id).join("rootfs").exists());
    let e = store.zone_image("vm").unwrap_err().to_string();
    assert!(e.contains("is a disk image (zvol)"), "{e}");
    // A raw one needs saying so; a root filesystem image is no disk.
    let raw = t.0.join("raw.img");
    fs::write(&raw, vec![1u8; 4096]).unwrap();
    let e = store
        .import(&raw, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--disk raw"), "{e}");
    let opts = ImportOptions {
        disk: Some(DiskFormat::Raw),
        ..Default::default()
    };
    let r = store.import(&raw, &opts).unwrap();
    assert_eq!(
        (r.source, r.size, r.virtual_size),
        (SourceType::Raw, 4096, Some(4096))
    );
    let tarball = t.0.join("root.tar");
    fs::write(&tarball, tar_of(&[E::File("etc/hostname", "x\n")])).unwrap();
    let opts = ImportOptions {
        rootfs: true,
        ..Default::default()
    };
    let os = store.import(&tarball, &opts).unwrap();
    assert_eq!(os.image_type, ImageType::ZoneDataset);
    let e = store.disk_image(&os.id).unwrap_err().to_string();
    assert!(e.contains("needs a disk image"), "{e}");
    // Refused disks leave nothing.
    let back = t.0.join("back.qcow2");
    fs::write(
        &back,
        super::qcow2::tests::header(1 << 20, Some("/etc/shadow"), &[]),
    )
    .unwrap();
    assert_fails_clean(&store, &back, false, "has a backing file '/etc/shadow'");
    assert_fails_clean(&store, &q, true, "not a root filesystem");
}
