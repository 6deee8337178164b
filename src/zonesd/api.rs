//! The routes. Reads run in-process on the library (the store, `vmadm::get`, zonestat's
//! samples, the snapshot list); every change is a zone tool run as a child ([`super::tools`]).
//! Bodies are JSON objects of at most [`BODY_LIMIT`] bytes (413 beyond).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

use zones_linux::zone::datalinks;
use zones_linux::zone::manifest::ManifestError;
use zones_linux::zone::stat;
use zones_linux::zone::vmadm::{self, VmError};

use super::error::{ApiError, Json, Problem};
use super::tokens::Role;
use super::App;

/// The largest request body taken.
pub const BODY_LIMIT: usize = 1 << 20;

/// Every route: the router is built from this table, and the OpenAPI document must list
/// exactly these (a unit test checks).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/openapi.json"),
    ("GET", "/api/zones"),
    ("POST", "/api/zones"),
    ("GET", "/api/zones/{uuid}"),
    ("PATCH", "/api/zones/{uuid}"),
    ("DELETE", "/api/zones/{uuid}"),
    ("POST", "/api/zones/{uuid}/boot"),
    ("POST", "/api/zones/{uuid}/halt"),
    ("POST", "/api/zones/{uuid}/shutdown"),
    ("POST", "/api/zones/{uuid}/reboot"),
    ("GET", "/api/zones/{uuid}/stats"),
    ("GET", "/api/zones/{uuid}/snapshots"),
    ("POST", "/api/zones/{uuid}/snapshots"),
    ("DELETE", "/api/zones/{uuid}/snapshots/{name}"),
    ("POST", "/api/zones/{uuid}/snapshots/{name}/rollback"),
    ("GET", "/api/zones/{uuid}/console"),
    ("GET", "/api/images"),
    ("POST", "/api/images"),
    ("DELETE", "/api/images/{id}"),
    ("GET", "/api/events"),
    ("GET", "/api/links"),
    ("POST", "/api/links"),
    ("GET", "/api/links/{name}"),
    ("PATCH", "/api/links/{name}"),
    ("DELETE", "/api/links/{name}"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{id}"),
];

type S = Arc<App>;

/// The handler of one table entry.
fn handler(method: &str, path: &str) -> MethodRouter<S> {
    let f = |m: &str| match m {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PATCH" => MethodFilter::PATCH,
        _ => MethodFilter::DELETE,
    };
    let mf = f(method);
    match (method, path) {
        ("GET", "/api/openapi.json") => on(mf, openapi),
        ("GET", "/api/zones") => on(mf, zones_list),
        ("POST", "/api/zones") => on(mf, zone_create),
        ("GET", "/api/zones/{uuid}") => on(mf, zone_get),
        ("PATCH", "/api/zones/{uuid}") => on(mf, zone_update),
        ("DELETE", "/api/zones/{uuid}") => on(mf, zone_delete),
        ("POST", "/api/zones/{uuid}/boot") => on(mf, |s, p| zone_action(s, p, "boot")),
        ("POST", "/api/zones/{uuid}/halt") => on(mf, |s, p| zone_action(s, p, "halt")),
        ("POST", "/api/zones/{uuid}/shutdown") => on(mf, |s, p| zone_action(s, p, "shutdown")),
        ("POST", "/api/zones/{uuid}/reboot") => on(mf, |s, p| zone_action(s, p, "reboot")),
        ("GET", "/api/zones/{uuid}/stats") => on(mf, zone_stats),
        ("GET", "/api/zones/{uuid}/snapshots") => on(mf, snapshots_list),
        ("POST", "/api/zones/{uuid}/snapshots") => on(mf, snapshot_create),
        ("DELETE", "/api/zones/{uuid}/snapshots/{name}") => on(mf, snapshot_delete),
        ("POST", "/api/zones/{uuid}/snapshots/{name}/rollback") => on(mf, snapshot_rollback),
        ("GET", "/api/zones/{uuid}/console") => on(mf, super::console::open),
        ("GET", "/api/images") => on(mf, images_list),
        ("POST", "/api/images") => on(mf, image_import),
        ("DELETE", "/api/images/{id}") => on(mf, image_delete),
        ("GET", "/api/events") => on(mf, events),
        ("GET", "/api/links") => on(mf, links),
        ("POST", "/api/links") => on(mf, link_create),
        ("GET", "/api/links/{name}") => on(mf, link_get),
        ("PATCH", "/api/links/{name}") => on(mf, link_props),
        ("DELETE", "/api/links/{name}") => on(mf, link_delete),
        ("GET", "/api/tokens") => on(mf, tokens_list),
        ("POST", "/api/tokens") => on(mf, token_create),
        ("DELETE", "/api/tokens/{id}") => on(mf, token_delete),
        _ => unreachable!("route {method} {path} has no handler"),
    }
}

