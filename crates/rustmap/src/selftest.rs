//! `--self-test`: the user guide's eight checks of whether this machine can scan, each
//! [`Status::Pass`], [`Status::Warn`] or [`Status::Fail`] with a one-line reason and, when it
//! is not a pass, a hint to fix it.
//!
//! The checks look at this machine only: privileges, the capture and raw sockets, interfaces,
//! the resolver's configuration (and `localhost`, which resolves without a packet), a real
//! connection and a real raw SYN probe to a listener of our own on 127.0.0.1, the history
//! database, and the GeoIP databases' usual places. Nothing is sent anywhere but loopback: a
//! self-test on a machine whose network is down, or inside a lab namespace, tells the truth
//! about this machine without touching anybody else's. The history database is the front-end's
//! to check (the store is not this crate's): it passes its own [`Check`] in.

use crate::{privilege, ScanConfig};
use rustmap_model::{PortState, ScanType};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Works.
    Pass,
    /// Works partly, or an optional part is missing.
    Warn,
    /// A part a scan needs does not work.
    Fail,
}

impl Status {
    /// `PASS`, `WARN`, `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked ("Raw socket access").
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// Why, in one line.
    pub detail: String,
    /// What to do about it (empty for a pass).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

impl Check {
    fn new(name: &'static str, status: Status, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { name, status, detail: detail.into(), hint: hint.into() }
    }

    /// A passed check.
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Status::Pass, detail, "")
    }

    /// A check with a warning.
    pub fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, detail, hint)
    }

    /// A failed check.
    pub fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, detail, hint)
    }
}

const RAW_HINT: &str =
    "run as root, or give the binary the capability: sudo setcap cap_net_raw+eip $(command -v rustmap)";

fn privilege_level() -> Check {
    const NAME: &str = "Privilege level";
    // The effective uid, from /proc (the second field of `Uid:`).
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(str::to_string))
        .and_then(|v| v.split_whitespace().nth(1).and_then(|e| e.parse::<u32>().ok()));
    let caps = privilege::capabilities();
    match (uid, caps.net_raw) {
        (Some(0), true) => Check::pass(NAME, "root (uid 0)"),
        (_, true) => Check::pass(NAME, "not root, but CAP_NET_RAW: raw scans work"),
        (Some(0), false) => Check::warn(NAME, "root without CAP_NET_RAW (a restricted container?)", RAW_HINT),
        _ => Check::warn(NAME, "unprivileged: connect scans (-sT) and unprivileged discovery only", RAW_HINT),
    }
}

fn packet_capture() -> Check {
    const NAME: &str = "Packet capture";
    match rustmap_netio::capture::Capture::open(None) {
        Ok(_) => Check::pass(NAME, "AF_PACKET capture socket opens (no libpcap needed)"),
        Err(e) => Check::fail(NAME, format!("cannot open an AF_PACKET capture socket: {e}"), RAW_HINT),
    }
}

fn raw_sockets() -> Check {
    const NAME: &str = "Raw socket access";
    match rustmap_netio::raw::RawIpSender::new() {
        Ok(_) => Check::pass(NAME, "raw IPv4 socket opens (SYN, UDP, SCTP and the other raw scans work)"),
        Err(e) => Check::fail(NAME, format!("cannot open a raw IP socket: {e}"), RAW_HINT),
    }
}

fn interfaces() -> Check {
    const NAME: &str = "Network interfaces";
    let all = rustmap_netio::iface::list();
    let lo = rustmap_netio::iface::loopback_name();
    let usable: Vec<String> = all
        .iter()
        .filter(|i| i.name != lo && !i.addrs.is_empty())
        .map(|i| {
            let a = i.addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
            format!("{} ({a})", i.name)
        })
        .collect();
    if usable.is_empty() {
        Check::warn(
            NAME,
            format!("only the loopback interface ({lo}) has an address"),
            "bring a network interface up with an address to scan other hosts",
        )
    } else {
        Check::pass(NAME, format!("{} with addresses: {}", usable.len(), usable.join("; ")))
    }
}

/// The name servers of a resolv.conf text.
fn name_servers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.split_whitespace().next().map(str::to_string))
        .collect()
}

fn dns() -> Check {
    const NAME: &str = "DNS resolution";
    let local = dns_lookup::lookup_host("localhost").map(|a| !a.is_empty()).unwrap_or(false);
    let servers = std::fs::read_to_string("/etc/resolv.conf").map(|t| name_servers(&t)).unwrap_or_default();
    match (local, servers.is_empty()) {
        (false, _) => Check::fail(
            NAME,
            "the system resolver cannot resolve \"localhost\"",
            "check /etc/hosts and /etc/nsswitch.conf",
        ),
        (true, true) => Check::warn(
            NAME,
            "\"localhost\" resolves, but /etc/resolv.conf names no name server",
            "add a nameserver to /etc/resolv.conf, or give --dns-servers, or scan addresses with -n",
        ),
        (true, false) => Check::pass(NAME, format!("\"localhost\" resolves; name servers: {}", servers.join(", "))),
    }
}

