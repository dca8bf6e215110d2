//! TCP segments (RFC 9293): checked view with validated data offset and
//! options, the [`Flags`] type, an options iterator and emitter, checksum
//! verify/fill with the IPv4 or IPv6 pseudo-header, and a `Repr`.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::IpAddr;

use crate::checksum::transport_sum;
use crate::{ensure_room, ip_proto, rd16, rd32, rd8, sub, sub_mut, tail, wr16, wr32, wr8, Result, WireError};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// Maximum length of the options area.
pub const MAX_OPTIONS_LEN: usize = 40;

mod field {
    use crate::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// The eight TCP control flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// Push.
    pub const PSH: Flags = Flags(0x08);
    /// Acknowledgment field significant.
    pub const ACK: Flags = Flags(0x10);
    /// Urgent pointer significant.
    pub const URG: Flags = Flags(0x20);
    /// ECN echo.
    pub const ECE: Flags = Flags(0x40);
    /// Congestion window reduced.
    pub const CWR: Flags = Flags(0x80);

    /// No flags.
    pub const fn empty() -> Self {
        Flags(0)
    }

    /// Flags from the raw flags byte.
    pub const fn from_bits(bits: u8) -> Self {
        Flags(bits)
    }

    /// The raw flags byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag in `other` is set.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.0 == 0 {
            return f.write_str("(none)");
        }
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Option kinds.
pub mod kind {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
}