/// The whole service: /api behind the guard (auth, roles, audit), JSON 404 elsewhere; the
/// web console's files at `/`; CORS for the origins of `--cors-origin`.
pub fn router(app: S) -> Router {
    let mut by_path: Vec<(&str, MethodRouter<S>)> = Vec::new();
    for (m, p) in ROUTES {
        let h = handler(m, p);
        match by_path.iter_mut().find(|(q, _)| q == p) {
            Some((_, r)) => *r = std::mem::take(r).merge(h),
            None => by_path.push((p, h)),
        }
    }
    let mut api = Router::new();
    for (p, r) in by_path {
        api = api.route(p, r);
    }
    // The guard wraps the fallback too: an unknown path needs a token like any other. The
    // web console's files are outside it; CORS is outermost (a preflight carries no token).
    let cors = app.cors.clone();
    api.fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::auth::guard,
        ))
        .with_state(app)
        .merge(super::web::routes())
        .layer(axum::middleware::from_fn_with_state(
            cors,
            super::cors::layer,
        ))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {} (GET /api/openapi.json lists them)",
        req.method(),
        req.uri().path()
    ))
}

async fn not_allowed(req: Request) -> Response {
    let e = ApiError::BadRequest(format!(
        "{} is not a method of {} (GET /api/openapi.json lists them)",
        req.method(),
        req.uri().path()
    ));
    let mut resp = e.into_response();
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp
}

/// A JSON object body: at most [`BODY_LIMIT`] bytes (413), an object (400 at `$`).
pub struct JsonBody(pub Map<String, Value>);

impl<St: Send + Sync> FromRequest<St> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &St) -> Result<JsonBody, ApiError> {
        json_object(&read_body(req).await?).map(JsonBody)
    }
}

/// A body that may be absent (empty: `{}`), else as [`JsonBody`].
pub struct OptJsonBody(pub Map<String, Value>);

impl<St: Send + Sync> FromRequest<St> for OptJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &St) -> Result<OptJsonBody, ApiError> {
        let data = read_body(req).await?;
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptJsonBody(Map::new()));
        }
        json_object(&data).map(OptJsonBody)
    }
}

/// A JSON object (400 at `$` otherwise).
fn json_object(data: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::at("$", "expected a JSON object")),
        Err(e) => Err(ApiError::at("$", format!("not JSON: {e}"))),
    }
}

/// The request's body: at most [`BODY_LIMIT`] bytes (413).
async fn read_body(req: Request) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(ApiError::TooLarge { limit: BODY_LIMIT });
    }
    let mut data = Vec::new();
    let mut stream = req.into_body().into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("request body: {e}")))?;
        if data.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::TooLarge { limit: BODY_LIMIT });
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// A path parameter (`{uuid}`, `{id}`, `{name}`). One that does not decode (percent-encoded
/// bytes that are not UTF-8) names nothing: a 404 in the API's JSON shape, like any unknown
/// name, not axum's plain-text rejection.
pub struct Id(pub String);

impl<St: Send + Sync> FromRequestParts<St> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &St) -> Result<Id, ApiError> {
        match Path::<String>::from_request_parts(parts, st).await {
            Ok(Path(v)) => Ok(Id(v)),
            Err(e) => Err(ApiError::NotFound(format!(
                "{}: {}",
                parts.uri.path(),
                e.body_text()
            ))),
        }
    }
}

/// The two path parameters of `/api/zones/{uuid}/snapshots/{name}...`; one that does not
/// decode names nothing (a JSON 404, as [`Id`]).
pub struct Ids(pub String, pub String);

impl<St: Send + Sync> FromRequestParts<St> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &St) -> Result<Ids, ApiError> {
        match Path::<(String, String)>::from_request_parts(parts, st).await {
            Ok(Path((a, b))) => Ok(Ids(a, b)),
            Err(e) => Err(ApiError::NotFound(format!(
                "{}: {}",
                parts.uri.path(),
                e.body_text()
            ))),
        }
    }
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::DOCUMENT,
    )
        .into_response()
}

