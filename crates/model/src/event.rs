//! The scan event stream: what the engine reports while it works. Every consumer of results (the
//! output formats, later the TUI, API and Python bindings) is a sink of these events.
//!
//! The JSON shape of an event is `{"event": "<snake_case name>", ...fields}`; it is versioned by
//! [`EVENT_SCHEMA_VERSION`], which is bumped whenever a field changes meaning or disappears.
//!
//! Order: `scan_started` first, `scan_finished` last. For each host: `host_up` (unless it is down),
//! then its `port_found` events as each port is decided, `service_found`, `os_match`,
//! `script_output` and `trace_hop` as they are found, and `host_done` with the whole host last.
//! `host_done` carries everything its host's earlier events said, so a consumer that only wants
//! finished hosts reads that alone. `progress` and `warning` come at any time. A scan that is
//! cancelled sends `stopping` before the `host_done` of the hosts it cut short.

use crate::findings::{OsGuess, ScriptResult, ScriptScope, TraceHop};
use crate::{HostResult, PortResult, Protocol, ScanConfig, ServiceInfo, TlsInfo};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Version of the event and result schema (JSON output, event streams).
pub const EVENT_SCHEMA_VERSION: u32 = 2;

/// A kind of port scan, with the name nmap's XML uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ScanType {
    /// TCP connect() scan (`-sT`).
    Connect,
    /// TCP SYN scan (`-sS`).
    Syn,
    /// TCP ACK scan (`-sA`).
    Ack,
    /// TCP Window scan (`-sW`).
    Window,
    /// TCP Maimon scan (`-sM`).
    Maimon,
    /// TCP FIN scan (`-sF`).
    Fin,
    /// TCP NULL scan (`-sN`).
    Null,
    /// TCP Xmas scan (`-sX`).
    Xmas,
    /// UDP scan (`-sU`).
    Udp,
    /// SCTP INIT scan (`-sZ`/`-sY`).
    SctpInit,
    /// SCTP COOKIE-ECHO (`--sctp-cookie-echo`; nmap's `-sZ`, whose letter the guide gives to INIT).
    SctpCookieEcho,
}

impl ScanType {
    /// nmap's XML `scaninfo/@type` value.
    pub fn xml_name(self) -> &'static str {
        match self {
            ScanType::Connect => "connect",
            ScanType::Syn => "syn",
            ScanType::Ack => "ack",
            ScanType::Window => "window",
            ScanType::Maimon => "maimon",
            ScanType::Fin => "fin",
            ScanType::Null => "null",
            ScanType::Xmas => "xmas",
            ScanType::Udp => "udp",
            ScanType::SctpInit => "sctpinit",
            ScanType::SctpCookieEcho => "sctpcookieecho",
        }
    }

    /// The protocol this scan type probes.
    pub fn protocol(self) -> Protocol {
        match self {
            ScanType::Udp => Protocol::Udp,
            ScanType::SctpInit | ScanType::SctpCookieEcho => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }

    /// Human name used in normal output ("Connect Scan").
    pub fn display_name(self) -> &'static str {
        match self {
            ScanType::Connect => "Connect Scan",
            ScanType::Syn => "SYN Stealth Scan",
            ScanType::Ack => "ACK Scan",
            ScanType::Window => "Window Scan",
            ScanType::Maimon => "Maimon Scan",
            ScanType::Fin => "FIN Scan",
            ScanType::Null => "NULL Scan",
            ScanType::Xmas => "XMAS Scan",
            ScanType::Udp => "UDP Scan",
            ScanType::SctpInit => "SCTP INIT Scan",
            ScanType::SctpCookieEcho => "SCTP COOKIE ECHO Scan",
        }
    }

    /// The letter after `-s` that selects this scan (`S` for `-sS`; the guide's `Z` for SCTP INIT).
    pub fn letter(self) -> char {
        ScanType::ALL.iter().find(|(_, t)| *t == self).map(|(c, _)| *c).unwrap_or('?')
    }

    /// The scan a `-s` letter selects, if it is a port-scan type (`Y` is nmap's SCTP INIT letter).
    pub fn from_letter(c: char) -> Option<ScanType> {
        if c == 'Y' {
            return Some(ScanType::SctpInit);
        }
        ScanType::ALL.iter().find(|(l, _)| *l == c).map(|(_, t)| *t)
    }

    /// Every port-scan type with its `-s` letter.
    const ALL: [(char, ScanType); 10] = [
        ('T', ScanType::Connect),
        ('S', ScanType::Syn),
        ('A', ScanType::Ack),
        ('W', ScanType::Window),
        ('M', ScanType::Maimon),
        ('F', ScanType::Fin),
        ('N', ScanType::Null),
        ('X', ScanType::Xmas),
        ('U', ScanType::Udp),
        ('Z', ScanType::SctpInit),
    ];
}

/// One scan type and the ports it covers, for `<scaninfo>` and its equivalents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPorts {
    /// The scan type.
    pub scan_type: ScanType,
    /// Ports probed by this scan type, in ascending order.
    pub ports: Vec<u16>,
}

