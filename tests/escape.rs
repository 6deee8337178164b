//! The escape battery: from inside a default zone (its own user namespace, the default
//! capability set, the default seccomp profile, masked and read-only kernel paths, the device
//! allowlist), as the zone's root, every known way out is tried and must fail with the exact
//! error expected. The zone only adds caps (max-lwps, capped-memory) so that exhausting the
//! host stays bounded, and one lofs resource to attack through symlinks.
//!
//! Calls busybox cannot make come from `escape-probe` (tests/escape/probe.rs), compiled here
//! with `rustc -C target-feature=+crt-static` (std only) so it runs in the busybox zone
//! without libraries. It prints `ok` or the errno name of the one call it makes.
//!
//! Each target (zone, runz-root, runz-userns, imgadm) prints one `escape: TARGET attempts N,
//! blocked N` line; any attempt that succeeded fails its test.

mod common;

#[path = "escape/battery.rs"]
mod battery;
// The attacks of the security issue, one file per area: the runtime (runz and the exec path
// shared by zlogin), the zone tools' host-side reads and half-made state, and the image store.
#[path = "escape/images.rs"]
mod images;
#[path = "escape/runtime.rs"]
mod runtime;
#[path = "escape/zone.rs"]
mod zone;

use battery::Battery;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::require_root;
use common::zonehost::ZoneHost;

/// Build the static probe into `dest`.
fn build_probe(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escape/probe.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
        ])
        .arg(&src)
        .arg("-o")
        .arg(dest)
        .output()
        .expect("run rustc (the probe is built with the toolchain that runs the tests)");
    assert!(
        out.status.success(),
        "building {} failed (static glibc: libc6-dev): {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Zone<'a> {
    h: &'a ZoneHost,
    name: &'a str,
}

impl Zone<'_> {
    /// Run `cmd` in the zone as its root: (exit code, stdout + stderr).
    fn run(&self, cmd: &str) -> (i32, String) {
        let out = self.h.cmd("zlogin", &[self.name, cmd]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text.trim().to_string())
    }

    /// The first word of the probe's answer (`ok`, `EPERM`, `read`, ...).
    fn probe(&self, args: &str) -> String {
        let (_, out) = self.run(&format!("/bin/escape-probe {args}"));
        out
    }
}

/// A host block device as (name, major, minor).
fn host_block_device() -> Option<(String, u32, u32)> {
    for e in std::fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().into_string().ok()?;
        if name.starts_with("loop") || name.starts_with("ram") {
            continue;
        }
        let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
        let (maj, min) = dev.trim().split_once(':')?;
        return Some((name, maj.parse().ok()?, min.parse().ok()?));
    }
    None
}

/// A host network interface other than lo.
fn host_interface() -> Option<String> {
    std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|n| n != "lo")
}

