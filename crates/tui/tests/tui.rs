//! The TUI without a terminal: events folded into the state, and the screen drawn into
//! ratatui's `TestBackend` and read back as text.

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use rustmap_model::{
    ExtraPorts, HostResult, HostStatus, OsGuess, PortResult, PortState, Protocol, Reason, ScanEvent, ScanInfo,
    ScanOutcome, ScanPorts, ScanStats, ScanType, ServiceInfo, EVENT_SCHEMA_VERSION,
};
use rustmap_tui::state::{Action, App, HostPhase, Key, Phase};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn started() -> ScanEvent {
    ScanEvent::ScanStarted(ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01TESTSCAN".into(),
        config: None,
        version: "0.1.0".into(),
        args: "rustmap --tui -p 1-1000 198.18.0.0/24".into(),
        start_unix: 0,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: (1..=1000).collect() }],
        verbosity: 0,
        debugging: 0,
        service_scan: true,
    })
}

fn up(a: &str) -> ScanEvent {
    ScanEvent::HostUp { addr: ip(a), reason: Reason::EchoReply, reason_ttl: 64, mac: None }
}

fn port(a: &str, p: u16, state: PortState) -> ScanEvent {
    ScanEvent::PortFound { addr: ip(a), port: PortResult::new(Protocol::Tcp, p, state, Reason::SynAck, 64) }
}

fn service(a: &str, p: u16, name: &str, product: &str) -> ScanEvent {
    let service = ServiceInfo { name: name.into(), product: Some(product.into()), conf: 10, ..ServiceInfo::default() };
    ScanEvent::ServiceFound { addr: ip(a), protocol: Protocol::Tcp, port: p, service, tls: None }
}

fn finished(outcome: ScanOutcome) -> ScanEvent {
    ScanEvent::ScanFinished(ScanStats {
        end_unix: 0,
        elapsed_secs: 12.5,
        hosts_up: 2,
        hosts_down: 1,
        hosts_total: 3,
        completed: outcome == ScanOutcome::Completed,
        outcome,
    })
}

/// Two hosts up (h10 with ssh and a closed port, h11 with http), one down, still running.
fn running() -> App {
    let mut app = App::new(1000);
    for ev in [
        started(),
        up("198.18.0.10"),
        port("198.18.0.10", 22, PortState::Open),
        port("198.18.0.10", 23, PortState::Closed),
        up("198.18.0.11"),
        port("198.18.0.11", 80, PortState::Open),
        service("198.18.0.10", 22, "ssh", "OpenSSH"),
        ScanEvent::OsMatch {
            addr: ip("198.18.0.10"),
            matches: vec![OsGuess { name: "Linux 6.x".into(), accuracy: 96, classes: vec![] }],
        },
        ScanEvent::HostDone(HostResult::new(ip("198.18.0.12"), HostStatus::Down, Reason::NoResponse)),
        ScanEvent::Progress { hosts_done: 1, probes_sent: 2000, replies: 12, fraction: Some(0.42), hosts_active: 2 },
    ] {
        app.scan.apply(&ev);
    }
    app
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| rustmap_tui::ui::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The text of the right half of the middle rows (the port panel), so a port of the host list
/// does not count as one of the port panel's.
fn port_panel(s: &str) -> String {
    s.lines().map(|l| l.chars().skip(l.chars().count() / 2).collect::<String>()).collect::<Vec<_>>().join("\n")
}

#[test]
fn events_fold_into_hosts_in_order_found_with_ports_services_and_os() {
    let app = running();
    let s = &app.scan;
    assert_eq!(s.phase, Phase::Running);
    assert_eq!(s.scan_id, "01TESTSCAN");
    let addrs: Vec<String> = s.hosts.iter().map(|h| h.addr.to_string()).collect();
    assert_eq!(addrs, ["198.18.0.10", "198.18.0.11"], "only up hosts, in order found");
    assert_eq!(s.hosts_down, 1);
    let h10 = &s.hosts[0];
    assert_eq!((h10.open, h10.closed, h10.filtered), (1, 1, 0));
    // Closed ports are counted while scanning, not listed.
    assert_eq!(h10.ports.keys().map(|k| k.1).collect::<Vec<_>>(), [22]);
    let ssh = &h10.ports[&(Protocol::Tcp, 22)];
    assert_eq!((ssh.service.as_str(), ssh.version.as_str()), ("ssh", "OpenSSH"));
    assert_eq!(h10.os.as_deref(), Some("Linux 6.x (96%)"));
    assert_eq!(h10.phase, HostPhase::Scanning);
    assert_eq!((s.probes_sent, s.replies, s.hosts_active), (2000, 12, 2));
    assert_eq!(s.fraction, Some(0.42));
    let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    assert!(log[0].starts_with("scan 01TESTSCAN started: 1000 port(s)"), "{log:?}");
    assert!(log.contains(&"198.18.0.10 is up (echo-reply)"), "{log:?}");
    assert!(log.contains(&"198.18.0.10: 22/tcp open"), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("23/tcp")), "closed ports stay out of the log: {log:?}");
    assert!(log.contains(&"40% done: 1 host(s) finished, 2000 probe(s) sent, 12 replies"), "{log:?}");
}

