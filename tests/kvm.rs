//! The kvm brand end to end, under TCG (this host's /dev/kvm is kvm_pvm): a zone whose
//! workload is qemu boots Debian's kernel with a small initramfs built here, its serial
//! console is `zlogin -C`, its memory cap is ram + overhead, `zoneadm shutdown` presses the
//! ACPI power button, verify refuses bad VMs with nothing made, the hypervisor's namespaces
//! reach nothing of the host, and uninstall leaves nothing.
//!
//! Each test has its own alternate root (common::zonehost); the initramfs is cached, keyed by
//! kernel version and what goes in it, beside the project's other guest builds in
//! `${ZONES_CACHE:-/var/cache/zones-linux}` (not the test base dir, which must be empty after
//! a run: scripts/check-leaks.sh). Every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, ZoneHost};

common::zonehost::host_type!();

/// qemu under TCG reaches the initramfs's shell in 5-15 s; on a loaded 2-core machine more.
const BOOT_WAIT: Duration = Duration::from_secs(150);
const MARKER: &str = "KVMTEST-BOOTED";
const POWER: &str = "KVMTEST-POWERBUTTON";
const MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_net", "button", "evdev"];

const INIT: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.order); do insmod "$m" 2>/dev/null; done
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho KVMTEST-POWERBUTTON >/dev/console\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -d -c /etc/acpi >/dev/null 2>&1 &
for a in $(cat /proc/cmdline); do
    case $a in kvmtest.ip=*) ip=${a#kvmtest.ip=} ;; esac
done
if [ -n "$ip" ]; then
    ip link set lo up
    ip link set eth0 up && ip addr add "$ip" dev eth0 && echo "KVMTEST-IP $ip"
fi
if [ -b /dev/vda ]; then echo "KVMTEST-DISK $(head -c 24 /dev/vda)"; fi
echo KVMTEST-BOOTED
exec setsid cttyhack sh
"#;

impl Host {
    fn new(tag: &str) -> Host {
        Host(ZoneHost::new("kvm", tag, false))
    }

    /// Configure kvm zone `zone` booting `guest` (plus `extra` zonecfg commands).
    fn configure(&self, zone: &str, guest: &Guest, extra: &str) {
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!(
                    "create; set zonepath=/zones/{zone}; set brand=kvm; {} {} {} {}; {extra}",
                    attr("ram", "256m"),
                    attr("kernel", guest.kernel.to_str().unwrap()),
                    attr("initrd", guest.initrd.to_str().unwrap()),
                    attr("cmdline", "console=ttyS0 quiet panic=-1"),
                ),
            ],
        );
    }

    fn zonepath(&self, zone: &str) -> PathBuf {
        self.root.join("zones").join(zone)
    }

    /// The qemu process of running zone `zone` (its init).
    fn qemu_pid(&self, zone: &str) -> i32 {
        let info =
            std::fs::read_to_string(self.root.join(format!("run/zones/{zone}/zone.json"))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        v["init_pid"].as_i64().unwrap() as i32
    }
}

fn attr(name: &str, value: &str) -> String {
    format!("add attr; set name={name}; set type=string; set value=\"{value}\"; end;")
}

