//! Distribution zones: the Debian 12 root filesystem of `scripts/mk-debian-image.sh`
//! (systemd, dbus, openssh-server, iproute2, procps) installed with `zoneadm install -d` and
//! booted with systemd as the zone's init, unprivileged (the zone's own user namespace); and
//! its OpenRC variant (`--init openrc`: sysvinit's init running OpenRC from inittab).
//!
//! The image is built once per machine by the script (debootstrap through apt's configured
//! mirror, cached under /var/cache/zones-linux; a few minutes the first time) and unpacked
//! into each test's host (about a second).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::leaks::{leaks, Scope};
use common::require_root;
use common::zonehost::{bin, ZoneHost};

common::zonehost::host_type!();

/// Bounds what a zone's systemd may take to reach its default target (inside the zone,
/// `timeout` around `systemctl is-system-running --wait`): far above a normal boot, so that a
/// hung boot fails the test instead of hanging it.
const BOOT_LIMIT: &str = "120";

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("distro", tag, false))
    }

    /// The Debian image unpacked under this host (built and cached by the project's script).
    fn debian_image(&self) -> PathBuf {
        self.debian_image_with("systemd")
    }

    /// The Debian image with `init` (`systemd` or `openrc`, the script's `--init`).
    fn debian_image_with(&self, init: &str) -> PathBuf {
        let dest = self.root.join("debian");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mk-debian-image.sh");
        let out = Command::new(&script)
            .arg(&dest)
            .args(["--init", init])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "mk-debian-image.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    }

    /// Configure `zone` with `cfg` and install it from the Debian image.
    fn install_debian(&self, zone: &str, cfg: &str) {
        self.install_debian_with("systemd", zone, cfg);
    }

    /// Configure `zone` with `cfg` and install it from the Debian image with `init`.
    fn install_debian_with(&self, init: &str, zone: &str, cfg: &str) {
        let image = self.debian_image_with(init);
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!("create; set zonepath=/zones/{zone}; {cfg}"),
            ],
        );
        self.ok(
            "zoneadm",
            &["-z", zone, "install", "-d", image.to_str().unwrap()],
        );
        std::fs::remove_dir_all(&image).unwrap();
    }

    /// `zlogin ZONE ARGS...`: (exit code, stdout, stderr).
    fn zlogin(&self, zone: &str, args: &[&str]) -> (i32, String, String) {
        let mut a = vec![zone];
        a.extend_from_slice(args);
        let out = self.cmd("zlogin", &a);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `systemctl is-system-running --wait` in `zone` (bounded by [`BOOT_LIMIT`]), once
    /// systemd listens on its private socket (at most 30 s after `zoneadm boot` returns, which
    /// is when init has started): it must print `running`; otherwise the failed units are
    /// shown.
    fn wait_running(&self, zone: &str) {
        let script = format!(
            "for i in $(seq 300); do [ -S /run/systemd/private ] && break; sleep 0.1; done; \
             exec timeout {BOOT_LIMIT} systemctl is-system-running --wait"
        );
        // zlogin runs its arguments as one shell command line, as illumos zlogin does.
        let (_, state, err) = self.zlogin(zone, &[&script]);
        if state.trim() != "running" {
            let (_, failed, _) = self.zlogin(zone, &["systemctl", "--failed", "--no-pager"]);
            let (_, jobs, _) = self.zlogin(zone, &["systemctl", "list-jobs", "--no-pager"]);
            panic!("zone {zone}: system state {state:?} ({err}); failed units:\n{failed}\njobs:\n{jobs}");
        }
    }

    /// The zone's console as `zlogin -C` shows it to a client that attaches now (the
    /// supervisor's recent output), read until `needle` appears or 15 s pass.
    fn console_until(&self, zone: &str, needle: &str) -> String {
        let mut child: Child = Command::new(bin("zlogin"))
            .arg("-R")
            .arg(&self.root)
            .args(["-C", zone])
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut text = Vec::new();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
                text.extend(chunk);
            }
            if String::from_utf8_lossy(&text).contains(needle) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        String::from_utf8_lossy(&text).into_owned()
    }

    /// `zoneadm shutdown` of `zone`: it must end the zone itself, by its init's clean
    /// power-off, not by the halt that follows a timed-out shutdown.
    fn shutdown_cleanly(&self, zone: &str) {
        self.ok("zoneadm", &["-z", zone, "shutdown"]);
        assert_eq!(self.state(zone), "installed");
        let log = std::fs::read_to_string(self.root.join(format!("run/zones/{zone}/zoneadmd.log")))
            .unwrap_or_default();
        assert!(!log.contains("shutdown timed out"), "{log}");
        // systemd halts with reboot(2), which in a PID namespace ends its init by SIGINT
        // (pid_namespaces(7)): the zone powered off.
        let last = log
            .lines()
            .rev()
            .find(|l| l.contains("init ended"))
            .unwrap_or_default();
        assert!(last.contains("SIGINT"), "{log}");
    }
}

