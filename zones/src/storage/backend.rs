//! The backend trait, the per-zone record, and the calls the rest of the system makes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{btrfs, dir, overlay, zfs, StorageError};

/// The zonecfg `storage` property: `overlay` | `dir` | `btrfs[:PATH]` | `zfs:POOL/DATASET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Kind {
    Overlay,
    Dir,
    /// Image subvolumes under PATH (default: `<zonepath>/..`), on the zonepath's btrfs.
    Btrfs {
        path: Option<PathBuf>,
    },
    /// Image datasets and zone clones are children of this dataset.
    Zfs {
        dataset: String,
    },
}

impl Kind {
    pub fn parse(text: &str) -> Result<Kind, StorageError> {
        let bad = |why: &str| StorageError::BadKind {
            value: text.to_string(),
            why: why.to_string(),
        };
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        match (name, arg) {
            ("overlay", None) => Ok(Kind::Overlay),
            ("dir", None) => Ok(Kind::Dir),
            ("btrfs", None) => Ok(Kind::Btrfs { path: None }),
            ("btrfs", Some(p)) if p.starts_with('/') => Ok(Kind::Btrfs {
                path: Some(PathBuf::from(p)),
            }),
            ("btrfs", Some(_)) => Err(bad("btrfs:PATH needs an absolute path")),
            ("zfs", Some(d)) if zfs::valid_dataset(d) && d.contains('/') => Ok(Kind::Zfs {
                dataset: d.to_string(),
            }),
            ("zfs", _) => Err(bad("expected zfs:POOL/DATASET")),
            ("overlay" | "dir", Some(_)) => Err(bad("overlay and dir take no argument")),
            _ => Err(bad(
                "expected overlay, dir, btrfs[:PATH] or zfs:POOL/DATASET",
            )),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Overlay => write!(f, "overlay"),
            Kind::Dir => write!(f, "dir"),
            Kind::Btrfs { path: None } => write!(f, "btrfs"),
            Kind::Btrfs { path: Some(p) } => write!(f, "btrfs:{}", p.display()),
            Kind::Zfs { dataset } => write!(f, "zfs:{dataset}"),
        }
    }
}

/// `<zonepath>/storage.json`: how a zone's root was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    /// The image id the zone was made from.
    pub image: Option<String>,
    /// overlay: the lower dir (the image's rootfs).
    #[serde(default)]
    pub lower: Option<PathBuf>,
    /// zfs: the zone's dataset.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The disk quota in force (bytes), re-applied after a rollback or an attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<u64>,
    /// zfs: the snapshot of another zone this zone was cloned from (removed with the zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl Record {
    /// A record of `kind` for a zone made from `image`.
    pub fn new(kind: Kind, image: Option<String>) -> Record {
        Record {
            kind,
            image,
            lower: None,
            dataset: None,
            quota: None,
            origin: None,
        }
    }
}

/// One zone snapshot, as `zoneadm list-snapshots` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub name: String,
    /// Seconds since the epoch.
    pub created: i64,
}

/// What a zone is made from.
#[derive(Debug, Clone)]
pub struct ImageRef<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
}

