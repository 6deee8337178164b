//! The fault suite: zoneadm, zoneadmd and runz killed with SIGKILL at every step of install,
//! boot, halt, uninstall and container create; a zone supervisor killed; a power cut (every
//! process of the host killed, then `zoneadm boot-all`); 20 zoneadm commands at once on one
//! zone and on 20 zones.
//!
//! Steps are hit exactly through `ZONES_FAULT=VERB:STEP` (engine/src/fault.rs: the process SIGKILLs
//! itself at that point, as `kill -9` from outside would); the zoneadm client and the
//! supervisor are also killed from outside. After each fault: `zoneadm list` must tell the
//! truth, the next command must succeed (or say exactly why not), and once the zone is back at
//! rest nothing of the test's host may be left: mounts, cgroups, links, loop devices and
//! processes (`common::leaks`).
//!
//! Prints "faults: injected N, survived N, leaks 0" (straight to stderr, past the test
//! harness's capture).

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::leaks::{leaks, processes_under, Scope};
use common::require_root;
use common::zonehost::{bin, ZoneHost};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Every zoneadm/runz call is killed (and the test fails) after this long.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    injected: usize,
    survived: usize,
    leaks: usize,
}

/// A zone host with a busybox image imported as `bb` (overlay zones) and an etherstub the
/// zones' anets sit on.
struct Fh {
    h: ZoneHost,
    stub: String,
    zones: std::cell::RefCell<Vec<String>>,
}

impl std::ops::Deref for Fh {
    type Target = ZoneHost;
    fn deref(&self) -> &ZoneHost {
        &self.h
    }
}

impl Fh {
    fn new(tag: &str) -> Fh {
        let h = ZoneHost::new("faults", tag, true);
        h.ok(
            "imgadm",
            &[
                "import",
                "--rootfs",
                "--name",
                "bb",
                h.image.to_str().unwrap(),
            ],
        );
        let stub = h.link_name("rzf", "");
        h.ok("dladm", &["create-etherstub", &stub]);
        Fh {
            h,
            stub,
            zones: Default::default(),
        }
    }

