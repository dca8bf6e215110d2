//! The event loop of one engine run: each engine event is enriched (service names from the port
//! table, `-sV`, `-O`, traceroute and path MTU, reverse DNS) and delivered to the [`Hub`] in order; the first open port is
//! announced (`FirstOpenPort`).
//!
//! With `--fast-discovery`, hosts seen up recently start up without discovery (reason
//! `seen-up`). Their events are held until their `HostDone`: a host that answered something
//! (a port open, closed or unfiltered) is delivered as any other; a host that answered nothing
//! may have gone down (or answers only discovery probes, as a firewalled host may answer ARP),
//! so its events are dropped and it is kept in [`Pump::retry`] for a second run, with discovery.
//! A cancelled scan delivers what it holds.

use crate::dns::{self, Resolver};
use crate::enrich::EnrichStage;
use crate::osdetect::OsStage;
use crate::pipeline::{add_service_names, detect_host, detectable, flood_examined, flood_warning, Hub};
use crate::scripts::ScriptStage;
use crate::trace::TraceStage;
use crate::{ReverseDns, ScanPlan, TICK_EVERY};
use rustmap_detect::Detector;
use rustmap_engine::report::unix_now;
use rustmap_engine::ScanTarget;
use rustmap_model::{HostResult, HostStatus, Hostname, HostnameKind, PortState, Reason, ScanEvent};
use rustmap_targets::PortTable;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the event loop keeps across engine runs.
pub(crate) struct Pump {
    pub(crate) plan: Arc<ScanPlan>,
    pub(crate) detector: Option<Arc<Detector>>,
    /// `-O`.
    pub(crate) os: Option<Arc<OsStage>>,
    /// `--traceroute`, `--mtu-discovery`.
    pub(crate) trace: Option<Arc<TraceStage>>,
    /// `--script`, `-sC`.
    pub(crate) scripts: Option<Arc<ScriptStage>>,
    /// `--vuln-check`, `--geoip`.
    pub(crate) enrich: Option<Arc<EnrichStage>>,
    /// `--cloud`: the instance of each cloud address.
    pub(crate) cloud: Arc<crate::cloud::CloudMap>,
    pub(crate) resolver: Resolver,
    pub(crate) cancel: CancellationToken,
    /// When the scan started, for `FirstOpenPort`.
    pub(crate) started: Instant,
    pub(crate) first_open: bool,
    /// Events of hosts started as seen up, until their `HostDone` tells whether they answered.
    pub(crate) held: HashMap<IpAddr, Vec<ScanEvent>>,
    /// Hosts seen up that answered nothing: to run through discovery.
    pub(crate) retry: Vec<ScanTarget>,
}

