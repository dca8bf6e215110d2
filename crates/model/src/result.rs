//! Results: ports, services and hosts, and [`ScanResult`], the whole scan folded from its events.

use crate::enrich::{GeoInfo, Vulnerability};
use crate::findings::{OsGuess, ScriptResult, ScriptScope, TraceHop, TraceProbe};
use crate::{PortState, Protocol, Reason, ScanEvent, ScanInfo, ScanStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How a service name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMethod {
    /// Looked up from the port number in RustMap's port table.
    #[default]
    Table,
    /// Found by probing the service.
    Probed,
}

impl ServiceMethod {
    /// nmap's XML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceMethod::Table => "table",
            ServiceMethod::Probed => "probed",
        }
    }
}

/// What runs behind a port.
///
/// The version fields (`product` onwards) are filled in by service detection (`-sV`) and are
/// absent otherwise; their text came from the network through the detector's templates, which
/// drop control characters, and every output sanitizes it again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// Service name (`ssh`, `http`, ...).
    pub name: String,
    /// How the name was found.
    pub method: ServiceMethod,
    /// Confidence 0–10, as nmap's `conf`.
    pub conf: u8,
    /// Product (`OpenSSH`, `nginx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Version (`9.2p1 Debian 2+deb12u3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Extra information (nmap's `extrainfo`: `protocol 2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrainfo: Option<String>,
    /// Host name the service announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Operating system the service revealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ostype: Option<String>,
    /// Device type the service revealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devicetype: Option<String>,
    /// Tunnel the service was found through (`ssl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<String>,
    /// CPE names (`cpe:/a:openbsd:openssh:9.2p1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe: Vec<String>,
    /// Answers no rule identified, as a fingerprint to report (RustMap's `RMFP1` format; nmap's
    /// XML calls it `servicefp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// What the QUIC probes learnt, when the service is QUIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quic: Option<QuicInfo>,
}

/// A QUIC server's answers (UDP ports, `-sV`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuicInfo {
    /// Versions it supports, by name (`1`, `2`, `draft-29`, `Q050`, or hex), in its order.
    pub versions: Vec<String>,
    /// The application protocol it agreed to in a v1 handshake (`h3`, `doq`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
}

impl ServiceInfo {
    /// nmap's VERSION column: product, version and `(extrainfo)`, space-separated.
    pub fn version_line(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.product.iter().cloned());
        parts.extend(self.version.iter().cloned());
        parts.extend(self.extrainfo.iter().map(|e| format!("({e})")));
        parts.join(" ")
    }

    /// The name as nmap prints it in normal and grepable output: `ssl/http` for a tunnel.
    pub fn display_name(&self) -> String {
        match &self.tunnel {
            Some(t) => format!("{t}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One scanned port and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortResult {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: u16,
    /// Final state.
    pub state: PortState,
    /// Why it has that state.
    pub reason: Reason,
    /// TTL of the packet that gave the reason (0 when not known, as for connect scans).
    pub reason_ttl: u8,
    /// Service, if known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service: Option<ServiceInfo>,
    /// What service detection learnt of the port's TLS (`-sV` found TLS there). Boxed: most
    /// ports have none, and port results travel in events by value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tls: Option<Box<TlsInfo>>,
    /// Output of scripts that ran on this port.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scripts: Vec<ScriptResult>,
    /// Known vulnerabilities of the service's version (`--vuln-check`), highest score first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// A port's TLS, as service detection saw it: the server's answer to RustMap's own ClientHello
/// (which offers TLS 1.0–1.3) and, where a modern TLS library could connect, the session it
/// negotiated.
///
/// Every string here came from the network (certificate fields) or names a protocol value; the
/// detector drops control characters from the former, and every output format sanitizes again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsInfo {
    /// Negotiated protocol version, OpenSSL's spelling (`TLSv1.3`, `TLSv1.0`, `SSLv3`).
    pub version: String,
    /// Negotiated cipher suite, IANA name (`TLS_AES_256_GCM_SHA384`), or `0xC02F` when unknown.
    pub cipher: String,
    /// Protocol chosen by ALPN (`h2`, `http/1.1`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// JA3S: MD5 (hex) of the server's "version,cipher,extensions" in answer to RustMap's hello.
    pub ja3s: String,
    /// The JA3S input string (`771,49199,65281-16-23`).
    pub ja3s_string: String,
    /// JA4S, only with `--ja4s` (see docs/usage.md for why it is opt-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4s: Option<String>,
    /// A modern TLS session (TLS 1.2/1.3) could be opened, so probes ran inside it. `false` for
    /// servers that speak only older versions or suites: their facts come from the handshake alone.
    pub session: bool,
    /// The certificate chain as the server sent it, leaf first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<CertInfo>,
}

/// One X.509 certificate of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject attributes in order, long names (`commonName`, `organizationName`) or dotted OIDs.
    pub subject: Vec<(String, String)>,
    /// Issuer attributes, as `subject`.
    pub issuer: Vec<(String, String)>,
    /// Subject alternative names (`DNS:h10.lab.test`, `IP Address:198.18.0.10`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// Start of validity, ISO 8601 UTC (`2026-11-21T22:00:00`).
    pub not_before: String,
    /// End of validity, ISO 8601 UTC.
    pub not_after: String,
    /// Public key type: `rsa`, `ec`, `dsa`, `ed25519`, `ed448`, or the algorithm's OID.
    pub key_type: String,
    /// Public key size in bits (0 when unknown).
    pub key_bits: u32,
    /// Curve of an EC key (`prime256v1`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_curve: Option<String>,
    /// Signature algorithm (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`) or its OID.
    pub signature_algorithm: String,
    /// Issuer equals subject and the certificate's signature verifies with its own key.
    pub self_signed: bool,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256: String,
    /// Serial number, lower-case hex.
    pub serial: String,
}

impl CertInfo {
    /// A name as nmap's ssl-cert shows it: `commonName=h10.lab.test/organizationName=RustMap Lab`.
    /// The attributes people look for come first, in nmap's order (common name, organization,
    /// state, country), then the others in certificate order, so the two scanners' lines compare.
    pub fn name_line(name: &[(String, String)]) -> String {
        const FIRST: [&str; 4] = ["commonName", "organizationName", "stateOrProvinceName", "countryName"];
        let rank = |k: &str| FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len());
        let mut attrs: Vec<&(String, String)> = name.iter().collect();
        // Stable: equal ranks keep the certificate's order.
        attrs.sort_by_key(|(k, _)| rank(k));
        attrs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("/")
    }
}