/// A console client (`zlogin -C`): what it printed so far, input, killed on drop.
struct Console {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Console {
    fn attach(h: &Host, zone: &str) -> Console {
        let mut child = Command::new(bin("zlogin"))
            .arg("-R")
            .arg(&h.root)
            .args(["-C", zone])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Console { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Wait (at most `limit`) until `pred` holds for the output; returns it.
    fn wait(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            let t = self.text();
            if pred(&t) {
                return Some(t);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Run `cmd` at the guest's shell and return the output line that `find` picks.
    fn run(&mut self, cmd: &str, find: impl Fn(&str) -> Option<String>) -> String {
        let before = self.text().len();
        self.send(cmd);
        let got = self.wait(Duration::from_secs(30), |t| {
            t[before..].lines().any(|l| find(l.trim()).is_some())
        });
        let t = got.unwrap_or_else(|| panic!("{cmd}: no answer; console:\n{}", self.text()));
        t[before..].lines().find_map(|l| find(l.trim())).unwrap()
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The guest: Debian's kernel and an initramfs made here.
struct Guest {
    kernel: PathBuf,
    initrd: PathBuf,
}

/// The newest /boot/vmlinuz-KVER with /lib/modules/KVER, and busybox; None: the test is
/// skipped (scripts/install-deps.sh installs linux-image-amd64 and busybox-static).
fn guest() -> Option<Guest> {
    static GUEST: std::sync::OnceLock<Option<(PathBuf, PathBuf)>> = std::sync::OnceLock::new();
    let g = GUEST.get_or_init(|| {
        if which("qemu-system-x86_64").is_none() {
            eprintln!("skipping: no qemu-system-x86_64");
            return None;
        }
        let mut kernels: Vec<String> = std::fs::read_dir("/boot")
            .ok()?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("vmlinuz-")
                    .map(String::from)
            })
            .filter(|k| Path::new(&format!("/lib/modules/{k}/modules.dep")).exists())
            .collect();
        kernels.sort();
        let Some(kver) = kernels.pop() else {
            eprintln!("skipping: no /boot/vmlinuz-* with its modules");
            return None;
        };
        let busybox = which("busybox")?;
        let dir = std::env::var_os("ZONES_CACHE")
            .map_or_else(|| PathBuf::from("/var/cache/zones-linux"), PathBuf::from);
        let key = fnv1a(format!("{INIT}{MODULES:?}").as_bytes());
        let initrd = dir.join(format!("kvm-initramfs-{kver}-{key:016x}.cpio.gz"));
        if !initrd.exists() {
            std::fs::create_dir_all(&dir).unwrap();
            let tmp = dir.join(format!(".kvm-initramfs.{}", std::process::id()));
            std::fs::write(&tmp, initramfs(&kver, &busybox)).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::rename(&tmp, &initrd).unwrap();
        }
        Some((PathBuf::from(format!("/boot/vmlinuz-{kver}")), initrd))
    });
    g.clone().map(|(kernel, initrd)| Guest { kernel, initrd })
}

/// FNV-1a, 64 bits: the cache key of what goes into the initramfs.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// A gzip'd newc cpio: busybox and its applets, the modules (dependencies first, from
/// modules.dep), /modules.order and [`INIT`].
fn initramfs(kver: &str, busybox: &Path) -> Vec<u8> {
    let base = format!("/lib/modules/{kver}");
    let dep = std::fs::read_to_string(format!("{base}/modules.dep")).unwrap();
    let deps: Vec<(String, Vec<String>)> = dep
        .lines()
        .filter_map(|l| {
            let (m, d) = l.split_once(':')?;
            Some((
                m.to_string(),
                d.split_whitespace().map(String::from).collect(),
            ))
        })
        .collect();
    let by_name = |name: &str| -> String {
        let want = name.replace('-', "_");
        deps.iter()
            .map(|(m, _)| m)
            .find(|m| {
                let file = m.rsplit('/').next().unwrap();
                file.strip_suffix(".ko").map(|s| s.replace('-', "_")) == Some(want.clone())
            })
            .unwrap_or_else(|| panic!("module {name} not in {base}/modules.dep (compressed?)"))
            .clone()
    };
    fn order(m: &str, deps: &[(String, Vec<String>)], out: &mut Vec<String>) {
        if out.iter().any(|o| o == m) {
            return;
        }
        if let Some((_, d)) = deps.iter().find(|(n, _)| n == m) {
            for x in d {
                order(x, deps, out);
            }
        }
        out.push(m.to_string());
    }
    let mut mods = Vec::new();
    for m in MODULES {
        order(&by_name(m), &deps, &mut mods);
    }
    let mut c = Cpio::default();
    for d in [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "etc", "mnt",
    ] {
        c.dir(d);
    }
    c.node("dev/console", 0o020600, (5, 1));
    c.file("bin/busybox", 0o755, &std::fs::read(busybox).unwrap());
    let list = Command::new(busybox).arg("--list-full").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "bin/busybox" && !applet.is_empty() {
            c.symlink(applet, "/bin/busybox");
        }
    }
    let mut order_txt = String::new();
    let mut made = std::collections::HashSet::new();
    for m in &mods {
        let path = format!("{base}/{m}");
        let rel = path.trim_start_matches('/');
        let mut acc = String::new();
        for part in rel.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            acc = if acc.is_empty() {
                part.to_string()
            } else {
                format!("{acc}/{part}")
            };
            if made.insert(acc.clone()) {
                c.dir(&acc);
            }
        }
        c.file(rel, 0o644, &std::fs::read(&path).unwrap());
        order_txt.push_str(&format!("/{rel}\n"));
    }
    c.file("modules.order", 0o644, order_txt.as_bytes());
    c.file("init", 0o755, INIT.as_bytes());
    let raw = c.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

/// A newc (SVR4, no CRC) cpio archive.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), b"");
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, (0, 0), data);
    }

    fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, (0, 0), target.as_bytes());
    }

    fn node(&mut self, name: &str, mode: u32, rdev: (u32, u32)) {
        self.entry(name, mode, rdev, b"");
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), b"");
        self.out
    }
}

/// Install and boot `zone` (configured) and wait for the guest's shell on its console.
fn boot(h: &Host, zone: &str) -> Console {
    h.ok("zoneadm", &["-z", zone, "install"]);
    boot_installed(h, zone)
}

/// Boot installed `zone` and wait for the guest's shell on its console.
fn boot_installed(h: &Host, zone: &str) -> Console {
    let out = h.cmd("zoneadm", &["-z", zone, "boot"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "boot: {err}");
    assert!(
        err.contains(&format!("zoneadm: zone '{zone}': booting with ")),
        "the accelerator is stated at boot: {err}"
    );
    let con = Console::attach(h, zone);
    con.wait(BOOT_WAIT, |t| t.contains(MARKER))
        .unwrap_or_else(|| panic!("no {MARKER} on the console:\n{}", con.text()));
    // The shell's prompt.
    con.wait(Duration::from_secs(30), |t| {
        t.split(MARKER).nth(1).is_some_and(|r| r.contains("# "))
    });
    con
}

/// The memory cap of the cgroup that `pid` is in, v1 or v2.
fn memory_limit(pid: i32) -> u64 {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, p) = (f.next()?, f.next()?, f.next()?);
            ctl.split(',')
                .any(|c| c == "memory")
                .then(|| format!("/sys/fs/cgroup/memory{p}/memory.limit_in_bytes"))
        })
        .or_else(|| {
            cg.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(|p| format!("/sys/fs/cgroup{p}/memory.max"))
        })
        .unwrap();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

/// The CFS quota (µs per 100 ms period) of the cgroup that `pid` is in, v1 or v2.
fn cpu_quota(pid: i32) -> i64 {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let v1 = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, p) = (f.next()?, f.next()?, f.next()?);
        ctl.split(',')
            .any(|c| c == "cpu")
            .then(|| format!("/sys/fs/cgroup/cpu{p}/cpu.cfs_quota_us"))
    });
    match v1 {
        Some(path) => std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
        None => {
            let p = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            let max = std::fs::read_to_string(format!("/sys/fs/cgroup{p}/cpu.max")).unwrap();
            max.split_whitespace().next().unwrap().parse().unwrap()
        }
    }
}

