//! The container operations every front-end uses: create, start, kill, delete, state, list.
//! Errors keep runc's wording where callers match substrings ("does not exist",
//! "container not running", "container with given ID already exists").

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use zones_cgroup::Cgroup;

use super::init::{self, InitContext};
use super::process::{self, Channel, Msg};
use super::spec::{self, SpecError};
use super::state::{self, ContainerState, StateError, Status};
use super::sys::{self, Forked};
use super::{console, errno, hooks, namespaces, rlimits, trace};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("{0}")]
    Create(String),
    #[error("container not running")]
    NotRunning,
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("cannot start container {id}: it is {status}, not created")]
    NotCreated { id: String, status: Status },
    #[error("{0}")]
    Hook(String),
    #[error("{0}")]
    Signal(String),
}

type Result<T> = std::result::Result<T, ContainerError>;

/// What `create` needs besides the bundle.
#[derive(Default)]
pub struct CreateOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A connected console socket given by the caller itself (`runz run` in the foreground).
    pub console_fd: Option<OwnedFd>,
    /// Unix socket that receives a pidfd of init once it is set up.
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// The systemd cgroup driver (`--systemd-cgroup`): the cgroup is a transient scope.
    pub systemd_cgroup: bool,
}

/// A container that `create` has set up.
pub struct Created {
    /// Host pid of init, blocked on the exec fifo.
    pub pid: Pid,
}

/// The state JSON given to hooks on stdin, in runc's shape: its key order, no `pid` when
/// there is none (0), no `annotations` when empty.
pub fn hook_state(id: &str, pid: i32, status: &str, bundle: &Path, spec: &Spec) -> String {
    fn q<T: serde::Serialize + ?Sized>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_else(|_| "null".into())
    }
    let mut out = format!(
        "{{\"ociVersion\":{},\"id\":{},\"status\":{}",
        q(spec::OCI_VERSION),
        q(id),
        q(status)
    );
    if pid != 0 {
        out.push_str(&format!(",\"pid\":{pid}"));
    }
    out.push_str(&format!(",\"bundle\":{}", q(bundle)));
    if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
        out.push_str(&format!(",\"annotations\":{}", q(a)));
    }
    out.push('}');
    out
}

/// Undo a half-made create: kill what was forked, remove the cgroup and the state directory.
struct Cleanup<'a> {
    dir: &'a Path,
    cgroup: Option<Cgroup>,
    pids: Vec<Pid>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ = nix::sys::signal::kill(*pid, Signal::SIGKILL);
            let _ = waitpid(*pid, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.remove();
        }
        let _ = fs::remove_dir_all(self.dir);
    }
}

