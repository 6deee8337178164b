//! Controlling running containers: exec (process.json and the flag form), pause/resume, ps,
//! update, events, and kill --all after init has exited.

mod common;

use common::{require_root, Bundle};
use serde_json::json;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A started container running `sleep 1000`.
fn running(name: &str) -> Bundle {
    let mut b = Bundle::new(name);
    b.args(&["sleep", "1000"]);
    b.write();
    let out = b.create();
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    let out = b.start();
    assert!(out.status.success(), "start: {}", text(&out.stderr));
    b
}

#[test]
fn exec_joins_the_containers_namespaces_and_returns_the_exit_code() {
    if !require_root() {
        return;
    }
    let b = running("exec-ns");
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = b.runz(&[
        "exec", &b.id, "sh", "-c", "for n in pid mnt uts; do readlink /proc/self/ns/$n; done; hostname; ls /proc | grep -c '^[0-9]'; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    for (i, ns) in ["pid", "mnt", "uts"].iter().enumerate() {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(lines[i], want.display().to_string());
    }
    assert_eq!(lines[3], "runz");
    // Only init and the exec'd shell (plus ls/grep) are visible: not the host's processes.
    let visible: usize = lines[4].parse().unwrap();
    assert!(visible <= 4, "saw {visible} processes");
    // The exec'd process was in the container's cgroup.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&b.id));
}

#[test]
fn exec_flags_set_env_cwd_user_and_caps() {
    if !require_root() {
        return;
    }
    let b = running("exec-flags");
    let out = b.runz(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "--additional-gids",
        "7",
        &b.id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; cat /proc/self/status",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    let mut lines = o.lines();
    assert_eq!(lines.next(), Some("bar"));
    assert_eq!(lines.next(), Some("/tmp"));
    assert_eq!(lines.next(), Some("1000"));
    assert_eq!(lines.next(), Some("1000"));
    assert!(o.contains("Groups:\t7"), "{o}");
}

#[test]
fn exec_with_a_process_file_detached_writes_the_pid_file() {
    if !require_root() {
        return;
    }
    let b = running("exec-process");
    let process = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["sh", "-c", "echo from-process-json > /tmp/marker; sleep 1000"],
        "env": ["PATH=/bin:/usr/bin"]
    });
    let pf = b.dir.join("process.json");
    std::fs::write(&pf, process.to_string()).unwrap();
    let pid_file = b.dir.join("exec.pid");
    let out = b.runz(&[
        "exec",
        "--process",
        pf.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    // The shell may exec its last command: either is the process we started. runz returns
    // once the process's execve is past the point of no return (its close-on-exec channel
    // closed); until execve has set up the new stack, cmdline reads empty, so wait for it.
    let mut cmd = String::new();
    common::wait_until(|| {
        cmd = text(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap());
        !cmd.is_empty()
    });
    assert!(cmd.starts_with("sh") || cmd.starts_with("sleep"), "{cmd}");
    let marker = b.dir.join("rootfs/tmp/marker");
    common::wait_until(|| marker.exists());
    assert_eq!(
        std::fs::read_to_string(marker).unwrap(),
        "from-process-json\n"
    );
    // ps lists init and the exec'd process.
    let out = b.runz(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&pid), "{pids:?}");
    assert!(pids.contains(&(b.state()["pid"].as_i64().unwrap() as i32)));
    let table = text(&b.runz(&["ps", &b.id]).stdout);
    assert!(
        table.starts_with("UID") && table.contains("sleep"),
        "{table}"
    );
}

#[test]
fn exec_errors_are_clear() {
    if !require_root() {
        return;
    }
    let b = running("exec-errors");
    let out = b.runz(&["exec", &b.id, "nope-not-here"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("executable file not found"),
        "{}",
        text(&out.stderr)
    );
    let out = b.runz(&["exec", "runz-test-no-such", "true"]);
    assert!(text(&out.stderr).contains("does not exist"));
    assert!(b.runz(&["kill", &b.id, "KILL"]).status.success());
    for _ in 0..300 {
        if b.state()["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = b.runz(&["exec", &b.id, "true"]);
    assert!(
        text(&out.stderr).contains("container not running"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_with_a_tty_in_the_foreground() {
    if !require_root() {
        return;
    }
    let b = running("exec-tty");
    let out = b.runz(&["exec", "--tty", &b.id, "tty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn pause_and_resume_freeze_the_container() {
    if !require_root() {
        return;
    }
    let b = running("pause");
    let pid = b.state()["pid"].as_i64().unwrap();
    let out = b.runz(&["pause", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(b.state()["status"], "paused");
    let out = b.runz(&["exec", &b.id, "true"]);
    assert!(
        text(&out.stderr).contains("paused"),
        "{}",
        text(&out.stderr)
    );
    assert!(!b.runz(&["pause", &b.id]).status.success() || b.state()["status"] == "paused");
    let out = b.runz(&["resume", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(b.state()["status"], "running");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = b.runz(&["resume", &b.id]);
    assert!(!out.status.success());
}

#[test]
fn update_changes_the_limits() {
    if !require_root() {
        return;
    }
    let b = running("update");
    let pid = b.state()["pid"].as_i64().unwrap();
    let res = b.dir.join("res.json");
    std::fs::write(
        &res,
        json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}}).to_string(),
    )
    .unwrap();
    let out = b.runz(&["update", "--resources", res.to_str().unwrap(), &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path_of = |ctrl: &str| {
        cg.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .map(|l| l.splitn(3, ':').nth(2).unwrap().to_string())
            .unwrap()
    };
    let read = |ctrl: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}{}/{f}", path_of(ctrl)))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "33554432");
    assert_eq!(read("pids", "pids.max"), "20");
    let out = b.runz(&["update", "--memory", "48m", "--pids-limit", "30", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read("memory", "memory.limit_in_bytes"), "50331648");
    assert_eq!(read("pids", "pids.max"), "30");
    std::fs::write(&res, "{ nope").unwrap();
    let out = b.runz(&["update", "--resources", res.to_str().unwrap(), &b.id]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("invalid LinuxResources JSON"));
    assert_eq!(read("memory", "memory.limit_in_bytes"), "50331648");
}

#[test]
fn events_stats_prints_one_object_in_runcs_shape() {
    if !require_root() {
        return;
    }
    let b = running("events");
    let out = b.runz(&["events", "--stats", &b.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], json!(b.id));
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["data"]["cpu"]["usage"]["total"].is_u64(), "{v}");
}

#[test]
fn kill_all_reaches_leftovers_after_init_exited() {
    if !require_root() {
        return;
    }
    // No PID namespace: a background child survives init.
    let mut b = Bundle::new("kill-all");
    let ns: Vec<_> = b.spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect();
    b.set("/linux/namespaces", json!(ns));
    b.args(&["sh", "-c", "sleep 1000 & echo started"]);
    b.write();
    assert!(b.create().status.success());
    assert!(b.start().status.success());
    for _ in 0..300 {
        if b.state()["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.state()["status"], "stopped");
    let pids: Vec<i32> =
        serde_json::from_slice(&b.runz(&["ps", "--format", "json", &b.id]).stdout).unwrap();
    assert_eq!(pids.len(), 1, "the sleeper is left: {pids:?}");
    let out = b.runz(&["kill", "--all", &b.id, "9"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for _ in 0..300 {
        let left: Vec<i32> =
            serde_json::from_slice(&b.runz(&["ps", "--format", "json", &b.id]).stdout).unwrap();
        if left.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("kill --all left processes");
}

#[test]
fn pause_of_a_stopped_container_is_refused_with_runcs_words() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("pause-stopped");
    b.write();
    assert!(b.create().status.success());
    assert!(b.runz(&["kill", &b.id, "KILL"]).status.success());
    for _ in 0..300 {
        if b.state()["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = b.runz(&["pause", &b.id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container not running"),
        "{}",
        text(&out.stderr)
    );
    let out = b.runz(&["update", "--memory", "64m", &b.id]);
    assert!(
        text(&out.stderr).contains("container not running"),
        "{}",
        text(&out.stderr)
    );
    let out = b.runz(&["pause", "runz-test-no-such"]);
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
}
