//! cgroup v2 resource application through libcgroups' v2 manager, with the
//! controller checks and the runc conventions libcgroups does not do itself.

use std::path::Path;

use libcgroups::common::{CgroupManager, ControllerOpt};
use oci_spec::runtime::LinuxResources;

use crate::{fsutil, CgroupError, Hierarchy};

/// Converts v1 `cpu.shares` ([2, 262144], default 1024) to v2 `cpu.weight`
/// ([1, 10000], default 100) with runc's quadratic fit (runc 1.3.2,
/// opencontainers/cgroups#20); 0 stays 0, meaning "unset".
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// Converts a v1 blkio weight ([10, 1000]) to v2 io.weight ([1, 10000]) as runc does.
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> Result<u64, CgroupError> {
    if !(10..=1000).contains(&weight) {
        return Err(CgroupError::InvalidValue {
            resource: "blockIO.weight",
            value: weight.to_string(),
            reason: "must be between 10 and 1000".into(),
        });
    }
    Ok(1 + (u64::from(weight) - 10) * 9999 / 990)
}

/// BFQ takes the v1 value as is; otherwise io.weight gets the converted one.
fn write_io_weight(dir: &Path, weight: u16) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight");
    if bfq.exists() {
        return fsutil::write(&bfq, &weight.to_string());
    }
    let v = blkio_weight_to_io_weight(weight)?;
    fsutil::write_in(dir, "io.weight", &v.to_string())
}

/// The io.max line of one throttle: rate 0 means "no cap" (`max`), as on v1, where
/// libcgroups would write 0, which the kernel ignores.
pub(crate) fn io_max_line(key: &str, t: &oci_spec::runtime::LinuxThrottleDevice) -> String {
    let rate = match t.rate() {
        0 => "max".to_string(),
        n => n.to_string(),
    };
    format!("{}:{} {key}={rate}", t.major(), t.minor())
}

/// Writes the throttles of `b` to io.max, one line per device and key.
fn write_io_max(dir: &Path, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    let lists = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in lists {
        for t in list.iter().flatten() {
            fsutil::write_in(dir, "io.max", &io_max_line(key, t))?;
        }
    }
    Ok(())
}

/// Which (resource, controller) pairs `r` needs on v2.
pub(crate) fn needed(r: &LinuxResources) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if m.limit().is_some() || m.reservation().is_some() || m.swap().is_some() {
            out.push(("memory", "memory"));
        }
    }
    if let Some(c) = r.cpu() {
        let set = c.shares().is_some_and(|s| s != 0)
            || c.quota().is_some()
            || c.period().is_some()
            || c.idle().is_some()
            || c.burst().is_some();
        if set {
            out.push(("cpu", "cpu"));
        }
        if c.cpus().is_some() || c.mems().is_some() {
            out.push(("cpu.cpus/mems", "cpuset"));
        }
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() != 0) {
        out.push(("pids", "pids"));
    }
    if let Some(b) = r.block_io() {
        let set = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().is_some()
            || b.throttle_read_bps_device().is_some()
            || b.throttle_write_bps_device().is_some()
            || b.throttle_read_iops_device().is_some()
            || b.throttle_write_iops_device().is_some();
        if set {
            out.push(("blockIO", "io"));
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push(("hugepageLimits", "hugetlb"));
    }
    out
}

fn available(h: &Hierarchy) -> Result<Vec<String>, CgroupError> {
    let text = fsutil::read_opt(&h.dir.join("cgroup.controllers"))?.unwrap_or_default();
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Applies `r` to the v2 cgroup `h`: device rules become an eBPF filter,
/// network is refused, the rest goes through libcgroups.
pub(crate) fn apply(h: &Hierarchy, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(CgroupError::Unsupported(
                "linux.resources.network (net_cls/net_prio) is not available on cgroup v2".into(),
            ));
        }
    }
    let avail = available(h)?;
    for (resource, controller) in needed(r) {
        if !avail.iter().any(|c| c == controller) {
            return Err(CgroupError::MissingController {
                resource,
                controller: controller.into(),
                path: h.path.clone(),
            });
        }
    }
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()) {
        check_memory_limit(&h.dir, limit)?;
    }
    if let Some(devices) = r.devices() {
        crate::devices_bpf::apply(&h.dir, devices)?;
    }
    let mut r = r.clone();
    // pids.limit 0 means "unset" (runc on v1); libcgroups would write 1.
    if r.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    // libcgroups' blkio→io weight conversion overflows u16; do it here (runc fs2/io.go).
    if let Some(mut b) = r.block_io().clone() {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            write_io_weight(&h.dir, w)?;
        }
        b.set_weight(None);
        write_io_max(&h.dir, &b)?;
        b.set_throttle_read_bps_device(None);
        b.set_throttle_write_bps_device(None);
        b.set_throttle_read_iops_device(None);
        b.set_throttle_write_iops_device(None);
        r.set_block_io(Some(b));
    }
    let rel = h.dir.strip_prefix(&h.mount_point).unwrap_or(&h.dir);
    let wrap = |source| CgroupError::V2Apply {
        path: h.dir.clone(),
        source,
    };
    let manager = libcgroups::v2::manager::Manager::new(h.mount_point.clone(), rel.to_path_buf())
        .map_err(wrap)?;
    let opt = ControllerOpt {
        resources: &r,
        disable_oom_killer: false,
        oom_score_adj: None,
        freezer_state: None,
    };
    manager.apply(&opt).map_err(wrap)
}

