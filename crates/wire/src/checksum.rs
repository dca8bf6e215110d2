//! Checksums: the RFC 1071 Internet checksum (incremental, with IPv4 and IPv6
//! pseudo-headers) and CRC32c (Castagnoli, RFC 9260 appendix A) for SCTP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Result, WireError};

/// An incremental RFC 1071 one's-complement sum.
///
/// Bytes may be added in pieces of any length (odd lengths are carried over
/// to the next piece), so a checksum can be computed over a pseudo-header and
/// a packet without copying them together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
    odd: Option<u8>,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Self { sum: 0, odd: None }
    }

    /// Adds bytes, treated as a continuation of everything added so far.
    pub fn add_bytes(&mut self, data: &[u8]) -> &mut Self {
        let mut data = data;
        if let Some(hi) = self.odd.take() {
            match data.split_first() {
                Some((&lo, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([hi, lo]));
                    data = rest;
                }
                None => {
                    self.odd = Some(hi);
                    return self;
                }
            }
        }
        // 32-bit words at a time: 2^16 ≡ 1 in one's-complement arithmetic (mod 2^16 - 1), so a
        // sum of big-endian u32 words folds to the same 16-bit sum as its u16 halves.
        let mut quads = data.chunks_exact(4);
        for q in &mut quads {
            self.sum += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
        }
        let mut words = quads.remainder().chunks_exact(2);
        for w in &mut words {
            self.sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.odd = Some(*last);
        }
        self
    }

    /// Adds a big-endian 16-bit word.
    pub fn add_u16(&mut self, v: u16) -> &mut Self {
        self.add_bytes(&v.to_be_bytes())
    }

    /// Adds a big-endian 32-bit word.
    pub fn add_u32(&mut self, v: u32) -> &mut Self {
        self.add_bytes(&v.to_be_bytes())
    }

    /// The folded 16-bit one's-complement sum (not complemented). A packet
    /// whose checksum field is correct sums to `0xffff`.
    pub fn sum16(&self) -> u16 {
        let mut s = self.sum;
        if let Some(hi) = self.odd {
            s += u64::from(hi) << 8;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The checksum to store: the complement of [`Checksum::sum16`].
    pub fn finish(&self) -> u16 {
        !self.sum16()
    }
}

/// The RFC 1071 checksum of `data` alone.
pub fn internet_checksum(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// A sum pre-loaded with the IPv4 pseudo-header (RFC 793 / RFC 768).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src.octets()).add_bytes(&dst.octets()).add_u16(u16::from(protocol)).add_u16(len);
    c
}

/// A sum pre-loaded with the IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> Checksum {
    let mut c = Checksum::new();
    c.add_bytes(&src.octets()).add_bytes(&dst.octets()).add_u32(len).add_u32(u32::from(next_header));
    c
}

/// The pseudo-header sum for either family.
///
/// Fails when the families differ, or when `len` does not fit the family's
/// length field.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> Result<Checksum> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len = u16::try_from(len).map_err(|_| WireError::BadLength("ipv4 pseudo-header length"))?;
            Ok(pseudo_header_v4(s, d, protocol, len))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = u32::try_from(len).map_err(|_| WireError::BadLength("ipv6 pseudo-header length"))?;
            Ok(pseudo_header_v6(s, d, protocol, len))
        }
        _ => Err(WireError::AddressFamilyMismatch),
    }
}

/// Computes the transport checksum of `segment` (whose checksum field must
/// already be zero, or be the value being verified) with its pseudo-header.
pub(crate) fn transport_sum(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> Result<Checksum> {
    let mut c = pseudo_header(src, dst, protocol, segment.len())?;
    c.add_bytes(segment);
    Ok(c)
}

/// The reflected Castagnoli polynomial 0x1EDC6F41.
const CRC32C_POLY_REFLECTED: u32 = 0x82F6_3B78;

/// Builds the byte-at-a-time CRC32c lookup table at compile time.
const fn build_crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ CRC32C_POLY_REFLECTED } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32C_TABLE: [u32; 256] = build_crc32c_table();

/// An incremental CRC32c (Castagnoli) computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A fresh computation.
    pub const fn new() -> Self {
        Self { state: !0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        for &b in data {
            let idx = ((self.state ^ u32::from(b)) & 0xff) as usize;
            self.state = CRC32C_TABLE[idx] ^ (self.state >> 8);
        }
        self
    }

    /// The final CRC value.
    pub fn finish(&self) -> u32 {
        !self.state
    }
}

/// The CRC32c of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    Crc32c::new().update(data).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent, deliberately naive reference: sum of 16-bit words, folded.
    fn ref_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += (u32::from(data[i]) << 8) | u32::from(data[i + 1]);
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// Independent bitwise CRC32c (no table).
    fn ref_crc32c(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
            }
        }
        !crc
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut c = Checksum::new();
        c.add_bytes(&data);
        assert_eq!(c.sum16(), 0xddf2);
        assert_eq!(c.finish(), 0x220d);
    }

    #[test]
    fn split_odd_pieces_match_whole() {
        let data: Vec<u8> = (0u16..301).map(|i| (i * 7 + 3) as u8).collect();
        let whole = internet_checksum(&data);
        assert_eq!(whole, ref_checksum(&data));
        for cut in [0, 1, 3, 150, 299, 301] {
            let mut c = Checksum::new();
            c.add_bytes(&data[..cut]).add_bytes(&[]).add_bytes(&data[cut..]);
            assert_eq!(c.finish(), whole, "cut at {cut}");
        }
    }

    /// The 32-bit fast path against the reference on every length up to 64 and every split,
    /// with bytes that carry (0xff runs) and do not.
    #[test]
    fn word_sizes_and_carries_match_the_reference() {
        for fill in [0x00u8, 0xff, 0x5a] {
            let data: Vec<u8> = (0u8..64).map(|i| if i % 3 == 0 { fill } else { i.wrapping_mul(37) }).collect();
            for len in 0..=data.len() {
                let d = &data[..len];
                assert_eq!(internet_checksum(d), ref_checksum(d), "len {len}");
                for cut in 0..=len {
                    let mut c = Checksum::new();
                    c.add_bytes(&d[..cut]).add_bytes(&d[cut..]);
                    assert_eq!(c.finish(), ref_checksum(d), "len {len} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn ipv4_header_checksum_of_fixture() {
        // A header with a correct checksum sums to 0xffff.
        let hdr = &crate::fixtures::TCP_SYN_V4[..20];
        assert_eq!(Checksum::new().add_bytes(hdr).sum16(), 0xffff);
        let mut zeroed = hdr.to_vec();
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(internet_checksum(&zeroed), 0x7c51);
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(ref_crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        let data: Vec<u8> = (0u32..1000).map(|i| (i * 31 % 251) as u8).collect();
        assert_eq!(crc32c(&data), ref_crc32c(&data));
        let mut inc = Crc32c::new();
        inc.update(&data[..17]).update(&data[17..]);
        assert_eq!(inc.finish(), ref_crc32c(&data));
    }

    #[test]
    fn pseudo_header_family_mismatch() {
        let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(pseudo_header(v4, v6, 6, 20), Err(WireError::AddressFamilyMismatch));
        assert!(pseudo_header(v4, v4, 6, 70_000).is_err());
        assert!(pseudo_header(v6, v6, 6, 70_000).is_ok());
    }
}
