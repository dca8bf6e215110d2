//! The API's OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and served
//! at `/api/openapi.json`, and `/api/docs`, a page that renders it with a few lines of inline
//! script: nothing is fetched from elsewhere when it is viewed.

use crate::routes;
use axum::response::{Html, IntoResponse};
use axum::Json;
use serde::Serialize;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The body of `POST /api/scans`: the guide's fields (documentation of
/// [`rustmap::ScanRequest`], which the handler parses; a test keeps the two in step).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ScanRequest)]
#[allow(dead_code)]
pub(crate) struct ScanRequestDoc {
    /// Addresses, CIDR blocks, nmap ranges or names: one string or a list.
    #[schema(example = json!(["127.0.0.1"]))]
    targets: OneOrManyDoc,
    /// Ports as `-p` takes them.
    #[schema(example = "22,80,443")]
    ports: Option<String>,
    /// The N most common ports.
    #[schema(minimum = 1, maximum = 65535)]
    top_ports: Option<u32>,
    /// nmap letters (`S`, `SU`, `T`) or names (`syn`, `connect`, `udp`), or a list of them.
    #[schema(example = "T")]
    scan_type: Option<OneOrManyDoc>,
    /// Service and version detection (`-sV`).
    service_detection: Option<bool>,
    /// OS detection (`-O`): not built yet, refused with 400.
    os_detection: Option<bool>,
    /// Timing template: 0 to 5, `T0`..`T5`, or its name (paranoid, sneaky, polite, normal,
    /// aggressive, insane).
    timing: Option<TimingDoc>,
    /// Skip host discovery (`-Pn`).
    skip_discovery: Option<bool>,
    /// Targets to leave out: one string or a list.
    exclude: Option<OneOrManyDoc>,
    /// Packets per second, at most.
    #[schema(exclusive_minimum = 0.0)]
    max_rate: Option<f64>,
    /// Packets per second, at least.
    #[schema(exclusive_minimum = 0.0)]
    min_rate: Option<f64>,
    /// Only open ports in the results.
    open_only: Option<bool>,
    /// Scripts to run, as `--script` takes them: names, categories, globs, `and`/`or`/`not`
    /// (`"default"` is `-sC`; `"http-title,ssh-hostkey"`; `"http-* and not http-slowloris"`).
    scripts: Option<String>,
    /// Arguments for the scripts, as `--script-args` takes them (`"http-title.url=/admin"`).
    script_args: Option<String>,
    /// Known vulnerabilities of the services found (`--vuln-check`; turns on `-sV`).
    vuln_check: Option<bool>,
    /// Only CVEs with a CVSS score at least this (`--vuln-min-cvss`; turns on `vuln_check`).
    #[schema(minimum = 0.0, maximum = 10.0)]
    vuln_min_cvss: Option<f64>,
    /// Country, city, location and AS of every host (`--geoip`), from the server's databases.
    geoip: Option<bool>,
    /// A built-in or saved profile, laid down first (quick, network-discovery, web-audit,
    /// full-audit, stealth, iot-scan, aggressive, or a saved one).
    profile: Option<String>,
    /// A whole scan configuration (the document `rustmap --save-profile` writes, in JSON), for
    /// everything the flat fields do not name.
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// Run the scan on the agents of the server's NATS cluster (a server started with
    /// `--nats URL`; 400 otherwise). Results, events and exports are a local scan's.
    distributed: Option<bool>,
}

/// One string or a list of strings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum OneOrManyDoc {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// A timing template.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum TimingDoc {
    /// 0 to 5.
    Level(u8),
    /// `T0`..`T5` or a name.
    Name(String),
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("--api-key")).build(),
            ),
        );
        // OpenAPI links: the id a start answers with names the scan for the other operations,
        // which lets clients (and schemathesis's stateful tests) follow a scan's life.
        let Some(item) = doc.paths.paths.get_mut("/api/scans") else { return };
        let Some(post) = item.post.as_mut() else { return };
        let Some(utoipa::openapi::RefOr::T(accepted)) = post.responses.responses.get_mut("202") else { return };
        for (name, op) in
            [("GetScan", "show"), ("StopScan", "stop"), ("ExportScan", "export_scan"), ("DeleteScan", "remove")]
        {
            let link = LinkBuilder::new().operation_id(op).parameter("id", "$response.body#/id").build();
            accepted.links.insert(name.to_string(), utoipa::openapi::RefOr::T(link));
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "RustMap API", description = "Scans as sessions: start, follow, stop, export and compare them."),
    paths(
        routes::create, routes::list, routes::show, routes::remove, routes::stop, routes::export_scan, routes::diff,
        crate::ws::events, crate::vuln::check, crate::vuln::update, routes::health, routes::privileges
    ),
    modifiers(&Security)
)]
struct Doc;

