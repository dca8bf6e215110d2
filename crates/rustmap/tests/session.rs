//! Scan sessions on loopback, without privileges: ids, event order, cancel, concurrent scans,
//! and the reducer's result against the events. (Connect scans of 127.0.0.1 only.)

use rustmap::{ScanConfig, ScanEvent, Scanner};
use rustmap_model::{HostStatus, PortState, ScanOutcome, ScanType};
use std::collections::BTreeMap;
use std::net::TcpListener;

/// Listeners on loopback and a port list of them plus some closed ports.
fn listeners(n: usize) -> (Vec<TcpListener>, String) {
    let open: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    // All 30 bound at once, then closed: dropping each before the next bind could hand the same
    // port out twice (a duplicate in the list, one port event fewer than ports listed).
    let held: Vec<TcpListener> = (0..30).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let closed: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).collect();
    drop(held);
    let ports: Vec<String> =
        open.iter().map(|l| l.local_addr().unwrap().port()).chain(closed).map(|p| p.to_string()).collect();
    (open, ports.join(","))
}

fn config(ports: &str) -> ScanConfig {
    let mut c = ScanConfig::new(["127.0.0.1"]);
    c.scan_types = vec![ScanType::Connect];
    c.ports.spec = Some(ports.into());
    c.names.reverse = rustmap::ReverseDns::Never;
    c
}

/// Port → state, from a scan's events.
async fn run(c: ScanConfig) -> (Vec<ScanEvent>, BTreeMap<u16, PortState>, String) {
    let mut scan = Scanner::start(c).unwrap();
    let id = scan.id().to_string();
    let mut events = scan.events().unwrap();
    let mut all = Vec::new();
    while let Some(ev) = events.next().await {
        all.push(ev);
    }
    let result = scan.wait().await.unwrap();
    let states = result.hosts[0].ports.iter().map(|p| (p.port, p.state)).collect();
    (all, states, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_id_and_come_in_order() {
    let (open, ports) = listeners(2);
    let (events, states, id) = run(config(&ports)).await;
    assert_eq!(id.len(), 26, "a ULID: {id}");
    let ScanEvent::ScanStarted(info) = &events[0] else { panic!("first: {:?}", events[0]) };
    assert_eq!(info.scan_id, id);
    assert_eq!(info.config.as_ref().unwrap().ports.spec.as_deref(), Some(ports.as_str()));
    let ScanEvent::ScanFinished(stats) = events.last().unwrap() else { panic!("last: {:?}", events.last()) };
    assert_eq!(stats.outcome, ScanOutcome::Completed);
    assert!(stats.completed);
    // Every port is reported before its host is done.
    let done = events.iter().position(|e| matches!(e, ScanEvent::HostDone(_))).unwrap();
    let found: Vec<usize> =
        events.iter().enumerate().filter(|(_, e)| matches!(e, ScanEvent::PortFound { .. })).map(|(i, _)| i).collect();
    assert_eq!(found.len(), 32);
    assert!(found.iter().all(|i| *i < done));
    // The result agrees with the listeners.
    let want: Vec<u16> = open.iter().map(|l| l.local_addr().unwrap().port()).collect();
    let got: Vec<u16> = states.iter().filter(|(_, s)| **s == PortState::Open).map(|(p, _)| *p).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort_unstable();
    assert_eq!(got, want_sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scans_at_once_give_what_each_gives_alone() {
    let (_open_a, ports_a) = listeners(3);
    let (_open_b, ports_b) = listeners(1);
    let (_, alone_a, _) = run(config(&ports_a)).await;
    let (_, alone_b, _) = run(config(&ports_b)).await;
    let (a, b) = tokio::join!(run(config(&ports_a)), run(config(&ports_b)));
    assert_ne!(a.2, b.2, "distinct ids");
    assert_eq!(a.1, alone_a);
    assert_eq!(b.1, alone_b);
    assert_eq!(alone_a.values().filter(|s| **s == PortState::Open).count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_scan_as_cancelled_with_results_so_far() {
    // Many hosts of loopback (127.0.0.0/22): cancelled after the first host is done.
    let mut c = config("1-200");
    c.targets = vec!["127.0.0.0/22".into()];
    c.discovery.skip = true;
    // A few hosts at a time, so the cancel lands with most of them not started.
    c.timing.max_hostgroup = Some(8);
    let mut scan = Scanner::start(c).unwrap();
    let mut events = scan.events().unwrap();
    let mut hosts = 0;
    let mut last = None;
    while let Some(ev) = events.next().await {
        if let ScanEvent::HostDone(_) = ev {
            hosts += 1;
            if hosts == 1 {
                scan.cancel();
            }
        }
        last = Some(ev);
    }
    let Some(ScanEvent::ScanFinished(stats)) = last else { panic!("no ScanFinished: {last:?}") };
    assert_eq!(stats.outcome, ScanOutcome::Cancelled);
    assert!(!stats.completed);
    // The first host and those in flight with it (reported cut short), not the 1024 of the range.
    assert!(hosts <= 64, "the scan stopped early ({hosts} hosts)");
    let result = scan.wait().await.unwrap();
    assert_eq!(result.hosts.len(), hosts);
    assert!(result.hosts.iter().all(|h| h.status == HostStatus::Up));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_before_anything_starts() {
    let mut c = config("80");
    c.ports.spec = Some("80,70000".into());
    let e = Scanner::start(c).unwrap_err();
    match e {
        rustmap::StartError::Config(e) => {
            assert_eq!(e.field, "ports.spec");
            assert!(e.value.contains("70000"));
        }
        e => panic!("{e}"),
    }
    // The same error from a JSON body, as the API would get it.
    let body = r#"{"targets": ["127.0.0.1"], "scan_types": ["connect"], "ports": {"spec": "80,70000"}}"#;
    let c: ScanConfig = serde_json::from_str(body).unwrap();
    assert_eq!(rustmap::validate(&c).unwrap_err().field, "ports.spec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_without_reading_the_stream_does_not_stall() {
    // Nobody takes the events: wait() lets go of the stream, and the scan runs to its end.
    let (_open, ports) = listeners(1);
    let scan = Scanner::start(config(&ports)).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), scan.wait()).await.unwrap().unwrap();
    assert_eq!(result.hosts.len(), 1);
    assert_eq!(result.stats.unwrap().outcome, ScanOutcome::Completed);
}
