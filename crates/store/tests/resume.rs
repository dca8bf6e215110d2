//! Checkpoints on real SQLite files: what a stopped scan leaves to resume from, claiming it,
//! reading its finished hosts back, the resumed scan written into the same row without
//! duplicates, the schema-1 and schema-2 databases previous builds wrote read as they are and
//! migrated in place, and damaged files refused without a panic.

use rustmap_model::*;
use rustmap_store::{diff, FinishedHosts, Store, StoreError, StoreHealth, StoreSink, SCHEMA_VERSION};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn up(addr: &str, open: &[u16]) -> HostResult {
    let mut h = HostResult::new(ip(addr), HostStatus::Up, Reason::SynAck);
    h.ports = open.iter().map(|p| PortResult::new(Protocol::Tcp, *p, PortState::Open, Reason::SynAck, 64)).collect();
    h
}

fn down(addr: &str) -> HostResult {
    HostResult::new(ip(addr), HostStatus::Down, Reason::NoResponse)
}

fn started(id: &str) -> ScanEvent {
    let mut config = ScanConfig::new(["198.18.0.0/24"]);
    config.ports.spec = Some("22,80".into());
    ScanEvent::ScanStarted(ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id: id.into(),
        config: Some(Box::new(config)),
        version: "0.1.0".into(),
        args: "rustmap -p 22,80 198.18.0.0/24".into(),
        start_unix: 1_795_000_000,
        scans: vec![],
        verbosity: 0,
        debugging: 0,
        service_scan: false,
    })
}

fn finished(outcome: ScanOutcome, up: u64, down: u64) -> ScanEvent {
    ScanEvent::ScanFinished(ScanStats {
        end_unix: 1_795_000_010,
        elapsed_secs: 10.0,
        hosts_up: up,
        hosts_down: down,
        hosts_total: up + down,
        completed: outcome == ScanOutcome::Completed,
        outcome,
    })
}

/// Feed `events` to a store sink on `db`; `finish` closes the sink as a scan's end does (without
/// it, the sink is dropped as a killed process's would never be: the row stays `running`).
fn feed(db: &Path, done: Option<AddrSet>, events: &[ScanEvent]) -> Arc<Mutex<StoreHealth>> {
    let health = Arc::new(Mutex::new(StoreHealth::default()));
    let mut sink = StoreSink::new(Store::open(db).unwrap(), Arc::clone(&health)).skipping(done.unwrap_or_default());
    for ev in events {
        sink.event(ev).unwrap();
    }
    sink.finish().unwrap();
    health
}

fn conn(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db).unwrap()
}

