//! The history features on the namespace lab: `--resume` after kill -9, `--predict-ports`,
//! `--fast-discovery`.
//!
//! Kill -9 at random moments, then `--resume`: on the namespace lab (`tests/lab/lab.sh up`), a
//! SYN scan with service detection of a /28 (hosts up, hosts down, detection running when the
//! kill lands) is killed with SIGKILL at random moments, sometimes its resumed run too, and
//! resumed until it completes. Each time the scan must end with the hosts, ports, states and
//! services of an uninterrupted scan, in a sound database (`PRAGMA integrity_check`), with no
//! host stored twice and every target stored once.
//!
//! `RESUME_RUNS` sets the number of kill-and-resume rounds (default 20, the bar of the hardening
//! issue; at most 50);
//! `RESUME_SEED` replays the random moments of a failed run (the seed is printed).
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn prefix() -> String {
    std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into())
}

fn scanner_ns() -> String {
    format!("{}-scan", prefix())
}

/// Lab tests run one at a time: concurrent scans of the same hosts would skew each other's timing.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take the lab if it is up. Outside CI a missing lab skips the test; in CI it is a failure.
fn lab() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    lab_up().then_some(guard)
}

fn lab_up() -> bool {
    let up = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.split_whitespace().next() == Some(&scanner_ns())))
        .unwrap_or(false);
    if !up {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the lab is not up: run `bash tests/lab/lab.sh up` as root first (CI=true: not skipping)");
        }
        eprintln!("SKIP: lab namespace {} not found (needs root: bash tests/lab/lab.sh up)", scanner_ns());
    }
    up
}

fn lab_home() -> PathBuf {
    let d = std::env::temp_dir().join(format!("{}-home", prefix()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// rustmap in the lab's scanner namespace (`ip netns exec` becomes rustmap: the child's pid is
/// rustmap's, so killing the child kills the scanner itself).
fn spawn(args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), env!("CARGO_BIN_EXE_rustmap")])
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec")
}

/// Wait for a child, at most `limit`; a scan that hangs is killed and fails the test.
fn wait(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let end = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            return (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned());
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a scan ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A small deterministic generator (xorshift64*): the moments of the kills, replayable by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration in `[lo, hi)`.
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis().max(1) as u64;
        lo + Duration::from_millis(self.next() % span)
    }
}

const TARGETS: &str = "198.18.0.0/28";

fn scan_args(db: &Path, out: &Path) -> Vec<String> {
    [
        "-sS",
        "-sV",
        "--version-light",
        "-n",
        "-p",
        "1-3000",
        "--max-rate",
        "6000",
        // Two hosts at a time: hosts finish one after another, so kills land between them too.
        "--max-hostgroup",
        "2",
        "--no-progress",
        "--db",
        db.to_str().unwrap(),
        "--oJ",
        out.to_str().unwrap(),
        TARGETS,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What a scan found, comparable across runs: per host its status, listed ports with state,
/// service name and product, and the folded counts. Times and ids are left out.
fn found(out: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let mut hosts: Vec<String> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let ports: Vec<String> = h["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}/{} {} {}", p["port"], p["state"], p["service"]["name"], p["service"]["product"]))
                .collect();
            let extra: Vec<String> =
                h["extraports"].as_array().unwrap().iter().map(|e| format!("{}x{}", e["state"], e["count"])).collect();
            format!("{} {} {ports:?} {extra:?}", h["addr"], h["status"])
        })
        .collect();
    hosts.sort();
    hosts
}

fn db_conn(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db).unwrap()
}

/// The scan in `db` (there is one), with its status.
fn stored_scan(db: &Path) -> Option<(String, String)> {
    if !db.exists() {
        return None;
    }
    db_conn(db).query_row("SELECT id, status FROM scans", [], |r| Ok((r.get(0)?, r.get(1)?))).ok()
}

