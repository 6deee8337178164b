//! `zoneadm`: administer zones, with illumos's verbs, options and messages.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zones::store::Store;

use crate::zone::admin::{self, ListScope};
use crate::zone::{manifest, query};

#[derive(Parser, Debug)]
#[command(
    name = "zoneadm",
    about = "Administer zones: install, boot, halt, list (illumos zoneadm)",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: all zone state lives under it.
    #[arg(short = 'R', global = true)]
    altroot: Option<PathBuf>,
    /// The zone to act on.
    #[arg(short = 'z')]
    zone: Option<String>,
    /// The zone to act on, by uuid.
    #[arg(short = 'u')]
    uuid: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List zones: running ones, or with -i installed, with -c all configured.
    List {
        #[arg(short = 'c')]
        configured: bool,
        #[arg(short = 'i')]
        installed: bool,
        #[arg(short = 'v')]
        verbose: bool,
        /// Parsable: zoneid:zonename:state:zonepath:uuid:brand:ip-type
        #[arg(short = 'p')]
        parsable: bool,
        /// JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Check that the zone can be installed and booted.
    Verify,
    /// Install the zone's root filesystem from a directory or (gzip) tar archive.
    Install {
        /// The root filesystem to install from.
        #[arg(short = 'd')]
        source: Option<PathBuf>,
        /// An image from the image store (imgadm import), by name or id.
        #[arg(short = 'i')]
        image: Option<String>,
    },
    /// Remove the zone's root filesystem.
    Uninstall {
        /// Do not ask for confirmation.
        #[arg(short = 'F')]
        force: bool,
    },
    /// Set the zone up without starting its init.
    Ready,
    /// Boot the zone; arguments after -- go to its init.
    Boot {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Kill everything in the zone at once.
    Halt,
    /// Shut the zone down cleanly (with -r, reboot it).
    Shutdown {
        #[arg(short = 'r')]
        reboot: bool,
        /// Seconds to wait for init before halting.
        #[arg(short = 't', default_value_t = 60)]
        timeout: u64,
    },
    /// Halt and boot the zone.
    Reboot,
    /// Apply the configured resource caps to the running zone, without a reboot.
    Apply,
    /// Install this zone as a copy of another, halted zone.
    Clone {
        /// copy: the source's storage backend decides (a snapshot or clone where it can).
        #[arg(short = 'm', default_value = "copy")]
        method: String,
        source: String,
    },
    /// Move the zone to a new zonepath.
    Move { path: PathBuf },
    /// Detach the zone: its files stay, its configuration goes with them.
    Detach,
    /// Attach a detached zone's files.
    Attach {
        #[arg(short = 'F')]
        force: bool,
    },
    /// Mark the zone incomplete.
    Mark { state: String },
    /// Boot every installed zone whose autoboot is true.
    #[command(name = "boot-all")]
    BootAll,
    /// Print the zone as one JSON document: configuration, state, zoneid, init pid, uuid.
    Get,
    /// Print the names of zones whose `get` document matches every field=value (dotted
    /// paths reach into resources: capped-memory.physical=1G, fs.dir=/data).
    Lookup {
        /// Print the matching zones' `get` documents as a JSON array.
        #[arg(short = 'j', long = "json")]
        json: bool,
        /// field=value conditions, all of which must hold.
        filters: Vec<String>,
    },
    /// Check a JSON zone manifest (docs/manifest.schema.json); reports every problem at once.
    Validate {
        /// The manifest ("-": stdin).
        #[arg(short = 'f')]
        file: String,
    },
    /// Configure, install and boot a zone from a JSON manifest; a failed step undoes the others.
    Provision {
        /// The manifest ("-": stdin).
        #[arg(short = 'f')]
        file: String,
    },
    /// Shut down every running zone.
    #[command(name = "shutdown-all")]
    ShutdownAll {
        #[arg(short = 't', default_value_t = 60)]
        timeout: u64,
    },
}

/// The clap definition of `zoneadm` (for generated man pages and shell completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `zoneadm` binary.
pub fn main() -> i32 {
    super::run_main("zoneadm", dispatch)
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let store = Store::open(cli.altroot.as_deref())?;
    let zone = match (&cli.zone, &cli.uuid) {
        (Some(z), _) => Some(z.clone()),
        (None, Some(u)) => Some(
            store
                .find_uuid(u)?
                .map(|e| e.name)
                .ok_or_else(|| anyhow::anyhow!("{u}: No such zone configured"))?,
        ),
        (None, None) => None,
    };
    let need = || {
        zone.clone()
            .ok_or_else(|| anyhow::anyhow!("a zone name is required: zoneadm -z ZONE ..."))
    };
    match cli.command {
        Cmd::List {
            configured,
            installed,
            verbose,
            parsable,
            json,
        } => list(
            &store,
            zone.as_deref(),
            configured,
            installed,
            verbose,
            parsable,
            json,
        )?,
        Cmd::Verify => {
            let name = need()?;
            for w in admin::verify(&store, &name)? {
                eprintln!("zoneadm: zone '{name}': warning: {w}");
            }
        }
        Cmd::Install { source, image } => {
            let name = need()?;
            match (source, image) {
                (Some(s), _) => admin::install(&store, &name, &s)?,
                (None, Some(i)) => admin::install_image(&store, &name, &i)?,
                (None, None) => anyhow::bail!(
                    "install: give the root filesystem with -d PATH (a directory or a tar archive) or an image with -i IMAGE"
                ),
            }
        }
        Cmd::Uninstall { force } => {
            let name = need()?;
            if !force
                && !confirm(&format!(
                    "Are you sure you want to uninstall zone {name} (y/[n])? "
                ))?
            {
                return Ok(0);
            }
            admin::uninstall(&store, &name)?
        }
        Cmd::Ready => admin::ready(&store, &need()?)?,
        Cmd::Boot { args } => {
            let args = (!args.is_empty()).then_some(args);
            admin::boot(&store, &need()?, args)?
        }
        Cmd::Halt => admin::halt(&store, &need()?)?,
        Cmd::Shutdown { reboot, timeout } => {
            admin::shutdown(&store, &need()?, reboot, Duration::from_secs(timeout))?
        }
        Cmd::Reboot => admin::reboot(&store, &need()?)?,
        Cmd::Apply => admin::apply(&store, &need()?)?,
        Cmd::Clone { method, source } => {
            if method != "copy" {
                anyhow::bail!(
                    "clone -m {method}: only -m copy is supported (the storage backend decides how)"
                );
            }
            admin::clone(&store, &need()?, &source)?
        }
        Cmd::Move { path } => admin::move_zone(&store, &need()?, &path)?,
        Cmd::Detach => admin::detach(&store, &need()?)?,
        Cmd::Attach { force } => admin::attach(&store, &need()?, force)?,
        Cmd::Mark { state } => {
            if state != "incomplete" {
                anyhow::bail!("mark {state}: only 'mark incomplete' is supported");
            }
            admin::mark_incomplete(&store, &need()?)?
        }
        Cmd::Get => {
            let doc = query::get(&store, &need()?)?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Cmd::Lookup { json, filters } => {
            let filters = filters
                .iter()
                .map(|f| query::Filter::parse(f))
                .collect::<Result<Vec<_>, _>>()?;
            let docs = query::lookup(&store, &filters)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&docs)?);
            } else {
                for d in &docs {
                    println!("{}", query::zonename(d));
                }
            }
        }
        Cmd::Validate { file } => {
            let plan = manifest::validate(&store, &read_input(&file)?)?;
            println!("{}: valid manifest for zone {}", file, plan.zone.zonename);
        }
        Cmd::Provision { file } => {
            let name = manifest::provision(&store, &read_input(&file)?)?;
            println!("{name}");
        }
        Cmd::BootAll => {
            let errors = admin::boot_all(&store);
            for e in &errors {
                eprintln!("zoneadm: {e}");
            }
            return Ok(i32::from(!errors.is_empty()));
        }
        Cmd::ShutdownAll { timeout } => {
            let errors = admin::shutdown_all(&store, Duration::from_secs(timeout));
            for e in &errors {
                eprintln!("zoneadm: {e}");
            }
            return Ok(i32::from(!errors.is_empty()));
        }
    }
    Ok(0)
}

