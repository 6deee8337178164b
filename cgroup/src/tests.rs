//! Tests of path resolution (from /proc samples), of v1/v2 file writes against
//! scratch directories, and root tests against this host's real cgroups.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder,
};

use crate::procinfo::tests::{HYBRID_CGROUP, HYBRID_MOUNTINFO, V2_CGROUP, V2_MOUNTINFO};
use crate::*;

fn hier<'a>(cg: &'a Cgroup, ctrl: &str) -> &'a Hierarchy {
    cg.paths()
        .iter()
        .find(|h| if ctrl.is_empty() { h.v2 } else { h.has(ctrl) })
        .unwrap_or_else(|| panic!("no {ctrl:?} hierarchy"))
}

// ---------- resolution ----------

#[test]
fn hybrid_relative_path_lands_beneath_own_cgroup_per_hierarchy() {
    let cg =
        Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, Some(Path::new("ctr")), "x").unwrap();
    assert_eq!(cg.mode(), Mode::Hybrid);
    assert_eq!(cg.paths().len(), 10);
    let mem = hier(&cg, "memory");
    assert_eq!(
        mem.dir,
        Path::new("/sys/fs/cgroup/memory/process_api/abc/ctr")
    );
    assert_eq!(mem.path, Path::new("/process_api/abc/ctr"));
    assert_eq!(mem.options, "rw,memory");
    assert_eq!(hier(&cg, "cpu").dir, Path::new("/sys/fs/cgroup/cpu/ctr"));
    assert_eq!(
        hier(&cg, "name=systemd").dir,
        Path::new("/sys/fs/cgroup/systemd/ctr")
    );
    assert_eq!(hier(&cg, "").dir, Path::new("/sys/fs/cgroup/unified/ctr"));
}

#[test]
fn none_defaults_to_the_id_and_absolute_is_from_the_root() {
    let cg = Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, None, "abc123").unwrap();
    assert_eq!(
        hier(&cg, "memory").dir,
        Path::new("/sys/fs/cgroup/memory/process_api/abc/abc123")
    );
    let abs = Path::new("/probe/id1");
    let cg = Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, Some(abs), "id1").unwrap();
    let mem = hier(&cg, "memory");
    assert_eq!(mem.dir, Path::new("/sys/fs/cgroup/memory/probe/id1"));
    assert_eq!(mem.path, Path::new("/probe/id1"));
    // "./a//b/" normalises
    let cg = Cgroup::resolve_from(
        HYBRID_CGROUP,
        HYBRID_MOUNTINFO,
        Some(Path::new("./a//b/")),
        "",
    )
    .unwrap();
    assert_eq!(hier(&cg, "cpu").dir, Path::new("/sys/fs/cgroup/cpu/a/b"));
}

#[test]
fn pure_v2_has_one_hierarchy() {
    let cg = Cgroup::resolve_from(V2_CGROUP, V2_MOUNTINFO, Some(Path::new("ctr")), "x").unwrap();
    assert_eq!(cg.mode(), Mode::V2);
    assert_eq!(cg.paths().len(), 1);
    let h = &cg.paths()[0];
    assert!(h.v2);
    assert_eq!(
        h.dir,
        Path::new("/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/ctr")
    );
    assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup"));
}

#[test]
fn pure_v1_and_named_only_hierarchies() {
    let cg = "2:memory:/\n1:name=systemd:/\n";
    let mi = "1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n\
              2 0 0:2 / /cg/systemd rw - cgroup cgroup rw,name=systemd\n";
    let c = Cgroup::resolve_from(cg, mi, None, "id").unwrap();
    assert_eq!(c.mode(), Mode::V1);
    assert_eq!(c.paths().len(), 2);
    // a v2 host with a leftover named v1 hierarchy is still pure v2
    let cg2 = "1:name=systemd:/\n0::/\n";
    let mi2 = "2 0 0:2 / /cg/systemd rw - cgroup cgroup rw,name=systemd\n\
               3 0 0:3 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    let c2 = Cgroup::resolve_from(cg2, mi2, None, "id").unwrap();
    assert_eq!(c2.mode(), Mode::V2);
    assert_eq!(c2.paths().len(), 1);
    let none = Cgroup::resolve_from("0::/\n", "1 0 0:1 / / rw - ext4 /dev/vda rw\n", None, "id");
    assert!(matches!(none, Err(CgroupError::NoHierarchy)));
}

