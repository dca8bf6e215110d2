//! Comparing two stored scans, as ndiff compares two nmap XML files: hosts that appeared or went
//! away, ports whose state changed (a port folded into "not shown" counts as its folded state,
//! or as not listed), and services or versions that changed.

use crate::{Store, StoreError};
use rustmap_model::{HostResult, HostStatus, Protocol};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What changed on one port. `None` is "not listed" (folded into the not-shown counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortChange {
    /// Its protocol.
    pub protocol: Protocol,
    /// The port.
    pub port: u16,
    /// State before and after.
    pub state: (Option<String>, Option<String>),
    /// Service (name, product and version) before and after, when it changed.
    pub service: (Option<String>, Option<String>),
}

/// What changed on one host present in both scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostChange {
    /// The host.
    pub addr: String,
    /// Its status before and after, when it changed.
    pub status: Option<(String, String)>,
    /// Its ports that changed.
    pub ports: Vec<PortChange>,
}

/// The difference between two stored scans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanDiff {
    /// The earlier scan.
    pub from: String,
    /// The later scan.
    pub to: String,
    /// Hosts up in `to` only, with their open ports (`22/tcp ssh`).
    pub hosts_new: Vec<(String, Vec<String>)>,
    /// Hosts up in `from` only.
    pub hosts_gone: Vec<String>,
    /// Hosts in both whose status or ports changed.
    pub changed: Vec<HostChange>,
}

impl ScanDiff {
    /// Whether the two scans found the same.
    pub fn is_empty(&self) -> bool {
        self.hosts_new.is_empty() && self.hosts_gone.is_empty() && self.changed.is_empty()
    }

    /// The difference as text, one line per change: `+` new, `-` gone, ` ` changed.
    pub fn to_text(&self) -> String {
        let mut out = format!("Differences from scan {} to scan {}:\n", self.from, self.to);
        if self.is_empty() {
            out.push_str("  none\n");
        }
        for (addr, ports) in &self.hosts_new {
            let _ = writeln!(out, "+{addr}: new host{}{}", if ports.is_empty() { "" } else { ": " }, ports.join(", "));
        }
        for addr in &self.hosts_gone {
            let _ = writeln!(out, "-{addr}: gone");
        }
        for h in &self.changed {
            let _ = writeln!(out, " {}:", h.addr);
            if let Some((a, b)) = &h.status {
                let _ = writeln!(out, "    host {a} -> {b}");
            }
            for p in &h.ports {
                let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "not listed".into());
                let _ = write!(out, "    {}/{}:", p.port, p.protocol);
                if p.state.0 != p.state.1 {
                    let _ = write!(out, " {} -> {}", show(&p.state.0), show(&p.state.1));
                }
                if p.service.0 != p.service.1 {
                    let _ = write!(out, " service {} -> {}", show(&p.service.0), show(&p.service.1));
                }
                out.push('\n');
            }
        }
        out
    }
}

fn service_of(p: &rustmap_model::PortResult) -> Option<String> {
    p.service.as_ref().map(|s| {
        let v = s.version_line();
        if v.is_empty() {
            s.display_name()
        } else {
            format!("{} {v}", s.display_name())
        }
    })
}

fn ports_of(h: &HostResult) -> BTreeMap<(Protocol, u16), (String, Option<String>)> {
    h.ports.iter().map(|p| ((p.protocol, p.port), (p.state.as_str().to_string(), service_of(p)))).collect()
}

fn up(hosts: Vec<HostResult>) -> BTreeMap<String, HostResult> {
    hosts.into_iter().filter(|h| h.status == HostStatus::Up).map(|h| (h.addr.to_string(), h)).collect()
}

/// Compare two stored scans, `from` (earlier) and `to` (later), by id.
pub fn diff(store: &Store, from: &str, to: &str) -> Result<ScanDiff, StoreError> {
    let a = up(store.hosts(from)?);
    let b = up(store.hosts(to)?);
    let mut d = ScanDiff {
        from: from.to_string(),
        to: to.to_string(),
        hosts_new: Vec::new(),
        hosts_gone: Vec::new(),
        changed: Vec::new(),
    };
    for (addr, h) in &b {
        if !a.contains_key(addr) {
            let open = h
                .ports
                .iter()
                .filter(|p| p.state == rustmap_model::PortState::Open)
                .map(|p| {
                    format!("{}/{}{}", p.port, p.protocol, service_of(p).map(|s| format!(" {s}")).unwrap_or_default())
                })
                .collect();
            d.hosts_new.push((addr.clone(), open));
        }
    }
    for (addr, ha) in &a {
        let Some(hb) = b.get(addr) else {
            d.hosts_gone.push(addr.clone());
            continue;
        };
        let (pa, pb) = (ports_of(ha), ports_of(hb));
        let mut keys: Vec<&(Protocol, u16)> = pa.keys().chain(pb.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut ports = Vec::new();
        for k in keys {
            let (x, y) = (pa.get(k), pb.get(k));
            let state = (x.map(|v| v.0.clone()), y.map(|v| v.0.clone()));
            let service = (x.and_then(|v| v.1.clone()), y.and_then(|v| v.1.clone()));
            // A port listed on one side only, not open on the other, with nothing else to say, is
            // the folding moving (more or fewer ports of a state than the threshold), not a change.
            let open_either = state.0.as_deref() == Some("open") || state.1.as_deref() == Some("open");
            let one_sided = x.is_none() || y.is_none();
            if state.0 != state.1 && (!one_sided || open_either)
                || (x.is_some() && y.is_some() && service.0 != service.1)
            {
                ports.push(PortChange { protocol: k.0, port: k.1, state, service });
            }
        }
        if !ports.is_empty() {
            d.changed.push(HostChange { addr: addr.clone(), status: None, ports });
        }
    }
    Ok(d)
}
