//! SCTP packets (RFC 9260): the common header (ports, verification tag,
//! CRC32c checksum verify/fill), a bounded chunk iterator, and builders for
//! the INIT, INIT-ACK, ABORT and COOKIE-ECHO chunks.
//!
//! The CRC32c is computed over the whole packet with the checksum field
//! zeroed, and stored least-significant byte first (RFC 9260 appendix A).

use crate::checksum::Crc32c;
use crate::{ensure_room, rd16, rd32, rd8, sub, sub_mut, tail, wr16, wr32, wr8, Result, WireError};

/// Length of the common header.
pub const HEADER_LEN: usize = 12;
/// Length of a chunk header.
pub const CHUNK_HEADER_LEN: usize = 4;
/// Length of the fixed part of an INIT / INIT-ACK chunk value.
pub const INIT_FIXED_LEN: usize = 16;
/// The most chunks the iterator will yield.
pub const MAX_CHUNKS: usize = 512;

/// Chunk types.
pub mod chunk_type {
    /// Payload data.
    pub const DATA: u8 = 0;
    /// Initiation.
    pub const INIT: u8 = 1;
    /// Initiation acknowledgement.
    pub const INIT_ACK: u8 = 2;
    /// Selective acknowledgement.
    pub const SACK: u8 = 3;
    /// Heartbeat request.
    pub const HEARTBEAT: u8 = 4;
    /// Heartbeat acknowledgement.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// Abort.
    pub const ABORT: u8 = 6;
    /// Shutdown.
    pub const SHUTDOWN: u8 = 7;
    /// Operation error.
    pub const ERROR: u8 = 9;
    /// State cookie.
    pub const COOKIE_ECHO: u8 = 10;
    /// Cookie acknowledgement.
    pub const COOKIE_ACK: u8 = 11;
}

mod field {
    use crate::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const VTAG: Field = 4..8;
    pub const CHECKSUM: Field = 8..12;
    // Inside a chunk.
    pub const CHUNK_TYPE: usize = 0;
    pub const CHUNK_FLAGS: usize = 1;
    pub const CHUNK_LEN: Field = 2..4;
    // Inside an INIT / INIT-ACK value.
    pub const INIT_TAG: Field = 0..4;
    pub const A_RWND: Field = 4..8;
    pub const OUT_STREAMS: Field = 8..10;
    pub const IN_STREAMS: Field = 10..12;
    pub const INIT_TSN: Field = 12..16;
}

/// One chunk: its type, flags and value (the bytes after the 4-byte chunk
/// header, up to the chunk length, padding excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Chunk type.
    pub chunk_type: u8,
    /// Chunk flags.
    pub flags: u8,
    /// Chunk value.
    pub value: &'a [u8],
}

/// The fixed fields of an INIT or INIT-ACK chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init<'a> {
    /// Initiate tag.
    pub initiate_tag: u32,
    /// Advertised receiver window credit.
    pub a_rwnd: u32,
    /// Number of outbound streams.
    pub outbound_streams: u16,
    /// Number of inbound streams.
    pub inbound_streams: u16,
    /// Initial TSN.
    pub initial_tsn: u32,
    /// Optional/variable parameters, raw (for INIT-ACK this holds the state cookie).
    pub params: &'a [u8],
}

impl<'a> Init<'a> {
    /// Parses the value of an INIT or INIT-ACK chunk.
    pub fn parse(value: &'a [u8]) -> Result<Self> {
        if value.len() < INIT_FIXED_LEN {
            return Err(WireError::Truncated("sctp init chunk"));
        }
        Ok(Self {
            initiate_tag: rd32(value, field::INIT_TAG),
            a_rwnd: rd32(value, field::A_RWND),
            outbound_streams: rd16(value, field::OUT_STREAMS),
            inbound_streams: rd16(value, field::IN_STREAMS),
            initial_tsn: rd32(value, field::INIT_TSN),
            params: tail(value, INIT_FIXED_LEN),
        })
    }

    fn emit_value(&self, v: &mut [u8]) {
        wr32(v, field::INIT_TAG, self.initiate_tag);
        wr32(v, field::A_RWND, self.a_rwnd);
        wr16(v, field::OUT_STREAMS, self.outbound_streams);
        wr16(v, field::IN_STREAMS, self.inbound_streams);
        wr32(v, field::INIT_TSN, self.initial_tsn);
        sub_mut(v, INIT_FIXED_LEN, INIT_FIXED_LEN + self.params.len()).copy_from_slice(self.params);
    }
}

