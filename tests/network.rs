//! Zone networking end to end through the real binaries: dladm etherstubs and VNICs, zones
//! with anets on them that ping each other (bounded: busybox ping with a count and a
//! deadline), isolation between etherstubs, teardown at halt (also after kill -9 of the
//! supervisor), and bad input that leaves nothing behind.
//!
//! Etherstubs and VNICs live in the host namespace under test names (`rzt<pid><tag>`); the
//! zones' addresses (10.213.x.y/24) exist only inside the zones' own namespaces.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::require_root;
use common::zonehost::{bin, mounted, ZoneHost};
use zones_linux::zone::datalinks;
use zones_linux::zone::network::{host_link_name, ifb_name};
use zones_net::{nft, Netlink};

/// A zone host with a busybox image whose test links carry `tag`; see `common::zonehost`.
struct Host {
    zones: ZoneHost,
    tag: String,
    /// Zones configured here: their host ends, ifbs and nft tables are removed on drop.
    made: RefCell<Vec<String>>,
}

impl std::ops::Deref for Host {
    type Target = ZoneHost;
    fn deref(&self) -> &ZoneHost {
        &self.zones
    }
}

impl Host {
    fn new(tag: &str) -> Host {
        let zones = ZoneHost::new("net", tag, true);
        Host {
            tag: zones.link_name("rzt", ""),
            zones,
            made: RefCell::new(Vec::new()),
        }
    }

    /// A link name for this test: `rzt<pid><n><suffix>`, within 15 bytes.
    fn link(&self, suffix: &str) -> String {
        self.zones.link_name("rzt", suffix)
    }

    /// An etherstub `<tag>s` and a VNIC `<tag>v` over it made with dladm (`create-vnic` with
    /// the options `opts`): (etherstub, vnic).
    fn stub_and_vnic(&self, opts: &[&str]) -> (String, String) {
        let s = self.link("s");
        let v = self.link("v");
        self.ok("dladm", &["create-etherstub", &s]);
        let mut args = vec!["create-vnic", "-l", &s];
        args.extend_from_slice(opts);
        args.push(&v);
        self.ok("dladm", &args);
        (s, v)
    }

    /// Configure and install a zone with one anet `net0` on `stub`.
    fn zone(&self, zone: &str, stub: &str, addr: &str, extra: &str) {
        self.made.borrow_mut().push(zone.to_string());
        self.ok(
            "zonecfg",
            &[
                "-z",
                zone,
                &format!(
                    "create; set zonepath=/zones/{zone}; set max-processes=100; \
                     add anet; set linkname=net0; set lower-link={stub}; \
                     set allowed-address={addr}; {extra} end"
                ),
            ],
        );
        self.ok(
            "zoneadm",
            &["-z", zone, "install", "-d", self.image.to_str().unwrap()],
        );
    }

    fn netns_file(&self, zone: &str) -> PathBuf {
        self.root.join(format!("run/zones/{zone}/netns"))
    }
}

fn host_link_exists(name: &str) -> bool {
    Netlink::open().unwrap().link(name).unwrap().is_some()
}

impl Drop for Host {
    fn drop(&mut self) {
        // Halt first so the zones' own teardown runs, then any test link that is left.
        self.zones.halt_all();
        for z in self.made.borrow().iter() {
            for l in ["net0", "net1"] {
                let host = host_link_name(z, l);
                let _ = nft::unprotect(&host);
                if let Ok(mut nl) = Netlink::open() {
                    let _ = nl.delete_if_exists(&ifb_name(&host));
                    let _ = nl.delete_if_exists(&host);
                }
            }
        }
        if let Ok(mut nl) = Netlink::open() {
            for l in nl.links().unwrap_or_default() {
                if l.name.starts_with(&self.tag) {
                    // A test VNIC's bridge port may carry an ifb and an nft table.
                    let _ = nft::unprotect(&datalinks::vnic_port_name(&l.name));
                    let _ = nl.delete_if_exists(&datalinks::vnic_ifb_name(&l.name));
                    let _ = nl.delete_link(&l.name);
                }
            }
        }
    }
}

