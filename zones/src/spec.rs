//! A zone as an OCI runtime spec: what the engine runs when a zone boots.
//!
//! The bundle is the zonepath: `<zonepath>/root` is the rootfs and `<zonepath>/config.json` the
//! spec made here. The mapping, zone concept → OCI:
//! - zonename → hostname; brand `linux` → `/sbin/init` (+ bootargs) as PID 1 of a new PID
//!   namespace; brand `app` → the image's entrypoint and cmd.
//! - ip-type exclusive → a network namespace of its own (the netns is made empty here; the
//!   networking layer fills it); shared → the host's network stack.
//! - limitpriv → the capability sets ([`crate::privileges`]).
//! - capped-memory physical/swap → memory limit/swap (on pure cgroup v2 also memory.high,
//!   1/16 below the cap, so the zone is throttled and reclaimed before the OOM killer acts);
//!   capped-memory locked → RLIMIT_MEMLOCK of init (inherited by every process; there is no
//!   cgroup counter for locked memory); capped-cpu ncpus (= zone.cpu-cap / 100) → CFS quota
//!   over a 100 ms period; dedicated-cpu → a cpuset; cpu-shares (zone.cpu-shares) → cpu.weight
//!   1:1 on v2, and the same proportion on v1 (`cpu.shares` = shares × 1024 / 100, so the
//!   SmartOS default of 100 equals the kernel default); max-processes and max-lwps → pids.max
//!   (the smaller of the two: pids.max counts tasks, i.e. lwps; max-processes has no exact
//!   Linux equivalent).
//! - rctl zone.zfs-io-priority (SmartOS's relative I/O priority, 100 by default) → the block
//!   I/O weight: OCI blockIO.weight = priority × 5 in [10, 1000] (100 → 500, the v1 default),
//!   written as blkio(.bfq).weight on v1 and io.bfq.weight or io.weight (runc's conversion) on
//!   v2. A weight only divides a disk whose scheduler honours it (BFQ, or io.cost on v2).
//! - capped-io device/rbps/wbps/riops/wiops → blockIO.throttle{Read,Write}{Bps,IOPS}Device of
//!   the device's major:minor (blkio.throttle.* on v1, io.max on v2). On a live update an
//!   unset rate is written as 0, "no cap".
//! - memory.oom.group is deliberately left off: it would make an OOM inside the zone kill the
//!   zone's init too, where a zone is expected to lose only the offending process.
//! - fs resources → bind (`lofs`) or filesystem mounts with illumos option names mapped
//!   (`nodevices` → nodev, `nosetuid` → nosuid); device resources → device nodes + allow rules.
//! - The cgroup is `<cgroup_parent>/<zonename>`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBlockIo, LinuxCapabilities, LinuxCpu, LinuxDevice, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources,
    LinuxSeccomp, LinuxThrottleDevice, Mount, PosixRlimitType, Spec,
};

use crate::model::{Brand, IpType, Zone};
use crate::privileges;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("zone {zone}: {what}")]
    Invalid { zone: String, what: String },
    #[error(transparent)]
    Privileges(#[from] privileges::PrivError),
}

/// The process an `app` zone runs, from its image's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// The image's `User`; by the time the spec is made, numeric `uid:gid` (names are
    /// looked up in the zone's root by the caller, see `image::user::resolve`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What the spec needs besides the zone's configuration.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// The parent of every zone's cgroup (relative: beneath the caller's own cgroup).
    pub cgroup_parent: String,
    /// `zoneadm boot -- ARGS`: replace bootargs for this boot.
    pub boot_args: Option<Vec<String>>,
    /// The process of an `app` zone.
    pub app: Option<AppProcess>,
    /// A network namespace prepared beforehand (by the networking layer) to join.
    pub netns: Option<PathBuf>,
    /// The host runs pure cgroup v2: caps may use v2-only files (cpu.weight, memory.high).
    pub cgroup_v2: bool,
    /// The zone's user-namespace range: host id of its id 0 (see [`crate::idrange`]); `None`
    /// for a zone without a user namespace (`userns=false`).
    pub userns: Option<u32>,
    /// The zone's `/sbin/init` is systemd (see [`systemd_mounts`] and [`capabilities`]).
    pub systemd: bool,
    /// Brand kvm: qemu's command line in the zone (`KvmConfig::qemu_args`).
    pub vm: Option<Vec<String>>,
}

/// The host devices a kvm zone's qemu may open, where this host has them: the zone's
/// device allowlist is its defaults plus these (qemu, uid [`crate::kvm::QEMU_ID`], owns them).
pub const VM_DEVICES: &[&str] = &["/dev/kvm", "/dev/net/tun", "/dev/vhost-net"];

/// The [`VM_DEVICES`] of `zone` on this host (none for other brands).
pub fn vm_devices(zone: &Zone) -> Vec<&'static str> {
    if zone.brand != Brand::Kvm {
        return Vec::new();
    }
    VM_DEVICES
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect()
}

/// The capabilities a systemd init gets on top of limitpriv, in a zone with its own user
/// namespace only: CAP_SYS_ADMIN there lets it mount /run, its cgroup2 tree, PrivateTmp= and
/// the like in the zone's own mount namespace, set the zone's (own) host name, and nothing in
/// the host's namespaces (the kernel checks them against the user namespace that owns each).
pub const SYSTEMD_ADDED: &[&str] = &["CAP_SYS_ADMIN"];

/// The capabilities a systemd init does not get whatever limitpriv says: with them systemd
/// takes audit to work and its audit-using units fail (systemd's container interface).
pub const SYSTEMD_DROPPED: &[&str] = &["CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE"];

/// Whether `zone` runs in a user namespace of its own: the default for every brand, off with
/// `set userns=false`.
pub fn wants_userns(zone: &Zone) -> bool {
    zone.userns != Some(false)
}

/// `/.zonecontrol` last: `mdata-get`/`mdata-list` are on the PATH (SmartOS: /usr/sbin), and the
/// image's own commands come first.
const PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.zonecontrol";
const CFS_PERIOD: u64 = 100_000;
/// v1 `cpu.shares` of one zone share: the SmartOS default of 100 shares is the kernel's 1024.
const V1_SHARES_PER_SHARE: u64 = 1024;
/// The zone share count that stands for the kernel's default weight.
const DEFAULT_SHARES: u64 = 100;

