//! Live events, against the namespace lab (`tests/lab/lab.sh up`): both engines announce a host
//! (`HostUp`) and each port (`PortFound`) as soon as they know, not in a batch before the host's
//! `HostDone`. The target is the lab's firewalled host h11: its port 22 answers at once, the ports
//! its firewall drops take retransmission timeouts, so the open port's event must come measurably
//! earlier than the host's end.
//!
//! The engines need the lab's network, so each test re-runs itself inside the lab's scanner
//! namespace (`ip netns exec`, root). Without the lab (or root) the tests skip with a reason,
//! except under `CI=true`, where they fail.

use rustmap_engine::discovery::DiscoveryPlan;
use rustmap_engine::origin::Origin;
use rustmap_engine::raw::RawSockets;
use rustmap_engine::{ConnectScan, Emitter, RawScan, ScanTarget, Timing, TimingTemplate};
use rustmap_model::{HostStatus, PortState, Reason, ScanEvent, ScanType};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Set in the re-run inside the lab namespace.
const IN_LAB: &str = "RUSTMAP_ENGINE_TEST_IN_LAB";

const H11: &str = "198.18.0.11";

fn scanner_ns() -> String {
    format!("{}-scan", std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into()))
}

/// Inside the lab: `true`, run the test body. Outside: re-run this one test inside the lab's
/// scanner namespace (or skip), and return `false`.
fn inside_lab(test: &str) -> bool {
    if std::env::var_os(IN_LAB).is_some() {
        return true;
    }
    let ns = scanner_ns();
    let up = nix::unistd::geteuid().is_root()
        && Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.split_whitespace().next() == Some(&ns)))
            .unwrap_or(false);
    if !up {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "lab {ns} not up (or not root): CI=true, not skipping");
        eprintln!("SKIP: lab namespace {ns} not found or not root (bash tests/lab/lab.sh up, as root)");
        return false;
    }
    let exe = std::env::current_exe().expect("test binary");
    let status = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_LAB, "1")
        .status()
        .expect("ip netns exec");
    assert!(status.success(), "{test} inside {ns}: {status}");
    false
}

/// Collect every event of a run with the time it arrived.
async fn timed_events(mut rx: mpsc::Receiver<ScanEvent>) -> Vec<(Duration, ScanEvent)> {
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while let Some(ev) = rx.recv().await {
        seen.push((t0.elapsed(), ev));
    }
    seen
}

/// The ports: h11's open 22, then ports its firewall drops.
fn ports() -> Vec<u16> {
    let mut p = vec![22];
    p.extend(1000..1040);
    p
}

/// HostUp first, one PortFound per port (22 open, much earlier than the end), HostDone last.
fn check(events: &[(Duration, ScanEvent)], engine: &str) {
    let addr: IpAddr = H11.parse().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| match e {
            ScanEvent::HostUp { .. } => Some("up"),
            ScanEvent::PortFound { .. } => Some("port"),
            ScanEvent::HostDone(_) => Some("done"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds.first(), Some(&"up"), "{engine}: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"done"), "{engine}: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "up").count(), 1, "{engine}");
    assert_eq!(kinds.iter().filter(|k| **k == "port").count(), ports().len(), "{engine}: one event per port");
    match &events.iter().find(|(_, e)| matches!(e, ScanEvent::HostUp { .. })).unwrap().1 {
        ScanEvent::HostUp { addr: a, reason, .. } => assert_eq!((*a, *reason), (addr, Reason::UserSet), "{engine}"),
        _ => unreachable!(),
    }
    let open_at = events
        .iter()
        .find_map(|(t, e)| match e {
            ScanEvent::PortFound { port, .. } if port.port == 22 => {
                assert_eq!(port.state, PortState::Open, "{engine}");
                Some(*t)
            }
            _ => None,
        })
        .expect("port 22 announced");
    let (done_at, host) = events
        .iter()
        .find_map(|(t, e)| match e {
            ScanEvent::HostDone(h) => Some((*t, h)),
            _ => None,
        })
        .unwrap();
    assert_eq!(host.status, HostStatus::Up);
    assert_eq!(host.ports_scanned(), ports().len() as u64, "{engine}: HostDone still carries every port");
    eprintln!("{engine}: port 22 open after {open_at:?}, host done after {done_at:?}");
    // The dropped ports cost at least one timeout (100 ms at the least) after port 22 answered.
    assert!(done_at >= open_at + Duration::from_millis(90), "{engine}: port at {open_at:?}, host done at {done_at:?}");
}

fn target() -> ScanTarget {
    ScanTarget { addr: H11.parse().unwrap(), hostnames: Vec::new() }
}

#[test]
fn raw_scan_announces_ports_before_the_host_is_done() {
    if !inside_lab("raw_scan_announces_ports_before_the_host_is_done") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sockets = RawSockets::open(&Origin::default(), None).expect("raw sockets (root)");
        let scan = RawScan {
            scans: vec![(ScanType::Syn, ports())],
            randomize: false,
            timing: Timing::template(TimingTemplate::Aggressive),
            skip_discovery: true,
            discovery: DiscoveryPlan::default(),
            collapse_threshold: 25,
            hosts_hint: Some(1),
            origin: Origin::default(),
            send_ip: false,
            evasion: Default::default(),
            passive_os: false,
        };
        let (ttx, trx) = mpsc::channel(4);
        ttx.send(target()).await.unwrap();
        drop(ttx);
        let (etx, erx) = mpsc::channel(4096);
        let job = tokio::spawn(scan.run(sockets, trx, Emitter::new(etx, CancellationToken::new())));
        let events = timed_events(erx).await;
        let totals = job.await.unwrap().expect("raw scan");
        assert_eq!(totals.hosts_up, 1);
        check(&events, "raw");
    });
}

#[test]
fn connect_scan_announces_ports_before_the_host_is_done() {
    if !inside_lab("connect_scan_announces_ports_before_the_host_is_done") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let scan = ConnectScan {
            ports: ports(),
            randomize: false,
            timing: Timing::template(TimingTemplate::Aggressive),
            skip_discovery: true,
            hosts_hint: Some(1),
            ..ConnectScan::default()
        };
        let (ttx, trx) = mpsc::channel(4);
        ttx.send(target()).await.unwrap();
        drop(ttx);
        let (etx, erx) = mpsc::channel(4096);
        let job = tokio::spawn(scan.run(trx, Emitter::new(etx, CancellationToken::new())));
        let events = timed_events(erx).await;
        let totals = job.await.unwrap().expect("connect scan");
        assert_eq!(totals.hosts_up, 1);
        check(&events, "connect");
    });
}
