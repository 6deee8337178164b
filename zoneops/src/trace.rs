//! zonetrace's engine: which cgroup ids belong to which zone, the zone-aware rewriting of a
//! bpftrace program, and the bpftrace driver (prerequisites, bounds, output).
//!
//! **How a probe knows its zone.** bpftrace's `cgroup` builtin is
//! `bpf_get_current_cgroup_id()`: the id of the task's cgroup in the *unified* (v2) hierarchy,
//! on pure v2 hosts and on hybrid ones alike (v1 cgroups have no id a BPF program can read).
//! Every zone gets a cgroup there: the engine creates the zone's cgroup in every mounted
//! hierarchy, the unified one included on a hybrid host (`zones_cgroup::Cgroup::create`), and
//! puts init there with `clone3(CLONE_INTO_CGROUP)`; zlogin joins it. A cgroup2 directory's
//! inode number is its cgroup id, so the map zone → ids is one `stat` per directory of the
//! zone's unified subtree, read from the cgroup the engine recorded for the zone (the same
//! state zonestat reads). A cgroup created below a zone after the trace started is not in the
//! kernel-side maps (as with bpftrace's own `cgroupid()`: `-z` misses it and `zonename` is
//! empty for it; restart the trace), but the toolkit's output still names it: an unknown id
//! is looked up in the zones' subtrees when it is printed. The pid namespace inode
//! would also tell zones apart, but needs BTF casts of `curtask` on every event and misses a
//! process that `zlogin` has not yet moved into the zone's namespaces; the cgroup id is
//! one helper call.
//!
//! **What a program sees.** `-z ZONE` adds a predicate `@__zonetrace_in[cgroup]` to every probe
//! but BEGIN, END and interval (the map holds the zone's ids, filled in BEGIN): events of
//! other zones are dropped in the kernel. The word `zonename` in a program (outside strings
//! and comments) becomes `@__zonetrace_zn[cgroup]`, a map from every known cgroup id to its
//! zone's name (`global` for the host's). The toolkit (`trace/toolkit.rs`) prints cgroup ids
//! and zonetrace names them when it prints.
//!
//! **Bounds.** Every run ends: an `interval` probe calls `exit()` after the duration, and a
//! watchdog kills bpftrace if it has not ended well after that. Maps hold at most
//! `BPFTRACE_MAP_KEYS_MAX` keys; `--unsafe` is never passed.

pub mod syscalls;
pub mod toolkit;
pub mod zonestat;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zones::store::Store;

use self::toolkit::{Aggregate, Output, Script};
use super::stat::live_zones;
use super::ZonePaths;
use zones_engine::container;

/// Where the unified hierarchy is found: pure v2 at the root, hybrid beneath it.
const UNIFIED_MOUNTS: &[&str] = &["/sys/fs/cgroup/unified", "/sys/fs/cgroup"];
/// Where tracefs is mounted when it is not yet (the kernel's own mount point for it).
const TRACEFS: &str = "/sys/kernel/tracing";
/// The kernel's type information, which casts to kernel structs need.
const BTF: &str = "/sys/kernel/btf/vmlinux";
/// At most this many cgroup ids are named (zones' and the host's); also the map key limit.
pub const DEFAULT_MAP_KEYS: u32 = 4096;
/// How long bpftrace may take past the duration (compiling, attaching, printing maps) before
/// the watchdog kills it.
const GRACE: Duration = Duration::from_secs(30);
/// Programs longer than this go to bpftrace in a file, not as one argument (the kernel's
/// limit for one is 128 KiB).
const MAX_ARG: usize = 100 << 10;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error("zone '{zone}': {msg}")]
    Zone { zone: String, msg: String },
    #[error("{0}")]
    Prerequisite(String),
    #[error("the program: {0}")]
    Program(String),
    #[error("cannot run bpftrace: {0}")]
    Spawn(std::io::Error),
    #[error("bpftrace failed ({status}): {detail}")]
    Bpftrace { status: String, detail: String },
    #[error("bpftrace ran past its {0} s duration and was killed")]
    Timeout(u64),
    /// A bpftrace that its owner runs alongside (zonestat's) did not start or ended early.
    #[error("{0}")]
    Child(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn prereq(msg: impl Into<String>) -> TraceError {
    TraceError::Prerequisite(msg.into())
}

/// cgroup id → zone name, for the zones traced (and the host's cgroups as `global`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneMap {
    pub names: HashMap<u64, String>,
    /// The ids of the zones `-z` selected (all of them when no zone was named).
    pub selected: Vec<u64>,
    /// Each traced zone's unified cgroup directory, to name cgroups made after the start.
    pub zone_dirs: Vec<(String, PathBuf)>,
    /// Ids first seen in the output, named by looking again (each id once).
    late: std::cell::RefCell<HashMap<u64, String>>,
}