fn invalid(zone: &Zone, what: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        zone: zone.zonename.clone(),
        what: what.into(),
    }
}

/// The caps of `zone` measured against this host: refused when a memory cap exceeds the
/// host's memory (swap: memory + swap), or capped-cpu / dedicated-cpu asks for more CPUs than
/// are online. `zonecfg verify`/`commit` and `zoneadm verify` run it.
pub fn check_host(zone: &Zone) -> Result<(), SpecError> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let (mem, swap) = host_memory();
    check_host_with(zone, online, mem, swap)?;
    for c in &zone.capped_io {
        io_device(zone, c.device.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// The caps of `zone` this kernel cannot apply at all: an I/O priority without an I/O
/// scheduler that takes weights, a capped-io device that is a partition. `zoneadm verify`,
/// `ready`, `boot` and live re-capping (`zonecfg -r`, `zoneadm apply`) run it before anything
/// is made or written; zonecfg does not, so a configuration can be written for another host.
pub fn check_kernel(zone: &Zone) -> Result<(), SpecError> {
    let priority = zone.rctl_limit("zone.zfs-io-priority").is_some();
    if !priority && zone.capped_io.is_empty() {
        return Ok(());
    }
    let kernel = zones_cgroup::support::Host::current()
        .map_err(|e| invalid(zone, format!("cannot read this host's cgroups: {e}")))?;
    if priority {
        kernel
            .io_weight()
            .map_err(|e| invalid(zone, format!("rctl zone.zfs-io-priority: {e}")))?;
    }
    for c in &zone.capped_io {
        let device = c.device.as_deref().unwrap_or_default();
        let (major, minor) = io_device(zone, device)?;
        kernel
            .io_device(major, minor)
            .map_err(|e| invalid(zone, format!("capped-io device={device}: {e}")))?;
    }
    Ok(())
}

/// The (major, minor) of the host block device a `capped-io device` names: a path that must
/// be a block device, or `MAJ:MIN` that must be one in /sys/dev/block.
pub fn io_device(zone: &Zone, device: &str) -> Result<(i64, i64), SpecError> {
    let bad = |why: String| {
        invalid(
            zone,
            format!("capped-io device={device}: {why} (name a block device of this host, like /dev/vdb or 254:16)"),
        )
    };
    if let Some((a, b)) = device.split_once(':') {
        if let (Ok(major), Ok(minor)) = (a.parse::<i64>(), b.parse::<i64>()) {
            if !Path::new("/sys/dev/block").join(device).exists() {
                return Err(bad("no such block device".into()));
            }
            return Ok((major, minor));
        }
    }
    let meta = std::fs::metadata(device).map_err(|e| bad(e.to_string()))?;
    if !meta.file_type().is_block_device() {
        return Err(bad("not a block device".into()));
    }
    let rdev = meta.rdev();
    Ok((
        i64::from(nix::sys::stat::major(rdev) as u32),
        i64::from(nix::sys::stat::minor(rdev) as u32),
    ))
}

/// The capped-io throttles of `zone` into `io`; `live`: an unset rate is 0 ("no cap").
fn io_throttles(zone: &Zone, io: &mut LinuxBlockIo, live: bool) -> Result<(), SpecError> {
    let (mut rbps, mut wbps, mut riops, mut wiops) = (vec![], vec![], vec![], vec![]);
    for c in &zone.capped_io {
        let (major, minor) = io_device(zone, c.device.as_deref().unwrap_or_default())?;
        let rates = [
            (&mut rbps, c.rbps.map(|s| s.bytes())),
            (&mut wbps, c.wbps.map(|s| s.bytes())),
            (&mut riops, c.riops),
            (&mut wiops, c.wiops),
        ];
        for (list, rate) in rates {
            if let Some(rate) = rate.or(live.then_some(0)) {
                list.push(throttle(major, minor, rate));
            }
        }
    }
    let some = |v: Vec<LinuxThrottleDevice>| (!v.is_empty()).then_some(v);
    io.set_throttle_read_bps_device(some(rbps));
    io.set_throttle_write_bps_device(some(wbps));
    io.set_throttle_read_iops_device(some(riops));
    io.set_throttle_write_iops_device(some(wiops));
    Ok(())
}

/// One throttle entry; rate 0 is "no cap".
fn throttle(major: i64, minor: i64, rate: u64) -> LinuxThrottleDevice {
    oci_spec::runtime::LinuxThrottleDeviceBuilder::default()
        .major(major)
        .minor(minor)
        .rate(rate)
        .build()
        .expect("every field of a throttle device is set")
}

/// Adds a 0 ("no cap") throttle to `new` for every device `old` throttles and `new` does
/// not, so a capped-io resource removed from a running zone stops capping it.
pub fn uncap_removed_devices(old: &LinuxBlockIo, new: &mut LinuxResources) {
    fn merge(
        old: &Option<Vec<LinuxThrottleDevice>>,
        new: &Option<Vec<LinuxThrottleDevice>>,
    ) -> Option<Vec<LinuxThrottleDevice>> {
        let mut out = new.clone().unwrap_or_default();
        for t in old.iter().flatten() {
            if !out
                .iter()
                .any(|n| n.major() == t.major() && n.minor() == t.minor())
            {
                out.push(throttle(t.major(), t.minor(), 0));
            }
        }
        (!out.is_empty()).then_some(out)
    }
    let before = new.block_io().clone().unwrap_or_default();
    let mut io = before.clone();
    io.set_throttle_read_bps_device(merge(
        old.throttle_read_bps_device(),
        before.throttle_read_bps_device(),
    ));
    io.set_throttle_write_bps_device(merge(
        old.throttle_write_bps_device(),
        before.throttle_write_bps_device(),
    ));
    io.set_throttle_read_iops_device(merge(
        old.throttle_read_iops_device(),
        before.throttle_read_iops_device(),
    ));
    io.set_throttle_write_iops_device(merge(
        old.throttle_write_iops_device(),
        before.throttle_write_iops_device(),
    ));
    if io != before {
        new.set_block_io(Some(io));
    }
}

/// MemTotal and SwapTotal of /proc/meminfo, bytes (`u64::MAX` when unreadable: no check).
fn host_memory() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    match field("MemTotal:") {
        Some(m) => (m, field("SwapTotal:").unwrap_or(0)),
        None => (u64::MAX, 0),
    }
}

fn check_host_with(zone: &Zone, online: u32, mem: u64, swap: u64) -> Result<(), SpecError> {
    let gib = |b: u64| format!("{:.1}G", b as f64 / (1u64 << 30) as f64);
    if let Some(m) = &zone.capped_memory {
        for (prop, v, host) in [
            ("physical", m.physical, mem),
            ("locked", m.locked, mem),
            ("swap", m.swap, mem.saturating_add(swap)),
        ] {
            if let Some(v) = v.filter(|v| v.bytes() > host) {
                return Err(invalid(
                    zone,
                    format!(
                        "capped-memory {prop}={}: more than this host has ({})",
                        gib(v.bytes()),
                        gib(host)
                    ),
                ));
            }
        }
    }
    if let Some(n) = zone.capped_cpu.as_ref().and_then(|c| c.ncpus) {
        if n.hundredths() > online * 100 {
            return Err(invalid(
                zone,
                format!(
                    "capped-cpu ncpus={}: only {online} CPUs are online",
                    f64::from(n.hundredths()) / 100.0
                ),
            ));
        }
    }
    if let Some(r) = zone.dedicated_cpu.as_ref().and_then(|d| d.ncpus) {
        if r.min > online {
            return Err(invalid(
                zone,
                format!(
                    "dedicated-cpu ncpus={}: only {online} CPUs are online",
                    r.min
                ),
            ));
        }
    }
    Ok(())
}

/// Build the OCI spec of `zone`.
pub fn zone_spec(zone: &Zone, opts: &SpecOptions) -> Result<Spec, SpecError> {
    let mut spec = Spec::default();
    spec.set_version("1.3.0".to_string());
    spec.set_hostname(Some(
        zone.hostname
            .clone()
            .unwrap_or_else(|| zone.zonename.clone()),
    ));
    let mut root = oci_spec::runtime::Root::default();
    root.set_path(PathBuf::from("root"));
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_process(Some(process(zone, opts)?));
    spec.set_mounts(Some(mounts(zone, opts)?));
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_namespaces(Some(namespaces(zone, opts)));
    if let Some(base) = opts.userns {
        let map = oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(base)
            .size(crate::idrange::RANGE_SIZE)
            .build()
            .expect("all fields set");
        linux.set_uid_mappings(Some(vec![map]));
        linux.set_gid_mappings(Some(vec![map]));
    }
    linux.set_cgroups_path(Some(PathBuf::from(format!(
        "{}/{}",
        opts.cgroup_parent.trim_end_matches('/'),
        zone.zonename
    ))));
    let (devices, rules) = devices(zone)?;
    if opts.userns.is_some() {
        // A host node bound in keeps its host owner, which the zone's root is not: the zone
        // gets its own node instead, made in the bundle by the engine ([`device_node_name`]).
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for d in &devices {
            let dest = d.path().display().to_string();
            let src = format!("devices/{}", device_node_name(&dest));
            mounts.push(mount(&dest, "bind", &src, &["bind"]));
        }
        spec.set_mounts(Some(mounts));
        linux.set_devices(Some(Vec::new()));
    } else {
        linux.set_devices(Some(devices));
    }
    let mut res = resources(zone, opts.cgroup_v2, false)?;
    res.set_devices(Some(device_rules(rules)));
    linux.set_resources(Some(res));
    let sysctl = ipc_sysctls(zone);
    if !sysctl.is_empty() {
        linux.set_sysctl(Some(sysctl));
    }
    linux.set_seccomp(Some(default_seccomp()));
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
    linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    spec.set_linux(Some(linux));
    let mut ann = std::collections::HashMap::new();
    ann.insert("org.zones.name".to_string(), zone.zonename.clone());
    ann.insert("org.zones.uuid".to_string(), zone.uuid.clone());
    ann.insert(
        "org.zones.brand".to_string(),
        brand_name(zone.brand).to_string(),
    );
    spec.set_annotations(Some(ann));
    Ok(spec)
}

/// The IPC rctls as the zone's own IPC-namespace sysctls (what illumos counts per zone, Linux
/// counts per IPC namespace): `zone.max-shm-memory` → kernel.shmall (pages) and kernel.shmmax
/// (no segment above the total), `zone.max-shm-ids` → kernel.shmmni, `zone.max-msg-ids` →
/// kernel.msgmni, `zone.max-sem-ids` → the SEMMNI field of kernel.sem (the other fields keep
/// a new IPC namespace's defaults).
pub fn ipc_sysctls(zone: &Zone) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let clamp = |v: u64, max: u64| v.min(max).to_string();
    if let Some(bytes) = zone.rctl_limit("zone.max-shm-memory") {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .unwrap_or(4096) as u64;
        out.insert("kernel.shmmax".into(), bytes.to_string());
        out.insert("kernel.shmall".into(), bytes.div_ceil(page).to_string());
    }
    // The kernel caps these counts at IPCMNI (32768).
    if let Some(n) = zone.rctl_limit("zone.max-shm-ids") {
        out.insert("kernel.shmmni".into(), clamp(n, 32768));
    }
    if let Some(n) = zone.rctl_limit("zone.max-msg-ids") {
        out.insert("kernel.msgmni".into(), clamp(n, 32768));
    }
    if let Some(n) = zone.rctl_limit("zone.max-sem-ids") {
        let semmni = n.min(32768);
        // SEMMSL SEMMNS SEMOPM SEMMNI; SEMMNS stays SEMMSL × SEMMNI as in a new namespace.
        out.insert(
            "kernel.sem".into(),
            format!("32000 {} 500 {semmni}", 32000 * semmni.max(1)),
        );
    }
    out
}

