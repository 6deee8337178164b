//! Datalinks made with dladm: etherstubs (bridges with no uplink) and VNICs, recorded in
//! `ALTROOT/etc/zones/datalinks` (JSON, written atomically under `datalinks.lock`) so they can
//! be made again when missing (at zone boot, or by the host service after a reboot).
//!
//! A VNIC over an etherstub is a veth pair whose other end (`vp` + hash) is a port of the
//! bridge; a VNIC over any other link is a macvlan in bridge mode.
//!
//! Link properties (`maxbw`, `priority`, `protection`, `allowed-ips`) of a VNIC over an
//! etherstub are enforced on its bridge port, which stays on the host when the VNIC is lent to
//! a zone (`net` resource): tbf towards the VNIC, an ifb device for what it sends, and an nft
//! bridge-family nft table (see `zones_net::{tc, nft}`). A macvlan has no such port, so it takes none.
//!
//! A VLAN id (`-v`) needs an etherstub: the bridge is made VLAN-aware and the port is put in
//! that VLAN alone (PVID, untagged); ports without one stay in VLAN 1 (`zones_net::bridge_vlan`).

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use zones::model::Bandwidth;
use zones::store::Store;
use zones_net::bridge_vlan;
use zones_net::names::{self, check_ifname, format_mac, parse_mac};
use zones_net::nft;
use zones_net::{NetError, Netlink};

use super::network;

#[derive(Debug, thiserror::Error)]
pub enum DatalinkError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{path}: {msg}")]
    Store { path: PathBuf, msg: String },
    #[error("{0}")]
    Usage(String),
}

type Result<T> = std::result::Result<T, DatalinkError>;

/// A VNIC as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Vnic {
    pub name: String,
    /// The link it was made over (an etherstub or another link).
    pub over: String,
    pub mac: String,
    /// Link properties set on it (`maxbw`, `priority`, `protection`, `allowed-ips`).
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    /// The VLAN its bridge port is in (PVID, untagged); none: the default VLAN 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// The link properties a VNIC takes, with their defaults and possible values.
pub const LINK_PROPS: [(&str, &str, &str); 4] = [
    ("maxbw", "--", "a bandwidth like 10M, 1.5G or 500K"),
    ("priority", "medium", "low,medium,high"),
    (
        "protection",
        "--",
        "mac-nospoof,ip-nospoof,dhcp-nospoof,restricted",
    ),
    ("allowed-ips", "--", "a comma list of IP addresses"),
];

/// The MTUs a VNIC takes (`mtu`), and its default.
pub const MTU_RANGE: (u32, u32) = (68, 9000);
pub const MTU_DEFAULT: u32 = 1500;

/// Check one property value; returns it in canonical form.
pub fn check_prop(name: &str, value: &str) -> Result<String> {
    let usage = |m: String| DatalinkError::Usage(m);
    match name {
        "maxbw" => Bandwidth::parse("maxbw", value)
            .map(|b| b.to_string())
            .map_err(|e| usage(format!("link property {e}"))),
        "priority" => match network::priority_value(value) {
            Some(_) => Ok(value.to_string()),
            None => Err(usage(format!(
                "link property priority \"{value}\": expected low, medium or high"
            ))),
        },
        "protection" => network::check_protection("link property protection", value)
            .map(|()| value.to_string())
            .map_err(usage),
        "allowed-ips" => {
            for ip in value.split(',') {
                ip.parse::<IpAddr>().map_err(|_| {
                    usage(format!(
                        "link property allowed-ips \"{ip}\": expected a comma list of IP addresses like 10.0.0.5"
                    ))
                })?;
            }
            Ok(value.to_string())
        }
        "mtu" => match value.parse::<u32>() {
            Ok(m) if (MTU_RANGE.0..=MTU_RANGE.1).contains(&m) => Ok(m.to_string()),
            _ => Err(usage(format!(
                "link property mtu \"{value}\": expected a number from {} to {}",
                MTU_RANGE.0, MTU_RANGE.1
            ))),
        },
        _ => Err(usage(format!(
            "unknown link property '{name}' (properties: mtu, maxbw, priority, protection, allowed-ips)"
        ))),
    }
}

/// `maxbw=10M,protection=mac-nospoof,ip-nospoof,allowed-ips=10.0.0.5,10.0.0.6` as pairs: a
/// comma item without `=` continues the previous value (protection and allowed-ips are lists).
pub fn parse_props(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for item in text.split(',').filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((k, v)) => {
                let k = k.trim().to_string();
                out.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
            None => match &last {
                Some(k) => {
                    let v = out.get_mut(k).expect("inserted");
                    v.push(',');
                    v.push_str(item.trim());
                }
                None => {
                    return Err(DatalinkError::Usage(format!(
                        "link property '{item}': expected NAME=VALUE"
                    )))
                }
            },
        }
    }
    for (k, v) in out.iter_mut() {
        *v = check_prop(k, v)?;
    }
    Ok(out)
}

