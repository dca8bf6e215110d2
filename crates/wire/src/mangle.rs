//! Rewriting a built IP packet the way evasion options ask: IPv4 options inserted after the
//! header ([`insert_ipv4_options`]), a transport checksum made wrong on purpose
//! ([`corrupt_checksum`]), and the packet cut into IP fragments ([`fragment_count`],
//! [`write_fragment`]: IPv4 fragments, or IPv6 fragment extension headers).
//!
//! Every function takes a whole packet as [`crate::probe::emit_ip`] writes it (an IPv4 header
//! without options or an IPv6 header with no extension header, then the transport header), so
//! the probe builders stay as they are and these run only when an option asks for them.
//! Fragmenting is stateless: fragment `k` of a packet is written on its own, so a caller can
//! put each fragment straight into its own send slot.

use crate::checksum::internet_checksum;
use crate::{ensure_room, ip_proto, ipv4, ipv6, rd16, Result, WireError};

/// Longest IPv4 options field (the header length field counts 15 words of 4 bytes).
pub const MAX_IPV4_OPTIONS: usize = 40;
/// Length of the IPv6 fragment extension header.
pub const IPV6_FRAG_HEADER_LEN: usize = 8;

fn version(pkt: &[u8]) -> Result<u8> {
    pkt.first().map(|b| b >> 4).ok_or(WireError::Truncated("ip header"))
}

/// Insert IPv4 options after the 20-byte header of the IPv4 packet `buf[..len]`, moving its
/// payload up; `opts` is padded with end-of-options bytes to a multiple of 4. The header
/// length, total length and header checksum are updated. Returns the new length. Fails if
/// the packet already has options, is not IPv4, or `buf` has no room.
pub fn insert_ipv4_options(buf: &mut [u8], len: usize, opts: &[u8]) -> Result<usize> {
    if opts.is_empty() {
        return Ok(len);
    }
    if opts.len() > MAX_IPV4_OPTIONS {
        return Err(WireError::BadLength("ipv4 options"));
    }
    let p = ipv4::Packet::new_checked(buf.get(..len).ok_or(WireError::Truncated("ipv4 header"))?)?;
    if p.header_len() != ipv4::HEADER_LEN || p.total_len() != len {
        return Err(WireError::BadLength("ipv4 header length"));
    }
    let padded = opts.len().div_ceil(4) * 4;
    let new_len = len + padded;
    ensure_room(new_len, buf.len())?;
    let total = u16::try_from(new_len).map_err(|_| WireError::BadLength("ipv4 total length"))?;
    buf.copy_within(ipv4::HEADER_LEN..len, ipv4::HEADER_LEN + padded);
    buf[ipv4::HEADER_LEN..ipv4::HEADER_LEN + opts.len()].copy_from_slice(opts);
    buf[ipv4::HEADER_LEN + opts.len()..ipv4::HEADER_LEN + padded].fill(0);
    buf[0] = 0x40 | ((ipv4::HEADER_LEN + padded) / 4) as u8;
    buf[2..4].copy_from_slice(&total.to_be_bytes());
    let mut p = ipv4::Packet::new_checked(&mut buf[..new_len])?;
    p.fill_checksum();
    Ok(new_len)
}

/// Where the transport header of `pkt` starts and its protocol: after the IPv4 header (with
/// its options) or right after the IPv6 header.
fn transport(pkt: &[u8]) -> Result<(usize, u8)> {
    match version(pkt)? {
        4 => {
            let p = ipv4::Packet::new_checked(pkt)?;
            Ok((p.header_len(), p.protocol()))
        }
        6 => {
            ensure_room(ipv6::HEADER_LEN, pkt.len())?;
            Ok((ipv6::HEADER_LEN, pkt[6]))
        }
        v => Err(WireError::BadVersion(v)),
    }
}

