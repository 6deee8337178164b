//! Tap devices for VMs, for real, only inside network namespaces the test creates (files
//! under /run/runz-test-tap-<pid>-N, removed on drop, their links with them): a tap made in a
//! namespace belongs to the given user, outlives its maker and goes when removed; and the VM's
//! path without a VM: an unprivileged process attached to the tap exchanges ARP with an
//! address in another namespace across the bridge and a veth pair. The host's own links are
//! never touched; tap names carry the test's pid (`rzt<pid>...`) so a leak would be seen.

#[path = "support/vmside.rs"]
mod vmside;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vmside::{read_sysfs_in, vm_child, Arp, REFUSED, REPLIED};
use zones_net::netns::NetnsGuard;
use zones_net::tap;
use zones_net::{NetError, Netlink};

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A directory for one test's namespace files; removed (after its namespaces) on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let d = PathBuf::from(format!("/run/runz-test-tap-{}-{n}", std::process::id()));
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

/// A tap name unique to this test process: `rzt<pid><tag>`.
fn tap_name(tag: &str) -> String {
    let mut n = format!("rzt{}{tag}", std::process::id());
    n.truncate(15);
    n
}

fn host_has(name: &str) -> bool {
    Netlink::open().unwrap().link(name).unwrap().is_some()
}

#[test]
fn a_tap_belongs_to_its_user_outlives_its_maker_and_goes_when_removed() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let zone = dir.ns("zone");
    let nsfd = zone.open().unwrap();
    let name = tap_name("a");
    let (uid, gid) = (1_234_567, 1_234_568);
    tap::create_tap(nsfd.as_fd(), &zone.path, &name, uid, gid).unwrap();

    // The child that made it has exited: the device persists, in the namespace only.
    let mut inside = zone.netlink().unwrap();
    let link = inside.require(&name).unwrap();
    assert_eq!(link.kind.as_deref(), Some("tun"));
    assert!(!host_has(&name), "the tap must not be on the host");
    let sys = |f: &str| read_sysfs_in(&nsfd, &format!("/sys/class/net/{name}/{f}"));
    assert_eq!(sys("owner"), uid.to_string());
    assert_eq!(sys("group"), gid.to_string());
    let flags = sys("tun_flags");
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        flags & 0x0800,
        0x0800,
        "IFF_PERSIST in tun_flags {flags:#x}"
    );
    assert_eq!(
        flags & 0x1002,
        0x1002,
        "IFF_TAP | IFF_NO_PI in tun_flags {flags:#x}"
    );

    // Making it again is refused (not silently joined).
    match tap::create_tap(nsfd.as_fd(), &zone.path, &name, uid, gid) {
        Err(NetError::LinkExists(n)) => assert_eq!(n, name),
        other => panic!("second create: {other:?}"),
    }

    assert!(tap::remove_tap(nsfd.as_fd(), &zone.path, &name).unwrap());
    assert!(inside.link(&name).unwrap().is_none(), "removed");
    assert!(!tap::remove_tap(nsfd.as_fd(), &zone.path, &name).unwrap());

    // A tap left in a namespace goes with the namespace, and never lands on the host.
    let other = tap_name("b");
    tap::create_tap(nsfd.as_fd(), &zone.path, &other, uid, gid).unwrap();
    drop(inside);
    drop(nsfd);
    drop(zone);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            !host_has(&other),
            "the tap of a removed namespace came to the host"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn frames_flow_between_an_unprivileged_tap_user_and_another_namespace_over_the_bridge() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = Dir::new();
    let zone = dir.ns("zone");
    let peer = dir.ns("peer");
    let (zfd, pfd) = (zone.open().unwrap(), peer.open().unwrap());
    let mut z = zone.netlink().unwrap();
    let mut p = peer.netlink().unwrap();
    let tap = tap_name("t");
    let ids = (1_234_667, 1_234_667);
    let arp = Arp {
        mac: [0x02, 0x08, 0x20, 0x7a, 0x11, 0x01],
        ip: [10, 213, 77, 2],
        peer: [10, 213, 77, 1],
    };

    // The zone: a bridge holding the zone's end of a veth pair and the VM's tap.
    z.create_veth("net0", "peer0", Some(pfd.as_fd()), None)
        .unwrap();
    z.create_bridge("vmbr0").unwrap();
    z.set_master("net0", Some("vmbr0")).unwrap();
    tap::create_tap(zfd.as_fd(), &zone.path, &tap, ids.0, ids.1).unwrap();
    z.set_master(&tap, Some("vmbr0")).unwrap();
    for l in ["net0", &tap, "vmbr0"] {
        z.set_up(l, true).unwrap();
    }
    // The other side: the address the VM asks for.
    p.add_address("peer0", arp.peer.into(), 24).unwrap();
    p.set_up("peer0", true).unwrap();

    // Another user may not take the tap; its owner, without any capability, may.
    let stranger = (ids.0 + 1, ids.1 + 1);
    assert_eq!(
        vm_child(&zfd, &tap, stranger, None, 0),
        REFUSED,
        "a stranger attached"
    );
    assert_eq!(
        vm_child(&zfd, &tap, ids, Some(arp), 25),
        REPLIED,
        "no ARP reply through tap -> bridge -> veth and back (see vmside's exit codes)"
    );
}
