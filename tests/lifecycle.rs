//! The container lifecycle through the real `runz` binary: run, create/start/state/kill/delete,
//! pid files, list, and what bad input leaves behind (nothing).

mod common;

use common::{require_root, Bundle};
use serde_json::json;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_prints_the_output_and_returns_the_exit_code() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("run-exit");
    b.args(&["sh", "-c", "echo hello from runz; echo oops >&2; exit 7"]);
    let out = b.run();
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello from runz\n");
    assert!(stderr(&out).contains("oops"));
    // run deletes the container when the process exits.
    let st = b.runz(&["state", &b.id]);
    assert!(!st.status.success());
    assert!(stderr(&st).contains("does not exist"), "{}", stderr(&st));
}

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("states");
    b.args(&["sleep", "1000"]);
    let pid_file = b.dir.join("init.pid");
    b.write();
    let out = b.runz(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "create must print nothing on success"
    );
    let st = b.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(b.id));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // The pid file holds the digits only, no newline.
    let pf = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(pf, pid.to_string());
    // `created` is RFC 3339 with a Z.
    let created = st["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    // While created, init has not run the user's process yet.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    let out = b.start();
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(b.state()["status"], "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).starts_with("sleep"));
    // Starting twice is refused.
    assert!(!b.start().status.success());

    let out = b.runz(&["kill", &b.id, "9"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    wait_for_status(&b, "stopped");
    assert_eq!(b.state()["pid"], 0);
    // Killing a stopped container says it is not running.
    let out = b.runz(&["kill", &b.id, "KILL"]);
    assert!(
        stderr(&out).contains("container not running"),
        "{}",
        stderr(&out)
    );

    let out = b.delete();
    assert!(out.status.success(), "delete: {}", stderr(&out));
    let out = b.runz(&["state", &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("container does not exist"));
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()), "cgroup left");
}

fn wait_for_status(b: &Bundle, want: &str) {
    assert!(
        common::wait_until(|| b.state()["status"] == want),
        "status never became {want}: {}",
        b.state()
    );
}

#[test]
fn delete_of_a_running_container_needs_force() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("del-force");
    b.args(&["sleep", "1000"]);
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert!(b.start().status.success());
    let out = b.delete();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not stopped"), "{}", stderr(&out));
    assert_eq!(b.state()["status"], "running");
    let out = b.runz(&["delete", "--force", &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!b.runz(&["state", &b.id]).status.success());
}

#[test]
fn a_created_container_can_be_deleted_and_unknown_ids_are_fine_with_force() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("del-created");
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid = b.state()["pid"].as_i64().unwrap();
    assert!(b.delete().status.success());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s.contains(") Z"))
    );
    assert!(b
        .runz(&["delete", "--force", "runz-test-never-was"])
        .status
        .success());
    let out = b.runz(&["delete", "runz-test-never-was"]);
    assert!(stderr(&out).contains("does not exist"));
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_is_untouched() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("dup");
    b.args(&["sleep", "1000"]);
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container with given ID already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.state()["status"], "created");
}

