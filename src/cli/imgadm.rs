//! `imgadm`: the image store (SmartOS imgadm's verbs): import (files and registries), list,
//! get, delete, vacuum, create (an image from a halted zone).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use zones::image::registry::PullOptions;
use zones::image::{build, DiskFormat, ImageConfig, ImageManifest, ImageStore, ImportOptions};
use zones::state::ZoneState;
use zones::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "imgadm",
    about = "Manage zone images: import, list, get, delete, vacuum, create",
    after_help = "Examples:\n  imgadm import /var/tmp/alpine-oci.tar\n  imgadm import docker://registry.example:5000/alpine:3.20\n  imgadm import --disk raw --name deb12 /var/tmp/debian.img\n  imgadm list -j\n  zoneadm -z web install -i alpine\n\nExit status: 0 success, 1 error, 2 usage error.",
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
    /// Import an OCI image layout, an oci-archive or docker-archive tarball, (--rootfs) a
    /// plain root filesystem tarball or directory, a disk image for kvm zones (a qcow2 file,
    /// or --disk raw FILE), or pull docker://HOST[:PORT]/REPO[:TAG] (or @sha256:DIGEST) from
    /// a registry.
    #[command(
        after_help = "Examples:\n  imgadm import /var/tmp/alpine-oci.tar\n  imgadm import --rootfs --name busybox /var/tmp/rootfs.tar.gz\n  imgadm import --name deb12 /var/tmp/debian-12.qcow2\n  imgadm import --disk raw --name deb12-raw /var/tmp/debian-12.img\n  imgadm import --creds user:secret docker://registry.example:5000/alpine:3.20"
    )]
    Import {
        /// A path, or docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST].
        source: String,
        /// SOURCE is a root filesystem, not an image.
        #[arg(long, conflicts_with = "disk")]
        rootfs: bool,
        /// SOURCE is a disk image (type zvol) in FORMAT: raw or qcow2. A qcow2 file is told
        /// by its header without this; a raw one needs it.
        #[arg(long, value_name = "FORMAT", value_parser = ["raw", "qcow2"])]
        disk: Option<String>,
        /// The image's name (default: the name recorded in the image, the reference pulled,
        /// else the file name).
        #[arg(long)]
        name: Option<String>,
        /// Registry over plain http (not https).
        #[arg(long)]
        insecure: bool,
        /// Registry credentials USER:PASSWORD (default: $IMGADM_CREDS), for basic auth or
        /// the registry's token endpoint.
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
    },
    /// List images.
    #[command(after_help = "Examples:\n  imgadm list\n  imgadm list -j")]
    List {
        /// JSON.
        #[arg(short = 'j', long = "json")]
        json: bool,
    },
    /// Show one image's manifest (JSON).
    #[command(after_help = "Examples:\n  imgadm get alpine")]
    Get {
        /// The image: its name or (a prefix of) its id.
        image: String,
    },
    /// Delete an image no zone uses.
    #[command(after_help = "Examples:\n  imgadm delete alpine")]
    Delete {
        /// The image: its name or (a prefix of) its id.
        image: String,
    },
    /// Delete every image no zone uses, and leftovers of interrupted imports.
    #[command(after_help = "Examples:\n  imgadm vacuum -n\n  imgadm vacuum")]
    Vacuum {
        /// Only say what would be deleted.
        #[arg(short = 'n')]
        dry_run: bool,
    },
    /// Make an image (an oci-archive, importable again) from a halted zone's root.
    #[command(
        after_help = "Examples:\n  imgadm create -o /var/tmp/web.tar web\n  imgadm create --name web-base -o web.tar web && imgadm import web.tar"
    )]
    Create {
        /// The zone (installed and halted).
        zone: String,
        /// The archive to write.
        #[arg(short = 'o', value_name = "FILE")]
        output: PathBuf,
        /// The name recorded in the image (default: the zone's name).
        #[arg(long)]
        name: Option<String>,
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
        Cmd::Import {
            source,
            rootfs,
            disk,
            name,
            insecure,
            creds,
        } => {
            let opts = ImportOptions {
                rootfs,
                disk: disk.as_deref().and_then(DiskFormat::parse),
                name,
                progress: std::io::stderr().is_terminal(),
            };
            let m = if source.starts_with("docker://") {
                if rootfs || disk.is_some() {
                    bail!("import: --rootfs and --disk are for files, not registry references ({source})");
                }
                let creds = creds.or_else(|| std::env::var("IMGADM_CREDS").ok());
                if creds.as_deref().is_some_and(|c| !c.contains(':')) {
                    bail!("import: --creds: expected USER:PASSWORD");
                }
                images.pull(&source, &opts, &PullOptions { insecure, creds })?
            } else {
                if insecure || creds.is_some() {
                    bail!("import: --insecure and --creds are for docker:// references, not '{source}'");
                }
                images.import(Path::new(&source), &opts)?
            };
            writeln!(
                out,
                "Imported image {} ({}) from {source}",
                m.name,
                m.short_id(),
            )?;
        }
        Cmd::Create { zone, output, name } => {
            create(&zones, &images, &zone, &output, name.as_deref())?;
            writeln!(out, "Created image of zone {zone} in {}", output.display())?;
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

/// `imgadm create ZONE -o FILE`: the zone must be installed (halted); its storage is
/// mounted for the copy (overlay) and unmounted after, under the zone's lock so that no
/// boot starts meanwhile. The image keeps the configuration of the image the zone came from.
fn create(
    zones: &Store,
    images: &ImageStore,
    zone: &str,
    output: &Path,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let _lock = zones.try_lock(zone)?.ok_or_else(|| {
        anyhow!("create: zone {zone} is busy (another command holds it); try again")
    })?;
    let cfg = zones
        .load(zone)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(zone.to_string()))?;
    if cfg.brand == zones::model::Brand::Kvm {
        bail!(
            "create: zone {zone} is a kvm zone: it has no root to make an image of; its disks are in <zonepath>/{} (qemu-img convert -O qcow2 one into a file to import)",
            zones::kvm_disk::DISKS_DIR
        );
    }
    let state = zones
        .state(zone)?
        .ok_or_else(|| zones::store::StoreError::NoSuchZone(zone.to_string()))?;
    if state != ZoneState::Installed {
        bail!(
            "create: zone {zone} is {}: an image is made from an installed, halted zone (zoneadm -z {zone} halt)",
            state.as_str()
        );
    }
    let zp = cfg
        .zonepath
        .as_deref()
        .ok_or_else(|| anyhow!("create: zone {zone} has no zonepath"))?;
    let host = zones::spec::bundle_dir(zones.altroot(), zp);
    let record = zones::storage::read_record(&host)?;
    let config = record
        .as_ref()
        .and_then(|r| r.image.as_deref())
        .and_then(|id| images.get(id).ok())
        .map(|m| m.config)
        .unwrap_or_else(|| ImageConfig {
            cmd: vec!["/bin/sh".into()],
            ..ImageConfig::default()
        });
    // An image holds the zone's own view of owners: files shifted to the zone's user-namespace
    // range go back to host ids first (its next boot shifts them again).
    zones::storage::shift_ids(&host, 0)?;
    zones::storage::activate(&host)?;
    let made = build::write_oci_archive(&host.join("root"), output, name.unwrap_or(zone), &config);
    let undone = zones::storage::deactivate(&host);
    made.with_context(|| format!("create: zone {zone}"))?;
    undone?;
    Ok(())
}

fn table(out: &mut impl Write, zones: &Store, list: &[ImageManifest]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<12}  {:<32}  {:<12}  {:<14}  {:>9}  ZONES",
        "ID", "NAME", "TYPE", "SOURCE", "SIZE"
    )?;
    for m in list {
        let users = zones::storage::image_users(zones, &m.id).len();
        let source = serde_json::to_value(m.source)?;
        writeln!(
            out,
            "{:<12}  {:<32}  {:<12}  {:<14}  {:>9}  {users}",
            m.short_id(),
            m.name,
            m.image_type.as_str(),
            source.as_str().unwrap_or(""),
            zones::image::progress::human(m.size)
        )?;
    }
    Ok(())
}
