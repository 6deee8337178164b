//! runz against runc 1.1: the command line (issue 24, "CLI surface"): version layout, help
//! and unknown commands, `kill ID 0`, negative values and every flag of `update`, `ps`,
//! `--debug`, `events`, and run's --keep/--no-pivot/--no-new-keyring/--preserve-fds.

mod common;
mod runc_compat;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::require_root;
use runc_compat::{Out, Pair, Rt, BOTH, RUNC};
use serde_json::json;

fn bin(rt: Rt) -> &'static Path {
    match rt {
        Rt::Runc => Path::new(RUNC),
        Rt::Runz => common::runz_bin(),
    }
}

fn plain(rt: Rt, args: &[&str]) -> Out {
    let out = Command::new(bin(rt))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn version_has_runcs_layout() {
    if !std::path::Path::new(RUNC).exists() {
        panic!("{RUNC} is missing (apt-get install runc)");
    }
    for flag in ["-v", "--version"] {
        for rt in BOTH {
            let out = plain(rt, &["--root", "/run/runz-test-nowhere", flag]);
            assert_eq!(out.code, Some(0), "{rt:?} {flag}: {out:?}");
            let lines: Vec<&str> = out.stdout.lines().collect();
            let name = if rt == Rt::Runc { "runc" } else { "runz" };
            assert!(
                lines[0].starts_with(&format!("{name} version ")),
                "{rt:?} {flag}: {lines:?}"
            );
            assert!(lines[1].starts_with("commit: "), "{rt:?} {flag}: {lines:?}");
            assert!(lines[2].starts_with("spec: "), "{rt:?} {flag}: {lines:?}");
        }
    }
    let z = plain(Rt::Runz, &["-v"]);
    assert!(z.stdout.contains("\nspec: 1.3.0\n"), "{z:?}");
}

#[test]
fn help_for_every_command_and_runcs_error_for_unknown_ones() {
    if !std::path::Path::new(RUNC).exists() {
        panic!("{RUNC} is missing (apt-get install runc)");
    }
    let commands = [
        "create", "start", "run", "state", "kill", "delete", "list", "exec", "pause", "resume",
        "ps", "update", "events", "spec", "features",
    ];
    for c in commands {
        for rt in BOTH {
            for args in [vec!["help", c], vec![c, "-h"], vec![c, "--help"]] {
                let out = plain(rt, &args);
                assert_eq!(out.code, Some(0), "{rt:?} {args:?}: {out:?}");
                assert!(out.stdout.contains(c), "{rt:?} {args:?}: {out:?}");
            }
        }
    }
    let (c, z) = (plain(Rt::Runc, &["foo"]), plain(Rt::Runz, &["foo"]));
    assert_eq!(z.code, c.code, "{c:?} {z:?}");
    assert_eq!(z.code, Some(3));
    assert_eq!(c.error(), "No help topic for 'foo'\n");
    assert_eq!(z.error(), "No help topic for 'foo'");
}

#[test]
fn kill_0_probes_and_update_takes_negative_values_and_every_flag() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("update");
    p.b.args(&["sleep", "1000"]);
    let cg = |file: &str| -> String {
        p.b.cgroup_dirs()
            .iter()
            .map(|d| d.join(file))
            .find(|f| f.exists())
            .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string())
            .unwrap_or_else(|| panic!("no {file} in {:?}", p.b.cgroup_dirs()))
    };
    let res = p.b.dir.join("res.json");
    std::fs::write(&res, json!({"pids": {"limit": 77}}).to_string()).unwrap();
    let res = res.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    let (runc, runz) = p.detached(|rt| {
        let mut seen = Vec::new();
        let mut step = |args: &[&str], file: &str| {
            let out = p.call(rt, args);
            let value = if file.is_empty() {
                String::new()
            } else {
                cg(file)
            };
            seen.push((args.join(" "), out.code, out.error(), value));
        };
        step(&["kill", &id, "0"], "");
        step(&["update", "--pids-limit", "50", &id], "pids.max");
        step(&["update", "--pids-limit", "-1", &id], "pids.max");
        step(
            &["update", "--cpu-quota", "-1", "--cpu-period", "100000", &id],
            "cpu.cfs_quota_us",
        );
        step(&["update", "--cpu-quota", "50000", &id], "cpu.cfs_quota_us");
        step(
            &["update", "--memory", "100m", "--memory-swap", "-1", &id],
            "memory.limit_in_bytes",
        );
        step(
            &["update", "--memory-reservation", "50m", &id],
            "memory.soft_limit_in_bytes",
        );
        step(
            &["update", "--cpuset-cpus", "0", "--cpuset-mems", "0", &id],
            "cpuset.cpus",
        );
        step(&["update", "--cpu-share", "512", &id], "cpu.shares");
        step(
            &["update", "-r", &res, "--pids-limit", "5", &id],
            "pids.max",
        );
        step(&["update", "--l3-cache-schema", "L3:0=f", &id], "");
        step(&["update", "--mem-bw-schema", "MB:0=50", &id], "");
        seen
    });
    for (c, z) in runc.iter().zip(&runz) {
        assert_eq!(z.0, c.0);
        assert_eq!(z.1, c.1, "{}: exit code, runc {c:?} runz {z:?}", z.0);
        assert_eq!(z.3, c.3, "{}: cgroup file, runc {c:?} runz {z:?}", z.0);
    }
    let values: Vec<&str> = runz.iter().map(|s| s.3.as_str()).collect();
    assert_eq!(
        values,
        [
            "",
            "50",
            "max",
            "-1",
            "50000",
            "104857600",
            "52428800",
            "0",
            "512",
            "77",
            "",
            ""
        ]
    );
    assert_eq!(runz[10].2, "Intel RDT/CAT: l3 cache schema is not enabled");
    assert_eq!(
        runz[11].2,
        "Intel RDT/MBA: memory bandwidth schema is not enabled"
    );
    assert_eq!(runc[10].2, runz[10].2);
    assert_eq!(runc[11].2, runz[11].2);
}

