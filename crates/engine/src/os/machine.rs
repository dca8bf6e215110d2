//! The OS stage's state machine, with no I/O: which probe of which host goes out when, which
//! answer belongs to which probe, and when a host is finished.
//!
//! Each host gets the same schedule (offsets from its start): the six SYNs 100 ms apart — the
//! spacing the ISN-rate and timestamp tests divide by — with the other probes in the gaps, so a
//! host sees a packet every 20 ms at most. After the last probe the host waits for late answers
//! (four round trips, between 300 ms and 2 s), then is finished. The ICMP rate-limit burst
//! (eight small datagrams to the closed UDP port, back to back) goes last, so that its drained
//! token bucket costs no other probe its answer. A try that got fewer than three
//! SYN-ACKs (lost packets) is run again, up to the configured number of tries.

use super::packets::{self, Answer, Ports, Probe, Spec};
use rand::rngs::StdRng;
use rand::Rng;
use rustmap_os::observe::{EchoProbe, Observations, TcpProbe, TcpSent};
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// When each probe leaves, from the host's start.
const SCHEDULE: [(u64, Probe); 25] = [
    (0, Probe::Seq(0)),
    (20, Probe::Ecn),
    (40, Probe::T(2)),
    (60, Probe::T(3)),
    (100, Probe::Seq(1)),
    (120, Probe::T(4)),
    (140, Probe::T(5)),
    (160, Probe::T(6)),
    (200, Probe::Seq(2)),
    (220, Probe::T(7)),
    (240, Probe::U1),
    (260, Probe::Echo(0)),
    (300, Probe::Seq(3)),
    (320, Probe::Echo(1)),
    (340, Probe::IcmpTs),
    (400, Probe::Seq(4)),
    (500, Probe::Seq(5)),
    // Last, back to back: how many unreachables a burst gets is the ICMP rate limit's mark.
    (520, Probe::Burst(0)),
    (520, Probe::Burst(1)),
    (520, Probe::Burst(2)),
    (520, Probe::Burst(3)),
    (520, Probe::Burst(4)),
    (520, Probe::Burst(5)),
    (520, Probe::Burst(6)),
    (520, Probe::Burst(7)),
];

/// What the stage probes on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The host.
    pub addr: Ipv4Addr,
    /// Our address towards it.
    pub src: Ipv4Addr,
    /// An open TCP port.
    pub open: Option<u16>,
    /// A closed TCP port.
    pub closed: Option<u16>,
    /// A closed UDP port (or one assumed closed).
    pub closed_udp: u16,
    /// The scan's smoothed round trip to it.
    pub srtt: Option<Duration>,
}

/// The machine's settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Ports and identifiers.
    pub ports: Ports,
    /// Tries per host (`--max-os-tries`), at least 1.
    pub tries: u8,
    /// Hosts probed at once.
    pub parallel: usize,
}

struct Host {
    target: Target,
    start: Instant,
    next: usize,
    seq_base: u32,
    tries_left: u8,
    sent: HashMap<Probe, TcpSent>,
    obs: Observations,
    echo_sent: [bool; 2],
    done_sending: Option<Instant>,
}

/// A packet to send.
#[derive(Debug, Clone, Copy)]
pub struct Transmit {
    /// Its length in the buffer.
    pub len: usize,
    /// Where to.
    pub dst: Ipv4Addr,
}

/// The machine.
pub struct Machine {
    cfg: Config,
    rng: StdRng,
    waiting: VecDeque<(u64, Target)>,
    active: HashMap<u64, Host>,
    by_addr: HashMap<Ipv4Addr, u64>,
    done: VecDeque<(u64, Observations, Instant)>,
}

impl Machine {
    /// A machine with nothing to do.
    pub fn new(cfg: Config, rng: StdRng) -> Machine {
        Machine {
            cfg,
            rng,
            waiting: VecDeque::new(),
            active: HashMap::new(),
            by_addr: HashMap::new(),
            done: VecDeque::new(),
        }
    }

    /// Queue a host under `id`.
    pub fn admit(&mut self, id: u64, target: Target) {
        self.waiting.push_back((id, target));
    }

