//! What this host's kernel can apply. A resource whose cgroup file the kernel does not offer
//! is refused, naming the missing file and what to enable, before anything is made or
//! written: never a create that dies half-way on a write.
//!
//! Two levels:
//! - [`check`] and the per-resource probes look at the kernel as a whole (which I/O
//!   schedulers are offered, which controllers are mounted, which huge page sizes and RDMA
//!   devices exist). They need no cgroup of their own, so `zoneadm verify` and `zonecfg`
//!   can run them before anything exists.
//! - [`check_dirs`] looks for the exact files in a cgroup's own directories, right before
//!   [`crate::Cgroup::apply`] writes the first value.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxResources};

use crate::{fsutil, procinfo, Cgroup, CgroupError, Hierarchy, Mode};

/// Where the kernel's facts are read: `/sys` and the cgroup hierarchies' mount points.
/// Tests point these at a scratch tree.
#[derive(Debug, Clone)]
pub struct Host {
    mode: Mode,
    sys: PathBuf,
    /// v1: mount point per controller; v2: one entry ("", the unified mount).
    mounts: Vec<(Vec<String>, PathBuf)>,
}

impl Host {
    /// The running host, from /proc/self/mountinfo.
    pub fn current() -> Result<Host, CgroupError> {
        let mi = fsutil::read(Path::new("/proc/self/mountinfo"))?;
        let cg = fsutil::read(Path::new("/proc/self/cgroup"))?;
        Host::from(&cg, &mi, Path::new("/sys"))
    }

    /// A host described by /proc/self/cgroup and mountinfo texts, with `/sys` at `sys`.
    pub fn from(proc_cgroup: &str, mountinfo: &str, sys: &Path) -> Result<Host, CgroupError> {
        let places = procinfo::placements(proc_cgroup, mountinfo)?;
        let mode = crate::detect_mode(&places)?;
        let mounts = places
            .iter()
            .filter(|p| (mode == Mode::V2) == p.is_v2())
            .map(|p| (p.own.controllers.clone(), p.mount.mount_point.clone()))
            .collect();
        Ok(Host {
            mode,
            sys: sys.to_path_buf(),
            mounts,
        })
    }

