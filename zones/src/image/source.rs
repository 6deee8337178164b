//! Reading an image from an OCI image layout directory or a docker-archive (`docker save`)
//! directory: which layers, in which order, with which digests and media types, and the
//! image configuration. Archives (oci-archive, docker-archive) are unpacked into a directory
//! first by the caller.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use serde::Deserialize;
use serde_json::Value;

use super::digest::Digest;
use super::{ImageConfig, ImageError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
pub const LAYER_TYPES: [&str; 9] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// The format of an image on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    DockerArchive,
}

/// One layer to apply.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: PathBuf,
    /// The digest of the blob as stored (compressed), when the format records it.
    pub digest: Option<Digest>,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Option<Digest>,
    pub media_type: String,
}

/// Everything the importer needs from an image.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub format: Format,
    /// The manifest's digest (OCI) or the config's (docker-archive): the image id.
    pub id: Digest,
    /// A name recorded in the image (annotation or RepoTags).
    pub name: Option<String>,
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
    pub os: Option<String>,
    pub architecture: Option<String>,
}

fn bad(path: &Path, why: impl Into<String>) -> ImageError {
    ImageError::BadImage {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// The most a JSON member of an image (index, manifest, config) may be.
pub const JSON_MAX: u64 = 64 << 20;

/// An image directory (an OCI layout, or an unpacked archive) whose members are opened only
/// below it with openat2: never through a symlink that leaves it, never a FIFO or a device,
/// and for the image's JSON never through any symlink nor a hard-linked file.
struct ImageDir<'a> {
    path: &'a Path,
    fd: OwnedFd,
}

impl<'a> ImageDir<'a> {
    fn open(path: &'a Path) -> Result<ImageDir<'a>, ImageError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(None, path, flags, Mode::empty())
            .map_err(|e| bad(path, e.to_string()))?;
        Ok(ImageDir {
            path,
            fd: super::rootdir::owned(fd),
        })
    }

    /// The regular file `rel`. With `symlinks`, symlinks are followed but only within the
    /// directory (RESOLVE_IN_ROOT); without, any symlink is refused.
    fn member(&self, rel: &str, symlinks: bool) -> Result<fs::File, ImageError> {
        let shown = self.path.join(rel);
        let resolve = if symlinks {
            ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
        } else {
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS
        };
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
            .resolve(resolve);
        let fd = nix::fcntl::openat2(self.fd.as_raw_fd(), rel, how).map_err(|e| {
            bad(
                &shown,
                match e {
                    Errno::ELOOP => "is a symlink (or goes through one): an image's own files may not be symlinks".into(),
                    Errno::EXDEV => "leaves the image".into(),
                    Errno::ENOENT => "is missing".into(),
                    e => e.to_string(),
                },
            )
        })?;
        let f = fs::File::from(super::rootdir::owned(fd));
        let meta = f.metadata().map_err(|e| bad(&shown, e.to_string()))?;
        if !meta.is_file() {
            return Err(bad(
                &shown,
                format!(
                    "is {}, not a regular file",
                    super::rootdir::type_name(&meta.file_type())
                ),
            ));
        }
        if !symlinks && meta.nlink() > 1 {
            return Err(bad(
                &shown,
                "is a hard link: an image's own files may not be hard links",
            ));
        }
        Ok(f)
    }

    /// The bytes of the JSON member `rel` (at most [`JSON_MAX`]).
    fn read(&self, rel: &str) -> Result<Vec<u8>, ImageError> {
        let shown = self.path.join(rel);
        let f = self.member(rel, false)?;
        let mut data = Vec::new();
        f.take(JSON_MAX + 1)
            .read_to_end(&mut data)
            .map_err(|e| bad(&shown, e.to_string()))?;
        if data.len() as u64 > JSON_MAX {
            return Err(bad(&shown, format!("is larger than {JSON_MAX} bytes")));
        }
        Ok(data)
    }

    fn json(&self, rel: &str) -> Result<Value, ImageError> {
        let data = self.read(rel)?;
        serde_json::from_slice(&data)
            .map_err(|e| bad(&self.path.join(rel), format!("not valid JSON: {e}")))
    }

    /// The path of the layer file `rel` with every symlink (inside the directory) resolved,
    /// so that it can be opened again with O_NOFOLLOW semantics.
    fn layer_path(&self, rel: &str) -> Result<PathBuf, ImageError> {
        let f = self.member(rel, true)?;
        let real = fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
            .map_err(|e| bad(&self.path.join(rel), e.to_string()))?;
        let top = fs::canonicalize(self.path).map_err(|e| bad(self.path, e.to_string()))?;
        if !real.starts_with(&top) {
            return Err(bad(&self.path.join(rel), "leaves the image"));
        }
        Ok(real)
    }
}

fn exists(dir: &Path, name: &str) -> bool {
    fs::symlink_metadata(dir.join(name)).is_ok()
}

/// Which format `dir` holds.
pub fn detect(dir: &Path) -> Result<Format, ImageError> {
    if exists(dir, "index.json") || exists(dir, "oci-layout") {
        Ok(Format::OciLayout)
    } else if exists(dir, "manifest.json") {
        Ok(Format::DockerArchive)
    } else {
        Err(bad(
            dir,
            "neither an OCI image layout (index.json) nor a docker-archive (manifest.json)",
        ))
    }
}

pub fn resolve(dir: &Path) -> Result<Resolved, ImageError> {
    match detect(dir)? {
        Format::OciLayout => resolve_oci(dir),
        Format::DockerArchive => resolve_docker(dir),
    }
}

/// A content descriptor (manifest, config or layer).
#[derive(Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub annotations: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub platform: Option<Value>,
}

