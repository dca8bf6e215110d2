//! One scan's pipeline, run as one task: the target list is streamed (names resolved on the way,
//! exclusions applied) into the engine through a bounded channel; the engine's events are
//! enriched (service names from the port table, service detection, reverse DNS) and handed to the
//! [`Hub`], which delivers each to the attached sinks, the reducer and the event stream.
//!
//! The pipeline owns no process-wide state: two scans in one process each have their own
//! channels, sockets, resolver and detector.

use crate::dns::{self, Resolver};
use crate::session::EventTx;
use crate::{ReverseDns, ScanPlan, TICK_EVERY, VERSION};
use rustmap_detect::{Detector, Transport};
use rustmap_engine::report::unix_now;
use rustmap_engine::{connect::ConnectScan, connect::EngineTotals, raw::RawScan, raw::RawSockets, Emitter, ScanTarget};
use rustmap_model::{
    Control, HostResult, HostStatus, Hostname, HostnameKind, PortResult, PortState, Protocol, Reason, ScanEvent,
    ScanInfo, ScanOutcome, ScanPorts, ScanResult, ScanStats, ScanType, ServiceInfo, ServiceMethod, Sink, SinkError,
    EVENT_SCHEMA_VERSION,
};
use rustmap_targets::{PortTable, TargetItem, TargetSpec};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Where every event goes, in order: the reducer, each sink, then the event stream.
///
/// The stream's policy for a slow consumer: result events (everything but `Progress`) wait for
/// room in its bounded buffer, so the scan slows down to the consumer's pace and nothing is lost;
/// `Progress` events are dropped when the buffer is full (the next one supersedes them anyway).
/// A consumer that drops its stream stops receiving; the scan goes on.
pub(crate) struct Hub {
    sinks: Vec<Box<dyn Sink>>,
    stream: Option<EventTx>,
    pub(crate) result: ScanResult,
    /// Fold every event into `result`, or only the header, warnings and totals.
    fold_hosts: bool,
    cancel: CancellationToken,
    /// The first sink failure: it fails the scan.
    pub(crate) sink_error: Option<SinkError>,
}

impl Hub {
    pub(crate) fn new(
        sinks: Vec<Box<dyn Sink>>,
        stream: Option<EventTx>,
        cancel: CancellationToken,
        fold_hosts: bool,
    ) -> Hub {
        Hub { sinks, stream, result: ScanResult::default(), fold_hosts, cancel, sink_error: None }
    }

    pub(crate) async fn deliver(&mut self, ev: ScanEvent) {
        let whole_scan =
            matches!(ev, ScanEvent::ScanStarted(_) | ScanEvent::ScanFinished(_) | ScanEvent::Warning { .. });
        if self.fold_hosts || whole_scan {
            self.result.apply(&ev);
        }
        for s in self.sinks.iter_mut() {
            match s.event(&ev) {
                Ok(Control::Continue) => {}
                Ok(Control::Stop) => self.cancel.cancel(),
                Err(e) => {
                    // A sink that cannot write fails the scan: its results would be lost.
                    if self.sink_error.is_none() {
                        self.sink_error = Some(e);
                    }
                    self.cancel.cancel();
                }
            }
        }
        if let Some(tx) = &self.stream {
            let gone = match ev {
                ScanEvent::Progress { .. } => matches!(tx.try_send(ev), Err(mpsc::error::TrySendError::Closed(_))),
                ev => tx.send(ev).await.is_err(),
            };
            if gone {
                self.stream = None;
            }
        }
    }

