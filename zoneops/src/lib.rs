//! Zones on the engine: the glue between the zone model (`zones` crate) and the container
//! engine (`zones_engine`, which the faces call `runtime`).
//!
//! - `engine`: a zone's bundle (spec from `zones::spec`), create/start/delete through
//!   `zones_engine::container`.
//! - `supervisor`: zoneadmd, one single-threaded process per ready or running zone: parent of the
//!   zone's init, owner of its console, handler of halt/shutdown/reboot requests.
//! - `control`: the request/response protocol between zoneadm and zoneadmd.
//! - `admin`: what zoneadm's verbs do (install, boot, halt, list, ...).
//! - `login`: zlogin (a process inside the zone, or the console).
//! - `stat`: zonestat's data (usage and caps from the zone's cgroup).
//! - `trace`: zonetrace (bpftrace programs that know each task's zone; the toolkit).
//! - `network`: an exclusive-IP zone's namespace and anet links; `datalinks`: dladm's
//!   etherstubs and VNICs.
//! - `query`: `zoneadm get` and `lookup` (a zone as one JSON document).
//! - `manifest`: `zoneadm validate`, `provision` and `update` (a zone from one JSON document).
//! - `metadata`: customer metadata, served read-only to the zone on `/.zonecontrol`.
//! - `events`: `zoneadm events` (the store's state changes as JSON lines).
//! - `recover`: finding and removing what a killed zoneadmd left behind; `delegation`: the
//!   record of a zone's delegated datasets, which recovery gives back.
//! - `shed`: zoneadmd gives back the memory setting up its zone took (RSS ≤ 1 MiB).
//!
//! Runtime files of zone NAME live in `ALTROOT/run/zones/NAME/`: `zoneadmd.lock` (held by the
//! supervisor for its whole life), `zoneadmd.pid`, `control.sock`, `console.sock`, `zone.json`
//! (zoneid, init pid), `zoneadmd.log`, and with `add dataset` `datasets.json` and `userns`
//! (see `delegation`). The engine's container state is under
//! `ALTROOT/run/zones/.runz/NAME/`.

pub mod admin;
pub mod cgroup_driver;
pub mod control;
pub mod datalinks;
pub mod delegation;
pub mod engine;
pub mod events;
pub mod hostfiles;
pub mod kvm;
pub mod login;
pub mod manifest;
pub mod metadata;
pub mod network;
pub mod query;
pub mod recover;
pub mod rootfile;
pub mod shed;
pub mod stat;
pub mod supervisor;
pub mod trace;
pub mod userscript;
pub mod vmadm;
pub mod vmnet;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zones::store::Store;

/// Where one zone's runtime files are.
#[derive(Debug, Clone)]
pub struct ZonePaths {
    pub name: String,
    /// `ALTROOT/run/zones/NAME`.
    pub run: PathBuf,
    /// The runz state root of every zone: `ALTROOT/run/zones/.runz`.
    pub runz_root: PathBuf,
}

impl ZonePaths {
    pub fn new(store: &Store, name: &str) -> ZonePaths {
        let base = store.run_dir();
        ZonePaths {
            name: name.to_string(),
            run: base.join(name),
            runz_root: base.join(".runz"),
        }
    }

    pub fn lock_file(&self) -> PathBuf {
        self.run.join("zoneadmd.lock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run.join("zoneadmd.pid")
    }

    pub fn control_sock(&self) -> PathBuf {
        self.run.join("control.sock")
    }

    pub fn console_sock(&self) -> PathBuf {
        self.run.join("console.sock")
    }

    pub fn info_file(&self) -> PathBuf {
        self.run.join("zone.json")
    }

    pub fn log_file(&self) -> PathBuf {
        self.run.join("zoneadmd.log")
    }
}

/// What the supervisor publishes about a live zone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ZoneInfo {
    /// The zone id (illumos: a small number given at ready; the global zone is 0).
    pub zoneid: u32,
    /// Host pid of the zone's init (0 while none runs).
    pub init_pid: i32,
    /// Pid of the supervisor.
    pub supervisor_pid: i32,
}

impl ZoneInfo {
    pub fn load(paths: &ZonePaths) -> Option<ZoneInfo> {
        let text = std::fs::read_to_string(paths.info_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replace zone.json atomically; no fsync: it describes the live supervisor and init.
    pub fn save(&self, paths: &ZonePaths) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        zones_engine::state::write_replace(&paths.info_file(), &json)
    }
}

/// Whether a supervisor holds the zone (its lock file is locked by a live process).
pub fn supervisor_alive(paths: &ZonePaths) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .open(paths.lock_file())
    else {
        return false;
    };
    lock_holder(&f).is_some()
}

/// The pid of the zone's supervisor (the holder of its lock), if one runs.
pub fn supervisor_pid(paths: &ZonePaths) -> Option<i32> {
    let f = std::fs::File::open(paths.lock_file()).ok()?;
    lock_holder(&f)
}

/// Wait until `until` for the supervisor `pid` (from [`supervisor_pid`]) to be gone: its
/// lock released and the process itself ended (a zombie counts as ended). Its record lock goes
/// before the process does, so the lock alone would let a caller see it still running.
pub fn wait_supervisor_gone(paths: &ZonePaths, pid: Option<i32>, until: std::time::Instant) {
    let running = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
            .unwrap_or(false)
    };
    while (supervisor_alive(paths) || pid.is_some_and(running)) && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `zoneadmd.lock` is a POSIX record lock (fcntl F_SETLK), not flock(2): a flock belongs to
/// the open file, which the zone's init (forked by the supervisor, blocked before exec) shares,
/// so a killed supervisor's lock would live on in its zone. A record lock belongs to the
/// process alone and goes with it. Take it on `f` (opened for writing), without waiting;
/// false when another process holds it. It lasts while this process keeps any fd of the file
/// open.
pub fn try_record_lock(f: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: F_SETLK reads a valid, initialized `struct flock` on an fd we own.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &mut fl) == 0 }
}

/// The pid of the process holding a record lock on `f`, if any.
pub fn lock_holder(f: &std::fs::File) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: F_GETLK reads and fills a valid `struct flock` on an fd we own.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    (r == 0 && fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid)
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `struct flock` is plain data; all-zero is a valid value (start 0, len 0 = the
    // whole file).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// The smallest zone id not used by another live zone under `run_dir`.
pub fn free_zoneid(run_dir: &Path, me: &str) -> u32 {
    let used: Vec<u32> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != me)
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("zone.json")).ok()?;
            let info: ZoneInfo = serde_json::from_str(&text).ok()?;
            let name = e.file_name().into_string().ok()?;
            let paths = ZonePaths {
                name,
                run: e.path(),
                runz_root: run_dir.join(".runz"),
            };
            supervisor_alive(&paths).then_some(info.zoneid)
        })
        .collect();
    (1..).find(|id| !used.contains(id)).expect("u32 has room")
}
