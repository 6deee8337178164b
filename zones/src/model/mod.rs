//! The zone configuration: global properties and resources, with the illumos names, typed
//! values, validation and a JSON form (the store's `<zone>.json`).

mod resources;
pub mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use resources::{list_items, simple};
pub use resources::{
    Anet, Attr, AttrType, CappedCpu, CappedIo, CappedMemory, Dataset, DedicatedCpu, Device, Fs,
    Net, Prop, PropValue, Rctl, RctlAction, RctlPriv, RctlValue, Resource, ResourceProps,
    ResourceType, FORBIDDEN_FS_TYPES, ZONE_RCTLS,
};
use values::{
    invalid, parse_bool, parse_uint, validate_abs_path, validate_hostname, validate_text, Hostid,
};
pub use values::{new_uuid, validate_zone_name, Bandwidth, CpuRange, Ncpus, Size};

/// What is wrong with a configuration, a property or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{what} \"{value}\": expected {expected}")]
    InvalidValue {
        what: String,
        value: String,
        expected: String,
    },
    #[error("zonename \"{value}\": the name is reserved ({why})")]
    ReservedName { value: String, why: String },
    #[error("'{0}' is not a valid resource type")]
    UnknownResource(String),
    #[error("'{prop}' is not a valid {} property", .resource.as_deref().unwrap_or("global"))]
    UnknownProperty {
        resource: Option<String>,
        prop: String,
    },
    #[error("{what}: expected a single value, not a list or (name=value) pairs")]
    NotSimple { what: String },
    #[error("{what}: expected (name=value,...) values")]
    NotComplex { what: String },
    #[error("{what} is not a list property; use 'set {prop}=VALUE'")]
    NotList { what: String, prop: String },
    #[error("{what}: \"{value}\" is not in the list")]
    NotInList { what: String, value: String },
    #[error("{resource} resource incomplete: {prop} not specified")]
    Incomplete { resource: String, prop: String },
    #[error(
        "{resource} resource incomplete: no property was specified; there must be at least one"
    )]
    NoProperty { resource: String },
    #[error("A {resource} resource with the {prop} '{value}' already exists.")]
    Duplicate {
        resource: String,
        prop: String,
        value: String,
    },
    #[error("The {0} resource already exists.")]
    AlreadyExists(String),
    #[error("{0} cannot be cleared")]
    CannotClear(String),
    #[error("{0} not specified")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Privileges(#[from] crate::privileges::PrivError),
}

/// A value as the command language wrote it: `foo`, `[a,b]` or `(k=v,k=v)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    /// Items are `Simple` or `Complex`, never nested lists.
    List(Vec<Value>),
    Complex(Vec<(String, String)>),
}

impl Value {
    /// A simple value.
    pub fn simple(s: &str) -> Value {
        Value::Simple(s.to_string())
    }
}

/// The brand: what runs inside the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Brand {
    /// A system zone: the image's `/sbin/init` is PID 1.
    #[default]
    Linux,
    /// An application zone: the image's entrypoint/cmd, like an OCI container.
    App,
    /// A hardware virtual machine: qemu-system is the zone's workload (see [`crate::kvm`]).
    Kvm,
}

impl Brand {
    /// Parses `linux`, `app` or `kvm`.
    pub fn parse(text: &str) -> Result<Brand, ModelError> {
        match text {
            "linux" => Ok(Brand::Linux),
            "app" => Ok(Brand::App),
            "kvm" => Ok(Brand::Kvm),
            _ => Err(invalid("brand", text, "linux, app or kvm")),
        }
    }
}

impl fmt::Display for Brand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Brand::Linux => "linux",
            Brand::App => "app",
            Brand::Kvm => "kvm",
        })
    }
}

/// Whether the zone has its own IP stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpType {
    /// Its own network namespace.
    #[default]
    Exclusive,
    /// The host's network stack.
    Shared,
}

impl IpType {
    /// Parses `exclusive` or `shared`.
    pub fn parse(text: &str) -> Result<IpType, ModelError> {
        match text {
            "exclusive" => Ok(IpType::Exclusive),
            "shared" => Ok(IpType::Shared),
            _ => Err(invalid("ip-type", text, "exclusive or shared")),
        }
    }

    /// The form `zoneadm list -p` prints: `excl` or `shared`.
    pub fn short(self) -> &'static str {
        match self {
            IpType::Exclusive => "excl",
            IpType::Shared => "shared",
        }
    }
}

impl fmt::Display for IpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpType::Exclusive => "exclusive",
            IpType::Shared => "shared",
        })
    }
}

/// A global property that is an alias of a zone rctl (illumos: `set cpu-shares=10` is
/// `zone.cpu-shares` with `(priv=privileged,limit=10,action=none)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RctlAlias {
    pub prop: &'static str,
    pub rctl: &'static str,
    /// The limit is a size (`1g`) rather than a count.
    pub size: bool,
    pub action: RctlAction,
    pub max: u64,
}

