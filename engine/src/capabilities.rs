//! The five capability sets of process.capabilities.
//!
//! Names: oci-spec 0.10 parses every capability name into its `Capability` enum while
//! deserializing config.json (accepting `CAP_X`, `X`, any case, repeated `CAP_` prefixes). A
//! name it does not know (e.g. `CAP_FOO`) makes the *whole* config fail to deserialize with
//! "no variant for CAP_FOO (converted to FOO)": that happens in the spec loader, before this
//! module sees anything, so here every name is one oci-spec knows. What can still be missing is
//! kernel support (index > /proc/sys/kernel/cap_last_cap) or the right to grant it (not in the
//! runtime's own permitted/bounding set, e.g. CAP_SYS_RESOURCE on a restricted host). Both are
//! warnings on stderr and the capability is skipped, as runtime-spec config.md asks.
//!
//! Order inside init: `drop_bounding` while still root (needs CAP_SETPCAP), then
//! `user::switch`, then `apply` as the very last step before execve.

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("capabilities: {0}")]
    Apply(String),
    #[error("capabilities: cannot drop {name} from the bounding set: {source}")]
    DropBounding {
        name: String,
        source: std::io::Error,
    },
    /// runc's words first ("unable to apply caps: operation not permitted"): a set the
    /// kernel refuses (effective beyond permitted, inheritable beyond the bounding set).
    #[error("unable to apply caps: {} (capset permitted={permitted:#x}, inheritable={inheritable:#x}, effective={effective:#x})", super::errno::io_text(source))]
    Capset {
        permitted: u64,
        inheritable: u64,
        effective: u64,
        source: std::io::Error,
    },
    #[error("capabilities: capget failed: {0}")]
    Capget(std::io::Error),
    #[error("capabilities: cannot clear the ambient set: {0}")]
    AmbientClear(std::io::Error),
}

/// The highest capability number any kernel can have in the 2×u32 capset ABI (v3).
const MAX_CAP: u8 = 63;

/// A capability set as the kernel sees it: bit n = capability n.
type Mask = u64;

/// The kernel name of an oci-spec capability, e.g. `CAP_SYS_ADMIN`.
pub fn oci_name(cap: &Capability) -> String {
    // strum's Display for the oci-spec enum is the name without the prefix ("SYS_ADMIN").
    format!("CAP_{cap}")
}

/// The kernel capability number of an oci-spec capability, `None` if this runtime's
/// capability table (the caps crate) does not know the name.
pub fn index_of(cap: &Capability) -> Option<u8> {
    caps::Capability::from_str(&oci_name(cap))
        .ok()
        .map(|c| c.index())
}

/// Every capability name this runtime knows, sorted by capability number (for `features`).
/// Like runc's `KnownCapabilities`, this is the runtime's table, not filtered by the kernel.
pub fn all_known() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// Empty sets, all five (oci-spec's `Default` is Docker's list, not this).
pub fn none() -> LinuxCapabilities {
    serde_json::from_str("{}").expect("an empty object is a LinuxCapabilities")
}

/// Drop from the bounding set everything not listed (done while still root, before setuid).
/// Listed capabilities the kernel does not know, or that are already gone from our own
/// bounding set, produce a warning.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let mut warned = BTreeSet::new();
    let keep = resolve(caps.bounding().as_ref(), last, &mut warned);
    for idx in 0..=last {
        if keep & bit(idx) != 0 {
            if !bounding_has(idx) {
                warn_once(
                    &mut warned,
                    &cap_name(idx),
                    "is not in the runtime's bounding set",
                );
            }
            continue;
        }
        if bounding_has(idx) {
            prctl_bounding_drop(idx).map_err(|source| CapsError::DropBounding {
                name: cap_name(idx),
                source,
            })?;
        }
    }
    Ok(())
}

/// Apply the sets to the calling process, as the last step before execve (after setuid).
/// Capabilities the kernel does not know, or the runtime itself lacks, are a warning on stderr
/// and skipped (runtime-spec); sets the kernel refuses together (effective beyond permitted,
/// inheritable beyond the bounding set) fail as runc fails: "unable to apply caps: operation
/// not permitted".
///
/// Permitted, inheritable and effective are set with ONE capset(2) call: set one at a time, a
/// root process (effective still full) could not shrink permitted below effective. Then the
/// ambient set is cleared and each listed ambient capability raised; one the kernel refuses
/// (not in both the new permitted and inheritable sets) is left out with a debug line only,
/// as runc ignores it (its default spec lists ambient capabilities without inheritable ones).
pub fn apply(caps: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let mut warned = BTreeSet::new();
    let old = capget()?;

    let want_p = resolve(caps.permitted().as_ref(), last, &mut warned);
    let want_i = resolve(caps.inheritable().as_ref(), last, &mut warned);
    let want_e = resolve(caps.effective().as_ref(), last, &mut warned);
    let want_a = resolve(caps.ambient().as_ref(), last, &mut warned);

    // What the runtime itself holds (kept across setuid by PR_SET_KEEPCAPS) bounds every set;
    // the rest is the kernel's to check.
    let new_p = grantable(want_p, old.permitted, "permitted", &mut warned);
    let new_i = grantable(
        want_i,
        old.inheritable | old.permitted,
        "inheritable",
        &mut warned,
    );
    let new_e = grantable(want_e, old.permitted, "effective", &mut warned);
    capset(CapSets {
        permitted: new_p,
        inheritable: new_i,
        effective: new_e,
    })?;

    set_ambient(want_a, new_p & new_i, &mut warned)
}

