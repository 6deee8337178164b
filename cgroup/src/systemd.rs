//! The systemd cgroup driver (`runz --systemd-cgroup`), after runc's: the container's cgroup is
//! a transient scope unit `<prefix>-<name>.scope` in the slice named by a `slice:prefix:name`
//! cgroupsPath, started over D-Bus with `Delegate=yes` and the container's init in `PIDs`;
//! resources are set as unit properties (`SetUnitProperties`) and then written to the cgroup
//! files as well, so what systemd has no property for still takes effect; removing the cgroup
//! stops the unit.
//!
//! D-Bus goes through libcgroups' `systemd` manager: its native client is a blocking Unix socket
//! in the calling thread (no thread is spawned; the process that forks init stays
//! single-threaded). It is only used on pure cgroup v2 hosts, by root: on hybrid and v1 hosts,
//! and rootless, the driver refuses with the reason instead of half-working.
//!
//! Where it differs from runc, because libcgroups' client offers no more: the resources are set
//! by SetUnitProperties right after StartTransientUnit (runc sends them in the start call), the
//! unit's Description is libcgroups' "youki container <id>", there is no ResetFailedUnit after a
//! stop, and `org.systemd.property.*` annotations are refused. Shares map to CPUWeight with the
//! quadratic formula of runc ≥ 1.3.2 and crun (1024 → 100), as the cgroupfs driver does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use libcgroups::common::{CgroupManager, ControllerOpt};
use libcgroups::systemd::manager::{Manager, SystemdManagerError};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::SystemdError;
use crate::{Cgroup, CgroupError, Mode};

/// The scope prefix when the spec gives no cgroupsPath (runc's is "runc").
pub const DEFAULT_PREFIX: &str = "runz";
/// The parent slice when the cgroupsPath names none (root's; runc's too).
pub const DEFAULT_SLICE: &str = "system.slice";
/// How long to wait for systemd to have moved init into the new scope.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// Annotations whose suffix runc sends as extra unit properties.
pub const PROPERTY_ANNOTATION: &str = "org.systemd.property.";

/// A container's systemd unit, as recorded in its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// The parent slice, e.g. `system.slice`.
    pub slice: String,
    /// The scope prefix, e.g. `cri-containerd`.
    pub prefix: String,
    /// The name part, e.g. the container id.
    pub name: String,
    /// The unit: `<prefix>-<name>.scope`.
    pub unit: String,
    /// Its cgroup below the v2 root: the expanded slice, then the unit, e.g.
    /// `/kubepods.slice/kubepods-pod1.slice/cri-containerd-ID.scope`.
    pub path: PathBuf,
    /// The container id (the unit's description names it).
    pub id: String,
}

/// Whether the host runs systemd as its init, as runc decides it: `/run/systemd/system` is a
/// directory.
pub fn running() -> bool {
    libcgroups::systemd::booted()
}

/// Parses a cgroupsPath for the systemd driver as runc does: `slice:prefix:name` (an empty
/// slice means `system.slice`), or nothing at all for `system.slice:runz:<id>`.
pub fn parse(cgroups_path: &str, id: &str) -> Result<Unit, SystemdError> {
    let (slice, prefix, name) = split(cgroups_path, id)?;
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    if name.ends_with(".slice") {
        return Err(SystemdError::Unsupported(format!(
            "cgroupsPath {cgroups_path:?} names a slice ({name}): a container's processes go \
             in a scope; name it slice:prefix:name with a name not ending in .slice"
        )));
    }
    if name.is_empty() || [prefix, name].iter().any(|s| s.contains('/')) {
        return Err(SystemdError::Unsupported(format!(
            "cgroupsPath {cgroups_path:?}: the prefix must have no \"/\" and the name must be \
             non-empty with no \"/\""
        )));
    }
    let unit = format!("{prefix}-{name}.scope");
    let path = expand_slice(slice)?.join(&unit);
    Ok(Unit {
        slice: slice.to_string(),
        prefix: prefix.to_string(),
        name: name.to_string(),
        unit,
        path,
        id: id.to_string(),
    })
}

/// The three parts of a cgroupsPath (runc's first check, made before it looks for systemd).
fn split<'a>(
    cgroups_path: &'a str,
    id: &'a str,
) -> Result<(&'a str, &'a str, &'a str), SystemdError> {
    if cgroups_path.is_empty() {
        return Ok(("", DEFAULT_PREFIX, id));
    }
    match cgroups_path.split(':').collect::<Vec<_>>()[..] {
        [s, p, n] => Ok((s, p, n)),
        _ => Err(SystemdError::PathFormat(cgroups_path.to_string())),
    }
}

