//! Shared harness for the root integration tests that drive the real `runz` binary.
//!
//! Everything a test makes is named after "runz-test" and the test process's pid, and is removed
//! when the [`Bundle`] is dropped, even when the test panics:
//!
//! - bundle dirs `/var/tmp/runz-tests/runz-test-<pid>-<name>-<n>/` (rootfs copy + config.json +
//!   the captured output of every runz call in `logs/`),
//! - state dirs (`runz --root`) `/run/runz-test-<pid>-<n>`,
//! - cgroups `<own cgroup>/runz-test-<pid>/<id>` in every hierarchy (the spec's cgroupsPath is
//!   relative, so runz puts it beneath the test process's own cgroup),
//! - mounts under the bundle and state dirs.
//!
//! The busybox rootfs is built once per test process into
//! `/var/tmp/runz-tests/rootfs-<pid>-cache` by scripts/mk-rootfs.sh and copied (not hard-linked:
//! tests may write to it) into each bundle. The cache and the empty `runz-test-<pid>` cgroup
//! prefixes are removed by an `atexit` handler when the test process exits; caches of test
//! processes that died without exiting (SIGKILL) are removed by the next run.
//! scripts/check-leaks.sh verifies that nothing is left.
#![allow(dead_code)]

pub mod cowfs;
pub mod leaks;
pub mod zonehost;
pub mod zonesd;

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};
use serde_json::{json, Value};

/// Where bundles and the rootfs cache live.
pub const TEST_BASE: &str = "/var/tmp/runz-tests";
/// Every runz invocation is killed (and the test fails) after this long.
pub const RUNZ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long Drop waits for killed container processes to leave their cgroup.
const KILL_WAIT: Duration = Duration::from_secs(10);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
/// Number of live bundles; the cgroup prefixes are removed only when it drops to zero, so a
/// Drop never removes a prefix another bundle's runz is about to create a cgroup in.
static LIVE_BUNDLES: Mutex<usize> = Mutex::new(0);
static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
static AT_EXIT: Once = Once::new();

/// True when running as root; otherwise prints "skipping: needs root" and returns false.
pub fn require_root() -> bool {
    if geteuid().is_root() {
        true
    } else {
        eprintln!("skipping: needs root");
        false
    }
}

/// Whether bpftrace is installed; otherwise the test says why it is skipped.
pub fn have_bpftrace() -> bool {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("bpftrace").is_file());
    if !found {
        eprintln!("skipping: bpftrace is not installed (scripts/install-deps.sh)");
    }
    found
}

/// Poll `done` every 10 ms, at most 500 times (about 5 s); whether it became true. For what a
/// test must wait on without a notification: a state, a /proc file, a cgroup counter.
pub fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(10));
    }
    false
}

/// The runz binary cargo built for this test run.
pub fn runz_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_runz"))
}

/// "runz-test-<pid>": the cgroup prefix of this test process, beneath its own cgroup.
pub fn cgroup_prefix() -> String {
    format!("runz-test-{}", std::process::id())
}

/// The busybox rootfs of this test process, built on first use by scripts/mk-rootfs.sh.
/// Treat it as read-only: [`Bundle::new`] gives each bundle its own copy.
pub fn busybox_rootfs() -> PathBuf {
    ROOTFS
        .get_or_init(|| {
            register_exit_cleanup();
            let base = test_base();
            remove_stale_caches(&base);
            let dest = rootfs_cache_path(&base);
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mk-rootfs.sh");
            let out = Command::new(&script)
                .arg(&dest)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                out.status.success(),
                "{} {} failed ({}): {}",
                script.display(),
                dest.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            dest
        })
        .clone()
}

/// The base dir, created if needed, as the canonical path mountinfo shows.
fn test_base() -> PathBuf {
    fs::create_dir_all(TEST_BASE).unwrap_or_else(|e| panic!("cannot create {TEST_BASE}: {e}"));
    fs::canonicalize(TEST_BASE).unwrap_or_else(|e| panic!("cannot resolve {TEST_BASE}: {e}"))
}