/// Everything dladm made.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Datalinks {
    #[serde(default)]
    pub etherstubs: Vec<String>,
    #[serde(default)]
    pub vnics: Vec<Vnic>,
}

fn file(store: &Store) -> PathBuf {
    store.config_dir().join("datalinks")
}

fn store_err(path: PathBuf, msg: impl std::fmt::Display) -> DatalinkError {
    DatalinkError::Store {
        path,
        msg: msg.to_string(),
    }
}

/// The recorded datalinks (none when the file does not exist).
pub fn load(store: &Store) -> Result<Datalinks> {
    let path = file(store);
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| store_err(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Datalinks::default()),
        Err(e) => Err(store_err(path, e)),
    }
}

fn save(store: &Store, d: &Datalinks) -> Result<()> {
    let json = serde_json::to_vec_pretty(d).map_err(|e| store_err(file(store), e))?;
    zones::store::write_atomic(store.config_dir(), "datalinks", &json)
        .map_err(|e| store_err(file(store), e))
}

fn lock(store: &Store) -> Result<Flock<fs::File>> {
    let path = store.config_dir().join("datalinks.lock");
    fs::create_dir_all(store.config_dir()).map_err(|e| store_err(path.clone(), e))?;
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| store_err(path.clone(), e))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| store_err(path, e))
}

/// Whether dladm recorded an etherstub called `name`.
pub fn is_etherstub(store: &Store, name: &str) -> bool {
    load(store).is_ok_and(|d| d.etherstubs.iter().any(|s| s == name))
}

/// The bridge of an etherstub, up.
pub fn create_stub_link(nl: &mut Netlink, name: &str) -> std::result::Result<(), NetError> {
    nl.create_bridge(name)?;
    if let Err(e) = nl.set_up(name, true) {
        let _ = nl.delete_link(name);
        return Err(e);
    }
    Ok(())
}

/// The bridge-side end of a VNIC over an etherstub.
pub fn vnic_port_name(vnic: &str) -> String {
    format!("vp{:010x}", names::fnv1a(vnic.as_bytes()) & 0xff_ffff_ffff)
}

fn taken(d: &Datalinks, nl: &mut Netlink, name: &str) -> Result<()> {
    check_ifname(name)?;
    if d.etherstubs.iter().any(|s| s == name) || d.vnics.iter().any(|v| v.name == name) {
        return Err(DatalinkError::Usage(format!(
            "datalink '{name}' already exists"
        )));
    }
    if nl.link(name)?.is_some() {
        return Err(NetError::LinkExists(name.to_string()).into());
    }
    Ok(())
}

/// `dladm create-etherstub NAME`.
pub fn create_etherstub(store: &Store, name: &str) -> Result<()> {
    let _l = lock(store)?;
    let mut d = load(store)?;
    let mut nl = Netlink::open()?;
    taken(&d, &mut nl, name)?;
    create_stub_link(&mut nl, name)?;
    d.etherstubs.push(name.to_string());
    if let Err(e) = save(store, &d) {
        let _ = nl.delete_link(name);
        return Err(e);
    }
    Ok(())
}

/// `dladm delete-etherstub NAME`: refused while VNICs or other ports use it.
pub fn delete_etherstub(store: &Store, name: &str) -> Result<()> {
    let _l = lock(store)?;
    let mut d = load(store)?;
    if !d.etherstubs.iter().any(|s| s == name) {
        return Err(DatalinkError::Usage(format!(
            "etherstub '{name}' does not exist"
        )));
    }
    if let Some(v) = d.vnics.iter().find(|v| v.over == name) {
        return Err(DatalinkError::Usage(format!(
            "etherstub '{name}' is in use by VNIC '{}'",
            v.name
        )));
    }
    let mut nl = Netlink::open()?;
    if let Some(stub) = nl.link(name)? {
        let ports: Vec<String> = nl
            .links()?
            .into_iter()
            .filter(|l| l.master == Some(stub.index))
            .map(|l| l.name)
            .collect();
        if !ports.is_empty() {
            return Err(DatalinkError::Usage(format!(
                "etherstub '{name}' is in use by {} (a running zone?)",
                ports.join(", ")
            )));
        }
        nl.delete_link(name)?;
    }
    d.etherstubs.retain(|s| s != name);
    save(store, &d)
}

