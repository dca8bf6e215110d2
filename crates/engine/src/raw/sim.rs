//! Deterministic tests of the raw engine with no socket and no real clock: probes are built by
//! the engine itself, the target's answers are built with `rustmap_wire` as a simulated host
//! would send them (or given as parsed ICMP errors), and both go through the same code as on the
//! wire. The first tests feed single answers: each settles the right port once; reordering,
//! duplicates, RST floods and spoofed answers, late answers after a probe's final timeout, ICMP
//! from the target or a router. The others drive whole scans of one host on a simulated clock
//! with the engine's own probe choice, timeouts and retries ([`Sim::drive`]): loss, a host that
//! answers only every other probe, rate-limited ICMP, late, duplicated and reordered answers,
//! RST floods, asserting final states and probe counts.

use super::*;
use rand::SeedableRng;
use rustmap_model::PortState;
use rustmap_wire::probe::Quoted;

const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
const TARGET: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 10));
const ROUTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));
const LOCAL: Local = Local { sport: 40_000, udp_sport: 40_001, icmp_id: 0x4242 };

/// One engine's reply-handling state and one target host, already up (`-Pn`).
struct Sim {
    scan: RawScan,
    plans: Plans,
    cookies: Cookies,
    net: NetState,
    hosts: FxHashMap<u64, Host>,
    by_addr: FxHashMap<IpAddr, u64>,
    /// The simulated clock.
    now: Instant,
}

fn host(addr: IpAddr, scans: usize, now: Instant) -> Host {
    Host {
        core: HostCore::new(ScanTarget { addr, hostnames: Vec::new() }, &Timing::default(), true, now),
        src: ME,
        disc_next: 0,
        plan: PlanKind::V4,
        link: None,
        mac: None,
        hop: Hop::Ip,
        sent: VecDeque::new(),
        cursors: vec![(0, 0); scans],
        turn: 0,
        retries: VecDeque::new(),
        outstanding: FxHashMap::default(),
        udp_gap: Duration::ZERO,
        udp_next: now,
        udp_grown: None,
        udp_unreach: false,
    }
}

impl Sim {
    fn new(scans: Vec<(ScanType, Vec<u16>)>) -> Sim {
        let n = scans.len();
        let scan = RawScan {
            scans,
            randomize: false,
            timing: Timing::default(),
            skip_discovery: true,
            discovery: DiscoveryPlan::default(),
            collapse_threshold: 25,
            hosts_hint: None,
            origin: Origin::default(),
            send_ip: false,
        };
        let net = NetState { window: Window::new(&scan.timing), global_rtt: RttEstimator::default() };
        let mut sim = Sim {
            plans: Plans::new(&scan.discovery),
            scan,
            cookies: Cookies { key: RandomState::new() },
            net,
            hosts: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            now: Instant::now(),
        };
        sim.hosts.insert(0, host(TARGET, n, sim.now));
        sim.by_addr.insert(TARGET, 0);
        sim
    }

    /// Send probe `pk` to the target: built by the engine, then parsed as the target sees it.
    fn send(&mut self, pk: Pk) -> wp::Reply {
        self.send_try(pk, 0)
    }

    fn send_try(&mut self, pk: Pk, tryno: u8) -> wp::Reply {
        let h = self.hosts.get_mut(&0).unwrap();
        let mut buf = [0u8; 1600];
        let n = self.scan.build(&mut buf, h, pk, &self.cookies, LOCAL, tryno, None, None).expect("probe built");
        h.outstanding.insert(pk, (self.now, tryno));
        wp::parse_reply(&buf[..n]).expect("our own probe parses")
    }

    /// A packet arrives (IP bytes): does it settle a probe?
    fn recv(&mut self, packet: &[u8]) -> bool {
        let Ok(reply) = wp::parse_reply(packet) else { return false };
        self.recv_parsed(&reply)
    }

    fn recv_parsed(&mut self, reply: &wp::Reply) -> bool {
        let (hosts, by_addr) = (&mut self.hosts, &self.by_addr);
        let (cookies, net, plans) = (&self.cookies, &mut self.net, &self.plans);
        self.scan.on_reply(reply, None, hosts, by_addr, cookies, LOCAL, net, plans, self.now).is_some()
    }

