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
use oci_spec::runtime::{LinuxResources, Process};

use crate::log;
use crate::runtime::container::{self, CreateOpts};
use crate::runtime::{checkpoint, console, spec, state, trace};

#[derive(Parser, Debug)]
#[command(
    name = "runz",
    about = "runz: an OCI container runtime (runc-compatible), the engine of Zones for Linux",
    after_help = "Examples:\n  runz spec && runz run -b . web\n  runz create -b /bundles/web web && runz start web\n  runz list -f json\n  runz kill web TERM && runz delete web\n\nExit status: 0 success, 1 error, 2 usage error."
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
    /// Use the systemd cgroup driver: cgroupsPath is slice:prefix:name, the cgroup a transient
    /// scope unit (needs systemd as PID 1 and cgroup v2).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless mode: true, false or auto.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// The criu binary for checkpoint and restore: a path, or a name in $PATH.
    #[arg(long, global = true, default_value = "criu")]
    criu: PathBuf,
    /// Print the version (runc's layout: version, commit, spec lines).
    #[arg(short = 'v', long = "version")]
    version: bool,
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
    Start {
        /// The container's id.
        id: String,
    },
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
    State {
        /// The container's id.
        id: String,
    },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// The container's id.
        id: String,
        /// Signal: a number, KILL or SIGKILL.
        signal: Option<String>,
        /// Signal every process of the container (works after init has exited).
        #[arg(long, short = 'a', hide = true)]
        all: bool,
    },
    /// Delete a stopped container (any container with --force).
    Delete {
        /// The container's id.
        id: String,
        /// Delete the container even if it is running (it is killed first).
        #[arg(long, short = 'f')]
        force: bool,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        /// Output format: table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Print only the ids.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print what this runtime supports, as runtime-spec Features JSON.
    Features,
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause {
        /// The container's id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// The container's id.
        id: String,
    },
    /// List the processes of a container.
    Ps {
        /// Output format: table or json.
        #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// The container's id.
        id: String,
        /// Arguments for ps(1) (default -ef); its lines of the container's processes are shown.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change the resource limits of a container.
    Update(UpdateArgs),
    /// Checkpoint a running container with CRIU (the container is gone afterwards unless
    /// --leave-running or --pre-dump).
    Checkpoint(CheckpointArgs),
    /// Restore a container from a checkpoint, as a new container of the bundle.
    Restore(RestoreArgs),
    /// Print resource usage (--stats) or stream it, with OOM events, every --interval.
    Events {
        /// The container's id.
        id: String,
        /// Print one stats object and exit.
        #[arg(long)]
        stats: bool,
        /// How often to sample, e.g. 5s, 500ms, 1m.
        #[arg(long, default_value = "5s")]
        interval: String,
    },
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// The container's id.
    id: String,
    /// The command and its arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// A process.json with the whole process to run.
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Unix socket that receives the pty master when a terminal is allocated.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the process.
    #[arg(long = "pidfd-socket")]
    pidfd_socket: Option<PathBuf>,
    /// Return once the process runs, instead of waiting for it.
    #[arg(long, short = 'd')]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    tty: bool,
    /// Working directory inside the container.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Additional group ids; repeatable.
    #[arg(long = "additional-gids", short = 'g')]
    additional_gids: Vec<u32>,
    /// Add a capability (e.g. CAP_NET_ADMIN); repeatable.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Pass this many extra file descriptors (3 onwards) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Exec even when the container is paused.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Run the process in an existing sub-cgroup: [CONTROLLER:]PATH; repeatable.
    #[arg(long = "cgroup")]
    cgroup: Vec<String>,
    /// Accepted for runc compatibility; SELinux is not supported.
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility; AppArmor is not supported.
    #[arg(long, hide = true)]
    apparmor: Option<String>,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    /// The container's id.
    id: String,
    /// LinuxResources JSON from a file, or - for stdin.
    #[arg(long, short = 'r')]
    resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// CPU CFS period, in microseconds.
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU CFS quota, in microseconds per period (-1: no limit).
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    cpu_share: Option<u64>,
    /// CPU realtime period, in microseconds.
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime runtime, in microseconds per period.
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs the container may run on (e.g. 0-3,5).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the container may use (e.g. 0-1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit, bytes or with a suffix (k, m, g); -1: no limit.
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit, bytes or with a suffix (k, m, g); -1: no limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit, bytes or with a suffix (k, m, g); -1: unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of processes (-1: no limit).
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Intel RDT/CAT L3 cache schema: refused, this runtime has no Intel RDT support.
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema: refused, this runtime has no Intel RDT support.
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
}

/// The CRIU options `checkpoint` and `restore` share (runc's names).
#[derive(Args, Debug)]
struct CriuArgs {
    /// Directory of the CRIU images (default: ./checkpoint).
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image directory).
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore.
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties: only "network" (always so).
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    /// Deduplicate memory images as they are written.
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    /// Lazy migration through userfaultfd: refused, runz does not support it.
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
}

#[derive(Args, Debug)]
struct CheckpointArgs {
    /// The container's id.
    id: String,
    #[command(flatten)]
    criu: CriuArgs,
    /// Images of an earlier --pre-dump, relative to --image-path.
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump the memory only and leave the container running (for a later dump with
    /// --parent-path).
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// ADDRESS:PORT of a CRIU page server that receives the memory pages.
    #[arg(long = "page-server")]
    page_server: Option<String>,
    /// With --lazy-pages only: refused, as --lazy-pages is.
    #[arg(long = "status-fd", allow_negative_numbers = true)]
    status_fd: Option<i32>,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// The container's id.
    id: String,
    #[command(flatten)]
    criu: CriuArgs,
    /// Path to the bundle (the directory of config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Return once the container is restored, instead of waiting for it.
    #[arg(long, short = 'd')]
    detach: bool,
    /// File to write the restored init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Refused: restoring a container with a terminal is not supported by runz yet.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: CRIU puts the restored root back as it was, nothing
    /// pivots.
    #[arg(long = "no-pivot", hide = true)]
    no_pivot: bool,
    /// Accepted for runc compatibility (the caller stays the parent anyway).
    #[arg(long = "no-subreaper", hide = true)]
    no_subreaper: bool,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// The container's id.
    id: String,
    /// Path to the bundle (the directory of config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of init.
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

/// The clap definition of `runz` (for generated man pages and shell completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `runz` binary: returns the process exit code.
pub fn main() -> i32 {
    trace::mark("runz: main");
    let args = normalise_args(std::env::args_os());
    if asks_for_version(&args) {
        print!("{}", version_text());
        return 0;
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            // runc's words and status for a command it does not have.
            let name = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            log::error(&format!("No help topic for '{name}'"));
            return 3;
        }
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
    log::debug(&format!(
        "{} {}",
        log::program(),
        args.iter()
            .skip(1)
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let exec = matches!(cli.command, Command::Exec(_));
    match dispatch(cli) {
        Ok(code) => code,
        // runc: a failed exec exits 255, so callers tell it from the process's own status.
        Err(e) if exec => {
            log::error(&format!("exec failed: {e:#}"));
            255
        }
        Err(e) => {
            log::error(&format!("{e:#}"));
            1
        }
    }
}

/// `-v` or `--version` before the command (after global options), as runc takes it.
fn asks_for_version(args: &[std::ffi::OsString]) -> bool {
    const WITH_VALUE: &[&str] = &["--root", "--log", "--log-format", "--criu", "--rootless"];
    let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        match a {
            "-v" | "--version" => return true,
            a if WITH_VALUE.contains(&a) => {
                it.next();
            }
            a if a.starts_with('-') => {}
            _ => return false,
        }
    }
    false
}

/// runc's version layout (tools parse the `runc version X` and `spec: X` lines).
fn version_text() -> String {
    format!(
        "{} version {}\ncommit: {}\nspec: {}\n",
        log::program(),
        env!("CARGO_PKG_VERSION"),
        option_env!("RUNZ_COMMIT").unwrap_or(concat!("v", env!("CARGO_PKG_VERSION"))),
        spec::OCI_VERSION
    )
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
    SYSTEMD_CGROUP.store(cli.systemd_cgroup, std::sync::atomic::Ordering::Relaxed);
    // Before anything is opened (exeseal, log files, sockets): see reserve_preserved.
    let preserve = match &cli.command {
        Command::Create(a) | Command::Run { create: a, .. } => Some(a.preserve_fds),
        Command::Exec(a) => Some(a.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserve {
        let listen = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(0);
        crate::runtime::init::reserve_preserved(n.saturating_add(listen).min(1024));
    }
    let root = cli.root.clone();
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec(_)
    ) {
        // These put processes into a container: not from a binary the container could write.
        crate::runtime::exeseal::ensure_sealed().context("runz: protect the runz binary")?;
    }
    match cli.command {
        Command::Spec { bundle } => {
            // `runz spec --rootless` (runc's form) reaches here through the global flag.
            let rootless = cli.rootless.as_deref() == Some("true");
            write_spec(&bundle, rootless)?;
        }
        Command::Create(a) => {
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
        Command::Exec(a) => return exec(&root, a),
        Command::Pause { id } => container::pause(&root, &id)?,
        Command::Resume { id } => container::resume(&root, &id)?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, &id, &format, &ps_args)?,
        Command::Update(a) => {
            let res = update_resources(&a)?;
            container::update(&root, &a.id, &res)?;
        }
        Command::Events {
            id,
            stats,
            interval,
        } => events(&root, &id, stats, &interval)?,
        Command::Checkpoint(a) => {
            let opts = criu_opts(&cli.criu, &a.criu, a.status_fd)?;
            let opts = checkpoint::CriuOpts {
                parent_path: a.parent_path,
                leave_running: a.leave_running,
                pre_dump: a.pre_dump,
                page_server: a
                    .page_server
                    .as_deref()
                    .map(parse_page_server)
                    .transpose()?,
                ..opts
            };
            checkpoint::checkpoint(&root, &a.id, &opts)?;
        }
        Command::Restore(a) => return restore(&root, &cli.criu, a),
    }
    Ok(0)
}

/// The shared CRIU options, with runc's checks and the refusals of what runz lacks.
fn criu_opts(criu: &Path, a: &CriuArgs, status_fd: Option<i32>) -> Result<checkpoint::CriuOpts> {
    if a.lazy_pages {
        bail!(
            "--lazy-pages: lazy migration (CRIU's lazy-pages daemon and page server over \
             userfaultfd) is not supported by runz"
        );
    }
    if status_fd.is_some_and(|fd| fd != -1) {
        bail!("--status-fd goes with --lazy-pages, which runz does not support");
    }
    for ns in &a.empty_ns {
        // runc's words; the network namespace is always restored empty.
        if ns != "network" {
            bail!("namespace {ns:?} is not supported");
        }
    }
    let image_path = match &a.image_path {
        Some(p) => p.clone(),
        None => std::env::current_dir()?.join("checkpoint"),
    };
    Ok(checkpoint::CriuOpts {
        criu: criu.to_path_buf(),
        image_path,
        work_path: a.work_path.clone(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        auto_dedup: a.auto_dedup,
        manage_cgroups_mode: a
            .manage_cgroups_mode
            .as_deref()
            .filter(|m| !m.is_empty())
            .map(str::parse)
            .transpose()?,
        ..Default::default()
    })
}

/// `--page-server ADDRESS:PORT`, with runc's messages.
fn parse_page_server(s: &str) -> Result<(String, u16)> {
    let (addr, port) = s
        .rsplit_once(':')
        .filter(|(a, p)| !a.is_empty() && !p.is_empty())
        .ok_or_else(|| anyhow::anyhow!("Use --page-server ADDRESS:PORT to specify page server"))?;
    let port = port
        .parse()
        .map_err(|_| anyhow::anyhow!("Invalid port number"))?;
    Ok((addr.trim_matches(['[', ']']).to_string(), port))
}

/// `runz restore`: a new container from the images; in the foreground wait for its init and
/// delete the container afterwards, as `run` does.
fn restore(root: &Path, criu: &Path, a: RestoreArgs) -> Result<i32> {
    if a.console_socket.is_some() {
        bail!(
            "--console-socket: restoring a container with a terminal is not supported by runz yet"
        );
    }
    let opts = checkpoint::RestoreOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        bundle: a.bundle,
        pid_file: a.pid_file,
        systemd_cgroup: SYSTEMD_CGROUP.load(std::sync::atomic::Ordering::Relaxed),
        criu: criu_opts(criu, &a.criu, None)?,
    };
    let pid = checkpoint::restore(&opts)?;
    if a.detach {
        return Ok(0);
    }
    let code = container::wait_foreground(pid);
    container::delete(root, &a.id, true)?;
    Ok(code)
}

/// The global --systemd-cgroup, for every create of this invocation (create, run).
static SYSTEMD_CGROUP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn create_opts(root: &Path, a: CreateArgs, console_fd: Option<OwnedFd>) -> CreateOpts {
    CreateOpts {
        root: root.to_path_buf(),
        id: a.id,
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        console_fd,
        pidfd_socket: a.pidfd_socket,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: SYSTEMD_CGROUP.load(std::sync::atomic::Ordering::Relaxed),
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
    let wants_tty = spec::wants_terminal(&bundle);
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
    let created = container::create(create_opts(root, a, theirs))?;
    trace::mark("run: created");
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
            container::forward_signals(created.pid);
            console::relay(master, created.pid)?
        }
        None => container::wait_foreground(created.pid),
    };
    trace::mark("run: process exited");
    if !keep {
        // As runc: the container's exit status is run's, also when its cgroup could not be
        // removed (someone else's processes in it); that is logged.
        if let Err(e) = container::delete(root, &id, true) {
            log::error(&e.to_string());
        }
    }
    Ok(code)
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
        // runc encodes an empty list as null.
        if all.is_empty() {
            writeln!(out, "null")?;
            return Ok(());
        }
        let v: Vec<_> = all.iter().map(|(st, s)| st.oci(*s)).collect();
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
        return Ok(());
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for (st, s) in &all {
        let pid = if *s == state::Status::Stopped {
            0
        } else {
            st.pid
        };
        rows.push([
            st.id.clone(),
            pid.to_string(),
            s.to_string(),
            st.bundle.display().to_string(),
            st.created.clone(),
            st.owner.clone(),
        ]);
    }
    for line in tab_columns(&rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Rows laid out as runc's table (Go's tabwriter with minimum width 12 and padding 3): every
/// column but the last as wide as its longest cell plus 3, at least 12.
fn tab_columns<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let mut widths = [12usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count() + 3);
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}", w = widths[i]));
                }
            }
            line
        })
        .collect()
}

