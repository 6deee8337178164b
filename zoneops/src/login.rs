//! zlogin: a process in a running zone (every namespace, the cgroup, the zone's capability
//! bounding set and seccomp filter), or the zone's console through its supervisor.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios;
use oci_spec::runtime::{Process, User};
use zones::state::ZoneState;
use zones::store::Store;

use super::admin::effective_state;
use super::rootfile::{RootFileError, ZoneRoot};
use super::{engine, ZonePaths};
use zones_engine::container::{self, ExecOpts};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login allowed only to running zones ({zone} is '{state}').")]
    NotRunning { zone: String, state: ZoneState },
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error("zone '{zone}': {err}")]
    ZoneFile { zone: String, err: RootFileError },
    #[error("{0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, LoginError>;

/// What `zlogin` was asked for.
#[derive(Debug, Clone, Default)]
pub struct LoginOpts {
    pub zone: String,
    /// -l USER (default root).
    pub user: Option<String>,
    /// The command; empty means an interactive login shell.
    pub command: Vec<String>,
    /// -S: "safe" login: no login shell profile, a minimal environment.
    pub safe: bool,
}

/// A user of the zone, from its /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// Look `name` up in a passwd file's text.
pub fn find_user(passwd: &str, name: &str) -> Option<ZoneUser> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || f[0] != name {
            return None;
        }
        Some(ZoneUser {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_string(),
            shell: if f[6].is_empty() {
                "/bin/sh".to_string()
            } else {
                f[6].to_string()
            },
        })
    })
}

fn running(store: &Store, zone: &str) -> Result<()> {
    let st = store
        .state(zone)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(zone.to_string()))?;
    let st = effective_state(store, zone, st);
    if st != ZoneState::Running {
        return Err(LoginError::NotRunning {
            zone: zone.to_string(),
            state: st,
        });
    }
    Ok(())
}

/// The most of the zone's /etc/passwd zlogin reads.
const PASSWD_LIMIT: u64 = 1 << 20;

/// The zone's /etc/passwd, read inside its root (see [`ZoneRoot`]); empty when it has none.
fn zone_passwd(root: &ZoneRoot, zone: &str) -> Result<String> {
    let zerr = |err| LoginError::ZoneFile {
        zone: zone.to_string(),
        err,
    };
    match root.read("/etc/passwd", PASSWD_LIMIT) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(RootFileError::Io { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
            Ok(String::new())
        }
        Err(e) => Err(zerr(e)),
    }
}

/// The process zlogin runs, with the zone's own capability sets.
fn login_process(root: &Path, base: &Process, opts: &LoginOpts, tty: bool) -> Result<Process> {
    let name = opts.user.as_deref().unwrap_or("root");
    let root = ZoneRoot::open(root).map_err(|err| LoginError::ZoneFile {
        zone: opts.zone.clone(),
        err,
    })?;
    let passwd = zone_passwd(&root, &opts.zone)?;
    let user = match find_user(&passwd, name) {
        Some(u) => u,
        None if name == "root" => ZoneUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/sh".into(),
        },
        None => {
            return Err(LoginError::Other(format!(
                "user {name:?} does not exist in zone '{}'",
                opts.zone
            )))
        }
    };
    let mut p = base.clone();
    let args = if opts.command.is_empty() {
        if opts.safe {
            vec![user.shell.clone()]
        } else {
            vec![user.shell.clone(), "-l".into()]
        }
    } else {
        vec![user.shell.clone(), "-c".into(), opts.command.join(" ")]
    };
    p.set_args(Some(args));
    p.set_terminal(Some(tty));
    let mut env = vec![
        // /.zonecontrol: mdata-get and mdata-list on the PATH, as in the zone's init.
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/.zonecontrol"
            .to_string(),
        format!("HOME={}", user.home),
        format!("USER={}", user.name),
        format!("LOGNAME={}", user.name),
        format!("SHELL={}", user.shell),
    ];
    if tty {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    p.set_env(Some(env));
    // The home as a path without symlinks, resolved inside the zone's root: a home that is a
    // symlink (chain) to a host directory or a magic link never becomes the session's cwd.
    let cwd = match root.resolve_dir(&user.home) {
        Some(dir) if !opts.safe => dir,
        _ => "/".to_string(),
    };
    p.set_cwd(cwd.into());
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    p.set_user(u);
    p.set_console_size(None);
    // A zlogin session can never gain privileges through setuid files (secure by default).
    p.set_no_new_privileges(Some(true));
    Ok(p)
}

