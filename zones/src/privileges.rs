//! `limitpriv`: illumos privilege sets for a zone, mapped onto Linux capabilities.
//!
//! The value is a comma list as in illumos: `default`, `all`, `none`, privilege names, and
//! names prefixed with `-` or `!` to take one away, e.g. `default,sys_time,-net_rawaccess`.
//! illumos privilege names map to the capability that grants the same power on Linux
//! (`sys_time` → CAP_SYS_TIME, `net_rawaccess` → CAP_NET_RAW, `proc_priocntl` → CAP_SYS_NICE,
//! `sys_mount` → CAP_SYS_ADMIN, …); Linux names (`cap_sys_admin` or `sys_admin`) work too.

use std::collections::BTreeSet;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PrivError {
    #[error("limitpriv {value:?}: unknown privilege {name:?}; use default, all, none, an illumos privilege like sys_time or a Linux capability like cap_sys_admin")]
    Unknown { value: String, name: String },
    #[error("limitpriv {value:?}: privilege {name:?} is prohibited in a non-global zone; remove it from limitpriv")]
    Prohibited { value: String, name: String },
    #[error("limitpriv {value:?}: privilege {name:?} has no effect in a zone with a user namespace (the kernel checks {cap} only in the host's); set userns=false or remove it from limitpriv")]
    NoEffectInUserns {
        value: String,
        name: String,
        cap: String,
    },
}

/// Capabilities the kernel checks only in the initial user namespace (`capable()`, not
/// `ns_capable()`; see capabilities(7) and user_namespaces(7)): held in a zone's own user
/// namespace they grant nothing, so naming one for such a zone is a mistake, not a setting.
/// Setting the clock (CAP_SYS_TIME), the kernel log (CAP_SYSLOG), process accounting
/// (CAP_SYS_PACCT), wake alarms (CAP_WAKE_ALARM), EPOLLWAKEUP (CAP_BLOCK_SUSPEND), the
/// immutable and append-only flags (CAP_LINUX_IMMUTABLE), the audit netlink socket
/// (CAP_AUDIT_CONTROL, CAP_AUDIT_READ) and perf events (CAP_PERFMON). Default-set members
/// (CAP_AUDIT_WRITE) are not listed: `default` is not a request for them.
pub const HOST_NAMESPACE_ONLY: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_BLOCK_SUSPEND",
    "CAP_LINUX_IMMUTABLE",
    "CAP_PERFMON",
    "CAP_SYSLOG",
    "CAP_SYS_PACCT",
    "CAP_SYS_TIME",
    "CAP_WAKE_ALARM",
];

/// Privileges no zone may have, whatever limitpriv says: illumos's prohibited set for
/// non-global zones (`sys_config`, `proc_zone`, `dtrace_kernel`, `sys_net_config`, ...) and the
/// Linux capabilities that act on the host's kernel or its MAC policy (module loading, raw
/// I/O). Taking one away (`-sys_module`) is allowed: a zone never has it.
const PROHIBITED: &[&str] = &[
    "dtrace_kernel",
    "proc_zone",
    "sys_config",
    "sys_linkdir",
    "sys_net_config",
    "sys_res_config",
    "sys_module",
    "sys_rawio",
    "mac_admin",
    "mac_override",
];

/// The capabilities of a zone's root with `limitpriv=default` (illumos's default zone set: a
/// root that administers its own zone but not the machine). CAP_SYS_BOOT is safe in a PID
/// namespace: reboot(2) there only ends the zone's init, which is how a zone reboots itself.
pub const DEFAULT: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_NICE",
    "CAP_SYS_PTRACE",
    "CAP_SYS_TTY_CONFIG",
];

