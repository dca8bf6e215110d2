//! The real trace machine on a simulated network, without privileges: routers that answer
//! (or not) with time exceeded and fragmentation needed, hosts that answer TCP, UDP and echo
//! probes, a simulated clock. Checks the hops found, hop reuse (probe counts), silent hops,
//! retries, path-MTU discovery and that stray or spoofed packets change nothing.

use super::machine::{Config, Machine, PathInfo};
use super::packets::Stamp;
use super::*;
use rustmap_wire::hop::{parse_hop_reply, HopKind};
use rustmap_wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp};
use std::collections::HashMap;

const SCANNER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
const LINK: Duration = Duration::from_micros(300);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
}

/// A router on a path: its address, whether it answers time exceeded, the MTU of its next link.
#[derive(Clone)]
struct Router {
    addr: IpAddr,
    answers: bool,
    next_mtu: u32,
    says_mtu: bool,
}

fn r(addr: IpAddr) -> Router {
    Router { addr, answers: true, next_mtu: 1500, says_mtu: true }
}

/// The simulated network: the routers on the way to each target.
struct Net {
    paths: HashMap<IpAddr, Vec<Router>>,
    /// Probes sent, per target.
    probes: HashMap<IpAddr, u32>,
}

/// An ICMP error from `from` to the scanner quoting `orig`.
fn icmp_error(from: IpAddr, orig: &[u8], v4_type: u8, code: u8, mtu: u16) -> Vec<u8> {
    match from {
        IpAddr::V4(f) => {
            let quote = &orig[..orig.len().min(28)];
            let mut m = vec![v4_type, code, 0, 0, 0, 0];
            m.extend_from_slice(&mtu.to_be_bytes());
            m.extend_from_slice(quote);
            let c = rustmap_wire::checksum::internet_checksum(&m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            let IpAddr::V4(s) = SCANNER else { unreachable!() };
            let mut out = vec![0u8; 20];
            ipv4::Repr {
                src_addr: f,
                dst_addr: s,
                protocol: ip_proto::ICMP,
                payload_len: m.len(),
                ttl: 60,
                ident: 0,
                tos: 0,
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
            }
            .emit(&mut out)
            .unwrap();
            out.extend(m);
            out
        }
        IpAddr::V6(f) => {
            let s: std::net::Ipv6Addr = "fd00:18::2".parse().unwrap();
            let repr = match v4_type {
                icmpv4::msg_type::TIME_EXCEEDED => icmpv6::Repr::TimeExceeded { code: 0, data: orig },
                _ => icmpv6::Repr::DstUnreachable { code: 4, data: orig },
            };
            let mut m = vec![0u8; 2000];
            let n = repr.emit(&mut m, f, s).unwrap();
            let mut out = vec![0u8; 40];
            ipv6::Repr {
                src_addr: f,
                dst_addr: s,
                next_header: ip_proto::ICMPV6,
                payload_len: n,
                hop_limit: 60,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut out)
            .unwrap();
            out.extend_from_slice(&m[..n]);
            out
        }
    }
}

impl Net {
    /// What comes back for `pkt`, and after how long.
    fn answer(&mut self, pkt: &[u8]) -> Option<(Duration, Vec<u8>)> {
        let (dst, ttl, len, df) = match pkt[0] >> 4 {
            4 => {
                let p = ipv4::Packet::new_checked(pkt).unwrap();
                (IpAddr::V4(p.dst_addr()), p.ttl(), p.total_len(), p.dont_frag())
            }
            _ => {
                let p = ipv6::Packet::new_checked(pkt).unwrap();
                (IpAddr::V6(p.dst_addr()), p.hop_limit(), pkt.len(), false)
            }
        };
        *self.probes.entry(dst).or_default() += 1;
        let path = self.paths.get(&dst)?.clone();
        for (i, router) in path.iter().enumerate() {
            let hop = i as u8 + 1;
            if ttl == hop {
                return router.answers.then(|| {
                    (LINK * u32::from(hop) * 2, icmp_error(router.addr, pkt, icmpv4::msg_type::TIME_EXCEEDED, 0, 0))
                });
            }
            if df && len as u32 > router.next_mtu {
                let says = if router.says_mtu { router.next_mtu as u16 } else { 0 };
                return router.answers.then(|| {
                    (
                        LINK * u32::from(hop) * 2,
                        icmp_error(router.addr, pkt, icmpv4::msg_type::DST_UNREACHABLE, 4, says),
                    )
                });
            }
        }
        let rtt = LINK * (path.len() as u32 + 1) * 2;
        // The target: TCP answers with RST/ACK; UDP and echo with port unreachable / reply.
        let hl = if dst.is_ipv4() { 20 } else { 40 };
        match pkt[if dst.is_ipv4() { 9 } else { 6 }] {
            ip_proto::TCP => {
                let t = tcp::Packet::new_checked(&pkt[hl..]).unwrap();
                let mut seg = vec![0u8; 20];
                let n = tcp::Repr {
                    src_port: t.dst_port(),
                    dst_port: t.src_port(),
                    seq_number: 0,
                    ack_number: t.seq_number().wrapping_add(1),
                    flags: tcp::Flags::RST | tcp::Flags::ACK,
                    window_len: 0,
                    urgent_at: 0,
                    options: &[],
                    payload: &[],
                }
                .emit(&mut seg, dst, SCANNER)
                .ok()?;
                let IpAddr::V4(d) = dst else { return None };
                let IpAddr::V4(s) = SCANNER else { return None };
                let mut out = vec![0u8; 20];
                ipv4::Repr {
                    src_addr: d,
                    dst_addr: s,
                    protocol: ip_proto::TCP,
                    payload_len: n,
                    ttl: 64 - path.len() as u8,
                    ident: 0,
                    tos: 0,
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                }
                .emit(&mut out)
                .unwrap();
                out.extend_from_slice(&seg[..n]);
                Some((rtt, out))
            }
            _ => Some((rtt, icmp_error(dst, pkt, icmpv4::msg_type::DST_UNREACHABLE, 3, 0))),
        }
    }
}

fn machine() -> Machine {
    let stamp = Stamp { tcp_sport: 40000, udp_sport: 40001, salt: 0x5a5a, echo_id: 0x1234 };
    let cfg = Config { stamp, tries: 2, in_flight: 256, timing: Timing::default() };
    Machine::new(cfg, StdRng::seed_from_u64(7), Instant::now())
}

fn req(addr: IpAddr, probe: ProbeKind, distance: Option<u8>, mtu: bool) -> TraceRequest {
    TraceRequest { addr, probe, distance, srtt: Some(Duration::from_millis(1)), traceroute: true, mtu }
}

/// Run the machine against `net` until every admitted host is done. Hosts in `later` are
/// admitted after the first ones are done.
fn run(
    m: &mut Machine,
    net: &mut Net,
    first: &[TraceRequest],
    later: &[TraceRequest],
) -> HashMap<IpAddr, TraceOutcome> {
    let mut now = Instant::now();
    let path = |r: &TraceRequest| {
        Some(PathInfo {
            src: if r.addr.is_ipv4() { SCANNER } else { "fd00:18::2".parse().unwrap() },
            link_mtu: 1500,
            local: false,
        })
    };
    let mut ids: HashMap<u64, IpAddr> = HashMap::new();
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 70000];
    for (round, batch) in [first, later].into_iter().enumerate() {
        for (i, r) in batch.iter().enumerate() {
            let id = (round * 1000 + i) as u64;
            ids.insert(id, r.addr);
            m.admit(id, r, path(r));
        }
        let mut inbox: Vec<(Instant, Vec<u8>)> = Vec::new();
        for _ in 0..10_000 {
            while let Some(t) = m.poll_transmit(now, &mut buf) {
                if let Some((delay, pkt)) = net.answer(&buf[..t.len]) {
                    inbox.push((now + delay, pkt));
                }
            }
            while let Some((id, o)) = m.poll_done() {
                out.insert(ids[&id], o);
            }
            if m.is_idle() {
                break;
            }
            inbox.sort_by_key(|(at, _)| *at);
            let next_packet = inbox.first().map(|(at, _)| *at);
            now = match (next_packet, m.poll_at(now)) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("something to wait for"),
            };
            while inbox.first().is_some_and(|(at, _)| *at <= now) {
                let (_, pkt) = inbox.remove(0);
                m.on_packet(&pkt, now);
            }
            m.tick(now);
        }
    }
    out
}