    /// The probe's final timeout, as the engine concludes it: no longer outstanding, its port
    /// decided by silence.
    fn time_out(&mut self, pk: Pk) {
        let h = self.hosts.get_mut(&0).unwrap();
        h.outstanding.remove(&pk);
        if let Pk::Port(s, port) = pk {
            let scan = self.scan.scans[usize::from(s)].0;
            h.core.results.push((scan.protocol(), port, probe::silence(scan), Reason::NoResponse, 0));
        }
    }

    fn results(&self) -> Vec<(u16, PortState, Reason)> {
        let mut r: Vec<_> = self.hosts[&0].core.results.iter().map(|r| (r.1, r.2, r.3)).collect();
        r.sort_unstable_by_key(|r| r.0);
        r
    }

    fn outstanding(&self) -> usize {
        self.hosts[&0].outstanding.len()
    }
}

/// A TCP segment from `src` to us, as a target's stack sends it.
fn tcp_from(src: IpAddr, sport: u16, dport: u16, seq: u32, ack: u32, flags: Flags) -> Vec<u8> {
    let l4 = L4::Tcp { sport, dport, seq, ack, flags, window: 29_200, options: &[] };
    let p = IpProbe { src, dst: ME, ttl: 64, ip_id: 7, l4 };
    let mut buf = vec![0u8; 128];
    let n = wp::emit_ip(&p, &mut buf).expect("reply built");
    buf.truncate(n);
    buf
}

/// The target's answer to a TCP probe: SYN/ACK if `open`, else RST (acknowledging the probe).
fn answer(probe: &wp::Reply, open: bool) -> Vec<u8> {
    let ReplyBody::Tcp { sport, dport, seq, .. } = probe.body else { panic!("not TCP: {probe:?}") };
    let flags = if open { Flags::SYN | Flags::ACK } else { Flags::RST | Flags::ACK };
    tcp_from(probe.dst, dport, sport, 0x1000, seq.wrapping_add(1), flags)
}

fn syn(port: u16) -> Pk {
    Pk::Port(0, port)
}

#[test]
fn answers_settle_their_port_once_and_duplicates_are_ignored() {
    let mut sim = Sim::new(vec![(ScanType::Syn, vec![22, 23])]);
    let p22 = sim.send(syn(22));
    let p23 = sim.send(syn(23));
    assert!(sim.recv(&answer(&p22, true)));
    assert!(sim.recv(&answer(&p23, false)));
    // The same answers again (a duplicated packet, a retransmitted SYN/ACK): nothing left to settle.
    assert!(!sim.recv(&answer(&p22, true)));
    assert!(!sim.recv(&answer(&p23, false)));
    assert_eq!(sim.results(), [(22, PortState::Open, Reason::SynAck), (23, PortState::Closed, Reason::Reset)]);
    assert_eq!(sim.outstanding(), 0);
}

#[test]
fn reordered_answers_settle_the_right_ports() {
    let ports: Vec<u16> = (1000..1200).collect();
    let mut sim = Sim::new(vec![(ScanType::Syn, ports.clone())]);
    let mut probes: Vec<(u16, wp::Reply)> = ports.iter().map(|&p| (p, sim.send(syn(p)))).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    probes.shuffle(&mut rng);
    for (port, probe) in &probes {
        assert!(sim.recv(&answer(probe, port % 3 == 0)), "{port}");
    }
    let want: Vec<_> = ports
        .iter()
        .map(|&p| if p % 3 == 0 { (p, PortState::Open, Reason::SynAck) } else { (p, PortState::Closed, Reason::Reset) })
        .collect();
    assert_eq!(sim.results(), want);
}

#[test]
fn rst_floods_and_spoofed_answers_are_ignored() {
    let mut sim = Sim::new(vec![(ScanType::Syn, vec![80])]);
    let probe = sim.send(syn(80));
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    // Unsolicited resets from the probed port, with sequence and acknowledgement numbers that do
    // not echo the probe's cookie (as a flood would).
    let ReplyBody::Tcp { seq: cookie, .. } = probe.body else { unreachable!() };
    let mut flood = 0;
    while flood < 5000 {
        let (seq, ack): (u32, u32) = (rng.random(), rng.random());
        if ack == cookie || ack == cookie.wrapping_add(1) || seq == cookie {
            continue;
        }
        flood += 1;
        for flags in [Flags::RST, Flags::RST | Flags::ACK, Flags::SYN | Flags::ACK] {
            assert!(!sim.recv(&tcp_from(TARGET, 80, LOCAL.sport, seq, ack, flags)));
        }
    }
    // The right answer from the wrong address, or to the wrong port of ours: not ours either.
    let right = answer(&probe, true);
    assert!(!sim.recv(&tcp_from(ROUTER, 80, LOCAL.sport, 1, cookie.wrapping_add(1), Flags::SYN | Flags::ACK)));
    assert!(!sim.recv(&tcp_from(TARGET, 80, LOCAL.sport + 1, 1, cookie.wrapping_add(1), Flags::SYN | Flags::ACK)));
    assert_eq!(sim.outstanding(), 1, "the probe still waits for its answer");
    assert!(sim.recv(&right));
    assert_eq!(sim.results(), [(80, PortState::Open, Reason::SynAck)]);
}

