//! Applying one layer (a tar stream) onto a root filesystem being built, safely.
//!
//! Every entry name is checked before anything is written: no `..` component, no name
//! longer than PATH_MAX, and no parent that is a symlink. A leading `/` is read as the
//! layer's root, as containerd and umoci do (`umoci insert ROOTFS /` writes an entry `/`
//! and entries such as `/etc/x`) (an earlier entry
//! `evil -> /etc` followed by `evil/passwd` would otherwise write the host's /etc). Every
//! change is made relative to the root's directory fd ([`RootDir`]), one component at a time
//! without following symlinks: the final component is never followed either, nor is a
//! directory later replaced by a symlink when its times are set at the end.
//! Whiteouts (`.wh.NAME`) remove NAME from the lower layers; an opaque marker
//! (`.wh..wh..opq`) empties its directory of everything the lower layers put there.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::limits;
use super::rootdir::{self, RootDir};
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
        let mut f = rootdir::open_regular(path)?;
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
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// The longest entry name accepted (PATH_MAX less its NUL).
pub const NAME_MAX_BYTES: usize = 4095;
/// The longest component of an entry name (NAME_MAX).
pub const COMPONENT_MAX_BYTES: usize = 255;

/// The safe relative path of an entry name, or why it is refused. `None`: the root itself.
/// A leading `/` names the layer's root (containerd and umoci read `/etc/x` as `etc/x`); a
/// `..` component is refused wherever it is, so `/../x` cannot climb out either.
pub fn entry_path(name: &Path) -> Result<Option<PathBuf>, String> {
    let len = name.as_os_str().len();
    if len > NAME_MAX_BYTES {
        return Err(format!(
            "the name is {len} bytes long; the limit is {NAME_MAX_BYTES}"
        ));
    }
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) if p.len() > COMPONENT_MAX_BYTES => {
                return Err(format!(
                    "a component of the name is {} bytes long; the limit is {COMPONENT_MAX_BYTES}",
                    p.len()
                ))
            }
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err("a '..' component leaves the image root".into()),
            Component::Prefix(_) => return Err("a path prefix is not allowed in a layer".into()),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// What an archive is, and so what its entries may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image layer: whiteouts remove what lower layers made; owners, modes, devices and
    /// hard links are kept.
    Layer,
    /// A whole root filesystem (`zoneadm install -d`, `imgadm import --rootfs`): as a layer,
    /// but `.wh.` names are ordinary names.
    Rootfs,
    /// An image archive's own files (oci-archive, docker-archive): directories, regular files
    /// and symlinks only, owned by the caller, no setuid bits.
    Archive,
}

/// How to unpack: the kind of archive and how many bytes it may expand to.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub kind: Kind,
    pub limit: u64,
    /// The stream was compressed, so its decoder has checked where it ends (gzip's CRC and
    /// length, zstd's frame): an archive that stops at an entry boundary without the tar
    /// end-of-archive marker is then whole, as Go's archive/tar (containerd, umoci) reads
    /// it. umoci 0.4.7 (Debian 12's) writes `insert` layers so (opencontainers/umoci#436,
    /// fixed by #534). A plain stream that stops there may have been cut: refused.
    pub framed: bool,
}

/// What applying a layer did, for the manifest and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub entries: u64,
    pub whiteouts: u64,
}

/// An entry name as errors show it: long names cut short.
fn shown(raw: &Path) -> String {
    let s = raw.display().to_string();
    if s.len() <= 120 {
        return s;
    }
    let mut cut = 100;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes)", &s[..cut], s.len())
}

/// A read error of the archive stream, in words.
fn read_error(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::FileTooLarge {
        e.to_string()
    } else {
        format!("truncated or corrupt: {e}")
    }
}

/// Apply the layer tar stream `reader` (uncompressed) to `root`. `what` names the layer in
/// errors.
pub fn apply(reader: impl Read, root: &Path, what: &str) -> Result<Applied, ImageError> {
    let limit = limits::expand_limit(None).unwrap_or(limits::FLOOR);
    apply_with(
        reader,
        root,
        what,
        Rules {
            kind: Kind::Layer,
            limit,
            framed: false,
        },
    )
}

