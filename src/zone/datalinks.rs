//! Datalinks made with dladm: etherstubs (bridges with no uplink) and VNICs, recorded in
//! `ALTROOT/etc/zones/datalinks` (JSON, written atomically under `datalinks.lock`) so they can
//! be made again when missing (at zone boot, or by the host service after a reboot).
//!
//! A VNIC over an etherstub is a veth pair whose other end (`vp` + hash) is a port of the
//! bridge; a VNIC over any other link is a macvlan in bridge mode.

use std::fs;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use zones::store::Store;
use zones_net::names::{self, check_ifname, format_mac, parse_mac};
use zones_net::{NetError, Netlink};

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

fn make_vnic(nl: &mut Netlink, v: &Vnic) -> Result<()> {
    let mac = parse_mac(&v.mac)?;
    let lower = nl.require(&v.over)?;
    if lower.kind.as_deref() == Some("bridge") {
        let port = vnic_port_name(&v.name);
        nl.create_veth(&port, &v.name, None, Some(mac))?;
        let wired = nl
            .set_master(&port, Some(&v.over))
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

/// `dladm create-vnic -l LINK [-m MAC] NAME`.
pub fn create_vnic(store: &Store, over: &str, name: &str, mac: Option<&str>) -> Result<Vnic> {
    let _l = lock(store)?;
    let mut d = load(store)?;
    let mut nl = Netlink::open()?;
    taken(&d, &mut nl, name)?;
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
    let v = Vnic {
        name: name.to_string(),
        over: over.to_string(),
        mac,
    };
    make_vnic(&mut nl, &v)?;
    d.vnics.push(v.clone());
    if let Err(e) = save(store, &d) {
        let _ = nl.delete_link(name);
        return Err(e);
    }
    Ok(v)
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
    nl.delete_if_exists(name)?;
    nl.delete_if_exists(&vnic_port_name(name))?;
    d.vnics.retain(|v| v.name != name);
    save(store, &d)
}

/// Make again every recorded etherstub and VNIC that is missing (host boot). Returns what was
/// made.
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
        if nl.link(&v.name)?.is_none() {
            make_vnic(&mut nl, v)?;
            made.push(v.name.clone());
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
            }],
        };
        save(&store, &d).unwrap();
        assert_eq!(load(&store).unwrap(), d);
        assert!(is_etherstub(&store, "stub0"));
        assert!(!is_etherstub(&store, "vnic0"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn port_names_fit() {
        let p = vnic_port_name("a23456789012345");
        assert_eq!(p.len(), 12);
        assert_ne!(p, vnic_port_name("vnic1"));
    }
}