/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root (runc's
/// `ExpandSlice`, with its error).
pub fn expand_slice(slice: &str) -> Result<PathBuf, SystemdError> {
    let invalid = || SystemdError::InvalidSlice(slice.to_string());
    let stem = slice.strip_suffix(".slice").ok_or_else(invalid)?;
    if slice.contains('/') {
        return Err(invalid());
    }
    if stem == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(invalid());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// `quota` rounded up as runc does: systemd keeps CPUQuotaPerSecUSec as a whole percentage, so
/// quota×10⁶/period is rounded up to a multiple of 10 000 µs and the quota recomputed from it,
/// for the cgroup file to get the value systemd applies. Period 0 or unset means 100 000 µs.
pub fn round_cpu_quota(quota: i64, period: Option<u64>) -> i64 {
    if quota <= 0 {
        return quota;
    }
    let period = match period {
        Some(p) if p > 0 => p,
        _ => 100_000,
    };
    let mut per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    if !per_sec.is_multiple_of(10_000) {
        per_sec = (per_sec / 10_000 + 1) * 10_000;
    }
    (per_sec.saturating_mul(period) / 1_000_000) as i64
}

/// `r` as the driver applies it: the CPU quota rounded ([`round_cpu_quota`]) and a pids limit
/// of 0 dropped (runc's "unset", which would otherwise become TasksMax=0).
pub(crate) fn normalise(r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    if let Some(mut cpu) = r.cpu().clone() {
        if let Some(q) = cpu.quota() {
            cpu.set_quota(Some(round_cpu_quota(q, cpu.period())));
        }
        r.set_cpu(Some(cpu));
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    r
}

/// The names of `org.systemd.property.*` annotations. The driver cannot send arbitrary unit
/// properties (libcgroups' client has no call for them), so `create` refuses them by name
/// rather than dropping them.
pub fn property_annotations<'a>(annotations: impl Iterator<Item = &'a String>) -> Vec<String> {
    annotations
        .filter(|k| k.starts_with(PROPERTY_ANNOTATION))
        .cloned()
        .collect()
}

/// Wraps a libcgroups error of `op` on `unit`.
fn dbus(op: &'static str, unit: &Unit) -> impl FnOnce(SystemdManagerError) -> SystemdError {
    let unit = unit.unit.clone();
    move |e| SystemdError::Dbus {
        op,
        unit,
        source: Box::new(e),
    }
}

/// A connection to systemd for `unit` (root's system bus, or systemd's private socket).
fn manager(root: &Path, unit: &Unit) -> Result<Manager, SystemdError> {
    let spec_path = format!("{}:{}:{}", unit.slice, unit.prefix, unit.name);
    Manager::new(
        root.to_path_buf(),
        PathBuf::from(spec_path),
        unit.id.clone(),
        true,
        JOIN_WAIT,
    )
    .map_err(dbus("connect for", unit))
}

impl Cgroup {
    /// Resolves the cgroup of the systemd driver: the scope `cgroups_path` names (see
    /// [`parse`]), below the v2 root. Nothing is created until [`Cgroup::start_unit`].
    /// Refuses, naming the reason, when systemd is not running, on v1 and hybrid hosts and
    /// when not root.
    pub fn resolve_systemd(cgroups_path: Option<&Path>, id: &str) -> Result<Self, CgroupError> {
        let text = cgroups_path
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        // runc's order: the path's shape, then systemd, then the slice and unit names.
        split(&text, id)?;
        if !running() {
            return Err(SystemdError::NotRunning.into());
        }
        let unit = parse(&text, id)?;
        if !nix::unistd::geteuid().is_root() {
            return Err(SystemdError::Unsupported(
                "rootless containers (the user manager's bus) are not supported; run as root"
                    .into(),
            )
            .into());
        }
        let mut cg = Cgroup::resolve(Some(&unit.path), id)?;
        if cg.mode != Mode::V2 {
            return Err(SystemdError::Unsupported(format!(
                "needs a pure cgroup v2 host, this one is {:?} (use the cgroupfs driver: \
                 omit --systemd-cgroup)",
                cg.mode
            ))
            .into());
        }
        cg.systemd = Some(unit);
        Ok(cg)
    }

    /// The systemd unit of this cgroup, when the systemd driver made it.
    pub fn systemd_unit(&self) -> Option<&Unit> {
        self.systemd.as_ref()
    }

    fn v2_root(&self) -> Result<&Path, CgroupError> {
        self.v2_hierarchy()
            .map(|h| h.mount_point.as_path())
            .ok_or(CgroupError::NoHierarchy)
    }

    /// Starts the transient scope with `pid` in it (StartTransientUnit: Slice, Delegate,
    /// the accounting properties, DefaultDependencies=false, PIDs) and waits until the kernel
    /// shows `pid` in the scope's cgroup. Without a unit (cgroupfs driver) there is nothing to do.
    pub fn start_unit(&self, pid: i32) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let m = manager(self.v2_root()?, unit)?;
        m.add_task(Pid::from_raw(pid))
            .map_err(dbus("start unit", unit))?;
        Ok(())
    }

    /// Sets the resource properties of the unit (SetUnitProperties, runtime): MemoryMax/Low/
    /// SwapMax, CPUWeight, CPUQuotaPerSecUSec/CPUQuotaPeriodUSec, TasksMax, AllowedCPUs/
    /// AllowedMemoryNodes, IO*Max, and the `unified` keys systemd knows.
    pub(crate) fn set_unit_properties(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let m = manager(self.v2_root()?, unit)?;
        let opt = ControllerOpt {
            resources: r,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        m.apply(&opt).map_err(dbus("set properties of", unit))?;
        Ok(())
    }

    /// Stops the unit if systemd still has it (StopUnit, "replace").
    pub(crate) fn stop_unit(&self) -> Result<(), CgroupError> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let m = manager(self.v2_root()?, unit)?;
        m.remove().map_err(dbus("stop unit", unit))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_runc_expands_them() {
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("/system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("/a.slice/a-b.slice/a-b-c.slice")
        );
        for bad in [
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a.scope",
            "",
        ] {
            let e = expand_slice(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid slice name: {bad}"));
        }
    }

    #[test]
    fn cgroups_paths_parse_as_runc_parses_them() {
        let u = parse("kubepods-burstable-pod1.slice:cri-containerd:abc", "abc").unwrap();
        assert_eq!(u.unit, "cri-containerd-abc.scope");
        assert_eq!(u.slice, "kubepods-burstable-pod1.slice");
        assert_eq!(
            u.path,
            Path::new(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/\
                 cri-containerd-abc.scope"
            )
        );
        let u = parse(":libpod:x", "x").unwrap();
        assert_eq!(u.path, Path::new("/system.slice/libpod-x.scope"));
        let u = parse("", "web").unwrap();
        assert_eq!(u.unit, "runz-web.scope");
        assert_eq!(u.path, Path::new("/system.slice/runz-web.scope"));
        for bad in ["web", "a:b", "a:b:c:d", "/abs/path"] {
            assert_eq!(
                parse(bad, "id").unwrap_err().to_string(),
                format!(
                    "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd \
                     cgroups, got {bad:?} instead"
                )
            );
        }
        assert_eq!(
            parse("a--b.slice:p:n", "n").unwrap_err().to_string(),
            "invalid slice name: a--b.slice"
        );
        let e = parse("system.slice:p:../../x", "n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"/\""), "{e}");
        let e = parse("system.slice:p:k.slice", "n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("names a slice"), "{e}");
    }

    #[test]
    fn cpu_quota_rounds_up_to_a_whole_percent_as_runc() {
        assert_eq!(round_cpu_quota(50_000, Some(100_000)), 50_000);
        assert_eq!(round_cpu_quota(12_345, Some(100_000)), 13_000);
        assert_eq!(round_cpu_quota(12_345, None), 13_000);
        assert_eq!(round_cpu_quota(12_345, Some(0)), 13_000);
        assert_eq!(round_cpu_quota(1, Some(10_000)), 100);
        assert_eq!(round_cpu_quota(250_000, Some(1_000_000)), 250_000);
        assert_eq!(round_cpu_quota(-1, Some(100_000)), -1);
        assert_eq!(round_cpu_quota(0, Some(100_000)), 0);
    }

    #[test]
    fn only_property_annotations_are_picked() {
        let keys = [
            "org.systemd.property.TimeoutStopUSec".to_string(),
            "io.kubernetes.cri.container-type".to_string(),
        ];
        assert_eq!(
            property_annotations(keys.iter()),
            vec!["org.systemd.property.TimeoutStopUSec"]
        );
    }
}
