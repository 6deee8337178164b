//! No fd of runz's own reaches a container process (issue 24, "Leaks"): only 0-2 and the
//! `--preserve-fds` ones the caller really passed, in run, create/start and exec. The leak
//! condition: `--preserve-fds N` with fewer fds open, so runz's own fds (the exec fifo, the
//! channel) took the numbers of the range the container inherits. runc 1.1 leaks there too
//! (its /sys/fs/cgroup dir and an epoll fd), so these check runz alone; with the fds really
//! passed, runz and runc must agree.

mod common;
mod runc_compat;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

use common::require_root;
use runc_compat::{Pair, Rt, RUNC};

/// The fds process `pid` holds, "N TARGET" each, in fd order, once it runs `sleep` (before
/// that, it may still be runz's init).
fn host_fds(pid: i64) -> Vec<String> {
    let comm = format!("/proc/{pid}/comm");
    assert!(
        common::wait_until(|| std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")),
        "{pid} never ran sleep"
    );
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n: i32 = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            (n, target.display().to_string())
        })
        .collect();
    fds.sort();
    fds.into_iter().map(|(n, t)| format!("{n} {t}")).collect()
}

fn numbers(fds: &[String]) -> Vec<&str> {
    fds.iter().map(|l| l.split(' ').next().unwrap()).collect()
}

fn pid_of(p: &Pair, rt: Rt) -> i64 {
    let st = p.call(rt, &["state", &p.b.id]);
    serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("{rt:?} state: {st:?}"))
}

/// `RT --root ROOT ARGS` with `file` on fd 3 when given (and nothing else beyond 0-2).
fn call_with_fd3(p: &Pair, rt: Rt, args: &[&str], file: Option<&Path>) -> (Option<i32>, String) {
    let (bin, root) = match rt {
        Rt::Runc => (Path::new(RUNC), p.runc_root.clone()),
        Rt::Runz => (common::runz_bin(), p.b.root.clone()),
    };
    let f = file.map(|f| std::fs::File::open(f).unwrap());
    let raw = f.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(&root).args(args);
    // SAFETY: dup2, fcntl and close are async-signal-safe; they run in the forked child before
    // exec and touch only its fds.
    unsafe {
        cmd.pre_exec(move || {
            match raw {
                Some(fd) if libc::dup2(fd, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 => {
                    return Err(std::io::Error::last_os_error())
                }
                Some(_) => {}
                None => {
                    libc::close(3);
                }
            }
            Ok(())
        });
    }
    // Files, not pipes: a created container inherits them and would keep a pipe open.
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let stem = p.b.dir.join(format!("fd3-{n}"));
    let out = common::run_with_timeout(&mut cmd, &stem, common::RUNZ_TIMEOUT).unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn run_passes_only_the_fds_the_caller_gave() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("leakrun");
    p.b.args(&["sleep", "1000"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    let file = p.b.dir.join("passed.txt");
    std::fs::write(&file, "x").unwrap();
    // Two promised, none open: only stdio.
    let run2 = ["run", "-d", "--preserve-fds", "2", "--bundle", &dir, &id];
    let (code, out) = call_with_fd3(&p, Rt::Runz, &run2, None);
    assert_eq!(code, Some(0), "{out}");
    let seen = host_fds(pid_of(&p, Rt::Runz));
    p.call(Rt::Runz, &["delete", "--force", &id]);
    assert_eq!(numbers(&seen), ["0", "1", "2"], "{seen:?}");
    // Two promised, one open: that one only.
    let (code, out) = call_with_fd3(&p, Rt::Runz, &run2, Some(&file));
    assert_eq!(code, Some(0), "{out}");
    let seen = host_fds(pid_of(&p, Rt::Runz));
    p.call(Rt::Runz, &["delete", "--force", &id]);
    assert_eq!(numbers(&seen), ["0", "1", "2", "3"], "{seen:?}");
    assert_eq!(seen[3], format!("3 {}", file.display()));
    // As promised: the same as runc.
    let run1 = ["run", "-d", "--preserve-fds", "1", "--bundle", &dir, &id];
    let mut both = Vec::new();
    for rt in [Rt::Runc, Rt::Runz] {
        let (code, out) = call_with_fd3(&p, rt, &run1, Some(&file));
        assert_eq!(code, Some(0), "{rt:?}: {out}");
        let fds = host_fds(pid_of(&p, rt));
        p.call(rt, &["delete", "--force", &id]);
        // stdout and stderr are files named after each call: compare fd numbers and fd 3.
        both.push((numbers(&fds).join(" "), fds[3].clone()));
    }
    assert_eq!(both[1], both[0], "runz vs runc");
}

#[test]
fn create_start_and_exec_pass_only_the_fds_the_caller_gave() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("leakcs");
    p.b.args(&["sleep", "1000"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    let (code, out) = call_with_fd3(
        &p,
        Rt::Runz,
        &["create", "--preserve-fds", "3", "--bundle", &dir, &id],
        None,
    );
    assert_eq!(code, Some(0), "{out}");
    let start = p.call(Rt::Runz, &["start", &id]);
    assert_eq!(start.code, Some(0), "{start:?}");
    let seen = host_fds(pid_of(&p, Rt::Runz));
    assert_eq!(numbers(&seen), ["0", "1", "2"], "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("exec.fifo")), "{seen:?}");

    let pid_file = p.b.dir.join("exec.pid");
    for flags in [&["--preserve-fds", "2"][..], &[][..]] {
        let _ = std::fs::remove_file(&pid_file);
        let mut args = vec!["exec", "-d", "--pid-file", pid_file.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&id, "sleep", "1000"]);
        let (code, out) = call_with_fd3(&p, Rt::Runz, &args, None);
        assert_eq!(code, Some(0), "{flags:?}: {out}");
        let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let seen = host_fds(pid);
        assert_eq!(numbers(&seen), ["0", "1", "2"], "{flags:?}: {seen:?}");
    }
}