/// The ifb shaping what a VNIC sends (through its bridge port).
pub fn vnic_ifb_name(vnic: &str) -> String {
    network::ifb_name(&vnic_port_name(vnic))
}

/// Enforce `v.props` on the VNIC's bridge port (replacing what was there).
fn apply_props(nl: &mut Netlink, v: &Vnic) -> Result<()> {
    let port = vnic_port_name(&v.name);
    let ifb = vnic_ifb_name(&v.name);
    // mtu: on the VNIC (while it is on the host) and on its bridge port alike; without one
    // the links keep what they were made with (reset-linkprop puts the lower link's back).
    if let Some(mtu) = v.props.get("mtu").and_then(|m| m.parse().ok()) {
        set_vnic_mtu(nl, v, mtu)?;
    }
    if nl.link(&port)?.is_none() {
        if v.props.keys().all(|k| k == "mtu") {
            return Ok(());
        }
        return Err(DatalinkError::Usage(format!(
            "VNIC '{}' is over '{}', not an etherstub: link properties need a VNIC over an etherstub",
            v.name, v.over
        )));
    }
    match v.props.get("maxbw") {
        Some(bw) => {
            let bps = Bandwidth::parse("maxbw", bw)
                .map_err(|e| DatalinkError::Usage(e.to_string()))?
                .bps();
            nl.set_egress_cap(&port, bps)?;
            nl.set_ingress_cap(&port, &ifb, bps)?;
        }
        None => {
            nl.clear_caps(&port)?;
            nl.delete_if_exists(&ifb)?;
        }
    }
    let ips: Vec<IpAddr> = v
        .props
        .get("allowed-ips")
        .map(|l| l.split(',').filter_map(|i| i.parse().ok()).collect())
        .unwrap_or_default();
    let prot = network::protection_of(
        &format!("VNIC {}", v.name),
        v.props.get("protection").map(String::as_str),
        parse_mac(&v.mac)?,
        &ips,
        v.props.get("priority").map(String::as_str),
    )
    .map_err(DatalinkError::Usage)?;
    nft::protect(&port, &prot)?;
    Ok(())
}

/// Set the MTU of a VNIC and of its bridge port, those of them on the host.
fn set_vnic_mtu(nl: &mut Netlink, v: &Vnic, mtu: u32) -> Result<()> {
    for l in [v.name.clone(), vnic_port_name(&v.name)] {
        if nl.link(&l)?.is_some_and(|now| now.mtu != mtu) {
            nl.set_mtu(&l, mtu)?;
        }
    }
    Ok(())
}

/// Remove what [`apply_props`] made that does not go with the links.
fn remove_props(nl: &mut Netlink, vnic: &str) {
    let _ = nft::unprotect(&vnic_port_name(vnic));
    let _ = nl.delete_if_exists(&vnic_ifb_name(vnic));
}

fn make_vnic(nl: &mut Netlink, v: &Vnic) -> Result<()> {
    make_vnic_links(nl, v)?;
    if let Err(e) = apply_props(nl, v) {
        remove_props(nl, &v.name);
        let _ = nl.delete_if_exists(&v.name);
        let _ = nl.delete_if_exists(&vnic_port_name(&v.name));
        return Err(e);
    }
    Ok(())
}

fn make_vnic_links(nl: &mut Netlink, v: &Vnic) -> Result<()> {
    let mac = parse_mac(&v.mac)?;
    let lower = nl.require(&v.over)?;
    if lower.kind.as_deref() == Some("bridge") {
        let port = vnic_port_name(&v.name);
        nl.create_veth(&port, &v.name, None, Some(mac))?;
        if let Some(vid) = v.vlan {
            vlan_ready(nl, &v.over, vid).map_err(DatalinkError::Usage)?;
        }
        let wired = nl
            .set_master(&port, Some(&v.over))
            .and_then(|()| match v.vlan {
                Some(vid) => nl.set_port_vlan(&port, vid),
                None => Ok(()),
            })
            .and_then(|()| nl.set_up(&port, true))
            .and_then(|()| nl.set_up(&v.name, true));
        if let Err(e) = wired {
            let _ = nl.delete_link(&port);
            return Err(e.into());
        }
    } else {
        nl.create_macvlan(&v.name, &v.over, Some(mac))?;
    }
    Ok(())
}

