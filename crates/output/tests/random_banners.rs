//! Random bytes as banners through every sink: whatever a peer sends, each output still parses
//! with a standard parser (JSON, YAML, CSV, XML), keeps its line structure (CEF, LEEF, JSON lines,
//! normal, grepable), carries no raw control byte, and the HTML report no markup from the banner.
//! A seeded generator (no extra dependency), so a failure names a reproducible case.

use rustmap_model::*;
use rustmap_output::csv::CsvWriter;
use rustmap_output::html::HtmlWriter;
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::siem::SiemWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options, Sink};

/// xorshift64*: deterministic, good enough to spread bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A banner: random bytes, half of them drawn from the characters formats care about.
fn banner(rng: &mut Rng) -> Vec<u8> {
    const SPECIAL: &[u8] = b"<>&\"'=|\\\t\r\n\x00\x1b\x07]!*&-+@:{}[],#%`$\xff\xfe\xc3";
    let len = (rng.next() % 160) as usize;
    (0..len)
        .map(|_| {
            let r = rng.next();
            if r.is_multiple_of(2) {
                SPECIAL[(r >> 8) as usize % SPECIAL.len()]
            } else {
                (r >> 16) as u8
            }
        })
        .collect()
}

fn events(text: &str) -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01JRANDOM00000000000000000".into(),
        config: None,
        version: "0.1.0".into(),
        args: format!("rustmap {text}"),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Syn, ports: vec![80] }],
        verbosity: 0,
        debugging: 0,
        service_scan: true,
    };
    let a: std::net::IpAddr = "198.18.0.10".parse().unwrap();
    let mut p = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 64);
    p.service = Some(ServiceInfo {
        name: text.chars().take(12).collect(),
        method: ServiceMethod::Probed,
        conf: 10,
        product: Some(text.to_string()),
        version: Some(text.chars().rev().collect()),
        extrainfo: Some(text.to_string()),
        cpe: vec![format!("cpe:/a:{text}")],
        ..Default::default()
    });
    let mut h = HostResult::new(a, HostStatus::Up, Reason::SynAck);
    h.hostnames = vec![Hostname { name: text.to_string(), kind: HostnameKind::Ptr }];
    h.ports = vec![p.clone()];
    vec![
        ScanEvent::ScanStarted(info),
        ScanEvent::Warning { message: text.to_string() },
        ScanEvent::PortFound { addr: a, port: p },
        ScanEvent::HostDone(h),
        ScanEvent::ScanFinished(ScanStats {
            end_unix: 1_795_000_001,
            elapsed_secs: 1.0,
            hosts_up: 1,
            hosts_down: 0,
            hosts_total: 1,
            completed: true,
            outcome: ScanOutcome::Completed,
        }),
    ]
}

fn render(text: &str, make: impl FnOnce(&mut Vec<u8>) -> Box<dyn Sink + '_>) -> String {
    let mut buf = Vec::new();
    {
        let mut sink = make(&mut buf);
        for ev in events(text) {
            sink.event(&ev).unwrap();
        }
        sink.finish().unwrap();
    }
    String::from_utf8(buf).expect("every output is UTF-8")
}

fn no_controls(case: usize, name: &str, out: &str, allowed: &[char]) {
    for c in out.chars() {
        assert!(!c.is_control() || allowed.contains(&c), "case {case} {name}: raw {c:?} in {out}");
    }
}

#[test]
fn random_banners_never_break_a_format() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let o = Options::default();
    for case in 0..300 {
        let text = sanitize_bytes(&banner(&mut rng));
        // The detector hands sanitized text on; the raw string is tried too, as a stress of each
        // format's own escaping.
        for t in [text.clone(), String::from_utf8_lossy(&banner(&mut rng)).into_owned()] {
            let json = render(&t, |b| Box::new(JsonWriter::new(b, o.clone())));
            no_controls(case, "json", &json, &['\n']);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(v["hosts"][0]["ports"][0]["port"], 80);

            let yaml = render(&t, |b| Box::new(YamlWriter::new(b, o.clone())));
            no_controls(case, "yaml", &yaml, &['\n']);
            let y: serde_json::Value =
                serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("case {case}: {e}\n{yaml}"));
            assert_eq!(
                y["hosts"][0]["ports"][0]["service"]["product"],
                v["hosts"][0]["ports"][0]["service"]["product"]
            );

            let csv_text = render(&t, |b| Box::new(CsvWriter::new(b, o.clone())));
            let mut r = csv::Reader::from_reader(csv_text.as_bytes());
            let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
            assert_eq!(rows.len(), 1, "case {case}: {csv_text}");
            for c in rows[0].iter() {
                assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']), "case {case}: formula {c:?}");
                no_controls(case, "csv cell", c, &[]);
            }

            let xml = render(&t, |b| Box::new(XmlWriter::new(b, o.clone())));
            no_controls(case, "xml", &xml, &['\n']);
            let mut reader = quick_xml::Reader::from_str(&xml);
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("case {case}: XML: {e}\n{xml}"),
                }
            }

            for (name, out, header_fields) in [
                ("cef", render(&t, |b| Box::new(SiemWriter::cef(b, o.clone()))), "CEF:0|RustMap|RustMap|0.1.0|"),
                ("leef", render(&t, |b| Box::new(SiemWriter::leef(b, o.clone()))), "LEEF:2.0|RustMap|RustMap|0.1.0|"),
            ] {
                no_controls(case, name, &out, &['\n', '\t']);
                assert_eq!(out.lines().count(), 2, "case {case} {name}: one host line, one port line: {out}");
                assert!(out.lines().all(|l| l.starts_with(header_fields)), "case {case} {name}: {out}");
            }
            let leef = render(&t, |b| Box::new(SiemWriter::leef(b, o.clone())));
            for l in leef.lines() {
                let attrs = l.splitn(7, '|').nth(6).unwrap();
                assert!(attrs.split('\t').all(|a| a.contains('=')), "case {case}: {l}");
            }

            let jsonl = render(&t, |b| Box::new(JsonLinesWriter::new(b, o.clone())));
            no_controls(case, "jsonl", &jsonl, &['\n']);
            assert_eq!(jsonl.lines().count(), 5, "case {case}");
            for l in jsonl.lines() {
                serde_json::from_str::<ScanEvent>(l).unwrap_or_else(|e| panic!("case {case}: {e}: {l}"));
            }

            for (name, out) in [
                ("normal", render(&t, |b| Box::new(NormalWriter::new(b, o.clone())))),
                ("grepable", render(&t, |b| Box::new(GrepableWriter::new(b, o.clone())))),
            ] {
                no_controls(case, name, &out, &['\n', '\t']);
            }

            let html = render(&t, |b| Box::new(HtmlWriter::new(b, o.clone())));
            no_controls(case, "html", &html, &['\n']);
            assert_eq!(html.matches("<script").count(), 2, "case {case}: only the report's two script elements");
            let data = html.split("id=\"data\">").nth(1).unwrap().split("</script>").next().unwrap();
            assert!(!data.contains('<'), "case {case}: markup in the data block");
            serde_json::from_str::<serde_json::Value>(data).unwrap_or_else(|e| panic!("case {case}: {e}"));
        }
    }
}
