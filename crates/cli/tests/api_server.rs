//! `rustmap --api` as a process: its flags' usage errors, SIGTERM stopping running scans (stored
//! as interrupted), schemathesis against its OpenAPI document (tests/api/schemathesis.sh, inside
//! a network namespace of its own), and a WebSocket client following a lab scan
//! (tests/api/ws_client.py, inside the lab's scanner namespace).

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rustmap")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

/// Skip (or, with CI=true, fail) when a requirement is missing.
fn need(ok: bool, why: &str) -> bool {
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why} (CI=true: not skipping)");
        eprintln!("SKIP: {why}");
    }
    ok
}

/// One HTTP/1.1 request on loopback; (status, body as JSON or a JSON string).
fn http(addr: SocketAddr, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let text = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(text).unwrap_or(Value::String(text.into())))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_healthy(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "the API never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_flags_are_checked_before_anything_is_bound() {
    for (args, needle) in [
        (&["--api", "--listen", "0.0.0.0:0"][..], "--api-key"),
        (&["--api", "--listen", "nope"][..], "--listen"),
        (&["--api", "127.0.0.1"][..], "takes no targets"),
        (&["--api", "--api-allow", "example.com"][..], "example.com"),
        (&["--api", "--api-key", " "][..], "empty"),
        (&["--api", "--no-db"][..], "--no-db"),
        (&["--listen", "127.0.0.1:1"][..], "--api"),
    ] {
        let o = Command::new(bin()).args(args).env("HOME", std::env::temp_dir()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn the_key_can_come_from_the_config_files_key_file() {
    let home = tempfile::tempdir().unwrap();
    let conf = home.path().join(".rustmap");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("config.toml"), "[api]\nkey_file = \"~/api.key\"\n").unwrap();
    // Missing file: a usage error naming it, before anything is bound.
    let o = Command::new(bin()).args(["--api", "--listen", "0.0.0.0:0"]).env("HOME", home.path()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("api.key"), "{err}");
    std::fs::write(home.path().join("api.key"), "file-key\n").unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(bin())
        .args(["--api", "--listen", &addr.to_string()])
        .env("HOME", home.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    wait_healthy(addr);
    assert_eq!(http(addr, "GET", "/api/scans", "wrong", None).0, 401);
    assert_eq!(http(addr, "GET", "/api/scans", "file-key", None).0, 200, "the file's key, whitespace trimmed");
}

#[test]
fn sigterm_stops_running_scans_and_stores_them_interrupted() {
    let home = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(bin())
        .args(["--api", "--listen", &addr.to_string(), "--api-key", "k"])
        .env("HOME", home.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_healthy(addr);
    // Minutes of probes unless stopped; no reverse DNS (nothing leaves loopback).
    let body = json!({"targets": ["127.0.0.1"], "scan_type": "T", "ports": "1-2000", "skip_discovery": true,
                      "config": {"timing": {"scan_delay": "100ms"}, "names": {"reverse": "never"}}});
    let (status, v) = http(addr, "POST", "/api/scans", "k", Some(&body));
    assert_eq!(status, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let (_, v) = http(addr, "GET", &format!("/api/scans/{id}"), "k", None);
    assert_eq!(v["scan"]["status"], "running", "{v}");
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "the server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    let mut err = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("stored as interrupted"), "{err}");
    let db = home.path().join(".rustmap/rustmap.db");
    let status: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT status FROM scans WHERE id = ?1", [&id], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "interrupted");
}

#[test]
fn a_server_killed_under_load_restarts_marks_its_scans_interrupted_and_serves_the_rest() {
    let home = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let start = || {
        let child = Command::new(bin())
            .args(["--api", "--listen", &addr.to_string(), "--api-key", "k"])
            .env("HOME", home.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_healthy(addr);
        Server(child)
    };
    let mut server = start();
    let quick = json!({"targets": ["127.0.0.1"], "scan_type": "T", "ports": "1-100", "skip_discovery": true,
                       "config": {"names": {"reverse": "never"}}});
    let (status, v) = http(addr, "POST", "/api/scans", "k", Some(&quick));
    assert_eq!(status, 202, "{v}");
    let done = v["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(addr, "GET", &format!("/api/scans/{done}"), "k", None).1["scan"]["status"] != "completed" {
        assert!(Instant::now() < deadline, "the quick scan never completed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut running = Vec::new();
    for i in 2..5 {
        let body = json!({"targets": [format!("127.0.0.{i}")], "scan_type": "T", "ports": "1-2000", "skip_discovery": true,
                          "config": {"timing": {"scan_delay": "100ms"}, "names": {"reverse": "never"}}});
        let (status, v) = http(addr, "POST", "/api/scans", "k", Some(&body));
        assert_eq!(status, 202, "{v}");
        running.push(v["id"].as_str().unwrap().to_string());
    }
    std::thread::sleep(Duration::from_millis(600));
    // Readers hammer the server while it is killed (each bounded: 300 requests or 20 s).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_secs(20);
                for _ in 0..300 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > until {
                        break;
                    }
                    let _ = std::panic::catch_unwind(|| http(addr, "GET", "/api/scans", "k", None));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    drop(server);
    let db = home.path().join(".rustmap/rustmap.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    // Restarted: the killed scans are marked interrupted; the rest is served as before.
    let mut server = start();
    for id in &running {
        let (status, v) = http(addr, "GET", &format!("/api/scans/{id}"), "k", None);
        assert_eq!((status, v["scan"]["status"].as_str()), (200, Some("interrupted")), "{v}");
    }
    let (status, v) = http(addr, "GET", &format!("/api/scans/{done}"), "k", None);
    assert_eq!((status, v["scan"]["status"].as_str()), (200, Some("completed")), "{v}");
    let (status, v) = http(addr, "GET", &format!("/api/scans/{done}/export?format=xml"), "k", None);
    assert!(status == 200 && v.as_str().is_some_and(|x| x.contains("<nmaprun")), "{status} {v}");
    let (status, v) = http(addr, "POST", "/api/scans", "k", Some(&quick));
    assert_eq!(status, 202, "a new scan starts after the restart: {v}");
    let pid = server.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let _ = server.0.wait();
    let mut err = String::new();
    server.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    for id in &running {
        assert!(err.contains(&format!("scan {id} was left running")), "{err}");
    }
}

#[test]
fn schemathesis_finds_nothing_against_the_openapi_document() {
    let st = std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/rustmap-lab/venv".into()) + "/bin/st";
    if !need(is_root(), "schemathesis runs the server in a network namespace: needs root")
        || !need(Path::new(&st).exists(), &format!("{st} not installed (bash tests/lab/install-deps.sh)"))
    {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/api/schemathesis.sh");
    let o = Command::new("bash").arg(script).args([bin(), "25"]).env("ST", &st).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "schemathesis failed:\n{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("passed"), "{out}");
}

#[test]
fn a_websocket_client_sees_a_lab_scans_open_ports_before_it_ends() {
    let Some(_lab) = lab() else { return };
    let py = std::env::var("LAB_VENV").unwrap_or_else(|_| "/opt/rustmap-lab/venv".into()) + "/bin/python";
    assert!(Path::new(&py).exists(), "{py}: the lab's virtualenv (bash tests/lab/install-deps.sh)");
    let home = tempfile::tempdir().unwrap();
    let listen = "127.0.0.1:18190";
    let child = Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), bin(), "--api", "--listen", listen, "--api-key", "lab-key"])
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    // A SYN scan of three lab hosts' first 1000 ports, each host's open ports in the ground truth.
    let body = json!({"targets": ["198.18.0.10", "198.18.0.11", "198.18.0.14"], "scan_type": "S", "ports": "1-1000",
                      "config": {"names": {"reverse": "never"}}});
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/api/ws_client.py");
    let client = client.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let o = in_lab(
            &py,
            &[client, "--listen", listen, "--key", "lab-key", "--body", &body.to_string(), "--timeout", "90"],
        );
        // The server may still be starting: retry a refused connection, briefly.
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(out.status.success(), "ws_client: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = v["kinds"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(kinds.first(), Some(&"scan_started"), "{v}");
    assert_eq!(kinds.last(), Some(&"scan_finished"), "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    let mut seen: Vec<(String, u16)> = v["open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap() as u16))
        .collect();
    seen.sort();
    let mut want = Vec::new();
    for (name, addr) in [("h10", "198.18.0.10"), ("h11", "198.18.0.11"), ("h14", "198.18.0.14")] {
        want.extend(truth_open_tcp(name).into_iter().filter(|p| *p <= 1000).map(|p| (addr.to_string(), p)));
    }
    want.sort();
    assert_eq!(seen, want, "the stream's open ports are the lab's");
    assert!(v["open_while_running"].as_u64().unwrap() >= 1, "port events arrived before the scan finished: {v}");
}