#[test]
fn a_vm_boots_its_kernel_answers_on_the_console_and_powers_off() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host::new("boot");
    h.configure("vm", &g, "add capped-cpu; set ncpus=1.5; end");
    assert_eq!(
        h.ok("zonecfg", &["-z", "vm", "info", "brand"]),
        "brand: kvm\n"
    );
    let mut con = boot(&h, "vm");
    // (a) A command typed at the prompt runs in the guest.
    let v = con.run("echo $((6*7))", |l| (l == "42").then(|| l.to_string()));
    assert_eq!(v, "42");
    // `zoneadm get` says which accelerator the VM has.
    let get: serde_json::Value =
        serde_json::from_str(&h.ok("zoneadm", &["-z", "vm", "get"])).unwrap();
    assert!(
        matches!(get["accel"].as_str(), Some("tcg" | "kvm")),
        "{}",
        get["accel"]
    );
    // (b) The zone's memory cap is ram + overhead; the guest sees its RAM.
    let pid = h.qemu_pid("vm");
    assert_eq!(memory_limit(pid), (256 << 20) + (256 << 20));
    // capped-cpu applies as for any zone: 150 ms of CPU per 100 ms.
    assert_eq!(cpu_quota(pid), 150_000);
    let kib: u64 = con
        .run("grep MemTotal /proc/meminfo", |l| {
            l.strip_prefix("MemTotal:")
                .map(|r| r.trim().trim_end_matches("kB").trim().to_string())
        })
        .parse()
        .unwrap();
    assert!(
        (150 << 10..=256 << 10).contains(&kib),
        "MemTotal {kib} kB for 256 MiB of RAM"
    );
    // qemu runs unprivileged: the zone's uid 100, no capabilities, no_new_privs.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapPrm:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    let uid: u32 = field("Uid:").parse().unwrap();
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let base: u32 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(uid - base, 100, "host uid {uid}, uid_map {map}");
    // The zone holds no shell: zlogin says to use the console.
    let e = h.fails("zlogin", &["vm", "true"]);
    assert!(e.contains("zlogin -C vm"), "{e}");
    // reboot resets the VM (QMP system_reset): the guest boots again in the same qemu.
    let boots = con.text().matches(MARKER).count();
    h.ok("zoneadm", &["-z", "vm", "reboot"]);
    assert_eq!(h.state("vm"), "running");
    con.wait(BOOT_WAIT, |t| t.matches(MARKER).count() > boots)
        .unwrap_or_else(|| panic!("no second boot:\n{}", con.text()));
    assert_eq!(h.qemu_pid("vm"), pid);
    // (c) shutdown presses the power button: the guest's own poweroff runs, qemu exits 0.
    h.ok("zoneadm", &["-z", "vm", "shutdown", "-t", "60"]);
    assert_eq!(h.state("vm"), "installed");
    assert!(
        con.wait(Duration::from_secs(5), |t| t.contains(POWER))
            .is_some(),
        "the guest's power-button handler did not run:\n{}",
        con.text()
    );
    let log = std::fs::read_to_string(h.root.join("run/zones/vm/zoneadmd.log")).unwrap();
    assert!(
        log.contains(&format!("init ended: Exited(Pid({pid}), 0)")),
        "{log}"
    );
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn verify_refuses_a_missing_kernel_and_ram_above_the_cap_making_nothing() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host::new("verify");
    let missing = Guest {
        kernel: h.root.join("no-such-kernel"),
        initrd: g.initrd.clone(),
    };
    h.configure("nok", &missing, "");
    let e = h.fails("zoneadm", &["-z", "nok", "verify"]);
    assert!(e.contains("zone 'nok': attr kernel"), "{e}");
    assert!(e.contains("no-such-kernel"), "{e}");
    let e = h.fails("zoneadm", &["-z", "nok", "install"]);
    assert!(e.contains("no-such-kernel"), "{e}");
    assert!(!h.zonepath("nok").exists());
    assert_eq!(h.state("nok"), "configured");

    h.configure("big", &g, "add capped-memory; set physical=300m; end");
    let e = h.fails("zoneadm", &["-z", "big", "verify"]);
    assert!(e.contains("capped-memory physical"), "{e}");
    assert!(e.contains("512m"), "{e}");
    let e = h.fails("zoneadm", &["-z", "big", "install"]);
    assert!(e.contains("capped-memory physical"), "{e}");
    assert!(!h.zonepath("big").exists());

    // A missing initrd, a bad accelerator: refused the same way.
    let no_initrd = Guest {
        kernel: g.kernel.clone(),
        initrd: h.root.join("no-such-initrd"),
    };
    h.configure("noi", &no_initrd, &attr("accel", "hvf"));
    let e = h.fails("zoneadm", &["-z", "noi", "verify"]);
    assert!(e.contains("attr accel \"hvf\""), "{e}");
    // A kernel qemu cannot load: the boot fails with qemu's own words, the zone installed.
    let junk = h.root.join("not-a-kernel");
    std::fs::write(&junk, "not a kernel\n").unwrap();
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bad = Guest {
        kernel: junk,
        initrd: g.initrd.clone(),
    };
    h.configure("junk", &bad, "");
    h.ok("zoneadm", &["-z", "junk", "install"]);
    let e = h.fails("zoneadm", &["-z", "junk", "boot"]);
    assert!(
        e.contains("zone 'junk': qemu exited with status 1 during boot"),
        "{e}"
    );
    assert!(e.contains("console:"), "{e}");
    assert_eq!(h.state("junk"), "installed");
    assert!(common::mounts_under(&h.root).is_empty());
    h.ok("zoneadm", &["-z", "junk", "uninstall", "-F"]);
    // qemu's uid 100 must be the zone's own, not the host's.
    h.configure("nou", &g, "set userns=false;");
    let e = h.fails("zoneadm", &["-z", "nou", "verify"]);
    assert!(e.contains("remove userns=false"), "{e}");
    // A kvm zone installs without an image or root filesystem.
    let e = h.fails("zoneadm", &["-z", "noi", "install", "-d", "/"]);
    assert!(e.contains("brand kvm installs without"), "{e}");
    assert!(!h.zonepath("noi").exists());
}

