//! What in a zone's configuration weakens the secure defaults, for `zoneadm verify` to warn
//! about (it still succeeds: an operator may mean it). A default zone has its own user
//! namespace, the `default` capability set, only the allowlisted devices, its own network
//! stack and no host paths but those given to it; each departure is one warning saying what
//! the zone's root gains.

use std::path::{Component, Path, PathBuf};

use crate::model::{IpType, Zone};
use crate::privileges;

/// The device nodes every zone has (the runtime makes them; a device resource for one of
/// these adds nothing).
pub const DEVICE_ALLOWLIST: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/console",
];

/// Capabilities beyond the default set that let a zone's root reach past its zone.
const DANGEROUS: &[(&str, &str)] = &[
    (
        "CAP_SYS_ADMIN",
        "mount, namespace and many device and kernel administration calls",
    ),
    ("CAP_SYS_MODULE", "loading kernel modules"),
    ("CAP_SYS_RAWIO", "raw I/O ports and memory"),
    ("CAP_BPF", "loading BPF programs into the kernel"),
    ("CAP_PERFMON", "observing every process on the host"),
    ("CAP_SYS_TIME", "setting the host's clock"),
    ("CAP_SYS_RESOURCE", "overriding resource limits"),
    ("CAP_SYSLOG", "reading and clearing the kernel log"),
    ("CAP_AUDIT_CONTROL", "changing the host's audit rules"),
    ("CAP_LINUX_IMMUTABLE", "changing immutable files"),
    ("CAP_SYS_PACCT", "switching process accounting"),
    ("CAP_MAC_ADMIN", "changing mandatory access control"),
    ("CAP_MAC_OVERRIDE", "overriding mandatory access control"),
    ("CAP_CHECKPOINT_RESTORE", "checkpoint/restore of processes"),
    ("CAP_BLOCK_SUSPEND", "blocking system suspend"),
    ("CAP_WAKE_ALARM", "waking the host"),
];

/// Host paths whose sharing with a zone hands it the host: the zone would see or change the
/// host's configuration, devices, kernel interfaces, boot files, other users or zones.
pub const SENSITIVE_PATHS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc", "/root", "/run",
    "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/run",
];

/// The warnings for `zone` (empty: every default is in force). `store_dirs` are host paths
/// of the zone store (its configuration and zone roots), sensitive too.
pub fn warnings(zone: &Zone, store_dirs: &[PathBuf]) -> Vec<String> {
    let mut w = Vec::new();
    if zone.userns == Some(false) {
        w.push(
            "userns=false: the zone has no user namespace of its own; its root is the host's \
             root (uid 0) held back only by capabilities and seccomp; remove the setting \
             (zonecfg: clear userns) to map it to an unprivileged id range"
                .to_string(),
        );
    }
    w.extend(limitpriv_warnings(zone.limitpriv.as_deref()));
    for d in &zone.device {
        let Some(path) = d.match_.as_deref() else {
            continue;
        };
        if !DEVICE_ALLOWLIST.contains(&path) && !path.starts_with("/dev/pts/") {
            let kind = match std::fs::metadata(path) {
                Ok(m) if std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()) => {
                    " (a block device: the zone can read and write the host's disk)"
                }
                _ => "",
            };
            w.push(format!(
                "device match={path}: a host device beyond the default allowlist \
                 (null, zero, full, random, urandom, tty, ptmx, pts){kind}"
            ));
        }
    }
    for fs in &zone.fs {
        let (Some(dir), Some(special)) = (fs.dir.as_deref(), fs.special.as_deref()) else {
            continue;
        };
        if let Some(why) = sensitive(Path::new(special), store_dirs) {
            w.push(format!(
                "fs dir={dir} special={special}: {why}; the zone can see{} host files there",
                if fs.options.iter().any(|o| o == "ro") {
                    ""
                } else {
                    " and change"
                }
            ));
        }
    }
    if zone.ip_type == IpType::Shared {
        w.push(
            "ip-type=shared: the zone uses the host's network stack (its addresses, routes and \
             ports) instead of one of its own"
                .to_string(),
        );
    }
    w
}

/// Warnings for capabilities beyond the default set.
pub fn limitpriv_warnings(limitpriv: Option<&str>) -> Vec<String> {
    let Some(value) = limitpriv else {
        return Vec::new();
    };
    let Ok(caps) = privileges::capabilities(Some(value)) else {
        return Vec::new(); // refused elsewhere, with its own message
    };
    let added: Vec<&String> = caps
        .iter()
        .filter(|c| !privileges::DEFAULT.contains(&c.as_str()))
        .collect();
    if added.is_empty() {
        return Vec::new();
    }
    let mut w = Vec::new();
    let dangerous: Vec<String> = added
        .iter()
        .filter_map(|c| {
            DANGEROUS
                .iter()
                .find(|(d, _)| d == c)
                .map(|(d, why)| format!("{d} ({why})"))
        })
        .collect();
    let all = value.split(',').any(|p| p.trim() == "all");
    let names: Vec<&str> = added.iter().map(|s| s.as_str()).collect();
    w.push(format!(
        "limitpriv={value}{}: adds {} beyond the default set",
        if all {
            " (every privilege a zone may have)"
        } else {
            ""
        },
        names.join(", ")
    ));
    if !dangerous.is_empty() {
        w.push(format!(
            "limitpriv={value}: dangerous privileges: {}",
            dangerous.join(", ")
        ));
    }
    w
}