/// Priority 1 of issue 17: the Debian image boots as a zone to `running` with nothing
/// failed, the zone's root sets its own host name (and only its own), sshd starts and
/// listens inside, the console shows systemd's boot, and `zoneadm shutdown` powers it off
/// cleanly, leaving nothing behind.
#[test]
fn a_debian_zone_boots_systemd_to_running_and_shuts_down_cleanly() {
    if !require_root() {
        return;
    }
    let h = Host::new("debian");
    h.install_debian(
        "deb",
        "set max-processes=400; add capped-memory; set physical=512m; end",
    );
    h.ok("zoneadm", &["-z", "deb", "boot"]);
    h.wait_running("deb");
    let (_, failed, _) = h.zlogin(
        "deb",
        &[
            "systemctl",
            "list-units",
            "--failed",
            "--plain",
            "--no-legend",
        ],
    );
    assert_eq!(failed.trim(), "", "no unit failed");

    // The machine id is the zone's own, made by systemd from the zone's uuid
    // ($container_uuid), not one the image carries.
    let uuid = h
        .list()
        .into_iter()
        .find(|f| f[1] == "deb")
        .map(|f| f[4].replace('-', ""))
        .unwrap();
    let (_, id, _) = h.zlogin("deb", &["cat", "/etc/machine-id"]);
    assert_eq!(id.trim(), uuid);

    // systemd knows it is in a container (container=zone: an id of its own, so
    // container-other), and runs in unified mode on the zone's own cgroup.
    let (_, virt, _) = h.zlogin("deb", &["systemd-detect-virt"]);
    assert_eq!(virt.trim(), "container-other");
    let (_, fs, _) = h.zlogin("deb", &["stat", "-f", "-c", "%T", "/sys/fs/cgroup"]);
    assert_eq!(fs.trim(), "cgroup2fs");
    let (_, cg, _) = h.zlogin("deb", &["cat", "/proc/1/cgroup"]);
    assert!(cg.lines().any(|l| l == "0::/init.scope"), "{cg}");

    // The memory cap: on pure v2 the zone's own cgroup files, read-only to it, and what
    // systemd reports; on a hybrid host the caps are on the v1 hierarchies, which a unified-
    // mode zone does not mount (the unified hierarchy there has no controllers).
    let v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
    let (_, max, _) = h.zlogin("deb", &["cat", "/sys/fs/cgroup/memory.max"]);
    let (_, shown, _) = h.zlogin(
        "deb",
        &["systemctl", "show", "-p", "MemoryMax", "--", "-.slice"],
    );
    let (_, write, werr) = h.zlogin("deb", &["echo max > /sys/fs/cgroup/memory.max"]);
    if v2 {
        assert_eq!(max.trim(), (512u64 << 20).to_string());
        assert!(werr.contains("Permission denied"), "{write}{werr}");
    } else {
        assert_eq!(
            max.trim(),
            "",
            "no memory controller in the zone's unified hierarchy"
        );
        // systemd reads its own settings, not the kernel's: it sees no cap there.
        assert_eq!(shown.trim(), "MemoryMax=infinity");
    }

    // The zone's capabilities: CAP_SYS_ADMIN (21) in its user namespace, no audit ones
    // (29, 30, 37).
    let (_, status, _) = h.zlogin("deb", &["cat", "/proc/1/status"]);
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    assert!(bnd & (1 << 21) != 0, "CAP_SYS_ADMIN: {bnd:x}");
    for audit in [29, 30, 37] {
        assert!(bnd & (1 << audit) == 0, "audit cap {audit}: {bnd:x}");
    }

    // The host name: set by the zone's root, seen in the zone, not on the host.
    let host_name = nix::unistd::gethostname().unwrap();
    let (rc, _, err) = h.zlogin("deb", &["hostname", "runz-test-newname"]);
    assert_eq!(rc, 0, "{err}");
    let (_, name, _) = h.zlogin("deb", &["hostname"]);
    assert_eq!(name.trim(), "runz-test-newname");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);

    // sshd: started by systemd, listening on port 22 in the zone's network namespace.
    let (rc, _, err) = h.zlogin("deb", &["systemctl", "start", "ssh"]);
    assert_eq!(rc, 0, "{err}");
    let (_, active, _) = h.zlogin("deb", &["systemctl", "is-active", "ssh"]);
    assert_eq!(active.trim(), "active");
    let (_, listening, _) = h.zlogin("deb", &["ss", "-Hltn", "sport", "=", ":22"]);
    assert!(listening.contains("LISTEN"), "{listening}");

    // journald has the boot; the console showed systemd's own messages.
    let (_, journal, _) = h.zlogin("deb", &["journalctl", "-b", "--no-pager", "-q"]);
    assert!(journal.contains("Startup finished"), "{journal}");
    let console = h.console_until("deb", "Reached target");
    assert!(console.contains("Welcome to"), "{console}");
    assert!(console.contains("Debian GNU/Linux 12"), "{console}");
    assert!(console.contains("Reached target"), "{console}");

    // `reboot` inside: systemd's reboot(2) ends the zone's init by SIGHUP and zoneadmd boots
    // the zone again (a fresh /run).
    h.zlogin("deb", &["touch", "/run/runz-test-marker"]);
    let (rc, _, err) = h.zlogin("deb", &["reboot"]);
    assert_eq!(rc, 0, "{err}");
    let log = h.root.join("run/zones/deb/zoneadmd.log");
    // systemd stops its units first: bounded at 30 s.
    let rebooted = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SIGHUP"))
    });
    assert!(
        rebooted,
        "no reboot: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Down while it boots again; running within 30 s.
    let up = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        h.state("deb") == "running"
    });
    assert!(up, "state after the reboot: {}", h.state("deb"));
    h.wait_running("deb");
    let (rc, _, _) = h.zlogin("deb", &["test", "-e", "/run/runz-test-marker"]);
    assert_ne!(rc, 0, "the zone rebooted: /run is new");

    h.shutdown_cleanly("deb");
    let left = leaks(&h, &Scope::default());
    assert!(left.is_empty(), "{left:?}");
}

