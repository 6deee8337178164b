//! runz against runc 1.1: the console of a foreground `run`/`exec` with a terminal (issue 24,
//! "Console"): the bytes the caller's terminal gets (runc relays a pty without ONLCR, so each
//! line gets one "\r\n" from the caller's own terminal, not "\r\r\n"), and the pty slave owned
//! by process.user. script(1) gives each runtime a terminal of its own.

mod common;
mod runc_compat;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::require_root;
use runc_compat::{Pair, Rt, BOTH, RUNC};
use serde_json::json;

/// `script -qec "RT --root ROOT ARGS" /dev/null`: what the terminal showed. Bounded: a run
/// that does not end within a minute fails the test with what the terminal showed so far and
/// the processes left, and everything that names the container is killed.
///
/// The runtime must be in the terminal's foreground process group, as a shell's job is: no
/// timeout(1) inside (it moves itself and its child to a group of their own, where a
/// tcsetattr stops them with SIGTTOU), and script's shell fixed to sh (script runs $SHELL;
/// dash forks the command where bash execs it, so $SHELL changed which group it ran in).
fn in_terminal(p: &Pair, rt: Rt, args: &[&str]) -> Vec<u8> {
    let (bin, root) = match rt {
        Rt::Runc => (Path::new(RUNC).to_path_buf(), p.runc_root.clone()),
        Rt::Runz => (common::runz_bin().to_path_buf(), p.b.root.clone()),
    };
    let line = format!(
        "{} --root {} {}",
        bin.display(),
        root.display(),
        args.join(" ")
    );
    let stem = p.b.dir.join(format!("script-{rt:?}-{}", args[0]));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env("SHELL", "/bin/sh");
    let out = match common::run_with_timeout(&mut cmd, &stem, Duration::from_secs(60)) {
        Ok(out) => out,
        Err(e) => {
            let ps = Command::new("ps")
                .args(["-eo", "pid,ppid,pgid,sid,stat,wchan:24,args", "--forest"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let _ = Command::new("pkill")
                .args(["-KILL", "-f", &p.b.id])
                .status();
            let shown = std::fs::read(stem.with_extension("out")).unwrap_or_default();
            panic!(
                "{rt:?} {}: script(1) {e}; the terminal showed {:?}; processes:\n{ps}",
                args[0],
                String::from_utf8_lossy(&shown)
            );
        }
    };
    // "^@": script's terminal echoing a NUL, at a moment that varies; not the runtime's.
    String::from_utf8_lossy(&out.stdout)
        .replace("^@", "")
        .into_bytes()
}

#[test]
fn a_foreground_terminal_shows_the_same_bytes_and_the_pty_is_the_users() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("console");
    let show = "echo one; echo two; stat -L -c 'owner=%u' /proc/self/fd/0";
    p.b.set("/process/terminal", json!(true))
        .set("/process/user", json!({"uid": 1000, "gid": 1000}))
        .args(&["sh", "-c", show]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    let mut seen = Vec::new();
    for rt in BOTH {
        let out = in_terminal(&p, rt, &["run", "--bundle", &dir, &id]);
        p.call(rt, &["delete", "--force", &id]);
        seen.push(String::from_utf8_lossy(&out).into_owned());
    }
    assert_eq!(seen[1], seen[0], "run -t: runz vs runc");
    assert!(
        seen[1].contains("one\r\ntwo\r\nowner=1000\r\n"),
        "{:?}",
        seen[1]
    );

    // exec -t into a running container, as another user.
    p.b.set("/process/terminal", json!(false))
        .args(&["sleep", "1000"]);
    let (runc, runz) = p.detached(|rt| {
        let out = in_terminal(
            &p,
            rt,
            &[
                "exec",
                "-t",
                "-u",
                "1000",
                &id,
                "sh",
                "-c",
                &format!("\"{show}\""),
            ],
        );
        String::from_utf8_lossy(&out).into_owned()
    });
    // runc clears ONLCR only once it has the pty, after the exec'd process may have written
    // (here it has: "one\r\r\n"); runz clears it before the process runs. The rest is equal.
    assert_eq!(
        runz,
        runc.replace("\r\r\n", "\r\n"),
        "exec -t: runz vs runc"
    );
    assert!(runz.contains("one\r\ntwo\r\nowner=1000\r\n"), "{runz:?}");
}
