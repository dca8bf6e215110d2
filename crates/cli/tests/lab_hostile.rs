//! The hostile host of the namespace lab (h16, `tests/lab/lab.sh`, docs/lab.md): peers that
//! misbehave on purpose — endlessh, a zero-window drip tarpit, a portspoof-like responder on every
//! other TCP port (fake banners with escapes, NULs, markup, 64 KiB lines), a TLS server with a
//! ~1 MiB chain, an HTTP decompression bomb, endless redirects, a 1 MiB SSH banner and DNS
//! compression loops. The bar: `-sV -sC -p-` of the host finishes in at most 120 s with a peak
//! RSS of at most 300 MB, and nothing raw reaches any output (normal, XML, JSON, grepable).

mod common;

use common::{lab, lab_home, scanner_ns};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const H16: &str = "198.18.0.16";

/// Run rustmap in the scanner namespace under GNU time; kill it after `limit`. Returns the
/// output, the wall time and the peak RSS in KiB (`Maximum resident set size`).
fn timed_rustmap(args: &[&str], dir: &Path, limit: Duration) -> (Output, Duration, u64) {
    let time_file = dir.join("time.txt");
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), "/usr/bin/time", "-v", "-o"])
        .arg(&time_file)
        .arg(env!("CARGO_BIN_EXE_rustmap"))
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec /usr/bin/time (apt-get install time)");
    // Drain the pipes on threads so a chatty scan cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            // `ip netns exec` execs /usr/bin/time, whose child is rustmap: end that one by pid first.
            let pid = child.id();
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
            for kid in kids.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", kid]).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("rustmap {args:?} still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = start.elapsed();
    let output = Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() };
    let time = std::fs::read_to_string(&time_file).unwrap_or_default();
    let rss = time
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in /usr/bin/time's report: {time}"));
    (output, took, rss)
}

/// Control bytes a terminal or a log viewer would act on: C0 except `\n` and `\t`, DEL, and the
/// C1 controls (U+0080..U+009F) when the text is UTF-8.
fn raw_controls(bytes: &[u8]) -> Vec<(usize, String)> {
    let mut bad = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
            bad.push((i, format!("0x{b:02x}")));
        }
    }
    let text = String::from_utf8_lossy(bytes);
    for (i, c) in text.char_indices() {
        if ('\u{80}'..='\u{9f}').contains(&c) {
            bad.push((i, format!("U+{:04X}", c as u32)));
        }
    }
    bad
}

fn context(bytes: &[u8], at: usize) -> String {
    let lo = at.saturating_sub(60);
    let hi = (at + 60).min(bytes.len());
    format!("{:?}", String::from_utf8_lossy(&bytes[lo..hi]))
}

fn assert_clean(name: &str, bytes: &[u8]) {
    let bad = raw_controls(bytes);
    if let Some((at, what)) = bad.first() {
        panic!("{name}: {} raw control byte(s), first {what} at {at}: {}", bad.len(), context(bytes, *at));
    }
}

/// XML 1.0 well-formedness: quick-xml reads every event, and no character reference names a
/// character XML 1.0 forbids (quick-xml does not check those).
fn assert_well_formed_xml(xml: &str) {
    let mut r = quick_xml::Reader::from_str(xml);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("XML not well-formed at {}: {e}", r.buffer_position()),
        }
    }
    let mut rest = xml;
    while let Some(at) = rest.find("&#") {
        rest = &rest[at + 2..];
        let end = rest.find(';').expect("character reference ends");
        let code = match rest[..end].strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => rest[..end].parse(),
        }
        .expect("numeric character reference");
        assert!(
            matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF),
            "XML names a character XML 1.0 forbids: &#{};",
            &rest[..end]
        );
    }
    if Path::new("/usr/bin/xmllint").exists() {
        let mut c = Command::new("xmllint")
            .args(["--noout", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), xml.as_bytes()).unwrap();
        drop(c.stdin.take());
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "xmllint: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Every string in a JSON document, decoded: what a consumer of the JSON sees.
fn json_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push(k);
            json_strings(x, out)
        }),
        _ => {}
    }
}