#[test]
fn host_done_is_the_authority_and_finish_is_shown() {
    let mut app = running();
    let mut h = HostResult::new(ip("198.18.0.11"), HostStatus::Up, Reason::EchoReply);
    h.ports.push(PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64));
    h.ports.push(PortResult::new(Protocol::Tcp, 81, PortState::Closed, Reason::Reset, 64));
    h.extraports.push(ExtraPorts { state: PortState::Filtered, count: 998, reasons: vec![] });
    h.hostnames.push(rustmap_model::Hostname { name: "h11.lab.test".into(), kind: rustmap_model::HostnameKind::Ptr });
    app.scan.apply(&ScanEvent::HostDone(h));
    let h11 = &app.scan.hosts[1];
    assert_eq!(h11.phase, HostPhase::Done);
    assert_eq!((h11.open, h11.closed, h11.filtered), (1, 1, 998));
    assert_eq!(h11.ports.len(), 2);
    assert_eq!(h11.name.as_deref(), Some("h11.lab.test"));
    app.scan.apply(&finished(ScanOutcome::Completed));
    assert!(app.scan.finished());
    assert_eq!(app.scan.elapsed.as_secs_f64(), 12.5);
    let s = screen(&mut app, 160, 40);
    assert!(s.contains("finished 100%"), "{s}");
    assert!(s.contains("scan completed in 12.50 s: 2 host(s) up, 1 down, 3 in all"), "{s}");
    assert!(s.contains("h11.lab.test"), "{s}");
}

#[test]
fn the_log_keeps_only_its_last_lines() {
    let mut app = App::new(5);
    for i in 0..20 {
        app.scan.apply(&ScanEvent::Warning { message: format!("w{i}\x1b[2J") });
    }
    let log: Vec<&str> = app.scan.log.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        log,
        ["warning: w15?[2J", "warning: w16?[2J", "warning: w17?[2J", "warning: w18?[2J", "warning: w19?[2J"]
    );
}

#[test]
fn a_sweep_lists_up_hosts_only_and_counts_the_down_ones() {
    let mut app = App::new(100);
    app.scan.apply(&started());
    for i in 0..5000u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        if i % 50 == 0 {
            app.scan.apply(&ScanEvent::HostUp { addr: a, reason: Reason::EchoReply, reason_ttl: 64, mac: None });
            app.scan.apply(&ScanEvent::HostDone(HostResult::new(a, HostStatus::Up, Reason::EchoReply)));
        } else {
            app.scan.apply(&ScanEvent::HostDone(HostResult::new(a, HostStatus::Down, Reason::NoResponse)));
        }
    }
    assert_eq!(app.scan.hosts.len(), 100);
    assert_eq!(app.scan.hosts_down, 4900);
    assert_eq!(app.scan.log.len(), 100, "the log stays bounded");
    // The last host can be reached, and the list scrolls to show it.
    assert_eq!(app.on_key(Key::Last), Action::None);
    let s = screen(&mut app, 120, 30);
    assert!(s.contains("10.0.19.86"), "{s}");
    assert!(!s.contains("10.0.0.0 "), "scrolled past the first host: {s}");
    assert!(s.contains("Hosts: 100 up, 4900 down"), "{s}");
}

