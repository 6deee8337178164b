//! Copy-on-write filesystems for storage tests, made and removed by the test:
//!
//! - [`LoopBtrfs`]: a sparse file `/var/tmp/runz-tests/runz-test-<pid>-btrfs-<n>.img` on a
//!   loop device (LOOP_CTL_GET_FREE + LOOP_CONFIGURE with autoclear), `mkfs.btrfs`, mounted
//!   with mount(2) where the test says;
//! - [`ZfsPool`]: a zfs-fuse daemon (started here unless one runs already, stopped on drop),
//!   a pool `runz-test-<pid>-<n>` on a sparse file, destroyed on drop.
//!
//! Both are removed in `Drop`, so also when the test fails.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique(kind: &str) -> String {
    format!(
        "runz-test-{}-{kind}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

fn sparse_file(path: &Path, size: u64) {
    let f = File::create(path).unwrap();
    f.set_len(size).unwrap();
}

/// `struct loop_info64` (linux/loop.h).
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

const LOOP_CTL_GET_FREE: u64 = 0x4C82;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LOOP_CLR_FD: u64 = 0x4C01;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// A loop device backed by `file`, and the open device (autoclear: the device is freed when
/// its last user, this fd or the mount, goes).
fn attach_loop(file: &Path) -> (PathBuf, File) {
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .unwrap();
    let backing = OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    // Another process may take the free device between GET_FREE and CONFIGURE: retry.
    for _ in 0..20 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        assert!(
            n >= 0,
            "LOOP_CTL_GET_FREE: {}",
            std::io::Error::last_os_error()
        );
        let dev = PathBuf::from(format!("/dev/loop{n}"));
        let Ok(loopdev) = OpenOptions::new().read(true).write(true).open(&dev) else {
            continue;
        };
        let mut name = [0u8; 64];
        let label = file.file_name().unwrap().as_encoded_bytes();
        let len = label.len().min(63);
        name[..len].copy_from_slice(&label[..len]);
        let cfg = LoopConfig {
            fd: backing.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                device: 0,
                inode: 0,
                rdevice: 0,
                offset: 0,
                sizelimit: 0,
                number: 0,
                encrypt_type: 0,
                encrypt_key_size: 0,
                flags: LO_FLAGS_AUTOCLEAR,
                file_name: name,
                crypt_name: [0; 64],
                encrypt_key: [0; 32],
                init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: `loopdev` and `backing` are open; `cfg` is a valid loop_config the kernel
        // only reads.
        let r = unsafe { libc::ioctl(loopdev.as_raw_fd(), LOOP_CONFIGURE as _, &cfg) };
        if r == 0 {
            return (dev, loopdev);
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EBUSY),
            "LOOP_CONFIGURE {dev:?}: {e}"
        );
    }
    panic!("no free loop device");
}

fn detach_loop(dev: &Path) {
    if let Ok(f) = OpenOptions::new().read(true).write(true).open(dev) {
        // SAFETY: LOOP_CLR_FD takes no argument; on a device still in use it only sets
        // autoclear.
        unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD as _, 0) };
    }
}

/// A bare loop device over a sparse file `runz-test-<pid>-loop-<n>.img` (for I/O caps);
/// detached and the file removed on drop.
pub struct LoopDev {
    pub file: PathBuf,
    pub dev: PathBuf,
    held: Option<File>,
}

impl LoopDev {
    /// A `size`-byte loop device.
    pub fn new(size: u64) -> LoopDev {
        fs::create_dir_all(super::TEST_BASE).unwrap();
        let file = Path::new(super::TEST_BASE).join(format!("{}.img", unique("loop")));
        sparse_file(&file, size);
        let (dev, held) = attach_loop(&file);
        LoopDev {
            file,
            dev,
            held: Some(held),
        }
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        detach_loop(&self.dev);
        self.held.take();
        let _ = fs::remove_file(&self.file);
    }
}

/// A btrfs filesystem on a loop device, mounted at `mnt`.
pub struct LoopBtrfs {
    pub file: PathBuf,
    pub dev: PathBuf,
    pub mnt: PathBuf,
    held: Option<File>,
}

