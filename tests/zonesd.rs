//! `zonesd` through its API: each test runs its own zonesd child on its own alternate root
//! (tests/common/zonehost.rs: /var/tmp/runz-tests/zonesd-<pid>-<tag>-<n>, zone cgroups beneath
//! the test's own) and socket, killed and removed on drop with the zones it made, even when
//! the test fails. A small HTTP/1.1 client talks to it over the Unix socket, and over TLS on
//! loopback (rustls, trusting a self-signed certificate made with `openssl req`).
//!
//! Covered: 401 without a token; each role allowed and refused; a revoked token refused at
//! once (an open event stream ends); an image imported, a zone created from a vmadm payload,
//! halted, booted, its stats read, an event read from /api/events, updated, rebooted,
//! snapshotted, shut down and deleted, zonesd still one thread; etherstubs and VNICs made and
//! deleted; a bad payload is a 400 naming every path with nothing made; odd input is never a
//! 5xx; the audit log has each change; a body over the limit is a 413; the OpenAPI document
//! served is docs/zonesd-openapi.json; loopback TCP, TLS on loopback, and TCP beyond loopback
//! refused without TLS.

mod common;
#[allow(dead_code)]
#[path = "common/registry.rs"]
mod registry;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, Links, ZoneHost};
use common::zonesd::{free_port, have_openssl, self_signed, tls_client, Zonesd};
use serde_json::{json, Value};
use zones::image::build;

/// How long a request may take (a create installs and a delete halts a zone).
const IO_TIMEOUT: Duration = Duration::from_secs(120);

/// A zonesd child (tests/common/zonesd.rs), with its TLS listener's port and client
/// configuration once a test has one.
struct Daemon {
    z: Zonesd,
    tcp: Option<(u16, Arc<rustls::ClientConfig>)>,
}

impl std::ops::Deref for Daemon {
    type Target = Zonesd;
    fn deref(&self) -> &Zonesd {
        &self.z
    }
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Daemon {
    /// zonesd on a new host (`tag` names the test), with `extra` flags.
    fn start(tag: &str, with_image: bool, extra: &[&str]) -> Daemon {
        let host = ZoneHost::new("zonesd", tag, with_image);
        Daemon {
            z: Zonesd::start(host, extra, None),
            tcp: None,
        }
    }

    fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let body = body.map(|b| b.to_string().into_bytes());
        self.raw(method, path, token, body.as_deref(), None)
    }

    /// One request on a new connection (`Connection: close`); `declared` overrides the
    /// Content-Length sent.
    fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        declared: Option<usize>,
    ) -> Resp {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: zonesd\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if body.is_some() || declared.is_some() {
            let n = declared.unwrap_or(body.map_or(0, <[u8]>::len));
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {n}\r\n"
            ));
        }
        head.push_str("\r\n");
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        exchange(&mut s, head.as_bytes(), body)
    }

    /// A request over TLS on the loopback port.
    fn tls_req(&self, method: &str, path: &str, token: Option<&str>) -> Resp {
        let (port, config) = self.tcp.clone().expect("started with --listen");
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        exchange(&mut tls, head.as_bytes(), None)
    }

    /// The zones in the store's index (none when it does not exist).
    fn zones_stored(&self) -> Vec<Value> {
        std::fs::read_to_string(self.host.root.join("etc/zones/index"))
            .ok()
            .map(|t| serde_json::from_str::<Value>(&t).unwrap())
            .map(|v| v["zones"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Sends `head` and `body` (a write the server cut short is fine: it may answer early), reads
/// the whole response.
fn exchange(s: &mut (impl Read + Write), head: &[u8], body: Option<&[u8]>) -> Resp {
    s.write_all(head).unwrap();
    if let Some(b) = body {
        let _ = s.write_all(b);
    }
    let _ = s.flush();
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify, or a reset after the answer.
            Err(_) if !data.is_empty() => break,
            Err(e) => panic!("reading the response: {e}"),
        }
    }
    parse(&data)
}

fn parse(data: &[u8]) -> Resp {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(data)));
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let mut body = data[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Resp { status, head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..nl])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            break;
        }
        let start = nl + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

