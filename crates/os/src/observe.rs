//! The answers the OS probes got, as plain values: what [`crate::fingerprint`] reads.
//!
//! The probe stage (engine) parses each answer with `rustmap-wire` and copies the fields here, so
//! this crate never touches raw bytes. Times are offsets from the first probe sent to the host;
//! only differences between them matter.
//!
//! The probe set (what each field answers):
//! - `seq`: six SYNs to an open port, about 100 ms apart, each with a different set of TCP
//!   options and window (sequence generation, IP ID, timestamps, option layout).
//! - `ecn`: a SYN with ECE and CWR set (an ECN-setup SYN) to the open port.
//! - `t2`..`t4`: odd segments to the open port (no flags; SYN+FIN+URG+PSH; ACK).
//! - `t5`..`t7`: SYN; ACK; FIN+PSH+URG to a closed port.
//! - `u1`: UDP to a closed port, with a payload (how the ICMP unreachable quotes it).
//! - `echo`: two ICMP echo requests with unusual code, TOS and DF values.
//! - `icmp_ts`: an ICMP timestamp request.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One TCP option of an answer, in the order the answer listed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpOpt {
    /// End of option list.
    Eol,
    /// No operation (padding).
    Nop,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// Timestamps.
    Timestamp {
        /// The sender's clock.
        val: u32,
        /// The echoed clock.
        ecr: u32,
    },
    /// Any other kind.
    Other(u8),
}

/// What was sent in a TCP probe that the answer's numbers are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcpSent {
    /// When it was sent.
    pub at: Duration,
    /// Its sequence number.
    pub seq: u32,
    /// Its acknowledgement number.
    pub ack: u32,
}

/// A TCP answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcpReply {
    /// When it arrived.
    pub at: Duration,
    /// IP TTL (hop limit) as received.
    pub ttl: u8,
    /// IPv4 don't-fragment bit (false for IPv6).
    pub df: bool,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    /// TCP flags byte (FIN 0x01 … CWR 0x80).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options, in order (at most 40 bytes' worth on the wire).
    pub options: Vec<TcpOpt>,
    /// Bytes of payload (some stacks put text in their resets).
    pub payload_len: usize,
    /// It came over IPv6, which has no DF bit and no identification in its header.
    #[serde(default)]
    pub v6: bool,
}

/// A probe that was sent and what came back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcpProbe {
    /// What was sent.
    pub sent: TcpSent,
    /// The answer, if any arrived in time.
    pub reply: Option<TcpReply>,
}

/// The ICMP port unreachable that answered the UDP probe.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UnreachReply {
    /// IP TTL as received.
    pub ttl: u8,
    /// Don't-fragment bit.
    pub df: bool,
    /// IPv4 identification.
    pub ip_id: u16,
    /// ICMP code (3: port unreachable).
    pub code: u8,
    /// Total length of the ICMP message's IP packet.
    pub ip_len: u16,
    /// The quoted IP header's total length is the one sent.
    pub quoted_len_ok: bool,
    /// The quoted IP identification is the one sent.
    pub quoted_id_ok: bool,
    /// The quoted UDP checksum is the one sent.
    pub quoted_csum_ok: bool,
    /// Every quoted payload byte is the one sent (false when cut short or changed).
    pub quoted_data_ok: bool,
}

/// An ICMP echo reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EchoReply {
    /// When it arrived.
    #[serde(default)]
    pub at: Duration,
    /// IP TTL as received.
    pub ttl: u8,
    /// Don't-fragment bit.
    pub df: bool,
    /// IPv4 identification.
    pub ip_id: u16,
    /// ICMP code of the reply.
    pub code: u8,
}

/// An ICMP echo request that was sent and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EchoProbe {
    /// The request's ICMP code (non-zero, to see whether it is echoed).
    pub code: u8,
    /// The request's don't-fragment bit.
    pub df: bool,
    /// The answer.
    pub reply: Option<EchoReply>,
}

/// Everything the OS probes of one host saw. `None` means "not sent" (no open or closed port to
/// send to, or the protocol does not apply); a sent probe with no answer is `Some` with `reply:
/// None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Observations {
    /// The six timed SYNs to the open port, in the order sent.
    pub seq: Vec<TcpProbe>,
    /// The ECN-setup SYN.
    pub ecn: Option<TcpProbe>,
    /// T2 to T7, index 0 = T2.
    pub t: [Option<TcpProbe>; 6],
    /// The UDP probe to a closed port: `Some(None)` sent but unanswered.
    pub u1: Option<Option<UnreachReply>>,
    /// The two echo requests.
    pub echo: Vec<EchoProbe>,
    /// The ICMP timestamp request: whether it was answered.
    pub icmp_ts: Option<bool>,
    /// The ICMP rate-limit burst: datagrams sent back to back to the closed UDP port, and the
    /// port unreachables they got.
    pub burst: Burst,
    /// The SYN-ACKs the port scan received from the host (passive evidence), with the time each
    /// arrived.
    pub passive: Vec<TcpReply>,
    /// Hints from services (SSH banners, HTTP Server headers, SMB, service CPEs).
    pub hints: Vec<Hint>,
}

