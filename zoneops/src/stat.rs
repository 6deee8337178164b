//! zonestat's data: what each ready or running zone uses of CPU, memory, swap and processes,
//! and its caps, read from the zone's cgroup (the one recorded in the engine's container state,
//! `ALTROOT/run/zones/.runz/<zone>/state.json`).
//!
//! CPU use over an interval is the cgroup's CPU time difference over the wall time between
//! two samples, in CPUs (1.0 = one CPU busy), the unit of `capped-cpu ncpus`.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use zones::state::ZoneState;
use zones::store::Store;
use zones_cgroup::{Cgroup, Mode};

use super::admin::effective_state;
use super::{ZoneInfo, ZonePaths};
use zones_engine::container;

#[derive(Debug, thiserror::Error)]
pub enum StatError {
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error("zone '{zone}': {msg}")]
    Zone { zone: String, msg: String },
}

/// A limit at or above this is "no cap" (v1 writes unlimited as 2^63 rounded to a page).
const UNLIMITED: u64 = 1 << 62;

/// One zone's counters at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub zonename: String,
    pub zoneid: u32,
    pub taken: Instant,
    /// CPU time used since the zone booted, nanoseconds.
    pub cpu_ns: u64,
    /// capped-cpu in CPUs.
    pub cpu_cap: Option<f64>,
    /// cpu-shares (zone shares: v2 cpu.weight, v1 cpu.shares × 100 / 1024).
    pub cpu_shares: Option<u64>,
    pub cpu_throttled: u64,
    pub mem_used: u64,
    pub mem_cap: Option<u64>,
    /// How often the memory cap was hit.
    pub mem_failcnt: u64,
    pub oom_kills: u64,
    /// Memory plus swap, like illumos's swap (virtual memory) cap.
    pub swap_used: u64,
    pub swap_cap: Option<u64>,
    /// Tasks (pids.current: processes and threads).
    pub lwps: u64,
    pub lwps_cap: Option<u64>,
    /// Byte counters of the zone's VNICs.
    pub nics: Vec<NicUsage>,
}

/// One VNIC (anet) of a zone: its byte counters as the zone sees them, read from the host end
/// of its veth pair (what the host end receives, the zone sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicUsage {
    /// The link name inside the zone.
    pub link: String,
    /// The host end of the veth pair.
    pub host_link: String,
    pub received_bytes: u64,
    pub sent_bytes: u64,
}

/// One zone's line of a report: the usage over an interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub zonename: String,
    pub zoneid: u32,
    pub cpu: CpuUsage,
    #[serde(rename = "physical-memory")]
    pub memory: MemUsage,
    #[serde(rename = "virtual-memory")]
    pub swap: MemUsage,
    pub lwps: CountUsage,
    pub network: Vec<NicUsage>,
    /// `-r syscalls` (eBPF, only when asked for): system calls over the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallUsage>,
    /// `-r runq` (eBPF, only when asked for): run-queue latency over the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runq: Option<RunqUsage>,
}

/// System calls made over an interval (counted by an eBPF probe on `raw_syscalls:sys_enter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SyscallUsage {
    pub per_second: f64,
    pub count: u64,
}