/// Create a container: everything in config.json but the user process, which waits for `start`.
pub fn create(opts: CreateOpts) -> Result<Created> {
    trace::mark("create: begin");
    let bundle = fs::canonicalize(&opts.bundle)
        .map_err(|e| ContainerError::Create(format!("bundle {}: {e}", opts.bundle.display())))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec)?;
    trace::mark("create: spec loaded");
    let rootfs = spec::rootfs_path(&spec, &bundle)?;
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    let has_console = opts.console_socket.is_some() || opts.console_fd.is_some();
    if terminal && !has_console {
        return Err(ContainerError::Create(
            "process.terminal is true but no --console-socket was given to receive the pty".into(),
        ));
    }
    if !terminal && has_console {
        return Err(ContainerError::Create(
            "--console-socket was given but process.terminal is false".into(),
        ));
    }
    state::check_id(&opts.id)?;
    if state::dir(&opts.root, &opts.id).exists() {
        return Err(StateError::Exists.into());
    }
    // Open what init needs before anything is made, so bad input leaves nothing behind.
    let own_console = opts.console_fd.is_some();
    let console = match (opts.console_fd, &opts.console_socket) {
        (Some(fd), _) => Some(fd),
        (None, Some(path)) => {
            Some(console::connect_socket(path).map_err(|e| ContainerError::Create(e.to_string()))?)
        }
        (None, None) => None,
    };
    let joins = namespaces::open_joins(spec::namespaces(&spec))
        .map_err(|e| ContainerError::Create(e.to_string()))?;
    let pidfd_sock = connect_pidfd_socket(opts.pidfd_socket.as_deref())?;
    let idmaps = super::idmap::prepare(&spec).map_err(|e| ContainerError::Create(e.to_string()))?;
    let host_trees = super::mounts::host_trees(&spec, &bundle, &idmaps)
        .map_err(|e| ContainerError::Create(e.to_string()))?;

    let dir = state::create_dir(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: &dir,
        cgroup: None,
        pids: Vec::new(),
        armed: true,
    };
    let cgroup = make_cgroup(&spec, &opts.id, &dir, opts.systemd_cgroup)?;
    cleanup.cgroup = Some(cgroup.clone());
    crate::fault::point("create:after-cgroup");
    let fifo = make_fifo(&dir)?;
    let (parent_ch, child_ch) =
        process::pair().map_err(|e| ContainerError::Create(e.to_string()))?;
    let (preserve_fds, extra_env) = listen_fds(opts.preserve_fds);

    let cgroup_fd = cgroup.clone_into_fd();
    trace::mark("create: cgroup, fifo, channel ready");
    let (forked, in_cgroup) = sys::fork_with_flags(0, cgroup_fd.as_ref().map(|fd| fd.as_raw_fd()))
        .map_err(|e| ContainerError::Create(format!("clone: {e}")))?;
    // A host directory: neither side needs it after clone3, and the child must not carry it
    // towards the container (CVE-2024-21626).
    drop(cgroup_fd);
    let child = match forked {
        Forked::Child => {
            drop(parent_ch);
            let ctx = InitContext {
                // A systemd scope is started with init in it, by the parent, below.
                cgroup: cgroup.systemd_unit().is_none().then_some(&cgroup),
                in_cgroup,
                spec: &spec,
                id: &opts.id,
                bundle: &bundle,
                rootfs: &rootfs,
                channel: &child_ch,
                joins: &joins,
                fifo: &fifo,
                console: console.as_ref(),
                own_console,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds,
                extra_env: &extra_env,
                idmap: &idmaps,
                host_trees: &host_trees,
            };
            init::child_main(&ctx)
        }
        Forked::Parent(pid) => pid,
    };
    cleanup.pids.push(child);
    crate::fault::point("create:after-fork");
    drop(child_ch);
    drop(console);
    if cgroup.systemd_unit().is_some() {
        start_unit(&cgroup, &spec, child)?;
    }
    let init_pid = drive_child(&spec, &opts.id, &bundle, child, &parent_ch, &mut cleanup)?;
    trace::mark("create: init ready");

    let pid_start = sys::proc_stat(init_pid.as_raw())
        .map(|s| s.start_time)
        .ok_or_else(|| ContainerError::Create("init exited during create".into()))?;
    let st = ContainerState {
        id: opts.id.clone(),
        pid: init_pid.as_raw(),
        pid_start,
        bundle: bundle.clone(),
        rootfs,
        created: state::created_now(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: owner_name(),
        started: false,
        cgroup: Some(cgroup),
        config: spec,
    };
    st.save(&opts.root)?;
    crate::fault::point("create:after-state");
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, init_pid)?;
    }
    send_pidfd(pidfd_sock.as_ref(), init_pid)?;
    cleanup.armed = false;
    trace::mark("create: state saved");
    Ok(Created { pid: init_pid })
}

fn connect_pidfd_socket(path: Option<&Path>) -> Result<Option<OwnedFd>> {
    path.map(|p| {
        console::connect_socket(p)
            .map_err(|e| ContainerError::Create(format!("--pidfd-socket: {e}")))
    })
    .transpose()
}

/// Hand a pidfd of `pid` to whoever listens on the --pidfd-socket (runc's protocol).
fn send_pidfd(sock: Option<&OwnedFd>, pid: Pid) -> Result<()> {
    let Some(sock) = sock else {
        return Ok(());
    };
    let pidfd =
        sys::pidfd_open(pid).map_err(|e| ContainerError::Create(format!("pidfd of {pid}: {e}")))?;
    console::send_fd(sock, pidfd.as_fd(), "pidfd")
        .map_err(|e| ContainerError::Create(format!("--pidfd-socket: {e}")))
}

/// The cgroup of a container being created, recorded in its state dir before it is made: a
/// runz killed before state.json exists leaves this for `delete --force` to find.
const CREATING_CGROUP: &str = "creating-cgroup.json";

pub(super) fn make_cgroup(spec: &Spec, id: &str, dir: &Path, systemd: bool) -> Result<Cgroup> {
    let path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let mut cg = if systemd {
        let props = zones_cgroup::systemd::property_annotations(
            spec.annotations().iter().flat_map(|a| a.keys()),
        );
        if !props.is_empty() {
            return Err(ContainerError::Cgroup(format!(
                "annotations {}: extra systemd unit properties are not supported by runz's \
                 systemd cgroup driver",
                props.join(", ")
            )));
        }
        Cgroup::resolve_systemd(path.as_deref(), id)
    } else {
        Cgroup::resolve(path.as_deref(), id)
    }
    .map_err(|e| ContainerError::Cgroup(e.to_string()))?;
    let record = serde_json::to_vec(&cg).map_err(|e| ContainerError::Cgroup(e.to_string()))?;
    state::write_atomic(&dir.join(CREATING_CGROUP), &record)
        .map_err(|e| ContainerError::Create(format!("{}: {e}", dir.display())))?;
    if cg.systemd_unit().is_some() {
        // systemd makes the scope's cgroup when it starts the unit with init in it.
        return Ok(cg);
    }
    cg.create()
        .map_err(|e| ContainerError::Cgroup(e.to_string()))?;
    // A cgroup someone froze beforehand would hold init at its first step for ever: fail at
    // once, in runc's words.
    if cg.is_frozen().unwrap_or(false) {
        let _ = cg.remove();
        return Err(ContainerError::Create(
            "container's cgroup unexpectedly frozen".into(),
        ));
    }
    // Another's processes in it: runc 1.1 goes on with these two warnings (its words). Only a
    // cgroup that was there already can hold any (nothing to read for a fresh one).
    let found = if cg.existed_before() {
        cg.pids().map(|p| p.len()).unwrap_or(0)
    } else {
        0
    };
    if found > 0 {
        crate::log::warn(&format!(
            "container's cgroup is not empty: {found} process(es) found"
        ));
        crate::log::warn(
            "DEPRECATED: running container in a non-empty cgroup won't be supported in runc 1.2; \
             https://github.com/opencontainers/runc/issues/3132",
        );
    }
    if let Err(e) = cg.apply(&spec::resources(spec)) {
        let _ = cg.remove();
        return Err(ContainerError::Cgroup(e.to_string()));
    }
    Ok(cg)
}

