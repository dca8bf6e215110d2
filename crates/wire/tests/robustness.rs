//! Hostile-input robustness: a deterministic xorshift PRNG mutates the valid
//! fixtures (flip, overwrite, truncate, extend) and drives every parser,
//! every `Repr` round trip, `parse_reply` and `checksums_ok` over the results.
//! The test fails on any panic or any round-trip disagreement.
//!
//! It also writes the fuzz seed corpora when `RUSTMAP_WRITE_SEEDS=1`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustmap_wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, probe, sctp, tcp, udp};

#[path = "../testdata/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use fixtures::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn fixtures() -> Vec<&'static [u8]> {
    vec![
        &TCP_SYN_V4,
        &TCP_V6,
        &UDP_DNS_V4,
        &ICMP_PORT_UNREACH,
        &ICMP6_UNREACH_TCP,
        &SCTP_INIT,
        &ARP_REPLY,
        &VLAN_FRAME,
        &ICMP6_NS,
        &ICMP6_NA,
        &ICMP6_ECHO,
        &ICMP_TIMESTAMP,
        &ICMP_MASK,
    ]
}

fn mutate(rng: &mut XorShift, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0u8, 1, 2, 4, 5, 0x0f, 0x10, 0x45, 0x60, 0xff][rng.below(10)];
            }
            3 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            4 => {
                for _ in 0..rng.below(40) {
                    v.push(rng.next() as u8);
                }
            }
            _ => {}
        }
    }
    v
}

fn a4() -> (IpAddr, IpAddr) {
    (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)))
}

fn a6() -> (Ipv6Addr, Ipv6Addr) {
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
}

/// Runs every parser over `b`; for each that accepts it, emits its `Repr`
/// and checks the re-parse agrees. Returns how many parsers accepted.
fn exercise(b: &[u8]) -> usize {
    let mut ok = 0;
    if let Ok(f) = ethernet::Frame::new_checked(b) {
        ok += 1;
        let _ = (f.dst_addr(), f.src_addr(), f.vlan_id(), f.payload().len());
        let r = ethernet::Repr::parse(&f).unwrap();
        let mut out = vec![0u8; r.header_len()];
        r.emit(&mut out).unwrap();
        assert_eq!(ethernet::Repr::parse(&ethernet::Frame::new_checked(&out[..]).unwrap()).unwrap(), r);
    }
    if let Ok(p) = arp::Packet::new_checked(b) {
        ok += 1;
        let r = arp::Repr::parse(&p).unwrap();
        let mut out = [0u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(arp::Repr::parse(&arp::Packet::new_checked(&out[..]).unwrap()).unwrap(), r);
    }
    if let Ok(p) = ipv4::Packet::new_checked(b) {
        ok += 1;
        let _ = (p.options(), p.verify_checksum(), p.is_fragment());
        let r = ipv4::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; 20 + r.payload_len];
        r.emit(&mut out).unwrap();
        out[20..].copy_from_slice(p.payload());
        let p2 = ipv4::Packet::new_checked(&out[..]).unwrap();
        assert!(p2.verify_checksum());
        assert_eq!(ipv4::Repr::parse(&p2).unwrap(), r);
    }
    let _ = ipv4::parse_quoted(b);
    if let Ok(p) = ipv6::Packet::new_checked(b) {
        ok += 1;
        let _ = (p.upper_layer(), p.upper_layer_payload());
        let r = ipv6::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; 40 + r.payload_len];
        r.emit(&mut out).unwrap();
        out[40..].copy_from_slice(p.payload());
        let p2 = ipv6::Packet::new_checked(&out[..]).unwrap();
        assert_eq!(ipv6::Repr::parse(&p2).unwrap(), r);
        assert_eq!(p2.upper_layer(), p.upper_layer());
    }
    let _ = ipv6::parse_quoted(b);
    let (s4, d4) = a4();
    if let Ok(p) = tcp::Packet::new_checked(b) {
        ok += 1;
        for o in p.option_iter() {
            o.unwrap();
        }
        let _ = p.verify_checksum(s4, d4);
        let r = tcp::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, s4, d4).unwrap();
        let p2 = tcp::Packet::new_checked(&out[..]).unwrap();
        assert!(p2.verify_checksum(s4, d4));
        assert_eq!(tcp::Repr::parse(&p2).unwrap(), r);
    }
    for o in tcp::OptionsIter::new(b).take(100) {
        let _ = o;
    }
    if let Ok(p) = udp::Packet::new_checked(b) {
        ok += 1;
        let r = udp::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, s4, d4).unwrap();
        let p2 = udp::Packet::new_checked(&out[..]).unwrap();
        assert!(p2.verify_checksum(s4, d4));
        assert_eq!(udp::Repr::parse(&p2).unwrap(), r);
    }
    if let Ok(p) = icmpv4::Packet::new_checked(b) {
        ok += 1;
        let _ = (p.quoted(), p.verify_checksum());
        let r = icmpv4::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        let p2 = icmpv4::Packet::new_checked(&out[..]).unwrap();
        assert!(p2.verify_checksum());
        assert_eq!(icmpv4::Repr::parse(&p2).unwrap(), r);
    }
    let (s6, d6) = a6();
    if let Ok(p) = icmpv6::Packet::new_checked(b) {
        ok += 1;
        let _ = (p.quoted(), p.target_addr(), p.lladdr_option(1));
        let r = icmpv6::Repr::parse(&p).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, s6, d6).unwrap();
        let p2 = icmpv6::Packet::new_checked(&out[..]).unwrap();
        assert!(p2.verify_checksum(s6, d6));
        assert_eq!(icmpv6::Repr::parse(&p2).unwrap(), r);
    }
    if let Ok(p) = sctp::Packet::new_checked(b) {
        ok += 1;
        assert!(p.chunks().count() <= sctp::MAX_CHUNKS);
        if let Ok(r) = sctp::Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out).unwrap();
            let p2 = sctp::Packet::new_checked(&out[..]).unwrap();
            assert!(p2.verify_checksum());
            assert_eq!(sctp::Repr::parse(&p2).unwrap(), r);
        }
    }
    if probe::parse_reply(b).is_ok() {
        ok += 1;
    }
    let _ = probe::checksums_ok(b);
    let _ = rustmap_wire::hop::parse_hop_reply(b);
    ok
}

