//! Topology graphs (`--topology dot|graphml|json`, `--topology-output FILE`): the traced routes
//! to every host that is up, as one graph, written at the end of the scan.
//!
//! Nodes are typed: `scanner` (this machine, blue), `router` (a hop that answered, yellow),
//! `target` (a scanned host, green) and `unknown` (a silent hop, `*`, gray). A router seen on
//! several traces is one node (by address); a silent hop is one node per (previous node, TTL),
//! so traces that share a silent hop share its node too. A scanned host that also forwards for
//! others stays a target. Node properties: IP address(es), host name, distance (TTL), and for
//! targets the open ports, services and OS. Edges join consecutive hops of a trace and carry the
//! far end's TTL, its mean round trip (ms) over the traces using the edge, and their number
//! (`weight`). A trace that stops before its host gets an `inferred` edge from its last hop to
//! the host (dashed in DOT).
//!
//! Formats:
//! - **DOT** (Graphviz: `dot -Tsvg network.dot -o network.svg`): `digraph`, left to right, nodes
//!   filled with their type's colour, custom attributes `type`, `ip`, `hostname`, `open_ports`,
//!   `services`, `os` on nodes and `ttl`, `rtt`, `weight`, `inferred` on edges.
//! - **GraphML** (Gephi, yEd, Cytoscape): the GraphML 1.0 namespace and schema location, one
//!   `<key>` per property (`attr.name`, `attr.type`), a directed `<graph>`.
//! - **JSON**: `{"format": "rustmap-topology", "version": 1, "scan_id", "nodes": [...],
//!   "edges": [...]}`; docs/usage.md § Network topology has the schema.
//!
//! A file is written whole or not at all: into a temporary file beside it, created when the scan
//! starts (so an unwritable directory is an error before anything is sent), renamed over the
//! target at the end.

use crate::common::is_openish;
use crate::{Control, Sink, SinkError};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use quick_xml::escape::escape;
use rustmap_model::config::TopologyFormat;
use rustmap_model::{neutralize, HostResult, HostStatus, ScanEvent, TraceHop};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A node's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// This machine.
    Scanner,
    /// A hop that answered.
    Router,
    /// A scanned host.
    Target,
    /// A silent hop.
    Unknown,
}

impl NodeKind {
    /// Its name in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Scanner => "scanner",
            NodeKind::Router => "router",
            NodeKind::Target => "target",
            NodeKind::Unknown => "unknown",
        }
    }

    /// Its colour (a Graphviz/X11 name).
    pub fn color(self) -> &'static str {
        match self {
            NodeKind::Scanner => "lightblue",
            NodeKind::Router => "yellow",
            NodeKind::Target => "palegreen",
            NodeKind::Unknown => "lightgray",
        }
    }
}

/// A service on a target's open port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Port number.
    pub port: u16,
    /// `tcp`, `udp`, `sctp`.
    pub protocol: String,
    /// Service name.
    pub name: String,
    /// Product and version, when detection found them.
    pub version: Option<String>,
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its type.
    pub kind: NodeKind,
    /// Its addresses (several for the scanner with IPv4 and IPv6 traces; none for a silent hop).
    pub addrs: Vec<IpAddr>,
    /// Its name.
    pub hostname: Option<String>,
    /// Its distance from the scanner in hops (0 for the scanner).
    pub distance: Option<u8>,
    /// Open ports (`22/tcp`), targets only.
    pub open_ports: Vec<String>,
    /// Services on them.
    pub services: Vec<Service>,
    /// Best OS guess.
    pub os: Option<String>,
}

impl Node {
    fn new(kind: NodeKind) -> Node {
        Node {
            kind,
            addrs: Vec::new(),
            hostname: None,
            distance: None,
            open_ports: Vec::new(),
            services: Vec::new(),
            os: None,
        }
    }

    /// The text shown on the node: its name, address, and a target's open services.
    pub fn label(&self) -> Vec<String> {
        let mut l = Vec::new();
        match self.kind {
            NodeKind::Unknown => return vec!["*".into()],
            NodeKind::Scanner => l.push("scanner".into()),
            _ => {}
        }
        l.extend(self.hostname.clone());
        l.extend(self.addrs.iter().map(|a| a.to_string()));
        for s in &self.services {
            l.push(format!("{}/{} {}", s.port, s.protocol, s.name));
        }
        l
    }
}

/// An edge: consecutive hops of one or more traces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edge {
    /// TTL of its far end (none for an inferred edge).
    pub ttl: Option<u8>,
    rtt_sum_us: u64,
    rtt_count: u32,
    /// Traces using it.
    pub weight: u32,
    /// Not seen: a trace that stopped short, joined to its host.
    pub inferred: bool,
}

