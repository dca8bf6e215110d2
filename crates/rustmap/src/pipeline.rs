//! One scan's pipeline, run as one task: the target list is streamed (names resolved on the way,
//! exclusions applied) into the engine through a bounded channel; the engine's events are
//! enriched (service names from the port table, service detection, reverse DNS) and handed to the
//! [`Hub`], which delivers each to the attached sinks, the reducer and the event stream.
//!
//! The pipeline owns no process-wide state: two scans in one process each have their own
//! channels, sockets, resolver and detector.

use crate::dns::{self, Resolver};
use crate::events::Pump;
use crate::scripts::ScriptStage;
use crate::session::{EventTx, Resume};
use crate::trace::TraceStage;
use crate::{ScanPlan, VERSION};
use rustmap_detect::{Detector, Transport};
use rustmap_engine::os::{OsProber, OsSockets};
use rustmap_engine::report::unix_now;
use rustmap_engine::trace::{TraceSockets, Tracer};
use rustmap_engine::{connect::ConnectScan, connect::EngineTotals, raw::RawScan, raw::RawSockets, Emitter, ScanTarget};
use rustmap_model::{
    AddrSet, Control, HostResult, HostStatus, Hostname, HostnameKind, PortResult, PortState, Protocol, Reason,
    ScanEvent, ScanInfo, ScanOutcome, ScanPorts, ScanResult, ScanStats, ScanType, ServiceInfo, ServiceMethod, Sink,
    SinkError, EVENT_SCHEMA_VERSION,
};
use rustmap_targets::{PortTable, TargetItem, TargetSpec};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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
    /// `Stopping` was delivered.
    stopping: bool,
}

impl Hub {
    pub(crate) fn new(
        sinks: Vec<Box<dyn Sink>>,
        stream: Option<EventTx>,
        cancel: CancellationToken,
        fold_hosts: bool,
    ) -> Hub {
        Hub { sinks, stream, result: ScanResult::default(), fold_hosts, cancel, sink_error: None, stopping: false }
    }

    /// Deliver `ev`; once the scan is cancelled, `Stopping` goes first. Everything the engine
    /// and detection report after they saw the cancellation reaches the hub after it was set, so
    /// every host cut short comes after `Stopping` (a host that finished just before may too:
    /// it is then only scanned again on resume, never taken as finished when it was not).
    pub(crate) async fn deliver(&mut self, ev: ScanEvent) {
        if !self.stopping && self.cancel.is_cancelled() && !matches!(ev, ScanEvent::ScanFinished(_)) {
            self.stopping = true;
            Box::pin(self.deliver_now(ScanEvent::Stopping)).await;
        }
        self.deliver_now(ev).await;
    }

