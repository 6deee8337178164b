//! config.json: loading, validation before anything is created, and the default spec of `runz spec`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType, LinuxResources, Spec,
};

/// The runtime-spec version this runtime implements.
pub const OCI_VERSION: &str = "1.3.0";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid config.json: {0}")]
    Invalid(String),
    /// runc's own words, unprefixed, so callers matching runc's text find them.
    #[error(transparent)]
    Sysctl(#[from] super::sysctl::SysctlError),
}

/// config.json larger than this is refused rather than read (runc's are a few KiB; a large
/// seccomp profile stays well below).
const MAX_CONFIG: u64 = 16 << 20;

/// Load `<bundle>/config.json`: a regular file only (a FIFO would block the read for ever, a
/// device could be endless), of bounded size.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    let text = read_config(&path).map_err(|reason| SpecError::Read {
        path: path.clone(),
        reason,
    })?;
    let first = match serde_json::from_str(&text) {
        Ok(spec) => return Ok(spec),
        Err(e) => e,
    };
    // runc ignores capability names it does not know, with a warning; oci-spec refuses the
    // whole config for one, and knows two scheduler flags by other names than the runtime
    // spec's. Only a config that failed to parse pays for the second look.
    let parse_error = |e: serde_json::Error| SpecError::Parse {
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(parse_error)?;
    let (dropped, renamed) = match v.get_mut("process") {
        Some(p) => (
            super::capabilities::drop_unknown(p),
            super::sched::spec_flag_names(p),
        ),
        None => (Vec::new(), false),
    };
    if dropped.is_empty() && !renamed {
        return Err(parse_error(first));
    }
    let spec = serde_json::from_value(v).map_err(parse_error)?;
    if !dropped.is_empty() {
        crate::log::warn(&super::capabilities::unknown_warning(&dropped));
    }
    Ok(spec)
}

/// Whether the bundle's process wants a terminal (false when config.json cannot be read:
/// `create` reports that itself). Reads only that field: no warnings, no validation.
pub fn wants_terminal(bundle: &Path) -> bool {
    read_config(&bundle.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["process"]["terminal"].as_bool())
        .unwrap_or(false)
}

fn read_config(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO must not wait for a writer before the type is checked.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file; give the bundle a config.json file".into());
    }
    if meta.len() > MAX_CONFIG {
        return Err(format!(
            "{} bytes is more than the {MAX_CONFIG} a config.json may have",
            meta.len()
        ));
    }
    let mut text = String::new();
    f.take(MAX_CONFIG + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// The rootfs as an absolute path (root.path is relative to the bundle unless absolute).
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root is missing".into()))?;
    let path = bundle.join(root.path());
    if !path.is_dir() {
        return Err(SpecError::Invalid(format!(
            "root.path {}: rootfs directory does not exist",
            path.display()
        )));
    }
    // The host's own root as the container's: every host file would be the container's.
    let resolved = std::fs::canonicalize(&path)
        .map_err(|e| SpecError::Invalid(format!("root.path {}: {e}", path.display())))?;
    if resolved == Path::new("/") {
        return Err(SpecError::Invalid(format!(
            "root.path {:?} is the host's root directory /; give the container a rootfs \
             directory of its own",
            root.path()
        )));
    }
    Ok(path)
}

