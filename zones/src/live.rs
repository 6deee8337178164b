//! Which configuration changes a running zone takes live (`zonecfg -r`).
//!
//! Only the caps the zone's cgroup carries can change under a running zone: capped-memory
//! physical and swap, capped-cpu, dedicated-cpu, capped-io, and the rctls `zone.cpu-shares`,
//! `zone.max-processes`, `zone.max-lwps` and `zone.zfs-io-priority` (see
//! `spec::zone_resources`). Everything else (fs, net, anet and their properties, the IPC
//! rctls, hostid, limitpriv, locked memory, ...) is read when the zone boots. `zonecfg -r`
//! refuses a commit holding any of those as a whole, naming each, so the running zone and the
//! stored configuration never silently part ways.

use std::collections::BTreeMap;

use crate::model::{CappedMemory, Rctl, Zone};

/// The rctls a running zone's cgroup takes live.
pub const LIVE_RCTLS: &[&str] = &[
    "zone.cpu-shares",
    "zone.max-processes",
    "zone.max-lwps",
    "zone.zfs-io-priority",
];

/// The changes from `old` to `new` that cannot be applied to the running zone, named as
/// zonecfg names them (`fs`, `anet`, `hostid`, `max-shm-memory`, `capped-memory locked`),
/// sorted. Empty when every change is a live cap (or nothing changed).
pub fn not_live(old: &Zone, new: &Zone) -> Vec<String> {
    let (a, b) = (boot_only(old), boot_only(new));
    let mut out = Vec::new();
    for (key, value) in &b {
        if key == "rctl" {
            out.extend(rctl_changes(old, new));
        } else if let (Some(id), Some(before)) = (resource_key(key), a.get(key)) {
            out.extend(resource_changes(key, id, before, value));
        } else if a.get(key) != Some(value) {
            out.push(match key.as_str() {
                "capped-memory" => "capped-memory locked".to_string(),
                _ => key.clone(),
            });
        }
    }
    out.sort();
    out
}

/// The property that tells apart the instances of a resource type held in a list.
fn resource_key(kind: &str) -> Option<&'static str> {
    match kind {
        "fs" => Some("dir"),
        "net" => Some("physical"),
        "anet" => Some("linkname"),
        "device" => Some("match"),
        "attr" => Some("name"),
        _ => None,
    }
}

/// The instances of resource `kind` added, removed (`fs dir=/data`) or changed (`anet
/// linkname=net0 maxbw`) between the JSON lists `a` and `b`.
fn resource_changes(
    kind: &str,
    id: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Vec<String> {
    let items =
        |v: &serde_json::Value| -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_object().cloned())
                .map(|o| {
                    let name = o.get(id).and_then(|x| x.as_str()).unwrap_or("").to_string();
                    (name, o)
                })
                .collect()
        };
    let (a, b) = (items(a), items(b));
    let find = |list: &[(String, serde_json::Map<String, serde_json::Value>)], n: &str| {
        list.iter().find(|(m, _)| m == n).map(|(_, o)| o.clone())
    };
    let mut out = Vec::new();
    for (name, o) in &b {
        match find(&a, name) {
            None => out.push(format!("{kind} {id}={name}")),
            Some(before) if &before != o => {
                let props: Vec<&str> = o
                    .iter()
                    .filter(|(k, v)| before.get(*k) != Some(*v))
                    .map(|(k, _)| k.as_str())
                    .collect();
                out.push(format!("{kind} {id}={name} {}", props.join(" ")));
            }
            Some(_) => {}
        }
    }
    for (name, _) in &a {
        if find(&b, name).is_none() {
            out.push(format!("{kind} {id}={name}"));
        }
    }
    out
}

/// `zone` as JSON fields with what a running zone takes live left out.
fn boot_only(zone: &Zone) -> BTreeMap<String, serde_json::Value> {
    let mut z = zone.clone();
    z.capped_memory = z.capped_memory.and_then(|m| {
        m.locked.map(|l| CappedMemory {
            locked: Some(l),
            ..Default::default()
        })
    });
    z.capped_cpu = None;
    z.dedicated_cpu = None;
    z.capped_io.clear();
    match serde_json::to_value(&z) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    }
}

/// The rctls (by their alias when they have one) that differ and are not live.
fn rctl_changes(old: &Zone, new: &Zone) -> Vec<String> {
    let values = |z: &Zone| -> BTreeMap<String, Rctl> {
        z.rctl
            .iter()
            .filter_map(|r| Some((r.name.clone()?, r.clone())))
            .filter(|(n, _)| !LIVE_RCTLS.contains(&n.as_str()))
            .collect()
    };
    let (a, b) = (values(old), values(new));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| n.strip_prefix("zone.").unwrap_or(n).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn zone() -> Zone {
        let mut z = Zone::new("web");
        z.set_global("zonepath", &Value::simple("/zones/web"))
            .unwrap();
        z
    }

    fn set(z: &mut Zone, prop: &str, v: &str) {
        z.set_global(prop, &Value::simple(v)).unwrap();
    }

    #[test]
    fn caps_are_live() {
        let old = zone();
        let mut new = old.clone();
        set(&mut new, "max-lwps", "100");
        set(&mut new, "cpu-shares", "20");
        set(&mut new, "max-processes", "50");
        new.capped_memory = Some(CappedMemory {
            physical: crate::model::Size::parse("physical", "1g").ok(),
            ..Default::default()
        });
        new.capped_cpu = Some(crate::model::CappedCpu {
            ncpus: crate::model::Ncpus::parse("ncpus", "1.5").ok(),
        });
        assert!(
            not_live(&old, &new).is_empty(),
            "{:?}",
            not_live(&old, &new)
        );
        assert!(not_live(&new, &old).is_empty());
    }

    #[test]
    fn boot_time_changes_are_each_named() {
        let old = zone();
        let mut new = old.clone();
        set(&mut new, "max-shm-memory", "1g");
        set(&mut new, "max-sem-ids", "10");
        set(&mut new, "hostid", "80f0c086");
        set(&mut new, "max-lwps", "100");
        new.capped_memory = Some(CappedMemory {
            locked: crate::model::Size::parse("locked", "1m").ok(),
            ..Default::default()
        });
        new.fs.push(crate::model::Fs {
            dir: Some("/data".into()),
            ..Default::default()
        });
        new.anet.push(crate::model::Anet {
            linkname: Some("net0".into()),
            ..Default::default()
        });
        assert_eq!(
            not_live(&old, &new),
            [
                "anet linkname=net0",
                "capped-memory locked",
                "fs dir=/data",
                "hostid",
                "max-sem-ids",
                "max-shm-memory"
            ]
        );
        // Taking one away is a change too.
        assert_eq!(not_live(&new, &old).len(), 6);
        // A property of an instance: named with the instance.
        let mut capped = new.clone();
        capped.anet[0].maxbw = crate::model::Bandwidth::parse("maxbw", "10M").ok();
        assert_eq!(not_live(&new, &capped), ["anet linkname=net0 maxbw"]);
    }
}
