//! Reading an image from an OCI image layout directory or a docker-archive (`docker save`)
//! directory: which layers, in which order, with which digests and media types, and the
//! image configuration. Archives (oci-archive, docker-archive) are unpacked into a directory
//! first by the caller.

use std::fs;
use std::path::{Path, PathBuf};

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

fn read_json(path: &Path) -> Result<Value, ImageError> {
    let text = fs::read(path).map_err(|e| bad(path, e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

/// Which format `dir` holds.
pub fn detect(dir: &Path) -> Result<Format, ImageError> {
    if dir.join("index.json").is_file() || dir.join("oci-layout").is_file() {
        Ok(Format::OciLayout)
    } else if dir.join("manifest.json").is_file() {
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

/// A blob of the layout, its digest checked against its name before it is trusted.
fn blob(dir: &Path, digest: &str) -> Result<(PathBuf, Digest), ImageError> {
    let d = Digest::parse(digest)?;
    let path = dir.join("blobs/sha256").join(d.hex());
    if !path.is_file() {
        return Err(bad(dir, format!("blob {d} is missing")));
    }
    Ok((path, d))
}

fn verified_json(dir: &Path, digest: &str) -> Result<Value, ImageError> {
    let (path, d) = blob(dir, digest)?;
    let data = fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
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

fn resolve_oci(dir: &Path) -> Result<Resolved, ImageError> {
    let index_path = dir.join("index.json");
    let index = read_json(&index_path)?;
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
        .map_err(|e| bad(dir, format!("manifest {id}: config: {e}")))?;
    if !CONFIG_TYPES.contains(&config_desc.media_type.as_str()) {
        return Err(ImageError::MediaType {
            what: format!("config {}", config_desc.digest),
            media_type: config_desc.media_type,
        });
    }
    let config = verified_json(dir, &config_desc.digest)?;
    let descs: Vec<Descriptor> = serde_json::from_value(manifest["layers"].clone())
        .map_err(|e| bad(dir, format!("manifest {id}: layers: {e}")))?;
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

/// A path named inside the archive's manifest, kept inside the archive.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, ImageError> {
    let rel = super::layer::entry_path(Path::new(name))
        .map_err(|why| bad(dir, format!("manifest.json names '{name}': {why}")))?
        .ok_or_else(|| bad(dir, "manifest.json names an empty path"))?;
    Ok(dir.join(rel))
}

fn resolve_docker(dir: &Path) -> Result<Resolved, ImageError> {
    let mpath = dir.join("manifest.json");
    let entries: Vec<DockerEntry> = serde_json::from_value(read_json(&mpath)?)
        .map_err(|e| bad(&mpath, format!("not a docker-archive manifest: {e}")))?;
    let entry = entries
        .into_iter()
        .next()
        .ok_or_else(|| bad(&mpath, "lists no image"))?;
    let cpath = inside(dir, &entry.config)?;
    let data = fs::read(&cpath).map_err(|e| bad(&cpath, e.to_string()))?;
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
        let path = inside(dir, name)?;
        if !path.is_file() {
            return Err(bad(dir, format!("layer {name} is missing")));
        }
        layers.push(Layer {
            blob: path,
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
