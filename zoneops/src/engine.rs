//! A zone on the container engine: its bundle (zonepath with `root/` and `config.json`) and the
//! create/start/delete calls, with the console pty held by the caller (the supervisor).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use zones::model::{Brand, Zone};
use zones::spec::{AppProcess, SpecOptions};
use zones::store::Store;

use super::ZonePaths;
use zones_engine::container::{self, CreateOpts};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("zone '{zone}': {msg}")]
    Zone { zone: String, msg: String },
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Spec(#[from] zones::spec::SpecError),
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error(transparent)]
    IdRange(#[from] zones::idrange::IdRangeError),
    #[error(transparent)]
    Storage(#[from] zones::storage::StorageError),
}

fn zone_err(zone: &str, msg: impl std::fmt::Display) -> EngineError {
    EngineError::Zone {
        zone: zone.to_string(),
        msg: msg.to_string(),
    }
}

/// The zonepath of `zone` on this host (under the store's alternate root).
pub fn zonepath(store: &Store, zone: &Zone) -> Result<PathBuf, EngineError> {
    let zp = zone
        .zonepath
        .as_deref()
        .ok_or_else(|| zone_err(&zone.zonename, "zonepath is not set"))?;
    Ok(zones::spec::bundle_dir(store.altroot(), zp))
}

/// The rootfs of an installed zone: `<zonepath>/root`.
pub fn zone_root(store: &Store, zone: &Zone) -> Result<PathBuf, EngineError> {
    Ok(zonepath(store, zone)?.join("root"))
}

/// The process an app-brand zone runs, recorded at install from its image (`app.json`),
/// its user looked up in the zone's (mounted) root.
fn app_process(zone: &str, bundle: &Path) -> Result<Option<AppProcess>, EngineError> {
    let Ok(text) = std::fs::read_to_string(bundle.join("app.json")) else {
        return Ok(None);
    };
    let Ok(mut app) = serde_json::from_str::<AppProcess>(&text) else {
        return Ok(None);
    };
    if let Some(user) = &app.user {
        let (uid, gid) = zones::image::user::resolve(&bundle.join("root"), user)
            .map_err(|why| zone_err(zone, why))?;
        app.user = Some(format!("{uid}:{gid}"));
    }
    Ok(Some(app))
}

/// The zone's user-namespace range (`None` with `userns=false`), allocated from the pool if
/// it has none yet, and its own files shifted to match (back to host ids without one). Run
/// at install and before each boot, with the zone's root not mounted.
pub fn id_range(store: &Store, zone: &Zone) -> Result<Option<u32>, EngineError> {
    let base = if zones::spec::wants_userns(zone) {
        Some(zones::idrange::allocate(store, &zones::idrange::key(zone), &zone.zonename)?.base)
    } else {
        None
    };
    let zp = zonepath(store, zone)?;
    zones::storage::shift_ids(&zp, base.unwrap_or(0))?;
    // The zonepath stays 0700 (host users never reach the zone's set-id files) but belongs to
    // the zone's root, whose init must walk through it to its root filesystem.
    let owner = base.unwrap_or(0);
    std::os::unix::fs::chown(&zp, Some(owner), Some(owner))
        .map_err(|e| zone_err(&zone.zonename, format!("chown {}: {e}", zp.display())))?;
    Ok(base)
}

/// Write `<zonepath>/config.json` for this boot; `netns` is the namespace the zone joins
/// (made by `network::setup`), `None` for a new empty one; `userns` the zone's id range;
/// `vm` qemu's command line (brand kvm, see `kvm::prepare`).
pub fn write_bundle(
    store: &Store,
    zone: &Zone,
    boot_args: Option<Vec<String>>,
    netns: Option<PathBuf>,
    userns: Option<u32>,
    vm: Option<Vec<String>>,
) -> Result<PathBuf, EngineError> {
    let bundle = zonepath(store, zone)?;
    if !bundle.join("root").is_dir() {
        return Err(zone_err(
            &zone.zonename,
            format!(
                "{}/root is missing: is the zone installed?",
                bundle.display()
            ),
        ));
    }
    let opts = SpecOptions {
        cgroup_parent: store.cgroup_parent()?,
        boot_args,
        app: app_process(&zone.zonename, &bundle)?,
        netns,
        cgroup_v2: cgroup_v2(),
        userns,
        systemd: zone.brand == Brand::Linux && init_kind(&bundle.join("root")) == Init::Systemd,
        vm,
    };
    if let Some(base) = userns {
        device_nodes(zone, &bundle, base)?;
    }
    let mut spec = zones::spec::zone_spec(zone, &opts)?;
    super::cgroup_driver::place(store, &mut spec, &zone.zonename)
        .map_err(|e| zone_err(&zone.zonename, e))?;
    super::metadata::add_mount(&mut spec, &ZonePaths::new(store, &zone.zonename));
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| zone_err(&zone.zonename, e))?;
    // No fsync: config.json is written again at every boot.
    zones_engine::state::write_replace(&bundle.join("config.json"), &json)
        .map_err(|e| zone_err(&zone.zonename, format!("write config.json: {e}")))?;
    Ok(bundle)
}

