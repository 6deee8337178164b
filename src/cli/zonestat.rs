//! `zonestat`: per-zone CPU, memory, swap and lwp usage against the zone's caps, as
//! zonestat(8) reports it.
//!
//! ```text
//! zonestat [--root altroot] [-z zonelist] [-r reslist] [-n namelist] [-T u|d|i]
//!          [-R reports] [-q] [-p [-P lines]] [-S cols] [-j] interval [duration [report]]
//! zonestat [--root altroot] [-z zone[,zone...]] --prometheus [--listen 127.0.0.1:PORT]
//! ```
//!
//! As on illumos: `interval` is seconds (or `[nh][nm][ns]`, or `default`, 5 seconds);
//! `duration` counts intervals (`zonestat 2 3` prints three reports), or with a unit is a
//! time rounded up to whole intervals, or `inf` (the default); `report` is the period of the
//! `-R` summary reports (`total`, `average`, `high`) in intervals or with a unit, by default
//! the whole run. `-q` prints only the summary reports. Every report has `[total]` (the
//! host), `[system]` (the kernel's part) and a row per zone, the global zone among them
//! (what the host used less the kernel and the zones). `-p` prints illumos's parsable lines
//! (see [`stat::summary_parsable`], [`stat::resource_parsable`]), with header and footer
//! lines; `-P` picks the lines; `-S` sorts the zones; `-n` picks resources by name
//! (`mem_default`, `vm_default`, `pset_default`, `system-limit`, or a VNIC's name for
//! `network`). Extensions: `-j` prints one JSON object per interval; `--prometheus` the
//! current counters once in the Prometheus text format (with `--listen` it serves them over
//! HTTP on a loopback address until killed); `-r network` the bytes of each zone's VNICs;
//! `-r syscalls` (system calls per second) and `-r runq` (run-queue latency: waits, mean and
//! longest, microseconds) per zone, from eBPF where the cgroup files have nothing: zonestat
//! then runs one bpftrace child for the whole run (root of the host only; never for the
//! default or `all`, since every system call or context switch then runs a probe). See
//! [`crate::zone::trace::zonestat`].
//!
//! The alternate root is `--root`, since `-R` takes illumos's reports; `-R /PATH` (a value no
//! report name can take: it starts with `/`) is still read as the alternate root, as the
//! other tools spell it.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use zones::store::Store;

use crate::zone::stat;
use crate::zone::trace;
use crate::zone::trace::zonestat::{Sampler, Wants, INF_SECONDS};

/// How long the eBPF child outlives the intervals asked for (it is stopped when zonestat ends;
/// this only bounds it if zonestat cannot stop it).
const BPF_MARGIN: u64 = 30;

