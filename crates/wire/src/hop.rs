//! Traceroute and path-MTU probes: building them ([`emit_hop_probe`]) and reading what comes
//! back ([`parse_hop_reply`]).
//!
//! A hop probe is a whole IPv4 or IPv6 packet with a chosen TTL (hop limit), optionally the
//! IPv4 don't-fragment flag, padded to a chosen total length (path-MTU probes), carrying one of:
//!
//! - a TCP SYN whose sequence number carries the probe's token;
//! - a UDP datagram whose *checksum* is the token: two payload bytes are chosen so that the
//!   checksum comes out as the token (Paris traceroute's trick), so every probe of a trace has
//!   the same addresses and ports and load balancers that hash on them send all of a trace's
//!   probes the same way;
//! - an ICMP or ICMPv6 echo request whose sequence number is the token.
//!
//! All three fields are among the first 8 bytes of the transport header, which every ICMP error
//! quotes, so a router's time-exceeded or fragmentation-needed message names the probe it is
//! about. The reply parser reads what traceroute and path-MTU discovery need from any received
//! IP packet: a TCP answer, an echo reply, or an ICMP error with the probe it quotes and, for
//! "fragmentation needed" (ICMPv4 3/4) and "packet too big" (ICMPv6 2), the next hop's MTU.
//! It never panics: malformed input is an error.

use std::net::IpAddr;

use crate::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, rd16, rd32, rd8, tcp, udp, Result, WireError};

/// Largest IP packet a hop probe may be.
pub const MAX_PROBE_LEN: usize = 65535;

/// The transport part of a hop probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopTransport {
    /// A TCP SYN; `seq` is its sequence number.
    TcpSyn {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number (carries the token).
        seq: u32,
    },
    /// A UDP datagram whose checksum is `token` (must not be 0 or 0xffff).
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// The checksum the datagram is made to have.
        token: u16,
    },
    /// An ICMP (IPv4) or ICMPv6 (IPv6) echo request.
    Echo {
        /// Identifier.
        id: u16,
        /// Sequence number (carries the token).
        seq: u16,
    },
}

/// A whole hop probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopProbe {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family).
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    /// Set the IPv4 don't-fragment flag (IPv6 routers never fragment).
    pub dont_frag: bool,
    /// Total IP length wanted: the packet is padded with zero bytes up to it. Smaller than the
    /// bare probe means no padding.
    pub size: usize,
    /// What it carries.
    pub transport: HopTransport,
}

/// Length of the bare probe (no padding): IP header plus transport header, plus the two bytes
/// that set a UDP probe's checksum.
pub fn min_len(v6: bool, t: &HopTransport) -> usize {
    let ip = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
    ip + match t {
        HopTransport::TcpSyn { .. } => tcp::HEADER_LEN,
        HopTransport::Udp { .. } => udp::HEADER_LEN + 2,
        HopTransport::Echo { .. } => icmpv4::HEADER_LEN,
    }
}