/// A framed stream (see [`Rules::framed`]) that ends without the tar end-of-archive marker,
/// or without the padding of its last block: the missing zeros are supplied after its end,
/// as Go's archive/tar reads such a stream to its end. Whether they stood for an entry's
/// data is checked afterwards (`real` against where the entries' data ends).
struct Unended<R> {
    inner: R,
    framed: bool,
    /// Bytes of the real stream.
    real: u64,
    /// Zeros still to supply; `None` until the real stream has ended.
    zeros: Option<u64>,
    /// Whether any zero was supplied (read by the tar reader or the final drain).
    supplied: bool,
}

impl<R: Read> Unended<R> {
    fn new(inner: R, framed: bool) -> Self {
        Unended {
            inner,
            framed,
            real: 0,
            zeros: None,
            supplied: false,
        }
    }
}

impl<R: Read> Read for Unended<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.zeros.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() || !self.framed {
                self.real += n as u64;
                return Ok(n);
            }
            // The rest of the last block, then the two zero blocks of the end marker.
            self.zeros = Some((512 - self.real % 512) % 512 + 1024);
        }
        let left = self.zeros.unwrap_or(0);
        let n = left.min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        self.zeros = Some(left - n as u64);
        self.supplied |= n > 0;
        Ok(n)
    }
}

/// What one pass over an archive has made so far.
#[derive(Default)]
struct Pass {
    done: Applied,
    /// Paths this layer made: an opaque marker must not remove them.
    ours: HashSet<PathBuf>,
    /// Directories made, for their times at the end.
    dirs: Vec<(PathBuf, i64)>,
    /// File bytes written.
    written: u64,
}

/// Apply the tar stream `reader` (uncompressed) to `root` by `rules`. The stream must end
/// with the tar end-of-archive marker (unless `rules.framed`) and be readable to its end (a compressed stream's
/// checksum is checked there); past `rules.limit` bytes it is refused.
pub fn apply_with(
    reader: impl Read,
    root: &Path,
    what: &str,
    rules: Rules,
) -> Result<Applied, ImageError> {
    let bad = |entry: &str, why: String| ImageError::BadLayer {
        layer: what.to_string(),
        entry: entry.to_string(),
        why,
    };
    let dir = RootDir::open(root).map_err(|e| bad("", format!("{}: {e}", root.display())))?;
    let mut unended = Unended::new(reader, rules.framed);
    let mut src = limits::Guarded::new(&mut unended, rules.limit);
    let mut pass = Pass::default();
    // Where the data of the entries read so far ends in the stream.
    let mut data_end = 0u64;
    {
        let mut ar = tar::Archive::new(&mut src);
        let entries = ar.entries().map_err(|e| bad("", read_error(e)))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad("", read_error(e)))?;
            let raw = entry
                .path()
                .map_err(|e| bad("", e.to_string()))?
                .into_owned();
            let size = entry.header().entry_size().unwrap_or(0);
            data_end = data_end.max(entry.raw_file_position().saturating_add(size));
            apply_entry(&dir, &mut entry, &raw, rules, &mut pass)
                .map_err(|why| bad(&shown(&raw), why))?;
        }
    }
    if src.ended {
        return Err(bad(
            "",
            "truncated: the archive ends without its end-of-archive marker".into(),
        ));
    }
    // The rest (padding, and a compressed stream's trailer, whose checksum is checked at its end).
    io::copy(&mut src, &mut io::sink()).map_err(|e| bad("", read_error(e)))?;
    // What Unended supplied may stand for padding and the end marker, never for data.
    if unended.supplied && data_end > unended.real {
        return Err(bad(
            "",
            "truncated: the last entry's data is cut short".into(),
        ));
    }
    // Directory times last: creating their children changed them. A directory that a later
    // entry replaced (by a symlink, say) is not followed: it is skipped.
    for (rel, mtime) in pass.dirs.iter().rev() {
        let Ok(parent) = dir.walk(rel.parent().unwrap_or(Path::new("")), false) else {
            continue;
        };
        let name = rel.file_name().unwrap_or_default();
        if let Ok(fd) = rootdir::open_dir(parent.as_raw_fd(), name, false) {
            let ts = TimeSpec::new(*mtime, 0);
            nix::sys::stat::futimens(fd.as_raw_fd(), &ts, &ts)
                .map_err(|e| bad(&shown(rel), format!("setting its times: {e}")))?;
        }
    }
    Ok(pass.done)
}

