//! Writing images: an OCI image layout or a docker-archive directory from a root filesystem
//! (one gzip layer). The start of `imgadm create`, and how the tests make their images.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde_json::json;

use super::digest::Digest;
use super::layer::Compression;
use super::{ImageConfig, ImageError};

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A reproducible tar of `rootfs` (sorted, numeric owners kept, mtimes kept).
pub fn tar_rootfs(rootfs: &Path) -> Result<Vec<u8>, ImageError> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", rootfs).map_err(io_err(rootfs))?;
    b.into_inner().map_err(io_err(rootfs))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

fn put_blob(layout: &Path, data: &[u8]) -> Result<Digest, ImageError> {
    let d = Digest::of_bytes(data);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(d.hex());
    fs::write(&path, data).map_err(io_err(&path))?;
    Ok(d)
}

fn config_json(cfg: &ImageConfig, diff_ids: &[Digest]) -> serde_json::Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": cfg.entrypoint,
            "Cmd": cfg.cmd,
            "Env": cfg.env,
            "WorkingDir": cfg.workdir.clone().unwrap_or_default(),
            "User": cfg.user.clone().unwrap_or_default(),
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    })
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).expect("compressing a slice")
}

/// Write an OCI image layout at `out` whose layers are the given uncompressed tars (each
/// stored gzip-compressed). Returns the manifest digest.
pub fn write_oci_layout(
    layers: &[Vec<u8>],
    out: &Path,
    name: &str,
    cfg: &ImageConfig,
) -> Result<Digest, ImageError> {
    let layers: Vec<(Vec<u8>, Compression)> = layers
        .iter()
        .map(|t| (t.clone(), Compression::Gzip))
        .collect();
    write_oci_layout_with(&layers, out, name, cfg)
}

/// [`write_oci_layout`] with each layer's compression chosen (none, gzip or zstd).
pub fn write_oci_layout_with(
    layers: &[(Vec<u8>, Compression)],
    out: &Path,
    name: &str,
    cfg: &ImageConfig,
) -> Result<Digest, ImageError> {
    fs::create_dir_all(out).map_err(io_err(out))?;
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for (tar, comp) in layers {
        diffs.push(Digest::of_bytes(tar));
        let (blob, media_type) = match comp {
            Compression::None => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
            Compression::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Compression::Zstd => (zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
        };
        let d = put_blob(out, &blob)?;
        descs.push(json!({
            "mediaType": media_type,
            "digest": d.to_string(),
            "size": blob.len(),
        }));
    }
    finish_layout(out, cfg, &diffs, descs, name, "latest")
}

/// Write the config, manifest, `index.json` and `oci-layout` of an OCI layout whose layer
/// blobs (`layers`, their descriptors; `diffs`, their diff ids) are already in `layout`.
/// The index names the image `name` with the ref name `ref_name`. Returns the manifest digest.
fn finish_layout(
    layout: &Path,
    cfg: &ImageConfig,
    diffs: &[Digest],
    layers: Vec<serde_json::Value>,
    name: &str,
    ref_name: &str,
) -> Result<Digest, ImageError> {
    let config = serde_json::to_vec(&config_json(cfg, diffs)).expect("json");
    let cd = put_blob(layout, &config)?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": layers,
    }))
    .expect("json");
    let md = put_blob(layout, &manifest)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md.to_string(),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": ref_name},
        }],
    });
    let p = layout.join("index.json");
    fs::write(&p, serde_json::to_vec(&index).expect("json")).map_err(io_err(&p))?;
    let p = layout.join("oci-layout");
    fs::write(&p, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&p))?;
    Ok(md)
}

/// Write a docker-archive directory (the legacy `docker save` layout: `<id>/layer.tar`,
/// `<config digest>.json`, `manifest.json`). Returns the config digest (docker's image id).
pub fn write_docker_dir(
    layers: &[Vec<u8>],
    out: &Path,
    tag: &str,
    cfg: &ImageConfig,
) -> Result<Digest, ImageError> {
    fs::create_dir_all(out).map_err(io_err(out))?;
    let mut names = Vec::new();
    let mut diffs = Vec::new();
    for tar in layers {
        let d = Digest::of_bytes(tar);
        let dir = out.join(d.hex());
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let p = dir.join("layer.tar");
        fs::write(&p, tar).map_err(io_err(&p))?;
        names.push(format!("{}/layer.tar", d.hex()));
        diffs.push(d);
    }
    let config = serde_json::to_vec(&config_json(cfg, &diffs)).expect("json");
    let cd = Digest::of_bytes(&config);
    let p = out.join(format!("{}.json", cd.hex()));
    fs::write(&p, &config).map_err(io_err(&p))?;
    let manifest =
        json!([{"Config": format!("{}.json", cd.hex()), "RepoTags": [tag], "Layers": names}]);
    let p = out.join("manifest.json");
    fs::write(&p, serde_json::to_vec(&manifest).expect("json")).map_err(io_err(&p))?;
    Ok(cd)
}

