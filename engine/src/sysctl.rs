//! linux.sysctl: only keys of a namespace the container has its own of, checked before anything
//! is created (runc's `validate.sysctl`, with its error text), then written from inside.
//!
//! A key outside every namespace (`kernel.core_pattern`, `vm.*`) would be written to the host:
//! a core_pattern pipe then runs as host root at the next crash.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType as Ns, Spec};

/// The IPC-namespaced keys besides `fs.mqueue.*` (runc's list).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SysctlError {
    #[error("sysctl {0:?} is not in a separate kernel namespace")]
    NotNamespaced(String),
    #[error("sysctl {0:?} is not allowed in the hosts ipc namespace")]
    HostIpc(String),
    #[error("sysctl {0:?} not allowed in host network namespace")]
    HostNet(String),
    #[error("sysctl {0:?} is not allowed as it conflicts with the OCI \"hostname\" field")]
    Hostname(String),
    #[error("sysctl {0:?}: not a sysctl name")]
    BadName(String),
    #[error("invalid netns path {path}: {reason}")]
    NetnsPath { path: String, reason: String },
}

/// Refuse every key of `spec` that would not stay inside the container's own namespaces.
pub fn validate(spec: &Spec) -> Result<(), SysctlError> {
    let Some(map) = sysctls(spec) else {
        return Ok(());
    };
    for key in map.keys() {
        check_key(spec, key)?;
    }
    Ok(())
}

fn sysctls(spec: &Spec) -> Option<&HashMap<String, String>> {
    spec.linux().as_ref().and_then(|l| l.sysctl().as_ref())
}

fn check_key(spec: &Spec, key: &str) -> Result<(), SysctlError> {
    if key.is_empty() || key.contains("..") || key.starts_with('/') || key.starts_with('.') {
        return Err(SysctlError::BadName(key.to_string()));
    }
    let has = |t: Ns| super::spec::has_namespace(spec, t);
    // Keys may be written with '/' as well as '.' (sysctl(8) takes both).
    let norm = key.replace('/', ".");
    if IPC_KEYS.contains(&norm.as_str()) || norm.starts_with("fs.mqueue.") {
        return if has(Ns::Ipc) {
            Ok(())
        } else {
            Err(SysctlError::HostIpc(key.to_string()))
        };
    }
    if norm.starts_with("net.") {
        return if own_netns(spec)? {
            Ok(())
        } else {
            Err(SysctlError::HostNet(key.to_string()))
        };
    }
    if has(Ns::Uts) {
        match norm.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => return Err(SysctlError::Hostname(key.to_string())),
            _ => {}
        }
    }
    Err(SysctlError::NotNamespaced(key.to_string()))
}

/// Whether the container's network namespace is not ours: a new one, or a path to another.
fn own_netns(spec: &Spec) -> Result<bool, SysctlError> {
    let Some(ns) = super::spec::namespaces(spec)
        .iter()
        .find(|n| n.typ() == Ns::Network)
    else {
        return Ok(false);
    };
    let Some(path) = ns.path() else {
        return Ok(true);
    };
    let err = |e: std::io::Error| SysctlError::NetnsPath {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let theirs = fs::metadata(path).map_err(err)?;
    let ours = fs::metadata("/proc/self/ns/net").map_err(err)?;
    Ok((theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()))
}

/// Write every key under the container's /proc/sys (inside its namespaces, after pivot_root).
pub fn apply(spec: &Spec) -> Result<(), String> {
    let Some(map) = sysctls(spec) else {
        return Ok(());
    };
    for (key, value) in map {
        check_key(spec, key).map_err(|e| e.to_string())?;
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value.as_bytes()).map_err(|e| format!("sysctl {key}={value}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: &[&str], key: &str) -> Spec {
        let ns: Vec<_> = namespaces
            .iter()
            .map(|t| serde_json::json!({ "type": t }))
            .collect();
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": { "path": "rootfs" },
            "linux": { "namespaces": ns, "sysctl": { key: "1" } }
        }))
        .unwrap()
    }

    #[test]
    fn only_namespaced_keys_pass_with_runcs_words() {
        let all = ["ipc", "uts", "network", "mount", "pid"];
        for key in ["kernel.shmmax", "fs.mqueue.msg_max", "net.ipv4.ip_forward"] {
            assert_eq!(validate(&spec(&all, key)), Ok(()), "{key}");
        }
        assert_eq!(validate(&spec(&all, "kernel.domainname")), Ok(()));
        let e = validate(&spec(&all, "kernel.core_pattern")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysctl \"kernel.core_pattern\" is not in a separate kernel namespace"
        );
        let e = validate(&spec(&all, "vm.overcommit_ratio")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysctl \"vm.overcommit_ratio\" is not in a separate kernel namespace"
        );
        let e = validate(&spec(&["mount"], "kernel.shmmax")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        let e = validate(&spec(&["mount"], "net.ipv4.ip_forward")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        assert!(matches!(
            validate(&spec(&all, "kernel.hostname")),
            Err(SysctlError::Hostname(_))
        ));
        assert!(matches!(
            validate(&spec(&all, "kernel/../../etc")),
            Err(SysctlError::BadName(_))
        ));
    }
}