/// A VmError as the API says it.
fn vm_error(e: VmError) -> ApiError {
    match e {
        VmError::Manifest(ManifestError::Invalid(ps)) => ApiError::Invalid {
            msg: format!(
                "invalid payload ({} problem{})",
                ps.len(),
                if ps.len() == 1 { "" } else { "s" }
            ),
            problems: ps
                .into_iter()
                .map(|p| Problem {
                    path: p.path,
                    msg: p.msg,
                })
                .collect(),
        },
        VmError::Store(zones::store::StoreError::NoSuchZone(z)) => {
            ApiError::NotFound(format!("no zone '{z}'"))
        }
        VmError::Other(m) if m.starts_with("No such VM") => ApiError::NotFound(m),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The zone named by a path's `{uuid}` (a uuid or a zone name): its name.
pub(super) fn zone_of(app: &App, id: &str) -> Result<String, ApiError> {
    let ok = vmadm::is_uuid(id) || zones::model::validate_zone_name(id).is_ok();
    if !ok {
        return Err(ApiError::NotFound(format!(
            "'{id}' is neither a uuid nor a zone name"
        )));
    }
    vmadm::resolve(&app.store()?, id).map_err(vm_error)
}

fn get_doc(app: &App, name: &str) -> Result<Value, ApiError> {
    vmadm::get(&app.store()?, name).map_err(vm_error)
}

async fn zones_list(State(app): State<S>) -> Result<Json<Value>, ApiError> {
    let all = vmadm::all(&app.store()?).map_err(vm_error)?;
    Ok(Json(Value::Array(all)))
}

async fn zone_get(State(app): State<S>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let name = zone_of(&app, &id)?;
    Ok(Json(get_doc(&app, &name)?))
}

/// POST /api/zones: the payload checked in-process by vmadm's validation first (every
/// problem with its path, nothing made), then `vmadm create` as a child (which undoes
/// everything when a later step fails). A payload without a uuid gets one here.
async fn zone_create(
    State(app): State<S>,
    JsonBody(mut payload): JsonBody,
) -> Result<Response, ApiError> {
    if !payload.contains_key("uuid") {
        payload.insert("uuid".into(), zones::model::new_uuid().into());
    }
    // vmadm stores a uuid in lower case.
    let uuid = payload["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = Value::Object(payload).to_string();
    vmadm::validate_create(&app.store()?, &text).map_err(vm_error)?;
    app.tools
        .run("vmadm", &["create", "-f", "-"], Some(text.as_bytes()))
        .await?;
    let name = zone_of(&app, &uuid)?;
    Ok((StatusCode::CREATED, Json(get_doc(&app, &name)?)).into_response())
}

/// PATCH /api/zones/{uuid}: a vmadm update payload, checked in-process first.
async fn zone_update(
    State(app): State<S>,
    Id(id): Id,
    JsonBody(payload): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = zone_of(&app, &id)?;
    let text = Value::Object(payload).to_string();
    vmadm::validate_update(&text).map_err(vm_error)?;
    app.tools
        .run(
            "vmadm",
            &["update", &name, "-f", "-"],
            Some(text.as_bytes()),
        )
        .await?;
    Ok(Json(get_doc(&app, &name)?))
}

async fn zone_delete(State(app): State<S>, Id(id): Id) -> Result<StatusCode, ApiError> {
    let name = zone_of(&app, &id)?;
    app.tools.run("vmadm", &["delete", &name], None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// boot, halt, shutdown, reboot: `zoneadm -z NAME VERB`; the zone's document after.
async fn zone_action(
    State(app): State<S>,
    Id(id): Id,
    verb: &'static str,
) -> Result<Json<Value>, ApiError> {
    let name = zone_of(&app, &id)?;
    app.tools.run("zoneadm", &["-z", &name, verb], None).await?;
    Ok(Json(get_doc(&app, &name)?))
}

/// zonestat's figures for one zone: two samples 250 ms apart (CPU use over that interval),
/// in `zonestat -j`'s shape.
async fn zone_stats(State(app): State<S>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let name = zone_of(&app, &id)?;
    let store = app.store()?;
    let live = stat::live_zones(&store, std::slice::from_ref(&name)).map_err(ApiError::internal)?;
    if live.is_empty() {
        return Err(ApiError::Conflict(format!(
            "zone '{name}' is not ready or running: no figures"
        )));
    }
    let first = stat::sample_zone(&store, &name).map_err(|e| ApiError::Conflict(e.to_string()))?;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let now = stat::sample_zone(&store, &name).map_err(|e| ApiError::Conflict(e.to_string()))?;
    let usage = stat::usage(Some(&first), &now);
    Ok(Json(stat::json_usage(&usage, &[stat::Resource::Summary])))
}

async fn snapshots_list(State(app): State<S>, Id(id): Id) -> Result<Json<Value>, ApiError> {
    let name = zone_of(&app, &id)?;
    let snaps = zones_linux::zone::admin::list_snapshots(&app.store()?, &name)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(Json(
        serde_json::to_value(snaps).map_err(ApiError::internal)?,
    ))
}

/// Ok when `problems` is empty, else the 400 that lists them all (`what`: "link request").
fn no_problems(what: &str, problems: Vec<Problem>) -> Result<(), ApiError> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::Invalid {
        msg: format!("invalid {what} ({} problems)", problems.len()),
        problems,
    })
}

/// A name passed to a tool as an argument: no option look-alike, no odd characters.
fn check_arg(path: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 255
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-/@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::at(
            path,
            format!("{v:?}: use letters, digits, '.', '_', ':', '-', '/' or '@', starting with a letter or digit"),
        ))
    }
}

/// POST /api/zones/{uuid}/snapshots `{"name": N}`: `zoneadm -z NAME snapshot N`.
async fn snapshot_create(
    State(app): State<S>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let name = zone_of(&app, &id)?;
    let mut problems = Vec::new();
    for k in body.keys().filter(|k| *k != "name") {
        problems.push(Problem {
            path: format!("$.{k}"),
            msg: "unknown property".into(),
        });
    }
    let snap = match body.get("name") {
        Some(Value::String(s)) => match check_arg("$.name", s) {
            Ok(()) => s.clone(),
            Err(ApiError::Invalid { problems: p, .. }) => {
                problems.extend(p);
                String::new()
            }
            Err(e) => return Err(e),
        },
        Some(v) => {
            problems.push(Problem {
                path: "$.name".into(),
                msg: format!("expected a string, not {v}"),
            });
            String::new()
        }
        None => {
            problems.push(Problem {
                path: "$.name".into(),
                msg: "missing".into(),
            });
            String::new()
        }
    };
    no_problems("snapshot request", problems)?;
    app.tools
        .run("zoneadm", &["-z", &name, "snapshot", &snap], None)
        .await?;
    let snaps = zones_linux::zone::admin::list_snapshots(&app.store()?, &name)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    let made = snaps.into_iter().find(|s| s.name == snap);
    let doc = serde_json::to_value(made).map_err(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

/// The zone of `{uuid}` that has snapshot `snap`: its name, or a 404.
fn snapshot_of(app: &App, id: &str, snap: &str) -> Result<String, ApiError> {
    let name = zone_of(app, id)?;
    let missing = || ApiError::NotFound(format!("zone '{name}' has no snapshot '{snap}'"));
    check_arg("$.name", snap).map_err(|_| missing())?;
    let snaps = zones_linux::zone::admin::list_snapshots(&app.store()?, &name)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    if !snaps.iter().any(|s| s.name == snap) {
        return Err(missing());
    }
    Ok(name)
}

/// A rollback body's `recursive` (absent: false); every other key is a problem.
fn rollback_recursive(body: &Map<String, Value>) -> Result<bool, ApiError> {
    let mut problems = Vec::new();
    let mut recursive = false;
    for (k, v) in body {
        match (k.as_str(), v) {
            ("recursive", Value::Bool(b)) => recursive = *b,
            ("recursive", v) => problems.push(Problem {
                path: "$.recursive".into(),
                msg: format!("expected true or false, not {v}"),
            }),
            _ => problems.push(Problem {
                path: format!("$.{k}"),
                msg: "unknown property".into(),
            }),
        }
    }
    no_problems("rollback request", problems).map(|()| recursive)
}

/// POST /api/zones/{uuid}/snapshots/{name}/rollback `{"recursive"?}`: `zoneadm -z ZONE
/// rollback [-r] NAME` (a running zone is halted and booted again); the zone after. Newer
/// snapshots without `recursive` are zoneadm's refusal: a 409 with its message.
async fn snapshot_rollback(
    State(app): State<S>,
    Ids(id, snap): Ids,
    OptJsonBody(body): OptJsonBody,
) -> Result<Json<Value>, ApiError> {
    let recursive = rollback_recursive(&body)?;
    let name = snapshot_of(&app, &id, &snap)?;
    let mut args: Vec<&str> = vec!["-z", &name, "rollback"];
    if recursive {
        args.push("-r");
    }
    args.push(&snap);
    app.tools.run("zoneadm", &args, None).await?;
    Ok(Json(get_doc(&app, &name)?))
}

/// DELETE /api/zones/{uuid}/snapshots/{name}: `zoneadm -z ZONE delete-snapshot NAME`; 204.
async fn snapshot_delete(State(app): State<S>, Ids(id, snap): Ids) -> Result<StatusCode, ApiError> {
    let name = snapshot_of(&app, &id, &snap)?;
    app.tools
        .run("zoneadm", &["-z", &name, "delete-snapshot", &snap], None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A tool's JSON output.
fn parse_json(prog: &str, text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("zonesd: {prog} printed no JSON: {e}")))
}

async fn images_list(State(app): State<S>) -> Result<Json<Value>, ApiError> {
    let out = app.tools.run("imgadm", &["list", "-j"], None).await?;
    Ok(Json(parse_json("imgadm", &out.stdout)?))
}

/// The longest `creds` taken.
const CREDS_LIMIT: usize = 1024;

/// What is wrong with registry credentials `USER:PASSWORD`, if anything. The message never
/// quotes them.
fn creds_problem(creds: &str, source: Option<&str>) -> Option<String> {
    if !source.is_some_and(|s| s.starts_with("docker://")) {
        Some("credentials are for a docker:// source only".into())
    } else if creds.len() > CREDS_LIMIT {
        Some(format!("longer than {CREDS_LIMIT} bytes"))
    } else if creds.contains(['\n', '\r', '\0']) {
        Some("contains a newline or a NUL".into())
    } else if !creds.contains(':') {
        Some("expected USER:PASSWORD".into())
    } else {
        None
    }
}

/// `text` with the credentials `creds` (and their password alone) blotted out: a tool's
/// message may quote them, and it goes to the client and the audit log.
fn redact(text: &str, creds: &str) -> String {
    let pass = creds.split_once(':').map_or("", |(_, p)| p);
    let text = text.replace(creds, "<creds>");
    if pass.is_empty() {
        text
    } else {
        text.replace(pass, "<password>")
    }
}

/// POST /api/images `{"source", "rootfs"?, "name"?, "insecure"?, "creds"?}`: `imgadm import`
/// of a path on this host (absolute) or a `docker://` reference (`creds`, USER:PASSWORD, go to
/// imgadm in IMGADM_CREDS: never argv, never the audit log); 201 with the new image.
async fn image_import(
    State(app): State<S>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    let mut bad = |path: &str, msg: String| {
        problems.push(Problem {
            path: path.into(),
            msg,
        })
    };
    let mut args: Vec<String> = vec!["import".into()];
    for (k, v) in &body {
        let path = format!("$.{k}");
        match (k.as_str(), v) {
            ("source", Value::String(s)) => {
                let ok = (s.starts_with('/') || s.starts_with("docker://"))
                    && !s.contains('\n')
                    && s.len() <= 4096;
                if !ok {
                    bad(&path, format!("{s:?}: give an absolute path on this host or docker://HOST[:PORT]/REPO[:TAG]"));
                }
            }
            ("rootfs" | "insecure", Value::Bool(on)) => {
                if *on {
                    args.push(format!("--{k}"));
                }
            }
            ("name", Value::String(n)) => {
                if let Err(ApiError::Invalid { problems: p, .. }) = check_arg(&path, n) {
                    p.into_iter().for_each(|p| bad(&p.path, p.msg));
                } else {
                    args.extend(["--name".to_string(), n.clone()]);
                }
            }
            ("creds", Value::String(_)) => {}
            // Not echoed: it may hold a password.
            ("creds", _) => bad(&path, "expected a string USER:PASSWORD".into()),
            ("source" | "name", v) => bad(&path, format!("expected a string, not {v}")),
            ("rootfs" | "insecure", v) => bad(&path, format!("expected true or false, not {v}")),
            _ => bad(&path, "unknown property".into()),
        }
    }
    let source = body.get("source").and_then(Value::as_str);
    if body.get("source").is_none() {
        bad("$.source", "missing".into());
    }
    let creds = body.get("creds").and_then(Value::as_str);
    if let Some(why) = creds.and_then(|c| creds_problem(c, source)) {
        bad("$.creds", why);
    }
    no_problems("import request", problems)?;
    args.push(source.unwrap_or_default().to_string());
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect()
    };
    let before = parse_json(
        "imgadm",
        &app.tools.run("imgadm", &["list", "-j"], None).await?.stdout,
    )?;
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match creds {
        None => app.tools.run("imgadm", &argv, None).await?,
        Some(c) => app
            .tools
            .run_env("imgadm", &argv, None, &[("IMGADM_CREDS", c)])
            .await
            .map_err(|e| match e {
                ApiError::Conflict(m) => ApiError::Conflict(redact(&m, c)),
                ApiError::Internal(m) => ApiError::Internal(redact(&m, c)),
                e => e,
            })?,
    };
    let after = parse_json(
        "imgadm",
        &app.tools.run("imgadm", &["list", "-j"], None).await?.stdout,
    )?;
    let old = ids(&before);
    let made = after
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["id"]
                .as_str()
                .is_some_and(|id| !old.iter().any(|o| o == id))
        })
        .cloned()
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

async fn image_delete(State(app): State<S>, Id(id): Id) -> Result<StatusCode, ApiError> {
    check_arg("$.id", &id).map_err(|_| ApiError::NotFound(format!("no image '{id}'")))?;
    // An id (or name, or id prefix) that matches nothing is a 404, as the document says, not
    // imgadm's refusal (409); an ambiguous one is left to imgadm to name.
    let root = app.altroot.clone().unwrap_or_else(|| "/".into());
    if let Err(e @ zones::image::ImageError::NotFound(_)) =
        zones::image::ImageStore::open(&root).get(&id)
    {
        return Err(ApiError::NotFound(e.to_string()));
    }
    app.tools.run("imgadm", &["delete", &id], None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /api/links: `dladm show-link -j`, each row with its `props` (below).
async fn links(State(app): State<S>) -> Result<Json<Value>, ApiError> {
    let out = app.tools.run("dladm", &["show-link", "-j"], None).await?;
    let mut rows = parse_json("dladm", &out.stdout)?;
    let props = link_props_of(&app, None).await?;
    for r in rows.as_array_mut().into_iter().flatten() {
        let name = r["link"].as_str().unwrap_or_default();
        r["props"] = props.get(name).cloned().unwrap_or_else(|| json!({}));
    }
    Ok(Json(rows))
}

/// `dladm show-linkprop -j [LINK]` as `{LINK: {PROPERTY: VALUE}}`, the values as dladm
/// shows them (`--`: not set).
async fn link_props_of(app: &App, link: Option<&str>) -> Result<Map<String, Value>, ApiError> {
    let mut args = vec!["show-linkprop", "-j"];
    args.extend(link);
    let out = app.tools.run("dladm", &args, None).await?;
    let mut by_link = Map::new();
    for r in parse_json("dladm", &out.stdout)?
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(l), Some(p)) = (r["link"].as_str(), r["property"].as_str()) else {
            continue;
        };
        let entry = by_link.entry(l).or_insert_with(|| json!({}));
        entry[p] = r["value"].clone();
    }
    Ok(by_link)
}

/// The link of a path's `{name}` as `GET /api/links` shows it, or a 404.
async fn link_doc(app: &App, name: &str) -> Result<Value, ApiError> {
    let missing = || ApiError::NotFound(format!("no link '{name}'"));
    let mut problems = Vec::new();
    check_link("$.name", name, &mut problems);
    if !problems.is_empty() {
        return Err(missing());
    }
    let mut row = link_row(app, name).await?.ok_or_else(missing)?;
    let props = link_props_of(app, Some(name)).await?;
    row["props"] = props.get(name).cloned().unwrap_or_else(|| json!({}));
    Ok(row)
}

/// GET /api/links/{name}: one link with its `props`.
async fn link_get(State(app): State<S>, Id(name): Id) -> Result<Json<Value>, ApiError> {
    Ok(Json(link_doc(&app, &name).await?))
}

/// The properties a VNIC takes (`dladm set-linkprop`'s).
fn link_prop_names() -> Vec<&'static str> {
    let mut names = vec!["mtu"];
    names.extend(datalinks::LINK_PROPS.iter().map(|(n, _, _)| *n));
    names
}

