//! Usage errors of the zone tools in illumos's shape: `PROG: what is wrong`, then
//! `usage:\tSYNOPSIS`; no clap "tip:" guesses and no "For more information" line.

/// The text for clap's usage error `rendered` (its plain `render()` output) of `prog`.
pub fn illumos(prog: &str, rendered: &str) -> String {
    let mut what: Vec<String> = Vec::new();
    let mut usage = None;
    let mut in_message = false;
    for line in rendered.lines() {
        if let Some(first) = line.strip_prefix("error: ") {
            what.push(first.trim().to_string());
            in_message = true;
        } else if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.trim().to_string());
            in_message = false;
        } else if line.trim().is_empty() {
            in_message = false;
        } else if in_message && !line.trim_start().starts_with("tip:") {
            what.push(line.trim().to_string());
        }
    }
    let mut out = format!("{prog}: {}\n", join(&what));
    if let Some(u) = usage {
        out.push_str(&format!("usage:\t{u}\n"));
    }
    out
}

/// The message's lines as one: `the following required arguments were not provided: <ZONE>`.
fn join(lines: &[String]) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push_str(if s.ends_with(':') { " " } else { ", " });
        }
        s.push_str(l);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tips_and_help_pointers_go() {
        let clap = "error: unrecognized subcommand 'biot'\n\n  tip: some similar subcommands exist: 'boot-all', 'reboot', 'boot'\n\nUsage: zoneadm [OPTIONS] <COMMAND>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            illumos("zoneadm", clap),
            "zoneadm: unrecognized subcommand 'biot'\nusage:\tzoneadm [OPTIONS] <COMMAND>\n"
        );
    }

    #[test]
    fn continuation_lines_join_the_message() {
        let clap = "error: the following required arguments were not provided:\n  <ZONE>\n\nUsage: zlogin <ZONE> [COMMAND]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            illumos("zlogin", clap),
            "zlogin: the following required arguments were not provided: <ZONE>\nusage:\tzlogin <ZONE> [COMMAND]...\n"
        );
    }
}