/// The document.
pub(crate) fn spec() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.info.version = rustmap::VERSION.to_string();
    doc
}

/// The document as JSON. utoipa 5.5 writes a link's fields in snake case (`operation_id`);
/// OpenAPI spells them in camel case, so they are renamed here.
pub(crate) fn spec_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(spec()).unwrap_or_default();
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for op in paths.values_mut().filter_map(|i| i.as_object_mut()).flat_map(|i| i.values_mut()) {
            let responses = op.get_mut("responses").and_then(|r| r.as_object_mut());
            for r in responses.into_iter().flat_map(|r| r.values_mut()) {
                let links = r.get_mut("links").and_then(|l| l.as_object_mut());
                for link in links.into_iter().flat_map(|l| l.values_mut()).filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.into(), v);
                        }
                    }
                }
            }
        }
    }
    doc
}

/// `GET /api/openapi.json`.
pub(crate) async fn document() -> impl IntoResponse {
    Json(spec_json())
}

/// `GET /api/docs`: the document rendered in the browser, offline.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RustMap API</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2em}.op{margin:1em 0;padding:.5em 1em;border-left:4px solid #888;background:#f7f7f7}
.m{font:bold 13px monospace;text-transform:uppercase;margin-right:.5em}.get{border-color:#2a7}.post{border-color:#27a}.delete{border-color:#a22}
code,pre{font:13px monospace}pre{background:#fff;border:1px solid #ddd;padding:.5em;overflow:auto;max-height:20em}
</style></head><body>
<h1>RustMap API</h1><p>The OpenAPI document: <a href="/api/openapi.json">/api/openapi.json</a>. Authentication:
<code>Authorization: Bearer TOKEN</code> (the server's <code>--api-key</code>); WebSocket clients may use <code>?token=TOKEN</code>.</p>
<div id="ops">Loading…</div>
<script>
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  const out = document.getElementById('ops'); out.textContent = '';
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text) e.textContent = text; return e; };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const box = el('div', 'op ' + method);
      const h = el('div'); h.append(el('span', 'm', method), el('code', '', path)); box.append(h);
      if (op.summary || op.description) box.append(el('p', '', op.summary || op.description));
      const codes = Object.keys(op.responses || {}).join(', ');
      box.append(el('p', '', 'Responses: ' + codes + (op.security ? ' · needs the API key' : '')));
      out.append(box);
    }
  }
  const h = el('h2', '', 'Schemas'); out.append(h);
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    out.append(el('h3', '', name)); out.append(el('pre', '', JSON.stringify(schema, null, 2)));
  }
}).catch(e => { document.getElementById('ops').textContent = 'Could not load the document: ' + e; });
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_schema_names_every_field_the_handler_reads() {
        let doc = spec_json();
        let props = doc["components"]["schemas"]["ScanRequest"]["properties"].as_object().unwrap();
        // ScanRequest serializes every field (None as null): its keys are the fields it reads.
        let fields = serde_json::to_value(rustmap::ScanRequest::default()).unwrap();
        let mut fields: Vec<&String> = fields.as_object().unwrap().keys().collect();
        let mut documented: Vec<&String> = props.keys().collect();
        fields.sort();
        documented.sort();
        assert_eq!(fields, documented);
        for path in ["/api/scans", "/api/scans/{id}", "/api/scans/{id}/events", "/api/system/health"] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        assert!(doc["paths"]["/api/system/health"]["get"]["security"].is_null(), "health needs no key");
        let link = &doc["paths"]["/api/scans"]["post"]["responses"]["202"]["links"]["GetScan"];
        assert_eq!(link["operationId"], "show", "{link}");
    }
}
