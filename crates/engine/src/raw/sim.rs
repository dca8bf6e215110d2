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
use crate::Evasion;
use rustmap_model::{HostResult, HostStatus, PortState};
use rustmap_wire::probe::Quoted;

const ME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
const TARGET: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 10));
const ROUTER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));
const LOCAL: Local = Local { sport: 40_000, udp_sport: 40_001, icmp_id: 0x4242 };

/// The simulated network around the machine: every target is reached through the raw IP socket
/// from our one address, none is on a directly connected link.
struct SimNet;

impl Topology for SimNet {
    fn source_for(&self, _: IpAddr) -> Option<IpAddr> {
        Some(ME)
    }

    fn on_link(&self, _: IpAddr) -> Option<Link> {
        None
    }

    fn hop(&mut self, _: IpAddr, _: Option<[u8; 6]>) -> Hop {
        Hop::Ip
    }
}

/// The raw engine's state machine with one target host, on a simulated clock.
struct Sim {
    m: Machine,
    /// The simulated clock.
    now: Instant,
    /// Every event the machine emitted.
    events: Vec<ScanEvent>,
    /// Every packet the machine sent, in order.
    wire: Vec<Vec<u8>>,
}

/// A scan of `scans` with these timing knobs; `-Pn` unless `discovery` says which probes find
/// the host.
fn raw_scan(scans: Vec<(ScanType, Vec<u16>)>, timing: Timing, discovery: Option<DiscoveryPlan>) -> RawScan {
    RawScan {
        scans,
        randomize: false,
        timing,
        skip_discovery: discovery.is_none(),
        discovery: discovery.unwrap_or_default(),
        collapse_threshold: 25,
        hosts_hint: None,
        origin: Origin::default(),
        send_ip: false,
        evasion: Evasion::default(),
        passive_os: false,
    }
}

impl Sim {
    /// The target, already up (`-Pn`), in a scan with default timing.
    fn new(scans: Vec<(ScanType, Vec<u16>)>) -> Sim {
        Sim::of(raw_scan(scans, Timing::default(), None), &[TARGET])
    }

    /// The target, already up, with at most `window` probes in flight to it.
    fn with_window(scans: Vec<(ScanType, Vec<u16>)>, window: usize) -> Sim {
        let timing = Timing { max_parallelism: window, ..Timing::default() };
        Sim::of(raw_scan(scans, timing, None), &[TARGET])
    }

    /// A machine for `scan` with `targets` admitted and no more to come, with a fixed seed.
    fn of(scan: RawScan, targets: &[IpAddr]) -> Sim {
        let now = Instant::now();
        let mut m = Machine::new(scan, LOCAL.sport, LOCAL.udp_sport, StdRng::seed_from_u64(1), now);
        m.local = LOCAL;
        for &addr in targets {
            m.admit(ScanTarget { addr, hostnames: Vec::new() }, now, &SimNet);
        }
        m.end_of_targets();
        Sim { m, now, events: Vec::new(), wire: Vec::new() }
    }

    /// Send probe `pk` to the target: built by the engine, then parsed as the target sees it.
    fn send(&mut self, pk: Pk) -> wp::Reply {
        let h = self.m.hosts.get_mut(&0).unwrap();
        let mut buf = [0u8; 1600];
        let (scan, cookies, rng) = (&self.m.scan, &self.m.cookies, &mut self.m.rng);
        let n = scan.build(&mut buf, h.src, h, pk, cookies, LOCAL, 0, None, None, rng).expect("probe built");
        h.outstanding.insert(pk, (self.now, 0));
        wp::parse_reply(&buf[..n]).expect("our own probe parses")
    }

    /// A packet arrives (IP bytes): does it settle a probe?
    fn recv(&mut self, packet: &[u8]) -> bool {
        self.m.on_frame(0x0800, None, packet, self.now)
    }

    fn recv_parsed(&mut self, reply: &wp::Reply) -> bool {
        self.m.on_packet(reply, None, self.now)
    }