/// Resolves when the host has used up its `--host-timeout` (which covers detection and scripts
/// too): what is left of it after the port scan (whole seconds: the host's start is kept in
/// them). Never without a host timeout.
async fn out_of_time(host_timeout: Option<Duration>, start_unix: i64) {
    let left = host_timeout.map(|t| {
        let spent = u64::try_from(unix_now().saturating_sub(start_unix)).unwrap_or(0);
        t.saturating_sub(Duration::from_secs(spent))
    });
    match left {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Did the port scan get any answer from this host?
fn answered(h: &HostResult) -> bool {
    let answer = |s: PortState| matches!(s, PortState::Open | PortState::Closed | PortState::Unfiltered);
    h.ports.iter().any(|p| answer(p.state)) || h.extraports.iter().any(|e| answer(e.state))
}

impl Pump {
    /// Hold the events of hosts started as seen up; `Some(ev)` is to be handled now.
    async fn hold(&mut self, hub: &mut Hub, ev: ScanEvent) -> Option<ScanEvent> {
        let addr = match &ev {
            ScanEvent::HostUp { addr, reason: Reason::SeenUp, .. } => {
                self.held.entry(*addr).or_default();
                *addr
            }
            ScanEvent::HostUp { addr, .. } | ScanEvent::PortFound { addr, .. } => *addr,
            ScanEvent::HostDone(h) => h.addr,
            _ => return Some(ev),
        };
        if !self.held.contains_key(&addr) {
            return Some(ev);
        }
        let ScanEvent::HostDone(h) = &ev else {
            self.held.entry(addr).or_default().push(ev);
            return None;
        };
        let before = self.held.remove(&addr).unwrap_or_default();
        if answered(h) || self.cancel.is_cancelled() {
            for e in before {
                self.deliver(hub, e).await;
            }
            return Some(ev);
        }
        let hostnames = h.hostnames.iter().filter(|n| n.kind == HostnameKind::User).cloned().collect();
        self.retry.push(ScanTarget { addr, hostnames });
        None
    }

    /// Deliver an event, announcing the scan's first open port after its `PortFound`.
    async fn deliver(&mut self, hub: &mut Hub, ev: ScanEvent) {
        let first = match &ev {
            ScanEvent::PortFound { addr, port } if !self.first_open && port.state == PortState::Open => {
                self.first_open = true;
                let after_secs = self.started.elapsed().as_secs_f64();
                Some(ScanEvent::FirstOpenPort { addr: *addr, protocol: port.protocol, port: port.port, after_secs })
            }
            _ => None,
        };
        hub.deliver(ev).await;
        if let Some(first) = first {
            hub.deliver(first).await;
        }
    }

    /// Handle every event of one engine run, until it closes its channel and every lookup is
    /// delivered.
    pub(crate) async fn run(&mut self, hub: &mut Hub, mut erx: mpsc::Receiver<ScanEvent>) {
        let plan = Arc::clone(&self.plan);
        let table = PortTable::builtin();
        let mut lookups: JoinSet<Vec<ScanEvent>> = JoinSet::new();
        let max_lookups = dns::MAX_PARALLEL_PTR;
        let mut ticker = tokio::time::interval(TICK_EVERY);
        // After a stall, one tick, not a burst of them.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = erx.recv(), if lookups.len() < max_lookups => {
                    let Some(mut ev) = ev else { break };
                    match &mut ev {
                        ScanEvent::PortFound { port, .. } => add_service_names(std::slice::from_mut(port), table),
                        ScanEvent::HostDone(h) => {
                            add_service_names(&mut h.ports, table);
                            if let Some(i) = self.cloud.get(&h.addr) {
                                crate::enrich::attach_cloud(h, i);
                            }
                        }
                        _ => {}
                    }
                    let Some(mut ev) = self.hold(hub, ev).await else { continue };
                    let wants_ptr = match &ev {
                        // A socks5h:// placeholder is no address of the host: nothing to look up.
                        ScanEvent::HostDone(h) if plan.socks.as_ref().is_some_and(|s| s.is_placeholder(h.addr)) => false,
                        ScanEvent::HostDone(h) => match plan.reverse_dns {
                            ReverseDns::Never => false,
                            ReverseDns::UpHosts => h.status != HostStatus::Down,
                            ReverseDns::Always => true,
                        },
                        _ => false,
                    };
                    let detect = match (&ev, &self.detector) {
                        (ScanEvent::HostDone(h), Some(d)) if h.status == HostStatus::Up && h.ports.iter().any(|p| detectable(p).is_some()) => Some(Arc::clone(d)),
                        _ => None,
                    };
                    let os = match (&ev, &self.os) {
                        (ScanEvent::HostDone(h), Some(s)) if s.wants(h) => Some(Arc::clone(s)),
                        _ => None,
                    };
                    let trace = match (&ev, &self.trace) {
                        (ScanEvent::HostDone(h), Some(t)) if t.wants(h) => Some(Arc::clone(t)),
                        _ => None,
                    };
                    let scripts = match (&ev, &self.scripts) {
                        (ScanEvent::HostDone(h), Some(s)) if s.wants(h) => Some(Arc::clone(s)),
                        _ => None,
                    };
                    let enrich = match (&ev, &self.enrich) {
                        (ScanEvent::HostDone(h), Some(s)) if s.wants(h) => Some(Arc::clone(s)),
                        _ => None,
                    };
                    if wants_ptr || detect.is_some() || os.is_some() || trace.is_some() || scripts.is_some() || enrich.is_some() {
                        let resolver = self.resolver.clone();
                        let cancel = self.cancel.clone();
                        let host_timeout = plan.timing.host_timeout;
                        lookups.spawn(async move {
                            let mut events = Vec::new();
                            if let ScanEvent::HostDone(h) = &mut ev {
                                let start_unix = h.start_unix;
                                if (detect.is_some() || scripts.is_some()) && flood_examined(h).is_some() {
                                    events.push(flood_warning(h));
                                }
                                if let Some(det) = detect {
                                    tokio::select! {
                                        found = detect_host(&det, h) => events.extend(found),
                                        _ = out_of_time(host_timeout, start_unix) => h.timed_out = true,
                                        _ = cancel.cancelled() => {}
                                    }
                                }
                                // After detection: the services' OS hints count in the match.
                                let os_again = os.clone();
                                if let Some(s) = os.filter(|_| !h.timed_out) {
                                    tokio::select! {
                                        found = s.run(h, unix_now()) => events.extend(found),
                                        _ = out_of_time(host_timeout, start_unix) => h.timed_out = true,
                                        _ = cancel.cancelled() => {}
                                    }
                                }
                                if let Some(t) = trace {
                                    tokio::select! {
                                        hops = t.run(h) => events.extend(hops),
                                        _ = cancel.cancelled() => {}
                                    }
                                }
                                if wants_ptr {
                                    if let Some(name) = resolver.reverse(h.addr).await {
                                        h.hostnames.push(Hostname { name, kind: HostnameKind::Ptr });
                                    }
                                }
                                // Last: portrules need the services, scripts the host's names.
                                if let Some(stage) = scripts.filter(|_| !h.timed_out) {
                                    let mut scripted = h.clone();
                                    tokio::select! {
                                        found = stage.run_host(&mut scripted) => {
                                            *h = scripted;
                                            events.extend(found);
                                        }
                                        _ = out_of_time(host_timeout, start_unix) => h.timed_out = true,
                                        _ = cancel.cancelled() => {}
                                    }
                                }
                                // The scripts' OS hints (smb-os-discovery, ...): scored again.
                                if let Some(again) = os_again.as_deref().and_then(|s| s.rescore(h)) {
                                    let addr = h.addr;
                                    events.retain(|e| !matches!(e, ScanEvent::OsMatch { addr: a, .. } if *a == addr));
                                    events.extend(again);
                                }
                                // After the scripts, which may have refined a service's version.
                                if let Some(stage) = enrich {
                                    events.extend(stage.run_host(h).await);
                                }
                            }
                            events.push(ev);
                            events
                        });
                    } else {
                        self.deliver(hub, ev).await;
                    }
                }
                Some(done) = lookups.join_next(), if !lookups.is_empty() => {
                    if let Ok(events) = done {
                        for ev in events {
                            hub.deliver(ev).await;
                        }
                    }
                }
                _ = ticker.tick() => hub.tick(),
            }
        }
        while let Some(done) = lookups.join_next().await {
            if let Ok(events) = done {
                for ev in events {
                    hub.deliver(ev).await;
                }
            }
        }
        // An engine that stopped without finishing a held host (it failed): what it said stands.
        for (_, events) in std::mem::take(&mut self.held) {
            for ev in events {
                self.deliver(hub, ev).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::answered;
    use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason};

    #[test]
    fn a_host_answered_when_any_port_did() {
        let mut h = HostResult::new("198.18.0.5".parse().unwrap(), HostStatus::Up, Reason::SeenUp);
        assert!(!answered(&h));
        h.ports.push(PortResult::new(Protocol::Tcp, 1, PortState::Filtered, Reason::NoResponse, 0));
        h.ports.push(PortResult::new(Protocol::Udp, 53, PortState::OpenFiltered, Reason::NoResponse, 0));
        assert!(!answered(&h), "silence is no answer");
        h.ports.push(PortResult::new(Protocol::Tcp, 2, PortState::Closed, Reason::Reset, 64));
        assert!(answered(&h));
    }
}
