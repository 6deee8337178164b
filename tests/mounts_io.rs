//! The filesystem view (mounts and their flags, masked and read-only paths, /dev, read-only
//! root, no-pivot), hooks, terminals and cgroup resources, as the process inside sees them.

mod common;

use common::{require_root, Bundle};
use serde_json::json;

fn run_sh(b: &mut Bundle, script: &str) -> (i32, String, String) {
    b.args(&["sh", "-c", script]);
    let out = b.run();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Mount options of the mount at `dest` in a mountinfo dump.
fn mount_opts<'a>(mountinfo: &'a str, dest: &str) -> &'a str {
    mountinfo
        .lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some(dest))
        .and_then(|l| l.split_whitespace().nth(5))
        .unwrap_or_else(|| panic!("{dest} not mounted:\n{mountinfo}"))
}

#[test]
fn mounts_are_made_in_order_with_their_flags() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("mounts");
    let host_dir = b.dir.join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("hello"), "from the host\n").unwrap();
    let mut mounts = b.spec["mounts"].as_array().unwrap().clone();
    mounts.push(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=750"]}),
    );
    mounts.push(json!({"destination": "/mnt/host", "type": "bind",
                       "source": host_dir, "options": ["rbind", "ro"]}));
    b.set("/mounts", json!(mounts));
    let (code, out, err) = run_sh(
        &mut b,
        "cat /proc/self/mountinfo; echo ---; cat /mnt/host/hello; \
         touch /mnt/host/x 2>/dev/null && echo writable || echo readonly; \
         stat -c %a /data; df -k /data | tail -1",
    );
    assert_eq!(code, 0, "{err}");
    let (mi, rest) = out.split_once("---\n").unwrap();
    let data = mount_opts(mi, "/data");
    for f in ["nosuid", "nodev", "noexec"] {
        assert!(data.contains(f), "/data lacks {f}: {data}");
    }
    assert!(mount_opts(mi, "/mnt/host").starts_with("ro"));
    assert!(mount_opts(mi, "/proc").starts_with("rw"));
    assert!(mi
        .lines()
        .any(|l| l.contains(" /proc ") && l.contains(" - proc ")));
    let mut lines = rest.lines();
    assert_eq!(lines.next(), Some("from the host"));
    assert_eq!(lines.next(), Some("readonly"));
    assert_eq!(lines.next(), Some("750"));
    let size_kb: u64 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size_kb, 1024);
    // Nothing the container mounted is visible on the host.
    assert!(common::mounts_under(&b.dir).is_empty());
}

#[test]
fn masked_and_readonly_paths_and_readonly_root() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("masked");
    b.set("/root/readonly", json!(true));
    // /proc/keys exists on every kernel (kcore and scsi do not on this VM's).
    b.set(
        "/linux/maskedPaths",
        json!(["/proc/keys", "/proc/kcore", "/etc/secret-dir"]),
    );
    let mut mounts = b.spec["mounts"].as_array().unwrap().clone();
    mounts.push(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}),
    );
    b.set("/mounts", json!(mounts));
    b.set("/linux/readonlyPaths", json!(["/proc/sys"]));
    std::fs::create_dir_all(b.dir.join("rootfs/etc/secret-dir")).unwrap();
    std::fs::write(b.dir.join("rootfs/etc/secret-dir/key"), "s3cret").unwrap();
    let (code, out, err) = run_sh(
        &mut b,
        "wc -c < /proc/keys; ls /etc/secret-dir | wc -l; \
         (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo rw-sys || echo ro-sys; \
         touch /newfile 2>/dev/null && echo rw-root || echo ro-root; \
         touch /tmp/ok 2>/dev/null && echo tmp-rw || echo tmp-ro",
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "ro-sys", "ro-root", "tmp-rw"], "{out}");
}

#[test]
fn dev_has_the_default_devices_and_the_spec_devices() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("devices");
    b.set(
        "/linux/devices",
        json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 438, "uid": 0, "gid": 0}]),
    );
    let mut res = b.spec["linux"]["resources"].clone();
    res["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
    b.set("/linux/resources", res);
    let (code, out, err) = run_sh(
        &mut b,
        "for d in null zero full random urandom tty fuse; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in ptmx fd stdin; do readlink /dev/$l; done; echo hi > /dev/null && echo null-ok",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("/dev/null character special file 1:3 666"),
        "{out}"
    );
    assert!(
        out.contains("/dev/zero character special file 1:5"),
        "{out}"
    );
    assert!(
        out.contains("/dev/fuse character special file a:e5 666"),
        "{out}"
    );
    assert!(
        out.contains("pts/ptmx") && out.contains("/proc/self/fd"),
        "{out}"
    );
    assert!(out.contains("null-ok"));
}