fn brand_name(b: Brand) -> &'static str {
    match b {
        Brand::Linux => "linux",
        Brand::App => "app",
        Brand::Kvm => "kvm",
    }
}

fn process(zone: &Zone, opts: &SpecOptions) -> Result<oci_spec::runtime::Process, SpecError> {
    let mut p = oci_spec::runtime::Process::default();
    let mut env = vec![
        PATH_ENV.to_string(),
        "TERM=xterm".to_string(),
        "container=zone".to_string(),
        format!("ZONENAME={}", zone.zonename),
    ];
    if opts.systemd {
        // systemd makes the zone's /etc/machine-id from it while that file is empty: the
        // same id on every boot, and the zone's own (systemd's container interface).
        env.push(format!("container_uuid={}", zone.uuid));
    }
    let args = match zone.brand {
        Brand::Linux => {
            let mut args = vec!["/sbin/init".to_string()];
            match &opts.boot_args {
                Some(a) => args.extend(a.iter().cloned()),
                None => args.extend(
                    zone.bootargs
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(String::from),
                ),
            }
            args
        }
        Brand::Kvm => {
            let args = opts.vm.clone().ok_or_else(|| {
                invalid(zone, "brand kvm: no qemu command line was given for the VM")
            })?;
            let mut u = p.user().clone();
            u.set_uid(crate::kvm::QEMU_ID);
            u.set_gid(crate::kvm::QEMU_ID);
            p.set_user(u);
            p.set_cwd(PathBuf::from("/vm"));
            args
        }
        Brand::App => {
            let app = opts.app.clone().unwrap_or_default();
            let mut args = app.args.clone();
            // Without an image's entrypoint, bootargs is the program to run.
            if args.is_empty() {
                args.extend(
                    zone.bootargs
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(String::from),
                );
            }
            if let Some(extra) = &opts.boot_args {
                args.extend(extra.iter().cloned());
            }
            if args.is_empty() {
                return Err(invalid(
                    zone,
                    "brand app needs a process: install it from an image with an entrypoint or cmd, or set bootargs to the program to run",
                ));
            }
            for e in &app.env {
                let key = e.split('=').next().unwrap_or(e);
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            if let Some(cwd) = app.cwd.filter(|c| c.starts_with('/')) {
                p.set_cwd(PathBuf::from(cwd));
            }
            if let Some(user) = &app.user {
                let ids = user
                    .split_once(':')
                    .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)));
                let (uid, gid) = ids.ok_or_else(|| {
                    invalid(zone, format!("app user '{user}': expected numeric UID:GID"))
                })?;
                let mut u = p.user().clone();
                u.set_uid(uid);
                u.set_gid(gid);
                p.set_user(u);
            }
            args
        }
    };
    p.set_args(Some(args));
    p.set_env(Some(env));
    p.set_terminal(Some(true));
    if zone.brand == Brand::Kvm {
        // The hypervisor needs no privilege: it runs unprivileged and can gain none.
        p.set_no_new_privileges(Some(true));
        p.set_capabilities(Some(no_capabilities()));
    } else {
        p.set_no_new_privileges(Some(false));
        p.set_capabilities(Some(capabilities(
            zone.limitpriv.as_deref(),
            opts.userns.is_some(),
            opts.systemd,
        )?));
    }
    let nofile = oci_spec::runtime::PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(1024u64)
        .hard(4096u64)
        .build()
        .expect("all fields set");
    let mut rlimits = vec![nofile];
    if let Some(locked) = zone.capped_memory.as_ref().and_then(|m| m.locked) {
        let memlock = oci_spec::runtime::PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitMemlock)
            .soft(locked.bytes())
            .hard(locked.bytes())
            .build()
            .expect("all fields set");
        rlimits.push(memlock);
    }
    p.set_rlimits(Some(rlimits));
    Ok(p)
}

