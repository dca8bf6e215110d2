//! A test fixture (cargo feature `fixture`): a loopback HTTP/1.1 server that speaks the NVD
//! CVE API 2.0 and the CISA KEV catalog formats, serving a few made-up CVEs (`CVE-2099-0001`,
//! ...: alternately an OpenSSH one, `< 9.3p2`, and a vsftpd one, `= 3.0.3`), so that front-ends
//! can test `--vuln-update` without the network.
//!
//! Paths: anything under `/rest/json/cves/2.0` is an NVD page (honouring `startIndex` and
//! `resultsPerPage`, the latter capped at [`FixtureOptions::page_size`]; date windows are
//! ignored: every CVE is in every window), `/kev.json` is the KEV catalog (flagging
//! `CVE-2099-0001`, added `2099-01-15`), anything else is a 404. Every answer carries
//! `Connection: close`. The server runs on its own thread and stops when dropped.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fixture server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixtureOptions {
    /// The most CVEs per NVD page, whatever `resultsPerPage` asks (at least 1).
    pub page_size: usize,
    /// How many CVEs there are.
    pub cves: usize,
    /// Answer the first NVD request with `429 Too Many Requests` and `Retry-After: 1`.
    pub fail_first_with_429: bool,
    /// Answer one NVD request (the first one not answered 429) with `503 Service Unavailable`
    /// without `Retry-After`.
    pub fail_once_with_503: bool,
}

impl Default for FixtureOptions {
    fn default() -> FixtureOptions {
        FixtureOptions { page_size: 2, cves: 5, fail_first_with_429: false, fail_once_with_503: false }
    }
}

/// State shared with the server thread.
#[derive(Debug, Default)]
struct Shared {
    log: Mutex<Vec<String>>,
    nvd_requests: AtomicU64,
    served_503: AtomicBool,
    malformed_at: Mutex<Option<u64>>,
    revision: AtomicU32,
    stop: AtomicBool,
}

/// A running fixture server; stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    /// The NVD CVE API 2.0 endpoint (`http://127.0.0.1:PORT/rest/json/cves/2.0`).
    pub nvd_url: String,
    /// The KEV catalog (`http://127.0.0.1:PORT/kev.json`).
    pub kev_url: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FixtureServer {
    /// Start a server on `127.0.0.1`, on a free port.
    pub fn start(opts: FixtureOptions) -> std::io::Result<FixtureServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("vuln-fixture".into()).spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &opts, &s),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })?;
        Ok(FixtureServer {
            nvd_url: format!("http://127.0.0.1:{port}/rest/json/cves/2.0"),
            kev_url: format!("http://127.0.0.1:{port}/kev.json"),
            shared,
            thread: Some(thread),
        })
    }

    /// The requests so far: each path with its query, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Answer NVD requests for this `startIndex` with a malformed page (`None`: stop doing so).
    pub fn set_malformed(&self, start_index: Option<u64>) {
        *self.shared.malformed_at.lock().unwrap_or_else(|e| e.into_inner()) = start_index;
    }

    /// Give every CVE a new `lastModified` (and description), as if the NVD had revised them all.
    pub fn revise_all(&self) {
        self.shared.revision.fetch_add(1, Ordering::Relaxed);
    }

    /// The fixture's CVE ids, in order.
    pub fn cve_ids(&self, opts: &FixtureOptions) -> Vec<String> {
        (1..=opts.cves).map(cve_id).collect()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cve_id(n: usize) -> String {
    format!("CVE-2099-{n:04}")
}

/// The NVD record of CVE number `n` (1-based) at revision `rev`.
fn cve(n: usize, rev: u32) -> Value {
    let (desc, metrics, criteria, bounds) = if n % 2 == 1 {
        (
            format!("Fixture flaw {n} in OpenSSH before 9.3p2 lets a remote attacker do harm. Revision {rev}."),
            json!({
                "cvssMetricV31": [
                    {"source": "secondary@example.invalid", "type": "Secondary",
                     "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", "baseScore": 3.7}},
                    {"source": "nvd@nist.gov", "type": "Primary",
                     "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "baseScore": 9.8}}
                ],
                "cvssMetricV2": [{"type": "Primary", "cvssData": {"version": "2.0", "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P", "baseScore": 7.5}}]
            }),
            "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*",
            json!({"versionEndExcluding": "9.3p2"}),
        )
    } else {
        (
            format!("Fixture flaw {n} in vsftpd 3.0.3 allows a denial of service. Revision {rev}."),
            json!({"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary",
                   "cvssData": {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "baseScore": 7.5}}]}),
            "cpe:2.3:a:vsftpd_project:vsftpd:3.0.3:*:*:*:*:*:*:*",
            json!({}),
        )
    };
    let mut m =
        json!({"vulnerable": true, "criteria": criteria, "matchCriteriaId": "00000000-0000-0000-0000-000000000000"});
    if let (Some(obj), Some(b)) = (m.as_object_mut(), bounds.as_object()) {
        for (k, v) in b {
            obj.insert(k.clone(), v.clone());
        }
    }
    json!({"cve": {
        "id": cve_id(n),
        "sourceIdentifier": "fixture@example.invalid",
        "published": "2099-01-01T00:00:00.000",
        "lastModified": format!("2099-01-{:02}T00:00:00.000", 2 + rev.min(27)),
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": desc}],
        "metrics": metrics,
        "configurations": [{"operator": "AND", "nodes": [
            {"operator": "OR", "negate": false, "cpeMatch": [m]},
            {"operator": "OR", "negate": false, "cpeMatch": [
                {"vulnerable": false, "criteria": "cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*"}]}
        ]}],
        "references": []
    }})
}

