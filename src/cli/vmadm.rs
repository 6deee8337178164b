//! `vmadm`: SmartOS's VM tool over zones (`crate::zone::vmadm` for the payload translation and
//! the JSON shape). Verbs, options, output and messages follow SmartOS vmadm(8).

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::Value as Json;
use zones::store::Store;

use crate::zone::manifest::ManifestError;
use crate::zone::vmadm::{self, Filter, VmError};

#[derive(Parser, Debug)]
#[command(
    name = "vmadm",
    about = "Manage zones as SmartOS VMs: JSON payloads, addressed by uuid (SmartOS vmadm)",
    after_help = "Examples:\n  vmadm create -f web.json\n  vmadm list -p -o uuid,alias,state,ram\n  vmadm get 6e3c1a52-6d6b-4a1c-9b4b-1c2d3e4f5a6b\n  vmadm update 6e3c1a52-6d6b-4a1c-9b4b-1c2d3e4f5a6b ram=512\n  vmadm validate create -f web.json\n\nBrands joyent, joyent-minimal and lx are zones of brand linux; kvm and bhyve are VMs (zones of brand kvm). Exit status: 0 success, 1 error, 2 usage error.",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(short = 'R', global = true, value_name = "ALTROOT")]
    altroot: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a VM from a JSON payload (-f FILE, else stdin): configure, install, boot.
    #[command(after_help = "Examples:\n  vmadm create -f web.json\n  vmadm create < web.json")]
    Create {
        /// The payload file ("-" or none: stdin).
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<String>,
    },
    /// List VMs as a table (default fields uuid,type,ram,state,alias).
    #[command(
        after_help = "Examples:\n  vmadm list\n  vmadm list -p -o uuid,alias,state,ram\n  vmadm list -s -ram,alias state=running\n  vmadm list -o uuid,nics.0.ip tags.role=web"
    )]
    List {
        /// Fields to show, comma separated (dotted paths reach into the get document).
        #[arg(short = 'o', value_name = "FIELD,...")]
        fields: Option<String>,
        /// Sort by these fields, comma separated; a leading '-' sorts descending.
        #[arg(short = 's', value_name = "FIELD,...", allow_hyphen_values = true)]
        sort: Option<String>,
        /// Parsable: fields separated by ':', no header.
        #[arg(short = 'p')]
        parsable: bool,
        /// No header line.
        #[arg(short = 'H')]
        no_header: bool,
        /// Only VMs with these values (field=value; nics.*.ip=ADDR reaches into arrays).
        #[arg(value_name = "FIELD=VALUE")]
        filters: Vec<String>,
    },
    /// The VM as JSON (SmartOS's shape: uuid, alias, brand, state, ram, nics, tags, ...).
    Get {
        /// The VM's uuid.
        uuid: String,
    },
    /// The uuids of the VMs matching every field=value (-j: their JSON, -1: exactly one).
    #[command(
        after_help = "Examples:\n  vmadm lookup alias=web\n  vmadm lookup -1 nics.*.ip=10.2.121.70\n  vmadm lookup -j -o uuid,ram state=running"
    )]
    Lookup {
        /// Exactly one VM must match; print its uuid.
        #[arg(short = '1')]
        one: bool,
        /// The matching VMs' JSON (an array).
        #[arg(short = 'j')]
        json: bool,
        /// With -j, only these fields of each VM.
        #[arg(short = 'o', value_name = "FIELD,...")]
        fields: Option<String>,
        /// Only VMs with these values (field=value).
        #[arg(value_name = "FIELD=VALUE")]
        filters: Vec<String>,
    },
    /// Boot the VM (autoboot on, as SmartOS); its user-script runs if it never ran.
    Start {
        /// The VM's uuid.
        uuid: String,
    },
    /// Stop the VM: its init is asked to stop (60 s, then halted); -F halts at once.
    Stop {
        /// The VM's uuid.
        uuid: String,
        /// Halt at once.
        #[arg(short = 'F')]
        force: bool,
        /// Timeout (docker VMs only on SmartOS; refused).
        #[arg(short = 't', value_name = "SECONDS")]
        timeout: Option<u64>,
    },
    /// Reboot the VM (-F: halt and boot at once).
    Reboot {
        /// The VM's uuid.
        uuid: String,
        /// Halt and boot at once, without asking init.
        #[arg(short = 'F')]
        force: bool,
    },
    /// Delete the VM: halt, uninstall, remove its configuration and metadata.
    Delete {
        /// The VM's uuid.
        uuid: String,
    },
    /// Change the VM from a payload (-f FILE) or KEY=VALUE pairs (values are JSON when they
    /// parse as JSON; a.b=v sets key b of object a).
    #[command(
        after_help = "Examples:\n  vmadm update UUID ram=512 alias=web2\n  vmadm update UUID set_tags.role=db\n  vmadm update UUID -f changes.json"
    )]
    Update {
        /// The VM's uuid.
        uuid: String,
        /// The payload file ("-": stdin).
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<String>,
        /// Properties to change (values that parse as JSON are JSON).
        #[arg(value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Check a create or update payload; every problem is printed with its JSON path.
    #[command(
        after_help = "Examples:\n  vmadm validate create -f web.json\n  vmadm validate update -f changes.json"
    )]
    Validate {
        /// create or update.
        #[arg(value_parser = ["create", "update"])]
        action: String,
        /// The payload file ("-" or none: stdin).
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<String>,
    },
    /// Runtime information of a running VM as JSON (types: status, all; the others are HVM's).
    Info {
        /// The VM's uuid.
        uuid: String,
        /// Comma separated types (default all).
        types: Option<String>,
    },
    /// Attach to the VM's console; leave with CTRL-] then '.' at the start of a line.
    Console {
        /// The VM's uuid.
        uuid: String,
    },
    /// Stream a VM to stdout (not supported: refused).
    Send {
        /// The VM's uuid.
        uuid: String,
    },
    /// Receive a VM stream from stdin (not supported: refused).
    #[command(alias = "recv")]
    Receive {
        /// Accepted for SmartOS compatibility (ignored).
        #[arg(short = 'f')]
        force: bool,
    },
}

