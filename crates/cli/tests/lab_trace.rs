//! `--traceroute`, `--topology` and `--mtu-discovery` in the namespace lab (`tests/lab/lab.sh
//! up`): the router chain scanner → r1 (198.18.0.1) → r2 (198.18.1.2) → h20 (198.18.2.10), whose
//! r1–r2 link has MTU 1400, and the LAN host h10 one hop away.
//!
//! The scanner runs inside the lab's scanner namespace (no route out), as root, with its own
//! HOME and `--no-db`. Without the lab these tests skip with a reason — except under `CI=true`,
//! where they fail. Files go to temporary directories that are removed afterwards.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn prefix() -> String {
    std::env::var("LAB_PREFIX").unwrap_or_else(|_| "rmlab".into())
}

fn scanner_ns() -> String {
    format!("{}-scan", prefix())
}

/// Lab tests run one at a time.
static LAB_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take the lab if it is up. Outside CI a missing lab skips the test; in CI it is a failure.
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

fn lab_home() -> PathBuf {
    let d = std::env::temp_dir().join(format!("{}-home", prefix()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn in_lab(program: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &scanner_ns(), program])
        .args(args)
        .env("HOME", lab_home())
        .stdin(Stdio::null())
        .output()
        .expect("ip netns exec")
}

/// rustmap in the scanner namespace, without the history database; it must succeed.
fn rustmap(args: &[&str]) -> String {
    let mut all = vec!["--no-db", "--no-progress"];
    all.extend(args);
    let o = in_lab(env!("CARGO_BIN_EXE_rustmap"), &all);
    assert!(o.status.success(), "rustmap {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn ground_truth() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/ground-truth.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The far host's ground truth: its addresses and its hops (IPv4, IPv6).
fn h20() -> (String, Vec<String>, Vec<String>) {
    let t = ground_truth();
    let h = t["hosts"].as_array().unwrap().iter().find(|h| h["name"] == "h20").unwrap().clone();
    let list = |k: &str| h[k].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    (h["ipv4"].as_str().unwrap().to_string(), list("traceroute"), list("traceroute6"))
}

fn host<'a>(v: &'a Value, addr: &str) -> &'a Value {
    v["hosts"].as_array().unwrap().iter().find(|h| h["addr"] == addr).unwrap_or_else(|| panic!("{addr} not in {v}"))
}

fn hops(h: &Value) -> Vec<(u64, String)> {
    h["trace"]
        .as_array()
        .unwrap_or_else(|| panic!("no trace in {h}"))
        .iter()
        .map(|x| (x["ttl"].as_u64().unwrap(), x["addr"].as_str().unwrap_or("*").to_string()))
        .collect()
}

fn numbered(addrs: &[String]) -> Vec<(u64, String)> {
    addrs.iter().enumerate().map(|(i, a)| (i as u64 + 1, a.clone())).collect()
}

fn xmllint_dtd(path: &std::path::Path) {
    let v =
        Command::new("xmllint").args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"]).arg(path).output().unwrap();
    assert!(v.status.success(), "xmllint: {}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn traceroute_of_the_far_host_shows_the_routers_in_order() {
    let Some(_lab) = lab() else { return };
    let (far, route, route6) = h20();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("trace.xml");
    let normal = rustmap(&["--traceroute", "-p", "22,80", "--oX", xml.to_str().unwrap(), &far, "198.18.0.10"]);
    // Normal output: nmap's table, the routers by name, in order.
    let want = "TRACEROUTE (using port 22/tcp)\nHOP RTT ";
    let at = normal.find(&format!("RustMap scan report for h20.lab.test ({far})")).expect(&normal);
    let block = &normal[at..];
    let table = &block[block.find(want).unwrap_or_else(|| panic!("{normal}"))..];
    let lines: Vec<&str> = table.lines().skip(2).take(3).collect();
    for (i, (line, (addr, name))) in
        lines.iter().zip(route.iter().zip(["r1.lab.test", "r2.lab.test", "h20.lab.test"])).enumerate()
    {
        assert!(line.starts_with(&format!("{}   ", i + 1)), "{line}");
        assert!(line.ends_with(&format!("{name} ({addr})")) && line.contains(" ms "), "{line}");
    }
    assert!(normal.contains("Network Distance: 3 hops"), "{normal}");
    // XML: DTD-valid, the hops in order, and what the lab's own checker expects.
    xmllint_dtd(&xml);
    let text = std::fs::read_to_string(&xml).unwrap();
    let trace = &text[text.find(&format!("<address addr=\"{far}\"")).unwrap()..];
    let trace = &trace[trace.find("<trace port=\"22\" proto=\"tcp\">").expect(&text)..];
    for (ttl, addr) in numbered(&route) {
        assert!(trace.contains(&format!("<hop ttl=\"{ttl}\" ipaddr=\"{addr}\" rtt=\"")), "{trace}");
    }
    let check = Command::new("python3")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/lab/check_scan.py"))
        .arg(&xml)
        .output()
        .unwrap();
    assert!(check.status.success(), "check_scan: {}", String::from_utf8_lossy(&check.stdout));
    // JSON, IPv6, and -n (no names).
    let v: Value = serde_json::from_str(&rustmap(&["-n", "--traceroute", "-p", "22", "--oJ", "-", &far])).unwrap();
    let h = host(&v, &far);
    assert_eq!(hops(h), numbered(&route));
    assert!(h["trace"].as_array().unwrap().iter().all(|x| x.get("hostname").is_none() && x["rtt_us"].is_u64()));
    assert_eq!(h["trace_probe"]["protocol"], "tcp");
    let six = route6.last().unwrap().clone();
    let v: Value = serde_json::from_str(&rustmap(&["-6", "--traceroute", "-p", "22", "--oJ", "-", &six])).unwrap();
    assert_eq!(hops(host(&v, &six)), numbered(&route6));
    assert_eq!(host(&v, &six)["trace"][0]["hostname"], "r1.lab.test");
}

#[test]
fn traceroute_without_open_or_closed_tcp_ports_uses_udp_or_icmp() {
    let Some(_lab) = lab() else { return };
    let (far, route, _) = h20();
    // A ping scan knows no port: ICMP echo. A UDP scan's closed port: UDP.
    let v: Value = serde_json::from_str(&rustmap(&["-sn", "--traceroute", "--oJ", "-", &far])).unwrap();
    assert_eq!(host(&v, &far)["trace_probe"]["protocol"], "icmp");
    assert_eq!(hops(host(&v, &far)), numbered(&route));
    let v: Value = serde_json::from_str(&rustmap(&["-sU", "-p", "40125", "--traceroute", "--oJ", "-", &far])).unwrap();
    assert_eq!(
        host(&v, &far)["trace_probe"],
        serde_json::json!({"protocol": "udp", "port": 40125, "source": "198.18.0.2"})
    );
    assert_eq!(hops(host(&v, &far)), numbered(&route));
}

/// A DOT graph's nodes (id → type, ip), read line by line.
type DotNodes = BTreeMap<String, (String, String)>;

/// A DOT graph's nodes and edges (from, to), read line by line.
fn parse_dot(dot: &str) -> (DotNodes, Vec<(String, String)>) {
    let attr = |line: &str, k: &str| {
        let from = line.find(&format!(" {k}=\"")).map(|i| i + k.len() + 3)?;
        Some(line[from..].split('"').next()?.to_string())
    };
    let (mut nodes, mut edges) = (BTreeMap::new(), Vec::new());
    for line in dot.lines().map(str::trim) {
        let Some(id) = line.split_whitespace().next().filter(|w| w.starts_with('n') && w[1..].parse::<u32>().is_ok())
        else {
            continue;
        };
        if let Some(rest) = line.strip_prefix(&format!("{id} -> ")) {
            edges.push((id.to_string(), rest.split_whitespace().next().unwrap().to_string()));
        } else {
            nodes.insert(id.to_string(), (attr(line, "type").unwrap(), attr(line, "ip").unwrap_or_default()));
        }
    }
    (nodes, edges)
}

#[test]
fn topology_dot_of_the_far_and_a_lan_host_renders_with_every_node_typed() {
    let Some(_lab) = lab() else { return };
    let (far, route, _) = h20();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("network.dot");
    rustmap(&[
        "--traceroute",
        "--topology",
        "dot",
        "--topology-output",
        file.to_str().unwrap(),
        "-p",
        "22",
        &far,
        "198.18.0.10",
    ]);
    let dot = std::fs::read_to_string(&file).unwrap();
    let (nodes, edges) = parse_dot(&dot);
    let id = |ip: &str| {
        nodes.iter().find(|(_, (_, a))| a == ip).map(|(k, _)| k.clone()).unwrap_or_else(|| panic!("{ip}: {dot}"))
    };
    let kind = |ip: &str| nodes[&id(ip)].0.clone();
    assert_eq!(nodes.len(), 5, "scanner, r1, r2, h20, h10: {dot}");
    assert_eq!(kind("198.18.0.2"), "scanner");
    assert_eq!(kind(&route[0]), "router");
    assert_eq!(kind(&route[1]), "router");
    assert_eq!(kind(&far), "target");
    assert_eq!(kind("198.18.0.10"), "target");
    // The routers in order: scanner → r1 → r2 → h20; the LAN host straight from the scanner.
    let chain = [id("198.18.0.2"), id(&route[0]), id(&route[1]), id(&far)];
    for w in chain.windows(2) {
        assert!(edges.contains(&(w[0].clone(), w[1].clone())), "{w:?} in {dot}");
    }
    assert!(edges.contains(&(id("198.18.0.2"), id("198.18.0.10"))), "{dot}");
    assert_eq!(edges.len(), 4, "{dot}");
    assert!(dot.contains("fillcolor=\"yellow\", type=\"router\""), "{dot}");
    // Graphviz renders it.
    let svg = dir.path().join("network.svg");
    let o = Command::new("dot").arg("-Tsvg").arg(&file).arg("-o").arg(&svg).output().expect("graphviz");
    assert!(o.status.success(), "dot -Tsvg: {}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("r2.lab.test"));
    // Only the graph is left in the directory (no temporary file).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    // Without a file the graph goes to standard output, in place of the normal output.
    let out = rustmap(&["--topology", "dot", "-p", "22", &far]);
    assert!(out.starts_with("digraph rustmap {") && !out.contains("RustMap scan report"), "{out}");
}

#[test]
fn topology_graphml_and_json_share_the_routers_of_two_far_hosts() {
    let Some(_lab) = lab() else { return };
    let (far, route, _) = h20();
    // A second host behind r2: an address of the lab's crowd, which lives on h20.
    let crowd = ground_truth()["crowd"]["addresses"][0].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("network.json");
    rustmap(&["--topology-output", json_file.to_str().unwrap(), "-p", "22", &far, &crowd]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert_eq!(v["format"], "rustmap-topology");
    let nodes = v["nodes"].as_array().unwrap();
    let of = |t: &str| {
        nodes.iter().filter(|n| n["type"] == t).map(|n| n["ip"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(of("scanner"), ["198.18.0.2"]);
    let mut routers = of("router");
    routers.sort();
    assert_eq!(routers, route[..2], "each router once");
    let mut targets = of("target");
    targets.sort();
    let mut want = vec![far.clone(), crowd.clone()];
    want.sort();
    assert_eq!(targets, want);
    let node = |ip: &str| nodes.iter().find(|n| n["ip"] == ip).unwrap();
    assert_eq!(node(&crowd)["distance"], 3);
    assert_eq!(node(&far)["hostname"], "h20.lab.test");
    assert_eq!(node(&far)["open_ports"][0], "22/tcp");
    let edge = |a: &str, b: &str| {
        let (a, b) = (node(a)["id"].clone(), node(b)["id"].clone());
        v["edges"].as_array().unwrap().iter().find(|e| e["source"] == a && e["target"] == b).cloned()
    };
    let shared = edge(&route[0], &route[1]).expect("r1 → r2");
    assert_eq!((shared["weight"].as_u64(), shared["ttl"].as_u64()), (Some(2), Some(2)), "both traces use r1 → r2");
    assert!(edge(&route[1], &crowd).is_some() && edge(&route[1], &far).is_some());
    // GraphML of the same scan: well-formed, keys declared, the same nodes typed the same way.
    let gml_file = dir.path().join("network.graphml");
    rustmap(&["--topology", "graphml", "--topology-output", gml_file.to_str().unwrap(), "-p", "22", &far, &crowd]);
    let gml = std::fs::read_to_string(&gml_file).unwrap();
    let lint = Command::new("xmllint").args(["--noout"]).arg(&gml_file).output().unwrap();
    assert!(lint.status.success(), "{}", String::from_utf8_lossy(&lint.stderr));
    assert!(gml.contains("xmlns=\"http://graphml.graphdrawing.org/xmlns\""));
    for key in ["type", "ip", "hostname", "open_ports", "services", "os", "ttl", "rtt_ms", "weight"] {
        assert!(gml.contains(&format!("<key id=\"{key}\" for=")), "{key}");
    }
    assert_eq!(gml.matches("<data key=\"type\">router</data>").count(), 2);
    assert_eq!(gml.matches("<data key=\"type\">target</data>").count(), 2);
    // Where networkx is installed, it reads the file as GraphML.
    let nx = Command::new("python3")
        .args(["-c", "import sys, networkx as nx; g = nx.read_graphml(sys.argv[1]); print(sorted(d['type'] for _, d in g.nodes(data=True)))"])
        .arg(&gml_file)
        .output()
        .unwrap();
    if nx.status.success() {
        assert_eq!(String::from_utf8_lossy(&nx.stdout).trim(), "['router', 'router', 'scanner', 'target', 'target']");
    } else {
        eprintln!("note: networkx not available, GraphML checked structurally only");
    }
}

#[test]
fn mtu_discovery_finds_the_narrow_link() {
    let Some(_lab) = lab() else { return };
    let (far, _, _) = h20();
    let normal = rustmap(&["--mtu-discovery", "-p", "22", &far, "198.18.0.10"]);
    let report = |addr: &str| {
        let at = normal.find(&format!("({addr})\nHost is up")).unwrap_or_else(|| panic!("{normal}"));
        normal[at..].split("\n\n").next().unwrap().to_string()
    };
    assert!(report(&far).contains("Path MTU: 1400"), "{normal}");
    assert!(report("198.18.0.10").contains("Path MTU: 1500"), "{normal}");
    assert!(!normal.contains("TRACEROUTE"), "no traceroute asked");
    // JSON, with a UDP scan's closed port as the probe, and IPv6 (not searched: IPv4 only).
    let v: Value =
        serde_json::from_str(&rustmap(&["-sU", "-p", "40125", "--mtu-discovery", "--oJ", "-", &far])).unwrap();
    assert_eq!(host(&v, &far)["path_mtu"], 1400);
    let v: Value =
        serde_json::from_str(&rustmap(&["-6", "-p", "22", "--mtu-discovery", "--oJ", "-", "fd00:18:2::10"])).unwrap();
    assert!(host(&v, "fd00:18:2::10").get("path_mtu").is_none());
}
