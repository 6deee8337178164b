//! The host-side mounts of a kvm zone's root: made by zoneadmd before the zone's container
//! (whose root bind is recursive, so they come along, locked in the zone's user namespace),
//! removed after it.

use std::fs;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// What is bound into the zone root.
pub struct Binds<'a> {
    /// The brand root, read-only on /usr.
    pub brand: &'a Path,
    /// Read-only file binds on /vm/kernel and /vm/initrd.
    pub kernel: Option<&'a Path>,
    pub initrd: Option<&'a Path>,
    /// The host-made QMP directory, read-write on /vm/qmp.
    pub qmp: &'a Path,
    /// The disk clones' directory (`<zonepath>/vm/disks`), read-write on /vm/disks.
    pub disks: Option<&'a Path>,
    /// The disk images (id, host file), each read-only on /vm/images/<id>.
    pub images: &'a [(String, std::path::PathBuf)],
}

/// Where in the zone root, innermost last: unmounted in reverse order.
const TARGETS: &[&str] = &["usr", "vm/kernel", "vm/initrd", "vm/qmp", "vm/disks"];
/// The directory of the image binds (one per image id) in the zone root.
const IMAGES: &str = "vm/images";

/// Make every bind of `b` in the zone root `root`; on error the caller runs [`unmount`].
pub fn mount_all(root: &Path, b: &Binds) -> Result<(), String> {
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    bind(root, b.brand, "usr", ro, true)?;
    if let Some(k) = b.kernel {
        bind(root, k, "vm/kernel", ro | MsFlags::MS_NOEXEC, false)?;
    }
    if let Some(i) = b.initrd {
        bind(root, i, "vm/initrd", ro | MsFlags::MS_NOEXEC, false)?;
    }
    let rw = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    bind(root, b.qmp, "vm/qmp", rw, true)?;
    if let Some(d) = b.disks {
        bind(root, d, "vm/disks", rw, true)?;
    }
    for (id, file) in b.images {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(format!("image id '{id}': not a file name"));
        }
        bind(
            root,
            file,
            &format!("{IMAGES}/{id}"),
            ro | MsFlags::MS_NOEXEC,
            false,
        )?;
    }
    Ok(())
}

/// Bind `src` on `root/rel` (made if missing: a directory, or an empty file for a file
/// bind), then remount it with `flags`. The zone is not running, and no component of
/// `rel` may be a symlink: the host would follow it out of the zone root.
fn bind(root: &Path, src: &Path, rel: &str, flags: MsFlags, dir: bool) -> Result<(), String> {
    let dst = root.join(rel);
    let dst = dst.as_path();
    let mut at = root.to_path_buf();
    for part in Path::new(rel).components() {
        at.push(part);
        if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "{} is a symbolic link: the zone root's mount points must be plain; reinstall the zone",
                at.display()
            ));
        }
    }
    if fs::symlink_metadata(dst).is_err() {
        let made = if dir {
            fs::create_dir_all(dst)
        } else {
            dst.parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::write(dst, b""))
        };
        made.map_err(|e| format!("{}: {e}", dst.display()))?;
    }
    let none: Option<&str> = None;
    mount(Some(src), dst, none, MsFlags::MS_BIND, none)
        .map_err(|e| format!("bind {} on {}: {e}", src.display(), dst.display()))?;
    mount(
        none,
        dst,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        none,
    )
    .map_err(|e| format!("remount {}: {e}", dst.display()))
}

/// Where [`mount_all`] mounts in the zone root `root` (canonical), outermost first.
fn targets(root: &Path) -> Vec<std::path::PathBuf> {
    let images = fs::read_dir(root.join(IMAGES))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| root.join(IMAGES).join(e.file_name()));
    TARGETS.iter().map(|t| root.join(t)).chain(images).collect()
}

/// Remove every mount [`mount_all`] made (and any stacked twice); idempotent.
pub fn unmount(root: &Path) {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    for p in targets(&root).iter().rev() {
        for _ in 0..8 {
            if !is_mounted(p) {
                break;
            }
            if umount2(p, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_err() {
                break;
            }
        }
    }
}

/// Whether any of the zone root's VM mounts is there.
pub fn mounted(root: &Path) -> bool {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    targets(&root).iter().any(|p| is_mounted(p))
}

/// Whether `p` (canonical) is a mount point: a bind from the same filesystem keeps the
/// device number, so /proc/self/mountinfo is asked, not stat.
fn is_mounted(p: &Path) -> bool {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = p.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape(m) == want)
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(n);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
