//! `zfs:POOL/DATASET`: an image becomes the dataset `POOL/DATASET/images/<image id>` with a
//! `@final` snapshot (made once from the image's rootfs); each zone is `zfs clone` of it,
//! `POOL/DATASET/<zonename>`, mounted at `<zonepath>/root`. Quota: `zfs set quota`, not
//! `refquota`: as SmartOS's vmadm does for an OS zone's root, the zone's snapshots count in
//! its allowance, so snapshotting cannot take a zone past its quota (and `zoneadm snapshot`
//! fails once the zone is full); zone snapshots: `zfs snapshot`; detach: `zfs send` streams
//! (a full one and an incremental one, self-contained: no clone relation; `-c` on OpenZFS)
//! at the zonepath that attach receives on the other host (another pool). Everything through the `zfs` command (OpenZFS or zfs-fuse).
//!
//! zfs-fuse answers "dataset is busy" to destroy, rename and rollback right after a mount:
//! those are retried (after a kernel unmount) until [`BUSY_DEADLINE`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Backend, ImageRef, Kind, Record, Snapshot, StorageError};

pub struct Zfs {
    pub parent: String,
}

/// How long a busy dataset is retried.
pub const BUSY_DEADLINE: Duration = Duration::from_secs(10);

/// The stream file `zoneadm detach` leaves at the zonepath.
pub const DETACH_STREAM: &str = "SUNWdetached.zfs";
/// Beside it, when the zone has snapshots: the incremental stream from the oldest to detach's.
pub const DETACH_INCR: &str = "SUNWdetached.incr.zfs";
/// The snapshot detach sends from (system snapshots start with `_`).
const DETACH_SNAP: &str = "_detach";

/// A ZFS dataset name: components of letters, digits, `_-.:` separated by `/`.
pub fn valid_dataset(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_-.:".contains(ch))
        })
}

fn cmd_err(args: &[&str], msg: impl Into<String>) -> StorageError {
    StorageError::Command {
        cmd: format!("zfs {}", args.join(" ")),
        msg: msg.into(),
    }
}

fn spawn_err(args: &[&str], e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        cmd_err(
            args,
            "the zfs command is not installed: storage zfs needs OpenZFS (zfsutils-linux) or \
             zfs-fuse, with its daemon running",
        )
    } else {
        cmd_err(args, e.to_string())
    }
}

/// Run `zfs ARGS`; stdout on success, stderr as the error.
pub fn zfs(args: &[&str]) -> Result<String, StorageError> {
    let out = Command::new("zfs")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_err(args, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(cmd_err(args, msg))
    }
}

