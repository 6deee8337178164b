//! `dladm`: etherstubs and VNICs (illumos Crossbow's datalink administration), recorded in
//! `ALTROOT/etc/zones/datalinks` and made again by `dladm up` (or at zone boot) when missing.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use zones::store::Store;
use zones_net::Netlink;

use crate::zone::{datalinks, network};

#[derive(Parser, Debug)]
#[command(
    name = "dladm",
    about = "Administer datalinks: etherstubs and VNICs (illumos dladm)",
    after_help = "Examples:\n  dladm create-etherstub stub0\n  dladm create-vnic -l stub0 vnic0\n  dladm show-vnic -j\n\nExit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: the datalink records live under it (the links are the host's).
    #[arg(short = 'R', global = true)]
    altroot: Option<PathBuf>,
    /// Without one: show-link, as illumos's dladm.
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// A virtual switch with no uplink (a Linux bridge).
    #[command(after_help = "Examples:\n  dladm create-etherstub stub0")]
    CreateEtherstub {
        /// The etherstub's name.
        name: String,
    },
    /// Remove an etherstub no VNIC or zone uses.
    #[command(after_help = "Examples:\n  dladm delete-etherstub stub0")]
    DeleteEtherstub {
        /// The etherstub's name.
        name: String,
    },
    /// List etherstubs.
    #[command(
        after_help = "Examples:\n  dladm show-etherstub\n  dladm show-etherstub -p -o link\n  dladm show-etherstub -j"
    )]
    ShowEtherstub(ShowArgs),
    /// A VNIC over LINK (an etherstub or another link).
    #[command(
        after_help = "Examples:\n  dladm create-vnic -l stub0 vnic0\n  dladm create-vnic -l stub0 -m 2:8:20:1:2:3 vnic1\n  dladm create-vnic -l stub0 -p maxbw=10M,protection=mac-nospoof vnic2"
    )]
    CreateVnic {
        /// The etherstub or link the VNIC goes over.
        #[arg(short = 'l')]
        link: String,
        /// A MAC address, or auto/random.
        #[arg(short = 'm')]
        mac: Option<String>,
        /// VLAN id (1-4094).
        #[arg(short = 'v')]
        vlan: Option<u16>,
        /// Link properties: maxbw=10M,priority=high,protection=mac-nospoof,ip-nospoof,
        /// allowed-ips=10.0.0.5
        #[arg(short = 'p')]
        props: Option<String>,
        /// The VNIC's name.
        name: String,
    },
    /// Remove a VNIC no zone uses.
    #[command(after_help = "Examples:\n  dladm delete-vnic vnic0")]
    DeleteVnic {
        /// The VNIC's name.
        name: String,
    },
    /// List VNICs, the zones' anets (ZONE/LINK) among them: LINK OVER SPEED MACADDRESS
    /// MACADDRTYPE VID ZONE (and STATE with -o).
    #[command(
        after_help = "Examples:\n  dladm show-vnic\n  dladm show-vnic -p -o link,over\n  dladm show-vnic -j vnic0"
    )]
    ShowVnic(ShowArgs),
    /// Set link properties of a VNIC: -p mtu=9000,maxbw=10M,protection=mac-nospoof,...
    #[command(
        after_help = "Examples:\n  dladm set-linkprop -p maxbw=100M vnic0\n  dladm set-linkprop -p protection=mac-nospoof,ip-nospoof,allowed-ips=10.0.0.5 vnic0"
    )]
    SetLinkprop {
        /// Properties to set: PROP=VALUE[,PROP=VALUE...].
        #[arg(short = 'p')]
        props: String,
        /// The link (a VNIC).
        link: String,
    },
    /// Reset link properties (all, or those named with -p) to their defaults.
    #[command(
        after_help = "Examples:\n  dladm reset-linkprop vnic0\n  dladm reset-linkprop -p maxbw vnic0"
    )]
    ResetLinkprop {
        /// Only these properties (comma list).
        #[arg(short = 'p')]
        props: Option<String>,
        /// The link (a VNIC).
        link: String,
    },
    /// Show link properties of any link (mtu; a VNIC's maxbw, priority, protection,
    /// allowed-ips): LINK PROPERTY PERM VALUE DEFAULT POSSIBLE (-c: parsable).
    #[command(
        after_help = "Examples:\n  dladm show-linkprop vnic0\n  dladm show-linkprop -c -o link,property,value -p maxbw\n  dladm show-linkprop -j vnic0"
    )]
    ShowLinkprop {
        /// Parsable output: fields separated by ':' (needs -o).
        #[arg(short = 'c')]
        parsable: bool,
        /// JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
        /// The fields to show (comma list), in that order.
        #[arg(short = 'o')]
        fields: Option<String>,
        /// Only these properties (comma list).
        #[arg(short = 'p')]
        props: Option<String>,
        /// Only this link.
        link: Option<String>,
    },
    /// Show datalinks, the zones' anets (ZONE/LINK) among them: LINK CLASS MTU STATE OVER
    /// (what plain `dladm` does).
    #[command(
        after_help = "Examples:\n  dladm show-link\n  dladm show-link -p -o link,class,state\n  dladm show-link -j"
    )]
    ShowLink(ShowArgs),
    /// Make again every recorded etherstub and VNIC that is missing (after a host reboot).
    #[command(after_help = "Examples:\n  dladm up")]
    Up,
}

