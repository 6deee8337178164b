//! zoneadmd: the supervisor of one zone.
//!
//! One small single-threaded process per ready or running zone, started by `zoneadm ready` or
//! `zoneadm boot` and detached from it. It is the parent of the zone's init (the engine forks
//! init with CLONE_PARENT), so it reaps it and knows how it ended; it owns the console pty and
//! keeps the last 64 KiB of output for `zlogin -C` clients, who may come and go and stay
//! attached across reboots; it answers halt/shutdown/reboot requests on `control.sock`; and it
//! keeps the zone's state in the store true.
//!
//! A zone's init ending by SIGHUP means reboot(2) was called inside the zone (the kernel's
//! answer to a reboot in a PID namespace): the zone boots again. Any other end takes the zone
//! down to installed, and the supervisor exits.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use zones::model::Brand;
use zones::state::ZoneState;
use zones::store::Store;

use super::control::{parse_request, reply_line, Reply, Request};
use super::{delegation, engine, free_zoneid, kvm, metadata, network, ZoneInfo, ZonePaths};

/// How much recent console output a newly attached console client is shown.
const RING: usize = 64 * 1024;
/// How long a booting init may go without forking before the boot counts as taken.
const BOOT_SETTLE: Duration = Duration::from_secs(3);
/// How long a halt waits for the zone's processes to die after SIGKILL.
const HALT_WAIT: Duration = Duration::from_secs(10);
/// How long a halted VM's qemu has to quit (QMP `quit`) before it is killed.
const VM_QUIT_WAIT: Duration = Duration::from_secs(5);
/// How long a VM's qemu must stay up for its boot to count as taken.
const VM_SETTLE: Duration = Duration::from_millis(1500);
/// How long (ms) the event loop must be idle after a (re)boot before zoneadmd sheds the
/// memory setting the zone up touched: by then the zone's first console output has been
/// pumped.
const IDLE_SHED: u16 = 50;
/// How long (ms) it must be idle after a later burst of events (console output, requests)
/// before it sheds again: long enough that a chatty console does not make it shed (read its
/// smaps, fault its code back in) many times a second.
const IDLE_RESHED: u16 = 1000;

/// What the supervisor does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Set up the zone; init waits for `boot`.
    Ready,
    /// Set up and start init.
    Boot,
}

/// What happens when init ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterExit {
    Down,
    Reboot,
}

struct Supervisor {
    store: Store,
    paths: ZonePaths,
    boot_args: Option<Vec<String>>,
    info: ZoneInfo,
    init: Option<Pid>,
    started: bool,
    master: Option<OwnedFd>,
    ring: VecDeque<u8>,
    clients: Vec<UnixStream>,
    control: UnixListener,
    console: UnixListener,
    /// The zone's metadata socket and its clients (bind-mounted into the zone, see `metadata`).
    metadata: metadata::Server,
    /// Requests answered when the zone is down (halt, shutdown) or back up (reboot).
    waiting: Vec<UnixStream>,
    /// What was asked for when init ends; with no request, init's own way of ending decides.
    after_exit: Option<AfterExit>,
    deadline: Option<Instant>,
    done: bool,
    /// A whole system boots (brand linux), not one program (brand app): its init must get
    /// going before the boot is reported done.
    whole_system: bool,
    /// Set after (re)booting ([`IDLE_SHED`]) and after events ([`IDLE_RESHED`]): once the
    /// loop has been idle for that many ms, give back the memory they touched (see
    /// `zone::shed`).
    shed_after: Option<u16>,
    /// `add dataset`: datasets are (being) delegated: `delegation`'s record and pinned namespace are there.
    delegating: bool,
}

