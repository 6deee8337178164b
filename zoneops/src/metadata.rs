//! Customer metadata: key/value strings an operator gives a zone (`customer_metadata` of a
//! manifest, `zoneadm update`), readable — and only readable — from inside it, in the spirit of
//! the SmartOS metadata service (`mdata-get`).
//!
//! - Stored per zone in `ALTROOT/etc/zones/metadata/UUID.json` (a JSON object of strings),
//!   by uuid: a zone that is renamed keeps its metadata, a new zone of a deleted one's name
//!   does not inherit it.
//! - While the zone is up, `ALTROOT/run/zones/NAME/zonecontrol/` is bind-mounted read-only at
//!   `/.zonecontrol` in the zone. It holds `metadata.json` (the file view, rewritten when the
//!   metadata changes), `metadata.sock` (answered by the zone's supervisor, which re-reads the
//!   store on every request, so updates are live) and, when a statically linked reader is
//!   found, `mdata-get` (`mdata-list`, `mdata-put`, `mdata-delete` are links to it).
//! - The supervisor serves the socket without ever blocking on a client (the zone's processes
//!   are not trusted): [`Server`] keeps each connection in the supervisor's poll set until its
//!   line has come, at most [`MAX_CLIENTS`] at once and each for at most [`CLIENT_TIME`].
//!
//! The socket protocol is one request line per connection, answered and closed:
//! `GET KEY` → `SUCCESS\n` + the value; `KEYS` → `SUCCESS\n` + the keys, one a line;
//! an unknown key → `NOTFOUND\n`; anything else (`PUT`, `DELETE`, ...) → `FAILURE ...\n`:
//! the zone cannot change its metadata.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zones::store::Store;

use super::ZonePaths;

/// Where the zonecontrol directory appears inside the zone.
pub const ZONE_DIR: &str = "/.zonecontrol";
pub const SOCK: &str = "metadata.sock";
pub const FILE_VIEW: &str = "metadata.json";
pub const READER: &str = "mdata-get";
/// Names the reader answers to besides `mdata-get` (links to it in the zonecontrol dir).
pub const READER_LINKS: [&str; 3] = ["mdata-list", "mdata-put", "mdata-delete"];
/// The longest key and value accepted.
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 64 * 1024;

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a JSON object of strings: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> MetadataError + '_ {
    move |source| MetadataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why `key` cannot be a metadata key, if it cannot.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("key \"{key}\": expected 1 to {MAX_KEY} characters"));
    }
    if key
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(format!(
            "key \"{key}\": no whitespace, control characters or '/' allowed"
        ));
    }
    Ok(())
}

/// Why `value` cannot be a metadata value, if it cannot.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE {
        return Err(format!(
            "value of {} bytes: at most {MAX_VALUE}",
            value.len()
        ));
    }
    Ok(())
}

/// `ALTROOT/etc/zones/metadata/UUID.json` of the configured zone `name`.
pub fn store_file(store: &Store, name: &str) -> Result<PathBuf, MetadataError> {
    let entry = store
        .entry(name)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(name.to_string()))?;
    Ok(store.metadata_file(&entry.uuid))
}

