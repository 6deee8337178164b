//! A zonecfg session: the in-memory configuration of one zone, the scope (global, or the
//! resource being added/selected), and the interpretation of every command.

use std::fs;

use super::parser::{Command, CreateSource, Filter};
use super::print;
use super::{help, Console, LangError};
use crate::model::{ModelError, Resource, ResourceType, Value, Zone};
use crate::state::{self, Verb, ZoneState};
use crate::store::{Store, ZoneLock};
use crate::templates;

/// What the caller does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `exit` succeeded: end the session.
    Exit,
}

#[derive(Debug, Clone)]
struct Edit {
    res: Resource,
    /// The instance being modified (`select`), or `None` for a new one (`add`).
    at: Option<usize>,
}

/// One zone's configuration session.
#[derive(Debug)]
pub struct Session<'s> {
    store: &'s Store,
    /// The name on disk (or the requested name of a new zone).
    name: String,
    committed: Option<Zone>,
    state: Option<ZoneState>,
    config: Option<Zone>,
    edit: Option<Edit>,
    dirty: bool,
    before_commit: Option<HookBox<'s>>,
}

/// Called with the configuration about to be committed; an error stops the commit (live
/// reconfiguration applies the change to the running zone here).
pub type CommitHook<'s> = Box<dyn FnMut(&Zone) -> Result<(), String> + 's>;

struct HookBox<'s>(CommitHook<'s>);

impl std::fmt::Debug for HookBox<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitHook")
    }
}

