//! `zlogin`: log into a running zone, run a command in it, or attach to its console.

use std::path::PathBuf;

use clap::Parser;
use zones::store::Store;

use crate::zone::login::{self, LoginOpts};

#[derive(Parser, Debug)]
#[command(
    name = "zlogin",
    about = "Log into a zone, run a command in it, or attach to its console (illumos zlogin)",
    after_help = "Examples:\n  zlogin web\n  zlogin web uname -a\n  zlogin -l nobody web id\n  zlogin -C web\n  zlogin -C -d -e '#' web\n\nExit status: the command's, or 1 error, 2 usage error.",
    disable_version_flag = true,
    trailing_var_arg = true
)]
struct Cli {
    /// Alternate root of the zone state.
    #[arg(short = 'R')]
    altroot: Option<PathBuf>,
    /// Attach to the zone's console.
    #[arg(short = 'C')]
    console: bool,
    /// With -C: disconnect when the zone halts (otherwise wait for it to boot again).
    #[arg(short = 'd')]
    disconnect: bool,
    /// No escape character.
    #[arg(short = 'E')]
    no_escape: bool,
    /// The escape character (default ~): ESC followed by . disconnects from the console.
    #[arg(short = 'e')]
    escape: Option<char>,
    /// Log in as this user of the zone.
    #[arg(short = 'l')]
    user: Option<String>,
    /// Safe login: no login shell profile.
    #[arg(short = 'S')]
    safe: bool,
    /// The zone to log in to (running).
    zone: String,
    /// The command to run (none: an interactive login shell).
    #[arg(allow_hyphen_values = true)]
    command: Vec<String>,
}

/// The clap definition of `zlogin` (for generated man pages and shell completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Entry point of the `zlogin` binary.
pub fn main() -> i32 {
    super::run_main("zlogin", run)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let store = Store::open(cli.altroot.as_deref())?;
    if cli.console {
        if !cli.command.is_empty() {
            anyhow::bail!("-C takes no command");
        }
        // illumos: the console has no user to log in as, and no "safe" variant.
        if cli.user.is_some() {
            anyhow::bail!("-l is not allowed with -C");
        }
        if cli.safe {
            anyhow::bail!("-S is not allowed with -C");
        }
        let escape = if cli.no_escape {
            None
        } else {
            let c = cli.escape.unwrap_or('~');
            Some(u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
                anyhow::anyhow!("-e {c:?}: the escape must be one ASCII character")
            })?)
        };
        let opts = login::ConsoleOpts {
            escape,
            disconnect_on_halt: cli.disconnect,
        };
        login::console(&store, &cli.zone, &opts)?;
        return Ok(0);
    }
    if cli.disconnect {
        anyhow::bail!("-d is only valid with -C");
    }
    Ok(login::login(
        &store,
        &LoginOpts {
            zone: cli.zone,
            user: cli.user,
            command: cli.command,
            safe: cli.safe,
        },
    )?)
}