/// Lexically normalised absolute path (`.` and `..` folded).
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Why sharing host path `special` is sensitive, if it is: it is (or is beneath, or holds)
/// a sensitive path, or resolves through a symlink to one.
pub fn sensitive(special: &Path, store_dirs: &[PathBuf]) -> Option<String> {
    if !special.is_absolute() {
        return None; // not a host path (e.g. a filesystem's device or a pseudo source)
    }
    let lexical = normal(special);
    let resolved = std::fs::canonicalize(special).unwrap_or_else(|_| lexical.clone());
    let check = |p: &Path| -> Option<String> {
        for s in SENSITIVE_PATHS {
            let s = Path::new(s);
            if p == s || (s != Path::new("/") && p.starts_with(s)) {
                return Some(format!("{} is a sensitive host path", s.display()));
            }
            if p != Path::new("/") && s.starts_with(p) && s != Path::new("/") {
                return Some(format!("holds the sensitive host path {}", s.display()));
            }
        }
        for d in store_dirs {
            if p.starts_with(d) || d.starts_with(p) {
                return Some(format!(
                    "meets the zone store {} (zone configurations or roots)",
                    d.display()
                ));
            }
        }
        None
    };
    if let Some(why) = check(&lexical) {
        return Some(why);
    }
    if resolved != lexical {
        if let Some(why) = check(&resolved) {
            return Some(format!("a symlink to {}: {why}", resolved.display()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Device, Fs, Value};

    fn zone() -> Zone {
        let mut z = Zone::new("web");
        z.set_global("zonepath", &Value::simple("/zones/web"))
            .unwrap();
        z
    }

    #[test]
    fn a_default_zone_has_no_warning() {
        assert!(warnings(&zone(), &[]).is_empty());
        let mut z = zone();
        z.set_global("limitpriv", &Value::simple("default,-net_rawaccess"))
            .unwrap();
        z.set_global("userns", &Value::simple("true")).unwrap();
        z.device.push(Device {
            match_: Some("/dev/null".into()),
        });
        assert!(warnings(&z, &[]).is_empty(), "{:?}", warnings(&z, &[]));
    }

    #[test]
    fn each_weakened_default_warns() {
        let mut z = zone();
        z.set_global("userns", &Value::simple("false")).unwrap();
        z.set_global("limitpriv", &Value::simple("default,sys_admin"))
            .unwrap();
        z.set_global("ip-type", &Value::simple("shared")).unwrap();
        z.device.push(Device {
            match_: Some("/dev/kmsg".into()),
        });
        z.fs.push(Fs {
            dir: Some("/host-etc".into()),
            special: Some("/etc/../etc".into()),
            raw: None,
            fs_type: Some("lofs".into()),
            options: vec!["ro".into()],
        });
        let w = warnings(&z, &[]);
        let has = |s: &str| w.iter().any(|x| x.contains(s));
        assert!(has("userns=false"), "{w:?}");
        assert!(has("adds CAP_SYS_ADMIN"), "{w:?}");
        assert!(has("dangerous privileges: CAP_SYS_ADMIN (mount"), "{w:?}");
        assert!(has("device match=/dev/kmsg"), "{w:?}");
        assert!(
            has("fs dir=/host-etc special=/etc/../etc: /etc is a sensitive host path"),
            "{w:?}"
        );
        assert!(has("ip-type=shared"), "{w:?}");
        assert_eq!(w.len(), 6, "{w:?}");
    }

    #[test]
    fn limitpriv_all_names_what_it_adds() {
        let w = limitpriv_warnings(Some("all"));
        assert!(w[0].starts_with("limitpriv=all (every privilege"), "{w:?}");
        assert!(
            w[1].contains("CAP_BPF") && w[1].contains("CAP_SYS_TIME"),
            "{w:?}"
        );
        // An addition that is not dangerous still warns, once.
        let w = limitpriv_warnings(Some("default,cap_audit_read"));
        assert_eq!(
            w,
            vec![
                "limitpriv=default,cap_audit_read: adds CAP_AUDIT_READ beyond the default set"
                    .to_string()
            ]
        );
        assert!(limitpriv_warnings(Some("default")).is_empty());
    }

    #[test]
    fn sensitive_paths_include_parents_symlinks_and_the_store() {
        assert!(sensitive(Path::new("/"), &[]).is_some());
        assert!(sensitive(Path::new("/var"), &[])
            .unwrap()
            .contains("holds the sensitive host path /var/lib"));
        assert!(sensitive(Path::new("/srv/data"), &[]).is_none());
        assert!(sensitive(Path::new("/zones/a/root"), &[PathBuf::from("/zones")]).is_some());
        let dir = std::env::temp_dir().join(format!("runz-test-weak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("etc-link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let why = sensitive(&link, &[]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(why.unwrap().starts_with("a symlink to /etc"));
    }
}
