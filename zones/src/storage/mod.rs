//! Putting a root filesystem at `<zonepath>/root`: from a directory (a faithful copy: modes,
//! owners, times, symlinks, device nodes, hard links kept as links) or a tar archive (plain or
//! gzip); and, for zones installed from an image, the storage backends ([`Backend`]):
//! `overlay` (the default: the image's rootfs as the lower dir, the zone's changes in
//! `<zonepath>/upper`), `dir` (a copy), `btrfs` (a snapshot of the image's subvolume) and
//! `zfs` (a clone of the image dataset's `@final`).
//!
//! A zone installed from an image has `<zonepath>/storage.json` ([`Record`]): which backend,
//! which image, and what the backend made. The supervisor calls [`activate`] before the
//! zone's container is created and [`deactivate`] at teardown; a zone without a record (one
//! installed with `-d`) is a plain directory and needs neither.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod backend;
pub mod btrfs;
mod btrfs_ioctl;
mod copies;
pub mod delegate;
pub mod dir;
pub mod overlay;
mod snapdir;
pub mod zfs;

pub use backend::*;
pub use copies::{forget_image, note_image_copy};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {msg}", .path.display())]
    Bad { path: PathBuf, msg: String },
    #[error("storage '{value}': {why}")]
    BadKind { value: String, why: String },
    #[error("{cmd}: {msg}")]
    Command { cmd: String, msg: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an install source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Directory,
    Tar,
    TarGz,
}

/// Tell a directory from a tar or gzip-compressed tar (by content, not by name). Anything
/// else (a FIFO, a device) is refused at once, without reading from it.
pub fn source_kind(path: &Path) -> Result<SourceKind, StorageError> {
    let meta = fs::metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        return Ok(SourceKind::Directory);
    }
    let not_archive = |what: &str| StorageError::Bad {
        path: path.to_path_buf(),
        msg: format!("{what}: give a directory, a tar archive or a gzip-compressed tar archive"),
    };
    if !meta.is_file() {
        return Err(not_archive(&format!(
            "is {}",
            crate::image::rootdir::type_name(&meta.file_type())
        )));
    }
    let mut head = [0u8; 512];
    let mut f = crate::image::rootdir::open_regular(path).map_err(io_at(path))?;
    let n = read_up_to(&mut f, &mut head).map_err(io_at(path))?;
    if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        return Ok(SourceKind::TarGz);
    }
    if n >= 262 && &head[257..262] == b"ustar" {
        return Ok(SourceKind::Tar);
    }
    Err(StorageError::Bad {
        path: path.to_path_buf(),
        msg: "not a directory, a tar archive or a gzip-compressed tar archive".into(),
    })
}

fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Fill `dest` (created if missing) from `source`, whatever its kind. On failure nothing of
/// what it made is left: `dest` is removed if it made it, else emptied.
pub fn populate(source: &Path, dest: &Path) -> Result<(), StorageError> {
    let kind = source_kind(source)?;
    let made = fs::symlink_metadata(dest).is_err();
    fs::create_dir_all(dest).map_err(io_at(dest))?;
    let filled = match kind {
        SourceKind::Directory => copy_tree(source, dest),
        SourceKind::Tar | SourceKind::TarGz => unpack(source, kind == SourceKind::TarGz, dest),
    };
    if filled.is_err() {
        if made {
            let _ = remove_tree(dest);
        } else if let Ok(rd) = fs::read_dir(dest) {
            for e in rd.flatten() {
                let _ = remove_tree(&e.path());
            }
        }
    }
    filled
}

