//! Escape attempts against the runtime: runz (as root and with a user namespace) and the exec
//! path zlogin shares. Each attack is performed for real from inside the container (the calls
//! busybox cannot make come from the probe) and the host is checked afterwards.
//!
//! The attacks that could overwrite the runtime's binary (CVE-2019-5736) run a private copy of
//! runz or zlogin, so that a failure can never corrupt the build.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::battery::Battery;
use super::build_probe;
use crate::common::zonehost::{bin, ZoneHost};
use crate::common::{require_root, runz_bin, Bundle};

/// Every command a test starts is killed after this long.
const LIMIT: Duration = Duration::from_secs(30);

/// Wait for `child` at most `limit`; kill it when the time is up (`None`).
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run `cmd` with stdin from /dev/null: (exit code, stdout + stderr); -1 when it was killed.
fn output(cmd: &mut Command) -> (i32, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(out)) => (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_string(),
        ),
        _ => {
            // SAFETY: kill(2) of the child we spawned; its pid is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (-1, "killed after the time limit".into())
        }
    }
}

/// Run `cmd` on a new pty that is its controlling terminal (as an administrator's shell would
/// run it); returns (exit code, what the terminal showed). Text pushed into the terminal's
/// input (TIOCSTI) is echoed and shows up here too, and is also left unread in the input queue,
/// which is appended as `INPUT: ...`.
fn on_pty(cmd: &mut Command) -> (i32, String) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
    cmd.stdin(stdio(&pty.slave))
        .stdout(stdio(&pty.slave))
        .stderr(stdio(&pty.slave));
    // SAFETY: between fork and exec the closure only makes async-signal-safe calls (setsid,
    // ioctl) on fd 0, which is the pty slave.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on a pty");
    // The Command holds copies of the slave until they are replaced.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut shown = Vec::new();
    set_nonblocking(pty.master.as_fd());
    let deadline = Instant::now() + LIMIT;
    let code = loop {
        drain(&pty.master, &mut shown);
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    std::thread::sleep(Duration::from_millis(50));
    drain(&pty.master, &mut shown);
    let mut text = String::from_utf8_lossy(&shown).into_owned();
    set_nonblocking(pty.slave.as_fd());
    let mut input = Vec::new();
    drain(&pty.slave, &mut input);
    if !input.is_empty() {
        text.push_str(&format!("\nINPUT: {}", String::from_utf8_lossy(&input)));
    }
    (code, text)
}

fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    // SAFETY: fcntl on a descriptor we hold; only the status flags change.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Read what is there without blocking (at most 1 MiB).
fn drain(fd: &OwnedFd, into: &mut Vec<u8>) {
    let mut f = std::fs::File::from(fd.try_clone().expect("dup"));
    let mut buf = [0u8; 4096];
    while into.len() < 1 << 20 {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => into.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A private copy of a binary of the build, and its digest.
struct BinaryCopy {
    path: PathBuf,
    digest: String,
}

impl BinaryCopy {
    fn new(src: &Path, dir: &Path) -> BinaryCopy {
        let path = dir.join(src.file_name().unwrap());
        std::fs::copy(src, &path).expect("copy the binary");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let digest = sha256(&path);
        BinaryCopy { path, digest }
    }

    fn intact(&self) -> bool {
        sha256(&self.path) == self.digest
    }
}

/// A bundle (with a user namespace if `userns`) whose rootfs has the probe: built, or copied
/// from `probe`.
fn bundle(name: &str, userns: bool, probe: Option<&Path>) -> Bundle {
    let mut b = Bundle::new(name);
    let dest = b.dir.join("rootfs/bin/escape-probe");
    match probe {
        Some(p) => {
            std::fs::copy(p, &dest).unwrap();
        }
        None => build_probe(&dest),
    }
    if userns {
        let ns = b.spec["linux"]["namespaces"].as_array().unwrap().clone();
        let mut ns: Vec<_> = ns.into_iter().filter(|n| n["type"] != "user").collect();
        ns.push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.set("/linux/namespaces", json!(ns))
            .set("/linux/uidMappings", map.clone())
            .set("/linux/gidMappings", map);
    }
    b
}

/// A running container (its process sleeps) driven by a private copy of runz.
struct Target {
    b: Bundle,
    runz: BinaryCopy,
    userns: bool,
}

impl Target {
    fn new(name: &str, userns: bool) -> Target {
        let mut b = bundle(name, userns, None);
        b.args(&["sleep", "120"]);
        let evil = b.dir.join("rootfs/bin/evil");
        std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
        let runz = BinaryCopy::new(runz_bin(), &b.dir);
        b.write();
        let t = Target { b, runz, userns };
        // The container keeps runz's stdio: nothing a test waits to reach EOF.
        let mut child = t
            .cmd()
            .args(["run", "-d", "--bundle"])
            .arg(&t.b.dir)
            .arg(&t.b.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let st = wait_bounded(&mut child, LIMIT);
        assert!(st.is_some_and(|s| s.success()), "runz run -d: {st:?}");
        t
    }

    fn probe(&self) -> PathBuf {
        self.b.dir.join("rootfs/bin/escape-probe")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.runz.path);
        c.arg("--root").arg(&self.b.root);
        c
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("exec").args(args);
        c
    }

    /// `runz run` of a fresh bundle with these args and settings (JSON pointer, value).
    fn run_once(
        &self,
        name: &str,
        args: &[&str],
        set: &[(&str, serde_json::Value)],
    ) -> (i32, String) {
        let mut b = bundle(name, self.userns, Some(&self.probe()));
        b.args(args);
        for (ptr, v) in set {
            b.set(ptr, v.clone());
        }
        b.write();
        output(
            Command::new(&self.runz.path)
                .arg("--root")
                .arg(&b.root)
                .args(["run", "--bundle"])
                .arg(&b.dir)
                .arg(&b.id),
        )
    }
}

const MARKER: &str = "INJECTED-BY-THE-CONTAINER";

/// What an attack through TIOCSTI shows: blocked when the probe was refused and nothing it
/// pushed reached the terminal.
fn tiocsti_blocked(code: i32, shown: &str) -> bool {
    code == 0 && shown.contains("EPERM 1") && !shown.contains(MARKER)
}

/// A file only the host has, which a process reaching the host's / could read.
fn host_marker(tag: &str) -> (PathBuf, String) {
    let path = PathBuf::from(format!(
        "/var/tmp/runz-tests/runz-test-{}-{tag}-marker",
        std::process::id()
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!("host only {tag}");
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

/// `path` reached by climbing from any directory.
fn climb(path: &Path) -> String {
    format!("{}{}", "../".repeat(20), path.display())
}

/// Removes the host marker file, and restores host sysctls an attack changed, even when the
/// test fails.
struct HostGuard {
    marker: PathBuf,
    sysctls: Vec<(String, String)>,
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.marker);
        for (path, value) in &self.sysctls {
            if std::fs::read_to_string(path).ok().as_ref() != Some(value) {
                let _ = std::fs::write(path, value);
            }
        }
    }
}

const HOST_SYSCTLS: [(&str, &str); 2] = [
    ("kernel.core_pattern", "|/bin/false"),
    ("vm.overcommit_ratio", "99"),
];

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn runz_battery(b: &mut Battery, userns: bool) {
    let (marker, secret) = host_marker(if userns { "userns" } else { "root" });
    let _guard = HostGuard {
        marker: marker.clone(),
        sysctls: HOST_SYSCTLS
            .iter()
            .map(|(k, _)| {
                let p = sysctl_path(k);
                let v = std::fs::read_to_string(&p).unwrap();
                (p, v)
            })
            .collect(),
    };
    let t = Target::new(if userns { "esc-userns" } else { "esc-root" }, userns);

    // 1. TIOCSTI into the caller's terminal, from `runz run` and `runz exec`.
    let text = format!("echo {MARKER}");
    let probe = ["/bin/escape-probe", "tiocsti", text.as_str()];
    let mut b2 = bundle("tiocsti-run", userns, Some(&t.probe()));
    b2.args(&probe);
    b2.write();
    let (code, shown) = on_pty(
        Command::new(&t.runz.path)
            .arg("--root")
            .arg(&b2.root)
            .args(["run", "--bundle"])
            .arg(&b2.dir)
            .arg(&b2.id),
    );
    b.check(
        "TIOCSTI into the caller's terminal from runz run",
        tiocsti_blocked(code, &shown),
        format!("exit {code}: {shown:?}"),
    );
    let mut args = vec![t.b.id.as_str()];
    args.extend(probe);
    let (code, shown) = on_pty(&mut t.exec(&args));
    b.check(
        "TIOCSTI into the caller's terminal from runz exec",
        tiocsti_blocked(code, &shown),
        format!("exit {code}: {shown:?}"),
    );

    // 2. Host fds left open for the process (the cgroup directory of clone3, ...).
    let (code, out) = t.run_once("fds-run", &["/bin/escape-probe", "fds"], &[]);
    b.check(
        "fds beyond 0-2 in the process of runz run",
        code == 0 && out == "fds []",
        out,
    );
    let (code, out) = output(&mut t.exec(&[&t.b.id, "/bin/escape-probe", "fds"]));
    b.check(
        "fds beyond 0-2 in the process of runz exec",
        code == 0 && out == "fds []",
        out,
    );

    // 3. CVE-2024-21626: a cwd through a leaked fd, then up to the host's /.
    let cat = format!("cat {}", climb(&marker));
    let mut reached = Vec::new();
    for fd in 3..=9 {
        let (_, out) = t.run_once(
            "cwd-run",
            &["sh", "-c", &cat],
            &[("/process/cwd", json!(format!("/proc/self/fd/{fd}")))],
        );
        if out.contains(&secret) {
            reached.push(fd);
        }
    }
    b.check(
        "process.cwd = /proc/self/fd/N (3..9) to the host's /",
        reached.is_empty(),
        format!("host file read with fds {reached:?}"),
    );
    let mut reached = Vec::new();
    let mut refused = 0;
    for fd in 3..=16 {
        let cwd = format!("/proc/self/fd/{fd}");
        let (code, out) = output(&mut t.exec(&["--cwd", &cwd, &t.b.id, "sh", "-c", &cat]));
        if out.contains(&secret) {
            reached.push(fd);
        }
        if code != 0 {
            refused += 1;
        }
    }
    b.check(
        "runz exec --cwd /proc/self/fd/N (3..16) to the host's /",
        reached.is_empty() && refused == 14,
        format!("host file read with fds {reached:?}; {refused} of 14 refused"),
    );

    // 4. /proc/<pid>/fd of the exec'd process before its execve, from inside the container.
    let stop = t.b.dir.join("rootfs/tmp/stop-watch");
    let _ = std::fs::remove_file(&stop);
    let mut watch = t
        .exec(&[&t.b.id, "/bin/escape-probe", "fd_watch", "25"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..30 {
        let _ = output(&mut t.exec(&[&t.b.id, "true"]));
    }
    std::fs::write(&stop, "").unwrap();
    let status = wait_bounded(&mut watch, LIMIT);
    let mut seen = String::new();
    if let Some(mut o) = watch.stdout.take() {
        let _ = o.read_to_string(&mut seen);
    }
    let seen = seen.trim().to_string();
    let nums: Vec<u32> = seen
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    b.check(
        "follow /proc/<runz exec pid>/fd/N from inside during 30 execs",
        status.is_some() && nums.len() == 2 && nums[0] > 0 && nums[1] == 0,
        seen,
    );

    // 4b. /proc/1/fd/N of a created container's init, which waits for `runz start` holding
    // host fds, from a process exec'd into it.
    let b4 = bundle("created", userns, Some(&t.probe()));
    b4.write();
    // Init keeps runz's stdio until it runs: nothing a test waits to reach EOF.
    let mut create = Command::new(&t.runz.path)
        .arg("--root")
        .arg(&b4.root)
        .args(["create", "--bundle"])
        .arg(&b4.dir)
        .arg(&b4.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let st = wait_bounded(&mut create, LIMIT);
    assert!(st.is_some_and(|s| s.success()), "runz create: {st:?}");
    let (code, out) = output(
        Command::new(&t.runz.path)
            .arg("--root")
            .arg(&b4.root)
            .args(["exec", &b4.id, "/bin/escape-probe", "follow_fds", "1"]),
    );
    // Init runs the runz copy until it is started: it would keep the copy busy (ETXTBSY)
    // during the CVE-2019-5736 attempt below.
    let _ = output(
        Command::new(&t.runz.path)
            .arg("--root")
            .arg(&b4.root)
            .args(["delete", "-f", &b4.id]),
    );
    b.check(
        "follow /proc/1/fd/N of a created container's init",
        // Not even listed (EACCES) when init's /proc files belong to host root.
        code == 0
            && (out == "list EACCES"
                || (out.starts_with("followed 0 of ") && out != "followed 0 of 0")),
        out,
    );

    // 5. CVE-2019-5736: #!/proc/self/exe makes the runtime's binary a process of the
    // container; another process keeps a handle on it and writes through it once it exits.
    // The watcher is started by the build's runz: its own runtime must not be running the
    // binary under attack, or that binary stays busy (ETXTBSY) for as long as it watches.
    let mut watch = Command::new(runz_bin());
    watch.arg("--root").arg(&t.b.root).args([
        "exec",
        &t.b.id,
        "/bin/escape-probe",
        "exe_watch",
        "20",
    ]);
    let outcome = exe_overwrite(watch, t.exec(&[&t.b.id, "/bin/evil"]), || {});
    b.check(
        "overwrite runz through #!/proc/self/exe (CVE-2019-5736)",
        outcome.starts_with("found") && refused_after_exit(&outcome) && t.runz.intact(),
        format!("{outcome}; runz copy intact: {}", t.runz.intact()),
    );

    // 5b. CVE-2021-30465: a mount target in a shared volume swapped for a symlink to / while
    // another container starts, 100 times.
    mount_race(b, &t, userns);

    // 6. Host sysctls, refused by runc with the same words; the host's values stay.
    for (key, value) in HOST_SYSCTLS {
        let path = sysctl_path(key);
        let before = std::fs::read_to_string(&path).unwrap();
        let ptr = format!("/linux/sysctl/{key}");
        let set = [(ptr.as_str(), json!(value))];
        let (code, out) = t.run_once("sysctl", &["true"], &set);
        let runc = runc_refuses(userns, &t.probe(), &set);
        let after = std::fs::read_to_string(&path).unwrap();
        let want = format!("sysctl \"{key}\" is not in a separate kernel namespace");
        b.check(
            &format!("linux.sysctl {key} on the host"),
            code != 0 && out.contains(&want) && runc.contains(&want) && before == after,
            format!(
                "runz: exit {code} {out:?}; runc: {runc:?}; host value kept: {}",
                before == after
            ),
        );
    }

    // 7. root.path climbing to the host's /.
    let (code, out) = t.run_once(
        "rootpath",
        &["sh", "-c", &format!("cat {}", marker.display())],
        &[("/root/path", json!("../../../../../../../../.."))],
    );
    b.check(
        "root.path ../../.. (the host's /)",
        code != 0 && !out.contains(&secret) && out.contains("host's root directory"),
        out,
    );

    // 8. Bad input: a FIFO as config.json, 100000 supplementary groups.
    let b3 = bundle("fifo", userns, Some(&t.probe()));
    let cfg = b3.dir.join("config.json");
    std::fs::remove_file(&cfg).unwrap();
    nix::unistd::mkfifo(&cfg, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let started = Instant::now();
    let (code, out) = output(
        Command::new(&t.runz.path)
            .arg("--root")
            .arg(&b3.root)
            .args(["run", "--bundle"])
            .arg(&b3.dir)
            .arg(&b3.id),
    );
    b.check(
        "a FIFO as config.json",
        code == 1
            && out.contains("not a regular file")
            && started.elapsed() < Duration::from_secs(5),
        format!("exit {code} after {:?}: {out}", started.elapsed()),
    );
    let _ = std::fs::remove_file(&cfg);
    let gids: Vec<u32> = (1..=100_000).collect();
    let (code, out) = t.run_once(
        "gids",
        &["true"],
        &[("/process/user/additionalGids", json!(gids))],
    );
    b.check(
        "100000 additionalGids",
        code == 1 && out.contains("setgroups") && out.contains("nvalid argument"),
        out.chars().take(300).collect::<String>(),
    );

    assert!(t.runz.intact(), "the copy of runz was overwritten");
}

/// A bind mount of `src` at `dest`.
fn bind(src: &Path, dest: &str) -> serde_json::Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]})
}

/// CVE-2021-30465: an attacker container exchanges `x` (a directory) and `alt` (a symlink to
/// /) in a volume it shares with a victim, whose spec mounts a tmpfs at /shared/x, while the
/// victim is started 100 times. Blocked when every start either failed or shows the tmpfs
/// inside its own tree (a start whose tmpfs covered the container's own / fails: no sh): a
/// tmpfs mounted through the symlink as the host sees it is invisible to the victim after
/// pivot_root.
fn mount_race(b: &mut Battery, t: &Target, userns: bool) {
    let shared = t.b.dir.join("shared");
    std::fs::create_dir_all(shared.join("x")).unwrap();
    std::os::unix::fs::symlink("/", shared.join("alt")).unwrap();
    if userns {
        for p in ["", "x", "alt"] {
            std::os::unix::fs::lchown(shared.join(p), Some(100000), Some(100000)).unwrap();
        }
    }
    let mut a = bundle("race-attacker", userns, Some(&t.probe()));
    a.args(&[
        "/bin/escape-probe",
        "swap",
        "/shared/x",
        "/shared/alt",
        "60",
    ]);
    a.set("/mounts/-", bind(&shared, "/shared"));
    a.write();
    // Made on the host: a user-namespaced init may not write the host-owned rootfs.
    std::fs::create_dir_all(a.dir.join("rootfs/shared")).unwrap();
    let mut attacker = Command::new(&t.runz.path)
        .arg("--root")
        .arg(&a.root)
        .args(["run", "-d", "--bundle"])
        .arg(&a.dir)
        .arg(&a.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let st = wait_bounded(&mut attacker, LIMIT);
    assert!(st.is_some_and(|s| s.success()), "attacker: {st:?}");
    let mut v = bundle("race-victim", userns, Some(&t.probe()));
    v.args(&[
        "sh",
        "-c",
        "grep size=2048k /proc/self/mountinfo | cut -d' ' -f5",
    ]);
    v.set("/mounts/-", bind(&shared, "/shared"));
    v.set(
        "/mounts/-",
        json!({"destination": "/shared/x", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "size=2048k"]}),
    );
    v.write();
    std::fs::create_dir_all(v.dir.join("rootfs/shared")).unwrap();
    let (mut inside, mut failed, mut escaped) = (0, 0, Vec::new());
    let mut why = String::new();
    for i in 0..100 {
        let (code, out) = output(
            Command::new(&t.runz.path)
                .arg("--root")
                .arg(&v.root)
                .args(["run", "--bundle"])
                .arg(&v.dir)
                .arg(format!("{}-{i}", v.id)),
        );
        match code {
            // Any mount point the victim sees is in its own tree (/shared/x, or /shared/alt
            // when x was renamed after the mount).
            0 if out.lines().any(|l| l.starts_with('/')) => inside += 1,
            0 => escaped.push(format!("run {i}: {out:?}")),
            _ => {
                failed += 1;
                if why.is_empty() {
                    why = out;
                }
            }
        }
    }
    std::fs::write(shared.join("stop"), "").unwrap();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let on_host = host.lines().filter(|l| l.contains("size=2048k")).count();
    b.check(
        "mount target swapped for a symlink to / in a shared volume, 100 starts",
        escaped.is_empty() && on_host == 0 && inside > 0,
        format!(
            "{inside} with the tmpfs inside, {failed} failed (first: {why:?}), host mounts \
             {on_host}, outside: {escaped:?}"
        ),
    );
}

/// `runc create` with the same settings: its error text (runc must refuse too).
fn runc_refuses(userns: bool, probe: &Path, set: &[(&str, serde_json::Value)]) -> String {
    let mut b = bundle("runc", userns, Some(probe));
    for (ptr, v) in set {
        b.set(ptr, v.clone());
    }
    b.write();
    let root = format!("{}-runc", b.root.display());
    let id = format!("{}-runc", b.id);
    let (code, out) = output(
        Command::new("runc")
            .args(["--root", &root, "create", "--bundle"])
            .arg(&b.dir)
            .arg(&id),
    );
    let _ = output(Command::new("runc").args(["--root", &root, "delete", "-f", &id]));
    let _ = std::fs::remove_dir_all(&root);
    if code == 0 {
        "runc accepted it".into()
    } else {
        // runc's log line quotes its message: unquote it.
        out.replace("\\\"", "\"")
    }
}

/// Whether the watcher's write through its handle, once the evil process had exited, was
/// refused for what the binary is (read-only mount, not ours, sealed memfd), not merely busy.
fn refused_after_exit(outcome: &str) -> bool {
    [
        "after EROFS",
        "after EACCES",
        "after EPERM",
        "after write-EPERM",
    ]
    .iter()
    .any(|r| outcome.contains(r))
}

/// Perform CVE-2019-5736: start `watch` (the probe's exe_watch) and `evil` (a command that
/// runs the container's /bin/evil = `#!/proc/self/exe`). The evil process is the runtime's
/// own binary; it is held alive by a full stderr pipe until the watcher has its handle.
/// `arm` runs once the watcher is started. Returns the watcher's report.
fn exe_overwrite(mut watch: Command, mut evil: Command, arm: impl FnOnce()) -> String {
    let mut watcher = watch
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The watcher is running (in the container) before the trap is armed.
    std::thread::sleep(Duration::from_millis(500));
    arm();
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    set_nonblocking(wr.as_fd());
    let mut w = std::fs::File::from(wr.try_clone().unwrap());
    let chunk = [b'x'; 4096];
    while std::io::Write::write(&mut w, &chunk).is_ok() {}
    drop(w);
    // SAFETY: fcntl on our own pipe end: blocking again, so the evil process's write waits.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, 0) };
    let mut evil = evil
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(wr))
        .spawn()
        .unwrap();
    // The watcher's first line: found or notfound.
    let mut out = watcher.stdout.take().unwrap();
    let mut report = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline && out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        report.push(byte[0]);
    }
    // Let the evil process go: drain its stderr until it and its runtime have exited.
    set_nonblocking(rd.as_fd());
    let mut sink = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        sink.clear();
        drain(&rd, &mut sink);
        if let Ok(Some(_)) = evil.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = wait_bounded(&mut evil, Duration::from_secs(1));
    let _ = wait_bounded(&mut watcher, LIMIT);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    format!("{} {}", String::from_utf8_lossy(&report), rest.trim())
}

#[test]
fn runz_as_root_cannot_escape() {
    if !require_root() {
        return;
    }
    let mut b = Battery::default();
    runz_battery(&mut b, false);
    b.finish("runz-root");
}

#[test]
fn runz_with_a_user_namespace_cannot_escape() {
    if !require_root() {
        return;
    }
    let mut b = Battery::default();
    runz_battery(&mut b, true);
    b.finish("runz-userns");
}

/// A booted zone of host `h` (`extra` zonecfg commands after create), with the probe and
/// /bin/evil in its image.
fn boot_zone(h: &ZoneHost, name: &str, extra: &str) {
    build_probe(&h.image.join("bin/escape-probe"));
    let evil = h.image.join("bin/evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    h.boot_zone(name, &format!("set max-lwps=200; {extra}"));
}

/// `zlogin -R <host root> ARGS` with the private copy `zlogin`.
fn zlogin(h: &ZoneHost, zlogin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(zlogin);
    c.arg("-R")
        .arg(&h.root)
        .args(args)
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent);
    c
}

/// The zone's /etc/passwd with root's field `index` (5: home, 6: shell) set to `value`.
fn passwd_with_root(original: &str, index: usize, value: &str) -> String {
    original
        .lines()
        .map(|l| {
            if l.starts_with("root:") {
                let mut f: Vec<&str> = l.split(':').collect();
                if f.len() > index {
                    f[index] = value;
                }
                format!("{}\n", f.join(":"))
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// Part of the zone battery (tests/escape.rs `a_default_zone_cannot_escape`).
pub fn a_zone_login_cannot_escape(b: &mut Battery) {
    let h = ZoneHost::new("escape", "runtime", true);
    boot_zone(&h, "rt", "");
    let zl = BinaryCopy::new(&bin("zlogin"), &h.root);
    let (marker, secret) = host_marker("zone");
    let _guard = HostGuard {
        marker: marker.clone(),
        sysctls: Vec::new(),
    };

    // 1. TIOCSTI from `zlogin ZONE CMD`.
    let (code, shown) = on_pty(&mut zlogin(
        &h,
        &zl.path,
        &[
            "rt",
            "/bin/escape-probe",
            "tiocsti",
            &format!("'echo {MARKER}'"),
        ],
    ));
    b.check(
        "TIOCSTI into the caller's terminal from zlogin ZONE CMD",
        tiocsti_blocked(code, &shown),
        format!("exit {code}: {shown:?}"),
    );

    // 2. Host fds in the command's process.
    let (code, out) = output(&mut zlogin(
        &h,
        &zl.path,
        &["rt", "/bin/escape-probe", "fds"],
    ));
    b.check(
        "fds beyond 0-2 in the process of zlogin ZONE CMD",
        code == 0 && out == "fds []",
        out,
    );

    // 3. Root's home at a leaked fd, then up to the host's /. zlogin checks the home on the
    // host side first (a symlink chain that resolves differently there got past that check
    // in the issue); directories made under the zone root's /proc on the host (beneath the
    // zone's procfs) make that check pass, so the in-zone start is what is tested.
    let zroot = h.root.join("zones/rt/root");
    let passwd = zroot.join("etc/passwd");
    let original = std::fs::read_to_string(&passwd).unwrap();
    let mut reached = Vec::new();
    for fd in 3..=16 {
        let home = format!("/proc/self/fd/{fd}");
        std::fs::create_dir_all(zroot.join(home.trim_start_matches('/'))).unwrap();
        std::fs::write(&passwd, passwd_with_root(&original, 5, &home)).unwrap();
        let (_, out) = output(&mut zlogin(
            &h,
            &zl.path,
            &["rt", &format!("cat {}", climb(&marker))],
        ));
        if out.contains(&secret) {
            reached.push(fd);
        }
    }
    std::fs::write(&passwd, &original).unwrap();
    let _ = std::fs::remove_dir_all(zroot.join("proc/self"));
    b.check(
        "root's home /proc/self/fd/N (3..16) to the host's /",
        reached.is_empty(),
        format!("host file read with fds {reached:?}"),
    );
}

/// Part of the zone battery (tests/escape.rs `a_default_zone_cannot_escape`).
pub fn a_zone_without_userns_cannot_rewrite_zlogin(b: &mut Battery) {
    let h = ZoneHost::new("escape", "exe", true);
    boot_zone(&h, "ex", "set userns=false;");
    let zl = BinaryCopy::new(&bin("zlogin"), &h.root);
    // Root's login shell is the zone's to choose: zlogin then executes /bin/evil itself.
    let passwd = h.root.join("zones/ex/root/etc/passwd");
    let original = std::fs::read_to_string(&passwd).unwrap();
    let outcome = exe_overwrite(
        // Watched through the build's zlogin, which is not the binary under attack.
        zlogin(
            &h,
            &bin("zlogin"),
            &["ex", "/bin/escape-probe", "exe_watch", "20"],
        ),
        zlogin(&h, &zl.path, &["ex", "uptime"]),
        || std::fs::write(&passwd, passwd_with_root(&original, 6, "/bin/evil")).unwrap(),
    );
    std::fs::write(&passwd, &original).unwrap();
    b.check(
        "overwrite zlogin through #!/proc/self/exe with userns=false (CVE-2019-5736)",
        outcome.starts_with("found") && refused_after_exit(&outcome) && zl.intact(),
        format!("{outcome}; zlogin copy intact: {}", zl.intact()),
    );
}

/// CVE-2021-30465 against zones: zone `ra` exchanges `x` (a directory) and `alt` (a symlink
/// to /) in a host directory it shares by lofs with zone `rv`, whose configuration mounts a
/// tmpfs at /shared/x, while `rv` is booted 100 times. Blocked when every boot either failed
/// or shows the tmpfs inside its own tree, and the host never gets it.
pub fn a_zone_mount_target_race(b: &mut Battery) {
    let h = ZoneHost::new("escape", "zrace", true);
    let shared = h.root.join("shared");
    std::fs::create_dir_all(shared.join("x")).unwrap();
    std::os::unix::fs::symlink("/", shared.join("alt")).unwrap();
    // The zones' roots are other ids (their user namespaces): the volume is theirs to change.
    for p in [&shared, &shared.join("x")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let lofs = format!(
        "add fs; set dir=/shared; set special={}; set type=lofs; end;",
        shared.display()
    );
    boot_zone(&h, "ra", &lofs);
    // The victim is installed and booted once before the attacker starts: from then on a boot
    // the race spoils (the tmpfs lands on the zone's own /, hiding its /dev) just counts as failed.
    boot_zone(
        &h,
        "rv",
        &format!("{lofs} add fs; set dir=/shared/x; set special=zracetmpfs; set type=tmpfs; end;"),
    );
    h.ok("zoneadm", &["-z", "rv", "halt"]);
    let started = h.cmd(
        "zlogin",
        &[
            "ra",
            "(/bin/escape-probe swap /shared/x /shared/alt 120 </dev/null >/dev/null 2>&1 &)",
        ],
    );
    assert!(started.status.success(), "attacker: {started:?}");
    let (mut inside, mut failed, mut escaped) = (0, 0, Vec::new());
    let mut why = String::new();
    for i in 0..100 {
        let boot = h.cmd("zoneadm", &["-z", "rv", "boot"]);
        if !boot.status.success() {
            failed += 1;
            if why.is_empty() {
                why = String::from_utf8_lossy(&boot.stderr).into_owned();
            }
            continue;
        }
        let out = h.cmd(
            "zlogin",
            &["rv", "grep zracetmpfs /proc/self/mountinfo | cut -d' ' -f5"],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.lines().any(|l| l.starts_with("/shared/")) {
            inside += 1;
        } else {
            escaped.push(format!("boot {i}: {text:?}"));
        }
        let _ = h.cmd("zoneadm", &["-z", "rv", "halt"]);
    }
    std::fs::write(shared.join("stop"), "").unwrap();
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let on_host = host.lines().filter(|l| l.contains("zracetmpfs")).count();
    b.check(
        "zone: mount target swapped for a symlink to / in a shared lofs volume, 100 boots",
        escaped.is_empty() && on_host == 0 && inside > 0,
        format!(
            "{inside} with the tmpfs inside, {failed} failed (first: {why:?}), host mounts \
             {on_host}, elsewhere: {escaped:?}"
        ),
    );
}