/// The three POSIX sets of the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CapSets {
    permitted: Mask,
    inheritable: Mask,
    effective: Mask,
}

/// Clear the ambient set, then raise every wanted capability that `allowed` (P ∩ I) has.
fn set_ambient(want: Mask, allowed: Mask, warned: &mut BTreeSet<String>) -> Result<(), CapsError> {
    prctl_ambient_clear_all().map_err(CapsError::AmbientClear)?;
    for idx in bits(want) {
        if allowed & bit(idx) == 0 {
            crate::log::debug(&format!(
                "capability {} not raised in the ambient set: not in both the permitted and inheritable sets",
                cap_name(idx)
            ));
            continue;
        }
        if let Err(e) = prctl_ambient_raise(idx) {
            warn_once(
                warned,
                &cap_name(idx),
                &format!("cannot be raised in the ambient set ({e})"),
            );
        }
    }
    Ok(())
}

/// Names in a process object's capability sets (JSON) that this runtime does not know, removed
/// so the rest of the config still parses (oci-spec refuses a whole config for one unknown
/// name; runc ignores it with a warning, see [`unknown_warning`]). The removed names, sorted
/// and deduplicated.
pub fn drop_unknown(process: &mut serde_json::Value) -> Vec<String> {
    let mut dropped = BTreeSet::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return Vec::new();
    };
    for list in sets.values_mut().filter_map(|l| l.as_array_mut()) {
        list.retain(|name| {
            let known = serde_json::from_value::<Capability>(name.clone())
                .ok()
                .and_then(|c| index_of(&c))
                .is_some();
            if !known {
                dropped.insert(name.as_str().map_or_else(|| name.to_string(), String::from));
            }
            known
        });
    }
    dropped.into_iter().collect()
}

/// runc's warning for capability names it ignores.
pub fn unknown_warning(names: &[String]) -> String {
    format!(
        "ignoring unknown or unavailable capabilities: [{}]",
        names.join(" ")
    )
}

/// Keep the wanted capabilities the runtime holds; warn about the others.
fn grantable(want: Mask, allowed: Mask, set: &str, warned: &mut BTreeSet<String>) -> Mask {
    for idx in bits(want & !allowed) {
        warn_once(
            warned,
            &cap_name(idx),
            &format!("cannot be granted in the {set} set (the runtime lacks it)"),
        );
    }
    want & allowed
}

/// Map a set of oci-spec capabilities to a mask, warning about (and skipping) the ones this
/// runtime or the kernel does not know.
fn resolve(set: Option<&Capabilities>, last: u8, warned: &mut BTreeSet<String>) -> Mask {
    let mut mask = 0;
    // Sorted so warnings come out in a stable order.
    let mut names: Vec<(Option<u8>, String)> = set
        .into_iter()
        .flatten()
        .map(|c| (index_of(c), oci_name(c)))
        .collect();
    names.sort();
    for (idx, name) in names {
        match idx {
            Some(idx) if idx <= last => mask |= bit(idx),
            _ => warn_once(warned, &name, "is not known to this kernel, skipped"),
        }
    }
    mask
}

fn warn_once(warned: &mut BTreeSet<String>, name: &str, what: &str) {
    if warned.insert(name.to_string()) {
        eprintln!(
            "{}: warning: capability {name} {what}",
            crate::log::program()
        );
    }
}

fn bit(idx: u8) -> Mask {
    1u64 << idx
}

fn bits(mask: Mask) -> impl Iterator<Item = u8> {
    (0..=MAX_CAP).filter(move |i| mask & bit(*i) != 0)
}

/// `CAP_X` for a kernel capability number (`CAP_<n>` for numbers newer than our table).
fn cap_name(idx: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == idx)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("CAP_{idx}"))
}

/// The kernel's last capability: /proc/sys/kernel/cap_last_cap, or probed with
/// PR_CAPBSET_READ when /proc is not mounted (e.g. inside a rootfs without /proc).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .map(|n| n.min(MAX_CAP))
        .unwrap_or_else(probe_last_cap)
}

