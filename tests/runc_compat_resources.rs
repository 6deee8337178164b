//! Process resources as the runtime spec says (issue 24, "Resources"): `linux.memoryPolicy`
//! (runtime-spec 1.3; runc 1.1 predates it, so runz is checked alone, against the kernel's
//! view in /proc/self/numa_maps).

mod common;

use common::{require_root, Bundle};
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
