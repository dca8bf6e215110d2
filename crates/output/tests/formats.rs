//! Every format over one fixed event stream: layout checks and, above all, that hostile text from
//! the network (terminal escapes, NULs, markup, invalid sequences) never reaches an output raw.

use rustmap_model::*;
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options, Sink};

const HOSTILE: &str = "evil\x1b[2J\x1b]0;owned\x07<script>alert(1)</script>&\"'\0\u{9b}";

fn events() -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        version: "0.1.0".into(),
        args: format!("rustmap -- {HOSTILE}"),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Connect, ports: (1..=1000).collect() }],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
        scan_id: String::new(),
        config: None,
    };
    let host = HostResult {
        addr: "198.18.0.10".parse().unwrap(),
        hostnames: vec![Hostname { name: HOSTILE.into(), kind: HostnameKind::Ptr }],
        mac: Some("02:52:4D:00:00:0A".into()),
        status: HostStatus::Up,
        reason: Reason::SynAck,
        reason_ttl: 0,
        start_unix: 1_795_000_000,
        end_unix: 1_795_000_001,
        srtt_us: Some(120),
        ports: vec![
            PortResult {
                protocol: Protocol::Tcp,
                port: 22,
                state: PortState::Open,
                reason: Reason::SynAck,
                reason_ttl: 0,
                service: Some(ServiceInfo {
                    name: "ssh".into(),
                    method: ServiceMethod::Table,
                    conf: 3,
                    ..Default::default()
                }),
                tls: None,
                scripts: Vec::new(),
                vulnerabilities: Vec::new(),
            },
            PortResult {
                protocol: Protocol::Tcp,
                port: 113,
                state: PortState::Filtered,
                reason: Reason::AdminProhibited,
                reason_ttl: 0,
                service: None,
                tls: None,
                scripts: Vec::new(),
                vulnerabilities: Vec::new(),
            },
        ],
        extraports: vec![ExtraPorts {
            state: PortState::Closed,
            count: 998,
            reasons: vec![ReasonCount {
                reason: Reason::ConnRefused,
                protocol: Protocol::Tcp,
                count: 998,
                ports: "1-21,23-112,114-1000".into(),
            }],
        }],
        timed_out: false,
        os: Vec::new(),
        os_info: None,
        scripts: Vec::new(),
        trace: Vec::new(),
        trace_probe: None,
        path_mtu: None,
        geoip: None,
        cloud: None,
        passive: Vec::new(),
    };
    let stats = ScanStats {
        end_unix: 1_795_000_001,
        elapsed_secs: 1.5,
        hosts_up: 1,
        hosts_down: 1,
        hosts_total: 2,
        completed: true,
        outcome: Default::default(),
    };
    vec![
        ScanEvent::ScanStarted(info),
        ScanEvent::Warning { message: format!("Failed to resolve \"{HOSTILE}\".") },
        ScanEvent::HostDone(host),
        ScanEvent::ScanFinished(stats),
    ]
}

fn render(mut sink: impl Sink, buf: &std::sync::Mutex<Vec<u8>>) -> String {
    for ev in events() {
        sink.event(&ev).unwrap();
    }
    sink.finish().unwrap();
    drop(sink);
    String::from_utf8(buf.lock().unwrap().clone()).expect("outputs are UTF-8")
}

struct Shared<'a>(&'a std::sync::Mutex<Vec<u8>>);
impl std::io::Write for Shared<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_controls(name: &str, text: &str) {
    for (i, c) in text.chars().enumerate() {
        assert!(!c.is_control() || c == '\n' || c == '\t', "{name}: raw control {c:?} at char {i}: {text}");
    }
}

macro_rules! out {
    ($w:ident, $opts:expr) => {{
        let buf = std::sync::Mutex::new(Vec::new());
        let text = render($w::new(Shared(&buf), $opts), &buf);
        text
    }};
}