impl ZoneMap {
    /// The zone name of a cgroup id: a zone's, or `global`. An id the map does not know (a
    /// cgroup made in a zone after the trace started) is looked for in the zones' subtrees.
    pub fn name(&self, id: u64) -> String {
        if let Some(n) = self.names.get(&id) {
            return n.clone();
        }
        if let Some(n) = self.late.borrow().get(&id) {
            return n.clone();
        }
        let found = self
            .zone_dirs
            .iter()
            .find(|(_, dir)| subtree_ids(dir, DEFAULT_MAP_KEYS as usize).contains(&id))
            .map_or_else(|| "global".to_string(), |(z, _)| z.clone());
        self.late.borrow_mut().insert(id, found.clone());
        found
    }
}

/// The unified hierarchy's mount point, if one is mounted.
pub fn unified_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    UNIFIED_MOUNTS.iter().map(PathBuf::from).find(|p| {
        mounts.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) == p.to_str().as_ref() && l.contains(" - cgroup2 ")
        })
    })
}

/// The cgroup ids of `dir` and the directories beneath it, at most `limit` of them.
fn subtree_ids(dir: &Path, limit: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if ids.len() >= limit {
            break;
        }
        let Ok(md) = std::fs::metadata(&d) else {
            continue;
        };
        ids.push(md.ino());
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    ids
}

/// The unified (v2) cgroup directory of a live zone, from its container state.
fn zone_unified_dir(store: &Store, name: &str) -> Result<PathBuf, TraceError> {
    let paths = ZonePaths::new(store, name);
    let zerr = |msg: String| TraceError::Zone {
        zone: name.to_string(),
        msg,
    };
    let (st, _) = container::state(&paths.runz_root, name).map_err(|e| zerr(e.to_string()))?;
    let cg = st
        .cgroup
        .ok_or_else(|| zerr("its container has no cgroup".into()))?;
    let h = cg.paths().iter().find(|h| h.v2).ok_or_else(|| {
        zerr(
            "has no cgroup in the unified (cgroup v2) hierarchy, so BPF cannot tell its \
             processes apart; mount cgroup2 (e.g. at /sys/fs/cgroup/unified) and reboot the zone"
                .into(),
        )
    })?;
    if !h.dir.is_dir() {
        return Err(zerr(format!(
            "its cgroup {} is gone; is the zone still running?",
            h.dir.display()
        )));
    }
    Ok(h.dir.clone())
}

/// Build the map for `only` (every live zone when empty): each zone's unified subtree, and
/// every other cgroup of the unified hierarchy as `global`, at most `limit` ids in all.
pub fn zone_map(store: &Store, only: &[String], limit: usize) -> Result<ZoneMap, TraceError> {
    for z in only {
        if store.load(z)?.is_none() {
            return Err(TraceError::Zone {
                zone: z.clone(),
                msg: "No such zone configured".into(),
            });
        }
    }
    let live = live_zones(store, &[]).map_err(|e| match e {
        super::stat::StatError::Store(e) => TraceError::Store(e),
        super::stat::StatError::Zone { zone, msg } => TraceError::Zone { zone, msg },
    })?;
    for z in only {
        if !live.contains(z) {
            return Err(TraceError::Zone {
                zone: z.clone(),
                msg: "not running: boot it first (zoneadm -z ZONE boot)".into(),
            });
        }
    }
    let Some(root) = unified_mount() else {
        return Err(prereq(
            "no cgroup v2 (unified) hierarchy is mounted: BPF programs see cgroup ids only \
             there; mount cgroup2 at /sys/fs/cgroup/unified and boot the zones again",
        ));
    };
    let mut map = ZoneMap::default();
    for z in &live {
        let dir = match zone_unified_dir(store, z) {
            Ok(d) => d,
            Err(e) if only.contains(z) => return Err(e),
            Err(_) => continue,
        };
        map.zone_dirs.push((z.clone(), dir.clone()));
        for id in subtree_ids(&dir, limit.saturating_sub(map.names.len())) {
            map.names.insert(id, z.clone());
            if only.is_empty() || only.contains(z) {
                map.selected.push(id);
            }
        }
    }
    for id in subtree_ids(&root, limit) {
        if map.names.len() >= limit {
            break;
        }
        map.names.entry(id).or_insert_with(|| "global".into());
    }
    Ok(map)
}

