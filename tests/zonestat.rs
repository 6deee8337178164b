//! zonestat's eBPF resources (issue 22): `-r syscalls` and `-r runq` per zone, from one
//! bpftrace child that zonestat starts only for them and stops on every way out.
//!
//! Zone `zsb` makes system calls in a loop (dd one byte at a time) and runs two CPU-bound
//! loops pinned to one CPU (so each waits for the other on the run queue); zone `zsi` is idle
//! (its init waits on the console). Every workload is a bounded loop, and halting the zones
//! ends it. Needs root and bpftrace (scripts/install-deps.sh); each zonestat run is a few
//! intervals of a second or two.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::zonehost::{bin, ZoneHost};
use common::{have_bpftrace, require_root};
use serde_json::Value;

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str, with_image: bool) -> Host {
        Host(ZoneHost::new("zonestat", tag, with_image))
    }

    /// Start `script` in the background inside `zone`, in its own session.
    fn background(&self, zone: &str, script: &str) {
        let cmd = format!("setsid sh -c '{script}' >/dev/null 2>&1 </dev/null &");
        self.ok("zlogin", &[zone, &cmd]);
    }

    /// `zonestat -R ROOT ARGS` as `uid` (root when None) → (exit code, stdout, stderr).
    fn zonestat_as(
        &self,
        uid: Option<u32>,
        path: Option<&str>,
        args: &[&str],
    ) -> (i32, String, String) {
        let mut cmd = Command::new(bin("zonestat"));
        cmd.arg("-R").arg(&self.root).args(args);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.0.halt_all();
    }
}

/// The fields after `LABEL:RESOURCE:` of the last `interval:RESOURCE:ZONE:...` line per zone.
fn last_parsable(out: &str, resource: &str, zone: &str) -> Vec<String> {
    let prefix = format!("interval:{resource}:{zone}:");
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} line in:\n{out}"))
        .split(':')
        .map(str::to_string)
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number (no data?)"))
}

/// The busy zone's system calls per second are far above the idle zone's, and its run-queue
/// latency is above zero while the idle zone waited for no CPU, in -p and -j output alike.
#[test]
fn ebpf_figures_tell_a_busy_zone_from_an_idle_one() {
    if !require_root() || !have_bpftrace() {
        return;
    }
    let h = Host::new("busy", true);
    h.boot_zone("zsb", "set max-processes=200");
    h.boot_zone("zsi", "set max-processes=200");
    h.background(
        "zsb",
        "i=0; while [ $i -lt 3000 ]; do dd if=/dev/zero of=/dev/null bs=1 count=500 \
         2>/dev/null; i=$((i+1)); sleep 0.05; done",
    );
    for _ in 0..2 {
        h.background(
            "zsb",
            "exec taskset -c 0 sh -c \"i=0; while [ \\$i -lt 50000000 ]; do i=\\$((i+1)); done\"",
        );
    }
    // The spinners are there (and pinned: each waits for the other).
    let ps = h.ok("zlogin", &["zsb", "ps -o pid,args"]);
    assert!(ps.matches("50000000").count() >= 2, "{ps}");

    let out = h.ok(
        "zonestat",
        &["-p", "-r", "syscalls,runq", "-z", "zsb,zsi", "2", "2"],
    );
    let busy = last_parsable(&out, "syscalls", "zsb");
    let idle = last_parsable(&out, "syscalls", "zsi");
    let (b, i) = (num(&busy[0]), num(&idle[0]));
    assert!(b >= 500.0 && b > 20.0 * i, "busy {b}/s, idle {i}/s:\n{out}");
    assert!(num(&busy[1]) >= b, "the count covers the interval:\n{out}");
    let busy = last_parsable(&out, "runq", "zsb");
    let idle = last_parsable(&out, "runq", "zsi");
    assert!(
        num(&busy[0]) > 0.0 && num(&busy[1]) > 0.0 && num(&busy[2]) >= num(&busy[1]),
        "zsb waits:mean:max = {busy:?}:\n{out}"
    );
    assert_eq!(idle, ["0", "0.0", "0"], "{out}");
    // [total] is the whole host, at least the busy zone.
    let total = last_parsable(&out, "syscalls", "[total]");
    assert!(
        num(&total[1]) >= num(&last_parsable(&out, "syscalls", "zsb")[1]),
        "{out}"
    );

    // -j: the same figures in each zone's object, and the host's in "total".
    let out = h.ok(
        "zonestat",
        &["-j", "-r", "syscalls,runq", "-z", "zsb,zsi", "2", "1"],
    );
    let obj: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let zone = |name: &str| -> Value {
        obj["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["zonename"] == name)
            .unwrap_or_else(|| panic!("no {name} in {obj}"))
            .clone()
    };
    let (zb, zi) = (zone("zsb"), zone("zsi"));
    let rate = |z: &Value| z["syscalls"]["per_second"].as_f64().unwrap();
    assert!(rate(&zb) >= 500.0 && rate(&zb) > 20.0 * rate(&zi), "{obj}");
    assert!(zb["runq"]["waits"].as_u64().unwrap() > 0, "{obj}");
    assert!(zb["runq"]["mean_us"].as_f64().unwrap() > 0.0, "{obj}");
    assert_eq!(zi["runq"]["waits"], 0, "{obj}");
    assert!(zb.get("cpu").is_none(), "only what -r asked for: {obj}");
    assert!(
        obj["total"]["syscalls"]["count"].as_u64().unwrap() > 0,
        "{obj}"
    );

    // Human output: a SYSCALLS table with the zones and the global zone.
    let out = h.ok("zonestat", &["-r", "syscalls", "1", "1"]);
    assert!(out.contains("SYSCALLS\n"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for z in ["[total]", "global", "zsb", "zsi"] {
        assert!(rows.contains(&z), "no {z} row:\n{out}");
    }
}

/// A zonestat process's bpftrace children.
fn bpftrace_children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let Some((comm, rest)) = stat.split_once(") ") else {
                return false;
            };
            comm.ends_with("(bpftrace") && rest.split(' ').nth(1) == Some(&pid.to_string())
        })
        .collect()
}