/// One TCP option. Known kinds with an unexpected length parse as
/// [`TcpOption::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); iteration stops after it.
    EndOfList,
    /// No operation (kind 1).
    NoOperation,
    /// Maximum segment size (kind 2).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// SACK blocks (kind 5): up to four (left, right) edges; unused slots are `None`.
    Sack([Option<(u32, u32)>; 4]),
    /// Timestamps (kind 8).
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other option, or a known kind with a wrong length.
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data (after kind and length).
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    fn from_kind(k: u8, data: &'a [u8]) -> Self {
        match (k, data.len()) {
            (kind::MSS, 2) => TcpOption::MaxSegmentSize(rd16(data, 0..2)),
            (kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(rd8(data, 0)),
            (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (kind::TIMESTAMPS, 8) => TcpOption::Timestamps { tsval: rd32(data, 0..4), tsecr: rd32(data, 4..8) },
            (kind::SACK, n) if n > 0 && n <= 32 && n % 8 == 0 => {
                let mut blocks = [None; 4];
                for (slot, chunk) in blocks.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = Some((rd32(chunk, 0..4), rd32(chunk, 4..8)));
                }
                TcpOption::Sack(blocks)
            }
            _ => TcpOption::Unknown { kind: k, data },
        }
    }

    /// Encoded length in bytes (without padding).
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(b) => 2 + 8 * b.iter().flatten().count(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        ensure_room(len, buf.len())?;
        let len8 = u8::try_from(len).map_err(|_| WireError::BadOption("tcp option too long"))?;
        match *self {
            TcpOption::EndOfList => wr8(buf, 0, kind::EOL),
            TcpOption::NoOperation => wr8(buf, 0, kind::NOP),
            TcpOption::MaxSegmentSize(v) => {
                buf[..2].copy_from_slice(&[kind::MSS, 4]);
                wr16(buf, 2..4, v);
            }
            TcpOption::WindowScale(v) => buf[..3].copy_from_slice(&[kind::WINDOW_SCALE, 3, v]),
            TcpOption::SackPermitted => buf[..2].copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(blocks) => {
                buf[..2].copy_from_slice(&[kind::SACK, len8]);
                for (i, (l, r)) in blocks.iter().flatten().enumerate() {
                    let at = 2 + 8 * i;
                    wr32(buf, at..at + 4, *l);
                    wr32(buf, at + 4..at + 8, *r);
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                buf[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                wr32(buf, 2..6, tsval);
                wr32(buf, 6..10, tsecr);
            }
            TcpOption::Unknown { kind: k, data } => {
                if k == kind::EOL || k == kind::NOP {
                    return Err(WireError::BadOption("tcp option kind 0/1 cannot carry data"));
                }
                buf[..2].copy_from_slice(&[k, len8]);
                buf[2..len].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

/// Iterator over the options area of a TCP header.
///
/// Yields `Err` (once, then stops) for an option whose length byte is
/// missing, below 2, or runs past the options area. Each step consumes at
/// least one byte, so iteration is bounded by the area's length.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    data: &'a [u8],
    done: bool,
}

impl<'a> OptionsIter<'a> {
    /// Iterates over raw option bytes.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, done: false }
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (&k, rest) = self.data.split_first()?;
        match k {
            kind::EOL => {
                self.done = true;
                Some(Ok(TcpOption::EndOfList))
            }
            kind::NOP => {
                self.data = rest;
                Some(Ok(TcpOption::NoOperation))
            }
            _ => {
                self.done = true;
                let Some(&len) = rest.first() else {
                    return Some(Err(WireError::BadOption("tcp option length missing")));
                };
                let len = usize::from(len);
                if len < 2 {
                    return Some(Err(WireError::BadOption("tcp option length < 2")));
                }
                let Some(data) = self.data.get(2..len) else {
                    return Some(Err(WireError::BadOption("tcp option runs past header")));
                };
                self.data = tail(self.data, len);
                self.done = false;
                Some(Ok(TcpOption::from_kind(k, data)))
            }
        }
    }
}

/// Encoded length of `opts` padded to a multiple of 4.
pub fn options_len(opts: &[TcpOption<'_>]) -> usize {
    let raw: usize = opts.iter().map(TcpOption::buffer_len).sum();
    raw.div_ceil(4) * 4
}

/// Writes `opts` at the start of `buf`, zero-padded (EOL) to a multiple of 4
/// bytes; returns the padded length. Fails if that exceeds 40 bytes.
pub fn emit_options(opts: &[TcpOption<'_>], buf: &mut [u8]) -> Result<usize> {
    let padded = options_len(opts);
    if padded > MAX_OPTIONS_LEN {
        return Err(WireError::BadOption("tcp options exceed 40 bytes"));
    }
    ensure_room(padded, buf.len())?;
    let mut at = 0;
    for o in opts {
        at += o.emit(tail_mut(buf, at))?;
    }
    sub_mut(buf, at, padded).fill(0);
    Ok(padded)
}

fn tail_mut(b: &mut [u8], start: usize) -> &mut [u8] {
    b.get_mut(start..).unwrap_or(&mut [])
}

/// A checked view of a TCP segment. The buffer must be exactly the segment
/// (the IP payload): TCP has no length field of its own.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking that the fixed header fits, that the data
    /// offset is at least 5 and within the buffer, and that every option is
    /// well-formed.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("tcp header"));
        }
        let hl = usize::from(rd8(b, field::DATA_OFF) >> 4) * 4;
        if hl < HEADER_LEN || hl > b.len() {
            return Err(WireError::BadLength("tcp data offset"));
        }
        for opt in OptionsIter::new(sub(b, HEADER_LEN, hl)) {
            opt?;
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        rd32(self.b(), field::SEQ)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        rd32(self.b(), field::ACK)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(rd8(self.b(), field::DATA_OFF) >> 4) * 4
    }

    /// Control flags.
    pub fn flags(&self) -> Flags {
        Flags(rd8(self.b(), field::FLAGS))
    }

    /// Window.
    pub fn window_len(&self) -> u16 {
        rd16(self.b(), field::WINDOW)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.b(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        rd16(self.b(), field::URGENT)
    }

    /// Raw options area.
    pub fn options(&self) -> &[u8] {
        sub(self.b(), HEADER_LEN, self.header_len())
    }

    /// Iterates over the options (all valid after the check).
    pub fn option_iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.options())
    }

    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        tail(self.b(), self.header_len())
    }

    /// Whether the checksum is correct for this pseudo-header.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        transport_sum(src, dst, ip_proto::TCP, self.b()).is_ok_and(|c| c.sum16() == 0xffff)
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, f: Flags) {
        wr8(self.buffer.as_mut(), field::FLAGS, f.0);
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::WINDOW, v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::URGENT, v);
    }

    /// Recomputes and stores the checksum for this pseudo-header.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) -> Result<()> {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = transport_sum(src, dst, ip_proto::TCP, self.buffer.as_ref())?.finish();
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
        Ok(())
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        tail_mut(self.buffer.as_mut(), hl)
    }
}