/// What a scan is about to do: written at the head of every output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanInfo {
    /// Schema version ([`EVENT_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The scan's id: a ULID (26 characters, sortable by start time), unique per scan.
    #[serde(default)]
    pub scan_id: String,
    /// The configuration the scan runs with, as it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Box<ScanConfig>>,
    /// RustMap's version.
    pub version: String,
    /// The command line as typed (already sanitized by the front-end).
    pub args: String,
    /// Start time, seconds since the Unix epoch.
    pub start_unix: i64,
    /// Scan types and their ports.
    pub scans: Vec<ScanPorts>,
    /// Verbosity level (`-v` count).
    pub verbosity: u8,
    /// Debug level (`-d` count).
    pub debugging: u8,
    /// Service and version detection (`-sV`) runs on the open ports.
    #[serde(default)]
    pub service_scan: bool,
}

/// Totals written at the end of a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanStats {
    /// End time, seconds since the Unix epoch.
    pub end_unix: i64,
    /// Wall time of the scan in seconds.
    pub elapsed_secs: f64,
    /// Hosts found up.
    pub hosts_up: u64,
    /// Hosts found down (or not answering).
    pub hosts_down: u64,
    /// All hosts considered.
    pub hosts_total: u64,
    /// Whether the scan ran to completion (`false` when cancelled or failed).
    pub completed: bool,
    /// How it ended.
    #[serde(default)]
    pub outcome: ScanOutcome,
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ScanOutcome {
    /// Every target was scanned.
    #[default]
    Completed,
    /// Stopped on request (Ctrl-C, a cancel call, a sink that asked to stop); results so far stand.
    Cancelled,
    /// Stopped by an error; results so far stand, the scan is not complete.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl ScanOutcome {
    /// `completed`, `cancelled` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScanOutcome::Completed => "completed",
            ScanOutcome::Cancelled => "cancelled",
            ScanOutcome::Failed { .. } => "failed",
        }
    }
}

/// One event of a running scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScanEvent {
    /// The scan starts; always the first event.
    ScanStarted(ScanInfo),
    /// Discovery found a host up (or `-Pn` declared it so); its ports follow. Hosts found down
    /// are reported by their [`ScanEvent::HostDone`] alone, with the reason.
    HostUp {
        /// The host.
        addr: IpAddr,
        /// Why it is considered up (nmap's reason: `arp-response`, `echo-reply`, `user-set`...).
        reason: crate::Reason,
        /// TTL of the answer that proved it up (0 when not applicable).
        reason_ttl: u8,
        /// Hardware address, when learned on a directly connected link (`AA:BB:...`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
    },
    /// A port got its final state (emitted as soon as it is known).
    PortFound {
        /// The host.
        addr: IpAddr,
        /// The port and its state.
        port: PortResult,
    },
    /// Service detection named the service on a port (sent before its host's `HostDone`).
    ServiceFound {
        /// The host.
        addr: IpAddr,
        /// The port's protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
        /// What runs there.
        service: ServiceInfo,
        /// What TLS showed, when the port speaks it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<Box<TlsInfo>>,
    },
    /// OS detection's guesses for a host, best first.
    OsMatch {
        /// The host.
        addr: IpAddr,
        /// The guesses.
        matches: Vec<OsGuess>,
    },
    /// A script produced output.
    ScriptOutput {
        /// Where it ran.
        scope: ScriptScope,
        /// What it said.
        result: ScriptResult,
    },
    /// One hop of the way to a host.
    TraceHop {
        /// The host traced.
        addr: IpAddr,
        /// The hop.
        hop: TraceHop,
    },
    /// A host is finished: its full result. Hosts that are down are reported too, with the
    /// reason.
    HostDone(HostResult),
    /// Progress of the whole scan.
    Progress {
        /// Hosts finished.
        hosts_done: u64,
        /// Probes sent so far (including retries).
        probes_sent: u64,
        /// Probes that got an answer.
        replies: u64,
        /// Estimated fraction done in `[0, 1]`, when it can be estimated.
        fraction: Option<f64>,
        /// Hosts being scanned right now (nmap's "undergoing").
        #[serde(default)]
        hosts_active: u64,
    },
    /// Something the user should know that did not stop the scan (e.g. a name that did not resolve).
    Warning {
        /// The message, already sanitized.
        message: String,
    },
    /// The scan's first open port, as soon as it is found: how long the scan took to give its
    /// first useful answer (what `--predict-ports` shortens). Sent once, at most.
    FirstOpenPort {
        /// The host.
        addr: IpAddr,
        /// The port's protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
        /// Seconds since the scan started.
        after_secs: f64,
    },
    /// The scan was asked to stop (Ctrl-C, a cancel call, a sink that asked to stop). The hosts
    /// reported after it were cut short: their `host_done` carries what was found, but they are
    /// not finished, so a checkpoint does not count them as done (a resumed scan scans them
    /// again). Sent once, at most, before `scan_finished`.
    Stopping,
    /// The scan ended; always the last event.
    ScanFinished(ScanStats),
}

#[cfg(test)]
mod letter_tests {
    use super::ScanType;

    #[test]
    fn scan_letters_round_trip() {
        for c in "TSAWMFNXUZ".chars() {
            let t = ScanType::from_letter(c).unwrap();
            assert_eq!(t.letter(), c);
        }
        assert_eq!(ScanType::from_letter('Y'), Some(ScanType::SctpInit));
        assert_eq!(ScanType::from_letter('V'), None);
        assert_eq!(ScanType::from_letter('s'), None);
    }
}