/// Run-queue latency over an interval: how long tasks waited, runnable, for a CPU (from a
/// wakeup or a preemption to running again; eBPF probes on the scheduler's tracepoints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunqUsage {
    /// Waits measured (times a task got a CPU after waiting for one).
    pub waits: u64,
    /// Mean and longest wait, microseconds (0 without waits).
    pub mean_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuUsage {
    /// CPUs used over the interval.
    pub used: f64,
    pub cap: Option<f64>,
    pub shares: Option<u64>,
    /// CPU seconds since boot.
    pub total_seconds: f64,
    pub throttled_periods: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemUsage {
    /// Bytes.
    pub used: u64,
    pub cap: Option<u64>,
    /// Times the cap was hit.
    pub failcnt: u64,
    pub oom_kills: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountUsage {
    pub used: u64,
    pub cap: Option<u64>,
}

fn cap(v: u64) -> Option<u64> {
    (v != 0 && v < UNLIMITED).then_some(v)
}

fn read_trim(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// capped-cpu in CPUs: v2 `cpu.max` "QUOTA PERIOD", v1 cfs quota / period.
fn cpu_cap(cg: &Cgroup) -> Option<f64> {
    let h = cg.paths().iter().find(|h| {
        if cg.mode() == Mode::V2 {
            h.v2
        } else {
            !h.v2 && h.controllers.iter().any(|c| c == "cpu")
        }
    })?;
    let (quota, period) = if h.v2 {
        let text = read_trim(&h.dir, "cpu.max")?;
        let mut f = text.split_whitespace();
        (f.next()?.to_string(), f.next()?.to_string())
    } else {
        (
            read_trim(&h.dir, "cpu.cfs_quota_us")?,
            read_trim(&h.dir, "cpu.cfs_period_us")?,
        )
    };
    let quota: f64 = quota.parse().ok().filter(|q: &f64| *q > 0.0)?;
    let period: f64 = period.parse().ok().filter(|p: &f64| *p > 0.0)?;
    Some(quota / period)
}

/// cpu-shares in zone shares, when they differ from the default.
fn cpu_shares(cg: &Cgroup) -> Option<u64> {
    let v2 = cg.mode() == Mode::V2;
    let h = cg.paths().iter().find(|h| {
        if v2 {
            h.v2
        } else {
            !h.v2 && h.controllers.iter().any(|c| c == "cpu")
        }
    })?;
    if v2 {
        read_trim(&h.dir, "cpu.weight")?.parse().ok()
    } else {
        let s: u64 = read_trim(&h.dir, "cpu.shares")?.parse().ok()?;
        Some(s * 100 / 1024)
    }
}

/// The cgroup and init pid of a live zone, from its container state.
fn zone_cgroup(paths: &ZonePaths) -> Result<(Cgroup, i32), StatError> {
    let (st, _) = container::state(&paths.runz_root, &paths.name).map_err(|e| StatError::Zone {
        zone: paths.name.clone(),
        msg: e.to_string(),
    })?;
    let pid = st.pid;
    st.cgroup
        .map(|cg| (cg, pid))
        .ok_or_else(|| StatError::Zone {
            zone: paths.name.clone(),
            msg: "its container has no cgroup".into(),
        })
}

/// Sample one zone.
pub fn sample_zone(store: &Store, name: &str) -> Result<Sample, StatError> {
    let paths = ZonePaths::new(store, name);
    let (cg, pid) = zone_cgroup(&paths)?;
    let zerr = |e: zones_cgroup::CgroupError| StatError::Zone {
        zone: name.to_string(),
        msg: e.to_string(),
    };
    let s = cg.stats().map_err(zerr)?;
    let mem_cap = cap(s.memory.usage.limit);
    Ok(Sample {
        zonename: name.to_string(),
        zoneid: ZoneInfo::load(&paths).map_or(0, |i| i.zoneid),
        taken: Instant::now(),
        cpu_ns: s.cpu.usage.total,
        cpu_cap: cpu_cap(&cg),
        cpu_shares: cpu_shares(&cg),
        cpu_throttled: s.cpu.throttling.throttled_periods,
        mem_used: s.memory.usage.usage,
        mem_cap,
        mem_failcnt: s.memory.usage.failcnt,
        oom_kills: cg.oom_kills(),
        swap_used: s.memory.swap.usage,
        swap_cap: cap(s.memory.swap.limit),
        lwps: s.pids.current,
        lwps_cap: cap(s.pids.limit),
        nics: nic_counters(store, name, pid),
    })
}

/// The byte counters of each VNIC of `name`: of each anet that has a host link now, read
/// from the host end of its veth pair (the host ends' names are derived as the networking
/// layer makes them: [`super::network::host_link_name`]), and of each `net` VNIC lent to the
/// zone, read from the zone's network namespace through its init's `/proc/PID/net/dev`.
fn nic_counters(store: &Store, name: &str, pid: i32) -> Vec<NicUsage> {
    let Ok(Some(zone)) = store.load(name) else {
        return Vec::new();
    };
    let mut nics: Vec<NicUsage> = zone
        .anet
        .iter()
        .filter_map(|a| {
            let link = a.linkname.clone()?;
            let host_link = super::network::host_link_name(name, &link);
            let stats = Path::new("/sys/class/net")
                .join(&host_link)
                .join("statistics");
            let counter = |f: &str| read_trim(&stats, f)?.parse::<u64>().ok();
            Some(NicUsage {
                received_bytes: counter("tx_bytes")?,
                sent_bytes: counter("rx_bytes")?,
                link,
                host_link,
            })
        })
        .collect();
    if pid > 0 && !zone.net.is_empty() {
        let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
        for n in &zone.net {
            let Some(vnic) = n.physical.as_deref() else {
                continue;
            };
            if let Some((rx, tx)) = net_dev_bytes(&dev, vnic) {
                nics.push(NicUsage {
                    link: vnic.to_string(),
                    host_link: vnic.to_string(),
                    received_bytes: rx,
                    sent_bytes: tx,
                });
            }
        }
    }
    nics
}

/// The received and transmitted bytes of `link` in a `/proc/net/dev` text.
fn net_dev_bytes(dev: &str, link: &str) -> Option<(u64, u64)> {
    dev.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != link {
            return None;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        Some((*f.first()?, *f.get(8)?))
    })
}

/// The ready and running zones, in store order, limited to `only` when it is given.
pub fn live_zones(store: &Store, only: &[String]) -> Result<Vec<String>, StatError> {
    Ok(store
        .list()?
        .into_iter()
        .filter(|e| only.is_empty() || only.contains(&e.name))
        .filter(|e| {
            matches!(
                effective_state(store, &e.name, e.state),
                ZoneState::Ready | ZoneState::Running
            )
        })
        .map(|e| e.name)
        .collect())
}

/// Sample every zone in `names`; zones that went away in between are skipped.
pub fn sample_all(store: &Store, names: &[String]) -> Vec<Sample> {
    names
        .iter()
        .filter_map(|n| sample_zone(store, n).ok())
        .collect()
}

/// The usage between two samples of the same zone. Without a `before` (the zone was not live
/// at the previous sample) the CPU use over the interval is unknown and reported as 0.
pub fn usage(before: Option<&Sample>, now: &Sample) -> Usage {
    let used = match before {
        Some(b) => {
            let dt = now.taken.saturating_duration_since(b.taken).as_nanos() as f64;
            if dt > 0.0 {
                now.cpu_ns.saturating_sub(b.cpu_ns) as f64 / dt
            } else {
                0.0
            }
        }
        None => 0.0,
    };
    Usage {
        zonename: now.zonename.clone(),
        zoneid: now.zoneid,
        cpu: CpuUsage {
            used,
            cap: now.cpu_cap,
            shares: now.cpu_shares,
            total_seconds: now.cpu_ns as f64 / 1e9,
            throttled_periods: now.cpu_throttled,
        },
        memory: MemUsage {
            used: now.mem_used,
            cap: now.mem_cap,
            failcnt: now.mem_failcnt,
            oom_kills: now.oom_kills,
        },
        swap: MemUsage {
            used: now.swap_used,
            cap: now.swap_cap,
            failcnt: 0,
            oom_kills: 0,
        },
        lwps: CountUsage {
            used: now.lwps,
            cap: now.lwps_cap,
        },
        network: now.nics.clone(),
        syscalls: None,
        runq: None,
    }
}

/// The usage of every zone in `now`, matched by name with `before`.
pub fn report(before: &[Sample], now: &[Sample]) -> Vec<Usage> {
    now.iter()
        .map(|n| usage(before.iter().find(|b| b.zonename == n.zonename), n))
        .collect()
}

/// The Prometheus text exposition of `zones` (CPU as a counter of seconds).
pub fn prometheus(zones: &[Usage]) -> String {
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&Usage) -> Option<f64>,
    );
    const METRICS: &[Metric] = &[
        (
            "zone_cpu_seconds_total",
            "counter",
            "CPU time used by the zone.",
            |u| Some(u.cpu.total_seconds),
        ),
        (
            "zone_cpu_cap_cpus",
            "gauge",
            "capped-cpu of the zone, in CPUs.",
            |u| u.cpu.cap,
        ),
        ("zone_cpu_shares", "gauge", "cpu-shares of the zone.", |u| {
            u.cpu.shares.map(|s| s as f64)
        }),
        (
            "zone_cpu_throttled_periods_total",
            "counter",
            "CFS periods in which the zone was throttled.",
            |u| Some(u.cpu.throttled_periods as f64),
        ),
        (
            "zone_memory_bytes",
            "gauge",
            "Physical memory used by the zone.",
            |u| Some(u.memory.used as f64),
        ),
        (
            "zone_memory_cap_bytes",
            "gauge",
            "capped-memory physical of the zone.",
            |u| u.memory.cap.map(|c| c as f64),
        ),
        (
            "zone_memory_cap_hits_total",
            "counter",
            "Times the zone hit its memory cap.",
            |u| Some(u.memory.failcnt as f64),
        ),
        (
            "zone_oom_kills_total",
            "counter",
            "Processes the OOM killer killed in the zone.",
            |u| Some(u.memory.oom_kills as f64),
        ),
        (
            "zone_swap_bytes",
            "gauge",
            "Memory plus swap used by the zone.",
            |u| Some(u.swap.used as f64),
        ),
        (
            "zone_swap_cap_bytes",
            "gauge",
            "capped-memory swap of the zone.",
            |u| u.swap.cap.map(|c| c as f64),
        ),
        (
            "zone_lwps",
            "gauge",
            "Tasks (processes and threads) in the zone.",
            |u| Some(u.lwps.used as f64),
        ),
        ("zone_lwps_cap", "gauge", "max-lwps of the zone.", |u| {
            u.lwps.cap.map(|c| c as f64)
        }),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in METRICS {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for u in zones {
            if let Some(v) = get(u) {
                let zone = label(&u.zonename);
                out.push_str(&format!("{name}{{zone=\"{zone}\"}} {v}\n"));
            }
        }
    }
    type NicMetric = (&'static str, &'static str, fn(&NicUsage) -> u64);
    const NIC_METRICS: &[NicMetric] = &[
        (
            "zone_net_received_bytes_total",
            "Bytes the zone received on a VNIC.",
            |n| n.received_bytes,
        ),
        (
            "zone_net_sent_bytes_total",
            "Bytes the zone sent on a VNIC.",
            |n| n.sent_bytes,
        ),
    ];
    for (name, help, get) in NIC_METRICS {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for u in zones {
            for n in &u.network {
                let (zone, link) = (label(&u.zonename), label(&n.link));
                let v = get(n);
                out.push_str(&format!("{name}{{zone=\"{zone}\",link=\"{link}\"}} {v}\n"));
            }
        }
    }
    out
}

/// A Prometheus label value, escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `\:` and `\\` escaping of a parsable field.
fn esc(s: &str) -> String {
    super::admin::escape_field(s)
}

/// Bytes, illumos style: 1024-based with one letter (K, M, G, T).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}")
    } else if v >= 100.0 {
        format!("{v:.0}{}", UNITS[i])
    } else {
        format!("{v:.1}{}", UNITS[i])
    }
}

fn pct(used: f64, cap: Option<f64>) -> String {
    cap.filter(|c| *c > 0.0)
        .map_or("-".to_string(), |c| format!("{:.0}%", used * 100.0 / c))
}

/// A percentage in a parsable line: two decimals and `%`, or `-`.
fn ppct(used: f64, of: Option<f64>) -> String {
    of.filter(|c| *c > 0.0)
        .map_or("-".to_string(), |c| format!("{:.2}%", used * 100.0 / c))
}

/// The host's counters at one instant, for the `[total]` and `[system]` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSample {
    pub taken: Instant,
    /// Non-idle CPU time of all CPUs, clock ticks (`/proc/stat`).
    pub busy_ticks: u64,
    /// CPU time not attributable to any process (irq, softirq, steal), clock ticks.
    pub kernel_ticks: u64,
    pub mem_total: u64,
    /// MemTotal − MemFree (page cache included, as the zones' cgroups count it).
    pub mem_used: u64,
    /// Kernel memory: Slab + KernelStack + PageTables.
    pub mem_kernel: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    /// Tasks on the host (`/proc/loadavg`) and the kernel's limit (`kernel.threads-max`).
    pub lwps: u64,
    pub lwps_max: u64,
}

