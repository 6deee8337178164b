//! The bash completions `make install` installs: zonecfg's (options, subcommands, resource
//! types, property names) and zone names for `zonecfg -z`, `zoneadm -z` and `zlogin`, read
//! from the installed zoneadm under the line's `-R`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A scratch directory `/tmp/runz-test-<pid>-completion-<tag>`, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("runz-test-{}-completion-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs completion function `func` from the installed script for `cmd` on the line `words`
/// (the last word is the one being completed), with the prefix's bin first on PATH; returns
/// the candidates.
fn complete(prefix: &Path, cmd: &str, func: &str, words: &[&str]) -> Vec<String> {
    let script = prefix.join("share/bash-completion/completions").join(cmd);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let line = format!(
        "source '{}' || exit 9\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n{func} '{cmd}' '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let path = format!(
        "{}:{}",
        prefix.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &line])
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} {words:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn installed_bash_completion_offers_zone_names_and_zonecfg_commands() {
    let has_make = Command::new("make")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_make,
        "make is needed (scripts/install-deps.sh installs it)"
    );
    let prefix = Scratch::new("prefix");
    let root = Scratch::new("root");
    let status = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-s", "install", "BUILD=debug"])
        .arg(format!("PREFIX={}", prefix.0.display()))
        .arg(format!("CARGO={}", env!("CARGO")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let p = &prefix.0;
    let r = root.0.to_str().unwrap();
    // A configured zone, with the installed zonecfg.
    let out = Command::new(p.join("bin/zonecfg"))
        .args([
            "-R",
            r,
            "-z",
            "webzone",
            "create; set zonepath=/zones/webzone",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Zone names: zonecfg -z, zoneadm -z, zlogin's operand; never the global zone.
    assert_eq!(
        complete(p, "zonecfg", "_zonecfg", &["zonecfg", "-R", r, "-z", "w"]),
        ["webzone"]
    );
    assert_eq!(
        complete(p, "zonecfg", "_zonecfg", &["zonecfg", "-R", r, "-z", ""]),
        ["webzone"]
    );
    assert_eq!(
        complete(
            p,
            "zoneadm",
            "_zones_zoneadm",
            &["zoneadm", "-R", r, "-z", ""]
        ),
        ["webzone"]
    );
    assert_eq!(
        complete(p, "zlogin", "_zones_zlogin", &["zlogin", "-R", r, "w"]),
        ["webzone"]
    );
    // Past the zone, clap's completion of the verbs and options still answers.
    let verbs = complete(
        p,
        "zoneadm",
        "_zones_zoneadm",
        &["zoneadm", "-R", r, "-z", "webzone", "bo"],
    );
    assert!(verbs.contains(&"boot".to_string()), "{verbs:?}");
    assert!(!complete(
        p,
        "zlogin",
        "_zones_zlogin",
        &["zlogin", "-R", r, "webzone", "w"]
    )
    .contains(&"webzone".to_string()));

    // zonecfg's subcommands, resource types, properties and options.
    assert_eq!(
        complete(p, "zonecfg", "_zonecfg", &["zonecfg", "-z", "webzone", "c"]),
        ["cancel", "clear", "commit", "create"]
    );
    let all = complete(p, "zonecfg", "_zonecfg", &["zonecfg", "-z", "webzone", ""]);
    for cmd in ["add", "export", "info", "select", "set", "verify", "exit"] {
        assert!(all.contains(&cmd.to_string()), "{cmd}: {all:?}");
    }
    assert_eq!(
        complete(
            p,
            "zonecfg",
            "_zonecfg",
            &["zonecfg", "-z", "webzone", "add", "capped-"]
        ),
        ["capped-cpu", "capped-io", "capped-memory"]
    );
    assert_eq!(
        complete(
            p,
            "zonecfg",
            "_zonecfg",
            &["zonecfg", "-z", "webzone", "set", "zonep"]
        ),
        ["zonepath="]
    );
    assert_eq!(
        complete(p, "zonecfg", "_zonecfg", &["zonecfg", "-"]),
        ["-R", "-f", "-r", "-u", "-z"]
    );
}