#[test]
fn the_hypervisor_reaches_no_host_file_other_zone_or_device() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host::new("escape");
    h.configure("vm", &g, "");
    let _con = boot(&h, "vm");
    let pid = h.qemu_pid("vm");
    // A static busybox where the zone sees it (its root's /tmp), run as the qemu user in
    // qemu's user, mount, pid, ipc, uts and net namespaces.
    let probe = h.zonepath("vm").join("root/tmp/probe");
    std::fs::copy(which("busybox").unwrap(), &probe).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = r#"
        echo "root: $(ls / | tr '\n' ' ')"
        echo "usr: $(ls /usr | tr '\n' ' ')"
        echo "dev: $(ls /dev | tr '\n' ' ')"
        for p in /etc/shadow /boot /home /root /var /zones /var/tmp/runz-tests /proc/1/root/etc/shadow; do
            [ -e "$p" ] && echo "reached $p"
        done
        touch /usr/x 2>/dev/null && echo "wrote /usr"
        touch /vm/kernel 2>/dev/null && echo "wrote the kernel"
        touch /vm/x 2>/dev/null && echo "wrote /vm"
        ln -s / /vm/images2 2>/dev/null && echo "wrote a link in /vm"
        touch /etc/passwd 2>/dev/null && echo "wrote /etc"
        mknod /tmp/sda b 8 0 2>/dev/null && echo "made a device"
        mount -t tmpfs t /tmp 2>/dev/null && echo "mounted"
        echo "procs: $(ls /proc | grep -c '^[0-9]')"
        echo "id: $(id -u):$(id -g)"
        echo done
    "#;
    let out = in_namespaces(
        pid,
        &h.root.join("probe"),
        "/tmp/probe",
        &["sh", "-c", script],
    );
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("reached"), "{out}");
    assert!(!out.contains("wrote"), "{out}");
    assert!(!out.contains("made a device"), "{out}");
    assert!(!out.contains("mounted"), "{out}");
    assert!(out.contains("id: 100:100"), "{out}");
    let line = |k: &str| -> Vec<String> {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        line("root: "),
        ["bin", "dev", "etc", "lib", "lib64", "proc", "run", "sys", "tmp", "usr", "vm"]
    );
    assert_eq!(line("usr: "), ["bin", "lib", "lib64", "share"]);
    let allowed = [
        "console",
        "fd",
        "full",
        "kvm",
        "mqueue",
        "net",
        "null",
        "ptmx",
        "pts",
        "random",
        "shm",
        "stderr",
        "stdin",
        "stdout",
        "tty",
        "urandom",
        "zero",
        "vhost-net",
    ];
    for d in line("dev: ") {
        assert!(allowed.contains(&d.as_str()), "/dev/{d} in the zone: {out}");
    }
    // The device cgroup (v1; on v2 a BPF program the runtime's own tests cover) lets only
    // character devices be opened: the defaults, /dev/kvm, /dev/net/tun and /dev/vhost-net.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    if let Some(path) = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, p) = (f.next()?, f.next()?, f.next()?);
        (ctl == "devices").then(|| format!("/sys/fs/cgroup/devices{p}/devices.list"))
    }) {
        let list = std::fs::read_to_string(&path).unwrap();
        assert!(!list.contains("a *:*"), "{list}");
        // Read or write access (mknod alone, as runc allows, opens nothing; and qemu has
        // no CAP_MKNOD).
        for l in list
            .lines()
            .filter(|l| l.split_whitespace().nth(2) != Some("m"))
        {
            assert!(l.starts_with("c "), "{l} in {list}");
            let dev = l.split_whitespace().nth(1).unwrap_or_default();
            let major = dev.split(':').next().unwrap_or_default();
            // mem (1), tty/pty (4, 5, 136), misc (10: kvm, tun, vhost-net).
            assert!(
                ["1", "4", "5", "136", "10"].contains(&major),
                "{l} in {list}"
            );
            if major == "10" {
                assert!(
                    ["10:232", "10:200", "10:238"].contains(&dev),
                    "{l} in {list}"
                );
            }
        }
    }
    // Only the zone's own processes: qemu and the probe's few (the host has hundreds).
    let procs: usize = line("procs: ")[0].parse().unwrap();
    assert!(procs <= 5, "{out}");
}