/// The capability sets of a zone's processes: bounding = permitted = effective = limitpriv;
/// `userns`: the zone has its own user namespace (see [`privileges::capabilities_for`]);
/// `systemd`: its init is systemd, which gets [`SYSTEMD_ADDED`] (with a user namespace only)
/// and loses [`SYSTEMD_DROPPED`].
pub fn capabilities(
    limitpriv: Option<&str>,
    userns: bool,
    systemd: bool,
) -> Result<LinuxCapabilities, SpecError> {
    let mut names = privileges::capabilities_for(limitpriv, userns)?;
    if systemd {
        names.retain(|n| !SYSTEMD_DROPPED.contains(&n.as_str()));
        if userns {
            for c in SYSTEMD_ADDED {
                if !names.iter().any(|n| n == c) {
                    names.push(c.to_string());
                }
            }
        }
    }
    let set: std::collections::HashSet<Capability> = names
        .iter()
        .filter_map(|n| serde_json::from_value(serde_json::Value::String(n.clone())).ok())
        .collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(Default::default()));
    caps.set_ambient(Some(Default::default()));
    Ok(caps)
}

/// Every capability set empty (brand kvm's qemu).
fn no_capabilities() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    for set in [
        LinuxCapabilities::set_bounding,
        LinuxCapabilities::set_effective,
        LinuxCapabilities::set_permitted,
        LinuxCapabilities::set_inheritable,
        LinuxCapabilities::set_ambient,
    ] {
        set(&mut caps, Some(Default::default()));
    }
    caps
}

fn namespaces(zone: &Zone, opts: &SpecOptions) -> Vec<LinuxNamespace> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ];
    if zone.ip_type == IpType::Exclusive {
        types.push(LinuxNamespaceType::Network);
    }
    if opts.userns.is_some() {
        // First: every other new namespace is then owned by the zone's user namespace.
        types.insert(0, LinuxNamespaceType::User);
    }
    types
        .into_iter()
        .map(|t| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(t);
            if t == LinuxNamespaceType::Network {
                ns.set_path(opts.netns.clone());
            }
            ns
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

/// The platform mounts of every zone, then its fs resources in order. In a user namespace
/// the files of a lofs resource keep their host owners: ids outside the zone's range show as
/// nobody (65534), so the zone's root reads what others may read there and writes only where
/// the directory belongs to the zone's range (`chown BASE+N`). A systemd zone's cgroup and
/// /run mounts are [`systemd_mounts`].
fn mounts(zone: &Zone, opts: &SpecOptions) -> Result<Vec<Mount>, SpecError> {
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ];
    if opts.systemd && opts.userns.is_some() {
        v.extend(systemd_mounts());
    } else {
        v.push(mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ));
        v.push(run_tmpfs());
    }
    for fs in &zone.fs {
        let dir = fs
            .dir
            .as_deref()
            .ok_or_else(|| invalid(zone, "fs resource without dir"))?;
        let special = fs
            .special
            .as_deref()
            .ok_or_else(|| invalid(zone, format!("fs {dir}: special is not set")))?;
        let typ = fs.fs_type.as_deref().unwrap_or("lofs");
        let mut options: Vec<String> = fs.options.iter().map(|o| fs_option(o)).collect();
        let (typ, source) = match typ {
            "lofs" | "bind" => {
                if !options.iter().any(|o| o == "rbind" || o == "bind") {
                    options.insert(0, "rbind".to_string());
                }

                ("bind".to_string(), special.to_string())
            }
            other => (other.to_string(), special.to_string()),
        };
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(dir));
        m.set_typ(Some(typ));
        m.set_source(Some(PathBuf::from(source)));
        m.set_options(Some(options));
        v.push(m);
    }
    Ok(v)
}

