//! The zonecfg resources (`fs`, `net`, `anet`, `attr`, `capped-cpu`, `capped-memory`,
//! `dedicated-cpu`, `rctl`, `device`, `capped-io`, `dataset`) with their illumos property names.
//!
//! Every resource implements [`ResourceProps`], the generic face the command language uses
//! (`set`, `clear`, `add`, `remove`, listing for `info`/`export`, completeness for `end`).
//! Properties a resource needs are `Option`s while it is being edited; in a committed
//! configuration (one that passed [`super::Zone::verify`]) the required ones are `Some`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::values::{
    invalid, parse_uint, validate_abs_path, validate_ip, validate_ip_prefix, validate_link_name,
    validate_mac, validate_text, Bandwidth, CpuRange, Ncpus, Size,
};
use super::{ModelError, Value};

/// The resource types zonecfg knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Fs,
    Net,
    Anet,
    Device,
    Rctl,
    Attr,
    Dataset,
    DedicatedCpu,
    CappedCpu,
    CappedMemory,
    CappedIo,
}

impl ResourceType {
    /// All types, in the order `info` and `export` print them.
    pub const ALL: [ResourceType; 11] = [
        ResourceType::Fs,
        ResourceType::Net,
        ResourceType::Anet,
        ResourceType::Device,
        ResourceType::Rctl,
        ResourceType::Attr,
        ResourceType::Dataset,
        ResourceType::DedicatedCpu,
        ResourceType::CappedCpu,
        ResourceType::CappedMemory,
        ResourceType::CappedIo,
    ];

    /// The illumos name (`capped-memory`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Fs => "fs",
            ResourceType::Net => "net",
            ResourceType::Anet => "anet",
            ResourceType::Device => "device",
            ResourceType::Rctl => "rctl",
            ResourceType::Attr => "attr",
            ResourceType::Dataset => "dataset",
            ResourceType::DedicatedCpu => "dedicated-cpu",
            ResourceType::CappedCpu => "capped-cpu",
            ResourceType::CappedMemory => "capped-memory",
            ResourceType::CappedIo => "capped-io",
        }
    }

    /// The type named `name`, or `UnknownResource`.
    pub fn parse(name: &str) -> Result<ResourceType, ModelError> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| ModelError::UnknownResource(name.to_string()))
    }

    /// At most one instance per zone (`capped-cpu`, `capped-memory`, `dedicated-cpu`).
    pub fn single_instance(self) -> bool {
        matches!(
            self,
            ResourceType::CappedCpu | ResourceType::CappedMemory | ResourceType::DedicatedCpu
        )
    }

    /// The property that must be unique among instances (`fs dir`, `attr name`, ...).
    pub fn key_prop(self) -> Option<&'static str> {
        match self {
            ResourceType::Fs => Some("dir"),
            ResourceType::Anet => Some("linkname"),
            ResourceType::Device => Some("match"),
            ResourceType::CappedIo => Some("device"),
            ResourceType::Rctl | ResourceType::Attr | ResourceType::Dataset => Some("name"),
            _ => None,
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A property value as `info`/`export` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    /// A simple value; `None` when unset.
    Simple(Option<String>),
    /// A list of simple values (`options`).
    List(Vec<String>),
    /// A list of complex values, each already formatted as `(k=v,...)` (`rctl value`).
    Complex(Vec<String>),
}

/// One property of a resource, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    pub name: &'static str,
    pub value: PropValue,
}

fn simple_prop<T: ToString>(name: &'static str, v: &Option<T>) -> Prop {
    Prop {
        name,
        value: PropValue::Simple(v.as_ref().map(ToString::to_string)),
    }
}

/// The generic property interface of a resource.
pub trait ResourceProps {
    /// The type of this resource.
    fn kind(&self) -> ResourceType;
    /// `set prop=value`.
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError>;
    /// `clear prop`.
    fn clear(&mut self, prop: &str) -> Result<(), ModelError>;
    /// `add prop value` (list properties only).
    fn add(&mut self, prop: &str, _value: &Value) -> Result<(), ModelError> {
        Err(self.not_list(prop))
    }
    /// `remove prop value` (list properties only).
    fn remove(&mut self, prop: &str, _value: &Value) -> Result<(), ModelError> {
        Err(self.not_list(prop))
    }
    /// Every property with its value, in the illumos order.
    fn props(&self) -> Vec<Prop>;
    /// Properties that must be set before `end`.
    fn required(&self) -> &'static [&'static str];
    /// Checks that the resource may be ended (required properties set, values consistent).
    fn check_complete(&self) -> Result<(), ModelError> {
        for p in self.props() {
            if self.required().contains(&p.name) && p.value == PropValue::Simple(None) {
                return Err(ModelError::Incomplete {
                    resource: self.kind().name().to_string(),
                    prop: p.name.to_string(),
                });
            }
        }
        Ok(())
    }

    #[doc(hidden)]
    fn not_list(&self, prop: &str) -> ModelError {
        if self.props().iter().any(|p| p.name == prop) {
            ModelError::NotList {
                what: format!("{} {prop}", self.kind()),
                prop: prop.to_string(),
            }
        } else {
            self.unknown(prop)
        }
    }

    #[doc(hidden)]
    fn unknown(&self, prop: &str) -> ModelError {
        ModelError::UnknownProperty {
            resource: Some(self.kind().name().to_string()),
            prop: prop.to_string(),
        }
    }

    #[doc(hidden)]
    fn what(&self, prop: &str) -> String {
        format!("{} {prop}", self.kind())
    }
}

