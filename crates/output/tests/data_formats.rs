//! YAML, CSV, CEF, LEEF and JSON lines over one hostile fixture: each output re-read by a standard
//! parser (or field by field, for the SIEM formats), with no raw control character, no spreadsheet
//! formula and the hostile text arriving intact as text.

use rustmap_model::*;
use rustmap_output::csv::{CsvWriter, HEADER};
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::siem::SiemWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::{Options, Sink};
use std::sync::{Arc, Mutex};

/// A banner that tries everything: terminal and OSC escapes, markup, CDATA end, a spreadsheet
/// formula, CEF/LEEF separators, YAML tag/anchor/document syntax, a tab and a newline.
const BANNER: &str = "=cmd|' /C calc'!A0 \x1b]0;t\x07<script>]]> a=b|c\\d\t!!python/object &x *x\n---";

fn events() -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01JTESTSCANID0000000000000".into(),
        config: None,
        version: "0.1.0".into(),
        args: format!("rustmap -- {BANNER}"),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: vec![22, 80, 443] }],
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
        product: Some(BANNER.into()),
        version: Some("-1+1".into()),
        cpe: vec!["cpe:/a:x:y".into()],
        ..Default::default()
    });
    let closed = PortResult::new(Protocol::Tcp, 80, PortState::Closed, Reason::Reset, 64);
    let mut host = HostResult::new(a, HostStatus::Up, Reason::ArpResponse);
    host.hostnames = vec![Hostname { name: format!("@{BANNER}"), kind: HostnameKind::Ptr }];
    host.ports = vec![ssh.clone(), closed];
    host.end_unix = 1_795_000_001;
    let down = HostResult::new("198.18.0.99".parse().unwrap(), HostStatus::Down, Reason::NoResponse);
    let stats = ScanStats {
        end_unix: 1_795_000_001,
        elapsed_secs: 1.5,
        hosts_up: 1,
        hosts_down: 1,
        hosts_total: 2,
        completed: true,
        outcome: ScanOutcome::Completed,
    };
    vec![
        ScanEvent::ScanStarted(info),
        ScanEvent::Warning { message: BANNER.into() },
        ScanEvent::HostUp { addr: a, reason: Reason::ArpResponse, reason_ttl: 0, mac: None },
        ScanEvent::PortFound { addr: a, port: ssh },
        ScanEvent::HostDone(host),
        ScanEvent::HostDone(down),
        ScanEvent::ScanFinished(stats),
    ]
}

struct Shared(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn render<S: Sink>(make: impl FnOnce(Shared) -> S) -> String {
    let buf = Arc::new(Mutex::new(Vec::new()));
    {
        let mut sink = make(Shared(Arc::clone(&buf)));
        for ev in events() {
            sink.event(&ev).unwrap();
        }
        sink.finish().unwrap();
    }
    let text = String::from_utf8(buf.lock().unwrap().clone()).expect("UTF-8");
    text
}

fn assert_no_controls(name: &str, text: &str, allowed: &[char]) {
    for c in text.chars() {
        assert!(!c.is_control() || allowed.contains(&c), "{name}: raw control {c:?} in {text}");
    }
}

/// The banner as every format carries it: controls as `\xNN`. Backslashes are left as they
/// are: text from the network arrives sanitized by whoever read it (the detector), and a second
/// pass must not double its escapes.
fn clean_banner() -> String {
    neutralize(BANNER).into_owned()
}

#[test]
fn yaml_reads_back_as_the_same_data() {
    let text = render(|w| YamlWriter::new(w, Options::default()));
    assert_no_controls("yaml", &text, &['\n']);
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["scanner"], "rustmap");
    assert_eq!(v["scan_id"], "01JTESTSCANID0000000000000");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "down hosts are not listed without -v");
    assert_eq!(hosts[0]["addr"], "198.18.0.10");
    assert_eq!(hosts[0]["ports"][0]["service"]["product"], clean_banner().as_str());
    assert_eq!(hosts[0]["ports"][0]["service"]["version"], "-1+1");
    assert_eq!(v["warnings"][0], clean_banner().as_str());
    assert_eq!(v["stats"]["outcome"]["status"], "completed");
    // No tag, anchor, alias or second document was injected: one document, banner quoted.
    assert!(!text.lines().any(|l| l.trim_start().starts_with("---")), "{text}");
}

#[test]
fn yaml_of_a_scan_with_no_hosts_is_valid() {
    let buf = Arc::new(Mutex::new(Vec::new()));
    {
        let mut s = YamlWriter::new(Shared(Arc::clone(&buf)), Options { open_only: true, ..Options::default() });
        for ev in events().into_iter().filter(|e| !matches!(e, ScanEvent::HostDone(_))) {
            s.event(&ev).unwrap();
        }
    }
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(v["hosts"], serde_json::json!([]));
}