#[test]
fn a_colon_path_is_one_directory_under_cgroupfs_as_in_runc() {
    let cg = Cgroup::resolve_from(
        HYBRID_CGROUP,
        HYBRID_MOUNTINFO,
        Some(Path::new("test.slice:cri-containerd:abc")),
        "id",
    )
    .unwrap();
    assert_eq!(
        hier(&cg, "pids").dir,
        Path::new("/sys/fs/cgroup/pids/test.slice:cri-containerd:abc")
    );
}

#[test]
fn bad_paths_are_rejected_with_the_value() {
    let r = |p: &str| {
        Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, Some(Path::new(p)), "id")
            .unwrap_err()
            .to_string()
    };
    for p in ["../x", "a/../../b", "/a/.."] {
        let e = r(p);
        assert!(e.contains("..") && e.contains(p), "{e}");
    }
    assert!(r("/").contains("below the hierarchy root"));
    let e = Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, None, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn cgroup_round_trips_through_json() {
    let mut cg = Cgroup::resolve_from(HYBRID_CGROUP, HYBRID_MOUNTINFO, None, "id").unwrap();
    cg.hierarchies[0]
        .created
        .push("/sys/fs/cgroup/systemd/id".into());
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
}

// ---------- scratch-directory hierarchies ----------

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("runz-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(dir: &Path, file: &str, content: &str) {
    std::fs::write(dir.join(file), content).unwrap();
}