fn run_tmpfs() -> Mount {
    mount(
        "/run",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=755", "size=65536k"],
    )
}

/// The cgroup and /run mounts of a systemd zone (with its own user namespace), after
/// systemd's container interface:
/// - `/sys/fs/cgroup` is a cgroup2 (unified) mount made inside the zone's cgroup namespace,
///   so its root is the zone's own cgroup and systemd runs in unified mode on every host: it
///   makes init.scope and its slices there (the engine hands that cgroup to the zone's root,
///   see `engine::delegate_cgroup`). On a hybrid host the unified hierarchy has no
///   controllers: the zone's caps stay on the host's v1 hierarchies, which the zone does not
///   see (so `systemctl show -p MemoryMax` says infinity there; on pure v2 the caps are the
///   zone cgroup's own files, read-only to it). The v1 hierarchies and `name=systemd` are
///   not mounted: a zone's systemd never needs the hybrid layout.
/// - `/run` and `/run/lock` are tmpfs, made before init as systemd expects.
pub fn systemd_mounts() -> Vec<Mount> {
    vec![
        mount(
            "/sys/fs/cgroup",
            "cgroup2",
            "cgroup2",
            &["nosuid", "noexec", "nodev", "relatime"],
        ),
        run_tmpfs(),
        mount(
            "/run/lock",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"],
        ),
    ]
}

/// illumos mount option names → Linux ones; others pass through.
fn fs_option(o: &str) -> String {
    match o {
        "nodevices" => "nodev",
        "devices" => "dev",
        "nosetuid" => "nosuid",
        "setuid" => "suid",
        "noexec" => "noexec",
        other => other,
    }
    .to_string()
}

/// The file name, in `<zonepath>/devices/`, of a zone-owned copy of host device `path`.
pub fn device_node_name(path: &str) -> String {
    path.trim_start_matches('/').replace('/', "-")
}

/// device resources: each `match` names a host device node that appears in the zone.
fn devices(zone: &Zone) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    let mut paths = Vec::new();
    for d in &zone.device {
        let path = d
            .match_
            .as_deref()
            .ok_or_else(|| invalid(zone, "device resource without match"))?;
        paths.push((path, 0));
    }
    for p in vm_devices(zone) {
        paths.push((p, crate::kvm::QEMU_ID));
    }
    for (path, owner) in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| invalid(zone, format!("device match {path}: {e}")))?;
        let ft = meta.file_type();
        let typ = if ft.is_char_device() {
            LinuxDeviceType::C
        } else if ft.is_block_device() {
            LinuxDeviceType::B
        } else {
            return Err(invalid(
                zone,
                format!("device match {path}: not a device node"),
            ));
        };
        let rdev = meta.rdev();
        let (major, minor) = (
            nix::sys::stat::major(rdev) as i64,
            nix::sys::stat::minor(rdev) as i64,
        );
        let mut dev = LinuxDevice::default();
        dev.set_path(PathBuf::from(path));
        dev.set_typ(typ);
        dev.set_major(major);
        dev.set_minor(minor);
        dev.set_file_mode(Some(if owner == 0 {
            meta.mode() & 0o777
        } else {
            0o600
        }));
        dev.set_uid(Some(owner));
        dev.set_gid(Some(owner));
        devices.push(dev);
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(Some(major));
        rule.set_minor(Some(minor));
        rule.set_access(Some("rwm".to_string()));
        rules.push(rule);
    }
    Ok((devices, rules))
}

/// The device rules of a zone: everything denied but its device resources.
fn device_rules(allowed: Vec<LinuxDeviceCgroup>) -> Vec<LinuxDeviceCgroup> {
    let mut deny = LinuxDeviceCgroup::default();
    deny.set_allow(false);
    deny.set_access(Some("rwm".to_string()));
    let mut rules = vec![deny];
    rules.extend(allowed);
    rules
}

/// The caps of a running zone, for a live update (`zoneadm apply`, `zonecfg -r`): like the
/// boot-time ones, but a cap the configuration no longer has is written as "no cap" (so
/// removing it takes effect), and device rules are left alone.
pub fn zone_resources(zone: &Zone, cgroup_v2: bool) -> Result<LinuxResources, SpecError> {
    resources(zone, cgroup_v2, true)
}