#[derive(Parser, Debug)]
#[command(
    name = "zonestat",
    about = "Report zones' CPU, memory and process usage against their caps",
    long_about = "Report zones' CPU, memory and process usage against their caps, as illumos \
zonestat(8) does.\n\n\
eBPF resources (extensions, root of the host only): -r syscalls reports each zone's system \
calls per second (ZONE CALLS/S CALLS; -p: LABEL:syscalls:ZONE:PER-SECOND:COUNT), -r runq its \
run-queue latency, how long its runnable tasks waited for a CPU after a wakeup or a preemption \
(ZONE WAITS MEAN-US MAX-US; -p: LABEL:runq:ZONE:WAITS:MEAN-US:MAX-US), with [total] for the \
host and the kernel's threads in global; -j adds \"syscalls\" and \"runq\" objects to each \
zone, to \"total\" and to a \"global\" object. They cost: zonestat runs one bpftrace for the \
whole run, with a probe on every system call, or on every wakeup and context switch, so they \
are never part of the default or -r all, and not with --prometheus. They need bpftrace, \
tracefs, the tracepoints and a cgroup2 hierarchy, and name what is missing.",
    after_help = "Examples:\n  zonestat 5\n  zonestat 2 3\n  zonestat -z web,db -r physical-memory 1 1m\n  zonestat -q -R total,high 10s 24h 1h\n  zonestat -p -P zones -T u -r psets 5 1\n  zonestat -j 1 1\n  zonestat -r syscalls,runq 5 12\n  zonestat --prometheus\n\nExit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(long = "root", value_name = "ALTROOT")]
    altroot: Option<PathBuf>,
    /// Summary reports: total, average, high (comma-separated; may be repeated). A value
    /// starting with / is taken as the alternate root (--root).
    #[arg(short = 'R', value_name = "REPORTS")]
    reports: Vec<String>,
    /// Only these zones (comma-separated; may be repeated); `global` is the global zone.
    #[arg(short = 'z', value_delimiter = ',', value_name = "ZONES")]
    zones: Vec<String>,
    /// Only the resources of these names: mem_default, vm_default, pset_default,
    /// system-limit, or VNIC names for network (comma-separated; may be repeated).
    #[arg(short = 'n', value_delimiter = ',', value_name = "NAMES")]
    names: Vec<String>,
    /// Parsable output: LABEL:RESOURCE:FIELDS..., with header and footer lines.
    #[arg(short = 'p')]
    parsable: bool,
    /// With -p, the lines to print: resource, total, system, zones, header, footer.
    #[arg(short = 'P', value_name = "LINES", requires = "parsable")]
    lines: Vec<String>,
    /// Timestamp each report: u = seconds since the epoch, d = date(1) (not with -p),
    /// i = ISO 8601 (YYYYMMDDThhmmssZ).
    #[arg(short = 'T', value_name = "u|d|i")]
    timestamp: Option<String>,
    /// Quiet: print only the summary reports (requires -R).
    #[arg(short = 'q')]
    quiet: bool,
    /// Sort zones by these columns: name, used, cap, pcap, shr, pshru (default used).
    #[arg(short = 'S', value_name = "COLS")]
    sort: Vec<String>,
    /// One JSON object per interval (an extension).
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// Resources to report (comma-separated; may be repeated): summary, physical-memory,
    /// virtual-memory, memory, processor-set (psets, default-pset), lwps (processes,
    /// limits), network, default, all; and, from eBPF (root only, not in all: they cost a
    /// probe on every system call or context switch), syscalls and runq.
    #[arg(short = 'r', value_delimiter = ',', value_name = "RESOURCES")]
    resources: Vec<String>,
    /// Print the current counters once in the Prometheus text format and exit.
    #[arg(long = "prometheus")]
    prometheus: bool,
    /// With --prometheus: serve the counters over HTTP on this loopback ADDRESS:PORT (port 0
    /// picks a free one; the address served is printed on stderr).
    #[arg(long = "listen", value_name = "ADDRESS:PORT", requires = "prometheus")]
    listen: Option<String>,
    /// Seconds between reports ([nh][nm][ns], or default: 5 seconds).
    interval: Option<String>,
    /// How many intervals to report, or a time ([nh][nm][ns]) rounded up to whole
    /// intervals, or inf (the default).
    duration: Option<String>,
    /// With -R: the period of the summary reports, in intervals or as a time; by default the
    /// whole run.
    report: Option<String>,
}

/// The clap definition of `zonestat` (for generated man pages, shell completions and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `zonestat` binary.
pub fn main() -> i32 {
    super::run_main("zonestat", |cli: Cli| match run(cli) {
        Ok(()) => Ok(0),
        Err(e) if e.is::<UsageError>() => {
            eprintln!("zonestat: {e}");
            Ok(2)
        }
        Err(e) => Err(e),
    })
}

/// A bad option or operand: exit status 2, as zonestat(8) has it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// `bail!` for usage errors.
macro_rules! usage {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new(UsageError(format!($($t)*))))
    };
}

fn usage_err(msg: String) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg))
}

/// A time as `[nh][nm][ns]` (`90`, `10s`, `1m30s`, `1h`), in seconds; `None` when `text`
/// has no unit at all (a bare count), and an error for anything else or zero.
fn parse_time(what: &str, text: &str) -> anyhow::Result<(u64, bool)> {
    let bad = || {
        usage_err(format!(
            "{what} {text:?}: expected a positive number, or a time as [nh][nm][ns], or inf"
        ))
    };
    if let Ok(n) = text.parse::<u64>() {
        return if n > 0 { Ok((n, false)) } else { Err(bad()) };
    }
    let (mut total, mut num) = (0u64, String::new());
    let mut last_unit = 4;
    for c in text.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let (rank, mult) = match c {
            'h' => (1, 3600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return Err(bad()),
        };
        // Units in order, each once, each after a number.
        if num.is_empty() || (last_unit != 4 && rank <= last_unit) {
            return Err(bad());
        }
        last_unit = rank;
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(mult));
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok((total, true))
}

