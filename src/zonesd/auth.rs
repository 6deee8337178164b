//! Who may do what, checked before every /api route: a bearer token (401 without a known one),
//! then its role against what the request needs (403), and every change written to the audit
//! log with its result.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::{self, Record};
use super::console;
use super::error::{ApiError, ErrorNote};
use super::tokens::{Role, TokenEntry};
use super::App;

/// Paths whose changes need an admin (and tokens, even to read).
const ADMIN_AREAS: [&str; 3] = ["/api/images", "/api/links", "/api/tokens"];

fn under(path: &str, area: &str) -> bool {
    path == area || path.strip_prefix(area).is_some_and(|r| r.starts_with('/'))
}

/// The role `method path` needs: viewer reads; changes need an operator, or an admin for
/// images, links and tokens; tokens are admin's even to read.
pub fn required(method: &Method, path: &str) -> Role {
    let admin_area = ADMIN_AREAS.iter().any(|a| under(path, a));
    if under(path, "/api/tokens") {
        Role::Admin
    } else if console::is_console(path) {
        // A console acts on the zone: what is typed runs there.
        Role::Operator
    } else if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else if admin_area {
        Role::Admin
    } else {
        Role::Operator
    }
}

/// A change is audited: every method but the reads, and opening a zone's console.
fn is_change(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || console::is_console(path)
}

/// The token of `Authorization: Bearer TOKEN`, or, on a WebSocket upgrade (browsers cannot
/// set headers on one), of the subprotocol `bearer.TOKEN`.
fn bearer(req: &Request) -> Option<&str> {
    let Some(v) = req.headers().get(header::AUTHORIZATION) else {
        return subprotocol_bearer(req);
    };
    let (scheme, token) = v.to_str().ok()?.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn subprotocol_bearer(req: &Request) -> Option<&str> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade || req.method() != Method::GET {
        return None;
    }
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(console::BEARER_PREFIX))
        .filter(|t| !t.is_empty())
}

/// The token of `req`, or the response refusing it.
fn authenticate(app: &App, req: &Request) -> Result<TokenEntry, ApiError> {
    let token = bearer(req).ok_or(ApiError::Unauthorized)?;
    app.tokens
        .verify(token)
        .map_err(ApiError::internal)?
        .ok_or(ApiError::Unauthorized)
}

/// The middleware: authenticate, authorise, run, audit. A change runs in a task of its own,
/// so that it is finished and audited even when its client goes away half-way.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if !is_change(req.method(), req.uri().path()) {
        return handle(app, req, next).await;
    }
    match tokio::spawn(handle(app, req, next)).await {
        Ok(resp) => resp,
        Err(e) => ApiError::Internal(format!("zonesd: the request failed: {e}")).into_response(),
    }
}

async fn handle(app: Arc<App>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let who = authenticate(&app, &req);
    let resp = match &who {
        Err(e) => ApiError::to_response(e),
        Ok(t) => {
            let need = required(&method, &path);
            if t.role < need {
                ApiError::Forbidden(format!(
                    "token '{}' has role {}: {method} {path} needs {}",
                    t.name,
                    t.role.name(),
                    need.name()
                ))
                .into_response()
            } else {
                let mut req = req;
                req.extensions_mut().insert(t.clone());
                next.run(req).await
            }
        }
    };
    if is_change(&method, &path) {
        let t = who.as_ref().ok();
        let record = Record {
            time: audit::now(),
            token_id: t.map(|t| t.id.clone()),
            token_name: t.map(|t| t.name.clone()),
            role: t.map(|t| t.role.name().to_string()),
            method: method.to_string(),
            target: audit::target_of(&path),
            path,
            status: resp.status().as_u16(),
            error: resp.extensions().get::<ErrorNote>().map(|n| n.0.clone()),
            console: None,
        };
        if let Err(e) = app.audit.append(&record) {
            // A change that cannot be audited is not let through silently.
            eprintln!("zonesd: {e}");
            if resp.status().is_success() {
                return ApiError::Internal(format!("{e} (the change was made)")).into_response();
            }
        }
    }
    resp
}

impl ApiError {
    fn to_response(e: &ApiError) -> Response {
        match e {
            ApiError::Unauthorized => ApiError::Unauthorized.into_response(),
            other => ApiError::Internal(other.to_string()).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_needed() {
        assert_eq!(required(&Method::GET, "/api/zones"), Role::Viewer);
        assert_eq!(required(&Method::POST, "/api/zones"), Role::Operator);
        assert_eq!(required(&Method::DELETE, "/api/zones/u"), Role::Operator);
        assert_eq!(required(&Method::GET, "/api/images"), Role::Viewer);
        assert_eq!(required(&Method::DELETE, "/api/images/i"), Role::Admin);
        assert_eq!(required(&Method::GET, "/api/tokens"), Role::Admin);
        assert_eq!(required(&Method::POST, "/api/imagesx"), Role::Operator);
        assert_eq!(
            required(&Method::GET, "/api/zones/u/console"),
            Role::Operator
        );
        assert!(is_change(&Method::GET, "/api/zones/u/console"));
        assert!(!is_change(&Method::GET, "/api/zones/u"));
    }

    fn ws_req(protocols: &str, auth: Option<&str>) -> Request {
        let mut b = Request::builder()
            .uri("/api/zones/u/console")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_PROTOCOL, protocols);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_websocket_may_carry_its_token_as_a_subprotocol() {
        let r = ws_req("zonesd.console, bearer.zsd_abc", None);
        assert_eq!(bearer(&r), Some("zsd_abc"));
        let r = ws_req("zonesd.console, bearer.zsd_abc", Some("Bearer zsd_h"));
        assert_eq!(bearer(&r), Some("zsd_h"));
        assert_eq!(bearer(&ws_req("zonesd.console", None)), None);
        assert_eq!(bearer(&ws_req("zonesd.console, bearer.", None)), None);
        // Not an upgrade: no token from the header.
        let r = Request::builder()
            .uri("/api/zones")
            .header(header::SEC_WEBSOCKET_PROTOCOL, "bearer.zsd_abc")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(bearer(&r), None);
    }
}
