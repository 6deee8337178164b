//! runz against runc 1.1: cgroup contracts (issue 24, "cgroups"): a cgroup frozen beforehand
//! fails at once with runc's words, device access "rwa" is taken as runc takes it, and the
//! caller's CPU affinity does not pin the container.

mod common;
mod runc_compat;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::require_root;
use runc_compat::{Pair, Rt, BOTH};
use serde_json::json;

#[test]
fn a_cgroup_frozen_beforehand_fails_at_once_with_runcs_words() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("frozen");
    p.b.args(&["true"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    for rt in BOTH {
        // The container's cgroup, made and frozen before the runtime runs.
        let mut frozen = false;
        for d in p.b.cgroup_dirs() {
            std::fs::create_dir_all(&d).unwrap();
            frozen |= std::fs::write(d.join("freezer.state"), "FROZEN").is_ok()
                || std::fs::write(d.join("cgroup.freeze"), "1").is_ok();
        }
        assert!(frozen, "no freezer among {:?}", p.b.cgroup_dirs());
        let out = p.call(rt, &["run", "-d", "--bundle", &dir, &id]);
        assert_eq!(out.code, Some(1), "{rt:?}: {out:?}");
        assert_eq!(
            out.error(),
            "container's cgroup unexpectedly frozen",
            "{rt:?}"
        );
        for d in p.b.cgroup_dirs() {
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
            let _ = std::fs::write(d.join("cgroup.freeze"), "0");
        }
        p.call(rt, &["delete", "--force", &id]);
        let list = p.call(rt, &["list", "-q"]);
        assert_eq!(list.stdout, "", "{rt:?}: {list:?}");
    }
}

#[test]
fn device_access_rwa_is_taken_as_runc_takes_it() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("rwa");
    p.b.args(&["sh", "-c", "echo x > /dev/null && echo written"])
        .set(
            "/linux/resources/devices",
            json!([{"allow": false, "access": "rwm"},
               {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwa"}]),
        );
    let (runc, runz) = p.run_both();
    assert_eq!(runz.code, runc.code, "runc: {runc:?}\nrunz: {runz:?}");
    assert_eq!(runz.stdout, runc.stdout);
    assert_eq!(runz.stdout, "written\n", "{runz:?}");
}

/// The CPUs this test process may run on, as /proc/self/status lists them.
fn own_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// runc 1.1 lets the caller's mask through (`taskset -c 0 runc run` pins the container to
/// CPU 0); runz gives init and exec'd processes every CPU the cgroup allows.
#[test]
fn the_callers_cpu_affinity_does_not_pin_the_container() {
    if !require_root() {
        return;
    }
    let all = own_cpus();
    if all == "0" {
        eprintln!("skipping: one CPU");
        return;
    }
    let mut p = Pair::new("affinity");
    p.b.args(&["sleep", "1000"]);
    p.b.write();
    let pinned = |args: &[&str]| {
        let mut cmd = Command::new(common::runz_bin());
        cmd.arg("--root").arg(&p.b.root).args(args);
        // SAFETY: sched_setaffinity is async-signal-safe; it runs in the forked child before
        // exec and changes only that child's mask.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let stem = p.b.dir.join(format!("pinned-{}", args[0]));
        common::run_with_timeout(&mut cmd, &stem, common::RUNZ_TIMEOUT).unwrap()
    };
    let dir = p.b.dir.to_str().unwrap().to_string();
    let out = pinned(&["run", "-d", "--bundle", &dir, &p.b.id]);
    assert!(out.status.success(), "{out:?}");
    let st: serde_json::Value =
        serde_json::from_str(&p.call(Rt::Runz, &["state", &p.b.id]).stdout).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("Cpus_allowed_list:\t{all}\n")),
        "init: {status}"
    );
    let out = pinned(&[
        "exec",
        &p.b.id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("Cpus_allowed_list:\t{all}\n")
    );
}

/// `linux.resources.pids.limit`: what each runtime writes to pids.max, read on the host. runc
/// 1.1.5 takes 0 as "not set" (pids.max stays "max": the "0 means 1" is not what the
/// reference does), a positive value as the limit and -1 as "max"; runz writes the same.
#[test]
fn pids_limit_zero_positive_and_minus_one_are_written_as_runc_writes_them() {
    if !require_root() {
        return;
    }
    let pids_max = |p: &Pair| -> String {
        let dirs = p.b.cgroup_dirs();
        let file = dirs
            .iter()
            .map(|d| d.join("pids.max"))
            .find(|f| f.exists())
            .unwrap_or_else(|| panic!("no pids.max among {dirs:?}"));
        std::fs::read_to_string(file).unwrap().trim().to_string()
    };
    for (limit, want) in [(0, "max"), (7, "7"), (-1, "max")] {
        let mut p = Pair::new(&format!("pids{}", limit.max(0)));
        p.b.args(&["sleep", "1000"])
            .set("/linux/resources/pids", json!({ "limit": limit }));
        let (runc, runz) = p.detached(|_| pids_max(&p));
        assert_eq!(runc, want, "runc, limit {limit}");
        assert_eq!(runz, runc, "runz, limit {limit}");
    }
}

/// `update --cpu-rt-period P --cpu-rt-runtime R`: the two files depend on each other (the
/// kernel refuses a runtime above the period), so growing both writes the period first and
/// shrinking both the runtime first. Growing is compared with runc; shrinking is checked on
/// runz alone: runc 1.1.5 writes the period first and fails with EINVAL there (fixed in runc
/// 1.2). The test's own cgroup prefix gets 30% real-time runtime to share out (cgroup v1 RT
/// group scheduling gives a new cgroup none); without RT group scheduling there is nothing to
/// check and the test says so.
#[test]
fn rt_period_and_runtime_are_written_in_the_order_the_kernel_takes() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("rt");
    p.b.args(&["sleep", "1000"]).set(
        "/linux/resources/cpu",
        json!({"realtimePeriod": 1000000, "realtimeRuntime": 50000}),
    );
    let Some(cpu) = p.b.cgroup_dirs().into_iter().find(|d| {
        d.parent()
            .and_then(|pr| pr.parent())
            .is_some_and(|own| own.join("cpu.rt_runtime_us").exists())
    }) else {
        eprintln!("note: no cpu.rt_runtime_us (no RT group scheduling): nothing to check");
        return;
    };
    let prefix = cpu.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&prefix).unwrap();
    std::fs::write(prefix.join("cpu.rt_runtime_us"), "300000").unwrap();
    let rt = || -> (String, String) {
        let f = |n: &str| {
            std::fs::read_to_string(cpu.join(n))
                .unwrap()
                .trim()
                .to_string()
        };
        (f("cpu.rt_period_us"), f("cpu.rt_runtime_us"))
    };
    let id = p.b.id.clone();
    let grow = [
        "update",
        "--cpu-rt-period",
        "2000000",
        "--cpu-rt-runtime",
        "100000",
        id.as_str(),
    ];
    let (runc, runz) = p.detached(|who| {
        let out = p.call(who, &grow);
        (out.code, rt())
    });
    assert_eq!(runc, (Some(0), ("2000000".into(), "100000".into())), "runc");
    assert_eq!(runz, runc, "runz");
    let shrink = [
        "update",
        "--cpu-rt-period",
        "10000",
        "--cpu-rt-runtime",
        "2000",
        id.as_str(),
    ];
    let regrow = [
        "update",
        "--cpu-rt-period",
        "20000",
        "--cpu-rt-runtime",
        "4000",
        id.as_str(),
    ];
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let out = p.call(Rt::Runz, &["run", "-d", "--bundle", &dir, &id]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let shrunk = p.call(Rt::Runz, &shrink);
    let after_shrink = rt();
    let regrown = p.call(Rt::Runz, &regrow);
    let after_regrow = rt();
    p.call(Rt::Runz, &["delete", "--force", &id]);
    assert_eq!(shrunk.code, Some(0), "{shrunk:?}");
    assert_eq!(after_shrink, ("10000".into(), "2000".into()));
    assert_eq!(regrown.code, Some(0), "{regrown:?}");
    assert_eq!(after_regrow, ("20000".into(), "4000".into()));
}

/// A cgroupsPath that already holds someone else's process: runc 1.1.5 runs the container with
/// two warnings ("container's cgroup is not empty: 1 process(es) found" and its deprecation
/// note), leaves that process alone, logs that it could not remove the busy cgroup, exits with
/// the container's status and keeps no state. runz does the same (it used to kill the
/// stranger, or fail `run` with 1 and leave a stopped container behind).
#[test]
fn a_cgroup_with_another_process_is_used_with_runcs_warning_and_left_alone() {
    if !require_root() {
        return;
    }
    let mut p = Pair::new("nonempty");
    p.b.args(&["true"]);
    p.b.write();
    let dir = p.b.dir.to_str().unwrap().to_string();
    let id = p.b.id.clone();
    for rt in BOTH {
        let mut stranger = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = stranger.id().to_string();
        let mut placed = 0;
        for d in p.b.cgroup_dirs() {
            // cpuset needs cpus/mems before it takes a process: left out.
            if d.to_string_lossy().contains("cpuset") {
                continue;
            }
            if std::fs::create_dir_all(&d).is_ok()
                && std::fs::write(d.join("cgroup.procs"), &pid).is_ok()
            {
                placed += 1;
            }
        }
        assert!(placed > 0, "{:?}", p.b.cgroup_dirs());
        let out = p.call(rt, &["run", "--bundle", &dir, &id]);
        let alive = stranger.try_wait().unwrap().is_none();
        let _ = stranger.kill();
        let _ = stranger.wait();
        let list = p.call(rt, &["list", "-q"]);
        p.call(rt, &["delete", "--force", &id]);
        for d in p.b.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        assert_eq!(out.code, Some(0), "{rt:?}: {out:?}");
        assert_eq!(
            out.warnings()[..2],
            [
                "container's cgroup is not empty: 1 process(es) found".to_string(),
                "DEPRECATED: running container in a non-empty cgroup won't be supported in \
                 runc 1.2; https://github.com/opencontainers/runc/issues/3132"
                    .to_string()
            ],
            "{rt:?}: {out:?}"
        );
        assert!(alive, "{rt:?} killed a process that is not the container's");
        assert_eq!(list.stdout, "", "{rt:?} kept state: {list:?}");
    }
}