pub fn main() -> i32 {
    super::run_main("vmadm", dispatch)
}

/// The clap definition (man page and completions: xtask).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The text of `file` ("-" or none: stdin).
fn read_input(file: Option<&str>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        None | Some("-") => {
            std::io::stdin().read_to_string(&mut text)?;
        }
        Some(f) => {
            text =
                std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("cannot read {f}: {e}"))?;
        }
    }
    Ok(text)
}

/// KEY=VALUE pairs as a payload: values that parse as JSON are JSON, others strings;
/// `a.b=v` nests.
fn pairs_payload(pairs: &[String]) -> anyhow::Result<String> {
    let mut doc = serde_json::Map::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow::anyhow!("\"{p}\": expected KEY=VALUE"))?;
        let value = serde_json::from_str::<Json>(v).unwrap_or_else(|_| Json::String(v.into()));
        let mut parts: Vec<&str> = k.split('.').collect();
        let last = parts.pop().expect("split yields one part");
        let mut cur = &mut doc;
        for part in parts {
            let e = cur
                .entry(part.to_string())
                .or_insert_with(|| Json::Object(Default::default()));
            cur = e
                .as_object_mut()
                .ok_or_else(|| anyhow::anyhow!("\"{p}\": {part} is not an object"))?;
        }
        cur.insert(last.to_string(), value);
    }
    Ok(Json::Object(doc).to_string())
}

/// The problems of an invalid payload, one per line with its JSON path, on stderr; other
/// errors go back to the caller.
fn report(e: VmError, what: &str) -> anyhow::Result<i32> {
    match e {
        VmError::Manifest(ManifestError::Invalid(problems)) => {
            eprintln!("vmadm: invalid {what} payload:");
            for p in problems {
                eprintln!("  {p}");
            }
            Ok(1)
        }
        other => Err(other.into()),
    }
}