/// The zone's own copies of its device resources, `<zonepath>/devices/<name>`: the host's
/// node (type, numbers, mode) owned by the zone's root, bound in by the spec.
fn device_nodes(zone: &Zone, bundle: &Path, base: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dir = bundle.join("devices");
    let _ = std::fs::remove_dir_all(&dir);
    let vm_devices = zones::spec::vm_devices(zone);
    if zone.device.is_empty() && vm_devices.is_empty() {
        return Ok(());
    }
    let err = |what: String| zone_err(&zone.zonename, what);
    std::fs::create_dir_all(&dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    // A kvm zone's devices belong to its qemu user, and to no one else in the zone.
    let nodes = zone
        .device
        .iter()
        .filter_map(|d| d.match_.as_deref())
        .map(|p| (p, base, None))
        .chain(
            vm_devices
                .into_iter()
                .map(|p| (p, base + zones::kvm::QEMU_ID, Some(0o600))),
        );
    for (path, owner, mode) in nodes {
        let meta = std::fs::metadata(path).map_err(|e| err(format!("device {path}: {e}")))?;
        let kind = if meta.file_type().is_block_device() {
            nix::sys::stat::SFlag::S_IFBLK
        } else {
            nix::sys::stat::SFlag::S_IFCHR
        };
        let node = dir.join(zones::spec::device_node_name(path));
        let mode = nix::sys::stat::Mode::from_bits_truncate(mode.unwrap_or(meta.mode() & 0o777));
        nix::sys::stat::mknod(&node, kind, mode, meta.rdev())
            .map_err(|e| err(format!("mknod {}: {e}", node.display())))?;
        // mknod's mode passes through the umask.
        std::fs::set_permissions(
            &node,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(mode.bits()),
        )
        .map_err(|e| err(format!("chmod {}: {e}", node.display())))?;
        std::os::unix::fs::chown(&node, Some(owner), Some(owner))
            .map_err(|e| err(format!("chown {}: {e}", node.display())))?;
    }
    Ok(())
}

/// The kind of init a zone's root has, by what its `/sbin/init` resolves to inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// systemd: its own mounts and capabilities ([`zones::spec::systemd_mounts`]), a
    /// delegated cgroup, shut down by SIGRTMIN+3.
    Systemd,
    /// busybox init: SIGUSR2 powers off, SIGTERM reboots (Alpine's init, running OpenRC).
    Busybox,
    /// sysvinit (Debian's `sysvinit-core`, running OpenRC or sysv-rc from /etc/inittab):
    /// SIGPWR powers off through inittab's `powerfail` entry (`p0::powerfail:/sbin/init 0`,
    /// as LXC and Proxmox set it), SIGINT reboots through `ctrlaltdel`.
    Sysvinit,
    /// Anything else (a script, an init zones does not know): SIGTERM.
    Other,
}

/// What only sysvinit's init binary carries: the variable it puts in its children's
/// environment (`INIT_VERSION=sysvinit-3.06`).
const SYSVINIT_MARK: &[u8] = b"INIT_VERSION";

/// At most this much of a zone's init binary is read to recognise it (sysvinit's is ~60 KB).
const INIT_READ_LIMIT: u64 = 4 << 20;

