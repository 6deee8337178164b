//! `runz`: the runc-compatible command line. Thin: parse, call the engine, print.
//!
//! The argv shapes follow what containerd's shim, conmon, CRI-O and podman send
//! (`../shared/reference/oci-runtime.md` §1): global flags before the subcommand, `--flag=value`
//! forms, flags before or after the container id.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use crate::log;
use crate::runtime::container::{self, CreateOpts};
use crate::runtime::{console, spec, state};

#[derive(Parser, Debug)]
#[command(
    name = "runz",
    version,
    about = "runz: an OCI container runtime (runc-compatible), the engine of Zones for Linux"
)]
struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/runz")]
    root: PathBuf,
    /// Write diagnostics to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Diagnostics format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver (not supported yet).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility and ignored (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a default config.json (like `runc spec`).
    Spec {
        /// Write config.json here. With the global --rootless, the spec is for a rootless
        /// container (user namespace, no network namespace).
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
    },
    /// Create a container: set everything up; the process waits for `start`.
    Create(CreateArgs),
    /// Run the process of a created container.
    Start { id: String },
    /// Create and start a container; in the foreground, wait for it and return its exit code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Do not wait for the process; return once it runs.
        #[arg(long, short = 'd')]
        detach: bool,
        /// Keep the container's state after it exits (foreground only).
        #[arg(long)]
        keep: bool,
        /// Accepted for runc compatibility (the caller stays the parent anyway).
        #[arg(long = "no-subreaper", hide = true)]
        no_subreaper: bool,
    },
    /// Print the state of a container as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        id: String,
        /// Signal: a number, KILL or SIGKILL.
        signal: Option<String>,
        /// Signal every process of the container (works after init has exited).
        #[arg(long, short = 'a', hide = true)]
        all: bool,
    },
    /// Delete a stopped container (any container with --force).
    Delete {
        id: String,
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Print only the ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print what this runtime supports, as runtime-spec Features JSON.
    Features,
}

#[derive(Args, Debug)]
struct CreateArgs {
    id: String,
    /// Path to the bundle (the directory of config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of init (accepted; the pidfd is not sent yet).
    #[arg(long = "pidfd-socket")]
    pidfd_socket: Option<PathBuf>,
    /// File to write init's pid to (digits only, written atomically).
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot_root (move the rootfs onto / and chroot).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
}

/// Entry point of the `runz` binary: returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse_from(normalise_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let format = if cli.log_format == "json" {
        log::Format::Json
    } else {
        log::Format::Text
    };
    log::init(cli.log.clone(), format, cli.debug);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            log::error(&msg);
            1
        }
    }
}

/// runc (urfave/cli) takes single-dash long flags, and go-runc sends `-no-subreaper`: turn known
/// ones into their two-dash form.
fn normalise_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const LONG: &[&str] = &[
        "-no-subreaper",
        "-no-pivot",
        "-no-new-keyring",
        "-pid-file",
        "-bundle",
    ];
    args.map(|a| match a.to_str() {
        Some(s)
            if LONG
                .iter()
                .any(|l| s == *l || s.starts_with(&format!("{l}="))) =>
        {
            format!("-{s}").into()
        }
        _ => a,
    })
    .collect()
}

fn dispatch(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet; use the cgroupfs driver (omit the flag)");
    }
    let root = cli.root.clone();
    match cli.command {
        Command::Spec { bundle } => {
            let rootless = cli.rootless.as_deref() == Some("true");
            write_spec(&bundle, rootless)?;
        }
        Command::Create(a) => {
            check_pidfd_socket(&a)?;
            container::create(create_opts(&root, a, None))?;
        }
        Command::Start { id } => container::start(&root, &id)?,
        Command::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => return run(&root, create, detach, keep),
        Command::State { id } => {
            let (st, status) = container::state(&root, &id)?;
            let out = serde_json::to_string_pretty(&st.oci(status))?;
            print!("{out}");
        }
        Command::Kill { id, signal, all } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&root, &id, sig, all)?;
        }
        Command::Delete { id, force } => container::delete(&root, &id, force)?,
        Command::List { format, quiet } => list(&root, &format, quiet)?,
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
        }
    }
    Ok(0)
}

fn check_pidfd_socket(a: &CreateArgs) -> Result<()> {
    if let Some(p) = &a.pidfd_socket {
        log::debug(&format!(
            "--pidfd-socket {} accepted; no pidfd is sent yet",
            p.display()
        ));
    }
    Ok(())
}