/// The single simple value of `value`.
pub(crate) fn simple<'v>(what: &str, value: &'v Value) -> Result<&'v str, ModelError> {
    match value {
        Value::Simple(s) => Ok(s),
        _ => Err(ModelError::NotSimple {
            what: what.to_string(),
        }),
    }
}

/// The simple items of a list (`[a,b]`), or of a lone simple value (`a` means `[a]`).
pub(crate) fn list_items<'v>(what: &str, value: &'v Value) -> Result<Vec<&'v str>, ModelError> {
    match value {
        Value::Simple(s) => Ok(vec![s]),
        Value::List(items) => items.iter().map(|i| simple(what, i)).collect(),
        Value::Complex(_) => Err(ModelError::NotSimple {
            what: what.to_string(),
        }),
    }
}

fn complex_items<'v>(
    what: &str,
    value: &'v Value,
) -> Result<Vec<&'v [(String, String)]>, ModelError> {
    let one = |v: &'v Value| match v {
        Value::Complex(pairs) => Ok(pairs.as_slice()),
        _ => Err(ModelError::NotComplex {
            what: what.to_string(),
        }),
    };
    match value {
        Value::List(items) => items.iter().map(one).collect(),
        v => Ok(vec![one(v)?]),
    }
}

fn text(what: &str, value: &Value) -> Result<String, ModelError> {
    let s = simple(what, value)?;
    validate_text(what, s)?;
    Ok(s.to_string())
}

fn abs_path(what: &str, value: &Value) -> Result<String, ModelError> {
    let s = simple(what, value)?;
    validate_abs_path(what, s)?;
    Ok(s.to_string())
}

fn checked(
    what: &str,
    value: &Value,
    check: impl Fn(&str, &str) -> Result<(), ModelError>,
) -> Result<String, ModelError> {
    let s = simple(what, value)?;
    check(what, s)?;
    Ok(s.to_string())
}

/// `fs`: a filesystem mounted in the zone (`type=lofs` is a bind mount).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fs {
    pub dir: Option<String>,
    pub special: Option<String>,
    pub raw: Option<String>,
    #[serde(rename = "type")]
    pub fs_type: Option<String>,
    pub options: Vec<String>,
}

/// Filesystem types `verify` refuses in an `fs` resource (as illumos does).
pub const FORBIDDEN_FS_TYPES: [&str; 4] = ["proc", "mntfs", "autofs", "nfs"];

impl ResourceProps for Fs {
    fn kind(&self) -> ResourceType {
        ResourceType::Fs
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "dir" => self.dir = Some(abs_path(&what, value)?),
            "special" => self.special = Some(text(&what, value)?),
            "raw" => self.raw = Some(abs_path(&what, value)?),
            "type" => self.fs_type = Some(checked(&what, value, check_fs_type)?),
            "options" => self.options = fs_options(&what, value)?,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "dir" => self.dir = None,
            "special" => self.special = None,
            "raw" => self.raw = None,
            "type" => self.fs_type = None,
            "options" => self.options.clear(),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn add(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        if prop != "options" {
            return Err(self.not_list(prop));
        }
        for o in fs_options(&self.what(prop), value)? {
            if !self.options.contains(&o) {
                self.options.push(o);
            }
        }
        Ok(())
    }
    fn remove(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        if prop != "options" {
            return Err(self.not_list(prop));
        }
        let what = self.what(prop);
        for o in fs_options(&what, value)? {
            let at = self.options.iter().position(|x| *x == o);
            let at = at.ok_or_else(|| ModelError::NotInList {
                what: what.clone(),
                value: o.clone(),
            })?;
            self.options.remove(at);
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("dir", &self.dir),
            simple_prop("special", &self.special),
            simple_prop("raw", &self.raw),
            simple_prop("type", &self.fs_type),
            Prop {
                name: "options",
                value: PropValue::List(self.options.clone()),
            },
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["dir", "special", "type"]
    }
}

fn check_fs_type(what: &str, t: &str) -> Result<(), ModelError> {
    let ok = !t.is_empty()
        && !FORBIDDEN_FS_TYPES.contains(&t)
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            t,
            "a filesystem type like lofs or tmpfs (proc, mntfs, autofs and nfs are not allowed)",
        ))
    }
}

fn fs_options(what: &str, value: &Value) -> Result<Vec<String>, ModelError> {
    list_items(what, value)?
        .into_iter()
        .map(|o| {
            validate_text(what, o)?;
            Ok(o.to_string())
        })
        .collect()
}

/// `net`: a network interface (illumos style: `physical` plus addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Net {
    pub address: Option<String>,
    pub allowed_address: Option<String>,
    pub physical: Option<String>,
    pub defrouter: Option<String>,
    pub global_nic: Option<String>,
    pub mac_addr: Option<String>,
    pub vlan_id: Option<u16>,
}

