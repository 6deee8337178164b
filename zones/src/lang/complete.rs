//! Tab completion for interactive zonecfg, as illumos's libtecla completer offers it:
//! command names, resource types, property names (global or of the resource being edited)
//! and the values of properties that take one of a fixed set of words.

use crate::model::{Resource, ResourceType, GLOBAL_PROPS, RCTL_ALIASES};

/// The commands, as `help` lists them.
pub const COMMANDS: [&str; 16] = [
    "add", "cancel", "clear", "commit", "create", "delete", "end", "exit", "export", "help",
    "info", "remove", "revert", "select", "set", "verify",
];

/// The words a property takes, for properties with a fixed set.
fn values(scope: Option<ResourceType>, prop: &str) -> &'static [&'static str] {
    match (scope, prop) {
        (None, "brand") => &["linux", "app"],
        (None, "autoboot" | "userns") => &["true", "false"],
        (None, "ip-type") => &["exclusive", "shared"],
        (None, "scheduling-class") => &["FSS"],
        (None, "storage") => &["overlay", "dir", "btrfs", "zfs:"],
        (Some(ResourceType::Fs), "type") => &["lofs", "tmpfs", "ext4", "xfs", "btrfs"],
        (Some(ResourceType::Attr), "type") => &["boolean", "int", "string", "uint"],
        (Some(ResourceType::Anet), "link-protection") => &[
            "mac-nospoof",
            "ip-nospoof",
            "dhcp-nospoof",
            "restricted",
            "none",
        ],
        (Some(ResourceType::Anet), "priority") => &["low", "medium", "high"],
        _ => &[],
    }
}

/// The property names settable in `scope` (global: with the rctl aliases).
pub fn property_names(scope: Option<ResourceType>) -> Vec<&'static str> {
    match scope {
        None => GLOBAL_PROPS
            .iter()
            .copied()
            .chain(RCTL_ALIASES.iter().map(|a| a.prop))
            .collect(),
        Some(kind) => Resource::new(kind)
            .props_ref()
            .props()
            .into_iter()
            .map(|p| p.name)
            .collect(),
    }
}

fn resource_types() -> impl Iterator<Item = &'static str> {
    ResourceType::ALL.into_iter().map(ResourceType::name)
}

/// Completions of the word that ends `line` (the text before the cursor), in a session whose
/// scope is `scope` (the type of the resource being edited, `None` in the global scope):
/// where the word starts in `line`, and the candidates that replace it, sorted.
pub fn complete(line: &str, scope: Option<ResourceType>) -> (usize, Vec<String>) {
    // Only the statement the cursor is in counts: `add fs; set d<Tab>` completes `set`'s word.
    let stmt_start = line.rfind([';', '\n']).map_or(0, |i| i + 1);
    let stmt = &line[stmt_start..];
    let word_start = stmt
        .rfind(|c: char| c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    let word = &stmt[word_start..];
    let before: Vec<&str> = stmt[..word_start]
        .split_ascii_whitespace()
        .filter(|w| !w.starts_with('-'))
        .collect();
    let mut start = stmt_start + word_start;
    let pick = |cands: &mut dyn Iterator<Item = String>, prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = cands.filter(|c| c.starts_with(prefix)).collect();
        v.sort();
        v.dedup();
        v
    };
    let props_eq = |scope| property_names(scope).into_iter().map(|p| format!("{p}="));
    let cands = match before.as_slice() {
        [] => pick(&mut COMMANDS.iter().map(|c| c.to_string()), word),
        ["help"] => pick(&mut COMMANDS.iter().map(|c| c.to_string()), word),
        ["set"] => match word.split_once('=') {
            Some((prop, value)) => {
                start += prop.len() + 1;
                pick(
                    &mut values(scope, prop).iter().map(|v| v.to_string()),
                    value,
                )
            }
            None => pick(&mut props_eq(scope), word),
        },
        ["clear"] => pick(
            &mut property_names(scope).into_iter().map(String::from),
            word,
        ),
        ["add" | "remove"] if scope.is_some() => pick(
            &mut property_names(scope).into_iter().map(String::from),
            word,
        ),
        ["add" | "select" | "remove"] => pick(&mut resource_types().map(String::from), word),
        ["info"] if scope.is_none() => pick(
            &mut resource_types()
                .chain(property_names(None))
                .map(String::from),
            word,
        ),
        ["select" | "remove" | "info", kind, ..] if scope.is_none() => {
            match ResourceType::parse(kind) {
                Ok(kind) => pick(&mut props_eq(Some(kind)), word),
                Err(_) => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    (start, cands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(line: &str, scope: Option<ResourceType>) -> (usize, Vec<String>) {
        complete(line, scope)
    }

    #[test]
    fn commands_types_properties_and_values() {
        assert_eq!(c("com", None), (0, vec!["commit".to_string()]));
        assert_eq!(c("c", None).1, ["cancel", "clear", "commit", "create"]);
        assert_eq!(
            c("add capped-", None),
            (
                4,
                vec![
                    "capped-cpu".into(),
                    "capped-io".into(),
                    "capped-memory".into()
                ]
            )
        );
        assert_eq!(c("select f", None).1, ["fs"]);
        assert_eq!(c("set zonep", None), (4, vec!["zonepath=".to_string()]));
        assert_eq!(
            c("set ip-type=e", None),
            (12, vec!["exclusive".to_string()])
        );
        assert_eq!(
            c("set max-shm", None).1,
            ["max-shm-ids=", "max-shm-memory="]
        );
        // In a resource's scope: its properties, not the global ones.
        assert_eq!(
            c("set phy", Some(ResourceType::CappedMemory)).1,
            ["physical="]
        );
        assert_eq!(
            c("set zonep", Some(ResourceType::Fs)).1,
            Vec::<String>::new()
        );
        assert_eq!(c("add op", Some(ResourceType::Fs)).1, ["options"]);
        assert_eq!(
            c("add fs; set sp", Some(ResourceType::Fs)),
            (12, vec!["special=".to_string()])
        );
        assert_eq!(c("select fs d", None).1, ["dir="]);
        assert_eq!(c("remove -F fs d", None).1, ["dir="]);
        assert_eq!(c("help ex", None).1, ["exit", "export"]);
        assert!(c("frob ", None).1.is_empty());
    }

    #[test]
    fn every_command_is_in_help_and_every_help_property_completes() {
        let help = super::super::help(None);
        for cmd in COMMANDS {
            assert!(help.contains(&format!("\t{cmd}")), "{cmd} not in help");
        }
        for kind in ResourceType::ALL {
            assert!(help.contains(kind.name()), "{kind} not in help");
        }
        for (scope, props) in super::super::help_properties() {
            for p in props {
                assert!(help.contains(p), "{p} not in help");
                assert_eq!(
                    c(&format!("set {p}"), scope).1.first(),
                    Some(&format!("{p}="))
                );
            }
        }
    }
}