fn fields_of(list: Option<&str>, default: &str) -> Vec<String> {
    list.unwrap_or(default)
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn cell(doc: &Json, field: &str) -> String {
    match vmadm::values_at(doc, field).first() {
        Some(v) => vmadm::text_of(v),
        None => "-".into(),
    }
}

/// Sort docs by `keys` (`-key` descending); numbers compare as numbers.
fn sort_docs(docs: &mut [Json], keys: &[String]) {
    docs.sort_by(|a, b| {
        for k in keys {
            let (desc, k) = match k.strip_prefix('-') {
                Some(k) => (true, k),
                None => (false, k.as_str()),
            };
            let (va, vb) = (vmadm::values_at(a, k), vmadm::values_at(b, k));
            let (va, vb) = (va.first(), vb.first());
            let ord = match (va.and_then(|v| v.as_f64()), vb.and_then(|v| v.as_f64())) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                _ => cell(a, k).cmp(&cell(b, k)),
            };
            let ord = if desc { ord.reverse() } else { ord };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn matching(store: &Store, filters: &[String]) -> anyhow::Result<Vec<Json>> {
    let filters = filters
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vmadm::all(store)?
        .into_iter()
        .filter(|d| filters.iter().all(|f| f.matches(d)))
        .collect())
}

fn out(text: &str) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        // `vmadm list | head`: a closed pipe is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let store = Store::open(cli.altroot.as_deref())?;
    match cli.command {
        Cmd::Create { file } => {
            let text = read_input(file.as_deref())?;
            match vmadm::create(&store, &text) {
                Ok(uuid) => eprintln!("Successfully created VM {uuid}"),
                Err(e) => return report(e, "create"),
            }
        }
        Cmd::Validate { action, file } => {
            let text = read_input(file.as_deref())?;
            let res = if action == "create" {
                vmadm::validate_create(&store, &text)
            } else {
                vmadm::validate_update(&text)
            };
            match res {
                Ok(()) => out(&format!("VALID '{action}' payload for joyent brand VMs.\n"))?,
                Err(e) => return report(e, &action),
            }
        }
        Cmd::List {
            fields,
            sort,
            parsable,
            no_header,
            filters,
        } => {
            let fields = fields_of(fields.as_deref(), "uuid,type,ram,state,alias");
            let mut docs = matching(&store, &filters)?;
            sort_docs(&mut docs, &fields_of(sort.as_deref(), "ram,uuid"));
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| fields.iter().map(|f| cell(d, f)).collect())
                .collect();
            let mut text = String::new();
            if parsable {
                for r in &rows {
                    text.push_str(&r.join(":"));
                    text.push('\n');
                }
            } else {
                let header: Vec<String> = fields.iter().map(|f| f.to_uppercase()).collect();
                let mut widths: Vec<usize> = header.iter().map(String::len).collect();
                for r in &rows {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let line = |r: &[String]| {
                    let n = r.len();
                    let mut l = String::new();
                    for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                        if i + 1 == n {
                            l.push_str(c);
                        } else {
                            l.push_str(&format!("{c:<w$}  "));
                        }
                    }
                    l.push('\n');
                    l
                };
                if !no_header {
                    text.push_str(&line(&header));
                }
                for r in &rows {
                    text.push_str(&line(r));
                }
            }
            out(&text)?;
        }
        Cmd::Get { uuid } => {
            let name = vmadm::resolve(&store, &uuid)?;
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&vmadm::get(&store, &name)?)?
            ))?;
        }
        Cmd::Lookup {
            one,
            json,
            fields,
            filters,
        } => {
            if fields.is_some() && !json {
                anyhow::bail!("lookup: -o requires -j");
            }
            let docs = matching(&store, &filters)?;
            if one && docs.len() != 1 {
                anyhow::bail!("lookup -1: {} VMs matched, not one", docs.len());
            }
            if json {
                let docs: Vec<Json> = match fields {
                    None => docs,
                    Some(f) => docs
                        .iter()
                        .map(|d| {
                            let m = fields_of(Some(&f), "")
                                .into_iter()
                                .filter_map(|k| d.get(&k).map(|v| (k, v.clone())))
                                .collect();
                            Json::Object(m)
                        })
                        .collect(),
                };
                out(&format!("{}\n", serde_json::to_string_pretty(&docs)?))?;
            } else {
                let mut text = String::new();
                for d in &docs {
                    text.push_str(&cell(d, "uuid"));
                    text.push('\n');
                }
                out(&text)?;
            }
        }
        Cmd::Start { uuid } => {
            let name = vmadm::resolve(&store, &uuid)?;
            vmadm::start(&store, &name)?;
            eprintln!("Successfully started VM {uuid}");
        }
        Cmd::Stop {
            uuid,
            force,
            timeout,
        } => {
            if timeout.is_some() {
                anyhow::bail!("stop: -t is only for docker VMs");
            }
            let name = vmadm::resolve(&store, &uuid)?;
            vmadm::stop(&store, &name, force)?;
            eprintln!("Successfully completed stop for VM {uuid}");
        }
        Cmd::Reboot { uuid, force } => {
            let name = vmadm::resolve(&store, &uuid)?;
            vmadm::reboot(&store, &name, force)?;
            eprintln!("Successfully completed reboot for VM {uuid}");
        }
        Cmd::Delete { uuid } => {
            let name = vmadm::resolve(&store, &uuid)?;
            vmadm::delete(&store, &name)?;
            eprintln!("Successfully deleted VM {uuid}");
        }
        Cmd::Update { uuid, file, pairs } => {
            let text = match (file, pairs.is_empty()) {
                (Some(f), true) => read_input(Some(&f))?,
                (None, false) => pairs_payload(&pairs)?,
                (None, true) => read_input(None)?,
                (Some(_), false) => anyhow::bail!("update: give -f FILE or KEY=VALUE, not both"),
            };
            match vmadm::update(&store, &uuid, &text) {
                Ok(r) => {
                    if !r.reboot.is_empty() {
                        eprintln!("takes effect at the next boot: {}", r.reboot.join(", "));
                    }
                    eprintln!("Successfully updated VM {uuid}");
                }
                Err(e) => return report(e, "update"),
            }
        }
        Cmd::Info { uuid, types } => {
            let name = vmadm::resolve(&store, &uuid)?;
            let doc = vmadm::get(&store, &name)?;
            if doc["state"] != "running" {
                anyhow::bail!("info: VM {uuid} is not running");
            }
            let mut m = serde_json::Map::new();
            for t in fields_of(types.as_deref(), "all") {
                match t.as_str() {
                    "all" | "status" => {
                        m.insert(
                            "status".into(),
                            serde_json::json!({
                                "state": doc["state"], "zone_state": doc["zone_state"],
                                "zoneid": doc["zoneid"], "pid": doc["pid"],
                            }),
                        );
                    }
                    other => anyhow::bail!(
                        "info: type {other:?} is for HVM VMs; an OS VM has only status"
                    ),
                }
            }
            out(&format!("{}\n", serde_json::to_string_pretty(&m)?))?;
        }
        Cmd::Console { uuid } => {
            let name = vmadm::resolve(&store, &uuid)?;
            let opts = crate::zone::login::ConsoleOpts {
                escape: Some(0x1d),
                disconnect_on_halt: false,
            };
            crate::zone::login::console(&store, &name, &opts)?;
        }
        Cmd::Send { uuid } => {
            let name = vmadm::resolve(&store, &uuid)?;
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!("send: stdout is a terminal; redirect it to a file or a pipe");
            }
            vmadm::send(&store, &name, std::io::stdout().lock())?;
            eprintln!("Successfully sent VM {uuid}");
        }
        Cmd::Receive { force: _ } => {
            let uuid = vmadm::receive(&store, std::io::stdin().lock())?;
            eprintln!("Successfully received VM {uuid}");
        }
    }
    Ok(0)
}
