//! Tests of the integration-test harness itself (tests/common): the busybox rootfs, unique
//! names, spec edits, and that dropping a Bundle leaves nothing behind. None of them needs a
//! working runz; they all need root and skip without it.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{busybox_rootfs, cgroup_prefix, mounts_under, require_root, set_pointer, Bundle};
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde_json::{json, Value};

#[test]
fn rootfs_has_static_busybox_applets_and_users() {
    if !require_root() {
        return;
    }
    let r = busybox_rootfs();
    let busybox = r.join("bin/busybox");
    let meta = fs::symlink_metadata(&busybox).unwrap();
    assert!(
        meta.is_file(),
        "{} is not a regular file",
        busybox.display()
    );
    assert_eq!(meta.mode() & 0o111, 0o111, "busybox is not executable");
    for applet in ["bin/sh", "bin/ls", "usr/bin/awk", "sbin/ifconfig"] {
        assert_eq!(
            fs::read_link(r.join(applet)).unwrap(),
            Path::new("/bin/busybox"),
            "{applet}"
        );
    }
    let passwd = fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("root:x:0:0:")),
        "{passwd}"
    );
    assert!(
        passwd.lines().any(|l| l.starts_with("zone:x:1000:1000:")),
        "{passwd}"
    );
    let group = fs::read_to_string(r.join("etc/group")).unwrap();
    assert!(
        group.lines().any(|l| l.starts_with("zone:x:1000:")),
        "{group}"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/hostname")).unwrap(),
        "runz\n"
    );
    let tmp = fs::metadata(r.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    for d in ["proc", "sys", "dev", "run", "var", "root", "usr/sbin"] {
        assert!(r.join(d).is_dir(), "{d} missing");
    }
    // The copied binary runs and is the multi-call busybox.
    let out = Command::new(&busybox)
        .args(["echo", "hello"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\n");
}

#[test]
fn bundle_names_are_unique_and_tagged() {
    if !require_root() {
        return;
    }
    let a = Bundle::new("same");
    let b = Bundle::new("same");
    let pid = std::process::id();
    for x in [&a, &b] {
        assert!(
            x.id.starts_with(&format!("runz-test-{pid}-same-")),
            "{}",
            x.id
        );
        assert_eq!(x.dir, Path::new(common::TEST_BASE).join(&x.id));
        assert!(x.dir.join("rootfs/bin/busybox").is_file());
        assert!(x
            .root
            .to_str()
            .unwrap()
            .starts_with(&format!("/run/runz-test-{pid}-")));
        assert_eq!(
            x.spec["linux"]["cgroupsPath"],
            json!(format!("{}/{}", cgroup_prefix(), x.id))
        );
    }
    assert_ne!(a.id, b.id);
    assert_ne!(a.dir, b.dir);
    assert_ne!(a.root, b.root);
}

#[test]
fn bundle_rootfs_is_a_private_copy() {
    if !require_root() {
        return;
    }
    let cache = busybox_rootfs();
    let b = Bundle::new("copy");
    let rootfs = b.dir.join("rootfs");
    let ours = fs::metadata(rootfs.join("bin/busybox")).unwrap();
    let shared = fs::metadata(cache.join("bin/busybox")).unwrap();
    assert_ne!(
        ours.ino(),
        shared.ino(),
        "busybox is hard-linked to the cache"
    );
    assert_eq!(ours.nlink(), 1);
    assert_eq!(ours.len(), shared.len());
    assert_eq!(ours.mode(), shared.mode());
    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let tmp = fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(fs::metadata(rootfs.join("home/zone")).unwrap().uid(), 1000);
    // Writing into the bundle does not change the cache.
    fs::write(rootfs.join("etc/hostname"), "changed\n").unwrap();
    assert_eq!(
        fs::read_to_string(cache.join("etc/hostname")).unwrap(),
        "runz\n"
    );
}

#[test]
fn spec_defaults_and_edits_reach_config_json() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("spec");
    let written = |b: &Bundle| -> Value {
        serde_json::from_slice(&fs::read(b.dir.join("config.json")).unwrap()).unwrap()
    };
    let first = written(&b);
    assert_eq!(first["process"]["terminal"], json!(false));
    assert_eq!(first["process"]["args"], json!(["true"]));
    assert_eq!(first["root"]["path"], json!("rootfs"));
    assert!(first["ociVersion"].is_string());

    b.args(&["sh", "-c", "exit 3"])
        .set("/hostname", json!("h1"))
        .set("/linux/sysctl/net.ipv4.ip_forward", json!("1"))
        .set("/annotations/org.example~1key", json!("v"))
        .set("/process/env/-", json!("EXTRA=1"));
    b.write();
    let spec = written(&b);
    assert_eq!(spec["process"]["args"], json!(["sh", "-c", "exit 3"]));
    assert_eq!(spec["hostname"], json!("h1"));
    assert_eq!(spec["linux"]["sysctl"]["net.ipv4.ip_forward"], json!("1"));
    assert_eq!(spec["annotations"]["org.example/key"], json!("v"));
    assert_eq!(
        spec["process"]["env"].as_array().unwrap().last(),
        Some(&json!("EXTRA=1"))
    );
    assert_eq!(spec, b.spec);
}

#[test]
fn set_pointer_replaces_array_items_and_creates_objects() {
    let mut v = json!({"a": [1, 2]});
    set_pointer(&mut v, "/a/1", json!(5));
    set_pointer(&mut v, "/a/2", json!(6));
    set_pointer(&mut v, "/b/c~0d/e", json!(true));
    assert_eq!(v, json!({"a": [1, 5, 6], "b": {"c~d": {"e": true}}}));
}

#[test]
fn drop_unmounts_and_removes_bundle_and_state_dirs() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("mounts");
    let (dir, root) = (b.dir.clone(), b.root.clone());
    let outer = dir.join("rootfs/tmp");
    let inner = outer.join("inner");
    tmpfs(&outer);
    fs::create_dir(&inner).unwrap();
    tmpfs(&inner);
    tmpfs(&inner); // stacked on the same mount point
    fs::write(inner.join("file"), "x").unwrap();
    fs::create_dir_all(&root).unwrap(); // runz creates it on first use
    tmpfs(&root);
    assert_eq!(mounts_under(&dir).len(), 3);
    assert_eq!(mounts_under(&root).len(), 1);

    drop(b);
    assert_eq!(mounts_under(&dir), Vec::<std::path::PathBuf>::new());
    assert_eq!(mounts_under(&root), Vec::<std::path::PathBuf>::new());
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!root.exists(), "{} left behind", root.display());
}