/// Prerequisites every trace needs: root of the host (not a zone's root), bpftrace on PATH,
/// tracefs (mounted here when it is not), and BTF when `needs_btf`.
pub fn check_host(needs_btf: bool) -> Result<PathBuf, TraceError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(prereq(
            "only root of the global zone can trace; run as root",
        ));
    }
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let initial = uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    if !initial {
        return Err(prereq(
            "tracing is for the global zone only: this root is in a user namespace",
        ));
    }
    let bpftrace = find_bpftrace().ok_or_else(|| {
        prereq(
            "bpftrace not found in PATH: install it (apt-get install bpftrace, or \
             scripts/install-deps.sh)",
        )
    })?;
    if needs_btf && !Path::new(BTF).exists() {
        return Err(prereq(format!(
            "{BTF} is missing: this script needs the kernel's BTF (CONFIG_DEBUG_INFO_BTF=y)"
        )));
    }
    tracefs()?;
    Ok(bpftrace)
}

fn find_bpftrace() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("bpftrace"))
        .find(|p| p.is_file())
}

/// The tracefs events directory, mounting tracefs at /sys/kernel/tracing if no tracefs is
/// mounted yet (it stays mounted, as the kernel's own mount point for it).
pub fn tracefs() -> Result<PathBuf, TraceError> {
    for base in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let events = Path::new(base).join("events");
        if events.is_dir() {
            return Ok(events);
        }
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| {
        prereq(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({e}); the kernel \
             needs CONFIG_FTRACE and tracefs"
        ))
    })?;
    Ok(Path::new(TRACEFS).join("events"))
}

/// Every tracepoint of `script` exists in this kernel.
pub fn check_tracepoints(script: &Script, events: &Path) -> Result<(), TraceError> {
    check_tracepoint_list(script.name, script.tracepoints, events)
}

/// Every tracepoint (`category:name`) of `tracepoints` exists in this kernel; `who` names the
/// program that needs them.
pub fn check_tracepoint_list(
    who: &str,
    tracepoints: &[&str],
    events: &Path,
) -> Result<(), TraceError> {
    for tp in tracepoints {
        let (cat, name) = tp.split_once(':').unwrap_or((tp, ""));
        if !events.join(cat).join(name).is_dir() {
            return Err(prereq(format!(
                "{who}: tracepoint {tp} is not available in this kernel ({} has no {cat}/{name})",
                events.display()
            )));
        }
    }
    Ok(())
}

/// A probe header without its comments and preprocessor lines, trimmed.
fn clean_header(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(j) = skip_comment(b, i) {
            i = j;
            continue;
        }
        if b[i] == b'#' && out.trim().is_empty() {
            i = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            continue;
        }
        let ch = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + ch]);
        i += ch;
    }
    out.trim().to_string()
}

/// The probes that run outside any zone's task: no zone predicate for them.
fn is_unscoped(header: &str) -> bool {
    header.split(',').map(str::trim).all(|p| {
        p == "BEGIN"
            || p == "END"
            || p.starts_with("interval:")
            || p.starts_with("i:")
            || p.is_empty()
    })
}

/// Skip a string literal starting at `i` (on the opening quote); the index after it.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(b.len())
}

/// Skip a comment starting at `i` if there is one; the index after it.
fn skip_comment(b: &[u8], i: usize) -> Option<usize> {
    if b[i..].starts_with(b"//") {
        Some(
            b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p),
        )
    } else if b[i..].starts_with(b"/*") {
        Some(
            b[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(b.len(), |p| i + 2 + p + 2),
        )
    } else {
        None
    }
}

