//! `export` (a command file `-f` can replay) and `info` (the illumos listing).

use crate::model::{Prop, PropValue, Resource, ResourceType, Zone, GLOBAL_PROPS, RCTL_ALIASES};

/// Quotes `s` when the lexer would not read it back as one word.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with('#')
        && !s.chars().any(|c| {
            c.is_whitespace() || matches!(c, '"' | '\\' | ';' | '=' | '[' | ']' | '(' | ')')
        });
    if plain {
        s.to_string()
    } else {
        let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

/// The configuration as commands: `create -b`, the global properties, then every resource.
/// The zone name is not part of it, so it can configure another zone.
pub fn export(zone: &Zone) -> String {
    let mut out = String::from("create -b\n");
    for prop in GLOBAL_PROPS.iter().filter(|p| **p != "zonename") {
        let v = zone.global_value(prop).unwrap_or_default();
        if !v.is_empty() {
            out.push_str(&format!("set {prop}={}\n", quote(&v)));
        }
    }
    for kind in ResourceType::ALL {
        for r in zone.resources(kind) {
            out.push_str(&export_resource(&r));
        }
    }
    out
}

/// One resource as `add TYPE ... end`.
pub fn export_resource(r: &Resource) -> String {
    let mut out = format!("add {}\n", r.kind());
    for Prop { name, value } in r.props_ref().props() {
        match value {
            PropValue::Simple(Some(v)) => out.push_str(&format!("set {name}={}\n", quote(&v))),
            PropValue::Simple(None) => {}
            PropValue::List(items) => {
                for i in items {
                    out.push_str(&format!("add {name} {}\n", quote(&i)));
                }
            }
            PropValue::Complex(items) => {
                for i in items {
                    out.push_str(&format!("add {name} {i}\n"));
                }
            }
        }
    }
    out.push_str("end\n");
    out
}

/// `info` with no argument: every global property, the set rctl aliases in brackets, then
/// every resource.
pub fn info_all(zone: &Zone) -> String {
    let mut out = String::new();
    for prop in GLOBAL_PROPS {
        out.push_str(&info_global(zone, prop).unwrap_or_default());
    }
    for a in RCTL_ALIASES {
        if let Some(v) = zone.global_value(a.prop) {
            out.push_str(&format!("[{}: {v}]\n", a.prop));
        }
    }
    for kind in ResourceType::ALL {
        for r in zone.resources(kind) {
            out.push_str(&info_resource(&r, None));
        }
    }
    out
}

/// `info PROP` for a global property: `zonepath: /zones/a`. `None` if `prop` is not global.
/// An unset rctl alias prints nothing.
pub fn info_global(zone: &Zone, prop: &str) -> Option<String> {
    if !Zone::is_global_prop(prop) {
        return None;
    }
    Some(match zone.global_value(prop) {
        Some(v) if v.is_empty() => format!("{prop}: \n"),
        Some(v) => format!("{prop}: {}\n", quote_info(&v)),
        None => String::new(),
    })
}

fn quote_info(v: &str) -> String {
    if v.contains(char::is_whitespace) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// A resource: `fs:` then tab-indented properties (`raw not specified` when unset). With
/// `only`, just that property.
pub fn info_resource(r: &Resource, only: Option<&str>) -> String {
    let mut out = format!("{}:\n", r.kind());
    for Prop { name, value } in r.props_ref().props() {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        match value {
            PropValue::Simple(Some(v)) => out.push_str(&format!("\t{name}: {}\n", quote_info(&v))),
            PropValue::Simple(None) => out.push_str(&format!("\t{name} not specified\n")),
            PropValue::List(items) => out.push_str(&format!("\t{name}: [{}]\n", items.join(","))),
            PropValue::Complex(items) if items.is_empty() => {
                out.push_str(&format!("\t{name} not specified\n"))
            }
            PropValue::Complex(items) => {
                for i in items {
                    out.push_str(&format!("\t{name}: {i}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(quote("/zones/a"), "/zones/a");
        assert_eq!(quote("default,sys_time"), "default,sys_time");
        assert_eq!(quote("-m verbose"), "\"-m verbose\"");
        assert_eq!(quote("size=10m"), "\"size=10m\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("#x"), "\"#x\"");
        assert_eq!(quote(r#"a"b\"#), r#""a\"b\\""#);
    }

    #[test]
    fn info_layout() {
        let mut z = Zone::new("a");
        z.set_global("zonepath", &Value::simple("/zones/a"))
            .unwrap();
        z.set_global("cpu-shares", &Value::simple("5")).unwrap();
        let mut fs = Resource::new(ResourceType::Fs);
        for (k, v) in [
            ("dir", "/data"),
            ("special", "/export/data"),
            ("type", "lofs"),
        ] {
            fs.props_mut().set(k, &Value::simple(v)).unwrap();
        }
        fs.props_mut().add("options", &Value::simple("ro")).unwrap();
        z.put_resource(fs, None).unwrap();
        assert_eq!(
            info_all(&z),
            "zonename: a\nzonepath: /zones/a\nbrand: linux\nautoboot: false\nbootargs: \npool: \n\
             limitpriv: \nscheduling-class: \nip-type: exclusive\nhostid: \nfs-allowed: \nstorage: \nquota: \nuserns: \n\
             hostname: \nresolvers: \n\
             [cpu-shares: 5]\n\
             fs:\n\tdir: /data\n\tspecial: /export/data\n\traw not specified\n\ttype: lofs\n\toptions: [ro]\n\
             rctl:\n\tname: zone.cpu-shares\n\tvalue: (priv=privileged,limit=5,action=none)\n"
        );
        assert_eq!(info_global(&z, "zonepath").unwrap(), "zonepath: /zones/a\n");
        assert_eq!(info_global(&z, "max-lwps").unwrap(), "");
        assert_eq!(info_global(&z, "dir"), None);
    }
}
