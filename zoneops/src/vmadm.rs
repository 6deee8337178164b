//! SmartOS `vmadm` on zones: SmartOS payloads translated onto the manifest (`super::manifest`,
//! which does every check of values), and zones shown in SmartOS's JSON shape.
//!
//! A VM is a zone whose name is the VM's uuid (as on SmartOS) and whose zone uuid is that uuid
//! too. What the zone model has no property for is kept in `attr` resources of the zone:
//! `vm-alias`, `vm-tags` (a JSON object), `vm-brand` (the payload's brand) and `vm-image` (the
//! payload's `image_uuid`).
//!
//! Payload keys (create): `uuid` → the zone name (a new one when absent); `alias`, `tags` →
//! attrs; `brand` `joyent`, `joyent-minimal`, `lx` (and `linux`) → brand linux (every zone here
//! runs Linux binaries natively), `kvm` and `bhyve` → brand kvm (a hardware VM, see
//! `zones::kvm`: `vcpus`, `ram` (the guest's MiB; the zone's cap is that plus qemu's
//! overhead unless `max_physical_memory` is given), `disks[]` (`image_uuid`, `size` MiB,
//! `boot`, `model`) → attrs `disk0`..., `kernel`/`initrd`/`cmdline`, `boot` (`order=c...`,
//! `disk` or `kernel`), `nics[].model` `virtio`; no top-level `image_uuid`), others
//! refused; `image_uuid` → the image (`imgadm` id, id
//! prefix or name); `ram` → `max_physical_memory` (MiB; both given must agree); `cpu_cap`,
//! `cpu_shares`, `quota`, `max_lwps`, `max_swap`, `max_locked_memory`, `resolvers`,
//! `hostname`, `customer_metadata`, `autoboot` (default true, as on SmartOS), `limit_priv`,
//! `filesystems` as in the manifest; `zfs_io_priority` → rctl zone.zfs-io-priority (1 to 1000;
//! the default 100 is no rctl), refused at `$.zfs_io_priority` with the kernel's reason where
//! this host cannot weight I/O, and taken live by a running VM on update; `nics[]`: `ip` +
//! `netmask` (or `ip` as ADDR/PREFIX) → `ips[0]`, `gateway` →
//! `gateways[0]`, `primary` (only `nics[0]` may be primary: it carries the default route),
//! `nic_tag` (an etherstub), `vlan_id`, `mac`, `interface`, `mtu`, `allow_ip_spoofing`.
//! Anything else is refused with its JSON path, never dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value as Json};
use zones::model::{Attr, AttrType, Rctl, RctlAction, Zone};
use zones::state::ZoneState;
use zones::store::{Store, StoreError};

use super::admin::{self, effective_state};
use super::manifest::{self, ManifestError, Problem};
use super::metadata;
use super::{ZoneInfo, ZonePaths};

/// The attrs a VM's extra properties live in.
pub const ATTR_ALIAS: &str = "vm-alias";
pub const ATTR_TAGS: &str = "vm-tags";
pub const ATTR_BRAND: &str = "vm-brand";
pub const ATTR_IMAGE: &str = "vm-image";

/// Brands taken as this project's `linux` brand.
pub const LINUX_BRANDS: [&str; 4] = ["joyent", "joyent-minimal", "lx", "linux"];

/// Brands taken as this project's `kvm` brand (hardware VMs; bhyve is SmartOS's other
/// hypervisor and runs here as kvm does).
pub const KVM_BRANDS: [&str; 2] = ["kvm", "bhyve"];

/// The VM keys of a kvm payload, each kept in the zone attr of the same name (see
/// `zones::kvm`); `disks[i]` goes to attr `disk<i>`.
const VM_KEYS: [&str; 5] = ["vcpus", "kernel", "initrd", "cmdline", "boot"];

/// Create keys passed to the manifest unchanged.
const PASS: [&str; 13] = [
    "autoboot",
    "cpu_cap",
    "cpu_shares",
    "max_lwps",
    "max_physical_memory",
    "max_swap",
    "max_locked_memory",
    "quota",
    "resolvers",
    "hostname",
    "customer_metadata",
    "limit_priv",
    "filesystems",
];

/// Keys of a nic passed to the manifest unchanged (it checks them).
const NIC_PASS: [&str; 8] = [
    "nic_tag",
    "vlan_id",
    "mac",
    "interface",
    "mtu",
    "allow_ip_spoofing",
    "ips",
    "gateways",
];

/// SmartOS keys known but not honoured here: refused with this reason.
const UNSUPPORTED: [&str; 28] = [
    "delegate_dataset",
    "datasets",
    "dns_domain",
    "routes",
    "firewall_enabled",
    "internal_metadata",
    "internal_metadata_namespaces",
    "billing_id",
    "owner_uuid",
    "package_name",
    "package_version",
    "max_msg_ids",
    "max_sem_ids",
    "max_shm_ids",
    "max_shm_memory",
    "tmpfs",
    "kernel_version",
    "fs_allowed",
    "mdata_exec_timeout",
    "indestructible_zoneroot",
    "indestructible_delegated",
    "maintain_resolvers",
    "zfs_root_compression",
    "zfs_data_compression",
    "zlog_max_size",
    "cpu_type",
    "qemu_opts",
    "archive_on_delete",
];