#[test]
fn normal_layout() {
    let text = out!(NormalWriter, Options::default());
    assert_no_controls("normal", &text);
    assert!(text.contains("Host is up (0.00012s latency)."), "{text}");
    assert!(text.contains("Not shown: 998 closed tcp ports (conn-refused)"), "{text}");
    assert!(text.contains("PORT    STATE    SERVICE\n22/tcp  open     ssh\n113/tcp filtered unknown\n"), "{text}");
    assert!(text.contains("RustMap done: 2 IP addresses (1 host up) scanned in 1.50 seconds"), "{text}");
    assert!(text.contains("\\x1b[2J"), "escape shown escaped: {text}");
}

#[test]
fn normal_with_reason_and_open_only() {
    let text = out!(NormalWriter, Options { reason: true, open_only: true, verbosity: 0 });
    assert!(text.contains("PORT   STATE SERVICE REASON\n22/tcp open  ssh     syn-ack\n"), "{text}");
    assert!(!text.contains("113/tcp"), "{text}");
}

#[test]
fn xml_is_well_formed_and_escaped() {
    let text = out!(XmlWriter, Options::default());
    assert_no_controls("xml", &text);
    assert!(!text.contains("<script>"), "{text}");
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut hostname = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Empty(e) if e.name().as_ref() == b"hostname" => {
                let a = e.try_get_attribute("name").unwrap().unwrap();
                hostname = Some(a.unescape_value().unwrap().into_owned());
            }
            _ => {}
        }
    }
    let hostname = hostname.expect("hostname element");
    assert!(hostname.starts_with("evil\\x1b[2J"), "{hostname}");
    assert!(hostname.contains("<script>"), "markup survives as text, escaped in the file: {hostname}");
    assert!(text.contains(
        "<extrareasons reason=\"conn-refused\" count=\"998\" proto=\"tcp\" ports=\"1-21,23-112,114-1000\"/>"
    ));
    assert!(text.contains("<port protocol=\"tcp\" portid=\"113\"><state state=\"filtered\" reason=\"admin-prohibited\" reason_ttl=\"0\"/></port>"));
    assert!(text.contains("<hosts up=\"1\" down=\"1\" total=\"2\"/>"));
}

