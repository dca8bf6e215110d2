//! The trace stage's state machine: every host being traced, their probes in flight (by token),
//! the timers, the pacing, and the cache of hops already seen, which lets a host whose path
//! joins a known one at some TTL take the hops below from it (hop reuse). No I/O: every call
//! carries the time, packets come in as bytes and go out into the caller's buffer.

use super::hops::{Answer, Hop, HopSearch};
use super::packets::{self, Heard, Spec, Stamp};
use super::pmtu::MtuSearch;
use super::{ProbeKind, TraceOutcome, TraceRequest};
use crate::timing::{Pacer, Timing};
use rand::rngs::StdRng;
use rand::Rng;
use rustmap_model::{TraceHop, TraceProbe, TraceProtocol};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hops kept for reuse at most (entries of the cache).
const CACHE_MAX: usize = 1 << 16;
/// Shortest probe timeout: routers answer from their slow path.
const MIN_TIMEOUT: Duration = Duration::from_millis(250);
/// Shortest timeout of probes answered by ICMP errors from the target (UDP).
const RATIONED_TIMEOUT: Duration = Duration::from_millis(1100);

/// How the machine works.
#[derive(Debug, Clone)]
pub struct Config {
    /// What every probe carries.
    pub stamp: Stamp,
    /// Tries per probe (1 + retries).
    pub tries: u8,
    /// Probes in flight at most, all hosts together.
    pub in_flight: usize,
    /// Timeouts and pacing (`--max-rate`, `--scan-delay`, the RTT timeout bounds).
    pub timing: Timing,
}

/// What the driver knows of the way to a host: our address on it, the MTU of its first link,
/// and whether the host is this machine.
#[derive(Debug, Clone, Copy)]
pub struct PathInfo {
    /// Our source address.
    pub src: IpAddr,
    /// MTU of the outgoing interface.
    pub link_mtu: u32,
    /// The target is one of our own addresses (or loopback).
    pub local: bool,
}

/// A probe for the driver to send.
#[derive(Debug, Clone, Copy)]
pub struct Transmit {
    /// Its length in the buffer.
    pub len: usize,
    /// Where it goes.
    pub dst: IpAddr,
    /// Its token.
    pub token: u16,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Hop(u8),
    Mtu(u32),
}

#[derive(Debug)]
struct Probe {
    host: u64,
    purpose: Purpose,
    sent: Instant,
    try_no: u8,
    serial: u64,
}

/// A hop seen at a TTL: by a host still tracing, or in a finished trace.
#[derive(Debug, Clone)]
enum Known {
    Tracing(u64),
    Done(Arc<Vec<Hop>>),
}

#[derive(Debug)]
struct Host {
    addr: IpAddr,
    path: PathInfo,
    kind: ProbeKind,
    timeout: Duration,
    search: Option<HopSearch>,
    mtu: Option<MtuSearch>,
    /// The host whose hops below the search's floor this one takes.
    link: Option<u64>,
    /// Those hops, once that host is done.
    borrowed: Option<Arc<Vec<Hop>>>,
    /// Cache entries this host owns.
    registered: Vec<(u8, IpAddr)>,
    /// `--mtu-discovery` asked for this host.
    wants_mtu: bool,
}

/// The state machine.
pub struct Machine {
    cfg: Config,
    rng: StdRng,
    pacer: Pacer,
    hosts: BTreeMap<u64, Host>,
    probes: HashMap<u16, Probe>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, u16)>>,
    cache: HashMap<(u8, IpAddr), Known>,
    done: VecDeque<(u64, TraceOutcome)>,
    next_token: u16,
    serial: u64,
    /// The host that sends first on the next `poll_transmit` (round robin).
    cursor: u64,
    /// Probes sent, retries included.
    pub sent: u64,
}

impl Machine {
    /// A machine with no hosts. Every random choice (IP ids, jitter) comes from `rng`.
    pub fn new(cfg: Config, rng: StdRng, now: Instant) -> Machine {
        let pacer = Pacer::new(&cfg.timing, now);
        Machine {
            cfg,
            rng,
            pacer,
            hosts: BTreeMap::new(),
            probes: HashMap::new(),
            deadlines: BinaryHeap::new(),
            cache: HashMap::new(),
            done: VecDeque::new(),
            next_token: 1,
            serial: 0,
            cursor: 0,
            sent: 0,
        }
    }