/// The rctl aliases, in `info` order.
pub const RCTL_ALIASES: [RctlAlias; 7] = [
    alias(
        "cpu-shares",
        "zone.cpu-shares",
        false,
        RctlAction::None,
        65535,
    ),
    alias(
        "max-lwps",
        "zone.max-lwps",
        false,
        RctlAction::Deny,
        u64::MAX,
    ),
    alias(
        "max-processes",
        "zone.max-processes",
        false,
        RctlAction::Deny,
        u64::MAX,
    ),
    alias(
        "max-msg-ids",
        "zone.max-msg-ids",
        false,
        RctlAction::Deny,
        u64::MAX,
    ),
    alias(
        "max-sem-ids",
        "zone.max-sem-ids",
        false,
        RctlAction::Deny,
        u64::MAX,
    ),
    alias(
        "max-shm-ids",
        "zone.max-shm-ids",
        false,
        RctlAction::Deny,
        u64::MAX,
    ),
    alias(
        "max-shm-memory",
        "zone.max-shm-memory",
        true,
        RctlAction::Deny,
        u64::MAX,
    ),
];

const fn alias(
    prop: &'static str,
    rctl: &'static str,
    size: bool,
    action: RctlAction,
    max: u64,
) -> RctlAlias {
    RctlAlias {
        prop,
        rctl,
        size,
        action,
        max,
    }
}

/// The global properties, in `info` order (rctl aliases follow, see [`RCTL_ALIASES`]).
pub const GLOBAL_PROPS: [&str; 16] = [
    "zonename",
    "zonepath",
    "brand",
    "autoboot",
    "bootargs",
    "pool",
    "limitpriv",
    "scheduling-class",
    "ip-type",
    "hostid",
    "fs-allowed",
    "storage",
    "quota",
    "userns",
    "hostname",
    "resolvers",
];

/// A zone configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Zone {
    pub zonename: String,
    /// Assigned at `create`; not a zonecfg property (shown by `zoneadm list -p`).
    pub uuid: String,
    #[serde(default)]
    pub zonepath: Option<PathBuf>,
    #[serde(default)]
    pub brand: Brand,
    #[serde(default)]
    pub autoboot: bool,
    #[serde(default)]
    pub bootargs: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    /// `priv_str_to_set` syntax, e.g. `default,sys_time,-net_raw` (mapped to capabilities later).
    #[serde(default)]
    pub limitpriv: Option<String>,
    #[serde(default)]
    pub scheduling_class: Option<String>,
    #[serde(default)]
    pub ip_type: IpType,
    #[serde(default)]
    pub hostid: Option<Hostid>,
    #[serde(default)]
    pub fs_allowed: Vec<String>,
    /// Storage backend for installs from an image (`zones::storage::Kind`); unset: overlay.
    #[serde(default)]
    pub storage: Option<String>,
    /// Disk quota of the zone's root (this project's property; enforced by zfs and btrfs).
    #[serde(default)]
    pub quota: Option<Size>,
    /// Run the zone in its own user namespace; `None` means the brand's default.
    #[serde(default)]
    pub userns: Option<bool>,
    /// The zone's host name (`/etc/hostname`, `/etc/hosts`, UTS); unset: the zone name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// DNS resolvers written to the zone's `/etc/resolv.conf`.
    #[serde(default)]
    pub resolvers: Vec<String>,
    #[serde(default)]
    pub fs: Vec<Fs>,
    #[serde(default)]
    pub net: Vec<Net>,
    #[serde(default)]
    pub anet: Vec<Anet>,
    #[serde(default)]
    pub device: Vec<Device>,
    #[serde(default)]
    pub rctl: Vec<Rctl>,
    #[serde(default)]
    pub attr: Vec<Attr>,
    /// ZFS datasets delegated to the zone (`add dataset`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset: Vec<Dataset>,
    #[serde(default)]
    pub dedicated_cpu: Option<DedicatedCpu>,
    #[serde(default)]
    pub capped_cpu: Option<CappedCpu>,
    #[serde(default)]
    pub capped_memory: Option<CappedMemory>,
    #[serde(default)]
    pub capped_io: Vec<CappedIo>,
}

impl Zone {
    /// An empty configuration (brand linux, autoboot false, ip-type exclusive) with a new uuid.
    /// The name is not checked here; see [`validate_zone_name`].
    pub fn new(name: &str) -> Zone {
        Zone {
            zonename: name.to_string(),
            uuid: new_uuid(),
            zonepath: None,
            brand: Brand::default(),
            autoboot: false,
            bootargs: None,
            pool: None,
            limitpriv: None,
            scheduling_class: None,
            ip_type: IpType::default(),
            hostid: None,
            fs_allowed: Vec::new(),
            storage: None,
            quota: None,
            userns: None,
            hostname: None,
            resolvers: Vec::new(),
            fs: Vec::new(),
            net: Vec::new(),
            anet: Vec::new(),
            device: Vec::new(),
            rctl: Vec::new(),
            attr: Vec::new(),
            dataset: Vec::new(),
            dedicated_cpu: None,
            capped_cpu: None,
            capped_memory: None,
            capped_io: Vec::new(),
        }
    }

