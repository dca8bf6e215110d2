//! What each format costs per host: N hosts shaped like a sweep's (one open port, the rest folded)
//! through each sink into memory, in microseconds per host. `cargo run --release -p
//! rustmap-output --example sink_cost [N]`. The figures behind BENCHMARKS.md § Output formats.

use rustmap_model::*;
use rustmap_output::csv::CsvWriter;
use rustmap_output::html::HtmlWriter;
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::siem::SiemWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options, Sink};
use std::time::Instant;

fn host(i: u32) -> HostResult {
    let addr = std::net::IpAddr::from((0xc613_0000u32 | (i & 0xffff)).to_be_bytes());
    let mut h = HostResult::new(addr, HostStatus::Up, Reason::SynAck);
    h.start_unix = 1_795_000_000;
    h.end_unix = 1_795_000_001;
    let mut p = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
    p.service = Some(ServiceInfo { name: "http".into(), conf: 3, ..Default::default() });
    h.ports = vec![p];
    h.extraports = vec![ExtraPorts {
        state: PortState::Closed,
        count: 99,
        reasons: vec![ReasonCount {
            reason: Reason::Reset,
            protocol: Protocol::Tcp,
            count: 99,
            ports: "1-79,81-100".into(),
        }],
    }];
    h
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01JCOST0000000000000000000".into(),
        config: None,
        version: "0.1.0".into(),
        args: "rustmap -p 1-100 198.19.0.0/16".into(),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: (1..=100).collect() }],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
    };
    let hosts: Vec<ScanEvent> = (0..n).map(|i| ScanEvent::HostDone(host(i))).collect();
    let o = Options::default();
    type Make = fn(Vec<u8>, Options) -> Box<dyn Sink>;
    let formats: [(&str, Make); 10] = [
        ("normal", |w, o| Box::new(NormalWriter::new(w, o))),
        ("xml", |w, o| Box::new(XmlWriter::new(w, o))),
        ("json", |w, o| Box::new(JsonWriter::new(w, o))),
        ("grepable", |w, o| Box::new(GrepableWriter::new(w, o))),
        ("yaml", |w, o| Box::new(YamlWriter::new(w, o))),
        ("csv", |w, o| Box::new(CsvWriter::new(w, o))),
        ("cef", |w, o| Box::new(SiemWriter::cef(w, o))),
        ("leef", |w, o| Box::new(SiemWriter::leef(w, o))),
        ("jsonl", |w, o| Box::new(JsonLinesWriter::new(w, o))),
        ("html", |w, o| Box::new(HtmlWriter::new(w, o))),
    ];
    let mut total = 0.0;
    for (name, make) in formats {
        let mut s = make(Vec::with_capacity(1 << 20), o.clone());
        let t = Instant::now();
        s.event(&ScanEvent::ScanStarted(info.clone())).unwrap();
        for ev in &hosts {
            s.event(ev).unwrap();
        }
        s.event(&ScanEvent::ScanFinished(ScanStats {
            end_unix: 1_795_000_010,
            elapsed_secs: 10.0,
            hosts_up: u64::from(n),
            hosts_down: 0,
            hosts_total: u64::from(n),
            completed: true,
            outcome: ScanOutcome::Completed,
        }))
        .unwrap();
        s.finish().unwrap();
        let us = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        total += us;
        println!("{name:10} {us:6.2} µs/host");
    }
    println!("{:10} {total:6.2} µs/host", "all");
}