impl ResourceProps for Net {
    fn kind(&self) -> ResourceType {
        ResourceType::Net
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "address" => self.address = Some(checked(&what, value, validate_ip_prefix)?),
            "allowed-address" => {
                self.allowed_address = Some(checked(&what, value, validate_ip_prefix)?)
            }
            "physical" => self.physical = Some(checked(&what, value, validate_link_name)?),
            "defrouter" => self.defrouter = Some(checked(&what, value, validate_ip)?),
            "global-nic" => self.global_nic = Some(checked(&what, value, validate_link_name)?),
            "mac-addr" => {
                self.mac_addr = Some(checked(&what, value, |w, s| {
                    validate_mac(w, s, &["random"])
                })?)
            }
            "vlan-id" => self.vlan_id = Some(vlan(&what, value)?),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "address" => self.address = None,
            "allowed-address" => self.allowed_address = None,
            "physical" => self.physical = None,
            "defrouter" => self.defrouter = None,
            "global-nic" => self.global_nic = None,
            "mac-addr" => self.mac_addr = None,
            "vlan-id" => self.vlan_id = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("address", &self.address),
            simple_prop("allowed-address", &self.allowed_address),
            simple_prop("physical", &self.physical),
            simple_prop("defrouter", &self.defrouter),
            simple_prop("global-nic", &self.global_nic),
            simple_prop("mac-addr", &self.mac_addr),
            simple_prop("vlan-id", &self.vlan_id),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["physical"]
    }
}

fn vlan(what: &str, value: &Value) -> Result<u16, ModelError> {
    let v = parse_uint(what, simple(what, value)?, 0, 4094)?;
    Ok(u16::try_from(v).unwrap_or(0))
}

/// `anet`: an automatic VNIC created over `lower-link` when the zone boots (Solaris 11 style).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Anet {
    pub linkname: Option<String>,
    /// `None` means `auto` (the host picks the link).
    pub lower_link: Option<String>,
    pub allowed_address: Option<String>,
    pub defrouter: Option<String>,
    pub mac_address: Option<String>,
    pub vlan_id: Option<u16>,
    pub mtu: Option<u32>,
    /// Bandwidth cap in each direction (dladm `maxbw`).
    pub maxbw: Option<Bandwidth>,
    /// `low`, `medium` or `high` (dladm `priority`).
    pub priority: Option<String>,
    /// Comma list of `mac-nospoof`, `ip-nospoof`, `dhcp-nospoof`, `restricted` (dladm
    /// `protection`); unset means none.
    pub link_protection: Option<String>,
}

/// dladm link priorities.
pub const LINK_PRIORITIES: [&str; 3] = ["low", "medium", "high"];
/// dladm link protection types.
pub const LINK_PROTECTIONS: [&str; 4] = ["mac-nospoof", "ip-nospoof", "dhcp-nospoof", "restricted"];

/// Checks a `link-protection` value: a comma list of [`LINK_PROTECTIONS`] (or `none`).
pub fn validate_link_protection(what: &str, text: &str) -> Result<(), ModelError> {
    if text == "none" {
        return Ok(());
    }
    for item in text.split(',') {
        if !LINK_PROTECTIONS.contains(&item) {
            return Err(invalid(
                what,
                item,
                "a comma list of mac-nospoof, ip-nospoof, dhcp-nospoof, restricted (or none)",
            ));
        }
    }
    Ok(())
}

/// Checks a link `priority` value.
pub fn validate_priority(what: &str, text: &str) -> Result<(), ModelError> {
    if LINK_PRIORITIES.contains(&text) {
        Ok(())
    } else {
        Err(invalid(what, text, "low, medium or high"))
    }
}

impl ResourceProps for Anet {
    fn kind(&self) -> ResourceType {
        ResourceType::Anet
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "linkname" => self.linkname = Some(checked(&what, value, validate_link_name)?),
            "lower-link" => self.lower_link = Some(checked(&what, value, validate_link_name)?),
            "allowed-address" => {
                self.allowed_address = Some(checked(&what, value, validate_ip_prefix)?)
            }
            "defrouter" => self.defrouter = Some(checked(&what, value, validate_ip)?),
            "mac-address" => {
                self.mac_address = Some(checked(&what, value, |w, s| {
                    validate_mac(w, s, &["random", "auto", "factory"])
                })?)
            }
            "vlan-id" => self.vlan_id = Some(vlan(&what, value)?),
            "mtu" => {
                let v = parse_uint(&what, simple(&what, value)?, 68, 65535)?;
                self.mtu = Some(u32::try_from(v).unwrap_or(1500));
            }
            "maxbw" => self.maxbw = Some(Bandwidth::parse(&what, simple(&what, value)?)?),
            "priority" => self.priority = Some(checked(&what, value, validate_priority)?),
            "link-protection" => {
                self.link_protection = Some(checked(&what, value, validate_link_protection)?)
            }
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "linkname" => self.linkname = None,
            "lower-link" => self.lower_link = None,
            "allowed-address" => self.allowed_address = None,
            "defrouter" => self.defrouter = None,
            "mac-address" => self.mac_address = None,
            "vlan-id" => self.vlan_id = None,
            "mtu" => self.mtu = None,
            "maxbw" => self.maxbw = None,
            "priority" => self.priority = None,
            "link-protection" => self.link_protection = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("linkname", &self.linkname),
            simple_prop("lower-link", &self.lower_link),
            simple_prop("allowed-address", &self.allowed_address),
            simple_prop("defrouter", &self.defrouter),
            simple_prop("mac-address", &self.mac_address),
            simple_prop("vlan-id", &self.vlan_id),
            simple_prop("mtu", &self.mtu),
            simple_prop("maxbw", &self.maxbw),
            simple_prop("priority", &self.priority),
            simple_prop("link-protection", &self.link_protection),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["linkname"]
    }
}

