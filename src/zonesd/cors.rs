//! Cross-origin calls to /api: the fleet view served by one zonesd calls others. An origin
//! is allowed only when named by `--cors-origin ORIGIN` (repeatable; none by default). An
//! allowed origin's preflight (OPTIONS with Access-Control-Request-Method) is answered here,
//! before the token check (browsers send no Authorization on a preflight); its other
//! requests get Access-Control-Allow-Origin and still need their bearer token. Credentials
//! (cookies) are never allowed: tokens travel only in the Authorization header.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CorsError {
    #[error("--cors-origin {0:?}: give an origin as scheme://host[:port] (http or https, no path), e.g. https://console.example:9443")]
    Bad(String),
}

/// The allowed origins, as browsers send them (`scheme://host[:port]`, lower case).
#[derive(Debug, Default, Clone)]
pub struct Origins(pub Vec<String>);

impl Origins {
    pub fn parse(given: &[String]) -> Result<Origins, CorsError> {
        let mut out = Vec::new();
        for o in given {
            let lower = o.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("http://")
                .or_else(|| lower.strip_prefix("https://"));
            let ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            });
            if !ok {
                return Err(CorsError::Bad(o.clone()));
            }
            out.push(lower);
        }
        Ok(Origins(out))
    }

    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }
}

const METHODS: &str = "GET, POST, PATCH, DELETE";
const HEADERS: &str = "Authorization, Content-Type";

/// The middleware, outermost: answers allowed preflights, marks allowed responses.
pub async fn layer(State(origins): State<Arc<Origins>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| api && origins.allows(o))
        .and_then(|o| HeaderValue::from_str(o).ok());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut resp = match (&origin, preflight) {
        (Some(_), true) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            r
        }
        _ => next.run(req).await,
    };
    if api && !origins.0.is_empty() {
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(o) = origin {
        resp.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_port() {
        let o =
            Origins::parse(&["http://127.0.0.1:8080".into(), "HTTPS://A.example".into()]).unwrap();
        assert!(o.allows("http://127.0.0.1:8080"));
        assert!(o.allows("https://a.example"));
        assert!(!o.allows("http://127.0.0.1:8081"));
        for bad in ["*", "127.0.0.1:80", "http://a/b", "ftp://a", "http://"] {
            assert!(Origins::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
