//! Who may do what, checked before every /api route: a bearer token (401 without a known one),
//! then its role against what the request needs (403), and every change written to the audit
//! log with its result.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::{self, Record};
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
    } else if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else if admin_area {
        Role::Admin
    } else {
        Role::Operator
    }
}

fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
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
    if !is_change(req.method()) {
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
    if is_change(&method) {
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
    }
}
