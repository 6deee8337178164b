//! `zoneadm get` and `zoneadm lookup`: a zone as one JSON document, and zones selected by
//! `field=value` filters over those documents (in the spirit of SmartOS `vmadm get/lookup`).
//!
//! The document is the zone's configuration (the store's JSON, kebab-case keys: zonename, uuid,
//! zonepath, brand, autoboot, fs, rctl, ...) plus what is live: `state` (as `zoneadm list`
//! shows it), its `customer_metadata` (an object of strings), and while the zone is ready or
//! running `zoneid`, `init-pid` and `supervisor-pid` (`null` otherwise).

use serde_json::{Map, Value};
use zones::state::ZoneState;
use zones::store::{Store, StoreError};

use super::admin::effective_state;
use super::{ZoneInfo, ZonePaths};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "lookup: \"{0}\": expected field=value (field may be dotted, e.g. capped-memory.physical)"
    )]
    BadFilter(String),
}

/// One `field=value` condition of `lookup`. `field` is a key of the get document, or a dotted
/// path into it (`capped-memory.physical`, `fs.dir`: a list matches when any element does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub path: Vec<String>,
    pub value: String,
}

impl Filter {
    /// Parses `field=value`.
    pub fn parse(text: &str) -> Result<Filter, QueryError> {
        let (field, value) = text
            .split_once('=')
            .filter(|(f, _)| !f.is_empty() && !f.split('.').any(str::is_empty))
            .ok_or_else(|| QueryError::BadFilter(text.to_string()))?;
        Ok(Filter {
            path: field.split('.').map(str::to_string).collect(),
            value: value.to_string(),
        })
    }

    /// True when the document `doc` has `value` at `path`.
    pub fn matches(&self, doc: &Value) -> bool {
        matches_at(doc, &self.path, &self.value)
    }
}

fn matches_at(doc: &Value, path: &[String], want: &str) -> bool {
    match (doc, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|i| matches_at(i, path, want)),
        (Value::Object(m), Some((key, rest))) => {
            m.get(key).is_some_and(|v| matches_at(v, rest, want))
        }
        (_, Some(_)) => false,
        (Value::String(s), None) => s == want,
        (Value::Null, None) => want.is_empty(),
        (Value::Object(_), None) => false,
        (other, None) => serde_json::to_string(other).is_ok_and(|t| t == want),
    }
}

/// `zoneadm -z NAME get`: the configuration, state, ids and pids of zone `name`.
pub fn get(store: &Store, name: &str) -> Result<Value, QueryError> {
    let zone = store
        .load(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?;
    let recorded = store
        .state(name)?
        .ok_or_else(|| StoreError::NoSuchZone(name.to_string()))?;
    let state = effective_state(store, name, recorded);
    let live = matches!(
        state,
        ZoneState::Ready | ZoneState::Running | ZoneState::ShuttingDown
    );
    let info = live
        .then(|| ZoneInfo::load(&ZonePaths::new(store, name)))
        .flatten();
    let mut doc = match serde_json::to_value(&zone).expect("a Zone always serializes") {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    doc.insert("state".into(), state.to_string().into());
    // Unreadable metadata shows as null rather than failing the whole document.
    let md = super::metadata::load(store, name)
        .ok()
        .map(|m| serde_json::to_value(m).expect("strings serialize"));
    doc.insert("customer_metadata".into(), md.unwrap_or(Value::Null));
    let pid = |p: i32| (p > 0).then_some(p);
    if zone.brand == zones::model::Brand::Kvm {
        // The running VM's accelerator, or the one a boot would take now.
        let accel = super::kvm::accel_of(&ZonePaths::new(store, name), &zone);
        doc.insert(
            "accel".into(),
            accel.as_ref().map(|(n, _)| n.clone()).into(),
        );
        doc.insert("accel-reason".into(), accel.map(|(_, d)| d).into());
    }
    doc.insert("zoneid".into(), info.as_ref().map(|i| i.zoneid).into());
    doc.insert(
        "init-pid".into(),
        info.as_ref().and_then(|i| pid(i.init_pid)).into(),
    );
    doc.insert(
        "supervisor-pid".into(),
        info.as_ref().and_then(|i| pid(i.supervisor_pid)).into(),
    );
    Ok(Value::Object(doc))
}

/// `zoneadm lookup FILTER...`: the get documents of every configured zone matching all
/// `filters` (every zone when there are none), in index order.
pub fn lookup(store: &Store, filters: &[Filter]) -> Result<Vec<Value>, QueryError> {
    let mut out = Vec::new();
    for e in store.list()? {
        let doc = match get(store, &e.name) {
            Ok(d) => d,
            // Deleted between list and load: not a match.
            Err(QueryError::Store(StoreError::NoSuchZone(_))) => continue,
            Err(err) => return Err(err),
        };
        if filters.iter().all(|f| f.matches(&doc)) {
            out.push(doc);
        }
    }
    Ok(out)
}

/// The `zonename` of a get document.
pub fn zonename(doc: &Value) -> &str {
    doc.get("zonename").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> Filter {
        Filter::parse(s).unwrap()
    }

    #[test]
    fn filters_parse() {
        assert_eq!(
            f("capped-memory.physical=1G"),
            Filter {
                path: vec!["capped-memory".into(), "physical".into()],
                value: "1G".into()
            }
        );
        assert_eq!(f("bootargs=").value, "");
        assert_eq!(f("a=b=c").value, "b=c");
        for bad in ["state", "=x", "a..b=1", ".a=1"] {
            let e = Filter::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn filters_match_strings_numbers_bools_nulls_and_lists() {
        let doc = json!({
            "zonename": "web", "state": "running", "autoboot": true, "zoneid": 3,
            "bootargs": null, "capped-memory": {"physical": "1G"},
            "fs": [{"dir": "/a"}, {"dir": "/b"}], "fs-allowed": ["ext4"]
        });
        for yes in [
            "zonename=web",
            "state=running",
            "autoboot=true",
            "zoneid=3",
            "bootargs=",
            "capped-memory.physical=1G",
            "fs.dir=/b",
            "fs-allowed=ext4",
        ] {
            assert!(f(yes).matches(&doc), "{yes}");
        }
        for no in [
            "zonename=db",
            "autoboot=false",
            "zoneid=4",
            "missing=x",
            "capped-memory=1G",
            "capped-memory.swap=1G",
            "fs.dir=/c",
            "state.x=1",
        ] {
            assert!(!f(no).matches(&doc), "{no}");
        }
    }
}