#[test]
fn zones_on_one_etherstub_ping_each_other_and_not_across_stubs() {
    if !require_root() {
        return;
    }
    let h = Host::new("ping");
    let s1 = h.link("s1");
    let s2 = h.link("s2");
    h.ok("dladm", &["create-etherstub", &s1]);
    h.ok("dladm", &["create-etherstub", &s2]);
    assert_eq!(
        h.ok("dladm", &["show-etherstub", "-p", "-o", "link"]),
        format!("{s1}\n{s2}\n")
    );
    h.zone("za", &s1, "10.213.0.1/24", "set mac-address=2:8:20:d:1:1;");
    h.zone("zb", &s1, "10.213.0.2/24", "set defrouter=10.213.0.1;");
    h.zone("zc", &s2, "10.213.0.3/24", "");
    for z in ["za", "zb", "zc"] {
        h.ok("zoneadm", &["-z", z, "boot"]);
    }
    // The zone's link: its name, MAC and address, set before init ran.
    assert_eq!(
        h.ok("zlogin", &["za", "cat /sys/class/net/net0/address"]),
        "02:08:20:0d:01:01\n"
    );
    let addrs = h.ok("zlogin", &["za", "ip -4 addr show dev net0"]);
    assert!(addrs.contains("inet 10.213.0.1/24"), "{addrs}");
    let routes = h.ok("zlogin", &["zb", "ip route"]);
    assert!(routes.contains("default via 10.213.0.1"), "{routes}");
    // The host end is a port of the etherstub.
    let mut nl = Netlink::open().unwrap();
    let stub = nl.require(&s1).unwrap();
    let port = nl.require(&host_link_name("za", "net0")).unwrap();
    assert_eq!(port.master, Some(stub.index));

    // Same etherstub: reachable both ways.
    h.ok("zlogin", &["za", "ping -c 2 -w 10 10.213.0.2"]);
    h.ok("zlogin", &["zb", "ping -c 2 -w 10 10.213.0.1"]);
    // Another etherstub: not reachable (no route, no switch between them).
    let out = h.cmd("zlogin", &["zc", "ping -c 2 -w 3 10.213.0.1"]);
    assert!(!out.status.success(), "zc reached za across etherstubs");
    let out = h.cmd("zlogin", &["za", "ping -c 2 -w 3 10.213.0.3"]);
    assert!(!out.status.success(), "za reached zc across etherstubs");

    // A VNIC cannot take the MAC of a running zone's link.
    let err = h.fails(
        "dladm",
        &["create-vnic", "-l", &s1, "-m", "2:8:20:d:1:1", &h.link("v")],
    );
    assert!(err.contains("already used by zone 'za'"), "{err}");
    assert!(!host_link_exists(&h.link("v")));

    // An etherstub in use cannot be deleted.
    let err = h.fails("dladm", &["delete-etherstub", &s1]);
    assert!(err.contains("in use by"), "{err}");

    for z in ["za", "zb", "zc"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
        assert!(!host_link_exists(&host_link_name(z, "net0")), "{z}");
        assert!(!h.netns_file(z).exists(), "{z}");
        assert!(!mounted(&h.netns_file(z)), "{z}");
    }
    // Booting again works (nothing left from the first boot gets in the way).
    h.ok("zoneadm", &["-z", "za", "boot"]);
    h.ok("zoneadm", &["-z", "za", "halt"]);
    h.ok("dladm", &["delete-etherstub", &s1]);
    h.ok("dladm", &["delete-etherstub", &s2]);
    assert!(!host_link_exists(&s1));
    assert_eq!(h.ok("dladm", &["show-etherstub", "-p", "-o", "link"]), "");
}

