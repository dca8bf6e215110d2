//! ICMP for IPv6 (RFC 4443, RFC 4861): echo, destination unreachable, packet
//! too big, time exceeded, and neighbour solicitation/advertisement with the
//! source/target link-layer address options; checksum with the IPv6
//! pseudo-header; access to the quoted original packet of error messages.

use std::net::{IpAddr, Ipv6Addr};

use crate::checksum::transport_sum;
use crate::ethernet::MacAddr;
use crate::ipv6;
use crate::{
    ensure_room, ip_proto, rd16, rd32, rd8, rd_arr, sub_mut, tail, wr16, wr32, wr8, wr_bytes, Result, WireError,
};

/// Length of the fixed ICMPv6 header.
pub const HEADER_LEN: usize = 8;
/// Length of a neighbour solicitation/advertisement before its options.
pub const ND_LEN: usize = 24;
/// The most neighbour-discovery options the option walk will visit.
pub const MAX_ND_OPTIONS: usize = 64;

/// Message types.
pub mod msg_type {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Neighbour-discovery option types used here.
pub mod nd_option {
    /// Source link-layer address.
    pub const SOURCE_LLADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LLADDR: u8 = 2;
}

/// Whether `t` is an error message quoting the offending packet.
pub fn is_error(t: u8) -> bool {
    t < 128
}

mod field {
    use crate::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ: Field = 6..8;
    pub const REST: Field = 4..8;
    pub const MTU: Field = 4..8;
    pub const NA_FLAGS: usize = 4;
    pub const TARGET: Field = 8..24;
}

/// Neighbour-advertisement flag: sender is a router.
pub const NA_ROUTER: u8 = 0x80;
/// Neighbour-advertisement flag: solicited.
pub const NA_SOLICITED: u8 = 0x40;
/// Neighbour-advertisement flag: override.
pub const NA_OVERRIDE: u8 = 0x20;

/// Walks ND options (type, length in units of 8 bytes) and returns the first
/// link-layer address option of type `want`. A zero length or an option past
/// the end is an error.
fn find_lladdr(opts: &[u8], want: u8) -> Result<Option<MacAddr>> {
    let mut rest = opts;
    let mut found = None;
    for _ in 0..MAX_ND_OPTIONS {
        if rest.is_empty() {
            return Ok(found);
        }
        if rest.len() < 2 {
            return Err(WireError::BadOption("nd option truncated"));
        }
        let len = usize::from(rd8(rest, 1)) * 8;
        if len == 0 {
            return Err(WireError::BadOption("nd option length 0"));
        }
        if len > rest.len() {
            return Err(WireError::BadOption("nd option past end"));
        }
        if found.is_none() && rd8(rest, 0) == want && len == 8 {
            found = Some(rd_arr::<6>(rest, 2..8));
        }
        rest = tail(rest, len);
    }
    if rest.is_empty() {
        Ok(found)
    } else {
        Err(WireError::TooMany("nd options"))
    }
}

/// A checked view of an ICMPv6 message (the buffer is the whole message).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking that the header fits (24 bytes for neighbour
    /// solicitation/advertisement, whose options must also be well-formed).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("icmpv6 message"));
        }
        let t = rd8(b, field::TYPE);
        if t == msg_type::NEIGHBOR_SOLICIT || t == msg_type::NEIGHBOR_ADVERT {
            if b.len() < ND_LEN {
                return Err(WireError::Truncated("icmpv6 neighbour discovery"));
            }
            find_lladdr(tail(b, ND_LEN), 0)?;
        }
        Ok(Self { buffer })
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        rd8(self.b(), field::TYPE)
    }

    /// Code.
    pub fn code(&self) -> u8 {
        rd8(self.b(), field::CODE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn ident(&self) -> u16 {
        rd16(self.b(), field::IDENT)
    }

    /// Echo sequence number.
    pub fn seq_no(&self) -> u16 {
        rd16(self.b(), field::SEQ)
    }

    /// Packet-too-big MTU.
    pub fn mtu(&self) -> u32 {
        rd32(self.b(), field::MTU)
    }

    /// The four bytes after the checksum as one word.
    pub fn rest_of_header(&self) -> u32 {
        rd32(self.b(), field::REST)
    }

    /// Neighbour-advertisement flags byte (see [`NA_ROUTER`] etc.).
    pub fn na_flags(&self) -> u8 {
        rd8(self.b(), field::NA_FLAGS)
    }

    /// Target address of a neighbour solicitation/advertisement.
    pub fn target_addr(&self) -> Option<Ipv6Addr> {
        matches!(self.msg_type(), msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT)
            .then(|| Ipv6Addr::from(rd_arr::<16>(self.b(), field::TARGET)))
    }

    /// The first link-layer address option of the given type (ND messages).
    pub fn lladdr_option(&self, opt_type: u8) -> Option<MacAddr> {
        if !matches!(self.msg_type(), msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT) {
            return None;
        }
        find_lladdr(tail(self.b(), ND_LEN), opt_type).ok().flatten()
    }

    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        tail(self.b(), HEADER_LEN)
    }

    /// For an error message, the quoted original IPv6 header and the
    /// upper-layer bytes after it.
    pub fn quoted(&self) -> Option<ipv6::QuotedHeader<'_>> {
        if !is_error(self.msg_type()) {
            return None;
        }
        ipv6::parse_quoted(self.data()).ok()
    }

    /// Whether the checksum is correct for this pseudo-header.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        transport_sum(IpAddr::V6(src), IpAddr::V6(dst), ip_proto::ICMPV6, self.b()).is_ok_and(|c| c.sum16() == 0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::TYPE, v);
    }

    /// Sets the code.
    pub fn set_code(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::CODE, v);
    }

    /// Recomputes and stores the checksum for this pseudo-header.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<()> {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = transport_sum(IpAddr::V6(src), IpAddr::V6(dst), ip_proto::ICMPV6, self.buffer.as_ref())?.finish();
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
        Ok(())
    }
}

