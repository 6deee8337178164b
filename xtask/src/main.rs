//! `zones-gen OUTDIR`: writes man pages and shell completions generated from the clap
//! definitions of runz, zoneadm, zlogin, imgadm, dladm, zonestat, vmadm and zonetrace:
//!
//! ```text
//! OUTDIR/man/man8/NAME.8                 one page per command, in section 8 as illumos's
//!                                        administration commands are: a SYNOPSIS line per
//!                                        subcommand with its argument names, every option
//!                                        and operand with its description
//! OUTDIR/completions/bash/NAME           bash-completion
//! OUTDIR/completions/zsh/_NAME           zsh
//! OUTDIR/completions/fish/NAME.fish      fish
//! ```
//!
//! zonecfg parses its argv by hand (illumos's grammar), so its page is written by hand
//! (docs/man/zonecfg.8), as are mdata-get's (docs/man/mdata-get.1: it runs inside zones, a
//! user command) and zones.conf's (docs/man/zones.conf.5); zonecfg's bash completion is
//! written from its language (see [`bash`]), which also adds zone names to zoneadm's and
//! zlogin's. `make install` runs this.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

mod bash;
mod man;

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
    let path = out.join("completions/bash/zonecfg");
    std::fs::write(&path, bash::zonecfg())?;
    files.push(path);
    Ok(files)
}

/// The section of the generated pages (illumos: administration commands are in 8).
const SECTION: &str = "8";

fn man_page(out: &Path, name: &str, cmd: clap::Command) -> std::io::Result<PathBuf> {
    let dir = out.join(format!("man/man{SECTION}"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.{SECTION}"));
    std::fs::write(&path, man::render(name, cmd))?;
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
    if shell == Shell::Bash {
        let generated = String::from_utf8_lossy(&buf).into_owned();
        if let Some(script) = bash::with_zone_names(name, &generated) {
            buf = script.into_bytes();
        }
    }
    std::fs::write(&path, buf)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument and subcommand of every command, `cmd sub --arg`, that has no help text
    /// (clap's own --help/--version excepted).
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                out.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && sub.get_about().is_none() {
                out.push(format!("{p} (no description)"));
            }
            undocumented(sub, &p, out);
        }
    }

    /// Every page documents every visible option and operand of every subcommand with its
    /// help text.
    #[test]
    fn every_option_is_on_its_page() {
        for (name, cmd) in commands() {
            let mut cmd = cmd.name(name).bin_name(name);
            cmd.build();
            let page = man::render(name, cmd.clone());
            let mut all = vec![&cmd];
            all.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()));
            for c in all {
                for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
                    if matches!(a.get_id().as_str(), "help" | "version") {
                        continue;
                    }
                    let Some(h) = a.get_help() else { continue };
                    let h = man::esc(&h.to_string());
                    assert!(
                        page.contains(&h),
                        "{name} {}: {h} not on the page",
                        c.get_name()
                    );
                }
            }
        }
    }

    /// The hand-written pages are in the section their file name says: zonecfg in 8 with
    /// the other administration commands, mdata-get (run inside zones) in 1, zones.conf in 5.
    #[test]
    fn hand_written_pages_have_their_sections() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/man");
        for (file, th) in [
            ("zonecfg.8", ".TH ZONECFG 8 "),
            ("mdata-get.1", ".TH MDATA-GET 1 "),
            ("zones.conf.5", ".TH ZONES.CONF 5 "),
        ] {
            let page = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(
                page.starts_with(th),
                "{file}: {}",
                page.lines().next().unwrap_or("")
            );
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".1") && n != "mdata-get.1"),
            "{names:?}"
        );
    }

    #[test]
    fn every_argument_has_a_help_text() {
        let mut out = Vec::new();
        for (name, cmd) in commands() {
            undocumented(&cmd, name, &mut out);
        }
        assert!(out.is_empty(), "no help text:\n{}", out.join("\n"));
    }

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
        // A man page and bash/zsh/fish completions for each command.
        assert_eq!(files.len(), commands().len() * 4 + 1);
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() > 0, "{}", f.display());
        }
        let page = std::fs::read_to_string(out.join("man/man8/zoneadm.8")).unwrap();
        assert!(page.contains(".TH ZONEADM 8"), "{page}");
        assert!(page.contains("boot\\-all"), "{page}");
        // SYNOPSIS keeps the names of option values and operands.
        assert!(
            page.contains("\\fBinstall\\fR [\\fB\\-d\\fR \\fIsource\\fR]"),
            "{page}"
        );
        assert!(page.contains("[\\fB\\-R\\fR \\fIaltroot\\fR]"), "{page}");
        assert!(!out.join("man/man1").exists());
        let bash = std::fs::read_to_string(out.join("completions/bash/runz")).unwrap();
        assert!(
            bash.contains("checkpoint") || bash.contains("create"),
            "{bash}"
        );
        let fish = std::fs::read_to_string(out.join("completions/fish/zlogin.fish")).unwrap();
        assert!(fish.contains("complete -c zlogin"), "{fish}");
    }
}