#[test]
fn ps_runs_ps_with_its_arguments_and_keeps_the_containers_lines() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("ps");
    p.b.args(&["sleep", "1000"]);
    let id = p.b.id.clone();
    let (runc, runz) = p.detached(|rt| {
        let pid = {
            let st = p.call(rt, &["state", &id]);
            serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()["pid"]
                .as_i64()
                .unwrap()
        };
        let table = p.call(rt, &["ps", &id]);
        let custom = p.call(rt, &["ps", &id, "-e", "-o", "pid,comm"]);
        let json = p.call(rt, &["ps", "-f", "json", &id]);
        (pid, table, custom, json)
    });
    for (what, (pid, table, custom, json)) in [("runc", &runc), ("runz", &runz)] {
        let lines: Vec<&str> = table.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: {table:?}");
        assert!(
            lines[0].starts_with("UID") && lines[0].ends_with("CMD"),
            "{what}: {table:?}"
        );
        assert!(lines[1].ends_with("sleep 1000"), "{what}: {table:?}");
        assert_eq!(
            lines[1].split_whitespace().nth(1),
            Some(pid.to_string().as_str())
        );
        let lines: Vec<&str> = custom.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: {custom:?}");
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["PID", "COMMAND"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [pid.to_string().as_str(), "sleep"]
        );
        assert_eq!(json.stdout, format!("[{pid}]\n"), "{what}");
    }
    assert_eq!(runz.1.stdout.lines().next(), runc.1.stdout.lines().next());
}

