//! `zoneadm validate -f FILE`, `zoneadm provision -f FILE` and `zoneadm update -f FILE`: a zone
//! from one JSON document, in the spirit of SmartOS `vmadm create` / `vmadm update`
//! (docs/manifest.schema.json describes it).
//!
//! Validation walks the whole document and reports every problem at once, each with the JSON
//! path it is about (`$.nics[1].ips[0]`). Values go through the zone model's own checks (the
//! same as zonecfg's). Provisioning is one transaction: configure (and store the customer
//! metadata), install, boot; when a step fails the earlier ones are undone (halt, uninstall,
//! delete the configuration and metadata).
//!
//! How manifest properties map onto the zone model:
//! - `max_physical_memory`, `max_swap`, `max_locked_memory` (MiB) → capped-memory;
//!   `cpu_cap` (percent of one CPU) → capped-cpu; `cpu_shares`, `max_lwps` → their rctls;
//!   `quota` (GiB) → the `quota` property.
//! - `nics[i]` → anet `net<i>` (or `interface`): `nic_tag` → lower-link (an etherstub),
//!   `ips[0]` → allowed-address, `gateways[0]` → defrouter, `mac` → mac-address, `maxbw`,
//!   `vlan_id`, `priority`, `mtu`; `allow_ip_spoofing` false or absent → link-protection
//!   `mac-nospoof` (and `ip-nospoof` when the nic has an address). NICs make the zone
//!   exclusive-IP.
//! - `hostname`, `resolvers` → the properties of the same names.
//! - `customer_metadata` → the zone's metadata (see `metadata`), not the configuration.
//!   Its `user-script` is started once the zone runs, once per zone (`super::userscript`).
//!
//! `vmadm` (`super::vmadm`) translates SmartOS payloads onto these manifests.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value as Json};
use zones::model::{Ncpus, Resource, ResourceType, Size, Value, Zone};
use zones::state::ZoneState;
use zones::store::Store;

use super::admin;
use super::metadata::{self, Metadata};
use super::ZonePaths;

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
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error("provision of zone '{zone}' failed at {step}: {error} (undone: {undone})")]
    Step {
        zone: String,
        step: &'static str,
        error: Box<dyn std::error::Error + Send + Sync>,
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
    /// A kvm zone: no OS image (its disks are cloned from disk images at install).
    Vm,
}

/// A checked manifest: the zone configuration, where its root comes from, its metadata.
#[derive(Debug, Clone)]
pub struct Plan {
    pub zone: Zone,
    pub source: Source,
    pub metadata: Metadata,
}

/// Every property a manifest may have.
const KNOWN: [&str; 20] = [
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
    "nics",
    "quota",
    "resolvers",
    "hostname",
    "customer_metadata",
];

/// What `update` cannot change (the zone's identity and root).
const FIXED: [&str; 6] = [
    "zonename",
    "alias",
    "zonepath",
    "brand",
    "image",
    "image_path",
];

/// Caps `update` applies to a running zone at once (the live re-cap path).
const LIVE_CAPS: [&str; 6] = [
    "cpu_shares",
    "max_lwps",
    "max_physical_memory",
    "max_swap",
    "max_locked_memory",
    "cpu_cap",
];

/// Other properties that take effect without a reboot.
const LIVE_OTHER: [&str; 2] = ["autoboot", "customer_metadata"];

/// The properties of one `nics[]` entry.
const NIC_KEYS: [&str; 10] = [
    "interface",
    "nic_tag",
    "ips",
    "gateways",
    "mac",
    "allow_ip_spoofing",
    "maxbw",
    "vlan_id",
    "priority",
    "mtu",
];

