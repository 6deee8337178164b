//! `zfs:POOL/DATASET`: an image becomes a dataset with `@final`, each zone a `zfs clone` of
//! it (via the `zfs` command). Not implemented yet: provisioning is refused with a clear
//! error, so nothing half-made is left.

use std::path::Path;

use super::{Backend, ImageRef, Record, StorageError};

pub struct Zfs {
    pub parent: String,
}

fn unavailable() -> StorageError {
    StorageError::BadKind {
        value: "zfs".into(),
        why: "the zfs backend is not available yet; use overlay or dir".into(),
    }
}

impl Backend for Zfs {
    fn provision(&self, _: &ImageRef, _: &Path, _: &str) -> Result<Record, StorageError> {
        Err(unavailable())
    }
    fn clone_zone(&self, _: &Path, _: &Record, _: &Path, _: &str) -> Result<Record, StorageError> {
        Err(unavailable())
    }
    fn activate(&self, _: &Path, _: &Record) -> Result<(), StorageError> {
        Err(unavailable())
    }
    fn deactivate(&self, _: &Path, _: &Record) -> Result<(), StorageError> {
        Ok(())
    }
    fn destroy(&self, _: &Path, _: &Record) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A ZFS dataset name: components of letters, digits, `_-.:` separated by `/`.
pub fn valid_dataset(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_-.:".contains(ch))
        })
}