/// A parsed or to-be-emitted ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repr<'a> {
    /// Echo request (128).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply (129).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable (1).
    DstUnreachable {
        /// Code (0 no route, 1 prohibited, 3 address unreachable, 4 port unreachable, ...).
        code: u8,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Packet too big (2).
    PacketTooBig {
        /// MTU of the next hop.
        mtu: u32,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Time exceeded (3).
    TimeExceeded {
        /// Code (0 hop limit, 1 reassembly).
        code: u8,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Neighbour solicitation (135).
    NeighborSolicit {
        /// Target address.
        target: Ipv6Addr,
        /// Source link-layer address option.
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement (136).
    NeighborAdvert {
        /// Flags byte ([`NA_ROUTER`], [`NA_SOLICITED`], [`NA_OVERRIDE`]).
        flags: u8,
        /// Target address.
        target: Ipv6Addr,
        /// Target link-layer address option.
        target_lladdr: Option<MacAddr>,
    },
    /// Any other message, kept raw.
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// The four bytes after the checksum.
        rest_of_header: u32,
        /// Bytes after the 8-byte header.
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Summarises a checked message (the checksum is not verified).
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        let data = tail(b, HEADER_LEN);
        Ok(match (p.msg_type(), p.code()) {
            (msg_type::ECHO_REQUEST, 0) => Repr::EchoRequest { ident: p.ident(), seq_no: p.seq_no(), data },
            (msg_type::ECHO_REPLY, 0) => Repr::EchoReply { ident: p.ident(), seq_no: p.seq_no(), data },
            (msg_type::DST_UNREACHABLE, code) if p.rest_of_header() == 0 => Repr::DstUnreachable { code, data },
            (msg_type::PACKET_TOO_BIG, 0) => Repr::PacketTooBig { mtu: p.mtu(), data },
            (msg_type::TIME_EXCEEDED, code) if p.rest_of_header() == 0 => Repr::TimeExceeded { code, data },
            (msg_type::NEIGHBOR_SOLICIT, 0) if p.rest_of_header() == 0 => Repr::NeighborSolicit {
                target: Ipv6Addr::from(rd_arr::<16>(b, field::TARGET)),
                source_lladdr: find_lladdr(tail(b, ND_LEN), nd_option::SOURCE_LLADDR)?,
            },
            (msg_type::NEIGHBOR_ADVERT, 0) if p.rest_of_header() & 0x1fff_ffff == 0 => Repr::NeighborAdvert {
                flags: p.na_flags(),
                target: Ipv6Addr::from(rd_arr::<16>(b, field::TARGET)),
                target_lladdr: find_lladdr(tail(b, ND_LEN), nd_option::TARGET_LLADDR)?,
            },
            (msg_type, code) => Repr::Other { msg_type, code, rest_of_header: p.rest_of_header(), data },
        })
    }

    /// Message length this repr emits.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::PacketTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::Other { data, .. } => HEADER_LEN + data.len(),
            Repr::NeighborSolicit { source_lladdr: l, .. } | Repr::NeighborAdvert { target_lladdr: l, .. } => {
                ND_LEN + if l.is_some() { 8 } else { 0 }
            }
        }
    }

    /// Writes the whole message with its checksum at the start of `buf`;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<usize> {
        let len = self.buffer_len();
        ensure_room(len, buf.len())?;
        let m = sub_mut(buf, 0, len);
        let echo = |ident: u16, seq: u16| (u32::from(ident) << 16) | u32::from(seq);
        let (t, code, rest, data): (u8, u8, u32, &[u8]) = match *self {
            Repr::EchoRequest { ident, seq_no, data } => (msg_type::ECHO_REQUEST, 0, echo(ident, seq_no), data),
            Repr::EchoReply { ident, seq_no, data } => (msg_type::ECHO_REPLY, 0, echo(ident, seq_no), data),
            Repr::DstUnreachable { code, data } => (msg_type::DST_UNREACHABLE, code, 0, data),
            Repr::PacketTooBig { mtu, data } => (msg_type::PACKET_TOO_BIG, 0, mtu, data),
            Repr::TimeExceeded { code, data } => (msg_type::TIME_EXCEEDED, code, 0, data),
            Repr::Other { msg_type, code, rest_of_header, data } => (msg_type, code, rest_of_header, data),
            Repr::NeighborSolicit { target, source_lladdr } => {
                emit_nd(m, target, source_lladdr, nd_option::SOURCE_LLADDR);
                (msg_type::NEIGHBOR_SOLICIT, 0, 0, &[])
            }
            Repr::NeighborAdvert { flags, target, target_lladdr } => {
                emit_nd(m, target, target_lladdr, nd_option::TARGET_LLADDR);
                (msg_type::NEIGHBOR_ADVERT, 0, u32::from(flags & 0xe0) << 24, &[])
            }
        };
        wr8(m, field::TYPE, t);
        wr8(m, field::CODE, code);
        wr16(m, field::CHECKSUM, 0);
        wr32(m, field::REST, rest);
        if !data.is_empty() {
            sub_mut(m, HEADER_LEN, len).copy_from_slice(data);
        }
        let c = transport_sum(IpAddr::V6(src), IpAddr::V6(dst), ip_proto::ICMPV6, m)?.finish();
        wr16(m, field::CHECKSUM, c);
        Ok(len)
    }
}

