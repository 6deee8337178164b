//! The five capability sets of process.capabilities.

use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("capabilities: {0}")]
    Apply(String),
}

/// Apply the sets to the calling process, as the last step before execve (after setuid).
/// Unknown or ungrantable capabilities are a warning on stderr, not a failure (runtime-spec).
pub fn apply(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    todo!("capabilities::apply")
}

/// Drop from the bounding set everything not listed (done while still root, before setuid).
pub fn drop_bounding(_caps: &LinuxCapabilities) -> Result<(), CapsError> {
    todo!("capabilities::drop_bounding")
}
pub fn all_known() -> Vec<String> {
    todo!()
}
