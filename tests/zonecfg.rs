//! The real `zonecfg` binary, always with `-R <temp dir>` (no root needed, nothing outside the
//! temp dir is touched).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "tmux/mod.rs"]
mod tmux;
use tmux::Tmux;

/// An alternate root `/tmp/runz-test-<pid>-zonecfg-<n>`, removed on drop.
struct Root(PathBuf);

impl Root {
    fn new() -> Root {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "runz-test-{}-zonecfg-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Root(p)
    }

    fn zones_dir(&self) -> PathBuf {
        self.0.join("etc/zones")
    }

    /// Runs `zonecfg -R ROOT -z ZONE ARGS...` with stdin from `/dev/null`.
    fn zonecfg(&self, zone: &str, args: &[&str]) -> Output {
        self.zonecfg_stdin(zone, args, "")
    }

    fn zonecfg_stdin(&self, zone: &str, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zonecfg"))
            .arg("-R")
            .arg(&self.0)
            .args(["-z", zone])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, zone: &str, args: &[&str]) -> String {
        let out = self.zonecfg(zone, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "zonecfg -z {zone} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every file under etc/zones (except lock files) with its bytes.
    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut m = BTreeMap::new();
        if let Ok(rd) = fs::read_dir(self.zones_dir()) {
            for e in rd {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".lock") {
                    m.insert(name, fs::read(e.path()).unwrap());
                }
            }
        }
        m
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SETUP: &str = "create; set zonepath=/zones/web; set autoboot=true; \
add fs; set dir=/data; set special=/srv/data; set type=lofs; add options [ro,nodevices]; end; \
add net; set physical=vnic0; set allowed-address=10.0.0.5/24; set defrouter=10.0.0.1; end; \
add capped-memory; set physical=512m; set swap=1g; end; \
set cpu-shares=10";

#[test]
fn one_shot_create_info_export_and_import() {
    let root = Root::new();
    // One-shot, split over argv words like illumos allows.
    let words: Vec<&str> = SETUP.split(' ').collect();
    root.ok("web", &words);
    let index = fs::read_to_string(root.zones_dir().join("index")).unwrap();
    assert!(index.contains("\"name\": \"web\""), "{index}");
    assert!(index.contains("\"state\": \"configured\""), "{index}");
    assert!(root.zones_dir().join("web.json").exists());

    assert_eq!(
        root.ok("web", &["info", "zonepath"]),
        "zonepath: /zones/web\n"
    );
    let info = root.ok("web", &["info"]);
    assert!(
        info.starts_with("zonename: web\nzonepath: /zones/web\nbrand: linux\nautoboot: true\n"),
        "{info}"
    );
    assert!(info.contains("[cpu-shares: 10]\n"), "{info}");
    assert!(info.contains("fs:\n\tdir: /data\n\tspecial: /srv/data\n\traw not specified\n\ttype: lofs\n\toptions: [ro,nodevices]\n"), "{info}");
    assert!(
        info.contains("capped-memory:\n\tphysical: 512M\n\tswap: 1G\n\tlocked not specified\n"),
        "{info}"
    );
    assert_eq!(
        root.ok("web", &["info", "net", "physical=vnic0"]),
        "net:\n\taddress not specified\n\tallowed-address: 10.0.0.5/24\n\tphysical: vnic0\n\tdefrouter: 10.0.0.1\n\
         \tglobal-nic not specified\n\tmac-addr not specified\n\tvlan-id not specified\n"
    );

    // zonecfg -z web export > f; zonecfg -z copy -f f; zonecfg -z copy export == f.
    let exported = root.ok("web", &["export"]);
    let f = root.0.join("web.cfg");
    fs::write(&f, &exported).unwrap();
    root.ok("copy", &["-f", f.to_str().unwrap()]);
    assert_eq!(root.ok("copy", &["export"]), exported);
    // export -f writes the same file.
    let f2 = root.0.join("web2.cfg");
    root.ok("web", &["export", "-f", f2.to_str().unwrap()]);
    assert_eq!(fs::read_to_string(&f2).unwrap(), exported);
    // Commands from stdin when it is not a tty, and `-f -`.
    root.zonecfg_stdin("piped", &[], &exported);
    assert_eq!(root.ok("piped", &["export"]), exported);
    let out = root.zonecfg_stdin("dash", &["-f", "-"], &exported);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(root.ok("dash", &["export"]), exported);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let root = Root::new();
    root.ok("web", &[SETUP]);
    let before = root.snapshot();
    let cfg = root.0.join("bad.cfg");
    fs::write(
        &cfg,
        "set autoboot=false\n# fine so far\nadd fs\nset dir=relative\nend\n",
    )
    .unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        ("web", &["add capped-cpu; set ncpus=1.5; end; select capped-memory; set physical=12x; end"],
         "zonecfg: capped-memory physical \"12x\": expected a size like 512m or 2g\n"),
        ("web", &["set autoboot=false; set frob=1"], "zonecfg: 'frob' is not a valid global property\n"),
        ("web", &["add fs; set dir=/x"], "zonecfg: fs resource incomplete; use 'end' to finish it or 'cancel' to drop it\n"),
        ("web", &["add fs; set dir=/x; end"], "zonecfg: fs resource incomplete: special not specified\n"),
        ("web", &["add zvol"], "zonecfg: 'zvol' is not a valid resource type\n"),
        ("web", &["set autoboot=false; set bootargs=\"open"], "zonecfg: unterminated quoted string \"open\n"),
        ("web", &["set autoboot=false; frob"], "zonecfg: 'frob' is not a valid command; type 'help' for the list\n"),
        ("web", &["set ip-type=shared"], "zonecfg: net physical=vnic0: address not specified (a shared-IP zone needs one)\n"),
        ("web", &["set zonepath=zones/web"], "zonecfg: zonepath \"zones/web\": expected an absolute path\n"),
        ("web", &["create"], "zonecfg: Zone web already exists; create not allowed (use 'create -F' to overwrite it).\n"),
        ("web", &["delete"], "zonecfg: delete: confirmation needed; use -F in a non-interactive session\n"),
        ("web", &["remove -F fs dir=/nope"], "zonecfg: No fs resource matches dir=/nope.\n"),
        ("web", &["-f", cfg.to_str().unwrap()],
         &format!("On line 4 of {}:\nzonecfg: fs dir \"relative\": expected an absolute path\n", cfg.display())),
        ("global", &["info"], "zonecfg: zonename \"global\": the name is reserved (is the global zone)\n"),
        ("SUNWdefault", &["create"], "zonecfg: zonename \"SUNWdefault\": the name is reserved (names beginning with SUNW are reserved)\n"),
        ("-bad", &["create"], "zonecfg: zonename \"-bad\": expected at most 64 letters, digits, '_', '.' or '-', starting with a letter or digit\n"),
        ("new", &["info"], "zonecfg: new: No such zone configured\n"),
        ("new", &["create; set zonepath=/zones/new; add net; set physical=a/b; end"],
         "zonecfg: net physical \"a/b\": expected a link name of 1 to 15 characters without '/', ':' or spaces\n"),
    ];
    for (zone, args, want) in cases {
        let out = root.zonecfg(zone, args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{zone} {args:?}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out), *want, "{zone} {args:?}");
        assert_eq!(root.snapshot(), before, "{zone} {args:?} changed the store");
    }
}

