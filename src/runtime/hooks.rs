//! The six OCI hook kinds: run one list with the state JSON on stdin, honouring timeouts.

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {reason}")]
    Failed {
        kind: String,
        path: String,
        reason: String,
    },
}

/// Run `hooks` in order; `kind` (e.g. "poststart") is only for messages. `state_json` goes to stdin.
pub fn run(_kind: &str, _hooks: &[Hook], _state_json: &str) -> Result<(), HookError> {
    todo!("hooks::run")
}
