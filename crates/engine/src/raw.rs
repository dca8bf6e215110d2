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

use crate::connect::{icmp_reason, progress_fraction, unix_now, EngineTotals, HostReport, News, ScanTarget};
use crate::discovery::{app_ping, DiscoveryPlan, Ping, PingOutcome};
use crate::origin::Origin;
use crate::payloads;
use crate::probe::{self, Reply};
use crate::timing::{Pacer, RttEstimator, Timing, Window};
use crate::Emitter;
use rand::seq::SliceRandom;
use rand::Rng;
use rustc_hash::FxHashMap;
use rustmap_model::{PortState, Protocol, Reason, ScanEvent, ScanType};
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

/// The TCP flags each scan type sends.
fn scan_flags(scan: ScanType) -> Option<Flags> {
    Some(match scan {
        ScanType::Syn => Flags::SYN,
        ScanType::Fin => Flags::FIN,
        ScanType::Null => Flags::empty(),
        ScanType::Xmas => Flags::FIN | Flags::PSH | Flags::URG,
        ScanType::Ack | ScanType::Window => Flags::ACK,
        ScanType::Maimon => Flags::FIN | Flags::ACK,
        _ => return None,
    })
}

/// What a probe is for: a port of one of the scans (by index into [`RawScan::scans`]), or one
/// of the discovery probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pk {
    Port(u8, u16),
    Disc(u8),
}

/// A discovery probe of the raw engine: an IP-level ping, or ARP / neighbour solicitation on a
/// directly connected link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiscProbe {
    Ping(Ping),
    Arp,
    Nd,
}

/// What the engine knows about the network as a whole: the congestion window, and the round
/// trips of every host (for hosts that have not answered yet).
struct NetState {
    window: Window,
    global_rtt: RttEstimator,
}

/// Which discovery probes a host gets (an index into [`Plans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlanKind {
    V4,
    V6,
    Arp,
    Nd,
}

/// The discovery probe lists of one scan, built once from its [`DiscoveryPlan`].
struct Plans {
    v4: Vec<DiscProbe>,
    v6: Vec<DiscProbe>,
    link_layer: bool,
}

impl Plans {
    fn new(plan: &DiscoveryPlan) -> Plans {
        let ip = |v6: bool| plan.raw_pings(v6).into_iter().map(DiscProbe::Ping).collect();
        Plans { v4: ip(false), v6: ip(true), link_layer: plan.link_layer }
    }

    fn of(&self, kind: PlanKind) -> &[DiscProbe] {
        match kind {
            PlanKind::V4 => &self.v4,
            PlanKind::V6 => &self.v6,
            PlanKind::Arp => &[DiscProbe::Arp],
            PlanKind::Nd => &[DiscProbe::Nd],
        }
    }
}

/// How a host's probes leave: not decided yet, through the raw IP socket (the kernel routes and
/// resolves the next hop), or as whole Ethernet frames on a link to a known next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Unresolved,
    Ip,
    Frame { ifindex: u32, src: [u8; 6], dst: [u8; 6] },
}

/// Which socket a packet of the outgoing batch goes through: all packets of one batch share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Ip { v6: bool },
    Link(u32),
}

/// Probes built and waiting to go out together with one `sendmmsg`: the packets, which socket
/// they take, and for each, its host, probe and try. They count as in flight from the moment
/// they are built; the send decides whether they stay so or go back to their host's retries.
#[derive(Default)]
struct Outbox {
    batch: Batch,
    channel: Option<Channel>,
    meta: Vec<(u64, Pk, u8)>,
}