/// A signal as runc takes it: a number, a name with or without SIG, any case.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        // 0 probes: does init exist and may we signal it (runc passes it on).
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}: numbers go from 0 to 64");
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
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false },
            "seccomp": {
                "enabled": true,
                "actions": seccomp::supported_actions(),
                "operators": seccomp::supported_operators(),
                "archs": seccomp::supported_archs(),
                "knownFlags": seccomp::known_flags(),
                "supportedFlags": seccomp::supported_flags(),
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } },
        },
        "annotations": {
            "io.github.zones-linux.runz.version": env!("CARGO_PKG_VERSION"),
        },
        "potentiallyUnsafeConfigAnnotations": [],
    })
}

/// `runz exec`: run a process in the container; in the foreground wait for it.
fn exec(root: &Path, a: ExecArgs) -> Result<i32> {
    let (st, _) = container::state(root, &a.id)?;
    let process = match &a.process {
        Some(path) => process_from_file(path)?,
        None => process_from_flags(st.config.process().clone().unwrap_or_default(), &a)?,
    };
    let terminal = process.terminal().unwrap_or(false);
    let own_console = !a.detach && terminal && a.console_socket.is_none();
    let (ours, theirs) = console_pair(own_console)?;
    let pid = container::exec(container::ExecOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process,
        console_socket: a.console_socket.clone(),
        console_fd: theirs,
        pidfd_socket: a.pidfd_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
    })?;
    if a.detach {
        return Ok(0);
    }
    Ok(match ours {
        Some(sock) => {
            let master = console::recv_master(&sock)?;
            container::forward_signals(pid);
            console::relay(master, pid)?
        }
        None => container::wait_foreground(pid),
    })
}