/// Tar up a directory (an image layout or docker dir) as an archive file.
pub fn tar_dir(dir: &Path, out: &Path) -> Result<(), ImageError> {
    let f = fs::File::create(out).map_err(io_err(out))?;
    let mut b = tar::Builder::new(f);
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).map_err(io_err(dir))?;
    b.into_inner().map_err(io_err(out))?;
    Ok(())
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: sha2::Digest::new(),
        }
    }
    fn finish(self) -> (W, Digest) {
        let hash = sha2::Digest::finalize(self.hasher);
        (self.inner, Digest::from_sha256(&hash))
    }
}

/// Append the tree at `root` in name order: hard links kept as links, sockets left out
/// (they cannot be archived and mean nothing in an image), symlinks not followed.
fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut seen: std::collections::HashMap<(u64, u64), std::path::PathBuf> =
        std::collections::HashMap::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = root.join(&rel);
        let m = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let name = if rel.as_os_str().is_empty() {
            std::path::PathBuf::from(".")
        } else {
            rel.clone()
        };
        let ft = m.file_type();
        if ft.is_socket() {
            continue;
        }
        if ft.is_file() && m.nlink() > 1 {
            if let Some(first) = seen.get(&(m.dev(), m.ino())) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &name, first).map_err(io_err(&path))?;
                continue;
            }
            seen.insert((m.dev(), m.ino()), name.clone());
        }
        let special = if ft.is_fifo() {
            Some(tar::EntryType::Fifo)
        } else if ft.is_char_device() {
            Some(tar::EntryType::Char)
        } else if ft.is_block_device() {
            Some(tar::EntryType::Block)
        } else {
            None
        };
        if let Some(kind) = special {
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            h.set_entry_type(kind);
            h.set_size(0);
            let rdev = m.rdev();
            let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
            let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
            h.set_device_major(major as u32).map_err(io_err(&path))?;
            h.set_device_minor(minor as u32).map_err(io_err(&path))?;
            b.append_data(&mut h, &name, io::empty())
                .map_err(io_err(&path))?;
            continue;
        }
        b.append_path_with_name(&path, &name)
            .map_err(io_err(&path))?;
        if ft.is_dir() {
            let mut children: Vec<std::ffi::OsString> = fs::read_dir(&path)
                .map_err(io_err(&path))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io_err(&path))?;
            children.sort();
            stack.extend(children.into_iter().rev().map(|c| rel.join(c)));
        }
    }
    Ok(())
}

/// Removes a temporary directory unless defused.
struct TempDir(Option<std::path::PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = crate::storage::remove_tree(&p);
        }
    }
}

/// Write an oci-archive of the root filesystem `rootfs` at `out` (one gzip layer, streamed:
/// the tree is never held in memory). The work is done in a temporary directory beside
/// `out` and the archive renamed into place, so a failure leaves no partial file.
/// Returns the manifest digest.
pub fn write_oci_archive(
    rootfs: &Path,
    out: &Path,
    name: &str,
    cfg: &ImageConfig,
) -> Result<Digest, ImageError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = out
        .file_name()
        .ok_or_else(|| ImageError::BadImage {
            path: out.to_path_buf(),
            why: "the output must name a file".into(),
        })?
        .to_string_lossy()
        .into_owned();
    if !parent.is_dir() {
        return Err(ImageError::BadImage {
            path: out.to_path_buf(),
            why: format!("{} is not a directory", parent.display()),
        });
    }
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = crate::storage::remove_tree(&tmp);
    let layout = tmp.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let guard = TempDir(Some(tmp.clone()));

    let layer_tmp = blobs.join(".layer");
    let f = fs::File::create(&layer_tmp).map_err(io_err(&layer_tmp))?;
    let gz = flate2::write::GzEncoder::new(HashingWriter::new(f), flate2::Compression::fast());
    let mut b = tar::Builder::new(HashingWriter::new(gz));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    append_tree(&mut b, rootfs)?;
    let (gz, diff_id) = b.into_inner().map_err(io_err(rootfs))?.finish();
    let (f, digest) = gz.finish().map_err(io_err(&layer_tmp))?.finish();
    f.sync_all().map_err(io_err(&layer_tmp))?;
    let size = f.metadata().map_err(io_err(&layer_tmp))?.len();
    let layer_path = blobs.join(digest.hex());
    fs::rename(&layer_tmp, &layer_path).map_err(io_err(&layer_path))?;

    let layer = json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest.to_string(), "size": size});
    let md = finish_layout(&layout, cfg, &[diff_id], vec![layer], name, name)?;
    let archive = tmp.join("archive.tar");
    tar_dir(&layout, &archive)?;
    fs::rename(&archive, out).map_err(io_err(out))?;
    drop(guard);
    Ok(md)
}