    /// No host in progress.
    pub fn is_idle(&self) -> bool {
        self.hosts.is_empty() && self.done.is_empty()
    }

    fn timeout_for(&self, srtt: Option<Duration>) -> Duration {
        let t = &self.cfg.timing;
        if let Some(f) = t.fixed_timeout {
            return f;
        }
        let floor = MIN_TIMEOUT.max(t.min_rtt_timeout).min(t.max_rtt_timeout);
        srtt.map_or(t.initial_rtt_timeout, |s| (s * 4).max(floor)).min(t.max_rtt_timeout)
    }

    /// Start on a host. `path` is `None` when there is no route to it: it is done at once,
    /// with nothing found.
    pub fn admit(&mut self, id: u64, req: &TraceRequest, path: Option<PathInfo>) {
        let Some(path) = path else {
            self.done.push_back((id, outcome(req.probe, None, Vec::new(), None)));
            return;
        };
        let v6 = req.addr.is_ipv6();
        let mtu = match (req.mtu, v6, path.local) {
            (true, false, false) => Some(MtuSearch::new(path.link_mtu, packets::bare_size(false, req.probe))),
            _ => None,
        };
        let host = Host {
            addr: req.addr,
            path,
            kind: req.probe,
            timeout: match req.probe {
                // The target answers UDP probes with ICMP port unreachable, which hosts ration
                // (Linux: a burst, then one a second): a retry sooner than that is lost too.
                ProbeKind::Udp { .. } => self.timeout_for(req.srtt).max(RATIONED_TIMEOUT),
                _ => self.timeout_for(req.srtt),
            },
            search: req.traceroute.then(|| HopSearch::new(req.distance)),
            mtu,
            link: None,
            borrowed: None,
            registered: Vec::new(),
            wants_mtu: req.mtu,
        };
        self.hosts.insert(id, host);
        self.settle();
    }

    fn new_token(&mut self) -> Option<u16> {
        for _ in 0..0xfffe {
            let t = self.next_token;
            self.next_token = if t >= 0xfffe { 1 } else { t + 1 };
            if !self.probes.contains_key(&t) {
                return Some(t);
            }
        }
        None
    }