    fn tick(&mut self) {
        for s in self.sinks.iter_mut() {
            if let Err(e) = s.tick() {
                self.sink_error.get_or_insert(e);
                self.cancel.cancel();
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        for s in self.sinks.iter_mut() {
            if let Err(e) = s.finish() {
                self.sink_error.get_or_insert(e);
            }
        }
    }
}

/// Feed the engine: stream the target list, resolve names, apply exclusions.
async fn feed_targets(
    plan: Arc<ScanPlan>,
    resolver: Resolver,
    tx: mpsc::Sender<ScanTarget>,
    warn: mpsc::Sender<ScanEvent>,
) {
    let mut exclude = plan.targets.exclude().clone();
    for name in exclude.names().map(str::to_string).collect::<Vec<_>>() {
        for ip in resolver.lookup(&name, plan.ipv6).await.unwrap_or_default() {
            exclude.add_addr(ip);
        }
    }
    // The list is read on a blocking thread (it may read files) and handed over in small batches.
    let (itx, mut irx) = mpsc::channel::<Result<TargetItem, String>>(1024);
    let list = plan.targets.clone();
    std::thread::spawn(move || {
        for item in list.iter() {
            if itx.blocking_send(item.map_err(|e| e.to_string())).is_err() {
                return;
            }
        }
    });
    while let Some(item) = irx.recv().await {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let _ = warn.send(ScanEvent::Warning { message: e }).await;
                continue;
            }
        };
        match item {
            TargetItem::Addr(ip) => {
                if tx.send(ScanTarget { addr: ip, hostnames: Vec::new() }).await.is_err() {
                    return;
                }
            }
            TargetItem::Name { name, prefix } => {
                let shown = rustmap_model::sanitize(&name).into_owned();
                let addrs = match resolver.lookup(&name, plan.ipv6).await {
                    Ok(a) => a,
                    Err(e) => {
                        // nmap's words; the reason when it is not simply "no such name".
                        let message = match e {
                            dns::LookupError::NotFound => format!("Failed to resolve \"{shown}\"."),
                            e => format!("Failed to resolve \"{shown}\" ({e})."),
                        };
                        let _ = warn.send(ScanEvent::Warning { message }).await;
                        continue;
                    }
                };
                let user = vec![Hostname { name: shown, kind: HostnameKind::User }];
                let (scan, others) = dns::split_addresses(&addrs, plan.dns.resolve_all && prefix.is_none());
                if !others.is_empty() {
                    let others: Vec<String> = others.iter().map(|a| a.to_string()).collect();
                    let message = format!("Other addresses for {} (not scanned): {}", user[0].name, others.join(" "));
                    let _ = warn.send(ScanEvent::Warning { message }).await;
                }
                if let Some(block) = prefix.and_then(|p| TargetSpec::parse(&format!("{}/{p}", scan[0])).ok()) {
                    for ip in block.addrs().filter(|ip| !exclude.contains(*ip)) {
                        let hostnames = if ip == scan[0] { user.clone() } else { Vec::new() };
                        if tx.send(ScanTarget { addr: ip, hostnames }).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                // Each address is a host of its own, each carrying the name the user gave.
                for ip in scan.into_iter().filter(|ip| !exclude.contains(*ip)) {
                    if tx.send(ScanTarget { addr: ip, hostnames: user.clone() }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// `-sL`: every target becomes a host of unknown status; nothing is sent to it.
async fn list_targets(mut targets: mpsc::Receiver<ScanTarget>, emitter: Emitter) -> EngineTotals {
    let mut totals = EngineTotals::default();
    while let Some(t) = targets.recv().await {
        if emitter.is_cancelled() {
            break;
        }
        let now = unix_now();
        totals.hosts_listed += 1;
        let mut h = HostResult::new(t.addr, HostStatus::Unknown, Reason::UserSet);
        h.hostnames = t.hostnames;
        h.start_unix = now;
        h.end_unix = now;
        emitter.emit(ScanEvent::HostDone(h)).await;
    }
    totals
}

fn add_service_names(ports: &mut [PortResult], table: &PortTable) {
    for p in ports {
        if p.service.is_none() {
            if let Some(name) = table.service_name(p.protocol, p.port) {
                p.service = Some(ServiceInfo {
                    name: name.to_string(),
                    method: ServiceMethod::Table,
                    conf: 3,
                    ..Default::default()
                });
            }
        }
    }
}

/// Ports detection looks at: open TCP ports, and UDP ports that are open or may be.
fn detectable(p: &PortResult) -> Option<Transport> {
    match (p.protocol, p.state) {
        (Protocol::Tcp, PortState::Open) => Some(Transport::Tcp),
        (Protocol::Udp, PortState::Open | PortState::OpenFiltered) => Some(Transport::Udp),
        _ => None,
    }
}

/// Run detection on every detectable port of `h`, in parallel (the detector bounds the sockets),
/// and fold the findings into the host's ports. Returns a `ServiceFound` event per port where
/// detection named something, in the order they were found.
async fn detect_host(detector: &Arc<Detector>, h: &mut HostResult) -> Vec<ScanEvent> {
    let srtt = h.srtt_us.map(Duration::from_micros);
    let mut found = Vec::new();
    let mut jobs = JoinSet::new();
    for (i, p) in h.ports.iter().enumerate() {
        if let Some(transport) = detectable(p) {
            let det = Arc::clone(detector);
            let target = SocketAddr::new(h.addr, p.port);
            jobs.spawn(async move { (i, det.detect(target, transport, srtt).await) });
        }
    }
    while let Some(done) = jobs.join_next().await {
        let Ok((i, outcome)) = done else { continue };
        let Some(p) = h.ports.get_mut(i) else { continue };
        // An answer proves a UDP port open, as in nmap's -sV.
        if p.protocol == Protocol::Udp && outcome.answered && p.state == PortState::OpenFiltered {
            p.state = PortState::Open;
            p.reason = Reason::UdpResponse;
        }
        let probed = outcome.service.is_some();
        if let Some(mut s) = outcome.service {
            // TLS found but nothing inside identified: what the probes got inside TLS.
            s.fingerprint = s.fingerprint.or(outcome.fingerprint);
            p.service = Some(s);
        } else if let Some(fp) = outcome.fingerprint {
            // Unidentified: the port table's guess stays, with what the port said.
            let s = p.service.get_or_insert_with(|| ServiceInfo {
                name: "unknown".into(),
                method: ServiceMethod::Table,
                ..Default::default()
            });
            s.fingerprint = Some(fp);
        }
        p.tls = outcome.tls.map(Box::new);
        if let (true, Some(service)) = (probed || p.tls.is_some(), &p.service) {
            found.push(ScanEvent::ServiceFound {
                addr: h.addr,
                protocol: p.protocol,
                port: p.port,
                service: service.clone(),
                tls: p.tls.clone(),
            });
        }
    }
    found
}

/// The engine's outcome: its totals, or why it failed.
type EngineRun = Result<EngineTotals, String>;

/// Start the engine the plan asks for on its own task.
fn start_engine(
    plan: &Arc<ScanPlan>,
    scans: &[ScanPorts],
    raw_sockets: Option<RawSockets>,
    trx: mpsc::Receiver<ScanTarget>,
    emitter: Emitter,
) -> tokio::task::JoinHandle<EngineRun> {
    let hosts_hint = u64::try_from(plan.targets.len_hint()).ok();
    if plan.list_only {
        return tokio::spawn(async move { Ok(list_targets(trx, emitter).await) });
    }
    if let Some(sockets) = raw_sockets {
        let engine = RawScan {
            scans: scans.iter().map(|s| (s.scan_type, s.ports.clone())).collect(),
            randomize: plan.randomize_ports,
            timing: plan.timing.clone(),
            skip_discovery: plan.skip_discovery,
            discovery: plan.discovery.clone(),
            collapse_threshold: 25,
            hosts_hint,
            origin: plan.origin.clone(),
            send_ip: plan.send_ip,
        };
        return tokio::spawn(async move {
            engine.run(sockets, trx, emitter).await.map_err(|e| format!("raw scan failed: {e}"))
        });
    }
    let mut timing = plan.timing.clone();
    timing.max_parallelism = timing.max_parallelism.min(rustmap_engine::limits::fd_budget()).max(1);
    let engine = ConnectScan {
        ports: plan.ports.tcp.clone(),
        randomize: plan.randomize_ports,
        timing,
        skip_discovery: plan.skip_discovery,
        discovery: plan.discovery.clone(),
        collapse_threshold: 25,
        hosts_hint,
        origin: plan.origin.clone(),
        probe_threads: None,
    };
    tokio::spawn(async move { engine.run(trx, emitter).await.map_err(|e| format!("connect scan failed: {e}")) })
}

/// The scan types that run, and whether the connect engine runs them.
pub(crate) fn engine_kind(plan: &ScanPlan) -> (Vec<ScanType>, bool) {
    // The connect scan has its own engine; every other type is raw, and one raw run may combine
    // one TCP type, UDP and one SCTP type (as in nmap).
    let types: Vec<ScanType> = if !plan.port_scan || plan.list_only { Vec::new() } else { plan.scan_types.clone() };
    let connect = if plan.port_scan {
        types.contains(&ScanType::Connect)
    } else {
        // A ping scan sends raw packets when it may (nmap's default probes need them) and uses
        // connect() otherwise; the raw engine makes HTTP/HTTPS pings too.
        !plan.raw
    };
    (types, connect)
}

/// Run a scan to its end, delivering every event through `hub`. Returns the outcome that the
/// final `ScanFinished` reports.
pub(crate) async fn run(
    plan: Arc<ScanPlan>,
    scan_id: String,
    raw_sockets: Option<RawSockets>,
    hub: &mut Hub,
    cancel: CancellationToken,
) -> ScanOutcome {
    let (types, _) = engine_kind(&plan);
    let started = Instant::now();
    let table = PortTable::builtin();
    let scans: Vec<ScanPorts> =
        types.iter().map(|t| ScanPorts { scan_type: *t, ports: plan.ports.get(t.protocol()).to_vec() }).collect();
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id,
        config: Some(Box::new(plan.config.clone())),
        version: VERSION.to_string(),
        args: plan.config.args.clone(),
        start_unix: unix_now(),
        scans: scans.clone(),
        verbosity: plan.config.output.verbosity,
        debugging: plan.config.output.debugging,
        service_scan: plan.version_detection.is_some(),
    };
    hub.deliver(ScanEvent::ScanStarted(info)).await;

    let (ttx, trx) = mpsc::channel::<ScanTarget>(256);
    let (etx, mut erx) = mpsc::channel::<ScanEvent>(4096);
    let emitter = Emitter::new(etx.clone(), cancel.clone());
    let resolver = match Resolver::new(&plan.dns) {
        Ok(r) => r,
        Err(e) => {
            // As nmap: without a usable configuration, names go to the operating system.
            let message = format!("{e}; using the system resolver");
            hub.deliver(ScanEvent::Warning { message }).await;
            Resolver::system(plan.dns.timeout)
        }
    };
    let feeder = tokio::spawn(feed_targets(Arc::clone(&plan), resolver.clone(), ttx, etx.clone()));
    let engine_task = start_engine(&plan, &scans, raw_sockets, trx, emitter);
    drop(etx);

    let detector = plan.version_detection.as_ref().map(|v| {
        let mut options = v.options.clone();
        options.bind = options.bind.or(plan.origin.source);
        // Detection shares the machine's descriptors with the engine that may still be scanning.
        options.max_sockets = options.max_sockets.min(rustmap_engine::limits::fd_budget() / 2).max(8);
        // The scan's pacing holds for detection probes too.
        options.max_rate = plan.timing.max_rate;
        options.host_delay = plan.timing.scan_delay;
        Arc::new(Detector::new(v.db.clone(), options))
    });
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
                    ScanEvent::HostDone(h) => add_service_names(&mut h.ports, table),
                    _ => {}
                }
                let wants_ptr = match &ev {
                    ScanEvent::HostDone(h) => match plan.reverse_dns {
                        ReverseDns::Never => false,
                        ReverseDns::UpHosts => h.status != HostStatus::Down,
                        ReverseDns::Always => true,
                    },
                    _ => false,
                };
                let detect = match (&ev, &detector) {
                    (ScanEvent::HostDone(h), Some(d)) if h.status == HostStatus::Up && h.ports.iter().any(|p| detectable(p).is_some()) => Some(Arc::clone(d)),
                    _ => None,
                };
                if wants_ptr || detect.is_some() {
                    let resolver = resolver.clone();
                    let cancel = cancel.clone();
                    let host_timeout = plan.timing.host_timeout;
                    lookups.spawn(async move {
                        let mut events = Vec::new();
                        if let ScanEvent::HostDone(h) = &mut ev {
                            if let Some(det) = detect {
                                // --host-timeout covers detection too: what is left of it after
                                // the port scan (whole seconds: the host's start is kept in them).
                                let left = host_timeout.map(|t| {
                                    let spent = u64::try_from(unix_now().saturating_sub(h.start_unix)).unwrap_or(0);
                                    t.saturating_sub(Duration::from_secs(spent))
                                });
                                let out_of_time = async {
                                    match left {
                                        Some(d) => tokio::time::sleep(d).await,
                                        None => std::future::pending().await,
                                    }
                                };
                                tokio::select! {
                                    found = detect_host(&det, h) => events = found,
                                    _ = out_of_time => h.timed_out = true,
                                    _ = cancel.cancelled() => {}
                                }
                            }
                            if wants_ptr {
                                if let Some(name) = resolver.reverse(h.addr).await {
                                    h.hostnames.push(Hostname { name, kind: HostnameKind::Ptr });
                                }
                            }
                        }
                        events.push(ev);
                        events
                    });
                } else {
                    hub.deliver(ev).await;
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
    feeder.abort();
    let (totals, outcome) = match engine_task.await {
        Ok(Ok(t)) => {
            let outcome = match &hub.sink_error {
                Some(e) => ScanOutcome::Failed { error: e.to_string() },
                None if cancel.is_cancelled() => ScanOutcome::Cancelled,
                None => ScanOutcome::Completed,
            };
            (t, outcome)
        }
        Ok(Err(error)) => (EngineTotals::default(), ScanOutcome::Failed { error }),
        Err(e) => {
            let why = if e.is_panic() { "the scan engine panicked" } else { "the scan engine was stopped" };
            (EngineTotals::default(), ScanOutcome::Failed { error: format!("{why}: {e}") })
        }
    };
    let stats = ScanStats {
        end_unix: unix_now(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        hosts_up: totals.hosts_up,
        hosts_down: totals.hosts_down,
        // -sL counts its listed hosts as neither up nor down.
        hosts_total: totals.hosts_up + totals.hosts_down + totals.hosts_listed,
        completed: outcome == ScanOutcome::Completed,
        outcome: outcome.clone(),
    };
    hub.deliver(ScanEvent::ScanFinished(stats)).await;
    hub.finish();
    outcome
}
