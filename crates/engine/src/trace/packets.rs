//! The trace stage's packets: building a probe for a token, and telling which token a received
//! packet answers and how.
//!
//! Tokens are 16-bit, never 0 or 0xffff. A TCP probe carries its token in the low half of its
//! sequence number, under a random salt in the high half; a UDP probe as its checksum; an echo
//! request as its sequence number under the stage's random identifier. Every reply names the
//! token back: the target's SYN/ACK or RST acknowledges `seq + 1`, its echo reply repeats the
//! sequence number, and an ICMP error quotes the transport header that holds it.

use super::ProbeKind;
use rustmap_wire::hop::{self, HopKind, HopProbe, HopTransport, IcmpError};
use rustmap_wire::tcp::Flags;
use std::net::IpAddr;

/// The stage's constants that every probe carries and every reply must echo.
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    /// Source port of TCP probes (held by a bound socket for the scan).
    pub tcp_sport: u16,
    /// Source port of UDP probes (held by a bound socket for the scan).
    pub udp_sport: u16,
    /// High half of TCP probes' sequence numbers.
    pub salt: u16,
    /// Identifier of echo requests.
    pub echo_id: u16,
}

/// One probe to build.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Our address.
    pub src: IpAddr,
    /// The target.
    pub dst: IpAddr,
    /// How it is probed.
    pub kind: ProbeKind,
    /// TTL.
    pub ttl: u8,
    /// Total size (0: the bare probe).
    pub size: u32,
    /// Set the don't-fragment flag (IPv4).
    pub dont_frag: bool,
    /// The token.
    pub token: u16,
    /// IPv4 identification.
    pub ip_id: u16,
}

/// Build the probe into `buf`; its length, or `None` if it cannot be built (a size too large,
/// mixed families).
pub fn build(stamp: &Stamp, s: &Spec, buf: &mut [u8]) -> Option<usize> {
    let transport = match s.kind {
        ProbeKind::TcpSyn { port } => HopTransport::TcpSyn {
            sport: stamp.tcp_sport,
            dport: port,
            seq: (u32::from(stamp.salt) << 16) | u32::from(s.token),
        },
        ProbeKind::Udp { port } => HopTransport::Udp { sport: stamp.udp_sport, dport: port, token: s.token },
        ProbeKind::Echo => HopTransport::Echo { id: stamp.echo_id, seq: s.token },
    };
    let p = HopProbe {
        src: s.src,
        dst: s.dst,
        ttl: s.ttl,
        ip_id: s.ip_id,
        dont_frag: s.dont_frag,
        size: usize::try_from(s.size).unwrap_or(usize::MAX),
        transport,
    };
    hop::emit_hop_probe(&p, buf).ok()
}

/// The size of the bare probe of this kind.
pub fn bare_size(v6: bool, kind: ProbeKind) -> u32 {
    let t = match kind {
        ProbeKind::TcpSyn { port } => HopTransport::TcpSyn { sport: 0, dport: port, seq: 0 },
        ProbeKind::Udp { port } => HopTransport::Udp { sport: 0, dport: port, token: 1 },
        ProbeKind::Echo => HopTransport::Echo { id: 0, seq: 0 },
    };
    u32::try_from(hop::min_len(v6, &t)).unwrap_or(u32::MAX)
}

/// What a received packet says about one of our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// The target answered the probe itself (TCP, echo reply, or an ICMP error from the
    /// target's own address, such as UDP port unreachable).
    Target,
    /// A router's time exceeded.
    Expired,
    /// A router says the target is unreachable.
    Unreachable,
    /// Fragmentation needed / packet too big, with the next hop's MTU.
    TooBig(u32),
}

/// A reply matched to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The probe's token.
    pub token: u16,
    /// Who sent the reply.
    pub from: IpAddr,
    /// The probe's destination as the reply shows it (the target for a direct answer).
    pub target: IpAddr,
    /// The probe's destination port, where the reply shows it (0 for echo).
    pub port: u16,
    /// What it says.
    pub heard: Heard,
}

/// Which token `ip_packet` answers, if any. Hostile bytes give `None`, never a panic.
pub fn classify(stamp: &Stamp, ip_packet: &[u8]) -> Option<Matched> {
    let r = hop::parse_hop_reply(ip_packet).ok()?;
    let token = |t: u16| (t != 0 && t != 0xffff).then_some(t);
    match r.kind {
        HopKind::Tcp { sport, dport, ack, flags } => {
            let seq = ack.wrapping_sub(1);
            let answer = flags.contains(Flags::RST) || flags.contains(Flags::SYN | Flags::ACK);
            if dport != stamp.tcp_sport || !answer || (seq >> 16) as u16 != stamp.salt {
                return None;
            }
            Some(Matched { token: token(seq as u16)?, from: r.src, target: r.src, port: sport, heard: Heard::Target })
        }
        HopKind::EchoReply { id, seq } if id == stamp.echo_id => {
            Some(Matched { token: token(seq)?, from: r.src, target: r.src, port: 0, heard: Heard::Target })
        }
        HopKind::Error { error, quote } => {
            let t = match quote.proto {
                6 if quote.sport == stamp.tcp_sport => {
                    let seq = quote.tcp_seq?;
                    ((seq >> 16) as u16 == stamp.salt).then_some(seq as u16)?
                }
                17 if quote.sport == stamp.udp_sport => quote.udp_sum?,
                1 | 58 => match quote.echo? {
                    (id, seq) if id == stamp.echo_id => seq,
                    _ => return None,
                },
                _ => return None,
            };
            let heard = match error {
                IcmpError::TimeExceeded => Heard::Expired,
                IcmpError::TooBig { mtu } => Heard::TooBig(mtu),
                IcmpError::Unreachable { .. } if r.src == quote.dst => Heard::Target,
                IcmpError::Unreachable { .. } => Heard::Unreachable,
                IcmpError::Other => return None,
            };
            Some(Matched { token: token(t)?, from: r.src, target: quote.dst, port: quote.dport, heard })
        }
        _ => None,
    }
}
