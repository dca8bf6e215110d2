//! The convenience layer the scan engine calls: build a whole probe packet
//! ([`emit_ip`], [`emit_frame`]) and summarise a received IP packet for
//! matching against probes ([`parse_reply`], [`checksums_ok`]).

use std::net::IpAddr;

use crate::ethernet::{self, MacAddr};
use crate::{ensure_room, rd16, rd32, rd8, Result, WireError};
use crate::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, sctp, tcp, udp};

/// The transport part of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4<'a> {
    /// A TCP segment.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flags.
        flags: tcp::Flags,
        /// Window.
        window: u16,
        /// Options (padded to 4 bytes on emit; at most 40 bytes).
        options: &'a [tcp::TcpOption<'a>],
        /// Payload (empty for a scan probe; `--data-*` fills it).
        payload: &'a [u8],
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload.
        payload: &'a [u8],
    },
    /// An SCTP INIT chunk with initiate tag (and initial TSN) `tag`, verification
    /// tag 0 in the common header, a_rwnd 32768, 10 outbound / 2048 inbound streams.
    SctpInit {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Initiate tag.
        tag: u32,
    },
    /// An SCTP COOKIE-ECHO chunk (4-byte zero cookie) with verification tag `tag`.
    SctpCookieEcho {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Verification tag of the common header.
        tag: u32,
    },
    /// ICMP (v4 type 8) or ICMPv6 (type 128) echo request.
    IcmpEcho {
        /// Whether this is ICMPv6 (must match the address family).
        v6: bool,
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
        /// Payload.
        payload: &'a [u8],
    },
    /// ICMPv4 timestamp request (IPv4 only), all timestamps zero.
    IcmpTimestamp {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// ICMPv4 address-mask request (IPv4 only), mask zero.
    IcmpMask {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// ICMPv6 neighbour solicitation for `target` (IPv6 only; send it with hop limit 255 to
    /// the target's solicited-node multicast address, see [`solicited_node`]).
    NeighborSolicit {
        /// The address whose link-layer address is asked for.
        target: std::net::Ipv6Addr,
        /// Our link-layer address, so the answer can come back without a lookup of its own.
        source_lladdr: MacAddr,
    },
}

/// The solicited-node multicast address of `a` (RFC 4291 §2.7.1) and its Ethernet group
/// address (RFC 2464 §7): where a neighbour solicitation for `a` is sent.
pub fn solicited_node(a: std::net::Ipv6Addr) -> (std::net::Ipv6Addr, MacAddr) {
    let o = a.octets();
    let ip = std::net::Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        (u16::from(o[14]) << 8) | u16::from(o[15]),
    );
    (ip, [0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

/// An Ethernet frame carrying an ARP who-has request for `target`, broadcast; returns its length.
pub fn emit_arp_request(
    src_mac: MacAddr,
    src_ip: std::net::Ipv4Addr,
    target: std::net::Ipv4Addr,
    buf: &mut [u8],
) -> Result<usize> {
    let eth = ethernet::Repr {
        src_addr: src_mac,
        dst_addr: ethernet::BROADCAST,
        ethertype: ethernet::ethertype::ARP,
        vlan_tci: None,
    };
    let hl = eth.emit(buf)?;
    let rest = buf.get_mut(hl..).unwrap_or(&mut []);
    let n = crate::arp::Repr::request(src_mac, src_ip, target).emit(rest)?;
    Ok(hl + n)
}

/// A whole probe: IP addressing plus the transport part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpProbe<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 identification (ignored for IPv6).
    pub ip_id: u16,
    /// Transport part.
    pub l4: L4<'a>,
}

const SCTP_A_RWND: u32 = 32768;
const SCTP_OUT_STREAMS: u16 = 10;
const SCTP_IN_STREAMS: u16 = 2048;

fn l4_protocol(l4: &L4<'_>, v6: bool) -> Result<u8> {
    Ok(match *l4 {
        L4::Tcp { .. } => ip_proto::TCP,
        L4::Udp { .. } => ip_proto::UDP,
        L4::SctpInit { .. } | L4::SctpCookieEcho { .. } => ip_proto::SCTP,
        L4::IcmpEcho { v6: want, .. } if want != v6 => return Err(WireError::AddressFamilyMismatch),
        L4::IcmpEcho { .. } if v6 => ip_proto::ICMPV6,
        L4::IcmpEcho { .. } => ip_proto::ICMP,
        L4::IcmpTimestamp { .. } | L4::IcmpMask { .. } if v6 => return Err(WireError::AddressFamilyMismatch),
        L4::IcmpTimestamp { .. } | L4::IcmpMask { .. } => ip_proto::ICMP,
        L4::NeighborSolicit { .. } if v6 => ip_proto::ICMPV6,
        L4::NeighborSolicit { .. } => return Err(WireError::AddressFamilyMismatch),
    })
}

fn emit_l4(l4: &L4<'_>, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize> {
    match *l4 {
        L4::Tcp { sport, dport, seq, ack, flags, window, options, payload } => {
            let mut opts = [0u8; tcp::MAX_OPTIONS_LEN];
            let n = tcp::emit_options(options, &mut opts)?;
            let r = tcp::Repr {
                src_port: sport,
                dst_port: dport,
                seq_number: seq,
                ack_number: ack,
                flags,
                window_len: window,
                urgent_at: 0,
                options: opts.get(..n).unwrap_or(&[]),
                payload,
            };
            r.emit(buf, src, dst)
        }
        L4::Udp { sport, dport, payload } => {
            udp::Repr { src_port: sport, dst_port: dport, payload }.emit(buf, src, dst)
        }
        L4::SctpInit { sport, dport, tag } => sctp::Repr {
            src_port: sport,
            dst_port: dport,
            verification_tag: 0,
            chunk: sctp::ChunkRepr::Init(sctp::Init {
                initiate_tag: tag,
                a_rwnd: SCTP_A_RWND,
                outbound_streams: SCTP_OUT_STREAMS,
                inbound_streams: SCTP_IN_STREAMS,
                initial_tsn: tag,
                params: &[],
            }),
        }
        .emit(buf),
        L4::SctpCookieEcho { sport, dport, tag } => sctp::Repr {
            src_port: sport,
            dst_port: dport,
            verification_tag: tag,
            chunk: sctp::ChunkRepr::CookieEcho { cookie: &[0; 4] },
        }
        .emit(buf),
        L4::IcmpEcho { id, seq, payload, .. } => match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                icmpv6::Repr::EchoRequest { ident: id, seq_no: seq, data: payload }.emit(buf, s, d)
            }
            _ => icmpv4::Repr::EchoRequest { ident: id, seq_no: seq, data: payload }.emit(buf),
        },
        L4::IcmpTimestamp { id, seq } => {
            icmpv4::Repr::Timestamp { reply: false, ident: id, seq_no: seq, originate: 0, receive: 0, transmit: 0 }
                .emit(buf)
        }
        L4::IcmpMask { id, seq } => {
            icmpv4::Repr::AddressMask { reply: false, ident: id, seq_no: seq, mask: 0 }.emit(buf)
        }
        L4::NeighborSolicit { target, source_lladdr } => match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                icmpv6::Repr::NeighborSolicit { target, source_lladdr: Some(source_lladdr) }.emit(buf, s, d)
            }
            _ => Err(WireError::AddressFamilyMismatch),
        },
    }
}