/// Iterator over the chunks after the common header.
///
/// Yields `Err` (once, then stops) for a chunk whose length is below 4 or
/// runs past the end, and stops after [`MAX_CHUNKS`] chunks with an error.
/// A missing pad after the last chunk is tolerated.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    data: &'a [u8],
    count: usize,
    done: bool,
}

impl<'a> ChunkIter<'a> {
    /// Iterates over the chunk area (the bytes after the common header).
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, count: 0, done: false }
    }
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = Result<Chunk<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.data.is_empty() {
            return None;
        }
        self.done = true;
        if self.count >= MAX_CHUNKS {
            return Some(Err(WireError::TooMany("sctp chunks")));
        }
        if self.data.len() < CHUNK_HEADER_LEN {
            return Some(Err(WireError::Truncated("sctp chunk header")));
        }
        let len = usize::from(rd16(self.data, field::CHUNK_LEN));
        if len < CHUNK_HEADER_LEN {
            return Some(Err(WireError::BadLength("sctp chunk length")));
        }
        if len > self.data.len() {
            return Some(Err(WireError::Truncated("sctp chunk")));
        }
        let chunk = Chunk {
            chunk_type: rd8(self.data, field::CHUNK_TYPE),
            flags: rd8(self.data, field::CHUNK_FLAGS),
            value: sub(self.data, CHUNK_HEADER_LEN, len),
        };
        let padded = len.div_ceil(4) * 4;
        self.data = tail(self.data, padded);
        self.count += 1;
        self.done = false;
        Some(Ok(chunk))
    }
}

/// A checked view of an SCTP packet (the buffer is the whole IP payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer`, checking that the common header fits and that every
    /// chunk is well-formed.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("sctp common header"));
        }
        for c in ChunkIter::new(tail(b, HEADER_LEN)) {
            c?;
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

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        rd32(self.b(), field::VTAG)
    }

    /// The stored checksum, as the CRC value it encodes.
    pub fn checksum(&self) -> u32 {
        u32::from_le_bytes(crate::rd_arr(self.b(), field::CHECKSUM))
    }

    /// Iterates over the chunks (all valid after the check).
    pub fn chunks(&self) -> ChunkIter<'_> {
        ChunkIter::new(tail(self.b(), HEADER_LEN))
    }

    /// The first chunk, if any.
    pub fn first_chunk(&self) -> Option<Chunk<'_>> {
        self.chunks().next().and_then(Result::ok)
    }

    /// The CRC32c of the packet with the checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        compute_crc(self.b())
    }

    /// Whether the stored CRC32c is correct.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }
}

fn compute_crc(b: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(sub(b, 0, 8)).update(&[0; 4]).update(tail(b, HEADER_LEN));
    c.finish()
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

    /// Sets the verification tag.
    pub fn set_verification_tag(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::VTAG, v);
    }

    /// Recomputes and stores the CRC32c.
    pub fn fill_checksum(&mut self) {
        let c = compute_crc(self.buffer.as_ref());
        crate::wr_bytes(self.buffer.as_mut(), field::CHECKSUM, &c.to_le_bytes());
    }
}