#[test]
fn a_late_answer_after_the_final_timeout_changes_nothing() {
    let mut sim = Sim::new(vec![(ScanType::Syn, vec![443])]);
    let probe = sim.send(syn(443));
    sim.time_out(syn(443));
    assert!(!sim.recv(&answer(&probe, true)));
    assert_eq!(sim.results(), [(443, PortState::Filtered, Reason::NoResponse)]);
}

/// An ICMP error quoting our UDP probe to `dport`, sent by `from`.
fn udp_unreachable(from: IpAddr, dport: u16, code: u8) -> wp::Reply {
    let quoted = Quoted {
        src: ME,
        dst: TARGET,
        proto: 17,
        sport: LOCAL.udp_sport,
        dport,
        tcp_seq: None,
        icmp_id: None,
        icmp_seq: None,
        sctp_vtag: None,
    };
    wp::Reply { src: from, dst: ME, ttl: 63, body: ReplyBody::IcmpError { v6: false, icmp_type: 3, code, quoted } }
}

#[test]
fn udp_answers_and_icmp_from_the_target_or_a_router() {
    let mut sim = Sim::new(vec![(ScanType::Udp, vec![53, 54, 55, 56])]);
    for p in [53, 54, 55, 56] {
        sim.send(Pk::Port(0, p));
    }
    // 53 answers; 54 is port-unreachable from the target itself; 55's unreachable comes from a
    // router (the path is blocked, the port's state unknown); 56 is administratively prohibited.
    let l4 = L4::Udp { sport: 53, dport: LOCAL.udp_sport, payload: b"dns" };
    let mut buf = [0u8; 128];
    let n = wp::emit_ip(&IpProbe { src: TARGET, dst: ME, ttl: 64, ip_id: 1, l4 }, &mut buf).unwrap();
    assert!(sim.recv(&buf[..n]));
    assert!(sim.recv_parsed(&udp_unreachable(TARGET, 54, 3)));
    assert!(sim.recv_parsed(&udp_unreachable(ROUTER, 55, 3)));
    assert!(sim.recv_parsed(&udp_unreachable(TARGET, 56, 13)));
    // A second port-unreachable for 54 (duplicate), and one for a port never probed: ignored.
    assert!(!sim.recv_parsed(&udp_unreachable(TARGET, 54, 3)));
    assert!(!sim.recv_parsed(&udp_unreachable(TARGET, 9999, 3)));
    assert_eq!(
        sim.results(),
        [
            (53, PortState::Open, Reason::UdpResponse),
            (54, PortState::Closed, Reason::PortUnreach),
            (55, PortState::Filtered, Reason::HostUnreach),
            (56, PortState::Filtered, Reason::AdminProhibited),
        ]
    );
    assert!(sim.hosts[&0].udp_unreach, "the host answers closed ports: its silences may be rate limiting");
}

// ------------------------------------------------------------------ whole scans, simulated time

/// What the simulated target does with one probe: the answers it sends (each arriving after its
/// delay), given the probe's kind and try, the probe as parsed, and the simulated time.
type Target<'a> = dyn FnMut(Pk, u8, &wp::Reply, Instant) -> Vec<(Duration, wp::Reply)> + 'a;

/// A packet as the capture would hand it to the engine: parsed from its bytes.
fn parsed(packet: &[u8]) -> wp::Reply {
    wp::parse_reply(packet).expect("a well-formed packet")
}