#[test]
fn fixtures_are_accepted() {
    for f in fixtures() {
        assert!(exercise(f) > 0);
    }
    // Each IP-level fixture parses as a reply.
    for f in [&TCP_SYN_V4[..], &TCP_V6, &UDP_DNS_V4, &ICMP_PORT_UNREACH, &ICMP6_UNREACH_TCP, &SCTP_INIT] {
        probe::parse_reply(f).unwrap();
        assert!(probe::checksums_ok(f));
    }
}

#[test]
fn mutated_buffers_never_panic() {
    const ITERATIONS: usize = 20_000;
    let fx = fixtures();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0usize;
    for i in 0..ITERATIONS {
        let base = fx[i % fx.len()];
        let v = mutate(&mut rng, base);
        accepted += exercise(&v);
        // Also hit the transport parsers directly with the mutated L4 bytes.
        for off in [14, 18, 20, 40] {
            if let Some(t) = v.get(off..) {
                accepted += exercise(t);
            }
        }
    }
    // The mutations must leave plenty of valid packets, or the test is vacuous.
    assert!(accepted > ITERATIONS, "only {accepted} acceptances");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(42);
    for _ in 0..5_000 {
        let len = rng.below(120);
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = v.first_mut() {
            *first = [0x45, 0x46, 0x4f, 0x60, 0x00][rng.below(5)];
        }
        exercise(&v);
    }
    exercise(&[]);
}

/// Hostile cases named in the brief, each asserted to be an error.
#[test]
fn named_hostile_cases() {
    // TCP data offset larger than the packet, and < 5.
    let mut b = TCP_SYN_V4[20..].to_vec();
    b[12] = 0xf0;
    assert!(tcp::Packet::new_checked(&b[..]).is_err());
    b[12] = 0x40;
    assert!(tcp::Packet::new_checked(&b[..]).is_err());
    // Option length 0 and 1; option running past the header.
    for bad in [0u8, 1, 30] {
        let mut b = TCP_SYN_V4[20..].to_vec();
        b[21] = bad; // MSS option length
        assert!(tcp::Packet::new_checked(&b[..]).is_err(), "len {bad}");
    }
    // Truncated IPv6 extension header.
    let mut b = TCP_V6.to_vec();
    b[6] = 0; // next header: hop-by-hop, but the bytes are a TCP header (ext len 0xbb)
    assert!(ipv6::Packet::new_checked(&b[..]).unwrap().upper_layer().is_err());
    assert!(probe::parse_reply(&b).is_err());
    // IHL < 5, IHL > length, total length > buffer.
    let mut b = TCP_SYN_V4;
    b[0] = 0x43;
    assert!(probe::parse_reply(&b).is_err());
    assert!(probe::parse_reply(&[0x4f; 30]).is_err());
    assert!(probe::parse_reply(&TCP_SYN_V4[..40]).is_err());
    // SCTP chunk length 0, 2, past end.
    for l in [0u8, 2, 99] {
        let mut b = SCTP_INIT;
        b[35] = l;
        assert!(probe::parse_reply(&b).is_err(), "chunk len {l}");
    }
    // Empty buffers everywhere.
    assert_eq!(exercise(&[]), 0);
}

