//! Terminals: the console socket protocol (pty master over SCM_RIGHTS, exactly like runc),
//! setting up the pty inside the container, and relaying a pty for `runz run` in the foreground.

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console: {0}")]
    Io(String),
}

pub fn connect_socket(_p: &std::path::Path) -> Result<std::os::fd::OwnedFd, ConsoleError> {
    todo!()
}
pub fn setup_pty(
    _s: std::os::fd::OwnedFd,
    _b: Option<&oci_spec::runtime::Box>,
) -> Result<(), ConsoleError> {
    todo!()
}
pub fn recv_master(_s: &std::os::fd::OwnedFd) -> Result<std::os::fd::OwnedFd, ConsoleError> {
    todo!()
}
pub fn relay(_m: std::os::fd::OwnedFd, _c: nix::unistd::Pid) -> Result<i32, ConsoleError> {
    todo!()
}
