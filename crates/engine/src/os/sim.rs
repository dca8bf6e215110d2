//! The OS stage's machine on a simulated network: a host that answers as a Linux kernel does
//! (the answers recorded with tcpdump on kernel 6.18), and one that answers nothing. The real
//! machine, packet builder and parser run; only the clock and the wire are simulated.

use super::machine::{Config, Machine, Target};
use super::packets::{self, Ports};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rustmap_model::PassiveSegment;
use rustmap_os::{rank, Database, Fingerprint, Value};
use rustmap_wire::tcp::{self, Flags, TcpOption};
use rustmap_wire::{icmpv4, ip_proto, ipv4};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const OPEN: u16 = 22;
const CLOSED: u16 = 113;

fn ports() -> Ports {
    Ports { tcp: std::array::from_fn(|i| 40_000 + i as u16), udp: 41_000, icmp_id: 0x7777 }
}

fn ip(proto: u8, id: u16, df: bool, body: &[u8], buf: &mut Vec<u8>) {
    let r = ipv4::Repr {
        src_addr: HOST,
        dst_addr: US,
        protocol: proto,
        payload_len: body.len(),
        ttl: 63,
        ident: id,
        tos: 0,
        dont_frag: df,
        more_frags: false,
        frag_offset: 0,
    };
    buf.resize(ipv4::HEADER_LEN, 0);
    r.emit(&mut buf[..]).unwrap();
    buf.extend_from_slice(body);
}

/// A Linux kernel's answer to one probe (tcp_timestamps=2: one clock, no offsets).
fn linux(probe: &[u8], now_ms: u32, icmp_id: &mut u16) -> Option<Vec<u8>> {
    let p = ipv4::Packet::new_checked(probe).ok()?;
    let mut out = Vec::new();
    match p.protocol() {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(p.payload()).ok()?;
            let f = t.flags();
            let (flags, seq, ack, opts): (Flags, u32, u32, Vec<TcpOption>) =
                if t.dst_port() == OPEN && f.contains(Flags::SYN) && !f.contains(Flags::FIN) {
                    let offered: Vec<TcpOption> = t.option_iter().map_while(Result::ok).collect();
                    let has = |k: fn(&TcpOption) -> bool| offered.iter().any(k);
                    let mut o = vec![TcpOption::MaxSegmentSize(1460)];
                    let sack = has(|o| matches!(o, TcpOption::SackPermitted));
                    let ts = has(|o| matches!(o, TcpOption::Timestamps { .. }));
                    match (sack, ts) {
                        (true, true) => o.push(TcpOption::SackPermitted),
                        (true, false) => {
                            o.extend([TcpOption::NoOperation, TcpOption::NoOperation, TcpOption::SackPermitted])
                        }
                        (false, true) => o.extend([TcpOption::NoOperation, TcpOption::NoOperation]),
                        (false, false) => {}
                    }
                    if ts {
                        o.push(TcpOption::Timestamps { tsval: 7_200_000 + now_ms, tsecr: 1 });
                    }
                    if has(|o| matches!(o, TcpOption::WindowScale(_))) {
                        o.extend([TcpOption::NoOperation, TcpOption::WindowScale(7)]);
                    }
                    let isn = t.seq_number().wrapping_mul(2_654_435_761).rotate_left(7);
                    let mut bits = Flags::SYN.bits() | Flags::ACK.bits();
                    if f.contains(Flags::ECE) && f.contains(Flags::CWR) {
                        bits |= Flags::ECE.bits();
                    }
                    (Flags::from_bits(bits), isn, t.seq_number().wrapping_add(1), o)
                } else if t.dst_port() == OPEN && !f.contains(Flags::ACK) && !f.contains(Flags::SYN) {
                    return None; // no flags to a listener: dropped
                } else if f.contains(Flags::ACK) {
                    (Flags::RST, t.ack_number(), 0, vec![])
                } else if f.contains(Flags::SYN) && f.contains(Flags::FIN) {
                    return None;
                } else {
                    let ack = t.seq_number().wrapping_add(1);
                    (Flags::from_bits(Flags::RST.bits() | Flags::ACK.bits()), 0, ack, vec![])
                };
            let mut ob = [0u8; 40];
            let n = tcp::emit_options(&opts, &mut ob).ok()?;
            let r = tcp::Repr {
                src_port: t.dst_port(),
                dst_port: t.src_port(),
                seq_number: seq,
                ack_number: ack,
                flags,
                window_len: if flags.contains(Flags::SYN) { 65160 } else { 0 },
                urgent_at: 0,
                options: &ob[..n],
                payload: &[],
            };
            let mut body = vec![0u8; r.buffer_len()];
            r.emit(&mut body, HOST.into(), US.into()).ok()?;
            ip(ip_proto::TCP, 0, true, &body, &mut out);
        }
        ip_proto::UDP => {
            let quote_len = probe.len().min(576 - 28);
            let r = icmpv4::Repr::DstUnreachable {
                code: icmpv4::Unreachable::PortUnreachable,
                next_hop_mtu: 0,
                data: &probe[..quote_len],
            };
            let mut body = vec![0u8; r.buffer_len()];
            r.emit(&mut body).ok()?;
            *icmp_id += 1;
            ip(ip_proto::ICMP, *icmp_id, false, &body, &mut out);
        }
        ip_proto::ICMP => {
            let m = icmpv4::Packet::new_checked(p.payload()).ok()?;
            let r = match m.msg_type() {
                8 => icmpv4::Repr::EchoReply { ident: m.ident(), seq_no: m.seq_no(), data: m.data() },
                13 => icmpv4::Repr::Timestamp {
                    reply: true,
                    ident: m.ident(),
                    seq_no: m.seq_no(),
                    originate: 0,
                    receive: 1,
                    transmit: 1,
                },
                _ => return None,
            };
            let mut body = vec![0u8; r.buffer_len()];
            r.emit(&mut body).ok()?;
            *icmp_id += 1;
            ip(ip_proto::ICMP, *icmp_id, false, &body, &mut out);
        }
        _ => return None,
    }
    Some(out)
}