/// Ports of one state folded into a count, as nmap's `<extraports>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraPorts {
    /// Their common state.
    pub state: PortState,
    /// How many there are.
    pub count: u32,
    /// Break-down by reason and protocol.
    pub reasons: Vec<ReasonCount>,
}

/// Part of an [`ExtraPorts`] break-down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// The reason.
    pub reason: Reason,
    /// The protocol.
    pub protocol: Protocol,
    /// How many ports.
    pub count: u32,
    /// The ports themselves, as a compact range list (`1-21,23-79`).
    pub ports: String,
}

/// Whether a host is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    /// It answered (or `-Pn` said so).
    Up,
    /// It did not answer.
    Down,
    /// Not probed at all (`-sL` lists targets without sending anything).
    Unknown,
}

impl HostStatus {
    /// nmap's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Up => "up",
            HostStatus::Down => "down",
            HostStatus::Unknown => "unknown",
        }
    }
}

/// Where a host name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostnameKind {
    /// The name the user gave.
    User,
    /// Found by reverse DNS.
    #[serde(rename = "PTR")]
    Ptr,
}

/// A host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hostname {
    /// The name (sanitized).
    pub name: String,
    /// Its origin.
    pub kind: HostnameKind,
}

/// Everything found about one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    /// Its address.
    pub addr: IpAddr,
    /// Its names.
    pub hostnames: Vec<Hostname>,
    /// Its hardware address (`02:52:4D:00:00:0A`), when it is on a directly connected link.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mac: Option<String>,
    /// Up or down.
    pub status: HostStatus,
    /// Why.
    pub reason: Reason,
    /// TTL of the packet that gave the reason (0 if not known).
    pub reason_ttl: u8,
    /// When work on it started (Unix seconds).
    pub start_unix: i64,
    /// When it finished (Unix seconds).
    pub end_unix: i64,
    /// Smoothed round-trip time in microseconds, if measured.
    pub srtt_us: Option<u64>,
    /// Ports shown individually, ascending by protocol then number.
    pub ports: Vec<PortResult>,
    /// Ports folded into counts.
    pub extraports: Vec<ExtraPorts>,
    /// `--host-timeout` expired: results are partial.
    pub timed_out: bool,
    /// OS guesses, best first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub os: Vec<OsGuess>,
    /// What OS detection measured besides its guesses (`-O`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub os_info: Option<Box<crate::OsInfo>>,
    /// Output of scripts that ran on the host.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scripts: Vec<ScriptResult>,
    /// The way there, hop by hop (`--traceroute`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub trace: Vec<TraceHop>,
    /// How the trace was probed (`--traceroute`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trace_probe: Option<TraceProbe>,
    /// The path MTU to the host in bytes (`--mtu-discovery`, IPv4).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_mtu: Option<u32>,
    /// Where the address is (`--geoip`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub geoip: Option<GeoInfo>,
    /// The cloud instance the address belongs to (`--cloud`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cloud: Option<Box<crate::CloudInstance>>,
    /// Answers of the port scan kept for OS detection's passive tests (`-O`), as received;
    /// internal to one run, never written out.
    #[serde(skip)]
    pub passive: Vec<PassiveSegment>,
}

