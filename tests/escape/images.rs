//! Escape attempts against the image store and imgadm's archive readers (target `imgadm`).
//!
//! Every attack runs through the real binaries (`imgadm -R`, `zoneadm -R`) against files the
//! test makes on the host, and checks that the host file kept its content and its times (its
//! atime is set old first, so that a read would move it under relatime), or that a host user
//! (uid 65534) is refused at the store or zonepath directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::battery::Battery;
use super::common::cowfs::LoopBtrfs;
use super::common::require_root;
use super::common::zonehost::{bin, ZoneHost};
use zones::image::build;
use zones::image::ImageConfig;

const NOBODY: u32 = 65534;

/// A host file (or directory) the attacks aim at, with the times it must keep.
struct Victim {
    path: PathBuf,
    content: Option<Vec<u8>>,
    atime: i64,
    mtime: i64,
}

impl Victim {
    fn file(path: PathBuf, content: &[u8]) -> Victim {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        Victim::aged(path, Some(content.to_vec()))
    }

    fn dir(path: PathBuf) -> Victim {
        fs::create_dir_all(&path).unwrap();
        Victim::aged(path, None)
    }

    /// Old times, atime before mtime: any read moves the atime, any write the mtime.
    fn aged(path: PathBuf, content: Option<Vec<u8>>) -> Victim {
        let v = Victim {
            path,
            content,
            atime: 1_000_000,
            mtime: 2_000_000,
        };
        v.reset();
        v
    }

    fn reset(&self) {
        let (a, m) = (
            nix::sys::time::TimeSpec::new(self.atime, 0),
            nix::sys::time::TimeSpec::new(self.mtime, 0),
        );
        nix::sys::stat::utimensat(
            None,
            &self.path,
            &a,
            &m,
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .unwrap();
    }

    /// Whether the host file is as it was: (untouched, what differs).
    fn untouched(&self) -> (bool, String) {
        let md = fs::metadata(&self.path).unwrap();
        let mut diff = Vec::new();
        if (md.atime(), md.mtime()) != (self.atime, self.mtime) {
            diff.push(format!(
                "times {} {} (were {} {})",
                md.atime(),
                md.mtime(),
                self.atime,
                self.mtime
            ));
        }
        if md.is_file() && md.nlink() != 1 {
            diff.push(format!("{} links", md.nlink()));
        }
        if let Some(c) = &self.content {
            if &fs::read(&self.path).unwrap() != c {
                diff.push("content changed".into());
            }
        } else {
            let n = fs::read_dir(&self.path).unwrap().count();
            if n != 0 {
                diff.push(format!("{n} entries appeared"));
            }
        }
        self.reset();
        (diff.is_empty(), diff.join(", "))
    }
}

/// One tar entry, its name written raw into the header (so `../x` and `/x` survive) when it
/// fits, else through the builder's GNU long-name entry.
enum T<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Char(&'a str, u32, u32, u32),
}

fn tar_of(entries: &[T]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data, link): (&str, &[u8], Option<&str>) = match e {
            T::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n, b"", None)
            }
            T::File(n, d, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (n, d, None)
            }
            T::Sym(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                (n, b"", Some(t))
            }
            T::Hard(n, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                (n, b"", Some(t))
            }
            T::Char(n, mode, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(*mode);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (n, b"", None)
            }
        };
        if let Some(t) = link {
            let field = &mut h.as_old_mut().linkname;
            field.fill(0);
            field[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_size(data.len() as u64);
        if name.len() < 100 {
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, data).unwrap();
        } else {
            b.append_data(&mut h, name, data).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A gzip-compressed tar of one file of `size` zeros, in about size/1000 bytes: one
/// independently decodable deflate chunk of 1 MiB of zeros, repeated.
fn gzip_bomb(size: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, Crc, FlushCompress};
    let mut tar_head = tar::Header::new_gnu();
    tar_head.set_path("bomb").unwrap();
    tar_head.set_size(size);
    tar_head.set_mode(0o644);
    tar_head.set_cksum();
    let deflate = |c: &mut Compress, data: &[u8], flush: FlushCompress| {
        let mut out = Vec::with_capacity(data.len() / 100 + 4096);
        let before = c.total_in();
        loop {
            let done = (c.total_in() - before) as usize;
            c.compress_vec(&data[done..], &mut out, flush).unwrap();
            if (c.total_in() - before) as usize == data.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity());
        }
    };
    let mut c = Compress::new(Compression::best(), false);
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
    out.extend(deflate(&mut c, tar_head.as_bytes(), FlushCompress::Full));
    let mib = vec![0u8; 1 << 20];
    let chunk = deflate(&mut c, &mib, FlushCompress::Full);
    let mut crc = Crc::new();
    crc.update(tar_head.as_bytes());
    let mut mib_crc = Crc::new();
    mib_crc.update(&mib);
    for _ in 0..size >> 20 {
        out.extend(&chunk);
        crc.combine(&mib_crc);
    }
    // The end-of-archive marker, then the gzip trailer.
    let end = [0u8; 1024];
    out.extend(deflate(&mut c, &end, FlushCompress::Finish));
    crc.update(&end);
    out.extend(crc.sum().to_le_bytes());
    out.extend(((size + 1536) as u32).to_le_bytes());
    out
}

