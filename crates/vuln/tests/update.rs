//! `update` against the loopback fixture server: pages, idempotence, retries, cancel and resume,
//! malformed pages, KEV, incremental windows.

use rustmap_vuln::fixture::{FixtureOptions, FixtureServer};
use rustmap_vuln::{update, ServiceQuery, UpdateOptions, UpdateProgress, VulnDb, VulnError};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn opts(server: &FixtureServer) -> UpdateOptions {
    UpdateOptions {
        nvd_url: server.nvd_url.clone(),
        kev_url: server.kev_url.clone(),
        // With a key the limiter allows 50 requests per 30 s, so the tests do not wait for it.
        api_key: Some("test-key".into()),
        timeout: Duration::from_secs(10),
        max_retries: 3,
        ..UpdateOptions::default()
    }
}

fn quiet(_: &UpdateProgress) {}

fn seeded_cves() -> u64 {
    VulnDb::seed_only().unwrap().stats().unwrap().cves
}

#[test]
fn several_pages_then_nothing_new() {
    let fo = FixtureOptions { page_size: 2, cves: 7, ..FixtureOptions::default() };
    let server = FixtureServer::start(fo).unwrap();
    let db = VulnDb::seed_only().unwrap();
    let mut seen = Vec::new();
    let s = update(&db, &opts(&server), &mut |p| seen.push(p.clone())).unwrap();
    assert_eq!(s.pages, 4);
    assert_eq!((s.cves_new, s.cves_changed), (7, 0));
    assert_eq!((s.kev_new, s.kev_total), (1, 1));
    assert!(!s.resumed);
    assert_eq!(seen.last().map(|p| p.stage), Some("kev"));
    assert!(seen.iter().any(|p| p.stage == "nvd" && p.done == 7 && p.total == Some(7)));
    let st = db.stats().unwrap();
    assert_eq!(st.cves, seeded_cves() + 7);
    assert!(st.last_update.is_some());
    let reqs = server.requests();
    assert!(reqs[0].contains("startIndex=0&resultsPerPage=2000"), "{reqs:?}");
    assert!(reqs.iter().any(|r| r.contains("startIndex=6")));
    assert!(!reqs[0].contains("lastModStartDate"));

    // The second run is incremental and, the feed being unchanged, imports nothing.
    let n = server.requests().len();
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    assert_eq!((s.cves_new, s.cves_changed, s.kev_new, s.kev_total), (0, 0, 0, 1));
    let later = &server.requests()[n..];
    assert!(later[0].contains("lastModStartDate=") && later[0].contains("lastModEndDate="), "{later:?}");
    assert_eq!(db.stats().unwrap().cves, seeded_cves() + 7);

    // A revised feed counts as changed.
    server.revise_all();
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    assert_eq!((s.cves_new, s.cves_changed), (0, 7));
}

#[test]
fn checks_see_imported_cves_and_kev() {
    let fo = FixtureOptions { page_size: 3, cves: 4, ..FixtureOptions::default() };
    let server = FixtureServer::start(fo).unwrap();
    let db = VulnDb::seed_only().unwrap();
    update(&db, &opts(&server), &mut quiet).unwrap();
    let cpes = vec!["cpe:/a:openbsd:openssh:9.2p1".to_string()];
    let v = db.check(&ServiceQuery { product: Some("OpenSSH"), version: Some("9.2p1"), cpes: &cpes }, None).unwrap();
    let f = v.iter().find(|v| v.id == "CVE-2099-0001").expect("fixture CVE matched");
    assert_eq!(
        f.kev.as_ref().map(|k| (k.date_added.as_str(), k.due_date.as_deref())),
        Some(("2099-01-15", Some("2099-02-05")))
    );
    assert_eq!(f.cvss.to_string(), "9.8", "the Primary metric is kept");
    assert_eq!(f.source, "nvd");
    assert_eq!(f.range, "< 9.3p2");
    assert!(v.iter().all(|v| v.id != "CVE-2099-0002"), "a vsftpd CVE does not match OpenSSH");
    let cpes = vec!["cpe:/a:vsftpd:vsftpd:3.0.3".to_string()];
    let v = db.check(&ServiceQuery { product: Some("vsftpd"), version: Some("3.0.3"), cpes: &cpes }, None).unwrap();
    let f = v.iter().find(|v| v.id == "CVE-2099-0002").expect("vsftpd fixture CVE matched via alias");
    assert_eq!((f.range.as_str(), f.kev.is_none()), ("= 3.0.3", true));
}