/// Run `prog args` (a path inside the zone) as uid/gid 100 in the namespaces of `pid`.
fn in_namespaces(pid: i32, stem: &Path, prog: &str, args: &[&str]) -> String {
    use std::os::unix::process::CommandExt;
    let ns: Vec<std::fs::File> = ["user", "ipc", "uts", "net", "pid", "mnt"]
        .iter()
        .map(|n| std::fs::File::open(format!("/proc/{pid}/ns/{n}")).unwrap())
        .collect();
    let mut cmd = Command::new(prog);
    cmd.arg0(args[0]).args(&args[1..]);
    // SAFETY: between fork and exec the closure only makes system calls (setns, chdir,
    // setgroups, setgid, setuid, prctl) on descriptors opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            use std::os::fd::AsFd;
            for f in &ns {
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::empty())
                    .map_err(std::io::Error::from)?;
            }
            nix::unistd::chdir("/").map_err(std::io::Error::from)?;
            nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(100)).map_err(std::io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(100)).map_err(std::io::Error::from)?;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = common::run_with_timeout(&mut cmd, stem, Duration::from_secs(30)).unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn halt_then_uninstall_leaves_nothing() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host::new("gone");
    h.configure("vm", &g, "");
    // A zoneadmd killed under a running VM: halt cleans up its qemu and the VM's mounts.
    let con = boot(&h, "vm");
    let pid = h.qemu_pid("vm");
    drop(con);
    let zoneadmd: i32 = std::fs::read_to_string(h.root.join("run/zones/vm/zoneadmd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(zoneadmd),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(common::wait_until(|| !Path::new(&format!(
        "/proc/{zoneadmd}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{zoneadmd}/stat"))
            .is_ok_and(|s| s.contains(") Z"))));
    h.ok("zoneadm", &["-z", "vm", "halt"]);
    assert_eq!(h.state("vm"), "installed");
    assert!(common::wait_until(
        || !Path::new(&format!("/proc/{pid}")).exists()
    ));
    assert!(
        common::mounts_under(&h.root).is_empty(),
        "{:?}",
        common::mounts_under(&h.root)
    );
    // It boots again; halt: QMP quit, then a kill after a bound.
    let con = boot_installed(&h, "vm");
    let pid = h.qemu_pid("vm");
    drop(con);
    assert!(!h.cgroup_parents().is_empty());
    h.ok("zoneadm", &["-z", "vm", "halt"]);
    assert_eq!(h.state("vm"), "installed");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(
        common::mounts_under(&h.root).is_empty(),
        "{:?}",
        common::mounts_under(&h.root)
    );
    // A VM is installed from its images, not cloned; the refusal makes nothing.
    h.configure("vm2", &g, "");
    let e = h.fails("zoneadm", &["-z", "vm2", "clone", "vm"]);
    assert!(e.contains("clone of a kvm zone is not supported"), "{e}");
    assert!(!h.zonepath("vm2").exists());
    h.ok("zoneadm", &["-z", "vm", "uninstall", "-F"]);
    assert_eq!(h.state("vm"), "configured");
    assert!(!h.zonepath("vm").exists());
    assert!(common::mounts_under(&h.root).is_empty());
    assert!(
        h.zone_cgroups_left().is_empty(),
        "{:?}",
        h.zone_cgroups_left()
    );
    assert!(!h.root.join("run/zones/vm/vm-qmp").exists());
    // No qemu of this host is left.
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name();
        let Some(p) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !(cmdline.contains("qemu-system-x86_64")
                && cmdline.contains("/vm/qmp/qmp.sock")
                && std::fs::read_link(format!("/proc/{p}/root"))
                    .is_ok_and(|r| r.starts_with(&h.root))),
            "qemu {p} left: {cmdline}"
        );
    }
}