    /// The zone root: `<zonepath>/root`.
    pub fn root(&self) -> Option<PathBuf> {
        self.zonepath.as_deref().map(|p| p.join("root"))
    }

    /// `set prop=value` for a global property (including rctl aliases).
    pub fn set_global(&mut self, prop: &str, value: &Value) -> Result<(), ModelError> {
        if let Some(a) = RCTL_ALIASES.iter().find(|a| a.prop == prop) {
            return self.set_alias(a, simple(prop, value)?);
        }
        if prop == "fs-allowed" {
            return self.set_fs_allowed(value);
        }
        if prop == "resolvers" {
            return self.set_resolvers(value);
        }
        let v = simple(prop, value)?;
        match prop {
            "zonename" => {
                validate_zone_name(v)?;
                self.zonename = v.to_string();
            }
            "zonepath" => {
                validate_abs_path(prop, v)?;
                let trimmed = v.trim_end_matches('/');
                if trimmed.is_empty() {
                    return Err(invalid(prop, v, "an absolute path other than /"));
                }
                self.zonepath = Some(PathBuf::from(trimmed));
            }
            "brand" => self.brand = Brand::parse(v)?,
            "autoboot" => self.autoboot = parse_bool(prop, v)?,
            "bootargs" => self.bootargs = Some(v.to_string()),
            "pool" => self.pool = Some(checked_text(prop, v)?),
            "limitpriv" => self.limitpriv = Some(checked_privs(v)?),
            "scheduling-class" => self.scheduling_class = Some(checked_word(prop, v)?),
            "ip-type" => self.ip_type = IpType::parse(v)?,
            "hostid" => self.hostid = Some(Hostid::parse(prop, v)?),
            "storage" => {
                crate::storage::Kind::parse(v).map_err(|e| invalid(prop, v, &e.to_string()))?;
                self.storage = Some(v.to_string());
            }
            "quota" => self.quota = Some(Size::parse(prop, v)?),
            "userns" => self.userns = Some(parse_bool(prop, v)?),
            "hostname" => {
                validate_hostname(prop, v)?;
                self.hostname = Some(v.to_string());
            }
            _ => return Err(unknown_global(prop)),
        }
        Ok(())
    }

