//! Fuzz targets: each is `fn(&[u8])` and must never panic, whatever the bytes.
//!
//! - [`zonecfg`]: the zonecfg language: parse, then replay every statement in a session on a
//!   scratch store (commit included), then check that `export` of the result parses and
//!   replays to the same configuration; also the JSON import (`zonecfg -z Z import`).
//! - [`oci_config`]: config.json as `runz` loads it (`runtime::spec::load`), then everything
//!   the runtime derives from a spec before it forks: validation, namespaces, device rules,
//!   resources, mount options and propagation, idmapped mounts, rlimits, the seccomp BPF.
//! - [`image_layout`]: an OCI image layout or docker-archive directory (`index.json` or
//!   `manifest.json`, an image manifest, a config) resolved as `imgadm import` does.
//! - [`layer_tar`]: an image layer (tar, gzip or zstd) applied to a scratch root.
//! - [`qcow2_header`]: a qcow2 header as `imgadm import` reads a disk image's, and its checks.
//!
//! The targets run under `cargo fuzz` (fuzz_targets/, nightly + libFuzzer) and under the
//! stable driver `src/main.rs` (corpus replay plus a built-in mutator). Scratch files go to
//! `$TMPDIR/zones-fuzz-<pid>/`; [`cleanup`] removes them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zones::lang::{Command, Flow, Quiet, Session};
use zones::store::Store;

/// A fuzz target: any bytes, no panic.
pub type Target = fn(&[u8]);

/// The targets by name, for the stable driver and the corpus test.
pub const TARGETS: [(&str, Target); 5] = [
    ("zonecfg", zonecfg),
    ("oci_config", oci_config),
    ("image_layout", image_layout),
    ("layer_tar", layer_tar),
    ("qcow2_header", qcow2_header),
];

/// This process's scratch directory.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("zones-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

/// Remove the scratch directory.
pub fn cleanup() {
    let _ = fs::remove_dir_all(scratch());
}

/// A fresh, empty directory `name` in the scratch dir.
fn fresh(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("scratch subdir");
    d
}

/// Commands that reach outside the store: `export -f FILE` writes any path, `create -a PATH`
/// reads any file (/dev/zero would never end).
fn touches_host(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Export { file: Some(_) }
            | Command::Create {
                source: zones::lang::CreateSource::Detached(_),
                ..
            }
    )
}

/// Replay `text` in a session on zone `name`; the configuration at the end (committed or
/// not), or None when the text does not parse.
fn replay(store: &Store, name: &str, text: &str) -> Option<Option<zones::model::Zone>> {
    let stmts = zones::lang::parse(text).ok()?;
    let mut session = Session::open(store, name).expect("a valid zone name opens");
    let mut con = Quiet;
    for st in stmts.iter().filter(|s| !touches_host(&s.cmd)) {
        if let Ok(Flow::Exit) = session.run(&st.cmd, &mut con) {
            break;
        }
    }
    let _ = session.finish(&mut con);
    Some(session.config().cloned())
}

/// The zonecfg language.
pub fn zonecfg(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(script) = zones::lang::json::import_script(text) {
        let _ = zones::lang::parse(&script);
    }
    let dir = fresh("zonecfg");
    let store = Store::open(Some(&dir)).expect("scratch store");
    let Some(Some(zone)) = replay(&store, "fz", text) else {
        return;
    };
    // What export prints must read back as the same configuration.
    let exported = zones::lang::print::export(&zone);
    let again = replay(&store, "fz2", &format!("create -b\n{exported}"))
        .unwrap_or_else(|| panic!("export does not parse:\n{exported}"))
        .unwrap_or_else(|| panic!("export does not replay:\n{exported}"));
    let printed = zones::lang::print::export(&again);
    assert_eq!(
        printed, exported,
        "export, replayed, exports differently:\n{exported}"
    );
    let _ = zones::lang::json::export_json(&zone);
    let _ = zones::lang::print::info_all(&zone);
}

/// config.json as runz loads it, and what the runtime derives from it before forking.
pub fn oci_config(data: &[u8]) {
    use zones_linux::runtime::{idmap, mounts, namespaces, rlimits, rootfs, seccomp, spec};
    let bundle = scratch().join("bundle");
    let _ = fs::create_dir_all(&bundle);
    if fs::write(bundle.join("config.json"), data).is_err() {
        return;
    }
    let Ok(s) = spec::load(&bundle) else {
        return;
    };
    let _ = spec::validate(&s);
    let _ = spec::rootfs_path(&s, &bundle);
    let types: Vec<_> = spec::namespaces(&s).iter().map(|n| n.typ()).collect();
    let _ = namespaces::new_flags(&s, &types);
    let _ = spec::device_rules(&s);
    let _ = spec::resources(&s);
    let _ = rootfs::root_propagation(&s);
    for m in s.mounts().as_deref().unwrap_or_default() {
        if let Some(opts) = m.options() {
            let _ = mounts::parse_options(opts);
            for o in opts {
                let _ = mounts::parse_propagation(o);
            }
        }
        let _ = idmap::wanted(&s, m);
    }
    if let Some(p) = s.process() {
        if let Some(r) = p.rlimits() {
            let _ = rlimits::validate(r);
        }
    }
    if let Some(profile) = s.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = seccomp::filter_flags(profile);
        let _ = seccomp::compile(profile);
    }
}

