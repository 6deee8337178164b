//! `zoneadm events`: the zones' state changes as JSON lines.
//!
//! The store appends every state change (and every new or deleted configuration) to
//! `ALTROOT/run/zones/events` as it records it (`Store::set_state`), whoever makes it: zoneadm,
//! a zone's supervisor (a zone that halts or reboots itself), the host service. This module
//! reads that log, optionally for one zone, and with `follow` keeps reading what is appended,
//! like `tail -f`. Each line printed is
//! `{"time": RFC 3339, "zone", "uuid", "state", "previous"}`.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use zones::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What to print.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this zone's events.
    pub zone: Option<String>,
    /// Keep printing new events.
    pub follow: bool,
    /// Skip what is already in the log (with `follow`: only new events).
    pub new_only: bool,
    /// Stop following after this long (`None`: until killed).
    pub timeout: Option<Duration>,
    /// Stop after this many events.
    pub count: Option<usize>,
}

/// A stored line as printed: `time_ms` becomes an RFC 3339 `time`. `None` for a line that is
/// not an event (a torn or foreign line is skipped, not fatal).
pub fn render(line: &str) -> Option<Value> {
    let Value::Object(mut m) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let ms = m.remove("time_ms")?.as_u64()?;
    let mut out = Map::new();
    out.insert(
        "time".into(),
        zones_engine::state::rfc3339((ms / 1000) as i64, ((ms % 1000) * 1_000_000) as u32).into(),
    );
    for k in ["zone", "uuid", "state", "previous"] {
        out.insert(k.into(), m.remove(k).unwrap_or(Value::Null));
    }
    Some(Value::Object(out))
}

/// Prints the events `opts` asks for to `out`, one JSON object a line. Returns how many.
pub fn stream(store: &Store, opts: &Options, out: &mut dyn Write) -> Result<usize, EventsError> {
    let path = store.events_file();
    let io = |source| EventsError::Io {
        path: path.display().to_string(),
        source,
    };
    let started = Instant::now();
    let mut printed = 0;
    let mut pos: u64 = 0;
    let mut partial = String::new();
    let mut first = true;
    let mut file_id: Option<(u64, u64)> = None;
    loop {
        match fs::File::open(&path) {
            Ok(mut f) => {
                let meta = f.metadata().map_err(io)?;
                let len = meta.len();
                if first && opts.new_only {
                    pos = len;
                }
                // The log was rotated (another file) or truncated: start over.
                let id = Some((meta.dev(), meta.ino()));
                if (!first && id != file_id) || len < pos {
                    pos = 0;
                }
                file_id = id;
                f.seek(SeekFrom::Start(pos)).map_err(io)?;
                let mut r = BufReader::new(f);
                loop {
                    let mut line = String::new();
                    let n = r.read_line(&mut line).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    pos += n as u64;
                    if !line.ends_with('\n') {
                        // Being written: finish it next round.
                        partial.push_str(&line);
                        continue;
                    }
                    let whole = std::mem::take(&mut partial) + &line;
                    let Some(ev) = render(&whole) else { continue };
                    if opts
                        .zone
                        .as_deref()
                        .is_some_and(|z| ev["zone"].as_str() != Some(z))
                    {
                        continue;
                    }
                    writeln!(out, "{ev}").map_err(io)?;
                    out.flush().map_err(io)?;
                    printed += 1;
                    if opts.count.is_some_and(|c| printed >= c) {
                        return Ok(printed);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        first = false;
        if !opts.follow || opts.timeout.is_some_and(|t| started.elapsed() >= t) {
            return Ok(printed);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_lines_render_with_an_rfc3339_time() {
        let ev = render(
            r#"{"time_ms":1700000000123,"zone":"a","uuid":"u","state":"running","previous":"ready"}"#,
        )
        .unwrap();
        assert_eq!(ev["time"], "2023-11-14T22:13:20.123000000Z");
        assert_eq!(ev["zone"], "a");
        assert_eq!(ev["state"], "running");
        assert_eq!(ev["previous"], "ready");
        assert!(render("{\"zone\":").is_none());
        assert!(render("[1]").is_none());
    }
}