    fn set_fs_allowed(&mut self, value: &Value) -> Result<(), ModelError> {
        let mut types = Vec::new();
        for item in list_items("fs-allowed", value)? {
            for t in item.split(',').filter(|t| !t.is_empty()) {
                let bare = t.strip_prefix('-').unwrap_or(t);
                if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid("fs-allowed", t, "filesystem types like ufs,pcfs"));
                }
                types.push(t.to_string());
            }
        }
        self.fs_allowed = types;
        Ok(())
    }

    fn set_resolvers(&mut self, value: &Value) -> Result<(), ModelError> {
        let mut ips = Vec::new();
        for item in list_items("resolvers", value)? {
            for ip in item.split(',').filter(|t| !t.is_empty()) {
                values::validate_ip("resolvers", ip)?;
                ips.push(ip.to_string());
            }
        }
        self.resolvers = ips;
        Ok(())
    }

    fn set_alias(&mut self, alias: &RctlAlias, text: &str) -> Result<(), ModelError> {
        let limit = if alias.size {
            Size::parse(alias.prop, text)?.bytes()
        } else {
            parse_uint(alias.prop, text, 1, alias.max)?
        };
        let rctl = Rctl::single(alias.rctl, limit, alias.action);
        match self
            .rctl
            .iter_mut()
            .find(|r| r.name.as_deref() == Some(alias.rctl))
        {
            Some(r) => *r = rctl,
            None => self.rctl.push(rctl),
        }
        Ok(())
    }

    /// `clear prop` for a global property.
    pub fn clear_global(&mut self, prop: &str) -> Result<(), ModelError> {
        if let Some(a) = RCTL_ALIASES.iter().find(|a| a.prop == prop) {
            self.rctl.retain(|r| r.name.as_deref() != Some(a.rctl));
            return Ok(());
        }
        match prop {
            "zonename" => return Err(ModelError::CannotClear(prop.into())),
            "zonepath" => self.zonepath = None,
            "brand" => self.brand = Brand::default(),
            "autoboot" => self.autoboot = false,
            "bootargs" => self.bootargs = None,
            "pool" => self.pool = None,
            "limitpriv" => self.limitpriv = None,
            "scheduling-class" => self.scheduling_class = None,
            "ip-type" => self.ip_type = IpType::default(),
            "hostid" => self.hostid = None,
            "fs-allowed" => self.fs_allowed.clear(),
            "storage" => self.storage = None,
            "quota" => self.quota = None,
            "userns" => self.userns = None,
            "hostname" => self.hostname = None,
            "resolvers" => self.resolvers.clear(),
            _ => return Err(unknown_global(prop)),
        }
        Ok(())
    }

    /// The value of a global property as `info` shows it (`""` when unset); `None` when
    /// `prop` is not a global property. Aliases show their rctl's limit, or `None` when unset.
    pub fn global_value(&self, prop: &str) -> Option<String> {
        if let Some(a) = RCTL_ALIASES.iter().find(|a| a.prop == prop) {
            let limit = self.rctl_limit(a.rctl)?;
            return Some(if a.size {
                Size::from_bytes(limit).to_string()
            } else {
                limit.to_string()
            });
        }
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        Some(match prop {
            "zonename" => self.zonename.clone(),
            "zonepath" => self
                .zonepath
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            "brand" => self.brand.to_string(),
            "autoboot" => self.autoboot.to_string(),
            "bootargs" => opt(&self.bootargs),
            "pool" => opt(&self.pool),
            "limitpriv" => opt(&self.limitpriv),
            "scheduling-class" => opt(&self.scheduling_class),
            "ip-type" => self.ip_type.to_string(),
            "hostid" => self.hostid.map(|h| h.to_string()).unwrap_or_default(),
            "fs-allowed" => self.fs_allowed.join(","),
            "storage" => opt(&self.storage),
            "quota" => self.quota.map(|q| q.to_string()).unwrap_or_default(),
            "userns" => self.userns.map(|u| u.to_string()).unwrap_or_default(),
            "hostname" => opt(&self.hostname),
            "resolvers" => self.resolvers.join(","),
            _ => return None,
        })
    }

    /// True when `prop` names a global property or an rctl alias.
    pub fn is_global_prop(prop: &str) -> bool {
        GLOBAL_PROPS.contains(&prop) || RCTL_ALIASES.iter().any(|a| a.prop == prop)
    }

    /// The rctl named `name` (e.g. `zone.max-lwps`).
    pub fn rctl(&self, name: &str) -> Option<&Rctl> {
        self.rctl.iter().find(|r| r.name.as_deref() == Some(name))
    }

    /// The smallest privileged limit of rctl `name`, which is what the zone is held to.
    pub fn rctl_limit(&self, name: &str) -> Option<u64> {
        self.rctl(name)?
            .values
            .iter()
            .filter(|v| v.privilege == RctlPriv::Privileged)
            .map(|v| v.limit)
            .min()
    }

    /// All instances of resource type `kind`, in order.
    pub fn resources(&self, kind: ResourceType) -> Vec<Resource> {
        fn all<T: Clone>(v: &[T], f: fn(T) -> Resource) -> Vec<Resource> {
            v.iter().cloned().map(f).collect()
        }
        match kind {
            ResourceType::Fs => all(&self.fs, Resource::Fs),
            ResourceType::Net => all(&self.net, Resource::Net),
            ResourceType::Anet => all(&self.anet, Resource::Anet),
            ResourceType::Device => all(&self.device, Resource::Device),
            ResourceType::Rctl => all(&self.rctl, Resource::Rctl),
            ResourceType::Attr => all(&self.attr, Resource::Attr),
            ResourceType::Dataset => all(&self.dataset, Resource::Dataset),
            ResourceType::CappedIo => all(&self.capped_io, Resource::CappedIo),
            ResourceType::DedicatedCpu => self
                .dedicated_cpu
                .clone()
                .map(Resource::DedicatedCpu)
                .into_iter()
                .collect(),
            ResourceType::CappedCpu => self
                .capped_cpu
                .clone()
                .map(Resource::CappedCpu)
                .into_iter()
                .collect(),
            ResourceType::CappedMemory => self
                .capped_memory
                .clone()
                .map(Resource::CappedMemory)
                .into_iter()
                .collect(),
        }
    }

    /// Stores a complete resource: appended (`at == None`) or replacing instance `at` (as
    /// `end` after `add` or `select` does). Refuses duplicates of the type's key property
    /// and a second instance of a single-instance type.
    ///
    /// An rctl that illumos expresses as a cap (`zone.cpu-cap`, `zone.max-swap`,
    /// `zone.max-locked-memory`, `zone.max-physical-memory`) is stored in `capped-cpu` /
    /// `capped-memory` instead, so illumos exports import as they mean.
    ///
    /// An anet without a `linkname` is named `net0`, `net1`, ...: the first such name no
    /// other anet of the zone has (Solaris 11's default).
    pub fn put_resource(&mut self, mut res: Resource, at: Option<usize>) -> Result<(), ModelError> {
        if let Resource::Anet(a) = &mut res {
            if a.linkname.is_none() {
                let taken = |n: &str| {
                    self.anet
                        .iter()
                        .enumerate()
                        .any(|(i, o)| Some(i) != at && o.linkname.as_deref() == Some(n))
                };
                a.linkname = (0..).map(|i| format!("net{i}")).find(|n| !taken(n));
            }
        }
        res.props_ref().check_complete()?;
        let kind = res.kind();
        if kind.single_instance() && at.is_none() && !self.resources(kind).is_empty() {
            return Err(ModelError::AlreadyExists(kind.name().into()));
        }
        self.check_duplicate(&res, at)?;
        if let Resource::Rctl(r) = &res {
            if self.fold_cap_rctl(r) {
                if let Some(i) = at {
                    self.rctl.remove(i);
                }
                return Ok(());
            }
        }
        fn put<T>(v: &mut Vec<T>, x: T, at: Option<usize>) {
            match at {
                Some(i) if i < v.len() => v[i] = x,
                _ => v.push(x),
            }
        }
        match res {
            Resource::Fs(r) => put(&mut self.fs, r, at),
            Resource::Net(r) => put(&mut self.net, r, at),
            Resource::Anet(r) => put(&mut self.anet, r, at),
            Resource::Device(r) => put(&mut self.device, r, at),
            Resource::Rctl(r) => put(&mut self.rctl, r, at),
            Resource::Attr(r) => put(&mut self.attr, r, at),
            Resource::Dataset(r) => put(&mut self.dataset, r, at),
            Resource::DedicatedCpu(r) => self.dedicated_cpu = Some(r),
            Resource::CappedCpu(r) => self.capped_cpu = Some(r),
            Resource::CappedMemory(r) => self.capped_memory = Some(r),
            Resource::CappedIo(r) => put(&mut self.capped_io, r, at),
        }
        Ok(())
    }

    fn check_duplicate(&self, res: &Resource, at: Option<usize>) -> Result<(), ModelError> {
        let Some(key) = res.kind().key_prop() else {
            return Ok(());
        };
        let mine = res.prop(key);
        for (i, other) in self.resources(res.kind()).iter().enumerate() {
            if Some(i) != at && other.prop(key) == mine {
                let value = match mine {
                    Some(PropValue::Simple(Some(v))) => v,
                    _ => String::new(),
                };
                return Err(ModelError::Duplicate {
                    resource: res.kind().name().into(),
                    prop: key.into(),
                    value,
                });
            }
        }
        Ok(())
    }

    fn fold_cap_rctl(&mut self, r: &Rctl) -> bool {
        let Some(limit) = r.name.as_deref().and_then(|_| {
            r.values
                .iter()
                .filter(|v| v.privilege == RctlPriv::Privileged)
                .map(|v| v.limit)
                .min()
        }) else {
            return false;
        };
        fn mem(z: &mut Zone) -> &mut CappedMemory {
            z.capped_memory.get_or_insert_with(CappedMemory::default)
        }
        match r.name.as_deref() {
            Some("zone.cpu-cap") => {
                let h = u32::try_from(limit).unwrap_or(u32::MAX).max(1);
                self.capped_cpu = Some(CappedCpu {
                    ncpus: Some(Ncpus::from_hundredths(h)),
                });
            }
            Some("zone.max-swap") => mem(self).swap = Some(Size::from_bytes(limit)),
            Some("zone.max-locked-memory") => mem(self).locked = Some(Size::from_bytes(limit)),
            Some("zone.max-physical-memory") => mem(self).physical = Some(Size::from_bytes(limit)),
            _ => return false,
        }
        true
    }

    /// Removes instance `at` of resource type `kind`.
    pub fn remove_resource(&mut self, kind: ResourceType, at: usize) {
        fn rm<T>(v: &mut Vec<T>, at: usize) {
            if at < v.len() {
                v.remove(at);
            }
        }
        match kind {
            ResourceType::Fs => rm(&mut self.fs, at),
            ResourceType::Net => rm(&mut self.net, at),
            ResourceType::Anet => rm(&mut self.anet, at),
            ResourceType::Device => rm(&mut self.device, at),
            ResourceType::Rctl => rm(&mut self.rctl, at),
            ResourceType::Attr => rm(&mut self.attr, at),
            ResourceType::Dataset => rm(&mut self.dataset, at),
            ResourceType::DedicatedCpu => self.dedicated_cpu = None,
            ResourceType::CappedCpu => self.capped_cpu = None,
            ResourceType::CappedMemory => self.capped_memory = None,
            ResourceType::CappedIo => rm(&mut self.capped_io, at),
        }
    }

    /// What `verify` and `commit` check: a valid name, a zonepath, complete resources, and
    /// properties that fit together (ip-type and net addresses, dedicated-cpu and its
    /// incompatibles, limitpriv and userns).
    pub fn verify(&self) -> Result<(), ModelError> {
        validate_zone_name(&self.zonename)?;
        if self.zonepath.is_none() {
            return Err(ModelError::Missing("zonepath".into()));
        }
        for kind in ResourceType::ALL {
            for r in self.resources(kind) {
                r.props_ref().check_complete()?;
            }
        }
        self.verify_network()?;
        self.verify_cpu()?;
        self.verify_scheduling()?;
        // Unknown and prohibited privileges, and with a user namespace (the default) those
        // that would grant nothing in it.
        crate::privileges::capabilities_for(self.limitpriv.as_deref(), self.userns != Some(false))?;
        Ok(())
    }

    /// Properties with no Linux mechanism are refused, never stored and ignored: the fair
    /// share scheduler (FSS, what cpu-shares means) is the only scheduling class a zone can
    /// have, and resource pools have no counterpart (dedicated-cpu is a zone's own cpuset),
    /// nor have pool importance, fs-allowed (other mounts need the host's CAP_SYS_ADMIN), an fs
    /// resource's raw device (fsck before a global-zone mount) or zone.max-lofi.
    fn verify_scheduling(&self) -> Result<(), ModelError> {
        if let Some(class) = self.scheduling_class.as_deref() {
            if !class.eq_ignore_ascii_case("FSS") {
                return Err(ModelError::Conflict(format!(
                    "scheduling-class {class}: only FSS is supported (a zone's processes share the CPU by cpu-shares); clear scheduling-class or set it to FSS"
                )));
            }
        }
        if !self.fs_allowed.is_empty() {
            return Err(ModelError::Conflict(format!(
                "fs-allowed={}: a zone mounts only what its user namespace may (tmpfs, proc, its own cgroup2, bind mounts); any other filesystem needs the host's CAP_SYS_ADMIN; give it an fs resource, and clear fs-allowed",
                self.fs_allowed.join(",")
            )));
        }
        if self.rctl("zone.max-lofi").is_some() {
            return Err(ModelError::Conflict(
                "rctl zone.max-lofi: a zone cannot make loop devices on Linux, so there is nothing to limit; remove the rctl".into(),
            ));
        }
        if let Some(i) = self.dedicated_cpu.as_ref().and_then(|d| d.importance) {
            return Err(ModelError::Conflict(format!(
                "dedicated-cpu importance={i}: importance ranks resource pools, which are not supported on Linux; clear importance"
            )));
        }
        if let Some(f) = self.fs.iter().find(|f| f.raw.is_some()) {
            return Err(ModelError::Conflict(format!(
                "fs dir={}: raw is the device fsck checks before the global zone mounts it, which zones do not do; clear raw",
                f.dir.as_deref().unwrap_or_default()
            )));
        }
        if let Some(pool) = self.pool.as_deref().filter(|p| !p.is_empty()) {
            return Err(ModelError::Conflict(format!(
                "pool {pool}: resource pools are not supported on Linux; use dedicated-cpu for a zone's own CPUs, and clear pool"
            )));
        }
        Ok(())
    }

    fn verify_network(&self) -> Result<(), ModelError> {
        for n in &self.net {
            let phys = n.physical.as_deref().unwrap_or("");
            match self.ip_type {
                IpType::Shared if n.address.is_none() => {
                    return Err(ModelError::Conflict(format!(
                        "net physical={phys}: address not specified (a shared-IP zone needs one)"
                    )))
                }
                IpType::Shared if n.allowed_address.is_some() => {
                    return Err(ModelError::Conflict(format!(
                        "net physical={phys}: allowed-address needs ip-type exclusive"
                    )))
                }
                IpType::Exclusive if n.address.is_some() => {
                    return Err(ModelError::Conflict(format!(
                        "net physical={phys}: address cannot be set in an exclusive-IP zone (use allowed-address)"
                    )))
                }
                _ => {}
            }
        }
        if self.ip_type == IpType::Shared && !self.anet.is_empty() {
            return Err(ModelError::Conflict(
                "anet resources need ip-type exclusive".into(),
            ));
        }
        Ok(())
    }

    fn verify_cpu(&self) -> Result<(), ModelError> {
        if self.dedicated_cpu.is_none() {
            return Ok(());
        }
        if self.rctl("zone.cpu-shares").is_some() {
            return Err(ModelError::Conflict(
                "dedicated-cpu cannot be used together with cpu-shares".into(),
            ));
        }
        if self.pool.is_some() {
            return Err(ModelError::Conflict(
                "dedicated-cpu cannot be used together with pool".into(),
            ));
        }
        if self.capped_cpu.is_some() {
            return Err(ModelError::Conflict(
                "the capped-cpu and dedicated-cpu resources are incompatible".into(),
            ));
        }
        Ok(())
    }

    /// True when `path` is this zone's zonepath, inside it, or contains it.
    pub fn zonepath_overlaps(&self, path: &Path) -> bool {
        self.zonepath
            .as_deref()
            .is_some_and(|mine| mine.starts_with(path) || path.starts_with(mine))
    }
}

