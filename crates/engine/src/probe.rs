//! What a probe can come back with, and what that means for the port under each scan type.
//!
//! The table is nmap's (see its "port scanning techniques" chapter):
//!
//! | scan | SYN/ACK | RST | UDP data | INIT-ACK | ABORT | ICMP unreachable | nothing |
//! |---|---|---|---|---|---|---|---|
//! | connect | open | closed (conn-refused) | | | | filtered | filtered |
//! | SYN | open | closed | | | | filtered | filtered |
//! | FIN, NULL, Xmas, Maimon | | closed | | | | filtered | open\|filtered |
//! | ACK | | unfiltered | | | | filtered | filtered |
//! | Window | | open if window > 0, else closed | | | | filtered | filtered |
//! | UDP | | | open | | | port-unreach: closed, else filtered | open\|filtered |
//! | SCTP INIT | | | | open | closed | filtered | filtered |
//! | SCTP COOKIE-ECHO | | | | | closed | filtered | open\|filtered |

use rustmap_model::{PortState, Reason, ScanType};

/// A reply to a probe, as far as port states care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// TCP SYN/ACK (or a completed handshake for connect).
    SynAck,
    /// TCP RST (or a refused connect), with its window field.
    Rst {
        /// The RST's window (Window scan).
        window: u16,
    },
    /// A UDP datagram from the probed port.
    Udp,
    /// SCTP INIT-ACK.
    SctpInitAck,
    /// SCTP ABORT.
    SctpAbort,
    /// An ICMP error about the probe, with its reason.
    Icmp(Reason),
    /// ICMP echo reply (discovery).
    EchoReply,
    /// ICMP timestamp reply (discovery).
    TimestampReply,
    /// ICMP address-mask reply (discovery).
    MaskReply,
    /// ARP reply (discovery).
    Arp,
    /// IPv6 neighbour advertisement (discovery).
    NeighborAdvert,
}

/// State and reason of a port after a reply; `None` when the reply means nothing for this scan
/// type (e.g. a SYN/ACK to a FIN probe) and should be ignored.
pub fn verdict(scan: ScanType, reply: Reply) -> Option<(PortState, Reason)> {
    use PortState::*;
    Some(match (scan, reply) {
        (_, Reply::Icmp(Reason::PortUnreach)) if scan == ScanType::Udp => (Closed, Reason::PortUnreach),
        (_, Reply::Icmp(r)) => (Filtered, r),
        (ScanType::Connect, Reply::SynAck) => (Open, Reason::SynAck),
        (ScanType::Connect, Reply::Rst { .. }) => (Closed, Reason::ConnRefused),
        (ScanType::Syn, Reply::SynAck) => (Open, Reason::SynAck),
        (ScanType::Syn, Reply::Rst { .. }) => (Closed, Reason::Reset),
        (ScanType::Fin | ScanType::Null | ScanType::Xmas | ScanType::Maimon, Reply::Rst { .. }) => {
            (Closed, Reason::Reset)
        }
        (ScanType::Ack, Reply::Rst { .. }) => (Unfiltered, Reason::Reset),
        (ScanType::Window, Reply::Rst { window }) => (if window > 0 { Open } else { Closed }, Reason::Reset),
        (ScanType::Udp, Reply::Udp) => (Open, Reason::UdpResponse),
        (ScanType::SctpInit, Reply::SctpInitAck) => (Open, Reason::InitAck),
        (ScanType::SctpInit | ScanType::SctpCookieEcho, Reply::SctpAbort) => (Closed, Reason::Abort),
        _ => return None,
    })
}

/// State of a port that never answered.
pub fn silence(scan: ScanType) -> PortState {
    match scan {
        ScanType::Fin
        | ScanType::Null
        | ScanType::Xmas
        | ScanType::Maimon
        | ScanType::Udp
        | ScanType::SctpCookieEcho => PortState::OpenFiltered,
        _ => PortState::Filtered,
    }
}

/// Does this reply prove the host is up (discovery)? With the reason to record.
pub fn host_up(reply: Reply, connect: bool) -> Option<Reason> {
    Some(match reply {
        Reply::SynAck => Reason::SynAck,
        Reply::Rst { .. } if connect => Reason::ConnRefused,
        Reply::Rst { .. } => Reason::Reset,
        Reply::Udp => Reason::UdpResponse,
        Reply::SctpInitAck => Reason::InitAck,
        Reply::SctpAbort => Reason::Abort,
        Reply::EchoReply => Reason::EchoReply,
        Reply::TimestampReply => Reason::TimestampReply,
        Reply::MaskReply => Reason::AddressMaskReply,
        Reply::Arp => Reason::ArpResponse,
        Reply::NeighborAdvert => Reason::NdResponse,
        // An ICMP port or protocol unreachable comes from the host itself: it is up.
        Reply::Icmp(r @ (Reason::PortUnreach | Reason::ProtoUnreach | Reason::ParamProblem)) => r,
        Reply::Icmp(_) => return None,
    })
}

