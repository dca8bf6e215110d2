//! RustMap's packet wire formats: checked, zero-copy views and builders.
//!
//! This crate owns the byte layout of every packet RustMap sends or receives:
//! Ethernet (with an optional 802.1Q tag), ARP, IPv4, IPv6 (with extension
//! headers), TCP (with options), UDP, ICMPv4, ICMPv6 (including neighbour
//! discovery) and SCTP, plus the checksums they need. It performs **no I/O**.
//!
//! Every protocol module follows the same pattern:
//!
//! * a `Packet<T: AsRef<[u8]>>` view whose `new_checked` validates every length
//!   field once, after which the accessors cannot panic;
//! * setters on `Packet<T>` when `T: AsMut<[u8]>`;
//! * a `Repr` (a plain-data summary) that `parse`s from a view and `emit`s into
//!   a byte buffer.
//!
//! Everything read is treated as hostile: malformed input yields a
//! [`WireError`], never a panic, an out-of-range index or an unbounded loop.
//!
//! The [`probe`] module is the convenience layer the scan engine calls: it
//! builds whole probe packets and summarises received replies.
#![forbid(unsafe_code)]

use core::ops::Range;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod hop;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mangle;
pub mod probe;
pub mod quic;
pub mod sctp;
pub mod tcp;
pub mod tls;
pub mod udp;

#[cfg(test)]
#[path = "../testdata/fixtures.rs"]
mod fixtures;

/// An error found while parsing or emitting a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the named structure does.
    #[error("{0}: truncated")]
    Truncated(&'static str),
    /// A length, offset or count field holds an impossible value.
    #[error("{0}: malformed length field")]
    BadLength(&'static str),
    /// A protocol option (TCP option, ND option, SCTP parameter) is malformed.
    #[error("{0}: malformed option")]
    BadOption(&'static str),
    /// The IP version nibble is neither 4 nor 6.
    #[error("unsupported IP version {0}")]
    BadVersion(u8),
    /// An IPv6 extension-header chain, or an SCTP chunk list, is longer than the bound.
    #[error("{0}: too many headers or chunks")]
    TooMany(&'static str),
    /// The output buffer cannot hold what is being emitted.
    #[error("output buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// Source and destination addresses are of different families (or do not
    /// match the protocol, e.g. ICMPv4 timestamp over IPv6).
    #[error("address family mismatch")]
    AddressFamilyMismatch,
    /// A field holds a value this crate does not handle (e.g. a non-Ethernet ARP).
    #[error("{0}: unsupported value")]
    Unsupported(&'static str),
}

/// Result alias used throughout the crate.
pub type Result<T> = core::result::Result<T, WireError>;

/// IP protocol numbers (IPv4 `protocol`, IPv6 `next header`) used by this crate.
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// A byte range inside a header.
pub(crate) type Field = Range<usize>;

/// Reads one byte, 0 when out of range (never after a successful check).
pub(crate) fn rd8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Reads a big-endian u16, 0 when out of range.
pub(crate) fn rd16(b: &[u8], f: Field) -> u16 {
    b.get(f).and_then(|s| <[u8; 2]>::try_from(s).ok()).map_or(0, u16::from_be_bytes)
}

/// Reads a big-endian u32, 0 when out of range.
pub(crate) fn rd32(b: &[u8], f: Field) -> u32 {
    b.get(f).and_then(|s| <[u8; 4]>::try_from(s).ok()).map_or(0, u32::from_be_bytes)
}

/// Reads a fixed-size array, zeros when out of range.
pub(crate) fn rd_arr<const N: usize>(b: &[u8], f: Field) -> [u8; N] {
    b.get(f).and_then(|s| <[u8; N]>::try_from(s).ok()).unwrap_or([0; N])
}

/// Returns `b[start..end]`, or an empty slice when out of range.
pub(crate) fn sub(b: &[u8], start: usize, end: usize) -> &[u8] {
    b.get(start..end).unwrap_or(&[])
}

/// Returns `b[start..]`, or an empty slice when out of range.
pub(crate) fn tail(b: &[u8], start: usize) -> &[u8] {
    b.get(start..).unwrap_or(&[])
}

/// Returns `b[start..end]` mutably, or an empty slice when out of range.
pub(crate) fn sub_mut(b: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    b.get_mut(start..end).unwrap_or(&mut [])
}

/// Writes one byte; a no-op when out of range.
pub(crate) fn wr8(b: &mut [u8], at: usize, v: u8) {
    if let Some(x) = b.get_mut(at) {
        *x = v;
    }
}

/// Writes bytes into a field of the same length; a no-op when out of range.
pub(crate) fn wr_bytes(b: &mut [u8], f: Field, v: &[u8]) {
    if let Some(s) = b.get_mut(f) {
        if s.len() == v.len() {
            s.copy_from_slice(v);
        }
    }
}

/// Writes a big-endian u16; a no-op when out of range.
pub(crate) fn wr16(b: &mut [u8], f: Field, v: u16) {
    wr_bytes(b, f, &v.to_be_bytes());
}

/// Writes a big-endian u32; a no-op when out of range.
pub(crate) fn wr32(b: &mut [u8], f: Field, v: u32) {
    wr_bytes(b, f, &v.to_be_bytes());
}

/// Fails with [`WireError::BufferTooSmall`] unless `have >= need`.
pub(crate) fn ensure_room(need: usize, have: usize) -> Result<()> {
    if have < need {
        Err(WireError::BufferTooSmall { need, have })
    } else {
        Ok(())
    }
}
