//! What storing costs: N hosts shaped like the AnyIP sweep's (`-sS -Pn -n -p 80`: up, one open
//! port each) through the real [`StoreSink`] into a fresh database file, several rounds, medians:
//! the CPU time per host (the whole process's, `getrusage`, the writer thread included), and how
//! long the scan's end waits for the store (the last batch, the scan's row, closing the database),
//! which adds to the scan's wall time whatever the cores do. The figures behind BENCHMARKS.md §
//! Storing cost.
//!
//! `cargo run --release -p rustmap-store --example store_cost [N] [ROUNDS] [off|normal|full]`
//! (defaults: 65536 hosts, 5 rounds, `normal`, the `--db-sync` default).
//!
//! `STORE_COST_KEEP=1` keeps the databases (their paths are printed) to look into.
//!
//! The events are built before the clock starts. Before the end, the example waits for the writer
//! to catch up, as it does in a real scan where hosts come slower than it writes them.

use nix::sys::resource::{getrusage, UsageWho};
use rustmap_model::*;
use rustmap_store::{DbSync, Store, StoreHealth, StoreSink};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn host(i: u32) -> HostResult {
    let addr = std::net::IpAddr::from((0xc613_0000u32 | (i & 0xffff)).to_be_bytes());
    let mut h = HostResult::new(addr, HostStatus::Up, Reason::UserSet);
    h.start_unix = 1_795_000_000;
    h.end_unix = 1_795_000_001;
    h.srtt_us = Some(180 + u64::from(i % 97));
    let mut p = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
    p.service = Some(ServiceInfo { name: "http".into(), method: ServiceMethod::Table, conf: 3, ..Default::default() });
    h.ports = vec![p];
    h
}

fn cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |v: nix::sys::time::TimeVal| Duration::new(v.tv_sec() as u64, v.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(65_536);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let sync: DbSync = args.next().map(|a| a.parse().expect("off, normal or full")).unwrap_or_default();
    let mut config = ScanConfig::new(["198.19.0.0/16"]);
    config.ports.spec = Some("80".into());
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: String::new(),
        config: Some(Box::new(config)),
        version: "0.1.0".into(),
        args: "rustmap -sS -Pn -n -p 80 198.19.0.0/16".into(),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: vec![80] }],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
    };
    let hosts: Vec<ScanEvent> = (0..n).map(|i| ScanEvent::HostDone(host(i))).collect();
    let (mut cpus, mut tails) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("cost.db");
        let health = Arc::new(Mutex::new(StoreHealth::default()));
        let mut sink = StoreSink::new(Store::open_with(&db, sync).expect("open"), Arc::clone(&health));
        let mut info = info.clone();
        info.scan_id = format!("01JSTORECOST{round:014}");
        let (c0, t0) = (cpu(), Instant::now());
        sink.event(&ScanEvent::ScanStarted(info)).unwrap();
        for ev in &hosts {
            sink.event(ev).unwrap();
        }
        // The end of the scan as the scan sees it: wait for the writer to catch up (as in a real
        // scan, where hosts come slower than it writes), then time the end alone: the last batch,
        // the scan's row, closing the database.
        std::thread::sleep(Duration::from_millis(500) + t0.elapsed() * 2);
        let t2 = Instant::now();
        sink.event(&ScanEvent::ScanFinished(ScanStats {
            end_unix: 1_795_000_010,
            elapsed_secs: 10.0,
            hosts_up: u64::from(n),
            hosts_down: 0,
            hosts_total: u64::from(n),
            completed: true,
            outcome: ScanOutcome::Completed,
        }))
        .unwrap();
        sink.finish().unwrap();
        let (c, tail) = (cpu() - c0, t2.elapsed());
        assert_eq!(health.lock().unwrap().error, None);
        let size: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
        let tail = tail.as_secs_f64() * 1e3;
        println!("round {round}: {:.1} µs CPU/host, end {tail:.1} ms, {:.1} MB", per(c), size as f64 / 1e6);
        if std::env::var_os("STORE_COST_KEEP").is_some() {
            println!("kept: {}", dir.keep().join("cost.db").display());
        }
        cpus.push(per(c));
        tails.push(tail);
    }
    println!(
        "{n} hosts, --db-sync {sync:?}: median {:.1} µs CPU/host, end of the scan {:.1} ms",
        median(cpus),
        median(tails)
    );
}
