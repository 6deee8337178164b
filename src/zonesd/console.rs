//! `GET /api/zones/{uuid}/console`: the zone's console over a WebSocket, as `zlogin -C` has it.
//!
//! zonesd connects to the zone supervisor's console socket (`ALTROOT/run/zones/NAME/
//! console.sock`: no fork, a Unix socket on the runtime's one thread) and relays both ways:
//! binary frames carry raw console bytes, from the client to the zone and back (the first
//! frames are the supervisor's recent console output, as `zlogin -C` shows it). The socket
//! closes when the zone halts (the supervisor drops its clients), and the WebSocket then closes
//! (1000); the WebSocket closing closes the console connection. The token is checked again
//! every [`AUTH_EVERY`]: a revoked one closes the console (1008).
//!
//! Browsers cannot set headers on a WebSocket, so besides `Authorization` the token may come
//! as a subprotocol (`Sec-WebSocket-Protocol: zonesd.console, bearer.TOKEN`, see
//! [`super::auth`]); the answer names `zonesd.console` only, never the token. A text frame
//! `{"resize": [cols, rows]}` sets the console's window size: a `resize` request to the
//! supervisor on its control socket (it owns the pty); one it refuses is answered with a text
//! frame `{"notice": ...}`. Any other text frame closes the console (1003).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{self, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::Extension;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use zones::state::ZoneState;
use zones_linux::zone::admin::effective_state;
use zones_linux::zone::control::{Reply, Request};
use zones_linux::zone::ZonePaths;

use super::audit::{self, ConsoleEnd, Record};
use super::error::ApiError;
use super::tokens::TokenEntry;
use super::App;

/// The subprotocol of the console; the only one zonesd answers with.
pub const PROTOCOL: &str = "zonesd.console";
/// The prefix of the subprotocol that carries the token.
pub const BEARER_PREFIX: &str = "bearer.";
/// How often an open console checks that its token is still valid.
pub const AUTH_EVERY: Duration = Duration::from_millis(500);
/// The largest frame a client may send (console input is typed or pasted).
const MAX_IN: usize = 64 << 10;
/// The most console output read (and sent as one binary frame) at a time.
const CHUNK: usize = 16 << 10;

/// Whether `path` is a zone's console route (`/api/zones/ID/console`).
pub fn is_console(path: &str) -> bool {
    path.strip_prefix("/api/zones/")
        .and_then(|r| r.strip_suffix("/console"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Why a console session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The console connection closed: the zone halted (or its supervisor went).
    Zone,
    /// The client closed the WebSocket or went away.
    Client,
    /// The token was revoked.
    Revoked,
    /// The client sent a text frame that is not a resize.
    BadFrame,
}

impl Ended {
    fn name(self) -> &'static str {
        match self {
            Ended::Zone => "zone",
            Ended::Client => "client",
            Ended::Revoked => "revoked",
            Ended::BadFrame => "bad-frame",
        }
    }
}

/// The handler: 404 for an unknown zone, 400 for a request that is not a WebSocket upgrade,
/// 409 unless the zone is ready or running and its console answers; then 101 and the relay.
pub async fn open(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Extension(token): Extension<TokenEntry>,
    uri: Uri,
    ws: Result<WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let name = super::api::zone_of(&app, &id)?;
    let ws = ws.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}: the console is a WebSocket (GET with Upgrade: websocket; subprotocols \
             {PROTOCOL}, {BEARER_PREFIX}TOKEN)",
            e.body_text()
        ))
    })?;
    let store = app.store()?;
    let recorded = store
        .state(&name)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no zone '{name}'")))?;
    let st = effective_state(&store, &name, recorded);
    if !matches!(st, ZoneState::Ready | ZoneState::Running) {
        return Err(ApiError::Conflict(format!(
            "zone '{name}' is {st}: its console is there only while it is ready or running"
        )));
    }
    let paths = ZonePaths::new(&store, &name);
    let sock_path = paths.console_sock();
    let control = paths.control_sock();
    let sock = UnixStream::connect(&sock_path).await.map_err(|e| {
        ApiError::Conflict(format!(
            "zone '{name}': console {}: {e}",
            sock_path.display()
        ))
    })?;
    let path = uri.path().to_string();
    Ok(ws
        .protocols([PROTOCOL])
        .max_message_size(MAX_IN)
        .max_frame_size(MAX_IN)
        .on_upgrade(move |socket| async move {
            let start = Instant::now();
            let (ended, to_zone, from_zone) = relay(&app, &token, &control, sock, socket).await;
            let record = Record {
                time: audit::now(),
                token_id: Some(token.id.clone()),
                token_name: Some(token.name.clone()),
                role: Some(token.role.name().to_string()),
                method: "GET".into(),
                target: audit::target_of(&path),
                path,
                status: 101,
                error: None,
                console: Some(ConsoleEnd {
                    closed: true,
                    ended_by: ended.name(),
                    bytes_to_zone: to_zone,
                    bytes_from_zone: from_zone,
                    seconds: start.elapsed().as_secs(),
                }),
            };
            if let Err(e) = app.audit.append(&record) {
                eprintln!("zonesd: {e}");
            }
        }))
}