    /// Nothing queued, probing or finished but not collected.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.active.is_empty() && self.done.is_empty()
    }

    fn start_hosts(&mut self, now: Instant) {
        while self.active.len() < self.cfg.parallel.max(1) {
            // A host already being probed waits its turn: answers are told apart by address.
            let Some(pos) = self.waiting.iter().position(|(_, t)| !self.by_addr.contains_key(&t.addr)) else {
                return;
            };
            let Some((id, target)) = self.waiting.remove(pos) else { return };
            let host = Host {
                target,
                start: now,
                next: 0,
                seq_base: self.rng.random(),
                tries_left: self.cfg.tries.max(1) - 1,
                sent: HashMap::new(),
                obs: Observations::default(),
                echo_sent: [false; 2],
                done_sending: None,
            };
            self.by_addr.insert(target.addr, id);
            self.active.insert(id, host);
        }
    }

    /// Advance timers: start queued hosts, finish hosts whose wait is over.
    pub fn tick(&mut self, now: Instant) {
        self.start_hosts(now);
        let finished: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, h)| h.done_sending.is_some_and(|t| now >= t + wait(h.target.srtt)))
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            let Some(h) = self.active.get_mut(&id) else { continue };
            let synacks = h.obs.seq.iter().filter_map(|p| p.reply.as_ref()).filter(|r| r.flags & 0x12 == 0x12).count();
            if synacks < 3 && h.target.open.is_some() && h.tries_left > 0 {
                h.tries_left -= 1;
                h.next = 0;
                h.start = now;
                h.seq_base = self.rng.random();
                h.sent.clear();
                h.obs = Observations::default();
                h.echo_sent = [false; 2];
                h.done_sending = None;
                continue;
            }
            if let Some(h) = self.active.remove(&id) {
                self.by_addr.remove(&h.target.addr);
                let started = h.start;
                self.done.push_back((id, finish(h), started));
            }
        }
        self.start_hosts(now);
    }

    /// The next packet due, built into `buf` (at least [`packets::MAX_LEN`] bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let ports = self.cfg.ports;
        for h in self.active.values_mut() {
            while let Some((offset, probe)) = SCHEDULE.get(h.next).copied() {
                if now < h.start + Duration::from_millis(offset) {
                    break;
                }
                h.next += 1;
                let t = h.target;
                let dport = match probe {
                    Probe::U1 | Probe::Burst(_) => t.closed_udp,
                    Probe::Echo(_) | Probe::IcmpTs => 0,
                    p if p.to_closed() => match t.closed {
                        Some(c) => c,
                        None => continue,
                    },
                    _ => match t.open {
                        Some(o) => o,
                        None => continue,
                    },
                };
                let idx = probe.tcp_index().unwrap_or(0) as u32;
                let seq = h.seq_base.wrapping_add(idx.wrapping_mul(0x0101_0101));
                // Every TCP probe fills the acknowledgement field, ACK flag or not (an answer's
                // sequence number is compared with it: `tN.seq`).
                let ack = seq.rotate_left(13) ^ 0x5a5a_5a5a;
                let spec = Spec { src: t.src, dst: t.addr, probe, dport, seq, ack, ip_id: self.rng.random(), ttl: 64 };
                let Some(len) = packets::build(&ports, &spec, buf) else { continue };
                let at = now.saturating_duration_since(h.start);
                match probe {
                    Probe::U1 => h.obs.u1 = Some(None),
                    Probe::Burst(_) => h.obs.burst.sent += 1,
                    Probe::Echo(i) => {
                        if let Some(s) = h.echo_sent.get_mut(usize::from(i)) {
                            *s = true;
                        }
                    }
                    Probe::IcmpTs => h.obs.icmp_ts = Some(false),
                    _ => {
                        h.sent.insert(probe, TcpSent { at, seq, ack });
                    }
                }
                if h.next >= SCHEDULE.len() {
                    h.done_sending = Some(now);
                }
                return Some(Transmit { len, dst: t.addr });
            }
            if h.next >= SCHEDULE.len() && h.done_sending.is_none() {
                h.done_sending = Some(now);
            }
        }
        None
    }

    /// When the machine next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut see = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        for h in self.active.values() {
            match (SCHEDULE.get(h.next), h.done_sending) {
                (_, Some(d)) => see(d + wait(h.target.srtt)),
                (Some((off, _)), None) => see(h.start + Duration::from_millis(*off)),
                _ => {}
            }
        }
        at
    }

    /// Feed a received IP packet.
    pub fn on_packet(&mut self, bytes: &[u8], now: Instant) {
        let Some(ip) = rustmap_wire::ipv4::Packet::new_checked(bytes).ok() else { return };
        let Some(&id) = self.by_addr.get(&ip.src_addr()) else { return };
        let Some(h) = self.active.get_mut(&id) else { return };
        let at = now.saturating_duration_since(h.start);
        let Some(answer) = packets::parse(&self.cfg.ports, bytes, at) else { return };
        match answer {
            Answer::Tcp { sport, dport, reply, .. } => {
                let Some(i) = self.cfg.ports.tcp.iter().position(|p| *p == dport) else { return };
                let Some(probe) = Probe::TCP.get(i).copied() else { return };
                let Some(sent) = h.sent.get(&probe).copied() else { return };
                let want_port = if probe.to_closed() { h.target.closed } else { h.target.open };
                if Some(sport) != want_port {
                    return;
                }
                // It must answer this probe. A segment with ACK is answered by a reset that takes
                // its acknowledgement number as sequence number. One without is answered by
                // acknowledging its sequence number (or its sequence number + 1), or — as
                // smoltcp does to FIN+PSH+URG — by a bare reset with both numbers zero. (lwIP's
                // resets take the unflagged acknowledgement field as sequence number and
                // acknowledge seq + 1: the first test takes them.)
                let ours = if packets::sends_ack(probe) {
                    reply.seq == sent.ack
                } else {
                    reply.ack == sent.seq.wrapping_add(1)
                        || reply.ack == sent.seq
                        || (reply.flags & 0x04 != 0 && reply.seq == 0 && reply.ack == 0)
                };
                if !ours {
                    return;
                }
                let slot = TcpProbe { sent, reply: Some(reply) };
                match probe {
                    Probe::Seq(_) | Probe::Ecn | Probe::T(_) => place(&mut h.obs, probe, slot),
                    _ => {}
                }
            }
            Answer::Echo { seq, reply, .. } => {
                if let Some(i) = seq.checked_sub(1).filter(|i| *i < 2) {
                    let i = usize::from(i);
                    if h.echo_sent[i] && h.obs.echo.iter().all(|e| e.code != echo_code(i) || e.reply.is_none()) {
                        h.obs.echo.push(EchoProbe { code: echo_code(i), df: i == 0, reply: Some(reply) });
                    }
                }
            }
            Answer::IcmpTs { .. } => {
                if h.obs.icmp_ts.is_some() {
                    h.obs.icmp_ts = Some(true);
                }
            }
            Answer::Unreach { dport, reply, .. } => {
                if dport == h.target.closed_udp && h.obs.u1 == Some(None) {
                    h.obs.u1 = Some(Some(reply));
                }
            }
            Answer::Burst { dport, .. } => {
                let b = &mut h.obs.burst;
                if dport == h.target.closed_udp && b.answered < b.sent {
                    b.answered += 1;
                }
            }
        }
    }

    /// A finished host, what its probes saw, and when its (last) try started: the instant every
    /// `at` of the observations counts from.
    pub fn poll_done(&mut self) -> Option<(u64, Observations, Instant)> {
        self.done.pop_front()
    }
}