/// A socketpair to hold the pty ourselves, when `wanted`.
fn console_pair(wanted: bool) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !wanted {
        return Ok((None, None));
    }
    let (x, y) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Some(x), Some(y)))
}

/// The process of `runz exec --process FILE`, as runc reads it: fields the file leaves out
/// take their zero values (`user` is uid 0, gid 0), then runc's checks, in runc's words.
fn process_from_file(path: &Path) -> Result<Process> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {}", path.display()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parse process file {}", path.display()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("process property must not be empty"))?;
    obj.entry("user")
        .or_insert_with(|| serde_json::json!({ "uid": 0, "gid": 0 }));
    crate::runtime::sched::spec_flag_names(&mut v);
    let unknown = crate::runtime::capabilities::drop_unknown(&mut v);
    if !unknown.is_empty() {
        log::warn(&crate::runtime::capabilities::unknown_warning(&unknown));
    }
    let obj = v.as_object_mut().expect("checked above");
    let cwd = obj.get("cwd").and_then(|c| c.as_str()).unwrap_or("");
    if cwd.is_empty() {
        bail!("Cwd property must not be empty");
    }
    if !cwd.starts_with('/') {
        bail!("Cwd must be an absolute path");
    }
    if obj
        .get("args")
        .and_then(|a| a.as_array())
        .is_none_or(|a| a.is_empty())
    {
        bail!("args must not be empty");
    }
    serde_json::from_value(v).with_context(|| format!("parse process file {}", path.display()))
}

