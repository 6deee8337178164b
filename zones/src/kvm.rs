//! The kvm brand's virtual machine, as the zone's configuration describes it.
//!
//! A kvm zone's workload is `qemu-system-x86_64`; what it runs is set with `attr` resources,
//! as illumos's bhyve brand does (`add attr; set name=vcpus; set type=string; set value=2; end`):
//!
//! | attr | value | default |
//! |------|-------|---------|
//! | `vcpus` | number of virtual CPUs (1-64) | 1 |
//! | `ram` | guest memory, a size (`512m`, `1g`; a bare number is MiB, as vmadm's `ram`) | 256m |
//! | `kernel`, `initrd` | host paths of a kernel (or unikernel) and initrd to boot directly | none |
//! | `cmdline` | the direct-boot kernel's command line | none |
//! | `boot` | `disk` or `kernel`: what boots (default: `kernel` when one is set) | |
//! | `disk0` ... `disk7` | `image=ID[,size=SIZE][,boot=true][,model=virtio\|ide]` | none |
//! | `accel` | `auto` (KVM when /dev/kvm runs a stock guest, else TCG), `kvm` or `tcg` | auto |
//!
//! The zone's memory cap is the guest RAM plus [`MEMORY_OVERHEAD`] (qemu's own memory); a
//! `capped-memory physical` below that is refused.

use std::path::PathBuf;

use crate::model::{Brand, Size, Zone};

/// What qemu itself needs beyond the guest's RAM (code, device models, TCG's translation
/// cache): the zone's memory cap is `ram + MEMORY_OVERHEAD`.
pub const MEMORY_OVERHEAD: u64 = 256 << 20;
/// The most disks a VM may have (`disk0` ... `disk7`).
pub const MAX_DISKS: usize = 8;
const DEFAULT_RAM: u64 = 256 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KvmError {
    #[error("zone '{zone}': attr {attr} \"{value}\": {why}")]
    BadAttr {
        zone: String,
        attr: String,
        value: String,
        why: String,
    },
    #[error("zone '{zone}': {why}")]
    Invalid { zone: String, why: String },
}

/// One `diskN` attr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// `disk0` ...: also the file name of the zone's copy-on-write clone.
    pub name: String,
    /// The image (a name or id `imgadm` knows).
    pub image: String,
    /// The disk's virtual size; `None`: the image's.
    pub size: Option<u64>,
    pub boot: bool,
    /// `virtio` (default) or `ide`.
    pub model: String,
}

/// The accelerator the zone asks for (`attr accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when this host's /dev/kvm can run a stock guest, else TCG.
    Auto,
    Kvm,
    Tcg,
}

/// The in-zone uid and gid qemu runs as (host ids: the zone's id-range base + this).
pub const QEMU_ID: u32 = 100;
/// Where a direct-boot kernel and initrd appear in the zone (read-only file binds).
pub const ZONE_KERNEL: &str = "/vm/kernel";
pub const ZONE_INITRD: &str = "/vm/initrd";
/// The host-made directory of qemu's QMP socket, as the zone sees it.
pub const ZONE_QMP_DIR: &str = "/vm/qmp";
/// The QMP socket's file name in [`ZONE_QMP_DIR`].
pub const QMP_SOCKET: &str = "qmp.sock";
/// qemu in the zone (the curated brand root is mounted read-only on /usr).
pub const ZONE_QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// What boots first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootFrom {
    Kernel,
    Disk,
}

/// A kvm zone's virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmConfig {
    pub vcpus: u32,
    /// Bytes.
    pub ram: u64,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub boot: BootFrom,
    pub disks: Vec<DiskSpec>,
    pub accel: AccelChoice,
}