fn probe_last_cap() -> u8 {
    let mut last = 0;
    for idx in 0..=MAX_CAP {
        // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set; an unknown
        // capability number yields EINVAL.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(idx), 0, 0, 0) };
        if r < 0 {
            break;
        }
        last = idx;
    }
    last
}

fn bounding_has(idx: u8) -> bool {
    // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(idx), 0, 0, 0) == 1 }
}

fn prctl_bounding_drop(idx: u8) -> std::io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP changes only the calling thread's bounding set; no pointers.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(idx), 0, 0, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn prctl_ambient_clear_all() -> std::io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL changes only the calling thread's ambient set.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn prctl_ambient_raise(idx: u8) -> std::io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT_RAISE changes only the calling thread's ambient set; no pointers.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(idx),
            0,
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `_LINUX_CAPABILITY_VERSION_3`: two u32 words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn join(d: &[CapData; 2], f: fn(&CapData) -> u32) -> Mask {
    u64::from(f(&d[0])) | (u64::from(f(&d[1])) << 32)
}

fn split(m: Mask) -> (u32, u32) {
    // Truncation is the point: low and high 32-bit words of the 64-bit mask.
    ((m & 0xffff_ffff) as u32, (m >> 32) as u32)
}

fn capget() -> Result<CapSets, CapsError> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes one header and two CapData words (v3 ABI), both valid for writes
    // and laid out as struct __user_cap_header_struct / __user_cap_data_struct[2].
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r != 0 {
        return Err(CapsError::Capget(std::io::Error::last_os_error()));
    }
    Ok(CapSets {
        permitted: join(&data, |d| d.permitted),
        inheritable: join(&data, |d| d.inheritable),
        effective: join(&data, |d| d.effective),
    })
}

fn capset(sets: CapSets) -> Result<(), CapsError> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let (e0, e1) = split(sets.effective);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: capset reads one header and two CapData words (v3 ABI); pid 0 = calling thread.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(CapsError::Capset {
            permitted: sets.permitted,
            inheritable: sets.inheritable,
            effective: sets.effective,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runtime_cap_maps_to_oci_spec_and_back() {
        for c in caps::all() {
            let name = c.to_string();
            let oci: Capability = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(oci_name(&oci), name);
            assert_eq!(index_of(&oci), Some(c.index()), "{name}");
        }
    }

    #[test]
    fn names_are_sorted_by_number() {
        let all = all_known();
        assert_eq!(all[0], "CAP_CHOWN");
        assert_eq!(all[21], "CAP_SYS_ADMIN");
        assert!(all.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
        assert_eq!(all.len(), caps::all().len());
    }

    #[test]
    fn unknown_name_fails_in_oci_spec_not_here() {
        let r: Result<Capability, _> = serde_json::from_str("\"CAP_FOO\"");
        assert!(r.is_err());
        let ok: Capability = serde_json::from_str("\"sys_admin\"").unwrap();
        assert_eq!(ok, Capability::SysAdmin);
    }

    #[test]
    fn resolve_skips_caps_above_last() {
        let set: Capabilities = [Capability::Chown, Capability::CheckpointRestore]
            .into_iter()
            .collect();
        let mut warned = BTreeSet::new();
        // Pretend the kernel stops at CAP_SETFCAP (31).
        let m = resolve(Some(&set), 31, &mut warned);
        assert_eq!(m, 1);
        assert!(warned.contains("CAP_CHECKPOINT_RESTORE"));
    }

    #[test]
    fn grantable_is_intersection() {
        let mut warned = BTreeSet::new();
        assert_eq!(grantable(0b1011, 0b0011, "permitted", &mut warned), 0b0011);
        assert!(warned.contains("CAP_FOWNER")); // bit 3
    }

    #[test]
    fn cap_names_by_number() {
        assert_eq!(cap_name(0), "CAP_CHOWN");
        assert_eq!(cap_name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(cap_name(62), "CAP_62");
        assert!(last_cap() >= 40);
        assert_eq!(probe_last_cap(), last_cap());
    }
}

/// Running risky test code (setuid, caps, mounts) in a forked child, never in the test process.
#[cfg(test)]
pub(crate) mod test_fork {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    /// Run `f` in a forked child and return its exit code (200 + signal when killed,
    /// 199 when `f` panicked).
    pub(crate) fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only runs `f` and then `_exit`s; it never returns into the test
        // harness. glibc resets the malloc locks at fork, so allocating in the child is fine.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(199);
                // SAFETY: _exit ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                WaitStatus::Signaled(_, sig, _) => 200 + sig as i32,
                other => panic!("unexpected wait status {other:?}"),
            },
        }
    }
}