/// Run a command (or an interactive shell) in the zone; returns its exit status.
pub fn login(store: &Store, opts: &LoginOpts) -> Result<i32> {
    running(store, &opts.zone)?;
    if store
        .load(&opts.zone)?
        .is_some_and(|z| z.brand == zones::model::Brand::Kvm)
    {
        // The zone holds only the hypervisor: the VM's own system is reached on its console.
        return Err(LoginError::Other(format!(
            "zone '{}' is a kvm zone and has no shell: use zlogin -C {} for the VM's console",
            opts.zone, opts.zone
        )));
    }
    let paths = ZonePaths::new(store, &opts.zone);
    let (st, _) = container::state(&paths.runz_root, &opts.zone)?;
    let base = st.config.process().clone().unwrap_or_default();
    let tty = opts.command.is_empty();
    let process = login_process(&st.rootfs, &base, opts, tty)?;
    let (ours, theirs) = if tty {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| LoginError::Other(format!("socketpair: {e}")))?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    let pid = container::exec(ExecOpts {
        root: paths.runz_root.clone(),
        id: opts.zone.clone(),
        process,
        console_socket: None,
        console_fd: theirs,
        pidfd_socket: None,
        pid_file: None,
        preserve_fds: 0,
        ignore_paused: false,
        sub_cgroups: Vec::new(),
    })?;
    Ok(match ours {
        Some(sock) => {
            let master = zones_engine::console::recv_master(&sock)
                .map_err(|e| LoginError::Other(e.to_string()))?;
            container::forward_signals(pid);
            zones_engine::console::relay(master, pid)
                .map_err(|e| LoginError::Other(e.to_string()))?
        }
        None => container::wait_foreground(pid),
    })
}

/// What `zlogin -C` was asked for.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleOpts {
    /// The escape character (`-e c`, default `~`); None with `-E`.
    pub escape: Option<u8>,
    /// `-d`: disconnect when the zone halts (otherwise wait for it to boot again, as the
    /// illumos console connection persists across halts and boots).
    pub disconnect_on_halt: bool,
}

impl Default for ConsoleOpts {
    fn default() -> Self {
        ConsoleOpts {
            escape: Some(b'~'),
            disconnect_on_halt: false,
        }
    }
}

/// After EOF on stdin, how long the console must be quiet before zlogin -C leaves (the
/// zone's answer to the last input is shown), and the most it waits in all.
const EOF_DRAIN_IDLE: Duration = Duration::from_millis(300);
const EOF_DRAIN_MAX: Duration = Duration::from_secs(3);

/// While the zone is down (no `-d`), how often zlogin -C tries to reach its console again.
const RECONNECT_TICK: Duration = Duration::from_millis(250);

