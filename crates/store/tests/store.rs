//! The store on real SQLite files on disk: writing a scan through the sink, history, diffs,
//! two writers at once, and the files it must refuse (not SQLite, newer schema) left untouched.

use rustmap_model::*;
use rustmap_store::{diff, Store, StoreError, StoreHealth, StoreSink};
use std::sync::{Arc, Mutex};

fn host(addr: &str, open: &[(u16, &str)]) -> HostResult {
    let mut h = HostResult::new(addr.parse().unwrap(), HostStatus::Up, Reason::SynAck);
    h.ports = open
        .iter()
        .map(|(p, v)| {
            let mut r = PortResult::new(Protocol::Tcp, *p, PortState::Open, Reason::SynAck, 64);
            r.service = Some(ServiceInfo { name: "http".into(), product: Some((*v).into()), ..Default::default() });
            r
        })
        .collect();
    h
}

fn scan(
    store: Store,
    id: &str,
    targets: &str,
    hosts: Vec<HostResult>,
    outcome: ScanOutcome,
) -> Arc<Mutex<StoreHealth>> {
    let health = Arc::new(Mutex::new(StoreHealth::default()));
    let mut sink = StoreSink::new(store, Arc::clone(&health));
    let mut config = ScanConfig::new([targets]);
    config.args = format!("rustmap {targets}");
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: id.into(),
        config: Some(Box::new(config)),
        version: "0.1.0".into(),
        args: format!("rustmap {targets}"),
        start_unix: 1_795_000_000 + id.len() as i64,
        scans: vec![],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
    };
    sink.event(&ScanEvent::ScanStarted(info)).unwrap();
    let n = hosts.len() as u64;
    for h in hosts {
        sink.event(&ScanEvent::HostDone(h)).unwrap();
    }
    sink.event(&ScanEvent::ScanFinished(ScanStats {
        end_unix: 1_795_000_010,
        elapsed_secs: 10.0,
        hosts_up: n,
        hosts_down: 0,
        hosts_total: n,
        completed: outcome == ScanOutcome::Completed,
        outcome,
    }))
    .unwrap();
    sink.finish().unwrap();
    health
}

#[test]
fn scans_are_stored_listed_and_diffed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/rustmap.db");
    let hosts_a = vec![host("198.18.0.10", &[(22, "OpenSSH 9.2"), (80, "nginx")]), host("198.18.0.11", &[(443, "x")])];
    let hosts_b =
        vec![host("198.18.0.10", &[(22, "OpenSSH 9.3"), (8080, "nginx")]), host("198.18.0.12", &[(53, "dns")])];
    let h = scan(Store::open(&db).unwrap(), "01A", "198.18.0.0/24", hosts_a, ScanOutcome::Completed);
    assert_eq!(h.lock().unwrap().error, None);
    scan(Store::open(&db).unwrap(), "01B2", "198.18.0.0/24", hosts_b, ScanOutcome::Completed);
    scan(Store::open(&db).unwrap(), "01C33", "10.0.0.1", vec![], ScanOutcome::Cancelled);
    let store = Store::open_read_only(&db).unwrap();
    let hist = store.history(10).unwrap();
    assert_eq!(hist.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["01C33", "01B2", "01A"], "newest first");
    assert_eq!(hist[2].status, "completed");
    assert_eq!(hist[2].open_ports, 3);
    assert_eq!(hist[0].status, "interrupted");
    assert_eq!(store.resolve("01B").unwrap(), "01B2");
    assert!(matches!(store.resolve("01"), Err(StoreError::Ambiguous(_))));
    assert!(matches!(store.resolve("zz"), Err(StoreError::UnknownScan(_))));
    assert_eq!(store.last_completed("198.18.0.0/24", Some("01B2")).unwrap().as_deref(), Some("01A"));
    let d = diff(&store, "01A", "01B2").unwrap();
    assert_eq!(d.hosts_new.len(), 1);
    assert_eq!(d.hosts_new[0].0, "198.18.0.12");
    assert_eq!(d.hosts_gone, ["198.18.0.11"]);
    assert_eq!(d.changed.len(), 1);
    let ports: Vec<u16> = d.changed[0].ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [22, 80, 8080], "22 changed version, 80 closed, 8080 opened");
    let text = d.to_text();
    assert!(text.contains("+198.18.0.12: new host: 53/tcp http dns"), "{text}");
    assert!(text.contains("22/tcp: service http OpenSSH 9.2 -> http OpenSSH 9.3"), "{text}");
    assert!(text.contains("80/tcp: open -> not listed"), "{text}");
    assert!(diff(&store, "01A", "01A").unwrap().is_empty());
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["hosts_gone"][0], "198.18.0.11");
    // The stored hosts come back whole.
    assert_eq!(
        store.hosts("01A").unwrap()[0].ports[0].service.as_ref().unwrap().product.as_deref(),
        Some("OpenSSH 9.2")
    );
    // The database is sound, with the pages of a new database.
    let ok: String = rusqlite_check(&db);
    assert_eq!(ok, "ok");
    let page: i64 = rusqlite_conn(&db).query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page, 16384);
}