/// A query parameter's value.
fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

/// Answer one connection.
fn serve(mut stream: TcpStream, opts: &FixtureOptions, s: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/").to_string();
    s.log.lock().unwrap_or_else(|e| e.into_inner()).push(target.clone());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, extra, body) = if path.starts_with("/rest/json/cves/2.0") {
        nvd_answer(query, opts, s)
    } else if path == "/kev.json" {
        let kev = json!({"title": "fixture KEV", "catalogVersion": "2099.01.15", "dateReleased": "2099-01-15T00:00:00.000Z",
            "count": 1, "vulnerabilities": [{"cveID": cve_id(1), "vendorProject": "OpenBSD", "product": "OpenSSH",
            "vulnerabilityName": "fixture", "dateAdded": "2099-01-15", "shortDescription": "fixture",
            "requiredAction": "update", "dueDate": "2099-02-05", "knownRansomwareCampaignUse": "Unknown", "notes": ""}]});
        ("200 OK", "", kev.to_string())
    } else {
        ("404 Not Found", "", "not found".to_string())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
}

/// The answer to one NVD request: status line, extra headers, body.
fn nvd_answer(query: &str, opts: &FixtureOptions, s: &Shared) -> (&'static str, &'static str, String) {
    let n = s.nvd_requests.fetch_add(1, Ordering::Relaxed);
    if opts.fail_first_with_429 && n == 0 {
        return ("429 Too Many Requests", "Retry-After: 1\r\n", "{}".into());
    }
    if opts.fail_once_with_503 && !s.served_503.swap(true, Ordering::Relaxed) {
        return ("503 Service Unavailable", "", "{}".into());
    }
    let start = param(query, "startIndex").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let want = param(query, "resultsPerPage").and_then(|v| v.parse::<usize>().ok()).unwrap_or(2000);
    if *s.malformed_at.lock().unwrap_or_else(|e| e.into_inner()) == Some(start as u64) {
        return ("200 OK", "", "{\"resultsPerPage\": 2, \"vulnerabilities\": [{\"cve\": ".into());
    }
    let per = want.clamp(1, opts.page_size.max(1));
    let rev = s.revision.load(Ordering::Relaxed);
    let items: Vec<Value> = (start..opts.cves.min(start.saturating_add(per))).map(|i| cve(i + 1, rev)).collect();
    let page = json!({"resultsPerPage": items.len(), "startIndex": start, "totalResults": opts.cves,
        "format": "NVD_CVE", "version": "2.0", "timestamp": "2099-01-31T00:00:00.000", "vulnerabilities": items});
    ("200 OK", "", page.to_string())
}