/// The systemd driver's half of `make_cgroup`, once init is forked and before it may go on:
/// start the scope with init in it, then set the resources (unit properties, then files).
fn start_unit(cg: &Cgroup, spec: &Spec, init: Pid) -> Result<()> {
    cg.start_unit(init.as_raw())
        .map_err(|e| ContainerError::Cgroup(e.to_string()))?;
    cg.apply(&spec::resources(spec))
        .map_err(|e| ContainerError::Cgroup(e.to_string()))
}

fn make_fifo(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(state::EXEC_FIFO);
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o622))
        .map_err(|e| ContainerError::Create(format!("mkfifo {}: {e}", path.display())))?;
    // Not subject to our umask: init may have switched to any user by the time it opens it.
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| ContainerError::Create(format!("chmod {}: {e}", path.display())))?;
    let fd = open(&path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| ContainerError::Create(format!("open {}: {e}", path.display())))?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Socket activation: fds named by LISTEN_FDS are passed on too, and the process is told so.
fn listen_fds(preserve: i32) -> (i32, Vec<String>) {
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        Some(n) if n > 0 => (
            preserve + n,
            vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".to_string()],
        ),
        _ => (preserve, Vec::new()),
    }
}

/// The parent's side of the handshake, until init reports `Ready`. Returns init's pid.
/// (The child joins its cgroup itself: see `zones_cgroup::Cgroup::join_self`.)
fn drive_child(
    spec: &Spec,
    id: &str,
    bundle: &Path,
    child: Pid,
    ch: &Channel,
    cleanup: &mut Cleanup,
) -> Result<Pid> {
    let fail = |m: String| ContainerError::Create(m);
    let process = spec.process().as_ref().expect("validated");
    if let Some(limits) = process.rlimits() {
        rlimits::apply(child, limits).map_err(|e| fail(e.to_string()))?;
    }
    if let Some(adj) = process.oom_score_adj() {
        fs::write(
            format!("/proc/{}/oom_score_adj", child.as_raw()),
            adj.to_string(),
        )
        .map_err(|e| fail(format!("set oom_score_adj {adj}: {e}")))?;
    }
    ch.send(&Msg::Go).map_err(|e| fail(e.to_string()))?;
    let mut init_pid = child;
    loop {
        let (msg, fd) = match ch.recv_with_fd() {
            Ok(m) => m,
            Err(e) => return Err(fail(e.to_string())),
        };
        match msg {
            Msg::SeccompFd => {
                let state = hook_state(id, init_pid.as_raw(), "creating", bundle, spec);
                seccomp_to_agent(spec, fd, &state, init_pid, ch)?;
            }
            Msg::WriteIdMaps => {
                let linux = spec.linux().as_ref();
                let uid = linux
                    .and_then(|l| l.uid_mappings().clone())
                    .unwrap_or_default();
                let gid = linux
                    .and_then(|l| l.gid_mappings().clone())
                    .unwrap_or_default();
                namespaces::write_id_maps(child, &uid, &gid).map_err(|e| fail(e.to_string()))?;
                ch.send(&Msg::Go).map_err(|e| fail(e.to_string()))?;
            }
            Msg::InitPid(p) => {
                init_pid = Pid::from_raw(p);
                cleanup.pids.push(init_pid);
                // The intermediate process exits once it has forked init.
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, 0)) => {}
                    other => return Err(fail(format!("intermediate process: {other:?}"))),
                }
                cleanup.pids.retain(|p| *p != child);
            }
            Msg::RunHooks => {
                let state = hook_state(id, init_pid.as_raw(), "creating", bundle, spec);
                let r = run_runtime_hooks(spec, &state);
                match r {
                    Ok(()) => ch.send(&Msg::HooksDone).map_err(|e| fail(e.to_string()))?,
                    Err(e) => {
                        let _ = ch.send(&Msg::Error(e.to_string()));
                        return Err(e);
                    }
                }
            }
            Msg::Ready => return Ok(init_pid),
            Msg::Error(e) => return Err(fail(format!("unable to start container process: {e}"))),
            Msg::Go | Msg::HooksDone => return Err(fail(format!("unexpected {msg:?} from init"))),
        }
    }
}

