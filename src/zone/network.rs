//! A zone's network: exclusive-IP zones with `anet` resources.
//!
//! At boot (before the zone's init exists) the supervisor makes the zone's network namespace,
//! a file `ALTROOT/run/zones/NAME/netns` (bind-mounted nsfs), and for each `anet` a veth pair:
//! the host end (named `zv` + 10 hex digits of a hash of `zone/linkname`) becomes a port of the
//! etherstub bridge named by `lower-link`; the zone end is created directly inside the
//! namespace under the anet's `linkname` (e.g. `net0`) with its MAC, then `lo` and the link are
//! brought up and `allowed-address` and `defrouter` configured. The engine joins that
//! namespace (SpecOptions.netns).
//!
//! What was made is recorded in `ALTROOT/run/zones/NAME/net.json` first, so teardown (at halt,
//! at a failed boot, or by `zoneadm halt` after the supervisor was killed) deletes exactly
//! that: the host ends (each takes its zone end along) and the namespace file.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zones::model::{Anet, IpType, Zone};
use zones::store::Store;
use zones_net::names::{self, check_ifname, format_mac, parse_mac, parse_prefix};
use zones_net::{netns, NetError, Netlink};

use super::{datalinks, ZonePaths};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("zone '{zone}': {msg}")]
    Config { zone: String, msg: String },
    #[error("zone '{zone}': {source}")]
    Net {
        zone: String,
        #[source]
        source: NetError,
    },
}

type Result<T> = std::result::Result<T, NetworkError>;

fn cfg(zone: &str, msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::Config {
        zone: zone.to_string(),
        msg: msg.to_string(),
    }
}

fn net(zone: &str) -> impl Fn(NetError) -> NetworkError + '_ {
    move |source| NetworkError::Net {
        zone: zone.to_string(),
        source,
    }
}

/// What a boot made, for teardown and for other zones' duplicate-MAC checks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub host_links: Vec<String>,
    pub macs: Vec<String>,
}

impl Record {
    fn load(paths: &ZonePaths) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(record_file(paths)).ok()?).ok()
    }

    fn save(&self, paths: &ZonePaths) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::runtime::state::write_atomic(&record_file(paths), &json)
    }
}

pub fn netns_file(paths: &ZonePaths) -> PathBuf {
    paths.run.join("netns")
}

fn record_file(paths: &ZonePaths) -> PathBuf {
    paths.run.join("net.json")
}

/// The host end of a zone's anet: stable, within IFNAMSIZ, unique per zone and link.
pub fn host_link_name(zone: &str, linkname: &str) -> String {
    let h = names::fnv1a(format!("{zone}/{linkname}").as_bytes());
    format!("zv{:010x}", h & 0xff_ffff_ffff)
}

/// One anet, checked: nothing is created until every anet of the zone passes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    linkname: String,
    host: String,
    stub: String,
    mac: [u8; 6],
    address: Option<(IpAddr, u8)>,
    defrouter: Option<IpAddr>,
    mtu: Option<u32>,
}

fn plan_anet(zone: &str, a: &Anet) -> Result<Plan> {
    let linkname = a
        .linkname
        .clone()
        .ok_or_else(|| cfg(zone, "anet without linkname"))?;
    check_ifname(&linkname).map_err(|e| cfg(zone, format!("anet linkname: {e}")))?;
    let stub = a.lower_link.clone().ok_or_else(|| {
        cfg(
            zone,
            format!("anet {linkname}: lower-link auto is not supported; set lower-link to an etherstub (dladm create-etherstub)"),
        )
    })?;
    check_ifname(&stub).map_err(|e| cfg(zone, format!("anet {linkname} lower-link: {e}")))?;
    if let Some(v) = a.vlan_id.filter(|v| *v != 0) {
        return Err(cfg(
            zone,
            format!("anet {linkname} vlan-id {v}: VLANs need 802.1q or bridge vlan_filtering, which this kernel lacks"),
        ));
    }
    let mac = match a.mac_address.as_deref() {
        None | Some("auto") | Some("factory") => {
            names::mac_from_seed(&format!("{zone}/{linkname}"))
        }
        Some("random") => names::mac_from_seed(&format!(
            "{zone}/{linkname}/{}/{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        )),
        Some(m) => {
            parse_mac(m).map_err(|e| cfg(zone, format!("anet {linkname} mac-address: {e}")))?
        }
    };
    let address = match a.allowed_address.as_deref() {
        None => None,
        Some(s) => Some(
            parse_prefix(s)
                .map_err(|e| cfg(zone, format!("anet {linkname} allowed-address: {e}")))?,
        ),
    };
    let defrouter = match a.defrouter.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
            cfg(
                zone,
                format!("anet {linkname} defrouter '{s}': expected an IP address"),
            )
        })?),
    };
    if defrouter.is_some() && address.is_none() {
        return Err(cfg(
            zone,
            format!("anet {linkname}: defrouter needs an allowed-address"),
        ));
    }
    Ok(Plan {
        host: host_link_name(zone, &linkname),
        linkname,
        stub,
        mac,
        address,
        defrouter,
        mtu: a.mtu,
    })
}

