//! Applying one layer (a tar stream) onto a root filesystem being built, safely.
//!
//! Every entry name is checked before anything is written: no `..` component, no absolute
//! path, and no parent that is a symlink (an earlier entry `evil -> /etc` followed by
//! `evil/passwd` would otherwise write the host's /etc). The final component is never
//! followed either: an existing non-directory is removed before the new entry is made.
//! Whiteouts (`.wh.NAME`) remove NAME from the lower layers; an opaque marker
//! (`.wh..wh..opq`) empties its directory of everything the lower layers put there.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use super::ImageError;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A layer's compression, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Of a file, by content.
    pub fn of_file(path: &Path) -> io::Result<Compression> {
        let mut head = [0u8; 4];
        let mut f = fs::File::open(path)?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(Compression::sniff(&head[..n]))
    }

    /// A reader of the uncompressed stream.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// The safe relative path of an entry name, or why it is refused. `None`: the root itself.
pub fn entry_path(name: &Path) -> Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("a '..' component leaves the image root".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("an absolute path is not allowed in a layer".into())
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Check that no parent of `rel` below `root` is a symlink or a non-directory, creating
/// missing parents as directories (0755, as tar does).
fn safe_parents(root: &Path, rel: &Path) -> Result<(), String> {
    let mut at = root.to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "goes through the symlink '{}'",
                    at.strip_prefix(root).unwrap_or(&at).display()
                ))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "'{}' is not a directory",
                    at.strip_prefix(root).unwrap_or(&at).display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&at)
                    .map_err(|e| format!("{}: {e}", at.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    Ok(())
}

/// Remove whatever is at `path` (a tree too); missing is fine. Never follows a symlink.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// What applying a layer did, for the manifest and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub entries: u64,
    pub whiteouts: u64,
}

/// Apply the tar stream `reader` (uncompressed) to `root`. `what` names the layer in errors.
pub fn apply(reader: impl Read, root: &Path, what: &str) -> Result<Applied, ImageError> {
    let bad = |entry: &str, why: String| ImageError::BadLayer {
        layer: what.to_string(),
        entry: entry.to_string(),
        why,
    };
    let mut ar = tar::Archive::new(reader);
    let mut done = Applied::default();
    // Paths this layer made: an opaque marker must not remove them.
    let mut ours: HashSet<PathBuf> = HashSet::new();
    let mut dirs: Vec<(PathBuf, tar::Header)> = Vec::new();
    let entries = ar.entries().map_err(|e| bad("", e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad("", format!("unreadable tar: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| bad("", e.to_string()))?
            .into_owned();
        let shown = raw.display().to_string();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let Some(rel) = entry_path(&raw).map_err(|why| bad(&shown, why))? else {
            continue; // the root directory itself
        };
        safe_parents(root, &rel).map_err(|why| bad(&shown, why))?;
        let file_name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if file_name == OPAQUE {
            opaque(root, &parent, &ours).map_err(|e| bad(&shown, e.to_string()))?;
            done.whiteouts += 1;
            continue;
        }
        if let Some(victim) = file_name.strip_prefix(WHITEOUT) {
            if victim.is_empty() || victim == "." || victim == ".." {
                return Err(bad(&shown, "a whiteout must name an entry".into()));
            }
            remove_any(&root.join(&parent).join(victim)).map_err(|e| bad(&shown, e.to_string()))?;
            done.whiteouts += 1;
            continue;
        }
        let dest = root.join(&rel);
        make_entry(&mut entry, root, &dest).map_err(|why| bad(&shown, why))?;
        if kind == tar::EntryType::Directory {
            dirs.push((dest.clone(), entry.header().clone()));
        }
        ours.insert(rel);
        done.entries += 1;
    }
    // Directory times last: creating their children changed them.
    for (dir, header) in dirs.iter().rev() {
        set_times(dir, header, true).map_err(|e| bad(&dir.display().to_string(), e))?;
    }
    Ok(done)
}

/// Empty `root/dir` of everything not made by this layer.
fn opaque(root: &Path, dir: &Path, ours: &HashSet<PathBuf>) -> io::Result<()> {
    let full = root.join(dir);
    let rd = match fs::read_dir(&full) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        if !ours.contains(&dir.join(e.file_name())) {
            remove_any(&e.path())?;
        }
    }
    Ok(())
}

fn make_entry<R: Read>(entry: &mut tar::Entry<R>, root: &Path, dest: &Path) -> Result<(), String> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
    let at = |e: io::Error| format!("{}: {e}", dest.display());
    let existing = fs::symlink_metadata(dest).ok();
    if kind == tar::EntryType::Directory {
        if !existing.as_ref().is_some_and(|m| m.is_dir()) {
            remove_any(dest).map_err(at)?;
            fs::DirBuilder::new().mode(0o700).create(dest).map_err(at)?;
        }
        return finish(dest, &header, mode, false);
    }
    remove_any(dest).map_err(at)?;
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(dest)
                .map_err(at)?;
            io::copy(entry, &mut f).map_err(at)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or("a symlink without a target")?;
            symlink(&target, dest).map_err(at)?;
            return finish(dest, &header, mode, true);
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or("a hard link without a target")?;
            let rel = entry_path(&target)
                .map_err(|why| format!("hard link target '{}': {why}", target.display()))?
                .ok_or("a hard link to the root")?;
            safe_parents(root, &rel)
                .map_err(|why| format!("hard link target '{}' {why}", target.display()))?;
            let src = root.join(&rel);
            // std's hard_link is linkat(…, 0): a symlink target is linked, not followed.
            return fs::hard_link(&src, dest)
                .map_err(|e| format!("hard link to '{}': {e}", target.display()));
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let sflag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let dev = nix::sys::stat::makedev(major.into(), minor.into());
            nix::sys::stat::mknod(dest, sflag, Mode::from_bits_truncate(0o600), dev)
                .map_err(|e| at(e.into()))?;
        }
        other => return Err(format!("unsupported tar entry type {other:?}")),
    }
    finish(dest, &header, mode, false)
}