/// Make etherstub `over` VLAN-aware so a port can be put in VLAN `vid`, or say why that
/// cannot be had: VLAN ids need an etherstub (a bridge) and a kernel with bridge VLAN
/// filtering. Turning filtering on leaves the bridge's other ports in VLAN 1.
pub fn vlan_ready(nl: &mut Netlink, over: &str, vid: u16) -> std::result::Result<(), String> {
    let why = match nl.link(over) {
        Ok(Some(l)) if l.kind.as_deref() == Some("bridge") => {
            match nl.set_vlan_filtering(over, true) {
                Ok(()) => return Ok(()),
                Err(e) if bridge_vlan::is_unsupported(&e) => {
                    format!("this kernel has no bridge VLAN filtering ({e})")
                }
                Err(e) => e.to_string(),
            }
        }
        Ok(Some(_)) => "VLAN ids need an etherstub as the lower link".to_string(),
        Ok(None) => format!("link '{over}' does not exist"),
        Err(e) => e.to_string(),
    };
    Err(format!(
        "VLAN {vid} on '{over}': {why}; do without the VLAN id, or use a separate etherstub per VLAN"
    ))
}

/// `dladm create-vnic -l LINK [-m MAC] [-v VLAN] [-p PROPS] NAME`. Nothing is left behind
/// on error.
pub fn create_vnic(
    store: &Store,
    over: &str,
    name: &str,
    mac: Option<&str>,
    vlan: Option<u16>,
    props: Option<&str>,
) -> Result<Vnic> {
    let props = match props {
        Some(p) => parse_props(p)?,
        None => BTreeMap::new(),
    };
    let _l = lock(store)?;
    let mut d = load(store)?;
    let mut nl = Netlink::open()?;
    taken(&d, &mut nl, name)?;
    check_ifname(over)?;
    let lower = nl.require(over)?;
    let vlan = vlan.filter(|v| *v != 0);
    if let Some(vid) = vlan {
        vlan_ready(&mut nl, over, vid).map_err(DatalinkError::Usage)?;
    }
    if !props.is_empty() && lower.kind.as_deref() != Some("bridge") {
        return Err(DatalinkError::Usage(format!(
            "'{over}' is not an etherstub: link properties (-p) need a VNIC over an etherstub"
        )));
    }
    let mac = match mac {
        None | Some("auto") | Some("random") => names::mac_from_seed(&format!(
            "vnic/{name}/{}/{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        )),
        Some(m) => parse_mac(m)?,
    };
    let mac = format_mac(&mac);
    if let Some(l) = nl
        .links()?
        .into_iter()
        .find(|l| l.mac.as_deref() == Some(&mac))
    {
        return Err(DatalinkError::Usage(format!(
            "MAC address {mac} is already used by link '{}'",
            l.name
        )));
    }
    if let Some((_, who)) = network::zone_macs(store, "")
        .into_iter()
        .find(|(m, _)| *m == mac)
    {
        return Err(DatalinkError::Usage(format!(
            "MAC address {mac} is already used by {who}"
        )));
    }
    if let Some(v) = d.vnics.iter().find(|v| v.mac == mac) {
        return Err(DatalinkError::Usage(format!(
            "MAC address {mac} is already used by VNIC '{}'",
            v.name
        )));
    }
    let v = Vnic {
        name: name.to_string(),
        over: over.to_string(),
        mac,
        props,
        vlan,
    };
    make_vnic(&mut nl, &v)?;
    d.vnics.push(v.clone());
    if let Err(e) = save(store, &d) {
        remove_props(&mut nl, name);
        let _ = nl.delete_link(name);
        let _ = nl.delete_if_exists(&vnic_port_name(name));
        return Err(e);
    }
    Ok(v)
}

/// `dladm set-linkprop -p PROPS LINK` (`reset`: `reset-linkprop [-p NAMES] LINK`, every
/// property when `names` is empty). The record and the enforcement change together.
pub fn set_linkprop(store: &Store, link: &str, props: &str) -> Result<()> {
    let new = parse_props(props)?;
    update_props(store, link, |p| p.extend(new))
}

pub fn reset_linkprop(store: &Store, link: &str, names: &[String]) -> Result<()> {
    for n in names {
        if n != "mtu" && !LINK_PROPS.iter().any(|(p, _, _)| p == n) {
            check_prop(n, "")?;
        }
    }
    update_props(store, link, |p| {
        if names.is_empty() {
            p.clear();
        } else {
            p.retain(|k, _| !names.contains(k));
        }
    })
}

fn update_props(
    store: &Store,
    link: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> Result<()> {
    let _l = lock(store)?;
    let mut d = load(store)?;
    let v = d
        .vnics
        .iter_mut()
        .find(|v| v.name == link)
        .ok_or_else(|| DatalinkError::Usage(format!("VNIC '{link}' does not exist")))?;
    let old = v.clone();
    change(&mut v.props);
    let new = v.clone();
    let mut nl = Netlink::open()?;
    if old.props.contains_key("mtu") && !new.props.contains_key("mtu") {
        // Back to the MTU a new VNIC gets: 1500 over an etherstub (whose bridge follows its
        // ports' MTU), the lower link's over another link.
        let lower = match d.etherstubs.contains(&new.over) {
            true => MTU_DEFAULT,
            false => nl.link(&new.over)?.map_or(MTU_DEFAULT, |l| l.mtu),
        };
        set_vnic_mtu(&mut nl, &new, lower)?;
    }
    if let Err(e) = apply_props(&mut nl, &new) {
        let _ = apply_props(&mut nl, &old);
        return Err(e);
    }
    if let Err(e) = save(store, &d) {
        let _ = apply_props(&mut nl, &old);
        return Err(e);
    }
    Ok(())
}

/// `dladm delete-vnic NAME`.
pub fn delete_vnic(store: &Store, name: &str) -> Result<()> {
    let _l = lock(store)?;
    let mut d = load(store)?;
    if !d.vnics.iter().any(|v| v.name == name) {
        return Err(DatalinkError::Usage(format!(
            "VNIC '{name}' does not exist"
        )));
    }
    let mut nl = Netlink::open()?;
    if nl.link(name)?.is_none() && nl.link(&vnic_port_name(name))?.is_some() {
        return Err(DatalinkError::Usage(format!(
            "VNIC '{name}' is in use by a running zone (net physical={name})"
        )));
    }
    remove_props(&mut nl, name);
    nl.delete_if_exists(name)?;
    nl.delete_if_exists(&vnic_port_name(name))?;
    d.vnics.retain(|v| v.name != name);
    save(store, &d)
}

/// Make again every recorded etherstub and VNIC that is missing (host boot), and enforce the
/// link properties of those present. Returns what was made.
pub fn restore(store: &Store) -> Result<Vec<String>> {
    let _l = lock(store)?;
    let d = load(store)?;
    let mut nl = Netlink::open()?;
    let mut made = Vec::new();
    for s in &d.etherstubs {
        if nl.link(s)?.is_none() {
            create_stub_link(&mut nl, s)?;
            made.push(s.clone());
        }
    }
    for v in &d.vnics {
        // A VNIC lent to a zone is not on the host, but its bridge port is.
        if nl.link(&v.name)?.is_none() && nl.link(&vnic_port_name(&v.name))?.is_none() {
            make_vnic(&mut nl, v)?;
            made.push(v.name.clone());
        } else {
            // Present: make sure its properties are enforced (idempotent).
            apply_props(&mut nl, v)?;
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("runz-test-dl-{}", std::process::id()));
        let store = Store::open(Some(&dir)).unwrap();
        assert_eq!(load(&store).unwrap(), Datalinks::default());
        fs::create_dir_all(store.config_dir()).unwrap();
        let d = Datalinks {
            etherstubs: vec!["stub0".into()],
            vnics: vec![Vnic {
                name: "vnic0".into(),
                over: "stub0".into(),
                mac: "02:00:00:00:00:01".into(),
                props: BTreeMap::new(),
                vlan: Some(5),
            }],
        };
        save(&store, &d).unwrap();
        assert_eq!(load(&store).unwrap(), d);
        assert!(is_etherstub(&store, "stub0"));
        assert!(!is_etherstub(&store, "vnic0"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn link_properties_parse_and_check() {
        let p = parse_props("maxbw=10m,protection=mac-nospoof,ip-nospoof,allowed-ips=10.0.0.5,10.0.0.6,priority=high").unwrap();
        assert_eq!(p["maxbw"], "10M");
        assert_eq!(p["protection"], "mac-nospoof,ip-nospoof");
        assert_eq!(p["allowed-ips"], "10.0.0.5,10.0.0.6");
        assert_eq!(p["priority"], "high");
        let e = |t: &str| parse_props(t).unwrap_err().to_string();
        assert!(e("maxbw=10x").contains("\"10x\""), "{}", e("maxbw=10x"));
        assert!(e("priority=urgent").contains("low, medium or high"));
        assert!(e("protection=bogus").contains("'bogus'"));
        assert!(e("allowed-ips=10.0.0.300").contains("10.0.0.300"));
        assert!(e("colour=red").contains("unknown link property 'colour'"));
        assert!(e("10M").contains("NAME=VALUE"));
    }

    #[test]
    fn port_names_fit() {
        let p = vnic_port_name("a23456789012345");
        assert_eq!(p.len(), 12);
        assert_ne!(p, vnic_port_name("vnic1"));
    }
}