fn rusqlite_check(db: &std::path::Path) -> String {
    rusqlite_conn(db).query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[test]
fn two_writers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    Store::open(&db).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    let hosts = (0..200).map(|n| host(&format!("10.{t}.{i}.{}", n % 250), &[(80, "x")])).collect();
                    let h = scan(Store::open(&db).unwrap(), &format!("T{t}S{i}"), "x", hosts, ScanOutcome::Completed);
                    assert_eq!(h.lock().unwrap().error, None, "writer {t} scan {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store = Store::open_read_only(&db).unwrap();
    assert_eq!(store.history(100).unwrap().len(), 20);
    assert!(store.history(100).unwrap().iter().all(|s| s.open_ports == 200 && s.status == "completed"));
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&db, &text).unwrap();
    assert!(matches!(Store::open(&db), Err(StoreError::NotADatabase(_))));
    assert_eq!(std::fs::read_to_string(&db).unwrap(), text);
    assert!(!dir.path().join("notes.db-wal").exists());
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    Store::open(&db).unwrap();
    {
        let c = rusqlite_conn(&db);
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let e = Store::open(&db).err().expect("refused");
    assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("newer"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

fn rusqlite_conn(p: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p).unwrap()
}

#[test]
fn a_read_only_database_does_not_fail_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ro.db");
    Store::open(&db).unwrap();
    // A connection that can only read: every write fails, as on a read-only file or a full disk.
    let store = Store::open_read_only(&db).unwrap();
    let h = scan(store, "01RO", "x", vec![host("10.0.0.1", &[(80, "x")])], ScanOutcome::Completed);
    let h = h.lock().unwrap();
    assert!(
        h.error
            .as_deref()
            .is_some_and(|e| e.contains("readonly") || e.contains("read-only") || e.contains("read only")),
        "{h:?}"
    );
    assert!(Store::open_read_only(&db).unwrap().history(10).unwrap().is_empty());
}

#[test]
fn scans_are_read_listed_by_status_and_deleted_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rustmap.db");
    scan(
        Store::open(&db).unwrap(),
        "01A",
        "198.18.0.0/24",
        vec![host("198.18.0.10", &[(22, "x")])],
        ScanOutcome::Completed,
    );
    scan(
        Store::open(&db).unwrap(),
        "01AB",
        "198.18.0.0/24",
        vec![host("198.18.0.11", &[(80, "y")])],
        ScanOutcome::Cancelled,
    );
    let mut store = Store::open(&db).unwrap();
    let a = store.scan("01A").unwrap();
    assert_eq!((a.status.as_str(), a.hosts_up, a.open_ports), ("completed", 1, 1));
    assert_eq!(a.config.as_ref().map(|c| c.targets.clone()), Some(vec!["198.18.0.0/24".to_string()]));
    // Whole ids only: "01" is a prefix of both, and names neither.
    assert!(matches!(store.scan("01"), Err(StoreError::UnknownScan(_))));
    let ids = |s: &Store, st| s.list(st, 10).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&store, None), ["01AB", "01A"]);
    assert_eq!(ids(&store, Some("interrupted")), ["01AB"]);
    assert!(ids(&store, Some("running")).is_empty());
    assert!(matches!(store.delete("01"), Err(StoreError::UnknownScan(_))), "a prefix deletes nothing");
    store.delete("01A").unwrap();
    assert_eq!(ids(&store, None), ["01AB"]);
    assert!(store.hosts("01A").unwrap().is_empty(), "its hosts went with it");
    assert_eq!(store.hosts("01AB").unwrap().len(), 1, "the other scan's hosts stay");
    let ports: i64 =
        rusqlite::Connection::open(&db).unwrap().query_row("SELECT count(*) FROM ports", [], |r| r.get(0)).unwrap();
    assert_eq!(ports, 1, "only the remaining scan's port rows are left");
}

#[test]
fn scans_of_killed_processes_are_marked_interrupted_and_live_ones_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rustmap.db");
    scan(
        Store::open(&db).unwrap(),
        "01DONE",
        "198.18.0.10",
        vec![host("198.18.0.10", &[(22, "x")])],
        ScanOutcome::Completed,
    );
    // A scan left `running` by a process that is gone (a pid that cannot exist)...
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "INSERT INTO scans (id, started, status, args, targets, pid, owner) VALUES ('01DEAD', 1, 'running', '', 'x', ?1, 'x')",
        rusqlite::params![i64::from(u32::MAX)],
    )
    .unwrap();
    // ...and one this (live) process is running: started through the sink, not finished.
    let health = Arc::new(Mutex::new(StoreHealth::default()));
    let mut live = StoreSink::new(Store::open(&db).unwrap(), Arc::clone(&health));
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: "01LIVE".into(),
        config: Some(Box::new(ScanConfig::new(["198.18.0.11"]))),
        version: "0.1.0".into(),
        args: String::new(),
        start_unix: 1_795_000_100,
        scans: vec![],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
    };
    live.event(&ScanEvent::ScanStarted(info)).unwrap();
    live.tick().unwrap();
    let mut store = Store::open(&db).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.scan("01LIVE").is_err() {
        assert!(std::time::Instant::now() < deadline, "the live scan's row was never written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let marked = store.mark_orphans().unwrap();
    assert_eq!(marked, ["01DEAD"]);
    assert_eq!(store.scan("01LIVE").unwrap().status, "running", "a live process's scan is left alone");
    assert_eq!(store.scan("01DEAD").unwrap().status, "interrupted");
    assert_eq!(store.scan("01DONE").unwrap().status, "completed", "ended scans untouched");
    assert!(store.mark_orphans().unwrap().iter().all(|id| id != "01DEAD"), "marked once");
}