fn create_opts(root: &Path, a: CreateArgs, console_fd: Option<OwnedFd>) -> CreateOpts {
    CreateOpts {
        root: root.to_path_buf(),
        id: a.id,
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        console_fd,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}

fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let json = serde_json::to_string_pretty(&spec::default_spec(rootless))?;
    std::fs::write(&path, json).with_context(|| format!("write {}", path.display()))
}

/// `runz run`: create + start; in the foreground relay the terminal (if any), wait, and delete.
fn run(root: &Path, a: CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let id = a.id.clone();
    let bundle = a.bundle.clone();
    let wants_tty = wants_terminal(&bundle);
    // In the foreground with a terminal and no socket of the caller's, runz holds the pty itself.
    let own_console = !detach && wants_tty && a.console_socket.is_none();
    let (ours, theirs) = if own_console {
        let (x, y) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    check_pidfd_socket(&a)?;
    let created = container::create(create_opts(root, a, theirs))?;
    if let Err(e) = container::start(root, &id) {
        let _ = container::delete(root, &id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = match ours {
        Some(sock) => {
            let master = console::recv_master(&sock)?;
            console::relay(master, created.pid)?
        }
        None => container::wait_foreground(created.pid),
    };
    if !keep {
        container::delete(root, &id, true)?;
    }
    Ok(code)
}

/// Whether the bundle's process wants a terminal (false when the config cannot be read: create
/// reports that error itself).
fn wants_terminal(bundle: &Path) -> bool {
    spec::load(bundle)
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let all = container::list(root);
    let mut out = std::io::stdout().lock();
    if quiet {
        for (st, _) in &all {
            writeln!(out, "{}", st.id)?;
        }
        return Ok(());
    }
    if format == "json" {
        let v: Vec<_> = all.iter().map(|(st, s)| st.oci(*s)).collect();
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    )?;
    for (st, s) in &all {
        let pid = if *s == state::Status::Stopped {
            0
        } else {
            st.pid
        };
        writeln!(
            out,
            "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
            st.id,
            pid,
            s,
            st.bundle.display(),
            st.created,
            st.owner
        )?;
    }
    Ok(())
}

/// A signal as runc takes it: a number, a name with or without SIG, any case.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}: numbers go from 1 to 64");
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| {
            anyhow::anyhow!("invalid signal {s:?}: use a number, or a name like KILL or SIGTERM")
        })
}

/// The runtime-spec Features document, from what this build implements.
fn features() -> serde_json::Value {
    use crate::runtime::{capabilities, mounts, seccomp};
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mounts::known_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities::all_known(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": seccomp::supported_actions(),
                "operators": seccomp::supported_operators(),
                "archs": seccomp::supported_archs(),
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
        "annotations": {
            "io.github.zones-linux.runz.version": env!("CARGO_PKG_VERSION"),
        },
        "potentiallyUnsafeConfigAnnotations": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(normalise_args(args.iter().map(|s| s.into()))).unwrap()
    }

    #[test]
    fn signals_parse_as_number_name_or_sig_name() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert!(parse_signal("NOPE")
            .unwrap_err()
            .to_string()
            .contains("NOPE"));
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn containerd_create_argv_parses() {
        let c = parse(&[
            "runz",
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/s",
            "c1",
        ]);
        assert_eq!(c.root, PathBuf::from("/run/containerd/runc/default"));
        assert_eq!(c.log_format, "json");
        match c.command {
            Command::Create(a) => {
                assert_eq!(a.id, "c1");
                assert_eq!(a.bundle, PathBuf::from("/b"));
                assert_eq!(a.pid_file, Some(PathBuf::from("/b/init.pid")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_after_the_id_and_equals_forms_parse() {
        let c = parse(&[
            "runz",
            "--root=/r",
            "create",
            "c2",
            "--bundle",
            "/b",
            "--preserve-fds=2",
        ]);
        match c.command {
            Command::Create(a) => {
                assert_eq!(a.id, "c2");
                assert_eq!(a.preserve_fds, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["runz", "delete", "c2", "--force"]).command,
            Command::Delete { force: true, .. }
        ));
    }

    #[test]
    fn kill_all_short_and_long_and_single_dash_flags_parse() {
        match parse(&["runz", "kill", "-a", "c", "9"]).command {
            Command::Kill { all, signal, .. } => {
                assert!(all);
                assert_eq!(signal.as_deref(), Some("9"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["runz", "kill", "--all", "c", "KILL"]).command,
            Command::Kill { all: true, .. }
        ));
        assert!(matches!(
            parse(&["runz", "run", "-no-subreaper", "-d", "c"]).command,
            Command::Run {
                detach: true,
                no_subreaper: true,
                ..
            }
        ));
        let c = parse(&["runz", "--rootless", "false", "state", "c"]);
        assert_eq!(c.rootless.as_deref(), Some("false"));
    }
}