#[test]
fn debug_lines_go_to_stderr_or_the_log_in_text_and_json() {
    if !require_root() {
        return;
    }
    let p = Pair::new("debug");
    let log = p.b.dir.join("debug.log");
    let list = p.call(Rt::Runz, &["--debug", "list"]);
    assert_eq!(list.code, Some(0), "{list:?}");
    let line = list.stderr.lines().find(|l| l.contains("level=debug"));
    assert!(line.is_some_and(|l| l.starts_with("time=\"")), "{list:?}");
    let json_out = p.call(Rt::Runz, &["--debug", "--log-format", "json", "list"]);
    let v: serde_json::Value = serde_json::from_str(json_out.stderr.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {json_out:?}"));
    assert_eq!(v["level"], "debug");
    let logged = p.call(
        Rt::Runz,
        &[
            "--debug",
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "list",
        ],
    );
    assert_eq!(logged.stderr, "", "{logged:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["level"], "debug");
    // Without --debug nothing is said.
    assert_eq!(p.call(Rt::Runz, &["list", "-q"]).stderr, "");
}

/// `RT ARGS` (events): each line goes to `keep` as it comes (at most `max` lines, none more
/// than 20 s after the last) until `keep` returns false; then the command is killed.
fn read_lines(p: &Pair, rt: Rt, args: &[&str], max: usize, mut keep: impl FnMut(String) -> bool) {
    let root = match rt {
        Rt::Runc => p.runc_root.clone(),
        Rt::Runz => p.b.root.clone(),
    };
    let mut child = Command::new(bin(rt))
        .arg("--root")
        .arg(&root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().take(max) {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        if !keep(line) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The first `n` lines `RT ARGS` prints (each within 20 s), then the command is killed.
fn first_lines(p: &Pair, rt: Rt, args: &[&str], n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    read_lines(p, rt, args, n, |l| {
        lines.push(l);
        lines.len() < n
    });
    lines
}

#[test]
fn events_print_runcs_key_order_once_or_every_interval() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("events");
    p.b.args(&["sleep", "1000"]);
    let id = p.b.id.clone();
    let head = format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{");
    let (runc, runz) = p.detached(|rt| {
        let once = p.call(rt, &["events", "--stats", &id]);
        let every = first_lines(&p, rt, &["events", "--interval", "100ms", &id], 2);
        (once, every)
    });
    for (what, (once, every)) in [("runc", &runc), ("runz", &runz)] {
        assert_eq!(once.code, Some(0), "{what}: {once:?}");
        assert_eq!(once.stdout.lines().count(), 1, "{what}: {once:?}");
        assert!(once.stdout.starts_with(&head), "{what}: {once:?}");
        assert_eq!(every.len(), 2, "{what}: {every:?}");
        assert!(
            every.iter().all(|l| l.starts_with(&head)),
            "{what}: {every:?}"
        );
    }
    // The stats objects: the same sections in runc's order (cpu, cpuset, memory, pids, blkio,
    // hugetlb, intel_rdt, network_interfaces), cpuset whole, and in every object both print
    // the keys they share in the same order (runc omits some zero values: either may lack one).
    let (a, b) = (key_order(&runc.0.stdout), key_order(&runz.0.stdout));
    for path in ["/data", "/data/cpuset"] {
        assert_eq!(a.get(path), b.get(path), "{path}: runc {a:?}\nrunz {b:?}");
    }
    assert!(a.contains_key("/data/cpuset"), "{a:?}");
    for (path, runc_keys) in &a {
        if path.starts_with("/data/memory/raw") || path.starts_with("[]") {
            continue; // the kernel's memory.stat keys (sorted by both); objects in arrays
        }
        let runz_keys = b
            .get(path)
            .unwrap_or_else(|| panic!("runz has no {path}: {b:?}"));
        let shared = |x: &Vec<String>, y: &Vec<String>| -> Vec<String> {
            x.iter().filter(|k| y.contains(k)).cloned().collect()
        };
        assert_eq!(
            shared(runc_keys, runz_keys),
            shared(runz_keys, runc_keys),
            "{path}"
        );
    }
    let data = |out: &Out| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["data"].clone()
    };
    let (dc, dz) = (data(&runc.0), data(&runz.0));
    assert_eq!(dz["cpuset"], dc["cpuset"], "the same cgroup's cpuset files");
    assert_eq!(dz["network_interfaces"], json!(null));
    assert_eq!(dz["intel_rdt"], dc["intel_rdt"]);
    let ncpu = |d: &serde_json::Value, k: &str| d["cpu"]["usage"][k].as_array().map(|a| a.len());
    for k in ["percpu", "percpu_kernel", "percpu_user"] {
        assert_eq!(ncpu(&dz, k), ncpu(&dc, k), "{k}");
    }
}

/// Every object's keys in the order printed, by JSON pointer path (arrays are not entered).
fn key_order(json_text: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    // The path of each open object; None for an open array.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut last_key = String::new();
    let mut chars = json_text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        c => s.push(c),
                    }
                }
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&':') {
                    if let Some(Some(path)) = stack.last() {
                        out.entry(path.clone()).or_default().push(s.clone());
                    }
                    last_key = s;
                }
            }
            '{' => {
                let path = match stack.last() {
                    None => String::new(),
                    Some(Some(parent)) => format!("{parent}/{last_key}"),
                    Some(None) => "[]".to_string(),
                };
                out.entry(path.clone()).or_default();
                stack.push(Some(path));
            }
            '[' => stack.push(None),
            '}' | ']' => {
                stack.pop();
            }
            _ => {}
        }
    }
    out
}

