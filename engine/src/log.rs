//! Diagnostics of the runtime: where they go (stderr, or the `--log` file) and in which shape
//! (`text`, or runc's JSON lines `{"level":"error","msg":…,"time":…}` that containerd and podman
//! parse). The engine calls these; only the CLI configures them.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
struct Config {
    file: Option<PathBuf>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

static PROGRAM: OnceLock<&'static str> = OnceLock::new();

/// The name diagnostics on stderr start with: `runz` unless a zone tool set its own, once,
/// at start-up (`zoneadm: warning: ...`, never `runz:` in zoneadm's messages).
pub fn set_program(name: &'static str) {
    let _ = PROGRAM.set(name);
}

/// See [`set_program`].
pub fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("runz")
}

/// Set the destination once, at start-up. Later calls are ignored.
pub fn init(file: Option<PathBuf>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config {
        file,
        format,
        debug,
    });
}

/// Whether a log file is configured (then errors need not go to stderr too).
pub fn has_file() -> bool {
    CONFIG.get().is_some_and(|c| c.file.is_some())
}

pub fn error(msg: &str) {
    emit("error", msg);
}

pub fn warn(msg: &str) {
    emit("warning", msg);
}

pub fn debug(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.debug) {
        emit("debug", msg);
    }
}

/// One log line in the configured shape.
pub fn render(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string(),
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
    }
}

fn emit(level: &str, msg: &str) {
    let time = crate::state::now_rfc3339();
    let fallback = Config {
        file: None,
        format: Format::Text,
        debug: false,
    };
    let cfg = CONFIG.get().unwrap_or(&fallback);
    if let Some(path) = &cfg.file {
        let line = render(cfg.format, level, msg, &time);
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
            // runc's fatal() logs the error and also prints it, plain, on stderr: the
            // containerd shim and podman classify a failed kill/delete from that output
            // ("container not running", "does not exist").
            if level == "error" {
                eprintln!("{msg}");
            }
            return;
        }
    }
    match cfg.format {
        Format::Json => eprintln!("{}", render(Format::Json, level, msg, &time)),
        // --debug lines in runc's shape (tools grep `level=debug`); the rest stays terse.
        Format::Text if level == "debug" => {
            eprintln!("{}", render(Format::Text, level, msg, &time))
        }
        Format::Text => eprintln!("{}: {level}: {msg}", program()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runc_field_names() {
        let line = render(Format::Json, "error", "boom \"x\"", "2026-01-01T00:00:00Z");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = render(Format::Text, "warning", "a b", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\"");
    }
}