/// A PATCH body of link properties as (`PROP=VALUE` pairs to set, names to reset), each
/// value checked as dladm checks it; every problem at its path.
fn link_prop_changes(body: &Map<String, Value>) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let known = link_prop_names();
    let (mut set, mut reset, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    let mut bad = |k: &str, msg: String| {
        problems.push(Problem {
            path: format!("$.{k}"),
            msg,
        })
    };
    for (k, v) in body {
        if !known.contains(&k.as_str()) {
            bad(
                k,
                format!("unknown link property (properties: {})", known.join(", ")),
            );
            continue;
        }
        let text = match v {
            Value::Null => {
                reset.push(k.clone());
                continue;
            }
            Value::String(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            v => {
                bad(k, format!("expected a string, or null to reset, not {v}"));
                continue;
            }
        };
        match datalinks::check_prop(k, &text) {
            Ok(canon) => set.push(format!("{k}={canon}")),
            Err(e) => bad(k, e.to_string()),
        }
    }
    if body.is_empty() {
        problems.push(Problem {
            path: "$".into(),
            msg: format!("give one or more of {}", known.join(", ")),
        });
    }
    no_problems("link properties", problems).map(|()| (set, reset))
}

/// PATCH /api/links/{name} `{PROP: VALUE|null, ...}`: a VNIC's link properties, `dladm
/// set-linkprop -p K=V,... NAME` and, for the nulls, `dladm reset-linkprop -p K,... NAME`;
/// the link after, as `GET /api/links/{name}`.
async fn link_props(
    State(app): State<S>,
    Id(name): Id,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (set, reset) = link_prop_changes(&body)?;
    let row = link_doc(&app, &name).await?;
    if row["class"] != "vnic" {
        return Err(ApiError::Conflict(format!(
            "link '{name}' is a {}: only VNICs take link properties",
            row["class"].as_str().unwrap_or("link of no class")
        )));
    }
    if !set.is_empty() {
        let p = set.join(",");
        app.tools
            .run("dladm", &["set-linkprop", "-p", &p, &name], None)
            .await?;
    }
    if !reset.is_empty() {
        let p = reset.join(",");
        app.tools
            .run("dladm", &["reset-linkprop", "-p", &p, &name], None)
            .await?;
    }
    Ok(Json(link_doc(&app, &name).await?))
}

/// A link name as dladm takes it: 1-15 letters, digits, '_', '.', '-', from a letter or digit.
fn check_link(path: &str, v: &str, problems: &mut Vec<Problem>) {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v.as_bytes()[0].is_ascii_alphanumeric()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        problems.push(Problem {
            path: path.into(),
            msg: format!(
                "{v:?}: use 1-15 letters, digits, '_', '.' or '-', from a letter or digit"
            ),
        });
    }
}