/// Bytes allocated on disk (what `du` counts).
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn two_vms_cloned_from_one_image_see_it_and_share_its_blocks() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    if which("qemu-img").is_none() {
        eprintln!("skipping: no qemu-img");
        return;
    }
    let h = Host::new("disks");
    // A raw image of 64 MiB: a marker in its first sector, 32 MiB of data after it.
    const MIB: usize = 1 << 20;
    let img = h.root.join("disk.img");
    let mut data = vec![0u8; 64 * MIB];
    data[..22].copy_from_slice(b"KVMTEST-DISK-IMAGE-OK\n");
    for (i, b) in data[MIB..33 * MIB].iter_mut().enumerate() {
        *b = (i % 251) as u8 | 1;
    }
    std::fs::write(&img, &data).unwrap();
    h.ok(
        "imgadm",
        &[
            "import",
            "--disk",
            "raw",
            "--name",
            "kvmt",
            img.to_str().unwrap(),
        ],
    );
    let got: serde_json::Value = serde_json::from_str(&h.ok("imgadm", &["get", "kvmt"])).unwrap();
    let id = got["id"]
        .as_str()
        .or(got["uuid"].as_str())
        .unwrap()
        .to_string();
    let image_file = h.root.join(format!("var/lib/zones/images/{id}/disk"));
    let image_bytes = allocated(&image_file);
    assert!(image_bytes >= 32 * MIB as u64, "{image_bytes}");
    let mut consoles = Vec::new();
    for z in ["vma", "vmb"] {
        h.configure(z, &g, &attr("disk0", "image=kvmt"));
        let con = boot(&h, z);
        let line = con
            .wait(Duration::from_secs(10), |t| t.contains("KVMTEST-DISK "))
            .unwrap_or_default();
        assert!(
            line.contains("KVMTEST-DISK KVMTEST-DISK-IMAGE-OK"),
            "{z} does not see the image on /dev/vda:\n{line}"
        );
        consoles.push(con);
    }
    // Each VM writes to its own clone; the other's and the image stay as they were.
    let mut a = consoles.remove(0);
    let w = a.run(
        "echo VMA-WROTE | dd of=/dev/vda bs=512 seek=4096 conv=fsync 2>/dev/null; dd if=/dev/vda bs=512 skip=4096 count=1 2>/dev/null | head -c 9; echo",
        |l| (l == "VMA-WROTE").then(|| l.to_string()),
    );
    assert_eq!(w, "VMA-WROTE");
    let mut b = consoles.remove(0);
    let r = b.run(
        "dd if=/dev/vda bs=512 skip=4096 count=1 2>/dev/null | head -c 9 | od -c | head -1; echo READ-DONE",
        |l| (l == "READ-DONE").then(|| l.to_string()),
    );
    assert_eq!(r, "READ-DONE");
    assert!(
        !b.text()
            .lines()
            .any(|l| l.trim() == "VMA-WROTE" || l.contains("V   M   A")),
        "vmb sees vma's write:\n{}",
        b.text()
    );
    let image_now = std::fs::read(&image_file).unwrap();
    assert_eq!(
        image_now[2 * MIB..2 * MIB + 512],
        data[2 * MIB..2 * MIB + 512]
    );
    for z in ["vma", "vmb"] {
        let clone = h.zonepath(z).join("vm/disks/disk0.qcow2");
        let extra = allocated(&clone);
        assert!(
            extra * 16 < image_bytes,
            "{z}'s clone takes {extra} bytes of the image's {image_bytes}"
        );
    }
    drop((a, b));
    for z in ["vma", "vmb"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
        h.ok("zoneadm", &["-z", z, "uninstall", "-F"]);
        assert!(!h.zonepath(z).exists());
    }
    assert!(common::mounts_under(&h.root).is_empty());
}