/// Errors of the vmadm face.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error(transparent)]
    Metadata(#[from] metadata::MetadataError),
    #[error(transparent)]
    Login(#[from] super::login::LoginError),
    #[error("{0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, VmError>;

fn problem(problems: &mut Vec<Problem>, path: impl Into<String>, msg: impl Into<String>) {
    problems.push(Problem {
        path: path.into(),
        msg: msg.into(),
    });
}

/// A SmartOS payload translated: the manifest document and what goes to attrs. `renames` maps
/// manifest JSON paths back to the payload's (`$.nics[0].ips[0]` → `$.nics[0].ip`).
#[derive(Debug, Default)]
struct Translated {
    doc: Map<String, Json>,
    attrs: BTreeMap<&'static str, String>,
    renames: Vec<(String, String)>,
    problems: Vec<Problem>,
    /// `zfs_io_priority`: `Some(None)` for the default 100 (no rctl), `Some(Some(p))` for
    /// rctl zone.zfs-io-priority=p.
    io_priority: Option<Option<u64>>,
    /// The payload's brand is kvm or bhyve.
    kvm: bool,
    /// A kvm payload's VM attrs (`zones::kvm`), with the payload path each came from.
    vm_attrs: Vec<(String, String, String)>,
}

impl Translated {
    /// The problems of `e` with their paths in payload terms, plus the translation's own.
    fn problems_of(&self, e: ManifestError) -> ManifestError {
        match e {
            ManifestError::Invalid(ps) => {
                let mut all = self.problems.clone();
                for mut p in ps {
                    p.path = self.rename(&p.path);
                    if !all.contains(&p) {
                        all.push(p);
                    }
                }
                ManifestError::Invalid(all)
            }
            other => other,
        }
    }

    fn rename(&self, path: &str) -> String {
        for (from, to) in &self.renames {
            if path == from {
                return to.clone();
            }
            if let Some(rest) = path.strip_prefix(from.as_str()) {
                if rest.starts_with('.') || rest.starts_with('[') {
                    return format!("{to}{rest}");
                }
            }
        }
        path.to_string()
    }
}

fn parse(text: &str) -> std::result::Result<Map<String, Json>, ManifestError> {
    let invalid = |msg: String| {
        ManifestError::Invalid(vec![Problem {
            path: "$".into(),
            msg,
        }])
    };
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => Err(invalid("expected an object".into())),
        Err(e) => Err(invalid(format!("not JSON: {e}"))),
    }
}

/// Whether `s` is a uuid (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `255.255.255.0` → 24; `None` for a mask that is not one.
fn mask_bits(mask: &str) -> Option<u32> {
    let ip: std::net::Ipv4Addr = mask.parse().ok()?;
    let v = u32::from(ip);
    let bits = v.leading_ones();
    (v.checked_shl(bits).unwrap_or(0) == 0).then_some(bits)
}

fn tags_of(problems: &mut Vec<Problem>, path: &str, v: &Json) -> Option<Map<String, Json>> {
    let Json::Object(m) = v else {
        problem(problems, path, "expected an object");
        return None;
    };
    let before = problems.len();
    for (k, v) in m {
        if !matches!(v, Json::String(_) | Json::Number(_) | Json::Bool(_)) {
            problem(
                problems,
                format!("{path}[{}]", Json::String(k.clone())),
                "expected a string, number or boolean",
            );
        }
    }
    (problems.len() == before).then(|| m.clone())
}

fn string_at(problems: &mut Vec<Problem>, path: &str, v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        _ => {
            problem(problems, path, format!("expected a string, not {v}"));
            None
        }
    }
}

/// One SmartOS nic as a manifest nic.
fn nic(t: &mut Translated, i: usize, v: &Json) -> Json {
    let path = format!("$.nics[{i}]");
    let Json::Object(n) = v else {
        return v.clone(); // the manifest says what is wrong
    };
    let mut out = Map::new();
    for (k, v) in n {
        let kp = format!("{path}.{k}");
        match k.as_str() {
            k if NIC_PASS.contains(&k) => {
                out.insert(k.to_string(), v.clone());
            }
            "ip" | "netmask" | "gateway" => {}
            "primary" => match v {
                Json::Bool(true) if i != 0 => problem(
                    &mut t.problems,
                    kp,
                    "only nics[0] can be primary here (it carries the default route): put the primary nic first",
                ),
                Json::Bool(_) => {}
                _ => problem(&mut t.problems, kp, format!("expected true or false, not {v}")),
            },
            "model" if t.kvm => {
                if v != "virtio" {
                    problem(&mut t.problems, kp, format!("{v}: expected \"virtio\""));
                }
            }
            "model" => problem(
                &mut t.problems,
                kp,
                "not supported (a nic model is for HVM VMs, brand kvm or bhyve; zones have veth links)",
            ),
            _ => problem(&mut t.problems, kp, "unknown property"),
        }
    }
    if let Some(ip) = n.get("ip") {
        if n.contains_key("ips") {
            problem(
                &mut t.problems,
                format!("{path}.ip"),
                "give ip or ips, not both",
            );
        } else if let Some(ip) = string_at(&mut t.problems, &format!("{path}.ip"), ip) {
            let addr =
                if ip.contains('/') || ip == "dhcp" || ip == "addrconf" {
                    Some(ip)
                } else {
                    match n.get("netmask") {
                        None => {
                            problem(
                                &mut t.problems,
                                format!("{path}.netmask"),
                                "missing (give netmask with ip, or ip as ADDR/PREFIX)",
                            );
                            None
                        }
                        Some(m) => string_at(&mut t.problems, &format!("{path}.netmask"), m)
                            .and_then(|m| match mask_bits(&m) {
                                Some(bits) => Some(format!("{ip}/{bits}")),
                                None => {
                                    problem(
                                        &mut t.problems,
                                        format!("{path}.netmask"),
                                        format!("\"{m}\" is not an IPv4 netmask"),
                                    );
                                    None
                                }
                            }),
                    }
                };
            if let Some(a) = addr {
                out.insert("ips".into(), json!([a]));
                t.renames
                    .push((format!("{path}.ips[0]"), format!("{path}.ip")));
            }
        }
    } else if n.contains_key("netmask") {
        problem(
            &mut t.problems,
            format!("{path}.netmask"),
            "netmask without ip",
        );
    }
    if t.kvm {
        for k in ["gateway", "gateways"] {
            if n.contains_key(k) {
                problem(
                    &mut t.problems,
                    format!("{path}.{k}"),
                    "a VM sets its own default route (in the guest): remove it",
                );
            }
        }
    } else if let Some(gw) = n.get("gateway") {
        if n.contains_key("gateways") {
            problem(
                &mut t.problems,
                format!("{path}.gateway"),
                "give gateway or gateways, not both",
            );
        } else if let Some(gw) = string_at(&mut t.problems, &format!("{path}.gateway"), gw) {
            out.insert("gateways".into(), json!([gw]));
            t.renames
                .push((format!("{path}.gateways[0]"), format!("{path}.gateway")));
        }
    }
    Json::Object(out)
}

