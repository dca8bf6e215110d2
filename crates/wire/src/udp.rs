//! UDP datagrams (RFC 768): checked view, checksum verify/fill with the IPv4
//! or IPv6 pseudo-header, and a `Repr` builder (a computed checksum of zero is
//! sent as 0xffff).

use std::net::IpAddr;

use crate::checksum::transport_sum;
use crate::{ensure_room, ip_proto, rd16, sub, sub_mut, wr16, Result, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use crate::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// A checked view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking that 8 <= length field <= buffer length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("udp header"));
        }
        let len = usize::from(rd16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(WireError::BadLength("udp length"));
        }
        if len > b.len() {
            return Err(WireError::Truncated("udp length"));
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

    /// Source port.
    pub fn src_port(&self) -> u16 {
        rd16(self.b(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        rd16(self.b(), field::DST_PORT)
    }

    /// Length field (header plus payload).
    pub fn len(&self) -> usize {
        usize::from(rd16(self.b(), field::LENGTH))
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }

    /// Checksum field (0 means "not computed", allowed over IPv4 only).
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), field::CHECKSUM)
    }

    /// The payload, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        sub(self.b(), HEADER_LEN, self.len())
    }

    /// Whether the checksum is correct (a zero checksum passes over IPv4).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if src.is_ipv4() && dst.is_ipv4() && self.checksum() == 0 {
            return true;
        }
        transport_sum(src, dst, ip_proto::UDP, sub(self.b(), 0, self.len())).is_ok_and(|c| c.sum16() == 0xffff)
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The payload, borrowed for the buffer's lifetime.
    pub fn payload_slice(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer;
        sub(b, HEADER_LEN, self.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Recomputes and stores the checksum (0 is stored as 0xffff).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) -> Result<()> {
        let len = self.len();
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = transport_sum(src, dst, ip_proto::UDP, sub(self.buffer.as_ref(), 0, len))?.finish();
        wr16(self.buffer.as_mut(), field::CHECKSUM, if c == 0 { 0xffff } else { c });
        Ok(())
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        sub_mut(self.buffer.as_mut(), HEADER_LEN, len)
    }
}

/// A parsed or to-be-emitted UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Summarises a checked datagram (the checksum is not verified).
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Self> {
        Ok(Self { src_port: p.src_port(), dst_port: p.dst_port(), payload: p.payload_slice() })
    }

    /// Datagram length this repr emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the whole datagram with its checksum at the start of `buf`;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize> {
        let len = self.buffer_len();
        let len16 = u16::try_from(len).map_err(|_| WireError::BadLength("udp length"))?;
        ensure_room(len, buf.len())?;
        let d = sub_mut(buf, 0, len);
        wr16(d, field::SRC_PORT, self.src_port);
        wr16(d, field::DST_PORT, self.dst_port);
        wr16(d, field::LENGTH, len16);
        wr16(d, field::CHECKSUM, 0);
        sub_mut(d, HEADER_LEN, len).copy_from_slice(self.payload);
        let c = transport_sum(src, dst, ip_proto::UDP, d)?.finish();
        wr16(d, field::CHECKSUM, if c == 0 { 0xffff } else { c });
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::UDP_DNS_V4;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    #[test]
    fn dns_query_both_ways() {
        let d = &UDP_DNS_V4[20..];
        let p = Packet::new_checked(d).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len(), p.checksum()), (53000, 53, 37, 0x30f4));
        assert_eq!(&p.payload()[..2], &[0xab, 0xcd]);
        assert!(p.verify_checksum(v4(1), v4(53)));
        assert!(!p.verify_checksum(v4(1), v4(54)));
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.payload.len(), 29);
        let mut out = [0u8; 37];
        assert_eq!(r.emit(&mut out, v4(1), v4(53)).unwrap(), 37);
        assert_eq!(out, *d);
    }

    #[test]
    fn zero_checksum_becomes_ffff() {
        // Pick a payload making the sum 0xffff, so the computed checksum is 0.
        // Pseudo-header + header with zero payload: find the 2-byte payload by
        // solving with a naive one's-complement sum.
        let (src, dst) = (v4(1), v4(2));
        let mut base = Repr { src_port: 1, dst_port: 2, payload: &[0, 0] };
        let mut out = [0u8; 10];
        base.emit(&mut out, src, dst).unwrap();
        let c = u16::from_be_bytes([out[6], out[7]]);
        // Adding word w to the data lowers the complement by w; choose w = c.
        let w = c.to_be_bytes();
        base.payload = &w;
        base.emit(&mut out, src, dst).unwrap();
        assert_eq!(&out[6..8], &[0xff, 0xff]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        // Zero checksum is accepted over IPv4 but not IPv6.
        let mut z = out;
        z[6] = 0;
        z[7] = 0;
        assert!(Packet::new_checked(&z[..]).unwrap().verify_checksum(src, dst));
        let s6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert!(!Packet::new_checked(&z[..]).unwrap().verify_checksum(s6, s6));
        let mut p = Packet::new_checked(&mut z[..]).unwrap();
        p.fill_checksum(s6, s6).unwrap();
        p.set_src_port(7);
        p.set_dst_port(8);
        p.fill_checksum(s6, s6).unwrap();
        assert!(p.verify_checksum(s6, s6));
        assert_eq!(p.payload_mut().len(), 2);
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&UDP_DNS_V4[20..27]).is_err());
        assert!(Packet::new_checked(&UDP_DNS_V4[20..56]).is_err()); // length > buffer
        let mut b = [0u8; 8];
        b[5] = 7; // length < 8
        assert!(Packet::new_checked(&b[..]).is_err());
        let big = vec![0u8; 70_000];
        assert!(Repr { src_port: 1, dst_port: 1, payload: &big }.emit(&mut vec![0; 70_008], v4(1), v4(2)).is_err());
        assert!(Repr { src_port: 1, dst_port: 1, payload: &[] }.emit(&mut [0; 7], v4(1), v4(2)).is_err());
    }
}
