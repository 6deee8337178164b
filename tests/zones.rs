//! Zones end to end through the real binaries: zonecfg → zoneadm install → boot → zlogin →
//! reboot → shutdown → halt → clone → uninstall → delete, `zoneadm list -p` parsed field by
//! field, ten zones at once, and bad input that changes nothing.
//!
//! Every test gets its own alternate root (-R) under /var/tmp/runz-tests and puts its zone
//! cgroups beneath the test process's own cgroup (ZONES_CGROUP_PARENT is relative).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::require_root;
use common::zonehost::{bin, split_parsable, ZoneHost};

common::zonehost::host_type!();

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("zones", tag, true))
    }

    fn configure(&self, zone: &str) {
        let zp = format!("/zones/{zone}");
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!("create; set zonepath={zp}; set max-processes=100"),
            ],
        );
    }

    fn install(&self, zone: &str) {
        self.configure(zone);
        self.ok(
            "zoneadm",
            &["-z", zone, "install", "-d", self.image.to_str().unwrap()],
        );
    }

    fn zone_root(&self, zone: &str) -> PathBuf {
        self.root.join("zones").join(zone).join("root")
    }
}

#[test]
fn the_full_zone_lifecycle() {
    if !require_root() {
        return;
    }
    let h = Host::new("life");
    h.configure("web");
    let uuid = h.list().into_iter().find(|f| f[1] == "web").unwrap()[4].clone();
    assert_eq!(h.state("web"), "configured");
    h.ok("zoneadm", &["-z", "web", "verify"]);
    h.ok(
        "zoneadm",
        &["-z", "web", "install", "-d", h.image.to_str().unwrap()],
    );
    assert_eq!(h.state("web"), "installed");
    assert!(h.zone_root("web").join("bin/busybox").exists());

    h.ok("zoneadm", &["-z", "web", "boot"]);
    let fields: Vec<Vec<String>> = h.list();
    assert_eq!(
        fields[0],
        ["0", "global", "running", "/", "", "linux", "shared"]
    );
    let web = fields.iter().find(|f| f[1] == "web").unwrap();
    assert_eq!(web.len(), 7, "{web:?}");
    let zoneid: u32 = web[0].parse().expect("a running zone has a numeric id");
    assert!(zoneid > 0);
    assert_eq!(web[2], "running");
    assert_eq!(web[3], "/zones/web");
    assert_eq!(web[4], uuid);
    assert_eq!(web[5], "linux");
    assert_eq!(web[6], "excl");
    // Default `list` shows running zones.
    let names = h.ok("zoneadm", &["list"]);
    assert_eq!(names, "global\nweb\n");

    // Inside: the hostname is the zone's name, PID 1 is its init, no host process is visible.
    let out = h.ok(
        "zlogin",
        &[
            "web",
            "hostname; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "web");
    assert_eq!(lines[1], "init");
    let visible: usize = lines[2].parse().unwrap();
    assert!(visible < 10, "the zone sees {visible} processes");
    // zlogin returns the command's exit status and passes stdin/stdout.
    let out = h.cmd("zlogin", &["web", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    // zlogin -l user.
    assert_eq!(h.ok("zlogin", &["-l", "zone", "web", "id -u"]), "1000\n");

    // reboot: a new init, same zone id.
    let init_before = std::fs::read_to_string(h.root.join("run/zones/web/zone.json")).unwrap();
    h.ok("zoneadm", &["-z", "web", "reboot"]);
    assert_eq!(h.state("web"), "running");
    let init_after = std::fs::read_to_string(h.root.join("run/zones/web/zone.json")).unwrap();
    assert_ne!(init_before, init_after);
    assert_eq!(h.ok("zlogin", &["web", "hostname"]), "web\n");

    // reboot(2) from inside the zone brings it back.
    let _ = h.cmd("zlogin", &["web", "reboot"]);
    common::wait_until(|| {
        let now =
            std::fs::read_to_string(h.root.join("run/zones/web/zone.json")).unwrap_or_default();
        now != init_after && h.state("web") == "running"
    });
    assert_eq!(h.ok("zlogin", &["web", "hostname"]), "web\n");

    // shutdown: init is asked to stop, the zone goes to installed.
    h.ok("zoneadm", &["-z", "web", "shutdown", "-t", "20"]);
    assert_eq!(h.state("web"), "installed");
    let err = h.fails("zlogin", &["web", "true"]);
    assert!(err.contains("login allowed only to running zones"), "{err}");

    // boot and halt.
    h.ok("zoneadm", &["-z", "web", "boot"]);
    h.ok("zoneadm", &["-z", "web", "halt"]);
    assert_eq!(h.state("web"), "installed");

    // clone into a second zone.
    h.configure("web2");
    h.ok("zoneadm", &["-z", "web2", "clone", "web"]);
    assert_eq!(h.state("web2"), "installed");
    assert!(h.zone_root("web2").join("bin/busybox").exists());
    h.ok("zoneadm", &["-z", "web2", "boot"]);
    assert_eq!(h.ok("zlogin", &["web2", "hostname"]), "web2\n");
    h.ok("zoneadm", &["-z", "web2", "halt"]);

    // uninstall and delete.
    for z in ["web", "web2"] {
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
        assert_eq!(h.state(z), "configured");
        assert!(!h.zone_root(z).exists());
        h.ok("zonecfg", &["-z", z, "delete", "-F"]);
        assert_eq!(h.state(z), "absent");
    }
    assert_eq!(h.list().len(), 1, "only global is left");
}

#[test]
fn ready_then_boot_and_the_console() {
    if !require_root() {
        return;
    }
    let h = Host::new("ready");
    h.install("con");
    h.ok("zoneadm", &["-z", "con", "ready"]);
    assert_eq!(h.state("con"), "ready");
    let err = h.fails("zlogin", &["con", "true"]);
    assert!(err.contains("'ready'"), "{err}");
    h.ok("zoneadm", &["-z", "con", "boot"]);
    assert_eq!(h.state("con"), "running");
    // The console: press Enter for busybox's askfirst shell, run a command, detach with ~.
    let mut child = Command::new(bin("zlogin"))
        .arg("-R")
        .arg(&h.root)
        .args(["-C", "con"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"echo console-$((6*7))\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"~.").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("console-42"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[Connected to zone 'con' console]"));
    // The zone is still running after the console client left.
    assert_eq!(h.state("con"), "running");
    h.ok("zoneadm", &["-z", "con", "halt"]);
}

#[test]
fn ten_zones_at_once_leave_nothing_behind() {
    if !require_root() {
        return;
    }
    let h = Host::new("ten");
    let names: Vec<String> = (0..10).map(|i| format!("z{i}")).collect();
    for n in &names {
        h.install(n);
    }
    for n in &names {
        h.ok("zoneadm", &["-z", n, "boot"]);
    }
    let running: Vec<Vec<String>> = h.list().into_iter().filter(|f| f[2] == "running").collect();
    assert_eq!(running.len(), 11, "global + 10");
    let mut ids: Vec<u32> = running.iter().map(|f| f[0].parse().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 11, "zone ids are unique");
    for n in &names {
        assert_eq!(h.ok("zlogin", &[n, "hostname"]), format!("{n}\n"));
    }
    for n in &names {
        h.ok("zoneadm", &["-z", n, "halt"]);
        h.ok("zoneadm", &["-z", n, "uninstall", "-F"]);
    }
    assert!(h
        .list()
        .iter()
        .all(|f| f[1] == "global" || f[2] == "configured"));
    // No zone cgroup is left: the parent (like /zones on a host) may stay, empty.
    let children = h.zone_cgroups_left();
    assert!(children.is_empty(), "zone cgroups left: {children:?}");
    // No supervisor is left (zombies aside: the machine's pid 1 may not reap them).
    for n in &names {
        assert!(!h.root.join(format!("run/zones/{n}/control.sock")).exists());
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("bad");
    h.configure("web");
    let snapshot = || {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(h.root.join("etc/zones"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    // boot of a configured-only zone
    let err = h.fails("zoneadm", &["-z", "web", "boot"]);
    assert!(
        err.contains("zone 'web': must be installed before boot."),
        "{err}"
    );
    // halt of an installed... of a configured zone
    assert!(h.fails("zoneadm", &["-z", "web", "halt"]).contains("'web'"));
    // unknown zone
    assert!(h.fails("zoneadm", &["-z", "nope", "boot"]).contains("nope"));
    // install from something that is not a root filesystem
    let junk = h.root.join("junk");
    std::fs::write(&junk, "not an archive").unwrap();
    let err = h.fails(
        "zoneadm",
        &["-z", "web", "install", "-d", junk.to_str().unwrap()],
    );
    assert!(err.contains("not a directory, a tar archive"), "{err}");
    // a zonepath that exists and is not empty
    let zp = h.root.join("zones/web");
    std::fs::create_dir_all(&zp).unwrap();
    std::fs::write(zp.join("stray"), "x").unwrap();
    let err = h.fails(
        "zoneadm",
        &["-z", "web", "install", "-d", h.image.to_str().unwrap()],
    );
    assert!(err.contains("exists and is not empty"), "{err}");
    assert_eq!(snapshot(), before, "a refused command changed the store");
    std::fs::remove_dir_all(&zp).unwrap();
    // uninstall of a running zone
    h.ok(
        "zoneadm",
        &["-z", "web", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "web", "boot"]);
    let err = h.fails("zoneadm", &["-z", "web", "uninstall", "-F"]);
    assert!(err.contains("running"), "{err}");
    assert_eq!(h.state("web"), "running");
    // a second boot
    let err = h.fails("zoneadm", &["-z", "web", "boot"]);
    assert!(err.contains("running"), "{err}");
    h.ok("zoneadm", &["-z", "web", "halt"]);
}

#[test]
fn an_interrupted_install_leaves_the_zone_incomplete() {
    if !require_root() {
        return;
    }
    let h = Host::new("crash");
    h.configure("big");
    // A large source so the copy is still running when zoneadm is killed.
    let src = h.root.join("big-src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..400 {
        std::fs::write(src.join(format!("f{i}")), vec![7u8; 256 * 1024]).unwrap();
    }
    let mut child = Command::new(bin("zoneadm"))
        .arg("-R")
        .arg(&h.root)
        .args(["-z", "big", "install", "-d", src.to_str().unwrap()])
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if h.zone_root("big").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let status = child.wait().unwrap();
    let st = h.state("big");
    if status.success() {
        // The machine was faster than the kill: then it must be fully installed.
        assert_eq!(st, "installed");
    } else {
        assert_eq!(st, "incomplete", "killed mid-install but the zone is {st}");
        // An incomplete zone can be uninstalled and installed again.
        h.ok("zoneadm", &["-z", "big", "uninstall", "-F"]);
        assert_eq!(h.state("big"), "configured");
    }
}

#[test]
fn list_formats() {
    if !require_root() {
        return;
    }
    let h = Host::new("list");
    h.install("a");
    h.configure("b");
    let out = h.ok("zoneadm", &["list", "-iv"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("ID") && lines[0].contains("NAME") && lines[0].contains("STATUS"));
    assert!(
        out.contains(" a ")
            || out.contains(" a\t")
            || lines
                .iter()
                .any(|l| l.split_whitespace().nth(1) == Some("a"))
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some("b")),
        "-i hides configured zones"
    );
    let json: serde_json::Value =
        serde_json::from_str(&h.ok("zoneadm", &["list", "-c", "-j"])).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["zonename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["global", "a", "b"]);
    assert_eq!(json[1]["state"], "installed");
    assert_eq!(json[2]["zoneid"], serde_json::Value::Null);
    assert_eq!(
        split_parsable("-:a\\:b:installed:/z\\\\p:u:linux:excl")[1],
        "a:b"
    );
}

#[test]
fn zlogin_runs_with_the_zones_bounding_set_seccomp_and_cgroup() {
    if !require_root() {
        return;
    }
    let h = Host::new("zlogin-priv");
    h.install("p");
    // sys_resource: one a user-namespaced zone can use (sys_time could not: refused).
    h.ok(
        "zonecfg",
        &["-z", "p", "set limitpriv=default,sys_resource"],
    );
    h.ok("zoneadm", &["-z", "p", "boot"]);
    let out = h.ok("zlogin", &["p", "cat /proc/self/status /proc/self/cgroup"]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim()
            .to_string()
    };
    let bnd = u64::from_str_radix(&field("CapBnd"), 16).unwrap();
    // CAP_SYS_ADMIN of the zone's own user namespace (illumos's default sys_admin): it sets
    // the zone's own hostname, and tests/escape.rs shows it reaches nothing of the host.
    assert_ne!(
        bnd & (1 << 21),
        0,
        "a zone with its own user namespace holds CAP_SYS_ADMIN there"
    );
    assert_eq!(
        bnd & (1 << 16),
        0,
        "CAP_SYS_MODULE must not be in a zone's bounding set"
    );
    assert_ne!(
        bnd & (1 << 22),
        0,
        "CAP_SYS_BOOT lets the zone reboot itself"
    );
    assert_ne!(
        bnd & (1 << 24),
        0,
        "limitpriv sys_resource gives CAP_SYS_RESOURCE"
    );
    assert_eq!(field("Seccomp"), "2", "the zone's seccomp filter applies");
    assert_eq!(
        field("NoNewPrivs"),
        "1",
        "zlogin sessions run with no_new_privs"
    );
    // The zone has its own cgroup namespace rooted at its cgroup: every line ends in ":/".
    let cg_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(":/") && l.split(':').count() == 3)
        .collect();
    assert!(
        !cg_lines.is_empty() && cg_lines.iter().all(|l| l.ends_with(":/")),
        "{out}"
    );
    // The zone's seccomp profile refuses what reaches past the zone.
    let out = h.cmd("zlogin", &["p", "swapoff -a 2>&1; echo rc=$?"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rc=1") || text.contains("not permitted"),
        "{text}"
    );
    // The zone's root names its own UTS namespace (busybox's `hostname -F` at boot too); the
    // host's name is untouched, and a new login sees the zone's new name.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let etc = h.root.join("zones/p/root/etc/hostname");
    std::fs::write(&etc, "fromfile\n").unwrap();
    h.ok("zlogin", &["p", "hostname -F /etc/hostname"]);
    assert_eq!(h.ok("zlogin", &["p", "hostname"]), "fromfile\n");
    h.ok("zlogin", &["p", "hostname renamed"]);
    assert_eq!(h.ok("zlogin", &["p", "hostname"]), "renamed\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    h.ok("zoneadm", &["-z", "p", "halt"]);
}

#[test]
fn move_detach_attach_and_mark() {
    if !require_root() {
        return;
    }
    let h = Host::new("move");
    h.install("m");
    h.ok("zoneadm", &["-z", "m", "move", "/zones/moved"]);
    assert!(h.root.join("zones/moved/root/bin/busybox").exists());
    assert!(!h.root.join("zones/m").exists());
    let row = h.list().into_iter().find(|f| f[1] == "m").unwrap();
    assert_eq!(row[3], "/zones/moved");
    h.ok("zoneadm", &["-z", "m", "boot"]);
    assert_eq!(h.ok("zlogin", &["m", "hostname"]), "m\n");
    let err = h.fails("zoneadm", &["-z", "m", "detach"]);
    assert!(err.contains("running"), "{err}");
    h.ok("zoneadm", &["-z", "m", "halt"]);
    h.ok("zoneadm", &["-z", "m", "detach"]);
    assert_eq!(h.state("m"), "configured");
    assert!(h.root.join("zones/moved/SUNWdetached.json").exists());
    // Installing over it: illumos's advice (attach, or remove the directory), nothing
    // touched.
    let img = h.image.to_str().unwrap().to_string();
    assert_eq!(
        h.fails("zoneadm", &["-z", "m", "install", "-d", &img]),
        format!(
            "zoneadm: zone 'm': Cannot install detached zone. Use attach or remove {} directory.\n",
            h.root.join("zones/moved").display()
        )
    );
    assert_eq!(h.state("m"), "configured");
    assert!(h.root.join("zones/moved/SUNWdetached.json").exists());
    assert!(h.root.join("zones/moved/root/bin/busybox").exists());
    h.ok("zoneadm", &["-z", "m", "attach"]);
    assert_eq!(h.state("m"), "installed");
    h.ok("zoneadm", &["-z", "m", "mark", "incomplete"]);
    assert_eq!(h.state("m"), "incomplete");
    let err = h.fails("zoneadm", &["-z", "m", "boot"]);
    assert!(err.contains("is incomplete"), "{err}");
    h.ok("zoneadm", &["-z", "m", "uninstall", "-F"]);
    assert_eq!(h.state("m"), "configured");
}

#[test]
fn boot_all_and_shutdown_all_follow_autoboot() {
    if !require_root() {
        return;
    }
    let h = Host::new("all");
    h.install("auto");
    h.install("manual");
    h.ok("zonecfg", &["-z", "auto", "set autoboot=true"]);
    h.ok("zoneadm", &["boot-all"]);
    assert_eq!(h.state("auto"), "running");
    assert_eq!(h.state("manual"), "installed");
    h.ok("zoneadm", &["shutdown-all", "-t", "20"]);
    assert_eq!(h.state("auto"), "installed");
}

#[test]
fn an_app_zone_runs_one_program() {
    if !require_root() {
        return;
    }
    let h = Host::new("app");
    h.ok(
        "zonecfg",
        &[
            "-z",
            "svc",
            "create; set zonepath=/zones/svc; set brand=app; set bootargs=\"/bin/sleep 1000\"",
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "svc", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "svc", "boot"]);
    assert_eq!(h.state("svc"), "running");
    let out = h.ok("zlogin", &["svc", "cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert_eq!(out.trim(), "/bin/sleep 1000");
    h.ok("zoneadm", &["-z", "svc", "halt"]);
    // An app zone's program ending takes the zone down.
    h.ok("zonecfg", &["-z", "svc", "set bootargs=\"/bin/sleep 1\""]);
    h.ok("zoneadm", &["-z", "svc", "boot"]);
    for _ in 0..1000 {
        if h.state("svc") == "installed" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(h.state("svc"), "installed");
}

#[test]
fn the_console_stays_attached_across_a_reboot() {
    if !require_root() {
        return;
    }
    use std::io::{Read, Write};
    let h = Host::new("con-reboot");
    h.install("cr");
    h.ok("zoneadm", &["-z", "cr", "boot"]);
    let mut child = Command::new(bin("zlogin"))
        .arg("-R")
        .arg(&h.root)
        .args(["-C", "cr"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    h.ok("zoneadm", &["-z", "cr", "reboot"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(b"echo after-$((40+2))-reboot\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        stdin.write_all(b"~.").unwrap();
    }
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let _ = child.wait();
    assert!(text.contains("after-42-reboot"), "{text}");
    h.ok("zoneadm", &["-z", "cr", "halt"]);
}

/// The IPC rctls and hostid change what the zone sees (its own IPC namespace's sysctls, its
/// /etc/hostid), while the host keeps its values; scheduling classes other than FSS and
/// resource pools, which Linux has no mechanism for, are refused (zonecfg verifies at commit),
/// not stored and ignored.
#[test]
fn ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused() {
    if !require_root() {
        return;
    }
    let h = Host::new("ipc");
    h.install("i");
    h.ok(
        "zonecfg",
        &[
            "-z",
            "i",
            "set max-shm-memory=64m; set max-shm-ids=100; set max-msg-ids=200; \
             set max-sem-ids=300; set hostid=1a2b3c4d",
        ],
    );
    let host_before = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    h.ok("zoneadm", &["-z", "i", "boot"]);
    let out = h.ok(
        "zlogin",
        &[
            "i",
            "cat /proc/sys/kernel/shmmax /proc/sys/kernel/shmall /proc/sys/kernel/shmmni \
             /proc/sys/kernel/msgmni /proc/sys/kernel/sem; hostid",
        ],
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .unwrap()
        .unwrap() as u64;
    assert_eq!(lines[0], (64u64 << 20).to_string(), "shmmax: {out}");
    assert_eq!(
        lines[1],
        ((64u64 << 20) / page).to_string(),
        "shmall: {out}"
    );
    assert_eq!(lines[2], "100", "shmmni: {out}");
    assert_eq!(lines[3], "200", "msgmni: {out}");
    assert_eq!(
        lines[4].split_whitespace().nth(3),
        Some("300"),
        "sem (SEMMNI): {out}"
    );
    assert_eq!(lines[5], "1a2b3c4d", "hostid: {out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_before,
        "the host's IPC limits must not change"
    );
    h.ok("zoneadm", &["-z", "i", "halt"]);

    for (prop, want) in [
        (
            "set scheduling-class=RT",
            "scheduling-class RT: only FSS is supported",
        ),
        (
            "set pool=pool_web",
            "pool pool_web: resource pools are not supported on Linux",
        ),
    ] {
        // zonecfg verifies at commit: the property is refused there, nothing stored.
        h.configure("u");
        let e = h.fails("zonecfg", &["-z", "u", prop]);
        assert!(e.contains(want), "{prop}: {e}");
        let info = h.ok("zonecfg", &["-z", "u", "info"]);
        assert!(
            !info.contains("pool_web") && !info.contains(": RT"),
            "{info}"
        );
        h.ok("zonecfg", &["-z", "u", "delete -F"]);
    }
    h.configure("f");
    h.ok("zonecfg", &["-z", "f", "set scheduling-class=FSS"]);
    h.ok("zoneadm", &["-z", "f", "verify"]);
}

/// An init that cannot get going fails `zoneadm boot` with how it ended and what it last
/// printed on the console; the zone is left installed, with nothing of the attempt left.
#[test]
fn a_boot_whose_init_dies_fails_with_the_reason_and_leaves_the_zone_installed() {
    if !require_root() {
        return;
    }
    let h = Host::new("initdies");
    h.install("d");
    let init = h.zone_root("d").join("sbin/init");
    let _ = std::fs::remove_file(&init);
    std::fs::write(
        &init,
        "#!/bin/sh\necho 'Failed to mount the cgroup hierarchy: EPERM'\necho 'Freezing execution.'\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = h.fails("zoneadm", &["-z", "d", "boot"]);
    assert!(e.contains("zone 'd'"), "{e}");
    assert!(e.contains("init exited with status 3 during boot"), "{e}");
    assert!(
        e.contains("Failed to mount the cgroup hierarchy: EPERM | Freezing execution."),
        "{e}"
    );
    assert_eq!(h.state("d"), "installed");
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );
    assert!(
        !h.root.join("run/zones/d/control.sock").exists(),
        "no supervisor is left"
    );
    // Without /sbin/init at all, boot says so before anything is made.
    std::fs::remove_file(&init).unwrap();
    let e = h.fails("zoneadm", &["-z", "d", "boot"]);
    assert!(e.contains("/sbin/init"), "{e}");
    assert_eq!(h.state("d"), "installed");
}

/// `zonecfg -r` takes only what a running zone can take live (its caps): a commit with a
/// change read at boot (a file system, the IPC rctls, hostid) is refused whole, each change
/// named, exit 1, and neither the running zone nor the stored configuration changes, not
/// even the live cap that came with it.
#[test]
fn zonecfg_r_refuses_changes_it_cannot_apply_live() {
    if !require_root() {
        return;
    }
    let h = Host::new("live-r");
    h.install("r");
    // Not running: that is the reason, whatever the change.
    assert_eq!(
        h.fails("zonecfg", &["-z", "r", "-r", "set hostid=80f0c086"]),
        "zonecfg: zone 'r': the zone is installed: live changes need a ready or running zone; the configuration was not committed\n"
    );
    h.ok("zoneadm", &["-z", "r", "boot"]);
    let inside = || h.ok("zlogin", &["r", "cat /proc/sys/kernel/shmmax; mount"]);
    let before = inside();
    let out = h.cmd(
        "zonecfg",
        &[
            "-z",
            "r",
            "-r",
            "set max-processes=77; add fs; set dir=/data; set special=tmpfs; set type=tmpfs; end; \
             set max-shm-memory=1m; set hostid=80f0c086",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zonecfg: zone 'r': cannot change in the running zone: fs dir=/data, hostid, max-shm-memory (read at boot: commit without -r, then reboot the zone); the configuration was not committed\n"
    );
    assert_eq!(inside(), before, "the running zone changed");
    let info = h.ok("zonecfg", &["-z", "r", "info"]);
    assert!(
        !info.contains("/data") && !info.contains("80f0c086") && !info.contains("77"),
        "{info}"
    );
    // A live cap alone is applied and saved.
    h.ok("zonecfg", &["-z", "r", "-r", "set max-processes=77"]);
    assert!(h
        .ok("zonecfg", &["-z", "r", "info max-processes"])
        .contains("77"));
}

/// Every file under the alternate root whose path names `what`.
fn files_naming(root: &Path, what: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.join("etc"), root.join("run")];
    // Bounded: a test root holds a few hundred files at most.
    for _ in 0..10_000 {
        let Some(dir) = todo.pop() else { break };
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.to_string_lossy().contains(what) {
                found.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    found
}

/// A deleted zone leaves nothing (configuration, lock file, metadata, run/zones/<zone>), and
/// a name that was only typed (no such zone) leaves no lock file.
#[test]
fn nothing_of_a_zone_is_left_after_delete() {
    if !require_root() {
        return;
    }
    let h = Host::new("leftovers");
    h.fails("zonecfg", &["-z", "nosuch", "info"]);
    h.fails("zoneadm", &["-z", "nosuch", "verify"]);
    h.fails("zoneadm", &["-z", "nosuch", "boot"]);
    h.fails("zoneadm", &["-z", "nosuch", "uninstall", "-F"]);
    h.fails("zonecfg", &["-z", "nosuch", "delete", "-F"]);
    h.fails("zlogin", &["nosuch", "true"]);
    assert_eq!(files_naming(&h.root, "nosuch"), Vec::<PathBuf>::new());

    h.install("gone");
    let uuid = h.list().into_iter().find(|f| f[1] == "gone").unwrap()[4].clone();
    let md = h.root.join("md.json");
    std::fs::write(&md, r#"{"customer_metadata": {"role": "x"}}"#).unwrap();
    h.ok(
        "zoneadm",
        &["-z", "gone", "update", "-f", md.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "gone", "boot"]);
    assert!(
        !files_naming(&h.root, &uuid).is_empty(),
        "the metadata file"
    );
    h.ok("zoneadm", &["-z", "gone", "halt"]);
    h.ok("zoneadm", &["-z", "gone", "uninstall", "-F"]);
    h.ok("zonecfg", &["-z", "gone", "delete", "-F"]);
    assert_eq!(files_naming(&h.root, "gone"), Vec::<PathBuf>::new());
    assert_eq!(files_naming(&h.root, &uuid), Vec::<PathBuf>::new());
}

/// The zone tools speak for themselves, once, the illumos way: a usage error is `PROG: what`
/// and a usage line (no clap "tip:"), a zoneadmd failure names the zone once, the engine's
/// warnings say `zoneadm:` (not `runz:`), and output cut short by its reader (`| head`)
/// ends quietly.
#[test]
fn zone_tools_messages_are_their_own_and_said_once() {
    if !require_root() {
        return;
    }
    let h = Host::new("messages");
    let out = h.cmd("zoneadm", &["-z", "a", "biot"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zoneadm: unrecognized subcommand 'biot'\nusage:\tzoneadm [OPTIONS] <COMMAND>\n"
    );
    assert_eq!(
        h.fails("dladm", &["bogus"]),
        "dladm: unrecognized subcommand 'bogus'\nusage:\tdladm [OPTIONS] [COMMAND]\n"
    );
    let e = h.fails("zoneadm", &["-z", "a", "boot", "--frc"]);
    assert!(
        e.starts_with("zoneadm: unexpected argument '--frc' found\nusage:\tzoneadm boot")
            && !e.contains("tip:"),
        "{e}"
    );
    for (prog, args) in [("imgadm", &["list"][..]), ("zoneadm", &["list", "-cv"][..])] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(bin(prog))
            .arg("-R")
            .arg(&h.root)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(141), "{prog}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{prog}");
    }
    // imgadm names itself once.
    h.ok("zonecfg", &["-z", "c", "create; set zonepath=/zones/c"]);
    let tar = h.root.join("c.tar");
    assert_eq!(
        h.fails("imgadm", &["create", "c", "-o", tar.to_str().unwrap()]),
        "imgadm: create: zone c is configured: an image is made from an installed, halted zone (zoneadm -z c halt)\n"
    );
    // zoneadmd's refusal, named once.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "zs",
            "create; set zonepath=/zones/zs; set ip-type=shared",
        ],
    );
    let img = h.image.to_str().unwrap().to_string();
    h.ok("zoneadm", &["-z", "zs", "install", "-d", &img]);
    assert_eq!(
        h.fails("zoneadm", &["-z", "zs", "boot"]),
        "zoneadm: zone 'zs': ip-type=shared is not supported (zones have exclusive IP stacks only); set ip-type=exclusive\n"
    );
    // The engine's warning after a zoneadmd killed under a running zone.
    h.install("k");
    h.ok("zoneadm", &["-z", "k", "boot"]);
    let pid: i32 = std::fs::read_to_string(h.root.join("run/zones/k/zoneadmd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) of the zone's supervisor, a process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(common::wait_until(|| unsafe { libc::kill(pid, 0) } != 0));
    // boot cleans up after it first, with a note.
    let out = h.cmd("zoneadm", &["-z", "k", "boot"]);
    assert!(out.status.success());
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        e.contains("zoneadm: warning: zone 'k': cleaned up after a zoneadmd that died")
            && !e.contains("runz:"),
        "{e}"
    );
}
