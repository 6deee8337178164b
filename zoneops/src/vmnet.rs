//! A kvm zone's VM NICs: one per anet, in the order of the zone's anets.
//!
//! Inside the zone's network namespace the anet's zone end (`net0`, the veth peer of the
//! host end on the etherstub) becomes a port of a bridge `vmbrN`, beside a persistent tap
//! `vmtapN` owned by the zone's qemu user; qemu attaches to the tap by name, unprivileged.
//! Frames go VM ⇄ tap ⇄ vmbrN ⇄ zone end ⇄ host end (maxbw, anti-spoofing) ⇄ etherstub.
//!
//! The VM's MAC is the anet's mac-address (the one the host end's mac-nospoof allows and
//! `dladm show-vnic` shows). The zone end, only a bridge port, gets a MAC of its own (locally
//! administered, derived from the zone and link names): a port's MAC is a local address of
//! the bridge, so sharing the VM's would swallow the VM's inbound frames. The zone end, the
//! tap and the bridge have no address and IPv6 off: the zone itself sends nothing on them.

use std::os::fd::BorrowedFd;
use std::path::Path;

use zones::model::{Brand, Zone};
use zones_net::names::{self, format_mac};
use zones_net::{netns, tap, NetError, Netlink};

/// The qemu user of a kvm zone: uid and gid 100 inside the zone's user namespace.
pub const VM_USER_ID: u32 = 100;

/// The host uid and gid of a kvm zone's qemu user, for a zone whose id range starts at
/// `id_base` (0 for a zone without a user namespace).
pub fn vm_owner(id_base: u32) -> (u32, u32) {
    (id_base + VM_USER_ID, id_base + VM_USER_ID)
}

/// One NIC of a kvm zone's VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmNic {
    /// qemu's netdev id: `net0`, `net1`, ...
    pub id: String,
    /// The tap in the zone's network namespace: `vmtap0`, ...
    pub tap: String,
    /// The bridge joining the tap to the anet's zone end: `vmbr0`, ...
    pub bridge: String,
    /// The anet's linkname: its zone end, a port of `bridge`.
    pub link: String,
    /// The VM's MAC: the anet's mac-address, `02:08:20:..`.
    pub mac: String,
    /// The zone end's own MAC (see the module's note).
    pub port_mac: String,
    /// `virtio` (qemu's virtio-net-pci).
    pub model: String,
    /// The anet's mtu, told to the guest (virtio-net `host_mtu`) and set on the tap.
    pub mtu: Option<u32>,
    /// The anet's allowed-address (`10.0.0.5/24`) and defrouter: the host end lets only
    /// these through (ip-nospoof); the guest configures them itself.
    pub address: Option<String>,
    pub gateway: Option<String>,
}

/// The VM NICs of `zone`: one per anet when its brand is kvm, none otherwise (or when its
/// anets are invalid: `network::check` says why).
pub fn vm_nics(zone: &Zone) -> Vec<VmNic> {
    if zone.brand != Brand::Kvm {
        return Vec::new();
    }
    let Ok(plans) = super::network::plan(zone) else {
        return Vec::new();
    };
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| VmNic {
            id: format!("net{i}"),
            tap: format!("vmtap{i}"),
            bridge: format!("vmbr{i}"),
            link: p.linkname.clone(),
            mac: format_mac(&p.mac),
            port_mac: format_mac(&port_mac(&zone.zonename, &p.linkname, p.mac)),
            model: "virtio".into(),
            mtu: p.mtu,
            address: p.address.map(|(a, l)| format!("{a}/{l}")),
            gateway: p.defrouter.map(|g| g.to_string()),
        })
        .collect()
}

/// qemu's arguments for `nics`: a tap netdev and a NIC with the anet's MAC for each.
pub fn vm_nic_qemu_args(nics: &[VmNic]) -> Vec<String> {
    let mut args = Vec::new();
    for n in nics {
        args.push("-netdev".into());
        args.push(format!(
            "tap,id={},ifname={},script=no,downscript=no",
            n.id, n.tap
        ));
        let mut dev = format!(
            "{},netdev={},mac={},romfile=",
            device_of(&n.model),
            n.id,
            n.mac
        );
        if let Some(mtu) = n.mtu {
            dev.push_str(&format!(",host_mtu={mtu}"));
        }
        args.push("-device".into());
        args.push(dev);
    }
    args
}

/// qemu's device for a NIC model.
fn device_of(model: &str) -> &str {
    match model {
        "virtio" => "virtio-net-pci",
        other => other,
    }
}