/// The type of an `attr` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    Int,
    Uint,
    Boolean,
    String,
}

impl AttrType {
    fn parse(what: &str, s: &str) -> Result<AttrType, ModelError> {
        match s {
            "int" => Ok(AttrType::Int),
            "uint" => Ok(AttrType::Uint),
            "boolean" => Ok(AttrType::Boolean),
            "string" => Ok(AttrType::String),
            _ => Err(invalid(what, s, "int, uint, boolean or string")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            AttrType::Int => "int",
            AttrType::Uint => "uint",
            AttrType::Boolean => "boolean",
            AttrType::String => "string",
        }
    }

    fn check(self, value: &str) -> Result<(), ModelError> {
        let ok = match self {
            AttrType::Int => value.parse::<i64>().is_ok(),
            AttrType::Uint => value.parse::<u64>().is_ok(),
            AttrType::Boolean => value == "true" || value == "false",
            AttrType::String => true,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(
                "attr value",
                value,
                &format!("a value of type {}", self.name()),
            ))
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `attr`: a generic named, typed attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attr {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub attr_type: Option<AttrType>,
    pub value: Option<String>,
}

impl ResourceProps for Attr {
    fn kind(&self) -> ResourceType {
        ResourceType::Attr
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "name" => {
                let n = text(&what, value)?;
                if n.starts_with("zone") {
                    return Err(invalid(
                        &what,
                        &n,
                        "a name not beginning with \"zone\" (reserved)",
                    ));
                }
                self.name = Some(n);
            }
            "type" => self.attr_type = Some(AttrType::parse(&what, simple(&what, value)?)?),
            "value" => self.value = Some(simple(&what, value)?.to_string()),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "name" => self.name = None,
            "type" => self.attr_type = None,
            "value" => self.value = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("name", &self.name),
            simple_prop("type", &self.attr_type),
            simple_prop("value", &self.value),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["name", "type", "value"]
    }
    fn check_complete(&self) -> Result<(), ModelError> {
        for p in ["name", "type", "value"] {
            let missing = match p {
                "name" => self.name.is_none(),
                "type" => self.attr_type.is_none(),
                _ => self.value.is_none(),
            };
            if missing {
                return Err(ModelError::Incomplete {
                    resource: "attr".into(),
                    prop: p.into(),
                });
            }
        }
        match (&self.attr_type, &self.value) {
            (Some(t), Some(v)) => t.check(v),
            _ => Ok(()),
        }
    }
}

/// `capped-cpu`: a CPU cap (`ncpus=1.5` is 150% of one CPU).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CappedCpu {
    pub ncpus: Option<Ncpus>,
}

impl ResourceProps for CappedCpu {
    fn kind(&self) -> ResourceType {
        ResourceType::CappedCpu
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "ncpus" => self.ncpus = Some(Ncpus::parse(&what, simple(&what, value)?)?),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "ncpus" => self.ncpus = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![simple_prop("ncpus", &self.ncpus)]
    }
    fn required(&self) -> &'static [&'static str] {
        &["ncpus"]
    }
}

/// `capped-memory`: memory caps; at least one of the three is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CappedMemory {
    pub physical: Option<Size>,
    pub swap: Option<Size>,
    pub locked: Option<Size>,
}

impl ResourceProps for CappedMemory {
    fn kind(&self) -> ResourceType {
        ResourceType::CappedMemory
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        let size = || Size::parse(&what, simple(&what, value)?);
        match prop {
            "physical" => self.physical = Some(size()?),
            "swap" => self.swap = Some(size()?),
            "locked" => self.locked = Some(size()?),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "physical" => self.physical = None,
            "swap" => self.swap = None,
            "locked" => self.locked = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("physical", &self.physical),
            simple_prop("swap", &self.swap),
            simple_prop("locked", &self.locked),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &[]
    }
    fn check_complete(&self) -> Result<(), ModelError> {
        if self.physical.is_none() && self.swap.is_none() && self.locked.is_none() {
            return Err(ModelError::NoProperty {
                resource: "capped-memory".into(),
            });
        }
        Ok(())
    }
}

/// `dedicated-cpu`: CPUs reserved for the zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DedicatedCpu {
    pub ncpus: Option<CpuRange>,
    pub importance: Option<u32>,
}

impl ResourceProps for DedicatedCpu {
    fn kind(&self) -> ResourceType {
        ResourceType::DedicatedCpu
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "ncpus" => self.ncpus = Some(CpuRange::parse(&what, simple(&what, value)?)?),
            "importance" => {
                let v = parse_uint(&what, simple(&what, value)?, 0, u64::from(u32::MAX))?;
                self.importance = Some(u32::try_from(v).unwrap_or(u32::MAX));
            }
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "ncpus" => self.ncpus = None,
            "importance" => self.importance = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("ncpus", &self.ncpus),
            simple_prop("importance", &self.importance),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["ncpus"]
    }
}

