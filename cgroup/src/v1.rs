//! cgroup v1 resource application, written after runc's libcontainer/cgroups/fs.
//!
//! libcgroups' v1 manager assumes one cgroup path for every hierarchy, which is
//! wrong when the process sits in different cgroups per hierarchy, so the file
//! writes are done here against each hierarchy's own directory.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxNetwork,
    LinuxResources,
};

use crate::{fsutil, Cgroup, CgroupError, Hierarchy};

fn memory_requested(m: &LinuxMemory) -> bool {
    m.limit().is_some_and(|v| v != 0)
        || m.reservation().is_some_and(|v| v != 0)
        || m.swap().is_some_and(|v| v != 0)
        || m.kernel_tcp().is_some_and(|v| v != 0)
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some()
}

fn cpu_requested(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.idle().is_some()
        || c.burst().is_some()
}

fn cpuset_requested(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.is_empty())
        || c.mems().as_deref().is_some_and(|s| !s.is_empty())
}

fn blkio_requested(b: &LinuxBlockIo) -> bool {
    let nonempty = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
    b.weight().is_some_and(|v| v != 0)
        || b.leaf_weight().is_some_and(|v| v != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || nonempty(b.throttle_read_bps_device())
        || nonempty(b.throttle_write_bps_device())
        || nonempty(b.throttle_read_iops_device())
        || nonempty(b.throttle_write_iops_device())
}

/// Which (resource, controller) pairs `r` needs on v1.
pub(crate) fn needed(r: &LinuxResources) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if r.memory().as_ref().is_some_and(memory_requested) {
        out.push(("memory", "memory"));
    }
    if let Some(c) = r.cpu() {
        if cpu_requested(c) {
            out.push(("cpu", "cpu"));
        }
        if cpuset_requested(c) {
            out.push(("cpu.cpus/mems", "cpuset"));
        }
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() != 0) {
        out.push(("pids", "pids"));
    }
    if r.block_io().as_ref().is_some_and(blkio_requested) {
        out.push(("blockIO", "blkio"));
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push(("hugepageLimits", "hugetlb"));
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() {
            out.push(("network.classID", "net_cls"));
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            out.push(("network.priorities", "net_prio"));
        }
    }
    if r.devices().is_some() {
        out.push(("devices", "devices"));
    }
    out
}

/// The directory of `controller`'s hierarchy, or an error naming the resource that needs it.
fn ctrl_dir<'a>(
    cg: &'a Cgroup,
    resource: &'static str,
    controller: &'static str,
) -> Result<&'a Path, CgroupError> {
    cg.v1_with(controller)
        .map(|h| h.dir.as_path())
        .ok_or_else(|| CgroupError::MissingController {
            resource,
            controller: controller.into(),
            path: cg.primary().map(|h| h.path.clone()).unwrap_or_default(),
        })
}

/// Applies `r` to the v1 hierarchies of `cg`, after checking every needed controller exists.
pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        return Err(CgroupError::Unsupported(format!(
            "invalid configuration: cannot use unified resources {keys:?} on cgroup v1"
        )));
    }
    let dir = |resource, controller| ctrl_dir(cg, resource, controller);
    for (resource, controller) in needed(r) {
        dir(resource, controller)?;
    }
    if let Some(c) = r.cpu() {
        if cpuset_requested(c) {
            apply_cpuset(dir("cpu.cpus/mems", "cpuset")?, c)?;
        }
        if cpu_requested(c) {
            apply_cpu(dir("cpu", "cpu")?, c)?;
        }
    }
    if let Some(m) = r.memory().as_ref().filter(|m| memory_requested(m)) {
        apply_memory(dir("memory", "memory")?, m)?;
    }
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".into()
        };
        fsutil::write_in(dir("pids", "pids")?, "pids.max", &v)?;
    }
    if let Some(b) = r.block_io().as_ref().filter(|b| blkio_requested(b)) {
        apply_blkio(dir("blockIO", "blkio")?, b)?;
    }
    if let Some(h) = r.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
        let d = dir("hugepageLimits", "hugetlb")?;
        for l in h {
            apply_hugetlb(d, l.page_size(), l.limit())?;
        }
    }
    if let Some(n) = r.network() {
        apply_network(cg, n)?;
    }
    if let Some(devs) = r.devices() {
        apply_devices(dir("devices", "devices")?, devs)?;
    }
    Ok(())
}

