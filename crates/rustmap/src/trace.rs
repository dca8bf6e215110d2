//! The pipeline's trace stage: `--traceroute` and `--mtu-discovery` for each finished host that
//! is up, after service detection and before its `HostDone`. The engine's [`Tracer`] sends the
//! probes; this side picks the probe from what the scan found, names the hops by reverse DNS
//! (the scan's resolver, not with `-n`; each address looked up once per scan), folds the
//! results into the host and returns its `TraceHop` events.

use crate::dns::Resolver;
use crate::ReverseDns;
use rustmap_engine::trace::{choose_probe, distance_from_ttl, TraceRequest, Tracer};
use rustmap_model::{HostResult, HostStatus, ScanEvent};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Hop names kept per scan at most (routers repeat; a huge sweep must not grow it forever).
const NAMES_MAX: usize = 1 << 14;

/// What `--traceroute` and `--mtu-discovery` asked for, checked.
#[derive(Debug, Clone, Default)]
pub struct PathPlan {
    /// Trace every host that is up (`--traceroute`, or implied by `--topology`).
    pub traceroute: bool,
    /// Find every IPv4 host's path MTU (`--mtu-discovery`).
    pub mtu: bool,
    /// The topology graph: its format and file (`None`: standard output).
    pub topology: Option<(rustmap_model::config::TopologyFormat, Option<String>)>,
}

impl PathPlan {
    /// Does the stage send anything?
    pub fn probes(&self) -> bool {
        self.traceroute || self.mtu
    }
}

/// The stage: the tracer, and the names of hops already looked up.
pub(crate) struct TraceStage {
    tracer: Tracer,
    traceroute: bool,
    mtu: bool,
    resolver: Resolver,
    reverse: ReverseDns,
    names: Mutex<HashMap<IpAddr, Option<String>>>,
}

impl TraceStage {
    pub(crate) fn new(tracer: Tracer, plan: &PathPlan, resolver: Resolver, reverse: ReverseDns) -> TraceStage {
        TraceStage {
            tracer,
            traceroute: plan.traceroute,
            mtu: plan.mtu,
            resolver,
            reverse,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Does this host go through the stage?
    pub(crate) fn wants(&self, h: &HostResult) -> bool {
        h.status == HostStatus::Up
    }

    /// The name of a hop's address, looked up once per scan.
    async fn name(&self, ip: IpAddr) -> Option<String> {
        if self.reverse == ReverseDns::Never {
            return None;
        }
        if let Some(n) = self.names.lock().ok()?.get(&ip) {
            return n.clone();
        }
        let name = self.resolver.reverse(ip).await;
        if let Ok(mut m) = self.names.lock() {
            if m.len() >= NAMES_MAX {
                m.clear();
            }
            m.insert(ip, name.clone());
        }
        name
    }

    /// Trace `h` (and find its path MTU, as asked), fold what was found into it, and return its
    /// `TraceHop` events. Nothing when the stage stopped (a cancelled scan).
    pub(crate) async fn run(self: &Arc<Self>, h: &mut HostResult) -> Vec<ScanEvent> {
        // The distance hint: the TTL of the answer that found the host up, else of a port's.
        let ttl = Some(h.reason_ttl)
            .filter(|t| *t > 0)
            .or_else(|| h.ports.iter().map(|p| p.reason_ttl).find(|t| *t > 0))
            .unwrap_or(0);
        let req = TraceRequest {
            addr: h.addr,
            probe: choose_probe(h),
            distance: distance_from_ttl(ttl),
            srtt: h.srtt_us.map(Duration::from_micros),
            traceroute: self.traceroute,
            mtu: self.mtu,
        };
        let Some(out) = self.tracer.trace(req).await else { return Vec::new() };
        h.path_mtu = out.path_mtu;
        if !self.traceroute {
            return Vec::new();
        }
        let mut hops = out.hops;
        for hop in &mut hops {
            if let Some(a) = hop.addr {
                hop.hostname = self.name(a).await;
            }
        }
        h.trace_probe = Some(out.probe);
        h.trace = hops.clone();
        hops.into_iter().map(|hop| ScanEvent::TraceHop { addr: h.addr, hop }).collect()
    }
}