/// One packet the port scan received from a host, kept whole (IP and TCP headers with their
/// options, at most [`PassiveSegment::MAX_LEN`] bytes) for OS detection to read: the engine
/// keeps them without parsing what it does not need, and `-O` parses them later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveSegment {
    /// When it arrived.
    pub at: std::time::Instant,
    /// The IP packet, cut at `MAX_LEN` bytes.
    pub packet: Vec<u8>,
}

impl PassiveSegment {
    /// Bytes kept of each packet: an IPv4 header with options (60) and a TCP header with options (60).
    pub const MAX_LEN: usize = 120;
    /// Packets kept per host.
    pub const PER_HOST: usize = 8;

    /// `packet` received at `at`, cut to [`PassiveSegment::MAX_LEN`] bytes.
    pub fn new(at: std::time::Instant, packet: &[u8]) -> PassiveSegment {
        PassiveSegment { at, packet: packet[..packet.len().min(Self::MAX_LEN)].to_vec() }
    }
}

impl PortResult {
    /// A port with its state and nothing else known yet.
    pub fn new(protocol: Protocol, port: u16, state: PortState, reason: Reason, reason_ttl: u8) -> PortResult {
        PortResult {
            protocol,
            port,
            state,
            reason,
            reason_ttl,
            service: None,
            tls: None,
            scripts: Vec::new(),
            vulnerabilities: Vec::new(),
        }
    }
}

impl HostResult {
    /// A host with a status and reason and nothing else known yet (times are 0).
    pub fn new(addr: IpAddr, status: HostStatus, reason: Reason) -> HostResult {
        HostResult {
            addr,
            hostnames: Vec::new(),
            mac: None,
            status,
            reason,
            reason_ttl: 0,
            start_unix: 0,
            end_unix: 0,
            srtt_us: None,
            ports: Vec::new(),
            extraports: Vec::new(),
            timed_out: false,
            os: Vec::new(),
            os_info: None,
            scripts: Vec::new(),
            trace: Vec::new(),
            trace_probe: None,
            path_mtu: None,
            geoip: None,
            cloud: None,
            passive: Vec::new(),
        }
    }

    /// Number of ports scanned on this host, shown or folded.
    pub fn ports_scanned(&self) -> u64 {
        self.ports.len() as u64 + self.extraports.iter().map(|e| u64::from(e.count)).sum::<u64>()
    }

    /// The user-supplied name, else the first PTR name.
    pub fn display_name(&self) -> Option<&str> {
        self.hostnames
            .iter()
            .find(|h| h.kind == HostnameKind::User)
            .or_else(|| self.hostnames.first())
            .map(|h| h.name.as_str())
    }
}

/// A whole scan, folded from its events: what a caller gets back from a finished scan, and what
/// formats that need the whole picture write from.
///
/// Finished hosts come from their `HostDone` (which carries everything their earlier events
/// said). Hosts still being scanned are in [`ScanResult::active`], built up from `HostUp`,
/// `PortFound`, `ServiceFound`, `OsMatch`, `ScriptOutput` and `TraceHop` as they arrive, so a live
/// view (the TUI, the API's `GET /scans/{id}`) shows ports the moment they are decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScanResult {
    /// The scan's id, once started.
    #[serde(default)]
    pub scan_id: String,
    /// The scan's header, once started.
    pub info: Option<ScanInfo>,
    /// Hosts that were up (or of unknown status, as with `-sL`), in the order they finished.
    pub hosts: Vec<HostResult>,
    /// Hosts that were down (kept only as a count, so that sweeps of huge ranges stay small).
    pub hosts_down: u64,
    /// Hosts being scanned, by address: what their events have said so far.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub active: BTreeMap<IpAddr, HostResult>,
    /// Output of scripts that ran before or after the hosts (pre- and post-rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<ScriptResult>,
    /// Warnings emitted during the scan.
    pub warnings: Vec<String>,
    /// Totals, once finished.
    pub stats: Option<ScanStats>,
}

