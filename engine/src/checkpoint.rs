//! Checkpoint and restore through CRIU (`runz checkpoint`, `runz restore`).
//!
//! runc 1.1 talks to `criu swrk` over protobuf RPC; runz runs CRIU's own command line
//! (`criu dump`, `criu pre-dump`, `criu restore`) with the same options, one flag per RPC
//! field runc sets: no protobuf code, and the exact command is in the debug log. CRIU's
//! `--restore-sibling` makes the restored init runz's child (as runc's RPC does), so a
//! foreground restore waits for it as `run` does.
//!
//! What runc does and runz does too: the image directory gets `descriptors.json` (what fds 0-2
//! of init were, so pipes are re-attached at restore with `--inherit-fd`); bind mounts and, on
//! cgroup v2, `/sys/fs/cgroup` are external mounts (named by their destination at dump, mapped
//! to their source at restore); the network namespace is always an empty one
//! (`--empty-ns net`); the restored tree is put in the new container's cgroup (CRIU itself
//! runs there, with `--cgroup-root`); a checkpoint without `--leave-running` or `--pre-dump`
//! destroys the container (state, cgroup, poststop hooks), so the id is free for `restore`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use zones_cgroup::Cgroup;

use super::container::{self, ContainerError};
use super::spec::{self, SpecError};
use super::state::{self, ContainerState, StateError, Status};
use super::sys;

/// The file in the image directory that records init's fds 0-2 (runc's name and format).
const DESCRIPTORS: &str = "descriptors.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// runc's words.
    #[error("Container cannot be checkpointed in {0} state")]
    NotCheckpointable(Status),
    #[error(
        "{0}: executable file not found in $PATH: checkpoint and restore run CRIU \
         (apt-get install criu, or --criu PATH)"
    )]
    NoCriu(String),
    /// CRIU ran and failed: what it was doing, how it ended, and its log.
    #[error("criu failed: type {kind} {how}\nlog file: {log}{tail}")]
    Criu {
        kind: &'static str,
        how: String,
        log: String,
        tail: String,
    },
    /// An option or a container runz cannot checkpoint or restore, with the reason.
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// `--manage-cgroups-mode` (CRIU's cgroup modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupsMode {
    Soft,
    Full,
    Strict,
    Ignore,
}

impl std::str::FromStr for CgroupsMode {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "soft" => Ok(CgroupsMode::Soft),
            "full" => Ok(CgroupsMode::Full),
            "strict" => Ok(CgroupsMode::Strict),
            "ignore" => Ok(CgroupsMode::Ignore),
            // runc's words.
            _ => Err(CheckpointError::Unsupported(
                "Invalid manage-cgroups-mode value".into(),
            )),
        }
    }
}

impl CgroupsMode {
    fn as_str(self) -> &'static str {
        match self {
            CgroupsMode::Soft => "soft",
            CgroupsMode::Full => "full",
            CgroupsMode::Strict => "strict",
            CgroupsMode::Ignore => "ignore",
        }
    }
}

/// The options `checkpoint` and `restore` share (runc's CriuOpts).
#[derive(Debug, Clone, Default)]
pub struct CriuOpts {
    /// The criu binary: a path, or a name looked up in $PATH (runc's global `--criu`).
    pub criu: PathBuf,
    /// Where the images go (checkpoint) or come from (restore); made if missing.
    pub image_path: PathBuf,
    /// Where CRIU's logs go; default: the image directory.
    pub work_path: Option<PathBuf>,
    /// The images of an earlier pre-dump, relative to `image_path`.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<CgroupsMode>,
    /// `ADDRESS:PORT` of a CRIU page server that receives the memory pages.
    pub page_server: Option<(String, u16)>,
}

/// What `restore` needs besides the CRIU options.
#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub systemd_cgroup: bool,
    pub criu: CriuOpts,
}