/// `zlogin -C`: attach to the console; `<escape>.` at the start of a line the user typed
/// detaches, so does EOF on stdin; with `-d` so does the zone halting.
pub fn console(store: &Store, zone: &str, opts: &ConsoleOpts) -> Result<()> {
    let st = store
        .state(zone)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(zone.to_string()))?;
    let st = effective_state(store, zone, st);
    if !matches!(st, ZoneState::Ready | ZoneState::Running) {
        return Err(LoginError::NotRunning {
            zone: zone.to_string(),
            state: st,
        });
    }
    let paths = ZonePaths::new(store, zone);
    let mut sock = UnixStream::connect(paths.console_sock()).map_err(|e| {
        LoginError::Other(format!(
            "zone '{zone}': console {}: {e}",
            paths.console_sock().display()
        ))
    })?;
    eprintln!("[Connected to zone '{zone}' console]");
    let raw = RawMode::enter();
    let mut scan = EscapeScanner::new(opts.escape);
    let result = loop {
        match relay_console(&sock, &mut scan) {
            Ok(Ended::ZoneGone) if !opts.disconnect_on_halt => {
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\r\n[NOTICE: Zone halted]\r\n");
                let _ = out.flush();
                match wait_for_console(&paths, &mut scan) {
                    Ok(Some(s)) => sock = s,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            Ok(_) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(raw);
    eprintln!("\n[Connection to zone '{zone}' console closed]");
    result
}

/// Why a console relay ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// `~.`, or EOF on stdin.
    User,
    /// The supervisor closed the connection: the zone halted.
    ZoneGone,
}

/// The zone is down: read stdin for `~.` (or EOF) and try the console socket every tick
/// until the zone is back (Some) or the user leaves (None). What the user types meanwhile
/// has no console to go to and is dropped, as there is no zone to read it.
fn wait_for_console(paths: &ZonePaths, scan: &mut EscapeScanner) -> Result<Option<UnixStream>> {
    let stdin = std::io::stdin();
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(s) = UnixStream::connect(paths.console_sock()) {
            return Ok(Some(s));
        }
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let tick = PollTimeout::try_from(RECONNECT_TICK).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, tick) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(LoginError::Other(format!("poll: {e}"))),
        }
        match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(n) => {
                if scan.feed(&buf[..n]).1 {
                    return Ok(None);
                }
            }
        }
    }
}

/// Copy stdin → console and console → stdout until the user leaves (`~.`, EOF on stdin)
/// or the console connection closes.
fn relay_console(sock: &UnixStream, scan: &mut EscapeScanner) -> Result<Ended> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    let mut sock_w = sock
        .try_clone()
        .map_err(|e| LoginError::Other(e.to_string()))?;
    let mut sock_r = sock
        .try_clone()
        .map_err(|e| LoginError::Other(e.to_string()))?;
    loop {
        let mut fds = [
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(LoginError::Other(format!("poll: {e}"))),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if sock_ready {
            match sock_r.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(Ended::ZoneGone),
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if stdin_ready {
            let n = match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    drain(&mut sock_r, &mut out);
                    return Ok(Ended::User);
                }
                Ok(n) => n,
            };
            let (forward, leave) = scan.feed(&buf[..n]);
            if sock_w.write_all(&forward).is_err() {
                return Ok(Ended::ZoneGone);
            }
            if leave {
                return Ok(Ended::User);
            }
        }
    }
}

/// After EOF on stdin: show what the console still says (its answer to the last input)
/// until it has been quiet for EOF_DRAIN_IDLE, at most EOF_DRAIN_MAX.
fn drain(sock: &mut UnixStream, out: &mut std::io::Stdout) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < EOF_DRAIN_MAX {
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        let idle = PollTimeout::try_from(EOF_DRAIN_IDLE).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, idle) {
            Ok(0) => return,
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
        }
    }
}

/// The longest terminal answer (CSI sequence) the scanner follows; longer: user input.
const MAX_CSI: usize = 32;

/// Finds `<escape>.` at the start of a line the USER typed. The terminal's answers to the
/// console's queries (a shell's cursor position query `ESC [ 6 n` is answered `ESC [ r ; c R`
/// on stdin, after the user's Enter) are forwarded but do not count as typing: illumos
/// zlogin, like ssh, matches the escape against the user's keystrokes, and a busybox prompt
/// would otherwise never let `~.` be first on its line.
#[derive(Debug)]
struct EscapeScanner {
    escape: Option<u8>,
    at_line_start: bool,
    pending_escape: bool,
    /// Inside an escape sequence from the terminal: its bytes so far, and whether the user
    /// was at the start of a line before it.
    seq: Option<(Vec<u8>, bool)>,
}

