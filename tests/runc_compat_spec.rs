//! runz against runc 1.1: the default spec and small contracts (issue 24, "Default spec and
//! small contracts").

mod common;
mod runc_compat;

use std::path::Path;
use std::process::{Command, Stdio};

use runc_compat::RUNC;
use serde_json::Value;

/// `BIN [GLOBAL...] spec [ARGS...]` in a fresh directory; the config.json it wrote, without
/// the fields that name the runtime (hostname, ociVersion, annotations), capability lists
/// sorted.
fn spec_of(bin: &Path, dir: &Path, args: &[&str]) -> Value {
    std::fs::create_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(dir.join("config.json"));
    let out = Command::new(bin)
        .arg("spec")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} spec {args:?}: {out:?}",
        bin.display()
    );
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    for k in ["hostname", "ociVersion", "annotations"] {
        obj.remove(k);
    }
    if let Some(caps) = v["process"]["capabilities"].as_object_mut() {
        for list in caps.values_mut() {
            if let Some(a) = list.as_array_mut() {
                a.sort_by_key(|x| x.to_string());
            }
        }
    }
    v
}

#[test]
fn runz_spec_writes_runcs_default_spec() {
    assert!(
        Path::new(RUNC).exists(),
        "{RUNC} is missing (apt-get install runc)"
    );
    let base = std::env::temp_dir().join(format!("runz-test-{}-spec", std::process::id()));
    for args in [&[][..], &["--rootless"][..]] {
        let runc = spec_of(Path::new(RUNC), &base.join("runc"), args);
        let runz = spec_of(common::runz_bin(), &base.join("runz"), args);
        assert_eq!(runz, runc, "spec {args:?}");
        // What the issue names: no inheritable set, no cgroup namespace.
        assert!(runz["process"]["capabilities"].get("inheritable").is_none());
        let ns = runz["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "cgroup"), "{ns:?}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

fn status_of(p: &runc_compat::Pair, rt: runc_compat::Rt) -> String {
    let st = p.call(rt, &["state", &p.b.id]);
    serde_json::from_str::<Value>(&st.stdout)
        .map(|v| v["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn pid_of(p: &runc_compat::Pair, rt: runc_compat::Rt) -> i32 {
    let st = p.call(rt, &["state", &p.b.id]);
    serde_json::from_str::<Value>(&st.stdout).unwrap()["pid"]
        .as_i64()
        .unwrap() as i32
}

/// A created container's init ends on SIGTERM, as runc's does; runz also hands out a pidfd
/// through --pidfd-socket (runc 1.2's flag) that can send it.
#[test]
fn sigterm_stops_a_created_container_also_through_the_pidfd_socket() {
    use runc_compat::{Pair, Rt, BOTH};
    if !common::require_root() {
        return;
    }
    let mut p = Pair::new("sigterm");
    p.b.args(&["sleep", "1000"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    for rt in BOTH {
        let out = p.call(rt, &["create", "--bundle", &dir, &id]);
        assert_eq!(out.code, Some(0), "{rt:?}: {out:?}");
        let pid = pid_of(&p, rt);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM).unwrap();
        assert!(
            common::wait_until(|| status_of(&p, rt) == "stopped"),
            "{rt:?}: still {}",
            status_of(&p, rt)
        );
        p.call(rt, &["delete", "--force", &id]);
    }

    // The same through the pidfd runz sends to --pidfd-socket.
    let sock_path = p.b.dir.join("pidfd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let sock = sock_path.to_str().unwrap().to_string();
    let receiver = std::thread::spawn(move || {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        // SAFETY: the fd just arrived with SCM_RIGHTS; nothing else owns it.
        fds.first().map(|fd| unsafe { OwnedFd::from_raw_fd(*fd) })
    });
    let out = p.call(
        Rt::Runz,
        &["create", "--pidfd-socket", &sock, "--bundle", &dir, &id],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let pidfd = receiver.join().unwrap().expect("a pidfd arrived");
    let fdinfo = std::fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(&pidfd)
    ))
    .unwrap();
    let pid = pid_of(&p, Rt::Runz);
    assert!(fdinfo.contains(&format!("Pid:\t{pid}\n")), "{fdinfo}");
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            libc::SIGTERM,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    assert!(common::wait_until(|| status_of(&p, Rt::Runz) == "stopped"));
}

/// SIGKILL to a container without its own PID namespace ends every process of it (killing
/// init alone leaves the rest: runc 1.1 does, runc 1.2 kills them all); a second one says
/// the container is not running.
#[test]
fn sigkill_without_a_pid_namespace_ends_every_process() {
    use runc_compat::{Pair, Rt};
    if !common::require_root() {
        return;
    }
    let mut p = Pair::new("killall");
    let ns: Vec<Value> = p.b.spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "pid")
        .cloned()
        .collect();
    p.b.set("/linux/namespaces", Value::Array(ns))
        .args(&["sh", "-c", "sleep 1000 & sleep 1000"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    let out = p.call(Rt::Runz, &["run", "-d", "--bundle", &dir, &id]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let procs = || -> usize {
        p.b.cgroup_dirs()
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .map(|t| t.lines().count())
            .max()
            .unwrap_or(0)
    };
    assert!(common::wait_until(|| procs() == 2), "{} processes", procs());
    let kill = p.call(Rt::Runz, &["kill", &id, "KILL"]);
    assert_eq!(kill.code, Some(0), "{kill:?}");
    assert!(common::wait_until(|| procs() == 0), "{} left", procs());
    let again = p.call(Rt::Runz, &["kill", &id, "KILL"]);
    assert_eq!(again.code, Some(1));
    assert_eq!(again.error(), "container not running");
}

/// `ociVersion`: runc 1.1.5 runs a config whatever string it holds ("banana", "", a future
/// "2.0.0", none at all) and refuses one that is not a string; runz does the same (the issue's
/// "an ociVersion that is not a version is refused" is not what the reference does).
#[test]
fn oci_version_is_taken_and_refused_as_runc_does() {
    use runc_compat::Pair;
    if !common::require_root() {
        return;
    }
    let cases: [(Option<Value>, Option<i32>); 5] = [
        (Some(Value::from("banana")), Some(0)),
        (Some(Value::from("")), Some(0)),
        (Some(Value::from("2.0.0")), Some(0)),
        (None, Some(0)),
        (Some(Value::from(1)), Some(1)),
    ];
    for (version, code) in cases {
        let mut p = Pair::new("ociversion");
        p.b.args(&["echo", "ran"]);
        match &version {
            Some(v) => {
                p.b.set("/ociVersion", v.clone());
            }
            None => {
                p.b.spec.as_object_mut().unwrap().remove("ociVersion");
            }
        }
        let (runc, runz) = p.run_both();
        assert_eq!(runc.code, code, "runc, ociVersion {version:?}: {runc:?}");
        assert_eq!(
            runz.code, runc.code,
            "runz, ociVersion {version:?}: {runz:?}"
        );
        assert_eq!(runz.stdout, runc.stdout, "ociVersion {version:?}");
        if code == Some(1) {
            assert!(runc.error().contains("ociVersion"), "{runc:?}");
            assert!(runz.error().contains("expected a string"), "{runz:?}");
        }
    }
}