/// The privilege level of an rctl value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RctlPriv {
    Privileged,
    System,
}

/// What happens when an rctl value is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RctlAction {
    None,
    Deny,
}

/// One rctl value: `(priv=privileged,limit=300,action=deny)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RctlValue {
    #[serde(rename = "priv")]
    pub privilege: RctlPriv,
    pub limit: u64,
    pub action: RctlAction,
}

impl RctlValue {
    const EXPECTED: &'static str = "(priv=privileged,limit=N,action=none|deny)";

    /// From the `(k=v,...)` pairs the parser produced.
    pub fn from_pairs(what: &str, pairs: &[(String, String)]) -> Result<RctlValue, ModelError> {
        let shown = format!(
            "({})",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let bad = || invalid(what, &shown, Self::EXPECTED);
        let get = |key: &str| {
            let mut found = pairs.iter().filter(|(k, _)| k == key);
            match (found.next(), found.next()) {
                (Some((_, v)), None) => Ok(v.as_str()),
                _ => Err(bad()),
            }
        };
        if pairs.len() != 3 {
            return Err(bad());
        }
        let privilege = match get("priv")? {
            "privileged" => RctlPriv::Privileged,
            "system" => RctlPriv::System,
            _ => return Err(bad()),
        };
        let limit = get("limit")?.parse::<u64>().map_err(|_| bad())?;
        let action = match get("action")? {
            "none" => RctlAction::None,
            "deny" => RctlAction::Deny,
            _ => return Err(bad()),
        };
        Ok(RctlValue {
            privilege,
            limit,
            action,
        })
    }
}

impl fmt::Display for RctlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.privilege {
            RctlPriv::Privileged => "privileged",
            RctlPriv::System => "system",
        };
        let a = match self.action {
            RctlAction::None => "none",
            RctlAction::Deny => "deny",
        };
        write!(f, "(priv={p},limit={},action={a})", self.limit)
    }
}

/// The zone-wide rctls illumos knows.
pub const ZONE_RCTLS: [&str; 13] = [
    "zone.cpu-shares",
    "zone.cpu-cap",
    "zone.max-lwps",
    "zone.max-processes",
    "zone.max-locked-memory",
    "zone.max-swap",
    "zone.max-physical-memory",
    "zone.max-shm-memory",
    "zone.max-shm-ids",
    "zone.max-sem-ids",
    "zone.max-msg-ids",
    "zone.max-lofi",
    "zone.zfs-io-priority",
];

/// `rctl`: a zone-wide resource control with its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rctl {
    pub name: Option<String>,
    #[serde(rename = "value")]
    pub values: Vec<RctlValue>,
}

impl Rctl {
    /// An rctl with one privileged value.
    pub fn single(name: &str, limit: u64, action: RctlAction) -> Rctl {
        Rctl {
            name: Some(name.to_string()),
            values: vec![RctlValue {
                privilege: RctlPriv::Privileged,
                limit,
                action,
            }],
        }
    }

    fn parse_values(&self, value: &Value) -> Result<Vec<RctlValue>, ModelError> {
        let what = self.what("value");
        complex_items(&what, value)?
            .into_iter()
            .map(|pairs| RctlValue::from_pairs(&what, pairs))
            .collect()
    }
}

impl ResourceProps for Rctl {
    fn kind(&self) -> ResourceType {
        ResourceType::Rctl
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "name" => {
                let n = simple(&what, value)?;
                if !ZONE_RCTLS.contains(&n) {
                    return Err(invalid(
                        &what,
                        n,
                        "a zone rctl such as zone.cpu-shares or zone.max-lwps",
                    ));
                }
                self.name = Some(n.to_string());
            }
            "value" => self.values = self.parse_values(value)?,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "name" => self.name = None,
            "value" => self.values.clear(),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn add(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        if prop != "value" {
            return Err(self.not_list(prop));
        }
        for v in self.parse_values(value)? {
            if !self.values.contains(&v) {
                self.values.push(v);
            }
        }
        Ok(())
    }
    fn remove(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        if prop != "value" {
            return Err(self.not_list(prop));
        }
        for v in self.parse_values(value)? {
            let at = self.values.iter().position(|x| *x == v);
            let at = at.ok_or_else(|| ModelError::NotInList {
                what: self.what(prop),
                value: v.to_string(),
            })?;
            self.values.remove(at);
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("name", &self.name),
            Prop {
                name: "value",
                value: PropValue::Complex(self.values.iter().map(ToString::to_string).collect()),
            },
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["name"]
    }
    fn check_complete(&self) -> Result<(), ModelError> {
        if self.name.is_none() {
            return Err(ModelError::Incomplete {
                resource: "rctl".into(),
                prop: "name".into(),
            });
        }
        if self.values.is_empty() {
            return Err(ModelError::Incomplete {
                resource: "rctl".into(),
                prop: "value".into(),
            });
        }
        Ok(())
    }
}

/// `device`: a device (path or fnmatch pattern under /dev) made visible in the zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    #[serde(rename = "match")]
    pub match_: Option<String>,
}

impl ResourceProps for Device {
    fn kind(&self) -> ResourceType {
        ResourceType::Device
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "match" => {
                let m = simple(&what, value)?;
                let ok = m.starts_with("/dev/") && m.len() > 5 && !m.split('/').any(|c| c == "..");
                if !ok {
                    return Err(invalid(
                        &what,
                        m,
                        "a /dev path or pattern like /dev/net/tun",
                    ));
                }
                self.match_ = Some(m.to_string());
            }
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "match" => self.match_ = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![simple_prop("match", &self.match_)]
    }
    fn required(&self) -> &'static [&'static str] {
        &["match"]
    }
}