/// Run `prog args` as uid/gid 65534: Err(errno) when the exec itself failed.
fn as_nobody(prog: &Path, args: &[&Path]) -> Result<Output, std::io::Error> {
    Command::new(prog)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
}

struct Images {
    h: ZoneHost,
}

impl Images {
    fn store(&self) -> PathBuf {
        self.h.root.join("var/lib/zones/images")
    }

    /// Staging directories left in the store.
    fn staging_left(&self) -> Vec<String> {
        fs::read_dir(self.store())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".import") || n.starts_with(".delete"))
            .collect()
    }

    fn image_ids(&self) -> Vec<String> {
        fs::read_dir(self.store())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// `imgadm import [--rootfs] PATH`: (ok, stderr). An image it made is deleted again.
    fn import(&self, path: &Path, rootfs: bool, env: &[(&str, &str)]) -> (bool, String) {
        let before = self.image_ids();
        let mut args = vec!["import"];
        if rootfs {
            args.push("--rootfs");
        }
        args.push(path.to_str().unwrap());
        let out = self.run("imgadm", &args, env, Duration::from_secs(300));
        for id in self.image_ids() {
            if !before.contains(&id) {
                self.h.ok("imgadm", &["delete", &id]);
            }
        }
        out
    }

    /// `prog -R ROOT args` with `env`, killed past `limit`: (exit ok, stderr).
    fn run(
        &self,
        prog: &str,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> (bool, String) {
        let err = self.h.root.join(format!("{prog}.stderr"));
        let mut child = Command::new(bin(prog))
            .arg("-R")
            .arg(&self.h.root)
            .args(args)
            .envs(env.iter().copied())
            .env("ZONES_CGROUP_PARENT", &self.h.cgroup_parent)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = fs::read_to_string(&err).unwrap_or_default();
        match status {
            Some(s) => (s.success(), text.trim().to_string()),
            None => (false, format!("HUNG for {limit:?}: killed")),
        }
    }

    /// An OCI layout holding the one layer `layer`.
    fn layout(&self, tag: &str, layer: Vec<u8>) -> PathBuf {
        let dir = self.h.root.join(format!("layout-{tag}"));
        build::write_oci_layout(&[layer], &dir, tag, &ImageConfig::default()).unwrap();
        dir
    }
}

/// Whether the command failed with `expect` in its message.
fn refused(out: &(bool, String), expect: &str) -> bool {
    !out.0 && out.1.contains(expect)
}

/// Writes an image into a directory and names the member to swap for a symlink.
type MakeMember<'a> = Box<dyn Fn(&Path) -> String + 'a>;

/// A root filesystem with a setuid-root binary (`bin/suid`) and a 0666 device node
/// (`dev/null0666`).
fn suid_rootfs() -> Vec<u8> {
    tar_of(&[
        T::Dir("bin/"),
        T::File("bin/suid", &fs::read("/bin/true").unwrap(), 0o4755),
        T::Dir("dev/"),
        T::Char("dev/null0666", 0o666, 1, 3),
    ])
}

/// uid 65534 tries `root`'s setuid binary and device node (see [`suid_rootfs`]).
fn nobody_is_refused(b: &mut Battery, place: &str, root: &Path) {
    let r = as_nobody(&root.join("bin/suid"), &[]);
    b.check(
        &format!("uid {NOBODY} execs a setuid-root binary through the {place}"),
        matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EACCES)),
        format!("{r:?}"),
    );
    let out = as_nobody(Path::new("/bin/cat"), &[&root.join("dev/null0666")]).unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    b.check(
        &format!("uid {NOBODY} opens a 0666 device node through the {place}"),
        !out.status.success() && err.contains("Permission denied"),
        err.trim().to_string(),
    );
}

