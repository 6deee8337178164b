//! Command-line faces. Each is thin: it parses argv, calls the engine, and turns errors into
//! the text a user reads. Nothing below `runtime/` knows about clap.

pub mod dladm;
pub mod imgadm;
pub mod runz;
pub mod usage;
pub mod vmadm;
pub mod zlogin;
pub mod zoneadm;
pub mod zonecfg;
pub mod zonestat;
pub mod zonetrace;

/// The exit-code convention of every face: parse argv with clap (usage errors exit 2 with an
/// illumos usage line, --help 0), run, and print an error as `PROG: message` with exit 1.
/// Diagnostics of the engine below carry `PROG:` too, not `runz:`. Output cut short by its
/// reader (`imgadm list | head`) ends quietly with 141, as a C tool killed by SIGPIPE.
pub fn run_main<C: clap::Parser, T: Into<ExitCode>>(
    prog: &'static str,
    run: impl FnOnce(C) -> anyhow::Result<T>,
) -> i32 {
    crate::log::set_program(prog);
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(prog, &e),
    };
    match run(cli) {
        Ok(v) => v.into().0,
        Err(e) if broken_pipe(&e) => EXIT_SIGPIPE,
        Err(e) => {
            eprintln!("{prog}: {e:#}");
            1
        }
    }
}

/// 128 + SIGPIPE: what a shell reports for a writer its pipe's reader left.
const EXIT_SIGPIPE: i32 = 141;

/// Help and version as clap prints them (exit 0); a usage error as illumos does (exit 2).
fn clap_exit(prog: &str, e: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return if e.use_stderr() { 2 } else { 0 };
    }
    eprint!("{}", usage::illumos(prog, &e.render().to_string()));
    2
}

/// True when `e` comes from writing to a pipe whose reader has gone (EPIPE).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What a face's run returns: `()` is success, a number is that exit code.
pub struct ExitCode(pub i32);

impl From<()> for ExitCode {
    fn from(_: ()) -> Self {
        ExitCode(0)
    }
}

impl From<i32> for ExitCode {
    fn from(code: i32) -> Self {
        ExitCode(code)
    }
}