/// The metadata of zone `name` (empty when it has none).
pub fn load(store: &Store, name: &str) -> Result<Metadata, MetadataError> {
    let path = store_file(store, name)?;
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| MetadataError::Corrupt {
            path: path.clone(),
            msg: e.to_string(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Metadata::new()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Replaces the metadata of zone `name` (an empty map removes the file).
pub fn save(store: &Store, name: &str, md: &Metadata) -> Result<(), MetadataError> {
    let path = store_file(store, name)?;
    if md.is_empty() {
        return remove(store, name);
    }
    let dir = path.parent().expect("a file in a directory");
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let json = serde_json::to_vec_pretty(md).expect("strings serialize");
    let file = path.file_name().expect("a file name").to_string_lossy();
    zones::store::write_atomic(dir, &file, &json).map_err(|e| MetadataError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Forgets the metadata of zone `name`.
pub fn remove(store: &Store, name: &str) -> Result<(), MetadataError> {
    let path = store_file(store, name)?;
    match fs::remove_file(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err(&path)(e)),
        _ => Ok(()),
    }
}

/// `ALTROOT/run/zones/NAME/zonecontrol`.
pub fn control_dir(paths: &ZonePaths) -> PathBuf {
    paths.run.join("zonecontrol")
}

/// The metadata socket of a live zone, made fresh (mode 0666: any user of the zone may read).
fn listen(paths: &ZonePaths) -> std::io::Result<UnixListener> {
    let dir = control_dir(paths);
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let sock = dir.join(SOCK);
    let _ = fs::remove_file(&sock);
    // sun_path holds 107 bytes: a zone named by a uuid under a long alternate root does not
    // fit, so the socket is then bound through the directory's fd (/proc/self/fd/N/...).
    let l = if sock.as_os_str().len() < 100 {
        UnixListener::bind(&sock)?
    } else {
        let d = fs::File::open(&dir)?;
        let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCK}", d.as_raw_fd()));
        UnixListener::bind(short)?
    };
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Writes the file view of zone `paths.name`'s metadata into its zonecontrol directory, when
/// the zone has one (it is up). Called at boot and by `zoneadm update`.
pub fn publish(store: &Store, paths: &ZonePaths) -> Result<(), MetadataError> {
    let dir = control_dir(paths);
    if !dir.is_dir() {
        return Ok(());
    }
    let md = load(store, &paths.name)?;
    let json = serde_json::to_vec_pretty(&md).expect("strings serialize");
    let tmp = dir.join(".metadata.json.tmp");
    fs::write(&tmp, json).map_err(io_err(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444)).map_err(io_err(&tmp))?;
    let view = dir.join(FILE_VIEW);
    fs::rename(&tmp, &view).map_err(io_err(&view))
}

/// Puts the in-zone reader into the zonecontrol directory: `$ZONES_MDATA_GET`, else
/// `mdata-get` beside the running executable, when it is statically linked (the zone has no
/// host libraries). Returns whether a reader was installed.
pub fn install_reader(paths: &ZonePaths) -> bool {
    let candidate = std::env::var_os("ZONES_MDATA_GET")
        .map(PathBuf::from)
        .or_else(|| {
            // Not current_exe: after the CVE-2019-5736 seal that names a detached mount.
            zones_engine::exeseal::original_exe()
                .ok()
                .map(|e| e.with_file_name(READER))
        });
    let Some(src) = candidate.filter(|p| is_static_elf(p)) else {
        return false;
    };
    let dir = control_dir(paths);
    let dst = dir.join(READER);
    let tmp = dir.join(".mdata-get.tmp");
    let copied = fs::copy(&src, &tmp)
        .and_then(|_| fs::set_permissions(&tmp, fs::Permissions::from_mode(0o555)))
        .and_then(|()| fs::rename(&tmp, &dst));
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
        return false;
    }
    for link in READER_LINKS {
        let l = dir.join(link);
        let _ = fs::remove_file(&l);
        let _ = std::os::unix::fs::symlink(READER, &l);
    }
    true
}

/// Whether `path` is an ELF executable without an interpreter (statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = fs::read(path) else {
        return false;
    };
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        data.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != PT_INTERP)
    })
}

