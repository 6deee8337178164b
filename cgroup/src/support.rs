//! What this host's kernel can apply. A resource whose cgroup file the kernel does not offer
//! is refused, naming the missing file and what to enable, before anything is made or
//! written: never a create that dies half-way on a write.
//!
//! Two levels:
//! - [`Host`] looks at the kernel as a whole (which I/O schedulers are offered, whether a
//!   device has a request queue). It needs no cgroup of its own, so `zoneadm verify` can ask
//!   it before anything exists.
//! - [`check_dirs`] looks for the exact files in a cgroup's own directories (I/O weight, huge
//!   page sizes, rdma.max, misc.max), right before [`crate::Cgroup::apply`] writes the first
//!   value; runz and zoneadmd meet it there.

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
        device_queue(&self.sys, major, minor)
    }
}

/// `major:minor` under `sys` (/sys) is a whole disk with a request queue.
fn device_queue(sys: &Path, major: i64, minor: i64) -> Result<(), CgroupError> {
    let dev = format!("{major}:{minor}");
    let dir = sys.join("dev/block").join(&dev);
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
    let sys = Path::new("/sys");
    for t in devices.into_iter().flatten().flatten() {
        // A device that is gone is the kernel's to refuse (ENODEV names it); a partition
        // would be accepted by nothing, so say so here.
        let dev = sys.join(format!("dev/block/{}:{}", t.major(), t.minor()));
        if t.rate() != 0 && dev.exists() {
            device_queue(sys, t.major(), t.minor())?;
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
}
