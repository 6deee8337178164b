//! The zonecfg model as JSON: `zonecfg -z Z export -j` prints the [`Zone`] as JSON, and
//! `zonecfg -z Z import -j FILE` reads one back.
//!
//! An import is checked exactly like typed commands: the document is turned into the command
//! script `export` would print (`create -F -b`, `set ...`, `add ... end`) and replayed in a
//! [`Session`], so every value, resource and cross-property rule of the language applies. The
//! replay stops at the first error without committing, so an invalid document changes nothing.
//! The zone name and uuid come from the zone being configured, not from the document (like a
//! text `export`, a JSON document can configure another zone).

use serde_json::Value as Json;

use super::{parse, print, Console, Flow, LangError, Session};
use crate::model::Zone;

/// The configuration as pretty-printed JSON (the store's own form), with a final newline.
pub fn export_json(zone: &Zone) -> String {
    let mut text = serde_json::to_string_pretty(zone).expect("a Zone always serializes");
    text.push('\n');
    text
}

/// The command script an import of `text` replays: `create -F -b`, then the document's
/// properties and resources. Fails on malformed JSON, on values the model's JSON form refuses,
/// and on keys the model does not know (reported with their JSON path).
pub fn import_script(text: &str) -> Result<String, LangError> {
    let raw: Json = serde_json::from_str(text).map_err(|e| json_err(e.to_string()))?;
    if !raw.is_object() {
        return Err(json_err("expected an object (a zone configuration)".into()));
    }
    let mut raw = raw;
    // The name and uuid are the configured zone's; tolerate documents without them.
    if let Some(obj) = raw.as_object_mut() {
        obj.entry("zonename").or_insert_with(|| "imported".into());
        obj.entry("uuid").or_insert_with(|| "".into());
    }
    let zone: Zone = serde_json::from_value(raw.clone()).map_err(|e| json_err(e.to_string()))?;
    let known = serde_json::to_value(&zone).expect("a Zone always serializes");
    check_known_keys(&raw, &known, "$")?;
    let body = print::export(&zone);
    let body = body.strip_prefix("create -b\n").unwrap_or(&body);
    Ok(format!("create -F -b\n{body}"))
}

/// Replays the JSON document `text` in `session` and commits it. On any error nothing is
/// committed (the session's configuration is left as the replay stopped it).
pub fn import(session: &mut Session, text: &str, con: &mut dyn Console) -> Result<(), LangError> {
    let script = import_script(text)?;
    for st in parse(&script)? {
        if session.run(&st.cmd, con)? == Flow::Exit {
            return Ok(());
        }
    }
    session.finish(con)
}

fn json_err(msg: String) -> LangError {
    LangError::Usage(format!("invalid zone JSON: {msg}"))
}

