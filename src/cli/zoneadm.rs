//! `zoneadm`: administer zones, with illumos's verbs, options and messages.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use zones::state::ZoneState;
use zones::store::Store;

use crate::zone::admin::{self, ListScope};
use crate::zone::{events, manifest, query};

#[derive(Parser, Debug)]
#[command(
    name = "zoneadm",
    about = "Administer zones: install, boot, halt, list (illumos zoneadm)",
    after_help = "Examples:\n  zoneadm list -cv\n  zoneadm -z web install -i alpine && zoneadm -z web boot\n  zoneadm provision -f web.json\n  zoneadm -z web get\n  zoneadm events -F\n\nExit status: 0 success, 1 error, 2 usage error.",
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
    /// Leave autoboot as it is even with `autoboot = follow` (what boot-all and shutdown-all
    /// pass to the zoneadm they run for each zone).
    #[arg(long = "keep-autoboot", hide = true)]
    keep_autoboot: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List zones: running ones, or with -i installed, with -c all configured.
    #[command(
        after_help = "Examples:\n  zoneadm list -cv\n  zoneadm list -ip\n  zoneadm list -c -j"
    )]
    List {
        /// Every configured zone, whatever its state.
        #[arg(short = 'c')]
        configured: bool,
        /// Installed zones too (installed, ready, running).
        #[arg(short = 'i')]
        installed: bool,
        /// Verbose: ID, NAME, STATUS, PATH, BRAND and IP columns.
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
    #[command(after_help = "Examples:\n  zoneadm -z web verify")]
    Verify,
    /// Install the zone's root filesystem from a directory or (gzip) tar archive.
    #[command(
        after_help = "Examples:\n  zoneadm -z web install -i alpine\n  zoneadm -z web install -d /var/tmp/rootfs.tar.gz"
    )]
    Install {
        /// The root filesystem to install from.
        #[arg(short = 'd')]
        source: Option<PathBuf>,
        /// An image from the image store (imgadm import), by name or id.
        #[arg(short = 'i')]
        image: Option<String>,
    },
    /// Remove the zone's root filesystem.
    #[command(after_help = "Examples:\n  zoneadm -z web uninstall -F")]
    Uninstall {
        /// Do not ask for confirmation.
        #[arg(short = 'F')]
        force: bool,
    },
    /// Set the zone up without starting its init.
    #[command(after_help = "Examples:\n  zoneadm -z web ready")]
    Ready,
    /// Boot the zone; arguments after -- go to its init.
    #[command(after_help = "Examples:\n  zoneadm -z web boot\n  zoneadm -z web boot -- -s")]
    Boot {
        /// Arguments for the zone's init (after --).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Kill everything in the zone at once.
    #[command(after_help = "Examples:\n  zoneadm -z web halt")]
    Halt,
    /// Shut the zone down cleanly (with -r, reboot it).
    #[command(
        after_help = "Examples:\n  zoneadm -z web shutdown\n  zoneadm -z web shutdown -r -t 30"
    )]
    Shutdown {
        /// Reboot the zone after it has shut down.
        #[arg(short = 'r')]
        reboot: bool,
        /// Seconds to wait for init before halting.
        #[arg(short = 't', default_value_t = 60)]
        timeout: u64,
    },
    /// Halt and boot the zone.
    #[command(after_help = "Examples:\n  zoneadm -z web reboot")]
    Reboot,
    /// Apply the configured resource caps to the running zone, without a reboot.
    #[command(
        after_help = "Examples:\n  zonecfg -z web 'select capped-memory; set physical=1g; end' && zoneadm -z web apply"
    )]
    Apply,
    /// Install this zone as a copy of another, halted zone.
    #[command(after_help = "Examples:\n  zoneadm -z web2 clone web")]
    Clone {
        /// copy: the source's storage backend decides (a snapshot or clone where it can).
        #[arg(short = 'm', default_value = "copy")]
        method: String,
        /// The zone to copy (installed and halted).
        source: String,
    },
    /// Move the zone to a new zonepath.
    #[command(after_help = "Examples:\n  zoneadm -z web move /zones/web-new")]
    Move {
        /// The new zonepath (absolute).
        path: PathBuf,
    },
    /// Detach the zone: its files stay, its configuration goes with them.
    #[command(after_help = "Examples:\n  zoneadm -z web detach")]
    Detach,
    /// Attach a detached zone's files.
    #[command(after_help = "Examples:\n  zoneadm -z web attach\n  zoneadm -z web attach -F")]
    Attach {
        /// Take the files even if they were not detached (no SUNWdetached.json), without checks.
        #[arg(short = 'F')]
        force: bool,
    },
    /// Mark the zone incomplete.
    #[command(after_help = "Examples:\n  zoneadm -z web mark incomplete")]
    Mark {
        /// The state to mark the zone with: incomplete.
        state: String,
    },
    /// Take a snapshot of the zone's root (zfs, btrfs; overlay, dir and install -d: a copy).
    #[command(after_help = "Examples:\n  zoneadm -z web snapshot before-upgrade")]
    Snapshot {
        /// The snapshot's name: 1-64 letters, digits, '_', '.', ':' or '-'.
        name: String,
    },
    /// Put the zone's root back to a snapshot; a running zone is halted and booted again.
    #[command(
        after_help = "Examples:\n  zoneadm -z web rollback before-upgrade\n  zoneadm -z web rollback -r before-upgrade"
    )]
    Rollback {
        /// Delete the snapshots taken after NAME (needed when there are any).
        #[arg(short = 'r')]
        destroy_later: bool,
        /// The snapshot's name: 1-64 letters, digits, '_', '.', ':' or '-'.
        name: String,
    },
    /// List the zone's snapshots, oldest first.
    #[command(
        name = "list-snapshots",
        after_help = "Examples:\n  zoneadm -z web list-snapshots\n  zoneadm -z web list-snapshots -j"
    )]
    ListSnapshots {
        /// Parsable: name:created (seconds since the epoch).
        #[arg(short = 'p')]
        parsable: bool,
        /// JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Delete one of the zone's snapshots.
    #[command(
        name = "delete-snapshot",
        after_help = "Examples:\n  zoneadm -z web delete-snapshot before-upgrade"
    )]
    DeleteSnapshot {
        /// The snapshot's name: 1-64 letters, digits, '_', '.', ':' or '-'.
        name: String,
    },
    /// Boot every installed zone whose autoboot is true, all at once.
    #[command(name = "boot-all")]
    #[command(after_help = "Examples:\n  zoneadm boot-all")]
    BootAll,
    /// Print the zone as one JSON document: configuration, state, zoneid, init pid, uuid.
    #[command(after_help = "Examples:\n  zoneadm -z web get\n  zoneadm -u 5b3c...-uuid get")]
    Get,
    /// Print the names of zones whose `get` document matches every field=value (dotted
    /// paths reach into resources: capped-memory.physical=1G, fs.dir=/data).
    #[command(
        after_help = "Examples:\n  zoneadm lookup state=running\n  zoneadm lookup -j brand=linux capped-memory.physical=1G"
    )]
    Lookup {
        /// Print the matching zones' `get` documents as a JSON array.
        #[arg(short = 'j', long = "json")]
        json: bool,
        /// field=value conditions, all of which must hold.
        filters: Vec<String>,
    },
    /// Check a JSON zone manifest (docs/manifest.schema.json); reports every problem at once.
    #[command(
        after_help = "Examples:\n  zoneadm validate -f web.json\n  zoneadm validate -j -f - < web.json"
    )]
    Validate {
        /// The manifest ("-": stdin).
        #[arg(short = 'f')]
        file: String,
        /// Print the result as JSON: {"valid", "zonename", "problems": [{"path", "message"}]}
        /// (exit status 1 when invalid).
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Configure, install and boot a zone from a JSON manifest; a failed step undoes the others.
    #[command(
        after_help = "Examples:\n  zoneadm provision -f web.json\n  zoneadm validate -f web.json && zoneadm provision -f - < web.json"
    )]
    Provision {
        /// The manifest ("-": stdin).
        #[arg(short = 'f')]
        file: String,
    },
    /// Change a zone from a partial manifest: caps, autoboot and metadata apply to the running
    /// zone at once, the rest at its next boot (the output says which).
    #[command(
        after_help = "Examples:\n  echo '{\"max_physical_memory\": 512}' | zoneadm -z web update -f -\n  zoneadm -z web update -j -f changes.json"
    )]
    Update {
        /// The partial manifest ("-": stdin).
        #[arg(short = 'f')]
        file: String,
        /// Print the report as JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Print zones' state changes as JSON lines (every zone, or the -z zone); with -F keep
    /// printing new ones.
    #[command(
        after_help = "Examples:\n  zoneadm events\n  zoneadm -z web events -F -n\n  zoneadm events -F -t 60 -c 2"
    )]
    Events {
        /// Follow: keep printing changes as they happen.
        #[arg(short = 'F', long = "follow")]
        follow: bool,
        /// Only changes from now on (skip the recorded history).
        #[arg(short = 'n', long = "new")]
        new_only: bool,
        /// Stop following after this many seconds.
        #[arg(short = 't', long = "timeout")]
        timeout: Option<u64>,
        /// Stop after this many events.
        #[arg(short = 'c', long = "count")]
        count: Option<usize>,
    },
    /// Shut down every running zone, all at once (each halted after -t seconds).
    #[command(name = "shutdown-all")]
    #[command(after_help = "Examples:\n  zoneadm shutdown-all -t 120")]
    ShutdownAll {
        /// Seconds to wait for each zone's init before halting it.
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
                (None, None) => admin::install_vm(&store, &name)?,
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
            let name = need()?;
            admin::boot(&store, &name, args)?;
            if let Some(accel) = admin::vm_accel(&store, &name) {
                eprintln!("zoneadm: zone '{name}': booting with {accel}");
            }
            follow_autoboot(&store, &name, true, cli.keep_autoboot)?;
        }
        Cmd::Halt => {
            let name = need()?;
            admin::halt(&store, &name)?;
            follow_autoboot(&store, &name, false, cli.keep_autoboot)?;
        }
        Cmd::Shutdown { reboot, timeout } => {
            let name = need()?;
            admin::shutdown(&store, &name, reboot, Duration::from_secs(timeout))?;
            if !reboot {
                follow_autoboot(&store, &name, false, cli.keep_autoboot)?;
            }
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
        Cmd::Snapshot { name } => admin::snapshot(&store, &need()?, &name)?,
        Cmd::Rollback {
            destroy_later,
            name,
        } => admin::rollback(&store, &need()?, &name, destroy_later)?,
        Cmd::ListSnapshots { parsable, json } => {
            let snaps = admin::list_snapshots(&store, &need()?)?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&snaps)?)?;
            } else if parsable {
                for s in &snaps {
                    writeln!(out, "{}:{}", admin::escape_field(&s.name), s.created)?;
                }
            } else {
                writeln!(out, "{:<24} CREATED", "NAME")?;
                for s in &snaps {
                    writeln!(out, "{:<24} {}", s.name, format_time(s.created))?;
                }
            }
        }
        Cmd::DeleteSnapshot { name } => admin::delete_snapshot(&store, &need()?, &name)?,
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
        Cmd::Validate { file, json } => {
            let result = manifest::validate(&store, &read_input(&file)?);
            if json {
                let (doc, ok) = match result {
                    Ok(plan) => (
                        serde_json::json!({"valid": true, "zonename": plan.zone.zonename, "problems": []}),
                        true,
                    ),
                    Err(manifest::ManifestError::Invalid(problems)) => {
                        let problems: Vec<_> = problems
                            .iter()
                            .map(|p| serde_json::json!({"path": p.path, "message": p.msg}))
                            .collect();
                        (
                            serde_json::json!({"valid": false, "zonename": null, "problems": problems}),
                            false,
                        )
                    }
                    Err(e) => return Err(e.into()),
                };
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(i32::from(!ok));
            }
            let plan = result?;
            println!("{}: valid manifest for zone {}", file, plan.zone.zonename);
        }
        Cmd::Provision { file } => {
            let name = manifest::provision(&store, &read_input(&file)?)?;
            println!("{name}");
        }
        Cmd::Update { file, json } => {
            let report = manifest::update(&store, &need()?, &read_input(&file)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_update(&report);
            }
        }
        Cmd::Events {
            follow,
            new_only,
            timeout,
            count,
        } => {
            let opts = events::Options {
                zone: zone.clone(),
                follow,
                new_only,
                timeout: timeout.map(Duration::from_secs),
                count,
            };
            events::stream(&store, &opts, &mut std::io::stdout().lock())?;
        }
        Cmd::BootAll => {
            // `down`: its supervisor died (a power cut); boot cleans up what it left first.
            let zones = every_zone(&store, |z, st| {
                z.autoboot && matches!(st, ZoneState::Installed | ZoneState::Down)
            })?;
            return in_parallel(cli.altroot.as_deref(), &zones, &["boot"]);
        }
        Cmd::ShutdownAll { timeout } => {
            let zones = every_zone(&store, |_, st| st == ZoneState::Running)?;
            let t = timeout.to_string();
            return in_parallel(cli.altroot.as_deref(), &zones, &["shutdown", "-t", &t]);
        }
    }
    Ok(0)
}