/// POST /api/links `{"etherstub": NAME}` or `{"vnic": NAME, "over": LINK}`: `dladm
/// create-etherstub` or `create-vnic -l LINK`; 201 with the link as `GET /api/links` shows it.
async fn link_create(State(app): State<S>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    let text = |k: &str, problems: &mut Vec<Problem>| match body.get(k) {
        None => None,
        Some(Value::String(s)) => {
            check_link(&format!("$.{k}"), s, problems);
            Some(s.clone())
        }
        Some(v) => {
            problems.push(Problem {
                path: format!("$.{k}"),
                msg: format!("expected a string, not {v}"),
            });
            None
        }
    };
    let stub = text("etherstub", &mut problems);
    let vnic = text("vnic", &mut problems);
    let over = text("over", &mut problems);
    for k in body
        .keys()
        .filter(|k| !["etherstub", "vnic", "over"].contains(&k.as_str()))
    {
        problems.push(Problem {
            path: format!("$.{k}"),
            msg: "unknown property".into(),
        });
    }
    let argv: Vec<String> = match (&stub, &vnic, &over) {
        (Some(s), None, None) => vec!["create-etherstub".into(), s.clone()],
        (None, Some(v), Some(o)) => vec!["create-vnic".into(), "-l".into(), o.clone(), v.clone()],
        (None, Some(_), None) => {
            problems.push(Problem {
                path: "$.over".into(),
                msg: "missing (the etherstub or link the VNIC goes over)".into(),
            });
            Vec::new()
        }
        _ if problems.is_empty() => {
            problems.push(Problem {
                path: "$".into(),
                msg: "give {\"etherstub\": NAME} or {\"vnic\": NAME, \"over\": LINK}".into(),
            });
            Vec::new()
        }
        _ => Vec::new(),
    };
    no_problems("link request", problems)?;
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    app.tools.run("dladm", &args, None).await?;
    let name = argv.last().cloned().unwrap_or_default();
    let made = link_row(&app, &name).await?.unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// The `dladm show-link -j` row of link `name`.
async fn link_row(app: &App, name: &str) -> Result<Option<Value>, ApiError> {
    let out = app.tools.run("dladm", &["show-link", "-j"], None).await?;
    let rows = parse_json("dladm", &out.stdout)?;
    Ok(rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["link"] == name)
        .cloned())
}

