//! Tests of the topology graph and its three formats.

use super::*;
use quick_xml::events::Event;
use rustmap_model::{
    HostResult, HostStatus, OsGuess, PortResult, PortState, Protocol, Reason, ServiceInfo, ServiceMethod, TraceHop,
    TraceProbe, TraceProtocol,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn hop(ttl: u8, addr: Option<&str>, name: Option<&str>) -> TraceHop {
    TraceHop { ttl, addr: addr.map(ip), rtt_us: addr.map(|_| 100 * u64::from(ttl)), hostname: name.map(Into::into) }
}

fn host(addr: &str, hops: Vec<TraceHop>) -> HostResult {
    let mut h = HostResult::new(ip(addr), HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 62);
    p.service = Some(ServiceInfo {
        name: "ssh".into(),
        method: ServiceMethod::Probed,
        conf: 10,
        product: Some("OpenSSH".into()),
        version: Some("9.2p1".into()),
        ..Default::default()
    });
    h.ports.push(p);
    h.ports.push(PortResult::new(Protocol::Tcp, 23, PortState::Closed, Reason::Reset, 62));
    h.trace = hops;
    h.trace_probe = Some(TraceProbe { protocol: TraceProtocol::Tcp, port: Some(22), source: Some(ip("198.18.0.2")) });
    h
}

/// The lab: h20 and a crowd address behind r1 and r2, h10 on the LAN, a host behind a silent
/// hop, one whose trace stops short, and a host that is down.
fn lab() -> Vec<HostResult> {
    let r1 = || hop(1, Some("198.18.0.1"), Some("r1.lab.test"));
    let r2 = || hop(2, Some("198.18.1.2"), Some("r2.lab.test"));
    let mut h20 = host("198.18.2.10", vec![r1(), r2(), hop(3, Some("198.18.2.10"), Some("h20.lab.test"))]);
    h20.os = vec![OsGuess { name: "Linux 6.X".into(), accuracy: 95, classes: vec![] }];
    let crowd = host("198.19.0.7", vec![r1(), r2(), hop(3, Some("198.19.0.7"), None)]);
    let h10 = host("198.18.0.10", vec![hop(1, Some("198.18.0.10"), Some("h10.lab.test"))]);
    let silent = host("10.9.0.1", vec![r1(), hop(2, None, None), hop(3, Some("10.9.0.1"), None)]);
    let silent2 = host("10.9.0.2", vec![r1(), hop(2, None, None), hop(3, Some("10.9.0.2"), None)]);
    let short = host("10.8.0.1", vec![r1()]);
    let down = HostResult::new(ip("10.7.0.1"), HostStatus::Down, Reason::NoResponse);
    vec![h20, crowd, h10, silent, silent2, short, down]
}

fn node<'a>(t: &'a Topology, addr: &str) -> (NodeIndex, &'a Node) {
    t.graph.node_indices().map(|i| (i, &t.graph[i])).find(|(_, n)| n.addrs.contains(&ip(addr))).unwrap()
}

#[test]
fn routers_are_shared_and_every_node_is_typed() {
    let t = Topology::from_hosts(&lab());
    let g = &t.graph;
    let count = |k: NodeKind| g.node_weights().filter(|n| n.kind == k).count();
    assert_eq!(count(NodeKind::Scanner), 1);
    assert_eq!(count(NodeKind::Router), 2, "r1 and r2 once each");
    assert_eq!(count(NodeKind::Target), 6, "the down host is left out");
    assert_eq!(count(NodeKind::Unknown), 1, "one silent hop shared by two traces");
    assert_eq!(g[NodeIndex::new(0)].addrs, [ip("198.18.0.2")]);
    let (r1, r1n) = node(&t, "198.18.0.1");
    let (r2, r2n) = node(&t, "198.18.1.2");
    let (h20, h20n) = node(&t, "198.18.2.10");
    assert_eq!((r1n.kind, r1n.distance, r1n.hostname.as_deref()), (NodeKind::Router, Some(1), Some("r1.lab.test")));
    assert_eq!((r2n.kind, r2n.distance), (NodeKind::Router, Some(2)));
    assert_eq!((h20n.kind, h20n.distance, h20n.os.as_deref()), (NodeKind::Target, Some(3), Some("Linux 6.X")));
    assert_eq!(h20n.open_ports, ["22/tcp"], "closed ports are not shown");
    assert_eq!(h20n.services[0].version.as_deref(), Some("OpenSSH 9.2p1"));
    let me = NodeIndex::new(0);
    let e = |a, b| g.find_edge(a, b).map(|i| &g[i]).unwrap();
    assert_eq!(e(me, r1).weight, 5, "every routed trace starts through r1");
    assert_eq!(e(r1, r2).weight, 2);
    assert_eq!((e(r2, h20).ttl, e(r2, h20).weight), (Some(3), 1));
    assert_eq!(e(r1, r2).rtt_ms(), Some(0.2));
    let (short, _) = node(&t, "10.8.0.1");
    assert!(e(r1, short).inferred, "a trace that stops short joins its host by an inferred edge");
    let (lan, _) = node(&t, "198.18.0.10");
    assert!(!e(me, lan).inferred);
}

