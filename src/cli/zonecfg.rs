//! `zonecfg`: configure a zone, as on illumos.
//!
//! ```text
//! zonecfg [-R altroot] -z zone                    interactive (stdin is a tty)
//! zonecfg [-R altroot] -z zone "cmd; cmd; ..."    one-shot (argv words are joined with spaces)
//! zonecfg [-R altroot] -z zone -f file            command file ("-" is stdin)
//! zonecfg [-R altroot] -z zone -r ...              live: commit applies the caps to the
//!                                                  running zone first (a refusal commits
//!                                                  nothing), then saves them; any other
//!                                                  change refuses the commit, named
//! zonecfg [-R altroot] -z zone export -j           the configuration as JSON
//! zonecfg [-R altroot] -z zone import -j file      replace it with a JSON document ("-": stdin)
//! zonecfg help
//! ```
//!
//! With no command and stdin not a tty, commands are read from stdin like a command file.
//! Non-interactive sessions stop at the first error without committing, and commit at the end
//! when there are changes. The prompt goes to stdout, errors to stderr. Exit codes: 0 ok,
//! 1 error, 2 usage.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use zones::lang::{self, input, json, parse, Command, Console, Flow, LangError, Session};
use zones::store::Store;

const USAGE: &str = "usage:\tzonecfg [-R altroot] -z <zone> (interactive)\n\
\tzonecfg [-R altroot] -z <zone> <command>\n\
\tzonecfg [-R altroot] -z <zone> -f <command-file>\n\
\tzonecfg [-R altroot] -z <zone> -r ... (live: apply to the running zone)\n\
\tzonecfg [-R altroot] -z <zone> export -j\n\
\tzonecfg [-R altroot] -z <zone> import -j <json-file>\n\
\tzonecfg [-R altroot] -u <uuid> ...\n\
\tzonecfg help\n\
Examples:\n\
\tzonecfg -z web 'create; set zonepath=/zones/web; set autoboot=true'\n\
\tzonecfg -z web 'add capped-memory; set physical=512m; end'\n\
\tzonecfg -z web -r 'select capped-memory; set physical=1g; end'\n\
\tzonecfg -z web export -j > web.json && zonecfg -z web2 import -j web.json\n\
Exit status: 0 success, 1 error, 2 usage error.\n";

const EXIT_OK: i32 = 0;
const EXIT_ERROR: i32 = 1;
const EXIT_USAGE: i32 = 2;

/// Entry point of the `zonecfg` binary; returns the exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run(&args)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Opts {
    altroot: Option<PathBuf>,
    zone: Option<String>,
    uuid: Option<String>,
    file: Option<String>,
    command: Vec<String>,
    help: bool,
    /// -r: live reconfiguration of the running zone.
    live: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let mut value = |flag: &str| -> Result<String, String> {
            let attached = &a[flag.len()..];
            if !attached.is_empty() {
                return Ok(attached.to_string());
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("option {flag} requires an argument"))?;
            i += 1;
            Ok(v)
        };
        match a.as_str() {
            "-h" | "--help" | "-?" => o.help = true,
            "-r" => o.live = true,
            "--" => {
                o.command = args[i..].to_vec();
                break;
            }
            _ if a.starts_with("-R") => o.altroot = Some(PathBuf::from(value("-R")?)),
            _ if a.starts_with("-z") => o.zone = Some(value("-z")?),
            _ if a.starts_with("-u") => o.uuid = Some(value("-u")?),
            _ if a.starts_with("-f") => o.file = Some(value("-f")?),
            _ if a.starts_with('-') && a.len() > 1 => return Err(format!("illegal option {a}")),
            _ => {
                o.command = args[i - 1..].to_vec();
                break;
            }
        }
    }
    if o.file.is_some() && !o.command.is_empty() {
        return Err("-f and a command exclude each other".into());
    }
    if o.zone.is_some() && o.uuid.is_some() {
        return Err("-z and -u exclude each other".into());
    }
    Ok(o)
}