/// Refuses a memory limit below what the cgroup uses now. v1 refuses such a write itself
/// (EBUSY); v2 accepts it and reclaims, and what it cannot reclaim (tmpfs without swap, locked
/// or busy anonymous memory) the OOM killer then takes from the cgroup's processes. Checking
/// first gives both the v1 behaviour: an error, and the old limit and the processes intact.
pub(crate) fn check_memory_limit(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    if limit <= 0 {
        return Ok(());
    }
    let Some(text) = fsutil::read_opt(&dir.join("memory.current"))? else {
        return Ok(());
    };
    let current: u64 = text.trim().parse().unwrap_or(0);
    if current > limit as u64 {
        return Err(CgroupError::InvalidValue {
            resource: "memory.limit",
            value: limit.to_string(),
            reason: format!(
                "below the {current} bytes the cgroup uses now; free memory in it first \
                 or choose a larger limit"
            ),
        });
    }
    Ok(())
}

/// Best effort, like runc/libcgroups: enable every available controller in the
/// subtree_control of each ancestor of the cgroup (from the mount root down to
/// the parent). Ancestors with member processes refuse (EBUSY); a resource that
/// needs the missing controller is then reported by `apply`.
pub(crate) fn enable_controllers(h: &Hierarchy) {
    let Ok(rel) = h.dir.strip_prefix(&h.mount_point) else {
        return;
    };
    let mut cur = h.mount_point.clone();
    let mut chain = vec![cur.clone()];
    for c in rel.components() {
        cur.push(c);
        chain.push(cur.clone());
    }
    chain.pop();
    for dir in chain {
        enable_in(&dir);
    }
}

fn enable_in(dir: &Path) {
    let Ok(Some(ctrls)) = fsutil::read_opt(&dir.join("cgroup.controllers")) else {
        return;
    };
    for c in ctrls.split_whitespace() {
        let _ = fsutil::write_in(dir, "cgroup.subtree_control", &format!("+{c}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
        // monotonic over the range
        let mut prev = 0;
        for s in (2..262_144).step_by(997) {
            let w = shares_to_weight(s);
            assert!(w >= prev, "weight for {s} went down");
            prev = w;
        }
    }

    #[test]
    fn a_memory_limit_below_current_use_is_refused() {
        let dir = std::env::temp_dir().join(format!("runz-test-v2mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // No memory.current (not a cgroup, or no memory controller): nothing to check.
        check_memory_limit(&dir, 1 << 20).unwrap();
        std::fs::write(dir.join("memory.current"), "33554432\n").unwrap();
        check_memory_limit(&dir, 64 << 20).unwrap();
        check_memory_limit(&dir, -1).unwrap();
        let err = check_memory_limit(&dir, 16 << 20).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            err.contains("16777216") && err.contains("33554432"),
            "{err}"
        );
    }

    #[test]
    fn io_max_lines_write_zero_as_max() {
        let t = |rate: u64| {
            oci_spec::runtime::LinuxThrottleDeviceBuilder::default()
                .major(7)
                .minor(3)
                .rate(rate)
                .build()
                .unwrap()
        };
        assert_eq!(io_max_line("wbps", &t(1 << 20)), "7:3 wbps=1048576");
        assert_eq!(io_max_line("riops", &t(0)), "7:3 riops=max");
    }

    #[test]
    fn blkio_weight_converts_like_runc() {
        assert_eq!(blkio_weight_to_io_weight(10).unwrap(), 1);
        assert_eq!(blkio_weight_to_io_weight(500).unwrap(), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000).unwrap(), 10000);
        let err = blkio_weight_to_io_weight(5).unwrap_err().to_string();
        assert!(err.contains("blockIO.weight") && err.contains('5'), "{err}");
    }
}