fn blob_rel(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A blob of the layout: a regular file, no symlink; its digest is checked before it is
/// trusted.
fn blob(dir: &ImageDir, digest: &str) -> Result<(PathBuf, Digest), ImageError> {
    let d = Digest::parse(digest)?;
    let rel = blob_rel(&d);
    if !exists(dir.path, &rel) {
        return Err(bad(dir.path, format!("blob {d} is missing")));
    }
    dir.member(&rel, false)?;
    Ok((dir.path.join(rel), d))
}

fn verified_json(dir: &ImageDir, digest: &str) -> Result<Value, ImageError> {
    let d = Digest::parse(digest)?;
    let path = dir.path.join(blob_rel(&d));
    if !exists(dir.path, &blob_rel(&d)) {
        return Err(bad(dir.path, format!("blob {d} is missing")));
    }
    let data = dir.read(&blob_rel(&d))?;
    let actual = Digest::of_bytes(&data);
    if actual != d {
        return Err(ImageError::DigestMismatch {
            what: path.display().to_string(),
            expected: d.to_string(),
            actual: actual.to_string(),
        });
    }
    serde_json::from_slice(&data).map_err(|e| bad(&path, format!("not valid JSON: {e}")))
}

fn resolve_oci(path: &Path) -> Result<Resolved, ImageError> {
    let dir = &ImageDir::open(path)?;
    if exists(path, "oci-layout") {
        dir.read("oci-layout")?;
    }
    let index_path = path.join("index.json");
    let index = dir.json("index.json")?;
    let mut desc = pick(&index_path, &index)?;
    let mut name = desc.annotations.as_ref().and_then(image_name);
    // Nested indexes (multi-platform images): descend to a manifest.
    for _ in 0..4 {
        match desc.media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => break,
            OCI_INDEX | DOCKER_LIST => {
                let inner = verified_json(dir, &desc.digest)?;
                desc = pick(&index_path, &inner)?;
                name = name.or_else(|| desc.annotations.as_ref().and_then(image_name));
            }
            other => {
                return Err(ImageError::MediaType {
                    what: format!("manifest {}", desc.digest),
                    media_type: other.to_string(),
                })
            }
        }
    }
    let manifest = verified_json(dir, &desc.digest)?;
    let id = Digest::parse(&desc.digest)?;
    let config_desc: Descriptor = serde_json::from_value(manifest["config"].clone())
        .map_err(|e| bad(path, format!("manifest {id}: config: {e}")))?;
    if !CONFIG_TYPES.contains(&config_desc.media_type.as_str()) {
        return Err(ImageError::MediaType {
            what: format!("config {}", config_desc.digest),
            media_type: config_desc.media_type,
        });
    }
    let config = verified_json(dir, &config_desc.digest)?;
    let descs: Vec<Descriptor> = serde_json::from_value(manifest["layers"].clone())
        .map_err(|e| bad(path, format!("manifest {id}: layers: {e}")))?;
    let diff_ids = diff_ids(&config);
    let mut layers = Vec::new();
    for (i, l) in descs.into_iter().enumerate() {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) {
            return Err(ImageError::MediaType {
                what: format!("layer {}", l.digest),
                media_type: l.media_type,
            });
        }
        let (path, d) = blob(dir, &l.digest)?;
        layers.push(Layer {
            blob: path,
            digest: Some(d),
            diff_id: diff_ids.get(i).cloned(),
            media_type: l.media_type,
        });
    }
    Ok(Resolved {
        format: Format::OciLayout,
        id,
        name,
        layers,
        os: config["os"].as_str().map(str::to_string),
        architecture: config["architecture"].as_str().map(str::to_string),
        config: ImageConfig::from_json(&config["config"]),
    })
}

