//! The zone console over zonesd's WebSocket (`GET /api/zones/{uuid}/console`): a busybox zone
//! booted through the API, its console opened over the Unix socket (the token in the
//! Authorization header) and over TLS on loopback (the token as a subprotocol, as a browser
//! sends it), a command run on it, its window resized; no token, a bad token, a viewer and a
//! plain GET refused; a text frame that is not a resize closes it;
//! a revoked token and a halted zone close an open console; a halted zone's console is a 409;
//! the audit log has each opening and close; zonesd keeps one thread and no console socket
//! open after. The zonesd child runs on its own alternate root (tests/common/zonehost.rs) and
//! is killed, its zones halted and its root removed on drop, even when the test fails.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::ZoneHost;
use common::zonesd::{free_port, self_signed, tls_client, Zonesd};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};
use zones::image::build;

/// How long a request may take (a create installs and boots a zone).
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the console may take to answer a command.
const CONSOLE_WAIT: Duration = Duration::from_secs(30);

/// A zonesd child (tests/common/zonesd.rs) serving the Unix socket and TLS on a loopback
/// port.
struct Daemon {
    z: Zonesd,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

impl std::ops::Deref for Daemon {
    type Target = Zonesd;
    fn deref(&self) -> &Zonesd {
        &self.z
    }
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        let host = ZoneHost::new("zonesd", tag, true);
        let (cert, key) = self_signed(&host.root);
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let extra = [
            "--listen",
            &listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        Daemon {
            z: Zonesd::start(host, &extra, Some(port)),
            port,
            tls: tls_client(&cert),
        }
    }