/// A parsed or to-be-emitted TCP segment. Options are kept as raw bytes
/// (a multiple of 4, at most 40); build them with [`emit_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Flags.
    pub flags: Flags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Raw, padded options area.
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Summarises a checked segment (the checksum is not verified).
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        let hl = p.header_len();
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            options: sub(b, HEADER_LEN, hl),
            payload: tail(b, hl),
        })
    }

    /// Total segment length this repr emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.options.len() + self.payload.len()
    }

    /// Writes the whole segment with its checksum at the start of `buf`;
    /// returns its length.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr) -> Result<usize> {
        if !self.options.len().is_multiple_of(4) || self.options.len() > MAX_OPTIONS_LEN {
            return Err(WireError::BadOption("tcp options area must be a multiple of 4, at most 40"));
        }
        let len = self.buffer_len();
        ensure_room(len, buf.len())?;
        let hl = HEADER_LEN + self.options.len();
        let seg = sub_mut(buf, 0, len);
        wr16(seg, field::SRC_PORT, self.src_port);
        wr16(seg, field::DST_PORT, self.dst_port);
        wr32(seg, field::SEQ, self.seq_number);
        wr32(seg, field::ACK, self.ack_number);
        wr8(seg, field::DATA_OFF, ((hl / 4) as u8) << 4);
        wr8(seg, field::FLAGS, self.flags.0);
        wr16(seg, field::WINDOW, self.window_len);
        wr16(seg, field::CHECKSUM, 0);
        wr16(seg, field::URGENT, self.urgent_at);
        sub_mut(seg, HEADER_LEN, hl).copy_from_slice(self.options);
        sub_mut(seg, hl, len).copy_from_slice(self.payload);
        let c = transport_sum(src, dst, ip_proto::TCP, seg)?.finish();
        wr16(seg, field::CHECKSUM, c);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{TCP_SYN_V4, TCP_V6};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    const SYN_OPTS: [TcpOption<'static>; 5] = [
        TcpOption::MaxSegmentSize(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps { tsval: 1, tsecr: 0 },
        TcpOption::NoOperation,
        TcpOption::WindowScale(7),
    ];

    #[test]
    fn parse_syn_with_options() {
        let seg = &TCP_SYN_V4[20..];
        let p = Packet::new_checked(seg).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01020304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), Flags::SYN);
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.checksum(), 0xc040);
        assert_eq!(p.urgent_at(), 0);
        let opts: Vec<_> = p.option_iter().map(Result::unwrap).collect();
        assert_eq!(opts, SYN_OPTS);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(v4(192, 0, 2, 1), v4(198, 51, 100, 2)));
        assert!(!p.verify_checksum(v4(192, 0, 2, 1), v4(198, 51, 100, 3)));
    }

    #[test]
    fn emit_syn_matches_fixture() {
        let mut opts = [0u8; 40];
        let n = emit_options(&SYN_OPTS, &mut opts).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&opts[..n], &TCP_SYN_V4[40..60]);
        let r = Repr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 0x01020304,
            ack_number: 0,
            flags: Flags::SYN,
            window_len: 64240,
            urgent_at: 0,
            options: &opts[..n],
            payload: &[],
        };
        let mut out = [0u8; 40];
        assert_eq!(r.emit(&mut out, v4(192, 0, 2, 1), v4(198, 51, 100, 2)).unwrap(), 40);
        assert_eq!(out, TCP_SYN_V4[20..]);
        let back = Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn ipv6_segment() {
        let seg = &TCP_V6[40..];
        let p = Packet::new_checked(seg).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (443, 51000));
        assert_eq!((p.seq_number(), p.ack_number()), (1000, 2001));
        assert_eq!(p.flags(), Flags::SYN | Flags::ACK);
        assert!(p.flags().contains(Flags::ACK) && !p.flags().contains(Flags::RST));
        assert!(p.verify_checksum(v6(1), v6(2)));
        assert!(!p.verify_checksum(v4(1, 2, 3, 4), v6(2)));
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 20];
        r.emit(&mut out, v6(1), v6(2)).unwrap();
        assert_eq!(out, TCP_V6[40..]);
        let mut buf = out;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_flags(Flags::RST);
        p.set_seq_number(5);
        p.set_ack_number(6);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_window_len(0);
        p.set_urgent_at(9);
        assert!(!p.verify_checksum(v6(1), v6(2)));
        p.fill_checksum(v6(1), v6(2)).unwrap();
        assert!(p.verify_checksum(v6(1), v6(2)));
        assert_eq!(p.payload_mut().len(), 0);
        assert_eq!((p.seq_number(), p.ack_number(), p.urgent_at()), (5, 6, 9));
    }

    #[test]
    fn flags_debug_and_sack() {
        assert_eq!(format!("{:?}", Flags::SYN | Flags::ACK | Flags::CWR), "SYN|ACK|CWR");
        assert_eq!(format!("{:?}", Flags::empty()), "(none)");
        let sack = TcpOption::Sack([Some((1, 2)), Some((3, 4)), None, None]);
        let mut buf = [0u8; 40];
        let n = emit_options(&[TcpOption::NoOperation, TcpOption::NoOperation, sack], &mut buf).unwrap();
        assert_eq!(n, 20);
        assert_eq!(&buf[..4], &[1, 1, 5, 18]);
        let got: Vec<_> = OptionsIter::new(&buf[..n]).map(Result::unwrap).collect();
        assert_eq!(got, [TcpOption::NoOperation, TcpOption::NoOperation, sack]);
        // Unknown option and padding to four bytes.
        let n = emit_options(&[TcpOption::Unknown { kind: 30, data: &[7] }], &mut buf).unwrap();
        assert_eq!(&buf[..n], &[30, 3, 7, 0]);
        // Known kind, wrong length: Unknown.
        let got: Vec<_> = OptionsIter::new(&[2, 3, 9, 0]).collect();
        assert_eq!(got, [Ok(TcpOption::Unknown { kind: 2, data: &[9] }), Ok(TcpOption::EndOfList)]);
        // Too long.
        let ts = TcpOption::Timestamps { tsval: 0, tsecr: 0 };
        assert!(emit_options(&[ts, ts, ts, ts, ts], &mut buf).is_err());
        assert!(emit_options(&[ts], &mut [0u8; 11]).is_err());
        assert!(TcpOption::Unknown { kind: 1, data: &[1] }.emit(&mut buf).is_err());
    }

    /// A minimal header with data offset `off` and the given options area.
    fn seg(off: u8, opts: &[u8], total: usize) -> Vec<u8> {
        let mut v = vec![0u8; total.max(20)];
        v[12] = off << 4;
        v[20..20 + opts.len()].copy_from_slice(opts);
        v.truncate(total);
        v
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&TCP_V6[40..59]).is_err());
        // Data offset larger than the packet.
        assert_eq!(Packet::new_checked(&seg(6, &[], 20)[..]).unwrap_err(), WireError::BadLength("tcp data offset"));
        assert!(Packet::new_checked(&seg(15, &[], 59)[..]).is_err());
        // Data offset < 5.
        for off in 0..5 {
            assert!(Packet::new_checked(&seg(off, &[], 40)[..]).is_err(), "offset {off}");
        }
        // Option length 0 and 1.
        assert_eq!(
            Packet::new_checked(&seg(6, &[2, 0, 0, 0], 24)[..]).unwrap_err(),
            WireError::BadOption("tcp option length < 2")
        );
        assert!(Packet::new_checked(&seg(6, &[30, 1, 0, 0], 24)[..]).is_err());
        // Option running past the header (into the payload, which is not options).
        assert!(Packet::new_checked(&seg(6, &[1, 1, 8, 10, 0, 0, 0, 0], 28)[..]).is_err());
        // Length byte missing.
        assert!(Packet::new_checked(&seg(6, &[1, 1, 1, 8], 24)[..]).is_err());
        // The iterator stops after an error.
        let mut it = OptionsIter::new(&[5, 0, 1, 1]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // Bad raw options in a Repr.
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            seq_number: 0,
            ack_number: 0,
            flags: Flags::SYN,
            window_len: 0,
            urgent_at: 0,
            options: &[1, 1, 1],
            payload: &[],
        };
        assert!(r.emit(&mut [0u8; 64], v4(1, 1, 1, 1), v4(2, 2, 2, 2)).is_err());
        let r = Repr { options: &[], ..r };
        assert!(r.emit(&mut [0u8; 19], v4(1, 1, 1, 1), v4(2, 2, 2, 2)).is_err());
        assert_eq!(r.emit(&mut [0u8; 64], v4(1, 1, 1, 1), v6(2)), Err(WireError::AddressFamilyMismatch));
    }
}
