//! `btrfs[:PATH]`: an image becomes a read-only subvolume, each zone a writable snapshot of
//! it (via the `btrfs` command). Not implemented yet: provisioning is refused with a clear
//! error, so nothing half-made is left.

use std::path::{Path, PathBuf};

use super::{Backend, ImageRef, Record, StorageError};

pub struct Btrfs {
    pub base: Option<PathBuf>,
}

fn unavailable() -> StorageError {
    StorageError::BadKind {
        value: "btrfs".into(),
        why: "the btrfs backend is not available yet; use overlay or dir".into(),
    }
}

impl Backend for Btrfs {
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