impl Sim {
    /// Scan the host as the engine's loop does, on the simulated clock: the engine picks each
    /// probe (`next_probe`, at most `window` out) and builds it; the target's answers arrive in
    /// time order and go through `on_reply`; probes whose time is up go through the engine's
    /// timeouts (`Timeouts`, `on_silence`) to be retried or concluded; until the host is complete.
    /// Returns the probes sent.
    fn drive(&mut self, target: &mut Target<'_>, window: usize) -> u32 {
        let mut ring: VecDeque<u64> = VecDeque::from([0]);
        let orders: Vec<Vec<u16>> = self.scan.scans.iter().map(|(_, p)| p.clone()).collect();
        let mut clock = Timeouts::default();
        let mut wire: Vec<(Instant, wp::Reply)> = Vec::new();
        let mut sent = 0u32;
        let timing = self.scan.timing.clone();
        loop {
            while self.outstanding() < window {
                let (hosts, plans) = (&mut self.hosts, &self.plans);
                let Some((id, pk, tryno)) =
                    self.scan.next_probe(hosts, &mut ring, &orders, plans, self.now, true, true)
                else {
                    break;
                };
                let probe = self.send_try(pk, tryno);
                let h = self.hosts.get_mut(&id).unwrap();
                if self.scan.is_udp(pk) {
                    h.udp_next = self.now + h.udp_gap;
                }
                clock.sent(h, id, self.now, pk, tryno, &timing);
                sent += 1;
                for (delay, reply) in target(pk, tryno, &probe, self.now) {
                    wire.push((self.now + delay, reply));
                }
            }
            let h = &self.hosts[&0];
            if self.scan.host_complete(h, &self.plans) {
                return sent;
            }
            assert!(sent < 100_000, "the scan does not end");
            // The next thing to happen: an answer arriving, a probe's time being up, or the
            // host's UDP send gap opening.
            let global_wait = self.net.global_rtt.timeout(&timing);
            let gap = (h.udp_gap > Duration::ZERO && h.udp_next > self.now).then_some(h.udp_next);
            let next = wire.iter().map(|w| w.0).chain(clock.next_deadline(global_wait)).chain(gap).min();
            let Some(next) = next else {
                panic!(
                    "nothing to wait for, yet the host is not complete: out {:?}, retries {:?}, gap {:?}, next in {:?}, cursors {:?}",
                    h.outstanding, h.retries, h.udp_gap, h.udp_next.checked_duration_since(self.now), h.cursors
                )
            };
            self.now = next.max(self.now);
            // Answers that have arrived, in arrival order.
            wire.sort_by_key(|w| w.0);
            let due = wire.iter().take_while(|w| w.0 <= self.now).count();
            for (_, reply) in wire.drain(..due).collect::<Vec<_>>() {
                self.recv_parsed(&reply);
            }
            while let Some((id, pk, tryno)) = clock.next_overdue(&mut self.hosts, global_wait, &timing, self.now) {
                let h = self.hosts.get_mut(&id).unwrap();
                let at = h.outstanding.remove(&pk).map_or(self.now, |o| o.0);
                self.scan.on_silence(h, pk, tryno, at, self.now, &mut self.net);
            }
        }
    }
}

const RTT: Duration = Duration::from_millis(2);

/// A TCP host: `open` ports answer SYN/ACK, the others RST.
fn tcp_host(open: &'static [u16]) -> impl FnMut(Pk, u8, &wp::Reply, Instant) -> Vec<(Duration, wp::Reply)> {
    move |pk, _, probe, _| {
        let Pk::Port(_, port) = pk else { return Vec::new() };
        vec![(RTT, parsed(&answer(probe, open.contains(&port))))]
    }
}

fn expected(ports: &[u16], open: &[u16]) -> Vec<(u16, PortState, Reason)> {
    ports
        .iter()
        .map(|&p| {
            if open.contains(&p) {
                (p, PortState::Open, Reason::SynAck)
            } else {
                (p, PortState::Closed, Reason::Reset)
            }
        })
        .collect()
}

const OPEN: &[u16] = &[22, 80, 443];

#[test]
fn a_clean_scan_sends_one_probe_per_port() {
    let ports: Vec<u16> = (1..=500).collect();
    let mut sim = Sim::new(vec![(ScanType::Syn, ports.clone())]);
    let sent = sim.drive(&mut tcp_host(OPEN), 64);
    assert_eq!(sent, 500);
    assert_eq!(sim.results(), expected(&ports, OPEN));
}