/// Map an ICMP type/code (read from the error queue) to a reason.
pub(crate) fn icmp_reason(v6: bool, icmp_type: u8, code: u8) -> Option<Reason> {
    Some(if v6 {
        match (icmp_type, code) {
            (1, 0) => Reason::NetUnreach,
            (1, 1) | (1, 5) | (1, 6) => Reason::AdminProhibited,
            (1, 3) => Reason::HostUnreach,
            (1, 4) => Reason::PortUnreach,
            // Parameter problem (unrecognized next header: the protocol is not spoken there).
            (4, _) => Reason::ParamProblem,
            (1, _) => Reason::HostUnreach,
            _ => return None,
        }
    } else {
        match (icmp_type, code) {
            (3, 0) | (3, 6) | (3, 11) => Reason::NetUnreach,
            (3, 2) => Reason::ProtoUnreach,
            (3, 3) => Reason::PortUnreach,
            (3, 9) => Reason::NetProhibited,
            (3, 10) => Reason::HostProhibited,
            (3, 13) => Reason::AdminProhibited,
            (3, _) => Reason::HostUnreach,
            (12, _) => Reason::ParamProblem,
            _ => return None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_codes_map_to_nmap_reasons() {
        assert_eq!(icmp_reason(false, 3, 13), Some(Reason::AdminProhibited));
        assert_eq!(icmp_reason(false, 3, 1), Some(Reason::HostUnreach));
        assert_eq!(icmp_reason(false, 3, 0), Some(Reason::NetUnreach));
        assert_eq!(icmp_reason(false, 3, 3), Some(Reason::PortUnreach));
        assert_eq!(icmp_reason(true, 1, 1), Some(Reason::AdminProhibited));
        assert_eq!(icmp_reason(false, 11, 0), None);
    }
    use PortState::*;

    #[test]
    fn nmap_state_table() {
        let rst = Reply::Rst { window: 0 };
        assert_eq!(verdict(ScanType::Syn, Reply::SynAck), Some((Open, Reason::SynAck)));
        assert_eq!(verdict(ScanType::Syn, rst), Some((Closed, Reason::Reset)));
        assert_eq!(verdict(ScanType::Connect, rst), Some((Closed, Reason::ConnRefused)));
        assert_eq!(verdict(ScanType::Fin, rst), Some((Closed, Reason::Reset)));
        assert_eq!(verdict(ScanType::Fin, Reply::SynAck), None);
        assert_eq!(verdict(ScanType::Ack, rst), Some((Unfiltered, Reason::Reset)));
        assert_eq!(verdict(ScanType::Window, Reply::Rst { window: 512 }), Some((Open, Reason::Reset)));
        assert_eq!(verdict(ScanType::Window, rst), Some((Closed, Reason::Reset)));
        assert_eq!(verdict(ScanType::Udp, Reply::Udp), Some((Open, Reason::UdpResponse)));
        assert_eq!(verdict(ScanType::Udp, Reply::Icmp(Reason::PortUnreach)), Some((Closed, Reason::PortUnreach)));
        assert_eq!(
            verdict(ScanType::Udp, Reply::Icmp(Reason::AdminProhibited)),
            Some((Filtered, Reason::AdminProhibited))
        );
        assert_eq!(
            verdict(ScanType::Syn, Reply::Icmp(Reason::AdminProhibited)),
            Some((Filtered, Reason::AdminProhibited))
        );
        assert_eq!(verdict(ScanType::SctpInit, Reply::SctpInitAck), Some((Open, Reason::InitAck)));
        assert_eq!(verdict(ScanType::SctpInit, Reply::SctpAbort), Some((Closed, Reason::Abort)));
        assert_eq!(verdict(ScanType::SctpCookieEcho, Reply::SctpAbort), Some((Closed, Reason::Abort)));
        assert_eq!(verdict(ScanType::SctpCookieEcho, Reply::SctpInitAck), None);
        for s in
            [ScanType::Fin, ScanType::Null, ScanType::Xmas, ScanType::Maimon, ScanType::Udp, ScanType::SctpCookieEcho]
        {
            assert_eq!(silence(s), OpenFiltered);
        }
        for s in [ScanType::Syn, ScanType::Connect, ScanType::Ack, ScanType::Window, ScanType::SctpInit] {
            assert_eq!(silence(s), Filtered);
        }
    }

    #[test]
    fn discovery_replies() {
        assert_eq!(host_up(Reply::Rst { window: 0 }, true), Some(Reason::ConnRefused));
        assert_eq!(host_up(Reply::Rst { window: 0 }, false), Some(Reason::Reset));
        assert_eq!(host_up(Reply::Icmp(Reason::HostUnreach), false), None);
        assert_eq!(host_up(Reply::Icmp(Reason::PortUnreach), false), Some(Reason::PortUnreach));
    }
}