/// One's complement sum of two 16-bit words.
fn oc_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Writes the whole probe into `buf`; returns its length (`max(size, min_len)`).
pub fn emit_hop_probe(p: &HopProbe, buf: &mut [u8]) -> Result<usize> {
    let v6 = match (p.src, p.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    let total = p.size.max(min_len(v6, &p.transport));
    if total > MAX_PROBE_LEN {
        return Err(WireError::BadLength("hop probe size"));
    }
    crate::ensure_room(total, buf.len())?;
    let hl = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
    let (hdr, rest) = buf.split_at_mut(hl);
    let l4 = &mut rest[..total - hl];
    l4.fill(0);
    let (proto, l4_len) = match p.transport {
        HopTransport::TcpSyn { sport, dport, seq } => {
            let payload = vec![0u8; l4.len() - tcp::HEADER_LEN];
            let r = tcp::Repr {
                src_port: sport,
                dst_port: dport,
                seq_number: seq,
                ack_number: 0,
                flags: tcp::Flags::SYN,
                window_len: 1024,
                urgent_at: 0,
                options: &[],
                payload: &payload,
            };
            (ip_proto::TCP, r.emit(l4, p.src, p.dst)?)
        }
        HopTransport::Udp { sport, dport, token } => {
            if token == 0 || token == 0xffff {
                return Err(WireError::Unsupported("udp hop token 0 or 0xffff"));
            }
            let mut payload = vec![0u8; l4.len() - udp::HEADER_LEN];
            let n = udp::Repr { src_port: sport, dst_port: dport, payload: &payload }.emit(l4, p.src, p.dst)?;
            // With the first two payload bytes zero the checksum is c0 = ~S. Adding the word w
            // makes it ~(S + w); w = ~token + c0 makes that the token.
            let c0 = rd16(l4, 6..8);
            let w = oc_add(!token, c0);
            payload[..2].copy_from_slice(&w.to_be_bytes());
            udp::Repr { src_port: sport, dst_port: dport, payload: &payload }.emit(l4, p.src, p.dst)?;
            (ip_proto::UDP, n)
        }
        HopTransport::Echo { id, seq } => {
            let data = vec![0u8; l4.len() - icmpv4::HEADER_LEN];
            match (p.src, p.dst) {
                (IpAddr::V6(s), IpAddr::V6(d)) => (
                    ip_proto::ICMPV6,
                    icmpv6::Repr::EchoRequest { ident: id, seq_no: seq, data: &data }.emit(l4, s, d)?,
                ),
                _ => (ip_proto::ICMP, icmpv4::Repr::EchoRequest { ident: id, seq_no: seq, data: &data }.emit(l4)?),
            }
        }
    };
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4::Repr {
            src_addr: s,
            dst_addr: d,
            protocol: proto,
            payload_len: l4_len,
            ttl: p.ttl,
            ident: p.ip_id,
            tos: 0,
            dont_frag: p.dont_frag,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(hdr)?,
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6::Repr {
            src_addr: s,
            dst_addr: d,
            next_header: proto,
            payload_len: l4_len,
            hop_limit: p.ttl,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(hdr)?,
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    Ok(hl + l4_len)
}

/// A received packet, as traceroute and path-MTU discovery see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopReply {
    /// Who sent it.
    pub src: IpAddr,
    /// To whom.
    pub dst: IpAddr,
    /// What it is.
    pub kind: HopKind,
}

/// What a received packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopKind {
    /// A TCP segment (a target answering a SYN: SYN/ACK or RST).
    Tcp {
        /// Its source port (the probed port).
        sport: u16,
        /// Its destination port (our source port).
        dport: u16,
        /// Its acknowledgement number.
        ack: u32,
        /// Its flags.
        flags: tcp::Flags,
    },
    /// An echo reply.
    EchoReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// An ICMP error and the packet it quotes.
    Error {
        /// Which error.
        error: IcmpError,
        /// The quoted probe.
        quote: Quote,
    },
    /// Anything else.
    Other,
}

/// The ICMP errors traceroute and path-MTU discovery tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// TTL (hop limit) exceeded in transit.
    TimeExceeded,
    /// Destination unreachable, with its code (ICMPv4 and ICMPv6 codes differ), except
    /// ICMPv4's "fragmentation needed".
    Unreachable {
        /// ICMPv6 (true) or ICMPv4.
        v6: bool,
        /// The code.
        code: u8,
    },
    /// ICMPv4 "fragmentation needed and DF set" (3/4) or ICMPv6 "packet too big" (2), with the
    /// next hop's MTU as the router gave it (0 when an old router gave none).
    TooBig {
        /// Next-hop MTU.
        mtu: u32,
    },
    /// Another error (parameter problem, source quench, redirect, reassembly time exceeded).
    Other,
}

/// What an ICMP error quotes of the packet that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Original source.
    pub src: IpAddr,
    /// Original destination.
    pub dst: IpAddr,
    /// Original protocol.
    pub proto: u8,
    /// Source port (TCP, UDP), 0 if not quoted.
    pub sport: u16,
    /// Destination port (TCP, UDP), 0 if not quoted.
    pub dport: u16,
    /// TCP sequence number, if quoted.
    pub tcp_seq: Option<u32>,
    /// UDP checksum, if quoted.
    pub udp_sum: Option<u16>,
    /// Echo identifier and sequence number, if the quote is an echo request.
    pub echo: Option<(u16, u16)>,
}