/// Start a supervisor for `name`, detached from the caller (double fork + setsid), and wait
/// until the zone is ready or booted, or until it reports why not.
///
/// The caller must be single-threaded: the supervisor is a fork of it, not an exec.
pub fn spawn(
    store: &Store,
    name: &str,
    mode: StartMode,
    boot_args: Option<Vec<String>>,
) -> Result<(), String> {
    let paths = ZonePaths::new(store, name);
    fs::create_dir_all(&paths.run).map_err(|e| format!("{}: {e}", paths.run.display()))?;
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // SAFETY: the caller is single-threaded (zoneadm has no threads), so the child may run
    // arbitrary code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(rd);
            let _ = nix::unistd::setsid();
            // SAFETY: as above; the grandchild becomes the supervisor, the child exits at once
            // so the supervisor is adopted by init (or the nearest subreaper).
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    let code = run(store.clone(), paths, mode, boot_args, wr);
                    // SAFETY: leave without running the parent's destructors twice.
                    unsafe { libc::_exit(code) }
                }
                Ok(nix::unistd::ForkResult::Parent { child }) => {
                    // Who the supervisor is, so the caller can tell when it dies without
                    // reporting (one short write: atomic, never interleaved with its lines).
                    let _ = nix::unistd::write(&wr, format!("pid {child}\n").as_bytes());
                    // SAFETY: as above.
                    unsafe { libc::_exit(0) }
                }
                // SAFETY: as above.
                Err(_) => unsafe { libc::_exit(0) },
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(wr);
            let _ = waitpid(child, None);
            await_report(rd, name, &paths)
        }
    }
}

/// The supervisor's report: one line, `ok` or `error MSG`, after a `pid N` line from the
/// intermediate child. Not EOF: a ready zone's init (forked by the supervisor, not yet exec'd)
/// still holds the write end, so a supervisor killed after creating the container would leave
/// the caller waiting for ever; its pid is watched instead.
fn await_report(rd: OwnedFd, name: &str, paths: &ZonePaths) -> Result<(), String> {
    let died = || {
        format!(
            "zoneadmd of zone '{name}' exited before reporting; see {}",
            paths.log_file().display()
        )
    };
    let mut reader = BufReader::new(fs::File::from(rd));
    let mut supervisor: Option<i32> = None;
    loop {
        if reader.buffer().is_empty() {
            let mut fds = [PollFd::new(reader.get_ref().as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => {
                    if supervisor.is_some_and(|p| !process_alive(p)) {
                        return Err(died());
                    }
                    continue;
                }
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(format!("zoneadmd of zone '{name}': poll: {e}")),
            }
        }
        let mut msg = String::new();
        if reader.read_line(&mut msg).is_err() {
            return Err(died());
        }
        match msg.trim() {
            "ok" => return Ok(()),
            "" => return Err(died()),
            l if l.starts_with("pid ") => supervisor = l[4..].parse().ok(),
            other => {
                return Err(unprefixed(
                    name,
                    other.strip_prefix("error ").unwrap_or(other),
                ))
            }
        }
    }
}

/// A zoneadmd report without the `zone 'NAME': ` its typed errors start with: the caller
/// names the zone once (`zoneadm: zone 'a': ...`, never `zone 'a': zone 'a': ...`).
fn unprefixed(name: &str, msg: &str) -> String {
    let prefix = format!("zone '{name}': ");
    msg.strip_prefix(&prefix).unwrap_or(msg).to_string()
}

/// Whether `pid` is a live (not zombie) process.
fn process_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The supervisor's life; returns its exit code.
fn run(
    store: Store,
    paths: ZonePaths,
    mode: StartMode,
    boot_args: Option<Vec<String>>,
    notify: OwnedFd,
) -> i32 {
    quiet_stdio(&paths);
    set_name("zoneadmd");
    let report = |msg: &str| {
        let mut f = fs::File::from(notify.try_clone().expect("dup notify fd"));
        let _ = f.write_all(msg.as_bytes());
    };
    let lock = match take_lock(&paths) {
        Ok(l) => l,
        Err(e) => {
            report(&format!("error {e}\n"));
            return 1;
        }
    };
    zones_engine::fault::point("boot:after-lock");
    let mut sup = match Supervisor::new(store, paths, boot_args) {
        Ok(s) => s,
        Err(e) => {
            report(&format!("error {e}\n"));
            return 1;
        }
    };
    let first = match mode {
        StartMode::Ready => sup.make_ready(),
        StartMode::Boot => sup.make_ready().and_then(|()| {
            zones_engine::fault::point("boot:after-ready");
            sup.boot()
        }),
    };
    if let Err(e) = first {
        log(&format!("zone '{}': {e}", sup.paths.name));
        sup.teardown();
        report(&format!("error {}\n", e.replace('\n', " ")));
        return 1;
    }
    zones_engine::fault::point("boot:after-running");
    report("ok\n");
    drop(notify);
    let code = match sup.event_loop() {
        Ok(()) => 0,
        Err(e) => {
            log(&format!("zone '{}': {e}", sup.paths.name));
            1
        }
    };
    sup.teardown();
    drop(lock);
    code
}

/// stdin from /dev/null, stdout and stderr to the zone's zoneadmd.log.
fn quiet_stdio(paths: &ZonePaths) {
    if let Ok(null) = fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
    }
    if let Ok(log) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.log_file())
    {
        let _ = nix::unistd::dup2(log.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(log.as_raw_fd(), 2);
    }
}

