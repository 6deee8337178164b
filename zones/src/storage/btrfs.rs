//! `btrfs[:PATH]`: an image becomes a read-only subvolume `PATH/.zone-images/<image id>`
//! (PATH defaults to the zonepath's parent directory; a host path), made once from the image's
//! rootfs; each zone's root `<zonepath>/root` is a writable snapshot of it. Zone snapshots
//! are read-only snapshots `<zonepath>/snapshots/<name>`; the quota is a qgroup limit on the
//! space the zone's subvolume holds exclusively. Everything through ioctls
//! ([`super::btrfs_ioctl`]); no `btrfs` command needed.

use std::fs;
use std::path::{Path, PathBuf};

use super::btrfs_ioctl as ioc;
use super::{copy_tree, snapdir, Backend, ImageRef, Kind, Record, StorageError};

pub struct Btrfs {
    pub base: Option<PathBuf>,
}

fn err(path: &Path, what: &str, e: std::io::Error) -> StorageError {
    StorageError::Bad {
        path: path.to_path_buf(),
        msg: format!("btrfs {what}: {e}"),
    }
}

fn need_btrfs(path: &Path) -> Result<(), StorageError> {
    if ioc::is_btrfs(path) {
        Ok(())
    } else {
        Err(StorageError::Bad {
            path: path.to_path_buf(),
            msg: "is not on a btrfs filesystem: storage btrfs needs the zonepath (and btrfs:PATH) \
                  on btrfs; use storage overlay or dir here"
                .into(),
        })
    }
}

/// Remove a subvolume, or a plain directory left by a failed attempt.
fn remove_root(path: &Path) -> Result<(), StorageError> {
    if ioc::is_subvolume(path) {
        // A read-only subvolume must be made writable before its files can go; the delete
        // ioctl itself does not care.
        ioc::subvol_delete(path).map_err(|e| err(path, "subvolume delete", e))
    } else {
        super::remove_tree(path)
    }
}

impl Btrfs {
    /// PATH, or the zonepath's parent: where `.zone-images` is.
    pub fn images_base(&self, zonepath: &Path) -> PathBuf {
        self.base
            .clone()
            .or_else(|| zonepath.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn images_dir(&self, zonepath: &Path) -> PathBuf {
        self.images_base(zonepath).join(".zone-images")
    }

    /// The image's read-only subvolume, made from its rootfs the first time.
    fn image_subvolume(&self, image: &ImageRef, zonepath: &Path) -> Result<PathBuf, StorageError> {
        let dir = self.images_dir(zonepath);
        fs::create_dir_all(&dir).map_err(|e| err(&dir, "mkdir", e))?;
        // The image copies keep their set-id binaries and device nodes: closed to host users.
        super::seal_dir(&dir)?;
        need_btrfs(&dir)?;
        let sub = dir.join(image.id);
        if ioc::is_subvolume(&sub) {
            return Ok(sub);
        }
        // Built under a private name, renamed into place when complete: a crash never leaves
        // a half image under the real name.
        let staging = dir.join(format!(".{}-{}", image.id, std::process::id()));
        let _ = remove_root(&staging);
        ioc::subvol_create(&staging).map_err(|e| err(&staging, "subvolume create", e))?;
        let filled = copy_tree(image.rootfs, &staging)
            .and_then(|()| {
                ioc::set_readonly(&staging, true).map_err(|e| err(&staging, "set read-only", e))
            })
            .and_then(|()| {
                fs::rename(&staging, &sub).or_else(|e| {
                    // Another install made it meanwhile: use theirs.
                    if ioc::is_subvolume(&sub) {
                        Ok(())
                    } else {
                        Err(err(&sub, "rename", e))
                    }
                })
            });
        if ioc::is_subvolume(&staging) {
            let _ = ioc::subvol_delete(&staging);
        }
        filled.map(|()| sub)
    }

    fn record(&self, image: Option<String>) -> Record {
        Record::new(
            Kind::Btrfs {
                path: self.base.clone(),
            },
            image,
        )
    }
}

/// Snapshot `src` at `<zonepath>/root` (writable).
fn snapshot_root(src: &Path, zonepath: &Path) -> Result<(), StorageError> {
    need_btrfs(zonepath)?;
    let root = zonepath.join("root");
    if fs::read_dir(&root).is_ok_and(|mut d| d.next().is_none()) {
        let _ = fs::remove_dir(&root);
    }
    ioc::snapshot(src, &root, false).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::EXDEV) {
            StorageError::Bad {
                path: zonepath.to_path_buf(),
                msg: format!(
                    "is not on the same btrfs filesystem as {}; set storage=btrfs:PATH to a directory on the zonepath's filesystem",
                    src.display()
                ),
            }
        } else {
            err(&root, "snapshot", e)
        }
    })
}