/// Writes the whole IP packet (IPv4 or IPv6 header by address family, all
/// checksums filled) into `buf`; returns its length. Fails if `buf` is too
/// small, if the families of `src` and `dst` differ (or do not suit the
/// probe: ICMPv4 timestamp/mask need IPv4, `IcmpEcho::v6` must match), or if
/// the packet would exceed the IP length limit.
pub fn emit_ip(p: &IpProbe<'_>, buf: &mut [u8]) -> Result<usize> {
    let v6 = match (p.src, p.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    let protocol = l4_protocol(&p.l4, v6)?;
    let hl = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
    ensure_room(hl, buf.len())?;
    let (hdr, rest) = buf.split_at_mut(hl);
    let payload_len = emit_l4(&p.l4, rest, p.src, p.dst).map_err(|e| match e {
        WireError::BufferTooSmall { need, have } => WireError::BufferTooSmall { need: need + hl, have: have + hl },
        e => e,
    })?;
    match (p.src, p.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4::Repr {
            src_addr: s,
            dst_addr: d,
            protocol,
            payload_len,
            ttl: p.ttl,
            ident: p.ip_id,
            tos: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(hdr)?,
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6::Repr {
            src_addr: s,
            dst_addr: d,
            next_header: protocol,
            payload_len,
            hop_limit: p.ttl,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(hdr)?,
        _ => return Err(WireError::AddressFamilyMismatch),
    };
    Ok(hl + payload_len)
}

/// Same as [`emit_ip`], preceded by an untagged Ethernet header.
pub fn emit_frame(src_mac: MacAddr, dst_mac: MacAddr, p: &IpProbe<'_>, buf: &mut [u8]) -> Result<usize> {
    let ethertype = if p.src.is_ipv6() { ethernet::ethertype::IPV6 } else { ethernet::ethertype::IPV4 };
    let eth = ethernet::Repr { src_addr: src_mac, dst_addr: dst_mac, ethertype, vlan_tci: None };
    let hl = eth.emit(buf)?;
    let rest = buf.get_mut(hl..).unwrap_or(&mut []);
    let n = emit_ip(p, rest).map_err(|e| match e {
        WireError::BufferTooSmall { need, have } => WireError::BufferTooSmall { need: need + hl, have: have + hl },
        e => e,
    })?;
    Ok(hl + n)
}

/// A received IP packet (starting at the IP header), summarised for matching
/// against probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// What the packet carries.
    pub body: ReplyBody,
}

/// The transport content of a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyBody {
    /// A TCP segment.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flags.
        flags: tcp::Flags,
        /// Window.
        window: u16,
    },
    /// A UDP datagram.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Payload length.
        len: usize,
    },
    /// An SCTP packet.
    Sctp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Verification tag.
        vtag: u32,
        /// Type of the first chunk (2 = INIT-ACK, 6 = ABORT, ...).
        first_chunk: u8,
        /// Initiate tag, when the first chunk is INIT or INIT-ACK.
        init_tag: Option<u32>,
    },
    /// ICMP echo reply (v4 type 0, v6 type 129).
    IcmpEcho {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// ICMPv4 timestamp reply.
    IcmpTimestampReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// ICMPv4 address-mask reply.
    IcmpMaskReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// An ICMP error (v4 dest-unreach/source-quench/redirect/time-exceeded/
    /// parameter-problem, v6 dest-unreach/too-big/time-exceeded/parameter-problem)
    /// and what it quotes.
    IcmpError {
        /// Whether this is ICMPv6.
        v6: bool,
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The quoted original packet.
        quoted: Quoted,
    },
    /// ICMPv6 neighbour advertisement.
    NeighborAdvert {
        /// The address it advertises.
        target: std::net::Ipv6Addr,
        /// Its link-layer address option, if present.
        lladdr: Option<MacAddr>,
    },
    /// Anything else (other ICMP types, other protocols, non-first fragments).
    Other {
        /// IP protocol / final next header.
        proto: u8,
    },
}

