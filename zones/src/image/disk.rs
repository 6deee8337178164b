//! Disk images (SmartOS's `type: zvol`): raw and qcow2 files for kvm zones' disks.
//!
//! An import copies the file into the image's staging directory as `disk` (sparse: runs of
//! zeros become holes), hashing it on the way (the image id is the sha256 of the file), then
//! checks the copy, never the source, which could change meanwhile: a qcow2 header must be
//! version 2 or 3 with no backing file, no external data file and no encryption
//! ([`super::qcow2`]); a raw image must be a whole number of 512-byte sectors.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::{Digest, HashingReader};
use super::{io_at, qcow2, rootdir, ImageError};

/// The file name of a disk image in its image directory.
pub const DISK_FILE: &str = "disk";

/// A disk image's format, as qemu names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    /// qemu's name (`-F raw`, `format=qcow2`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }

    /// `raw` or `qcow2`.
    pub fn parse(text: &str) -> Option<DiskFormat> {
        match text {
            "raw" => Some(DiskFormat::Raw),
            "qcow2" => Some(DiskFormat::Qcow2),
            _ => None,
        }
    }
}

/// An imported disk image, for a kvm zone's disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskImage {
    /// 64 hex digits: the sha256 of the file.
    pub id: String,
    pub name: String,
    pub format: DiskFormat,
    /// The guest-visible size in bytes.
    pub virtual_size: u64,
    /// The file in the image store (host path).
    pub path: PathBuf,
}

/// What [`copy_in`] found.
#[derive(Debug)]
pub struct Copied {
    pub id: Digest,
    pub format: DiskFormat,
    pub virtual_size: u64,
    /// The file's length.
    pub bytes: u64,
}

/// Whether the regular file `path` starts with the qcow2 magic (the guarded open: a FIFO or
/// device is refused without blocking).
pub fn sniff_qcow2(path: &Path) -> Result<bool, ImageError> {
    let f = rootdir::open_regular(path).map_err(io_at(path))?;
    let mut head = Vec::with_capacity(4);
    f.take(4).read_to_end(&mut head).map_err(io_at(path))?;
    Ok(qcow2::is_qcow2(&head))
}

/// Whether the regular file `path` is no archive `import` could read: neither gzip, zstd nor
/// a tar (its first 512-byte header's checksum holds). Such a file is most likely a raw disk
/// image given without `--disk raw`.
pub fn not_an_archive(path: &Path) -> Result<bool, ImageError> {
    let f = rootdir::open_regular(path).map_err(io_at(path))?;
    let mut head = Vec::with_capacity(512);
    f.take(512).read_to_end(&mut head).map_err(io_at(path))?;
    if super::layer::Compression::sniff(&head) != super::layer::Compression::None {
        return Ok(false);
    }
    Ok(!tar_header_ok(&head))
}

/// A tar header block: 512 bytes whose checksum field (octal, bytes 148..156) is the sum of
/// its bytes with that field read as spaces.
fn tar_header_ok(block: &[u8]) -> bool {
    if block.len() < 512 || block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| !matches!(c, '\0' | ' '))
        .collect();
    let Ok(want) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == want
}

