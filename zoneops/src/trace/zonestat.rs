//! zonestat's eBPF figures: system calls per second (`-r syscalls`) and run-queue latency
//! (`-r runq`) per zone, where the cgroup files have nothing to say.
//!
//! **One bpftrace child**, started only when one of those resources is asked for (never for
//! the default or `all`: every system call and every context switch then runs a probe; see
//! bench/results/zonetrace.md for what a `raw_syscalls` probe costs). The program keys its maps
//! by cgroup id (the unified hierarchy's, as zonetrace does: [`super`]) and, every second,
//! prints and clears them and prints a marker line; a reader thread adds each second's counts
//! up, and zonestat takes the sums at each of its intervals ([`Sampler::take`]), naming the
//! ids with a fresh [`super::zone_map`] (so a zone booted after zonestat started is named
//! too). Seconds are counted by the markers, so a rate is per second of probing.
//!
//! **Run-queue latency** is the time from a task becoming runnable (`sched_wakeup`,
//! `sched_wakeup_new`, or being preempted: `sched_switch` with a running `prev_state`) to its
//! `sched_switch` onto a CPU. The probe that sees it run is in the context of the task it
//! replaces, so the waiting task's cgroup comes from a pid → cgroup map filled at every
//! `sched_switch` from the prev side (the task's own context) and, for a new task that has not
//! run yet, at `sched_wakeup_new` from its parent's (whose cgroup it was born in). Exits drop
//! their entries.
//!
//! **Bounds.** Maps hold at most [`super::DEFAULT_MAP_KEYS`] keys (the pid maps too: tasks past
//! that are not measured); the program ends by itself after the run's duration (the whole
//! zonestat run, plus a margin) with bpftrace's watchdog behind it; the child is in its own
//! process group, dies with zonestat (`PR_SET_PDEATHSIG`), and [`Sampler`] stops and reaps it
//! when dropped, which every way out of zonestat does (errors, the end of the run, SIGINT and
//! SIGTERM, which zonestat catches while the child runs).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zones::store::Store;

use super::{Options, Run, TraceError, DEFAULT_MAP_KEYS};
use crate::stat::{HostUsage, RunqUsage, SyscallUsage, Usage};

/// How long bpftrace may take to compile and attach the program.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// The marker printed after each second's maps.
const MARKER: &str = "zonestat-batch";
/// How long a take waits for a second that is due but not printed yet.
const SECOND_DUE: Duration = Duration::from_millis(1500);
/// A run of `inf` intervals: the child's own bound (it lives as long as zonestat otherwise).
pub const INF_SECONDS: u64 = 366 * 86_400;

/// Which eBPF figures to collect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    pub syscalls: bool,
    pub runq: bool,
}

impl Wants {
    pub fn any(self) -> bool {
        self.syscalls || self.runq
    }

    /// `-r` names of what is wanted, for messages.
    pub fn names(self) -> String {
        let mut v = Vec::new();
        if self.syscalls {
            v.push("syscalls");
        }
        if self.runq {
            v.push("runq");
        }
        v.join(",")
    }

    fn tracepoints(self) -> Vec<&'static str> {
        let mut tps = Vec::new();
        if self.syscalls {
            tps.push("raw_syscalls:sys_enter");
        }
        if self.runq {
            tps.extend([
                "sched:sched_wakeup",
                "sched:sched_wakeup_new",
                "sched:sched_switch",
                "sched:sched_process_exit",
            ]);
        }
        tps
    }
}

const SYSCALLS_PROGRAM: &str = "tracepoint:raw_syscalls:sys_enter { @zs_sc[cgroup] = count(); }\n";

/// prev_state & 0xff == 0: the task was running (0) or preempted (TASK_REPORT_MAX, 0x100),
/// so it goes back on the run queue.
const RUNQ_PROGRAM: &str = r#"tracepoint:sched:sched_wakeup { @zs_qt[args->pid] = nsecs; }
tracepoint:sched:sched_wakeup_new { @zs_qt[args->pid] = nsecs; @zs_cg[args->pid] = cgroup; }
tracepoint:sched:sched_switch {
  @zs_cg[args->prev_pid] = cgroup;
  if (args->prev_pid != 0 && (args->prev_state & 0xff) == 0) { @zs_qt[args->prev_pid] = nsecs; }
  $t = @zs_qt[args->next_pid];
  if ($t > 0) {
    $c = @zs_cg[args->next_pid];
    if ($c > 0) {
      $d = nsecs - $t;
      @zs_rqn[$c] = count(); @zs_rqs[$c] = sum($d); @zs_rqm[$c] = max($d);
    }
    delete(@zs_qt[args->next_pid]);
  }
}
tracepoint:sched:sched_process_exit { delete(@zs_cg[args->pid]); delete(@zs_qt[args->pid]); }
"#;