#[test]
fn a_vm_and_a_native_zone_ping_each_other_over_an_etherstub() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host(ZoneHost::new("kvm", "ping", true));
    let stub = h.link_name("rzk", "s");
    let _links = common::zonehost::Links(vec![stub.clone()]);
    h.ok("dladm", &["create-etherstub", &stub]);
    // The native zone.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "nat",
            &format!(
                "create; set zonepath=/zones/nat; set max-processes=100; \
                 add anet; set linkname=net0; set lower-link={stub}; \
                 set allowed-address=10.213.77.1/24; end"
            ),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "nat", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "nat", "boot"]);
    // The VM: its address from the kernel command line (the init configures eth0).
    h.ok(
        "zonecfg",
        &[
            "-z",
            "vm",
            &format!(
                "create; set zonepath=/zones/vm; set brand=kvm; {} {} {} {} \
                 add anet; set linkname=net0; set lower-link={stub}; \
                 set allowed-address=10.213.77.2/24; end",
                attr("ram", "256m"),
                attr("kernel", g.kernel.to_str().unwrap()),
                attr("initrd", g.initrd.to_str().unwrap()),
                attr(
                    "cmdline",
                    "console=ttyS0 quiet panic=-1 kvmtest.ip=10.213.77.2/24"
                ),
            ),
        ],
    );
    let mut con = boot(&h, "vm");
    assert!(
        con.text().contains("KVMTEST-IP 10.213.77.2/24"),
        "{}",
        con.text()
    );
    // The VM pings the native zone, and the native zone the VM.
    let r = con.run(
        "ping -c 2 -w 30 10.213.77.1 >/dev/null 2>&1; echo PING-$?",
        |l| l.strip_prefix("PING-").map(String::from),
    );
    assert_eq!(
        r,
        "0",
        "the VM cannot reach the native zone:\n{}",
        con.text()
    );
    h.ok("zlogin", &["nat", "ping -c 2 -w 30 10.213.77.2"]);
    drop(con);
    for z in ["vm", "nat"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
    }
}

/// `vmadm create` of a SmartOS bhyve payload makes a kvm zone with the payload's hardware,
/// boots it, `vmadm get` shows it back, and stop/delete leave nothing; a payload that
/// describes no bootable VM is refused with its path and makes nothing.
#[test]
fn vmadm_creates_boots_and_deletes_a_bhyve_payload() {
    if !require_root() {
        return;
    }
    let Some(g) = guest() else { return };
    let h = Host::new("vmadm");
    let bad = serde_json::json!({"brand": "kvm", "ram": 256, "disks": [{"size": 64}]});
    let out = h.cmd_in("vmadm", &["create"], Some(&bad.to_string()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("$.disks[0].image_uuid"), "{err}");
    assert_eq!(h.ok("vmadm", &["list", "-H", "-o", "uuid"]), "");
    let uuid = "5a1c0de0-0000-4000-8000-00000000c0de";
    let payload = serde_json::json!({
        "uuid": uuid, "brand": "bhyve", "alias": "vm1", "vcpus": 2, "ram": 256,
        "kernel": g.kernel, "initrd": g.initrd, "cmdline": "console=ttyS0 quiet panic=-1",
    });
    let out = h.cmd_in("vmadm", &["create"], Some(&payload.to_string()));
    assert!(
        out.status.success(),
        "vmadm create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get: serde_json::Value = serde_json::from_str(&h.ok("vmadm", &["get", uuid])).unwrap();
    assert_eq!(get["type"], "KVM", "{get}");
    assert_eq!(get["brand"], "bhyve");
    assert_eq!(get["state"], "running");
    assert_eq!(get["vcpus"], 2);
    assert_eq!(get["ram"], 256);
    assert_eq!(get["max_physical_memory"], 512, "ram + qemu's overhead");
    assert_eq!(get["kernel"], g.kernel.to_str().unwrap());
    let mut con = Console::attach(&h, uuid);
    con.wait(BOOT_WAIT, |t| t.contains(MARKER))
        .unwrap_or_else(|| panic!("no {MARKER} on the console:\n{}", con.text()));
    let n = con.run("grep -c ^processor /proc/cpuinfo", |l| {
        l.parse::<u32>().ok().map(|n| n.to_string())
    });
    assert_eq!(n, "2", "the payload's vcpus");
    assert_eq!(memory_limit(h.qemu_pid(uuid)), 512 << 20);
    h.ok("vmadm", &["stop", uuid, "-F"]);
    assert_eq!(h.state(uuid), "installed");
    h.ok("vmadm", &["delete", uuid]);
    assert_eq!(h.ok("vmadm", &["list", "-H", "-o", "uuid"]), "");
    assert!(!h.zonepath(uuid).exists());
}
