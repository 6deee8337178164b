//! cgroup management for runz and zones: cgroupfs driver over cgroup v1,
//! hybrid (v1 controllers plus an empty unified hierarchy) and pure v2.
//!
//! A [`Cgroup`] is resolved once from the spec's `cgroupsPath`, serialised into
//! the container state, and rebuilt by later commands. Each hierarchy keeps its
//! own resolved directory, because on v1 a process can sit in a different
//! cgroup in every hierarchy.

mod attach;
mod devices_bpf;
mod error;
mod freezer;
mod fsutil;
mod procinfo;
mod stats;
pub mod support;
pub mod systemd;
mod v1;
mod v2;

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use error::{CgroupError, SystemdError};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, HugetlbStats, MemoryEntry, MemoryStats, PidsStats,
    Stats, Throttling,
};
pub use v2::shares_to_weight;

/// How cgroups are set up on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// v1 controllers plus a unified (v2) hierarchy without the controllers we use.
    Hybrid,
    /// Pure cgroup v2.
    V2,
}

/// Detects the host's cgroup mode from /sys/fs/cgroup (through libcgroups).
/// Falls back to [`Mode::V1`] when /sys/fs/cgroup is missing or unrecognisable.
pub fn mode() -> Mode {
    use libcgroups::common::{get_cgroup_setup, CgroupSetup};
    match get_cgroup_setup() {
        Ok(CgroupSetup::Unified) => Mode::V2,
        Ok(CgroupSetup::Hybrid) => Mode::Hybrid,
        Ok(CgroupSetup::Legacy) | Err(_) => Mode::V1,
    }
}

/// This cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// Where the hierarchy is mounted on the host, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// Controllers of the hierarchy (`cpu`, `cpuacct`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// Super options of the host mount, e.g. `rw,cpu,cpuacct` (to mount it again inside).
    pub options: String,
    /// True for the cgroup2 (unified) hierarchy.
    pub v2: bool,
    /// Path of this cgroup inside the hierarchy, as /proc/<pid>/cgroup shows it.
    pub path: PathBuf,
    /// Host directory of this cgroup.
    pub dir: PathBuf,
    /// Directories `create()` made, outermost first (only these parents are removed).
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

impl Hierarchy {
    fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// A container's cgroup across every mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    mode: Mode,
    hierarchies: Vec<Hierarchy>,
    /// The transient unit, with the systemd driver ([`Cgroup::resolve_systemd`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    systemd: Option<systemd::Unit>,
}

/// Validates and normalises the cgroups path; `None` or empty means `id`.
fn check_path(cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf, CgroupError> {
    let p = match cgroups_path {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from(id),
    };
    let text = p.to_string_lossy().into_owned();
    let invalid = |reason| CgroupError::InvalidPath {
        path: text.clone(),
        reason,
    };
    if text.is_empty() {
        return Err(invalid("empty, and no container id to default to"));
    }
    // A relative `slice:prefix:name` is the systemd driver's notation; under cgroupfs runc
    // takes it verbatim as one directory name (containerd's CRI sends it for pods whose
    // parent ends in .slice even with SystemdCgroup = false), and so do we.
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(invalid("must not contain \"..\""));
    }
    let normal: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if normal.as_os_str().is_empty() {
        return Err(invalid("must name a cgroup below the hierarchy root"));
    }
    Ok(if p.is_absolute() {
        Path::new("/").join(normal)
    } else {
        normal
    })
}

/// Decides the mode from what the process is placed in.
fn detect_mode(places: &[procinfo::Placement]) -> Result<Mode, CgroupError> {
    let v1_ctrl = places
        .iter()
        .any(|p| !p.is_v2() && p.own.controllers.iter().any(|c| !c.starts_with("name=")));
    let v2 = places.iter().any(procinfo::Placement::is_v2);
    match (v1_ctrl, v2) {
        (true, true) => Ok(Mode::Hybrid),
        (true, false) => Ok(Mode::V1),
        (false, true) => Ok(Mode::V2),
        (false, false) => Err(CgroupError::NoHierarchy),
    }
}