#[test]
fn roles_tokens_limits_and_the_audit_log() {
    if !require_root() {
        return;
    }
    let mut links = Links(Vec::new());
    let d = Daemon::start("roles", false, &[]);
    let viewer = d.token("viewer", "v");
    let operator = d.token("operator", "o");
    let admin = d.token("admin", "a");

    // The socket is private.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&d.socket).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let tokens_file = d.host.root.join("etc/zones/zonesd/tokens.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&tokens_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let stored = std::fs::read_to_string(&tokens_file).unwrap();
    assert!(!stored.contains(&viewer), "a token stored in clear");

    // No token, an unknown one: 401 with the JSON error, on known and unknown paths.
    for path in ["/api/zones", "/api/openapi.json", "/api/nosuch"] {
        let r = d.req("GET", path, None, None);
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(r.json()["error"].as_str().unwrap().contains("bearer token"));
        assert!(r
            .head
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"));
    }
    assert_eq!(
        d.req("GET", "/api/zones", Some("zsd_0000"), None).status,
        401
    );

    // viewer reads; operator also changes zones; admin also images, links and tokens.
    for t in [&viewer, &operator, &admin] {
        let r = d.req("GET", "/api/zones", Some(t), None);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json(), json!([]));
        assert_eq!(d.req("GET", "/api/images", Some(t), None).status, 200);
        let r = d.req("GET", "/api/links", Some(t), None);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.json().is_array());
    }
    let r = d.req("POST", "/api/zones", Some(&viewer), Some(&json!({})));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("needs operator"));
    assert_eq!(
        d.req("POST", "/api/zones/nosuch/boot", Some(&viewer), None)
            .status,
        403
    );
    assert_eq!(
        d.req("POST", "/api/zones/nosuch/boot", Some(&operator), None)
            .status,
        404
    );
    assert_eq!(
        d.req("DELETE", "/api/images/nosuch", Some(&operator), None)
            .status,
        403
    );
    assert_eq!(
        d.req("GET", "/api/tokens", Some(&operator), None).status,
        403
    );
    // The admin gets through; the image does not exist: 404.
    assert_eq!(
        d.req("DELETE", "/api/images/nosuch", Some(&admin), None)
            .status,
        404
    );
    let r = d.req("GET", "/api/tokens", Some(&admin), None);
    assert_eq!(r.status, 200);
    let names: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, [json!("v"), json!("o"), json!("a")]);
    assert!(!String::from_utf8_lossy(&r.body).contains("sha256"));

    // Etherstubs and VNICs: admin's.
    let stub = d.host.link_name("rzv", "s");
    let vnic = d.host.link_name("rzv", "v");
    links.0.extend([vnic.clone(), stub.clone()]);
    let r = d.req(
        "POST",
        "/api/links",
        Some(&operator),
        Some(&json!({"etherstub": stub})),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.req(
        "POST",
        "/api/links",
        Some(&admin),
        Some(&json!({"vnic": "-x", "over": 1})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    let r = d.req(
        "POST",
        "/api/links",
        Some(&admin),
        Some(&json!({"etherstub": stub})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["class"], "etherstub", "{r:?}");
    let r = d.req(
        "POST",
        "/api/links",
        Some(&admin),
        Some(&json!({"vnic": vnic, "over": stub})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["class"], "vnic", "{r:?}");
    let shown = d.req("GET", "/api/links", Some(&viewer), None).json();
    assert!(
        shown
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["link"] == vnic.as_str()),
        "{shown}"
    );
    link_properties(&d, &vnic, &stub, &admin, &operator, &viewer);
    // A link of another class (a physical NIC) is not deleted.
    let other = shown.as_array().unwrap().iter().find(|l| {
        l["class"] != "etherstub"
            && l["class"] != "vnic"
            && !l["link"].as_str().unwrap().contains('/')
    });
    if let Some(l) = other {
        let path = format!("/api/links/{}", l["link"].as_str().unwrap());
        assert_eq!(
            d.req("DELETE", &path, Some(&admin), None).status,
            409,
            "{l}"
        );
    }
    assert_eq!(
        d.req("DELETE", &format!("/api/links/{vnic}"), Some(&admin), None)
            .status,
        204
    );
    assert_eq!(
        d.req("DELETE", &format!("/api/links/{stub}"), Some(&admin), None)
            .status,
        204
    );
    assert_eq!(
        d.req("DELETE", &format!("/api/links/{stub}"), Some(&admin), None)
            .status,
        404
    );

    // The OpenAPI document is docs/zonesd-openapi.json.
    let r = d.req("GET", "/api/openapi.json", Some(&viewer), None);
    assert_eq!(r.status, 200);
    let doc: Value = serde_json::from_str(include_str!("../docs/zonesd-openapi.json")).unwrap();
    assert_eq!(r.json(), doc);

    // A token made through the API works; revoked (API, then CLI), refused at once.
    let r = d.req(
        "POST",
        "/api/tokens",
        Some(&admin),
        Some(&json!({"role": "viewer", "name": "api-v"})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let api_v = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(d.req("GET", "/api/zones", Some(&api_v), None).status, 200);
    assert_eq!(
        d.req("DELETE", "/api/tokens/api-v", Some(&admin), None)
            .status,
        204
    );
    assert_eq!(d.req("GET", "/api/zones", Some(&api_v), None).status, 401);
    // An open event stream ends when its token is revoked.
    let sse = d.token("viewer", "sse");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let head = format!("GET /api/events HTTP/1.1\r\nHost: z\r\nConnection: close\r\nAuthorization: Bearer {sse}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains("text/event-stream") {
        assert!(Instant::now() < until, "no event stream: {got:?}");
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    d.token_cmd(&["revoke", "sse"]);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < until,
            "the stream goes on after revoke: {}",
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    d.token_cmd(&["revoke", "v"]);
    assert_eq!(d.req("GET", "/api/zones", Some(&viewer), None).status, 401);
    assert!(!d.token_cmd(&["list"]).contains(" v "));

    // A bad payload: 400 with every problem's path, nothing made.
    let bad = json!({"brand": "hvm", "ram": "lots", "bogus": 1,
                     "nics": [{"nic_tag": "x", "ip": "10.0.0.5"}]});
    let r = d.req("POST", "/api/zones", Some(&operator), Some(&bad));
    let paths = problem_paths(&r);
    for want in ["$.brand", "$.bogus", "$.nics[0].netmask", "$.image_uuid"] {
        assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
    }
    let r = d.req("POST", "/api/zones", Some(&operator), None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["problems"][0]["path"], "$");
    assert_eq!(d.zones_stored(), Vec::<Value>::new());
    assert_eq!(
        d.req("GET", "/api/zones", Some(&operator), None).json(),
        json!([])
    );
    assert!(
        !d.host.root.join("zones").exists()
            || std::fs::read_dir(d.host.root.join("zones"))
                .unwrap()
                .next()
                .is_none()
    );

    // Odd input is a 4xx with a JSON error, never a 5xx or a crash.
    let r = d.req("PUT", "/api/zones", Some(&operator), Some(&json!({})));
    assert_eq!(r.status, 405, "{r:?}");
    assert!(r.json()["error"].is_string());
    let r = d.req("GET", "/api/events?new=maybe", Some(&operator), None);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("new=maybe"));
    let bodies: [&[u8]; 13] = [
        b"",
        b"null",
        b"[]",
        b"{",
        b"\"x\"",
        b"{\"uuid\": 5}",
        b"{\"nics\": 5}",
        b"{\"nics\": [5, {\"ip\": []}]}",
        b"{\"image_uuid\": {}, \"ram\": -1}",
        b"{\"name\": []}",
        b"{\"role\": 1, \"name\": \"../x\"}",
        b"\xff\xfe{}",
        b"{\"tags\": {\"a\": {\"b\": 1}}, \"uuid\": \"zz\"}",
    ];
    for (method, path) in [
        ("POST", "/api/zones"),
        ("PATCH", "/api/zones/nosuch"),
        ("POST", "/api/zones/nosuch/snapshots"),
        ("POST", "/api/tokens"),
        ("DELETE", "/api/images/-rf"),
        ("GET", "/api/zones/..%2F..%2Fetc"),
        ("GET", "/api/zones/nosuch/stats"),
    ] {
        for b in bodies {
            let r = d.raw(method, path, Some(&admin), Some(b), None);
            assert!(
                (400..500).contains(&r.status),
                "{method} {path} {b:?}: {r:?}"
            );
            assert!(r.json()["error"].is_string(), "{r:?}");
        }
    }
    assert_eq!(d.zones_stored(), Vec::<Value>::new());

    // Over the body limit (1 MiB): 413, by the declared length and by the bytes sent.
    let big = vec![b' '; 64 << 10];
    let r = d.raw(
        "POST",
        "/api/zones",
        Some(&operator),
        Some(&big),
        Some(2 << 20),
    );
    assert_eq!(r.status, 413, "{r:?}");
    let mut huge = b"{\"alias\": \"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', (1 << 20) + 10));
    huge.extend_from_slice(b"\"}");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let head = format!("POST /api/zones HTTP/1.1\r\nHost: z\r\nConnection: close\r\nAuthorization: Bearer {operator}\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut chunked = format!("{:x}\r\n", huge.len()).into_bytes();
    chunked.extend_from_slice(&huge);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = exchange(&mut s, head.as_bytes(), Some(&chunked));
    assert_eq!(r.status, 413, "{r:?}");

    // Every change is in the audit log, with who, what and the result.
    let audit = d.audit();
    let find = |method: &str, path: &str, status: u16| {
        audit
            .iter()
            .find(|a| a["method"] == method && a["path"] == path && a["status"] == status)
            .unwrap_or_else(|| panic!("no audit line {method} {path} {status}: {audit:#?}"))
    };
    let a = find("POST", "/api/zones", 403);
    assert_eq!(a["token_name"], "v");
    assert_eq!(a["role"], "viewer");
    assert!(a["error"].as_str().unwrap().contains("needs operator"));
    let a = find("POST", "/api/zones", 400);
    assert_eq!(a["token_name"], "o");
    assert!(a["time"].as_str().unwrap().ends_with('Z'));
    find("POST", "/api/zones", 413);
    find("POST", "/api/tokens", 201);
    let a = find("DELETE", "/api/tokens/api-v", 204);
    assert_eq!(a["target"], "api-v");
    assert_eq!(a["token_name"], "a");
    assert!(a["error"].is_null());
    find("DELETE", "/api/images/nosuch", 404);
    assert!(
        audit.iter().all(|a| a["method"] != "GET"),
        "reads are not audited"
    );
}

#[test]
fn beyond_loopback_needs_tls() {
    if !require_root() {
        return;
    }
    let host = ZoneHost::new("zonesd", "notls", false);
    let out = Command::new(bin("zonesd"))
        .arg("-R")
        .arg(&host.root)
        .args([
            "--socket",
            host.root.join("s").to_str().unwrap(),
            "--listen",
            "0.0.0.0:1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "zonesd: --listen 0.0.0.0:1: not a loopback address; serving beyond loopback needs TLS: give --tls-cert FILE and --tls-key FILE\n"
    );
    assert!(!host.root.join("s").exists());
}

/// Whether openssl is installed; otherwise the test says why it is skipped.
#[test]
fn tls_on_loopback_with_a_token() {
    if !require_root() || !have_openssl() {
        return;
    }
    let certs = ZoneHost::new("zonesd", "certs", false);
    let (cert, key) = self_signed(&certs.root);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = Daemon::start(
        "tls",
        false,
        &[
            "--listen",
            &listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    d.tcp = Some((port, tls_client(&cert)));
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "not listening on {listen}: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = d.token("viewer", "tls");
    let r = d.tls_req("GET", "/api/zones", None);
    assert_eq!(r.status, 401, "{r:?}");
    let r = d.tls_req("GET", "/api/zones", Some(&t));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!([]));
    // Plain HTTP to the TLS port gets no API answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let _ = plain.write_all(
        format!("GET /api/zones HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\r\n")
            .as_bytes(),
    );
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{got:?}");
}

#[test]
fn loopback_tcp_without_tls() {
    if !require_root() {
        return;
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start("tcp", false, &["--listen", &listen]);
    let until = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => assert!(Instant::now() < until, "{listen}: {e}: {}", d.log()),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let t = d.token("viewer", "tcp");
    let head = format!("GET /api/zones HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {t}\r\n\r\n");
    let r = exchange(&mut s, head.as_bytes(), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!([]));
    assert!(d.log().contains(&format!("http://{listen}")), "{}", d.log());
}

/// The busybox image imported through the API (`POST /api/images`, admin); its id.
fn import_image(d: &Daemon, admin: &str, operator: &str) -> String {
    let tgz = d.host.root.join("rootfs.tar.gz");
    std::fs::write(
        &tgz,
        build::gzip(&build::tar_rootfs(&d.host.image).unwrap()),
    )
    .unwrap();
    let body = json!({"source": tgz, "rootfs": true, "name": "apibase"});
    let r = d.req("POST", "/api/images", Some(operator), Some(&body));
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.req(
        "POST",
        "/api/images",
        Some(admin),
        Some(&json!({"source": "rel/x", "nme": 1})),
    );
    let paths = problem_paths(&r);
    assert_eq!(paths, ["$.nme", "$.source"]);
    let r = d.req("POST", "/api/images", Some(admin), Some(&body));
    assert_eq!(r.status, 201, "{r:?}");
    let img = r.json();
    assert_eq!(img["name"], "apibase", "{img}");
    let list = d.req("GET", "/api/images", Some(operator), None).json();
    assert_eq!(list[0]["id"], img["id"], "{list}");
    img["id"].as_str().unwrap().to_string()
}

/// The `$.x` paths of a 400's problems.
fn problem_paths(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 400, "{r:?}");
    let mut paths: Vec<String> = r.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

/// The snapshot names of zone `uuid`, through the API.
fn snapshot_names(d: &Daemon, uuid: &str, token: &str) -> Vec<String> {
    let r = d.req(
        "GET",
        &format!("/api/zones/{uuid}/snapshots"),
        Some(token),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Zone `uuid` (running, snapshot s1 taken) rolled back and its snapshots deleted through
/// the API, the effect seen in a file of its root on the host.
fn rollback_and_delete_snapshots(d: &Daemon, uuid: &str, op: &str, viewer: &str) {
    let z = format!("/api/zones/{uuid}");
    let zonepath = d.req("GET", &z, Some(viewer), None).json()["zonepath"]
        .as_str()
        .unwrap()
        .to_string();
    let marker = d
        .host
        .root
        .join(zonepath.trim_start_matches('/'))
        .join("root/etc/api-marker");
    let write = |text: &str| std::fs::write(&marker, text).unwrap();
    let read = || std::fs::read_to_string(&marker).unwrap_or_else(|e| format!("<{e}>"));
    write("one");
    let r = d.req(
        "POST",
        &format!("{z}/snapshots"),
        Some(op),
        Some(&json!({"name": "s2"})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    write("two");
    assert_eq!(read(), "two");

    // Refusals: a viewer; a newer snapshot without recursive (zoneadm's message); an unknown
    // snapshot; a bad body.
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/s2/rollback"),
        Some(viewer),
        None,
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/s1/rollback"),
        Some(op),
        None,
    );
    assert_eq!(r.status, 409, "{r:?}");
    let msg = r.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("newer snapshots exist (s2)"), "{msg}");
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/nosuch/rollback"),
        Some(op),
        None,
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no snapshot 'nosuch'"),
        "{r:?}"
    );
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/s2/rollback"),
        Some(op),
        Some(&json!({"recursive": "yes", "force": true})),
    );
    assert_eq!(problem_paths(&r), ["$.force", "$.recursive"]);
    assert_eq!(read(), "two", "a refused rollback changed the root");

    // Rollback to s2 (the newest): the file as it was; the zone halted and booted again.
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/s2/rollback"),
        Some(op),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "running", "{r:?}");
    assert_eq!(read(), "one");

    // Recursive: back to s1 over s3, which goes; the marker did not exist at s1.
    let r = d.req(
        "POST",
        &format!("{z}/snapshots"),
        Some(op),
        Some(&json!({"name": "s3"})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(snapshot_names(d, uuid, viewer), ["s1", "s2", "s3"]);
    let r = d.req(
        "POST",
        &format!("{z}/snapshots/s2/rollback"),
        Some(op),
        Some(&json!({"recursive": true})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(snapshot_names(d, uuid, viewer), ["s1", "s2"]);

    // Delete: a viewer refused; s1 gone from the list; again: 404.
    let r = d.req("DELETE", &format!("{z}/snapshots/s1"), Some(viewer), None);
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.req("DELETE", &format!("{z}/snapshots/s1"), Some(op), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(snapshot_names(d, uuid, viewer), ["s2"]);
    let r = d.req("DELETE", &format!("{z}/snapshots/s1"), Some(op), None);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(read(), "one");
}

/// A VNIC's maxbw set, read back through the API and `dladm show-linkprop`, and reset;
/// refusals (role, bad property, an etherstub, an unknown link).
fn link_properties(d: &Daemon, vnic: &str, stub: &str, admin: &str, operator: &str, viewer: &str) {
    let path = format!("/api/links/{vnic}");
    let dladm_maxbw = || {
        d.host
            .ok(
                "dladm",
                &["show-linkprop", "-c", "-o", "value", "-p", "maxbw", vnic],
            )
            .trim()
            .to_string()
    };
    let r = d.req(
        "PATCH",
        &path,
        Some(operator),
        Some(&json!({"maxbw": "100M"})),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = d.req(
        "PATCH",
        &path,
        Some(admin),
        Some(&json!({"maxbw": "100M", "thatname": "1", "priority": "urgent", "mtu": []})),
    );
    assert_eq!(problem_paths(&r), ["$.mtu", "$.priority", "$.thatname"]);
    assert_eq!(dladm_maxbw(), "--", "a refused PATCH changed the link");

    let r = d.req(
        "PATCH",
        &path,
        Some(admin),
        Some(&json!({"maxbw": "100M", "protection": "mac-nospoof,ip-nospoof", "allowed-ips": "10.0.0.5"})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let shown = dladm_maxbw();
    assert!(shown.starts_with("100"), "{shown}");
    assert_eq!(r.json()["props"]["maxbw"], shown.as_str(), "{r:?}");
    assert_eq!(
        r.json()["props"]["protection"],
        "mac-nospoof,ip-nospoof",
        "{r:?}"
    );
    let one = d.req("GET", &path, Some(viewer), None);
    assert_eq!(one.status, 200, "{one:?}");
    assert_eq!(one.json()["class"], "vnic");
    assert_eq!(one.json()["props"]["maxbw"], shown.as_str());
    assert_eq!(one.json()["props"]["allowed-ips"], "10.0.0.5");
    let all = d.req("GET", "/api/links", Some(viewer), None).json();
    let row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["link"] == vnic)
        .unwrap();
    assert_eq!(row["props"]["maxbw"], shown.as_str(), "{row}");

    // null resets (dladm reset-linkprop).
    let r = d.req(
        "PATCH",
        &path,
        Some(admin),
        Some(&json!({"maxbw": null, "protection": null, "allowed-ips": null})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["props"]["maxbw"], "--", "{r:?}");
    assert_eq!(dladm_maxbw(), "--");

    let r = d.req(
        "PATCH",
        &format!("/api/links/{stub}"),
        Some(admin),
        Some(&json!({"maxbw": "1M"})),
    );
    assert_eq!(r.status, 409, "{r:?}");
    let r = d.req(
        "PATCH",
        "/api/links/nosuchlink0",
        Some(admin),
        Some(&json!({"maxbw": "1M"})),
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        d.req("GET", "/api/links/nosuchlink0", Some(viewer), None)
            .status,
        404
    );
}

/// Reads `GET /api/events?zone=Z` until an event with `state` arrives (30 s at most); it.
fn wait_event(d: &Daemon, token: &str, zone: &str, state: &str) -> Value {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let head = format!(
        "GET /api/events?zone={zone} HTTP/1.1\r\nHost: z\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < until {
        if let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                if let Ok(ev) = serde_json::from_str::<Value>(data) {
                    if ev["state"] == state {
                        assert!(text.contains("text/event-stream"), "{text}");
                        return ev;
                    }
                }
            }
        }
    }
    panic!("no {state} event for {zone} in 30 s: {text}");
}

#[test]
fn a_zone_lives_its_whole_life_through_the_api() {
    if !require_root() {
        return;
    }
    let d = Daemon::start("life", true, &[]);
    let op = d.token("operator", "op");
    let viewer = d.token("viewer", "view");
    let admin = d.token("admin", "adm");
    let image = import_image(&d, &admin, &op);
    let uuid = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        d.host.seq
    );
    // Given in upper case: vmadm keeps it in lower case, the API finds it either way.
    let payload = json!({"uuid": uuid.to_ascii_uppercase(), "alias": "apiweb", "brand": "joyent",
                         "image_uuid": image, "ram": 256, "autoboot": false});

    // Create: configured, installed and booted (as vmadm create does).
    let r = d.req("POST", "/api/zones", Some(&op), Some(&payload));
    assert_eq!(r.status, 201, "{r:?}\n{}", d.log());
    let doc = r.json();
    assert_eq!(doc["uuid"], uuid.as_str());
    assert_eq!(doc["alias"], "apiweb");
    assert_eq!(doc["ram"], 256);
    assert_eq!(doc["state"], "running");
    let r = d.req("POST", "/api/zones", Some(&op), Some(&payload));
    assert!(
        [400, 409].contains(&r.status),
        "a second create with the same uuid: {r:?}"
    );

    // Read it as a viewer; halt it; stats of a stopped zone are refused.
    let r = d.req("GET", &format!("/api/zones/{uuid}"), Some(&viewer), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["alias"], "apiweb");
    let list = d.req("GET", "/api/zones", Some(&viewer), None).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = d.req("POST", &format!("/api/zones/{uuid}/halt"), Some(&op), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "stopped");
    assert_eq!(
        d.req(
            "GET",
            &format!("/api/zones/{uuid}/stats"),
            Some(&viewer),
            None
        )
        .status,
        409
    );

    // Boot; its stats; its running event.
    let r = d.req("POST", &format!("/api/zones/{uuid}/boot"), Some(&op), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "running");
    let r = d.req(
        "GET",
        &format!("/api/zones/{uuid}/stats"),
        Some(&viewer),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let st = r.json();
    assert_eq!(st["zonename"], uuid.as_str());
    assert!(st["physical-memory"]["used"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["physical-memory"]["cap"], 256u64 << 20, "{st}");
    assert!(st["lwps"]["used"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["cpu"]["used"].is_number(), "{st}");
    let ev = wait_event(&d, &viewer, &uuid, "running");
    assert_eq!(ev["zone"], uuid.as_str());
    assert!(ev["time"].is_string());

    // Update (checked first: a bad key is a 400 at its path), reboot.
    let z = format!("/api/zones/{uuid}");
    let r = d.req(
        "PATCH",
        &z,
        Some(&op),
        Some(&json!({"uuid": "x", "bogus": 1})),
    );
    let paths = problem_paths(&r);
    assert!(
        paths.iter().any(|p| p == "$.uuid") && paths.iter().any(|p| p == "$.bogus"),
        "{paths:?}"
    );
    let r = d.req(
        "PATCH",
        &z,
        Some(&op),
        Some(&json!({"alias": "apiweb2", "ram": 384})),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["alias"], "apiweb2");
    assert_eq!(r.json()["ram"], 384);
    let r = d.req("POST", &format!("{z}/reboot"), Some(&op), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "running");

    // A snapshot.
    let r = d.req(
        "POST",
        &format!("/api/zones/{uuid}/snapshots"),
        Some(&op),
        Some(&json!({"name": "-x"})),
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["problems"][0]["path"], "$.name");
    let r = d.req(
        "POST",
        &format!("/api/zones/{uuid}/snapshots"),
        Some(&op),
        Some(&json!({"name": "s1"})),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["name"], "s1");
    let r = d.req(
        "GET",
        &format!("/api/zones/{uuid}/snapshots"),
        Some(&viewer),
        None,
    );
    assert_eq!(r.json()[0]["name"], "s1", "{r:?}");
    rollback_and_delete_snapshots(&d, &uuid, &op, &viewer);

    // Shut down (its init asked to stop), delete: gone.
    let r = d.req(
        "POST",
        &format!("/api/zones/{uuid}/shutdown"),
        Some(&op),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "stopped");
    wait_event(&d, &viewer, &uuid, "installed");
    let r = d.req("DELETE", &format!("/api/zones/{uuid}"), Some(&op), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        d.req("GET", &format!("/api/zones/{uuid}"), Some(&viewer), None)
            .status,
        404
    );
    assert_eq!(
        d.req("GET", "/api/zones", Some(&viewer), None).json(),
        json!([])
    );
    assert_eq!(d.zones_stored(), Vec::<Value>::new());

    // zonesd ran every zone action as a child tool: it is still one thread (the fork rule).
    let pid = d.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nThreads:\t1\n"), "{status}");

    // Each change in the audit log, by the operator, with its result.
    let audit = d.audit();
    let seen: Vec<(String, u64)> = audit
        .iter()
        .filter(|a| a["token_name"] == "op")
        .map(|a| {
            (
                format!(
                    "{} {}",
                    a["method"].as_str().unwrap(),
                    a["path"].as_str().unwrap()
                ),
                a["status"].as_u64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("POST /api/zones".to_string(), 201),
        ("POST /api/zones".to_string(), 400),
        (format!("POST {z}/boot"), 200),
        (format!("PATCH {z}"), 400),
        (format!("PATCH {z}"), 200),
        (format!("POST {z}/reboot"), 200),
        (format!("POST {z}/snapshots"), 201),
        (format!("POST {z}/snapshots/s1/rollback"), 409),
        (format!("POST {z}/snapshots/s2/rollback"), 200),
        (format!("DELETE {z}/snapshots/s1"), 204),
        (format!("POST {z}/halt"), 200),
        (format!("POST {z}/shutdown"), 200),
        (format!("DELETE {z}"), 204),
    ] {
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
}

/// Found fuzzing the API (integration/zonesd-fuzz.sh and by hand after it): a path parameter
/// that is not UTF-8 got axum's plain-text 400, and deleting an image that does not exist got
/// imgadm's refusal as a 409; both are the JSON 404 the document promises.
#[test]
fn unknown_names_in_paths_are_json_404s() {
    if !require_root() {
        return;
    }
    let d = Daemon::start("paths", false, &[]);
    let admin = d.token("admin", "adm");
    for (method, path) in [
        ("GET", "/api/zones/%ff"),
        ("DELETE", "/api/zones/a%c3"),
        ("POST", "/api/zones/%80/boot"),
        ("GET", "/api/zones/%fe%ff/stats"),
        ("DELETE", "/api/images/%ff"),
        ("DELETE", "/api/images/nosuchimage"),
        ("DELETE", "/api/links/%ff"),
        ("DELETE", "/api/tokens/%ff"),
    ] {
        let r = d.req(method, path, Some(&admin), None);
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{method} {path}: {r:?}"
        );
        assert!(r.json()["error"].is_string(), "{method} {path}: {r:?}");
    }
    // The refusals are audited like any change, with their status.
    let audit = d.audit();
    assert!(
        audit
            .iter()
            .any(|a| a["path"] == "/api/images/nosuchimage" && a["status"] == 404),
        "{audit:?}"
    );
}

/// Registry credentials on `POST /api/images`: checked (each refusal at `$.creds`, never
/// quoting them), handed to imgadm for a real pull from a registry with htpasswd auth
/// (tests/common/registry.rs), and never in a response or the audit log.
#[test]
fn image_import_credentials_are_used_and_never_logged() {
    if !require_root() {
        return;
    }
    let d = Daemon::start("creds", true, &[]);
    let admin = d.token("admin", "adm");
    let pass = format!("pw{}secret", std::process::id());
    let creds = format!("zsd:{pass}");
    let reg = registry::LocalRegistry::start("zonesd", Some(&creds));
    let layout = d.host.root.join("layout");
    let cfg = zones::image::ImageConfig {
        entrypoint: vec![],
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin:/sbin".into()],
        workdir: None,
        user: None,
    };
    build::write_oci_layout(
        &[build::tar_rootfs(&d.host.image).unwrap()],
        &layout,
        "creds",
        &cfg,
    )
    .unwrap();
    registry::push_layout(&reg, &layout, "private/busybox", "v1");
    let source = format!("docker://{}/private/busybox:v1", reg.addr);
    let import = |body: Value| d.req("POST", "/api/images", Some(&admin), Some(&body));

    let long = format!("u:{}", "x".repeat(1100));
    for (body, why) in [
        (
            json!({"source": "/var/tmp/x.tar", "creds": creds}),
            "docker:// source only",
        ),
        (
            json!({"source": source, "creds": "zsd-no-colon"}),
            "USER:PASSWORD",
        ),
        (
            json!({"source": source, "creds": format!("zsd:{pass}\nx")}),
            "newline",
        ),
        (
            json!({"source": source, "creds": long}),
            "longer than 1024 bytes",
        ),
        (
            json!({"source": source, "creds": {"user": pass}}),
            "USER:PASSWORD",
        ),
    ] {
        let r = import(body.clone());
        assert_eq!(problem_paths(&r), ["$.creds"], "{body}");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            text.contains(why) && !text.contains(&pass),
            "{body}: {text}"
        );
    }
    // Without credentials, and with wrong ones: the registry refuses (imgadm's message).
    let r = import(json!({"source": source, "insecure": true}));
    assert_eq!(r.status, 409, "{r:?}");
    let wrong = format!("wrong{}pw", std::process::id());
    let r = import(json!({"source": source, "insecure": true, "creds": format!("zsd:{wrong}")}));
    assert_eq!(r.status, 409, "{r:?}");
    assert!(!String::from_utf8_lossy(&r.body).contains(&wrong), "{r:?}");
    // With them: pulled and imported.
    let r = import(json!({"source": source, "insecure": true, "creds": creds, "name": "private"}));
    assert_eq!(r.status, 201, "{r:?}\n{}", d.log());
    let img = r.json();
    assert_eq!(img["name"], "private", "{img}");
    let id = img["id"].as_str().unwrap();
    let r = d.req("DELETE", &format!("/api/images/{id}"), Some(&admin), None);
    assert_eq!(r.status, 204, "{r:?}");

    // Every import is audited; no password in the log (nor in zonesd's own output).
    let audit =
        std::fs::read_to_string(d.host.root.join("var/log/zones/zonesd-audit.log")).unwrap();
    let imports = audit.lines().filter(|l| l.contains("\"POST\"")).count();
    assert_eq!(imports, 8, "{audit}");
    for secret in [&pass, &wrong] {
        assert!(!audit.contains(secret.as_str()), "{audit}");
        assert!(!d.log().contains(secret.as_str()), "{}", d.log());
    }
}

/// One request with extra header lines (`Name: value`), on the Unix socket.
fn req_headers(d: &Daemon, method: &str, path: &str, headers: &[&str]) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: zonesd\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(&format!("{h}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    exchange(&mut s, head.as_bytes(), None)
}

#[test]
fn the_web_console_is_served_without_a_token_and_cors_is_opt_in() {
    if !require_root() {
        return;
    }
    let allowed = "http://127.0.0.1:9444";
    let d = Daemon::start("web", false, &["--cors-origin", allowed]);
    let viewer = d.token("viewer", "v");

    // The console's files: no token, their types, a CSP allowing only their own script.
    for (path, ctype) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let r = d.req("GET", path, None, None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let head = r.head.to_ascii_lowercase();
        assert!(head.contains(&format!("content-type: {ctype}")), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self';"),
            "{head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(r.body.len() > 100, "{path}: {} bytes", r.body.len());
    }
    let page = String::from_utf8_lossy(&d.req("GET", "/", None, None).body).into_owned();
    assert!(page.contains("<script src=\"/app.js\""), "{page}");
    // Anything else still needs a token.
    for path in ["/index.html", "/favicon.ico", "/api/zones"] {
        assert_eq!(d.req("GET", path, None, None).status, 401, "{path}");
    }

    // A preflight from the allowed origin: answered before any token, naming the headers.
    let pre = |origin: &str| {
        req_headers(
            &d,
            "OPTIONS",
            "/api/zones",
            &[
                &format!("Origin: {origin}"),
                "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: authorization, content-type",
            ],
        )
    };
    let r = pre(allowed);
    assert_eq!(r.status, 204, "{r:?}");
    let head = r.head.to_ascii_lowercase();
    assert!(
        head.contains(&format!("access-control-allow-origin: {allowed}")),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization"),
        "{head}"
    );
    assert!(!head.contains("access-control-allow-credentials"), "{head}");
    // Another origin: no CORS headers, and the token check as usual.
    let r = pre("http://127.0.0.1:9445");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(!r
        .head
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));

    // A call from the allowed origin still needs its token; with it, the origin is allowed.
    let origin = format!("Origin: {allowed}");
    let r = req_headers(&d, "GET", "/api/zones", &[&origin]);
    assert_eq!(r.status, 401, "{r:?}");
    let auth = format!("Authorization: Bearer {viewer}");
    let r = req_headers(&d, "GET", "/api/zones", &[&origin, &auth]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r
        .head
        .to_ascii_lowercase()
        .contains(&format!("access-control-allow-origin: {allowed}")));
    let r = req_headers(
        &d,
        "GET",
        "/api/zones",
        &["Origin: http://evil.example", &auth],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.head.to_ascii_lowercase().contains("access-control-allow"));

    // A bad --cors-origin is a usage error, named.
    let out = Command::new(bin("zonesd"))
        .args(["-R", d.host.root.to_str().unwrap(), "--cors-origin", "*"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cors-origin \"*\""), "{err}");
}