/// Bound of hosts kept in [`ScanResult::active`]: a host is there only between its first event
/// and its `HostDone`, so this is only reached by a stream that never finishes its hosts.
const MAX_ACTIVE: usize = 1 << 16;

impl ScanResult {
    /// Fold one event into the result.
    pub fn apply(&mut self, event: &ScanEvent) {
        match event {
            ScanEvent::ScanStarted(info) => {
                self.scan_id = info.scan_id.clone();
                self.info = Some(info.clone());
            }
            ScanEvent::HostUp { addr, reason, reason_ttl, mac } => {
                let h = self.active_host(*addr);
                h.status = HostStatus::Up;
                h.reason = *reason;
                h.reason_ttl = *reason_ttl;
                h.mac = mac.clone().or(h.mac.take());
            }
            // A port is decided once: appended, not searched for (an all-ports scan sends 65,535).
            ScanEvent::PortFound { addr, port } => self.active_host(*addr).ports.push(port.clone()),
            ScanEvent::ServiceFound { addr, protocol, port, service, tls } => {
                let h = self.active_host(*addr);
                let p = match h.ports.iter().position(|p| p.protocol == *protocol && p.port == *port) {
                    Some(i) => &mut h.ports[i],
                    None => {
                        h.ports.push(PortResult::new(*protocol, *port, PortState::Open, Reason::Unknown, 0));
                        let last = h.ports.len() - 1;
                        &mut h.ports[last]
                    }
                };
                p.service = Some(service.clone());
                p.tls = tls.clone();
            }
            ScanEvent::OsMatch { addr, matches } => self.active_host(*addr).os = matches.clone(),
            ScanEvent::ScriptOutput { scope, result } => match *scope {
                ScriptScope::Pre | ScriptScope::Post => self.scripts.push(result.clone()),
                ScriptScope::Host { addr } => self.active_host(addr).scripts.push(result.clone()),
                ScriptScope::Port { addr, protocol, port } => {
                    let h = self.active_host(addr);
                    if let Some(p) = h.ports.iter_mut().find(|p| p.protocol == protocol && p.port == port) {
                        p.scripts.push(result.clone());
                    }
                }
            },
            ScanEvent::TraceHop { addr, hop } => self.active_host(*addr).trace.push(hop.clone()),
            ScanEvent::HostDone(h) => {
                self.active.remove(&h.addr);
                if h.status == HostStatus::Down {
                    self.hosts_down += 1;
                } else {
                    self.hosts.push(h.clone());
                }
            }
            ScanEvent::Warning { message } => self.warnings.push(message.clone()),
            ScanEvent::ScanFinished(stats) => {
                self.stats = Some(stats.clone());
                self.active.clear();
            }
            ScanEvent::Progress { .. } | ScanEvent::Stopping | ScanEvent::FirstOpenPort { .. } => {}
        }
    }

    fn active_host(&mut self, addr: IpAddr) -> &mut HostResult {
        if self.active.len() >= MAX_ACTIVE && !self.active.contains_key(&addr) {
            // Never reached by a well-formed stream; forget the oldest-addressed rather than grow.
            self.active.pop_first();
        }
        self.active.entry(addr).or_insert_with(|| HostResult::new(addr, HostStatus::Unknown, Reason::Unknown))
    }