/// `dataset`: a ZFS filesystem handed to the zone (OpenZFS >= 2.2 `zfs zone`): the zone's
/// root manages it and its children (create, snapshot, set properties) and sees no other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dataset {
    /// `POOL/DS`.
    pub name: Option<String>,
}

/// A ZFS dataset name below a pool: `POOL/DS[/...]`, components of letters, digits, `_-.:`.
fn validate_dataset_name(what: &str, text: &str) -> Result<(), ModelError> {
    let ok = text.contains('/')
        && text.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_-.:".contains(ch))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            text,
            "a ZFS filesystem below a pool like tank/zone-data",
        ))
    }
}

impl ResourceProps for Dataset {
    fn kind(&self) -> ResourceType {
        ResourceType::Dataset
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        match prop {
            "name" => self.name = Some(checked(&what, value, validate_dataset_name)?),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "name" => self.name = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![simple_prop("name", &self.name)]
    }
    fn required(&self) -> &'static [&'static str] {
        &["name"]
    }
}

/// `capped-io`: block I/O throttles of the zone on one host block device (bytes and I/O
/// operations per second, each direction); at least one of the four is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CappedIo {
    /// A block device path under /dev (`/dev/vdb`) or its number (`254:16`).
    pub device: Option<String>,
    pub rbps: Option<Size>,
    pub wbps: Option<Size>,
    pub riops: Option<u64>,
    pub wiops: Option<u64>,
}

/// Checks a `capped-io device` value: a /dev path or `MAJ:MIN` (whether it names a block
/// device is checked against the host by `verify`, see `spec::check_host`).
pub fn validate_io_device(what: &str, text: &str) -> Result<(), ModelError> {
    let numbers = text
        .split_once(':')
        .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
    let path = text.starts_with("/dev/") && text.len() > 5 && !text.split('/').any(|c| c == "..");
    if numbers || path {
        Ok(())
    } else {
        Err(invalid(
            what,
            text,
            "a block device like /dev/vdb or its major:minor like 254:16",
        ))
    }
}

impl ResourceProps for CappedIo {
    fn kind(&self) -> ResourceType {
        ResourceType::CappedIo
    }
    fn set(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        let what = self.what(prop);
        let size = || Size::parse(&what, simple(&what, value)?);
        let iops = || parse_uint(&what, simple(&what, value)?, 1, u64::from(u32::MAX));
        match prop {
            "device" => self.device = Some(checked(&what, value, validate_io_device)?),
            "rbps" => self.rbps = Some(size()?),
            "wbps" => self.wbps = Some(size()?),
            "riops" => self.riops = Some(iops()?),
            "wiops" => self.wiops = Some(iops()?),
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn clear(&mut self, prop: &str) -> Result<(), ModelError> {
        match prop {
            "device" => self.device = None,
            "rbps" => self.rbps = None,
            "wbps" => self.wbps = None,
            "riops" => self.riops = None,
            "wiops" => self.wiops = None,
            _ => return Err(self.unknown(prop)),
        }
        Ok(())
    }
    fn props(&self) -> Vec<Prop> {
        vec![
            simple_prop("device", &self.device),
            simple_prop("rbps", &self.rbps),
            simple_prop("wbps", &self.wbps),
            simple_prop("riops", &self.riops),
            simple_prop("wiops", &self.wiops),
        ]
    }
    fn required(&self) -> &'static [&'static str] {
        &["device"]
    }
    fn check_complete(&self) -> Result<(), ModelError> {
        if self.device.is_none() {
            return Err(ModelError::Incomplete {
                resource: "capped-io".into(),
                prop: "device".into(),
            });
        }
        let none = self.rbps.is_none()
            && self.wbps.is_none()
            && self.riops.is_none()
            && self.wiops.is_none();
        if none {
            return Err(ModelError::NoProperty {
                resource: "capped-io".into(),
            });
        }
        Ok(())
    }
}

/// Any resource, as the command language handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Fs(Fs),
    Net(Net),
    Anet(Anet),
    Device(Device),
    Rctl(Rctl),
    Attr(Attr),
    Dataset(Dataset),
    DedicatedCpu(DedicatedCpu),
    CappedCpu(CappedCpu),
    CappedMemory(CappedMemory),
    CappedIo(CappedIo),
}

impl Resource {
    /// An empty resource of type `kind`.
    pub fn new(kind: ResourceType) -> Resource {
        match kind {
            ResourceType::Fs => Resource::Fs(Fs::default()),
            ResourceType::Net => Resource::Net(Net::default()),
            ResourceType::Anet => Resource::Anet(Anet::default()),
            ResourceType::Device => Resource::Device(Device::default()),
            ResourceType::Rctl => Resource::Rctl(Rctl::default()),
            ResourceType::Attr => Resource::Attr(Attr::default()),
            ResourceType::Dataset => Resource::Dataset(Dataset::default()),
            ResourceType::DedicatedCpu => Resource::DedicatedCpu(DedicatedCpu::default()),
            ResourceType::CappedCpu => Resource::CappedCpu(CappedCpu::default()),
            ResourceType::CappedMemory => Resource::CappedMemory(CappedMemory::default()),
            ResourceType::CappedIo => Resource::CappedIo(CappedIo::default()),
        }
    }

