//! The zonecfg command language: [`lexer`], [`parser`] into [`Command`]s, and a [`Session`]
//! that interprets them over a zone's configuration (global scope and resource scope), with
//! [`print`] for `info` and `export`.

pub mod complete;
pub mod input;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod print;
mod session;

use std::path::PathBuf;

pub use parser::{parse, Command, CreateSource, Filter, Stmt};
pub use session::{CommitHook, Flow, Session};

use crate::model::{ModelError, ResourceType};
use crate::state::{StateError, ZoneState};
use crate::store::StoreError;

/// A syntax error, with the line (from 1) it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// Why a zonecfg command failed.
#[derive(Debug, thiserror::Error)]
pub enum LangError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error("{0}: No such zone configured")]
    NoSuchZone(String),
    #[error("The {cmd} command only makes sense in the {scope} scope.")]
    Scope { cmd: String, scope: &'static str },
    #[error("{0} resource incomplete; use 'end' to finish it or 'cancel' to drop it")]
    ResourceIncomplete(ResourceType),
    #[error("Zone {0} already exists; create not allowed (use 'create -F' to overwrite it).")]
    Exists(String),
    #[error("Zone {zone} already installed; {what} not allowed.")]
    Installed { zone: String, what: String },
    #[error("Zone {zone} is {state}; set zonename not allowed.")]
    CannotRename { zone: String, state: ZoneState },
    #[error("zone '{0}' already exists; set zonename not allowed")]
    NameTaken(String),
    #[error("No {resource} resource matches {filters}.")]
    NoMatch {
        resource: ResourceType,
        filters: String,
    },
    #[error("No {0} resource exists.")]
    NoneExists(ResourceType),
    #[error("More than one {0} resource matches; give more properties to select just one.")]
    Ambiguous(ResourceType),
    #[error("{0}: confirmation needed; use -F in a non-interactive session")]
    NeedForce(String),
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not supported")]
    Unsupported(String),
    /// Live reconfiguration (`zonecfg -r`) could not apply the change to the running zone.
    #[error("{0}; the configuration was not committed")]
    Live(String),
}

/// Where a session writes and how it asks questions.
pub trait Console {
    /// Normal output (stdout).
    fn out(&mut self, text: &str);
    /// Diagnostics (stderr), for messages printed before a question.
    fn err(&mut self, text: &str);
    /// Asks a yes/no question; `None` when nobody can answer (non-interactive).
    fn confirm(&mut self, question: &str) -> Option<bool>;
    /// True when [`Console::confirm`] can get an answer (an interactive session).
    fn can_confirm(&self) -> bool;
}

/// A console that discards all output and cannot ask questions: for callers with nobody
/// to talk to (tests, the fuzz driver).
pub struct Quiet;

impl Console for Quiet {
    fn out(&mut self, _: &str) {}
    fn err(&mut self, _: &str) {}
    fn confirm(&mut self, _: &str) -> Option<bool> {
        None
    }
    fn can_confirm(&self) -> bool {
        false
    }
}

/// The properties `help` lists: the global ones (scope `None`), then each resource type's.
pub fn help_properties() -> Vec<(Option<ResourceType>, Vec<&'static str>)> {
    std::iter::once(None)
        .chain(ResourceType::ALL.into_iter().map(Some))
        .map(|scope| (scope, complete::property_names(scope)))
        .collect()
}

/// The `help` text, for all commands or one.
pub fn help(topic: Option<&str>) -> String {
    const USAGE: [(&str, &str); 16] = [
        ("add", "add <resource-type>\t(global scope)\n\tadd <property-name> <property-value>\t(resource scope)"),
        ("cancel", "cancel\t(resource scope: drop the resource being edited)"),
        ("clear", "clear <property-name>"),
        ("commit", "commit\t(verify, then write the configuration)"),
        ("create", "create [-F] [ -b | -t <template> ]\t(-b: blank; -t: copy a configured zone, or SUNWdefault/SUNWblank)"),
        ("delete", "delete [-F]\t(remove the configuration now; the zone must be configured, not installed)"),
        ("end", "end\t(resource scope: check the resource and add it)"),
        ("exit", "exit [-F]\t(commit if needed and leave; -F leaves without committing)"),
        ("export", "export [-f <output-file>]\t(print commands that recreate this configuration)"),
        ("help", "help [<command>]"),
        ("info", "info [<property-name> | <resource-type> [<property-name>=<value>]*]"),
        ("remove", "remove [-F] <resource-type> [<property-name>=<value>]*\t(global scope)\n\tremove <property-name> <property-value>\t(resource scope)"),
        ("revert", "revert [-F]\t(back to the last committed configuration)"),
        ("select", "select <resource-type> [<property-name>=<value>]*"),
        ("set", "set <property-name>=<property-value>"),
        ("verify", "verify"),
    ];
    const TAIL: &str =
        "\nValues: simple (quoted with \"\" if needed), lists [a,b], complex (name=value,...)\n\
Global property values: brand linux|app, ip-type exclusive|shared,\n\
\tstorage overlay|dir|btrfs[:PATH]|zfs:POOL/DATASET\n";
    match topic.and_then(|t| USAGE.iter().find(|(c, _)| *c == t)) {
        Some((_, u)) => format!("usage:\n\t{u}\n"),
        None => {
            let mut s = String::from("usage:\n");
            for (_, u) in USAGE {
                s.push_str(&format!("\t{u}\n"));
            }
            let types: Vec<&str> = ResourceType::ALL.iter().map(|t| t.name()).collect();
            s.push_str(&format!("\nResource types: {}\n", types.join(", ")));
            for (scope, props) in help_properties() {
                let what = scope.map_or("global".to_string(), |t| t.name().to_string());
                s.push_str(&format!("Properties ({what}): {}\n", props.join(", ")));
            }
            s.push_str(TAIL);
            s
        }
    }
}

#[cfg(test)]
mod tests;
