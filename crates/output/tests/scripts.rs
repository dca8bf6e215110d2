//! Script results in the normal and XML formats: under their port, as host script results, and
//! as pre-/post-scan results, with hostile text neutralized.

use rustmap_model::*;
use rustmap_output::{normal::NormalWriter, xml::XmlWriter, Options, Sink};
use std::sync::Mutex;

const HOSTILE: &str = "evil\x1b[2J<b>&\"";

fn script(id: &str, output: &str, elements: &[(&str, &str)]) -> ScriptResult {
    ScriptResult {
        id: id.into(),
        output: output.into(),
        elements: elements.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        table: Vec::new(),
    }
}

fn events() -> Vec<ScanEvent> {
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        version: "0.1.0".into(),
        args: "rustmap --script default 127.0.0.1".into(),
        start_unix: 1_795_000_000,
        scans: vec![ScanPorts { scan_type: ScanType::Connect, ports: vec![22, 80] }],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
        scan_id: String::new(),
        config: None,
    };
    let mut host = HostResult::new("127.0.0.1".parse().unwrap(), HostStatus::Up, Reason::SynAck);
    let service = |name: &str| Some(ServiceInfo { name: name.into(), ..Default::default() });
    let mut http = PortResult::new(Protocol::Tcp, 80, PortState::Open, Reason::SynAck, 0);
    http.service = service("http");
    http.scripts.push(script("http-title", "Lab Page", &[("title", "Lab Page")]));
    let mut ssh = PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 0);
    ssh.service = service("ssh");
    let mut keys = script("ssh-hostkey", "\n  256 aa:bb (ED25519)\n  3072 cc:dd (RSA)", &[("1.bits", "256")]);
    let text = |k: &str, v: &str| ScriptEntry { key: Some(k.into()), value: ScriptValue::Text(v.into()) };
    keys.table =
        vec![ScriptEntry { key: None, value: ScriptValue::Table(vec![text("bits", "256"), text("type", HOSTILE)]) }];
    ssh.scripts.push(keys);
    host.ports = vec![ssh, http];
    host.scripts.push(script("hostile", HOSTILE, &[("k", HOSTILE)]));
    let stats = ScanStats {
        end_unix: 1_795_000_001,
        elapsed_secs: 1.0,
        hosts_up: 1,
        hosts_down: 0,
        hosts_total: 1,
        completed: true,
        outcome: Default::default(),
    };
    vec![
        ScanEvent::ScanStarted(info),
        ScanEvent::ScriptOutput { scope: ScriptScope::Pre, result: script("pre-one", "before", &[]) },
        ScanEvent::HostDone(host),
        ScanEvent::ScriptOutput { scope: ScriptScope::Post, result: script("post-one", "after\nall", &[]) },
        ScanEvent::ScanFinished(stats),
    ]
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

fn render(mut sink: impl Sink, buf: &Mutex<Vec<u8>>) -> String {
    for ev in events() {
        sink.event(&ev).unwrap();
    }
    sink.finish().unwrap();
    drop(sink);
    String::from_utf8(buf.lock().unwrap().clone()).unwrap()
}

#[test]
fn normal_shows_scripts_as_nmap_does() {
    let buf = Mutex::new(Vec::new());
    let text = render(NormalWriter::new(Shared(&buf), Options::default()), &buf);
    let expect = [
        "Pre-scan script results:\n|_pre-one: before\n",
        "22/tcp open  ssh\n| ssh-hostkey: \n|   256 aa:bb (ED25519)\n|_  3072 cc:dd (RSA)\n80/tcp open  http\n|_http-title: Lab Page\n",
        "\nHost script results:\n|_hostile: evil",
        "Post-scan script results:\n| post-one: after\n|_all\n",
    ];
    for e in expect {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "{text}");
}

#[test]
fn xml_has_script_elements_everywhere_nmap_puts_them() {
    let buf = Mutex::new(Vec::new());
    let text = render(XmlWriter::new(Shared(&buf), Options::default()), &buf);
    for e in [
        "<prescript><script id=\"pre-one\" output=\"before\"></script></prescript>",
        "<script id=\"http-title\" output=\"Lab Page\"><elem key=\"title\">Lab Page</elem></script></port>",
        "<script id=\"ssh-hostkey\" output=\"&#xa;  256 aa:bb (ED25519)&#xa;  3072 cc:dd (RSA)\"><table><elem key=\"bits\">256</elem><elem key=\"type\">evil",
        "<hostscript><script id=\"hostile\"",
        "<postscript><script id=\"post-one\" output=\"after&#xa;all\"></script></postscript>",
    ] {
        assert!(text.contains(e), "missing {e:?} in:\n{text}");
    }
    assert!(!text.contains('\x1b') && !text.contains("<b>"), "{text}");
    // Well-formed.
    let mut reader = quick_xml::Reader::from_str(&text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}\n{text}"),
        }
    }
}

#[test]
fn json_keeps_line_breaks_and_has_pre_and_post_scripts() {
    let buf = Mutex::new(Vec::new());
    let text = render(rustmap_output::json::JsonWriter::new(Shared(&buf), Options::default()), &buf);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ssh = &v["hosts"][0]["ports"][0]["scripts"][0];
    assert_eq!(ssh["output"], "\n  256 aa:bb (ED25519)\n  3072 cc:dd (RSA)");
    assert_eq!(ssh["table"][0]["table"][0], serde_json::json!({"key": "bits", "text": "256"}));
    assert_eq!(v["prescript"][0]["id"], "pre-one");
    assert_eq!(v["postscript"][0]["output"], "after\nall");
    assert!(!text.contains('\x1b'), "{text}");
    // The model reads its own JSON back.
    let back: ScriptResult = serde_json::from_value(ssh.clone()).unwrap();
    assert_eq!(back.table.len(), 1);
}