/// The keys both create and update translate the same way; true when `key` was one.
fn common_key(t: &mut Translated, key: &str, v: &Json, payload: &Map<String, Json>) -> bool {
    let path = format!("$.{key}");
    match key {
        k if PASS.contains(&k) => {
            t.doc.insert(k.to_string(), v.clone());
        }
        "ram" if t.kvm => match v.as_u64() {
            Some(mib) if mib > 0 => {
                t.vm_attrs
                    .push(("ram".into(), format!("{mib}m"), path));
            }
            _ => problem(&mut t.problems, path, format!("{v}: expected MiB, a positive integer")),
        },
        "ram" => {
            if let Some(m) = payload.get("max_physical_memory") {
                if m != v {
                    problem(
                        &mut t.problems,
                        path,
                        format!("ram ({v}) and max_physical_memory ({m}) differ: give one"),
                    );
                }
            } else {
                t.doc.insert("max_physical_memory".into(), v.clone());
                t.renames.push(("$.max_physical_memory".into(), path));
            }
        }
        "alias" => {
            if let Some(a) = string_at(&mut t.problems, &path, v) {
                if a.contains('\n') {
                    problem(&mut t.problems, path, "no newline in an alias");
                } else {
                    t.attrs.insert(ATTR_ALIAS, a);
                }
            }
        }
        "tags" => {
            if let Some(m) = tags_of(&mut t.problems, &path, v) {
                t.attrs.insert(ATTR_TAGS, Json::Object(m).to_string());
            }
        }
        "zfs_io_priority" => match v.as_u64() {
            Some(100) => t.io_priority = Some(None),
            Some(p @ IO_PRIORITY_MIN..=IO_PRIORITY_MAX) => t.io_priority = Some(Some(p)),
            _ => problem(
                &mut t.problems,
                path,
                format!("{v}: expected an integer from {IO_PRIORITY_MIN} to {IO_PRIORITY_MAX} (100 is the default)"),
            ),
        },
        k if VM_KEYS.contains(&k) || k == "disks" => {
            if !t.kvm {
                problem(&mut t.problems, path, "only for brand kvm or bhyve");
            } else if k == "disks" {
                vm_disks(t, v);
            } else if let Some(text) = vm_value(&mut t.problems, &path, k, v) {
                t.vm_attrs.push((k.to_string(), text, path));
            }
        }
        k if UNSUPPORTED.contains(&k) => problem(
            &mut t.problems,
            path,
            "not supported by this vmadm (refused rather than ignored)",
        ),
        _ => return false,
    }
    true
}

/// A VM key's value as its attr's text: `vcpus` a positive integer, `boot` SmartOS's
/// `order=c...` (disk) or this project's `kernel`/`disk`, the others strings.
fn vm_value(problems: &mut Vec<Problem>, path: &str, key: &str, v: &Json) -> Option<String> {
    match key {
        "vcpus" => match v.as_u64() {
            Some(n) => Some(n.to_string()),
            None => {
                problem(problems, path, format!("{v}: expected a positive integer"));
                None
            }
        },
        "boot" => {
            let b = string_at(problems, path, v)?;
            let order = b
                .split(',')
                .find_map(|p| p.strip_prefix("order="))
                .map(|o| o.chars().next());
            match (b.as_str(), order) {
                ("kernel" | "disk", _) => Some(b),
                (_, Some(Some('c'))) => Some("disk".into()),
                _ => {
                    problem(
                        problems,
                        path,
                        format!("\"{b}\": expected kernel, disk or order=c (boot from disk)"),
                    );
                    None
                }
            }
        }
        _ => string_at(problems, path, v),
    }
}

/// `disks[]` of a kvm payload: `image_uuid` (or `image_name`), `size` (MiB), `boot`,
/// `model` → attr `disk<i>` = `image=...,size=...m,boot=true,model=...`.
fn vm_disks(t: &mut Translated, v: &Json) {
    let Json::Array(items) = v else {
        problem(&mut t.problems, "$.disks", "expected an array");
        return;
    };
    if items.len() > zones::kvm::MAX_DISKS {
        problem(
            &mut t.problems,
            "$.disks",
            format!("{} disks: at most {}", items.len(), zones::kvm::MAX_DISKS),
        );
        return;
    }
    for (i, d) in items.iter().enumerate() {
        let path = format!("$.disks[{i}]");
        let Json::Object(d) = d else {
            problem(&mut t.problems, path, "expected an object");
            continue;
        };
        let mut parts = Vec::new();
        for (k, v) in d {
            let kp = format!("{path}.{k}");
            match k.as_str() {
                "image_uuid" | "image_name" => {
                    if let Some(i) = string_at(&mut t.problems, &kp, v) {
                        if i.is_empty() || i.contains([',', '=']) {
                            problem(&mut t.problems, kp, format!("\"{i}\" is not an image"));
                        } else {
                            parts.insert(0, format!("image={i}"));
                        }
                    }
                }
                "size" => match v.as_u64() {
                    Some(mib) if mib > 0 => parts.push(format!("size={mib}m")),
                    _ => problem(
                        &mut t.problems,
                        kp,
                        format!("{v}: expected MiB, a positive integer"),
                    ),
                },
                "boot" => match v {
                    Json::Bool(b) => parts.push(format!("boot={b}")),
                    _ => problem(
                        &mut t.problems,
                        kp,
                        format!("expected true or false, not {v}"),
                    ),
                },
                "model" => match v.as_str() {
                    Some(m @ ("virtio" | "ide")) => parts.push(format!("model={m}")),
                    _ => problem(
                        &mut t.problems,
                        kp,
                        format!("{v}: expected \"virtio\" or \"ide\""),
                    ),
                },
                _ => problem(
                    &mut t.problems,
                    kp,
                    "not supported by this vmadm (image_uuid, size, boot and model are)",
                ),
            }
        }
        if !d.contains_key("image_uuid") && !d.contains_key("image_name") {
            problem(
                &mut t.problems,
                format!("{path}.image_uuid"),
                "missing (a disk is cloned from an image)",
            );
        } else {
            t.vm_attrs.push((format!("disk{i}"), parts.join(","), path));
        }
    }
}

fn translate_create(payload: &Map<String, Json>) -> (Translated, String) {
    let mut t = Translated {
        kvm: payload
            .get("brand")
            .and_then(Json::as_str)
            .is_some_and(|b| KVM_BRANDS.contains(&b)),
        ..Translated::default()
    };
    let mut uuid = zones::model::new_uuid();
    for (key, v) in payload {
        let path = format!("$.{key}");
        if common_key(&mut t, key, v, payload) {
            continue;
        }
        match key.as_str() {
            "uuid" => match string_at(&mut t.problems, &path, v) {
                Some(u) if is_uuid(&u) => uuid = u.to_ascii_lowercase(),
                Some(u) => problem(&mut t.problems, path, format!("\"{u}\" is not a uuid")),
                None => {}
            },
            "brand" => {
                if let Some(b) = string_at(&mut t.problems, &path, v) {
                    if LINUX_BRANDS.contains(&b.as_str()) || KVM_BRANDS.contains(&b.as_str()) {
                        t.attrs.insert(ATTR_BRAND, b);
                    } else {
                        problem(
                            &mut t.problems,
                            path,
                            format!("\"{b}\": not supported (joyent, joyent-minimal and lx are zones of brand linux; kvm and bhyve are VMs of brand kvm)"),
                        );
                    }
                }
            }
            "image_uuid" if t.kvm => problem(
                &mut t.problems,
                path,
                "a VM's image is its boot disk's: give disks[].image_uuid",
            ),
            "image_uuid" => {
                if let Some(i) = string_at(&mut t.problems, &path, v) {
                    t.doc.insert("image".into(), Json::String(i.clone()));
                    t.attrs.insert(ATTR_IMAGE, i);
                    t.renames.push(("$.image".into(), path));
                }
            }
            "nics" => match v {
                Json::Array(items) => {
                    let nics: Vec<Json> = items
                        .iter()
                        .enumerate()
                        .map(|(i, n)| nic(&mut t, i, n))
                        .collect();
                    t.doc.insert("nics".into(), Json::Array(nics));
                }
                _ => problem(&mut t.problems, path, "expected an array"),
            },
            _ => problem(&mut t.problems, path, "unknown property"),
        }
    }
    if !payload.contains_key("image_uuid") && !t.kvm {
        problem(&mut t.problems, "$.image_uuid", "missing");
    }
    t.doc.insert("zonename".into(), Json::String(uuid.clone()));
    let brand = if t.kvm { "kvm" } else { "linux" };
    t.doc.insert("brand".into(), Json::String(brand.into()));
    t.doc.entry("autoboot").or_insert(Json::Bool(true));
    t.renames.push(("$.zonename".into(), "$.uuid".into()));
    (t, uuid)
}