fn quote_of(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8], v6: bool) -> Quote {
    let mut q = Quote { src, dst, proto, sport: 0, dport: 0, tcp_seq: None, udp_sum: None, echo: None };
    if l4.len() < 8 {
        if l4.len() >= 4 && matches!(proto, ip_proto::TCP | ip_proto::UDP) {
            q.sport = rd16(l4, 0..2);
            q.dport = rd16(l4, 2..4);
        }
        return q;
    }
    match proto {
        ip_proto::TCP => {
            q.sport = rd16(l4, 0..2);
            q.dport = rd16(l4, 2..4);
            q.tcp_seq = Some(rd32(l4, 4..8));
        }
        ip_proto::UDP => {
            q.sport = rd16(l4, 0..2);
            q.dport = rd16(l4, 2..4);
            q.udp_sum = Some(rd16(l4, 6..8));
        }
        ip_proto::ICMP if !v6 && rd8(l4, 0) == icmpv4::msg_type::ECHO_REQUEST => {
            q.echo = Some((rd16(l4, 4..6), rd16(l4, 6..8)));
        }
        ip_proto::ICMPV6 if v6 && rd8(l4, 0) == icmpv6::msg_type::ECHO_REQUEST => {
            q.echo = Some((rd16(l4, 4..6), rd16(l4, 6..8)));
        }
        _ => {}
    }
    q
}

/// The quoted packet of an ICMP error's data: an IPv4 quote in ICMPv4, IPv6 in ICMPv6.
fn quoted(data: &[u8], v6: bool) -> Result<Quote> {
    if v6 {
        let h = ipv6::parse_quoted(data)?;
        Ok(quote_of(IpAddr::V6(h.src_addr), IpAddr::V6(h.dst_addr), h.next_header, h.payload, true))
    } else {
        let h = ipv4::parse_quoted(data)?;
        let l4 = if h.frag_offset == 0 { h.payload } else { &[] };
        Ok(quote_of(IpAddr::V4(h.src_addr), IpAddr::V4(h.dst_addr), h.protocol, l4, false))
    }
}

fn icmp4(l4: &[u8]) -> Result<HopKind> {
    let m = icmpv4::Packet::new_checked(l4)?;
    let error = match (m.msg_type(), m.code()) {
        (icmpv4::msg_type::ECHO_REPLY, _) => return Ok(HopKind::EchoReply { id: m.ident(), seq: m.seq_no() }),
        (icmpv4::msg_type::TIME_EXCEEDED, 0) => IcmpError::TimeExceeded,
        (icmpv4::msg_type::DST_UNREACHABLE, 4) => IcmpError::TooBig { mtu: u32::from(m.next_hop_mtu()) },
        (icmpv4::msg_type::DST_UNREACHABLE, code) => IcmpError::Unreachable { v6: false, code },
        (t, _) if icmpv4::is_error(t) => IcmpError::Other,
        _ => return Ok(HopKind::Other),
    };
    Ok(HopKind::Error { error, quote: quoted(m.data(), false)? })
}

fn icmp6(l4: &[u8]) -> Result<HopKind> {
    let m = icmpv6::Packet::new_checked(l4)?;
    let error = match (m.msg_type(), m.code()) {
        (icmpv6::msg_type::ECHO_REPLY, _) => return Ok(HopKind::EchoReply { id: m.ident(), seq: m.seq_no() }),
        (icmpv6::msg_type::TIME_EXCEEDED, 0) => IcmpError::TimeExceeded,
        (icmpv6::msg_type::PACKET_TOO_BIG, _) => IcmpError::TooBig { mtu: m.mtu() },
        (icmpv6::msg_type::DST_UNREACHABLE, code) => IcmpError::Unreachable { v6: true, code },
        (t, _) if icmpv6::is_error(t) => IcmpError::Other,
        _ => return Ok(HopKind::Other),
    };
    Ok(HopKind::Error { error, quote: quoted(m.data(), true)? })
}

