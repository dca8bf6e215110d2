//! RustMap as a library: describe a scan with [`ScanRequest`], hand it sinks, run it.
//!
//! The pipeline: the target list is streamed (names resolved on the way, exclusions applied) into
//! the engine through a bounded channel; the engine's events are enriched (service names from the
//! port table, reverse DNS as [`ReverseDns`] says, see [`dns`]) and handed to every sink in order. A sink that
//! returns [`Control::Stop`], or the caller's cancellation token, stops the scan; the sinks still
//! receive a final `ScanFinished` marked incomplete. Between events the sinks are also ticked
//! ([`Sink::tick`], every [`TICK_EVERY`]) so a status display can keep its clock moving while the
//! engine is quiet.

#![forbid(unsafe_code)]

pub mod dns;

pub use dns::NameOptions;

/// Whether this process may send raw packets (CAP_NET_RAW), as the kernel sees it.
pub use rustmap_netio::privilege;

pub use rustmap_engine::origin::Origin;

/// Is this one of this machine's own addresses (a connect scan can only bind to those)?
pub fn is_local_address(addr: IpAddr) -> bool {
    rustmap_netio::iface::list().iter().any(|i| i.addrs.contains(&addr))
}

/// Does this machine have a network interface of this name (for checking `-e` up front)?
pub fn interface_exists(name: &str) -> bool {
    rustmap_netio::iface::by_name(name).is_some()
}
pub use rustmap_detect::{DetectOptions, LoadError as ProbeDbError, ProbeDb};
pub use rustmap_engine::discovery::{DiscoveryPlan, Ping};
pub use rustmap_engine::{Timing, TimingTemplate};
pub use rustmap_output::{Control, Sink};

use dns::Resolver;
use rustmap_detect::{Detector, Transport};
use rustmap_engine::{connect::ConnectScan, connect::EngineTotals, raw::RawScan, raw::RawSockets, Emitter, ScanTarget};
use rustmap_model::{
    HostResult, HostStatus, Hostname, HostnameKind, PortResult, PortState, Protocol, Reason, ScanEvent, ScanInfo,
    ScanPorts, ScanStats, ScanType, ServiceInfo, ServiceMethod, EVENT_SCHEMA_VERSION,
};
use rustmap_targets::{PortList, PortTable, TargetItem, TargetList, TargetSpec};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often sinks are ticked while a scan runs: a live status line redraws at most this often.
pub const TICK_EVERY: Duration = Duration::from_millis(250);

/// RustMap's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// When to look up names of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReverseDns {
    /// Never (`-n`).
    Never,
    /// For hosts that are up (default).
    #[default]
    UpHosts,
    /// For every host (`-R`).
    Always,
}

/// Everything that defines a scan.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// What to scan.
    pub targets: TargetList,
    /// Which ports.
    pub ports: PortList,
    /// Scan types to run (only `Connect` is implemented by this version of the engine).
    pub scan_types: Vec<ScanType>,
    /// Timing knobs.
    pub timing: Timing,
    /// Treat every host as up (`-Pn`).
    pub skip_discovery: bool,
    /// Which probes find hosts up (`-PE`, `-PS22,80`, ...; empty: the engine's default).
    pub discovery: DiscoveryPlan,
    /// Scan ports of the hosts found up; false for a ping scan (`-sn`).
    pub port_scan: bool,
    /// Only list the targets (`-sL`): resolve names, send no probe at all.
    pub list_only: bool,
    /// Random port order (default) or ascending (`-r`).
    pub randomize_ports: bool,
    /// Reverse DNS policy.
    pub reverse_dns: ReverseDns,
    /// Prefer IPv6 addresses when resolving names (`-6`).
    pub ipv6: bool,
    /// How names are resolved: servers, back-end, timeout, `--resolve-all`.
    pub dns: NameOptions,
    /// The command line, for output headers.
    pub args: String,
    /// `-v` count.
    pub verbosity: u8,
    /// `-d` count.
    pub debugging: u8,
    /// Interface and source address for probes (`-e`, `-S`).
    pub origin: Origin,
    /// Raw scans send through the raw IP socket only, never Ethernet frames (`--send-ip`).
    pub send_ip: bool,
    /// Service and version detection (`-sV`), if asked for.
    pub version_detection: Option<VersionDetection>,
}

/// What `-sV` runs with.
#[derive(Debug, Clone)]
pub struct VersionDetection {
    /// The probes (the embedded database, plus any `--probe-db` files merged in).
    pub db: ProbeDb,
    /// Intensity and limits.
    pub options: DetectOptions,
}

