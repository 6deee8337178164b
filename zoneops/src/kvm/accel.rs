//! The accelerator of a kvm zone's qemu: KVM when this host's /dev/kvm can run a stock
//! guest (the CPU has vmx or svm and /dev/kvm opens), else TCG; `attr accel` forces one.
//!
//! A /dev/kvm without vmx/svm is a paravirtual KVM (kvm_pvm): it runs only PVM-enabled guest
//! kernels, and a stock kernel hangs in its real-mode setup, so `auto` takes TCG there.

use std::path::Path;

use zones::kvm::AccelChoice;

/// TCG's translation block cache, MiB: part of `zones::kvm::MEMORY_OVERHEAD` (256 MiB).
pub const TCG_TB_MIB: u32 = 64;

/// The accelerator a boot uses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accel {
    pub kvm: bool,
    pub why: String,
}

impl Accel {
    /// qemu's `-accel` value. TCG's translation cache is bounded ([`TCG_TB_MIB`]): qemu's
    /// default (1 GiB) would not fit the zone's memory overhead.
    pub fn qemu_arg(&self) -> String {
        if self.kvm {
            "kvm".to_string()
        } else {
            format!("tcg,thread=multi,tb-size={TCG_TB_MIB}")
        }
    }

    /// `kvm` or `tcg`.
    pub fn name(&self) -> &'static str {
        if self.kvm {
            "kvm"
        } else {
            "tcg"
        }
    }

    /// "KVM" or "TCG (/dev/kvm cannot run a stock kernel: ...)".
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name().to_uppercase(), self.why)
    }
}

/// What `choice` means on this host; `Err` when KVM is forced and /dev/kvm does not open.
pub fn choose(choice: AccelChoice) -> Result<Accel, String> {
    choose_with(choice, &cpu_flags(), open_kvm(), kvm_pvm())
}

fn choose_with(
    choice: AccelChoice,
    flags: &str,
    kvm_opens: Result<(), String>,
    pvm: bool,
) -> Result<Accel, String> {
    let hw = flags.split_whitespace().any(|f| f == "vmx" || f == "svm");
    match choice {
        AccelChoice::Tcg => Ok(Accel {
            kvm: false,
            why: "attr accel=tcg".into(),
        }),
        AccelChoice::Kvm => kvm_opens
            .map(|()| Accel {
                kvm: true,
                why: "attr accel=kvm".into(),
            })
            .map_err(|e| format!("attr accel=kvm: {e}; set attr accel to auto or tcg")),
        AccelChoice::Auto => Ok(match (hw, kvm_opens) {
            (true, Ok(())) => Accel {
                kvm: true,
                why: "/dev/kvm runs hardware-virtualised guests".into(),
            },
            (false, Ok(())) => Accel {
                kvm: false,
                why: format!(
                    "/dev/kvm cannot run a stock kernel: the CPU has no vmx or svm flag{}",
                    if pvm { " (/dev/kvm is kvm_pvm)" } else { "" }
                ),
            },
            (_, Err(e)) => Accel { kvm: false, why: e },
        }),
    }
}

fn cpu_flags() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.to_string())
        .unwrap_or_default()
}

fn open_kvm() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| format!("/dev/kvm: {e}"))
}

fn kvm_pvm() -> bool {
    Path::new("/sys/module/kvm_pvm").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_kvm_only_with_hardware_virtualisation() {
        let a = choose_with(AccelChoice::Auto, "fpu vmx sse", Ok(()), false).unwrap();
        assert!(a.kvm);
        let a = choose_with(AccelChoice::Auto, "fpu sse", Ok(()), true).unwrap();
        assert_eq!(a.qemu_arg(), "tcg,thread=multi,tb-size=64");
        assert!(
            a.describe()
                .starts_with("TCG (/dev/kvm cannot run a stock kernel"),
            "{a:?}"
        );
        assert!(a.why.contains("kvm_pvm"));
        let a = choose_with(
            AccelChoice::Auto,
            "vmx",
            Err("/dev/kvm: gone".into()),
            false,
        );
        assert!(!a.unwrap().kvm);
        assert!(choose_with(AccelChoice::Kvm, "", Err("x".into()), false).is_err());
        let a = choose_with(AccelChoice::Tcg, "vmx", Ok(()), false).unwrap();
        assert!(!a.kvm);
    }
}
