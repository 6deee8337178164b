//! Links, addresses and routes over a [`Netlink`] socket (in that socket's namespace).
//!
//! Links are addressed by name: the kernel resolves IFLA_IFNAME for set and delete, so no
//! index lookup races with a rename.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::names::{check_ifname, format_mac};
use crate::netlink::{attrs, Msg, Netlink, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use crate::{NetError, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_MACVLAN_MODE: u16 = 1;
const MACVLAN_MODE_BRIDGE: u32 = 4;
const IFLA_VLAN_ID: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 1;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, `macvlan`, ... (`None` for physical and loopback devices).
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub mtu: u32,
    pub up: bool,
    /// The bridge this link is a port of.
    pub master: Option<u32>,
    /// The lower link (macvlan) or peer index (veth; in the peer's namespace).
    pub lower: Option<u32>,
}

/// An address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = libc::AF_UNSPEC as u8;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// An ifinfomsg of address family `family` for link `index` (AF_BRIDGE for port VLANs).
pub(crate) fn ifinfomsg_family(family: u8, index: i32) -> [u8; 16] {
    let mut h = ifinfomsg(index, 0, 0);
    h[0] = family;
    h
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn family(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// ENODEV/EEXIST as the typed errors a user reads; anything else as the kernel said it.
fn link_err(e: NetError, name: &str) -> NetError {
    match e {
        NetError::Kernel {
            errno: nix::Error::ENODEV,
            ..
        } => NetError::NoSuchLink(name.to_string()),
        NetError::Kernel {
            errno: nix::Error::EEXIST,
            op,
            ..
        } if op.starts_with("create") => NetError::LinkExists(name.to_string()),
        e => e,
    }
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let hdr = payload.get(..16)?;
    let index = i32::from_ne_bytes(hdr[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(hdr[8..12].try_into().ok()?);
    let mut link = Link {
        index: u32::try_from(index).ok()?,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        up: flags & IFF_UP != 0,
        master: None,
        lower: None,
    };
    for a in attrs(&payload[16..]) {
        match a.ty {
            IFLA_IFNAME => link.name = a.str()?.to_string(),
            IFLA_ADDRESS if a.data.len() == 6 => link.mac = Some(format_mac(a.data)),
            IFLA_MTU => link.mtu = a.u32()?,
            IFLA_MASTER => link.master = a.u32(),
            IFLA_LINK => link.lower = a.u32(),
            IFLA_LINKINFO => {
                link.kind = attrs(a.data)
                    .into_iter()
                    .find(|i| i.ty == IFLA_INFO_KIND)
                    .and_then(|i| i.str().map(str::to_string));
            }
            _ => {}
        }
    }
    Some(link)
}

impl Netlink {
    /// The link called `name`, or `None`.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_GETLINK, NLM_F_ACK);
        m.header(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        match self.request("get link", name, &mut m) {
            Ok(replies) => Ok(replies
                .iter()
                .filter(|r| r.ty == RTM_NEWLINK)
                .find_map(|r| parse_link(&r.payload))),
            Err(NetError::Kernel {
                errno: nix::Error::ENODEV,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link called `name`, which must exist.
    pub fn require(&mut self, name: &str) -> Result<Link> {
        self.link(name)?
            .ok_or_else(|| NetError::NoSuchLink(name.to_string()))
    }

    /// Every link in the socket's namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.header(&ifinfomsg(0, 0, 0));
        Ok(self
            .request("list links", "*", &mut m)?
            .iter()
            .filter(|r| r.ty == RTM_NEWLINK)
            .filter_map(|r| parse_link(&r.payload))
            .collect())
    }

    fn new_link(&mut self, op: &'static str, name: &str, m: &mut Msg) -> Result<()> {
        self.request(op, name, m)
            .map(drop)
            .map_err(|e| link_err(e, name))
    }

    fn create_msg(name: &str, mac: Option<[u8; 6]>) -> Msg {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        m.header(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m
    }

    /// A bridge (an illumos etherstub: a switch with no uplink).
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let mut m = Self::create_msg(name, None);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end_nest(li);
        self.new_link("create bridge", name, &mut m)
    }

    /// A link of a kind with no options (`ifb`, `dummy`, ...).
    pub fn create_kind(&mut self, name: &str, kind: &str) -> Result<()> {
        check_ifname(name)?;
        let mut m = Self::create_msg(name, None);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, kind);
        m.end_nest(li);
        self.new_link("create link", name, &mut m)
    }

    /// An 802.1q VLAN link `name` with id `vid` over `lower`.
    pub fn create_vlan(&mut self, name: &str, lower: &str, vid: u16) -> Result<()> {
        check_ifname(name)?;
        let lower_link = self.require(lower)?;
        let mut m = Self::create_msg(name, None);
        m.attr_u32(IFLA_LINK, lower_link.index);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "vlan");
        let data = m.begin_nest(IFLA_INFO_DATA);
        m.attr(IFLA_VLAN_ID, &vid.to_ne_bytes());
        m.end_nest(data);
        m.end_nest(li);
        self.new_link("create vlan", name, &mut m)
    }

    /// A veth pair `name` (here) and `peer`, the peer created directly in the namespace of
    /// `peer_netns` when given, with `peer_mac` when given.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<()> {
        check_ifname(name)?;
        check_ifname(peer)?;
        let mut m = Self::create_msg(name, None);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin_nest(IFLA_INFO_DATA);
        // VETH_INFO_PEER carries an ifinfomsg followed by the peer's own attributes.
        let p = m.begin_nest(VETH_INFO_PEER);
        m.header(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, peer);
        if let Some(mac) = peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        if let Some(fd) = peer_netns {
            m.attr_u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
        }
        m.end_nest(p);
        m.end_nest(data);
        m.end_nest(li);
        self.new_link("create veth", name, &mut m)
    }

    /// A macvlan in bridge mode over `lower` (VNICs on the same lower link see each other).
    pub fn create_macvlan(&mut self, name: &str, lower: &str, mac: Option<[u8; 6]>) -> Result<()> {
        check_ifname(name)?;
        let lower_link = self.require(lower)?;
        let mut m = Self::create_msg(name, mac);
        m.attr_u32(IFLA_LINK, lower_link.index);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "macvlan");
        let data = m.begin_nest(IFLA_INFO_DATA);
        m.attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
        m.end_nest(data);
        m.end_nest(li);
        self.new_link("create macvlan", name, &mut m)
    }

    /// Delete a link (a veth's peer goes with it).
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK);
        m.header(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        self.new_link("delete link", name, &mut m)
    }

    /// Delete a link if it exists; true when one was deleted.
    pub fn delete_if_exists(&mut self, name: &str) -> Result<bool> {
        match self.delete_link(name) {
            Ok(()) => Ok(true),
            Err(NetError::NoSuchLink(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn set(
        &mut self,
        op: &'static str,
        name: &str,
        flags: u32,
        change: u32,
        attr: Option<(u16, &[u8])>,
    ) -> Result<()> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK);
        m.header(&ifinfomsg(0, flags, change))
            .attr_str(IFLA_IFNAME, name);
        if let Some((ty, data)) = attr {
            m.attr(ty, data);
        }
        self.new_link(op, name, &mut m)
    }

    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        let op = if up { "set link up" } else { "set link down" };
        self.set(op, name, if up { IFF_UP } else { 0 }, IFF_UP, None)
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        self.set(
            "set mtu of",
            name,
            0,
            0,
            Some((IFLA_MTU, &mtu.to_ne_bytes())),
        )
    }

    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        self.set("set MAC address of", name, 0, 0, Some((IFLA_ADDRESS, &mac)))
    }

    /// Make `name` a port of bridge `master`, or of none.
    pub fn set_master(&mut self, name: &str, master: Option<&str>) -> Result<()> {
        let index = match master {
            Some(b) => self.require(b)?.index,
            None => 0,
        };
        self.set(
            "set master of",
            name,
            0,
            0,
            Some((IFLA_MASTER, &index.to_ne_bytes())),
        )
    }

    /// Move `name` into the network namespace open at `netns`.
    pub fn move_to_netns(&mut self, name: &str, netns: BorrowedFd) -> Result<()> {
        let fd = netns.as_raw_fd() as u32;
        self.set(
            "move to namespace",
            name,
            0,
            0,
            Some((IFLA_NET_NS_FD, &fd.to_ne_bytes())),
        )
    }

    /// Move the link with index `index` (whatever it is called now) into the namespace open
    /// at `netns`, taking the name `name` there when its current one is taken.
    pub fn move_index_to_netns(&mut self, index: u32, netns: BorrowedFd, name: &str) -> Result<()> {
        check_ifname(name)?;
        let fd = netns.as_raw_fd() as u32;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK);
        m.header(&ifinfomsg(index as i32, 0, 0))
            .attr_str(IFLA_IFNAME, name)
            .attr_u32(IFLA_NET_NS_FD, fd);
        self.request("move to namespace", name, &mut m)
            .map(drop)
            .map_err(|e| link_err(e, name))
    }

    pub fn rename(&mut self, name: &str, new: &str) -> Result<()> {
        check_ifname(new)?;
        let mut d = new.as_bytes().to_vec();
        d.push(0);
        let link = self.require(name)?;
        let mut m = Msg::new(RTM_SETLINK, NLM_F_ACK);
        m.header(&ifinfomsg(link.index as i32, 0, 0))
            .attr(IFLA_IFNAME, &d);
        self.request("rename", name, &mut m)
            .map(drop)
            .map_err(|e| link_err(e, name))
    }

    /// Add `addr/prefix_len` to link `name`.
    pub fn add_address(&mut self, name: &str, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let link = self.require(name)?;
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let mut h = [0u8; 8];
        h[0] = family(addr);
        h[1] = prefix_len;
        h[3] = RT_SCOPE_UNIVERSE;
        h[4..8].copy_from_slice(&link.index.to_ne_bytes());
        m.header(&h)
            .attr(IFA_LOCAL, &ip_bytes(addr))
            .attr(IFA_ADDRESS, &ip_bytes(addr));
        let target = format!("{addr}/{prefix_len} on {name}");
        self.request("add address", &target, &mut m).map(drop)
    }

    /// The addresses of every link (or of the link with index `only`).
    pub fn addresses(&mut self, only: Option<u32>) -> Result<Vec<Address>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.header(&[0u8; 8]);
        let mut out = Vec::new();
        for r in self.request("list addresses", "*", &mut m)? {
            let Some(h) = r.payload.get(..8) else {
                continue;
            };
            let index = u32::from_ne_bytes(h[4..8].try_into().expect("4 bytes"));
            if only.is_some_and(|i| i != index) {
                continue;
            }
            let a = attrs(&r.payload[8..]);
            let raw = a
                .iter()
                .find(|x| x.ty == IFA_LOCAL)
                .or_else(|| a.iter().find(|x| x.ty == IFA_ADDRESS));
            let addr = match raw.map(|x| x.data) {
                Some(d) if d.len() == 4 => IpAddr::from(<[u8; 4]>::try_from(d).expect("4")),
                Some(d) if d.len() == 16 => IpAddr::from(<[u8; 16]>::try_from(d).expect("16")),
                _ => continue,
            };
            out.push(Address {
                index,
                addr,
                prefix_len: h[1],
            });
        }
        Ok(out)
    }

    /// A route to `dst/dst_len` (0.0.0.0/0 for the default route) via `gateway`, or directly
    /// on link `dev` when there is no gateway.
    pub fn add_route(
        &mut self,
        dst: IpAddr,
        dst_len: u8,
        gateway: Option<IpAddr>,
        dev: Option<&str>,
    ) -> Result<()> {
        let oif = match dev {
            Some(d) => Some(self.require(d)?.index),
            None => None,
        };
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let mut h = [0u8; 12];
        h[0] = family(dst);
        h[1] = dst_len;
        h[4] = RT_TABLE_MAIN;
        h[5] = RTPROT_BOOT;
        h[6] = if gateway.is_some() {
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        };
        h[7] = RTN_UNICAST;
        m.header(&h);
        if dst_len > 0 {
            m.attr(RTA_DST, &ip_bytes(dst));
        }
        if let Some(gw) = gateway {
            m.attr(RTA_GATEWAY, &ip_bytes(gw));
        }
        if let Some(i) = oif {
            m.attr_u32(RTA_OIF, i);
        }
        let target = match gateway {
            Some(gw) => format!("{dst}/{dst_len} via {gw}"),
            None => format!("{dst}/{dst_len}"),
        };
        self.request("add route", &target, &mut m).map(drop)
    }

    /// The default route via `gateway` (IPv4 or IPv6 by the gateway's family).
    pub fn add_default_route(&mut self, gateway: IpAddr) -> Result<()> {
        let any = match gateway {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u8; 16]),
        };
        self.add_route(any, 0, Some(gateway), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_replies_parse() {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.header(&ifinfomsg(7, IFF_UP, 0))
            .attr_str(IFLA_IFNAME, "net0")
            .attr_u32(IFLA_MTU, 1400)
            .attr(IFLA_ADDRESS, &[2, 8, 0x20, 1, 2, 3])
            .attr_u32(IFLA_MASTER, 3);
        let li = m.begin_nest(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.end_nest(li);
        // The payload after the netlink header is what parse_link sees.
        let bytes = m.bytes_for_test()[crate::netlink::NLMSG_HDRLEN..].to_vec();
        let l = parse_link(&bytes).unwrap();
        assert_eq!(
            l,
            Link {
                index: 7,
                name: "net0".into(),
                kind: Some("veth".into()),
                mac: Some("02:08:20:01:02:03".into()),
                mtu: 1400,
                up: true,
                master: Some(3),
                lower: None,
            }
        );
    }

    #[test]
    fn kernel_errors_become_link_errors() {
        let e = NetError::Kernel {
            op: "create veth",
            target: "x".into(),
            errno: nix::Error::EEXIST,
            msg: None,
        };
        assert_eq!(link_err(e, "x").to_string(), "link 'x' already exists");
        let e = NetError::Kernel {
            op: "delete link",
            target: "x".into(),
            errno: nix::Error::ENODEV,
            msg: None,
        };
        assert_eq!(link_err(e, "x").to_string(), "link 'x' does not exist");
    }
}