/// The init of the zone root `root` (a host directory), its `/sbin/init` resolved inside the
/// root: the zone shapes those links, and a host lookup would follow them into the host's
/// filesystem.
pub fn init_kind(root: &Path) -> Init {
    let zroot = super::rootfile::ZoneRoot::open(root).ok();
    let init = zroot
        .as_ref()
        .and_then(|r| r.resolve("/sbin/init"))
        .unwrap_or_default();
    let name = Path::new(&init)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.contains("busybox") {
        Init::Busybox
    } else if name == "systemd" || init.contains("/systemd/") {
        Init::Systemd
    } else if zroot
        .and_then(|r| r.read(&init, INIT_READ_LIMIT).ok())
        .is_some_and(|b| b.windows(SYSVINIT_MARK.len()).any(|w| w == SYSVINIT_MARK))
    {
        Init::Sysvinit
    } else {
        Init::Other
    }
}

/// Hand the zone's unified (cgroup2) cgroup to the zone's root, whose host id is `base`:
/// the directory and the files a delegate may write (cgroup.procs, cgroup.threads,
/// cgroup.subtree_control), as systemd's `Delegate=yes` does for a user namespace. Its
/// systemd then makes init.scope and its slices beneath it; the caps (memory.max, pids.max
/// on pure v2, the v1 hierarchies on hybrid hosts) stay root's, read-only to the zone.
pub fn delegate_cgroup(zone: &str, init: Pid, base: u32) -> Result<(), EngineError> {
    let err = |what: String| zone_err(zone, what);
    let cg = std::fs::read_to_string(format!("/proc/{init}/cgroup"))
        .map_err(|e| err(format!("cgroup of init: {e}")))?;
    let rel = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| err("init is in no unified cgroup".into()))?;
    // Only the zone's own cgroup, never a parent (a host without a unified cgroup of the
    // zone leaves init in the root one).
    if !rel.trim_end_matches('/').ends_with(&format!("/{zone}")) {
        return Err(err(format!(
            "init's unified cgroup {rel} is not the zone's own: not delegating it"
        )));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| err(format!("mountinfo: {e}")))?;
    // The first cgroup2 mount of the host's root (fields: id parent dev root mountpoint ...
    // - fstype ...).
    let mnt = mountinfo
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            (post.starts_with("cgroup2 ") && f.get(3) == Some(&"/")).then(|| f.get(4).copied())?
        })
        .ok_or_else(|| err("no cgroup2 mount on this host".into()))?;
    let dir = Path::new(mnt).join(rel.trim_start_matches('/'));
    for p in [
        dir.clone(),
        dir.join("cgroup.procs"),
        dir.join("cgroup.threads"),
        dir.join("cgroup.subtree_control"),
    ] {
        std::os::unix::fs::chown(&p, Some(base), Some(base))
            .map_err(|e| err(format!("delegate {}: {e}", p.display())))?;
    }
    Ok(())
}

/// Whether the host runs pure cgroup v2 (the caps then use v2-only files).
fn cgroup_v2() -> bool {
    zones_cgroup::mode() == zones_cgroup::Mode::V2
}

/// Apply `zone`'s caps to its running container (live re-capping). The memory cap, the one
/// the kernel may refuse (a v1 limit below what the zone uses), goes first and alone, so a
/// refusal leaves every cap as it was.
pub fn update_caps(paths: &ZonePaths, zone: &Zone) -> Result<(), EngineError> {
    // Every cap the kernel cannot apply is refused before the first write: the memory cap
    // goes in first below, and must not stay applied when the rest is refused.
    zones::spec::check_kernel(zone)?;
    let mut all = zones::spec::zone_resources(zone, cgroup_v2())?;
    if let Ok((st, _)) = container::state(&paths.runz_root, &paths.name) {
        let old = st
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone());
        if let Some(old_io) = old.and_then(|r| r.block_io().clone()) {
            zones::spec::uncap_removed_devices(&old_io, &mut all);
        }
    }
    let (memory, rest) = split_memory(all);
    if memory.memory().is_some() || memory.unified().is_some() {
        container::update(&paths.runz_root, &paths.name, &memory).map_err(|e| {
            zone_err(
                &paths.name,
                format!("the memory cap was refused (is it below what the zone uses?): {e}"),
            )
        })?;
    }
    container::update(&paths.runz_root, &paths.name, &rest)?;
    Ok(())
}

