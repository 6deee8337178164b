//! Terminals: the console socket protocol (pty master over SCM_RIGHTS, exactly like runc),
//! setting up the pty inside the container, and relaying a pty for `runz run` in the foreground.
//!
//! Protocol (runc `utils.SendRawFd`, go-runc `ReceiveMaster`): ONE sendmsg on the connected
//! AF_UNIX stream socket; the payload is the pty name ("/dev/pts/N"), the control data is one
//! SCM_RIGHTS message carrying exactly one fd, the master. Anything else is rejected by go-runc.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::mount::{mount, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    connect, recvmsg, sendmsg, socket, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2, isatty, read, setsid, write, Pid};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console: {0}")]
    Io(String),
    #[error("console socket {path}: cannot connect: {source}")]
    Connect { path: String, source: Errno },
    #[error("console: {what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("console socket: expected exactly one file descriptor, got {0}")]
    FdCount(usize),
    #[error("console: consoleSize {height}x{width} is out of range (max 65535)")]
    Size { height: u64, width: u64 },
}

/// Map a nix error to `ConsoleError::Sys` naming the failed step.
fn sys(what: &str) -> impl FnOnce(Errno) -> ConsoleError + '_ {
    move |source| ConsoleError::Sys {
        what: what.to_string(),
        source,
    }
}

/// After the container's init exits, how long the relay waits for more pty output before
/// giving up (something else in the container may still hold the slave open).
const DRAIN_IDLE: Duration = Duration::from_millis(200);

/// Without a pidfd, how often the relay checks whether the child has exited.
const WAIT_TICK: Duration = Duration::from_millis(10);

/// Connect an AF_UNIX stream socket to the console socket at `path` (runc: utils_linux.go).
/// Paths longer than sun_path (108 bytes) are reached through /proc/self/fd/N/<name>, N being
/// an O_PATH fd of the parent directory.
pub fn connect_socket(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let err = |source| ConsoleError::Connect {
        path: path.display().to_string(),
        source,
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    match UnixAddr::new(path) {
        Ok(addr) => connect(sock.as_raw_fd(), &addr).map_err(err)?,
        Err(Errno::ENAMETOOLONG) => connect_long(&sock, path).map_err(err)?,
        Err(e) => return Err(err(e)),
    }
    Ok(sock)
}

fn connect_long(sock: &OwnedFd, path: &Path) -> nix::Result<()> {
    let name = path.file_name().ok_or(Errno::ENAMETOOLONG)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dirfd = open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open just returned this fd; we are its only owner.
    let dirfd = unsafe { OwnedFd::from_raw_fd(dirfd) };
    let short = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(name);
    connect(sock.as_raw_fd(), &UnixAddr::new(&short)?)
}

/// Whose terminal [`setup_pty`] makes: the container's own console, or one process's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtyFor {
    /// The container's init: its pty becomes the container's /dev/console (bound over the
    /// placeholder, if that file exists), as runc's standard init does.
    Init,
    /// A process exec'd into a running container (`runz exec -t`, `zlogin`): a pty of its
    /// own, and the container's /dev/console is left alone, as runc's setns init and
    /// illumos zlogin (which gives each login a new pty) do. Binding it there would stack a
    /// mount over the zone's console for every login, in the container's mount namespace,
    /// outliving the process.
    Exec,
}

/// Inside the container, after pivot_root: allocate a pty from the container's /dev/ptmx,
/// size it, for init bind the slave over /dev/console, send the master over `socket`, then
/// make the slave our controlling terminal on fds 0, 1 and 2.
/// `clear_onlcr_first`: the pty goes to runz itself (a foreground `run`/`exec -t`), which relays it
/// as runc does, without ONLCR; cleared before the process can write its first line.
pub fn setup_pty(
    socket: OwnedFd,
    size: Option<&oci_spec::runtime::Box>,
    pty_for: PtyFor,
    clear_onlcr_first: bool,
) -> Result<(), ConsoleError> {
    let console = match pty_for {
        PtyFor::Init => Some(Path::new("/dev/console")),
        PtyFor::Exec => None,
    };
    setup_pty_at(socket, size, console, clear_onlcr_first)
}

