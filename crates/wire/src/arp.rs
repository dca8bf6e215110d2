//! ARP (RFC 826) for Ethernet hardware and IPv4 protocol addresses only:
//! request/reply view and builder.

use std::net::Ipv4Addr;

use crate::ethernet::MacAddr;
use crate::{ensure_room, rd16, rd8, rd_arr, wr16, wr8, wr_bytes, Result, WireError};

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

mod field {
    use crate::Field;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Request (1).
    Request,
    /// Reply (2).
    Reply,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            o => Operation::Unknown(o),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A checked view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`: it must hold 28 bytes with hardware type 1 (Ethernet),
    /// protocol type 0x0800, and address lengths 6 and 4.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated("arp"));
        }
        if rd16(b, field::HTYPE) != 1 || rd16(b, field::PTYPE) != 0x0800 {
            return Err(WireError::Unsupported("arp hardware/protocol type"));
        }
        if rd8(b, field::HLEN) != 6 || rd8(b, field::PLEN) != 4 {
            return Err(WireError::BadLength("arp address length"));
        }
        Ok(Self { buffer })
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        rd16(self.buffer.as_ref(), field::OPER).into()
    }

    /// Sender hardware address.
    pub fn sender_hw_addr(&self) -> MacAddr {
        rd_arr(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd_arr::<4>(self.buffer.as_ref(), field::SPA))
    }

    /// Target hardware address.
    pub fn target_hw_addr(&self) -> MacAddr {
        rd_arr(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(rd_arr::<4>(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        wr16(self.buffer.as_mut(), field::OPER, op.into());
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hw_addr(&mut self, a: MacAddr) {
        wr_bytes(self.buffer.as_mut(), field::SHA, &a);
    }

    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, a: Ipv4Addr) {
        wr_bytes(self.buffer.as_mut(), field::SPA, &a.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hw_addr(&mut self, a: MacAddr) {
        wr_bytes(self.buffer.as_mut(), field::THA, &a);
    }

    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, a: Ipv4Addr) {
        wr_bytes(self.buffer.as_mut(), field::TPA, &a.octets());
    }
}

/// A parsed or to-be-emitted ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Operation.
    pub operation: Operation,
    /// Sender hardware address.
    pub sender_hw_addr: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hw_addr: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Summarises a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        Ok(Self {
            operation: p.operation(),
            sender_hw_addr: p.sender_hw_addr(),
            sender_ip: p.sender_ip(),
            target_hw_addr: p.target_hw_addr(),
            target_ip: p.target_ip(),
        })
    }

    /// A who-has request for `target_ip`.
    pub fn request(sender_hw_addr: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        Self { operation: Operation::Request, sender_hw_addr, sender_ip, target_hw_addr: [0; 6], target_ip }
    }

    /// Writes the 28-byte packet at the start of `buf`; returns 28.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        ensure_room(PACKET_LEN, buf.len())?;
        wr16(buf, field::HTYPE, 1);
        wr16(buf, field::PTYPE, 0x0800);
        wr8(buf, field::HLEN, 6);
        wr8(buf, field::PLEN, 4);
        wr16(buf, field::OPER, self.operation.into());
        wr_bytes(buf, field::SHA, &self.sender_hw_addr);
        wr_bytes(buf, field::SPA, &self.sender_ip.octets());
        wr_bytes(buf, field::THA, &self.target_hw_addr);
        wr_bytes(buf, field::TPA, &self.target_ip.octets());
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::ARP_REPLY;

    #[test]
    fn parse_reply_fixture() {
        let p = Packet::new_checked(&ARP_REPLY[14..]).unwrap();
        assert_eq!(p.operation(), Operation::Reply);
        assert_eq!(p.sender_hw_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(p.target_hw_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 0, 2, 1));
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 28];
        assert_eq!(r.emit(&mut out).unwrap(), 28);
        assert_eq!(out, ARP_REPLY[14..]);
    }

    #[test]
    fn request_builder_and_setters() {
        let r = Repr::request([1; 6], Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let mut out = [0u8; 28];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&out[18..24], &[0; 6]);
        let mut p = Packet::new_checked(&mut out[..]).unwrap();
        p.set_operation(Operation::Reply);
        p.set_target_hw_addr([3; 6]);
        p.set_sender_hw_addr([4; 6]);
        p.set_sender_ip(Ipv4Addr::new(1, 2, 3, 4));
        p.set_target_ip(Ipv4Addr::new(5, 6, 7, 8));
        assert_eq!(p.operation(), Operation::Reply);
        assert_eq!(p.target_hw_addr(), [3; 6]);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(u16::from(Operation::Unknown(9)), 9);
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&ARP_REPLY[14..41]).is_err());
        let mut bad = ARP_REPLY;
        bad[14 + 4] = 7;
        assert!(Packet::new_checked(&bad[14..]).is_err());
        let mut bad = ARP_REPLY;
        bad[14 + 1] = 6;
        assert!(Packet::new_checked(&bad[14..]).is_err());
    }
}
