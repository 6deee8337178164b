//! Disk images and kvm zones' disk clones: `imgadm import` of raw and qcow2 files (checksummed,
//! listed as `zvol`), copy-on-write clones for kvm zones (`zones::kvm_disk`) that share the
//! image's blocks, and what is refused: a qcow2 with a backing file, a disk past the zone's
//! quota, a missing image, a zone image as a disk, the delete of an image a kvm zone uses.
//! Each test runs in its own alternate root (`-R`) under /var/tmp/runz-tests, removed on drop.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::require_root;
use common::zonehost::ZoneHost;
use serde_json::Value;
use zones::image::digest::Digest;
use zones::image::ImageStore;
use zones::kvm::KvmConfig;
use zones::kvm_disk;
use zones::store::Store;

common::zonehost::host_type!();

/// The owner of the clones in these tests (a zone's qemu user is its id-range base + 100).
const OWNER: (u32, u32) = (4242, 4243);
const MIB: u64 = 1 << 20;

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("kvmdisk", tag, false))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A sparse raw image of `size` MiB with `written` MiB of random data at 1 MiB.
    fn raw_image(&self, name: &str, size: u64, written: u64) -> PathBuf {
        let p = self.file(name);
        let f = fs::File::create(&p).unwrap();
        f.set_len(size * MIB).unwrap();
        drop(f);
        run(Command::new("dd")
            .arg("if=/dev/urandom")
            .arg(format!("of={}", p.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"])
            .arg(format!("count={written}")));
        p
    }

    /// A qcow2 image converted from a raw one.
    fn qcow2_image(&self, name: &str, size: u64, written: u64) -> PathBuf {
        let raw = self.raw_image(&format!("{name}.src"), size, written);
        let p = self.file(name);
        run(Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&p));
        fs::remove_file(raw).unwrap();
        p
    }

    fn images(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok("imgadm", &["list", "-j"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn image(&self, name: &str) -> Value {
        self.images()
            .into_iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no image {name}"))
    }

    /// Names in the image store other than images and the lock (leftover staging dirs).
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.root.join("var/lib/zones/images"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n != ".lock")
            .collect()
    }

    /// A kvm zone with `disks` (`diskN` attr values) and `extra` zonecfg commands.
    fn kvm_zone(&self, zone: &str, disks: &[&str], extra: &str) {
        let mut cfg = format!("create; set zonepath=/zones/{zone}; set brand=kvm; {extra}");
        for (i, d) in disks.iter().enumerate() {
            cfg.push_str(&format!(
                "add attr; set name=disk{i}; set type=string; set value=\"{d}\"; end; "
            ));
        }
        self.ok("zonecfg", &["-z", zone, &cfg]);
    }

    fn zonepath(&self, zone: &str) -> PathBuf {
        zones::spec::bundle_dir(&self.root, Path::new(&format!("/zones/{zone}")))
    }

    /// The zone's config, VM and the image store, as zoneadm would read them.
    fn vm(&self, zone: &str) -> (zones::model::Zone, KvmConfig, ImageStore) {
        let store = Store::open(Some(&self.root)).unwrap();
        let z = store.load(zone).unwrap().unwrap();
        let cfg = KvmConfig::from_zone(&z).unwrap().unwrap();
        (z, cfg, ImageStore::open(&self.root))
    }

    fn provision(&self, zone: &str) -> Result<Vec<kvm_disk::ZoneDisk>, kvm_disk::DiskError> {
        let (z, cfg, images) = self.vm(zone);
        fs::create_dir_all(self.zonepath(zone)).unwrap();
        kvm_disk::provision(&images, &z, &cfg, &self.zonepath(zone), OWNER)
    }

    fn check(&self, zone: &str) -> Result<(), kvm_disk::DiskError> {
        let (z, cfg, images) = self.vm(zone);
        kvm_disk::check(&images, &z, &cfg).map(drop)
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Bytes allocated on disk (what `du` counts).
fn allocated(p: &Path) -> u64 {
    fs::metadata(p).unwrap().blocks() * 512
}

fn have_qemu_img() -> bool {
    let ok = Command::new("qemu-img").arg("--version").output().is_ok();
    if !ok {
        eprintln!("skipping: qemu-img is not installed (apt-get install qemu-utils)");
    }
    ok
}

/// The clone reads as its image: qemu-img compare, with the clone's in-zone backing path
/// replaced by the image's host path.
fn reads_as(clone: &Path, image: &kvm_disk::ZoneDisk) -> bool {
    let fmt = image.image.format.as_str();
    let json = serde_json::json!({
        "driver": "qcow2",
        "file": {"driver": "file", "filename": clone},
        "backing": {"driver": fmt, "file": {"driver": "file", "filename": image.image.path}},
    });
    Command::new("qemu-img")
        .args(["compare", "-U", "-F", fmt])
        .arg(format!("json:{json}"))
        .arg(&image.image.path)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn imports_raw_and_qcow2_and_clones_share_the_images_blocks() {
    if !require_root() || !have_qemu_img() {
        return;
    }
    let h = Host::new("share");
    let raw = h.raw_image("deb.img", 64, 16);
    let qcow = h.qcow2_image("data.qcow2", 128, 8);
    // A raw image needs --disk raw; a qcow2 file is told by its header.
    let e = h.fails("imgadm", &["import", raw.to_str().unwrap()]);
    assert!(e.contains("is imported with --disk raw"), "{e}");
    let out = h.ok(
        "imgadm",
        &[
            "import",
            "--disk",
            "raw",
            "--name",
            "deb",
            raw.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("Imported image deb ("), "{out}");
    h.ok("imgadm", &["import", qcow.to_str().unwrap()]);
    let deb = h.image("deb");
    let data = h.image("data");
    assert_eq!(deb["type"], "zvol");
    assert_eq!(deb["source"], "raw");
    assert_eq!(deb["virtual_size"], 64 * MIB);
    assert_eq!(data["type"], "zvol");
    assert_eq!(data["source"], "qcow2");
    assert_eq!(data["virtual_size"], 128 * MIB);
    // The id is the sha256 of the file.
    assert_eq!(deb["id"], Digest::of_file(&raw).unwrap().hex());
    assert_eq!(data["id"], Digest::of_file(&qcow).unwrap().hex());
    let table = h.ok("imgadm", &["list"]);
    assert!(table.lines().next().unwrap().contains("TYPE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&deb["id"].as_str().unwrap()[..12]) && l.contains("zvol")),
        "{table}"
    );
    // The store's copy: sparse, 0644 in the 0700 store.
    let store = ImageStore::open(&h.root);
    let img = store.disk_image("deb").unwrap();
    assert_eq!(fs::metadata(&img.path).unwrap().mode() & 0o777, 0o644);
    assert_eq!(
        fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(allocated(&img.path) < 20 * MIB, "{}", allocated(&img.path));
    // Re-import: refused.
    let e = h.fails(
        "imgadm",
        &["import", "--disk", "raw", raw.to_str().unwrap()],
    );
    assert!(e.contains("already imported"), "{e}");

    // Zone a: disk0 from deb (boot), disk1 from data, grown to 256m; zone b: disk0 from deb.
    h.kvm_zone("a", &["image=deb,boot=true", "image=data,size=256m"], "");
    h.kvm_zone("b", &["image=deb"], "");
    let a = h.provision("a").unwrap();
    let b = h.provision("b").unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].host_path, h.zonepath("a").join("vm/disks/disk0.qcow2"));
    assert_eq!(a[0].zone_path, Path::new("/vm/disks/disk0.qcow2"));
    for d in a.iter().chain(&b) {
        let m = fs::metadata(&d.host_path).unwrap();
        assert_eq!((m.uid(), m.gid()), OWNER, "{}", d.host_path.display());
        assert_eq!(m.mode() & 0o777, 0o600);
        // The extra space per clone is far below the image's: the image's blocks are shared.
        let extra = allocated(&d.host_path);
        assert!(
            extra * 16 < allocated(&d.image.path),
            "{}: {extra} bytes beside an image of {}",
            d.host_path.display(),
            allocated(&d.image.path)
        );
        assert!(reads_as(&d.host_path, d), "{}", d.host_path.display());
    }
    let info: Value = serde_json::from_slice(
        &Command::new("qemu-img")
            .args(["info", "-U", "--output=json"])
            .arg(&a[1].host_path)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(info["virtual-size"], 256 * MIB);
    assert_eq!(
        info["backing-filename"],
        format!("/vm/images/{}", data["id"].as_str().unwrap())
    );
    assert_eq!(info["backing-filename-format"], "qcow2");
    // For boot: what provision made, and qemu's arguments for it.
    let (z, cfg, images) = h.vm("a");
    assert_eq!(
        kvm_disk::zone_disks(&images, &z, &cfg, &h.zonepath("a")).unwrap(),
        a
    );
    let args = kvm_disk::qemu_args(&a).join(" ");
    assert!(
        args.contains("file=/vm/disks/disk0.qcow2,format=qcow2")
            && args.contains("virtio-blk-pci,drive=disk0,bootindex=0"),
        "{args}"
    );
    let e = h.fails("imgadm", &["create", "-o", "/nonexistent/x.tar", "a"]);
    assert!(e.contains("is a kvm zone"), "{e}");
    // Provisioning twice is refused, and leaves the first clones alone.
    let e = h.provision("a").unwrap_err().to_string();
    assert!(e.contains("already exists"), "{e}");
    assert!(a[0].host_path.exists());

    // The images are in use: delete refused, naming the zones; the table counts them.
    let e = h.fails("imgadm", &["delete", "deb"]);
    assert!(e.contains("used by zone(s): a, b"), "{e}");
    let e = h.fails("imgadm", &["delete", &data["id"].as_str().unwrap()[..12]]);
    assert!(e.contains("used by zone(s): a"), "{e}");
    assert!(h.ok("imgadm", &["vacuum", "-n"]).is_empty());
    // Uninstalled and deleted zones use nothing.
    for zone in ["a", "b"] {
        kvm_disk::remove(&h.zonepath(zone)).unwrap();
        assert!(!h.zonepath(zone).join("vm").exists());
        h.ok("zonecfg", &["-z", zone, "delete", "-F"]);
    }
    h.ok("imgadm", &["delete", "deb"]);
    h.ok("imgadm", &["delete", "data"]);
    assert!(h.images().is_empty());
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());
}

#[test]
fn refuses_bad_images_and_disks_leaving_nothing() {
    if !require_root() || !have_qemu_img() {
        return;
    }
    let h = Host::new("refuse");
    let base = h.qcow2_image("base.qcow2", 32, 1);
    // A qcow2 with a backing file: qemu would open that host path.
    let over = h.file("over.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&base)
        .arg(&over));
    let e = h.fails("imgadm", &["import", over.to_str().unwrap()]);
    assert!(
        e.contains(&format!("has a backing file '{}'", base.display())),
        "{e}"
    );
    // Not whole sectors; the qcow2 magic imported as raw; a FIFO.
    let odd = h.file("odd.img");
    fs::write(&odd, [7u8; 1000]).unwrap();
    let e = h.fails(
        "imgadm",
        &["import", "--disk", "raw", odd.to_str().unwrap()],
    );
    assert!(e.contains("512-byte sectors"), "{e}");
    let e = h.fails(
        "imgadm",
        &["import", "--disk", "raw", base.to_str().unwrap()],
    );
    assert!(e.contains("qcow2 magic"), "{e}");
    let fifo = h.file("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = h.fails(
        "imgadm",
        &["import", "--disk", "raw", fifo.to_str().unwrap()],
    );
    assert!(e.contains("is a FIFO"), "{e}");
    let e = h.fails(
        "imgadm",
        &["import", "--disk", "vmdk", odd.to_str().unwrap()],
    );
    assert!(e.contains("vmdk"), "{e}");
    assert!(h.images().is_empty());
    assert!(h.leftovers().is_empty(), "{:?}", h.leftovers());

    h.ok(
        "imgadm",
        &["import", "--name", "base", base.to_str().unwrap()],
    );
    // A zone image as a disk, and a disk image as a zone's root.
    let rootfs = h.file("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/hostname"), "x\n").unwrap();
    h.ok(
        "imgadm",
        &[
            "import",
            "--rootfs",
            "--name",
            "os",
            rootfs.to_str().unwrap(),
        ],
    );
    assert_eq!(h.image("os")["type"], "zone-dataset");
    h.kvm_zone("osdisk", &["image=os"], "");
    let e = h.check("osdisk").unwrap_err().to_string();
    assert!(
        e.contains("zone 'osdisk': disk0: image 'os'") && e.contains("needs a disk image"),
        "{e}"
    );
    h.ok(
        "zonecfg",
        &["-z", "native", "create; set zonepath=/zones/native"],
    );
    let e = h.fails("zoneadm", &["-z", "native", "install", "-i", "base"]);
    assert!(e.contains("is a disk image (zvol)"), "{e}");
    assert_eq!(h.state("native"), "configured");
    // A missing image.
    h.kvm_zone("noimg", &["image=nosuch"], "");
    let e = h.provision("noimg").unwrap_err().to_string();
    assert!(e.contains("disk0: nosuch: no such image"), "{e}");
    // A disk smaller than its image.
    h.kvm_zone("small", &["image=base,size=16m"], "");
    let e = h.check("small").unwrap_err().to_string();
    assert!(e.contains("smaller than image 'base'"), "{e}");
    // Disks past the zone's quota: refused at check and at provision, nothing made.
    h.kvm_zone(
        "big",
        &["image=base,size=1g", "image=base"],
        "set quota=1g;",
    );
    let e = h.check("big").unwrap_err().to_string();
    assert!(
        e.contains("zone 'big': the disks total 1.0 GiB") && e.contains("quota is 1G"),
        "{e}"
    );
    let e = h.provision("big").unwrap_err().to_string();
    assert!(e.contains("quota"), "{e}");
    for zone in ["noimg", "big"] {
        assert!(!h.zonepath(zone).join("vm").exists(), "{zone}");
    }
    // qemu-img refuses the second disk: the first one's clone and the dirs go too.
    h.kvm_zone("huge", &["image=base", "image=base,size=8000000t"], "");
    let e = h.provision("huge").unwrap_err().to_string();
    assert!(
        e.contains("zone 'huge': disk1: qemu-img create failed") && e.contains("too large"),
        "{e}"
    );
    assert!(!h.zonepath("huge").join("vm").exists());
    // Within the quota it is made.
    h.kvm_zone(
        "fits",
        &["image=base,size=512m", "image=base"],
        "set quota=1g;",
    );
    assert_eq!(h.provision("fits").unwrap().len(), 2);
    kvm_disk::remove(&h.zonepath("fits")).unwrap();
}