/// `live`: also write the uncapped value of every unset cap.
fn resources(zone: &Zone, v2: bool, live: bool) -> Result<LinuxResources, SpecError> {
    let mut res = LinuxResources::default();
    let mut unified = std::collections::HashMap::new();
    // A kvm zone without capped-memory is capped at its VM's RAM and qemu's overhead.
    let vm_cap = crate::kvm::KvmConfig::from_zone(zone)
        .ok()
        .flatten()
        .map(|c| c.memory_cap());
    let physical = zone
        .capped_memory
        .as_ref()
        .and_then(|m| m.physical)
        .map(|p| p.bytes())
        .or(vm_cap);
    let swap = zone.capped_memory.as_ref().and_then(|m| m.swap);
    let mut mem = LinuxMemory::default();
    if let Some(p) = physical {
        mem.set_limit(Some(p as i64));
        if v2 {
            let high = p - p / 16;
            unified.insert("memory.high".to_string(), high.to_string());
        }
    } else if live {
        mem.set_limit(Some(-1));
        if v2 {
            unified.insert("memory.high".to_string(), "max".to_string());
        }
    }
    if let Some(s) = swap {
        // illumos's swap cap bounds all virtual memory: memory + swap together, as OCI's.
        mem.set_swap(Some(s.bytes() as i64));
    } else if live && physical.is_none() {
        mem.set_swap(Some(-1));
    }
    if mem.limit().is_some() || mem.swap().is_some() {
        res.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    let mut cpu_set = false;
    if let Some(n) = zone.capped_cpu.as_ref().and_then(|c| c.ncpus) {
        cpu.set_period(Some(CFS_PERIOD));
        cpu.set_quota(Some((n.hundredths() as u64 * CFS_PERIOD / 100) as i64));
        cpu_set = true;
    } else if live {
        cpu.set_quota(Some(-1));
        cpu_set = true;
    }
    let shares = zone
        .rctl_limit("zone.cpu-shares")
        .or(live.then_some(DEFAULT_SHARES));
    if let Some(shares) = shares {
        if v2 {
            unified.insert(
                "cpu.weight".to_string(),
                shares.clamp(1, 10_000).to_string(),
            );
        } else {
            let v1 = shares.saturating_mul(V1_SHARES_PER_SHARE) / DEFAULT_SHARES;
            cpu.set_shares(Some(v1.clamp(2, 262_144)));
            cpu_set = true;
        }
    }
    let online = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let cpus = match zone.dedicated_cpu.as_ref().and_then(|d| d.ncpus) {
        Some(r) if r.min > online => {
            return Err(invalid(
                zone,
                format!(
                    "dedicated-cpu ncpus={}: only {online} CPUs are online",
                    r.min
                ),
            ))
        }
        Some(r) => Some(r.max.min(online).max(1)),
        None => live.then_some(online),
    };
    if let Some(n) = cpus {
        cpu.set_cpus(Some(if n == 1 {
            "0".to_string()
        } else {
            format!("0-{}", n - 1)
        }));
        cpu_set = true;
    }
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    let procs = [
        zone.rctl_limit("zone.max-processes"),
        zone.rctl_limit("zone.max-lwps"),
    ]
    .into_iter()
    .flatten()
    .min();
    let pids_limit = match procs {
        Some(n) => Some(n.min(i64::MAX as u64) as i64),
        None => live.then_some(-1),
    };
    if let Some(n) = pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(n);
        res.set_pids(Some(pids));
    }
    let mut io = LinuxBlockIo::default();
    if let Some(priority) = zone.rctl_limit("zone.zfs-io-priority") {
        io.set_weight(Some(io_weight(priority)));
    }
    io_throttles(zone, &mut io, live)?;
    if io != LinuxBlockIo::default() {
        res.set_block_io(Some(io));
    }
    if !unified.is_empty() {
        res.set_unified(Some(unified));
    }
    Ok(res)
}

/// zone.zfs-io-priority → OCI blockIO.weight: ×5 within v1's [10, 1000] (100 → 500).
fn io_weight(priority: u64) -> u16 {
    priority.saturating_mul(5).clamp(10, 1000) as u16
}

/// The seccomp profile of every zone: everything is allowed but the calls that reach past the
/// zone into the machine (modules, kexec, swap, clock and keyring administration, BPF, perf,
/// raw handles), which fail with EPERM as they would for a process without the privilege.
pub fn default_seccomp() -> LinuxSeccomp {
    const DENIED: &[&str] = &[
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "create_module",
        "delete_module",
        "finit_module",
        "get_kernel_syms",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "move_pages",
        "nfsservctl",
        "open_by_handle_at",
        "perf_event_open",
        "query_module",
        "quotactl",
        "request_key",
        "settimeofday",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
    ];
    serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    }))
    .expect("the built-in profile is valid")
}