/// Run the machine against `answer` until the host is finished; its observations and the
/// number of packets sent.
fn run(
    target: Target,
    tries: u8,
    mut answer: impl FnMut(&[u8], u32) -> Option<Vec<u8>>,
) -> (rustmap_os::Observations, usize) {
    let t0 = Instant::now();
    let mut m = Machine::new(Config { ports: ports(), tries, parallel: 4 }, StdRng::seed_from_u64(7));
    m.admit(1, target);
    let mut buf = vec![0u8; packets::MAX_LEN];
    let mut now = t0;
    let mut sent = 0;
    for _ in 0..100_000 {
        m.tick(now);
        let mut replies = Vec::new();
        while let Some(t) = m.poll_transmit(now, &mut buf) {
            sent += 1;
            assert_eq!(t.dst, HOST);
            let ms = u32::try_from(now.duration_since(t0).as_millis()).unwrap();
            if let Some(r) = answer(&buf[..t.len], ms) {
                replies.push(r);
            }
        }
        // Answers come back 1 ms later.
        now += Duration::from_millis(1);
        for r in replies {
            m.on_packet(&r, now);
        }
        if let Some((id, obs, _)) = m.poll_done() {
            assert_eq!(id, 1);
            return (obs, sent);
        }
        let next = m.poll_at().unwrap_or(now + Duration::from_millis(10));
        now = now.max(next.min(now + Duration::from_millis(10)));
    }
    panic!("the machine never finished the host");
}

fn target() -> Target {
    Target { addr: HOST, src: US, open: Some(OPEN), closed: Some(CLOSED), closed_udp: 40_125, srtt: None }
}

#[test]
fn a_linux_host_is_fingerprinted_and_matched() {
    let mut icmp_id = 0x1000u16;
    let (obs, sent) = run(target(), 1, |p, ms| linux(p, ms, &mut icmp_id));
    assert_eq!(sent, 25, "every probe once");
    assert_eq!(obs.seq.len(), 6);
    assert!(obs.seq.iter().all(|p| p.reply.is_some()));
    assert!(obs.t[3].as_ref().and_then(|p| p.reply.as_ref()).is_some(), "T5 answered");
    assert_eq!(obs.t[0].as_ref().map(|p| p.reply.is_none()), Some(true), "T2 sent, dropped");
    let u1 = obs.u1.clone().flatten().expect("U1 answered");
    assert!(u1.quoted_len_ok && u1.quoted_id_ok && u1.quoted_csum_ok && u1.quoted_data_ok, "{u1:?}");
    assert_eq!(obs.echo.len(), 2);
    assert_eq!(obs.icmp_ts, Some(true));
    // the simulated host has no ICMP rate limit: the whole burst is answered
    assert_eq!((obs.burst.sent, obs.burst.answered), (8, 8));

    let fp = Fingerprint::from_observations(&obs);
    assert_eq!(fp.get("u1.burst"), Some(&Value::Int(8)));
    assert_eq!(fp.get("seq1.opts"), Some(&Value::Str("mss,sack,ts,nop,ws".into())));
    assert_eq!(fp.get("seq3.opts"), Some(&Value::Str("mss,nop,nop,ts,nop,ws".into())));
    assert_eq!(fp.get("seq6.opts"), Some(&Value::Str("mss,sack,ts".into())));
    assert_eq!(fp.get("ts.hz"), Some(&Value::Int(1000)));
    assert_eq!(fp.get("t5.flags"), Some(&Value::Str("AR".into())));
    assert_eq!(fp.get("t6.flags"), Some(&Value::Str("R".into())));
    assert_eq!(fp.get("t6.seq"), Some(&Value::Str("ack".into())));
    assert_eq!(fp.distance, Some(2));
    let up = fp.uptime_s.expect("uptime");
    assert!((7_200..=7_201).contains(&up), "{up}");
    let db = Database::builtin().unwrap();
    let best = &rank(&db, &fp, 1)[0];
    assert_eq!(best.entry.id, "linux-4.10-6");
    assert!(best.accuracy >= 85, "{}", best.accuracy);
}

