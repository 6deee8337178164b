//! Resource caps of zones, enforced and measured: capped-memory (OOM inside the zone only),
//! max-lwps (a bounded fork bomb stops at the cap), capped-cpu (a busy loop gets at most its
//! share of CPU time), cpu-shares (two zones on one contended CPU split it about 2:1), live
//! re-capping (`zoneadm apply`, `zonecfg -r`) and zonestat's numbers against the cgroup files.
//!
//! Each test has its own alternate root (-R) under /var/tmp/runz-tests and puts its zone
//! cgroups beneath the test process's own cgroup. The same tests run on cgroup v1 (this host)
//! and on pure cgroup v2 (in the qemu guest of integration/vm/run.sh); the helpers below read
//! each counter from the file of the hierarchy in use. CPU figures are CPU time the kernel accounted
//! to the zone's cgroup (cpuacct / cpu.stat) divided by the wall time of the same window: an
//! enforcement measurement with wide margins, not a timing race.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::ZoneHost;

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("caps", tag, true))
    }

    /// Configure (with the extra zonecfg commands `cfg`), install and boot `zone`.
    fn boot(&self, zone: &str, cfg: &str) {
        self.boot_zone(zone, cfg);
    }

    /// The host directory of `zone`'s cgroup in the v1 hierarchy of `controller` (or the
    /// unified one for "").
    fn cgroup_dir(&self, zone: &str, controller: &str) -> PathBuf {
        self.parent_dir(if v2() { "" } else { controller })
            .join(zone)
    }

    fn parent_dir(&self, controller: &str) -> PathBuf {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, ctrls, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            let path = path.unwrap().trim_start_matches('/');
            let hit = if controller.is_empty() {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == controller)
            };
            if hit {
                let mount = if controller.is_empty() {
                    if Path::new("/sys/fs/cgroup/unified").is_dir() {
                        PathBuf::from("/sys/fs/cgroup/unified")
                    } else {
                        PathBuf::from("/sys/fs/cgroup")
                    }
                } else {
                    Path::new("/sys/fs/cgroup").join(ctrls)
                };
                return mount.join(path).join(&self.cgroup_parent);
            }
        }
        panic!("no cgroup hierarchy with {controller:?}");
    }

    fn cg_read(&self, zone: &str, controller: &str, file: &str) -> String {
        let p = self.cgroup_dir(zone, controller).join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    fn cg_u64(&self, zone: &str, controller: &str, file: &str) -> u64 {
        let text = self.cg_read(zone, controller, file);
        text.parse()
            .unwrap_or_else(|_| panic!("{file} of {zone}: {text:?} is not a number"))
    }

    /// A `key value` line of a flat-keyed cgroup file (memory.oom_control, pids.events, cpu.stat).
    fn cg_key(&self, zone: &str, controller: &str, file: &str, key: &str) -> u64 {
        let text = self.cg_read(zone, controller, file);
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{file} of {zone} has no {key}: {text}"))
    }

    /// CPU nanoseconds the zone's cgroup has used.
    fn cpu_ns(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_key(zone, "", "cpu.stat", "usage_usec") * 1000
        } else {
            self.cg_u64(zone, "cpuacct", "cpuacct.usage")
        }
    }

    /// The memory cap in bytes (u64::MAX for none): v2 memory.max, v1 memory.limit_in_bytes.
    fn mem_limit(&self, zone: &str) -> u64 {
        if v2() {
            match self.cg_read(zone, "", "memory.max").as_str() {
                "max" => u64::MAX,
                _ => self.cg_u64(zone, "", "memory.max"),
            }
        } else {
            self.cg_u64(zone, "memory", "memory.limit_in_bytes")
        }
    }

    /// Memory in use, bytes: v2 memory.current, v1 memory.usage_in_bytes.
    fn mem_usage(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_u64(zone, "", "memory.current")
        } else {
            self.cg_u64(zone, "memory", "memory.usage_in_bytes")
        }
    }

    /// The most memory ever in use: v2 memory.peak, v1 memory.max_usage_in_bytes.
    fn mem_peak(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_u64(zone, "", "memory.peak")
        } else {
            self.cg_u64(zone, "memory", "memory.max_usage_in_bytes")
        }
    }

    /// How often the memory cap was hit: v2 memory.events max, v1 memory.failcnt.
    fn mem_failcnt(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_key(zone, "", "memory.events", "max")
        } else {
            self.cg_u64(zone, "memory", "memory.failcnt")
        }
    }

    /// OOM kills in the zone: the oom_kill line of v2 memory.events or v1 memory.oom_control.
    fn oom_kills(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_key(zone, "", "memory.events", "oom_kill")
        } else {
            self.cg_key(zone, "memory", "memory.oom_control", "oom_kill")
        }
    }

    /// The CFS quota and period, µs: v2 cpu.max "QUOTA PERIOD", v1 cpu.cfs_quota_us/period_us.
    fn cpu_quota_period(&self, zone: &str) -> (String, String) {
        if v2() {
            let text = self.cg_read(zone, "", "cpu.max");
            let (q, p) = text
                .split_once(' ')
                .unwrap_or_else(|| panic!("cpu.max {text:?}"));
            (q.to_string(), p.to_string())
        } else {
            (
                self.cg_read(zone, "cpu", "cpu.cfs_quota_us"),
                self.cg_read(zone, "cpu", "cpu.cfs_period_us"),
            )
        }
    }

    /// The CPU weight of the zone: v2 cpu.weight, v1 cpu.shares.
    fn cpu_weight(&self, zone: &str) -> u64 {
        if v2() {
            self.cg_u64(zone, "", "cpu.weight")
        } else {
            self.cg_u64(zone, "cpu", "cpu.shares")
        }
    }
}

