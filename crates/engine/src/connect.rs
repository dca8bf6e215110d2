//! The TCP connect scan (`-sT`): the one scan that needs no privileges, because the kernel does the
//! handshake. Also connect-based host discovery (nmap's unprivileged default: a host is up when
//! port 80 or 443 answers with a handshake or a refusal).
//!
//! Design: one scheduler task owns every piece of state — active hosts, retry queues, RTT
//! estimators, the congestion window — so there are no locks. Each probe is a small future (a
//! non-blocking `connect()` watched by epoll with a timeout) that reports an [`Outcome`]; the
//! scheduler folds outcomes into states and decides what to send next. Hosts stream in from a
//! bounded channel and leave as soon as they are finished, so memory follows the number of hosts
//! *in flight*, not the size of the target range.
//!
//! States and reasons (nmap's): handshake → open/syn-ack; refusal → closed/conn-refused; an ICMP
//! error → filtered with the ICMP reason (host-unreach, net-unreach, admin-prohibited, ... read
//! from the socket error queue via `IP_RECVERR`); silence after every allowed try →
//! filtered/no-response. As nmap does, a probe is retried only as often as retries have ever paid
//! off on that host (plus one), so a firewall that drops everything costs two tries per port, not
//! eleven.

use crate::connector::{ConnectDone, ConnectJob, Connector};
use crate::discovery::{app_ping, DiscoveryPlan, Ping, PingOutcome};
use crate::origin::Origin;
use crate::probe::icmp_reason;
use crate::proxied::ProxyProber;
pub use crate::report::{collapse, EngineTotals, ScanTarget};
use crate::report::{progress_fraction, HostCore, Life};
use crate::timing::{Pacer, RttEstimator, Timing, Window};
use crate::Emitter;
use rand::seq::SliceRandom;
use rand::Rng;
use rustmap_model::{PortState, Protocol, Reason, ScanEvent};
use rustmap_proxy::{ProxyError, Socks5};
use socket2::{Domain, Socket, Type};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Configuration of a connect scan.
#[derive(Debug, Clone)]
pub struct ConnectScan {
    /// TCP ports to scan.
    pub ports: Vec<u16>,
    /// Scan ports in random order (nmap's default) rather than ascending (`-r`).
    pub randomize: bool,
    /// Timing knobs.
    pub timing: Timing,
    /// Skip discovery and treat every host as up (`-Pn`).
    pub skip_discovery: bool,
    /// Which probes find hosts up: TCP pings become `connect()` calls, HTTP/HTTPS pings are
    /// made as such; the raw-packet ones are not for this engine (the caller refuses them).
    pub discovery: DiscoveryPlan,
    /// Non-open states with more ports than this are folded into `extraports` (nmap: 25).
    pub collapse_threshold: usize,
    /// Number of hosts expected, for progress estimates only.
    pub hosts_hint: Option<u64>,
    /// Interface and source address (`-e`, `-S`).
    pub origin: Origin,
    /// Probe threads (epoll loops) to run: `None` is one per core.
    pub probe_threads: Option<usize>,
    /// Probe through this SOCKS5 proxy (`--proxy`) instead of connecting directly; see
    /// [`crate::proxied`] for what its answers mean.
    pub proxy: Option<Arc<Socks5>>,
}

/// Errors that stop a connect scan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The probe threads could not be started (thread or epoll limits): nothing was scanned.
    #[error("cannot start probe threads: {0}")]
    ProbeThreads(io::Error),
    /// The proxy failed during the scan (went away, stopped accepting our credentials): the
    /// hosts still in progress are not reported.
    #[error("{0}")]
    Proxy(ProxyError),
}

impl Default for ConnectScan {
    fn default() -> ConnectScan {
        ConnectScan {
            ports: Vec::new(),
            randomize: true,
            timing: Timing::default(),
            skip_discovery: false,
            discovery: DiscoveryPlan::default(),
            collapse_threshold: 25,
            hosts_hint: None,
            origin: Origin::default(),
            probe_threads: None,
            proxy: None,
        }
    }
}

/// What one connect attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handshake completed.
    Open(Duration),
    /// Refused (RST, or ICMP port unreachable).
    Refused(Duration, Reason),
    /// An ICMP error or local routing failure said the path is blocked.
    Unreachable(Reason),
    /// An HTTP/HTTPS ping's answer (discovery only), with its reason.
    App(Reason, Duration),
    /// Nothing came back in time.
    Timeout,
    /// This machine ran short of descriptors, ports or buffers; the probe did not go out.
    LocalPressure,
}