    /// Build the next probe into `buf`, if one may go now.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.probes.len() >= self.cfg.in_flight || !self.pacer.ready(now) {
            return None;
        }
        let ids: Vec<u64> =
            self.hosts.range(self.cursor..).chain(self.hosts.range(..self.cursor)).map(|(k, _)| *k).collect();
        for id in ids {
            let Some(h) = self.hosts.get(&id) else { continue };
            let purpose = match (h.search.as_ref().and_then(HopSearch::next), h.mtu.as_ref().and_then(MtuSearch::next))
            {
                (Some(ttl), _) => Purpose::Hop(ttl),
                (None, Some(size)) => Purpose::Mtu(size),
                (None, None) => continue,
            };
            let (src, dst, kind, timeout) = (h.path.src, h.addr, h.kind, h.timeout);
            let token = self.new_token()?;
            let (ttl, size, dont_frag) = match purpose {
                Purpose::Hop(ttl) => (ttl, 0, false),
                Purpose::Mtu(size) => (64, size, true),
            };
            let spec = Spec { src, dst, kind, ttl, size, dont_frag, token, ip_id: self.rng.random() };
            let Some(len) = packets::build(&self.cfg.stamp, &spec, buf) else {
                // Unbuildable (a size beyond what IP allows): as if it went unanswered.
                if let Some(m) = self.hosts.get_mut(&id).and_then(|h| h.mtu.as_mut()) {
                    if let Purpose::Mtu(size) = purpose {
                        m.sent(size);
                        m.on_timeout(size, false);
                    }
                }
                continue;
            };
            let h = self.hosts.get_mut(&id)?;
            let try_no = match purpose {
                Purpose::Hop(ttl) => h.search.as_mut().map_or(1, |s| s.sent(ttl)),
                Purpose::Mtu(size) => h.mtu.as_mut().map_or(1, |m| m.sent(size)),
            };
            self.serial += 1;
            self.probes.insert(token, Probe { host: id, purpose, sent: now, try_no, serial: self.serial });
            self.deadlines.push(Reverse((now + timeout, self.serial, token)));
            self.pacer.on_sent(now, &mut self.rng);
            self.sent += 1;
            self.cursor = id.wrapping_add(1);
            return Some(Transmit { len, dst, token });
        }
        None
    }

    /// The probe with this token could not be sent: it counts as unanswered now.
    pub fn on_send_failed(&mut self, token: u16) {
        if let Some(p) = self.probes.remove(&token) {
            self.timed_out(p);
            self.settle();
        }
    }

    /// A captured packet.
    pub fn on_packet(&mut self, bytes: &[u8], now: Instant) {
        let Some(m) = packets::classify(&self.cfg.stamp, bytes) else { return };
        let Some(p) = self.probes.get(&m.token) else { return };
        let Some(h) = self.hosts.get(&p.host) else { return };
        let port = match h.kind {
            ProbeKind::TcpSyn { port } | ProbeKind::Udp { port } => port,
            ProbeKind::Echo => 0,
        };
        // The answer must be about this probe's target and port (a stray or spoofed packet
        // that guessed a token is not).
        if m.target != h.addr || (m.port != 0 && m.port != port) {
            return;
        }
        let Some(p) = self.probes.remove(&m.token) else { return };
        let rtt = now.saturating_duration_since(p.sent);
        let id = p.host;
        let Some(h) = self.hosts.get_mut(&id) else { return };
        match p.purpose {
            Purpose::Hop(ttl) => {
                let answer = match m.heard {
                    Heard::Target => Answer::Target,
                    Heard::Expired | Heard::TooBig(_) => Answer::Router,
                    Heard::Unreachable => Answer::Unreachable,
                };
                if let Some(s) = h.search.as_mut() {
                    s.on_answer(ttl, m.from, rtt, answer);
                }
                if answer == Answer::Router {
                    self.reuse(id, ttl, m.from);
                }
            }
            Purpose::Mtu(size) => {
                if let Some(s) = h.mtu.as_mut() {
                    match m.heard {
                        Heard::Target => s.on_reply(size),
                        Heard::TooBig(mtu) => s.on_too_big(size, mtu),
                        Heard::Expired | Heard::Unreachable => s.on_timeout(size, false),
                    }
                }
            }
        }
        self.settle();
    }

    /// Hop reuse: `id` heard `addr` at `ttl`. If another trace has that hop at that TTL, the
    /// hops below are taken from it (as nmap does, a shared hop means a shared way there);
    /// otherwise this host becomes the one others take it from.
    fn reuse(&mut self, id: u64, ttl: u8, addr: IpAddr) {
        if ttl <= 1 {
            return;
        }
        match self.cache.get(&(ttl, addr)).cloned() {
            None => {
                if self.cache.len() < CACHE_MAX {
                    self.cache.insert((ttl, addr), Known::Tracing(id));
                    if let Some(h) = self.hosts.get_mut(&id) {
                        h.registered.push((ttl, addr));
                    }
                }
            }
            Some(Known::Tracing(owner)) if owner != id && !self.depends_on(owner, id) => {
                self.link(id, ttl, Some(owner), None);
            }
            Some(Known::Done(hops)) => self.link(id, ttl, None, Some(hops)),
            Some(Known::Tracing(_)) => {}
        }
    }

    /// Does `host` (transitively) wait for `on`?
    fn depends_on(&self, host: u64, on: u64) -> bool {
        let mut cur = host;
        for _ in 0..=self.hosts.len() {
            if cur == on {
                return true;
            }
            match self.hosts.get(&cur).and_then(|h| h.link) {
                Some(next) => cur = next,
                None => return false,
            }
        }
        true
    }

    fn link(&mut self, id: u64, ttl: u8, owner: Option<u64>, hops: Option<Arc<Vec<Hop>>>) {
        let Some(h) = self.hosts.get_mut(&id) else { return };
        let Some(s) = h.search.as_mut() else { return };
        if s.floor() >= ttl {
            return;
        }
        let dropped = s.reuse_below(ttl);
        h.link = owner;
        h.borrowed = hops;
        self.probes.retain(|_, p| !(p.host == id && matches!(p.purpose, Purpose::Hop(t) if dropped.contains(&t))));
    }

    /// Overdue probes are retried or given up.
    pub fn tick(&mut self, now: Instant) {
        let mut changed = false;
        while let Some(Reverse((at, serial, token))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.probes.get(&token).is_some_and(|p| p.serial == serial) {
                if let Some(p) = self.probes.remove(&token) {
                    self.timed_out(p);
                    changed = true;
                }
            }
        }
        if changed {
            self.settle();
        }
    }

    fn timed_out(&mut self, p: Probe) {
        let retry = p.try_no < self.cfg.tries;
        let Some(h) = self.hosts.get_mut(&p.host) else { return };
        match p.purpose {
            Purpose::Hop(ttl) => {
                if let Some(s) = h.search.as_mut() {
                    s.on_timeout(ttl, retry);
                }
            }
            Purpose::Mtu(size) => {
                if let Some(m) = h.mtu.as_mut() {
                    m.on_timeout(size, retry);
                }
            }
        }
    }

    /// Finish every host that has nothing left to do, and hand finished traces to the hosts
    /// that take hops from them.
    fn settle(&mut self) {
        loop {
            let ready: Vec<u64> = self
                .hosts
                .iter()
                .filter(|(_, h)| {
                    let hops_done = h.search.as_ref().is_none_or(|s| s.is_done()) && h.link.is_none();
                    let mtu_done = h.mtu.as_ref().is_none_or(|m| m.result().is_some());
                    hops_done && mtu_done
                })
                .map(|(k, _)| *k)
                .collect();
            if ready.is_empty() {
                return;
            }
            for id in ready {
                let Some(h) = self.hosts.remove(&id) else { continue };
                let mut hops: Vec<Hop> = Vec::new();
                if let Some(s) = &h.search {
                    if let Some(b) = &h.borrowed {
                        hops.extend(b.iter().filter(|x| x.ttl < s.floor()).copied());
                    }
                    hops.extend(s.hops());
                }
                let hops = Arc::new(hops);
                for key in &h.registered {
                    if let Some(k) = self.cache.get_mut(key) {
                        *k = Known::Done(Arc::clone(&hops));
                    }
                }
                for other in self.hosts.values_mut().filter(|o| o.link == Some(id)) {
                    other.link = None;
                    other.borrowed = Some(Arc::clone(&hops));
                }
                // A host on this machine: its interface's MTU, nothing to probe.
                let mtu = match (&h.mtu, h.wants_mtu && h.path.local && !h.addr.is_ipv6()) {
                    (Some(m), _) => m.result().flatten(),
                    (None, true) => Some(h.path.link_mtu),
                    (None, false) => None,
                };
                let traced = h.search.is_some().then(|| hops.as_slice().to_vec());
                self.done.push_back((id, outcome(h.kind, Some(h.path.src), traced.unwrap_or_default(), mtu)));
            }
        }
    }

    /// A finished host and what was found.
    pub fn poll_done(&mut self) -> Option<(u64, TraceOutcome)> {
        self.done.pop_front()
    }

    /// When to call [`Machine::tick`] or [`Machine::poll_transmit`] next, if anything waits.
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        let timer = self.deadlines.peek().map(|Reverse((at, _, _))| *at);
        let pace = self.pacer.wait_until(now).filter(|_| !self.hosts.is_empty());
        match (timer, pace) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The outcome of a host: its hops as the model has them, and the probe used.
fn outcome(kind: ProbeKind, src: Option<IpAddr>, hops: Vec<Hop>, mtu: Option<u32>) -> TraceOutcome {
    let (protocol, port) = match kind {
        ProbeKind::TcpSyn { port } => (TraceProtocol::Tcp, Some(port)),
        ProbeKind::Udp { port } => (TraceProtocol::Udp, Some(port)),
        ProbeKind::Echo => (TraceProtocol::Icmp, None),
    };
    let hops = hops
        .into_iter()
        .map(|h| TraceHop {
            ttl: h.ttl,
            addr: h.heard.map(|x| x.0),
            rtt_us: h.heard.map(|x| u64::try_from(x.1.as_micros()).unwrap_or(u64::MAX)),
            hostname: None,
        })
        .collect();
    TraceOutcome { hops, probe: TraceProbe { protocol, port, source: src }, path_mtu: mtu }
}