/// Priority 3 of issue 17: 20 boots to `running` and clean shutdowns of the Debian zone
/// leave nothing: no mount, cgroup, process or link of the host's (check-leaks' list,
/// scoped to the test's host: the zone's id range may be another host's too), and each
/// cycle ended by the zone's own power-off.
#[test]
fn twenty_debian_boot_and_shutdown_cycles_leak_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("cycles");
    h.install_debian("cyc", "");
    let log = h.root.join("run/zones/cyc/zoneadmd.log");
    for cycle in 1..=20 {
        h.ok("zoneadm", &["-z", "cyc", "boot"]);
        h.wait_running("cyc");
        h.shutdown_cleanly("cyc");
        let left = leaks(&h, &Scope::default());
        assert!(left.is_empty(), "cycle {cycle}: {left:?}");
        let ends = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("init ended") && l.contains("SIGINT"))
            .count();
        assert_eq!(ends, cycle, "every cycle powered off");
    }
}

/// A systemd zone without a user namespace of its own gets no CAP_SYS_ADMIN (it would be the
/// host's): systemd cannot mount its API filesystems and exits, and `zoneadm boot` fails with
/// systemd's own words from the console, leaving the zone installed and nothing behind.
#[test]
fn a_systemd_zone_that_cannot_boot_fails_the_boot_with_systemds_error() {
    if !require_root() {
        return;
    }
    let h = Host::new("nouserns");
    h.install_debian("nu", "set userns=false");
    let e = h.fails("zoneadm", &["-z", "nu", "boot"]);
    assert!(
        e.starts_with("zoneadm: zone 'nu': init exited with status 255 during boot"),
        "{e}"
    );
    assert!(e.contains("Failed to mount API filesystems"), "{e}");
    assert_eq!(h.state("nu"), "installed");
    let left = leaks(&h, &Scope::default());
    assert!(left.is_empty(), "{left:?}");
}

