//! IPv6 headers (RFC 8200): checked view of the fixed header, a bounded walk
//! over extension headers (hop-by-hop, routing, fragment, destination options,
//! AH) that yields the final next-header and payload offset, a `Repr` that
//! emits the fixed header, and a lenient parser for headers quoted inside
//! ICMPv6 errors.

use std::net::Ipv6Addr;

use crate::ip_proto;
use crate::{ensure_room, rd16, rd32, rd8, rd_arr, sub, sub_mut, tail, wr16, wr32, wr8, wr_bytes, Result, WireError};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// The most extension headers [`walk_extension_headers`] will step over.
pub const MAX_EXT_HEADERS: usize = 8;

mod field {
    use crate::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    // Inside an extension header.
    pub const EXT_NEXT: usize = 0;
    pub const EXT_LEN: usize = 1;
    pub const FRAG_OFF: crate::Field = 2..4;
    pub const FRAG_IDENT: crate::Field = 4..8;
}

/// Fragment-header details found while walking extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// The end of an extension-header walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The final next-header value (the upper-layer protocol, or 59 / 50).
    pub next_header: u8,
    /// Offset of the upper-layer data from the start of the walked slice.
    pub offset: usize,
    /// How many extension headers were stepped over.
    pub ext_headers: usize,
    /// The fragment header, if one was seen.
    pub fragment: Option<FragmentInfo>,
}

/// Whether `nh` is an extension header this crate steps over.
pub fn is_extension_header(nh: u8) -> bool {
    matches!(nh, ip_proto::HOPOPT | ip_proto::IPV6_ROUTE | ip_proto::IPV6_FRAG | ip_proto::IPV6_OPTS | ip_proto::AH)
}

/// Walks the extension headers at the start of `data` (an IPv6 payload),
/// starting from the fixed header's `next_header`.
///
/// Stops at the first non-extension header (including ESP and "no next
/// header"). A header that does not fit in `data` is
/// [`WireError::Truncated`]; more than [`MAX_EXT_HEADERS`] headers is
/// [`WireError::TooMany`].
pub fn walk_extension_headers(next_header: u8, data: &[u8]) -> Result<UpperLayer> {
    let mut nh = next_header;
    let mut off = 0usize;
    let mut fragment = None;
    for count in 0..=MAX_EXT_HEADERS {
        if !is_extension_header(nh) {
            return Ok(UpperLayer { next_header: nh, offset: off, ext_headers: count, fragment });
        }
        if count == MAX_EXT_HEADERS {
            break;
        }
        let hdr = tail(data, off);
        if hdr.len() < 8 {
            return Err(WireError::Truncated("ipv6 extension header"));
        }
        let len = match nh {
            ip_proto::IPV6_FRAG => {
                let fo = rd16(hdr, field::FRAG_OFF);
                fragment = Some(FragmentInfo {
                    offset: fo & 0xfff8,
                    more_frags: fo & 1 != 0,
                    ident: rd32(hdr, field::FRAG_IDENT),
                });
                8
            }
            ip_proto::AH => (usize::from(rd8(hdr, field::EXT_LEN)) + 2) * 4,
            _ => (usize::from(rd8(hdr, field::EXT_LEN)) + 1) * 8,
        };
        if len > hdr.len() {
            return Err(WireError::Truncated("ipv6 extension header"));
        }
        nh = rd8(hdr, field::EXT_NEXT);
        off += len;
    }
    Err(WireError::TooMany("ipv6 extension headers"))
}