    /// The generic property interface.
    pub fn props_ref(&self) -> &dyn ResourceProps {
        match self {
            Resource::Fs(r) => r,
            Resource::Net(r) => r,
            Resource::Anet(r) => r,
            Resource::Device(r) => r,
            Resource::Rctl(r) => r,
            Resource::Attr(r) => r,
            Resource::Dataset(r) => r,
            Resource::DedicatedCpu(r) => r,
            Resource::CappedCpu(r) => r,
            Resource::CappedMemory(r) => r,
            Resource::CappedIo(r) => r,
        }
    }

    /// The generic property interface, mutable.
    pub fn props_mut(&mut self) -> &mut dyn ResourceProps {
        match self {
            Resource::Fs(r) => r,
            Resource::Net(r) => r,
            Resource::Anet(r) => r,
            Resource::Device(r) => r,
            Resource::Rctl(r) => r,
            Resource::Attr(r) => r,
            Resource::Dataset(r) => r,
            Resource::DedicatedCpu(r) => r,
            Resource::CappedCpu(r) => r,
            Resource::CappedMemory(r) => r,
            Resource::CappedIo(r) => r,
        }
    }

    /// The type of this resource.
    pub fn kind(&self) -> ResourceType {
        self.props_ref().kind()
    }

    /// The listed value of property `prop`, if the resource has it.
    pub fn prop(&self, prop: &str) -> Option<PropValue> {
        self.props_ref()
            .props()
            .into_iter()
            .find(|p| p.name == prop)
            .map(|p| p.value)
    }

    /// True when every `prop=value` filter matches (values compared after normalisation, so
    /// `physical=1024m` matches a stored `1G`). An invalid filter value is an error.
    pub fn matches(&self, filters: &[(String, Value)]) -> Result<bool, ModelError> {
        for (prop, value) in filters {
            let mut probe = Resource::new(self.kind());
            probe.props_mut().set(prop, value)?;
            if probe.prop(prop) != self.prop(prop) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Simple(v.to_string())
    }

    fn pairs(p: &[(&str, &str)]) -> Value {
        Value::Complex(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn resource_types_by_name() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::parse(t.name()), Ok(t));
        }
        assert_eq!(
            ResourceType::parse("admin").unwrap_err().to_string(),
            "'admin' is not a valid resource type"
        );
    }

    #[test]
    fn fs_properties_and_options() {
        let mut fs = Fs::default();
        fs.set("dir", &s("/data")).unwrap();
        fs.set("special", &s("/export/data")).unwrap();
        assert_eq!(
            fs.check_complete().unwrap_err().to_string(),
            "fs resource incomplete: type not specified"
        );
        fs.set("type", &s("lofs")).unwrap();
        fs.add("options", &Value::List(vec![s("ro"), s("nodevices")]))
            .unwrap();
        fs.add("options", &s("ro")).unwrap();
        assert_eq!(fs.options, ["ro", "nodevices"]);
        fs.remove("options", &s("ro")).unwrap();
        assert_eq!(fs.options, ["nodevices"]);
        assert_eq!(
            fs.remove("options", &s("rw")).unwrap_err().to_string(),
            "fs options: \"rw\" is not in the list"
        );
        assert!(fs.check_complete().is_ok());
        assert_eq!(
            fs.set("dir", &s("data")).unwrap_err().to_string(),
            "fs dir \"data\": expected an absolute path"
        );
        assert_eq!(
            fs.set("type", &s("proc")).unwrap_err().to_string(),
            "fs type \"proc\": expected a filesystem type like lofs or tmpfs (proc, mntfs, autofs and nfs are not allowed)"
        );
        assert_eq!(
            fs.set("size", &s("1")).unwrap_err().to_string(),
            "'size' is not a valid fs property"
        );
        assert_eq!(
            fs.add("dir", &s("/x")).unwrap_err().to_string(),
            "fs dir is not a list property; use 'set dir=VALUE'"
        );
        assert_eq!(
            fs.set("dir", &Value::List(vec![s("/a")]))
                .unwrap_err()
                .to_string(),
            "fs dir: expected a single value, not a list or (name=value) pairs"
        );
        fs.clear("options").unwrap();
        assert!(fs.options.is_empty());
    }