/// Unpack the tar archive `source` (gzip-compressed when `gz`) into `dest`, keeping owners,
/// modes and special files, every entry kept inside `dest`; a truncated archive or one that
/// expands past the limit ([`crate::image::limits`]) is an error.
pub fn unpack(source: &Path, gz: bool, dest: &Path) -> Result<(), StorageError> {
    use crate::image::{layer, limits, rootdir, ImageError};
    let bad = |msg: String| StorageError::Bad {
        path: source.to_path_buf(),
        msg,
    };
    let f = rootdir::open_regular(source).map_err(io_at(source))?;
    let size = f.metadata().map(|m| m.len()).ok();
    let limit = limits::expand_limit(size).map_err(bad)?;
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    // A root filesystem tarball has no digest to vouch for it: it must end with its marker.
    let rules = layer::Rules {
        kind: layer::Kind::Rootfs,
        limit,
        framed: false,
    };
    let what = source.display().to_string();
    layer::apply_with(reader, dest, &what, rules)
        .map(drop)
        .map_err(|e| match e {
            ImageError::BadLayer { entry, why, .. } if entry.is_empty() => bad(why),
            ImageError::BadLayer { entry, why, .. } => bad(format!("entry '{entry}': {why}")),
            other => bad(other.to_string()),
        })
}

/// Copy the tree at `src` into `dst` (which exists): files, directories, symlinks, fifos and
/// device nodes with their modes, owners and modification times; hard links stay hard links.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), StorageError> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    copy_dir(src, dst, &mut links)?;
    let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
    finish(dst, &meta)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), StorageError> {
    let mut entries: Vec<_> = fs::read_dir(src)
        .map_err(io_at(src))?
        .collect::<Result<_, _>>()
        .map_err(io_at(src))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let from = e.path();
        let to = dst.join(e.file_name());
        copy_entry(&from, &to, links)?;
    }
    Ok(())
}

fn copy_entry(
    from: &Path,
    to: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), StorageError> {
    let meta = fs::symlink_metadata(from).map_err(io_at(from))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        match fs::create_dir(to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_at(to)(e)),
        }
        copy_dir(from, to, links)?;
        return finish(to, &meta);
    }
    let _ = fs::remove_file(to);
    if ft.is_symlink() {
        let target = fs::read_link(from).map_err(io_at(from))?;
        symlink(&target, to).map_err(io_at(to))?;
        return chown(to, &meta, true);
    }
    if meta.nlink() > 1 {
        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            return fs::hard_link(first, to).map_err(io_at(to));
        }
        links.insert((meta.dev(), meta.ino()), to.to_path_buf());
    }
    if ft.is_file() {
        fs::copy(from, to).map_err(io_at(to))?;
    } else {
        // fifo, socket, char or block device: the same node.
        let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode());
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc_sflag_mask());
        nix::sys::stat::mknod(to, kind, mode, meta.rdev())
            .map_err(|e| io_at(to)(io::Error::from(e)))?;
    }
    finish(to, &meta)
}

fn libc_sflag_mask() -> u32 {
    nix::sys::stat::SFlag::S_IFMT.bits()
}

/// Owner, mode (after chown, which clears setuid bits) and modification time of `to`.
fn finish(to: &Path, meta: &fs::Metadata) -> Result<(), StorageError> {
    chown(to, meta, false)?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777)).map_err(io_at(to))?;
    let mtime = filetime(meta);
    let times = [mtime, mtime];
    nix::sys::stat::utimensat(
        None,
        to,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| io_at(to)(io::Error::from(e)))
}

fn filetime(meta: &fs::Metadata) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec())
}

fn chown(to: &Path, meta: &fs::Metadata, nofollow: bool) -> Result<(), StorageError> {
    let uid = Some(nix::unistd::Uid::from_raw(meta.uid()));
    let gid = Some(nix::unistd::Gid::from_raw(meta.gid()));
    let flag = if nofollow {
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW
    } else {
        nix::fcntl::AtFlags::empty()
    };
    match nix::unistd::fchownat(None, to, uid, gid, flag) {
        Ok(()) => Ok(()),
        // Not root: keep our own ownership rather than fail the copy.
        Err(nix::Error::EPERM) if !nix::unistd::geteuid().is_root() => Ok(()),
        Err(e) => Err(io_at(to)(io::Error::from(e))),
    }
}

/// Remove `path` and everything below it; a missing path is fine. Never crosses into a mount
/// below it (a bind left mounted inside a zone root must not have its host files deleted).
pub fn remove_tree(path: &Path) -> Result<(), StorageError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_at(path)(e)),
    };
    remove_below(path, meta.dev())
}

