//! A man page (roff, man(7) macros) from a clap definition, in the layout of illumos's
//! pages: NAME, SYNOPSIS (one line per subcommand, with the names of option values and
//! operands, as `zoneadm -z zone install -d path`), DESCRIPTION, OPTIONS, SUBCOMMANDS (each
//! with its own options and operands), EXAMPLES. clap_mangen's SYNOPSIS drops the value
//! names (`[-R ]`) and its pages list subcommands without their options, hence this.

use std::fmt::Write;

use clap::{Arg, ArgAction, Command};

/// Roff-escape text: backslashes, hyphens (so they are not hyphenation points) and a
/// leading `.` or `'`, which would start a request.
pub fn esc(s: &str) -> String {
    let t = s.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

fn bold(s: &str) -> String {
    format!("\\fB{}\\fR", esc(s))
}

fn italic(s: &str) -> String {
    format!("\\fI{}\\fR", esc(s))
}

/// Whether clap added the argument itself.
fn builtin(a: &Arg) -> bool {
    matches!(a.get_id().as_str(), "help" | "version")
}

fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
}

/// The value's name as illumos writes operands: lower case, `altroot`, `zone`.
fn value_name(a: &Arg) -> String {
    match a.get_value_names() {
        Some(v) if !v.is_empty() => v
            .iter()
            .map(|n| n.as_str().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => a.get_id().as_str().to_string(),
    }
    .to_lowercase()
    .replace('_', "-")
}

/// How an option or operand is written: `-R altroot`, `--json`, `zone`, `[command...]`.
fn spelled(a: &Arg) -> String {
    let many = matches!(a.get_action(), ArgAction::Append)
        || a.get_num_args().is_some_and(|n| n.max_values() > 1);
    if a.is_positional() {
        let v = format!(
            "{}{}",
            italic(&value_name(a)),
            if many { "..." } else { "" }
        );
        return if a.is_last_set() {
            format!("{} {v}", bold("--"))
        } else {
            v
        };
    }
    let flag = match (a.get_short(), a.get_long()) {
        (Some(c), _) => bold(&format!("-{c}")),
        (None, Some(l)) => bold(&format!("--{l}")),
        (None, None) => String::new(),
    };
    if takes_value(a) {
        let optional = a.get_num_args().is_some_and(|n| n.min_values() == 0);
        let v = italic(&value_name(a));
        if optional {
            let eq = if a.get_short().is_some() { "" } else { "=" };
            format!("{flag}[{eq}{v}]")
        } else {
            format!("{flag} {v}")
        }
    } else {
        flag
    }
}

/// Both spellings for the OPTIONS list: `-j, --json`.
fn spelled_long(a: &Arg) -> String {
    match (a.get_short(), a.get_long()) {
        (Some(_), Some(l)) => {
            let short = spelled(a);
            let long = bold(&format!("--{l}"));
            let v = if takes_value(a) {
                format!(" {}", italic(&value_name(a)))
            } else {
                String::new()
            };
            format!("{short}, {long}{v}")
        }
        _ => spelled(a),
    }
}

/// In brackets unless required.
fn in_synopsis(a: &Arg) -> String {
    let s = spelled(a);
    if a.is_required_set() {
        s
    } else {
        format!("[{s}]")
    }
}

/// The options and operands a page shows for `cmd`; a subcommand's page entry leaves out
/// the global options it inherits (shown once, for the command).
fn visible_args(cmd: &Command, sub: bool) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(move |a| !(a.is_hide_set() || builtin(a) || (sub && a.is_global_set())))
}