impl ScanRequest {
    /// A request for `targets` with defaults everywhere else: top 1000 TCP ports, connect scan, T3.
    pub fn new(targets: TargetList) -> ScanRequest {
        ScanRequest {
            targets,
            ports: PortList::top(1000, &[rustmap_model::Protocol::Tcp], PortTable::builtin()),
            scan_types: vec![ScanType::Connect],
            timing: Timing::default(),
            skip_discovery: false,
            discovery: DiscoveryPlan::default(),
            port_scan: true,
            list_only: false,
            randomize_ports: true,
            reverse_dns: ReverseDns::UpHosts,
            ipv6: false,
            dns: NameOptions::default(),
            args: String::new(),
            verbosity: 0,
            debugging: 0,
            origin: Origin::default(),
            send_ip: false,
            version_detection: None,
        }
    }
}

/// Why a scan could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A scan type this build cannot run yet.
    #[error("not yet supported: {0}")]
    Unsupported(&'static str),
    /// A raw-packet scan could not open its sockets (privileges, kernel support).
    #[error("{0}")]
    Raw(#[from] rustmap_engine::raw::RawScanError),
    /// Writing to an output failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Feed the engine: stream the target list, resolve names, apply exclusions.
async fn feed_targets(
    req: ScanRequest,
    resolver: Resolver,
    tx: mpsc::Sender<ScanTarget>,
    warn: mpsc::Sender<ScanEvent>,
) {
    let mut exclude = req.targets.exclude().clone();
    for name in exclude.names().map(str::to_string).collect::<Vec<_>>() {
        for ip in resolver.lookup(&name, req.ipv6).await.unwrap_or_default() {
            exclude.add_addr(ip);
        }
    }
    // The list is read on a blocking thread (it may read files) and handed over in small batches.
    let (itx, mut irx) = mpsc::channel::<Result<TargetItem, String>>(1024);
    let list = req.targets.clone();
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
                let addrs = match resolver.lookup(&name, req.ipv6).await {
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
                let (scan, others) = dns::split_addresses(&addrs, req.dns.resolve_all && prefix.is_none());
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
        emitter
            .emit(ScanEvent::HostDone(rustmap_model::HostResult {
                addr: t.addr,
                hostnames: t.hostnames,
                mac: None,
                status: HostStatus::Unknown,
                reason: rustmap_model::Reason::UserSet,
                reason_ttl: 0,
                start_unix: now,
                end_unix: now,
                srtt_us: None,
                ports: Vec::new(),
                extraports: Vec::new(),
                timed_out: false,
            }))
            .await;
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
/// and fold the findings into the host's ports.
async fn detect_host(detector: &Arc<Detector>, h: &mut HostResult) {
    let srtt = h.srtt_us.map(Duration::from_micros);
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
    }
}

/// Deliver one event to every sink; true if one asked to stop.
fn deliver(sinks: &mut [Box<dyn Sink>], ev: &ScanEvent) -> Result<bool, ScanError> {
    let mut stop = false;
    for s in sinks.iter_mut() {
        stop |= s.event(ev)? == Control::Stop;
    }
    Ok(stop)
}

/// Run a scan to completion (or cancellation), feeding `sinks`. Returns the final totals.
pub async fn run(
    req: ScanRequest,
    mut sinks: Vec<Box<dyn Sink>>,
    cancel: CancellationToken,
) -> Result<ScanStats, ScanError> {
    // The connect scan has its own engine; every other type is raw, and one raw run may combine
    // one TCP type, UDP and one SCTP type (as in nmap).
    let types: Vec<ScanType> = if !req.port_scan || req.list_only {
        Vec::new()
    } else if req.scan_types.is_empty() {
        vec![ScanType::Connect]
    } else {
        req.scan_types.clone()
    };
    let connect = if req.port_scan {
        types.contains(&ScanType::Connect)
    } else {
        // A ping scan sends raw packets when it may (nmap's default probes need them) and uses
        // connect() otherwise; the raw engine makes HTTP/HTTPS pings too.
        !privilege::has_raw_socket_privilege()
    };
    if connect && types.len() > 1 {
        return Err(ScanError::Unsupported("-sT combined with another scan type (use -sS with -sU or -sY)"));
    }
    // Raw sockets first: without privileges the scan fails before anything is written.
    let raw_sockets = if connect || req.list_only { None } else { Some(RawSockets::open(&req.origin)?) };
    let started = Instant::now();
    let table = PortTable::builtin();
    let scans: Vec<ScanPorts> =
        types.iter().map(|t| ScanPorts { scan_type: *t, ports: req.ports.get(t.protocol()).to_vec() }).collect();
    let info = ScanInfo {
        schema_version: EVENT_SCHEMA_VERSION,
        version: VERSION.to_string(),
        args: req.args.clone(),
        start_unix: unix_now(),
        scans: scans.clone(),
        verbosity: req.verbosity,
        debugging: req.debugging,
        service_scan: req.version_detection.is_some(),
    };
    deliver(&mut sinks, &ScanEvent::ScanStarted(info))?;

    let (ttx, trx) = mpsc::channel::<ScanTarget>(256);
    let (etx, mut erx) = mpsc::channel::<ScanEvent>(4096);
    let emitter = Emitter::new(etx.clone(), cancel.clone());
    let mut timing = req.timing.clone();
    timing.max_parallelism = timing.max_parallelism.min(rustmap_engine::limits::fd_budget()).max(1);
    let hosts_hint: u128 = req.targets_len_hint();
    let hosts_hint = u64::try_from(hosts_hint).ok();
    let resolver = match Resolver::new(&req.dns) {
        Ok(r) => r,
        Err(e) => {
            // As nmap: without a usable configuration, names go to the operating system.
            let message = format!("{e}; using the system resolver");
            deliver(&mut sinks, &ScanEvent::Warning { message })?;
            Resolver::system(req.dns.timeout)
        }
    };
    let feeder = tokio::spawn(feed_targets(req.clone(), resolver.clone(), ttx, etx.clone()));
    let engine_task: tokio::task::JoinHandle<EngineTotals> = if req.list_only {
        tokio::spawn(list_targets(trx, emitter))
    } else if let Some(sockets) = raw_sockets {
        let engine = RawScan {
            scans: scans.iter().map(|s| (s.scan_type, s.ports.clone())).collect(),
            randomize: req.randomize_ports,
            timing: req.timing.clone(),
            skip_discovery: req.skip_discovery,
            discovery: req.discovery.clone(),
            collapse_threshold: 25,
            hosts_hint,
            origin: req.origin.clone(),
            send_ip: req.send_ip,
        };
        let warn = etx.clone();
        tokio::spawn(async move {
            match engine.run(sockets, trx, emitter).await {
                Ok(t) => t,
                Err(e) => {
                    let _ = warn.send(ScanEvent::Warning { message: format!("raw scan failed: {e}") }).await;
                    EngineTotals::default()
                }
            }
        })
    } else {
        let engine = ConnectScan {
            ports: req.ports.tcp.clone(),
            randomize: req.randomize_ports,
            timing,
            skip_discovery: req.skip_discovery,
            discovery: req.discovery.clone(),
            collapse_threshold: 25,
            hosts_hint,
            origin: req.origin.clone(),
            probe_threads: None,
        };
        let warn = etx.clone();
        tokio::spawn(async move {
            match engine.run(trx, emitter).await {
                Ok(t) => t,
                Err(e) => {
                    let _ = warn.send(ScanEvent::Warning { message: format!("connect scan failed: {e}") }).await;
                    EngineTotals::default()
                }
            }
        })
    };
    drop(etx);

    let detector = req.version_detection.as_ref().map(|v| {
        let mut options = v.options.clone();
        options.bind = options.bind.or(req.origin.source);
        // Detection shares the machine's descriptors with the engine that may still be scanning.
        options.max_sockets = options.max_sockets.min(rustmap_engine::limits::fd_budget() / 2).max(8);
        // The scan's pacing holds for detection probes too.
        options.max_rate = req.timing.max_rate;
        options.host_delay = req.timing.scan_delay;
        Arc::new(Detector::new(v.db.clone(), options))
    });
    let mut lookups: JoinSet<ScanEvent> = JoinSet::new();
    let max_lookups = dns::MAX_PARALLEL_PTR;
    let mut stopped = false;
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
                    ScanEvent::HostDone(h) => match req.reverse_dns {
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
                    let host_timeout = req.timing.host_timeout;
                    lookups.spawn(async move {
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
                                    _ = detect_host(&det, h) => {}
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
                        ev
                    });
                } else if deliver(&mut sinks, &ev)? && !stopped {
                    stopped = true;
                    cancel.cancel();
                }
            }
            Some(done) = lookups.join_next(), if !lookups.is_empty() => {
                if let Ok(ev) = done {
                    if deliver(&mut sinks, &ev)? && !stopped {
                        stopped = true;
                        cancel.cancel();
                    }
                }
            }
            _ = ticker.tick() => {
                for s in sinks.iter_mut() {
                    s.tick()?;
                }
            }
        }
    }
    while let Some(done) = lookups.join_next().await {
        if let Ok(ev) = done {
            deliver(&mut sinks, &ev)?;
        }
    }
    feeder.abort();
    let totals = engine_task.await.unwrap_or_default();
    let stats = ScanStats {
        end_unix: unix_now(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        hosts_up: totals.hosts_up,
        hosts_down: totals.hosts_down,
        // -sL counts its listed hosts as neither up nor down.
        hosts_total: totals.hosts_up + totals.hosts_down + totals.hosts_listed,
        completed: !cancel.is_cancelled(),
    };
    deliver(&mut sinks, &ScanEvent::ScanFinished(stats.clone()))?;
    for s in sinks.iter_mut() {
        s.finish()?;
    }
    Ok(stats)
}

impl ScanRequest {
    /// Number of addresses the target list stands for, where it can be told without reading files.
    fn targets_len_hint(&self) -> u128 {
        self.targets.len_hint()
    }
}
