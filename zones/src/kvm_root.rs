//! The kvm brand's root: what a kvm zone holds instead of a distribution.
//!
//! - The *brand root* is made once per host and per qemu binary, under
//!   `ALTROOT/var/lib/zones/brands/kvm/<sha256 of qemu>/` (its parents 0700, like the image
//!   store): a copy of `qemu-system-x86_64`, exactly the shared libraries the dynamic loader
//!   resolves for it and its TCG accelerator module (`ldd`), and the firmware a direct-kernel
//!   or disk boot with `-nodefaults -vga none` loads (SeaBIOS, linuxboot, kvmvapic). It is laid
//!   out as `/usr` (`bin/`, `lib/`, `lib64/`, `share/`) and mounted read-only there by the
//!   supervisor: no host directory is bound into the zone.
//! - The *zone root* ([`make_zone_root`]) is a small directory: `dev proc sys tmp run usr vm`,
//!   `bin lib lib64` as links into `/usr`, and `/etc/passwd` with the `qemu` user
//!   ([`crate::kvm::QEMU_ID`]), who owns none of it.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KvmRootError {
    #[error("qemu-system-x86_64 not found on PATH: install it (apt-get install qemu-system-x86)")]
    NoQemu,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("ldd {path}: {why}")]
    Ldd { path: PathBuf, why: String },
    #[error("qemu's firmware {name} is missing from {dirs}: install qemu-system-x86 and seabios")]
    NoFirmware { name: String, dirs: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> KvmRootError + '_ {
    move |source| KvmRootError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The firmware files qemu 7.2 loads for `-nodefaults -vga none` with `-kernel` (linuxboot,
/// pvh, multiboot) or a disk boot (SeaBIOS), and kvmvapic: (brand-root path, host paths).
const FIRMWARE: &[(&str, &[&str])] = &[
    (
        "share/seabios/bios-256k.bin",
        &[
            "/usr/share/seabios/bios-256k.bin",
            "/usr/share/qemu/bios-256k.bin",
        ],
    ),
    ("share/qemu/kvmvapic.bin", &["/usr/share/qemu/kvmvapic.bin"]),
    (
        "share/qemu/linuxboot_dma.bin",
        &["/usr/share/qemu/linuxboot_dma.bin"],
    ),
    (
        "share/qemu/linuxboot.bin",
        &["/usr/share/qemu/linuxboot.bin"],
    ),
    ("share/qemu/pvh.bin", &["/usr/share/qemu/pvh.bin"]),
    (
        "share/qemu/multiboot_dma.bin",
        &["/usr/share/qemu/multiboot_dma.bin"],
    ),
];

/// The accelerator modules qemu loads from `<bindir>/../lib/x86_64-linux-gnu/qemu`.
const MODULES: &[&str] = &["accel-tcg-x86_64.so"];
const MODULE_DIR: &str = "lib/x86_64-linux-gnu/qemu";

/// The host's qemu-system-x86_64: the first on PATH.
pub fn find_qemu() -> Result<PathBuf, KvmRootError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("qemu-system-x86_64"))
        .find(|p| p.is_file())
        .ok_or(KvmRootError::NoQemu)
}

/// `ALTROOT/var/lib/zones/brands/kvm`.
pub fn brands_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("brands/kvm")
}

/// The brand root for `qemu` under `state_dir` (`ALTROOT/var/lib/zones`), made if missing.
pub fn brand_root(state_dir: &Path, qemu: &Path) -> Result<PathBuf, KvmRootError> {
    let dir = brands_dir(state_dir);
    // The digest of the binary as last seen (device, inode, size, mtime): every boot asks,
    // and hashing 18 MB each time would be most of a boot's time.
    let seen = fs::metadata(qemu).map_err(io_at(qemu))?;
    let stat_key = {
        use std::os::unix::fs::MetadataExt;
        format!(
            ".seen-{}-{}-{}-{}.{}",
            seen.dev(),
            seen.ino(),
            seen.size(),
            seen.mtime(),
            seen.mtime_nsec()
        )
    };
    if let Ok(digest) = fs::read_to_string(dir.join(&stat_key)) {
        let at = dir.join(digest.trim());
        if digest.trim().len() == 64 && at.join("bin/qemu-system-x86_64").is_file() {
            return Ok(at);
        }
    }
    let bytes = fs::read(qemu).map_err(io_at(qemu))?;
    let digest = hex(&Sha256::digest(&bytes));
    let at = dir.join(&digest);
    if at.join("bin/qemu-system-x86_64").is_file() {
        let _ = fs::write(dir.join(&stat_key), &digest);
        return Ok(at);
    }
    for d in [state_dir.join("brands"), dir.clone()] {
        fs::create_dir_all(&d).map_err(io_at(&d))?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).map_err(io_at(&d))?;
    }
    let tmp = dir.join(format!(".tmp-{digest}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let built = build(&tmp, qemu);
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let renamed = fs::rename(&tmp, &at);
    if renamed.is_ok() || at.join("bin/qemu-system-x86_64").is_file() {
        let _ = fs::write(dir.join(&stat_key), &digest);
    }
    match renamed {
        Ok(()) => Ok(at),
        // Another zoneadm made it first: theirs is the same copy.
        Err(_) if at.join("bin/qemu-system-x86_64").is_file() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(at)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(io_at(&at)(e))
        }
    }
}

