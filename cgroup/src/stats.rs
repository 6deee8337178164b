//! Resource usage in the JSON shape of runc's `events --stats` "data" object
//! (runc 1.1 libcontainer/cgroups and types/events.go: cpu, cpuset, memory, pids, blkio,
//! hugetlb, intel_rdt, network_interfaces, in that order; serialize the structs themselves,
//! not through `serde_json::Value`, whose maps would sort the keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{fsutil, CgroupError};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Top-level stats object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    #[serde(default)]
    pub cpuset: CpuSetStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Keyed by page size, e.g. "2MB".
    pub hugetlb: BTreeMap<String, HugetlbStats>,
    /// Always `{}`: this host has no RDT (runc prints `{}` there too).
    #[serde(default)]
    pub intel_rdt: IntelRdtStats,
    /// Always null: runc's own `events` never fills it either.
    #[serde(default)]
    pub network_interfaces: Option<Vec<BTreeMap<String, u64>>>,
}

/// runc's CPUSet stats: the cpuset controller's files (v1), the effective lists (v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSetStats {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    #[serde(default)]
    pub cpu_exclusive: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    #[serde(default)]
    pub mem_hardwall: u64,
    #[serde(default)]
    pub mem_exclusive: u64,
    #[serde(default)]
    pub memory_migrate: u64,
    #[serde(default)]
    pub memory_spread_page: u64,
    #[serde(default)]
    pub memory_spread_slab: u64,
    #[serde(default)]
    pub memory_pressure: u64,
    #[serde(default)]
    pub sched_load_balance: u64,
    #[serde(default)]
    pub sched_relax_domain_level: i64,
}

/// runc's IntelRdt stats; every field is omitted where the host has no RDT.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntelRdtStats {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU, in kernel mode (v1 cpuacct.usage_all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU, in user mode (v1 cpuacct.usage_all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioStats {
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// USER_HZ, the unit of cpuacct.stat.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Stats from v1 hierarchies; `dir(controller)` gives each controller's cgroup dir.
/// Missing controllers or files leave their part zero.
pub(crate) fn v1(dir: impl Fn(&str) -> Option<PathBuf>) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(d) = dir("cpuacct").as_deref() {
        v1_cpuacct(d, &mut s.cpu.usage)?;
    }
    if let Some(d) = dir("cpuset").as_deref() {
        s.cpuset = v1_cpuset(d)?;
    }
    if let Some(d) = dir("cpu").as_deref() {
        let stat = fsutil::read_flat_keyed(&d.join("cpu.stat"))?;
        s.cpu.throttling = Throttling {
            periods: stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: stat.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dir("memory").as_deref() {
        s.memory = v1_memory(d)?;
    }
    if let Some(d) = dir("pids").as_deref() {
        s.pids = pids(d)?;
    }
    if let Some(d) = dir("blkio").as_deref() {
        s.blkio = v1_blkio(d)?;
    }
    if let Some(d) = dir("hugetlb").as_deref() {
        s.hugetlb = hugetlb(d, "usage_in_bytes", "max_usage_in_bytes", |d, size| {
            fsutil::read_u64_or_zero(&d.join(format!("hugetlb.{size}.failcnt")))
        })?;
    }
    Ok(s)
}

fn v1_cpuacct(d: &Path, usage: &mut CpuUsage) -> Result<(), CgroupError> {
    usage.total = fsutil::read_u64_or_zero(&d.join("cpuacct.usage"))?;
    let percpu = d.join("cpuacct.usage_percpu");
    if let Some(text) = fsutil::read_opt(&percpu)? {
        usage.percpu = text
            .split_whitespace()
            .map(|v| fsutil::parse_u64(&percpu, v))
            .collect::<Result<_, _>>()?;
    }
    // "cpu user system" then one line per CPU, in ns.
    let all = d.join("cpuacct.usage_all");
    if let Some(text) = fsutil::read_opt(&all)? {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 3 {
                usage.percpu_user.push(fsutil::parse_u64(&all, f[1])?);
                usage.percpu_kernel.push(fsutil::parse_u64(&all, f[2])?);
            }
        }
    }
    let stat = fsutil::read_flat_keyed(&d.join("cpuacct.stat"))?;
    let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / clock_ticks();
    usage.user = ns(stat.get("user").copied().unwrap_or(0));
    usage.kernel = ns(stat.get("system").copied().unwrap_or(0));
    Ok(())
}