fn usage(msg: &str) -> i32 {
    if !msg.is_empty() {
        eprintln!("zonecfg: {msg}");
    }
    eprint!("{USAGE}");
    EXIT_USAGE
}

/// Runs zonecfg with `args` (without the program name).
pub fn run(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(msg) => return usage(&msg),
    };
    let no_zone = opts.zone.is_none() && opts.uuid.is_none();
    if opts.help || (no_zone && opts.command.first().is_some_and(|c| c == "help")) {
        print!("{USAGE}\n{}", lang::help(None));
        return EXIT_OK;
    }
    if no_zone {
        return usage("a zone is required: -z <zone>");
    }
    let store = match Store::open(opts.altroot.as_deref()) {
        Ok(s) => s,
        Err(e) => return usage(&e.to_string()),
    };
    let name = match zone_name(&store, &opts) {
        Ok(n) => n,
        Err(e) => return fail(None, &e),
    };
    let mut session = match Session::open(&store, &name) {
        Ok(s) => s,
        Err(e) => return fail(None, &e),
    };
    if opts.live {
        let store = &store;
        session.set_before_commit(Box::new(move |zone| live_commit(store, zone)));
    }
    if let Some(code) = json_command(&mut session, &name, &opts.command) {
        return code;
    }
    if let Some(file) = &opts.file {
        return run_file(&mut session, file);
    }
    if !opts.command.is_empty() {
        return run_text(&mut session, &opts.command.join(" "), None);
    }
    if io::stdin().is_terminal() {
        return interactive(&mut session, &name);
    }
    run_file(&mut session, "-")
}

/// `zonecfg -r`'s commit: every change must be one the running zone takes live (its caps);
/// a commit holding any other is refused whole, naming each, and nothing is applied.
fn live_commit(store: &Store, zone: &zones::model::Zone) -> Result<(), String> {
    let name = &zone.zonename;
    crate::zone::admin::check_live(store, name).map_err(|e| e.to_string())?;
    if let Some(old) = store.load(name).map_err(|e| e.to_string())? {
        let refused = zones::live::not_live(&old, zone);
        if !refused.is_empty() {
            return Err(format!(
                "zone '{name}': cannot change in the running zone: {} (read at boot: commit without -r, then reboot the zone)",
                refused.join(", ")
            ));
        }
    }
    crate::zone::admin::apply_live(store, zone).map_err(|e| e.to_string())
}

fn zone_name(store: &Store, opts: &Opts) -> Result<String, LangError> {
    if let Some(z) = &opts.zone {
        return Ok(z.clone());
    }
    let uuid = opts.uuid.as_deref().unwrap_or_default();
    match store.find_uuid(uuid)? {
        Some(e) => Ok(e.name),
        None => Err(LangError::Usage(format!(
            "uuid {uuid}: No such zone configured"
        ))),
    }
}

/// Prints an error the illumos way: in a command file, `On line N of FILE:` first.
fn fail(place: Option<(usize, &str)>, e: &dyn std::fmt::Display) -> i32 {
    if let Some((line, file)) = place {
        eprintln!("On line {line} of {file}:");
    }
    eprintln!("zonecfg: {e}");
    EXIT_ERROR
}

/// Standard input for "-", else the regular file `file` (a FIFO or a device is refused at
/// once, see [`input::read_file`]).
fn read_input(file: &str, text: &mut String) -> Result<(), String> {
    if file == "-" {
        return io::stdin()
            .read_to_string(text)
            .map(|_| ())
            .map_err(|e| format!("{file}: {e}"));
    }
    *text = input::read_file(std::path::Path::new(file), input::INPUT_LIMIT)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn run_file(session: &mut Session, file: &str) -> i32 {
    let mut text = String::new();
    if let Err(e) = read_input(file, &mut text) {
        return fail(None, &e);
    }
    run_text(session, &text, Some(file))
}

/// `export -j` and `import -j FILE` (JSON, see `zones::lang::json`); `None` for anything else.
fn json_command(session: &mut Session, name: &str, command: &[String]) -> Option<i32> {
    let words: Vec<&str> = command.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["export", "-j"] => Some(match session.config() {
            Some(z) => {
                StdConsole { interactive: false }.out(&json::export_json(z));
                EXIT_OK
            }
            None => fail(None, &LangError::NoSuchZone(name.to_string())),
        }),
        ["import", "-j", file] => {
            let mut text = String::new();
            if let Err(e) = read_input(file, &mut text) {
                return Some(fail(None, &e));
            }
            let mut con = StdConsole { interactive: false };
            Some(match json::import(session, &text, &mut con) {
                Ok(()) => EXIT_OK,
                Err(e) => fail(None, &format!("{file}: {e}")),
            })
        }
        ["export" | "import", "-j", ..] => Some(usage("usage: export -j | import -j <json-file>")),
        _ => None,
    }
}