/// Whether a map is wanted.
type WantedWhen = fn(Wants) -> bool;

/// The maps printed every second: (name, wanted when).
const PRINTED: &[(&str, WantedWhen)] = &[
    ("@zs_sc", |w| w.syscalls),
    ("@zs_rqn", |w| w.runq),
    ("@zs_rqs", |w| w.runq),
    ("@zs_rqm", |w| w.runq),
];

/// The bpftrace program for `wants`, ending after `seconds`.
pub fn program(wants: Wants, seconds: u64) -> Result<String, TraceError> {
    let mut p = String::new();
    if wants.syscalls {
        p.push_str(SYSCALLS_PROGRAM);
    }
    if wants.runq {
        p.push_str(RUNQ_PROGRAM);
    }
    let maps: Vec<&str> = PRINTED
        .iter()
        .filter(|(_, w)| w(wants))
        .map(|(m, _)| *m)
        .collect();
    let print: String = maps.iter().map(|m| format!("print({m}); ")).collect();
    let clear: String = maps.iter().map(|m| format!("clear({m}); ")).collect();
    p.push_str(&format!(
        "interval:s:1 {{ {print}{clear}printf(\"{MARKER}\\n\"); }}\n"
    ));
    let mut end = clear;
    if wants.runq {
        end.push_str("clear(@zs_cg); clear(@zs_qt); ");
    }
    p.push_str(&format!("END {{ {end}}}\n"));
    // Unscoped and without `zonename`: build_program adds only the duration bound.
    super::build_program(&p, &super::ZoneMap::default(), false, seconds)
}

/// One cgroup's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    syscalls: u64,
    waits: u64,
    wait_ns: u64,
    max_ns: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.syscalls += o.syscalls;
        self.waits += o.waits;
        self.wait_ns += o.wait_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }
}

/// What the reader thread has gathered.
#[derive(Debug, Default)]
struct Gathered {
    attached: bool,
    ended: bool,
    /// Whole seconds since the last take, and their counts by cgroup id.
    seconds: u64,
    /// Whole seconds since the start.
    seconds_total: u64,
    by_cgroup: HashMap<u64, Counts>,
    /// The second being printed (until its marker).
    pending: HashMap<u64, Counts>,
}