/// A checked view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking: version 6, the fixed header fits, and
    /// 40 + payload length <= buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("ipv6 header"));
        }
        let version = rd8(b, 0) >> 4;
        if version != 6 {
            return Err(WireError::BadVersion(version));
        }
        if HEADER_LEN + usize::from(rd16(b, field::PAYLOAD_LEN)) > b.len() {
            return Err(WireError::Truncated("ipv6 payload length"));
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

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((rd32(self.b(), field::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        rd32(self.b(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length field.
    pub fn payload_len(&self) -> usize {
        usize::from(rd16(self.b(), field::PAYLOAD_LEN))
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        rd8(self.b(), field::NEXT_HEADER)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        rd8(self.b(), field::HOP_LIMIT)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(rd_arr::<16>(self.b(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(rd_arr::<16>(self.b(), field::DST))
    }

    /// The payload (extension headers included), bounded by the payload length.
    pub fn payload(&self) -> &[u8] {
        sub(self.b(), HEADER_LEN, HEADER_LEN + self.payload_len())
    }

    /// Walks the extension headers. The returned offset is counted from the
    /// start of the IPv6 header.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let mut u = walk_extension_headers(self.next_header(), self.payload())?;
        u.offset += HEADER_LEN;
        Ok(u)
    }

    /// The upper-layer protocol and its bytes, after the extension headers.
    pub fn upper_layer_payload(&self) -> Result<(u8, &[u8])> {
        let u = self.upper_layer()?;
        Ok((u.next_header, sub(self.b(), u.offset, HEADER_LEN + self.payload_len())))
    }
}

impl<'a> Packet<&'a [u8]> {
    /// Like [`Packet::upper_layer_payload`], borrowed for the buffer's lifetime.
    pub fn upper_layer_slice(&self) -> Result<(UpperLayer, &'a [u8])> {
        let b: &'a [u8] = self.buffer;
        let u = self.upper_layer()?;
        Ok((u, sub(b, u.offset, HEADER_LEN + self.payload_len())))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::HOP_LIMIT, v);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::NEXT_HEADER, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        wr_bytes(self.buffer.as_mut(), field::SRC, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        wr_bytes(self.buffer.as_mut(), field::DST, &a.octets());
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len();
        sub_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

/// A parsed or to-be-emitted fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length (extension headers included).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Summarises a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }

    /// Length of the header this repr emits (40).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte header at the start of `buf`; returns 40.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        ensure_room(HEADER_LEN, buf.len())?;
        let plen = u16::try_from(self.payload_len).map_err(|_| WireError::BadLength("ipv6 payload length"))?;
        if self.flow_label > 0x000f_ffff {
            return Err(WireError::BadLength("ipv6 flow label"));
        }
        wr32(buf, field::VER_TC_FLOW, (6 << 28) | (u32::from(self.traffic_class) << 20) | self.flow_label);
        wr16(buf, field::PAYLOAD_LEN, plen);
        wr8(buf, field::NEXT_HEADER, self.next_header);
        wr8(buf, field::HOP_LIMIT, self.hop_limit);
        wr_bytes(buf, field::SRC, &self.src_addr.octets());
        wr_bytes(buf, field::DST, &self.dst_addr.octets());
        Ok(HEADER_LEN)
    }
}

/// An IPv6 header quoted inside an ICMPv6 error, parsed leniently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedHeader<'a> {
    /// Source address of the original packet.
    pub src_addr: Ipv6Addr,
    /// Destination address of the original packet.
    pub dst_addr: Ipv6Addr,
    /// Hop limit as the erroring router saw it.
    pub hop_limit: u8,
    /// Upper-layer protocol, after the extension headers that fit in the
    /// quote; when the chain is cut short, the last header type reached.
    pub next_header: u8,
    /// The quoted upper-layer bytes (empty when the chain is cut short).
    pub payload: &'a [u8],
}

/// Parses an IPv6 header quoted inside an ICMPv6 error: version 6 and the
/// fixed header must fit; the payload length is not required to.
pub fn parse_quoted(buf: &[u8]) -> Result<QuotedHeader<'_>> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated("quoted ipv6 header"));
    }
    let version = rd8(buf, 0) >> 4;
    if version != 6 {
        return Err(WireError::BadVersion(version));
    }
    let claimed = HEADER_LEN + usize::from(rd16(buf, field::PAYLOAD_LEN));
    let body = if claimed <= buf.len() { sub(buf, HEADER_LEN, claimed) } else { tail(buf, HEADER_LEN) };
    let first = rd8(buf, field::NEXT_HEADER);
    let (next_header, payload) = match walk_extension_headers(first, body) {
        Ok(u) => (u.next_header, tail(body, u.offset)),
        Err(_) => (first, &[][..]),
    };
    Ok(QuotedHeader {
        src_addr: Ipv6Addr::from(rd_arr::<16>(buf, field::SRC)),
        dst_addr: Ipv6Addr::from(rd_arr::<16>(buf, field::DST)),
        hop_limit: rd8(buf, field::HOP_LIMIT),
        next_header,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::TCP_V6;

    fn addr(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
    }

    #[test]
    fn parse_fixture() {
        let p = Packet::new_checked(&TCP_V6[..]).unwrap();
        assert_eq!(p.payload_len(), 20);
        assert_eq!(p.next_header(), 6);
        assert_eq!(p.hop_limit(), 60);
        assert_eq!(p.src_addr(), addr(1));
        assert_eq!(p.dst_addr(), addr(2));
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        let u = p.upper_layer().unwrap();
        assert_eq!((u.next_header, u.offset, u.ext_headers, u.fragment), (6, 40, 0, None));
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 40];
        assert_eq!(r.emit(&mut out).unwrap(), 40);
        assert_eq!(out, TCP_V6[..40]);
    }

    /// Builds a packet: fixed header with `first` next-header, then `exts`.
    fn with_exts(first: u8, exts: &[u8]) -> Vec<u8> {
        let r = Repr {
            src_addr: addr(1),
            dst_addr: addr(2),
            next_header: first,
            payload_len: exts.len(),
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        };
        let mut v = vec![0u8; 40];
        r.emit(&mut v).unwrap();
        v.extend_from_slice(exts);
        v
    }

    #[test]
    fn walks_chain() {
        // hop-by-hop (8) -> dest opts (16) -> fragment (8) -> AH (12) -> UDP
        let mut exts = vec![60, 0, 1, 4, 0, 0, 0, 0];
        exts.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        exts.extend_from_slice(&[51, 0, 0x05, 0x91, 0xde, 0xad, 0xbe, 0xef]);
        exts.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        exts.extend_from_slice(&[0x12, 0x34, 0, 53, 0, 8, 0, 0]);
        let pkt = with_exts(0, &exts);
        let p = Packet::new_checked(&pkt[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        let u = p.upper_layer().unwrap();
        assert_eq!(u.next_header, 17);
        assert_eq!(u.offset, 40 + 8 + 16 + 8 + 12);
        assert_eq!(u.ext_headers, 4);
        assert_eq!(u.fragment, Some(FragmentInfo { offset: 0x0590, more_frags: true, ident: 0xdeadbeef }));
        let (nh, payload) = p.upper_layer_payload().unwrap();
        assert_eq!((nh, payload.len()), (17, 8));
    }

    #[test]
    fn hostile_chains() {
        // Truncated: hop-by-hop claims 16 bytes, only 8 present.
        let pkt = with_exts(0, &[6, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&pkt[..]).unwrap().upper_layer(),
            Err(WireError::Truncated("ipv6 extension header"))
        );
        // Fewer than 8 bytes for an extension header.
        let pkt = with_exts(43, &[6, 0, 0, 0]);
        assert!(Packet::new_checked(&pkt[..]).unwrap().upper_layer().is_err());
        // No bytes at all.
        let pkt = with_exts(60, &[]);
        assert!(Packet::new_checked(&pkt[..]).unwrap().upper_layer().is_err());
        // A long chain of destination-options headers is bounded.
        let mut exts = Vec::new();
        for _ in 0..20 {
            exts.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let pkt = with_exts(60, &exts);
        assert_eq!(
            Packet::new_checked(&pkt[..]).unwrap().upper_layer(),
            Err(WireError::TooMany("ipv6 extension headers"))
        );
        // Exactly MAX_EXT_HEADERS is fine.
        let mut exts = Vec::new();
        for i in 0..MAX_EXT_HEADERS {
            exts.extend_from_slice(&[if i + 1 == MAX_EXT_HEADERS { 59 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        let pkt = with_exts(60, &exts);
        assert_eq!(Packet::new_checked(&pkt[..]).unwrap().upper_layer().unwrap().next_header, 59);
        // Fixed header problems.
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&TCP_V6[..39]).is_err());
        assert!(Packet::new_checked(&TCP_V6[..59]).is_err());
        let mut b = TCP_V6;
        b[0] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadVersion(4));
        let r = Repr::parse(&Packet::new_checked(&TCP_V6[..]).unwrap()).unwrap();
        assert!(Repr { payload_len: 70_000, ..r }.emit(&mut [0u8; 40]).is_err());
        assert!(Repr { flow_label: 1 << 20, ..r }.emit(&mut [0u8; 40]).is_err());
        assert!(r.emit(&mut [0u8; 39]).is_err());
    }

    #[test]
    fn setters_and_quoted() {
        let mut b = TCP_V6;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_hop_limit(1);
        p.set_next_header(17);
        p.set_src_addr(addr(9));
        p.set_dst_addr(addr(10));
        p.payload_mut()[0] = 0xff;
        assert_eq!((p.hop_limit(), p.next_header(), p.src_addr(), p.dst_addr()), (1, 17, addr(9), addr(10)));
        let q = parse_quoted(&TCP_V6[..48]).unwrap();
        assert_eq!((q.next_header, q.payload.len(), q.hop_limit), (6, 8, 60));
        assert!(parse_quoted(&TCP_V6[..39]).is_err());
        let pkt = with_exts(0, &[6, 1, 0, 0, 0, 0, 0, 0]);
        let q = parse_quoted(&pkt).unwrap();
        assert_eq!((q.next_header, q.payload.len()), (0, 0));
    }
}