impl KvmConfig {
    /// Reads the VM from `zone`'s attrs; `None` when the zone's brand is not kvm.
    pub fn from_zone(zone: &Zone) -> Result<Option<KvmConfig>, KvmError> {
        if zone.brand != Brand::Kvm {
            return Ok(None);
        }
        let bad = |attr: &str, value: &str, why: &str| KvmError::BadAttr {
            zone: zone.zonename.clone(),
            attr: attr.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        };
        let mut cfg = KvmConfig {
            vcpus: 1,
            ram: DEFAULT_RAM,
            kernel: None,
            initrd: None,
            cmdline: None,
            boot: BootFrom::Disk,
            disks: Vec::new(),
            accel: AccelChoice::Auto,
        };
        let mut boot = None;
        for a in &zone.attr {
            let (Some(name), Some(value)) = (a.name.as_deref(), a.value.as_deref()) else {
                continue;
            };
            match name {
                "vcpus" => {
                    cfg.vcpus = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| bad(name, value, "expected 1 to 64 virtual CPUs"))?
                }
                "ram" => {
                    cfg.ram = parse_ram(value).ok_or_else(|| {
                        bad(
                            name,
                            value,
                            "expected a size like 512m or 2g (a bare number is MiB)",
                        )
                    })?
                }
                "kernel" | "initrd" => {
                    let p = PathBuf::from(value);
                    if !p.is_absolute() {
                        return Err(bad(name, value, "expected an absolute host path"));
                    }
                    if name == "kernel" {
                        cfg.kernel = Some(p);
                    } else {
                        cfg.initrd = Some(p);
                    }
                }
                "cmdline" => cfg.cmdline = Some(value.to_string()),
                "accel" => {
                    cfg.accel = match value {
                        "auto" => AccelChoice::Auto,
                        "kvm" => AccelChoice::Kvm,
                        "tcg" => AccelChoice::Tcg,
                        _ => return Err(bad(name, value, "expected auto, kvm or tcg")),
                    }
                }
                "boot" => {
                    boot = Some(match value {
                        "kernel" => BootFrom::Kernel,
                        "disk" => BootFrom::Disk,
                        _ => return Err(bad(name, value, "expected kernel or disk")),
                    })
                }
                _ if is_disk_name(name) => cfg
                    .disks
                    .push(parse_disk(name, value).map_err(|why| bad(name, value, &why))?),
                _ => {}
            }
        }
        cfg.disks.sort_by(|a, b| a.name.cmp(&b.name));
        cfg.boot = match boot {
            Some(b) => b,
            None if cfg.kernel.is_some() => BootFrom::Kernel,
            None => BootFrom::Disk,
        };
        let invalid = |why: &str| KvmError::Invalid {
            zone: zone.zonename.clone(),
            why: why.to_string(),
        };
        if cfg.boot == BootFrom::Kernel && cfg.kernel.is_none() {
            return Err(invalid(
                "boot is kernel but no kernel is set: add attr kernel",
            ));
        }
        if (cfg.initrd.is_some() || cfg.cmdline.is_some()) && cfg.kernel.is_none() {
            return Err(invalid("initrd and cmdline need a kernel: add attr kernel"));
        }
        if cfg.boot == BootFrom::Disk && cfg.disks.is_empty() {
            return Err(invalid(
                "nothing to boot: add attr disk0 (image=ID,boot=true) or attr kernel",
            ));
        }
        if cfg.disks.iter().filter(|d| d.boot).count() > 1 {
            return Err(invalid("more than one disk has boot=true"));
        }
        Ok(Some(cfg))
    }

    /// The zone's memory cap: the guest's RAM and qemu's overhead.
    pub fn memory_cap(&self) -> u64 {
        self.ram + MEMORY_OVERHEAD
    }

    /// qemu's command line in the zone, up to the disks' and NICs' arguments (`extra`, from
    /// `kvm_disk::qemu_args` and `network::vm_nic_qemu_args`); `accel` is qemu's `-accel`
    /// value (`kvm`, or `tcg,thread=multi,...`).
    pub fn qemu_args(&self, accel: &str, extra: &[String]) -> Vec<String> {
        let mut a: Vec<String> = [
            ZONE_QEMU,
            "-nodefaults",
            "-display",
            "none",
            "-no-user-config",
            "-accel",
            accel,
            "-cpu",
            "max",
            "-smp",
            &self.vcpus.to_string(),
            "-m",
            &format!("{}M", self.ram >> 20),
            "-chardev",
            "stdio,id=con0,signal=off",
            "-serial",
            "chardev:con0",
            "-monitor",
            "none",
            "-qmp",
            &format!("unix:{ZONE_QMP_DIR}/{QMP_SOCKET},server=on,wait=off"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.kernel.is_some() {
            a.extend(["-kernel".to_string(), ZONE_KERNEL.to_string()]);
            if self.initrd.is_some() {
                a.extend(["-initrd".to_string(), ZONE_INITRD.to_string()]);
            }
            if let Some(c) = &self.cmdline {
                a.extend(["-append".to_string(), c.clone()]);
            }
        }
        if self.boot == BootFrom::Disk {
            a.extend(["-boot".to_string(), "order=c".to_string()]);
        }
        a.extend(extra.iter().cloned());
        a
    }
}

fn is_disk_name(name: &str) -> bool {
    name.strip_prefix("disk")
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < MAX_DISKS && name.len() == 5)
}

/// `512` (MiB, as vmadm's `ram`), `512m`, `1g`.
fn parse_ram(value: &str) -> Option<u64> {
    let bytes = match value.parse::<u64>() {
        Ok(mib) => mib.checked_mul(1 << 20)?,
        Err(_) => Size::parse("ram", value).ok()?.bytes(),
    };
    (bytes >= 16 << 20).then_some(bytes)
}