impl Backend for Btrfs {
    fn provision(
        &self,
        image: &ImageRef,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        need_btrfs(zonepath)?;
        let sub = self.image_subvolume(image, zonepath)?;
        snapshot_root(&sub, zonepath)?;
        Ok(self.record(Some(image.id.to_string())))
    }

    fn clone_zone(
        &self,
        src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        let from = src.join("root");
        if !ioc::is_subvolume(&from) {
            return Err(StorageError::Bad {
                path: from,
                msg: "the source zone's root is not a btrfs subvolume".into(),
            });
        }
        snapshot_root(&from, zonepath)?;
        Ok(self.record(src_rec.image.clone()))
    }

    fn activate(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        let root = zonepath.join("root");
        if ioc::is_subvolume(&root) {
            Ok(())
        } else {
            Err(StorageError::Bad {
                path: root,
                msg: "the zone's root subvolume is missing".into(),
            })
        }
    }

    fn deactivate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }

    fn destroy(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        for s in snapdir::list(zonepath).unwrap_or_default() {
            remove_root(&snapdir::path(zonepath, &s.name))?;
        }
        super::remove_tree(&snapdir::dir(zonepath))?;
        remove_root(&zonepath.join("root"))
    }

    fn set_quota(
        &self,
        zonepath: &Path,
        _rec: &Record,
        bytes: Option<u64>,
    ) -> Result<(), StorageError> {
        let root = zonepath.join("root");
        if bytes.is_some() {
            ioc::quota_enable(&root).map_err(|e| err(&root, "quota enable", e))?;
        }
        ioc::limit_exclusive(&root, bytes).map_err(|e| err(&root, "qgroup limit", e))
    }

    fn snapshot(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        snapdir::prepare(zonepath)?;
        let to = snapdir::path(zonepath, name);
        ioc::snapshot(&zonepath.join("root"), &to, true).map_err(|e| err(&to, "snapshot", e))?;
        snapdir::add(zonepath, name)
    }

    fn rollback(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        let root = zonepath.join("root");
        let fresh = zonepath.join("root.rollback");
        let _ = remove_root(&fresh);
        let snap = snapdir::path(zonepath, name);
        ioc::snapshot(&snap, &fresh, false).map_err(|e| err(&fresh, "snapshot", e))?;
        remove_root(&root)?;
        fs::rename(&fresh, &root).map_err(|e| err(&root, "rename", e))
    }

    /// A btrfs snapshot is a read-only subvolume: deleted as one.
    fn remove_snapshot_tree(&self, path: &Path) -> Result<(), StorageError> {
        remove_root(path)
    }

    fn attach(&self, zonepath: &Path, rec: &Record, _zone: &str) -> Result<Record, StorageError> {
        self.activate(zonepath, rec)?;
        Ok(Record {
            kind: Kind::Btrfs {
                path: self.base.clone(),
            },
            ..rec.clone()
        })
    }
}

/// Remove the image subvolumes of `image_id` under `dir`'s `.zone-images` (imgadm delete).
pub fn forget_image(images_dir: &Path, image_id: &str) -> Result<(), StorageError> {
    let sub = images_dir.join(".zone-images").join(image_id);
    if ioc::is_subvolume(&sub) {
        ioc::subvol_delete(&sub).map_err(|e| err(&sub, "subvolume delete", e))?;
    }
    Ok(())
}