    /// The probe's final timeout, as the engine concludes it: no longer outstanding, its port
    /// decided by silence.
    fn time_out(&mut self, pk: Pk) {
        let h = self.m.hosts.get_mut(&0).unwrap();
        h.outstanding.remove(&pk);
        if let Pk::Port(s, port) = pk {
            let scan = self.m.scan.scans[usize::from(s)].0;
            h.core.results.push((scan.protocol(), port, probe::silence(scan), Reason::NoResponse, 0));
        }
    }

    /// The target's port results: as the host has them while it is in flight, else as its
    /// `PortFound` events announced them.
    fn results(&self) -> Vec<(u16, PortState, Reason)> {
        let mut r: Vec<_> = match self.m.hosts.get(&0) {
            Some(h) => h.core.results.iter().map(|r| (r.1, r.2, r.3)).collect(),
            None => self
                .events
                .iter()
                .filter_map(|e| match e {
                    ScanEvent::PortFound { port, .. } => Some((port.port, port.state, port.reason)),
                    _ => None,
                })
                .collect(),
        };
        r.sort_unstable_by_key(|r| r.0);
        r
    }

    fn outstanding(&self) -> usize {
        self.m.hosts[&0].outstanding.len()
    }

    /// The `HostDone` of `addr`, once the machine has reported it.
    fn host_done(&self, addr: IpAddr) -> Option<&HostResult> {
        self.events.iter().find_map(|e| match e {
            ScanEvent::HostDone(h) if h.addr == addr => Some(h),
            _ => None,
        })
    }
}

/// A TCP segment from `src` to us, as a target's stack sends it.
fn tcp_from(src: IpAddr, sport: u16, dport: u16, seq: u32, ack: u32, flags: Flags) -> Vec<u8> {
    let l4 = L4::Tcp { sport, dport, seq, ack, flags, window: 29_200, options: &[], payload: &[] };
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

/// With `-O`, a host's first SYN-ACKs that answer probes of ours are kept whole (for the passive
/// tests), eight at most; resets, duplicates and forged SYN-ACKs are not. Without `-O`, none.
#[test]
fn syn_acks_are_kept_for_os_detection_only_when_asked() {
    for passive_os in [true, false] {
        let ports: Vec<u16> = (2000..2012).collect();
        let mut scan = raw_scan(vec![(ScanType::Syn, ports.clone())], Timing::default(), None);
        scan.passive_os = passive_os;
        let mut sim = Sim::of(scan, &[TARGET]);
        let forged = tcp_from(TARGET, 2000, LOCAL.sport, 0x1000, 12345, Flags::SYN | Flags::ACK);
        assert!(!sim.recv(&forged));
        let mut answers = Vec::new();
        for &port in &ports {
            let probe = sim.send(syn(port));
            let a = answer(&probe, port != 2001);
            assert!(sim.recv(&a));
            assert!(!sim.recv(&a), "a duplicate settles nothing");
            if port != 2001 {
                answers.push(a);
            }
        }
        let kept: Vec<Vec<u8>> = sim.m.hosts[&0].core.passive.iter().map(|s| s.packet.clone()).collect();
        if passive_os {
            assert_eq!(kept, answers[..PassiveSegment::PER_HOST], "the first eight SYN-ACKs, whole");
        } else {
            assert!(kept.is_empty());
        }
    }
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
    assert!(sim.m.hosts[&0].udp_unreach, "the host answers closed ports: its silences may be rate limiting");
}

// ------------------------------------------------------------------ whole scans, simulated time

/// What the simulated target does with one probe: the answers it sends (each arriving after its
/// delay), given the probe's kind and try, the probe as parsed, and the simulated time.
type Target<'a> = dyn FnMut(Pk, u8, &wp::Reply, Instant) -> Vec<(Duration, wp::Reply)> + 'a;

/// A packet as the capture would hand it to the engine: parsed from its bytes.
/// The IPv4 packet the receiver puts together from these fragments (or the one whole packet).
fn reassemble<'a>(frags: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let frags: Vec<&Vec<u8>> = frags.collect();
    let first = frags.first().expect("a packet from us");
    let hl = usize::from(first[0] & 0xf) * 4;
    let mut out = first[..hl].to_vec();
    for f in &frags {
        let p = rustmap_wire::ipv4::Packet::new_checked(&f[..]).expect("an IPv4 packet");
        assert_eq!(usize::from(p.frag_offset()), out.len() - hl, "fragments in order, none missing");
        out.extend_from_slice(p.payload());
    }
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    let mut p = rustmap_wire::ipv4::Packet::new_checked(&mut out[..]).expect("reassembled");
    p.set_fragment(false, false, 0).expect("offset 0");
    p.fill_checksum();
    out
}

