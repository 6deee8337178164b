//! The no-silent-no-op audit: every property `zonecfg help` lists either changes what the
//! zone sees (a named test reads it from inside the zone, or, for what only the host acts on,
//! observes the host's side), or is refused at verify with its reason (run here), or is
//! metadata the zone never sees by design (attr, as on illumos).
//!
//! The walk reads the property list from the real `zonecfg help`, so a property added to
//! zonecfg without an entry here fails the audit; an entry naming a test checks that the test
//! exists and sets the property. Properties no other test file reads from inside are read
//! here (`properties_no_other_test_reads_are_seen_inside_the_zone`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::require_root;
use common::zonehost::{bin, ZoneHost};

/// How a property is shown not to be a silent no-op.
enum Proof {
    /// `file`'s test `test` sets the property (its body holds `needle`) and reads the effect
    /// from inside the zone.
    Inside(&'static str, &'static str, &'static str),
    /// The same, for a property only the host acts on (the zone cannot see it): the test
    /// observes the host's side (autoboot, storage, network link properties).
    HostSide(&'static str, &'static str, &'static str),
    /// Refused at verify: the zonecfg commands (after `create; set zonepath=...`) and the
    /// reason in the refusal (from zonecfg's commit, else from `zoneadm verify`).
    Refused(&'static str, &'static str),
    /// Never seen by the zone, on illumos either: administrator's metadata.
    Metadata(&'static str),
}

use Proof::*;

/// This file, for the tests here.
const HERE: &str = "zonecfg_audit.rs";
const INSIDE_HERE: &str = "properties_no_other_test_reads_are_seen_inside_the_zone";

/// (scope, property) → proof; scope "global" or the resource type.
const AUDIT: &[(&str, &str, Proof)] = &[
    ("global", "zonename", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "\"zpeer\", \"hostname\"")),
    ("global", "zonepath", Inside(HERE, INSIDE_HERE, "set zonepath=")),
    ("global", "brand", Inside("zones.rs", "an_app_zone_runs_one_program", "set brand=app")),
    ("global", "autoboot", HostSide("zones.rs", "boot_all_and_shutdown_all_follow_autoboot", "autoboot")),
    ("global", "bootargs", Inside("zones.rs", "an_app_zone_runs_one_program", "set bootargs=")),
    ("global", "pool", Refused("set pool=pool_web", "pool pool_web: resource pools are not supported on Linux")),
    ("global", "limitpriv", Inside("zones.rs", "zlogin_runs_with_the_zones_bounding_set_seccomp_and_cgroup", "set limitpriv=")),
    ("global", "scheduling-class", Refused("set scheduling-class=RT", "scheduling-class RT: only FSS is supported")),
    ("global", "ip-type", Refused("set ip-type=shared", "ip-type=shared is not supported")),
    ("global", "hostid", Inside("zones.rs", "ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused", "set hostid=")),
    ("global", "fs-allowed", Refused("set fs-allowed=ext4", "fs-allowed=ext4: a zone mounts only what its user namespace may")),
    ("global", "storage", HostSide("storage.rs", "btrfs_zones_are_snapshots_with_a_quota", "set storage=btrfs")),
    ("global", "quota", HostSide("storage.rs", "btrfs_zones_are_snapshots_with_a_quota", "set quota=")),
    ("global", "userns", Inside("userns.rs", "userns_false_opts_out_and_back_in", "set userns=false")),
    ("global", "hostname", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "hostname")),
    ("global", "resolvers", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "resolvers")),
    ("global", "cpu-shares", Inside("caps.rs", "cpu_shares_split_a_contended_cpu_two_to_one", "set cpu-shares=")),
    ("global", "max-lwps", Inside("caps.rs", "max_lwps_stops_a_fork_bomb_and_the_zone_stays_usable", "set max-lwps=")),
    ("global", "max-processes", Inside(HERE, INSIDE_HERE, "set max-processes=")),
    ("global", "max-msg-ids", Inside("zones.rs", "ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused", "set max-msg-ids=")),
    ("global", "max-sem-ids", Inside("zones.rs", "ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused", "set max-sem-ids=")),
    ("global", "max-shm-ids", Inside("zones.rs", "ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused", "set max-shm-ids=")),
    ("global", "max-shm-memory", Inside("zones.rs", "ipc_limits_and_hostid_are_the_zones_own_and_unsupported_properties_are_refused", "set max-shm-memory=")),
    ("fs", "dir", Inside(HERE, INSIDE_HERE, "set dir=")),
    ("fs", "special", Inside(HERE, INSIDE_HERE, "set special=")),
    ("fs", "raw", Refused("add fs; set dir=/d; set special=/srv; set type=lofs; set raw=/dev/sdz; end", "fs dir=/d: raw is the device fsck checks")),
    ("fs", "type", Inside(HERE, INSIDE_HERE, "set type=tmpfs")),
    ("fs", "options", Inside(HERE, INSIDE_HERE, "add options")),
    ("net", "address", Refused("add net; set physical=vnic0; set address=10.0.0.2/24; end", "address cannot be set in an exclusive-IP zone")),
    ("net", "allowed-address", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "set allowed-address=")),
    ("net", "physical", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "set physical=")),
    ("net", "defrouter", Inside("network.rs", "net_resource_lends_a_dladm_vnic_and_name_files_are_written", "set defrouter=")),
    ("net", "global-nic", Refused("add net; set physical=vnic0; set global-nic=eth0; end", "net vnic0 global-nic eth0: global-nic is for shared-IP zones")),
    ("net", "mac-addr", Refused("add net; set physical=vnic0; set mac-addr=2:8:20:1:2:3; end", "net vnic0 mac-addr 2:8:20:1:2:3: a net resource takes the VNIC as it is")),
    ("net", "vlan-id", Refused("add net; set physical=vnic0; set vlan-id=5; end", "net vnic0 vlan-id 5: a net resource takes the VNIC as it is")),
    ("anet", "linkname", Inside("network.rs", "zones_on_one_etherstub_ping_each_other_and_not_across_stubs", "/sys/class/net/net0/address")),
    ("anet", "lower-link", Inside("network.rs", "zones_on_one_etherstub_ping_each_other_and_not_across_stubs", "create-etherstub")),
    ("anet", "allowed-address", Inside("network.rs", "zones_on_one_etherstub_ping_each_other_and_not_across_stubs", "inet 10.213.0.1/24")),
    ("anet", "defrouter", Inside("network.rs", "zones_on_one_etherstub_ping_each_other_and_not_across_stubs", "set defrouter=")),
    ("anet", "mac-address", Inside("network.rs", "zones_on_one_etherstub_ping_each_other_and_not_across_stubs", "set mac-address=")),
    ("anet", "vlan-id", Inside("network.rs", "vlan_ids_separate_zones_on_one_etherstub", "set vlan-id=")),
    ("anet", "mtu", Inside(HERE, INSIDE_HERE, "set mtu=")),
    ("anet", "maxbw", Inside("network.rs", "maxbw_caps_both_directions", "set maxbw=")),
    ("anet", "priority", HostSide("network.rs", "halt_after_kill_9_of_the_supervisor_removes_the_links", "set priority=high")),
    ("anet", "link-protection", Inside("network.rs", "link_protection_drops_and_counts_spoofed_packets", "set link-protection=")),
    ("device", "match", Inside(HERE, INSIDE_HERE, "set match=")),
    ("rctl", "name", Inside(HERE, INSIDE_HERE, "set name=zone.max-msg-ids")),
    ("rctl", "value", Inside(HERE, INSIDE_HERE, "add value")),
    ("attr", "name", Metadata("attr resources are the administrator's notes (vmadm keeps alias and tags in them); illumos does not show them to the zone either")),
    ("attr", "type", Metadata("see attr name")),
    ("attr", "value", Metadata("see attr name")),
    // Delegated on OpenZFS (the guest); refused at verify on zfs-fuse (tests/dataset.rs).
    ("dataset", "name", Inside("dataset.rs", "a_delegated_dataset_is_the_zones_to_manage_and_the_hosts_again_after_halt", "add dataset; set name=")),
    ("dedicated-cpu", "ncpus", Inside(HERE, INSIDE_HERE, "add dedicated-cpu; set ncpus=1")),
    ("dedicated-cpu", "importance", Refused("add dedicated-cpu; set ncpus=1; set importance=5; end", "dedicated-cpu importance=5: importance ranks resource pools")),
    ("capped-cpu", "ncpus", Inside("caps.rs", "capped_cpu_holds_a_busy_loop_to_its_cap", "add capped-cpu; set ncpus=")),
    ("capped-memory", "physical", Inside("caps.rs", "a_memory_cap_oom_kills_inside_the_zone_only", "set physical=")),
    ("capped-memory", "swap", Inside(HERE, INSIDE_HERE, "set swap=")),
    ("capped-memory", "locked", Inside("caps.rs", "a_memory_cap_oom_kills_inside_the_zone_only", "set locked=")),
    ("capped-io", "device", Inside("caps.rs", "capped_io_throttles_writes_to_a_device_and_changes_live", "set device=")),
    ("capped-io", "rbps", Inside(HERE, INSIDE_HERE, "set rbps=")),
    ("capped-io", "wbps", HostSide("caps.rs", "capped_io_throttles_writes_to_a_device_and_changes_live", "set wbps=")),
    ("capped-io", "riops", Inside(HERE, INSIDE_HERE, "set riops=")),
    ("capped-io", "wiops", Inside(HERE, INSIDE_HERE, "set wiops=")),
];

