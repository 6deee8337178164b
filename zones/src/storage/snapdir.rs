//! Zone snapshots kept as directories (overlay, dir) or subvolumes (btrfs) at
//! `<zonepath>/snapshots/<name>`, listed in `<zonepath>/snapshots/index.json` (name and
//! creation time, oldest first).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Snapshot, StorageError};

const INDEX: &str = "index.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    name: String,
    created: i64,
}

/// `<zonepath>/snapshots`.
pub fn dir(zonepath: &Path) -> PathBuf {
    zonepath.join("snapshots")
}

/// Where the snapshot `name` lives.
pub fn path(zonepath: &Path, name: &str) -> PathBuf {
    dir(zonepath).join(name)
}

fn read(zonepath: &Path) -> Result<Vec<Entry>, StorageError> {
    let p = dir(zonepath).join(INDEX);
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| StorageError::Bad {
            path: p,
            msg: format!("not a snapshot index: {e}"),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StorageError::Io { path: p, source: e }),
    }
}

fn write(zonepath: &Path, entries: &[Entry]) -> Result<(), StorageError> {
    let d = dir(zonepath);
    fs::create_dir_all(&d).map_err(|e| StorageError::Io {
        path: d.clone(),
        source: e,
    })?;
    let json = serde_json::to_vec_pretty(entries).expect("an index serializes");
    crate::store::write_atomic(&d, INDEX, &json).map_err(|e| StorageError::Bad {
        path: d.join(INDEX),
        msg: e.to_string(),
    })
}

/// The snapshots, oldest first.
pub fn list(zonepath: &Path) -> Result<Vec<Snapshot>, StorageError> {
    Ok(read(zonepath)?
        .into_iter()
        .map(|e| Snapshot {
            name: e.name,
            created: e.created,
        })
        .collect())
}

/// Make the snapshots directory (before the snapshot is taken into it).
pub fn prepare(zonepath: &Path) -> Result<PathBuf, StorageError> {
    let d = dir(zonepath);
    fs::create_dir_all(&d).map_err(|e| StorageError::Io {
        path: d.clone(),
        source: e,
    })?;
    Ok(d)
}

/// Record a snapshot just taken.
pub fn add(zonepath: &Path, name: &str) -> Result<(), StorageError> {
    let mut all = read(zonepath)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    all.push(Entry {
        name: name.to_string(),
        created,
    });
    write(zonepath, &all)
}

/// Forget a snapshot just removed.
pub fn remove(zonepath: &Path, name: &str) -> Result<(), StorageError> {
    let mut all = read(zonepath)?;
    all.retain(|e| e.name != name);
    write(zonepath, &all)
}

/// Copy a tree as [`super::copy_tree`] does, plus the `trusted.overlay.*` extended
/// attributes (opaque directories, redirects) that make an overlay upper dir what it is.
pub fn copy_upper(src: &Path, dst: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(dst).map_err(|e| StorageError::Io {
        path: dst.to_path_buf(),
        source: e,
    })?;
    super::copy_tree(src, dst)?;
    copy_overlay_xattrs(src, dst)
}

fn copy_overlay_xattrs(src: &Path, dst: &Path) -> Result<(), StorageError> {
    let meta = fs::symlink_metadata(src).map_err(|e| StorageError::Io {
        path: src.to_path_buf(),
        source: e,
    })?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    for name in xattr_names(src) {
        if name.starts_with(b"trusted.overlay.") {
            if let Some(v) = xattr_get(src, &name) {
                xattr_set(dst, &name, &v).map_err(|e| StorageError::Io {
                    path: dst.to_path_buf(),
                    source: e,
                })?;
            }
        }
    }
    if meta.is_dir() {
        for e in fs::read_dir(src).map_err(|e| StorageError::Io {
            path: src.to_path_buf(),
            source: e,
        })? {
            let e = e.map_err(|e| StorageError::Io {
                path: src.to_path_buf(),
                source: e,
            })?;
            copy_overlay_xattrs(&e.path(), &dst.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn xattr_names(p: &Path) -> Vec<Vec<u8>> {
    let c = cpath(p);
    let mut buf = vec![0u8; 4096];
    // SAFETY: `c` is NUL-terminated and `buf` is writable for its length.
    let n = unsafe { nix::libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf.truncate(n as usize);
    buf.split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn xattr_get(p: &Path, name: &[u8]) -> Option<Vec<u8>> {
    let c = cpath(p);
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let len =
        unsafe { nix::libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

fn xattr_set(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = cpath(p);
    let n = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
    let r = unsafe {
        nix::libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
