//! Command-line faces. Each is thin: it parses argv, calls the engine, and turns errors into
//! the text a user reads. Nothing below `runtime/` knows about clap.

pub mod dladm;
pub mod imgadm;
pub mod runz;
pub mod zlogin;
pub mod zoneadm;
pub mod zonecfg;
pub mod zonestat;
pub mod zonetrace;

/// The exit-code convention of every face: parse argv with clap (usage errors exit 2, --help 0),
/// run, and print an error as `PROG: message` with exit 1.
pub fn run_main<C: clap::Parser, T: Into<ExitCode>>(
    prog: &str,
    run: impl FnOnce(C) -> anyhow::Result<T>,
) -> i32 {
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(v) => v.into().0,
        Err(e) => {
            eprintln!("{prog}: {e:#}");
            1
        }
    }
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
