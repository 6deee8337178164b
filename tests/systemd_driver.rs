//! `runz --systemd-cgroup` (the systemd cgroup driver) on a host where systemd is not PID 1:
//! it must fail at once, before anything is made, with runc's reason, and refuse malformed
//! cgroupsPaths with runc's words; runc 1.1.5 runs on the same bundle for comparison. The
//! driver itself (scopes, properties, update, delete) is exercised in the systemd guest:
//! integration/vm/systemd/systemd-driver.sh, run by scripts/test.sh.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{require_root, Bundle};
use serde_json::json;

const RUNC: &str = "/usr/sbin/runc";

/// `BIN --root ROOT --systemd-cgroup --log LOG --log-format json create --bundle DIR ID`:
/// (exit code, stderr, the last JSON log line's msg).
fn create(bin: &Path, b: &Bundle, root: &Path, id: &str) -> (Option<i32>, String, String) {
    let log = b.dir.join(format!("{id}.log.json"));
    let out = Command::new(bin)
        .arg("--root")
        .arg(root)
        .arg("--systemd-cgroup")
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(&b.dir)
        .arg(id)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let msg = logged
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_default();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
        msg,
    )
}

#[test]
fn systemd_cgroup_without_systemd_fails_at_once_with_runcs_reason() {
    if !require_root() {
        return;
    }
    if Path::new("/run/systemd/system").is_dir() {
        eprintln!("skipping: systemd is PID 1 here (the guest job covers this host kind)");
        return;
    }
    let not_running = "systemd not running on this host, cannot use systemd cgroups manager";
    let format = |p: &str| {
        format!(
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, \
             got \"{p}\" instead"
        )
    };
    let cases: [(Option<&str>, String); 5] = [
        (None, not_running.to_string()),
        (Some("system.slice:runz-test:sd"), not_running.to_string()),
        (Some(":runz-test:sd"), not_running.to_string()),
        (Some("runz-test-plain"), format("runz-test-plain")),
        // runc looks at the slice's name only once it has found systemd.
        (Some("runz--test.slice:p:n"), not_running.to_string()),
    ];
    let mut b = Bundle::new("sd-refused");
    let runc_root = b.dir.join("runc-root");
    for (i, (path, want)) in cases.iter().enumerate() {
        match path {
            Some(p) => b.set("/linux/cgroupsPath", json!(p)),
            None => b.set("/linux/cgroupsPath", json!("")),
        };
        b.write();
        let id = format!("{}-{i}", b.id);
        let (code, stderr, msg) = create(common::runz_bin(), &b, &b.root, &id);
        assert_eq!(
            code,
            Some(1),
            "{path:?}: runz exit status; stderr {stderr:?}"
        );
        assert!(
            stderr.contains(want),
            "{path:?}: runz stderr {stderr:?}, want {want:?}"
        );
        assert!(
            msg.contains(want),
            "{path:?}: runz log msg {msg:?}, want {want:?}"
        );
        // Nothing was made: no container, no cgroup.
        let st = b.runz(&["state", &id]);
        assert!(
            String::from_utf8_lossy(&st.stderr).contains("does not exist"),
            "{path:?}: runz state after the refused create: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        for dir in b.cgroup_dirs() {
            assert!(!dir.exists(), "{path:?}: {} was made", dir.display());
        }
        if Path::new(RUNC).exists() {
            let (rc, rc_stderr, rc_msg) = create(Path::new(RUNC), &b, &runc_root, &id);
            assert_eq!(
                code, rc,
                "{path:?}: exit status, runz vs runc ({rc_stderr})"
            );
            assert_eq!(
                rc_stderr,
                format!("runc create failed: {want}"),
                "{path:?}: runc's own words changed"
            );
            assert!(rc_msg.ends_with(want.as_str()), "{rc_msg}");
        }
    }
    let _ = std::fs::remove_dir_all(&runc_root);
}

/// `runz run` takes the global flag too (go-runc puts it before every subcommand), and the
/// features document says the driver is there.
#[test]
fn run_takes_the_flag_and_features_report_the_driver() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sd-run");
    let out = b.runz(&["features"]);
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("features JSON");
    assert_eq!(f["linux"]["cgroup"]["systemd"], json!(true), "{f}");
    if Path::new("/run/systemd/system").is_dir() {
        return;
    }
    let cgroupfs_path = b.spec["linux"]["cgroupsPath"].clone();
    let scope_path = format!("system.slice:runz-test:{}", b.id);
    b.set("/linux/cgroupsPath", json!(scope_path));
    b.write();
    let out = b.runz(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        b.dir.to_str().unwrap(),
        &b.id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systemd not running on this host"), "{err}");
    b.set("/linux/cgroupsPath", cgroupfs_path);
    // Without the flag the same bundle runs (the refusal is the driver's, not the bundle's).
    let out = b.run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