/// DELETE /api/links/{name}: an etherstub or a VNIC (`dladm delete-etherstub|delete-vnic`).
async fn link_delete(State(app): State<S>, Id(name): Id) -> Result<StatusCode, ApiError> {
    let mut problems = Vec::new();
    check_link("$.name", &name, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::NotFound(format!("no link '{name}'")));
    }
    let row = link_row(&app, &name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no link '{name}'")))?;
    let verb = match row["class"].as_str() {
        Some("etherstub") => "delete-etherstub",
        Some("vnic") => "delete-vnic",
        other => {
            return Err(ApiError::Conflict(format!(
                "link '{name}' is a {}: only etherstubs and VNICs are deleted here",
                other.unwrap_or("link of no class")
            )))
        }
    };
    app.tools.run("dladm", &[verb, &name], None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn events(
    State(app): State<S>,
    axum::Extension(token): axum::Extension<super::tokens::TokenEntry>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))?;
    let new_only = match q.get("new").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(v) => return Err(ApiError::BadRequest(format!("new={v}: use true or false"))),
    };
    let path = app.store()?.events_file();
    let check = app.clone();
    let alive = Box::new(move || {
        check
            .tokens
            .list()
            .is_ok_and(|ts| ts.iter().any(|t| t.id == token.id))
    });
    Ok(super::events::stream(path, q.get("zone").cloned(), new_only, alive).into_response())
}

