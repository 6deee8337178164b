//! A kvm zone's disks: copy-on-write clones of imported disk images.
//!
//! Each `diskN` attr (`image=ID[,size=SIZE][,boot=true][,model=virtio|ide]`, see [`crate::kvm`])
//! becomes `<zonepath>/vm/disks/diskN.qcow2`, a qcow2 file whose backing file is the image as
//! the zone sees it, `/vm/images/<id>` (a read-only file bind of the image in the store):
//!
//! ```text
//! qemu-img create -f qcow2 -F raw|qcow2 -b /vm/images/<id> -u <zonepath>/vm/disks/diskN.qcow2 SIZE
//! ```
//!
//! `-u` (unsafe) writes the backing path without opening it (it exists only in the zone).
//! A clone holds only the blocks its VM writes: any number of VMs share the image's blocks, on
//! every storage backend. (zvols on zfs are not used yet: the clone is a file on the zone's
//! storage whatever it is.) The clones belong to the qemu user (`owner`, mode 0600) in a
//! root-owned directory, which the VM cannot add files to.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::image::{qcow2, DiskImage, ImageError, ImageStore};
use crate::kvm::{DiskSpec, KvmConfig};
use crate::model::Zone;

/// Where a zone's clones are, below its zonepath (host) and in the zone.
pub const DISKS_DIR: &str = "vm/disks";
/// Where the zone sees its clones.
pub const ZONE_DISKS_DIR: &str = "/vm/disks";
/// Where the zone sees the images its clones are backed by (`/vm/images/<id>`).
pub const ZONE_IMAGES_DIR: &str = "/vm/images";

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("zone '{zone}': {disk}: {why}")]
    Disk {
        zone: String,
        disk: String,
        why: String,
    },
    #[error("zone '{zone}': {disk}: {source}")]
    Image {
        zone: String,
        disk: String,
        source: Box<ImageError>,
    },
    #[error("zone '{zone}': the disks total {total} but the zone's quota is {quota}: raise the quota or shrink the disks")]
    Quota {
        zone: String,
        total: String,
        quota: String,
    },
    #[error(
        "qemu-img is not installed (apt-get install qemu-utils): it makes the zone's disk clones"
    )]
    NoQemuImg,
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One disk of a VM, as provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDisk {
    /// `disk0` ...
    pub name: String,
    /// The clone on the host: `<zonepath>/vm/disks/diskN.qcow2`.
    pub host_path: PathBuf,
    /// The clone in the zone: `/vm/disks/diskN.qcow2`.
    pub zone_path: PathBuf,
    /// The image it is backed by; the zone must see `image.path` at [`ZoneDisk::image_zone_path`].
    pub image: DiskImage,
    /// `virtio` or `ide`.
    pub model: String,
    pub boot: bool,
}

impl ZoneDisk {
    /// Where the zone must see the image (a read-only file bind of `image.path`).
    pub fn image_zone_path(&self) -> PathBuf {
        image_zone_path(&self.image.id)
    }
}

/// `/vm/images/<id>`.
pub fn image_zone_path(id: &str) -> PathBuf {
    Path::new(ZONE_IMAGES_DIR).join(id)
}

fn clone_name(spec: &DiskSpec) -> String {
    format!("{}.qcow2", spec.name)
}

/// The disk's size: its own, else the image's.
fn disk_size(spec: &DiskSpec, image: &DiskImage) -> u64 {
    spec.size.unwrap_or(image.virtual_size)
}

