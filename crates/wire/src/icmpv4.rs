//! ICMP for IPv4 (RFC 792, RFC 950): echo, timestamp and address-mask
//! request/reply, destination unreachable (all codes), time exceeded and the
//! other error messages, with access to the quoted original IP header and the
//! bytes that follow it.

use crate::checksum::{internet_checksum, Checksum};
use crate::ipv4;
use crate::{ensure_room, rd16, rd32, rd8, sub_mut, tail, wr16, wr32, wr8, Result, WireError};

/// Length of the fixed ICMP header (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = 8;

/// Message types.
pub mod msg_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Address mask request.
    pub const ADDRESS_MASK: u8 = 17;
    /// Address mask reply.
    pub const ADDRESS_MASK_REPLY: u8 = 18;
}

/// Whether `t` is an error message that quotes the offending packet.
pub fn is_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DST_UNREACHABLE
            | msg_type::SOURCE_QUENCH
            | msg_type::REDIRECT
            | msg_type::TIME_EXCEEDED
            | msg_type::PARAM_PROBLEM
    )
}

/// Destination-unreachable codes (RFC 792, RFC 1122, RFC 1812).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// 0: network unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtocolUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set.
    FragRequired,
    /// 5: source route failed.
    SourceRouteFailed,
    /// 6: destination network unknown.
    NetUnknown,
    /// 7: destination host unknown.
    HostUnknown,
    /// 8: source host isolated.
    SourceHostIsolated,
    /// 9: network administratively prohibited.
    NetProhibited,
    /// 10: host administratively prohibited.
    HostProhibited,
    /// 11: network unreachable for TOS.
    NetUnreachToS,
    /// 12: host unreachable for TOS.
    HostUnreachToS,
    /// 13: communication administratively prohibited.
    CommProhibited,
    /// 14: host precedence violation.
    HostPrecedenceViolation,
    /// 15: precedence cutoff in effect.
    PrecedenceCutoff,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for Unreachable {
    fn from(c: u8) -> Self {
        use Unreachable::*;
        match c {
            0 => NetUnreachable,
            1 => HostUnreachable,
            2 => ProtocolUnreachable,
            3 => PortUnreachable,
            4 => FragRequired,
            5 => SourceRouteFailed,
            6 => NetUnknown,
            7 => HostUnknown,
            8 => SourceHostIsolated,
            9 => NetProhibited,
            10 => HostProhibited,
            11 => NetUnreachToS,
            12 => HostUnreachToS,
            13 => CommProhibited,
            14 => HostPrecedenceViolation,
            15 => PrecedenceCutoff,
            o => Unknown(o),
        }
    }
}

impl From<Unreachable> for u8 {
    fn from(u: Unreachable) -> u8 {
        use Unreachable::*;
        match u {
            NetUnreachable => 0,
            HostUnreachable => 1,
            ProtocolUnreachable => 2,
            PortUnreachable => 3,
            FragRequired => 4,
            SourceRouteFailed => 5,
            NetUnknown => 6,
            HostUnknown => 7,
            SourceHostIsolated => 8,
            NetProhibited => 9,
            HostProhibited => 10,
            NetUnreachToS => 11,
            HostUnreachToS => 12,
            CommProhibited => 13,
            HostPrecedenceViolation => 14,
            PrecedenceCutoff => 15,
            Unknown(o) => o,
        }
    }
}

mod field {
    use crate::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ: Field = 6..8;
    pub const REST: Field = 4..8;
    pub const MTU: Field = 6..8;
    pub const ORIGINATE: Field = 8..12;
    pub const RECEIVE: Field = 12..16;
    pub const TRANSMIT: Field = 16..20;
    pub const MASK: Field = 8..12;
}

/// Minimum length for a message of type `t`.
fn min_len(t: u8) -> usize {
    match t {
        msg_type::TIMESTAMP | msg_type::TIMESTAMP_REPLY => 20,
        msg_type::ADDRESS_MASK | msg_type::ADDRESS_MASK_REPLY => 12,
        _ => HEADER_LEN,
    }
}

