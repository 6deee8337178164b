//! process.user: uid, gid, additionalGids, umask; keeping capabilities across setuid.
//!
//! Order (as runc's setupUser/finalizeNamespace): PR_SET_KEEPCAPS 1, setgroups, setresgid,
//! setresuid, PR_SET_KEEPCAPS 0, umask. The permitted set survives the uid switch; the
//! effective set is emptied by the kernel and restored by `capabilities::apply`.

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::User;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user: {0}")]
    Set(String),
    #[error("user: prctl(PR_SET_KEEPCAPS, {value}): {source}")]
    KeepCaps { value: u8, source: nix::Error },
    /// runc's words ("setgroups: invalid argument"), with how many groups and the first ones
    /// (the whole list can be tens of thousands long).
    #[error("setgroups: {source} ({} additionalGids: {})", gids.len(), preview(gids))]
    Setgroups { gids: Vec<u32>, source: nix::Error },
    #[error("user: setresgid({gid}): {source}")]
    Setgid { gid: u32, source: nix::Error },
    #[error("user: setresuid({uid}): {source}")]
    Setuid { uid: u32, source: nix::Error },
}

/// The first few of `gids`, for an error message.
fn preview(gids: &[u32]) -> String {
    let head: Vec<String> = gids.iter().take(8).map(u32::to_string).collect();
    let more = if gids.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", head.join(", "))
}

/// The umask when process.user.umask is unset (runc's default).
pub const DEFAULT_UMASK: u32 = 0o022;

/// Become the process user: setgroups, setgid, setuid (keeping caps for `capabilities::apply`), umask.
///
/// When /proc/self/setgroups says "deny" (an unprivileged user namespace), setgroups is
/// skipped; if additionalGids were asked for, a warning says they were not set.
pub fn switch(user: &User) -> Result<(), UserError> {
    set_keepcaps(true)?;
    set_groups(user.additional_gids().as_deref().unwrap_or(&[]))?;
    let gid = user.gid();
    let g = Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g).map_err(|source| UserError::Setgid { gid, source })?;
    let uid = user.uid();
    let u = Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u).map_err(|source| UserError::Setuid { uid, source })?;
    set_keepcaps(false)?;
    set_umask(user.umask().unwrap_or(DEFAULT_UMASK));
    Ok(())
}

/// The home directory of `uid` in the container's /etc/passwd (read from inside the container,
/// after pivot_root or setns), as runc takes it for HOME: the first entry with that uid, or "/"
/// when there is none (or no readable passwd file).
pub fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| home_in(&text, uid))
        .unwrap_or_else(|| "/".to_string())
}

fn home_in(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].trim().parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Hand the process's stdio to its user, as runc's fixStdioPermissions does (a pty slave
/// or pipe it can then reopen, chmod, or use as its controlling terminal): every one of fds
/// 0-2 not already owned by `uid` and not /dev/null gets owner `uid` (the group stays).
/// EINVAL and EPERM (an fd of a filesystem that will not) are skipped, as runc skips them.
pub fn fix_stdio_owner(uid: u32) -> Result<(), UserError> {
    let null = nix::sys::stat::stat("/dev/null").ok().map(|s| s.st_rdev);
    for fd in 0..=2 {
        // A closed fd fails with EBADF and is skipped.
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue;
        };
        if st.st_uid == uid || Some(st.st_rdev) == null {
            continue;
        }
        match nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), None) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::EPERM) => {}
            Err(e) => return Err(UserError::Set(format!("fchown stdio to uid {uid}: {e}"))),
        }
    }
    Ok(())
}

fn set_groups(gids: &[u32]) -> Result<(), UserError> {
    if setgroups_denied() {
        if !gids.is_empty() {
            eprintln!(
                "{}: warning: additionalGids {gids:?} not set: /proc/self/setgroups is \"deny\"",
                crate::log::program()
            );
        }
        return Ok(());
    }
    let list: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&list).map_err(|source| UserError::Setgroups {
        gids: gids.to_vec(),
        source,
    })
}

/// True when the user namespace forbids setgroups(2). A missing file (no /proc, or an old
/// kernel) means "allowed".
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false)
}

fn set_keepcaps(on: bool) -> Result<(), UserError> {
    let value = u8::from(on);
    // SAFETY: PR_SET_KEEPCAPS only sets a flag of the calling thread; no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(value), 0, 0, 0) };
    if r < 0 {
        return Err(UserError::KeepCaps {
            value,
            source: nix::Error::last(),
        });
    }
    Ok(())
}

