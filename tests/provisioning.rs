//! Scripted provisioning and the operator's tools, through the real binaries: `zonecfg export
//! -j` / `import -j`, `zoneadm get` / `lookup`, the host service (integration/service/zones.init
//! start and stop), and `make install` into a temporary prefix.
//!
//! Zone tests get their own alternate root (-R) under /var/tmp/runz-tests and put their zone
//! cgroups beneath the test process's own cgroup (ZONES_CGROUP_PARENT is relative), like
//! tests/zones.rs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::require_root;
use common::zonehost::{bin, ZoneHost};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A zone host (with a busybox image when asked); see `common::zonehost`.
struct Host(ZoneHost);

impl std::ops::Deref for Host {
    type Target = ZoneHost;
    fn deref(&self) -> &ZoneHost {
        &self.0
    }
}

impl Host {
    fn new(tag: &str, image: bool) -> Host {
        Host(ZoneHost::new("prov", tag, image))
    }

    fn get(&self, zone: &str) -> Value {
        serde_json::from_str(&self.ok("zoneadm", &["-z", zone, "get"])).unwrap()
    }

    fn install(&self, zone: &str, autoboot: bool) {
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!("create; set zonepath=/zones/{zone}; set autoboot={autoboot}"),
            ],
        );
        self.ok(
            "zoneadm",
            &["-z", zone, "install", "-d", self.image.to_str().unwrap()],
        );
    }

    /// Runs integration/service/zones.init ACTION against this altroot.
    fn service(&self, action: &str) -> Output {
        Command::new(repo().join("integration/service/zones.init"))
            .arg(action)
            .env("ZONEADM", bin("zoneadm"))
            .env("ZONES_ALTROOT", &self.root)
            .env("ZONES_NO_DEFAULTS", "1")
            .env("ZONES_SHUTDOWN_TIMEOUT", "20")
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn zonecfg_exports_and_imports_json() {
    if !require_root() {
        return;
    }
    let h = Host::new("json", false);
    h.ok(
        "zonecfg",
        &[
            "-z",
            "a",
            "create; set zonepath=/zones/a; set max-processes=100; \
             add fs; set dir=/data; set special=/srv/data; set type=lofs; end",
        ],
    );
    let text = h.ok("zonecfg", &["-z", "a", "export", "-j"]);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["zonename"], "a");
    assert_eq!(doc["zonepath"], "/zones/a");
    assert_eq!(doc["fs"][0]["dir"], "/data");

    // Into another zone, from a file and from stdin.
    let file = h.root.join("a.json");
    std::fs::write(&file, text.replace("/zones/a", "/zones/b")).unwrap();
    h.ok(
        "zonecfg",
        &["-z", "b", "import", "-j", file.to_str().unwrap()],
    );
    let b: Value = serde_json::from_str(&h.ok("zonecfg", &["-z", "b", "export", "-j"])).unwrap();
    assert_eq!(b["zonename"], "b");
    assert_eq!(b["zonepath"], "/zones/b");
    assert_eq!(b["fs"], doc["fs"]);
    assert_eq!(b["rctl"], doc["rctl"]);
    assert_ne!(b["uuid"], doc["uuid"]);
    let out = h.cmd_in(
        "zonecfg",
        &["-z", "c", "import", "-j", "-"],
        Some(&text.replace("/zones/a", "/zones/c")),
    );
    assert!(out.status.success(), "{out:?}");

    // An invalid document: an error naming the problem, and the zone unchanged.
    let before = std::fs::read(h.root.join("etc/zones/a.json")).unwrap();
    let mut bad = doc.clone();
    bad["fs"][0]["type"] = "proc".into();
    std::fs::write(&file, bad.to_string()).unwrap();
    let out = h.cmd(
        "zonecfg",
        &["-z", "a", "import", "-j", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("proc"), "{err}");
    assert_eq!(
        std::fs::read(h.root.join("etc/zones/a.json")).unwrap(),
        before
    );
    // export -j of an unknown zone fails.
    let out = h.cmd("zonecfg", &["-z", "nosuch", "export", "-j"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn get_lookup_and_the_host_service_boot_and_stop_autoboot_zones() {
    if !require_root() {
        return;
    }
    let h = Host::new("svc", true);
    h.install("a", true);
    h.install("b", true);
    h.install("c", false);

    let c = h.get("c");
    assert_eq!(c["state"], "installed");
    assert_eq!(c["init-pid"], Value::Null);
    assert_eq!(c["zoneid"], Value::Null);

    let out = h.service("start");
    assert!(out.status.success(), "start: {out:?}");
    let mut pids = Vec::new();
    let list = h.ok("zoneadm", &["list", "-cp"]);
    for zone in ["a", "b"] {
        let doc = h.get(zone);
        assert_eq!(doc["zonename"], zone);
        assert_eq!(doc["state"], "running", "{doc}");
        assert_eq!(doc["zonepath"], format!("/zones/{zone}"));
        assert_eq!(doc["brand"], "linux");
        assert_eq!(doc["autoboot"], true);
        let uuid = doc["uuid"].as_str().unwrap();
        let zoneid = doc["zoneid"].as_u64().expect("a running zone has an id");
        assert!(
            list.lines()
                .any(|l| l.starts_with(&format!("{zoneid}:{zone}:running:")) && l.contains(uuid)),
            "{list}"
        );
        let pid = doc["init-pid"]
            .as_i64()
            .expect("a running zone has an init");
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "init");
        pids.push(pid);
    }
    assert_eq!(h.get("c")["state"], "installed");

    // lookup: names, JSON, dotted paths, several conditions.
    assert_eq!(h.ok("zoneadm", &["lookup", "state=running"]), "a\nb\n");
    assert_eq!(h.ok("zoneadm", &["lookup", "autoboot=false"]), "c\n");
    assert_eq!(
        h.ok("zoneadm", &["lookup", "state=running", "zonename=b"]),
        "b\n"
    );
    assert_eq!(h.ok("zoneadm", &["lookup"]), "a\nb\nc\n");
    let docs: Value =
        serde_json::from_str(&h.ok("zoneadm", &["lookup", "-j", "state=installed"])).unwrap();
    assert_eq!(docs.as_array().unwrap().len(), 1);
    assert_eq!(docs[0]["zonename"], "c");
    assert_eq!(h.ok("zoneadm", &["lookup", "zonepath=/nowhere"]), "");
    let out = h.cmd("zoneadm", &["lookup", "state"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected field=value"));
    let out = h.cmd("zoneadm", &["-z", "nosuch", "get"]);
    assert_eq!(out.status.code(), Some(1));

    let out = h.service("stop");
    assert!(out.status.success(), "stop: {out:?}");
    for zone in ["a", "b", "c"] {
        let doc = h.get(zone);
        assert_eq!(doc["state"], "installed", "{doc}");
        assert_eq!(doc["init-pid"], Value::Null);
    }
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "init {pid} lives"
        );
    }
    // Usage errors exit 2.
    assert_eq!(h.service("bogus").status.code(), Some(2));
}

/// A temporary install prefix, removed on drop.
struct Prefix(PathBuf);

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn make_install_puts_binaries_man_pages_and_completions_under_the_prefix() {
    let prefix =
        Prefix(std::env::temp_dir().join(format!("runz-test-{}-prefix", std::process::id())));
    let _ = std::fs::remove_dir_all(&prefix.0);
    let p = |rel: &str| prefix.0.join(rel);
    let has_make = Command::new("make")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let status = if has_make {
        Command::new("make")
            .current_dir(repo())
            .arg("install")
            .arg(format!("PREFIX={}", prefix.0.display()))
            .arg("BUILD=debug")
            .arg(format!("CARGO={}", env!("CARGO")))
            .stdin(Stdio::null())
            .status()
            .unwrap()
    } else {
        // Without make: the generator alone (what `make install` copies).
        eprintln!("make not installed (scripts/install-deps.sh installs it): generator only");
        Command::new(env!("CARGO"))
            .current_dir(repo())
            .args(["run", "--quiet", "-p", "zones-gen", "--"])
            .arg(p("gen"))
            .stdout(Stdio::null())
            .status()
            .unwrap()
    };
    assert!(status.success());
    let mut expect: Vec<String> = Vec::new();
    if has_make {
        for b in ["runz", "zoneadm", "zlogin", "zonecfg", "imgadm"] {
            expect.push(format!("bin/{b}"));
            expect.push(format!("share/man/man1/{b}.1"));
        }
        for b in ["runz", "zoneadm", "zlogin", "imgadm"] {
            expect.push(format!("share/bash-completion/completions/{b}"));
            expect.push(format!("share/zsh/site-functions/_{b}"));
            expect.push(format!("share/fish/vendor_completions.d/{b}.fish"));
        }
    } else {
        for b in ["runz", "zoneadm", "zlogin", "imgadm"] {
            expect.push(format!("gen/man/man1/{b}.1"));
            expect.push(format!("gen/completions/bash/{b}"));
            expect.push(format!("gen/completions/zsh/_{b}"));
            expect.push(format!("gen/completions/fish/{b}.fish"));
        }
    }
    for rel in &expect {
        let len = std::fs::metadata(p(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .len();
        assert!(len > 0, "{rel} is empty");
    }
    if has_make {
        // The installed zoneadm runs, and its page documents the new verbs.
        let out = Command::new(p("bin/zoneadm"))
            .arg("--help")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("lookup"));
        let page = std::fs::read_to_string(p("share/man/man1/zoneadm.1")).unwrap();
        assert!(page.contains("lookup"), "{page}");
        let bash = std::fs::read_to_string(p("share/bash-completion/completions/zoneadm")).unwrap();
        assert!(bash.contains("boot\\-all") || bash.contains("boot-all"));
        // The host service, staged under DESTDIR: the unit calls the installed zoneadm.
        let status = Command::new("make")
            .current_dir(repo())
            .args(["-s", "install-service", "PREFIX=/usr"])
            .arg(format!("DESTDIR={}", prefix.0.display()))
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let unit = std::fs::read_to_string(p("usr/lib/systemd/system/zones.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/bin/zoneadm boot-all"),
            "{unit}"
        );
        assert!(
            unit.contains("ExecStop=/usr/bin/zoneadm shutdown-all"),
            "{unit}"
        );
        assert!(!unit.contains("@BINDIR@"), "{unit}");
        let init = std::fs::metadata(p("usr/share/zones/zones.init")).unwrap();
        assert!(std::os::unix::fs::PermissionsExt::mode(&init.permissions()) & 0o111 != 0);
    }
}

#[test]
fn provision_from_a_manifest_and_get_matches_it() {
    if !require_root() {
        return;
    }
    let h = Host::new("prov", true);
    let data = h.root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    let manifest = serde_json::json!({
        "alias": "web", "autoboot": true, "image_path": h.image,
        "max_physical_memory": 256, "cpu_cap": 150, "cpu_shares": 50, "max_lwps": 300,
        "filesystems": [{"type": "lofs", "source": data, "target": "/data", "options": ["ro"]}]
    });
    let file = h.root.join("web.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    let f = file.to_str().unwrap();
    assert!(h
        .ok("zoneadm", &["validate", "-f", f])
        .contains("valid manifest for zone web"));
    assert_eq!(h.ok("zoneadm", &["provision", "-f", f]), "web\n");

    let doc = h.get("web");
    assert_eq!(doc["state"], "running", "{doc}");
    assert_eq!(doc["autoboot"], true);
    assert_eq!(doc["zonepath"], "/zones/web");
    assert!(doc["init-pid"].as_i64().is_some_and(|p| p > 0));
    assert_eq!(doc["capped-memory"]["physical"], "256M", "{doc}");
    assert_eq!(doc["capped-cpu"]["ncpus"], "1.5", "{doc}");
    assert_eq!(doc["fs"][0]["dir"], "/data");
    let rctls = doc["rctl"].to_string();
    assert!(
        rctls.contains("zone.cpu-shares") && rctls.contains("zone.max-lwps"),
        "{rctls}"
    );
    assert_eq!(
        h.ok(
            "zoneadm",
            &["lookup", "capped-cpu.ncpus=1.5", "state=running"]
        ),
        "web\n"
    );
    // The filesystem is there, read-only.
    let out = h.ok(
        "zlogin",
        &[
            "web",
            "cat /data/hello; touch /data/x 2>/dev/null && echo writable || echo ro",
        ],
    );
    assert_eq!(out, "from the host\nro\n");
    // A second provision of the same name is refused and changes nothing.
    let out = h.cmd("zoneadm", &["provision", "-f", f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(h.get("web")["state"], "running");
}

#[test]
fn validate_reports_every_problem_with_its_path() {
    if !require_root() {
        return;
    }
    let h = Host::new("valid", false);
    let file = h.root.join("bad.json");
    std::fs::write(
        &file,
        r#"{"zonename": "web", "image": "x", "brand": "solaris", "max_physical_memory": "lots",
            "filesystems": [{"type": "lofs", "target": "/a", "source": "/b", "mode": 1}]}"#,
    )
    .unwrap();
    for verb in ["validate", "provision"] {
        let out = h.cmd("zoneadm", &[verb, "-f", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("3 problems"), "{err}");
        for path in [
            "$.brand: ",
            "$.max_physical_memory: ",
            "$.filesystems[0].mode: ",
        ] {
            assert!(err.contains(path), "{path} not in {err}");
        }
    }
    assert_eq!(h.ok("zoneadm", &["lookup"]), "", "nothing was configured");
}

#[test]
fn a_provision_failing_at_boot_leaves_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("undo", true);
    // A root without /sbin/init installs but cannot boot.
    std::fs::remove_file(h.image.join("sbin/init")).unwrap();
    let file = h.root.join("m.json");
    let manifest = serde_json::json!({
        "zonename": "broken", "image_path": h.image, "max_physical_memory": 128
    });
    std::fs::write(&file, manifest.to_string()).unwrap();
    let out = h.cmd("zoneadm", &["provision", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed at boot"), "{err}");
    assert!(err.contains("configuration deleted"), "{err}");
    assert_eq!(h.ok("zoneadm", &["lookup"]), "");
    assert!(
        !h.root.join("zones/broken").exists(),
        "the zonepath is left"
    );
    assert!(!h.root.join("etc/zones/broken.json").exists());
    assert!(
        !h.root.join("run/zones/broken").exists(),
        "run files are left"
    );
    for parent in h.cgroup_parents() {
        let left: Vec<_> = std::fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}
