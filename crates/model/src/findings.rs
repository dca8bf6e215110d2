//! What later stages find about a host beyond its ports: OS guesses, script output, trace hops
//! and how they were probed.
//! The shapes are here so that every consumer of the event stream knows them before the stages
//! that produce them exist; each stage documents how it fills them.

use crate::Protocol;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One OS guess, as nmap's `<osmatch>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsGuess {
    /// Human name ("Linux 5.x - 6.x").
    pub name: String,
    /// Confidence, 0-100.
    pub accuracy: u8,
    /// Classes (vendor, family, generation, device type) with their CPEs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<OsClass>,
}

/// One class of an OS guess, as nmap's `<osclass>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsClass {
    /// Vendor ("Linux", "Microsoft").
    pub vendor: String,
    /// Family ("Linux", "Windows").
    pub family: String,
    /// Generation ("5.X"), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Device type ("general purpose", "router").
    pub device_type: String,
    /// CPE names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe: Vec<String>,
}

/// What OS detection (`-O`) measured on a host besides its guesses: the ports its probes used,
/// the sequence classes, the uptime and the fingerprint (nmap's `<portused>`, `<uptime>`,
/// `<tcpsequence>`, `<ipidsequence>`, `<tcptssequence>`, `<osfingerprint>`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsInfo {
    /// The ports the probes were sent to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports_used: Vec<OsPortUsed>,
    /// Whether the best guess is a match, not a guess: normal output says `OS details` then.
    #[serde(default)]
    pub exact: bool,
    /// Hops to the host, from the TTL of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u8>,
    /// Its uptime in seconds, from its TCP timestamp clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// When it last booted (Unix seconds), from the uptime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_boot_unix: Option<i64>,
    /// Its clock skew against the scanner's, in parts per million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ppm: Option<i64>,
    /// How guessable its TCP initial sequence numbers are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_sequence: Option<SequenceInfo>,
    /// How it fills the IP identification field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipid_sequence: Option<SequenceInfo>,
    /// What clock drives its TCP timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_ts_sequence: Option<SequenceInfo>,
    /// The fingerprint, as RustMap's database format writes tests (one line of JSON): what to
    /// make an entry of (`--os-entry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Why the result may be poor (no open or no closed port, no answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How many tests the best guess agreed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_agreed: Option<u32>,
    /// The tests the best guess did not agree on: `name: expected E, seen V`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub best_differs: Vec<String>,
    /// What the host's services and scripts said of its OS, as scored: `SOURCE: FAMILY`
    /// (`22/tcp service: Linux`, `smb-os-discovery: Windows`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A port OS detection used (`<portused state proto portid>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsPortUsed {
    /// Its state as the scan found it ("open" or "closed").
    pub state: crate::PortState,
    /// Its protocol.
    pub protocol: Protocol,
    /// Its number.
    pub port: u16,
}

/// A sequence test's verdict and the values it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    /// The class in words ("All zeros", "1000HZ", "Good luck!").
    pub class: String,
    /// A number for the class where it has one (the ISN difficulty index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The values seen, in hex as nmap prints them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Where a script ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScriptScope {
    /// Before any host (nmap's prerule).
    Pre,
    /// On a host (hostrule).
    Host {
        /// The host.
        addr: IpAddr,
    },
    /// On a port (portrule).
    Port {
        /// The host.
        addr: IpAddr,
        /// The port's protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
    },
    /// After every host (postrule).
    Post,
}

/// One script's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptResult {
    /// The script's name (`ssl-cert`, `http-title`).
    pub id: String,
    /// Its text output, already sanitized.
    pub output: String,
    /// Its structured output as key/value pairs (nmap's `<elem key=...>`), if any; nested keys
    /// joined by `.` (`key.sha256`), unkeyed items numbered from 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<(String, String)>,
    /// The same structured output as a tree, as nmap's XML nests it (`<table key>` around
    /// `<elem key>`); empty when the script returned plain text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table: Vec<ScriptEntry>,
}

/// One entry of a script's structured output: a text (`<elem>`) or a table of entries
/// (`<table>`), with or without a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptEntry {
    /// Its key; `None` for an item of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its value.
    #[serde(flatten)]
    pub value: ScriptValue,
}

/// The value of a [`ScriptEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptValue {
    /// Text.
    Text(String),
    /// Nested entries.
    Table(Vec<ScriptEntry>),
}

/// One hop of a traceroute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHop {
    /// Its distance (TTL).
    pub ttl: u8,
    /// The address that answered, if any did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// Round trip in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u64>,
    /// Its name, when looked up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// The protocol of a traceroute's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceProtocol {
    /// TCP SYN to a port.
    Tcp,
    /// UDP to a (closed) port.
    Udp,
    /// ICMP (ICMPv6 for IPv6) echo request.
    Icmp,
}

impl TraceProtocol {
    /// nmap's name (`tcp`, `udp`, `icmp`).
    pub fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::Tcp => "tcp",
            TraceProtocol::Udp => "udp",
            TraceProtocol::Icmp => "icmp",
        }
    }
}

/// How a host was traced: the probe sent to it at each TTL, and where from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceProbe {
    /// The probes' protocol.
    pub protocol: TraceProtocol,
    /// The destination port (TCP, UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Our address the probes left from (the first node of a topology graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
}
