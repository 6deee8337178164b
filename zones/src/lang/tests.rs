//! Session tests: every subcommand, scopes, messages, and the export round trip.

use std::collections::VecDeque;
use std::fs;

use super::*;
use crate::state::ZoneState;
use crate::store::tests::TempRoot;
use crate::store::Store;

#[derive(Default)]
struct TestConsole {
    out: String,
    err: String,
    interactive: bool,
    answers: VecDeque<bool>,
    asked: Vec<String>,
}

impl Console for TestConsole {
    fn out(&mut self, text: &str) {
        self.out.push_str(text);
    }
    fn err(&mut self, text: &str) {
        self.err.push_str(text);
    }
    fn can_confirm(&self) -> bool {
        self.interactive
    }
    fn confirm(&mut self, question: &str) -> Option<bool> {
        if !self.interactive {
            return None;
        }
        self.asked.push(question.to_string());
        self.answers.pop_front()
    }
}

/// Runs `script` non-interactively like `zonecfg -z NAME "script"`: stops at the first error
/// (no commit), commits at the end otherwise. Returns stdout or the error text.
fn script(store: &Store, name: &str, text: &str) -> Result<String, String> {
    let mut con = TestConsole::default();
    let stmts = parse(text).map_err(|e| e.to_string())?;
    let mut s = Session::open(store, name).map_err(|e| e.to_string())?;
    for st in &stmts {
        match s.run(&st.cmd, &mut con) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Exit) => return Ok(con.out),
            Err(e) => return Err(e.to_string()),
        }
    }
    s.finish(&mut con).map_err(|e| e.to_string())?;
    Ok(con.out)
}

