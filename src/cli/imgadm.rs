//! `imgadm`: the image store (SmartOS imgadm's verbs): import, list, get, delete, vacuum.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use zones::image::{ImageManifest, ImageStore, ImportOptions};
use zones::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "imgadm",
    about = "Manage zone images: import, list, get, delete, vacuum",
    disable_version_flag = true
)]
struct Cli {
    /// Alternate root: the image store is ALTROOT/var/lib/zones/images.
    #[arg(short = 'R', global = true)]
    altroot: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Import an OCI image layout, an oci-archive or docker-archive tarball, or (--rootfs) a
    /// plain root filesystem tarball or directory.
    Import {
        path: PathBuf,
        /// PATH is a root filesystem, not an image.
        #[arg(long)]
        rootfs: bool,
        /// The image's name (default: the name recorded in the image, else the file name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List images.
    List {
        /// JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Show one image's manifest (JSON).
    Get { image: String },
    /// Delete an image no zone uses.
    Delete { image: String },
    /// Delete every image no zone uses, and leftovers of interrupted imports.
    Vacuum {
        /// Only say what would be deleted.
        #[arg(short = 'n')]
        dry_run: bool,
    },
}

/// The clap definition of `imgadm` (for generated man pages and shell completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `imgadm` binary.
pub fn main() -> i32 {
    super::run_main("imgadm", dispatch)
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let zones = Store::open(cli.altroot.as_deref())?;
    let images = ImageStore::open(zones.altroot());
    let mut out = std::io::stdout().lock();
    match cli.command {
        Cmd::Import { path, rootfs, name } => {
            let m = images.import(&path, &ImportOptions { rootfs, name })?;
            writeln!(
                out,
                "Imported image {} ({}) from {}",
                m.name,
                m.short_id(),
                path.display()
            )?;
        }
        Cmd::List { json } => {
            let list = images.list()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                table(&mut out, &zones, &list)?;
            }
        }
        Cmd::Get { image } => {
            let m = images.get(&image)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
        }
        Cmd::Delete { image } => {
            let m = images.get(&image)?;
            let users = zones::storage::image_users(&zones, &m.id);
            let m = images.delete(&m.id, &users)?;
            // Its btrfs subvolumes and zfs datasets (made by zone installs) go too.
            zones::storage::forget_image(&zones.state_dir(), &m.id)?;
            writeln!(out, "Deleted image {} ({})", m.name, m.short_id())?;
        }
        Cmd::Vacuum { dry_run } => {
            for m in images.list()? {
                if !zones::storage::image_users(&zones, &m.id).is_empty() {
                    continue;
                }
                if !dry_run {
                    images.delete(&m.id, &[])?;
                    zones::storage::forget_image(&zones.state_dir(), &m.id)?;
                }
                writeln!(
                    out,
                    "{} image {} ({})",
                    if dry_run { "Would delete" } else { "Deleted" },
                    m.name,
                    m.short_id()
                )?;
            }
            if !dry_run && images.dir().is_dir() {
                for p in images.clean_staging()? {
                    writeln!(out, "Removed leftover {}", p.display())?;
                }
            }
        }
    }
    Ok(())
}

fn table(out: &mut impl Write, zones: &Store, list: &[ImageManifest]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<12}  {:<32}  {:<14}  {:>9}  ZONES",
        "ID", "NAME", "SOURCE", "SIZE"
    )?;
    for m in list {
        let users = zones::storage::image_users(zones, &m.id).len();
        let source = serde_json::to_value(m.source)?;
        writeln!(
            out,
            "{:<12}  {:<32}  {:<14}  {:>9}  {users}",
            m.short_id(),
            m.name,
            source.as_str().unwrap_or(""),
            human(m.size)
        )?;
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