fn addrs(o: &TraceOutcome) -> Vec<Option<IpAddr>> {
    o.hops.iter().map(|h| h.addr).collect()
}

#[test]
fn the_routers_in_order_then_the_target() {
    let h20 = v4(198, 18, 2, 10);
    let mut net =
        Net { paths: HashMap::from([(h20, vec![r(v4(198, 18, 0, 1)), r(v4(198, 18, 1, 2))])]), probes: HashMap::new() };
    let mut m = machine();
    let out = run(&mut m, &mut net, &[req(h20, ProbeKind::TcpSyn { port: 22 }, Some(3), false)], &[]);
    let o = &out[&h20];
    assert_eq!(addrs(o), [Some(v4(198, 18, 0, 1)), Some(v4(198, 18, 1, 2)), Some(h20)]);
    assert_eq!(o.hops.iter().map(|h| h.ttl).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(o.hops.iter().all(|h| h.rtt_us.is_some()));
    assert_eq!(o.probe.port, Some(22));
    assert_eq!(net.probes[&h20], 3, "one probe per hop");
    // Without a distance hint, UDP and echo probes find the same path counting up.
    for kind in [ProbeKind::Udp { port: 33434 }, ProbeKind::Echo] {
        let mut m = machine();
        let out = run(&mut m, &mut net, &[req(h20, kind, None, false)], &[]);
        assert_eq!(addrs(&out[&h20]), [Some(v4(198, 18, 0, 1)), Some(v4(198, 18, 1, 2)), Some(h20)], "{kind:?}");
    }
}

#[test]
fn hosts_behind_known_routers_reuse_their_hops() {
    let far: Vec<Router> = (1..=8).map(|i| r(v4(10, 0, i, 1))).collect();
    let targets: Vec<IpAddr> = (10..20).map(|d| v4(10, 9, 9, d)).collect();
    let mut net = Net { paths: targets.iter().map(|t| (*t, far.clone())).collect(), probes: HashMap::new() };
    let mut m = machine();
    let first = [req(targets[0], ProbeKind::TcpSyn { port: 80 }, Some(9), false)];
    let later: Vec<TraceRequest> =
        targets[1..].iter().map(|t| req(*t, ProbeKind::TcpSyn { port: 80 }, Some(9), false)).collect();
    let out = run(&mut m, &mut net, &first, &later);
    for t in &targets {
        let o = &out[t];
        assert_eq!(o.hops.len(), 9, "{t}");
        assert_eq!(o.hops[0].addr, Some(v4(10, 0, 1, 1)));
        assert_eq!(o.hops[8].addr, Some(*t));
    }
    assert_eq!(net.probes[&targets[0]], 9, "the first host probes every hop");
    for t in &targets[1..] {
        assert_eq!(net.probes[t], 2, "{t}: the target and the last router, the rest reused");
    }
    // Hosts traced at the same time share too: after the first pair, one host waits for the
    // other's lower hops.
    let mut net2 = Net { paths: net.paths.clone(), probes: HashMap::new() };
    let mut m = machine();
    let all: Vec<TraceRequest> =
        targets.iter().map(|t| req(*t, ProbeKind::TcpSyn { port: 80 }, Some(9), false)).collect();
    let out = run(&mut m, &mut net2, &all, &[]);
    assert!(targets.iter().all(|t| out[t].hops.len() == 9 && out[t].hops[3].addr == Some(v4(10, 0, 4, 1))));
    let total: u32 = net2.probes.values().sum();
    assert!(total <= 9 + 2 * 9, "{total} probes for 10 hosts");
}

#[test]
fn silent_hops_are_kept_and_retried_once() {
    let t = v4(10, 1, 1, 1);
    let mut silent = r(v4(10, 0, 2, 1));
    silent.answers = false;
    let mut net = Net {
        paths: HashMap::from([(t, vec![r(v4(10, 0, 1, 1)), silent, r(v4(10, 0, 3, 1))])]),
        probes: HashMap::new(),
    };
    let mut m = machine();
    let out = run(&mut m, &mut net, &[req(t, ProbeKind::TcpSyn { port: 443 }, Some(4), false)], &[]);
    assert_eq!(addrs(&out[&t]), [Some(v4(10, 0, 1, 1)), None, Some(v4(10, 0, 3, 1)), Some(t)]);
    assert_eq!(out[&t].hops[1].rtt_us, None);
    assert_eq!(net.probes[&t], 5, "four hops, the silent one tried twice");
}

#[test]
fn path_mtu_from_frag_needed_and_from_a_silent_router() {
    let t = v4(198, 18, 2, 10);
    let mut narrow = r(v4(198, 18, 0, 1));
    narrow.next_mtu = 1400;
    let mut net =
        Net { paths: HashMap::from([(t, vec![narrow.clone(), r(v4(198, 18, 1, 2))])]), probes: HashMap::new() };
    let mut m = machine();
    let out = run(&mut m, &mut net, &[req(t, ProbeKind::TcpSyn { port: 22 }, Some(3), true)], &[]);
    assert_eq!(out[&t].path_mtu, Some(1400));
    assert_eq!(addrs(&out[&t]).len(), 3);
    let mut black_hole = narrow;
    black_hole.says_mtu = false;
    black_hole.answers = false;
    let mut net = Net { paths: HashMap::from([(t, vec![black_hole])]), probes: HashMap::new() };
    let mut m = machine();
    let mut q = req(t, ProbeKind::Udp { port: 33434 }, Some(2), true);
    q.traceroute = false;
    let out = run(&mut m, &mut net, &[q], &[]);
    assert_eq!(out[&t].path_mtu, Some(1400), "binary search past a black hole");
    assert!(out[&t].hops.is_empty(), "no traceroute asked");
}

#[test]
fn ipv6_traces_and_has_no_mtu_search() {
    let t: IpAddr = "fd00:18:2::10".parse().unwrap();
    let mut net = Net {
        paths: HashMap::from([(t, vec![r("fd00:18::1".parse().unwrap()), r("fd00:18:1::2".parse().unwrap())])]),
        probes: HashMap::new(),
    };
    let mut m = machine();
    let out = run(&mut m, &mut net, &[req(t, ProbeKind::Echo, Some(3), true)], &[]);
    assert_eq!(addrs(&out[&t]), [Some("fd00:18::1".parse().unwrap()), Some("fd00:18:1::2".parse().unwrap()), Some(t)]);
    assert_eq!(out[&t].path_mtu, None);
}

#[test]
fn stray_and_spoofed_packets_change_nothing() {
    let t = v4(198, 18, 2, 10);
    let mut m = machine();
    let mut buf = vec![0u8; 2000];
    let now = Instant::now();
    m.admit(
        1,
        &req(t, ProbeKind::TcpSyn { port: 22 }, Some(3), false),
        Some(PathInfo { src: SCANNER, link_mtu: 1500, local: false }),
    );
    let probe = m.poll_transmit(now, &mut buf).unwrap();
    let pkt = buf[..probe.len].to_vec();
    // A time exceeded quoting the probe but claiming another destination, one with another
    // salt, garbage and truncations: none settles it.
    let mut other = pkt.clone();
    other[16..20].copy_from_slice(&[198, 18, 2, 11]);
    m.on_packet(&icmp_error(v4(6, 6, 6, 6), &other, icmpv4::msg_type::TIME_EXCEEDED, 0, 0), now);
    let mut salted = pkt.clone();
    salted[24] ^= 0xff;
    m.on_packet(&icmp_error(v4(6, 6, 6, 6), &salted, icmpv4::msg_type::TIME_EXCEEDED, 0, 0), now);
    let good = icmp_error(v4(198, 18, 1, 2), &pkt, icmpv4::msg_type::TIME_EXCEEDED, 0, 0);
    for cut in 0..good.len() {
        m.on_packet(&good[..cut], now);
    }
    m.on_packet(&[0xff; 64], now);
    assert!(m.poll_done().is_none());
    assert!(matches!(parse_hop_reply(&good).unwrap().kind, HopKind::Error { .. }));
    m.on_packet(&good, now);
    // The same answer twice counts once.
    m.on_packet(&good, now);
}

#[test]
fn a_local_host_gets_its_interface_mtu_only_when_asked() {
    let me = v4(127, 0, 0, 1);
    for asked in [false, true] {
        let mut m = machine();
        let mut q = req(me, ProbeKind::Echo, Some(1), asked);
        q.traceroute = false;
        m.admit(1, &q, Some(PathInfo { src: me, link_mtu: 65536, local: true }));
        let (_, o) = m.poll_done().expect("nothing to probe");
        assert_eq!(o.path_mtu, asked.then_some(65536));
    }
}