/// Check the zone's network configuration and plan its links.
fn plan(zone: &Zone) -> Result<Vec<Plan>> {
    let name = &zone.zonename;
    if zone.ip_type == IpType::Shared {
        return Err(cfg(
            name,
            "ip-type=shared is not supported (zones have exclusive IP stacks only); set ip-type=exclusive",
        ));
    }
    if let Some(n) = zone.net.first() {
        return Err(cfg(
            name,
            format!(
                "net resource (physical={}): not supported yet; use an anet with lower-link",
                n.physical.as_deref().unwrap_or("?")
            ),
        ));
    }
    let plans = zone
        .anet
        .iter()
        .map(|a| plan_anet(name, a))
        .collect::<Result<Vec<_>>>()?;
    for (i, p) in plans.iter().enumerate() {
        if plans[..i].iter().any(|q| q.linkname == p.linkname) {
            return Err(cfg(
                name,
                format!("anet {}: linkname used twice", p.linkname),
            ));
        }
        if plans[..i].iter().any(|q| q.mac == p.mac) {
            return Err(cfg(
                name,
                format!(
                    "anet {}: mac-address {} used twice",
                    p.linkname,
                    format_mac(&p.mac)
                ),
            ));
        }
    }
    Ok(plans)
}

/// MACs in use: host links and the zone ends recorded by other zones.
fn macs_in_use(store: &Store, me: &str, host: &mut Netlink) -> Result<Vec<(String, String)>> {
    let mut used: Vec<(String, String)> = host
        .links()
        .map_err(net(me))?
        .into_iter()
        .filter_map(|l| Some((l.mac?, format!("host link {}", l.name))))
        .collect();
    for e in std::fs::read_dir(store.run_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let other = e.file_name().to_string_lossy().into_owned();
        if other == me {
            continue;
        }
        let paths = ZonePaths::new(store, &other);
        if let Some(r) = Record::load(&paths) {
            used.extend(r.macs.into_iter().map(|m| (m, format!("zone '{other}'"))));
        }
    }
    Ok(used)
}

/// The etherstub bridge `stub` must exist on the host; one recorded by dladm is recreated.
fn ensure_stub(store: &Store, zone: &str, host: &mut Netlink, stub: &str) -> Result<()> {
    match host.link(stub).map_err(net(zone))? {
        Some(l) if l.kind.as_deref() == Some("bridge") => Ok(()),
        Some(_) => Err(cfg(
            zone,
            format!("lower-link '{stub}' is not an etherstub (bridge)"),
        )),
        None if datalinks::is_etherstub(store, stub) => {
            datalinks::create_stub_link(host, stub).map_err(net(zone))
        }
        None => Err(cfg(
            zone,
            format!(
                "lower-link '{stub}' does not exist; create it with dladm create-etherstub {stub}"
            ),
        )),
    }
}

/// Set up the zone's network before its init exists. Returns the namespace file for the
/// engine, or `None` when the zone has no anet (the engine then makes an empty namespace).
/// On error nothing is left behind.
pub fn setup(store: &Store, zone: &Zone, paths: &ZonePaths) -> Result<Option<PathBuf>> {
    setup_in(store, zone, paths, None)
}

/// [`setup`] in the network namespace of the (created, not started) zone init `init`: a zone
/// with a user namespace of its own makes its network namespace there, owned by it, so the
/// zone's root administers its network (CAP_NET_ADMIN, CAP_NET_RAW) and mounts its sysfs.
pub fn setup_in(
    store: &Store,
    zone: &Zone,
    paths: &ZonePaths,
    init: Option<nix::unistd::Pid>,
) -> Result<Option<PathBuf>> {
    let name = zone.zonename.as_str();
    teardown(paths);
    let plans = plan(zone)?;
    if plans.is_empty() {
        return Ok(None);
    }
    let mut host = Netlink::open().map_err(net(name))?;
    let used = macs_in_use(store, name, &mut host)?;
    for p in &plans {
        let mac = format_mac(&p.mac);
        if let Some((_, who)) = used.iter().find(|(m, _)| *m == mac) {
            return Err(cfg(
                name,
                format!(
                    "anet {}: mac-address {mac} is already used by {who}",
                    p.linkname
                ),
            ));
        }
        ensure_stub(store, name, &mut host, &p.stub)?;
    }
    let record = Record {
        host_links: plans.iter().map(|p| p.host.clone()).collect(),
        macs: plans.iter().map(|p| format_mac(&p.mac)).collect(),
    };
    record
        .save(paths)
        .map_err(|e| cfg(name, format!("{}: {e}", record_file(paths).display())))?;
    let made = build(name, paths, &mut host, &plans, init);
    if made.is_err() {
        teardown(paths);
    }
    made.map(Some)
}

