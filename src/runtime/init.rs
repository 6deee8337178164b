//! What the forked processes do between clone and execve.
//!
//! The child of `runz create` first waits for the parent (cgroup joined, rlimits and
//! oom_score_adj set), joins namespaces given by path, creates a user namespace and has the parent
//! write its id maps, unshares the remaining new namespaces, and — only when a PID or time
//! namespace must be entered — forks the real init with `CLONE_PARENT` (so init is a child of
//! `runz create` and is adopted by the caller's subreaper) and exits. Init then sets up the
//! rootfs, hooks, console, identity, capabilities and seccomp, reports `Ready`, and blocks on the
//! exec fifo until `runz start`.
//!
//! Everything here runs in a single-threaded process after fork: no threads exist to hold locks.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType as Ns, Process, Spec};

use super::namespaces::{self, ToJoin};
use super::process::{Channel, Msg};
use super::sys::{self, Forked};
use super::{capabilities, console, hooks, rootfs, sched, seccomp, trace, user};
use zones_cgroup::Cgroup;

/// What the parent hands to its child at fork.
pub struct InitContext<'a> {
    /// The container's cgroup, which the child joins itself (cheaper than the parent writing
    /// its pid: see `zones_cgroup::Cgroup::join_self`).
    pub cgroup: Option<&'a Cgroup>,
    /// Whether clone3 already put the child into the unified (v2) cgroup.
    pub in_cgroup: bool,
    pub spec: &'a Spec,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub channel: &'a Channel,
    pub joins: &'a [ToJoin],
    /// O_PATH fd of the exec fifo; init opens it for writing through /proc/self/fd.
    pub fifo: &'a OwnedFd,
    /// Where the pty master goes when process.terminal is set.
    pub console: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Extra fds (3..3+n) passed to the process.
    pub preserve_fds: i32,
    /// Extra env (LISTEN_FDS/LISTEN_PID when socket activation passes fds through).
    pub extra_env: &'a [String],
    /// Per spec mount, the user namespace of an id-mapped mount (made by the parent).
    pub idmap: &'a [Option<OwnedFd>],
    /// Per spec mount, a source tree made on the host side (`mounts::host_trees`).
    pub host_trees: &'a [Option<OwnedFd>],
}

/// The child's entry point; never returns.
pub fn child_main(ctx: &InitContext) -> ! {
    let code = match intermediate(ctx) {
        Ok(()) => 0,
        Err(e) => {
            let _ = ctx.channel.send(&Msg::Error(e));
            1
        }
    };
    // SAFETY: _exit ends this forked process without running the parent's atexit handlers or
    // destructors, which belong to the parent's copy of the state.
    unsafe { libc::_exit(code) }
}

fn intermediate(ctx: &InitContext) -> Result<(), String> {
    trace::mark("child: forked");
    join_cgroup(ctx.cgroup, ctx.in_cgroup)?;
    ctx.channel.expect(&Msg::Go)?;
    let spec = ctx.spec;
    namespaces::join(ctx.joins, &[]).map_err(|e| e.to_string())?;
    if super::spec::new_namespace(spec, Ns::User) {
        namespaces::unshare_new(CloneFlags::CLONE_NEWUSER).map_err(|e| e.to_string())?;
        // The parent writes our maps from outside the namespace.
        ctx.channel
            .send(&Msg::WriteIdMaps)
            .map_err(|e| format!("ask for id maps: {e}"))?;
        ctx.channel.expect(&Msg::Go)?;
        become_root()?;
    }
    let rest = namespaces::new_flags(
        spec,
        &[
            Ns::Mount,
            Ns::Uts,
            Ns::Ipc,
            Ns::Network,
            Ns::Cgroup,
            Ns::Pid,
            Ns::Time,
        ],
    );
    namespaces::unshare_new(rest).map_err(|e| e.to_string())?;
    if rest.contains(namespaces::flag(Ns::Time)) {
        namespaces::write_time_offsets(spec).map_err(|e| e.to_string())?;
    }
    let joined_pid_or_time = ctx
        .joins
        .iter()
        .any(|j| matches!(j.typ, Ns::Pid | Ns::Time));
    let must_fork = rest.intersects(CloneFlags::CLONE_NEWPID | namespaces::flag(Ns::Time))
        || joined_pid_or_time;
    trace::mark("child: namespaces made");
    if !must_fork {
        return init(ctx);
    }
    match sys::fork_with_flags(libc::CLONE_PARENT as u64, None) {
        Ok((Forked::Parent(pid), _)) => ctx
            .channel
            .send(&Msg::InitPid(pid.as_raw()))
            .map_err(|e| format!("report init pid: {e}")),
        Ok((Forked::Child, _)) => match init(ctx) {
            Ok(()) => unreachable!("init returns only on error"),
            Err(e) => {
                let _ = ctx.channel.send(&Msg::Error(e));
                // SAFETY: see child_main.
                unsafe { libc::_exit(1) }
            }
        },
        Err(e) => Err(format!("fork init into the new pid namespace: {e}")),
    }
}