fn apply_entry<R: Read>(
    dir: &RootDir,
    entry: &mut tar::Entry<R>,
    raw: &Path,
    rules: Rules,
    pass: &mut Pass,
) -> Result<(), String> {
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
    ) {
        return Ok(());
    }
    let Some(rel) = entry_path(raw)? else {
        return Ok(()); // the root directory itself
    };
    let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    let parent = dir.walk(&parent_rel, true).map_err(|w| w.to_string())?;
    let name = rel.file_name().unwrap_or_default().to_os_string();
    let file_name = name.to_str().unwrap_or("");
    if rules.kind == Kind::Layer && file_name == OPAQUE {
        opaque(&parent, &parent_rel, &pass.ours).map_err(|e| e.to_string())?;
        pass.done.whiteouts += 1;
        return Ok(());
    }
    if let Some(victim) = file_name
        .strip_prefix(WHITEOUT)
        .filter(|_| rules.kind == Kind::Layer)
    {
        if victim.is_empty() || victim == "." || victim == ".." || victim.contains('/') {
            return Err("a whiteout must name an entry".into());
        }
        rootdir::remove_at(parent.as_raw_fd(), OsStr::new(victim)).map_err(|e| e.to_string())?;
        pass.done.whiteouts += 1;
        return Ok(());
    }
    make_entry(dir, entry, &parent, &name, rules, pass)?;
    if kind == tar::EntryType::Directory {
        let mtime = entry.header().mtime().unwrap_or(0) as i64;
        pass.dirs.push((rel.clone(), mtime));
    }
    pass.ours.insert(rel);
    pass.done.entries += 1;
    Ok(())
}

/// Empty the directory `parent_rel` (open as `dir`) of everything not made by this layer.
fn opaque(dir: &OwnedFd, parent_rel: &Path, ours: &HashSet<PathBuf>) -> io::Result<()> {
    let fd = rootdir::open_dir(dir.as_raw_fd(), OsStr::new("."), false)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    rootdir::empty_dir(&fd, |n| !ours.contains(&parent_rel.join(n)))
}

/// The type character of a tar entry, for messages: `'Z' (0x5a)`.
fn type_char(header: &tar::Header) -> String {
    let b = header.as_bytes()[156];
    if b.is_ascii_graphic() {
        format!("'{}' (0x{b:02x})", b as char)
    } else {
        format!("0x{b:02x}")
    }
}

/// Refuse an entry type the archive's kind does not allow, naming it.
fn check_type(header: &tar::Header, rules: Rules) -> Result<(), String> {
    use tar::EntryType as T;
    let what = match header.entry_type() {
        T::Directory | T::Regular | T::Continuous | T::GNUSparse | T::Symlink => return Ok(()),
        _ if rules.kind != Kind::Archive => match header.entry_type() {
            T::Link | T::Char | T::Block | T::Fifo => return Ok(()),
            _ => None,
        },
        T::Link => Some("hard link"),
        T::Fifo => Some("FIFO"),
        T::Char | T::Block => Some("device node"),
        _ => None,
    };
    Err(match what {
        Some(w) => format!(
            "a {w} is not allowed in an image archive (only directories, regular files and symlinks)"
        ),
        None => format!(
            "entry type {} is not supported (only files, sparse files, directories, symlinks, hard links, devices and FIFOs)",
            type_char(header)
        ),
    })
}

fn make_entry<R: Read>(
    dir: &RootDir,
    entry: &mut tar::Entry<R>,
    parent: &OwnedFd,
    name: &OsStr,
    rules: Rules,
    pass: &mut Pass,
) -> Result<(), String> {
    let header = entry.header().clone();
    check_type(&header, rules)?;
    let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
    let mode = if rules.kind == Kind::Archive {
        mode & 0o755
    } else {
        mode
    };
    let pfd = parent.as_raw_fd();
    let kind = header.entry_type();
    if kind == tar::EntryType::Directory {
        return make_dir(pfd, name, &header, mode, rules);
    }
    rootdir::remove_at(pfd, name).map_err(|e| e.to_string())?;
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let f = make_file(pfd, name, entry, rules.limit, &mut pass.written)?;
            finish_fd(&f, &header, mode, rules)
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or("a symlink without a target")?;
            nix::unistd::symlinkat(target.as_ref(), Some(pfd), name).map_err(|e| e.to_string())?;
            finish_at(pfd, name, &header, None, rules)
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .ok_or("a hard link without a target")?;
            make_hard_link(dir, &target, pfd, name)
        }
        _ => {
            make_node(pfd, name, &header)?;
            finish_at(pfd, name, &header, Some(mode), rules)
        }
    }
}

