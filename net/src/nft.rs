//! Link protection (illumos dladm `protection`) as nftables rules, through `nft -j` (JSON).
//!
//! Each protected link, a bridge port (the host-side end of a zone's veth, or a VNIC's port on
//! its etherstub), gets its own bridge-family table `zones_<link>` whose prerouting chain looks
//! at the frames that enter the bridge through that port (`iifname`): everything the zone
//! sends, in a place the zone cannot reach. Not a netdev ingress chain: a bandwidth cap
//! redirects the port's ingress to an ifb device in tc, before netdev ingress hooks run, so
//! those frames would never be seen there; the bridge sees every frame once shaped. Every
//! drop rule has a counter and a comment naming the protection it enforces:
//!
//! - `mac-nospoof`: Ethernet and ARP sender MAC must be the link's MAC.
//! - `ip-nospoof`: IPv4 and ARP sender addresses must be allowed (ARP probes from 0.0.0.0
//!   pass); IPv6 sources must be allowed, link-local or `::`; VLAN-tagged frames (which would
//!   carry unchecked addresses) are dropped.
//! - `dhcp-nospoof`: the zone may not act as a DHCP server (DHCPv4 from port 67, DHCPv6 from
//!   port 547).
//! - `restricted`: only IPv4, IPv6 and ARP frames pass.
//!
//! A link `priority` is a rule in the same chain that sets the packets' skb priority.
//!
//! The whole table is replaced in one nft transaction, so a link is never half-protected.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::names::format_mac;
use crate::{NetError, Result};

/// What to enforce on one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protection {
    /// mac-nospoof: the only source MAC allowed.
    pub mac: Option<[u8; 6]>,
    /// ip-nospoof: the only source addresses allowed (`Some(empty)` allows none).
    pub ips: Option<Vec<IpAddr>>,
    pub dhcp_nospoof: bool,
    pub restricted: bool,
    /// dladm `priority`: the skb priority given to what the link receives (`low` 1, `medium`
    /// 0, `high` 6: the pfifo_fast/prio bands of the uplink it is forwarded to).
    pub priority: Option<u32>,
}

impl Protection {
    pub fn is_empty(&self) -> bool {
        *self == Protection::default()
    }
}

/// The table protecting `link`.
pub fn table_name(link: &str) -> String {
    format!("zones_{link}")
}