impl<'s> Session<'s> {
    /// Opens a session on zone `name` (checked against the zone-name rules) in `store`.
    pub fn open(store: &'s Store, name: &str) -> Result<Session<'s>, LangError> {
        crate::model::validate_zone_name(name)?;
        let committed = store.load(name)?;
        let state = store.state(name)?;
        Ok(Session {
            store,
            name: name.to_string(),
            config: committed.clone(),
            committed,
            state,
            edit: None,
            dirty: false,
            before_commit: None,
        })
    }

    /// Run `hook` on every commit, before anything is written; its error aborts the commit.
    pub fn set_before_commit(&mut self, hook: CommitHook<'s>) {
        self.before_commit = Some(HookBox(hook));
    }

    /// True when a configuration exists (on disk or created in this session).
    pub fn exists(&self) -> bool {
        self.config.is_some()
    }

    /// True when there are uncommitted changes.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The in-memory configuration.
    pub fn config(&self) -> Option<&Zone> {
        self.config.as_ref()
    }

    /// The type of the resource being edited; `None` in the global scope.
    pub fn scope(&self) -> Option<crate::model::ResourceType> {
        self.edit.as_ref().map(|e| e.res.kind())
    }

    /// `zonecfg:NAME> ` or `zonecfg:NAME:RESOURCE> `.
    pub fn prompt(&self) -> String {
        let name = self
            .config
            .as_ref()
            .map_or(self.name.as_str(), |z| z.zonename.as_str());
        match &self.edit {
            Some(e) => format!("zonecfg:{name}:{}> ", e.res.kind()),
            None => format!("zonecfg:{name}> "),
        }
    }

    /// Runs one command.
    pub fn run(&mut self, cmd: &Command, con: &mut dyn Console) -> Result<Flow, LangError> {
        match cmd {
            Command::Help { topic } => con.out(&help(topic.as_deref())),
            Command::Create { force, source } => self.create(*force, source, con)?,
            Command::Exit { force } => return self.exit(*force, con),
            Command::Commit => self.commit()?,
            Command::Revert { force } => self.revert(*force, con)?,
            Command::Delete { force } => self.delete(*force, con)?,
            Command::Export { file } => self.export(file.as_deref(), con)?,
            Command::Verify => self.verify()?,
            Command::Info { target, filters } => self.info(target.as_deref(), filters, con)?,
            Command::Add { target, value } => self.add(target, value.as_ref())?,
            Command::Select { target, filters } => self.select(target, filters)?,
            Command::Remove {
                force,
                target,
                filters,
                value,
            } => self.remove(*force, target, filters, value.as_ref(), con)?,
            Command::Set { prop, value } => self.set(prop, value)?,
            Command::Clear { prop } => self.clear(prop)?,
            Command::End => self.end()?,
            Command::Cancel => {
                self.resource_scope("cancel")?;
                self.edit = None;
            }
        }
        Ok(Flow::Continue)
    }

    /// The end of the input: like `exit` (commit if there are changes).
    pub fn finish(&mut self, con: &mut dyn Console) -> Result<(), LangError> {
        self.exit(false, con).map(|_| ())
    }

    fn global_scope(&self, cmd: &str) -> Result<(), LangError> {
        match &self.edit {
            None => Ok(()),
            Some(_) => Err(LangError::Scope {
                cmd: cmd.into(),
                scope: "global",
            }),
        }
    }

    fn resource_scope(&self, cmd: &str) -> Result<(), LangError> {
        match &self.edit {
            Some(_) => Ok(()),
            None => Err(LangError::Scope {
                cmd: cmd.into(),
                scope: "resource",
            }),
        }
    }

    fn not_editing(&self) -> Result<(), LangError> {
        match &self.edit {
            Some(e) => Err(LangError::ResourceIncomplete(e.res.kind())),
            None => Ok(()),
        }
    }

    fn zone(&self) -> Result<&Zone, LangError> {
        self.config
            .as_ref()
            .ok_or_else(|| LangError::NoSuchZone(self.name.clone()))
    }

    fn zone_mut(&mut self) -> Result<&mut Zone, LangError> {
        self.config
            .as_mut()
            .ok_or_else(|| LangError::NoSuchZone(self.name.clone()))
    }

    fn is_installed(&self) -> bool {
        self.state.is_some_and(|s| s >= ZoneState::Incomplete)
    }

    fn create(
        &mut self,
        force: bool,
        source: &CreateSource,
        con: &mut dyn Console,
    ) -> Result<(), LangError> {
        self.global_scope("create")?;
        if self.is_installed() {
            return Err(LangError::Installed {
                zone: self.name.clone(),
                what: "create".into(),
            });
        }
        if self.config.is_some() && !force {
            let q = format!(
                "Zone {} already exists; overwrite its configuration",
                self.name
            );
            match con.confirm(&q) {
                Some(true) => {}
                Some(false) => return Ok(()),
                None => return Err(LangError::Exists(self.name.clone())),
            }
        }
        let mut zone = match source {
            CreateSource::Default => templates::default_zone(&self.name),
            CreateSource::Blank => templates::blank(&self.name),
            CreateSource::Template(t) => templates::from_template(self.store, &self.name, t)?,
            CreateSource::Detached(path) => detached_zone(self.store, &self.name, path)?,
        };
        if let Some(old) = &self.committed {
            zone.uuid = old.uuid.clone();
        }
        self.config = Some(zone);
        self.dirty = true;
        Ok(())
    }

    fn exit(&mut self, force: bool, con: &mut dyn Console) -> Result<Flow, LangError> {
        if let Some(e) = &self.edit {
            if force {
                return Ok(Flow::Exit);
            }
            return match con.confirm("Resource incomplete; really quit") {
                Some(true) => Ok(Flow::Exit),
                Some(false) => Ok(Flow::Continue),
                None => Err(LangError::ResourceIncomplete(e.res.kind())),
            };
        }
        if force || !self.dirty {
            return Ok(Flow::Exit);
        }
        match self.commit() {
            Ok(()) => Ok(Flow::Exit),
            Err(e) if !con.can_confirm() => Err(e),
            Err(e) => {
                con.err(&format!("zonecfg: {e}\n"));
                match con.confirm("Configuration not saved; really quit") {
                    Some(true) => Ok(Flow::Exit),
                    Some(false) => Ok(Flow::Continue),
                    None => Err(e),
                }
            }
        }
    }

    /// Checks the configuration. Like illumos zonecfg, this does not look at other zones:
    /// two zones sharing a zonepath is refused by zoneadm (install, clone, move), see
    /// [`Store::zonepath_user`].
    fn check(&self) -> Result<(), LangError> {
        // limitpriv included: unknown, prohibited and (with userns) host-only privileges
        // are refused here, not first at boot.
        self.zone()?.verify()?;
        crate::spec::check_host(self.zone()?)?;
        Ok(())
    }

    fn verify(&self) -> Result<(), LangError> {
        self.not_editing()?;
        self.check()
    }

    fn commit(&mut self) -> Result<(), LangError> {
        self.not_editing()?;
        let zone = self.zone()?.clone();
        if !self.dirty && self.committed.is_some() {
            return Ok(());
        }
        self.check()?;
        if let Some(HookBox(hook)) = self.before_commit.as_mut() {
            hook(&zone).map_err(LangError::Live)?;
        }
        let renamed = self.committed.is_some() && zone.zonename != self.name;
        if renamed {
            let (old, new) = self.lock_pair(&self.name, &zone.zonename)?;
            self.store.rename(&old, &new, &zone)?;
        } else {
            let lock = self.store.lock(&zone.zonename)?;
            if self.committed.is_none() && self.store.entry(&zone.zonename)?.is_some() {
                return Err(LangError::Exists(zone.zonename.clone()));
            }
            self.store.save(&lock, &zone)?;
        }
        self.name = zone.zonename.clone();
        self.state = self.store.state(&self.name)?;
        self.committed = Some(zone);
        self.dirty = false;
        Ok(())
    }

    /// Locks two zones in name order (so two renames never deadlock); returns (a, b).
    fn lock_pair(&self, a: &str, b: &str) -> Result<(ZoneLock, ZoneLock), LangError> {
        if a < b {
            let la = self.store.lock(a)?;
            Ok((la, self.store.lock(b)?))
        } else {
            let lb = self.store.lock(b)?;
            Ok((self.store.lock(a)?, lb))
        }
    }

    fn revert(&mut self, force: bool, con: &mut dyn Console) -> Result<(), LangError> {
        if !force {
            match con.confirm("Are you sure you want to revert") {
                Some(true) => {}
                Some(false) => return Ok(()),
                None => return Err(LangError::NeedForce("revert".into())),
            }
        }
        self.config = self.committed.clone();
        self.edit = None;
        self.dirty = false;
        Ok(())
    }

    fn delete(&mut self, force: bool, con: &mut dyn Console) -> Result<(), LangError> {
        self.global_scope("delete")?;
        let Some(state) = self.state else {
            if self.config.take().is_none() {
                return Err(LangError::NoSuchZone(self.name.clone()));
            }
            self.dirty = false;
            return Ok(());
        };
        state::check(&self.name, state, Verb::Delete)?;
        if !force {
            let q = format!("Are you sure you want to delete zone {}", self.name);
            match con.confirm(&q) {
                Some(true) => {}
                Some(false) => return Ok(()),
                None => return Err(LangError::NeedForce("delete".into())),
            }
        }
        let lock = self.store.lock(&self.name)?;
        let now = self.store.state(&self.name)?;
        match now {
            Some(s) => state::check(&self.name, s, Verb::Delete)?,
            None => return Err(LangError::NoSuchZone(self.name.clone())),
        };
        self.store.delete(&lock)?;
        self.committed = None;
        self.config = None;
        self.state = None;
        self.dirty = false;
        Ok(())
    }

    fn export(&self, file: Option<&str>, con: &mut dyn Console) -> Result<(), LangError> {
        let text = print::export(self.zone()?);
        match file {
            None => con.out(&text),
            Some(f) => fs::write(f, text).map_err(|source| LangError::Io {
                path: f.into(),
                source,
            })?,
        }
        Ok(())
    }

    fn info(
        &self,
        target: Option<&str>,
        filters: &[Filter],
        con: &mut dyn Console,
    ) -> Result<(), LangError> {
        if let Some(e) = &self.edit {
            if !filters.is_empty() {
                return Err(LangError::Usage(
                    "info: prop=value filters only make sense in the global scope".into(),
                ));
            }
            if let Some(p) = target {
                if e.res.prop(p).is_none() {
                    return Err(e.res.props_ref().unknown(p).into());
                }
            }
            con.out(&print::info_resource(&e.res, target));
            return Ok(());
        }
        let zone = self.zone()?;
        let Some(target) = target else {
            con.out(&print::info_all(zone));
            return Ok(());
        };
        if filters.is_empty() {
            if let Some(text) = print::info_global(zone, target) {
                con.out(&text);
                return Ok(());
            }
        }
        let kind = ResourceType::parse(target)?;
        for r in zone.resources(kind) {
            if r.matches(filters)? {
                con.out(&print::info_resource(&r, None));
            }
        }
        Ok(())
    }

    fn add(&mut self, target: &str, value: Option<&Value>) -> Result<(), LangError> {
        if let Some(e) = &mut self.edit {
            let Some(v) = value else {
                return Err(LangError::Usage(format!(
                    "add: in the {} resource scope, add takes a property and a value, e.g. 'add options ro'",
                    e.res.kind()
                )));
            };
            e.res.props_mut().add(target, v)?;
            return Ok(());
        }
        if value.is_some() {
            return Err(LangError::Scope {
                cmd: "add <property> <value>".into(),
                scope: "resource",
            });
        }
        let kind = ResourceType::parse(target)?;
        let zone = self.zone()?;
        if kind.single_instance() && !zone.resources(kind).is_empty() {
            return Err(ModelError::AlreadyExists(kind.name().into()).into());
        }
        self.edit = Some(Edit {
            res: Resource::new(kind),
            at: None,
        });
        Ok(())
    }

    /// The indices of the instances of `kind` matching every filter.
    fn matching(&self, kind: ResourceType, filters: &[Filter]) -> Result<Vec<usize>, LangError> {
        let mut out = Vec::new();
        for (i, r) in self.zone()?.resources(kind).iter().enumerate() {
            if r.matches(filters)? {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn select(&mut self, target: &str, filters: &[Filter]) -> Result<(), LangError> {
        self.global_scope("select")?;
        let kind = ResourceType::parse(target)?;
        let found = self.matching(kind, filters)?;
        match found.as_slice() {
            [] => Err(no_match(kind, filters)),
            [i] => {
                let res = self.zone()?.resources(kind).swap_remove(*i);
                self.edit = Some(Edit { res, at: Some(*i) });
                Ok(())
            }
            _ => Err(LangError::Ambiguous(kind)),
        }
    }

    fn remove(
        &mut self,
        force: bool,
        target: &str,
        filters: &[Filter],
        value: Option<&Value>,
        con: &mut dyn Console,
    ) -> Result<(), LangError> {
        if let Some(e) = &mut self.edit {
            let Some(v) = value else {
                return Err(LangError::Usage(format!(
                    "remove: in the {} resource scope, remove takes a property and a value, e.g. 'remove options ro'",
                    e.res.kind()
                )));
            };
            e.res.props_mut().remove(target, v)?;
            return Ok(());
        }
        if value.is_some() {
            return Err(LangError::Scope {
                cmd: "remove <property> <value>".into(),
                scope: "resource",
            });
        }
        let kind = ResourceType::parse(target)?;
        let found = self.matching(kind, filters)?;
        if found.is_empty() {
            return Err(no_match(kind, filters));
        }
        if filters.is_empty() && found.len() > 1 && !force {
            let q = format!("Are you sure you want to remove ALL '{kind}' resources");
            match con.confirm(&q) {
                Some(true) => {}
                Some(false) => return Ok(()),
                None => return Err(LangError::NeedForce(format!("remove {kind}"))),
            }
        }
        let zone = self.zone_mut()?;
        for i in found.into_iter().rev() {
            zone.remove_resource(kind, i);
        }
        self.dirty = true;
        Ok(())
    }

    fn set(&mut self, prop: &str, value: &Value) -> Result<(), LangError> {
        if let Some(e) = &mut self.edit {
            e.res.props_mut().set(prop, value)?;
            return Ok(());
        }
        self.check_mutable(prop, "set")?;
        if prop == "zonename" {
            self.check_rename(value)?;
        }
        self.zone_mut()?.set_global(prop, value)?;
        self.dirty = true;
        Ok(())
    }

    fn clear(&mut self, prop: &str) -> Result<(), LangError> {
        if let Some(e) = &mut self.edit {
            e.res.props_mut().clear(prop)?;
            return Ok(());
        }
        self.check_mutable(prop, "clear")?;
        self.zone_mut()?.clear_global(prop)?;
        self.dirty = true;
        Ok(())
    }

    /// zonepath and brand are fixed once the zone is installed (`zoneadm move` moves it).
    fn check_mutable(&self, prop: &str, cmd: &str) -> Result<(), LangError> {
        self.zone()?;
        if matches!(prop, "zonepath" | "brand") && self.is_installed() {
            return Err(LangError::Installed {
                zone: self.name.clone(),
                what: format!("{cmd} {prop}"),
            });
        }
        Ok(())
    }

    fn check_rename(&self, value: &Value) -> Result<(), LangError> {
        let Value::Simple(new) = value else {
            return Ok(()); // set_global reports the bad value
        };
        crate::model::validate_zone_name(new)?;
        if *new == self.name {
            return Ok(());
        }
        if let Some(s) = self
            .state
            .filter(|s| !matches!(s, ZoneState::Configured | ZoneState::Installed))
        {
            return Err(LangError::CannotRename {
                zone: self.name.clone(),
                state: s,
            });
        }
        if self.store.entry(new)?.is_some() {
            return Err(LangError::NameTaken(new.clone()));
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), LangError> {
        self.resource_scope("end")?;
        let Some(edit) = self.edit.take() else {
            return Ok(());
        };
        let zone = self.zone_mut()?;
        if let Err(e) = zone.put_resource(edit.res.clone(), edit.at) {
            self.edit = Some(edit);
            return Err(e.into());
        }
        self.dirty = true;
        Ok(())
    }
}

fn no_match(kind: ResourceType, filters: &[Filter]) -> LangError {
    if filters.is_empty() {
        return LangError::NoneExists(kind);
    }
    let shown: Vec<String> = filters
        .iter()
        .map(|(k, v)| match v {
            Value::Simple(s) => format!("{k}={}", print::quote(s)),
            _ => format!("{k}=..."),
        })
        .collect();
    LangError::NoMatch {
        resource: kind,
        filters: shown.join(" "),
    }
}

/// `create -a PATH`: the configuration a `zoneadm detach` left at PATH (a zonepath, under the
/// alternate root), for this zone name and with PATH as its zonepath.
fn detached_zone(store: &Store, name: &str, path: &str) -> Result<Zone, LangError> {
    let zp = std::path::Path::new(path);
    if !zp.is_absolute() {
        return Err(LangError::Usage(format!(
            "create -a {path}: the zonepath must be absolute"
        )));
    }
    let file = crate::spec::bundle_dir(store.altroot(), zp).join("SUNWdetached.json");
    let text = std::fs::read(&file).map_err(|e| LangError::Io {
        path: file.clone(),
        source: e,
    })?;
    let old: Zone = serde_json::from_slice(&text).map_err(|e| {
        LangError::Usage(format!(
            "{}: not a detached zone's configuration: {e}",
            file.display()
        ))
    })?;
    Ok(Zone {
        zonename: name.to_string(),
        zonepath: Some(zp.to_path_buf()),
        ..old
    })
}