/// Whether the caps live in a pure cgroup v2 hierarchy (the qemu guest) rather than v1.
fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The fraction of one CPU the zone used over `window`, from its cgroup's CPU time.
fn cpu_fraction(h: &Host, zone: &str, window: Duration) -> f64 {
    let (u0, t0) = (h.cpu_ns(zone), Instant::now());
    std::thread::sleep(window);
    let (u1, t1) = (h.cpu_ns(zone), Instant::now());
    (u1 - u0) as f64 / (t1 - t0).as_nanos() as f64
}

/// Start an endless busy loop in `zone`, detached from zlogin (killed with the zone).
fn start_busy_loop(h: &Host, zone: &str, pin: Option<u32>) {
    let lp = "while :; do :; done";
    let cmd = match pin {
        Some(cpu) => format!("taskset -c {cpu} sh -c '{lp}' </dev/null >/dev/null 2>&1 &"),
        None => format!("sh -c '{lp}' </dev/null >/dev/null 2>&1 &"),
    };
    h.ok("zlogin", &[zone, &cmd]);
}

#[test]
fn a_memory_cap_oom_kills_inside_the_zone_only() {
    if !require_root() {
        return;
    }
    let h = Host::new("mem");
    h.boot(
        "m",
        "add capped-memory; set physical=64m; set locked=4m; end",
    );
    // capped-memory locked is init's RLIMIT_MEMLOCK.
    let limits = h.ok("zlogin", &["m", "grep 'locked memory' /proc/1/limits"]);
    assert_eq!(
        limits.split_whitespace().nth(3),
        Some("4194304"),
        "init's memlock limit: {limits}"
    );
    assert_eq!(h.mem_limit("m"), 64 << 20, "the cap is the cgroup's limit");
    if v2() {
        // memory.high a sixteenth below the cap: reclaim and throttling before the OOM killer.
        assert_eq!(h.cg_u64("m", "", "memory.high"), (64 << 20) - (4 << 20));
    }
    // awk holds 256 strings of 1 MiB each: 256 MiB of anonymous memory.
    let alloc = "awk 'BEGIN { s = sprintf(\"%1048576s\", \"\"); \
                 for (i = 0; i < 256; i++) a[i] = s i; print \"allocated\" }'; echo rc=$?";
    let out = h.cmd("zlogin", &["m", alloc]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("allocated"),
        "256 MiB fit under a 64 MiB cap: {text}"
    );
    assert!(
        text.contains("rc=137"),
        "the allocator was not SIGKILLed: {text}"
    );
    assert!(h.oom_kills("m") >= 1);
    assert!(h.mem_peak("m") <= 64 << 20);
    // The zone's init and the zone survive; so does this (host) process, obviously.
    assert_eq!(h.state("m"), "running");
    assert_eq!(h.ok("zlogin", &["m", "cat /proc/1/comm"]), "init\n");
}

#[test]
fn max_lwps_stops_a_fork_bomb_and_the_zone_stays_usable() {
    if !require_root() {
        return;
    }
    let h = Host::new("pids");
    h.boot("p", "set max-lwps=64");
    assert_eq!(h.cg_read("p", "pids", "pids.max"), "64");
    // A bounded fork bomb: 200 sleepers wanted, forks fail at the cap. The count uses shell
    // builtins only (a glob), as no fork is possible while the cap is reached.
    let bomb = "(i=0; while [ $i -lt 200 ]; do sleep 600 </dev/null >/dev/null 2>&1 & \
                i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo tasks=$#";
    let out = h.cmd("zlogin", &["p", bomb]);
    let text = String::from_utf8_lossy(&out.stdout);
    let tasks: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("tasks="))
        .unwrap_or_else(|| panic!("no count: {text}"))
        .parse()
        .unwrap();
    eprintln!("max-lwps 64: the fork bomb stopped at {tasks} tasks");
    assert!(
        (50..=64).contains(&tasks),
        "the zone holds {tasks} tasks under max-lwps=64"
    );
    assert!(h.cg_u64("p", "pids", "pids.current") <= 64);
    assert!(
        h.cg_key("p", "pids", "pids.events", "max") >= 1,
        "no fork was refused"
    );
    // Kill the sleepers (kill -1 spares init and the caller); the zone works again.
    let _ = h.cmd("zlogin", &["p", "kill -9 -1"]);
    let mut current = u64::MAX;
    common::wait_until(|| {
        current = h.cg_u64("p", "pids", "pids.current");
        current < 10
    });
    assert!(current < 10, "{current} tasks left after kill -1");
    assert_eq!(h.ok("zlogin", &["p", "echo $((6*7))"]), "42\n");
    assert_eq!(h.state("p"), "running");
}

#[test]
fn capped_cpu_holds_a_busy_loop_to_its_cap() {
    if !require_root() {
        return;
    }
    let h = Host::new("cpu");
    h.boot("c", "add capped-cpu; set ncpus=0.5; end");
    assert_eq!(
        h.cpu_quota_period("c"),
        ("50000".to_string(), "100000".to_string())
    );
    start_busy_loop(&h, "c", None);
    let used = cpu_fraction(&h, "c", Duration::from_secs(3));
    eprintln!("capped-cpu 0.5: the busy loop used {used:.3} CPU");
    assert!(used <= 0.6, "a zone capped at 0.5 CPU used {used:.2} CPU");
    assert!(used >= 0.2, "the busy loop hardly ran ({used:.2} CPU)");
    // The cap, not a busy machine, held it back: throttled. (On a host so loaded that the loop
    // never reaches its quota there is nothing to throttle, and nothing to check here.)
    if used > 0.4 {
        assert!(h.cg_key("c", "cpu", "cpu.stat", "nr_throttled") > 0);
    }
}

