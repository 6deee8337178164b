//! A `zonesd` child for the API tests (tests/zonesd.rs, tests/zonesd_console.rs): its own
//! host (alternate root, cgroups beneath the test's), its own socket, SIGTERM then SIGKILL on
//! drop, before the host halts its zones and removes its root; a self-signed certificate and
//! a client TLS configuration that trusts it.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::zonehost::{bin, ZoneHost};

/// A running zonesd on `host`, serving `socket` (and whatever its flags add).
pub struct Zonesd {
    pub child: Option<Child>,
    pub socket: PathBuf,
    pub host: ZoneHost,
}

impl Drop for Zonesd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Zonesd {
    /// zonesd on `host` with `--socket ROOT/api.sock` and `extra` flags; returns once the
    /// socket answers (10 s at most) and, with `port`, that loopback port too.
    pub fn start(host: ZoneHost, extra: &[&str], port: Option<u16>) -> Zonesd {
        let socket = host.root.join("api.sock");
        let log = std::fs::File::create(host.root.join("zonesd.log")).unwrap();
        let child = Command::new(bin("zonesd"))
            .arg("-R")
            .arg(&host.root)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .env("ZONES_CGROUP_PARENT", &host.cgroup_parent)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut z = Zonesd {
            child: Some(child),
            socket,
            host,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&z.socket).is_err()
            || port.is_some_and(|p| TcpStream::connect(("127.0.0.1", p)).is_err())
        {
            if let Some(st) = z.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("zonesd exited ({st}): {}", z.log());
            }
            assert!(Instant::now() < until, "zonesd not serving: {}", z.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        z
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.host.root.join("zonesd.log")).unwrap_or_default()
    }

    /// `zonesd -R ROOT token ARGS`; its stdout.
    pub fn token_cmd(&self, args: &[&str]) -> String {
        let out = Command::new(bin("zonesd"))
            .arg("-R")
            .arg(&self.host.root)
            .arg("token")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "zonesd token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new token of `role`: the last line of `token create`.
    pub fn token(&self, role: &str, name: &str) -> String {
        let out = self.token_cmd(&["create", "--role", role, "--name", name]);
        out.lines().last().unwrap().trim().to_string()
    }

    /// The audit log's lines.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.host.root.join("var/log/zones/zonesd-audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether openssl(1) runs (scripts/install-deps.sh installs it); says so when not.
pub fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: openssl is not installed (scripts/install-deps.sh)");
    }
    ok
}

/// A self-signed certificate for localhost and 127.0.0.1 (cert.pem, key.pem in `dir`).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A client configuration trusting only the certificates of PEM file `cert`.
pub fn tls_client(cert: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
