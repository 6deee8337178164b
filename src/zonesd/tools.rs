//! The zone tools as child processes: every zone action goes through `vmadm`, `zoneadm`,
//! `imgadm` or `dladm` (the binaries beside zonesd), so a zone's supervisor is always forked
//! by a single-threaded process (the engine's fork rule). A tool that fails is a 409 with its
//! message; one that does not finish within [`TOOL_TIMEOUT`] is killed. A tool is never
//! killed because its request went away (a client that disconnects mid-create): it finishes,
//! or undoes its own steps, as it would from a shell.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// How long a tool may run (a boot waits for the zone's init; a delete for its halt).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// The umask the children get: the one zonesd started with (zonesd's own is 077).
static CHILD_UMASK: std::sync::OnceLock<libc::mode_t> = std::sync::OnceLock::new();

/// Records the umask children get; call once, before any thread starts.
pub fn set_child_umask(mask: libc::mode_t) {
    let _ = CHILD_UMASK.set(mask);
}

/// Variables a tool reads secrets from: set per request only (zonesd's own are dropped, so
/// an import names no registry the host's credentials would be sent to).
pub const SECRET_VARS: [&str; 1] = ["IMGADM_CREDS"];

pub struct Tools {
    dir: PathBuf,
    altroot: Option<PathBuf>,
}

/// What a tool printed.
pub struct ToolOutput {
    pub stdout: String,
}

impl Tools {
    pub fn new(altroot: Option<PathBuf>) -> Tools {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/usr/local/bin"));
        Tools { dir, altroot }
    }

    /// `PROG [-R ALTROOT] ARGS` with `input` on stdin; its output, or a 409 with its message.
    pub async fn run(
        &self,
        prog: &str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<ToolOutput, ApiError> {
        self.run_env(prog, args, input, &[]).await
    }

    /// [`Tools::run`] with `env` added to the tool's environment: secrets (a registry's
    /// credentials) go there, never into argv (which any local user can read in /proc).
    /// zonesd's own [`SECRET_VARS`] are never passed on: a secret comes with its request.
    pub async fn run_env(
        &self,
        prog: &str,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Result<ToolOutput, ApiError> {
        let path = self.dir.join(prog);
        let mut cmd = tokio::process::Command::new(&path);
        if let Some(r) = &self.altroot {
            cmd.arg("-R").arg(r);
        }
        for v in SECRET_VARS {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied());
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mask = *CHILD_UMASK.get().unwrap_or(&0o022);
        // SAFETY: umask(2) is async-signal-safe and touches only the child's own state.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
        let what = format!("{prog} {}", args.join(" "));
        let mut child = cmd.spawn().map_err(|e| {
            ApiError::Internal(format!("zonesd: cannot run {}: {e}", path.display()))
        })?;
        let pid = child.id();
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(data)
                .await
                .map_err(|e| ApiError::Internal(format!("zonesd: {what}: stdin: {e}")))?;
        }
        let out = match tokio::time::timeout(TOOL_TIMEOUT, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| ApiError::Internal(format!("zonesd: {what}: {e}")))?,
            Err(_) => {
                if let Some(pid) = pid {
                    // SAFETY: kill(2) on our own child's pid; not yet reaped (tokio reaps it
                    // only after this), so the pid cannot name another process.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
                return Err(ApiError::Internal(format!(
                    "zonesd: {what}: killed after {} s",
                    TOOL_TIMEOUT.as_secs()
                )));
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let msg = stderr.trim();
            return Err(ApiError::Conflict(if msg.is_empty() {
                format!("{what}: {}", out.status)
            } else {
                msg.to_string()
            }));
        }
        Ok(ToolOutput { stdout })
    }
}