fn emit_nd(m: &mut [u8], target: Ipv6Addr, lladdr: Option<MacAddr>, opt_type: u8) {
    wr_bytes(m, field::TARGET, &target.octets());
    if let Some(mac) = lladdr {
        wr8(m, ND_LEN, opt_type);
        wr8(m, ND_LEN + 1, 1);
        wr_bytes(m, ND_LEN + 2..ND_LEN + 8, &mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ICMP6_ECHO, ICMP6_NA, ICMP6_NS, ICMP6_UNREACH_TCP};

    fn a(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
    }

    #[test]
    fn unreachable_quoting_tcp() {
        let m = &ICMP6_UNREACH_TCP[40..];
        let p = Packet::new_checked(m).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (1, 1, 0x3bd5));
        assert!(p.verify_checksum(a(0xfe), a(1)));
        assert!(!p.verify_checksum(a(0xfe), a(2)));
        let q = p.quoted().unwrap();
        assert_eq!((q.src_addr, q.dst_addr, q.next_header), (a(1), a(2), 6));
        assert_eq!(&q.payload[..8], &[0x9c, 0x42, 0x00, 0x16, 0xde, 0xad, 0xbe, 0xef]);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::DstUnreachable { code: 1, data: &m[8..] });
        let mut out = [0u8; 68];
        assert_eq!(r.emit(&mut out, a(0xfe), a(1)).unwrap(), 68);
        assert_eq!(out, *m);
    }

    #[test]
    fn neighbour_discovery() {
        let ns = &ICMP6_NS[40..];
        let p = Packet::new_checked(ns).unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:2".parse().unwrap();
        assert!(p.verify_checksum(a(1), dst));
        assert_eq!(p.target_addr(), Some(a(2)));
        assert_eq!(p.lladdr_option(nd_option::SOURCE_LLADDR), Some([2, 0, 0, 0, 0, 1]));
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::NeighborSolicit { target: a(2), source_lladdr: Some([2, 0, 0, 0, 0, 1]) });
        let mut out = [0u8; 32];
        r.emit(&mut out, a(1), dst).unwrap();
        assert_eq!(out, *ns);

        let na = &ICMP6_NA[40..];
        let p = Packet::new_checked(na).unwrap();
        assert!(p.verify_checksum(a(2), a(1)));
        assert_eq!(p.na_flags(), NA_SOLICITED | NA_OVERRIDE);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::NeighborAdvert { flags: 0x60, target: a(2), target_lladdr: Some([2, 0, 0, 0, 0, 2]) });
        let mut out = [0u8; 32];
        r.emit(&mut out, a(2), a(1)).unwrap();
        assert_eq!(out, *na);
    }

    #[test]
    fn echo_and_too_big() {
        let e = &ICMP6_ECHO[40..];
        let p = Packet::new_checked(e).unwrap();
        assert!(p.verify_checksum(a(1), a(2)));
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::EchoRequest { ident: 7, seq_no: 9, data: b"abc" });
        let mut out = [0u8; 11];
        r.emit(&mut out, a(1), a(2)).unwrap();
        assert_eq!(out, *e);
        let r = Repr::PacketTooBig { mtu: 1280, data: &[] };
        let mut out = [0u8; 8];
        r.emit(&mut out, a(1), a(2)).unwrap();
        assert_eq!(&out[4..], &[0, 0, 5, 0]);
        let mut p = Packet::new_checked(&mut out[..]).unwrap();
        assert_eq!(p.mtu(), 1280);
        p.set_msg_type(3);
        p.set_code(0);
        assert!(!p.verify_checksum(a(1), a(2)));
        p.fill_checksum(a(1), a(2)).unwrap();
        assert!(p.verify_checksum(a(1), a(2)));
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&ICMP6_NS[40..63]).is_err());
        // ND option with length 0.
        let mut ns = ICMP6_NS;
        ns[65] = 0;
        assert_eq!(Packet::new_checked(&ns[40..]).unwrap_err(), WireError::BadOption("nd option length 0"));
        // ND option past the end.
        let mut ns = ICMP6_NS;
        ns[65] = 2;
        assert!(Packet::new_checked(&ns[40..]).is_err());
        // One stray byte after the options.
        let mut v = ICMP6_NS[40..].to_vec();
        v.push(1);
        assert!(Packet::new_checked(&v[..]).is_err());
        // Too many (well-formed) options is bounded.
        let mut v = ICMP6_NS[40..64].to_vec();
        for _ in 0..(MAX_ND_OPTIONS + 1) {
            v.extend_from_slice(&[9, 1, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(Packet::new_checked(&v[..]).unwrap_err(), WireError::TooMany("nd options"));
        // Quote that is not IPv6.
        let p = Packet::new_checked(&[1, 4, 0, 0, 0, 0, 0, 0, 0x45][..]).unwrap();
        assert!(p.quoted().is_none());
        assert!(Repr::EchoReply { ident: 0, seq_no: 0, data: &[] }.emit(&mut [0u8; 7], a(1), a(2)).is_err());
    }
}
