//! zlogin in a real terminal: interactive logins (each its own pty, the zone's /dev/console
//! untouched, any number per boot) and the console (`~.` after the terminal's answers to the
//! shell's queries, `-e c`, `-d`, waiting across a halt, EOF on stdin).
//!
//! The terminal is a pty the test opens: zlogin gets the slave as its controlling terminal
//! and stdio, the test reads and writes the master as a terminal would, answering cursor
//! position queries (`ESC [ 6 n`) as xterm does.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, ZoneHost};

#[path = "tmux/mod.rs"]
mod tmux;

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("zlogin", tag, true))
    }

    /// Configure, install and boot `zone`.
    fn boot(&self, zone: &str) {
        self.boot_zone(zone, "set max-processes=100");
    }

    /// `zlogin ARGS` with a pty as its controlling terminal.
    fn term(&self, args: &[&str]) -> Term {
        Term::spawn(self, args)
    }
}

/// What a test waits for at most (output, an exit).
const WAIT: Duration = Duration::from_secs(15);

/// A zlogin on a pty: the test is its terminal.
struct Term {
    child: Child,
    master: Arc<OwnedFd>,
    /// Everything zlogin wrote to the terminal.
    out: Arc<Mutex<Vec<u8>>>,
    /// How much of `out` earlier `expect`s consumed.
    seen: usize,
}

