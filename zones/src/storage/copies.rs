//! The images' backend copies (a btrfs read-only subvolume, a zfs dataset with `@final`),
//! listed in `ALTROOT/var/lib/zones/image-copies.json` when an install makes or uses one, so
//! that `imgadm delete` removes them with the image.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{btrfs, zfs, Kind, StorageError};

const FILE: &str = "image-copies.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
enum Copy {
    /// `<dir>/.zone-images/<image>`.
    Btrfs { image: String, dir: PathBuf },
    /// `<parent>/images/<image>`.
    Zfs { image: String, parent: String },
}

impl Copy {
    fn image(&self) -> &str {
        match self {
            Copy::Btrfs { image, .. } | Copy::Zfs { image, .. } => image,
        }
    }
}

fn read(state_dir: &Path) -> Result<Vec<Copy>, StorageError> {
    let p = state_dir.join(FILE);
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| StorageError::Bad {
            path: p,
            msg: format!("not a list of image copies: {e}"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::Io { path: p, source: e }),
    }
}

fn write(state_dir: &Path, all: &[Copy]) -> Result<(), StorageError> {
    fs::create_dir_all(state_dir).map_err(|e| StorageError::Io {
        path: state_dir.to_path_buf(),
        source: e,
    })?;
    let json = serde_json::to_vec_pretty(all).expect("copies serialize");
    crate::store::write_atomic(state_dir, FILE, &json).map_err(|e| StorageError::Bad {
        path: state_dir.join(FILE),
        msg: e.to_string(),
    })
}

/// Note that a zone at `zonepath` on `kind` uses a backend copy of `image`.
pub fn note_image_copy(
    state_dir: &Path,
    kind: &Kind,
    zonepath: &Path,
    image: &str,
) -> Result<(), StorageError> {
    let copy = match kind {
        Kind::Btrfs { path } => Copy::Btrfs {
            image: image.to_string(),
            dir: btrfs::Btrfs { base: path.clone() }.images_base(zonepath),
        },
        Kind::Zfs { dataset } => Copy::Zfs {
            image: image.to_string(),
            parent: dataset.clone(),
        },
        Kind::Overlay | Kind::Dir => return Ok(()),
    };
    let mut all = read(state_dir)?;
    if !all.contains(&copy) {
        all.push(copy);
        write(state_dir, &all)?;
    }
    Ok(())
}

/// Remove every backend copy of `image` (imgadm delete, after the users check).
pub fn forget_image(state_dir: &Path, image: &str) -> Result<(), StorageError> {
    let mut all = read(state_dir)?;
    let mut kept = Vec::new();
    let mut first_err = None;
    for c in all.drain(..) {
        if c.image() != image {
            kept.push(c);
            continue;
        }
        let r = match &c {
            Copy::Btrfs { dir, .. } => btrfs::forget_image(dir, image),
            Copy::Zfs { parent, .. } => zfs::forget_image(parent, image),
        };
        if let Err(e) = r {
            kept.push(c);
            first_err.get_or_insert(e);
        }
    }
    write(state_dir, &kept)?;
    first_err.map_or(Ok(()), Err)
}