fn count(db: &Path, sql: &str) -> i64 {
    conn(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

fn integrity(db: &Path) -> String {
    conn(db).query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_stopped_scan_resumes_into_the_same_row_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    // The first run: two up hosts, three down (one IPv6), then a cancel cuts one host short.
    let first = [
        started("01RESUME"),
        ScanEvent::HostDone(up("198.18.0.10", &[22, 80])),
        ScanEvent::HostDone(down("198.18.0.2")),
        ScanEvent::HostDone(down("198.18.0.3")),
        ScanEvent::HostDone(down("fd00::99")),
        ScanEvent::HostDone(up("198.18.0.11", &[22])),
        ScanEvent::Stopping,
        ScanEvent::HostDone(up("198.18.0.12", &[])),
        finished(ScanOutcome::Cancelled, 3, 3),
    ];
    assert_eq!(feed(&db, None, &first).lock().unwrap().error, None);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.history(5).unwrap()[0].status, "interrupted");
    let c = store.checkpoint("01RES").unwrap();
    assert_eq!(c.scan_id, "01RESUME");
    assert_eq!(c.config.ports.spec.as_deref(), Some("22,80"));
    assert_eq!(c.done.to_string(), "198.18.0.2-198.18.0.3,198.18.0.10-198.18.0.11,fd00::99");
    assert!(!c.done.contains(ip("198.18.0.12")), "the host cut short is scanned again");

    // Its finished hosts come back: up hosts whole, down hosts with their reason.
    let back: Vec<HostResult> = FinishedHosts::open(&db, "01RESUME").unwrap().map(Result::unwrap).collect();
    assert_eq!(back.len(), 5);
    assert_eq!(back.iter().find(|h| h.addr == ip("198.18.0.10")).unwrap(), &up("198.18.0.10", &[22, 80]));
    let downs: Vec<&HostResult> = back.iter().filter(|h| h.status == HostStatus::Down).collect();
    assert_eq!(downs.len(), 3);
    assert!(downs.iter().all(|h| h.reason == Reason::NoResponse));

    // The resumed run: the same id, the finished hosts replayed (skipped by the sink), the rest.
    let mut again = vec![started("01RESUME")];
    again.extend(back.iter().cloned().map(ScanEvent::HostDone));
    again.push(ScanEvent::HostDone(up("198.18.0.12", &[443])));
    again.push(ScanEvent::HostDone(down("198.18.0.4")));
    again.push(finished(ScanOutcome::Completed, 3, 4));
    assert_eq!(feed(&db, Some(c.done.clone()), &again).lock().unwrap().error, None);

    let store = Store::open_read_only(&db).unwrap();
    let hist = store.history(5).unwrap();
    assert_eq!(hist.len(), 1, "one scan, resumed in place");
    assert_eq!((hist[0].status.as_str(), hist[0].hosts_up, hist[0].open_ports), ("completed", 3, 4));
    assert_eq!(count(&db, "SELECT resumes FROM scans"), 1);
    assert_eq!(count(&db, "SELECT count(*) FROM hosts"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM ports"), 4);
    let all: Vec<HostResult> = FinishedHosts::open(&db, "01RESUME").unwrap().map(Result::unwrap).collect();
    let mut addrs: Vec<String> = all.iter().map(|h| h.addr.to_string()).collect();
    addrs.sort();
    let before = addrs.len();
    addrs.dedup();
    assert_eq!(before, addrs.len(), "no host stored twice: {addrs:?}");
    assert_eq!(addrs.len(), 7);
    assert!(matches!(store.checkpoint("01RESUME"), Err(StoreError::Completed(id)) if id == "01RESUME"));
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn a_running_scan_is_refused_while_its_process_lives_and_resumable_once_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    // No ScanFinished: the row says running, owned by this (live) process.
    feed(&db, None, &[started("01LIVE"), ScanEvent::HostDone(up("198.18.0.10", &[22]))]);
    let mut store = Store::open(&db).unwrap();
    let e = store.claim("01LIVE").unwrap_err();
    assert!(
        matches!(e, StoreError::StillRunning { ref id, pid } if id == "01LIVE" && pid == i64::from(std::process::id()))
    );
    assert!(e.to_string().contains("01LIVE") && e.to_string().contains("still running"), "{e}");
    // The process is gone (as after kill -9): the owner recorded no longer matches a live one.
    conn(&db).execute("UPDATE scans SET owner = 'gone/1'", []).unwrap();
    let c = store.claim("01LIVE").unwrap();
    assert_eq!(c.done.len(), 1);
    // Claimed by this process: a second resume of it is refused while this one runs.
    assert!(matches!(store.claim("01LIVE"), Err(StoreError::StillRunning { .. })));
    let unknown = store.claim("01NOPE").unwrap_err();
    assert!(matches!(unknown, StoreError::UnknownScan(_)) && unknown.to_string().contains("01NOPE"));
}

fn fixture_copy(dir: &Path) -> PathBuf {
    fixture("schema-v1.db", dir)
}

fn fixture(name: &str, dir: &Path) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let db = dir.join(name);
    std::fs::copy(src, &db).unwrap();
    db
}

/// `tests/fixtures/schema-v1.db` was written by the schema-1 store (commit 8602b4f) through its
/// sink: a completed and an interrupted scan of 198.18.0.0/24, with up hosts, ports and one down
/// host each (counted only, as schema 1 did).
#[test]
fn a_schema_1_database_is_migrated_and_keeps_its_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture_copy(dir.path());
    assert_eq!(count(&db, "PRAGMA user_version"), 1);
    // Reading does not migrate.
    let ro = Store::open_read_only(&db).unwrap();
    let before = ro.history(10).unwrap();
    let hosts_before = ro.hosts("01KFIXTUREV1COMPLETED00001").unwrap();
    drop(ro);
    assert_eq!(count(&db, "PRAGMA user_version"), 1);
    assert_eq!(before.len(), 2);

    let mut store = Store::open(&db).unwrap();
    assert_eq!(count(&db, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(store.history(10).unwrap(), before);
    assert_eq!(store.hosts("01KFIXTUREV1COMPLETED00001").unwrap(), hosts_before);
    assert_eq!(count(&db, "SELECT count(*) FROM ports"), 4);
    assert_eq!(count(&db, "SELECT count(*) FROM scans WHERE resumes = 0 AND pid IS NULL"), 2);
    // The interrupted scan of the old build can be resumed: its up hosts are its done set.
    let c = store.claim("01KFIXTUREV1INTER").unwrap();
    assert_eq!(c.done.to_string(), "198.18.0.10");
    assert_eq!(c.config.scan_types, vec![ScanType::Syn]);
    assert!(matches!(store.claim("01KFIXTUREV1COMP"), Err(StoreError::Completed(_))));
    drop(store);
    // Opening again does nothing more; two openers at once migrate once.
    let copy = fixture_copy(&dir.path().join("b").tap_mkdir());
    let t: Vec<_> = (0..3)
        .map(|_| {
            let copy = copy.clone();
            std::thread::spawn(move || Store::open(&copy).map(|_| ()))
        })
        .collect();
    for t in t {
        t.join().unwrap().unwrap();
    }
    assert_eq!(count(&copy, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(integrity(&db), "ok");
    assert_eq!(integrity(&copy), "ok");
}

/// Everything the readers get out of a database: history, each scan's hosts, checkpoints and
/// finished hosts, what past scans know, and a diff.
#[derive(Debug, PartialEq)]
struct Readings {
    history: Vec<rustmap_store::ScanSummary>,
    hosts: Vec<Vec<HostResult>>,
    checkpoints: Vec<Result<String, String>>,
    finished: Vec<Vec<HostResult>>,
    past: Vec<rustmap_store::PastHost>,
    diff: rustmap_store::ScanDiff,
}

fn readings(store: &Store, db: &Path) -> Readings {
    let history = store.history(10).unwrap();
    let ids: Vec<&str> = history.iter().map(|s| s.id.as_str()).collect();
    Readings {
        hosts: ids.iter().map(|id| store.hosts(id).unwrap()).collect(),
        checkpoints: ids
            .iter()
            .map(|id| {
                store.checkpoint(id).map(|c| format!("{} {:?} {}", c.scan_id, c.config.ports.spec, c.done)).map_err(
                    |e| match e {
                        StoreError::Completed(_) => "completed".into(),
                        e => e.to_string(),
                    },
                )
            })
            .collect(),
        finished: ids.iter().map(|id| FinishedHosts::open(db, id).unwrap().map(Result::unwrap).collect()).collect(),
        past: store.past_hosts(10).unwrap(),
        diff: diff(store, "01KFIXTUREV2COMPLETED00001", "01KFIXTUREV2RESUMED0000001").unwrap(),
        history,
    }
}

/// `tests/fixtures/schema-v2.db` was written by the schema-2 store (commit 1dbfcf5) through its
/// sink: a completed scan (IPv4 and IPv6 hosts, a name, a MAC, a round trip, services, closed and
/// open ports, down hosts of both families), an interrupted one, one killed while running (its
/// process gone: resumable, its open ports not counted yet, as schema 2 counted them at the end)
/// and one stopped then resumed to its end.
#[test]
fn a_schema_2_database_is_read_as_it_is_then_migrated_to_3_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture("schema-v2.db", dir.path());
    assert_eq!(count(&db, "PRAGMA user_version"), 2);
    let file = std::fs::read(&db).unwrap();
    // Read only, the old schema reads as the current one, and the file is not touched.
    let before = readings(&Store::open_read_only(&db).unwrap(), &db);
    assert_eq!(std::fs::read(&db).unwrap(), file, "reading changed the file");
    assert_eq!(before.history.len(), 4);
    assert_eq!(before.hosts.iter().map(Vec::len).sum::<usize>(), 7);
    assert_eq!(before.finished.iter().map(Vec::len).sum::<usize>(), 7 + 6, "up hosts and down hosts");
    let killed = before.history.iter().position(|s| s.id == "01KFIXTUREV2KILLED00000001").unwrap();
    assert_eq!(
        before.checkpoints[killed].as_deref(),
        Ok("01KFIXTUREV2KILLED00000001 Some(\"22,80,443\") 198.18.0.5,198.18.0.10")
    );
    assert_eq!(before.past.iter().find(|h| h.addr == ip("198.18.0.10")).unwrap().srtt_us, Some(420));
    assert!(!before.diff.is_empty());

    // Migrated: every row kept, every reader reads the same.
    let mut store = Store::open(&db).unwrap();
    assert_eq!(count(&db, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(readings(&store, &db), before);
    let rows = |t: &str| count(&db, &format!("SELECT count(*) FROM {t}"));
    assert_eq!((rows("scans"), rows("hosts"), rows("ports"), rows("down_hosts")), (4, 7, 10, 4));
    assert_eq!(integrity(&db), "ok");
    assert_eq!(count(&db, "PRAGMA page_size"), 4096, "an existing database keeps its pages");
    let dangling: i64 = conn(&db).query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
    assert_eq!(dangling, 0, "every row names a stored scan (and every port its host)");
    let ports_sql: String =
        conn(&db).query_row("SELECT sql FROM sqlite_master WHERE name = 'ports'", [], |r| r.get(0)).unwrap();
    assert!(ports_sql.contains("WITHOUT ROWID") && !ports_sql.contains("scan_id"), "{ports_sql}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM scans WHERE seq = (SELECT count(*) FROM scans s WHERE s.started <= scans.started)"
        ),
        4,
        "scans numbered in order"
    );

    // The killed scan resumes: its open ports counted from its rows, the resumed run's added.
    let c = store.claim("01KFIXTUREV2KILLED").unwrap();
    assert_eq!(c.done.to_string(), "198.18.0.5,198.18.0.10");
    assert_eq!(count(&db, "SELECT open_ports FROM scans WHERE id = '01KFIXTUREV2KILLED00000001'"), 2);
    drop(store);
    let mut again = vec![started("01KFIXTUREV2KILLED00000001")];
    again.extend(FinishedHosts::open(&db, &c.scan_id).unwrap().map(|h| ScanEvent::HostDone(h.unwrap())));
    again.push(ScanEvent::HostDone(up("198.18.0.11", &[443])));
    again.push(finished(ScanOutcome::Completed, 2, 1));
    assert_eq!(feed(&db, Some(c.done), &again).lock().unwrap().error, None);
    let s = Store::open_read_only(&db).unwrap().history(10).unwrap();
    let s = s.iter().find(|s| s.id == "01KFIXTUREV2KILLED00000001").unwrap();
    assert_eq!((s.status.as_str(), s.hosts_up, s.open_ports), ("completed", 2, 3));
    assert_eq!(integrity(&db), "ok");

    // Two openers at once migrate once.
    let copy = fixture("schema-v2.db", &dir.path().join("b").tap_mkdir());
    let t: Vec<_> = (0..3)
        .map(|_| {
            let copy = copy.clone();
            std::thread::spawn(move || Store::open(&copy).map(|_| ()))
        })
        .collect();
    for t in t {
        t.join().unwrap().unwrap();
    }
    assert_eq!(count(&copy, "PRAGMA user_version"), SCHEMA_VERSION);
    assert_eq!(readings(&Store::open(&copy).unwrap(), &copy), before);
}

/// The shape of a database's schema: each table's columns (name, type, not null, default, key),
/// foreign keys, indexes (and their columns) and whether it is WITHOUT ROWID.
fn shape(db: &Path) -> Vec<String> {
    let c = conn(db);
    let rows = |sql: &str| -> Vec<String> {
        let mut st = c.prepare(sql).unwrap();
        let n = st.column_count();
        let row =
            |r: &rusqlite::Row| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<Result<Vec<_>, _>>();
        st.query_map([], |r| Ok(format!("{:?}", row(r)?))).unwrap().map(Result::unwrap).collect()
    };
    let mut st = c
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let mut out = Vec::new();
    for t in tables {
        out.push(format!(
            "table {t} {}",
            rows(&format!("SELECT type, wr, ncol FROM pragma_table_list WHERE name = '{t}'")).join(" ")
        ));
        out.extend(rows(&format!("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo('{t}')")));
        out.extend(rows(&format!("SELECT \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list('{t}')")));
        out.extend(rows(&format!("SELECT name, \"unique\", origin FROM pragma_index_list('{t}') ORDER BY name")));
    }
    out
}

#[test]
fn a_new_database_has_the_schema_a_migrated_one_has() {
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    Store::open(&new).unwrap();
    let old = fixture("schema-v2.db", dir.path());
    Store::open(&old).unwrap();
    let v1 = fixture_copy(dir.path());
    Store::open(&v1).unwrap();
    assert_eq!(count(&new, "PRAGMA user_version"), SCHEMA_VERSION);
    let s = shape(&new);
    assert!(s.len() > 10, "{s:#?}");
    assert_eq!(shape(&old), s);
    assert_eq!(shape(&v1), s);
}

/// Rows a migration could not carry over (here a host naming no stored scan, which schema 2's
/// foreign keys forbade but an outside tool could write) stop it: the file stays at schema 2,
/// every row where it was.
#[test]
fn a_migration_that_would_lose_rows_leaves_the_database_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture("schema-v2.db", dir.path());
    // As the sqlite3 shell writes by default: without enforcing foreign keys.
    conn(&db)
        .execute_batch(
            "PRAGMA foreign_keys=OFF;
             INSERT INTO hosts SELECT 'NO-SUCH-SCAN', addr, status, reason, hostnames, mac, result FROM hosts LIMIT 1;",
        )
        .unwrap();
    let before = readings(&Store::open_read_only(&db).unwrap(), &db);
    let e = Store::open(&db).err().expect("refused");
    assert!(matches!(e, StoreError::Migration { to: 3, .. }), "{e}");
    assert!(e.to_string().contains("1 of the 8 rows of `hosts`"), "{e}");
    assert_eq!(count(&db, "PRAGMA user_version"), 2);
    assert_eq!(count(&db, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v3'"), 0);
    assert_eq!(readings(&Store::open_read_only(&db).unwrap(), &db), before);
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn the_same_host_twice_in_a_scan_is_stored_once_as_last_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twice.db");
    let events = [
        started("01TWICE"),
        ScanEvent::HostDone(up("198.18.0.10", &[22, 80])),
        ScanEvent::HostDone(up("198.18.0.11", &[22])),
        ScanEvent::HostDone(up("198.18.0.10", &[443])),
        finished(ScanOutcome::Completed, 3, 0),
    ];
    assert_eq!(feed(&db, None, &events).lock().unwrap().error, None);
    let store = Store::open_read_only(&db).unwrap();
    let hosts = store.hosts("01TWICE").unwrap();
    assert_eq!(hosts, vec![up("198.18.0.10", &[443]), up("198.18.0.11", &[22])]);
    assert_eq!(count(&db, "SELECT count(*) FROM ports"), 2);
    assert_eq!(store.history(1).unwrap()[0].open_ports, 2);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn down_hosts_of_a_sweep_cost_a_few_bytes_each() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sweep.db");
    let mut events = vec![started("01SWEEP")];
    events.extend((0..65_536u32).map(|i| {
        let [_, _, c, d] = i.to_be_bytes();
        ScanEvent::HostDone(down(&format!("198.19.{c}.{d}")))
    }));
    events.push(finished(ScanOutcome::Completed, 0, 65_536));
    let empty = dir.path().join("empty.db");
    feed(&empty, None, &[started("01EMPTY"), finished(ScanOutcome::Completed, 0, 0)]);
    feed(&db, None, &events);
    conn(&db).execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    conn(&empty).execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let grown = std::fs::metadata(&db).unwrap().len() - std::fs::metadata(&empty).unwrap().len();
    assert!(grown < 65_536 * 8, "65,536 down hosts took {grown} bytes");
    assert!(count(&db, "SELECT count(*) FROM down_hosts") < 100);
    let c = Store::open(&db).unwrap().checkpoint("01SWEEP").unwrap_err();
    assert!(matches!(c, StoreError::Completed(_)));
    conn(&db).execute("UPDATE scans SET status = 'interrupted'", []).unwrap();
    let c = Store::open(&db).unwrap().checkpoint("01SWEEP").unwrap();
    assert_eq!(c.done.to_string(), "198.19.0.0-198.19.255.255");
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let mut events = vec![started("01DAMAGE")];
    events.extend((0..2000).map(|i| ScanEvent::HostDone(up(&format!("10.0.{}.{}", i / 250, i % 250), &[80]))));
    feed(&db, None, &events);
    conn(&db).execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;").unwrap();
    let whole = std::fs::read(&db).unwrap();
    // Cut in half: whatever SQLite says, it is an error.
    std::fs::write(&db, &whole[..whole.len() / 2]).unwrap();
    let r = Store::open(&db).and_then(|s| s.checkpoint("01DAMAGE").map(|_| ()));
    assert!(r.is_err(), "a truncated database gave a checkpoint");
    // Garbage over the pages after the first: the header still says SQLite.
    let mut bad = whole.clone();
    for b in bad.iter_mut().skip(4096).step_by(7) {
        *b = 0xA5;
    }
    std::fs::write(&db, &bad).unwrap();
    let r = Store::open(&db).and_then(|s| {
        s.checkpoint("01DAMAGE")?;
        FinishedHosts::open(&db, "01DAMAGE")?.collect::<Result<Vec<_>, _>>()?;
        Ok(())
    });
    assert!(r.is_err(), "a damaged database read back as whole");
    // A blob of down hosts damaged by hand: an error naming the scan, not a panic.
    let db2 = dir.path().join("blob.db");
    feed(&db2, None, &[started("01BLOB"), ScanEvent::HostDone(down("10.0.0.1"))]);
    conn(&db2).execute("UPDATE down_hosts SET addrs = x'0401'", []).unwrap();
    conn(&db2).execute("UPDATE scans SET status = 'interrupted'", []).unwrap();
    let e = Store::open(&db2).unwrap().checkpoint("01BLOB").unwrap_err();
    assert!(e.to_string().contains("01BLOB") && e.to_string().contains("damaged"), "{e}");
}

#[test]
fn past_hosts_gather_open_ports_names_and_round_trips_of_the_newest_scans() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let mut named = up("198.18.0.10", &[22, 80]);
    named.hostnames = vec![Hostname { name: "h10.lab.test".into(), kind: HostnameKind::User }];
    named.srtt_us = Some(420);
    let mut a = vec![started("01A"), ScanEvent::HostDone(named)];
    a.push(ScanEvent::HostDone(down("198.18.0.2")));
    a.push(finished(ScanOutcome::Completed, 1, 1));
    feed(&db, None, &a);
    let b =
        [started("01B"), ScanEvent::HostDone(up("198.18.0.10", &[22, 443])), finished(ScanOutcome::Completed, 1, 0)];
    feed(&db, None, &b);
    let store = Store::open_read_only(&db).unwrap();
    let past = store.past_hosts(10).unwrap();
    assert_eq!(past.len(), 1, "down hosts are not past up hosts");
    let h = &past[0];
    assert_eq!(h.names, Vec::<String>::new(), "names of its newest scan");
    assert_eq!(h.srtt_us, Some(420), "the newest round trip measured");
    let mut open = h.open.clone();
    open.sort();
    assert_eq!(open, vec![(Protocol::Tcp, 22, 2), (Protocol::Tcp, 80, 1), (Protocol::Tcp, 443, 1)]);
    // Only the newest scan read.
    let newest = store.past_hosts(1).unwrap();
    assert_eq!(newest[0].open.len(), 2);
}

/// Schema 4: pre- and postrule script results are kept with their scan, read back in order,
/// deleted with it; a schema-3 database reads as having none, then migrates.
#[test]
fn scan_scripts_are_stored_read_back_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let script = |id: &str, output: &str| ScriptResult {
        id: id.into(),
        output: output.into(),
        elements: vec![("k".into(), "v".into())],
        table: vec![ScriptEntry { key: Some("k".into()), value: ScriptValue::Text("v".into()) }],
    };
    let id = "01KSCRIPTS0000000000000001";
    feed(
        &db,
        None,
        &[
            started(id),
            ScanEvent::ScriptOutput { scope: ScriptScope::Pre, result: script("pre-one", "before") },
            ScanEvent::HostDone(up("198.18.0.10", &[80])),
            ScanEvent::ScriptOutput {
                scope: ScriptScope::Host { addr: ip("198.18.0.10") },
                result: script("host-one", "in the host's result"),
            },
            ScanEvent::ScriptOutput { scope: ScriptScope::Post, result: script("post-one", "after") },
            finished(ScanOutcome::Completed, 1, 0),
        ],
    );
    let store = Store::open(&db).unwrap();
    let got = store.scan_scripts(id).unwrap();
    assert_eq!(got.len(), 2, "host scripts travel in the host: {got:?}");
    assert_eq!((got[0].0, got[0].1.id.as_str()), (ScriptScope::Pre, "pre-one"));
    assert_eq!((got[1].0, got[1].1.output.as_str()), (ScriptScope::Post, "after"));
    assert_eq!(got[1].1.table.len(), 1);
    drop(store);

    // The same file as schema 3 had it: no table; read only, it has no script results; opened,
    // it migrates.
    let c = conn(&db);
    c.execute_batch("DROP TABLE scan_scripts; PRAGMA user_version = 3;").unwrap();
    drop(c);
    assert!(Store::open_read_only(&db).unwrap().scan_scripts(id).unwrap().is_empty());
    assert_eq!(Store::open_read_only(&db).unwrap().hosts(id).unwrap().len(), 1);
    let store = Store::open(&db).unwrap();
    assert_eq!(count(&db, "PRAGMA user_version"), SCHEMA_VERSION);
    assert!(store.scan_scripts(id).unwrap().is_empty());
    assert_eq!(integrity(&db), "ok");
}
