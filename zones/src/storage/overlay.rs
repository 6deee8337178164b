//! `overlay`: the image's rootfs is the lower dir, shared by every zone made from it; each
//! zone's changes go to `<zonepath>/upper` (with `<zonepath>/work`). Mounted at
//! `<zonepath>/root` by the supervisor while the zone is ready or running.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::mount::{umount2, MntFlags, MsFlags};

use super::{is_mount_point, remove_tree, snapdir, Backend, ImageRef, Kind, Record, StorageError};

pub struct Overlay;

fn mkdirs(zonepath: &Path) -> Result<(), StorageError> {
    for d in ["root", "upper", "work"] {
        let p = zonepath.join(d);
        fs::create_dir_all(&p).map_err(|e| StorageError::Io { path: p, source: e })?;
    }
    // The zone's / is upper's mode: keep the usual 0755.
    let _ = fs::set_permissions(
        zonepath.join("upper"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    Ok(())
}

/// An overlay whiteout: a 0/0 character device.
pub fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn option_path(p: &Path) -> Result<String, StorageError> {
    let s = p.display().to_string();
    if s.contains([',', ':']) {
        return Err(StorageError::Bad {
            path: p.to_path_buf(),
            msg: "overlay cannot use a path with ',' or ':'".into(),
        });
    }
    Ok(s)
}

impl Backend for Overlay {
    fn provision(
        &self,
        image: &ImageRef,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        option_path(image.rootfs)?;
        option_path(zonepath)?;
        mkdirs(zonepath)?;
        let mut rec = Record::new(Kind::Overlay, Some(image.id.to_string()));
        rec.lower = Some(image.rootfs.to_path_buf());
        Ok(rec)
    }

    fn clone_zone(
        &self,
        src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        mkdirs(zonepath)?;
        snapdir::copy_upper(&src.join("upper"), &zonepath.join("upper"))?;
        let mut rec = Record::new(Kind::Overlay, src_rec.image.clone());
        rec.lower = src_rec.lower.clone();
        Ok(rec)
    }

    fn activate(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError> {
        let root = zonepath.join("root");
        if is_mount_point(&root) {
            return Ok(());
        }
        let lower = rec.lower.as_deref().ok_or_else(|| StorageError::Bad {
            path: zonepath.join("storage.json"),
            msg: "overlay record without a lower dir".into(),
        })?;
        if !lower.is_dir() {
            return Err(StorageError::Bad {
                path: lower.to_path_buf(),
                msg: "the zone's image is gone (was it deleted?)".into(),
            });
        }
        let upper = option_path(&zonepath.join("upper"))?;
        let work = option_path(&zonepath.join("work"))?;
        let mount = |lower: &str| {
            let opts = format!("lowerdir={lower},upperdir={upper},workdir={work}");
            nix::mount::mount(
                Some("overlay"),
                &root,
                Some("overlay"),
                MsFlags::empty(),
                Some(opts.as_str()),
            )
            .map_err(|e| (e, opts))
        };
        let r = match crate::idshift::recorded(zonepath) {
            0 => mount(&option_path(lower)?),
            // A zone with a user namespace sees the shared image through an id-mapped clone
            // of it. The clone is attached beside the zone for the mount (Linux 6.1 refuses a
            // detached mount as a layer) and taken away again: the overlay keeps its own
            // reference to it.
            base => {
                let bad = |e: crate::idshift::ShiftError| StorageError::Bad {
                    path: lower.to_path_buf(),
                    msg: e.to_string(),
                };
                let tree = crate::idshift::idmapped_clone(lower, base).map_err(bad)?;
                let at = zonepath.join(".lower-idmapped");
                let at_opt = option_path(&at)?;
                // One left by a supervisor killed in this window.
                let _ = umount2(&at, MntFlags::MNT_DETACH);
                let _ = fs::create_dir(&at);
                crate::idshift::attach(&tree, &at).map_err(bad)?;
                let r = mount(&at_opt);
                let _ = umount2(&at, MntFlags::MNT_DETACH);
                let _ = fs::remove_dir(&at);
                r
            }
        };
        r.map_err(|(e, opts)| StorageError::Bad {
            path: root.clone(),
            msg: format!("mount overlay ({opts}): {e}"),
        })
    }

    fn deactivate(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        unmount(&zonepath.join("root"))
    }

    fn destroy(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        for d in ["root", "upper", "work", "snapshots"] {
            remove_tree(&zonepath.join(d))?;
        }
        Ok(())
    }

    fn snapshot(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        snapdir::prepare(zonepath)?;
        let to = snapdir::path(zonepath, name);
        if let Err(e) = snapdir::copy_upper(&zonepath.join("upper"), &to) {
            let _ = remove_tree(&to);
            return Err(e);
        }
        snapdir::add(zonepath, name)
    }

    fn rollback(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        // The snapshot is copied beside upper first, so a failed copy leaves upper as it was.
        let fresh = zonepath.join("upper.rollback");
        remove_tree(&fresh)?;
        if let Err(e) = snapdir::copy_upper(&snapdir::path(zonepath, name), &fresh) {
            let _ = remove_tree(&fresh);
            return Err(e);
        }
        let old = zonepath.join("upper.old");
        remove_tree(&old)?;
        let upper = zonepath.join("upper");
        fs::rename(&upper, &old).map_err(|e| StorageError::Io {
            path: upper.clone(),
            source: e,
        })?;
        fs::rename(&fresh, &upper).map_err(|e| StorageError::Io {
            path: upper.clone(),
            source: e,
        })?;
        remove_tree(&old)?;
        // The work dir belongs to the old upper.
        remove_tree(&zonepath.join("work"))?;
        mkdirs(zonepath)
    }

    fn attach(&self, _zonepath: &Path, rec: &Record, _zone: &str) -> Result<Record, StorageError> {
        let lower = rec.lower.as_deref().ok_or_else(|| StorageError::Bad {
            path: _zonepath.join("storage.json"),
            msg: "overlay record without a lower dir".into(),
        })?;
        if !lower.is_dir() {
            return Err(StorageError::Bad {
                path: lower.to_path_buf(),
                msg: format!(
                    "the zone's image {} is not imported on this host; import it with imgadm first",
                    rec.image.as_deref().unwrap_or("?")
                ),
            });
        }
        Ok(rec.clone())
    }
}

/// Unmount `path` if it is a mount point; a busy mount is detached (it goes when its last
/// user does).
pub fn unmount(path: &Path) -> Result<(), StorageError> {
    if !is_mount_point(path) {
        return Ok(());
    }
    match umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::Error::EBUSY) => {
            umount2(path, MntFlags::MNT_DETACH).map_err(|e| StorageError::Bad {
                path: path.to_path_buf(),
                msg: format!("umount: {e}"),
            })
        }
        Err(e) => Err(StorageError::Bad {
            path: path.to_path_buf(),
            msg: format!("umount: {e}"),
        }),
    }
}
