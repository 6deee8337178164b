//! `dir`: the zone's root is a full copy of the image's rootfs (no sharing; shown for
//! contrast, and for filesystems overlay cannot sit on).

use std::fs;
use std::path::Path;

use super::{copy_tree, remove_tree, Backend, ImageRef, Kind, Record, StorageError};

pub struct Dir;

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
        Ok(Record {
            kind: Kind::Dir,
            image: Some(image.id.to_string()),
            lower: None,
            dataset: None,
        })
    }

    fn clone_zone(
        &self,
        src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        _zone: &str,
    ) -> Result<Record, StorageError> {
        copy_into_root(&src.join("root"), zonepath)?;
        Ok(Record {
            kind: Kind::Dir,
            image: src_rec.image.clone(),
            lower: None,
            dataset: None,
        })
    }

    fn activate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }

    fn deactivate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        Ok(())
    }

    fn destroy(&self, zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        remove_tree(&zonepath.join("root"))
    }
}