/// When probes time out. Each host keeps its probes in send order ([`Host::sent`]); only the
/// oldest of each host is scheduled here, so the heaps hold one entry per host with probes out,
/// not one per probe, and a probe costs a push and a pop on a deque. Hosts that have answered
/// are due at their oldest probe's send time plus their own timeout. Hosts that have not answered
/// yet wait for the scan-wide timeout as it stands when they are checked, so the first answers
/// of a sweep shorten the wait for every silent address already probed.
#[derive(Default)]
struct Timeouts {
    /// (deadline, host) of hosts with a measured round trip.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    /// (oldest probe's send time, host) of hosts without one.
    fresh: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timeouts {
    /// Probe `pk` (try `tryno`) of host `id` went out at `at`.
    fn sent(&mut self, h: &mut Host, id: u64, at: Instant, pk: Pk, tryno: u8, timing: &Timing) {
        h.sent.push_back((at, pk, tryno));
        if h.sent.len() == 1 {
            self.schedule(h, id, timing);
        }
    }

    /// Schedule `h`'s oldest probe, if it has one out.
    fn schedule(&mut self, h: &Host, id: u64, timing: &Timing) {
        let Some(&(sent, ..)) = h.sent.front() else { return };
        if h.rtt.srtt_us().is_some() {
            self.due.push(Reverse((sent + h.rtt.timeout(timing), id)));
        } else {
            self.fresh.push(Reverse((sent, id)));
        }
    }

    /// The earliest time a probe may be due.
    fn next_deadline(&self, global_wait: Duration) -> Option<Instant> {
        let a = self.due.peek().map(|Reverse((at, _))| *at);
        let b = self.fresh.peek().map(|Reverse((sent, _))| *sent + global_wait);
        a.into_iter().chain(b).min()
    }

    /// The next probe still outstanding whose time is up at `now`: its host, probe and try.
    fn next_overdue(
        &mut self,
        hosts: &mut FxHashMap<u64, Host>,
        global_wait: Duration,
        timing: &Timing,
        now: Instant,
    ) -> Option<(u64, Pk, u8)> {
        loop {
            let a = self.due.peek().map(|Reverse((at, id))| (*at, *id));
            let b = self.fresh.peek().map(|Reverse((sent, id))| (*sent + global_wait, *id));
            let (at, id, fresh) = match (a, b) {
                (Some(a), Some(b)) if b.0 < a.0 => (b.0, b.1, true),
                (Some(a), _) => (a.0, a.1, false),
                (None, Some(b)) => (b.0, b.1, true),
                (None, None) => return None,
            };
            if at > now {
                return None;
            }
            if fresh {
                self.fresh.pop();
            } else {
                self.due.pop();
            }
            // A host that has finished leaves its entry behind; it is dropped here.
            let Some(h) = hosts.get_mut(&id) else { continue };
            let wait = if h.rtt.srtt_us().is_some() { h.rtt.timeout(timing) } else { global_wait };
            let mut found = None;
            while let Some(&(sent, pk, tryno)) = h.sent.front() {
                if sent + wait > now {
                    break;
                }
                h.sent.pop_front();
                if h.outstanding.get(&pk).map(|o| o.1) == Some(tryno) {
                    found = Some((id, pk, tryno));
                    break;
                }
            }
            self.schedule(h, id, timing);
            if found.is_some() {
                return found;
            }
        }
    }
}

/// The kernel's neighbour table as last read, reread at most once a second when a next hop is
/// missing from it (the kernel may have resolved it since).
struct NeighCache {
    table: Neighbours,
    read: Instant,
}

impl NeighCache {
    fn get(&mut self, ip: std::net::Ipv4Addr, ifname: &str) -> Option<[u8; 6]> {
        if let Some(mac) = self.table.get(ip, ifname) {
            return Some(mac);
        }
        if self.read.elapsed() >= Duration::from_secs(1) {
            self.table = Neighbours::load();
            self.read = Instant::now();
        }
        self.table.get(ip, ifname)
    }
}

/// An application-level ping's outcome, back from its task: host id, probe, try, outcome.
type AppDone = (u64, Pk, u8, PingOutcome);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Discovery,
    Ports,
}

struct Host {
    target: ScanTarget,
    src: IpAddr,
    start_unix: i64,
    deadline: Option<Instant>,
    phase: Phase,
    up_reason: Reason,
    up_ttl: u8,
    disc_next: usize,
    disc_negative: Option<Reason>,
    /// Its discovery probes, and the link it is directly on (ARP/ND go out there as frames).
    plan: PlanKind,
    link: Option<Link>,
    /// Its hardware address, learned from a reply on its link.
    mac: Option<[u8; 6]>,
    /// How its port probes leave (decided at the first one).
    hop: Hop,
    /// Its probes in the order they went out, for timing them out (entries of probes that were
    /// answered since are skipped when they come up).
    sent: VecDeque<(Instant, Pk, u8)>,
    /// Per scan: where in the port order this host starts, and how many ports it has sent.
    cursors: Vec<(usize, usize)>,
    /// The scan whose turn it is next (round-robin between the scans of a combined run).
    turn: usize,
    retries: VecDeque<(Pk, u8)>,
    /// Probes in flight: when each went out and which try it was.
    outstanding: FxHashMap<Pk, (Instant, u8)>,
    results: Vec<(Protocol, u16, PortState, Reason, u8)>,
    rtt: RttEstimator,
    max_successful_try: u8,
    /// UDP send gap for this host (grows when its ICMP answers are rate limited), the earliest
    /// time for its next UDP probe, and when the gap last grew.
    udp_gap: Duration,
    udp_next: Instant,
    udp_grown: Option<Instant>,
    /// The host has answered a UDP probe with port-unreachable: its silences may be rate limiting.
    udp_unreach: bool,
    news: News,
}

impl Host {
    /// Push the events of what this host learned since the last call.
    fn flush_news(&mut self, out: &mut Vec<ScanEvent>) {
        let up = (self.phase == Phase::Ports).then_some((self.up_reason, self.up_ttl, self.mac));
        self.news.flush(self.target.addr, up, &self.results, out);
    }

    fn allowed_tries(&self, timing: &Timing) -> u8 {
        let cap = u8::try_from(timing.max_retries).unwrap_or(u8::MAX);
        cap.min(self.max_successful_try.saturating_add(1))
    }
}

/// The sockets of one raw scan. Opened before the scan starts so that a missing privilege is an
/// error up front, not a scan with no results.
pub struct RawSockets {
    sender: RawIpSender,
    capture: Capture,
    sport: u16,
    udp_sport: u16,
    /// Holds `sport` (TCP) for the duration of the scan.
    _reserve: Socket,
    /// Holds `udp_sport`, so the kernel neither answers our UDP replies with port-unreachable
    /// nor gives the port to anyone else. What it receives is never read (its buffer is tiny).
    _udp_reserve: Socket,
}