impl EscapeScanner {
    fn new(escape: Option<u8>) -> Self {
        EscapeScanner {
            escape,
            at_line_start: true,
            pending_escape: false,
            seq: None,
        }
    }

    /// Scan input: returns the bytes to forward to the console and whether the user asked
    /// to disconnect (`<escape>.`; what followed it is dropped).
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut fwd = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if let Some((seq, before)) = &mut self.seq {
                fwd.push(b);
                seq.push(b);
                let before = *before;
                let done = match seq.len() {
                    2 if b != b'[' => Some(false),
                    2 => None,
                    // Terminal reports: cursor position (R), status (n), device attributes
                    // (c), mode (y), window (t); any other final byte is a key.
                    _ if (0x40..=0x7e).contains(&b) => {
                        Some(matches!(b, b'R' | b'n' | b'c' | b'y' | b't'))
                    }
                    n if n > MAX_CSI || !(0x20..=0x3f).contains(&b) => Some(false),
                    _ => None,
                };
                if let Some(report) = done {
                    self.at_line_start = report && before;
                    self.seq = None;
                }
                continue;
            }
            if self.pending_escape {
                self.pending_escape = false;
                if b == b'.' {
                    return (fwd, true);
                }
                if let Some(e) = self.escape {
                    fwd.push(e);
                    // <escape><escape> sends one escape character.
                    if b == e {
                        self.at_line_start = false;
                        continue;
                    }
                }
            }
            if b == 0x1b {
                self.seq = Some((vec![b], self.at_line_start));
                fwd.push(b);
                continue;
            }
            if self.at_line_start && Some(b) == self.escape {
                self.pending_escape = true;
                continue;
            }
            fwd.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        (fwd, false)
    }
}

/// The terminal on stdin in raw mode while it lives (nothing when stdin is not a tty).
struct RawMode(Option<termios::Termios>);

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_found_in_the_zones_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nzone:x:1000:1000::/home/zone:\n";
        let u = find_user(passwd, "zone").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.shell, "/bin/sh");
        assert_eq!(u.home, "/home/zone");
        assert!(find_user(passwd, "nobody").is_none());
    }

    fn scan(esc: Option<u8>, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut s = EscapeScanner::new(esc);
        let mut all = Vec::new();
        for c in chunks {
            let (f, leave) = s.feed(c);
            all.extend(f);
            if leave {
                return (all, true);
            }
        }
        (all, false)
    }

    #[test]
    fn the_escape_is_matched_at_the_start_of_what_the_user_typed() {
        let t = Some(b'~');
        assert_eq!(scan(t, &[b"~."]), (vec![], true));
        assert_eq!(scan(t, &[b"ls\r~."]), (b"ls\r".to_vec(), true));
        // Not at the start of a line: forwarded.
        assert_eq!(scan(t, &[b"a~."]), (b"a~.".to_vec(), false));
        // ~~ sends one ~.
        assert_eq!(scan(t, &[b"~~."]), (b"~.".to_vec(), false));
        // The terminal's cursor position report after Enter, split across reads, is not
        // typing; an arrow key is.
        assert_eq!(
            scan(t, &[b"\r\x1b[2", b"4;1R", b"~."]),
            (b"\r\x1b[24;1R".to_vec(), true)
        );
        assert_eq!(scan(t, &[b"\r\x1b[A~."]), (b"\r\x1b[A~.".to_vec(), false));
        // ESC [ 2 ~ (Insert) ends at its ~: it is not the escape.
        assert_eq!(scan(t, &[b"\x1b[2~."]), (b"\x1b[2~.".to_vec(), false));
        // -e #, and -E (no escape at all).
        assert_eq!(scan(Some(b'#'), &[b"~.\r#."]), (b"~.\r".to_vec(), true));
        assert_eq!(scan(None, &[b"~.\0."]), (b"~.\0.".to_vec(), false));
    }
}