/// `setup_pty` with the console path as a parameter (tests bind over a scratch file); no
/// path: no bind.
fn setup_pty_at(
    socket: OwnedFd,
    size: Option<&oci_spec::runtime::Box>,
    console: Option<&Path>,
    clear_onlcr_first: bool,
) -> Result<(), ConsoleError> {
    let pty = Pty::open()?;
    if clear_onlcr_first {
        clear_onlcr(&pty.master)?;
    }
    if let Some(b) = size {
        set_size(pty.master.as_fd(), b)?;
    }
    if let Some(console) = console.filter(|c| c.exists()) {
        mount(
            Some(Path::new(&pty.name)),
            console,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(&format!(
            "bind-mount {} on {}",
            pty.name,
            console.display()
        )))?;
    }
    send_fd(&socket, pty.master.as_fd(), &pty.name)?;
    drop(pty.master);
    drop(socket);
    become_session_leader()?;
    make_stdio(pty.slave)?;
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); fd 0 is the pty slave.
    let r = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    Errno::result(r).map_err(sys("ioctl(TIOCSCTTY)"))?;
    Ok(())
}

/// Clear ONLCR on a pty (through its master): lines from the container then reach the
/// caller as written, not with "\r\n", as runc does for the terminal it relays itself.
pub fn clear_onlcr(master: &OwnedFd) -> Result<(), ConsoleError> {
    use nix::sys::termios::{tcgetattr, tcsetattr, OutputFlags, SetArg};
    let mut t = tcgetattr(master.as_fd()).map_err(sys("tcgetattr on the pty"))?;
    t.output_flags.remove(OutputFlags::ONLCR);
    tcsetattr(master.as_fd(), SetArg::TCSANOW, &t).map_err(sys("tcsetattr on the pty"))
}

/// A freshly allocated pty: master, slave and the slave's name ("/dev/pts/N").
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    name: String,
}

impl Pty {
    fn open() -> Result<Self, ConsoleError> {
        let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = open("/dev/ptmx", flags, Mode::empty()).map_err(sys("open /dev/ptmx"))?;
        // SAFETY: open just returned this fd; we are its only owner.
        let master = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: grantpt/unlockpt only act on the master fd we own.
        Errno::result(unsafe { libc::grantpt(master.as_raw_fd()) }).map_err(sys("grantpt"))?;
        // SAFETY: as above.
        Errno::result(unsafe { libc::unlockpt(master.as_raw_fd()) }).map_err(sys("unlockpt"))?;
        let name = pts_name(master.as_fd())?;
        let slave = match peer(master.as_fd(), flags) {
            Ok(slave) => slave,
            Err(_) => {
                let fd = open(Path::new(&name), flags, Mode::empty())
                    .map_err(sys(&format!("open {name}")))?;
                // SAFETY: open just returned this fd; we are its only owner.
                unsafe { OwnedFd::from_raw_fd(fd) }
            }
        };
        Ok(Self {
            master,
            slave,
            name,
        })
    }
}

/// "/dev/pts/N" from TIOCGPTN (the number within this master's devpts instance).
fn pts_name(master: BorrowedFd<'_>) -> Result<String, ConsoleError> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, valid for writes.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    Errno::result(r).map_err(sys("ioctl(TIOCGPTN)"))?;
    Ok(format!("/dev/pts/{n}"))
}