#[test]
fn halt_after_kill_9_of_the_supervisor_removes_the_links() {
    if !require_root() {
        return;
    }
    let h = Host::new("kill");
    let (s, v) = h.stub_and_vnic(&[]);
    h.zone(
        "zk",
        &s,
        "10.213.1.1/24",
        &format!(
            "set maxbw=50M; set link-protection=mac-nospoof,ip-nospoof; set priority=high; \
             end; add net; set physical={v}; set allowed-address=10.213.1.2/24;"
        ),
    );
    h.ok("zoneadm", &["-z", "zk", "boot"]);
    let host_end = host_link_name("zk", "net0");
    assert!(host_link_exists(&host_end));
    assert!(host_link_exists(&ifb_name(&host_end)));
    assert!(!host_link_exists(&v), "the VNIC is in the zone");
    let table = nft_table(&host_end).unwrap();
    let comments: Vec<&str> = table["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["rule"]["comment"].as_str())
        .collect();
    for want in ["priority", "mac-nospoof", "ip-nospoof"] {
        assert!(comments.contains(&want), "{want}: {comments:?}");
    }
    assert!(mounted(&h.netns_file("zk")));
    let pid: i32 = std::fs::read_to_string(h.root.join("run/zones/zk/zoneadmd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::wait_until(|| h.state("zk") == "down");
    // The links outlive the supervisor until halt cleans up after it.
    assert!(host_link_exists(&host_end));
    h.ok("zoneadm", &["-z", "zk", "halt"]);
    assert_eq!(h.state("zk"), "installed");
    assert!(!host_link_exists(&host_end));
    assert!(!host_link_exists(&ifb_name(&host_end)));
    assert!(nft_table(&host_end).is_none());
    assert!(host_link_exists(&v), "the VNIC came back to the host");
    assert!(!mounted(&h.netns_file("zk")));
    assert!(!h.netns_file("zk").exists());
    // A recorded etherstub that went missing is made again at boot.
    Netlink::open().unwrap().delete_link(&s).unwrap();
    h.ok("zoneadm", &["-z", "zk", "boot"]);
    assert!(host_link_exists(&s));
    h.ok("zoneadm", &["-z", "zk", "halt"]);
    h.ok("dladm", &["delete-vnic", &v]);
    h.ok("dladm", &["delete-etherstub", &s]);
}

#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("bad");
    let s = h.link("s");
    h.ok("dladm", &["create-etherstub", &s]);

    // A lower-link that does not exist.
    let missing = h.link("nope");
    h.zone("zm", &missing, "10.213.2.1/24", "");
    let err = h.fails("zoneadm", &["-z", "zm", "boot"]);
    assert!(
        err.contains(&format!("lower-link '{missing}' does not exist")),
        "{err}"
    );
    assert_eq!(h.state("zm"), "installed");
    assert!(!h.netns_file("zm").exists());

    // A MAC another zone uses.
    h.zone(
        "z1",
        &s,
        "10.213.2.2/24",
        "set mac-address=02:08:20:0d:02:02;",
    );
    h.zone(
        "z2",
        &s,
        "10.213.2.3/24",
        "set mac-address=02:08:20:0d:02:02;",
    );
    h.ok("zoneadm", &["-z", "z1", "boot"]);
    let err = h.fails("zoneadm", &["-z", "z2", "boot"]);
    assert!(
        err.contains("mac-address 02:08:20:0d:02:02 is already used by zone 'z1'"),
        "{err}"
    );
    assert!(!host_link_exists(&host_link_name("z2", "net0")));
    assert!(!h.netns_file("z2").exists());
    h.ok("zoneadm", &["-z", "z1", "halt"]);

    // A default router outside the allowed address's subnet.
    h.zone(
        "zo",
        &s,
        "10.213.2.4/24",
        "set defrouter=10.213.9.1; set maxbw=10M; set link-protection=ip-nospoof;",
    );
    let err = h.fails("zoneadm", &["-z", "zo", "boot"]);
    assert!(
        err.contains("defrouter 10.213.9.1 is outside allowed-address 10.213.2.4/24"),
        "{err}"
    );
    let host_zo = host_link_name("zo", "net0");
    assert!(!host_link_exists(&host_zo));
    assert!(!host_link_exists(&ifb_name(&host_zo)));
    assert!(nft_table(&host_zo).is_none());
    assert!(!h.netns_file("zo").exists());

    // A failure half-way through (the kernel refuses a second default route, after both
    // links, their caps and protection were made) undoes everything.
    h.zone(
        "zd",
        &s,
        "10.213.2.5/24",
        &format!(
            "set defrouter=10.213.2.1; set maxbw=10M; set link-protection=mac-nospoof; end; \
             add anet; set linkname=net1; set lower-link={s}; set allowed-address=10.213.2.6/24; \
             set defrouter=10.213.2.1; set maxbw=10M; set link-protection=mac-nospoof;"
        ),
    );
    let err = h.fails("zoneadm", &["-z", "zd", "boot"]);
    assert!(err.contains("add route"), "{err}");
    assert_eq!(h.state("zd"), "installed");
    for l in ["net0", "net1"] {
        let host_end = host_link_name("zd", l);
        assert!(!host_link_exists(&host_end), "{l}");
        assert!(!host_link_exists(&ifb_name(&host_end)), "{l}");
        assert!(nft_table(&host_end).is_none(), "{l}");
    }
    assert!(!h.netns_file("zd").exists());

    // A VLAN id where the kernel has no bridge VLAN filtering: the answer says so (where it
    // has, `vlan_ids_separate_zones_on_one_etherstub` boots such zones).
    if !vlan_supported(&h) {
        h.zone("zv", &s, "10.213.2.7/24", "set vlan-id=5;");
        let err = h.fails("zoneadm", &["-z", "zv", "boot"]);
        assert!(err.contains("anet net0 vlan-id 5: VLAN 5"), "{err}");
        assert!(!host_link_exists(&host_link_name("zv", "net0")));
        assert!(!h.netns_file("zv").exists());
    }

    // A lower-link name too long for an interface.
    let out = h.cmd(
        "zonecfg",
        &[
            "-z",
            "zl",
            "create; set zonepath=/zones/zl; add anet; set linkname=net0; \
             set lower-link=a-name-far-too-long-for-linux; end",
        ],
    );
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        h.ok(
            "zoneadm",
            &["-z", "zl", "install", "-d", h.image.to_str().unwrap()],
        );
        let err = h.fails("zoneadm", &["-z", "zl", "boot"]);
        assert!(err.contains("longer than 15 bytes"), "{err}");
    } else {
        assert!(text.contains("a-name-far-too-long-for-linux"), "{text}");
    }

    // ip-type=shared is refused.
    h.ok(
        "zonecfg",
        &[
            "-z",
            "zs",
            "create; set zonepath=/zones/zs; set ip-type=shared",
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "zs", "install", "-d", h.image.to_str().unwrap()],
    );
    let err = h.fails("zoneadm", &["-z", "zs", "boot"]);
    assert!(err.contains("ip-type=shared is not supported"), "{err}");

    // dladm: a VNIC over a missing link, a duplicate etherstub, a name too long.
    let err = h.fails("dladm", &["create-vnic", "-l", &missing, &h.link("v")]);
    assert!(
        err.contains(&format!("link '{missing}' does not exist")),
        "{err}"
    );
    let err = h.fails("dladm", &["create-etherstub", &s]);
    assert!(err.contains("already exists"), "{err}");
    let err = h.fails("dladm", &["create-etherstub", "a-name-far-too-long"]);
    assert!(err.contains("longer than 15 bytes"), "{err}");

    // No link left behind: none with this test's tag but the etherstub, no zone's host end.
    let left: Vec<String> = Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| {
            (n.starts_with(&h.tag) && *n != s)
                || ["zm", "z1", "z2", "zl", "zs"]
                    .iter()
                    .any(|z| *n == host_link_name(z, "net0"))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    h.ok("dladm", &["delete-etherstub", &s]);
}

#[test]
fn dladm_vnics_over_an_etherstub() {
    if !require_root() {
        return;
    }
    let h = Host::new("vnic");
    let (s, v) = h.stub_and_vnic(&["-m", "2:8:20:d:3:1"]);
    assert_eq!(
        h.ok(
            "dladm",
            &["show-vnic", "-p", "-o", "link,over,macaddress,state"]
        ),
        format!("{v}:{s}:02\\:08\\:20\\:0d\\:03\\:01:up\n")
    );
    let mut nl = Netlink::open().unwrap();
    assert_eq!(
        nl.require(&v).unwrap().mac.as_deref(),
        Some("02:08:20:0d:03:01")
    );
    let err = h.fails(
        "dladm",
        &["create-vnic", "-l", &s, "-m", "2:8:20:d:3:1", &h.link("w")],
    );
    assert!(err.contains("already used by link"), "{err}");
    let err = h.fails("dladm", &["delete-etherstub", &s]);
    assert!(err.contains(&format!("in use by VNIC '{v}'")), "{err}");
    // Missing links come back with `dladm up`.
    nl.delete_link(&v).unwrap();
    assert_eq!(h.ok("dladm", &["up"]), format!("{v}\n"));
    assert!(host_link_exists(&v));
    // After a host reboot the host service makes them again (dladm up before boot-all).
    nl.delete_link(&v).unwrap();
    nl.delete_link(&s).unwrap();
    let out = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/integration/service/zones.init"
    ))
    .arg("start")
    .env("ZONEADM", bin("zoneadm"))
    .env("ZONES_ALTROOT", &h.root)
    .env("ZONES_NO_DEFAULTS", "1")
    .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
    // The links, not the API: no zonesd (tests/zonesd_service.rs tests that).
    .env("ZONESD_ENABLE", "no")
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(out.status.success(), "zones.init start: {out:?}");
    assert!(host_link_exists(&s) && host_link_exists(&v));
    assert_eq!(
        nl.require(&v).unwrap().mac.as_deref(),
        Some("02:08:20:0d:03:01")
    );
    h.ok("dladm", &["delete-vnic", &v]);
    assert!(!host_link_exists(&v));
    h.ok("dladm", &["delete-etherstub", &s]);
    assert_eq!(h.ok("dladm", &["show-vnic", "-p", "-o", "link"]), "");
}

