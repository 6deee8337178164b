//! The OpenAPI 3 document of the API, written by hand in docs/zonesd-openapi.json and served
//! as it is at `GET /api/openapi.json`. A test checks that every route the router has (the
//! API's and the web console's files) is in it and that it lists no route the router lacks.

/// The document's text (docs/zonesd-openapi.json).
pub const DOCUMENT: &str = include_str!("../../docs/zonesd-openapi.json");

/// The (method, path) pairs the document describes, methods upper-case.
#[cfg(test)]
pub fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    out.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut routes: Vec<(String, String)> = super::super::api::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .chain(
                super::super::web::FILES
                    .iter()
                    .map(|(p, _, _)| ("GET".to_string(), p.to_string())),
            )
            .collect();
        routes.sort();
        assert_eq!(routes, super::operations());
        // Every {param} of a path is a path parameter of each of its operations.
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let params: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in ops.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert_eq!(declared, params, "{method} {path}");
                assert!(op["responses"].is_object(), "{method} {path}");
                // Everything needs a token but the web console's files (security: []).
                let public = op["security"] == serde_json::json!([]);
                assert_eq!(public, !path.starts_with("/api/"), "{method} {path}");
                assert_eq!(
                    op["responses"]["401"].is_object(),
                    !public,
                    "{method} {path}"
                );
            }
        }
        // The router takes the table without a conflict (axum panics on one).
        let app = super::super::App::new(Some(std::env::temp_dir()));
        let _ = super::super::api::router(std::sync::Arc::new(app));
    }
}