/// The process of `runz exec` without --process: the container's process with the command and
/// the flags' changes, as runc builds it.
fn process_from_flags(mut p: Process, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("exec: no command given: pass the command after the container id, or --process FILE");
    }
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    // Appended: a repeated name takes the later value in the earlier place (runc, Go's
    // os.Setenv), which the container side does for every process.
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        user.set_uid(
            uid.parse()
                .with_context(|| format!("--user {u:?}: expected UID[:GID] as numbers"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .with_context(|| format!("--user {u:?}: expected UID[:GID] as numbers"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut unknown = Vec::new();
        for name in &a.cap {
            let Ok(cap) =
                serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::json!(name))
            else {
                unknown.push(name.as_str());
                continue;
            };
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(cap);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    _ => caps.set_permitted(Some(s)),
                };
            }
        }
        if !unknown.is_empty() {
            // runc's words; the process runs without them.
            log::warn(&format!(
                "ignoring unknown or unavailable capabilities: [{}]",
                unknown.join(" ")
            ));
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `runz ps`: as runc, run ps(1) with the arguments (default `-ef`) and print its header and
/// the lines whose PID column is a process of the container; `-f json` prints the pids.
fn ps(root: &Path, id: &str, format: &str, args: &[String]) -> Result<()> {
    let pids = container::pids(root, id)?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let default = ["-ef".to_string()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("run ps")?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{}: {text}", exit_status_text(out.status));
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|t| t == "PID") else {
        bail!("couldn't find PID field in ps output");
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or("");
        let pid: i32 = field
            .parse()
            .map_err(|e| anyhow::anyhow!("unable to parse pid: {e}"))?;
        if pids.contains(&pid) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

/// Go's text of a child's exit: `exit status 1`, `signal: killed`.
fn exit_status_text(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {s}"),
        _ => "unknown exit".into(),
    }
}

/// A size in bytes: a number with an optional k/m/g suffix; -1 means unlimited.
fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap()], 1i64 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap()], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap()], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag} {s:?}: expected a size like 512m, 2g or bytes"))?;
    Ok(if n < 0 { -1 } else { n * mult })
}