/// Adds the read-only bind of the zonecontrol directory to a zone's spec (when the zone has
/// one: its supervisor made it).
pub fn add_mount(spec: &mut oci_spec::runtime::Spec, paths: &ZonePaths) {
    let dir = control_dir(paths);
    if !dir.is_dir() {
        return;
    }
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(PathBuf::from(ZONE_DIR));
    m.set_typ(Some("bind".into()));
    m.set_source(Some(dir));
    m.set_options(Some(
        ["rbind", "ro", "nosuid", "nodev"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(m);
    spec.set_mounts(Some(mounts));
}

/// The answer to one request line.
pub fn answer(md: &Metadata, line: &str) -> Vec<u8> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match verb {
        "GET" => match md.get(arg) {
            Some(v) => [b"SUCCESS\n".as_slice(), v.as_bytes()].concat(),
            None => b"NOTFOUND\n".to_vec(),
        },
        "KEYS" => {
            let mut out = b"SUCCESS\n".to_vec();
            for k in md.keys() {
                out.extend_from_slice(k.as_bytes());
                out.push(b'\n');
            }
            out
        }
        "PUT" | "DELETE" => {
            b"FAILURE metadata is read-only inside the zone; change it with zoneadm update\n"
                .to_vec()
        }
        _ => format!("FAILURE unknown request \"{verb}\": expected GET KEY or KEYS\n").into_bytes(),
    }
}

/// At most this many metadata clients are waited on at once (the oldest is dropped).
pub const MAX_CLIENTS: usize = 16;
/// How long a client has to send its request line.
pub const CLIENT_TIME: Duration = Duration::from_secs(2);
/// The longest request line.
const MAX_LINE: usize = 4096;

struct Client {
    stream: UnixStream,
    line: Vec<u8>,
    since: Instant,
}

/// The metadata socket of one zone and its pending clients, served from the supervisor's
/// poll loop: [`Server::poll_fds`] lists the fds to watch, [`Server::ready`] handles what poll
/// found. Nothing here blocks.
pub struct Server {
    listener: UnixListener,
    clients: Vec<Client>,
}

impl Server {
    /// The zone's metadata socket, made fresh.
    pub fn new(paths: &ZonePaths) -> std::io::Result<Server> {
        Ok(Server {
            listener: listen(paths)?,
            clients: Vec::new(),
        })
    }

    /// The listener, then every pending client.
    pub fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        std::iter::once(self.listener.as_fd())
            .chain(self.clients.iter().map(|c| c.stream.as_fd()))
            .collect()
    }

    /// `hit[i]`: whether `poll_fds()[i]` is ready. Reads what clients sent, answers complete
    /// lines, accepts new clients, and drops clients that took too long.
    pub fn ready(&mut self, hit: &[bool], store: &Store, name: &str) {
        let mut done = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if hit.get(i + 1).copied().unwrap_or(false) && c.read_more() {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let mut c = self.clients.remove(i);
            let line = String::from_utf8_lossy(&c.line).into_owned();
            let reply = match load(store, name) {
                Ok(md) => answer(&md, &line),
                Err(e) => format!("FAILURE {e}\n").into_bytes(),
            };
            // One write into an empty socket buffer; a value larger than the buffer is cut
            // rather than waited for (the supervisor never blocks on a zone's process).
            let _ = c.stream.write(&reply);
        }
        self.clients.retain(|c| c.since.elapsed() < CLIENT_TIME);
        if hit.first().copied().unwrap_or(false) {
            while let Ok((stream, _)) = self.listener.accept() {
                if stream.set_nonblocking(true).is_err() {
                    continue;
                }
                if self.clients.len() >= MAX_CLIENTS {
                    self.clients.remove(0);
                }
                self.clients.push(Client {
                    stream,
                    line: Vec::new(),
                    since: Instant::now(),
                });
            }
        }
    }

    /// When the oldest pending client times out (for the poll timeout).
    pub fn deadline(&self) -> Option<Instant> {
        self.clients.iter().map(|c| c.since + CLIENT_TIME).min()
    }
}

impl Client {
    /// Reads what is there; true when the request is complete (a newline, EOF, an error, or
    /// too long a line).
    fn read_more(&mut self) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    self.line.extend_from_slice(&buf[..n]);
                    if let Some(end) = self.line.iter().position(|b| *b == b'\n') {
                        self.line.truncate(end);
                        return true;
                    }
                    if self.line.len() > MAX_LINE {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_answered_and_changes_refused() {
        let md: Metadata = [("role", "web\nfront"), ("user-script", "#!/bin/sh")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(answer(&md, "GET role\n"), b"SUCCESS\nweb\nfront");
        assert_eq!(answer(&md, "GET nope\n"), b"NOTFOUND\n");
        assert_eq!(answer(&md, "KEYS\n"), b"SUCCESS\nrole\nuser-script\n");
        for bad in ["PUT role x\n", "DELETE role\n"] {
            assert!(answer(&md, bad).starts_with(b"FAILURE metadata is read-only"));
        }
        assert!(answer(&md, "HELLO\n").starts_with(b"FAILURE unknown request"));
    }

    #[test]
    fn the_server_never_waits_for_a_slow_client() {
        let dir = std::env::temp_dir().join(format!("runz-test-{}-mdsrv", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let store = Store::open(Some(&dir)).unwrap();
        let mut zone = zones::model::Zone::new("z");
        zone.zonepath = Some("/zones/z".into());
        store.save(&store.lock("z").unwrap(), &zone).unwrap();
        let md: Metadata = [("k".to_string(), "v".to_string())].into();
        save(&store, "z", &md).unwrap();
        let paths = ZonePaths::new(&store, "z");
        let mut srv = Server::new(&paths).unwrap();
        let sock = control_dir(&paths).join(SOCK);
        // A client that sends half a line, and one that sends a whole one.
        let mut slow = UnixStream::connect(&sock).unwrap();
        slow.write_all(b"GET").unwrap();
        let mut fast = UnixStream::connect(&sock).unwrap();
        fast.write_all(b"GET k\n").unwrap();
        // Accept both, then read both: every call returns at once.
        srv.ready(&[true], &store, "z");
        assert_eq!(srv.poll_fds().len(), 3);
        srv.ready(&[false, true, true], &store, "z");
        let mut got = Vec::new();
        fast.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"SUCCESS\nv");
        assert_eq!(srv.poll_fds().len(), 2, "the slow client still waits");
        assert!(srv.deadline().is_some());
        slow.write_all(b" k\n").unwrap();
        srv.ready(&[false, true], &store, "z");
        let mut got = Vec::new();
        slow.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"SUCCESS\nv");
        assert!(srv.deadline().is_none());
        // Metadata is by uuid, and goes with remove.
        let file = store_file(&store, "z").unwrap();
        assert!(file.ends_with(format!("metadata/{}.json", zone.uuid)));
        assert!(file.exists());
        remove(&store, "z").unwrap();
        assert!(!file.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_and_values_are_checked() {
        assert!(check_key("role").is_ok());
        for bad in ["", "a b", "a/b", "a\nb", &"k".repeat(129)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_value(&"v".repeat(MAX_VALUE + 1)).is_err());
    }

    #[test]
    fn static_and_dynamic_executables_are_told_apart() {
        // Debian's coreutils are dynamically linked (they have an interpreter).
        assert!(!is_static_elf(Path::new("/bin/true")));
        // This test binary is static exactly when built with crt-static (.cargo/config.toml).
        let me = std::env::current_exe().unwrap();
        assert_eq!(is_static_elf(&me), cfg!(target_feature = "crt-static"));
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