/// The `zfs_io_priority` values taken: the block I/O weight is the priority × 5 within
/// [10, 1000] (see `zones::spec`), so 2..=200 are the distinct weights and beyond 200 is 1000.
const IO_PRIORITY_MIN: u64 = 1;
const IO_PRIORITY_MAX: u64 = 1000;
const IO_PRIORITY_RCTL: &str = "zone.zfs-io-priority";

/// Sets (or, `None`: removes, the default 100) the zone's rctl zone.zfs-io-priority, and
/// checks that this host's kernel can weight I/O when one is set: a problem at
/// `$.zfs_io_priority` with the kernel's reason otherwise, so the value is never stored and
/// ignored.
fn set_io_priority(zone: &mut Zone, p: Option<u64>, problems: &mut Vec<Problem>) {
    zone.rctl
        .retain(|r| r.name.as_deref() != Some(IO_PRIORITY_RCTL));
    let Some(p) = p else {
        return;
    };
    zone.rctl
        .push(Rctl::single(IO_PRIORITY_RCTL, p, RctlAction::None));
    if let Err(e) = zones::spec::check_kernel(zone) {
        let why = match e {
            zones::spec::SpecError::Invalid { what, .. } => what,
            e => e.to_string(),
        };
        let why = why
            .strip_prefix(&format!("rctl {IO_PRIORITY_RCTL}: "))
            .unwrap_or(&why)
            .to_string();
        problem(
            problems,
            "$.zfs_io_priority",
            format!("{p}: this host cannot weight I/O: {why}"),
        );
    }
}

fn set_attr(zone: &mut Zone, name: &str, value: Option<String>) {
    zone.attr.retain(|a| a.name.as_deref() != Some(name));
    if let Some(v) = value {
        zone.attr.push(Attr {
            name: Some(name.to_string()),
            attr_type: Some(AttrType::String),
            value: Some(v),
        });
    }
}

fn attr<'a>(zone: &'a Zone, name: &str) -> Option<&'a str> {
    zone.attr
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| a.value.as_deref())
}

/// `vmadm validate create`: the plan of payload `text`, or every problem with its path.
fn plan_create(store: &Store, text: &str) -> Result<(manifest::Plan, String)> {
    let payload = parse(text)?;
    let (mut t, uuid) = translate_create(&payload);
    if let Some(p) = t.io_priority {
        set_io_priority(&mut Zone::new(&uuid), p, &mut t.problems);
    }
    let doc = Json::Object(t.doc.clone()).to_string();
    let res = manifest::validate(store, &doc);
    let mut plan = match res {
        Err(e) => return Err(t.problems_of(e).into()),
        Ok(_) if !t.problems.is_empty() => {
            return Err(ManifestError::Invalid(t.problems).into());
        }
        Ok(p) => p,
    };
    plan.zone.uuid = uuid.clone();
    for (k, v) in t.attrs {
        set_attr(&mut plan.zone, k, Some(v));
    }
    for (k, v, _) in &t.vm_attrs {
        set_attr(&mut plan.zone, k, Some(v.clone()));
    }
    if let Err(e) = zones::kvm::KvmConfig::from_zone(&plan.zone) {
        let path = match &e {
            zones::kvm::KvmError::BadAttr { attr, .. } => t
                .vm_attrs
                .iter()
                .find(|(k, _, _)| k == attr)
                .map_or("$".to_string(), |(_, _, p)| p.clone()),
            zones::kvm::KvmError::Invalid { .. } => "$".to_string(),
        };
        return Err(ManifestError::Invalid(vec![Problem {
            path,
            msg: e.to_string(),
        }])
        .into());
    }
    if let Some(p) = t.io_priority {
        // Checked against the kernel above.
        set_io_priority(&mut plan.zone, p, &mut Vec::new());
    }
    Ok((plan, uuid))
}

/// `vmadm validate create -f FILE`.
pub fn validate_create(store: &Store, text: &str) -> Result<()> {
    plan_create(store, text).map(|_| ())
}

/// `vmadm create`: configure, install and boot (one transaction, `manifest::provision_plan`);
/// returns the uuid.
pub fn create(store: &Store, text: &str) -> Result<String> {
    let (plan, uuid) = plan_create(store, text)?;
    manifest::provision_plan(store, plan)?;
    Ok(uuid)
}