/// A cpuset list ("0-2,5") expanded, as runc does; an empty file gives none.
fn cpu_list(path: &Path, text: &str) -> Result<Vec<u16>, CgroupError> {
    let bad = || CgroupError::Parse {
        path: path.to_path_buf(),
        content: text.to_string(),
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn read_cpu_list(path: &Path) -> Result<Vec<u16>, CgroupError> {
    match fsutil::read_opt(path)? {
        Some(text) => cpu_list(path, &text),
        None => Ok(Vec::new()),
    }
}

fn v1_cpuset(d: &Path) -> Result<CpuSetStats, CgroupError> {
    let f = |n: &str| fsutil::read_u64_or_zero(&d.join(format!("cpuset.{n}")));
    let level = d.join("cpuset.sched_relax_domain_level");
    let level = match fsutil::read_opt(&level)? {
        Some(t) => t.trim().parse().map_err(|_| CgroupError::Parse {
            path: level.clone(),
            content: t.clone(),
        })?,
        None => 0,
    };
    Ok(CpuSetStats {
        cpus: read_cpu_list(&d.join("cpuset.cpus"))?,
        cpu_exclusive: f("cpu_exclusive")?,
        mems: read_cpu_list(&d.join("cpuset.mems"))?,
        mem_hardwall: f("mem_hardwall")?,
        mem_exclusive: f("mem_exclusive")?,
        memory_migrate: f("memory_migrate")?,
        memory_spread_page: f("memory_spread_page")?,
        memory_spread_slab: f("memory_spread_slab")?,
        memory_pressure: f("memory_pressure")?,
        sched_load_balance: f("sched_load_balance")?,
        sched_relax_domain_level: level,
    })
}

fn v1_memory_entry(d: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    let f = |name: &str| fsutil::read_u64_or_zero(&d.join(format!("{prefix}.{name}")));
    Ok(MemoryEntry {
        limit: f("limit_in_bytes")?,
        usage: f("usage_in_bytes")?,
        max: f("max_usage_in_bytes")?,
        failcnt: f("failcnt")?,
    })
}

fn v1_memory(d: &Path) -> Result<MemoryStats, CgroupError> {
    let raw = fsutil::read_flat_keyed(&d.join("memory.stat"))?;
    Ok(MemoryStats {
        cache: raw.get("cache").copied().unwrap_or(0),
        usage: v1_memory_entry(d, "memory")?,
        swap: v1_memory_entry(d, "memory.memsw")?,
        kernel: v1_memory_entry(d, "memory.kmem")?,
        kernel_tcp: v1_memory_entry(d, "memory.kmem.tcp")?,
        raw,
    })
}

fn pids(d: &Path) -> Result<PidsStats, CgroupError> {
    let limit = fsutil::read_u64_or_zero(&d.join("pids.max"))?;
    Ok(PidsStats {
        current: fsutil::read_u64_or_zero(&d.join("pids.current"))?,
        limit: if limit == u64::MAX { 0 } else { limit },
    })
}

/// Parses blkio "major:minor Op value" lines (the "Total" line has no device).
pub(crate) fn parse_blkio(path: &Path, text: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let bad = |line: &str| CgroupError::Parse {
        path: path.to_path_buf(),
        content: line.to_string(),
    };
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let (maj, min) = f[0].split_once(':').ok_or_else(|| bad(line))?;
        out.push(BlkioEntry {
            major: maj.parse().map_err(|_| bad(line))?,
            minor: min.parse().map_err(|_| bad(line))?,
            op: f[1].to_string(),
            value: f[2].parse().map_err(|_| bad(line))?,
        });
    }
    Ok(out)
}

/// runc prefers the CFQ/BFQ files and falls back to the throttle ones.
fn v1_blkio(d: &Path) -> Result<BlkioStats, CgroupError> {
    let pick = |names: [&str; 3]| -> Result<Vec<BlkioEntry>, CgroupError> {
        for n in names {
            let p = d.join(n);
            if let Some(text) = fsutil::read_opt(&p)? {
                let entries = parse_blkio(&p, &text)?;
                if !entries.is_empty() {
                    return Ok(entries);
                }
            }
        }
        Ok(Vec::new())
    };
    Ok(BlkioStats {
        io_service_bytes_recursive: pick([
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?,
        io_serviced_recursive: pick([
            "blkio.io_serviced_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?,
    })
}

/// Page sizes present as `hugetlb.<size>.<usage_file>` in `d`.
fn hugetlb(
    d: &Path,
    usage_file: &str,
    max_file: &str,
    failcnt: impl Fn(&Path, &str) -> Result<u64, CgroupError>,
) -> Result<BTreeMap<String, HugetlbStats>, CgroupError> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir(d).map_err(|e| CgroupError::io("list", d, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|r| r.strip_suffix(&format!(".{usage_file}")))
            .filter(|s| !s.contains('.'))
        else {
            continue;
        };
        let f = |n: &str| fsutil::read_u64_or_zero(&d.join(format!("hugetlb.{size}.{n}")));
        let stat = HugetlbStats {
            usage: f(usage_file)?,
            max: f(max_file)?,
            failcnt: failcnt(d, size)?,
        };
        out.insert(size.to_string(), stat);
    }
    Ok(out)
}

/// Stats from a v2 cgroup directory (runc fs2 conventions: usec → ns, swap
/// reported as memory+swap like v1, failcnt from the "max" event).
pub(crate) fn v2(d: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    let cpu = fsutil::read_flat_keyed(&d.join("cpu.stat"))?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
    s.cpu.usage = CpuUsage {
        total: us("usage_usec"),
        percpu: Vec::new(),
        percpu_kernel: Vec::new(),
        percpu_user: Vec::new(),
        kernel: us("system_usec"),
        user: us("user_usec"),
    };
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };
    s.cpuset = CpuSetStats {
        cpus: read_cpu_list(&d.join("cpuset.cpus.effective"))?,
        mems: read_cpu_list(&d.join("cpuset.mems.effective"))?,
        ..CpuSetStats::default()
    };
    s.memory = v2_memory(d)?;
    s.pids = pids(d)?;
    s.blkio = v2_io(d)?;
    s.hugetlb = hugetlb(d, "current", "max", |d, size| {
        let ev = fsutil::read_flat_keyed(&d.join(format!("hugetlb.{size}.events")))?;
        Ok(ev.get("max").copied().unwrap_or(0))
    })?;
    Ok(s)
}

fn v2_memory(d: &Path) -> Result<MemoryStats, CgroupError> {
    let f = |n: &str| fsutil::read_u64_or_zero(&d.join(n));
    let raw = fsutil::read_flat_keyed(&d.join("memory.stat"))?;
    let events = fsutil::read_flat_keyed(&d.join("memory.events"))?;
    let usage = MemoryEntry {
        limit: f("memory.max")?,
        usage: f("memory.current")?,
        max: f("memory.peak")?,
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    let swap_events = fsutil::read_flat_keyed(&d.join("memory.swap.events"))?;
    let swap = MemoryEntry {
        limit: f("memory.swap.max")?.saturating_add(usage.limit),
        usage: f("memory.swap.current")?.saturating_add(usage.usage),
        max: f("memory.swap.peak")?,
        failcnt: swap_events.get("fail").copied().unwrap_or(0),
    };
    Ok(MemoryStats {
        cache: raw.get("file").copied().unwrap_or(0),
        usage,
        swap,
        kernel: MemoryEntry::default(),
        kernel_tcp: MemoryEntry::default(),
        raw,
    })
}

/// io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
pub(crate) fn parse_io_stat(path: &Path, text: &str) -> Result<BlkioStats, CgroupError> {
    let mut s = BlkioStats::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || CgroupError::Parse {
            path: path.to_path_buf(),
            content: line.to_string(),
        };
        let mut fields = line.split_whitespace();
        let dev = fields.next().ok_or_else(bad)?;
        let (maj, min) = dev.split_once(':').ok_or_else(bad)?;
        let (major, minor) = (
            maj.parse().map_err(|_| bad())?,
            min.parse().map_err(|_| bad())?,
        );
        for kv in fields {
            let (k, v) = kv.split_once('=').ok_or_else(bad)?;
            let value = v.parse().map_err(|_| bad())?;
            let entry = |op: &str| BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            };
            match k {
                "rbytes" => s.io_service_bytes_recursive.push(entry("Read")),
                "wbytes" => s.io_service_bytes_recursive.push(entry("Write")),
                "rios" => s.io_serviced_recursive.push(entry("Read")),
                "wios" => s.io_serviced_recursive.push(entry("Write")),
                _ => {}
            }
        }
    }
    Ok(s)
}

fn v2_io(d: &Path) -> Result<BlkioStats, CgroupError> {
    let p = d.join("io.stat");
    match fsutil::read_opt(&p)? {
        Some(text) => parse_io_stat(&p, &text),
        None => Ok(BlkioStats::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines_parse_and_total_is_skipped() {
        let p = Path::new("/x");
        let e = parse_blkio(p, "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 4096)
        );
    }

    #[test]
    fn io_stat_parses_into_runc_ops() {
        let p = Path::new("/x");
        let s = parse_io_stat(
            p,
            "253:1 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        )
        .unwrap();
        assert_eq!(s.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(s.io_service_bytes_recursive[1].value, 20);
        assert_eq!(s.io_serviced_recursive[0].value, 1);
        assert!(parse_io_stat(p, "253:1 rbytes\n").is_err());
    }

    #[test]
    fn serialises_in_runc_shape() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.throttling.throttled_periods = 2;
        s.memory.kernel_tcp.limit = 1;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 1);
        assert!(
            v["pids"].get("current").is_none(),
            "zero fields are omitted like runc"
        );
        let back: Stats = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        let text = serde_json::to_string(&s).unwrap();
        let order = [
            "\"cpu\":",
            "\"cpuset\":",
            "\"memory\":",
            "\"pids\":",
            "\"blkio\":",
            "\"hugetlb\":",
            "\"intel_rdt\":{}",
            "\"network_interfaces\":null",
        ];
        let at: Vec<usize> = order.iter().map(|k| text.find(k).expect(k)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn cpuset_lists_expand_as_runc_does() {
        let p = Path::new("cpuset.cpus");
        assert_eq!(cpu_list(p, "0-2,5\n").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(cpu_list(p, "\n").unwrap(), Vec::<u16>::new());
        assert!(cpu_list(p, "3-1").is_err());
    }
}