#[test]
fn the_three_panels_show_hosts_ports_and_events() {
    let mut app = running();
    let s = screen(&mut app, 140, 40);
    // Status line.
    assert!(s.contains("running 42%"), "{s}");
    assert!(s.contains("probes 2000 replies 12"), "{s}");
    // Host list.
    assert!(s.contains("Hosts: 2 up, 1 down"), "{s}");
    assert!(s.contains("198.18.0.10"), "{s}");
    assert!(s.contains("198.18.0.11"), "{s}");
    assert!(s.contains("Linux 6.x (96%)"), "{s}");
    // Port detail of the first host, selected by default.
    assert!(s.contains("Ports of 198.18.0.10"), "{s}");
    let ports = port_panel(&s);
    assert!(ports.contains("22/tcp"), "{ports}");
    assert!(ports.contains("OpenSSH"), "{ports}");
    assert!(ports.contains("not shown: 1 closed, 0 filtered"), "{ports}");
    assert!(!ports.contains("80/tcp"), "{ports}");
    // Event log.
    assert!(s.contains("Events"), "{s}");
    assert!(s.contains("198.18.0.11: 80/tcp open"), "{s}");
    assert!(!s.contains("Help (h to close)"), "{s}");
}

#[test]
fn j_k_and_the_arrows_move_the_selection_and_the_port_panel_follows() {
    let mut app = running();
    // j and ↓ are both Key::Down, k and ↑ Key::Up (the terminal layer's mapping is tested with it).
    assert_eq!(app.on_key(Key::Down), Action::None);
    assert_eq!(app.selected, 1);
    let s = screen(&mut app, 140, 40);
    assert!(s.contains("Ports of 198.18.0.11"), "{s}");
    let ports = port_panel(&s);
    assert!(ports.contains("80/tcp"), "{ports}");
    assert!(!ports.contains("22/tcp"), "{ports}");
    // Past the end: stays on the last host.
    app.on_key(Key::Down);
    assert_eq!(app.selected, 1);
    app.on_key(Key::Up);
    assert_eq!(app.selected, 0);
    let s = screen(&mut app, 140, 40);
    assert!(s.contains("Ports of 198.18.0.10"), "{s}");
    app.on_key(Key::Up);
    assert_eq!(app.selected, 0);
    app.on_key(Key::PageDown);
    assert_eq!(app.selected, 1);
    app.on_key(Key::First);
    assert_eq!(app.selected, 0);
    app.on_key(Key::Last);
    assert_eq!(app.selected, 1);
}

#[test]
fn h_toggles_the_help_panel() {
    let mut app = running();
    app.on_key(Key::Help);
    let s = screen(&mut app, 140, 40);
    assert!(s.contains("Help (h to close)"), "{s}");
    assert!(s.contains("quit; a running scan is cancelled"), "{s}");
    app.on_key(Key::Help);
    let s = screen(&mut app, 140, 40);
    assert!(!s.contains("Help (h to close)"), "{s}");
    app.on_key(Key::Help);
    app.on_key(Key::Escape);
    assert!(!app.show_help);
}

#[test]
fn q_quits_and_a_cancelled_scan_says_so() {
    let mut app = running();
    assert_eq!(app.on_key(Key::Quit), Action::Quit);
    app.scan.apply(&ScanEvent::Stopping);
    assert_eq!(app.scan.phase, Phase::Stopping);
    app.scan.apply(&finished(ScanOutcome::Cancelled));
    assert_eq!(app.scan.phase, Phase::Finished("cancelled".into()));
    let s = screen(&mut app, 140, 40);
    assert!(s.contains("finished (cancelled)"), "{s}");
}

#[test]
fn an_empty_scan_and_a_tiny_terminal_draw_without_panicking() {
    let mut app = App::new(10);
    let s = screen(&mut app, 100, 20);
    assert!(s.contains("waiting for hosts"), "{s}");
    app.on_key(Key::Down);
    app.on_key(Key::Help);
    for (w, h) in [(1, 1), (10, 5), (30, 8)] {
        screen(&mut running(), w, h);
        screen(&mut app, w, h);
    }
}
