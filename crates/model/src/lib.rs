//! The shared nouns of RustMap: protocols, port states and their reasons, hosts, services, and the
//! typed [`ScanEvent`] stream that the engine emits and every output consumes.
//!
//! This crate owns the *shapes* only. It does no I/O and knows nothing about how results are found
//! or written. The names of states and reasons are nmap's, because users, ndiff and XML importers
//! rely on them.

pub mod checkpoint;
mod cloud;
pub mod config;
mod enrich;
mod event;
mod findings;
mod result;
mod sink;
mod text;

pub use checkpoint::{AddrSet, Checkpoint};
pub use cloud::{CloudAddresses, CloudConfig, CloudInstance, CloudProvider};
pub use config::{ScanConfig, CONFIG_VERSION};
pub use enrich::{CvssScore, GeoInfo, KevInfo, Vulnerability};
pub use event::{ScanEvent, ScanInfo, ScanOutcome, ScanPorts, ScanStats, ScanType, EVENT_SCHEMA_VERSION};
pub use findings::{
    OsClass, OsGuess, OsInfo, OsPortUsed, ScriptEntry, ScriptResult, ScriptScope, ScriptValue, SequenceInfo, TraceHop,
    TraceProbe, TraceProtocol,
};
pub use result::{
    CertInfo, ExtraPorts, HostResult, HostStatus, Hostname, HostnameKind, PassiveSegment, PortResult, QuicInfo,
    ReasonCount, ScanResult, ServiceInfo, ServiceMethod, TlsInfo,
};
pub use sink::{Control, Sink, SinkError};
pub use text::{neutralize, port_ranges, sanitize, sanitize_bytes};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A transport protocol that ports belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lowercase name used in every output format (`tcp`, `udp`, `sctp`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of one port, with nmap's meanings and spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PortState {
    /// An application accepts connections or packets on the port.
    #[serde(rename = "open")]
    Open,
    /// The port answers but no application listens (e.g. a TCP RST).
    #[serde(rename = "closed")]
    Closed,
    /// Something prevents us from telling: no answer, or an ICMP unreachable error.
    #[serde(rename = "filtered")]
    Filtered,
    /// Reachable, but open or closed cannot be told (ACK scan).
    #[serde(rename = "unfiltered")]
    Unfiltered,
    /// Open or filtered: no answer where an open port would also stay silent.
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    /// Closed or filtered (IP ID idle scan).
    #[serde(rename = "closed|filtered")]
    ClosedFiltered,
}

impl PortState {
    /// nmap's spelling of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unfiltered => "unfiltered",
            PortState::OpenFiltered => "open|filtered",
            PortState::ClosedFiltered => "closed|filtered",
        }
    }

    /// Every state, in the order nmap lists "Not shown" summaries.
    pub const ALL: [PortState; 6] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::Unfiltered,
        PortState::OpenFiltered,
        PortState::ClosedFiltered,
    ];
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a port or host got its state. Spelled as nmap spells its reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Reason {
    /// A TCP SYN/ACK (or, for connect scans, a completed handshake).
    #[serde(rename = "syn-ack")]
    SynAck,
    /// The connection was refused (connect scan view of a RST).
    #[serde(rename = "conn-refused")]
    ConnRefused,
    /// A TCP RST.
    #[serde(rename = "reset")]
    Reset,
    /// No answer at all after every retry.
    #[serde(rename = "no-response")]
    NoResponse,
    /// ICMP host unreachable (or the kernel could not resolve the next hop).
    #[serde(rename = "host-unreach")]
    HostUnreach,
    /// ICMP network unreachable.
    #[serde(rename = "net-unreach")]
    NetUnreach,
    /// ICMP port unreachable.
    #[serde(rename = "port-unreach")]
    PortUnreach,
    /// ICMP communication administratively prohibited (a firewall REJECT).
    #[serde(rename = "admin-prohibited")]
    AdminProhibited,
    /// ICMP host administratively prohibited.
    #[serde(rename = "host-prohibited")]
    HostProhibited,
    /// ICMP network administratively prohibited.
    #[serde(rename = "net-prohibited")]
    NetProhibited,
    /// The user said so (`-Pn`).
    #[serde(rename = "user-set")]
    UserSet,
    /// A recent scan found it up, so discovery was skipped (`--fast-discovery`); it answered
    /// the port scan.
    #[serde(rename = "seen-up")]
    SeenUp,
    /// The target is one of our own addresses.
    #[serde(rename = "localhost-response")]
    LocalhostResponse,
    /// An ICMP echo reply.
    #[serde(rename = "echo-reply")]
    EchoReply,
    /// An ARP reply.
    #[serde(rename = "arp-response")]
    ArpResponse,
    /// A UDP datagram came back.
    #[serde(rename = "udp-response")]
    UdpResponse,
    /// An SCTP INIT-ACK.
    #[serde(rename = "init-ack")]
    InitAck,
    /// An SCTP ABORT.
    #[serde(rename = "abort")]
    Abort,
    /// ICMP protocol unreachable.
    #[serde(rename = "proto-unreach")]
    ProtoUnreach,
    /// ICMP parameter problem (IPv6 says so for a protocol it does not speak).
    #[serde(rename = "param-problem")]
    ParamProblem,
    /// An ICMP timestamp reply.
    #[serde(rename = "timestamp-reply")]
    TimestampReply,
    /// An ICMP time exceeded (TTL ran out on the way).
    #[serde(rename = "time-exceeded")]
    TimeExceeded,
    /// An ICMP address-mask reply.
    #[serde(rename = "addressmask-reply")]
    AddressMaskReply,
    /// An IPv6 neighbour advertisement answering our solicitation.
    #[serde(rename = "nd-response")]
    NdResponse,
    /// An HTTP response to our HEAD request (HTTP ping).
    #[serde(rename = "http-response")]
    HttpResponse,
    /// A TLS record answering our ClientHello (HTTPS ping).
    #[serde(rename = "tls-response")]
    TlsResponse,
    /// No reason recorded.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Reason {
    /// nmap's spelling of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::ConnRefused => "conn-refused",
            Reason::Reset => "reset",
            Reason::NoResponse => "no-response",
            Reason::HostUnreach => "host-unreach",
            Reason::NetUnreach => "net-unreach",
            Reason::PortUnreach => "port-unreach",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::HostProhibited => "host-prohibited",
            Reason::NetProhibited => "net-prohibited",
            Reason::UserSet => "user-set",
            Reason::SeenUp => "seen-up",
            Reason::LocalhostResponse => "localhost-response",
            Reason::EchoReply => "echo-reply",
            Reason::ArpResponse => "arp-response",
            Reason::UdpResponse => "udp-response",
            Reason::InitAck => "init-ack",
            Reason::Abort => "abort",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::ParamProblem => "param-problem",
            Reason::TimestampReply => "timestamp-reply",
            Reason::TimeExceeded => "time-exceeded",
            Reason::AddressMaskReply => "addressmask-reply",
            Reason::NdResponse => "nd-response",
            Reason::HttpResponse => "http-response",
            Reason::TlsResponse => "tls-response",
            Reason::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_with_nmap_spelling() {
        let s = serde_json::to_string(&PortState::OpenFiltered).unwrap();
        assert_eq!(s, "\"open|filtered\"");
        for st in PortState::ALL {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json.trim_matches('"'), st.as_str());
        }
    }

    #[test]
    fn reasons_round_trip() {
        for r in [Reason::SynAck, Reason::ConnRefused, Reason::AdminProhibited, Reason::NoResponse] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json.trim_matches('"'), r.as_str());
            let back: Reason = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r);
        }
    }
}
