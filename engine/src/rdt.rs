//! `linux.intelRdt` (Intel Resource Director Technology: cache and memory-bandwidth
//! allocation through resctrl). runz does not drive resctrl, so a spec asking for it is refused
//! before anything is created, never silently ignored. Where the host has no resctrl the
//! messages are runc's, which tools match.

use std::path::Path;

use oci_spec::runtime::Spec;

/// Why `linux.intelRdt` cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum RdtError {
    #[error("intelRdt.l3CacheSchema is specified in config, but Intel RDT/CAT is not enabled")]
    NoCat,
    #[error("intelRdt.memBwSchema is specified in config, but Intel RDT/MBA is not enabled")]
    NoMba,
    #[error("intelRdt is specified in config, but Intel RDT is not supported or enabled")]
    NoRdt,
    #[error("intelRdt is specified in config, but runz does not manage resctrl groups")]
    Unsupported,
}

/// Where the kernel's resctrl filesystem is mounted when the host has RDT.
const RESCTRL: &str = "/sys/fs/resctrl";

/// Refuses `linux.intelRdt`: with runc's messages on a host without resctrl (schemas first, as
/// runc checks them), and as unsupported by runz where resctrl exists.
pub fn validate(spec: &Spec) -> Result<(), RdtError> {
    let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) else {
        return Ok(());
    };
    let info = Path::new(RESCTRL).join("info");
    if rdt.l3_cache_schema().is_some() && !info.join("L3").exists() {
        return Err(RdtError::NoCat);
    }
    if rdt.mem_bw_schema().is_some() && !info.join("MB").exists() {
        return Err(RdtError::NoMba);
    }
    if !info.exists() {
        return Err(RdtError::NoRdt);
    }
    Err(RdtError::Unsupported)
}