fn set_name(name: &str) {
    let c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
}

fn log(msg: &str) {
    eprintln!("{} zoneadmd: {msg}", zones_engine::state::now_rfc3339());
}

fn take_lock(paths: &ZonePaths) -> Result<fs::File, String> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.lock_file())
        .map_err(|e| format!("{}: {e}", paths.lock_file().display()))?;
    if !super::try_record_lock(&f) {
        // zoneadm prefixes "zone 'NAME': ".
        return Err(format!(
            "is being started or is up already: its zoneadmd holds {}",
            paths.lock_file().display()
        ));
    }
    Ok(f)
}

/// The host-wide lock under which a zone id is chosen (`run/zones/.zoneid.lock`).
fn zoneid_lock(store: &Store) -> Result<Flock<fs::File>, String> {
    let path = store.run_dir().join(".zoneid.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("{}: flock: {e}", path.display()))
}

fn listen(path: &Path) -> Result<UnixListener, String> {
    let _ = fs::remove_file(path);
    let l = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

impl Supervisor {
    fn new(
        store: Store,
        paths: ZonePaths,
        boot_args: Option<Vec<String>>,
    ) -> Result<Supervisor, String> {
        let control = listen(&paths.control_sock())?;
        let console = listen(&paths.console_sock())?;
        let metadata = metadata::Server::new(&paths)
            .map_err(|e| format!("{}: {e}", metadata::control_dir(&paths).display()))?;
        let _ = fs::write(paths.pid_file(), std::process::id().to_string());
        // Zone ids are chosen and published under one host-wide lock: supervisors of
        // different zones starting together would otherwise pick the same free id.
        let ids = zoneid_lock(&store)?;
        let info = ZoneInfo {
            zoneid: free_zoneid(&store.run_dir(), &paths.name),
            init_pid: 0,
            supervisor_pid: std::process::id() as i32,
        };
        info.save(&paths).map_err(|e| e.to_string())?;
        drop(ids);
        Ok(Supervisor {
            store,
            paths,
            boot_args,
            info,
            init: None,
            started: false,
            master: None,
            ring: VecDeque::with_capacity(RING),
            clients: Vec::new(),
            control,
            console,
            metadata,
            waiting: Vec::new(),
            after_exit: None,
            deadline: None,
            done: false,
            whole_system: false,
            shed_after: Some(IDLE_SHED),
            delegating: false,
        })
    }

    fn set_state(&self, state: ZoneState) -> Result<(), String> {
        let lock = self
            .store
            .lock(&self.paths.name)
            .map_err(|e| e.to_string())?;
        self.store
            .set_state(&lock, state)
            .map_err(|e| e.to_string())
    }

    /// Bundle, create: init waits on the exec fifo; the zone is ready.
    fn make_ready(&mut self) -> Result<(), String> {
        let zone = self
            .store
            .load(&self.paths.name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: No such zone configured", self.paths.name))?;
        self.whole_system = zone.brand == Brand::Linux;
        // The zone's root (an overlay, ...) is mounted while the zone is up.
        let zonepath = engine::zonepath(&self.store, &zone).map_err(|e| e.to_string())?;
        let userns = engine::id_range(&self.store, &zone).map_err(|e| e.to_string())?;
        zones::storage::activate(&zonepath).map_err(|e| e.to_string())?;
        zones_engine::fault::point("boot:after-storage");
        metadata::publish(&self.store, &self.paths).map_err(|e| e.to_string())?;
        if !metadata::install_reader(&self.paths) {
            log(&format!(
                "zone '{}': no statically linked mdata-get found; metadata is served on {} only",
                self.paths.name,
                metadata::ZONE_DIR
            ));
        }
        let root = engine::zone_root(&self.store, &zone).map_err(|e| e.to_string())?;
        super::hostfiles::write(&zone, &root).map_err(|e| e.to_string())?;
        // Without a user namespace the host makes the zone's network namespace first; with
        // one, init makes it (owned by the zone's user namespace) and the links go in after.
        let netns = match userns {
            None => {
                network::setup(&self.store, &zone, &self.paths, 0).map_err(|e| e.to_string())?
            }
            Some(_) => None,
        };
        zones_engine::fault::point("boot:after-network");
        let vm = match zone.brand {
            Brand::Kvm => Some(kvm::prepare(
                &self.store,
                &zone,
                &self.paths,
                &zonepath,
                userns,
            )?),
            _ => None,
        };
        let created = engine::write_bundle(
            &self.store,
            &zone,
            self.boot_args.clone(),
            netns,
            userns,
            vm,
        )
        .and_then(|bundle| engine::create(&self.paths, &bundle))
        .map_err(|e| e.to_string());
        let (pid, master) = match created {
            Ok(c) => c,
            Err(e) => {
                kvm::release(&self.paths, &zonepath);
                return Err(e);
            }
        };
        if let Some(base) = userns {
            let systemd = self.whole_system && engine::init_kind(&root) == engine::Init::Systemd;
            let set_up = network::setup_in(&self.store, &zone, &self.paths, Some(pid), base)
                .map_err(|e| e.to_string())
                .and_then(|_| match systemd {
                    true => engine::delegate_cgroup(&zone.zonename, pid, base)
                        .map_err(|e| e.to_string()),
                    false => Ok(()),
                });
            let set_up = set_up.and_then(|_| self.delegate_datasets(&zone, pid));
            if let Err(e) = set_up {
                self.undelegate_datasets();
                let _ = engine::destroy(&self.paths);
                kvm::release(&self.paths, &zonepath);
                return Err(e);
            }
        }
        zones_engine::fault::point("boot:after-create");
        self.init = Some(pid);
        self.started = false;
        set_nonblocking(master.as_fd());
        self.master = Some(master);
        self.info.init_pid = pid.as_raw();
        self.info.save(&self.paths).map_err(|e| e.to_string())?;
        self.set_state(ZoneState::Ready)
    }

    /// Release init, and see that it got going (see [`Supervisor::await_started`]).
    fn boot(&mut self) -> Result<(), String> {
        engine::start(&self.paths).map_err(|e| e.to_string())?;
        self.started = true;
        if self.whole_system {
            self.await_started()?;
        } else if self.is_vm() {
            self.await_vm()?;
        }
        self.set_state(ZoneState::Running)
    }

    /// qemu refuses what it cannot run (a kernel it cannot load, a disk it cannot open) within
    /// a moment of starting, on its stderr, which is the console: a qemu that exits in
    /// [`VM_SETTLE`] fails the boot with how it ended and what it said.
    fn await_vm(&mut self) -> Result<(), String> {
        let Some(pid) = self.init else {
            return Ok(());
        };
        let until = Instant::now() + VM_SETTLE;
        while Instant::now() < until {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status) => {
                    self.init = None;
                    self.pump_master();
                    return Err(format!(
                        "qemu {} during boot{}",
                        ended(status),
                        console_tail(&self.ring)
                    ));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("waitpid: {e}")),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// A system's init forks almost at once (busybox its sysinit entries, systemd journald
    /// and its generators, OpenRC its runlevel): the boot has taken once init has a child,
    /// or is still there after [`BOOT_SETTLE`]. An init that exits first fails the boot,
    /// with how it ended and the console's last lines, which usually say why (a missing
    /// mount, a refused capability); the caller then tears the zone down to installed.
    fn await_started(&mut self) -> Result<(), String> {
        let Some(pid) = self.init else {
            return Ok(());
        };
        let children = format!("/proc/{pid}/task/{pid}/children");
        let until = Instant::now() + BOOT_SETTLE;
        while Instant::now() < until {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(status) => {
                    self.init = None;
                    self.pump_master();
                    return Err(format!(
                        "init {} during boot{}",
                        ended(status),
                        console_tail(&self.ring)
                    ));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("waitpid: {e}")),
            }
            if fs::read_to_string(&children).is_ok_and(|c| !c.trim().is_empty()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn event_loop(&mut self) -> Result<(), String> {
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(s);
        }
        mask.thread_block().map_err(|e| e.to_string())?;
        // SAFETY: ignoring SIGPIPE only changes what a write to a gone console client returns.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| e.to_string())?;
        // An init that died before the mask was set is reaped here.
        self.reap()?;
        // Set when the loop has been idle for `shed_after` ms: the next poll sheds first.
        let mut shed_now = false;
        while !self.done {
            let deadline = match (self.deadline, self.metadata.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = match (deadline, self.shed_after) {
                (None, Some(ms)) => PollTimeout::from(ms),
                (Some(d), _) => {
                    let left = d.saturating_duration_since(Instant::now());
                    PollTimeout::try_from(left.as_millis().min(60_000) as i32)
                        .unwrap_or(PollTimeout::ZERO)
                }
                (None, None) => PollTimeout::NONE,
            };
            let ready = self.poll_once(&sigfd, timeout, shed_now)?;
            shed_now = false;
            if !ready.idle() {
                // Whatever this wakeup runs faults code back in: shed again once it is quiet.
                if self.started && self.shed_after.is_none() {
                    self.shed_after = Some(IDLE_RESHED);
                }
            } else if self.shed_after.is_some() && deadline.is_none() {
                self.shed_after = None;
                shed_now = true;
            }
            if ready.signal {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    match info.ssi_signo as i32 {
                        libc::SIGCHLD => {}
                        _ => self.begin_halt(),
                    }
                }
                self.reap()?;
            }
            if ready.control {
                self.accept_control()?;
            }
            if ready.console {
                self.accept_console();
            }
            self.metadata
                .ready(&ready.metadata, &self.store, &self.paths.name);
            if ready.master {
                self.pump_master();
            }
            for i in ready.clients.into_iter().rev() {
                self.pump_client(i);
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                log(&format!(
                    "zone '{}': shutdown timed out; halting",
                    self.paths.name
                ));
                self.deadline = None;
                let _ = engine::signal_all(&self.paths, libc::SIGKILL);
            }
        }
        Ok(())
    }

    /// Wait for the next event; with `shed`, give back memory (see `zone::shed`) right before
    /// blocking, so that only the few pages between the two stay resident while idle.
    fn poll_once(
        &self,
        sigfd: &SignalFd,
        timeout: PollTimeout,
        shed: bool,
    ) -> Result<Ready, String> {
        let mut fds = vec![
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.control.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.console.as_fd(), PollFlags::POLLIN),
        ];
        let metadata_at = fds.len();
        for fd in self.metadata.poll_fds() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        let metadata_end = fds.len();
        let master_at = self.master.as_ref().map(|m| {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let first_client = fds.len();
        for c in &self.clients {
            fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
        }
        if shed {
            super::shed::shed();
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let hit = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        Ok(Ready {
            signal: hit(0),
            control: hit(1),
            console: hit(2),
            metadata: (metadata_at..metadata_end).map(hit).collect(),
            master: master_at.is_some_and(hit),
            clients: (first_client..fds.len())
                .filter(|i| hit(*i))
                .map(|i| i - first_client)
                .collect(),
        })
    }

    /// Reap children; when init is among them, decide what comes next.
    fn reap(&mut self) -> Result<(), String> {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => return Ok(()),
                Ok(status) => {
                    if status.pid().is_some() && status.pid() == self.init {
                        self.init_exited(status)?;
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("waitpid: {e}")),
            }
        }
    }

    fn init_exited(&mut self, status: WaitStatus) -> Result<(), String> {
        log(&format!(
            "zone '{}': init ended: {status:?}",
            self.paths.name
        ));
        self.init = None;
        self.deadline = None;
        self.pump_master();
        self.master = None;
        let rebooted_itself = matches!(status, WaitStatus::Signaled(_, Signal::SIGHUP, _));
        // An explicit request wins over how init ended: a shutdown that races with a reboot
        // from inside the zone still takes the zone down.
        let reboot = match self.after_exit.take() {
            Some(AfterExit::Reboot) => true,
            Some(AfterExit::Down) => false,
            None => rebooted_itself,
        };
        let _ = self.set_state(ZoneState::Down);
        if let Err(e) = engine::destroy(&self.paths) {
            log(&format!("zone '{}': {e}", self.paths.name));
        }
        self.release_vm();
        zones_engine::fault::point("halt:after-destroy");
        // Before anyone waiting for the halt hears back.
        network::teardown(&self.paths);
        if reboot {
            let again = self.make_ready().and_then(|()| self.boot());
            match again {
                Ok(()) => {
                    self.answer_waiting(&Reply::Ok);
                    self.shed_after = Some(IDLE_SHED);
                    return Ok(());
                }
                Err(e) => {
                    log(&format!("zone '{}': reboot failed: {e}", self.paths.name));
                    self.answer_waiting(&Reply::Error(format!("reboot failed: {e}")));
                }
            }
        }
        // Halt and shutdown are answered by teardown, once the zone is really installed
        // again (its storage unmounted): an uninstall right after must not race with it.
        self.done = true;
        Ok(())
    }

    fn answer_waiting(&mut self, r: &Reply) {
        for mut c in self.waiting.drain(..) {
            let _ = c.write_all(reply_line(r).as_bytes());
        }
    }

    fn accept_control(&mut self) -> Result<(), String> {
        let (stream, _) = match self.control.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("control socket: {e}")),
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return Ok(());
        }
        let mut stream = stream;
        let req = match parse_request(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = stream.write_all(reply_line(&Reply::Error(e)).as_bytes());
                return Ok(());
            }
        };
        match self.handle(req) {
            Ok(true) => {
                let _ = stream.write_all(reply_line(&Reply::Ok).as_bytes());
            }
            Ok(false) => self.waiting.push(stream),
            Err(e) => {
                let _ = stream.write_all(reply_line(&Reply::Error(e)).as_bytes());
            }
        }
        Ok(())
    }

    /// Act on a request: Ok(true) when done now, Ok(false) when answered later.
    fn handle(&mut self, req: Request) -> Result<bool, String> {
        match req {
            Request::Ping => Ok(true),
            Request::Resize { cols, rows } => {
                let Some(m) = &self.master else {
                    return Err("no console to resize: the zone's init is not running".into());
                };
                let ws = libc::winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                zones_engine::console::set_winsize(m.as_fd(), &ws)
                    .map_err(|e| format!("console size {cols}x{rows}: {e}"))?;
                Ok(true)
            }
            Request::Boot => {
                if self.started {
                    return Err("already running".into());
                }
                self.boot()?;
                Ok(true)
            }
            Request::Halt => {
                self.begin_halt();
                Ok(false)
            }
            Request::Reboot if self.is_vm() && self.started => {
                // The VM resets; qemu, and so the zone, stays up.
                kvm::qmp_command(&self.paths, "system_reset")?;
                Ok(true)
            }
            Request::Reboot => {
                self.after_exit = Some(AfterExit::Reboot);
                self.kill_all();
                Ok(false)
            }
            Request::Shutdown {
                timeout_secs,
                reboot,
            } => {
                if !self.started {
                    self.begin_halt();
                    return Ok(false);
                }
                self.after_exit = Some(if reboot {
                    AfterExit::Reboot
                } else {
                    AfterExit::Down
                });
                let _ = self.set_state(ZoneState::ShuttingDown);
                if self.is_vm() {
                    // The ACPI power button: the guest shuts itself down and qemu exits.
                    kvm::qmp_command(&self.paths, "system_powerdown")?;
                } else {
                    let sig = self.shutdown_signal(reboot);
                    engine::signal_init(&self.paths, sig).map_err(|e| e.to_string())?;
                }
                self.deadline = Some(Instant::now() + Duration::from_secs(timeout_secs));
                Ok(false)
            }
        }
    }

    fn begin_halt(&mut self) {
        self.after_exit = Some(AfterExit::Down);
        // A VM's qemu is asked to quit first; the kill follows after a bound.
        if self.is_vm() && self.started && kvm::qmp_command(&self.paths, "quit").is_ok() {
            let _ = self.set_state(ZoneState::ShuttingDown);
            self.deadline = Some(Instant::now() + VM_QUIT_WAIT);
            return;
        }
        self.kill_all();
    }

    /// The zone is a kvm zone (its workload is qemu).
    fn is_vm(&self) -> bool {
        self.store
            .load(&self.paths.name)
            .ok()
            .flatten()
            .is_some_and(|z| z.brand == Brand::Kvm)
    }

    /// Undo `kvm::prepare`'s mounts (nothing for other brands).
    fn release_vm(&self) {
        let zonepath = self
            .store
            .load(&self.paths.name)
            .ok()
            .flatten()
            .and_then(|z| engine::zonepath(&self.store, &z).ok());
        if let Some(zp) = zonepath {
            kvm::release(&self.paths, &zp);
        }
    }

    /// SIGKILL everything in the zone (thawing it first); init's end arrives as SIGCHLD.
    fn kill_all(&mut self) {
        let _ = self.set_state(ZoneState::ShuttingDown);
        if let Err(e) = engine::signal_all(&self.paths, libc::SIGKILL) {
            log(&format!("zone '{}': kill: {e}", self.paths.name));
        }
        zones_engine::fault::point("halt:after-kill");
        // A created (never started) init is blocked on the fifo; SIGKILL reaches it too.
        self.deadline = Some(Instant::now() + HALT_WAIT);
    }

    /// The signal that asks the zone's init to stop (or restart), by brand and init.
    fn shutdown_signal(&self, reboot: bool) -> i32 {
        let zone = self.store.load(&self.paths.name).ok().flatten();
        if zone.as_ref().is_some_and(|z| z.brand == Brand::App) {
            return libc::SIGTERM;
        }
        let init = zone
            .as_ref()
            .and_then(|z| engine::zone_root(&self.store, z).ok())
            .map_or(engine::Init::Other, |r| engine::init_kind(&r));
        match (init, reboot) {
            // busybox init: SIGTERM reboots, SIGUSR2 powers off.
            (engine::Init::Busybox, true) => libc::SIGTERM,
            (engine::Init::Busybox, false) => libc::SIGUSR2,
            // systemd: SIGINT is ctrl-alt-del (reboot), SIGRTMIN+3 halts, which in a
            // container is its clean end (systemd's container interface).
            (engine::Init::Systemd, true) => libc::SIGINT,
            (engine::Init::Systemd, false) => libc::SIGRTMIN() + 3,
            // sysvinit: SIGINT runs inittab's ctrlaltdel entry, SIGPWR (no powerstatus
            // file: a power failure) its powerwait/powerfail ones; the image makes them
            // `init 6` and `init 0` (scripts/mk-debian-image.sh --init openrc), as LXC does.
            (engine::Init::Sysvinit, true) => libc::SIGINT,
            (engine::Init::Sysvinit, false) => libc::SIGPWR,
            (engine::Init::Other, _) => libc::SIGTERM,
        }
    }

    fn accept_console(&mut self) {
        while let Ok((mut c, _)) = self.console.accept() {
            let (a, b) = self.ring.as_slices();
            let _ = c.write_all(a);
            let _ = c.write_all(b);
            let _ = c.set_nonblocking(true);
            self.clients.push(c);
        }
    }

    /// Console output: into the ring and out to every attached client.
    fn pump_master(&mut self) {
        let Some(m) = &self.master else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let data = &buf[..n];
                    self.ring.extend(data);
                    let excess = self.ring.len().saturating_sub(RING);
                    self.ring.drain(..excess);
                    self.clients
                        .retain_mut(|c| !matches!(c.write_all(data), Err(e) if e.kind() != ErrorKind::WouldBlock));
                }
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => return,
                // EIO: no process holds the slave open (init is gone or has not opened it).
                Err(_) => return,
            }
        }
    }

    /// Console input from client `i` to the zone; a closed client is dropped.
    fn pump_client(&mut self, i: usize) {
        let mut buf = [0u8; 4096];
        let n = match self.clients[i].read(&mut buf) {
            Ok(0) => {
                self.clients.remove(i);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                self.clients.remove(i);
                return;
            }
        };
        if let Some(m) = &self.master {
            let _ = write_all_fd(m.as_fd(), &buf[..n]);
        }
    }

    /// Leave nothing behind: the container, the runtime files, and the state says installed.
    fn teardown(&mut self) {
        if self.init.is_some() {
            let _ = engine::signal_all(&self.paths, libc::SIGKILL);
            if let Some(pid) = self.init.take() {
                // How it ended, for a boot that failed because init was already gone.
                if let Ok(status) = waitpid(pid, None) {
                    log(&format!(
                        "zone '{}': init reaped: {status:?}",
                        self.paths.name
                    ));
                }
            }
        }
        let _ = engine::destroy(&self.paths);
        self.release_vm();
        self.undelegate_datasets();
        self.deactivate_storage();
        zones_engine::fault::point("halt:after-storage");
        network::teardown(&self.paths);
        for c in self.clients.drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let _ = self.set_state(ZoneState::Installed);
        for f in [
            self.paths.control_sock(),
            self.paths.console_sock(),
            self.paths.pid_file(),
            self.paths.info_file(),
        ] {
            let _ = fs::remove_file(f);
        }
        let _ = fs::remove_dir_all(metadata::control_dir(&self.paths));
        self.answer_waiting(&Reply::Ok);
    }
}