#[test]
fn usage_errors_exit_2() {
    let root = Root::new();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zonecfg"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for args in [
        &["-R", root.0.to_str().unwrap()][..],
        &["-q", "-z", "a"],
        &["-z", "a", "-f", "x", "info"],
        &["-R", "relative", "-z", "a", "info"],
        &["-z"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("usage:"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let help = run(&["help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("add <resource-type>"));
    assert!(!root.zones_dir().exists());
}

#[test]
fn delete_revert_and_uuid() {
    let root = Root::new();
    root.ok("web", &[SETUP]);
    let index = fs::read_to_string(root.zones_dir().join("index")).unwrap();
    let uuid = index
        .split("\"uuid\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_zonecfg"))
        .arg("-R")
        .arg(&root.0)
        .args(["-u", &uuid, "info", "zonename"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zonename: web\n");
    root.ok("web", &["set autoboot=false; revert -F"]);
    assert_eq!(root.ok("web", &["info autoboot"]), "autoboot: true\n");
    root.ok("web", &["delete", "-F"]);
    assert!(!root.zones_dir().join("web.json").exists());
    let out = root.zonecfg("web", &["info"]);
    assert_eq!(stderr(&out), "zonecfg: web: No such zone configured\n");
}

/// Interactive mode on a pseudo-terminal: prompts on stdout, the new-zone greeting, the
/// resource-scope prompt, and the commit at `exit`.
#[test]
fn interactive_session_on_a_pty() {
    use nix::pty::openpty;
    let root = Root::new();
    let pty = openpty(None, None).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_zonecfg"))
        .arg("-R")
        .arg(&root.0)
        .args(["-z", "tty"])
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut master = fs::File::from(pty.master);
    master
        .write_all(
            b"create\nset zonepath=/zones/tty\nadd fs\nset dir=/d\ncancel\nset bogus=1\nexit\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    drop(master);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Use 'create' to begin configuring a new zone.\n\
         zonecfg:tty> zonecfg:tty> zonecfg:tty> zonecfg:tty:fs> zonecfg:tty:fs> zonecfg:tty> zonecfg:tty> "
    );
    assert_eq!(
        stderr(&out),
        "tty: No such zone configured\nzonecfg: 'bogus' is not a valid global property\n"
    );
    assert!(Path::new(&root.zones_dir().join("tty.json")).exists());
}

/// Interactive zonecfg in a real terminal (tmux): Tab completes commands, resource types,
/// property names and values; Up recalls history; ^C abandons only the line being typed;
/// `n` at "Resource incomplete; really quit" (after `exit` or ^D) keeps the session and its
/// changes; ^D at the global scope is `exit` and commits.
#[test]
fn interactive_editing_in_a_real_terminal() {
    let root = Root::new();
    let bin = env!("CARGO_BIN_EXE_zonecfg");
    let rootdir = root.0.to_str().unwrap();
    let t = Tmux::start("zonecfg-edit", &[bin, "-R", rootdir, "-z", "web"], &[]);
    t.wait_last("zonecfg:web>");
    // A command name, then a property name, then a value.
    t.type_text("cre");
    t.keys(&["Tab"]);
    t.wait_last("zonecfg:web> create");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web>");
    t.type_text("set zonep");
    t.keys(&["Tab"]);
    t.wait_last("zonecfg:web> set zonepath=");
    t.type_text("/zones/web");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web>");
    t.type_text("set ip-type=sh");
    t.keys(&["Tab"]);
    t.wait_last("zonecfg:web> set ip-type=shared");
    // ^C abandons the line: ip-type stays as it was, zonecfg keeps running.
    t.keys(&["C-c"]);
    t.wait_last("zonecfg:web>");
    // A resource type, and a property of the resource being edited.
    t.type_text("add capped-m");
    t.keys(&["Tab"]);
    t.wait_last("zonecfg:web> add capped-memory");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web:capped-memory>");
    t.type_text("set phy");
    t.keys(&["Tab"]);
    t.wait_last("zonecfg:web:capped-memory> set physical=");
    t.type_text("512m");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web:capped-memory>");
    t.type_text("set swap=1g");
    t.keys(&["C-c"]);
    t.wait_last("zonecfg:web:capped-memory>");
    t.type_text("end");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web>");
    // Two candidates: Tab twice lists them.
    t.type_text("info capped-");
    t.keys(&["Tab"]);
    t.keys(&["Tab"]);
    t.wait("the list of candidates", |s| {
        s.lines().any(|l| {
            l.split_whitespace().collect::<Vec<_>>() == ["capped-cpu", "capped-io", "capped-memory"]
        })
    });
    t.keys(&["C-c"]);
    t.wait_last("zonecfg:web>");
    // History: Up recalls the last line.
    t.type_text("info zonepath");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web>");
    t.keys(&["Up"]);
    t.wait_last("zonecfg:web> info zonepath");
    t.keys(&["Enter"]);
    let s = t.wait("the recalled command's output", |s| {
        s.matches("zonepath: /zones/web").count() == 2
    });
    assert_eq!(s.lines().last(), Some("zonecfg:web>"), "{s}");
    // `n` at the quit prompt stays in the resource, after `exit` and after ^D.
    t.type_text("add fs");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web:fs>");
    t.type_text("exit");
    t.keys(&["Enter"]);
    t.wait_last("Resource incomplete; really quit (y/[n])?");
    t.type_text("n");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web:fs>");
    t.keys(&["C-d"]);
    let s = t.wait_last("Resource incomplete; really quit (y/[n])?");
    // ^D ends the line once, as illumos: the question is on the next line.
    assert!(
        s.ends_with("zonecfg:web:fs>\nResource incomplete; really quit (y/[n])?"),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web:fs>");
    // The session and its changes are intact: drop the fs; ^D is exit, which commits.
    t.type_text("cancel");
    t.keys(&["Enter"]);
    t.wait_last("zonecfg:web>");
    t.keys(&["C-d"]);
    assert_eq!(t.exit_status(), 0, "{}", t.screen());
    assert_eq!(
        root.ok("web", &["info", "zonepath"]),
        "zonepath: /zones/web\n"
    );
    assert_eq!(root.ok("web", &["info", "ip-type"]), "ip-type: exclusive\n");
    assert_eq!(
        root.ok("web", &["info", "capped-memory"]),
        "capped-memory:\n\tphysical: 512M\n\tswap not specified\n\tlocked not specified\n"
    );
    assert!(!root.ok("web", &["info"]).contains("fs:"));
}
