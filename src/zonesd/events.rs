//! `GET /api/events`: the zone event log (`ALTROOT/run/zones/events`, what `zoneadm events -F`
//! prints) as Server-Sent Events, one `event: zone` per line, its data the same JSON object
//! (`time`, `zone`, `uuid`, `state`, `previous`). `?zone=NAME|UUID` keeps one zone's events;
//! `?new=true` skips what is already in the log. The log is polled every 200 ms; a rotated or
//! truncated log is read again from its start. The stream ends within a second of its token
//! being revoked.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;

use zones_linux::zone::events::render;

const POLL: Duration = Duration::from_millis(200);
/// Every this many idle polls, whether the token is still valid.
const AUTH_EVERY: u32 = 5;
/// The most read from the log in one go.
const CHUNK: u64 = 1 << 20;

/// Where the stream is in the log.
struct Tail {
    path: PathBuf,
    zone: Option<String>,
    pos: u64,
    file_id: Option<(u64, u64)>,
    partial: Vec<u8>,
    ready: VecDeque<Value>,
    /// Whether the stream's token is still valid.
    alive: Box<dyn Fn() -> bool + Send>,
    polls: u32,
}

impl Tail {
    /// Reads what was appended since the last call into `ready`.
    fn read_more(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        let Ok(meta) = f.metadata() else { return };
        let id = Some((meta.dev(), meta.ino()));
        if (self.file_id.is_some() && id != self.file_id) || meta.len() < self.pos {
            self.pos = 0;
            self.partial.clear();
        }
        self.file_id = id;
        if meta.len() == self.pos || f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        if f.take(CHUNK).read_to_end(&mut buf).is_err() {
            return;
        }
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            let Some(ev) = render(&String::from_utf8_lossy(&line)) else {
                continue;
            };
            let wanted = self
                .zone
                .as_deref()
                .is_none_or(|z| ev["zone"].as_str() == Some(z) || ev["uuid"].as_str() == Some(z));
            if wanted {
                self.ready.push_back(ev);
            }
        }
    }
}

/// The SSE stream of `path`'s events.
pub fn stream(
    path: PathBuf,
    zone: Option<String>,
    new_only: bool,
    alive: Box<dyn Fn() -> bool + Send>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tail = Tail {
        alive,
        polls: 0,
        pos: 0,
        file_id: None,
        partial: Vec::new(),
        ready: VecDeque::new(),
        zone,
        path,
    };
    if new_only {
        if let Ok(m) = std::fs::metadata(&tail.path) {
            tail.pos = m.len();
            tail.file_id = Some((m.dev(), m.ino()));
        }
    }
    let s = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(ev) = tail.ready.pop_front() {
                let e = Event::default().event("zone").data(ev.to_string());
                return Some((Ok(e), tail));
            }
            tail.read_more();
            if tail.ready.is_empty() {
                tail.polls += 1;
                if tail.polls % AUTH_EVERY == 0 && !(tail.alive)() {
                    return None;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