/// Copy the disk image `src` of `format` to `dest` (a new file, 0644), hashing it, and check
/// the copy. The source is read through the guarded open, at most as many bytes as it had
/// when opened.
pub fn copy_in(src: &Path, format: DiskFormat, dest: &Path) -> Result<Copied, ImageError> {
    let bad = |why: String| ImageError::BadImage {
        path: src.to_path_buf(),
        why,
    };
    let f = rootdir::open_regular(src).map_err(io_at(src))?;
    let len = f.metadata().map_err(io_at(src))?.len();
    if len == 0 {
        return Err(bad("is empty: a disk image has at least one sector".into()));
    }
    let mut out = fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(dest)
        .map_err(io_at(dest))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(0o644)).map_err(io_at(dest))?;
    let mut r = HashingReader::new(f.take(len));
    let copied = sparse_copy(&mut r, &mut out).map_err(io_at(dest))?;
    if copied != len {
        return Err(bad(format!(
            "changed while being imported: {copied} of {len} bytes read"
        )));
    }
    out.sync_all().map_err(io_at(dest))?;
    let virtual_size = match format {
        DiskFormat::Raw => {
            let mut head = [0u8; 4];
            out.seek(SeekFrom::Start(0)).map_err(io_at(dest))?;
            let n = out.read(&mut head).map_err(io_at(dest))?;
            if qcow2::is_qcow2(&head[..n]) {
                return Err(bad(
                    "starts with the qcow2 magic: import it as qcow2 (imgadm import FILE)".into(),
                ));
            }
            if len % 512 != 0 {
                return Err(bad(format!(
                    "is {len} bytes, not a whole number of 512-byte sectors"
                )));
            }
            len
        }
        DiskFormat::Qcow2 => {
            let mut head = Vec::new();
            out.seek(SeekFrom::Start(0)).map_err(io_at(dest))?;
            (&mut out)
                .take(qcow2::MAX_HEADER)
                .read_to_end(&mut head)
                .map_err(io_at(dest))?;
            let h = qcow2::parse(&head).map_err(&bad)?;
            qcow2::check_importable(&h).map_err(&bad)?;
            h.virtual_size
        }
    };
    Ok(Copied {
        id: r.digest(),
        format,
        virtual_size,
        bytes: len,
    })
}

/// Copy `r` to `out` leaving holes where whole blocks are zero; returns the bytes copied.
fn sparse_copy(r: &mut impl Read, out: &mut fs::File) -> io::Result<u64> {
    const BLOCK: usize = 1 << 20;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if chunk.iter().all(|b| *b == 0) {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(chunk)?;
        }
        total += n as u64;
    }
    out.set_len(total)?;
    Ok(total)
}

/// Fill `buf` unless the stream ends first; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zones-disk-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_raw_copy_is_sparse_hashed_and_0644() {
        let d = tmp("raw");
        let src = d.join("src.img");
        let f = fs::File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        (&f).write_all(b"boot sector").unwrap();
        let dest = d.join("disk");
        let c = copy_in(&src, DiskFormat::Raw, &dest).unwrap();
        assert_eq!(c.virtual_size, 64 << 20);
        assert_eq!(c.id, Digest::of_file(&src).unwrap());
        let m = fs::metadata(&dest).unwrap();
        assert_eq!(m.len(), 64 << 20);
        assert!(m.blocks() * 512 < 4 << 20, "{} blocks", m.blocks());
        assert_eq!(m.permissions().mode() & 0o777, 0o644);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tells_archives_from_raw_disks() {
        let d = tmp("sniff");
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_cksum();
        t.append_data(&mut h, "a", &b"hi"[..]).unwrap();
        let tar = d.join("a.tar");
        fs::write(&tar, t.into_inner().unwrap()).unwrap();
        assert!(!not_an_archive(&tar).unwrap());
        let gz = d.join("a.tar.gz");
        fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(!not_an_archive(&gz).unwrap());
        let raw = d.join("raw.img");
        fs::write(&raw, [0u8; 4096]).unwrap();
        assert!(not_an_archive(&raw).unwrap());
        fs::write(&raw, [0x55u8; 4096]).unwrap();
        assert!(not_an_archive(&raw).unwrap());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_odd_sizes_backing_files_and_fifos() {
        let d = tmp("bad");
        let src = d.join("odd.img");
        fs::write(&src, [1u8; 1000]).unwrap();
        let e = copy_in(&src, DiskFormat::Raw, &d.join("a")).unwrap_err();
        assert!(e.to_string().contains("512-byte sectors"), "{e}");
        let q = d.join("b.qcow2");
        fs::write(&q, qcow2::tests::header(1 << 20, Some("/etc/passwd"), &[])).unwrap();
        assert!(sniff_qcow2(&q).unwrap());
        let e = copy_in(&q, DiskFormat::Qcow2, &d.join("b")).unwrap_err();
        assert!(e.to_string().contains("backing file '/etc/passwd'"), "{e}");
        let e = copy_in(&q, DiskFormat::Raw, &d.join("c")).unwrap_err();
        assert!(e.to_string().contains("qcow2 magic"), "{e}");
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = copy_in(&fifo, DiskFormat::Raw, &d.join("d")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