/// Add `pred` to every probe of `program` but BEGIN, END and interval: `/P/` becomes
/// `/((P) != 0) && pred/`, a probe without one gets `/pred/`. Top-level C definitions (`struct`,
/// `#include`) are left alone. A predicate must be separated from its probe by a blank.
pub fn scope_probes(program: &str, pred: &str) -> Result<String, TraceError> {
    let b = program.as_bytes();
    let mut out = String::with_capacity(program.len() + 64);
    let mut i = 0;
    let mut header_start = 0;
    while i < b.len() {
        if let Some(j) = skip_comment(b, i) {
            i = j;
            continue;
        }
        let c = b[i];
        if c == b'#' && clean_header(&program[header_start..i]).is_empty() {
            i = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            continue;
        }
        let header = clean_header(&program[header_start..i]);
        let header = header.as_str();
        let c_def = ["struct", "union", "enum", "typedef"]
            .iter()
            .any(|k| header.starts_with(k));
        let blank_before = i > 0 && b[i - 1].is_ascii_whitespace();
        if c == b'/' && blank_before && !c_def && !header.is_empty() {
            // A predicate: up to the `/` that is followed by `{`.
            let (mut j, mut depth) = (i + 1, 0i32);
            let mut end = None;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    b'/' if depth == 0 => {
                        let rest = program[j + 1..].trim_start();
                        if rest.starts_with('{') {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let Some(end) = end else {
                // Not a predicate (a path in a uprobe, say): part of the header.
                i += 1;
                continue;
            };
            out.push_str(&program[header_start..i]);
            if is_unscoped(header) {
                out.push_str(&program[i..=end]);
            } else {
                // `!= 0` makes a pointer-valued predicate a truth value `&&` accepts.
                out.push_str(&format!("/(({}) != 0) && {pred}/", &program[i + 1..end]));
            }
            i = end + 1;
            header_start = i;
            continue;
        }
        if c == b'{' {
            out.push_str(&program[header_start..i]);
            if !c_def && !header.is_empty() && !is_unscoped(header) {
                if header.ends_with('/') {
                    // A predicate not set off by a blank: scoping must not let it through.
                    return Err(TraceError::Program(format!(
                        "{header}: put a blank between the probe and its predicate, \
                         so that -z can add the zone to it"
                    )));
                }
                out.push_str(&format!(" /{pred}/ "));
            }
            // The block, to its matching brace.
            let end = (block_end(b, i) + 1).min(b.len());
            out.push_str(&program[i..end]);
            i = end;
            header_start = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&program[header_start.min(program.len())..]);
    Ok(out)
}

/// The byte range of the block (`{` to `}` inclusive) of the top-level probe whose header is
/// exactly `name` (`BEGIN`, `END`), if the program has one.
fn special_block(program: &str, name: &str) -> Option<(usize, usize)> {
    let b = program.as_bytes();
    let (mut i, mut header_start) = (0, 0);
    while i < b.len() {
        if let Some(j) = skip_comment(b, i) {
            i = j;
            if program[header_start..i].trim().is_empty() {
                header_start = i;
            }
            continue;
        }
        if b[i] == b'{' {
            let header = clean_header(&program[header_start..i]);
            let end = block_end(b, i);
            if header == name {
                return Some((i, end));
            }
            i = end + 1;
            header_start = i;
            continue;
        }
        i += 1;
    }
    None
}

/// The index of the `}` closing the block opened at `open`.
fn block_end(b: &[u8], open: usize) -> usize {
    let (mut j, mut depth) = (open, 0i32);
    while j < b.len() {
        if let Some(k) = skip_comment(b, j) {
            j = k;
            continue;
        }
        match b[j] {
            b'"' => {
                j = skip_string(b, j);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len().saturating_sub(1)
}

/// Put `code` first in the program's `BEGIN` block or last in its `END` block (bpftrace allows
/// one of each), or add the block.
fn add_to_special(program: &str, name: &str, code: &str) -> String {
    if code.is_empty() {
        return program.to_string();
    }
    match special_block(program, name) {
        Some((open, _)) if name == "BEGIN" => {
            format!("{}\n{code}{}", &program[..=open], &program[open + 1..])
        }
        Some((_, close)) => format!("{}\n{code}\n{}", &program[..close], &program[close..]),
        None if name == "BEGIN" => format!("BEGIN\n{{\n{code}}}\n\n{program}"),
        None => format!("{program}\n\n{name}\n{{\n{code}\n}}\n"),
    }
}

/// Replace the word `zonename` outside strings and comments with `with`.
pub fn replace_zonename(program: &str, with: &str) -> String {
    let b = program.as_bytes();
    let mut out = String::with_capacity(program.len());
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'@' || c == b'$';
    while i < b.len() {
        if let Some(j) = skip_comment(b, i) {
            out.push_str(&program[i..j]);
            i = j;
            continue;
        }
        if b[i] == b'"' {
            let j = skip_string(b, i);
            out.push_str(&program[i..j]);
            i = j;
            continue;
        }
        if b[i..].starts_with(b"zonename")
            && (i == 0 || !ident(b[i - 1]))
            && b.get(i + 8).is_none_or(|&c| !ident(c))
        {
            out.push_str(with);
            i += 8;
            continue;
        }
        let ch = program[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&program[i..i + ch]);
        i += ch;
    }
    out
}

/// The map of zone names a program may use as `zonename`.
const ZONENAME_MAP: &str = "@__zonetrace_zn";
/// The map of the selected zones' ids, for the `-z` predicate.
const SELECTED_MAP: &str = "@__zonetrace_in";

/// A bpftrace string literal of `s` (zone names are plain, but escape anyway).
fn bt_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

/// The whole program bpftrace runs: the zone maps filled in BEGIN, `program` scoped to the
/// selected zones when `scoped`, the word `zonename` resolved, the duration bound, and an END
/// that clears zonetrace's own maps (so they are not printed).
pub fn build_program(
    program: &str,
    map: &ZoneMap,
    scoped: bool,
    seconds: u64,
) -> Result<String, TraceError> {
    let uses_zonename = replace_zonename(program, "\u{0}") != program;
    let mut begin = String::new();
    if uses_zonename {
        let mut ids: Vec<_> = map.names.iter().collect();
        ids.sort();
        for (id, name) in ids {
            begin.push_str(&format!("{ZONENAME_MAP}[{id}] = {};\n", bt_string(name)));
        }
    }
    let mut body = program.to_string();
    if scoped {
        for id in &map.selected {
            begin.push_str(&format!("{SELECTED_MAP}[{id}] = 1;\n"));
        }
        body = scope_probes(&body, &format!("{SELECTED_MAP}[cgroup]"))?;
    }
    if uses_zonename {
        body = replace_zonename(&body, &format!("{ZONENAME_MAP}[cgroup]"));
    }
    let mut clear = String::new();
    if uses_zonename {
        clear.push_str(&format!("clear({ZONENAME_MAP}); "));
    }
    if scoped {
        clear.push_str(&format!("clear({SELECTED_MAP}); "));
    }
    let body = add_to_special(&body, "BEGIN", &begin);
    let body = add_to_special(&body, "END", &clear);
    Ok(format!("{body}\n\ninterval:s:{seconds}\n{{\nexit();\n}}\n"))
}

/// How a trace is run.
#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub map_keys: u32,
    pub strlen: u32,
    /// bpftrace's `-f json` output.
    pub json: bool,
}

/// A running bpftrace, bounded by a watchdog.
pub struct Run {
    child: Child,
    deadline: Instant,
    seconds: u64,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    watchdog_stop: Arc<AtomicBool>,
    // Keeps the program's memfd open until bpftrace has read it.
    _program: OwnedFd,
}

/// bpftrace's complaint when it cannot raise RLIMIT_MEMLOCK: harmless since Linux 5.11
/// (BPF memory is charged to the memory cgroup), so it is not shown.
fn is_noise(line: &str) -> bool {
    line.contains("RLIMIT_MEMLOCK")
}

/// Start bpftrace on `program` with `stdout` piped (or inherited when `pipe` is false). The
/// caller then ignores SIGINT, so that ^C reaches bpftrace alone and it prints what it has.
pub fn spawn(
    bpftrace: &Path,
    program: &str,
    opts: &Options,
    pipe: bool,
) -> Result<Run, TraceError> {
    spawn_child(bpftrace, program, opts, pipe, false)
}

/// Start bpftrace on `program`, stdout piped, as a helper the caller owns: in its own process
/// group (a terminal's ^C goes to the caller, which stops it), killed if the caller dies
/// (`PR_SET_PDEATHSIG`), and the caller's own SIGINT handling left alone. The caller must
/// [`Run::stop`] it on every way out.
pub fn spawn_owned(bpftrace: &Path, program: &str, opts: &Options) -> Result<Run, TraceError> {
    spawn_child(bpftrace, program, opts, true, true)
}

fn spawn_child(
    bpftrace: &Path,
    program: &str,
    opts: &Options,
    pipe: bool,
    owned: bool,
) -> Result<Run, TraceError> {
    // The program goes in a memfd bpftrace reads as /proc/self/fd/N when it is too long for one
    // argument (a map of many cgroups), else on the command line (its errors then say `stdin`).
    let fd =
        nix::sys::memfd::memfd_create(c"zonetrace.bt", nix::sys::memfd::MemFdCreateFlag::empty())
            .map_err(|e| TraceError::Io(e.into()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(program.as_bytes())?;
    let fd: OwnedFd = file.into();
    let raw = fd.as_raw_fd();
    let mut cmd = Command::new(bpftrace);
    if opts.json {
        cmd.args(["-f", "json"]);
    }
    if program.len() < MAX_ARG {
        cmd.arg("-e").arg(program);
    } else {
        cmd.arg(format!("/proc/self/fd/{raw}"));
    }
    cmd.env("BPFTRACE_MAP_KEYS_MAX", opts.map_keys.to_string())
        .env("BPFTRACE_STRLEN", opts.strlen.to_string())
        .stdin(Stdio::null())
        .stdout(if pipe {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls async-signal-safe functions (fcntl, signal, setpgid,
    // prctl) between fork and exec: the program's memfd stays open across exec, SIGINT gets its
    // default action back (zonetrace ignores it so that bpftrace can print its maps on ^C); an
    // owned child gets its own process group and dies with its parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            if owned
                && (libc::setpgid(0, 0) < 0
                    || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(TraceError::Spawn)?;
    if !owned {
        // SAFETY: setting SIGINT to SIG_IGN installs no handler; ^C reaches bpftrace (same
        // process group), which ends the trace and prints what it has, and zonetrace then
        // prints it.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
        }
    }
    let stderr = Arc::new(Mutex::new(String::new()));
    let err_pipe = child.stderr.take();
    let collected = Arc::clone(&stderr);
    let stderr_thread = err_pipe.map(|p| {
        std::thread::spawn(move || {
            for line in BufReader::new(p).lines().map_while(Result::ok) {
                if is_noise(&line) || line.starts_with("Attaching ") {
                    continue;
                }
                eprintln!("{line}");
                if let Ok(mut s) = collected.lock() {
                    if s.len() < 64 << 10 {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            }
        })
    });
    let deadline = Instant::now() + Duration::from_secs(opts.seconds) + GRACE;
    let stop = Arc::new(AtomicBool::new(false));
    let pid = child.id() as i32;
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if stop2.load(Ordering::Relaxed) {
                return;
            }
        }
        if !stop2.load(Ordering::Relaxed) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    });
    Ok(Run {
        child,
        deadline,
        seconds: opts.seconds,
        stderr,
        stderr_thread,
        watchdog_stop: stop,
        _program: fd,
    })
}

impl Run {
    /// bpftrace's stdout (when piped).
    pub fn stdout(&mut self) -> Option<impl Read> {
        self.child.stdout.take()
    }

    /// End bpftrace now (the reader went away) and reap it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.watchdog_stop.store(true, Ordering::Relaxed);
    }

    /// Wait for bpftrace; an error names its status and what it said.
    pub fn wait(mut self) -> Result<(), TraceError> {
        let status = self.child.wait()?;
        self.watchdog_stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        if status.success() {
            return Ok(());
        }
        if Instant::now() >= self.deadline {
            return Err(TraceError::Timeout(self.seconds));
        }
        let text = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        let detail = if text.trim().is_empty() {
            "it printed nothing".to_string()
        } else {
            "see its messages above".to_string()
        };
        Err(TraceError::Bpftrace {
            status: status.to_string(),
            detail,
        })
    }
}

/// One row of a toolkit script's output: field name and value, in column order.
pub type Row = Vec<(&'static str, Value)>;

/// Everything bpftrace printed as JSON, sorted out.
#[derive(Debug, Default)]
pub struct Collected {
    /// `map` and `hist` records: map name → its data.
    pub maps: HashMap<String, Value>,
    pub lost_events: u64,
}

/// Read bpftrace's `-f json` records from `input`: event lines of `script` become rows passed
/// to `emit` as they come; maps are collected for [`aggregate_rows`]; `attached` is called
/// with the number of probes once they are attached.
pub fn read_records(
    input: impl Read,
    script: &Script,
    map: &ZoneMap,
    mut emit: impl FnMut(Row) -> std::io::Result<()>,
    mut attached: impl FnMut(u64),
) -> Result<Collected, TraceError> {
    let mut got = Collected::default();
    for line in BufReader::new(input).lines() {
        let line = line?;
        let Ok(rec) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match rec["type"].as_str() {
            Some("printf") => {
                let Output::Events(fields) = script.output else {
                    continue;
                };
                let data = rec["data"].as_str().unwrap_or_default();
                for l in data.lines() {
                    if let Some(row) = event_row(fields, map, l) {
                        emit(row)?;
                    }
                }
            }
            Some("map") | Some("hist") => {
                if let Some(obj) = rec["data"].as_object() {
                    for (k, v) in obj {
                        got.maps.insert(k.clone(), v.clone());
                    }
                }
            }
            Some("attached_probes") => attached(rec["data"]["probes"].as_u64().unwrap_or(0)),
            Some("lost_events") => {
                got.lost_events += rec["data"]["events"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    Ok(got)
}

/// An event line `CGROUP\tF1\tF2...` as a row with the zone name first.
fn event_row(fields: &[toolkit::Field], map: &ZoneMap, line: &str) -> Option<Row> {
    let mut parts = line.split('\t');
    let id: u64 = parts.next()?.parse().ok()?;
    let rest: Vec<&str> = parts.collect();
    let values = toolkit::event_values(fields, &rest)?;
    let mut row: Row = vec![("zonename", Value::from(map.name(id)))];
    row.extend(fields.iter().map(|f| f.name).zip(values));
    Some(row)
}

/// A map key `"a,b,c,comm"` split into `n` parts (the last takes any further commas).
fn split_key(key: &str, n: usize) -> Option<Vec<&str>> {
    let parts: Vec<&str> = key.splitn(n, ',').collect();
    (parts.len() == n).then_some(parts)
}

fn syscall_name(nr: &str) -> String {
    nr.parse::<i64>()
        .ok()
        .and_then(syscalls::name)
        .map_or_else(|| format!("syscall_{nr}"), str::to_string)
}

/// The rows of an aggregation script from its maps, largest first.
pub fn aggregate_rows(which: Aggregate, maps: &HashMap<String, Value>, map: &ZoneMap) -> Vec<Row> {
    let entries = |name: &str| -> Vec<(String, Value)> {
        maps.get(name)
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let mut rows: Vec<(u64, Row)> = Vec::new();
    match which {
        Aggregate::Syscount => {
            for (k, v) in entries("@syscount") {
                let Some(p) = split_key(&k, 4) else { continue };
                let n = v.as_u64().unwrap_or(0);
                let Ok(id) = p[0].parse::<u64>() else {
                    continue;
                };
                rows.push((
                    n,
                    vec![
                        ("zonename", map.name(id).into()),
                        ("pid", p[1].parse::<i64>().unwrap_or(0).into()),
                        ("comm", p[3].into()),
                        ("syscall", syscall_name(p[2]).into()),
                        ("count", n.into()),
                    ],
                ));
            }
        }
        Aggregate::Syslat => {
            let totals: HashMap<String, u64> = entries("@syslat_total")
                .into_iter()
                .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
                .collect();
            for (k, v) in entries("@syslat") {
                let Some(p) = split_key(&k, 4) else { continue };
                let Ok(id) = p[0].parse::<u64>() else {
                    continue;
                };
                let buckets = v.as_array().cloned().unwrap_or_default();
                let n: u64 = buckets.iter().filter_map(|b| b["count"].as_u64()).sum();
                rows.push((
                    n,
                    vec![
                        ("zonename", map.name(id).into()),
                        ("pid", p[1].parse::<i64>().unwrap_or(0).into()),
                        ("comm", p[3].into()),
                        ("syscall", syscall_name(p[2]).into()),
                        ("count", n.into()),
                        ("total_ns", totals.get(&k).copied().unwrap_or(0).into()),
                        ("hist", Value::Array(buckets)),
                    ],
                ));
            }
        }
        Aggregate::Fileio => {
            let names: HashMap<String, String> = entries("@fileio_name")
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect();
            let paths: HashMap<String, String> = entries("@fileio_fid")
                .into_iter()
                .filter_map(|(k, v)| Some((k, names.get(&v.as_u64()?.to_string())?.clone())))
                .collect();
            let mut bytes: HashMap<String, (u64, u64)> = HashMap::new();
            for (k, v) in entries("@fileio_read") {
                bytes.entry(k).or_default().0 += v.as_u64().unwrap_or(0);
            }
            for (k, v) in entries("@fileio_write") {
                bytes.entry(k).or_default().1 += v.as_u64().unwrap_or(0);
            }
            for (k, (r, w)) in bytes {
                let Some(p) = split_key(&k, 4) else { continue };
                let Ok(id) = p[0].parse::<u64>() else {
                    continue;
                };
                let path = paths
                    .get(&format!("{},{}", p[1], p[2]))
                    .cloned()
                    .filter(|s| !s.is_empty())
                    .or_else(|| {
                        std::fs::read_link(format!("/proc/{}/fd/{}", p[1], p[2]))
                            .ok()
                            .map(|l| l.to_string_lossy().into_owned())
                    })
                    .unwrap_or_default();
                rows.push((
                    r + w,
                    vec![
                        ("zonename", map.name(id).into()),
                        ("pid", p[1].parse::<i64>().unwrap_or(0).into()),
                        ("comm", p[3].into()),
                        ("fd", p[2].parse::<i64>().unwrap_or(0).into()),
                        ("read_bytes", r.into()),
                        ("write_bytes", w.into()),
                        ("path", path.into()),
                    ],
                ));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// A row as one JSON object, fields in column order.
pub fn row_json(row: &Row) -> String {
    let fields: Vec<String> = row
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_get_the_zone_predicate() {
        let p = "BEGIN { @x = 1; }\n\
                 tracepoint:a:b { @c = count(); }\n\
                 tracepoint:a:c, tracepoint:a:d /pid == 1 || (x / 2 > 1)/ { printf(\"{\\\"/\"); }\n\
                 // a comment { with braces }\n\
                 interval:s:1 { exit(); }\n\
                 END { clear(@x); }";
        let out = scope_probes(p, "@in[cgroup]").unwrap();
        assert!(out.contains("BEGIN { @x = 1; }"), "{out}");
        assert!(out.contains("tracepoint:a:b  /@in[cgroup]/ { @c"), "{out}");
        assert!(
            out.contains("tracepoint:a:d /((pid == 1 || (x / 2 > 1)) != 0) && @in[cgroup]/ {"),
            "{out}"
        );
        assert!(out.contains("interval:s:1 { exit(); }"), "{out}");
        assert!(out.contains("END { clear(@x); }"), "{out}");
        assert!(out.contains("// a comment { with braces }"), "{out}");
    }

    #[test]
    fn c_definitions_and_includes_are_left_alone() {
        let p = "#include <linux/sched.h>\nstruct foo { int a; };\nkprobe:f { 1 }";
        let out = scope_probes(p, "P").unwrap();
        assert!(
            out.contains("#include <linux/sched.h>\nstruct foo { int a; };"),
            "{out}"
        );
        assert!(out.contains("kprobe:f  /P/ { 1 }"), "{out}");
    }

    #[test]
    fn paths_in_probes_are_not_predicates_and_unspaced_predicates_are_refused() {
        let p = "uprobe:/bin/bash:readline /pid == 1/ { 1 }\nuprobe:/bin/sh:main { 2 }";
        let out = scope_probes(p, "P").unwrap();
        assert!(
            out.contains("uprobe:/bin/bash:readline /((pid == 1) != 0) && P/ { 1 }"),
            "{out}"
        );
        assert!(out.contains("uprobe:/bin/sh:main  /P/ { 2 }"), "{out}");
        let err = scope_probes("t:a:b/pid == 1/{ 1 }", "P")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("put a blank between the probe and its predicate"),
            "{err}"
        );
    }

    #[test]
    fn zonename_is_replaced_outside_strings_and_comments() {
        let p = "t:a:b /zonename == \"zonename\"/ { printf(\"%s\", zonename); @zonename = 1; $zonename2 = 0; } // zonename";
        let out = replace_zonename(p, "Z[cgroup]");
        assert_eq!(
            out,
            "t:a:b /Z[cgroup] == \"zonename\"/ { printf(\"%s\", Z[cgroup]); @zonename = 1; $zonename2 = 0; } // zonename"
        );
    }

    #[test]
    fn programs_are_bounded_and_scoped() {
        let mut map = ZoneMap::default();
        map.names.insert(7, "web".into());
        map.names.insert(1, "global".into());
        map.selected.push(7);
        let out = build_program("t:a:b { printf(\"%s\\n\", zonename); }", &map, true, 3).unwrap();
        assert!(out.contains("@__zonetrace_zn[7] = \"web\";"), "{out}");
        assert!(out.contains("@__zonetrace_in[7] = 1;"), "{out}");
        assert!(out.contains("/@__zonetrace_in[cgroup]/"), "{out}");
        assert!(
            out.contains("printf(\"%s\\n\", @__zonetrace_zn[cgroup])"),
            "{out}"
        );
        assert!(out.contains("interval:s:3\n{\nexit();\n}"), "{out}");
        assert!(
            out.contains("clear(@__zonetrace_zn); clear(@__zonetrace_in);"),
            "{out}"
        );
        // Unscoped and without zonename: no maps at all.
        let out = build_program("t:a:b { 1 }", &map, false, 5).unwrap();
        assert!(!out.contains("@__zonetrace"), "{out}");
    }

    #[test]
    fn records_become_rows() {
        let script = toolkit::find("opensnoop").unwrap();
        let mut map = ZoneMap::default();
        map.names.insert(42, "web".into());
        let input = "{\"type\": \"attached_probes\", \"data\": {\"probes\": 4}}\n\
                     {\"type\": \"printf\", \"data\": \"42\\t10\\tcat\\t3\\t0\\t/etc/motd\\n\"}\n\
                     {\"type\": \"printf\", \"data\": \"9\\t11\\tsh\\t-1\\t2\\t/nope\\n\"}\n";
        let mut rows = Vec::new();
        let mut probes = 0;
        read_records(
            input.as_bytes(),
            script,
            &map,
            |r| {
                rows.push(row_json(&r));
                Ok(())
            },
            |n| probes = n,
        )
        .unwrap();
        assert_eq!(probes, 4);
        assert_eq!(
            rows,
            vec![
                r#"{"zonename":"web","pid":10,"comm":"cat","fd":3,"errno":0,"path":"/etc/motd"}"#,
                r#"{"zonename":"global","pid":11,"comm":"sh","fd":-1,"errno":2,"path":"/nope"}"#,
            ]
        );
    }

    #[test]
    fn syscount_rows_rank_by_count() {
        let mut map = ZoneMap::default();
        map.names.insert(42, "web".into());
        let maps: HashMap<String, Value> =
            serde_json::from_str(r#"{"@syscount": {"42,10,0,a,b": 5, "1,11,257,sh": 9}}"#).unwrap();
        let rows = aggregate_rows(Aggregate::Syscount, &maps, &map);
        assert_eq!(
            row_json(&rows[0]),
            r#"{"zonename":"global","pid":11,"comm":"sh","syscall":"openat","count":9}"#
        );
        assert_eq!(
            row_json(&rows[1]),
            r#"{"zonename":"web","pid":10,"comm":"a,b","syscall":"read","count":5}"#
        );
    }
}
