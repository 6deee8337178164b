//! Phase timestamps for profiling: with `RUNZ_TRACE_TIMES=1` in the environment, every process
//! of a runz operation (the CLI, the intermediate child, init) prints one line per phase to
//! stderr: `runz-trace <CLOCK_MONOTONIC ms> <pid> <phase>`. The clock is shared by all
//! processes, so the lines of parent and children merge into one timeline (bench/bench.py reads
//! them to write bench/results/profile.md). Without the variable nothing is printed and the
//! cost is one relaxed atomic load per mark.

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not looked up yet, 1: off, 2: on.
static ENABLED: AtomicU8 = AtomicU8::new(0);

fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        0 => {
            let on =
                std::env::var_os("RUNZ_TRACE_TIMES").is_some_and(|v| !v.is_empty() && v != "0");
            ENABLED.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        v => v == 2,
    }
}

/// Milliseconds on CLOCK_MONOTONIC (the clock of Python's `time.monotonic()` too).
pub fn now_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Print a phase mark when tracing is on. Safe after fork in a single-threaded child.
pub fn mark(phase: &str) {
    if !enabled() {
        return;
    }
    let line = format!(
        "runz-trace {:.3} {} {phase}\n",
        now_ms(),
        std::process::id()
    );
    // One write(2), so lines of concurrent processes do not interleave.
    // SAFETY: writes `line.len()` bytes from a live buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}