impl LoopBtrfs {
    /// Make a `size`-byte btrfs and mount it at `mnt` (created if missing).
    pub fn new(mnt: &Path, size: u64) -> LoopBtrfs {
        fs::create_dir_all(super::TEST_BASE).unwrap();
        let file = Path::new(super::TEST_BASE).join(format!("{}.img", unique("btrfs")));
        sparse_file(&file, size);
        let mut me = LoopBtrfs {
            file: file.clone(),
            dev: PathBuf::new(),
            mnt: mnt.to_path_buf(),
            held: None,
        };
        let (dev, held) = attach_loop(&file);
        me.dev = dev;
        me.held = Some(held);
        let out = Command::new("mkfs.btrfs")
            .args(["-q", "-f"])
            .arg(&me.dev)
            .stdin(Stdio::null())
            .output()
            .expect("mkfs.btrfs (btrfs-progs) is needed; run scripts/install-deps.sh");
        assert!(
            out.status.success(),
            "mkfs.btrfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::create_dir_all(mnt).unwrap();
        nix::mount::mount(
            Some(&me.dev),
            mnt,
            Some("btrfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        me
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        if super::zonehost::mounted(&self.mnt)
            && nix::mount::umount2(&self.mnt, nix::mount::MntFlags::empty()).is_err()
        {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
        if !self.dev.as_os_str().is_empty() {
            detach_loop(&self.dev);
        }
        self.held.take();
        let _ = fs::remove_file(&self.file);
    }
}

/// One zfs-fuse daemon per machine: tests that use it run one at a time.
static ZFS_LOCK: Mutex<()> = Mutex::new(());

/// A zfs pool on a sparse file, on a zfs-fuse daemon started for it if none runs.
pub struct ZfsPool {
    pub name: String,
    pub file: PathBuf,
    pub mnt: PathBuf,
    daemon: Option<Child>,
    _serial: MutexGuard<'static, ()>,
}

const ZFS_SOCKET: &str = "/var/run/zfs/zfs_socket";

fn run(prog: &str, args: &[&str]) -> std::process::Output {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e} (zfs-fuse is needed; run scripts/install-deps.sh)"))
}

/// `prog args` until it succeeds or `deadline` passes (zfs-fuse: busy right after mounts).
fn retry(prog: &str, args: &[&str], deadline: Duration) -> std::process::Output {
    let until = Instant::now() + deadline;
    loop {
        let out = run(prog, args);
        if out.status.success() || Instant::now() > until {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ZfsPool {
    /// A `size`-byte pool, its root dataset mounted at `mnt`.
    pub fn new(mnt: &Path, size: u64) -> ZfsPool {
        let serial = ZFS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        fs::create_dir_all(super::TEST_BASE).unwrap();
        let name = unique("zpool");
        let file = Path::new(super::TEST_BASE).join(format!("{name}.img"));
        let mut me = ZfsPool {
            name: name.clone(),
            file: file.clone(),
            mnt: mnt.to_path_buf(),
            daemon: None,
            _serial: serial,
        };
        if !run("zpool", &["list"]).status.success() {
            let pidfile = format!("/run/{name}-zfs-fuse.pid");
            let child = Command::new("zfs-fuse")
                .args(["--no-daemon", "--no-kstat-mount", "--pidfile", &pidfile])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("zfs-fuse is needed; run scripts/install-deps.sh");
            me.daemon = Some(child);
            let until = Instant::now() + Duration::from_secs(20);
            while !(Path::new(ZFS_SOCKET).exists() && run("zpool", &["list"]).status.success()) {
                assert!(Instant::now() < until, "zfs-fuse did not come up");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        sparse_file(&file, size);
        fs::create_dir_all(mnt).unwrap();
        let out = run(
            "zpool",
            &[
                "create",
                "-f",
                "-m",
                mnt.to_str().unwrap(),
                &name,
                file.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "zpool create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me
    }

    /// `zfs ARGS`, required to succeed (busy retried); returns stdout.
    pub fn zfs(&self, args: &[&str]) -> String {
        let out = retry("zfs", args, Duration::from_secs(10));
        assert!(
            out.status.success(),
            "zfs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every dataset and snapshot of the pool.
    pub fn datasets(&self) -> Vec<String> {
        let out = run(
            "zfs",
            &["list", "-H", "-o", "name", "-t", "all", "-r", &self.name],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for ZfsPool {
    fn drop(&mut self) {
        // Datasets mounted below the pool's mountpoint go first (kernel umount unsticks
        // zfs-fuse's "busy").
        for m in pool_mounts(&self.name).into_iter().rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = retry(
            "zpool",
            &["destroy", "-f", &self.name],
            Duration::from_secs(10),
        );
        let _ = fs::remove_file(&self.file);
        if let Some(mut d) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                match d.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > until => {
                        let _ = d.kill();
                        let _ = d.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            let _ = fs::remove_file(format!("/run/{}-zfs-fuse.pid", self.name));
        }
    }
}

/// Mount points whose source is a dataset of `pool`, in mount order.
fn pool_mounts(pool: &str) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let source = *f.get(sep + 2)?;
            (source == pool || source.starts_with(&format!("{pool}/")))
                .then(|| PathBuf::from(f[4].replace("\\040", " ")))
        })
        .collect()
}