/// Join `cgroup` from inside the forked child, before any namespace is entered (the cgroup
/// paths are the host's).
fn join_cgroup(cgroup: Option<&Cgroup>, in_v2: bool) -> Result<(), String> {
    match cgroup {
        Some(cg) => cg
            .join_self(in_v2)
            .map_err(|e| format!("join the container's cgroup: {e}")),
        None => Ok(()),
    }
}

/// What `runz exec` hands to its child: the container's namespaces to join and the process.
pub struct ExecContext<'a> {
    /// The container's cgroup, joined by the child itself.
    pub cgroup: Option<&'a Cgroup>,
    /// Whether clone3 already put the child into the unified (v2) cgroup.
    pub in_cgroup: bool,
    /// The container's config (its seccomp profile applies to exec'd processes too).
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub channel: &'a Channel,
    /// The container's namespaces, user first.
    pub joins: &'a [ToJoin],
    /// Whether the container has its own PID namespace (then a second fork enters it).
    pub enter_pid_ns: bool,
    pub console: Option<&'a OwnedFd>,
    pub preserve_fds: i32,
    pub extra_env: &'a [String],
}

/// The exec child's entry point; never returns.
pub fn exec_child_main(ctx: &ExecContext) -> ! {
    let code = match exec_intermediate(ctx) {
        Ok(()) => 0,
        Err(e) => {
            let _ = ctx.channel.send(&Msg::Error(e));
            1
        }
    };
    // SAFETY: see child_main.
    unsafe { libc::_exit(code) }
}

fn exec_intermediate(ctx: &ExecContext) -> Result<(), String> {
    // Until execve, this process holds host fds (the namespaces it joins, the channel): no
    // process of the container may read them through /proc/<pid>/fd (CVE-2024-21626). execve
    // makes the new program dumpable again.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("prctl(PR_SET_DUMPABLE, 0): {e}"))?;
    join_cgroup(ctx.cgroup, ctx.in_cgroup)?;
    ctx.channel.expect(&Msg::Go)?;
    namespaces::join(ctx.joins, &[]).map_err(|e| e.to_string())?;
    if !ctx.enter_pid_ns {
        return exec_in_container(ctx);
    }
    match sys::fork_with_flags(libc::CLONE_PARENT as u64, None) {
        Ok((Forked::Parent(pid), _)) => ctx
            .channel
            .send(&Msg::InitPid(pid.as_raw()))
            .map_err(|e| format!("report process pid: {e}")),
        Ok((Forked::Child, _)) => {
            let e = exec_in_container(ctx).unwrap_err();
            let _ = ctx.channel.send(&Msg::Error(e));
            // SAFETY: see child_main.
            unsafe { libc::_exit(1) }
        }
        Err(e) => Err(format!("fork into the container's pid namespace: {e}")),
    }
}