/// A count of intervals from a `duration` or `report` operand: a bare number counts
/// intervals, a time is rounded up to whole intervals; `None` for `inf`.
fn parse_count(what: &str, text: &str, interval: u64) -> anyhow::Result<Option<u64>> {
    if text == "inf" {
        return Ok(None);
    }
    let (n, is_time) = parse_time(what, text)?;
    Ok(Some(if is_time { n.div_ceil(interval) } else { n }))
}

/// The `-T` stamp of `epoch` seconds.
fn stamp(kind: char, epoch: u64) -> String {
    match kind {
        'u' => epoch.to_string(),
        'i' => {
            let tm = broken_down(epoch, false);
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                tm.tm_year + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec
            )
        }
        _ => {
            let tm = broken_down(epoch, true);
            let mut buf = [0u8; 64];
            // SAFETY: buf is writable for its length, the format is NUL-terminated and tm is
            // a valid broken-down time; strftime writes at most buf.len() bytes.
            let n = unsafe {
                libc::strftime(
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    c"%a %b %e %H:%M:%S %Z %Y".as_ptr(),
                    &tm,
                )
            };
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    }
}

/// `epoch` as a broken-down time, local or UTC.
fn broken_down(epoch: u64, local: bool) -> libc::tm {
    let t = epoch as libc::time_t;
    // SAFETY: libc::tm is plain data; all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; the _r variants keep no static state.
    unsafe {
        if local {
            libc::localtime_r(&t, &mut tm);
        } else {
            libc::gmtime_r(&t, &mut tm);
        }
    }
    tm
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the options ask for, parsed.
struct Opts {
    resources: Vec<stat::Resource>,
    reports: Vec<stat::ReportKind>,
    lines: stat::Lines,
    sort: Vec<stat::SortCol>,
    timestamp: Option<char>,
    with_global: bool,
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    // -R /PATH: the alternate root as the other tools spell it.
    let mut report_names = Vec::new();
    for r in std::mem::take(&mut cli.reports) {
        if r.starts_with('/') {
            if cli.altroot.is_some() {
                usage!("-R {r}: the alternate root is given twice");
            }
            cli.altroot = Some(PathBuf::from(r));
        } else {
            report_names.push(r);
        }
    }
    let store = Store::open(cli.altroot.as_deref())?;
    let msg = usage_err;
    let opts = Opts {
        resources: stat::parse_resources(&cli.resources).map_err(msg)?,
        reports: stat::parse_reports(&report_names).map_err(msg)?,
        lines: stat::parse_lines(&cli.lines).map_err(msg)?,
        sort: stat::parse_sort(&cli.sort).map_err(msg)?,
        timestamp: match cli.timestamp.as_deref() {
            None => None,
            Some("u") => Some('u'),
            Some("i") => Some('i'),
            Some("d") if cli.parsable => usage!("-T d is not valid with -p"),
            Some("d") => Some('d'),
            Some(t) => usage!("-T {t}: use u, d or i"),
        },
        with_global: cli.zones.is_empty() || cli.zones.iter().any(|z| z == "global"),
    };
    let only: Vec<String> = cli
        .zones
        .iter()
        .filter(|z| *z != "global")
        .cloned()
        .collect();
    let wants = Wants {
        syscalls: opts.resources.contains(&stat::Resource::Syscalls),
        runq: opts.resources.contains(&stat::Resource::Runq),
    };
    if wants.any() && cli.prometheus {
        usage!(
            "-r {}: not with --prometheus (an exporter would keep a probe on every \
             system call or context switch)",
            wants.names()
        );
    }
    if wants.any() {
        // Not root, no bpftrace, no tracefs: say so before anything else.
        trace::check_host(false).map_err(|e| anyhow::anyhow!("-r {}: {e}", wants.names()))?;
    }
    if let Some(addr) = cli.listen.as_deref() {
        return serve_prometheus(&store, &only, addr);
    }
    if cli.prometheus {
        let names = stat::live_zones(&store, &only)?;
        let now = stat::sample_all(&store, &names);
        print!("{}", stat::prometheus(&stat::report(&[], &now)));
        return Ok(());
    }
    if cli.quiet && opts.reports.is_empty() {
        usage!("-q requires -R: with no summary reports there would be nothing to print");
    }
    let Some(interval) = cli.interval.as_deref() else {
        usage!("an interval is required: zonestat [options] interval [duration [report]]");
    };
    let interval = match interval {
        "default" => 5,
        "inf" => usage!("interval \"inf\": the interval cannot be inf"),
        i => parse_time("interval", i)?.0,
    };
    let count = match cli.duration.as_deref() {
        None => None,
        Some(d) => parse_count("duration", d, interval)?,
    };
    let period = match cli.report.as_deref() {
        None => None,
        Some(_) if opts.reports.is_empty() => {
            usage!("the report operand requires -R (total, average, high)")
        }
        Some(r) => parse_count("report", r, interval)?,
    };
    for z in &only {
        if store.load(z)?.is_none() {
            anyhow::bail!("{z}: No such zone configured");
        }
    }
    // The eBPF child: started (and attached) before the first sample, stopped and reaped when
    // `bpf` is dropped, on every way out of this function.
    let mut bpf = if wants.any() {
        let seconds = count
            .map_or(INF_SECONDS, |c| {
                c.saturating_mul(interval).saturating_add(BPF_MARGIN)
            })
            .min(INF_SECONDS);
        let sampler = Sampler::start(&store, wants, seconds)
            .map_err(|e| anyhow::anyhow!("-r {}: {e}", wants.names()))?;
        Some(sampler)
    } else {
        None
    };
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut before = stat::sample_all(&store, &stat::live_zones(&store, &only)?);
    let mut host_before = stat::sample_host();
    let start = now_epoch();
    let mut acc = stat::Accum::default();
    let mut acc_start = start;
    let mut n: u64 = 0;
    let mut out = std::io::stdout().lock();
    if !cli.parsable && !cli.json && !cli.quiet {
        writeln!(out, "Collecting data for first interval...")?;
        out.flush()?;
    }
    if !opts.reports.is_empty() || bpf.is_some() {
        catch_sigint(bpf.is_some());
    }
    while count.is_none_or(|c| n < c) {
        // Interrupted (^C), zonestat prints the summary reports of the intervals so far.
        let interrupted = nap(Duration::from_secs(interval));
        let now = stat::sample_all(&store, &stat::live_zones(&store, &only)?);
        let host_now = stat::sample_host();
        let mut host = stat::host_usage(&host_before, &host_now, online);
        let mut usage = stat::report(&before, &now);
        if opts.with_global {
            let global = stat::global_usage(&host, &usage);
            usage.insert(0, global);
        }
        // (An interrupted interval is not reported: its figures are not taken.)
        if let Some(b) = bpf.as_mut().filter(|_| !interrupted) {
            b.take(&store)
                .map_err(|e| anyhow::anyhow!("-r {}: {e}", wants.names()))?
                .apply(&mut host, &mut usage);
        }
        let epoch = now_epoch();
        if !interrupted {
            n += 1;
            acc.add(&host, &usage);
        }
        if interrupted {
        } else if cli.json {
            let zones: Vec<serde_json::Value> = usage
                .iter()
                .filter(|u| u.zonename != "global")
                .map(|u| stat::json_usage(u, &opts.resources))
                .collect();
            let mut obj = serde_json::json!({
                "timestamp": epoch,
                "interval": interval,
                "total": host,
                "zones": zones,
            });
            // The eBPF figures are the global zone's too (the other resources' are not in -j).
            if let Some(g) = usage.iter().find(|u| u.zonename == "global") {
                if wants.any() {
                    obj["global"] = stat::json_usage(g, &opts.resources);
                }
            }
            writeln!(out, "{obj}")?;
        } else if !cli.quiet {
            let r = stat::Report {
                label: "interval",
                host: &host,
                zones: &usage,
                lines: opts.lines,
                sort: &opts.sort,
                names: &cli.names,
                timestamp: opts.timestamp.map(|t| stamp(t, epoch)),
            };
            write_report(&mut out, &cli, &opts, &r, |out, stamp_of| {
                if cli.parsable {
                    let ts = r
                        .timestamp
                        .as_ref()
                        .map_or(String::new(), |t| format!("{t}:"));
                    writeln!(
                        out,
                        "{ts}interval:header:since-last-interval:{}:{n}:{interval}",
                        stamp_of(epoch)
                    )
                } else {
                    if let Some(t) = &r.timestamp {
                        writeln!(out, "{t}")?;
                    }
                    writeln!(out, "Interval: {n}, Duration: {}", hms(n * interval))
                }
            })?;
        }
        let last = interrupted || count.is_some_and(|c| n >= c);
        if !opts.reports.is_empty()
            && acc.intervals > 0
            && (period.is_some_and(|p| acc.intervals >= p) || last)
        {
            for kind in &opts.reports {
                let (h, zones) = acc.report(*kind);
                let r = stat::Report {
                    label: kind.label(),
                    host: &h,
                    zones: &zones,
                    lines: opts.lines,
                    sort: &opts.sort,
                    names: &cli.names,
                    timestamp: opts.timestamp.map(|t| stamp(t, epoch)),
                };
                let intervals = acc.intervals;
                write_report(&mut out, &cli, &opts, &r, |out, stamp_of| {
                    if cli.parsable {
                        let ts = r
                            .timestamp
                            .as_ref()
                            .map_or(String::new(), |t| format!("{t}:"));
                        writeln!(
                            out,
                            "{ts}{}:header:{}:{}:{interval}:{}",
                            kind.label(),
                            stamp_of(acc_start),
                            stamp_of(epoch),
                            epoch.saturating_sub(acc_start)
                        )
                    } else {
                        let d = stamp(opts.timestamp.unwrap_or('d'), acc_start);
                        let e = stamp(opts.timestamp.unwrap_or('d'), epoch);
                        writeln!(out, "REPORT: {}", kind.title())?;
                        writeln!(out, "    Start: {d}\n      End: {e}")?;
                        writeln!(
                            out,
                            "    Intervals: {intervals}, Duration: {}",
                            hms(intervals * interval)
                        )
                    }
                })?;
            }
            acc = stat::Accum::default();
            acc_start = epoch;
        }
        out.flush()?;
        before = now;
        host_before = host_now;
        if interrupted {
            break;
        }
    }
    Ok(())
}

/// Set by SIGINT once [`catch_sigint`] has run.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Take SIGINT as "print the summary reports and stop" (illumos zonestat's NOTES); with
/// `term`, SIGTERM too (zonestat then has an eBPF child to stop and reap on its way out).
fn catch_sigint(term: bool) {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let _ = unsafe { sigaction(Signal::SIGINT, &act) };
    if term {
        // SAFETY: as above.
        let _ = unsafe { sigaction(Signal::SIGTERM, &act) };
    }
}

/// Sleep for `d` in short naps (bounded: d / 100 ms of them); true when SIGINT came.
fn nap(d: Duration) -> bool {
    let step = Duration::from_millis(100);
    let end = std::time::Instant::now() + d;
    loop {
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(step));
    }
}

