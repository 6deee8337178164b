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
//! A kvm zone's anets carry its VM's NICs (see [`vm_nics`]): the zone end of each is a port
//! of a bridge `vmbrN` in the zone's namespace, with a tap `vmtapN` that the zone's qemu
//! user owns and qemu attaches to; the zone end gets no address (the VM configures its own)
//! and a MAC of its own, the VM the anet's mac-address, so the host end's caps and
//! anti-spoofing apply to the VM's frames.
//!
//! What was made is recorded in `ALTROOT/run/zones/NAME/net.json` first, so teardown (at halt,
//! at a failed boot, or by `zoneadm halt` after the supervisor was killed) deletes exactly
//! that: the host ends (each takes its zone end along) and the namespace file.

use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zones::model::Net;
use zones::model::{Anet, Brand, IpType, Zone};
use zones::store::Store;
use zones_net::names::{self, check_ifname, format_mac, parse_mac, parse_prefix};
use zones_net::nft::{self, Protection};
use zones_net::{netns, NetError, Netlink};

use super::vmnet;
pub use super::vmnet::{vm_nic_qemu_args, vm_nics, VmNic};
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
    /// ifb devices shaping traffic from the zone.
    #[serde(default)]
    pub ifbs: Vec<String>,
    /// nft tables protecting the host ends.
    #[serde(default)]
    pub nft_tables: Vec<String>,
    /// dladm VNICs (`net` resources) moved into the zone: moved back at teardown.
    #[serde(default)]
    pub vnics: Vec<String>,
    /// Their MACs as dladm recorded them: restored when they come back.
    #[serde(default)]
    pub vnic_macs: Vec<String>,
}

impl Record {
    fn load(paths: &ZonePaths) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(record_file(paths)).ok()?).ok()
    }

    fn save(&self, paths: &ZonePaths) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        zones_engine::state::write_atomic(&record_file(paths), &json)
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

/// The ifb device shaping what the zone sends through host end `host`.
pub fn ifb_name(host: &str) -> String {
    format!("zi{:010x}", names::fnv1a(host.as_bytes()) & 0xff_ffff_ffff)
}

/// One anet, checked: nothing is created until every anet of the zone passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) linkname: String,
    host: String,
    stub: String,
    pub(super) mac: [u8; 6],
    pub(super) address: Option<(IpAddr, u8)>,
    pub(super) defrouter: Option<IpAddr>,
    pub(super) mtu: Option<u32>,
    vlan: Option<u16>,
    /// Bits/s in each direction.
    maxbw: Option<u64>,
    protection: Protection,
}

/// A `net` resource: a dladm VNIC moved into the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetPlan {
    vnic: String,
    /// As dladm recorded it (filled in by `check_vnic`).
    mac: String,
    address: Option<(IpAddr, u8)>,
    defrouter: Option<IpAddr>,
}

/// dladm `priority` as an skb priority (pfifo_fast bands: 6 first, 0 next, 2 last).
pub fn priority_value(p: &str) -> Option<u32> {
    match p {
        "high" => Some(6),
        "medium" => Some(0),
        "low" => Some(2),
        _ => None,
    }
}

/// A `protection` value: a comma list of the dladm protection types, or `none`.
pub fn check_protection(what: &str, list: &str) -> std::result::Result<(), String> {
    for item in list.split(',').filter(|i| *i != "none") {
        if !["mac-nospoof", "ip-nospoof", "dhcp-nospoof", "restricted"].contains(&item) {
            return Err(format!(
                "{what} '{item}': expected a comma list of mac-nospoof, ip-nospoof, dhcp-nospoof, restricted"
            ));
        }
    }
    Ok(())
}