/// Split `data` into up to `n` parts at the byte sequence `\n---\n`.
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    const SEP: &[u8] = b"\n---\n";
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// An image layout directory from `index.json (or a docker manifest.json) --- manifest ---
/// config --- layer`. The blobs are stored under their real sha256; in the first three parts
/// `@M`, `@C` and `@L` stand for the manifest's, config's and layer's digests (docker: their
/// file names), so mutated documents still reach the deeper checks.
pub fn image_layout(data: &[u8]) {
    use zones::image::digest::Digest;
    RESOLVED.with(|c| c.set(false));
    let p = parts(data, 4);
    let get = |i: usize| p.get(i).copied().unwrap_or_default();
    let dir = fresh("layout");
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("blobs dir");
    let put = |bytes: &[u8]| -> String {
        let d = Digest::of_bytes(bytes);
        let _ = fs::write(blobs.join(d.hex()), bytes);
        d.to_string()
    };
    let layer = put(get(3));
    // The config's diff_ids name the layer: `@L` there is always its digest.
    let config = put(String::from_utf8_lossy(get(2))
        .replace("@L", &layer)
        .as_bytes());
    let docker = get(0).trim_ascii_start().starts_with(b"[");
    let sub = |text: &[u8], m: &str| -> Vec<u8> {
        let (c, l) = if docker {
            (
                format!("blobs/sha256/{}", &config[7..]),
                format!("blobs/sha256/{}", &layer[7..]),
            )
        } else {
            (config.clone(), layer.clone())
        };
        String::from_utf8_lossy(text)
            .replace("@C", &c)
            .replace("@L", &l)
            .replace("@M", m)
            .into_bytes()
    };
    let manifest = put(&sub(get(1), ""));
    let top = sub(get(0), &manifest);
    let file = if docker {
        "manifest.json"
    } else {
        "index.json"
    };
    let _ = fs::write(dir.join(file), top);
    if let Ok(r) = zones::image::source::resolve(&dir) {
        let _ = r.config.app_process();
        for l in &r.layers {
            let _ = zones::image::layer::Compression::of_file(&l.blob);
        }
        RESOLVED.with(|c| c.set(true));
    }
}

thread_local! {
    /// Whether the last [`image_layout`] input resolved (the seeds must: the corpus test).
    static RESOLVED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One image layer applied to an empty root.
pub fn layer_tar(data: &[u8]) {
    use zones::image::layer::{apply, Compression};
    let root = fresh("root");
    let c = Compression::sniff(data);
    let Ok(reader) = c.decoder(data) else {
        return;
    };
    // Bounded: a small compressed input may inflate to gigabytes.
    let reader = std::io::Read::take(reader, 16 << 20);
    let _ = apply(reader, &root, "fuzz");
    // Whatever the layer said, nothing may land outside the root.
    for e in fs::read_dir(scratch()).into_iter().flatten().flatten() {
        let name = e.file_name();
        assert!(
            ["root", "zonecfg", "bundle", "layout"]
                .iter()
                .any(|ok| name == *ok),
            "the layer wrote {} outside its root",
            e.path().display()
        );
    }
}

/// A qcow2 header (the first bytes of a disk image): parsed, then checked as an import
/// checks it. Whatever parses and passes names no file qemu would open.
pub fn qcow2_header(data: &[u8]) {
    use zones::image::qcow2;
    let Ok(h) = qcow2::parse(data) else {
        return;
    };
    if qcow2::check_importable(&h).is_ok() {
        assert!(
            h.backing_file.is_none() && h.data_file.is_none() && !h.encrypted,
            "an importable header names a file or is encrypted: {h:?}"
        );
        assert!(h.virtual_size > 0 && (h.version == 2 || h.version == 3));
    }
}

#[cfg(test)]
mod tests {
    /// Every committed seed runs clean (the regression half of fuzzing; crashes found later
    /// are added to the corpus once fixed). `edge-*` seeds are hostile or broken inputs; the
    /// others are valid, and the image layouts must resolve.
    #[test]
    fn the_corpus_runs_clean() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let mut ran = 0;
        for (name, f) in super::TARGETS {
            let dir = corpus.join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            assert!(!files.is_empty(), "no seeds for {name}");
            for p in files {
                let data = std::fs::read(&p).unwrap();
                f(&data);
                let edge = p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("edge-"));
                if name == "image_layout" && !edge {
                    assert!(
                        super::RESOLVED.with(|c| c.get()),
                        "seed {} does not resolve: it would not reach the parsers' depths",
                        p.display()
                    );
                }
                ran += 1;
            }
        }
        super::cleanup();
        assert!(ran >= super::TARGETS.len());
    }
}