/// Reads a received IP packet (starting at its IP header). Never panics; malformed or truncated
/// input is an error. Checksums are not checked.
pub fn parse_hop_reply(ip_packet: &[u8]) -> Result<HopReply> {
    let (src, dst, proto, l4, v6) = match ip_packet.first().map(|b| b >> 4) {
        Some(4) => {
            let p = ipv4::Packet::new_checked(ip_packet)?;
            let l4 = (p.frag_offset() == 0).then(|| p.payload_slice());
            (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()), p.protocol(), l4, false)
        }
        Some(6) => {
            let p = ipv6::Packet::new_checked(ip_packet)?;
            let (u, l4) = p.upper_layer_slice()?;
            let first = u.fragment.is_none_or(|f| f.offset == 0);
            (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), u.next_header, first.then_some(l4), true)
        }
        Some(v) => return Err(WireError::BadVersion(v)),
        None => return Err(WireError::Truncated("ip packet")),
    };
    let Some(l4) = l4 else { return Ok(HopReply { src, dst, kind: HopKind::Other }) };
    let kind = match proto {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(l4)?;
            HopKind::Tcp { sport: t.src_port(), dport: t.dst_port(), ack: t.ack_number(), flags: t.flags() }
        }
        ip_proto::ICMP if !v6 => icmp4(l4)?,
        ip_proto::ICMPV6 if v6 => icmp6(l4)?,
        _ => HopKind::Other,
    };
    Ok(HopReply { src, dst, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    const DST4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 10));
    const R1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));

    fn probe(src: IpAddr, dst: IpAddr, t: HopTransport, size: usize) -> Vec<u8> {
        let mut buf = vec![0u8; 2000];
        let p = HopProbe { src, dst, ttl: 2, ip_id: 7, dont_frag: true, size, transport: t };
        let n = emit_hop_probe(&p, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// A router's ICMPv4 error quoting `orig` (IP header and the first 8 bytes after it).
    fn icmp4_error(from: IpAddr, to: IpAddr, t: u8, code: u8, mtu: u16, orig: &[u8]) -> Vec<u8> {
        let quote = &orig[..28.min(orig.len())];
        let mut m = vec![t, code, 0, 0, 0, 0];
        m.extend_from_slice(&mtu.to_be_bytes());
        m.extend_from_slice(quote);
        let c = crate::checksum::internet_checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let (IpAddr::V4(s), IpAddr::V4(d)) = (from, to) else { panic!() };
        let mut out = vec![0u8; 20];
        ipv4::Repr {
            src_addr: s,
            dst_addr: d,
            protocol: ip_proto::ICMP,
            payload_len: m.len(),
            ttl: 64,
            ident: 1,
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

    #[test]
    fn udp_probes_carry_their_token_as_checksum_and_stay_valid() {
        for token in [1u16, 2, 0x1234, 0x8000, 0xfffe] {
            for size in [0usize, 31, 100, 1400] {
                let p = probe(SRC4, DST4, HopTransport::Udp { sport: 40000, dport: 33434, token }, size);
                assert_eq!(p.len(), size.max(30));
                let ip = ipv4::Packet::new_checked(&p[..]).unwrap();
                assert!(ip.dont_frag());
                let u = udp::Packet::new_checked(ip.payload()).unwrap();
                assert_eq!(u.checksum(), token, "size {size}");
                assert!(u.verify_checksum(SRC4, DST4));
            }
        }
        let v6s: IpAddr = "fd00:18::2".parse().unwrap();
        let v6d: IpAddr = "fd00:18:2::10".parse().unwrap();
        let p = probe(v6s, v6d, HopTransport::Udp { sport: 1, dport: 2, token: 0x4242 }, 0);
        let ip = ipv6::Packet::new_checked(&p[..]).unwrap();
        assert_eq!(ip.hop_limit(), 2);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(u.checksum(), 0x4242);
        assert!(u.verify_checksum(v6s, v6d));
        let mut buf = [0u8; 64];
        let bad = HopProbe {
            src: SRC4,
            dst: DST4,
            ttl: 1,
            ip_id: 0,
            dont_frag: false,
            size: 0,
            transport: HopTransport::Udp { sport: 1, dport: 2, token: 0 },
        };
        assert!(emit_hop_probe(&bad, &mut buf).is_err());
    }

    #[test]
    fn time_exceeded_quotes_the_probe_and_frag_needed_its_mtu() {
        let syn = probe(SRC4, DST4, HopTransport::TcpSyn { sport: 40001, dport: 80, seq: 0xabcd_0042 }, 1500);
        assert_eq!(syn.len(), 1500);
        let t = tcp::Packet::new_checked(&syn[20..]).unwrap();
        assert!(t.verify_checksum(SRC4, DST4));
        let te = icmp4_error(R1, SRC4, icmpv4::msg_type::TIME_EXCEEDED, 0, 0, &syn);
        let r = parse_hop_reply(&te).unwrap();
        assert_eq!(r.src, R1);
        let HopKind::Error { error, quote } = r.kind else { panic!("{r:?}") };
        assert_eq!(error, IcmpError::TimeExceeded);
        assert_eq!((quote.dst, quote.sport, quote.dport, quote.tcp_seq), (DST4, 40001, 80, Some(0xabcd_0042)));
        let fr = icmp4_error(R1, SRC4, icmpv4::msg_type::DST_UNREACHABLE, 4, 1400, &syn);
        let HopKind::Error { error, .. } = parse_hop_reply(&fr).unwrap().kind else { panic!() };
        assert_eq!(error, IcmpError::TooBig { mtu: 1400 });
        let echo = probe(SRC4, DST4, HopTransport::Echo { id: 9, seq: 77 }, 0);
        let pu = icmp4_error(DST4, SRC4, icmpv4::msg_type::DST_UNREACHABLE, 3, 0, &echo);
        let HopKind::Error { error, quote } = parse_hop_reply(&pu).unwrap().kind else { panic!() };
        assert_eq!(error, IcmpError::Unreachable { v6: false, code: 3 });
        assert_eq!(quote.echo, Some((9, 77)));
        let udp = probe(SRC4, DST4, HopTransport::Udp { sport: 5, dport: 6, token: 321 }, 0);
        let te = icmp4_error(R1, SRC4, icmpv4::msg_type::TIME_EXCEEDED, 0, 0, &udp);
        let HopKind::Error { quote, .. } = parse_hop_reply(&te).unwrap().kind else { panic!() };
        assert_eq!((quote.udp_sum, quote.sport), (Some(321), 5));
    }

    #[test]
    fn icmpv6_errors_and_echo_replies() {
        let s: Ipv6Addr = "fd00:18::2".parse().unwrap();
        let d: Ipv6Addr = "fd00:18:2::10".parse().unwrap();
        let r: Ipv6Addr = "fd00:18::1".parse().unwrap();
        let echo = probe(IpAddr::V6(s), IpAddr::V6(d), HopTransport::Echo { id: 3, seq: 4 }, 0);
        for (repr, want) in [
            (icmpv6::Repr::TimeExceeded { code: 0, data: &echo[..] }, IcmpError::TimeExceeded),
            (icmpv6::Repr::PacketTooBig { mtu: 1280, data: &echo[..] }, IcmpError::TooBig { mtu: 1280 }),
        ] {
            let mut m = vec![0u8; 200];
            let n = repr.emit(&mut m, r, s).unwrap();
            let mut pkt = vec![0u8; 40];
            ipv6::Repr {
                src_addr: r,
                dst_addr: s,
                next_header: ip_proto::ICMPV6,
                payload_len: n,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut pkt)
            .unwrap();
            pkt.extend_from_slice(&m[..n]);
            let reply = parse_hop_reply(&pkt).unwrap();
            let HopKind::Error { error, quote } = reply.kind else { panic!("{reply:?}") };
            assert_eq!(error, want);
            assert_eq!((quote.dst, quote.echo), (IpAddr::V6(d), Some((3, 4))));
        }
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let syn = probe(SRC4, DST4, HopTransport::TcpSyn { sport: 1, dport: 2, seq: 3 }, 0);
        let te = icmp4_error(R1, SRC4, icmpv4::msg_type::TIME_EXCEEDED, 0, 0, &syn);
        for cut in 0..te.len() {
            let _ = parse_hop_reply(&te[..cut]);
        }
        let mut x = te.clone();
        for i in 0..x.len() {
            for v in [0u8, 0x45, 0x60, 0xff] {
                let old = x[i];
                x[i] = v;
                let _ = parse_hop_reply(&x);
                x[i] = old;
            }
        }
        assert!(parse_hop_reply(&[]).is_err());
        assert!(parse_hop_reply(&[0x30; 40]).is_err());
    }
}