#[test]
fn dot_has_the_types_colours_and_edges() {
    let dot = Topology::from_hosts(&lab()).to_dot();
    assert!(dot.starts_with("digraph rustmap {"));
    assert!(dot.contains("type=\"scanner\"") && dot.contains("fillcolor=\"lightblue\""));
    assert!(dot.contains("type=\"router\"") && dot.contains("fillcolor=\"yellow\""));
    assert!(dot.contains("type=\"target\"") && dot.contains("fillcolor=\"palegreen\""));
    assert!(dot.contains("type=\"unknown\"") && dot.contains("label=\"*\""));
    assert!(dot.contains("style=dashed"));
    assert!(dot.contains("label=\"r1.lab.test\\n198.18.0.1\""), "{dot}");
    // Graphviz renders it, when it is installed.
    if let Ok(mut c) = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        c.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "dot: {}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("<svg"));
    }
}

#[test]
fn hostile_names_cannot_break_out_of_dot_or_graphml() {
    let mut h = host("10.0.0.1", vec![hop(1, Some("10.0.0.254"), Some("evil\"]; x [label=\"\\\n<&>"))]);
    h.trace.push(hop(2, Some("10.0.0.1"), None));
    let t = Topology::from_hosts([&h]);
    let dot = t.to_dot();
    assert!(dot.contains(r#"hostname="evil\"]; x [label=\""#), "{dot}");
    // Graphviz sees three nodes and two edges, when it is installed.
    if let Ok(mut c) = std::process::Command::new("dot")
        .arg("-Tplain")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        c.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
        let plain = String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap();
        assert_eq!(plain.lines().filter(|l| l.starts_with("node ")).count(), 3, "{plain}");
        assert_eq!(plain.lines().filter(|l| l.starts_with("edge ")).count(), 2, "{plain}");
    }
    let gml = t.to_graphml();
    let mut r = quick_xml::Reader::from_str(&gml);
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{e}: {gml}"),
        }
    }
}

#[test]
fn graphml_declares_its_keys_and_links_existing_nodes() {
    let gml = Topology::from_hosts(&lab()).to_graphml();
    let mut r = quick_xml::Reader::from_str(&gml);
    let (mut keys, mut nodes, mut edges, mut used) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut root_ns = None;
    loop {
        match r.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let a = |n: &str| {
                    e.attributes()
                        .flatten()
                        .find(|x| x.key.as_ref() == n.as_bytes())
                        .map(|x| String::from_utf8(x.value.into_owned()).unwrap())
                };
                match e.name().as_ref() {
                    b"graphml" => root_ns = a("xmlns"),
                    b"key" => {
                        assert!(matches!(a("for").as_deref(), Some("node" | "edge")));
                        assert!(matches!(a("attr.type").as_deref(), Some("string" | "int" | "double" | "boolean")));
                        keys.push(a("id").unwrap());
                    }
                    b"node" => nodes.push(a("id").unwrap()),
                    b"edge" => edges.push((a("source").unwrap(), a("target").unwrap())),
                    b"data" => used.push(a("key").unwrap()),
                    b"graph" => assert_eq!(a("edgedefault").as_deref(), Some("directed")),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(root_ns.as_deref(), Some("http://graphml.graphdrawing.org/xmlns"));
    assert!(gml.find("<key").unwrap() < gml.find("<graph ").unwrap(), "keys come before the graph");
    assert!(used.iter().all(|k| keys.contains(k)), "every data key is declared");
    assert_eq!(nodes.len(), 10);
    assert!(edges.iter().all(|(s, t)| nodes.contains(s) && nodes.contains(t)));
    assert!(gml.contains("<data key=\"type\">router</data>"));
}

#[test]
fn json_lists_nodes_and_edges() {
    let v = Topology::from_hosts(&lab()).to_json("01TEST");
    assert_eq!(
        (v["format"].as_str(), v["version"].as_u64(), v["scan_id"].as_str()),
        (Some("rustmap-topology"), Some(1), Some("01TEST"))
    );
    let nodes = v["nodes"].as_array().unwrap();
    let h20 = nodes.iter().find(|n| n["ip"] == "198.18.2.10").unwrap();
    assert_eq!(h20["type"], "target");
    assert_eq!(h20["distance"], 3);
    assert_eq!(h20["services"][0]["name"], "ssh");
    assert_eq!(h20["open_ports"][0], "22/tcp");
    assert_eq!(nodes[0]["type"], "scanner");
    let edges = v["edges"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert!(edges.iter().all(|e| ids.contains(&e["source"].as_str().unwrap()) && e["weight"].as_u64() >= Some(1)));
}

#[test]
fn a_file_is_replaced_whole_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.dot");
    std::fs::write(&path, "old").unwrap();
    let mut w = TopologyWriter::file(TopologyFormat::Dot, &path).unwrap();
    for h in lab() {
        w.event(&ScanEvent::HostDone(h)).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old", "untouched until the end");
    w.finish().unwrap();
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("digraph"));
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left behind");
    assert!(TopologyWriter::file(TopologyFormat::Json, &dir.path().join("no/such/dir/x.json")).is_err());
}
