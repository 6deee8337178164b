//! `zonetrace`: zone-aware tracing with bpftrace, DTrace's role for zones.
//!
//! ```text
//! zonetrace [-R altroot] SCRIPT [-z zone[,zone...]] [-j] [-d seconds] [--map-keys N]
//! zonetrace [-R altroot] -e PROGRAM [-z zone[,zone...]] [-j] [-d seconds] [--map-keys N]
//! zonetrace -l
//! ```
//!
//! SCRIPT is one of the toolkit's (`zonetrace -l`); each prints a zone column (`-j`: one JSON
//! object per line with `zonename`, `pid`, `comm` and the script's own fields). `-e` runs a
//! bpftrace program in which the word `zonename` is the zone of the current task. `-z` keeps
//! only the named zones' events (filtered in the kernel). Every trace ends after `-d` seconds
//! (default 10). See [`crate::zone::trace`] for how probes learn their zone.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use zones::store::Store;

use crate::zone::trace::{self, toolkit, Options, Row};

/// The default duration of a trace, seconds.
const DEFAULT_SECONDS: u64 = 10;
/// The longest trace allowed, seconds (a day).
const MAX_SECONDS: u64 = 86_400;

#[derive(Parser, Debug)]
#[command(
    name = "zonetrace",
    about = "Trace zones with bpftrace: toolkit scripts and programs that know each task's zone",
    after_help = "Examples:\n  zonetrace opensnoop -z web -j -d 3\n  zonetrace syscount -d 5\n  \
                  zonetrace -e 'tracepoint:syscalls:sys_enter_execve { printf(\"%s %s\\n\", zonename, comm); }'\n  \
                  zonetrace -l\n\nExit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(short = 'R')]
    altroot: Option<PathBuf>,
    /// Only these zones (comma-separated; may be repeated).
    #[arg(short = 'z', value_delimiter = ',')]
    zones: Vec<String>,
    /// JSON lines: one object per event or row.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// How long to trace, in seconds (at most a day).
    #[arg(short = 'd', default_value_t = DEFAULT_SECONDS, value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
    seconds: u64,
    /// A bpftrace program to run instead of a toolkit script (`zonename` names the zone).
    #[arg(short = 'e', value_name = "PROGRAM", conflicts_with = "script")]
    program: Option<String>,
    /// List the toolkit's scripts.
    #[arg(short = 'l', conflicts_with_all = ["script", "program"])]
    list: bool,
    /// At most this many keys per map (and cgroup ids named).
    #[arg(long = "map-keys", default_value_t = trace::DEFAULT_MAP_KEYS, value_parser = clap::value_parser!(u32).range(64..=1_000_000))]
    map_keys: u32,
    /// A toolkit script (see -l).
    script: Option<String>,
}

/// The clap definition of `zonetrace` (for generated man pages, shell completions and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `zonetrace` binary.
pub fn main() -> i32 {
    super::run_main("zonetrace", run)
}

/// Errors about zones name the zone the way the other tools do: `zone 'web': ...`.
fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.list {
        for s in toolkit::SCRIPTS {
            println!("{:<12} {}", s.name, s.about);
        }
        return Ok(());
    }
    let script =
        match (&cli.script, &cli.program) {
            (Some(name), None) => Some(toolkit::find(name).ok_or_else(|| {
                anyhow::anyhow!("{name}: no such script; zonetrace -l lists them")
            })?),
            (None, Some(_)) => None,
            _ => anyhow::bail!("name a SCRIPT or give -e PROGRAM; zonetrace -l lists the scripts"),
        };
    let bpftrace = trace::check_host(script.is_some_and(|s| s.needs_btf))?;
    if let Some(s) = script {
        trace::check_tracepoints(s, &trace::tracefs()?)?;
    }
    let store = Store::open(cli.altroot.as_deref())?;
    let map = trace::zone_map(&store, &cli.zones, cli.map_keys as usize)?;
    let scoped = !cli.zones.is_empty();
    let Some(script) = script else {
        let program = cli.program.as_deref().unwrap_or_default();
        let text = trace::build_program(program, &map, scoped, cli.seconds)?;
        let opts = Options {
            seconds: cli.seconds,
            map_keys: cli.map_keys,
            strlen: 64,
            json: cli.json,
        };
        trace::spawn(&bpftrace, &text, &opts, false)?.wait()?;
        return Ok(());
    };
    let text = trace::build_program(script.program, &map, scoped, cli.seconds)?;
    let opts = Options {
        seconds: cli.seconds,
        map_keys: cli.map_keys,
        strlen: script.strlen,
        json: true,
    };
    let mut run = trace::spawn(&bpftrace, &text, &opts, true)?;
    let stdout = run
        .stdout()
        .ok_or_else(|| anyhow::anyhow!("bpftrace's output is not piped"))?;
    let columns = script.columns();
    let mut out = std::io::stdout().lock();
    if !cli.json {
        writeln!(out, "{}", header(&columns))?;
        out.flush()?;
    }
    let json = cli.json;
    let seconds = cli.seconds;
    let read = trace::read_records(
        stdout,
        script,
        &map,
        |row| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", format_row(&row, json))?;
            out.flush()
        },
        |probes| {
            eprintln!(
                "zonetrace: {} attached ({probes} probes) for {seconds} s",
                script.name
            )
        },
    );
    let collected = match read {
        Ok(c) => c,
        Err(e) => {
            run.stop();
            return quiet_epipe(e.into());
        }
    };
    run.wait()?;
    if let toolkit::Output::Aggregate(which) = script.output {
        let rows = trace::aggregate_rows(which, &collected.maps, &map);
        let written = rows
            .iter()
            .try_for_each(|row| writeln!(out, "{}", format_row(row, json)))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            return quiet_epipe(e.into());
        }
    }
    if collected.lost_events > 0 {
        eprintln!(
            "zonetrace: {} events lost (the output buffer was full)",
            collected.lost_events
        );
    }
    Ok(())
}