fn token_doc(t: &super::tokens::TokenEntry) -> Value {
    json!({"id": t.id, "name": t.name, "role": t.role, "created": t.created})
}

async fn tokens_list(State(app): State<S>) -> Result<Json<Value>, ApiError> {
    let all = app.tokens.list().map_err(ApiError::internal)?;
    Ok(Json(Value::Array(all.iter().map(token_doc).collect())))
}

/// POST /api/tokens `{"role", "name"?}`: the new token, shown once.
async fn token_create(
    State(app): State<S>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    for k in body
        .keys()
        .filter(|k| !["role", "name"].contains(&k.as_str()))
    {
        problems.push(Problem {
            path: format!("$.{k}"),
            msg: "unknown property".into(),
        });
    }
    let role = match body
        .get("role")
        .and_then(Value::as_str)
        .and_then(Role::parse)
    {
        Some(r) => Some(r),
        None => {
            problems.push(Problem {
                path: "$.role".into(),
                msg: "expected \"admin\", \"operator\" or \"viewer\"".into(),
            });
            None
        }
    };
    let name = match body.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            problems.push(Problem {
                path: "$.name".into(),
                msg: format!("expected a string, not {v}"),
            });
            None
        }
    };
    no_problems("token request", problems)?;
    let Some(role) = role else {
        return Err(ApiError::at("$.role", "missing"));
    };
    let (entry, token) = app
        .tokens
        .create(role, name.as_deref())
        .map_err(|e| match e {
            super::tokens::TokenError::NameTaken(_) => ApiError::Conflict(e.to_string()),
            super::tokens::TokenError::BadName(_) => ApiError::at("$.name", e.to_string()),
            e => ApiError::internal(e),
        })?;
    let mut doc = token_doc(&entry);
    doc["token"] = token.into();
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