/// `protection` (a comma list, or `none`) as nft rules for a link with `mac` and `ips`.
pub fn protection_of(
    what: &str,
    list: Option<&str>,
    mac: [u8; 6],
    ips: &[IpAddr],
    priority: Option<&str>,
) -> std::result::Result<Protection, String> {
    let mut p =
        Protection {
            priority: match priority {
                None => None,
                Some(v) => Some(priority_value(v).ok_or_else(|| {
                    format!("{what} priority '{v}': expected low, medium or high")
                })?),
            },
            ..Default::default()
        };
    let list = list.unwrap_or("none");
    check_protection(&format!("{what} link-protection"), list)?;
    for item in list.split(',').filter(|i| *i != "none") {
        match item {
            "mac-nospoof" => p.mac = Some(mac),
            "ip-nospoof" => {
                if ips.is_empty() {
                    return Err(format!(
                        "{what}: ip-nospoof needs the allowed addresses (set allowed-address, or allowed-ips for a VNIC)"
                    ));
                }
                p.ips = Some(ips.to_vec());
            }
            "dhcp-nospoof" => p.dhcp_nospoof = true,
            // check_protection left only "restricted".
            _ => p.restricted = true,
        }
    }
    Ok(p)
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
    check_defrouter(zone, &format!("anet {linkname}"), defrouter, address)?;
    let ips: Vec<IpAddr> = address.iter().map(|(a, _)| *a).collect();
    let protection = protection_of(
        &format!("anet {linkname}"),
        a.link_protection.as_deref(),
        mac,
        &ips,
        a.priority.as_deref(),
    )
    .map_err(|m| cfg(zone, m))?;
    Ok(Plan {
        host: host_link_name(zone, &linkname),
        linkname,
        stub,
        mac,
        address,
        defrouter,
        mtu: a.mtu,
        vlan: a.vlan_id.filter(|v| *v != 0),
        maxbw: a.maxbw.map(|b| b.bps()),
        protection,
    })
}

fn plan_net(zone: &str, n: &Net) -> Result<NetPlan> {
    let vnic = n.physical.clone().ok_or_else(|| {
        cfg(
            zone,
            "net resource without physical (a VNIC made with dladm)",
        )
    })?;
    check_ifname(&vnic).map_err(|e| cfg(zone, format!("net physical: {e}")))?;
    if let Some(v) = n.vlan_id.filter(|v| *v != 0) {
        return Err(cfg(
            zone,
            format!("net {vnic} vlan-id {v}: a net resource takes the VNIC as it is; give the VNIC its VLAN (dladm create-vnic -v)"),
        ));
    }
    if let Some(m) = &n.mac_addr {
        return Err(cfg(
            zone,
            format!("net {vnic} mac-addr {m}: a net resource takes the VNIC as it is; give the VNIC its MAC address (dladm create-vnic -m)"),
        ));
    }
    if let Some(g) = &n.global_nic {
        return Err(cfg(
            zone,
            format!("net {vnic} global-nic {g}: global-nic is for shared-IP zones, which are not supported; clear global-nic"),
        ));
    }
    let text = n.allowed_address.as_deref().or(n.address.as_deref());
    let address = match text {
        None => None,
        Some(s) => Some(
            parse_prefix(s).map_err(|e| cfg(zone, format!("net {vnic} allowed-address: {e}")))?,
        ),
    };
    let defrouter = match n.defrouter.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
            cfg(
                zone,
                format!("net {vnic} defrouter '{s}': expected an IP address"),
            )
        })?),
    };
    if defrouter.is_some() && address.is_none() {
        return Err(cfg(
            zone,
            format!("net {vnic}: defrouter needs an allowed-address"),
        ));
    }
    check_defrouter(zone, &format!("net {vnic}"), defrouter, address)?;
    Ok(NetPlan {
        mac: String::new(),
        vnic,
        address,
        defrouter,
    })
}

/// Check the zone's `net` resources.
fn plan_nets(zone: &Zone) -> Result<Vec<NetPlan>> {
    let name = &zone.zonename;
    if let (Brand::Kvm, Some(n)) = (zone.brand, zone.net.first()) {
        return Err(cfg(
            name,
            format!(
                "net {}: a kvm zone's VM gets its NICs from anet resources (the VM's MAC is the anet's mac-address); use add anet",
                n.physical.as_deref().unwrap_or("?")
            ),
        ));
    }
    let nets = zone
        .net
        .iter()
        .map(|n| plan_net(name, n))
        .collect::<Result<Vec<_>>>()?;
    for (i, n) in nets.iter().enumerate() {
        if nets[..i].iter().any(|m| m.vnic == n.vnic)
            || zone
                .anet
                .iter()
                .any(|a| a.linkname.as_deref() == Some(&n.vnic))
        {
            return Err(cfg(name, format!("net {}: link name used twice", n.vnic)));
        }
    }
    Ok(nets)
}

