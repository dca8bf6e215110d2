//! The endpoints of the guide's table, one handler each, and the router that puts them behind
//! authentication (all but health and the API's own description), body limits and JSON errors
//! for unknown routes and methods.

use crate::error::{ApiError, ErrorBody};
use crate::runner::{Admission, Phase, State};
use crate::{auth, export, openapi, ws, MAX_BODY_BYTES, MAX_EXPORT_BYTES};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rustmap::{ScanConfig, ScanRequest};
use rustmap_model::HostResult;
use rustmap_store::{ScanRecord, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

pub(crate) type Shared = Arc<State>;

/// Hosts returned by `GET /api/scans/{id}`, at most (the export has them all).
const MAX_HOSTS_SHOWN: usize = 10_000;

pub(crate) fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/api/scans", post(create).get(list))
        .route("/scan", post(create))
        .route("/api/scans/{id}", get(show).delete(remove))
        .route("/api/scans/{id}/stop", post(stop))
        .route("/api/scans/{id}/export", get(export_scan))
        .route("/api/scans/{id}/diff/{other}", get(diff))
        .route("/api/scans/{id}/events", get(ws::events))
        .route("/api/vuln/check", post(crate::vuln::check))
        .route("/api/vuln/update", post(crate::vuln::update))
        .route("/api/system/privileges", get(privileges))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), require_auth));
    Router::new()
        .route("/api/system/health", get(health))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/docs", get(openapi::page))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn require_auth(axum::extract::State(state): axum::extract::State<Shared>, req: Request, next: Next) -> Response {
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let token =
        req.uri().query().and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")).map(percent_decode));
    match auth::check(state.key.as_ref(), req.headers(), token.as_deref(), websocket) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `%XX` escapes and `+` of a query value decoded; a bad escape is kept as it is (it will not
/// match a key anyway).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A scan id as this server makes them (a ULID); anything else is not one of ours.
pub(crate) fn check_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ApiError::not_found("scan"))
    }
}

/// Run `f` on a read-only connection to the history, off the async threads.
pub(crate) async fn read_store<T: Send + 'static>(
    state: &State,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = state.options.db.clone();
    tokio::task::spawn_blocking(move || f(&Store::open_read_only(&db)?))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// What `POST /api/scans` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Started {
    /// The new scan's id.
    id: String,
    /// `running`, or `queued` when it waits for a slot.
    status: String,
    /// Things to know (a profile's options this build runs without, ...).
    notes: Vec<String>,
    /// Where to follow it.
    events: String,
}

/// Query of `POST /api/scans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StartQuery {
    /// Wait in a bounded queue for a free slot when 10 scans run, instead of 429.
    queue: Option<bool>,
}

/// Refuse what a scan started remotely may not do: read or write the server's files, print to
/// its terminal, or (with an allow-list) send anywhere outside it.
fn check_remote(c: &mut ScanConfig, state: &State) -> Result<(), ApiError> {
    let local = |field: &str| {
        ApiError::bad_request(format!(
            "{field}: scans started through the API do not read or write the server's files; give targets in \
             \"targets\" and fetch results with /api/scans/{{id}}/export"
        ))
        .with_field(field)
    };
    // Scripts by name, category or expression only: `--script` also loads files and
    // directories, which would run the server's files as scripts.
    if let Some(field) = c.file_fields().first() {
        if *field == "cloud" {
            let message = "config.cloud: scans started through the API may not use the server's cloud credentials; \
                           list the instances' addresses in \"targets\"";
            return Err(ApiError::bad_request(message).with_field("config.cloud"));
        }
        return Err(local(&format!("config.{field}")));
    }
    // Nothing goes to the server's terminal.
    c.output.interactive = false;
    c.output.progress = false;
    c.output.stats_every = None;
    c.args = format!("rustmap (api) {}", c.targets.join(" "));
    let Some(allow) = &state.options.allow else { return Ok(()) };
    let outside = |field: &str, what: String| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "outside_allow_list",
            format!("{what} is outside the server's allow-list ({allow})"),
        )
        .with_field(field)
    };
    if !c.names.servers.is_empty() {
        return Err(outside("config.names.servers", "a DNS server of the request's own".into()));
    }
    if let Some(p) = &c.origin.proxy {
        return Err(outside("config.origin.proxy", format!("proxy {p}")));
    }
    for t in &c.targets {
        if let Ok(spec) = rustmap_targets::TargetSpec::parse(t) {
            // Blocks are checked here up to a size; the scan itself leaves out any address
            // outside the list, names' addresses included.
            if let Some(ip) = spec.addrs().take(65_536).find(|ip| !allow.contains(*ip)) {
                return Err(outside("targets", format!("target {t} (address {ip})")));
            }
        }
    }
    Ok(())
}

