//! A leak checker for zone tests, scoped to one test's own [`ZoneHost`]: it only looks at
//! things that belong to that host, so other tests (and other helpers' tests) running at the
//! same time never show up.
//!
//! - mounts at or beneath the host's ALTROOT (`/proc/self/mountinfo`): zone roots, netns files;
//! - cgroups beneath the host's cgroup parent (in every hierarchy), and any process in them;
//! - processes whose cwd or root is under the ALTROOT, or whose command line names it
//!   (zoneadm/zoneadmd run with `-R ALTROOT`);
//! - host network links: the host ends of the given zones' anets (`host_link_name`), and any
//!   link whose name starts with the given prefix;
//! - loop devices whose backing file is under the ALTROOT.

use std::fs;
use std::path::{Path, PathBuf};

use super::zonehost::ZoneHost;

/// What to look for besides the host's own paths.
#[derive(Default)]
pub struct Scope<'a> {
    /// (zone, anet linkname) pairs whose host-side link must be gone.
    pub anets: Vec<(&'a str, &'a str)>,
    /// A link-name prefix owned by the test (etherstubs it made and should have deleted).
    pub link_prefix: Option<&'a str>,
}

/// Everything of `host` that is still there, one line each; empty when clean.
pub fn leaks(host: &ZoneHost, scope: &Scope) -> Vec<String> {
    let root = fs::canonicalize(&host.root).unwrap_or_else(|_| host.root.clone());
    let mut out = Vec::new();
    for m in super::mounts_under(&root) {
        out.push(format!("mount {}", m.display()));
    }
    if root != host.root {
        for m in super::mounts_under(&host.root) {
            out.push(format!("mount {}", m.display()));
        }
    }
    for parent in host.cgroup_parents() {
        cgroups_below(&parent, &mut out);
    }
    for (pid, why) in processes_under(&[&root, &host.root]) {
        out.push(format!("process {pid} ({why})"));
    }
    out.extend(links(scope));
    for l in loops_under(&root) {
        out.push(format!("loop device {l}"));
    }
    out.sort();
    out.dedup();
    out
}

/// Child cgroups of `dir` (the parent itself is the harness's), and processes in `dir`.
fn cgroups_below(dir: &Path, out: &mut Vec<String>) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for p in procs.split_whitespace() {
            out.push(format!("process {p} in cgroup {}", dir.display()));
        }
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(format!("cgroup {}", e.path().display()));
            cgroups_below(&e.path(), out);
        }
    }
}

/// Processes whose cwd or root lies under one of `roots`, or whose argv names one.
pub fn processes_under(roots: &[&Path]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = e.path();
        for link in ["cwd", "root"] {
            if let Ok(target) = fs::read_link(dir.join(link)) {
                if roots.iter().any(|r| target.starts_with(r)) {
                    found.push((pid, format!("{link} {}", target.display())));
                }
            }
        }
        let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
        let args: Vec<PathBuf> = cmdline
            .split(|b| *b == 0)
            .map(|a| PathBuf::from(String::from_utf8_lossy(a).into_owned()))
            .collect();
        if args.iter().any(|a| roots.iter().any(|r| a == *r)) {
            let zombie = fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()
                        .map(|r| r.trim_start().starts_with('Z'))
                })
                .unwrap_or(false);
            if !zombie {
                found.push((pid, format!("argv {:?}", String::from_utf8_lossy(&cmdline))));
            }
        }
    }
    found
}

fn links(scope: &Scope) -> Vec<String> {
    let Ok(mut nl) = zones_net::Netlink::open() else {
        return vec!["links: cannot open rtnetlink".into()];
    };
    let all = nl.links().unwrap_or_default();
    let mut out = Vec::new();
    for (zone, link) in &scope.anets {
        let host_end = zones_linux::zone::network::host_link_name(zone, link);
        if all.iter().any(|l| l.name == host_end) {
            out.push(format!("link {host_end} (anet {link} of zone {zone})"));
        }
    }
    if let Some(prefix) = scope.link_prefix {
        for l in all.iter().filter(|l| l.name.starts_with(prefix)) {
            out.push(format!("link {}", l.name));
        }
    }
    out
}

/// /dev/loopN whose backing file is under `root`.
fn loops_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(backing) = fs::read_to_string(e.path().join("loop/backing_file")) {
            if Path::new(backing.trim()).starts_with(root) {
                out.push(format!("/dev/{name} ({})", backing.trim()));
            }
        }
    }
    out
}