    /// One plain request over the Unix socket: its status and JSON body.
    fn req(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: zonesd\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut data = Vec::new();
        s.read_to_end(&mut data).unwrap();
        let text = String::from_utf8_lossy(&data);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// How many sockets zonesd has open (listeners and connections).
    fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits (10 s at most) until zonesd has `n` sockets open; how many it has.
    fn sockets_settle(&self, n: usize) -> usize {
        let until = Instant::now() + Duration::from_secs(10);
        while self.sockets() != n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.sockets()
    }
}

/// A console client over any stream.
struct Console<S: Read + Write> {
    ws: WebSocket<S>,
    out: Vec<u8>,
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;
type Handshake<S> = Result<
    (WebSocket<S>, tungstenite::handshake::client::Response),
    tungstenite::HandshakeError<tungstenite::ClientHandshake<S>>,
>;

/// A console opened, its handshake's answer; or the HTTP status refusing it.
fn opened<S: Read + Write>(
    r: Handshake<S>,
) -> Result<(Console<S>, tungstenite::handshake::client::Response), u16> {
    match r {
        Ok((ws, resp)) => Ok((Console::new(ws), resp)),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("not an HTTP refusal: {e}"),
    }
}

/// The status refusing a console.
fn refused<S: Read + Write>(
    r: Result<(Console<S>, tungstenite::handshake::client::Response), u16>,
) -> u16 {
    match r {
        Ok((_, resp)) => panic!("opened: {resp:?}"),
        Err(status) => status,
    }
}

/// The handshake request: `auth` as a header, and the subprotocols offered.
fn console_request(
    host: &str,
    uuid: &str,
    header: Option<&str>,
    protocols: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut r = format!("ws://{host}/api/zones/{uuid}/console")
        .into_client_request()
        .unwrap();
    if let Some(t) = header {
        r.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
    }
    if let Some(p) = protocols {
        r.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    r
}

type Opened<S> = Result<(Console<S>, tungstenite::handshake::client::Response), u16>;

impl Daemon {
    /// A console over the Unix socket.
    fn unix_open(
        &self,
        uuid: &str,
        header: Option<&str>,
        protocols: Option<&str>,
    ) -> Opened<UnixStream> {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        opened(tungstenite::client(
            console_request("zonesd", uuid, header, protocols),
            s,
        ))
    }

    /// A console over TLS on loopback, the token as a subprotocol only (a browser's way).
    fn tls_open(&self, uuid: &str, protocols: &str) -> Opened<Tls> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // The TLS handshake with a long timeout, then short reads for the console.
        tls.sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        tls.sock
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let host = format!("localhost:{}", self.port);
        opened(tungstenite::client(
            console_request(&host, uuid, None, Some(protocols)),
            tls,
        ))
    }
}

/// What ended a read.
#[derive(Debug, PartialEq)]
enum Closed {
    Frame(Option<(CloseCode, String)>),
    Gone,
}

impl<S: Read + Write> Console<S> {
    fn new(ws: WebSocket<S>) -> Self {
        Console {
            ws,
            out: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.ws.send(Message::binary(bytes.to_vec())).unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// Reads one message (up to a second): Ok(Some(text frame)), Ok(None) for binary or
    /// nothing, Err when the console closed.
    fn read_once(&mut self) -> Result<Option<String>, Closed> {
        match self.ws.read() {
            Ok(Message::Binary(b)) => {
                self.out.extend_from_slice(&b);
                Ok(None)
            }
            Ok(Message::Text(t)) => Ok(Some(t.as_str().to_string())),
            Ok(Message::Close(f)) => Err(Closed::Frame(
                f.map(|f| (f.code, f.reason.as_str().to_string())),
            )),
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(_) => Err(Closed::Gone),
        }
    }

    /// Sends Enter (busybox init asks for it on the console), then the command, again every
    /// 5 s, until `want` comes back (30 s at most).
    fn run(&mut self, cmd: &str, want: &str) {
        let until = Instant::now() + CONSOLE_WAIT;
        let mut next = Instant::now();
        while !self.text().contains(want) {
            assert!(
                Instant::now() < until,
                "no {want:?} on the console: {:?}",
                self.text()
            );
            if Instant::now() >= next {
                self.send(b"\r");
                std::thread::sleep(Duration::from_millis(200));
                self.send(cmd.as_bytes());
                next = Instant::now() + Duration::from_secs(5);
            }
            if let Err(c) = self.read_once() {
                panic!("the console closed ({c:?}): {:?}", self.text());
            }
        }
    }

    /// Reads until the console closes (`within`); how.
    fn until_closed(&mut self, within: Duration) -> Closed {
        let until = Instant::now() + within;
        loop {
            assert!(
                Instant::now() < until,
                "the console is still open after {within:?}"
            );
            if let Err(c) = self.read_once() {
                return c;
            }
        }
    }
}

#[test]
fn a_zones_console_over_a_websocket() {
    if !require_root() {
        return;
    }
    let d = Daemon::start("console");
    let admin = d.token("admin", "adm");
    let op = d.token("operator", "op");
    let op2 = d.token("operator", "op2");
    let viewer = d.token("viewer", "view");

    // A busybox zone booted through the API.
    let tgz = d.host.root.join("rootfs.tar.gz");
    std::fs::write(
        &tgz,
        build::gzip(&build::tar_rootfs(&d.host.image).unwrap()),
    )
    .unwrap();
    let (st, img) = d.req(
        "POST",
        "/api/images",
        &admin,
        Some(&json!({"source": tgz, "rootfs": true, "name": "conbase"})),
    );
    assert_eq!(st, 201, "{img}\n{}", d.log());
    let uuid = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        d.host.seq
    );
    let payload = json!({"uuid": uuid, "alias": "con", "brand": "joyent",
                         "image_uuid": img["id"], "ram": 256, "autoboot": false});
    let (st, doc) = d.req("POST", "/api/zones", &op, Some(&payload));
    assert_eq!(st, 201, "{doc}\n{}", d.log());
    assert_eq!(doc["state"], "running", "{doc}");
    // zonesd's sockets at rest: its listeners and the runtime's own (signals).
    std::thread::sleep(Duration::from_millis(300));
    let sockets = d.sockets();

    // Refused: no token (401), a bad subprotocol token (401), a viewer (403), not a
    // WebSocket (400), no such zone (404).
    let offer = |t: &str| format!("zonesd.console, bearer.{t}");
    assert_eq!(
        refused(d.unix_open(&uuid, None, Some("zonesd.console"))),
        401
    );
    assert_eq!(
        refused(d.unix_open(&uuid, None, Some(&offer("zsd_bad")))),
        401
    );
    assert_eq!(refused(d.tls_open(&uuid, &offer("zsd_bad"))), 401);
    assert_eq!(
        refused(d.unix_open(&uuid, None, Some(&offer(&viewer)))),
        403
    );
    assert_eq!(refused(d.unix_open(&uuid, Some(&viewer), None)), 403);
    let (st, e) = d.req("GET", &format!("/api/zones/{uuid}/console"), &op, None);
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("WebSocket"), "{e}");
    assert_eq!(refused(d.unix_open("no-such-zone", Some(&op), None)), 404);

