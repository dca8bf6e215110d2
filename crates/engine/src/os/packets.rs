//! The OS probes' packets: building each of them (IPv4), and reading an answer into the plain
//! values of `rustmap_os::observe`.
//!
//! Every TCP probe of a host leaves from its own source port ([`Ports::tcp`], one per probe), so
//! the port an answer arrives on names the probe; the sequence number it acknowledges must be the
//! probe's too. The UDP probe has its own port, the ICMP probes the stage's identifier and their
//! index as sequence number.

use rustmap_os::observe::{EchoReply, TcpOpt, TcpReply, UnreachReply};
use rustmap_wire::tcp::{self, Flags, TcpOption};
use rustmap_wire::{icmpv4, ip_proto, ipv4, ipv6, udp};
use std::net::Ipv4Addr;
use std::time::Duration;

/// One OS probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// The timed SYNs to the open port, 0..6.
    Seq(u8),
    /// The ECN-setup SYN to the open port.
    Ecn,
    /// T2 to T7 (2..=7): T2-T4 to the open port, T5-T7 to the closed one.
    T(u8),
    /// UDP to the closed UDP port.
    U1,
    /// The ICMP rate-limit burst: [`BURST`] small UDP datagrams to the closed UDP port, back to
    /// back (0..BURST).
    Burst(u8),
    /// Echo requests 0 and 1.
    Echo(u8),
    /// ICMP timestamp request.
    IcmpTs,
}

impl Probe {
    /// The TCP probes in the order of their source ports.
    pub const TCP: [Probe; 13] = [
        Probe::Seq(0),
        Probe::Seq(1),
        Probe::Seq(2),
        Probe::Seq(3),
        Probe::Seq(4),
        Probe::Seq(5),
        Probe::Ecn,
        Probe::T(2),
        Probe::T(3),
        Probe::T(4),
        Probe::T(5),
        Probe::T(6),
        Probe::T(7),
    ];

    /// Index among [`Probe::TCP`].
    pub fn tcp_index(self) -> Option<usize> {
        Probe::TCP.iter().position(|p| *p == self)
    }

    /// Does it go to the closed TCP port?
    pub fn to_closed(self) -> bool {
        matches!(self, Probe::T(5..=7))
    }
}

/// The source ports and identifiers the stage's probes use.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// One per TCP probe, in the order of [`Probe::TCP`].
    pub tcp: [u16; 13],
    /// The UDP probe's.
    pub udp: u16,
    /// The ICMP identifier.
    pub icmp_id: u16,
}

/// The UDP probe's payload byte and length, and its IP identification (checked in the quote).
pub const U1_FILL: u8 = 0x43;
/// Payload length of the UDP probe.
pub const U1_LEN: usize = 300;
/// IP identification of the UDP probe.
pub const U1_IP_ID: u16 = 0x4207;
/// Datagrams in the rate-limit burst.
pub const BURST: u8 = 8;
/// Payload length of a burst datagram (its quoted UDP length tells its answers from U1's).
pub const BURST_LEN: usize = 16;
/// Payload byte of a burst datagram.
const BURST_FILL: u8 = 0x42;
/// The timestamp value our SYNs carry.
const OUR_TSVAL: u32 = 0x5255_4d31;

/// How one TCP probe looks: flags, window, options, DF, urgent pointer.
struct TcpShape {
    flags: Flags,
    window: u16,
    options: &'static [TcpOption<'static>],
    df: bool,
    urgent: u16,
}

const TS: TcpOption<'static> = TcpOption::Timestamps { tsval: OUR_TSVAL, tsecr: 0 };
use TcpOption::{
    EndOfList as EOL, MaxSegmentSize as Mss, NoOperation as NOP, SackPermitted as SACK, WindowScale as WS,
};