impl Supervisor {
    /// `add dataset`: attach each to the zone's user namespace and mount it inside the zone
    /// (checked before the boot by `admin::check_datasets`). The namespace is pinned and each
    /// dataset recorded before it is attached (`delegation`), so that a crash can be undone.
    fn delegate_datasets(&mut self, zone: &zones::model::Zone, pid: Pid) -> Result<(), String> {
        use zones::storage::delegate;
        if zone.dataset.is_empty() {
            return Ok(());
        }
        let name = &zone.zonename;
        self.delegating = true;
        let ns = delegation::pin_userns(&self.paths, pid.as_raw())
            .map_err(|e| format!("zone '{name}': {e}"))?;
        let mut done = Vec::new();
        for ds in zone.dataset.iter().filter_map(|d| d.name.as_deref()) {
            let set_mountpoint = delegate::sets_mountpoint(ds)
                .map_err(|e| format!("zone '{name}': dataset '{ds}': {e}"))?;
            done.push(delegation::Entry {
                name: ds.to_string(),
                set_mountpoint,
            });
            delegation::save(&self.paths, &done)
                .map_err(|e| format!("zone '{name}': recording dataset '{ds}': {e}"))?;
            delegate::attach(&ns, ds, set_mountpoint)
                .map_err(|e| format!("zone '{name}': dataset '{ds}': {e}"))?;
            let at = delegate::mountpoint_in_zone(ds).map_err(|e| e.to_string())?;
            delegate::mount_in_zone(pid.as_raw(), ds, &at)
                .and_then(|_| delegate::give_to_zone_root(pid.as_raw(), &at))
                .map_err(|e| format!("zone '{name}': {e}"))?;
        }
        Ok(())
    }

