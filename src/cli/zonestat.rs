//! `zonestat`: per-zone CPU, memory, swap and lwp usage against the zone's caps.
//!
//! ```text
//! zonestat [-R altroot] [-z zone[,zone...]] [-r resource[,resource...]] [-p [-T u]] [-j]
//!          interval [duration]
//! zonestat [-R altroot] [-z zone[,zone...]] --prometheus [--listen 127.0.0.1:PORT]
//! ```
//!
//! `interval` is in seconds; `duration` (seconds, or with an `s`/`m`/`h` suffix, or `inf`)
//! bounds the run, as on illumos: `zonestat 1 1` prints one report after one second. Without
//! a duration zonestat runs until interrupted. `-p` prints the illumos-style parsable lines
//! (see [`crate::zone::stat::parsable`]), `-j` one JSON object per interval, `--prometheus`
//! the current counters once in the Prometheus text format; with `--listen` it serves them
//! over HTTP on a loopback address instead (every request samples anew) until killed.
//! `-r` picks the resources by their illumos names (see [`stat::parse_resources`]): the
//! summary (the default), physical-memory, virtual-memory, processor-set, lwps, network.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use zones::store::Store;

use crate::zone::stat;

#[derive(Parser, Debug)]
#[command(
    name = "zonestat",
    about = "Report zones' CPU, memory and process usage against their caps",
    after_help = "Examples:\n  zonestat 5\n  zonestat -z web,db 1 1m\n  zonestat -j 1 1\n  zonestat -p -T u 10\n  zonestat --prometheus\n\nExit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(short = 'R')]
    altroot: Option<PathBuf>,
    /// Only these zones (comma-separated; may be repeated).
    #[arg(short = 'z', value_delimiter = ',')]
    zones: Vec<String>,
    /// Parsable output: interval:summary:ZONE:cpu:cpu-cap:mem:mem-cap:swap:swap-cap:lwps:lwps-cap
    #[arg(short = 'p')]
    parsable: bool,
    /// With -p, prefix each line with a timestamp: u = seconds since the epoch.
    #[arg(short = 'T')]
    timestamp: Option<String>,
    /// One JSON object per interval.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Resources to report (comma-separated; may be repeated): summary, physical-memory,
    /// virtual-memory, memory, processor-set (psets), lwps (limits), network, default, all.
    #[arg(short = 'r', value_delimiter = ',')]
    resources: Vec<String>,
    /// Print the current counters once in the Prometheus text format and exit.
    #[arg(long = "prometheus")]
    prometheus: bool,
    /// With --prometheus: serve the counters over HTTP on this loopback ADDRESS:PORT (port 0
    /// picks a free one; the address served is printed on stderr).
    #[arg(long = "listen", value_name = "ADDRESS:PORT", requires = "prometheus")]
    listen: Option<String>,
    /// Seconds between reports.
    interval: Option<String>,
    /// How long to run: seconds, or with a s/m/h suffix, or inf.
    duration: Option<String>,
}

/// The clap definition of `zonestat` (for generated man pages, shell completions and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `zonestat` binary.
pub fn main() -> i32 {
    super::run_main("zonestat", run)
}