/// Hand the seccomp notify listener a process sent with `SeccompFd` to the profile's agent,
/// then let the process go on (`Go`), or stop it (`Error`) and fail with runc's words.
fn seccomp_to_agent(
    spec: &Spec,
    fd: Option<OwnedFd>,
    state: &str,
    pid: Pid,
    ch: &Channel,
) -> Result<()> {
    let fail =
        |m: String| ContainerError::Create(format!("unable to start container process: {m}"));
    let handed = match (spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()), fd) {
        (Some(profile), Some(fd)) => {
            super::agent::hand_over(profile, fd, state, pid.as_raw()).map_err(|e| e.to_string())
        }
        _ => Err("seccomp listener fd missing".to_string()),
    };
    match handed {
        Ok(()) => ch.send(&Msg::Go).map_err(|e| fail(e.to_string())),
        Err(e) => {
            let _ = ch.send(&Msg::Error(e.clone()));
            Err(fail(e))
        }
    }
}

#[allow(deprecated)]
fn run_runtime_hooks(spec: &Spec, state: &str) -> Result<()> {
    let Some(h) = spec.hooks().as_ref() else {
        return Ok(());
    };
    for (kind, list) in [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
    ] {
        if let Some(list) = list {
            hooks::run(kind, list, state).map_err(|e| ContainerError::Hook(e.to_string()))?;
        }
    }
    Ok(())
}

/// Write the pid file as runc does: the digits into `.NAME` beside it, renamed over `NAME`, and
/// runc's words when that fails (`open /dir/.NAME: no such file or directory`).
pub(super) fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}"));
    let fail = |op: &str, e: std::io::Error| {
        ContainerError::Create(format!("{op} {}: {}", tmp.display(), errno::io_text(&e)))
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(|e| fail("open", e))?;
    if let Err(e) = f.write_all(pid.as_raw().to_string().as_bytes()) {
        let _ = fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ContainerError::Create(format!(
            "rename {} {}: {}",
            tmp.display(),
            path.display(),
            errno::io_text(&e)
        ))
    })
}

/// The caller's user name from /etc/passwd (read directly: going through NSS costs dozens of
/// file opens on every create), or the uid.
pub(super) fn owner_name() -> String {
    let uid = nix::unistd::getuid().as_raw();
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| user_name_of(&text, uid))
        .unwrap_or_else(|| uid.to_string())
}

fn user_name_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// Load a container and its live status.
pub fn state(root: &Path, id: &str) -> Result<(ContainerState, Status)> {
    let st = ContainerState::load(root, id)?;
    let status = st.status(root);
    Ok((st, status))
}

/// All containers under `root` with their status. Unreadable ones are skipped.
pub fn list(root: &Path) -> Vec<(ContainerState, Status)> {
    state::list_ids(root)
        .into_iter()
        .filter_map(|id| state(root, &id).ok())
        .collect()
}

/// Release init from the exec fifo so it runs the user process; then the poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    trace::mark("start: begin");
    let _lock = state::lock(root, id)?;
    let (mut st, status) = state(root, id)?;
    if status != Status::Created {
        return Err(ContainerError::NotCreated {
            id: id.to_string(),
            status,
        });
    }
    // The pidfd first: opening the fifo releases init, which may exec a short command and be
    // gone before a pidfd taken afterwards (a start that ran the process, then said "not
    // running"). Once held, the pidfd stays pollable after init exits.
    let pidfd = sys::pidfd_open(Pid::from_raw(st.pid)).map_err(|_| ContainerError::NotRunning)?;
    let fifo_path = state::dir(root, id).join(state::EXEC_FIFO);
    let fifo = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::Create(format!("open exec fifo: {e}")))?;
    // SAFETY: `open` just returned this fd and nothing else owns it.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    wait_released(&fifo, &pidfd)?;
    trace::mark("start: init released");
    // The status is "created" only while the fifo exists, so removing it is what records the
    // start; state.json is rewritten only when the fifo cannot be removed.
    if fs::remove_file(&fifo_path).is_err() {
        st.started = true;
        st.save(root)?;
    }
    if let Some(list) = st
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
    {
        let hs = hook_state(id, st.pid, "running", &st.bundle, &st.config);
        if let Err(e) = hooks::run("poststart", &list, &hs) {
            let _ = kill(root, id, libc::SIGKILL, true);
            return Err(ContainerError::Hook(e.to_string()));
        }
    }
    Ok(())
}

/// Wait until init has written its byte into the fifo, or has died.
fn wait_released(fifo: &OwnedFd, pidfd: &OwnedFd) -> Result<()> {
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ContainerError::Create(format!("poll exec fifo: {e}"))),
            Ok(_) => {}
        }
        let fifo_ready = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if fifo_ready {
            let mut b = [0u8; 1];
            match nix::unistd::read(fifo.as_raw_fd(), &mut b) {
                Ok(1) if b[0] == b'0' => return Ok(()),
                Err(nix::Error::EAGAIN) => continue,
                other => {
                    return Err(ContainerError::Create(format!(
                        "exec fifo: unexpected read {other:?}"
                    )))
                }
            }
        }
        if init_gone {
            return Err(ContainerError::Create(
                "the container's init exited before start".into(),
            ));
        }
    }
}