    /// Give the delegated datasets back to the host (`zfs unzone`, `zoned=off`).
    fn undelegate_datasets(&mut self) {
        if !std::mem::take(&mut self.delegating) {
            return;
        }
        for e in delegation::release(&self.paths) {
            log(&format!("zone '{}': {e}", self.paths.name));
        }
    }

    /// Unmount what `make_ready` mounted for the zone's root.
    fn deactivate_storage(&self) {
        let zonepath = self
            .store
            .load(&self.paths.name)
            .ok()
            .flatten()
            .and_then(|z| engine::zonepath(&self.store, &z).ok());
        if let Some(zp) = zonepath {
            if let Err(e) = zones::storage::deactivate(&zp) {
                log(&format!("zone '{}': storage: {e}", self.paths.name));
            }
        }
    }
}

struct Ready {
    signal: bool,
    control: bool,
    console: bool,
    /// Per fd of `metadata::Server::poll_fds`.
    metadata: Vec<bool>,
    master: bool,
    clients: Vec<usize>,
}

impl Ready {
    /// Nothing happened: the poll timed out.
    fn idle(&self) -> bool {
        !(self.signal || self.control || self.console || self.master)
            && self.clients.is_empty()
            && !self.metadata.contains(&true)
    }
}

fn set_nonblocking(fd: BorrowedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// Write all of `data` to a non-blocking fd, waiting briefly when it is full.
fn write_all_fd(fd: BorrowedFd, mut data: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// How init ended, in words: "exited with status 1", "was killed by SIGSEGV".
fn ended(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("was killed by {sig}"),
        other => format!("ended ({other:?})"),
    }
}

/// The console's last lines (at most 8, control characters and escape sequences dropped),
/// as "; console: LINE | LINE", or "" when init printed nothing.
fn console_tail(ring: &VecDeque<u8>) -> String {
    let bytes: Vec<u8> = ring.iter().copied().collect();
    let text = String::from_utf8_lossy(&bytes);
    let mut clean = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one character.
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                } else {
                    chars.next();
                }
            }
            '\n' => clean.push('\n'),
            c if c.is_control() => {}
            c => clean.push(c),
        }
    }
    let lines: Vec<&str> = clean
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(8)..];
    format!("; console: {}", tail.join(" | "))
}

#[cfg(test)]
mod boot_tests {
    use super::*;

    #[test]
    fn the_console_tail_is_its_last_lines_without_escapes() {
        let mut ring = VecDeque::new();
        ring.extend(b"\x1b[0;1;31mFailed\x1b[0m to mount cgroup\r\n\r\nbye\r\n".iter());
        assert_eq!(
            console_tail(&ring),
            "; console: Failed to mount cgroup | bye"
        );
        assert_eq!(console_tail(&VecDeque::new()), "");
        let many: String = (0..20).map(|i| format!("l{i}\n")).collect();
        let ring: VecDeque<u8> = many.bytes().collect();
        assert_eq!(
            console_tail(&ring),
            "; console: l12 | l13 | l14 | l15 | l16 | l17 | l18 | l19"
        );
    }
}
