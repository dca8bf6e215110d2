//! The API server in process, on loopback, with its history in a SQLite file on disk: every
//! endpoint with and without the key, a scan's whole life (start, results, exports in every
//! format, diff, delete), stop, the limits, bad requests, the allow-list, WebSocket streaming and
//! a graceful shutdown. Scans go to 127.0.0.1 only (connect scans of ports this test listens on).

use reqwest::{Client, Method, StatusCode};
use rustmap_api::{ApiOptions, Server};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "test-key-1";

/// No reverse DNS: a PTR query for a loopback address could leave the machine.
static NO_DNS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({"names": {"reverse": "never"}}));

struct Api {
    addr: SocketAddr,
    db: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start(allow: Option<&str>) -> Api {
        Api::start_with(allow, None).await
    }

    /// A server whose `/api/vuln/update` fetches from `feeds` (NVD URL, KEV URL).
    async fn start_with(allow: Option<&str>, feeds: Option<(String, String)>) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rustmap.db");
        let options = ApiOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            api_key: Some(KEY.into()),
            allow: allow.map(|a| rustmap::AllowList::parse(a).unwrap()),
            db: db.clone(),
            profiles: None,
            vuln_db: Some(dir.path().join("vuln.db")),
            // By default nothing listens there: an update fails at once, and never leaves the machine.
            nvd_url: Some(feeds.as_ref().map_or("http://127.0.0.1:9/rest/json/cves/2.0".into(), |f| f.0.clone())),
            kev_url: Some(feeds.as_ref().map_or("http://127.0.0.1:9/kev.json".into(), |f| f.1.clone())),
            distribute: None,
        };
        let server = Server::bind(options).await.unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Api { addr, db, stop: Some(tx), task: Some(task), _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Client::new().request(method, self.url(path)).bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn start_scan(&self, body: Value) -> String {
        let (status, v) = self.call(Method::POST, "/api/scans", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Poll until the scan is in one of `states` (bounded: 30 s).
    async fn wait_for(&self, id: &str, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = self.call(Method::GET, &format!("/api/scans/{id}"), None).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            if states.contains(&v["scan"]["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(Instant::now() < deadline, "scan {id} never reached {states:?}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop the server (bounded: 30 s); the database's directory lives as long as the result.
    async fn shutdown(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap()).await.unwrap().unwrap();
        self._dir
    }
}

/// A port with a listener (open) and one without (closed).
fn ports() -> (TcpListener, u16, u16) {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = open.local_addr().unwrap().port();
    (open, port, closed)
}

/// The next text frame, `None` when the socket closed (bounded by the caller's timeout).
async fn next_text<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt;
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_the_key_but_health() {
    let api = Api::start(None).await;
    let id = "01M0000000000000000000000A";
    let routes = [
        (Method::POST, "/api/scans".to_string()),
        (Method::GET, "/api/scans".into()),
        (Method::POST, "/scan".into()),
        (Method::GET, format!("/api/scans/{id}")),
        (Method::DELETE, format!("/api/scans/{id}")),
        (Method::POST, format!("/api/scans/{id}/stop")),
        (Method::GET, format!("/api/scans/{id}/export?format=json")),
        (Method::GET, format!("/api/scans/{id}/diff/{id}")),
        (Method::GET, format!("/api/scans/{id}/events")),
        (Method::POST, "/api/vuln/check".into()),
        (Method::POST, "/api/vuln/update".into()),
        (Method::GET, "/api/system/privileges".into()),
    ];
    let c = Client::new();
    for (m, path) in &routes {
        for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdA=="), Some(KEY)] {
            let mut req = c.request(m.clone(), api.url(path)).header("content-type", "application/json").body("{}");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if auth.is_none() || auth != Some(KEY) {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{m} {path} with {auth:?}");
                assert_eq!(body["error"]["code"], "unauthorized", "{m} {path}: {body}");
            }
        }
        let resp = c.request(m.clone(), api.url(path)).bearer_auth(KEY).json(&json!({})).send().await.unwrap();
        assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{m} {path} with the key");
    }
    // The key in ?token= counts for WebSocket upgrades only.
    let resp = c.get(api.url(&format!("/api/scans?token={KEY}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    for open in ["/api/system/health", "/api/openapi.json", "/api/docs"] {
        let resp = c.get(api.url(open)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{open}");
    }
    let (s, v) = api.call(Method::POST, "/api/vuln/check", Some(json!({}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
    let (s, v) = api.call(Method::GET, "/api/system/privileges", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["raw_sockets"].is_boolean(), "{v}");
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_is_started_shown_exported_diffed_and_deleted() {
    let api = Api::start(None).await;
    let (listener, open, closed) = ports();
    let body = json!({"targets": ["127.0.0.1"], "scan_type": "T", "ports": format!("{open},{closed}"), "skip_discovery": true,
                      "config": NO_DNS.clone()});
    let first = api.start_scan(body.clone()).await;
    let v = api.wait_for(&first, &["completed"]).await;
    let ports = &v["hosts"][0]["ports"];
    let state_of = |p: u16| {
        ports.as_array().unwrap().iter().find(|x| x["port"] == p).map(|x| x["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state_of(open).as_deref(), Some("open"), "{v}");
    assert_eq!(v["scan"]["open_ports"], 1);
    assert_eq!(v["config"]["scan_types"], json!(["connect"]));
    // Every export format, from the writers the CLI uses.
    for (format, needle) in [
        ("json", format!("{open}")),
        ("xml", format!("portid=\"{open}\"")),
        ("grepable", format!("{open}/open/tcp")),
        ("normal", format!("{open}/tcp")),
        ("yaml", format!("{open}")),
        ("csv", format!("{open}")),
        ("cef", format!("{open}")),
        ("leef", format!("{open}")),
        ("jsonl", "host_done".to_string()),
        ("html", "<html".to_string()),
    ] {
        let resp = Client::new()
            .get(api.url(&format!("/api/scans/{first}/export?format={format}")))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{format}");
        let text = resp.text().await.unwrap();
        assert!(text.contains(&needle), "{format} export lacks {needle:?}:\n{text}");
    }
    let (s, v) = api.call(Method::GET, &format!("/api/scans/{first}/export?format=pdf"), None).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("format")));
    // The port closes; a second scan (a second later: one start per second per target) differs.
    drop(listener);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = api.start_scan(body).await;
    api.wait_for(&second, &["completed"]).await;
    let (s, d) = api.call(Method::GET, &format!("/api/scans/{first}/diff/{second}"), None).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(d.to_string().contains(&format!("{open}")), "the diff names the port that closed: {d}");
    let (s, l) = api.call(Method::GET, "/api/scans?status=completed", None).await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = l["scans"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    let (s, l) = api.call(Method::GET, "/api/scans?status=running", None).await;
    assert_eq!((s, l["scans"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = api.call(Method::GET, "/api/scans?status=bogus", None).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("status")));
    // Stop of a scan that has ended: 409. Delete: 204, then it is gone.
    let (s, _) = api.call(Method::POST, &format!("/api/scans/{first}/stop"), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = api.call(Method::DELETE, &format!("/api/scans/{first}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api.call(Method::GET, &format!("/api/scans/{first}"), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, _) = api.call(Method::DELETE, &format!("/api/scans/{first}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api.call(Method::GET, &format!("/api/scans/{second}/diff/{first}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a diff with a deleted scan");
    api.shutdown().await;
}

/// A scan that takes minutes unless stopped: 2000 ports at one probe per 100 ms.
fn slow(target: &str) -> Value {
    json!({"targets": [target], "scan_type": "T", "ports": "1-2000", "skip_discovery": true,
           "config": {"timing": {"scan_delay": "100ms"}, "ports": {"sequential": true}, "names": {"reverse": "never"}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_stop_and_graceful_shutdown() {
    let api = Api::start(None).await;
    // One start per second per target.
    let a = api.start_scan(slow("127.0.0.1")).await;
    let resp =
        Client::new().post(api.url("/api/scans")).bearer_auth(KEY).json(&slow("127.0.0.1")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_some(), "429 says when to come back");
    // Ten at once: nine more on other loopback addresses, then the eleventh is refused...
    let mut ids = vec![a.clone()];
    for i in 2..=10 {
        ids.push(api.start_scan(slow(&format!("127.0.0.{i}"))).await);
    }
    let (s, v) = api.call(Method::POST, "/api/scans", Some(slow("127.0.0.11"))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")), "{v}");
    // ...or waits, when it asks to.
    let (s, v) = api.call(Method::POST, "/api/scans?queue=true", Some(slow("127.0.0.12"))).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::ACCEPTED, Some("queued")), "{v}");
    let queued = v["id"].as_str().unwrap().to_string();
    let (_, l) = api.call(Method::GET, "/api/scans?status=queued", None).await;
    assert_eq!(l["scans"][0]["id"].as_str(), Some(queued.as_str()));
    // A running scan cannot be deleted; stopping it frees a slot, which the queued one takes.
    let (s, _) = api.call(Method::DELETE, &format!("/api/scans/{a}"), None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = api.call(Method::POST, &format!("/api/scans/{a}/stop"), None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::ACCEPTED, Some("stopping")));
    let v = api.wait_for(&a, &["interrupted"]).await;
    assert!(v["scan"]["ended"].is_i64(), "{v}");
    api.wait_for(&queued, &["running"]).await;
    // Shutting down stops the other ten; each is stored as interrupted.
    let db = api.db.clone();
    let _dir = api.shutdown().await;
    let store = rustmap_store::Store::open_read_only(&db).unwrap();
    ids.push(queued);
    for id in &ids {
        assert_eq!(store.scan(id).unwrap().status, "interrupted", "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    let api = Api::start(Some("127.0.0.0/24")).await;
    let c = Client::new();
    let post = |body: &'static str, ctype: &'static str| {
        c.post(api.url("/api/scans")).bearer_auth(KEY).header("content-type", ctype).body(body).send()
    };
    for (body, ctype, status, code) in [
        ("{\"targets\": ", "application/json", 400, "bad_json"),
        ("[1, 2]", "application/json", 400, "bad_json"),
        ("{\"target\": [\"127.0.0.1\"]}", "application/json", 400, "bad_json"),
        ("{\"targets\": [\"127.0.0.1\"]}", "text/plain", 415, "not_json"),
        ("{}", "application/json", 400, "missing_value"),
    ] {
        let resp = post(body, ctype).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let huge = format!("{{\"targets\": [\"{}\"]}}", "1".repeat(100_000));
    let resp = c
        .post(api.url("/api/scans"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for (body, field) in [
        (json!({"targets": ["127.0.0.1"], "ports": "99999"}), "ports.spec"),
        (json!({"targets": ["127.0.0.1"], "scan_type": "Q"}), "scan_type"),
        (json!({"targets": ["127.0.0.1"], "config": {"target_files": ["/etc/passwd"]}}), "config.target_files"),
        (
            json!({"targets": ["127.0.0.1"], "config": {"output": {"files": [{"format": "xml", "path": "/tmp/x"}]}}}),
            "config.output.files",
        ),
        (
            json!({"targets": ["127.0.0.1"], "config": {"service": {"probe_db": ["/etc/shadow"]}}}),
            "config.service.probe_db",
        ),
        // Scripts by name only: no files or directories of the server, no argument files.
        (json!({"targets": ["127.0.0.1"], "scripts": "/tmp"}), "config.scripts.select"),
        (json!({"targets": ["127.0.0.1"], "scripts": "default,../x.nse"}), "config.scripts.select"),
        (
            json!({"targets": ["127.0.0.1"], "config": {"scripts": {"select": "banner", "args_file": "/etc/passwd"}}}),
            "config.scripts.args_file",
        ),
        // Nor the server's cloud credentials.
        (json!({"targets": ["127.0.0.1"], "config": {"cloud": {"providers": ["aws"]}}}), "config.cloud"),
        // A server started without --nats has no cluster to distribute to.
        (json!({"targets": ["127.0.0.1"], "distributed": true}), "distributed"),
        (json!({"targets": ["127.0.0.1"], "scripts": "no-such-script"}), "scripts.select"),
        (json!({"targets": ["127.0.0.1"], "scripts": "banner", "script_args": "a={"}), "scripts.args"),
    ] {
        let (s, v) = api.call(Method::POST, "/api/scans", Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"].as_str(), Some(field), "{body}: {v}");
    }
    // The allow-list: addresses and blocks outside it are refused before anything is sent.
    for target in ["10.0.0.1", "127.0.1.1", "127.0.0.0/16"] {
        let (s, v) = api.call(Method::POST, "/api/scans", Some(json!({"targets": [target]}))).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("outside_allow_list")),
            "{target}: {v}"
        );
    }
    let (s, v) = api
        .call(
            Method::POST,
            "/api/scans",
            Some(json!({"targets": ["127.0.0.1"], "config": {"names": {"servers": ["192.0.2.53"]}}})),
        )
        .await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::FORBIDDEN, Some("config.names.servers")), "{v}");
    for path in
        ["/api/scans/nope", "/api/scans/01M0000000000000000000000A", "/api/scans/01M0000000000000000000000A/export"]
    {
        let (s, v) = api.call(Method::GET, path, None).await;
        assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}");
    }
    let (s, v) = api.call(Method::PUT, "/api/scans", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_outside_the_allow_list_are_left_out_by_the_scan_itself() {
    // 127.0.0.0/14 passes the check of literal targets (its first 65,536 addresses are in
    // 127.0.0.0/15); the scan leaves the other half out. A list scan (-sL) sends nothing.
    let api = Api::start(Some("127.0.0.0/15")).await;
    let id = api
        .start_scan(json!({"targets": ["127.0.0.0/14"], "config": {"mode": "list", "names": {"reverse": "never"}}}))
        .await;
    let deadline = Duration::from_secs(60);
    let url = format!("ws://{}/api/scans/{id}/events?token={KEY}", api.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut warning, mut finished) = (String::new(), Value::Null);
    while let Some(text) = tokio::time::timeout(deadline, next_text(&mut ws)).await.unwrap() {
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["event"].as_str() {
            Some("warning") => warning = v["message"].as_str().unwrap().to_string(),
            Some("scan_finished") => finished = v,
            _ => {}
        }
    }
    assert_eq!(finished["hosts_total"], 131_072, "{finished}");
    assert!(warning.starts_with("131072 address(es) outside the allow-list were not scanned: 127.2.0.0"), "{warning}");
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_see_port_events_before_the_scan_ends() {
    let api = Api::start(None).await;
    let (_listener, open, _) = ports();
    // The open port first (in ascending order), then ~2 s more of probes.
    let ports = format!("{open}-{}", open.saturating_add(40));
    let body = json!({"targets": ["127.0.0.1"], "scan_type": "T", "ports": ports, "skip_discovery": true,
                      "config": {"timing": {"scan_delay": "50ms"}, "ports": {"sequential": true}, "names": {"reverse": "never"}}});
    let id = api.start_scan(body).await;
    let url = format!("ws://{}/api/scans/{id}/events?token={KEY}", api.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut seen = Vec::new();
    let mut open_seen_while_running = false;
    let deadline = Duration::from_secs(30);
    while let Some(text) = tokio::time::timeout(deadline, next_text(&mut ws)).await.unwrap() {
        let v: Value = serde_json::from_str(&text).unwrap();
        let kind = v["event"].as_str().unwrap_or("").to_string();
        if kind == "port_found" && v["port"]["port"] == open {
            let (_, s) = api.call(Method::GET, &format!("/api/scans/{id}"), None).await;
            open_seen_while_running = s["scan"]["status"] == "running";
        }
        seen.push(kind);
    }
    assert_eq!(seen.first().map(String::as_str), Some("scan_started"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("scan_finished"), "{seen:?}");
    assert!(open_seen_while_running, "the open port's event came while the scan still ran: {seen:?}");
    // A finished scan is replayed from the store; a wrong token or a foreign Origin is refused.
    let url = format!("ws://{}/api/scans/{id}/events?token={KEY}", api.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut replay = Vec::new();
    while let Some(text) = tokio::time::timeout(deadline, next_text(&mut ws)).await.unwrap() {
        replay.push(serde_json::from_str::<Value>(&text).unwrap()["event"].as_str().unwrap().to_string());
    }
    assert_eq!(replay, ["scan_started", "host_done", "scan_finished"]);
    let bad = format!("ws://{}/api/scans/{id}/events?token=nope", api.addr);
    assert!(tokio_tungstenite::connect_async(bad).await.is_err());
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/api/scans/{id}/events?token={KEY}", api.addr).into_client_request().unwrap();
    req.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err(), "a foreign page cannot use ?token=");
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_only_loopback_is_served() {
    let options = |listen: &str, key: Option<&str>| ApiOptions {
        listen: listen.parse().unwrap(),
        api_key: key.map(str::to_string),
        allow: None,
        db: std::env::temp_dir().join("rustmap-api-never-created.db"),
        profiles: None,
        vuln_db: None,
        nvd_url: None,
        kev_url: None,
        distribute: None,
    };
    let e = Server::bind(options("0.0.0.0:0", None)).await.err().unwrap();
    assert!(e.to_string().contains("--api-key"), "{e}");
    let e = Server::bind(options("127.0.0.1:0", Some("  "))).await.err().unwrap();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vuln_check_and_update_use_the_servers_database_and_feeds() {
    let fixture = rustmap_vuln::fixture::FixtureServer::start(rustmap_vuln::fixture::FixtureOptions {
        page_size: 2,
        cves: 4,
        fail_first_with_429: false,
        fail_once_with_503: true,
    })
    .unwrap();
    let api = Api::start_with(None, Some((fixture.nvd_url.clone(), fixture.kev_url.clone()))).await;
    let ssh = json!({"services": [{"product": "OpenSSH", "version": "9.2p1 Debian 2+deb12u10",
                                   "cpe": ["cpe:/a:openbsd:openssh:9.2p1"]}]});
    // Before any update: the bundled seed rules.
    let (s, v) = api.call(Method::POST, "/api/vuln/check", Some(ssh.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids = |v: &Value| -> Vec<String> {
        v["results"][0]["vulnerabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().into())
            .collect()
    };
    assert!(ids(&v).contains(&"CVE-2023-38408".to_string()), "{v}");
    assert!(!ids(&v).iter().any(|i| i.starts_with("CVE-2099-")), "{v}");
    assert_eq!(v["total"].as_u64(), Some(ids(&v).len() as u64));
    let (s, v) = api
        .call(
            Method::POST,
            "/api/vuln/check",
            Some(json!({"services": [{"product": "OpenSSH",
        "version": "9.2p1", "cpe": ["cpe:/a:openbsd:openssh:9.2p1"]}], "min_cvss": 9})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["results"][0]["vulnerabilities"].as_array().unwrap().iter().all(|x| x["cvss"].as_f64().unwrap() >= 9.0));
    let (s, v) = api.call(Method::POST, "/api/vuln/check", Some(json!({"services": [{}], "min_cvss": 11}))).await;
    assert_eq!((s, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("min_cvss")), "{v}");

    let (s, v) = api.call(Method::POST, "/api/vuln/update", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["cves_new"].as_u64(), v["pages"].as_u64()), (Some(4), Some(2)), "{v}");
    let (s, v) = api.call(Method::POST, "/api/vuln/update", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["cves_new"].as_u64(), v["cves_changed"].as_u64(), v["kev_new"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    let (_, v) = api.call(Method::POST, "/api/vuln/check", Some(ssh)).await;
    assert!(ids(&v).iter().any(|i| i.starts_with("CVE-2099-")), "the update is used: {v}");

    // A stored scan's services: a scan without -sV has none to check, and an unknown id is a 404.
    let (s, v) =
        api.call(Method::POST, "/api/vuln/check", Some(json!({"scan_id": "01M0000000000000000000000A"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    api.shutdown().await;
}