    /// The unified root on v2, or the v1 hierarchy that has `controller`.
    fn root_of(&self, controller: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|(c, _)| self.mode == Mode::V2 || c.iter().any(|x| x == controller))
            .map(|(_, m)| m.as_path())
    }

    /// The controller is mounted (v1) or offered by the unified root (v2).
    fn controller(&self, resource: &'static str, controller: &str) -> Result<(), CgroupError> {
        let missing = || {
            CgroupError::NotInKernel {
            resource: resource.to_string(),
            missing: format!("the {controller} cgroup controller"),
            remedy: match self.mode {
                Mode::V2 => format!("enable {controller} in /sys/fs/cgroup/cgroup.controllers (a kernel with CONFIG_CGROUPS for it)"),
                _ => format!("mount the {controller} hierarchy under /sys/fs/cgroup"),
            },
        }
        };
        let root = self.root_of(controller).ok_or_else(missing)?;
        if self.mode == Mode::V2 {
            let text = fsutil::read_opt(&root.join("cgroup.controllers"))?.unwrap_or_default();
            if !text.split_whitespace().any(|c| c == controller) {
                return Err(missing());
            }
        }
        Ok(())
    }

    /// The I/O schedulers any block device of this host offers (`/sys/block/*/queue/scheduler`).
    fn schedulers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.sys.join("block")) else {
            return out;
        };
        for e in entries.flatten() {
            let file = e.path().join("queue/scheduler");
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for s in text.split_whitespace() {
                let s = s.trim_matches(|c| c == '[' || c == ']').to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// A block I/O weight can be applied: v1 needs BFQ (blkio.bfq.weight) or the old CFQ
    /// (blkio.weight); v2 needs the io controller and BFQ (io.bfq.weight) or the io.cost
    /// model (io.weight).
    pub fn io_weight(&self) -> Result<(), CgroupError> {
        let (io, files) = match self.mode {
            Mode::V2 => ("io", "io.weight or io.bfq.weight"),
            _ => ("blkio", "blkio.weight or blkio.bfq.weight"),
        };
        self.controller("blockIO.weight", io)?;
        let scheds = self.schedulers();
        let bfq = scheds.iter().any(|s| s == "bfq");
        let other = match self.mode {
            Mode::V2 => self
                .root_of(io)
                .is_some_and(|r| r.join("io.cost.qos").exists()),
            _ => scheds.iter().any(|s| s == "cfq"),
        };
        if bfq || other {
            return Ok(());
        }
        let offered = if scheds.is_empty() {
            "no block device offers an I/O scheduler".to_string()
        } else {
            format!("the block devices offer only {}", scheds.join(", "))
        };
        Err(CgroupError::NotInKernel {
            resource: "blockIO.weight".into(),
            missing: format!("{files} ({offered})"),
            remedy: BFQ_REMEDY.into(),
        })
    }

    /// Device `major:minor` can be throttled or weighted: a whole disk with a request queue
    /// (the kernel refuses partitions and queue-less devices).
    pub fn io_device(&self, major: i64, minor: i64) -> Result<(), CgroupError> {
        let dev = format!("{major}:{minor}");
        let dir = self.sys.join("dev/block").join(&dev);
        let err = |missing: String, remedy: &str| CgroupError::NotInKernel {
            resource: format!("blockIO device {dev}"),
            missing,
            remedy: remedy.into(),
        };
        if !dir.exists() {
            return Err(err(
                format!("{} (no such block device)", dir.display()),
                "name a block device of this host",
            ));
        }
        if !dir.join("queue").exists() {
            return Err(err(
                format!(
                    "{} (a partition or a device without a request queue)",
                    dir.join("queue").display()
                ),
                "cap the whole disk the partition is on",
            ));
        }
        Ok(())
    }

    /// Huge pages of `size` (runc's names: "2MB", "1GB", "64KB") can be limited.
    pub fn hugetlb(&self, size: &str) -> Result<(), CgroupError> {
        self.controller("hugepageLimits", "hugetlb")?;
        let kb = hugepage_kb(size).ok_or_else(|| CgroupError::InvalidValue {
            resource: "hugepageLimits.pageSize",
            value: size.to_string(),
            reason: "expected a size like 2MB or 1GB".into(),
        })?;
        let dir = self
            .sys
            .join(format!("kernel/mm/hugepages/hugepages-{kb}kB"));
        if !dir.exists() {
            return Err(CgroupError::NotInKernel {
                resource: format!("hugepageLimits pageSize {size}"),
                missing: dir.display().to_string(),
                remedy: "use a huge page size this kernel offers (ls /sys/kernel/mm/hugepages)"
                    .into(),
            });
        }
        Ok(())
    }

    /// RDMA device `name` exists and the rdma controller is there.
    pub fn rdma(&self, name: &str) -> Result<(), CgroupError> {
        self.controller("rdma", "rdma")?;
        let dir = self.sys.join("class/infiniband").join(name);
        if name.contains('/') || !dir.exists() {
            return Err(CgroupError::NotInKernel {
                resource: format!("rdma device {name:?}"),
                missing: dir.display().to_string(),
                remedy: "name an RDMA device of this host (ls /sys/class/infiniband)".into(),
            });
        }
        Ok(())
    }

    /// A `unified` key (v2 only): its controller is offered, and for `misc.max` every
    /// resource named is one the kernel counts (misc.capacity).
    pub fn unified(&self, key: &str, value: &str) -> Result<(), CgroupError> {
        if self.mode != Mode::V2 {
            return Ok(()); // refused as a whole on v1 by apply, with runc's text
        }
        let Some((controller, _)) = key.split_once('.') else {
            return Ok(()); // libcgroups refuses a malformed key with its own error
        };
        if controller != "cgroup" {
            self.controller("unified", controller)?;
        }
        if key == "misc.max" {
            let root = self.root_of("misc").unwrap_or(Path::new("/sys/fs/cgroup"));
            let cap = fsutil::read_opt(&root.join("misc.capacity"))?.unwrap_or_default();
            for line in value.lines() {
                let Some(name) = line.split_whitespace().next() else {
                    continue;
                };
                if !cap
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name))
                {
                    return Err(CgroupError::NotInKernel {
                        resource: format!("unified misc.max {name}"),
                        missing: format!("{name} in {}", root.join("misc.capacity").display()),
                        remedy: "name a misc resource this kernel counts (cat /sys/fs/cgroup/misc.capacity)".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every host-dependent resource of `r`.
    pub fn check(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(b) = r.block_io() {
            self.block_io(b)?;
        }
        for h in r.hugepage_limits().iter().flatten() {
            self.hugetlb(h.page_size())?;
        }
        for name in r.rdma().iter().flat_map(|m| m.keys()) {
            self.rdma(name)?;
        }
        let mut unified: Vec<_> = r.unified().iter().flatten().collect();
        unified.sort();
        for (k, v) in unified {
            self.unified(k, v)?;
        }
        Ok(())
    }

    fn block_io(&self, b: &LinuxBlockIo) -> Result<(), CgroupError> {
        let weighted = b.weight().is_some_and(|w| w != 0)
            || b.leaf_weight().is_some_and(|w| w != 0)
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty());
        if weighted {
            self.io_weight()?;
        }
        for wd in b.weight_device().iter().flatten() {
            self.io_device(wd.major(), wd.minor())?;
        }
        let throttles = [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ];
        for t in throttles.into_iter().flatten().flatten() {
            if t.rate() != 0 {
                self.io_device(t.major(), t.minor())?;
            }
        }
        Ok(())
    }
}

/// "2MB" → 2048, "1GB" → 1048576, "64KB" → 64 (runc's hugepage size names).
fn hugepage_kb(size: &str) -> Option<u64> {
    let upper = size.to_ascii_uppercase();
    let (num, mult) = if let Some(n) = upper.strip_suffix("KB") {
        (n, 1)
    } else if let Some(n) = upper.strip_suffix("MB") {
        (n, 1 << 10)
    } else if let Some(n) = upper.strip_suffix("GB") {
        (n, 1 << 20)
    } else {
        return None;
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The kernel-wide check of `r` on the running host (see the module docs). Reads nothing
/// when `r` asks for none of the host-dependent resources.
pub fn check(r: &LinuxResources) -> Result<(), CgroupError> {
    let dependent = r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|u| !u.is_empty());
    if !dependent {
        return Ok(());
    }
    Host::current()?.check(r)
}

/// The exact files `r` needs, in `cg`'s own directories (after `create`, before any write).
/// A controller that is missing altogether is left to `apply`'s own check and error.
pub(crate) fn check_dirs(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    let dir_of = |v1_controller: &str| -> Option<&Hierarchy> {
        match cg.mode {
            Mode::V2 => cg.v2_hierarchy(),
            _ => cg.v1_with(v1_controller),
        }
    };
    if let (Some(b), Some(h)) = (r.block_io(), dir_of("blkio")) {
        block_io_files(h, b)?;
    }
    if let Some(h) = dir_of("hugetlb") {
        for limit in r.hugepage_limits().iter().flatten() {
            let size = limit.page_size();
            let file = if h.v2 {
                format!("hugetlb.{size}.max")
            } else {
                format!("hugetlb.{size}.limit_in_bytes")
            };
            need_file(h, &format!("hugepageLimits pageSize {size}"), &file, || {
                "use a huge page size this kernel offers (ls /sys/kernel/mm/hugepages)".into()
            })?;
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        let remedy = || "a kernel with the rdma cgroup controller (CONFIG_CGROUP_RDMA)".into();
        match dir_of("rdma") {
            Some(h) => need_file(h, "rdma", "rdma.max", remedy)?,
            None => {
                return Err(CgroupError::NotInKernel {
                    resource: "rdma".into(),
                    missing: "rdma cgroup controller".into(),
                    remedy: remedy(),
                })
            }
        }
    }
    if let (Some(u), Some(h)) = (r.unified(), cg.v2_hierarchy()) {
        if u.contains_key("misc.max") {
            need_file(h, "unified misc.max", "misc.max", || {
                "a kernel with the misc cgroup controller (CONFIG_CGROUP_MISC)".into()
            })?;
        }
    }
    Ok(())
}

/// `file` must exist in `h`'s directory.
fn need_file(
    h: &Hierarchy,
    resource: &str,
    file: &str,
    remedy: impl FnOnce() -> String,
) -> Result<(), CgroupError> {
    if h.dir.join(file).exists() {
        return Ok(());
    }
    Err(CgroupError::NotInKernel {
        resource: resource.to_string(),
        missing: h.dir.join(file).display().to_string(),
        remedy: remedy(),
    })
}

/// The weight file (either scheduler's) and a request queue for every capped device.
fn block_io_files(h: &Hierarchy, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weighted = b.weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty());
    let files: &[&str] = if h.v2 {
        &["io.weight", "io.bfq.weight"]
    } else {
        &["blkio.weight", "blkio.bfq.weight"]
    };
    if weighted && !files.iter().any(|f| h.dir.join(f).exists()) {
        // Say why, from the kernel as a whole, when that explains it.
        let missing = match Host::current().and_then(|host| host.io_weight()) {
            Err(CgroupError::NotInKernel { missing, .. }) => missing,
            _ => format!("{} in {}", files.join(" or "), h.dir.display()),
        };
        return Err(CgroupError::NotInKernel {
            resource: "blockIO.weight".into(),
            missing,
            remedy: BFQ_REMEDY.into(),
        });
    }
    let devices = [
        b.throttle_read_bps_device(),
        b.throttle_write_bps_device(),
        b.throttle_read_iops_device(),
        b.throttle_write_iops_device(),
    ];
    let sys = Host {
        mode: Mode::V1,
        sys: PathBuf::from("/sys"),
        mounts: Vec::new(),
    };
    for t in devices.into_iter().flatten().flatten() {
        // A device that is gone is the kernel's to refuse (ENODEV names it); a partition
        // would be accepted by nothing, so say so here.
        let dev = sys
            .sys
            .join(format!("dev/block/{}:{}", t.major(), t.minor()));
        if t.rate() != 0 && dev.exists() {
            sys.io_device(t.major(), t.minor())?;
        }
    }
    Ok(())
}

const BFQ_REMEDY: &str = "enable the BFQ I/O scheduler (CONFIG_IOSCHED_BFQ, or modprobe bfq) and \
                          select it: echo bfq > /sys/block/DEV/queue/scheduler";

/// Writes `r`'s RDMA limits to rdma.max (v1 and v2 alike), as runc does: one line per device
/// with the fields that are set. [`check_dirs`] has made sure the file is there.
pub(crate) fn apply_rdma(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    let Some(map) = r.rdma().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let h = match cg.mode {
        Mode::V2 => cg.v2_hierarchy(),
        _ => cg.v1_with("rdma"),
    }
    .ok_or(CgroupError::NoHierarchy)?;
    let mut devices: Vec<_> = map.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, limit) in devices {
        let mut line = dev.clone();
        if let Some(n) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={n}"));
        }
        if let Some(n) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={n}"));
        }
        fsutil::write_in(&h.dir, "rdma.max", &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procinfo::tests::{HYBRID_CGROUP, HYBRID_MOUNTINFO, V2_CGROUP, V2_MOUNTINFO};

    fn sys_with(scheds: &[(&str, &str)]) -> tempfile_dir::Dir {
        let d = tempfile_dir::Dir::new();
        for (dev, s) in scheds {
            let q = d.path().join("block").join(dev).join("queue");
            std::fs::create_dir_all(&q).unwrap();
            std::fs::write(q.join("scheduler"), s).unwrap();
        }
        d
    }

    mod tempfile_dir {
        use std::path::{Path, PathBuf};
        pub struct Dir(PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "runz-test-support-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn no_bfq_on_v1_refuses_the_weight_naming_the_files_and_the_scheduler() {
        let sys = sys_with(&[("vda", "[none] mq-deadline kyber\n")]);
        let host = Host::from(HYBRID_CGROUP, HYBRID_MOUNTINFO, sys.path()).unwrap();
        let e = host.io_weight().unwrap_err().to_string();
        assert!(e.contains("blkio.weight or blkio.bfq.weight"), "{e}");
        assert!(e.contains("none, mq-deadline, kyber"), "{e}");
        assert!(
            e.contains("echo bfq > /sys/block/DEV/queue/scheduler"),
            "{e}"
        );
    }

    #[test]
    fn bfq_on_any_device_takes_the_weight() {
        let sys = sys_with(&[
            ("vda", "[none] mq-deadline\n"),
            ("vdb", "mq-deadline [bfq] none\n"),
        ]);
        let host = Host::from(HYBRID_CGROUP, HYBRID_MOUNTINFO, sys.path()).unwrap();
        host.io_weight().unwrap();
    }

    #[test]
    fn v2_needs_the_io_controller_and_bfq_or_iocost() {
        let sys = sys_with(&[("vda", "[none]\n")]);
        let cg = tempfile_dir::Dir::new();
        let mi = V2_MOUNTINFO.replace("/sys/fs/cgroup", &cg.path().display().to_string());
        let host = Host::from(V2_CGROUP, &mi, sys.path()).unwrap();
        let e = host.io_weight().unwrap_err().to_string();
        assert!(e.contains("the io cgroup controller"), "{e}");
        std::fs::write(cg.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        let e = host.io_weight().unwrap_err().to_string();
        assert!(e.contains("io.weight or io.bfq.weight"), "{e}");
        std::fs::write(cg.path().join("io.cost.qos"), "").unwrap();
        host.io_weight().unwrap();
    }

    #[test]
    fn partitions_and_unknown_devices_cannot_be_capped() {
        let sys = sys_with(&[]);
        let disk = sys.path().join("dev/block/254:0/queue");
        std::fs::create_dir_all(&disk).unwrap();
        std::fs::create_dir_all(sys.path().join("dev/block/254:1")).unwrap();
        let host = Host::from(HYBRID_CGROUP, HYBRID_MOUNTINFO, sys.path()).unwrap();
        host.io_device(254, 0).unwrap();
        let e = host.io_device(254, 1).unwrap_err().to_string();
        assert!(e.contains("partition"), "{e}");
        let e = host.io_device(254, 9).unwrap_err().to_string();
        assert!(e.contains("no such block device"), "{e}");
    }

    #[test]
    fn hugepage_sizes_are_those_the_kernel_offers() {
        assert_eq!(hugepage_kb("2MB"), Some(2048));
        assert_eq!(hugepage_kb("1GB"), Some(1 << 20));
        assert_eq!(hugepage_kb("2M"), None);
        let sys = sys_with(&[]);
        std::fs::create_dir_all(sys.path().join("kernel/mm/hugepages/hugepages-2048kB")).unwrap();
        let host = Host::from(HYBRID_CGROUP, HYBRID_MOUNTINFO, sys.path()).unwrap();
        // The hybrid fixture has no hugetlb hierarchy.
        let e = host.hugetlb("2MB").unwrap_err().to_string();
        assert!(e.contains("hugetlb cgroup controller"), "{e}");
    }
}
