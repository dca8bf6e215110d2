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
