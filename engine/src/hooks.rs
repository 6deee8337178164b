//! The six OCI hook kinds: run one list with the state JSON on stdin, honouring timeouts.
//!
//! Each hook is spawned with `path`, `args` (args[0] is argv[0]) and exactly `env`. The state
//! JSON goes to its stdin; its stdout is our stderr; its stderr is passed through to our stderr
//! too, and the last 4 KiB are kept for the error message. One thread: a poll(2) loop over
//! stdin (writable), stderr (readable) and a pidfd of the hook (exits), bounded by the timeout.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// runc's words first (`error running hook #0: error running hook: exit status 3, ...`:
    /// tools match them), then which hook it was.
    #[error("error running hook #{index}: {reason} ({kind} hook {path})")]
    Failed {
        kind: String,
        index: usize,
        path: String,
        reason: String,
    },
}

/// Where and with what environment hooks run, besides what each hook says.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// The working directory (None: the caller's).
    pub cwd: Option<&'a std::path::Path>,
    /// The environment of a hook without `env` (None: the caller's own, as runc's hooks
    /// inherit runc's; in the container, runc's init has the process's environment by then).
    pub env: Option<&'a [String]>,
}

/// How much of a failing hook's stderr goes into the error.
const STDERR_TAIL: usize = 4096;

/// Without a pidfd (old kernel), how often the loop checks whether the hook has exited.
const WAIT_TICK: Duration = Duration::from_millis(10);

/// Run `hooks` in order; `kind` (e.g. "poststart") is only for messages. `state_json` goes to stdin.
/// The first failing hook stops the list.
pub fn run(kind: &str, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    run_in(kind, hooks, state_json, Context::default())
}

/// [`run`] in `ctx`: stops at the first hook that fails.
pub fn run_in(kind: &str, hooks: &[Hook], state_json: &str, ctx: Context) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state_json, ctx).map_err(|reason| failed(kind, index, hook, reason))?;
    }
    Ok(())
}

/// Run every hook of the list even when some fail (poststop: cleanup goes on); the failures.
pub fn run_all(kind: &str, hooks: &[Hook], state_json: &str) -> Vec<HookError> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| {
            run_one(hook, state_json, Context::default())
                .err()
                .map(|reason| failed(kind, index, hook, reason))
        })
        .collect()
}

fn failed(kind: &str, index: usize, hook: &Hook, reason: String) -> HookError {
    HookError::Failed {
        kind: kind.to_string(),
        index,
        path: hook.path().display().to_string(),
        reason,
    }
}

/// Run one hook; the error is the reason only (the caller adds kind and path).
fn run_one(hook: &Hook, state_json: &str, ctx: Context) -> Result<(), String> {
    let timeout = timeout_of(hook)?;
    let mut cmd = command(hook, ctx)?;
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "fork/exec {}: {}",
            hook.path().display(),
            super::errno::io_text(&e)
        )
    })?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut io = HookIo::new(&mut child, state_json.as_bytes())?;
    let status = match io.supervise(&mut child, deadline) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            let secs = timeout.map_or(0, |t| t.as_secs());
            return Err(format!("timed out after {secs}s"));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    io.drain_stderr();
    check_status(status, &io.tail)
}

fn timeout_of(hook: &Hook) -> Result<Option<Duration>, String> {
    match hook.timeout() {
        None => Ok(None),
        Some(t) if t > 0 => Ok(Some(Duration::from_secs(t.unsigned_abs()))),
        Some(t) => Err(format!("invalid timeout {t}: must be greater than zero")),
    }
}

/// The Command for a hook: argv from args (args[0] = argv[0]), env exactly as given (order
/// kept),
/// stdout to our stderr, stdin and stderr piped.
fn command(hook: &Hook, ctx: Context) -> Result<Command, String> {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(argv0).args(rest);
    }
    match (hook.env().as_deref(), ctx.env) {
        (Some(env), _) | (None, Some(env)) => set_exact_env(&mut cmd, env)?,
        (None, None) => {}
    }
    if let Some(dir) = ctx.cwd {
        cmd.current_dir(dir);
    }
    let out = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("cannot dup stderr: {e}"))?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::piped());
    Ok(cmd)
}

