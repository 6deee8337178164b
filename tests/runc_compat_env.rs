//! runz against runc 1.1 on the same bundle: the process environment (issue 24, "Process
//! environment"). Each test runs the bundle with runc, then with runz, and compares what the
//! process saw (its environ, HOME, cwd, ids) and what the runtimes printed and returned.

mod common;
mod runc_compat;

use common::require_root;
use runc_compat::{Out, Pair};
use serde_json::json;

/// Prints the environ of the container's init, entries separated by '|'.
const SHOW_ENV: &str = "tr '\\0' '|' </proc/1/environ; echo";

fn same(what: &str, runc: &Out, runz: &Out) {
    assert_eq!(
        runz.code, runc.code,
        "{what}: exit code\nrunc: {runc:?}\nrunz: {runz:?}"
    );
    assert_eq!(
        runz.stdout, runc.stdout,
        "{what}: stdout\nrunc: {runc:?}\nrunz: {runz:?}"
    );
}

#[test]
fn env_order_repeated_names_newlines_and_home_are_runcs() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("env");
    p.b.args(&["sh", "-c", SHOW_ENV]).set(
        "/process/env",
        json!([
            "PATH=/usr/bin:/bin",
            "ONE=two",
            "NL=a\nb",
            "ONE=three",
            "HOME="
        ]),
    );
    let (runc, runz) = p.run_both();
    same("env", &runc, &runz);
    // The observed shape: first place, last value; the newline kept; HOME from passwd.
    assert_eq!(
        runz.stdout,
        "PATH=/usr/bin:/bin|ONE=three|NL=a\nb|HOME=/root|\n"
    );

    // No HOME at all: appended, from the passwd entry of the uid; "/" for a uid without one.
    for (uid, home) in [(1000, "/home/zone"), (4242, "/")] {
        p.b.set("/process/env", json!(["PATH=/bin"]))
            .set("/process/user", json!({"uid": uid, "gid": 1000}));
        let (runc, runz) = p.run_both();
        same(&format!("uid {uid}"), &runc, &runz);
        assert_eq!(runz.stdout, format!("PATH=/bin|HOME={home}|\n"));
    }
}

#[test]
fn malformed_env_entries_fail_with_runcs_words() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("badenv");
    for (entry, words) in [
        ("NOEQ", "invalid environment variable: \"NOEQ\""),
        ("=x", "environment variable name can't be empty: \"=x\""),
    ] {
        p.b.set("/process/env", json!(["PATH=/bin", entry]));
        let (runc, runz) = p.run_both();
        assert_eq!(runz.code, runc.code, "{entry}: {runc:?} {runz:?}");
        assert_eq!(runz.code, Some(1));
        assert!(runc.error().contains(words), "{runc:?}");
        assert!(runz.error().contains(words), "{runz:?}");
    }
}

