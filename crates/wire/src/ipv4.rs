//! IPv4 headers (RFC 791): checked view including options and fragment
//! fields, header checksum verify/fill, a `Repr` that emits an option-less
//! header, and a lenient parser for headers quoted inside ICMP errors.

use std::net::Ipv4Addr;

use crate::checksum::{internet_checksum, Checksum};
use crate::{ensure_room, rd16, rd8, rd_arr, sub, sub_mut, tail, wr16, wr8, wr_bytes, Result, WireError};

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use crate::Field;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A checked view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking: version 4, IHL >= 5, the header fits, and
    /// IHL*4 <= total length <= buffer length. Bytes past the total length
    /// (e.g. Ethernet padding) are ignored by [`Packet::payload`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("ipv4 header"));
        }
        let version = rd8(b, field::VER_IHL) >> 4;
        if version != 4 {
            return Err(WireError::BadVersion(version));
        }
        let hl = usize::from(rd8(b, field::VER_IHL) & 0x0f) * 4;
        if hl < HEADER_LEN {
            return Err(WireError::BadLength("ipv4 ihl"));
        }
        if hl > b.len() {
            return Err(WireError::Truncated("ipv4 options"));
        }
        let total = usize::from(rd16(b, field::LENGTH));
        if total < hl {
            return Err(WireError::BadLength("ipv4 total length"));
        }
        if total > b.len() {
            return Err(WireError::Truncated("ipv4 total length"));
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

    /// Version (always 4 after the check).
    pub fn version(&self) -> u8 {
        rd8(self.b(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(rd8(self.b(), field::VER_IHL) & 0x0f) * 4
    }

    /// Type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        rd8(self.b(), field::TOS)
    }

    /// Total length field.
    pub fn total_len(&self) -> usize {
        usize::from(rd16(self.b(), field::LENGTH))
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        rd16(self.b(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        rd16(self.b(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        rd16(self.b(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (rd16(self.b(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this is any fragment (MF set or a nonzero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        rd8(self.b(), field::TTL)
    }

    /// Protocol number (see [`crate::ip_proto`]).
    pub fn protocol(&self) -> u8 {
        rd8(self.b(), field::PROTOCOL)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd_arr::<4>(self.b(), field::SRC))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd_arr::<4>(self.b(), field::DST))
    }

    /// Raw option bytes (between byte 20 and the header length).
    pub fn options(&self) -> &[u8] {
        sub(self.b(), HEADER_LEN, self.header_len())
    }

    /// The payload: from the header length to the total length.
    pub fn payload(&self) -> &[u8] {
        sub(self.b(), self.header_len(), self.total_len())
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        Checksum::new().add_bytes(sub(self.b(), 0, self.header_len())).sum16() == 0xffff
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The payload, borrowed for the buffer's lifetime.
    pub fn payload_slice(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer;
        sub(b, self.header_len(), self.total_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::TTL, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::PROTOCOL, v);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, v: u8) {
        wr8(self.buffer.as_mut(), field::TOS, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        wr_bytes(self.buffer.as_mut(), field::SRC, &a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        wr_bytes(self.buffer.as_mut(), field::DST, &a.octets());
    }

    /// Sets DF, MF and the fragment offset (in bytes; must be a multiple of 8
    /// below 65536).
    pub fn set_fragment(&mut self, dont_frag: bool, more_frags: bool, offset_bytes: u16) -> Result<()> {
        if !offset_bytes.is_multiple_of(8) {
            return Err(WireError::BadLength("ipv4 fragment offset"));
        }
        let mut v = offset_bytes >> 3;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        wr16(self.buffer.as_mut(), field::FLG_OFF, v);
        Ok(())
    }

    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = internet_checksum(sub(self.buffer.as_ref(), 0, hl));
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), self.total_len());
        sub_mut(self.buffer.as_mut(), hl, total)
    }
}

/// A parsed or to-be-emitted IPv4 header (options are not represented;
/// [`Repr::emit`] writes a 20-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Type-of-service byte.
    pub tos: u8,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_offset: u16,
}

impl Repr {
    /// Summarises a checked packet. The checksum is not verified (see
    /// [`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len(),
            ttl: p.ttl(),
            ident: p.ident(),
            tos: p.tos(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }

    /// Length of the header this repr emits (20).
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with a correct checksum at the start of `buf`
    /// (the payload is not written); returns 20.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        ensure_room(HEADER_LEN, buf.len())?;
        let total =
            u16::try_from(HEADER_LEN + self.payload_len).map_err(|_| WireError::BadLength("ipv4 total length"))?;
        if !self.frag_offset.is_multiple_of(8) {
            return Err(WireError::BadLength("ipv4 fragment offset"));
        }
        let hdr = sub_mut(buf, 0, HEADER_LEN);
        wr8(hdr, field::VER_IHL, 0x45);
        wr8(hdr, field::TOS, self.tos);
        wr16(hdr, field::LENGTH, total);
        wr16(hdr, field::IDENT, self.ident);
        let mut fo = self.frag_offset >> 3;
        if self.dont_frag {
            fo |= FLAG_DF;
        }
        if self.more_frags {
            fo |= FLAG_MF;
        }
        wr16(hdr, field::FLG_OFF, fo);
        wr8(hdr, field::TTL, self.ttl);
        wr8(hdr, field::PROTOCOL, self.protocol);
        wr16(hdr, field::CHECKSUM, 0);
        wr_bytes(hdr, field::SRC, &self.src_addr.octets());
        wr_bytes(hdr, field::DST, &self.dst_addr.octets());
        let c = internet_checksum(hdr);
        wr16(hdr, field::CHECKSUM, c);
        Ok(HEADER_LEN)
    }
}

/// An IPv4 header quoted inside an ICMP error, parsed leniently: the quote is
/// usually cut short, so the total length is not required to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedHeader<'a> {
    /// Source address of the original packet.
    pub src_addr: Ipv4Addr,
    /// Destination address of the original packet.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the original packet.
    pub protocol: u8,
    /// TTL as the erroring router saw it.
    pub ttl: u8,
    /// Identification of the original packet.
    pub ident: u16,
    /// Total length claimed by the original header.
    pub total_len: u16,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// The quoted bytes after the header (at most up to the claimed total length).
    pub payload: &'a [u8],
}

/// Parses an IPv4 header quoted inside an ICMP error: version 4, IHL >= 5 and
/// the header itself must fit; the payload is whatever follows.
pub fn parse_quoted(buf: &[u8]) -> Result<QuotedHeader<'_>> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Truncated("quoted ipv4 header"));
    }
    let version = rd8(buf, field::VER_IHL) >> 4;
    if version != 4 {
        return Err(WireError::BadVersion(version));
    }
    let hl = usize::from(rd8(buf, field::VER_IHL) & 0x0f) * 4;
    if hl < HEADER_LEN {
        return Err(WireError::BadLength("quoted ipv4 ihl"));
    }
    if hl > buf.len() {
        return Err(WireError::Truncated("quoted ipv4 options"));
    }
    let total_len = rd16(buf, field::LENGTH);
    let total = usize::from(total_len);
    let payload = if total >= hl && total <= buf.len() { sub(buf, hl, total) } else { tail(buf, hl) };
    Ok(QuotedHeader {
        src_addr: Ipv4Addr::from(rd_arr::<4>(buf, field::SRC)),
        dst_addr: Ipv4Addr::from(rd_arr::<4>(buf, field::DST)),
        protocol: rd8(buf, field::PROTOCOL),
        ttl: rd8(buf, field::TTL),
        ident: rd16(buf, field::IDENT),
        total_len,
        frag_offset: (rd16(buf, field::FLG_OFF) & OFFSET_MASK) << 3,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ICMP_PORT_UNREACH, TCP_SYN_V4, UDP_DNS_V4};

    #[test]
    fn parse_syn_header() {
        let p = Packet::new_checked(&TCP_SYN_V4[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0x1234);
        assert!(!p.dont_frag() && !p.more_frags() && p.frag_offset() == 0 && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.checksum(), 0x7c51);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(p.payload().len(), 40);
        assert!(p.options().is_empty());
    }

    #[test]
    fn emit_matches_fixture() {
        let p = Packet::new_checked(&UDP_DNS_V4[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 37);
        let mut out = [0u8; 20];
        assert_eq!(r.emit(&mut out).unwrap(), 20);
        assert_eq!(out, UDP_DNS_V4[..20]);
        let r2 = Repr { ttl: 64, ident: 0x1234, protocol: 6, payload_len: 40, ..r };
        let r2 = Repr { src_addr: Ipv4Addr::new(192, 0, 2, 1), dst_addr: Ipv4Addr::new(198, 51, 100, 2), ..r2 };
        r2.emit(&mut out).unwrap();
        assert_eq!(out, TCP_SYN_V4[..20]);
    }

    #[test]
    fn options_fragments_and_setters() {
        // 24-byte header with a 4-byte option (NOP NOP NOP EOL), DF + offset 1480, MF.
        let mut buf = [0u8; 28];
        buf[0] = 0x46;
        buf[2..4].copy_from_slice(&28u16.to_be_bytes());
        buf[20..24].copy_from_slice(&[1, 1, 1, 0]);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_fragment(true, true, 1480).unwrap();
        assert!(p.set_fragment(false, false, 3).is_err());
        p.set_ttl(3);
        p.set_protocol(17);
        p.set_ident(77);
        p.set_tos(0x10);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.fill_checksum();
        p.payload_mut().copy_from_slice(&[9, 9, 9, 9]);
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert!(p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
        assert_eq!(&buf[6..8], &[0x60, 0xb9]);
        let r = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!((r.ttl, r.protocol, r.ident, r.tos, r.payload_len), (3, 17, 77, 0x10, 4));
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&TCP_SYN_V4[..19]).is_err());
        let mut b = TCP_SYN_V4;
        b[0] = 0x44; // IHL 4
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadLength("ipv4 ihl"));
        b[0] = 0x4f; // IHL 15 = 60 bytes: fits the 60-byte buffer but exceeds total length? total 60 = ok
        assert!(Packet::new_checked(&b[..]).is_ok());
        assert!(Packet::new_checked(&b[..40]).is_err()); // IHL > buffer
        let mut b = TCP_SYN_V4;
        b[2..4].copy_from_slice(&61u16.to_be_bytes()); // total > buffer
        assert!(Packet::new_checked(&b[..]).is_err());
        b[2..4].copy_from_slice(&19u16.to_be_bytes()); // total < header
        assert!(Packet::new_checked(&b[..]).is_err());
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), WireError::BadVersion(6));
        let r = Repr {
            src_addr: Ipv4Addr::LOCALHOST,
            dst_addr: Ipv4Addr::LOCALHOST,
            protocol: 6,
            payload_len: 65_516,
            ttl: 1,
            ident: 0,
            tos: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        assert!(r.emit(&mut [0u8; 20]).is_err());
        assert!(Repr { payload_len: 0, ..r }.emit(&mut [0u8; 19]).is_err());
    }

    #[test]
    fn quoted_header() {
        let q = parse_quoted(&ICMP_PORT_UNREACH[28..]).unwrap();
        assert_eq!(q.src_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(q.dst_addr, Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(q.protocol, 17);
        assert_eq!(q.ident, 99);
        assert_eq!(q.payload, &ICMP_PORT_UNREACH[48..]);
        assert!(parse_quoted(&ICMP_PORT_UNREACH[28..47]).is_err());
    }
}