#[test]
fn a_silent_host_finishes_with_unanswered_probes_after_its_tries() {
    let (obs, sent) = run(target(), 2, |_, _| None);
    assert_eq!(sent, 50, "two tries of 25");
    assert_eq!(obs.seq.len(), 6);
    assert!(obs.seq.iter().all(|p| p.reply.is_none()));
    assert_eq!(obs.u1, Some(None));
    assert_eq!((obs.burst.sent, obs.burst.answered), (8, 0), "the last try's burst");
    let fp = Fingerprint::from_observations(&obs);
    assert_eq!(fp.get("u1.burst"), None, "no burst test where U1 went unanswered");
    assert_eq!(fp.get("t5.reply"), Some(&Value::Bool(false)));
    assert!(rank(&Database::builtin().unwrap(), &fp, 1).iter().all(|m| m.accuracy < 50));
}

#[test]
fn without_ports_only_icmp_and_udp_are_sent() {
    let t = Target { open: None, closed: None, ..target() };
    let mut icmp_id = 1u16;
    let (obs, sent) = run(t, 3, |p, ms| linux(p, ms, &mut icmp_id));
    assert_eq!(sent, 12, "U1, two echoes, timestamp, the burst of 8");
    assert!(obs.seq.is_empty() && obs.t.iter().all(Option::is_none) && obs.ecn.is_none());
    assert_eq!(obs.echo.iter().filter(|e| e.reply.is_some()).count(), 2);
}

#[test]
fn stray_and_hostile_packets_are_ignored() {
    let mut m = Machine::new(Config { ports: ports(), tries: 1, parallel: 4 }, StdRng::seed_from_u64(1));
    let now = Instant::now();
    m.admit(1, target());
    m.tick(now);
    for bytes in
        [&[][..], &[0x45; 20][..], &[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 0, 10, 198, 18, 0, 1][..]]
    {
        m.on_packet(bytes, now);
    }
    // A TCP answer on our port from the right host but the wrong source port.
    let mut icmp_id = 0;
    let mut buf = vec![0u8; packets::MAX_LEN];
    let t = m.poll_transmit(now, &mut buf).unwrap();
    let mut reply = linux(&buf[..t.len], 0, &mut icmp_id).unwrap();
    reply[20] = 0x01; // source port 0x01xx
    m.on_packet(&reply, now);
    let mut later = now;
    let obs = loop {
        later += Duration::from_millis(50);
        m.tick(later);
        while m.poll_transmit(later, &mut buf).is_some() {}
        if let Some((_, o, _)) = m.poll_done() {
            break o;
        }
        assert!(later < now + Duration::from_secs(10));
    };
    assert!(obs.seq[0].reply.is_none(), "the answer from the wrong port was not taken");
}

/// The fuzz target's seeds (`fuzz/seeds/os_answers`, first byte the mode) are answers the parser
/// takes, for the ports the target uses — so fuzzing starts from inside the parser, not at its
/// first check.
#[test]
fn the_fuzz_seeds_are_real_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/os_answers");
    for (name, kind) in [("synack", "tcp"), ("rst", "tcp"), ("echo", "echo"), ("unreach", "unreach")] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let got = packets::parse(&ports(), &bytes[1..], Duration::ZERO);
        let ok = match (kind, &got) {
            ("tcp", Some(packets::Answer::Tcp { .. })) | ("echo", Some(packets::Answer::Echo { .. })) => true,
            ("unreach", Some(packets::Answer::Unreach { reply, .. })) => reply.quoted_data_ok && reply.quoted_id_ok,
            _ => false,
        };
        assert!(ok, "{name}: {got:?}");
    }
    // The same unreachable quoting a burst datagram's length is a burst answer.
    let burst = std::fs::read(dir.join("burst")).unwrap();
    assert!(matches!(packets::parse(&ports(), &burst[1..], Duration::ZERO), Some(packets::Answer::Burst { .. })));
    let db = std::fs::read(dir.join("database")).unwrap();
    assert!(Database::from_json(std::str::from_utf8(&db[1..]).unwrap(), "seed").is_ok());
    // mode 3: captures as --os-entry reads them (a -oJ report of four hosts, a printed fingerprint)
    for (name, count) in [("capture-report", 4), ("capture-printed", 1)] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(bytes[0] & 3, 3, "{name}");
        let caps = rustmap_os::capture::read(std::str::from_utf8(&bytes[1..]).unwrap(), name).unwrap();
        assert_eq!(caps.len(), count, "{name}");
    }
}