/// `RT --root ROOT run EXTRA --bundle DIR ID` with `file` open on fd 3.
fn run_with_fd3(p: &Pair, rt: Rt, file: &Path, extra: &[&str]) -> Out {
    use std::os::unix::process::CommandExt;
    let root: PathBuf = match rt {
        Rt::Runc => p.runc_root.clone(),
        Rt::Runz => p.b.root.clone(),
    };
    let f = std::fs::File::open(file).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&f);
    let mut cmd = Command::new(bin(rt));
    cmd.arg("--root")
        .arg(&root)
        .arg("run")
        .args(extra)
        .args(["--bundle", p.b.dir.to_str().unwrap(), &p.b.id])
        .stdin(Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; they run in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(f);
    p.call(rt, &["delete", "--force", &p.b.id]);
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn run_keep_no_pivot_no_new_keyring_and_preserve_fds_are_runcs() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("runflags");
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();

    // --keep: the stopped container stays until deleted.
    p.b.args(&["true"]);
    p.b.write();
    let (runc, runz) = {
        let mut r = Vec::new();
        for rt in BOTH {
            let run = p.call(rt, &["run", "--keep", "--bundle", &dir, &id]);
            let st = p.call(rt, &["state", &id]);
            let status = serde_json::from_str::<serde_json::Value>(&st.stdout)
                .map(|v| v["status"].clone())
                .unwrap_or_default();
            let del = p.call(rt, &["delete", &id]);
            r.push((run.code, status, del.code));
        }
        (r[0].clone(), r[1].clone())
    };
    assert_eq!(runz, runc);
    assert_eq!(runz, (Some(0), json!("stopped"), Some(0)));

    // --no-pivot: the same root seen inside.
    p.b.args(&[
        "sh",
        "-c",
        "ls /; cat /proc/self/cwd/etc/hostname 2>/dev/null; echo end",
    ]);
    p.b.write();
    let outs: Vec<Out> = BOTH
        .iter()
        .map(|rt| {
            let o = p.call(*rt, &["run", "--no-pivot", "--bundle", &dir, &id]);
            p.call(*rt, &["delete", "--force", &id]);
            o
        })
        .collect();
    assert_eq!(outs[1].code, Some(0), "{:?}", outs[1]);
    assert_eq!(outs[1].stdout, outs[0].stdout);

    // --no-new-keyring: no session keyring named after the container. Each run has an id of
    // its own: an earlier run's keyring stays in /proc/keys until the kernel's key garbage
    // collector gets to it, which a loaded machine delays.
    p.b.set("/linux/maskedPaths", json!([]));
    for (n, (flags, want)) in [(&[][..], "1"), (&["--no-new-keyring"][..], "0")]
        .into_iter()
        .enumerate()
    {
        let mut seen = Vec::new();
        for rt in BOTH {
            let kid = format!("{id}-k{n}{}", seen.len());
            p.b.args(&[
                "sh",
                "-c",
                &format!("grep -c '_ses.{kid}' /proc/keys; true"),
            ]);
            p.b.write();
            let mut args = vec!["run"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["--bundle", &dir, &kid]);
            let o = p.call(rt, &args);
            p.call(rt, &["delete", "--force", &kid]);
            seen.push(o.stdout.trim().to_string());
        }
        assert_eq!(seen, [want, want], "{flags:?}");
    }

    // --preserve-fds 1: fd 3 reaches the process, nothing else beyond 0-2 (the last fd
    // listed is the one ls reads /proc/self/fd through).
    p.b.args(&[
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3",
    ]);
    p.b.write();
    let file = p.b.dir.join("fd3.txt");
    std::fs::write(&file, "through fd 3\n").unwrap();
    for (flags, want) in [
        (&["--preserve-fds", "1"][..], "0 1 2 3 4 through fd 3\n"),
        (&[][..], "0 1 2 3 "),
    ] {
        let c = run_with_fd3(&p, Rt::Runc, &file, flags);
        let z = run_with_fd3(&p, Rt::Runz, &file, flags);
        assert_eq!(z.stdout, c.stdout, "{flags:?}: runc {c:?} runz {z:?}");
        assert!(z.stdout.starts_with(want), "{flags:?}: {z:?}");
    }
}