/// The MAC of an anet's zone end in a kvm zone: locally administered, stable, never the
/// VM's.
pub(super) fn port_mac(zone: &str, linkname: &str, vm_mac: [u8; 6]) -> [u8; 6] {
    let mut m = names::mac_from_seed(&format!("{zone}/{linkname}/vm-port"));
    if m == vm_mac {
        m[5] ^= 1;
    }
    m
}

/// Make `nic`'s bridge and tap (owned by `owner`, host ids) in the zone's namespace open at
/// `ns` (file `file`; `inside` a netlink socket there), its zone end enslaved, all up.
pub(super) fn set_up(
    inside: &mut Netlink,
    ns: BorrowedFd,
    file: &Path,
    nic: &VmNic,
    owner: (u32, u32),
) -> Result<(), NetError> {
    let port_mac = names::parse_mac(&nic.port_mac)?;
    netns::disable_ipv6(ns, file, &nic.link)?;
    inside.create_bridge(&nic.bridge)?;
    netns::disable_ipv6(ns, file, &nic.bridge)?;
    inside.set_mac(&nic.bridge, port_mac)?;
    tap::create_tap(ns, file, &nic.tap, owner.0, owner.1)?;
    netns::disable_ipv6(ns, file, &nic.tap)?;
    if let Some(mtu) = nic.mtu {
        inside.set_mtu(&nic.tap, mtu)?;
    }
    inside.set_master(&nic.link, Some(&nic.bridge))?;
    inside.set_master(&nic.tap, Some(&nic.bridge))?;
    for l in [&nic.link, &nic.tap, &nic.bridge] {
        inside.set_up(l, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zones::model::Anet;

    fn kvm_zone() -> Zone {
        let mut z = Zone::new("vm");
        z.brand = Brand::Kvm;
        z.anet = vec![
            Anet {
                linkname: Some("net0".into()),
                lower_link: Some("stub0".into()),
                mac_address: Some("2:8:20:1:2:3".into()),
                allowed_address: Some("10.0.0.5/24".into()),
                // No defrouter: a kvm zone's anet refuses one (the guest sets its own route).
                ..Default::default()
            },
            Anet {
                linkname: Some("net1".into()),
                lower_link: Some("stub1".into()),
                mtu: Some(1400),
                ..Default::default()
            },
        ];
        z
    }

    #[test]
    fn one_nic_per_anet_with_the_anets_mac() {
        let nics = vm_nics(&kvm_zone());
        assert_eq!(nics.len(), 2);
        let n = &nics[0];
        assert_eq!(
            (
                n.id.as_str(),
                n.tap.as_str(),
                n.bridge.as_str(),
                n.link.as_str()
            ),
            ("net0", "vmtap0", "vmbr0", "net0")
        );
        assert_eq!(n.mac, "02:08:20:01:02:03");
        assert_ne!(n.port_mac, n.mac);
        assert_eq!(n.address.as_deref(), Some("10.0.0.5/24"));
        assert_eq!(n.gateway, None);
        // auto: the MAC plan_anet derives, the one the host end allows.
        assert_eq!(
            nics[1].mac,
            format_mac(&names::mac_from_seed("vm/net1")),
            "auto MAC"
        );
        assert_eq!(nics[1].tap, "vmtap1");
        let mut linux = kvm_zone();
        linux.brand = Brand::Linux;
        assert!(vm_nics(&linux).is_empty());
    }

    #[test]
    fn qemu_args_name_the_tap_and_the_mac() {
        let args = vm_nic_qemu_args(&vm_nics(&kvm_zone()));
        assert_eq!(
            args[..4],
            [
                "-netdev",
                "tap,id=net0,ifname=vmtap0,script=no,downscript=no",
                "-device",
                "virtio-net-pci,netdev=net0,mac=02:08:20:01:02:03,romfile=",
            ]
        );
        assert!(args[7].ends_with(",host_mtu=1400"), "{}", args[7]);
        assert!(vm_nic_qemu_args(&[]).is_empty());
    }

    #[test]
    fn the_port_mac_is_local_and_never_the_vms() {
        let vm = [2, 8, 0x20, 1, 2, 3];
        let m = port_mac("vm", "net0", vm);
        assert_eq!(m[0] & 3, 2, "locally administered unicast");
        assert_ne!(m, vm);
        assert_ne!(port_mac("vm", "net0", m), m);
    }
}
