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
use super::{capabilities, console, errno, hooks, rootfs, sched, seccomp, trace, user};
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
    /// The pty goes to runz itself, which relays it (ONLCR cleared, as runc).
    pub own_console: bool,
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
    unblock_all_signals();
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
    if ctx
        .spec
        .process()
        .as_ref()
        .is_none_or(|p| p.exec_cpu_affinity().is_none())
    {
        reset_affinity()?;
    }
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

/// Every CPU the cgroup allows, not the caller's mask (a `taskset -c 0 runz run` must not pin
/// the container): the kernel narrows "all" to the cpuset of the cgroup just joined.
fn reset_affinity() -> Result<(), String> {
    let mut all = nix::sched::CpuSet::new();
    for cpu in 0..nix::sched::CpuSet::count() {
        let _ = all.set(cpu);
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all)
        .map_err(|e| format!("reset the CPU affinity: {e}"))
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
    /// The pty goes to runz itself, which relays it (ONLCR cleared, as runc).
    pub own_console: bool,
    pub preserve_fds: i32,
    pub extra_env: &'a [String],
}

/// The container's processes start with no signal blocked, whatever the caller of runz had
/// blocked: zoneadmd blocks SIGCHLD, SIGHUP, SIGINT and SIGTERM for its signalfd and boots a
/// rebooted zone from there, and execve keeps the mask. An init that never unblocks them
/// (sysvinit) would hand SIGCHLD blocked to every service: OpenRC's openrc-run then waits for
/// its finished script forever. (fork leaves the child nothing pending.)
fn unblock_all_signals() {
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// The exec child's entry point; never returns.
pub fn exec_child_main(ctx: &ExecContext) -> ! {
    unblock_all_signals();
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
    // With execCPUAffinity the parent sets the initial mask itself.
    if ctx.process.exec_cpu_affinity().is_none() {
        reset_affinity()?;
    }
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
            ctx.own_console,
        )
        .map_err(|e| e.to_string())?;
    }
    prepare_fds(ctx.preserve_fds)?;
    if let Some(a) = ctx.process.exec_cpu_affinity() {
        sched::set_final_affinity(a).map_err(|e| e.to_string())?;
    }
    let exec = prepare_identity_and_exec(ctx.spec, ctx.process, ctx.extra_env, ctx.channel)?;
    ctx.channel.send(&Msg::Ready).map_err(|e| e.to_string())?;
    // As runc: a failing execve is the process's own failure (`runz exec` returns its status,
    // 1), told on its stderr in runc's words; the channel closes at exit as it would on exec.
    let err = exec.run();
    eprintln!("{err}");
    // SAFETY: see child_main.
    unsafe { libc::_exit(1) }
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
        // As runc: in the container's root, with the process's environment (no HOME yet).
        let env = merge_env(process.env().as_deref().unwrap_or(&[]), ctx.extra_env)?;
        let hctx = hooks::Context {
            cwd: Some(ctx.rootfs),
            env: Some(&env),
        };
        hooks::run_in("createContainer", list, &state, hctx).map_err(|e| e.to_string())?;
    }
    rootfs::enter(ctx.rootfs, ctx.no_pivot, has_mntns).map_err(|e| e.to_string())?;
    if let Some(sock) = ctx.console {
        let sock = sock
            .try_clone()
            .map_err(|e| format!("console socket: {e}"))?;
        console::setup_pty(
            sock,
            process.console_size().as_ref(),
            console::PtyFor::Init,
            ctx.own_console,
        )
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
    let exec = prepare_identity_and_exec(spec, process, ctx.extra_env, ctx.channel)?;
    trace::mark("init: identity, caps, seccomp set; ready");
    ctx.channel.send(&Msg::Ready).map_err(|e| e.to_string())?;
    exit_on_termination_signals();
    // From here on `runz create` has returned: nobody reads the channel, so failures go to the
    // process's stderr, which is what the caller of `runz start` sees.
    let err = match after_start(ctx, &exec) {
        Ok(()) => unreachable!("after_start returns only on error"),
        Err(e) => e,
    };
    // runc's init prints the bare error (`exec /run.sh: no such file or directory`: tools match
    // it) and exits 1.
    eprintln!("{err}");
    // SAFETY: see child_main.
    unsafe { libc::_exit(1) }
}

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; it ends this waiting init at once.
    unsafe { libc::_exit(128 + sig) }
}