/// Sample the host from `/proc`.
pub fn sample_host() -> HostSample {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let f = |i: usize| cpu.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = f(0) + f(1) + f(2) + f(5) + f(6) + f(7);
    let kernel = f(5) + f(6) + f(7);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let lwps = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok())
        .unwrap_or(0);
    let lwps_max = read_trim(Path::new("/proc/sys/kernel"), "threads-max")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    HostSample {
        taken: Instant::now(),
        busy_ticks: busy,
        kernel_ticks: kernel,
        mem_total: kb("MemTotal"),
        mem_used: kb("MemTotal").saturating_sub(kb("MemFree")),
        mem_kernel: kb("Slab") + kb("KernelStack") + kb("PageTables"),
        swap_total: kb("SwapTotal"),
        swap_used: kb("SwapTotal").saturating_sub(kb("SwapFree")),
        lwps,
        lwps_max,
    }
}

/// What the whole host used over an interval: the `[total]` row; its `*_kernel` parts are the
/// `[system]` row (what no process, so no zone, is charged with).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostUsage {
    pub cpus: usize,
    /// CPUs busy over the interval.
    pub cpu_used: f64,
    pub cpu_kernel: f64,
    pub mem_total: u64,
    pub mem_used: u64,
    pub mem_kernel: u64,
    /// Virtual memory: physical memory plus swap.
    pub vm_total: u64,
    pub vm_used: u64,
    pub vm_kernel: u64,
    pub lwps: u64,
    pub lwps_max: u64,
    /// `-r syscalls` and `-r runq`: the whole host's figures (the `[total]` rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<SyscallUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runq: Option<RunqUsage>,
}

/// The host's usage between two samples, with `cpus` online CPUs.
pub fn host_usage(before: &HostSample, now: &HostSample, cpus: usize) -> HostUsage {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let dt = now
        .taken
        .saturating_duration_since(before.taken)
        .as_secs_f64();
    let rate = |a: u64, b: u64| {
        if dt > 0.0 {
            b.saturating_sub(a) as f64 / hz / dt
        } else {
            0.0
        }
    };
    HostUsage {
        cpus,
        cpu_used: rate(before.busy_ticks, now.busy_ticks),
        cpu_kernel: rate(before.kernel_ticks, now.kernel_ticks),
        mem_total: now.mem_total,
        mem_used: now.mem_used,
        mem_kernel: now.mem_kernel,
        vm_total: now.mem_total + now.swap_total,
        vm_used: now.mem_used + now.swap_used,
        vm_kernel: now.mem_kernel,
        lwps: now.lwps,
        lwps_max: now.lwps_max,
        syscalls: None,
        runq: None,
    }
}

/// The global zone's row: what the host used less the kernel's part and the zones' use.
pub fn global_usage(host: &HostUsage, zones: &[Usage]) -> Usage {
    let cpu: f64 = zones.iter().map(|u| u.cpu.used).sum();
    let mem: u64 = zones.iter().map(|u| u.memory.used).sum();
    let vm: u64 = zones.iter().map(|u| u.swap.used).sum();
    let lwps: u64 = zones.iter().map(|u| u.lwps.used).sum();
    let mem_usage = |used: u64| MemUsage {
        used,
        cap: None,
        failcnt: 0,
        oom_kills: 0,
    };
    Usage {
        zonename: "global".into(),
        zoneid: 0,
        cpu: CpuUsage {
            used: (host.cpu_used - host.cpu_kernel - cpu).max(0.0),
            cap: None,
            shares: None,
            total_seconds: 0.0,
            throttled_periods: 0,
        },
        memory: mem_usage(host.mem_used.saturating_sub(host.mem_kernel + mem)),
        swap: mem_usage(host.vm_used.saturating_sub(host.vm_kernel + vm)),
        lwps: CountUsage {
            used: host.lwps.saturating_sub(lwps),
            cap: None,
        },
        network: Vec::new(),
        syscalls: None,
        runq: None,
    }
}

/// The lines of a report (`-P`): resource, total, system, zones, header, footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    pub resource: bool,
    pub total: bool,
    pub system: bool,
    pub zones: bool,
    pub header: bool,
    pub footer: bool,
}

impl Default for Lines {
    fn default() -> Self {
        Lines {
            resource: true,
            total: true,
            system: true,
            zones: true,
            header: true,
            footer: true,
        }
    }
}

/// `-P` names (each may be a comma list) → the lines to print.
pub fn parse_lines(names: &[String]) -> Result<Lines, String> {
    if names.is_empty() {
        return Ok(Lines::default());
    }
    let mut l = Lines {
        resource: false,
        total: false,
        system: false,
        zones: false,
        header: false,
        footer: false,
    };
    for n in names.iter().flat_map(|n| n.split(',')) {
        match n.trim() {
            "resource" => l.resource = true,
            "total" => l.total = true,
            "system" => l.system = true,
            "zones" => l.zones = true,
            "header" => l.header = true,
            "footer" => l.footer = true,
            other => {
                return Err(format!(
                "-P {other:?}: unknown line; use resource, total, system, zones, header or footer"
            ))
            }
        }
    }
    Ok(l)
}

/// A `-S` sort column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortCol {
    Name,
    Used,
    Cap,
    Pcap,
    Shr,
    Pshru,
}

/// `-S` names (each may be a comma list) → sort columns; `used` when none is given.
pub fn parse_sort(names: &[String]) -> Result<Vec<SortCol>, String> {
    let mut cols = Vec::new();
    for n in names.iter().flat_map(|n| n.split(',')) {
        cols.push(match n.trim() {
            "name" => SortCol::Name,
            "used" => SortCol::Used,
            "cap" => SortCol::Cap,
            "pcap" => SortCol::Pcap,
            "shr" => SortCol::Shr,
            "pshru" => SortCol::Pshru,
            other => {
                return Err(format!(
                    "-S {other:?}: unknown column; use name, used, cap, pcap, shr or pshru"
                ))
            }
        });
    }
    if cols.is_empty() {
        cols.push(SortCol::Used);
    }
    Ok(cols)
}

/// A summary report kind (`-R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Total,
    Average,
    High,
}

impl ReportKind {
    /// The parsable label: `report-total`, `report-average`, `report-high`.
    pub fn label(self) -> &'static str {
        match self {
            ReportKind::Total => "report-total",
            ReportKind::Average => "report-average",
            ReportKind::High => "report-high",
        }
    }

    /// The heading of the human report.
    pub fn title(self) -> &'static str {
        match self {
            ReportKind::Total => "Total Usage",
            ReportKind::Average => "Average Usage",
            ReportKind::High => "High Usage",
        }
    }
}

/// `-R` names (each may be a comma list) → report kinds, in illumos order, without repeats.
pub fn parse_reports(names: &[String]) -> Result<Vec<ReportKind>, String> {
    let mut want = Vec::new();
    for n in names.iter().flat_map(|n| n.split(',')) {
        want.push(match n.trim() {
            "total" => ReportKind::Total,
            "average" => ReportKind::Average,
            "high" => ReportKind::High,
            other => {
                return Err(format!(
                    "-R {other:?}: unknown report; use total, average or high"
                ))
            }
        });
    }
    Ok([ReportKind::Total, ReportKind::Average, ReportKind::High]
        .into_iter()
        .filter(|k| want.contains(k))
        .collect())
}

