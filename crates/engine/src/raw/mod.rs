//! Raw-packet scans: the TCP scans SYN (`-sS`), FIN (`-sF`), NULL (`-sN`), Xmas (`-sX`), ACK
//! (`-sA`), Window (`-sW`) and Maimon (`-sM`), the UDP scan (`-sU`), and the SCTP INIT (`-sY`,
//! the guide's `-s Z`) and COOKIE-ECHO scans, over IPv4 and IPv6, with raw-packet host discovery
//! (ICMP echo, TCP SYN to 443, TCP ACK to 80, ICMP timestamp: nmap's privileged default minus
//! ARP). One run may combine one TCP type, UDP and one SCTP type (`-sS -sU`, `-s SU`): every
//! host's probes of all of them share one window and one set of timers.
//!
//! Design: one blocking thread owns all state (hosts, their outstanding probes, RTT estimators,
//! the congestion window), sends hand-built packets through a raw IP socket and reads replies
//! from an AF_PACKET capture socket, so there are no locks and no per-packet task.
//!
//! - **Validation without a probe table.** Every probe's sequence number (and acknowledgement
//!   number, when the ACK flag is set) is a keyed hash of the target address, port and probe
//!   kind. A reply is ours only if it echoes that cookie the way TCP must (SYN/ACK and RST acknowledge
//!   `cookie + 1`; a RST to a probe that carried an ACK has `seq == cookie`), and an ICMP error
//!   only if the TCP header it quotes carries it. Spoofed or stray packets are ignored. SCTP
//!   probes carry the cookie as their initiate tag (INIT) or verification tag (COOKIE-ECHO),
//!   which every answer must echo. UDP has no field a reply must echo, so a UDP answer counts
//!   only when it comes from a probed port to our reserved source port while that probe is out.
//! - **UDP payloads** come from RustMap's own table ([`crate::payloads`]), so DNS, SNMP, NTP and
//!   friends answer and show as open rather than open|filtered.
//! - **ICMP rate limits.** Hosts answer closed UDP ports with ICMP port-unreachable, and most
//!   kernels send about one per second after a short burst. Once a host has answered a closed
//!   port, a UDP probe to it that was sent at the current send gap and still went unanswered
//!   doubles that gap (from 50 ms up to `--max-scan-delay`, 1 s by default), as nmap slows down,
//!   and retries spent finding that pace do not count against `--max-retries`. So closed ports
//!   are not reported open|filtered just because their answers were suppressed.
//! - **Outstanding probes** are kept per host, bounded by the congestion window and the per-host
//!   parallelism, so memory follows what is in flight, not the size of the target range. Hosts
//!   stream in from a bounded channel and leave as soon as they are finished.
//! - **Timing** is the connect scan's: RTT-based timeouts (Karn: only first tries are sampled),
//!   retries only as often as retries have paid off on that host, and the scan ends when the
//!   last probe's own timeout expires.
//! - The kernel answers the targets' SYN/ACKs with a RST (it has no socket for them), which is
//!   what a half-open scan wants. Our source port is held by a bound socket for the whole scan,
//!   so no local connection can be given the same port and see our replies.

use crate::discovery::{app_ping, DiscoveryPlan, Ping, PingOutcome};
use crate::origin::Origin;
use crate::payloads;
use crate::probe::icmp_reason;
use crate::probe::{self, Reply};
use crate::report::{progress_fraction, EngineTotals, HostCore, Life, ScanTarget};
use crate::timing::{Pacer, RttEstimator, Timing, Window};
use crate::Emitter;
use rand::seq::SliceRandom;
use rand::Rng;
use rustc_hash::FxHashMap;
use rustmap_model::{Protocol, Reason, ScanEvent, ScanType};
use rustmap_netio::capture::Capture;
use rustmap_netio::capture::RecvBatch;
use rustmap_netio::neigh::Neighbours;
use rustmap_netio::raw::{Batch, LinkSender, RawIpSender};
use rustmap_netio::route::{Link, RouteTable};
use rustmap_netio::NetioError;
use rustmap_wire::probe::{self as wp, IpProbe, ReplyBody, L4};
use rustmap_wire::tcp::{Flags, TcpOption};
use socket2::{Domain, Socket, Type};
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;

mod cookies;
mod packets;
mod replies;
mod sockets;
mod state;
mod timeouts;

#[cfg(test)]
mod sim;