struct Checker<'a> {
    doc: &'a Map<String, Json>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// An update document's keys: its identity and root are fixed, unknown keys refused.
    fn update_keys(&mut self) {
        for key in self.doc.keys() {
            if FIXED.contains(&key.as_str()) {
                self.problem(
                    format!("$.{key}"),
                    "cannot be changed by update (it names the zone or its root)",
                );
            } else if !KNOWN.contains(&key.as_str()) {
                self.problem(format!("$.{key}"), "unknown property");
            }
        }
    }

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
        let v = self.doc.get(key)?;
        uint_at(&mut self.problems, &format!("$.{key}"), v, min)
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

    /// An array of strings at `key`; problems name the offending element.
    fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.doc.get(key)?;
        strings_at(&mut self.problems, &format!("$.{key}"), v)
    }

    fn set(&mut self, zone: &mut Zone, key: &str, prop: &str, value: Value) {
        if let Err(e) = zone.set_global(prop, &value) {
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

    /// Applies every property except the zone's identity and source to `zone`; returns the
    /// customer metadata when the document has it.
    fn apply(&mut self, zone: &mut Zone) -> Option<Metadata> {
        if let Some(b) = self.boolean("autoboot") {
            zone.autoboot = b;
        }
        if let Some(l) = self.string("limit_priv") {
            self.set(zone, "limit_priv", "limitpriv", Value::Simple(l));
        }
        if let Some(s) = self.uint("cpu_shares", 1) {
            self.set(
                zone,
                "cpu_shares",
                "cpu-shares",
                Value::Simple(s.to_string()),
            );
        }
        if let Some(s) = self.uint("max_lwps", 1) {
            self.set(zone, "max_lwps", "max-lwps", Value::Simple(s.to_string()));
        }
        if let Some(gib) = self.uint("quota", 1) {
            self.set(zone, "quota", "quota", Value::Simple(format!("{gib}g")));
        }
        if let Some(h) = self.string("hostname") {
            self.set(zone, "hostname", "hostname", Value::Simple(h));
        }
        self.resolvers(zone);
        caps(self, zone);
        filesystems(self, zone);
        nics(self, zone);
        self.customer_metadata()
    }

    fn resolvers(&mut self, zone: &mut Zone) {
        let Some(list) = self.strings("resolvers") else {
            return;
        };
        let mut ok = true;
        for (i, ip) in list.iter().enumerate() {
            let mut scratch = Zone::new("scratch");
            if let Err(e) = scratch.set_global("resolvers", &Value::Simple(ip.clone())) {
                self.problem(format!("$.resolvers[{i}]"), e.to_string());
                ok = false;
            }
        }
        if ok {
            let items = list.into_iter().map(Value::Simple).collect();
            self.set(zone, "resolvers", "resolvers", Value::List(items));
        }
    }

    fn customer_metadata(&mut self) -> Option<Metadata> {
        let v = self.doc.get("customer_metadata")?;
        let Json::Object(m) = v else {
            self.problem("$.customer_metadata", "expected an object of strings");
            return None;
        };
        let mut md = Metadata::new();
        for (k, v) in m {
            let path = format!("$.customer_metadata[{}]", Json::String(k.clone()));
            if let Err(e) = metadata::check_key(k) {
                self.problem(&path, e);
                continue;
            }
            match v {
                Json::String(s) => match metadata::check_value(s) {
                    Ok(()) => {
                        md.insert(k.clone(), s.clone());
                    }
                    Err(e) => self.problem(&path, e),
                },
                _ => self.problem(&path, format!("expected a string, not {v}")),
            }
        }
        Some(md)
    }
}

fn uint_at(problems: &mut Vec<Problem>, path: &str, v: &Json, min: u64) -> Option<u64> {
    match v {
        Json::Number(n) if n.as_u64().is_some_and(|v| v >= min) => n.as_u64(),
        v => {
            problems.push(Problem {
                path: path.to_string(),
                msg: format!("expected an integer >= {min}, not {v}"),
            });
            None
        }
    }
}

fn strings_at(problems: &mut Vec<Problem>, path: &str, v: &Json) -> Option<Vec<String>> {
    let Json::Array(items) = v else {
        problems.push(Problem {
            path: path.to_string(),
            msg: "expected an array of strings".into(),
        });
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Json::String(s) => out.push(s.clone()),
            _ => problems.push(Problem {
                path: format!("{path}[{i}]"),
                msg: format!("expected a string, not {item}"),
            }),
        }
    }
    (out.len() == items.len()).then_some(out)
}

fn parse_doc(text: &str) -> Result<Map<String, Json>, ManifestError> {
    let doc: Json = serde_json::from_str(text).map_err(|e| {
        ManifestError::Invalid(vec![Problem {
            path: "$".into(),
            msg: format!("not JSON: {e}"),
        }])
    })?;
    match doc {
        Json::Object(doc) => Ok(doc),
        _ => Err(ManifestError::Invalid(vec![Problem {
            path: "$".into(),
            msg: "expected an object".into(),
        }])),
    }
}

