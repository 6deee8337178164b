//! An alternate root (`-R`) for zone tests, shared by every test file that runs zones.
//!
//! Each host lives under /var/tmp/runz-tests/<kind>-<pid>-<tag>-<n>, puts its zones' cgroups
//! beneath the test process's own cgroup (`ZONES_CGROUP_PARENT` is relative), and on drop halts
//! its zones, kills what is left of their supervisors, undoes mounts under it and removes its
//! directory and cgroups.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// `struct Host(ZoneHost)` that derefs to the [`ZoneHost`], for a test file to add its own
/// helpers to (`impl Host { fn new(..) .. }`): `common::zonehost::host_type!();`.
#[allow(unused_macros)]
macro_rules! host_type {
    () => {
        /// A zone host with this test file's helpers; see `common::zonehost`.
        struct Host(common::zonehost::ZoneHost);

        impl std::ops::Deref for Host {
            type Target = common::zonehost::ZoneHost;
            fn deref(&self) -> &common::zonehost::ZoneHost {
                &self.0
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use host_type;

/// A zone binary (zonecfg, zoneadm, zlogin, ...) beside runz.
pub fn bin(name: &str) -> PathBuf {
    super::runz_bin().with_file_name(name)
}

pub struct ZoneHost {
    pub root: PathBuf,
    /// A busybox rootfs with an inittab, to install zones from (when asked for).
    pub image: PathBuf,
    pub cgroup_parent: String,
    /// This host's number within the test process (the last component of `root`'s name).
    pub seq: usize,
}

impl ZoneHost {
    /// A new host; `kind` names the test file, `tag` the test.
    pub fn new(kind: &str, tag: &str, with_image: bool) -> ZoneHost {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let root = PathBuf::from(format!(
            "/var/tmp/runz-tests/{kind}-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let image = root.join("image");
        if with_image {
            super::copy_tree(&super::busybox_rootfs(), &image).unwrap();
            std::fs::write(
                image.join("etc/inittab"),
                "::sysinit:/bin/hostname -F /etc/hostname\n::askfirst:-/bin/sh\n::shutdown:/bin/echo zone going down\n",
            )
            .unwrap();
        }
        ZoneHost {
            root,
            image,
            cgroup_parent: format!("{}/{kind}-{tag}-{n}", super::cgroup_prefix()),
            seq: n,
        }
    }

    /// A host link name unique to this host: `<prefix><pid><seq><suffix>`, checked to fit
    /// IFNAMSIZ (15 bytes).
    pub fn link_name(&self, prefix: &str, suffix: &str) -> String {
        let name = format!("{prefix}{}{}{suffix}", std::process::id(), self.seq);
        assert!(name.len() <= 15, "{name}");
        name
    }

    /// Run `prog -R ROOT args...` with `input` (or nothing) on stdin.
    pub fn cmd_in(&self, prog: &str, args: &[&str], input: Option<&str>) -> Output {
        let mut child = Command::new(bin(prog))
            .arg("-R")
            .arg(&self.root)
            .args(args)
            .env("ZONES_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    pub fn cmd(&self, prog: &str, args: &[&str]) -> Output {
        self.cmd_in(prog, args, None)
    }

    /// Configure `zone` (`create; set zonepath=/zones/ZONE; CFG`), install it from the
    /// busybox image and boot it; each step must succeed.
    pub fn boot_zone(&self, zone: &str, cfg: &str) {
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
            &["-z", zone, "install", "-d", self.image.to_str().unwrap()],
        );
        self.ok("zoneadm", &["-z", zone, "boot"]);
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, prog: &str, args: &[&str]) -> String {
        let out = self.cmd(prog, args);
        assert!(
            out.status.success(),
            "{prog} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, prog: &str, args: &[&str]) -> String {
        let out = self.cmd(prog, args);
        assert!(
            !out.status.success(),
            "{prog} {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `zoneadm list -cp`, each line split into its unescaped fields.
    pub fn list(&self) -> Vec<Vec<String>> {
        self.ok("zoneadm", &["list", "-cp"])
            .lines()
            .map(split_parsable)
            .collect()
    }

    /// The state of `zone`, or "absent".
    pub fn state(&self, zone: &str) -> String {
        self.list()
            .into_iter()
            .find(|f| f[1] == zone)
            .map(|f| f[2].clone())
            .unwrap_or_else(|| "absent".into())
    }

    /// The zones' parent cgroup in every hierarchy (beneath the test's own cgroups).
    pub fn cgroup_parents(&self) -> Vec<PathBuf> {
        super::own_cgroup_dirs()
            .into_iter()
            .map(|d| d.join(&self.cgroup_parent))
            .collect()
    }

    /// The zone cgroups (directories) left beneath [`ZoneHost::cgroup_parents`].
    pub fn zone_cgroups_left(&self) -> Vec<PathBuf> {
        self.cgroup_parents()
            .iter()
            .flat_map(|p| std::fs::read_dir(p).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect()
    }
}

/// Split a `zoneadm list -p` line on unescaped colons and unescape the fields.
pub fn split_parsable(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().unwrap().push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

impl ZoneHost {
    /// Halt every zone of this host and kill what is left of their supervisors.
    pub fn halt_all(&self) {
        let zones: Vec<String> = std::fs::read_dir(self.root.join("run/zones"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        for z in &zones {
            let _ = self.cmd("zoneadm", &["-z", z, "halt"]);
            let pid_file = self.root.join(format!("run/zones/{z}/zoneadmd.pid"));
            if let Ok(pid) = std::fs::read_to_string(pid_file) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for ZoneHost {
    fn drop(&mut self) {
        self.halt_all();
        for m in super::mounts_under(&self.root).into_iter().rev() {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.root);
        for parent in self.cgroup_parents() {
            let _ = std::fs::remove_dir(&parent);
            // The per-process prefix too, once no other test uses it (rmdir of a non-empty
            // cgroup fails, which keeps a sibling's safe).
            if let Some(prefix) = parent.parent() {
                let _ = std::fs::remove_dir(prefix);
            }
        }
    }
}

/// Whether `path` is a mount point now.
pub fn mounted(path: &Path) -> bool {
    super::mount_points().iter().any(|m| m == path)
}

/// `mdata-get` (static, like every binary of the workspace: .cargo/config.toml), built once per
/// test process beside runz: `cargo test -p zones-linux` alone does not build it.
pub fn static_mdata_get() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "zones-mdata",
                    "--bin",
                    "mdata-get",
                ])
                .args((!cfg!(debug_assertions)).then_some("--release"))
                .stdin(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "building mdata-get failed");
            bin("mdata-get")
        })
        .clone()
}

/// Host links made by a test (etherstubs), deleted on drop even when the test fails.
/// Declared before the host, so it drops after the zones are halted.
pub struct Links(pub Vec<String>);

impl Drop for Links {
    fn drop(&mut self) {
        if let Ok(mut nl) = zones_net::Netlink::open() {
            for l in &self.0 {
                let _ = nl.delete_link(l);
            }
        }
    }
}