/// The original packet quoted inside an ICMP error. Ports and the other
/// optional fields are 0 / `None` when the quote does not include them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Original source address.
    pub src: IpAddr,
    /// Original destination address.
    pub dst: IpAddr,
    /// Original protocol.
    pub proto: u8,
    /// Original source port (TCP, UDP, SCTP).
    pub sport: u16,
    /// Original destination port (TCP, UDP, SCTP).
    pub dport: u16,
    /// TCP sequence number, if quoted.
    pub tcp_seq: Option<u32>,
    /// ICMP echo/timestamp/mask identifier, if quoted.
    pub icmp_id: Option<u16>,
    /// ICMP echo/timestamp/mask sequence number, if quoted.
    pub icmp_seq: Option<u16>,
    /// SCTP verification tag, if quoted.
    pub sctp_vtag: Option<u32>,
}

fn quoted_transport(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Quoted {
    let mut q =
        Quoted { src, dst, proto, sport: 0, dport: 0, tcp_seq: None, icmp_id: None, icmp_seq: None, sctp_vtag: None };
    let has = |n: usize| l4.len() >= n;
    match proto {
        ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP if has(4) => {
            q.sport = rd16(l4, 0..2);
            q.dport = rd16(l4, 2..4);
            if has(8) {
                match proto {
                    ip_proto::TCP => q.tcp_seq = Some(rd32(l4, 4..8)),
                    ip_proto::SCTP => q.sctp_vtag = Some(rd32(l4, 4..8)),
                    _ => {}
                }
            }
        }
        ip_proto::ICMP
            if has(8)
                && matches!(
                    rd8(l4, 0),
                    icmpv4::msg_type::ECHO_REQUEST | icmpv4::msg_type::TIMESTAMP | icmpv4::msg_type::ADDRESS_MASK
                ) =>
        {
            q.icmp_id = Some(rd16(l4, 4..6));
            q.icmp_seq = Some(rd16(l4, 6..8));
        }
        ip_proto::ICMPV6 if has(8) && rd8(l4, 0) == icmpv6::msg_type::ECHO_REQUEST => {
            q.icmp_id = Some(rd16(l4, 4..6));
            q.icmp_seq = Some(rd16(l4, 6..8));
        }
        _ => {}
    }
    q
}

fn quoted_from(data: &[u8]) -> Result<Quoted> {
    match data.first().map(|b| b >> 4) {
        Some(4) => {
            let h = ipv4::parse_quoted(data)?;
            let l4 = if h.frag_offset == 0 { h.payload } else { &[] };
            Ok(quoted_transport(IpAddr::V4(h.src_addr), IpAddr::V4(h.dst_addr), h.protocol, l4))
        }
        Some(6) => {
            let h = ipv6::parse_quoted(data)?;
            Ok(quoted_transport(IpAddr::V6(h.src_addr), IpAddr::V6(h.dst_addr), h.next_header, h.payload))
        }
        Some(v) => Err(WireError::BadVersion(v)),
        None => Err(WireError::Truncated("icmp quote")),
    }
}

fn transport_body(proto: u8, l4: &[u8], v6: bool) -> Result<ReplyBody> {
    Ok(match proto {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(l4)?;
            ReplyBody::Tcp {
                sport: t.src_port(),
                dport: t.dst_port(),
                seq: t.seq_number(),
                ack: t.ack_number(),
                flags: t.flags(),
                window: t.window_len(),
            }
        }
        ip_proto::UDP => {
            let u = udp::Packet::new_checked(l4)?;
            ReplyBody::Udp { sport: u.src_port(), dport: u.dst_port(), len: u.payload().len() }
        }
        ip_proto::SCTP => {
            let s = sctp::Packet::new_checked(l4)?;
            let c = s.first_chunk().ok_or(WireError::Truncated("sctp: no chunk"))?;
            let init_tag = match c.chunk_type {
                sctp::chunk_type::INIT | sctp::chunk_type::INIT_ACK => Some(sctp::Init::parse(c.value)?.initiate_tag),
                _ => None,
            };
            ReplyBody::Sctp {
                sport: s.src_port(),
                dport: s.dst_port(),
                vtag: s.verification_tag(),
                first_chunk: c.chunk_type,
                init_tag,
            }
        }
        ip_proto::ICMP if !v6 => {
            let m = icmpv4::Packet::new_checked(l4)?;
            let (id, seq) = (m.ident(), m.seq_no());
            match m.msg_type() {
                icmpv4::msg_type::ECHO_REPLY => ReplyBody::IcmpEcho { id, seq },
                icmpv4::msg_type::TIMESTAMP_REPLY => ReplyBody::IcmpTimestampReply { id, seq },
                icmpv4::msg_type::ADDRESS_MASK_REPLY => ReplyBody::IcmpMaskReply { id, seq },
                t if icmpv4::is_error(t) => {
                    ReplyBody::IcmpError { v6: false, icmp_type: t, code: m.code(), quoted: quoted_from(m.data())? }
                }
                _ => ReplyBody::Other { proto },
            }
        }
        ip_proto::ICMPV6 if v6 => {
            let m = icmpv6::Packet::new_checked(l4)?;
            match m.msg_type() {
                icmpv6::msg_type::ECHO_REPLY => ReplyBody::IcmpEcho { id: m.ident(), seq: m.seq_no() },
                icmpv6::msg_type::NEIGHBOR_ADVERT => match icmpv6::Repr::parse(&m)? {
                    icmpv6::Repr::NeighborAdvert { target, target_lladdr, .. } => {
                        ReplyBody::NeighborAdvert { target, lladdr: target_lladdr }
                    }
                    _ => ReplyBody::Other { proto },
                },
                t if icmpv6::is_error(t) => {
                    ReplyBody::IcmpError { v6: true, icmp_type: t, code: m.code(), quoted: quoted_from(m.data())? }
                }
                _ => ReplyBody::Other { proto },
            }
        }
        _ => ReplyBody::Other { proto },
    })
}

