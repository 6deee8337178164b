//! zonetrace end to end (issue 22): zones run known workloads and the toolkit must attribute
//! every event to the right zone; a zone's root cannot trace at all.
//!
//! Zone `ta` opens a marker file and copies bytes one at a time in a loop (many system calls);
//! zone `tb` opens its own marker and connects to a listener on its own address, inside its own
//! network namespace (an anet on a test etherstub; nothing leaves the host). Every workload is a
//! bounded loop (count and sleep), and halting the zones ends it. The tracing system calls a
//! zone tries come from `zonetrace-probe` (tests/zonetrace/probe.rs), built static here.
//!
//! Needs root, bpftrace (scripts/install-deps.sh) and the kernel's tracepoints; every trace is
//! bounded by zonetrace's own `-d` and watchdog.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::zonehost::{bin, ZoneHost};
use common::{have_bpftrace, require_root};
use serde_json::Value;
use zones_linux::zone::datalinks;
use zones_linux::zone::network::{host_link_name, ifb_name};
use zones_net::{nft, Netlink};

/// Build the static probe into `dest`.
fn build_probe(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zonetrace/probe.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "-C", "target-feature=+crt-static"])
        .arg(&src)
        .arg("-o")
        .arg(dest)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "building {} failed: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A zone host whose test links carry a unique tag, removed on drop with the zones.
struct Host {
    zones: ZoneHost,
    tag: String,
    made: RefCell<Vec<String>>,
}

impl std::ops::Deref for Host {
    type Target = ZoneHost;
    fn deref(&self) -> &ZoneHost {
        &self.zones
    }
}

impl Host {
    fn new(tag: &str) -> Host {
        let zones = ZoneHost::new("trace", tag, true);
        build_probe(&zones.image.join("bin/zonetrace-probe"));
        Host {
            tag: zones.link_name("rzt", ""),
            zones,
            made: RefCell::new(Vec::new()),
        }
    }

    /// Configure (`create; set zonepath=...; CFG`), install and boot `zone`.
    fn boot(&self, zone: &str, cfg: &str) {
        self.made.borrow_mut().push(zone.to_string());
        self.boot_zone(zone, &format!("set max-processes=200; {cfg}"));
    }

    /// Start `script` in the background inside `zone`, in its own session (zlogin ends what is
    /// left of its own session when the command returns).
    fn background(&self, zone: &str, script: &str) {
        let cmd = format!("setsid sh -c '{script}' >/dev/null 2>&1 </dev/null &");
        self.ok("zlogin", &[zone, &cmd]);
    }