/// The manifest to use from an index: linux/amd64 (this host) if platforms are given, else
/// the first.
fn pick(path: &Path, index: &Value) -> Result<Descriptor, ImageError> {
    pick_from(index).map_err(|why| bad(path, why))
}

/// [`pick`] for an index that is not a file (a registry's).
pub fn pick_from(index: &Value) -> Result<Descriptor, String> {
    let list: Vec<Descriptor> = serde_json::from_value(index["manifests"].clone())
        .map_err(|e| format!("manifests: {e}"))?;
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let fits = |d: &Descriptor| {
        d.platform.as_ref().is_none_or(|p| {
            p["os"].as_str().is_none_or(|o| o == "linux")
                && p["architecture"].as_str().is_none_or(|a| a == host_arch)
        })
    };
    let n = list.len();
    list.into_iter()
        .find(fits)
        .ok_or_else(|| format!("no manifest for linux/{host_arch} among {n}"))
}

fn image_name(ann: &serde_json::Map<String, Value>) -> Option<String> {
    ann.get("io.containerd.image.name")
        .or_else(|| ann.get("org.opencontainers.image.ref.name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub fn diff_ids(config: &Value) -> Vec<Digest> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| Digest::parse(s).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A path named inside the archive's manifest, kept inside the archive: (relative, full).
fn inside(dir: &Path, name: &str) -> Result<(String, PathBuf), ImageError> {
    let rel = super::layer::entry_path(Path::new(name))
        .map_err(|why| bad(dir, format!("manifest.json names '{name}': {why}")))?
        .ok_or_else(|| bad(dir, "manifest.json names an empty path"))?;
    let text = rel
        .to_str()
        .ok_or_else(|| bad(dir, format!("manifest.json names '{name}': not UTF-8")))?
        .to_string();
    Ok((text, dir.join(rel)))
}

fn resolve_docker(path: &Path) -> Result<Resolved, ImageError> {
    let dir = &ImageDir::open(path)?;
    let mpath = path.join("manifest.json");
    let entries: Vec<DockerEntry> = serde_json::from_value(dir.json("manifest.json")?)
        .map_err(|e| bad(&mpath, format!("not a docker-archive manifest: {e}")))?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or_else(|| bad(&mpath, "lists no image"))?;
    let (crel, cpath) = inside(path, &entry.config)?;
    let data = dir.read(&crel)?;
    let id = Digest::of_bytes(&data);
    // The config's file name is its digest (`<hex>.json` or `blobs/sha256/<hex>`): check it.
    let stem = cpath
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .trim_end_matches(".json");
    if stem.len() == 64 && stem != id.hex() {
        return Err(ImageError::DigestMismatch {
            what: cpath.display().to_string(),
            expected: format!("sha256:{stem}"),
            actual: id.to_string(),
        });
    }
    let config: Value =
        serde_json::from_slice(&data).map_err(|e| bad(&cpath, format!("not valid JSON: {e}")))?;
    let diffs = diff_ids(&config);
    if diffs.len() != entry.layers.len() {
        return Err(bad(
            &mpath,
            format!(
                "{} layers but the config lists {} diff_ids",
                entry.layers.len(),
                diffs.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (name, diff) in entry.layers.iter().zip(diffs) {
        let (rel, _) = inside(path, name)?;
        if !exists(path, &rel) {
            return Err(bad(path, format!("layer {name} is missing")));
        }
        layers.push(Layer {
            blob: dir.layer_path(&rel)?,
            digest: None,
            diff_id: Some(diff),
            media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
        });
    }
    Ok(Resolved {
        format: Format::DockerArchive,
        id,
        name: entry.repo_tags.and_then(|t| t.into_iter().next()),
        layers,
        os: config["os"].as_str().map(str::to_string),
        architecture: config["architecture"].as_str().map(str::to_string),
        config: ImageConfig::from_json(&config["config"]),
    })
}
