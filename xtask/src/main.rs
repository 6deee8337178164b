//! `zones-gen OUTDIR`: writes man pages and shell completions generated from the clap
//! definitions of runz, zoneadm, zlogin, imgadm, dladm, zonestat, vmadm and zonetrace:
//!
//! ```text
//! OUTDIR/man/man1/NAME.1                 one page per command (subcommands listed in it)
//! OUTDIR/completions/bash/NAME           bash-completion
//! OUTDIR/completions/zsh/_NAME           zsh
//! OUTDIR/completions/fish/NAME.fish      fish
//! ```
//!
//! zonecfg parses its argv by hand (illumos's grammar), so its page is written by hand
//! (docs/man/zonecfg.1) and it has no generated completion. `make install` runs this.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// The commands to document: (binary name, clap definition).
fn commands() -> Vec<(&'static str, clap::Command)> {
    use zones_linux::cli;
    vec![
        ("runz", cli::runz::command()),
        ("zoneadm", cli::zoneadm::command()),
        ("zlogin", cli::zlogin::command()),
        ("imgadm", cli::imgadm::command()),
        ("dladm", cli::dladm::command()),
        ("zonestat", cli::zonestat::command()),
        ("vmadm", cli::vmadm::command()),
        ("zonetrace", cli::zonetrace::command()),
    ]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: zones-gen OUTDIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zones-gen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion under `out`; returns the files written.
fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (name, cmd) in commands() {
        let cmd = cmd.name(name).bin_name(name);
        files.push(man_page(out, name, cmd.clone())?);
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            files.push(completion(out, name, cmd.clone(), shell)?);
        }
    }
    Ok(files)
}

fn man_page(out: &Path, name: &str, cmd: clap::Command) -> std::io::Result<PathBuf> {
    let dir = out.join("man/man1");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    std::fs::write(&path, buf)?;
    Ok(path)
}

fn completion(
    out: &Path,
    name: &str,
    mut cmd: clap::Command,
    shell: Shell,
) -> std::io::Result<PathBuf> {
    let (sub, file) = match shell {
        Shell::Bash => ("bash", name.to_string()),
        Shell::Zsh => ("zsh", format!("_{name}")),
        _ => ("fish", format!("{name}.fish")),
    };
    let dir = out.join("completions").join(sub);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    std::fs::write(&path, buf)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_gets_a_page_and_three_completions() {
        let out = std::env::temp_dir().join(format!("runz-test-{}-gen", std::process::id()));
        struct Rm(PathBuf);
        impl Drop for Rm {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _rm = Rm(out.clone());
        let files = generate(&out).unwrap();
        // A man page and bash/zsh/fish completions for each of the eight commands.
        assert_eq!(files.len(), 8 * 4);
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() > 0, "{}", f.display());
        }
        let page = std::fs::read_to_string(out.join("man/man1/zoneadm.1")).unwrap();
        assert!(page.contains(".TH zoneadm"), "{page}");
        assert!(page.contains("boot\\-all"), "{page}");
        let bash = std::fs::read_to_string(out.join("completions/bash/runz")).unwrap();
        assert!(
            bash.contains("checkpoint") || bash.contains("create"),
            "{bash}"
        );
        let fish = std::fs::read_to_string(out.join("completions/fish/zlogin.fish")).unwrap();
        assert!(fish.contains("complete -c zlogin"), "{fish}");
    }
}