#[test]
fn drop_kills_processes_in_the_bundle_cgroup_and_removes_it() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("cgroup");
    let dirs = b.cgroup_dirs();
    assert!(
        !dirs.is_empty(),
        "no cgroup hierarchy found for this process"
    );
    let child = Sleeper::spawn();
    let mut joined = Vec::new();
    for d in &dirs {
        fs::create_dir_all(d.join("sub")).unwrap();
        // cpuset (empty cpus) and similar refuse tasks; any hierarchy that takes it will do.
        if fs::write(d.join("sub/cgroup.procs"), child.0.to_string()).is_ok() {
            joined.push(d.clone());
        }
    }
    assert!(
        !joined.is_empty(),
        "could not put the child in any of {dirs:?}"
    );
    for d in &joined {
        let procs = fs::read_to_string(d.join("sub/cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == child.0.to_string()), "{procs}");
    }

    drop(b);
    assert_eq!(
        child.reap(),
        WaitStatus::Signaled(child.0, Signal::SIGKILL, false)
    );
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

fn tmpfs(target: &Path) {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=1m"),
    )
    .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", target.display()));
}

/// A forked child that only sleeps; killed and reaped on drop unless reaped already.
struct Sleeper(Pid, std::cell::Cell<bool>);

impl Sleeper {
    fn spawn() -> Sleeper {
        // SAFETY: the child only calls pause() (async-signal-safe) until it is killed; it
        // never returns into the test harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => Sleeper(child, std::cell::Cell::new(false)),
        }
    }

    fn reap(&self) -> WaitStatus {
        let status = waitpid(self.0, None).expect("waitpid");
        self.1.set(true);
        status
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        if !self.1.get() {
            let _ = kill(self.0, Signal::SIGKILL);
            let _ = waitpid(self.0, None);
        }
    }
}