/// Send `sig` to init, or with `all` to every process in the container's cgroup (which also
/// works after init has exited, for leftovers). SIGKILL to a container without a PID
/// namespace of its own goes to every process too: there killing init does not end the rest
/// (runc 1.2's rule), also once init is gone.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (st, status) = state(root, id)?;
    let shares_pids = !spec::new_namespace(&st.config, oci_spec::runtime::LinuxNamespaceType::Pid);
    let all = all
        || (sig == libc::SIGKILL
            && shares_pids
            && (status != Status::Stopped
                || st
                    .cgroup
                    .as_ref()
                    .is_some_and(|c| c.pids().is_ok_and(|p| !p.is_empty()))));
    if all {
        if let Some(cg) = &st.cgroup {
            return cg
                .kill_all(sig)
                .map_err(|e| ContainerError::Signal(format!("kill --all: {e}")));
        }
    }
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    let pidfd = sys::pidfd_open(Pid::from_raw(st.pid)).map_err(|_| ContainerError::NotRunning)?;
    if !st.init_alive() {
        return Err(ContainerError::NotRunning);
    }
    sys::pidfd_send_signal(&pidfd, sig).map_err(|e| {
        if e.raw_os_error() == Some(libc::ESRCH) {
            ContainerError::NotRunning
        } else {
            ContainerError::Signal(format!("kill {} with signal {sig}: {e}", st.pid))
        }
    })
}

/// Delete a stopped container (or, with `force`, any). Unknown ids are fine with `force`.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    trace::mark("delete: begin");
    let lock = match state::lock(root, id) {
        Ok(l) => l,
        Err(StateError::NotExist) if force => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let (st, status) = match state(root, id) {
        Ok(s) => s,
        Err(ContainerError::State(StateError::NotExist)) if force => {
            // A create that died half-way: the directory, and maybe the cgroup it recorded
            // (with a half-made init in it).
            let dir = state::dir(root, id);
            if let Some(cg) = fs::read(dir.join(CREATING_CGROUP))
                .ok()
                .and_then(|b| serde_json::from_slice::<Cgroup>(&b).ok())
            {
                let _ = cg.kill_all(libc::SIGKILL);
                cg.remove().map_err(|e| {
                    ContainerError::Cgroup(format!("remove cgroup of half-made {id}: {e}"))
                })?;
            }
            // A restore killed half-way may have left the rootfs bound there for CRIU.
            super::checkpoint::release_criu_root(&dir);
            let _ = fs::remove_dir_all(dir);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match status {
        Status::Stopped => {}
        Status::Created => stop_now(&st)?,
        Status::Running | Status::Paused | Status::Creating if force => stop_now(&st)?,
        _ => {
            return Err(ContainerError::NotStopped {
                id: id.to_string(),
                status,
            })
        }
    }
    // As runc: every process of the cgroup is killed only when the container has no PID
    // namespace of its own (with one, they died with init; others in the cgroup are not the
    // container's). A cgroup that cannot be removed (someone else's processes are in it) does
    // not stop the rest of the cleanup; its error is returned at the end.
    let mut cgroup_err = None;
    if let Some(cg) = &st.cgroup {
        if !spec::new_namespace(&st.config, oci_spec::runtime::LinuxNamespaceType::Pid) {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        if let Err(e) = cg.remove() {
            cgroup_err = Some(ContainerError::Cgroup(format!(
                "remove cgroup of {id}: {e}"
            )));
        }
    }
    if let Some(list) = st
        .config
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
    {
        let hs = hook_state(id, 0, "stopped", &st.bundle, &st.config);
        // Every poststop hook runs: one failing does not stop the others' cleanup.
        for e in hooks::run_all("poststop", &list, &hs) {
            crate::log::warn(&e.to_string());
        }
    }
    super::checkpoint::release_criu_root(&state::dir(root, id));
    fs::remove_dir_all(state::dir(root, id)).map_err(|e| StateError::Io {
        id: id.to_string(),
        reason: format!("remove state directory: {e}"),
    })?;
    drop(lock);
    trace::mark("delete: done");
    cgroup_err.map_or(Ok(()), Err)
}

/// SIGKILL everything in the container (thawing it if paused) and wait for init to be gone.
fn stop_now(st: &ContainerState) -> Result<()> {
    if let Some(cg) = &st.cgroup {
        let _ = cg.kill_all(libc::SIGKILL);
        let _ = cg.thaw();
    }
    let pidfd = sys::pidfd_open(Pid::from_raw(st.pid)).ok();
    if let Some(fd) = &pidfd {
        if st.init_alive() {
            let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.init_alive() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ContainerError::Signal(format!(
                "init {} of {} did not exit after SIGKILL",
                st.pid, st.id
            )));
        }
        // The pidfd turns readable the moment init exits, so the wait ends then rather than
        // at the next tick of a sleep loop; init_alive decides, at least every 100 ms (1 ms
        // without a pidfd).
        match &pidfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let ms = left.as_millis().min(100) as u16;
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            None => std::thread::sleep(left.min(Duration::from_millis(1))),
        }
    }
    Ok(())
}

/// The process signals are passed on to while runz waits in the foreground.
static FORWARD_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = FORWARD_TO.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; pid is a plain integer.
        unsafe { libc::kill(pid, sig) };
    }
}

