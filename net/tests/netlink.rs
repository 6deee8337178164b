//! Links, addresses and routes for real, only inside network namespaces the test creates
//! (files under /run/runz-test-net-<pid>-N, removed on drop): a "switch" namespace holding a
//! bridge, and two "zone" namespaces joined to it by veth pairs. The host's own links are
//! never touched.

use std::net::{IpAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use zones_net::netns::NetnsGuard;
use zones_net::NetError;

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A directory for one test's namespace files; removed (after its namespaces) on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let d = PathBuf::from(format!("/run/runz-test-net-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn ns(&self, name: &str) -> NetnsGuard {
        NetnsGuard::create(&self.0.join(name)).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Run `f` in a forked child inside namespace `ns`; its exit code is returned.
fn in_ns(ns: &NetnsGuard, f: impl FnOnce() -> i32) -> nix::unistd::Pid {
    let fd = ns.open().unwrap();
    // SAFETY: the child enters the namespace, runs `f` and leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: setns on a namespace fd we own; _exit skips the parent's destructors.
            unsafe {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    libc::_exit(90);
                }
                libc::_exit(f())
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

fn exit_code(pid: nix::unistd::Pid) -> i32 {
    match waitpid(pid, None).unwrap() {
        WaitStatus::Exited(_, c) => c,
        s => panic!("child: {s:?}"),
    }
}

#[test]
fn bridge_veth_addresses_routes_and_a_packet_across() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let sw = dir.ns("sw");
    let a = dir.ns("a");
    let b = dir.ns("b");
    let mut nsw = sw.netlink().unwrap();
    nsw.create_bridge("stub0").unwrap();
    nsw.set_up("stub0", true).unwrap();
    for (host, zone, mac) in [
        ("va", &a, [2, 8, 0x20, 0, 0, 1]),
        ("vb", &b, [2, 8, 0x20, 0, 0, 2]),
    ] {
        let zfd = zone.open().unwrap();
        nsw.create_veth(host, "net0", Some(zfd.as_fd()), Some(mac))
            .unwrap();
        nsw.set_master(host, Some("stub0")).unwrap();
        nsw.set_up(host, true).unwrap();
    }
    let bridge = nsw.require("stub0").unwrap();
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    let va = nsw.require("va").unwrap();
    assert_eq!(va.master, Some(bridge.index));
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert!(nsw.link("net0").unwrap().is_none(), "peer went to the zone");

    let mut na = a.netlink().unwrap();
    let mut nb = b.netlink().unwrap();
    for (nl, ip) in [(&mut na, "10.213.0.1"), (&mut nb, "10.213.0.2")] {
        nl.set_up("lo", true).unwrap();
        nl.set_mtu("net0", 1400).unwrap();
        nl.set_up("net0", true).unwrap();
        nl.add_address("net0", ip.parse().unwrap(), 24).unwrap();
    }
    nb.add_default_route("10.213.0.1".parse().unwrap()).unwrap();
    let net0 = na.require("net0").unwrap();
    assert_eq!(net0.mac.as_deref(), Some("02:08:20:00:00:01"));
    assert_eq!(net0.mtu, 1400);
    assert!(net0.up);
    let addrs: Vec<_> = na
        .addresses(Some(net0.index))
        .unwrap()
        .into_iter()
        .filter(|a| a.addr.is_ipv4())
        .collect();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(addrs[0].addr, "10.213.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(addrs[0].prefix_len, 24);
    // A second time: the kernel's refusal names the address.
    let e = na
        .add_address("net0", "10.213.0.1".parse().unwrap(), 24)
        .unwrap_err();
    assert!(e.to_string().contains("10.213.0.1/24 on net0"), "{e}");

    // A datagram from a to b across the bridge (bounded: 5 s receive timeout, 20 sends).
    let rx = in_ns(&b, || {
        let s = UdpSocket::bind("10.213.0.2:9999").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        match s.recv_from(&mut buf) {
            Ok((n, from)) if &buf[..n] == b"hello" && from.ip().to_string() == "10.213.0.1" => 0,
            _ => 1,
        }
    });
    let tx = in_ns(&a, || {
        let s = UdpSocket::bind("10.213.0.1:0").unwrap();
        for _ in 0..20 {
            let _ = s.send_to(b"hello", "10.213.0.2:9999");
            std::thread::sleep(Duration::from_millis(100));
        }
        0
    });
    assert_eq!(exit_code(rx), 0, "b received a's datagram");
    assert_eq!(exit_code(tx), 0);
}

#[test]
fn macvlan_move_rename_mac_and_delete() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let sw = dir.ns("sw");
    let z = dir.ns("z");
    let mut nsw = sw.netlink().unwrap();
    // No dummy on this kernel: a veth end is the lower link.
    nsw.create_veth("low0", "low0p", None, None).unwrap();
    nsw.set_up("low0", true).unwrap();
    nsw.create_macvlan("mv0", "low0", Some([2, 0, 0, 0, 0, 9]))
        .unwrap();
    let mv = nsw.require("mv0").unwrap();
    assert_eq!(mv.kind.as_deref(), Some("macvlan"));
    assert_eq!(mv.lower, Some(nsw.require("low0").unwrap().index));
    assert_eq!(mv.mac.as_deref(), Some("02:00:00:00:00:09"));
    nsw.set_mac("mv0", [2, 0, 0, 0, 0, 10]).unwrap();
    nsw.rename("mv0", "vnic0").unwrap();
    assert!(nsw.link("mv0").unwrap().is_none());
    assert_eq!(
        nsw.require("vnic0").unwrap().mac.as_deref(),
        Some("02:00:00:00:00:0a")
    );
    let zfd = z.open().unwrap();
    nsw.move_to_netns("vnic0", zfd.as_fd()).unwrap();
    assert!(nsw.link("vnic0").unwrap().is_none());
    let mut nz = z.netlink().unwrap();
    assert!(nz.link("vnic0").unwrap().is_some());
    nz.delete_link("vnic0").unwrap();
    assert!(!nz.delete_if_exists("vnic0").unwrap());
    // Deleting one end of a veth pair deletes both.
    nsw.delete_link("low0").unwrap();
    assert!(nsw.link("low0p").unwrap().is_none());
}

#[test]
fn bad_input_names_the_value_and_leaves_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let sw = dir.ns("sw");
    let mut nsw = sw.netlink().unwrap();
    let before = nsw.links().unwrap().len();
    let e = nsw.create_macvlan("mv0", "nosuch0", None).unwrap_err();
    assert!(
        matches!(e, NetError::NoSuchLink(ref n) if n == "nosuch0"),
        "{e}"
    );
    let e = nsw.create_bridge("a-name-far-too-long").unwrap_err();
    assert_eq!(
        e.to_string(),
        "interface name 'a-name-far-too-long': longer than 15 bytes (the kernel's IFNAMSIZ)"
    );
    nsw.create_bridge("stub0").unwrap();
    let e = nsw.create_bridge("stub0").unwrap_err();
    assert_eq!(e.to_string(), "link 'stub0' already exists");
    let e = nsw.set_up("nosuch0", true).unwrap_err();
    assert_eq!(e.to_string(), "link 'nosuch0' does not exist");
    let e = nsw.set_master("stub0", Some("nosuch1")).unwrap_err();
    assert_eq!(e.to_string(), "link 'nosuch1' does not exist");
    nsw.delete_link("stub0").unwrap();
    assert_eq!(nsw.links().unwrap().len(), before, "nothing left");
}