/// A checked view of an ICMPv4 message (the buffer is the whole message).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking that the header (20 bytes for timestamps, 12
    /// for address masks, 8 otherwise) fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN || b.len() < min_len(rd8(b, field::TYPE)) {
            return Err(WireError::Truncated("icmpv4 message"));
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

    /// Identifier (echo, timestamp, address mask).
    pub fn ident(&self) -> u16 {
        rd16(self.b(), field::IDENT)
    }

    /// Sequence number (echo, timestamp, address mask).
    pub fn seq_no(&self) -> u16 {
        rd16(self.b(), field::SEQ)
    }

    /// The four bytes after the checksum as one word.
    pub fn rest_of_header(&self) -> u32 {
        rd32(self.b(), field::REST)
    }

    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        rd16(self.b(), field::MTU)
    }

    /// Originate timestamp (timestamp messages).
    pub fn originate_timestamp(&self) -> u32 {
        rd32(self.b(), field::ORIGINATE)
    }

    /// Receive timestamp (timestamp messages).
    pub fn receive_timestamp(&self) -> u32 {
        rd32(self.b(), field::RECEIVE)
    }

    /// Transmit timestamp (timestamp messages).
    pub fn transmit_timestamp(&self) -> u32 {
        rd32(self.b(), field::TRANSMIT)
    }

    /// Address mask (address-mask messages).
    pub fn address_mask(&self) -> u32 {
        rd32(self.b(), field::MASK)
    }

    /// Bytes after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        tail(self.b(), HEADER_LEN)
    }

    /// For an error message, the quoted original IPv4 header and the bytes
    /// after it; `None` for other types or when the quote is malformed.
    pub fn quoted(&self) -> Option<ipv4::QuotedHeader<'_>> {
        if !is_error(self.msg_type()) {
            return None;
        }
        ipv4::parse_quoted(self.data()).ok()
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        Checksum::new().add_bytes(self.b()).sum16() == 0xffff
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

    /// Sets the identifier.
    pub fn set_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, v);
    }

    /// Sets the sequence number.
    pub fn set_seq_no(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Recomputes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = internet_checksum(self.buffer.as_ref());
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// A parsed or to-be-emitted ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Timestamp request (13) or reply (14).
    Timestamp {
        /// True for a reply.
        reply: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Originate timestamp.
        originate: u32,
        /// Receive timestamp.
        receive: u32,
        /// Transmit timestamp.
        transmit: u32,
    },
    /// Address mask request (17) or reply (18).
    AddressMask {
        /// True for a reply.
        reply: bool,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Address mask.
        mask: u32,
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Reason.
        code: Unreachable,
        /// Next-hop MTU (meaningful for code 4).
        next_hop_mtu: u16,
        /// The quoted original packet.
        data: &'a [u8],
    },
    /// Time exceeded (type 11): code 0 in transit, 1 in reassembly.
    TimeExceeded {
        /// Code.
        code: u8,
        /// The quoted original packet.
        data: &'a [u8],
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
        let (ident, seq_no) = (p.ident(), p.seq_no());
        Ok(match (p.msg_type(), p.code()) {
            (msg_type::ECHO_REQUEST, 0) => Repr::EchoRequest { ident, seq_no, data },
            (msg_type::ECHO_REPLY, 0) => Repr::EchoReply { ident, seq_no, data },
            (t @ (msg_type::TIMESTAMP | msg_type::TIMESTAMP_REPLY), 0) if b.len() == 20 => Repr::Timestamp {
                reply: t == msg_type::TIMESTAMP_REPLY,
                ident,
                seq_no,
                originate: p.originate_timestamp(),
                receive: p.receive_timestamp(),
                transmit: p.transmit_timestamp(),
            },
            (t @ (msg_type::ADDRESS_MASK | msg_type::ADDRESS_MASK_REPLY), 0) if b.len() == 12 => {
                Repr::AddressMask { reply: t == msg_type::ADDRESS_MASK_REPLY, ident, seq_no, mask: p.address_mask() }
            }
            (msg_type::DST_UNREACHABLE, code) if rd16(b, 4..6) == 0 => {
                Repr::DstUnreachable { code: code.into(), next_hop_mtu: p.next_hop_mtu(), data }
            }
            (msg_type::TIME_EXCEEDED, code) if p.rest_of_header() == 0 => Repr::TimeExceeded { code, data },
            (msg_type, code) => Repr::Other { msg_type, code, rest_of_header: p.rest_of_header(), data },
        })
    }

    /// Message length this repr emits.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. }
            | Repr::EchoReply { data, .. }
            | Repr::DstUnreachable { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::Other { data, .. } => HEADER_LEN + data.len(),
            Repr::Timestamp { .. } => 20,
            Repr::AddressMask { .. } => 12,
        }
    }

    /// Writes the whole message with its checksum at the start of `buf`;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        ensure_room(len, buf.len())?;
        let m = sub_mut(buf, 0, len);
        let (t, code, rest, data): (u8, u8, u32, &[u8]) = match *self {
            Repr::EchoRequest { ident, seq_no, data } => {
                (msg_type::ECHO_REQUEST, 0, (u32::from(ident) << 16) | u32::from(seq_no), data)
            }
            Repr::EchoReply { ident, seq_no, data } => {
                (msg_type::ECHO_REPLY, 0, (u32::from(ident) << 16) | u32::from(seq_no), data)
            }
            Repr::Timestamp { reply, ident, seq_no, originate, receive, transmit } => {
                wr32(m, field::ORIGINATE, originate);
                wr32(m, field::RECEIVE, receive);
                wr32(m, field::TRANSMIT, transmit);
                let t = if reply { msg_type::TIMESTAMP_REPLY } else { msg_type::TIMESTAMP };
                (t, 0, (u32::from(ident) << 16) | u32::from(seq_no), &[])
            }
            Repr::AddressMask { reply, ident, seq_no, mask } => {
                wr32(m, field::MASK, mask);
                let t = if reply { msg_type::ADDRESS_MASK_REPLY } else { msg_type::ADDRESS_MASK };
                (t, 0, (u32::from(ident) << 16) | u32::from(seq_no), &[])
            }
            Repr::DstUnreachable { code, next_hop_mtu, data } => {
                (msg_type::DST_UNREACHABLE, code.into(), u32::from(next_hop_mtu), data)
            }
            Repr::TimeExceeded { code, data } => (msg_type::TIME_EXCEEDED, code, 0, data),
            Repr::Other { msg_type, code, rest_of_header, data } => (msg_type, code, rest_of_header, data),
        };
        wr8(m, field::TYPE, t);
        wr8(m, field::CODE, code);
        wr16(m, field::CHECKSUM, 0);
        wr32(m, field::REST, rest);
        if !data.is_empty() {
            sub_mut(m, HEADER_LEN, len).copy_from_slice(data);
        }
        let c = internet_checksum(m);
        wr16(m, field::CHECKSUM, c);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ICMP_MASK, ICMP_PORT_UNREACH, ICMP_TIMESTAMP, VLAN_FRAME};
    use std::net::Ipv4Addr;

    #[test]
    fn port_unreachable_quoting_udp() {
        let m = &ICMP_PORT_UNREACH[20..];
        let p = Packet::new_checked(m).unwrap();
        assert_eq!((p.msg_type(), p.code(), p.checksum()), (3, 3, 0x4f01));
        assert!(p.verify_checksum());
        let q = p.quoted().unwrap();
        assert_eq!(q.src_addr, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(q.dst_addr, Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(q.protocol, 17);
        assert_eq!(q.payload, &[0x9c, 0x41, 0x00, 0xa1, 0x00, 0x08, 0x11, 0x11]);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::DstUnreachable { code: Unreachable::PortUnreachable, next_hop_mtu: 0, data: &m[8..] });
        let mut out = [0u8; 36];
        assert_eq!(r.emit(&mut out).unwrap(), 36);
        assert_eq!(out, *m);
    }

    #[test]
    fn echo_timestamp_mask_fixtures() {
        let echo = &VLAN_FRAME[38..];
        let r = Repr::parse(&Packet::new_checked(echo).unwrap()).unwrap();
        assert_eq!(r, Repr::EchoRequest { ident: 0x4242, seq_no: 1, data: b"ping" });
        let mut out = [0u8; 12];
        r.emit(&mut out).unwrap();
        assert_eq!(out, *echo);

        let ts = &ICMP_TIMESTAMP[20..];
        let p = Packet::new_checked(ts).unwrap();
        assert!(p.verify_checksum());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::Timestamp { reply: false, ident: 1, seq_no: 2, originate: 0, receive: 0, transmit: 0 });
        let mut out = [0u8; 20];
        r.emit(&mut out).unwrap();
        assert_eq!(out, *ts);

        // Mask request: header + 4-byte mask (+ 4 trailing bytes in the fixture).
        let mask = &ICMP_MASK[20..];
        let p = Packet::new_checked(mask).unwrap();
        assert_eq!((p.msg_type(), p.ident(), p.seq_no(), p.address_mask()), (17, 1, 2, 0));
        assert!(p.verify_checksum());
        let r = Repr::AddressMask { reply: false, ident: 1, seq_no: 2, mask: 0 };
        let mut out = [0u8; 12];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..], &mask[..12]); // trailing zeros do not change the checksum
    }

    #[test]
    fn all_unreachable_codes_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(u8::from(Unreachable::from(c)), c);
        }
        assert_eq!(Unreachable::from(13), Unreachable::CommProhibited);
        let r = Repr::DstUnreachable { code: Unreachable::FragRequired, next_hop_mtu: 1400, data: &[] };
        let mut out = [0u8; 8];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[4..8], &[0, 0, 0x05, 0x78]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1400);
        assert!(p.quoted().is_none()); // no quoted header present
        let mut buf = out;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_msg_type(11);
        p.set_code(1);
        p.set_ident(0);
        p.set_seq_no(0);
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            Repr::TimeExceeded { code: 1, data: &[] }
        );
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&[8, 0, 0, 0, 0, 0, 0][..]).is_err());
        assert!(Packet::new_checked(&ICMP_TIMESTAMP[20..39]).is_err());
        assert!(Packet::new_checked(&ICMP_MASK[20..31]).is_err());
        assert!(Repr::EchoReply { ident: 0, seq_no: 0, data: b"abc" }.emit(&mut [0u8; 10]).is_err());
        // Error message with a garbage quote: no panic, no quote.
        let p = Packet::new_checked(&[3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0xff][..]).unwrap();
        assert!(p.quoted().is_none());
    }
}