/// One storage backend.
pub trait Backend {
    /// Make the zone's root (`<zonepath>/root`, or what activate mounts there) from an image.
    fn provision(
        &self,
        image: &ImageRef,
        zonepath: &Path,
        zone: &str,
    ) -> Result<Record, StorageError>;
    /// Make `zonepath` a copy-on-write sibling of the zone at `src` (halted).
    fn clone_zone(
        &self,
        src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        zone: &str,
    ) -> Result<Record, StorageError>;
    /// Make `<zonepath>/root` usable (mount); idempotent.
    fn activate(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError>;
    /// Undo `activate`; idempotent.
    fn deactivate(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError>;
    /// Remove what `provision` or `clone_zone` made.
    fn destroy(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError>;
    /// Limit the zone's own disk use to `bytes` (`None`: no limit). Backends that cannot
    /// enforce a quota refuse one.
    fn set_quota(
        &self,
        zonepath: &Path,
        rec: &Record,
        bytes: Option<u64>,
    ) -> Result<(), StorageError> {
        let _ = (zonepath, bytes);
        match bytes {
            None => Ok(()),
            Some(_) => Err(quota_refused(&rec.kind)),
        }
    }
    /// Take the snapshot `name` of the zone's root (halted zone).
    fn snapshot(&self, zonepath: &Path, rec: &Record, name: &str) -> Result<(), StorageError>;
    /// Put the zone's root back to the snapshot `name` (halted zone).
    fn rollback(&self, zonepath: &Path, rec: &Record, name: &str) -> Result<(), StorageError>;
    /// The zone's snapshots, oldest first. By default those kept under
    /// `<zonepath>/snapshots/` (see `snapdir`); zfs lists its own.
    fn snapshots(&self, zonepath: &Path, _rec: &Record) -> Result<Vec<Snapshot>, StorageError> {
        super::snapdir::list(zonepath)
    }
    /// Remove the snapshot `name`. By default: its tree under `<zonepath>/snapshots/`,
    /// removed with [`Backend::remove_snapshot_tree`], then its entry.
    fn delete_snapshot(
        &self,
        zonepath: &Path,
        _rec: &Record,
        name: &str,
    ) -> Result<(), StorageError> {
        self.remove_snapshot_tree(&super::snapdir::path(zonepath, name))?;
        super::snapdir::remove(zonepath, name)
    }
    /// Removes one snapshot's tree kept under `<zonepath>/snapshots/` (a plain copy by
    /// default; btrfs deletes a subvolume).
    fn remove_snapshot_tree(&self, path: &Path) -> Result<(), StorageError> {
        super::remove_tree(path)
    }
    /// `zoneadm detach`: leave at the zonepath what another host needs to attach the zone.
    fn detach(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }
    /// `zoneadm attach`: take over the zone's files (maybe made by another host) with this
    /// backend; returns the record for this host.
    fn attach(&self, zonepath: &Path, rec: &Record, zone: &str) -> Result<Record, StorageError>;
}

/// The error for a quota on a backend that cannot enforce one.
pub fn quota_refused(kind: &Kind) -> StorageError {
    StorageError::BadKind {
        value: kind.to_string(),
        why: "this storage backend cannot enforce a disk quota; clear the zone's quota \
              (zonecfg clear quota) or use storage btrfs or zfs"
            .into(),
    }
}

/// Whether zones on `kind` can have a quota.
pub fn supports_quota(kind: &Kind) -> bool {
    matches!(kind, Kind::Btrfs { .. } | Kind::Zfs { .. })
}

/// The backend for `kind`.
pub fn backend(kind: &Kind) -> Box<dyn Backend> {
    match kind {
        Kind::Overlay => Box::new(overlay::Overlay),
        Kind::Dir => Box::new(dir::Dir),
        Kind::Btrfs { path } => Box::new(btrfs::Btrfs { base: path.clone() }),
        Kind::Zfs { dataset } => Box::new(zfs::Zfs {
            parent: dataset.clone(),
        }),
    }
}

const RECORD: &str = "storage.json";

/// The backend of a zone: its `storage` property; else the host's `storage` in zones.conf (a
/// kind, or `auto`); else auto-detected from the filesystem the zonepath is on
/// ([`detect`]). Overlay is what detection falls back to.
pub fn resolve(
    prop: Option<&str>,
    host_default: Option<&str>,
    zonepath: &Path,
) -> Result<Kind, StorageError> {
    match prop.or(host_default).map(str::trim) {
        Some("auto") | Some("") | None => Ok(detect(zonepath)),
        Some(text) => Kind::parse(text),
    }
}

/// zfs (as children of the dataset) when the zonepath's nearest existing ancestor is a ZFS
/// dataset (OpenZFS or zfs-fuse), btrfs when it is on btrfs, overlay otherwise.
pub fn detect(zonepath: &Path) -> Kind {
    let mut p = zonepath.parent().unwrap_or(zonepath);
    while !p.exists() {
        match p.parent() {
            Some(up) => p = up,
            None => break,
        }
    }
    if let Some((fstype, source)) = mount_of(p) {
        if (fstype == "zfs" || fstype == "fuse.zfs") && zfs::valid_dataset(&source) {
            return Kind::Zfs { dataset: source };
        }
    }
    if super::btrfs_ioctl::is_btrfs(p) {
        return Kind::Btrfs { path: None };
    }
    Kind::Overlay
}

/// The filesystem type and source of the mount `path` is on (mountinfo: the longest mount
/// point that contains it).
fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = fs::canonicalize(path).ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String, String)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        let (Some(mp), Some(fstype), Some(source)) = (f.get(4), f.get(sep + 1), f.get(sep + 2))
        else {
            continue;
        };
        let mp = PathBuf::from(mp.replace("\\040", " "));
        if path.starts_with(&mp) && best.as_ref().is_none_or(|b| mp.as_os_str().len() >= b.0) {
            best = Some((mp.as_os_str().len(), fstype.to_string(), source.to_string()));
        }
    }
    best.map(|(_, t, s)| (t, s))
}