#[test]
fn cpu_shares_split_a_contended_cpu_two_to_one() {
    if !require_root() {
        return;
    }
    let h = Host::new("shares");
    h.boot("big", "set cpu-shares=200");
    h.boot("small", "set cpu-shares=100");
    let (b, s) = (h.cpu_weight("big"), h.cpu_weight("small"));
    assert_eq!(b, 2 * s, "cpu weights {b} and {s}");
    // Both loops on CPU 0, so they compete for it.
    start_busy_loop(&h, "big", Some(0));
    start_busy_loop(&h, "small", Some(0));
    let (b0, s0) = (h.cpu_ns("big"), h.cpu_ns("small"));
    std::thread::sleep(Duration::from_secs(3));
    let (b1, s1) = (h.cpu_ns("big"), h.cpu_ns("small"));
    let ratio = (b1 - b0) as f64 / (s1 - s0).max(1) as f64;
    eprintln!("cpu-shares 200:100 on CPU 0: {ratio:.2}:1");
    assert!(
        (1.4..=2.8).contains(&ratio),
        "shares 200:100 split CPU 0 {ratio:.2}:1 ({} vs {} ns)",
        b1 - b0,
        s1 - s0
    );
}

#[test]
fn live_recapping_takes_effect_persists_and_survives_reboot() {
    if !require_root() {
        return;
    }
    let h = Host::new("live");
    h.boot("l", "add capped-memory; set physical=64m; end");
    let limit = || h.mem_limit("l");
    let stored = || h.ok("zonecfg", &["-z", "l", "info capped-memory"]);
    assert_eq!(limit(), 64 << 20);
    // zonecfg -r: raise, in force at once and on disk.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "l",
            "-r",
            "select capped-memory; set physical=128m; end; commit",
        ],
    );
    assert_eq!(limit(), 128 << 20);
    assert!(stored().contains("128M"), "{}", stored());
    // A plain zonecfg changes only the configuration; zoneadm apply brings it into force.
    h.ok(
        "zonecfg",
        &["-z", "l", "select capped-memory; set physical=96m; end"],
    );
    assert_eq!(limit(), 128 << 20);
    h.ok("zoneadm", &["-z", "l", "apply"]);
    assert_eq!(limit(), 96 << 20);
    // Lower it live, and the process cap too.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "l",
            "-r",
            "select capped-memory; set physical=48m; end; set max-lwps=100",
        ],
    );
    assert_eq!(limit(), 48 << 20);
    assert_eq!(h.cg_read("l", "pids", "pids.max"), "100");
    // A cap below what the zone uses (32 MiB of unswappable tmpfs) is refused by the kernel:
    // the error is reported, the old cap stays in force and on disk.
    h.ok(
        "zlogin",
        &[
            "l",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null",
        ],
    );
    let err = h.fails(
        "zonecfg",
        &[
            "-z",
            "l",
            "-r",
            "select capped-memory; set physical=16m; end",
        ],
    );
    eprintln!("refused: {err}");
    assert!(err.contains("not committed"), "{err}");
    assert_eq!(limit(), 48 << 20);
    assert!(stored().contains("48M"), "{}", stored());
    h.ok("zlogin", &["l", "rm /dev/shm/fill"]);
    // The caps survive a reboot.
    h.ok("zoneadm", &["-z", "l", "reboot"]);
    assert_eq!(limit(), 48 << 20);
    assert_eq!(h.cg_read("l", "pids", "pids.max"), "100");
    // Removing the cap lifts it in the running zone.
    h.ok("zonecfg", &["-z", "l", "-r", "remove capped-memory"]);
    assert!(limit() > 1 << 40, "the memory cap is still {}", limit());
    // zoneadm apply needs a live zone.
    h.ok("zoneadm", &["-z", "l", "halt"]);
    let err = h.fails("zoneadm", &["-z", "l", "apply"]);
    assert!(err.contains("installed"), "{err}");
}