fn build(
    zone: &str,
    paths: &ZonePaths,
    host: &mut Netlink,
    plans: &[Plan],
    init: Option<nix::unistd::Pid>,
) -> Result<PathBuf> {
    let file = netns_file(paths);
    match init {
        Some(pid) => pin_netns_of(pid, &file).map_err(|e| {
            cfg(
                zone,
                format!(
                    "pin the network namespace of init {pid} at {}: {e}",
                    file.display()
                ),
            )
        })?,
        None => netns::create(&file).map_err(net(zone))?,
    }
    let nsfd = netns::open(&file).map_err(net(zone))?;
    for p in plans {
        host.create_veth(&p.host, &p.linkname, Some(nsfd.as_fd()), Some(p.mac))
            .map_err(net(zone))?;
        if let Some(mtu) = p.mtu {
            host.set_mtu(&p.host, mtu).map_err(net(zone))?;
        }
        host.set_master(&p.host, Some(&p.stub)).map_err(net(zone))?;
        host.set_up(&p.host, true).map_err(net(zone))?;
    }
    let mut inside = netns::netlink_in(nsfd.as_fd(), &file).map_err(net(zone))?;
    inside.set_up("lo", true).map_err(net(zone))?;
    for p in plans {
        if let Some(mtu) = p.mtu {
            inside.set_mtu(&p.linkname, mtu).map_err(net(zone))?;
        }
        inside.set_up(&p.linkname, true).map_err(net(zone))?;
        if let Some((addr, len)) = p.address {
            inside
                .add_address(&p.linkname, addr, len)
                .map_err(net(zone))?;
        }
    }
    for p in plans {
        if let Some(gw) = p.defrouter {
            inside.add_default_route(gw).map_err(net(zone))?;
        }
    }
    Ok(file)
}

/// Keep the network namespace of `pid` at `file` (a bind mount of its nsfs file), as
/// `netns::create` keeps a new one, so teardown removes both the same way.
fn pin_netns_of(pid: nix::unistd::Pid, file: &std::path::Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)?;
    let src = PathBuf::from(format!("/proc/{pid}/ns/net"));
    nix::mount::mount(
        Some(&src),
        file,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(file);
        std::io::Error::from(e)
    })
}

/// Remove what `setup` made (also after a crash of the supervisor): the host ends of the
/// zone's links, the namespace file, the record. Best effort; never fails.
pub fn teardown(paths: &ZonePaths) {
    if let Some(r) = Record::load(paths) {
        if let Ok(mut host) = Netlink::open() {
            for l in &r.host_links {
                let _ = host.delete_if_exists(l);
            }
        }
    }
    let _ = netns::remove(&netns_file(paths));
    let _ = std::fs::remove_file(record_file(paths));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anet(link: &str, stub: &str) -> Anet {
        Anet {
            linkname: Some(link.into()),
            lower_link: Some(stub.into()),
            ..Default::default()
        }
    }

    fn zone_with(anets: Vec<Anet>) -> Zone {
        let mut z = Zone::new("web");
        z.anet = anets;
        z
    }

    #[test]
    fn host_names_fit_and_differ() {
        let a = host_link_name("web", "net0");
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("zv"));
        assert_eq!(a, host_link_name("web", "net0"));
        assert_ne!(a, host_link_name("web", "net1"));
        assert_ne!(a, host_link_name("db", "net0"));
    }

    #[test]
    fn plans_check_every_value() {
        let mut a = anet("net0", "stub0");
        a.allowed_address = Some("10.213.0.5/24".into());
        a.defrouter = Some("10.213.0.1".into());
        a.mac_address = Some("2:8:20:1:2:3".into());
        let p = plan(&zone_with(vec![a])).unwrap();
        assert_eq!(p[0].mac, [2, 8, 0x20, 1, 2, 3]);
        assert_eq!(p[0].address, Some(("10.213.0.5".parse().unwrap(), 24)));
        assert_eq!(p[0].stub, "stub0");

        let err = |z: Zone| plan(&z).unwrap_err().to_string();
        let mut a = anet("net0", "stub0");
        a.lower_link = None;
        assert!(err(zone_with(vec![a])).contains("lower-link auto is not supported"));
        assert!(err(zone_with(vec![anet("net0", "a-very-long-stub-name")]))
            .contains("longer than 15 bytes"));
        let mut a = anet("net0", "stub0");
        a.vlan_id = Some(5);
        assert!(err(zone_with(vec![a])).contains("vlan-id 5"));
        let mut a = anet("net0", "stub0");
        a.defrouter = Some("10.0.0.1".into());
        assert!(err(zone_with(vec![a])).contains("defrouter needs an allowed-address"));
        let mut a = anet("net0", "stub0");
        a.mac_address = Some("02:00:00:00:00:01".into());
        let mut b = anet("net1", "stub0");
        b.mac_address = Some("02:00:00:00:00:01".into());
        assert!(err(zone_with(vec![a, b])).contains("02:00:00:00:00:01 used twice"));
        assert!(err(zone_with(vec![anet("net0", "s"), anet("net0", "s")])).contains("used twice"));
        let mut z = zone_with(vec![]);
        z.ip_type = IpType::Shared;
        assert!(err(z).contains("ip-type=shared is not supported"));
        assert!(plan(&zone_with(vec![])).unwrap().is_empty());
    }
}