/// A non-interactive session over `text`: parse all, run until the first error, commit at the
/// end if needed.
fn run_text(session: &mut Session, text: &str, file: Option<&str>) -> i32 {
    let place = |line: usize| file.map(|f| (line, f));
    let stmts = match parse(text) {
        Ok(s) => s,
        Err(e) => return fail(place(e.line), &e),
    };
    let mut con = StdConsole { interactive: false };
    for st in &stmts {
        match session.run(&st.cmd, &mut con) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => return EXIT_OK,
            Err(e) => return fail(place(st.line), &e),
        }
    }
    match session.finish(&mut con) {
        Ok(()) => EXIT_OK,
        Err(e) => fail(None, &e),
    }
}

/// An interactive session, as illumos's: SIGINT is ignored (^C abandons the line being typed,
/// never the session), EOF is `exit` (a "really quit" answered `n` keeps the session), and
/// with both stdin and stdout on a terminal, lines are edited with history and Tab
/// completion (see [`lang::complete`]).
fn interactive(session: &mut Session, name: &str) -> i32 {
    ignore_sigint();
    let mut con = Tty::new();
    if !session.exists() {
        eprintln!("{name}: No such zone configured");
        println!("Use 'create' to begin configuring a new zone.");
    }
    let exit = Command::Exit { force: false };
    loop {
        let stmts = match con.read(&session.prompt(), session.scope()) {
            Line::Text(line) => match parse(&line) {
                Ok(s) => s.into_iter().map(|s| s.cmd).collect(),
                Err(e) => {
                    fail(None, &e);
                    continue;
                }
            },
            Line::Interrupted => continue,
            Line::Eof => vec![exit.clone()],
        };
        for cmd in &stmts {
            match session.run(cmd, &mut con) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => return EXIT_OK,
                Err(e) if con.at_eof => return fail(None, &e),
                Err(e) => {
                    fail(None, &e);
                    break;
                }
            }
        }
    }
}

/// illumos zonecfg ignores SIGINT: ^C at the terminal discards the line being typed (the
/// line editor reads it as a key; without one the terminal flushes its input line).
fn ignore_sigint() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code; zonecfg is single-threaded here and nothing
    // else in it depends on SIGINT's disposition.
    let _ = unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) };
}

/// One read from the terminal.
enum Line {
    Text(String),
    /// ^C: the line was abandoned.
    Interrupted,
    Eof,
}

/// The interactive terminal: a line editor when stdin and stdout are both terminals, plain
/// line reads otherwise (stdin a terminal, stdout redirected: no escape sequences in it).
struct Tty {
    editor: Option<rustyline::Editor<Completion, rustyline::history::DefaultHistory>>,
    /// Standard input reached its end while answering a question: nothing more can be read.
    at_eof: bool,
}

impl Tty {
    fn new() -> Tty {
        let editor = if io::stdout().is_terminal() {
            let config = rustyline::Config::builder()
                .completion_type(rustyline::CompletionType::List)
                .auto_add_history(false)
                .build();
            rustyline::Editor::with_config(config).ok().map(|mut e| {
                e.set_helper(Some(Completion { scope: None }));
                e
            })
        } else {
            None
        };
        Tty {
            editor,
            at_eof: false,
        }
    }