use cookies::*;
pub use sockets::RawSockets;
use sockets::*;
use state::*;
use timeouts::*;

/// Errors that stop a raw scan before it starts.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RawScanError {
    /// Raw sockets could not be opened (privileges, missing kernel support).
    #[error(transparent)]
    Netio(#[from] NetioError),
    /// This scan type is not a raw scan (the connect scan has its own engine).
    #[error("{0:?} is not a raw scan type")]
    NotRaw(ScanType),
    /// Two scan types of one protocol (as in nmap, one TCP type and one SCTP type per scan).
    #[error("two {0} scan types in one scan")]
    TwoOfAKind(Protocol),
    /// Reserving our source port failed.
    #[error("reserving a source port: {0}")]
    SourcePort(std::io::Error),
    /// `-e` named an interface this machine does not have, or one we cannot bind to.
    #[error("interface {0}: {1}")]
    Interface(String, String),
    /// The scan's thread panicked (a bug): its results are lost, and the scan must not be
    /// reported as completed.
    #[error("the raw scan engine crashed: {0}")]
    Panicked(String),
}

/// Configuration of a raw scan.
#[derive(Debug, Clone)]
pub struct RawScan {
    /// The scans and their ports: at most one TCP type (SYN, FIN, NULL, Xmas, ACK, Window,
    /// Maimon), UDP, and at most one SCTP type (INIT, COOKIE-ECHO).
    pub scans: Vec<(ScanType, Vec<u16>)>,
    /// Scan ports in random order (nmap's default) rather than ascending (`-r`).
    pub randomize: bool,
    /// Timing knobs.
    pub timing: Timing,
    /// Skip discovery and treat every host as up (`-Pn`).
    pub skip_discovery: bool,
    /// Which probes find hosts up (ignored with `skip_discovery`).
    pub discovery: DiscoveryPlan,
    /// Non-open states with more ports than this are folded into `extraports` (nmap: 25).
    pub collapse_threshold: usize,
    /// Number of hosts expected, for progress estimates only.
    pub hosts_hint: Option<u64>,
    /// Interface and source address (`-e`, `-S`).
    pub origin: Origin,
    /// Send every probe through the raw IP socket (`--send-ip`), never as an Ethernet frame.
    pub send_ip: bool,
}