/// The nft table protecting `link`, as `nft -j` lists it, or `None`.
fn nft_table(link: &str) -> Option<serde_json::Value> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "bridge", &nft::table_name(link)])
        .output()
        .expect("nft (package nftables) is installed");
    if !out.status.success() {
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Packets dropped by the rules of `link`'s table whose comment is `why`.
fn drops(link: &str, why: &str) -> u64 {
    let t = nft_table(link).unwrap_or_else(|| panic!("no nft table for {link}"));
    t["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["rule"]["comment"] == why)
        .flat_map(|o| o["rule"]["expr"].as_array().unwrap().clone())
        .filter_map(|e| e["counter"]["packets"].as_u64())
        .sum()
}

/// `zlogin ZONE CMD`, started and left running.
fn spawn_zlogin(h: &Host, zone: &str, cmd: &str) -> std::process::Child {
    Command::new(bin("zlogin"))
        .arg("-R")
        .arg(&h.root)
        .args([zone, cmd])
        .env("ZONES_CGROUP_PARENT", &h.cgroup_parent)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait (at most 10 s) until something in `zone` listens on TCP `port`.
fn wait_listening(h: &Host, zone: &str, port: u16) {
    let port = format!(":{port:04X}");
    let listening = |table: &str| {
        table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&port) && f[3] == "0A"
        })
    };
    for _ in 0..100 {
        // busybox nc listens on an IPv6 socket when it can: look at both tables.
        if listening(&h.ok("zlogin", &[zone, "cat /proc/net/tcp /proc/net/tcp6"])) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on {port} in {zone}");
}

/// Send `bytes` from zone `from` to `to_addr` (in zone `to`) over TCP with busybox nc;
/// returns the rate in Mbit/s, from the sender's start to the receiver having it all.
/// Bounded: a fixed byte count, and `timeout` on both ends.
fn transfer_mbit(h: &Host, from: &str, to: &str, to_addr: &str, bytes: u64) -> f64 {
    const PORT: u16 = 5001;
    // The receiver's stdin is a fifo it also holds open, so nc never sees EOF there (which
    // would make it half-close the connection); it exits when the sender is done.
    let mut rx = spawn_zlogin(
        h,
        to,
        &format!(
            "rm -f /tmp/f; mkfifo /tmp/f; exec 3<>/tmp/f; \
             timeout 60 nc -l -p {PORT} <&3 | wc -c"
        ),
    );
    wait_listening(h, to, PORT);
    let start = Instant::now();
    let count = bytes / 65536;
    let tx = spawn_zlogin(
        h,
        from,
        &format!(
            "dd if=/dev/zero bs=65536 count={count} 2>/dev/null | timeout 60 nc {to_addr} {PORT}"
        ),
    );
    let status = rx.wait().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let tx = tx.wait_with_output().unwrap();
    let mut out = String::new();
    use std::io::Read;
    rx.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(status.success(), "receiver failed: {out}");
    assert!(
        tx.status.success(),
        "sender failed: {}",
        String::from_utf8_lossy(&tx.stderr)
    );
    assert_eq!(out.trim(), (count * 65536).to_string(), "bytes received");
    (count * 65536 * 8) as f64 / secs / 1e6
}

#[test]
fn maxbw_caps_both_directions() {
    if !require_root() {
        return;
    }
    let h = Host::new("bw");
    let s = h.link("s");
    h.ok("dladm", &["create-etherstub", &s]);
    h.zone("zcap", &s, "10.213.3.1/24", "set maxbw=10M;");
    h.zone("zfree", &s, "10.213.3.2/24", "");
    h.ok("zoneadm", &["-z", "zcap", "boot"]);
    h.ok("zoneadm", &["-z", "zfree", "boot"]);
    let host = host_link_name("zcap", "net0");
    let ifb = ifb_name(&host);
    assert!(host_link_exists(&ifb));
    // 6 MiB each way: about 5 s at 10 Mbit/s.
    let bytes = 6 * 1024 * 1024;
    let from_zone = transfer_mbit(&h, "zcap", "zfree", "10.213.3.2", bytes);
    let to_zone = transfer_mbit(&h, "zfree", "zcap", "10.213.3.1", bytes);
    eprintln!("maxbw=10M: from the zone {from_zone:.2} Mbit/s, to the zone {to_zone:.2} Mbit/s");
    for (dir, r) in [("from", from_zone), ("to", to_zone)] {
        assert!(
            (8.5..=11.5).contains(&r),
            "{dir} the zone: {r:.2} Mbit/s, expected 10 Mbit/s +-15%"
        );
    }
    h.ok("zoneadm", &["-z", "zcap", "halt"]);
    h.ok("zoneadm", &["-z", "zfree", "halt"]);
    assert!(!host_link_exists(&ifb));
    assert!(!host_link_exists(&host));
    h.ok("dladm", &["delete-etherstub", &s]);
}

#[test]
fn link_protection_drops_and_counts_spoofed_packets() {
    if !require_root() {
        return;
    }
    let h = Host::new("spoof");
    let s = h.link("s");
    h.ok("dladm", &["create-etherstub", &s]);
    h.zone(
        "zp",
        &s,
        "10.213.4.1/24",
        // With a cap too: shaping (an ifb redirect) must not bypass the protection.
        "set link-protection=mac-nospoof,ip-nospoof,restricted; set maxbw=100M;",
    );
    h.zone("zu", &s, "10.213.4.2/24", "");
    h.zone("zr", &s, "10.213.4.3/24", "");
    for z in ["zp", "zu", "zr"] {
        h.ok("zoneadm", &["-z", z, "boot"]);
    }
    let host = host_link_name("zp", "net0");
    assert!(nft_table(&host).is_some());
    assert!(nft_table(&host_link_name("zu", "net0")).is_none());
    h.ok("zlogin", &["zp", "ping -c 1 -w 10 10.213.4.3"]);
    h.ok("zlogin", &["zu", "ping -c 1 -w 10 10.213.4.3"]);
    assert_eq!(drops(&host, "ip-nospoof"), 0);
    assert_eq!(drops(&host, "mac-nospoof"), 0);

    // A new IP: ARP and IP from it are dropped and counted.
    h.ok(
        "zlogin",
        &[
            "zp",
            "ip addr del 10.213.4.1/24 dev net0 && ip addr add 10.213.4.11/24 dev net0",
        ],
    );
    let out = h.cmd("zlogin", &["zp", "ping -c 2 -w 3 10.213.4.3"]);
    assert!(!out.status.success(), "a spoofed IP got through");
    assert!(drops(&host, "ip-nospoof") > 0);
    // Back to its own IP, then a new MAC: dropped and counted.
    h.ok(
        "zlogin",
        &[
            "zp",
            "ip addr del 10.213.4.11/24 dev net0 && ip addr add 10.213.4.1/24 dev net0",
        ],
    );
    h.ok("zlogin", &["zp", "ping -c 1 -w 10 10.213.4.3"]);
    h.ok(
        "zlogin",
        &["zp", "ip link set dev net0 address 02:08:20:0d:04:99"],
    );
    let out = h.cmd("zlogin", &["zp", "ping -c 2 -w 3 10.213.4.3"]);
    assert!(!out.status.success(), "a spoofed MAC got through");
    assert!(drops(&host, "mac-nospoof") > 0);

    // The unprotected zone does the same and still gets through.
    h.ok(
        "zlogin",
        &[
            "zu",
            "ip addr del 10.213.4.2/24 dev net0 && ip addr add 10.213.4.12/24 dev net0 && \
             ip link set dev net0 address 02:08:20:0d:04:98",
        ],
    );
    h.ok("zlogin", &["zu", "ping -c 1 -w 10 10.213.4.3"]);

    for z in ["zp", "zu", "zr"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
    }
    assert!(nft_table(&host).is_none(), "the table outlived the zone");
    h.ok("dladm", &["delete-etherstub", &s]);
}

#[test]
fn net_resource_lends_a_dladm_vnic_and_name_files_are_written() {
    if !require_root() {
        return;
    }
    let h = Host::new("lend");
    let (s, v) = h.stub_and_vnic(&[
        "-m",
        "2:8:20:d:5:1",
        "-p",
        "maxbw=20M,protection=mac-nospoof",
    ]);
    h.zone("zpeer", &s, "10.213.5.2/24", "");
    h.made.borrow_mut().push("zn".into());
    h.ok(
        "zonecfg",
        &[
            "-z",
            "zn",
            &format!(
                "create; set zonepath=/zones/zn; set max-processes=100; \
                 set hostname=web1.example.com; set resolvers=10.213.5.53,fd00::53; \
                 add net; set physical={v}; set allowed-address=10.213.5.1/24; \
                 set defrouter=10.213.5.2; end"
            ),
        ],
    );
    h.ok(
        "zoneadm",
        &["-z", "zn", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "zpeer", "boot"]);
    h.ok("zoneadm", &["-z", "zn", "boot"]);
    // The VNIC left the host for the zone, with its MAC; the address and route are set.
    assert!(!host_link_exists(&v));
    assert_eq!(
        h.ok(
            "zlogin",
            &["zn", &format!("cat /sys/class/net/{v}/address")]
        ),
        "02:08:20:0d:05:01\n"
    );
    let addrs = h.ok("zlogin", &["zn", &format!("ip -4 addr show dev {v}")]);
    assert!(addrs.contains("inet 10.213.5.1/24"), "{addrs}");
    let routes = h.ok("zlogin", &["zn", "ip route"]);
    assert!(routes.contains("default via 10.213.5.2"), "{routes}");
    h.ok("zlogin", &["zn", "ping -c 2 -w 10 10.213.5.2"]);
    let link = h.ok(
        "dladm",
        &["show-link", "-p", "-o", "link,class,state,over", &v],
    );
    assert_eq!(link, format!("{v}:vnic:in-zone:{s}\n"));
    // dladm as illumos shows it: a VNIC lent to a zone names the zone (and is not
    // "missing"); a zone's anets are listed as ZONE/LINK with their zone.
    assert_eq!(
        h.ok(
            "dladm",
            &["show-vnic", "-p", "-o", "link,over,vid,zone,state", &v]
        ),
        format!("{v}:{s}:0:zn:in-zone\n")
    );
    assert_eq!(
        h.ok(
            "dladm",
            &[
                "show-vnic",
                "-p",
                "-o",
                "link,over,macaddrtype,zone",
                "zpeer/net0"
            ]
        ),
        format!("zpeer/net0:{s}:random:zpeer\n")
    );
    let table = h.ok("dladm", &["show-vnic"]);
    let head: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        [
            "LINK",
            "OVER",
            "SPEED",
            "MACADDRESS",
            "MACADDRTYPE",
            "VID",
            "ZONE"
        ],
        "{table}"
    );
    // Plain `dladm` is show-link, anets included.
    let plain = h.ok("dladm", &[]);
    assert!(
        plain.starts_with("LINK") && plain.contains("CLASS"),
        "{plain}"
    );
    assert!(
        plain
            .lines()
            .any(|l| l.split_whitespace().next() == Some("zpeer/net0")),
        "{plain}"
    );
    // show-linkprop takes any link, with its mtu.
    assert_eq!(
        h.ok(
            "dladm",
            &["show-linkprop", "-c", "-o", "property,perm,value", &s]
        ),
        "mtu:r-:1500\n"
    );
    assert_eq!(
        h.ok(
            "dladm",
            &[
                "show-linkprop",
                "-c",
                "-o",
                "link,value",
                "-p",
                "mtu",
                "zpeer/net0"
            ]
        ),
        "zpeer/net0:1500\n"
    );
    let err = h.fails("dladm", &["show-linkprop", "-p", "maxbw", &s]);
    assert!(err.contains("only VNICs take them"), "{err}");
    // An anet without linkname is net0 (Solaris 11's default).
    h.made.borrow_mut().push("zd".into());
    h.ok(
        "zonecfg",
        &[
            "-z",
            "zd",
            &format!(
                "create; set zonepath=/zones/zd; set max-processes=100; \
                 add anet; set lower-link={s}; set allowed-address=10.213.5.3/24; end"
            ),
        ],
    );
    let info = h.ok("zonecfg", &["-z", "zd", "info", "anet"]);
    assert!(info.lines().any(|l| l.trim() == "linkname: net0"), "{info}");
    h.ok(
        "zoneadm",
        &["-z", "zd", "install", "-d", h.image.to_str().unwrap()],
    );
    h.ok("zoneadm", &["-z", "zd", "boot"]);
    h.ok("zlogin", &["zd", "ping -c 2 -w 10 10.213.5.2"]);
    assert_eq!(
        h.ok("dladm", &["show-vnic", "-p", "-o", "link,zone", "zd/net0"]),
        "zd/net0:zd\n"
    );
    h.ok("zoneadm", &["-z", "zd", "halt"]);
    // A VNIC in use by a zone stays.
    let err = h.fails("dladm", &["delete-vnic", &v]);
    assert!(err.contains("in use by a running zone"), "{err}");

    // Host name (UTS and files) and resolvers, written before init ran.
    assert_eq!(h.ok("zlogin", &["zn", "hostname"]), "web1.example.com\n");
    assert_eq!(
        h.ok("zlogin", &["zn", "cat /etc/hostname"]),
        "web1.example.com\n"
    );
    let hosts = h.ok("zlogin", &["zn", "cat /etc/hosts"]);
    assert!(
        hosts.contains("10.213.5.1\tweb1.example.com web1\n"),
        "{hosts}"
    );
    assert_eq!(
        h.ok("zlogin", &["zn", "cat /etc/resolv.conf"]),
        "nameserver 10.213.5.53\nnameserver fd00::53\n"
    );
    // Without hostname set, the zone name.
    assert_eq!(h.ok("zlogin", &["zpeer", "hostname"]), "zpeer\n");

    // The VNIC's mac-nospoof holds in the zone: a new MAC is dropped and counted.
    let port = datalinks::vnic_port_name(&v);
    assert_eq!(drops(&port, "mac-nospoof"), 0);
    h.ok(
        "zlogin",
        &[
            "zn",
            &format!("ip link set dev {v} address 02:08:20:0d:05:99"),
        ],
    );
    let out = h.cmd("zlogin", &["zn", "ping -c 2 -w 3 10.213.5.2"]);
    assert!(!out.status.success(), "a spoofed MAC got through");
    assert!(drops(&port, "mac-nospoof") > 0);

    // At halt the VNIC comes back to the host, up, with its properties still enforced.
    h.ok("zoneadm", &["-z", "zn", "halt"]);
    let mut nl = Netlink::open().unwrap();
    let back = nl.require(&v).unwrap();
    assert!(back.up);
    assert_eq!(back.mac.as_deref(), Some("02:08:20:0d:05:01"));
    assert!(nft_table(&port).is_some());
    // And it can be lent again; renamed in the zone, it still comes back under its name.
    h.ok("zoneadm", &["-z", "zn", "boot"]);
    assert!(!host_link_exists(&v));
    h.ok(
        "zlogin",
        &[
            "zn",
            &format!("ip link set dev {v} down && ip link set dev {v} name eth9"),
        ],
    );
    h.ok("zoneadm", &["-z", "zn", "halt"]);
    assert!(Netlink::open().unwrap().require(&v).unwrap().up);
    assert!(!host_link_exists("eth9"));
    h.ok("zoneadm", &["-z", "zpeer", "halt"]);
    assert!(host_link_exists(&v));
    h.ok("dladm", &["delete-vnic", &v]);
    assert!(nft_table(&port).is_none());
    assert!(!host_link_exists(&datalinks::vnic_ifb_name(&v)));
    h.ok("dladm", &["delete-etherstub", &s]);
}

