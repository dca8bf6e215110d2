//! Distributed scans against a real NATS server with JetStream (Debian's nats-server), in the
//! lab: the server listens on the scanner namespace's loopback, three agents run in that
//! namespace, and their results must equal a single-machine scan of the same targets even when
//! an agent is killed in the middle of a shard (SIGKILL) or the scheduler is killed and taken
//! up again with `--resume`.
//!
//! Every process is bounded in time and killed at the end; the NATS store is a temporary
//! directory.

mod common;

use common::{lab, lab_home, scanner_ns};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Targets: the lab's first network (its hosts and the dead addresses around them) and h20
/// behind two routers.
const TARGETS: &[&str] = &["198.18.0.0/26", "198.18.2.10"];
/// 9000 ports: three port groups, so every host is put together from three shards.
const PORTS: &str = "1-9000";

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server_path() -> Option<PathBuf> {
    ["/usr/sbin/nats-server", "/usr/bin/nats-server"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// A nats-server with JetStream in namespace `ns`, on a fresh port and store.
fn nats(ns: &str, dir: &Path) -> Option<(Proc, String)> {
    let Some(bin) = nats_server_path() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nats-server is not installed (tests/lab/install-deps.sh installs it; CI=true: not skipping)");
        }
        eprintln!("SKIP: nats-server not installed (apt-get install nats-server)");
        return None;
    };
    // 14000-14999; the servers of `nats_with` take 16000-16999.
    let port = 14000 + (std::process::id() % 1000) as u16;
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("js"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    let server = Proc(child);
    // Ready when it accepts connections.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let up = Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if up {
            return Some((server, format!("nats://127.0.0.1:{port}")));
        }
        assert!(Instant::now() < end, "nats-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// rustmap in the scanner namespace, stdout and stderr to `log`.
fn spawn(args: &[&str], log: &Path) -> Proc {
    let err = std::fs::File::create(log).unwrap();
    Proc(
        Command::new("ip")
            .args(["netns", "exec", &scanner_ns(), env!("CARGO_BIN_EXE_rustmap")])
            .args(args)
            .env("HOME", lab_home())
            .stdin(Stdio::null())
            .stdout(err.try_clone().unwrap())
            .stderr(err)
            .spawn()
            .expect("ip netns exec"),
    )
}

fn agent(url: &str, name: &str, dir: &Path) -> (Proc, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let p = spawn(&["--agent", "--nats", url, "--agent-name", name, "--shard-ack-wait", "3s"], &log);
    (p, log)
}

/// Agents of these names, each registered.
fn agents_ready(url: &str, names: &[&str], dir: &Path) -> Vec<(Proc, PathBuf)> {
    let all: Vec<(Proc, PathBuf)> = names.iter().map(|n| agent(url, n, dir)).collect();
    for (_, log) in &all {
        until(Duration::from_secs(20), &format!("the agent of {log:?} to register"), || read(log).contains("ready on"));
    }
    all
}

/// A distributed `-sS -T4 -p PORTS` of [`TARGETS`] in shards of `hosts` hosts, JSON to `out`.
fn dist_args<'a>(url: &'a str, hosts: &'a str, out: &'a Path) -> Vec<&'a str> {
    let mut args = vec![
        "--distribute",
        "--nats",
        url,
        "--shard-hosts",
        hosts,
        "-sS",
        "-T4",
        "-p",
        PORTS,
        "--oJ",
        out.to_str().unwrap(),
    ];
    args.extend(TARGETS);
    args
}