async fn token_delete(State(app): State<S>, Id(id): Id) -> Result<StatusCode, ApiError> {
    app.tokens.revoke(&id).map_err(|e| match e {
        super::tokens::TokenError::NoSuchToken(_) => ApiError::NotFound(e.to_string()),
        e => ApiError::internal(e),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_without_being_quoted() {
        let reg = Some("docker://r.example/a:1");
        assert_eq!(creds_problem("u:p", reg), None);
        for (creds, source) in [
            ("u:p", Some("/var/tmp/a.tar")),
            ("u:p", None),
            ("nocolon", reg),
            ("u:p\nq", reg),
            ("u:p\0", reg),
        ] {
            let why = creds_problem(creds, source).unwrap();
            assert!(!why.contains(creds), "{why}");
        }
        assert!(creds_problem(&format!("u:{}", "x".repeat(1024)), reg).is_some());
        assert_eq!(
            redact("bad u:s3cret, s3cret refused", "u:s3cret"),
            "bad <creds>, <password> refused"
        );
        assert_eq!(redact("as u", "u:"), "as u");
    }

    #[test]
    fn link_properties_become_dladm_arguments() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let (set, reset) = link_prop_changes(&body(json!({
            "maxbw": "100M", "protection": "mac-nospoof,ip-nospoof", "mtu": 9000, "priority": null
        })))
        .unwrap();
        assert_eq!(
            set,
            [
                "maxbw=100M",
                "mtu=9000",
                "protection=mac-nospoof,ip-nospoof"
            ]
        );
        assert_eq!(reset, ["priority"]);
        let Err(ApiError::Invalid { problems, .. }) = link_prop_changes(&body(json!({
            "thatname": "1", "maxbw": "fast", "allowed-ips": true
        }))) else {
            panic!("accepted");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["$.allowed-ips", "$.maxbw", "$.thatname"]);
        assert!(link_prop_changes(&Map::new()).is_err());
    }

    #[test]
    fn a_rollback_body_is_optional_and_checked() {
        assert!(!rollback_recursive(&Map::new()).unwrap());
        let m = json!({"recursive": true});
        assert!(rollback_recursive(m.as_object().unwrap()).unwrap());
        let m = json!({"recursive": 1, "x": 2});
        let Err(ApiError::Invalid { problems, .. }) = rollback_recursive(m.as_object().unwrap())
        else {
            panic!("accepted");
        };
        assert_eq!(problems.len(), 2);
    }
}