/// Every key of `raw` (recursively) must appear in `known`, the re-serialized model; `null`
/// values are tolerated (an unset optional property).
fn check_known_keys(raw: &Json, known: &Json, path: &str) -> Result<(), LangError> {
    match (raw, known) {
        (Json::Object(r), Json::Object(k)) => {
            for (key, v) in r {
                let sub = format!("{path}.{key}");
                match k.get(key) {
                    Some(kv) => check_known_keys(v, kv, &sub)?,
                    None if v.is_null() => {}
                    None => return Err(json_err(format!("{sub}: unknown property"))),
                }
            }
            Ok(())
        }
        (Json::Array(r), Json::Array(k)) => {
            for (i, (rv, kv)) in r.iter().zip(k).enumerate() {
                check_known_keys(rv, kv, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Quiet;
    use crate::store::tests::TempRoot;
    use crate::store::Store;

    fn configure(store: &Store, name: &str, script: &str) {
        let mut s = Session::open(store, name).unwrap();
        for st in parse(script).unwrap() {
            s.run(&st.cmd, &mut Quiet).unwrap();
        }
        s.finish(&mut Quiet).unwrap();
    }

    fn import_into(store: &Store, name: &str, text: &str) -> Result<(), String> {
        let mut s = Session::open(store, name).map_err(|e| e.to_string())?;
        import(&mut s, text, &mut Quiet).map_err(|e| e.to_string())
    }

    const FULL: &str = "create; set zonepath=/zones/a; set autoboot=true; set max-processes=100; \
        add fs; set dir=/data; set special=/srv/data; set type=lofs; add options ro; end; \
        add attr; set name=owner; set type=string; set value=ops; end; \
        add capped-memory; set physical=512m; end";

    #[test]
    fn export_then_import_into_another_zone_round_trips() {
        let root = TempRoot::new("json-roundtrip");
        let store = root.store();
        configure(&store, "a", FULL);
        let a = store.load("a").unwrap().unwrap();
        let text = export_json(&a);
        let back: Zone = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);

        let doc = text.replace("/zones/a", "/zones/b");
        import_into(&store, "b", &doc).unwrap();
        let b = store.load("b").unwrap().unwrap();
        assert_eq!(b.zonename, "b");
        assert_ne!(b.uuid, a.uuid, "b gets its own uuid");
        let mut expect = a.clone();
        expect.zonename = "b".into();
        expect.uuid = b.uuid.clone();
        expect.zonepath = Some("/zones/b".into());
        assert_eq!(b, expect);
    }

    #[test]
    fn importing_over_an_existing_zone_keeps_its_uuid() {
        let root = TempRoot::new("json-over");
        let store = root.store();
        configure(&store, "a", FULL);
        let before = store.load("a").unwrap().unwrap();
        let mut doc: Json = serde_json::from_str(&export_json(&before)).unwrap();
        doc["autoboot"] = false.into();
        doc["uuid"] = "someone-else".into();
        import_into(&store, "a", &doc.to_string()).unwrap();
        let after = store.load("a").unwrap().unwrap();
        assert!(!after.autoboot);
        assert_eq!(after.uuid, before.uuid);
    }

    #[test]
    fn invalid_documents_change_nothing() {
        let root = TempRoot::new("json-bad");
        let store = root.store();
        configure(&store, "a", FULL);
        let before = store.load("a").unwrap().unwrap();
        let good: Json = serde_json::from_str(&export_json(&before)).unwrap();
        let cases: Vec<(Json, &str)> = vec![
            (serde_json::json!([1]), "expected an object"),
            (
                {
                    let mut d = good.clone();
                    d["zonepath"] = "relative/path".into();
                    d
                },
                "zonepath",
            ),
            (
                {
                    let mut d = good.clone();
                    d["bogus"] = 1.into();
                    d
                },
                "$.bogus: unknown property",
            ),
            (
                {
                    let mut d = good.clone();
                    d["fs"][0]["colour"] = "red".into();
                    d
                },
                "$.fs[0].colour: unknown property",
            ),
            (
                {
                    let mut d = good.clone();
                    d["capped-memory"]["physical"] = "lots".into();
                    d
                },
                "lots",
            ),
            (
                {
                    let mut d = good.clone();
                    d["fs"][0]["type"] = "proc".into();
                    d
                },
                "proc",
            ),
            (
                {
                    let mut d = good.clone();
                    d["zonepath"] = Json::Null;
                    d
                },
                "zonepath",
            ),
        ];
        for (doc, needle) in cases {
            let e = import_into(&store, "a", &doc.to_string()).unwrap_err();
            assert!(e.contains(needle), "{doc}: {e}");
            assert_eq!(
                store.load("a").unwrap().unwrap(),
                before,
                "{doc} changed the zone"
            );
        }
        assert!(import_into(&store, "a", "{not json").is_err());
        // A new zone from an invalid document is not created either.
        let mut d = good.clone();
        d["zonepath"] = "nope".into();
        assert!(import_into(&store, "c", &d.to_string()).is_err());
        assert!(store.load("c").unwrap().is_none());
    }
}