/// The addresses, TTL, protocol and transport bytes of an IP packet.
struct IpParts<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    /// `None` for a non-first fragment.
    l4: Option<&'a [u8]>,
    v6: bool,
}

fn split_ip(ip_packet: &[u8]) -> Result<IpParts<'_>> {
    match ip_packet.first().map(|b| b >> 4) {
        Some(4) => {
            let p = ipv4::Packet::new_checked(ip_packet)?;
            let l4 = (p.frag_offset() == 0).then(|| p.payload_slice());
            Ok(IpParts {
                src: IpAddr::V4(p.src_addr()),
                dst: IpAddr::V4(p.dst_addr()),
                ttl: p.ttl(),
                proto: p.protocol(),
                l4,
                v6: false,
            })
        }
        Some(6) => {
            let p = ipv6::Packet::new_checked(ip_packet)?;
            let (u, l4) = p.upper_layer_slice()?;
            let first = u.fragment.is_none_or(|f| f.offset == 0);
            Ok(IpParts {
                src: IpAddr::V6(p.src_addr()),
                dst: IpAddr::V6(p.dst_addr()),
                ttl: p.hop_limit(),
                proto: u.next_header,
                l4: first.then_some(l4),
                v6: true,
            })
        }
        Some(v) => Err(WireError::BadVersion(v)),
        None => Err(WireError::Truncated("ip packet")),
    }
}