#[test]
fn dladm_link_properties_and_bad_input() {
    if !require_root() {
        return;
    }
    let h = Host::new("props");
    let (s, v) = h.stub_and_vnic(&[
        "-m",
        "2:8:20:d:6:1",
        "-p",
        "maxbw=10M,priority=high,protection=mac-nospoof,ip-nospoof,allowed-ips=10.213.6.1",
    ]);
    let port = datalinks::vnic_port_name(&v);
    let ifb = datalinks::vnic_ifb_name(&v);
    assert!(host_link_exists(&ifb));
    assert!(nft_table(&port).is_some());
    assert_eq!(
        h.ok(
            "dladm",
            &["show-linkprop", "-c", "-o", "property,value", &v]
        ),
        "mtu:1500\nmaxbw:10M\npriority:high\nprotection:mac-nospoof,ip-nospoof\nallowed-ips:10.213.6.1\n"
    );
    // dladm up repairs the enforcement of a VNIC that is present.
    Netlink::open().unwrap().delete_link(&ifb).unwrap();
    h.ok("dladm", &["up"]);
    assert!(host_link_exists(&ifb));
    h.ok("dladm", &["set-linkprop", "-p", "maxbw=1G", &v]);
    assert_eq!(
        h.ok(
            "dladm",
            &["show-linkprop", "-c", "-o", "value", "-p", "maxbw", &v]
        ),
        "1G\n"
    );
    // A bad value changes nothing.
    let err = h.fails("dladm", &["set-linkprop", "-p", "maxbw=10x", &v]);
    assert!(err.contains("maxbw \"10x\""), "{err}");
    let err = h.fails("dladm", &["set-linkprop", "-p", "colour=red", &v]);
    assert!(err.contains("unknown link property 'colour'"), "{err}");
    // mtu: on the VNIC and its bridge port; reset puts 1500 back.
    h.ok("dladm", &["set-linkprop", "-p", "mtu=1400", &v]);
    let mtu = |l: &str| Netlink::open().unwrap().require(l).unwrap().mtu;
    assert_eq!((mtu(&v), mtu(&port)), (1400, 1400));
    assert_eq!(
        h.ok(
            "dladm",
            &[
                "show-linkprop",
                "-c",
                "-o",
                "perm,value,possible",
                "-p",
                "mtu",
                &v
            ]
        ),
        "rw:1400:68-9000\n"
    );
    let err = h.fails("dladm", &["set-linkprop", "-p", "mtu=10", &v]);
    assert!(err.contains("link property mtu \"10\""), "{err}");
    h.ok("dladm", &["reset-linkprop", "-p", "mtu", &v]);
    assert_eq!((mtu(&v), mtu(&port)), (1500, 1500));
    h.ok("dladm", &["reset-linkprop", &v]);
    assert!(!host_link_exists(&ifb));
    assert!(nft_table(&port).is_none());
    assert_eq!(
        h.ok(
            "dladm",
            &[
                "show-linkprop",
                "-c",
                "-o",
                "value",
                "-p",
                "maxbw,priority",
                &v
            ]
        ),
        "--\nmedium\n"
    );
    assert_eq!(
        h.ok("dladm", &["show-link", "-p", "-o", "link,class,over", &v]),
        format!("{v}:vnic:{s}\n")
    );
    assert_eq!(
        h.ok("dladm", &["show-link", "-p", "-o", "class,state", &s]),
        "etherstub:up\n"
    );

    // Bad input: clear errors, nothing made.
    let w = h.link("w");
    let missing = h.link("nope");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["create-vnic", "-l", &missing, &w],
            format!("link '{missing}' does not exist"),
        ),
        (
            vec!["create-vnic", "-l", &s, "-m", "2:8:20:d:6:1", &w],
            format!("MAC address 02:08:20:0d:06:01 is already used by link '{v}'"),
        ),
        (
            vec!["create-vnic", "-l", &s, "-p", "maxbw=10q", &w],
            "maxbw \"10q\": expected a bandwidth like 10M".into(),
        ),
        (
            vec!["create-vnic", "-l", &s, "-p", "protection=ip-nospoof", &w],
            "ip-nospoof needs the allowed addresses".into(),
        ),
        (
            vec!["create-vnic", "-l", &s, "a-name-far-too-long"],
            "'a-name-far-too-long': longer than 15 bytes".into(),
        ),
    ];
    for (args, want) in &cases {
        let err = h.fails("dladm", args);
        assert!(err.contains(want.as_str()), "{args:?}: {err}");
    }
    // A VLAN id over a link that is not an etherstub.
    let err = h.fails("dladm", &["create-vnic", "-l", "lo", "-v", "5", &w]);
    assert!(
        err.contains("VLAN 5 on 'lo': VLAN ids need an etherstub"),
        "{err}"
    );
    // Without bridge VLAN filtering in the kernel, the refusal names what is missing.
    if !vlan_supported(&h) {
        let err = h.fails("dladm", &["create-vnic", "-l", &s, "-v", "5", &w]);
        assert!(err.contains("no bridge VLAN filtering"), "{err}");
    }
    // Nothing of the refused VNICs: no link, no ifb, no table, no record.
    assert!(!host_link_exists(&w));
    let wport = datalinks::vnic_port_name(&w);
    assert!(!host_link_exists(&wport));
    assert!(!host_link_exists(&datalinks::vnic_ifb_name(&w)));
    assert!(nft_table(&wport).is_none());
    assert_eq!(
        h.ok("dladm", &["show-vnic", "-p", "-o", "link"]),
        format!("{v}\n")
    );
    let left: Vec<String> = Netlink::open()
        .unwrap()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with("zq"))
        .collect();
    assert!(left.is_empty(), "VLAN probe left {left:?}");
    h.ok("dladm", &["delete-vnic", &v]);
    h.ok("dladm", &["delete-etherstub", &s]);
}

