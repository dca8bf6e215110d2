//! QUIC's version-independent invariants (RFC 8999) as far as a scanner needs them: a datagram
//! that makes any QUIC server answer with a Version Negotiation packet, and a checked parser for
//! that answer. No I/O, no cryptography: the full handshake (ALPN) is the detector's business.
//!
//! Why this probe works everywhere: a long-header packet whose version is one of the reserved
//! `0x?a?a?a?a` values (RFC 9000 §15) is a version no server supports, so a server that gets it in
//! a datagram large enough to start a connection (RFC 9000 §14.1: at least 1200 bytes) answers
//! with the list of versions it does support (RFC 9000 §6.1). No state is created on the server.

use crate::WireError;

const TRUNC: &str = "QUIC version negotiation";

/// The smallest UDP payload a server must accept as the start of a connection (RFC 9000 §14.1).
pub const MIN_INITIAL_DATAGRAM: usize = 1200;

/// Longest connection ID QUIC v1 allows (RFC 9000 §17.2); RFC 8999 allows 255, we never send more
/// than this.
pub const MAX_CID_LEN: usize = 20;

/// Most versions kept from one Version Negotiation packet (a hostile server may list thousands).
pub const MAX_VERSIONS: usize = 64;

/// Build a long-header datagram with the reserved version derived from `nibble` (any value: the
/// low nibbles of each byte are forced to `0xa`), destination `dcid` and source `scid` (each at
/// most [`MAX_CID_LEN`] bytes; longer ones are cut), padded to [`MIN_INITIAL_DATAGRAM`] bytes.
pub fn version_probe(nibble: u32, dcid: &[u8], scid: &[u8]) -> Vec<u8> {
    let dcid = &dcid[..dcid.len().min(MAX_CID_LEN)];
    let scid = &scid[..scid.len().min(MAX_CID_LEN)];
    let mut out = Vec::with_capacity(MIN_INITIAL_DATAGRAM);
    // Long header (0x80), fixed bit (0x40), packet type Initial (00): what v1 servers expect.
    out.push(0xc0);
    out.extend_from_slice(&reserved_version(nibble).to_be_bytes());
    out.push(dcid.len() as u8);
    out.extend_from_slice(dcid);
    out.push(scid.len() as u8);
    out.extend_from_slice(scid);
    out.resize(MIN_INITIAL_DATAGRAM, 0);
    out
}

/// A version of the reserved `0x?a?a?a?a` pattern (RFC 9000 §15), high nibbles from `nibble`.
pub fn reserved_version(nibble: u32) -> u32 {
    (nibble & 0xf0f0_f0f0) | 0x0a0a_0a0a
}

/// Whether `v` is one of the reserved (greasing) versions.
pub fn is_reserved(v: u32) -> bool {
    v & 0x0f0f_0f0f == 0x0a0a_0a0a
}

/// A parsed Version Negotiation packet (RFC 8999 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionNegotiation<'a> {
    /// Destination connection ID: must echo the source ID we sent.
    pub dcid: &'a [u8],
    /// Source connection ID: must echo the destination ID we sent.
    pub scid: &'a [u8],
    /// Versions the server supports, in its order, reserved ones left out, at most
    /// [`MAX_VERSIONS`].
    pub versions: Vec<u32>,
}

impl<'a> VersionNegotiation<'a> {
    /// Parse `b` as a Version Negotiation packet.
    pub fn parse(b: &'a [u8]) -> Result<VersionNegotiation<'a>, WireError> {
        let first = *b.first().ok_or(WireError::Truncated(TRUNC))?;
        if first & 0x80 == 0 {
            return Err(WireError::Unsupported("QUIC short header"));
        }
        let version =
            u32::from_be_bytes(b.get(1..5).ok_or(WireError::Truncated(TRUNC))?.try_into().unwrap_or_default());
        if version != 0 {
            return Err(WireError::Unsupported("QUIC long header with a version"));
        }
        let mut at = 5;
        let dcid = cid(b, &mut at)?;
        let scid = cid(b, &mut at)?;
        let list = &b[at..];
        if list.is_empty() || !list.len().is_multiple_of(4) {
            return Err(WireError::BadLength("QUIC version list"));
        }
        let versions = list
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .filter(|v| !is_reserved(*v))
            .take(MAX_VERSIONS)
            .collect();
        Ok(VersionNegotiation { dcid, scid, versions })
    }
}

/// A length-prefixed connection ID at `*at` (RFC 8999 allows up to 255 bytes).
fn cid<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8], WireError> {
    let len = usize::from(*b.get(*at).ok_or(WireError::Truncated(TRUNC))?);
    let id = b.get(*at + 1..*at + 1 + len).ok_or(WireError::Truncated(TRUNC))?;
    *at += 1 + len;
    Ok(id)
}