fn ok(store: &Store, name: &str, text: &str) -> String {
    script(store, name, text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn err(store: &Store, name: &str, text: &str) -> String {
    match script(store, name, text) {
        Ok(out) => panic!("{text}: succeeded with {out:?}"),
        Err(e) => e,
    }
}

const BASE: &str = "create; set zonepath=/zones/a";

#[test]
fn create_set_commit_and_info() {
    let root = TempRoot::new("lang-create");
    let store = root.store();
    assert_eq!(err(&store, "a", "info"), "a: No such zone configured");
    ok(&store, "a", BASE);
    let e = store.entry("a").unwrap().unwrap();
    assert_eq!(e.state, ZoneState::Configured);
    assert_eq!(
        e.zonepath.as_deref(),
        Some(std::path::Path::new("/zones/a"))
    );
    assert_eq!(ok(&store, "a", "info zonepath"), "zonepath: /zones/a\n");
    assert_eq!(
        ok(&store, "a", "info brand; info autoboot"),
        "brand: linux\nautoboot: false\n"
    );
    assert!(ok(&store, "a", "info").starts_with("zonename: a\nzonepath: /zones/a\nbrand: linux\n"));
    assert_eq!(
        err(&store, "a", "info frob"),
        "'frob' is not a valid resource type"
    );
}

#[test]
fn nothing_is_committed_when_a_command_fails() {
    let root = TempRoot::new("lang-atomic");
    let store = root.store();
    assert_eq!(
        err(
            &store,
            "a",
            "create; set zonepath=/zones/a; add capped-memory; set physical=12x; end"
        ),
        "capped-memory physical \"12x\": expected a size like 512m or 2g"
    );
    assert!(store.list().unwrap().is_empty());
    assert_eq!(err(&store, "a", "create"), "zonepath not specified");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn resource_scope_add_end_cancel() {
    let root = TempRoot::new("lang-scope");
    let store = root.store();
    ok(&store, "a", BASE);
    assert_eq!(
        err(&store, "a", "end"),
        "The end command only makes sense in the resource scope."
    );
    assert_eq!(
        err(&store, "a", "cancel"),
        "The cancel command only makes sense in the resource scope."
    );
    assert_eq!(
        err(&store, "a", "add fs; set dir=/d"),
        "fs resource incomplete; use 'end' to finish it or 'cancel' to drop it"
    );
    assert_eq!(
        err(&store, "a", "add fs; set dir=/d; commit"),
        "fs resource incomplete; use 'end' to finish it or 'cancel' to drop it"
    );
    assert_eq!(
        err(&store, "a", "add fs; set dir=/d; end"),
        "fs resource incomplete: special not specified"
    );
    assert_eq!(
        err(&store, "a", "add fs; create"),
        "The create command only makes sense in the global scope."
    );
    assert_eq!(
        err(&store, "a", "add frob"),
        "'frob' is not a valid resource type"
    );
    assert_eq!(
        err(&store, "a", "add fs; set frob=1"),
        "'frob' is not a valid fs property"
    );
    assert_eq!(
        err(&store, "a", "add options ro"),
        "The add <property> <value> command only makes sense in the resource scope."
    );
    assert_eq!(
        err(&store, "a", "add fs; add dir"),
        "add: in the fs resource scope, add takes a property and a value, e.g. 'add options ro'"
    );
    ok(&store, "a", "add fs; set dir=/d; cancel");
    assert!(store.load("a").unwrap().unwrap().fs.is_empty());
    ok(
        &store,
        "a",
        "add fs; set dir=/d; set special=/src; set type=lofs; add options [ro,nodevices]; end",
    );
    assert_eq!(
        store.load("a").unwrap().unwrap().fs[0].options,
        ["ro", "nodevices"]
    );
    assert_eq!(
        err(
            &store,
            "a",
            "add fs; set dir=/d; set special=/x; set type=lofs; end"
        ),
        "A fs resource with the dir '/d' already exists."
    );
    ok(&store, "a", "add capped-memory; set physical=1g; end");
    assert_eq!(
        err(&store, "a", "add capped-memory"),
        "The capped-memory resource already exists."
    );
}

#[test]
fn select_modify_and_remove() {
    let root = TempRoot::new("lang-select");
    let store = root.store();
    ok(&store, "a", BASE);
    for d in ["/d1", "/d2"] {
        ok(
            &store,
            "a",
            &format!("add fs; set dir={d}; set special=/s; set type=lofs; end"),
        );
    }
    ok(
        &store,
        "a",
        "select fs dir=/d2; set special=/other; add options ro; end",
    );
    let z = store.load("a").unwrap().unwrap();
    assert_eq!(z.fs[1].special.as_deref(), Some("/other"));
    assert_eq!(z.fs[1].options, ["ro"]);
    ok(&store, "a", "select fs dir=/d2; remove options ro; end");
    assert!(store.load("a").unwrap().unwrap().fs[1].options.is_empty());
    assert_eq!(
        err(&store, "a", "select fs dir=/nope"),
        "No fs resource matches dir=/nope."
    );
    assert_eq!(
        err(
            &store,
            "a",
            "select fs special=/s; set type=tmpfs; end; select fs"
        ),
        "More than one fs resource matches; give more properties to select just one."
    );
    assert_eq!(
        err(&store, "a", "select fs dir=/d1; select fs dir=/d2"),
        "The select command only makes sense in the global scope."
    );
    assert_eq!(
        err(&store, "a", "select fs dir=/d1; set dir=/d2; end"),
        "A fs resource with the dir '/d2' already exists."
    );
    assert_eq!(
        err(&store, "a", "remove fs"),
        "remove fs: confirmation needed; use -F in a non-interactive session"
    );
    assert_eq!(err(&store, "a", "remove net"), "No net resource exists.");
    ok(&store, "a", "remove fs dir=/d1");
    assert_eq!(store.load("a").unwrap().unwrap().fs.len(), 1);
    ok(
        &store,
        "a",
        "add fs; set dir=/d3; set special=/s; set type=lofs; end; remove -F fs",
    );
    assert!(store.load("a").unwrap().unwrap().fs.is_empty());
    ok(
        &store,
        "a",
        "add capped-cpu; set ncpus=1.5; end; select capped-cpu; set ncpus=2; end",
    );
    assert_eq!(
        ok(&store, "a", "info capped-cpu"),
        "capped-cpu:\n\tncpus: 2\n"
    );
    ok(&store, "a", "remove capped-cpu");
    assert!(store.load("a").unwrap().unwrap().capped_cpu.is_none());
}

#[test]
fn interactive_confirmations() {
    let root = TempRoot::new("lang-confirm");
    let store = root.store();
    ok(&store, "a", BASE);
    for d in ["/d1", "/d2"] {
        ok(
            &store,
            "a",
            &format!("add fs; set dir={d}; set special=/s; set type=lofs; end"),
        );
    }
    let mut s = Session::open(&store, "a").unwrap();
    let mut con = TestConsole {
        interactive: true,
        answers: [false, true, true].into(),
        ..Default::default()
    };
    let rm = parse("remove fs").unwrap().remove(0).cmd;
    s.run(&rm, &mut con).unwrap();
    assert_eq!(s.config().unwrap().fs.len(), 2);
    s.run(&rm, &mut con).unwrap();
    assert!(s.config().unwrap().fs.is_empty());
    assert_eq!(
        con.asked[0],
        "Are you sure you want to remove ALL 'fs' resources"
    );
    // exit commits the change.
    let exit = parse("exit").unwrap().remove(0).cmd;
    assert_eq!(s.run(&exit, &mut con).unwrap(), Flow::Exit);
    assert!(store.load("a").unwrap().unwrap().fs.is_empty());
    // exit in the resource scope asks, and quits without committing on yes.
    let mut s = Session::open(&store, "a").unwrap();
    s.run(&parse("add fs").unwrap().remove(0).cmd, &mut con)
        .unwrap();
    assert_eq!(s.prompt(), "zonecfg:a:fs> ");
    assert_eq!(s.run(&exit, &mut con).unwrap(), Flow::Exit);
    assert_eq!(
        con.asked.last().unwrap(),
        "Resource incomplete; really quit"
    );
}

#[test]
fn set_and_clear_global_properties() {
    let root = TempRoot::new("lang-set");
    let store = root.store();
    ok(
        &store,
        "a",
        "create; set zonepath=/zones/a; set autoboot=true; set bootargs=\"-m verbose\"; set cpu-shares=10; set hostid=0x1234",
    );
    let z = store.load("a").unwrap().unwrap();
    assert!(z.autoboot);
    assert_eq!(z.bootargs.as_deref(), Some("-m verbose"));
    assert_eq!(z.rctl_limit("zone.cpu-shares"), Some(10));
    assert_eq!(ok(&store, "a", "info cpu-shares"), "cpu-shares: 10\n");
    assert_eq!(
        ok(&store, "a", "info bootargs"),
        "bootargs: \"-m verbose\"\n"
    );
    ok(
        &store,
        "a",
        "clear bootargs; clear cpu-shares; clear autoboot",
    );
    let z = store.load("a").unwrap().unwrap();
    assert!(!z.autoboot && z.bootargs.is_none() && z.rctl.is_empty());
    assert_eq!(
        err(&store, "a", "clear zonename"),
        "zonename cannot be cleared"
    );
    assert_eq!(
        err(&store, "a", "set autoboot=yes"),
        "autoboot \"yes\": expected true or false"
    );
    assert_eq!(
        err(&store, "a", "set zonepath=zones/a"),
        "zonepath \"zones/a\": expected an absolute path"
    );
    assert_eq!(
        err(&store, "a", "set frob=1"),
        "'frob' is not a valid global property"
    );
    assert_eq!(
        err(&store, "a", "set zonename=global"),
        "zonename \"global\": the name is reserved (is the global zone)"
    );
}

#[test]
fn rename_with_set_zonename() {
    let root = TempRoot::new("lang-rename");
    let store = root.store();
    ok(&store, "a", BASE);
    ok(&store, "b", "create; set zonepath=/zones/b");
    assert_eq!(
        err(&store, "a", "set zonename=b"),
        "zone 'b' already exists; set zonename not allowed"
    );
    let uuid = store.entry("a").unwrap().unwrap().uuid;
    ok(&store, "a", "set zonename=c");
    assert!(store.entry("a").unwrap().is_none());
    assert_eq!(store.entry("c").unwrap().unwrap().uuid, uuid);
    let l = store.lock("c").unwrap();
    store.set_state(&l, ZoneState::Running).unwrap();
    drop(l);
    assert_eq!(
        err(&store, "c", "set zonename=d"),
        "Zone c is running; set zonename not allowed."
    );
}

#[test]
fn verify_and_zonepath_conflicts() {
    let root = TempRoot::new("lang-verify");
    let store = root.store();
    ok(&store, "a", BASE);
    ok(&store, "a", "verify");
    assert_eq!(err(&store, "b", "create; verify"), "zonepath not specified");
    // Like illumos, zonecfg lets two zones share a zonepath; zoneadm refuses to install one.
    ok(&store, "b", "create; set zonepath=/zones/a/sub");
    assert_eq!(
        store
            .zonepath_user("b", std::path::Path::new("/zones/a/sub"))
            .unwrap(),
        Some("a".to_string())
    );
    assert_eq!(
        err(
            &store,
            "a",
            "add net; set physical=vnic0; set address=10.0.0.2/24; end; verify"
        ),
        "net physical=vnic0: address cannot be set in an exclusive-IP zone (use allowed-address)"
    );
    ok(
        &store,
        "a",
        "set ip-type=shared; add net; set physical=eth0; set address=10.0.0.2/24; end; verify",
    );
}

#[test]
fn verify_and_commit_refuse_unknown_and_prohibited_privileges() {
    let root = TempRoot::new("lang-limitpriv");
    let store = root.store();
    ok(&store, "a", BASE);
    let e = err(&store, "a", "set limitpriv=default,sys_module; verify");
    assert!(
        e.contains("\"sys_module\" is prohibited in a non-global zone"),
        "{e}"
    );
    let e = err(&store, "a", "set limitpriv=default,no_such_priv");
    assert!(e.contains("unknown privilege \"no_such_priv\""), "{e}");
    // Nothing was committed: the zone keeps its (default) limitpriv.
    assert_eq!(store.load("a").unwrap().unwrap().limitpriv, None);
    ok(
        &store,
        "a",
        "set limitpriv=default,sys_resource,-sys_module; verify",
    );
    // sys_time grants nothing in the zone's user namespace (the default): refused with
    // the way out; without one it is the setting it names.
    let e = err(&store, "a", "set limitpriv=default,sys_time; verify");
    assert_eq!(
        e,
        "limitpriv \"default,sys_time\": privilege \"sys_time\" has no effect in a zone with a user namespace (the kernel checks CAP_SYS_TIME only in the host's); set userns=false or remove it from limitpriv"
    );
    let e = err(&store, "a", "set limitpriv=default,syslog; commit");
    assert!(e.contains("set userns=false"), "{e}");
    assert_eq!(
        store.load("a").unwrap().unwrap().limitpriv.as_deref(),
        Some("default,sys_resource,-sys_module")
    );
    ok(
        &store,
        "a",
        "set userns=false; set limitpriv=default,sys_time; verify",
    );
    ok(&store, "a", "set limitpriv=all; verify");
}

#[test]
fn commit_revert_exit() {
    let root = TempRoot::new("lang-commit");
    let store = root.store();
    ok(&store, "a", BASE);
    assert_eq!(
        err(&store, "a", "set autoboot=true; revert"),
        "revert: confirmation needed; use -F in a non-interactive session"
    );
    ok(&store, "a", "set autoboot=true; revert -F");
    assert!(!store.load("a").unwrap().unwrap().autoboot);
    ok(&store, "a", "set autoboot=true; exit -F");
    assert!(!store.load("a").unwrap().unwrap().autoboot);
    ok(
        &store,
        "a",
        "set autoboot=true; commit; set bootargs=x; revert -F",
    );
    let z = store.load("a").unwrap().unwrap();
    assert!(z.autoboot && z.bootargs.is_none());
    ok(&store, "a", "set bootargs=y; exit; set bootargs=z");
    assert_eq!(
        store.load("a").unwrap().unwrap().bootargs.as_deref(),
        Some("y")
    );
    // A new zone never committed reverts to nothing.
    assert_eq!(
        err(&store, "n", "create; revert -F; info"),
        "n: No such zone configured"
    );
}

#[test]
fn create_variants() {
    let root = TempRoot::new("lang-createv");
    let store = root.store();
    ok(
        &store,
        "a",
        "create -b; set zonepath=/zones/a; set brand=app; set cpu-shares=4",
    );
    assert_eq!(
        err(&store, "a", "create"),
        "Zone a already exists; create not allowed (use 'create -F' to overwrite it)."
    );
    let uuid = store.entry("a").unwrap().unwrap().uuid;
    ok(&store, "a", "create -F; set zonepath=/zones/a");
    let z = store.load("a").unwrap().unwrap();
    assert_eq!(
        (z.uuid.as_str(), z.brand.to_string().as_str()),
        (uuid.as_str(), "linux")
    );
    ok(&store, "a", "set brand=app; set cpu-shares=4");
    ok(&store, "b", "create -t a; set zonepath=/zones/b");
    let b = store.load("b").unwrap().unwrap();
    assert_eq!(b.brand.to_string(), "app");
    assert_eq!(b.rctl_limit("zone.cpu-shares"), Some(4));
    assert_ne!(b.uuid, uuid);
    assert_eq!(
        err(&store, "c", "create -t nope"),
        "nope: No such zone configured"
    );
    assert!(err(&store, "c", "create -a /zones/c").contains("SUNWdetached.json"));
    ok(&store, "c", "create -t SUNWblank; set zonepath=/zones/c");
    let l = store.lock("a").unwrap();
    store.set_state(&l, ZoneState::Installed).unwrap();
    drop(l);
    assert_eq!(
        err(&store, "a", "create -F"),
        "Zone a already installed; create not allowed."
    );
    assert_eq!(
        err(&store, "a", "set zonepath=/zones/x"),
        "Zone a already installed; set zonepath not allowed."
    );
    assert_eq!(
        err(&store, "a", "clear brand"),
        "Zone a already installed; clear brand not allowed."
    );
    ok(&store, "a", "set autoboot=true");
}

#[test]
fn delete() {
    let root = TempRoot::new("lang-delete");
    let store = root.store();
    ok(&store, "a", BASE);
    assert_eq!(
        err(&store, "a", "delete"),
        "delete: confirmation needed; use -F in a non-interactive session"
    );
    let l = store.lock("a").unwrap();
    store.set_state(&l, ZoneState::Installed).unwrap();
    drop(l);
    assert_eq!(
        err(&store, "a", "delete -F"),
        "zone 'a': is installed; it must be uninstalled before delete."
    );
    let l = store.lock("a").unwrap();
    store.set_state(&l, ZoneState::Configured).unwrap();
    drop(l);
    ok(&store, "a", "delete -F");
    assert!(store.list().unwrap().is_empty());
    assert!(!store.zone_file("a").exists());
    // Deleting then creating again in one session works.
    ok(&store, "a", BASE);
    ok(&store, "a", "delete -F; create; set zonepath=/zones/a2");
    assert_eq!(
        store
            .entry("a")
            .unwrap()
            .unwrap()
            .zonepath
            .unwrap()
            .to_str(),
        Some("/zones/a2")
    );
    assert_eq!(
        err(&store, "zz", "delete -F"),
        "zz: No such zone configured"
    );
}

#[test]
fn help_and_prompt() {
    let root = TempRoot::new("lang-help");
    let store = root.store();
    let out = ok(&store, "a", "help");
    assert!(out.starts_with("usage:\n\tadd <resource-type>"), "{out}");
    assert!(out.contains("Resource types: fs, net"));
    assert_eq!(
        ok(&store, "a", "help set"),
        "usage:\n\tset <property-name>=<property-value>\n"
    );
    let s = Session::open(&store, "a").unwrap();
    assert_eq!(s.prompt(), "zonecfg:a> ");
    assert!(!s.exists());
    assert_eq!(
        Session::open(&store, "SUNWx").unwrap_err().to_string(),
        "zonename \"SUNWx\": the name is reserved (names beginning with SUNW are reserved)"
    );
}

/// A configuration using every resource type and most properties.
const RICH: &str = r#"create -b
set zonepath=/zones/rich
set brand=linux
set autoboot=true
set bootargs="-m verbose"
set limitpriv=default,sys_resource,-net_raw
set scheduling-class=FSS
set ip-type=exclusive
set hostid=80f0c086
set cpu-shares=20
set max-lwps=500
set max-shm-memory=512m
add fs
set dir=/data
set special=/export/data
set type=lofs
add options [ro,nodevices]
add options "size=10m"
end
add fs
set dir="/srv/with space"
set special=tmpfs
set type=tmpfs
end
add net
set physical=vnic0
set allowed-address=10.0.0.5/24
set defrouter=10.0.0.1
set mac-addr=2:8:20:a:b:c
set vlan-id=12
end
add anet
set linkname=net1
set lower-link=eth0
set mac-address=random
set mtu=9000
end
add device
set match=/dev/net/tun
end
add rctl
set name=zone.max-processes
add value (priv=privileged,limit=300,action=deny)
add value (priv=system,limit=400,action=deny)
end
add attr
set name=comment
set type=string
set value="a \"quoted\" comment; with = signs"
end
add dataset
set name=tank/rich-data
end
add capped-cpu
set ncpus=1.5
end
add capped-memory
set physical=1.5g
set swap=2g
set locked=64m
end
"#;

#[test]
fn export_round_trips_through_f() {
    let root = TempRoot::new("lang-export");
    let store = root.store();
    ok(&store, "rich", RICH);
    let exported = ok(&store, "rich", "export");
    assert!(
        exported.starts_with("create -b\nset zonepath=/zones/rich\n"),
        "{exported}"
    );
    assert!(!exported.contains("zonename"), "{exported}");
    assert!(
        exported.contains("add options \"size=10m\"\n"),
        "{exported}"
    );
    assert!(exported.contains("set physical=1536M\n"), "{exported}");
    // Replay on another zone, export again: the same text (the name is not part of it).
    ok(&store, "copy", &exported);
    assert_eq!(ok(&store, "copy", "export"), exported);
    let (a, b) = (
        store.load("rich").unwrap().unwrap(),
        store.load("copy").unwrap().unwrap(),
    );
    assert_eq!(b.fs, a.fs);
    assert_eq!(b.rctl, a.rctl);
    assert_eq!(b.dataset, a.dataset);
    assert_eq!(
        b.attr[0].value.as_deref(),
        Some("a \"quoted\" comment; with = signs")
    );
    assert_ne!(a.uuid, b.uuid);
    // export -f writes the same text to a file.
    let file = root.0.join("rich.cfg");
    ok(&store, "rich", &format!("export -f {}", file.display()));
    assert_eq!(fs::read_to_string(&file).unwrap(), exported);
}

#[test]
fn info_of_resources_with_filters() {
    let root = TempRoot::new("lang-info");
    let store = root.store();
    ok(&store, "rich", RICH);
    assert_eq!(
        ok(&store, "rich", "info fs dir=/data"),
        "fs:\n\tdir: /data\n\tspecial: /export/data\n\traw not specified\n\ttype: lofs\n\toptions: [ro,nodevices,size=10m]\n"
    );
    assert_eq!(
        ok(&store, "rich", "info capped-memory"),
        "capped-memory:\n\tphysical: 1536M\n\tswap: 2G\n\tlocked: 64M\n"
    );
    assert_eq!(
        ok(&store, "rich", "info rctl name=zone.max-processes"),
        "rctl:\n\tname: zone.max-processes\n\tvalue: (priv=privileged,limit=300,action=deny)\n\tvalue: (priv=system,limit=400,action=deny)\n"
    );
    assert_eq!(
        ok(&store, "rich", "select fs dir=/data; info type; cancel"),
        "fs:\n\ttype: lofs\n"
    );
    let all = ok(&store, "rich", "info");
    assert!(
        all.contains(
            "[cpu-shares: 20]\n[max-lwps: 500]\n[max-processes: 300]\n[max-shm-memory: 512M]\n"
        ),
        "{all}"
    );
}

#[test]
fn failed_commit_at_exit_asks_once_interactively() {
    let root = TempRoot::new("lang-exitfail");
    let store = root.store();
    let mut s = Session::open(&store, "a").unwrap();
    let mut con = TestConsole {
        interactive: true,
        answers: [false, true].into(),
        ..Default::default()
    };
    s.run(&parse("create").unwrap().remove(0).cmd, &mut con)
        .unwrap();
    let exit = parse("exit").unwrap().remove(0).cmd;
    assert_eq!(s.run(&exit, &mut con).unwrap(), Flow::Continue);
    assert_eq!(con.err, "zonecfg: zonepath not specified\n");
    assert_eq!(s.run(&exit, &mut con).unwrap(), Flow::Exit);
    assert_eq!(con.asked, ["Configuration not saved; really quit"; 2]);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn dataset_resource_info_export_and_bad_names() {
    let root = TempRoot::new("lang-dataset");
    let store = root.store();
    ok(
        &store,
        "d",
        "create; set zonepath=/zones/d; add dataset; set name=tank/d-data; end",
    );
    assert_eq!(
        ok(&store, "d", "info dataset"),
        "dataset:\n\tname: tank/d-data\n"
    );
    let exported = ok(&store, "d", "export");
    assert!(
        exported.contains("add dataset\nset name=tank/d-data\nend\n"),
        "{exported}"
    );
    assert_eq!(
        store.load("d").unwrap().unwrap().dataset[0].name.as_deref(),
        Some("tank/d-data")
    );
    // The same dataset twice, a bare pool, a bad name, no name: refused, nothing changed.
    assert_eq!(
        err(&store, "d", "add dataset; set name=tank/d-data; end"),
        "A dataset resource with the name 'tank/d-data' already exists."
    );
    for bad in ["tank", "tank//x", "/tank/x", "tank/a b"] {
        let e = err(
            &store,
            "d",
            &format!("add dataset; set name=\"{bad}\"; end"),
        );
        assert!(e.contains("a ZFS filesystem below a pool"), "{bad}: {e}");
    }
    assert!(err(&store, "d", "add dataset; end").contains("name"));
    assert_eq!(store.load("d").unwrap().unwrap().dataset.len(), 1);
    ok(&store, "d", "remove dataset name=tank/d-data");
    assert!(store.load("d").unwrap().unwrap().dataset.is_empty());
}