/// The btrfs backend's copy of an image (`<zonepath's parent>/.zone-images/<id>`) and the
/// zone's snapshot: as closed to host users as the store.
fn image_copies_are_closed_to_host_users(b: &mut Battery) {
    let h = ZoneHost::new("escape", "images-btrfs", false);
    let fs_ = LoopBtrfs::new(&h.root.join("zones"), 256 << 20);
    let tar = h.root.join("suid-rootfs.tar");
    fs::write(&tar, suid_rootfs()).unwrap();
    h.ok(
        "imgadm",
        &[
            "import",
            "--rootfs",
            "--name",
            "suid",
            tar.to_str().unwrap(),
        ],
    );
    h.ok("zonecfg", &["-z", "bz", "create; set zonepath=/zones/bz"]);
    h.ok("zoneadm", &["-z", "bz", "install", "-i", "suid"]);
    let copies = fs_.mnt.join(".zone-images");
    let id = fs::read_dir(&copies)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let out = as_nobody(Path::new("/usr/bin/test"), &[Path::new("-x"), &fs_.mnt]).unwrap();
    assert!(
        out.status.success(),
        "uid {NOBODY} cannot reach {}",
        fs_.mnt.display()
    );
    nobody_is_refused(b, "btrfs image copy", &id);
    nobody_is_refused(b, "btrfs zone snapshot", &h.root.join("zones/bz/root"));
    h.ok("zoneadm", &["-z", "bz", "uninstall", "-F"]);
    drop(fs_);
}

/// What every attack aims at.
struct Ctx {
    t: Images,
    host: PathBuf,
    secret: Victim,
    secret_digest: String,
    hostdir: Victim,
}