/// A version's usual name: `1`, `2`, `draft-29`, Google's `Q050`, else hex.
pub fn version_name(v: u32) -> String {
    match v {
        0x0000_0001 => "1".into(),
        0x6b33_43cf => "2".into(),
        0xff00_0001..=0xff00_00ff => format!("draft-{}", v & 0xff),
        _ => {
            let b = v.to_be_bytes();
            // Google QUIC: "Q" or "T" followed by three digits.
            if matches!(b[0], b'Q' | b'T') && b[1..].iter().all(u8::is_ascii_digit) {
                b.iter().map(|&c| char::from(c)).collect()
            } else {
                format!("0x{v:08x}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_is_a_padded_long_header_with_a_reserved_version() {
        let p = version_probe(0x1234_5678, &[1; 8], &[2; 5]);
        assert_eq!(p.len(), 1200);
        assert_eq!(p[0], 0xc0);
        let v = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
        assert_eq!(v, 0x1a3a5a7a);
        assert!(is_reserved(v));
        assert_eq!(p[5], 8);
        assert_eq!(&p[6..14], &[1; 8]);
        assert_eq!(p[14], 5);
        assert_eq!(&p[15..20], &[2; 5]);
        assert!(p[20..].iter().all(|&b| b == 0));
        // Over-long IDs are cut to 20 bytes.
        let p = version_probe(0, &[7; 40], &[]);
        assert_eq!(p[5], 20);
        assert_eq!(p[26], 0);
    }

    #[test]
    fn parses_a_version_negotiation_packet() {
        // Hand-built per RFC 8999 §6: first byte 0x80|random, version 0, DCID (4), SCID (2),
        // versions: v2, v1, a reserved one, draft-29, Q050.
        let mut b = vec![0xab, 0, 0, 0, 0, 4, 9, 9, 9, 9, 2, 5, 5];
        for v in [0x6b33_43cfu32, 1, 0x5a6a_7a8a, 0xff00_001d, u32::from_be_bytes(*b"Q050")] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        let vn = VersionNegotiation::parse(&b).unwrap();
        assert_eq!(vn.dcid, &[9, 9, 9, 9]);
        assert_eq!(vn.scid, &[5, 5]);
        let names: Vec<String> = vn.versions.iter().map(|&v| version_name(v)).collect();
        assert_eq!(names, ["2", "1", "draft-29", "Q050"]);
        assert_eq!(version_name(0xdead_beef), "0xdeadbeef");
    }

    #[test]
    fn rejects_what_is_not_a_version_negotiation() {
        assert_eq!(VersionNegotiation::parse(&[]), Err(WireError::Truncated(TRUNC)));
        // Short header.
        assert!(VersionNegotiation::parse(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        // A v1 long header (an Initial), not version 0.
        assert!(VersionNegotiation::parse(&[0xc0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]).is_err());
        // CID length beyond the packet.
        assert_eq!(VersionNegotiation::parse(&[0x80, 0, 0, 0, 0, 200, 1, 2]), Err(WireError::Truncated(TRUNC)));
        // Empty version list, and a ragged one.
        assert!(VersionNegotiation::parse(&[0x80, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(VersionNegotiation::parse(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn version_list_is_bounded() {
        let mut b = vec![0x80, 0, 0, 0, 0, 0, 0];
        for i in 0..1000u32 {
            b.extend_from_slice(&(i + 1).to_be_bytes());
        }
        assert_eq!(VersionNegotiation::parse(&b).unwrap().versions.len(), MAX_VERSIONS);
    }
}
