//! Traceroute hops and the path MTU in every format that shows them: nmap's TRACEROUTE table
//! in normal output (silent hops folded, hostile names sanitized), `<trace>`, `<distance>` and
//! the `path-mtu` host script in XML (valid against nmap's DTD), and the fields in JSON.

use rustmap_model::*;
use rustmap_output::{html::HtmlWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options, Sink};
use std::sync::Mutex;

const HOSTILE: &str = "r2\x1b[2J<script>&\"";

fn hop(ttl: u8, addr: Option<&str>, us: u64, name: Option<&str>) -> TraceHop {
    TraceHop { ttl, addr: addr.map(|a| a.parse().unwrap()), rtt_us: addr.map(|_| us), hostname: name.map(Into::into) }
}

fn events() -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        version: "0.1.0".into(),
        args: "rustmap --traceroute --mtu-discovery".into(),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: vec![22] }],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
        scan_id: String::new(),
        config: None,
    };
    let mut h = HostResult::new("198.18.2.10".parse().unwrap(), HostStatus::Up, Reason::SynAck);
    h.hostnames.push(Hostname { name: "h20.lab.test".into(), kind: HostnameKind::Ptr });
    h.ports.push(PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 62));
    h.srtt_us = Some(300);
    h.trace = vec![
        hop(1, Some("198.18.0.1"), 420, Some("r1.lab.test")),
        hop(2, None, 0, None),
        hop(3, None, 0, None),
        hop(4, Some("198.18.1.2"), 1234, Some(HOSTILE)),
        hop(5, None, 0, None),
        hop(6, Some("198.18.2.10"), 1500, Some("h20.lab.test")),
    ];
    h.trace_probe =
        Some(TraceProbe { protocol: TraceProtocol::Tcp, port: Some(22), source: Some("198.18.0.2".parse().unwrap()) });
    h.path_mtu = Some(1400);
    let mut far = HostResult::new("198.18.2.11".parse().unwrap(), HostStatus::Up, Reason::EchoReply);
    far.trace = vec![hop(1, Some("198.18.0.1"), 400, None)];
    far.trace_probe = Some(TraceProbe { protocol: TraceProtocol::Icmp, port: None, source: None });
    let stats = ScanStats {
        end_unix: 1_795_000_001,
        elapsed_secs: 1.0,
        hosts_up: 2,
        hosts_down: 0,
        hosts_total: 2,
        completed: true,
        outcome: ScanOutcome::Completed,
    };
    let mut evs = vec![ScanEvent::ScanStarted(info)];
    evs.extend(h.trace.iter().map(|hop| ScanEvent::TraceHop { addr: h.addr, hop: hop.clone() }));
    evs.extend([ScanEvent::HostDone(h), ScanEvent::HostDone(far), ScanEvent::ScanFinished(stats)]);
    evs
}

struct Shared<'a>(&'a Mutex<Vec<u8>>);
impl std::io::Write for Shared<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

macro_rules! out {
    ($w:ident) => {{
        let buf = Mutex::new(Vec::new());
        let mut sink = $w::new(Shared(&buf), Options::default());
        for ev in events() {
            sink.event(&ev).unwrap();
        }
        sink.finish().unwrap();
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text
    }};
}

#[test]
fn normal_output_has_nmaps_traceroute_table() {
    let text = out!(NormalWriter);
    let want = "Network Distance: 6 hops\nPath MTU: 1400\n\nTRACEROUTE (using port 22/tcp)\n\
                HOP RTT     ADDRESS\n\
                1   0.42 ms r1.lab.test (198.18.0.1)\n\
                2   ... 3\n\
                4   1.23 ms r2\\x1b[2J<script>&\" (198.18.1.2)\n\
                5   ...\n\
                6   1.50 ms h20.lab.test (198.18.2.10)\n";
    assert!(text.contains(want), "{text}");
    assert!(text.contains("TRACEROUTE (using proto 1/icmp)\nHOP RTT     ADDRESS\n1   0.40 ms 198.18.0.1\n"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn xml_has_trace_distance_and_path_mtu_valid_against_nmaps_dtd() {
    let text = out!(XmlWriter);
    assert!(text.contains("<distance value=\"6\"/>"), "{text}");
    assert!(text.contains("<script id=\"path-mtu\" output=\"PMTU == 1400\"><elem key=\"pmtu\">1400</elem></script>"));
    assert!(text.contains("<trace port=\"22\" proto=\"tcp\">\n<hop ttl=\"1\" ipaddr=\"198.18.0.1\" rtt=\"0.42\" host=\"r1.lab.test\"/>\n<hop ttl=\"4\" ipaddr=\"198.18.1.2\" rtt=\"1.23\" host=\"r2\\x1b[2J&lt;script&gt;&amp;&quot;\"/>"), "{text}");
    assert!(text.contains("<trace proto=\"icmp\">"), "{text}");
    let dtd = std::path::Path::new("/usr/share/nmap/nmap.dtd");
    let xmllint = std::path::Path::new("/usr/bin/xmllint");
    if !dtd.exists() || !xmllint.exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI needs nmap's DTD and xmllint");
        eprintln!("SKIP DTD check: needs {dtd:?} and {xmllint:?}");
        return;
    }
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(xmllint)
        .args(["--noout", "--dtdvalid"])
        .arg(dtd)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let v = child.wait_with_output().unwrap();
    assert!(v.status.success(), "xmllint: {}\n{text}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn json_carries_the_hops_the_probe_and_the_mtu() {
    let text = out!(JsonWriter);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let h = &v["hosts"][0];
    assert_eq!(h["path_mtu"], 1400);
    assert_eq!(h["trace_probe"], serde_json::json!({"protocol": "tcp", "port": 22, "source": "198.18.0.2"}));
    assert_eq!(h["trace"].as_array().unwrap().len(), 6);
    assert_eq!(h["trace"][1], serde_json::json!({"ttl": 2}), "a silent hop has only its TTL");
    assert_eq!(h["trace"][3]["hostname"], "r2\\x1b[2J<script>&\"");
    // Old data without the new fields still loads.
    let mut old = h.clone();
    let o = old.as_object_mut().unwrap();
    o.remove("trace_probe");
    o.remove("path_mtu");
    let back: HostResult = serde_json::from_value(old).unwrap();
    assert_eq!((back.trace_probe, back.path_mtu), (None, None));
}

#[test]
fn html_report_shows_the_traceroute_and_the_mtu_in_the_host_detail() {
    let text = out!(HtmlWriter);
    assert!(text.contains(r#"["path-mtu","Path MTU: 1400"]"#), "{text}");
    assert!(text.contains(r#"["traceroute","TRACEROUTE (using port 22/tcp)\nHOP RTT     ADDRESS\n1   0.42 ms r1.lab.test (198.18.0.1)"#), "{text}");
    assert!(!text.contains("<script>&"), "hostile names stay escaped");
}