    /// A finished host by address.
    pub fn host(&self, addr: IpAddr) -> Option<&HostResult> {
        self.hosts.iter().find(|h| h.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::CertInfo;

    #[test]
    fn certificate_names_put_nmaps_fields_first() {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let name = [
            pair("countryName", "DE"),
            pair("organizationName", "Lab"),
            pair("localityName", "X"),
            pair("commonName", "h"),
        ];
        assert_eq!(CertInfo::name_line(&name), "commonName=h/organizationName=Lab/countryName=DE/localityName=X");
        assert_eq!(CertInfo::name_line(&[]), "");
    }

    use super::*;

    fn host(status: HostStatus) -> HostResult {
        HostResult {
            addr: "192.0.2.1".parse().unwrap(),
            hostnames: vec![
                Hostname { name: "ptr.example".into(), kind: HostnameKind::Ptr },
                Hostname { name: "given.example".into(), kind: HostnameKind::User },
            ],
            mac: None,
            status,
            reason: Reason::SynAck,
            reason_ttl: 0,
            start_unix: 1,
            end_unix: 2,
            srtt_us: Some(100),
            ports: vec![],
            extraports: vec![ExtraPorts { state: PortState::Closed, count: 7, reasons: vec![] }],
            ..HostResult::new("192.0.2.1".parse().unwrap(), status, Reason::SynAck)
        }
    }

    #[test]
    fn reducer_builds_live_hosts_from_fine_events() {
        let a: IpAddr = "198.18.0.10".parse().unwrap();
        let mut r = ScanResult::default();
        r.apply(&ScanEvent::HostUp {
            addr: a,
            reason: Reason::ArpResponse,
            reason_ttl: 0,
            mac: Some("02:00:00:00:00:01".into()),
        });
        r.apply(&ScanEvent::PortFound {
            addr: a,
            port: PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64),
        });
        r.apply(&ScanEvent::PortFound {
            addr: a,
            port: PortResult::new(Protocol::Udp, 22, PortState::Closed, Reason::PortUnreach, 64),
        });
        let ssh = ServiceInfo { name: "ssh".into(), method: ServiceMethod::Probed, conf: 10, ..Default::default() };
        r.apply(&ScanEvent::ServiceFound {
            addr: a,
            protocol: Protocol::Tcp,
            port: 22,
            service: ssh.clone(),
            tls: None,
        });
        r.apply(&ScanEvent::ScriptOutput {
            scope: ScriptScope::Port { addr: a, protocol: Protocol::Tcp, port: 22 },
            result: ScriptResult { id: "ssh-hostkey".into(), output: "k".into(), elements: vec![], table: vec![] },
        });
        r.apply(&ScanEvent::ScriptOutput {
            scope: ScriptScope::Post,
            result: ScriptResult { id: "summary".into(), output: "s".into(), elements: vec![], table: vec![] },
        });
        let live = &r.active[&a];
        assert_eq!(live.status, HostStatus::Up);
        assert_eq!(live.reason, Reason::ArpResponse);
        assert_eq!(live.ports.len(), 2);
        assert_eq!(live.ports[0].service.as_ref(), Some(&ssh));
        assert_eq!(live.ports[0].scripts.len(), 1);
        assert!(live.ports[1].service.is_none(), "udp/22 is another port");
        assert_eq!(r.scripts.len(), 1);
        // The host's HostDone replaces what was built up.
        let mut done = host(HostStatus::Up);
        done.addr = a;
        r.apply(&ScanEvent::HostDone(done.clone()));
        assert!(r.active.is_empty());
        assert_eq!(r.host(a), Some(&done));
    }

    #[test]
    fn reducer_keeps_up_hosts_and_counts_down_ones() {
        let mut r = ScanResult::default();
        r.apply(&ScanEvent::HostDone(host(HostStatus::Up)));
        r.apply(&ScanEvent::HostDone(host(HostStatus::Down)));
        r.apply(&ScanEvent::HostDone(host(HostStatus::Down)));
        assert_eq!(r.hosts.len(), 1);
        assert_eq!(r.hosts_down, 2);
        assert_eq!(r.hosts[0].ports_scanned(), 7);
        assert_eq!(r.hosts[0].display_name(), Some("given.example"));
    }

    #[test]
    fn service_version_fields_are_optional_in_json() {
        let old = r#"{"name":"ssh","method":"table","conf":3}"#;
        let s: ServiceInfo = serde_json::from_str(old).unwrap();
        assert_eq!(s.product, None);
        assert_eq!(serde_json::to_string(&s).unwrap(), old);
        let s = ServiceInfo {
            name: "http".into(),
            method: ServiceMethod::Probed,
            conf: 10,
            product: Some("nginx".into()),
            version: Some("1.22.1".into()),
            extrainfo: Some("lab".into()),
            tunnel: Some("ssl".into()),
            ..Default::default()
        };
        assert_eq!(s.version_line(), "nginx 1.22.1 (lab)");
        assert_eq!(s.display_name(), "ssl/http");
    }

    #[test]
    fn events_are_tagged_json() {
        let ev = ScanEvent::Warning { message: "x".into() };
        let v: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["event"], "warning");
        let back: ScanEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
    }
}