fn rootfs_cache_path(base: &Path) -> PathBuf {
    base.join(format!("rootfs-{}-cache", std::process::id()))
}

/// Removes `rootfs-<pid>-cache` dirs of test processes that no longer exist.
fn remove_stale_caches(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rootfs-"))
            .and_then(|n| n.strip_suffix("-cache"))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn register_exit_cleanup() {
    AT_EXIT.call_once(|| {
        // SAFETY: `exit_cleanup` is a plain extern "C" fn that never unwinds (it only
        // ignores io errors); registering it has no other effect.
        let rc = unsafe { libc::atexit(exit_cleanup) };
        if rc != 0 {
            eprintln!("warning: atexit failed; run scripts/check-leaks.sh after the tests");
        }
    });
}

/// Runs when the test process exits: removes the rootfs cache, the empty cgroup prefixes and
/// the base dir when it is empty.
extern "C" fn exit_cleanup() {
    let base = Path::new(TEST_BASE);
    let _ = fs::remove_dir_all(rootfs_cache_path(base));
    remove_cgroup_prefixes();
    let _ = fs::remove_dir(base);
}

/// An OCI bundle for one test, with its own runz state dir. Dropping it deletes the container
/// and removes everything it made (see the module docs).
pub struct Bundle {
    /// Container id: "runz-test-<pid>-<name>-<n>".
    pub id: String,
    /// Bundle dir: /var/tmp/runz-tests/<id>, holding rootfs/ and config.json.
    pub dir: PathBuf,
    /// runz --root state dir: /run/runz-test-<pid>-<n>.
    pub root: PathBuf,
    /// The spec written to config.json by [`Bundle::write`].
    pub spec: Value,
    calls: AtomicUsize,
}

impl Bundle {
    /// A new bundle: a private copy of the busybox rootfs and the default spec of `runz spec`
    /// with terminal=false, args ["true"], a writable root and cgroupsPath "runz-test-<pid>/<id>".
    ///
    /// If `runz spec` fails or writes no valid config.json, a built-in copy of runc's default
    /// spec is used instead (see [`fallback_spec`]), and a note is printed.
    pub fn new(name: &str) -> Bundle {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "bundle name {name:?} must be non-empty [A-Za-z0-9_.-]"
        );
        let rootfs = busybox_rootfs();
        let base = test_base();
        let pid = std::process::id();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("runz-test-{pid}-{name}-{n}");
        *LIVE_BUNDLES.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        // Built before anything is created, so a panic below still runs Drop.
        let mut bundle = Bundle {
            dir: base.join(&id),
            root: PathBuf::from(format!("/run/runz-test-{pid}-{n}")),
            id,
            spec: Value::Null,
            calls: AtomicUsize::new(0),
        };
        fs::create_dir(&bundle.dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", bundle.dir.display()));
        copy_tree(&rootfs, &bundle.dir.join("rootfs")).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} into {}: {e}",
                rootfs.display(),
                bundle.dir.display()
            )
        });
        bundle.spec = bundle.default_spec();
        let cgroups_path = format!("{}/{}", cgroup_prefix(), bundle.id);
        bundle
            .set("/process/terminal", json!(false))
            .set("/process/args", json!(["true"]))
            // Tests write into the rootfs (e.g. /tmp); tests of a read-only root set it back.
            .set("/root/readonly", json!(false))
            .set("/linux/cgroupsPath", json!(cgroups_path));
        bundle.write();
        bundle
    }

    /// Sets process.args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.set("/process/args", json!(args))
    }

    /// Sets the value at a JSON pointer (RFC 6901, e.g. "/linux/sysctl/net.ipv4.ip_forward"),
    /// creating missing objects on the way. "-" as the last token appends to an array.
    pub fn set(&mut self, json_pointer: &str, value: Value) -> &mut Self {
        set_pointer(&mut self.spec, json_pointer, value);
        self
    }

    /// Writes the spec to <dir>/config.json.
    pub fn write(&self) {
        let path = self.dir.join("config.json");
        let text = serde_json::to_vec_pretty(&self.spec).expect("a serde_json::Value serializes");
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Runs `runz --root <root> ARGS...` with stdin from /dev/null and stdout/stderr captured
    /// (in files under <dir>/logs, so container processes that inherit them cannot block us).
    /// Panics if runz does not exit within [`RUNZ_TIMEOUT`] (it is killed first).
    pub fn runz(&self, args: &[&str]) -> Output {
        self.try_runz(args)
            .unwrap_or_else(|e| panic!("runz {}: {e}", args.join(" ")))
    }

    /// Writes the spec, then `runz run --bundle <dir> <id>`.
    pub fn run(&self) -> Output {
        self.write();
        self.runz(&["run", "--bundle", path_str(&self.dir), &self.id])
    }

    /// Writes the spec, then `runz create --bundle <dir> <id>`.
    pub fn create(&self) -> Output {
        self.write();
        self.runz(&["create", "--bundle", path_str(&self.dir), &self.id])
    }

    /// `runz start <id>`.
    pub fn start(&self) -> Output {
        self.runz(&["start", &self.id])
    }

    /// `runz state <id>`, parsed; panics if it fails or prints no JSON.
    pub fn state(&self) -> Value {
        let out = self.runz(&["state", &self.id]);
        assert!(
            out.status.success(),
            "runz state {} failed ({}): {}",
            self.id,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "runz state {} printed invalid JSON ({e}): {}",
                self.id,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `runz delete <id>`.
    pub fn delete(&self) -> Output {
        self.runz(&["delete", &self.id])
    }

    /// The cgroup dir of this bundle in every cgroup hierarchy the test process is in:
    /// `<own cgroup>/runz-test-<pid>/<id>` (they need not exist).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        own_cgroup_dirs()
            .into_iter()
            .map(|d| d.join(cgroup_prefix()).join(&self.id))
            .collect()
    }

    fn try_runz(&self, args: &[&str]) -> io::Result<Output> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let verb = args.first().copied().unwrap_or("none");
        let logs = self.dir.join("logs");
        fs::create_dir_all(&logs)?;
        let mut cmd = Command::new(runz_bin());
        cmd.arg("--root").arg(&self.root).args(args);
        run_with_timeout(&mut cmd, &logs.join(format!("{n}-{verb}")), RUNZ_TIMEOUT)
    }

    /// The spec `runz spec` writes, or [`fallback_spec`] when that does not work (yet).
    fn default_spec(&self) -> Value {
        let path = self.dir.join("config.json");
        let mut cmd = Command::new(runz_bin());
        cmd.arg("spec").current_dir(&self.dir);
        let from_runz = run_with_timeout(&mut cmd, &self.dir.join("spec"), RUNZ_TIMEOUT)
            .ok()
            .filter(|out| out.status.success())
            .and_then(|_| fs::read(&path).ok())
            .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
            .filter(Value::is_object);
        let _ = fs::remove_file(self.dir.join("spec.out"));
        let _ = fs::remove_file(self.dir.join("spec.err"));
        from_runz.unwrap_or_else(|| {
            eprintln!("note: `runz spec` gave no config.json; using the harness's fallback spec");
            fallback_spec()
        })
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Err(e) = self.try_runz(&["delete", "--force", &self.id]) {
            eprintln!("cleanup: runz delete --force {}: {e}", self.id);
        }
        let cgroups = self.cgroup_dirs();
        kill_cgroup_processes(&cgroups);
        for dir in &cgroups {
            remove_cgroup_tree(dir);
        }
        for dir in [&self.dir, &self.root] {
            unmount_under(dir);
            remove_unless_mounted(dir);
        }
        let mut live = LIVE_BUNDLES.lock().unwrap_or_else(|e| e.into_inner());
        *live = live.saturating_sub(1);
        if *live == 0 {
            remove_cgroup_prefixes();
        }
    }
}