fn remove_below(path: &Path, dev: u64) -> Result<(), StorageError> {
    let meta = fs::symlink_metadata(path).map_err(io_at(path))?;
    if meta.dev() != dev {
        return Err(StorageError::Bad {
            path: path.to_path_buf(),
            msg: "is a mount point: unmount it first".into(),
        });
    }
    if meta.is_dir() {
        for e in fs::read_dir(path).map_err(io_at(path))? {
            let e = e.map_err(io_at(path))?;
            remove_below(&e.path(), dev)?;
        }
        fs::remove_dir(path).map_err(io_at(path))
    } else {
        fs::remove_file(path).map_err(io_at(path))
    }
}

/// Make the directory `path` 0700 if it is not (its owner is left alone); a missing path or a
/// non-directory is left alone. For the places that hold an image's or a zone's files: host
/// users must not reach their set-id binaries or device nodes.
pub fn seal_dir(path: &Path) -> Result<(), StorageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && m.permissions().mode() & 0o7777 != 0o700 => {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_at(path))
        }
        _ => Ok(()),
    }
}

/// The name a path's last component, for messages.
pub fn name_of(path: &Path) -> &OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> Tmp {
        let p =
            std::env::temp_dir().join(format!("zones-unit-storage-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    #[test]
    fn copy_keeps_modes_links_and_hard_links() {
        let t = tmp("copy");
        let src = t.0.join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("tool", src.join("bin/alias")).unwrap();
        fs::hard_link(src.join("bin/tool"), src.join("bin/hard")).unwrap();
        nix::unistd::mkfifo(
            &src.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let dst = t.0.join("dst");
        fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        let m = fs::metadata(dst.join("bin/tool")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(
            fs::read_link(dst.join("bin/alias")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(
            fs::metadata(dst.join("bin/hard")).unwrap().ino(),
            m.ino(),
            "hard link became a copy"
        );
        assert!(fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo_like());
        assert_eq!(
            fs::metadata(dst.join("bin/tool")).unwrap().mtime(),
            fs::metadata(src.join("bin/tool")).unwrap().mtime()
        );
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for fs::FileType {
        fn is_fifo_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_fifo()
        }
    }

    #[test]
    fn tar_and_gzip_archives_are_recognised_and_unpacked() {
        let t = tmp("tar");
        let src = t.0.join("src");
        fs::create_dir_all(src.join("etc")).unwrap();
        fs::write(src.join("etc/hostname"), "z\n").unwrap();
        let tar_path = t.0.join("a.tar");
        {
            let f = fs::File::create(&tar_path).unwrap();
            let mut b = tar::Builder::new(f);
            b.append_dir_all(".", &src).unwrap();
            b.finish().unwrap();
        }
        assert_eq!(source_kind(&tar_path).unwrap(), SourceKind::Tar);
        let gz_path = t.0.join("a.tar.gz");
        {
            let f = fs::File::create(&gz_path).unwrap();
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            io::copy(&mut fs::File::open(&tar_path).unwrap(), &mut gz).unwrap();
            gz.finish().unwrap();
        }
        assert_eq!(source_kind(&gz_path).unwrap(), SourceKind::TarGz);
        for (i, p) in [&tar_path, &gz_path].iter().enumerate() {
            let dst = t.0.join(format!("out{i}"));
            populate(p, &dst).unwrap();
            assert_eq!(fs::read_to_string(dst.join("etc/hostname")).unwrap(), "z\n");
        }
        fs::write(t.0.join("junk"), "not an archive").unwrap();
        let e = source_kind(&t.0.join("junk")).unwrap_err().to_string();
        assert!(e.contains("not a directory, a tar archive"), "{e}");
    }

    #[test]
    fn remove_tree_removes_and_tolerates_missing() {
        let t = tmp("rm");
        let d = t.0.join("a/b");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), "x").unwrap();
        remove_tree(&t.0.join("a")).unwrap();
        assert!(!t.0.join("a").exists());
        remove_tree(&t.0.join("a")).unwrap();
    }
}