/// A SYN as the port scan sends it (MSS only), from us to the host's `port`.
fn port_scan_syn(port: u16) -> Vec<u8> {
    use rustmap_wire::probe::{emit_ip, IpProbe, L4};
    let l4 = L4::Tcp {
        sport: 45_000,
        dport: port,
        seq: 0x0102_0304,
        ack: 0,
        flags: Flags::SYN,
        window: 1024,
        options: &[TcpOption::MaxSegmentSize(1460)],
        payload: &[],
    };
    let mut buf = vec![0u8; 128];
    let n = emit_ip(&IpProbe { src: US.into(), dst: HOST.into(), ttl: 64, ip_id: 1, l4 }, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// The port scan's SYN-ACK, kept 3 s before the probes started, joins the observations as the
/// passive evidence on one clock (the probes' times move 3 s later); packets that are not IPv4
/// TCP are left out; the passive tests read it.
#[test]
fn the_port_scans_syn_ack_is_the_passive_evidence() {
    let mut icmp_id = 0x1000u16;
    let (mut obs, _) = run(target(), 1, |p, ms| linux(p, ms, &mut icmp_id));
    let first_sent = obs.seq[0].sent.at;
    let synack = linux(&port_scan_syn(OPEN), 0, &mut icmp_id).expect("the listener answers");
    let started = Instant::now() + Duration::from_secs(10);
    let kept = [
        PassiveSegment::new(started - Duration::from_secs(3), &synack),
        PassiveSegment::new(started - Duration::from_secs(2), b"\x45\x00 not a packet"),
        PassiveSegment::new(started - Duration::from_secs(1), &linux(&port_scan_syn(OPEN), 0, &mut 0).unwrap()[..30]),
    ];
    super::add_passive(&mut obs, started, &kept);
    assert_eq!(obs.passive.len(), 1, "only the whole TCP segment");
    assert_eq!(obs.passive[0].at, Duration::ZERO);
    assert_eq!(obs.seq[0].sent.at, first_sent + Duration::from_secs(3));
    let fp = Fingerprint::from_observations(&obs);
    assert_eq!(fp.get("passive.opts"), Some(&Value::Str("mss".into())));
    assert_eq!(fp.get("passive.ttl"), Some(&Value::Int(64)));
    assert_eq!(fp.get("passive.df"), Some(&Value::Bool(true)));
    assert_eq!(fp.get("passive.win"), Some(&Value::Int(65160)));
    assert_eq!(rank(&Database::builtin().unwrap(), &fp, 1)[0].entry.id, "linux-4.10-6");
    // Nothing kept: the observations are as they were.
    let before = obs.clone();
    super::add_passive(&mut obs, started, &[]);
    assert_eq!(obs, before);
}

/// An IPv6 SYN-ACK reads as the passive tests read it: the hop limit as TTL, no DF test.
#[test]
fn an_ipv6_syn_ack_is_passive_evidence_without_df() {
    use rustmap_wire::probe::{emit_ip, IpProbe, L4};
    let (us, host): (std::net::IpAddr, std::net::IpAddr) =
        ("fd00:18::2".parse().unwrap(), "fd00:18::10".parse().unwrap());
    let l4 = L4::Tcp {
        sport: 22,
        dport: 45_000,
        seq: 7,
        ack: 8,
        flags: Flags::SYN | Flags::ACK,
        window: 64_800,
        options: &[TcpOption::MaxSegmentSize(1440)],
        payload: &[],
    };
    let mut buf = vec![0u8; 128];
    let len = emit_ip(&IpProbe { src: host, dst: us, ttl: 63, ip_id: 0, l4 }, &mut buf).unwrap();
    let r = packets::passive_reply(&buf[..len]).expect("an IPv6 SYN-ACK");
    assert!(r.v6 && !r.df);
    assert_eq!((r.ttl, r.window, r.option_layout()), (63, 64_800, "mss".to_string()));
    let mut obs = rustmap_os::Observations::default();
    let now = Instant::now();
    super::add_passive(&mut obs, now, &[PassiveSegment::new(now, &buf[..len])]);
    let fp = Fingerprint::from_observations(&obs);
    assert_eq!(fp.get("passive.ttl"), Some(&Value::Int(64)));
    assert_eq!(fp.get("passive.df"), None);
    // Cut inside the TCP header, or a UDP datagram: not a segment.
    assert!(packets::passive_reply(&buf[..50]).is_none());
}