/// The record of a zone installed from an image (`None`: a plain directory).
pub fn read_record(zonepath: &Path) -> Result<Option<Record>, StorageError> {
    let path = zonepath.join(RECORD);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| StorageError::Bad {
                path,
                msg: format!("not a storage record: {e}"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::Io { path, source: e }),
    }
}

pub fn write_record(zonepath: &Path, rec: &Record) -> Result<(), StorageError> {
    let json = serde_json::to_vec_pretty(rec).expect("a record serializes");
    crate::store::write_atomic(zonepath, RECORD, &json).map_err(|e| StorageError::Bad {
        path: zonepath.join(RECORD),
        msg: e.to_string(),
    })
}

/// Install a zone from an image: the backend's provision, the quota, then the record. On
/// failure what was made is removed.
pub fn provision(
    kind: &Kind,
    image: &ImageRef,
    zonepath: &Path,
    zone: &str,
    quota: Option<u64>,
) -> Result<Record, StorageError> {
    if quota.is_some() && !supports_quota(kind) {
        return Err(quota_refused(kind));
    }
    let b = backend(kind);
    let rec = b.provision(image, zonepath, zone)?;
    seal_zonepath(zonepath)?;
    finish_made(b.as_ref(), zonepath, rec, quota)
}

/// Apply the quota and write the record of a zone root just made; undo it on failure.
fn finish_made(
    b: &dyn Backend,
    zonepath: &Path,
    mut rec: Record,
    quota: Option<u64>,
) -> Result<Record, StorageError> {
    let done = (|| {
        if quota.is_some() {
            b.set_quota(zonepath, &rec, quota)?;
            rec.quota = quota;
        }
        write_record(zonepath, &rec)
    })();
    if let Err(e) = done {
        let _ = b.deactivate(zonepath, &rec);
        let _ = b.destroy(zonepath, &rec);
        let _ = fs::remove_file(zonepath.join(RECORD));
        return Err(e);
    }
    Ok(rec)
}

/// Clone the zone at `src` into `zonepath` with the source's backend; `None` when the source
/// has no record (a plain directory: the caller copies).
pub fn clone_zone(
    src: &Path,
    zonepath: &Path,
    zone: &str,
    quota: Option<u64>,
) -> Result<Option<Record>, StorageError> {
    let Some(src_rec) = read_record(src)? else {
        return Ok(None);
    };
    if quota.is_some() && !supports_quota(&src_rec.kind) {
        return Err(quota_refused(&src_rec.kind));
    }
    let b = backend(&src_rec.kind);
    let rec = b.clone_zone(src, &src_rec, zonepath, zone)?;
    seal_zonepath(zonepath)?;
    finish_made(b.as_ref(), zonepath, rec, quota).map(Some)
}

/// The record of an installed zone for the snapshot verbs. A zone installed from a
/// directory or tarball (`install -d`) has none: its root is a plain directory, which the
/// `dir` backend snapshots as copies under `<zonepath>/snapshots/` (illumos snapshots only
/// ZFS zonepaths; a copy is what `zoneadm clone` does for the others).
fn need_record(zonepath: &Path) -> Result<Record, StorageError> {
    Ok(read_record(zonepath)?.unwrap_or_else(|| Record::new(Kind::Dir, None)))
}