fn set_umask(mask: u32) {
    // SAFETY: umask(2) cannot fail and only changes the calling process's file mode mask.
    unsafe {
        libc::umask(mask as libc::mode_t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::{self, test_fork::in_child};
    use oci_spec::runtime::{Capability, LinuxCapabilitiesBuilder, UserBuilder};

    fn status_field(name: &str) -> String {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    }

    fn mask(caps: &[Capability]) -> String {
        let m = caps
            .iter()
            .map(|c| 1u64 << capabilities::index_of(c).unwrap())
            .fold(0, |a, b| a | b);
        format!("{m:016x}")
    }

    /// The full sequence init runs: drop_bounding, switch to uid/gid 1000 with extra groups,
    /// apply. Checked from /proc/self/status in the child. Codes: 0 ok, 10+ step failed.
    #[test]
    fn home_is_the_first_passwd_entry_of_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\n# comment\nzone:x:1000:1000::/home/zone:/bin/sh\nzone2:x:1000:1000::/other:/bin/sh\n";
        assert_eq!(home_in(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_in(passwd, 1000).as_deref(), Some("/home/zone"));
        assert_eq!(home_in(passwd, 7), None);
    }

    #[test]
    fn drop_switch_apply_in_child() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let kept = [
            Capability::NetBindService,
            Capability::Kill,
            Capability::Chown,
        ];
        let amb = [Capability::NetBindService];
        let c = LinuxCapabilitiesBuilder::default()
            .bounding(
                kept.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
            )
            .permitted(
                kept.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
            )
            .effective(
                kept.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
            )
            .inheritable(
                amb.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
            )
            .ambient(
                amb.iter()
                    .copied()
                    .collect::<std::collections::HashSet<_>>(),
            )
            .build()
            .unwrap();
        let u = UserBuilder::default()
            .uid(1000u32)
            .gid(1000u32)
            .additional_gids(vec![1001u32, 1002])
            .umask(0o027u32)
            .build()
            .unwrap();
        let code = in_child(|| {
            if capabilities::drop_bounding(&c).is_err() {
                return 10;
            }
            if switch(&u).is_err() {
                return 11;
            }
            if capabilities::apply(&c).is_err() {
                return 12;
            }
            let checks = [
                ("CapBnd", mask(&kept)),
                ("CapPrm", mask(&kept)),
                ("CapEff", mask(&kept)),
                ("CapInh", mask(&amb)),
                ("CapAmb", mask(&amb)),
                ("Uid", "1000 1000 1000 1000".to_string()),
                ("Gid", "1000 1000 1000 1000".to_string()),
                ("Groups", "1001 1002".to_string()),
                ("Umask", "0027".to_string()),
            ];
            for (i, (field, want)) in checks.iter().enumerate() {
                let got = status_field(field);
                if &got != want {
                    eprintln!("{field}: got {got:?}, want {want:?}");
                    return 20 + i as i32;
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    /// Requesting a capability the runtime itself lacks (CAP_SYS_RESOURCE is missing from this
    /// host's bounding set, see machine.md) warns and skips it instead of failing.
    #[test]
    fn ungrantable_cap_is_skipped_in_child() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let set: std::collections::HashSet<_> = [Capability::SysResource, Capability::Kill]
            .into_iter()
            .collect();
        // The builder's default inheritable set (Docker's list) lies beyond this bounding set,
        // which the kernel refuses (as runc fails): empty, as a spec without them.
        let c = LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .permitted(set.clone())
            .effective(set)
            .inheritable(std::collections::HashSet::new())
            .ambient(std::collections::HashSet::new())
            .build()
            .unwrap();
        let u = UserBuilder::default().uid(0u32).gid(0u32).build().unwrap();
        let code = in_child(|| {
            let had = status_field("CapPrm");
            if capabilities::drop_bounding(&c).is_err() || switch(&u).is_err() {
                return 10;
            }
            if capabilities::apply(&c).is_err() {
                return 11;
            }
            let had = u64::from_str_radix(&had, 16).unwrap_or(0);
            let want = format!("{:016x}", had & ((1 << 24) | (1 << 5)));
            if status_field("CapEff") != want || status_field("CapPrm") != want {
                return 12;
            }
            if !status_field("Groups").is_empty() || status_field("Umask") != "0022" {
                return 13;
            }
            0
        });
        assert_eq!(code, 0);
    }
}