/// Give the hook exactly `env`, in order (std's `Command::env` would sort and dedup it). The
/// strings are prepared here; after fork the child only swaps the `environ` pointer, which
/// `execvp` then uses.
fn set_exact_env(cmd: &mut Command, env: &[String]) -> Result<(), String> {
    let mut strings = Vec::with_capacity(env.len());
    for kv in env {
        if !kv.contains('=') || kv.starts_with('=') {
            return Err(format!("invalid env entry {kv:?}: expected KEY=VALUE"));
        }
        let c = std::ffi::CString::new(kv.as_str())
            .map_err(|_| format!("invalid env entry {kv:?}: contains NUL"))?;
        strings.push(c);
    }
    let env = ExactEnv::new(strings);
    // SAFETY: the closure runs in the forked child before execvp. It performs a single
    // pointer store (async-signal-safe, no allocation); the pointed-to array and strings are
    // owned by the closure, which lives (in the child's copy of memory) until exec.
    unsafe {
        cmd.pre_exec(move || {
            environ = env.envp();
            Ok(())
        });
    }
    Ok(())
}

/// A NULL-terminated `char *envp[]` and the strings it points to.
struct ExactEnv {
    _strings: Vec<std::ffi::CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl ExactEnv {
    fn new(strings: Vec<std::ffi::CString>) -> Self {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Self {
            _strings: strings,
            ptrs,
        }
    }

    fn envp(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

// SAFETY: the raw pointers point into `_strings`, owned by the same value and never mutated;
// the value is only moved into the pre_exec closure (Command requires Send + Sync).
unsafe impl Send for ExactEnv {}
// SAFETY: as above, the data is immutable.
unsafe impl Sync for ExactEnv {}

extern "C" {
    /// The C library's environment, used by execvp.
    static mut environ: *const *const libc::c_char;
}

fn check_status(status: ExitStatus, tail: &[u8]) -> Result<(), String> {
    if status.success() {
        return Ok(());
    }
    // runc's words (Go's exit text); its stdout is our stderr, so none is kept.
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig}"),
        _ => format!("{status}"),
    };
    let text = String::from_utf8_lossy(tail);
    Err(format!(
        "error running hook: {what}, stdout: , stderr: {}",
        text.trim()
    ))
}

/// The hook's pipes and the bookkeeping of the poll loop.
struct HookIo<'a> {
    stdin: Option<ChildStdin>,
    pending: &'a [u8],
    stderr: Option<ChildStderr>,
    tail: Vec<u8>,
    pidfd: Option<OwnedFd>,
}

impl<'a> HookIo<'a> {
    fn new(child: &mut Child, state: &'a [u8]) -> Result<Self, String> {
        let stdin = child.stdin.take();
        let stderr = child.stderr.take();
        for fd in [
            stdin.as_ref().map(|s| s.as_raw_fd()),
            stderr.as_ref().map(|s| s.as_raw_fd()),
        ]
        .into_iter()
        .flatten()
        {
            set_nonblocking(fd).map_err(|e| format!("cannot set a pipe non-blocking: {e}"))?;
        }
        let pid = i32::try_from(child.id()).map_err(|_| "pid out of range".to_string())?;
        Ok(Self {
            stdin,
            pending: state,
            stderr,
            tail: Vec::new(),
            pidfd: super::sys::pidfd_open(nix::unistd::Pid::from_raw(pid)).ok(),
        })
    }

