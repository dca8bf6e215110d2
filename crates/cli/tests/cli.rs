//! The `rustmap` binary end to end on loopback: real listeners, real scans, every output format,
//! and the error paths (exit code 2, one line naming the bad value, nothing scanned).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A HOME of the tests' own, so that scans stored by default go to a history database there,
/// not into the real user's.
fn test_home() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = std::env::temp_dir().join("rustmap-cli-tests-home");
    let _ = std::fs::create_dir_all(&d);
    // Writable by the unprivileged user some tests run as, too.
    let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777));
    d
}

fn rustmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(args)
        .env("HOME", test_home())
        .stdin(Stdio::null())
        .output()
        .expect("run rustmap")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Listeners on loopback plus a list of ports around them that are closed (bound then released).
fn listeners(n: usize) -> (Vec<TcpListener>, Vec<u16>) {
    let open: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    (open, closed_ports(20))
}

/// `n` closed ports: below the kernel's ephemeral range (32768-60999), so that no other test's
/// `bind(0)` or outgoing connection can take one between two scans (an ephemeral port freed by one
/// test was once handed to another's listener, and a "closed" port came back open), and from a
/// counter, so that no two tests of this binary share one. Nothing else on the machine listens
/// there.
fn closed_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Each test binary starts somewhere else in 20000-31999 (they run one after another anyway).
    let base = 20_000 + (std::process::id() % 400) as u16 * 30;
    (0..n)
        .map(|_| base + NEXT.fetch_add(1, Ordering::Relaxed) % 12_000)
        .map(|p| if p > 31_999 { p - 12_000 } else { p })
        .collect()
}

fn port_arg(open: &[TcpListener], closed: &[u16]) -> String {
    open.iter()
        .map(|l| l.local_addr().unwrap().port())
        .chain(closed.iter().copied())
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Tools the test needs: present, or (outside CI) skip with a reason.
fn need_tool(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} is required in CI (install it with: bash tests/install-deps.sh)");
    }
    eprintln!("SKIP: {path} not installed");
    false
}