impl Gathered {
    /// One line of bpftrace's `-f json` output.
    fn line(&mut self, line: &str) {
        let Ok(rec) = serde_json::from_str::<Value>(line) else {
            return;
        };
        match rec["type"].as_str() {
            Some("attached_probes") => self.attached = true,
            Some("printf") if rec["data"].as_str().is_some_and(|d| d.contains(MARKER)) => {
                for (id, c) in self.pending.drain() {
                    self.by_cgroup.entry(id).or_default().add(&c);
                }
                self.seconds += 1;
                self.seconds_total += 1;
            }
            Some("map") => {
                let Some(obj) = rec["data"].as_object() else {
                    return;
                };
                for (name, entries) in obj {
                    let Some(entries) = entries.as_object() else {
                        continue;
                    };
                    for (k, v) in entries {
                        let (Ok(id), Some(v)) = (k.parse::<u64>(), v.as_u64()) else {
                            continue;
                        };
                        let c = self.pending.entry(id).or_default();
                        match name.as_str() {
                            "@zs_sc" => c.syscalls += v,
                            "@zs_rqn" => c.waits += v,
                            "@zs_rqs" => c.wait_ns += v,
                            "@zs_rqm" => c.max_ns = c.max_ns.max(v),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

type Shared = Arc<(Mutex<Gathered>, Condvar)>;

/// The per-zone figures of one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    wants: Wants,
    /// Seconds probed in the interval (0: no data yet).
    pub seconds: u64,
    total: Counts,
    by_zone: HashMap<String, Counts>,
}

fn syscall_usage(c: &Counts, seconds: u64) -> SyscallUsage {
    SyscallUsage {
        per_second: c.syscalls as f64 / seconds.max(1) as f64,
        count: c.syscalls,
    }
}

fn runq_usage(c: &Counts) -> RunqUsage {
    RunqUsage {
        waits: c.waits,
        mean_us: if c.waits > 0 {
            c.wait_ns as f64 / c.waits as f64 / 1e3
        } else {
            0.0
        },
        max_us: c.max_ns as f64 / 1e3,
    }
}

impl Figures {
    /// Put the figures into the interval's rows: each zone's (zero for a zone that made no
    /// system call and waited for no CPU), the global zone's, and the host's as `[total]`.
    /// Without a second of data, everything is left unknown (`None`).
    pub fn apply(&self, host: &mut HostUsage, zones: &mut [Usage]) {
        if self.seconds == 0 {
            return;
        }
        let none = Counts::default();
        if self.wants.syscalls {
            host.syscalls = Some(syscall_usage(&self.total, self.seconds));
        }
        if self.wants.runq {
            host.runq = Some(runq_usage(&self.total));
        }
        for u in zones {
            let c = self.by_zone.get(&u.zonename).unwrap_or(&none);
            if self.wants.syscalls {
                u.syscalls = Some(syscall_usage(c, self.seconds));
            }
            if self.wants.runq {
                u.runq = Some(runq_usage(c));
            }
        }
    }
}

/// The bpftrace child and what it has printed.
pub struct Sampler {
    wants: Wants,
    run: Option<Run>,
    shared: Shared,
    reader: Option<std::thread::JoinHandle<()>>,
    /// When the probes were attached: bpftrace's seconds count from about then.
    attached_at: Instant,
    /// The program's own bound, seconds.
    seconds: u64,
}

impl Sampler {
    /// Check the prerequisites (root of the host, bpftrace, tracefs, the tracepoints, a
    /// unified cgroup hierarchy), start bpftrace for `seconds` at most, and return once its
    /// probes are attached (within [`ATTACH_TIMEOUT`]).
    pub fn start(store: &Store, wants: Wants, seconds: u64) -> Result<Sampler, TraceError> {
        let bpftrace = super::check_host(false)?;
        let events = super::tracefs()?;
        super::check_tracepoint_list(
            &format!("-r {}", wants.names()),
            &wants.tracepoints(),
            &events,
        )?;
        // No unified hierarchy, no zone to tell apart: refuse now rather than report all as
        // global.
        super::zone_map(store, &[], DEFAULT_MAP_KEYS as usize)?;
        let text = program(wants, seconds)?;
        let opts = Options {
            seconds,
            map_keys: DEFAULT_MAP_KEYS,
            strlen: 16,
            json: true,
        };
        let mut run = super::spawn_owned(&bpftrace, &text, &opts)?;
        let Some(stdout) = run.stdout() else {
            run.stop();
            return Err(TraceError::Child("bpftrace's output is not piped".into()));
        };
        let shared: Shared = Arc::default();
        let reader = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || read_loop(stdout, &shared))
        };
        let mut sampler = Sampler {
            wants,
            run: Some(run),
            shared,
            reader: Some(reader),
            attached_at: Instant::now(),
            seconds,
        };
        sampler.wait_attached()?;
        sampler.attached_at = Instant::now();
        Ok(sampler)
    }

    fn wait_attached(&mut self) -> Result<(), TraceError> {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        let (lock, cv) = &*self.shared;
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !g.attached && !g.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(g);
                self.stop();
                return Err(TraceError::Child(format!(
                    "bpftrace did not attach its probes within {} s",
                    ATTACH_TIMEOUT.as_secs()
                )));
            }
            g = cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let ended = g.ended && !g.attached;
        drop(g);
        if ended {
            return Err(self.ended_error());
        }
        Ok(())
    }

    /// Why bpftrace ended: its status (its messages went to stderr).
    fn ended_error(&mut self) -> TraceError {
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        match self.run.take().map(Run::wait) {
            Some(Err(e)) => e,
            _ => TraceError::Child(format!(
                "bpftrace ended before zonestat did (its bound: {} s)",
                self.seconds
            )),
        }
    }

    /// The figures gathered since the last take, the ids named with the zones live now. An
    /// error when bpftrace has ended before zonestat.
    pub fn take(&mut self, store: &Store) -> Result<Figures, TraceError> {
        let (seconds, by_cgroup, ended) = {
            let (lock, cv) = &*self.shared;
            let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
            // The seconds due by now (bpftrace's timer started just before it said it was
            // attached): wait a little for one printed late, so intervals line up with them.
            let due = self.attached_at.elapsed().as_secs();
            let deadline = Instant::now() + SECOND_DUE;
            while g.seconds_total < due && !g.ended {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                g = cv
                    .wait_timeout(g, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            (
                std::mem::take(&mut g.seconds),
                std::mem::take(&mut g.by_cgroup),
                g.ended,
            )
        };
        if ended && seconds == 0 {
            return Err(self.ended_error());
        }
        let map = super::zone_map(store, &[], DEFAULT_MAP_KEYS as usize)?;
        let mut f = Figures {
            wants: self.wants,
            seconds,
            ..Figures::default()
        };
        for (id, c) in &by_cgroup {
            f.total.add(c);
            f.by_zone.entry(map.name(*id)).or_default().add(c);
        }
        Ok(f)
    }

    /// Stop bpftrace (SIGKILL) and reap it; its reader ends with it.
    pub fn stop(&mut self) {
        if let Some(run) = self.run.take() {
            run.stop();
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Feed bpftrace's output to `shared` until it ends.
fn read_loop(stdout: impl Read, shared: &Shared) {
    let (lock, cv) = &**shared;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let was = (g.attached, g.seconds_total);
        g.line(&line);
        if (g.attached, g.seconds_total) != was {
            cv.notify_all();
        }
    }
    lock.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
    cv.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_added_up_by_cgroup() {
        let mut g = Gathered::default();
        for l in [
            r#"{"type": "attached_probes", "data": {"probes": 6}}"#,
            r#"{"type": "map", "data": {"@zs_sc": {"7": 100, "1": 5}}}"#,
            r#"{"type": "map", "data": {"@zs_rqn": {"7": 2}}}"#,
            r#"{"type": "map", "data": {"@zs_rqs": {"7": 3000}}}"#,
            r#"{"type": "map", "data": {"@zs_rqm": {"7": 2500}}}"#,
            r#"{"type": "printf", "data": "zonestat-batch\n"}"#,
            r#"{"type": "map", "data": {"@zs_sc": {"7": 300}}}"#,
            r#"{"type": "map", "data": {"@zs_rqm": {"7": 1000}}}"#,
            r#"{"type": "printf", "data": "zonestat-batch\n"}"#,
            r#"{"type": "map", "data": {"@zs_sc": {"7": 99}}}"#,
        ] {
            g.line(l);
        }
        assert!(g.attached);
        assert_eq!(g.seconds, 2);
        let c = g.by_cgroup[&7];
        assert_eq!(
            (c.syscalls, c.waits, c.wait_ns, c.max_ns),
            (400, 2, 3000, 2500)
        );
        assert_eq!(g.by_cgroup[&1].syscalls, 5);
        // The unfinished second waits for its marker.
        assert_eq!(g.pending[&7].syscalls, 99);
        let s = syscall_usage(&c, g.seconds);
        assert_eq!((s.per_second, s.count), (200.0, 400));
        let q = runq_usage(&c);
        assert_eq!((q.waits, q.mean_us, q.max_us), (2, 1.5, 2.5));
        assert_eq!(runq_usage(&Counts::default()).mean_us, 0.0);
    }

    #[test]
    fn figures_fill_every_row_or_none() {
        let mut f = Figures {
            wants: Wants {
                syscalls: true,
                runq: false,
            },
            seconds: 2,
            ..Figures::default()
        };
        f.total.syscalls = 50;
        f.by_zone.insert(
            "web".into(),
            Counts {
                syscalls: 40,
                ..Counts::default()
            },
        );
        let mut host = HostUsage::default();
        let mut rows = vec![
            crate::stat::global_usage(&host, &[]),
            crate::stat::global_usage(&host, &[]),
        ];
        rows[1].zonename = "web".into();
        f.apply(&mut host, &mut rows);
        assert_eq!(host.syscalls.unwrap().per_second, 25.0);
        assert_eq!(rows[0].syscalls.unwrap().count, 0);
        assert_eq!(rows[1].syscalls.unwrap().per_second, 20.0);
        assert!(rows[1].runq.is_none() && host.runq.is_none());
        // No second of data yet: unknown, not zero.
        f.seconds = 0;
        let mut host = HostUsage::default();
        f.apply(&mut host, &mut rows[..1]);
        assert!(host.syscalls.is_none());
    }

    #[test]
    fn the_program_has_only_what_is_asked_for() {
        let p = program(
            Wants {
                syscalls: true,
                runq: false,
            },
            30,
        )
        .unwrap();
        assert!(p.contains("raw_syscalls:sys_enter"), "{p}");
        assert!(!p.contains("sched_switch"), "{p}");
        assert!(p.contains("print(@zs_sc); clear(@zs_sc); printf(\"zonestat-batch\\n\");"));
        assert!(p.contains("interval:s:30\n{\nexit();\n}"), "{p}");
        let p = program(
            Wants {
                syscalls: false,
                runq: true,
            },
            5,
        )
        .unwrap();
        assert!(!p.contains("raw_syscalls"), "{p}");
        assert!(p.contains("@zs_cg[args->prev_pid] = cgroup;"), "{p}");
        assert!(p.contains("clear(@zs_cg); clear(@zs_qt);"), "{p}");
    }
}