/// What boot refuses in the zone's network configuration (ip-type=shared, bad anet and net
/// resources), without touching the host: `zoneadm verify` runs it.
pub fn check(zone: &Zone) -> Result<()> {
    plan(zone)?;
    plan_nets(zone)?;
    Ok(())
}

/// Check the zone's network configuration and plan its links.
pub(super) fn plan(zone: &Zone) -> Result<Vec<Plan>> {
    let name = &zone.zonename;
    if zone.ip_type == IpType::Shared {
        return Err(cfg(
            name,
            "ip-type=shared is not supported (zones have exclusive IP stacks only); set ip-type=exclusive",
        ));
    }
    if zone.brand == Brand::Kvm {
        if let Some(a) = zone
            .anet
            .iter()
            .find(|a| a.mac_address.as_deref() == Some("random"))
        {
            return Err(cfg(
                name,
                format!(
                    "anet {}: mac-address random: a kvm zone's VM is given its MAC before boot; set mac-address to auto or an address",
                    a.linkname.as_deref().unwrap_or("?")
                ),
            ));
        }
        if let Some(a) = zone.anet.iter().find(|a| a.defrouter.is_some()) {
            return Err(cfg(
                name,
                format!(
                    "anet {}: defrouter: a kvm zone's VM sets its own default route (in the guest); remove defrouter",
                    a.linkname.as_deref().unwrap_or("?")
                ),
            ));
        }
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
    used.extend(zone_macs(store, me));
    // VNICs lent to other zones are not on the host.
    if let Ok(d) = datalinks::load(store) {
        used.extend(
            d.vnics
                .into_iter()
                .map(|v| (v.mac, format!("VNIC '{}'", v.name))),
        );
    }
    Ok(used)
}

/// The MACs of the zone ends of running zones' anets (other than zone `except`), with the
/// zone's name.
pub fn zone_macs(store: &Store, except: &str) -> Vec<(String, String)> {
    let mut used = Vec::new();
    for e in std::fs::read_dir(store.run_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let other = e.file_name().to_string_lossy().into_owned();
        if other == except {
            continue;
        }
        let paths = ZonePaths::new(store, &other);
        if let Some(r) = Record::load(&paths) {
            used.extend(r.macs.into_iter().map(|m| (m, format!("zone '{other}'"))));
        }
    }
    used
}

/// An anet of a zone whose links are up, as dladm shows it (`ZONE/LINK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneAnet {
    pub zone: String,
    pub linkname: String,
    /// The host end of its veth pair.
    pub host: String,
    /// Its lower-link (an etherstub or a host link).
    pub over: String,
    /// Its MAC address in the zone (`--` when not recorded).
    pub mac: String,
    pub vid: u16,
}