/// Checkpoint a running (or paused) container into `o.image_path`. Without `leave_running` or
/// `pre_dump` the container is destroyed afterwards, as runc does.
pub fn checkpoint(root: &Path, id: &str, o: &CriuOpts) -> Result<()> {
    let lock = state::lock(root, id)?;
    let (st, status) = container::state(root, id)?;
    if !matches!(status, Status::Running | Status::Paused) {
        return Err(CheckpointError::NotCheckpointable(status));
    }
    refuse_unsupported(&st.config)?;
    let criu = find_criu(&o.criu)?;
    let images = make_dir(&o.image_path, "--image-path")?;
    let work = match &o.work_path {
        Some(w) => make_dir(w, "--work-path")?,
        None => images.clone(),
    };
    if let Some(parent) = &o.parent_path {
        check_parent(&images, parent)?;
    }
    write_descriptors(&images, st.pid)?;

    let mut args: Vec<String> = vec![
        if o.pre_dump { "pre-dump" } else { "dump" }.into(),
        "--tree".into(),
        st.pid.to_string(),
        "--root".into(),
        path_arg(&st.rootfs),
    ];
    common_args(&mut args, o, &images, &work, "dump.log");
    if o.pre_dump || o.parent_path.is_some() {
        args.push("--track-mem".into());
    }
    if let Some(parent) = &o.parent_path {
        args.extend(["--prev-images-dir".into(), path_arg(parent)]);
    }
    if o.leave_running {
        args.push("--leave-running".into());
    }
    if let Some((addr, port)) = &o.page_server {
        args.extend([
            "--page-server".into(),
            "--address".into(),
            addr.clone(),
            "--port".into(),
            port.to_string(),
        ]);
    }
    if let Some(freezer) = freezer_dir(st.cgroup.as_ref()) {
        args.extend(["--freeze-cgroup".into(), path_arg(&freezer)]);
    }
    for (dest, _) in external_mounts(&st.config, &st.bundle, st.cgroup.as_ref()) {
        args.extend(["--external".into(), format!("mnt[{dest}]:{dest}")]);
    }
    let kind = if o.pre_dump { "PRE_DUMP" } else { "DUMP" };
    run_criu(&criu, &args, None, kind, &work.join("dump.log"))?;
    drop(lock);
    if !(o.leave_running || o.pre_dump) {
        // CRIU killed the tree; the rest of the container goes as runc's destroy does it.
        container::delete(root, id, true)?;
    }
    Ok(())
}