/// The directory `name` in `pfd`: kept when it is one, else what is there is replaced.
fn make_dir(
    pfd: RawFd,
    name: &OsStr,
    header: &tar::Header,
    mode: u32,
    rules: Rules,
) -> Result<(), String> {
    if rootdir::kind_at(pfd, name).map_err(|e| e.to_string())? != Some(SFlag::S_IFDIR) {
        rootdir::remove_at(pfd, name).map_err(|e| e.to_string())?;
        nix::sys::stat::mkdirat(Some(pfd), name, Mode::from_bits_truncate(0o700))
            .map_err(|e| e.to_string())?;
    }
    let fd = rootdir::open_dir(pfd, name, false).map_err(|e| e.to_string())?;
    finish_fd(&fd, header, mode, rules)
}

/// The regular file `name` in `pfd` with the entry's data; `written` (all files so far) may
/// not pass `limit`, checked as the data is copied (a sparse entry writes more than it reads).
fn make_file(
    pfd: RawFd,
    name: &OsStr,
    data: impl Read,
    limit: u64,
    written: &mut u64,
) -> Result<fs::File, String> {
    let mut f = rootdir::create_file(pfd, name).map_err(|e| e.to_string())?;
    let room = limit.saturating_sub(*written);
    let n = io::copy(&mut data.take(room.saturating_add(1)), &mut f).map_err(read_error)?;
    *written += n;
    if n > room {
        return Err(limits::too_big(limit));
    }
    Ok(f)
}

/// A hard link `name` in `pfd` to `target`, an entry inside the root reached without any
/// symlink; linkat without AT_SYMLINK_FOLLOW links a symlink target itself.
fn make_hard_link(dir: &RootDir, target: &Path, pfd: RawFd, name: &OsStr) -> Result<(), String> {
    let what = || format!("hard link target '{}'", shown(target));
    let rel = entry_path(target)
        .map_err(|why| format!("{}: {why}", what()))?
        .ok_or("a hard link to the root")?;
    let src = dir
        .walk(rel.parent().unwrap_or(Path::new("")), false)
        .map_err(|w| format!("{} {w}", what()))?;
    nix::unistd::linkat(
        Some(src.as_raw_fd()),
        rel.file_name().unwrap_or_default(),
        Some(pfd),
        name,
        nix::fcntl::AtFlags::empty(),
    )
    .map_err(|e| format!("{}: {e}", what()))
}

/// A device node or FIFO `name` in `pfd` (0600 until its mode is set).
fn make_node(pfd: RawFd, name: &OsStr, header: &tar::Header) -> Result<(), String> {
    let sflag = match header.entry_type() {
        tar::EntryType::Char => SFlag::S_IFCHR,
        tar::EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let major = header.device_major().ok().flatten().unwrap_or(0);
    let minor = header.device_minor().ok().flatten().unwrap_or(0);
    let dev = nix::sys::stat::makedev(major.into(), minor.into());
    nix::sys::stat::mknodat(Some(pfd), name, sflag, Mode::from_bits_truncate(0o600), dev)
        .map_err(|e| e.to_string())
}

/// The header's owner, or None when the archive's owners are not kept.
fn owner(header: &tar::Header, rules: Rules) -> Result<Option<(Uid, Gid)>, String> {
    if rules.kind == Kind::Archive {
        return Ok(None);
    }
    let uid = header.uid().map_err(|e| e.to_string())? as u32;
    let gid = header.gid().map_err(|e| e.to_string())? as u32;
    Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
}

/// A chown's result: EPERM is fine when not root (the files stay ours).
fn chowned(r: nix::Result<()>) -> Result<(), String> {
    match r {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) if !nix::unistd::geteuid().is_root() => Ok(()),
        Err(e) => Err(format!("chown: {e}")),
    }
}

/// Owner, then mode (chown clears setuid bits), then times, on an open file or directory.
fn finish_fd(
    fd: &impl AsRawFd,
    header: &tar::Header,
    mode: u32,
    rules: Rules,
) -> Result<(), String> {
    let fd = fd.as_raw_fd();
    if let Some((u, g)) = owner(header, rules)? {
        chowned(nix::unistd::fchown(fd, Some(u), Some(g)))?;
    }
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
        .map_err(|e| format!("chmod: {e}"))?;
    let ts = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
    nix::sys::stat::futimens(fd, &ts, &ts).map_err(|e| format!("setting its times: {e}"))
}