/// A JSON string literal (interface names and comments are plain, but quote them properly).
fn q(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn payload(proto: &str, field: &str) -> String {
    format!(
        r#"{{"payload":{{"protocol":{},"field":{}}}}}"#,
        q(proto),
        q(field)
    )
}

fn matches(op: &str, left: &str, right: &str) -> String {
    format!(
        r#"{{"match":{{"op":{},"left":{left},"right":{right}}}}}"#,
        q(op)
    )
}

fn set(items: &[String]) -> String {
    format!(r#"{{"set":[{}]}}"#, items.join(","))
}

fn ether_type(t: &str) -> String {
    matches("==", &payload("ether", "type"), &q(t))
}

/// The rule objects (each `{"add":{"rule":...}}`) for `p` in `table`'s chain.
fn rules(table: &str, link: &str, p: &Protection) -> Vec<String> {
    let mut out = Vec::new();
    let from_link = matches("==", r#"{"meta":{"key":"iifname"}}"#, &q(link));
    let mut rule = |why: &str, exprs: Vec<String>| {
        let mut e = vec![from_link.clone()];
        e.extend(exprs);
        e.push(r#"{"counter":null}"#.into());
        e.push(r#"{"drop":null}"#.into());
        out.push(format!(
            r#"{{"add":{{"rule":{{"family":"bridge","table":{},"chain":"prerouting","comment":{},"expr":[{}]}}}}}}"#,
            q(table),
            q(why),
            e.join(",")
        ));
    };
    if p.restricted {
        rule(
            "restricted",
            vec![matches(
                "!=",
                &payload("ether", "type"),
                &set(&[q("ip"), q("arp"), q("ip6")]),
            )],
        );
    }
    if let Some(mac) = p.mac {
        let m = q(&format_mac(&mac));
        rule(
            "mac-nospoof",
            vec![matches("!=", &payload("ether", "saddr"), &m)],
        );
        rule(
            "mac-nospoof",
            vec![
                ether_type("arp"),
                matches("!=", &payload("arp", "saddr ether"), &m),
            ],
        );
    }
    if let Some(ips) = &p.ips {
        let v4: Vec<String> = ips
            .iter()
            .filter(|a| a.is_ipv4())
            .map(|a| q(&a.to_string()))
            .collect();
        let mut v6: Vec<String> = ips
            .iter()
            .filter(|a| a.is_ipv6())
            .map(|a| q(&a.to_string()))
            .collect();
        v6.push(q("::"));
        v6.push(r#"{"prefix":{"addr":"fe80::","len":10}}"#.into());
        let mut arp = v4.clone();
        arp.push(q("0.0.0.0"));
        rule(
            "ip-nospoof",
            vec![
                ether_type("arp"),
                matches("!=", &payload("arp", "saddr ip"), &set(&arp)),
            ],
        );
        let ip_rule = if v4.is_empty() {
            vec![ether_type("ip")]
        } else {
            vec![
                ether_type("ip"),
                matches("!=", &payload("ip", "saddr"), &set(&v4)),
            ]
        };
        rule("ip-nospoof", ip_rule);
        rule(
            "ip-nospoof",
            vec![
                ether_type("ip6"),
                matches("!=", &payload("ip6", "saddr"), &set(&v6)),
            ],
        );
        rule(
            "ip-nospoof",
            vec![matches(
                "==",
                &payload("ether", "type"),
                &set(&[q("8021q"), q("8021ad")]),
            )],
        );
    }
    if p.dhcp_nospoof {
        rule(
            "dhcp-nospoof",
            vec![
                ether_type("ip"),
                matches("==", &payload("udp", "sport"), "67"),
            ],
        );
        rule(
            "dhcp-nospoof",
            vec![
                ether_type("ip6"),
                matches("==", &payload("udp", "sport"), "547"),
            ],
        );
    }
    out
}

fn table_obj(table: &str) -> String {
    format!(r#"{{"table":{{"family":"bridge","name":{}}}}}"#, q(table))
}

/// The nft JSON document that replaces `link`'s table with rules for `p`.
pub fn document(link: &str, p: &Protection) -> String {
    let table = table_name(link);
    let mut cmds = vec![
        format!(r#"{{"add":{}}}"#, table_obj(&table)),
        format!(r#"{{"delete":{}}}"#, table_obj(&table)),
        format!(r#"{{"add":{}}}"#, table_obj(&table)),
        format!(
            r#"{{"add":{{"chain":{{"family":"bridge","table":{},"name":"prerouting","type":"filter","hook":"prerouting","prio":-200,"policy":"accept"}}}}}}"#,
            q(&table)
        ),
    ];
    if let Some(prio) = p.priority {
        cmds.push(format!(
            r#"{{"add":{{"rule":{{"family":"bridge","table":{},"chain":"prerouting","comment":"priority","expr":[{},{{"mangle":{{"key":{{"meta":{{"key":"priority"}}}},"value":"0:{prio:x}"}}}}]}}}}}}"#,
            q(&table),
            matches("==", r#"{"meta":{"key":"iifname"}}"#, &q(link))
        ));
    }
    cmds.extend(rules(&table, link, p));
    format!(r#"{{"nftables":[{}]}}"#, cmds.join(","))
}

/// Run `nft -j -f -` with `doc` on stdin.
fn run(doc: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetError::Nft(format!(
                "cannot run nft ({e}); link protection needs nftables (apt-get install nftables)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(doc.as_bytes())
            .map_err(|e| NetError::Nft(format!("write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::Nft(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(NetError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

/// Protect `link` as `p` says (replacing what it had); an empty `p` removes the table.
pub fn protect(link: &str, p: &Protection) -> Result<()> {
    if p.is_empty() {
        return unprotect(link);
    }
    run(&document(link, p))
}

/// Remove `link`'s table; a missing table is not an error (nor is a missing nft, when there
/// is nothing to remove).
pub fn unprotect(link: &str) -> Result<()> {
    remove_table(&table_name(link))
}

/// Delete the (bridge-family) table `table` if it exists.
pub fn remove_table(table: &str) -> Result<()> {
    let t = table_obj(table);
    match run(&format!(
        r#"{{"nftables":[{{"add":{t}}},{{"delete":{t}}}]}}"#
    )) {
        Err(NetError::Nft(m)) if m.starts_with("cannot run nft") => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_name_the_link_and_count_drops() {
        let p = Protection {
            mac: Some([2, 0, 0, 0, 0, 1]),
            ips: Some(vec!["10.0.0.5".parse().unwrap()]),
            dhcp_nospoof: true,
            restricted: true,
            priority: Some(6),
        };
        let d = document("zv01", &p);
        assert!(d.contains(r#""right":"zv01""#), "{d}");
        assert!(d.contains(r#""name":"zones_zv01""#), "{d}");
        assert!(d.contains(r#""right":"02:00:00:00:00:01""#), "{d}");
        assert!(d.contains(r#"{"set":["10.0.0.5"]}"#), "{d}");
        assert_eq!(d.matches(r#"{"counter":null},{"drop":null}"#).count(), 9);
        assert!(d.contains(r#""value":"0:6""#), "{d}");
        assert!(rules("t", "l", &Protection::default()).is_empty());
        assert_eq!(q("a\"b"), r#""a\"b""#);
    }
}
