//! Sessions in the namespace lab (`tests/lab/lab.sh up`): scans started together in one process
//! (the `two_scans` example, run in the lab's scanner namespace) give what each gives alone, and
//! a port's event arrives before its host is done. Without the lab these tests skip with a
//! reason, except under `CI=true`, where they fail.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn scanner_ns() -> String {
    format!("{}-scan", std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into()))
}

static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab() -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
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
        return None;
    }
    Some(guard)
}

/// The example binary, built beside this test by `cargo test`.
fn two_scans() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("examples").join("two_scans");
    assert!(bin.exists(), "{} not built (cargo test builds examples)", bin.display());
    bin
}

/// Run configurations at once in one process in the scanner namespace; every event line.
fn run(configs: &[Value]) -> Vec<Value> {
    let args: Vec<String> = configs.iter().map(|c| c.to_string()).collect();
    let o = Command::new("ip")
        .args(["netns", "exec", &scanner_ns()])
        .arg(two_scans())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "two_scans {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Per scan (in start order): host → its port states and folded counts, from `host_done`.
fn results(lines: &[Value]) -> Vec<BTreeMap<String, Value>> {
    let mut order: Vec<String> = Vec::new();
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for l in lines {
        let id = l["scan"].as_str().unwrap().to_string();
        if !order.contains(&id) {
            order.push(id.clone());
        }
        let ev = &l["event"];
        if ev["event"] == "host_done" {
            let ports: Vec<Value> =
                ev["ports"].as_array().unwrap().iter().map(|p| json!([p["protocol"], p["port"], p["state"]])).collect();
            let extra: Vec<Value> =
                ev["extraports"].as_array().unwrap().iter().map(|e| json!([e["state"], e["count"]])).collect();
            out.entry(id).or_default().insert(
                ev["addr"].as_str().unwrap().to_string(),
                json!({"status": ev["status"], "ports": ports, "extra": extra}),
            );
        }
    }
    // The scans start together, so which speaks first is a race: order them by their targets
    // (as given in their `scan_started`), not by their first line.
    let targets = |id: &String| {
        lines
            .iter()
            .find(|l| l["scan"].as_str() == Some(id.as_str()) && l["event"]["event"] == "scan_started")
            .map(|l| l["event"]["config"]["targets"].to_string())
            .unwrap_or_default()
    };
    order.sort_by_key(targets);
    order.iter().map(|id| out.remove(id).unwrap_or_default()).collect()
}

#[test]
fn concurrent_scans_in_one_process_match_each_alone() {
    let Some(_lab) = lab() else { return };
    // A raw SYN scan of the services host and the firewalled host, and a connect scan of the
    // closed host and the second services host, at the same time.
    let syn = json!({"targets": ["198.18.0.10", "198.18.0.11"], "scan_types": ["syn"],
                     "ports": {"spec": "1-3000"}, "names": {"reverse": "never"}});
    let connect = json!({"targets": ["198.18.0.13", "198.18.0.14"], "scan_types": ["connect"],
                         "ports": {"spec": "1-3000"}, "names": {"reverse": "never"}});
    let alone_syn = results(&run(std::slice::from_ref(&syn)));
    let alone_connect = results(&run(std::slice::from_ref(&connect)));
    let together = results(&run(&[syn, connect]));
    assert_eq!(together.len(), 2);
    assert_eq!(alone_syn[0].len(), 2, "{:?}", alone_syn);
    assert_eq!(together[0], alone_syn[0], "SYN scan run with another differs from alone");
    assert_eq!(together[1], alone_connect[0], "connect scan run with another differs from alone");
    // And they are right: h10's open ports include ssh and http.
    let h10 = &together[0]["198.18.0.10"]["ports"];
    assert!(h10.to_string().contains("[\"tcp\",22,\"open\"]") && h10.to_string().contains("[\"tcp\",80,\"open\"]"));
}

#[test]
fn port_events_arrive_before_a_slow_host_is_done() {
    let Some(_lab) = lab() else { return };
    // -sV of the tarpit (one byte every 3 s) keeps its host busy for seconds after its ports are
    // decided: the ports must be out when they are decided, not when the host is done.
    let tarpit = json!({"targets": ["198.18.0.12"], "scan_types": ["connect"],
                        "ports": {"spec": "2222,2223,1-100"}, "service": {"enabled": true},
                        "names": {"reverse": "never"}});
    let lines = run(&[tarpit]);
    let t = |pred: &dyn Fn(&Value) -> bool| -> Vec<u64> {
        lines.iter().filter(|l| pred(&l["event"])).map(|l| l["t_ms"].as_u64().unwrap()).collect()
    };
    let open = t(&|e| e["event"] == "port_found" && e["port"]["state"] == "open");
    let done = t(&|e| e["event"] == "host_done");
    assert_eq!(open.len(), 2, "2222 and 2223 are open: {lines:?}");
    assert_eq!(done.len(), 1);
    let (last_port, host_done) = (*open.iter().max().unwrap(), done[0]);
    assert!(
        host_done >= last_port + 1000,
        "ports at {last_port} ms, host done at {host_done} ms: the ports were held back"
    );
    // Every port of the host came before its host_done.
    let all_ports = t(&|e| e["event"] == "port_found");
    assert_eq!(all_ports.len(), 102);
    assert!(all_ports.iter().all(|p| *p <= host_done));
}
