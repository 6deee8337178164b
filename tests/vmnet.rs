//! A kvm zone's network, set up by `network::setup` as zoneadmd does at boot, without a VM:
//! a process of the zone's qemu user attached to the zone's tap (as qemu does) reaches an
//! address in another namespace on the zone's etherstub, through the host end's
//! anti-spoofing, with the anet's MAC and only with it; teardown leaves nothing on the host.
//!
//! Everything is named after the test process (`rzt<pid>...` links, zone `vmnet<pid>`, the
//! alternate root `/tmp/runz-test-vmnet-<pid>`) and removed on drop, even when a check fails.

#[path = "../net/tests/support/vmside.rs"]
mod vmside;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vmside::{read_sysfs_in, vm_child, Arp, NO_REPLY, REFUSED, REPLIED};
use zones::model::{Anet, Brand, Zone};
use zones::store::Store;
use zones_linux::zone::network::{self, host_link_name};
use zones_linux::zone::vmnet::vm_owner;
use zones_linux::zone::ZonePaths;
use zones_net::names::parse_mac;
use zones_net::netns::{self, NetnsGuard};
use zones_net::{nft, Netlink};

/// The alternate root, the etherstub and the peer namespace of one test; removed on drop.
struct Fixture {
    root: PathBuf,
    store: Store,
    paths: ZonePaths,
    zone: String,
    stub: String,
    port: String,
    peer: Option<NetnsGuard>,
}

impl Fixture {
    /// `tag` (one letter) tells the tests of one process apart.
    fn new(tag: &str) -> Fixture {
        let pid = std::process::id();
        let root = PathBuf::from(format!("/tmp/runz-test-vmnet-{pid}-{tag}"));
        std::fs::create_dir_all(&root).unwrap();
        let store = Store::open(Some(&root)).unwrap();
        let zone = format!("vmnet{pid}{tag}");
        let paths = ZonePaths::new(&store, &zone);
        std::fs::create_dir_all(&paths.run).unwrap();
        let link = |s: &str| {
            let mut n = format!("rzt{pid}{tag}{s}");
            n.truncate(15);
            n
        };
        let f = Fixture {
            peer: None,
            stub: link("s"),
            port: link("p"),
            root,
            store,
            paths,
            zone,
        };
        let mut host = Netlink::open().unwrap();
        host.create_bridge(&f.stub).unwrap();
        host.set_up(&f.stub, true).unwrap();
        f
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        network::teardown(&self.paths);
        let host_end = host_link_name(&self.zone, "net0");
        let _ = nft::unprotect(&host_end);
        if let Ok(mut nl) = Netlink::open() {
            for l in [&host_end, &self.port, &self.stub] {
                let _ = nl.delete_if_exists(l);
            }
        }
        self.peer = None;
        let _ = netns::remove(&network::netns_file(&self.paths));
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn host_has(name: &str) -> bool {
    Netlink::open().unwrap().link(name).unwrap().is_some()
}

/// A stand-in for a zone's created init: a process in a new user namespace (ids mapped from
/// `id_base`) and a new network namespace, owned by it; killed on drop.
struct Init(nix::unistd::Pid);

impl Init {
    fn new(id_base: u32) -> Init {
        let own = std::fs::read_link("/proc/self/ns/user").unwrap();
        // SAFETY: the child makes raw system calls only, and never returns.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: unshare and pause (a single-threaded child); _exit when unshare fails.
                unsafe {
                    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                        libc::_exit(1);
                    }
                    loop {
                        libc::pause();
                    }
                }
            }
            nix::unistd::ForkResult::Parent { child } => Init(child),
        };
        let ns = format!("/proc/{}/ns/user", pid.0);
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&ns).ok().as_ref() == Some(&own) {
            assert!(
                Instant::now() < until,
                "the init stand-in made no user namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for map in ["uid_map", "gid_map"] {
            std::fs::write(
                format!("/proc/{}/{map}", pid.0),
                format!("0 {id_base} 65536\n"),
            )
            .unwrap();
        }
        pid
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.0, None);
    }
}