/// Restore a container from `o.criu.image_path` as a new container `o.id` of `o.bundle`.
/// Returns the pid of the restored init (runz's child: CRIU restores it as its sibling).
pub fn restore(o: &RestoreOpts) -> Result<Pid> {
    let bundle = fs::canonicalize(&o.bundle)
        .map_err(|e| CheckpointError::Io(format!("bundle {}: {e}", o.bundle.display())))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec)?;
    refuse_unsupported(&spec)?;
    let rootfs = spec::rootfs_path(&spec, &bundle)?;
    let criu = find_criu(&o.criu.criu)?;
    let images = fs::canonicalize(&o.criu.image_path).map_err(|e| {
        CheckpointError::Io(format!("--image-path {}: {e}", o.criu.image_path.display()))
    })?;
    let work = match &o.criu.work_path {
        Some(w) => make_dir(w, "--work-path")?,
        None => images.clone(),
    };
    let dir = state::create_dir(&o.root, &o.id)?;
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        criu_root: None,
        pid: None,
        armed: true,
    };
    let cgroup = container::make_cgroup(&spec, &o.id, &dir, o.systemd_cgroup)?;
    undo.cgroup = Some(cgroup.clone());
    if cgroup.systemd_unit().is_some() {
        return Err(CheckpointError::Unsupported(
            "restore with --systemd-cgroup is not supported by runz yet: use the cgroupfs driver"
                .into(),
        ));
    }
    // CRIU restores the root mount from --root: the rootfs, bound to a private directory (as
    // runc does), so the mount CRIU sees is a mount of its own.
    let criu_root = dir.join(CRIU_ROOT);
    fs::create_dir(&criu_root)
        .map_err(|e| CheckpointError::Io(format!("mkdir {}: {e}", criu_root.display())))?;
    mount(
        Some(&rootfs),
        &criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| CheckpointError::Io(format!("bind {} for criu: {e}", rootfs.display())))?;
    undo.criu_root = Some(criu_root.clone());
    crate::fault::point("restore:after-bind");

    let pidfile = dir.join("criu-restore.pid");
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--root".into(),
        path_arg(&criu_root),
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        path_arg(&pidfile),
        "--evasive-devices".into(),
    ];
    common_args(&mut args, &o.criu, &images, &work, "restore.log");
    for h in cgroup.paths() {
        let place = path_arg(&h.path);
        if h.v2 {
            args.extend(["--cgroup-root".into(), place]);
        } else {
            for c in h.controllers.iter().filter(|c| !c.starts_with("name=")) {
                args.extend(["--cgroup-root".into(), format!("{c}:{place}")]);
            }
        }
    }
    for (dest, source) in external_mounts(&spec, &bundle, Some(&cgroup)) {
        args.extend(["--external".into(), format!("mnt[{dest}]:{source}")]);
    }
    for (fd, what) in read_descriptors(&images)?.iter().enumerate() {
        if what.starts_with("pipe:") {
            args.extend(["--inherit-fd".into(), format!("fd[{fd}]:{what}")]);
        }
    }
    run_criu(
        &criu,
        &args,
        Some(&cgroup),
        "RESTORE",
        &work.join("restore.log"),
    )?;
    let pid: i32 = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            CheckpointError::Io(format!(
                "criu restored the container but wrote no pid to {}",
                pidfile.display()
            ))
        })?;
    undo.pid = Some(pid);
    let _ = fs::remove_file(&pidfile);
    let pid_start = sys::proc_stat(pid)
        .map(|s| s.start_time)
        .ok_or_else(|| CheckpointError::Io(format!("restored init {pid} exited at once")))?;
    let st = ContainerState {
        id: o.id.clone(),
        pid,
        pid_start,
        bundle,
        rootfs,
        created: state::created_now(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: container::owner_name(),
        started: true,
        cgroup: Some(cgroup),
        config: spec,
    };
    st.save(&o.root)?;
    if let Some(pf) = &o.pid_file {
        container::write_pid_file(pf, Pid::from_raw(pid))?;
    }
    undo.pid = None;
    undo.unmount_root();
    undo.armed = false;
    Ok(Pid::from_raw(pid))
}

/// The directory in a container's state dir where restore binds the rootfs for CRIU's --root.
const CRIU_ROOT: &str = "criu-root";