#[test]
fn the_image_store_and_archive_readers_hold() {
    if !require_root() {
        return;
    }
    let t = Images {
        h: ZoneHost::new("escape", "images", false),
    };
    let host = t.h.root.join("host");
    let secret = Victim::file(host.join("secret.json"), br#"{"secret": "host only"}"#);
    let secret_digest = zones::image::digest::Digest::of_bytes(secret.content.as_ref().unwrap())
        .hex()
        .to_string();
    let hostdir = Victim::dir(host.join("dir"));
    let c = Ctx {
        t,
        host,
        secret,
        secret_digest,
        hostdir,
    };
    let mut b = Battery::default();
    store_is_closed_to_host_users(&c, &mut b);
    layers_never_follow_a_planted_symlink(&c, &mut b);
    archive_members_are_never_read_through_a_symlink(&c, &mut b);
    bad_rootfs_tarballs_are_refused_by_name(&c, &mut b);
    gzip_bombs_stop_at_the_limit(&c, &mut b);
    fifo_sources_are_refused_at_once(&c, &mut b);
    image_copies_are_closed_to_host_users(&mut b);
    b.finish("imgadm");
}

fn store_is_closed_to_host_users(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let h = &c.t.h;
    // 1. A setuid-root binary and a 0666 device node in an image and in a zone's root:
    // unreachable for a host user, at the store's and the zonepath's own directory.
    let rootfs = suid_rootfs();
    let rootfs_tar = h.root.join("suid-rootfs.tar");
    fs::write(&rootfs_tar, &rootfs).unwrap();
    h.ok(
        "imgadm",
        &[
            "import",
            "--rootfs",
            "--name",
            "suid",
            rootfs_tar.to_str().unwrap(),
        ],
    );
    let id = t.image_ids().pop().unwrap();
    let img_root = t.store().join(&id).join("rootfs");
    assert_eq!(
        fs::metadata(img_root.join("bin/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    h.ok(
        "zonecfg",
        &["-z", "suidz", "create; set zonepath=/zones/suidz"],
    );
    h.ok(
        "zoneadm",
        &["-z", "suidz", "install", "-d", rootfs_tar.to_str().unwrap()],
    );
    let zone_root = h.root.join("zones/suidz/root");
    // The control: the host user does reach the directories above the sealed ones.
    for above in [h.root.join("var/lib/zones"), h.root.join("zones")] {
        let out = as_nobody(Path::new("/usr/bin/test"), &[Path::new("-x"), &above]).unwrap();
        assert!(
            out.status.success(),
            "uid {NOBODY} cannot reach {}",
            above.display()
        );
    }
    for (place, root) in [("image store", &img_root), ("zone root", &zone_root)] {
        nobody_is_refused(b, place, root);
    }
    h.ok("zoneadm", &["-z", "suidz", "uninstall", "-F"]);
    h.ok("imgadm", &["delete", "suid"]);
}

fn layers_never_follow_a_planted_symlink(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let secret = &c.secret;
    let hostdir = &c.hostdir;
    let host = &c.host;
    let s = secret.path.to_str().unwrap();
    let hd = hostdir.path.to_str().unwrap();
    // 2. Layers that plant a symlink to a host path and then work through it.
    let attacks: Vec<(&str, Vec<u8>, &Victim)> = vec![
        (
            "layer d/ then d -> host file (directory times pass)",
            tar_of(&[T::Dir("d/"), T::Sym("d", s)]),
            secret,
        ),
        (
            "layer e -> host dir, then e/file",
            tar_of(&[
                T::Dir("e/"),
                T::Sym("e", hd),
                T::File("e/file", b"pwned", 0o644),
            ]),
            hostdir,
        ),
        (
            "layer e -> host dir, then e/sub/ (a directory through it)",
            tar_of(&[T::Sym("e", hd), T::Dir("e/sub/")]),
            hostdir,
        ),
        (
            "layer hard link to an absolute host path",
            tar_of(&[T::Hard("h", s)]),
            secret,
        ),
        (
            "layer hard link climbing out with '..'",
            tar_of(&[T::Hard("h", &format!("../../../../../../../..{s}"))]),
            secret,
        ),
        (
            "layer s -> host dir, then a hard link to s/secret.json",
            tar_of(&[
                T::Sym("s", host.to_str().unwrap()),
                T::Hard("h", "s/secret.json"),
            ]),
            secret,
        ),
        (
            "layer whiteout through s -> host dir",
            tar_of(&[
                T::Sym("s", host.to_str().unwrap()),
                T::File("s/.wh.secret.json", b"", 0o644),
            ]),
            secret,
        ),
    ];
    for (i, (name, layer, victim)) in attacks.into_iter().enumerate() {
        let layout = t.layout(&format!("sym{i}"), layer);
        let out = t.import(&layout, false, &[]);
        let (kept, diff) = victim.untouched();
        b.check(
            name,
            kept,
            format!("import ok={} {}; host: {diff}", out.0, out.1),
        );
    }
}

fn archive_members_are_never_read_through_a_symlink(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let h = &c.t.h;
    let secret = &c.secret;
    // 3. Image archive members that are symlinks to a host file: refused, never read.
    let layer = tar_of(&[T::File("a", b"1", 0o644)]);
    let cfg = ImageConfig::default();
    let members: Vec<(&str, MakeMember)> = vec![
        (
            "docker-archive manifest.json",
            Box::new(|d: &Path| {
                build::write_docker_dir(std::slice::from_ref(&layer), d, "x", &cfg).unwrap();
                "manifest.json".into()
            }),
        ),
        (
            "docker-archive config",
            Box::new(|d: &Path| {
                let cd =
                    build::write_docker_dir(std::slice::from_ref(&layer), d, "x", &cfg).unwrap();
                format!("{}.json", cd.hex())
            }),
        ),
        (
            "oci-archive index.json",
            Box::new(|d: &Path| {
                build::write_oci_layout(std::slice::from_ref(&layer), d, "x", &cfg).unwrap();
                "index.json".into()
            }),
        ),
        (
            "oci-archive oci-layout",
            Box::new(|d: &Path| {
                build::write_oci_layout(std::slice::from_ref(&layer), d, "x", &cfg).unwrap();
                "oci-layout".into()
            }),
        ),
        (
            "oci-archive manifest blob",
            Box::new(|d: &Path| {
                let md =
                    build::write_oci_layout(std::slice::from_ref(&layer), d, "x", &cfg).unwrap();
                format!("blobs/sha256/{}", md.hex())
            }),
        ),
    ];
    for (i, (what, make)) in members.iter().enumerate() {
        for archive in [true, false] {
            let dir = h.root.join(format!("member{i}-{archive}"));
            let member = make(&dir);
            fs::remove_file(dir.join(&member)).unwrap();
            std::os::unix::fs::symlink(&secret.path, dir.join(&member)).unwrap();
            let src = if archive {
                let a = h.root.join(format!("member{i}.tar"));
                build::tar_dir(&dir, &a).unwrap();
                a
            } else {
                dir
            };
            let out = t.import(&src, false, &[]);
            let (kept, diff) = secret.untouched();
            let leaked = out.1.contains(&c.secret_digest) || out.1.contains("host only");
            b.check(
                &format!(
                    "{what} as a symlink to a host file ({})",
                    if archive { "archive" } else { "directory" }
                ),
                refused(&out, "is a symlink") && kept && !leaked,
                format!("{}; host: {diff}", out.1),
            );
        }
    }
}

fn bad_rootfs_tarballs_are_refused_by_name(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let h = &c.t.h;
    let secret = &c.secret;
    let hostdir = &c.hostdir;
    let s = secret.path.to_str().unwrap();
    let hd = hostdir.path.to_str().unwrap();
    // 4. Bad rootfs tarballs, through imgadm import --rootfs and zoneadm install -d (the same
    // reader): refused by name, nothing written outside, no partial tree or staging left.
    h.ok(
        "zonecfg",
        &["-z", "badz", "create; set zonepath=/zones/badz"],
    );
    let whole = tar_of(&[
        T::Dir("etc/"),
        T::File("etc/a", &[b'a'; 4000], 0o644),
        T::File("etc/b", &[b'b'; 4000], 0o644),
    ]);
    let gz = gzip(&whole);
    let long = "n/".repeat(2500) + "x";
    let mut odd = tar_of(&[T::File("odd", b"x", 0o644)]);
    odd[156] = b'Z';
    let sum: u32 = odd[..512]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if (148..156).contains(&i) {
                32
            } else {
                *c as u32
            }
        })
        .sum();
    odd[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a .tar.gz cut in half",
            gz[..gz.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "a .tar.gz without its gzip trailer",
            gz[..gz.len() - 8].to_vec(),
            "truncated",
        ),
        (
            "a tar cut at an entry boundary",
            whole[..512 * 2 + 4096].to_vec(),
            "ends without its end-of-archive marker",
        ),
        (
            "an entry climbing out with '../'",
            tar_of(&[T::File("../../../../host/dir/climbed", b"x", 0o644)]),
            "a '..' component leaves the image root",
        ),
        (
            "an absolute entry name climbing out with '/../'",
            tar_of(&[T::File(&format!("/../../../..{hd}/absolute"), b"x", 0o644)]),
            "a '..' component leaves the image root",
        ),
        (
            "a hard link to a host file",
            tar_of(&[T::Hard("shadow", s)]),
            "hard link target",
        ),
        (
            "a 5000-byte entry name",
            tar_of(&[T::File(&long, b"x", 0o644)]),
            "the name is 5001 bytes long; the limit is 4095",
        ),
        (
            "an entry of type 'Z'",
            odd,
            "entry 'odd': entry type 'Z' (0x5a) is not supported",
        ),
    ];
    for (i, (what, data, expect)) in bad.iter().enumerate() {
        let p = h.root.join(format!("bad{i}.tar.gz"));
        fs::write(&p, data).unwrap();
        let out = t.import(&p, true, &[]);
        let left = t.staging_left();
        b.check(
            &format!("imgadm import --rootfs of {what}"),
            refused(&out, expect) && left.is_empty(),
            format!("{}; staging left: {left:?}", out.1),
        );
        let out = t.run(
            "zoneadm",
            &["-z", "badz", "install", "-d", p.to_str().unwrap()],
            &[],
            Duration::from_secs(120),
        );
        let partial = h.root.join("zones/badz/root").exists();
        b.check(
            &format!("zoneadm install -d of {what}"),
            refused(&out, expect) && !partial,
            format!("{}; partial root left: {partial}", out.1),
        );
        // The zone's state after a failed install belongs to zoneadm: put it back here.
        let _ = h.cmd("zoneadm", &["-z", "badz", "uninstall", "-F"]);
        let _ = fs::remove_dir_all(h.root.join("zones/badz"));
    }
    // A leading '/' names the image's root (containerd, umoci): the entry is imported, and
    // lands inside the image, never in the host directory it spells.
    let p = h.root.join("absolute.tar.gz");
    fs::write(
        &p,
        tar_of(&[T::File(&format!("{hd}/absolute"), b"x", 0o644)]),
    )
    .unwrap();
    let out = t.import(&p, true, &[]);
    b.check(
        "imgadm import --rootfs of an absolute entry name stays inside the image",
        out.0 && t.staging_left().is_empty(),
        out.1.clone(),
    );
    let (kept, diff) = secret.untouched();
    b.check("bad rootfs tarballs leave the host file alone", kept, diff);
    let (kept, diff) = hostdir.untouched();
    b.check(
        "bad rootfs tarballs leave the host directory alone",
        kept,
        diff,
    );
}

fn gzip_bombs_stop_at_the_limit(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let h = &c.t.h;
    // 5. A gzip bomb: 1.5 MB that would be 1.5 GiB stops at the default limit (1 GiB).
    let bomb = h.root.join("bomb.tar.gz");
    fs::write(&bomb, gzip_bomb(3 << 29)).unwrap();
    let small = fs::metadata(&bomb).unwrap().len();
    assert!(small < 4 << 20, "the bomb is {small} bytes");
    let out = t.import(&bomb, true, &[]);
    b.check(
        &format!("imgadm import --rootfs of a {small}-byte gzip bomb of 1.5 GiB"),
        refused(&out, "expands beyond 1073741824 bytes") && t.staging_left().is_empty(),
        out.1.clone(),
    );
    // The same through zoneadm install -d, under a lower limit set by the environment.
    let out = t.run(
        "zoneadm",
        &["-z", "badz", "install", "-d", bomb.to_str().unwrap()],
        &[("ZONES_UNPACK_LIMIT", "64M")],
        Duration::from_secs(300),
    );
    let partial = h.root.join("zones/badz/root").exists();
    b.check(
        "zoneadm install -d of a gzip bomb (ZONES_UNPACK_LIMIT=64M)",
        refused(&out, "expands beyond 67108864 bytes") && !partial,
        format!("{}; partial root left: {partial}", out.1),
    );
    let _ = h.cmd("zoneadm", &["-z", "badz", "uninstall", "-F"]);
    let _ = fs::remove_dir_all(h.root.join("zones/badz"));
}

fn fifo_sources_are_refused_at_once(c: &Ctx, b: &mut Battery) {
    let t = &c.t;
    let h = &c.t.h;
    // 6. A FIFO as the source: refused at once, not read for ever.
    let fifo = h.root.join("source.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for rootfs in [false, true] {
        let out = t.import(&fifo, rootfs, &[]);
        b.check(
            &format!(
                "imgadm import{} of a FIFO",
                if rootfs { " --rootfs" } else { "" }
            ),
            refused(&out, "is a FIFO"),
            out.1,
        );
    }
    let out = t.run(
        "zoneadm",
        &["-z", "badz", "install", "-d", fifo.to_str().unwrap()],
        &[],
        Duration::from_secs(30),
    );
    b.check(
        "zoneadm install -d of a FIFO",
        refused(&out, "is a FIFO"),
        out.1,
    );
}