/// The links of the zones whose networks are set up (those with a `net.json` record), in
/// zone name order: their anets, and the dladm VNICs lent to them (`net`) as (VNIC, zone).
pub fn zone_links(store: &Store) -> (Vec<ZoneAnet>, Vec<(String, String)>) {
    let (mut anets, mut lent) = (Vec::new(), Vec::new());
    let mut names: Vec<String> = std::fs::read_dir(store.run_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for zone in names {
        let paths = ZonePaths::new(store, &zone);
        let Some(r) = Record::load(&paths) else {
            continue;
        };
        lent.extend(r.vnics.iter().map(|v| (v.clone(), zone.clone())));
        let Ok(Some(cfg)) = store.load(&zone) else {
            continue;
        };
        for a in &cfg.anet {
            let Some(linkname) = a.linkname.clone() else {
                continue;
            };
            let host = host_link_name(&zone, &linkname);
            let mac = r
                .host_links
                .iter()
                .position(|h| *h == host)
                .and_then(|i| r.macs.get(i).cloned())
                .unwrap_or_else(|| "--".into());
            anets.push(ZoneAnet {
                zone: zone.clone(),
                linkname,
                over: a.lower_link.clone().unwrap_or_else(|| "--".into()),
                mac,
                vid: a.vlan_id.unwrap_or(0),
                host,
            });
        }
    }
    (anets, lent)
}

/// `gw` must be on the subnet of `address`.
fn check_defrouter(
    zone: &str,
    what: &str,
    gw: Option<IpAddr>,
    address: Option<(IpAddr, u8)>,
) -> Result<()> {
    let (Some(gw), Some((addr, len))) = (gw, address) else {
        return Ok(());
    };
    let same = match (gw, addr) {
        (IpAddr::V4(g), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(g) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(g), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(g) & mask == u128::from(a) & mask
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(cfg(
            zone,
            format!("{what} defrouter {gw} is outside allowed-address {addr}/{len}: set a router on that subnet"),
        ))
    }
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

/// A `net` resource's VNIC: recorded by dladm and present on the host (not in another zone).
fn check_vnic(store: &Store, zone: &str, host: &mut Netlink, n: &mut NetPlan) -> Result<()> {
    let recorded = datalinks::load(store)
        .map_err(|e| cfg(zone, e))?
        .vnics
        .into_iter()
        .find(|v| v.name == n.vnic);
    if let Some(v) = recorded {
        n.mac = v.mac;
    } else {
        return Err(cfg(
            zone,
            format!(
                "net physical '{}': no such VNIC; create it with dladm create-vnic -l ETHERSTUB {}",
                n.vnic, n.vnic
            ),
        ));
    }
    if host.link(&n.vnic).map_err(net(zone))?.is_none() {
        return Err(cfg(
            zone,
            format!(
                "net physical '{}': the VNIC is not on the host (used by another running zone, or run dladm up)",
                n.vnic
            ),
        ));
    }
    Ok(())
}

/// Set up the zone's network before its init exists. Returns the namespace file for the
/// engine, or `None` when the zone has no anet or net (the engine then makes an empty
/// namespace). On error nothing is left behind. `id_base` is the start of the zone's id
/// range (0 without a user namespace): a kvm zone's taps belong to its qemu user,
/// [`vmnet::vm_owner`]`(id_base)`.
pub fn setup(
    store: &Store,
    zone: &Zone,
    paths: &ZonePaths,
    id_base: u32,
) -> Result<Option<PathBuf>> {
    setup_in(store, zone, paths, None, id_base)
}

/// [`setup`] in the network namespace of the (created, not started) zone init `init`: a zone
/// with a user namespace of its own makes its network namespace there, owned by it, so the
/// zone's root administers its network (CAP_NET_ADMIN, CAP_NET_RAW) and mounts its sysfs.
pub fn setup_in(
    store: &Store,
    zone: &Zone,
    paths: &ZonePaths,
    init: Option<nix::unistd::Pid>,
    id_base: u32,
) -> Result<Option<PathBuf>> {
    let name = zone.zonename.as_str();
    teardown(paths);
    let plans = plan(zone)?;
    let mut nets = plan_nets(zone)?;
    if plans.is_empty() && nets.is_empty() {
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
        if let Some(v) = p.vlan {
            datalinks::vlan_ready(&mut host, &p.stub, v)
                .map_err(|why| cfg(name, format!("anet {} vlan-id {v}: {why}", p.linkname)))?;
        }
    }
    for n in &mut nets {
        check_vnic(store, name, &mut host, n)?;
    }
    let record = Record {
        host_links: plans.iter().map(|p| p.host.clone()).collect(),
        macs: plans.iter().map(|p| format_mac(&p.mac)).collect(),
        ifbs: plans
            .iter()
            .filter(|p| p.maxbw.is_some())
            .map(|p| ifb_name(&p.host))
            .collect(),
        nft_tables: plans
            .iter()
            .filter(|p| !p.protection.is_empty())
            .map(|p| nft::table_name(&p.host))
            .collect(),
        vnics: nets.iter().map(|n| n.vnic.clone()).collect(),
        vnic_macs: nets.iter().map(|n| n.mac.clone()).collect(),
    };
    record
        .save(paths)
        .map_err(|e| cfg(name, format!("{}: {e}", record_file(paths).display())))?;
    let vm = (zone.brand == Brand::Kvm).then(|| (vm_nics(zone), vmnet::vm_owner(id_base)));
    let made = build(name, paths, &mut host, &plans, &nets, init, vm);
    if made.is_err() {
        teardown(paths);
    }
    made.map(Some)
}

/// Bandwidth cap and protection of an anet's host end.
fn host_end_policy(zone: &str, host: &mut Netlink, p: &Plan) -> Result<()> {
    if let Some(bps) = p.maxbw {
        // Towards the zone: what the host end sends. From the zone: what it receives.
        host.set_egress_cap(&p.host, bps).map_err(net(zone))?;
        host.set_ingress_cap(&p.host, &ifb_name(&p.host), bps)
            .map_err(net(zone))?;
    }
    if !p.protection.is_empty() {
        nft::protect(&p.host, &p.protection).map_err(net(zone))?;
    }
    Ok(())
}

/// An address and default route inside the zone.
fn configure_inside(
    zone: &str,
    inside: &mut Netlink,
    link: &str,
    address: Option<(IpAddr, u8)>,
) -> Result<()> {
    inside.set_up(link, true).map_err(net(zone))?;
    if let Some((addr, len)) = address {
        inside.add_address(link, addr, len).map_err(net(zone))?;
    }
    Ok(())
}

/// A kvm zone's VM NICs and the host ids of the qemu user that owns their taps.
type VmPart = (Vec<VmNic>, (u32, u32));

fn build(
    zone: &str,
    paths: &ZonePaths,
    host: &mut Netlink,
    plans: &[Plan],
    nets: &[NetPlan],
    init: Option<nix::unistd::Pid>,
    vm: Option<VmPart>,
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
        // A kvm zone's end is a bridge port: the anet's MAC is the VM's (vmnet).
        let zone_end_mac = match vm {
            Some(_) => vmnet::port_mac(zone, &p.linkname, p.mac),
            None => p.mac,
        };
        host.create_veth(&p.host, &p.linkname, Some(nsfd.as_fd()), Some(zone_end_mac))
            .map_err(net(zone))?;
        if let Some(mtu) = p.mtu {
            host.set_mtu(&p.host, mtu).map_err(net(zone))?;
        }
        host.set_master(&p.host, Some(&p.stub)).map_err(net(zone))?;
        if let Some(vid) = p.vlan {
            host.set_port_vlan(&p.host, vid).map_err(net(zone))?;
        }
        host_end_policy(zone, host, p)?;
        host.set_up(&p.host, true).map_err(net(zone))?;
    }
    for n in nets {
        host.move_to_netns(&n.vnic, nsfd.as_fd())
            .map_err(net(zone))?;
    }
    let mut inside = netns::netlink_in(nsfd.as_fd(), &file).map_err(net(zone))?;
    inside.set_up("lo", true).map_err(net(zone))?;
    for p in plans {
        if let Some(mtu) = p.mtu {
            inside.set_mtu(&p.linkname, mtu).map_err(net(zone))?;
        }
    }
    if let Some((nics, owner)) = vm {
        // The VM configures its addresses and routes; the zone end only carries its frames.
        for n in &nics {
            vmnet::set_up(&mut inside, nsfd.as_fd(), &file, n, owner).map_err(net(zone))?;
        }
        return Ok(file);
    }
    for p in plans {
        configure_inside(zone, &mut inside, &p.linkname, p.address)?;
    }
    for n in nets {
        configure_inside(zone, &mut inside, &n.vnic, n.address)?;
    }
    let routers = plans
        .iter()
        .filter_map(|p| p.defrouter)
        .chain(nets.iter().filter_map(|n| n.defrouter));
    for gw in routers {
        inside.add_default_route(gw).map_err(net(zone))?;
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

/// Move the zone's dladm VNICs back to the host namespace (before the zone's namespace goes,
/// which would destroy them), under their own names even if the zone renamed them: a VNIC
/// over an etherstub is found as the veth peer of its bridge port, which stays on the host.
fn return_vnics(r: &Record, paths: &ZonePaths) {
    if r.vnics.is_empty() {
        return;
    }
    let file = netns_file(paths);
    let (Ok(ns), Ok(hostns), Ok(mut host)) = (
        netns::open(&file),
        std::fs::File::open("/proc/self/ns/net"),
        Netlink::open(),
    ) else {
        return;
    };
    let Ok(mut inside) = netns::netlink_in(ns.as_fd(), &file) else {
        return;
    };
    let inside_links = inside.links().unwrap_or_default();
    for v in &r.vnics {
        let port = host
            .link(&datalinks::vnic_port_name(v))
            .ok()
            .flatten()
            .map(|l| l.index);
        let link = inside_links.iter().find(|l| l.name == *v).or_else(|| {
            inside_links
                .iter()
                .find(|l| port.is_some() && l.kind.as_deref() == Some("veth") && l.lower == port)
        });
        let Some(link) = link else { continue };
        let _ = inside.set_up(&link.name, false);
        if inside
            .move_index_to_netns(link.index, hostns.as_fd(), v)
            .is_err()
        {
            continue;
        }
        // Renamed in the zone and the name was free on the host: take the VNIC's name back.
        if host.link(v).ok().flatten().is_none() {
            let back =
                host.links().unwrap_or_default().into_iter().find(|l| {
                    port.is_some() && l.kind.as_deref() == Some("veth") && l.lower == port
                });
            if let Some(b) = back {
                let _ = host.rename(&b.name, v);
            }
        }
        // The zone may have changed its MAC: the VNIC comes back as dladm made it.
        if let Some(mac) = r
            .vnics
            .iter()
            .position(|x| x == v)
            .and_then(|i| r.vnic_macs.get(i))
        {
            if let Ok(m) = parse_mac(mac) {
                let _ = host.set_mac(v, m);
            }
        }
        let _ = host.set_up(v, true);
    }
}

/// Remove what `setup` made (also after a crash of the supervisor): the protection tables,
/// the VNICs lent to the zone (returned), the ifb devices, the host ends of the zone's links
/// (each takes its zone end along), the namespace file, the record. Best effort; never fails.
pub fn teardown(paths: &ZonePaths) {
    if let Some(r) = Record::load(paths) {
        for t in &r.nft_tables {
            let _ = nft::remove_table(t);
        }
        return_vnics(&r, paths);
        if let Ok(mut host) = Netlink::open() {
            for l in r.ifbs.iter().chain(&r.host_links) {
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
        assert_eq!(plan(&zone_with(vec![a])).unwrap()[0].vlan, Some(5));
        let mut a = anet("net0", "stub0");
        a.defrouter = Some("10.0.0.1".into());
        assert!(err(zone_with(vec![a])).contains("defrouter needs an allowed-address"));
        let mut a = anet("net0", "stub0");
        a.allowed_address = Some("10.0.0.5/24".into());
        a.defrouter = Some("10.0.1.1".into());
        assert!(err(zone_with(vec![a]))
            .contains("defrouter 10.0.1.1 is outside allowed-address 10.0.0.5/24"));
        let mut a = anet("net0", "stub0");
        a.allowed_address = Some("10.0.0.5/24".into());
        a.link_protection = Some("ip-nospoof".into());
        a.priority = Some("high".into());
        let p = plan(&zone_with(vec![a])).unwrap();
        assert_eq!(p[0].protection.ips, Some(vec!["10.0.0.5".parse().unwrap()]));
        assert_eq!(p[0].protection.priority, Some(6));
        let mut a = anet("net0", "stub0");
        a.link_protection = Some("ip-nospoof".into());
        assert!(err(zone_with(vec![a])).contains("ip-nospoof needs the allowed addresses"));
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

    #[test]
    fn a_kvm_zone_refuses_what_its_vm_cannot_have() {
        let mut z = zone_with(vec![anet("net0", "stub0")]);
        z.brand = Brand::Kvm;
        assert!(check(&z).is_ok());
        z.anet[0].mac_address = Some("random".into());
        let e = check(&z).unwrap_err().to_string();
        assert!(e.contains("anet net0: mac-address random"), "{e}");
        z.anet[0].mac_address = None;
        z.net = vec![Net {
            physical: Some("vnic0".into()),
            ..Default::default()
        }];
        let e = check(&z).unwrap_err().to_string();
        assert!(
            e.contains("net vnic0: a kvm zone's VM gets its NICs from anet"),
            "{e}"
        );
        z.net.clear();
        z.anet[0].defrouter = Some("10.0.0.1".into());
        let e = check(&z).unwrap_err().to_string();
        assert!(e.contains("anet net0: defrouter"), "{e}");
        z.anet[0].defrouter = None;
        // A linux zone keeps both.
        z.brand = Brand::Linux;
        z.anet[0].mac_address = Some("random".into());
        assert!(plan(&z).is_ok() && plan_nets(&z).is_ok());
    }
}
