//! Virtual networking for zones, over rtnetlink with a plain synchronous socket.
//!
//! - `netlink`: the socket, message building and the ack/dump protocol (raw, no crate).
//! - `link`: bridges ("etherstubs"), veth pairs, macvlans; MAC, MTU, up/down, master, netns;
//!   IPv4/IPv6 addresses and routes.
//! - `bridge_vlan`: VLAN filtering on an etherstub bridge, a port's VLAN (PVID, untagged).
//! - `netns`: named network namespaces as bind-mounted nsfs files, and netlink sockets opened
//!   inside a namespace by a forked child (the caller never changes its own namespace, and
//!   needs no threads); sysctls written there the same way.
//! - `names`: interface-name and MAC validation.
//! - `tc`: bandwidth caps (tbf; ingress through an ifb device), over rtnetlink.
//! - `tap`: persistent tap devices for virtual machines, owned by an unprivileged user, made
//!   inside a network namespace by a forked child.
//! - `nft`: link protection (anti-spoofing) as a netdev-ingress nftables table, through
//!   `nft -j` (JSON).

pub mod bridge_vlan;
pub mod link;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod tap;
pub mod tc;

pub use link::{Address, Link};
pub use netlink::Netlink;

use std::path::PathBuf;

/// What went wrong, naming the link, namespace or value involved.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request the kernel refused.
    #[error("{op} '{target}': {}{}", .errno.desc(), ext_msg(.msg))]
    Kernel {
        op: &'static str,
        target: String,
        errno: nix::Error,
        msg: Option<String>,
    },
    #[error("link '{0}' does not exist")]
    NoSuchLink(String),
    #[error("link '{0}' already exists")]
    LinkExists(String),
    #[error("interface name '{name}': {why}")]
    BadName { name: String, why: &'static str },
    #[error(
        "MAC address '{0}': expected six hex bytes like 02:08:20:ab:cd:ef, not multicast or zero"
    )]
    BadMac(String),
    #[error("address '{0}': expected an IP address with a prefix length like 10.0.0.5/24")]
    BadAddress(String),
    #[error("netlink socket: {0}")]
    Socket(nix::Error),
    #[error("netlink: malformed reply ({0})")]
    Protocol(&'static str),
    #[error("nft: {0}")]
    Nft(String),
    #[error("network namespace {path}: {msg}")]
    Netns { path: PathBuf, msg: String },
}

fn ext_msg(m: &Option<String>) -> String {
    m.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

pub type Result<T> = std::result::Result<T, NetError>;