/// The LinuxResources of `runz update`: from --resources (then every other flag is ignored,
/// as runc says in its help), or from the flags.
fn update_resources(a: &UpdateArgs) -> Result<LinuxResources> {
    // runc's words: Intel RDT is not there to take them.
    if a.l3_cache_schema.is_some() {
        bail!("Intel RDT/CAT: l3 cache schema is not enabled");
    }
    if a.mem_bw_schema.is_some() {
        bail!("Intel RDT/MBA: memory bandwidth schema is not enabled");
    }
    match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            return serde_json::from_str(&text)
                .context("--resources -: invalid LinuxResources JSON");
        }
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("read --resources {}", p.display()))?;
            return serde_json::from_str(&text).with_context(|| {
                format!("--resources {}: invalid LinuxResources JSON", p.display())
            });
        }
        None => {}
    }
    let mut res = LinuxResources::default();
    let mut mem = (*res.memory()).unwrap_or_default();
    let mut mem_set = res.memory().is_some();
    if let Some(v) = &a.memory {
        mem.set_limit(Some(parse_bytes("--memory", v)?));
        mem_set = true;
    }
    if let Some(v) = &a.memory_reservation {
        mem.set_reservation(Some(parse_bytes("--memory-reservation", v)?));
        mem_set = true;
    }
    if let Some(v) = &a.memory_swap {
        mem.set_swap(Some(parse_bytes("--memory-swap", v)?));
        mem_set = true;
    }
    if mem_set {
        res.set_memory(Some(mem));
    }
    let mut cpu = res.cpu().clone().unwrap_or_default();
    let cpu_flags = a.cpu_period.is_some()
        || a.cpu_quota.is_some()
        || a.cpu_share.is_some()
        || a.cpu_rt_period.is_some()
        || a.cpu_rt_runtime.is_some()
        || a.cpuset_cpus.is_some()
        || a.cpuset_mems.is_some();
    if let Some(v) = a.cpu_period {
        cpu.set_period(Some(v));
    }
    if let Some(v) = a.cpu_quota {
        cpu.set_quota(Some(v));
    }
    if let Some(v) = a.cpu_share {
        cpu.set_shares(Some(v));
    }
    if let Some(v) = a.cpu_rt_period {
        cpu.set_realtime_period(Some(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        cpu.set_realtime_runtime(Some(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
    }
    if let Some(v) = &a.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
    }
    if cpu_flags {
        res.set_cpu(Some(cpu));
    }
    if let Some(v) = a.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(v);
        res.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    Ok(res)
}

/// A Go-style duration: 5s, 500ms, 1m30s, 2h.
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let bad = || anyhow::anyhow!("--interval {s:?}: expected a duration like 5s, 500ms or 1m");
    let mut total = std::time::Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        total += std::time::Duration::from_secs_f64(secs);
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        bail!("--interval {s:?}: must be more than zero");
    }
    Ok(total)
}