/// For verify: every disk's image exists and is a disk image, every disk is at least its
/// image's size, and the disks together fit the zone's `quota` when one is set. Returns the
/// images, in the order of `cfg.disks`.
pub fn check(
    store: &ImageStore,
    zone: &Zone,
    cfg: &KvmConfig,
) -> Result<Vec<DiskImage>, DiskError> {
    let mut images = Vec::new();
    let mut total: u64 = 0;
    for spec in &cfg.disks {
        let image = store
            .disk_image(&spec.image)
            .map_err(|source| DiskError::Image {
                zone: zone.zonename.clone(),
                disk: spec.name.clone(),
                source: Box::new(source),
            })?;
        let size = disk_size(spec, &image);
        if size < image.virtual_size {
            return Err(DiskError::Disk {
                zone: zone.zonename.clone(),
                disk: spec.name.clone(),
                why: format!(
                    "size {} is smaller than image '{}' ({}): set size to at least that",
                    human(size),
                    image.name,
                    human(image.virtual_size)
                ),
            });
        }
        total = total.saturating_add(size);
        images.push(image);
    }
    if let Some(q) = zone.quota {
        if total > q.bytes() {
            return Err(DiskError::Quota {
                zone: zone.zonename.clone(),
                total: human(total),
                quota: q.to_string(),
            });
        }
    }
    Ok(images)
}

fn human(bytes: u64) -> String {
    crate::image::progress::human(bytes)
}

/// Removes what a failed provision made.
struct Undo(Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = fs::remove_file(p).or_else(|_| fs::remove_dir(p));
        }
    }
}

/// Make the zone's disk clones `<zonepath>/vm/disks/diskN.qcow2` (`zonepath`: the zone's
/// directory on the host), owned by `owner` (the host uid/gid of the zone's qemu user), after
/// [`check`]. On error nothing is left.
pub fn provision(
    store: &ImageStore,
    zone: &Zone,
    cfg: &KvmConfig,
    zonepath: &Path,
    owner: (u32, u32),
) -> Result<Vec<ZoneDisk>, DiskError> {
    let images = check(store, zone, cfg)?;
    if cfg.disks.is_empty() {
        return Ok(Vec::new());
    }
    let qemu_img = find_qemu_img()?;
    let mut undo = Undo(Vec::new());
    let dir = zonepath.join(DISKS_DIR);
    for d in [zonepath.join("vm"), dir.clone()] {
        match fs::create_dir(&d) {
            Ok(()) => {
                undo.0.push(d.clone());
                fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).map_err(io_at(&d))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_at(&d)(e)),
        }
    }
    let mut disks = Vec::new();
    for (spec, image) in cfg.disks.iter().zip(images) {
        let host_path = dir.join(clone_name(spec));
        if fs::symlink_metadata(&host_path).is_ok() {
            return Err(DiskError::Disk {
                zone: zone.zonename.clone(),
                disk: spec.name.clone(),
                why: format!(
                    "{} already exists: uninstall the zone first",
                    host_path.display()
                ),
            });
        }
        let tmp = dir.join(format!(".{}.new", clone_name(spec)));
        let _ = fs::remove_file(&tmp);
        undo.0.push(tmp.clone());
        make_clone(&qemu_img, &image, disk_size(spec, &image), &tmp).map_err(|why| {
            DiskError::Disk {
                zone: zone.zonename.clone(),
                disk: spec.name.clone(),
                why,
            }
        })?;
        std::os::unix::fs::chown(&tmp, Some(owner.0), Some(owner.1)).map_err(io_at(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io_at(&tmp))?;
        fs::rename(&tmp, &host_path).map_err(io_at(&host_path))?;
        undo.0.pop();
        undo.0.push(host_path.clone());
        disks.push(zone_disk(spec, image, host_path));
    }
    undo.0.clear();
    Ok(disks)
}

fn zone_disk(spec: &DiskSpec, image: DiskImage, host_path: PathBuf) -> ZoneDisk {
    ZoneDisk {
        name: spec.name.clone(),
        host_path,
        zone_path: Path::new(ZONE_DISKS_DIR).join(clone_name(spec)),
        image,
        model: spec.model.clone(),
        boot: spec.boot,
    }
}

/// `qemu-img` on `$PATH`.
fn find_qemu_img() -> Result<PathBuf, DiskError> {
    find_qemu_img_in(&std::env::var_os("PATH").unwrap_or_default())
}

