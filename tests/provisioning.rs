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
use common::zonehost::{bin, static_mdata_get, Links, ZoneHost};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// Host: a busybox image only when asked (`Host::new(tag, image)`).
common::zonehost::host_type!();

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
            // The zones, not the API: no zonesd (tests/zonesd_service.rs tests that).
            .env("ZONESD_ENABLE", "no")
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
        for b in [
            "runz",
            "zoneadm",
            "zlogin",
            "zonecfg",
            "imgadm",
            "dladm",
            "zonestat",
            "vmadm",
            "zonetrace",
        ] {
            expect.push(format!("bin/{b}"));
            // Administration commands are in section 8, as illumos's.
            expect.push(format!("share/man/man8/{b}.8"));
        }
        expect.push("bin/mdata-get".into());
        expect.push("share/man/man1/mdata-get.1".into());
        expect.push("share/man/man5/zones.conf.5".into());
        for b in [
            "runz",
            "zoneadm",
            "zlogin",
            "imgadm",
            "dladm",
            "zonestat",
            "vmadm",
            "zonetrace",
        ] {
            expect.push(format!("share/bash-completion/completions/{b}"));
            expect.push(format!("share/zsh/site-functions/_{b}"));
            expect.push(format!("share/fish/vendor_completions.d/{b}.fish"));
        }
    } else {
        for b in [
            "runz",
            "zoneadm",
            "zlogin",
            "imgadm",
            "dladm",
            "zonestat",
            "vmadm",
            "zonetrace",
        ] {
            expect.push(format!("gen/man/man8/{b}.8"));
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
        let page = std::fs::read_to_string(p("share/man/man8/zoneadm.8")).unwrap();
        assert!(page.contains("lookup"), "{page}");
        assert!(page.starts_with(".TH ZONEADM 8 "), "{page}");
        // The SYNOPSIS keeps the operands' names; the options of each verb are described.
        assert!(page.contains("\\fBsnapshot\\fR \\fIname\\fR"), "{page}");
        assert!(page.contains("The snapshot's name"), "{page}");
        // Only mdata-get, which runs inside zones, is a user command (section 1).
        let man1: Vec<_> = std::fs::read_dir(p("share/man/man1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(man1, ["mdata-get.1"], "{man1:?}");
        assert!(page.contains("update") && page.contains("events"), "{page}");
        // The installed mdata-get is static: it runs in a zone without host libraries.
        let file = std::fs::read(p("bin/mdata-get")).unwrap();
        assert!(file.starts_with(b"\x7fELF"));
        let out = Command::new(p("bin/mdata-get"))
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
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
    let file = h.manifest_file("web.json", &manifest);
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
    let manifest = serde_json::json!({
        "zonename": "broken", "image_path": h.image, "max_physical_memory": 128
    });
    let file = h.manifest_file("m.json", &manifest);
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
    let left = h.zone_cgroups_left();
    assert!(left.is_empty(), "cgroups left: {left:?}");
}

fn link_exists(name: &str) -> bool {
    zones_net::Netlink::open()
        .unwrap()
        .link(name)
        .unwrap()
        .is_some()
}

impl Host {
    /// The manifest `doc` written to `<root>/<file>`, for `zoneadm validate/provision -f`.
    fn manifest_file(&self, file: &str, doc: &Value) -> PathBuf {
        let path = self.root.join(file);
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    }

    /// A new etherstub `link(suffix)`, removed by `links` when the test ends.
    fn etherstub(&self, links: &mut Links, suffix: &str) -> String {
        let s = self.link(suffix);
        links.0.push(s.clone());
        self.ok("dladm", &["create-etherstub", &s]);
        s
    }

    /// `zoneadm ARGS` with the static mdata-get for the zones it boots.
    fn zoneadm_md(&self, args: &[&str]) -> Output {
        Command::new(bin("zoneadm"))
            .arg("-R")
            .arg(&self.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .env("ZONES_MDATA_GET", static_mdata_get())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A link name unique to this test host, within IFNAMSIZ.
    fn link(&self, suffix: &str) -> String {
        self.link_name("rzt", suffix)
    }

    /// The value of a memory-cap file of `zone`'s cgroup (v2 memory.max or v1
    /// memory.limit_in_bytes), whichever hierarchy has it.
    fn memory_cap(&self, zone: &str) -> u64 {
        for parent in self.cgroup_parents() {
            for f in ["memory.max", "memory.limit_in_bytes"] {
                if let Ok(text) = std::fs::read_to_string(parent.join(zone).join(f)) {
                    return text.trim().parse().unwrap();
                }
            }
        }
        panic!("no memory cgroup for {zone}");
    }
}

#[test]
fn provision_two_nics_with_caps_metadata_update_and_events() {
    if !require_root() {
        return;
    }
    let mut links = Links(Vec::new());
    let h = Host::new("nics", true);
    let (s1, s2) = (h.etherstub(&mut links, "a"), h.etherstub(&mut links, "b"));
    let manifest = serde_json::json!({
        "alias": "nicweb", "autoboot": true, "image_path": h.image,
        "max_physical_memory": 256, "cpu_cap": 150, "max_lwps": 300, "quota": 1,
        "hostname": "web-1", "resolvers": ["10.214.0.1"],
        "nics": [
            {"nic_tag": s1, "ips": ["10.214.0.5/24"], "gateways": ["10.214.0.1"],
             "mac": "2:8:20:e:1:5", "maxbw": "50M"},
            {"nic_tag": s2, "interface": "back0", "ips": ["10.215.0.5/24"],
             "allow_ip_spoofing": true}
        ],
        "customer_metadata": {"role": "nicweb", "greeting": "hello zone"}
    });
    let file = h.manifest_file("nicweb.json", &manifest);
    let f = file.to_str().unwrap();
    let out = h.zoneadm_md(&["provision", "-f", f]);
    assert!(out.status.success(), "provision: {out:?}");

    // get matches the manifest.
    let doc = h.get("nicweb");
    assert_eq!(doc["state"], "running", "{doc}");
    assert_eq!(doc["ip-type"], "exclusive", "{doc}");
    assert_eq!(doc["capped-memory"]["physical"], "256M", "{doc}");
    assert_eq!(doc["capped-cpu"]["ncpus"], "1.5", "{doc}");
    assert_eq!(doc["quota"], "1G", "{doc}");
    assert_eq!(doc["hostname"], "web-1", "{doc}");
    assert_eq!(doc["resolvers"], serde_json::json!(["10.214.0.1"]), "{doc}");
    let anet = doc["anet"].as_array().unwrap();
    assert_eq!(anet.len(), 2, "{doc}");
    assert_eq!(anet[0]["linkname"], "net0");
    assert_eq!(anet[0]["lower-link"], s1.as_str());
    assert_eq!(anet[0]["allowed-address"], "10.214.0.5/24");
    assert_eq!(anet[0]["defrouter"], "10.214.0.1");
    assert_eq!(anet[0]["maxbw"], "50M");
    assert_eq!(anet[0]["link-protection"], "ip-nospoof,mac-nospoof");
    assert_eq!(anet[1]["linkname"], "back0");
    assert_eq!(anet[1]["lower-link"], s2.as_str());
    assert_eq!(anet[1]["link-protection"], Value::Null);
    assert_eq!(
        doc["customer_metadata"],
        serde_json::json!({"role": "nicweb", "greeting": "hello zone"})
    );
    assert_eq!(
        h.ok("zoneadm", &["lookup", "customer_metadata.role=nicweb"]),
        "nicweb\n"
    );
    // Both links are in the zone with their addresses.
    let addrs = h.ok("zlogin", &["nicweb", "ip -4 addr show"]);
    for a in ["10.214.0.5/24", "10.215.0.5/24", "net0", "back0"] {
        assert!(addrs.contains(a), "{a} not in {addrs}");
    }
    assert_eq!(
        h.ok("zlogin", &["nicweb", "cat /sys/class/net/net0/address"]),
        "02:08:20:0e:01:05\n"
    );
    assert_eq!(h.memory_cap("nicweb"), 256 << 20);

    // Metadata: readable inside through mdata-get and the file view, not writable.
    let md = h.ok(
        "zlogin",
        &[
            "nicweb",
            "/.zonecontrol/mdata-get greeting; /.zonecontrol/mdata-list",
        ],
    );
    assert_eq!(md, "hello zone\ngreeting\nrole\n");
    let view = h.ok("zlogin", &["nicweb", "cat /.zonecontrol/metadata.json"]);
    let view: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["role"], "nicweb");
    let out = h.cmd(
        "zlogin",
        &[
            "nicweb",
            "/.zonecontrol/mdata-put role evil; echo rc=$?; \
                  echo '{}' > /.zonecontrol/metadata.json && echo wrote; \
                  /.zonecontrol/mdata-get role",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.starts_with("rc=1\n"), "{text} {err}");
    assert!(!text.contains("wrote"), "{text}");
    assert!(text.ends_with("web\n"), "{text}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(
        h.cmd("zlogin", &["nicweb", "/.zonecontrol/mdata-get nosuch"])
            .status
            .code(),
        Some(1)
    );

    // update: a live cap (the cgroup changes now), metadata (read anew inside), and a
    // property that needs a reboot.
    let upd = h.root.join("upd.json");
    std::fs::write(
        &upd,
        r#"{"max_physical_memory": 384, "customer_metadata": {"role": "db"}, "hostname": "web-2"}"#,
    )
    .unwrap();
    let out = h.ok(
        "zoneadm",
        &["-z", "nicweb", "update", "-j", "-f", upd.to_str().unwrap()],
    );
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["state"], "running");
    assert_eq!(
        report["live"],
        serde_json::json!(["customer_metadata", "max_physical_memory"])
    );
    assert_eq!(report["reboot"], serde_json::json!(["hostname"]));
    assert_eq!(h.memory_cap("nicweb"), 384 << 20);
    assert_eq!(h.get("nicweb")["capped-memory"]["physical"], "384M");
    assert_eq!(
        h.ok(
            "zlogin",
            &[
                "nicweb",
                "/.zonecontrol/mdata-list; /.zonecontrol/mdata-get role"
            ]
        ),
        "role\ndb\n"
    );
    // The text report says what needs a reboot.
    std::fs::write(&upd, r#"{"cpu_cap": 100, "resolvers": ["10.214.0.2"]}"#).unwrap();
    let out = h.ok(
        "zoneadm",
        &["-z", "nicweb", "update", "-f", upd.to_str().unwrap()],
    );
    assert!(out.contains("applied now: cpu_cap"), "{out}");
    assert!(out.contains("needs a reboot: resolvers"), "{out}");
    // A bad update changes nothing.
    std::fs::write(&upd, r#"{"zonepath": "/x", "max_physical_memory": 0}"#).unwrap();
    let out = h.cmd(
        "zoneadm",
        &["-z", "nicweb", "update", "-f", upd.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 problems"));
    assert_eq!(h.memory_cap("nicweb"), 384 << 20);

    // events: the provision's history, then a live follower sees the halt.
    let lines = h.ok("zoneadm", &["-z", "nicweb", "events"]);
    let states: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .inspect(|e| {
            assert_eq!(e["zone"], "nicweb");
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
        })
        .map(|e| e["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states.first().map(String::as_str), Some("configured"));
    assert_eq!(states.last().map(String::as_str), Some("running"));
    assert!(states.iter().any(|s| s == "installed"), "{states:?}");
    // A follower asked for the history plus three more events sees the halt's:
    // shutting_down, down, installed.
    let want = states.len() + 3;
    let follower = Command::new(bin("zoneadm"))
        .arg("-R")
        .arg(&h.root)
        .args(["-z", "nicweb", "events", "-F", "-t", "60", "-c"])
        .arg(want.to_string())
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    h.ok("zoneadm", &["-z", "nicweb", "halt"]);
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), want, "{text}");
    let halt: Vec<&str> = got[states.len()..]
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(halt, ["shutting_down", "down", "installed"], "{text}");
    assert_eq!(got[states.len()]["previous"], "running", "{text}");
    // The zonecontrol directory went with the zone.
    assert!(!h.root.join("run/zones/nicweb/zonecontrol").exists());
}

#[test]
fn a_provision_whose_nic_has_no_etherstub_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut links = Links(Vec::new());
    let h = Host::new("nostub", true);
    let good = h.etherstub(&mut links, "g");
    let missing = h.link("m");
    links.0.push(missing.clone());
    let manifest = serde_json::json!({
        "zonename": "nicbroken", "image_path": h.image, "max_physical_memory": 128,
        "customer_metadata": {"k": "v"},
        "nics": [{"nic_tag": good, "ips": ["10.216.0.5/24"]},
                 {"nic_tag": missing, "ips": ["10.217.0.5/24"]}]
    });
    let file = h.manifest_file("m.json", &manifest);
    // Valid as a document: the etherstub is missing only when the zone boots.
    h.ok("zoneadm", &["validate", "-f", file.to_str().unwrap()]);
    let out = h.zoneadm_md(&["provision", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed at boot"), "{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("configuration deleted"), "{err}");
    // No zone, dataset, link, cgroup, metadata or runtime files.
    assert_eq!(h.ok("zoneadm", &["lookup"]), "");
    assert!(
        !h.root.join("zones/nicbroken").exists(),
        "the zonepath is left"
    );
    assert!(!h.root.join("etc/zones/nicbroken.json").exists());
    let metadata_left: Vec<_> = std::fs::read_dir(h.root.join("etc/zones/metadata"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(metadata_left.is_empty(), "metadata left: {metadata_left:?}");
    assert!(
        !h.root.join("run/zones/nicbroken").exists(),
        "run files are left"
    );
    for linkname in ["net0", "net1"] {
        let host_end = zones_linux::zone::network::host_link_name("nicbroken", linkname);
        assert!(!link_exists(&host_end), "{host_end} is left");
    }
    assert!(link_exists(&good), "the existing etherstub is kept");
    assert!(!link_exists(&missing), "no etherstub was invented");
    let left = h.zone_cgroups_left();
    assert!(left.is_empty(), "cgroups left: {left:?}");
    // The history says what happened, ending with the deletion.
    let events = h.ok("zoneadm", &["-z", "nicbroken", "events"]);
    assert!(
        events.lines().last().unwrap().contains("\"deleted\""),
        "{events}"
    );
}

#[test]
fn autoboot_follow_and_the_host_service_bring_back_what_was_running() {
    if !require_root() {
        return;
    }
    let mut links = Links(Vec::new());
    let h = Host::new("follow", true);
    let stub = h.link("s");
    links.0.push(stub.clone());
    h.ok("dladm", &["create-etherstub", &stub]);
    std::fs::create_dir_all(h.root.join("etc/zones")).unwrap();
    std::fs::write(h.root.join("etc/zones/zones.conf"), "autoboot = follow\n").unwrap();
    for z in ["a", "b", "c"] {
        h.install(z, false);
    }
    // An operator's boot sets autoboot; halt and shutdown clear it.
    h.ok("zoneadm", &["-z", "a", "boot"]);
    h.ok("zoneadm", &["-z", "b", "boot"]);
    h.ok("zoneadm", &["-z", "c", "boot"]);
    for z in ["a", "b", "c"] {
        assert_eq!(h.get(z)["autoboot"], true, "{z}");
    }
    h.ok("zoneadm", &["-z", "c", "shutdown", "-t", "20"]);
    assert_eq!(h.get("c")["autoboot"], false);
    assert_eq!(h.get("c")["state"], "installed");
    // The service's stop leaves autoboot as it is; its start boots both again.
    let out = h.service("stop");
    assert!(out.status.success(), "stop: {out:?}");
    for z in ["a", "b"] {
        let doc = h.get(z);
        assert_eq!(doc["state"], "installed", "{doc}");
        assert_eq!(doc["autoboot"], true, "{doc}");
    }
    // A host reboot loses the etherstub; the service's start makes it again.
    zones_net::Netlink::open()
        .unwrap()
        .delete_link(&stub)
        .unwrap();
    assert!(!link_exists(&stub));
    let out = h.service("start");
    assert!(out.status.success(), "start: {out:?}");
    assert!(link_exists(&stub), "dladm up did not restore {stub}");
    let shown: Value = serde_json::from_str(&h.ok("dladm", &["show-etherstub", "-j"])).unwrap();
    assert_eq!(shown, serde_json::json!([{"link": stub}]));
    assert_eq!(h.ok("zoneadm", &["lookup", "state=running"]), "a\nb\n");
    h.ok("zoneadm", &["-z", "b", "halt"]);
    assert_eq!(h.get("b")["autoboot"], false);
    let out = h.service("stop");
    assert!(out.status.success(), "stop: {out:?}");
    assert_eq!(h.ok("zoneadm", &["lookup", "state=running"]), "");
    // Events of every zone, in order: each went configured → ... → installed at the end.
    let all = h.ok("zoneadm", &["events"]);
    for z in ["a", "b", "c"] {
        let mine: Vec<Value> = all
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["zone"] == z)
            .collect();
        assert_eq!(mine.first().unwrap()["state"], "configured", "{z}: {all}");
        assert_eq!(mine.last().unwrap()["state"], "installed", "{z}: {all}");
        assert!(mine.iter().any(|e| e["state"] == "running"), "{z}: {all}");
    }
    // Without follow, boot and halt leave autoboot alone (illumos).
    std::fs::write(h.root.join("etc/zones/zones.conf"), "").unwrap();
    h.ok("zoneadm", &["-z", "c", "boot"]);
    assert_eq!(h.get("c")["autoboot"], false);
    h.ok("zoneadm", &["-z", "c", "halt"]);
}

/// Every binary and every subcommand: `--help` exits 0 with usage and examples (and no
/// colour when not on a terminal), a bad option or subcommand exits 2.
#[test]
fn every_command_has_help_with_examples_and_usage_errors_exit_2() {
    let run = |b: &str, args: &[&str]| {
        Command::new(bin(b))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let clis: [(&str, clap::Command, bool); 8] = [
        ("zoneadm", zones_linux::cli::zoneadm::command(), true),
        ("dladm", zones_linux::cli::dladm::command(), true),
        ("imgadm", zones_linux::cli::imgadm::command(), true),
        ("zlogin", zones_linux::cli::zlogin::command(), false),
        ("zonestat", zones_linux::cli::zonestat::command(), false),
        ("vmadm", zones_linux::cli::vmadm::command(), false),
        ("zonetrace", zones_linux::cli::zonetrace::command(), false),
        ("runz", zones_linux::cli::runz::command(), false),
    ];
    let mut checked = 0;
    for (b, cmd, sub_examples) in clis {
        let out = run(b, &["--help"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{b} --help");
        assert!(text.contains("Usage:"), "{b}: {text}");
        assert!(text.contains("Examples:"), "{b} --help has no examples");
        assert!(
            !text.contains('\x1b'),
            "{b} --help is coloured off a terminal"
        );
        let out = run(b, &["--no-such-option"]);
        assert_eq!(out.status.code(), Some(2), "{b} --no-such-option: {out:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains('\x1b'));
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            let out = run(b, &[name, "--help"]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{b} {name} --help: {out:?}");
            assert!(text.contains("Usage:"), "{b} {name}: {text}");
            if sub_examples {
                assert!(
                    text.contains("Examples:"),
                    "{b} {name} --help has no examples"
                );
            }
            let out = run(b, &[name, "--no-such-option"]);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{b} {name} --no-such-option: {out:?}"
            );
            checked += 1;
        }
        if cmd.has_subcommands() {
            let out = run(b, &["no-such-command"]);
            // runz answers as runc does (`No help topic for '...'`, exit 3: tests/
            // runc_compat_cli.rs); the zone tools as clap and illumos's usage errors, exit 2.
            let code = if b == "runz" { 3 } else { 2 };
            assert_eq!(
                out.status.code(),
                Some(code),
                "{b} no-such-command: {out:?}"
            );
        }
    }
    assert!(checked > 30, "only {checked} subcommands walked");
    // zonecfg parses its own arguments, with the same conventions.
    let out = run("zonecfg", &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    assert_eq!(run("zonecfg", &["-Q"]).status.code(), Some(2));
}
