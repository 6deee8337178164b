//! Namespaces as runc handles them (issue 24, "Namespaces"): joining another container's user
//! namespace (by /proc path and through a bind-mounted nsfs file), a new time namespace with a
//! new user namespace, and a spec without a mount namespace. Each runs runz and, where runc 1.1
//! has the feature, runc 1.1.5 on the same bundle, and compares what the container sees.

mod common;
mod runc_side;

use common::{require_root, Bundle};
use runc_side::{run_both, s, Seen};
use serde_json::{json, Value};

fn ok(who: &str, seen: &Seen) -> String {
    assert_eq!(seen.code, Some(0), "{who} failed: {}", seen.stderr);
    seen.stdout.clone()
}

fn same(b: &Bundle) -> String {
    let (runz, runc) = run_both(b);
    let out = ok("runz", &runz);
    if let Some(runc) = runc {
        assert_eq!(out, ok("runc", &runc), "runz vs runc output");
    }
    out
}

/// The spec's namespaces with `typ` replaced by `entry` (or removed when None).
fn with_ns(b: &mut Bundle, typ: &str, entry: Option<Value>) {
    let ns = b.spec["linux"]["namespaces"].as_array().unwrap().clone();
    let mut ns: Vec<_> = ns.into_iter().filter(|n| n["type"] != typ).collect();
    ns.extend(entry);
    b.set("/linux/namespaces", json!(ns));
}

fn user_ns_with_maps(b: &mut Bundle) {
    with_ns(b, "user", Some(json!({"type": "user"})));
    same_maps(b);
}

/// The maps of [`user_ns_with_maps`] without a new namespace: runc 1.1 wants them in the spec
/// even when the user namespace is joined ("no uid mappings found" otherwise).
fn same_maps(b: &mut Bundle) {
    for key in ["uidMappings", "gidMappings"] {
        b.set(
            &format!("/linux/{key}"),
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
    }
}

/// A second container joins the first one's user namespace, by its /proc path and by an nsfs
/// file bind-mounted elsewhere (what tools that pin namespaces do): it runs as the first
/// container's root, seeing the same maps.
#[test]
fn joining_another_containers_user_namespace_works() {
    if !require_root() {
        return;
    }
    let mut a = Bundle::new("userns-owner");
    user_ns_with_maps(&mut a);
    a.args(&["sleep", "1000"]);
    let out = a.create();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = a.state()["pid"].as_i64().unwrap();
    let ns_path = format!("/proc/{pid}/ns/user");

    let mut b = Bundle::new("userns-join-path");
    with_ns(
        &mut b,
        "user",
        Some(json!({"type": "user", "path": ns_path})),
    );
    same_maps(&mut b);
    b.args(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    let want = "         0     100000      65536\n0\n";
    assert_eq!(same(&b), want);

    let mut c = Bundle::new("userns-join-file");
    let pinned = c.dir.join("userns");
    std::fs::write(&pinned, "").unwrap();
    // Unmounted by the Bundle's drop (everything under its dir), even if the test fails.
    nix::mount::mount(
        Some(ns_path.as_str()),
        &pinned,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    with_ns(
        &mut c,
        "user",
        Some(json!({"type": "user", "path": s(&pinned)})),
    );
    same_maps(&mut c);
    c.args(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    assert_eq!(same(&c), want);
}

/// A new time namespace together with a new user namespace: the offsets are written and seen
/// inside (it failed with EACCES on timens_offsets). runc 1.1 has no time namespaces: runz
/// alone.
#[test]
fn a_time_namespace_with_a_new_user_namespace_gets_its_offsets() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("timens-userns");
    user_ns_with_maps(&mut b);
    with_ns(&mut b, "time", Some(json!({"type": "time"})));
    b.set(
        "/linux/timeOffsets",
        json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 7200}}),
    );
    b.args(&["cat", "/proc/self/timens_offsets"]);
    let out = ok("runz", &b.run().into());
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["monotonic", "86400", "0"]), "{out}");
    assert!(rows.contains(&vec!["boottime", "7200", "0"]), "{out}");
}

/// Without a mount namespace there is no pivot_root: the process is chrooted into the rootfs,
/// which has no /proc (runz reopens the exec fifo through a handle on its /proc/self/fd taken
/// before the chroot). runc 1.1.5 fails here ("open /proc/self/fd: no such file or
/// directory"), so runz is checked alone.
#[test]
fn a_spec_without_a_mount_namespace_runs_chrooted() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("no-mntns");
    with_ns(&mut b, "mount", None);
    b.set("/mounts", json!([]));
    b.set("/linux/maskedPaths", json!([]));
    b.set("/linux/readonlyPaths", json!([]));
    b.args(&[
        "sh",
        "-c",
        "echo hi; ls /proc | wc -l; test -x /bin/busybox && echo root",
    ]);
    assert_eq!(ok("runz", &b.run().into()), "hi\n0\nroot\n");
    // create/start too: init waits on the exec fifo from inside the chroot.
    b.args(&["true"]);
    let out = b.create();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = b.start();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Without a mount namespace, mounts, masked or read-only paths would change the host's mount
/// table (runc 1.1.5 makes them there and leaves them): runz refuses them, naming what, and
/// mounts nothing.
#[test]
fn mounts_without_a_mount_namespace_are_refused() {
    if !require_root() {
        return;
    }
    let cases = [
        (
            "mounts",
            json!([{"destination": "/proc", "type": "proc", "source": "proc"}]),
            "the spec has 1 mounts but the container has no mount namespace",
        ),
        (
            "maskedPaths",
            json!(["/proc/timer_list"]),
            "the spec sets linux.maskedPaths but the container has no mount namespace",
        ),
        (
            "readonlyPaths",
            json!(["/proc/sys"]),
            "the spec sets linux.readonlyPaths but the container has no mount namespace",
        ),
    ];
    for (what, value, want) in cases {
        let mut b = Bundle::new("no-mntns-refused");
        with_ns(&mut b, "mount", None);
        b.set("/mounts", json!([]));
        b.set("/linux/maskedPaths", json!([]));
        b.set("/linux/readonlyPaths", json!([]));
        let pointer = if what == "mounts" {
            "/mounts".to_string()
        } else {
            format!("/linux/{what}")
        };
        b.set(&pointer, value);
        b.args(&["sh", "-c", "echo ran"]);
        let out = b.run();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{what}");
        assert!(
            common::mounts_under(&b.dir).is_empty(),
            "{what}: mounted on the host"
        );
    }
}
