//! runz against runc 1.1 on the same bundle: capabilities (issue 24, "Capabilities"). The
//! process prints its five sets from /proc/self/status; both runtimes must show the same, warn
//! the same and fail the same.

mod common;
mod runc_compat;

use common::require_root;
use runc_compat::{Out, Pair};
use serde_json::{json, Value};

fn show_caps(p: &mut Pair) {
    p.b.args(&["grep", "^Cap", "/proc/self/status"]);
}

fn same(what: &str, runc: &Out, runz: &Out) {
    assert_eq!(
        runz.code, runc.code,
        "{what}: exit code\nrunc: {runc:?}\nrunz: {runz:?}"
    );
    assert_eq!(
        runz.stdout, runc.stdout,
        "{what}: sets\nrunc: {runc:?}\nrunz: {runz:?}"
    );
}

fn sets(set: &[&str], extra: &[(&str, Value)]) -> Value {
    let mut v = json!({"bounding": set, "effective": set, "permitted": set,
                       "inheritable": set, "ambient": set});
    for (k, x) in extra {
        v[*k] = x.clone();
    }
    v
}

#[test]
fn no_capabilities_mean_empty_sets_bounding_included() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("nocaps");
    show_caps(&mut p);
    let zero = "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
                CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n\
                CapAmb:\t0000000000000000\n";
    for caps in [Value::Null, json!({})] {
        p.b.set("/process/capabilities", caps.clone());
        let (runc, runz) = p.run_both();
        same(&format!("capabilities {caps}"), &runc, &runz);
        assert_eq!(runz.stdout, zero, "capabilities {caps}");
    }
}

#[test]
fn unknown_names_are_ignored_with_runcs_warning() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("unknowncaps");
    show_caps(&mut p);
    let mut caps = sets(&["CAP_KILL"], &[]);
    caps["bounding"] = json!(["CAP_KILL", "CAP_BOGUS", "CAP_SYS_ADMIN"]);
    caps["effective"] = json!(["CAP_KILL", "CAP_FOO"]);
    p.b.set("/process/capabilities", caps);
    let (runc, runz) = p.run_both();
    same("unknown names", &runc, &runz);
    assert_eq!(runz.code, Some(0), "{runz:?}");
    let want =
        vec!["ignoring unknown or unavailable capabilities: [CAP_BOGUS CAP_FOO]".to_string()];
    assert_eq!(runc.warnings(), want);
    assert_eq!(runz.warnings(), want);
    // CAP_KILL (bit 5) everywhere; CAP_SYS_ADMIN (bit 21) kept in the bounding set.
    assert!(
        runz.stdout.contains("CapBnd:\t0000000000200020"),
        "{runz:?}"
    );

    // The same through `exec -p`.
    p.b.args(&["sleep", "1000"]);
    let proc_file = p.b.dir.join("process.json");
    std::fs::write(
        &proc_file,
        json!({"args": ["grep", "^CapEff", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
               "capabilities": {"effective": ["CAP_KILL", "CAP_NOPE"], "permitted": ["CAP_KILL"],
                                "bounding": ["CAP_KILL"]}})
        .to_string(),
    )
    .unwrap();
    let f = proc_file.to_str().unwrap().to_string();
    let (runc, runz) = p.detached(|rt| p.exec(rt, &["-p", &f], &[]));
    same("exec -p", &runc, &runz);
    assert_eq!(runz.stdout, "CapEff:\t0000000000000020\n");
    let want = vec!["ignoring unknown or unavailable capabilities: [CAP_NOPE]".to_string()];
    assert_eq!(runc.warnings(), want);
    assert_eq!(runz.warnings(), want);
}

#[test]
fn ambient_capabilities_are_raised_and_unraisable_ones_are_quiet() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("ambient");
    show_caps(&mut p);
    p.b.set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .set(
            "/process/capabilities",
            sets(&["CAP_KILL", "CAP_NET_RAW"], &[]),
        );
    let (runc, runz) = p.run_both();
    same("ambient as uid 1000", &runc, &runz);
    // CAP_KILL is bit 5, CAP_NET_RAW bit 13: 0x2020 in all five sets.
    assert_eq!(
        runz.stdout,
        "CapInh:\t0000000000002020\nCapPrm:\t0000000000002020\n\
         CapEff:\t0000000000002020\nCapBnd:\t0000000000002020\n\
         CapAmb:\t0000000000002020\n"
    );

    // runc's own default spec lists ambient capabilities and no inheritable ones: the
    // kernel refuses them, and runc says nothing.
    let set = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    p.b.set("/process/user", json!({"uid": 0, "gid": 0})).set(
        "/process/capabilities",
        sets(&set, &[("inheritable", Value::Null)]),
    );
    let (runc, runz) = p.run_both();
    same("ambient without inheritable", &runc, &runz);
    assert!(
        runz.stdout.contains("CapAmb:\t0000000000000000"),
        "{runz:?}"
    );
    assert_eq!(runc.stderr, "");
    assert_eq!(runz.stderr, "");
}

#[test]
fn sets_the_kernel_refuses_together_fail_as_runc_fails() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("capfail");
    show_caps(&mut p);
    let kill = json!(["CAP_KILL"]);
    let both = json!(["CAP_KILL", "CAP_NET_RAW"]);
    let refused = [
        // inheritable beyond the bounding set
        sets(
            &["CAP_KILL"],
            &[("inheritable", both.clone()), ("ambient", both.clone())],
        ),
        // effective beyond permitted
        sets(
            &["CAP_KILL"],
            &[("effective", both.clone()), ("inheritable", json!([]))],
        ),
    ];
    p.b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    for caps in refused {
        p.b.set("/process/capabilities", caps.clone());
        let (runc, runz) = p.run_both();
        assert_eq!(
            runz.code, runc.code,
            "{caps}\nrunc: {runc:?}\nrunz: {runz:?}"
        );
        assert_eq!(runz.code, Some(1));
        let words = "unable to apply caps: operation not permitted";
        assert!(runc.error().contains(words), "{runc:?}");
        assert!(runz.error().contains(words), "{runz:?}");
    }
    // As root, permitted beyond the bounding set is fine: execve keeps only the bounded part.
    p.b.set("/process/user", json!({"uid": 0, "gid": 0})).set(
        "/process/capabilities",
        json!({"bounding": kill, "permitted": both, "effective": both}),
    );
    let (runc, runz) = p.run_both();
    same("root, permitted beyond bounding", &runc, &runz);
    assert!(
        runz.stdout.contains("CapPrm:\t0000000000000020"),
        "{runz:?}"
    );
}