fn port(h: &Value, n: u64) -> &Value {
    h["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == n && p["protocol"] == "tcp")
        .unwrap_or_else(|| panic!("port {n} not in the report"))
}

fn scripts_of(p: &Value) -> Vec<(String, String)> {
    p["scripts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["id"].as_str().unwrap().to_string(), s["output"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The bar: `-sV -sC -p-` of the hostile host (every TCP port open), every output format at once.
#[test]
fn version_and_default_scripts_on_every_port_of_the_hostile_host_are_bounded_and_clean() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (n, x, g, j) = (f("scan.nmap"), f("scan.xml"), f("scan.gnmap"), f("scan.json"));
    let args =
        ["-sV", "-sC", "-p-", "-n", "--no-db", "--no-progress", "-oN", &n, "-oX", &x, "-oG", &g, "--oJ", &j, H16];
    let (o, took, rss_kib) = timed_rustmap(&args, dir.path(), Duration::from_secs(300));
    eprintln!("rustmap -sV -sC -p- {H16}: {took:?}, peak RSS {} MiB", rss_kib / 1024);
    assert!(o.status.success(), "exit {:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert!(took <= Duration::from_secs(120), "took {took:?} (bar: 120 s)");
    assert!(rss_kib <= 300 * 1000, "peak RSS {rss_kib} KiB (bar: 300 MB)");

    let files: Vec<(String, Vec<u8>)> = [
        ("stdout", None),
        ("stderr", None),
        ("-oN", Some(&n)),
        ("-oX", Some(&x)),
        ("-oG", Some(&g)),
        ("--oJ", Some(&j)),
    ]
    .into_iter()
    .map(|(name, path)| {
        let bytes = match (name, path) {
            ("stdout", _) => o.stdout.clone(),
            ("stderr", _) => o.stderr.clone(),
            (_, Some(p)) => std::fs::read(p).unwrap_or_else(|e| panic!("{name} {p}: {e}")),
            _ => unreachable!(),
        };
        (name.to_string(), bytes)
    })
    .collect();
    for (name, bytes) in &files {
        assert_clean(name, bytes);
    }
    let xml = String::from_utf8(std::fs::read(&x).unwrap()).expect("XML is UTF-8");
    assert_well_formed_xml(&xml);
    let v: Value = serde_json::from_slice(&std::fs::read(&j).unwrap()).expect("JSON parses");
    let mut strings = Vec::new();
    json_strings(&v, &mut strings);
    for s in strings {
        assert_clean("--oJ (decoded strings)", s.as_bytes());
    }

    // Every port was scanned and is open (the redirect answers on all of them).
    let h = &v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == H16).expect("h16 in the report");
    let open = h["ports"].as_array().unwrap().iter().filter(|p| p["state"] == "open").count();
    assert_eq!(open, 65535, "every TCP port of the hostile host is open");
    // The real hostile listeners were reached by detection and their scripts ended.
    let https = port(h, 443);
    assert!(https["tls"].is_object() || scripts_of(https).iter().any(|(id, _)| id == "ssl-cert"), "443: {https}");
    let normal = String::from_utf8_lossy(&files[2].1);
    assert!(normal.contains("65535") || normal.contains("443/tcp"), "{normal:.2000}");
}

/// Scripts against the bomb, the redirect loop, the huge chain, endlessh, the 1 MiB banner and
/// the zero-window tarpit end, with results or typed errors at `-d`, well within their time.
#[test]
fn scripts_on_the_hostile_services_end_with_results_or_typed_errors() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("scan.json").to_str().unwrap().to_string();
    let x = dir.path().join("scan.xml").to_str().unwrap().to_string();
    let args = [
        "-sV",
        "-sC",
        "-d",
        "--script-trace",
        "-n",
        "--no-db",
        "--no-progress",
        "-p",
        "22,53,80,443,2222,2323,8080",
        "--oJ",
        &j,
        "-oX",
        &x,
        H16,
    ];
    let (o, took, rss_kib) = timed_rustmap(&args, dir.path(), Duration::from_secs(240));
    eprintln!("rustmap -sV -sC -d on the hostile services: {took:?}, peak RSS {} MiB", rss_kib / 1024);
    assert!(o.status.success(), "exit {:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert!(took <= Duration::from_secs(120), "took {took:?}");
    assert!(rss_kib <= 300 * 1000, "peak RSS {rss_kib} KiB");
    assert_clean("stdout", &o.stdout);
    assert_clean("stderr", &o.stderr);
    let xml = std::fs::read_to_string(&x).unwrap();
    assert_clean("-oX", xml.as_bytes());
    assert_well_formed_xml(&xml);
    let v: Value = serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap();
    let h = &v["hosts"][0];
    // Every run left its trace (--script-trace): it ran, and ended, since the scan did.
    let err = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    for (id, n) in
        [("http-title", 80), ("http-title", 443), ("http-title", 8080), ("ssl-cert", 443), ("ssh-hostkey", 22)]
    {
        let tag = format!("NSE: [{id} {H16}:{n}/tcp]");
        assert!(err.contains(&tag), "no trace of {id} on {n}: {err:.3000}");
    }
    // The bomb's page has no title (the body is cut, never inflated without bound); the redirect
    // loop ends where the redirect limit does.
    let title = |n| scripts_of(port(h, n)).into_iter().find(|(id, _)| id == "http-title").map(|(_, out)| out);
    eprintln!("http-title: 80 {:?}, 8080 {:?}", title(80), title(8080));
    assert!(title(80).is_some_and(|t| t.contains("have a title") || t.starts_with("ERROR: Script execution failed (")));
    assert!(title(8080).is_some_and(|t| t.contains("/r/") || t.starts_with("ERROR: Script execution failed (")));
    // 443: rustls refuses the 1 MiB chain (handshake messages over 64 KiB): what our own hello
    // learnt is reported, and ssl-cert either names the leaf or ends with nothing or a typed error.
    let https = port(h, 443);
    assert!(https["tls"].is_object(), "{https}");
    for (_, out) in scripts_of(https).iter().filter(|(id, _)| id == "ssl-cert") {
        assert!(out.contains("h16.lab.test") || out.starts_with("ERROR: Script execution failed ("), "{out}");
    }
    // endlessh never sends an identification string: no host key, nothing raw from its lines.
    for (_, out) in scripts_of(port(h, 22)) {
        assert!(!out.contains('\u{1b}'), "{out}");
    }
}

/// h16's DNS server answers every query with compression-pointer loops: as the scan's resolver
/// (`--dns-servers`), forward and reverse lookups fail with a warning at once; probed by `-sU
/// -sV`, port 53 is still named.
#[test]
fn dns_answers_with_compression_loops_fail_cleanly() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["-sT", "-p", "80", "-R", "--dns-servers", H16, "--no-db", "--no-progress", "198.18.0.10", "h10.lab.test"];
    let (o, took, _) = timed_rustmap(&args, dir.path(), Duration::from_secs(60));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_clean("stdout", &o.stdout);
    assert_clean("stderr", &o.stderr);
    assert!(out.contains("Failed to resolve \"h10.lab.test\""), "{out}");
    assert!(!out.contains("h10.lab.test (198.18.0.10)"), "no PTR name from a looping answer: {out}");

    let (o, took, _) = timed_rustmap(
        &["-sU", "-sV", "-n", "-p", "53", "--no-db", "--no-progress", H16],
        dir.path(),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_clean("stdout", &o.stdout);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("53/udp open  domain"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