/// `imgadm import --rootfs` of the Debian image, and a zone installed from the image store
/// (`install -i`) boots to `running` as one installed with `-d`; `zoneadm halt` ends it with
/// the cgroups its systemd made.
#[test]
fn the_debian_image_imports_into_the_image_store_and_its_zones_boot() {
    if !require_root() {
        return;
    }
    let h = Host::new("imgadm");
    let image = h.debian_image();
    let out = h.ok(
        "imgadm",
        &[
            "import",
            "--rootfs",
            image.to_str().unwrap(),
            "--name",
            "debian12",
        ],
    );
    assert!(out.starts_with("Imported image debian12 "), "{out}");
    std::fs::remove_dir_all(&image).unwrap();
    h.ok("zonecfg", &["-z", "di", "create; set zonepath=/zones/di"]);
    h.ok("zoneadm", &["-z", "di", "install", "-i", "debian12"]);
    h.ok("zoneadm", &["-z", "di", "boot"]);
    h.wait_running("di");
    // halt: everything killed, systemd's own cgroups beneath the zone's removed with it.
    h.ok("zoneadm", &["-z", "di", "halt"]);
    assert_eq!(h.state("di"), "installed");
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );
    h.ok("zoneadm", &["-z", "di", "uninstall", "-F"]);
    let left = leaks(&h, &Scope::default());
    assert!(left.is_empty(), "{left:?}");
}

/// Removes the test's host links named `<prefix>...` (an etherstub a failed test left).
struct Links(String);

impl Drop for Links {
    fn drop(&mut self) {
        if let Ok(mut nl) = zones_net::Netlink::open() {
            for l in nl.links().unwrap_or_default() {
                if l.name.starts_with(&self.0) {
                    let _ = nl.delete_link(&l.name);
                }
            }
        }
    }
}

/// Networking as in a busybox zone: an anet's address is set before init (systemd-networkd
/// is not needed and not running), and the host end goes with the zone.
#[test]
fn a_systemd_zone_has_its_anet_address_without_networkd() {
    if !require_root() {
        return;
    }
    let h = Host::new("anet");
    let prefix = h.link_name("rzt", "");
    let stub = h.link_name("rzt", "s");
    let _links = Links(prefix.clone());
    h.ok("dladm", &["create-etherstub", &stub]);
    h.install_debian(
        "an",
        &format!(
            "add anet; set linkname=net0; set lower-link={stub}; \
             set allowed-address=10.213.77.5/24; end"
        ),
    );
    h.ok("zoneadm", &["-z", "an", "boot"]);
    h.wait_running("an");
    let (_, addr, err) = h.zlogin("an", &["ip", "-4", "-o", "addr", "show", "dev", "net0"]);
    assert!(addr.contains("inet 10.213.77.5/24"), "{addr}{err}");
    let (_, networkd, _) = h.zlogin("an", &["systemctl", "is-active", "systemd-networkd"]);
    assert_eq!(networkd.trim(), "inactive");
    h.shutdown_cleanly("an");
    h.ok("dladm", &["delete-etherstub", &stub]);
    let left = leaks(
        &h,
        &Scope {
            anets: vec![("an", "net0")],
            link_prefix: Some(&prefix),
        },
    );
    assert!(left.is_empty(), "{left:?}");
}