    /// Configure `zone` (autoboot, one anet on the stub); install it from the image unless
    /// `install` is None, else with `-d` when `install` is Some(false).
    fn zone(&self, zone: &str, install: Option<bool>) {
        let k = self.zones.borrow().len() + 2;
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!(
                    "create; set zonepath=/zones/{zone}; set max-processes=100; \
                     set autoboot=true; add anet; set linkname=net0; \
                     set lower-link={}; set allowed-address=10.214.0.{k}/24; end",
                    self.stub
                ),
            ],
        );
        self.zones.borrow_mut().push(zone.to_string());
        match install {
            Some(true) => {
                self.ok("zoneadm", &["-z", zone, "install", "-i", "bb"]);
            }
            Some(false) => {
                let img = self.image.to_str().unwrap().to_string();
                self.ok("zoneadm", &["-z", zone, "install", "-d", &img]);
            }
            None => {}
        }
    }

    fn command(&self, prog: &str, args: &[&str], fault: Option<&str>) -> Command {
        let mut c = Command::new(bin(prog));
        c.arg("-R")
            .arg(&self.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .env_remove("ZONES_FAULT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(f) = fault {
            c.env("ZONES_FAULT", f);
        }
        c
    }

    /// Run zoneadm with `ZONES_FAULT=fault`, bounded in time.
    fn zoneadm_with(&self, fault: Option<&str>, args: &[&str]) -> Output {
        let child = self.command("zoneadm", args, fault).spawn().unwrap();
        wait_bounded(child, &format!("zoneadm {args:?} (fault {fault:?})"))
    }

    /// The leaks of this host (every zone it made, the stub's prefix excluded: it stays).
    fn leaks(&self) -> Vec<String> {
        let zones = self.zones.borrow();
        let scope = Scope {
            anets: zones.iter().map(|z| (z.as_str(), "net0")).collect(),
            link_prefix: None,
        };
        leaks(&self.h, &scope)
    }

    /// Wait (bounded) until `zone` shows `want`; returns the last state seen.
    fn wait_state(&self, zone: &str, want: &str) -> String {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let st = self.state(zone);
            if st == want || Instant::now() > until {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn supervisor_pid(&self, zone: &str) -> Option<i32> {
        std::fs::read_to_string(self.root.join(format!("run/zones/{zone}/zoneadmd.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Fh {
    fn drop(&mut self) {
        self.h.halt_all();
        if let Ok(mut nl) = zones_net::Netlink::open() {
            let _ = nl.delete_link(&self.stub);
        }
    }
}

/// Wait for `child` at most [`CMD_TIMEOUT`]; kill it and panic past that.
fn wait_bounded(mut child: Child, what: &str) -> Output {
    let until = Instant::now() + CMD_TIMEOUT;
    loop {
        match child.try_wait().unwrap() {
            Some(_) => return child.wait_with_output().unwrap(),
            None if Instant::now() > until => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: still running after {CMD_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The process killed itself at the fault point (SIGKILL), or failed because its zoneadmd did.
fn assert_killed(o: &Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what}: survived its fault: {}",
        text(o)
    );
    let by_signal = o.status.signal() == Some(libc::SIGKILL);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        by_signal || err.contains("zoneadmd of zone") || err.contains("control"),
        "{what}: failed, but not from the fault ({:?}): {err}",
        o.status
    );
}

/// What the host still holds once processes on their way out are gone: a supervisor
/// releases its lock (which halt waits for) a moment before its forked helpers finish
/// exiting, so a real leak is one still there after a bounded wait.
fn settled_leaks(f: &Fh) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let l = f.leaks();
        if l.is_empty() || Instant::now() >= until {
            return l;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The zone must be at rest and nothing of the host leaked.
fn assert_clean(f: &Fh, what: &str, t: &mut Tally) {
    let l = settled_leaks(f);
    t.leaks += l.len();
    assert!(l.is_empty(), "{what}: leaked:\n  {}", l.join("\n  "));
    t.survived += 1;
}

/// kill -9 (self-inflicted, at a named step) of zoneadm install and uninstall.
fn install_and_uninstall_faults(f: &Fh, t: &mut Tally) {
    for (i, point) in ["install:after-incomplete", "install:after-populate"]
        .iter()
        .enumerate()
    {
        for image in [true, false] {
            let z = format!("i{i}{}", if image { "i" } else { "d" });
            f.zone(&z, None);
            let img = f.image.to_str().unwrap().to_string();
            let args: Vec<&str> = if image {
                vec!["-z", &z, "install", "-i", "bb"]
            } else {
                vec!["-z", &z, "install", "-d", &img]
            };
            let o = f.zoneadm_with(Some(point), &args);
            t.injected += 1;
            assert_killed(&o, point);
            // An interrupted install never looks installed.
            assert_eq!(f.state(&z), "incomplete", "{point}");
            let e = String::from_utf8_lossy(&f.zoneadm_with(None, &["-z", &z, "boot"]).stderr)
                .into_owned();
            assert!(
                e.contains("is incomplete; it must be uninstalled"),
                "{point}: boot said {e}"
            );
            f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
            assert_eq!(f.state(&z), "configured", "{point}");
            f.ok("zoneadm", &args);
            assert_eq!(f.state(&z), "installed", "{point}");
            assert_clean(f, point, t);
            f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
        }
    }
    for point in ["uninstall:after-incomplete", "uninstall:after-destroy"] {
        let z = format!("u{}", point.len());
        f.zone(&z, Some(true));
        let o = f.zoneadm_with(Some(point), &["-z", &z, "uninstall", "-F"]);
        t.injected += 1;
        assert_killed(&o, point);
        assert_eq!(f.state(&z), "incomplete", "{point}");
        f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
        assert_eq!(f.state(&z), "configured", "{point}");
        assert!(!f.root.join(format!("zones/{z}")).exists(), "{point}");
        // The zonepath is free again: the zone installs and boots.
        f.ok("zoneadm", &["-z", &z, "install", "-i", "bb"]);
        f.ok("zoneadm", &["-z", &z, "boot"]);
        f.ok("zoneadm", &["-z", &z, "halt"]);
        f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
        assert_clean(f, point, t);
    }
}

/// kill -9 of zoneadmd at each step of starting a zone (and inside its container create).
fn boot_faults(f: &Fh, t: &mut Tally) {
    let points = [
        ("boot:after-lock", "installed"),
        ("boot:after-storage", "down"),
        ("boot:after-network", "down"),
        ("create:after-cgroup", "down"),
        ("create:after-fork", "down"),
        ("create:after-state", "down"),
        ("boot:after-create", "down"),
        ("boot:after-ready", "down"),
        ("boot:after-running", "down"),
    ];
    for (i, (point, truth)) in points.iter().enumerate() {
        let z = format!("b{i}");
        f.zone(&z, Some(true));
        let o = f.zoneadm_with(Some(point), &["-z", &z, "boot"]);
        t.injected += 1;
        assert_killed(&o, point);
        assert_eq!(f.state(&z), *truth, "{point}: zoneadm list");
        // The next boot cleans up after the dead supervisor and the zone runs.
        f.ok("zoneadm", &["-z", &z, "boot"]);
        assert_eq!(f.state(&z), "running", "{point}");
        assert_eq!(f.ok("zlogin", &[&z, "echo", "up"]).trim(), "up", "{point}");
        f.ok("zoneadm", &["-z", &z, "halt"]);
        assert_eq!(f.state(&z), "installed", "{point}");
        assert_clean(f, point, t);
        f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
    }
    // A zone killed half-way through boot is also halted (not booted) cleanly.
    let z = "bh";
    f.zone(z, Some(true));
    let o = f.zoneadm_with(Some("boot:after-create"), &["-z", z, "boot"]);
    t.injected += 1;
    assert_killed(&o, "boot:after-create, then halt");
    assert_eq!(f.state(z), "down");
    f.ok("zoneadm", &["-z", z, "halt"]);
    assert_eq!(f.state(z), "installed");
    assert_clean(f, "boot:after-create, then halt", t);
    f.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
}

/// kill -9 of zoneadmd at each step of a halt (the point travels in the supervisor's
/// environment from the boot that started it).
fn halt_faults(f: &Fh, t: &mut Tally) {
    for (i, point) in [
        "halt:after-kill",
        "halt:after-destroy",
        "halt:after-storage",
    ]
    .iter()
    .enumerate()
    {
        let z = format!("h{i}");
        f.zone(&z, Some(true));
        let o = f.zoneadm_with(Some(point), &["-z", &z, "boot"]);
        assert!(o.status.success(), "{point}: boot: {}", text(&o));
        assert_eq!(f.state(&z), "running");
        let o = f.zoneadm_with(None, &["-z", &z, "halt"]);
        t.injected += 1;
        // The supervisor died half-way through the halt: zoneadm notices and finishes
        // the work itself.
        assert!(o.status.success(), "{point}: halt: {}", text(&o));
        assert!(
            f.supervisor_pid(&z).is_none(),
            "{point}: zoneadmd.pid is left"
        );
        let again = f.zoneadm_with(None, &["-z", &z, "halt"]);
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("must be"),
            "{point}: a second halt: {}",
            text(&again)
        );
        assert_eq!(f.state(&z), "installed", "{point}");
        assert_clean(f, point, t);
        f.ok("zoneadm", &["-z", &z, "boot"]);
        f.ok("zoneadm", &["-z", &z, "halt"]);
        f.ok("zoneadm", &["-z", &z, "uninstall", "-F"]);
        let l = f.leaks();
        t.leaks += l.len();
        assert!(
            l.is_empty(),
            "{point}, then boot, halt, uninstall: leaked:\n  {}",
            l.join("\n  ")
        );
    }
}

/// kill -9 from outside: the zoneadm client mid-boot and mid-halt (its zoneadmd carries on),
/// and a running zone's supervisor.
fn outside_kills(f: &Fh, t: &mut Tally) {
    let z = "k";
    f.zone(z, Some(true));
    for verb in ["boot", "halt"] {
        let child = f
            .command("zoneadm", &["-z", z, verb], None)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(Duration::from_millis(2));
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = wait_bounded(child, verb);
        t.injected += 1;
        // The supervisor finishes what the client started, or never started: either way
        // the zone settles in a state list can tell.
        let want = if verb == "boot" {
            "running"
        } else {
            "installed"
        };
        let st = f.wait_state(z, want);
        if st != want {
            let other = if verb == "boot" {
                "installed"
            } else {
                "running"
            };
            assert_eq!(st, other, "zoneadm {verb} killed: zone is {st}");
            f.ok("zoneadm", &["-z", z, verb]);
        }
        t.survived += 1;
    }
    f.ok("zoneadm", &["-z", z, "boot"]);
    let pid = f.supervisor_pid(z).expect("zoneadmd.pid");
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    t.injected += 1;
    assert_eq!(f.wait_state(z, "down"), "down");
    // The zone's init outlived its supervisor: list says down; boot cleans up and boots.
    f.ok("zoneadm", &["-z", z, "boot"]);
    assert_eq!(f.state(z), "running");
    f.ok("zoneadm", &["-z", z, "halt"]);
    assert_clean(f, "zoneadmd killed", t);
    f.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
}

/// A power cut: every process of the host (supervisors and zones) killed at once, then
/// `zoneadm boot-all` as the host's startup would run it.
fn power_cut(f: &Fh, t: &mut Tally) {
    for z in ["p1", "p2", "p3"] {
        f.zone(z, Some(true));
        f.ok("zoneadm", &["-z", z, "boot"]);
    }
    f.ok("zonecfg", &["-z", "p3", "set autoboot=false"]);
    let root = std::fs::canonicalize(&f.root).unwrap();
    // Twice: a process forked while the first sweep ran is caught by the second.
    for _ in 0..2 {
        for (pid, _) in processes_under(&[&root, &f.root]) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    t.injected += 1;
    for z in ["p1", "p2", "p3"] {
        assert_eq!(f.wait_state(z, "down"), "down", "{z} after the power cut");
    }
    f.ok("zoneadm", &["boot-all"]);
    assert_eq!(f.state("p1"), "running");
    assert_eq!(f.state("p2"), "running");
    // Not autoboot: left down (its debris there) until someone halts it.
    assert_eq!(f.state("p3"), "down");
    assert_eq!(f.ok("zlogin", &["p2", "echo", "back"]).trim(), "back");
    for z in ["p1", "p2", "p3"] {
        f.ok("zoneadm", &["-z", z, "halt"]);
        assert_eq!(f.state(z), "installed");
    }
    assert_clean(f, "power cut", t);
    for z in ["p1", "p2", "p3"] {
        f.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
    }
}

/// kill -9 of `runz create` at each step (cgroup made, init forked, state saved): runz list
/// tells what is there, `runz delete --force` removes it, and nothing is left.
fn runz_create_faults(t: &mut Tally) {
    for point in [
        "create:after-cgroup",
        "create:after-fork",
        "create:after-state",
    ] {
        let b = common::Bundle::new("fault");
        b.write();
        let mut cmd = Command::new(common::runz_bin());
        cmd.arg("--root")
            .arg(&b.root)
            .args(["create", "--bundle", b.dir.to_str().unwrap(), &b.id])
            .env("ZONES_FAULT", point)
            // Not pipes: the half-made init (forked, never exec'd) would hold them open.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let o = wait_bounded(cmd.spawn().unwrap(), point);
        t.injected += 1;
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGKILL),
            "{point}: {}",
            text(&o)
        );
        let list = b.runz(&["list", "--format", "json"]);
        assert!(list.status.success(), "{point}: runz list: {}", text(&list));
        let listed = String::from_utf8_lossy(&list.stdout).into_owned();
        if point == "create:after-state" {
            // A complete create: the container is there, created, its init waiting.
            assert_eq!(b.state()["status"], "created", "{point}");
        } else {
            assert!(
                !listed.contains(&format!("\"{}\"", b.id)) || listed.contains("creating"),
                "{point}: runz list shows a half-made container as usable: {listed}"
            );
        }
        let d = b.runz(&["delete", "--force", &b.id]);
        assert!(d.status.success(), "{point}: delete --force: {}", text(&d));
        let mut left: Vec<String> = b
            .cgroup_dirs()
            .into_iter()
            .filter(|c| c.exists())
            .map(|c| format!("cgroup {}", c.display()))
            .collect();
        for (pid, why) in processes_under(&[b.dir.as_path(), Path::new(&b.root)]) {
            left.push(format!("process {pid} ({why})"));
        }
        for m in common::mounts_under(&b.dir) {
            left.push(format!("mount {}", m.display()));
        }
        if b.root.join(&b.id).exists() {
            left.push(format!("state dir {}", b.root.join(&b.id).display()));
        }
        t.leaks += left.len();
        assert!(left.is_empty(), "{point}: leaked:\n  {}", left.join("\n  "));
        // The id is free again.
        let r = b.run();
        assert!(r.status.success(), "{point}: run after: {}", text(&r));
        t.survived += 1;
    }
}

#[test]
fn kill_9_at_every_step_leaves_true_state_and_no_leaks() {
    if !require_root() {
        return;
    }
    let f = Fh::new("steps");
    let mut t = Tally::default();
    install_and_uninstall_faults(&f, &mut t);
    boot_faults(&f, &mut t);
    halt_faults(&f, &mut t);
    outside_kills(&f, &mut t);
    power_cut(&f, &mut t);
    runz_create_faults(&mut t);
    let _ = writeln!(
        std::io::stderr(),
        "faults: injected {}, survived {}, leaks {}",
        t.injected,
        t.survived,
        t.leaks
    );
    assert_eq!(t.survived, t.injected);
}

/// Run `args` as 20 zoneadm processes released together; their outputs.
fn twenty_at_once(f: &Fh, args: &[Vec<String>]) -> Vec<Output> {
    let gate = Arc::new(Barrier::new(args.len()));
    std::thread::scope(|s| {
        let handles: Vec<_> = args
            .iter()
            .map(|a| {
                let gate = gate.clone();
                let cmd = {
                    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                    f.command("zoneadm", &refs, None)
                };
                s.spawn(move || {
                    let mut cmd = cmd;
                    gate.wait();
                    wait_bounded(cmd.spawn().unwrap(), "zoneadm")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Every failure says which zone and why.
fn failures_are_clear(outs: &[Output], zone: &str, verb: &str) -> usize {
    let mut failed = 0;
    let mut seen = std::collections::BTreeSet::new();
    for o in outs.iter().filter(|o| !o.status.success()) {
        failed += 1;
        let e = String::from_utf8_lossy(&o.stderr);
        if seen.insert(e.trim().to_string()) {
            let _ = writeln!(std::io::stderr(), "  {verb} refused: {}", e.trim());
        }
        assert!(
            e.starts_with("zoneadm: ") && e.contains(&format!("'{zone}'")) && e.trim().len() > 20,
            "{verb}: an unclear failure: {e:?}"
        );
    }
    failed
}

#[test]
fn twenty_commands_on_one_zone() {
    if !require_root() {
        return;
    }
    let f = Fh::new("one");
    f.zone("c", Some(true));
    let boots = twenty_at_once(&f, &vec![argv(&["-z", "c", "boot"]); 20]);
    let failed = failures_are_clear(&boots, "c", "boot");
    assert_eq!(failed, 19, "exactly one boot wins");
    assert_eq!(f.state("c"), "running");
    assert_eq!(f.ok("zlogin", &["c", "echo", "one"]).trim(), "one");
    let halts = twenty_at_once(&f, &vec![argv(&["-z", "c", "halt"]); 20]);
    let halt_failed = failures_are_clear(&halts, "c", "halt");
    assert!(halt_failed < 20, "no halt succeeded");
    assert_eq!(f.state("c"), "installed");
    // A mix of every verb: whatever wins, the zone ends in a state list can tell, and the
    // next halt brings it to rest.
    let verbs = ["boot", "halt", "ready", "reboot", "list"];
    let mix: Vec<Vec<String>> = (0..20)
        .map(|i| match verbs[i % verbs.len()] {
            "list" => argv(&["list", "-cp"]),
            v => argv(&["-z", "c", v]),
        })
        .collect();
    let outs = twenty_at_once(&f, &mix);
    for (a, o) in mix.iter().zip(&outs) {
        if !o.status.success() {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(e.contains("'c'") && e.len() > 20, "{a:?}: unclear: {e:?}");
        }
    }
    let st = f.state("c");
    assert!(
        ["installed", "ready", "running"].contains(&st.as_str()),
        "after the mix: {st}"
    );
    if st != "installed" {
        f.ok("zoneadm", &["-z", "c", "halt"]);
    }
    assert_eq!(f.state("c"), "installed");
    let l = settled_leaks(&f);
    assert!(l.is_empty(), "leaked:\n  {}", l.join("\n  "));
    let _ = writeln!(
        std::io::stderr(),
        "concurrency (one zone): 20 boots, 1 won, {failed} refused; 20 halts, {} refused; \
         20 mixed; leaks 0",
        halt_failed
    );
}

#[test]
fn twenty_commands_on_twenty_zones() {
    if !require_root() {
        return;
    }
    let f = Fh::new("many");
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    for z in &names {
        f.zone(z, None);
    }
    for verb in ["install", "boot", "halt", "uninstall"] {
        let args: Vec<Vec<String>> = names
            .iter()
            .map(|z| match verb {
                "install" => argv(&["-z", z, "install", "-i", "bb"]),
                "uninstall" => argv(&["-z", z, "uninstall", "-F"]),
                v => argv(&["-z", z, v]),
            })
            .collect();
        let outs = twenty_at_once(&f, &args);
        for (a, o) in args.iter().zip(&outs) {
            assert!(o.status.success(), "{a:?}: {}", text(o));
        }
        let want = match verb {
            "install" | "halt" => "installed",
            "boot" => "running",
            _ => "configured",
        };
        let list = f.list();
        for z in &names {
            let e = list.iter().find(|e| &e[1] == z).unwrap();
            assert_eq!(e[2], want, "{z} after 20 parallel {verb}s");
        }
        if verb == "boot" {
            // Twenty distinct zone ids.
            let mut ids: Vec<&String> = list.iter().skip(1).map(|e| &e[0]).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 20, "zone ids: {list:?}");
        }
    }
    let l = f.leaks();
    assert!(l.is_empty(), "leaked:\n  {}", l.join("\n  "));
    let _ = writeln!(
        std::io::stderr(),
        "concurrency (20 zones): 20 installs, boots, halts, uninstalls at once; leaks 0"
    );
}