/// Inside every namespace of the container: console, identity, then execve. The channel closes
/// on a successful exec, which is how the parent learns the process runs.
fn exec_in_container(ctx: &ExecContext) -> Result<(), String> {
    new_session()?;
    if let Some(sock) = ctx.console {
        let sock = sock
            .try_clone()
            .map_err(|e| format!("console socket: {e}"))?;
        console::setup_pty(
            sock,
            ctx.process.console_size().as_ref(),
            console::PtyFor::Exec,
        )
        .map_err(|e| e.to_string())?;
    }
    prepare_fds(ctx.preserve_fds)?;
    if let Some(a) = ctx.process.exec_cpu_affinity() {
        sched::set_final_affinity(a).map_err(|e| e.to_string())?;
    }
    let exec = prepare_identity_and_exec(ctx.spec, ctx.process, ctx.extra_env)?;
    ctx.channel.send(&Msg::Ready).map_err(|e| e.to_string())?;
    Err(exec.run())
}

/// Leave the caller's session, so the caller's terminal is never the container's controlling
/// terminal: TIOCSTI on an inherited tty then fails (EPERM), as with runc, which calls setsid
/// in the process it starts. Init and the exec'd process are fresh clone children, never
/// process group leaders, so setsid cannot fail with EPERM.
fn new_session() -> Result<(), String> {
    nix::unistd::setsid()
        .map(drop)
        .map_err(|e| format!("setsid: {e}"))
}

/// After the maps are written: become uid/gid 0 of the new user namespace.
fn become_root() -> Result<(), String> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| format!("setresgid 0 in the user namespace (is gid 0 mapped?): {e}"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| format!("setresuid 0 in the user namespace (is uid 0 mapped?): {e}"))
}

/// The container's init: returns only with an error.
fn init(ctx: &InitContext) -> Result<(), String> {
    let spec = ctx.spec;
    let process = spec.process().as_ref().ok_or("process is missing")?;
    new_session()?;
    if !ctx.no_new_keyring {
        join_session_keyring(ctx.id)?;
    }
    set_names(spec)?;
    let has_mntns = super::spec::has_namespace(spec, Ns::Mount);
    let opts = rootfs::RootfsOptions {
        terminal: process.terminal().unwrap_or(false),
        in_user_ns: super::spec::has_namespace(spec, Ns::User),
        new_cgroup_ns: super::spec::new_namespace(spec, Ns::Cgroup),
        has_mount_ns: has_mntns,
        cgroup: None,
        bundle: Some(ctx.bundle.to_path_buf()),
        idmap_userns: ctx
            .idmap
            .iter()
            .map(|fd| fd.as_ref().map(|f| f.as_raw_fd()))
            .collect(),
        host_trees: ctx
            .host_trees
            .iter()
            .map(|fd| fd.as_ref().map(|f| f.as_raw_fd()))
            .collect(),
    };
    trace::mark("init: begin");
    // Without a mount namespace prepare only refuses what would change the host's mounts.
    rootfs::prepare(spec, ctx.rootfs, &opts).map_err(|e| e.to_string())?;
    trace::mark("init: rootfs mounted");
    let hooks = spec.hooks().as_ref();
    #[allow(deprecated)]
    let parent_hooks = hooks.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if parent_hooks {
        ctx.channel
            .send(&Msg::RunHooks)
            .map_err(|e| e.to_string())?;
        ctx.channel.expect(&Msg::HooksDone)?;
    }
    if let Some(list) = hooks.and_then(|h| h.create_container().as_ref()) {
        let state = super::container::hook_state(
            ctx.id,
            std::process::id() as i32,
            "creating",
            ctx.bundle,
            spec,
        );
        hooks::run("createContainer", list, &state).map_err(|e| e.to_string())?;
    }
    rootfs::enter(ctx.rootfs, ctx.no_pivot, has_mntns).map_err(|e| e.to_string())?;
    if let Some(sock) = ctx.console {
        let sock = sock
            .try_clone()
            .map_err(|e| format!("console socket: {e}"))?;
        console::setup_pty(sock, process.console_size().as_ref(), console::PtyFor::Init)
            .map_err(|e| e.to_string())?;
    }
    if has_mntns {
        rootfs::finalize(spec).map_err(|e| e.to_string())?;
    }
    super::sysctl::apply(spec)?;
    if has_mntns {
        rootfs::protect_paths(spec).map_err(|e| e.to_string())?;
    }
    trace::mark("init: pivoted, paths masked");
    // Init waits for `runz start` holding host fds (the exec fifo, the channel); processes
    // exec'd into the container meanwhile must not follow /proc/1/fd/N. Not earlier: while
    // non-dumpable its /proc files belong to host root, and in a user namespace init could
    // no longer write them. execve makes the container's program dumpable again.
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("prctl(PR_SET_DUMPABLE, 0): {e}"))?;
    prepare_fds(ctx.preserve_fds)?;
    let exec = prepare_identity_and_exec(spec, process, ctx.extra_env)?;
    trace::mark("init: identity, caps, seccomp set; ready");
    ctx.channel.send(&Msg::Ready).map_err(|e| e.to_string())?;
    // From here on `runz create` has returned: nobody reads the channel, so failures go to the
    // process's stderr, which is what the caller of `runz start` sees.
    let err = match after_start(ctx, &exec) {
        Ok(()) => unreachable!("after_start returns only on error"),
        Err(e) => e,
    };
    eprintln!("{}: {err}", crate::log::program());
    // SAFETY: see child_main; 127 is the shell's "command could not be run".
    unsafe { libc::_exit(127) }
}