/// `YYYY-MM-DD HH:MM:SS` UTC of a Unix time (civil-from-days, no time-zone database).
fn format_time(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The zones (in index order) whose configuration and effective state pass `keep`.
fn every_zone(
    store: &Store,
    keep: impl Fn(&zones::model::Zone, ZoneState) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in store.list()? {
        let st = admin::effective_state(store, &e.name, e.state);
        if store.load(&e.name)?.is_some_and(|z| keep(&z, st)) {
            out.push(e.name);
        }
    }
    Ok(out)
}

/// boot-all and shutdown-all: `zoneadm [-R ALTROOT] -z ZONE ARGS` for every zone at once, as
/// child processes (a zone's supervisor is forked by a single-threaded zoneadm, so parallelism
/// is processes, not threads). Each failure is reported with its zone; exit 1 if any failed.
fn in_parallel(
    altroot: Option<&std::path::Path>,
    zones: &[String],
    args: &[&str],
) -> anyhow::Result<i32> {
    // Not current_exe: after the CVE-2019-5736 seal that names a detached mount.
    let exe = crate::runtime::exeseal::original_exe()?;
    let mut children = Vec::new();
    for z in zones {
        let mut cmd = std::process::Command::new(&exe);
        if let Some(r) = altroot {
            cmd.arg("-R").arg(r);
        }
        cmd.args(["--keep-autoboot", "-z", z])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push((z, cmd.spawn()?));
    }
    let mut failed = 0;
    for (z, child) in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            failed += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim().trim_start_matches("zoneadm: ");
            eprintln!("zoneadm: zone '{z}': {} failed: {err}", args[0]);
        }
    }
    Ok(i32::from(failed > 0))
}

