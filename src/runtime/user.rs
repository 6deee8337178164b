//! process.user: uid, gid, additionalGids, umask; keeping capabilities across setuid.

use oci_spec::runtime::User;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user: {0}")]
    Set(String),
}

/// Become the process user: setgroups, setgid, setuid (keeping caps for `capabilities::apply`), umask.
pub fn switch(_user: &User) -> Result<(), UserError> {
    todo!("user::switch")
}