/// A connect and a raw SYN probe to a listener of our own on 127.0.0.1.
async fn loopback(raw_ok: bool) -> Check {
    const NAME: &str = "Loopback connectivity";
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
        Ok(l) => l,
        Err(e) => {
            return Check::fail(NAME, format!("cannot listen on 127.0.0.1: {e}"), "is the loopback interface up?")
        }
    };
    let Ok(addr) = listener.local_addr() else {
        return Check::fail(NAME, "no local address for the listener", "is the loopback interface up?");
    };
    if let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        return Check::fail(
            NAME,
            format!("a connection to {addr} failed: {e}"),
            "is the loopback interface up (ip link set lo up)?",
        );
    }
    if !raw_ok {
        return Check::warn(
            NAME,
            format!("a connection to {addr} works; the raw probe was skipped (no raw access)"),
            RAW_HINT,
        );
    }
    match raw_probe(addr).await {
        Ok(PortState::Open) => {
            Check::pass(NAME, format!("a connection and a raw SYN probe to {addr} both found it open"))
        }
        Ok(state) => Check::fail(
            NAME,
            format!("a raw SYN probe to {addr} found it {} although it listens", state.as_str()),
            "a firewall on the loopback interface (iptables -L INPUT) may drop raw probes",
        ),
        Err(e) => Check::fail(NAME, format!("the raw SYN probe to {addr} failed: {e}"), RAW_HINT),
    }
}

/// The state a real SYN scan finds at `addr`.
async fn raw_probe(addr: SocketAddr) -> Result<PortState, String> {
    let mut c = ScanConfig::new([addr.ip().to_string()]);
    c.scan_types = vec![ScanType::Syn];
    c.ports.spec = Some(addr.port().to_string());
    c.discovery.skip = true;
    c.names.reverse = rustmap_model::config::ReverseDns::Never;
    c.output.progress = false;
    let handle = crate::Scanner::start(c).map_err(|e| e.to_string())?;
    let result = tokio::time::timeout(Duration::from_secs(10), handle.wait())
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let port = result.hosts.iter().flat_map(|h| h.ports.iter()).find(|p| p.port == addr.port());
    Ok(port.map_or(PortState::Filtered, |p| p.state))
}

/// Where distributions' `geoipupdate` puts GeoLite2 files: not searched by `--geoip` (the
/// guide's order is `--geoip-db`, `$RUSTMAP_GEOIP_DIR`, `~/.rustmap/geoip/`, the current
/// directory), but worth pointing at.
const SYSTEM_GEOIP_DIRS: [&str; 3] = ["/usr/share/GeoIP", "/var/lib/GeoIP", "/usr/local/share/GeoIP"];

fn geoip() -> Check {
    const NAME: &str = "GeoIP databases";
    match rustmap_geoip::GeoDb::discover(None) {
        Ok(db) => Check::pass(
            NAME,
            format!(
                "--geoip uses {}",
                db.files().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        ),
        Err(e) => {
            let system = SYSTEM_GEOIP_DIRS
                .iter()
                .map(Path::new)
                .find(|d| d.join("GeoLite2-City.mmdb").is_file() || d.join("GeoLite2-ASN.mmdb").is_file());
            let hint = match system {
                Some(d) => format!(
                    "GeoLite2 files are in {}: use --geoip-db {} (or $RUSTMAP_GEOIP_DIR)",
                    d.display(),
                    d.display()
                ),
                None => "--geoip needs GeoLite2-City.mmdb and GeoLite2-ASN.mmdb (MaxMind, free account): put them in \
                         ~/.rustmap/geoip/"
                    .to_string(),
            };
            Check::warn(NAME, e.to_string(), hint)
        }
    }
}

/// Run the eight checks in the guide's order. `database` is the front-end's check of the
/// history database (the seventh).
pub async fn run(database: Check) -> Vec<Check> {
    let raw = raw_sockets();
    let raw_ok = raw.status == Status::Pass && packet_capture_ok();
    vec![privilege_level(), packet_capture(), raw, interfaces(), dns(), loopback(raw_ok).await, database, geoip()]
}

fn packet_capture_ok() -> bool {
    rustmap_netio::capture::Capture::open(None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_name_servers() {
        let t = "# comment\nnameserver 198.18.0.53\nsearch lab.test\nnameserver fd00:18::53 # v6\n";
        assert_eq!(name_servers(t), ["198.18.0.53", "fd00:18::53"]);
        assert!(name_servers("search x\n").is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn eight_checks_in_the_guides_order_and_raw_access_matches_the_capabilities() {
        let checks = run(Check::pass("Scan database", "test")).await;
        let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Privilege level",
                "Packet capture",
                "Raw socket access",
                "Network interfaces",
                "DNS resolution",
                "Loopback connectivity",
                "Scan database",
                "GeoIP databases"
            ]
        );
        let raw = privilege::has_raw_socket_privilege();
        assert_eq!(checks[2].status == Status::Pass, raw, "{:?}", checks[2]);
        for c in &checks {
            assert!(!c.detail.is_empty(), "{c:?}");
            if c.name != "GeoIP databases" {
                assert_eq!(c.hint.is_empty(), c.status == Status::Pass, "{c:?}");
            }
        }
        // A real connection to 127.0.0.1 works everywhere; the raw probe only with raw access.
        assert_ne!(checks[5].status, Status::Fail, "{:?}", checks[5]);
    }
}