/// Make the transport checksum of `pkt` wrong (TCP, UDP, ICMP, ICMPv6: the 16-bit checksum;
/// SCTP: the CRC32c), as `--badsum` asks: a host drops such a packet, so any answer comes from
/// a middlebox that did not check it. A UDP checksum never becomes 0, which would mean
/// "no checksum" over IPv4.
pub fn corrupt_checksum(pkt: &mut [u8]) -> Result<()> {
    let (at, proto) = transport(pkt)?;
    let (off, width) = match proto {
        ip_proto::TCP => (16, 2),
        ip_proto::UDP => (6, 2),
        ip_proto::ICMP | ip_proto::ICMPV6 => (2, 2),
        ip_proto::SCTP => (8, 4),
        _ => return Err(WireError::BadOption("badsum: transport protocol")),
    };
    ensure_room(at + off + width, pkt.len())?;
    let field = &mut pkt[at + off..at + off + width];
    if width == 2 {
        let c = u16::from_be_bytes([field[0], field[1]]);
        // Any other non-zero value is wrong; this one is wrong by a fixed amount.
        let bad = match c.wrapping_add(0x5a5a) {
            0 => 1,
            v => v,
        };
        field.copy_from_slice(&bad.to_be_bytes());
    } else {
        for b in field.iter_mut() {
            *b ^= 0xa5;
        }
    }
    Ok(())
}

/// How the IP payload of `pkt` is cut: the length of the first piece and of every later one.
/// IPv4 pieces are all `size` bytes. An IPv6 first fragment must hold the whole transport
/// header (RFC 7112: Linux and others drop it otherwise), so its piece grows to cover it.
fn layout(pkt: &[u8], size: usize) -> Result<(usize, usize, usize)> {
    if size == 0 || !size.is_multiple_of(8) {
        return Err(WireError::BadLength("fragment size"));
    }
    match version(pkt)? {
        4 => {
            let p = ipv4::Packet::new_checked(pkt)?;
            Ok((p.total_len() - p.header_len(), size, size))
        }
        6 => {
            let payload = pkt.len().checked_sub(ipv6::HEADER_LEN).ok_or(WireError::Truncated("ipv6 header"))?;
            let l4 = &pkt[ipv6::HEADER_LEN..];
            let header = match pkt[6] {
                ip_proto::TCP => usize::from(l4.get(12).map_or(5, |b| b >> 4)) * 4,
                ip_proto::SCTP => 12,
                _ => 8,
            };
            Ok((payload, size.max(header.div_ceil(8) * 8), size))
        }
        v => Err(WireError::BadVersion(v)),
    }
}

/// How many fragments `pkt` makes when its IP payload is cut into pieces of `size` bytes (a
/// multiple of 8, at least 8; an IPv6 first piece holds at least the transport header).
/// An IPv4 packet that fits whole makes 1 (it is then sent unfragmented); an IPv6 one makes
/// 1 atomic fragment (a fragment header with nothing after it).
pub fn fragment_count(pkt: &[u8], size: usize) -> Result<usize> {
    let (payload, first, rest) = layout(pkt, size)?;
    Ok(1 + payload.saturating_sub(first).div_ceil(rest))
}