/// Unmount and remove `<state dir>/criu-root` if a restore killed half-way left it: removing
/// the state directory through that bind mount would empty the container's rootfs.
pub fn release_criu_root(state_dir: &Path) {
    let r = state_dir.join(CRIU_ROOT);
    if r.exists() {
        let _ = umount2(&r, MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(&r);
    }
}

/// Undo a restore that failed half-way.
struct Undo {
    dir: PathBuf,
    cgroup: Option<Cgroup>,
    criu_root: Option<PathBuf>,
    pid: Option<i32>,
    armed: bool,
}

impl Undo {
    fn unmount_root(&mut self) {
        if let Some(r) = self.criu_root.take() {
            let _ = umount2(&r, MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(&r);
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        self.unmount_root();
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.remove();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What neither checkpoint nor restore can carry yet, refused with the reason before anything
/// is done (CRIU would fail on it half-way, or the restored container would differ).
fn refuse_unsupported(spec: &Spec) -> Result<()> {
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Err(CheckpointError::Unsupported(
            "checkpoint/restore of a container with a terminal (process.terminal) is not \
             supported by runz yet"
                .into(),
        ));
    }
    if let Some(ns) = spec::namespaces(spec).iter().find(|n| n.path().is_some()) {
        return Err(CheckpointError::Unsupported(format!(
            "checkpoint/restore of a container that joins an existing {:?} namespace \
             (linux.namespaces path) is not supported by runz yet",
            ns.typ()
        )));
    }
    if let Some(h) = spec.hooks() {
        let before = [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
        ];
        if let Some((name, _)) = before
            .iter()
            .find(|(_, l)| l.as_ref().is_some_and(|l| !l.is_empty()))
        {
            return Err(CheckpointError::Unsupported(format!(
                "restore does not run {name} hooks in runz yet: remove them from the spec \
                 to checkpoint/restore this container"
            )));
        }
    }
    Ok(())
}

/// The criu binary: a path as given, else a name looked up in $PATH.
fn find_criu(criu: &Path) -> Result<PathBuf> {
    let name = if criu.as_os_str().is_empty() {
        Path::new("criu")
    } else {
        criu
    };
    if name.components().count() > 1 {
        return if name.is_file() {
            Ok(name.to_path_buf())
        } else {
            Err(CheckpointError::NoCriu(name.display().to_string()))
        };
    }
    std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| CheckpointError::NoCriu(name.display().to_string()))
}

/// `mkdir -p` and the absolute path (CRIU runs in its own work directory).
fn make_dir(p: &Path, flag: &str) -> Result<PathBuf> {
    fs::create_dir_all(p)
        .and_then(|()| fs::canonicalize(p))
        .map_err(|e| CheckpointError::Io(format!("{flag} {}: {e}", p.display())))
}

/// runc's checks of `--parent-path`: relative (to the image directory), and a directory there.
fn check_parent(images: &Path, parent: &Path) -> Result<()> {
    if parent.is_absolute() {
        return Err(CheckpointError::Unsupported(
            "--parent-path must be relative".into(),
        ));
    }
    let real = images.join(parent);
    match fs::metadata(&real) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CheckpointError::Unsupported(format!(
            "invalid --parent-path: stat {}: not a directory",
            real.display()
        ))),
        Err(e) => Err(CheckpointError::Unsupported(format!(
            "invalid --parent-path: stat {}: {}",
            real.display(),
            super::errno::io_text(&e)
        ))),
    }
}

/// The options of every CRIU call: images, work dir and log, verbosity, cgroups, the flags
/// the caller set, and the network namespace restored empty (runc's fixed choice).
fn common_args(args: &mut Vec<String>, o: &CriuOpts, images: &Path, work: &Path, log: &str) {
    args.extend([
        "--images-dir".into(),
        path_arg(images),
        "--work-dir".into(),
        path_arg(work),
        "--log-file".into(),
        log.into(),
        "-v4".into(),
        "--empty-ns".into(),
        "net".into(),
    ]);
    args.push(match o.manage_cgroups_mode {
        Some(m) => format!("--manage-cgroups={}", m.as_str()),
        None => "--manage-cgroups".into(),
    });
    for (on, flag) in [
        (o.shell_job, "--shell-job"),
        (o.tcp_established, "--tcp-established"),
        (o.ext_unix_sk, "--ext-unix-sk"),
        (o.file_locks, "--file-locks"),
        (o.auto_dedup, "--auto-dedup"),
    ] {
        if on {
            args.push(flag.into());
        }
    }
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The cgroup directory CRIU freezes the tree with: the unified one, else v1's freezer.
fn freezer_dir(cg: Option<&Cgroup>) -> Option<PathBuf> {
    let paths = cg?.paths();
    paths
        .iter()
        .find(|h| h.v2)
        .or_else(|| {
            paths
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == "freezer"))
        })
        .map(|h| h.dir.clone())
}

/// The mounts CRIU must take as external, as (destination, host source): bind mounts, and
/// on cgroup v2 the cgroup mount (the new container's own cgroup at restore).
fn external_mounts(spec: &Spec, bundle: &Path, cg: Option<&Cgroup>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy().into_owned();
        let opts = m.options().clone().unwrap_or_default();
        let is_bind =
            m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if is_bind {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            out.push((dest, path_arg(&src)));
        } else if m.typ().as_deref() == Some("cgroup") {
            if let Some(h) = cg.and_then(|c| c.paths().iter().find(|h| h.v2)) {
                if cg.is_some_and(|c| c.mode() == zones_cgroup::Mode::V2) {
                    out.push((dest, path_arg(&h.dir)));
                }
            }
        }
    }
    out
}

