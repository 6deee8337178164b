//! zlogin: a process in a running zone (every namespace, the cgroup, the zone's capability
//! bounding set and seccomp filter), or the zone's console through its supervisor.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios;
use oci_spec::runtime::{Process, User};
use zones::state::ZoneState;
use zones::store::Store;

use super::admin::effective_state;
use super::rootfile::{RootFileError, ZoneRoot};
use super::{engine, ZonePaths};
use crate::runtime::container::{self, ExecOpts};

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
    })?;
    Ok(match ours {
        Some(sock) => {
            let master = crate::runtime::console::recv_master(&sock)
                .map_err(|e| LoginError::Other(e.to_string()))?;
            container::forward_signals(pid);
            crate::runtime::console::relay(master, pid)
                .map_err(|e| LoginError::Other(e.to_string()))?
        }
        None => container::wait_foreground(pid),
    })
}

/// `zlogin -C`: attach to the console; `<escape>.` at the start of a line detaches.
pub fn console(store: &Store, zone: &str, escape: u8) -> Result<()> {
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
    let sock = UnixStream::connect(paths.console_sock()).map_err(|e| {
        LoginError::Other(format!(
            "zone '{zone}': console {}: {e}",
            paths.console_sock().display()
        ))
    })?;
    eprintln!("[Connected to zone '{zone}' console]");
    let raw = RawMode::enter();
    let result = relay_console(&sock, escape);
    drop(raw);
    eprintln!("\n[Connection to zone '{zone}' console closed]");
    result
}

/// Copy stdin → console and console → stdout until EOF on either side or `~.`.
fn relay_console(sock: &UnixStream, escape: u8) -> Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut at_line_start = true;
    let mut pending_escape = false;
    let mut buf = [0u8; 4096];
    let mut sock_w = sock
        .try_clone()
        .map_err(|e| LoginError::Other(e.to_string()))?;
    let mut sock_r = sock
        .try_clone()
        .map_err(|e| LoginError::Other(e.to_string()))?;
    let mut stdin_open = true;
    loop {
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(LoginError::Other(format!("poll: {e}"))),
        }
        let sock_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = stdin_open && fds[1].revents().is_some_and(|r| !r.is_empty());
        if sock_ready {
            match sock_r.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
        if stdin_ready {
            let n = match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    continue;
                }
                Ok(n) => n,
            };
            let mut forward = Vec::with_capacity(n + 1);
            for &b in &buf[..n] {
                if pending_escape {
                    pending_escape = false;
                    if b == b'.' {
                        return Ok(());
                    }
                    forward.push(escape);
                    if b == escape {
                        at_line_start = false;
                        continue;
                    }
                }
                if at_line_start && b == escape {
                    pending_escape = true;
                    continue;
                }
                forward.push(b);
                at_line_start = b == b'\r' || b == b'\n';
            }
            if sock_w.write_all(&forward).is_err() {
                return Ok(());
            }
        }
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
}
