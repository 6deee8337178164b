//! zonesd: the host's API daemon. One concern per module: `cli` (argv, the `token` verbs),
//! `listen` (Unix socket, loopback TCP, TLS), `tokens` (bearer tokens, stored hashed), `auth`
//! (who may do what), `audit` (a JSON line per change), `api` (the routes), `tools` (zone
//! tools as child processes), `events` (the event log as Server-Sent Events), `console` (a
//! zone's console over a WebSocket), `openapi` (the document), `error` (the JSON error shape),
//! `web` (the embedded web console), `cors` (cross-origin calls from another zonesd's console).
//!
//! The fork rule (docs/ARCHITECTURE.md): a zone's supervisor must be forked by a
//! single-threaded process, so every zone action is one of the zone tools (`vmadm`,
//! `zoneadm`, `imgadm`, `dladm`) run as a child process; zonesd itself only reads (the store,
//! zonestat's figures, the event log) in-process.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod console;
pub mod cors;
pub mod error;
pub mod events;
pub mod listen;
pub mod openapi;
pub mod tokens;
pub mod tools;
pub mod web;

use std::path::PathBuf;

/// What every request handler shares.
pub struct App {
    /// `-R ALTROOT`, as given (None: `/`).
    pub altroot: Option<PathBuf>,
    pub tokens: tokens::TokenStore,
    pub audit: audit::AuditLog,
    pub tools: tools::Tools,
    /// `--cors-origin`: the origins whose pages may call /api (none by default).
    pub cors: std::sync::Arc<cors::Origins>,
}

impl App {
    pub fn new(altroot: Option<PathBuf>) -> App {
        let root = altroot.clone().unwrap_or_else(|| PathBuf::from("/"));
        App {
            tokens: tokens::TokenStore::new(&root),
            audit: audit::AuditLog::new(&root),
            tools: tools::Tools::new(altroot.clone()),
            cors: Default::default(),
            altroot,
        }
    }

    /// The zone store of this root.
    pub fn store(&self) -> Result<zones::store::Store, error::ApiError> {
        zones::store::Store::open(self.altroot.as_deref()).map_err(error::ApiError::internal)
    }
}