/// Start a scan.
#[utoipa::path(post, path = "/api/scans", tag = "scans", params(StartQuery),
    request_body(content = openapi::ScanRequestDoc, description = "The scan, in the guide's fields",
        example = json!({"targets": ["127.0.0.1"], "scan_type": "T", "ports": "22,80,443"})),
    responses(
        (status = 202, description = "Started or queued", body = Started),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or wrong API key", body = ErrorBody),
        (status = 403, description = "Outside the allow-list", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 429, description = "Rate or concurrency limit", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    axum::extract::State(state): axum::extract::State<Shared>,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Json<ScanRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Json(request) = body.map_err(|e| {
        let status = e.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "not_json",
            _ => "bad_json",
        };
        // 422 (JSON of the wrong shape) is a 400 here: one status for every bad body.
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
        ApiError::new(status, code, e.body_text())
    })?;
    let distributed = request.distributed.unwrap_or(false);
    if distributed && state.options.distribute.is_none() {
        let message = "distributed: this server has no cluster; start it with --nats URL to run scans on agents";
        return Err(ApiError::bad_request(message).with_field("distributed"));
    }
    let (mut config, notes) = request.into_config(state.options.profiles.as_deref())?;
    check_remote(&mut config, &state)?;
    // On the cluster, raw-socket privileges are the agents' to have.
    let plan = if distributed { rustmap::shard::validate_for_cluster(&config)? } else { rustmap::validate(&config)? };
    let admission = state.admit(&config.targets, query.queue.unwrap_or(false))?;
    let queued = matches!(admission, Admission::Queue);
    let (id, phase) = state.launch(plan, admission, distributed);
    debug_assert_eq!(queued, phase == Phase::Queued);
    let body =
        Started { events: format!("/api/scans/{id}/events"), id: id.clone(), status: phase.name().into(), notes };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("/api/scans/{id}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// One scan in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScanItem {
    id: String,
    /// `queued`, `running`, `completed`, `interrupted` or `failed`.
    status: String,
    /// The targets.
    targets: String,
    /// Start (or submission), seconds since the Unix epoch.
    started: i64,
    ended: Option<i64>,
    hosts_up: i64,
    hosts_down: i64,
    hosts_total: i64,
    open_ports: i64,
    elapsed_secs: Option<f64>,
    error: Option<String>,
}

impl From<ScanRecord> for ScanItem {
    fn from(r: ScanRecord) -> ScanItem {
        ScanItem {
            id: r.id,
            status: r.status,
            targets: r.targets,
            started: r.started,
            ended: r.ended,
            hosts_up: r.hosts_up,
            hosts_down: r.hosts_down,
            hosts_total: r.hosts_total,
            open_ports: r.open_ports,
            elapsed_secs: r.elapsed_secs,
            error: r.error,
        }
    }
}

fn pending_item(id: String, status: &str, targets: &[String], started: i64, error: Option<String>) -> ScanItem {
    ScanItem {
        id,
        status: status.into(),
        targets: targets.join(" "),
        started,
        ended: None,
        hosts_up: 0,
        hosts_down: 0,
        hosts_total: 0,
        open_ports: 0,
        elapsed_secs: None,
        error,
    }
}

/// Query of `GET /api/scans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only scans in this state.
    #[param(inline, value_type = Option<String>, pattern = "^(queued|running|completed|interrupted|failed)$")]
    status: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The answer of `GET /api/scans`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScanList {
    scans: Vec<ScanItem>,
}

/// List scans, newest first.
#[utoipa::path(get, path = "/api/scans", tag = "scans", params(ListQuery),
    responses((status = 200, body = ScanList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    axum::extract::State(state): axum::extract::State<Shared>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ScanList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    const STATES: [&str; 5] = ["queued", "running", "completed", "interrupted", "failed"];
    if let Some(s) = q.status.as_deref().filter(|s| !STATES.contains(s)) {
        return Err(
            ApiError::bad_request(format!("status {s:?}: give one of {}", STATES.join(", "))).with_field("status")
        );
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit}: give 1 to 1000")).with_field("limit"));
    }
    let status = q.status.clone();
    let mut scans: Vec<ScanItem> = Vec::new();
    // Scans of this server not in the history yet (queued, or just starting).
    for l in state.all_live() {
        let phase = l.feed().phase.name();
        if status.as_deref().is_none_or(|s| s == phase) {
            scans.push(pending_item(l.id.clone(), phase, &l.targets, l.created, None));
        }
    }
    if status.as_deref() != Some("queued") {
        let stored = read_store(&state, move |s| s.list(status.as_deref(), limit)).await?;
        for r in stored {
            if let Some(i) = scans.iter_mut().find(|i| i.id == r.id) {
                *i = ScanItem { status: i.status.clone(), ..ScanItem::from(r) };
            } else {
                scans.push(r.into());
            }
        }
    }
    scans.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
    scans.truncate(limit);
    Ok(Json(ScanList { scans }))
}

/// `GET /api/scans/{id}`: the scan and its hosts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScanDetail {
    scan: ScanItem,
    /// The configuration it runs with.
    #[schema(value_type = Option<Object>)]
    config: Option<ScanConfig>,
    /// Its finished up hosts (so far, while it runs), in address order.
    #[schema(value_type = Vec<Object>)]
    hosts: Vec<HostResult>,
    /// More hosts than shown: the export has them all.
    hosts_truncated: bool,
}