/// Whether `pid` is gone (or a zombie waiting for init), polled for at most 10 s.
fn gone(pid: u32) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.split_once(") ").and_then(|(_, r)| r.chars().next());
        if state.is_none() || state == Some('Z') {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start `zonestat -R ROOT -p -r syscalls 1` (inf), wait for its first report, and return it
/// with its bpftrace child's pid.
fn start_inf(h: &Host) -> (std::process::Child, u32) {
    let mut child = Command::new(bin("zonestat"))
        .arg("-R")
        .arg(&h.root)
        .args(["-p", "-r", "syscalls", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("interval:syscalls:[total]:") {
                let _ = tx.send(line);
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(60));
    let kids = bpftrace_children(child.id());
    if first.is_err() || kids.len() != 1 {
        let _ = child.kill();
        let _ = child.wait();
        panic!("zonestat did not report with one bpftrace child: {first:?}, {kids:?}");
    }
    (child, kids[0])
}

/// Wait for `child` (at most 10 s, then kill it); its exit status.
fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zonestat did not end");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Only root of the host runs the probe (a non-root caller is refused, naming why; `-r all`
/// starts none and works for anyone); a missing bpftrace is named; the child is stopped on
/// SIGINT and SIGTERM, and when zonestat is killed; a child that dies fails zonestat.
#[test]
fn ebpf_resources_are_root_only_and_their_child_never_outlives_zonestat() {
    if !require_root() {
        return;
    }
    let h = Host::new("errs", false);
    let nobody = Some(65534);
    let (code, _, err) = h.zonestat_as(nobody, None, &["-r", "syscalls", "1", "1"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err.trim(),
        "zonestat: -r syscalls: only root of the global zone can trace; run as root"
    );
    let (code, out, err) = h.zonestat_as(nobody, None, &["-p", "-r", "all", "1", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !out.contains(":syscalls:") && !out.contains(":runq:"),
        "{out}"
    );
    let (code, _, err) = h.zonestat_as(None, Some("/nonexistent"), &["-r", "runq", "1", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("zonestat: -r runq: bpftrace not found") && err.contains("install"),
        "{err}"
    );
    let (code, _, err) = h.zonestat_as(None, None, &["--prometheus", "-r", "syscalls"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-r syscalls: not with --prometheus"), "{err}");
    if !have_bpftrace() {
        return;
    }
    // SIGINT and SIGTERM: zonestat ends well and its bpftrace is gone.
    use nix::sys::signal::Signal;
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        let (mut child, bpf) = start_inf(&h);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = wait_bounded(&mut child);
        assert!(status.success(), "{sig}: {status}");
        assert!(gone(bpf), "bpftrace {bpf} outlived zonestat's {sig}");
    }
    // SIGKILL: zonestat cannot clean up, the kernel ends its child (PR_SET_PDEATHSIG).
    let (mut child, bpf) = start_inf(&h);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(gone(bpf), "bpftrace {bpf} outlived zonestat's SIGKILL");
    // bpftrace killed under zonestat: zonestat says so and fails, rather than print dashes.
    let (mut child, bpf) = start_inf(&h);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(bpf as i32), Signal::SIGKILL).unwrap();
    let status = wait_bounded(&mut child);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "zonestat: -r syscalls: bpftrace failed (signal: 9 (SIGKILL)): it printed nothing"
    );
}