fn read(p: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Wait until `cond` holds, at most `limit`.
fn until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= end {
            // What the processes said, for the failure's reader.
            let dir = what.split('"').nth(1).map(PathBuf::from).and_then(|p| p.parent().map(Path::to_path_buf));
            let logs: String = dir
                .and_then(|d| std::fs::read_dir(d).ok())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| format!("--- {}\n{}", e.path().display(), read(&e.path())))
                .collect();
            panic!("timed out after {limit:?} waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for a process to exit, at most `limit`: its exit code.
fn wait(p: &mut Proc, limit: Duration) -> Option<i32> {
    let end = Instant::now() + limit;
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s.code();
        }
        assert!(Instant::now() < end, "a process ran longer than {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Per host: (status, open ports), and the whole JSON's hosts checked for duplicates.
fn summary(doc: &Value) -> BTreeMap<String, (String, BTreeSet<u16>)> {
    let mut out = BTreeMap::new();
    for h in doc["hosts"].as_array().unwrap() {
        let addr = h["addr"].as_str().unwrap().to_string();
        let ports = h["ports"].as_array().cloned().unwrap_or_default();
        let mut seen = BTreeSet::new();
        for p in &ports {
            let key = (p["protocol"].as_str().unwrap_or("").to_string(), p["port"].as_u64().unwrap());
            assert!(seen.insert(key.clone()), "{addr}: port {key:?} twice");
        }
        let open = ports.iter().filter(|p| p["state"] == "open").map(|p| p["port"].as_u64().unwrap() as u16).collect();
        let status = h["status"].as_str().unwrap_or("").to_string();
        assert!(out.insert(addr.clone(), (status, open)).is_none(), "host {addr} twice");
    }
    out
}

fn up(s: &BTreeMap<String, (String, BTreeSet<u16>)>) -> BTreeMap<String, BTreeSet<u16>> {
    s.iter().filter(|(_, (st, _))| st == "up").map(|(a, (_, o))| (a.clone(), o.clone())).collect()
}

fn single_machine() -> BTreeMap<String, (String, BTreeSet<u16>)> {
    let mut args = vec!["-sS", "-T4", "-p", PORTS];
    args.extend(TARGETS);
    summary(&common::json_scan(&args))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("rustmap-dist-").tempdir().unwrap()
}

#[test]
fn three_agents_one_killed_mid_shard_give_the_single_machine_result() {
    let Some(_lab) = lab() else { return };
    let dir = tempdir();
    let Some((_server, url)) = nats(&scanner_ns(), dir.path()) else { return };
    let mut agents = agents_ready(&url, &["a1", "a2", "a3"], dir.path());
    let logs: Vec<PathBuf> = agents.iter().map(|(_, l)| l.clone()).collect();
    let (log1, log2, log3) = (&logs[0], &logs[1], &logs[2]);
    let out = dir.path().join("dist.json");
    let sched_log = dir.path().join("scheduler.log");
    let mut args = dist_args(&url, "8", &out);
    args.extend(["--shard-ack-wait", "3s", "--no-db"]);
    let mut sched = spawn(&args, &sched_log);
    // a1 is killed in the middle of its second shard: started, not done.
    until(Duration::from_secs(60), "a1 to take its second shard", || {
        let l = read(log1);
        l.matches(" started ").count() >= 2 && l.matches(" started ").count() > l.matches(" done: ").count()
    });
    let a1 = &mut agents[0].0;
    let _ = a1.0.kill();
    let _ = a1.0.wait();
    let killed: String = read(log1).lines().rfind(|l| l.contains(" started ")).unwrap().to_string();
    let shard = killed.split_whitespace().nth(2).unwrap().to_string();
    let code = wait(&mut sched, Duration::from_secs(240));
    let log = read(&sched_log);
    assert_eq!(code, Some(0), "scheduler: {log}");
    assert!(log.contains("shard(s) of up to 8 host(s) × 3 port group(s)"), "{log}");
    // The killed shard was scanned again by another agent.
    let others = read(log2) + &read(log3);
    assert!(others.contains(&format!("shard {shard} started (delivery 2)")), "{shard} not redelivered: {others}");
    let dist = summary(&serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap());
    let local = single_machine();
    assert_eq!(up(&dist), up(&local), "distributed vs single machine (up hosts and their open ports)");
    assert_eq!(dist.len(), local.len(), "every host once");
}

#[test]
fn a_scheduler_killed_mid_scan_is_taken_up_with_resume() {
    let Some(_lab) = lab() else { return };
    let dir = tempdir();
    let Some((_server, url)) = nats(&scanner_ns(), dir.path()) else { return };
    let agents = agents_ready(&url, &["b1", "b2"], dir.path());
    let (log1, log2) = (&agents[0].1, &agents[1].1);
    let out = dir.path().join("dist.json");
    let db = dir.path().join("history.db");
    let sched_log = dir.path().join("scheduler.log");
    let mut args = dist_args(&url, "4", &out);
    args.extend(["--db", db.to_str().unwrap()]);
    let mut sched = spawn(&args, &sched_log);
    until(Duration::from_secs(60), "a few shards to be done", || {
        (read(log1) + &read(log2)).matches(" done: ").count() >= 6
    });
    let _ = sched.0.kill();
    let _ = sched.0.wait();
    let log = read(&sched_log);
    let id = log
        .split("distributed scan ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no scan id in {log}"))
        .to_string();
    // Taken up: the configuration (outputs included) comes from the cluster.
    let resume_log = dir.path().join("resume.log");
    let mut resumed =
        spawn(&["--distribute", "--nats", &url, "--resume", &id, "--db", db.to_str().unwrap()], &resume_log);
    let code = wait(&mut resumed, Duration::from_secs(240));
    let log = read(&resume_log);
    assert_eq!(code, Some(0), "resumed scheduler: {log}");
    assert!(log.contains(&format!("distributed scan {id} (resumed)")), "{log}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let dist = summary(&doc);
    assert_eq!(up(&dist), up(&single_machine()));
    assert_eq!(dist.len(), up(&dist).len());
    // The history holds the scan once, completed, with every target once (up hosts in `hosts`,
    // down ones packed five bytes each in `down_hosts`), though part of it was written by the
    // killed scheduler.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let status: String = conn.query_row("SELECT status FROM scans WHERE id = ?1", [&id], |r| r.get(0)).unwrap();
    assert_eq!(status, "completed");
    let (hosts, distinct): (i64, i64) =
        conn.query_row("SELECT count(*), count(DISTINCT addr) FROM hosts", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!(hosts, distinct, "a host stored twice");
    assert_eq!(hosts as usize, up(&dist).len());
    let mut st = conn.prepare("SELECT addrs FROM down_hosts").unwrap();
    let down: usize = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap().map(|b| b.unwrap().len() / 5).sum();
    assert_eq!(hosts as usize + down, 65, "every target stored once");
}

#[test]
fn distributed_usage_errors_are_clear() {
    let Some(_lab) = lab() else { return };
    let dir = tempdir();
    let Some((_server, url)) = nats(&scanner_ns(), dir.path()) else { return };
    let run = |args: &[&str]| {
        let log = dir.path().join("e.log");
        let mut p = spawn(args, &log);
        let code = wait(&mut p, Duration::from_secs(60));
        (code, read(&log))
    };
    let (code, err) = run(&["--distribute", "--nats", &url, "-p", "80", "198.18.0.10", "--no-db"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no RustMap agent is alive on"), "{err}");
    let (code, err) = run(&["--distribute", "--nats", &url, "--resume", "01NOSUCHSCAN", "--no-db"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no distributed scan 01NOSUCHSCAN"), "{err}");
    let (code, err) = run(&["--distribute", "--nats", &url, "--watch", "198.18.0.10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--watch with --distribute: not yet supported"), "{err}");
    // A scan that would read files on the agents' machines is refused before NATS is asked.
    let db = dir.path().join("probes.txt");
    std::fs::write(&db, "").unwrap();
    let (code, err) = run(&["--distribute", "--nats", &url, "--probe-db", db.to_str().unwrap(), "-sV", "198.18.0.10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("service.probe_db with --distribute: not yet supported"), "{err}");
    let (code, err) = run(&["--agent", "--nats", &url, "--shard-ack-wait", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--shard-ack-wait \"1s\""), "{err}");
    let (code, err) = run(&["--agent", "--nats", &url, "198.18.0.10"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("give no targets"), "{err}");
    let (code, err) = run(&["--agent", "--nats", "nats://127.0.0.1:1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("NATS server nats://127.0.0.1:1"), "{err}");
    // The registry: an agent with tags is listed, and gone once it stops.
    let log = dir.path().join("tagged.log");
    let mut a = spawn(&["--agent", "--nats", &url, "--agent-name", "tagged", "--agent-tags", "dmz,eu"], &log);
    until(Duration::from_secs(20), "the agent", || read(&log).contains("ready on"));
    let (code, _) = run(&["--agents", "--nats", &url]);
    assert_eq!(code, Some(0));
    let listing = common::rustmap(&["--agents", "--nats", &url]);
    let text = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(text.contains("1 agent(s) alive") && text.contains("tagged\ttags=dmz,eu"), "{text}");
    // SIGTERM: a clean stop removes the entry at once.
    let _ = Command::new("kill").args(["-TERM", &a.0.id().to_string()]).status();
    assert_eq!(wait(&mut a, Duration::from_secs(30)), Some(0), "{}", read(&log));
    let listing = common::rustmap(&["--agents", "--nats", &url]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("0 agent(s) alive"));
}

/// `curl` inside the scanner namespace: (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), "curl", "-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn the_api_submits_a_scan_to_the_cluster() {
    let Some(_lab) = lab() else { return };
    let dir = tempdir();
    let Some((_server, url)) = nats(&scanner_ns(), dir.path()) else { return };
    let (_a, log) = agent(&url, "api-agent", dir.path());
    until(Duration::from_secs(20), "the agent", || read(&log).contains("ready on"));
    let port = 18000 + (std::process::id() % 1000) as u16;
    let listen = format!("127.0.0.1:{port}");
    let db = dir.path().join("api.db");
    let api_log = dir.path().join("api.log");
    let _api = spawn(
        &[
            "--api",
            "--listen",
            &listen,
            "--api-key",
            "k",
            "--api-allow",
            "198.18.0.0/24",
            "--db",
            db.to_str().unwrap(),
            "--nats",
            &url,
        ],
        &api_log,
    );
    let base = format!("http://{listen}");
    until(Duration::from_secs(20), "the API", || curl(&[&format!("{base}/api/system/health")]).0 == 200);
    let post = |body: &str| {
        curl(&[
            "-H",
            "Authorization: Bearer k",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            &format!("{base}/api/scans"),
        ])
    };
    let (code, body) =
        post(r#"{"targets": ["198.18.0.10", "198.18.0.11"], "ports": "22,80", "scan_type": "S", "distributed": true}"#);
    assert_eq!(code, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let show = format!("{base}/api/scans/{id}");
    until(Duration::from_secs(90), "the distributed scan to complete", || {
        let (_, b) = curl(&["-H", "Authorization: Bearer k", &show]);
        b.contains("\"completed\"")
    });
    let (code, doc) = curl(&["-H", "Authorization: Bearer k", &format!("{base}/api/scans/{id}/export?format=json")]);
    assert_eq!(code, 200, "{doc}");
    let got = up(&summary(&serde_json::from_str(&doc).unwrap()));
    for (addr, name) in [("198.18.0.10", "h10"), ("198.18.0.11", "h11")] {
        let want: BTreeSet<u16> = common::truth_open_tcp(name).into_iter().filter(|p| [22, 80].contains(p)).collect();
        assert_eq!(got.get(addr), Some(&want), "{addr}: {doc}");
    }
    assert!(read(&log).contains(&format!("shard {id}/0 done")), "the agent scanned it: {}", read(&log));
    // The allow-list holds for the cluster too.
    let (code, body) = post(r#"{"targets": ["198.19.0.1"], "ports": "80", "distributed": true}"#);
    assert_eq!(code, 403, "{body}");
}

/// Agents that die on every delivery of a one-shard scan (two deliveries at most, 3 s each),
/// with the scheduler killed before the last one when `kill_scheduler`: the shard is given up
/// while nobody hears the advisory, and the scheduler taken up with `--resume` must still end.
fn dead_shard(kill_scheduler: bool) {
    let Some(_lab) = lab() else { return };
    let dir = tempdir();
    let Some((_server, url)) = nats(&scanner_ns(), dir.path()) else { return };
    let consumer = ["--shard-ack-wait", "3s", "--shard-max-deliver", "2"];
    let slow = |name: &str| {
        let log = dir.path().join(format!("{name}.log"));
        let mut args = vec!["--agent", "--nats", &url, "--agent-name", name, "--max-rate", "20"];
        args.extend(consumer);
        (spawn(&args, &log), log)
    };
    let (mut x, xlog) = slow("x");
    until(Duration::from_secs(20), "agent x", || read(&xlog).contains("ready on"));
    let sched_log = dir.path().join("scheduler.log");
    let mut args = vec!["--distribute", "--nats", &url, "-sS", "-Pn", "-p", "1-2000", "198.18.0.10", "--no-db"];
    args.extend(consumer);
    let mut sched = spawn(&args, &sched_log);
    until(Duration::from_secs(30), "x to take the shard", || read(&xlog).contains("started (delivery 1)"));
    let _ = x.0.kill();
    let (mut y, ylog) = slow("y");
    until(Duration::from_secs(30), "y to take it again", || read(&ylog).contains("started (delivery 2)"));
    if kill_scheduler {
        let _ = sched.0.kill();
        let _ = sched.0.wait();
    }
    let _ = y.0.kill();
    // JetStream gives a shard up when an agent asks for work after its last delivery timed out:
    // a live agent, which must not get it.
    let (_z, zlog) = slow("z");
    let (log, expected) = if kill_scheduler {
        // The advisory went unheard; the shard is still stored in the queue.
        std::thread::sleep(Duration::from_secs(8));
        let id = read(&sched_log).split("distributed scan ").nth(1).unwrap().split(':').next().unwrap().to_string();
        let resume_log = dir.path().join("resume.log");
        let mut resumed = spawn(&["--distribute", "--nats", &url, "--resume", &id, "--no-db"], &resume_log);
        let code = wait(&mut resumed, Duration::from_secs(60));
        assert_eq!(code, Some(0), "{}", read(&resume_log));
        (read(&resume_log), "no agent finished it (it reached the work queue's delivery limit)")
    } else {
        let code = wait(&mut sched, Duration::from_secs(60));
        assert_eq!(code, Some(0), "{}", read(&sched_log));
        (read(&sched_log), "no agent finished it in 2 deliveries")
    };
    assert!(log.contains(&format!("shard 0 of 1 (1 targets) failed (scheduler: {expected}")), "{log}");
    assert!(!read(&zlog).contains("started"), "{}", read(&zlog));
}

#[test]
fn a_shard_no_agent_finishes_is_reported_not_retried_forever() {
    dead_shard(false);
}

#[test]
fn a_shard_given_up_while_the_scheduler_was_down_is_reported_on_resume() {
    dead_shard(true);
}

/// A nats-server on this namespace's loopback with `conf` (its store and port filled in).
fn nats_with(dir: &Path, conf: &str) -> Option<(Proc, String)> {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let bin = nats_server_path()?;
    // A port of its own: the servers of one test live until its end.
    let port = 16000 + (std::process::id() % 250) as u16 * 4 + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let file = dir.join("server.conf");
    let conf = format!(
        "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{conf}\n",
        dir.join("js").display().to_string()
    );
    std::fs::write(&file, conf).unwrap();
    let server =
        Proc(Command::new(bin).arg("-c").arg(&file).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nats-server with {file:?} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((server, format!("127.0.0.1:{port}")))
}

/// `rustmap --agents` on this machine (loopback only): exit code and output.
fn agents(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .arg("--agents")
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

#[test]
fn nats_auth_and_tls_are_passed_through() {
    if nats_server_path().is_none() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "nats-server is not installed (CI=true)");
        eprintln!("SKIP: nats-server not installed");
        return;
    }
    // Token.
    let dir = tempdir();
    let (_s, addr) = nats_with(dir.path(), "authorization { token: \"t0ken\" }").unwrap();
    let url = format!("nats://{addr}");
    let (code, out) = agents(&["--nats", &url, "--nats-token", "t0ken"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("0 agent(s) alive"), "{out}");
    let (code, out) = agents(&["--nats", &url, "--nats-token", "wrong"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains(&format!("NATS server {url}")), "{out}");
    // User and password, the password from the environment.
    let dir = tempdir();
    let (_s, addr) = nats_with(dir.path(), "authorization { user: scan, password: \"pw\" }").unwrap();
    let url = format!("nats://{addr}");
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(["--agents", "--nats", &url, "--nats-user", "scan"])
        .env("RUSTMAP_NATS_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (code, _) = agents(&["--nats", &url, "--nats-user", "scan", "--nats-password", "nope"]);
    assert_eq!(code, Some(1));
    // An nkey: the seed in a file, the public key in the server's configuration.
    let dir = tempdir();
    let pair = nkeys::KeyPair::new_user();
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, pair.seed().unwrap()).unwrap();
    let conf = format!("authorization {{ users: [ {{ nkey: {} }} ] }}", pair.public_key());
    let (_s, addr) = nats_with(dir.path(), &conf).unwrap();
    let url = format!("nats://{addr}");
    let (code, out) = agents(&["--nats", &url, "--nats-nkey", seed_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _) = agents(&["--nats", &url]);
    assert_eq!(code, Some(1), "no credentials");
    // TLS: a CA and a server certificate made here with openssl; the client trusts the CA.
    let dir = tempdir();
    let d = dir.path();
    let ssl = |args: &[&str]| {
        let st = Command::new("openssl").args(args).current_dir(d).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=lab-ca",
    ]);
    ssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext",
    ]);
    let conf = format!(
        "tls {{ cert_file: {:?}, key_file: {:?} }}",
        d.join("srv.pem").display().to_string(),
        d.join("srv.key").display().to_string()
    );
    let (_s, addr) = nats_with(d, &conf).unwrap();
    let ca = d.join("ca.pem");
    let (code, out) =
        agents(&["--nats", &format!("tls://{addr}"), "--nats-tls", "--nats-tls-ca", ca.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    // Without the CA the server's certificate is not trusted.
    let (code, out) = agents(&["--nats", &format!("tls://{addr}"), "--nats-tls"]);
    assert_eq!(code, Some(1), "{out}");
}
