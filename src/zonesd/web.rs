//! The web console: web/dist (built by scripts/build-web.sh from web/src, committed, and
//! checked by CI to match its sources) embedded in the binary, so the daemon stays one file.
//! Its three files are served without a token (`GET /`, `/app.js`, `/app.css`); everything
//! else under /api needs one, and the console sends it as a bearer header, never a cookie.
//!
//! Every file is sent with a Content-Security-Policy that lets the page run only its own
//! script and talk to any zonesd (the fleet view calls other hosts' /api, which allow it by
//! `--cors-origin`, and opens their console WebSockets). Styles allow 'unsafe-inline' because
//! xterm.js's DOM renderer writes its theme into a `<style>` element it creates; no inline
//! script, no eval, no framing, no forms posted anywhere.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The policy sent with every file of the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; font-src 'self'; connect-src 'self' http: https: ws: wss:; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// (path, content type, bytes) of each embedded file.
pub const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../web/dist/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dist/app.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/dist/app.css"),
    ),
];

fn file(ctype: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes (GET and HEAD), outside the /api guard.
pub fn routes() -> Router {
    FILES.iter().fold(Router::new(), |r, (path, ctype, body)| {
        r.route(path, get(move || async move { file(ctype, body) }))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_loads_only_embedded_files() {
        let html = std::str::from_utf8(super::FILES[0].2).unwrap();
        assert!(html.contains("src=\"/app.js\""), "{html}");
        assert!(html.contains("href=\"/app.css\""), "{html}");
        assert!(
            !html.contains("<script>"),
            "no inline script (the CSP refuses it)"
        );
        for (path, _, body) in super::FILES {
            assert!(
                !body.is_empty(),
                "{path} is empty: run scripts/build-web.sh"
            );
        }
    }
}
