//! `--resume`, `--db-sync` and signals, on loopback: a scan stopped by SIGINT or SIGTERM is
//! marked `interrupted` with the command that resumes it; resuming it ends with the result an
//! uninterrupted scan gives, in the same stored scan; what cannot be resumed is refused with the
//! id named. Also: several processes writing one database at once. (Kill -9 at random moments:
//! `lab.rs`, `resume_after_kill_9_*`.)

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn home() -> PathBuf {
    let d = std::env::temp_dir().join("rustmap-cli-tests-home");
    let _ = std::fs::create_dir_all(&d);
    d
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rustmap"));
    c.args(args).env("HOME", home()).stdin(Stdio::null());
    c
}

fn rustmap(args: &[&str]) -> Output {
    cmd(args).output().expect("run rustmap")
}

fn spawn(args: &[&str]) -> Child {
    cmd(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("run rustmap")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

fn history(db: &str) -> Vec<Value> {
    let o = rustmap(&["--history", "--db", db, "--oJ", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice::<Value>(&o.stdout).unwrap().as_array().unwrap().clone()
}

/// A JSON document's hosts as comparable text: address, status, each listed port's state, and
/// the folded counts (times and the scan's own id left out).
fn hosts_of(file: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let mut hosts: Vec<String> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let ports: Vec<String> =
                h["ports"].as_array().unwrap().iter().map(|p| format!("{}/{}", p["port"], p["state"])).collect();
            let extra: Vec<String> =
                h["extraports"].as_array().unwrap().iter().map(|e| format!("{}x{}", e["state"], e["count"])).collect();
            format!("{} {} {:?} {:?}", h["addr"], h["status"], ports, extra)
        })
        .collect();
    hosts.sort();
    hosts
}

fn integrity_and_rows(db: &str) -> (String, i64, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let hosts: i64 = c.query_row("SELECT count(*) FROM hosts", [], |r| r.get(0)).unwrap();
    let distinct: i64 =
        c.query_row("SELECT count(*) FROM (SELECT DISTINCT scan, addr FROM hosts)", [], |r| r.get(0)).unwrap();
    (ok, hosts, distinct)
}

#[test]
fn sigint_marks_the_scan_interrupted_and_resume_ends_as_an_uninterrupted_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let db = db.to_str().unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let ports = format!("1-900,{}", open.local_addr().unwrap().port());
    // One host at a time, about half a second each: a SIGINT after 1.3 s finds some finished.
    let scan = |out: &Path| {
        vec![
            "-sT".to_string(),
            "-Pn".into(),
            "-n".into(),
            "-p".into(),
            ports.clone(),
            "--max-rate".into(),
            "2000".into(),
            "--max-hostgroup".into(),
            "1".into(),
            "--db".into(),
            db.into(),
            "--oJ".into(),
            out.to_str().unwrap().into(),
            "127.0.0.1-6".into(),
        ]
    };
    let reference = dir.path().join("ref.json");
    let args = scan(&reference);
    let o = rustmap(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    let resumed = dir.path().join("resumed.json");
    let args = scan(&resumed);
    let child = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_millis(1300));
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    let h = history(db);
    let id = h[0]["id"].as_str().unwrap().to_string();
    assert_eq!(h[0]["status"], "interrupted");
    assert!(err.contains(&format!("scan {id} interrupted; resume it with: rustmap --resume {id} --db {db}")), "{err}");

    // Resumed by a unique prefix of its id.
    let o = rustmap(&["--resume", &id[..20], "--db", db, "--no-progress"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let done: u64 = err
        .split("finished host")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!((1..6).contains(&done), "hosts finished before SIGINT are not scanned again: {err}");
    assert_eq!(hosts_of(&resumed), hosts_of(&reference));
    assert_eq!(hosts_of(&reference).len(), 6);
    let h = history(db);
    assert_eq!(h.len(), 2, "resumed in place, not a new scan");
    assert_eq!((h[0]["id"].as_str(), h[0]["status"].as_str()), (Some(id.as_str()), Some("completed")));
    assert_eq!(h[0]["open_ports"], h[1]["open_ports"]);
    assert_eq!(h[0]["hosts_up"], 6);
    let (ok, rows, distinct) = integrity_and_rows(db);
    assert_eq!((ok.as_str(), rows), ("ok", distinct));
    assert_eq!(rows, 12);
    // Done: resuming again is refused, naming the scan.
    let o = rustmap(&["--resume", &id, "--db", db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&format!("scan {id} is completed")), "{}", stderr(&o));
}

#[test]
fn sigterm_interrupts_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    let child = spawn(&["-sT", "-Pn", "-n", "-p", "1-4000", "--max-rate", "1000", "--db", db, "127.0.0.1"]);
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, "-TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    let h = history(db);
    assert_eq!(h[0]["status"], "interrupted");
    assert!(stderr(&o).contains("resume it with: rustmap --resume"), "{}", stderr(&o));
    // Nothing was finished: the one host is scanned whole on resume.
    let o = rustmap(&["--resume", h[0]["id"].as_str().unwrap(), "--db", db]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(": 0 finished hosts"), "{}", stderr(&o));
    assert_eq!(history(db)[0]["status"], "completed");
}

#[test]
fn what_cannot_be_resumed_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let db = db.to_str().unwrap();
    let o = rustmap(&["--resume", "01NOSUCH", "--db", db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("01NOSUCH"), "{}", stderr(&o));
    let o = rustmap(&["-sT", "-n", "-p", "1", "--db", db, "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = history(db)[0]["id"].as_str().unwrap().to_string();
    for (args, needle) in [
        (vec!["--resume", "01NOSUCH", "--db", db], "no stored scan matches \"01NOSUCH\"".to_string()),
        (vec!["--resume", &id, "--db", db], format!("scan {id} is completed: there is nothing to resume")),
        (vec!["--resume", &id, "--db", db, "-p", "80"], "only --db, --db-sync and --no-progress".into()),
        (vec!["--resume", &id, "--db", db, "127.0.0.1"], "(not targets)".into()),
        (vec!["--resume", &id, "--no-db"], "(not --no-db)".into()),
        (vec!["--db-sync", "sometimes", "127.0.0.1"], "invalid value 'sometimes' for '--db-sync".into()),
    ] {
        let o = rustmap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&needle), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}: nothing scanned");
    }
    // A scan that read its targets from standard input cannot read them again.
    let mut child = cmd(&["-sT", "-n", "-p", "1", "--db", db, "-iL", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"127.0.0.1\n").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let stdin_id = history(db)[0]["id"].as_str().unwrap().to_string();
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute("UPDATE scans SET status = 'interrupted' WHERE id = ?1", [&stdin_id]).unwrap();
    let o = rustmap(&["--resume", &stdin_id, "--db", db]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
    assert_eq!(history(db)[0]["status"], "interrupted", "a refused resume changes nothing");
}

#[test]
fn several_processes_write_one_database_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("many.db");
    let db = db.to_str().unwrap();
    let open: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports: Vec<String> = open.iter().map(|l| l.local_addr().unwrap().port().to_string()).collect();
    let ports = format!("1-300,{}", ports.join(","));
    let children: Vec<Child> = (0..4)
        .map(|i| {
            let sync = ["off", "normal", "full", "normal"][i];
            spawn(&["-sT", "-Pn", "-n", "-p", &ports, "--db", db, "--db-sync", sync, "127.0.0.1-3"])
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains("not saved"), "{}", stderr(&o));
    }
    let h = history(db);
    assert_eq!(h.len(), 4);
    assert!(h.iter().all(|s| s["status"] == "completed" && s["open_ports"] == 3 && s["hosts_up"] == 3), "{h:?}");
    let (ok, rows, distinct) = integrity_and_rows(db);
    assert_eq!((ok.as_str(), rows, distinct), ("ok", 12, 12));
}

#[test]
fn predict_ports_scans_past_open_ports_first_and_says_how_soon_one_came() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let db = db.to_str().unwrap();
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let ports = format!("1-2000,{port}");
    // No history yet: said so, and the scan runs as usual.
    let o = rustmap(&["-sT", "-n", "-p", &ports, "--db", db, "--predict-ports", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no scan history yet"), "{}", stderr(&o));
    // Sequential order would reach the open port last; predicted, it is probed first.
    let out = dir.path().join("e.jsonl");
    let o = rustmap(&[
        "-sT",
        "-n",
        "-r",
        "-p",
        &ports,
        "--db",
        db,
        "--predict-ports",
        "--oJ-lines",
        out.to_str().unwrap(),
        "127.0.0.1",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("scanning first 1 port(s) seen open on these hosts"), "{err}");
    assert!(err.contains(&format!("first open port {port}/tcp on 127.0.0.1 after ")), "{err}");
    let events: Vec<Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Probes go out in the predicted order; answers come back as they come, a few at a time.
    let decided: Vec<&Value> = events.iter().filter(|e| e["event"] == "port_found").collect();
    let at = decided.iter().position(|e| e["port"]["port"] == port).unwrap();
    assert!(at < 50, "the predicted port was decided {at}th of {} (-r alone: last)", decided.len());
    let started = events.iter().find(|e| e["event"] == "scan_started").unwrap();
    assert_eq!(started["config"]["ports"]["first"], format!("T:{port}"), "stored with the scan, for --resume");
    assert!(events.iter().any(|e| e["event"] == "first_open_port" && e["port"] == port));
    let o = rustmap(&["-sT", "-p", "1", "--no-db", "--predict-ports", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn fast_discovery_flags_are_checked_and_work_without_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let db = db.to_str().unwrap();
    let o =
        rustmap(&["-sT", "-p", "1", "--db", db, "--fast-discovery", "--fast-discovery-max-age", "soon", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"soon\"") && stderr(&o).contains("--fast-discovery-max-age"), "{}", stderr(&o));
    let o = rustmap(&["-sT", "-p", "1", "--db", db, "--fast-discovery-max-age", "1h", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "the age alone means nothing: {}", stderr(&o));
    let o = rustmap(&["-sT", "-p", "1", "--no-db", "--fast-discovery", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = rustmap(&["-sT", "-n", "-p", "1", "--db", db, "--fast-discovery", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no scan history yet"), "{}", stderr(&o));
    // Now 127.0.0.1 is in the history: it is scanned without discovery, and says why.
    let o = rustmap(&["-sT", "-n", "-p", "1", "--db", db, "--fast-discovery", "--reason", "-oJ", "-", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 host(s) seen up"), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hosts"][0]["reason"], "seen-up", "{v}");
}