#[test]
fn rate_limit_answers_are_retried() {
    let fo = FixtureOptions { page_size: 5, cves: 5, fail_first_with_429: true, fail_once_with_503: true };
    let server = FixtureServer::start(fo).unwrap();
    let db = VulnDb::seed_only().unwrap();
    let t = Instant::now();
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    // 1 s of Retry-After for the 429, then the first default back-off (2 s) for the 503.
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!((s.pages, s.cves_new), (1, 5));
    let nvd = server.requests().iter().filter(|r| r.contains("startIndex=0")).count();
    assert_eq!(nvd, 3);

    // Retries are bounded.
    let server = FixtureServer::start(fo).unwrap();
    let db = VulnDb::seed_only().unwrap();
    let o = UpdateOptions { max_retries: 1, ..opts(&server) };
    let e = update(&db, &o, &mut quiet).unwrap_err();
    assert!(matches!(e, VulnError::Http { page: 1, .. }), "{e}");
    assert!(e.to_string().contains("HTTP 503"), "{e}");
}

#[test]
fn cancel_between_pages_then_resume() {
    let fo = FixtureOptions { page_size: 2, cves: 9, ..FixtureOptions::default() };
    let server = FixtureServer::start(fo).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vuln.db");
    let db = VulnDb::open(&path).unwrap();
    let o = opts(&server);
    let cancel = o.cancel.clone();
    let e = update(&db, &o, &mut |p| {
        if p.stage == "nvd" && p.done >= 4 {
            cancel.store(true, Ordering::Relaxed);
        }
    })
    .unwrap_err();
    assert!(matches!(e, VulnError::Cancelled), "{e}");
    let st = db.stats().unwrap();
    assert_eq!(st.cves, seeded_cves() + 4);
    assert_eq!(st.last_update, None, "an unfinished pass records no update time");
    drop(db);

    // Reopened, the next run continues where the first stopped.
    let db = VulnDb::open(&path).unwrap();
    let n = server.requests().len();
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    assert!(s.resumed);
    assert_eq!((s.cves_new, s.cves_changed), (5, 0));
    assert!(server.requests()[n].contains("startIndex=4"), "{:?}", &server.requests()[n..]);
    assert_eq!(db.stats().unwrap().cves, seeded_cves() + 9);
    assert!(db.stats().unwrap().last_update.is_some());
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    assert!(!s.resumed);
    assert_eq!((s.cves_new, s.cves_changed), (0, 0));
}

#[test]
fn malformed_pages_are_errors_and_change_nothing() {
    let fo = FixtureOptions { page_size: 2, cves: 5, ..FixtureOptions::default() };
    let server = FixtureServer::start(fo).unwrap();
    let db = VulnDb::seed_only().unwrap();
    let before = db.stats().unwrap();
    server.set_malformed(Some(0));
    let e = update(&db, &opts(&server), &mut quiet).unwrap_err();
    assert!(matches!(e, VulnError::Malformed { page: 1, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&server.nvd_url) && msg.contains("page 1"), "{msg}");
    assert_eq!(db.stats().unwrap(), before);

    // A bad later page keeps the pages before it, and the next run resumes at it.
    server.set_malformed(Some(2));
    let e = update(&db, &opts(&server), &mut quiet).unwrap_err();
    assert!(matches!(e, VulnError::Malformed { page: 2, .. }), "{e}");
    assert_eq!(db.stats().unwrap().cves, before.cves + 2);
    server.set_malformed(None);
    let s = update(&db, &opts(&server), &mut quiet).unwrap();
    assert!(s.resumed);
    assert_eq!(s.cves_new, 3);
    assert_eq!(db.stats().unwrap().cves, before.cves + 5);
}

#[test]
fn other_statuses_fail_at_once() {
    let server = FixtureServer::start(FixtureOptions::default()).unwrap();
    let db = VulnDb::seed_only().unwrap();
    let o = UpdateOptions { nvd_url: format!("{}-nope", server.kev_url), ..opts(&server) };
    let e = update(&db, &o, &mut quiet).unwrap_err();
    assert!(matches!(e, VulnError::Status { status: 404, page: 1, .. }), "{e}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn from_env_reads_the_variables() {
    // Only this test touches these variables in this binary.
    std::env::set_var("RUSTMAP_NVD_URL", "http://127.0.0.1:9/nvd");
    std::env::set_var("RUSTMAP_KEV_URL", "http://127.0.0.1:9/kev");
    std::env::set_var("NVD_API_KEY", "k");
    let o = UpdateOptions::from_env();
    assert_eq!(
        (o.nvd_url.as_str(), o.kev_url.as_str(), o.api_key.as_deref()),
        ("http://127.0.0.1:9/nvd", "http://127.0.0.1:9/kev", Some("k"))
    );
    std::env::set_var("NVD_API_KEY", "");
    std::env::remove_var("RUSTMAP_NVD_URL");
    let o = UpdateOptions::from_env();
    assert_eq!(o.api_key, None);
    assert_eq!(o.nvd_url, rustmap_vuln::DEFAULT_NVD_URL);
}