#[test]
fn json_is_one_object_and_sanitized() {
    let text = out!(JsonWriter, Options::default());
    assert_no_controls("json", &text);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
    assert_eq!(v["hosts"][0]["ports"][0]["service"]["name"], "ssh");
    assert_eq!(v["hosts"][0]["extraports"][0]["count"], 998);
    assert_eq!(v["stats"]["hosts_total"], 2);
    let name = v["hosts"][0]["hostnames"][0]["name"].as_str().unwrap();
    assert!(!name.chars().any(char::is_control), "{name:?}");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn grepable_lines() {
    let text = out!(GrepableWriter, Options::default());
    assert_no_controls("grepable", &text.replace('\t', " "));
    let line = text.lines().find(|l| l.contains("Ports:")).unwrap();
    assert!(line.starts_with("Host: 198.18.0.10 (evil\\x1b[2J"), "{line}");
    assert!(
        line.contains("\tPorts: 22/open/tcp//ssh///, 113/filtered/tcp//unknown///".replace("unknown", "").as_str()),
        "{line}"
    );
    assert!(line.ends_with("\tIgnored State: closed (998)"), "{line}");
    assert!(text.lines().last().unwrap().starts_with("# RustMap done at "));
}

/// The stream of a `-sV` scan: probed services with version fields, one of them hostile (as a
/// user's `--probe-db` template or a detector bug might let through).
fn versioned_events() -> Vec<ScanEvent> {
    let mut ev = events();
    let ScanEvent::HostDone(h) = &mut ev[2] else { unreachable!() };
    h.ports[0].service = Some(ServiceInfo {
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
    h.ports.push(PortResult {
        protocol: Protocol::Tcp,
        port: 443,
        state: PortState::Open,
        reason: Reason::SynAck,
        reason_ttl: 0,
        service: Some(ServiceInfo {
            name: "http".into(),
            method: ServiceMethod::Probed,
            conf: 10,
            product: Some(HOSTILE.into()),
            hostname: Some("h10.lab.test".into()),
            tunnel: Some("ssl".into()),
            ..Default::default()
        }),
        tls: Some(Box::new(TlsInfo {
            version: "TLSv1.2".into(),
            cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            alpn: Some("http/1.1".into()),
            ja3s: "9bc2aa36e5735d9bce0cf9f6e5a17a09".into(),
            ja3s_string: "771,49199,65281-16-23-11".into(),
            ja4s: None,
            session: true,
            certs: vec![
                CertInfo {
                    subject: vec![
                        ("commonName".into(), HOSTILE.into()),
                        ("organizationName".into(), "RustMap Lab".into()),
                    ],
                    issuer: vec![("commonName".into(), "RustMap Lab CA".into())],
                    sans: vec!["DNS:h10.lab.test".into(), "IP Address:198.18.0.10".into()],
                    not_before: "2026-11-21T22:00:00".into(),
                    not_after: "2026-12-21T22:00:00".into(),
                    key_type: "rsa".into(),
                    key_bits: 2048,
                    key_curve: None,
                    signature_algorithm: "sha256WithRSAEncryption".into(),
                    self_signed: false,
                    sha256: "ab".repeat(32),
                    serial: "01".into(),
                },
                CertInfo {
                    subject: vec![("commonName".into(), "RustMap Lab CA".into())],
                    issuer: vec![("commonName".into(), "RustMap Lab CA".into())],
                    key_type: "ec".into(),
                    key_bits: 256,
                    key_curve: Some("prime256v1".into()),
                    signature_algorithm: "ecdsa-with-SHA256".into(),
                    self_signed: true,
                    ..Default::default()
                },
            ],
        })),
        scripts: Vec::new(),
        vulnerabilities: Vec::new(),
    });
    ev
}

fn render_versioned(mut sink: impl Sink, buf: &std::sync::Mutex<Vec<u8>>) -> String {
    for ev in versioned_events() {
        sink.event(&ev).unwrap();
    }
    sink.finish().unwrap();
    drop(sink);
    String::from_utf8(buf.lock().unwrap().clone()).expect("outputs are UTF-8")
}

macro_rules! out_v {
    ($w:ident, $opts:expr) => {{
        let buf = std::sync::Mutex::new(Vec::new());
        let text = render_versioned($w::new(Shared(&buf), $opts), &buf);
        text
    }};
}

#[test]
fn normal_version_column_and_service_info() {
    let text = out_v!(NormalWriter, Options::default());
    assert_no_controls("normal -sV", &text);
    assert!(
        text.contains(
            "PORT    STATE    SERVICE  VERSION\n22/tcp  open     ssh      OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)\n"
        ),
        "{text}"
    );
    assert!(text.contains("113/tcp filtered unknown\n"), "no trailing blanks: {text}");
    assert!(text.contains("443/tcp open     ssl/http evil\\x1b[2J"), "{text}");
    assert!(text.contains("Service Info: Host: h10.lab.test; OS: Linux; CPE: cpe:/o:linux:linux_kernel\n"), "{text}");
    let text = out_v!(NormalWriter, Options { reason: true, open_only: true, verbosity: 0 });
    assert!(
        text.contains("PORT    STATE SERVICE  REASON  VERSION\n22/tcp  open  ssh      syn-ack OpenSSH 9.2p1"),
        "{text}"
    );
}

/// With -sV run, the VERSION column is there even when nothing was identified, and an open port
/// named only from the port table gets nmap's "?".
#[test]
fn normal_guessed_names_get_a_question_mark_once_detection_ran() {
    let mut ev = events();
    let ScanEvent::ScanStarted(info) = &mut ev[0] else { unreachable!() };
    info.service_scan = true;
    let ScanEvent::HostDone(h) = &mut ev[2] else { unreachable!() };
    h.ports[0].service =
        Some(ServiceInfo { name: "ssh".into(), method: ServiceMethod::Table, conf: 3, ..Default::default() });
    let buf = std::sync::Mutex::new(Vec::new());
    let mut sink = NormalWriter::new(Shared(&buf), Options::default());
    for e in &ev {
        sink.event(e).unwrap();
    }
    sink.finish().unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert!(text.contains("PORT    STATE    SERVICE VERSION\n22/tcp  open     ssh?\n"), "{text}");
    // Not open: no guess mark.
    assert!(text.contains("113/tcp filtered unknown\n"), "{text}");
    // Without -sV: the table name as is, no VERSION column.
    let text = out!(NormalWriter, Options::default());
    assert!(text.contains("22/tcp  open     ssh\n") && !text.contains("VERSION"), "{text}");
}

#[test]
fn xml_service_attributes_and_cpe() {
    let text = out_v!(XmlWriter, Options::default());
    assert_no_controls("xml -sV", &text);
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.contains("<service name=\"ssh\" product=\"OpenSSH\" version=\"9.2p1 Debian 2+deb12u3\" extrainfo=\"protocol 2.0\" ostype=\"Linux\" method=\"probed\" conf=\"10\"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service>"), "{text}");
    assert!(text.contains("hostname=\"h10.lab.test\" tunnel=\"ssl\" method=\"probed\""), "{text}");
    let mut reader = quick_xml::Reader::from_str(&text);
    loop {
        if reader.read_event().expect("well-formed XML") == quick_xml::events::Event::Eof {
            break;
        }
    }
}

#[test]
fn json_and_grepable_carry_versions_sanitized() {
    let text = out_v!(JsonWriter, Options::default());
    assert_no_controls("json -sV", &text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = &v["hosts"][0]["ports"][0]["service"];
    assert_eq!(s["product"], "OpenSSH");
    assert_eq!(s["cpe"][1], "cpe:/o:linux:linux_kernel");
    assert_eq!(v["hosts"][0]["ports"][2]["service"]["tunnel"], "ssl");
    assert!(v["hosts"][0]["ports"][2]["service"]["product"].as_str().unwrap().starts_with("evil\\x1b[2J"));
    let text = out_v!(GrepableWriter, Options::default());
    assert_no_controls("grepable -sV", &text.replace('\t', " "));
    let line = text.lines().find(|l| l.contains("Ports:")).unwrap();
    assert!(line.contains("22/open/tcp//ssh//OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)/"), "{line}");
    assert!(line.contains("443/open/tcp//ssl|http//evil\\x1b[2J"), "{line}");
}

/// Down hosts: in XML and JSON only with -v (and not with --open), as nmap lists them.
#[test]
fn down_hosts_are_listed_with_verbosity() {
    let mut ev = events();
    let ScanEvent::HostDone(up) = &ev[2] else { unreachable!() };
    let mut down = up.clone();
    down.addr = "198.18.0.30".parse().unwrap();
    down.status = HostStatus::Down;
    down.reason = Reason::NoResponse;
    down.hostnames.clear();
    down.mac = None;
    down.ports.clear();
    down.extraports.clear();
    ev.insert(3, ScanEvent::HostDone(down));
    let render_with = |verbosity: u8, open_only: bool, xml: bool| {
        let buf = std::sync::Mutex::new(Vec::new());
        let opts = Options { verbosity, open_only, reason: false };
        let mut sink: Box<dyn Sink> = if xml {
            Box::new(XmlWriter::new(Shared(&buf), opts))
        } else {
            Box::new(JsonWriter::new(Shared(&buf), opts))
        };
        for e in &ev {
            sink.event(e).unwrap();
        }
        sink.finish().unwrap();
        drop(sink);
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        text
    };
    let xml = render_with(1, false, true);
    assert!(
        xml.contains("<status state=\"down\" reason=\"no-response\" reason_ttl=\"0\"/>\n<address addr=\"198.18.0.30\""),
        "{xml}"
    );
    assert!(!render_with(0, false, true).contains("198.18.0.30"));
    assert!(!render_with(1, true, true).contains("198.18.0.30"));
    let json: serde_json::Value = serde_json::from_str(&render_with(1, false, false)).unwrap();
    let hosts = json["hosts"].as_array().unwrap();
    assert!(hosts.iter().any(|h| h["addr"] == "198.18.0.30" && h["status"] == "down"), "{json}");
    let json: serde_json::Value = serde_json::from_str(&render_with(0, false, false)).unwrap();
    assert!(json["hosts"].as_array().unwrap().iter().all(|h| h["addr"] != "198.18.0.30"));
}

#[test]
fn tls_facts_in_normal_output_as_script_blocks() {
    let text = out_v!(NormalWriter, Options::default());
    assert_no_controls("normal tls", &text);
    let block: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("443/tcp")).skip(1).take(14).collect();
    assert!(block[0].starts_with("| ssl-cert: Subject: commonName=evil\\x1b[2J"), "{text}");
    assert!(block[0].ends_with("/organizationName=RustMap Lab"), "{text}");
    assert_eq!(block[1], "| Subject Alternative Name: DNS:h10.lab.test, IP Address:198.18.0.10");
    assert_eq!(block[2], "| Issuer: commonName=RustMap Lab CA");
    assert_eq!(block[3], "| Public Key type: rsa");
    assert_eq!(block[4], "| Public Key bits: 2048");
    assert_eq!(block[5], "| Signature Algorithm: sha256WithRSAEncryption");
    assert_eq!(block[6], "| Not valid before: 2026-11-21T22:00:00");
    assert_eq!(block[7], "| Not valid after:  2026-12-21T22:00:00");
    assert_eq!(block[8], "| Self-signed: no");
    assert!(block[9].starts_with("|_SHA-256: abab"), "{text}");
    assert_eq!(block[10], "| tls-info: TLSv1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ALPN http/1.1");
    assert_eq!(block[11], "| JA3S: 9bc2aa36e5735d9bce0cf9f6e5a17a09 (771,49199,65281-16-23-11)");
    assert_eq!(
        block[12],
        "|_Chain 1: Subject: commonName=RustMap Lab CA; Issuer: commonName=RustMap Lab CA; self-signed"
    );
    assert!(text.contains("Service Info:"), "{text}");
}

#[test]
fn tls_facts_in_xml_as_scripts_valid_against_nmaps_dtd() {
    let text = out_v!(XmlWriter, Options::default());
    assert_no_controls("xml tls", &text);
    assert!(!text.contains("<script>"), "{text}");
    assert!(text.contains("<script id=\"ssl-cert\" output=\"Subject: commonName=evil\\x1b[2J"), "{text}");
    assert!(text.contains("&#xa;Issuer: commonName=RustMap Lab CA&#xa;"), "{text}");
    assert!(text.contains("<table key=\"subject\"><elem key=\"commonName\">evil\\x1b[2J"), "{text}");
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;"), "{text}");
    assert!(
        text.contains("<table key=\"pubkey\"><elem key=\"type\">rsa</elem><elem key=\"bits\">2048</elem></table>"),
        "{text}"
    );
    assert!(text.contains("<table key=\"validity\"><elem key=\"notBefore\">2026-11-21T22:00:00</elem><elem key=\"notAfter\">2026-12-21T22:00:00</elem></table>"), "{text}");
    assert!(
        text.contains(
            "<script id=\"tls-info\" output=\"TLSv1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ALPN http/1.1&#xa;JA3S: "
        ),
        "{text}"
    );
    assert!(text.contains("<elem key=\"ja3s\">9bc2aa36e5735d9bce0cf9f6e5a17a09</elem>"), "{text}");
    // The script elements come after <service>, as the DTD's port content model wants.
    let port = &text[text.find("portid=\"443\"").unwrap()..];
    assert!(port.find("<service").unwrap() < port.find("<script id=\"ssl-cert\"").unwrap());
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
fn tls_facts_in_json() {
    let text = out_v!(JsonWriter, Options::default());
    assert_no_controls("json tls", &text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = &v["hosts"][0]["ports"][2]["tls"];
    assert_eq!(t["version"], "TLSv1.2");
    assert_eq!(t["alpn"], "http/1.1");
    assert_eq!(t["ja3s"], "9bc2aa36e5735d9bce0cf9f6e5a17a09");
    assert!(t.get("ja4s").is_none());
    assert_eq!(t["session"], true);
    assert_eq!(t["certs"][0]["issuer"][0][1], "RustMap Lab CA");
    assert!(t["certs"][0]["subject"][0][1].as_str().unwrap().starts_with("evil\\x1b[2J"));
    assert_eq!(t["certs"][0]["sans"][1], "IP Address:198.18.0.10");
    assert_eq!(t["certs"][0]["key_bits"], 2048);
    assert_eq!(t["certs"][1]["key_curve"], "prime256v1");
    assert_eq!(t["certs"][1]["self_signed"], true);
    // Ports without TLS have no tls object.
    assert!(v["hosts"][0]["ports"][0].get("tls").is_none());
}
