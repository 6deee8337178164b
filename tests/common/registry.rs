//! Registries for the `imgadm import docker://` tests, on loopback only.
//!
//! - [`LocalRegistry`]: Debian's `docker-registry` (the CNCF distribution registry) on a free
//!   127.0.0.1 port with its own config, storage and (optionally) htpasswd file in a
//!   `runz-test` temp dir; killed (by pid) and removed on drop.
//! - [`push_layout`] and friends: put an OCI image layout into a registry through the
//!   distribution API (blob uploads, manifest PUT) with a tiny HTTP/1.1 client: no docker.
//! - [`FakeRegistry`]: a few-line HTTP server in a thread answering from a handler, for what
//!   the real registry cannot be made to do (Bearer token auth, a body cut short).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

static SEQ: AtomicUsize = AtomicUsize::new(0);
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A `docker-registry serve` process of this test.
pub struct LocalRegistry {
    pub dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `user:password` when started with htpasswd auth.
    pub creds: Option<String>,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl LocalRegistry {
    /// Start a registry; with `creds` (`user:password`) it wants basic auth (`auth: htpasswd`).
    pub fn start(tag: &str, creds: Option<&str>) -> LocalRegistry {
        let dir = PathBuf::from(format!(
            "/var/tmp/runz-tests/runz-test-registry-{}-{tag}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("storage")).unwrap();
        let mut auth = String::new();
        if let Some(c) = creds {
            let (user, pass) = c.split_once(':').unwrap();
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) is needed: run scripts/install-deps.sh");
            assert!(out.status.success(), "htpasswd: {out:?}");
            fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: runz-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        // The port is free now; another process could take it before the registry binds
        // it, so a start that does not answer is retried on a new port.
        for _ in 0..3 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: runz-test\n{auth}",
                dir.join("storage").display()
            );
            fs::write(dir.join("config.yml"), config).unwrap();
            let log = fs::File::create(dir.join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry is needed: run scripts/install-deps.sh");
            let mut reg = LocalRegistry {
                dir: dir.clone(),
                addr,
                creds: creds.map(str::to_string),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = reg.child.try_wait() {
                    break;
                }
                if let Ok(r) = http(&reg.addr, "GET", "/v2/", &[], b"") {
                    if r.status == 200 || r.status == 401 {
                        return reg;
                    }
                }
                sleep(Duration::from_millis(50));
            }
            reg.stop();
        }
        panic!(
            "docker-registry did not start; see {}",
            dir.join("registry.log").display()
        );
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `Authorization` headers for pushes.
    pub fn auth(&self) -> Vec<(String, String)> {
        self.creds
            .iter()
            .map(|c| {
                (
                    "Authorization".to_string(),
                    format!("Basic {}", zones::image::registry::base64(c.as_bytes())),
                )
            })
            .collect()
    }

    /// The file holding a blob in the registry's storage (to corrupt it behind its back).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A response of [`http`].
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// One HTTP/1.1 request (`Connection: close`) to `addr`.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        body = dechunk(&body);
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..i]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 || data.len() < i + 2 + size {
            break;
        }
        out.extend_from_slice(&data[i + 2..i + 2 + size]);
        data = &data[(i + 4 + size).min(data.len())..];
    }
    out
}

/// Upload one blob (POST an upload, PUT it with its digest).
pub fn push_blob(reg: &LocalRegistry, repo: &str, data: &[u8]) -> String {
    let digest = zones::image::digest::Digest::of_bytes(data).to_string();
    let auth = reg.auth();
    let r = http(
        &reg.addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &auth,
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 202, "upload start: {r:?}");
    let loc = &r.headers["location"];
    let path = match loc.find("/v2/") {
        Some(i) => &loc[i..],
        None => loc.as_str(),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut h = auth.clone();
    h.push(("Content-Type".into(), "application/octet-stream".into()));
    let r = http(
        &reg.addr,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &h,
        data,
    )
    .unwrap();
    assert_eq!(r.status, 201, "upload {digest}: {r:?}");
    digest
}

/// PUT a manifest (or index) under `reference`; returns its digest.
pub fn put_manifest(reg: &LocalRegistry, repo: &str, reference: &str, manifest: &[u8]) -> String {
    let v: Value = serde_json::from_slice(manifest).unwrap();
    let mut h = reg.auth();
    h.push((
        "Content-Type".into(),
        v["mediaType"].as_str().unwrap().to_string(),
    ));
    let r = http(
        &reg.addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &h,
        manifest,
    )
    .unwrap();
    assert_eq!(
        r.status,
        201,
        "manifest {repo}:{reference}: {r:?} {}",
        String::from_utf8_lossy(&r.body)
    );
    zones::image::digest::Digest::of_bytes(manifest).to_string()
}

/// Push the (single) image of an OCI layout as `repo:tag`: its blobs, then its manifest.
/// Returns the manifest digest.
pub fn push_layout(reg: &LocalRegistry, layout: &Path, repo: &str, tag: &str) -> String {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read_blob(layout, md);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let mut digests = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    for l in m["layers"].as_array().unwrap() {
        digests.push(l["digest"].as_str().unwrap().to_string());
    }
    for d in digests {
        assert_eq!(push_blob(reg, repo, &read_blob(layout, &d)), d);
    }
    put_manifest(reg, repo, tag, &manifest)
}

/// A blob of an OCI layout.
pub fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
}

/// A request as [`FakeRegistry`] saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
}

/// What a [`FakeRegistry`] handler answers.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Announce this Content-Length (more than `body`: a body cut short).
    pub claimed_len: Option<usize>,
}

impl Answer {
    pub fn new(status: u16, body: Vec<u8>) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body,
            claimed_len: None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Answer {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

type Handler = dyn Fn(&Req) -> Answer + Send + Sync;

/// An HTTP server on 127.0.0.1 in a thread of the test; stops on drop (and by itself after
/// two minutes).
pub struct FakeRegistry {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRegistry {
    pub fn start(handler: impl Fn(&Req) -> Answer + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = serve_one(s, &*handler, &seen2);
                    }
                    Err(_) => sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeRegistry {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut s: TcpStream, handler: &Handler, seen: &Mutex<Vec<Req>>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") && raw.len() < 64 * 1024 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let req = Req {
        method: first.next().unwrap_or("").to_string(),
        path: first.next().unwrap_or("").to_string(),
        headers: lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
    };
    seen.lock().unwrap().push(req.clone());
    let a = handler(&req);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        a.status,
        a.claimed_len.unwrap_or(a.body.len())
    );
    for (k, v) in &a.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    s.write_all(out.as_bytes())?;
    if req.method != "HEAD" {
        s.write_all(&a.body)?;
    }
    s.flush()
}

/// A handler serving one OCI layout as `repo` (manifests by tag `tag` or digest, blobs by
/// digest), everything else 404.
pub fn serve_layout(layout: &Path, repo: &str, tag: &str, req: &Req) -> Answer {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("/v2/{repo}/");
    let Some(rest) = req.path.strip_prefix(&prefix) else {
        return Answer::new(404, br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#.to_vec());
    };
    if let Some(r) = rest.strip_prefix("manifests/") {
        if r == tag || r == md {
            let m = read_blob(layout, &md);
            let v: Value = serde_json::from_slice(&m).unwrap();
            let ct = v["mediaType"].as_str().unwrap().to_string();
            return Answer::new(200, m).header("Content-Type", &ct);
        }
    } else if let Some(d) = rest.strip_prefix("blobs/") {
        let p = layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        if p.is_file() {
            return Answer::new(200, fs::read(p).unwrap());
        }
    }
    Answer::new(
        404,
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
    )
}