/// A snapshot name: letters, digits and `_.:-`, not starting with `_` (kept for the
/// system's own snapshots), at most 64 characters.
pub fn check_snapshot_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['_', '.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StorageError::BadKind {
            value: name.to_string(),
            why: "a snapshot name is 1-64 letters, digits, '_', '.', ':' or '-', starting \
                  with a letter or digit"
                .into(),
        })
    }
}

/// `zoneadm snapshot NAME`.
pub fn snapshot(zonepath: &Path, name: &str) -> Result<(), StorageError> {
    check_snapshot_name(name)?;
    let rec = need_record(zonepath)?;
    let b = backend(&rec.kind);
    if b.snapshots(zonepath, &rec)?.iter().any(|s| s.name == name) {
        return Err(StorageError::BadKind {
            value: name.to_string(),
            why: "the zone already has a snapshot of that name".into(),
        });
    }
    b.snapshot(zonepath, &rec, name)
}

fn existing(
    b: &dyn Backend,
    zonepath: &Path,
    rec: &Record,
    name: &str,
) -> Result<Vec<Snapshot>, StorageError> {
    let all = b.snapshots(zonepath, rec)?;
    if !all.iter().any(|s| s.name == name) {
        return Err(StorageError::BadKind {
            value: name.to_string(),
            why: "no such snapshot; see zoneadm list-snapshots".into(),
        });
    }
    Ok(all)
}

/// `zoneadm rollback [-r] NAME` (the zone halted): snapshots taken after NAME are refused
/// unless `destroy_later`, which deletes them (as `zfs rollback -r` does).
pub fn rollback(zonepath: &Path, name: &str, destroy_later: bool) -> Result<(), StorageError> {
    let later = check_rollback(zonepath, name, destroy_later)?;
    let rec = need_record(zonepath)?;
    let b = backend(&rec.kind);
    for l in later.iter().rev() {
        b.delete_snapshot(zonepath, &rec, l)?;
    }
    b.deactivate(zonepath, &rec)?;
    b.rollback(zonepath, &rec, name)?;
    if rec.quota.is_some() {
        b.set_quota(zonepath, &rec, rec.quota)?;
    }
    Ok(())
}

/// Whether `rollback` can go to `name`: it exists, and no newer snapshot does unless
/// `destroy_later`. Returns the newer snapshots (which the rollback deletes).
pub fn check_rollback(
    zonepath: &Path,
    name: &str,
    destroy_later: bool,
) -> Result<Vec<String>, StorageError> {
    let rec = need_record(zonepath)?;
    let b = backend(&rec.kind);
    let all = existing(b.as_ref(), zonepath, &rec, name)?;
    let pos = all.iter().position(|s| s.name == name).unwrap_or(0);
    let later: Vec<&str> = all[pos + 1..].iter().map(|s| s.name.as_str()).collect();
    if !later.is_empty() && !destroy_later {
        return Err(StorageError::BadKind {
            value: name.to_string(),
            why: format!(
                "newer snapshots exist ({}); rollback -r deletes them",
                later.join(", ")
            ),
        });
    }
    Ok(later.into_iter().map(str::to_string).collect())
}

/// `zoneadm list-snapshots`.
pub fn snapshots(zonepath: &Path) -> Result<Vec<Snapshot>, StorageError> {
    let rec = need_record(zonepath)?;
    backend(&rec.kind).snapshots(zonepath, &rec)
}

/// `zoneadm delete-snapshot NAME`.
pub fn delete_snapshot(zonepath: &Path, name: &str) -> Result<(), StorageError> {
    let rec = need_record(zonepath)?;
    let b = backend(&rec.kind);
    existing(b.as_ref(), zonepath, &rec, name)?;
    b.delete_snapshot(zonepath, &rec, name)
}