/// Writes the fuzz seed corpora to `fuzz/seeds/<target>/` when
/// `RUSTMAP_WRITE_SEEDS=1` (a no-op otherwise).
#[test]
fn write_fuzz_seeds() {
    if std::env::var("RUSTMAP_WRITE_SEEDS").as_deref() != Ok("1") {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let mut off_big = TCP_SYN_V4[20..].to_vec();
    off_big[12] = 0xf0;
    let mut opt0 = TCP_SYN_V4[20..].to_vec();
    opt0[21] = 0;
    let mut opt1 = TCP_SYN_V4[20..].to_vec();
    opt1[21] = 1;
    write("tcp", "syn_options", &TCP_SYN_V4[20..]);
    write("tcp", "synack_v6", &TCP_V6[40..]);
    write("tcp", "data_offset_past_end", &off_big);
    write("tcp", "option_len_0", &opt0);
    write("tcp", "option_len_1", &opt1);
    write("ipv4", "tcp_syn", &TCP_SYN_V4);
    write("ipv4", "udp_dns", &UDP_DNS_V4);
    write("ipv4", "ihl_3", &{
        let mut b = TCP_SYN_V4;
        b[0] = 0x43;
        b
    });
    write("ipv6", "tcp", &TCP_V6);
    write("ipv6", "icmp6_ns", &ICMP6_NS);
    let mut trunc_ext = TCP_V6.to_vec();
    trunc_ext[6] = 0;
    write("ipv6", "truncated_ext_header", &trunc_ext);
    write("icmp", "port_unreach_v4", &ICMP_PORT_UNREACH[20..]);
    write("icmp", "unreach_v6", &ICMP6_UNREACH_TCP[40..]);
    write("icmp", "ns_v6", &ICMP6_NS[40..]);
    write("icmp", "timestamp_v4", &ICMP_TIMESTAMP[20..]);
    write("sctp", "init", &SCTP_INIT[20..]);
    write(
        "sctp",
        "chunk_len_0",
        &{
            let mut b = SCTP_INIT;
            b[35] = 0;
            b
        }[20..],
    );
    write("arp_ethernet", "arp_reply", &ARP_REPLY);
    write("arp_ethernet", "vlan_frame", &VLAN_FRAME);
    for (name, f) in [
        ("tcp_syn_v4", &TCP_SYN_V4[..]),
        ("tcp_v6", &TCP_V6),
        ("udp_dns", &UDP_DNS_V4),
        ("icmp_port_unreach", &ICMP_PORT_UNREACH),
        ("icmp6_unreach_tcp", &ICMP6_UNREACH_TCP),
        ("sctp_init", &SCTP_INIT),
        ("icmp6_echo", &ICMP6_ECHO),
        ("truncated_ext_header", &trunc_ext),
    ] {
        write("parse_reply", name, f);
        write("hop_reply", name, f);
    }
    // TLS server flights, written by hand: a TLS 1.2 hello + certificate + done, a TLS 1.3 hello,
    // an alert, an SSL 2.0 SERVER-HELLO, and hostile lengths.
    let rec = |ty: u8, payload: &[u8]| {
        let mut r = vec![ty, 3, 3];
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    };
    let msg = |ty: u8, body: &[u8]| {
        let mut m = vec![ty];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    };
    let hello = |version: [u8; 2], exts: &[u8]| {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0x42; 32]);
        b.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        b.extend_from_slice(&((exts.len() + 6) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0x2b, 0, 2]);
        b.extend_from_slice(&version);
        b.extend_from_slice(exts);
        msg(2, &b)
    };
    let mut flight12 = hello([3, 3], &[0, 0x10, 0, 5, 0, 3, 2, b'h', b'2']);
    flight12.extend(msg(11, &[0, 0, 8, 0, 0, 5, 0x30, 3, 1, 2, 3]));
    flight12.extend(msg(14, &[]));
    write("tls_flight", "tls12_hello_cert_done", &rec(22, &flight12));
    let mut flight13 = rec(22, &hello([3, 4], &[]));
    flight13.extend(rec(20, &[1]));
    write("tls_flight", "tls13_hello_ccs", &flight13);
    write("tls_flight", "alert_protocol_version", &[21, 3, 1, 0, 2, 2, 70]);
    write("tls_flight", "sslv2_server_hello", &[0x80, 0x0e, 4, 0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 1, 0, 0x80]);
    write("tls_flight", "record_too_long", &[22, 3, 3, 0xff, 0xff]);
    write("tls_flight", "message_16mib", &rec(22, &[11, 0xff, 0xff, 0xff]));
}