/// What a failed engine thread said: its panic message, if it was a string.
fn join_error_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "its thread was cancelled".into();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl RawScan {
    /// Scan the targets received on `targets` until the channel closes or the emitter is
    /// cancelled, on a blocking thread of its own.
    pub async fn run(
        self,
        sockets: RawSockets,
        targets: mpsc::Receiver<ScanTarget>,
        emitter: Emitter,
    ) -> Result<EngineTotals, RawScanError> {
        let mut seen: Vec<Protocol> = Vec::new();
        for (scan, _) in &self.scans {
            if *scan == ScanType::Connect {
                return Err(RawScanError::NotRaw(*scan));
            }
            if seen.contains(&scan.protocol()) {
                return Err(RawScanError::TwoOfAKind(scan.protocol()));
            }
            seen.push(scan.protocol());
        }
        let rt = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || self.run_blocking(sockets, targets, emitter, rt));
        job.await.map_err(|e| RawScanError::Panicked(join_error_message(e)))
    }

    /// The index of the scan of a protocol, if this run has one.
    fn scan_of(&self, proto: Protocol) -> Option<u8> {
        self.scans.iter().position(|(t, _)| t.protocol() == proto).map(|i| i as u8)
    }

    fn is_udp(&self, pk: Pk) -> bool {
        matches!(pk, Pk::Port(s, _) if self.scans.get(usize::from(s)).is_some_and(|(t, _)| *t == ScanType::Udp))
    }

    fn new_host(
        &self,
        target: ScanTarget,
        orders: &[Vec<u16>],
        timing: &Timing,
        plans: &Plans,
        routes: &RouteTable,
    ) -> Option<Host> {
        let src = self.origin.source_for(target.addr)?;
        let v6 = target.addr.is_ipv6();
        // On a directly connected link, ARP (or neighbour discovery) replaces the other probes,
        // as in nmap: nothing answers more surely, and a firewall does not filter it.
        let link = routes.on_link(target.addr, self.origin.interface.as_deref());
        let plan = match (&link, plans.link_layer && !self.skip_discovery, v6) {
            (Some(_), true, false) => PlanKind::Arp,
            (Some(_), true, true) => PlanKind::Nd,
            (_, _, false) => PlanKind::V4,
            (_, _, true) => PlanKind::V6,
        };
        let cursors = orders
            .iter()
            .map(|o| (if o.is_empty() || !self.randomize { 0 } else { rand::rng().random_range(0..o.len()) }, 0))
            .collect();
        Some(Host {
            core: HostCore::new(target, timing, self.skip_discovery, Instant::now()),
            src,
            disc_next: 0,
            plan,
            link,
            mac: None,
            hop: if self.send_ip { Hop::Ip } else { Hop::Unresolved },
            sent: VecDeque::new(),
            cursors,
            turn: 0,
            retries: VecDeque::new(),
            outstanding: FxHashMap::default(),
            udp_gap: Duration::ZERO,
            udp_next: Instant::now(),
            udp_grown: None,
            udp_unreach: false,
        })
    }

    fn host_complete(&self, h: &Host, plans: &Plans) -> bool {
        let more = match h.core.life {
            Life::Discovery { .. } => h.disc_next < plans.of(h.plan).len(),
            Life::Up { .. } => h.cursors.iter().zip(&self.scans).any(|(c, (_, ports))| c.1 < ports.len()),
        };
        !more && h.retries.is_empty() && h.outstanding.is_empty()
    }

    fn run_blocking(
        self,
        io: RawSockets,
        mut targets: mpsc::Receiver<ScanTarget>,
        emitter: Emitter,
        rt: tokio::runtime::Handle,
    ) -> EngineTotals {
        let timing = self.timing.clone();
        let plans = Plans::new(&self.discovery);
        let routes = RouteTable::load();
        // Link-layer senders (ARP, ND), one per interface, opened when first needed.
        let mut links: HashMap<u32, Option<LinkSender>> = HashMap::new();
        // HTTP/HTTPS pings run as tasks on the runtime and report here.
        let (app_tx, app_rx) = std::sync::mpsc::channel::<AppDone>();
        let cookies = Cookies { key: RandomState::new() };
        let mut rng = rand::rng();
        let local = Local { sport: io.sport, udp_sport: io.udp_sport, icmp_id: rand::rng().random() };
        let orders: Vec<Vec<u16>> = self
            .scans
            .iter()
            .map(|(_, ports)| {
                let mut o = ports.clone();
                if self.randomize {
                    o.shuffle(&mut rand::rng());
                }
                o
            })
            .collect();
        let total_ports: usize = orders.iter().map(Vec::len).sum();
        let has_udp = self.scan_of(Protocol::Udp).is_some();
        let mut net = NetState { window: Window::new(&timing), global_rtt: RttEstimator::default() };
        let mut hosts: FxHashMap<u64, Host> = FxHashMap::default();
        let mut by_addr: FxHashMap<IpAddr, u64> = FxHashMap::default();
        let mut ring: VecDeque<u64> = VecDeque::new();
        let mut clock = Timeouts::default();
        let mut next_id: u64 = 0;
        let mut closed = false;
        let mut in_flight: usize = 0;
        // Discovery probes among them, which have their own limit (`Timing::room`).
        let mut disc_in_flight: usize = 0;
        let mut totals = EngineTotals::default();
        let mut replies: u64 = 0;
        let mut hosts_done: u64 = 0;
        let started = Instant::now();
        let mut pacer = Pacer::new(&timing, started);
        let mut news: Vec<ScanEvent> = Vec::new();
        let mut pause_until = Instant::now();
        let mut last_progress = Instant::now();
        let mut last_sweep = Instant::now();
        let max_hosts = timing.max_hostgroup.max(timing.min_hostgroup).max(1);
        let mut outbox = Outbox::default();
        let mut rx = RecvBatch::default();
        let mut neigh = NeighCache { table: Neighbours::load(), read: Instant::now() };

        loop {
            if emitter.is_cancelled() {
                break;
            }
            // Admit hosts; with nothing in flight and nobody active, wait for the next one.
            while !closed && hosts.len() < max_hosts {
                let t = if hosts.is_empty() && in_flight == 0 {
                    targets.blocking_recv().ok_or(mpsc::error::TryRecvError::Disconnected)
                } else {
                    targets.try_recv()
                };
                match t {
                    Ok(t) => {
                        let addr = t.addr;
                        if by_addr.contains_key(&addr) {
                            continue;
                        }
                        match self.new_host(t.clone(), &orders, &timing, &plans, &routes) {
                            Some(h) => {
                                let id = next_id;
                                next_id += 1;
                                hosts.insert(id, h);
                                by_addr.insert(addr, id);
                                ring.push_back(id);
                            }
                            None => {
                                // No source address for it (no route, or a broadcast address):
                                // nothing can be sent, so it is down, and counted as such.
                                let message = format!("no route to {addr}: host not probed");
                                emitter.emit_blocking(ScanEvent::Warning { message });
                                let report = HostCore::new(t, &timing, false, Instant::now()).into_report(false, None);
                                for ev in report.into_events(self.collapse_threshold, &mut totals) {
                                    emitter.emit_blocking(ev);
                                }
                            }
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
                }
            }

            // Probes whose time is up: retry or conclude.
            let now = Instant::now();
            let global_wait = net.global_rtt.timeout(&timing);
            while let Some((id, pk, tryno)) = clock.next_overdue(&mut hosts, global_wait, &timing, now) {
                let Some(h) = hosts.get_mut(&id) else { continue };
                let sent = h.outstanding.remove(&pk).map_or(now, |o| o.0);
                in_flight = in_flight.saturating_sub(1);
                if matches!(pk, Pk::Disc(_)) {
                    disc_in_flight = disc_in_flight.saturating_sub(1);
                }
                self.on_silence(h, pk, tryno, sent, now, &mut net);
            }

            // What hosts learned leaves as events, and finished hosts leave; a sweep over every
            // host is cheap at this rate. (A port waits at most one sweep to be announced.)
            if last_sweep.elapsed() >= Duration::from_millis(2) || closed {
                last_sweep = Instant::now();
                for h in hosts.values_mut() {
                    h.flush_news(&mut news);
                }
                for ev in news.drain(..) {
                    emitter.emit_blocking(ev);
                }
                let now = Instant::now();
                let finished: Vec<u64> = hosts
                    .iter()
                    .filter(|(_, h)| h.core.deadline.is_some_and(|d| now >= d) || self.host_complete(h, &plans))
                    .map(|(id, _)| *id)
                    .collect();
                for id in finished {
                    if let Some(h) = hosts.remove(&id) {
                        ring.retain(|x| *x != id);
                        by_addr.remove(&h.core.target.addr);
                        in_flight = in_flight.saturating_sub(h.outstanding.len());
                        let discs = h.outstanding.keys().filter(|pk| matches!(pk, Pk::Disc(_))).count();
                        disc_in_flight = disc_in_flight.saturating_sub(discs);
                        let timed_out = !self.host_complete(&h, &plans);
                        self.finish_host(h, timed_out, &emitter, &mut totals);
                        hosts_done += 1;
                    }
                }
            }
            if closed && hosts.is_empty() {
                break;
            }

            // Send what the window, pacing and rate limits allow, in bursts of batches: probes
            // are built into the outbox, which goes out with one `sendmmsg` when it is full,
            // when the next probe needs another socket, or at the end of the burst.
            let allowed = timing.allowed_in_flight(&net.window, totals.probes_sent, started.elapsed());
            let mut burst = 0;
            let mut carry: Option<(u64, Pk, u8)> = None;
            let mut pressure = false;
            while !pressure && burst < 256 && Instant::now() >= pause_until && pacer.ready(Instant::now()) {
                // Fill the outbox (in microseconds: one clock reading serves the batch). With
                // `--max-rate`, every probe that is due goes out in this burst.
                let filled_at = Instant::now();
                while burst < 256 && !outbox.batch.is_full() {
                    if !pacer.ready(filled_at) {
                        break;
                    }
                    let picked = match carry.take() {
                        Some(p) => Some(p),
                        None => {
                            let (ports_ok, disc_ok) = timing.room(allowed, in_flight, disc_in_flight);
                            if !ports_ok && !disc_ok {
                                None
                            } else {
                                self.next_probe(&mut hosts, &mut ring, &orders, &plans, filled_at, ports_ok, disc_ok)
                            }
                        }
                    };
                    let Some((id, pk, tryno)) = picked else { break };
                    let Some(h) = hosts.get_mut(&id) else { continue };
                    let disc = match pk {
                        Pk::Disc(i) => plans.of(h.plan).get(usize::from(i)).copied(),
                        Pk::Port(..) => None,
                    };
                    if let Some(DiscProbe::Ping(p @ (Ping::Http(port) | Ping::Https(port)))) = disc {
                        // An application-level ping: a task with its own time bound reports back.
                        let (tx, origin) = (app_tx.clone(), self.origin.clone());
                        let addr = SocketAddr::new(h.core.target.addr, port);
                        let timeout = probe_timeout(h, &net.global_rtt, &timing);
                        rt.spawn(async move {
                            let out = app_ping(addr, matches!(p, Ping::Https(_)), timeout, &origin).await;
                            let _ = tx.send((id, pk, tryno, out));
                        });
                        h.outstanding.insert(pk, (Instant::now(), tryno));
                        in_flight += 1;
                        disc_in_flight += 1;
                        totals.probes_sent += 1;
                        pacer.on_sent(filled_at, &mut rng);
                        burst += 1;
                        continue;
                    }
                    // Which socket: ARP and ND are frames on the host's link; port probes are
                    // frames when the next hop's address is known, else raw IP; pings raw IP.
                    let link_frame = matches!(disc, Some(DiscProbe::Arp | DiscProbe::Nd));
                    if h.core.is_up() && h.hop == Hop::Unresolved {
                        h.hop = resolve_hop(h, &routes, &mut neigh, &mut links, self.origin.interface.as_deref());
                    }
                    let (channel, eth) = match (link_frame, h.hop, h.link.as_ref()) {
                        (true, _, Some(l)) => (Channel::Link(l.ifindex), None),
                        (true, _, None) => continue,
                        (false, Hop::Frame { ifindex, src, dst }, _) => (Channel::Link(ifindex), Some((src, dst))),
                        _ => (Channel::Ip { v6: h.core.target.addr.is_ipv6() }, None),
                    };
                    if outbox.channel.is_some_and(|c| c != channel) && !outbox.meta.is_empty() {
                        carry = Some((id, pk, tryno));
                        break;
                    }
                    let dst = matches!(channel, Channel::Ip { .. }).then_some(h.core.target.addr);
                    let built =
                        outbox.batch.push_with(dst, |buf| self.build(buf, h, pk, &cookies, local, tryno, disc, eth));
                    if !built {
                        continue;
                    }
                    outbox.channel = Some(channel);
                    outbox.meta.push((id, pk, tryno));
                    // In flight from now on; the send below confirms it or takes it back (with
                    // its real send time).
                    let now = filled_at;
                    if self.is_udp(pk) {
                        h.udp_next = now + h.udp_gap;
                    }
                    h.outstanding.insert(pk, (now, tryno));
                    in_flight += 1;
                    if matches!(pk, Pk::Disc(_)) {
                        disc_in_flight += 1;
                    }
                    totals.probes_sent += 1;
                    pacer.on_sent(filled_at, &mut rng);
                    burst += 1;
                }
                if outbox.meta.is_empty() {
                    break;
                }
                // Send the outbox.
                let mut i = 0;
                while i < outbox.meta.len() {
                    let result = match outbox.channel {
                        Some(Channel::Ip { v6 }) => io.sender.send_batch(v6, &outbox.batch, i),
                        Some(Channel::Link(ifindex)) => {
                            match links.entry(ifindex).or_insert_with(|| LinkSender::new(ifindex).ok()) {
                                Some(s) => s.send_batch(&outbox.batch, i),
                                None => Err(std::io::Error::other("no link-layer sender")),
                            }
                        }
                        None => Ok(outbox.meta.len() - i),
                    };
                    let went = match result {
                        Ok(n) => n.max(1),
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.raw_os_error() == Some(libc::ENOBUFS) =>
                        {
                            // The queue is full: what is left goes back, in order, to be sent
                            // again shortly.
                            for &(id, pk, tryno) in outbox.meta[i..].iter().rev() {
                                let Some(h) = hosts.get_mut(&id) else { continue };
                                if h.outstanding.remove(&pk).is_some() {
                                    in_flight = in_flight.saturating_sub(1);
                                    if matches!(pk, Pk::Disc(_)) {
                                        disc_in_flight = disc_in_flight.saturating_sub(1);
                                    }
                                    totals.probes_sent = totals.probes_sent.saturating_sub(1);
                                    pacer.refund();
                                }
                                h.retries.push_front((pk, tryno));
                            }
                            pause_until = Instant::now() + Duration::from_millis(1);
                            net.window.on_local_pressure(in_flight + 1);
                            pressure = true;
                            break;
                        }
                        // Unroutable from here (e.g. EHOSTUNREACH from a neighbour miss): it
                        // counts as a probe that got no answer.
                        Err(_) => 1,
                    };
                    let sent = Instant::now();
                    for &(id, pk, tryno) in &outbox.meta[i..(i + went).min(outbox.meta.len())] {
                        let Some(h) = hosts.get_mut(&id) else { continue };
                        // Its real send time, for the round trip (the entry exists since the
                        // probe was built).
                        if let Some(o) = h.outstanding.get_mut(&pk) {
                            o.0 = sent;
                        }
                        clock.sent(h, id, sent, pk, tryno, &timing);
                    }
                    i += went;
                }
                outbox.batch.clear();
                outbox.meta.clear();
                outbox.channel = None;
            }
            if let Some((id, pk, tryno)) = carry.take() {
                // Picked but not built: back to the front of its host's queue.
                if let Some(h) = hosts.get_mut(&id) {
                    h.retries.push_front((pk, tryno));
                }
            }
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                let fraction = progress_fraction(
                    self.hosts_hint,
                    hosts_done,
                    hosts.values().map(|h| h.cursors.iter().map(|c| c.1).sum()),
                    total_ports,
                );
                emitter.emit_blocking(ScanEvent::Progress {
                    hosts_done,
                    probes_sent: totals.probes_sent,
                    replies,
                    fraction,
                    hosts_active: hosts.len() as u64,
                });
            }

            // Wait for replies: not at all while there is more to send now, else until the next
            // timeout or send slot (bounded so cancellation and new hosts are seen).
            let (ports_ok, disc_ok) = timing.room(allowed, in_flight, disc_in_flight);
            let can_send = (ports_ok || disc_ok) && burst > 0;
            let mut wake = Instant::now() + Duration::from_millis(20);
            if let Some(at) = clock.next_deadline(net.global_rtt.timeout(&timing)) {
                wake = wake.min(at);
            }
            if let Some(at) = pacer.wait_until(Instant::now()) {
                wake = wake.min(at.max(pause_until));
            }
            if !can_send && has_udp {
                // A host whose UDP probes wait for their gap wants a wake-up when it opens.
                for h in hosts.values() {
                    if h.udp_gap > Duration::ZERO && h.udp_next > Instant::now() {
                        wake = wake.min(h.udp_next);
                    }
                }
            }
            let wait = if can_send { Duration::ZERO } else { wake.saturating_duration_since(Instant::now()) };
            // Rounded up: a wait cut short would wake before the time it waits for.
            let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(io.capture.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            // Application-level pings that finished.
            while let Ok((id, pk, tryno, out)) = app_rx.try_recv() {
                let Some(h) = hosts.get_mut(&id) else { continue };
                if h.outstanding.remove(&pk).is_none() {
                    continue;
                }
                in_flight = in_flight.saturating_sub(1);
                disc_in_flight = disc_in_flight.saturating_sub(1);
                if h.core.is_up() {
                    continue;
                }
                match out {
                    PingOutcome::Up(reason, rtt) => {
                        replies += 1;
                        if tryno == 0 {
                            h.core.rtt.sample(rtt);
                        }
                        net.window.on_reply();
                        let moot = mark_up(h, reason, 0);
                        in_flight = in_flight.saturating_sub(moot);
                        disc_in_flight = disc_in_flight.saturating_sub(moot);
                    }
                    PingOutcome::Blocked(reason) => {
                        replies += 1;
                        h.core.note_negative(reason, true);
                    }
                    PingOutcome::Silent if tryno < h.core.allowed_tries(&timing) => {
                        h.retries.push_back((pk, tryno + 1));
                    }
                    PingOutcome::Silent => {
                        h.core.note_negative(Reason::NoResponse, false);
                    }
                }
            }
            // Drain what arrived, a batch per system call, bounded so sending is never starved.
            for _ in 0..64 {
                if !matches!(io.capture.recv_batch(&mut rx), Ok(n) if n > 0) {
                    break;
                }
                // One clock reading per batch: its answers arrived within microseconds.
                let now = Instant::now();
                for k in 0..rx.len() {
                    let Some((f, frame)) = rx.get(k) else { break };
                    if f.ethertype == 0x0806 {
                        if let Some((_, n)) = self.on_arp(frame, &mut hosts, &by_addr, &plans, &mut net, now) {
                            in_flight = in_flight.saturating_sub(n);
                            disc_in_flight = disc_in_flight.saturating_sub(n);
                            replies += 1;
                        }
                        continue;
                    }
                    if f.ethertype != 0x0800 && f.ethertype != 0x86dd {
                        continue;
                    }
                    let Ok(reply) = wp::parse_reply(frame) else { continue };
                    if let Some(matched) =
                        self.on_reply(&reply, f.src_mac, &mut hosts, &by_addr, &cookies, local, &mut net, &plans, now)
                    {
                        let (disc, n) = matched;
                        in_flight = in_flight.saturating_sub(n);
                        if disc {
                            disc_in_flight = disc_in_flight.saturating_sub(n);
                        }
                        replies += 1;
                    }
                }
            }
        }

        // Cancelled: report what we have for hosts still in progress.
        if emitter.is_cancelled() {
            for (_, h) in hosts.drain() {
                if h.core.is_up() {
                    self.finish_host(h, true, &emitter, &mut totals);
                }
            }
        }
        totals
    }

    /// Pick the next probe round-robin over hosts: retries first, then fresh probes, taking the
    /// scans of a combined run in turn. UDP probes wait for their host's send gap.
    #[allow(clippy::too_many_arguments)]
    fn next_probe(
        &self,
        hosts: &mut FxHashMap<u64, Host>,
        ring: &mut VecDeque<u64>,
        orders: &[Vec<u16>],
        plans: &Plans,
        now: Instant,
        ports_ok: bool,
        disc_ok: bool,
    ) -> Option<(u64, Pk, u8)> {
        let timing = &self.timing;
        for _ in 0..ring.len() {
            let id = ring.pop_front()?;
            ring.push_back(id);
            let Some(h) = hosts.get_mut(&id) else { continue };
            if h.outstanding.len() >= timing.max_parallelism {
                continue;
            }
            // A host's probes are all discovery probes until it is up, all port probes after.
            if (!h.core.is_up() && !disc_ok) || (h.core.is_up() && !ports_ok) {
                continue;
            }
            // (Discovery retries never stay queued past discovery: the host's first answer
            // drops them, and later timeouts do not queue them.)
            let udp_open = now >= h.udp_next;
            if let Some(i) = h.retries.iter().position(|(pk, _)| udp_open || !self.is_udp(*pk)) {
                if let Some((pk, tryno)) = h.retries.remove(i) {
                    return Some((id, pk, tryno));
                }
            }
            match h.core.life {
                Life::Discovery { .. } if h.disc_next < plans.of(h.plan).len() => {
                    h.disc_next += 1;
                    return Some((id, Pk::Disc((h.disc_next - 1) as u8), 0));
                }
                Life::Up { .. } => {
                    let n = orders.len();
                    for k in 0..n {
                        let s = (h.turn + k) % n;
                        let order = &orders[s];
                        let (offset, next) = h.cursors[s];
                        if next >= order.len() || (!udp_open && self.scans[s].0 == ScanType::Udp) {
                            continue;
                        }
                        h.cursors[s].1 += 1;
                        h.turn = s + 1;
                        return Some((id, Pk::Port(s as u8, order[(offset + next) % order.len()]), 0));
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn finish_host(&self, h: Host, timed_out: bool, emitter: &Emitter, totals: &mut EngineTotals) {
        let report = h.core.into_report(timed_out, h.mac);
        for ev in report.into_events(self.collapse_threshold, totals) {
            emitter.emit_blocking(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_crashed_engine_thread_is_an_error_with_its_message() {
        let crashed = tokio::task::spawn_blocking(|| -> EngineTotals { panic!("boom at probe 7") }).await;
        assert_eq!(join_error_message(crashed.unwrap_err()), "boom at probe 7");
        let owned = tokio::task::spawn_blocking(|| -> EngineTotals { panic!("{}", String::from("owned")) }).await;
        assert_eq!(join_error_message(owned.unwrap_err()), "owned");
        let err = RawScanError::Panicked("boom".into());
        assert_eq!(err.to_string(), "the raw scan engine crashed: boom");
    }
}
