//! `dir`: the zone's root is a full copy of the image's rootfs (no sharing; shown for
//! contrast, and for filesystems overlay cannot sit on).

use std::fs;
use std::path::Path;

use super::{copy_tree, remove_tree, snapdir, Backend, ImageRef, Kind, Record, StorageError};

pub struct Dir;

/// Copy the tree `from` into the new directory `to`; on failure `to` is removed again, so
/// a failed snapshot or rollback leaves no half copy behind.
fn copy_fresh(from: &Path, to: &Path) -> Result<(), StorageError> {
    let made = fs::create_dir(to)
        .map_err(|e| StorageError::Io {
            path: to.to_path_buf(),
            source: e,
        })
        .and_then(|()| copy_tree(from, to));
    if made.is_err() {
        let _ = remove_tree(to);
    }
    made
}

fn copy_into_root(from: &Path, zonepath: &Path) -> Result<(), StorageError> {
    let root = zonepath.join("root");
    fs::create_dir_all(&root).map_err(|e| StorageError::Io {
        path: root.clone(),
        source: e,
    })?;
    copy_tree(from, &root)
}

impl Backend for Dir {
    fn provision(
        &self,
        image: &ImageRef,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        copy_into_root(image.rootfs, zonepath)?;
        Ok(Record::new(Kind::Dir, Some(image.id.to_string())))
    }

    fn clone_zone(
        &self,
        src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        copy_into_root(&src.join("root"), zonepath)?;
        Ok(Record::new(Kind::Dir, src_rec.image.clone()))
    }

    fn activate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }

    fn deactivate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }

    fn destroy(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        remove_tree(&zonepath.join("snapshots"))?;
        remove_tree(&zonepath.join("root"))
    }

    fn snapshot(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        snapdir::prepare(zonepath)?;
        let to = snapdir::path(zonepath, name);
        copy_fresh(&zonepath.join("root"), &to)?;
        snapdir::add(zonepath, name)
    }

    fn rollback(&self, zonepath: &Path, _rec: &Record, name: &str) -> Result<(), StorageError> {
        let fresh = zonepath.join("root.rollback");
        remove_tree(&fresh)?;
        copy_fresh(&snapdir::path(zonepath, name), &fresh)?;
        let root = zonepath.join("root");
        remove_tree(&root)?;
        fs::rename(&fresh, &root).map_err(|e| StorageError::Io {
            path: root.clone(),
            source: e,
        })
    }

    fn attach(&self, _zonepath: &Path, rec: &Record, _zone: &str) -> Result<Record, StorageError> {
        Ok(rec.clone())
    }
}