/// `h:mm:ss` of `secs`, as illumos prints durations.
fn hms(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One report: its header (by `header`), the resources asked for, its footer.
fn write_report(
    out: &mut impl Write,
    cli: &Cli,
    opts: &Opts,
    r: &stat::Report,
    header: impl FnOnce(&mut dyn Write, &dyn Fn(u64) -> String) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stamp_of = |t: u64| stamp(opts.timestamp.unwrap_or('u'), t);
    if !cli.parsable || r.lines.header {
        header(out, &stamp_of)?;
    }
    for res in &opts.resources {
        let text = match (res, cli.parsable) {
            (stat::Resource::Summary, true) => stat::summary_parsable(r),
            (stat::Resource::Summary, false) => stat::summary(r),
            (res, true) => stat::resource_parsable(*res, r),
            (res, false) => stat::resource_report(*res, r),
        };
        write!(out, "{text}")?;
    }
    if cli.parsable && r.lines.footer {
        let ts = r
            .timestamp
            .as_ref()
            .map_or(String::new(), |t| format!("{t}:"));
        writeln!(out, "{ts}{}:footer", r.label)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_as_illumos_reads_them() {
        assert_eq!(parse_time("d", "5").unwrap(), (5, false));
        assert_eq!(parse_time("d", "2m").unwrap(), (120, true));
        assert_eq!(parse_time("d", "1h").unwrap(), (3600, true));
        assert_eq!(parse_time("d", "1m30s").unwrap(), (90, true));
        assert!(parse_time("d", "30s1m").is_err());
        let err = parse_time("interval", "0").unwrap_err().to_string();
        assert!(err.contains("interval \"0\""), "{err}");
        assert!(parse_time("d", "x").is_err());
        // duration: a bare number counts intervals; a time is rounded up to them.
        assert_eq!(parse_count("duration", "3", 2).unwrap(), Some(3));
        assert_eq!(parse_count("duration", "5s", 2).unwrap(), Some(3));
        assert_eq!(parse_count("duration", "1m", 10).unwrap(), Some(6));
        assert_eq!(parse_count("duration", "inf", 10).unwrap(), None);
        assert_eq!(hms(3725), "1:02:05");
        assert_eq!(stamp('i', 0), "19700101T000000Z");
        assert_eq!(stamp('u', 42), "42");
    }
}
