//! `zoneadm validate -f FILE` and `zoneadm provision -f FILE`: a zone from one JSON document,
//! in the spirit of SmartOS `vmadm create` (docs/manifest.schema.json describes it).
//!
//! Validation walks the whole document and reports every problem at once, each with the JSON
//! path it is about (`$.filesystems[1].target`). Values go through the zone model's own
//! checks (the same as zonecfg's). Provisioning is one transaction: configure, install, boot;
//! when a step fails the earlier ones are undone (halt, uninstall, delete the configuration).
//!
//! Not yet handled (refused with a clear problem, not ignored): `nics` (networking work),
//! `quota`, `resolvers`, `hostname`, `customer_metadata`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use zones::model::{Resource, ResourceType, Value, Zone};
use zones::store::Store;

use super::admin;

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, `$` is the document.
    pub path: String,
    pub msg: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.msg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] zones::store::StoreError),
    #[error("provision of zone '{zone}' failed at {step}: {error} (undone: {undone})")]
    Step {
        zone: String,
        step: &'static str,
        error: Box<admin::AdminError>,
        undone: String,
    },
}

/// Where the zone's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An image of the image store (`imgadm import`), by name or id.
    Image(String),
    /// A directory or (gzip) tar archive.
    Path(PathBuf),
}

/// A checked manifest: the zone configuration and where its root comes from.
#[derive(Debug, Clone)]
pub struct Plan {
    pub zone: Zone,
    pub source: Source,
}

/// Keys the manifest knows but this version does not handle yet.
const NOT_YET: [(&str, &str); 5] = [
    ("nics", "networking is not handled by provision yet"),
    ("quota", "storage quotas are not supported yet"),
    ("resolvers", "resolvers are not supported yet"),
    (
        "hostname",
        "the zone's hostname is its name; hostname is not supported yet",
    ),
    (
        "customer_metadata",
        "the metadata service is not implemented yet",
    ),
];