impl Edge {
    /// Mean round trip to its far end, in milliseconds.
    pub fn rtt_ms(&self) -> Option<f64> {
        (self.rtt_count > 0).then(|| self.rtt_sum_us as f64 / f64::from(self.rtt_count) / 1000.0)
    }
}

/// The graph of the traced routes.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Nodes and edges; node 0 is the scanner.
    pub graph: DiGraph<Node, Edge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    Silent(NodeIndex, u8),
}

impl Topology {
    /// The graph of these hosts' traces (hosts that are not up are left out).
    pub fn from_hosts<'a>(hosts: impl IntoIterator<Item = &'a HostResult>) -> Topology {
        let mut hosts: Vec<&HostResult> = hosts.into_iter().filter(|h| h.status == HostStatus::Up).collect();
        hosts.sort_by_key(|h| h.addr);
        let mut g: DiGraph<Node, Edge> = DiGraph::new();
        let mut scanner = Node::new(NodeKind::Scanner);
        scanner.distance = Some(0);
        let me = g.add_node(scanner);
        let mut at: HashMap<Key, NodeIndex> = HashMap::new();
        for h in &hosts {
            let mut n = Node::new(NodeKind::Target);
            n.addrs.push(h.addr);
            n.hostname = h.display_name().map(|s| neutralize(s).into_owned());
            for p in h.ports.iter().filter(|p| is_openish(p.state)) {
                n.open_ports.push(format!("{}/{}", p.port, p.protocol));
                if let Some(s) = &p.service {
                    let v = neutralize(&s.version_line()).trim().to_string();
                    n.services.push(Service {
                        port: p.port,
                        protocol: p.protocol.to_string(),
                        name: neutralize(&s.display_name()).into_owned(),
                        version: (!v.is_empty()).then_some(v),
                    });
                }
            }
            n.os = h.os.first().map(|o| neutralize(&o.name).into_owned());
            let i = g.add_node(n);
            at.insert(Key::Addr(h.addr), i);
            if let Some(src) = h.trace_probe.and_then(|p| p.source) {
                if !g[me].addrs.contains(&src) {
                    g[me].addrs.push(src);
                }
            }
        }
        for h in &hosts {
            let target = at[&Key::Addr(h.addr)];
            let mut prev = me;
            let mut reached = false;
            for hop in &h.trace {
                let key = match hop.addr {
                    Some(a) => Key::Addr(a),
                    None => Key::Silent(prev, hop.ttl),
                };
                let node = *at.entry(key).or_insert_with(|| {
                    let mut n = Node::new(if hop.addr.is_some() { NodeKind::Router } else { NodeKind::Unknown });
                    n.addrs.extend(hop.addr);
                    n.hostname = hop.hostname.as_deref().map(|s| neutralize(s).into_owned());
                    g.add_node(n)
                });
                let d = &mut g[node].distance;
                *d = Some(d.map_or(hop.ttl, |x| x.min(hop.ttl)));
                add_edge(&mut g, prev, node, Some(hop), false);
                prev = node;
                if hop.addr == Some(h.addr) {
                    reached = true;
                    break;
                }
            }
            if !reached {
                add_edge(&mut g, prev, target, None, true);
            }
        }
        Topology { graph: g }
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        // Every string is sanitized already (no control characters); DOT needs `\` and `"` escaped.
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let q = |s: &str| format!("\"{}\"", esc(s));
        let mut o = String::from("digraph rustmap {\n");
        o.push_str("  graph [rankdir=LR, fontname=\"Helvetica\", label=\"RustMap topology\"];\n");
        o.push_str("  node [style=filled, fontname=\"Helvetica\", fontsize=10];\n");
        o.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
        for i in self.graph.node_indices() {
            let n = &self.graph[i];
            let label = n.label().iter().map(|l| esc(l)).collect::<Vec<_>>();
            let shape = match n.kind {
                NodeKind::Scanner | NodeKind::Target => "box",
                NodeKind::Router => "ellipse",
                NodeKind::Unknown => "circle",
            };
            let mut attrs = vec![
                format!("label=\"{}\"", label.join("\\n")),
                format!("shape={shape}"),
                format!("fillcolor={}", q(n.kind.color())),
                format!("type={}", q(n.kind.as_str())),
            ];
            if !n.addrs.is_empty() {
                let ips: Vec<String> = n.addrs.iter().map(|a| a.to_string()).collect();
                attrs.push(format!("ip={}", q(&ips.join(","))));
            }
            if let Some(h) = &n.hostname {
                attrs.push(format!("hostname={}", q(h)));
            }
            if let Some(d) = n.distance {
                attrs.push(format!("distance={d}"));
            }
            if !n.open_ports.is_empty() {
                attrs.push(format!("open_ports={}", q(&n.open_ports.join(","))));
            }
            if !n.services.is_empty() {
                attrs.push(format!("services={}", q(&services_text(&n.services))));
            }
            if let Some(os) = &n.os {
                attrs.push(format!("os={}", q(os)));
            }
            o.push_str(&format!("  n{} [{}];\n", i.index(), attrs.join(", ")));
        }
        for e in self.graph.edge_references() {
            let w = e.weight();
            let mut attrs = Vec::new();
            let mut label = Vec::new();
            if let Some(t) = w.ttl {
                label.push(format!("ttl {t}"));
                attrs.push(format!("ttl={t}"));
            }
            if let Some(ms) = w.rtt_ms() {
                label.push(format!("{ms:.2} ms"));
                attrs.push(format!("rtt=\"{ms:.2}\""));
            }
            attrs.push(format!("weight={}", w.weight));
            if w.inferred {
                attrs.push("style=dashed".into());
                attrs.push("inferred=true".into());
            }
            if !label.is_empty() {
                attrs.insert(0, format!("label=\"{}\"", label.join("\\n")));
            }
            o.push_str(&format!("  n{} -> n{} [{}];\n", e.source().index(), e.target().index(), attrs.join(", ")));
        }
        o.push_str("}\n");
        o
    }

    /// GraphML 1.0.
    pub fn to_graphml(&self) -> String {
        let x = |s: &str| escape(s).into_owned();
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        o.push_str(
            "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
             http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n",
        );
        for (id, on, ty) in GRAPHML_KEYS {
            o.push_str(&format!("  <key id=\"{id}\" for=\"{on}\" attr.name=\"{id}\" attr.type=\"{ty}\"/>\n"));
        }
        o.push_str("  <graph id=\"rustmap\" edgedefault=\"directed\">\n");
        for i in self.graph.node_indices() {
            let n = &self.graph[i];
            o.push_str(&format!("    <node id=\"n{}\">\n", i.index()));
            let mut data = |k: &str, v: String| o.push_str(&format!("      <data key=\"{k}\">{v}</data>\n"));
            data("type", n.kind.as_str().into());
            data("color", n.kind.color().into());
            data("label", x(&n.label().join(" ")));
            if let Some(a) = n.addrs.first() {
                data("ip", a.to_string());
            }
            if n.addrs.len() > 1 {
                data("addresses", n.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","));
            }
            if let Some(h) = &n.hostname {
                data("hostname", x(h));
            }
            if let Some(d) = n.distance {
                data("distance", d.to_string());
            }
            if !n.open_ports.is_empty() {
                data("open_ports", x(&n.open_ports.join(",")));
            }
            if !n.services.is_empty() {
                data("services", x(&services_text(&n.services)));
            }
            if let Some(os) = &n.os {
                data("os", x(os));
            }
            o.push_str("    </node>\n");
        }
        for e in self.graph.edge_references() {
            let w = e.weight();
            o.push_str(&format!(
                "    <edge id=\"e{}\" source=\"n{}\" target=\"n{}\">\n",
                e.id().index(),
                e.source().index(),
                e.target().index()
            ));
            if let Some(t) = w.ttl {
                o.push_str(&format!("      <data key=\"ttl\">{t}</data>\n"));
            }
            if let Some(ms) = w.rtt_ms() {
                o.push_str(&format!("      <data key=\"rtt_ms\">{ms:.3}</data>\n"));
            }
            o.push_str(&format!("      <data key=\"weight\">{}</data>\n", w.weight));
            o.push_str(&format!("      <data key=\"inferred\">{}</data>\n", w.inferred));
            o.push_str("    </edge>\n");
        }
        o.push_str("  </graph>\n</graphml>\n");
        o
    }

    /// RustMap's JSON graph.
    pub fn to_json(&self, scan_id: &str) -> Value {
        let nodes: Vec<Value> = self
            .graph
            .node_indices()
            .map(|i| {
                let n = &self.graph[i];
                let services: Vec<Value> = n
                    .services
                    .iter()
                    .map(|s| json!({"port": s.port, "protocol": s.protocol, "name": s.name, "version": s.version}))
                    .collect();
                json!({
                    "id": format!("n{}", i.index()),
                    "type": n.kind.as_str(),
                    "label": n.label().join(" "),
                    "ip": n.addrs.first().map(|a| a.to_string()),
                    "addresses": n.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "hostname": n.hostname,
                    "distance": n.distance,
                    "open_ports": n.open_ports,
                    "services": services,
                    "os": n.os,
                })
            })
            .collect();
        let edges: Vec<Value> = self
            .graph
            .edge_references()
            .map(|e| {
                let w = e.weight();
                json!({
                    "source": format!("n{}", e.source().index()),
                    "target": format!("n{}", e.target().index()),
                    "ttl": w.ttl,
                    "rtt_ms": w.rtt_ms().map(|ms| (ms * 1000.0).round() / 1000.0),
                    "weight": w.weight,
                    "inferred": w.inferred,
                })
            })
            .collect();
        json!({"format": "rustmap-topology", "version": 1, "scan_id": scan_id, "nodes": nodes, "edges": edges})
    }

    /// The graph in `format`.
    pub fn render(&self, format: TopologyFormat, scan_id: &str) -> String {
        match format {
            TopologyFormat::Dot => self.to_dot(),
            TopologyFormat::Graphml => self.to_graphml(),
            TopologyFormat::Json => {
                let mut s = serde_json::to_string_pretty(&self.to_json(scan_id)).unwrap_or_default();
                s.push('\n');
                s
            }
        }
    }
}