/// Whether `token` is still in the token file.
fn still_valid(app: &App, token: &TokenEntry) -> bool {
    app.tokens
        .list()
        .is_ok_and(|ts| ts.iter().any(|t| t.id == token.id))
}

/// The size of a resize frame (`{"resize": [cols, rows]}`, both 1..=65535), or None.
fn resize_of(text: &str) -> Option<(u16, u16)> {
    let v = serde_json::from_str::<Value>(text).ok()?;
    let obj = v.as_object().filter(|o| o.len() == 1)?;
    let a = obj.get("resize")?.as_array().filter(|a| a.len() == 2)?;
    let n = |v: &Value| {
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
    };
    Some((n(&a[0])?, n(&a[1])?))
}

/// How long the supervisor has to answer a resize.
const RESIZE_WAIT: Duration = Duration::from_secs(2);

/// Asks the zone's supervisor (its control socket: it owns the console's pty) to set the
/// window size; its refusal, or why it did not answer.
async fn resize(control: &std::path::Path, cols: u16, rows: u16) -> Result<(), String> {
    let req = Request::Resize { cols, rows };
    let mut line = serde_json::to_string(&req).map_err(|e| e.to_string())?;
    line.push('\n');
    let ask = async {
        let mut s = UnixStream::connect(control).await?;
        s.write_all(line.as_bytes()).await?;
        let mut reply = Vec::new();
        let mut r = tokio::io::BufReader::new(s);
        tokio::io::AsyncBufReadExt::read_until(&mut r, b'\n', &mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(RESIZE_WAIT, ask)
        .await
        .map_err(|_| format!("the zone's supervisor did not answer within {RESIZE_WAIT:?}"))?
        .map_err(|e| format!("{}: {e}", control.display()))?;
    match serde_json::from_slice::<Reply>(&reply) {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Error(e)) => Err(e),
        Err(_) => Err(format!(
            "the zone's supervisor answered {:?}",
            String::from_utf8_lossy(&reply).trim()
        )),
    }
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Relays until one side ends; why, and the bytes sent each way.
async fn relay(
    app: &App,
    token: &TokenEntry,
    control: &std::path::Path,
    sock: UnixStream,
    mut socket: WebSocket,
) -> (Ended, u64, u64) {
    let (mut rd, mut wr) = sock.into_split();
    let (mut to_zone, mut from_zone) = (0u64, 0u64);
    let mut buf = vec![0u8; CHUNK];
    let mut tick = tokio::time::interval(AUTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended = loop {
        tokio::select! {
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = socket
                        .send(close(ws::close_code::NORMAL, "zonesd: the zone's console closed (the zone halted)"))
                        .await;
                    break Ended::Zone;
                }
                Ok(n) => {
                    from_zone += n as u64;
                    let frame = Message::Binary(buf[..n].to_vec().into());
                    if socket.send(frame).await.is_err() {
                        break Ended::Client;
                    }
                }
            },
            m = socket.recv() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break Ended::Client,
                Some(Ok(Message::Binary(b))) => {
                    if wr.write_all(&b).await.is_err() {
                        let _ = socket
                            .send(close(ws::close_code::NORMAL, "zonesd: the zone's console closed (the zone halted)"))
                            .await;
                        break Ended::Zone;
                    }
                    to_zone += b.len() as u64;
                }
                Some(Ok(Message::Text(t))) => {
                    let Some((cols, rows)) = resize_of(t.as_str()) else {
                        let _ = socket
                            .send(close(ws::close_code::UNSUPPORTED, "zonesd: console input is binary frames; text frames are only {\"resize\":[cols,rows]}"))
                            .await;
                        break Ended::BadFrame;
                    };
                    if let Err(e) = resize(control, cols, rows).await {
                        let note = serde_json::json!({"notice": format!("zonesd: resize: {e}")});
                        if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                            break Ended::Client;
                        }
                    }
                }
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            },
            _ = tick.tick() => {
                if !still_valid(app, token) {
                    let _ = socket
                        .send(close(ws::close_code::POLICY, "zonesd: the token was revoked"))
                        .await;
                    break Ended::Revoked;
                }
            }
        }
    };
    // Closing our half tells the supervisor this client is gone (it drops it on EOF).
    let _ = wr.shutdown().await;
    (ended, to_zone, from_zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths() {
        assert!(is_console("/api/zones/u1/console"));
        assert!(!is_console("/api/zones/console"));
        assert!(!is_console("/api/zones//console"));
        assert!(!is_console("/api/zones/a/b/console"));
        assert!(!is_console("/api/zones/u1/consoles"));
    }

    #[test]
    fn resize_frames() {
        assert_eq!(resize_of(r#"{"resize":[80,24]}"#), Some((80, 24)));
        assert_eq!(resize_of(r#"{"resize":[80]}"#), None);
        assert_eq!(resize_of(r#"{"resize":[0,24]}"#), None);
        assert_eq!(resize_of(r#"{"resize":[65536,24]}"#), None);
        assert_eq!(resize_of(r#"{"resize":[80,24],"x":1}"#), None);
        assert_eq!(resize_of("ls"), None);
    }
}