/// OpenRC in `zone`: waits (bounded by [`BOOT_LIMIT`]) until sysvinit's `openrc default`
/// from inittab has run (the runlevel is `default` and no `openrc` is left running), then
/// returns `rc-status --all` and the services OpenRC calls crashed or failed.
fn wait_default_runlevel(h: &Host, zone: &str) -> (String, String) {
    let script = format!(
        "end=$(($(date +%s) + {BOOT_LIMIT})); \
         while [ \"$(rc-status --runlevel 2>/dev/null)\" != default ] || pgrep -x openrc >/dev/null; do \
           [ $(date +%s) -lt $end ] || exit 1; sleep 0.2; done"
    );
    let (rc, out, err) = h.zlogin(zone, &[&script]);
    let (_, status, _) = h.zlogin(zone, &["rc-status", "--all", "--nocolor"]);
    assert_eq!(
        rc, 0,
        "zone {zone}: OpenRC did not reach its default runlevel: {out}{err}\n{status}"
    );
    let (_, crashed, _) = h.zlogin(zone, &["rc-status", "--crashed"]);
    let failed: String = status
        .lines()
        .filter(|l| l.contains("[  failed  ]") || l.contains("crashed"))
        .map(|l| format!("{l}\n"))
        .collect();
    (status, format!("{crashed}{failed}"))
}

