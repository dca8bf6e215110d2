//! Ethernet II frames: destination, source, ethertype, and a tolerated single
//! 802.1Q (or 802.1ad) VLAN tag. The frame check sequence is not handled (NICs
//! strip it).

use crate::{ensure_room, rd16, rd_arr, tail, wr16, wr_bytes, Result, WireError};

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

/// The broadcast MAC address.
pub const BROADCAST: MacAddr = [0xff; 6];

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an Ethernet header carrying one VLAN tag.
pub const VLAN_HEADER_LEN: usize = 18;

/// Ethertype values.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag.
    pub const QINQ: u16 = 0x88A8;
}

mod field {
    use crate::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    pub const VLAN_TCI: Field = 14..16;
    pub const VLAN_ETHERTYPE: Field = 16..18;
}

fn is_tag(ethertype: u16) -> bool {
    ethertype == ethertype::VLAN || ethertype == ethertype::QINQ
}

/// A checked view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer`, checking that the header (and a VLAN tag, if the
    /// ethertype announces one) fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("ethernet header"));
        }
        if is_tag(rd16(b, field::ETHERTYPE)) && b.len() < VLAN_HEADER_LEN {
            return Err(WireError::Truncated("802.1Q tag"));
        }
        Ok(Self { buffer })
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> MacAddr {
        rd_arr(self.buffer.as_ref(), field::DST)
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> MacAddr {
        rd_arr(self.buffer.as_ref(), field::SRC)
    }

    /// The ethertype at offset 12 (0x8100 for a tagged frame).
    pub fn outer_ethertype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The VLAN tag control information (priority, DEI, VLAN id), if tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        is_tag(self.outer_ethertype()).then(|| rd16(self.buffer.as_ref(), field::VLAN_TCI))
    }

    /// The 12-bit VLAN id, if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The ethertype of the payload (after any VLAN tag).
    pub fn ethertype(&self) -> u16 {
        if is_tag(self.outer_ethertype()) {
            rd16(self.buffer.as_ref(), field::VLAN_ETHERTYPE)
        } else {
            self.outer_ethertype()
        }
    }

    /// Header length: 14, or 18 when tagged.
    pub fn header_len(&self) -> usize {
        if is_tag(self.outer_ethertype()) {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload after the header (and tag).
    pub fn payload(&self) -> &[u8] {
        tail(self.buffer.as_ref(), self.header_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        wr_bytes(self.buffer.as_mut(), field::DST, &a);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, a: MacAddr) {
        wr_bytes(self.buffer.as_mut(), field::SRC, &a);
    }

    /// Sets the payload ethertype (after the tag, if tagged).
    pub fn set_ethertype(&mut self, v: u16) {
        let f = if is_tag(self.outer_ethertype()) { field::VLAN_ETHERTYPE } else { field::ETHERTYPE };
        wr16(self.buffer.as_mut(), f, v);
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        self.buffer.as_mut().get_mut(h..).unwrap_or(&mut [])
    }
}

/// A parsed or to-be-emitted Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source MAC address.
    pub src_addr: MacAddr,
    /// Destination MAC address.
    pub dst_addr: MacAddr,
    /// Payload ethertype.
    pub ethertype: u16,
    /// 802.1Q tag control information, when tagged.
    pub vlan_tci: Option<u16>,
}

impl Repr {
    /// Summarises a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Self> {
        Ok(Self {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
            vlan_tci: frame.vlan_tci(),
        })
    }

    /// Header length this repr emits.
    pub fn header_len(&self) -> usize {
        if self.vlan_tci.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.header_len();
        ensure_room(len, buf.len())?;
        wr_bytes(buf, field::DST, &self.dst_addr);
        wr_bytes(buf, field::SRC, &self.src_addr);
        match self.vlan_tci {
            Some(tci) => {
                wr16(buf, field::ETHERTYPE, ethertype::VLAN);
                wr16(buf, field::VLAN_TCI, tci);
                wr16(buf, field::VLAN_ETHERTYPE, self.ethertype);
            }
            None => wr16(buf, field::ETHERTYPE, self.ethertype),
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ARP_REPLY, VLAN_FRAME};

    #[test]
    fn parse_vlan_frame() {
        let f = Frame::new_checked(&VLAN_FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src_addr(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.outer_ethertype(), ethertype::VLAN);
        assert_eq!(f.vlan_tci(), Some(0x602a));
        assert_eq!(f.vlan_id(), Some(42));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload()[0], 0x45);
        let r = Repr::parse(&f).unwrap();
        let mut out = [0u8; 18];
        assert_eq!(r.emit(&mut out).unwrap(), 18);
        assert_eq!(out, VLAN_FRAME[..18]);
    }

    #[test]
    fn parse_untagged_and_emit() {
        let f = Frame::new_checked(&ARP_REPLY[..]).unwrap();
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.payload().len(), 28);
        let r = Repr { src_addr: [2, 0, 0, 0, 0, 2], dst_addr: [2, 0, 0, 0, 0, 1], ethertype: 0x0806, vlan_tci: None };
        let mut out = [0u8; 14];
        r.emit(&mut out).unwrap();
        assert_eq!(out, ARP_REPLY[..14]);
        assert!(r.emit(&mut [0u8; 13]).is_err());
    }

    #[test]
    fn setters() {
        let mut buf = VLAN_FRAME;
        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.set_ethertype(ethertype::IPV6);
        f.set_src_addr([9; 6]);
        f.set_dst_addr(BROADCAST);
        assert_eq!(f.ethertype(), ethertype::IPV6);
        assert_eq!(f.outer_ethertype(), ethertype::VLAN);
        assert_eq!(f.src_addr(), [9; 6]);
        assert_eq!(f.dst_addr(), BROADCAST);
        assert_eq!(f.payload_mut().len(), VLAN_FRAME.len() - 18);
    }

    #[test]
    fn hostile() {
        assert!(Frame::new_checked(&[][..]).is_err());
        assert!(Frame::new_checked(&VLAN_FRAME[..13]).is_err());
        assert!(Frame::new_checked(&VLAN_FRAME[..17]).is_err());
        assert!(Frame::new_checked(&VLAN_FRAME[..18]).is_ok());
    }
}
