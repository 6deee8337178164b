//! `zonestat`: per-zone CPU, memory, swap and lwp usage against the zone's caps.
//!
//! ```text
//! zonestat [-R altroot] [-z zone[,zone...]] [-p [-T u]] [-j] interval [duration]
//! zonestat [-R altroot] [-z zone[,zone...]] --prometheus
//! ```
//!
//! `interval` is in seconds; `duration` (seconds, or with an `s`/`m`/`h` suffix, or `inf`)
//! bounds the run, as on illumos: `zonestat 1 1` prints one report after one second. Without
//! a duration zonestat runs until interrupted. `-p` prints the illumos-style parsable lines
//! (see [`crate::zone::stat::parsable`]), `-j` one JSON object per interval, `--prometheus`
//! the current counters once in the Prometheus text format.

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
    /// Print the current counters once in the Prometheus text format and exit.
    #[arg(long = "prometheus")]
    prometheus: bool,
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
            let obj = serde_json::json!({
                "timestamp": epoch,
                "interval": interval,
                "zones": usage,
            });
            writeln!(out, "{obj}")?;
        } else if cli.parsable {
            write!(out, "{}", stat::parsable(&usage, unix_ts.then_some(epoch)))?;
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
            write!(out, "{}", stat::summary(&usage, online, physmem))?;
        }
        out.flush()?;
        before = now;
        n += 1;
    }
    Ok(())
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
