//! zonesd as a host service: the systemd unit (integration/service/zonesd.service) checked by
//! `systemd-analyze verify` (and, always, its keys read), staged by `make install-service`;
//! the init script of hosts without systemd (integration/service/zones.init) starting zonesd
//! on an alternate root, serving, and stopping it, with a bad option a failed start.
//!
//! The init script starts zonesd in the background and exits, so zonesd is an orphan: this test
//! process is made a child subreaper (its own test binary: nothing else here leaves orphans) so it
//! reaps zonesd after the stop, and a drop guard kills a zonesd a failed test left running.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, ZoneHost};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The unit's `KEY=VALUE` lines of `[section]`.
fn keys(unit: &str, section: &str) -> Vec<(String, String)> {
    let mut on = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            on = line == format!("[{section}]");
        } else if on && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    out
}

fn key<'a>(kv: &'a [(String, String)], k: &str) -> Vec<&'a str> {
    kv.iter()
        .filter(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn the_systemd_unit_starts_zonesd_and_verifies() {
    let text = std::fs::read_to_string(repo().join("integration/service/zonesd.service")).unwrap();
    let dir = std::env::temp_dir().join(format!("zonesd-unit-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bindir = bin("zonesd").parent().unwrap().to_path_buf();
    let unit = text.replace("@BINDIR@", bindir.to_str().unwrap());
    let file = dir.join("zonesd.service");
    std::fs::write(&file, &unit).unwrap();

    // Its keys: zonesd started with the options of /etc/default/zonesd, stopped alone (the
    // zone supervisors it forked through the tools live on), after the zones service.
    let svc = keys(&unit, "Service");
    assert_eq!(
        key(&svc, "ExecStart"),
        [format!("{}/zonesd $ZONESD_OPTS", bindir.display())]
    );
    assert_eq!(key(&svc, "Type"), ["exec"]);
    assert_eq!(key(&svc, "KillMode"), ["process"]);
    assert_eq!(key(&svc, "EnvironmentFile"), ["-/etc/default/zonesd"]);
    assert_eq!(key(&svc, "Restart"), ["on-failure"]);
    let after = key(&keys(&unit, "Unit"), "After").join(" ");
    assert!(
        after.split_whitespace().any(|u| u == "zones.service"),
        "{after}"
    );
    assert_eq!(
        key(&keys(&unit, "Install"), "WantedBy"),
        ["multi-user.target"]
    );

    // systemd's own check: every key known, the command executable.
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "systemd-analyze verify: {said}");
            assert!(
                !said.contains("zonesd.service"),
                "systemd-analyze verify: {said}"
            );
        }
        Err(e) => eprintln!(
            "NOTE: systemd-analyze not runnable ({e}): the unit's keys were checked by reading \
             it only (scripts/install-deps.sh installs systemd)"
        ),
    }

    // make install-service stages it with the installed binary's path.
    let dest = dir.join("dest");
    let out = Command::new("make")
        .current_dir(repo())
        .args(["-s", "install-service", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", dest.display()))
        .stdin(Stdio::null())
        .output()
        .expect("make (scripts/install-deps.sh installs it)");
    assert!(out.status.success(), "make install-service: {out:?}");
    let staged =
        std::fs::read_to_string(dest.join("usr/lib/systemd/system/zonesd.service")).unwrap();
    assert!(
        staged.contains("\nExecStart=/usr/bin/zonesd $ZONESD_OPTS\n"),
        "{staged}"
    );
    assert!(!staged.contains("@BINDIR@"), "{staged}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Kills and reaps the zonesd of a pid file on drop, if it still runs.
struct PidGuard(PathBuf);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        else {
            return;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "zonesd" {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

fn init(root: &Path, cgroup_parent: &str, action: &str, opts: &str) -> Output {
    Command::new(repo().join("integration/service/zones.init"))
        .arg(action)
        .env("ZONEADM", bin("zoneadm"))
        .env("ZONES_ALTROOT", root)
        .env("ZONES_NO_DEFAULTS", "1")
        .env("ZONES_CGROUP_PARENT", cgroup_parent)
        .env("ZONESD_OPTS", opts)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_init_script_starts_and_stops_zonesd() {
    if !require_root() {
        return;
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only marks this process as the reaper of its
    // orphaned descendants (zonesd, once the init script that started it exits).
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let h = ZoneHost::new("zonesd", "service", false);
    let pidfile = h.root.join("run/zones/zonesd.pid");
    let socket = h.root.join("run/zones/zonesd.sock");
    let _guard = PidGuard(pidfile.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = format!("--listen 127.0.0.1:{port}");

    // start: zonesd serves the altroot's socket and the options' port, its pid recorded.
    let out = init(&h.root, &h.cgroup_parent, "start", &opts);
    assert!(out.status.success(), "start: {}", text(&out));
    assert!(text(&out).contains("zonesd is serving"), "{}", text(&out));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "zonesd");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.contains(h.root.to_str().unwrap()), "{cmdline:?}");
    let token = Command::new(bin("zonesd"))
        .arg("-R")
        .arg(&h.root)
        .args(["token", "create", "--role", "viewer"])
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8_lossy(&token.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let get = |s: &mut dyn ReadWrite| {
        s.write_all(
            format!(
                "GET /api/zones HTTP/1.1\r\nHost: z\r\nConnection: close\r\n\
                 Authorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    };
    let mut unix = UnixStream::connect(&socket).unwrap();
    unix.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let got = get(&mut unix);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let got = get(&mut tcp);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    // status says so; a second start leaves it be.
    let out = init(&h.root, &h.cgroup_parent, "status", "");
    assert!(
        text(&out).contains(&format!("zonesd is running (pid {pid})")),
        "{}",
        text(&out)
    );
    let out = init(&h.root, &h.cgroup_parent, "start", &opts);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already running"), "{}", text(&out));

    // stop: zonesd ends (SIGTERM: it removes its socket), the pid file goes.
    let out = init(&h.root, &h.cgroup_parent, "stop", "");
    assert!(out.status.success(), "stop: {}", text(&out));
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                assert!(Instant::now() < until, "zonesd {pid} still runs after stop");
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other,
        }
    };
    assert!(
        matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
        "zonesd ended: {status:?}"
    );
    assert!(!socket.exists() && !pidfile.exists());
    let log = std::fs::read_to_string(h.root.join("var/log/zones/zonesd.log")).unwrap();
    assert!(log.contains("zonesd: stopped"), "{log}");
    let out = init(&h.root, &h.cgroup_parent, "status", "");
    assert!(
        text(&out).contains("zonesd is not running"),
        "{}",
        text(&out)
    );

    // A bad option: the start fails, saying why; nothing runs.
    let out = init(&h.root, &h.cgroup_parent, "start", "--bogus");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("zonesd did not start"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--bogus"), "{}", text(&out));
    assert!(!pidfile.exists());
    // Its zonesd exited at once: reap it (it is ours once the script has exited).
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => break,
        }
    }

    // Disabled: start and stop leave zonesd alone.
    let out = Command::new(repo().join("integration/service/zones.init"))
        .arg("start")
        .env("ZONEADM", bin("zoneadm"))
        .env("ZONES_ALTROOT", &h.root)
        .env("ZONES_NO_DEFAULTS", "1")
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .env("ZONESD_ENABLE", "no")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("zonesd"), "{}", text(&out));
    assert!(!pidfile.exists() && !socket.exists());
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