fn build(root: &Path, qemu: &Path) -> Result<(), KvmRootError> {
    mkdir(root, 0o755)?;
    copy(qemu, &root.join("bin/qemu-system-x86_64"), 0o755)?;
    let mut objects = vec![qemu.to_path_buf()];
    let module_src = qemu
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join(MODULE_DIR))
        .unwrap_or_default();
    for m in MODULES {
        let src = module_src.join(m);
        if src.is_file() {
            copy(&src, &root.join(MODULE_DIR).join(m), 0o644)?;
            objects.push(src);
        }
    }
    let mut libs = Vec::new();
    for o in &objects {
        for l in needed(o)? {
            if !libs.contains(&l) {
                libs.push(l);
            }
        }
    }
    for lib in &libs {
        copy(lib, &root.join(usr_relative(lib)), 0o755)?;
    }
    for (dest, sources) in FIRMWARE {
        let src = sources
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| KvmRootError::NoFirmware {
                name: dest.rsplit('/').next().unwrap_or(dest).to_string(),
                dirs: sources.join(", "),
            })?;
        copy(src, &root.join(dest), 0o644)?;
    }
    Ok(())
}

/// The shared objects the dynamic loader resolves for `elf` (its interpreter included), as
/// the paths it names them by (`/lib/x86_64-linux-gnu/libz.so.1`).
fn needed(elf: &Path) -> Result<Vec<PathBuf>, KvmRootError> {
    let err = |why: String| KvmRootError::Ldd {
        path: elf.to_path_buf(),
        why,
    };
    let out = Command::new("ldd")
        .arg(elf)
        .output()
        .map_err(|e| err(format!("{e} (install libc-bin)")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            return Err(err(format!("a library is missing: {line}")));
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            v.push(PathBuf::from(p));
        }
    }
    Ok(v)
}

/// A host library path as a path in the brand root (mounted on /usr; /lib and /lib64 in the
/// zone are links into it).
fn usr_relative(p: &Path) -> PathBuf {
    let rel = p.strip_prefix("/").unwrap_or(p);
    rel.strip_prefix("usr").unwrap_or(rel).to_path_buf()
}

fn mkdir(p: &Path, mode: u32) -> Result<(), KvmRootError> {
    fs::create_dir_all(p).map_err(io_at(p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_at(p))
}

/// A copy of `src`'s contents (symlinks followed) at `dst`, mode `mode`.
fn copy(src: &Path, dst: &Path, mode: u32) -> Result<(), KvmRootError> {
    if let Some(parent) = dst.parent() {
        mkdir(parent, 0o755)?;
    }
    fs::copy(src, dst).map_err(io_at(src))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(io_at(dst))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The zone root of a kvm zone at `root` (made here; owned by root until the zone's id range
/// shifts it): mount points for the platform mounts, `/usr` (the brand root), `/vm` (qemu's
/// kernel, initrd, disks and QMP socket), links into `/usr`, and the `qemu` user.
pub fn make_zone_root(root: &Path) -> Result<(), KvmRootError> {
    use crate::kvm::QEMU_ID;
    mkdir(root, 0o755)?;
    for d in ["dev", "proc", "sys", "run", "usr", "etc", "vm"] {
        mkdir(&root.join(d), 0o755)?;
    }
    mkdir(&root.join("tmp"), 0o1777)?;
    for (link, to) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        symlink(to, root.join(link)).map_err(io_at(&root.join(link)))?;
    }
    let passwd =
        format!("root:x:0:0:root:/:/bin/false\nqemu:x:{QEMU_ID}:{QEMU_ID}:qemu:/vm:/bin/false\n");
    let group = format!("root:x:0:\nqemu:x:{QEMU_ID}:\n");
    for (name, text) in [("passwd", passwd), ("group", group)] {
        let p = root.join("etc").join(name);
        fs::write(&p, text).map_err(io_at(&p))?;
    }
    // Nothing here is qemu's: /vm and the rest stay the zone root's, which runs nothing, so
    // the hypervisor cannot swap a mount point for a link the host would follow at the next
    // boot. What qemu writes is bound in: its QMP directory and its disks.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_land_under_usr() {
        assert_eq!(
            usr_relative(Path::new("/lib/x86_64-linux-gnu/libz.so.1")),
            PathBuf::from("lib/x86_64-linux-gnu/libz.so.1")
        );
        assert_eq!(
            usr_relative(Path::new("/usr/lib/x86_64-linux-gnu/libz.so.1")),
            PathBuf::from("lib/x86_64-linux-gnu/libz.so.1")
        );
        assert_eq!(
            usr_relative(Path::new("/lib64/ld-linux-x86-64.so.2")),
            PathBuf::from("lib64/ld-linux-x86-64.so.2")
        );
    }
}