impl Term {
    fn spawn(h: &Host, args: &[&str]) -> Term {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = pty.slave;
        let mut cmd = Command::new(bin("zlogin"));
        cmd.arg("-R")
            .arg(&h.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: the closure runs in the forked child before exec and only makes two
        // async-signal-safe system calls: setsid, and TIOCSCTTY on fd 0 (the pty slave).
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        let master = Arc::new(pty.master);
        let out = Arc::new(Mutex::new(Vec::new()));
        let (m, o) = (master.clone(), out.clone());
        // The terminal: collect the output, answer cursor position queries. Ends with EIO
        // once zlogin (the last holder of the slave) is gone.
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(m.try_clone().unwrap());
            let mut buf = [0u8; 4096];
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let data = &buf[..n];
                if data.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = f.write_all(b"\x1b[24;1R");
                }
                o.lock().unwrap().extend_from_slice(data);
            }
        });
        Term {
            child,
            master,
            out,
            seen: 0,
        }
    }

    /// Type `bytes`.
    fn send(&self, bytes: &[u8]) {
        nix::unistd::write(self.master.as_ref(), bytes).unwrap();
    }

    /// Wait for `needle` in the output after what earlier expects consumed.
    fn expect(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            {
                let out = self.out.lock().unwrap();
                let text = String::from_utf8_lossy(&out[self.seen..]).into_owned();
                if let Some(i) = text.find(needle) {
                    self.seen += text[..i + needle.len()].len();
                    return text;
                }
                if start.elapsed() > WAIT {
                    panic!("no {needle:?} from zlogin in {WAIT:?}; it wrote: {text:?}");
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All the output so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// zlogin's exit code, if it exits within `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many mounts inside the zone name its console, and the zone's init's terminal.
fn console_mounts(h: &Host, zone: &str) -> String {
    h.ok(
        "zlogin",
        &[
            zone,
            "grep -c console /proc/self/mountinfo; ls -l /dev/console",
        ],
    )
}

#[test]
fn three_interactive_logins_on_one_boot_each_get_their_own_pty() {
    if !require_root() {
        return;
    }
    let h = Host::new("three");
    h.boot("tri");
    let before = console_mounts(&h, "tri");
    for i in 1..=3 {
        let mut t = h.term(&["tri"]);
        t.send(format!("echo login-$((100+{i}))\r").as_bytes());
        t.expect(&format!("login-{}", 100 + i));
        // Its own pty, not the zone's console.
        // The marker is computed by the shell: the echo of the typed line cannot match it.
        t.send(b"tty; echo tty-$((40+2))\r");
        let text = t.expect("tty-42\r\n");
        assert!(text.contains("/dev/pts/"), "login {i}: {text}");
        t.send(b"exit\r");
        assert_eq!(
            t.exit_within(WAIT),
            Some(0),
            "login {i}: zlogin did not end with the shell: {}",
            t.text()
        );
        assert!(!t.text().contains("bind-mount"), "login {i}: {}", t.text());
    }
    // The zone's console is as the boot left it: no login's pty stacked over it.
    assert_eq!(console_mounts(&h, "tri"), before);
    // And it still is the console: the console client reaches the zone's shell.
    let mut c = h.term(&["-C", "tri"]);
    c.expect("[Connected to zone 'tri' console]");
    c.send(b"\r");
    c.send(b"echo console-$((6*7))\r");
    c.expect("console-42");
    c.send(b"\r~.");
    assert_eq!(c.exit_within(WAIT), Some(0), "{}", c.text());
    h.ok("zoneadm", &["-z", "tri", "halt"]);
}

#[test]
fn the_console_is_left_with_the_escape_after_the_terminals_answers() {
    if !require_root() {
        return;
    }
    let h = Host::new("escape");
    h.boot("esc");
    let mut c = h.term(&["-C", "esc"]);
    c.expect("[Connected to zone 'esc' console]");
    c.send(b"\r");
    c.send(b"echo up-$((6*7))\r");
    c.expect("up-42");
    // Enter, then the terminal's answer to the shell's cursor position query lands on
    // stdin before the user types ~.: the escape is still first on the user's line.
    c.send(b"\r");
    std::thread::sleep(Duration::from_millis(200));
    c.send(b"\x1b[24;1R");
    std::thread::sleep(Duration::from_millis(100));
    c.send(b"~.");
    assert_eq!(c.exit_within(WAIT), Some(0), "~. ignored: {}", c.text());
    // zlogin has exited; the terminal thread may not have read its last line yet.
    c.expect("[Connection to zone 'esc' console closed]");
    assert_eq!(h.state("esc"), "running");
    h.ok("zoneadm", &["-z", "esc", "halt"]);
}

#[test]
fn the_console_with_e_and_d_uses_that_escape_and_leaves_when_the_zone_halts() {
    if !require_root() {
        return;
    }
    let h = Host::new("e-d");
    h.boot("ed");
    let mut c = h.term(&["-C", "-d", "-e", "#", "ed"]);
    c.expect("[Connected to zone 'ed' console]");
    c.send(b"\r");
    // ~. is no escape with -e #: it reaches the shell, and the console stays.
    c.send(b"~.\r");
    c.send(b"echo still-$((6*7))\r");
    c.expect("still-42");
    assert_eq!(c.exit_within(Duration::from_millis(300)), None);
    // The zone halts: -d disconnects.
    h.ok("zoneadm", &["-z", "ed", "halt"]);
    assert_eq!(c.exit_within(WAIT), Some(0), "{}", c.text());
    // zlogin has exited; the terminal thread may not have read its last line yet.
    c.expect("[Connection to zone 'ed' console closed]");

    // -d without -C, -l or -S with -C: refused, not ignored.
    let refused: [(&[&str], &str); 3] = [
        (&["-d", "ed", "true"], "zlogin: -d is only valid with -C"),
        (
            &["-C", "-l", "root", "ed"],
            "zlogin: -l is not allowed with -C",
        ),
        (&["-C", "-S", "ed"], "zlogin: -S is not allowed with -C"),
    ];
    for (args, msg) in refused {
        let err = h.fails("zlogin", args);
        assert_eq!(err.trim_end(), msg, "{args:?}");
    }
}

#[test]
fn the_console_without_d_waits_for_the_zone_to_boot_again() {
    if !require_root() {
        return;
    }
    let h = Host::new("wait");
    h.boot("wt");
    let mut c = h.term(&["-C", "wt"]);
    c.expect("[Connected to zone 'wt' console]");
    h.ok("zoneadm", &["-z", "wt", "halt"]);
    c.expect("[NOTICE: Zone halted]");
    assert_eq!(c.exit_within(Duration::from_millis(500)), None);
    h.ok("zoneadm", &["-z", "wt", "boot"]);
    // Reattached to the new boot's console: its askfirst prompt takes the Enter.
    let start = Instant::now();
    loop {
        c.send(b"\r");
        std::thread::sleep(Duration::from_millis(300));
        if c.text().contains("activate this console") || start.elapsed() > WAIT {
            break;
        }
    }
    c.send(b"\recho back-$((40+2))\r");
    c.expect("back-42");
    c.send(b"\r~.");
    assert_eq!(c.exit_within(WAIT), Some(0), "{}", c.text());
    h.ok("zoneadm", &["-z", "wt", "halt"]);
}

/// `zlogin -C ZONE` with `input` then EOF on stdin (None: /dev/null): its exit code (None
/// if it had not ended within WAIT: it is killed), stdout and stderr.
fn console_with_input(h: &Host, zone: &str, input: Option<&[u8]>) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin("zlogin"))
        .arg("-R")
        .arg(&h.root)
        .args(["-C", zone])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(bytes).unwrap();
    }
    let start = Instant::now();
    let mut code = None;
    while start.elapsed() < WAIT {
        if let Some(st) = child.try_wait().unwrap() {
            code = Some(st.code().unwrap_or(-1));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if code.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_console_ends_at_eof_on_stdin() {
    if !require_root() {
        return;
    }
    let h = Host::new("eof");
    h.boot("eo");
    // What was written before EOF reaches the zone, and its answer is shown.
    let (code, text, err) = console_with_input(&h, "eo", Some(b"\necho eof-$((6*7))\n"));
    assert_eq!(code, Some(0), "zlogin -C did not end at EOF: {text}{err}");
    assert!(text.contains("eof-42"), "{text}");
    assert!(
        err.contains("[Connection to zone 'eo' console closed]"),
        "{err}"
    );
    let (code, _, err) = console_with_input(&h, "eo", None);
    assert_eq!(code, Some(0), "zlogin -C </dev/null did not end: {err}");
    assert_eq!(h.state("eo"), "running");
    h.ok("zoneadm", &["-z", "eo", "halt"]);
}

/// The same in tmux, a full terminal that answers the shells' queries itself (busybox sh asks
/// for the cursor position at every prompt): from a host shell, three interactive logins in a
/// row on one boot, then the console, left with `~.` typed at the zone's busybox prompt.
#[test]
fn logins_and_the_console_in_tmux() {
    if !require_root() {
        return;
    }
    let h = Host::new("tmux");
    h.boot("tm");
    let before = console_mounts(&h, "tm");
    let zlogin = bin("zlogin");
    let (zlogin, root) = (zlogin.to_str().unwrap(), h.root.to_str().unwrap());
    let t = tmux::Tmux::start(
        "zlogin-tmux",
        &["sh"],
        &[
            ("PS1", "host$ "),
            ("ZONES_CGROUP_PARENT", h.cgroup_parent.as_str()),
        ],
    );
    t.wait_last("host$");
    for i in 1..=3 {
        t.type_text(&format!("{zlogin} -R {root} tm"));
        t.keys(&["Enter"]);
        // The marker is computed by the zone's shell: the echo of the typed line cannot match.
        t.type_text(&format!("echo login-$((100+{i})); tty"));
        t.keys(&["Enter"]);
        // Both lines: the marker, then tty's answer (the pane may be read between the two).
        let marker = format!("login-{}\n/dev/pts/", 100 + i);
        let s = t.wait(&format!("{marker:?}"), |s| s.contains(&marker));
        assert!(s.contains("/dev/pts/"), "login {i}: {s}");
        t.type_text("exit");
        t.keys(&["Enter"]);
        t.wait_last("host$");
        t.type_text("echo zlogin-exit-$?");
        t.keys(&["Enter"]);
        let s = t.wait_count("zlogin-exit-", 2 * i);
        assert_eq!(
            s.matches("zlogin-exit-0\nhost$").count(),
            i,
            "login {i} did not end with status 0: {s}"
        );
        assert!(!s.contains("bind-mount"), "login {i}: {s}");
    }
    assert_eq!(console_mounts(&h, "tm"), before);
    // The console: Enter activates busybox's askfirst shell, whose prompt queries the cursor.
    t.type_text(&format!("{zlogin} -R {root} -C tm"));
    t.keys(&["Enter"]);
    t.wait_count("[Connected to zone 'tm' console]", 1);
    t.keys(&["Enter"]);
    t.type_text("echo console-$((6*7))");
    t.keys(&["Enter"]);
    t.wait_count("console-42", 1);
    // Enter, then ~. at the new prompt: zlogin leaves, the zone keeps running.
    t.keys(&["Enter"]);
    t.type_text("~.");
    t.wait_count("[Connection to zone 'tm' console closed]", 1);
    t.wait_last("host$");
    t.type_text("echo console-exit-$?");
    t.keys(&["Enter"]);
    let s = t.wait_count("console-exit-0\nhost$", 1);
    assert!(!s.contains("~."), "the escape reached the zone: {s}");
    assert_eq!(h.state("tm"), "running");
    drop(t);
    h.ok("zoneadm", &["-z", "tm", "halt"]);
}
