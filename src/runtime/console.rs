//! Terminals: the console socket protocol (pty master over SCM_RIGHTS, exactly like runc),
//! setting up the pty inside the container, and relaying a pty for `runz run` in the foreground.

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console: {0}")]
    Io(String),
}