/// Record what init's fds 0-2 are (`/proc/PID/fd/N` links), for `--inherit-fd` at restore.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> = (0..3)
        .map(|n| {
            fs::read_link(format!("/proc/{pid}/fd/{n}"))
                .map(|l| path_arg(&l))
                .unwrap_or_default()
        })
        .collect();
    let json = serde_json::to_vec(&fds).map_err(|e| CheckpointError::Io(e.to_string()))?;
    fs::write(images.join(DESCRIPTORS), json).map_err(|e| {
        CheckpointError::Io(format!("write {}: {e}", images.join(DESCRIPTORS).display()))
    })
}

fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS);
    let text = fs::read(&path)
        .map_err(|e| CheckpointError::Io(format!("read {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| CheckpointError::Io(format!("parse {}: {e}", path.display())))
}

/// Run CRIU to its end; inside `cgroup` when given (restore: the restored tree starts there).
/// On failure, the error carries the log's last error lines.
fn run_criu(
    criu: &Path,
    args: &[String],
    cgroup: Option<&Cgroup>,
    kind: &'static str,
    log: &Path,
) -> Result<()> {
    crate::log::debug(&format!("{} {}", criu.display(), args.join(" ")));
    let mut cmd = Command::new(criu);
    cmd.args(args).stdin(Stdio::inherit());
    if let Some(cg) = cgroup.cloned() {
        // SAFETY: runz is single-threaded, so the forked child may allocate; join_self only
        // writes "0" to the cgroup's procs/tasks files before the exec.
        unsafe {
            cmd.pre_exec(move || cg.join_self(false).map_err(std::io::Error::other));
        }
    }
    let status = cmd
        .status()
        .map_err(|e| CheckpointError::Io(format!("run {}: {e}", criu.display())))?;
    if status.success() {
        return Ok(());
    }
    let tail = fs::read_to_string(log)
        .map(|t| {
            let errs: Vec<&str> = t.lines().filter(|l| l.contains("Error")).collect();
            let keep = &errs[errs.len().saturating_sub(5)..];
            keep.iter().map(|l| format!("\n{l}")).collect::<String>()
        })
        .unwrap_or_default();
    Err(CheckpointError::Criu {
        kind,
        how: exit_text(status),
        log: log.display().to_string(),
        tail,
    })
}

fn exit_text(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown exit".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_modes_parse_as_runc_takes_them() {
        assert_eq!("soft".parse::<CgroupsMode>().unwrap(), CgroupsMode::Soft);
        assert_eq!(
            "ignore".parse::<CgroupsMode>().unwrap(),
            CgroupsMode::Ignore
        );
        assert_eq!(
            "bogus".parse::<CgroupsMode>().unwrap_err().to_string(),
            "Invalid manage-cgroups-mode value"
        );
    }

    #[test]
    fn parent_path_must_be_relative_and_a_directory() {
        let d = std::env::temp_dir().join(format!("runz-unit-ckpt-{}", std::process::id()));
        fs::create_dir_all(d.join("pre")).unwrap();
        fs::write(d.join("file"), "").unwrap();
        check_parent(&d, Path::new("pre")).unwrap();
        assert_eq!(
            check_parent(&d, Path::new("/abs")).unwrap_err().to_string(),
            "--parent-path must be relative"
        );
        assert!(check_parent(&d, Path::new("file"))
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        assert!(check_parent(&d, Path::new("nope"))
            .unwrap_err()
            .to_string()
            .contains("no such file or directory"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_criu_is_named() {
        let e = find_criu(Path::new("/nonexistent/criu")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/criu: executable file not found"));
    }
}