#[test]
fn list_prints_runcs_table_and_json_also_for_a_missing_root() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("list");
    p.b.args(&["sleep", "1000"]);
    let id = p.b.id.clone();
    let (runc, runz) =
        p.detached(|rt| (p.call(rt, &["list"]), p.call(rt, &["list", "-f", "json"])));
    let (c, z) = (
        runc.0.stdout.lines().collect::<Vec<_>>(),
        runz.0.stdout.lines().collect::<Vec<_>>(),
    );
    assert_eq!(z.len(), 2, "{z:?}");
    // tabwriter pads each column to its widest cell: the same header when both rows' cells are
    // as wide. Two vary: the pid (pid_max is 32768 here, so one runtime's pid can wrap to fewer
    // digits) and the creation time (RFC 3339 with nanoseconds, trailing zeros dropped).
    let widths = |l: &str| l.split_whitespace().map(str::len).collect::<Vec<_>>();
    if widths(z[1]) == widths(c[1]) {
        assert_eq!(z[0], c[0], "header, column widths");
    } else {
        let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(z[0]), words(c[0]), "header");
    }
    let fields = |l: &str| {
        let f: Vec<String> = l.split_whitespace().map(String::from).collect();
        (
            f.len(),
            f[0].clone(),
            f[2].clone(),
            f[3].clone(),
            f[5].clone(),
        )
    };
    assert_eq!(fields(z[1]), fields(c[1]));
    assert_eq!(fields(z[1]).1, id);
    let keys = |o: &Out| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        v[0].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(keys(&runz.1), keys(&runc.1));
    // runc makes the missing root (0700) as it lists: removed again, also on failure.
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let missing = Gone(format!(
        "/run/runz-test-{}-missing-root",
        std::process::id()
    ));
    for args in [
        &["list"][..],
        &["list", "-f", "json"][..],
        &["list", "-q"][..],
    ] {
        let _ = std::fs::remove_dir(&missing.0);
        let mut all = vec!["--root", missing.0.as_str()];
        all.extend_from_slice(args);
        let (c, z) = (plain(Rt::Runc, &all), plain(Rt::Runz, &all));
        assert_eq!(z.code, c.code, "{args:?}: {c:?} {z:?}");
        assert_eq!(z.stdout, c.stdout, "{args:?}");
    }
}

/// `events` reports a memory-limit OOM kill as runc does: the line `{"type":"oom","id":ID}`
/// (no `data`), between the stats lines. The container's child allocates beyond the limit only
/// once the first stats line has been read (a file it waits for), so the OOM falls inside the
/// stream; the container itself lives on.
#[test]
fn events_report_an_oom_kill_as_runc_does() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("events-oom");
    p.b.args(&[
        "sh",
        "-c",
        "i=0; while [ ! -e /go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
         dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000",
    ])
    .set(
        "/linux/resources/memory",
        json!({"limit": 16 << 20, "swap": 16 << 20}),
    );
    let id = p.b.id.clone();
    let go = p.b.dir.join("rootfs/go");
    let (runc, runz) = p.detached(|rt| {
        let mut others = Vec::new();
        let mut oom = None;
        let args = ["events", "--interval", "200ms", &id];
        read_lines(&p, rt, &args, 500, |line| {
            if others.is_empty() {
                std::fs::write(&go, "").unwrap();
            }
            if line.contains("\"oom\"") {
                oom = Some(line);
                return false;
            }
            others.push(line);
            others.len() < 400
        });
        let _ = std::fs::remove_file(&go);
        (oom, others.first().cloned())
    });
    let want = format!("{{\"type\":\"oom\",\"id\":\"{id}\"}}");
    assert_eq!(runc.0.as_deref(), Some(want.as_str()), "runc: {runc:?}");
    assert_eq!(runz.0.as_deref(), Some(want.as_str()), "runz: {runz:?}");
    for (who, first) in [("runc", &runc.1), ("runz", &runz.1)] {
        assert!(
            first
                .as_deref()
                .is_some_and(|l| l.starts_with("{\"type\":\"stats\"")),
            "{who}: {first:?}"
        );
    }
}