/// `res` as (its memory caps, everything else).
fn split_memory(
    mut res: oci_spec::runtime::LinuxResources,
) -> (
    oci_spec::runtime::LinuxResources,
    oci_spec::runtime::LinuxResources,
) {
    let mut memory = oci_spec::runtime::LinuxResources::default();
    memory.set_memory(*res.memory());
    res.set_memory(None);
    if let Some(mut u) = res.unified().clone() {
        let mem: std::collections::HashMap<String, String> = u
            .iter()
            .filter(|(k, _)| k.starts_with("memory."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        u.retain(|k, _| !k.starts_with("memory."));
        memory.set_unified((!mem.is_empty()).then_some(mem));
        res.set_unified((!u.is_empty()).then_some(u));
    }
    (memory, res)
}

/// Create the zone's container (init waits for start). Returns init's pid and the pty master.
pub fn create(paths: &ZonePaths, bundle: &Path) -> Result<(Pid, OwnedFd), EngineError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| zone_err(&paths.name, format!("console socketpair: {e}")))?;
    // A leftover container of a crashed supervisor would block the id.
    let _ = container::delete(&paths.runz_root, &paths.name, true);
    let created = container::create(CreateOpts {
        root: paths.runz_root.clone(),
        id: paths.name.clone(),
        bundle: bundle.to_path_buf(),
        console_fd: Some(theirs),
        no_new_keyring: false,
        systemd_cgroup: super::cgroup_driver::in_bundle(bundle),
        ..Default::default()
    })?;
    let master = zones_engine::console::recv_master(&ours)
        .map_err(|e| zone_err(&paths.name, format!("console: {e}")))?;
    Ok((created.pid, master))
}

/// Let the zone's init run.
pub fn start(paths: &ZonePaths) -> Result<(), EngineError> {
    Ok(container::start(&paths.runz_root, &paths.name)?)
}

/// Kill everything in the zone and remove its container (cgroup, state).
pub fn destroy(paths: &ZonePaths) -> Result<(), EngineError> {
    Ok(container::delete(&paths.runz_root, &paths.name, true)?)
}

/// Send `sig` to the zone's init.
pub fn signal_init(paths: &ZonePaths, sig: i32) -> Result<(), EngineError> {
    Ok(container::kill(&paths.runz_root, &paths.name, sig, false)?)
}

/// Send `sig` to every process of the zone.
pub fn signal_all(paths: &ZonePaths, sig: i32) -> Result<(), EngineError> {
    Ok(container::kill(&paths.runz_root, &paths.name, sig, true)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zone root whose /sbin/init is a symlink to `target` (absolute: resolved inside).
    fn root_with_init(tag: &str, target: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("runz-test-init-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["sbin", "bin", "usr/lib/systemd"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("bin/busybox"), "").unwrap();
        std::fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
        std::fs::write(root.join("bin/openrc-init"), "").unwrap();
        // sysvinit's binary, as far as recognising it goes.
        std::fs::write(
            root.join("bin/init"),
            b"\x7fELF..INIT_VERSION=sysvinit-3.06..",
        )
        .unwrap();
        std::os::unix::fs::symlink(target, root.join("sbin/init")).unwrap();
        root
    }

    #[test]
    fn the_init_is_what_sbin_init_resolves_to_inside_the_root() {
        for (tag, target, want) in [
            ("bb", "/bin/busybox", Init::Busybox),
            ("sd", "/usr/lib/systemd/systemd", Init::Systemd),
            ("sdrel", "../usr/lib/systemd/systemd", Init::Systemd),
            ("orc", "/bin/openrc-init", Init::Other),
            ("sysv", "/bin/init", Init::Sysvinit),
            ("sysvrel", "../bin/init", Init::Sysvinit),
            // A link that leads nowhere inside the root is not followed on the host.
            ("gone", "/lib/systemd/systemd", Init::Other),
        ] {
            let root = root_with_init(tag, target);
            let got = init_kind(&root);
            std::fs::remove_dir_all(&root).unwrap();
            assert_eq!(got, want, "{target}");
        }
    }
}