#[test]
fn cwd_only_root_may_enter_works_for_another_user() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("cwd");
    std::fs::set_permissions(
        p.b.dir.join("rootfs/root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    p.b.args(&["sh", "-c", "pwd; echo $HOME; id -u"])
        .set("/process/cwd", json!("/root"))
        .set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let (runc, runz) = p.run_both();
    same("cwd /root as 1000", &runc, &runz);
    assert_eq!(runz.stdout, "/root\n/home/zone\n1000\n");
}

#[test]
fn executable_lookup_and_execve_errors_read_as_runcs() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("execerr");
    let root = p.b.dir.join("rootfs");
    std::fs::write(root.join("run.sh"), "#!/bin/nonexistent\necho hi\n").unwrap();
    std::fs::write(root.join("plain.sh"), "echo hi\n").unwrap();
    for f in ["run.sh", "plain.sh"] {
        std::fs::set_permissions(
            root.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    // execve fails after start: the process prints runc's bare text and exits 1.
    for (args, text) in [
        (
            &["/run.sh"][..],
            "exec /run.sh: no such file or directory\n",
        ),
        (&["/plain.sh"][..], "exec /plain.sh: exec format error\n"),
    ] {
        p.b.args(args);
        let (runc, runz) = p.run_both();
        assert_eq!(runz.code, runc.code, "{args:?}: {runc:?} {runz:?}");
        assert_eq!(runz.code, Some(1));
        assert_eq!(runc.stderr, text);
        assert_eq!(runz.stderr, text);
    }
    // Lookup fails during create: runc's words in the error.
    p.b.set("/process/env", json!([]));
    for (args, text) in [
        (
            &["sh"][..],
            "exec: \"sh\": executable file not found in $PATH",
        ),
        (
            &["/nope"][..],
            "exec: \"/nope\": stat /nope: no such file or directory",
        ),
        (
            &["/etc/passwd"][..],
            "exec: \"/etc/passwd\": permission denied",
        ),
    ] {
        p.b.args(args);
        let (runc, runz) = p.run_both();
        assert_eq!(runz.code, runc.code, "{args:?}: {runc:?} {runz:?}");
        assert!(runc.error().ends_with(text), "{runc:?}");
        assert!(runz.error().ends_with(text), "{runz:?}");
    }
}

#[test]
fn exec_builds_its_process_as_runc_does() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("exec");
    std::fs::set_permissions(
        p.b.dir.join("rootfs/root"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    p.b.args(&["sleep", "1000"])
        .set("/process/env", json!(["PATH=/usr/bin:/bin", "ONE=two"]));
    let show = "id; echo HOME=$HOME; pwd; tr '\\0' '|' </proc/self/environ; echo";
    let no_user = p.b.dir.join("no-user.json");
    std::fs::write(
        &no_user,
        json!({"args": ["sh", "-c", show], "cwd": "/", "env": ["PATH=/bin"]}).to_string(),
    )
    .unwrap();
    let no_cwd = p.b.dir.join("no-cwd.json");
    std::fs::write(&no_cwd, json!({"args": ["true"]}).to_string()).unwrap();
    let no_user = no_user.to_str().unwrap().to_string();
    let no_cwd = no_cwd.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], vec!["sh", "-c", show]),
        (vec!["-u", "1000"], vec!["sh", "-c", show]),
        (
            vec!["-u", "65534:1000", "--cwd", "/root"],
            vec!["sh", "-c", show],
        ),
        (
            vec!["-e", "ONE=three", "-e", "TWO=2"],
            vec!["sh", "-c", show],
        ),
        (vec!["-p", &no_user], vec![]),
        (
            vec!["--cap", "CAP_NET_ADMIN"],
            vec!["grep", "Cap", "/proc/self/status"],
        ),
    ];
    let (runc, runz) = p.detached(|rt| {
        cases
            .iter()
            .map(|(flags, args)| p.exec(rt, flags, args))
            .collect::<Vec<_>>()
    });
    for (i, (c, z)) in runc.iter().zip(&runz).enumerate() {
        same(&format!("exec {:?}", cases[i]), c, z);
        assert_eq!(z.code, Some(0), "{:?}: {z:?}", cases[i]);
    }
    assert!(runz[0].stdout.contains("HOME=/root\n/\n"), "{:?}", runz[0]);
    assert!(
        runz[1].stdout.contains("HOME=/home/zone\n"),
        "{:?}",
        runz[1]
    );
    assert!(
        runz[2].stdout.contains("HOME=/nonexistent\n/root\n"),
        "{:?}",
        runz[2]
    );
    assert!(
        runz[3].stdout.contains("|ONE=three|TWO=2|HOME=/root|"),
        "{:?}",
        runz[3]
    );
    assert!(
        runz[4].stdout.starts_with("uid=0(root) gid=0(root)"),
        "{:?}",
        runz[4]
    );

    // Failures: exit status 255 for runz exec's own errors, the process's status otherwise.
    let root = p.b.dir.join("rootfs");
    std::fs::write(root.join("run.sh"), "#!/bin/nonexistent\n").unwrap();
    std::fs::set_permissions(
        root.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let missing = p.b.dir.join("no-such-dir/pid");
    let missing = missing.to_str().unwrap().to_string();
    let (runc, runz) = p.detached(|rt| {
        let out = vec![
            p.exec(rt, &["-p", &no_cwd], &[]),
            p.exec(rt, &["--cap", "CAP_BOGUS"], &["true"]),
            p.exec(rt, &[], &["/run.sh"]),
            p.exec(rt, &["--pid-file", &missing], &["sleep", "1000"]),
        ];
        // The process whose pid could not be written is gone again: only init is left.
        // A glob in the shell itself: no pipeline whose second process may not exist yet.
        let procs = p.exec(rt, &[], &["sh", "-c", "set -- /proc/[0-9]*; echo $#"]);
        (out, procs.stdout)
    });
    for (i, (c, z)) in runc.0.iter().zip(&runz.0).enumerate() {
        assert_eq!(z.code, c.code, "case {i}\nrunc: {c:?}\nrunz: {z:?}");
    }
    let (c, z) = (&runc.0, &runz.0);
    assert_eq!(z[0].code, Some(255));
    assert_eq!(z[0].error(), "Cwd property must not be empty");
    assert_eq!(c[0].error(), z[0].error());
    let unknown = "ignoring unknown or unavailable capabilities: [CAP_BOGUS]";
    assert_eq!(c[1].warnings(), vec![unknown.to_string()]);
    assert_eq!(z[1].warnings(), vec![unknown.to_string()]);
    assert_eq!(z[2].code, Some(1));
    assert_eq!(z[2].stderr, "exec /run.sh: no such file or directory\n");
    assert_eq!(c[2].stderr, z[2].stderr);
    let pid_dir = missing.trim_end_matches("/pid");
    let text = format!("open {pid_dir}/.pid: no such file or directory");
    assert_eq!(z[3].code, Some(255));
    assert_eq!(z[3].error(), text);
    assert_eq!(c[3].error(), text);
    // sh and init: 2 entries, as with runc.
    assert_eq!(runz.1, runc.1);
    assert_eq!(runz.1.trim(), "2");
}

/// `exec --cgroup [CONTROLLER:]PATH` runs the process in an existing sub-cgroup of the
/// container's (all hierarchies, or the controller's); a missing one fails exec (255).
#[test]
fn exec_cgroup_runs_the_process_in_a_sub_cgroup_as_runc_does() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("execcg");
    p.b.args(&["sleep", "1000"]);
    let show = "grep -E ':(memory|pids):' /proc/self/cgroup | sed 's|.*/||' | sort | tr '\\n' ' '";
    let (runc, runz) = p.detached(|rt| {
        let missing = p.exec(rt, &["--cgroup", "nosub"], &["true"]);
        for d in p.b.cgroup_dirs() {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            // A v1 cpuset cgroup takes no process until it has CPUs and memory nodes.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(d.join(f)) {
                    std::fs::write(d.join("sub").join(f), v.trim()).unwrap();
                }
            }
        }
        let all = p.exec(rt, &["--cgroup", "sub"], &["sh", "-c", show]);
        let one = p.exec(rt, &["--cgroup", "memory:sub"], &["sh", "-c", show]);
        // The sub-cgroups go before the container is deleted (they hold no process now).
        for d in p.b.cgroup_dirs() {
            let _ = std::fs::remove_dir(d.join("sub"));
        }
        (missing, all, one)
    });
    assert_eq!(
        runz.0.code, runc.0.code,
        "missing\nrunc: {:?}\nrunz: {:?}",
        runc.0, runz.0
    );
    assert_eq!(runz.0.code, Some(255));
    assert_eq!(runz.1.code, Some(0), "{:?}", runz.1);
    same("--cgroup sub", &runc.1, &runz.1);
    same("--cgroup memory:sub", &runc.2, &runz.2);
    assert_eq!(runz.1.stdout, "sub sub ");
    let id = &p.b.id;
    assert_eq!(runz.2.stdout, format!("{id} sub "));
}