#[test]
fn a_default_zone_cannot_escape() {
    if !require_root() {
        return;
    }
    let h = ZoneHost::new("escape", "battery", true);
    build_probe(&h.image.join("bin/escape-probe"));
    std::fs::write(h.image.join("etc/escape-marker"), "zone side\n").unwrap();
    let shared = h.root.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink("/etc", shared.join("hostetc")).unwrap();
    std::os::unix::fs::symlink("../../../../..", shared.join("up")).unwrap();
    let secret = h.root.join("host-secret");
    std::fs::write(&secret, "host only\n").unwrap();
    h.ok(
        "zonecfg",
        &[
            "-z",
            "esc",
            &format!(
                "create; set zonepath=/zones/esc; set max-lwps=100; \
                 add capped-memory; set physical=64m; set swap=64m; end; \
                 add fs; set dir=/shared; set special={}; set type=lofs; end",
                shared.display()
            ),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "esc", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "esc", "boot"]);
    let z = Zone { h: &h, name: "esc" };
    let mut b = Battery::default();

    // The zone runs in its own user namespace, root mapped to an unprivileged range.
    let map = z.run("cat /proc/self/uid_map").1;
    let fields: Vec<u64> = map.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fields.len(), 3, "{map}");
    assert!(
        fields[0] == 0 && fields[1] >= 65536 && fields[2] == 65536,
        "zone root is not mapped to a range of its own: {map}"
    );
    let base = fields[1] as u32;

    // 1. A host block device: no node to open, none to make, no mount.
    if let Some((dev, major, minor)) = host_block_device() {
        let (code, out) = z.run(&format!("test -e /dev/{dev}"));
        b.check(
            &format!("open host block device /dev/{dev}"),
            code == 1,
            format!("/dev/{dev} absent: exit {code} {out}"),
        );
        let out = z.probe(&format!("mknod_block /tmp/blk {major} {minor}"));
        b.check("mknod of a host block device", out == "EPERM 1", out);
        let out = z.probe(&format!("mount /dev/{dev} /tmp ext4"));
        b.check("mount a host block device", out == "EPERM 1", out);
    }
    let out = z.probe("mount none /tmp tmpfs");
    b.check("mount anything (no CAP_SYS_ADMIN)", out == "EPERM 1", out);

    // 2. The magic SysRq key and the kernel's memory.
    // Read-only, and not the zone's: EACCES (or absent where the kernel has no SysRq).
    let expect = if Path::new("/proc/sysrq-trigger").exists() {
        "EACCES 13"
    } else {
        "ENOENT 2"
    };
    let out = z.probe("write /proc/sysrq-trigger h");
    b.check("write /proc/sysrq-trigger", out == expect, out);
    let expect = if Path::new("/proc/kcore").exists() {
        "read 0"
    } else {
        "ENOENT 0"
    };
    let out = z.probe("read /proc/kcore");
    b.check("read /proc/kcore (masked)", out == expect, out);
    let out = z.probe("read /proc/keys");
    b.check(
        "read /proc/keys (masked)",
        out == "read 0" || out == "ENOENT 0",
        out,
    );

    // 3. Kernel modules, kexec, BPF: the seccomp profile answers EPERM.
    for call in [
        "init_module",
        "finit_module /bin/busybox",
        "kexec_load",
        "bpf",
    ] {
        let out = z.probe(call);
        b.check(call, out == "EPERM 1", out);
    }

    // 4. unshare -U: the new namespace's root has every capability over it, and nothing more.
    let (code, out) = z.run(
        "unshare -U -r -m sh -c 'cat /proc/self/uid_map; /bin/escape-probe init_module; \
         /bin/escape-probe write /proc/sys/kernel/hostname evil; \
         touch /nested-root; /bin/escape-probe mount none /tmp tmpfs'",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let nested = z.h.root.join("zones/esc/root/nested-root");
    let owner = std::fs::metadata(&nested).map(|m| m.uid()).ok();
    b.check(
        "unshare -U regains no power over the host",
        code == 0
            && lines.first().map(|l| l.split_whitespace().collect::<Vec<_>>())
                == Some(vec!["0", "0", "1"])
            && lines.get(1) == Some(&"EPERM 1")
            && lines.get(2) == Some(&"EACCES 13")
            // A mount in its own mount namespace is allowed and harmless.
            && lines.get(3) == Some(&"ok")
            && owner == Some(base),
        format!("exit {code}, {lines:?}, a file its root made is host uid {owner:?}"),
    );

    // 5. Host processes: invisible, so neither signalled nor traced.
    let host_pid = std::process::id();
    let out = z.probe(&format!("ptrace {host_pid}"));
    b.check("ptrace a host process", out == "ESRCH 3", out);
    let (code, out) = z.run(&format!("kill -0 {host_pid}"));
    b.check(
        "signal a host process",
        code != 0 && out.contains("No such process"),
        out,
    );
    let (_, ps) = z.run("ls /proc");
    let pids: Vec<u32> = ps
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    b.check(
        "see host PIDs",
        !pids.contains(&host_pid) && pids.len() < 20 && pids.contains(&1),
        format!("the zone sees pids {pids:?}"),
    );

    // 6. Raw sockets: only on the zone's own links; the host's do not exist for it.
    if let Some(ifname) = host_interface() {
        let (_, zone_links) = z.run("ls /sys/class/net");
        let hidden = !zone_links.split_whitespace().any(|l| l == ifname);
        let out = z.probe(&format!("raw_bind {ifname}"));
        b.check(
            &format!("raw socket on the host's {ifname}"),
            hidden && out == "ENODEV 19",
            format!("zone links {zone_links:?}: {out}"),
        );
    }

    // 7. A sysctl outside the zone's namespaces.
    let before = std::fs::read_to_string("/proc/sys/vm/overcommit_ratio").unwrap();
    let out = z.probe("write /proc/sys/vm/overcommit_ratio 99");
    let after = std::fs::read_to_string("/proc/sys/vm/overcommit_ratio").unwrap();
    b.check(
        "write a host sysctl (vm.overcommit_ratio)",
        out == "EACCES 13" && before == after,
        out,
    );
    let (code, out) = z.run("sysctl -w kernel.panic=1");
    b.check(
        "sysctl -w kernel.panic",
        code != 0 && out.contains("Read-only file system"),
        out,
    );

    // 8. The host's cgroup files: the zone sees only its own cgroup, read-only.
    let (_, files) = z.run("ls /sys/fs/cgroup");
    let target = if files.split_whitespace().any(|f| f == "pids.max") {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    let out = z.probe(&format!("write {target} max"));
    b.check(
        "lift the zone's own pids.max",
        out == "EROFS 30" || out == "EACCES 13",
        format!("{target}: {out}"),
    );
    let (_, cg) = z.run("cat /proc/self/cgroup");
    b.check(
        "see the host's cgroup tree",
        !cg.contains(&h.cgroup_parent) && !cg.contains("runz-test"),
        cg,
    );

    // 9. Host files through /proc/<pid>/root and through symlinks in a bind source.
    let (code, out) = z.run(&format!("cat /proc/1/root{}", secret.display()));
    b.check(
        "/proc/1/root to a host file",
        code != 0 && out.contains("No such file or directory"),
        out,
    );
    // /etc/escape-marker exists in the zone only: reading it proves where a path led.
    assert!(!Path::new("/etc/escape-marker").exists());
    let (_, out) = z.run("cat /proc/self/root/../../../etc/escape-marker");
    b.check(
        "/proc/self/root/../.. climbs to the host",
        out == "zone side",
        out,
    );
    let (_, out) = z.run("cat /shared/hostetc/escape-marker");
    b.check(
        "a host symlink in a bind source to /etc",
        out == "zone side",
        out,
    );
    let (code, out) = z.run(&format!("ls /shared/up{}", secret.display()));
    b.check(
        "a relative symlink out of a bind source",
        code != 0 && out.contains("No such file or directory"),
        out,
    );
    let (code, out) = z.run("ln -s / /shared/escape");
    b.check(
        "plant a symlink in a host-owned bind source",
        code != 0 && out.contains("Permission denied") && !shared.join("escape").exists(),
        out,
    );

    // 10. Exhausting the host: forks stop at the zone's max-lwps, memory at its cap.
    let (_, out) = z.run(
        "i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done 2>&1 | grep -c \"can't fork\"",
    );
    let refused: u32 = out
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .unwrap_or(0);
    let pids_current = if files.split_whitespace().any(|f| f == "pids.current") {
        "/sys/fs/cgroup/pids.current"
    } else {
        "/sys/fs/cgroup/pids/pids.current"
    };
    let tasks: u32 = z
        .run(&format!("cat {pids_current}"))
        .1
        .parse()
        .unwrap_or(u32::MAX);
    let host_forks = Command::new("true").status().map(|s| s.success());
    b.check(
        "fork bomb beyond max-lwps=100",
        refused > 0 && tasks <= 100 && matches!(host_forks, Ok(true)),
        format!("{refused} forks refused, {tasks} tasks in the zone; the host still forks"),
    );
    let _ = z.run("kill -9 -1");
    let (code, out) = z.run("/bin/escape-probe alloc 512");
    let alive = z.run("echo alive").1 == "alive";
    b.check(
        "allocate 512 MiB under capped-memory 64m",
        code != 0 && !out.contains("allocated all") && alive,
        format!("exit {code}; the zone still answers: {alive}"),
    );
    assert_eq!(h.state("esc"), "running");

    // The other areas' attacks on a zone, each on zones of its own: one summary line.
    runtime::a_zone_login_cannot_escape(&mut b);
    runtime::a_zone_without_userns_cannot_rewrite_zlogin(&mut b);
    runtime::a_zone_mount_target_race(&mut b);
    zone::zlogin_reads_the_zones_files_only_inside_the_zone(&mut b);
    zone::zoneadm_and_zonecfg_refuse_bad_input_and_leave_nothing_half_made(&mut b);
    zone::a_systemd_zone_with_sys_admin_cannot_escape(&mut b);
    b.finish("zone");
}