fn echo_code(i: usize) -> u8 {
    if i == 0 {
        9
    } else {
        0
    }
}

/// How long a host waits for late answers after its last probe.
fn wait(srtt: Option<Duration>) -> Duration {
    srtt.map_or(Duration::from_secs(1), |s| {
        s.saturating_mul(4).clamp(Duration::from_millis(300), Duration::from_secs(2))
    })
}

/// Put an answered TCP probe where the observations keep it (first answer wins).
fn place(o: &mut Observations, probe: Probe, slot: TcpProbe) {
    match probe {
        Probe::Seq(i) => {
            let i = usize::from(i);
            if o.seq.len() <= i {
                o.seq.resize(i + 1, TcpProbe::default());
            }
            if let Some(s) = o.seq.get_mut(i) {
                if s.reply.is_none() {
                    *s = slot;
                }
            }
        }
        Probe::Ecn if o.ecn.as_ref().is_none_or(|p| p.reply.is_none()) => o.ecn = Some(slot),
        Probe::T(n @ 2..=7) => {
            if let Some(s) = o.t.get_mut(usize::from(n - 2)) {
                if s.as_ref().is_none_or(|p| p.reply.is_none()) {
                    *s = Some(slot);
                }
            }
        }
        _ => {}
    }
}

/// The observations of a finished host: answered probes in place, sent but unanswered ones as
/// such, probes never sent absent.
fn finish(mut h: Host) -> Observations {
    let mut o = std::mem::take(&mut h.obs);
    // Sent probes without an answer.
    let answered_seq: Vec<Option<TcpProbe>> = (0..6u8)
        .map(|i| {
            let sent = h.sent.get(&Probe::Seq(i))?;
            let got = o.seq.get(usize::from(i)).filter(|p| p.reply.is_some()).cloned();
            Some(got.unwrap_or(TcpProbe { sent: *sent, reply: None }))
        })
        .collect();
    o.seq = answered_seq.into_iter().flatten().collect();
    if o.ecn.is_none() {
        o.ecn = h.sent.get(&Probe::Ecn).map(|s| TcpProbe { sent: *s, reply: None });
    }
    for n in 2..=7u8 {
        if let Some(slot) = o.t.get_mut(usize::from(n - 2)) {
            if slot.is_none() {
                *slot = h.sent.get(&Probe::T(n)).map(|s| TcpProbe { sent: *s, reply: None });
            }
        }
    }
    for i in 0..2usize {
        if h.echo_sent[i] && !o.echo.iter().any(|e| e.code == echo_code(i)) {
            o.echo.push(EchoProbe { code: echo_code(i), df: i == 0, reply: None });
        }
    }
    o.echo.sort_by_key(|e| std::cmp::Reverse(e.code));
    o
}