/// Owner, then mode (chown clears setuid bits), then times.
fn finish(dest: &Path, header: &tar::Header, mode: u32, is_link: bool) -> Result<(), String> {
    let uid = header.uid().map_err(|e| e.to_string())? as u32;
    let gid = header.gid().map_err(|e| e.to_string())? as u32;
    let flag = if is_link {
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW
    } else {
        nix::fcntl::AtFlags::empty()
    };
    match nix::unistd::fchownat(
        None,
        dest,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        flag,
    ) {
        Ok(()) => {}
        Err(nix::Error::EPERM) if !nix::unistd::geteuid().is_root() => {}
        Err(e) => return Err(format!("chown {}: {e}", dest.display())),
    }
    if !is_link {
        fs::set_permissions(dest, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", dest.display()))?;
    }
    set_times(dest, header, !is_link)
}

fn set_times(dest: &Path, header: &tar::Header, follow: bool) -> Result<(), String> {
    let mtime = header.mtime().unwrap_or(0) as i64;
    let ts = nix::sys::time::TimeSpec::new(mtime, 0);
    let flag = if follow {
        nix::sys::stat::UtimensatFlags::FollowSymlink
    } else {
        nix::sys::stat::UtimensatFlags::NoFollowSymlink
    };
    nix::sys::stat::utimensat(None, dest, &ts, &ts, flag)
        .map_err(|e| format!("utimes {}: {e}", dest.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    pub(crate) struct Tmp(pub PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("zones-unit-layer-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    /// A tar built entry by entry: (name, kind, data or link target).
    pub(crate) enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a str),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    /// Raw names are written into the header bytes, so `../x` and `/x` survive (the tar
    /// crate's builder would refuse them).
    pub(crate) fn tar_of(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            let (name, data): (&str, &[u8]) = match e {
                E::Dir(n) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (n, b"")
                }
                E::File(n, d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    (n, d.as_bytes())
                }
                E::Sym(n, t) | E::Hard(n, t) => {
                    h.set_entry_type(if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_mode(0o777);
                    raw_link(&mut h, t);
                    (n, b"")
                }
            };
            raw_name(&mut h, name);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn raw_name(h: &mut tar::Header, name: &str) {
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
    }

    fn raw_link(h: &mut tar::Header, target: &str) {
        let field = &mut h.as_old_mut().linkname;
        field.fill(0);
        field[..target.len()].copy_from_slice(target.as_bytes());
    }

    #[test]
    fn entries_whiteouts_and_opaque_dirs() {
        let t = tmp("wh");
        let root = t.0.join("root");
        fs::create_dir(&root).unwrap();
        let l1 = tar_of(&[
            E::Dir("./etc/"),
            E::File("./etc/passwd", "root\n"),
            E::File("./etc/gone", "x"),
            E::Dir("./var/"),
            E::Dir("./var/cache/"),
            E::File("./var/cache/a", "a"),
            E::File("./var/cache/b", "b"),
            E::Sym("./bin", "usr/bin"),
            E::Hard("./etc/passwd2", "./etc/passwd"),
        ]);
        let a = apply(&l1[..], &root, "l1").unwrap();
        assert_eq!(a.entries, 9);
        assert_eq!(
            fs::read_link(root.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert_eq!(
            fs::metadata(root.join("etc/passwd2")).unwrap().ino(),
            fs::metadata(root.join("etc/passwd")).unwrap().ino()
        );
        // Layer 2: a whiteout, an opaque dir with a new file, a replaced file.
        let l2 = tar_of(&[
            E::File("etc/.wh.gone", ""),
            E::Dir("var/cache/"),
            E::File("var/cache/c", "c"),
            E::File("var/cache/.wh..wh..opq", ""),
            E::File("etc/passwd", "root2\n"),
        ]);
        let a = apply(&l2[..], &root, "l2").unwrap();
        assert_eq!(a.whiteouts, 2);
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("var/cache/a").exists() && !root.join("var/cache/b").exists());
        assert_eq!(fs::read_to_string(root.join("var/cache/c")).unwrap(), "c");
        assert_eq!(
            fs::read_to_string(root.join("etc/passwd")).unwrap(),
            "root2\n"
        );
        // The old hard link keeps the old content: the file was replaced, not written through.
        assert_eq!(
            fs::read_to_string(root.join("etc/passwd2")).unwrap(),
            "root\n"
        );
        assert_eq!(
            fs::metadata(root.join("var/cache")).unwrap().mtime(),
            1_000_000
        );
        assert!(!root.join("etc/.wh.gone").exists());
    }

    fn refused(entries: &[E], expect: &str) {
        let t = tmp("bad");
        let root = t.0.join("root");
        let outside = t.0.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let tarball = tar_of(entries);
        let e = apply(&tarball[..], &root, "evil.tar")
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect) && e.contains("evil.tar"), "{e}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "wrote outside");
    }

    #[test]
    fn traversal_is_refused() {
        refused(&[E::File("../outside/x", "pwned")], "'..'");
        refused(&[E::File("a/../../outside/x", "pwned")], "'..'");
        refused(&[E::File("/etc/x", "pwned")], "absolute path");
        // A symlink to outside, then a write through it.
        refused(
            &[E::Sym("evil", "../outside"), E::File("evil/x", "pwned")],
            "goes through the symlink 'evil'",
        );
        refused(
            &[E::Sym("evil", "/tmp"), E::Dir("evil/sub/")],
            "goes through the symlink 'evil'",
        );
        refused(&[E::Hard("h", "../outside/x")], "hard link target");
        refused(&[E::File("a/.wh...", "")], "whiteout must name");
    }

    #[test]
    fn a_file_replacing_a_symlink_does_not_write_through_it() {
        let t = tmp("sym");
        let root = t.0.join("root");
        fs::create_dir(&root).unwrap();
        let victim = t.0.join("victim");
        fs::write(&victim, "safe").unwrap();
        let l = tar_of(&[E::Sym("f", victim.to_str().unwrap()), E::File("f", "pwned")]);
        apply(&l[..], &root, "l").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "safe");
        assert_eq!(fs::read_to_string(root.join("f")).unwrap(), "pwned");
    }

    #[test]
    fn compression_is_sniffed() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"./etc"), Compression::None);
        let data = tar_of(&[E::File("z", "zstd!")]);
        let z = zstd::stream::encode_all(&data[..], 1).unwrap();
        let t = tmp("zst");
        let r = Compression::sniff(&z).decoder(&z[..]).unwrap();
        apply(r, &t.0, "z").unwrap();
        assert_eq!(fs::read_to_string(t.0.join("z")).unwrap(), "zstd!");
    }
}