impl RawSockets {
    /// Open the raw sender, the capture socket, and reserve a source port. With `-e`, both are
    /// bound to that interface; with `-S`, answers to that address are captured too.
    pub fn open(origin: &Origin) -> Result<RawSockets, RawScanError> {
        let sender = RawIpSender::new()?;
        let ifindex = match &origin.interface {
            Some(name) => {
                let iface = rustmap_netio::iface::by_name(name)
                    .ok_or_else(|| RawScanError::Interface(name.clone(), "no such interface".into()))?;
                sender.bind_device(name).map_err(|e| RawScanError::Interface(name.clone(), e.to_string()))?;
                Some(iface.index)
            }
            None => None,
        };
        let capture = Capture::open(ifindex)?;
        let mut ours: Vec<IpAddr> = rustmap_netio::iface::list().into_iter().flat_map(|i| i.addrs).collect();
        ours.extend(origin.source);
        // A filter is an optimisation (fewer copies to user space); without one we still check
        // every packet ourselves.
        let _ = capture.filter_to(&ours);
        let (reserve, sport) = reserve_port(Type::STREAM)?;
        let (udp_reserve, udp_sport) = reserve_port(Type::DGRAM)?;
        let _ = udp_reserve.set_recv_buffer_size(1);
        Ok(RawSockets { sender, capture, sport, udp_sport, _reserve: reserve, _udp_reserve: udp_reserve })
    }
}

/// Bind a socket of this type to a free port on every address (dual-stack when the host has
/// IPv6), so the kernel gives that port to nobody else while the scan uses it as its source.
fn reserve_port(ty: Type) -> Result<(Socket, u16), RawScanError> {
    let sock = Socket::new(Domain::IPV6, ty, None)
        .and_then(|s| {
            s.set_only_v6(false)?;
            s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).into())?;
            Ok(s)
        })
        .or_else(|_| {
            let s = Socket::new(Domain::IPV4, ty, None)?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], 0)).into())?;
            Ok(s)
        })
        .map_err(RawScanError::SourcePort)?;
    let port = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .ok_or_else(|| RawScanError::SourcePort(std::io::Error::other("no local port")))?;
    Ok((sock, port))
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

/// Keyed cookies for probes.
struct Cookies {
    key: RandomState,
}

impl Cookies {
    fn of(&self, addr: IpAddr, pk: Pk) -> u32 {
        // Packed into two integers (the family bit keeps a v4 address apart from the v6 address
        // with the same low bits): two hasher writes instead of one per field.
        let (a, v6) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 0u64),
            IpAddr::V6(a) => (u128::from(a), 1u64 << 40),
        };
        let k = v6
            | match pk {
                Pk::Port(s, port) => (u64::from(s) << 16) | u64::from(port),
                Pk::Disc(i) => (1 << 32) | u64::from(i),
            };
        self.key.hash_one((a, k)) as u32
    }

    /// The cookie as an SCTP tag: an initiate tag must not be zero (RFC 9260 §3.3.2).
    fn sctp_tag(&self, addr: IpAddr, pk: Pk) -> u32 {
        self.of(addr, pk).max(1)
    }
}