/// From now on, pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 that runz receives on
/// to `pid`, as runc does in the foreground.
pub fn forward_signals(pid: Pid) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    FORWARD_TO.store(pid.as_raw(), std::sync::atomic::Ordering::Relaxed);
    let act = SigAction::new(
        SigHandler::Handler(forward_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only loads an atomic and calls kill(2), both async-signal-safe.
        let _ = unsafe { sigaction(sig, &act) };
    }
}

/// Wait for init (our child) in the foreground, passing on termination signals, and return
/// its exit code the way a shell reports it (128+n for a signal).
pub fn wait_foreground(pid: Pid) -> i32 {
    forward_signals(pid);
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// What `exec` runs inside a container.
pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: oci_spec::runtime::Process,
    pub console_socket: Option<PathBuf>,
    pub console_fd: Option<OwnedFd>,
    pub pidfd_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// `--cgroup [CONTROLLER:]PATH`: existing sub-cgroups of the container's to run in (runc).
    pub sub_cgroups: Vec<String>,
}

/// Run another process in a running container: it joins every namespace and the cgroup of the
/// container and gets the identity, capabilities and seccomp filter of `opts.process`. Returns
/// once the process has called execve (or with the reason it could not).
pub fn exec(opts: ExecOpts) -> Result<Pid> {
    let (st, status) = state(&opts.root, &opts.id)?;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(ContainerError::Create(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => return Err(ContainerError::NotRunning),
    }
    let process = &opts.process;
    check_process(process)?;
    let terminal = process.terminal().unwrap_or(false);
    let has_console = opts.console_socket.is_some() || opts.console_fd.is_some();
    if terminal != has_console {
        return Err(ContainerError::Create(if terminal {
            "process.terminal is true but no --console-socket was given to receive the pty".into()
        } else {
            "--console-socket was given but process.terminal is false".into()
        }));
    }
    let own_console = opts.console_fd.is_some();
    let console = match (opts.console_fd, &opts.console_socket) {
        (Some(fd), _) => Some(fd),
        (None, Some(path)) => {
            Some(console::connect_socket(path).map_err(|e| ContainerError::Create(e.to_string()))?)
        }
        (None, None) => None,
    };
    let pidfd_sock = connect_pidfd_socket(opts.pidfd_socket.as_deref())?;
    let (joins, enter_pid_ns) = container_namespaces(&st)?;
    if !st.init_alive() {
        return Err(ContainerError::NotRunning);
    }
    let (parent_ch, child_ch) =
        process::pair().map_err(|e| ContainerError::Create(e.to_string()))?;
    let (preserve_fds, extra_env) = listen_fds(opts.preserve_fds);
    let cgroup = match &st.cgroup {
        Some(cg) if !opts.sub_cgroups.is_empty() => Some(sub_cgroup(cg, &opts.sub_cgroups)?),
        other => other.clone(),
    };
    let cgroup_fd = cgroup.as_ref().and_then(|c| c.clone_into_fd());
    let (forked, in_cgroup) = sys::fork_with_flags(0, cgroup_fd.as_ref().map(|fd| fd.as_raw_fd()))
        .map_err(|e| ContainerError::Create(format!("clone: {e}")))?;
    // A host directory: neither side needs it after clone3, and the child must not carry it
    // towards the container (CVE-2024-21626).
    drop(cgroup_fd);
    let child = match forked {
        Forked::Child => {
            drop(parent_ch);
            let ctx = init::ExecContext {
                cgroup: cgroup.as_ref(),
                in_cgroup,
                spec: &st.config,
                process,
                channel: &child_ch,
                joins: &joins,
                enter_pid_ns,
                console: console.as_ref(),
                own_console,
                preserve_fds,
                extra_env: &extra_env,
            };
            init::exec_child_main(&ctx)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_ch);
    drop(console);
    let mut pids = vec![child];
    let result = drive_exec((&st, status), process, child, &parent_ch, &mut pids);
    match result {
        Ok(pid) => {
            // As runc: a process whose pid cannot be recorded or handed over is killed.
            let handed = match &opts.pid_file {
                Some(pf) => write_pid_file(pf, pid),
                None => Ok(()),
            }
            .and_then(|()| send_pidfd(pidfd_sock.as_ref(), pid));
            if let Err(e) = handed {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(e);
            }
            Ok(pid)
        }
        Err(e) => {
            for p in pids {
                let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
                let _ = waitpid(p, None);
            }
            Err(e)
        }
    }
}

/// The container's cgroup with `--cgroup` applied: `PATH` moves every hierarchy to that
/// sub-cgroup, `CONTROLLER:PATH` only the hierarchy of that controller (`:PATH` or a bare
/// PATH on cgroup v2: the unified one). The sub-cgroups must exist, as with runc.
fn sub_cgroup(cg: &Cgroup, subs: &[String]) -> Result<Cgroup> {
    let bad = |m: String| ContainerError::Create(format!("--cgroup: {m}"));
    let mut v = serde_json::to_value(cg).map_err(|e| bad(e.to_string()))?;
    let hierarchies = v
        .get_mut("hierarchies")
        .and_then(|h| h.as_array_mut())
        .ok_or_else(|| bad("the container's cgroup has no hierarchies".into()))?;
    for spec in subs {
        let (ctrl, path) = match spec.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, spec.as_str()),
        };
        let rel = Path::new(path);
        if path.is_empty()
            || rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(bad(format!(
                "{spec:?}: the sub-cgroup must be a relative path without \"..\""
            )));
        }
        let mut matched = false;
        for h in hierarchies.iter_mut() {
            let controllers: Vec<&str> = h["controllers"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str()).collect())
                .unwrap_or_default();
            let v2 = h["v2"].as_bool().unwrap_or(false);
            let applies = match ctrl {
                None => true,
                Some("") => v2,
                Some(c) => controllers.contains(&c),
            };
            if !applies {
                continue;
            }
            matched = true;
            for key in ["dir", "path"] {
                let joined = Path::new(h[key].as_str().unwrap_or("")).join(rel);
                h[key] = serde_json::json!(joined);
            }
            h["created"] = serde_json::json!([]);
            let dir = h["dir"].as_str().unwrap_or("").to_string();
            if !Path::new(&dir).is_dir() {
                return Err(bad(format!("{spec:?}: {dir} does not exist")));
            }
        }
        if !matched {
            return Err(bad(format!("{spec:?}: no such controller")));
        }
    }
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

