//! Images: import (OCI image layout, oci-archive, docker-archive, plain rootfs tarball, raw
//! and qcow2 disk images), the image store, and what an `app` zone takes from an image's
//! configuration.
//!
//! The store is `ALTROOT/var/lib/zones/images/<id>/` with `rootfs/` (all layers applied), or
//! for a disk image (`type: zvol`) the file `disk` ([`disk`]), and `manifest.json`
//! ([`ImageManifest`]). An import is built in a staging directory beside it
//! (`.import-<pid>-<n>`) and renamed into place only when every layer has been verified and
//! applied, so a failed import leaves nothing and never touches another image. Imports and
//! deletes hold `images/.lock`.

pub mod build;
pub mod digest;
pub mod disk;
pub mod layer;
pub mod limits;
pub mod progress;
pub mod qcow2;
pub mod registry;
pub mod rootdir;
pub mod source;
pub mod user;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::spec::AppProcess;
use digest::{Digest, HashingReader};
pub use disk::{DiskFormat, DiskImage};
use layer::Compression;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {why}", .path.display())]
    BadImage { path: PathBuf, why: String },
    #[error("layer {layer}: {}{why}", entry_prefix(.entry))]
    BadLayer {
        layer: String,
        entry: String,
        why: String,
    },
    #[error("digest '{digest}': {why}")]
    BadDigest { digest: String, why: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: unknown media type '{media_type}'")]
    MediaType { what: String, media_type: String },
    #[error("image {id} is already imported (as '{name}')")]
    Exists { id: String, name: String },
    #[error("image name '{name}' is already used by image {id}")]
    NameTaken { name: String, id: String },
    #[error("{0}: no such image")]
    NotFound(String),
    #[error("'{key}' matches several images: {ids}; give more of the id")]
    Ambiguous { key: String, ids: String },
    #[error("'{reference}': {why}")]
    BadReference { reference: String, why: String },
    #[error("registry: {url}: {why}")]
    Registry { url: String, why: String },
    #[error("registry {registry}: not authorized: {why}")]
    Unauthorized { registry: String, why: String },
    #[error("image '{name}' ({id}) is a {kind}: {what}")]
    WrongType {
        name: String,
        id: String,
        kind: &'static str,
        what: &'static str,
    },
    #[error("image '{name}' ({id}) is used by zone(s): {zones}")]
    InUse {
        name: String,
        id: String,
        zones: String,
    },
}

/// `entry 'NAME': ` for an error about one entry; nothing for one about the whole stream.
fn entry_prefix(entry: &str) -> String {
    if entry.is_empty() {
        String::new()
    } else {
        format!("entry '{entry}': ")
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an image says to run: kept for `app` zones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

impl ImageConfig {
    /// From the `config` object of an OCI/docker image configuration.
    pub fn from_json(v: &Value) -> ImageConfig {
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        ImageConfig {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env"),
            workdir: text("WorkingDir"),
            user: text("User"),
        }
    }

    /// The process of an `app` zone: entrypoint then cmd (a shell when the image names none).
    pub fn app_process(&self) -> AppProcess {
        let mut args: Vec<String> = self.entrypoint.iter().chain(&self.cmd).cloned().collect();
        if args.is_empty() {
            args.push("/bin/sh".into());
        }
        AppProcess {
            args,
            env: self.env.clone(),
            cwd: self.workdir.clone(),
            user: self.user.clone(),
        }
    }
}

/// Where an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceType {
    OciLayout,
    OciArchive,
    DockerArchive,
    Rootfs,
    Registry,
    /// A raw disk image file.
    Raw,
    /// A qcow2 disk image file.
    Qcow2,
}

/// What an image is, as SmartOS's manifests say: a zone's root filesystem, or a disk image
/// for kvm zones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageType {
    #[default]
    ZoneDataset,
    Zvol,
}

impl ImageType {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageType::ZoneDataset => "zone-dataset",
            ImageType::Zvol => "zvol",
        }
    }
}

/// `images/<id>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// 64 hex digits: the manifest digest (OCI), the config digest (docker-archive), or the
    /// digest of the tarball (rootfs).
    pub id: String,
    pub name: String,
    /// `zone-dataset` (a root filesystem) or `zvol` (a disk image).
    #[serde(default, rename = "type")]
    pub image_type: ImageType,
    pub source: SourceType,
    /// The path imported from.
    pub origin: String,
    /// Seconds since the epoch.
    pub imported: u64,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    /// Layer digests (uncompressed, `diff_ids`) in order.
    #[serde(default)]
    pub layers: Vec<String>,
    /// Bytes of regular files in the rootfs; a disk image's file length.
    pub size: u64,
    /// A disk image's guest-visible size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<u64>,
    #[serde(default)]
    pub config: ImageConfig,
}

