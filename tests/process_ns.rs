//! What the process inside actually sees: identity, capabilities, no_new_privs, rlimits,
//! namespaces (new and joined), id maps, hostname, cwd/env, oom_score_adj, sysctl, seccomp.

mod common;

use common::{require_root, Bundle};
use serde_json::json;

/// Run `script` with sh in the bundle's container and return its stdout; panics on failure.
fn sh(b: &mut Bundle, script: &str) -> String {
    b.args(&["sh", "-c", script]);
    let out = b.run();
    assert!(
        out.status.success(),
        "script {script:?} failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing in {status}"))
        .trim()
        .to_string()
}

#[test]
fn user_groups_and_umask_are_applied() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("user");
    b.set(
        "/process/user",
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 63}),
    );
    let out = sh(&mut b, "cat /proc/self/status; umask");
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "5 6");
    assert!(out.trim_end().ends_with("0077"), "{out}");
}

#[test]
fn capabilities_and_no_new_privs_are_what_the_spec_says() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("caps");
    let set = json!(["CAP_CHOWN", "CAP_KILL"]);
    b.set(
        "/process/capabilities",
        json!({"bounding": set, "effective": set, "permitted": set, "inheritable": [], "ambient": []}),
    );
    b.set("/process/noNewPrivileges", json!(true));
    let out = sh(&mut b, "cat /proc/self/status");
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5.
    assert_eq!(status_field(&out, "CapEff"), "0000000000000021");
    assert_eq!(status_field(&out, "CapBnd"), "0000000000000021");
    assert_eq!(status_field(&out, "CapPrm"), "0000000000000021");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");

    let mut b = Bundle::new("nnp-off");
    b.set("/process/noNewPrivileges", json!(false));
    let out = sh(&mut b, "cat /proc/self/status");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
}

#[test]
fn rlimits_are_set() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("rlimits");
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
               {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400}]),
    );
    let out = sh(&mut b, "cat /proc/self/limits");
    let line = out
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums, ["1000", "2000"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .unwrap();
    let nums: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
    assert_eq!(nums, ["300", "400"]);
}

#[test]
fn duplicate_rlimits_are_refused() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("rlimit-dup");
    let mut b = b;
    b.set(
        "/process/rlimits",
        json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20},
               {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]),
    );
    b.write();
    let out = b.create();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RLIMIT_NOFILE"));
}

#[test]
fn pid_uts_hostname_domainname_cwd_and_env() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("pidns");
    b.set("/hostname", json!("zone-one"));
    b.set("/domainname", json!("example.test"));
    b.set("/process/cwd", json!("/tmp"));
    b.set(
        "/process/env",
        json!(["PATH=/bin:/usr/bin", "GREETING=hi there"]),
    );
    let out = sh(
        &mut b,
        "echo pid=$$; hostname; cat /proc/sys/kernel/domainname; pwd; echo \"$GREETING\"",
    );
    assert_eq!(
        out, "pid=1\nzone-one\nexample.test\n/tmp\nhi there\n",
        "unexpected view"
    );
}

#[test]
fn user_namespace_maps_are_written() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("userns");
    let ns = b.spec["linux"]["namespaces"].as_array().unwrap().clone();
    let mut ns: Vec<_> = ns.into_iter().filter(|n| n["type"] != "user").collect();
    ns.push(json!({"type": "user"}));
    b.set("/linux/namespaces", json!(ns));
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    // Files in the rootfs belong to host root, which maps to nobody: keep the process root.
    let out = sh(&mut b, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"]);
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["0"]);
}

#[test]
fn namespaces_can_be_joined_by_path() {
    if !require_root() {
        return;
    }
    let mut a = Bundle::new("join-a");
    a.set("/hostname", json!("shared-uts"));
    a.args(&["sleep", "1000"]);
    a.write();
    assert!(a.create().status.success());
    let pid = a.state()["pid"].as_i64().unwrap();

    let mut b = Bundle::new("join-b");
    let ns: Vec<_> = b.spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| match n["type"].as_str().unwrap() {
            t @ ("uts" | "network" | "ipc") => {
                let file = if t == "network" { "net" } else { t };
                json!({"type": t, "path": format!("/proc/{pid}/ns/{file}")})
            }
            _ => n.clone(),
        })
        .collect();
    b.set("/linux/namespaces", json!(ns));
    b.spec.as_object_mut().unwrap().remove("hostname");
    let out = sh(&mut b, "hostname; readlink /proc/self/ns/net");
    let want_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        out,
        format!("shared-uts\n{}\n", want_net.display()),
        "did not join"
    );
}

#[test]
fn oom_score_adj_and_sysctl_are_applied() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("oom-sysctl");
    b.set("/process/oomScoreAdj", json!(500));
    b.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    let out = sh(
        &mut b,
        "cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward",
    );
    assert_eq!(out, "500\n1\n");
}

#[test]
fn seccomp_errno_rules_are_enforced() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("seccomp");
    b.set(
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    b.args(&["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"]);
    let out = b.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(text.contains("rc=1"), "{text}");
}

#[test]
fn preserved_fds_reach_the_process() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("preserve-fds");
    b.args(&["sh", "-c", "cat <&3"]);
    b.write();
    let data = b.dir.join("fd3.txt");
    std::fs::write(&data, "through fd 3\n").unwrap();
    let out = common::run_with_fd3(&b, &data, &["--preserve-fds", "1"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through fd 3\n");
}