/// Does a TCP reply echo `c` the way a reply to our probe must?
fn tcp_echoes(c: u32, seq: u32, ack: u32, flags: Flags) -> bool {
    ack == c.wrapping_add(1) || ack == c || (flags.contains(Flags::RST) && seq == c)
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
            target,
            src,
            start_unix: unix_now(),
            deadline: timing.host_timeout.filter(|d| !d.is_zero()).map(|d| Instant::now() + d),
            phase: if self.skip_discovery { Phase::Ports } else { Phase::Discovery },
            up_reason: Reason::UserSet,
            up_ttl: 0,
            disc_next: 0,
            disc_negative: None,
            plan,
            link,
            mac: None,
            hop: if self.send_ip { Hop::Ip } else { Hop::Unresolved },
            sent: VecDeque::new(),
            cursors,
            turn: 0,
            retries: VecDeque::new(),
            outstanding: FxHashMap::default(),
            results: Vec::new(),
            rtt: RttEstimator::default(),
            max_successful_try: 0,
            udp_gap: Duration::ZERO,
            udp_next: Instant::now(),
            udp_grown: None,
            udp_unreach: false,
            news: News::default(),
        })
    }

    fn host_complete(&self, h: &Host, plans: &Plans) -> bool {
        let more = match h.phase {
            Phase::Discovery => h.disc_next < plans.of(h.plan).len(),
            Phase::Ports => h.cursors.iter().zip(&self.scans).any(|(c, (_, ports))| c.1 < ports.len()),
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
        let icmp_id: u16 = rand::rng().random();
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
                                let report = HostReport {
                                    target: t,
                                    start_unix: unix_now(),
                                    up: false,
                                    reason: Reason::NoResponse,
                                    reason_ttl: 0,
                                    srtt_us: None,
                                    results: Vec::new(),
                                    timed_out: false,
                                    mac: None,
                                    news: News::default(),
                                };
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
                // Silence from an address that never answered says nothing about congestion:
                // most addresses of a sweep are simply empty.
                if !matches!(pk, Pk::Disc(_)) {
                    net.window.on_silence();
                }
                // A host that answers closed UDP ports but not this one is probably rate limiting
                // its ICMP. If this probe already went out at the current send gap, the gap is
                // too short: double it. While the gap is still below its cap the retry is free
                // (the try was spent finding the host's pace, not probing the port); after that
                // the full retry budget applies.
                let rate_limited = self.is_udp(pk) && h.udp_unreach;
                if rate_limited && h.udp_grown.is_none_or(|g| sent >= g) {
                    grow_udp_gap(h, &timing);
                }
                let tries = if rate_limited {
                    u8::try_from(timing.max_retries).unwrap_or(u8::MAX)
                } else {
                    h.allowed_tries(&timing)
                };
                if matches!(pk, Pk::Disc(_)) && h.phase == Phase::Ports {
                    // A discovery probe is moot once the host is known to be up.
                } else if rate_limited && h.udp_gap < udp_gap_cap(&timing) {
                    h.retries.push_back((pk, tryno));
                } else if tryno < tries {
                    h.retries.push_back((pk, tryno + 1));
                } else {
                    match pk {
                        Pk::Port(s, port) if h.phase == Phase::Ports => {
                            let scan = self.scans[usize::from(s)].0;
                            h.results.push((scan.protocol(), port, probe::silence(scan), Reason::NoResponse, 0))
                        }
                        Pk::Disc(_) if h.disc_negative.is_none() => h.disc_negative = Some(Reason::NoResponse),
                        _ => {}
                    }
                }
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
                    .filter(|(_, h)| h.deadline.is_some_and(|d| now >= d) || self.host_complete(h, &plans))
                    .map(|(id, _)| *id)
                    .collect();
                for id in finished {
                    if let Some(h) = hosts.remove(&id) {
                        ring.retain(|x| *x != id);
                        by_addr.remove(&h.target.addr);
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
                                self.next_probe(&mut hosts, &mut ring, &orders, &timing, &plans, ports_ok, disc_ok)
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
                        let addr = SocketAddr::new(h.target.addr, port);
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
                    if h.phase == Phase::Ports && h.hop == Hop::Unresolved {
                        h.hop = resolve_hop(h, &routes, &mut neigh, &mut links, self.origin.interface.as_deref());
                    }
                    let (channel, eth) = match (link_frame, h.hop, h.link.as_ref()) {
                        (true, _, Some(l)) => (Channel::Link(l.ifindex), None),
                        (true, _, None) => continue,
                        (false, Hop::Frame { ifindex, src, dst }, _) => (Channel::Link(ifindex), Some((src, dst))),
                        _ => (Channel::Ip { v6: h.target.addr.is_ipv6() }, None),
                    };
                    if outbox.channel.is_some_and(|c| c != channel) && !outbox.meta.is_empty() {
                        carry = Some((id, pk, tryno));
                        break;
                    }
                    let dst = matches!(channel, Channel::Ip { .. }).then_some(h.target.addr);
                    let built = outbox
                        .batch
                        .push_with(dst, |buf| self.build(buf, h, pk, &cookies, &io, icmp_id, tryno, disc, eth));
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
                if h.phase != Phase::Discovery {
                    continue;
                }
                match out {
                    PingOutcome::Up(reason, rtt) => {
                        replies += 1;
                        if tryno == 0 {
                            h.rtt.sample(rtt);
                        }
                        net.window.on_reply();
                        let moot = mark_up(h, reason, 0);
                        in_flight = in_flight.saturating_sub(moot);
                        disc_in_flight = disc_in_flight.saturating_sub(moot);
                    }
                    PingOutcome::Blocked(reason) => {
                        replies += 1;
                        h.disc_negative = Some(reason);
                    }
                    PingOutcome::Silent if tryno < h.allowed_tries(&timing) => {
                        h.retries.push_back((pk, tryno + 1));
                    }
                    PingOutcome::Silent => {
                        h.disc_negative.get_or_insert(Reason::NoResponse);
                    }
                }
            }
            // Drain what arrived, a batch per system call, bounded so sending is never starved.
            for _ in 0..64 {
                if !matches!(io.capture.recv_batch(&mut rx), Ok(n) if n > 0) {
                    break;
                }
                for k in 0..rx.len() {
                    let Some((f, frame)) = rx.get(k) else { break };
                    if f.ethertype == 0x0806 {
                        if let Some((_, n)) = self.on_arp(frame, &mut hosts, &by_addr, &plans, &mut net) {
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
                        self.on_reply(&reply, f.src_mac, &mut hosts, &by_addr, &cookies, &io, icmp_id, &mut net, &plans)
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
                if h.phase == Phase::Ports {
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
        timing: &Timing,
        plans: &Plans,
        ports_ok: bool,
        disc_ok: bool,
    ) -> Option<(u64, Pk, u8)> {
        let now = Instant::now();
        for _ in 0..ring.len() {
            let id = ring.pop_front()?;
            ring.push_back(id);
            let Some(h) = hosts.get_mut(&id) else { continue };
            if h.outstanding.len() >= timing.max_parallelism {
                continue;
            }
            // A host's probes are all discovery probes until it is up, all port probes after.
            if (h.phase == Phase::Discovery && !disc_ok) || (h.phase == Phase::Ports && !ports_ok) {
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
            match h.phase {
                Phase::Discovery if h.disc_next < plans.of(h.plan).len() => {
                    h.disc_next += 1;
                    return Some((id, Pk::Disc((h.disc_next - 1) as u8), 0));
                }
                Phase::Ports => {
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

    /// Fold one reply into its host. Returns how many outstanding probes it settled (`None` if
    /// it was not an answer to us).
    #[allow(clippy::too_many_arguments)]
    fn on_reply(
        &self,
        reply: &wp::Reply,
        src_mac: Option<[u8; 6]>,
        hosts: &mut FxHashMap<u64, Host>,
        by_addr: &FxHashMap<IpAddr, u64>,
        cookies: &Cookies,
        io: &RawSockets,
        icmp_id: u16,
        net: &mut NetState,
        plans: &Plans,
    ) -> Option<(bool, usize)> {
        let sport = io.sport;
        // The discovery probes of the host at `addr`, to find which one a reply answers.
        let plan_of = |addr: IpAddr| -> &[DiscProbe] {
            match by_addr.get(&addr).and_then(|id| hosts.get(id)) {
                Some(h) => plans.of(h.plan),
                None => &[],
            }
        };
        let disc_where = |addr: IpAddr, f: &dyn Fn(usize, DiscProbe) -> bool| -> Option<Pk> {
            plan_of(addr).iter().enumerate().position(|(i, d)| f(i, *d)).map(|i| Pk::Disc(i as u8))
        };
        // Which probe does it answer, and what does it say?
        let (target, pk, what): (IpAddr, Pk, Reply) = match &reply.body {
            ReplyBody::Tcp { sport: from, dport, seq, ack, flags, window: win } => {
                if *dport != sport {
                    return None;
                }
                let addr = reply.src;
                let tcp = self.scan_of(Protocol::Tcp).map(|s| Pk::Port(s, *from));
                let pk = if let Some(pk) = tcp.filter(|pk| tcp_echoes(cookies.of(addr, *pk), *seq, *ack, *flags)) {
                    pk
                } else {
                    disc_where(addr, &|i, d| {
                        matches!(d, DiscProbe::Ping(Ping::Syn(p) | Ping::Ack(p)) if p == *from)
                            && tcp_echoes(cookies.of(addr, Pk::Disc(i as u8)), *seq, *ack, *flags)
                    })?
                };
                let what = if flags.contains(Flags::RST) {
                    Reply::Rst { window: *win }
                } else if flags.contains(Flags::SYN | Flags::ACK) {
                    Reply::SynAck
                } else {
                    return None;
                };
                (addr, pk, what)
            }
            ReplyBody::Udp { sport: from, dport, .. } => {
                if *dport != io.udp_sport {
                    return None;
                }
                let addr = reply.src;
                let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Udp(*from)));
                let pk = match disc {
                    Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                    _ => Pk::Port(self.scan_of(Protocol::Udp)?, *from),
                };
                (addr, pk, Reply::Udp)
            }
            ReplyBody::Sctp { sport: from, dport, vtag, first_chunk, .. } => {
                if *dport != sport {
                    return None;
                }
                let addr = reply.src;
                let port_pk = self.scan_of(Protocol::Sctp).map(|s| Pk::Port(s, *from));
                let pk = match port_pk.filter(|pk| *vtag == cookies.sctp_tag(addr, *pk)) {
                    Some(pk) => pk,
                    None => disc_where(addr, &|i, d| {
                        d == DiscProbe::Ping(Ping::Sctp(*from)) && *vtag == cookies.sctp_tag(addr, Pk::Disc(i as u8))
                    })?,
                };
                let what = match first_chunk {
                    2 => Reply::SctpInitAck,
                    6 => Reply::SctpAbort,
                    _ => return None,
                };
                (addr, pk, what)
            }
            ReplyBody::IcmpEcho { id, seq }
            | ReplyBody::IcmpTimestampReply { id, seq }
            | ReplyBody::IcmpMaskReply { id, seq } => {
                if *id != icmp_id {
                    return None;
                }
                let addr = reply.src;
                let (want, what) = match reply.body {
                    ReplyBody::IcmpEcho { .. } => (Ping::Echo, Reply::EchoReply),
                    ReplyBody::IcmpTimestampReply { .. } => (Ping::Timestamp, Reply::TimestampReply),
                    _ => (Ping::Mask, Reply::MaskReply),
                };
                // The sequence number carries the cookie's low bits.
                let pk = disc_where(addr, &|i, d| {
                    d == DiscProbe::Ping(want) && *seq == cookies.of(addr, Pk::Disc(i as u8)) as u16
                })?;
                (addr, pk, what)
            }
            ReplyBody::NeighborAdvert { target, lladdr } => {
                let addr = IpAddr::V6(*target);
                let pk = disc_where(addr, &|_, d| d == DiscProbe::Nd)?;
                if let Some(h) = by_addr.get(&addr).and_then(|id| hosts.get_mut(id)) {
                    h.mac = lladdr.or(src_mac);
                }
                (addr, pk, Reply::NeighborAdvert)
            }
            ReplyBody::IcmpError { v6, icmp_type, code, quoted } => {
                let reason = icmp_reason(*v6, *icmp_type, *code)?;
                let addr = quoted.dst;
                let pk = match quoted.proto {
                    6 if quoted.sport == sport => {
                        let c = quoted.tcp_seq?;
                        let tcp = self.scan_of(Protocol::Tcp).map(|s| Pk::Port(s, quoted.dport));
                        if let Some(pk) = tcp.filter(|pk| c == cookies.of(addr, *pk)) {
                            pk
                        } else {
                            disc_where(addr, &|i, d| {
                                matches!(d, DiscProbe::Ping(Ping::Syn(_) | Ping::Ack(_)))
                                    && cookies.of(addr, Pk::Disc(i as u8)) == c
                            })?
                        }
                    }
                    17 if quoted.sport == io.udp_sport => {
                        let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Udp(quoted.dport)));
                        match disc {
                            Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                            _ => Pk::Port(self.scan_of(Protocol::Udp)?, quoted.dport),
                        }
                    }
                    132 if quoted.sport == sport => {
                        let port_pk = self.scan_of(Protocol::Sctp).map(|s| Pk::Port(s, quoted.dport));
                        let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Sctp(quoted.dport)));
                        let pk = match disc {
                            Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                            _ => port_pk?,
                        };
                        // An INIT's common header carries tag 0 (its tag is in the chunk); a
                        // COOKIE-ECHO's carries our cookie.
                        match quoted.sctp_vtag {
                            Some(v) if v != 0 && v != cookies.sctp_tag(addr, pk) => return None,
                            _ => pk,
                        }
                    }
                    1 | 58 if quoted.icmp_id == Some(icmp_id) => {
                        let s = quoted.icmp_seq?;
                        disc_where(addr, &|i, d| {
                            matches!(d, DiscProbe::Ping(Ping::Echo | Ping::Timestamp | Ping::Mask))
                                && cookies.of(addr, Pk::Disc(i as u8)) as u16 == s
                        })?
                    }
                    _ => return None,
                };
                // An error sent by the target itself proves it is there (port or protocol
                // unreachable); one from a router on the way does not.
                let what = Reply::Icmp(if reply.src == addr { reason } else { router_reason(reason) });
                (addr, pk, what)
            }
            _ => return None,
        };
        let id = *by_addr.get(&target)?;
        let h = hosts.get_mut(&id)?;
        if h.link.is_some() && h.mac.is_none() && reply.src == target {
            h.mac = src_mac;
        }
        self.settle(h, pk, what, reply.ttl, net)
    }

    /// Is the host at `addr` still in discovery? (A UDP or SCTP answer from a port that is both
    /// a discovery probe and a scanned port belongs to whichever phase the host is in.)
    fn in_discovery(&self, hosts: &FxHashMap<u64, Host>, by_addr: &FxHashMap<IpAddr, u64>, addr: IpAddr) -> bool {
        by_addr.get(&addr).and_then(|id| hosts.get(id)).is_some_and(|h| h.phase == Phase::Discovery)
    }

    /// An ARP frame (its ARP packet): a reply from a host we asked for settles its ARP probe.
    fn on_arp(
        &self,
        packet: &[u8],
        hosts: &mut FxHashMap<u64, Host>,
        by_addr: &FxHashMap<IpAddr, u64>,
        plans: &Plans,
        net: &mut NetState,
    ) -> Option<(bool, usize)> {
        let arp = rustmap_wire::arp::Packet::new_checked(packet).ok()?;
        if arp.operation() != rustmap_wire::arp::Operation::Reply {
            return None;
        }
        let addr = IpAddr::V4(arp.sender_ip());
        let h = by_addr.get(&addr).and_then(|id| hosts.get_mut(id))?;
        let i = plans.of(h.plan).iter().position(|d| *d == DiscProbe::Arp)?;
        h.mac = Some(arp.sender_hw_addr());
        self.settle(h, Pk::Disc(i as u8), Reply::Arp, 0, net)
    }

    /// Settle the outstanding probe `pk` of `h` with `what`.
    fn settle(&self, h: &mut Host, pk: Pk, what: Reply, ttl: u8, net: &mut NetState) -> Option<(bool, usize)> {
        let (sent, tryno) = h.outstanding.remove(&pk)?;
        if tryno == 0 {
            h.rtt.sample(sent.elapsed());
            net.global_rtt.sample(sent.elapsed());
        }
        net.window.on_reply();
        if tryno > 0 {
            net.window.on_loss();
            h.max_successful_try = h.max_successful_try.max(tryno);
        }
        match pk {
            Pk::Disc(_) => {
                if h.phase != Phase::Discovery {
                    return Some((matches!(pk, Pk::Disc(_)), 1));
                }
                match probe::host_up(what, false) {
                    Some(reason) => return Some((true, 1 + mark_up(h, reason, ttl))),
                    None => {
                        if let Reply::Icmp(r) = what {
                            h.disc_negative = Some(r);
                        }
                    }
                }
            }
            Pk::Port(s, port) => {
                if h.phase != Phase::Ports {
                    return Some((matches!(pk, Pk::Disc(_)), 1));
                }
                let scan = self.scans[usize::from(s)].0;
                let proto = scan.protocol();
                if scan == ScanType::Udp && what == Reply::Icmp(Reason::PortUnreach) {
                    h.udp_unreach = true;
                }
                match probe::verdict(scan, what) {
                    Some((state, reason)) => h.results.push((proto, port, state, reason, ttl)),
                    // An answer that means nothing for this scan type (a SYN/ACK to a FIN):
                    // treat the port as unanswered rather than guess.
                    None => h.results.push((proto, port, probe::silence(scan), Reason::NoResponse, 0)),
                }
            }
        }
        Some((matches!(pk, Pk::Disc(_)), 1))
    }

    fn finish_host(&self, h: Host, timed_out: bool, emitter: &Emitter, totals: &mut EngineTotals) {
        let up = h.phase == Phase::Ports;
        let report = HostReport {
            target: h.target,
            start_unix: h.start_unix,
            up,
            reason: if up { h.up_reason } else { h.disc_negative.unwrap_or(Reason::NoResponse) },
            reason_ttl: if up { h.up_ttl } else { 0 },
            srtt_us: h.rtt.srtt_us(),
            results: h.results,
            timed_out,
            mac: h.mac,
            news: h.news,
        };
        for ev in report.into_events(self.collapse_threshold, totals) {
            emitter.emit_blocking(ev);
        }
    }
}

/// Discovery is over for `h`: it is up, for this reason. Its other discovery probes are moot:
/// they are forgotten (so the host need not wait for their timeouts). Returns how many were
/// still in flight.
fn mark_up(h: &mut Host, reason: Reason, ttl: u8) -> usize {
    h.phase = Phase::Ports;
    h.up_reason = reason;
    h.up_ttl = ttl;
    h.retries.retain(|r| !matches!(r.0, Pk::Disc(_)));
    let before = h.outstanding.len();
    h.outstanding.retain(|pk, _| !matches!(pk, Pk::Disc(_)));
    before - h.outstanding.len()
}

/// How `h`'s probes can leave: as Ethernet frames when it is reached over an Ethernet-like link
/// (directly or through a gateway) whose next hop's hardware address is known — learned from
/// the host's own replies, or in the kernel's neighbour table — and an AF_PACKET socket can be
/// opened there; else through the raw IP socket. Frames skip the kernel's per-packet route and
/// neighbour lookups, and go out many per system call.
fn resolve_hop(
    h: &Host,
    routes: &RouteTable,
    neigh: &mut NeighCache,
    links: &mut HashMap<u32, Option<LinkSender>>,
    only: Option<&str>,
) -> Hop {
    let Some((link, next)) = routes.egress(h.target.addr, only) else { return Hop::Ip };
    let learned = if next == h.target.addr { h.mac } else { None };
    let mac = learned.or_else(|| match next {
        IpAddr::V4(v4) => neigh.get(v4, &link.ifname),
        IpAddr::V6(_) => None,
    });
    let Some(dst) = mac else { return Hop::Ip };
    if links.entry(link.ifindex).or_insert_with(|| LinkSender::new(link.ifindex).ok()).is_none() {
        return Hop::Ip;
    }
    Hop::Frame { ifindex: link.ifindex, src: link.mac, dst }
}

/// A probe's timeout: from the host's own round trips once it has answered, else from every
/// host's so far (nmap's group timing), else the initial timeout. So the empty addresses of a
/// sweep cost a few round trips of the live ones, not a second each.
fn probe_timeout(h: &Host, global: &RttEstimator, timing: &Timing) -> Duration {
    if h.rtt.srtt_us().is_some() {
        h.rtt.timeout(timing)
    } else {
        global.timeout(timing)
    }
}

/// An ICMP error from a router on the way: the path is blocked, the host's own state unknown.
/// Port- and protocol-unreachable only make sense from the target itself.
fn router_reason(r: Reason) -> Reason {
    match r {
        Reason::PortUnreach | Reason::ProtoUnreach | Reason::ParamProblem => Reason::HostUnreach,
        other => other,
    }
}

impl RawScan {
    /// Build the packet for one probe into `buf`; its length, or `None` if it cannot be built.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        buf: &mut [u8],
        h: &Host,
        pk: Pk,
        cookies: &Cookies,
        io: &RawSockets,
        icmp_id: u16,
        tryno: u8,
        disc: Option<DiscProbe>,
        eth: Option<([u8; 6], [u8; 6])>,
    ) -> Option<usize> {
        let dst = h.target.addr;
        let sport = io.sport;
        let c = cookies.of(dst, pk);
        let mss = [TcpOption::MaxSegmentSize(1460)];
        let tcp = |dport: u16, flags: Flags| L4::Tcp {
            sport,
            dport,
            seq: c,
            ack: if flags.contains(Flags::ACK) { c } else { 0 },
            flags,
            window: 1024,
            options: if flags.contains(Flags::SYN) { &mss } else { &[] },
        };
        let l4 = match pk {
            Pk::Port(s, port) => match self.scans.get(usize::from(s))?.0 {
                ScanType::Udp => L4::Udp { sport: io.udp_sport, dport: port, payload: payloads::for_port(port) },
                ScanType::SctpInit => L4::SctpInit { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                ScanType::SctpCookieEcho => L4::SctpCookieEcho { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                tcp_type => tcp(port, scan_flags(tcp_type)?),
            },
            Pk::Disc(_) => match disc? {
                DiscProbe::Ping(Ping::Echo) => {
                    L4::IcmpEcho { v6: dst.is_ipv6(), id: icmp_id, seq: c as u16, payload: &[] }
                }
                DiscProbe::Ping(Ping::Timestamp) => L4::IcmpTimestamp { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Mask) => L4::IcmpMask { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Syn(p)) => tcp(p, Flags::SYN),
                DiscProbe::Ping(Ping::Ack(p)) => tcp(p, Flags::ACK),
                DiscProbe::Ping(Ping::Udp(p)) => {
                    L4::Udp { sport: io.udp_sport, dport: p, payload: payloads::for_port(p) }
                }
                DiscProbe::Ping(Ping::Sctp(p)) => L4::SctpInit { sport, dport: p, tag: cookies.sctp_tag(dst, pk) },
                // Sent by their own tasks, never built here.
                DiscProbe::Ping(Ping::Http(_) | Ping::Https(_)) => return None,
                DiscProbe::Arp => {
                    let (IpAddr::V4(me), IpAddr::V4(them)) = (h.src, dst) else { return None };
                    return wp::emit_arp_request(h.link.as_ref()?.mac, me, them, buf).ok();
                }
                DiscProbe::Nd => {
                    let IpAddr::V6(them) = dst else { return None };
                    let mac = h.link.as_ref()?.mac;
                    let (group, group_mac) = wp::solicited_node(them);
                    let l4 = L4::NeighborSolicit { target: them, source_lladdr: mac };
                    let p = IpProbe { src: h.src, dst: IpAddr::V6(group), ttl: 255, ip_id: 0, l4 };
                    return wp::emit_frame(mac, group_mac, &p, buf).ok();
                }
            },
        };
        // The IP ID carries the try number, for debugging captures; it is not used for matching.
        let ip_id = (rand::rng().random::<u16>() & 0xfff0) | u16::from(tryno & 0xf);
        let p = IpProbe { src: h.src, dst, ttl: 64, ip_id, l4 };
        match eth {
            Some((src, dst)) => wp::emit_frame(src, dst, &p, buf).ok(),
            None => wp::emit_ip(&p, buf).ok(),
        }
    }
}

/// The longest UDP send gap: `--max-scan-delay`, else one second (what it takes a Linux host's
/// ICMP limiter to grant its next answer).
fn udp_gap_cap(timing: &Timing) -> Duration {
    timing.max_scan_delay.unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(1))
}

/// A UDP probe sent at the host's current gap went unanswered by a host that answers closed
/// ports: the gap is too short for its ICMP rate limit. Double it (from 50 ms, up to the cap),
/// nmap's remedy. Only probes sent after the last change count, so one burst of silences
/// doubles the gap once.
fn grow_udp_gap(h: &mut Host, timing: &Timing) {
    h.udp_gap = (h.udp_gap * 2).max(Duration::from_millis(50)).min(udp_gap_cap(timing));
    h.udp_grown = Some(Instant::now());
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

    #[test]
    fn cookie_echo_rules() {
        let c = 0x1234_5678u32;
        // SYN/ACK and RST to a SYN acknowledge cookie + 1.
        assert!(tcp_echoes(c, 999, c + 1, Flags::SYN | Flags::ACK));
        assert!(tcp_echoes(c, 0, c + 1, Flags::RST | Flags::ACK));
        // A RST to a probe that carried an ACK takes its sequence number from our ack.
        assert!(tcp_echoes(c, c, 0, Flags::RST));
        // NULL probe: nothing consumed, ack == cookie.
        assert!(tcp_echoes(c, 0, c, Flags::RST | Flags::ACK));
        // Anything else is somebody else's.
        assert!(!tcp_echoes(c, 7, c + 2, Flags::RST | Flags::ACK));
        assert!(!tcp_echoes(c, c, 5, Flags::SYN | Flags::ACK));
    }

    #[test]
    fn every_tcp_scan_type_has_flags() {
        assert_eq!(scan_flags(ScanType::Syn), Some(Flags::SYN));
        assert_eq!(scan_flags(ScanType::Xmas), Some(Flags::FIN | Flags::PSH | Flags::URG));
        assert_eq!(scan_flags(ScanType::Maimon), Some(Flags::FIN | Flags::ACK));
        assert_eq!(scan_flags(ScanType::Null), Some(Flags::empty()));
        assert_eq!(scan_flags(ScanType::Udp), None);
        assert_eq!(scan_flags(ScanType::Connect), None);
    }

    #[test]
    fn cookies_differ_by_port_and_kind() {
        let k = Cookies { key: RandomState::new() };
        let a: IpAddr = "198.18.0.10".parse().unwrap();
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(0, 81)));
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(1, 80)), "TCP 80 and UDP 80 differ");
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Disc(2)));
        assert_eq!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(0, 80)));
        assert_ne!(k.sctp_tag(a, Pk::Port(2, 9)), 0);
    }
}