/// A chunk to emit (or parsed from a packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkRepr<'a> {
    /// INIT.
    Init(Init<'a>),
    /// INIT-ACK.
    InitAck(Init<'a>),
    /// ABORT.
    Abort {
        /// T bit: the verification tag is reflected.
        t_bit: bool,
        /// Raw error causes.
        causes: &'a [u8],
    },
    /// COOKIE-ECHO.
    CookieEcho {
        /// The state cookie.
        cookie: &'a [u8],
    },
    /// Any other chunk, kept raw.
    Other(Chunk<'a>),
}

impl<'a> ChunkRepr<'a> {
    /// Interprets a chunk.
    pub fn parse(c: &Chunk<'a>) -> Result<Self> {
        Ok(match (c.chunk_type, c.flags) {
            (chunk_type::INIT, 0) if c.value.len() >= INIT_FIXED_LEN => ChunkRepr::Init(Init::parse(c.value)?),
            (chunk_type::INIT_ACK, 0) if c.value.len() >= INIT_FIXED_LEN => ChunkRepr::InitAck(Init::parse(c.value)?),
            (chunk_type::ABORT, f) if f & !1 == 0 => ChunkRepr::Abort { t_bit: f & 1 != 0, causes: c.value },
            (chunk_type::COOKIE_ECHO, 0) => ChunkRepr::CookieEcho { cookie: c.value },
            _ => ChunkRepr::Other(*c),
        })
    }

    fn parts(&self) -> (u8, u8, usize) {
        match self {
            ChunkRepr::Init(i) => (chunk_type::INIT, 0, INIT_FIXED_LEN + i.params.len()),
            ChunkRepr::InitAck(i) => (chunk_type::INIT_ACK, 0, INIT_FIXED_LEN + i.params.len()),
            ChunkRepr::Abort { t_bit, causes } => (chunk_type::ABORT, u8::from(*t_bit), causes.len()),
            ChunkRepr::CookieEcho { cookie } => (chunk_type::COOKIE_ECHO, 0, cookie.len()),
            ChunkRepr::Other(c) => (c.chunk_type, c.flags, c.value.len()),
        }
    }

    /// Chunk length field value (header plus value, without padding).
    pub fn chunk_len(&self) -> usize {
        CHUNK_HEADER_LEN + self.parts().2
    }

    /// Bytes this chunk occupies, padding included.
    pub fn buffer_len(&self) -> usize {
        self.chunk_len().div_ceil(4) * 4
    }

    /// Writes the chunk (zero-padded to 4 bytes) at the start of `buf`;
    /// returns the padded length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let (t, flags, vlen) = self.parts();
        let len = CHUNK_HEADER_LEN + vlen;
        let len16 = u16::try_from(len).map_err(|_| WireError::BadLength("sctp chunk length"))?;
        let padded = self.buffer_len();
        ensure_room(padded, buf.len())?;
        wr8(buf, field::CHUNK_TYPE, t);
        wr8(buf, field::CHUNK_FLAGS, flags);
        wr16(buf, field::CHUNK_LEN, len16);
        let v = sub_mut(buf, CHUNK_HEADER_LEN, len);
        match self {
            ChunkRepr::Init(i) | ChunkRepr::InitAck(i) => i.emit_value(v),
            ChunkRepr::Abort { causes: d, .. } | ChunkRepr::CookieEcho { cookie: d } => v.copy_from_slice(d),
            ChunkRepr::Other(c) => v.copy_from_slice(c.value),
        }
        sub_mut(buf, len, padded).fill(0);
        Ok(padded)
    }
}

/// A parsed or to-be-emitted SCTP packet carrying one chunk (parsing keeps the
/// first chunk only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub verification_tag: u32,
    /// The (first) chunk.
    pub chunk: ChunkRepr<'a>,
}