pub(crate) fn is_local_pressure(errno: i32) -> bool {
    matches!(errno, libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL | libc::EAGAIN)
}

/// Read the ICMP error that failed a connect from the socket's error queue (`IP_RECVERR`).
fn queued_icmp_reason(fd: std::os::fd::RawFd) -> Option<Reason> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 128];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT).ok()?;
    for c in msg.cmsgs().ok()? {
        match c {
            ControlMessageOwned::Ipv4RecvErr(ee, _) if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP => {
                return icmp_reason(false, ee.ee_type, ee.ee_code)
            }
            ControlMessageOwned::Ipv6RecvErr(ee, _) if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6 => {
                return icmp_reason(true, ee.ee_type, ee.ee_code)
            }
            _ => {}
        }
    }
    None
}

pub(crate) fn classify_error(err: &io::Error, fd: Option<std::os::fd::RawFd>, elapsed: Duration) -> Outcome {
    let errno = err.raw_os_error().unwrap_or(0);
    let icmp = || fd.and_then(queued_icmp_reason);
    match errno {
        // Almost always a RST; not worth a syscall per closed port to look for the rare ICMP port-unreachable.
        libc::ECONNREFUSED => Outcome::Refused(elapsed, Reason::ConnRefused),
        libc::EHOSTUNREACH | libc::ENETUNREACH | libc::ENETDOWN | libc::EHOSTDOWN => {
            let fallback = if errno == libc::ENETUNREACH || errno == libc::ENETDOWN {
                Reason::NetUnreach
            } else {
                Reason::HostUnreach
            };
            Outcome::Unreachable(icmp().unwrap_or(fallback))
        }
        libc::EACCES | libc::EPERM => Outcome::Unreachable(icmp().unwrap_or(Reason::AdminProhibited)),
        libc::ETIMEDOUT => Outcome::Timeout,
        e if is_local_pressure(e) => Outcome::LocalPressure,
        _ => Outcome::Unreachable(icmp().unwrap_or(Reason::Unknown)),
    }
}

pub(crate) fn new_socket(addr: SocketAddr, recverr: bool, origin: &Origin) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), None)?;
    // `-e` and `-S`: leave through that interface, from that address.
    if let Some(dev) = &origin.interface {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(src) = origin.bind_for(addr.ip()) {
        // Take the port at connect time, not now: binding to port 0 would reserve one per socket.
        let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::IpBindAddressNoPort, &true);
        // A source address this machine does not have is a usage problem, not a shortage to
        // wait out: report it as EINVAL so the probe fails instead of being retried forever.
        sock.bind(&SocketAddr::new(src, 0).into()).map_err(|e| {
            if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
                io::Error::from_raw_os_error(libc::EINVAL)
            } else {
                e
            }
        })?;
    }
    // IP_RECVERR costs a syscall per probe, so it is only asked for on hosts that have sent ICMP
    // errors; without it we still know "unreachable", just not which ICMP said so.
    if recverr {
        let _ = if addr.is_ipv6() {
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
        } else {
            nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
        };
    }
    Ok(sock)
}

/// What the scheduler needs to know about a probe when its outcome comes back.
#[derive(Debug, Clone, Copy)]
struct ProbeMeta {
    host: u64,
    port: u16,
    tryno: u8,
    /// The discovery probe this is, if it is one.
    ping: Option<Ping>,
    recverr: bool,
}

type ProbeDone = ConnectDone<ProbeMeta>;

/// What to launch next: a connect probe, or an HTTP/HTTPS ping (host, its address, try, TLS?).
enum Job {
    Connect(ConnectJob<ProbeMeta>),
    App { meta: ProbeMeta, addr: SocketAddr, tls: bool, timeout: Duration },
}

/// Where connect probes go: the epoll threads, or tasks through a proxy.
enum Probes {
    Direct(Connector<ProbeMeta>),
    Proxy(ProxyProber<ProbeMeta>),
}

impl Probes {
    fn submit(&mut self, job: ConnectJob<ProbeMeta>) {
        match self {
            Probes::Direct(c) => c.submit(job),
            Probes::Proxy(p) => p.submit(job),
        }
    }
}