/// Open the slave through the master (TIOCGPTPEER, Linux 4.13+): no path lookup, so it is
/// the right pty even if /dev/pts is not this master's devpts.
fn peer(master: BorrowedFd<'_>, flags: OFlag) -> nix::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes the open flags as an integer and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags.bits()) };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel just returned this fd; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// process.consoleSize → TIOCSWINSZ.
fn set_size(fd: BorrowedFd<'_>, b: &oci_spec::runtime::Box) -> Result<(), ConsoleError> {
    let bad = || ConsoleError::Size {
        height: b.height(),
        width: b.width(),
    };
    let ws = libc::winsize {
        ws_row: u16::try_from(b.height()).map_err(|_| bad())?,
        ws_col: u16::try_from(b.width()).map_err(|_| bad())?,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    set_winsize(fd, &ws).map_err(sys("ioctl(TIOCSWINSZ)"))
}

fn get_winsize(fd: BorrowedFd<'_>) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize through the pointer, valid for writes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(r)?;
    Ok(ws)
}

pub(crate) fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one struct winsize through the pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    Errno::result(r).map(drop)
}

/// The one sendmsg of runc's fd-passing protocol: payload = a name, SCM_RIGHTS = [fd]. Used
/// for the pty master on the console socket and for init's pidfd on the pidfd socket.
pub fn send_fd(sock: &OwnedFd, fd: BorrowedFd<'_>, name: &str) -> Result<(), ConsoleError> {
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(sys(&format!("send {name} over the socket")))?;
    if n != name.len() {
        return Err(ConsoleError::Io(format!(
            "console socket: short send ({n} of {} bytes)",
            name.len()
        )));
    }
    Ok(())
}

/// setsid(), tolerating that we already lead our session.
fn become_session_leader() -> Result<(), ConsoleError> {
    match setsid() {
        Ok(_) => Ok(()),
        Err(Errno::EPERM) if nix::unistd::getsid(None) == Ok(nix::unistd::getpid()) => Ok(()),
        Err(e) => Err(sys("setsid")(e)),
    }
}

/// dup2 the slave onto 0, 1 and 2 (dup2 clears O_CLOEXEC on the copies).
fn make_stdio(slave: OwnedFd) -> Result<(), ConsoleError> {
    for target in 0..=2 {
        if slave.as_raw_fd() != target {
            dup2(slave.as_raw_fd(), target).map_err(sys(&format!("dup2 pty slave to {target}")))?;
        }
    }
    if slave.as_raw_fd() <= 2 {
        // The slave already is one of 0..2 and must stay open: give up ownership.
        std::mem::forget(slave);
    }
    Ok(())
}

/// The receiving side: one recvmsg, exactly one fd (the master) or an error.
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd, ConsoleError> {
    recv_master_named(sock).map(|(fd, _)| fd)
}

/// `recv_master`, also returning the payload (the pty name).
pub fn recv_master_named(sock: &OwnedFd) -> Result<(OwnedFd, String), ConsoleError> {
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 8]);
    let (bytes, mut fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(sys("receive from the console socket"))?;
        let mut fds = Vec::new();
        for c in msg
            .cmsgs()
            .map_err(sys("console socket control data truncated"))?
        {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: SCM_RIGHTS just installed these fds in our table; nobody owns them.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        (msg.bytes, fds)
    };
    if fds.len() != 1 {
        return Err(ConsoleError::FdCount(fds.len()));
    }
    let name = String::from_utf8_lossy(&buf[..bytes]).into_owned();
    let fd = fds.pop().ok_or(ConsoleError::FdCount(0))?;
    Ok((fd, name))
}

/// `runz run` in the foreground with terminal:true: relay our stdin → master and master →
/// our stdout until `child` (the container init, our direct child) exits, then drain the
/// master. Our stdin is put in raw mode if it is a tty (restored on every exit path) and its
/// size is copied to the pty now and on each SIGWINCH. Returns the exit code (128+signal).
pub fn relay(master: OwnedFd, child: Pid) -> Result<i32, ConsoleError> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    relay_io(master, child, stdin.as_fd(), stdout.as_fd())
}