    // Over the Unix socket, the token in the header: a command's output comes back.
    let (mut unix, resp) = d
        .unix_open(&uuid, Some(&op), Some("zonesd.console"))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "zonesd.console");
    unix.run("echo zonesd-$((6*7))\n", "zonesd-42");
    // A resize frame sets the console's window size (the shell's stty sees it).
    unix.ws
        .send(Message::text(r#"{"resize":[100,30]}"#))
        .unwrap();
    unix.run("echo size-$(stty size | tr ' ' x)\n", "size-30x100");

    // Over TLS, the token as a subprotocol only (a browser's way): the answer names
    // zonesd.console, never the token; both consoles see the zone's output.
    let (mut tls, resp) = d.tls_open(&uuid, &offer(&op2)).unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "zonesd.console");
    assert!(!format!("{:?}", resp.headers()).contains(&op2));
    tls.run("echo tls-$((7*6))\n", "tls-42");
    unix.run("", "tls-42");

    // A console the client closes: zonesd lets go of its console connection, the zone runs.
    let (mut third, _) = d.unix_open(&uuid, Some(&op), None).unwrap();
    third.run("", "tls-42");
    assert_eq!(
        d.sockets_settle(sockets + 6),
        sockets + 6,
        "three consoles: a WebSocket and a console connection each"
    );
    third.ws.close(None).unwrap();
    let _ = third.until_closed(Duration::from_secs(5));
    drop(third);
    assert_eq!(d.sockets_settle(sockets + 4), sockets + 4);
    // A text frame that is not a resize closes the console (1003).
    let (mut fourth, _) = d.unix_open(&uuid, Some(&op), None).unwrap();
    fourth.ws.send(Message::text("ls")).unwrap();
    let how = fourth.until_closed(Duration::from_secs(5));
    assert!(
        matches!(&how, Closed::Frame(Some((CloseCode::Unsupported, _)))),
        "{how:?}"
    );
    drop(fourth);
    assert_eq!(d.sockets_settle(sockets + 4), sockets + 4);

    // op2 revoked: its console closes within about a second (1008); the other stays.
    let revoked_at = Instant::now();
    d.token_cmd(&["revoke", "op2"]);
    let how = tls.until_closed(Duration::from_secs(5));
    assert!(
        revoked_at.elapsed() < Duration::from_secs(3),
        "{:?}",
        revoked_at.elapsed()
    );
    assert!(
        matches!(&how, Closed::Frame(Some((CloseCode::Policy, r))) if r.contains("revoked")),
        "{how:?}"
    );
    unix.run("echo still-$((40+2))\n", "still-42");

    // The zone halted: the open console closes (1000), a new one is a 409.
    let (st, doc) = d.req("POST", &format!("/api/zones/{uuid}/halt"), &op, None);
    assert_eq!(st, 200, "{doc}");
    let how = unix.until_closed(Duration::from_secs(30));
    assert!(
        matches!(&how, Closed::Frame(Some((CloseCode::Normal, _)))),
        "{how:?}"
    );
    assert_eq!(refused(d.unix_open(&uuid, Some(&op), None)), 409);
    assert_eq!(refused(d.tls_open(&uuid, &offer(&op))), 409);

    // The audit log: each opening (101) and refusal by a token, and each close with the
    // bytes relayed each way.
    let path = format!("/api/zones/{uuid}/console");
    let audit: Vec<Value> = d
        .audit()
        .into_iter()
        .filter(|a| a["path"] == path.as_str())
        .collect();
    let opened = |who: &str, status: u64| {
        audit
            .iter()
            .any(|a| a["token_name"] == who && a["status"] == status && a["console"].is_null())
    };
    assert!(opened("op", 101) && opened("op2", 101), "{audit:?}");
    assert!(opened("view", 403), "{audit:?}");
    assert!(opened("op", 409), "{audit:?}");
    let closed: Vec<&Value> = audit
        .iter()
        .filter(|a| a["console"]["closed"] == true)
        .collect();
    let ends = |who: &str| -> Vec<String> {
        let mut v: Vec<String> = closed
            .iter()
            .filter(|a| a["token_name"] == who)
            .map(|a| a["console"]["ended_by"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ends("op2"), ["revoked"], "{audit:?}");
    assert_eq!(ends("op"), ["bad-frame", "client", "zone"], "{audit:?}");
    for c in closed
        .iter()
        .filter(|c| c["console"]["ended_by"] != "bad-frame")
    {
        assert!(c["console"]["bytes_from_zone"].as_u64().unwrap() > 0, "{c}");
        assert!(c["console"]["bytes_to_zone"].as_u64().unwrap() > 0, "{c}");
    }
    assert!(
        !std::fs::read_to_string(d.host.root.join("var/log/zones/zonesd-audit.log"))
            .unwrap()
            .contains(&op2)
    );

    // Nothing left: no console connection (nor WebSocket), one thread, the zone deleted.
    assert_eq!(d.sockets_settle(sockets), sockets, "sockets left open");
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    assert!(status.contains("\nThreads:\t1\n"), "{status}");
    let (st, e) = d.req("DELETE", &format!("/api/zones/{uuid}"), &op, None);
    assert_eq!(st, 204, "{e}");
}
