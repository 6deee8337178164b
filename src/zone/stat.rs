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
use crate::runtime::container;

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

/// The cgroup of a live zone, from its container state.
fn zone_cgroup(paths: &ZonePaths) -> Result<Cgroup, StatError> {
    let (st, _) = container::state(&paths.runz_root, &paths.name).map_err(|e| StatError::Zone {
        zone: paths.name.clone(),
        msg: e.to_string(),
    })?;
    st.cgroup.ok_or_else(|| StatError::Zone {
        zone: paths.name.clone(),
        msg: "its container has no cgroup".into(),
    })
}

/// Sample one zone.
pub fn sample_zone(store: &Store, name: &str) -> Result<Sample, StatError> {
    let paths = ZonePaths::new(store, name);
    let cg = zone_cgroup(&paths)?;
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
        nics: nic_counters(store, name),
    })
}

/// The byte counters of each anet of `name` that has a host link now (the host ends' names
/// are derived as the networking layer makes them: [`super::network::host_link_name`]).
fn nic_counters(store: &Store, name: &str) -> Vec<NicUsage> {
    let Ok(Some(zone)) = store.load(name) else {
        return Vec::new();
    };
    zone.anet
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
        .collect()
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

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// The `-p` lines of one interval, illumos style: `interval:summary:ZONE:` then CPU used, CPU
/// cap, memory used, memory cap, swap used, swap cap, lwps, lwps cap (`-` for no cap).
pub fn parsable(zones: &[Usage], timestamp: Option<u64>) -> String {
    let ts = timestamp.map_or(String::new(), |t| format!("{t}:"));
    let mut out = String::new();
    for u in zones {
        out.push_str(&format!(
            "{ts}interval:summary:{}:{:.4}:{}:{}:{}:{}:{}:{}:{}\n",
            esc(&u.zonename),
            u.cpu.used,
            opt(u.cpu.cap),
            u.memory.used,
            opt(u.memory.cap),
            u.swap.used,
            opt(u.swap.cap),
            u.lwps.used,
            opt(u.lwps.cap),
        ));
    }
    out
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

/// The summary report of one interval (illumos `zonestat` default layout, without pools).
pub fn summary(zones: &[Usage], online: usize, physmem: u64) -> String {
    let mut out = format!(
        "SUMMARY                   Cpus/Online: {online}/{online}   PhysMem: {}\n",
        human_bytes(physmem)
    );
    out.push_str(&format!(
        "{:>16} {:>6} {:>6} {:>5} {:>5}  {:>7} {:>6} {:>7} {:>5}  {:>5} {:>5}\n",
        "ZONE", "CPU", "%PART", "CAP", "%CAP", "PHYSMEM", "%PART", "CAP", "%CAP", "LWPS", "CAP"
    ));
    let total_cpu: f64 = zones.iter().map(|u| u.cpu.used).sum();
    let total_mem: u64 = zones.iter().map(|u| u.memory.used).sum();
    let line = |name: &str,
                cpu: f64,
                ccap: Option<f64>,
                mem: u64,
                mcap: Option<u64>,
                l: String,
                lcap: Option<u64>| {
        format!(
            "{:>16} {:>6.2} {:>6} {:>5} {:>5}  {:>7} {:>6} {:>7} {:>5}  {:>5} {:>5}\n",
            name,
            cpu,
            pct(cpu, Some(online as f64)),
            ccap.map_or("-".into(), |c| format!("{c:.2}")),
            pct(cpu, ccap),
            human_bytes(mem),
            pct(mem as f64, Some(physmem as f64)),
            mcap.map_or("-".into(), human_bytes),
            pct(mem as f64, mcap.map(|c| c as f64)),
            l,
            opt(lcap),
        )
    };
    out.push_str(&line(
        "[total]",
        total_cpu,
        None,
        total_mem,
        None,
        "-".into(),
        None,
    ));
    for u in zones {
        out.push_str(&line(
            &u.zonename,
            u.cpu.used,
            u.cpu.cap,
            u.memory.used,
            u.memory.cap,
            u.lwps.used.to_string(),
            u.lwps.cap,
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
}

impl Resource {
    const ALL: [Resource; 6] = [
        Resource::Summary,
        Resource::PhysicalMemory,
        Resource::VirtualMemory,
        Resource::ProcessorSet,
        Resource::Lwps,
        Resource::Network,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Summary => "summary",
            Resource::PhysicalMemory => "physical-memory",
            Resource::VirtualMemory => "virtual-memory",
            Resource::ProcessorSet => "processor-set",
            Resource::Lwps => "lwps",
            Resource::Network => "network",
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
            "processor-set" | "psets" | "cpu" => &[ProcessorSet],
            "lwps" | "processes" | "limits" => &[Lwps],
            "network" => &[Network],
            "all" => &Resource::ALL,
            other => {
                return Err(format!(
                    "-r {other:?}: unknown resource; use summary, physical-memory, \
                     virtual-memory, memory, processor-set (psets), lwps (limits), network, \
                     default or all"
                ))
            }
        };
        wanted.extend_from_slice(add);
    }
    if wanted.is_empty() {
        wanted.push(Summary);
    }
    Ok(Resource::ALL
        .into_iter()
        .filter(|r| wanted.contains(r))
        .collect())
}

fn cap_str<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

/// The human report of one resource other than the summary: a heading and a line per zone.
pub fn resource_report(r: Resource, zones: &[Usage]) -> String {
    let mut out = format!("{}\n", r.name().to_uppercase());
    let mem = |out: &mut String, get: fn(&Usage) -> &MemUsage| {
        out.push_str(&format!(
            "{:>16} {:>8} {:>8} {:>5} {:>8} {:>5}\n",
            "ZONE", "USED", "CAP", "%CAP", "CAPHITS", "OOMS"
        ));
        for u in zones {
            let m = get(u);
            out.push_str(&format!(
                "{:>16} {:>8} {:>8} {:>5} {:>8} {:>5}\n",
                u.zonename,
                human_bytes(m.used),
                m.cap.map_or("-".into(), human_bytes),
                pct(m.used as f64, m.cap.map(|c| c as f64)),
                m.failcnt,
                m.oom_kills
            ));
        }
    };
    match r {
        Resource::Summary => return String::new(),
        Resource::PhysicalMemory => mem(&mut out, |u| &u.memory),
        Resource::VirtualMemory => mem(&mut out, |u| &u.swap),
        Resource::ProcessorSet => {
            out.push_str(&format!(
                "{:>16} {:>6} {:>6} {:>5} {:>6} {:>9}\n",
                "ZONE", "CPU", "CAP", "%CAP", "SHARES", "THROTTLED"
            ));
            for u in zones {
                out.push_str(&format!(
                    "{:>16} {:>6.2} {:>6} {:>5} {:>6} {:>9}\n",
                    u.zonename,
                    u.cpu.used,
                    u.cpu.cap.map_or("-".into(), |c| format!("{c:.2}")),
                    pct(u.cpu.used, u.cpu.cap),
                    cap_str(u.cpu.shares),
                    u.cpu.throttled_periods
                ));
            }
        }
        Resource::Lwps => {
            out.push_str(&format!(
                "{:>16} {:>6} {:>6} {:>5}\n",
                "ZONE", "USED", "CAP", "%CAP"
            ));
            for u in zones {
                out.push_str(&format!(
                    "{:>16} {:>6} {:>6} {:>5}\n",
                    u.zonename,
                    u.lwps.used,
                    cap_str(u.lwps.cap),
                    pct(u.lwps.used as f64, u.lwps.cap.map(|c| c as f64))
                ));
            }
        }
        Resource::Network => {
            out.push_str(&format!(
                "{:>16} {:>12} {:>9} {:>9}\n",
                "ZONE", "LINK", "RBYTES", "OBYTES"
            ));
            for u in zones {
                for n in &u.network {
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
    }
    out
}

/// The `-p` lines of one resource other than the summary: `interval:RESOURCE:ZONE:` then
/// physical-memory and virtual-memory: used:cap:cap-hits:oom-kills; processor-set:
/// used:cap:shares:throttled-periods; lwps: used:cap; network (a line per VNIC):
/// LINK:received-bytes:sent-bytes. `-` stands for no cap.
pub fn resource_parsable(r: Resource, zones: &[Usage], timestamp: Option<u64>) -> String {
    let ts = timestamp.map_or(String::new(), |t| format!("{t}:"));
    let mut out = String::new();
    for u in zones {
        let head = format!("{ts}interval:{}:{}", r.name(), esc(&u.zonename));
        let mem = |m: &MemUsage| {
            format!(
                "{head}:{}:{}:{}:{}\n",
                m.used,
                opt(m.cap),
                m.failcnt,
                m.oom_kills
            )
        };
        match r {
            Resource::Summary => {}
            Resource::PhysicalMemory => out.push_str(&mem(&u.memory)),
            Resource::VirtualMemory => out.push_str(&mem(&u.swap)),
            Resource::ProcessorSet => out.push_str(&format!(
                "{head}:{:.4}:{}:{}:{}\n",
                u.cpu.used,
                opt(u.cpu.cap),
                opt(u.cpu.shares),
                u.cpu.throttled_periods
            )),
            Resource::Lwps => {
                out.push_str(&format!("{head}:{}:{}\n", u.lwps.used, opt(u.lwps.cap)))
            }
            Resource::Network => {
                for n in &u.network {
                    out.push_str(&format!(
                        "{head}:{}:{}:{}\n",
                        esc(&n.link),
                        n.received_bytes,
                        n.sent_bytes
                    ));
                }
            }
        }
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

    #[test]
    fn output_formats() {
        let t0 = Instant::now();
        let mut s = sample("a:b", t0, 1_500_000_000);
        let u = usage(None, &s);
        assert_eq!(
            parsable(std::slice::from_ref(&u), None),
            "interval:summary:a\\:b:0.0000:0.5:10485760:67108864:10485760:-:5:64\n"
        );
        s.zonename = "web".into();
        let u = usage(None, &s);
        let prom = prometheus(std::slice::from_ref(&u));
        assert!(prom.contains("# TYPE zone_cpu_seconds_total counter\n"));
        assert!(prom.contains("zone_cpu_seconds_total{zone=\"web\"} 1.5\n"));
        assert!(prom.contains("zone_memory_cap_bytes{zone=\"web\"} 67108864\n"));
        assert!(!prom.contains("zone_swap_cap_bytes{"));
        assert!(prom.contains("zone_net_received_bytes_total{zone=\"web\",link=\"net0\"} 1000\n"));
        let text = summary(&[u], 2, 4 << 30);
        assert!(text.contains("PhysMem: 4.0G"), "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("web"))
            .unwrap();
        let f: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(f[3], "0.50");
        assert_eq!((f[7], f[8]), ("64.0M", "16%"));
        assert_eq!((f[9], f[10]), ("5", "64"));
        assert_eq!(human_bytes(1536), "1.5K");
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
        assert_eq!(
            resource_parsable(Resource::PhysicalMemory, zones, None),
            "interval:physical-memory:web:10485760:67108864:2:1\n"
        );
        assert_eq!(
            resource_parsable(Resource::ProcessorSet, zones, Some(9)),
            "9:interval:processor-set:web:0.0000:0.5:100:7\n"
        );
        assert_eq!(
            resource_parsable(Resource::Network, zones, None),
            "interval:network:web:net0:1000:200\n"
        );
        let text = resource_report(Resource::Lwps, zones);
        let row: Vec<&str> = text.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(row, ["web", "5", "64", "8%"], "{text}");
        let j = json_usage(&u, &[Resource::Lwps]);
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{j}");
        assert_eq!(j["lwps"]["cap"], 64);
        assert!(json_usage(&u, &[Resource::Summary])["cpu"].is_object());
    }
}