#[test]
fn json_output_has_exactly_the_open_ports() {
    let (open, closed) = listeners(3);
    let ports = port_arg(&open, &closed);
    let o = rustmap(&["-n", "-p", &ports, "--oJ", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["scanner"], "rustmap");
    assert_eq!(v["schema_version"], 2);
    // The scan's id: a ULID (26 characters of Crockford's base 32).
    let id = v["scan_id"].as_str().unwrap();
    assert!(id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
    assert_eq!(v["stats"]["outcome"]["status"], "completed");
    let host = &v["hosts"][0];
    assert_eq!(host["addr"], "127.0.0.1");
    assert_eq!(host["status"], "up");
    let mut found: Vec<u64> = host["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "open")
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    found.sort_unstable();
    let mut want: Vec<u64> = open.iter().map(|l| u64::from(l.local_addr().unwrap().port())).collect();
    want.sort_unstable();
    assert_eq!(found, want);
    // Everything else was closed with conn-refused: shown individually (fewer than 26) or folded.
    let closed_shown = host["ports"].as_array().unwrap().iter().filter(|p| p["state"] == "closed").count();
    let folded: u64 = host["extraports"].as_array().unwrap().iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(closed_shown as u64 + folded, closed.len() as u64);
    assert_eq!(v["stats"]["hosts_up"], 1);
    assert_eq!(v["stats"]["completed"], true);
}

#[test]
fn normal_output_layout_and_reason() {
    let (open, closed) = listeners(1);
    let p = open[0].local_addr().unwrap().port();
    let o = rustmap(&["-n", "--reason", "-p", &port_arg(&open, &closed), "127.0.0.1"]);
    let out = stdout(&o);
    assert!(o.status.success());
    assert!(out.starts_with("Starting RustMap "), "{out}");
    assert!(out.contains("RustMap scan report for 127.0.0.1\n"), "{out}");
    assert!(out.contains("Host is up, received"), "{out}");
    assert!(out.contains("Not shown: ") || out.contains("closed"), "{out}");
    let line = out.lines().find(|l| l.starts_with(&format!("{p}/tcp"))).expect("port line");
    // A raw scan (the default as root) adds the answer's TTL: "syn-ack ttl 64".
    assert!(line.contains(" open ") && line.contains(" syn-ack"), "{line}");
    assert!(out.contains("RustMap done: 1 IP address (1 host up) scanned in"), "{out}");
}

#[test]
fn open_filter_hides_closed_ports() {
    let (open, closed) = listeners(1);
    let o = rustmap(&["-n", "--open", "-p", &port_arg(&open, &closed), "--oG", "-", "127.0.0.1"]);
    let out = stdout(&o);
    let ports_line = out.lines().find(|l| l.contains("Ports: ")).expect("grepable Ports line");
    assert_eq!(ports_line.matches("/open/tcp").count(), 1, "{ports_line}");
    assert!(!ports_line.contains("/closed/"), "{ports_line}");
}

#[test]
fn xml_validates_against_nmaps_dtd() {
    if !need_tool("/usr/share/nmap/nmap.dtd") || !need_tool("/usr/bin/xmllint") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("scan.xml");
    let (open, closed) = listeners(2);
    let o = rustmap(&["-n", "-p", &port_arg(&open, &closed), "--oX", xml.to_str().unwrap(), "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v =
        Command::new("xmllint").args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"]).arg(&xml).output().unwrap();
    assert!(v.status.success(), "xmllint: {}", String::from_utf8_lossy(&v.stderr));
    let text = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(text.matches("<state state=\"open\"").count(), 2, "{text}");
}

#[test]
fn ndiff_reads_and_diffs_two_scans() {
    if !need_tool("/usr/bin/ndiff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.xml"), dir.path().join("b.xml"));
    let (open, closed) = listeners(2);
    let ports = port_arg(&open, &closed);
    assert!(rustmap(&["-n", "-p", &ports, "--oX", a.to_str().unwrap(), "127.0.0.1"]).status.success());
    let gone = open[1].local_addr().unwrap().port();
    drop(open);
    assert!(rustmap(&["-n", "-p", &ports, "--oX", b.to_str().unwrap(), "127.0.0.1"]).status.success());
    let d = Command::new("ndiff").arg(&a).arg(&b).output().unwrap();
    let text = String::from_utf8_lossy(&d.stdout);
    // ndiff exits 1 when the scans differ; 2 would be an error reading them.
    assert_eq!(d.status.code(), Some(1), "ndiff: {text} {}", String::from_utf8_lossy(&d.stderr));
    assert!(text.contains(&format!("{gone}/tcp")), "{text}");
}

#[test]
fn output_all_writes_six_files_and_dash_replaces_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("res");
    let (open, closed) = listeners(1);
    let o = rustmap(&["-n", "-p", &port_arg(&open, &closed), "-oA", base.to_str().unwrap(), "127.0.0.1"]);
    assert!(o.status.success());
    for ext in ["nmap", "xml", "json", "gnmap", "yaml", "csv"] {
        let p = dir.path().join(format!("res.{ext}"));
        assert!(std::fs::metadata(&p).map(|m| m.len() > 50).unwrap_or(false), "{ext} missing");
    }
    // -oX - puts XML on stdout instead of the normal output.
    let o = rustmap(&["-n", "-p", &port_arg(&open, &closed), "-oX", "-", "127.0.0.1"]);
    assert!(stdout(&o).starts_with("<?xml"), "{}", stdout(&o));
}

#[test]
fn every_data_format_from_one_scan_with_append() {
    // One scan, every format at once (both spellings), each re-read; then --append-output adds a
    // second scan's lines to the CSV instead of replacing them.
    let dir = tempfile::tempdir().unwrap();
    let f = |ext: &str| dir.path().join(format!("r.{ext}")).to_str().unwrap().to_string();
    let (open, closed) = listeners(2);
    let ports = port_arg(&open, &closed);
    let o = rustmap(&[
        "-sT",
        "-n",
        "-p",
        &ports,
        "--oY",
        &f("yaml"),
        "-oC",
        &f("csv"),
        "--oCEF",
        &f("cef"),
        "-oLEEF",
        &f("leef"),
        "--oJ-lines",
        "-",
        "127.0.0.1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // JSON lines on stdout: the live stream, ports before their host is done.
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"scan_started"));
    assert_eq!(kinds.last(), Some(&"scan_finished"));
    let done = kinds.iter().position(|k| *k == "host_done").unwrap();
    assert_eq!(kinds[..done].iter().filter(|k| **k == "port_found").count(), 2 + closed.len());
    let yaml = std::fs::read_to_string(f("yaml")).unwrap();
    assert!(yaml.contains("scanner: rustmap") && yaml.contains("state: open"), "{yaml}");
    let csv = std::fs::read_to_string(f("csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",open,")).count(), 2, "{csv}");
    let cef = std::fs::read_to_string(f("cef")).unwrap();
    assert_eq!(cef.lines().filter(|l| l.starts_with("CEF:0|RustMap|RustMap|") && l.contains("|port-open|")).count(), 2);
    let leef = std::fs::read_to_string(f("leef")).unwrap();
    assert_eq!(leef.lines().filter(|l| l.starts_with("LEEF:2.0|RustMap|RustMap|")).count(), 3, "{leef}");
    let o = rustmap(&["-sT", "-n", "-p", &ports, "-oC", &f("csv"), "--append-output", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = std::fs::read_to_string(f("csv")).unwrap();
    assert_eq!(again.lines().filter(|l| l.contains(",open,")).count(), 4, "appended: {again}");
}

#[test]
fn history_lists_scans_and_diffs_tell_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let db = db.to_str().unwrap();
    let (mut open, closed) = listeners(2);
    let ports = port_arg(&open, &closed);
    let scan = |extra: &[&str]| {
        let mut a = vec!["-sT", "-n", "-p", ports.as_str(), "--db", db, "127.0.0.1"];
        a.extend_from_slice(extra);
        rustmap(&a)
    };
    assert!(scan(&[]).status.success());
    assert!(scan(&[]).status.success());
    // Same ports open: --diff finds nothing, exit 0.
    let o = scan(&["--diff"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("  none"), "{}", stdout(&o));
    // A port closes: --diff says so, exit 1.
    let gone = open.pop().unwrap().local_addr().unwrap().port();
    let o = scan(&["--diff"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("{gone}/tcp: open -> ")), "{}", stdout(&o));
    // --history: four scans, newest first; as JSON too.
    let o = rustmap(&["--history", "--db", db]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0].starts_with("ID ") && lines[1].contains("completed") && lines[1].contains("127.0.0.1"));
    let o = rustmap(&["--history", "--db", db, "--oJ", "-"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<String> = v.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(v[3]["open_ports"], 2);
    assert_eq!(v[0]["open_ports"], 1);
    // --diff-scans by unique prefixes: the oldest against the newest differ; a scan with itself not.
    let short = |id: &str| id[..20].to_string();
    let o = rustmap(&["--diff-scans", &format!("{},{}", short(&ids[3]), short(&ids[0])), "--db", db]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = rustmap(&["--diff-scans", &format!("{},{}", ids[3], ids[2]), "--db", db, "--oJ", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["changed"], serde_json::json!([]));
    // Unknown ids are usage errors naming the id.
    let o = rustmap(&["--diff-scans", "nosuch,other", "--db", db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"nosuch\""), "{}", stderr(&o));
    // --no-db stores nothing.
    let o = rustmap(&["-sT", "-n", "-p", &ports, "--no-db", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rustmap(&["-sT", "-n", "-p", &ports, "--no-db", "--db", db, "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "--no-db and --db contradict: {}", stderr(&o));
    let o = rustmap(&["--history", "--db", db, "--oJ", "-"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4, "no scan was added");
    // With the scan's JSON on stdout, the diff goes to stderr: stdout stays one document.
    let o = scan(&["--diff", "-oJ", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert!(doc.is_object(), "{doc}");
    assert!(stderr(&o).contains("Differences from scan") && stderr(&o).contains("  none"), "{}", stderr(&o));
}

#[test]
fn a_file_that_is_not_a_database_stops_the_scan_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "my notes\n".repeat(100)).unwrap();
    let o = rustmap(&["-sT", "-n", "-p", "1", "--db", db.to_str().unwrap(), "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not a RustMap database"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty(), "nothing was scanned");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), "my notes\n".repeat(100));
}

#[test]
fn input_list_from_stdin_and_exclusions() {
    let (open, closed) = listeners(1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .env("HOME", test_home())
        .args(["-n", "-Pn", "-p", &port_arg(&open, &closed), "-iL", "-", "--exclude", "127.0.0.2", "--oG", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"# loopback\n127.0.0.1 127.0.0.2\n127.0.0.3\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success());
    assert!(out.contains("Host: 127.0.0.1 ()\tStatus: Up") || out.contains("Host: 127.0.0.1 ()\tPorts:"), "{out}");
    assert!(out.contains("127.0.0.3"), "{out}");
    assert!(!out.contains("Host: 127.0.0.2 "), "excluded host was scanned: {out}");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_value() {
    for (args, needle) in [
        (vec!["-p", "70000", "127.0.0.1"], "70000"),
        (vec!["10.0.0.0/33"], "/33"),
        (vec!["300.1.1.1"], "300.1.1.1"),
        (vec!["-iL", "/nonexistent/list.txt"], "/nonexistent/list.txt"),
        (vec!["-T9", "127.0.0.1"], "-T9"),
        (vec!["--host-timeout", "soon", "127.0.0.1"], "soon"),
        (vec!["-p", "nosuchservice", "127.0.0.1"], "nosuchservice"),
        (vec!["-p", "80", "-F", "127.0.0.1"], "-F"),
        (vec!["--stats-every", "often", "127.0.0.1"], "often"),
        (vec!["--stats-every", "0", "127.0.0.1"], "--stats-every"),
        (vec!["--dns-servers", "8.8.8.8,dns.example", "127.0.0.1"], "dns.example"),
        (vec!["--dns-servers", "198.18.0.300", "127.0.0.1"], "198.18.0.300"),
        (vec!["--dns-servers", ",", "127.0.0.1"], "--dns-servers"),
        (vec!["--resolve-timeout", "soon", "127.0.0.1"], "soon"),
        (vec!["--resolve-timeout", "0", "127.0.0.1"], "--resolve-timeout"),
        (vec!["--system-dns", "--dns-servers", "192.0.2.53", "127.0.0.1"], "--system-dns"),
        (vec!["-PS70000", "127.0.0.1"], "70000"),
        (vec!["-PSssh", "127.0.0.1"], "ssh"),
        (vec!["--PA", "80-20", "127.0.0.1"], "80-20"),
        (vec!["-PX", "127.0.0.1"], "-PX"),
        (vec!["-PE22", "127.0.0.1"], "-PE22"),
        (vec!["-sT", "-PE", "127.0.0.1"], "-PE"),
        (vec!["-PR", "--disable-arp-ping", "127.0.0.1"], "--disable-arp-ping"),
        (vec!["-sn", "-sS", "127.0.0.1"], "-sn"),
        (vec!["-sn", "-F", "127.0.0.1"], "-sn"),
        (vec!["-sL", "-sn", "127.0.0.1"], "-sL"),
        (vec!["-sL", "-PS22", "127.0.0.1"], "-sL"),
        (vec!["-sn", "-sV", "127.0.0.1"], "-sV"),
        (vec!["-s", "Sn", "127.0.0.1"], "-sn"),
    ] {
        let o = rustmap(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?} scanned anyway");
    }
}

/// Ping and list scans on loopback, with and without privileges.
#[test]
fn ping_and_list_scans_on_loopback() {
    let o = rustmap(&["-sn", "-n", "127.0.0.1", "127.0.0.2"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out.matches("Host is up").count(), 2, "{out}");
    assert!(!out.contains("PORT"), "{out}");
    assert!(out.contains("2 IP addresses (2 hosts up)"), "{out}");
    // HTTP ping to a listener that speaks HTTP: up with http-response.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = l.accept() {
            let mut b = [0u8; 512];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"HTTP/1.0 204 No Content\r\n\r\n");
        }
    });
    let o = rustmap(&["-sn", "-n", "--PH", &port.to_string(), "-oJ", "-", "127.0.0.1"]);
    server.join().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hosts"][0]["reason"], "http-response", "{v}");
    // A list scan sends nothing and reports every address with status unknown.
    let o = rustmap(&["-sL", "-n", "-oX", "-", "127.0.0.0/30"]);
    let xml = stdout(&o);
    assert_eq!(xml.matches("<status state=\"unknown\"").count(), 4, "{xml}");
    assert!(xml.contains("<hosts up=\"0\" down=\"0\" total=\"4\"/>"), "{xml}");
}

#[test]
fn bad_interface_or_source_is_a_usage_error() {
    for (args, needle) in [
        (vec!["-e", "nosuch0", "-p", "80", "127.0.0.1"], "no such interface"),
        (vec!["-S", "1.2.3.x", "-p", "80", "127.0.0.1"], "not an IP address"),
        (vec!["-sT", "-S", "192.0.2.1", "-p", "80", "127.0.0.1"], "not an address of this machine"),
    ] {
        let o = rustmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn a_bad_value_never_truncates_an_output_file() {
    // Every check runs before any output file is created: a typo in -e, -S or a port must leave
    // last night's results as they were.
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("old.xml");
    std::fs::write(&xml, "previous results\n").unwrap();
    let path = xml.to_str().unwrap();
    for args in [
        vec!["-e", "nosuch0", "-p", "80", "--oX", path, "127.0.0.1"],
        vec!["-S", "1.2.3.x", "-p", "80", "--oX", path, "127.0.0.1"],
        vec!["-p", "80", "--oX", path, "--max-rate", "-3", "127.0.0.1"],
        vec!["-p", "80", "--oX", path, "--version-intensity", "12", "-sV", "127.0.0.1"],
    ] {
        let o = rustmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&xml).unwrap(), "previous results\n", "{args:?}");
    }
}

#[test]
fn a_sink_that_cannot_write_fails_the_scan() {
    // /dev/full takes the open but refuses every write: the scan must say so and exit 1, not
    // report success with its results lost.
    let (open, closed) = listeners(1);
    let ports = port_arg(&open, &closed);
    let o = rustmap(&["-sT", "-n", "-p", &ports, "--oX", "/dev/full", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("scan failed: writing output"), "{}", stderr(&o));
}

#[test]
fn connect_scan_from_a_chosen_interface_and_address() {
    let (open, closed) = listeners(1);
    let ports = port_arg(&open, &closed);
    let o = rustmap(&["-sT", "-Pn", "-n", "-e", "lo", "-S", "127.0.0.1", "-p", &ports, "-oJ", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let states: Vec<&str> =
        v["hosts"][0]["ports"].as_array().unwrap().iter().map(|p| p["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"open") && states.contains(&"closed"), "{v}");
}

#[test]
fn unbuilt_guide_flags_are_refused_not_ignored() {
    for (args, flag) in [
        (vec!["-sT", "-sU", "127.0.0.1"], "-sT combined with -sU"),
        (vec!["-s", "TZ", "127.0.0.1"], "-sT combined with -sU or an SCTP scan"),
        (vec!["--PO", "127.0.0.1"], "-PO"),
        (vec!["--oS", "x.txt", "127.0.0.1"], "--oS"),
        (vec!["--oM", "x.txt", "127.0.0.1"], "--oM"),
    ] {
        let o = rustmap(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("not yet supported: {flag}")), "{args:?}: {err}");
        assert!(stdout(&o).is_empty());
    }
}

/// OS detection's options are checked before anything is sent: each needs -O, -O needs raw
/// sockets and a port scan, and the values are named.
#[test]
fn os_detection_options_are_checked() {
    for (args, needle) in [
        (vec!["-O", "--unprivileged", "127.0.0.1"], "-O sends raw packets, which --unprivileged rules out"),
        (vec!["-A", "--unprivileged", "127.0.0.1"], "raw packets"),
        (vec!["--osscan-guess", "127.0.0.1"], "--osscan-guess only applies with -O"),
        (vec!["--fuzzy", "127.0.0.1"], "--osscan-guess only applies with -O"),
        (vec!["--osscan-limit", "127.0.0.1"], "--osscan-limit only applies with -O"),
        (vec!["-O", "-sn", "127.0.0.1"], "-O needs a port scan"),
        (vec!["-O", "--max-os-tries", "0", "127.0.0.1"], "--max-os-tries 0"),
        (vec!["-O", "--os-db", "/nonexistent/os.json", "127.0.0.1"], "/nonexistent/os.json"),
    ] {
        let o = rustmap(&[&args[..], &["--no-db"]].concat());
        let err = stderr(&o);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

/// `--os-entry` (nothing sent): a printed fingerprint becomes a database file `--os-db` accepts;
/// incomplete requests, bad files and targets are usage errors naming the problem.
#[test]
fn os_entry_makes_a_database_of_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let fp = dir.path().join("fp.txt");
    // as the normal output prints it: wrapped at 80 columns, inside strings too
    std::fs::write(&fp, "{\"seq1.opts\":\"mss,n\nop,ws\",\"t5.seq\":\"ack\",\"ttl\":2\n55}\n").unwrap();
    let fp = fp.to_str().unwrap();
    let name = ["--os-entry-name", "Lab lwIP", "--os-entry-class", "lwIP|embedded|2.X|specialized"];
    let o = rustmap(&[&["--os-entry", fp][..], &name].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let db: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(db["format"], "rustmap-os-db");
    let e = &db["entries"][0];
    assert_eq!((e["id"].as_str(), e["tests"]["ttl"].as_i64()), (Some("lab-lwip"), Some(255)));
    assert_eq!(e["tests"]["seq1.opts"], "mss,nop,ws");
    assert_eq!(e["classes"][0]["vendor"], "lwIP");
    let saved = dir.path().join("db.json");
    std::fs::write(&saved, stdout(&o)).unwrap();
    let saved = saved.to_str().unwrap();
    for (args, needle) in [
        (vec!["--os-entry", fp], "--os-entry-name"),
        (vec!["--os-entry", fp, "--os-entry-name", "x"], "--os-entry-class"),
        (vec!["--os-entry", fp, "--os-entry-name", "x", "--os-entry-class", "a|b"], "four fields"),
        (vec!["--os-entry", saved, "--os-entry-name", "x", "--os-entry-class", "a|b||c"], "unknown test \"entries\""),
        (
            vec!["--os-entry", "/nonexistent/f.json", "--os-entry-name", "x", "--os-entry-class", "a|b||c"],
            "/nonexistent/f.json",
        ),
        (
            vec!["--os-entry", fp, "--os-entry-name", "x", "--os-entry-class", "a|b||c", "127.0.0.1"],
            "a target does not apply",
        ),
        (
            vec!["--os-entry", fp, "--os-entry-name", "x", "--os-entry-class", "a|b||c", "-oX", "o.xml"],
            "--oX does not apply",
        ),
        (vec!["--os-entry", fp, "--os-entry-name", "x", "--os-entry-class", "a|b||c", "-O"], "does not apply"),
        (vec!["--os-entry-name", "x"], "--os-entry"),
    ] {
        let o = rustmap(&[&args[..], &["--no-db"]].concat());
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

/// `--tui` with stdout not a terminal (here a pipe) is a usage error before anything is scanned or
/// stored; so is `--tui` with an option that would write to the terminal under it. Built without
/// the `tui` feature, `--tui` says the build has none.
#[test]
fn tui_needs_a_terminal_and_refuses_what_would_write_over_it() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("tui.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rustmap"))
            .args(args)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .expect("run rustmap")
    };
    let o = run(&["--tui", "--db", db, "127.0.0.1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(!Path::new(db).exists(), "nothing was started or stored: {err}");
    if cfg!(feature = "tui") {
        assert!(err.contains("--tui needs a terminal: standard output is not one"), "{err}");
        for (args, names) in [
            (vec!["--watch"], "--watch"),
            (vec!["--oN", "-"], "--oN -"),
            (vec!["--oX", "-"], "--oX -"),
            (vec!["--oJ-lines", "-"], "--oJ-lines -"),
            (vec!["--stats-every", "5"], "--stats-every"),
            (vec!["--topology", "dot"], "--topology without --topology-output"),
        ] {
            let mut all = vec!["--tui", "--db", db];
            all.extend(args.iter().copied());
            all.push("127.0.0.1");
            let o = run(&all);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
            assert!(
                err.contains(&format!("--tui draws the scan on the terminal: it cannot be combined with {names}")),
                "{all:?}: {err}"
            );
        }
        // A file is fine: the check that fails is the terminal one, not a conflict.
        let x = home.path().join("scan.xml");
        let o = run(&["--tui", "--db", db, "--oX", x.to_str().unwrap(), "127.0.0.1"]);
        assert!(stderr(&o).contains("--tui needs a terminal"), "{}", stderr(&o));
        assert!(!x.exists(), "no output file before the scan starts");
    } else {
        assert!(err.contains("--tui: this build of rustmap has no TUI"), "{err}");
    }
}

#[test]
fn evasion_options_that_cannot_apply_or_have_bad_values_are_usage_errors() {
    for (args, says) in [
        (vec!["-sT", "-D", "198.18.0.201,ME"], "-D cannot be used here: a connect scan"),
        (vec!["-sT", "-f"], "-f cannot be used here: a connect scan"),
        (vec!["-sT", "-g", "53"], "-g cannot be used here"),
        (vec!["-sL", "--badsum"], "--badsum cannot be used here: -sL sends nothing"),
        (vec!["--privileged", "-sS", "--mtu", "30"], "--mtu 30: the fragment size must be a multiple of 8"),
        (vec!["--privileged", "-sS", "--ttl", "300"], "--ttl 300: must be 0 to 255"),
        (vec!["--privileged", "-sS", "-D", "decoy.example"], "\"decoy.example\" is not an IP address, ME or RND[:N]"),
        (vec!["--privileged", "-sS", "-D", "ME,ME"], "ME is given twice"),
        (vec!["--privileged", "-sS", "--data-length", "5000"], "--data-length: 5000 bytes is more than the 1400"),
        (vec!["--privileged", "-sS", "--data-hex", "xyz"], "--data-hex \"xyz\""),
        (vec!["--privileged", "-sS", "--data-hex", "00", "--data-string", "a"], "alternatives"),
        (vec!["--privileged", "-sS", "--spoof-mac", "Apple"], "--spoof-mac \"Apple\""),
        (vec!["--privileged", "-sS", "--spoof-mac", "0", "--send-ip"], "--spoof-mac needs Ethernet frames"),
        (vec!["--privileged", "-sS", "--ip-options", "L 1.2.3"], "--ip-options \"L 1.2.3\""),
        (vec!["-g", "70000"], "70000"),
    ] {
        let mut all = args.clone();
        all.push("127.0.0.1");
        let o = rustmap(&all);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
}

/// Run rustmap without any capability: as root, drop to nobody with every capability cleared;
/// otherwise the process has none anyway.
fn rustmap_unprivileged(args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_rustmap");
    if is_root() {
        // A home of its own: the history database the root runs made there is not its to write.
        use std::os::unix::fs::PermissionsExt;
        let home = test_home().join("unprivileged");
        let _ = std::fs::create_dir_all(&home);
        let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o1777));
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", bin])
            .args(args)
            .env("HOME", home)
            .output()
            .unwrap()
    } else {
        rustmap(args)
    }
}

/// The checks of a `--self-test --oJ -` run: (name, status) in order.
fn self_test_checks(o: &Output) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)));
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
            (c["name"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn self_test_runs_eight_checks_and_unprivileged_raw_access_fails_with_exit_1() {
    let o = rustmap_unprivileged(&["--self-test", "--oJ", "-"]);
    let checks = self_test_checks(&o);
    let names: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "Privilege level",
            "Packet capture",
            "Raw socket access",
            "Network interfaces",
            "DNS resolution",
            "Loopback connectivity",
            "Scan database",
            "GeoIP databases"
        ]
    );
    let status = |n: &str| checks.iter().find(|c| c.0 == n).unwrap().1.clone();
    assert_eq!(status("Raw socket access"), "FAIL");
    assert_eq!(status("Privilege level"), "WARN");
    // The connection works; the raw probe is skipped, so a warning, not a failure.
    assert_eq!(status("Loopback connectivity"), "WARN");
    assert_eq!(o.status.code(), Some(1), "a failed check: exit 1");
    // The normal layout: one line a check, the hint under it, a summary.
    let o = rustmap_unprivileged(&["--self-test"]);
    let out = stdout(&o);
    assert!(out.contains("[FAIL] Raw socket access: cannot open a raw IP socket"), "{out}");
    assert!(out.contains("hint: run as root, or give the binary the capability"), "{out}");
    assert!(out.contains("8 checks: "), "{out}");
    // --no-db: the database check says history is off.
    let o = rustmap(&["--self-test", "--no-db", "--oJ", "-"]);
    assert_eq!(self_test_checks(&o)[6], ("Scan database".to_string(), "WARN".to_string()));
    // A database file that is not SQLite fails the check, untouched.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, b"not a database at all, just some bytes that are long enough").unwrap();
    let o = rustmap(&["--self-test", "--db", bad.to_str().unwrap(), "--oJ", "-"]);
    assert_eq!(self_test_checks(&o)[6].1, "FAIL");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(&bad).unwrap(), b"not a database at all, just some bytes that are long enough");
}

#[test]
fn raw_scans_without_privilege_are_refused_with_a_reason() {
    for args in [
        vec!["-sS", "-p", "80", "127.0.0.1"],
        vec!["-sU", "-p", "53", "127.0.0.1"],
        vec!["-sY", "-p", "80", "127.0.0.1"],
        vec!["--sctp-cookie-echo", "-p", "80", "127.0.0.1"],
    ] {
        let o = rustmap_unprivileged(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("needs root or CAP_NET_RAW"), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

/// Root, as the kernel sees it, from /proc (no libc call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn only_one_tcp_scan_type_per_scan() {
    let o = rustmap(&["-sS", "-sA", "-p", "80", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("only one TCP scan type"), "{}", stderr(&o));
    // nmap's -sY and the guide's -s Z are the same INIT scan; COOKIE-ECHO is a second SCTP type.
    let o = rustmap(&["-sZ", "--sctp-cookie-echo", "-p", "80", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("only one SCTP scan type"), "{}", stderr(&o));
}

#[test]
fn both_spellings_are_accepted() {
    let (open, closed) = listeners(1);
    let ports = port_arg(&open, &closed);
    for args in [
        vec!["-sT", "-Pn", "-T4", "-n", "-p", &ports, "-oJ", "-", "127.0.0.1"],
        vec!["-s", "T", "--Pn", "-T", "4", "-n", "-p", &ports, "--oJ", "-", "127.0.0.1"],
        vec!["--sT", "--Pn", "-T", "aggressive", "-n", "-p", &ports, "--oJ=-", "127.0.0.1"],
    ] {
        let o = rustmap(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["hosts"][0]["reason"], "user-set", "{args:?}");
    }
}

#[test]
fn help_and_version() {
    let o = rustmap(&["--help"]);
    assert!(o.status.success());
    let h = stdout(&o);
    for flag in ["-p <PORTS>", "--top-ports", "--host-timeout", "--oX", "--exclude", "not yet supported"] {
        assert!(h.contains(flag), "help lacks {flag}");
    }
    let o = rustmap(&["--version"]);
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn all_ports_of_loopback_exactly() {
    // -p- over loopback: exactly our listeners among the open ports we did not expect to vanish.
    let (open, _) = listeners(3);
    let o = rustmap(&["-n", "-p-", "-T4", "--oJ", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found: Vec<u64> = v["hosts"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "open")
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    for l in &open {
        assert!(found.contains(&u64::from(l.local_addr().unwrap().port())), "{found:?}");
    }
    let scanned: u64 = v["hosts"][0]["ports"].as_array().unwrap().len() as u64
        + v["hosts"][0]["extraports"].as_array().unwrap().iter().map(|e| e["count"].as_u64().unwrap()).sum::<u64>();
    assert_eq!(scanned, 65535);
}

#[test]
fn tiny_descriptor_limit_still_gives_exact_results() {
    // With only 80 descriptors the window must stay small; nothing may fail with EMFILE.
    if Command::new("prlimit").arg("--version").output().is_err() {
        return need_tool_skip("prlimit");
    }
    let (open, _) = listeners(3);
    let o = Command::new("prlimit")
        .args([
            "--nofile=80:80",
            env!("CARGO_BIN_EXE_rustmap"),
            "-sT",
            "-n",
            "-T5",
            "--min-parallelism",
            "500",
            "-p",
            "1-4000,30000-65535",
            "--oJ",
            "-",
            "127.0.0.1",
        ])
        // Never the real ~/.rustmap: its history database may be another build's.
        .env("HOME", test_home())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found: Vec<u64> = v["hosts"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "open")
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    for l in &open {
        let p = u64::from(l.local_addr().unwrap().port());
        if p >= 30000 {
            assert!(found.contains(&p), "{p} not in {found:?}");
        }
    }
    let filtered = v["hosts"][0]["ports"].as_array().unwrap().iter().filter(|p| p["state"] == "filtered").count();
    assert_eq!(filtered, 0, "no port may be lost to local errors");
}

fn need_tool_skip(tool: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{tool} is required in CI");
    }
    eprintln!("SKIP: {tool} not installed");
}

/// Every event of an XML document, to its end: an error means it is not well-formed.
fn assert_well_formed_xml(text: &str) {
    let mut r = quick_xml::Reader::from_str(text);
    let mut depth = 0i32;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML at {}: {e}\n{text}", r.buffer_position()),
        }
    }
    assert_eq!(depth, 0, "unclosed elements:\n{text}");
}

#[test]
fn stats_every_goes_to_stderr_and_leaves_stdout_documents_valid() {
    // Twenty-one ports 100 ms apart: a scan of about two seconds, so the 1 s status comes at least once.
    let (open, closed) = listeners(1);
    let ports = port_arg(&open, &closed);
    let slow = ["-sT", "-Pn", "-n", "--scan-delay", "100ms", "-p", ports.as_str()];
    let runs: Vec<_> = [
        vec!["--stats-every", "1s", "-oX", "-", "127.0.0.1"],
        vec!["--stats-every", "1", "-oJ", "-", "127.0.0.1"],
        // No --stats-every, stderr not a terminal: no status output of any kind.
        vec!["-oN", "-", "127.0.0.1"],
    ]
    .into_iter()
    .map(|extra| {
        let args: Vec<String> = slow.iter().chain(extra.iter()).map(|s| s.to_string()).collect();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
                .args(&args)
                .env("HOME", test_home())
                .stdin(Stdio::null())
                .output()
                .unwrap();
            (o, started.elapsed())
        })
    })
    .collect();
    let mut results = runs.into_iter().map(|h| h.join().unwrap());

    let (xml, took) = results.next().unwrap();
    assert!(xml.status.success(), "{}", stderr(&xml));
    assert!(took.as_millis() > 1500, "the scan must outlast the interval: {took:?}");
    let err = stderr(&xml);
    assert!(err.lines().any(|l| l.starts_with("Stats: ") && l.ends_with("undergoing Connect Scan")), "{err}");
    assert!(err.lines().any(|l| l.starts_with("Connect Scan Timing: About ") && l.contains("% done; ETC: ")), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "a pipe gets no live line: {err:?}");
    let out = stdout(&xml);
    assert!(out.starts_with("<?xml") && out.trim_end().ends_with("</nmaprun>"), "{out}");
    assert!(!out.contains("Stats:"), "{out}");
    assert_well_formed_xml(&out);
    assert_eq!(out.matches("<state state=\"open\"").count(), 1, "{out}");

    let (json, _) = results.next().unwrap();
    assert!(json.status.success(), "{}", stderr(&json));
    assert!(stderr(&json).lines().any(|l| l.starts_with("Stats: ")), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("stdout is one JSON document");
    assert_eq!(v["stats"]["completed"], true);

    let (plain, _) = results.next().unwrap();
    assert!(plain.status.success());
    assert!(plain.stderr.is_empty(), "{:?}", stderr(&plain));
    assert!(stdout(&plain).contains("RustMap done"), "{}", stdout(&plain));
}

#[test]
fn no_progress_is_accepted_with_every_output() {
    let (open, closed) = listeners(1);
    let o = rustmap(&["-sT", "-n", "--no-progress", "-p", &port_arg(&open, &closed), "-oX", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    assert_well_formed_xml(&stdout(&o));
}

/// A loopback TCP service that greets every connection with `banner` and then stays quiet.
fn banner_server(banner: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = s.write_all(banner);
                std::thread::sleep(std::time::Duration::from_secs(4));
            });
        }
    });
    port
}

#[test]
fn version_detection_on_loopback_in_every_spelling() {
    let port = banner_server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").to_string();
    for spelling in [vec!["-sT", "-sV"], vec!["--sV"], vec!["-s", "TV"]] {
        let mut args = spelling.clone();
        args.extend(["-Pn", "-n", "-p", &port, "-oJ", "-", "127.0.0.1"]);
        let o = rustmap(&args);
        assert!(o.status.success(), "{spelling:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let s = &v["hosts"][0]["ports"][0]["service"];
        assert_eq!(s["name"], "ssh", "{spelling:?}: {v}");
        assert_eq!(s["product"], "OpenSSH");
        assert_eq!(s["version"], "9.2p1 Debian 2+deb12u3");
        assert_eq!(s["method"], "probed");
        assert_eq!(s["conf"], 10);
    }
    let o = rustmap(&["-sT", "-sV", "-Pn", "-n", "-p", &port, "127.0.0.1"]);
    let out = stdout(&o);
    assert!(out.contains("PORT "), "{out}");
    assert!(out.contains("STATE SERVICE VERSION\n"), "{out}");
    assert!(out.contains(" open  ssh     OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)\n"), "{out}");
    assert!(out.contains("Service Info: OS: Linux; CPE: cpe:/o:linux:linux_kernel\n"), "{out}");
}

#[test]
fn version_detection_xml_validates_against_nmaps_dtd() {
    if !need_tool("/usr/share/nmap/nmap.dtd") || !need_tool("/usr/bin/xmllint") {
        return;
    }
    let port = banner_server(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").to_string();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("v.xml");
    let o = rustmap(&["-sT", "-sV", "-Pn", "-n", "-p", &port, "-oX", xml.to_str().unwrap(), "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(text.contains("product=\"OpenSSH\""), "{text}");
    assert!(text.contains("<cpe>cpe:/a:openbsd:openssh:9.2p1</cpe>"), "{text}");
    let v =
        Command::new("xmllint").args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"]).arg(&xml).output().unwrap();
    assert!(v.status.success(), "xmllint: {}", String::from_utf8_lossy(&v.stderr));
}

/// A service no rule knows: its answer comes back as a fingerprint in normal output (nmap's appeal
/// block, wrapped), XML (`servicefp`, still valid per nmap's DTD) and JSON, escaped everywhere.
#[test]
fn unknown_service_gets_a_fingerprint() {
    let port = banner_server(b"XYZZY-9 \x1b[2J\"ready\"\r\n").to_string();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("u.xml");
    let o = rustmap(&["-sT", "-sV", "-Pn", "-n", "-p", &port, "-oX", xml.to_str().unwrap(), "-oJ", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["hosts"][0]["ports"][0]["service"];
    assert_eq!(s["method"], "table", "{v}");
    let fp = s["fingerprint"].as_str().unwrap();
    assert!(fp.starts_with(&format!("RMFP1;port={port}/tcp;rustmap=")), "{fp}");
    assert!(fp.contains(r#";r(null,21,"XYZZY-9 \x1b[2J\"ready\"\x0d\x0a")"#), "{fp}");
    // The banner every probe's connection got is written once.
    assert_eq!(fp.matches("XYZZY").count(), 1, "{fp}");
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(text.contains(" servicefp=\"RMFP1;port="), "{text}");
    if need_tool("/usr/share/nmap/nmap.dtd") && need_tool("/usr/bin/xmllint") {
        let v = Command::new("xmllint")
            .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
            .arg(&xml)
            .output()
            .unwrap();
        assert!(v.status.success(), "xmllint: {}", String::from_utf8_lossy(&v.stderr));
    }
    let o = rustmap(&["-sT", "-sV", "-Pn", "-n", "-p", &port, "127.0.0.1"]);
    let out = stdout(&o);
    assert!(out.contains("1 service unrecognized despite returning data."), "{out}");
    assert!(
        out.contains("==============NEXT SERVICE FINGERPRINT (SUBMIT INDIVIDUALLY)==============\nRMFP1;"),
        "{out}"
    );
    assert!(out.lines().all(|l| l.chars().count() <= 200) && !out.contains('\x1b'), "{out}");
}

#[test]
fn probe_db_file_adds_rules_and_bad_lines_name_file_and_line() {
    let port = banner_server(b"HELLO-RUSTMAP widget 1.2\r\n").to_string();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("mine.rmp");
    std::fs::write(&good, "probe tcp null\nmatch widget\n  pattern ^HELLO-RUSTMAP widget ([\\d.]+)\\r\\n\n  product Widget server\n  version $1\n").unwrap();
    let o = rustmap(&[
        "-sT",
        "-sV",
        "--probe-db",
        good.to_str().unwrap(),
        "-Pn",
        "-n",
        "-p",
        &port,
        "-oJ",
        "-",
        "127.0.0.1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["hosts"][0]["ports"][0]["service"];
    assert_eq!(
        (s["name"].as_str(), s["product"].as_str(), s["version"].as_str()),
        (Some("widget"), Some("Widget server"), Some("1.2")),
        "{v}"
    );

    let bad = dir.path().join("bad.rmp");
    std::fs::write(&bad, "probe tcp x\n  send \"a\"\nmatch y\n  pattern ^(unclosed\n  product $1\n").unwrap();
    let o = rustmap(&["-sV", "--probe-db", bad.to_str().unwrap(), "-p", "1", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:4: bad pattern", bad.display())), "{err}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn version_flag_errors_are_usage_errors() {
    for (args, want) in [
        (vec!["-sV", "--version-intensity", "10", "127.0.0.1"], "--version-intensity must be 0-9"),
        (vec!["--version-light", "127.0.0.1"], "--version-light needs -sV"),
        (vec!["--version-intensity", "3", "127.0.0.1"], "--version-intensity needs -sV"),
        (vec!["--no-quic", "127.0.0.1"], "--no-quic needs -sV"),
        (vec!["-sV", "--version-all", "--version-intensity", "3", "127.0.0.1"], "cannot be combined"),
        (vec!["-sV", "--probe-db", "/nonexistent/x.rmp", "127.0.0.1"], "cannot read probe database /nonexistent/x.rmp"),
    ] {
        let o = rustmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let o = rustmap(&["-sV", "--version-light", "--version-all", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn tcpwrapped_and_silent_ports_on_loopback() {
    // Accept and close at once: tcpwrapped. Accept and say nothing: no service, within budget.
    let wrapped = TcpListener::bind("127.0.0.1:0").unwrap();
    let wport = wrapped.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in wrapped.incoming().flatten() {
            drop(s);
        }
    });
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let ports = format!("{wport},{sport}");
    let started = std::time::Instant::now();
    let o = rustmap(&["-sT", "-sV", "-Pn", "-n", "-p", &ports, "-oJ", "-", "127.0.0.1"]);
    let took = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let svc =
        |p: u16| v["hosts"][0]["ports"].as_array().unwrap().iter().find(|x| x["port"] == p).unwrap()["service"].clone();
    assert_eq!(svc(wport)["name"], "tcpwrapped", "{v}");
    assert_ne!(svc(sport)["method"], "probed", "{v}");
    assert!(took < std::time::Duration::from_secs(4), "a silent port took {took:?}");
}

/// The `scan_started` event of a scan's JSON lines on stdout.
fn started(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    let first = stdout(o).lines().next().map(str::to_string).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["event"], "scan_started");
    v
}

#[test]
fn profiles_are_listed_saved_used_and_overridden() {
    let o = rustmap(&["--list-profiles"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let names: Vec<&str> = out.lines().filter(|l| !l.is_empty() && !l.starts_with(' ')).collect();
    for want in ["quick", "network-discovery", "web-audit", "full-audit", "stealth", "iot-scan", "aggressive"] {
        assert!(names.contains(&want), "{want} missing from {out}");
    }
    assert!(out.contains("  sets: ports.top = 100, timing.template = 4"), "{out}");

    // The bar: `--profile quick` scans exactly the top 100 ports at T4.
    let quick = started(&rustmap(&["--profile", "quick", "-sT", "--no-db", "--oJ-lines", "-", "127.0.0.1"]));
    assert_eq!(quick["config"]["timing"]["template"], 4);
    assert_eq!(quick["scans"][0]["ports"].as_array().map(Vec::len), Some(100));
    // Flags override the profile: its ports and its timing.
    let o = rustmap(&["--profile", "quick", "-T3", "-p", "22", "-sT", "--no-db", "--oJ-lines", "-", "127.0.0.1"]);
    let over = started(&o);
    assert_eq!(over["config"]["timing"]["template"], 3);
    assert_eq!(over["scans"][0]["ports"], serde_json::json!([22]));

    // Save (no targets: save only) → list → use.
    let name = format!("cli-test-{}", std::process::id());
    let file = test_home().join(".rustmap").join("profiles").join(format!("{name}.toml"));
    let o = rustmap(&["-sT", "-T2", "-p", "80,443", "--max-retries", "1", "--save-profile", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("saved profile {name}")), "{}", stderr(&o));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("template = 2") && !text.contains("targets"), "{text}");
    let listed = stdout(&rustmap(&["--list-profiles"]));
    assert!(listed.contains(&format!("{name}\n")) && listed.contains("max_retries = 1"), "{listed}");
    let used = started(&rustmap(&["--profile", &name, "--no-db", "--oJ-lines", "-", "127.0.0.1"]));
    assert_eq!(used["config"]["timing"]["template"], 2);
    assert_eq!(used["config"]["timing"]["max_retries"], 1);
    assert_eq!(used["scans"][0]["ports"], serde_json::json!([80, 443]));
    // The built-in names are not overwritten; bad names are refused.
    for bad in ["quick", "../x", "a b"] {
        let o = rustmap(&["-T2", "--save-profile", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
    }

    // Unknown name: the available ones are listed. Malformed file: its line.
    let o = rustmap(&["--profile", "no-such-profile", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown profile \"no-such-profile\"") && stderr(&o).contains(&name), "{}", stderr(&o));
    let broken = format!("{name}-broken");
    let bad_file = file.with_file_name(format!("{broken}.toml"));
    std::fs::write(&bad_file, "version = 1\n[ports]\nspec = \"22\"\ntop_ports = 5\n").unwrap();
    let o = rustmap(&["--profile", &broken, "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 4, column 1") && stderr(&o).contains("top_ports"), "{}", stderr(&o));
    let _ = std::fs::remove_file(&bad_file);
    let _ = std::fs::remove_file(&file);

    // The aggressive profile: everything it names is built (OS detection, scripts, traceroute).
    let (_open, closed) = listeners(0);
    let p = closed[0].to_string();
    let o = rustmap(&["--profile", "aggressive", "-sT", "-p", &p, "--no-db", "--oJ-lines", "-", "127.0.0.1"]);
    if !is_root() {
        // Its traceroute sends raw packets: without root the profile is refused, saying why.
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("--traceroute sends raw packets"), "{}", stderr(&o));
        return;
    }
    let agg = started(&o);
    assert_eq!(agg["service_scan"], true);
    assert_eq!(agg["config"]["os"]["enabled"], true, "{agg}");
    assert!(!stderr(&o).contains("not supported yet"), "{}", stderr(&o));
    // Scripts are built: the profile runs the default ones, and says nothing about them.
    assert!(!stderr(&o).contains("scripts"), "{}", stderr(&o));
    assert_eq!(agg["config"]["scripts"]["select"], "default", "{agg}");
    assert!(!stderr(&o).contains("traceroute (--traceroute)"), "traceroute is built: {}", stderr(&o));
}

#[test]
fn watch_options_are_checked_before_anything_is_scanned() {
    for (args, needle) in [
        (&["--interval", "5", "127.0.0.1"][..], "--interval belongs to watch mode"),
        (&["--webhook", "http://127.0.0.1:9/", "127.0.0.1"][..], "--webhook belongs to watch mode"),
        (&["--watch", "--no-db", "127.0.0.1"][..], "cannot run with --no-db"),
        (&["--watch", "--interval", "soon", "127.0.0.1"][..], "--interval takes seconds"),
        (&["--watch", "--webhook", "ftp://127.0.0.1/x", "127.0.0.1"][..], "only http:// and https://"),
        (&["--watch", "-p", "99999", "127.0.0.1"][..], "99999"),
    ] {
        let o = rustmap(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?}: nothing scanned");
    }
}

#[test]
fn ctrl_c_during_a_watch_scan_stores_it_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    // A scan of 100 closed ports, 100 ms apart: ten seconds, interrupted after one.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(["--watch", "--interval", "1", "-sT", "-n", "-Pn", "-p", "1-100", "--scan-delay", "100ms"])
        .args(["--max-retries", "0", "--db", db, "127.0.0.1"])
        .env("HOME", test_home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(
        stderr(&o).contains("watch stopped at iteration 1") && stderr(&o).contains("stored as interrupted"),
        "{}",
        stderr(&o)
    );
    let h = rustmap(&["--history", "--db", db, "--oJ", "-"]);
    let v: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["status"], "interrupted", "{v}");
}

#[test]
fn traceroute_and_mtu_discovery_need_raw_sockets_and_say_so() {
    for flag in ["--traceroute", "--mtu-discovery", "--topology"] {
        let mut args = vec!["--unprivileged", "--no-db", flag];
        if flag == "--topology" {
            args.push("dot");
        }
        args.push("127.0.0.1");
        let o = rustmap(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("{flag} sends raw packets")), "{args:?}: {err}");
        assert!(stdout(&o).is_empty());
    }
    let o = rustmap(&["--no-db", "--topology-output", "net.txt", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--topology dot|graphml|json"), "{}", stderr(&o));
    let o = rustmap(&["--no-db", "--topology", "svg", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses an unknown format");
}

#[test]
fn cluster_flags_without_a_cluster_mode_are_refused_not_ignored() {
    for args in [
        vec!["--nats", "nats://127.0.0.1:1", "-p", "9", "127.0.0.1"],
        vec!["--nats-token", "t", "-p", "9", "127.0.0.1"],
        vec!["--shard-ack-wait", "5s", "-p", "9", "127.0.0.1"],
    ] {
        let o = rustmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let flag = args[0];
        assert!(
            stderr(&o).contains(&format!("{flag} goes with --distribute, --agent, --agents or --api")),
            "{}",
            stderr(&o)
        );
    }
    let o = rustmap(&["--api", "--nats-token", "t", "--no-progress"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--nats-token needs --nats URL"), "{}", stderr(&o));
}

/// `rustmap -V | head -0`: a reader that closed the pipe before the version was written is no
/// failure, and no panic.
#[test]
fn version_into_a_closed_pipe_exits_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .arg("-V")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}