/// Two intervals' optional figures merged by `f`; where only one has figures, those.
fn merge<T>(a: Option<T>, b: Option<T>, f: impl FnOnce(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl SyscallUsage {
    /// Two intervals' figures added up (`high`: the higher of each).
    fn combine(a: Option<Self>, b: Option<Self>, high: bool) -> Option<Self> {
        merge(a, b, |a, b| {
            if high {
                SyscallUsage {
                    per_second: a.per_second.max(b.per_second),
                    count: a.count.max(b.count),
                }
            } else {
                SyscallUsage {
                    per_second: a.per_second + b.per_second,
                    count: a.count + b.count,
                }
            }
        })
    }

    fn div(self, n: u64) -> Self {
        SyscallUsage {
            per_second: self.per_second / n as f64,
            count: self.count / n,
        }
    }
}

impl RunqUsage {
    /// Two intervals' figures added up (`high`: the higher of each); the longest wait is the
    /// longer of the two either way.
    fn combine(a: Option<Self>, b: Option<Self>, high: bool) -> Option<Self> {
        merge(a, b, |a, b| {
            if high {
                RunqUsage {
                    waits: a.waits.max(b.waits),
                    mean_us: a.mean_us.max(b.mean_us),
                    max_us: a.max_us.max(b.max_us),
                }
            } else {
                RunqUsage {
                    waits: a.waits + b.waits,
                    mean_us: a.mean_us + b.mean_us,
                    max_us: a.max_us.max(b.max_us),
                }
            }
        })
    }

    fn div(self, n: u64) -> Self {
        RunqUsage {
            waits: self.waits / n,
            mean_us: self.mean_us / n as f64,
            max_us: self.max_us,
        }
    }
}

/// The usage of the intervals since the last summary report, for `-R`.
#[derive(Debug, Clone, Default)]
pub struct Accum {
    pub intervals: u64,
    host_sum: HostUsage,
    host_high: HostUsage,
    /// Per zone: intervals it was live in, the sums and the highs of its usage.
    zones: Vec<(u64, Usage, Usage)>,
}

/// `z` with the used amounts of `used` and everything else (caps, counters) of `latest`.
fn with_used(latest: &Usage, used: &Usage) -> Usage {
    let mut u = latest.clone();
    u.cpu.used = used.cpu.used;
    u.memory.used = used.memory.used;
    u.swap.used = used.swap.used;
    u.lwps.used = used.lwps.used;
    u.syscalls = used.syscalls;
    u.runq = used.runq;
    u
}

impl Accum {
    /// Add one interval's usage.
    pub fn add(&mut self, host: &HostUsage, zones: &[Usage]) {
        self.intervals += 1;
        let h = &mut self.host_sum;
        h.cpus = host.cpus;
        h.cpu_used += host.cpu_used;
        h.cpu_kernel += host.cpu_kernel;
        h.mem_total = host.mem_total;
        h.mem_used += host.mem_used;
        h.mem_kernel += host.mem_kernel;
        h.vm_total = host.vm_total;
        h.vm_used += host.vm_used;
        h.vm_kernel += host.vm_kernel;
        h.lwps += host.lwps;
        h.lwps_max = host.lwps_max;
        h.syscalls = SyscallUsage::combine(h.syscalls, host.syscalls, false);
        h.runq = RunqUsage::combine(h.runq, host.runq, false);
        let m = &mut self.host_high;
        m.cpus = host.cpus;
        m.cpu_used = m.cpu_used.max(host.cpu_used);
        m.cpu_kernel = m.cpu_kernel.max(host.cpu_kernel);
        m.mem_total = host.mem_total;
        m.mem_used = m.mem_used.max(host.mem_used);
        m.mem_kernel = m.mem_kernel.max(host.mem_kernel);
        m.vm_total = host.vm_total;
        m.vm_used = m.vm_used.max(host.vm_used);
        m.vm_kernel = m.vm_kernel.max(host.vm_kernel);
        m.lwps = m.lwps.max(host.lwps);
        m.lwps_max = host.lwps_max;
        m.syscalls = SyscallUsage::combine(m.syscalls, host.syscalls, true);
        m.runq = RunqUsage::combine(m.runq, host.runq, true);
        for u in zones {
            match self.zones.iter_mut().find(|z| z.1.zonename == u.zonename) {
                None => self.zones.push((1, u.clone(), u.clone())),
                Some((n, sum, high)) => {
                    *n += 1;
                    let mut s = sum.clone();
                    s.cpu.used += u.cpu.used;
                    s.memory.used += u.memory.used;
                    s.swap.used += u.swap.used;
                    s.lwps.used += u.lwps.used;
                    s.syscalls = SyscallUsage::combine(s.syscalls, u.syscalls, false);
                    s.runq = RunqUsage::combine(s.runq, u.runq, false);
                    let mut h = high.clone();
                    h.cpu.used = h.cpu.used.max(u.cpu.used);
                    h.memory.used = h.memory.used.max(u.memory.used);
                    h.swap.used = h.swap.used.max(u.swap.used);
                    h.lwps.used = h.lwps.used.max(u.lwps.used);
                    h.syscalls = SyscallUsage::combine(h.syscalls, u.syscalls, true);
                    h.runq = RunqUsage::combine(h.runq, u.runq, true);
                    *sum = with_used(u, &s);
                    *high = with_used(u, &h);
                }
            }
        }
    }

    /// The summary report of `kind` over the intervals added: `total` averages over all of
    /// them (a zone counts as idle in the intervals it was down), `average` over those the
    /// zone was up in, `high` is each one's highest use. Network counters are the latest.
    pub fn report(&self, kind: ReportKind) -> (HostUsage, Vec<Usage>) {
        let all = self.intervals.max(1);
        let div = |u: &Usage, n: u64| {
            let mut u = u.clone();
            u.cpu.used /= n as f64;
            u.memory.used /= n;
            u.swap.used /= n;
            u.lwps.used /= n;
            u.syscalls = u.syscalls.map(|s| s.div(n));
            u.runq = u.runq.map(|r| r.div(n));
            u
        };
        let mut host = match kind {
            ReportKind::High => self.host_high.clone(),
            _ => self.host_sum.clone(),
        };
        if kind != ReportKind::High {
            host.cpu_used /= all as f64;
            host.cpu_kernel /= all as f64;
            host.mem_used /= all;
            host.mem_kernel /= all;
            host.vm_used /= all;
            host.vm_kernel /= all;
            host.lwps /= all;
            host.syscalls = host.syscalls.map(|s| s.div(all));
            host.runq = host.runq.map(|r| r.div(all));
        }
        let zones = self
            .zones
            .iter()
            .map(|(n, sum, high)| match kind {
                ReportKind::Total => div(sum, all),
                ReportKind::Average => div(sum, (*n).max(1)),
                ReportKind::High => high.clone(),
            })
            .collect();
        (host, zones)
    }
}

/// One report's data and how to print it.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// `interval`, `report-total`, `report-average` or `report-high`.
    pub label: &'a str,
    pub host: &'a HostUsage,
    /// The zones' rows (the global zone's among them when it is reported).
    pub zones: &'a [Usage],
    pub lines: Lines,
    pub sort: &'a [SortCol],
    /// `-n`: only the resources of these names (all when empty).
    pub names: &'a [String],
    /// The `-T` prefix of parsable lines, without its colon.
    pub timestamp: Option<String>,
}

impl Report<'_> {
    fn prefix(&self) -> String {
        self.timestamp
            .as_ref()
            .map_or(String::new(), |t| format!("{t}:"))
    }

    fn named(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    fn shares_total(&self) -> u64 {
        self.zones.iter().filter_map(|u| u.cpu.shares).sum()
    }

    /// The zones in `-S` order for resource `r` (largest first, names ascending).
    fn sorted(&self, r: Resource) -> Vec<&Usage> {
        let mut v: Vec<&Usage> = self.zones.iter().collect();
        let shares_total = self.shares_total();
        let cpus = self.host.cpus;
        let key = |u: &Usage, c: SortCol| -> f64 {
            let (used, cap) = match r {
                Resource::PhysicalMemory => (u.memory.used as f64, u.memory.cap.map(|c| c as f64)),
                Resource::VirtualMemory => (u.swap.used as f64, u.swap.cap.map(|c| c as f64)),
                Resource::Lwps => (u.lwps.used as f64, u.lwps.cap.map(|c| c as f64)),
                Resource::Network => (
                    u.network
                        .iter()
                        .map(|n| (n.received_bytes + n.sent_bytes) as f64)
                        .sum(),
                    None,
                ),
                Resource::Summary | Resource::ProcessorSet => (u.cpu.used, u.cpu.cap),
                Resource::Syscalls => (u.syscalls.map_or(0.0, |s| s.per_second), None),
                Resource::Runq => (u.runq.map_or(0.0, |q| q.mean_us), None),
            };
            match c {
                SortCol::Name | SortCol::Used => used,
                SortCol::Cap => cap.unwrap_or(0.0),
                SortCol::Pcap => cap.filter(|c| *c > 0.0).map_or(0.0, |c| used / c),
                SortCol::Shr => u.cpu.shares.unwrap_or(0) as f64,
                SortCol::Pshru => shru(u, shares_total, cpus).unwrap_or(0.0),
            }
        };
        v.sort_by(|a, b| {
            for c in self.sort {
                let o = match c {
                    SortCol::Name => a.zonename.cmp(&b.zonename),
                    c => key(b, *c).total_cmp(&key(a, *c)),
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        v
    }
}

/// A zone's use of its CPU share, as a fraction: its share is its part of all the zones'
/// shares of the CPUs; `None` without shares.
fn shru(u: &Usage, shares_total: u64, cpus: usize) -> Option<f64> {
    let s = u.cpu.shares.filter(|s| *s > 0)?;
    let part = s as f64 / shares_total.max(1) as f64 * cpus as f64;
    Some(u.cpu.used / part)
}

/// One row of the summary: CPU (used, cap, share use), physical and virtual memory (used,
/// cap).
type SumRow = (
    f64,
    Option<f64>,
    Option<f64>,
    u64,
    Option<u64>,
    u64,
    Option<u64>,
);

fn summary_rows<'a>(r: &'a Report) -> Vec<(&'a str, SumRow)> {
    let h = r.host;
    let mut rows = Vec::new();
    if r.lines.total {
        let row = (h.cpu_used, None, None, h.mem_used, None, h.vm_used, None);
        rows.push(("[total]", row));
    }
    if r.lines.system {
        let row = (
            h.cpu_kernel,
            None,
            None,
            h.mem_kernel,
            None,
            h.vm_kernel,
            None,
        );
        rows.push(("[system]", row));
    }
    if r.lines.zones {
        let st = r.shares_total();
        for u in r.sorted(Resource::Summary) {
            let row = (
                u.cpu.used,
                u.cpu.cap,
                shru(u, st, h.cpus),
                u.memory.used,
                u.memory.cap,
                u.swap.used,
                u.swap.cap,
            );
            rows.push((u.zonename.as_str(), row));
        }
    }
    rows
}

/// The summary report (illumos `zonestat`'s default): `[total]`, `[system]`, then a row per
/// zone (the global zone among them) in `-S` order.
pub fn summary(r: &Report) -> String {
    let h = r.host;
    let mut out = format!(
        "SUMMARY                   Cpus/Online: {0}/{0}   PhysMem: {1}   VirtMem: {2}\n",
        h.cpus,
        human_bytes(h.mem_total),
        human_bytes(h.vm_total)
    );
    let w = r
        .zones
        .iter()
        .map(|u| u.zonename.len())
        .max()
        .unwrap_or(0)
        .max(15);
    out.push_str(&format!(
        "{:>w$}  {:<23} {:<19} {:<19}\n",
        "", "-----CPU---------------", "----PHYSICAL-------", "----VIRTUAL--------"
    ));
    out.push_str(&format!(
        "{:>w$} {:>5} {:>5} {:>5} {:>5}  {:>6} {:>5} {:>5}  {:>6} {:>5} {:>5}\n",
        "ZONE", "USED", "%PART", "%CAP", "%SHRU", "USED", "PCT", "%CAP", "USED", "PCT", "%CAP"
    ));
    let cpus = Some(h.cpus as f64);
    let (mt, vt) = (Some(h.mem_total as f64), Some(h.vm_total as f64));
    for (name, (cpu, ccap, shru, mem, mcap, vm, vcap)) in summary_rows(r) {
        out.push_str(&format!(
            "{:>w$} {:>5.2} {:>5} {:>5} {:>5}  {:>6} {:>5} {:>5}  {:>6} {:>5} {:>5}\n",
            name,
            cpu,
            pct(cpu, cpus),
            pct(cpu, ccap),
            shru.map_or("-".into(), |s| format!("{:.0}%", s * 100.0)),
            human_bytes(mem),
            pct(mem as f64, mt),
            pct(mem as f64, mcap.map(|c| c as f64)),
            human_bytes(vm),
            pct(vm as f64, vt),
            pct(vm as f64, vcap.map(|c| c as f64)),
        ));
    }
    out.push('\n');
    out
}

/// The parsable summary lines, in illumos's layout: `LABEL:summary:ZONE:` then CPU used,
/// %PART, %CAP, %SHRU, physical memory used (bytes), PCT, %CAP, virtual memory used (bytes),
/// PCT, %CAP; `-` where there is no cap or share.
pub fn summary_parsable(r: &Report) -> String {
    let h = r.host;
    let ts = r.prefix();
    let cpus = Some(h.cpus as f64);
    let (mt, vt) = (Some(h.mem_total as f64), Some(h.vm_total as f64));
    let mut out = String::new();
    for (name, (cpu, ccap, shru, mem, mcap, vm, vcap)) in summary_rows(r) {
        out.push_str(&format!(
            "{ts}{}:summary:{}:{:.2}:{}:{}:{}:{}:{}:{}:{}:{}:{}\n",
            r.label,
            esc(name),
            cpu,
            ppct(cpu, cpus),
            ppct(cpu, ccap),
            shru.map_or("-".into(), |s| format!("{:.2}%", s * 100.0)),
            mem,
            ppct(mem as f64, mt),
            ppct(mem as f64, mcap.map(|c| c as f64)),
            vm,
            ppct(vm as f64, vt),
            ppct(vm as f64, vcap.map(|c| c as f64)),
        ));
    }
    out
}

/// A resource `zonestat -r` reports on, by its illumos name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The summary table (the default report).
    Summary,
    PhysicalMemory,
    /// Memory plus swap (illumos's swap cap bounds virtual memory).
    VirtualMemory,
    /// CPU use, cap and shares (illumos reports it per processor set).
    ProcessorSet,
    Lwps,
    /// Bytes per VNIC.
    Network,
    /// System calls per second (an extension, from eBPF: never part of `all`).
    Syscalls,
    /// Run-queue latency (an extension, from eBPF: never part of `all`).
    Runq,
}

impl Resource {
    /// What `all` reports: every resource the cgroup files give, none that costs a probe.
    const ALL: [Resource; 6] = [
        Resource::Summary,
        Resource::PhysicalMemory,
        Resource::VirtualMemory,
        Resource::ProcessorSet,
        Resource::Lwps,
        Resource::Network,
    ];
    /// Report order.
    const ORDER: [Resource; 8] = [
        Resource::Summary,
        Resource::PhysicalMemory,
        Resource::VirtualMemory,
        Resource::ProcessorSet,
        Resource::Lwps,
        Resource::Network,
        Resource::Syscalls,
        Resource::Runq,
    ];

    /// Whether the figures come from an eBPF program zonestat must start (root only).
    pub fn needs_bpf(self) -> bool {
        matches!(self, Resource::Syscalls | Resource::Runq)
    }

    pub fn name(self) -> &'static str {
        match self {
            Resource::Summary => "summary",
            Resource::PhysicalMemory => "physical-memory",
            Resource::VirtualMemory => "virtual-memory",
            Resource::ProcessorSet => "processor-set",
            Resource::Lwps => "lwps",
            Resource::Network => "network",
            Resource::Syscalls => "syscalls",
            Resource::Runq => "runq",
        }
    }
}

/// `-r` names (each may be a comma list) → resources, in report order, without repeats.
/// Besides the single names: `memory` (physical and virtual), `psets`/`cpu`, `limits`/
/// `processes` (lwps), `default` (summary) and `all`. An empty list is the default.
pub fn parse_resources(names: &[String]) -> Result<Vec<Resource>, String> {
    use Resource::*;
    let mut wanted = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')) {
        let add: &[Resource] = match name.trim() {
            "summary" | "default" => &[Summary],
            "physical-memory" => &[PhysicalMemory],
            "virtual-memory" => &[VirtualMemory],
            "memory" => &[PhysicalMemory, VirtualMemory],
            "processor-set" | "processor-sets" | "psets" | "default-pset" | "cpu" => {
                &[ProcessorSet]
            }
            "lwps" | "processes" | "limits" => &[Lwps],
            "network" => &[Network],
            "syscalls" => &[Syscalls],
            "runq" | "run-queue" => &[Runq],
            "all" => &Resource::ALL,
            other => {
                return Err(format!(
                    "-r {other:?}: unknown resource; use summary, physical-memory, \
                     virtual-memory, memory, processor-set (psets), lwps (limits), network, \
                     syscalls, runq, default or all"
                ))
            }
        };
        wanted.extend_from_slice(add);
    }
    if wanted.is_empty() {
        wanted.push(Summary);
    }
    Ok(Resource::ORDER
        .into_iter()
        .filter(|r| wanted.contains(r))
        .collect())
}

fn cap_str<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// One resource's rows for `[total]`, `[system]` and each zone in `-S` order: `(zone, used,
/// cap, extra fields)`, with the resource's name and size (for PCT).
struct ResRows {
    resname: &'static str,
    size: f64,
    rows: Vec<(String, f64, Option<f64>, Vec<String>)>,
}

fn res_rows(res: Resource, r: &Report) -> ResRows {
    let h = r.host;
    let st = r.shares_total();
    let mut rows = Vec::new();
    let (resname, size, total, system) = match res {
        Resource::PhysicalMemory => (
            "mem_default",
            h.mem_total as f64,
            h.mem_used as f64,
            h.mem_kernel as f64,
        ),
        Resource::VirtualMemory => (
            "vm_default",
            h.vm_total as f64,
            h.vm_used as f64,
            h.vm_kernel as f64,
        ),
        Resource::Lwps => ("system-limit", h.lwps_max as f64, h.lwps as f64, 0.0),
        _ => ("pset_default", h.cpus as f64, h.cpu_used, h.cpu_kernel),
    };
    let blank = |n: usize| vec!["-".to_string(); n];
    let extra_n = match res {
        Resource::ProcessorSet => 4,
        Resource::PhysicalMemory | Resource::VirtualMemory => 2,
        _ => 0,
    };
    if r.lines.total {
        let mut extra = blank(extra_n);
        if res == Resource::ProcessorSet {
            extra[0] = st.to_string();
        }
        rows.push(("[total]".into(), total, None, extra));
    }
    if r.lines.system {
        rows.push(("[system]".into(), system, None, blank(extra_n)));
    }
    if r.lines.zones {
        for u in r.sorted(res) {
            let (used, cap, extra) = match res {
                Resource::PhysicalMemory | Resource::VirtualMemory => {
                    let m = if res == Resource::PhysicalMemory {
                        &u.memory
                    } else {
                        &u.swap
                    };
                    (
                        m.used as f64,
                        m.cap.map(|c| c as f64),
                        vec![m.failcnt.to_string(), m.oom_kills.to_string()],
                    )
                }
                Resource::Lwps => (u.lwps.used as f64, u.lwps.cap.map(|c| c as f64), vec![]),
                _ => {
                    let shr = u.cpu.shares.filter(|_| st > 0).map_or("-".into(), |s| {
                        format!("{:.0}%", s as f64 * 100.0 / st as f64)
                    });
                    let shru =
                        shru(u, st, h.cpus).map_or("-".into(), |s| format!("{:.0}%", s * 100.0));
                    (
                        u.cpu.used,
                        u.cpu.cap,
                        vec![
                            cap_str(u.cpu.shares),
                            shr,
                            shru,
                            u.cpu.throttled_periods.to_string(),
                        ],
                    )
                }
            };
            rows.push((u.zonename.clone(), used, cap, extra));
        }
    }
    ResRows {
        resname,
        size,
        rows,
    }
}

/// The human report of one resource other than the summary, laid out as illumos's: the
/// resource's line (its name and size), then `ZONE USED PCT CAP %CAP` rows for `[total]`,
/// `[system]` and the zones (processor-set adds SHRS %SHR %SHRU; the memory resources
/// CAPHITS OOMS). The network resource (an extension) has a row per VNIC.
pub fn resource_report(res: Resource, r: &Report) -> String {
    let title = res.name().to_uppercase();
    if res == Resource::Summary {
        return String::new();
    }
    if res.needs_bpf() {
        return bpf_report(res, r);
    }
    if res == Resource::Network {
        let mut out = format!("{title}\n");
        out.push_str(&format!(
            "{:>16} {:>12} {:>9} {:>9}\n",
            "ZONE", "LINK", "RBYTES", "OBYTES"
        ));
        if r.lines.zones {
            for u in r.sorted(res) {
                for n in u.network.iter().filter(|n| r.named(&n.link)) {
                    out.push_str(&format!(
                        "{:>16} {:>12} {:>9} {:>9}\n",
                        u.zonename,
                        n.link,
                        human_bytes(n.received_bytes),
                        human_bytes(n.sent_bytes)
                    ));
                }
            }
        }
        out.push('\n');
        return out;
    }
    let rr = res_rows(res, r);
    if !r.named(rr.resname) {
        return String::new();
    }
    let is_cpu = res == Resource::ProcessorSet;
    let is_mem = matches!(res, Resource::PhysicalMemory | Resource::VirtualMemory);
    let fmt_v = |v: f64| {
        if is_cpu {
            format!("{v:.2}")
        } else if is_mem {
            human_bytes(v as u64)
        } else {
            format!("{v:.0}")
        }
    };
    let mut out = String::new();
    if r.lines.resource {
        let (head, size) = if is_cpu {
            ("ONLINE/CPUS", format!("{0}/{0}", r.host.cpus))
        } else {
            ("SIZE", fmt_v(rr.size))
        };
        out.push_str(&format!("{title:<20} {head:>12}\n"));
        out.push_str(&format!("{:<20} {size:>12}\n", rr.resname));
    }
    let mut head = format!(
        "{:>16} {:>7} {:>5} {:>7} {:>5}",
        "ZONE", "USED", "PCT", "CAP", "%CAP"
    );
    if is_cpu {
        head.push_str(&format!(" {:>5} {:>5} {:>5}", "SHRS", "%SHR", "%SHRU"));
    } else if is_mem {
        head.push_str(&format!(" {:>7} {:>5}", "CAPHITS", "OOMS"));
    }
    out.push_str(&head);
    out.push('\n');
    for (name, used, cap, extra) in &rr.rows {
        let mut l = format!(
            "{:>16} {:>7} {:>5} {:>7} {:>5}",
            name,
            fmt_v(*used),
            pct(*used, Some(rr.size)),
            cap.map_or("-".into(), fmt_v),
            pct(*used, *cap)
        );
        if is_cpu {
            l.push_str(&format!(" {:>5} {:>5} {:>5}", extra[0], extra[1], extra[2]));
        } else if is_mem {
            l.push_str(&format!(" {:>7} {:>5}", extra[0], extra[1]));
        }
        out.push_str(&l);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The parsable lines of one resource other than the summary, in illumos's layout:
/// `LABEL:RESOURCE:RESNAME:[resource]:SIZE`, then `LABEL:RESOURCE:RESNAME:ZONE:USED:PCT:CAP:
/// %CAP` for `[total]`, `[system]` and each zone (bytes for memory, CPUs for processor-set);
/// processor-set adds SHRS:%SHR:%SHRU:throttled-periods, the memory resources cap-hits:
/// oom-kills. RESNAME is mem_default, vm_default, pset_default or system-limit (lwps). The
/// network resource (an extension) has a line per VNIC: `LABEL:network:LINK:ZONE:received-
/// bytes:sent-bytes`.
pub fn resource_parsable(res: Resource, r: &Report) -> String {
    let ts = r.prefix();
    let label = r.label;
    let mut out = String::new();
    if res == Resource::Summary {
        return out;
    }
    if res.needs_bpf() {
        return bpf_parsable(res, r);
    }
    if res == Resource::Network {
        if r.lines.zones {
            for u in r.sorted(res) {
                for n in u.network.iter().filter(|n| r.named(&n.link)) {
                    out.push_str(&format!(
                        "{ts}{label}:network:{}:{}:{}:{}\n",
                        esc(&n.link),
                        esc(&u.zonename),
                        n.received_bytes,
                        n.sent_bytes
                    ));
                }
            }
        }
        return out;
    }
    let rr = res_rows(res, r);
    if !r.named(rr.resname) {
        return out;
    }
    let num = |v: f64| {
        if res == Resource::ProcessorSet {
            format!("{v:.2}")
        } else {
            format!("{v:.0}")
        }
    };
    let name = res.name();
    if r.lines.resource {
        out.push_str(&format!(
            "{ts}{label}:{name}:{}:[resource]:{}\n",
            rr.resname,
            num(rr.size)
        ));
    }
    for (zone, used, cap, extra) in &rr.rows {
        let mut l = format!(
            "{ts}{label}:{name}:{}:{}:{}:{}:{}:{}",
            rr.resname,
            esc(zone),
            num(*used),
            ppct(*used, Some(rr.size)),
            cap.map_or("-".into(), num),
            ppct(*used, *cap)
        );
        for e in extra {
            l.push(':');
            l.push_str(e);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The rows of an eBPF resource: `[total]` (the whole host), then the zones in `-S` order,
/// each with its figures (`None`: no data for the interval, as when bpftrace has not printed
/// yet). The kernel's own threads count in the global zone (the root cgroup).
fn bpf_rows<'a>(
    res: Resource,
    r: &'a Report,
) -> Vec<(&'a str, Option<SyscallUsage>, Option<RunqUsage>)> {
    let mut rows = Vec::new();
    if !r.named(res.name()) {
        return rows;
    }
    if r.lines.total {
        rows.push(("[total]", r.host.syscalls, r.host.runq));
    }
    if r.lines.zones {
        for u in r.sorted(res) {
            rows.push((u.zonename.as_str(), u.syscalls, u.runq));
        }
    }
    rows
}

/// The human report of `-r syscalls` (`ZONE CALLS/S CALLS`) or `-r runq` (`ZONE WAITS
/// MEAN-US MAX-US`); `-` where there is no data.
fn bpf_report(res: Resource, r: &Report) -> String {
    let rows = bpf_rows(res, r);
    if rows.is_empty() && !r.named(res.name()) {
        return String::new();
    }
    let mut out = format!("{}\n", res.name().to_uppercase());
    let dash = || "-".to_string();
    if res == Resource::Syscalls {
        out.push_str(&format!(
            "{:>16} {:>10} {:>12}\n",
            "ZONE", "CALLS/S", "CALLS"
        ));
        for (zone, sc, _) in rows {
            let (rate, n) = sc.map_or((dash(), dash()), |s| {
                (format!("{:.0}", s.per_second), s.count.to_string())
            });
            out.push_str(&format!("{zone:>16} {rate:>10} {n:>12}\n"));
        }
    } else {
        out.push_str(&format!(
            "{:>16} {:>10} {:>10} {:>10}\n",
            "ZONE", "WAITS", "MEAN-US", "MAX-US"
        ));
        for (zone, _, q) in rows {
            let (n, mean, max) = q.map_or((dash(), dash(), dash()), |q| {
                (
                    q.waits.to_string(),
                    format!("{:.1}", q.mean_us),
                    format!("{:.0}", q.max_us),
                )
            });
            out.push_str(&format!("{zone:>16} {n:>10} {mean:>10} {max:>10}\n"));
        }
    }
    out.push('\n');
    out
}

/// The parsable lines of `-r syscalls` (`LABEL:syscalls:ZONE:PER-SECOND:COUNT`) or `-r runq`
/// (`LABEL:runq:ZONE:WAITS:MEAN-US:MAX-US`), `[total]` first; `-` where there is no data.
fn bpf_parsable(res: Resource, r: &Report) -> String {
    let ts = r.prefix();
    let label = r.label;
    let name = res.name();
    let mut out = String::new();
    for (zone, sc, q) in bpf_rows(res, r) {
        let fields = if res == Resource::Syscalls {
            sc.map_or("-:-".to_string(), |s| {
                format!("{:.2}:{}", s.per_second, s.count)
            })
        } else {
            q.map_or("-:-:-".to_string(), |q| {
                format!("{}:{:.1}:{:.0}", q.waits, q.mean_us, q.max_us)
            })
        };
        out.push_str(&format!("{ts}{label}:{name}:{}:{fields}\n", esc(zone)));
    }
    out
}

/// A zone's `-j` object with only the keys of `resources` (all of them with the summary).
pub fn json_usage(u: &Usage, resources: &[Resource]) -> serde_json::Value {
    let mut v = serde_json::to_value(u).unwrap_or_default();
    if resources.contains(&Resource::Summary) {
        return v;
    }
    if let Some(obj) = v.as_object_mut() {
        let keep = |k: &str| match k {
            "zonename" | "zoneid" => true,
            "cpu" => resources.contains(&Resource::ProcessorSet),
            "physical-memory" => resources.contains(&Resource::PhysicalMemory),
            "virtual-memory" => resources.contains(&Resource::VirtualMemory),
            "lwps" => resources.contains(&Resource::Lwps),
            "network" => resources.contains(&Resource::Network),
            "syscalls" => resources.contains(&Resource::Syscalls),
            "runq" => resources.contains(&Resource::Runq),
            _ => false,
        };
        obj.retain(|k, _| keep(k));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(name: &str, at: Instant, cpu_ns: u64) -> Sample {
        Sample {
            zonename: name.into(),
            zoneid: 3,
            taken: at,
            cpu_ns,
            cpu_cap: Some(0.5),
            cpu_shares: Some(100),
            cpu_throttled: 7,
            mem_used: 10 << 20,
            mem_cap: Some(64 << 20),
            mem_failcnt: 2,
            oom_kills: 1,
            swap_used: 10 << 20,
            swap_cap: None,
            lwps: 5,
            lwps_cap: Some(64),
            nics: vec![NicUsage {
                link: "net0".into(),
                host_link: "zv0123456789".into(),
                received_bytes: 1000,
                sent_bytes: 200,
            }],
        }
    }

    #[test]
    fn cpu_use_is_cpu_time_over_wall_time() {
        let t0 = Instant::now();
        let a = sample("web", t0, 1_000_000_000);
        let b = sample("web", t0 + Duration::from_secs(2), 2_000_000_000);
        let r = report(&[a], std::slice::from_ref(&b));
        assert!((r[0].cpu.used - 0.5).abs() < 1e-9);
        assert_eq!(usage(None, &b).cpu.used, 0.0);
        assert_eq!(cap(u64::MAX), None);
        assert_eq!(cap(9_223_372_036_854_771_712), None);
        assert_eq!(cap(64 << 20), Some(64 << 20));
    }

    fn host() -> HostUsage {
        HostUsage {
            cpus: 2,
            cpu_used: 1.0,
            cpu_kernel: 0.1,
            mem_total: 4 << 30,
            mem_used: 1 << 30,
            mem_kernel: 100 << 20,
            vm_total: 5 << 30,
            vm_used: 1 << 30,
            vm_kernel: 100 << 20,
            lwps: 200,
            lwps_max: 1000,
            syscalls: None,
            runq: None,
        }
    }

    fn rep<'a>(h: &'a HostUsage, zones: &'a [Usage], sort: &'a [SortCol]) -> Report<'a> {
        Report {
            label: "interval",
            host: h,
            zones,
            lines: Lines::default(),
            sort,
            names: &[],
            timestamp: None,
        }
    }

    #[test]
    fn output_formats() {
        let t0 = Instant::now();
        let mut s = sample("a:b", t0, 1_500_000_000);
        let u = usage(None, &s);
        let h = host();
        let p = summary_parsable(&rep(&h, std::slice::from_ref(&u), &[SortCol::Used]));
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(
            lines,
            [
                "interval:summary:[total]:1.00:50.00%:-:-:1073741824:25.00%:-:1073741824:20.00%:-",
                "interval:summary:[system]:0.10:5.00%:-:-:104857600:2.44%:-:104857600:1.95%:-",
                "interval:summary:a\\:b:0.00:0.00%:0.00%:0.00%:10485760:0.24%:15.62%:10485760:0.20%:-",
            ],
            "{p}"
        );
        s.zonename = "web".into();
        let u = usage(None, &s);
        let prom = prometheus(std::slice::from_ref(&u));
        assert!(prom.contains("# TYPE zone_cpu_seconds_total counter\n"));
        assert!(prom.contains("zone_cpu_seconds_total{zone=\"web\"} 1.5\n"));
        assert!(prom.contains("zone_memory_cap_bytes{zone=\"web\"} 67108864\n"));
        assert!(!prom.contains("zone_swap_cap_bytes{"));
        assert!(prom.contains("zone_net_received_bytes_total{zone=\"web\",link=\"net0\"} 1000\n"));
        let g = global_usage(&h, std::slice::from_ref(&u));
        assert!((g.cpu.used - 0.9).abs() < 1e-9);
        assert_eq!(g.memory.used, (1 << 30) - (100 << 20) - (10 << 20));
        assert_eq!(g.lwps.used, 195);
        let zones = [g, u];
        let text = summary(&rep(&h, &zones, &[SortCol::Used]));
        assert!(text.contains("PhysMem: 4.0G"), "{text}");
        let names: Vec<&str> = text
            .lines()
            .skip(3)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(names, ["[total]", "[system]", "global", "web"], "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("web"))
            .unwrap();
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f[1..5], ["0.00", "0%", "0%", "0%"], "{text}");
        assert_eq!((f[5], f[7]), ("10.0M", "16%"), "{text}");
        // -S name puts global before web; -P zones drops [total] and [system].
        let mut r = rep(&h, &zones, &[SortCol::Name]);
        r.lines = parse_lines(&["zones".into()]).unwrap();
        let p = summary_parsable(&r);
        let names: Vec<&str> = p.lines().map(|l| l.split(':').nth(2).unwrap()).collect();
        assert_eq!(names, ["global", "web"]);
        assert_eq!(human_bytes(1536), "1.5K");
        assert!(parse_lines(&["bogus".into()]).is_err());
        assert!(parse_sort(&["size".into()]).is_err());
    }

    #[test]
    fn summary_reports_total_average_high() {
        assert_eq!(
            parse_reports(&["high,total".into()]).unwrap(),
            [ReportKind::Total, ReportKind::High]
        );
        assert!(parse_reports(&["/root".into()]).is_err());
        let h = host();
        let t0 = Instant::now();
        let mut a = usage(None, &sample("web", t0, 0));
        let mut acc = Accum::default();
        a.memory.used = 100;
        acc.add(&h, &[]);
        acc.add(&h, std::slice::from_ref(&a));
        a.memory.used = 300;
        acc.add(&h, std::slice::from_ref(&a));
        let mem = |k| acc.report(k).1[0].memory.used;
        // 3 intervals, the zone was up in 2: total 400/3, average 400/2, high 300.
        assert_eq!(mem(ReportKind::Total), 133);
        assert_eq!(mem(ReportKind::Average), 200);
        assert_eq!(mem(ReportKind::High), 300);
        assert_eq!(acc.report(ReportKind::Total).0.lwps, 200);
        assert_eq!(acc.report(ReportKind::High).1[0].memory.cap, Some(64 << 20));
    }

    #[test]
    fn resources_by_illumos_name() {
        let names = |v: &[&str]| {
            parse_resources(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|r| r.into_iter().map(Resource::name).collect::<Vec<_>>())
        };
        assert_eq!(names(&[]).unwrap(), ["summary"]);
        assert_eq!(
            names(&["lwps,memory", "psets"]).unwrap(),
            ["physical-memory", "virtual-memory", "processor-set", "lwps"]
        );
        assert_eq!(names(&["all"]).unwrap().len(), 6);
        assert_eq!(names(&["cpu", "processor-set"]).unwrap(), ["processor-set"]);
        // The eBPF resources come only by name: `all` does not start a probe.
        assert!(!names(&["all"]).unwrap().contains(&"syscalls"));
        assert_eq!(
            names(&["runq,syscalls,lwps"]).unwrap(),
            ["lwps", "syscalls", "runq"]
        );
        assert_eq!(names(&["run-queue"]).unwrap(), ["runq"]);
        let err = names(&["disk"]).unwrap_err();
        assert!(
            err.contains("-r \"disk\"") && err.contains("physical-memory"),
            "{err}"
        );
    }

    #[test]
    fn resource_reports() {
        let u = usage(None, &sample("web", Instant::now(), 0));
        let zones = std::slice::from_ref(&u);
        let h = host();
        let r = rep(&h, zones, &[SortCol::Used]);
        assert_eq!(
            resource_parsable(Resource::PhysicalMemory, &r),
            "interval:physical-memory:mem_default:[resource]:4294967296\n\
             interval:physical-memory:mem_default:[total]:1073741824:25.00%:-:-:-:-\n\
             interval:physical-memory:mem_default:[system]:104857600:2.44%:-:-:-:-\n\
             interval:physical-memory:mem_default:web:10485760:0.24%:67108864:15.62%:2:1\n"
        );
        let mut r9 = r.clone();
        r9.timestamp = Some("9".into());
        r9.lines = parse_lines(&["zones".into()]).unwrap();
        assert_eq!(
            resource_parsable(Resource::ProcessorSet, &r9),
            "9:interval:processor-set:pset_default:web:0.00:0.00%:0.50:0.00%:100:100%:0%:7\n"
        );
        assert_eq!(
            resource_parsable(Resource::Network, &r),
            "interval:network:net0:web:1000:200\n"
        );
        // -n picks resources by name.
        let names = ["vm_default".to_string()];
        let mut rn = r.clone();
        rn.names = &names;
        assert_eq!(resource_parsable(Resource::PhysicalMemory, &rn), "");
        assert!(resource_parsable(Resource::VirtualMemory, &rn).contains(":vm_default:web:"));
        let text = resource_report(Resource::Lwps, &r);
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.trim_start().starts_with("web"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(row, ["web", "5", "0%", "64", "8%"], "{text}");
        let j = json_usage(&u, &[Resource::Lwps]);
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{j}");
        assert_eq!(j["lwps"]["cap"], 64);
        assert!(json_usage(&u, &[Resource::Summary])["cpu"].is_object());
        // The eBPF resources: `-` before any data, then the figures, in every format.
        assert_eq!(
            resource_parsable(Resource::Syscalls, &r),
            "interval:syscalls:[total]:-:-\ninterval:syscalls:web:-:-\n"
        );
        let mut h2 = host();
        h2.syscalls = Some(SyscallUsage {
            per_second: 1500.0,
            count: 3000,
        });
        h2.runq = Some(RunqUsage {
            waits: 10,
            mean_us: 12.34,
            max_us: 80.0,
        });
        let mut u2 = u.clone();
        u2.syscalls = Some(SyscallUsage {
            per_second: 1000.5,
            count: 2001,
        });
        u2.runq = Some(RunqUsage::default());
        let z2 = std::slice::from_ref(&u2);
        let r2 = rep(&h2, z2, &[SortCol::Used]);
        assert_eq!(
            resource_parsable(Resource::Syscalls, &r2),
            "interval:syscalls:[total]:1500.00:3000\ninterval:syscalls:web:1000.50:2001\n"
        );
        assert_eq!(
            resource_parsable(Resource::Runq, &r2),
            "interval:runq:[total]:10:12.3:80\ninterval:runq:web:0:0.0:0\n"
        );
        let text = resource_report(Resource::Runq, &r2);
        assert!(text.starts_with("RUNQ\n"), "{text}");
        let row: Vec<&str> = text
            .lines()
            .find(|l| l.trim_start().starts_with("[total]"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(row, ["[total]", "10", "12.3", "80"], "{text}");
        let j = json_usage(&u2, &[Resource::Syscalls]);
        assert_eq!(j["syscalls"]["count"], 2001, "{j}");
        assert!(j.get("runq").is_none() && j.get("cpu").is_none(), "{j}");
        assert!(json_usage(&u, &[Resource::Summary])
            .get("syscalls")
            .is_none());
        // Summary reports: high takes the higher rate, total averages it.
        let mut acc = Accum::default();
        acc.add(&h2, z2);
        let mut u3 = u2.clone();
        u3.syscalls = Some(SyscallUsage {
            per_second: 0.5,
            count: 1,
        });
        acc.add(&h2, std::slice::from_ref(&u3));
        let rate = |k| acc.report(k).1[0].syscalls.unwrap().per_second;
        assert_eq!(rate(ReportKind::High), 1000.5);
        assert_eq!(rate(ReportKind::Total), 500.5);
        let dev = "Inter-|   Receive\n face |bytes\n  vn0: 1500 3 0 0 0 0 0 0 700 2 0 0 0 0 0 0\n";
        assert_eq!(net_dev_bytes(dev, "vn0"), Some((1500, 700)));
        assert_eq!(net_dev_bytes(dev, "vn1"), None);
    }
}