/// New cpuset cgroups start with empty cpus/mems, which makes joining them
/// fail. Fill every empty level from the mount point down to this cgroup from its parent —
/// not only the directories this `create()` made: a parent made concurrently by another
/// caller may not have been seeded yet when we look at it.
pub(crate) fn seed_cpuset(h: &Hierarchy) -> Result<(), CgroupError> {
    let Ok(rel) = h.dir.strip_prefix(&h.mount_point) else {
        return Ok(());
    };
    let mut levels = vec![h.mount_point.clone()];
    for part in rel.components() {
        let next = levels.last().expect("starts non-empty").join(part);
        levels.push(next);
    }
    for pair in levels.windows(2) {
        let (parent, d) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let Some(own) = fsutil::read_opt(&d.join(file))? else {
                continue;
            };
            if own.trim().is_empty() {
                let from_parent = fsutil::read(&parent.join(file))?;
                fsutil::write_in(d, file, from_parent.trim())?;
            }
        }
    }
    Ok(())
}

fn apply_cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write_in(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write_in(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// The real-time period and runtime depend on each other (the kernel refuses a runtime above
/// the period with EINVAL), so their order matters: the period first (growing), and when the
/// kernel refuses it while a runtime is being set too, the runtime first and the period after
/// (shrinking both), as runc 1.2 does (runc 1.1 fails there).
fn apply_rt(dir: &Path, period: Option<u64>, runtime: Option<i64>) -> Result<(), CgroupError> {
    let mut period_after = None;
    if let Some(p) = period {
        match fsutil::write_in(dir, "cpu.rt_period_us", &p.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if runtime.is_some() && source.raw_os_error() == Some(libc::EINVAL) =>
            {
                period_after = Some(p);
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(r) = runtime {
        fsutil::write_in(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(p) = period_after {
        fsutil::write_in(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    Ok(())
}

fn apply_cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    apply_rt(
        dir,
        c.realtime_period().filter(|v| *v != 0),
        c.realtime_runtime().filter(|v| *v != 0),
    )?;
    if let Some(shares) = c.shares().filter(|v| *v != 0) {
        fsutil::write_in(dir, "cpu.shares", &shares.to_string())?;
        let file = dir.join("cpu.shares");
        let got = fsutil::parse_u64(&file, &fsutil::read(&file)?)?;
        if got != shares {
            return Err(CgroupError::InvalidValue {
                resource: "cpu.shares",
                value: shares.to_string(),
                reason: format!("the kernel clamped it to {got} (allowed range 2-262144)"),
            });
        }
    }
    apply_cfs(dir, c.quota().unwrap_or(0), c.period().unwrap_or(0))?;
    if let Some(b) = c.burst() {
        fsutil::write_in(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        fsutil::write_in(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

/// runc's order: a period smaller than the current one may be rejected until
/// the quota is lowered, so retry it after the quota when that happens.
fn apply_cfs(dir: &Path, quota: i64, period: u64) -> Result<(), CgroupError> {
    let mut retry_period = false;
    if period != 0 {
        match fsutil::write_in(dir, "cpu.cfs_period_us", &period.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if source.raw_os_error() == Some(libc::EINVAL) && quota != 0 =>
            {
                retry_period = true;
            }
            Err(e) => return Err(e),
        }
    }
    if quota != 0 {
        fsutil::write_in(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if retry_period {
            fsutil::write_in(dir, "cpu.cfs_period_us", &period.to_string())?;
        }
    }
    Ok(())
}

fn check_mem_value(resource: &'static str, v: i64) -> Result<(), CgroupError> {
    if v < -1 {
        return Err(CgroupError::InvalidValue {
            resource,
            value: v.to_string(),
            reason: "must be -1 (unlimited) or a positive number of bytes".into(),
        });
    }
    Ok(())
}

fn apply_memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    check_mem_value("memory.limit", limit)?;
    check_mem_value("memory.swap", swap)?;
    set_memory_and_swap(dir, limit, swap)?;
    // memory.kernel is deprecated and ignored, as runc does.
    if let Some(tcp) = m.kernel_tcp().filter(|v| *v != 0) {
        fsutil::write_in(dir, "memory.kmem.tcp.limit_in_bytes", &tcp.to_string())?;
    }
    if let Some(res) = m.reservation().filter(|v| *v != 0) {
        check_mem_value("memory.reservation", res)?;
        fsutil::write_in(dir, "memory.soft_limit_in_bytes", &res.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fsutil::write_in(dir, "memory.oom_control", "1")?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::InvalidValue {
                resource: "memory.swappiness",
                value: s.to_string(),
                reason: "must be between 0 and 100".into(),
            });
        }
        fsutil::write_in(dir, "memory.swappiness", &s.to_string())?;
    }
    if let Some(h) = m.use_hierarchy() {
        fsutil::write_in(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

/// runc's setMemoryAndSwap: order the two writes so the kernel's
/// "memsw >= limit" rule holds both before and after.
fn set_memory_and_swap(dir: &Path, limit: i64, mut swap: i64) -> Result<(), CgroupError> {
    let memsw = "memory.memsw.limit_in_bytes";
    if limit == -1 && swap == 0 && dir.join(memsw).exists() {
        swap = -1;
    }
    let set = |file: &str, v: i64| {
        if v == 0 {
            Ok(())
        } else {
            fsutil::write_in(dir, file, &v.to_string())
        }
    };
    if limit != 0 && swap != 0 {
        let file = dir.join("memory.limit_in_bytes");
        let current = fsutil::parse_u64(&file, &fsutil::read(&file)?)?;
        if swap == -1 || current < swap as u64 {
            set(memsw, swap)?;
            return set("memory.limit_in_bytes", limit);
        }
    }
    set("memory.limit_in_bytes", limit)?;
    set(memsw, swap)
}

fn apply_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // Kernels without CFQ only have the BFQ files.
    let bfq = !dir.join("blkio.weight").exists() && dir.join("blkio.bfq.weight").exists();
    let (weight_file, weight_dev_file) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = b.weight().filter(|v| *v != 0) {
        fsutil::write_in(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|v| *v != 0) {
        fsutil::write_in(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            fsutil::write_in(dir, weight_dev_file, &v)?;
        }
        if let Some(w) = wd.leaf_weight() {
            let v = format!("{}:{} {}", wd.major(), wd.minor(), w);
            fsutil::write_in(dir, "blkio.leaf_weight_device", &v)?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            let v = format!("{}:{} {}", t.major(), t.minor(), t.rate());
            fsutil::write_in(dir, file, &v)?;
        }
    }
    Ok(())
}

fn apply_hugetlb(dir: &Path, page_size: &str, limit: i64) -> Result<(), CgroupError> {
    if page_size.is_empty() || page_size.contains('/') {
        return Err(CgroupError::InvalidValue {
            resource: "hugepageLimits.pageSize",
            value: format!("{page_size:?}"),
            reason: "must look like \"2MB\"".into(),
        });
    }
    let file = format!("hugetlb.{page_size}.limit_in_bytes");
    if !dir.join(&file).exists() {
        return Err(CgroupError::InvalidValue {
            resource: "hugepageLimits.pageSize",
            value: page_size.into(),
            reason: format!("the kernel has no {file}"),
        });
    }
    fsutil::write_in(dir, &file, &limit.to_string())?;
    let rsvd = format!("hugetlb.{page_size}.rsvd.limit_in_bytes");
    if dir.join(&rsvd).exists() {
        fsutil::write_in(dir, &rsvd, &limit.to_string())?;
    }
    Ok(())
}

fn apply_network(cg: &Cgroup, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        let dir = ctrl_dir(cg, "network.classID", "net_cls")?;
        fsutil::write_in(dir, "net_cls.classid", &id.to_string())?;
    }
    for p in n.priorities().iter().flatten() {
        let dir = ctrl_dir(cg, "network.priorities", "net_prio")?;
        let v = format!("{} {}", p.name(), p.priority());
        fsutil::write_in(dir, "net_prio.ifpriomap", &v)?;
    }
    Ok(())
}

/// Formats one rule as the kernel expects it in devices.allow/deny: `c 1:3 rwm`.
pub(crate) fn device_rule(rule: &LinuxDeviceCgroup) -> Result<String, CgroupError> {
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "c",
        Some(t) => {
            return Err(CgroupError::InvalidValue {
                resource: "devices.type",
                value: t.as_str().into(),
                reason: "only a, b, c and u can be used in device rules".into(),
            })
        }
    };
    let num = |v: Option<i64>| match v {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".into(),
    };
    let access = rule
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    if !access.chars().all(|c| "rwm".contains(c)) {
        return Err(CgroupError::InvalidValue {
            resource: "devices.access",
            value: format!("{access:?}"),
            reason: "may only contain r, w and m".into(),
        });
    }
    Ok(format!(
        "{typ} {}:{} {access}",
        num(rule.major()),
        num(rule.minor())
    ))
}

/// Denies everything, then applies exactly the given rules in order.
fn apply_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let formatted = rules
        .iter()
        .map(|r| Ok((r.allow(), device_rule(r)?)))
        .collect::<Result<Vec<_>, CgroupError>>()?;
    fsutil::write_in(dir, "devices.deny", "a")?;
    for (allow, rule) in formatted {
        let file = if allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fsutil::write_in(dir, file, &rule)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn device_rules_format_like_runc() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(device_rule(&r).unwrap(), "c 1:3 rwm");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(device_rule(&all).unwrap(), "a *:* rwm");
        let pts = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::U)
            .major(136)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(device_rule(&pts).unwrap(), "c 136:* rw");
        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert!(device_rule(&bad)
            .unwrap_err()
            .to_string()
            .contains("devices.type"));
        let bad_access = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rx")
            .build()
            .unwrap();
        assert!(device_rule(&bad_access)
            .unwrap_err()
            .to_string()
            .contains("\"rx\""));
    }

    #[test]
    fn needed_controllers_follow_the_request() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .cpus("0".to_string())
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
            .network(
                LinuxNetworkBuilder::default()
                    .class_id(7u32)
                    .build()
                    .unwrap(),
            )
            .devices(vec![])
            .build()
            .unwrap();
        let ctrls: Vec<&str> = needed(&r).into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            ctrls,
            vec!["memory", "cpuset", "pids", "net_cls", "devices"]
        );
        // zero values mean "unset", as in runc
        let zero = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(0).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
            .build()
            .unwrap();
        assert!(needed(&zero).is_empty());
    }

    #[test]
    fn memory_and_swap_order_lets_swap_grow_first() {
        let dir = std::env::temp_dir().join(format!("runz-test-{}-memswap", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"] {
            std::fs::write(dir.join(f), "9223372036854771712\n").unwrap();
        }
        set_memory_and_swap(&dir, 1 << 20, 2 << 20).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), (1 << 20).to_string());
        assert_eq!(read("memory.memsw.limit_in_bytes"), (2 << 20).to_string());
        set_memory_and_swap(&dir, -1, 0).unwrap();
        assert_eq!(read("memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(read("memory.limit_in_bytes"), "-1");
        assert!(check_mem_value("memory.limit", -2).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