#[test]
fn no_pivot_still_gives_the_rootfs() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("no-pivot");
    b.args(&["sh", "-c", "cat /etc/hostname; ls /"]);
    b.write();
    let out = b.runz(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        &b.id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bin") && !text.contains("runz-tests"),
        "{text}"
    );
}

#[test]
fn all_six_hook_kinds_run_with_the_state_on_stdin() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("hooks");
    let log = b.dir.join("hooks.log");
    let hook = |kind: &str| {
        json!([{"path": "/bin/sh",
                "args": ["sh", "-c", format!("read s; echo \"{kind} $s\" >> {}", log.display())]}])
    };
    // createContainer and startContainer run inside the container: the log must be reachable
    // there too, so they write into the rootfs' /tmp, which is the same file on the host.
    let inner = b.dir.join("rootfs/tmp/hooks.log");
    let inner_hook = |kind: &str, path: &str| json!([{"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{kind} $s\" >> {path}")]}]);
    b.set(
        "/hooks",
        json!({
            "prestart": hook("prestart"),
            "createRuntime": hook("createRuntime"),
            "createContainer": inner_hook("createContainer", inner.to_str().unwrap()),
            "startContainer": inner_hook("startContainer", "/tmp/hooks.log"),
            "poststart": hook("poststart"),
            "poststop": hook("poststop"),
        }),
    );
    b.args(&["true"]);
    let out = b.run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outer = std::fs::read_to_string(&log).unwrap();
    let inner = std::fs::read_to_string(&inner).unwrap();
    let kinds: Vec<&str> = outer
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{outer}"
    );
    let kinds: Vec<&str> = inner
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(kinds, ["createContainer", "startContainer"], "{inner}");
    for line in outer.lines().chain(inner.lines()) {
        let json = line.split_once(' ').unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["id"], json!(b.id), "{line}");
    }
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("hook-fail");
    b.set(
        "/hooks",
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}]}),
    );
    b.write();
    let out = b.create();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("createRuntime"), "{err}");
    assert!(!b.root.join(&b.id).exists());
    assert!(b.cgroup_dirs().iter().all(|d| !d.exists()));

    let mut b = Bundle::new("hook-timeout");
    b.set(
        "/hooks",
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}),
    );
    b.write();
    let out = b.create();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(!b.root.join(&b.id).exists());
}

#[test]
fn a_terminal_is_relayed_in_the_foreground() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("tty");
    b.set("/process/terminal", json!(true));
    b.args(&["sh", "-c", "tty; test -t 0 && echo stdin-is-tty"]);
    let out = b.run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("stdin-is-tty"), "{text}");
}

#[test]
fn the_console_socket_receives_the_pty_master() {
    if !require_root() {
        return;
    }
    use std::os::unix::net::UnixListener;
    let mut b = Bundle::new("console-socket");
    b.set("/process/terminal", json!(true));
    b.args(&["sh", "-c", "echo over-the-pty; sleep 1000"]);
    b.write();
    let sock = b.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let out = b.runz(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (conn, _) = listener.accept().unwrap();
    let master =
        zones_linux::runtime::console::recv_master(&std::os::fd::OwnedFd::from(conn)).unwrap();
    assert!(b.start().status.success());
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 256];
    let n = std::io::Read::read(&mut f, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("over-the-pty"));
    // A terminal without a socket is refused for create.
    let b2 = Bundle::new("console-missing");
    let mut b2 = b2;
    b2.set("/process/terminal", json!(true));
    b2.write();
    let out = b2.create();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("console-socket"));
}

#[test]
fn cgroup_resources_are_applied_beneath_the_callers_cgroup() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("cgroup");
    let mut res = b.spec["linux"]["resources"].clone();
    res["memory"] = json!({"limit": 67108864});
    res["pids"] = json!({"limit": 50});
    res["cpu"] = json!({"shares": 512});
    b.set("/linux/resources", res);
    b.args(&["sleep", "1000"]);
    b.write();
    assert!(b.create().status.success());
    let pid = b.state()["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path_of = |text: &str, ctrl: &str| {
        text.lines()
            .find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|x| x == ctrl))
            })
            .map(|l| l.splitn(3, ':').nth(2).unwrap().to_string())
            .unwrap()
    };
    let mem = path_of(&cg, "memory");
    let own_mem = path_of(&own, "memory");
    assert!(
        mem.starts_with(&own_mem) && mem.ends_with(&b.id),
        "{mem} not beneath {own_mem}"
    );
    let read = |ctrl: &str, file: &str| {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/{ctrl}{}/{file}",
            path_of(&cg, ctrl)
        ))
        .unwrap()
        .trim()
        .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.shares"), "512");
    assert!(read("devices", "devices.list").contains("c 1:3 rwm"));
    assert!(!read("devices", "devices.list").contains("a *:* rwm"));
}
