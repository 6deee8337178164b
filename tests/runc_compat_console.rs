//! runz against runc 1.1: the console of a foreground `run`/`exec` with a terminal (issue 24,
//! "Console"): the bytes the caller's terminal gets (runc relays a pty without ONLCR, so each
//! line gets one "\r\n" from the caller's own terminal, not "\r\r\n"), and the pty slave owned
//! by process.user. script(1) gives each runtime a terminal of its own.

mod common;
mod runc_compat;

use std::path::Path;
use std::process::{Command, Stdio};

use common::require_root;
use runc_compat::{Pair, Rt, BOTH, RUNC};
use serde_json::json;

/// `script -qec "RT --root ROOT ARGS" /dev/null`: what the terminal showed.
fn in_terminal(p: &Pair, rt: Rt, args: &[&str]) -> Vec<u8> {
    let (bin, root) = match rt {
        Rt::Runc => (Path::new(RUNC).to_path_buf(), p.runc_root.clone()),
        Rt::Runz => (common::runz_bin().to_path_buf(), p.b.root.clone()),
    };
    let line = format!(
        "timeout 20 {} --root {} {}",
        bin.display(),
        root.display(),
        args.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) (bsdutils) runs");
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