/// What a service said about the OS under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// Where it came from (`"ssh 22/tcp"`, `"http-server 80/tcp"`).
    pub source: String,
    /// The OS family it names, as the database's classes spell families (`"Linux"`, `"Windows"`).
    pub family: String,
    /// Its weight in the score, 1-100; 0 takes the database's `hint_weight`.
    pub weight: u32,
}

/// The ICMP rate-limit burst's count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Burst {
    /// Datagrams sent.
    pub sent: u8,
    /// Port unreachables received for them (at most `sent`).
    pub answered: u8,
}

impl Observations {
    /// Move every time in it `by` later: its clock then starts `by` earlier (for evidence that
    /// came before the probes, as the port scan's SYN-ACKs did).
    pub fn shift(&mut self, by: Duration) {
        let probes = self.seq.iter_mut().chain(self.ecn.iter_mut()).chain(self.t.iter_mut().flatten());
        for p in probes {
            p.sent.at += by;
            if let Some(r) = &mut p.reply {
                r.at += by;
            }
        }
        for r in self.passive.iter_mut() {
            r.at += by;
        }
        for r in self.echo.iter_mut().filter_map(|e| e.reply.as_mut()) {
            r.at += by;
        }
    }
}

impl TcpReply {
    /// The reply's flags as a word of letters in a fixed order: `S` SYN, `A` ACK, `R` RST, `F`
    /// FIN, `P` PSH, `U` URG, `E` ECE, `C` CWR (empty for no flags).
    pub fn flag_letters(&self) -> String {
        const ORDER: [(u8, char); 8] =
            [(0x02, 'S'), (0x10, 'A'), (0x04, 'R'), (0x01, 'F'), (0x08, 'P'), (0x20, 'U'), (0x40, 'E'), (0x80, 'C')];
        ORDER.iter().filter(|(bit, _)| self.flags & bit != 0).map(|(_, c)| *c).collect()
    }

    /// The option layout: the kinds in order, comma-separated (`mss,sack,ts,nop,ws`).
    pub fn option_layout(&self) -> String {
        let names: Vec<String> = self
            .options
            .iter()
            .map(|o| match o {
                TcpOpt::Eol => "eol".to_string(),
                TcpOpt::Nop => "nop".to_string(),
                TcpOpt::Mss(_) => "mss".to_string(),
                TcpOpt::WindowScale(_) => "ws".to_string(),
                TcpOpt::SackPermitted => "sack".to_string(),
                TcpOpt::Timestamp { .. } => "ts".to_string(),
                TcpOpt::Other(k) => format!("k{k}"),
            })
            .collect();
        names.join(",")
    }

    /// The MSS option's value.
    pub fn mss(&self) -> Option<u16> {
        self.options.iter().find_map(|o| if let TcpOpt::Mss(v) = o { Some(*v) } else { None })
    }

    /// The window scale option's shift.
    pub fn window_scale(&self) -> Option<u8> {
        self.options.iter().find_map(|o| if let TcpOpt::WindowScale(v) = o { Some(*v) } else { None })
    }

    /// The timestamp option's values.
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        self.options.iter().find_map(|o| if let TcpOpt::Timestamp { val, ecr } = o { Some((*val, *ecr)) } else { None })
    }
}

/// The flag bits the probes and tests name.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_and_layouts() {
        let r = TcpReply {
            flags: flags::SYN | flags::ACK | flags::ECE,
            options: vec![
                TcpOpt::Mss(1460),
                TcpOpt::SackPermitted,
                TcpOpt::Timestamp { val: 5, ecr: 1 },
                TcpOpt::Nop,
                TcpOpt::WindowScale(7),
                TcpOpt::Other(30),
            ],
            ..TcpReply::default()
        };
        assert_eq!(r.flag_letters(), "SAE");
        assert_eq!(r.option_layout(), "mss,sack,ts,nop,ws,k30");
        assert_eq!((r.mss(), r.window_scale(), r.timestamp()), (Some(1460), Some(7), Some((5, 1))));
        assert_eq!(TcpReply::default().flag_letters(), "");
    }
}