/// The contents of `file`, or stdin for "-".
fn read_input(file: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    }
    Ok(text)
}

/// Ask on the terminal; without one (scripts, CI) the answer is no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{question}: no terminal to confirm on; use -F");
    }
    print!("{question}");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn list(
    store: &Store,
    only: Option<&str>,
    configured: bool,
    installed: bool,
    verbose: bool,
    parsable: bool,
    json: bool,
) -> anyhow::Result<()> {
    let entries = admin::list(
        store,
        ListScope {
            configured,
            installed,
        },
        only,
    )?;
    if only.is_some() && entries.is_empty() {
        anyhow::bail!("{}: No such zone configured", only.unwrap_or_default());
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
    } else if parsable {
        for e in &entries {
            writeln!(out, "{}", admin::parsable_line(e))?;
        }
    } else if verbose {
        writeln!(
            out,
            "{:>4} {:<16} {:<12} {:<30} {:<8} IP",
            "ID", "NAME", "STATUS", "PATH", "BRAND"
        )?;
        for e in &entries {
            let id = e.zoneid.map_or("-".to_string(), |i| i.to_string());
            writeln!(
                out,
                "{id:>4} {:<16} {:<12} {:<30} {:<8} {}",
                e.zonename, e.state, e.zonepath, e.brand, e.ip_type
            )?;
        }
    } else {
        for e in &entries {
            writeln!(out, "{}", e.zonename)?;
        }
    }
    Ok(())
}