    #[test]
    fn net_and_anet_validate_addresses() {
        let mut n = Net::default();
        n.set("physical", &s("vnic0")).unwrap();
        n.set("allowed-address", &s("10.0.0.5/24")).unwrap();
        n.set("defrouter", &s("10.0.0.1")).unwrap();
        n.set("vlan-id", &s("12")).unwrap();
        assert_eq!(n.vlan_id, Some(12));
        assert_eq!(
            n.set("vlan-id", &s("5000")).unwrap_err().to_string(),
            "net vlan-id \"5000\": expected a whole number from 0 to 4094"
        );
        assert_eq!(
            n.set("address", &s("10.0.0.300")).unwrap_err().to_string(),
            "net address \"10.0.0.300\": expected an IP address like 10.0.0.5/24"
        );
        assert!(n.check_complete().is_ok());
        assert_eq!(
            Net::default().check_complete().unwrap_err().to_string(),
            "net resource incomplete: physical not specified"
        );
        let mut a = Anet::default();
        a.set("mac-address", &s("factory")).unwrap();
        a.set("mtu", &s("9000")).unwrap();
        assert!(a.check_complete().is_err());
        a.set("linkname", &s("net0")).unwrap();
        assert!(a.check_complete().is_ok());
    }

    #[test]
    fn attr_value_checked_against_type() {
        let mut a = Attr::default();
        a.set("name", &s("comment")).unwrap();
        a.set("type", &s("int")).unwrap();
        a.set("value", &s("abc")).unwrap();
        assert_eq!(
            a.check_complete().unwrap_err().to_string(),
            "attr value \"abc\": expected a value of type int"
        );
        a.set("value", &s("-3")).unwrap();
        assert!(a.check_complete().is_ok());
        assert!(a.set("type", &s("float")).is_err());
        assert!(a.set("name", &s("zonefoo")).is_err());
    }

    #[test]
    fn caps() {
        let mut m = CappedMemory::default();
        assert_eq!(
            m.check_complete().unwrap_err().to_string(),
            "capped-memory resource incomplete: no property was specified; there must be at least one"
        );
        assert_eq!(
            m.set("physical", &s("12x")).unwrap_err().to_string(),
            "capped-memory physical \"12x\": expected a size like 512m or 2g"
        );
        m.set("physical", &s("512m")).unwrap();
        assert!(m.check_complete().is_ok());
        let mut c = CappedCpu::default();
        c.set("ncpus", &s("1.5")).unwrap();
        assert_eq!(c.ncpus.unwrap().hundredths(), 150);
        let mut d = DedicatedCpu::default();
        d.set("ncpus", &s("1-2")).unwrap();
        d.set("importance", &s("10")).unwrap();
        assert!(d.check_complete().is_ok());
    }

    #[test]
    fn rctl_values() {
        let mut r = Rctl::default();
        assert!(r.set("name", &s("zone.bogus")).is_err());
        r.set("name", &s("zone.max-lwps")).unwrap();
        assert_eq!(
            r.check_complete().unwrap_err().to_string(),
            "rctl resource incomplete: value not specified"
        );
        let v = pairs(&[("priv", "privileged"), ("limit", "300"), ("action", "deny")]);
        r.add("value", &v).unwrap();
        assert_eq!(
            r.values[0].to_string(),
            "(priv=privileged,limit=300,action=deny)"
        );
        assert!(r.check_complete().is_ok());
        let bad = pairs(&[("priv", "basic"), ("limit", "3"), ("action", "deny")]);
        assert_eq!(
            r.add("value", &bad).unwrap_err().to_string(),
            "rctl value \"(priv=basic,limit=3,action=deny)\": expected (priv=privileged,limit=N,action=none|deny)"
        );
        assert!(r
            .add("value", &pairs(&[("priv", "privileged"), ("limit", "3")]))
            .is_err());
        assert_eq!(
            r.add("value", &s("300")).unwrap_err().to_string(),
            "rctl value: expected (name=value,...) values"
        );
        r.remove("value", &v).unwrap();
        assert!(r.values.is_empty());
    }

    #[test]
    fn device_match() {
        let mut d = Device::default();
        d.set("match", &s("/dev/net/tun")).unwrap();
        assert!(d.set("match", &s("/etc/passwd")).is_err());
        assert!(d.check_complete().is_ok());
    }

    #[test]
    fn capped_io_needs_a_device_and_a_rate() {
        let mut c = CappedIo::default();
        assert_eq!(
            c.set("device", &s("sda")).unwrap_err().to_string(),
            "capped-io device \"sda\": expected a block device like /dev/vdb or its major:minor like 254:16"
        );
        c.set("device", &s("254:16")).unwrap();
        assert_eq!(
            c.check_complete().unwrap_err().to_string(),
            "capped-io resource incomplete: no property was specified; there must be at least one"
        );
        assert_eq!(
            c.set("rbps", &s("12x")).unwrap_err().to_string(),
            "capped-io rbps \"12x\": expected a size like 512m or 2g"
        );
        assert!(c.set("riops", &s("0")).is_err());
        c.set("device", &s("/dev/vdb")).unwrap();
        c.set("wbps", &s("10m")).unwrap();
        c.set("riops", &s("100")).unwrap();
        assert!(c.check_complete().is_ok());
        assert_eq!(c.wbps.unwrap().bytes(), 10 << 20);
        c.clear("device").unwrap();
        assert!(c.check_complete().is_err());
    }

    #[test]
    fn matching_normalises_values() {
        let mut m = CappedMemory::default();
        m.set("physical", &s("1g")).unwrap();
        let r = Resource::CappedMemory(m);
        assert!(r.matches(&[("physical".into(), s("1024m"))]).unwrap());
        assert!(!r.matches(&[("physical".into(), s("2g"))]).unwrap());
        assert!(r.matches(&[("physical".into(), s("2x"))]).is_err());
    }
}