fn check_process(p: &oci_spec::runtime::Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::Invalid("process.args must not be empty".into()).into());
    }
    if !p.cwd().is_absolute() {
        return Err(SpecError::Invalid(format!(
            "process.cwd {:?} must be an absolute path",
            p.cwd()
        ))
        .into());
    }
    if let Some(limits) = p.rlimits() {
        rlimits::validate(limits).map_err(|e| SpecError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// The namespaces of a running container to join (user first), and whether a PID or time
/// namespace among them needs the extra fork.
fn container_namespaces(st: &ContainerState) -> Result<(Vec<namespaces::ToJoin>, bool)> {
    let mut specs = Vec::new();
    for ns in spec::namespaces(&st.config) {
        let path = PathBuf::from(format!(
            "/proc/{}/ns/{}",
            st.pid,
            namespaces::proc_name(ns.typ())
        ));
        if namespaces::is_own(&path, ns.typ()) {
            continue;
        }
        let mut n = ns.clone();
        n.set_path(Some(path));
        specs.push(n);
    }
    let joins =
        namespaces::open_joins(&specs).map_err(|e| ContainerError::Create(e.to_string()))?;
    let fork = joins.iter().any(|j| {
        matches!(
            j.typ,
            oci_spec::runtime::LinuxNamespaceType::Pid
                | oci_spec::runtime::LinuxNamespaceType::Time
        )
    });
    Ok((joins, fork))
}

fn drive_exec(
    (st, status): (&ContainerState, Status),
    process: &oci_spec::runtime::Process,
    child: Pid,
    ch: &Channel,
    pids: &mut Vec<Pid>,
) -> Result<Pid> {
    let fail = |m: String| ContainerError::Create(m);
    if let Some(a) = process.exec_cpu_affinity() {
        super::sched::set_initial_affinity(child.as_raw(), a).map_err(|e| fail(e.to_string()))?;
    }
    if let Some(limits) = process.rlimits() {
        rlimits::apply(child, limits).map_err(|e| fail(e.to_string()))?;
    }
    if let Some(adj) = process.oom_score_adj() {
        fs::write(
            format!("/proc/{}/oom_score_adj", child.as_raw()),
            adj.to_string(),
        )
        .map_err(|e| fail(format!("set oom_score_adj {adj}: {e}")))?;
    }
    ch.send(&Msg::Go).map_err(|e| fail(e.to_string()))?;
    let mut pid = child;
    let mut ready = false;
    loop {
        match ch.recv_with_fd() {
            Ok((Msg::SeccompFd, fd)) => {
                let status = status.to_string();
                let state = hook_state(&st.id, st.pid, &status, &st.bundle, &st.config);
                seccomp_to_agent(&st.config, fd, &state, pid, ch)?;
            }
            Ok((Msg::InitPid(p), _)) => {
                pid = Pid::from_raw(p);
                pids.push(pid);
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, 0)) => {}
                    other => return Err(fail(format!("exec intermediate process: {other:?}"))),
                }
                pids.retain(|p| *p != child);
            }
            Ok((Msg::Ready, _)) => ready = true,
            Ok((Msg::Error(e), _)) => {
                return Err(fail(format!("unable to start container process: {e}")))
            }
            Ok((other, _)) => return Err(fail(format!("unexpected {other:?} from exec"))),
            // The channel closes on execve: the process runs.
            Err(process::ChannelError::Eof) if ready => return Ok(pid),
            Err(e) => return Err(fail(e.to_string())),
        }
    }
}