/// runc's default spec (`runc spec`), used until `runz spec` works.
pub fn fallback_spec() -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mount = |dest: &str, kind: &str, opts: &[&str]| json!({"destination": dest, "type": kind, "source": kind, "options": opts});
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runz",
        "mounts": [
            mount("/proc", "proc", &[]),
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            mount("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount("/sys/fs/cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"])
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Sets `value` at `pointer` in `doc`, creating objects for missing keys.
pub fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    assert!(
        pointer.starts_with('/'),
        "JSON pointer {pointer:?} must start with '/'"
    );
    let mut cur = doc;
    let tokens: Vec<String> = pointer[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let (last, path) = tokens
        .split_last()
        .expect("split yields at least one token");
    for token in path {
        cur = child_mut(cur, token, pointer);
    }
    match cur {
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => {
            let i = array_index(items.len(), last, pointer);
            if i == items.len() {
                items.push(value);
            } else {
                items[i] = value;
            }
        }
        other => {
            if !other.is_object() {
                *other = json!({});
            }
            other
                .as_object_mut()
                .expect("made an object above")
                .insert(last.clone(), value);
        }
    }
}

fn child_mut<'a>(cur: &'a mut Value, token: &str, pointer: &str) -> &'a mut Value {
    match cur {
        Value::Array(items) => {
            let i = array_index(items.len(), token, pointer);
            assert!(i < items.len(), "index {token} out of range in {pointer:?}");
            &mut items[i]
        }
        other => {
            if !other.is_object() {
                *other = json!({});
            }
            other
                .as_object_mut()
                .expect("made an object above")
                .entry(token)
                .or_insert_with(|| json!({}))
        }
    }
}