/// [`finish_fd`] for what cannot be opened (a symlink: no mode; a device node), by name in
/// `dir`, never following a symlink.
fn finish_at(
    dir: RawFd,
    name: &OsStr,
    header: &tar::Header,
    mode: Option<u32>,
    rules: Rules,
) -> Result<(), String> {
    if let Some((u, g)) = owner(header, rules)? {
        chowned(nix::unistd::fchownat(
            Some(dir),
            name,
            Some(u),
            Some(g),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ))?;
    }
    if let Some(mode) = mode {
        // The node was just made by mknodat here: it is not a symlink to follow.
        nix::sys::stat::fchmodat(
            Some(dir),
            name,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| format!("chmod: {e}"))?;
    }
    let ts = TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0);
    nix::sys::stat::utimensat(
        Some(dir),
        name,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| format!("setting its times: {e}"))
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
        refused(&[E::File("/../outside/x", "pwned")], "'..'");
        refused(&[E::File("/etc/../../outside/x", "pwned")], "'..'");
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

    /// umoci (`umoci insert ROOTFS /`) writes `/` and `/etc/x`: they name the layer's root,
    /// as containerd and umoci read them, and nothing lands outside it.
    #[test]
    fn a_leading_slash_names_the_layer_root() {
        let t = tmp("slash");
        let root = t.0.join("root");
        let outside = t.0.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let abs_outside = format!("{}/x", outside.display());
        let l = tar_of(&[
            E::Dir("/"),
            E::Dir("/etc/"),
            E::File("/etc/x", "x"),
            E::Dir("./bin/"),
            E::File("./bin/y", "y"),
            E::Hard("/etc/x2", "/etc/x"),
            E::File(&abs_outside, "inside"),
        ]);
        let a = apply(&l[..], &root, "umoci").unwrap();
        assert_eq!(a.entries, 6);
        assert_eq!(fs::read_to_string(root.join("etc/x")).unwrap(), "x");
        assert_eq!(fs::read_to_string(root.join("bin/y")).unwrap(), "y");
        assert_eq!(
            fs::metadata(root.join("etc/x2")).unwrap().ino(),
            fs::metadata(root.join("etc/x")).unwrap().ino()
        );
        let landed = root.join(abs_outside.trim_start_matches('/'));
        assert_eq!(fs::read_to_string(landed).unwrap(), "inside");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "wrote outside");
        assert_eq!(entry_path(Path::new("/")).unwrap(), None);
        assert_eq!(
            entry_path(Path::new("//etc/./x")).unwrap(),
            Some(PathBuf::from("etc/x"))
        );
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

    fn rules(kind: Kind, limit: u64) -> Rules {
        Rules {
            kind,
            limit,
            framed: false,
        }
    }

    /// A host file (made by the test) with old, distinct times: (path, atime, mtime).
    fn host_file(t: &Tmp) -> (PathBuf, i64, i64) {
        let host = t.0.join("host");
        fs::create_dir_all(&host).unwrap();
        let f = host.join("file");
        fs::write(&f, "host\n").unwrap();
        let (a, m) = (1_111_111, 222_222_222);
        nix::sys::stat::utimensat(
            None,
            &f,
            &TimeSpec::new(a, 0),
            &TimeSpec::new(m, 0),
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
        (f, a, m)
    }

    fn untouched(f: &Path, a: i64, m: i64) {
        use std::os::unix::fs::MetadataExt;
        let md = fs::metadata(f).unwrap();
        assert_eq!((md.atime(), md.mtime()), (a, m), "host file times changed");
        assert_eq!(fs::read_to_string(f).unwrap(), "host\n");
        // Reading it moved its atime: put it back for the next look.
        nix::sys::stat::utimensat(
            None,
            f,
            &TimeSpec::new(a, 0),
            &TimeSpec::new(m, 0),
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn a_directory_replaced_by_a_symlink_is_not_followed_for_its_times() {
        let t = tmp("dirsym");
        let root = t.0.join("root");
        fs::create_dir(&root).unwrap();
        let (f, a, m) = host_file(&t);
        let l = tar_of(&[E::Dir("d/"), E::Sym("d", f.to_str().unwrap())]);
        apply(&l[..], &root, "l").unwrap();
        untouched(&f, a, m);
        // The same to a missing path: no 'utimes <staging path>: ENOENT', the link is made.
        let l = tar_of(&[E::Dir("m/"), E::Sym("m", "/nonexistent-runz-test")]);
        apply(&l[..], &root, "l").unwrap();
        assert!(fs::symlink_metadata(root.join("m"))
            .unwrap()
            .file_type()
            .is_symlink());
        // A later entry under d/ is refused; the host's directory gets nothing.
        let host_dir = f.parent().unwrap().to_str().unwrap().to_string();
        let l = tar_of(&[
            E::Dir("e/"),
            E::Sym("e", &host_dir),
            E::File("e/file", "pwned"),
        ]);
        let err = apply(&l[..], &root, "l").unwrap_err().to_string();
        assert!(err.contains("goes through the symlink 'e'"), "{err}");
        untouched(&f, a, m);
        // A hard link through the symlink is refused too.
        let l = tar_of(&[E::Sym("s", &host_dir), E::Hard("h", "s/file")]);
        let err = apply(&l[..], &root, "l").unwrap_err().to_string();
        assert!(
            err.contains("hard link target 's/file' goes through the symlink 's'"),
            "{err}"
        );
        assert_eq!(fs::metadata(&f).unwrap().nlink(), 1);
    }

    #[test]
    fn truncated_archives_are_errors() {
        let whole = tar_of(&[E::Dir("a/"), E::File("a/x", "xxxx"), E::File("a/y", "yyyy")]);
        // Cut at an entry boundary (after a/x's data block): no end marker.
        let cut = &whole[..512 * 3];
        let t = tmp("trunc");
        let e = apply(cut, &t.0, "cut.tar").unwrap_err().to_string();
        assert!(
            e.contains("truncated: the archive ends without its end-of-archive marker"),
            "{e}"
        );
        // A gzip stream cut in its padding: the tar is whole but the trailer is missing.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &whole).unwrap();
        let gz = gz.finish().unwrap();
        for keep in [gz.len() - 4, gz.len() - 8, gz.len() / 2] {
            let t = tmp("truncgz");
            let r = Compression::Gzip.decoder(&gz[..keep]).unwrap();
            let e = apply(r, &t.0, "cut.tar.gz").unwrap_err().to_string();
            assert!(
                e.contains("cut.tar.gz") && (e.contains("truncated") || e.contains("corrupt")),
                "{keep}: {e}"
            );
        }
        let t = tmp("wholegz");
        apply(Compression::Gzip.decoder(&gz[..]).unwrap(), &t.0, "ok").unwrap();
        // Concatenated gzip members (bgzip, pigz -i, `cat a.gz b.gz`) are one stream.
        let (one, two) = whole.split_at(512 * 2);
        let mut cat = Vec::new();
        for part in [one, two] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            io::Write::write_all(&mut gz, part).unwrap();
            cat.extend(gz.finish().unwrap());
        }
        let t = tmp("multigz");
        apply(
            Compression::Gzip.decoder(&cat[..]).unwrap(),
            &t.0,
            "cat.tar.gz",
        )
        .unwrap();
        assert_eq!(fs::read_to_string(t.0.join("a/y")).unwrap(), "yyyy");
        // umoci 0.4.7 (`insert`, umoci#436): a whole gzip stream of a tar without its end
        // marker nor the last entry's padding is whole, as Go's archive/tar reads it; a plain
        // one is not.
        let unended = &whole[..512 * 4 + 4];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, unended).unwrap();
        let gz = gz.finish().unwrap();
        let framed = Rules {
            kind: Kind::Layer,
            limit: 1 << 20,
            framed: true,
        };
        let t = tmp("umoci");
        let dec = Compression::Gzip.decoder(&gz[..]).unwrap();
        apply_with(dec, &t.0, "umoci.tar.gz", framed).unwrap();
        assert_eq!(fs::read_to_string(t.0.join("a/y")).unwrap(), "yyyy");
        let t = tmp("umoci-plain");
        let e = apply(unended, &t.0, "plain.tar").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // Framed, but the last entry's data is cut short: refused.
        let short = &whole[..512 * 4 + 2];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, short).unwrap();
        let gz = gz.finish().unwrap();
        let t = tmp("umoci-short");
        let dec = Compression::Gzip.decoder(&gz[..]).unwrap();
        let e = apply_with(dec, &t.0, "short.tar.gz", framed)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        // A zstd frame cut short.
        let z = zstd::stream::encode_all(&whole[..], 1).unwrap();
        let t = tmp("truncz");
        let r = Compression::Zstd.decoder(&z[..z.len() - 3]).unwrap();
        let e = apply(r, &t.0, "cut.tar.zst").unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt"), "{e}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros in one file: a few dozen KB compressed.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(64 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "bomb", io::repeat(0).take(64 << 20))
            .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
        let gz = gz.finish().unwrap();
        assert!(gz.len() < 1 << 20);
        let t = tmp("bomb");
        let r = Compression::Gzip.decoder(&gz[..]).unwrap();
        let e = apply_with(r, &t.0, "bomb.tar.gz", rules(Kind::Layer, 8 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expands beyond 8388608 bytes") && e.contains(limits::LIMIT_ENV),
            "{e}"
        );
        let on_disk = fs::metadata(t.0.join("bomb")).map(|m| m.len()).unwrap_or(0);
        assert!(on_disk <= 8 << 20, "{on_disk} bytes written");
    }

    #[test]
    fn a_sparse_entry_stops_at_the_limit_while_it_is_written() {
        // 512 bytes of data at the end of a `size`-byte file: the rest are holes, read as zeros.
        let sparse = |size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::GNUSparse);
            h.set_path("sparse").unwrap();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(512);
            let gnu = h.as_gnu_mut().unwrap();
            gnu.sparse[0].set_offset(size - 512);
            gnu.sparse[0].set_length(512);
            gnu.set_real_size(size);
            h.set_cksum();
            let mut b = tar::Builder::new(Vec::new());
            b.append(&h, &[7u8; 512][..]).unwrap();
            b.into_inner().unwrap()
        };
        let t = tmp("sparse-ok");
        apply_with(
            &sparse(1 << 20)[..],
            &t.0,
            "s.tar",
            rules(Kind::Rootfs, 8 << 20),
        )
        .unwrap();
        let data = fs::read(t.0.join("sparse")).unwrap();
        assert_eq!(data.len(), 1 << 20);
        assert!(data[..(1 << 20) - 512].iter().all(|b| *b == 0) && data[(1 << 20) - 1] == 7);
        let tarball = sparse(2 << 30);
        let t = tmp("sparse");
        let e = apply_with(
            &tarball[..],
            &t.0,
            "sparse.tar",
            rules(Kind::Rootfs, 8 << 20),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("expands beyond 8388608 bytes"), "{e}");
        let on_disk = fs::metadata(t.0.join("sparse"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(on_disk <= (8 << 20) + 8192, "{on_disk} bytes written");
    }

    #[test]
    fn long_names_odd_types_and_archive_members_are_refused_by_name() {
        for (name, expect) in [
            (
                "a/".repeat(2500) + "f",
                "the name is 5001 bytes long; the limit is 4095",
            ),
            ("c".repeat(300), "a component of the name is 300 bytes long"),
        ] {
            // The tar crate's builder writes a GNU long-name entry for these.
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            b.append_data(&mut h, &name, &b"x"[..]).unwrap();
            let t = tmp("long");
            let e = apply(&b.into_inner().unwrap()[..], &t.0, "long.tar")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expect) && e.contains("bytes)"), "{e}");
            assert_eq!(
                fs::read_dir(&t.0).unwrap().count(),
                0,
                "a partial tree is left"
            );
        }
        // Type 'Z' (not a tar type).
        let mut tarball = tar_of(&[E::File("odd", "x")]);
        tarball[156] = b'Z';
        let sum: u32 = tarball[..512]
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    *b as u32
                }
            })
            .sum();
        tarball[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let t = tmp("odd");
        let e = apply(&tarball[..], &t.0, "odd.tar")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("entry 'odd': entry type 'Z' (0x5a) is not supported"),
            "{e}"
        );
        // An image archive may not carry a hard link.
        let l = tar_of(&[E::File("a", "x"), E::Hard("b", "a")]);
        let t = tmp("arch");
        let e = apply_with(&l[..], &t.0, "img.tar", rules(Kind::Archive, 1 << 20))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a hard link is not allowed in an image archive"),
            "{e}"
        );
        // A rootfs takes `.wh.` names as they are.
        let l = tar_of(&[E::File("keep", "k"), E::File(".wh.keep", "")]);
        let t = tmp("rootfs");
        apply_with(&l[..], &t.0, "r.tar", rules(Kind::Rootfs, 1 << 20)).unwrap();
        assert!(t.0.join("keep").exists() && t.0.join(".wh.keep").exists());
    }
}
