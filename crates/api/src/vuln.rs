//! `/api/vuln/check` and `/api/vuln/update`: the local CVE database (`rustmap-vuln`) over HTTP.
//!
//! A check names services (product, version, CPEs) or a stored scan, and gets their CVEs. An
//! update fetches the NVD and KEV feeds the server was started with (`--vuln-nvd-url`,
//! `--vuln-kev-url`, or the environment): a client never chooses where the server connects. One
//! update runs at a time; a second request while one runs is a 409.

use crate::error::ApiError;
use crate::routes::read_store;
use crate::routes::Shared;
use axum::Json;
use rustmap_model::{CvssScore, Protocol, Vulnerability};
use rustmap_vuln::{ServiceQuery, UpdateOptions, VulnDb};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use utoipa::ToSchema;

/// Most services one check may name.
const MAX_SERVICES: usize = 256;

/// One service to check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServiceItem {
    /// Product, as `-sV` names it (`OpenSSH`).
    product: Option<String>,
    /// Version, as `-sV` reports it (`9.2p1 Debian 2+deb12u10`).
    version: Option<String>,
    /// CPE names (`cpe:/a:openbsd:openssh:9.2p1`).
    cpe: Vec<String>,
}

/// `POST /api/vuln/check`: services, or a stored scan whose services to check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CheckRequest {
    /// Services to check: objects only (serde would also take a struct as an array).
    #[schema(value_type = Vec<ServiceItem>)]
    services: Vec<serde_json::Map<String, serde_json::Value>>,
    /// A stored scan (by id) whose detected services to check.
    scan_id: Option<String>,
    /// Only CVEs with a CVSS base score at least this (0 to 10).
    min_cvss: Option<f64>,
}

/// The CVEs of one service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckItem {
    /// The host (for a scan's services).
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    /// The port (for a scan's services).
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    /// The port's protocol (for a scan's services).
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
    /// The product checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    product: Option<String>,
    /// The version checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    /// Its known vulnerabilities, highest score first.
    #[schema(value_type = Vec<Object>)]
    vulnerabilities: Vec<Vulnerability>,
}

/// `POST /api/vuln/check`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckAnswer {
    /// One item per service checked.
    results: Vec<CheckItem>,
    /// CVEs found in all.
    total: usize,
}

/// `POST /api/vuln/update`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UpdateAnswer {
    /// NVD pages fetched.
    pages: u32,
    /// CVEs new to the database.
    cves_new: u64,
    /// CVEs whose record changed.
    cves_changed: u64,
    /// KEV entries new to the database.
    kev_new: u64,
    /// KEV entries in all.
    kev_total: u64,
    /// The update continued an interrupted one.
    resumed: bool,
}

fn vuln_error(e: rustmap_vuln::VulnError) -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "vuln_database", e.to_string())
}

fn min_score(n: Option<f64>) -> Result<Option<CvssScore>, ApiError> {
    n.map(|v| {
        CvssScore::from_f64(v).ok_or_else(|| {
            ApiError::bad_request(format!("min_cvss {v}: a CVSS score is 0 to 10")).with_field("min_cvss")
        })
    })
    .transpose()
}

/// The database a check reads: the server's file if it has one, else the bundled seed rules.
fn open_db(state: &crate::runner::State) -> Result<VulnDb, ApiError> {
    let path = state.options.vuln_db.clone().or_else(VulnDb::default_path);
    VulnDb::open_for_check(path.as_deref()).map_err(|e| ApiError::internal(e.to_string()))
}