struct Checker<'a> {
    doc: &'a Map<String, Json>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            msg: msg.into(),
        });
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.doc.get(key)? {
            Json::String(s) => Some(s.clone()),
            _ => {
                self.problem(format!("$.{key}"), "expected a string");
                None
            }
        }
    }

    fn uint(&mut self, key: &str, min: u64) -> Option<u64> {
        match self.doc.get(key)? {
            Json::Number(n) if n.as_u64().is_some_and(|v| v >= min) => n.as_u64(),
            v => {
                self.problem(
                    format!("$.{key}"),
                    format!("expected an integer >= {min}, not {v}"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.doc.get(key)? {
            Json::Bool(b) => Some(*b),
            v => {
                self.problem(
                    format!("$.{key}"),
                    format!("expected true or false, not {v}"),
                );
                None
            }
        }
    }

    fn set(&mut self, zone: &mut Zone, key: &str, prop: &str, value: String) {
        if let Err(e) = zone.set_global(prop, &Value::Simple(value)) {
            self.problem(format!("$.{key}"), e.to_string());
        }
    }

    fn resource(
        &mut self,
        zone: &mut Zone,
        path: &str,
        kind: ResourceType,
        props: &[(&str, Value)],
    ) {
        let mut r = Resource::new(kind);
        for (prop, v) in props {
            let res = match v {
                Value::List(items) => items.iter().try_for_each(|i| r.props_mut().add(prop, i)),
                _ => r.props_mut().set(prop, v),
            };
            if let Err(e) = res {
                self.problem(path, e.to_string());
                return;
            }
        }
        if let Err(e) = zone.put_resource(r, None) {
            self.problem(path, e.to_string());
        }
    }
}

/// Every problem of the manifest `text` at once, or the plan it describes. `store` is asked
/// whether the zone name is free.
pub fn validate(store: &Store, text: &str) -> Result<Plan, ManifestError> {
    let doc: Json = serde_json::from_str(text).map_err(|e| {
        ManifestError::Invalid(vec![Problem {
            path: "$".into(),
            msg: format!("not JSON: {e}"),
        }])
    })?;
    let Json::Object(doc) = doc else {
        return Err(ManifestError::Invalid(vec![Problem {
            path: "$".into(),
            msg: "expected an object".into(),
        }]));
    };
    let mut c = Checker {
        doc: &doc,
        problems: Vec::new(),
    };
    for key in doc.keys() {
        if let Some((_, why)) = NOT_YET.iter().find(|(k, _)| k == key) {
            c.problem(format!("$.{key}"), *why);
        } else if !KNOWN.contains(&key.as_str()) {
            c.problem(format!("$.{key}"), "unknown property");
        }
    }
    let name = c.string("zonename").or_else(|| c.string("alias"));
    let mut zone = Zone::new(name.as_deref().unwrap_or("unnamed"));
    match name.as_deref() {
        None => c.problem("$.zonename", "missing (give zonename or alias)"),
        Some(n) => {
            let key = if doc.contains_key("zonename") {
                "zonename"
            } else {
                "alias"
            };
            if let Err(e) = zones::model::validate_zone_name(n) {
                c.problem(format!("$.{key}"), e.to_string());
            } else if store.entry(n)?.is_some() {
                c.problem(format!("$.{key}"), format!("zone '{n}' already exists"));
            }
        }
    }
    let zonepath = c
        .string("zonepath")
        .or_else(|| name.as_ref().map(|n| format!("/zones/{n}")));
    if let Some(zp) = zonepath {
        c.set(&mut zone, "zonepath", "zonepath", zp);
    }
    if let Some(b) = c.string("brand") {
        c.set(&mut zone, "brand", "brand", b);
    }
    if let Some(b) = c.boolean("autoboot") {
        zone.autoboot = b;
    }
    if let Some(l) = c.string("limit_priv") {
        c.set(&mut zone, "limit_priv", "limitpriv", l);
    }
    if let Some(s) = c.uint("cpu_shares", 1) {
        c.set(&mut zone, "cpu_shares", "cpu-shares", s.to_string());
    }
    if let Some(s) = c.uint("max_lwps", 1) {
        c.set(&mut zone, "max_lwps", "max-lwps", s.to_string());
    }
    caps(&mut c, &mut zone);
    filesystems(&mut c, &mut zone);
    let source = match (c.string("image"), c.string("image_path")) {
        (Some(i), None) => Some(Source::Image(i)),
        (None, Some(p)) if Path::new(&p).is_absolute() => Some(Source::Path(p.into())),
        (None, Some(p)) => {
            c.problem(
                "$.image_path",
                format!("\"{p}\": expected an absolute path"),
            );
            None
        }
        (Some(_), Some(_)) => {
            c.problem("$.image", "give image or image_path, not both");
            None
        }
        (None, None) => {
            if !doc.contains_key("image") && !doc.contains_key("image_path") {
                c.problem("$.image", "missing (give image or image_path)");
            }
            None
        }
    };
    if c.problems.is_empty() {
        if let Err(e) = zone.verify() {
            c.problem("$", e.to_string());
        }
    }
    match source {
        Some(source) if c.problems.is_empty() => Ok(Plan { zone, source }),
        _ => Err(ManifestError::Invalid(c.problems)),
    }
}

const KNOWN: [&str; 15] = [
    "zonename",
    "filesystems",
    "alias",
    "zonepath",
    "brand",
    "autoboot",
    "image",
    "image_path",
    "limit_priv",
    "cpu_shares",
    "max_lwps",
    "max_physical_memory",
    "max_swap",
    "max_locked_memory",
    "cpu_cap",
];

/// `max_physical_memory`, `max_swap`, `max_locked_memory` (MiB) and `cpu_cap` (percent of one
/// CPU) as capped-memory and capped-cpu.
fn caps(c: &mut Checker, zone: &mut Zone) {
    let mut mem = Vec::new();
    for (key, prop) in [
        ("max_physical_memory", "physical"),
        ("max_swap", "swap"),
        ("max_locked_memory", "locked"),
    ] {
        if let Some(mib) = c.uint(key, 1) {
            mem.push((prop, Value::Simple(format!("{mib}m"))));
        }
    }
    if !mem.is_empty() {
        c.resource(
            zone,
            "$.max_physical_memory",
            ResourceType::CappedMemory,
            &mem,
        );
    }
    if let Some(cap) = c.uint("cpu_cap", 1) {
        let ncpus = format!("{}.{:02}", cap / 100, cap % 100);
        c.resource(
            zone,
            "$.cpu_cap",
            ResourceType::CappedCpu,
            &[("ncpus", Value::Simple(ncpus))],
        );
    }
}

/// `filesystems[]`: `{type, source, target, options[]}` as zonecfg fs resources.
fn filesystems(c: &mut Checker, zone: &mut Zone) {
    let Some(list) = c.doc.get("filesystems") else {
        return;
    };
    let Json::Array(items) = list else {
        c.problem("$.filesystems", "expected an array");
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("$.filesystems[{i}]");
        let Json::Object(fs) = item else {
            c.problem(path, "expected an object");
            continue;
        };
        let mut props = Vec::new();
        let mut ok = true;
        for (key, v) in fs {
            let prop = match key.as_str() {
                "type" => "type",
                "source" => "special",
                "target" => "dir",
                "raw" => "raw",
                "options" => "options",
                _ => {
                    c.problem(format!("{path}.{key}"), "unknown property");
                    ok = false;
                    continue;
                }
            };
            match (prop, v) {
                ("options", Json::Array(opts)) => {
                    let mut vals = Vec::new();
                    for (j, o) in opts.iter().enumerate() {
                        match o {
                            Json::String(s) => vals.push(Value::Simple(s.clone())),
                            _ => {
                                c.problem(format!("{path}.options[{j}]"), "expected a string");
                                ok = false;
                            }
                        }
                    }
                    props.push((prop, Value::List(vals)));
                }
                (_, Json::String(s)) if prop != "options" => {
                    props.push((prop, Value::Simple(s.clone())));
                }
                _ => {
                    let want = if prop == "options" {
                        "an array of strings"
                    } else {
                        "a string"
                    };
                    c.problem(format!("{path}.{key}"), format!("expected {want}"));
                    ok = false;
                }
            }
        }
        if ok {
            c.resource(zone, &path, ResourceType::Fs, &props);
        }
    }
}

/// `zoneadm provision -f FILE`: validate, then configure, install and boot in one
/// transaction. Returns the zone name.
pub fn provision(store: &Store, text: &str) -> Result<String, ManifestError> {
    let plan = validate(store, text)?;
    let name = plan.zone.zonename.clone();
    {
        let lock = store.lock(&name)?;
        if store.entry(&name)?.is_some() {
            return Err(ManifestError::Invalid(vec![Problem {
                path: "$.zonename".into(),
                msg: format!("zone '{name}' already exists"),
            }]));
        }
        store.save(&lock, &plan.zone)?;
    }
    let installed = match &plan.source {
        Source::Image(i) => admin::install_image(store, &name, i),
        Source::Path(p) => admin::install(store, &name, p),
    };
    if let Err(e) = installed {
        let undone = undo(store, &name, true);
        return Err(step_err(&name, "install", e, undone));
    }
    if let Err(e) = admin::boot(store, &name, None) {
        let _ = admin::halt(store, &name);
        let undone = undo(store, &name, true);
        return Err(step_err(&name, "boot", e, undone));
    }
    Ok(name)
}

fn step_err(
    zone: &str,
    step: &'static str,
    source: admin::AdminError,
    undone: String,
) -> ManifestError {
    ManifestError::Step {
        zone: zone.to_string(),
        step,
        error: Box::new(source),
        undone,
    }
}

/// Uninstalls (when `installed`) and deletes the configuration of `name`; says what it did.
fn undo(store: &Store, name: &str, installed: bool) -> String {
    let mut done = Vec::new();
    if installed {
        match admin::uninstall(store, name) {
            Ok(()) => done.push("uninstalled".to_string()),
            Err(e) => done.push(format!("uninstall failed: {e}")),
        }
    }
    let deleted = store.lock(name).and_then(|lock| store.delete(&lock));
    match deleted {
        Ok(()) => done.push("configuration deleted".into()),
        Err(e) => done.push(format!("delete failed: {e}")),
    }
    done.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Root(PathBuf);
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn root(tag: &str) -> (Root, Store) {
        let p =
            std::env::temp_dir().join(format!("runz-test-{}-manifest-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        let s = Store::open(Some(&p)).unwrap();
        (Root(p), s)
    }

    fn problems(store: &Store, doc: Json) -> Vec<String> {
        match validate(store, &doc.to_string()) {
            Err(ManifestError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
            other => panic!("{doc}: {other:?}"),
        }
    }

    #[test]
    fn a_good_manifest_becomes_a_zone() {
        let (_r, store) = root("good");
        let doc = serde_json::json!({
            "alias": "web", "brand": "linux", "autoboot": true, "image": "alpine",
            "max_physical_memory": 256, "max_swap": 512, "cpu_cap": 150, "cpu_shares": 50,
            "max_lwps": 300,
            "filesystems": [{"type": "lofs", "source": "/srv", "target": "/data", "options": ["ro"]}]
        });
        let plan = validate(&store, &doc.to_string()).unwrap();
        assert_eq!(plan.source, Source::Image("alpine".into()));
        let z = &plan.zone;
        assert_eq!(z.zonename, "web");
        assert_eq!(z.zonepath.as_deref(), Some(Path::new("/zones/web")));
        assert!(z.autoboot);
        let mem = z.capped_memory.as_ref().unwrap();
        assert_eq!(mem.physical.unwrap().bytes(), 256 << 20);
        assert_eq!(mem.swap.unwrap().bytes(), 512 << 20);
        assert_eq!(
            z.capped_cpu.as_ref().unwrap().ncpus.unwrap().to_string(),
            "1.5"
        );
        assert_eq!(z.rctl_limit("zone.cpu-shares"), Some(50));
        assert_eq!(z.rctl_limit("zone.max-lwps"), Some(300));
        assert_eq!(z.fs[0].dir.as_deref(), Some("/data"));
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let (_r, store) = root("bad");
        let doc = serde_json::json!({
            "zonename": "bad name", "brand": "joyent", "max_physical_memory": -1,
            "filesystems": [{"type": "lofs", "source": "/a", "target": "/x"},
                            {"type": "proc", "target": "relative", "colour": 1}],
            "nics": [], "bogus": 1
        });
        let p = problems(&store, doc);
        for needle in [
            "$.zonename: ",
            "$.brand: ",
            "$.max_physical_memory: expected an integer",
            "$.filesystems[1].colour: unknown property",
            "$.nics: networking",
            "$.bogus: unknown property",
            "$.image: missing",
        ] {
            assert!(
                p.iter().any(|l| l.starts_with(needle)),
                "{needle} not in {p:#?}"
            );
        }
        assert_eq!(p.len(), 7, "{p:#?}");
        let p = problems(
            &store,
            serde_json::json!({"image": "x", "filesystems": [{"target": "rel", "type": "lofs", "source": "/a"}]}),
        );
        assert!(
            p.iter().any(|l| l.starts_with("$.zonename: missing")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|l| l.starts_with("$.filesystems[0]: ")),
            "{p:?}"
        );
        assert_eq!(
            problems(&store, serde_json::json!([1])),
            ["$: expected an object"]
        );
    }

    /// docs/manifest.schema.json and the validator agree on the properties, and the schema's
    /// example is a valid manifest.
    #[test]
    fn the_schema_matches_the_validator() {
        let schema: Json =
            serde_json::from_str(include_str!("../../docs/manifest.schema.json")).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let mut props: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        props.sort_unstable();
        let mut code: Vec<&str> = KNOWN
            .iter()
            .copied()
            .chain(NOT_YET.iter().map(|(k, _)| *k))
            .collect();
        code.sort_unstable();
        assert_eq!(props, code);
        for (k, _) in NOT_YET {
            assert_eq!(schema["properties"][k]["not"], serde_json::json!({}), "{k}");
        }
        let fs = schema["properties"]["filesystems"]["items"]["properties"]
            .as_object()
            .unwrap();
        let mut fs: Vec<&str> = fs.keys().map(String::as_str).collect();
        fs.sort_unstable();
        assert_eq!(fs, ["options", "raw", "source", "target", "type"]);
        let (_r, store) = root("schema");
        for example in schema["examples"].as_array().unwrap() {
            validate(&store, &example.to_string()).unwrap();
        }
    }
}