/// Every problem of the manifest `text` at once, or the plan it describes. `store` is asked
/// whether the zone name is free.
pub fn validate(store: &Store, text: &str) -> Result<Plan, ManifestError> {
    let doc = parse_doc(text)?;
    let mut c = Checker {
        doc: &doc,
        problems: Vec::new(),
    };
    for key in doc.keys() {
        if !KNOWN.contains(&key.as_str()) {
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
        c.set(&mut zone, "zonepath", "zonepath", Value::Simple(zp));
    }
    if let Some(b) = c.string("brand") {
        c.set(&mut zone, "brand", "brand", Value::Simple(b));
    }
    let metadata = c.apply(&mut zone).unwrap_or_default();
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
        (None, None) if zone.brand == zones::model::Brand::Kvm => Some(Source::Vm),
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
        Some(source) if c.problems.is_empty() => Ok(Plan {
            zone,
            source,
            metadata,
        }),
        _ => Err(ManifestError::Invalid(c.problems)),
    }
}

/// `max_physical_memory`, `max_swap`, `max_locked_memory` (MiB) and `cpu_cap` (percent of one
/// CPU) into capped-memory and capped-cpu; caps the document does not name are kept.
fn caps(c: &mut Checker, zone: &mut Zone) {
    for key in ["max_physical_memory", "max_swap", "max_locked_memory"] {
        let Some(mib) = c.uint(key, 1) else { continue };
        let Some(bytes) = mib.checked_mul(1 << 20) else {
            c.problem(format!("$.{key}"), format!("{mib} MiB is too large"));
            continue;
        };
        let mem = zone.capped_memory.get_or_insert_with(Default::default);
        let size = Some(Size::from_bytes(bytes));
        match key {
            "max_physical_memory" => mem.physical = size,
            "max_swap" => mem.swap = size,
            _ => mem.locked = size,
        }
    }
    if let Some(cap) = c.uint("cpu_cap", 1) {
        match u32::try_from(cap) {
            Ok(h) => {
                zone.capped_cpu = Some(zones::model::CappedCpu {
                    ncpus: Some(Ncpus::from_hundredths(h)),
                })
            }
            Err(_) => c.problem("$.cpu_cap", format!("{cap}: too large")),
        }
    }
}

