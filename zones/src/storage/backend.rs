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

/// Install a zone from an image: the backend's provision, then the record. On failure what
/// was made is removed.
pub fn provision(
    kind: &Kind,
    image: &ImageRef,
    zonepath: &Path,
    zone: &str,
) -> Result<Record, StorageError> {
    let b = backend(kind);
    let rec = b.provision(image, zonepath, zone)?;
    if let Err(e) = write_record(zonepath, &rec) {
        let _ = b.destroy(zonepath, &rec);
        return Err(e);
    }
    Ok(rec)
}

/// Clone the zone at `src` into `zonepath` with the source's backend; `None` when the source
/// has no record (a plain directory: the caller copies).
pub fn clone_zone(src: &Path, zonepath: &Path, zone: &str) -> Result<Option<Record>, StorageError> {
    let Some(src_rec) = read_record(src)? else {
        return Ok(None);
    };
    let b = backend(&src_rec.kind);
    let rec = b.clone_zone(src, &src_rec, zonepath, zone)?;
    if let Err(e) = write_record(zonepath, &rec) {
        let _ = b.destroy(zonepath, &rec);
        return Err(e);
    }
    Ok(Some(rec))
}

/// Before the zone's container is created.
pub fn activate(zonepath: &Path) -> Result<(), StorageError> {
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
    let dir = match read_record(zonepath)? {
        Some(rec) if matches!(rec.kind, Kind::Overlay) => zonepath.join("upper"),
        _ => zonepath.join("root"),
    };
    crate::idshift::shift(zonepath, &dir, base).map_err(|e| StorageError::Bad {
        path: dir.clone(),
        msg: format!("shifting file owners to the zone's id range: {e}"),
    })
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
    if let Some(rec) = read_record(zonepath)? {
        let b = backend(&rec.kind);
        b.deactivate(zonepath, &rec)?;
        b.destroy(zonepath, &rec)?;
        let _ = fs::remove_file(zonepath.join(RECORD));
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

/// Zones (name, zonepath on this host) whose record names `image_id`.
pub fn image_users(store: &crate::store::Store, image_id: &str) -> Vec<String> {
    let mut users = Vec::new();
    for e in store.list().unwrap_or_default() {
        let Some(zp) = e.zonepath.as_deref() else {
            continue;
        };
        let host = crate::spec::bundle_dir(store.altroot(), zp);
        if let Ok(Some(rec)) = read_record(&host) {
            if rec.image.as_deref() == Some(image_id) {
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