/// With `autoboot = follow` in zones.conf, an operator's boot sets the zone's autoboot and a
/// halt or shutdown clears it (SmartOS vmadm start/stop), so the host service brings back
/// exactly the zones that were running. boot-all and shutdown-all (the service) leave it.
fn follow_autoboot(store: &Store, name: &str, autoboot: bool, keep: bool) -> anyhow::Result<()> {
    if keep || store.conf()?.get("autoboot") != Some("follow") {
        return Ok(());
    }
    let lock = store.lock(name)?;
    if let Some(mut zone) = store.load(name)? {
        if zone.autoboot != autoboot {
            zone.autoboot = autoboot;
            store.save(&lock, &zone)?;
        }
    }
    Ok(())
}

fn print_update(r: &manifest::UpdateReport) {
    let line = |what: &str, keys: &[String]| {
        if !keys.is_empty() {
            println!("{what}: {}", keys.join(", "));
        }
    };
    println!("zone {} ({}) updated", r.zone, r.state);
    line("applied now", &r.live);
    line("needs a reboot", &r.reboot);
    line("stored (applies at boot)", &r.stored);
}

/// The contents of `file`, or stdin for "-".
fn read_input(file: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = zones::lang::input::read_file(
            std::path::Path::new(file),
            zones::lang::input::INPUT_LIMIT,
        )?;
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