/// Every capability a zone may be given with `all`. Module loading, raw I/O and the MAC
/// capabilities stay with the global zone whatever limitpriv says, as illumos keeps
/// `sys_config`-class privileges out of non-global zones.
pub const ALL: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// illumos privilege → Linux capability.
const ILLUMOS: &[(&str, &str)] = &[
    ("contract_event", "CAP_SYS_RESOURCE"),
    ("file_chown", "CAP_CHOWN"),
    ("file_chown_self", "CAP_CHOWN"),
    ("file_dac_execute", "CAP_DAC_OVERRIDE"),
    ("file_dac_read", "CAP_DAC_READ_SEARCH"),
    ("file_dac_search", "CAP_DAC_READ_SEARCH"),
    ("file_dac_write", "CAP_DAC_OVERRIDE"),
    ("file_owner", "CAP_FOWNER"),
    ("file_setid", "CAP_FSETID"),
    ("ipc_dac_read", "CAP_IPC_OWNER"),
    ("ipc_dac_write", "CAP_IPC_OWNER"),
    ("ipc_owner", "CAP_IPC_OWNER"),
    ("net_bindmlp", "CAP_NET_BIND_SERVICE"),
    ("net_config", "CAP_NET_ADMIN"),
    ("net_icmpaccess", "CAP_NET_RAW"),
    ("net_mac_aware", "CAP_NET_ADMIN"),
    ("net_privaddr", "CAP_NET_BIND_SERVICE"),
    ("net_rawaccess", "CAP_NET_RAW"),
    ("proc_audit", "CAP_AUDIT_WRITE"),
    ("proc_chroot", "CAP_SYS_CHROOT"),
    ("proc_lock_memory", "CAP_IPC_LOCK"),
    ("proc_owner", "CAP_SYS_PTRACE"),
    ("proc_priocntl", "CAP_SYS_NICE"),
    ("proc_session", "CAP_KILL"),
    ("proc_setid", "CAP_SETUID"),
    ("proc_taskid", "CAP_SETPCAP"),
    ("sys_acct", "CAP_SYS_PACCT"),
    ("sys_admin", "CAP_SYS_ADMIN"),
    ("sys_audit", "CAP_AUDIT_CONTROL"),
    ("sys_devices", "CAP_MKNOD"),
    ("sys_ipc_config", "CAP_SYS_RESOURCE"),
    ("sys_mount", "CAP_SYS_ADMIN"),
    ("sys_resource", "CAP_SYS_RESOURCE"),
    ("sys_time", "CAP_SYS_TIME"),
];

/// What `default` adds for a zone with its own user namespace: illumos's default zone set
/// holds `sys_admin` and `sys_mount`, and CAP_SYS_ADMIN in a user namespace the zone owns acts
/// only on what that namespace owns: its UTS name (sethostname), mounts in its own mount
/// namespace of the filesystems a user namespace may mount (tmpfs, proc of its PID namespace,
/// its own cgroup2 subtree), never the host's files, devices or kernel settings (LXC and Incus
/// keep it in unprivileged containers for the same reason; tests/escape.rs tries what it
/// invites). Without a user namespace CAP_SYS_ADMIN is the host's, so `default` leaves it out.
pub const DEFAULT_USERNS_ADDED: &[&str] = &["CAP_SYS_ADMIN"];

/// The capabilities `limitpriv` gives (sorted) to a zone without a user namespace of its own.
/// `None` means `default`.
pub fn capabilities(limitpriv: Option<&str>) -> Result<Vec<String>, PrivError> {
    expand(limitpriv, false)
}

/// The capabilities `limitpriv` gives (sorted): `default` is [`DEFAULT`], plus
/// [`DEFAULT_USERNS_ADDED`] when the zone has its own user namespace (`userns`).
fn expand(limitpriv: Option<&str>, userns: bool) -> Result<Vec<String>, PrivError> {
    let value = limitpriv.unwrap_or("default");
    let mut set: BTreeSet<String> = BTreeSet::new();
    for raw in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (remove, name) = match raw.strip_prefix(['-', '!']) {
            Some(n) => (true, n),
            None => (false, raw),
        };
        let names: Vec<String> = match name.to_ascii_lowercase().as_str() {
            "default" | "zone" => DEFAULT
                .iter()
                .chain(if userns { DEFAULT_USERNS_ADDED } else { &[] })
                .map(|s| s.to_string())
                .collect(),
            "all" => ALL.iter().map(|s| s.to_string()).collect(),
            "none" => {
                if !remove {
                    set.clear();
                }
                Vec::new()
            }
            other => match lookup(other) {
                Some(cap) => vec![cap],
                None if remove && prohibited(other) => Vec::new(),
                None => return Err(unknown_or_prohibited(value, name)),
            },
        };
        for n in names {
            if remove {
                set.remove(&n);
            } else {
                set.insert(n);
            }
        }
    }
    Ok(set.into_iter().collect())
}

/// [`capabilities`], for a zone with (`userns`) or without its own user namespace: with one,
/// a privilege named explicitly whose capability is in [`HOST_NAMESPACE_ONLY`] is refused
/// (`all` is not refused: it names no privilege; zoneadm verify warns about it).
pub fn capabilities_for(limitpriv: Option<&str>, userns: bool) -> Result<Vec<String>, PrivError> {
    let caps = expand(limitpriv, userns)?;
    let Some(value) = limitpriv.filter(|_| userns) else {
        return Ok(caps);
    };
    for raw in value.split(',').map(str::trim) {
        if raw.starts_with(['-', '!']) {
            continue;
        }
        if let Some(cap) =
            lookup(&raw.to_ascii_lowercase()).filter(|c| HOST_NAMESPACE_ONLY.contains(&c.as_str()))
        {
            return Err(PrivError::NoEffectInUserns {
                value: value.to_string(),
                name: raw.to_string(),
                cap,
            });
        }
    }
    Ok(caps)
}