/// GraphML keys: id (also the attribute name), what they are for, their type.
const GRAPHML_KEYS: [(&str, &str, &str); 14] = [
    ("type", "node", "string"),
    ("color", "node", "string"),
    ("label", "node", "string"),
    ("ip", "node", "string"),
    ("addresses", "node", "string"),
    ("hostname", "node", "string"),
    ("distance", "node", "int"),
    ("open_ports", "node", "string"),
    ("services", "node", "string"),
    ("os", "node", "string"),
    ("ttl", "edge", "int"),
    ("rtt_ms", "edge", "double"),
    ("weight", "edge", "int"),
    ("inferred", "edge", "boolean"),
];

fn services_text(s: &[Service]) -> String {
    s.iter()
        .map(|s| match &s.version {
            Some(v) => format!("{}/{} {} {v}", s.port, s.protocol, s.name),
            None => format!("{}/{} {}", s.port, s.protocol, s.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn add_edge(g: &mut DiGraph<Node, Edge>, a: NodeIndex, b: NodeIndex, hop: Option<&TraceHop>, inferred: bool) {
    let i = match g.find_edge(a, b) {
        Some(i) => i,
        None => g.add_edge(a, b, Edge { ttl: hop.map(|h| h.ttl), inferred, ..Edge::default() }),
    };
    let e = &mut g[i];
    e.weight += 1;
    if let Some(us) = hop.and_then(|h| h.rtt_us) {
        e.rtt_sum_us = e.rtt_sum_us.saturating_add(us);
        e.rtt_count += 1;
    }
}

/// Where the graph goes.
enum Target {
    Stdout,
    File { path: PathBuf, tmp: Option<tempfile::NamedTempFile> },
}

/// The topology sink: keeps every finished host that is up and writes the graph at the end.
pub struct TopologyWriter {
    format: TopologyFormat,
    target: Target,
    scan_id: String,
    hosts: Vec<HostResult>,
}

impl TopologyWriter {
    /// A writer to standard output.
    pub fn stdout(format: TopologyFormat) -> TopologyWriter {
        TopologyWriter { format, target: Target::Stdout, scan_id: String::new(), hosts: Vec::new() }
    }

    /// A writer to `path`, replaced whole at the end. The temporary file beside it is created
    /// now, so a directory that cannot be written to is an error before the scan.
    pub fn file(format: TopologyFormat, path: &Path) -> std::io::Result<TopologyWriter> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
        Ok(TopologyWriter {
            format,
            target: Target::File { path: path.to_path_buf(), tmp: Some(tmp) },
            scan_id: String::new(),
            hosts: Vec::new(),
        })
    }
}

impl Sink for TopologyWriter {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => self.scan_id = info.scan_id.clone(),
            ScanEvent::HostDone(h) if h.status == HostStatus::Up => {
                // Only what the graph shows: no certificates, scripts or fingerprints.
                let mut h = h.clone();
                h.extraports.clear();
                h.ports.retain(|p| is_openish(p.state));
                for p in &mut h.ports {
                    p.tls = None;
                    p.scripts.clear();
                    if let Some(s) = p.service.as_mut() {
                        s.fingerprint = None;
                    }
                }
                self.hosts.push(h);
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let text = Topology::from_hosts(&self.hosts).render(self.format, &self.scan_id);
        match &mut self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Target::File { path, tmp } => {
                let Some(mut f) = tmp.take() else { return Ok(()) };
                f.write_all(text.as_bytes())?;
                // The temporary file is private (0600); the graph gets the permissions of the
                // file it replaces, or those of a new file.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let perms = std::fs::metadata(&*path)
                        .map(|m| m.permissions())
                        .unwrap_or_else(|_| std::fs::Permissions::from_mode(0o644));
                    f.as_file().set_permissions(perms)?;
                }
                f.as_file().sync_all()?;
                f.persist(&*path).map_err(|e| SinkError::Io(e.error))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
