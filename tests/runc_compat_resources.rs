//! Process resources as the runtime spec says (issue 24, "Resources"): `linux.memoryPolicy`
//! (runtime-spec 1.3; runc 1.1 predates it, so runz is checked alone, against the kernel's
//! view in /proc/self/numa_maps), and `linux.intelRdt` refused where the host has no RDT, with
//! runc 1.1.5's exit code and message.

mod common;
mod runc_side;

use common::{require_root, Bundle};
use runc_side::run_both;
use serde_json::json;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// set_mempolicy is applied to init and inherited by the program: numa_maps shows the mode,
/// its flags and nodes.
#[test]
fn memory_policy_is_applied_and_seen_in_numa_maps() {
    if !require_root() {
        return;
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("note: this kernel has no NUMA support (/proc/self/numa_maps); not checked");
        return;
    }
    for (policy, want) in [
        (json!({"mode": "MPOL_BIND", "nodes": "0"}), "bind:0"),
        (
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0"}),
            "interleave:0",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            "bind=static:0",
        ),
        (json!({"mode": "MPOL_LOCAL"}), "local"),
    ] {
        let mut b = Bundle::new("mempolicy");
        b.set("/linux/memoryPolicy", policy.clone());
        b.args(&[
            "sh",
            "-c",
            "head -n 1 /proc/self/numa_maps | awk '{print $2}'",
        ]);
        let out = b.run();
        assert!(out.status.success(), "{policy}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{want}\n"), "{policy}");
    }
}

/// A node that does not exist, or nodes for a mode that takes none, are refused by `run` with
/// the policy named; nothing runs.
#[test]
fn a_bad_memory_policy_is_refused() {
    if !require_root() {
        return;
    }
    for (policy, reason) in [
        (
            json!({"mode": "MPOL_BIND", "nodes": "1000"}),
            "set_mempolicy: Invalid argument",
        ),
        (
            json!({"mode": "MPOL_DEFAULT", "nodes": "0"}),
            "set_mempolicy: Invalid argument",
        ),
        (
            json!({"mode": "MPOL_BIND", "nodes": "0-x"}),
            "nodes must be",
        ),
    ] {
        let mut b = Bundle::new("mempolicy-bad");
        b.set("/linux/memoryPolicy", policy.clone());
        b.args(&["sh", "-c", "echo ran"]);
        let out = b.run();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{policy}: {err}");
        assert!(err.contains("memoryPolicy MPOL_"), "{policy}: {err}");
        assert!(err.contains(reason), "{policy}: {err}");
        assert_eq!(text(&out.stdout), "", "{policy}");
    }
}

/// `linux.intelRdt` on a host without resctrl: a cache or bandwidth schema fails `run` with
/// runc's exit code and message. A bare `closID`, which runc 1.1.5 accepts and ignores here,
/// is refused by runz too (no setting is silently dropped).
#[test]
fn intel_rdt_is_refused_where_the_host_has_none() {
    if !require_root() {
        return;
    }
    if std::path::Path::new("/sys/fs/resctrl/info").exists() {
        eprintln!("note: this host has resctrl; the refusal without RDT is not checked");
        return;
    }
    for (rdt, want) in [
        (
            json!({"l3CacheSchema": "L3:0=f"}),
            "intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled",
        ),
        (
            json!({"memBwSchema": "MB:0=50"}),
            "intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled",
        ),
    ] {
        let mut b = Bundle::new("rdt");
        b.set("/linux/intelRdt", rdt.clone());
        b.args(&["sh", "-c", "echo ran"]);
        b.write();
        let (runz, runc) = run_both(&b);
        assert_eq!(runz.code, Some(1), "{rdt}: {}", runz.stderr);
        assert!(runz.stderr.contains(want), "{rdt}: {}", runz.stderr);
        assert_eq!(runz.stdout, "", "{rdt}");
        if let Some(runc) = runc {
            assert_eq!(runc.code, runz.code, "{rdt}: runc: {}", runc.stderr);
            assert!(runc.stderr.contains(want), "{rdt}: runc: {}", runc.stderr);
        }
    }
    let mut b = Bundle::new("rdt-closid");
    b.set("/linux/intelRdt", json!({"closID": "runz-test"}));
    b.args(&["sh", "-c", "echo ran"]);
    let out = b.run();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("intelRdt is specified in config, but Intel RDT is not supported or enabled"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "");
}