/// `\:` and `\\` escaping of one parsable field.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace(':', "\\:")
}

/// Rows of `fields` (upper case in the header) as a table or, with `parsable`, `:`-joined.
fn print_table(
    all: &[&str],
    fields: Option<&str>,
    parsable: bool,
    rows: &[Vec<String>],
) -> Result<(), String> {
    let wanted: Vec<usize> = match fields {
        None => (0..all.len()).collect(),
        Some(f) => f
            .split(',')
            .map(|n| {
                all.iter()
                    .position(|a| a.eq_ignore_ascii_case(n.trim()))
                    .ok_or_else(|| {
                        format!(
                            "unknown field '{n}' (fields: {})",
                            all.join(",").to_lowercase()
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    if parsable {
        if fields.is_none() {
            return Err("-p requires -o".into());
        }
        for r in rows {
            let line: Vec<String> = wanted.iter().map(|i| escape(&r[*i])).collect();
            println!("{}", line.join(":"));
        }
        return Ok(());
    }
    let widths: Vec<usize> = wanted
        .iter()
        .map(|i| {
            rows.iter()
                .map(|r| r[*i].len())
                .chain([all[*i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let fmt = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end()
            .to_string()
    };
    println!("{}", fmt(wanted.iter().map(|i| all[*i]).collect()));
    for r in rows {
        println!("{}", fmt(wanted.iter().map(|i| r[*i].as_str()).collect()));
    }
    Ok(())
}

/// Rows as a JSON array of objects keyed by the lower-case field names.
fn print_json(all: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
    let objs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            all.iter()
                .zip(r)
                .map(|(k, v)| (k.to_lowercase(), serde_json::Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&objs).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn state_of(nl: &mut Option<Netlink>, name: &str) -> String {
    let link = nl.as_mut().and_then(|n| n.link(name).ok().flatten());
    match link {
        Some(l) if l.up => "up".into(),
        Some(_) => "down".into(),
        None => "missing".into(),
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let store = Store::open(cli.altroot.as_deref()).map_err(|e| e.to_string())?;
    let e = |e: datalinks::DatalinkError| e.to_string();
    let Some(command) = cli.command else {
        return show_link(&store, Output::new(false, false, None), None);
    };
    match command {
        Cmd::CreateEtherstub { name } => datalinks::create_etherstub(&store, &name).map_err(e),
        Cmd::DeleteEtherstub { name } => datalinks::delete_etherstub(&store, &name).map_err(e),
        Cmd::CreateVnic {
            link,
            mac,
            vlan,
            props,
            name,
        } => datalinks::create_vnic(&store, &link, &name, mac.as_deref(), vlan, props.as_deref())
            .map(drop)
            .map_err(e),
        Cmd::SetLinkprop { props, link } => {
            datalinks::set_linkprop(&store, &link, &props).map_err(e)
        }
        Cmd::ResetLinkprop { props, link } => {
            let names: Vec<String> = props
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            datalinks::reset_linkprop(&store, &link, &names).map_err(e)
        }
        Cmd::ShowLinkprop {
            parsable,
            json,
            fields,
            props,
            link,
        } => show_linkprop(&store, Output::new(parsable, json, fields), props, link),
        Cmd::ShowLink(a) => {
            let (out, name) = a.split();
            show_link(&store, out, name)
        }
        Cmd::DeleteVnic { name } => datalinks::delete_vnic(&store, &name).map_err(e),
        Cmd::ShowEtherstub(a) => {
            let (out, name) = a.split();
            let d = datalinks::load(&store).map_err(e)?;
            if let Some(n) = &name {
                if !d.etherstubs.contains(n) {
                    return Err(format!("etherstub '{n}' does not exist"));
                }
            }
            let rows: Vec<Vec<String>> = d
                .etherstubs
                .iter()
                .filter(|s| name.as_ref().is_none_or(|n| n == *s))
                .map(|s| vec![s.clone()])
                .collect();
            out.print(&["LINK"], &rows)
        }
        Cmd::ShowVnic(a) => {
            let (out, name) = a.split();
            show_vnic(&store, out, name)
        }
        Cmd::Up => {
            for l in datalinks::restore(&store).map_err(e)? {
                println!("{l}");
            }
            Ok(())
        }
    }
}

/// How a show command prints its rows: a table, `:`-joined (parsable) or JSON.
/// The options of show-etherstub, show-vnic and show-link: the output form and one link.
#[derive(Args, Debug)]
struct ShowArgs {
    /// Parsable output: fields separated by ':' (needs -o).
    #[arg(short = 'p')]
    parsable: bool,
    /// JSON: an array of objects with the fields in lower case.
    #[arg(short = 'j', long = "json")]
    json: bool,
    /// The fields to show (comma list), in that order.
    #[arg(short = 'o')]
    fields: Option<String>,
    /// Only this link.
    name: Option<String>,
}

impl ShowArgs {
    /// How to print, and the link to show (all when `None`).
    fn split(self) -> (Output, Option<String>) {
        (
            Output::new(self.parsable, self.json, self.fields),
            self.name,
        )
    }
}

struct Output {
    parsable: bool,
    json: bool,
    fields: Option<String>,
}

impl Output {
    fn new(parsable: bool, json: bool, fields: Option<String>) -> Output {
        Output {
            parsable,
            json,
            fields,
        }
    }

    fn print(&self, all: &[&str], rows: &[Vec<String>]) -> Result<(), String> {
        if self.json {
            print_json(all, rows)
        } else {
            print_table(all, self.fields.as_deref(), self.parsable, rows)
        }
    }
}

/// A link's speed in Mb/s as the kernel reports it (`0` when it has none, as illumos shows
/// an etherstub's VNICs).
fn speed_of(link: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{link}/speed"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .map_or("0".into(), |s| s.to_string())
}

/// `fixed` for a MAC address given to the link, `random` for a locally administered one
/// (what dladm and zoneadmd pick when none is given).
fn mac_type(mac: &str) -> &'static str {
    let first = mac
        .split(':')
        .next()
        .and_then(|o| u8::from_str_radix(o, 16).ok());
    match first {
        Some(o) if o & 0x02 != 0 => "random",
        Some(_) => "fixed",
        None => "--",
    }
}

/// The rows of show-vnic: the recorded VNICs (ZONE: the zone it is lent to), then the
/// zones' anets as `ZONE/LINK`.
fn show_vnic(store: &Store, out: Output, name: Option<String>) -> Result<(), String> {
    let d = datalinks::load(store).map_err(|e| e.to_string())?;
    let (anets, lent) = network::zone_links(store);
    let mut nl = Netlink::open().ok();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for v in &d.vnics {
        let zone = lent.iter().find(|(l, _)| *l == v.name).map(|(_, z)| z);
        let on_host = state_of(&mut nl, &v.name);
        let (speed, state) = match zone {
            Some(_) if on_host == "missing" => (
                speed_of(&datalinks::vnic_port_name(&v.name)),
                "in-zone".to_string(),
            ),
            _ => (speed_of(&v.name), on_host),
        };
        rows.push(vec![
            v.name.clone(),
            v.over.clone(),
            speed,
            v.mac.clone(),
            mac_type(&v.mac).into(),
            v.vlan.unwrap_or(0).to_string(),
            zone.cloned().unwrap_or_else(|| "--".into()),
            state,
        ]);
    }
    for a in &anets {
        rows.push(vec![
            format!("{}/{}", a.zone, a.linkname),
            a.over.clone(),
            speed_of(&a.host),
            a.mac.clone(),
            mac_type(&a.mac).into(),
            a.vid.to_string(),
            a.zone.clone(),
            state_of(&mut nl, &a.host),
        ]);
    }
    if let Some(n) = &name {
        rows.retain(|r| &r[0] == n);
        if rows.is_empty() {
            return Err(format!("VNIC '{n}' does not exist"));
        }
    }
    let all = [
        "LINK",
        "OVER",
        "SPEED",
        "MACADDRESS",
        "MACADDRTYPE",
        "VID",
        "ZONE",
        "STATE",
    ];
    // illumos's columns by default; STATE (an extension) when asked for with -o or -j.
    let out = match out.fields {
        None if !out.json => Output {
            fields: Some("link,over,speed,macaddress,macaddrtype,vid,zone".into()),
            ..out
        },
        _ => out,
    };
    out.print(&all, &rows)
}

/// One link as show-link lists it.
struct LinkRow {
    name: String,
    class: &'static str,
    mtu: String,
    state: String,
    over: String,
}

/// Every link dladm knows: the host's physical links, the etherstubs, the VNICs and the
/// zones' anets (`ZONE/LINK`), in that order.
fn links(store: &Store) -> Result<Vec<LinkRow>, String> {
    let d = datalinks::load(store).map_err(|e| e.to_string())?;
    let mut nl = Netlink::open().map_err(|e| e.to_string())?;
    let host = nl.links().map_err(|e| e.to_string())?;
    let find = |n: &str| host.iter().find(|l| l.name == n);
    let mtu = |l: Option<&zones_net::Link>| l.map_or_else(|| "--".into(), |l| l.mtu.to_string());
    let updown = |l: &zones_net::Link| if l.up { "up" } else { "down" };
    let mut rows = Vec::new();
    // Physical links (no kind) first, as illumos lists them.
    for l in host.iter().filter(|l| l.kind.is_none() && l.name != "lo") {
        rows.push(LinkRow {
            name: l.name.clone(),
            class: "phys",
            mtu: l.mtu.to_string(),
            state: updown(l).into(),
            over: "--".into(),
        });
    }
    for s in &d.etherstubs {
        let l = find(s);
        rows.push(LinkRow {
            name: s.clone(),
            class: "etherstub",
            mtu: mtu(l),
            state: l.map_or("missing", updown).into(),
            over: "--".into(),
        });
    }
    for v in &d.vnics {
        let l = find(&v.name);
        let in_zone = l.is_none() && find(&datalinks::vnic_port_name(&v.name)).is_some();
        let state = match l {
            Some(l) => updown(l),
            None if in_zone => "in-zone",
            None => "missing",
        };
        rows.push(LinkRow {
            name: v.name.clone(),
            class: "vnic",
            mtu: mtu(l.or_else(|| find(&datalinks::vnic_port_name(&v.name)))),
            state: state.into(),
            over: v.over.clone(),
        });
    }
    for a in network::zone_links(store).0 {
        let l = find(&a.host);
        rows.push(LinkRow {
            name: format!("{}/{}", a.zone, a.linkname),
            class: "vnic",
            mtu: mtu(l),
            state: l.map_or("missing", updown).into(),
            over: a.over,
        });
    }
    Ok(rows)
}

fn show_link(store: &Store, out: Output, name: Option<String>) -> Result<(), String> {
    let mut rows: Vec<Vec<String>> = links(store)?
        .into_iter()
        .map(|l| vec![l.name, l.class.into(), l.mtu, l.state, l.over])
        .collect();
    if let Some(n) = &name {
        rows.retain(|r| &r[0] == n);
        if rows.is_empty() {
            return Err(format!("link '{n}' does not exist"));
        }
    }
    out.print(&["LINK", "CLASS", "MTU", "STATE", "OVER"], &rows)
}

/// show-linkprop: `mtu` of every link (read-only: the kernel's value), and a VNIC's link
/// properties after it, in illumos's order.
fn show_linkprop(
    store: &Store,
    out: Output,
    props: Option<String>,
    link: Option<String>,
) -> Result<(), String> {
    let d = datalinks::load(store).map_err(|e| e.to_string())?;
    let all_links = links(store)?;
    if let Some(n) = &link {
        if !all_links.iter().any(|l| &l.name == n) {
            return Err(format!("link '{n}' does not exist"));
        }
    }
    let wanted: Option<Vec<&str>> = props.as_deref().map(|p| p.split(',').collect());
    if let Some(w) = &wanted {
        for p in w {
            if *p != "mtu" && !datalinks::LINK_PROPS.iter().any(|(n, _, _)| n == p) {
                return Err(format!(
                    "unknown link property '{p}' (properties: mtu, maxbw, priority, protection, allowed-ips)"
                ));
            }
        }
    }
    let want = |p: &str| wanted.as_ref().is_none_or(|w| w.contains(&p));
    let mut rows = Vec::new();
    for l in all_links
        .iter()
        .filter(|l| link.as_ref().is_none_or(|n| *n == l.name))
    {
        let vnic = d.vnics.iter().find(|v| v.name == l.name);
        if want("mtu") {
            // A VNIC's mtu is set with set-linkprop; other links' are the kernel's.
            let (perm, value) = match vnic.and_then(|v| v.props.get("mtu")) {
                Some(m) => ("rw", m.clone()),
                None if vnic.is_some() => ("rw", l.mtu.clone()),
                None => ("r-", l.mtu.clone()),
            };
            let (lo, hi) = datalinks::MTU_RANGE;
            rows.push(vec![
                l.name.clone(),
                "mtu".into(),
                perm.into(),
                value,
                datalinks::MTU_DEFAULT.to_string(),
                if vnic.is_some() {
                    format!("{lo}-{hi}")
                } else {
                    "--".into()
                },
            ]);
        }
        let Some(v) = vnic else {
            continue;
        };
        for (p, default, possible) in datalinks::LINK_PROPS {
            if !want(p) {
                continue;
            }
            let value = v.props.get(p).cloned().unwrap_or_else(|| default.into());
            rows.push(vec![
                v.name.clone(),
                p.to_string(),
                "rw".into(),
                value,
                default.to_string(),
                possible.to_string(),
            ]);
        }
    }
    if let (Some(n), Some(w)) = (&link, &wanted) {
        // A VNIC property asked of a link that is no VNIC.
        if rows.is_empty() {
            return Err(format!(
                "link '{n}' has none of the properties {}: only VNICs take them",
                w.join(",")
            ));
        }
    }
    out.print(
        &["LINK", "PROPERTY", "PERM", "VALUE", "DEFAULT", "POSSIBLE"],
        &rows,
    )
}

/// The clap definition of `dladm` (for generated man pages, shell completions and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Run dladm with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    super::run_main("dladm", |cli: Cli| run(cli).map_err(anyhow::Error::msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsable_fields_escape() {
        assert_eq!(escape("02:00"), "02\\:00");
        assert!(print_table(&["LINK"], None, true, &[]).is_err());
        assert!(print_table(&["LINK"], Some("nope"), false, &[]).is_err());
    }

    #[test]
    fn mac_address_types() {
        assert_eq!(mac_type("02:08:20:0d:03:01"), "random");
        assert_eq!(mac_type("00:16:3e:00:00:01"), "fixed");
        assert_eq!(mac_type("--"), "--");
    }
}