/// After `zoneadm move`: the zone's files are at `zonepath` now (zfs: the dataset's
/// mountpoint follows).
pub fn moved(zonepath: &Path) -> Result<(), StorageError> {
    if let Some(rec) = read_record(zonepath)? {
        if let (Kind::Zfs { .. }, Some(ds)) = (&rec.kind, rec.dataset.as_deref()) {
            let mp = format!("mountpoint={}", zonepath.join("root").display());
            zfs::zfs(&["set", &mp, ds])?;
        }
    }
    Ok(())
}

/// `zoneadm detach`: the backend leaves what another host needs at the zonepath.
pub fn detach(zonepath: &Path) -> Result<(), StorageError> {
    match read_record(zonepath)? {
        Some(rec) => {
            let b = backend(&rec.kind);
            b.deactivate(zonepath, &rec)?;
            b.detach(zonepath, &rec)
        }
        None => Ok(()),
    }
}

/// `zoneadm attach`: take the zone's files over with `kind` (this host's backend for the
/// zone); `lower` is this host's rootfs of the zone's image (overlay). Returns the record.
pub fn attach(
    zonepath: &Path,
    kind: &Kind,
    zone: &str,
    lower: Option<&Path>,
) -> Result<Option<Record>, StorageError> {
    let Some(mut rec) = read_record(zonepath)? else {
        return Ok(None);
    };
    if std::mem::discriminant(kind) == std::mem::discriminant(&rec.kind) {
        rec.kind = kind.clone();
    }
    if let (Kind::Overlay, Some(l)) = (&rec.kind, lower) {
        rec.lower = Some(l.to_path_buf());
    }
    let b = backend(&rec.kind);
    let new = b.attach(zonepath, &rec, zone)?;
    seal_zonepath(zonepath)?;
    if new.quota.is_some() {
        b.set_quota(zonepath, &new, new.quota)?;
    }
    write_record(zonepath, &new)?;
    Ok(Some(new))
}

/// Before the zone's container is created.
/// Make the zonepath 0700 (its owner is left alone: the zone's root, which must walk through
/// it to its root filesystem): host users never reach the zone's set-id files or device
/// nodes through it. A missing zonepath is fine.
pub fn seal_zonepath(zonepath: &Path) -> Result<(), StorageError> {
    super::seal_dir(zonepath)
}

pub fn activate(zonepath: &Path) -> Result<(), StorageError> {
    seal_zonepath(zonepath)?;
    match read_record(zonepath)? {
        Some(rec) => backend(&rec.kind).activate(zonepath, &rec),
        None => Ok(()),
    }
}

/// Make the zone's own files match its user-namespace range at `base` (0: none), see
/// [`crate::idshift`]: an overlay zone's upper dir, or the whole root of a copy, is shifted;
/// an overlay's shared lower dir is id-mapped at [`activate`] instead. The root must not be
/// mounted (the zone halted).
pub fn shift_ids(zonepath: &Path, base: u32) -> Result<(), StorageError> {
    if crate::idshift::recorded(zonepath) == base {
        return Ok(());
    }
    let rec = read_record(zonepath)?;
    let root = zonepath.join("root");
    let (dir, mounted_here) = match &rec {
        Some(r) if matches!(r.kind, Kind::Overlay) => (zonepath.join("upper"), false),
        // A dataset's files are there only while it is mounted (zfs): mount it for the shift.
        Some(r) if !is_mount_point(&root) => {
            backend(&r.kind).activate(zonepath, r)?;
            (root.clone(), is_mount_point(&root))
        }
        _ => (root.clone(), false),
    };
    let shifted = crate::idshift::shift(zonepath, &dir, base).map_err(|e| StorageError::Bad {
        path: dir.clone(),
        msg: format!("shifting file owners to the zone's id range: {e}"),
    });
    if let (true, Some(r)) = (mounted_here, &rec) {
        backend(&r.kind).deactivate(zonepath, r)?;
    }
    shifted
}

/// After the zone's container is gone.
pub fn deactivate(zonepath: &Path) -> Result<(), StorageError> {
    match read_record(zonepath)? {
        Some(rec) => backend(&rec.kind).deactivate(zonepath, &rec),
        None => Ok(()),
    }
}