/// Check what can be checked before forking, so bad input leaves nothing behind.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("process is missing".into()))?;
    match process.args() {
        Some(a) if !a.is_empty() => {}
        _ => return Err(SpecError::Invalid("process.args must not be empty".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(SpecError::Invalid(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if let Some(limits) = process.rlimits() {
        crate::rlimits::validate(limits).map_err(|e| SpecError::Invalid(e.to_string()))?;
    }
    if let Some(linux) = spec.linux() {
        validate_namespaces(linux.namespaces().as_deref().unwrap_or(&[]))?;
        let has_userns = has_namespace(spec, LinuxNamespaceType::User);
        let maps = linux.uid_mappings().is_some() || linux.gid_mappings().is_some();
        if maps && !has_userns {
            return Err(SpecError::Invalid(
                "uidMappings/gidMappings are set but there is no user namespace".into(),
            ));
        }
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
            && !has_namespace(spec, LinuxNamespaceType::Uts)
        {
            return Err(SpecError::Invalid(
                "hostname is set but there is no new uts namespace".into(),
            ));
        }
    }
    super::sysctl::validate(spec)?;
    super::rdt::validate(spec).map_err(|e| SpecError::Invalid(e.to_string()))?;
    // A relative mount destination is accepted, relative to "/" (runc 1.1 warns and mounts it;
    // see mounts::mount_one).
    Ok(())
}

fn validate_namespaces(namespaces: &[LinuxNamespace]) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for ns in namespaces {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::Invalid(format!(
                "namespace {} is given twice",
                ns.typ()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(SpecError::Invalid(format!(
                    "namespace {} path {}: does not exist",
                    ns.typ(),
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// The namespaces of the spec.
pub fn namespaces(spec: &Spec) -> &[LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

/// Whether the spec asks for namespace `typ` (new or joined).
pub fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == typ)
}

/// Whether the spec asks for a *new* namespace `typ` (no path).
pub fn new_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec)
        .iter()
        .any(|n| n.typ() == typ && n.path().is_none())
}

/// The device rules to apply: the defaults every container needs (as runc adds them), then the
/// spec's own. A deny-all rule in the spec goes first, as runc orders it.
pub fn device_rules(spec: &Spec) -> Vec<LinuxDeviceCgroup> {
    let own: Vec<LinuxDeviceCgroup> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let mut rules: Vec<LinuxDeviceCgroup> = own.into_iter().map(runc_access).collect();
    rules.extend(crate::devices::default_cgroup_rules());
    rules
}

/// A device rule's access as runc takes it: the letters r, w and m it names, in that order
/// (runc keeps only those: `rwa` is `rw`); a rule naming none of them keeps its text and is
/// refused where it is applied.
fn runc_access(mut rule: LinuxDeviceCgroup) -> LinuxDeviceCgroup {
    if let Some(a) = rule.access().clone() {
        let kept: String = ['r', 'w', 'm']
            .into_iter()
            .filter(|c| a.contains(*c))
            .collect();
        if !kept.is_empty() && kept != a {
            rule.set_access(Some(kept));
        }
    }
    rule
}

/// The resources to apply at create, with the effective device rules.
pub fn resources(spec: &Spec) -> LinuxResources {
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    res.set_devices(Some(device_rules(spec)));
    res
}

/// The spec `runz spec` writes, like `runc spec`: a shell on a terminal, the default mounts,
/// namespaces, capabilities, masked paths and a deny-all device rule. `rootless` adds a user
/// namespace mapping the caller's ids to root, and drops the network namespace and resources.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_hostname(Some("runz".to_string()));
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
        // runc's default has no inheritable set (oci-spec's default copies the others into it).
        if let Some(mut caps) = p.capabilities().clone() {
            caps.set_inheritable(None);
            p.set_capabilities(Some(caps));
        }
    }
    if let Some(linux) = spec.linux_mut() {
        let mut res = LinuxResources::default();
        let mut deny = LinuxDeviceCgroup::default();
        deny.set_allow(false);
        deny.set_access(Some("rwm".to_string()));
        res.set_devices(Some(vec![deny]));
        linux.set_resources(Some(res));
    }
    if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let linux = oci_spec::runtime::Linux::rootless(uid, gid);
        spec.set_linux(Some(linux));
        // runc's rootless spec: sysfs is a bind (no netns), no gid= options on devpts.
        if let Some(mounts) = spec.mounts_mut() {
            for m in mounts.iter_mut() {
                if m.destination() == Path::new("/sys") {
                    m.set_typ(Some("none".into()));
                    m.set_source(Some("/sys".into()));
                    m.set_options(Some(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .map(String::from)
                            .to_vec(),
                    ));
                }
                if let Some(opts) = m.options_mut() {
                    opts.retain(|o| !o.starts_with("gid="));
                }
            }
        }
    }
    // runc's default (rootless too) has no cgroup namespace: tools and tests add their own.
    if let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(json: &str) -> Spec {
        serde_json::from_str(json).expect("test spec parses")
    }

    #[test]
    fn default_spec_looks_like_runc_spec() {
        let s = default_spec(false);
        assert_eq!(s.version(), OCI_VERSION);
        assert_eq!(s.process().as_ref().unwrap().terminal(), Some(true));
        assert_eq!(s.hostname().as_deref(), Some("runz"));
        assert!(new_namespace(&s, LinuxNamespaceType::Pid));
        assert!(new_namespace(&s, LinuxNamespaceType::Network));
        let devs = s
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(devs.len(), 1);
        assert!(!devs[0].allow());
        validate(&s).expect("the default spec is valid");
    }

    #[test]
    fn rootless_spec_has_user_namespace_and_no_network_namespace() {
        let s = default_spec(true);
        assert!(new_namespace(&s, LinuxNamespaceType::User));
        assert!(!has_namespace(&s, LinuxNamespaceType::Network));
        let l = s.linux().as_ref().unwrap();
        assert_eq!(l.uid_mappings().as_ref().unwrap()[0].container_id(), 0);
        validate(&s).expect("the rootless spec is valid");
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let s = spec_from(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},
                "process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},
                "linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        );
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("namespace pid is given twice"), "{e}");
    }

    #[test]
    fn empty_args_and_relative_cwd_are_refused() {
        let s = spec_from(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"args":[],"cwd":"/"}}"#,
        );
        assert!(validate(&s).unwrap_err().to_string().contains("args"));
        let s = spec_from(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"user":{"uid":0,"gid":0},"args":["a"],"cwd":"rel"}}"#,
        );
        assert!(validate(&s).unwrap_err().to_string().contains("cwd"));
    }

    #[test]
    fn hostname_without_uts_namespace_is_refused() {
        let s = spec_from(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"hostname":"h",
                "process":{"user":{"uid":0,"gid":0},"args":["a"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]}}"#,
        );
        assert!(validate(&s).unwrap_err().to_string().contains("uts"));
    }

    #[test]
    fn missing_namespace_path_is_refused() {
        let s = spec_from(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},
                "process":{"user":{"uid":0,"gid":0},"args":["a"],"cwd":"/"},
                "linux":{"namespaces":[{"type":"network","path":"/nonexistent/ns"}]}}"#,
        );
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ns"));
    }

    #[test]
    fn load_reports_the_path_of_a_broken_config() {
        let dir = std::env::temp_dir().join(format!("runz-unit-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "{not json").unwrap();
        let e = load(&dir).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("config.json"), "{e}");
    }
}