    /// A command line; `scope` is what completion offers properties of.
    fn read(&mut self, prompt: &str, scope: Option<zones::model::ResourceType>) -> Line {
        let Some(ed) = &mut self.editor else {
            self.out(prompt);
            return match read_line() {
                Some(l) => Line::Text(l),
                None => {
                    // The line editor ends the line itself; the terminal's ^D does not.
                    println!();
                    Line::Eof
                }
            };
        };
        if let Some(h) = ed.helper_mut() {
            h.scope = scope;
        }
        match ed.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = ed.add_history_entry(line.as_str());
                }
                Line::Text(line)
            }
            Err(rustyline::error::ReadlineError::Interrupted) => Line::Interrupted,
            Err(_) => Line::Eof,
        }
    }
}

impl Console for Tty {
    fn out(&mut self, text: &str) {
        StdConsole { interactive: true }.out(text);
    }

    fn err(&mut self, text: &str) {
        eprint!("{text}");
    }

    fn can_confirm(&self) -> bool {
        !self.at_eof
    }

    /// `QUESTION (y/[n])? `: `y` or `yes` is yes; anything else, an empty line or ^C is no.
    /// `None` at the end of input (and every later question is `None` too).
    fn confirm(&mut self, question: &str) -> Option<bool> {
        if self.at_eof {
            return None;
        }
        let prompt = format!("{question} (y/[n])? ");
        let answer = match &mut self.editor {
            Some(ed) => match ed.readline(&prompt) {
                Ok(a) => Some(a),
                Err(rustyline::error::ReadlineError::Interrupted) => Some(String::new()),
                Err(_) => None,
            },
            None => {
                self.out(&prompt);
                read_line()
            }
        };
        let Some(answer) = answer else {
            self.at_eof = true;
            return None;
        };
        Some(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
    }
}

/// Tab completion of the line being edited.
struct Completion {
    scope: Option<zones::model::ResourceType>,
}

impl rustyline::completion::Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(lang::complete::complete(&line[..pos], self.scope))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

/// One line of stdin, `None` at end of input.
fn read_line() -> Option<String> {
    let mut line = String::new();
    match io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

struct StdConsole {
    interactive: bool,
}

impl Console for StdConsole {
    fn out(&mut self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn err(&mut self, text: &str) {
        eprint!("{text}");
    }

    fn can_confirm(&self) -> bool {
        self.interactive
    }

    fn confirm(&mut self, question: &str) -> Option<bool> {
        if !self.interactive {
            return None;
        }
        self.out(&format!("{question} (y/[n])? "));
        let answer = read_line()?;
        Some(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn argv_forms() {
        let o = parse_args(&args(&[
            "-R",
            "/alt",
            "-z",
            "a",
            "add",
            "net;",
            "set",
            "physical=x;",
            "end",
        ]))
        .unwrap();
        assert_eq!(o.altroot, Some(PathBuf::from("/alt")));
        assert_eq!(o.zone.as_deref(), Some("a"));
        assert_eq!(o.command.join(" "), "add net; set physical=x; end");
        let o = parse_args(&args(&["-za", "-f", "cfg"])).unwrap();
        assert_eq!(
            (o.zone.as_deref(), o.file.as_deref()),
            (Some("a"), Some("cfg"))
        );
        let o = parse_args(&args(&["-z", "a", "--", "-x"])).unwrap();
        assert_eq!(o.command, ["-x"]);
        assert!(parse_args(&args(&["-h"])).unwrap().help);
        assert_eq!(parse_args(&args(&["-q"])).unwrap_err(), "illegal option -q");
        assert_eq!(
            parse_args(&args(&["-z"])).unwrap_err(),
            "option -z requires an argument"
        );
        assert_eq!(
            parse_args(&args(&["-z", "a", "-f", "x", "info"])).unwrap_err(),
            "-f and a command exclude each other"
        );
        assert!(parse_args(&args(&["-z", "a", "-u", "u"])).is_err());
    }
}