fn get(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

const V2_FILES: &[&str] = &[
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "cpu.weight",
    "cpu.max",
    "pids.max",
    "io.weight",
    "io.max",
    "cpuset.cpus",
    "cpuset.mems",
];

/// A fake pure-v2 mount in a scratch dir, our "own" cgroup being /user.slice.
fn fake_v2(s: &Scratch) -> Cgroup {
    let root = s.0.join("cg");
    let own = root.join("user.slice");
    std::fs::create_dir_all(&own).unwrap();
    for d in [&root, &own] {
        put(d, "cgroup.controllers", "cpuset cpu io memory hugetlb pids");
        put(d, "cgroup.subtree_control", "");
    }
    let mi = format!("30 22 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    let mut cg =
        Cgroup::resolve_from("0::/user.slice\n", &mi, Some(Path::new("ctr")), "x").unwrap();
    cg.create().unwrap();
    let leaf = &cg.paths()[0].dir;
    put(leaf, "cgroup.controllers", "cpuset cpu io memory pids");
    for f in V2_FILES {
        put(leaf, f, "");
    }
    cg
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let s = Scratch::new("v2create");
    let cg = fake_v2(&s);
    let h = &cg.paths()[0];
    assert_eq!(h.dir, s.0.join("cg/user.slice/ctr"));
    assert_eq!(h.created, vec![h.dir.clone()]);
    // each controller is written on its own; the file keeps the last one
    assert_eq!(get(&s.0.join("cg"), "cgroup.subtree_control"), "+pids");
    assert_eq!(
        get(&s.0.join("cg/user.slice"), "cgroup.subtree_control"),
        "+pids"
    );
    assert!(cg.clone_into_fd().is_some());
}

#[test]
fn v2_apply_converts_v1_values_like_runc() {
    let s = Scratch::new("v2apply");
    let cg = fake_v2(&s);
    let leaf = cg.paths()[0].dir.clone();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .swap(3 << 20)
                .reservation(1 << 19)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(50_000i64)
                .period(100_000u64)
                .cpus("0".to_string())
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(get(&leaf, "memory.max"), "1048576");
    assert_eq!(
        get(&leaf, "memory.swap.max"),
        "2097152",
        "v2 swap excludes memory"
    );
    assert_eq!(get(&leaf, "memory.low"), "524288");
    assert_eq!(get(&leaf, "cpu.weight"), shares_to_weight(1024).to_string());
    assert_eq!(get(&leaf, "cpu.max"), "50000 100000");
    assert_eq!(get(&leaf, "cpuset.cpus"), "0");
    assert_eq!(get(&leaf, "io.weight"), "4950");
    assert_eq!(get(&leaf, "pids.max"), "", "limit 0 means unset");

    let pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .build()
        .unwrap();
    cg.apply(&pids).unwrap();
    assert_eq!(get(&leaf, "pids.max"), "max");
}

#[test]
fn v2_apply_names_missing_controllers_and_refuses_network() {
    let s = Scratch::new("v2missing");
    let cg = fake_v2(&s);
    let huge = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB".to_string())
            .limit(1 << 21)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    let e = cg.apply(&huge).unwrap_err().to_string();
    assert!(e.contains("hugetlb") && e.contains("hugepageLimits"), "{e}");
    let net = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(1u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = cg.apply(&net).unwrap_err().to_string();
    assert!(e.contains("net_cls"), "{e}");
}

#[test]
fn v2_pids_and_stats_read_the_tree() {
    let s = Scratch::new("v2stats");
    let cg = fake_v2(&s);
    let leaf = cg.paths()[0].dir.clone();
    put(&leaf, "cgroup.procs", "5\n3\n");
    std::fs::create_dir(leaf.join("sub")).unwrap();
    put(&leaf.join("sub"), "cgroup.procs", "9\n3\n");
    assert_eq!(cg.pids().unwrap(), vec![3, 5, 9]);

    put(&leaf, "cpu.stat", "usage_usec 10\nuser_usec 4\nsystem_usec 6\nnr_periods 2\nnr_throttled 1\nthrottled_usec 7\n");
    put(&leaf, "memory.current", "4096\n");
    put(&leaf, "memory.max", "max\n");
    put(&leaf, "memory.swap.max", "0\n");
    put(&leaf, "memory.stat", "anon 1\nfile 2048\n");
    put(
        &leaf,
        "memory.events",
        "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
    );
    put(&leaf, "pids.current", "2\n");
    put(&leaf, "pids.max", "max\n");
    put(
        &leaf,
        "io.stat",
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n",
    );
    put(&leaf, "hugetlb.2MB.current", "0\n");
    put(&leaf, "hugetlb.2MB.max", "4194304\n");
    put(&leaf, "hugetlb.2MB.events", "max 1\n");
    let st = cg.stats().unwrap();
    assert_eq!(st.cpu.usage.total, 10_000);
    assert_eq!(st.cpu.usage.kernel, 6_000);
    assert_eq!(st.cpu.throttling.throttled_time, 7_000);
    assert_eq!(st.memory.usage.usage, 4096);
    assert_eq!(st.memory.usage.limit, u64::MAX);
    assert_eq!(st.memory.usage.failcnt, 3);
    assert_eq!(st.memory.cache, 2048);
    assert_eq!(st.pids.current, 2);
    assert_eq!(st.pids.limit, 0);
    assert_eq!(st.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(st.hugetlb["2MB"].max, 4194304);
    assert_eq!(st.hugetlb["2MB"].failcnt, 1);
}

/// A fake v1 host without hugetlb/net_prio, in a scratch dir.
fn fake_v1(s: &Scratch) -> Cgroup {
    let ctrls = ["memory", "cpu", "blkio", "net_cls", "devices"];
    let mut cg_text = String::new();
    let mut mi = String::new();
    for (i, c) in ctrls.iter().enumerate() {
        let m = s.0.join(c);
        std::fs::create_dir_all(m.join("own")).unwrap();
        cg_text.push_str(&format!("{}:{c}:/own\n", i + 1));
        mi.push_str(&format!(
            "{} 1 0:{i} / {} rw - cgroup cgroup rw,{c}\n",
            40 + i,
            m.display()
        ));
    }
    let mut cg = Cgroup::resolve_from(&cg_text, &mi, Some(Path::new("ctr")), "x").unwrap();
    assert_eq!(cg.mode(), Mode::V1);
    cg.create().unwrap();
    cg
}

#[test]
fn v1_weight_without_a_weight_file_is_refused_before_any_write() {
    let s = Scratch::new("v1noweight");
    let cg = fake_v1(&s);
    let d = |c: &str| s.0.join(c).join("own/ctr");
    put(&d("cpu"), "cpu.cfs_quota_us", "");
    put(&d("cpu"), "cpu.cfs_period_us", "");
    let r = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(20_000i64)
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = cg.apply(&r).unwrap_err();
    assert!(matches!(e, CgroupError::NotInKernel { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("blockIO.weight cannot be applied on this host"),
        "{text}"
    );
    assert!(text.contains("bfq"), "{text}");
    // Nothing was written: the cpu cap is not half-applied.
    assert_eq!(get(&d("cpu"), "cpu.cfs_quota_us"), "");
    assert!(!d("blkio").join("blkio.weight").exists());
}

#[test]
fn v1_writes_go_to_each_hierarchy_dir() {
    let s = Scratch::new("v1apply");
    let cg = fake_v1(&s);
    let d = |c: &str| s.0.join(c).join("own/ctr");
    for (c, files) in [
        (
            "blkio",
            &[
                "blkio.weight",
                "blkio.weight_device",
                "blkio.throttle.read_bps_device",
            ][..],
        ),
        ("net_cls", &["net_cls.classid"][..]),
        (
            "cpu",
            &["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"][..],
        ),
        ("devices", &["devices.allow", "devices.deny"][..]),
    ] {
        for f in files {
            put(&d(c), f, "");
        }
    }
    put(&d("cpu"), "cpu.shares", "");
    let r = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![
                    oci_spec::runtime::LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .rate(1000u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x100001u32)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .quota(20_000i64)
                .period(50_000u64)
                .build()
                .unwrap(),
        )
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap()])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(get(&d("blkio"), "blkio.weight"), "300");
    assert_eq!(
        get(&d("blkio"), "blkio.throttle.read_bps_device"),
        "8:0 1000"
    );
    assert_eq!(get(&d("net_cls"), "net_cls.classid"), "1048577");
    assert_eq!(get(&d("cpu"), "cpu.cfs_quota_us"), "20000");
    assert_eq!(get(&d("cpu"), "cpu.cfs_period_us"), "50000");
    assert_eq!(
        get(&d("devices"), "devices.deny"),
        "a",
        "deny-all comes first"
    );
    assert_eq!(get(&d("devices"), "devices.allow"), "c 1:3 rwm");
}

#[test]
fn v1_missing_controller_is_named_before_anything_is_written() {
    let s = Scratch::new("v1missing");
    let cg = fake_v1(&s);
    let cpu = s.0.join("cpu/own/ctr");
    put(&cpu, "cpu.shares", "");
    let r = LinuxResourcesBuilder::default()
        .cpu(LinuxCpuBuilder::default().shares(512u64).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
        .build()
        .unwrap();
    let e = cg.apply(&r).unwrap_err().to_string();
    assert!(e.contains("pids") && e.contains("controller"), "{e}");
    assert_eq!(get(&cpu, "cpu.shares"), "", "nothing applied");
    let unified: LinuxResources =
        serde_json::from_str(r#"{"unified":{"memory.high":"1"}}"#).unwrap();
    let e = cg.apply(&unified).unwrap_err().to_string();
    assert!(
        e.contains("cannot use unified") && e.contains("memory.high"),
        "{e}"
    );
}

// ---------- root tests on the host's real cgroups ----------

mod host {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult, Pid};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Owns a test cgroup and the children put in it; cleans both up on drop.
    struct Guard {
        cg: Cgroup,
        children: Vec<i32>,
    }

    impl Guard {
        fn new(tag: &str) -> Self {
            let name = format!("runz-test-{}-{tag}", std::process::id());
            let cg = Cgroup::resolve(Some(Path::new(&name)), "unused").unwrap();
            Guard {
                cg,
                children: Vec::new(),
            }
        }

        fn reap(&mut self, pid: i32) -> WaitStatus {
            self.children.retain(|p| *p != pid);
            waitpid(Pid::from_raw(pid), None).unwrap()
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            for pid in self.children.drain(..) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            let _ = self.cg.thaw();
            let _ = self.cg.remove();
        }
    }

    /// Forks a child that sleeps until signalled.
    fn sleeper(g: &mut Guard) -> i32 {
        // SAFETY: the child only calls async-signal-safe pause/_exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => {
                g.children.push(child.as_raw());
                child.as_raw()
            }
        }
    }

    /// Forks a child that waits for a byte on a pipe, tries to open /dev/null
    /// and /dev/zero, and exits with bit 0 set if null opened, bit 1 if zero did.
    fn device_prober(g: &mut Guard) -> (i32, std::os::fd::OwnedFd) {
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only calls async-signal-safe read/open/_exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                use std::os::fd::AsRawFd;
                let mut b = 0u8;
                // SAFETY: reading one byte into a valid stack buffer.
                unsafe { libc::read(r.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
                // SAFETY: NUL-terminated literals; the fds are never used.
                let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
                // SAFETY: as above.
                let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) };
                let code = i32::from(null >= 0) | (i32::from(zero >= 0) << 1);
                // SAFETY: leaving the forked child without running destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                g.children.push(child.as_raw());
                (child.as_raw(), w)
            }
        }
    }

    /// Runs a prober inside the cgroup and returns its exit code.
    fn probe_devices(g: &mut Guard) -> i32 {
        let (child, go) = device_prober(g);
        g.cg.add_pid(child).unwrap();
        nix::unistd::write(&go, b"x").unwrap();
        match g.reap(child) {
            WaitStatus::Exited(_, code) => code,
            other => panic!("prober ended with {other:?}"),
        }
    }

    fn allow_char(major: i64, minor: i64, access: &str) -> oci_spec::runtime::LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .unwrap()
    }

    fn observed_frozen(pid: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        // v1 freezer: the task is in the refrigerator (shown as D);
        // v2 freezer: it is parked in the signal-delivery trap.
        status.contains("State:\tD") || wchan == "get_signal" || wchan == "do_freezer_trap"
    }

    fn read(dir: &Path, f: &str) -> String {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn lifecycle_on_this_host() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("life");
        assert_eq!(g.cg.mode(), crate::mode());
        g.cg.create().unwrap();
        let own = Cgroup::resolve(Some(Path::new("x")), "x").unwrap();
        for (h, o) in g.cg.paths().iter().zip(own.paths()) {
            assert!(h.dir.is_dir(), "{} missing", h.dir.display());
            assert_eq!(h.dir.parent(), o.dir.parent(), "beneath our own cgroup");
            assert_eq!(h.created, vec![h.dir.clone()]);
        }
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(50).build().unwrap())
            .cpu(LinuxCpuBuilder::default().shares(512u64).build().unwrap())
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(5)
                    .access("rw")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        g.cg.apply(&r).unwrap();
        if g.cg.mode() == Mode::V2 {
            let d = &hier(&g.cg, "").dir;
            assert_eq!(read(d, "memory.max"), (64u64 << 20).to_string());
            assert_eq!(read(d, "pids.max"), "50");
            assert_eq!(read(d, "cpu.weight"), shares_to_weight(512).to_string());
        } else {
            assert_eq!(
                read(&hier(&g.cg, "memory").dir, "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(read(&hier(&g.cg, "pids").dir, "pids.max"), "50");
            assert_eq!(read(&hier(&g.cg, "cpu").dir, "cpu.shares"), "512");
            assert_eq!(
                read(&hier(&g.cg, "devices").dir, "devices.list"),
                "c 1:3 rwm\nc 1:5 rw"
            );
        }

        let child = sleeper(&mut g);
        g.cg.add_pid(child).unwrap();
        assert_eq!(g.cg.pids().unwrap(), vec![child]);
        let st = g.cg.stats().unwrap();
        assert_eq!(st.pids.current, 1);
        assert_eq!(st.pids.limit, 50);
        assert_eq!(st.memory.usage.limit, 64 << 20);

        g.cg.freeze().unwrap();
        assert!(g.cg.is_frozen().unwrap());
        assert!(observed_frozen(child), "child {child} does not look frozen");
        g.cg.thaw().unwrap();
        assert!(!g.cg.is_frozen().unwrap());

        g.cg.kill_all(libc::SIGKILL).unwrap();
        assert_eq!(
            g.reap(child),
            WaitStatus::Signaled(Pid::from_raw(child), Signal::SIGKILL, false)
        );
        g.cg.remove().unwrap();
        for h in g.cg.paths() {
            assert!(!h.dir.exists(), "{} left behind", h.dir.display());
        }
    }

    #[test]
    fn v1_freezer_and_signal_fallback() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("v1freeze");
        if g.cg.mode() == Mode::Hybrid {
            // use only the v1 hierarchies, as on a pure v1 host
            g.cg.hierarchies.retain(|h| !h.v2);
        }
        g.cg.create().unwrap();
        let child = sleeper(&mut g);
        g.cg.add_pid(child).unwrap();
        g.cg.freeze().unwrap();
        assert!(g.cg.is_frozen().unwrap());
        assert!(observed_frozen(child));
        if g.cg.mode() != Mode::V2 {
            assert_eq!(read(&hier(&g.cg, "freezer").dir, "freezer.state"), "FROZEN");
        }
        g.cg.thaw().unwrap();
        // SIGTERM takes the freeze/signal/thaw path on every mode
        g.cg.kill_all(libc::SIGTERM).unwrap();
        assert_eq!(
            g.reap(child),
            WaitStatus::Signaled(Pid::from_raw(child), Signal::SIGTERM, false)
        );
        assert!(!g.cg.is_frozen().unwrap(), "kill_all thawed again");
        g.cg.remove().unwrap();
        assert!(g.cg.paths().iter().all(|h| !h.dir.exists()));
    }

    #[test]
    fn device_rules_are_enforced() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("devices");
        g.cg.create().unwrap();
        let only_null = LinuxResourcesBuilder::default()
            .devices(vec![allow_char(1, 3, "rwm")])
            .build()
            .unwrap();
        g.cg.apply(&only_null).unwrap();
        assert_eq!(probe_devices(&mut g), 1, "null allowed, zero denied");
        g.cg.remove().unwrap();
    }

    /// The v2 eBPF filter, exercised on the unified hierarchy (on a hybrid host
    /// the kernel checks both the v2 programs and the v1 devices controller).
    #[test]
    fn v2_device_filter_is_enforced_and_replaced() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("bpfdev");
        g.cg.create().unwrap();
        let Some(dir) = g.cg.v2_hierarchy().map(|h| h.dir.clone()) else {
            eprintln!("skipped: no cgroup v2 hierarchy");
            return;
        };
        crate::devices_bpf::apply(&dir, &[allow_char(1, 3, "rwm")]).unwrap();
        assert_eq!(probe_devices(&mut g), 1, "null allowed, zero denied");
        // re-applying replaces the filter (the old program is detached)
        crate::devices_bpf::apply(&dir, &[allow_char(1, 3, "rwm"), allow_char(1, 5, "r")]).unwrap();
        assert_eq!(probe_devices(&mut g), 3, "both allowed");
        // read not granted by the only rule for zero
        crate::devices_bpf::apply(&dir, &[allow_char(1, 3, "rwm"), allow_char(1, 5, "w")]).unwrap();
        assert_eq!(probe_devices(&mut g), 1, "zero needs r");
        g.cg.remove().unwrap();
    }

    #[test]
    fn remove_takes_nested_cgroups_and_only_created_parents() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let base = format!("runz-test-{}-nest", std::process::id());
        let mut outer = Guard::new("nest");
        outer.cg.create().unwrap(); // pre-existing parent, not created by `inner`
        let mut inner = Guard {
            cg: Cgroup::resolve(Some(&Path::new(&base).join("a/b")), "x").unwrap(),
            children: Vec::new(),
        };
        inner.cg.create().unwrap();
        for h in inner.cg.paths() {
            assert_eq!(h.created.len(), 2, "{:?}", h.created);
            std::fs::create_dir(h.dir.join("sub")).unwrap();
        }
        inner.cg.remove().unwrap();
        for (i, o) in inner.cg.paths().iter().zip(outer.cg.paths()) {
            assert!(!i.dir.exists());
            assert!(!o.dir.join("a").exists(), "created parent a removed");
            assert!(o.dir.exists(), "pre-existing parent kept");
        }
        outer.cg.remove().unwrap();
        assert!(outer.cg.paths().iter().all(|h| !h.dir.exists()));
    }

    /// A forked child joins every hierarchy itself (v1 `tasks` with 0; the unified one by
    /// clone3 into its fd, or by `cgroup.procs` with 0 when not cloned into it).
    #[test]
    fn a_child_joins_every_hierarchy_itself() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("joinself");
        g.cg.create().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only writes cgroup files (glibc resets malloc's locks at fork, and
        // std's fs calls take no other lock) and then pauses until killed.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(r);
                let code = i32::from(g.cg.join_self(false).is_err());
                nix::unistd::write(&w, b"x").unwrap();
                // SAFETY: pause has no preconditions; the parent kills us.
                unsafe { libc::pause() };
                // SAFETY: _exit ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(w);
                g.children.push(child.as_raw());
                let mut b = [0u8; 1];
                nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut b).unwrap();
                for h in g.cg.paths() {
                    let procs = std::fs::read_to_string(h.dir.join("cgroup.procs")).unwrap();
                    assert!(
                        procs.lines().any(|l| l == child.as_raw().to_string()),
                        "child {child} not in {}: {procs:?}",
                        h.dir.display()
                    );
                }
                if g.cg.paths().iter().any(|h| h.v2) {
                    assert!(g.cg.clone_into_fd().is_some(), "unified dir opens");
                }
            }
        }
        let pid = g.children[0];
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        g.reap(pid);
        g.cg.remove().unwrap();
    }

    #[test]
    fn missing_host_controller_is_reported() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let mut g = Guard::new("missing");
        g.cg.create().unwrap();
        // hugetlb in v1 / v2 leaf; this host has none in v1
        let has_hugetlb = g.cg.paths().iter().any(|h| h.has("hugetlb")) || g.cg.mode() == Mode::V2;
        if has_hugetlb {
            eprintln!("skipped: this host has hugetlb");
            return;
        }
        let huge = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2MB".to_string())
                .limit(1 << 21)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        let e = g.cg.apply(&huge).unwrap_err();
        assert!(
            matches!(&e, CgroupError::MissingController { controller, .. } if controller == "hugetlb"),
            "{e}"
        );
        g.cg.remove().unwrap();
    }
}

#[test]
fn oom_kill_counter_is_read_from_v1_and_v2_files() {
    assert_eq!(
        crate::oom_kill_count("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"),
        4
    );
    assert_eq!(
        crate::oom_kill_count("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n"),
        2
    );
    assert_eq!(crate::oom_kill_count(""), 0);
}