    async fn deliver_now(&mut self, ev: ScanEvent) {
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

    pub(crate) fn tick(&mut self) {
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

/// Feed the engine: stream the target list, resolve names, apply exclusions, leave out the hosts
/// a resumed scan finished before.
async fn feed_targets(
    plan: Arc<ScanPlan>,
    resolver: Resolver,
    tx: mpsc::Sender<ScanTarget>,
    warn: mpsc::Sender<ScanEvent>,
    done: Arc<AddrSet>,
) {
    let mut exclude = plan.targets.exclude().clone();
    // socks5h://: target names are the proxy's to resolve, never looked up here.
    let remote = plan.socks.as_ref().filter(|s| s.remote_dns());
    for name in exclude.names().map(str::to_string).collect::<Vec<_>>() {
        if remote.is_some() {
            let message = format!(
                "--exclude {}: names are not resolved with a socks5h:// proxy; give addresses to exclude",
                rustmap_model::sanitize(&name)
            );
            let _ = warn.send(ScanEvent::Warning { message }).await;
            continue;
        }
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
    let mut out = Shuffle::new(tx, plan.randomize_hosts);
    let mut refused = Refused::default();
    while let Some(item) = irx.recv().await {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let _ = warn.send(ScanEvent::Warning { message: e }).await;
                continue;
            }
        };
        match item {
            TargetItem::Addr(ip) if done.contains(ip) || refused.outside(&plan, ip) => {}
            TargetItem::Addr(ip) => {
                if out.send(ScanTarget { addr: ip, hostnames: Vec::new() }).await.is_err() {
                    return;
                }
            }
            TargetItem::Name { name, prefix } if remote.is_some() => {
                let shown = rustmap_model::sanitize(&name).into_owned();
                let message = match (prefix, remote.and_then(|s| s.placeholder(&name))) {
                    (None, Some(addr)) if !done.contains(addr) => {
                        let hostnames = vec![Hostname { name: shown, kind: HostnameKind::User }];
                        if out.send(ScanTarget { addr, hostnames }).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    (None, Some(_)) => continue,
                    (Some(p), _) => format!(
                        "{shown}/{p}: a block around a name needs its address, and names are not resolved with a \
                         socks5h:// proxy; not scanned"
                    ),
                    (None, None) => format!("{shown}: too long a name for a SOCKS5 proxy; not scanned"),
                };
                let _ = warn.send(ScanEvent::Warning { message }).await;
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
                    for ip in block
                        .addrs()
                        .filter(|ip| !exclude.contains(*ip) && !done.contains(*ip) && !refused.outside(&plan, *ip))
                    {
                        let hostnames = if ip == scan[0] { user.clone() } else { Vec::new() };
                        if out.send(ScanTarget { addr: ip, hostnames }).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                // Each address is a host of its own, each carrying the name the user gave.
                for ip in scan
                    .into_iter()
                    .filter(|ip| !exclude.contains(*ip) && !done.contains(*ip) && !refused.outside(&plan, *ip))
                {
                    if out.send(ScanTarget { addr: ip, hostnames: user.clone() }).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    if let Some(message) = refused.message() {
        let _ = warn.send(ScanEvent::Warning { message }).await;
    }
    let _ = out.flush().await;
}

/// Addresses left out because they are not in the scan's allow-list
/// ([`StartOptions::allow`](crate::StartOptions::allow)): whatever a target expression, a name's
/// resolution or a profile asked for, nothing is sent outside it.
#[derive(Default)]
struct Refused {
    count: u64,
    first: Vec<IpAddr>,
}

impl Refused {
    /// True (and counted) when `ip` is outside the plan's allow-list.
    fn outside(&mut self, plan: &ScanPlan, ip: IpAddr) -> bool {
        let Some(allow) = &plan.allow else { return false };
        if allow.contains(ip) {
            return false;
        }
        self.count += 1;
        if self.first.len() < 5 {
            self.first.push(ip);
        }
        true
    }

    fn message(&self) -> Option<String> {
        (self.count > 0).then(|| {
            let first: Vec<String> = self.first.iter().map(IpAddr::to_string).collect();
            let more = if self.count > first.len() as u64 { ", ..." } else { "" };
            format!("{} address(es) outside the allow-list were not scanned: {}{more}", self.count, first.join(", "))
        })
    }
}

/// The most targets `--randomize-hosts` shuffles together (nmap's group size): memory stays
/// bounded on any range, and the first hosts start without waiting for the whole list.
const SHUFFLE_GROUP: usize = 16384;

/// The engine's target channel, optionally shuffling targets in groups of [`SHUFFLE_GROUP`].
struct Shuffle {
    tx: mpsc::Sender<ScanTarget>,
    group: Option<Vec<ScanTarget>>,
}

impl Shuffle {
    fn new(tx: mpsc::Sender<ScanTarget>, on: bool) -> Shuffle {
        Shuffle { tx, group: on.then(Vec::new) }
    }

    /// Pass a target on (or hold it for its group). `Err`: the engine is gone.
    async fn send(&mut self, t: ScanTarget) -> Result<(), ()> {
        match &mut self.group {
            None => self.tx.send(t).await.map_err(|_| ()),
            Some(g) => {
                g.push(t);
                if g.len() >= SHUFFLE_GROUP {
                    self.flush().await?;
                }
                Ok(())
            }
        }
    }

    /// Send the held group, shuffled.
    async fn flush(&mut self) -> Result<(), ()> {
        let Some(g) = &mut self.group else { return Ok(()) };
        let mut held = std::mem::take(g);
        {
            use rand::seq::SliceRandom;
            held.shuffle(&mut rand::rng());
        }
        for t in held {
            self.tx.send(t).await.map_err(|_| ())?;
        }
        Ok(())
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

pub(crate) fn add_service_names(ports: &mut [PortResult], table: &PortTable) {
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
pub(crate) fn detectable(p: &PortResult) -> Option<Transport> {
    match (p.protocol, p.state) {
        (Protocol::Tcp, PortState::Open) => Some(Transport::Tcp),
        (Protocol::Udp, PortState::Open | PortState::OpenFiltered) => Some(Transport::Udp),
        _ => None,
    }
}

/// A host with more open TCP ports than this runs no services on most of them: something
/// accepts every connection (a portspoof-like responder, a tarpit, a middlebox answering for the
/// host). Probing each of them would take hours and tell nothing, so detection and port scripts
/// look at [`FLOOD_EXAMINED`] of its open TCP ports only, the most common first (port table rank).
pub(crate) const OPEN_FLOOD: usize = 1000;
/// How many open TCP ports of such a host are examined (detection, port scripts).
pub(crate) const FLOOD_EXAMINED: usize = 256;
/// Ports of one host under detection at once. A port's detection is a task holding every probe
/// state of the port; a task per open port at once would hold them all (a host open on all 65535
/// ports: gigabytes), while the detector's socket bound lets only a few hundred progress anyway.
const PORTS_IN_FLIGHT: usize = 256;

/// On a host with more than [`OPEN_FLOOD`] open TCP ports, the open TCP ports detection and
/// port scripts look at: [`FLOOD_EXAMINED`] of them, by port table rank (then by number); `None`
/// for any other host (every port is examined).
pub(crate) fn flood_examined(h: &HostResult) -> Option<std::collections::HashSet<u16>> {
    let open: std::collections::HashSet<u16> =
        h.ports.iter().filter(|p| p.protocol == Protocol::Tcp && p.state == PortState::Open).map(|p| p.port).collect();
    if open.len() <= OPEN_FLOOD {
        return None;
    }
    let table = PortTable::builtin();
    let ranked = table.top(Protocol::Tcp, table.len(Protocol::Tcp));
    let mut chosen: Vec<u16> = ranked.iter().copied().filter(|p| open.contains(p)).take(FLOOD_EXAMINED).collect();
    if chosen.len() < FLOOD_EXAMINED {
        let mut rest: Vec<u16> = open.iter().copied().filter(|p| !chosen.contains(p)).collect();
        rest.sort_unstable();
        chosen.extend(rest.into_iter().take(FLOOD_EXAMINED - chosen.len()));
    }
    Some(chosen.into_iter().collect())
}

/// The warning for a host [`flood_examined`] limits.
pub(crate) fn flood_warning(h: &HostResult) -> ScanEvent {
    let open = h.ports.iter().filter(|p| p.protocol == Protocol::Tcp && p.state == PortState::Open).count();
    ScanEvent::Warning {
        message: format!(
            "{}: {open} open TCP ports, more than {OPEN_FLOOD}: something answers for every port \
             (portspoof, tarpit, middlebox); service detection and port scripts look at the \
             {FLOOD_EXAMINED} most common of them only",
            h.addr
        ),
    }
}

/// Whether port `p` is examined on a host [`flood_examined`] returned `examined` for.
pub(crate) fn examined(examined: &Option<std::collections::HashSet<u16>>, p: &PortResult) -> bool {
    match examined {
        Some(set) if p.protocol == Protocol::Tcp => set.contains(&p.port),
        _ => true,
    }
}

/// Run detection on every detectable port of `h` ([`flood_examined`] ones only on a host open
/// everywhere), in parallel (at most [`PORTS_IN_FLIGHT`] ports at once; the detector bounds the
/// sockets), and fold the findings into the host's ports. Returns a `ServiceFound` event per port
/// where detection named something, in the order they were found.
pub(crate) async fn detect_host(detector: &Arc<Detector>, h: &mut HostResult) -> Vec<ScanEvent> {
    let srtt = h.srtt_us.map(Duration::from_micros);
    let mut found = Vec::new();
    let mut jobs = JoinSet::new();
    let subset = flood_examined(h);
    let mut todo: std::collections::VecDeque<(usize, SocketAddr, Transport)> = h
        .ports
        .iter()
        .enumerate()
        .filter(|(_, p)| examined(&subset, p))
        .filter_map(|(i, p)| detectable(p).map(|t| (i, SocketAddr::new(h.addr, p.port), t)))
        .collect();
    loop {
        while jobs.len() < PORTS_IN_FLIGHT {
            let Some((i, target, transport)) = todo.pop_front() else { break };
            let det = Arc::clone(detector);
            jobs.spawn(async move { (i, det.detect(target, transport, srtt).await) });
        }
        let Some(done) = jobs.join_next().await else { break };
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

/// The order the engine scans `ports` in: `first` (ports the scan has, `ports.first`), then the
/// others, shuffled unless the scan is sequential (`-r`); and whether the engine should shuffle
/// it again itself (only when there is nothing to put first). The engines scan a list they are
/// told not to shuffle in the order given, every host from its start, so the ports put first
/// are every host's first probes.
fn engine_order(ports: &[u16], first: &[u16], randomize: bool, reorder: bool) -> (Vec<u16>, bool) {
    if !reorder {
        return (ports.to_vec(), randomize);
    }
    let mut rest: Vec<u16> = ports.iter().copied().filter(|p| first.binary_search(p).is_err()).collect();
    if randomize {
        use rand::seq::SliceRandom;
        rest.shuffle(&mut rand::rng());
    }
    let mut order = first.to_vec();
    order.extend(rest);
    (order, false)
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
    done: u64,
) -> tokio::task::JoinHandle<EngineRun> {
    let hosts_hint = u64::try_from(plan.targets.len_hint()).ok().map(|n| n.saturating_sub(done));
    if plan.list_only {
        return tokio::spawn(async move { Ok(list_targets(trx, emitter).await) });
    }
    let reorder = plan.first_ports.total() > 0;
    let order = |proto: Protocol, ports: &[u16]| {
        engine_order(ports, plan.first_ports.get(proto), plan.randomize_ports, reorder)
    };
    if let Some(sockets) = raw_sockets {
        let engine = RawScan {
            scans: scans.iter().map(|s| (s.scan_type, order(s.scan_type.protocol(), &s.ports).0)).collect(),
            randomize: plan.randomize_ports && !reorder,
            timing: plan.timing.clone(),
            skip_discovery: plan.skip_discovery,
            discovery: plan.discovery.clone(),
            collapse_threshold: 25,
            hosts_hint,
            origin: plan.origin.clone(),
            send_ip: plan.send_ip,
            evasion: plan.evasion.clone(),
            passive_os: plan.os.is_some(),
        };
        return tokio::spawn(async move {
            engine.run(sockets, trx, emitter).await.map_err(|e| format!("raw scan failed: {e}"))
        });
    }
    let mut timing = plan.timing.clone();
    timing.max_parallelism = timing.max_parallelism.min(rustmap_engine::limits::fd_budget()).max(1);
    let (tcp, randomize) = order(Protocol::Tcp, &plan.ports.tcp);
    let engine = ConnectScan {
        ports: tcp,
        randomize,
        timing,
        skip_discovery: plan.skip_discovery,
        discovery: plan.discovery.clone(),
        collapse_threshold: 25,
        hosts_hint,
        origin: plan.origin.clone(),
        probe_threads: None,
        proxy: plan.socks.clone(),
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

/// Deliver a resumed scan's finished hosts as `host_done` events, read on a thread of their own
/// (the store is read with blocking calls). Returns them counted as the engine counts hosts.
async fn replay(
    finished: Box<dyn Iterator<Item = Result<HostResult, String>> + Send>,
    hub: &mut Hub,
    cancel: &CancellationToken,
) -> Result<EngineTotals, String> {
    let (tx, mut rx) = mpsc::channel::<Result<HostResult, String>>(256);
    std::thread::spawn(move || {
        for h in finished {
            if tx.blocking_send(h).is_err() {
                return;
            }
        }
    });
    let mut totals = EngineTotals::default();
    while let Some(h) = rx.recv().await {
        let h = h.map_err(|e| format!("cannot read the finished hosts of the scan to resume: {e}"))?;
        match h.status {
            HostStatus::Up => totals.hosts_up += 1,
            HostStatus::Down => totals.hosts_down += 1,
            HostStatus::Unknown => totals.hosts_listed += 1,
        }
        hub.deliver(ScanEvent::HostDone(h)).await;
        if cancel.is_cancelled() {
            break;
        }
    }
    Ok(totals)
}

/// The `scan_started` header of a scan of `plan`.
pub(crate) fn scan_info(plan: &ScanPlan, scan_id: String) -> ScanInfo {
    let (types, _) = engine_kind(plan);
    let scans: Vec<ScanPorts> =
        types.iter().map(|t| ScanPorts { scan_type: *t, ports: plan.ports.get(t.protocol()).to_vec() }).collect();
    ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        scan_id,
        config: Some(Box::new(plan.config.clone())),
        version: VERSION.to_string(),
        args: plan.config.args.clone(),
        start_unix: unix_now(),
        scans,
        verbosity: plan.config.output.verbosity,
        debugging: plan.config.output.debugging,
        service_scan: plan.version_detection.is_some(),
    }
}

/// Run a scan to its end, delivering every event through `hub`. Returns the outcome that the
/// final `ScanFinished` reports.
pub(crate) async fn run(
    plan: Arc<ScanPlan>,
    scan_id: String,
    (raw_sockets, trace_sockets, os_sockets): (Option<RawSockets>, Option<TraceSockets>, Option<OsSockets>),
    hub: &mut Hub,
    cancel: CancellationToken,
    resume: Option<Resume>,
) -> ScanOutcome {
    let started = Instant::now();
    let info = scan_info(&plan, scan_id);
    let scans = info.scans.clone();
    hub.deliver(ScanEvent::ScanStarted(info)).await;
    for message in &plan.notices {
        hub.deliver(ScanEvent::Warning { message: message.clone() }).await;
    }
    let scripts = plan
        .scripts
        .as_ref()
        .map(|p| Arc::new(ScriptStage::new(p, plan.config.output.verbosity, plan.config.output.debugging)));
    if let Some(stage) = &scripts {
        tokio::select! {
            events = stage.run_global(true) => for ev in events { hub.deliver(ev).await },
            _ = cancel.cancelled() => {}
        }
    }

    // A resumed scan: the hosts finished before first, then the rest.
    let (done, before) = match resume {
        None => (Arc::new(AddrSet::new()), Ok(EngineTotals::default())),
        Some(r) => {
            let before = replay(r.finished, hub, &cancel).await;
            (Arc::new(r.done), before)
        }
    };
    let before = match before {
        Ok(t) => t,
        Err(error) => return finish(hub, started, EngineTotals::default(), ScanOutcome::Failed { error }).await,
    };

    let (ttx, trx) = mpsc::channel::<ScanTarget>(256);
    let (etx, erx) = mpsc::channel::<ScanEvent>(4096);
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
    let skipped = done.len();
    let feeder = tokio::spawn(feed_targets(Arc::clone(&plan), resolver.clone(), ttx, etx.clone(), done));
    let raw_used = raw_sockets.is_some();
    let engine_task = start_engine(&plan, &scans, raw_sockets, trx, emitter, skipped);
    drop(etx);

    let detector = plan.version_detection.as_ref().map(|v| {
        let mut options = v.options.clone();
        options.bind = options.bind.or(plan.origin.source);
        // Detection shares the machine's descriptors with the engine that may still be scanning.
        options.max_sockets = options.max_sockets.min(rustmap_engine::limits::fd_budget() / 2).max(8);
        // The scan's pacing holds for detection probes too.
        options.max_rate = plan.timing.max_rate;
        options.host_delay = plan.timing.scan_delay;
        options.proxy = plan.socks.clone();
        Arc::new(Detector::new(v.db.clone(), options))
    });
    // --traceroute, --mtu-discovery: a stage of its own, with its own sockets and thread.
    let trace = trace_sockets.map(|sockets| {
        let tracer = Tracer::start(sockets, plan.timing.clone(), plan.origin.clone(), cancel.clone());
        Arc::new(TraceStage::new(tracer, &plan.path, resolver.clone(), plan.reverse_dns))
    });
    // -O: a stage of its own too.
    let os = match (os_sockets, &plan.os) {
        (Some(sockets), Some(p)) => {
            let parallel = crate::osdetect::parallel_hosts(&plan.timing);
            let prober = OsProber::start(sockets, p.tries, parallel, plan.origin.clone(), cancel.clone());
            Some(Arc::new(crate::osdetect::OsStage::new(Some(prober), p.clone())))
        }
        // --passive-os: the stage reads what the port scan kept, and probes nothing.
        (None, Some(p)) if p.passive_only => Some(Arc::new(crate::osdetect::OsStage::new(None, p.clone()))),
        _ => None,
    };
    let mut pump = Pump {
        plan: Arc::clone(&plan),
        detector,
        os,
        trace,
        scripts: scripts.clone(),
        enrich: plan.enrich.as_ref().map(|p| Arc::new(crate::enrich::EnrichStage::new(p))),
        cloud: Arc::clone(&plan.cloud_instances),
        resolver,
        cancel: cancel.clone(),
        started,
        first_open: false,
        held: HashMap::new(),
        retry: Vec::new(),
    };
    pump.run(hub, erx).await;
    feeder.abort();
    let (mut totals, mut outcome) = engine_outcome(engine_task.await, hub, &cancel);

    // --fast-discovery: hosts seen up recently that answered no probe at all go through
    // discovery after all, in a second engine run of their own (new sockets: a run owns its).
    let retry = std::mem::take(&mut pump.retry);
    if !retry.is_empty() {
        // The first run counted them up; the second counts them as it finds them.
        totals.hosts_up = totals.hosts_up.saturating_sub(retry.len() as u64);
        if outcome == ScanOutcome::Completed {
            let mut second = (*plan).clone();
            second.timing.learned = second.timing.learned.without_up();
            let second = Arc::new(second);
            let sockets = match raw_used
                .then(|| RawSockets::open(&second.origin, second.evasion.source_port))
                .transpose()
            {
                Ok(s) => s,
                Err(e) => {
                    return finish(hub, started, totals, ScanOutcome::Failed { error: format!("raw scan failed: {e}") })
                        .await
                }
            };
            let (ttx, trx) = mpsc::channel::<ScanTarget>(256);
            let (etx, erx) = mpsc::channel::<ScanEvent>(4096);
            let emitter = Emitter::new(etx, cancel.clone());
            let feeder = tokio::spawn(async move {
                for t in retry {
                    if ttx.send(t).await.is_err() {
                        return;
                    }
                }
            });
            let engine_task = start_engine(&second, &scans, sockets, trx, emitter, 0);
            pump.plan = Arc::clone(&second);
            pump.run(hub, erx).await;
            feeder.abort();
            let (more, second_outcome) = engine_outcome(engine_task.await, hub, &cancel);
            totals.hosts_up += more.hosts_up;
            totals.hosts_down += more.hosts_down;
            totals.probes_sent += more.probes_sent;
            outcome = second_outcome;
        }
    }
    let totals = EngineTotals {
        hosts_up: totals.hosts_up + before.hosts_up,
        hosts_down: totals.hosts_down + before.hosts_down,
        hosts_listed: totals.hosts_listed + before.hosts_listed,
        ..totals
    };
    if let (Some(stage), false) = (&scripts, cancel.is_cancelled()) {
        tokio::select! {
            events = stage.run_global(false) => for ev in events { hub.deliver(ev).await },
            _ = cancel.cancelled() => {}
        }
    }
    finish(hub, started, totals, outcome).await
}

/// An engine run's totals and the outcome it gives the scan.
fn engine_outcome(
    joined: Result<EngineRun, tokio::task::JoinError>,
    hub: &Hub,
    cancel: &CancellationToken,
) -> (EngineTotals, ScanOutcome) {
    match joined {
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
    }
}

/// The scan's last event, and the sinks flushed.
pub(crate) async fn finish(hub: &mut Hub, started: Instant, totals: EngineTotals, outcome: ScanOutcome) -> ScanOutcome {
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

#[cfg(test)]
mod tests {
    use super::engine_order;

    #[test]
    fn ports_first_lead_the_engines_order() {
        let ports: Vec<u16> = (1..=100).collect();
        assert_eq!(engine_order(&ports, &[], true, false), (ports.clone(), true), "nothing first: as before");
        let (order, shuffle) = engine_order(&ports, &[22, 80], false, true);
        assert!(!shuffle);
        assert_eq!(&order[..3], &[22, 80, 1]);
        assert_eq!(order.len(), 100);
        let (order, _) = engine_order(&ports, &[22, 80], true, true);
        assert_eq!(&order[..2], &[22, 80]);
        let mut rest = order[2..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, ports.iter().copied().filter(|p| *p != 22 && *p != 80).collect::<Vec<_>>());
    }

    #[test]
    fn a_host_open_everywhere_has_its_most_common_ports_examined() {
        use super::{examined, flood_examined, flood_warning, FLOOD_EXAMINED, OPEN_FLOOD};
        use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ScanEvent};
        let host = |open: u16| {
            let mut h = HostResult::new("198.18.0.16".parse().unwrap(), HostStatus::Up, Reason::SynAck);
            for port in 1..=open {
                h.ports.push(PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 64));
            }
            h.ports.push(PortResult::new(Protocol::Udp, 53, PortState::Open, Reason::UdpResponse, 64));
            h
        };
        // A real host, however busy: everything is examined.
        assert!(flood_examined(&host(OPEN_FLOOD as u16)).is_none());
        let h = host(u16::MAX);
        let set = flood_examined(&h).expect("65535 open ports is a flood");
        assert_eq!(set.len(), FLOOD_EXAMINED);
        for port in [21, 22, 25, 53, 80, 443, 2222, 3389, 8080] {
            assert!(set.contains(&port), "{port}");
        }
        let some = Some(set);
        assert!(examined(&some, &PortResult::new(Protocol::Udp, 53, PortState::Open, Reason::UdpResponse, 64)));
        assert!(!examined(&some, &PortResult::new(Protocol::Tcp, 65000, PortState::Open, Reason::SynAck, 64)));
        let ScanEvent::Warning { message } = flood_warning(&h) else { panic!() };
        assert!(message.starts_with("198.18.0.16: 65535 open TCP ports"), "{message}");
        // Fewer ranked ports open than the cap: the lowest unranked ones fill it.
        let mut h = HostResult::new("198.18.0.16".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        for port in 40000..=u16::MAX {
            h.ports.push(PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 64));
        }
        assert_eq!(flood_examined(&h).unwrap().len(), FLOOD_EXAMINED);
    }

    #[tokio::test]
    async fn randomize_hosts_shuffles_within_groups_and_loses_none() {
        use super::{Shuffle, SHUFFLE_GROUP};
        use rustmap_engine::ScanTarget;
        let n = SHUFFLE_GROUP + 1000;
        let (tx, mut rx) = tokio::sync::mpsc::channel(n);
        let mut out = Shuffle::new(tx, true);
        let addr = |i: usize| std::net::IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
        for i in 0..n {
            out.send(ScanTarget { addr: addr(i), hostnames: Vec::new() }).await.unwrap();
        }
        out.flush().await.unwrap();
        drop(out);
        let mut got = Vec::new();
        while let Some(t) = rx.recv().await {
            got.push(t.addr);
        }
        assert_eq!(got.len(), n);
        let first: Vec<_> = got[..SHUFFLE_GROUP].to_vec();
        assert_ne!(first, (0..SHUFFLE_GROUP).map(addr).collect::<Vec<_>>(), "shuffled");
        // Groups stay groups: the first 16384 targets are scanned before the rest.
        let mut sorted = first;
        sorted.sort_unstable();
        assert_eq!(sorted, (0..SHUFFLE_GROUP).map(addr).collect::<Vec<_>>());
        let mut rest = got[SHUFFLE_GROUP..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, (SHUFFLE_GROUP..n).map(addr).collect::<Vec<_>>());
        // Off: in order.
        let (tx, mut rx) = tokio::sync::mpsc::channel(10);
        let mut out = Shuffle::new(tx, false);
        for i in 0..5 {
            out.send(ScanTarget { addr: addr(i), hostnames: Vec::new() }).await.unwrap();
        }
        drop(out);
        let mut got = Vec::new();
        while let Some(t) = rx.recv().await {
            got.push(t.addr);
        }
        assert_eq!(got, (0..5).map(addr).collect::<Vec<_>>());
    }
}