/// A created container's init waits for `start`; SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and
/// SIGUSR2 must end it, as they end runc's (Go's default handling). As PID 1 of its namespace
/// it gets no signal from outside without a handler, hence one; execve drops it again.
fn exit_on_termination_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(exit_on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only calls _exit, which is async-signal-safe.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// Wait for `runz start`, run the startContainer hooks and execve. Returns only the error.
fn after_start(ctx: &InitContext, exec: &Exec) -> Result<(), String> {
    wait_for_start(ctx.fifo)?;
    trace::mark("init: started, execve");
    // As runc: the startContainer hooks run under the container's seccomp filter.
    exec.install_late_seccomp()?;
    if let Some(list) = ctx
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        // runc: status "created" (the process has not run yet), the process's environment.
        let state = super::container::hook_state(
            ctx.id,
            std::process::id() as i32,
            "created",
            ctx.bundle,
            ctx.spec,
        );
        let env: Vec<String> = exec
            .env
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        let hctx = hooks::Context {
            cwd: None,
            env: Some(&env),
        };
        hooks::run_in("startContainer", list, &state, hctx).map_err(|e| e.to_string())?;
    }
    Err(exec.execve())
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
        match self.install_late_seccomp() {
            Ok(()) => self.execve(),
            Err(e) => e,
        }
    }

    /// The filter that waits for no_new_privs (installed as close to execve as possible).
    fn install_late_seccomp(&self) -> Result<(), String> {
        match &self.late_seccomp {
            // Never a notify profile: its filter is installed before `Ready` (see
            // prepare_identity_and_exec), so no listener is dropped here.
            Some((filters, flags)) => seccomp::install_with_flags(filters, *flags)
                .map(drop)
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// execve; returns only the error, in runc's words.
    fn execve(&self) -> String {
        let err = nix::unistd::execve(&self.path, &self.argv, &self.env).unwrap_err();
        format!(
            "exec {}: {}",
            self.path.to_string_lossy(),
            errno::nix_text(err)
        )
    }
}

/// Install seccomp filters; a notify listener goes to the parent, which hands it to the
/// profile's agent (as runc: before init goes on, so no notified call waits for nobody), and is
/// closed here.
fn install_seccomp(
    filters: &[seccompiler::BpfProgram],
    flags: seccomp::FilterFlags,
    channel: &Channel,
) -> Result<(), String> {
    let listener = seccomp::install_with_flags(filters, flags).map_err(|e| e.to_string())?;
    if let Some(fd) = listener {
        channel
            .send_with_fd(&Msg::SeccompFd, &fd)
            .map_err(|e| e.to_string())?;
        drop(fd);
        channel.expect(&Msg::Go)?;
    }
    Ok(())
}

/// Bounding set, seccomp (early without NNP), user switch, cwd, executable, capabilities, NNP.
/// A profile with SCMP_ACT_NOTIFY rules is installed before this returns (its listener must
/// reach the agent while the parent waits), right after NNP when NNP is asked for.
fn prepare_identity_and_exec(
    spec: &Spec,
    process: &Process,
    extra_env: &[String],
    channel: &Channel,
) -> Result<Exec, String> {
    let mut notify = false;
    let filters = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => {
            notify = seccomp::uses_notify(profile);
            Some((
                seccomp::compile(profile).map_err(|e| {
                    // runc's words: "unable to init seccomp: ...".
                    let text = e.to_string();
                    let bare = text.strip_prefix("seccomp: ").unwrap_or(&text);
                    format!("unable to init seccomp: {bare}")
                })?,
                seccomp::filter_flags(profile),
            ))
        }
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
    // No capabilities in the spec means none at all, bounding set included (runc).
    let no_caps;
    let caps = match process.capabilities() {
        Some(c) => c,
        None => {
            no_caps = capabilities::none();
            &no_caps
        }
    };
    capabilities::drop_bounding(caps).map_err(|e| e.to_string())?;
    // Without no_new_privs, seccomp needs CAP_SYS_ADMIN: install it before dropping privileges.
    let mut late_seccomp = match filters {
        Some((f, flags)) if !nnp => {
            install_seccomp(&f, flags, channel)?;
            None
        }
        other => other,
    };
    // HOME comes from the container's passwd, read while still root (it may be 0600).
    let env = process_env(process.env().as_deref().unwrap_or(&[]), extra_env, || {
        user::home_of(process.user().uid())
    })?;
    // As runc: into cwd before the user switch when possible (a cwd only root may enter,
    // e.g. /root for uid 1000, still works), otherwise after it.
    let cwd = process.cwd();
    let early_cwd = nix::unistd::chdir(cwd.as_path()).is_ok();
    if process.user().uid() != 0 {
        user::fix_stdio_owner(process.user().uid()).map_err(|e| e.to_string())?;
    }
    user::switch(process.user()).map_err(|e| e.to_string())?;
    if !early_cwd {
        nix::unistd::chdir(cwd.as_path()).map_err(|e| {
            format!(
                "chdir to cwd ({:?}) set in config.json failed: {}",
                cwd,
                errno::nix_text(e)
            )
        })?;
    }
    verify_cwd()?;
    let args = process.args().as_deref().unwrap_or(&[]);
    let path = find_executable(&args[0], &env)?;
    capabilities::apply(caps).map_err(|e| e.to_string())?;
    if nnp {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
    }
    if notify {
        if let Some((f, flags)) = late_seccomp.take() {
            install_seccomp(&f, flags, channel)?;
        }
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

/// The process's environment as runc builds it: the spec's KEY=VALUE entries, then `extra`, in
/// order, a repeated KEY replacing the earlier value in its place (Go's os.Setenv); then HOME
/// from `home` when it is unset or empty. Entries without `=` or with an empty name are refused
/// with runc's words.
pub fn process_env(
    spec_env: &[String],
    extra: &[String],
    home: impl FnOnce() -> String,
) -> Result<Vec<String>, String> {
    let mut env = merge_env(spec_env, extra)?;
    match env.iter_mut().find(|e| e.starts_with("HOME=")) {
        Some(slot) if slot.len() == "HOME=".len() => *slot = format!("HOME={}", home()),
        Some(_) => {}
        None => env.push(format!("HOME={}", home())),
    }
    Ok(env)
}

/// [`process_env`] without HOME: the entries in order, a repeated name keeping its first place.
fn merge_env(spec_env: &[String], extra: &[String]) -> Result<Vec<String>, String> {
    let mut env: Vec<String> = Vec::with_capacity(spec_env.len() + extra.len() + 1);
    for kv in spec_env.iter().chain(extra) {
        let Some((key, _)) = kv.split_once('=') else {
            return Err(format!("invalid environment variable: {kv:?}"));
        };
        if key.is_empty() {
            return Err(format!("environment variable name can't be empty: {kv:?}"));
        }
        match env
            .iter_mut()
            .find(|e| e.split_once('=').is_some_and(|(k, _)| k == key))
        {
            Some(slot) => slot.clone_from(kv),
            None => env.push(kv.clone()),
        }
    }
    Ok(env)
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

/// Resolve args[0] like runc (Go's exec.LookPath, with runc's texts): a path with '/' is taken
/// as is (relative to cwd), otherwise it is searched in the process's PATH; without a PATH in
/// the environment nothing is found.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf, String> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match fs::metadata(&p) {
            Err(e) => Err(format!(
                "exec: {name:?}: stat {name}: {}",
                errno::io_text(&e)
            )),
            Ok(m) if is_executable(&m) => Ok(p),
            Ok(_) => Err(format!("exec: {name:?}: permission denied")),
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("");
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| is_executable(&m)))
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

fn is_executable(m: &fs::Metadata) -> bool {
    !m.is_dir() && m.permissions().mode() & 0o111 != 0
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

/// The fds of the preserve range (3..3+n) the caller did not open, held by placeholders.
static RESERVED: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// Hold every fd of 3..3+`n` the caller left closed with a close-on-exec placeholder
/// (/dev/null), before runz opens anything: otherwise runz's own fds (the exec fifo, the
/// channel, a socket) land in the range the container inherits (CVE-2024-21626 class). The
/// container's side closes the placeholders instead of passing them on. Call once, at the
/// start of `create`, `run` and `exec`.
pub fn reserve_preserved(n: i32) {
    let mut held = Vec::new();
    for fd in 3..3 + n.max(0) {
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD) != Err(nix::Error::EBADF) {
            continue;
        }
        let Ok(null) = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) else {
            continue;
        };
        if null != fd {
            // SAFETY: dup3 onto an fd number this process does not use (F_GETFD said EBADF),
            // then close of the temporary fd `open` just returned.
            unsafe {
                libc::dup3(null, fd, libc::O_CLOEXEC);
                libc::close(null);
            }
        }
        held.push(fd);
    }
    let _ = RESERVED.set(held);
}

/// fds 0..3+n stay open across execve, but for placeholders of [`reserve_preserved`], which
/// are closed; every other fd closes on exec, whoever opened it
/// (close_range(CLOSE_RANGE_CLOEXEC), as runc does).
fn prepare_fds(preserve: i32) -> Result<(), String> {
    let keep = 3 + preserve.max(0) as u32;
    let reserved = RESERVED.get().map(Vec::as_slice).unwrap_or(&[]);
    for fd in 3..keep {
        if reserved.contains(&(fd as i32)) {
            let _ = nix::unistd::close(fd as i32);
            continue;
        }
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
        assert_eq!(
            find_executable("/etc/passwd", &[]).unwrap_err(),
            "exec: \"/etc/passwd\": permission denied"
        );
        assert_eq!(
            find_executable("/run.sh-nope", &[]).unwrap_err(),
            "exec: \"/run.sh-nope\": stat /run.sh-nope: no such file or directory"
        );
        assert!(
            find_executable("sh", &[]).is_err(),
            "no PATH, nothing found"
        );
    }

    #[test]
    fn env_keeps_first_place_and_last_value_and_gets_home() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let env = process_env(
            &v(&["ONE=two", "NL=a\nb", "ONE=three", "HOME="]),
            &v(&["LISTEN_FDS=1"]),
            || "/root".into(),
        )
        .unwrap();
        assert_eq!(
            env,
            v(&["ONE=three", "NL=a\nb", "HOME=/root", "LISTEN_FDS=1"])
        );
        let env = process_env(&v(&["HOME=/x", "A=="]), &[], || unreachable!()).unwrap();
        assert_eq!(env, v(&["HOME=/x", "A=="]));
        assert_eq!(
            process_env(&v(&["X=1"]), &[], || "/".into()).unwrap(),
            v(&["X=1", "HOME=/"])
        );
        assert_eq!(
            process_env(&v(&["NOEQ"]), &[], || "/".into()).unwrap_err(),
            "invalid environment variable: \"NOEQ\""
        );
        assert_eq!(
            process_env(&v(&["=x"]), &[], || "/".into()).unwrap_err(),
            "environment variable name can't be empty: \"=x\""
        );
    }
}