impl<'a> Repr<'a> {
    /// Summarises a checked packet; a packet without chunks is an error.
    pub fn parse(p: &Packet<&'a [u8]>) -> Result<Self> {
        let b: &'a [u8] = p.buffer;
        let first = ChunkIter::new(tail(b, HEADER_LEN)).next().ok_or(WireError::Truncated("sctp: no chunk"))??;
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            verification_tag: p.verification_tag(),
            chunk: ChunkRepr::parse(&first)?,
        })
    }

    /// Packet length this repr emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.chunk.buffer_len()
    }

    /// Writes the whole packet with its CRC32c at the start of `buf`; returns
    /// its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        ensure_room(len, buf.len())?;
        let p = sub_mut(buf, 0, len);
        wr16(p, field::SRC_PORT, self.src_port);
        wr16(p, field::DST_PORT, self.dst_port);
        wr32(p, field::VTAG, self.verification_tag);
        self.chunk.emit(sub_mut(p, HEADER_LEN, len))?;
        let c = compute_crc(p);
        crate::wr_bytes(p, field::CHECKSUM, &c.to_le_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::SCTP_INIT;

    #[test]
    fn init_fixture_with_known_crc() {
        let s = &SCTP_INIT[20..];
        let p = Packet::new_checked(s).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.verification_tag()), (5000, 80, 0));
        // Bytes bb 4d da 52 on the wire, computed by scapy.
        assert_eq!(p.checksum(), 0x52da_4dbb);
        assert_eq!(p.compute_checksum(), 0x52da_4dbb);
        assert!(p.verify_checksum());
        let c = p.first_chunk().unwrap();
        assert_eq!((c.chunk_type, c.flags, c.value.len()), (chunk_type::INIT, 0, 16));
        let r = Repr::parse(&p).unwrap();
        let init = Init {
            initiate_tag: 0x11223344,
            a_rwnd: 32768,
            outbound_streams: 10,
            inbound_streams: 2048,
            initial_tsn: 0x11223344,
            params: &[],
        };
        assert_eq!(r, Repr { src_port: 5000, dst_port: 80, verification_tag: 0, chunk: ChunkRepr::Init(init) });
        let mut out = [0u8; 32];
        assert_eq!(r.emit(&mut out).unwrap(), 32);
        assert_eq!(out, *s);
        assert_eq!(crate::checksum::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn builders_and_padding() {
        let r = Repr {
            src_port: 1,
            dst_port: 2,
            verification_tag: 0xabcdef01,
            chunk: ChunkRepr::CookieEcho { cookie: &[1, 2, 3, 4, 5] },
        };
        let mut out = [0xaa; 24];
        assert_eq!(r.emit(&mut out).unwrap(), 24);
        assert_eq!(&out[12..24], &[10, 0, 0, 9, 1, 2, 3, 4, 5, 0, 0, 0]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
        let abort = Repr { chunk: ChunkRepr::Abort { t_bit: true, causes: &[] }, ..r };
        let mut out = [0u8; 16];
        abort.emit(&mut out).unwrap();
        assert_eq!(&out[12..], &[6, 1, 0, 4]);
        assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), abort);
        let mut p = Packet::new_checked(&mut out[..]).unwrap();
        p.set_verification_tag(5);
        p.set_src_port(9);
        p.set_dst_port(10);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        // Two chunks, the first unpadded-length 5.
        let mut two = vec![0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0];
        two.extend_from_slice(&[200, 0, 0, 5, 7, 0, 0, 0, 11, 0, 0, 4]);
        let p = Packet::new_checked(&two[..]).unwrap();
        let chunks: Vec<_> = p.chunks().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].value, &[7]);
        assert_eq!(chunks[1].chunk_type, chunk_type::COOKIE_ACK);
        let ack = Init {
            initiate_tag: 1,
            a_rwnd: 2,
            outbound_streams: 3,
            inbound_streams: 4,
            initial_tsn: 5,
            params: &[0, 7, 0, 5, 9],
        };
        let mut out = [0u8; 40];
        let n = Repr { chunk: ChunkRepr::InitAck(ack), ..r }.emit(&mut out).unwrap();
        assert_eq!(n, 12 + 28);
        let p = Packet::new_checked(&out[..n]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap().chunk, ChunkRepr::InitAck(ack));
    }

    #[test]
    fn hostile() {
        assert!(Packet::new_checked(&[][..]).is_err());
        assert!(Packet::new_checked(&SCTP_INIT[20..31]).is_err());
        for bad_len in [0u8, 2, 3] {
            let mut b = SCTP_INIT;
            b[20 + 14] = 0;
            b[20 + 15] = bad_len;
            assert_eq!(Packet::new_checked(&b[20..]).unwrap_err(), WireError::BadLength("sctp chunk length"));
        }
        let mut b = SCTP_INIT;
        b[20 + 15] = 21; // past end
        assert!(Packet::new_checked(&b[20..]).is_err());
        assert!(Packet::new_checked(&SCTP_INIT[20..51]).is_err());
        assert!(Packet::new_checked(&SCTP_INIT[20..34]).is_err()); // partial chunk header
                                                                   // Chunk count bound.
        let mut many = vec![0u8; 12];
        for _ in 0..(MAX_CHUNKS + 1) {
            many.extend_from_slice(&[11, 0, 0, 4]);
        }
        assert_eq!(Packet::new_checked(&many[..]).unwrap_err(), WireError::TooMany("sctp chunks"));
        // No chunk: header ok, Repr::parse fails.
        let p = Packet::new_checked(&SCTP_INIT[20..32]).unwrap();
        assert!(Repr::parse(&p).is_err());
        // Short INIT value parses as Other, Init::parse rejects it.
        assert!(Init::parse(&[0; 15]).is_err());
    }
}