fn parse_disk(name: &str, value: &str) -> Result<DiskSpec, String> {
    let mut d = DiskSpec {
        name: name.to_string(),
        image: String::new(),
        size: None,
        boot: false,
        model: "virtio".into(),
    };
    for part in value.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not key=value"))?;
        match k {
            "image" | "image_uuid" => d.image = v.to_string(),
            "size" => {
                d.size = Some(
                    parse_ram(v).ok_or_else(|| format!("size '{v}': expected a size like 10g"))?,
                )
            }
            "boot" => {
                d.boot = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("boot '{v}': expected true or false")),
                }
            }
            "model" => {
                if v != "virtio" && v != "ide" {
                    return Err(format!("model '{v}': expected virtio or ide"));
                }
                d.model = v.to_string();
            }
            _ => return Err(format!("unknown key '{k}' (image, size, boot, model)")),
        }
    }
    if d.image.is_empty() {
        return Err("no image: expected image=ID".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attr, AttrType};

    fn zone(attrs: &[(&str, &str)]) -> Zone {
        let mut z = Zone::new("vm");
        z.brand = Brand::Kvm;
        z.attr = attrs
            .iter()
            .map(|(n, v)| Attr {
                name: Some(n.to_string()),
                attr_type: Some(AttrType::String),
                value: Some(v.to_string()),
            })
            .collect();
        z
    }

    #[test]
    fn reads_a_direct_kernel_boot() {
        let c = KvmConfig::from_zone(&zone(&[
            ("vcpus", "2"),
            ("ram", "512"),
            ("kernel", "/boot/vmlinuz"),
            ("cmdline", "console=ttyS0"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.vcpus, 2);
        assert_eq!(c.ram, 512 << 20);
        assert_eq!(c.boot, BootFrom::Kernel);
        assert_eq!(c.memory_cap(), (512 << 20) + MEMORY_OVERHEAD);
    }

    #[test]
    fn reads_disks_in_order() {
        let c = KvmConfig::from_zone(&zone(&[
            ("disk1", "image=data,size=1g"),
            ("disk0", "image=deb,boot=true,model=ide"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.boot, BootFrom::Disk);
        assert_eq!(c.disks[0].name, "disk0");
        assert!(c.disks[0].boot);
        assert_eq!(c.disks[0].model, "ide");
        assert_eq!(c.disks[1].size, Some(1 << 30));
    }

    #[test]
    fn refuses_bad_values_naming_them() {
        let e = KvmConfig::from_zone(&zone(&[("vcpus", "0"), ("kernel", "/k")])).unwrap_err();
        assert!(e.to_string().contains("attr vcpus \"0\""), "{e}");
        let e = KvmConfig::from_zone(&zone(&[("disk0", "size=1g")])).unwrap_err();
        assert!(e.to_string().contains("no image"), "{e}");
        let e = KvmConfig::from_zone(&zone(&[])).unwrap_err();
        assert!(e.to_string().contains("nothing to boot"), "{e}");
        let e = KvmConfig::from_zone(&zone(&[("kernel", "rel/k")])).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }

    #[test]
    fn qemu_args_boot_the_kernel_from_its_zone_paths() {
        let c = KvmConfig::from_zone(&zone(&[
            ("ram", "256m"),
            ("kernel", "/k"),
            ("initrd", "/i"),
            ("cmdline", "console=ttyS0"),
            ("accel", "tcg"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.accel, AccelChoice::Tcg);
        let a = c.qemu_args("tcg,thread=multi", &["-x".into()]).join(" ");
        assert!(
            a.starts_with("/usr/bin/qemu-system-x86_64 -nodefaults"),
            "{a}"
        );
        assert!(
            a.contains("-accel tcg,thread=multi -cpu max -smp 1 -m 256M"),
            "{a}"
        );
        assert!(
            a.contains("-kernel /vm/kernel -initrd /vm/initrd -append console=ttyS0 -x"),
            "{a}"
        );
        assert!(
            a.contains("-qmp unix:/vm/qmp/qmp.sock,server=on,wait=off"),
            "{a}"
        );
        let e = KvmConfig::from_zone(&zone(&[("kernel", "/k"), ("accel", "hvf")])).unwrap_err();
        assert!(e.to_string().contains("attr accel \"hvf\""), "{e}");
    }

    #[test]
    fn other_brands_have_no_vm() {
        let mut z = zone(&[]);
        z.brand = Brand::Linux;
        assert_eq!(KvmConfig::from_zone(&z).unwrap(), None);
    }
}