#[test]
fn list_shows_containers_in_table_and_json() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("list");
    b.args(&["sleep", "1000"]);
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let out = b.runz(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], json!(b.id));
    assert_eq!(v[0]["status"], "created");
    let table = stdout(&b.runz(&["list"]));
    assert!(table.starts_with("ID"));
    assert!(table.contains(&b.id) && table.contains("created"));
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    // Malformed JSON.
    let b = Bundle::new("bad-json");
    b.write();
    std::fs::write(b.dir.join("config.json"), "{ not json").unwrap();
    // Not b.create(): it would write the good spec again.
    let out = b.runz(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
    assert_no_container(&b);

    // Missing executable: create fails like runc, with the name.
    let mut b = Bundle::new("no-exec");
    b.args(&["nope-not-here"]);
    b.write();
    let out = b.create();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("exec: \"nope-not-here\": executable file not found in $PATH"),
        "{}",
        stderr(&out)
    );
    assert_no_container(&b);

    // Missing rootfs.
    let b = Bundle::new("no-rootfs");
    b.write();
    std::fs::remove_dir_all(b.dir.join("rootfs")).unwrap();
    let out = b.create();
    assert!(stderr(&out).contains("rootfs"), "{}", stderr(&out));
    assert_no_container(&b);

    // A bad signal.
    let b = Bundle::new("bad-signal");
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let out = b.runz(&["kill", &b.id, "SIGNOPE"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SIGNOPE"));
    assert_eq!(b.state()["status"], "created");
}

fn assert_no_container(b: &Bundle) {
    let out = b.runz(&["state", &b.id]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!b.root.join(&b.id).exists(), "state dir left behind");
    assert!(
        b.cgroup_dirs().iter().all(|d| !d.exists()),
        "cgroup left behind"
    );
}

#[test]
fn errors_go_to_the_log_file_as_json_lines() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("log-json");
    b.args(&["nope-not-here"]);
    b.write();
    let log = b.dir.join("log.json");
    let out = b.runz(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        &b.id,
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("nope-not-here"));
    assert!(last["time"].is_string());
}

#[test]
fn spec_writes_a_runc_like_config_and_refuses_to_overwrite() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("spec");
    let dir = b.dir.join("spec-out");
    std::fs::create_dir_all(&dir).unwrap();
    let out = b.runz(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(v["process"]["args"], json!(["sh"]));
    assert_eq!(v["root"]["path"], "rootfs");
    let out = b.runz(&["spec", "--bundle", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let out = b.runz(&[
        "spec",
        "--rootless",
        "--bundle",
        b.dir.join("rootfs/tmp").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("rootfs/tmp/config.json")).unwrap())
            .unwrap();
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
}

#[test]
fn features_lists_what_is_implemented() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("features");
    let out = b.runz(&["features"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["hooks"].as_array().unwrap().len() == 6);
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("user")));
    assert!(v["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&json!("nosuid")));
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_SYS_ADMIN")));
    assert!(v["linux"]["seccomp"]["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_ACT_ERRNO")));
}

/// How the containerd shim and podman see a failed command: with `--log FILE --log-format
/// json`, runc writes the error to the log AND, plain, to stderr (the shim classifies kill and
/// delete failures from that output), and a failed exec exits 255. runz must match runc on
/// the same calls.
#[test]
fn errors_reach_stderr_as_well_as_the_log_as_runc_does() {
    if !require_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("runz-test-logerr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |bin: &std::path::Path, name: &str, args: &[&str]| {
        let log = dir.join(format!("{name}.log"));
        let out = std::process::Command::new(bin)
            .arg("--root")
            .arg(dir.join(format!("{name}-root")))
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
            logged,
        )
    };
    let runc = std::path::Path::new("/usr/sbin/runc");
    for args in [
        &["kill", "runz-test-gone", "9"][..],
        &["delete", "runz-test-gone"][..],
        &["exec", "runz-test-gone", "true"][..],
    ] {
        let (code, stderr, logged) = run(common::runz_bin(), "runz", args);
        assert!(
            stderr.contains("container does not exist"),
            "{args:?}: {stderr:?}"
        );
        let v: serde_json::Value = serde_json::from_str(logged.lines().last().unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{args:?}: log {logged:?}: {e}"));
        assert_eq!(v["level"], "error", "{args:?}: {logged}");
        assert!(
            v["msg"]
                .as_str()
                .unwrap_or("")
                .contains("container does not exist"),
            "{logged}"
        );
        if runc.exists() {
            let (rc_code, rc_stderr, _) = run(runc, "runc", args);
            assert_eq!(code, rc_code, "{args:?}: exit status, runz vs runc");
            assert_eq!(stderr, rc_stderr, "{args:?}: stderr, runz vs runc");
        } else {
            let want = if args[0] == "exec" { 255 } else { 1 };
            assert_eq!(code, Some(want), "{args:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
