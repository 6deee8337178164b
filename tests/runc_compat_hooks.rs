//! runz against runc 1.1 on the same bundle: hooks (issue 24, "Hooks"): a failing
//! prestart/createRuntime hook's status, words and cleanup; the state, cwd and environment
//! createContainer and startContainer hooks get; every poststop hook runs.

mod common;
mod runc_compat;

use common::require_root;
use runc_compat::{Pair, Rt, BOTH};
use serde_json::json;

fn sh_hook(script: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

#[test]
fn a_failing_prestart_or_create_runtime_hook_fails_run_as_runc_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("hookfail");
    for (kind, hook, words) in [
        (
            "prestart",
            sh_hook("echo oops >&2; exit 3"),
            "error running hook #0: error running hook: exit status 3, stdout: , stderr: oops",
        ),
        (
            "createRuntime",
            json!({"path": "/nonexistent"}),
            "error running hook #0: fork/exec /nonexistent: no such file or directory",
        ),
    ] {
        p.b.set("/hooks", json!({ kind: [hook] }));
        let (runc, runz) = p.run_both();
        assert_eq!(
            runz.code, runc.code,
            "{kind}\nrunc: {runc:?}\nrunz: {runz:?}"
        );
        assert_eq!(runz.code, Some(1));
        assert!(runc.error().contains(words), "{kind}: {runc:?}");
        assert!(runz.error().contains(words), "{kind}: {runz:?}");
        for rt in BOTH {
            let list = p.call(rt, &["list", "-q"]);
            assert_eq!(
                list.stdout, "",
                "{rt:?} {kind}: a container is left: {list:?}"
            );
        }
        let left: Vec<_> =
            p.b.cgroup_dirs()
                .into_iter()
                .filter(|d| d.exists())
                .collect();
        assert!(left.is_empty(), "{kind}: cgroups left: {left:?}");
    }
}

#[test]
fn container_hooks_get_runcs_state_cwd_and_environment() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("hookctx");
    let cc = p.b.dir.join("create-container.txt");
    // What a hook saw: cwd, the state on stdin, its environment (sorted, one line).
    let report = |out: &str| {
        format!("(pwd; cat; echo; env | sort | grep -v '^SHLVL=' | tr '\\n' ' '; echo) >> {out}")
    };
    p.b.args(&["true"])
        .set("/process/env", json!(["PATH=/usr/bin:/bin", "FOO=bar"]))
        .set(
            "/hooks",
            json!({
                "createContainer": [sh_hook(&report(cc.to_str().unwrap()))],
                "startContainer": [sh_hook(&report("/start-container.txt"))],
            }),
        );
    let sc = p.b.dir.join("rootfs/start-container.txt");
    let mut seen = Vec::new();
    for rt in BOTH {
        let _ = std::fs::remove_file(&cc);
        let _ = std::fs::remove_file(&sc);
        let out = p.run(rt);
        assert_eq!(out.code, Some(0), "{rt:?}: {out:?}");
        let read = |f: &std::path::Path| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            // runc writes its own spec version; the rest must be the same.
            let v = text.lines().nth(1).unwrap_or("").to_string();
            let mut state: serde_json::Value = serde_json::from_str(&v).unwrap_or_default();
            state["ociVersion"] = json!("X");
            state["pid"] = json!(state["pid"].is_number());
            let lines: Vec<&str> = text.lines().collect();
            (
                lines.first().map(|s| s.to_string()),
                state,
                lines.get(2).map(|s| s.to_string()),
            )
        };
        seen.push((read(&cc), read(&sc)));
    }
    assert_eq!(seen[1], seen[0], "runz vs runc");
    let ((cwd, state, env), (scwd, sstate, senv)) = &seen[1];
    let rootfs = p.b.dir.join("rootfs");
    assert_eq!(cwd.as_deref(), rootfs.to_str());
    assert_eq!(state["status"], "creating");
    assert_eq!(state["pid"], true);
    assert_eq!(
        env.as_deref(),
        Some(format!("FOO=bar PATH=/usr/bin:/bin PWD={} ", rootfs.display()).as_str())
    );
    assert_eq!(scwd.as_deref(), Some("/"));
    assert_eq!(sstate["status"], "created");
    assert_eq!(
        senv.as_deref(),
        Some("FOO=bar HOME=/root PATH=/usr/bin:/bin PWD=/ ")
    );
    assert!(state.get("annotations").is_none(), "{state}");
}

/// runc 1.1 stops the poststop list at the first failure; runz runs every hook (cleanup must
/// go on) and warns about the failing one, with runc's words.
#[test]
fn every_poststop_hook_runs_even_after_one_fails() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("poststop");
    let out_file = p.b.dir.join("poststop.txt");
    p.b.args(&["true"]).set(
        "/hooks",
        json!({"poststop": [
            sh_hook("exit 1"),
            sh_hook(&format!("cat >> {}", out_file.display())),
        ]}),
    );
    let runz = p.run(Rt::Runz);
    assert_eq!(runz.code, Some(0), "{runz:?}");
    assert_eq!(runz.warnings().len(), 1, "{runz:?}");
    assert!(
        runz.warnings()[0].starts_with("error running hook #0: error running hook: exit status 1"),
        "{runz:?}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["id"], p.b.id);
    assert!(state.get("pid").is_none(), "{state}");
}

/// startContainer hooks run under the container's seccomp filter, also when it waits for
/// no_new_privs (runc installs it before them).
#[test]
fn start_container_hooks_run_under_the_seccomp_filter() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("hookseccomp");
    p.b.args(&["true"])
        .set(
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
        )
        .set(
            "/hooks",
            json!({"startContainer": [sh_hook(
                "mkdir /tmp/hookdir 2>/dev/null && echo made >> /hookres || echo refused >> /hookres"
            )]}),
        );
    let res = p.b.dir.join("rootfs/hookres");
    for nnp in [true, false] {
        p.b.set("/process/noNewPrivileges", json!(nnp));
        let mut seen = Vec::new();
        for rt in BOTH {
            let _ = std::fs::remove_file(&res);
            let _ = std::fs::remove_dir(p.b.dir.join("rootfs/tmp/hookdir"));
            let out = p.run(rt);
            assert_eq!(out.code, Some(0), "{rt:?} nnp={nnp}: {out:?}");
            seen.push(std::fs::read_to_string(&res).unwrap_or_default());
        }
        assert_eq!(seen[1], seen[0], "nnp={nnp}: runz vs runc");
        assert_eq!(seen[1], "refused\n", "nnp={nnp}");
    }
}