    /// Pump stdin/stderr until the hook exits (Some(status)) or the deadline passes (None).
    fn supervise(
        &mut self,
        child: &mut Child,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, String> {
        if self.pending.is_empty() {
            self.stdin = None;
        }
        loop {
            if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            let mut wait = deadline.map(|d| d - now);
            if self.pidfd.is_none() {
                wait = Some(wait.map_or(WAIT_TICK, |w| w.min(WAIT_TICK)));
            }
            self.poll_once(wait)?;
        }
    }

    /// One poll(2) round: write what stdin takes, read what stderr has.
    fn poll_once(&mut self, wait: Option<Duration>) -> Result<(), String> {
        let mut fds = Vec::with_capacity(3);
        let stdin_fd = self.stdin.as_ref().map(|s| s.as_fd());
        let stderr_fd = self.stderr.as_ref().map(|s| s.as_fd());
        let (mut i_in, mut i_err) = (None, None);
        if let Some(fd) = stdin_fd {
            i_in = Some(fds.len());
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
        }
        if let Some(fd) = stderr_fd {
            i_err = Some(fds.len());
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        if let Some(fd) = self.pidfd.as_ref() {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, poll_timeout(wait)) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (in_ready, err_ready) = (ready(i_in), ready(i_err));
        drop(fds);
        if in_ready {
            self.write_stdin();
        }
        if err_ready {
            self.read_stderr();
        }
        Ok(())
    }

    /// Write as much state JSON as the pipe takes; close stdin when done or when the hook
    /// closed its end (EPIPE is not an error: hooks need not read their stdin).
    fn write_stdin(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        let _guard = SigpipeBlocked::new();
        loop {
            match stdin.write(self.pending) {
                Ok(n) => {
                    self.pending = &self.pending[n..];
                    if self.pending.is_empty() {
                        self.stdin = None;
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    /// Read what stderr has now: pass it through to our stderr, keep the tail.
    fn read_stderr(&mut self) {
        let Some(stderr) = self.stderr.as_mut() else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) => {
                    self.stderr = None;
                    return;
                }
                Ok(n) => {
                    let _ = std::io::stderr().write_all(&buf[..n]);
                    self.tail.extend_from_slice(&buf[..n]);
                    if self.tail.len() > STDERR_TAIL {
                        let cut = self.tail.len() - STDERR_TAIL;
                        self.tail.drain(..cut);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// After exit: whatever is still in the stderr pipe (without waiting for EOF, since a
    /// background child of the hook may still hold the pipe open).
    fn drain_stderr(&mut self) {
        self.read_stderr();
    }
}

fn poll_timeout(wait: Option<Duration>) -> PollTimeout {
    match wait {
        None => PollTimeout::NONE,
        // Round up so a timeout never spins with 0 ms left; clamp to poll's i32 range.
        Some(w) => {
            let ms = w.as_millis().saturating_add(1).min(i32::MAX as u128);
            PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
        }
    }
}

fn set_nonblocking(fd: i32) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Blocks SIGPIPE for the current thread while writing to a pipe the hook may have closed, so
/// the write fails with EPIPE instead of killing the runtime when SIGPIPE is not ignored. A
/// SIGPIPE raised meanwhile is consumed before unblocking.
struct SigpipeBlocked {
    old: SigSet,
    was_pending: bool,
}

impl SigpipeBlocked {
    fn new() -> Option<Self> {
        let mut pipe = SigSet::empty();
        pipe.add(Signal::SIGPIPE);
        let was_pending = sigpipe_pending();
        let old = pipe
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .ok()?;
        Some(Self { old, was_pending })
    }
}

fn sigpipe_pending() -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigpending fills the sigset we pass; it is initialised only when it returns 0.
    unsafe {
        if libc::sigpending(set.as_mut_ptr()) != 0 {
            return false;
        }
        libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}

impl Drop for SigpipeBlocked {
    fn drop(&mut self) {
        if !self.was_pending && sigpipe_pending() {
            let mut pipe = SigSet::empty();
            pipe.add(Signal::SIGPIPE);
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: sigtimedwait with a valid set and a zero timeout dequeues the pending
            // SIGPIPE (it is blocked, so it is ours to take) without waiting.
            unsafe {
                libc::sigtimedwait(pipe.as_ref(), std::ptr::null_mut(), &zero);
            }
        }
        let _ = self.old.thread_set_mask();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::test_fork::in_child;
    use oci_spec::runtime::HookBuilder;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p =
                std::env::temp_dir().join(format!("runz-test-hooks-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Write an executable script. The write happens in a forked child so that no other
    /// test thread's fork can inherit a writable fd to it (which would make exec fail with
    /// ETXTBSY).
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        let code = in_child(|| {
            let text = format!("#!/bin/sh\n{body}\n");
            if std::fs::write(&p, text).is_err() {
                return 1;
            }
            let perm = std::fs::Permissions::from_mode(0o755);
            i32::from(std::fs::set_permissions(&p, perm).is_err())
        });
        assert_eq!(code, 0);
        p
    }

    fn hook(path: &Path, args: &[&str], env: &[String], timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path(path)
            .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .env(env.to_vec());
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn state_on_stdin_args_and_exact_env() {
        let d = TempDir::new("stdin");
        let out = d.0.join("out");
        let p = script(
            &d.0,
            "h.sh",
            "cat > \"$OUT\"\necho \"$1|$2\" > \"$OUT.args\"\ntr '\\0' '\\n' < /proc/$$/environ > \"$OUT.env\"",
        );
        let env = vec![
            "PATH=/usr/bin:/bin".to_string(),
            "FOO=bar baz".to_string(),
            format!("OUT={}", out.display()),
        ];
        let h = hook(&p, &["my-argv0", "one", "two"], &env, Some(30));
        let state = r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42}"#;
        run("createRuntime", &[h], state).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), state);
        let args = std::fs::read_to_string(d.0.join("out.args")).unwrap();
        assert_eq!(args.trim(), "one|two");
        let got = std::fs::read_to_string(d.0.join("out.env")).unwrap();
        let want: String = env.iter().map(|e| format!("{e}\n")).collect();
        assert_eq!(got, want);
    }

    /// args[0] is argv[0] (a script's argv[0] is replaced by the kernel's #! handling, so
    /// check with a binary).
    #[test]
    fn args0_is_argv0() {
        let d = TempDir::new("argv0");
        let out = d.0.join("cmdline");
        let cmd = format!("tr '\\0' '|' < /proc/$$/cmdline > {}", out.display());
        let h = hook(
            Path::new("/bin/sh"),
            &["my-argv0", "-c", &cmd],
            &["PATH=/usr/bin:/bin".to_string()],
            None,
        );
        run("poststop", &[h], "{}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.starts_with("my-argv0|-c|tr "), "{got}");
    }

    #[test]
    fn nonzero_exit_reports_status_and_stderr() {
        let d = TempDir::new("exit");
        let p = script(&d.0, "h.sh", "echo 'something broke' >&2\nexit 3");
        let e = run("poststart", &[hook(&p, &["h"], &[], None)], "{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "error running hook #0: error running hook: exit status 3, stdout: , \
                 stderr: something broke (poststart hook {})",
                p.display()
            )
        );
    }

    #[test]
    fn timeout_kills_the_hook() {
        let d = TempDir::new("timeout");
        let pidfile = d.0.join("pid");
        let p = script(
            &d.0,
            "h.sh",
            &format!("echo $$ > {}\nexec sleep 1000", pidfile.display()),
        );
        let e = run("createRuntime", &[hook(&p, &["h"], &[], Some(1))], "{}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "error running hook #0: timed out after 1s (createRuntime hook {})",
                p.display()
            )
        );
        // The hook was killed and reaped: its pid no longer exists.
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists());
    }

    #[test]
    fn hook_that_ignores_a_large_stdin_succeeds() {
        let d = TempDir::new("epipe");
        let p = script(&d.0, "h.sh", "exit 0");
        let big = "x".repeat(1 << 20);
        run("poststop", &[hook(&p, &["h"], &[], Some(60))], &big).unwrap();
    }

    #[test]
    fn hooks_run_in_order_and_stop_at_the_first_failure() {
        let d = TempDir::new("order");
        let log = d.0.join("log");
        let env = [format!("LOG={}", log.display())];
        let a = script(&d.0, "a.sh", "echo a >> \"$LOG\"");
        let b = script(&d.0, "b.sh", "echo b >> \"$LOG\"; exit 1");
        let c = script(&d.0, "c.sh", "echo c >> \"$LOG\"");
        let hooks = [
            hook(&a, &["a"], &env, None),
            hook(&b, &["b"], &env, None),
            hook(&c, &["c"], &env, None),
        ];
        let e = run("startContainer", &hooks, "{}").unwrap_err().to_string();
        assert!(
            e.starts_with("error running hook #1: error running hook: exit status 1"),
            "{e}"
        );
        assert!(e.ends_with("b.sh)"), "{e}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\n");
        // run_all goes on past the failure and reports it.
        std::fs::remove_file(&log).unwrap();
        let errs = run_all("poststop", &hooks, "{}");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().starts_with("error running hook #1: "));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn context_gives_cwd_and_the_env_of_hooks_without_one() {
        let d = TempDir::new("ctx");
        let out = d.0.join("out");
        let p = script(
            &d.0,
            "h.sh",
            &format!(
                "pwd > {0}; tr '\\0' '\\n' < /proc/$$/environ >> {0}",
                out.display()
            ),
        );
        let mut h = hook(&p, &["h"], &[], None);
        h.set_env(None);
        let env = ["A=1".to_string(), "B=2".to_string()];
        let ctx = Context {
            cwd: Some(Path::new("/")),
            env: Some(&env),
        };
        run_in("startContainer", &[h.clone()], "{}", ctx).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "/\nA=1\nB=2\n");
        // Without a context env, the caller's own.
        run("prestart", &[h], "{}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.contains("PATH="), "{got}");
    }

    #[test]
    fn missing_binary_and_bad_timeout() {
        let e = run(
            "prestart",
            &[hook(
                Path::new("/nonexistent/runz-test-hook"),
                &[],
                &[],
                None,
            )],
            "{}",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "error running hook #0: fork/exec /nonexistent/runz-test-hook: no such file or directory"
            ),
            "{e}"
        );
        let e = run(
            "prestart",
            &[hook(Path::new("/bin/true"), &[], &[], Some(0))],
            "{}",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("invalid timeout 0"), "{e}");
    }
}