struct Host {
    /// Its life, results and round trips (shared with the raw engine).
    core: HostCore,
    /// Discovery: pings not yet tried.
    disc_next: usize,
    /// Rotation of the shared port order this host starts at, and how many new ports were sent.
    offset: usize,
    next: usize,
    retries: VecDeque<(u16, u8, Option<Ping>)>,
    outstanding: usize,
    /// Discovery probes among `outstanding`: once the host is up they are moot, and it does not
    /// wait for them (their outcomes are dropped when they come back).
    disc_outstanding: usize,
    /// This host sends ICMP errors: ask for them in detail (IP_RECVERR) from now on.
    recverr: bool,
}

impl Host {
    /// Push the events of what this host learned since the last call.
    fn flush_news(&mut self, out: &mut Vec<ScanEvent>) {
        self.core.flush_news(None, out);
    }
}

impl ConnectScan {
    /// Run the scan over the targets received on `targets` until the channel closes (or the
    /// emitter is cancelled). Emits `PortFound` and `HostDone` events; the caller emits the
    /// scan's start and end. Fails, having scanned nothing, when its probe threads cannot start.
    pub async fn run(
        self,
        mut targets: mpsc::Receiver<ScanTarget>,
        emitter: Emitter,
    ) -> Result<EngineTotals, EngineError> {
        let timing = self.timing.clone();
        let mut order: Vec<u16> = self.ports.clone();
        if self.randomize {
            order.shuffle(&mut rand::rng());
        }
        let order = Arc::new(order);
        let mut window = Window::new(&timing);
        // Round trips of every host: the timeout of hosts that have not answered yet (nmap's
        // group timing), so the empty addresses of a sweep cost a few round trips, not seconds.
        let mut global_rtt = RttEstimator::default();
        // Discovery probes in flight, which have their own limit (`Timing::room`).
        let mut disc_in_flight: usize = 0;
        let mut hosts: HashMap<u64, Host> = HashMap::new();
        let mut ring: VecDeque<u64> = VecDeque::new();
        let mut next_id: u64 = 0;
        let mut closed = false;
        // Each probe is its own task so that the kernel work of many probes (socket, connect,
        // close) spreads over every runtime thread; results come back in batches.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<ProbeDone>>();
        let mut in_flight: usize = 0;
        let mut batch: Vec<Vec<ProbeDone>> = Vec::with_capacity(64);
        // A proxy that fails mid-scan ends it (never "every port filtered").
        let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<ProxyError>();
        let mut probes = match &self.proxy {
            Some(p) => Probes::Proxy(ProxyProber::new(Arc::clone(p), done_tx, fatal_tx)),
            None => {
                let threads = self.probe_threads.unwrap_or_else(Connector::<ProbeMeta>::default_threads).max(1);
                Probes::Direct(
                    Connector::with_origin(threads, done_tx, self.origin.clone()).map_err(EngineError::ProbeThreads)?,
                )
            }
        };
        let mut totals = EngineTotals::default();
        let mut replies: u64 = 0;
        let mut hosts_done: u64 = 0;
        let started = Instant::now();
        let mut pacer = Pacer::new(&timing, started);
        let mut news: Vec<ScanEvent> = Vec::new();
        let mut pause_until = Instant::now();
        let mut last_progress = Instant::now();
        let max_hosts = timing.max_hostgroup.max(timing.min_hostgroup).max(1);
        let pings: Vec<Ping> = self.discovery.connect_pings().into_iter().filter(|p| !p.needs_raw()).collect();
        // HTTP/HTTPS pings run as tasks and report through the same kind of batch.
        let (app_tx, mut app_rx) = mpsc::unbounded_channel::<ProbeDone>();

        loop {
            if emitter.is_cancelled() {
                break;
            }
            // Admit new hosts while there is room.
            while !closed && hosts.len() < max_hosts {
                match targets.try_recv() {
                    Ok(t) => {
                        let id = next_id;
                        next_id += 1;
                        hosts.insert(id, self.new_host(t, &order, &timing, &pings));
                        ring.push_back(id);
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }

            // What hosts learned since the last turn leaves at once, not when the host is done.
            for h in hosts.values_mut() {
                h.flush_news(&mut news);
            }
            for ev in news.drain(..) {
                emitter.emit(ev).await;
            }

            // Hosts past their deadline, or with nothing left to do, are finished.
            let now = Instant::now();
            let finished: Vec<u64> = hosts
                .iter()
                .filter(|(_, h)| h.core.deadline.is_some_and(|d| now >= d) || self.host_complete(h, &pings))
                .map(|(id, _)| *id)
                .collect();
            for id in finished {
                if let Some(h) = hosts.remove(&id) {
                    ring.retain(|x| *x != id);
                    let timed_out = !self.host_complete(&h, &pings);
                    self.finish_host(h, timed_out, &emitter, &mut totals).await;
                    hosts_done += 1;
                }
            }

            if closed && hosts.is_empty() && in_flight == 0 {
                break;
            }

            // Launch what the window, pacing and rate limits allow.
            let mut allowed = timing.allowed_in_flight(&window, totals.probes_sent, started.elapsed());
            // With `--max-rate`, every probe that is due goes now (a late wake-up sends a burst).
            while Instant::now() >= pause_until && pacer.ready(Instant::now()) {
                // Asked again for every probe: `--min-rate` opens the window only while the scan
                // is behind its rate, not for as many probes as fit once it was behind.
                if timing.min_rate.is_some() {
                    allowed = timing.allowed_in_flight(&window, totals.probes_sent, started.elapsed());
                }
                let (ports_ok, disc_ok) = timing.room(allowed, in_flight, disc_in_flight);
                if !ports_ok && !disc_ok {
                    break;
                }
                let Some(job) =
                    self.next_probe(&mut hosts, &mut ring, &order, &timing, &pings, &global_rtt, ports_ok, disc_ok)
                else {
                    break;
                };
                totals.probes_sent += 1;
                pacer.on_sent(Instant::now(), &mut rand::rng());
                in_flight += 1;
                let discovery = match &job {
                    Job::Connect(j) => j.meta.ping.is_some(),
                    Job::App { meta, .. } => meta.ping.is_some(),
                };
                disc_in_flight += usize::from(discovery);
                match job {
                    Job::Connect(job) => probes.submit(job),
                    Job::App { meta, addr, tls, timeout } => {
                        let (tx, origin) = (app_tx.clone(), self.origin.clone());
                        tokio::spawn(async move {
                            let outcome = match app_ping(addr, tls, timeout, &origin).await {
                                PingOutcome::Up(Reason::ConnRefused, rtt) => Outcome::Refused(rtt, Reason::ConnRefused),
                                PingOutcome::Up(reason, rtt) => Outcome::App(reason, rtt),
                                PingOutcome::Blocked(reason) => Outcome::Unreachable(reason),
                                PingOutcome::Silent => Outcome::Timeout,
                            };
                            let _ = tx.send(ConnectDone { meta, outcome });
                        });
                    }
                }
            }

            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                let fraction =
                    progress_fraction(self.hosts_hint, hosts_done, hosts.values().map(|h| h.next), order.len());
                emitter
                    .emit(ScanEvent::Progress {
                        hosts_done,
                        probes_sent: totals.probes_sent,
                        replies,
                        fraction,
                        hosts_active: hosts.len() as u64,
                    })
                    .await;
            }

            // Wait for the next thing to happen.
            let now = Instant::now();
            let wake = if now < pause_until {
                pause_until
            } else {
                match pacer.wait_until(now) {
                    Some(at) if in_flight < allowed => at,
                    _ => now + Duration::from_millis(250),
                }
            };
            let room = !closed && hosts.len() < max_hosts;
            tokio::select! {
                biased;
                _ = emitter.cancel_token().cancelled() => break,
                Some(e) = fatal_rx.recv() => return Err(EngineError::Proxy(e)),
                _ = done_rx.recv_many(&mut batch, 64), if in_flight > 0 => {
                    for done in batch.drain(..).flatten() {
                        in_flight = in_flight.saturating_sub(1);
                        if done.meta.ping.is_some() {
                            disc_in_flight = disc_in_flight.saturating_sub(1);
                        }
                        if !matches!(done.outcome, Outcome::Timeout | Outcome::LocalPressure) {
                            replies += 1;
                        }
                        if matches!(done.outcome, Outcome::LocalPressure) {
                            totals.probes_sent = totals.probes_sent.saturating_sub(1);
                            pacer.refund();
                            window.on_local_pressure(in_flight + 1);
                            pause_until = Instant::now() + Duration::from_millis(20);
                        }
                        self.on_done(done, &mut hosts, &mut window, &mut global_rtt, &timing);
                    }
                }
                Some(done) = app_rx.recv(), if in_flight > 0 => {
                    in_flight = in_flight.saturating_sub(1);
                    disc_in_flight = disc_in_flight.saturating_sub(1);
                    if !matches!(done.outcome, Outcome::Timeout) {
                        replies += 1;
                    }
                    self.on_done(done, &mut hosts, &mut window, &mut global_rtt, &timing);
                }
                t = targets.recv(), if room => match t {
                    Some(t) => {
                        let id = next_id;
                        next_id += 1;
                        hosts.insert(id, self.new_host(t, &order, &timing, &pings));
                        ring.push_back(id);
                    }
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }

        // Cancelled: report what we have for hosts still in progress.
        if emitter.is_cancelled() {
            for (_, h) in hosts.drain() {
                if h.core.is_up() {
                    self.finish_host(h, true, &emitter, &mut totals).await;
                }
            }
        }
        Ok(totals)
    }

    fn new_host(&self, target: ScanTarget, order: &[u16], timing: &Timing, pings: &[Ping]) -> Host {
        let offset = if order.is_empty() || !self.randomize { 0 } else { rand::rng().random_range(0..order.len()) };
        let skip = self.skip_discovery || pings.is_empty();
        Host {
            core: HostCore::new(target, timing, skip, Instant::now()),
            disc_next: 0,
            offset,
            next: 0,
            retries: VecDeque::new(),
            outstanding: 0,
            disc_outstanding: 0,
            // A proxy's answer is as exact as it gets: no second try to read ICMP details.
            recverr: self.proxy.is_some(),
        }
    }

    fn host_complete(&self, h: &Host, pings: &[Ping]) -> bool {
        match h.core.life {
            Life::Discovery { .. } => h.disc_next >= pings.len() && h.retries.is_empty() && h.outstanding == 0,
            Life::Up { .. } => {
                h.next >= self.ports.len() && h.retries.is_empty() && h.outstanding == h.disc_outstanding
            }
        }
    }

    /// Pick the next probe round-robin over hosts: retries first, then fresh ports.
    #[allow(clippy::too_many_arguments)]
    fn next_probe(
        &self,
        hosts: &mut HashMap<u64, Host>,
        ring: &mut VecDeque<u64>,
        order: &Arc<Vec<u16>>,
        timing: &Timing,
        pings: &[Ping],
        global_rtt: &RttEstimator,
        ports_ok: bool,
        disc_ok: bool,
    ) -> Option<Job> {
        for _ in 0..ring.len() {
            let id = ring.pop_front()?;
            ring.push_back(id);
            let Some(h) = hosts.get_mut(&id) else { continue };
            if h.outstanding >= timing.max_parallelism {
                continue;
            }
            // A host's probes are discovery probes until it is up, port probes after.
            if (!h.core.is_up() && !disc_ok) || (h.core.is_up() && !ports_ok) {
                continue;
            }
            let pick = if let Some(r) = h.retries.pop_front() {
                Some(r)
            } else {
                match h.core.life {
                    Life::Discovery { .. } if h.disc_next < pings.len() => {
                        h.disc_next += 1;
                        let ping = pings[h.disc_next - 1];
                        Some((ping.port().unwrap_or(0), 0, Some(ping)))
                    }
                    Life::Up { .. } if h.next < order.len() => {
                        let port = order[(h.offset + h.next) % order.len()];
                        h.next += 1;
                        Some((port, 0, None))
                    }
                    _ => None,
                }
            };
            let Some((port, tryno, ping)) = pick else { continue };
            h.outstanding += 1;
            h.disc_outstanding += usize::from(ping.is_some());
            let addr = SocketAddr::new(h.core.target.addr, port);
            let rtt = &h.core.rtt;
            let timeout = if rtt.srtt_us().is_some() { rtt.timeout(timing) } else { global_rtt.timeout(timing) };
            let meta = ProbeMeta { host: id, port, tryno, ping, recverr: h.recverr };
            if let Some(p @ (Ping::Http(_) | Ping::Https(_))) = ping {
                return Some(Job::App { meta, addr, tls: matches!(p, Ping::Https(_)), timeout });
            }
            return Some(Job::Connect(ConnectJob { addr, timeout, recverr: h.recverr, meta }));
        }
        None
    }

    fn on_done(
        &self,
        done: ProbeDone,
        hosts: &mut HashMap<u64, Host>,
        window: &mut Window,
        global_rtt: &mut RttEstimator,
        timing: &Timing,
    ) {
        let ProbeDone { meta: done, outcome } = done;
        let Some(h) = hosts.get_mut(&done.host) else { return };
        h.outstanding = h.outstanding.saturating_sub(1);
        if done.ping.is_some() {
            h.disc_outstanding = h.disc_outstanding.saturating_sub(1);
        }
        // A discovery answer that arrives after the host moved on is of no further use.
        if done.ping.is_some() && h.core.is_up() {
            return;
        }
        let mut answered = |h: &mut Host, window: &mut Window, rtt: Option<Duration>| {
            if let Some(rtt) = rtt {
                // Each try is a connection of its own: its round trip is unambiguous.
                h.core.rtt.sample(rtt);
                global_rtt.sample(rtt);
            }
            window.on_reply();
            if done.tryno > 0 {
                window.on_loss();
                h.core.max_successful_try = h.core.max_successful_try.max(done.tryno);
            }
        };
        let verdict: Option<(PortState, Reason)> = match outcome {
            Outcome::Open(rtt) => {
                answered(h, window, Some(rtt));
                Some((PortState::Open, Reason::SynAck))
            }
            Outcome::App(reason, rtt) => {
                answered(h, window, Some(rtt));
                Some((PortState::Open, reason))
            }
            Outcome::Refused(rtt, reason) => {
                answered(h, window, Some(rtt));
                Some((PortState::Closed, reason))
            }
            Outcome::Unreachable(_) if !done.recverr => {
                // We now know this host sends ICMP errors: ask again, this time reading the ICMP
                // type and code, so the reason is exact (admin-prohibited vs host-unreach, ...).
                h.recverr = true;
                h.retries.push_front((done.port, done.tryno, done.ping));
                None
            }
            Outcome::Unreachable(reason) => {
                answered(h, window, None);
                Some((PortState::Filtered, reason))
            }
            Outcome::Timeout => {
                // Silence from an address that never answered says nothing about congestion.
                if done.ping.is_none() {
                    window.on_silence();
                }
                if done.tryno < h.core.allowed_tries(timing) {
                    h.retries.push_back((done.port, done.tryno + 1, done.ping));
                    None
                } else {
                    Some((PortState::Filtered, Reason::NoResponse))
                }
            }
            Outcome::LocalPressure => {
                // Not sent: try again later with the same try number.
                h.retries.push_front((done.port, done.tryno, done.ping));
                None
            }
        };
        let Some((state, reason)) = verdict else { return };
        if done.ping.is_some() {
            match state {
                PortState::Open | PortState::Closed => {
                    h.core.mark_up(reason, 0);
                    h.retries.retain(|r| r.2.is_none());
                }
                // Prefer an explicit ICMP reason over silence when telling why a host is down.
                _ => h.core.note_negative(reason, reason != Reason::NoResponse),
            }
        } else {
            h.core.results.push((Protocol::Tcp, done.port, state, reason, 0));
        }
    }

    async fn finish_host(&self, h: Host, timed_out: bool, emitter: &Emitter, totals: &mut EngineTotals) {
        let report = h.core.into_report(timed_out, None);
        for ev in report.into_events(self.collapse_threshold, totals) {
            emitter.emit(ev).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::HostStatus;
    use std::net::TcpListener;

    #[tokio::test]
    async fn reused_sockets_keep_outcomes_apart() {
        // One worker, so refused sockets are reused for the following jobs: closed and open
        // ports interleaved must still come back with their own outcomes.
        let open_l = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = open_l.local_addr().unwrap();
        let mut closed = Vec::new();
        for _ in 0..50 {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            closed.push(l.local_addr().unwrap());
        }
        // Listeners dropped: their ports are closed now.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut c = Connector::new(1, tx).unwrap();
        let t = Duration::from_secs(2);
        for (i, addr) in closed.iter().enumerate() {
            c.submit(ConnectJob { addr: *addr, timeout: t, recverr: false, meta: (i as u16, false) });
            if i % 10 == 0 {
                c.submit(ConnectJob { addr: open, timeout: t, recverr: false, meta: (i as u16, true) });
            }
        }
        let want = closed.len() + closed.len().div_ceil(10);
        let mut got = Vec::new();
        while got.len() < want {
            got.extend(rx.recv().await.unwrap());
        }
        for d in &got {
            match d.meta {
                (_, true) => assert!(matches!(d.outcome, Outcome::Open(_)), "{d:?}"),
                (_, false) => assert!(matches!(d.outcome, Outcome::Refused(_, Reason::ConnRefused)), "{d:?}"),
            }
        }
        drop(open_l);
    }

    #[tokio::test]
    async fn connector_sees_open_closed_and_timeout() {
        let (l, open, closed) = crate::connector::tests::open_and_closed();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut c = Connector::new(2, tx).unwrap();
        let t = Duration::from_secs(2);
        c.submit(ConnectJob { addr: open, timeout: t, recverr: false, meta: 1u8 });
        c.submit(ConnectJob { addr: closed, timeout: t, recverr: true, meta: 2u8 });
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(rx.recv().await.unwrap());
        }
        got.sort_by_key(|d| d.meta);
        assert!(matches!(got[0].outcome, Outcome::Open(_)), "{:?}", got[0]);
        assert!(matches!(got[1].outcome, Outcome::Refused(_, Reason::ConnRefused)), "{:?}", got[1]);
        // A listener whose backlog is full never completes the handshake: the probe times out.
        drop(l);
    }

    #[tokio::test]
    async fn a_proxy_that_is_gone_fails_the_scan_instead_of_filtering_every_port() {
        // Nothing listens where the proxy should be.
        let gone = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let url = rustmap_proxy::ProxyUrl::parse(&format!("socks5://{gone}")).unwrap();
        let scan = ConnectScan {
            ports: vec![22, 80, 443],
            skip_discovery: true,
            proxy: Some(Arc::new(Socks5::new(url, gone))),
            ..ConnectScan::default()
        };
        let (tx, rx) = mpsc::channel(4);
        let (etx, mut erx) = mpsc::channel(1024);
        let emitter = Emitter::new(etx, tokio_util::sync::CancellationToken::new());
        tx.send(ScanTarget { addr: "127.0.0.1".parse().unwrap(), hostnames: vec![] }).await.unwrap();
        drop(tx);
        let run = tokio::spawn(scan.run(rx, emitter));
        let mut ports = 0;
        while let Some(ev) = erx.recv().await {
            ports += usize::from(matches!(ev, ScanEvent::PortFound { .. }));
        }
        let err = run.await.unwrap().unwrap_err();
        assert!(matches!(err, EngineError::Proxy(_)), "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
        assert_eq!(ports, 0, "no port reported through a dead proxy");
    }

    #[tokio::test]
    async fn scan_of_loopback_finds_exactly_the_listeners() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let pa = a.local_addr().unwrap().port();
        let pb = b.local_addr().unwrap().port();
        // Ports around the listeners, which are closed unless some other process holds them.
        let mut ports: Vec<u16> = vec![pa, pb];
        ports.extend((1..=60).map(|i| 40000 + i));
        ports.sort_unstable();
        ports.dedup();
        let scan = ConnectScan { ports: ports.clone(), skip_discovery: true, ..ConnectScan::default() };
        let (tx, rx) = mpsc::channel(4);
        let (etx, mut erx) = mpsc::channel(1024);
        let emitter = Emitter::new(etx, tokio_util::sync::CancellationToken::new());
        tx.send(ScanTarget { addr: "127.0.0.1".parse().unwrap(), hostnames: vec![] }).await.unwrap();
        drop(tx);
        let run = tokio::spawn(scan.run(rx, emitter));
        let mut host = None;
        while let Some(ev) = erx.recv().await {
            if let ScanEvent::HostDone(h) = ev {
                host = Some(h);
            }
        }
        let totals = run.await.unwrap().unwrap();
        let host = host.expect("host reported");
        assert_eq!(totals.hosts_up, 1);
        assert_eq!(host.status, HostStatus::Up);
        assert_eq!(host.reason, Reason::UserSet);
        let open: Vec<u16> = host.ports.iter().filter(|p| p.state == PortState::Open).map(|p| p.port).collect();
        assert!(open.contains(&pa) && open.contains(&pb), "{open:?}");
        assert_eq!(host.ports_scanned(), ports.len() as u64);
    }
}