/// Freeze every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (st, status) = state(root, id)?;
    if !matches!(status, Status::Running | Status::Created) {
        return Err(ContainerError::NotRunning);
    }
    cgroup_of(&st)?
        .freeze()
        .map_err(|e| ContainerError::Cgroup(format!("pause {id}: {e}")))
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (st, status) = state(root, id)?;
    if status != Status::Paused {
        return Err(ContainerError::Create(format!(
            "cannot resume container {id}: it is {status}, not paused"
        )));
    }
    cgroup_of(&st)?
        .thaw()
        .map_err(|e| ContainerError::Cgroup(format!("resume {id}: {e}")))
}

/// Host pids of every process in the container.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (st, _) = state(root, id)?;
    cgroup_of(&st)?
        .pids()
        .map_err(|e| ContainerError::Cgroup(e.to_string()))
}

/// Apply new resource limits to a created, running or paused container, and remember them.
pub fn update(root: &Path, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let _lock = state::lock(root, id)?;
    let (mut st, status) = state(root, id)?;
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    let cg = cgroup_of(&st)?;
    let current = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone());
    let merged = merge_resources(current.unwrap_or_default(), res);
    // systemd sets a unit's resources as a whole (libcgroups sends CPUQuota=max when a cpu
    // update has no quota): give it everything, as runc's update does.
    let apply = if cg.systemd_unit().is_some() {
        &merged
    } else {
        res
    };
    cg.apply(apply)
        .map_err(|e| ContainerError::Cgroup(format!("update {id}: {e}")))?;
    if let Some(linux) = st.config.linux_mut() {
        linux.set_resources(Some(merged));
    }
    st.save(root)?;
    Ok(())
}

/// `base` with every field that `new` sets replaced.
fn merge_resources(
    mut base: oci_spec::runtime::LinuxResources,
    new: &oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    if new.memory().is_some() {
        base.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        base.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        base.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        base.set_block_io(new.block_io().clone());
    }
    if new.hugepage_limits().is_some() {
        base.set_hugepage_limits(new.hugepage_limits().clone());
    }
    if new.network().is_some() {
        base.set_network(new.network().clone());
    }
    if new.unified().is_some() {
        base.set_unified(new.unified().clone());
    }
    base
}

/// Resource usage of the container, in runc's `events --stats` shape.
pub fn stats(root: &Path, id: &str) -> Result<zones_cgroup::Stats> {
    let (st, status) = state(root, id)?;
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    cgroup_of(&st)?
        .stats()
        .map_err(|e| ContainerError::Cgroup(e.to_string()))
}

/// Stats and the OOM-kill count together, for `events` in streaming mode.
pub fn stats_and_ooms(root: &Path, id: &str) -> Result<(zones_cgroup::Stats, u64)> {
    let (st, status) = state(root, id)?;
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    let cg = cgroup_of(&st)?;
    let stats = cg
        .stats()
        .map_err(|e| ContainerError::Cgroup(e.to_string()))?;
    Ok((stats, cg.oom_kills()))
}

fn cgroup_of(st: &ContainerState) -> Result<&Cgroup> {
    st.cgroup
        .as_ref()
        .ok_or_else(|| ContainerError::Cgroup(format!("container {} has no cgroup", st.id)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_is_looked_up_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nzone:x:1000:1000::/home/zone:/bin/sh\n";
        assert_eq!(super::user_name_of(passwd, 1000).as_deref(), Some("zone"));
        assert_eq!(super::user_name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(super::user_name_of(passwd, 7), None);
    }

    #[test]
    fn hook_state_has_runcs_key_order_and_omits_empty_fields() {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"annotations":{"a":"b"}}"#,
        )
        .unwrap();
        let s = super::hook_state("c1", 42, "creating", std::path::Path::new("/b"), &spec);
        assert_eq!(
            s,
            format!(
                r#"{{"ociVersion":"{}","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{{"a":"b"}}}}"#,
                super::spec::OCI_VERSION
            )
        );
        let spec: oci_spec::runtime::Spec =
            serde_json::from_str(r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"}}"#).unwrap();
        let s = super::hook_state("c1", 0, "stopped", std::path::Path::new("/b"), &spec);
        assert!(s.ends_with(r#""status":"stopped","bundle":"/b"}"#), "{s}");
    }
}