fn parsed(packet: &[u8]) -> wp::Reply {
    wp::parse_reply(packet).expect("a well-formed packet")
}

impl Sim {
    /// Run the machine to the end on the simulated clock, as the driver does: tick, send every
    /// batch it builds (each probe goes to `target`, whose answers arrive after their delays),
    /// then move the clock to the next thing to happen (an answer arriving, or the machine's
    /// next timer) and deliver what arrived, in arrival order. Returns the probes sent.
    fn drive(&mut self, target: &mut Target<'_>) -> u32 {
        let start = self.now;
        let mut wire: Vec<(Instant, wp::Reply)> = Vec::new();
        let mut outbox = Outbox::default();
        let mut sent = 0u32;
        loop {
            self.m.tick(self.now);
            self.events.extend(std::iter::from_fn(|| self.m.poll_event()));
            if self.m.is_finished() {
                return sent;
            }
            while self.m.poll_transmit(self.now, &mut SimNet, &mut outbox) {
                for (i, &(_, pk, tryno)) in outbox.meta.iter().enumerate() {
                    // The packets of this probe (several with decoys or fragments); the target
                    // answers the one from us, put back together if it was fragmented.
                    let from = if i == 0 { 0 } else { outbox.ends[i - 1] };
                    let packets: Vec<Vec<u8>> = (from..outbox.ends[i]).map(|k| outbox.packet(k).to_vec()).collect();
                    let ours = reassemble(packets.iter().filter(|p| p[12..16] == [198, 18, 0, 2]));
                    self.wire.extend(packets);
                    let probe = parsed(&ours);
                    for (delay, reply) in target(pk, tryno, &probe, self.now) {
                        wire.push((self.now + delay, reply));
                    }
                }
                sent += outbox.meta.len() as u32;
                self.m.on_transmitted(&outbox.meta, self.now);
                outbox.clear();
            }
            assert!(sent < 100_000, "the scan does not end");
            assert!(self.now.duration_since(start) < Duration::from_secs(3600), "the scan does not end");
            let next = wire.iter().map(|w| w.0).chain(self.m.poll_at(self.now)).min();
            let Some(next) = next else {
                let h = &self.m.hosts[&0];
                panic!(
                    "nothing to wait for, yet the host is not complete: out {:?}, retries {:?}, gap {:?}, cursors {:?}",
                    h.outstanding, h.retries, h.udp_gap, h.cursors
                )
            };
            self.now = next.max(self.now);
            wire.sort_by_key(|w| w.0);
            let due = wire.iter().take_while(|w| w.0 <= self.now).count();
            for (_, reply) in wire.drain(..due).collect::<Vec<_>>() {
                self.recv_parsed(&reply);
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
    let mut sim = Sim::with_window(vec![(ScanType::Syn, ports.clone())], 64);
    let sent = sim.drive(&mut tcp_host(OPEN));
    assert_eq!(sent, 500);
    assert_eq!(sim.results(), expected(&ports, OPEN));
}

#[test]
fn a_host_that_answers_only_every_other_probe_costs_two_probes_a_port() {
    // Each port's first try is dropped, its retry answered.
    let ports: Vec<u16> = (1..=200).collect();
    let mut sim = Sim::with_window(vec![(ScanType::Syn, ports.clone())], 32);
    let mut host = tcp_host(OPEN);
    let mut target = |pk, tryno: u8, probe: &wp::Reply, now| {
        if tryno.is_multiple_of(2) {
            Vec::new()
        } else {
            host(pk, tryno, probe, now)
        }
    };
    let sent = sim.drive(&mut target);
    assert_eq!(sim.results(), expected(&ports, OPEN), "no port left filtered");
    assert_eq!(sent, 400, "exactly one retry per port");
}

#[test]
fn random_loss_of_probes_and_answers_is_recovered_by_retries() {
    let ports: Vec<u16> = (1..=300).collect();
    let mut sim = Sim::with_window(vec![(ScanType::Syn, ports.clone())], 32);
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
    let sent = sim.drive(&mut target);
    assert_eq!(sim.results(), expected(&ports, OPEN));
    // About 1 / 0.64 tries a port, and never more than the template's seven.
    assert!((300..=700).contains(&sent), "{sent}");
}

#[test]
fn late_duplicated_and_reordered_answers_and_a_rst_flood_change_nothing() {
    let ports: Vec<u16> = (1000..1300).collect();
    let mut sim = Sim::with_window(vec![(ScanType::Syn, ports.clone())], 64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut host = tcp_host(&[1001, 1200]);
    let mut target = |pk, tryno, probe: &wp::Reply, now| {
        let mut out = Vec::new();
        for (_, reply) in host(pk, tryno, probe, now) {
            // Every answer to a first try twice, each after a random delay of up to 3 s: many
            // arrive after the probe's timeout (1 s before any round trip is known, far less
            // after), after its retry went out, or after the retry's prompt answer settled it.
            let copies = if tryno == 0 { 2 } else { 1 };
            for _ in 0..copies {
                let delay = if tryno == 0 { rng.random_range(1..3000) } else { 2 };
                out.push((Duration::from_millis(delay), reply));
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
    let sent = sim.drive(&mut target);
    assert_eq!(sim.results(), expected(&ports, &[1001, 1200]), "each port decided once, from a real answer");
    let late = sent - 300;
    eprintln!("300 ports with late first answers: {sent} probes");
    assert!(late > 0 && late <= 300, "at most one retry a port: {sent}");
    assert_eq!(sim.host_done(TARGET).map(|h| h.status), Some(HostStatus::Up));
}

#[test]
fn rate_limited_icmp_still_finds_every_closed_udp_port_closed() {
    // A Linux-like host: port-unreachable from a bucket of 6, one more a second; what the
    // bucket cannot pay for goes unanswered.
    let ports: Vec<u16> = (2000..2020).collect();
    let mut sim = Sim::with_window(vec![(ScanType::Udp, ports.clone())], 16);
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
    let sent = sim.drive(&mut target);
    let all_closed: Vec<_> = ports.iter().map(|&p| (p, PortState::Closed, Reason::PortUnreach)).collect();
    assert_eq!(sim.results(), all_closed, "no closed port left open|filtered");
    let took = sim.now.duration_since(start);
    eprintln!("20 closed UDP ports behind a 1/s ICMP limit: {sent} probes, {took:?} simulated");
    assert!(sent < 200, "{sent}");
    assert!(took >= Duration::from_secs(10), "14 answers beyond the burst take a second each: {took:?}");
}

const SILENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 11));

#[test]
fn discovery_finds_a_host_by_its_reset_and_gives_up_on_a_silent_address() {
    // nmap's privileged default: echo, SYN to 443, ACK to 80, timestamp. The target drops ICMP
    // and answers TCP (443 closed: a reset proves it is there); the other address never answers.
    let ports: Vec<u16> = (20..=30).collect();
    let scan = raw_scan(vec![(ScanType::Syn, ports.clone())], Timing::default(), Some(DiscoveryPlan::default()));
    let mut sim = Sim::of(scan, &[TARGET, SILENT]);
    let mut to_silent = 0;
    let mut pings = 0;
    let mut target = |pk: Pk, _, probe: &wp::Reply, _| {
        if probe.dst == SILENT {
            to_silent += 1;
            return Vec::new();
        }
        if matches!(pk, Pk::Disc(_)) {
            pings += 1;
        }
        match probe.body {
            ReplyBody::Tcp { dport, .. } => vec![(RTT, parsed(&answer(probe, dport == 22)))],
            _ => Vec::new(),
        }
    };
    sim.drive(&mut target);
    let up = sim.host_done(TARGET).expect("the target is reported");
    assert_eq!((up.status, up.reason), (HostStatus::Up, Reason::Reset));
    let open: Vec<u16> = up.ports.iter().filter(|p| p.state == PortState::Open).map(|p| p.port).collect();
    assert_eq!(open, [22]);
    assert_eq!(up.extraports.iter().map(|e| e.count as usize).sum::<usize>() + up.ports.len(), ports.len());
    // Its ports were announced before its HostDone.
    let first_port = sim.events.iter().position(|e| matches!(e, ScanEvent::PortFound { addr, .. } if *addr == TARGET));
    let done = sim.events.iter().position(|e| matches!(e, ScanEvent::HostDone(h) if h.addr == TARGET));
    assert!(first_port.unwrap() < done.unwrap());
    assert!(pings <= 4, "discovery probes to the target: {pings}");
    let down = sim.host_done(SILENT).expect("the silent address is reported");
    assert_eq!((down.status, down.reason), (HostStatus::Down, Reason::NoResponse));
    assert!(down.ports.is_empty());
    // Four probes, each tried once more (one try beyond what ever paid off on that host).
    assert_eq!(to_silent, 8);
}

#[test]
fn max_rate_is_held_on_the_simulated_clock() {
    for rate in [100.0, 1_000.0, 10_000.0] {
        let n = (rate * 2.0) as u16;
        let ports: Vec<u16> = (1..=n).collect();
        let timing = Timing { max_rate: Some(rate), ..Timing::default() };
        let mut sim = Sim::of(raw_scan(vec![(ScanType::Syn, ports.clone())], timing, None), &[TARGET]);
        let start = sim.now;
        let mut last_sent = start;
        let mut host = tcp_host(OPEN);
        let mut target = |pk, tryno, probe: &wp::Reply, now| {
            last_sent = now;
            host(pk, tryno, probe, now)
        };
        let sent = sim.drive(&mut target);
        assert_eq!(sim.results(), expected(&ports, OPEN));
        // The first probe goes at once; the rest each wait for their token.
        let achieved = f64::from(sent - 1) / last_sent.duration_since(start).as_secs_f64();
        eprintln!("--max-rate {rate}: {sent} probes, {achieved:.0} a second");
        assert!((achieved / rate - 1.0).abs() < 0.10, "--max-rate {rate}: achieved {achieved}");
    }
}

/// The source address of an IPv4 packet.
fn src_of(p: &[u8]) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(p[12], p[13], p[14], p[15]))
}

#[test]
fn decoys_send_every_probe_from_each_source_in_order_and_the_scan_stays_exact() {
    let (d1, d2): (IpAddr, IpAddr) = ("198.18.0.201".parse().unwrap(), "198.18.0.202".parse().unwrap());
    let v6: IpAddr = "fd00:18::201".parse().unwrap();
    let ports: Vec<u16> = (20..=40).collect();
    let mut scan = raw_scan(vec![(ScanType::Syn, ports.clone())], Timing::default(), None);
    scan.evasion.decoys = vec![Some(d1), Some(v6), None, Some(d2)];
    let mut sim = Sim::of(scan, &[TARGET]);
    let sent = sim.drive(&mut tcp_host(OPEN));
    assert_eq!(sim.results(), expected(&ports, OPEN));
    // Three packets a probe (the IPv6 decoy does not suit an IPv4 target), in the order given.
    assert_eq!(sim.wire.len(), 3 * sent as usize);
    for (k, p) in sim.wire.iter().enumerate() {
        assert_eq!(src_of(p), [d1, ME, d2][k % 3], "packet {k}");
    }
    // An answer to a decoy is not ours, even with the right cookie.
    let mut sim = Sim::of(raw_scan(vec![(ScanType::Syn, vec![22])], Timing::default(), None), &[TARGET]);
    sim.m.scan.evasion.decoys = vec![Some(d1), None];
    let probe = sim.send(syn(22));
    let mut to_decoy = parsed(&answer(&probe, true));
    to_decoy.dst = d1;
    assert!(!sim.recv_parsed(&to_decoy));
    assert!(sim.recv(&answer(&probe, true)));
}

#[test]
fn fragmented_probes_are_cut_in_8_byte_pieces_and_their_answers_still_match() {
    let ports: Vec<u16> = (20..=40).collect();
    for (size, pieces) in [(8u16, 3usize), (16, 2)] {
        let mut scan = raw_scan(vec![(ScanType::Syn, ports.clone())], Timing::default(), None);
        scan.evasion.fragment = Some(size);
        let mut sim = Sim::of(scan, &[TARGET]);
        let sent = sim.drive(&mut tcp_host(OPEN));
        assert_eq!(sim.results(), expected(&ports, OPEN));
        // A SYN with its MSS option is 24 bytes of TCP.
        assert_eq!(sim.wire.len(), pieces * sent as usize);
        for (k, p) in sim.wire.iter().enumerate() {
            let f = rustmap_wire::ipv4::Packet::new_checked(&p[..]).unwrap();
            assert!(f.verify_checksum());
            assert!(f.payload().len() <= usize::from(size));
            assert_eq!(usize::from(f.frag_offset()), (k % pieces) * usize::from(size));
            assert_eq!(f.more_frags(), k % pieces != pieces - 1);
        }
    }
}

#[test]
fn payload_ttl_options_and_bad_checksums_are_on_every_probe() {
    let mut sim = Sim::new(vec![(ScanType::Udp, vec![53]), (ScanType::Syn, vec![80])]);
    sim.m.scan.evasion.payload = Some(b"HELLO".to_vec());
    sim.m.scan.evasion.ttl = Some(17);
    sim.m.scan.evasion.ip_options = vec![7, 7, 4, 0, 0, 0, 0];
    let udp = sim.send(Pk::Port(0, 53));
    assert!(matches!(udp.body, ReplyBody::Udp { len: 5, .. }), "{udp:?}");
    assert_eq!(udp.ttl, 17);
    sim.m.scan.evasion.badsum = true;
    let h = sim.m.hosts.get_mut(&0).unwrap();
    let mut buf = [0u8; 200];
    let (scan, cookies, rng) = (&sim.m.scan, &sim.m.cookies, &mut sim.m.rng);
    let n = scan.build(&mut buf, ME, h, Pk::Port(1, 80), cookies, LOCAL, 0, None, None, rng).unwrap();
    let p = rustmap_wire::ipv4::Packet::new_checked(&buf[..n]).unwrap();
    assert_eq!((p.header_len(), p.ttl()), (28, 17));
    assert_eq!(&p.options()[..7], &[7, 7, 4, 0, 0, 0, 0]);
    assert!(p.verify_checksum(), "the IP header stays right");
    assert!(!wp::checksums_ok(&buf[..n]), "the TCP checksum is wrong on purpose");
    let tcp = rustmap_wire::tcp::Packet::new_checked(p.payload()).unwrap();
    assert_eq!(tcp.payload(), b"HELLO");
}