/// Every stored row of the scan, checked: a sound file, each target stored once (up hosts in
/// `hosts`, down hosts packed in `down_hosts`), no port row twice. Returns (up, down, open ports).
fn check_db(db: &Path, targets: usize) -> (i64, i64, i64) {
    let c = db_conn(db);
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let up: i64 = c.query_row("SELECT count(*) FROM hosts", [], |r| r.get(0)).unwrap();
    let mut st = c.prepare("SELECT addrs FROM down_hosts").unwrap();
    let blobs: Vec<Vec<u8>> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    // IPv4 only here: 5 bytes a host (family byte, address).
    let mut down: Vec<Vec<u8>> = blobs.iter().flat_map(|b| b.chunks(5).map(<[u8]>::to_vec)).collect();
    let n_down = down.len();
    down.sort();
    down.dedup();
    assert_eq!(down.len(), n_down, "a down host stored twice");
    let hosts: Vec<String> = {
        let mut st = c.prepare("SELECT addr FROM hosts").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    for d in &down {
        let a = format!("{}.{}.{}.{}", d[1], d[2], d[3], d[4]);
        assert!(!hosts.contains(&a), "{a} stored both up and down");
    }
    assert_eq!(up as usize + n_down, targets, "every target stored once");
    let ports: i64 = c.query_row("SELECT count(*) FROM ports", [], |r| r.get(0)).unwrap();
    let distinct: i64 = c
        .query_row("SELECT count(*) FROM (SELECT DISTINCT scan, addr, proto, port FROM ports)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ports, distinct);
    let open: i64 = c.query_row("SELECT open_ports FROM scans", [], |r| r.get(0)).unwrap();
    (up, n_down as i64, open)
}

#[test]
fn resume_after_kill_9_at_random_moments_matches_an_uninterrupted_scan() {
    let Some(_lab) = lab() else { return };
    let runs: usize = std::env::var("RESUME_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(20).clamp(1, 50);
    let seed: u64 = std::env::var("RESUME_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 | 1
    });
    eprintln!("resume test: {runs} rounds, RESUME_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir_in(lab_home()).unwrap();

    // The uninterrupted scan: what every round must end with, and how long a scan takes.
    let (ref_db, ref_out) = (dir.path().join("ref.db"), dir.path().join("ref.json"));
    let t0 = Instant::now();
    let args = scan_args(&ref_db, &ref_out);
    let (code, err) = wait(spawn(&args.iter().map(String::as_str).collect::<Vec<_>>()), Duration::from_secs(120));
    let full = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    let expected = found(&ref_out);
    let (ref_up, ref_down, ref_open) = check_db(&ref_db, 16);
    assert!(ref_up >= 5 && ref_down >= 5 && ref_open >= 10, "the lab's /28: {expected:?}");

    let (mut mid_scan, mut skipped_total, mut kills) = (0, 0u64, 0);
    for round in 0..runs {
        let (db, out) = (dir.path().join(format!("r{round}.db")), dir.path().join(format!("r{round}.json")));
        let args = scan_args(&db, &out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Kill the first run somewhere in its first 90 %; until its row exists, start over (a
        // kill before the scan was stored leaves nothing to resume), a bounded number of times.
        let mut id = None;
        for _ in 0..5 {
            let child = spawn(&args);
            std::thread::sleep(rng.between(Duration::from_millis(150), full.mul_f64(0.9)));
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            kills += 1;
            if let Some(scan) = stored_scan(&db) {
                id = Some(scan);
                break;
            }
        }
        let (id, status) = id.expect("a stored scan after 5 starts");
        if status != "completed" {
            mid_scan += 1;
        }
        // Resumed runs may be killed too (one in three), at most twice; then one runs to the end.
        let mut extra_kills = 0;
        loop {
            let status = stored_scan(&db).unwrap().1;
            if status == "completed" {
                break;
            }
            let child = spawn(&["--resume", &id, "--db", db.to_str().unwrap(), "--no-progress"]);
            if extra_kills < 2 && rng.next().is_multiple_of(3) {
                std::thread::sleep(rng.between(Duration::from_millis(50), full.mul_f64(0.6)));
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                extra_kills += 1;
                kills += 1;
                continue;
            }
            let (code, err) = wait(child, Duration::from_secs(120));
            assert_eq!(code, Some(0), "round {round} (seed {seed}): {err}");
            let skipped: u64 = err
                .split(" finished host")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("round {round}: {err}"));
            skipped_total += skipped;
        }
        let got = found(&out);
        assert_eq!(got, expected, "round {round} (seed {seed}): the resumed scan differs");
        let (up, down, open) = check_db(&db, 16);
        assert_eq!((up, down, open), (ref_up, ref_down, ref_open), "round {round} (seed {seed})");
        eprintln!("round {round}: ok ({} kill(s) of resumed runs)", extra_kills);
    }
    eprintln!(
        "resume test: {runs}/{runs} rounds identical to the uninterrupted scan; {kills} kills, {mid_scan} first \
         kills mid-scan, {skipped_total} finished hosts not scanned again"
    );
    assert!(mid_scan * 2 >= runs, "most kills must land mid-scan ({mid_scan}/{runs}): the scan is too quick");
    assert!(skipped_total > 0, "some finished hosts must have been kept");
}

fn json_hosts(out: &Path) -> (Vec<(String, String, String, String)>, Value) {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let mut hosts: Vec<(String, String, String, String)> = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let ports: Vec<String> =
                h["ports"].as_array().unwrap().iter().map(|p| format!("{}/{}", p["port"], p["state"])).collect();
            (h["addr"].to_string(), h["status"].to_string(), h["reason"].to_string(), ports.join(" "))
        })
        .collect();
    hosts.sort();
    (hosts, v["stats"].clone())
}

fn run_ok(args: &[&str]) -> String {
    let (code, err) = wait(spawn(args), Duration::from_secs(120));
    assert_eq!(code, Some(0), "{args:?}: {err}");
    err
}

#[test]
fn fast_discovery_skips_discovery_of_hosts_seen_up_and_falls_back_when_one_is_silent() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir_in(lab_home()).unwrap();
    let db = dir.path().join("f.db");
    let db = db.to_str().unwrap();
    let out = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let ports = "1-5,22,80";
    run_ok(&["-sS", "-n", "-p", ports, "--db", db, "--no-progress", "--oJ", &out("a.json"), TARGETS]);
    let err = run_ok(&[
        "-sS",
        "-n",
        "-p",
        ports,
        "--db",
        db,
        "--no-progress",
        "--fast-discovery",
        "--oJ",
        &out("b.json"),
        TARGETS,
    ]);
    assert!(err.contains("--fast-discovery: 7 host(s) seen up"), "{err}");
    let (a, sa) = json_hosts(Path::new(&out("a.json")));
    let (b, sb) = json_hosts(Path::new(&out("b.json")));
    assert_eq!(a.len(), 7);
    // The same hosts, ports and states; the reason says discovery was skipped.
    let strip = |v: &[(String, String, String, String)]| {
        v.iter().map(|h| (h.0.clone(), h.1.clone(), h.3.clone())).collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(b.iter().all(|h| h.2 == "\"seen-up\""), "{b:?}");
    assert_eq!((sa["hosts_up"].clone(), sa["hosts_down"].clone()), (sb["hosts_up"].clone(), sb["hosts_down"].clone()));

    // A host seen up that has gone (198.18.0.5, planted in the history), and the firewalled h11,
    // which answers none of ports 1-5: both go through discovery after all.
    let c = db_conn(Path::new(db));
    c.execute(
        "INSERT INTO hosts SELECT scan, '198.18.0.5', status, reason, hostnames, mac, result FROM hosts
         WHERE addr = '198.18.0.13' ORDER BY scan LIMIT 1",
        [],
    )
    .unwrap();
    let targets = ["198.18.0.5", "198.18.0.11", "198.18.0.13"];
    let mut args = vec!["-sS", "-n", "-p", "1-5", "--db", db, "--no-progress", "--fast-discovery"];
    let fast = out("c.json");
    args.extend(["--oJ", &fast]);
    args.extend(targets);
    run_ok(&args);
    let mut args = vec!["-sS", "-n", "-p", "1-5", "--no-db", "--no-progress"];
    let plain = out("d.json");
    args.extend(["--oJ", &plain]);
    args.extend(targets);
    run_ok(&args);
    let (c_hosts, c_stats) = json_hosts(Path::new(&fast));
    let (d_hosts, d_stats) = json_hosts(Path::new(&plain));
    assert_eq!(strip(&c_hosts), strip(&d_hosts));
    let reasons: Vec<&str> = c_hosts.iter().map(|h| h.2.as_str()).collect();
    assert_eq!(reasons, ["\"arp-response\"", "\"seen-up\""], "h11 found by ARP after all, h13 seen up: {c_hosts:?}");
    assert_eq!((c_stats["hosts_up"].as_u64(), c_stats["hosts_down"].as_u64()), (Some(2), Some(1)));
    assert_eq!(c_stats["hosts_down"], d_stats["hosts_down"]);
}

#[test]
fn predict_ports_reports_the_first_open_port_within_a_tenth_of_the_first_scans_time() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir_in(lab_home()).unwrap();
    let db = dir.path().join("p.db");
    let db = db.to_str().unwrap();
    let events = |n: &str| {
        let f = dir.path().join(n);
        let v: Vec<Value> =
            std::fs::read_to_string(&f).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let first = v.iter().find(|e| e["event"] == "first_open_port").map(|e| e["after_secs"].as_f64().unwrap());
        let total = v.iter().find(|e| e["event"] == "scan_finished").unwrap()["elapsed_secs"].as_f64().unwrap();
        (first, total)
    };
    // h11: two open ports among 65,535, the others dropped: a first scan meets its open ports late.
    let a = dir.path().join("a.jsonl");
    run_ok(&["-sS", "-n", "-p-", "--db", db, "--no-progress", "--oJ-lines", a.to_str().unwrap(), "198.18.0.11"]);
    let b = dir.path().join("b.jsonl");
    let err = run_ok(&[
        "-sS",
        "-n",
        "-p-",
        "--db",
        db,
        "--no-progress",
        "--predict-ports",
        "--oJ-lines",
        b.to_str().unwrap(),
        "198.18.0.11",
    ]);
    assert!(err.contains("scanning first 2 port(s) seen open on these hosts"), "{err}");
    assert!(err.contains("first open port "), "{err}");
    let (_, first_total) = events("a.jsonl");
    let (second_first, _) = events("b.jsonl");
    let second_first = second_first.expect("an open port");
    eprintln!("first scan {first_total:.3} s; with --predict-ports the first open port after {second_first:.3} s");
    assert!(second_first <= first_total * 0.10, "{second_first} s against {first_total} s");
}