/// Wait for `runz start`, run the startContainer hooks and execve. Returns only the error.
fn after_start(ctx: &InitContext, exec: &Exec) -> Result<(), String> {
    wait_for_start(ctx.fifo)?;
    trace::mark("init: started, execve");
    if let Some(list) = ctx
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let state = super::container::hook_state(
            ctx.id,
            std::process::id() as i32,
            "running",
            ctx.bundle,
            ctx.spec,
        );
        hooks::run("startContainer", list, &state).map_err(|e| e.to_string())?;
    }
    Err(exec.run())
}

/// Everything needed for the final execve, resolved while errors can still fail `create`.
struct Exec {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    late_seccomp: Option<(Vec<seccompiler::BpfProgram>, seccomp::FilterFlags)>,
}

impl Exec {
    /// Install the late seccomp filter and execve; returns only the error.
    fn run(&self) -> String {
        if let Some((filters, flags)) = &self.late_seccomp {
            if let Err(e) = seccomp::install_with_flags(filters, *flags) {
                return e.to_string();
            }
        }
        let err = nix::unistd::execve(&self.path, &self.argv, &self.env).unwrap_err();
        format!("exec {}: {err}", self.path.to_string_lossy())
    }
}

/// Bounding set, seccomp (early without NNP), user switch, cwd, executable, capabilities, NNP.
fn prepare_identity_and_exec(
    spec: &Spec,
    process: &Process,
    extra_env: &[String],
) -> Result<Exec, String> {
    let filters = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some((
            seccomp::compile(profile).map_err(|e| e.to_string())?,
            seccomp::filter_flags(profile),
        )),
        None => None,
    };
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        sched::set_personality(p).map_err(|e| e.to_string())?;
    }
    if let Some(m) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        sched::set_memory_policy(m).map_err(|e| e.to_string())?;
    }
    if let Some(s) = process.scheduler() {
        sched::set_scheduler(s).map_err(|e| e.to_string())?;
    }
    if let Some(p) = process.io_priority() {
        sched::set_io_priority(p).map_err(|e| e.to_string())?;
    }
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps).map_err(|e| e.to_string())?;
    }
    // Without no_new_privs, seccomp needs CAP_SYS_ADMIN: install it before dropping privileges.
    let late_seccomp = match filters {
        Some((f, flags)) if !nnp => {
            seccomp::install_with_flags(&f, flags).map_err(|e| e.to_string())?;
            None
        }
        other => other,
    };
    user::switch(process.user()).map_err(|e| e.to_string())?;
    let cwd = process.cwd();
    nix::unistd::chdir(cwd.as_path())
        .map_err(|e| format!("chdir to cwd {:?} set in config.json: {e}", cwd))?;
    verify_cwd()?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    let args = process.args().as_deref().unwrap_or(&[]);
    let path = find_executable(&args[0], &env)?;
    if let Some(caps) = process.capabilities() {
        capabilities::apply(caps).map_err(|e| e.to_string())?;
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
    }
    Ok(Exec {
        path: cstring(path.as_os_str().as_encoded_bytes())?,
        argv: args
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?,
        env: env
            .iter()
            .map(|a| cstring(a.as_bytes()))
            .collect::<Result<_, _>>()?,
        late_seccomp,
    })
}