/// Seconds with an optional s/m/h suffix; `None` for `inf`.
fn parse_seconds(what: &str, text: &str) -> anyhow::Result<Option<u64>> {
    if text == "inf" {
        return Ok(None);
    }
    let (num, mult) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    match num.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n * mult)),
        _ => anyhow::bail!(
            "{what} {text:?}: expected a positive number of seconds (suffix s, m or h), or inf"
        ),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let store = Store::open(cli.altroot.as_deref())?;
    let resources = stat::parse_resources(&cli.resources).map_err(anyhow::Error::msg)?;
    if let Some(addr) = cli.listen.as_deref() {
        return serve_prometheus(&store, &cli.zones, addr);
    }
    if cli.prometheus {
        let names = stat::live_zones(&store, &cli.zones)?;
        let now = stat::sample_all(&store, &names);
        print!("{}", stat::prometheus(&stat::report(&[], &now)));
        return Ok(());
    }
    let unix_ts = match cli.timestamp.as_deref() {
        None => false,
        Some("u") => true,
        Some(t) => anyhow::bail!("-T {t}: only u (seconds since the epoch) is supported"),
    };
    let Some(interval) = cli.interval.as_deref() else {
        anyhow::bail!("an interval is required: zonestat [options] interval [duration]");
    };
    let interval = parse_seconds("interval", interval)?
        .ok_or_else(|| anyhow::anyhow!("the interval cannot be inf"))?;
    let reports = match cli.duration.as_deref() {
        None => None,
        Some(d) => parse_seconds("duration", d)?.map(|d| d.div_ceil(interval)),
    };
    for z in &cli.zones {
        if store.load(z)?.is_none() {
            anyhow::bail!("{z}: No such zone configured");
        }
    }
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let physmem = physmem();
    let mut before = stat::sample_all(&store, &stat::live_zones(&store, &cli.zones)?);
    let mut n = 0;
    while reports.is_none_or(|r| n < r) {
        std::thread::sleep(Duration::from_secs(interval));
        let now = stat::sample_all(&store, &stat::live_zones(&store, &cli.zones)?);
        let usage = stat::report(&before, &now);
        let mut out = std::io::stdout().lock();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if cli.json {
            let zones: Vec<serde_json::Value> = usage
                .iter()
                .map(|u| stat::json_usage(u, &resources))
                .collect();
            let obj = serde_json::json!({
                "timestamp": epoch,
                "interval": interval,
                "zones": zones,
            });
            writeln!(out, "{obj}")?;
        } else if cli.parsable {
            let ts = unix_ts.then_some(epoch);
            for r in &resources {
                match r {
                    stat::Resource::Summary => write!(out, "{}", stat::parsable(&usage, ts))?,
                    r => write!(out, "{}", stat::resource_parsable(*r, &usage, ts))?,
                }
            }
        } else {
            if n == 0 {
                writeln!(out, "Collecting data for first interval...")?;
            }
            writeln!(
                out,
                "Interval: {}, Duration: {}s",
                n + 1,
                (n + 1) * interval
            )?;
            for r in &resources {
                match r {
                    stat::Resource::Summary => {
                        write!(out, "{}", stat::summary(&usage, online, physmem))?
                    }
                    r => write!(out, "{}", stat::resource_report(*r, &usage))?,
                }
            }
        }
        out.flush()?;
        before = now;
        n += 1;
    }
    Ok(())
}

/// `--prometheus --listen ADDR`: answer every HTTP request on the loopback address `addr`
/// with a fresh sample in the Prometheus text format, one connection at a time, until killed.
fn serve_prometheus(store: &Store, zones: &[String], addr: &str) -> anyhow::Result<()> {
    let sock: std::net::SocketAddr = addr.parse().map_err(|_| {
        anyhow::anyhow!("--listen {addr:?}: expected ADDRESS:PORT, e.g. 127.0.0.1:9154")
    })?;
    if !sock.ip().is_loopback() {
        anyhow::bail!(
            "--listen {addr:?}: only a loopback address (127.0.0.1, ::1) is served; \
             zone usage is not for the network at large (put a proxy in front if it must be)"
        );
    }
    let listener = std::net::TcpListener::bind(sock)
        .map_err(|e| anyhow::anyhow!("--listen {addr}: cannot listen: {e}"))?;
    eprintln!(
        "zonestat: serving Prometheus metrics on http://{}/metrics",
        listener.local_addr()?
    );
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        // A slow or silent client must not stall the exporter for long.
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
        let Some(path) = read_request_path(&mut conn) else {
            continue;
        };
        let (status, body) = if path == "/metrics" || path == "/" {
            let names = stat::live_zones(store, zones)?;
            let now = stat::sample_all(store, &names);
            ("200 OK", stat::prometheus(&stat::report(&[], &now)))
        } else {
            (
                "404 Not Found",
                format!("no {path} here; the metrics are at /metrics\n"),
            )
        };
        let head = format!(
            "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = conn
            .write_all(head.as_bytes())
            .and_then(|()| conn.write_all(body.as_bytes()));
    }
    Ok(())
}

/// The path of a GET request's first line, after reading the request head (at most 16 KiB).
fn read_request_path(conn: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 << 10 {
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut first = text.lines().next()?.split_whitespace();
    (first.next()? == "GET").then(|| first.next().map(str::to_string))?
}

/// Physical memory of the host, bytes.
fn physmem() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64).saturating_mul(size.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("d", "5").unwrap(), Some(5));
        assert_eq!(parse_seconds("d", "2m").unwrap(), Some(120));
        assert_eq!(parse_seconds("d", "1h").unwrap(), Some(3600));
        assert_eq!(parse_seconds("d", "inf").unwrap(), None);
        let err = parse_seconds("interval", "0").unwrap_err().to_string();
        assert!(err.contains("interval \"0\""), "{err}");
        assert!(parse_seconds("d", "x").is_err());
    }
}