/// The IPv4 options a non-first fragment carries: those whose "copied" bit is set (RFC 791),
/// padded to a multiple of 4. Returns their length in `out`.
fn copied_options(opts: &[u8], out: &mut [u8; MAX_IPV4_OPTIONS]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < opts.len() {
        let t = opts[i];
        match t {
            0 => break,
            1 => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let l = usize::from(*opts.get(i + 1).unwrap_or(&0));
        if l < 2 || i + l > opts.len() {
            break;
        }
        if t & 0x80 != 0 && n + l <= MAX_IPV4_OPTIONS {
            out[n..n + l].copy_from_slice(&opts[i..i + l]);
            n += l;
        }
        i += l;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

/// Write fragment `k` (from 0) of `pkt`, cut into IP payload pieces of `size` bytes, into `buf`;
/// returns its length. IPv4 fragments keep the identification, carry MF on all but the last,
/// and the options on the first (later ones only the options marked "copied"). IPv6
/// fragments get a fragment header with identification `ident6`. With `size` at least the
/// payload, fragment 0 is the packet itself.
pub fn write_fragment(pkt: &[u8], size: usize, k: usize, ident6: u32, buf: &mut [u8]) -> Result<usize> {
    let count = fragment_count(pkt, size)?;
    if k >= count {
        return Err(WireError::BadLength("fragment index"));
    }
    let (payload_len, first, rest) = layout(pkt, size)?;
    let last = k + 1 == count;
    let at = if k == 0 { 0 } else { first + (k - 1) * rest };
    let end = if k == 0 { first } else { at + rest }.min(payload_len);
    match version(pkt)? {
        4 if count == 1 => {
            ensure_room(pkt.len(), buf.len())?;
            buf[..pkt.len()].copy_from_slice(pkt);
            Ok(pkt.len())
        }
        4 => {
            let p = ipv4::Packet::new_checked(pkt)?;
            let (hl, total) = (p.header_len(), p.total_len());
            let chunk = &pkt[hl..total][at..end];
            let mut opts = [0u8; MAX_IPV4_OPTIONS];
            let olen = if k == 0 {
                let o = &pkt[ipv4::HEADER_LEN..hl];
                opts[..o.len()].copy_from_slice(o);
                o.len()
            } else {
                copied_options(&pkt[ipv4::HEADER_LEN..hl], &mut opts)
            };
            let fhl = ipv4::HEADER_LEN + olen;
            let n = fhl + chunk.len();
            ensure_room(n, buf.len())?;
            buf[..ipv4::HEADER_LEN].copy_from_slice(&pkt[..ipv4::HEADER_LEN]);
            buf[ipv4::HEADER_LEN..fhl].copy_from_slice(&opts[..olen]);
            buf[fhl..n].copy_from_slice(chunk);
            buf[0] = 0x40 | (fhl / 4) as u8;
            let total = u16::try_from(n).map_err(|_| WireError::BadLength("ipv4 total length"))?;
            buf[2..4].copy_from_slice(&total.to_be_bytes());
            let offset = u16::try_from(at).map_err(|_| WireError::BadLength("ipv4 fragment offset"))?;
            let mut f = ipv4::Packet::new_checked(&mut buf[..n])?;
            f.set_fragment(false, !last, offset)?;
            f.fill_checksum();
            Ok(n)
        }
        6 => {
            let h = ipv6::HEADER_LEN;
            let chunk = &pkt[h..][at..end];
            let n = h + IPV6_FRAG_HEADER_LEN + chunk.len();
            ensure_room(n, buf.len())?;
            buf[..h].copy_from_slice(&pkt[..h]);
            let plen = u16::try_from(IPV6_FRAG_HEADER_LEN + chunk.len())
                .map_err(|_| WireError::BadLength("ipv6 payload length"))?;
            buf[4..6].copy_from_slice(&plen.to_be_bytes());
            buf[6] = ip_proto::IPV6_FRAG;
            let offset = u16::try_from(at).map_err(|_| WireError::BadLength("ipv6 fragment offset"))?;
            let fh = &mut buf[h..h + IPV6_FRAG_HEADER_LEN];
            fh[0] = pkt[6];
            fh[1] = 0;
            fh[2..4].copy_from_slice(&(offset | u16::from(!last)).to_be_bytes());
            fh[4..8].copy_from_slice(&ident6.to_be_bytes());
            buf[h + IPV6_FRAG_HEADER_LEN..n].copy_from_slice(chunk);
            Ok(n)
        }
        v => Err(WireError::BadVersion(v)),
    }
}

/// The checksum of an IPv4 header, for tests and callers that check a rewritten packet.
pub fn ipv4_header_ok(pkt: &[u8]) -> bool {
    let Some(&b) = pkt.first() else { return false };
    let hl = usize::from(b & 0xf) * 4;
    pkt.len() >= hl && hl >= ipv4::HEADER_LEN && internet_checksum(&pkt[..hl]) == 0 && rd16(pkt, 2..4) as usize >= hl
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{emit_ip, parse_reply, IpProbe, ReplyBody, L4};
    use crate::tcp::{Flags, TcpOption};
    use std::net::IpAddr;

    fn syn(src: &str, dst: &str) -> Vec<u8> {
        let mss = [TcpOption::MaxSegmentSize(1460)];
        let p = IpProbe {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ttl: 64,
            ip_id: 0x1234,
            l4: L4::Tcp {
                sport: 40000,
                dport: 80,
                seq: 7,
                ack: 0,
                flags: Flags::SYN,
                window: 1024,
                options: &mss,
                payload: b"abcdefgh",
            },
        };
        let mut buf = [0u8; 200];
        let n = emit_ip(&p, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    /// Put fragments back together as a receiver would (a test-side reassembler).
    fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
        let first = &frags[0];
        if first[0] >> 4 == 4 {
            let hl = usize::from(first[0] & 0xf) * 4;
            let mut out = first[..hl].to_vec();
            let mut payload = Vec::new();
            for f in frags {
                let p = ipv4::Packet::new_checked(&f[..]).unwrap();
                assert_eq!(usize::from(p.frag_offset()), payload.len());
                payload.extend_from_slice(p.payload());
            }
            out.extend_from_slice(&payload);
            let total = out.len() as u16;
            out[2..4].copy_from_slice(&total.to_be_bytes());
            let mut p = ipv4::Packet::new_checked(&mut out[..]).unwrap();
            p.set_fragment(false, false, 0).unwrap();
            p.fill_checksum();
            out
        } else {
            let mut out = first[..40].to_vec();
            out[6] = first[40];
            let mut payload = Vec::new();
            for f in frags {
                let off = usize::from(u16::from_be_bytes([f[42], f[43]]) & !7);
                assert_eq!(off, payload.len());
                payload.extend_from_slice(&f[48..]);
            }
            out[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
            out.extend_from_slice(&payload);
            out
        }
    }

    fn cut(pkt: &[u8], size: usize) -> Vec<Vec<u8>> {
        let n = fragment_count(pkt, size).unwrap();
        (0..n)
            .map(|k| {
                let mut b = [0u8; 200];
                let len = write_fragment(pkt, size, k, 0xabcd, &mut b).unwrap();
                b[..len].to_vec()
            })
            .collect()
    }

    #[test]
    fn ipv4_fragments_of_8_bytes_reassemble_to_the_probe() {
        let pkt = syn("198.18.0.2", "198.18.0.10");
        let frags = cut(&pkt, 8);
        // 24 bytes of TCP header + 8 of data: 4 fragments of 8.
        assert_eq!(frags.len(), 4);
        for (k, f) in frags.iter().enumerate() {
            let p = ipv4::Packet::new_checked(&f[..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(p.more_frags(), k < 3);
            assert_eq!(usize::from(p.frag_offset()), k * 8);
            assert_eq!(p.ident(), 0x1234);
            assert_eq!(p.payload().len(), 8);
        }
        assert_eq!(reassemble(&frags), pkt);
        // 16-byte pieces: 2 fragments.
        assert_eq!(cut(&pkt, 16).len(), 2);
        assert_eq!(reassemble(&cut(&pkt, 16)), pkt);
    }

    #[test]
    fn an_ipv4_packet_smaller_than_the_fragment_size_goes_whole() {
        let pkt = syn("198.18.0.2", "198.18.0.10");
        let frags = cut(&pkt, 1024);
        assert_eq!(frags, vec![pkt]);
    }

    #[test]
    fn ipv6_fragments_carry_a_fragment_header_and_reassemble() {
        let pkt = syn("fd00:18::2", "fd00:18::10");
        // 24 bytes of TCP header and 8 of data: the first fragment holds the whole header
        // (RFC 7112), the data follows in 8-byte pieces.
        let frags = cut(&pkt, 8);
        assert_eq!(frags.len(), 2);
        for (k, f) in frags.iter().enumerate() {
            assert_eq!(f[6], ip_proto::IPV6_FRAG);
            assert_eq!(f[40], ip_proto::TCP);
            let field = u16::from_be_bytes([f[42], f[43]]);
            assert_eq!(field & 1 == 1, k == 0, "M flag");
            assert_eq!(usize::from(field & !7), k * 24);
            assert_eq!(&f[44..48], &0xabcdu32.to_be_bytes());
        }
        assert_eq!(reassemble(&frags), pkt);
        // Larger pieces: the first carries 32 bytes, the rest nothing: one atomic fragment.
        let frags = cut(&pkt, 32);
        assert_eq!(frags.len(), 1);
        assert_eq!((frags[0][6], frags[0][43] & 1), (ip_proto::IPV6_FRAG, 0));
        assert_eq!(reassemble(&frags), pkt);
        assert!(matches!(parse_reply(&reassemble(&frags)).unwrap().body, ReplyBody::Tcp { dport: 80, .. }));
    }

    #[test]
    fn bad_fragment_sizes_and_indexes_are_errors() {
        let pkt = syn("198.18.0.2", "198.18.0.10");
        assert!(fragment_count(&pkt, 0).is_err());
        assert!(fragment_count(&pkt, 12).is_err());
        let mut b = [0u8; 100];
        assert!(write_fragment(&pkt, 8, 4, 0, &mut b).is_err());
        assert!(write_fragment(&pkt, 8, 0, 0, &mut [0u8; 10]).is_err());
        assert!(fragment_count(&[0x70], 8).is_err());
        assert!(fragment_count(&[], 8).is_err());
    }

    #[test]
    fn ipv4_options_are_inserted_and_the_packet_still_parses() {
        let pkt = syn("198.18.0.2", "198.18.0.10");
        let mut buf = [0u8; 200];
        buf[..pkt.len()].copy_from_slice(&pkt);
        // Record route with room for 2 addresses: 3 + 8 = 11 bytes, padded to 12.
        let rr = [7u8, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
        let n = insert_ipv4_options(&mut buf, pkt.len(), &rr).unwrap();
        assert_eq!(n, pkt.len() + 12);
        let p = ipv4::Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.header_len(), 32);
        assert!(p.verify_checksum());
        assert_eq!(&p.options()[..11], &rr);
        let r = parse_reply(&buf[..n]).unwrap();
        assert!(matches!(r.body, ReplyBody::Tcp { dport: 80, seq: 7, .. }));
        assert_eq!(r.src, "198.18.0.2".parse::<IpAddr>().unwrap());
        // Too long, or twice.
        assert!(insert_ipv4_options(&mut buf, n, &rr).is_err());
        let mut b2 = [0u8; 200];
        b2[..pkt.len()].copy_from_slice(&pkt);
        assert!(insert_ipv4_options(&mut b2, pkt.len(), &[1u8; 41]).is_err());
        assert!(insert_ipv4_options(&mut b2[..pkt.len() + 4], pkt.len(), &rr).is_err());
    }

    #[test]
    fn later_fragments_keep_only_copied_options() {
        let pkt = syn("198.18.0.2", "198.18.0.10");
        let mut buf = [0u8; 200];
        buf[..pkt.len()].copy_from_slice(&pkt);
        // Record route (not copied), then loose source route to one hop (copied, type 131).
        let opts = [7u8, 7, 4, 0, 0, 0, 0, 131, 7, 4, 198, 18, 0, 1];
        let n = insert_ipv4_options(&mut buf, pkt.len(), &opts).unwrap();
        let frags = cut(&buf[..n], 8);
        let first = ipv4::Packet::new_checked(&frags[0][..]).unwrap();
        assert_eq!(first.header_len(), 36);
        let second = ipv4::Packet::new_checked(&frags[1][..]).unwrap();
        assert_eq!(second.header_len(), 28);
        assert_eq!(&second.options()[..7], &opts[7..]);
        assert!(second.verify_checksum());
        assert!(ipv4_header_ok(&frags[1]));
    }

    #[test]
    fn corrupted_checksums_fail_verification() {
        let mut pkt = syn("198.18.0.2", "198.18.0.10");
        assert!(crate::probe::checksums_ok(&pkt));
        corrupt_checksum(&mut pkt).unwrap();
        assert!(!crate::probe::checksums_ok(&pkt));
        let mut v6 = syn("fd00:18::2", "fd00:18::10");
        corrupt_checksum(&mut v6).unwrap();
        assert!(!crate::probe::checksums_ok(&v6));
        let udp = IpProbe {
            src: "198.18.0.2".parse().unwrap(),
            dst: "198.18.0.10".parse().unwrap(),
            ttl: 64,
            ip_id: 1,
            l4: L4::Udp { sport: 1, dport: 53, payload: b"x" },
        };
        let mut b = [0u8; 100];
        let n = emit_ip(&udp, &mut b).unwrap();
        corrupt_checksum(&mut b[..n]).unwrap();
        assert!(!crate::probe::checksums_ok(&b[..n]));
        assert_ne!(u16::from_be_bytes([b[26], b[27]]), 0);
        assert!(corrupt_checksum(&mut []).is_err());
    }
}
