//! Golden files: one fixture scan (a hostile banner among ordinary results) through every format,
//! compared byte for byte with `tests/golden/*`. After an intended change of a format, regenerate
//! with `UPDATE_GOLDEN=1 cargo test -p rustmap-output --test golden` and review the diff.
//!
//! Times in normal, XML and grepable output are local times: the files are written with `TZ=UTC`
//! (the test sets it for its own process before any time is formatted).

use rustmap_model::*;
use rustmap_output::csv::CsvWriter;
use rustmap_output::html::HtmlWriter;
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::siem::SiemWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options, Sink};
use std::path::PathBuf;

const BANNER: &str = "=cmd|' /C calc'!A0 \x1b]0;t\x07<script>x</script>]]> a=b|c\\d\t\n";

fn events() -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01JGOLDEN00000000000000000".into(),
        config: None,
        version: "0.1.0".into(),
        args: "rustmap -sS -sV -p 22,80,443 198.18.0.10".into(),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: (1..=1000).collect() }],
        verbosity: 0,
        debugging: 0,
        service_scan: true,
    };
    let a: std::net::IpAddr = "198.18.0.10".parse().unwrap();
    let mut ssh = PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64);
    ssh.service = Some(ServiceInfo {
        name: "ssh".into(),
        method: ServiceMethod::Probed,
        conf: 10,
        product: Some("OpenSSH".into()),
        version: Some("9.2p1 Debian 2+deb12u3".into()),
        extrainfo: Some("protocol 2.0".into()),
        ostype: Some("Linux".into()),
        cpe: vec!["cpe:/a:openbsd:openssh:9.2p1".into(), "cpe:/o:linux:linux_kernel".into()],
        ..Default::default()
    });
    let mut http = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
    http.service = Some(ServiceInfo {
        name: "http".into(),
        method: ServiceMethod::Probed,
        conf: 10,
        product: Some(BANNER.into()),
        ..Default::default()
    });
    let filtered = PortResult::new(Protocol::Tcp, 443, PortState::Filtered, Reason::NoResponse, 0);
    let mut host = HostResult::new(a, HostStatus::Up, Reason::ArpResponse);
    host.hostnames = vec![Hostname { name: "h10.lab.test".into(), kind: HostnameKind::Ptr }];
    host.mac = Some("02:52:4D:00:00:0A".into());
    host.start_unix = 1_795_000_000;
    host.end_unix = 1_795_000_001;
    host.srtt_us = Some(120);
    // What --vuln-check and --geoip add, with feed and database text as hostile as a banner.
    let mut ssh_done = ssh.clone();
    ssh_done.vulnerabilities = vec![Vulnerability {
        id: "CVE-2023-38408".into(),
        cvss: CvssScore::from_tenths(98),
        cvss_version: "3.1".into(),
        vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into()),
        cvss_v4: None,
        vector_v4: None,
        severity: "critical".into(),
        summary: BANNER.into(),
        published: Some("2023-07-20".into()),
        kev: Some(KevInfo { date_added: "2099-01-15".into(), due_date: None }),
        matched: "cpe:/a:openbsd:openssh:9.2p1".into(),
        range: "< 9.3p2".into(),
        backport: true,
        source: "seed".into(),
    }];
    host.geoip = Some(GeoInfo {
        special: Some("benchmarking".into()),
        country_code: Some("FR".into()),
        country: Some("France".into()),
        city: Some(BANNER.into()),
        latitude: Some(45.764),
        longitude: Some(4.8357),
        timezone: Some("Europe/Paris".into()),
        asn: Some(64512),
        as_org: Some("RustMap Lab".into()),
    });
    // What --cloud adds: the instance, with a tag as hostile as a banner.
    host.cloud = Some(Box::new(CloudInstance {
        provider: CloudProvider::Aws,
        id: "i-0123456789abcdef0".into(),
        name: Some("h10".into()),
        region: "us-east-1".into(),
        zone: Some("us-east-1a".into()),
        state: "running".into(),
        instance_type: Some("t3.micro".into()),
        tags: [("Name".to_string(), "h10".to_string()), ("note".to_string(), BANNER.to_string())].into(),
        public_ips: Vec::new(),
        private_ips: vec!["198.18.0.10".parse().unwrap()],
    }));
    // What -O adds: guesses with classes and CPEs (CSV and SIEM carry the best one).
    host.os = vec![OsGuess {
        name: "Linux 4.10 - 6.x".into(),
        accuracy: 100,
        classes: vec![OsClass {
            vendor: "Linux".into(),
            family: "Linux".into(),
            generation: Some("6.X".into()),
            device_type: "general purpose".into(),
            cpe: vec!["cpe:/o:linux:linux_kernel:6".into()],
        }],
    }];
    host.ports = vec![ssh_done, http, filtered];
    host.extraports = vec![ExtraPorts {
        state: PortState::Closed,
        count: 997,
        reasons: vec![ReasonCount {
            reason: Reason::Reset,
            protocol: Protocol::Tcp,
            count: 997,
            ports: "1-21,23-79,81-442,444-1000".into(),
        }],
    }];
    vec![
        ScanEvent::ScanStarted(info),
        ScanEvent::HostUp {
            addr: a,
            reason: Reason::ArpResponse,
            reason_ttl: 0,
            mac: Some("02:52:4D:00:00:0A".into()),
        },
        ScanEvent::PortFound { addr: a, port: ssh },
        ScanEvent::Warning { message: format!("Failed to resolve \"{BANNER}\".") },
        ScanEvent::HostDone(host),
        ScanEvent::ScanFinished(ScanStats {
            end_unix: 1_795_000_001,
            elapsed_secs: 1.25,
            hosts_up: 1,
            hosts_down: 0,
            hosts_total: 1,
            completed: true,
            outcome: ScanOutcome::Completed,
        }),
    ]
}