    /// `zonetrace -R ROOT ARGS` → (success, stdout, stderr).
    fn zonetrace(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd("zonetrace", args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Start `zonetrace -R ROOT ARGS` in the background and return once its probes are attached
    /// (at most 60 s: compiling under load takes a while).
    fn start_trace(&self, args: &[&str]) -> Trace {
        let mut child = Command::new(bin("zonetrace"))
            .args(["-R", self.root.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains(" attached (") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut trace = Trace {
            child: Some(child),
            stderr: Some(reader),
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let err = trace.stop();
            panic!("zonetrace {args:?} did not attach within 60 s: {err}");
        }
        trace
    }

    /// A toolkit script with `-j`: its rows; the trace must succeed.
    fn rows(&self, args: &[&str]) -> Vec<Value> {
        let (ok, out, err) = self.zonetrace(args);
        assert!(ok, "zonetrace {args:?} failed: {err}\n{out}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

/// A zonetrace running in the background; killed on drop if the test ends early.
struct Trace {
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Trace {
    /// Kill it now; what it said on stderr.
    fn stop(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stderr
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Wait for the end of the trace (its -d) and return its JSON rows; it must succeed.
    fn rows(mut self) -> Vec<Value> {
        let out = self.child.take().unwrap().wait_with_output().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap_or_default();
        assert!(out.status.success(), "zonetrace failed: {err}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.zones.halt_all();
        if let Ok(mut nl) = Netlink::open() {
            for z in self.made.borrow().iter() {
                let host = host_link_name(z, "net0");
                let _ = nft::unprotect(&host);
                let _ = nl.delete_if_exists(&ifb_name(&host));
                let _ = nl.delete_if_exists(&host);
            }
            for l in nl.links().unwrap_or_default() {
                if l.name.starts_with(&self.tag) {
                    let _ = nft::unprotect(&datalinks::vnic_port_name(&l.name));
                    let _ = nl.delete_if_exists(&datalinks::vnic_ifb_name(&l.name));
                    let _ = nl.delete_link(&l.name);
                }
            }
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// Every row has the fields the interface promises.
fn assert_common_fields(rows: &[Value], what: &str) {
    for r in rows {
        assert!(
            r["zonename"].is_string() && r["pid"].is_i64() && r["comm"].is_string(),
            "{what}: a row without zonename, pid or comm: {r}"
        );
    }
}

/// Two zones with known workloads; opensnoop, syscount, execsnoop, tcpconnect and tcpaccept
/// attribute what they see to the right zone, and `-z` keeps only that zone's events.
#[test]
fn toolkit_attributes_events_to_their_zones() {
    if !require_root() || !have_bpftrace() {
        return;
    }
    let h = Host::new("two");
    let stub = h.zones.link_name("rzt", "s");
    h.ok("dladm", &["create-etherstub", &stub]);
    let b_addr = format!("10.213.{}.2", 100 + h.seq % 100);
    h.boot("ta", "");
    h.boot(
        "tb",
        &format!(
            "add anet; set linkname=net0; set lower-link={stub}; \
             set allowed-address={b_addr}/24; end"
        ),
    );
    // ta: opens its marker and makes ~1000 system calls per round (dd one byte at a time).
    h.background(
        "ta",
        "i=0; while [ $i -lt 3000 ]; do cat /etc/zt-mark-a; \
         dd if=/dev/zero of=/dev/null bs=1 count=500 2>/dev/null; i=$((i+1)); sleep 0.05; done",
    );
    // tb: a persistent listener on its own address, a client connecting to it, its marker.
    h.background("tb", "nc -ll -p 8080 -e /bin/true");
    h.background(
        "tb",
        &format!(
            "i=0; while [ $i -lt 1000 ]; do cat /etc/zt-mark-b; \
             echo x | nc -w 1 {b_addr} 8080; i=$((i+1)); sleep 0.2; done"
        ),
    );

    // opensnoop -z ta: ta's opens, each with zonename ta, and none of tb's.
    let rows = h.rows(&["opensnoop", "-z", "ta", "-j", "-d", "3"]);
    assert_common_fields(&rows, "opensnoop");
    assert!(
        rows.iter()
            .any(|r| s(r, "path") == "/etc/zt-mark-a" && r["errno"] == 2),
        "no open of ta's marker in {rows:?}"
    );
    for r in &rows {
        assert_eq!(s(r, "zonename"), "ta", "{r}");
        assert!(
            !s(r, "path").contains("zt-mark-b"),
            "tb's open with -z ta: {r}"
        );
    }

    // Without -z: both zones, each under its own name.
    let rows = h.rows(&["opensnoop", "-j", "-d", "3"]);
    let zone_of = |marker: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| s(r, "path") == marker)
            .map(|r| s(r, "zonename"))
            .collect()
    };
    let (a, b) = (zone_of("/etc/zt-mark-a"), zone_of("/etc/zt-mark-b"));
    assert!(!a.is_empty() && a.iter().all(|z| z == "ta"), "{a:?}");
    assert!(!b.is_empty() && b.iter().all(|z| z == "tb"), "{b:?}");

    // syscount ranks ta (a system call per byte) above tb (sleeps, a connect now and then).
    let rows = h.rows(&["syscount", "-j", "-d", "3"]);
    assert_common_fields(&rows, "syscount");
    let mut per_zone: HashMap<String, u64> = HashMap::new();
    for r in &rows {
        *per_zone.entry(s(r, "zonename")).or_default() += r["count"].as_u64().unwrap();
    }
    let (na, nb) = (per_zone.get("ta").copied(), per_zone.get("tb").copied());
    assert!(
        na.unwrap_or(0) > 2 * nb.unwrap_or(0) && nb.unwrap_or(0) > 0,
        "ta should outrank tb: {per_zone:?}"
    );
    assert!(
        rows.iter()
            .any(|r| s(r, "zonename") == "ta" && s(r, "comm") == "dd" && s(r, "syscall") == "read"),
        "no read by dd in ta"
    );
    // -z: only that zone's rows.
    let rows = h.rows(&["syscount", "-z", "tb", "-j", "-d", "2"]);
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| s(r, "zonename") == "tb"), "{rows:?}");

    // execsnoop sees a command run with `zlogin ta` as zone ta's.
    let trace = h.start_trace(&["execsnoop", "-z", "ta", "-j", "-d", "4"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        // ls fails (no such file): only its exec matters.
        let _ = h.cmd("zlogin", &["ta", "/bin/ls -d /etc/zt-exec-marker /etc"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let rows = trace.rows();
    assert_common_fields(&rows, "execsnoop");
    assert!(
        rows.iter().any(|r| s(r, "zonename") == "ta"
            && s(r, "arg2") == "/etc/zt-exec-marker"
            && s(r, "path").ends_with("ls")),
        "no exec of ls from zlogin ta in {rows:?}"
    );
    assert!(rows.iter().all(|r| s(r, "zonename") == "ta"), "{rows:?}");

    // tcpconnect and tcpaccept: tb's connections to its own listener, as tb's.
    let rows = h.rows(&["tcpconnect", "-z", "tb", "-j", "-d", "3"]);
    assert_common_fields(&rows, "tcpconnect");
    assert!(
        rows.iter()
            .any(|r| s(r, "zonename") == "tb" && s(r, "daddr") == b_addr && r["dport"] == 8080),
        "no connect to {b_addr}:8080 in {rows:?}"
    );
    let rows = h.rows(&["tcpaccept", "-j", "-d", "3"]);
    assert!(
        rows.iter()
            .any(|r| s(r, "zonename") == "tb" && r["lport"] == 8080),
        "no accept on :8080 in tb in {rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r["lport"] == 8080 && s(r, "zonename") != "tb"),
        "{rows:?}"
    );

    // A program of one's own: `zonename` is the zone of the task, -z filters it.
    let (ok, out, err) = h.zonetrace(&[
        "-z",
        "ta",
        "-d",
        "2",
        "-e",
        "tracepoint:syscalls:sys_enter_openat { printf(\"open %s %s\\n\", zonename, comm); }",
    ]);
    assert!(ok, "{err}");
    let opens: Vec<&str> = out.lines().filter(|l| l.starts_with("open ")).collect();
    assert!(!opens.is_empty(), "{out}");
    assert!(opens.iter().all(|l| l.starts_with("open ta ")), "{out}");
}

/// An OOM kill inside a zone with a memory cap is reported with that zone's name.
#[test]
fn oomkill_reports_the_capped_zone() {
    if !require_root() || !have_bpftrace() {
        return;
    }
    let h = Host::new("oom");
    h.boot(
        "tm",
        "add capped-memory; set physical=32m; set swap=32m; end",
    );
    let trace = h.start_trace(&["oomkill", "-j", "-d", "6"]);
    // Exceed the cap a few times (each run is killed when it reaches 32 MiB + swap).
    for _ in 0..3 {
        let _ = h.cmd("zlogin", &["tm", "/bin/zonetrace-probe alloc 128"]);
    }
    let rows = trace.rows();
    assert_common_fields(&rows, "oomkill");
    assert!(
        rows.iter().any(|r| s(r, "zonename") == "tm"
            && s(r, "victim_comm") == "zonetrace-probe"
            && r["victim_pid"].as_i64().unwrap_or(0) > 0),
        "no OOM kill in zone tm: {rows:?}"
    );
}

/// From inside a default zone, as its root, every way to trace fails: bpf(2),
/// perf_event_open (a tracepoint, and even counting its own CPU time), tracefs (mounting it,
/// reading the host's), and zonetrace itself.
#[test]
fn a_zone_cannot_trace() {
    if !require_root() {
        return;
    }
    let h = Host::new("deny");
    std::fs::copy(bin("zonetrace"), h.image.join("bin/zonetrace")).unwrap();
    h.boot("tz", "");
    let run = |cmd: &str| -> String {
        let out = h.cmd("zlogin", &["tz", cmd]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim()
        .to_string()
    };
    // The seccomp profile answers EPERM before any capability check.
    assert_eq!(run("/bin/zonetrace-probe bpf"), format!("1 {}", eperm()));
    let tp_id = std::fs::read_to_string("/sys/kernel/tracing/events/syscalls/sys_enter_openat/id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "1".into());
    assert_eq!(
        run(&format!("/bin/zonetrace-probe perf_tracepoint {tp_id}")),
        format!("1 {}", eperm())
    );
    assert_eq!(
        run("/bin/zonetrace-probe perf_self"),
        format!("1 {}", eperm())
    );
    // tracefs: cannot be mounted, and the host's is not there to read.
    let out = run("mkdir -p /tmp/t && mount -t tracefs tracefs /tmp/t && echo MOUNTED");
    assert!(!out.contains("MOUNTED"), "{out}");
    for p in [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ] {
        let out = run(&format!(
            "ls {p} >/dev/null 2>&1 && echo READABLE || echo no"
        ));
        assert_eq!(out, "no", "{p}");
    }
    let out = run("mount -t debugfs debugfs /tmp/t && echo MOUNTED");
    assert!(!out.contains("MOUNTED"), "{out}");
    // zonetrace refuses a zone's root, naming why.
    let out = run("/bin/zonetrace syscount -d 1");
    assert!(
        out.contains("zonetrace: ") && out.contains("global zone"),
        "{out}"
    );
}

/// The errno text std prints for EPERM.
fn eperm() -> String {
    std::io::Error::from_raw_os_error(1).to_string()
}

/// Missing prerequisites and bad input are named, and nothing runs.
#[test]
fn prerequisites_and_bad_input_are_named() {
    if !require_root() {
        return;
    }
    let h = Host::new("errs");
    h.ok("zonecfg", &["-z", "tq", "create; set zonepath=/zones/tq"]);
    let (ok, _, err) = h.zonetrace(&["opensnoop", "-z", "nosuch", "-d", "1"]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "zonetrace: zone 'nosuch': No such zone configured"
    );
    let (ok, _, err) = h.zonetrace(&["opensnoop", "-z", "tq", "-d", "1"]);
    assert!(!ok);
    assert!(err.contains("zone 'tq': not running"), "{err}");
    let (ok, _, err) = h.zonetrace(&["nosuchscript"]);
    assert!(!ok);
    assert!(err.contains("nosuchscript: no such script"), "{err}");
    let (ok, _, _) = h.zonetrace(&["syscount", "-d", "0"]);
    assert!(!ok);
    // Without bpftrace in PATH: named, with what to do.
    let out = Command::new(bin("zonetrace"))
        .args(["-R", h.root.to_str().unwrap(), "syscount", "-d", "1"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bpftrace not found") && err.contains("install"),
        "{err}"
    );
    // The list names every script.
    let (ok, out, _) = h.zonetrace(&["-l"]);
    assert!(ok);
    for name in [
        "execsnoop",
        "opensnoop",
        "syscount",
        "syslat",
        "tcpconnect",
        "tcpaccept",
        "oomkill",
        "signals",
        "fileio",
    ] {
        assert!(out.contains(name), "{name} not in {out}");
    }
}

/// syslat, signals and fileio run and attribute to the zone (a smoke test of the rest of the
/// toolkit on one zone).
#[test]
fn the_rest_of_the_toolkit_runs_per_zone() {
    if !require_root() || !have_bpftrace() {
        return;
    }
    let h = Host::new("rest");
    h.boot("tr", "");
    h.background(
        "tr",
        "i=0; while [ $i -lt 2000 ]; do dd if=/etc/zt-file of=/tmp/zt-copy bs=512 count=4 \
         2>/dev/null; sleep 5 & kill $!; i=$((i+1)); sleep 0.05; done",
    );
    std::fs::write(h.root.join("zones/tr/root/etc/zt-file"), vec![b'x'; 2048]).unwrap();
    let rows = h.rows(&["syslat", "-z", "tr", "-j", "-d", "2"]);
    assert_common_fields(&rows, "syslat");
    assert!(rows.iter().all(|r| s(r, "zonename") == "tr"));
    assert!(
        rows.iter()
            .any(|r| s(r, "syscall") == "read"
                && r["hist"].as_array().is_some_and(|h| !h.is_empty())),
        "{rows:?}"
    );
    let rows = h.rows(&["signals", "-z", "tr", "-j", "-d", "2"]);
    assert_common_fields(&rows, "signals");
    assert!(
        rows.iter()
            .any(|r| s(r, "zonename") == "tr" && r["signal"] == 15),
        "{rows:?}"
    );
    let rows = h.rows(&["fileio", "-z", "tr", "-j", "-d", "2"]);
    assert_common_fields(&rows, "fileio");
    assert!(
        rows.iter().any(|r| s(r, "zonename") == "tr"
            && s(r, "path") == "/etc/zt-file"
            && r["read_bytes"].as_u64().unwrap_or(0) >= 2048),
        "{rows:?}"
    );
}