impl ImageManifest {
    /// The first 12 hex digits, as `list` shows.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// A disk image's format; `None` for a root filesystem image.
    pub fn disk_format(&self) -> Option<DiskFormat> {
        match (self.image_type, self.source) {
            (ImageType::Zvol, SourceType::Raw) => Some(DiskFormat::Raw),
            (ImageType::Zvol, SourceType::Qcow2) => Some(DiskFormat::Qcow2),
            _ => None,
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The path is a plain root filesystem (tarball, gzip/zstd tarball, or directory).
    pub rootfs: bool,
    /// The path is a disk image of this format (a qcow2 file is one even without it).
    pub disk: Option<DiskFormat>,
    pub name: Option<String>,
    /// Draw progress bars on stderr (the caller checks that it is a terminal).
    pub progress: bool,
}

/// The image store of one (alternate) root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    dir: PathBuf,
}

/// Removes a staging directory unless the import succeeded.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = crate::storage::remove_tree(&p);
        }
    }
}

impl ImageStore {
    /// `ALTROOT/var/lib/zones/images` (touches nothing).
    pub fn open(altroot: &Path) -> ImageStore {
        ImageStore {
            dir: altroot.join("var/lib/zones/images"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rootfs of image `id`.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.dir.join(id).join("rootfs")
    }

    /// The store directory, made if missing and always 0700: an image's setuid binaries and
    /// device nodes must not be reachable by host users through it. (Zones reach an image's
    /// rootfs through their own mounts, made by root.)
    fn make_dir(&self) -> Result<(), ImageError> {
        fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io_at(&self.dir))
    }

    fn lock(&self) -> Result<Flock<fs::File>, ImageError> {
        self.make_dir()?;
        let path = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io_at(&path)(e.into()))
    }