fn render(mut sink: Box<dyn Sink + '_>) {
    for ev in events() {
        sink.event(&ev).unwrap();
    }
    sink.finish().unwrap();
}

/// Writes the fixture in one format into a buffer.
type Writer<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;

/// `text` with the 16 characters after each `marker` replaced by `NONCE`.
fn blank_after(text: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        let end = (i + marker.len() + 16).min(rest.len());
        out.push_str(&rest[..i + marker.len()]);
        out.push_str("NONCE");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_format_matches_its_golden_file() {
    // This test binary has this one test: no other thread reads the environment meanwhile.
    std::env::set_var("TZ", "UTC");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let opts = Options::default();
    let formats: Vec<(&str, Writer)> = vec![
        ("scan.nmap", Box::new(|b| render(Box::new(NormalWriter::new(b, opts.clone()))))),
        ("scan.xml", Box::new(|b| render(Box::new(XmlWriter::new(b, opts.clone()))))),
        ("scan.json", Box::new(|b| render(Box::new(JsonWriter::new(b, opts.clone()))))),
        ("scan.gnmap", Box::new(|b| render(Box::new(GrepableWriter::new(b, opts.clone()))))),
        ("scan.yaml", Box::new(|b| render(Box::new(YamlWriter::new(b, opts.clone()))))),
        ("scan.csv", Box::new(|b| render(Box::new(CsvWriter::new(b, opts.clone()))))),
        ("scan.cef", Box::new(|b| render(Box::new(SiemWriter::cef(b, opts.clone()))))),
        ("scan.leef", Box::new(|b| render(Box::new(SiemWriter::leef(b, opts.clone()))))),
        ("scan.jsonl", Box::new(|b| render(Box::new(JsonLinesWriter::new(b, opts.clone()))))),
        ("scan.html", Box::new(|b| render(Box::new(HtmlWriter::new(b, opts.clone()))))),
    ];
    let mut differ = Vec::new();
    for (name, write) in formats {
        let mut buf = Vec::new();
        write(&mut buf);
        let mut text = String::from_utf8(buf).unwrap();
        if name.ends_with(".html") {
            // The CSP nonce (16 hex digits) is drawn for each report.
            text = blank_after(&blank_after(&text, "nonce-"), "nonce=\"");
        }
        let path = dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if want != text {
            differ.push(format!("{name}:\n--- golden\n{want}\n--- now\n{text}"));
        }
    }
    assert!(differ.is_empty(), "formats differ from their golden files:\n{}", differ.join("\n"));
}