#[test]
fn csv_reads_back_with_no_formula_cells() {
    let text = render(|w| CsvWriter::new(w, Options::default()));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), HEADER);
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2, "one row per shown port: {text}");
    for row in &rows {
        for cell in row.iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "formula cell {cell:?}");
            assert_no_controls("csv", cell, &[]);
        }
    }
    assert_eq!(&rows[0][0], "198.18.0.10");
    assert_eq!(&rows[0][1], format!("'@{}", clean_banner()));
    assert_eq!((&rows[0][4], &rows[0][5], &rows[0][7]), ("22", "open", "ssh"));
    assert_eq!(&rows[0][8], format!("'{}", clean_banner()));
    assert_eq!(&rows[0][9], "'-1+1");
    assert_eq!((&rows[1][4], &rows[1][5]), ("80", "closed"));
}

/// Split on `sep` where it is not escaped by a backslash, into at most `max` parts (CEF and LEEF
/// readers split the header off this way: pipes after it are the extension's own).
fn splitn_unescaped(s: &str, sep: char, max: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.last_mut().unwrap().push(c);
            if let Some(n) = chars.next() {
                out.last_mut().unwrap().push(n);
            }
        } else if c == sep && out.len() < max {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    splitn_unescaped(s, sep, usize::MAX)
}

/// CEF's extension: `key=value` pairs separated by spaces, a value running to the next ` key=`.
fn cef_extension(ext: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in split_unescaped(ext, ' ') {
        let kv = split_unescaped(&part, '=');
        if kv.len() == 2 && !kv[0].is_empty() && kv[0].chars().all(|c| c.is_ascii_alphanumeric()) {
            pairs.push((kv[0].clone(), kv[1].clone()));
        } else if let Some(last) = pairs.last_mut() {
            last.1.push(' ');
            last.1.push_str(&part);
        } else {
            panic!("no key before {part:?} in {ext}");
        }
    }
    let unescape = |v: &str| v.replace("\\=", "=").replace("\\n", "\n").replace("\\\\", "\\");
    pairs.into_iter().map(|(k, v)| (k, unescape(&v))).collect()
}

#[test]
fn cef_lines_parse_field_by_field() {
    let text = render(|w| SiemWriter::cef(w, Options::default()));
    assert_no_controls("cef", &text, &['\n']);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "host-up and one open port: {text}");
    for line in &lines {
        let head = splitn_unescaped(line, '|', 8);
        assert_eq!(head.len(), 8, "{line}");
        assert_eq!(&head[..4], ["CEF:0", "RustMap", "RustMap", "0.1.0"]);
    }
    let port = splitn_unescaped(lines[1], '|', 8);
    assert_eq!((port[4].as_str(), port[5].as_str(), port[6].as_str()), ("port-open", "Open port", "3"));
    let ext = cef_extension(&port[7]);
    let get = |k: &str| ext.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("dst"), "198.18.0.10");
    assert_eq!(get("dpt"), "22");
    assert_eq!(get("proto"), "TCP");
    assert_eq!(get("cs1"), clean_banner(), "the banner arrives as text, whole");
    assert_eq!(get("cs4"), "01JTESTSCANID0000000000000");
}

#[test]
fn leef_lines_parse_field_by_field() {
    let text = render(|w| SiemWriter::leef(w, Options::default()));
    assert_no_controls("leef", &text, &['\n', '\t']);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for line in &lines {
        let head = splitn_unescaped(line, '|', 7);
        assert_eq!(head.len(), 7, "{line}");
        assert_eq!(&head[..4], ["LEEF:2.0", "RustMap", "RustMap", "0.1.0"]);
        assert_eq!(head[5], "x09");
    }
    let head = splitn_unescaped(lines[1], '|', 7);
    assert_eq!(head[4], "port-open");
    // The attributes: tab-separated, each with a key, whatever '|' or '=' the banner carried.
    let attrs: Vec<(String, String)> = head[6]
        .split('\t')
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap_or_else(|| panic!("attribute {a:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let get = |k: &str| attrs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("dst"), "198.18.0.10");
    assert_eq!(get("dstPort"), "22");
    assert_eq!(get("sev"), "3");
    assert_eq!(get("devTimeFormat"), "MMM dd yyyy HH:mm:ss");
    assert!(get("cs1").starts_with("=cmd"), "{}", get("cs1"));
}

#[test]
fn json_lines_are_the_event_stream() {
    let text = render(|w| JsonLinesWriter::new(w, Options::default()));
    assert_no_controls("jsonl", &text, &['\n']);
    let events: Vec<ScanEvent> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 6, "everything but the down host (no -v): {text}");
    assert!(matches!(events[0], ScanEvent::ScanStarted(_)));
    assert!(matches!(events.last(), Some(ScanEvent::ScanFinished(_))));
    let ScanEvent::PortFound { port, .. } = &events[3] else { panic!("{:?}", events[3]) };
    assert_eq!(port.service.as_ref().unwrap().product.as_deref(), Some(clean_banner().as_str()));
}