    /// Every imported image, by name.
    pub fn list(&self) -> Result<Vec<ImageManifest>, ImageError> {
        // A store made before it was sealed is sealed at its first use (by root: a reader
        // that may not chmod it still lists what it can read).
        let _ = crate::storage::seal_dir(&self.dir);
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(io_at(&self.dir))?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = e.path().join("manifest.json");
            if let Ok(text) = fs::read(&path) {
                let m: ImageManifest =
                    serde_json::from_slice(&text).map_err(|err| ImageError::BadImage {
                        path: path.clone(),
                        why: err.to_string(),
                    })?;
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// An image by name, full id, or unique id prefix.
    pub fn get(&self, key: &str) -> Result<ImageManifest, ImageError> {
        let all = self.list()?;
        if let Some(m) = all.iter().find(|m| m.name == key || m.id == key) {
            return Ok(m.clone());
        }
        let key_hex = key.strip_prefix("sha256:").unwrap_or(key);
        let hits: Vec<&ImageManifest> = all
            .iter()
            .filter(|m| key_hex.len() >= 4 && m.id.starts_with(key_hex))
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ImageError::NotFound(key.to_string())),
            many => Err(ImageError::Ambiguous {
                key: key.to_string(),
                ids: many
                    .iter()
                    .map(|m| m.short_id())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Import the image at `path`.
    pub fn import(&self, path: &Path, opts: &ImportOptions) -> Result<ImageManifest, ImageError> {
        let _lock = self.lock()?;
        let meta = fs::metadata(path).map_err(io_at(path))?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(ImageError::BadImage {
                path: path.to_path_buf(),
                why: format!(
                    "is {}: give an image archive, a tarball, a directory or a disk image file",
                    rootdir::type_name(&meta.file_type())
                ),
            });
        }
        let origin = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let disk = match opts.disk {
            Some(f) => Some(f),
            None if meta.is_file() && disk::sniff_qcow2(path)? => Some(DiskFormat::Qcow2),
            None => None,
        };
        if let Some(format) = disk {
            return self.import_disk(path, format, &origin, opts);
        }
        if !opts.rootfs && meta.is_file() && disk::not_an_archive(path)? {
            return Err(ImageError::BadImage {
                path: path.to_path_buf(),
                why: "is not an image archive (no tar, gzip or zstd header): a raw disk image is imported with --disk raw".into(),
            });
        }
        let (staging, guard) = self.staging()?;
        let rootfs = staging.join("rootfs");
        let mut manifest = if opts.rootfs {
            self.import_rootfs(path, &meta, &rootfs, opts)?
        } else {
            let (dir, source) = if meta.is_dir() {
                (path.to_path_buf(), None)
            } else {
                let dir = staging.join("archive");
                unpack_archive(path, &dir, opts.progress)?;
                (dir, Some(()))
            };
            let resolved = source::resolve(&dir)?;
            let source = match (resolved.format, source) {
                (source::Format::OciLayout, None) => SourceType::OciLayout,
                (source::Format::OciLayout, Some(())) => SourceType::OciArchive,
                (source::Format::DockerArchive, _) => SourceType::DockerArchive,
            };
            let name = opts
                .name
                .clone()
                .or(resolved.name.clone())
                .unwrap_or_else(|| default_name(path));
            self.check_new(resolved.id.hex(), &name)?;
            let mut layers = Vec::new();
            let n = resolved.layers.len();
            for (i, l) in resolved.layers.iter().enumerate() {
                let label = format!("layer {}/{n}", i + 1);
                layers.push(
                    apply_layer(l, (&rootfs, layer::Kind::Layer), opts.progress, &label)?
                        .to_string(),
                );
            }
            if dir.starts_with(&staging) {
                crate::storage::remove_tree(&dir).map_err(|e| ImageError::BadImage {
                    path: dir.clone(),
                    why: e.to_string(),
                })?;
            }
            ImageManifest {
                id: resolved.id.hex().to_string(),
                name,
                image_type: ImageType::ZoneDataset,
                source,
                origin: String::new(),
                imported: 0,
                os: resolved.os,
                architecture: resolved.architecture,
                layers,
                size: 0,
                virtual_size: None,
                config: resolved.config,
            }
        };
        manifest.origin = origin.display().to_string();
        self.finish(staging, guard, manifest)
    }

    /// Import the disk image file `path` (raw or qcow2) as `images/<id>/disk`.
    fn import_disk(
        &self,
        path: &Path,
        format: DiskFormat,
        origin: &Path,
        opts: &ImportOptions,
    ) -> Result<ImageManifest, ImageError> {
        if opts.rootfs {
            return Err(ImageError::BadImage {
                path: path.to_path_buf(),
                why: "is a disk image, not a root filesystem: import it without --rootfs".into(),
            });
        }
        let (staging, guard) = self.staging()?;
        let rootfs = staging.join("rootfs");
        fs::remove_dir(&rootfs).map_err(io_at(&rootfs))?;
        let copied = disk::copy_in(path, format, &staging.join(disk::DISK_FILE))?;
        let name = opts.name.clone().unwrap_or_else(|| default_name(path));
        self.check_new(copied.id.hex(), &name)?;
        let manifest = ImageManifest {
            id: copied.id.hex().to_string(),
            name,
            image_type: ImageType::Zvol,
            source: match format {
                DiskFormat::Raw => SourceType::Raw,
                DiskFormat::Qcow2 => SourceType::Qcow2,
            },
            origin: origin.display().to_string(),
            imported: 0,
            os: None,
            architecture: None,
            layers: Vec::new(),
            size: copied.bytes,
            virtual_size: Some(copied.virtual_size),
            config: ImageConfig::default(),
        };
        self.finish(staging, guard, manifest)
    }

    /// The disk image `key` (a name, id or id prefix), for a kvm zone's disks.
    pub fn disk_image(&self, key: &str) -> Result<DiskImage, ImageError> {
        let m = self.get(key)?;
        let (Some(format), Some(virtual_size)) = (m.disk_format(), m.virtual_size) else {
            return Err(ImageError::WrongType {
                name: m.name.clone(),
                id: m.short_id().to_string(),
                kind: "zone image (zone-dataset)",
                what: "a kvm zone's disk needs a disk image (imgadm import --disk raw|qcow2 FILE)",
            });
        };
        Ok(DiskImage {
            path: self.dir.join(&m.id).join(disk::DISK_FILE),
            id: m.id,
            name: m.name,
            format,
            virtual_size,
        })
    }

    /// The root filesystem image `key`, for `zoneadm install -i`: a disk image is refused.
    pub fn zone_image(&self, key: &str) -> Result<ImageManifest, ImageError> {
        let m = self.get(key)?;
        if m.image_type == ImageType::Zvol {
            return Err(ImageError::WrongType {
                name: m.name.clone(),
                id: m.short_id().to_string(),
                kind: "disk image (zvol)",
                what: "it is a kvm zone's disk (add attr disk0 image=NAME), not a zone's root",
            });
        }
        Ok(m)
    }

    /// Pull `reference` (`docker://...`) from a registry. Each layer is applied as it
    /// streams in, hashed on the way: a blob whose digest or size does not match its
    /// descriptor fails the pull and the staging directory is removed.
    pub fn pull(
        &self,
        reference: &str,
        opts: &ImportOptions,
        pull: &registry::PullOptions,
    ) -> Result<ImageManifest, ImageError> {
        let r = registry::Reference::parse(reference)?;
        let _lock = self.lock()?;
        let mut client = registry::Client::new(&r, pull);
        let remote = client.resolve()?;
        let name = opts.name.clone().unwrap_or_else(|| r.to_string());
        self.check_new(remote.id.hex(), &name)?;
        let (staging, guard) = self.staging()?;
        let rootfs = staging.join("rootfs");
        let mut layers = Vec::new();
        let n = remote.layers.len();
        for (i, l) in remote.layers.iter().enumerate() {
            let label = format!("layer {}/{n} {}", i + 1, &l.digest.hex()[..12]);
            layers.push(pull_layer(&mut client, l, &rootfs, opts.progress, &label)?.to_string());
        }
        let manifest = ImageManifest {
            id: remote.id.hex().to_string(),
            name,
            image_type: ImageType::ZoneDataset,
            source: SourceType::Registry,
            origin: format!("docker://{r}"),
            imported: 0,
            os: remote.os,
            architecture: remote.architecture,
            layers,
            size: 0,
            virtual_size: None,
            config: remote.config,
        };
        self.finish(staging, guard, manifest)
    }

    /// A new staging directory with an empty `rootfs/`, removed when the guard drops.
    fn staging(&self) -> Result<(PathBuf, Staging), ImageError> {
        let staging = self
            .dir
            .join(format!(".import-{}-{}", std::process::id(), now_nanos()));
        fs::create_dir(&staging).map_err(io_at(&staging))?;
        let guard = Staging(Some(staging.clone()));
        let rootfs = staging.join("rootfs");
        fs::create_dir(&rootfs).map_err(io_at(&rootfs))?;
        let _ = fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755));
        Ok((staging, guard))
    }

    /// Write the manifest and move the staging directory into place.
    fn finish(
        &self,
        staging: PathBuf,
        guard: Staging,
        mut manifest: ImageManifest,
    ) -> Result<ImageManifest, ImageError> {
        let rootfs = staging.join("rootfs");
        manifest.imported = now_nanos() / 1_000_000_000;
        if manifest.image_type == ImageType::ZoneDataset {
            manifest.size = tree_size(&rootfs);
        }
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        crate::store::write_atomic(&staging, "manifest.json", &json).map_err(|e| {
            ImageError::BadImage {
                path: staging.clone(),
                why: e.to_string(),
            }
        })?;
        let dest = self.dir.join(&manifest.id);
        fs::rename(&staging, &dest).map_err(io_at(&dest))?;
        std::mem::forget(guard);
        Ok(manifest)
    }

    fn import_rootfs(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        rootfs: &Path,
        opts: &ImportOptions,
    ) -> Result<ImageManifest, ImageError> {
        let id = if meta.is_dir() {
            Digest::of_bytes(format!("{}:{}", path.display(), now_nanos()).as_bytes())
        } else {
            Digest::of_file(path).map_err(io_at(path))?
        };
        let name = opts.name.clone().unwrap_or_else(|| default_name(path));
        self.check_new(id.hex(), &name)?;
        let mut layers = Vec::new();
        if meta.is_dir() {
            crate::storage::copy_tree(path, rootfs).map_err(|e| ImageError::BadImage {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        } else {
            let l = source::Layer {
                blob: path.to_path_buf(),
                digest: None,
                diff_id: None,
                media_type: String::new(),
            };
            layers.push(
                apply_layer(&l, (rootfs, layer::Kind::Rootfs), opts.progress, "rootfs")?
                    .to_string(),
            );
        }
        Ok(ImageManifest {
            id: id.hex().to_string(),
            name,
            image_type: ImageType::ZoneDataset,
            source: SourceType::Rootfs,
            origin: String::new(),
            imported: 0,
            os: Some("linux".into()),
            architecture: None,
            layers,
            size: 0,
            virtual_size: None,
            config: ImageConfig::default(),
        })
    }

    /// Refuse an id already imported or a name already taken.
    fn check_new(&self, id: &str, name: &str) -> Result<(), ImageError> {
        for m in self.list()? {
            if m.id == id {
                return Err(ImageError::Exists {
                    id: m.id,
                    name: m.name,
                });
            }
            if m.name == name {
                return Err(ImageError::NameTaken {
                    name: name.to_string(),
                    id: m.id,
                });
            }
        }
        Ok(())
    }

    /// Delete an image; `users` are the zones installed from it (the delete is refused).
    pub fn delete(&self, key: &str, users: &[String]) -> Result<ImageManifest, ImageError> {
        let _lock = self.lock()?;
        let m = self.get(key)?;
        if !users.is_empty() {
            return Err(ImageError::InUse {
                name: m.name.clone(),
                id: m.short_id().to_string(),
                zones: users.join(", "),
            });
        }
        let dir = self.dir.join(&m.id);
        // Out of sight first, so a crash mid-removal leaves no half image in `list`.
        let trash = self.dir.join(format!(".delete-{}-{}", m.id, now_nanos()));
        fs::rename(&dir, &trash).map_err(io_at(&dir))?;
        crate::storage::remove_tree(&trash).map_err(|e| ImageError::BadImage {
            path: trash.clone(),
            why: e.to_string(),
        })?;
        Ok(m)
    }

    /// Remove leftovers of interrupted imports and deletes (staging dirs whose process is
    /// gone). Returns what was removed.
    pub fn clean_staging(&self) -> Result<Vec<PathBuf>, ImageError> {
        let _lock = self.lock()?;
        let mut removed = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_at(&self.dir))?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let stale = if let Some(rest) = n.strip_prefix(".import-") {
                let pid: i32 = rest
                    .split('-')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                pid <= 0 || nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err()
            } else {
                n.starts_with(".delete-")
            };
            if stale {
                let _ = crate::storage::remove_tree(&e.path());
                removed.push(e.path());
            }
        }
        Ok(removed)
    }
}

/// Verify a layer's blob digest (before reading it as tar), apply it, and check its diff_id.
/// Returns the digest of the uncompressed tar.
fn apply_layer(
    l: &source::Layer,
    (rootfs, kind): (&Path, layer::Kind),
    progress: bool,
    label: &str,
) -> Result<Digest, ImageError> {
    let what = l.blob.display().to_string();
    if let Some(want) = &l.digest {
        let got = Digest::of_file(&l.blob).map_err(io_at(&l.blob))?;
        if &got != want {
            return Err(ImageError::DigestMismatch {
                what,
                expected: want.to_string(),
                actual: got.to_string(),
            });
        }
    }
    let f = rootdir::open_regular(&l.blob).map_err(io_at(&l.blob))?;
    let size = f.metadata().map(|m| m.len()).ok();
    let bar = progress::Bar::new(progress, label, size);
    apply_stream(
        progress::ProgressReader::new(f, bar),
        &what,
        &l.media_type,
        l.diff_id.as_ref(),
        (rootfs, size, kind),
    )
}

/// Fetch and apply one layer, hashing the blob as it streams. When the blob's digest is
/// wrong that is the error reported, even if the corrupt data also failed to decompress.
fn pull_layer(
    client: &mut registry::Client,
    l: &registry::RemoteLayer,
    rootfs: &Path,
    progress: bool,
    label: &str,
) -> Result<Digest, ImageError> {
    let what = format!("layer {}", l.digest);
    let body = client.blob(&l.digest)?;
    let bar = progress::Bar::new(progress, label, Some(l.size));
    let broke = std::rc::Rc::new(std::cell::RefCell::new(None));
    let body = NetReader {
        inner: body,
        broke: broke.clone(),
    };
    // At most one byte more than the descriptor says: enough to tell that it is too long.
    let limit = if l.size > 0 { l.size + 1 } else { u64::MAX };
    let limited = progress::ProgressReader::new(body, bar).take(limit);
    let mut hashing = HashingReader::new(limited);
    let applied = apply_stream(
        &mut hashing,
        &what,
        &l.media_type,
        l.diff_id.as_ref(),
        (rootfs, Some(l.size).filter(|n| *n > 0), layer::Kind::Layer),
    );
    let drained = hashing.drain();
    let (count, got) = (hashing.count(), hashing.digest());
    let short = |why: String| ImageError::BadImage {
        path: PathBuf::from(&what),
        why,
    };
    if let Some(e) = broke.borrow_mut().take() {
        return Err(short(format!(
            "truncated: the download broke off after {count} of {} bytes: {e}",
            l.size
        )));
    }
    drained.map_err(|e| short(format!("truncated or corrupt: {e}")))?;
    if l.size > 0 && count < l.size {
        return Err(short(format!(
            "truncated: the registry sent {count} of {} bytes",
            l.size
        )));
    }
    if l.size > 0 && count > l.size {
        return Err(short(format!(
            "the registry sent more than the {} bytes the manifest says",
            l.size
        )));
    }
    if got != l.digest {
        return Err(ImageError::DigestMismatch {
            what,
            expected: l.digest.to_string(),
            actual: got.to_string(),
        });
    }
    let diff = applied?;
    Ok(diff)
}

/// The network side of a blob: remembers the first read error, which is the cause of
/// whatever the tar reader then says.
struct NetReader<R> {
    inner: R,
    broke: std::rc::Rc<std::cell::RefCell<Option<io::Error>>>,
}

impl<R: Read> Read for NetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let mut b = self.broke.borrow_mut();
            if b.is_none() {
                *b = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

/// Apply one layer blob read from `r` (plain, gzip or zstd, told by its first bytes and
/// checked against the media type) to `rootfs` as an archive of `kind`, and check its diff_id.
/// The blob is `size` bytes (when known), which sets how far it may expand. Returns the
/// digest of the uncompressed tar.
fn apply_stream(
    mut r: impl io::Read,
    what: &str,
    media_type: &str,
    diff_id: Option<&Digest>,
    (rootfs, size, kind): (&Path, Option<u64>, layer::Kind),
) -> Result<Digest, ImageError> {
    let corrupt = |e: io::Error| ImageError::BadImage {
        path: PathBuf::from(what),
        why: format!("truncated or corrupt: {e}"),
    };
    let mut head = Vec::with_capacity(4);
    (&mut r).take(4).read_to_end(&mut head).map_err(corrupt)?;
    let comp = Compression::sniff(&head);
    let declared = if media_type.ends_with("+zstd") {
        Some(Compression::Zstd)
    } else if media_type.ends_with("gzip") {
        Some(Compression::Gzip)
    } else {
        None
    };
    if declared.is_some_and(|d| d != comp) {
        return Err(ImageError::BadImage {
            path: PathBuf::from(what),
            why: format!("media type {media_type} but the content is {comp:?}"),
        });
    }
    let decoded = comp
        .decoder(io::Cursor::new(head).chain(r))
        .map_err(corrupt)?;
    let limit = limits::expand_limit(size).map_err(|why| ImageError::BadImage {
        path: PathBuf::from(what),
        why,
    })?;
    let mut hashing = HashingReader::new(decoded);
    let framed = comp != Compression::None;
    let rules = layer::Rules {
        kind,
        limit,
        framed,
    };
    layer::apply_with(&mut hashing, rootfs, what, rules)?;
    hashing.drain().map_err(corrupt)?;
    let got = hashing.digest();
    if let Some(want) = diff_id {
        if &got != want {
            return Err(ImageError::DigestMismatch {
                what: format!("{what} (uncompressed)"),
                expected: want.to_string(),
                actual: got.to_string(),
            });
        }
    }
    Ok(got)
}

/// Unpack an oci-archive or docker-archive (plain or compressed tar) into `dir`: only
/// directories, regular files and symlinks, every one kept inside `dir` ([`layer::Kind::Archive`]).
fn unpack_archive(path: &Path, dir: &Path, progress: bool) -> Result<(), ImageError> {
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let f = rootdir::open_regular(path).map_err(io_at(path))?;
    let size = f.metadata().map(|m| m.len()).ok();
    let f = progress::ProgressReader::new(f, progress::Bar::new(progress, "archive", size));
    let what = path.display().to_string();
    apply_stream(f, &what, "", None, (dir, size, layer::Kind::Archive)).map(drop)
}

fn default_name(path: &Path) -> String {
    let n = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    for ext in [
        ".tar.gz", ".tgz", ".tar.zst", ".tar", ".oci", ".qcow2", ".raw", ".img",
    ] {
        if let Some(s) = n.strip_suffix(ext) {
            return s.to_string();
        }
    }
    n
}

fn tree_size(path: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(path) else {
        return 0;
    };
    if m.is_dir() {
        fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| tree_size(&e.path()))
            .sum()
    } else if m.is_file() && m.nlink() <= 1 {
        m.len()
    } else if m.is_file() {
        // Hard links: count each link's share.
        m.len() / m.nlink()
    } else {
        0
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