/// Whether this kernel has bridge VLAN filtering, found the way dladm and zoneadm find it
/// (turning filtering on, here on a probe bridge named for this test).
fn vlan_supported(h: &Host) -> bool {
    Netlink::open()
        .unwrap()
        .probe_vlan_filtering(&h.link("q"))
        .unwrap()
}

#[test]
fn vlan_ids_separate_zones_on_one_etherstub() {
    if !require_root() {
        return;
    }
    let h = Host::new("vlan");
    let s = h.link("s");
    let v = h.link("v");
    h.ok("dladm", &["create-etherstub", &s]);
    h.zone("va", &s, "10.213.4.1/24", "set vlan-id=10;");
    h.zone("vb", &s, "10.213.4.2/24", "set vlan-id=10;");
    h.zone("vc", &s, "10.213.4.3/24", "set vlan-id=20;");
    if !vlan_supported(&h) {
        // This host: a clear error, and nothing made.
        let err = h.fails("zoneadm", &["-z", "va", "boot"]);
        assert!(
            err.contains(&format!(
                "anet net0 vlan-id 10: VLAN 10 on '{s}': this kernel has no bridge VLAN filtering"
            )),
            "{err}"
        );
        assert_eq!(h.state("va"), "installed");
        assert!(!host_link_exists(&host_link_name("va", "net0")));
        assert!(!h.netns_file("va").exists());
        let err = h.fails("dladm", &["create-vnic", "-l", &s, "-v", "10", &v]);
        assert!(err.contains("no bridge VLAN filtering"), "{err}");
        assert!(!host_link_exists(&v));
        assert!(!host_link_exists(&datalinks::vnic_port_name(&v)));
        h.ok("dladm", &["delete-etherstub", &s]);
        return;
    }
    for z in ["va", "vb", "vc"] {
        h.ok("zoneadm", &["-z", z, "boot"]);
    }
    // Same VLAN: reachable both ways (plain frames inside the zones).
    h.ok("zlogin", &["va", "ping -c 2 -w 10 10.213.4.2"]);
    h.ok("zlogin", &["vb", "ping -c 2 -w 10 10.213.4.1"]);
    // Another VLAN on the same etherstub: not reachable.
    let out = h.cmd("zlogin", &["vc", "ping -c 2 -w 3 10.213.4.1"]);
    assert!(!out.status.success(), "vc (VLAN 20) reached va (VLAN 10)");
    let out = h.cmd("zlogin", &["va", "ping -c 2 -w 3 10.213.4.3"]);
    assert!(!out.status.success(), "va (VLAN 10) reached vc (VLAN 20)");

    // A dladm VNIC in a VLAN: its bridge port is in that VLAN only.
    h.ok("dladm", &["create-vnic", "-l", &s, "-v", "10", &v]);
    let out = Command::new("bridge")
        .args(["-j", "vlan", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "bridge -j vlan show: {out:?}");
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    let ports: serde_json::Value = serde_json::from_str(&shown).unwrap();
    let port = datalinks::vnic_port_name(&v);
    let vlans = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ifname"] == port.as_str())
        .unwrap_or_else(|| panic!("{port} not in {shown}"))["vlans"]
        .clone();
    assert_eq!(vlans.as_array().unwrap().len(), 1, "{vlans}");
    assert_eq!(vlans[0]["vlan"], 10, "{vlans}");
    h.ok("dladm", &["delete-vnic", &v]);

    for z in ["va", "vb", "vc"] {
        h.ok("zoneadm", &["-z", z, "halt"]);
        assert!(!host_link_exists(&host_link_name(z, "net0")), "{z}");
    }
    h.ok("dladm", &["delete-etherstub", &s]);
    assert!(!host_link_exists(&s));
}