/// `relay` with explicit input and output fds (tests use pipes and ptys).
fn relay_io(
    master: OwnedFd,
    child: Pid,
    input: BorrowedFd<'_>,
    output: BorrowedFd<'_>,
) -> Result<i32, ConsoleError> {
    let tty = isatty(input.as_raw_fd()).unwrap_or(false);
    let _raw = if tty {
        Some(RawMode::enter(input)?)
    } else {
        None
    };
    let winch = if tty { Some(Winch::new()?) } else { None };
    if tty {
        copy_winsize(input, master.as_fd());
    }
    set_nonblocking(master.as_fd()).map_err(sys("set the pty master non-blocking"))?;
    let pidfd = super::sys::pidfd_open(child).ok();
    let mut r = Relay {
        master,
        input: Some(input),
        output,
        to_master: Vec::new(),
        master_open: true,
    };
    let status = loop {
        if let Some(status) = r.step(child, pidfd.as_ref(), winch.as_ref())? {
            break status;
        }
    };
    r.drain();
    Ok(exit_code(status))
}

/// The state of the relay loop.
struct Relay<'a> {
    master: OwnedFd,
    input: Option<BorrowedFd<'a>>,
    output: BorrowedFd<'a>,
    /// Input read but not yet accepted by the master (it is non-blocking).
    to_master: Vec<u8>,
    /// False once the master reported EIO/EOF (every slave fd closed).
    master_open: bool,
}