/// An update payload translated, against the zone's current metadata `md` (for
/// `set_customer_metadata`/`remove_customer_metadata`) and tags.
fn translate_update(
    payload: &Map<String, Json>,
    md: &metadata::Metadata,
    tags: &Map<String, Json>,
) -> Translated {
    let mut t = Translated::default();
    let mut new_md: Option<metadata::Metadata> = None;
    let mut new_tags: Option<Map<String, Json>> = None;
    for (key, v) in payload {
        let path = format!("$.{key}");
        if VM_KEYS.contains(&key.as_str()) || key == "disks" {
            problem(
                &mut t.problems,
                path,
                "cannot be updated: a VM's hardware is set at create",
            );
            continue;
        }
        if key == "customer_metadata" || key == "tags" {
            // Replacements; handled below with the set_/remove_ forms.
        } else if common_key(&mut t, key, v, payload) {
            continue;
        }
        match key.as_str() {
            "uuid" | "brand" | "image_uuid" | "zonepath" | "zonename" => {
                problem(&mut t.problems, path, "cannot be updated");
            }

            "nics" | "add_nics" | "remove_nics" | "update_nics" => problem(
                &mut t.problems,
                path,
                "not supported by update: change the zone's anets with zonecfg",
            ),
            "customer_metadata" => {} // passed on as is
            "tags" => {
                if let Some(m) = tags_of(&mut t.problems, &path, v) {
                    new_tags = Some(m);
                }
            }
            "set_customer_metadata" => match v {
                Json::Object(m) => {
                    let cur = new_md.get_or_insert_with(|| md.clone());
                    for (k, v) in m {
                        match v {
                            Json::String(s) => {
                                cur.insert(k.clone(), s.clone());
                            }
                            _ => problem(
                                &mut t.problems,
                                format!("{path}[{}]", Json::String(k.clone())),
                                "expected a string",
                            ),
                        }
                    }
                    t.renames.push(("$.customer_metadata".into(), path.clone()));
                }
                _ => problem(&mut t.problems, path, "expected an object of strings"),
            },
            "remove_customer_metadata" | "remove_tags" => {
                let mut local = Vec::new();
                let keys: Vec<String> = match v {
                    Json::Array(a) => a
                        .iter()
                        .filter_map(|k| string_at(&mut local, &path, k))
                        .collect(),
                    _ => {
                        problem(&mut local, &path, "expected an array of keys");
                        Vec::new()
                    }
                };
                t.problems.extend(local);
                if key == "remove_tags" {
                    let cur = new_tags.get_or_insert_with(|| tags.clone());
                    keys.iter().for_each(|k| {
                        cur.remove(k);
                    });
                } else {
                    let cur = new_md.get_or_insert_with(|| md.clone());
                    keys.iter().for_each(|k| {
                        cur.remove(k);
                    });
                }
            }
            "set_tags" => {
                if let Some(m) = tags_of(&mut t.problems, &path, v) {
                    let cur = new_tags.get_or_insert_with(|| tags.clone());
                    cur.extend(m);
                }
            }
            _ => problem(&mut t.problems, path, "unknown property"),
        }
    }
    if let Some(md) = new_md {
        let base = match payload.get("customer_metadata") {
            Some(Json::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let mut merged = base;
        for (k, v) in md {
            merged.insert(k, Json::String(v));
        }
        t.doc
            .insert("customer_metadata".into(), Json::Object(merged));
    } else if let Some(v) = payload.get("customer_metadata") {
        t.doc.insert("customer_metadata".into(), v.clone());
    }
    if let Some(tags) = new_tags {
        t.attrs.insert(ATTR_TAGS, Json::Object(tags).to_string());
    }
    t
}

/// `vmadm validate update -f FILE`: the problems of an update payload on its own.
pub fn validate_update(text: &str) -> Result<()> {
    let payload = parse(text)?;
    let mut t = translate_update(&payload, &Default::default(), &Map::new());
    if let Some(p) = t.io_priority {
        set_io_priority(&mut Zone::new("validate"), p, &mut t.problems);
    }
    let res = manifest::check_update(&Json::Object(t.doc.clone()).to_string());
    match res {
        Err(e) => Err(t.problems_of(e).into()),
        Ok(()) if !t.problems.is_empty() => Err(ManifestError::Invalid(t.problems).into()),
        Ok(()) => Ok(()),
    }
}

/// `vmadm update UUID`: the payload's changes; caps, autoboot and metadata take effect at once
/// on a running VM (the manifest's update), the alias and tags are stored.
pub fn update(store: &Store, uuid: &str, text: &str) -> Result<manifest::UpdateReport> {
    let name = resolve(store, uuid)?;
    let payload = parse(text)?;
    let zone = load(store, &name)?;
    let md = metadata::load(store, &name)?;
    let tags = current_tags(&zone);
    let mut t = translate_update(&payload, &md, &tags);
    if zone.brand == zones::model::Brand::Kvm && payload.contains_key("ram") {
        problem(
            &mut t.problems,
            "$.ram",
            "cannot be updated: a VM's RAM is set at create (max_physical_memory caps its zone)",
        );
    }
    // The I/O priority this kernel cannot apply is a problem like any other.
    if let Some(p) = t.io_priority {
        let mut probe = zone.clone();
        set_io_priority(&mut probe, p, &mut t.problems);
    }
    // Every problem first, the translation's and the manifest's, before anything changes.
    if !t.problems.is_empty() {
        let mut all = t.problems.clone();
        if let Err(ManifestError::Invalid(ps)) =
            manifest::check_update(&Json::Object(t.doc.clone()).to_string())
        {
            for mut p in ps {
                p.path = t.rename(&p.path);
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        return Err(ManifestError::Invalid(all).into());
    }
    let mut report = manifest::update(store, &name, &Json::Object(t.doc.clone()).to_string())
        .map_err(|e| t.problems_of(e))?;
    if !t.attrs.is_empty() || t.io_priority.is_some() {
        let lock = store.lock(&name)?;
        let mut zone = load(store, &name)?;
        for (k, v) in &t.attrs {
            set_attr(&mut zone, k, Some(v.clone()));
        }
        if let Some(p) = t.io_priority {
            set_io_priority(&mut zone, p, &mut Vec::new());
        }
        store.save(&lock, &zone)?;
        drop(lock);
        // The I/O weight is a cap of the zone's cgroup: a running zone takes it at once.
        if t.io_priority.is_some() {
            let key = "zfs_io_priority".to_string();
            if admin::check_live(store, &name).is_ok() {
                admin::apply_live(store, &zone)?;
                report.live.push(key);
            } else {
                report.stored.push(key);
            }
        }
    }
    Ok(report)
}

fn load(store: &Store, name: &str) -> Result<Zone> {
    Ok(store
        .load(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?)
}

fn current_tags(zone: &Zone) -> Map<String, Json> {
    attr(zone, ATTR_TAGS)
        .and_then(|t| serde_json::from_str::<Map<String, Json>>(t).ok())
        .unwrap_or_default()
}

/// The zone of VM `uuid`: the zone of that name, else the zone with that uuid.
pub fn resolve(store: &Store, uuid: &str) -> Result<String> {
    if store.entry(uuid)?.is_some() {
        return Ok(uuid.to_string());
    }
    match store.find_uuid(uuid)? {
        Some(e) => Ok(e.name),
        None => Err(VmError::Other(format!("No such VM: {uuid}"))),
    }
}

/// SmartOS's name for a zone state: an installed zone is `stopped`.
fn vm_state(st: ZoneState) -> String {
    match st {
        ZoneState::Installed => "stopped".into(),
        ZoneState::ShuttingDown => "stopping".into(),
        other => other.to_string(),
    }
}

/// `vmadm get UUID`: the VM in SmartOS's shape.
pub fn get(store: &Store, name: &str) -> Result<Json> {
    let recorded = store
        .state(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?;
    get_recorded(store, name, recorded)
}

/// [`get`] with the zone's state as the index records it (read by the caller: [`all`] reads
/// the index once, not once per zone).
fn get_recorded(store: &Store, name: &str, recorded: ZoneState) -> Result<Json> {
    let zone = load(store, name)?;
    let st = effective_state(store, name, recorded);
    let live = matches!(
        st,
        ZoneState::Ready | ZoneState::Running | ZoneState::ShuttingDown
    );
    let info = live
        .then(|| ZoneInfo::load(&ZonePaths::new(store, name)))
        .flatten();
    let mut d = Map::new();
    let mut put = |k: &str, v: Json| {
        if !v.is_null() {
            d.insert(k.to_string(), v);
        }
    };
    put("uuid", zone.uuid.clone().into());
    put(
        "alias",
        attr(&zone, ATTR_ALIAS)
            .map(str::to_string)
            .unwrap_or_else(|| zone.zonename.clone())
            .into(),
    );
    let kvm = zones::kvm::KvmConfig::from_zone(&zone).ok().flatten();
    let is_vm = zone.brand == zones::model::Brand::Kvm;
    put(
        "brand",
        attr(&zone, ATTR_BRAND)
            .unwrap_or(if is_vm { "kvm" } else { "linux" })
            .to_string()
            .into(),
    );
    put("type", if is_vm { "KVM" } else { "OS" }.into());
    put("zonename", zone.zonename.clone().into());
    put(
        "zonepath",
        zone.zonepath
            .as_ref()
            .map(|p| p.display().to_string())
            .into(),
    );
    put("state", vm_state(st).into());
    put("zone_state", st.to_string().into());
    put("autoboot", zone.autoboot.into());
    put(
        "image_uuid",
        attr(&zone, ATTR_IMAGE).map(str::to_string).into(),
    );
    let mib = |s: Option<zones::model::Size>| s.map(|s| s.bytes() >> 20);
    let mem = zone.capped_memory.clone().unwrap_or_default();
    match &kvm {
        // A VM's ram is its guest's; its zone's cap is that and qemu's overhead.
        Some(vm) => {
            put("ram", (vm.ram >> 20).into());
            put(
                "max_physical_memory",
                mib(mem.physical).unwrap_or(vm.memory_cap() >> 20).into(),
            );
            put("vcpus", vm.vcpus.into());
            let disks: Vec<Json> = vm
                .disks
                .iter()
                .map(|d| {
                    let mut o = json!({"image_uuid": d.image, "boot": d.boot, "model": d.model});
                    if let Some(sz) = d.size {
                        o["size"] = (sz >> 20).into();
                    }
                    o
                })
                .collect();
            put("disks", Json::Array(disks));
            let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
            put("kernel", path(&vm.kernel).into());
            put("initrd", path(&vm.initrd).into());
            put("cmdline", vm.cmdline.clone().into());
        }
        None => {
            put("ram", mib(mem.physical).into());
            put("max_physical_memory", mib(mem.physical).into());
        }
    }
    put("max_swap", mib(mem.swap).into());
    put("max_locked_memory", mib(mem.locked).into());
    put(
        "cpu_cap",
        zone.capped_cpu
            .as_ref()
            .and_then(|c| c.ncpus)
            .map(|n| n.hundredths())
            .into(),
    );
    put(
        "cpu_shares",
        zone.rctl_limit("zone.cpu-shares").unwrap_or(100).into(),
    );
    put("max_lwps", zone.rctl_limit("zone.max-lwps").into());
    put("quota", zone.quota.map(|q| q.bytes() >> 30).into());
    put(
        "zfs_io_priority",
        zone.rctl_limit(IO_PRIORITY_RCTL).unwrap_or(100).into(),
    );
    put("hostname", zone.hostname.clone().into());
    put("resolvers", json!(zone.resolvers));
    let nics: Vec<Json> = zone
        .anet
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut n = Map::new();
            let mut put = |k: &str, v: Json| {
                if !v.is_null() {
                    n.insert(k.to_string(), v);
                }
            };
            put("interface", a.linkname.clone().into());
            put("nic_tag", a.lower_link.clone().into());
            put("mac", a.mac_address.clone().into());
            if let Some(addr) = &a.allowed_address {
                let (ip, bits) = addr.split_once('/').unwrap_or((addr, "32"));
                put("ip", ip.into());
                if let Ok(b) = bits.parse::<u32>() {
                    if b <= 32 {
                        let m = u32::MAX.checked_shl(32 - b).unwrap_or(0);
                        put("netmask", std::net::Ipv4Addr::from(m).to_string().into());
                    }
                }
                put("ips", json!([addr]));
            }
            if let Some(g) = &a.defrouter {
                put("gateway", g.clone().into());
                put("gateways", json!([g]));
            }
            put("vlan_id", a.vlan_id.unwrap_or(0).into());
            put("mtu", a.mtu.into());
            if i == 0 {
                put("primary", true.into());
            }
            if is_vm {
                put("model", "virtio".into());
            }
            Json::Object(n)
        })
        .collect();
    put("nics", Json::Array(nics));
    put("tags", Json::Object(current_tags(&zone)));
    let md = metadata::load(store, name)
        .ok()
        .map(|m| serde_json::to_value(m).expect("strings serialize"));
    put("customer_metadata", md.unwrap_or_else(|| json!({})));
    put("zoneid", info.as_ref().map(|i| i.zoneid).into());
    put(
        "pid",
        info.as_ref().map(|i| i.init_pid).filter(|p| *p > 0).into(),
    );
    Ok(Json::Object(d))
}

/// The get documents of every zone, in index order.
pub fn all(store: &Store) -> Result<Vec<Json>> {
    let mut out = Vec::new();
    for e in store.list()? {
        match get_recorded(store, &e.name, e.state) {
            Ok(d) => out.push(d),
            Err(VmError::Store(StoreError::NoSuchZone(_))) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The value at a dotted `field` of a get document: `nics.0.ip`; `*` (or no index) on an
/// array means any element (lookups).
pub fn values_at<'a>(doc: &'a Json, field: &str) -> Vec<&'a Json> {
    let mut cur = vec![doc];
    for seg in field.split('.') {
        let mut next = Vec::new();
        for v in cur {
            match v {
                Json::Array(items) => match seg.parse::<usize>() {
                    Ok(i) => next.extend(items.get(i)),
                    Err(_) if seg == "*" => next.extend(items.iter()),
                    Err(_) => next.extend(items.iter().filter_map(|it| it.get(seg))),
                },
                Json::Object(m) => next.extend(m.get(seg)),
                _ => {}
            }
        }
        cur = next;
    }
    cur
}

/// A value as a table cell or filter operand.
pub fn text_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A `field=value` condition of list and lookup.
#[derive(Debug, Clone)]
pub struct Filter {
    field: String,
    value: String,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter> {
        let (f, v) = text
            .split_once('=')
            .filter(|(f, _)| !f.is_empty())
            .ok_or_else(|| VmError::Other(format!("\"{text}\": expected field=value")))?;
        if v.starts_with('~') {
            return Err(VmError::Other(format!(
                "\"{text}\": field=~regex is not supported (exact values only)"
            )));
        }
        Ok(Filter {
            field: f.to_string(),
            value: v.to_string(),
        })
    }

    pub fn matches(&self, doc: &Json) -> bool {
        values_at(doc, &self.field).iter().any(|v| match v {
            Json::Array(items) => items.iter().any(|i| text_of(i) == self.value),
            v => text_of(v) == self.value,
        })
    }
}

/// `vmadm start`: boot the zone, autoboot on (as SmartOS), the user-script if it never ran.
pub fn start(store: &Store, name: &str) -> Result<()> {
    admin::boot(store, name, None)?;
    set_autoboot(store, name, true)?;
    user_script(store, name);
    Ok(())
}

/// `vmadm stop [-F]`: halt at once with `force`, else ask init to stop (60 s, then halt);
/// autoboot off (as SmartOS).
pub fn stop(store: &Store, name: &str, force: bool) -> Result<()> {
    if force {
        admin::halt(store, name)?;
    } else {
        admin::shutdown(store, name, false, Duration::from_secs(60))?;
    }
    set_autoboot(store, name, false)
}

/// `vmadm reboot [-F]`.
pub fn reboot(store: &Store, name: &str, force: bool) -> Result<()> {
    if force {
        admin::reboot(store, name)?;
    } else {
        admin::shutdown(store, name, true, Duration::from_secs(60))?;
    }
    user_script(store, name);
    Ok(())
}

/// The user-script check after a boot: the VM runs either way, so a failure is a warning.
fn user_script(store: &Store, name: &str) {
    if let Err(e) = super::userscript::start(store, name) {
        eprintln!("warning: VM {name}: user-script not started: {e}");
    }
}

fn set_autoboot(store: &Store, name: &str, on: bool) -> Result<()> {
    let lock = store.lock(name)?;
    let mut zone = load(store, name)?;
    if zone.autoboot != on {
        zone.autoboot = on;
        store.save(&lock, &zone)?;
    }
    Ok(())
}

/// `vmadm delete`: halt (if up), uninstall, delete the configuration and metadata.
pub fn delete(store: &Store, name: &str) -> Result<()> {
    let recorded = store
        .state(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?;
    let st = effective_state(store, name, recorded);
    if !matches!(st, ZoneState::Configured | ZoneState::Installed) {
        admin::halt(store, name)?;
    }
    let done = manifest::undo(store, name, st != ZoneState::Configured);
    if store.entry(name)?.is_some() {
        return Err(VmError::Other(format!("delete of {name}: {done}")));
    }
    Ok(())
}

/// The names of a send stream's first two entries (the zonepath's files follow, relative).
const SEND_ZONE: &str = ".vmadm-send/zone.json";
const SEND_METADATA: &str = ".vmadm-send/metadata.json";

/// `vmadm send UUID`: a stopped VM as a tar stream on `out`, made over detach/attach: the
/// zone is detached (its zonepath then holds all another host needs), its configuration and
/// metadata are written first, then the zonepath's files, and the zone is attached again
/// (whatever happened), so the VM is unchanged here. Extended attributes are not carried (an
/// overlay zone's opaque directories lose their mark).
pub fn send(store: &Store, name: &str, out: impl std::io::Write) -> Result<()> {
    let zone = load(store, name)?;
    let recorded = store
        .state(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?;
    if effective_state(store, name, recorded) != ZoneState::Installed {
        return Err(VmError::Other(format!(
            "VM {name} must be stopped to be sent (vmadm stop)"
        )));
    }
    let md = metadata::load(store, name)?;
    let host = super::engine::zonepath(store, &zone).map_err(admin::AdminError::from)?;
    admin::detach(store, name)?;
    let sent = (|| -> std::io::Result<()> {
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        for (path, data) in [
            (
                SEND_ZONE,
                serde_json::to_vec(&zone).expect("a zone serializes"),
            ),
            (
                SEND_METADATA,
                serde_json::to_vec(&md).expect("strings serialize"),
            ),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            b.append_data(&mut h, path, data.as_slice())?;
        }
        b.append_dir_all(".", &host)?;
        b.into_inner()?.flush()
    })();
    let attached = admin::attach(store, name, false);
    sent.map_err(|e| VmError::Other(format!("send of {name}: {e}")))?;
    Ok(attached?)
}

/// `vmadm receive`: a VM from a `send` stream on `input`: its configuration and metadata,
/// its zonepath's files (owners, modes and times kept; no entry may leave the zonepath), then
/// attach. The VM is stopped afterwards; a failure leaves nothing. Returns the uuid.
pub fn receive(store: &Store, input: impl std::io::Read) -> Result<String> {
    let bad = |m: String| VmError::Other(format!("receive: {m}"));
    let mut ar = tar::Archive::new(input);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    let mut entries = ar.entries().map_err(|e| bad(e.to_string()))?;
    let mut header = |want: &str| -> Result<Vec<u8>> {
        let mut e = entries
            .next()
            .ok_or_else(|| bad(format!("the stream ends before {want}")))?
            .map_err(|e| bad(e.to_string()))?;
        let path = e.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if path != std::path::Path::new(want) {
            return Err(bad(format!(
                "expected {want} first, not {} (not a vmadm send stream)",
                path.display()
            )));
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).map_err(|e| bad(e.to_string()))?;
        Ok(data)
    };
    let zone: Zone = serde_json::from_slice(&header(SEND_ZONE)?)
        .map_err(|e| bad(format!("{SEND_ZONE}: {e}")))?;
    let md: metadata::Metadata = serde_json::from_slice(&header(SEND_METADATA)?)
        .map_err(|e| bad(format!("{SEND_METADATA}: {e}")))?;
    let name = zone.zonename.clone();
    zones::model::validate_zone_name(&name).map_err(|e| bad(e.to_string()))?;
    zone.verify().map_err(|e| bad(e.to_string()))?;
    let host = super::engine::zonepath(store, &zone).map_err(admin::AdminError::from)?;
    {
        let lock = store.lock(&name)?;
        if store.entry(&name)?.is_some() || store.find_uuid(&zone.uuid)?.is_some() {
            return Err(bad(format!("VM {name} already exists")));
        }
        if host.exists() {
            return Err(bad(format!("{} already exists", host.display())));
        }
        store.save(&lock, &zone)?;
    }
    let received = (|| -> Result<()> {
        metadata::save(store, &name, &md)?;
        std::fs::create_dir_all(&host).map_err(|e| bad(format!("{}: {e}", host.display())))?;
        std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| bad(e.to_string()))?;
        for e in entries {
            let mut e = e.map_err(|e| bad(e.to_string()))?;
            // No device nodes but overlay whiteouts (character device 0/0): a stream must not
            // hand the zone a node of a host device.
            let h = e.header();
            let device = match h.entry_type() {
                tar::EntryType::Block => true,
                tar::EntryType::Char => {
                    h.device_major().ok().flatten().unwrap_or(1) != 0
                        || h.device_minor().ok().flatten().unwrap_or(1) != 0
                }
                _ => false,
            };
            if device {
                let p = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(bad(format!("{p}: a device node (refused)")));
            }
            // unpack_in refuses `..` and writing through symlinks the stream made.
            if !e.unpack_in(&host).map_err(|e| bad(e.to_string()))? {
                let p = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(bad(format!("{p}: leaves the zonepath")));
            }
        }
        admin::attach(store, &name, false)?;
        Ok(())
    })();
    if let Err(e) = received {
        let _ = std::fs::remove_dir_all(&host);
        manifest::undo(store, &name, false);
        return Err(e);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn smartos_keys_translate_onto_the_manifest() {
        let (t, uuid) = translate_create(&payload(json!({
            "uuid": "6E3C1A52-6D6B-4A1C-9B4B-1C2D3E4F5A6B", "alias": "web", "brand": "joyent",
            "image_uuid": "busybox", "ram": 256, "tags": {"role": "web", "n": 1},
            "zfs_io_priority": 100,
            "nics": [{"nic_tag": "stub0", "ip": "10.0.0.5", "netmask": "255.255.255.0",
                      "gateway": "10.0.0.1", "primary": true}]
        })));
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(uuid, "6e3c1a52-6d6b-4a1c-9b4b-1c2d3e4f5a6b");
        assert_eq!(t.doc["zonename"], uuid.as_str());
        assert_eq!(t.doc["max_physical_memory"], 256);
        assert_eq!(t.doc["image"], "busybox");
        assert_eq!(t.doc["autoboot"], true);
        assert_eq!(t.doc["nics"][0]["ips"][0], "10.0.0.5/24");
        assert_eq!(t.doc["nics"][0]["gateways"][0], "10.0.0.1");
        assert_eq!(t.attrs[ATTR_ALIAS], "web");
        assert_eq!(t.attrs[ATTR_BRAND], "joyent");
        assert_eq!(t.rename("$.nics[0].ips[0]"), "$.nics[0].ip");
        assert_eq!(t.rename("$.max_physical_memory"), "$.ram");
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_with_its_path() {
        let (t, _) = translate_create(&payload(json!({
            "brand": "hvm", "vcpus": 2, "bogus": 1, "zfs_io_priority": 0, "uuid": "x",
            "nics": [{"nic_tag": "s", "ip": "10.0.0.5"}, {"nic_tag": "s", "primary": true,
                      "model": "virtio", "ip": "10.0.0.6", "netmask": "255.0.255.0"}]
        })));
        let paths: Vec<&str> = t.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "$.brand",
            "$.vcpus",
            "$.bogus",
            "$.zfs_io_priority",
            "$.uuid",
            "$.nics[0].netmask",
            "$.nics[1].primary",
            "$.nics[1].model",
            "$.nics[1].netmask",
            "$.image_uuid",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        // In range, the priority is the rctl; the default 100 is none.
        for (p, want) in [(30, Some(Some(30))), (100, Some(None)), (1001, None)] {
            let (t, _) = translate_create(&payload(json!({ "zfs_io_priority": p })));
            assert_eq!(t.io_priority, want, "{p}");
        }
    }

    #[test]
    fn kvm_payloads_become_vm_attrs() {
        let (t, _) = translate_create(&payload(json!({
            "brand": "bhyve", "vcpus": 2, "ram": 512, "alias": "vm1",
            "disks": [{"image_uuid": "deb-disk", "boot": true, "model": "virtio", "size": 2048}],
            "nics": [{"nic_tag": "stub0", "ip": "10.0.0.5/24", "model": "virtio"}],
            "kernel": "/boot/vmlinuz", "cmdline": "console=ttyS0", "boot": "order=cd"
        })));
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.doc["brand"], "kvm");
        assert!(!t.doc.contains_key("max_physical_memory"));
        let attrs: Vec<(&str, &str)> = t
            .vm_attrs
            .iter()
            .map(|(k, v, _)| (k.as_str(), v.as_str()))
            .collect();
        for want in [
            ("vcpus", "2"),
            ("ram", "512m"),
            ("disk0", "image=deb-disk,boot=true,model=virtio,size=2048m"),
            ("kernel", "/boot/vmlinuz"),
            ("boot", "disk"),
        ] {
            assert!(attrs.contains(&want), "{want:?} not in {attrs:?}");
        }
        let (t, _) = translate_create(&payload(json!({
            "brand": "kvm", "image_uuid": "x", "disks": [{"size": 1, "bogus": 1}],
            "nics": [{"nic_tag": "s", "model": "e1000"}], "vcpus": "two"
        })));
        let paths: Vec<&str> = t.problems.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "$.image_uuid",
            "$.disks[0].bogus",
            "$.disks[0].image_uuid",
            "$.nics[0].model",
            "$.vcpus",
        ] {
            assert!(paths.contains(&want), "{want} not in {paths:?}");
        }
        let (t, _) = translate_create(&payload(
            json!({"brand": "joyent", "vcpus": 1, "image_uuid": "i"}),
        ));
        assert_eq!(t.problems[0].path, "$.vcpus");
    }

    #[test]
    fn update_payloads_merge_metadata_and_tags() {
        let md: metadata::Metadata = [("a".to_string(), "1".to_string())].into();
        let tags = payload(json!({"x": 1, "y": 2}));
        let t = translate_update(
            &payload(json!({"ram": 512, "set_customer_metadata": {"b": "2"},
                            "remove_tags": ["x"], "set_tags": {"z": true}, "alias": "n"})),
            &md,
            &tags,
        );
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.doc["max_physical_memory"], 512);
        assert_eq!(t.doc["customer_metadata"], json!({"a": "1", "b": "2"}));
        let tags: Json = serde_json::from_str(&t.attrs[ATTR_TAGS]).unwrap();
        assert_eq!(tags, json!({"y": 2, "z": true}));
        let t = translate_update(&payload(json!({"uuid": "u", "nics": []})), &md, &Map::new());
        assert_eq!(t.problems.len(), 2);
    }

    #[test]
    fn values_and_filters_reach_into_arrays() {
        let doc = json!({"ram": 256, "nics": [{"ip": "10.0.0.5"}, {"ip": "10.0.0.6"}],
                         "tags": {"role": "web"}});
        assert_eq!(text_of(values_at(&doc, "nics.1.ip")[0]), "10.0.0.6");
        assert!(Filter::parse("nics.*.ip=10.0.0.6").unwrap().matches(&doc));
        assert!(Filter::parse("ram=256").unwrap().matches(&doc));
        assert!(Filter::parse("tags.role=web").unwrap().matches(&doc));
        assert!(!Filter::parse("ram=128").unwrap().matches(&doc));
        assert!(Filter::parse("alias=~x").is_err());
        assert_eq!(mask_bits("255.255.255.0"), Some(24));
        assert_eq!(mask_bits("255.0.255.0"), None);
    }
}