/// Uninstall: the backend's destroy (then the record). A zone without a record is left to
/// the caller's `remove_tree`.
pub fn destroy(zonepath: &Path) -> Result<(), StorageError> {
    match read_record(zonepath)? {
        Some(rec) => {
            let b = backend(&rec.kind);
            b.deactivate(zonepath, &rec)?;
            b.destroy(zonepath, &rec)?;
            let _ = fs::remove_file(zonepath.join(RECORD));
        }
        // An `install -d` zone: its snapshots are plain copies (see `need_record`).
        None => super::remove_tree(&super::snapdir::dir(zonepath))?,
    }
    Ok(())
}

/// Whether `rel` exists in the zone's root, mounted or not (overlay: upper, then lower).
pub fn root_has(zonepath: &Path, rel: &str) -> bool {
    let direct = zonepath.join("root").join(rel);
    if fs::symlink_metadata(&direct).is_ok() {
        return true;
    }
    match read_record(zonepath) {
        Ok(Some(Record {
            kind: Kind::Overlay,
            lower: Some(lower),
            ..
        })) => {
            let up = zonepath.join("upper").join(rel);
            match fs::symlink_metadata(&up) {
                // A 0/0 char device is an overlay whiteout: deleted in this zone.
                Ok(m) => !overlay::is_whiteout(&m),
                Err(_) => fs::symlink_metadata(lower.join(rel)).is_ok(),
            }
        }
        _ => false,
    }
}

/// Zones whose record names `image_id` (installed from it), and kvm zones whose disks use
/// it.
pub fn image_users(store: &crate::store::Store, image_id: &str) -> Vec<String> {
    let mut users = crate::kvm_disk::image_users(store, image_id);
    for e in store.list().unwrap_or_default() {
        let Some(zp) = e.zonepath.as_deref() else {
            continue;
        };
        let host = crate::spec::bundle_dir(store.altroot(), zp);
        if let Ok(Some(rec)) = read_record(&host) {
            if rec.image.as_deref() == Some(image_id) && !users.contains(&e.name) {
                users.push(e.name.clone());
            }
        }
    }
    users
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(parent)) = (fs::symlink_metadata(path), path.parent()) else {
        return false;
    };
    fs::symlink_metadata(parent).is_ok_and(|p| p.dev() != m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_then_the_host_then_detection_decide() {
        let zp = Path::new("/proc/self/zones/z");
        assert_eq!(resolve(Some("dir"), Some("btrfs"), zp).unwrap(), Kind::Dir);
        assert_eq!(
            resolve(None, Some("zfs:tank/z"), zp).unwrap(),
            Kind::Zfs {
                dataset: "tank/z".into()
            }
        );
        // procfs is neither zfs nor btrfs: overlay.
        assert_eq!(resolve(None, Some("auto"), zp).unwrap(), Kind::Overlay);
        assert_eq!(resolve(None, None, zp).unwrap(), Kind::Overlay);
        let e = resolve(None, Some("nfs"), zp).unwrap_err().to_string();
        assert!(e.contains("nfs"), "{e}");
    }

    #[test]
    fn snapshot_names() {
        for ok in ["s1", "before-upgrade", "2026.11.28:1"] {
            check_snapshot_name(ok).unwrap();
        }
        for bad in ["", "_detach", "-x", "a/b", "a@b", &"x".repeat(65)] {
            assert!(check_snapshot_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_parse_and_print() {
        for text in ["overlay", "dir", "btrfs", "btrfs:/srv/b", "zfs:tank/zones"] {
            assert_eq!(Kind::parse(text).unwrap().to_string(), text);
        }
        for (text, why) in [
            ("zfs", "zfs:POOL/DATASET"),
            ("zfs:tank", "zfs:POOL/DATASET"),
            ("btrfs:rel", "absolute"),
            ("nfs", "expected overlay"),
            ("dir:x", "no argument"),
        ] {
            let e = Kind::parse(text).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(text), "{e}");
        }
    }
}