/// Check services, or a stored scan's services, against the local CVE database.
#[utoipa::path(post, path = "/api/vuln/check", tag = "vuln", request_body = CheckRequest,
    responses((status = 200, body = CheckAnswer), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn check(
    axum::extract::State(state): axum::extract::State<Shared>,
    body: Result<Json<CheckRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<CheckAnswer>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let min = min_score(req.min_cvss)?;
    if req.services.len() > MAX_SERVICES {
        return Err(ApiError::bad_request(format!("at most {MAX_SERVICES} services per check")).with_field("services"));
    }
    if req.services.is_empty() == req.scan_id.is_none() {
        return Err(ApiError::bad_request("give either \"services\" or \"scan_id\""));
    }
    // (addr, port, protocol, product, version, cpes) to check.
    type Item = (Option<String>, Option<u16>, Option<Protocol>, Option<String>, Option<String>, Vec<String>);
    let mut items: Vec<Item> = Vec::with_capacity(req.services.len());
    for (i, m) in req.services.into_iter().enumerate() {
        let s: ServiceItem = serde_json::from_value(serde_json::Value::Object(m))
            .map_err(|e| ApiError::bad_request(format!("services[{i}]: {e}")).with_field("services"))?;
        items.push((None, None, None, s.product, s.version, s.cpe));
    }
    if let Some(id) = req.scan_id {
        crate::routes::check_id(&id)?;
        let hosts = read_store(&state, move |s| {
            s.scan(&id)?;
            s.hosts(&id)
        })
        .await?;
        for h in hosts {
            for p in h.ports {
                let Some(svc) = p.service else { continue };
                if svc.version.is_none() && svc.cpe.is_empty() {
                    continue;
                }
                items.push((
                    Some(h.addr.to_string()),
                    Some(p.port),
                    Some(p.protocol),
                    svc.product,
                    svc.version,
                    svc.cpe,
                ));
            }
        }
    }
    let state2 = Arc::clone(&state);
    let results = tokio::task::spawn_blocking(move || {
        let db = open_db(&state2)?;
        let mut out = Vec::new();
        for (addr, port, protocol, product, version, cpe) in items {
            let q = ServiceQuery { product: product.as_deref(), version: version.as_deref(), cpes: &cpe };
            let vulnerabilities = db.check(&q, min).map_err(vuln_error)?;
            let protocol = protocol.map(|p| p.as_str().to_string());
            out.push(CheckItem { addr, port, protocol, product, version, vulnerabilities });
        }
        Ok::<_, ApiError>(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let total = results.iter().map(|r| r.vulnerabilities.len()).sum();
    Ok(Json(CheckAnswer { results, total }))
}

/// An update is running (one at a time per process).
static UPDATING: AtomicBool = AtomicBool::new(false);

/// Update the CVE database from the NVD and the KEV catalog the server was configured with.
#[utoipa::path(post, path = "/api/vuln/update", tag = "vuln",
    responses((status = 200, body = UpdateAnswer), (status = 401, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn update(
    axum::extract::State(state): axum::extract::State<Shared>,
) -> Result<Json<UpdateAnswer>, ApiError> {
    if UPDATING.swap(true, Ordering::AcqRel) {
        return Err(ApiError::conflict("an update of the CVE database is already running"));
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&cancel);
    let shutdown = state.shutdown.clone();
    let watcher = tokio::spawn(async move {
        shutdown.cancelled().await;
        stop.store(true, Ordering::Relaxed);
    });
    let state2 = Arc::clone(&state);
    let done = tokio::task::spawn_blocking(move || {
        let path = state2.options.vuln_db.clone().or_else(VulnDb::default_path).ok_or_else(|| {
            ApiError::internal("no CVE database path: HOME is unset (start the server with --vuln-db FILE)")
        })?;
        let db = VulnDb::open(&path).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut opts = UpdateOptions::from_env();
        if let Some(u) = &state2.options.nvd_url {
            opts.nvd_url = u.clone();
        }
        if let Some(u) = &state2.options.kev_url {
            opts.kev_url = u.clone();
        }
        opts.cancel = cancel;
        rustmap_vuln::update(&db, &opts, &mut |_| {}).map_err(vuln_error)
    })
    .await;
    watcher.abort();
    UPDATING.store(false, Ordering::Release);
    let s = done.map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(UpdateAnswer {
        pages: s.pages,
        cves_new: s.cves_new,
        cves_changed: s.cves_changed,
        kev_new: s.kev_new,
        kev_total: s.kev_total,
        resumed: s.resumed,
    }))
}