impl Relay<'_> {
    /// One poll round; Some(status) once the child has exited.
    fn step(
        &mut self,
        child: Pid,
        pidfd: Option<&OwnedFd>,
        winch: Option<&Winch>,
    ) -> Result<Option<WaitStatus>, ConsoleError> {
        if pidfd.is_none() {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(s) => return Ok(Some(s)),
                Err(e) => return Err(sys("waitpid")(e)),
            }
        }
        let mut fds = Vec::with_capacity(4);
        let idx = |fds: &Vec<PollFd<'_>>| fds.len();
        let i_in = match self.input {
            Some(fd) if self.to_master.is_empty() => {
                let i = idx(&fds);
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                Some(i)
            }
            _ => None,
        };
        let i_master = if self.master_open {
            let mut ev = PollFlags::POLLIN;
            if !self.to_master.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            let i = idx(&fds);
            fds.push(PollFd::new(self.master.as_fd(), ev));
            Some(i)
        } else {
            None
        };
        let i_winch = winch.map(|w| {
            let i = idx(&fds);
            fds.push(PollFd::new(w.fd.as_fd(), PollFlags::POLLIN));
            i
        });
        let i_pid = pidfd.map(|p| {
            let i = idx(&fds);
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            i
        });
        let timeout = if pidfd.is_some() {
            PollTimeout::NONE
        } else {
            tick(WAIT_TICK)
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(sys("poll")(e)),
        }
        let rev = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        let (ev_in, ev_master, ev_winch, ev_pid) =
            (rev(i_in), rev(i_master), rev(i_winch), rev(i_pid));
        drop(fds);
        if !ev_in.is_empty() {
            self.read_input();
        }
        if ev_master.contains(PollFlags::POLLOUT)
            || (!self.to_master.is_empty() && !ev_master.is_empty())
        {
            self.write_master();
        }
        if ev_master.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.read_master()?;
        }
        if let (Some(w), false) = (winch, ev_winch.is_empty()) {
            while let Ok(Some(_)) = w.fd.read_signal() {}
            if let Some(input) = self.input {
                copy_winsize(input, self.master.as_fd());
            }
        }
        if !ev_pid.is_empty() {
            loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    Ok(s) => return Ok(Some(s)),
                    Err(e) => return Err(sys("waitpid")(e)),
                }
            }
        }
        Ok(None)
    }

    fn read_input(&mut self) {
        let Some(input) = self.input else { return };
        let mut buf = [0u8; 8192];
        match read(input.as_raw_fd(), &mut buf) {
            Ok(0) => self.input = None,
            Ok(n) if self.master_open => self.to_master.extend_from_slice(&buf[..n]),
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(_) => self.input = None,
        }
    }

    fn write_master(&mut self) {
        match write(&self.master, &self.to_master) {
            Ok(n) => {
                self.to_master.drain(..n);
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(_) => self.to_master.clear(),
        }
    }

    /// Copy what the master has to the output; EIO (or EOF) means every slave is closed.
    fn read_master(&mut self) -> Result<(), ConsoleError> {
        let mut buf = [0u8; 8192];
        match read(self.master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(Errno::EIO) => {
                self.master_open = false;
                self.to_master.clear();
                Ok(())
            }
            Ok(n) => write_all(self.output, &buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(sys("read the pty master")(e)),
        }
    }

    /// After the child exited: copy what is left until EIO, or until nothing came for
    /// DRAIN_IDLE (someone else may still hold the slave).
    fn drain(&mut self) {
        while self.master_open {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, tick(DRAIN_IDLE)) {
                Ok(0) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            if self.read_master().is_err() {
                return;
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> Result<(), ConsoleError> {
    while !data.is_empty() {
        match write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(e) => return Err(sys("write the terminal output")(e)),
        }
    }
    Ok(())
}

fn tick(d: Duration) -> PollTimeout {
    PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = get_winsize(from) {
        let _ = set_winsize(to, &ws);
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// A tty in raw mode; the saved settings come back on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Result<Self, ConsoleError> {
        let saved = tcgetattr(fd).map_err(sys("tcgetattr on stdin"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // As runc (containerd/console's SetRaw): output processing stays on, the caller's
        // terminal still turns "\n" into "\r\n" (the container's pty no longer does).
        raw.output_flags
            .insert(nix::sys::termios::OutputFlags::OPOST);
        tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(sys("set stdin to raw mode"))?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// SIGWINCH delivered through a signalfd (blocked for this thread while it lives).
struct Winch {
    fd: SignalFd,
    old: SigSet,
}

impl Winch {
    fn new() -> Result<Self, ConsoleError> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGWINCH);
        let old = set
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .map_err(sys("block SIGWINCH"))?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(Self { fd, old }),
            Err(e) => {
                let _ = old.thread_set_mask();
                Err(sys("signalfd(SIGWINCH)")(e))
            }
        }
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        let _ = self.old.thread_set_mask();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::socketpair;
    use nix::unistd::{fork, ForkResult};
    use std::ffi::CString;
    use std::os::unix::net::UnixListener;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir()
                .join(format!("runz-test-console-{tag}-{}", std::process::id()));
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

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    /// Read from `fd` until `needle` shows up (or EOF/EIO); returns all that was read.
    fn read_until(fd: BorrowedFd<'_>, needle: &str) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&all).contains(needle) {
            match read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(Errno::EIO) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    #[test]
    fn connect_short_and_long_paths() {
        let d = TempDir::new("connect");
        let short = d.0.join("s.sock");
        let l = UnixListener::bind(&short).unwrap();
        let c = connect_socket(&short).unwrap();
        let (peer, _) = l.accept().unwrap();
        write(&c, b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(read(peer.as_raw_fd(), &mut b).unwrap(), 1);

        // A directory path long enough that dir + name exceeds sun_path (108 bytes).
        let long_dir = d.0.join("d".repeat(120));
        std::fs::create_dir(&long_dir).unwrap();
        let long = long_dir.join("console.sock");
        assert!(long.as_os_str().len() > 108);
        assert!(UnixAddr::new(&long).is_err());
        // Bind through the same /proc/self/fd trick (the listener side is only test setup).
        let dirfd = std::fs::File::open(&long_dir).unwrap();
        let via = format!("/proc/self/fd/{}/console.sock", dirfd.as_raw_fd());
        let l = UnixListener::bind(&via).unwrap();
        assert!(long.exists());
        let c = connect_socket(&long).unwrap();
        let (peer, _) = l.accept().unwrap();
        write(&c, b"y").unwrap();
        assert_eq!(read(peer.as_raw_fd(), &mut b).unwrap(), 1);
        assert_eq!(&b, b"y");

        let e = connect_socket(&d.0.join("missing.sock"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.sock") && e.contains("cannot connect"),
            "{e}"
        );
    }

    #[test]
    fn recv_rejects_zero_or_two_fds() {
        let (a, b) = pair();
        let n = sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"x")],
            &[],
            MsgFlags::empty(),
            None,
        );
        assert_eq!(n.unwrap(), 1);
        assert!(matches!(recv_master(&b), Err(ConsoleError::FdCount(0))));

        let fds = [a.as_raw_fd(), b.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(b"y")],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let e = recv_master(&b).unwrap_err().to_string();
        assert_eq!(
            e,
            "console socket: expected exactly one file descriptor, got 2"
        );
    }

    /// The container side in a forked child (its own mount namespace, slave propagation, so
    /// the /dev/console bind lands on a scratch file and never on the host): setup_pty sends
    /// the master; we receive exactly one fd and talk to the child through it.
    #[test]
    fn setup_pty_sends_master_and_child_gets_a_ctty() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let d = TempDir::new("pty");
        let console = d.0.join("console");
        std::fs::write(&console, b"").unwrap();
        let (ours, theirs) = pair();
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(33u64)
            .width(101u64)
            .build()
            .unwrap();

        // SAFETY: the child runs only the block below and _exits; glibc resets the malloc
        // locks at fork, so the allocations in pty_child are fine.
        let pid = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pty_child(theirs, &size, &console)
                }))
                .unwrap_or(99);
                // SAFETY: end the child without unwinding into the test harness.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(theirs);
        let (master, name) = recv_master_named(&ours).unwrap();
        assert!(name.starts_with("/dev/pts/"), "{name}");
        assert_eq!(pts_name(master.as_fd()).unwrap(), name);
        assert!(isatty(master.as_raw_fd()).unwrap());
        assert_eq!(get_winsize(master.as_fd()).unwrap().ws_row, 33);

        let hello = read_until(master.as_fd(), "ready\r\n");
        assert!(hello.contains("ready"), "{hello}");
        write(&master, b"ping\n").unwrap();
        let out = read_until(master.as_fd(), "got:ping");
        assert!(out.contains("got:ping"), "{out}");
        let status = waitpid(pid, None).unwrap();
        assert_eq!(status, WaitStatus::Exited(pid, 0));
    }

    /// Runs in the forked child. Exit codes: 0 ok, 1x failed check.
    fn pty_child(sock: OwnedFd, size: &oci_spec::runtime::Box, console: &Path) -> i32 {
        use nix::sched::{unshare, CloneFlags};
        if unshare(CloneFlags::CLONE_NEWNS).is_err() {
            return 10;
        }
        let slave_prop = MsFlags::MS_REC | MsFlags::MS_SLAVE;
        if mount(None::<&str>, "/", None::<&str>, slave_prop, None::<&str>).is_err() {
            return 11;
        }
        if setup_pty_at(sock, Some(size), Some(console), false).is_err() {
            return 12;
        }
        let me = nix::unistd::getpid();
        if !isatty(0).unwrap_or(false) || !isatty(1).unwrap_or(false) || !isatty(2).unwrap_or(false)
        {
            return 13;
        }
        // The pty is our controlling terminal and we lead its session.
        if nix::sys::termios::tcgetsid(std::io::stdin()).ok() != Some(me) {
            return 14;
        }
        let ws = get_winsize(std::io::stdin().as_fd());
        if !matches!(ws, Ok(w) if w.ws_row == 33 && w.ws_col == 101) {
            return 15;
        }
        // /dev/console (here: the scratch file) is now the slave.
        let dev = |p: &Path| nix::sys::stat::stat(p).map(|s| s.st_rdev).ok();
        let stdin_dev = nix::sys::stat::fstat(0).map(|s| s.st_rdev).ok();
        if dev(console).is_none() || dev(console) != stdin_dev {
            return 16;
        }
        let _ = write(std::io::stdout(), b"ready\n");
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err() {
            return 17;
        }
        let _ = write(
            std::io::stdout(),
            format!("got:{}\n", line.trim()).as_bytes(),
        );
        0
    }

    /// Fork a "container init" with `slave` as its controlling terminal running `sh -c script`.
    fn spawn_on_pty(slave: OwnedFd, script: &str) -> Pid {
        let sh = CString::new("/bin/sh").unwrap();
        let argv = [
            CString::new("sh").unwrap(),
            CString::new("-c").unwrap(),
            CString::new(script).unwrap(),
        ];
        // SAFETY: the child only makes async-signal-safe calls (setsid, ioctl, dup2, execv,
        // _exit) with data prepared before fork.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => unsafe {
                libc::setsid();
                libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0);
                for t in 0..=2 {
                    libc::dup2(slave.as_raw_fd(), t);
                }
                let _ = nix::unistd::execv(&sh, &argv);
                libc::_exit(127)
            },
            ForkResult::Parent { child } => child,
        }
    }

    /// openpty(3) with both fds close-on-exec, so that children other tests spawn meanwhile
    /// do not keep our pty open.
    fn openpty(ws: Option<&nix::pty::Winsize>) -> nix::pty::OpenptyResult {
        let p = nix::pty::openpty(ws, None).unwrap();
        for fd in [p.master.as_raw_fd(), p.slave.as_raw_fd()] {
            fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
        }
        p
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap()
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut f = std::fs::File::from(fd);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        s
    }

    #[test]
    fn relay_copies_both_ways_and_returns_exit_code() {
        let pty = openpty(None);
        let child = spawn_on_pty(pty.slave, "read l; echo \"got:$l\"; exit 7");
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        write(&in_w, b"hello\n").unwrap();
        drop(in_w);
        let code = relay_io(pty.master, child, in_r.as_fd(), out_w.as_fd()).unwrap();
        drop(out_w);
        assert_eq!(code, 7);
        let out = read_all(out_r);
        assert!(out.contains("got:hello"), "{out:?}");
    }

    #[test]
    fn relay_reports_a_signal_as_128_plus_signal() {
        let pty = openpty(None);
        let child = spawn_on_pty(pty.slave, "echo bye; kill -9 $$");
        let (in_r, _in_w) = pipe();
        let (out_r, out_w) = pipe();
        let code = relay_io(pty.master, child, in_r.as_fd(), out_w.as_fd()).unwrap();
        drop(out_w);
        assert_eq!(code, 128 + 9);
        assert!(read_all(out_r).contains("bye"));
    }

    /// With a tty as input: its size is copied to the container pty, it is raw while
    /// relaying and restored afterwards.
    #[test]
    fn relay_with_tty_input_copies_size_and_restores_mode() {
        let ws = nix::pty::Winsize {
            ws_row: 21,
            ws_col: 77,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let user = openpty(Some(&ws));
        let before = tcgetattr(user.slave.as_fd()).unwrap();
        assert!(before
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON));
        let pty = openpty(None);
        let child = spawn_on_pty(pty.slave, "stty size; read l; echo \"got:$l\"");
        // Typed on the "user's terminal": in raw mode, no line editing happens on our side.
        write(&user.master, b"typed\r").unwrap();
        let (out_r, out_w) = pipe();
        let code = relay_io(pty.master, child, user.slave.as_fd(), out_w.as_fd()).unwrap();
        drop(out_w);
        assert_eq!(code, 0);
        let out = read_all(out_r);
        assert!(out.contains("21 77"), "{out:?}");
        assert!(out.contains("got:typed"), "{out:?}");
        let after = tcgetattr(user.slave.as_fd()).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.input_flags, before.input_flags);
        assert_eq!(after.output_flags, before.output_flags);
    }
}
