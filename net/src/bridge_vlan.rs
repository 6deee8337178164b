//! VLANs on a VLAN-aware bridge: an etherstub with `vlan_filtering` on, and a port that is
//! in one VLAN only (PVID + untagged), so the zone behind it sends and receives plain
//! frames while the bridge keeps VLANs apart. Ports without a VLAN stay in the default VLAN 1.
//!
//! Support is found by asking: a kernel without CONFIG_BRIDGE_VLAN_FILTERING refuses to turn
//! filtering on (EOPNOTSUPP), which [`is_unsupported`] recognises.

use crate::link::ifinfomsg_family;
use crate::netlink::{Msg, Netlink, NLM_F_ACK};
use crate::{NetError, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_SETLINK: u16 = 19;
const IFLA_LINKINFO: u16 = 18;
const IFLA_AF_SPEC: u16 = 26;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_BR_VLAN_FILTERING: u16 = 7;
const IFLA_BRIDGE_VLAN_INFO: u16 = 2;
const BRIDGE_VLAN_INFO_PVID: u16 = 1 << 1;
const BRIDGE_VLAN_INFO_UNTAGGED: u16 = 1 << 2;
/// The bridge's default PVID, which every new port gets.
const DEFAULT_VLAN: u16 = 1;

/// True when `e` says the kernel has no bridge VLAN filtering.
pub fn is_unsupported(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Kernel {
            errno: nix::Error::EOPNOTSUPP,
            ..
        }
    )
}

fn vlan_info(flags: u16, vid: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&flags.to_ne_bytes());
    b[2..].copy_from_slice(&vid.to_ne_bytes());
    b
}

impl Netlink {
    /// Turn VLAN filtering on (or off) on bridge `bridge` (changelink of an existing bridge).
    pub fn set_vlan_filtering(&mut self, bridge: &str, on: bool) -> Result<()> {
        let link = self.require(bridge)?;
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
        m.header(&ifinfomsg_family(libc::AF_UNSPEC as u8, link.index as i32));
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        let data = m.begin_nest(IFLA_INFO_DATA);
        m.attr(IFLA_BR_VLAN_FILTERING, &[u8::from(on)]);
        m.end_nest(data);
        m.end_nest(li);
        self.request("set vlan_filtering of bridge", bridge, &mut m)
            .map(drop)
    }

    /// Whether this kernel has bridge VLAN filtering: a bridge `probe` is made, asked to
    /// filter, and removed.
    pub fn probe_vlan_filtering(&mut self, probe: &str) -> Result<bool> {
        self.create_bridge(probe)?;
        let r = self.set_vlan_filtering(probe, true);
        let _ = self.delete_link(probe);
        match r {
            Ok(()) => Ok(true),
            Err(e) if is_unsupported(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Put bridge port `port` in VLAN `vid` only: PVID and untagged egress, out of VLAN 1.
    /// Its bridge must filter VLANs ([`Netlink::set_vlan_filtering`]).
    pub fn set_port_vlan(&mut self, port: &str, vid: u16) -> Result<()> {
        let link = self.require(port)?;
        self.port_vlan(
            RTM_SETLINK,
            "add port to VLAN",
            port,
            link.index,
            BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED,
            vid,
        )?;
        if vid != DEFAULT_VLAN {
            self.port_vlan(
                RTM_DELLINK,
                "remove port from VLAN 1",
                port,
                link.index,
                0,
                DEFAULT_VLAN,
            )?;
        }
        Ok(())
    }

    /// Add (RTM_SETLINK) or remove (RTM_DELLINK) VLAN `vid` on bridge port `index`.
    fn port_vlan(
        &mut self,
        ty: u16,
        op: &'static str,
        port: &str,
        index: u32,
        flags: u16,
        vid: u16,
    ) -> Result<()> {
        let mut m = Msg::new(ty, NLM_F_ACK);
        m.header(&ifinfomsg_family(libc::AF_BRIDGE as u8, index as i32));
        let spec = m.begin_nest(IFLA_AF_SPEC);
        m.attr(IFLA_BRIDGE_VLAN_INFO, &vlan_info(flags, vid));
        m.end_nest(spec);
        let target = format!("{port} vid {vid}");
        self.request(op, &target, &mut m).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_info_is_flags_then_vid() {
        let b = vlan_info(BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED, 5);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 6);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 5);
    }

    #[test]
    fn unsupported_is_eopnotsupp() {
        let e = NetError::Kernel {
            op: "x",
            target: "y".into(),
            errno: nix::Error::EOPNOTSUPP,
            msg: None,
        };
        assert!(is_unsupported(&e));
        assert!(!is_unsupported(&NetError::NoSuchLink("z".into())));
    }
}