fn unknown_global(prop: &str) -> ModelError {
    ModelError::UnknownProperty {
        resource: None,
        prop: prop.to_string(),
    }
}

fn checked_text(what: &str, v: &str) -> Result<String, ModelError> {
    validate_text(what, v)?;
    Ok(v.to_string())
}

fn checked_word(what: &str, v: &str) -> Result<String, ModelError> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(what, v, "a scheduling class like FSS"));
    }
    Ok(v.to_string())
}

/// `limitpriv`: a comma-separated list of privilege names, each optionally negated with `-`
/// or `!` (`default,sys_time,-net_raw`).
fn checked_privs(v: &str) -> Result<String, ModelError> {
    let ok = !v.is_empty()
        && v.split(',').all(|p| {
            let bare = p.strip_prefix(['-', '!']).unwrap_or(p);
            !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(
            "limitpriv",
            v,
            "a comma-separated list of privileges like default,sys_time,-net_raw",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::simple(v)
    }

    fn fs(dir: &str) -> Resource {
        let mut r = Resource::new(ResourceType::Fs);
        let p = r.props_mut();
        p.set("dir", &s(dir)).unwrap();
        p.set("special", &s("/src")).unwrap();
        p.set("type", &s("lofs")).unwrap();
        r
    }

    #[test]
    fn global_properties_set_clear_and_show() {
        let mut z = Zone::new("a");
        z.set_global("zonepath", &s("/zones/a/")).unwrap();
        assert_eq!(z.global_value("zonepath").unwrap(), "/zones/a");
        z.set_global("brand", &s("app")).unwrap();
        z.set_global("autoboot", &s("true")).unwrap();
        z.set_global("ip-type", &s("shared")).unwrap();
        z.set_global("hostid", &s("0x1234")).unwrap();
        z.set_global("limitpriv", &s("default,sys_time,-net_raw"))
            .unwrap();
        z.set_global("fs-allowed", &s("ufs,pcfs")).unwrap();
        assert_eq!(z.fs_allowed, ["ufs", "pcfs"]);
        assert_eq!(z.global_value("hostid").unwrap(), "1234");
        assert_eq!(z.global_value("ip-type").unwrap(), "shared");
        z.clear_global("ip-type").unwrap();
        assert_eq!(z.ip_type, IpType::Exclusive);
        assert_eq!(
            z.clear_global("zonename").unwrap_err().to_string(),
            "zonename cannot be cleared"
        );
        assert_eq!(
            z.set_global("brand", &s("ipkg")).unwrap_err().to_string(),
            "brand \"ipkg\": expected linux, app or kvm"
        );
        assert_eq!(
            z.set_global("ip-type", &s("excl")).unwrap_err().to_string(),
            "ip-type \"excl\": expected exclusive or shared"
        );
        assert_eq!(
            z.set_global("dir", &s("/x")).unwrap_err().to_string(),
            "'dir' is not a valid global property"
        );
        assert!(z.set_global("limitpriv", &s("default,sys time")).is_err());
        assert!(z.set_global("zonepath", &s("/")).is_err());
        assert!(z.set_global("zonename", &s("SUNWx")).is_err());
        assert_eq!(z.global_value("nope"), None);
    }

    #[test]
    fn aliases_are_rctls() {
        let mut z = Zone::new("a");
        z.set_global("cpu-shares", &s("10")).unwrap();
        z.set_global("max-shm-memory", &s("1g")).unwrap();
        assert_eq!(
            z.rctl("zone.cpu-shares").unwrap().values[0].to_string(),
            "(priv=privileged,limit=10,action=none)"
        );
        assert_eq!(z.rctl_limit("zone.max-shm-memory"), Some(1 << 30));
        assert_eq!(z.global_value("max-shm-memory").unwrap(), "1G");
        z.set_global("cpu-shares", &s("20")).unwrap();
        assert_eq!(z.rctl.len(), 2);
        assert_eq!(z.global_value("cpu-shares").unwrap(), "20");
        assert_eq!(
            z.set_global("max-lwps", &s("lots"))
                .unwrap_err()
                .to_string(),
            format!(
                "max-lwps \"lots\": expected a whole number from 1 to {}",
                u64::MAX
            )
        );
        z.clear_global("cpu-shares").unwrap();
        assert_eq!(z.global_value("cpu-shares"), None);
    }

    #[test]
    fn resources_are_unique_by_key() {
        let mut z = Zone::new("a");
        z.put_resource(fs("/data"), None).unwrap();
        assert_eq!(
            z.put_resource(fs("/data"), None).unwrap_err().to_string(),
            "A fs resource with the dir '/data' already exists."
        );
        z.put_resource(fs("/data"), Some(0)).unwrap();
        z.put_resource(fs("/other"), None).unwrap();
        assert_eq!(z.fs.len(), 2);
        z.remove_resource(ResourceType::Fs, 0);
        assert_eq!(z.fs[0].dir.as_deref(), Some("/other"));
        let mut m = Resource::new(ResourceType::CappedMemory);
        m.props_mut().set("physical", &s("1g")).unwrap();
        z.put_resource(m.clone(), None).unwrap();
        assert_eq!(
            z.put_resource(m, None).unwrap_err().to_string(),
            "The capped-memory resource already exists."
        );
        assert_eq!(
            z.put_resource(Resource::new(ResourceType::Fs), None)
                .unwrap_err()
                .to_string(),
            "fs resource incomplete: dir not specified"
        );
    }

    #[test]
    fn anets_are_named_net0_net1_by_default() {
        let mut z = Zone::new("a");
        let anet = |name: Option<&str>| {
            let mut r = Resource::new(ResourceType::Anet);
            r.props_mut().set("lower-link", &s("stub0")).unwrap();
            if let Some(n) = name {
                r.props_mut().set("linkname", &s(n)).unwrap();
            }
            r
        };
        z.put_resource(anet(None), None).unwrap();
        z.put_resource(anet(Some("net1")), None).unwrap();
        z.put_resource(anet(None), None).unwrap();
        let names: Vec<_> = z.anet.iter().map(|a| a.linkname.clone().unwrap()).collect();
        assert_eq!(names, ["net0", "net1", "net2"]);
        // `select` then `end` of net0 with its linkname cleared keeps it net0.
        z.put_resource(anet(None), Some(0)).unwrap();
        assert_eq!(z.anet[0].linkname.as_deref(), Some("net0"));
    }

    #[test]
    fn cap_rctls_fold_into_cap_resources() {
        let mut z = Zone::new("a");
        let mut r = Rctl::single("zone.cpu-cap", 150, RctlAction::Deny);
        z.put_resource(Resource::Rctl(r.clone()), None).unwrap();
        r.name = Some("zone.max-swap".into());
        r.values[0].limit = 2 << 30;
        z.put_resource(Resource::Rctl(r), None).unwrap();
        assert!(z.rctl.is_empty());
        assert_eq!(
            z.capped_cpu.as_ref().unwrap().ncpus.unwrap().to_string(),
            "1.5"
        );
        assert_eq!(
            z.capped_memory.as_ref().unwrap().swap.unwrap().to_string(),
            "2G"
        );
    }

    #[test]
    fn verify_checks_the_whole_zone() {
        let mut z = Zone::new("a");
        assert_eq!(
            z.verify().unwrap_err().to_string(),
            "zonepath not specified"
        );
        z.set_global("zonepath", &s("/zones/a")).unwrap();
        assert_eq!(z.verify(), Ok(()));
        let mut n = Net::default();
        n.set("physical", &s("vnic0")).unwrap();
        n.set("address", &s("10.0.0.2/24")).unwrap();
        z.net.push(n);
        assert_eq!(
            z.verify().unwrap_err().to_string(),
            "net physical=vnic0: address cannot be set in an exclusive-IP zone (use allowed-address)"
        );
        z.ip_type = IpType::Shared;
        assert_eq!(z.verify(), Ok(()));
        z.dedicated_cpu = Some(DedicatedCpu {
            ncpus: Some(CpuRange { min: 1, max: 1 }),
            importance: None,
        });
        z.set_global("cpu-shares", &s("5")).unwrap();
        assert_eq!(
            z.verify().unwrap_err().to_string(),
            "dedicated-cpu cannot be used together with cpu-shares"
        );
        z.clear_global("cpu-shares").unwrap();
        z.capped_cpu = Some(CappedCpu {
            ncpus: Some(Ncpus::from_hundredths(50)),
        });
        assert!(z.verify().is_err());
        z.capped_cpu = None;
        assert_eq!(z.verify(), Ok(()));
        z.zonename = "global".into();
        assert!(z.verify().is_err());
    }

    #[test]
    fn json_round_trip() {
        let mut z = Zone::new("a");
        z.set_global("zonepath", &s("/zones/a")).unwrap();
        z.set_global("hostid", &s("abc")).unwrap();
        z.set_global("cpu-shares", &s("3")).unwrap();
        z.put_resource(fs("/data"), None).unwrap();
        let mut m = Resource::new(ResourceType::CappedMemory);
        m.props_mut().set("physical", &s("1.5g")).unwrap();
        z.put_resource(m, None).unwrap();
        let mut c = Resource::new(ResourceType::CappedCpu);
        c.props_mut().set("ncpus", &s("1.25")).unwrap();
        z.put_resource(c, None).unwrap();
        let json = serde_json::to_string_pretty(&z).unwrap();
        assert!(json.contains("\"physical\": \"1536M\""), "{json}");
        assert!(json.contains("\"ip-type\": \"exclusive\""), "{json}");
        let back: Zone = serde_json::from_str(&json).unwrap();
        assert_eq!(back, z);
        let bad = json.replace("1536M", "lots");
        let err = serde_json::from_str::<Zone>(&bad).unwrap_err().to_string();
        assert!(
            err.contains("size \"lots\": expected a size like 512m or 2g"),
            "{err}"
        );
    }

    #[test]
    fn zonepath_overlap() {
        let mut z = Zone::new("a");
        z.zonepath = Some("/zones/a".into());
        assert!(z.zonepath_overlaps(Path::new("/zones/a")));
        assert!(z.zonepath_overlaps(Path::new("/zones/a/sub")));
        assert!(z.zonepath_overlaps(Path::new("/zones")));
        assert!(!z.zonepath_overlaps(Path::new("/zones/ab")));
    }
}