fn visible_subs(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// The options, then the operands, of one command as a synopsis fragment.
fn usage(cmd: &Command, sub: bool, globals_only: bool) -> String {
    let args: Vec<&Arg> = visible_args(cmd, sub)
        .filter(|a| !globals_only || !a.is_positional())
        .collect();
    let mut parts: Vec<String> = args
        .iter()
        .filter(|a| !a.is_positional())
        .map(|a| in_synopsis(a))
        .collect();
    parts.extend(
        args.iter()
            .filter(|a| a.is_positional())
            .map(|a| in_synopsis(a)),
    );
    parts.join(" ")
}

fn help_of(a: &Arg) -> String {
    let mut h = a
        .get_long_help()
        .or(a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && takes_value(a) {
        let _ = write!(h, " (default: {})", defaults.join(","));
    }
    let possible: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if !possible.is_empty() && takes_value(a) {
        let _ = write!(h, " (one of: {})", possible.join(", "));
    }
    h
}

/// A `.TP` list of options and operands.
fn arg_list(page: &mut String, args: &[&Arg]) {
    for a in args {
        let _ = writeln!(page, ".TP\n{}\n{}", spelled_long(a), esc(&help_of(a)));
    }
}

fn text(page: &mut String, s: &str) {
    for line in s.lines() {
        if line.trim().is_empty() {
            page.push_str(".PP\n");
        } else {
            let _ = writeln!(page, "{}", esc(line));
        }
    }
}

/// The whole page of `name`.
pub fn render(name: &str, cmd: Command) -> String {
    let mut cmd = cmd;
    cmd.build();
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut page = String::new();
    let _ = writeln!(
        page,
        ".TH {} {} \"\" \"zones-linux\" \"System Administration Commands\"",
        name.to_uppercase(),
        super::SECTION
    );
    page.push_str(".ad l\n.nh\n");
    let _ = writeln!(page, ".SH NAME\n{} \\- {}", esc(name), esc(&about));
    page.push_str(".SH SYNOPSIS\n");
    let mut globals = usage(&cmd, false, cmd.has_subcommands());
    // Many global options (runz's) would bury each subcommand's own: named once, listed
    // under OPTIONS.
    if cmd.has_subcommands() && visible_args(&cmd, false).count() > 3 {
        globals = format!("[{}]", italic("global-options"));
    }
    let head = if globals.is_empty() {
        bold(name)
    } else {
        format!("{} {globals}", bold(name))
    };
    if cmd.has_subcommands() {
        let lines: Vec<String> = visible_subs(&cmd)
            .map(|s| {
                let u = usage(s, true, false);
                let sub = bold(s.get_name());
                if u.is_empty() {
                    format!("{head} {sub}")
                } else {
                    format!("{head} {sub} {u}")
                }
            })
            .collect();
        page.push_str(&lines.join("\n.br\n"));
        page.push('\n');
    } else {
        let _ = writeln!(page, "{head}");
    }
    page.push_str(".SH DESCRIPTION\n");
    let long = cmd
        .get_long_about()
        .map(|a| a.to_string())
        .unwrap_or(about.clone());
    text(&mut page, &long);
    let opts: Vec<&Arg> = visible_args(&cmd, false).collect();
    if !opts.is_empty() {
        page.push_str(".SH OPTIONS\n");
        arg_list(&mut page, &opts);
    }
    let mut examples = String::new();
    if cmd.has_subcommands() {
        page.push_str(".SH SUBCOMMANDS\n");
        for s in visible_subs(&cmd) {
            let u = usage(s, true, false);
            let _ = writeln!(page, ".TP\n{} {u}", bold(s.get_name()));
            let about = s
                .get_long_about()
                .or(s.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            text(&mut page, &about);
            let args: Vec<&Arg> = visible_args(s, true).collect();
            if !args.is_empty() {
                page.push_str(".RS\n");
                arg_list(&mut page, &args);
                page.push_str(".RE\n");
            }
            if let Some(a) = s.get_after_help() {
                examples.push_str(&a.to_string());
                examples.push('\n');
            }
        }
    }
    if let Some(a) = cmd.get_after_help() {
        examples.push_str(&a.to_string());
    }
    let examples: Vec<&str> = examples
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Examples:")
        .collect();
    if !examples.is_empty() {
        page.push_str(".SH EXAMPLES\n.nf\n");
        for e in examples {
            let _ = writeln!(page, "{}", esc(e));
        }
        page.push_str(".fi\n");
    }
    page.push_str(".SH SEE ALSO\n");
    let _ = writeln!(
        page,
        "\\fBzoneadm\\fR(8), \\fBzonecfg\\fR(8), \\fBzlogin\\fR(8), \\fBzones.conf\\fR(5)"
    );
    page
}