/// Kernel interfaces hidden from every zone (an empty file or directory over them): the
/// host's memory, keys, timers, hardware and firmware.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Kernel interfaces a zone may read but not change: host-wide sysctls, interrupts, the
/// magic SysRq key.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where a zone's bundle lives: its zonepath (under `altroot`).
pub fn bundle_dir(altroot: &Path, zonepath: &Path) -> PathBuf {
    altroot.join(zonepath.strip_prefix("/").unwrap_or(zonepath))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    /// The capability sets of spec `s`'s process.
    fn capabilities_of(s: &Spec) -> LinuxCapabilities {
        s.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap()
    }

    fn zone() -> Zone {
        let mut z = Zone::new("web");
        z.set_global("zonepath", &Value::simple("/zones/web"))
            .unwrap();
        z
    }

    fn opts() -> SpecOptions {
        SpecOptions {
            cgroup_parent: "zones".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_linux_zone_runs_init_in_its_own_namespaces() {
        let s = zone_spec(&zone(), &opts()).unwrap();
        assert_eq!(s.hostname().as_deref(), Some("web"));
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vec!["/sbin/init".to_string()]);
        let ns: Vec<_> = s
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(ns.contains(&LinuxNamespaceType::Pid));
        assert!(ns.contains(&LinuxNamespaceType::Network));
        assert_eq!(
            s.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("zones/web"))
        );
        assert_eq!(s.root().as_ref().unwrap().path(), Path::new("root"));
    }

    #[test]
    fn a_kvm_zone_runs_qemu_unprivileged_capped_at_its_vm() {
        let mut z = zone();
        z.set_global("brand", &Value::simple("kvm")).unwrap();
        z.attr = vec![crate::model::Attr {
            name: Some("kernel".into()),
            attr_type: Some(crate::model::AttrType::String),
            value: Some("/boot/vmlinuz".into()),
        }];
        let vm = vec![
            "/usr/bin/qemu-system-x86_64".to_string(),
            "-nodefaults".into(),
        ];
        let o = SpecOptions {
            vm: Some(vm.clone()),
            userns: Some(1 << 20),
            ..opts()
        };
        let s = zone_spec(&z, &o).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &vm);
        assert_eq!((p.user().uid(), p.user().gid()), (100, 100));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = capabilities_of(&s);
        for set in [
            caps.bounding(),
            caps.effective(),
            caps.permitted(),
            caps.ambient(),
        ] {
            assert!(set.as_ref().unwrap().is_empty());
        }
        let res = s.linux().as_ref().unwrap().resources().clone().unwrap();
        let cap = crate::kvm::KvmConfig::from_zone(&z)
            .unwrap()
            .unwrap()
            .memory_cap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(cap as i64));
        // Without a command line there is nothing to run.
        assert!(zone_spec(&z, &opts()).is_err());
    }

    #[test]
    fn caps_and_resources_follow_the_configuration() {
        let mut z = zone();
        z.set_global("limitpriv", &Value::simple("default,sys_time"))
            .unwrap();
        z.set_global("max-processes", &Value::simple("100"))
            .unwrap();
        z.set_global("cpu-shares", &Value::simple("50")).unwrap();
        let mem = crate::model::CappedMemory {
            physical: Some(crate::model::values::Size::parse("physical", "512m").unwrap()),
            ..Default::default()
        };
        z.capped_memory = Some(mem);
        z.capped_cpu = Some(crate::model::CappedCpu {
            ncpus: Some(crate::model::Ncpus::parse("ncpus", "1.5").unwrap()),
        });
        let s = zone_spec(&z, &opts()).unwrap();
        let caps = capabilities_of(&s);
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysTime));
        assert!(!caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(512 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(150_000));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(r.pids().unwrap().limit(), 100);
    }

    /// A block device of this host as `MAJ:MIN` (every Linux host has one in /sys/dev/block).
    fn some_block_device() -> String {
        std::fs::read_dir("/sys/dev/block")
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap()
    }

    #[test]
    fn capped_io_is_the_block_io_throttle_and_live_clears_unset_rates() {
        let devno = some_block_device();
        let (maj, min) = devno.split_once(':').unwrap();
        let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
        let mut z = zone();
        let mut c = crate::model::CappedIo::default();
        use crate::model::ResourceProps;
        c.set("device", &Value::simple(&devno)).unwrap();
        c.set("wbps", &Value::simple("1m")).unwrap();
        c.set("riops", &Value::simple("50")).unwrap();
        z.capped_io.push(c);
        let s = zone_spec(&z, &opts()).unwrap();
        let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
        let io = r.block_io().clone().unwrap();
        let wbps = io.throttle_write_bps_device().clone().unwrap();
        assert_eq!(
            (wbps[0].major(), wbps[0].minor(), wbps[0].rate()),
            (maj, min, 1 << 20)
        );
        assert_eq!(
            io.throttle_read_iops_device().as_ref().unwrap()[0].rate(),
            50
        );
        assert!(io.throttle_read_bps_device().is_none());
        assert!(io.weight().is_none());

        let live = zone_resources(&z, false).unwrap();
        let io = live.block_io().clone().unwrap();
        assert_eq!(io.throttle_read_bps_device().as_ref().unwrap()[0].rate(), 0);
        assert_eq!(
            io.throttle_write_bps_device().as_ref().unwrap()[0].rate(),
            1 << 20
        );

        // Removing the resource of a running zone un-caps the device.
        let mut gone = zone_resources(&zone(), false).unwrap();
        uncap_removed_devices(&io, &mut gone);
        let io = gone.block_io().clone().unwrap();
        let w = io.throttle_write_bps_device().clone().unwrap();
        assert_eq!((w[0].major(), w[0].minor(), w[0].rate()), (maj, min, 0));

        let mut bad = zone();
        let mut c = crate::model::CappedIo::default();
        c.set("device", &Value::simple("/dev/null")).unwrap();
        c.set("wbps", &Value::simple("1m")).unwrap();
        bad.capped_io.push(c);
        let e = check_host(&bad).unwrap_err().to_string();
        assert!(
            e.starts_with("zone web: capped-io device=/dev/null: not a block device"),
            "{e}"
        );
        assert!(zone_spec(&bad, &opts()).is_err());
    }

    #[test]
    fn io_priority_is_the_block_io_weight() {
        assert_eq!(io_weight(100), 500);
        assert_eq!(io_weight(200), 1000);
        assert_eq!(io_weight(1), 10);
        assert_eq!(io_weight(u64::MAX), 1000);
    }

    #[test]
    fn v2_uses_cpu_weight_and_memory_high_and_locked_is_an_rlimit() {
        let mut z = zone();
        z.set_global("cpu-shares", &Value::simple("200")).unwrap();
        z.capped_memory = Some(crate::model::CappedMemory {
            physical: Some(crate::model::values::Size::parse("physical", "64m").unwrap()),
            locked: Some(crate::model::values::Size::parse("locked", "4m").unwrap()),
            ..Default::default()
        });
        let mut o = opts();
        o.cgroup_v2 = true;
        let s = zone_spec(&z, &o).unwrap();
        let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
        let u = r.unified().clone().unwrap();
        assert_eq!(u["cpu.weight"], "200");
        assert_eq!(u["memory.high"], (60u64 << 20).to_string());
        assert!(!u.contains_key("memory.oom.group"));
        assert_eq!(r.cpu().as_ref().and_then(|c| c.shares()), None);
        let rl = s.process().as_ref().unwrap().rlimits().clone().unwrap();
        let memlock = rl
            .iter()
            .find(|l| l.typ() == PosixRlimitType::RlimitMemlock)
            .unwrap();
        assert_eq!((memlock.soft(), memlock.hard()), (4 << 20, 4 << 20));
        // v1: the same proportion in cpu.shares, no v2-only files.
        let s = zone_spec(&z, &opts()).unwrap();
        let r = s.linux().as_ref().unwrap().resources().clone().unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(2048));
        assert!(r.unified().is_none());
    }

    #[test]
    fn live_resources_lift_the_caps_a_zone_no_longer_has() {
        let r = zone_resources(&zone(), false).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(-1));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(1024));
        assert_eq!(r.pids().unwrap().limit(), -1);
        assert!(r.devices().is_none(), "device rules are not re-applied");
        let r = zone_resources(&zone(), true).unwrap();
        let u = r.unified().clone().unwrap();
        assert_eq!(
            (u["memory.high"].as_str(), u["cpu.weight"].as_str()),
            ("max", "100")
        );
    }

    #[test]
    fn caps_beyond_the_host_are_refused() {
        let mut z = zone();
        z.capped_memory = Some(crate::model::CappedMemory {
            physical: Some(crate::model::values::Size::parse("physical", "2g").unwrap()),
            swap: Some(crate::model::values::Size::parse("swap", "3g").unwrap()),
            ..Default::default()
        });
        assert!(check_host_with(&z, 2, 4 << 30, 0).is_ok());
        let err = check_host_with(&z, 2, 1 << 30, 4 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("physical=2.0G") && err.contains("(1.0G)"),
            "{err}"
        );
        let err = check_host_with(&z, 2, 2 << 30, 0).unwrap_err().to_string();
        assert!(err.contains("swap=3.0G"), "{err}");
        z.capped_memory = None;
        z.capped_cpu = Some(crate::model::CappedCpu {
            ncpus: Some(crate::model::Ncpus::parse("ncpus", "2.5").unwrap()),
        });
        let err = check_host_with(&z, 2, 1 << 30, 0).unwrap_err().to_string();
        assert!(err.contains("ncpus=2.5: only 2 CPUs"), "{err}");
        assert!(check_host_with(&z, 4, 1 << 30, 0).is_ok());
    }

    #[test]
    fn fs_resources_become_mounts_with_linux_option_names() {
        let mut z = zone();
        z.fs.push(crate::model::Fs {
            dir: Some("/data".into()),
            special: Some("/srv/data".into()),
            raw: None,
            fs_type: Some("lofs".into()),
            options: vec!["ro".into(), "nodevices".into()],
        });
        let s = zone_spec(&z, &opts()).unwrap();
        let m = s.mounts().as_ref().unwrap().last().unwrap().clone();
        assert_eq!(m.destination(), Path::new("/data"));
        assert_eq!(m.typ().as_deref(), Some("bind"));
        assert_eq!(
            m.options().clone().unwrap(),
            vec!["rbind".to_string(), "ro".into(), "nodev".into()]
        );
    }

    #[test]
    fn shared_ip_zones_use_the_host_network_and_app_zones_need_a_process() {
        let mut z = zone();
        z.set_global("ip-type", &Value::simple("shared")).unwrap();
        z.set_global("brand", &Value::simple("app")).unwrap();
        assert!(zone_spec(&z, &opts())
            .unwrap_err()
            .to_string()
            .contains("brand app"));
        let mut o = opts();
        o.app = Some(AppProcess {
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["A=1".into()],
            cwd: Some("/tmp".into()),
            user: Some("33:34".into()),
        });
        let s = zone_spec(&z, &o).unwrap();
        let ns = s.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap()[0], "/bin/sh");
        assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (33, 34));
        o.app.as_mut().unwrap().user = Some("www".into());
        let e = zone_spec(&z, &o).unwrap_err().to_string();
        assert!(e.contains("app user 'www'"), "{e}");
    }

    #[test]
    fn a_zone_with_a_range_gets_a_user_namespace_and_masked_paths() {
        let mut o = opts();
        o.userns = Some(1_000_065_536);
        let s = zone_spec(&zone(), &o).unwrap();
        let l = s.linux().as_ref().unwrap();
        let ns = l.namespaces().clone().unwrap();
        assert_eq!(ns[0].typ(), LinuxNamespaceType::User, "user first");
        assert!(ns.iter().all(|n| n.path().is_none()), "all new: {ns:?}");
        for maps in [l.uid_mappings(), l.gid_mappings()] {
            let m = &maps.as_ref().unwrap()[0];
            assert_eq!(
                (m.container_id(), m.host_id(), m.size()),
                (0, 1_000_065_536, 65536)
            );
        }
        assert!(l
            .masked_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/kcore".to_string()));
        assert!(l
            .readonly_paths()
            .as_ref()
            .unwrap()
            .contains(&"/proc/sysrq-trigger".to_string()));
        // Without a range: no user namespace, no mappings.
        let s = zone_spec(&zone(), &opts()).unwrap();
        let l = s.linux().as_ref().unwrap();
        assert!(!l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User));
        assert!(l.uid_mappings().is_none());
        let mut z = zone();
        assert!(wants_userns(&z));
        z.set_global("userns", &Value::simple("false")).unwrap();
        assert!(!wants_userns(&z));
    }

    #[test]
    fn a_systemd_zone_gets_sys_admin_in_its_userns_a_cgroup2_mount_and_no_audit() {
        let mut o = opts();
        o.userns = Some(1_000_065_536);
        o.systemd = true;
        let z = zone();
        let s = zone_spec(&z, &o).unwrap();
        let caps = capabilities_of(&s);
        let bnd = caps.bounding().clone().unwrap();
        assert!(bnd.contains(&Capability::SysAdmin));
        assert!(!bnd.contains(&Capability::AuditWrite));
        assert_eq!(caps.effective().clone().unwrap(), bnd);
        let mounts = s.mounts().clone().unwrap();
        let cg = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/sys/fs/cgroup"))
            .unwrap();
        assert_eq!(cg.typ().as_deref(), Some("cgroup2"));
        assert!(!cg.options().clone().unwrap().contains(&"ro".to_string()));
        assert!(mounts
            .iter()
            .any(|m| m.destination() == Path::new("/run/lock")));
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert!(
            env.contains(&format!("container_uuid={}", z.uuid)),
            "{env:?}"
        );
        assert!(env.contains(&"container=zone".to_string()));
        // The seccomp profile, masked and read-only paths stay.
        let l = s.linux().as_ref().unwrap();
        assert!(l.seccomp().is_some());
        assert!(l
            .readonly_paths()
            .clone()
            .unwrap()
            .contains(&"/proc/sys".into()));
        // Without a user namespace of its own, no CAP_SYS_ADMIN and the default mounts.
        o.userns = None;
        let s = zone_spec(&zone(), &o).unwrap();
        let caps = capabilities_of(&s);
        assert!(!caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        let mounts = s.mounts().clone().unwrap();
        assert!(mounts.iter().any(|m| m.typ().as_deref() == Some("cgroup")));
        // A zone whose init is not systemd: the default set of a zone with its own user
        // namespace, CAP_SYS_ADMIN included (privileges::DEFAULT_USERNS_ADDED).
        let mut o = opts();
        o.userns = Some(1_000_065_536);
        let s = zone_spec(&zone(), &o).unwrap();
        let caps = capabilities_of(&s);
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin));
        assert!(caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::AuditWrite));
    }

    #[test]
    fn the_default_seccomp_profile_parses() {
        let s = default_seccomp();
        assert_eq!(s.syscalls().as_ref().unwrap()[0].names().len(), 34);
    }
}