/// A scan and its results.
#[utoipa::path(get, path = "/api/scans/{id}", tag = "scans", params(("id" = String, Path, description = "Scan id")),
    responses((status = 200, body = ScanDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn show(
    axum::extract::State(state): axum::extract::State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ScanDetail>, ApiError> {
    check_id(&id)?;
    let live = state.live(&id);
    let key = id.clone();
    let found = read_store(&state, move |s| match s.scan(&key) {
        Ok(r) => {
            let hosts = s.hosts(&key)?;
            Ok(Some((r, hosts)))
        }
        Err(StoreError::UnknownScan(_)) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    match (found, live) {
        (Some((r, mut hosts)), live) => {
            let config = r.config.clone();
            let mut scan = ScanItem::from(r);
            if let Some(l) = live {
                scan.status = l.feed().phase.name().into();
            }
            let truncated = hosts.len() > MAX_HOSTS_SHOWN;
            hosts.truncate(MAX_HOSTS_SHOWN);
            Ok(Json(ScanDetail { scan, config, hosts, hosts_truncated: truncated }))
        }
        (None, Some(l)) => {
            let phase = l.feed().phase.name();
            let scan = pending_item(id, phase, &l.targets, l.created, None);
            Ok(Json(ScanDetail { scan, config: None, hosts: Vec::new(), hosts_truncated: false }))
        }
        (None, None) => match state.failed(&id) {
            Some(error) => {
                let scan = pending_item(id, "failed", &[], 0, Some(error));
                Ok(Json(ScanDetail { scan, config: None, hosts: Vec::new(), hosts_truncated: false }))
            }
            None => Err(ApiError::not_found("scan")),
        },
    }
}

/// Delete a scan that has ended.
#[utoipa::path(delete, path = "/api/scans/{id}", tag = "scans", params(("id" = String, Path, description = "Scan id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Still running", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn remove(
    axum::extract::State(state): axum::extract::State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    if state.live(&id).is_some() {
        return Err(ApiError::conflict("the scan is running; stop it first (POST /api/scans/{id}/stop)"));
    }
    let db = state.options.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = Store::open(&db)?;
        if store.scan(&id)?.status == "running" {
            return Err(StoreError::StillRunning { id, pid: 0 });
        }
        store.delete(&id)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| match e {
        StoreError::StillRunning { .. } => ApiError::conflict("the scan is running in another process"),
        e => ApiError::from(e),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `POST /api/scans/{id}/stop` answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Stopping {
    id: String,
    /// `stopping`: the scan ends shortly, its results so far kept (status `interrupted`).
    status: String,
}

/// Stop a running or queued scan.
#[utoipa::path(post, path = "/api/scans/{id}/stop", tag = "scans", params(("id" = String, Path, description = "Scan id")),
    responses((status = 202, body = Stopping), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Already ended", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn stop(
    axum::extract::State(state): axum::extract::State<Shared>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Stopping>), ApiError> {
    check_id(&id)?;
    if let Some(l) = state.live(&id) {
        l.cancel.cancel();
        return Ok((StatusCode::ACCEPTED, Json(Stopping { id, status: "stopping".into() })));
    }
    let key = id.clone();
    read_store(&state, move |s| s.scan(&key)).await?;
    Err(ApiError::conflict("the scan has already ended"))
}

/// Query of the export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// json, xml, grepable, normal, yaml, csv, cef, leef, jsonl or html (default json).
    #[param(inline, value_type = Option<String>, pattern = "^(json|xml|grepable|normal|yaml|csv|cef|leef|jsonl|html)$")]
    format: Option<String>,
}

/// A scan that has ended, in an output format.
#[utoipa::path(get, path = "/api/scans/{id}/export", tag = "scans",
    params(("id" = String, Path, description = "Scan id"), ExportQuery),
    responses((status = 200, description = "The document", content(
            (Object = "application/json"), (String = "application/xml"), (String = "text/plain"),
            (Object = "application/yaml"), (String = "text/csv"), (String = "application/x-ndjson"),
            (String = "text/html"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Still running", body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export_scan(
    axum::extract::State(state): axum::extract::State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    let content_type = export::content_type(&format)?;
    check_id(&id)?;
    if state.live(&id).is_some() {
        return Err(ApiError::conflict("the scan is still running; export it once it has ended"));
    }
    let (record, hosts, scripts) =
        read_store(&state, move |s| Ok((s.scan(&id)?, s.hosts(&id)?, s.scan_scripts(&id)?))).await?;
    if record.status == "running" {
        return Err(ApiError::conflict("the scan is still running; export it once it has ended"));
    }
    let bytes = tokio::task::spawn_blocking(move || export::render(&format, &record, hosts, scripts))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    debug_assert!(bytes.len() <= MAX_EXPORT_BYTES);
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// Compare two stored scans.
#[utoipa::path(get, path = "/api/scans/{id}/diff/{other}", tag = "scans",
    params(("id" = String, Path, description = "The older scan"), ("other" = String, Path, description = "The newer scan")),
    responses((status = 200, description = "What changed from the first scan to the second", body = Object),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn diff(
    axum::extract::State(state): axum::extract::State<Shared>,
    Path((id, other)): Path<(String, String)>,
) -> Result<Json<rustmap_store::ScanDiff>, ApiError> {
    check_id(&id)?;
    check_id(&other)?;
    let d = read_store(&state, move |s| {
        s.scan(&id)?;
        s.scan(&other)?;
        rustmap_store::diff(s, &id, &other)
    })
    .await?;
    Ok(Json(d))
}

/// Health.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok` when the server answers.
    status: String,
    version: String,
    /// Scans running or queued in this server.
    scans_active: usize,
}

/// Is the server up (no authentication).
#[utoipa::path(get, path = "/api/system/health", tag = "system", responses((status = 200, body = Health)))]
pub(crate) async fn health(axum::extract::State(state): axum::extract::State<Shared>) -> Json<Health> {
    Json(Health { status: "ok".into(), version: rustmap::VERSION.into(), scans_active: state.all_live().len() })
}

/// What this server may do.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Privileges {
    /// Raw sockets (CAP_NET_RAW): SYN, UDP and the other raw scans, ARP/ICMP discovery.
    raw_sockets: bool,
    /// The scan types this server can run.
    scan_types: Vec<String>,
    /// The default scan type when a request names none.
    default_scan_type: String,
}

/// Raw-socket privileges of the server.
#[utoipa::path(get, path = "/api/system/privileges", tag = "system",
    responses((status = 200, body = Privileges), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn privileges() -> Json<Privileges> {
    let raw = rustmap::privilege::has_raw_socket_privilege();
    let types: &[&str] = if raw {
        &["syn", "connect", "ack", "window", "maimon", "fin", "null", "xmas", "udp", "sctp"]
    } else {
        &["connect"]
    };
    Json(Privileges {
        raw_sockets: raw,
        scan_types: types.iter().map(|s| s.to_string()).collect(),
        default_scan_type: if raw { "syn" } else { "connect" }.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn query_tokens_are_decoded() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("s3cret"), "s3cret");
    }
}