fn array_index(len: usize, token: &str, pointer: &str) -> usize {
    let i: usize = token
        .parse()
        .unwrap_or_else(|_| panic!("{token:?} in {pointer:?} is not an array index"));
    assert!(
        i <= len,
        "index {i} out of range (len {len}) in {pointer:?}"
    );
    i
}

/// Runs `cmd` with stdin /dev/null and stdout/stderr in `<stem>.out`/`<stem>.err`; kills it
/// after `timeout`. Files instead of pipes: a detached container inherits them and would keep
/// a pipe open forever.
pub fn run_with_timeout(cmd: &mut Command, stem: &Path, timeout: Duration) -> io::Result<Output> {
    let out_path = stem.with_extension("out");
    let err_path = stem.with_extension("err");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path)?)
        .stderr(fs::File::create(&err_path)?)
        .spawn()?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("killed after {} s", timeout.as_secs()),
            ));
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: fs::read(&out_path)?,
        stderr: fs::read(&err_path)?,
    })
}

/// Copies a directory tree: files (with mode), symlinks (as links), dirs (with mode and
/// sticky bit); owners too when running as root.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            fs::copy(&from, &to)?;
        }
        copy_owner(&from, &to)?;
    }
    let meta = fs::metadata(src)?;
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}

fn copy_owner(from: &Path, to: &Path) -> io::Result<()> {
    if !geteuid().is_root() {
        return Ok(());
    }
    let meta = fs::symlink_metadata(from)?;
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))
}

/// Mount points (decoded) from /proc/self/mountinfo, in mount order.
pub fn mount_points() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .collect()
}

/// Mount points at or beneath `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as \ooo octal escapes.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or beneath `dir`, deepest first; repeats for stacked mounts.
fn unmount_under(dir: &Path) {
    for _ in 0..8 {
        let mut mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        mounts.dedup();
        for m in mounts {
            if let Err(e) = umount2(&m, MntFlags::MNT_DETACH) {
                eprintln!("cleanup: umount {}: {e}", m.display());
            }
        }
    }
}

/// Removes `dir` recursively, but never through a mount that is still there.
fn remove_unless_mounted(dir: &Path) {
    let left = mounts_under(dir);
    if !left.is_empty() {
        eprintln!(
            "cleanup: not removing {}: still mounted: {left:?}",
            dir.display()
        );
        return;
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            eprintln!("cleanup: remove {}: {e}", dir.display());
        }
        _ => {}
    }
}