fn hierarchy_for(place: &procinfo::Placement, path: &Path) -> Hierarchy {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let (cg_path, dir) = if path.is_absolute() {
        (path.to_path_buf(), place.mount.mount_point.join(rel))
    } else {
        (
            place.own.path.join(rel),
            procinfo::host_dir(&place.mount, &place.own.path).join(rel),
        )
    };
    Hierarchy {
        mount_point: place.mount.mount_point.clone(),
        controllers: place.own.controllers.clone(),
        options: place.mount.super_options.clone(),
        v2: place.is_v2(),
        path: cg_path,
        dir,
        created: Vec::new(),
    }
}

impl Cgroup {
    /// Resolves the cgroup for `cgroups_path` (see [`Cgroup::resolve_from`]) using
    /// the calling process's /proc/self/cgroup and /proc/self/mountinfo.
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        let cg = fsutil::read(Path::new("/proc/self/cgroup"))?;
        let mi = fsutil::read(Path::new("/proc/self/mountinfo"))?;
        Self::resolve_from(&cg, &mi, cgroups_path, id)
    }

    /// Resolves from given /proc/<pid>/cgroup and mountinfo texts (also lets tests
    /// point the hierarchies at a scratch directory).
    ///
    /// An absolute `cgroups_path` is taken relative to each hierarchy's root; a
    /// relative one, or `None` (meaning `id`), lands beneath the process's own
    /// cgroup in each hierarchy.
    pub fn resolve_from(
        proc_cgroup: &str,
        mountinfo: &str,
        cgroups_path: Option<&Path>,
        id: &str,
    ) -> Result<Self, CgroupError> {
        let path = check_path(cgroups_path, id)?;
        let places = procinfo::placements(proc_cgroup, mountinfo)?;
        let mode = detect_mode(&places)?;
        let hierarchies = places
            .iter()
            .filter(|p| mode != Mode::V2 || p.is_v2())
            .map(|p| hierarchy_for(p, &path))
            .collect();
        Ok(Cgroup {
            mode,
            hierarchies,
            systemd: None,
        })
    }

    /// The host's cgroup mode as seen when resolving.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Every hierarchy: host mount point, controllers/options, this cgroup's path and dir.
    pub fn paths(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    fn v2_hierarchy(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2)
    }

    fn v1_with(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| !h.v2 && h.has(controller))
    }

    /// The hierarchy whose member list stands for the whole cgroup.
    fn primary(&self) -> Option<&Hierarchy> {
        self.v2_hierarchy()
            .or_else(|| self.v1_with("freezer"))
            .or_else(|| self.v1_with("devices"))
            .or_else(|| self.v1_with("pids"))
            .or_else(|| self.hierarchies.first())
    }

    /// Creates the cgroup directory in every hierarchy (`mkdir -p`), remembering
    /// which directories it made, so a failed create can still be `remove()`d.
    /// On v1 it seeds empty cpuset.cpus/mems from the parent; on v2 it enables
    /// the available controllers in the ancestors' cgroup.subtree_control.
    /// On a hybrid host, failing to create the unified one only drops it.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        let mode = self.mode;
        let mut dropped = Vec::new();
        for (i, h) in self.hierarchies.iter_mut().enumerate() {
            match mkdir_all(h) {
                Ok(()) => {}
                Err(_) if mode == Mode::Hybrid && h.v2 => {
                    remove_created_parents(h);
                    dropped.push(i);
                    continue;
                }
                Err(e) => return Err(e),
            }
            if !h.v2 && h.has("cpuset") {
                v1::seed_cpuset(h)?;
            }
            if mode == Mode::V2 {
                v2::enable_controllers(h);
            }
        }
        for i in dropped.into_iter().rev() {
            self.hierarchies.remove(i);
        }
        Ok(())
    }

    /// Applies `r` (see the crate docs for what is supported). The needed controllers, and
    /// the kernel's support for every host-dependent resource ([`support`]), are checked
    /// before anything is written.
    ///
    /// With the systemd driver the unit's properties are set first (SetUnitProperties), then the
    /// same values, and what systemd has no property for, are written to the files.
    pub fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        let normalised;
        let r = if self.systemd.is_some() {
            normalised = systemd::normalise(r);
            &normalised
        } else {
            r
        };
        support::check_dirs(self, r)?;
        if self.systemd.is_some() {
            // As runc: a limit below current use would have systemd OOM-kill the container.
            if let (Some(h), Some(limit)) = (
                self.v2_hierarchy(),
                r.memory().as_ref().and_then(|m| m.limit()),
            ) {
                v2::check_memory_limit(&h.dir, limit)?;
            }
            self.set_unit_properties(r)?;
        }
        match self.mode {
            Mode::V2 => {
                let h = self.v2_hierarchy().ok_or(CgroupError::NoHierarchy)?;
                v2::apply(h, r)?;
            }
            Mode::V1 | Mode::Hybrid => v1::apply(self, r)?,
        }
        support::apply_rdma(self, r)
    }

    /// Moves `pid` into this cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            fsutil::write_in(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// Whether [`Cgroup::create`] found the cgroup's own directory already there in some
    /// hierarchy (so it may hold someone's processes); false for one it made everywhere.
    pub fn existed_before(&self) -> bool {
        self.hierarchies.iter().any(|h| !h.created.contains(&h.dir))
    }

    /// Every pid in the cgroup and its descendants, sorted and deduplicated.
    /// A cgroup that no longer exists has none.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(h) = self.primary() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(&h.dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Removes the cgroup in every hierarchy, children first, retrying busy
    /// directories every 10ms for about a second in total, then the parents
    /// `create()` made when they are empty. Missing directories are fine. With the systemd
    /// driver the unit is stopped first (systemd then removes its cgroup; leftovers go here).
    pub fn remove(&self) -> Result<(), CgroupError> {
        self.stop_unit()?;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut first_err = None;
        for h in &self.hierarchies {
            match remove_tree(&h.dir, deadline) {
                Ok(()) => remove_created_parents(h),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Resource usage in the shape of runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.mode {
            Mode::V2 => match self.v2_hierarchy() {
                Some(h) => stats::v2(&h.dir),
                None => Ok(Stats::default()),
            },
            Mode::V1 | Mode::Hybrid => stats::v1(|c: &str| self.v1_with(c).map(|h| h.dir.clone())),
        }
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup so far: the
    /// `oom_kill` counter of v1 `memory.oom_control` or v2 `memory.events` (0 when absent).
    pub fn oom_kills(&self) -> u64 {
        let file = match self.mode {
            Mode::V2 => self.v2_hierarchy().map(|h| h.dir.join("memory.events")),
            Mode::V1 | Mode::Hybrid => self
                .v1_with("memory")
                .map(|h| h.dir.join("memory.oom_control")),
        };
        file.and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| oom_kill_count(&text))
            .unwrap_or(0)
    }
}

/// The `oom_kill N` line of memory.oom_control (v1) or memory.events (v2).
fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn mkdir_all(h: &mut Hierarchy) -> Result<(), CgroupError> {
    let rel = h
        .dir
        .strip_prefix(&h.mount_point)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut cur = h.mount_point.clone();
    for c in rel.components() {
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => h.created.push(cur.clone()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::io("create cgroup directory", &cur, e)),
        }
    }
    Ok(())
}

/// Best effort: rmdir the parents `create()` made, innermost first; stops at the first non-empty one.
fn remove_created_parents(h: &Hierarchy) {
    for d in h.created.iter().rev().filter(|d| **d != h.dir) {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => break,
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    if let Some(text) = fsutil::read_opt(&procs)? {
        out.extend(fsutil::parse_pids(&procs, &text)?);
    }
    for sub in fsutil::subdirs(dir)? {
        collect_pids(&sub, out)?;
    }
    Ok(())
}

fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    for sub in fsutil::subdirs(dir)? {
        remove_tree(&sub, deadline)?;
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if Instant::now() >= deadline {
                    return Err(CgroupError::Busy {
                        path: dir.to_path_buf(),
                        source: e,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(CgroupError::io("remove cgroup directory", dir, e)),
        }
    }
}

#[cfg(test)]
mod tests;