#[test]
fn a_host_that_answers_only_every_other_probe_costs_two_probes_a_port() {
    // Each port's first try is dropped, its retry answered.
    let ports: Vec<u16> = (1..=200).collect();
    let mut sim = Sim::new(vec![(ScanType::Syn, ports.clone())]);
    let mut host = tcp_host(OPEN);
    let mut target = |pk, tryno: u8, probe: &wp::Reply, now| {
        if tryno.is_multiple_of(2) {
            Vec::new()
        } else {
            host(pk, tryno, probe, now)
        }
    };
    let sent = sim.drive(&mut target, 32);
    assert_eq!(sim.results(), expected(&ports, OPEN), "no port left filtered");
    assert_eq!(sent, 400, "exactly one retry per port");
}

#[test]
fn random_loss_of_probes_and_answers_is_recovered_by_retries() {
    let ports: Vec<u16> = (1..=300).collect();
    let mut sim = Sim::new(vec![(ScanType::Syn, ports.clone())]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut host = tcp_host(OPEN);
    let mut target = |pk, tryno, probe: &wp::Reply, now| {
        // 20 % of probes and 20 % of answers are lost.
        if rng.random_bool(0.2) {
            return Vec::new();
        }
        let mut a = host(pk, tryno, probe, now);
        a.retain(|_| !rng.random_bool(0.2));
        a
    };
    let sent = sim.drive(&mut target, 32);
    assert_eq!(sim.results(), expected(&ports, OPEN));
    // About 1 / 0.64 tries a port, and never more than the template's seven.
    assert!((300..=700).contains(&sent), "{sent}");
}

#[test]
fn late_duplicated_and_reordered_answers_and_a_rst_flood_change_nothing() {
    let ports: Vec<u16> = (1000..1300).collect();
    let mut sim = Sim::new(vec![(ScanType::Syn, ports.clone())]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut host = tcp_host(&[1001, 1200]);
    let mut target = |pk, tryno, probe: &wp::Reply, now| {
        let mut out = Vec::new();
        for (_, reply) in host(pk, tryno, probe, now) {
            // Every answer twice, each after a random delay of up to 3 s: many arrive after the
            // probe's timeout (1 s before any round trip is known), after its retry went out.
            for _ in 0..2 {
                out.push((Duration::from_millis(rng.random_range(1..3000)), reply));
            }
        }
        // And unsolicited resets from the same port that echo nothing of ours.
        let Pk::Port(_, port) = pk else { return out };
        for _ in 0..3 {
            let (seq, ack) = (rng.random(), rng.random());
            let rst = tcp_from(TARGET, port, LOCAL.sport, seq, ack, Flags::RST);
            out.push((Duration::from_millis(rng.random_range(0..10)), parsed(&rst)));
        }
        out
    };
    let sent = sim.drive(&mut target, 64);
    assert_eq!(sim.results(), expected(&ports, &[1001, 1200]), "each port decided once, from a real answer");
    assert!(sent >= 300, "{sent}");
}

#[test]
fn rate_limited_icmp_still_finds_every_closed_udp_port_closed() {
    // A Linux-like host: port-unreachable from a bucket of 6, one more a second; what the
    // bucket cannot pay for goes unanswered.
    let ports: Vec<u16> = (2000..2020).collect();
    let mut sim = Sim::new(vec![(ScanType::Udp, ports.clone())]);
    let start = sim.now;
    let (mut tokens, mut last) = (6.0f64, start);
    let mut target = |pk, _, _: &wp::Reply, now: Instant| {
        let Pk::Port(_, port) = pk else { return Vec::new() };
        tokens = (tokens + now.duration_since(last).as_secs_f64()).min(6.0);
        last = now;
        if tokens < 1.0 {
            return Vec::new();
        }
        tokens -= 1.0;
        vec![(RTT, udp_unreachable(TARGET, port, 3))]
    };
    let sent = sim.drive(&mut target, 16);
    let all_closed: Vec<_> = ports.iter().map(|&p| (p, PortState::Closed, Reason::PortUnreach)).collect();
    assert_eq!(sim.results(), all_closed, "no closed port left open|filtered");
    let took = sim.now.duration_since(start);
    eprintln!("20 closed UDP ports behind a 1/s ICMP limit: {sent} probes, {took:?} simulated");
    assert!(sent < 200, "{sent}");
    assert!(took >= Duration::from_secs(10), "14 answers beyond the burst take a second each: {took:?}");
}