/// The properties `zonecfg help` lists: (scope, property).
fn help_properties() -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_zonecfg"))
        .arg("help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut props = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Properties (") else {
            continue;
        };
        let (scope, list) = rest.split_once("): ").unwrap();
        for p in list.split(", ") {
            props.push((scope.to_string(), p.to_string()));
        }
    }
    assert!(props.len() > 50, "help lists too few properties: {text}");
    props
}

/// The body of `fn test(` in tests/`file`.
fn test_body(file: &str, test: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(&format!("fn {test}("))
        .unwrap_or_else(|| panic!("tests/{file} has no fn {test}"));
    let body = &text[start..];
    // Up to the next function at the start of a line.
    let end = body[1..].find("\nfn ").map_or(body.len(), |i| i + 1);
    body[..end].to_string()
}

/// A scratch alternate root for zonecfg, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(prog: &str, root: &Path, args: &[&str]) -> Output {
    Command::new(bin(prog))
        .arg("-R")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_property_in_help_takes_effect_or_is_refused() {
    let listed = help_properties();
    // Both ways: every listed property has a proof, every proof a listed property.
    for (scope, prop) in &listed {
        assert!(
            AUDIT.iter().any(|(s, p, _)| s == scope && p == prop),
            "{scope} {prop}: listed by zonecfg help, not audited"
        );
    }
    for (scope, prop, _) in AUDIT {
        assert!(
            listed.iter().any(|(s, p)| s == scope && p == prop),
            "{scope} {prop}: audited, not listed by zonecfg help"
        );
    }
    let scratch = Scratch(
        std::env::temp_dir().join(format!("runz-test-{}-zonecfg-audit", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&scratch.0);
    std::fs::create_dir_all(&scratch.0).unwrap();
    for (scope, prop, proof) in AUDIT {
        match proof {
            Inside(file, test, needle) | HostSide(file, test, needle) => {
                let body = test_body(file, test);
                assert!(
                    body.contains(needle),
                    "{scope} {prop}: tests/{file} {test} does not contain {needle:?}"
                );
            }
            Metadata(why) => assert!(!why.is_empty()),
            Refused(cfg, reason) => {
                let root = &scratch.0;
                let cmds = format!("create -F; set zonepath=/zones/audit; {cfg}");
                let out = run("zonecfg", root, &["-z", "audit", &cmds]);
                let err = if out.status.success() {
                    // zonecfg stores it; zoneadm verify (what boot runs first) refuses it.
                    let v = run("zoneadm", root, &["-z", "audit", "verify"]);
                    assert!(
                        !v.status.success(),
                        "{scope} {prop}: {cfg}: zoneadm verify passed"
                    );
                    String::from_utf8_lossy(&v.stderr).into_owned()
                } else {
                    String::from_utf8_lossy(&out.stderr).into_owned()
                };
                assert!(
                    err.contains(reason),
                    "{scope} {prop}: {cfg}: refused with {err:?}, not {reason:?}"
                );
            }
        }
    }
}

// Host: the zone host with a busybox image.
common::zonehost::host_type!();

/// A host with an etherstub made for its test: on drop the zones are halted, then the
/// etherstub is deleted, then the host's root goes (the host's own drop).
struct WithStub {
    host: Host,
    stub: String,
}

impl Drop for WithStub {
    fn drop(&mut self) {
        self.host.halt_all();
        let _ = run("dladm", &self.host.root, &["delete-etherstub", &self.stub]);
    }
}

/// The properties no other test file reads from inside a zone: fs dir/special/type/options,
/// zonepath, max-processes, swap, an rctl resource's name and value, dedicated-cpu ncpus,
/// device match, anet mtu, capped-io's rbps/riops/wiops (the zone's own cgroup files, as the
/// zone sees them).
#[test]
fn properties_no_other_test_reads_are_seen_inside_the_zone() {
    if !require_root() {
        return;
    }
    let host = Host(ZoneHost::new("audit", "inside", true));
    let stub = host.link_name("rzt", "a");
    host.ok("dladm", &["create-etherstub", &stub]);
    let guard = WithStub { host, stub };
    let (h, stub) = (&guard.host, &guard.stub);
    let share = h.root.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("f"), "from the host\n").unwrap();
    let lo = common::cowfs::LoopDev::new(16 << 20);
    let dev = lo.dev.to_str().unwrap();
    let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(dev).unwrap());
    let devno = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    h.ok(
        "zonecfg",
        &[
            "-z",
            "au",
            &format!(
                "create; set zonepath=/zones/au; set max-processes=77; \
                 add fs; set dir=/data; set special={share}; set type=lofs; add options [ro,nodevices]; end; \
                 add fs; set dir=/scratch; set special=swap; set type=tmpfs; add options \"size=3m\"; end; \
                 add rctl; set name=zone.max-msg-ids; add value (priv=privileged,limit=321,action=deny); end; \
                 add capped-memory; set physical=256m; set swap=512m; end; \
                 add dedicated-cpu; set ncpus=1; end; \
                 add device; set match={dev}; end; \
                 add capped-io; set device={dev}; set rbps=2m; set riops=300; set wiops=400; end; \
                 add anet; set linkname=net0; set lower-link={stub}; set allowed-address=10.213.9.1/24; set mtu=1400; end",
                share = share.display(),
                stub = stub,
            ),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "au", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "au", "boot"]);
    let inside = |script: &str| h.ok("zlogin", &["au", script]);
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    // The zone's own cgroup file as the zone sees it (its cgroup namespace's root): v1 in the
    // hierarchy of the file's controller, v2 in the one hierarchy.
    let cgroup = |file: &str| {
        let ctrl = file.split('.').next().unwrap();
        let path = if v2 {
            format!("/sys/fs/cgroup/{file}")
        } else {
            format!("/sys/fs/cgroup/{ctrl}/{file}")
        };
        inside(&format!("cat {path}"))
    };

    // zonepath: the zone's root is <zonepath>/root: a file put there from the host is seen.
    let zonepath = h.root.join("zones/au/root");
    std::fs::write(zonepath.join("marker"), "zonepath\n").unwrap();
    assert_eq!(inside("cat /marker"), "zonepath\n");
    // fs dir/special/type/options: a read-only bind of the host's directory, and a tmpfs of
    // the size given.
    assert_eq!(inside("cat /data/f"), "from the host\n");
    assert_eq!(
        inside("touch /data/x 2>/dev/null && echo writable || echo read-only"),
        "read-only\n"
    );
    let mounts = inside("grep -E ' /(data|scratch) ' /proc/mounts");
    let data = mounts.lines().find(|l| l.contains(" /data ")).unwrap_or("");
    assert!(
        data.split(' ')
            .nth(3)
            .unwrap_or("")
            .split(',')
            .any(|o| o == "ro"),
        "{mounts}"
    );
    assert!(data.contains("nodev"), "{mounts}");
    let scratch = mounts
        .lines()
        .find(|l| l.contains(" /scratch "))
        .unwrap_or("");
    assert!(
        scratch.starts_with("swap /scratch tmpfs ") || scratch.contains(" tmpfs "),
        "{mounts}"
    );
    assert!(scratch.contains("size=3072k"), "{mounts}");
    // max-processes: the zone cannot have more tasks than that.
    assert_eq!(cgroup("pids.max").trim(), "77");
    // rctl resource (name and value): msgmni of the zone's own IPC namespace.
    assert_eq!(inside("cat /proc/sys/kernel/msgmni"), "321\n");
    // capped-memory swap: memory plus swap, or swap beyond memory on v2.
    if v2 {
        assert_eq!(cgroup("memory.swap.max").trim(), (256u64 << 20).to_string());
    } else {
        assert_eq!(
            cgroup("memory.memsw.limit_in_bytes").trim(),
            (512u64 << 20).to_string()
        );
    }
    // dedicated-cpu ncpus=1: the zone's processes may run on one CPU.
    let cpus = inside("grep Cpus_allowed_list /proc/self/status");
    let list = cpus.split(':').nth(1).unwrap_or("").trim();
    assert!(list.parse::<u32>().is_ok(), "one CPU, not {list:?}");
    // device match: the device node is in the zone.
    let ls = inside(&format!("ls -l {dev}"));
    assert!(ls.starts_with('b'), "{ls}");
    // anet mtu: the zone's link has it.
    assert_eq!(inside("cat /sys/class/net/net0/mtu"), "1400\n");
    // capped-io rbps/riops/wiops: the zone's block I/O throttles, read in the zone.
    if v2 {
        let io = cgroup("io.max");
        let line = io.lines().find(|l| l.starts_with(&devno)).unwrap_or("");
        for want in ["rbps=2097152", "riops=300", "wiops=400"] {
            assert!(line.contains(want), "io.max: {io}");
        }
    } else {
        for (file, want) in [
            ("blkio.throttle.read_bps_device", "2097152"),
            ("blkio.throttle.read_iops_device", "300"),
            ("blkio.throttle.write_iops_device", "400"),
        ] {
            let text = cgroup(file);
            assert!(text.contains(&format!("{devno} {want}")), "{file}: {text}");
        }
    }
    h.ok("zoneadm", &["-z", "au", "halt"]);
}