#[test]
fn namespace_files_come_and_go() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let p = dir.0.join("n");
    zones_net::netns::create(&p).unwrap();
    assert!(zones_net::netns::is_netns(&p));
    let e = zones_net::netns::create(&p).unwrap_err();
    assert!(e.to_string().contains("create"), "{e}");
    let mut nl =
        zones_net::netns::netlink_in(zones_net::netns::open(&p).unwrap().as_fd(), &p).unwrap();
    let links = nl.links().unwrap();
    assert_eq!(links.len(), 1, "a new namespace has only lo: {links:?}");
    assert_eq!(links[0].name, "lo");
    zones_net::netns::remove(&p).unwrap();
    assert!(!p.exists());
    zones_net::netns::remove(&p).unwrap();
    let e = zones_net::netns::open(&p).unwrap_err();
    assert!(e.to_string().contains("not a network namespace"), "{e}");
}

#[test]
fn bandwidth_caps_tbf_and_ifb_redirect() {
    if !is_root() {
        return;
    }
    let dir = Dir::new();
    let sw = dir.ns("sw");
    let mut nl = sw.netlink().unwrap();
    nl.create_veth("cap0", "cap0p", None, None).unwrap();
    nl.set_up("cap0", true).unwrap();
    nl.set_egress_cap("cap0", 10_000_000).unwrap();
    nl.set_ingress_cap("cap0", "capifb0", 10_000_000).unwrap();
    let l = nl.require("cap0").unwrap();
    let ifb = nl.require("capifb0").unwrap();
    assert_eq!(ifb.kind.as_deref(), Some("ifb"));
    assert!(ifb.up);
    let q = nl.qdiscs().unwrap();
    let kinds = |i: u32| {
        let mut k: Vec<String> = q
            .iter()
            .filter(|x| x.ifindex == i)
            .map(|x| x.kind.clone())
            .collect();
        k.sort();
        k
    };
    assert_eq!(kinds(l.index), ["ingress", "tbf"]);
    assert_eq!(kinds(ifb.index), ["tbf"]);
    // Applying again replaces rather than failing; clearing removes both qdiscs.
    nl.set_egress_cap("cap0", 20_000_000).unwrap();
    nl.set_ingress_cap("cap0", "capifb0", 20_000_000).unwrap();
    nl.clear_caps("cap0").unwrap();
    let q = nl.qdiscs().unwrap();
    assert!(!q
        .iter()
        .any(|x| x.ifindex == l.index && (x.kind == "tbf" || x.kind == "ingress")));
    // A missing link is named.
    let e = nl.set_egress_cap("nope0", 1_000_000).unwrap_err();
    assert_eq!(e.to_string(), "link 'nope0' does not exist");
}