/// `runz events`: one stats object, or a stream every interval until the container stops.
fn events(root: &Path, id: &str, once: bool, interval: &str) -> Result<()> {
    let every = parse_duration(interval)?;
    // runc's key order (type, id, data) and no data at all for an OOM event.
    // The data is the stats struct serialized as is: through serde_json::Value its keys
    // would come out sorted, not in runc's order.
    let emit = |kind: &str, data: Option<String>| -> Result<()> {
        let mut line = format!(
            "{{\"type\":{},\"id\":{}",
            serde_json::to_string(kind)?,
            serde_json::to_string(id)?
        );
        if let Some(d) = data {
            line.push_str(&format!(",\"data\":{d}"));
        }
        line.push('}');
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    };
    if once {
        return emit(
            "stats",
            Some(serde_json::to_string(&container::stats(root, id)?)?),
        );
    }
    let mut last_oom = None;
    loop {
        let (stats, ooms) = match container::stats_and_ooms(root, id) {
            Ok(s) => s,
            Err(container::ContainerError::NotRunning) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if last_oom.is_some_and(|n| ooms > n) {
            emit("oom", None)?;
        }
        last_oom = Some(ooms);
        emit("stats", Some(serde_json::to_string(&stats)?))?;
        std::thread::sleep(every);
    }
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
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("65").is_err());
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

    #[test]
    fn containerds_checkpoint_and_restore_argv_parse() {
        match parse(&[
            "runz",
            "--root",
            "/r",
            "checkpoint",
            "--image-path",
            "/i",
            "--work-path",
            "/w",
            "--leave-running",
            "--tcp-established",
            "--file-locks",
            "--pre-dump",
            "--parent-path",
            "../p",
            "--empty-ns",
            "network",
            "--manage-cgroups-mode",
            "soft",
            "c1",
        ])
        .command
        {
            Command::Checkpoint(a) => {
                assert_eq!(a.id, "c1");
                assert_eq!(a.criu.image_path, Some(PathBuf::from("/i")));
                assert_eq!(a.criu.work_path, Some(PathBuf::from("/w")));
                assert!(a.leave_running && a.pre_dump && a.criu.tcp_established);
                assert!(a.criu.file_locks);
                assert_eq!(a.parent_path, Some(PathBuf::from("../p")));
                assert_eq!(a.criu.empty_ns, ["network"]);
                let o = criu_opts(Path::new("criu"), &a.criu, a.status_fd).unwrap();
                assert_eq!(o.manage_cgroups_mode, Some(checkpoint::CgroupsMode::Soft));
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "runz",
            "restore",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/p",
            "--detach",
            "--image-path",
            "/i",
            "--work-path",
            "/w",
            "-no-subreaper",
            "c1",
        ])
        .command
        {
            Command::Restore(a) => {
                assert_eq!((a.id.as_str(), a.bundle.as_path()), ("c1", Path::new("/b")));
                assert!(a.detach && a.no_subreaper);
                assert_eq!(a.pid_file, Some(PathBuf::from("/b/p")));
            }
            other => panic!("{other:?}"),
        }
        let lazy = parse(&["runz", "checkpoint", "--lazy-pages", "c"]);
        let Command::Checkpoint(a) = lazy.command else {
            panic!("not a checkpoint")
        };
        assert!(criu_opts(Path::new("criu"), &a.criu, None)
            .unwrap_err()
            .to_string()
            .starts_with("--lazy-pages"));
        assert_eq!(
            parse_page_server("10.0.0.1:27").unwrap(),
            ("10.0.0.1".into(), 27)
        );
        assert!(parse_page_server("nope").is_err());
    }
}