fn find_qemu_img_in(path: &std::ffi::OsStr) -> Result<PathBuf, DiskError> {
    std::env::split_paths(path)
        .map(|d| d.join("qemu-img"))
        .find(|p| p.is_file())
        .ok_or(DiskError::NoQemuImg)
}

/// `qemu-img create -f qcow2 -F FMT -b /vm/images/ID -u FILE SIZE`.
fn make_clone(qemu_img: &Path, image: &DiskImage, size: u64, file: &Path) -> Result<(), String> {
    let out = Command::new(qemu_img)
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            image.format.as_str(),
            "-b",
        ])
        .arg(image_zone_path(&image.id))
        .arg("-u")
        .arg(file)
        .arg(size.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", qemu_img.display()))?;
    if !out.status.success() {
        return Err(format!(
            "qemu-img create failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The disks [`provision`] made, for boot: each clone must be there, a qcow2 file backed by
/// its image's in-zone path and by nothing else.
pub fn zone_disks(
    store: &ImageStore,
    zone: &Zone,
    cfg: &KvmConfig,
    zonepath: &Path,
) -> Result<Vec<ZoneDisk>, DiskError> {
    let images = check(store, zone, cfg)?;
    let dir = zonepath.join(DISKS_DIR);
    let mut disks = Vec::new();
    for (spec, image) in cfg.disks.iter().zip(images) {
        let host_path = dir.join(clone_name(spec));
        let bad = |why: String| DiskError::Disk {
            zone: zone.zonename.clone(),
            disk: spec.name.clone(),
            why,
        };
        let head = read_head(&host_path).map_err(|e| {
            bad(if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{} is missing: install the zone (zoneadm install)",
                    host_path.display()
                )
            } else {
                format!("{}: {e}", host_path.display())
            })
        })?;
        let h = qcow2::parse(&head).map_err(|e| bad(format!("{}: {e}", host_path.display())))?;
        let want = image_zone_path(&image.id);
        if h.backing_file.as_deref() != want.to_str()
            || h.backing_format.as_deref() != Some(image.format.as_str())
            || h.data_file.is_some()
        {
            return Err(bad(format!(
                "{} is not a clone of image '{}' ({}): reinstall the zone",
                host_path.display(),
                image.name,
                want.display()
            )));
        }
        disks.push(zone_disk(spec, image, host_path));
    }
    Ok(disks)
}

/// The start of a clone (a regular file, not followed through a symlink).
fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut head = Vec::new();
    f.take(qcow2::MAX_HEADER).read_to_end(&mut head)?;
    Ok(head)
}

/// qemu's arguments for the disks: a `-drive` (no device of its own) and a `-device` each;
/// the disk with `boot=true` gets `bootindex=0`.
pub fn qemu_args(disks: &[ZoneDisk]) -> Vec<String> {
    let mut args = Vec::new();
    for d in disks {
        args.push("-drive".into());
        args.push(format!(
            "file={},format=qcow2,if=none,id={},discard=unmap",
            d.zone_path.display(),
            d.name
        ));
        let device = if d.model == "ide" {
            "ide-hd"
        } else {
            "virtio-blk-pci"
        };
        let mut dev = format!("{device},drive={}", d.name);
        if d.boot {
            dev.push_str(",bootindex=0");
        }
        args.push("-device".into());
        args.push(dev);
    }
    args
}

/// Remove the zone's clones (`<zonepath>/vm/disks`), and `<zonepath>/vm` when that leaves it
/// empty. Nothing there is fine.
pub fn remove(zonepath: &Path) -> Result<(), DiskError> {
    let dir = zonepath.join(DISKS_DIR);
    crate::storage::remove_tree(&dir).map_err(|e| DiskError::Io {
        path: dir.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    let vm = zonepath.join("vm");
    match fs::remove_dir(&vm) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(io_at(&vm)(e)),
    }
}

/// The image keys (`image=` of each `diskN` attr) of `zone`, whatever else the attrs say.
pub fn disk_image_keys(zone: &Zone) -> Vec<String> {
    zone.attr
        .iter()
        .filter(|a| {
            a.name
                .as_deref()
                .and_then(|n| n.strip_prefix("disk"))
                .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
        })
        .filter_map(|a| a.value.as_deref())
        .flat_map(|v| v.split(','))
        .filter_map(|kv| {
            kv.strip_prefix("image=")
                .or_else(|| kv.strip_prefix("image_uuid="))
        })
        .map(str::to_string)
        .collect()
}

/// The kvm zones whose disks use image `image_id` (for `imgadm delete`).
pub fn image_users(zones: &crate::store::Store, image_id: &str) -> Vec<String> {
    let images = ImageStore::open(zones.altroot());
    let mut users = Vec::new();
    for e in zones.list().unwrap_or_default() {
        if e.brand != crate::model::Brand::Kvm {
            continue;
        }
        let Ok(Some(zone)) = zones.load(&e.name) else {
            continue;
        };
        if disk_image_keys(&zone)
            .iter()
            .any(|k| images.get(k).is_ok_and(|m| m.id == image_id))
        {
            users.push(e.name.clone());
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::DiskFormat;
    use crate::model::{Attr, AttrType, Brand};

    fn disk(name: &str, model: &str, boot: bool) -> ZoneDisk {
        ZoneDisk {
            name: name.into(),
            host_path: PathBuf::from(format!("/zones/vm/vm/disks/{name}.qcow2")),
            zone_path: PathBuf::from(format!("/vm/disks/{name}.qcow2")),
            image: DiskImage {
                id: "ab".repeat(32),
                name: "deb".into(),
                format: DiskFormat::Raw,
                virtual_size: 1 << 30,
                path: PathBuf::from("/var/lib/zones/images/x/disk"),
            },
            model: model.into(),
            boot,
        }
    }

    #[test]
    fn qemu_args_name_the_in_zone_clone_and_the_boot_disk() {
        let args = qemu_args(&[disk("disk0", "virtio", true), disk("disk1", "ide", false)]);
        assert_eq!(
            args,
            [
                "-drive",
                "file=/vm/disks/disk0.qcow2,format=qcow2,if=none,id=disk0,discard=unmap",
                "-device",
                "virtio-blk-pci,drive=disk0,bootindex=0",
                "-drive",
                "file=/vm/disks/disk1.qcow2,format=qcow2,if=none,id=disk1,discard=unmap",
                "-device",
                "ide-hd,drive=disk1",
            ]
        );
        assert_eq!(
            disk("disk0", "virtio", true).image_zone_path(),
            PathBuf::from(format!("/vm/images/{}", "ab".repeat(32)))
        );
    }

    #[test]
    fn image_keys_come_from_disk_attrs_only() {
        let mut z = Zone::new("vm");
        z.brand = Brand::Kvm;
        for (n, v) in [
            ("disk0", "image=deb,boot=true"),
            ("disk1", "size=1g,image_uuid=0123abcd"),
            ("diskette", "image=no"),
            ("ram", "image=no"),
        ] {
            z.attr.push(Attr {
                name: Some(n.into()),
                attr_type: Some(AttrType::String),
                value: Some(v.into()),
            });
        }
        assert_eq!(disk_image_keys(&z), ["deb", "0123abcd"]);
    }

    #[test]
    fn a_missing_qemu_img_says_what_to_install() {
        let e = find_qemu_img_in(std::ffi::OsStr::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("apt-get install qemu-utils"), "{e}");
    }

    #[test]
    fn remove_of_nothing_is_fine() {
        let d = std::env::temp_dir().join(format!("zones-kvmdisk-{}", std::process::id()));
        fs::create_dir_all(d.join("vm/disks")).unwrap();
        fs::write(d.join("vm/disks/disk0.qcow2"), b"x").unwrap();
        remove(&d).unwrap();
        assert!(!d.join("vm").exists());
        remove(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}
