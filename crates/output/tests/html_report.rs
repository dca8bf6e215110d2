//! The HTML report opened in a real browser (headless Chromium): it renders the hosts and charts,
//! pages a large scan, and a hostile banner runs nothing. Skips with a reason when Chromium is
//! not installed, except under `CI=true`, where that is a failure.

use rustmap_model::*;
use rustmap_output::html::HtmlWriter;
use rustmap_output::{Options, Sink};
use std::process::Command;

/// A banner that tries to run script three ways: a script element, an event handler, and
/// closing the report's own JSON data block.
const HOSTILE: &str = "<script>document.title='PWNED'</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"></script><script>document.title='PWNED2'</script>";

fn chromium() -> Option<&'static str> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(c);
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("chromium is not installed (tests/lab/install-deps.sh installs it); CI=true: not skipping");
    }
    eprintln!("SKIP: chromium not installed (apt-get install chromium)");
    None
}

fn report(hosts: usize) -> String {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01JTESTSCANID0000000000000".into(),
        config: None,
        version: "0.1.0".into(),
        args: format!("rustmap -sV -oH r.html {HOSTILE}"),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: vec![22, 80, 443] }],
        verbosity: 0,
        debugging: 0,
        service_scan: true,
    };
    let mut events = vec![ScanEvent::ScanStarted(info), ScanEvent::Warning { message: HOSTILE.into() }];
    for i in 0..hosts {
        let addr = std::net::IpAddr::from([198, 18, (i / 250) as u8, (i % 250 + 1) as u8]);
        let mut h = HostResult::new(addr, HostStatus::Up, Reason::SynAck);
        h.hostnames = vec![Hostname { name: format!("h{i}.{HOSTILE}"), kind: HostnameKind::Ptr }];
        let mut ssh = PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64);
        ssh.service = Some(ServiceInfo {
            name: "ssh".into(),
            method: ServiceMethod::Probed,
            conf: 10,
            product: Some(HOSTILE.into()),
            ..Default::default()
        });
        let mut http = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
        http.service = Some(ServiceInfo { name: "http".into(), ..Default::default() });
        h.ports = if i % 3 == 0 { vec![ssh, http] } else { vec![ssh] };
        events.push(ScanEvent::HostDone(h));
    }
    events.push(ScanEvent::ScanFinished(ScanStats {
        end_unix: 1_795_000_002,
        elapsed_secs: 2.0,
        hosts_up: hosts as u64,
        hosts_down: 0,
        hosts_total: hosts as u64,
        completed: true,
        outcome: ScanOutcome::Completed,
    }));
    let mut buf = Vec::new();
    {
        let mut w = HtmlWriter::new(&mut buf, Options::default());
        for ev in &events {
            w.event(ev).unwrap();
        }
        w.finish().unwrap();
    }
    String::from_utf8(buf).unwrap()
}

/// The page's DOM after its scripts ran.
fn dom(browser: &str, html: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    std::fs::write(&path, html).unwrap();
    let o = Command::new("timeout")
        .args([
            "120",
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", path.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "chromium: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn report_renders_and_runs_no_hostile_script() {
    let html = report(3);
    // Statically: the hostile text is never markup in the file.
    assert!(!html.contains("<img"), "an img element in the file");
    assert_eq!(html.matches("<script").count(), 2, "only the data block and the report's script");
    let Some(browser) = chromium() else { return };
    let d = dom(browser, &html);
    assert!(d.contains("data-ready=\"3\""), "the report's script ran over 3 hosts: {d}");
    // A hostile script would have replaced the title.
    assert!(d.contains("<title>RustMap report:") && !d.contains("<title>PWNED"), "a hostile script ran: {d}");
    assert!(!d.contains("data-pwned=\"1\""), "a hostile event handler ran");
    assert!(!d.contains("<img"), "hostile markup became an element");
    // The rows and charts are there; the banner is shown as text.
    assert!(d.matches("<tr>").count() >= 4, "{d}");
    assert!(d.contains("198.18.0.1") && d.contains("22/tcp ssh"), "{d}");
    assert!(d.contains("&lt;script&gt;document.title="), "banner as text: {d}");
    assert_eq!(d.matches("<svg class=\"chart\"").count(), 2);
    assert!(d.contains("Top services"));
}

#[test]
fn ten_thousand_hosts_are_paged() {
    let html = report(10_000);
    let Some(browser) = chromium() else { return };
    let d = dom(browser, &html);
    assert!(d.contains("data-ready=\"10000\""), "all hosts loaded");
    assert!(d.contains("10000 of 10000 hosts") && d.contains("page 1 of 100"), "paged");
    let body = d.split("<tbody>").nth(1).unwrap_or_default().split("</tbody>").next().unwrap_or_default();
    assert_eq!(body.matches("<tr>").count(), 100, "one page of rows in the table");
}
