//! What `create` starts from: the default template (`create`, like illumos `SUNWdefault`),
//! a blank configuration (`create -b`, `SUNWblank`) or another zone (`create -t SOURCE`).

use crate::model::Zone;
use crate::store::{Store, StoreError};

/// The illumos names of the two built-in templates, accepted by `create -t`.
pub const DEFAULT_TEMPLATE: &str = "SUNWdefault";
pub const BLANK_TEMPLATE: &str = "SUNWblank";

/// `create`: brand linux, autoboot false, ip-type exclusive, no resources.
pub fn default_zone(name: &str) -> Zone {
    // Zone::new already carries the defaults of this platform; the default template adds
    // nothing on top of them today, but is kept apart so it can (e.g. default devices).
    Zone::new(name)
}

/// `create -b`: nothing but the required defaults (brand linux, ip-type exclusive).
pub fn blank(name: &str) -> Zone {
    Zone::new(name)
}

/// `create -t SOURCE` for a configured zone: a copy of its configuration under `name`, with a
/// new uuid and without the zonepath (two zones cannot share one).
pub fn from_zone(name: &str, source: &Zone) -> Zone {
    let fresh = Zone::new(name);
    Zone {
        zonename: fresh.zonename,
        uuid: fresh.uuid,
        zonepath: None,
        ..source.clone()
    }
}

/// Resolves `create -t TEMPLATE`: a built-in template name or a configured zone.
pub fn from_template(store: &Store, name: &str, template: &str) -> Result<Zone, StoreError> {
    match template {
        DEFAULT_TEMPLATE => Ok(default_zone(name)),
        BLANK_TEMPLATE => Ok(blank(name)),
        source => store
            .load(source)?
            .map(|z| from_zone(name, &z))
            .ok_or_else(|| StoreError::NoSuchZone(source.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Brand, IpType, Value};
    use crate::store::tests::TempRoot;

    #[test]
    fn default_and_blank() {
        for z in [default_zone("a"), blank("a")] {
            assert_eq!(z.zonename, "a");
            assert_eq!(z.brand, Brand::Linux);
            assert!(!z.autoboot);
            assert_eq!(z.ip_type, IpType::Exclusive);
            assert!(z.zonepath.is_none() && z.fs.is_empty() && z.rctl.is_empty());
        }
    }

    #[test]
    fn from_another_zone() {
        let root = TempRoot::new("tmpl");
        let store = root.store();
        let mut src = Zone::new("src");
        src.set_global("zonepath", &Value::simple("/zones/src"))
            .unwrap();
        src.set_global("cpu-shares", &Value::simple("7")).unwrap();
        src.set_global("brand", &Value::simple("app")).unwrap();
        let lock = store.lock("src").unwrap();
        store.save(&lock, &src).unwrap();
        let z = from_template(&store, "b", "src").unwrap();
        assert_eq!(z.zonename, "b");
        assert_ne!(z.uuid, src.uuid);
        assert_eq!(z.zonepath, None);
        assert_eq!(z.brand, Brand::App);
        assert_eq!(z.rctl, src.rctl);
        assert_eq!(
            from_template(&store, "b", "SUNWdefault").unwrap().brand,
            Brand::Linux
        );
        assert_eq!(
            from_template(&store, "b", "nope").unwrap_err().to_string(),
            "nope: No such zone configured"
        );
    }
}