/// Parses a received IP packet (starting at the IP header). Never panics;
/// malformed or truncated input is an error. Checksums are not checked (see
/// [`checksums_ok`]).
pub fn parse_reply(ip_packet: &[u8]) -> Result<Reply> {
    let IpParts { src, dst, ttl, proto, l4, v6 } = split_ip(ip_packet)?;
    let body = match l4 {
        Some(l4) => transport_body(proto, l4, v6)?,
        None => ReplyBody::Other { proto },
    };
    Ok(Reply { src, dst, ttl, body })
}

/// Whether every checksum in the IP packet is correct: the IPv4 header
/// checksum, and for a whole (unfragmented) TCP, UDP, SCTP, ICMP or ICMPv6
/// payload its own checksum. Malformed input is `false`. The IPv6 pseudo-header
/// uses the destination in the fixed header (routing headers are not followed).
pub fn checksums_ok(ip_packet: &[u8]) -> bool {
    if let Some(4) = ip_packet.first().map(|b| b >> 4) {
        match ipv4::Packet::new_checked(ip_packet) {
            Ok(p) if p.verify_checksum() => {
                if p.is_fragment() {
                    return true;
                }
            }
            _ => return false,
        }
    }
    let Ok(IpParts { src, dst, proto, l4, v6, .. }) = split_ip(ip_packet) else { return false };
    let Some(l4) = l4 else { return true };
    match proto {
        ip_proto::TCP => tcp::Packet::new_checked(l4).is_ok_and(|t| t.verify_checksum(src, dst)),
        ip_proto::UDP => udp::Packet::new_checked(l4).is_ok_and(|u| u.verify_checksum(src, dst)),
        ip_proto::SCTP => sctp::Packet::new_checked(l4).is_ok_and(|s| s.verify_checksum()),
        ip_proto::ICMP if !v6 => icmpv4::Packet::new_checked(l4).is_ok_and(|m| m.verify_checksum()),
        ip_proto::ICMPV6 if v6 => match (src, dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => icmpv6::Packet::new_checked(l4).is_ok_and(|m| m.verify_checksum(s, d)),
            _ => false,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    #[test]
    fn neighbour_solicitation_and_advert() {
        let target: Ipv6Addr = "fd00:18::10".parse().unwrap();
        let (group, mac) = solicited_node(target);
        assert_eq!(group, "ff02::1:ff00:10".parse::<Ipv6Addr>().unwrap());
        assert_eq!(mac, [0x33, 0x33, 0xff, 0, 0, 0x10]);
        let me = [2, 0x52, 0x4d, 0, 0, 2];
        let p = IpProbe {
            src: "fd00:18::2".parse().unwrap(),
            dst: IpAddr::V6(group),
            ttl: 255,
            ip_id: 0,
            l4: L4::NeighborSolicit { target, source_lladdr: me },
        };
        let mut buf = [0u8; 128];
        let n = emit_frame(me, mac, &p, &mut buf).unwrap();
        assert_eq!(n, 14 + 40 + 32);
        assert_eq!(&buf[..6], &mac);
        assert!(checksums_ok(&buf[14..n]));
        // The same message parsed back is a solicitation (not an advert): no ReplyBody for it.
        assert!(matches!(parse_reply(&buf[14..n]).unwrap().body, ReplyBody::Other { proto: 58 }));
        // An advert for the target, as the neighbour answers.
        let mut na = [0u8; 40 + 32];
        let adv =
            icmpv6::Repr::NeighborAdvert { flags: 0x60, target, target_lladdr: Some([2, 0x52, 0x4d, 0, 0, 0x10]) };
        let m = adv.emit(&mut na[40..], target, "fd00:18::2".parse().unwrap()).unwrap();
        ipv6::Repr {
            src_addr: target,
            dst_addr: "fd00:18::2".parse().unwrap(),
            next_header: ip_proto::ICMPV6,
            payload_len: m,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
        }
        .emit(&mut na[..40])
        .unwrap();
        let r = parse_reply(&na).unwrap();
        assert_eq!(r.body, ReplyBody::NeighborAdvert { target, lladdr: Some([2, 0x52, 0x4d, 0, 0, 0x10]) });
        // A solicitation cannot go over IPv4.
        let bad = IpProbe { src: v4(192, 0, 2, 1), dst: v4(192, 0, 2, 2), l4: p.l4, ..p };
        assert!(emit_ip(&bad, &mut buf).is_err());
    }

    #[test]
    fn arp_request_frame() {
        let mut buf = [0u8; 64];
        let me = [2, 0x52, 0x4d, 0, 0, 2];
        let n = emit_arp_request(me, Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 10), &mut buf).unwrap();
        assert_eq!(n, 14 + 28);
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(&buf[6..12], &me);
        assert_eq!(&buf[12..14], &[0x08, 0x06]);
        let arp = crate::arp::Packet::new_checked(&buf[14..n]).unwrap();
        assert_eq!(arp.operation(), crate::arp::Operation::Request);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(198, 18, 0, 2));
        assert!(emit_arp_request(me, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &mut buf[..20]).is_err());
    }

    #[test]
    fn emit_syn_matches_fixture() {
        let opts = [
            tcp::TcpOption::MaxSegmentSize(1460),
            tcp::TcpOption::SackPermitted,
            tcp::TcpOption::Timestamps { tsval: 1, tsecr: 0 },
            tcp::TcpOption::NoOperation,
            tcp::TcpOption::WindowScale(7),
        ];
        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(198, 51, 100, 2),
            ttl: 64,
            ip_id: 0x1234,
            l4: L4::Tcp {
                sport: 40000,
                dport: 80,
                seq: 0x01020304,
                ack: 0,
                flags: tcp::Flags::SYN,
                window: 64240,
                options: &opts,
                payload: &[],
            },
        };
        let mut buf = [0u8; 100];
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &TCP_SYN_V4[..]);
        assert!(checksums_ok(&buf[..n]));
        assert_eq!(emit_ip(&p, &mut buf[..59]), Err(WireError::BufferTooSmall { need: 60, have: 59 }));
        assert!(emit_ip(&p, &mut buf[..10]).is_err());
        let mut frame = [0u8; 100];
        let n = emit_frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], &p, &mut frame).unwrap();
        assert_eq!(n, 74);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        assert_eq!(&frame[14..74], &TCP_SYN_V4[..]);
        assert!(emit_frame([0; 6], [0; 6], &p, &mut frame[..73]).is_err());
    }

    #[test]
    fn emit_other_probes_match_fixtures() {
        let mut buf = [0u8; 128];
        let dns = &UDP_DNS_V4[28..];
        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(192, 0, 2, 53),
            ttl: 64,
            ip_id: 1,
            l4: L4::Udp { sport: 53000, dport: 53, payload: dns },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &UDP_DNS_V4[..]);

        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(198, 51, 100, 2),
            ttl: 64,
            ip_id: 5,
            l4: L4::SctpInit { sport: 5000, dport: 80, tag: 0x11223344 },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &SCTP_INIT[..]);

        let p = IpProbe {
            src: v6(1),
            dst: v6(2),
            ttl: 64,
            ip_id: 0,
            l4: L4::IcmpEcho { v6: true, id: 7, seq: 9, payload: b"abc" },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &ICMP6_ECHO[..]);

        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(192, 0, 2, 2),
            ttl: 64,
            ip_id: 3,
            l4: L4::IcmpTimestamp { id: 1, seq: 2 },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &ICMP_TIMESTAMP[..]);

        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(192, 0, 2, 2),
            ttl: 64,
            ip_id: 2,
            l4: L4::IcmpEcho { v6: false, id: 0x4242, seq: 1, payload: b"ping" },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], &VLAN_FRAME[18..]);

        let p = IpProbe {
            src: v4(192, 0, 2, 1),
            dst: v4(192, 0, 2, 2),
            ttl: 64,
            ip_id: 4,
            l4: L4::IcmpMask { id: 1, seq: 2 },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(n, 32);
        assert!(checksums_ok(&buf[..n]));
        assert_eq!(&buf[20..32], &ICMP_MASK[20..32]);

        let p = IpProbe {
            src: v6(1),
            dst: v6(2),
            ttl: 9,
            ip_id: 0,
            l4: L4::SctpCookieEcho { sport: 1, dport: 2, tag: 0xfeedf00d },
        };
        let n = emit_ip(&p, &mut buf).unwrap();
        assert_eq!(n, 40 + 12 + 8);
        assert!(checksums_ok(&buf[..n]));
        let r = parse_reply(&buf[..n]).unwrap();
        assert_eq!(r.body, ReplyBody::Sctp { sport: 1, dport: 2, vtag: 0xfeedf00d, first_chunk: 10, init_tag: None });
        assert_eq!(r.ttl, 9);
    }

    #[test]
    fn emit_family_errors() {
        let mut buf = [0u8; 128];
        let mut p = IpProbe { src: v4(1, 1, 1, 1), dst: v6(1), ttl: 1, ip_id: 0, l4: L4::IcmpMask { id: 0, seq: 0 } };
        assert_eq!(emit_ip(&p, &mut buf), Err(WireError::AddressFamilyMismatch));
        p.dst = v4(2, 2, 2, 2);
        assert!(emit_ip(&p, &mut buf).is_ok());
        p.src = v6(1);
        p.dst = v6(2);
        assert_eq!(emit_ip(&p, &mut buf), Err(WireError::AddressFamilyMismatch));
        p.l4 = L4::IcmpEcho { v6: false, id: 0, seq: 0, payload: &[] };
        assert_eq!(emit_ip(&p, &mut buf), Err(WireError::AddressFamilyMismatch));
        let big = vec![0u8; 70_000];
        p.l4 = L4::Udp { sport: 1, dport: 2, payload: &big };
        assert!(emit_ip(&p, &mut vec![0u8; 80_000]).is_err());
    }

    #[test]
    fn parse_replies() {
        let r = parse_reply(&TCP_V6).unwrap();
        assert_eq!((r.src, r.dst, r.ttl), (v6(1), v6(2), 60));
        assert_eq!(
            r.body,
            ReplyBody::Tcp {
                sport: 443,
                dport: 51000,
                seq: 1000,
                ack: 2001,
                flags: tcp::Flags::SYN | tcp::Flags::ACK,
                window: 65535
            }
        );
        assert!(checksums_ok(&TCP_V6));

        let r = parse_reply(&UDP_DNS_V4).unwrap();
        assert_eq!(r.body, ReplyBody::Udp { sport: 53000, dport: 53, len: 29 });
        assert!(checksums_ok(&UDP_DNS_V4));

        let r = parse_reply(&ICMP_PORT_UNREACH).unwrap();
        assert_eq!((r.src, r.ttl), (v4(198, 51, 100, 2), 63));
        assert_eq!(
            r.body,
            ReplyBody::IcmpError {
                v6: false,
                icmp_type: 3,
                code: 3,
                quoted: Quoted {
                    src: v4(192, 0, 2, 1),
                    dst: v4(198, 51, 100, 2),
                    proto: 17,
                    sport: 40001,
                    dport: 161,
                    tcp_seq: None,
                    icmp_id: None,
                    icmp_seq: None,
                    sctp_vtag: None
                }
            }
        );
        assert!(checksums_ok(&ICMP_PORT_UNREACH));

        let r = parse_reply(&ICMP6_UNREACH_TCP).unwrap();
        match r.body {
            ReplyBody::IcmpError { v6: true, icmp_type: 1, code: 1, quoted } => {
                assert_eq!((quoted.src, quoted.dst, quoted.proto), (v6(1), v6(2), 6));
                assert_eq!((quoted.sport, quoted.dport, quoted.tcp_seq), (40002, 22, Some(0xdeadbeef)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(checksums_ok(&ICMP6_UNREACH_TCP));

        let r = parse_reply(&SCTP_INIT).unwrap();
        assert_eq!(
            r.body,
            ReplyBody::Sctp { sport: 5000, dport: 80, vtag: 0, first_chunk: 1, init_tag: Some(0x11223344) }
        );
        assert!(checksums_ok(&SCTP_INIT));

        // An echo request is not a reply to us: Other.
        assert_eq!(parse_reply(&VLAN_FRAME[18..]).unwrap().body, ReplyBody::Other { proto: 1 });
        assert_eq!(parse_reply(&ICMP6_NS).unwrap().body, ReplyBody::Other { proto: 58 });
    }

    #[test]
    fn icmp_replies_and_quotes() {
        let mut buf = [0u8; 64];
        // Echo reply.
        let mut m = [0u8; 12];
        icmpv4::Repr::EchoReply { ident: 5, seq_no: 6, data: b"abcd" }.emit(&mut m).unwrap();
        let ip = ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 2),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            protocol: 1,
            payload_len: 12,
            ttl: 50,
            ident: 0,
            tos: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        ip.emit(&mut buf).unwrap();
        buf[20..32].copy_from_slice(&m);
        assert_eq!(parse_reply(&buf[..32]).unwrap().body, ReplyBody::IcmpEcho { id: 5, seq: 6 });
        assert!(checksums_ok(&buf[..32]));
        buf[30] ^= 1;
        assert!(!checksums_ok(&buf[..32]));
        // Timestamp and mask replies.
        let mut m = [0u8; 20];
        icmpv4::Repr::Timestamp { reply: true, ident: 1, seq_no: 2, originate: 3, receive: 4, transmit: 5 }
            .emit(&mut m)
            .unwrap();
        ipv4::Repr { payload_len: 20, ..ip }.emit(&mut buf).unwrap();
        buf[20..40].copy_from_slice(&m);
        assert_eq!(parse_reply(&buf[..40]).unwrap().body, ReplyBody::IcmpTimestampReply { id: 1, seq: 2 });
        let mut m = [0u8; 12];
        icmpv4::Repr::AddressMask { reply: true, ident: 3, seq_no: 4, mask: 0xffffff00 }.emit(&mut m).unwrap();
        ipv4::Repr { payload_len: 12, ..ip }.emit(&mut buf).unwrap();
        buf[20..32].copy_from_slice(&m);
        assert_eq!(parse_reply(&buf[..32]).unwrap().body, ReplyBody::IcmpMaskReply { id: 3, seq: 4 });
        // Time exceeded quoting our echo request (only 8 bytes after the header).
        let quote = &VLAN_FRAME[18..46];
        let mut m = [0u8; 36];
        icmpv4::Repr::TimeExceeded { code: 0, data: quote }.emit(&mut m).unwrap();
        ipv4::Repr { payload_len: 36, ..ip }.emit(&mut buf).unwrap();
        buf[20..56].copy_from_slice(&m);
        match parse_reply(&buf[..56]).unwrap().body {
            ReplyBody::IcmpError { v6: false, icmp_type: 11, code: 0, quoted } => {
                assert_eq!((quoted.proto, quoted.icmp_id, quoted.icmp_seq), (1, Some(0x4242), Some(1)));
                assert_eq!((quoted.sport, quoted.dport), (0, 0));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A quote of only the IP header: ports 0.
        let mut m = [0u8; 28];
        icmpv4::Repr::DstUnreachable {
            code: icmpv4::Unreachable::HostProhibited,
            next_hop_mtu: 0,
            data: &ICMP_PORT_UNREACH[28..48],
        }
        .emit(&mut m)
        .unwrap();
        ipv4::Repr { payload_len: 28, ..ip }.emit(&mut buf).unwrap();
        buf[20..48].copy_from_slice(&m);
        match parse_reply(&buf[..48]).unwrap().body {
            ReplyBody::IcmpError { quoted, code: 10, .. } => {
                assert_eq!((quoted.proto, quoted.sport, quoted.dport), (17, 0, 0))
            }
            other => panic!("unexpected {other:?}"),
        }
        // Quote too short for an IP header: error.
        let mut m = [0u8; 18];
        icmpv4::Repr::TimeExceeded { code: 0, data: &ICMP_PORT_UNREACH[28..38] }.emit(&mut m).unwrap();
        ipv4::Repr { payload_len: 18, ..ip }.emit(&mut buf).unwrap();
        buf[20..38].copy_from_slice(&m);
        assert!(parse_reply(&buf[..38]).is_err());
        // Non-first fragment: Other, and no L4 parse.
        ipv4::Repr { payload_len: 8, frag_offset: 8, protocol: 6, ..ip }.emit(&mut buf).unwrap();
        assert_eq!(parse_reply(&buf[..28]).unwrap().body, ReplyBody::Other { proto: 6 });
        assert!(checksums_ok(&buf[..28]));
    }

    #[test]
    fn hostile_replies() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[0x45]).is_err());
        assert!(parse_reply(&[0x15; 40]).is_err());
        assert!(!checksums_ok(&[]));
        // TCP data offset beyond the segment.
        let mut b = TCP_SYN_V4;
        b[32] = 0xf0;
        assert!(parse_reply(&b).is_err());
        // Truncated total length.
        assert!(parse_reply(&TCP_SYN_V4[..59]).is_err());
        // Corrupt checksum: parse ok, checksums_ok false.
        let mut b = TCP_SYN_V4;
        b[59] ^= 0xff;
        assert!(parse_reply(&b).is_ok());
        assert!(!checksums_ok(&b));
        let mut b = SCTP_INIT;
        b[51] ^= 1;
        assert!(!checksums_ok(&b));
        let mut b = TCP_V6;
        b[7] = 1;
        assert!(checksums_ok(&b)); // hop limit is not covered
        b[30] ^= 1;
        assert!(!checksums_ok(&b));
    }
}