/// The cwd must lie under the container's root: a cwd reached through an inherited host fd
/// (`/proc/self/fd/N`) is "(unreachable)" to getcwd(2), which glibc reports as ENOENT
/// (CVE-2024-21626). Same check and text as runc's verifyCwd.
fn verify_cwd() -> Result<(), String> {
    match nix::unistd::getcwd() {
        Err(nix::Error::ENOENT) => Err("current working directory is outside of container mount \
                                         namespace root -- possible container breakout detected"
            .into()),
        Err(e) => Err(format!(
            "failed to verify if current working directory is safe: {e}"
        )),
        Ok(wd) if !wd.is_absolute() => Err(format!(
            "current working directory is not absolute -- possible container breakout \
             detected: cwd is {wd:?}"
        )),
        Ok(_) => Ok(()),
    }
}

fn cstring(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| format!("{:?} contains a NUL byte", String::from_utf8_lossy(b)))
}

/// Resolve args[0] like runc: a path with '/' is taken as is (relative to cwd), otherwise it is
/// searched in the process's PATH.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "exec: {name:?}: stat {name}: no such file or executable"
            ))
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn set_names(spec: &Spec) -> Result<(), String> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| format!("set hostname {h:?}: {e}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        let c = cstring(d.as_bytes())?;
        // SAFETY: setdomainname reads `len` bytes from a valid NUL-terminated buffer.
        let r = unsafe { libc::setdomainname(c.as_ptr(), d.len()) };
        if r != 0 {
            return Err(format!(
                "set domainname {d:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Join a new session keyring named after the container, as runc does (ENOSYS is ignored).
fn join_session_keyring(id: &str) -> Result<(), String> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = cstring(format!("_ses.{id}").as_bytes())?;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, name) reads a valid NUL-terminated string.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(format!("join session keyring: {e}"));
        }
    }
    Ok(())
}

/// fds 0..3+n stay open across execve; every other fd closes on exec, whoever opened it
/// (close_range(CLOSE_RANGE_CLOEXEC), as runc does).
fn prepare_fds(preserve: i32) -> Result<(), String> {
    let keep = 3 + preserve.max(0) as u32;
    for fd in 3..keep {
        // EBADF: a preserved fd the caller did not open.
        let _ = nix::fcntl::fcntl(
            fd as i32,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
    }
    // SAFETY: close_range only changes the close-on-exec flag of this process's fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            keep,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(format!(
            "close_range({keep}, ~0, CLOSE_RANGE_CLOEXEC): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Block until `runz start` opens the fifo for reading, then release it with one byte.
fn wait_for_start(fifo: &OwnedFd) -> Result<(), String> {
    let f = rootfs::reopen_own_fd(std::os::fd::AsFd::as_fd(fifo), nix::fcntl::OFlag::O_WRONLY)
        .map(fs::File::from)
        .map_err(|e| format!("open exec fifo: {e}"))?;
    use std::io::Write;
    (&f).write_all(b"0")
        .map_err(|e| format!("write exec fifo: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_found_in_path_or_refused_like_runc() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let sh = find_executable("sh", &env).unwrap();
        assert!(sh.ends_with("sh"));
        let e = find_executable("nope-not-here", &env).unwrap_err();
        assert_eq!(
            e,
            "exec: \"nope-not-here\": executable file not found in $PATH"
        );
        assert!(find_executable("/bin/sh", &[]).is_ok());
        assert!(find_executable("/etc/passwd", &[]).is_err());
    }
}