/// `filesystems[]`: `{type, source, target, options[]}` as zonecfg fs resources (replacing
/// the zone's fs resources).
fn filesystems(c: &mut Checker, zone: &mut Zone) {
    let Some(list) = c.doc.get("filesystems") else {
        return;
    };
    let Json::Array(items) = list else {
        c.problem("$.filesystems", "expected an array");
        return;
    };
    zone.fs.clear();
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
                "raw" => {
                    // As zonecfg's verify: no fsck of a device before the zone's mounts.
                    c.problem(
                        format!("{path}.raw"),
                        "not supported: raw is the device fsck checks before the global zone mounts it, which zones do not do",
                    );
                    ok = false;
                    continue;
                }
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

/// `nics[]` as anet resources (replacing the zone's anets); see the module comment.
fn nics(c: &mut Checker, zone: &mut Zone) {
    let Some(list) = c.doc.get("nics") else {
        return;
    };
    let Json::Array(items) = list else {
        c.problem("$.nics", "expected an array");
        return;
    };
    zone.anet.clear();
    if !items.is_empty() {
        c.set(
            zone,
            "nics",
            "ip-type",
            Value::Simple("exclusive".to_string()),
        );
    }
    for (i, item) in items.iter().enumerate() {
        let path = format!("$.nics[{i}]");
        let Json::Object(nic) = item else {
            c.problem(path, "expected an object");
            continue;
        };
        if let Some(r) = nic_resource(&mut c.problems, &path, i, nic) {
            if let Err(e) = zone.put_resource(r, None) {
                c.problem(path, e.to_string());
            }
        }
    }
}

/// One nic as an anet; `None` (with problems recorded) when it is wrong.
fn nic_resource(
    problems: &mut Vec<Problem>,
    path: &str,
    index: usize,
    nic: &Map<String, Json>,
) -> Option<Resource> {
    let before = problems.len();
    let mut props: Vec<(String, &'static str, String)> = Vec::new();
    let mut problem = |p: String, m: String| problems.push(Problem { path: p, msg: m });
    for key in nic.keys() {
        if !NIC_KEYS.contains(&key.as_str()) {
            problem(format!("{path}.{key}"), "unknown property".into());
        }
    }
    let string = |key: &str, problem: &mut dyn FnMut(String, String)| match nic.get(key) {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(v) => {
            problem(
                format!("{path}.{key}"),
                format!("expected a string, not {v}"),
            );
            None
        }
    };
    let linkname = string("interface", &mut problem).unwrap_or_else(|| format!("net{index}"));
    props.push((format!("{path}.interface"), "linkname", linkname));
    match string("nic_tag", &mut problem) {
        Some(tag) => props.push((format!("{path}.nic_tag"), "lower-link", tag)),
        None if !nic.contains_key("nic_tag") => problem(
            format!("{path}.nic_tag"),
            "missing (the etherstub the nic is on: dladm create-etherstub)".into(),
        ),
        None => {}
    }
    let mut has_ip = false;
    for (key, prop, what) in [
        ("ips", "allowed-address", "address"),
        ("gateways", "defrouter", "gateway"),
    ] {
        let Some(v) = nic.get(key) else { continue };
        let mut local = Vec::new();
        let Some(list) = strings_at(&mut local, &format!("{path}.{key}"), v) else {
            for p in local {
                problem(p.path, p.msg);
            }
            continue;
        };
        if list.len() > 1 {
            problem(
                format!("{path}.{key}[1]"),
                format!("one {what} per nic is supported; add another nic for more"),
            );
        }
        if let Some(first) = list.first() {
            if first == "dhcp" || first == "addrconf" {
                problem(
                    format!("{path}.{key}[0]"),
                    format!("\"{first}\" is not supported: give a static address like 10.0.0.2/24"),
                );
            } else {
                has_ip |= key == "ips";
                props.push((format!("{path}.{key}[0]"), prop, first.clone()));
            }
        }
    }
    if let Some(mac) = string("mac", &mut problem) {
        props.push((format!("{path}.mac"), "mac-address", mac));
    }
    if let Some(p) = string("priority", &mut problem) {
        props.push((format!("{path}.priority"), "priority", p));
    }
    match nic.get("maxbw") {
        None => {}
        Some(Json::String(s)) => props.push((format!("{path}.maxbw"), "maxbw", s.clone())),
        Some(Json::Number(n)) if n.is_u64() => {
            props.push((format!("{path}.maxbw"), "maxbw", n.to_string()))
        }
        Some(v) => problem(
            format!("{path}.maxbw"),
            format!("expected a bandwidth like \"10M\" or a number of Mbit/s, not {v}"),
        ),
    }
    for (key, prop, min) in [("vlan_id", "vlan-id", 0), ("mtu", "mtu", 68)] {
        if let Some(v) = nic.get(key) {
            let mut local = Vec::new();
            if let Some(n) = uint_at(&mut local, &format!("{path}.{key}"), v, min) {
                props.push((format!("{path}.{key}"), prop, n.to_string()));
            }
            for p in local {
                problem(p.path, p.msg);
            }
        }
    }
    let spoofing = match nic.get("allow_ip_spoofing") {
        None => false,
        Some(Json::Bool(b)) => *b,
        Some(v) => {
            problem(
                format!("{path}.allow_ip_spoofing"),
                format!("expected true or false, not {v}"),
            );
            false
        }
    };
    if !spoofing {
        let protection = if has_ip {
            "ip-nospoof,mac-nospoof"
        } else {
            "mac-nospoof"
        };
        props.push((
            format!("{path}.allow_ip_spoofing"),
            "link-protection",
            protection.into(),
        ));
    }
    let mut r = Resource::new(ResourceType::Anet);
    for (p, prop, value) in props {
        if let Err(e) = r.props_mut().set(prop, &Value::Simple(value)) {
            problem(p, e.to_string());
        }
    }
    (problems.len() == before).then_some(r)
}

/// `zoneadm provision -f FILE`: validate, then configure, install and boot in one
/// transaction. Returns the zone name.
pub fn provision(store: &Store, text: &str) -> Result<String, ManifestError> {
    provision_plan(store, validate(store, text)?)
}

/// Configures, installs and boots a checked `plan` in one transaction (see [`provision`]);
/// once the zone runs, its `user-script` (if any) is started inside it, once per zone
/// (`super::userscript`). Returns the zone name.
pub fn provision_plan(store: &Store, plan: Plan) -> Result<String, ManifestError> {
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
        if let Err(e) = metadata::save(store, &name, &plan.metadata) {
            let undone = undo(store, &name, false);
            return Err(step_err(&name, "configure", e, undone));
        }
    }
    let installed = match &plan.source {
        Source::Image(i) => admin::install_image(store, &name, i),
        Source::Path(p) => admin::install(store, &name, p),
        Source::Vm => admin::install_vm(store, &name),
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
    if let Err(e) = super::userscript::start(store, &name) {
        // The zone runs: a script that could not be started is reported, not undone (as on
        // SmartOS, where the script runs after the zone is up).
        eprintln!("warning: zone '{name}': user-script not started: {e}");
    }
    Ok(name)
}

fn step_err(
    zone: &str,
    step: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
    undone: String,
) -> ManifestError {
    ManifestError::Step {
        zone: zone.to_string(),
        step,
        error: Box::new(source),
        undone,
    }
}

/// Uninstalls (when `installed` and the zone is not already back to `configured`: a failed
/// install removes what it made itself) and deletes the configuration and metadata of
/// `name`; says what it did.
pub(crate) fn undo(store: &Store, name: &str, installed: bool) -> String {
    let mut done = Vec::new();
    let configured = matches!(store.state(name), Ok(Some(ZoneState::Configured)));
    if installed && !configured {
        match admin::uninstall(store, name) {
            Ok(()) => done.push("uninstalled".to_string()),
            Err(e) => done.push(format!("uninstall failed: {e}")),
        }
    }
    // A supervisor that failed to boot the zone leaves its lock and log behind.
    let paths = ZonePaths::new(store, name);
    if !super::supervisor_alive(&paths) {
        let _ = std::fs::remove_dir_all(&paths.run);
    }
    if let Err(e) = metadata::remove(store, name) {
        done.push(format!("metadata removal failed: {e}"));
    }
    let deleted = store.lock(name).and_then(|lock| store.delete(&lock));
    match deleted {
        Ok(()) => done.push("configuration deleted".into()),
        Err(e) => done.push(format!("delete failed: {e}")),
    }
    done.join(", ")
}

/// The problems an update document `text` has on its own (keys, types, values), without a
/// zone to apply it to (`vmadm validate update`).
pub fn check_update(text: &str) -> Result<(), ManifestError> {
    let doc = parse_doc(text)?;
    let mut c = Checker {
        doc: &doc,
        problems: Vec::new(),
    };
    c.update_keys();
    let mut scratch = Zone::new("scratch");
    c.apply(&mut scratch);
    if c.problems.is_empty() {
        Ok(())
    } else {
        Err(ManifestError::Invalid(c.problems))
    }
}

/// What `zoneadm update` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UpdateReport {
    pub zone: String,
    /// The zone's state when it was updated.
    pub state: String,
    /// Properties in force in the running zone now.
    pub live: Vec<String>,
    /// Properties stored that take effect at the next boot (the zone is running).
    pub reboot: Vec<String>,
    /// Properties stored for a zone that is not running (they apply when it boots).
    pub stored: Vec<String>,
}

/// `zoneadm -z NAME update -f FILE`: the manifest's properties (all but the zone's identity
/// and root) applied to zone `name`'s configuration and metadata; for a ready or running zone
/// caps, autoboot and metadata take effect at once, the rest at the next boot. Every problem
/// is reported at once and changes nothing; a cap the kernel refuses restores the previous
/// configuration.
pub fn update(store: &Store, name: &str, text: &str) -> Result<UpdateReport, ManifestError> {
    let doc = parse_doc(text)?;
    let mut c = Checker {
        doc: &doc,
        problems: Vec::new(),
    };
    c.update_keys();
    let (old, lock, recorded) = admin::open(store, name)?;
    let mut zone = old.clone();
    let md = c.apply(&mut zone);
    if c.problems.is_empty() {
        if let Err(e) = zone.verify() {
            c.problem("$", e.to_string());
        }
    }
    if !c.problems.is_empty() {
        return Err(ManifestError::Invalid(c.problems));
    }
    let old_md = metadata::load(store, name)?;
    store.save(&lock, &zone)?;
    if let Some(md) = &md {
        metadata::save(store, name, md)?;
    }
    drop(lock);
    let state = admin::effective_state(store, name, recorded);
    let live = matches!(state, ZoneState::Ready | ZoneState::Running);
    let mut keys: Vec<String> = doc.keys().cloned().collect();
    keys.sort();
    if live && keys.iter().any(|k| LIVE_CAPS.contains(&k.as_str())) {
        if let Err(e) = admin::apply_live(store, &zone) {
            let restored = store
                .lock(name)
                .and_then(|l| store.save(&l, &old))
                .map_err(ManifestError::from)
                .and_then(|_| Ok(metadata::save(store, name, &old_md)?));
            let undone = match restored {
                Ok(()) => "the previous configuration is restored".to_string(),
                Err(r) => format!("restoring the previous configuration failed: {r}"),
            };
            return Err(step_err(name, "live update", e, undone));
        }
    }
    if md.is_some() {
        metadata::publish(store, &ZonePaths::new(store, name))?;
    }
    let (mut report_live, mut reboot, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    for k in keys {
        let k_live = LIVE_CAPS.contains(&k.as_str()) || LIVE_OTHER.contains(&k.as_str());
        match (live, k_live) {
            (true, true) => report_live.push(k),
            (true, false) => reboot.push(k),
            (false, _) => stored.push(k),
        }
    }
    Ok(UpdateReport {
        zone: name.to_string(),
        state: state.to_string(),
        live: report_live,
        reboot,
        stored,
    })
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

    /// Asserts that each of `needles` begins one of the problems `p`, and that `p` holds no
    /// more problems than that.
    fn assert_problems(p: &[String], needles: &[&str]) {
        for needle in needles {
            assert!(
                p.iter().any(|l| l.starts_with(needle)),
                "{needle} not in {p:#?}"
            );
        }
        assert_eq!(p.len(), needles.len(), "{p:#?}");
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
            "nics": [{"nic_tag": "stub0", "ips": ["10.0.0.300/24"]}], "bogus": 1
        });
        let p = problems(&store, doc);
        assert_problems(
            &p,
            &[
                "$.zonename: ",
                "$.brand: ",
                "$.max_physical_memory: expected an integer",
                "$.filesystems[1].colour: unknown property",
                "$.nics[0].ips[0]: ",
                "$.bogus: unknown property",
                "$.image: missing",
            ],
        );
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

    #[test]
    fn nics_quota_resolvers_hostname_and_metadata_map_onto_the_model() {
        let (_r, store) = root("nics");
        let doc = serde_json::json!({
            "alias": "web", "image": "alpine", "quota": 10, "hostname": "web-1.example.com",
            "resolvers": ["10.0.0.1", "10.0.0.2"],
            "customer_metadata": {"role": "web", "user-script": "#!/bin/sh\necho hi"},
            "nics": [
                {"nic_tag": "stub0", "ips": ["10.1.0.5/24"], "gateways": ["10.1.0.1"],
                 "mac": "2:8:20:1:2:3", "maxbw": "10M", "vlan_id": 0},
                {"interface": "eth9", "nic_tag": "stub1", "ips": ["10.2.0.5/16"],
                 "allow_ip_spoofing": true, "maxbw": 100}
            ]
        });
        let plan = validate(&store, &doc.to_string()).unwrap();
        let z = &plan.zone;
        assert_eq!(z.quota.unwrap().bytes(), 10 << 30);
        assert_eq!(z.hostname.as_deref(), Some("web-1.example.com"));
        assert_eq!(z.resolvers, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(z.ip_type, zones::model::IpType::Exclusive);
        let (a, b) = (&z.anet[0], &z.anet[1]);
        assert_eq!(a.linkname.as_deref(), Some("net0"));
        assert_eq!(a.lower_link.as_deref(), Some("stub0"));
        assert_eq!(a.allowed_address.as_deref(), Some("10.1.0.5/24"));
        assert_eq!(a.defrouter.as_deref(), Some("10.1.0.1"));
        assert_eq!(a.maxbw.unwrap().bps(), 10_000_000);
        assert_eq!(a.link_protection.as_deref(), Some("ip-nospoof,mac-nospoof"));
        assert_eq!(b.linkname.as_deref(), Some("eth9"));
        assert_eq!(b.maxbw.unwrap().bps(), 100_000_000);
        assert_eq!(b.link_protection, None);
        assert_eq!(plan.metadata["role"], "web");
        assert_eq!(plan.metadata.len(), 2);

        let p = problems(
            &store,
            serde_json::json!({
                "alias": "x", "image": "i", "quota": 0, "resolvers": ["1.2.3.4", "nope"],
                "hostname": "-bad", "customer_metadata": {"a b": "x", "ok": 1},
                "nics": [{"ips": ["dhcp"], "gateways": ["1.1.1.1", "2.2.2.2"], "speed": 1},
                         {"nic_tag": "s", "maxbw": "fast", "vlan_id": 5000}, 3]
            }),
        );
        assert_problems(
            &p,
            &[
                "$.quota: expected an integer >= 1",
                "$.resolvers[1]: ",
                "$.hostname: ",
                "$.customer_metadata[\"a b\"]: key",
                "$.customer_metadata[\"ok\"]: expected a string",
                "$.nics[0].nic_tag: missing",
                "$.nics[0].ips[0]: \"dhcp\" is not supported",
                "$.nics[0].gateways[1]: one gateway per nic",
                "$.nics[0].speed: unknown property",
                "$.nics[1].maxbw: ",
                "$.nics[1].vlan_id: ",
                "$.nics[2]: expected an object",
            ],
        );
    }

    #[test]
    fn update_changes_the_configuration_and_says_what_is_stored() {
        let (_r, store) = root("update");
        let doc = serde_json::json!({
            "alias": "u", "image": "alpine", "max_physical_memory": 256, "max_swap": 512
        });
        let plan = validate(&store, &doc.to_string()).unwrap();
        let lock = store.lock("u").unwrap();
        store.save(&lock, &plan.zone).unwrap();
        drop(lock);
        let r = update(
            &store,
            "u",
            r#"{"max_physical_memory": 300, "autoboot": true, "hostname": "h",
                "customer_metadata": {"k": "v"}}"#,
        )
        .unwrap();
        assert_eq!(r.state, "configured");
        assert!(r.live.is_empty() && r.reboot.is_empty());
        assert_eq!(
            r.stored,
            [
                "autoboot",
                "customer_metadata",
                "hostname",
                "max_physical_memory"
            ]
        );
        let z = store.load("u").unwrap().unwrap();
        let mem = z.capped_memory.unwrap();
        assert_eq!(mem.physical.unwrap().bytes(), 300 << 20);
        assert_eq!(
            mem.swap.unwrap().bytes(),
            512 << 20,
            "an unnamed cap is kept"
        );
        assert!(z.autoboot);
        assert_eq!(metadata::load(&store, "u").unwrap()["k"], "v");
        // The identity cannot change; problems change nothing.
        let before = store.load("u").unwrap().unwrap();
        match update(
            &store,
            "u",
            r#"{"zonename": "v", "cpu_cap": 0, "max_swap": 1024}"#,
        ) {
            Err(ManifestError::Invalid(p)) => {
                let p: Vec<String> = p.iter().map(|p| p.to_string()).collect();
                assert_eq!(p.len(), 2, "{p:?}");
                assert!(p[0].starts_with("$.zonename: cannot be changed"), "{p:?}");
                assert!(p[1].starts_with("$.cpu_cap: "), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.load("u").unwrap().unwrap(), before);
        assert!(update(&store, "nosuch", "{}").is_err());
    }

    /// docs/manifest.schema.json and the validator agree on the properties, and the schema's
    /// example is a valid manifest.
    #[test]
    fn the_schema_matches_the_validator() {
        let schema: Json =
            serde_json::from_str(include_str!("../../docs/manifest.schema.json")).unwrap();
        // The property names of a schema object, sorted; and a key list, sorted.
        fn keys_of(obj: &Json) -> Vec<&str> {
            let mut keys: Vec<&str> = obj
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            keys
        }
        fn sorted<'a>(keys: &[&'a str]) -> Vec<&'a str> {
            let mut keys = keys.to_vec();
            keys.sort_unstable();
            keys
        }
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(keys_of(&schema["properties"]), sorted(&KNOWN));
        let nic = &schema["properties"]["nics"]["items"];
        assert_eq!(nic["additionalProperties"], false);
        assert_eq!(keys_of(&nic["properties"]), sorted(&NIC_KEYS));
        assert_eq!(
            keys_of(&schema["properties"]["filesystems"]["items"]["properties"]),
            ["options", "source", "target", "type"]
        );
        let (_r, store) = root("schema");
        for example in schema["examples"].as_array().unwrap() {
            validate(&store, &example.to_string()).unwrap();
        }
    }
}