/// A reader that went away (`zonetrace ... | head`) ends the trace quietly.
fn quiet_epipe(e: anyhow::Error) -> anyhow::Result<()> {
    let epipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<trace::TraceError>(), Some(trace::TraceError::Io(io)) if io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if epipe {
        Ok(())
    } else {
        Err(e)
    }
}

/// Width of the zone column.
const ZONE_WIDTH: usize = 12;

/// Column width by field name (the last column's padding is trimmed).
fn width(name: &str) -> usize {
    match name {
        "pid" | "fd" => 7,
        "comm" | "victim_comm" | "target_comm" => 16,
        "syscall" => 18,
        "count" | "errno" | "signal" | "result" | "sport" | "rport" => 8,
        "path" | "arg1" | "arg2" => 24,
        "hist" => 0,
        _ => 14,
    }
}

fn header(columns: &[&str]) -> String {
    let mut line = format!("{:<ZONE_WIDTH$}", "ZONENAME");
    for c in columns {
        line.push(' ');
        line.push_str(&format!("{:<w$}", c.to_uppercase(), w = width(c)));
    }
    line.trim_end().to_string()
}

fn format_row(row: &Row, json: bool) -> String {
    if json {
        return trace::row_json(row);
    }
    let mut line = String::new();
    for (i, (name, v)) in row.iter().enumerate() {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(b) => hist_text(b),
            v => v.to_string(),
        };
        if i > 0 {
            line.push(' ');
        }
        let w = if *name == "zonename" {
            ZONE_WIDTH
        } else {
            width(name)
        };
        line.push_str(&format!("{text:<w$}"));
    }
    line.trim_end().to_string()
}

/// A histogram as `[min,max) count` pairs, on one line.
fn hist_text(buckets: &[serde_json::Value]) -> String {
    buckets
        .iter()
        .map(|b| format!("[{},{}]:{}", b["min"], b["max"], b["count"]))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rows_line_up_with_the_header() {
        let h = header(&["pid", "comm", "path"]);
        assert!(h.starts_with("ZONENAME     PID     COMM"), "{h}");
        let row: Row = vec![
            ("zonename", "web".into()),
            ("pid", 12.into()),
            ("comm", "cat".into()),
            ("path", "/etc/motd".into()),
        ];
        let line = format_row(&row, false);
        assert_eq!(line.find("12"), h.find("PID"), "{h}\n{line}");
        assert_eq!(line.find("/etc"), h.find("PATH"), "{h}\n{line}");
    }

    #[test]
    fn duration_is_bounded() {
        assert!(Cli::try_parse_from(["zonetrace", "syscount", "-d", "0"]).is_err());
        assert!(Cli::try_parse_from(["zonetrace", "syscount", "-d", "86401"]).is_err());
        let c = Cli::try_parse_from(["zonetrace", "opensnoop", "-z", "a,b", "-j"]).unwrap();
        assert_eq!(c.seconds, DEFAULT_SECONDS);
        assert_eq!(c.zones, ["a", "b"]);
    }
}