/// True for a (lower-case) name in [`PROHIBITED`], with or without `cap_`.
fn prohibited(lower: &str) -> bool {
    PROHIBITED.contains(&lower.strip_prefix("cap_").unwrap_or(lower))
}

/// The error for a name that maps to no capability a zone may have.
fn unknown_or_prohibited(value: &str, name: &str) -> PrivError {
    let is_prohibited = prohibited(&name.to_ascii_lowercase());
    let (value, name) = (value.to_string(), name.to_string());
    if is_prohibited {
        PrivError::Prohibited { value, name }
    } else {
        PrivError::Unknown { value, name }
    }
}

fn lookup(name: &str) -> Option<String> {
    if let Some((_, cap)) = ILLUMOS.iter().find(|(p, _)| *p == name) {
        return Some(cap.to_string());
    }
    let cap = format!(
        "CAP_{}",
        name.strip_prefix("cap_")
            .unwrap_or(name)
            .to_ascii_uppercase()
    );
    ALL.contains(&cap.as_str()).then_some(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_namespace_only_privileges_are_refused_with_a_user_namespace() {
        for p in [
            "sys_time",
            "cap_syslog",
            "SYS_PACCT",
            "linux_immutable",
            "wake_alarm",
        ] {
            let v = format!("default,{p}");
            let e = capabilities_for(Some(&v), true).unwrap_err();
            assert!(matches!(e, PrivError::NoEffectInUserns { .. }), "{p}: {e}");
            assert!(e.to_string().contains("set userns=false"), "{e}");
            assert!(capabilities_for(Some(&v), false).is_ok(), "{p}");
        }
        // all names nothing; taking one away is fine; default holds none of them.
        assert!(capabilities_for(Some("all"), true).is_ok());
        assert!(capabilities_for(Some("default,-sys_time"), true).is_ok());
        assert!(capabilities_for(None, true).is_ok());
        assert!(capabilities_for(Some("default,sys_admin"), true).is_ok());
        for c in HOST_NAMESPACE_ONLY {
            assert!(!DEFAULT.contains(c), "{c}");
            assert!(ALL.contains(c), "{c}");
        }
    }

    #[test]
    fn default_is_the_zone_set() {
        let caps = capabilities(None).unwrap();
        assert!(caps.contains(&"CAP_SYS_BOOT".to_string()));
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_SYS_TIME".to_string()));
        assert_eq!(caps.len(), DEFAULT.len());
        // With a user namespace of its own, default holds CAP_SYS_ADMIN (illumos's sys_admin
        // and sys_mount) and `-sys_admin` takes it away again.
        let caps = capabilities_for(None, true).unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(caps.len(), DEFAULT.len() + 1);
        let caps = capabilities_for(Some("default,-sys_admin"), true).unwrap();
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!capabilities_for(Some("none,proc_chroot"), true)
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn illumos_names_add_and_remove() {
        let caps = capabilities(Some("default,sys_time,-net_rawaccess,cap_sys_admin")).unwrap();
        assert!(caps.contains(&"CAP_SYS_TIME".to_string()));
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
    }

    #[test]
    fn none_and_all() {
        assert!(capabilities(Some("none")).unwrap().is_empty());
        assert_eq!(
            capabilities(Some("none,proc_chroot")).unwrap(),
            vec!["CAP_SYS_CHROOT"]
        );
        let all = capabilities(Some("all")).unwrap();
        assert!(!all.contains(&"CAP_SYS_MODULE".to_string()));
        assert_eq!(all.len(), ALL.len());
    }

    #[test]
    fn unknown_names_are_refused_with_the_value() {
        let e = capabilities(Some("default,dtrace_kernel")).unwrap_err();
        assert!(e.to_string().contains("\"dtrace_kernel\""), "{e}");
        assert!(capabilities(Some("sys_module")).is_err());
    }

    #[test]
    fn prohibited_names_are_refused_and_may_be_taken_away() {
        assert!(capabilities(Some("default,-sys_module,!cap_sys_rawio")).is_ok());
        for p in [
            "sys_module",
            "cap_sys_module",
            "sys_rawio",
            "proc_zone",
            "CAP_MAC_ADMIN",
        ] {
            let e = capabilities(Some(&format!("default,{p}"))).unwrap_err();
            assert!(matches!(e, PrivError::Prohibited { .. }), "{p}: {e}");
            assert!(
                e.to_string().contains("prohibited in a non-global zone"),
                "{e}"
            );
        }
        assert!(matches!(
            capabilities(Some("default,bogus_priv")).unwrap_err(),
            PrivError::Unknown { .. }
        ));
    }
}