/// The six SYNs: each offers a different set of options (all of them; window scale 0; no SACK;
/// no MSS; an end-of-list; no window scale), so the answers' layouts tell stacks apart.
const SEQ_OPTS: [&[TcpOption<'static>]; 6] = [
    &[Mss(1460), SACK, TS, NOP, WS(10)],
    &[Mss(1400), WS(0), SACK, TS],
    &[TS, NOP, NOP, WS(5), NOP, Mss(640)],
    &[SACK, TS, WS(10)],
    &[Mss(536), SACK, TS, WS(10), EOL],
    &[Mss(265), SACK, TS],
];
const SEQ_WIN: [u16; 6] = [1024, 63, 4, 4, 16, 512];
const ECN_OPTS: &[TcpOption<'static>] = &[WS(10), NOP, Mss(1460), SACK, NOP, NOP];
const ODD_OPTS: &[TcpOption<'static>] = &[WS(10), NOP, Mss(265), TS, SACK];

fn shape(p: Probe) -> Option<TcpShape> {
    let f = |flags, window, options, df| Some(TcpShape { flags, window, options, df, urgent: 0 });
    match p {
        Probe::Seq(i) => {
            let i = usize::from(i);
            f(Flags::SYN, *SEQ_WIN.get(i)?, *SEQ_OPTS.get(i)?, false)
        }
        // The urgent pointer without URG: some stacks echo it, or its absence, in the answer.
        Probe::Ecn => Some(TcpShape {
            flags: Flags::from_bits(Flags::SYN.bits() | Flags::ECE.bits() | Flags::CWR.bits()),
            window: 3,
            options: ECN_OPTS,
            df: false,
            urgent: 0xa5a5,
        }),
        Probe::T(2) => f(Flags::empty(), 128, ODD_OPTS, true),
        Probe::T(3) => {
            let bits = Flags::SYN.bits() | Flags::FIN.bits() | Flags::URG.bits() | Flags::PSH.bits();
            f(Flags::from_bits(bits), 256, ODD_OPTS, false)
        }
        Probe::T(4) => f(Flags::ACK, 1024, ODD_OPTS, true),
        Probe::T(5) => f(Flags::SYN, 8192, ODD_OPTS, false),
        Probe::T(6) => f(Flags::ACK, 16384, ODD_OPTS, true),
        Probe::T(7) => {
            let bits = Flags::FIN.bits() | Flags::PSH.bits() | Flags::URG.bits();
            f(Flags::from_bits(bits), 65535, ODD_OPTS, false)
        }
        _ => None,
    }
}

/// Does the probe have the ACK flag? (Every TCP probe fills the acknowledgement field.)
pub fn sends_ack(p: Probe) -> bool {
    shape(p).is_some_and(|s| s.flags.contains(Flags::ACK))
}

/// What a probe to build needs.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Our address.
    pub src: Ipv4Addr,
    /// The target.
    pub dst: Ipv4Addr,
    /// The probe.
    pub probe: Probe,
    /// Destination port (TCP or UDP; ignored for ICMP).
    pub dport: u16,
    /// Sequence number (TCP).
    pub seq: u32,
    /// Acknowledgement number (every TCP probe: with the ACK flag or not).
    pub ack: u32,
    /// IP identification.
    pub ip_id: u16,
    /// TTL.
    pub ttl: u8,
}

/// Build the probe into `buf` (at least [`MAX_LEN`] bytes); its length, or `None` when it cannot
/// be built.
pub fn build(ports: &Ports, s: &Spec, buf: &mut [u8]) -> Option<usize> {
    let (proto, df, tos, ident, body_len) = {
        let body = buf.get_mut(ipv4::HEADER_LEN..)?;
        match s.probe {
            Probe::U1 => {
                let payload = [U1_FILL; U1_LEN];
                let n = udp::Repr { src_port: ports.udp, dst_port: s.dport, payload: &payload }
                    .emit(body, s.src.into(), s.dst.into())
                    .ok()?;
                (ip_proto::UDP, false, 0, U1_IP_ID, n)
            }
            Probe::Burst(_) => {
                let payload = [BURST_FILL; BURST_LEN];
                let n = udp::Repr { src_port: ports.udp, dst_port: s.dport, payload: &payload }
                    .emit(body, s.src.into(), s.dst.into())
                    .ok()?;
                (ip_proto::UDP, false, 0, s.ip_id, n)
            }
            Probe::Echo(i) => {
                // Echo 0: code 9, DF, 120 bytes; echo 1: code 0, TOS 4, 150 bytes.
                let (code, df, tos, len) = if i == 0 { (9, true, 0, 120) } else { (0, false, 4, 150) };
                let data = [0u8; 150];
                let r =
                    icmpv4::Repr::EchoRequest { ident: ports.icmp_id, seq_no: u16::from(i) + 1, data: &data[..len] };
                let n = r.emit(body).ok()?;
                let mut p = icmpv4::Packet::new_checked(&mut body[..n]).ok()?;
                p.set_code(code);
                p.fill_checksum();
                (ip_proto::ICMP, df, tos, s.ip_id, n)
            }
            Probe::IcmpTs => {
                let r = icmpv4::Repr::Timestamp {
                    reply: false,
                    ident: ports.icmp_id,
                    seq_no: 3,
                    originate: 0,
                    receive: 0,
                    transmit: 0,
                };
                (ip_proto::ICMP, false, 0, s.ip_id, r.emit(body).ok()?)
            }
            p => {
                let sh = shape(p)?;
                let sport = *ports.tcp.get(p.tcp_index()?)?;
                let mut opts = [0u8; tcp::MAX_OPTIONS_LEN];
                let n = tcp::emit_options(sh.options, &mut opts).ok()?;
                let r = tcp::Repr {
                    src_port: sport,
                    dst_port: s.dport,
                    seq_number: s.seq,
                    // Filled even without the ACK flag: a stack that answers such a segment with
                    // a reset numbered from this field (lwIP) differs from one that uses 0 (RFC 9293).
                    ack_number: s.ack,
                    flags: sh.flags,
                    window_len: sh.window,
                    urgent_at: sh.urgent,
                    options: opts.get(..n)?,
                    payload: &[],
                };
                (ip_proto::TCP, sh.df, 0, s.ip_id, r.emit(body, s.src.into(), s.dst.into()).ok()?)
            }
        }
    };
    let ip = ipv4::Repr {
        src_addr: s.src,
        dst_addr: s.dst,
        protocol: proto,
        payload_len: body_len,
        ttl: s.ttl,
        ident,
        tos,
        dont_frag: df,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(buf.get_mut(..ipv4::HEADER_LEN)?).ok()?;
    Some(ipv4::HEADER_LEN + body_len)
}

/// The largest probe built.
pub const MAX_LEN: usize = 512;

/// What a received packet is, for the OS stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A TCP segment from `from` to our port `dport`.
    Tcp {
        /// The sender.
        from: Ipv4Addr,
        /// Its source port (the probed port).
        sport: u16,
        /// Our port.
        dport: u16,
        /// Its fields.
        reply: TcpReply,
    },
    /// An echo reply with our identifier and sequence number `seq`.
    Echo {
        /// The sender.
        from: Ipv4Addr,
        /// The sequence number.
        seq: u16,
        /// Its fields.
        reply: EchoReply,
    },
    /// A timestamp reply with our identifier.
    IcmpTs {
        /// The sender.
        from: Ipv4Addr,
    },
    /// A port unreachable quoting our UDP probe.
    Unreach {
        /// The sender.
        from: Ipv4Addr,
        /// The probed port as quoted.
        dport: u16,
        /// Its fields.
        reply: UnreachReply,
    },
    /// An ICMP port unreachable quoting one of the burst's datagrams (to port `dport`).
    Burst {
        /// The sender.
        from: Ipv4Addr,
        /// The quoted destination port (our closed UDP port).
        dport: u16,
    },
}

/// Read `ip_packet` (received at `at`); `None` when it is none of our answers. Hostile bytes give
/// `None`, never a panic.
pub fn parse(ports: &Ports, ip_packet: &[u8], at: Duration) -> Option<Answer> {
    let ip = ipv4::Packet::new_checked(ip_packet).ok()?;
    if ip.is_fragment() {
        return None;
    }
    let from = ip.src_addr();
    match ip.protocol() {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(ip.payload()).ok()?;
            if !ports.tcp.contains(&t.dst_port()) {
                return None;
            }
            Some(Answer::Tcp { from, sport: t.src_port(), dport: t.dst_port(), reply: tcp_reply(&ip, &t, at) })
        }
        ip_proto::ICMP => {
            let m = icmpv4::Packet::new_checked(ip.payload()).ok()?;
            match m.msg_type() {
                0 if m.ident() == ports.icmp_id => Some(Answer::Echo {
                    from,
                    seq: m.seq_no(),
                    reply: EchoReply { at, ttl: ip.ttl(), df: ip.dont_frag(), ip_id: ip.ident(), code: m.code() },
                }),
                14 if m.ident() == ports.icmp_id => Some(Answer::IcmpTs { from }),
                3 => unreach(ports, &ip, &m),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The fields the tests read of a TCP segment `t` in `ip`, received at `at`.
fn tcp_reply(ip: &ipv4::Packet<&[u8]>, t: &tcp::Packet<&[u8]>, at: Duration) -> TcpReply {
    TcpReply { ttl: ip.ttl(), df: ip.dont_frag(), ip_id: ip.ident(), ..tcp_fields(t, at) }
}

/// The TCP header's part of a [`TcpReply`] (IP fields left zero).
fn tcp_fields(t: &tcp::Packet<&[u8]>, at: Duration) -> TcpReply {
    TcpReply {
        at,
        flags: t.flags().bits(),
        window: t.window_len(),
        seq: t.seq_number(),
        ack: t.ack_number(),
        urgent: t.urgent_at(),
        options: t.option_iter().take(40).map_while(Result::ok).map(opt).collect(),
        payload_len: t.payload().len(),
        ..TcpReply::default()
    }
}

/// A packet the port scan kept for the passive tests, read as [`parse`] reads answers (its time
/// is the caller's to set): an unfragmented IPv4 TCP segment, or an IPv6 one (past any extension
/// headers; no DF bit or identification there). `None` for anything else; hostile bytes give
/// `None`, never a panic.
pub fn passive_reply(ip_packet: &[u8]) -> Option<TcpReply> {
    match ip_packet.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(ip_packet).ok()?;
            if ip.is_fragment() || ip.protocol() != ip_proto::TCP {
                return None;
            }
            let t = tcp::Packet::new_checked(ip.payload()).ok()?;
            Some(tcp_reply(&ip, &t, Duration::ZERO))
        }
        6 => {
            let ip = ipv6::Packet::new_checked(ip_packet).ok()?;
            let (upper, l4) = ip.upper_layer_slice().ok()?;
            if upper.fragment.is_some() || upper.next_header != ip_proto::TCP {
                return None;
            }
            let t = tcp::Packet::new_checked(l4).ok()?;
            Some(TcpReply { ttl: ip.hop_limit(), v6: true, ..tcp_fields(&t, Duration::ZERO) })
        }
        _ => None,
    }
}

fn unreach(ports: &Ports, ip: &ipv4::Packet<&[u8]>, m: &icmpv4::Packet<&[u8]>) -> Option<Answer> {
    let q = m.quoted()?;
    if q.protocol != ip_proto::UDP || q.dst_addr != ip.src_addr() {
        return None;
    }
    let u = q.payload;
    let sport = u16::from_be_bytes([*u.first()?, *u.get(1)?]);
    let dport = u16::from_be_bytes([*u.get(2)?, *u.get(3)?]);
    if sport != ports.udp {
        return None;
    }
    // The quoted UDP length names the datagram: the burst's are short, U1's long.
    if u.get(4..6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) == Some(8 + BURST_LEN) {
        return Some(Answer::Burst { from: ip.src_addr(), dport });
    }
    // Our checksum as sent: the datagram is fixed, so rebuild it and compare.
    let payload = [U1_FILL; U1_LEN];
    let mut ours = [0u8; 8 + U1_LEN];
    let sent_csum = udp::Repr { src_port: sport, dst_port: dport, payload: &payload }
        .emit(&mut ours, q.src_addr.into(), q.dst_addr.into())
        .ok()
        .map(|_| u16::from_be_bytes([ours[6], ours[7]]));
    let quoted_csum = u.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let data = u.get(8..).unwrap_or(&[]);
    let reply = UnreachReply {
        ttl: ip.ttl(),
        df: ip.dont_frag(),
        ip_id: ip.ident(),
        code: m.code(),
        ip_len: u16::try_from(ip.total_len()).unwrap_or(u16::MAX),
        quoted_len_ok: usize::from(q.total_len) == ipv4::HEADER_LEN + 8 + U1_LEN,
        quoted_id_ok: q.ident == U1_IP_ID,
        quoted_csum_ok: quoted_csum.is_some() && quoted_csum == sent_csum,
        quoted_data_ok: data.len() == U1_LEN && data.iter().all(|b| *b == U1_FILL),
    };
    Some(Answer::Unreach { from: ip.src_addr(), dport, reply })
}

fn opt(o: TcpOption<'_>) -> TcpOpt {
    match o {
        TcpOption::EndOfList => TcpOpt::Eol,
        TcpOption::NoOperation => TcpOpt::Nop,
        TcpOption::MaxSegmentSize(v) => TcpOpt::Mss(v),
        TcpOption::WindowScale(v) => TcpOpt::WindowScale(v),
        TcpOption::SackPermitted => TcpOpt::SackPermitted,
        TcpOption::Timestamps { tsval, tsecr } => TcpOpt::Timestamp { val: tsval, ecr: tsecr },
        TcpOption::Sack(_) => TcpOpt::Other(5),
        TcpOption::Unknown { kind, .. } => TcpOpt::Other(kind),
    }
}