/// Without a user namespace: the host makes the zone's network namespace (`network::setup`).
#[test]
fn a_kvm_zones_tap_reaches_the_etherstub_with_the_anets_mac_only() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    check_kvm_network(None);
}

/// With one (the default): the namespace is the zone init's, owned by the zone's user
/// namespace (`network::setup_in` with the created init).
#[test]
fn a_kvm_zones_tap_in_a_user_namespaced_zone() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let init = Init::new(2_000_000);
    check_kvm_network(Some(init.0));
}

/// A kvm zone with one anet `net0` on the fixture's etherstub, the VM's MAC `vm_mac`.
fn kvm_zone(f: &Fixture, vm_mac: [u8; 6]) -> Zone {
    let mut zone = Zone::new(&f.zone);
    zone.brand = Brand::Kvm;
    zone.anet = vec![Anet {
        linkname: Some("net0".into()),
        lower_link: Some(f.stub.clone()),
        mac_address: Some(zones_net::names::format_mac(&vm_mac)),
        allowed_address: Some("10.213.78.2/24".into()),
        link_protection: Some("mac-nospoof,ip-nospoof".into()),
        ..Default::default()
    }];
    zone
}

fn check_kvm_network(init: Option<nix::unistd::Pid>) {
    let mut f = Fixture::new(if init.is_some() { "u" } else { "h" });
    let pid = std::process::id();
    let vm_mac = [0x02, 0x08, 0x20, 0x7b, (pid >> 8) as u8, pid as u8];
    let arp = Arp {
        mac: vm_mac,
        ip: [10, 213, 78, 2],
        peer: [10, 213, 78, 1],
    };
    let zone = kvm_zone(&f, vm_mac);
    let nics = network::vm_nics(&zone);
    assert_eq!(nics.len(), 1);
    let id_base = 2_000_000;
    let owner = vm_owner(id_base);
    assert_eq!(owner, (2_000_100, 2_000_100));

    let file = network::setup_in(&f.store, &zone, &f.paths, init, id_base)
        .unwrap()
        .expect("a namespace file");
    let nsfd = netns::open(&file).unwrap();
    let mut inside = netns::netlink_in(nsfd.as_fd(), &file).unwrap();

    // In the zone: net0 and the tap are ports of vmbr0; nothing has an address; the zone end's
    // MAC is not the VM's.
    let br = inside.require("vmbr0").unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    let net0 = inside.require("net0").unwrap();
    let tap = inside.require("vmtap0").unwrap();
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    assert_eq!((net0.master, tap.master), (Some(br.index), Some(br.index)));
    assert_eq!(net0.mac.as_deref(), Some(nics[0].port_mac.as_str()));
    assert_ne!(parse_mac(&nics[0].port_mac).unwrap(), vm_mac);
    for l in [&net0, &tap, &br] {
        assert!(l.up, "{} is down", l.name);
        let a = inside.addresses(Some(l.index)).unwrap();
        assert!(a.is_empty(), "{} has addresses {a:?}", l.name);
    }
    let sys = |x: &str| read_sysfs_in(&nsfd, &format!("/sys/class/net/vmtap0/{x}"));
    assert_eq!(sys("owner"), owner.0.to_string());
    assert_eq!(sys("group"), owner.1.to_string());
    // On the host: the anet's host end on the etherstub, and no VM device.
    let mut host = Netlink::open().unwrap();
    let stub = host.require(&f.stub).unwrap();
    let host_end = host.require(&host_link_name(&f.zone, "net0")).unwrap();
    assert_eq!(host_end.master, Some(stub.index));
    assert!(!host_has("vmtap0") && !host_has("vmbr0"));

    // A "native zone" on the same etherstub: a namespace with the address the VM asks for.
    let peer = NetnsGuard::create(&f.root.join("peer")).unwrap();
    let pfd = peer.open().unwrap();
    host.create_veth(&f.port, "eth0", Some(pfd.as_fd()), None)
        .unwrap();
    host.set_master(&f.port, Some(&f.stub)).unwrap();
    host.set_up(&f.port, true).unwrap();
    let mut p = peer.netlink().unwrap();
    p.add_address("eth0", arp.peer.into(), 24).unwrap();
    p.set_up("eth0", true).unwrap();
    f.peer = Some(peer);

    // The qemu user attaches and is answered; another user may not attach; a frame with
    // another MAC is dropped on the host end (mac-nospoof).
    assert_eq!(vm_child(&nsfd, "vmtap0", owner, Some(arp), 25), REPLIED);
    let stranger = (owner.0 + 1, owner.1 + 1);
    assert_eq!(vm_child(&nsfd, "vmtap0", stranger, None, 0), REFUSED);
    let mut other_mac = vm_mac;
    other_mac[5] ^= 0x55;
    let spoof = Arp {
        mac: other_mac,
        ..arp
    };
    assert_eq!(vm_child(&nsfd, "vmtap0", owner, Some(spoof), 5), NO_REPLY);
    assert_eq!(vm_child(&nsfd, "vmtap0", owner, Some(arp), 25), REPLIED);

    // Teardown: the host end, the protection and the namespace go; its devices with it.
    drop(inside);
    drop(nsfd);
    network::teardown(&f.paths);
    assert!(!host_has(&host_link_name(&f.zone, "net0")));
    assert!(!network::netns_file(&f.paths).exists());
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            !host_has("vmtap0") && !host_has("vmbr0"),
            "a VM device came to the host"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// qemu itself, as the zone's qemu user with no capability, opens the zone's tap with the
/// arguments `vm_nic_qemu_args` gives (its own TUNSETIFF flags, offloads, vnet header): the
/// tap gets its carrier. The machine is never started (`-S`).
#[test]
fn qemu_attaches_to_the_zones_tap_as_the_qemu_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let qemu = "/usr/bin/qemu-system-x86_64";
    if !std::path::Path::new(qemu).exists() {
        eprintln!("skipping: no {qemu}");
        return;
    }
    let f = Fixture::new("q");
    let zone = kvm_zone(&f, [0x02, 0x08, 0x20, 0x7c, 0, 1]);
    let id_base = 2_100_000;
    let (uid, gid) = vm_owner(id_base);
    let file = network::setup(&f.store, &zone, &f.paths, id_base)
        .unwrap()
        .expect("a namespace file");
    let nsfd = netns::open(&file).unwrap();
    let carrier = || read_sysfs_in(&nsfd, "/sys/class/net/vmtap0/carrier");
    assert_eq!(carrier(), "0", "no carrier before qemu attaches");

    let mut cmd = std::process::Command::new(qemu);
    cmd.args([
        "-machine",
        "q35",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-m",
        "64",
        "-S",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
    ]);
    cmd.args(network::vm_nic_qemu_args(&network::vm_nics(&zone)));
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let ns = std::os::fd::AsRawFd::as_raw_fd(&nsfd);
    // SAFETY: between fork and exec only raw system calls: enter the zone's namespace, drop
    // to the qemu user (every capability goes with uid 0).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::setns(ns, libc::CLONE_NEWNET) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut qemu = Killed(cmd.spawn().unwrap());
    let child = &mut qemu.0;
    let until = Instant::now() + Duration::from_secs(30);
    let result = loop {
        if carrier() == "1" {
            break Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            break Err(format!("qemu ended ({status}): {err}"));
        }
        if Instant::now() > until {
            break Err("no carrier on vmtap0 after 30 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(qemu);
    result.unwrap();
}

/// A child process killed (and reaped) on drop, even when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
