//! Escape attempts against the zone tools' host side: zlogin's reads of the zone's files,
//! zoneadm's verbs and bad input.
//!
//! Each attack runs the real binary under a time bound ([`bounded`]): a tool that blocks on a
//! FIFO or reads /dev/zero for ever is killed and the attempt counts as not blocked.

use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::battery::Battery;
use super::common::zonehost::{bin, ZoneHost};

/// How a bounded run ended: `code` None when it was killed at the deadline.
struct Ran {
    code: Option<i32>,
    out: String,
    /// The peak resident memory of the tool, in KiB.
    max_rss_kib: i64,
    took: Duration,
}

impl Ran {
    fn failed_with(&self, text: &str) -> bool {
        self.code.is_some_and(|c| c != 0) && self.out.contains(text)
    }
}

/// Runs `prog -R ROOT args` with stdout and stderr in a file; killed after `limit`.
// The child is reaped by wait4 (for its rusage), not by std's wait.
#[allow(clippy::zombie_processes)]
fn bounded(h: &ZoneHost, prog: &str, args: &[&str], limit: Duration) -> Ran {
    let log = h.root.join(format!("bounded-{prog}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin(prog))
        .arg("-R")
        .arg(&h.root)
        .args(args)
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let (code, rss) = wait_bounded(pid, limit);
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Ran {
        code,
        out: out.trim().to_string(),
        max_rss_kib: rss,
        took: start.elapsed(),
    }
}

/// Waits for `pid` (our child) at most `limit`, then kills it: (exit code, peak RSS in KiB).
fn wait_bounded(pid: libc::pid_t, limit: Duration) -> (Option<i32>, i64) {
    let deadline = Instant::now() + limit;
    loop {
        let (done, status, rss) = wait4(pid, libc::WNOHANG);
        if done {
            return (
                libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
                rss,
            );
        }
        if Instant::now() >= deadline {
            // SAFETY: kill(2) of our own unreaped child; the pid cannot be reused before wait4.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let (_, _, rss) = wait4(pid, 0);
            return (None, rss);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// wait4(2): (reaped, status, peak RSS in KiB).
fn wait4(pid: libc::pid_t, flags: i32) -> (bool, i32, i64) {
    let mut status = 0;
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with pointers to locals that outlive the call.
    let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
    (r == pid, status, ru.ru_maxrss)
}

const LIMIT: Duration = Duration::from_secs(20);

/// Replaces whatever is at `path` (a file, link, FIFO or node) by nothing.
fn clear(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// `../` enough times to climb from anywhere to `/`, then `target` (absolute).
fn climb(target: &Path) -> PathBuf {
    PathBuf::from("../".repeat(40)).join(target.strip_prefix("/").unwrap())
}

/// A zone installed from the busybox image and booted, for zlogin's attacks.
fn booted(h: &ZoneHost, zone: &str) -> PathBuf {
    h.ok(
        "zonecfg",
        &[
            "-z",
            zone,
            &format!("create; set zonepath=/zones/{zone}; set max-lwps=100"),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", zone, "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", zone, "boot"]);
    h.root.join(format!("zones/{zone}/root"))
}

/// zlogin in zone `zl` of `h`, bounded.
fn login(h: &ZoneHost, cmd: &str) -> Ran {
    bounded(h, "zlogin", &["zl", cmd], LIMIT)
}

/// Only the shell's own expansion: a command that reads /etc/passwd inside the zone would read
/// the zone's own /dev/zero for ever, which harms nothing but the zone.
const SHOW: &str = "echo \"$HOME:$SHELL\"";

/// zlogin's peak memory must stay small whatever /etc/passwd is.
const RSS_LIMIT_KIB: i64 = 64 * 1024;

/// /etc/passwd a symlink to a host file (absolute or climbing): it resolves inside the zone
/// and none of the host file's fields reach the session or the error.
fn passwd_symlinks(h: &ZoneHost, passwd: &Path, secret: &Path, b: &mut Battery) {
    for (how, target) in [
        ("absolute", secret.to_path_buf()),
        ("climbing", climb(secret)),
    ] {
        clear(passwd);
        symlink(&target, passwd).unwrap();
        let r = login(h, SHOW);
        b.check(
            &format!("zlogin: /etc/passwd a symlink ({how}) to a host file"),
            r.code.is_some() && !r.out.to_lowercase().contains("leaked"),
            format!("exit {:?}: {}", r.code, r.out),
        );
    }
}

/// /etc/passwd that never ends or never answers (/dev/zero, a device node, a FIFO, 3 MiB):
/// refused at once, in bounded memory.
fn passwd_endless(h: &ZoneHost, passwd: &Path, b: &mut Battery) {
    clear(passwd);
    symlink("/dev/zero", passwd).unwrap();
    let r = login(h, SHOW);
    b.check(
        "zlogin: /etc/passwd a symlink to /dev/zero",
        r.code.is_some() && r.max_rss_kib < RSS_LIMIT_KIB,
        format!(
            "exit {:?} in {:?}, {} KiB: {}",
            r.code, r.took, r.max_rss_kib, r.out
        ),
    );
    clear(passwd);
    nix::sys::stat::mknod(
        passwd,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
        nix::sys::stat::makedev(1, 5),
    )
    .unwrap();
    let r = login(h, SHOW);
    b.check(
        "zlogin: /etc/passwd the /dev/zero device node",
        r.failed_with("zone 'zl': /etc/passwd: not a regular file")
            && r.max_rss_kib < RSS_LIMIT_KIB,
        format!(
            "exit {:?} in {:?}, {} KiB: {}",
            r.code, r.took, r.max_rss_kib, r.out
        ),
    );
    clear(passwd);
    mkfifo(passwd);
    let r = login(h, SHOW);
    b.check(
        "zlogin: /etc/passwd a FIFO",
        r.failed_with("zone 'zl': /etc/passwd: not a regular file"),
        format!("exit {:?} in {:?}: {}", r.code, r.took, r.out),
    );
    clear(passwd);
    std::fs::write(passwd, vec![b'#'; 3 << 20]).unwrap();
    let r = login(h, SHOW);
    b.check(
        "zlogin: a 3 MiB /etc/passwd",
        r.failed_with("/etc/passwd: larger than 1048576 bytes") && r.max_rss_kib < RSS_LIMIT_KIB,
        format!("exit {:?}, {} KiB: {}", r.code, r.max_rss_kib, r.out),
    );
}

/// Root's home a symlink chain (/home/a → /home/b → TARGET) to a leaked fd or to a host
/// directory: the session never starts there; a real home still is where it starts.
fn home_chains(h: &ZoneHost, root: &Path, hostdir: &Path, b: &mut Battery) {
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/home/a:/bin/sh\n").unwrap();
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    symlink("/home/b", home.join("a")).unwrap();
    let mut targets: Vec<(String, PathBuf)> = [3, 6, 12, 13, 14]
        .iter()
        .map(|n| {
            (
                format!("/proc/self/fd/{n}"),
                format!("/proc/self/fd/{n}").into(),
            )
        })
        .collect();
    targets.push(("a host directory".into(), hostdir.to_path_buf()));
    targets.push(("a climb to a host directory".into(), climb(hostdir)));
    for (what, target) in targets {
        clear(&home.join("b"));
        symlink(&target, home.join("b")).unwrap();
        let r = login(h, "pwd -P; ls -a");
        let first = r.out.lines().next().unwrap_or_default().to_string();
        b.check(
            &format!("zlogin: root's home a symlink chain to {what}"),
            r.code == Some(0) && first == "/" && !r.out.contains("host-marker-file"),
            format!("exit {:?}: {}", r.code, r.out.replace('\n', " ")),
        );
    }
    clear(&home.join("b"));
    std::fs::create_dir_all(home.join("real")).unwrap();
    symlink("/home/real", home.join("b")).unwrap();
    let r = login(h, "pwd -P");
    assert_eq!(r.out, "/home/real", "{:?}", r.code);
}

/// Part of the zone battery (tests/escape.rs `a_default_zone_cannot_escape`).
pub fn zlogin_reads_the_zones_files_only_inside_the_zone(b: &mut Battery) {
    let h = ZoneHost::new("escape", "zlogin-files", true);
    let secret = h.root.join("host-secret");
    std::fs::write(
        &secret,
        "root:x:0:0:LEAKED-GECOS:/leaked-home:/bin/leaked-shell\n",
    )
    .unwrap();
    let hostdir = h.root.join("host-dir");
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::write(hostdir.join("host-marker-file"), "host\n").unwrap();
    let root = booted(&h, "zl");
    let passwd = root.join("etc/passwd");
    passwd_symlinks(&h, &passwd, &secret, b);
    passwd_endless(&h, &passwd, b);
    clear(&passwd);
    home_chains(&h, &root, &hostdir, b);
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root:x:0:0:LEAKED-GECOS:/leaked-home:/bin/leaked-shell\n"
    );
    assert_eq!(
        std::fs::read_dir(&hostdir).unwrap().count(),
        1,
        "the host directory is unchanged"
    );
}

/// A one-entry tar whose name (or link target) is written raw: the tar crate's builder refuses
/// `..` and over-long names.
fn raw_tar(kind: tar::EntryType, name: &str, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    // A real first entry, so the install has begun making the root when the bad one comes.
    let mut ok = tar::Header::new_gnu();
    ok.set_entry_type(tar::EntryType::Directory);
    ok.set_path("etc/").unwrap();
    ok.set_mode(0o755);
    ok.set_size(0);
    ok.set_cksum();
    b.append(&ok, &[][..]).unwrap();
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(kind);
    hd.set_size(data.len() as u64);
    hd.set_mode(0o644);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(0);
    if name.len() <= 100 {
        hd.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    } else {
        // A GNU long-name entry carries names beyond 100 bytes.
        let mut ln = tar::Header::new_gnu();
        ln.set_entry_type(tar::EntryType::GNULongName);
        ln.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        ln.set_size(name.len() as u64 + 1);
        ln.set_cksum();
        let mut body = name.as_bytes().to_vec();
        body.push(0);
        b.append(&ln, &body[..]).unwrap();
        hd.as_old_mut().name[..5].copy_from_slice(b"xlong");
    }
    if let Some(l) = link {
        hd.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    hd.set_cksum();
    b.append(&hd, data).unwrap();
    b.into_inner().unwrap()
}

/// Where a gzip stream is cut, like an interrupted download.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    /// Whole: every block, the CRC and the size.
    No,
    /// Half-way through the deflate blocks.
    Middle,
    /// After the last deflate block: only the CRC and size are missing.
    Trailer,
}

/// A gzip stream of `data` in stored (uncompressed) deflate blocks, cut at `cut`.
fn gzip_stored(data: &[u8], cut: Cut) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let chunks: Vec<&[u8]> = data.chunks(4096).collect();
    for (i, c) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        out.push(u8::from(last && cut != Cut::Middle));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
        if cut == Cut::Middle && i * 2 >= chunks.len() {
            return out;
        }
    }
    if cut == Cut::No {
        out.extend_from_slice(&crc32(data).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    }
    out
}

/// CRC-32 (IEEE), bit by bit: the gzip trailer's checksum.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The busybox image as a tar (its files only), for a truncated copy.
fn image_tar(image: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", image).unwrap();
    b.into_inner().unwrap()
}

/// `suid id -u` run as nobody: its output, or None when it could not run at all.
fn as_nobody(suid: &Path) -> Option<String> {
    use std::os::unix::process::CommandExt;
    let out = Command::new(suid)
        .args(["id", "-u"])
        .uid(65534)
        .gid(65534)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A failed install: the error says the zone is configured, and it is, with no zonepath.
fn install_refused(h: &ZoneHost, b: &mut Battery, what: &str, source: &Path, expect: &str) {
    let zp = h.root.join("zones/bi");
    let r = bounded(
        h,
        "zoneadm",
        &["-z", "bi", "install", "-d", source.to_str().unwrap()],
        LIMIT,
    );
    let state = h.state("bi");
    b.check(
        &format!("zoneadm install -d {what}"),
        r.failed_with(expect) && state == "configured" && !zp.exists(),
        format!(
            "exit {:?}, state {state}, zonepath left: {}: {}",
            r.code,
            zp.exists(),
            r.out
        ),
    );
}

/// FIFOs given as input files (zonecfg -f, provision -f, install -d): refused at once.
fn fifo_inputs(h: &ZoneHost, b: &mut Battery) {
    let fifo = h.root.join("input.fifo");
    mkfifo(&fifo);
    let fifo_s = fifo.to_str().unwrap();
    let r = bounded(h, "zonecfg", &["-z", "ff", "-f", fifo_s], LIMIT);
    b.check(
        "zonecfg -f FIFO",
        r.failed_with("input.fifo: not a regular file") && h.state("ff") == "absent",
        format!("exit {:?} in {:?}: {}", r.code, r.took, r.out),
    );
    let r = bounded(h, "zoneadm", &["provision", "-f", fifo_s], LIMIT);
    b.check(
        "zoneadm provision -f FIFO",
        r.failed_with("input.fifo: not a regular file"),
        format!("exit {:?} in {:?}: {}", r.code, r.took, r.out),
    );
    h.ok("zonecfg", &["-z", "bi", "create; set zonepath=/zones/bi"]);
    install_refused(h, b, "FIFO", &fifo, "not a directory or a regular file");
}

/// Hostile archives: each install fails, the zone is configured, nothing is on disk; the
/// intact archive then installs (the refusals were not the generator's fault).
fn hostile_archives(h: &ZoneHost, b: &mut Battery) {
    let shadow_before = std::fs::metadata("/etc/shadow")
        .map(|m| (m.nlink(), m.mode()))
        .ok();
    let long = "n".repeat(5000);
    let image = image_tar(&h.image);
    let archives: Vec<(&str, Vec<u8>)> = vec![
        (
            "traversal ../x",
            raw_tar(tar::EntryType::Regular, "../escaped-x", None, b"x"),
        ),
        (
            "hardlink to /etc/shadow",
            raw_tar(
                tar::EntryType::Link,
                "etc/shadow-link",
                Some("/etc/shadow"),
                b"",
            ),
        ),
        (
            "5000-character name",
            raw_tar(tar::EntryType::Regular, &long, None, b"x"),
        ),
        ("truncated .tar.gz", gzip_stored(&image, Cut::Middle)),
        (
            "truncated .tar.gz (no gzip trailer)",
            gzip_stored(&image, Cut::Trailer),
        ),
    ];
    for (what, bytes) in archives {
        let file = h.root.join("bad.tar");
        std::fs::write(&file, bytes).unwrap();
        install_refused(
            h,
            b,
            what,
            &file,
            "the zone is configured, nothing was installed",
        );
    }
    let shadow_after = std::fs::metadata("/etc/shadow")
        .map(|m| (m.nlink(), m.mode()))
        .ok();
    assert_eq!(shadow_before, shadow_after, "/etc/shadow changed");
    assert!(!h.root.join("zones/escaped-x").exists());
    // The intact archive still installs (the refusals above were not the generator's fault).
    let good = h.root.join("good.tar.gz");
    std::fs::write(&good, gzip_stored(&image, Cut::No)).unwrap();
    h.ok(
        "zoneadm",
        &["-z", "bi", "install", "-d", good.to_str().unwrap()],
    );
}

/// A zone's root keeps setuid-root files: no host user reaches them through the zonepath
/// (install and clone alike).
fn private_zonepaths(h: &ZoneHost, b: &mut Battery) {
    h.ok("zonecfg", &["-z", "bc", "create; set zonepath=/zones/bc"]);
    h.ok("zoneadm", &["-z", "bc", "clone", "bi"]);
    for zone in ["bi", "bc"] {
        let zp = h.root.join(format!("zones/{zone}"));
        let suid = zp.join("root/bin/suid");
        std::fs::copy(zp.join("root/bin/busybox"), &suid).unwrap();
        std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&suid, std::os::unix::fs::PermissionsExt::from_mode(0o4755))
            .unwrap();
        let ran = as_nobody(&suid);
        let mode = std::fs::metadata(&zp).unwrap().mode() & 0o777;
        b.check(
            &format!("a host user runs a setuid-root binary of zone {zone}'s root"),
            mode == 0o700 && ran.is_none(),
            format!("zonepath mode {mode:o}; as nobody: {ran:?}"),
        );
        std::fs::remove_file(&suid).unwrap();
    }
}

/// move out of the alternate root.
fn moves_out(h: &ZoneHost, b: &mut Battery) {
    for to in [
        "/zones/../../../escaped-move",
        "/../escaped-move",
        "zones/relative",
    ] {
        let r = bounded(h, "zoneadm", &["-z", "bi", "move", to], LIMIT);
        let outside = h.root.parent().unwrap().join("escaped-move");
        b.check(
            &format!("zoneadm move {to}"),
            r.failed_with(&format!(
                "zoneadm: zone 'bi': move {to}: the new zonepath must be an absolute path without '..', other than /"
            ))
                && !outside.exists()
                && !Path::new("/escaped-move").exists()
                && h.root.join("zones/bi/root/bin/busybox").exists()
                && h.state("bi") == "installed",
            format!("exit {:?}: {}", r.code, r.out),
        );
    }
}

/// limitpriv with a prohibited or unknown privilege, or (the zone having its user namespace)
/// one the kernel checks only in the host's: zonecfg and zoneadm verify refuse.
fn bad_limitpriv(h: &ZoneHost, b: &mut Battery) {
    for p in [
        "sys_module",
        "cap_sys_rawio",
        "proc_zone",
        "no_such_priv",
        "sys_time",
        "syslog",
    ] {
        let r = bounded(
            h,
            "zonecfg",
            &["-z", "bi", &format!("set limitpriv=default,{p}")],
            LIMIT,
        );
        b.check(
            &format!("zonecfg limitpriv=default,{p}"),
            r.failed_with(&format!("\"{p}\""))
                && !h.ok("zonecfg", &["-z", "bi", "info limitpriv"]).contains(p),
            format!("exit {:?}: {}", r.code, r.out),
        );
    }
    let cfg = h.root.join("etc/zones/bi.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    doc["limitpriv"] = "default,sys_module".into();
    std::fs::write(&cfg, serde_json::to_vec(&doc).unwrap()).unwrap();
    let r = bounded(h, "zoneadm", &["-z", "bi", "verify"], LIMIT);
    b.check(
        "zoneadm verify limitpriv=default,sys_module",
        r.failed_with("zoneadm: zone 'bi': limitpriv \"default,sys_module\": privilege \"sys_module\" is prohibited in a non-global zone"),
        format!("exit {:?}: {}", r.code, r.out),
    );
}

/// provision whose install fails: one clear error, and no zone left.
fn provision_undone(h: &ZoneHost, b: &mut Battery) {
    let bad = h.root.join("bad.tar");
    std::fs::write(
        &bad,
        raw_tar(tar::EntryType::Link, "etc/s", Some("/etc/shadow"), b""),
    )
    .unwrap();
    let manifest = h.root.join("mz.json");
    std::fs::write(
        &manifest,
        serde_json::json!({"alias": "mz", "image_path": bad}).to_string(),
    )
    .unwrap();
    let r = bounded(
        h,
        "zoneadm",
        &["provision", "-f", manifest.to_str().unwrap()],
        LIMIT,
    );
    b.check(
        "zoneadm provision of a hostile archive",
        r.failed_with("provision of zone 'mz' failed at install")
            && !r.out.contains("uninstall failed")
            && r.out.contains("(undone: configuration deleted)")
            && h.state("mz") == "absent"
            && !h.root.join("zones/mz").exists(),
        format!("exit {:?}: {}", r.code, r.out),
    );
}

/// Part of the zone battery (tests/escape.rs `a_default_zone_cannot_escape`).
pub fn zoneadm_and_zonecfg_refuse_bad_input_and_leave_nothing_half_made(b: &mut Battery) {
    let h = ZoneHost::new("escape", "zone-input", true);
    fifo_inputs(&h, b);
    hostile_archives(&h, b);
    private_zonepaths(&h, b);
    moves_out(&h, b);
    bad_limitpriv(&h, b);
    provision_undone(&h, b);
}

/// Run `cmd` in zone `zone` of `h` as its root, bounded: (exit code, stdout + stderr).
fn run_in(h: &ZoneHost, zone: &str, cmd: &str) -> (i32, String) {
    let r = bounded(h, "zlogin", &[zone, cmd], LIMIT);
    (r.code.unwrap_or(-1), r.out)
}

/// The host's file `name` of zone `zone`'s cgroup, in whichever hierarchy has it.
fn zone_cgroup_file(h: &ZoneHost, zone: &str, names: &[&str]) -> Option<PathBuf> {
    h.cgroup_parents()
        .iter()
        .flat_map(|p| names.iter().map(move |n| p.join(zone).join(n)))
        .find(|p| p.exists())
}

/// Part of the zone battery: a systemd zone (the Debian image of scripts/mk-debian-image.sh)
/// holds CAP_SYS_ADMIN in its own user namespace, and a delegated cgroup2 subtree. What that
/// invites is tried as its root: each attempt fails, or changes only the zone's own view.
pub fn a_systemd_zone_with_sys_admin_cannot_escape(b: &mut Battery) {
    let h = ZoneHost::new("escape", "systemd", false);
    let image = h.root.join("debian");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mk-debian-image.sh");
    let out = Command::new(&script)
        .arg(&image)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mk-debian-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    super::build_probe(&image.join("usr/local/bin/escape-probe"));
    h.ok(
        "zonecfg",
        &[
            "-z",
            "sd",
            "create; set zonepath=/zones/sd; set max-lwps=400; \
             add capped-memory; set physical=256m; end",
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "sd", "install", "-d", image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "sd", "boot"]);
    let run = |cmd: &str| run_in(&h, "sd", cmd);
    // systemd up (its private socket), so that its cgroups exist.
    let _ = run("for i in $(seq 150); do [ -S /run/systemd/private ] && break; sleep 0.1; done");
    let (_, status) = run("grep CapEff /proc/self/status");
    let eff = u64::from_str_radix(status.split_whitespace().last().unwrap_or("0"), 16).unwrap_or(0);
    assert!(
        eff & (1 << 21) != 0,
        "the zone's root has CAP_SYS_ADMIN: {status}"
    );

    // Kernel settings: /proc/sys unmounted or remounted read-write, or a fresh proc.
    let sysctls = ["/proc/sys/kernel/panic", "/proc/sys/vm/overcommit_ratio"];
    let before: Vec<String> = sysctls
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for (what, cmd) in [
        (
            "remount /proc/sys read-write, write host sysctls",
            "mount -o remount,bind,rw /proc/sys",
        ),
        (
            "unmount the read-only /proc/sys, write host sysctls",
            "umount -l /proc/sys",
        ),
    ] {
        let (_, out) = run(&format!(
            "{cmd}; echo 1 > /proc/sys/kernel/panic; echo 1 > /proc/sys/vm/overcommit_ratio"
        ));
        let after: Vec<String> = sysctls
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        b.check(
            what,
            after == before && out.matches("Permission denied").count() == 2,
            out,
        );
    }
    let (_, out) = run("mkdir -p /tmp/p && mount -t proc proc /tmp/p && \
         echo 1 > /tmp/p/sys/kernel/panic; umount /tmp/p");
    b.check(
        "a fresh proc mount to write kernel.panic",
        out.contains("Permission denied")
            && std::fs::read_to_string(sysctls[0]).unwrap() == before[0],
        out,
    );
    // A mount over a /proc file changes the zone's view only.
    let (code, out) = run("mount --bind /etc/hostname /proc/cpuinfo && head -1 /proc/cpuinfo");
    let host_cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    b.check(
        "mount over /proc/cpuinfo (the zone's view only)",
        code == 0
            && host_cpuinfo.starts_with("processor")
            && !host_mounts.contains("/proc/cpuinfo"),
        out,
    );
    // Read-only things stay read-only: the root's and /sys's locked mounts.
    let (_, out) = run("mount -o remount,rw /sys");
    b.check(
        "remount /sys read-write",
        out.contains("permission denied"),
        out,
    );
    let (_, out) = run("umount -l /sys; mkdir -p /tmp/s; mount -t sysfs sysfs /tmp/s");
    b.check(
        "a fresh sysfs mount (after unmounting the read-only one)",
        out.contains("permission denied"),
        out,
    );

    // cgroups: a new mount shows the zone's own subtree only; caps stay the host's.
    let (_, out) = run(
        "mkdir -p /tmp/u && mount -t cgroup2 none /tmp/u && ls /tmp/u; \
         cat /proc/self/cgroup; umount /tmp/u",
    );
    b.check(
        "a new cgroup2 mount outside the delegated subtree",
        out.contains("init.scope") && !out.contains("runz-test") && !out.contains(&h.cgroup_parent),
        out,
    );
    let cap_file = zone_cgroup_file(&h, "sd", &["memory.limit_in_bytes", "memory.max"]);
    let cap_before = cap_file.as_ref().map(std::fs::read_to_string);
    let (_, out) = run(
        "mkdir -p /tmp/m && mount -t cgroup -o memory none /tmp/m && \
         echo -1 > /tmp/m/memory.limit_in_bytes; umount /tmp/m; \
         echo max > /sys/fs/cgroup/memory.max",
    );
    let cap_after = cap_file.as_ref().map(std::fs::read_to_string);
    b.check(
        "lift the zone's memory cap through a new cgroup mount",
        cap_file.is_some()
            && cap_before.as_ref().map(|r| r.as_ref().ok())
                == cap_after.as_ref().map(|r| r.as_ref().ok())
            && (out.contains("Permission denied") || out.contains("No such file")),
        format!("{cap_file:?}: {out}"),
    );

    // Keyrings (seccomp) and a user namespace of its own, with no way back up.
    let (_, out) = run("/usr/local/bin/escape-probe keyctl");
    b.check("keyctl (join a new session keyring)", out == "EPERM 1", out);
    let (_, out) = run("/usr/local/bin/escape-probe userns_back");
    b.check(
        "unshare a user namespace and setns back",
        out.starts_with("userns ok") && out.ends_with("back EPERM 1"),
        out,
    );
    let (_, out) = run(
        "unshare -U -r --mount sh -c 'mount -t tmpfs none /etc && ls /etc | wc -l'; \
         ls /etc/hostname",
    );
    b.check(
        "mount in a nested user namespace (that namespace's view only)",
        out.ends_with("/etc/hostname"),
        out,
    );
    h.ok("zoneadm", &["-z", "sd", "halt"]);
}