#[test]
fn zonestat_reports_usage_and_caps_from_the_cgroup_files() {
    if !require_root() {
        return;
    }
    let h = Host::new("stat");
    h.boot(
        "s1",
        "add capped-memory; set physical=64m; end; add capped-cpu; set ncpus=0.5; end; \
         set max-lwps=50",
    );
    h.boot("s2", "");
    // Reach s1's memory cap once, so zonestat has a hit and an OOM kill to show.
    let _ = h.cmd(
        "zlogin",
        &["s1", "awk 'BEGIN { s = sprintf(\"%1048576s\", \"\"); for (i = 0; i < 128; i++) a[i] = s i }'"],
    );
    let out = h.ok("zonestat", &["-j", "1", "1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one report: {out}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let zones = report["zones"].as_array().unwrap();
    let names: Vec<&str> = zones
        .iter()
        .map(|z| z["zonename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    let s1 = &zones[0];
    let (quota, period) = h.cpu_quota_period("s1");
    let (quota, period): (f64, f64) = (quota.parse().unwrap(), period.parse().unwrap());
    assert_eq!(s1["cpu"]["cap"].as_f64(), Some(quota / period));
    assert_eq!(
        s1["physical-memory"]["cap"].as_u64(),
        Some(h.mem_limit("s1"))
    );
    assert_eq!(
        s1["physical-memory"]["failcnt"].as_u64(),
        Some(h.mem_failcnt("s1"))
    );
    assert!(
        s1["physical-memory"]["failcnt"].as_u64().unwrap() > 0,
        "the cap was reached"
    );
    assert_eq!(
        s1["physical-memory"]["oom_kills"].as_u64(),
        Some(h.oom_kills("s1"))
    );
    assert_eq!(
        s1["lwps"]["cap"].as_u64().map(|c| c.to_string()),
        Some(h.cg_read("s1", "pids", "pids.max"))
    );
    for (z, name) in zones.iter().zip(["s1", "s2"]) {
        // The zones are idle: the task count is stable, memory use nearly so.
        assert_eq!(
            z["lwps"]["used"].as_u64(),
            Some(h.cg_u64(name, "pids", "pids.current"))
        );
        let used = z["physical-memory"]["used"].as_u64().unwrap();
        let file = h.mem_usage(name);
        assert!(
            used.abs_diff(file) <= (1 << 20).max(file / 4),
            "{name}: zonestat says {used} bytes, the cgroup {file}"
        );
        let cpu = z["cpu"]["used"].as_f64().unwrap();
        assert!(
            (0.0..0.5).contains(&cpu),
            "{name} is idle but used {cpu} CPU"
        );
    }
    let s2 = &zones[1];
    assert!(s2["cpu"]["cap"].is_null() && s2["physical-memory"]["cap"].is_null());
    assert!(s2["lwps"]["cap"].is_null());
    // -p, illumos's layout: a header, interval:summary:ZONE:cpu-used:%part:%cap:%shru:
    // mem-used:pct:%cap:vm-used:pct:%cap for [total], [system] and the zones, a footer.
    let out = h.ok("zonestat", &["-p", "-z", "s1", "1", "1"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(':').collect()).collect();
    assert_eq!(
        lines[0][..3],
        ["interval", "header", "since-last-interval"],
        "{out}"
    );
    assert_eq!(lines.last().unwrap()[..], ["interval", "footer"], "{out}");
    let rows: Vec<&str> = lines[1..lines.len() - 1].iter().map(|f| f[2]).collect();
    assert_eq!(
        rows,
        ["[total]", "[system]", "s1"],
        "-z s1 leaves global out: {out}"
    );
    let f = &lines[3];
    assert_eq!(f.len(), 13, "{out}");
    assert!(
        f[5].ends_with('%') && f[9].ends_with('%'),
        "s1 has CPU and memory caps: {out}"
    );
    assert_eq!(f[12], "-", "s1 has no swap cap: {out}");
    // The default report: [total], [system], the global zone and a line per zone.
    let out = h.ok("zonestat", &["1", "1"]);
    eprintln!("{out}");
    assert!(out.contains("SUMMARY"), "{out}");
    for row in ["[total]", "[system]", "global", "s1", "s2"] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(row)),
            "no {row} row: {out}"
        );
    }
    let prom = h.ok("zonestat", &["--prometheus"]);
    assert!(
        prom.contains("zone_memory_cap_bytes{zone=\"s1\"} 67108864\n"),
        "{prom}"
    );
    assert!(prom.contains("zone_lwps_cap{zone=\"s1\"} 50\n"), "{prom}");
    // -r: resources by their illumos names, LABEL:RESOURCE:RESNAME:ZONE:USED:PCT:CAP:%CAP.
    let out = h.ok(
        "zonestat",
        &[
            "-p",
            "-P",
            "zones",
            "-z",
            "s1",
            "-r",
            "lwps,physical-memory",
            "1",
            "1",
        ],
    );
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split(':').collect()).collect();
    assert_eq!(lines.len(), 2, "-P zones: only the zones' lines: {out}");
    assert_eq!(
        lines[0][..4],
        ["interval", "physical-memory", "mem_default", "s1"],
        "{out}"
    );
    assert_eq!(lines[0][6], "67108864", "{out}");
    assert_eq!(
        lines[1][..4],
        ["interval", "lwps", "system-limit", "s1"],
        "{out}"
    );
    assert_eq!(lines[1][6], "50", "{out}");
    let out = h.ok("zonestat", &["-j", "-r", "processor-set", "1", "1"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let s1 = &report["zones"][0];
    assert_eq!(s1["cpu"]["cap"].as_f64(), Some(0.5), "{out}");
    assert!(
        s1["physical-memory"].is_null() && s1["lwps"].is_null(),
        "{out}"
    );
    let out = h.ok("zonestat", &["-r", "lwps", "-z", "s1", "1", "1"]);
    assert!(
        out.lines().any(|l| l.starts_with("LWPS")) && !out.contains("SUMMARY"),
        "{out}"
    );
    let err = h.fails("zonestat", &["-r", "disks", "1", "1"]);
    assert!(err.contains("-r \"disks\": unknown resource"), "{err}");
    // The Prometheus exporter on a loopback port answers every scrape with fresh numbers.
    let metrics = scrape_exporter(&h);
    assert!(
        metrics.contains("zone_memory_cap_bytes{zone=\"s1\"} 67108864\n"),
        "{metrics}"
    );
    assert!(metrics.contains("zone_lwps{zone=\"s2\"} "), "{metrics}");
    let err = h.fails("zonestat", &["--prometheus", "--listen", "0.0.0.0:9154"]);
    assert!(err.contains("only a loopback address"), "{err}");
    // Bad input.
    let err = h.fails("zonestat", &["0"]);
    assert!(err.contains("interval \"0\""), "{err}");
    let err = h.fails("zonestat", &["-z", "nope", "1", "1"]);
    assert!(err.contains("nope: No such zone configured"), "{err}");
}

/// zonestat's operands and options as zonestat(8) has them: duration counts intervals,
/// -R prints summary reports, -q only those, --root is the alternate root, -T, -S, -n, -P.
#[test]
fn zonestat_operands_and_options_are_illumos() {
    if !require_root() {
        return;
    }
    let h = Host::new("stato");
    h.boot("o1", "add capped-memory; set physical=64m; end");
    h.boot("o2", "");
    let count = |out: &str, pat: &str| out.lines().filter(|l| l.starts_with(pat)).count();
    // `zonestat 1 3`: three interval reports (the duration counts intervals).
    let out = h.ok("zonestat", &["1", "3"]);
    assert_eq!(count(&out, "Interval: "), 3, "{out}");
    assert_eq!(count(&out, "SUMMARY"), 3, "{out}");
    // -R total,high: the summary reports at the end, after the interval reports.
    let out = h.ok("zonestat", &["-R", "total,high", "1", "2"]);
    assert_eq!(count(&out, "Interval: "), 2, "{out}");
    assert_eq!(count(&out, "REPORT: Total Usage"), 1, "{out}");
    assert_eq!(count(&out, "REPORT: High Usage"), 1, "{out}");
    assert_eq!(count(&out, "REPORT: Average Usage"), 0, "{out}");
    // -q: only the summary reports; a report operand of 1 makes one per interval.
    let out = h.ok("zonestat", &["-q", "-R", "average", "1", "2", "1"]);
    assert_eq!(count(&out, "Interval: "), 0, "{out}");
    assert_eq!(count(&out, "REPORT: Average Usage"), 2, "{out}");
    let err = h.fails("zonestat", &["-q", "1", "1"]);
    assert!(err.contains("-q requires -R"), "{err}");
    // Usage errors exit 2, as zonestat(8) has it.
    for args in [
        &["-q", "1", "1"][..],
        &["-R", "most", "1", "1"],
        &["0"],
        &["-S", "x", "1"],
    ] {
        let out = h.cmd("zonestat", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let err = h.fails("zonestat", &["1", "1", "1"]);
    assert!(err.contains("requires -R"), "{err}");
    // Parsable summary reports: report-high lines between their header and footer.
    let out = h.ok("zonestat", &["-p", "-R", "high", "-z", "o1", "1", "1"]);
    assert_eq!(count(&out, "report-high:header:"), 1, "{out}");
    assert_eq!(count(&out, "report-high:summary:o1:"), 1, "{out}");
    assert_eq!(count(&out, "report-high:footer"), 1, "{out}");
    // --root: `zonestat --root A -p 1 3` prints three reports.
    use std::process::{Command, Stdio};
    let run = |args: &[&str]| {
        let out = Command::new(common::zonehost::bin("zonestat"))
            .arg("--root")
            .arg(&h.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let out = run(&["-p", "1", "3"]);
    assert_eq!(count(&out, "interval:header:"), 3, "{out}");
    assert_eq!(count(&out, "interval:summary:o2:"), 3, "{out}");
    // ^C prints the summary reports of the intervals so far (illumos zonestat's NOTES).
    // ^C once two interval reports are out (read as they come: a loaded machine may start
    // zonestat late); the summary covers exactly the intervals printed.
    let mut child = Command::new(common::zonehost::bin("zonestat"))
        .arg("--root")
        .arg(&h.root)
        .args(["-R", "total", "1"])
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if line.starts_with("Interval: ") {
                let _ = tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let text = reader.join().unwrap();
    assert!(status.success(), "{status:?}: {text}");
    assert_eq!(count(&text, "REPORT: Total Usage"), 1, "{text}");
    let printed = count(&text, "Interval: ");
    assert!(printed >= 2, "{text}");
    assert!(
        text.contains(&format!("    Intervals: {printed},")),
        "{text}"
    );
    // -T u and i prefix each parsable line; d is refused with -p.
    let out = run(&["-p", "-T", "i", "-P", "zones", "-z", "o1", "1", "1"]);
    let line = out.lines().next().unwrap_or_default();
    let stamp = line.split(':').next().unwrap();
    assert!(
        stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
        "{out}"
    );
    assert!(line.contains(":interval:summary:o1:"), "{out}");
    let err = h.fails("zonestat", &["-p", "-T", "d", "1", "1"]);
    assert!(err.contains("-T d is not valid with -p"), "{err}");
    // -S name: zones in name order; -P zones leaves out [total] and [system].
    let out = run(&["-p", "-P", "zones", "-S", "name", "1", "1"]);
    let zones: Vec<&str> = out.lines().map(|l| l.split(':').nth(2).unwrap()).collect();
    assert_eq!(zones, ["global", "o1", "o2"], "{out}");
    // -n: only the resources of that name.
    let out = run(&["-p", "-r", "memory", "-n", "vm_default", "1", "1"]);
    assert!(out.contains(":virtual-memory:vm_default:o1:"), "{out}");
    assert!(!out.contains(":physical-memory:"), "{out}");
}

/// The zone's block I/O weight as (file, value): v1 blkio.weight or blkio.bfq.weight, v2
/// io.bfq.weight or io.weight (whichever the kernel offers; v2 files read "default N").
fn io_weight(h: &Host, zone: &str) -> (&'static str, u64) {
    let files: &[&'static str] = if v2() {
        &["io.bfq.weight", "io.weight"]
    } else {
        &["blkio.weight", "blkio.bfq.weight"]
    };
    let dir = h.cgroup_dir(zone, "blkio");
    let file = files
        .iter()
        .copied()
        .find(|f| dir.join(f).exists())
        .unwrap_or_else(|| panic!("no I/O weight file in {}", dir.display()));
    let text = h.cg_read(zone, "blkio", file);
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("default ").or(Some(l)))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{file}: {text:?}"));
    (file, value)
}

/// Whether this kernel takes a block I/O weight, read independently of the zone tools: v1
/// needs the BFQ (or the old CFQ) scheduler on some device, v2 BFQ or the io.cost model.
fn kernel_takes_io_weight() -> bool {
    let scheds = common::block_schedulers();
    let sched = |s: &str| {
        scheds
            .split_whitespace()
            .any(|w| w.trim_matches(['[', ']']) == s)
    };
    if v2() {
        sched("bfq") || Path::new("/sys/fs/cgroup/io.cost.qos").exists()
    } else {
        sched("bfq") || sched("cfq")
    }
}

const IO_PRIORITY_200: &str = "add rctl; set name=zone.zfs-io-priority; \
     add value (priv=privileged,limit=200,action=none); end";

#[test]
fn io_priority_is_the_block_io_weight_and_changes_live() {
    if !require_root() {
        return;
    }
    let h = Host::new("io");
    if !kernel_takes_io_weight() {
        io_priority_is_refused_where_the_kernel_has_no_weight(&h);
        return;
    }
    h.boot("io", IO_PRIORITY_200);
    // Priority 200 is twice the default 100: OCI weight 1000, which v2's io.weight gets as
    // 10000 (runc's conversion) and the BFQ files as is.
    let (file, weight) = io_weight(&h, "io");
    let expect = |oci: u64| {
        if file == "io.weight" {
            1 + (oci - 10) * 9999 / 990
        } else {
            oci
        }
    };
    assert_eq!(weight, expect(1000), "{file}");
    h.ok(
        "zonecfg",
        &[
            "-z",
            "io",
            "-r",
            "select rctl name=zone.zfs-io-priority; clear value; \
             add value (priv=privileged,limit=50,action=none); end",
        ],
    );
    assert_eq!(io_weight(&h, "io"), (file, expect(250)));
    let stored = h.ok("zonecfg", &["-z", "io", "info rctl"]);
    assert!(stored.contains("limit=50"), "{stored}");
}

/// This kernel has no I/O weight (no BFQ, no io.cost): the priority is refused by verify,
/// boot and the live paths, each naming the missing files and the scheduler to enable, and
/// a refused live change leaves the zone's other caps and its stored configuration alone.
fn io_priority_is_refused_where_the_kernel_has_no_weight(h: &Host) {
    let missing = if v2() {
        "io.weight or io.bfq.weight"
    } else {
        "blkio.weight or blkio.bfq.weight"
    };
    let says_why = |e: &str| {
        assert!(e.contains("rctl zone.zfs-io-priority"), "{e}");
        assert!(e.contains(missing), "{e}");
        assert!(
            e.contains("echo bfq > /sys/block/DEV/queue/scheduler"),
            "{e}"
        );
    };
    // zonecfg stores it (the configuration may be meant for another host) ...
    h.ok(
        "zonecfg",
        &[
            "-z",
            "io",
            &format!("create; set zonepath=/zones/io; {IO_PRIORITY_200}"),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "io", "install", "-d", h.image.to_str().unwrap()],
    );
    // ... verify and boot refuse it, and the zone stays installed with nothing running.
    says_why(&h.fails("zoneadm", &["-z", "io", "verify"]));
    says_why(&h.fails("zoneadm", &["-z", "io", "boot"]));
    assert_eq!(h.state("io"), "installed");
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );
    // A running zone without it: adding it live is refused, nothing half-applied (the
    // memory cap of the same change is not applied either), nothing saved.
    h.ok(
        "zonecfg",
        &["-z", "io", "remove rctl name=zone.zfs-io-priority"],
    );
    h.ok("zoneadm", &["-z", "io", "boot"]);
    let before = h.cg_read(
        "io",
        "memory",
        if v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    );
    says_why(&h.fails(
        "zonecfg",
        &[
            "-z",
            "io",
            "-r",
            &format!("add capped-memory; set physical=100m; end; {IO_PRIORITY_200}"),
        ],
    ));
    let after = h.cg_read(
        "io",
        "memory",
        if v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    );
    assert_eq!(
        before, after,
        "the memory cap of the refused change was applied"
    );
    let stored = h.ok("zonecfg", &["-z", "io", "info"]);
    assert!(!stored.contains("zfs-io-priority"), "{stored}");
    assert!(!stored.contains("capped-memory"), "{stored}");
    assert_eq!(h.state("io"), "running");
}

/// The throttle lines of `zone`'s cgroup for device `devno` (`MAJ:MIN`): v1's
/// blkio.throttle.write_bps_device line, v2's io.max line ("" when there is none).
fn io_throttle(h: &Host, zone: &str, devno: &str) -> String {
    let file = if v2() {
        "io.max"
    } else {
        "blkio.throttle.write_bps_device"
    };
    let text = h.cg_read(zone, "blkio", file);
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(devno))
        .unwrap_or("")
        .to_string()
}

#[test]
fn capped_io_throttles_writes_to_a_device_and_changes_live() {
    if !require_root() {
        return;
    }
    let h = Host::new("iocap");
    // Bad input is refused with the offending value, before anything is made.
    let bad = h.fails(
        "zonecfg",
        &[
            "-z",
            "iobad",
            "create; set zonepath=/zones/iobad; add capped-io; set device=/dev/null; \
             set wbps=1m; end; commit",
        ],
    );
    assert!(
        bad.contains("capped-io device=/dev/null: not a block device"),
        "{bad}"
    );
    let bad = h.fails(
        "zonecfg",
        &["-z", "iobad", "create; add capped-io; set wbps=12x"],
    );
    assert!(
        bad.contains("capped-io wbps \"12x\": expected a size"),
        "{bad}"
    );

    let lo = common::cowfs::LoopDev::new(64 << 20);
    let dev = lo.dev.to_str().unwrap();
    let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(dev).unwrap());
    let devno = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    h.boot(
        "io",
        &format!(
            "add device; set match={dev}; end; \
             add capped-io; set device={dev}; set wbps=1m; end"
        ),
    );
    let line = io_throttle(&h, "io", &devno);
    if v2() {
        assert!(line.contains("wbps=1048576"), "io.max: {line:?}");
    } else {
        assert_eq!(line, format!("{devno} 1048576"));
    }
    let info = h.ok("zonecfg", &["-z", "io", "info capped-io"]);
    let export = h.ok("zonecfg", &["-z", "io", "export"]);
    assert!(
        export.contains(&format!(
            "add capped-io\nset device={dev}\nset wbps=1M\nend\n"
        )),
        "{export}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&h.ok("zonecfg", &["-z", "io", "export", "-j"])).unwrap();
    assert_eq!(json["capped-io"][0]["wbps"], "1M", "{json}");
    assert!(
        info.contains(&format!("device: {dev}")) && info.contains("wbps: 1M"),
        "{info}"
    );

    // 4 MiB of direct writes at 1 MiB/s take about 4 s (the throttle lets a first slice
    // through at once); uncapped they take milliseconds. The bound is half the capped time.
    let started = Instant::now();
    h.ok(
        "zlogin",
        &[
            "io",
            &format!("dd if=/dev/zero of={dev} bs=256k count=16 oflag=direct 2>&1"),
        ],
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "4 MiB at 1 MiB/s took {took:?}"
    );

    // Live: raise the cap, then remove it.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "io",
            "-r",
            &format!("select capped-io device={dev}; set wbps=2m; end"),
        ],
    );
    let line = io_throttle(&h, "io", &devno);
    assert!(line.contains("2097152"), "after raising: {line:?}");
    h.ok(
        "zonecfg",
        &["-z", "io", "-r", &format!("remove capped-io device={dev}")],
    );
    let line = io_throttle(&h, "io", &devno);
    assert!(
        !line.contains("wbps=") || line.contains("wbps=max"),
        "{line:?}"
    );
    if !v2() {
        assert_eq!(line, "", "v1 drops the rule");
    }
    let info = h.ok("zonecfg", &["-z", "io", "info capped-io"]);
    assert!(!info.contains("capped-io"), "{info}");
    h.ok("zoneadm", &["-z", "io", "halt"]);
}

/// Deletes the host links whose names start with the prefix, when dropped.
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if let Ok(mut nl) = zones_net::Netlink::open() {
            for l in nl.links().unwrap_or_default() {
                if l.name.starts_with(&self.0) {
                    let _ = nl.delete_link(&l.name);
                }
            }
        }
    }
}

/// A counter of the zone's own view of its link `net0` (/sys/class/net/net0/statistics).
fn zone_nic_counter(h: &Host, zone: &str, counter: &str) -> u64 {
    let text = h.ok(
        "zlogin",
        &[
            zone,
            &format!("cat /sys/class/net/net0/statistics/{counter}"),
        ],
    );
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{zone} {counter}: {text:?}"))
}

#[test]
fn zonestat_counts_the_bytes_of_each_vnic() {
    if !require_root() {
        return;
    }
    // The VNIC lent to zone vc is back on the host only once vc halts: its guard is declared
    // before the host, so it is dropped after the host has halted the zones.
    let stub = format!("rzt{}vs", std::process::id());
    let vnic = format!("{stub}n");
    let _vnic = LinkGuard(vnic.clone());
    let h = Host::new("vnic");
    // The etherstub lives in the host namespace: a short test name (IFNAMSIZ), removed by
    // the guard (declared after the host, so dropped before it: the zones are halted later).
    let _links = LinkGuard(stub.clone());
    h.ok("dladm", &["create-etherstub", &stub]);
    for (zone, addr) in [("va", "10.214.0.1/24"), ("vb", "10.214.0.2/24")] {
        h.boot(
            zone,
            &format!(
                "add anet; set linkname=net0; set lower-link={stub}; \
                 set allowed-address={addr}; end"
            ),
        );
    }
    // A zone with a `net` VNIC made with dladm: its link is counted too (inside its netns).
    h.ok("dladm", &["create-vnic", "-l", &stub, &vnic]);
    h.boot(
        "vc",
        &format!("add net; set physical={vnic}; set allowed-address=10.214.0.3/24; end"),
    );
    h.ok("zlogin", &["va", "ping -c 3 -w 10 10.214.0.2"]);
    h.ok("zlogin", &["va", "ping -c 3 -w 10 10.214.0.3"]);
    let out = h.ok("zonestat", &["-j", "-r", "network", "-z", "vc", "1", "1"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let nics = report["zones"][0]["network"].as_array().unwrap();
    assert_eq!(nics.len(), 1, "{out}");
    assert_eq!(nics[0]["link"].as_str(), Some(vnic.as_str()), "{out}");
    assert!(
        nics[0]["received_bytes"].as_u64().unwrap() >= 3 * 84,
        "3 pings received: {out}"
    );
    let out = h.ok("zonestat", &["-p", "-r", "network", "1", "1"]);
    assert!(
        out.contains(&format!("interval:network:{vnic}:vc:")),
        "{out}"
    );
    assert!(out.contains("interval:network:net0:va:"), "{out}");
    // The zone's own counters bracket zonestat's (stray IPv6 chatter may add bytes).
    let (rx0, tx0) = (
        zone_nic_counter(&h, "va", "rx_bytes"),
        zone_nic_counter(&h, "va", "tx_bytes"),
    );
    let out = h.ok("zonestat", &["-j", "-r", "network", "-z", "va", "1", "1"]);
    let (rx1, tx1) = (
        zone_nic_counter(&h, "va", "rx_bytes"),
        zone_nic_counter(&h, "va", "tx_bytes"),
    );
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let nics = report["zones"][0]["network"].as_array().unwrap();
    assert_eq!(nics.len(), 1, "{out}");
    assert_eq!(nics[0]["link"], "net0");
    assert_eq!(
        nics[0]["host_link"].as_str(),
        Some(zones_linux::zone::network::host_link_name("va", "net0").as_str())
    );
    let (rx, tx) = (
        nics[0]["received_bytes"].as_u64().unwrap(),
        nics[0]["sent_bytes"].as_u64().unwrap(),
    );
    assert!(tx >= 3 * 84, "3 pings sent, but only {tx} bytes");
    assert!(
        (rx0..=rx1).contains(&rx),
        "received {rx}, the zone saw {rx0}..{rx1}"
    );
    assert!(
        (tx0..=tx1).contains(&tx),
        "sent {tx}, the zone saw {tx0}..{tx1}"
    );
    let prom = h.ok("zonestat", &["--prometheus", "-z", "va"]);
    assert!(
        prom.contains("zone_net_sent_bytes_total{zone=\"va\",link=\"net0\"} "),
        "{prom}"
    );
}

#[test]
fn device_rules_hold_inside_the_zone() {
    if !require_root() {
        return;
    }
    // The device allowlist: v1's devices controller here, an eBPF program on v2 (the guest).
    let h = Host::new("dev");
    // Without a user namespace: in one, mknod of any device node is refused outright, before
    // the device rules are reached (tests/escape.rs checks that).
    h.boot("d", "set userns=false");
    // A node of /dev/loop0 (b 7:0) may be made (mknod of any node is allowed, as with runc),
    // but not opened, though opening it needs no privilege (the host can: checked first);
    // /dev/null's (c 1:3) works.
    std::fs::File::open("/dev/loop0").expect("the host opens /dev/loop0 (modprobe loop)");
    let script = "cd /root; mknod null2 c 1 3 && echo x > null2 && echo null-ok; \
                  mknod loop2 b 7 0; head -c 1 loop2 >/dev/null 2>&1 && echo loop-read; \
                  (echo x > loop2) 2>/dev/null && echo loop-written; echo done";
    let out = h.ok("zlogin", &["d", script]);
    assert!(
        out.contains("null-ok"),
        "an allowed device was refused: {out}"
    );
    assert!(
        !out.contains("loop-read"),
        "loop0 (b 7:0) could be read: {out}"
    );
    assert!(
        !out.contains("loop-written"),
        "loop0 could be written: {out}"
    );
    assert!(out.contains("done"), "{out}");
}

/// Kills and reaps a child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `zonestat --prometheus --listen 127.0.0.1:0`, GET /metrics from the port it reports
/// and return the body (after checking the HTTP status line).
fn scrape_exporter(h: &Host) -> String {
    use std::io::{BufRead, Read, Write};
    use std::process::{Command, Stdio};
    let mut child = KillOnDrop(
        Command::new(common::zonehost::bin("zonestat"))
            .arg("-R")
            .arg(&h.root)
            .args(["--prometheus", "--listen", "127.0.0.1:0"])
            .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(child.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("zonestat: serving Prometheus metrics on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address from the exporter: {line:?}"));
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    assert!(head.starts_with("HTTP/1.0 200 OK"), "{resp}");
    assert!(head.contains("text/plain; version=0.0.4"), "{resp}");
    body.to_string()
}

#[test]
fn bad_caps_are_refused_with_the_reason() {
    if !require_root() {
        return;
    }
    let h = Host::new("bad");
    for (cfg, reason) in [
        ("add capped-cpu; set ncpus=0; end", "ncpus \"0\""),
        ("add capped-memory; set physical=12x; end", "\"12x\""),
        (
            "add capped-memory; set physical=100t; end",
            "more than this host has",
        ),
        ("add capped-cpu; set ncpus=4096; end", "CPUs are online"),
        ("add dedicated-cpu; set ncpus=4096; end", "CPUs are online"),
        (
            "set cpu-shares=5; add dedicated-cpu; set ncpus=1; end",
            "cannot be used together with cpu-shares",
        ),
    ] {
        let err = h.fails(
            "zonecfg",
            &[
                "-z",
                "b",
                &format!("create; set zonepath=/zones/b; {cfg}; commit"),
            ],
        );
        assert!(err.contains(reason), "{cfg}: {err}");
        assert_eq!(h.state("b"), "absent", "{cfg} was committed");
        // verify says the same without committing anything.
        let err = h.fails(
            "zonecfg",
            &[
                "-z",
                "b",
                &format!("create; set zonepath=/zones/b; {cfg}; verify"),
            ],
        );
        assert!(err.contains(reason), "verify of {cfg}: {err}");
        assert_eq!(h.state("b"), "absent", "verify of {cfg} committed it");
    }
}
