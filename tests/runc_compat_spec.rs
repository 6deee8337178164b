//! runz against runc 1.1: the default spec and small contracts (issue 24, "Default spec and
//! small contracts").

mod common;
mod runc_compat;

use std::path::Path;
use std::process::{Command, Stdio};

use runc_compat::RUNC;
use serde_json::Value;

/// `BIN [GLOBAL...] spec [ARGS...]` in a fresh directory; the config.json it wrote, without
/// the fields that name the runtime (hostname, ociVersion, annotations), capability lists
/// sorted.
fn spec_of(bin: &Path, dir: &Path, args: &[&str]) -> Value {
    std::fs::create_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(dir.join("config.json"));
    let out = Command::new(bin)
        .arg("spec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} spec {args:?}: {out:?}",
        bin.display()
    );
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    for k in ["hostname", "ociVersion", "annotations"] {
        obj.remove(k);
    }
    if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
        for list in caps.values_mut() {
            if let Some(a) = list.as_array_mut() {
                a.sort_by_key(|x| x.to_string());
            }
        }
    }
    v
}

#[test]
fn runz_spec_writes_runcs_default_spec() {
    assert!(
        Path::new(RUNC).exists(),
        "{RUNC} is missing (apt-get install runc)"
    );
    let base = std::env::temp_dir().join(format!("runz-test-{}-spec", std::process::id()));
    for args in [&[][..], &["--rootless"][..]] {
        let runc = spec_of(Path::new(RUNC), &base.join("runc"), args);
        let runz = spec_of(common::runz_bin(), &base.join("runz"), args);
        assert_eq!(runz, runc, "spec {args:?}");
        // What the issue names: no inheritable set, no cgroup namespace.
        assert!(runz["process"]["capabilities"].get("inheritable").is_none());
        let ns = runz["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "cgroup"), "{ns:?}");
    }
    let _ = std::fs::remove_dir_all(&base);
}