/// The test process's own cgroup dir in each mounted hierarchy (v1 controllers, named v1
/// hierarchies such as name=systemd, and cgroup2), one per hierarchy.
pub fn own_cgroup_dirs() -> Vec<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mnt), Some(fstype), Some(opts)) =
            (pre.get(3), pre.get(4), post.first(), post.get(2))
        else {
            continue;
        };
        let opts: Vec<&str> = opts.split(',').collect();
        // /proc/self/cgroup: "hierarchy-id:controller,list:/path".
        let entry = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (hid, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let matches = match *fstype {
                "cgroup2" => hid == "0",
                "cgroup" => !ctrls.is_empty() && ctrls.split(',').all(|c| opts.contains(&c)),
                _ => false,
            };
            matches.then_some((hid, path))
        });
        let Some((hid, path)) = entry else {
            continue;
        };
        let root = unescape_mountinfo(root);
        let Ok(rel) = Path::new(path).strip_prefix(&root) else {
            continue;
        };
        if seen.contains(&hid) {
            continue;
        }
        seen.push(hid);
        dirs.push(PathBuf::from(unescape_mountinfo(mnt)).join(rel));
    }
    dirs
}

/// Sub-cgroups of `dir` (and `dir` itself), deepest first.
fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(cgroup_tree(&e.path()));
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    out
}

fn cgroup_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Thaws, then SIGKILLs every process in the given cgroups (and their children) until they
/// are empty, for at most [`KILL_WAIT`].
fn kill_cgroup_processes(dirs: &[PathBuf]) {
    let tree: Vec<PathBuf> = dirs.iter().flat_map(|d| cgroup_tree(d)).collect();
    for d in &tree {
        // A frozen process cannot die; ignore errors: the file exists in one hierarchy only.
        let _ = fs::write(d.join("freezer.state"), "THAWED");
        let _ = fs::write(d.join("cgroup.freeze"), "0");
    }
    let start = Instant::now();
    loop {
        let pids: Vec<i32> = tree.iter().flat_map(|d| cgroup_pids(d)).collect();
        if pids.is_empty() {
            return;
        }
        if start.elapsed() > KILL_WAIT {
            eprintln!("cleanup: processes {pids:?} survive SIGKILL in {tree:?}");
            return;
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        sleep(Duration::from_millis(5));
    }
}

fn remove_cgroup_tree(dir: &Path) {
    for d in cgroup_tree(dir) {
        if let Err(e) = fs::remove_dir(&d) {
            eprintln!("cleanup: rmdir {}: {e}", d.display());
        }
    }
}

/// Removes the runz-test-<pid> prefix beneath our own cgroup in every hierarchy, if empty.
fn remove_cgroup_prefixes() {
    for d in own_cgroup_dirs() {
        let _ = fs::remove_dir(d.join(cgroup_prefix()));
    }
}

/// `runz --root R run EXTRA... --bundle B ID` with `file` open on fd 3 of runz (for
/// --preserve-fds and socket-activation tests) and `env` added to runz's environment.
pub fn run_with_fd3(b: &Bundle, file: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    use std::os::unix::process::CommandExt;
    let file = fs::File::open(file).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
    let mut cmd = Command::new(runz_bin());
    cmd.args(["--root", b.root.to_str().unwrap(), "run"])
        .args(extra)
        .args(["--bundle", b.dir.to_str().unwrap(), &b.id])
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; they run in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear it explicitly.
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(file);
    out
}

/// The I/O schedulers every block device of this host offers, concatenated (the
/// `/sys/block/*/queue/scheduler` lines: tests ask whether BFQ or CFQ is among them).
pub fn block_schedulers() -> String {
    std::fs::read_dir("/sys/block")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path().join("queue/scheduler")).ok())
                .collect()
        })
        .unwrap_or_default()
}