/// Issue 17's OpenRC init: the Debian image with sysvinit running OpenRC
/// (`mk-debian-image.sh --init openrc`) boots as a zone to OpenRC's default runlevel with no
/// service crashed or failed, its root sets its own host name, `rc-service ssh start` has
/// sshd listening, the console shows OpenRC's boot, `reboot` inside and `zoneadm shutdown
/// -r` (SIGINT → ctrlaltdel, `init 6`) reboot the zone, and
/// `zoneadm shutdown` is sysvinit's power-off (SIGPWR → inittab's powerfail entry, `init
/// 0`, OpenRC stops the services, halt's reboot(2) ends init by SIGINT) without the halt
/// that follows a timed-out shutdown; `zoneadm halt` ends a booted one; nothing leaks.
#[test]
fn a_debian_openrc_zone_boots_to_its_default_runlevel_and_shuts_down_cleanly() {
    if !require_root() {
        return;
    }
    let h = Host::new("openrc");
    h.install_debian_with(
        "openrc",
        "orc",
        "set max-processes=400; add capped-memory; set physical=512m; end",
    );
    h.ok("zoneadm", &["-z", "orc", "boot"]);
    let (status, bad) = wait_default_runlevel(&h, "orc");
    eprintln!("{status}");
    assert_eq!(bad.trim(), "", "{status}");
    let (_, runlevel, _) = h.zlogin("orc", &["rc-status", "--runlevel"]);
    assert_eq!(runlevel.trim(), "default");
    // sysvinit is the zone's init (its runlevel 2, OpenRC's default).
    let (_, comm, _) = h.zlogin("orc", &["cat", "/proc/1/comm"]);
    assert_eq!(comm.trim(), "init");
    let (_, level, _) = h.zlogin("orc", &["runlevel"]);
    assert!(level.trim().ends_with(" 2"), "{level}");

    // The host name: set by the zone's root, seen in the zone, not on the host.
    let host_name = nix::unistd::gethostname().unwrap();
    let (rc, _, err) = h.zlogin("orc", &["hostname", "runz-test-newname"]);
    assert_eq!(rc, 0, "{err}");
    let (_, name, _) = h.zlogin("orc", &["hostname"]);
    assert_eq!(name.trim(), "runz-test-newname");
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);

    // sshd: in OpenRC's default runlevel (Debian's LSB script), so started at boot and
    // listening in the zone's network namespace; stopped and started again on request.
    let listening = || h.zlogin("orc", &["ss", "-Hltn", "sport", "=", ":22"]).1;
    let ssh_line = status
        .lines()
        .find(|l| l.trim_start().starts_with("ssh "))
        .unwrap_or_default();
    assert!(ssh_line.contains("started"), "{status}");
    assert!(listening().contains("LISTEN"), "{}", listening());
    let (rc, out, err) = h.zlogin("orc", &["rc-service", "ssh", "stop"]);
    assert_eq!(rc, 0, "{out}{err}");
    let (rc, out, _) = h.zlogin("orc", &["rc-service", "ssh", "status"]);
    assert_ne!(rc, 0, "stopped: {out}");
    assert!(!listening().contains("LISTEN"), "{}", listening());
    let (rc, out, err) = h.zlogin("orc", &["rc-service", "ssh", "start"]);
    assert_eq!(rc, 0, "{out}{err}");
    let (rc, out, _) = h.zlogin("orc", &["rc-service", "ssh", "status"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("sshd is running"), "{out}");
    assert!(listening().contains("LISTEN"), "{}", listening());

    // The console showed OpenRC's boot.
    let console = h.console_until("orc", "OpenRC");
    assert!(console.contains("OpenRC"), "{console}");

    // `reboot` inside: sysvinit goes to runlevel 6, OpenRC stops the services, and reboot(2)
    // ends the zone's init by SIGHUP; zoneadmd boots the zone again (a fresh /run).
    h.zlogin("orc", &["touch", "/run/runz-test-marker"]);
    let (rc, _, err) = h.zlogin("orc", &["reboot"]);
    assert_eq!(rc, 0, "{err}");
    let log = h.root.join("run/zones/orc/zoneadmd.log");
    let rebooted = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SIGHUP"))
    });
    assert!(
        rebooted,
        "no reboot: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let up = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        h.state("orc") == "running"
    });
    assert!(up, "state after the reboot: {}", h.state("orc"));
    let (status, bad) = wait_default_runlevel(&h, "orc");
    assert_eq!(bad.trim(), "", "{status}");
    let (rc, _, _) = h.zlogin("orc", &["test", "-e", "/run/runz-test-marker"]);
    assert_ne!(rc, 0, "the zone rebooted: /run is new");
    // Booted again from zoneadmd's loop, which blocks signals for its signalfd: the zone's
    // init starts with none blocked (else sysvinit hands SIGCHLD blocked to OpenRC).
    let (_, st, _) = h.zlogin("orc", &["cat", "/proc/1/status"]);
    let blocked = st
        .lines()
        .find(|l| l.starts_with("SigBlk:"))
        .unwrap_or_default();
    assert_eq!(blocked, "SigBlk:\t0000000000000000", "{st}");

    // `zoneadm shutdown -r`: SIGINT, inittab's ctrlaltdel entry (`init 6`): OpenRC stops
    // the services, reboot(2) ends init by SIGHUP and zoneadmd boots the zone again.
    h.zlogin("orc", &["touch", "/run/runz-test-marker"]);
    h.ok("zoneadm", &["-z", "orc", "shutdown", "-r"]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let hups = text
        .lines()
        .filter(|l| l.contains("init ended") && l.contains("SIGHUP"))
        .count();
    assert_eq!(hups, 2, "{text}");
    assert!(!text.contains("shutdown timed out"), "{text}");
    assert_eq!(h.state("orc"), "running");
    let (status, bad) = wait_default_runlevel(&h, "orc");
    assert_eq!(bad.trim(), "", "{status}");
    let (rc, _, _) = h.zlogin("orc", &["test", "-e", "/run/runz-test-marker"]);
    assert_ne!(rc, 0, "the zone rebooted: /run is new");

    h.shutdown_cleanly("orc");
    let left = leaks(&h, &Scope::default());
    assert!(left.is_empty(), "{left:?}");

    // halt: everything killed at once, the zone installed, its cgroups gone.
    h.ok("zoneadm", &["-z", "orc", "boot"]);
    wait_default_runlevel(&h, "orc");
    h.ok("zoneadm", &["-z", "orc", "halt"]);
    assert_eq!(h.state("orc"), "installed");
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );
    let left = leaks(&h, &Scope::default());
    assert!(left.is_empty(), "{left:?}");
}