/// Run `zpool ARGS`; stdout on success, stderr as the error.
pub fn zpool(args: &[&str]) -> Result<String, StorageError> {
    let err = |msg: String| StorageError::Command {
        cmd: format!("zpool {}", args.join(" ")),
        msg,
    };
    let out = Command::new("zpool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// OpenZFS (the kernel module, /dev/zfs), not zfs-fuse.
pub fn openzfs() -> bool {
    Path::new("/dev/zfs").exists()
}

fn is_busy(e: &StorageError) -> bool {
    matches!(e, StorageError::Command { msg, .. } if msg.contains("busy"))
}

/// `zfs ARGS`, retried while the dataset is busy; `mountpoint` (if any) is unmounted with
/// umount(2) between tries, which is what unsticks zfs-fuse.
fn zfs_retry(args: &[&str], mountpoint: Option<&Path>) -> Result<String, StorageError> {
    let until = Instant::now() + BUSY_DEADLINE;
    loop {
        match zfs(args) {
            Err(e) if is_busy(&e) && Instant::now() < until => {
                if let Some(mp) = mountpoint {
                    let _ = super::overlay::unmount(mp);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

fn exists(name: &str) -> Result<bool, StorageError> {
    let args = ["list", "-H", "-o", "name", name];
    match zfs(&args) {
        Ok(_) => Ok(true),
        Err(StorageError::Command { msg, .. }) if msg.contains("does not exist") => Ok(false),
        Err(e) => Err(e),
    }
}

/// Destroy `name` (and its snapshots), promoting clones of its snapshots first so that other
/// zones cloned from this one survive. A missing dataset is fine.
fn destroy_dataset(name: &str, mountpoint: Option<&Path>) -> Result<(), StorageError> {
    if !exists(name)? {
        return Ok(());
    }
    // Clones of this dataset's snapshots (zfs-fuse has no `clones` property: by origin).
    let pool = name.split('/').next().unwrap_or(name);
    let all = zfs(&["list", "-H", "-o", "name,origin", "-r", pool]).unwrap_or_default();
    let prefix = format!("{name}@");
    for line in all.lines() {
        if let Some((clone, origin)) = line.split_once('\t') {
            if origin.starts_with(&prefix) {
                zfs_retry(&["promote", clone], None)?;
            }
        }
    }
    if let Some(mp) = mountpoint {
        let _ = super::overlay::unmount(mp);
    }
    zfs_retry(&["destroy", "-r", name], mountpoint).map(drop)
}

impl Zfs {
    fn zone_dataset(&self, zone: &str) -> Result<String, StorageError> {
        if zone == "images" {
            return Err(StorageError::BadKind {
                value: format!("zfs:{}", self.parent),
                why: "a zone named 'images' would collide with the image datasets; rename the zone"
                    .into(),
            });
        }
        Ok(format!("{}/{zone}", self.parent))
    }

    fn need_parent(&self) -> Result<(), StorageError> {
        if exists(&self.parent)? {
            Ok(())
        } else {
            Err(StorageError::BadKind {
                value: format!("zfs:{}", self.parent),
                why: format!(
                    "dataset {} does not exist; create it with: zfs create -p {}",
                    self.parent, self.parent
                ),
            })
        }
    }

    /// `PARENT/images/<id>@final`, made from the image's rootfs the first time. A dataset
    /// without `@final` is a half-made one (a crash): it is destroyed and made again.
    fn image_snapshot(&self, image: &ImageRef) -> Result<String, StorageError> {
        let images = format!("{}/images", self.parent);
        let ds = format!("{images}/{}", image.id);
        let snap = format!("{ds}@final");
        if exists(&snap)? {
            return Ok(snap);
        }
        if !exists(&images)? {
            match zfs(&["create", &images]) {
                Err(_) if exists(&images)? => {}
                r => {
                    r?;
                }
            }
        }
        // The image copies keep their set-id binaries and device nodes: closed to host users.
        let images_mp = zfs(&["get", "-H", "-o", "value", "mountpoint", &images])?;
        let images_mp = Path::new(images_mp.trim());
        if images_mp.is_absolute() {
            super::seal_dir(images_mp)?;
        }
        destroy_dataset(&ds, None)?;
        zfs(&["create", &ds])?;
        let made = (|| {
            let mp = zfs(&["get", "-H", "-o", "value", "mountpoint", &ds])?;
            let mp = Path::new(mp.trim());
            if !mp.is_dir() {
                zfs(&["mount", &ds])?;
            }
            super::copy_tree(image.rootfs, mp)?;
            zfs(&["snapshot", &snap])?;
            zfs(&["set", "readonly=on", &ds]).map(drop)
        })();
        if let Err(e) = made {
            let _ = destroy_dataset(&ds, None);
            return Err(e);
        }
        Ok(snap)
    }

    fn record(&self, dataset: String, image: Option<String>) -> Record {
        let mut rec = Record::new(
            Kind::Zfs {
                dataset: self.parent.clone(),
            },
            image,
        );
        rec.dataset = Some(dataset);
        rec
    }

    /// `zfs clone ORIGIN DATASET` mounted at `<zonepath>/root`; nothing left on failure.
    fn clone_at(&self, origin: &str, ds: &str, zonepath: &Path) -> Result<(), StorageError> {
        if exists(ds)? {
            return Err(StorageError::BadKind {
                value: format!("zfs:{}", self.parent),
                why: format!("dataset {ds} already exists (another zone or host uses it)"),
            });
        }
        let root = zonepath.join("root");
        let mp = format!("mountpoint={}", root.display());
        zfs(&["clone", "-o", &mp, origin, ds])?;
        if !super::is_mount_point(&root) {
            if let Err(e) = zfs(&["mount", ds]) {
                let _ = destroy_dataset(ds, Some(&root));
                return Err(e);
            }
        }
        Ok(())
    }
}

fn dataset_of(rec: &Record) -> Result<&str, StorageError> {
    rec.dataset.as_deref().ok_or_else(|| StorageError::BadKind {
        value: rec.kind.to_string(),
        why: "the zone's storage record names no dataset".into(),
    })
}

fn snapshot_name(ds: &str, name: &str) -> String {
    format!("{ds}@{name}")
}

impl Backend for Zfs {
    fn provision(
        &self,
        image: &ImageRef,
        zonepath: &Path,
        zone: &str,
    ) -> Result<Record, StorageError> {
        let ds = self.zone_dataset(zone)?;
        self.need_parent()?;
        let origin = self.image_snapshot(image)?;
        self.clone_at(&origin, &ds, zonepath)?;
        Ok(self.record(ds, Some(image.id.to_string())))
    }

    fn clone_zone(
        &self,
        _src: &Path,
        src_rec: &Record,
        zonepath: &Path,
        zone: &str,
    ) -> Result<Record, StorageError> {
        let ds = self.zone_dataset(zone)?;
        let src_ds = dataset_of(src_rec)?;
        let origin = snapshot_name(src_ds, &format!("_clone-{zone}"));
        if exists(&ds)? {
            return Err(StorageError::BadKind {
                value: format!("zfs:{}", self.parent),
                why: format!("dataset {ds} already exists (another zone or host uses it)"),
            });
        }
        if exists(&origin)? {
            zfs_retry(&["destroy", &origin], None)?;
        }
        zfs(&["snapshot", &origin])?;
        if let Err(e) = self.clone_at(&origin, &ds, zonepath) {
            let _ = zfs_retry(&["destroy", &origin], None);
            return Err(e);
        }
        let mut rec = self.record(ds, src_rec.image.clone());
        rec.origin = Some(origin);
        Ok(rec)
    }

    fn activate(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError> {
        let root = zonepath.join("root");
        if super::is_mount_point(&root) {
            return Ok(());
        }
        zfs(&["mount", dataset_of(rec)?]).map(drop)
    }

    fn deactivate(&self, _zonepath: &Path, _rec: &Record) -> Result<(), StorageError> {
        // The clone stays mounted while the zone is installed, as on illumos.
        Ok(())
    }

    fn destroy(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError> {
        let ds = dataset_of(rec)?;
        destroy_dataset(ds, Some(&zonepath.join("root")))?;
        if let Some(origin) = &rec.origin {
            // The source zone may be gone (with its snapshots) already.
            if exists(origin)? {
                let _ = zfs_retry(&["destroy", origin], None);
            }
        }
        let _ = std::fs::remove_file(zonepath.join(DETACH_STREAM));
        let _ = std::fs::remove_file(zonepath.join(DETACH_INCR));
        Ok(())
    }

    fn set_quota(
        &self,
        _zonepath: &Path,
        rec: &Record,
        bytes: Option<u64>,
    ) -> Result<(), StorageError> {
        let q = match bytes {
            Some(b) => format!("quota={b}"),
            None => "quota=none".into(),
        };
        zfs(&["set", &q, dataset_of(rec)?]).map(drop)
    }

    fn snapshot(&self, _zonepath: &Path, rec: &Record, name: &str) -> Result<(), StorageError> {
        zfs(&["snapshot", &snapshot_name(dataset_of(rec)?, name)]).map(drop)
    }

    fn rollback(&self, zonepath: &Path, rec: &Record, name: &str) -> Result<(), StorageError> {
        let snap = snapshot_name(dataset_of(rec)?, name);
        zfs_retry(&["rollback", &snap], Some(&zonepath.join("root")))?;
        self.activate(zonepath, rec)
    }

    fn snapshots(&self, _zonepath: &Path, rec: &Record) -> Result<Vec<Snapshot>, StorageError> {
        let ds = dataset_of(rec)?;
        // zfs-fuse's `list` has no -p: names from list, creation times from `get -p`.
        let out = zfs(&[
            "list", "-H", "-t", "snapshot", "-o", "name", "-s", "creation", "-r", "-d", "1", ds,
        ])?;
        let names: Vec<&str> = out
            .lines()
            .filter(|full| {
                full.split_once('@')
                    .is_some_and(|(owner, n)| owner == ds && !n.starts_with('_'))
            })
            .collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["get", "-H", "-p", "-o", "name,value", "creation"];
        args.extend(names.iter().copied());
        let times = zfs(&args)?;
        let mut snaps = Vec::new();
        for full in &names {
            let created = times
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{full}\t")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            snaps.push(Snapshot {
                name: full
                    .split_once('@')
                    .map(|(_, n)| n)
                    .unwrap_or(full)
                    .to_string(),
                created,
            });
        }
        Ok(snaps)
    }

    fn delete_snapshot(
        &self,
        _zonepath: &Path,
        rec: &Record,
        name: &str,
    ) -> Result<(), StorageError> {
        zfs_retry(&["destroy", &snapshot_name(dataset_of(rec)?, name)], None).map(drop)
    }

    fn detach(&self, zonepath: &Path, rec: &Record) -> Result<(), StorageError> {
        let ds = dataset_of(rec)?;
        let snap = snapshot_name(ds, DETACH_SNAP);
        if exists(&snap)? {
            zfs_retry(&["destroy", &snap], None)?;
        }
        zfs(&["snapshot", &snap])?;
        let path = zonepath.join(DETACH_STREAM);
        let sent = (|| {
            send_self_contained(ds, &snap, &path, &zonepath.join(DETACH_INCR))?;
            // The zonepath now holds files only: the dataset is unmounted until attach.
            zfs_retry(&["umount", ds], Some(&zonepath.join("root"))).map(drop)
        })();
        if let Err(e) = sent {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(zonepath.join(DETACH_INCR));
            let _ = zfs_retry(&["destroy", &snap], None);
            return Err(e);
        }
        Ok(())
    }

    fn attach(&self, zonepath: &Path, rec: &Record, zone: &str) -> Result<Record, StorageError> {
        let ds = self.zone_dataset(zone)?;
        let root = zonepath.join("root");
        let stream = zonepath.join(DETACH_STREAM);
        let mut new = self.record(ds.clone(), rec.image.clone());
        new.quota = rec.quota;
        if rec.dataset.as_deref() == Some(ds.as_str()) && exists(&ds)? {
            // Attached again where it was detached: the dataset is still here.
            new.origin = rec.origin.clone();
        } else {
            self.need_parent()?;
            if exists(&ds)? {
                return Err(StorageError::BadKind {
                    value: format!("zfs:{}", self.parent),
                    why: format!("dataset {ds} already exists; cannot receive the zone into it"),
                });
            }
            let file = std::fs::File::open(&stream).map_err(|e| StorageError::Bad {
                path: stream.clone(),
                msg: format!("the zfs stream detach writes: {e}; detach the zone on its old host and copy its zonepath here"),
            })?;
            let received =
                receive_all(&ds, file, &zonepath.join(DETACH_INCR)).and_then(|_| match rec.quota {
                    Some(b) => zfs(&["set", &format!("quota={b}"), &ds]).map(drop),
                    None => Ok(()),
                });
            if let Err(e) = received {
                let _ = destroy_dataset(&ds, None);
                return Err(e);
            }
        }
        let mp = format!("mountpoint={}", root.display());
        let mounted = zfs(&["set", &mp, &ds]).and_then(|_| {
            if super::is_mount_point(&root) {
                Ok(String::new())
            } else {
                zfs(&["mount", &ds])
            }
        });
        if let Err(e) = mounted {
            if rec.dataset.as_deref() != Some(ds.as_str()) {
                let _ = destroy_dataset(&ds, Some(&root));
            }
            return Err(e);
        }
        let _ = zfs_retry(&["destroy", &snapshot_name(&ds, DETACH_SNAP)], None);
        let _ = std::fs::remove_file(&stream);
        let _ = std::fs::remove_file(zonepath.join(DETACH_INCR));
        Ok(new)
    }
}

/// The streams detach leaves: a full stream of the zone dataset's oldest snapshot at `full`,
/// then, when there are more, the incremental stream (`-I`) from it to `last` at `incr`. Not
/// `send -R`: for a clone (every installed zone is one) that records the clone relation, and
/// a host without the image's dataset (another pool, another host) cannot receive it. No
/// `-p` (zfs-fuse cannot receive it): attach sets the quota from the record; `-c` on OpenZFS
/// sends blocks as compressed on disk. zfs-fuse: one `send -R` stream (same pool only).
fn send_self_contained(ds: &str, last: &str, full: &Path, incr: &Path) -> Result<(), StorageError> {
    let snaps = zfs(&[
        "list",
        "-H",
        "-o",
        "name",
        "-t",
        "snapshot",
        "-s",
        "createtxg",
        "-d",
        "1",
        ds,
    ])?;
    let mut first = snaps.lines().next().unwrap_or(last).to_string();
    if !openzfs() {
        // zfs-fuse receives no incremental stream of this (silently, exit 1): one replication
        // stream (-R), which another pool of zfs-fuse cannot take for a clone, as before.
        first = last.to_string();
    }
    let c = if openzfs() { &["-c"][..] } else { &[][..] };
    let full_args: &[&str] = if openzfs() {
        &["send"]
    } else {
        &["send", "-R"]
    };
    let mut runs: Vec<(Vec<&str>, &Path)> =
        vec![([full_args, c, &[first.as_str()]].concat(), full)];
    if first != last {
        runs.push((
            [&["send", "-p"][..], c, &["-I", first.as_str(), last]].concat(),
            incr,
        ));
    }
    for (args, path) in runs {
        let file = std::fs::File::create(path).map_err(|e| StorageError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let out = Command::new("zfs")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| spawn_err(&args, e))?;
        if !out.status.success() {
            return Err(cmd_err(
                &args,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
    }
    Ok(())
}

/// `zfs receive -u DS` of the full stream (`file`), then of the incremental one at `incr` if
/// detach wrote one (see [`send_self_contained`]); both files are removed after the attach.
fn receive_all(ds: &str, file: std::fs::File, incr: &Path) -> Result<(), StorageError> {
    let mut inputs = vec![("the full stream", file)];
    if let Ok(f) = std::fs::File::open(incr) {
        inputs.push(("the incremental stream", f));
    }
    for (i, (what, f)) in inputs.into_iter().enumerate() {
        // The incremental one with -F: the dataset was made by the full one just now, and
        // anything that touched it since (atime) would refuse it otherwise.
        let args: &[&str] = if i == 0 {
            &["receive", "-u", ds]
        } else {
            &["receive", "-u", "-F", ds]
        };
        let out = Command::new("zfs")
            .args(args)
            .stdin(f)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| spawn_err(args, e))?;
        if !out.status.success() {
            let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if msg.is_empty() {
                // zfs-fuse says some of it on stdout.
                msg = format!(
                    "{} ({})",
                    String::from_utf8_lossy(&out.stdout).trim(),
                    out.status
                );
            }
            return Err(cmd_err(args, format!("{what}: {msg}")));
        }
    }
    Ok(())
}

/// Destroy the image dataset of `image_id` under `parent` (imgadm delete); refused by zfs
/// while zones are cloned from it.
pub fn forget_image(parent: &str, image_id: &str) -> Result<(), StorageError> {
    let ds = format!("{parent}/images/{image_id}");
    if exists(&ds)? {
        // No promote here: a clone of @final elsewhere keeps the image (zfs refuses).
        zfs_retry(&["destroy", "-r", &ds], None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_zfs_command_says_what_to_install() {
        let e = spawn_err(
            &["list", "tank"],
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
        .to_string();
        assert!(
            e.starts_with("zfs list tank: the zfs command is not installed")
                && e.contains("zfs-fuse"),
            "{e}"
        );
        let busy = cmd_err(&["destroy", "t/z"], "cannot destroy 't/z': dataset is busy");
        assert!(is_busy(&busy));
        assert!(!is_busy(&cmd_err(&["destroy", "t/z"], "does not exist")));
    }
}
