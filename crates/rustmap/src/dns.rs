//! Name resolution: forward lookups of target names (A and AAAA) and reverse (PTR) lookups of
//! scanned addresses.
//!
//! Two back-ends, chosen by [`NameOptions`]:
//!
//! - RustMap's own stub resolver (hickory-resolver), the default. It reads the system's
//!   configuration (`/etc/resolv.conf`: name servers, search list, `ndots`) and honours
//!   `/etc/hosts` for names and addresses, as nmap's resolver does. `--dns-servers` replaces the
//!   name servers and keeps the rest of the system configuration.
//! - The operating system's resolver (`getaddrinfo` / `getnameinfo`), with `--system-dns`, or
//!   when the system configuration names no server at all.
//!
//! Every lookup is bounded by [`NameOptions::timeout`]. Names read off the network are hostile:
//! [`clean_name`] sanitizes them (control characters escaped) and bounds their length, and a
//! name's address list is cut at [`MAX_ADDRESSES`].

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thiserror::Error;

/// How long one name lookup may take unless told otherwise (the user guide's 5000 ms).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The port of a DNS server given without one.
pub const DNS_PORT: u16 = 53;

/// A host name longer than this (DNS's own limit, in text form) is cut.
pub const MAX_NAME_LEN: usize = 255;

/// At most this many addresses of one name are kept.
pub const MAX_ADDRESSES: usize = 256;

/// Reverse lookups in flight at once, at most.
pub const MAX_PARALLEL_PTR: usize = 64;

/// How names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameOptions {
    /// DNS servers to ask instead of the system's (`--dns-servers`); empty: the system's.
    pub servers: Vec<SocketAddr>,
    /// Use the operating system's resolver instead of RustMap's own (`--system-dns`).
    pub system: bool,
    /// Bound of one lookup, forward or reverse (`--resolve-timeout`).
    pub timeout: Duration,
    /// Scan every address a target name resolves to, not just the first (`--resolve-all`).
    pub resolve_all: bool,
}

impl Default for NameOptions {
    fn default() -> Self {
        NameOptions { servers: Vec::new(), system: false, timeout: DEFAULT_TIMEOUT, resolve_all: false }
    }
}

/// A `--dns-servers` list that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerListError {
    /// Nothing between the commas.
    #[error("empty DNS server list")]
    Empty,
    /// An entry that is neither an address nor an address with a port.
    #[error("{0:?} is not an IP address (e.g. 192.0.2.53, 2001:db8::53, 192.0.2.53:5353, [2001:db8::53]:5353)")]
    NotAnAddress(String),
    /// Port 0.
    #[error("{0:?}: port 0 is not a DNS server port")]
    PortZero(String),
}

/// Parse a `--dns-servers` value: comma-separated IPv4 or IPv6 addresses, each optionally with a
/// port (`192.0.2.53:5353`, `[2001:db8::53]:5353`); port 53 otherwise. Duplicates are dropped.
pub fn parse_servers(list: &str) -> Result<Vec<SocketAddr>, ServerListError> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr = if let Ok(ip) = item.parse::<IpAddr>() {
            SocketAddr::new(ip, DNS_PORT)
        } else if let Ok(sa) = item.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err(ServerListError::PortZero(item.to_string()));
            }
            sa
        } else {
            return Err(ServerListError::NotAnAddress(item.to_string()));
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    if out.is_empty() {
        return Err(ServerListError::Empty);
    }
    Ok(out)
}

/// Why a forward lookup gave no address.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// The name does not exist, or has no A or AAAA record.
    #[error("no such name")]
    NotFound,
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Any other failure (unreachable server, refused, malformed answer, invalid name).
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
enum Backend {
    Hickory(Box<TokioResolver>),
    System,
}

/// A resolver for one scan. Cheap to clone: clones share the connections and the cache.
#[derive(Clone)]
pub struct Resolver {
    backend: Backend,
    timeout: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            Backend::Hickory(_) => "dns",
            Backend::System => "system",
        };
        f.debug_struct("Resolver").field("backend", &kind).field("timeout", &self.timeout).finish()
    }
}

/// The resolver could not be set up as asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The system configuration (`/etc/resolv.conf`) could not be read or names no server.
    #[error("cannot use the system DNS configuration: {0}")]
    SystemConfig(String),
    /// The resolver library refused the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

impl Resolver {
    /// The resolver `opts` ask for. Must be called inside a tokio runtime.
    ///
    /// Fails when RustMap's own resolver is wanted with the system's servers and the system
    /// configuration names none; [`Resolver::system`] is then the fallback.
    pub fn new(opts: &NameOptions) -> Result<Resolver, SetupError> {
        let timeout = opts.timeout.max(Duration::from_millis(1));
        if opts.system {
            return Ok(Resolver::system(timeout));
        }
        let system = hickory_resolver::system_conf::read_system_conf();
        let (config, mut options) = if opts.servers.is_empty() {
            system.map_err(|e| SetupError::SystemConfig(e.to_string()))?
        } else {
            // The user's servers, the system's search list and options where there are some.
            let (domain, search, options) = match system {
                Ok((c, o)) => {
                    let (domain, search, _) = c.into_parts();
                    (domain, search, o)
                }
                Err(_) => (None, Vec::new(), ResolverOpts::default()),
            };
            let servers = opts
                .servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    NameServerConfig::new(s.ip(), true, vec![udp, tcp])
                })
                .collect();
            (ResolverConfig::from_parts(domain, search, servers), options)
        };
        options.attempts = options.attempts.clamp(1, 5);
        // Each attempt gets its share of the lookup's time (the whole lookup is bounded too).
        options.timeout = (timeout / options.attempts as u32).max(Duration::from_millis(50));
        options.use_hosts_file = ResolveHosts::Always;
        // A and AAAA queried together; the order is settled by `order_addresses`.
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        // Room for every reverse lookup the scan runs at once (the default would answer "busy").
        options.max_active_requests = options.max_active_requests.max(4 * MAX_PARALLEL_PTR);
        let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| SetupError::Build(e.to_string()))?;
        Ok(Resolver { backend: Backend::Hickory(Box::new(resolver)), timeout })
    }

    /// The operating system's resolver (`getaddrinfo`, `getnameinfo`), bounded by `timeout`.
    pub fn system(timeout: Duration) -> Resolver {
        Resolver { backend: Backend::System, timeout }
    }

    /// Is this the operating system's resolver?
    pub fn is_system(&self) -> bool {
        matches!(self.backend, Backend::System)
    }

    /// Every address of `name` (A and AAAA records, or `/etc/hosts`), duplicates dropped, the
    /// preferred family first (IPv6 if `prefer_v6`, IPv4 otherwise), at most [`MAX_ADDRESSES`].
    pub async fn lookup(&self, name: &str, prefer_v6: bool) -> Result<Vec<IpAddr>, LookupError> {
        let found: Result<Vec<IpAddr>, LookupError> = match &self.backend {
            Backend::Hickory(r) => match tokio::time::timeout(self.timeout, r.lookup_ip(name)).await {
                Err(_) => Err(LookupError::Timeout),
                Ok(Ok(ips)) => Ok(ips.iter().collect()),
                Ok(Err(e)) if e.is_no_records_found() || e.is_nx_domain() => Err(LookupError::NotFound),
                Ok(Err(e)) => Err(LookupError::Failed(e.to_string())),
            },
            Backend::System => match tokio::time::timeout(self.timeout, tokio::net::lookup_host((name, 0))).await {
                Err(_) => Err(LookupError::Timeout),
                Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
                Ok(Err(e)) => Err(LookupError::Failed(e.to_string())),
            },
        };
        let addrs = order_addresses(found?, prefer_v6);
        if addrs.is_empty() {
            return Err(LookupError::NotFound);
        }
        Ok(addrs)
    }

    /// The name of `ip` (its first PTR record, or `/etc/hosts`), cleaned by [`clean_name`];
    /// nothing when there is none or the lookup failed or timed out.
    pub async fn reverse(&self, ip: IpAddr) -> Option<String> {
        match &self.backend {
            Backend::Hickory(r) => {
                let lookup = tokio::time::timeout(self.timeout, r.reverse_lookup(Name::from(ip))).await.ok()?.ok()?;
                lookup.answers().iter().find_map(|rec| match &rec.data {
                    RData::PTR(ptr) => clean_name(&ptr.0.to_ascii()),
                    _ => None,
                })
            }
            Backend::System => {
                let job = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
                let name = tokio::time::timeout(self.timeout, job).await.ok()?.ok()?.ok()?;
                clean_name(&name)
            }
        }
    }
}

/// Duplicates dropped (first one kept), then a stable sort putting the preferred family first,
/// then cut at [`MAX_ADDRESSES`].
pub fn order_addresses(addrs: impl IntoIterator<Item = IpAddr>, prefer_v6: bool) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a) {
            out.push(a);
            if out.len() >= 4 * MAX_ADDRESSES {
                break;
            }
        }
    }
    out.sort_by_key(|a| a.is_ipv6() != prefer_v6);
    out.truncate(MAX_ADDRESSES);
    out
}

/// Which addresses of a resolved name are scanned, and which are only reported.
///
/// By default the first address (of the preferred family when the name has one). With
/// `resolve_all`, every address of the first address's family, as nmap's `--resolve-all`
/// (which scans only IPv4 addresses, or IPv6 ones with `-6`). `addrs` comes ordered from
/// [`order_addresses`].
pub fn split_addresses(addrs: &[IpAddr], resolve_all: bool) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let Some(first) = addrs.first() else { return (Vec::new(), Vec::new()) };
    if !resolve_all {
        return (vec![*first], addrs[1..].to_vec());
    }
    addrs.iter().partition(|a| a.is_ipv6() == first.is_ipv6())
}

/// A host name from the network made safe to show: the root's trailing dot dropped, control
/// characters escaped ([`rustmap_model::sanitize`]), cut at [`MAX_NAME_LEN`] characters. Empty
/// names and names that are just an address (what `getnameinfo` answers when there is no PTR
/// record) give nothing.
pub fn clean_name(raw: &str) -> Option<String> {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if name.is_empty() || name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let clean = rustmap_model::sanitize(name);
    Some(clean.chars().take(MAX_NAME_LEN).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn server_lists() {
        assert_eq!(
            parse_servers("198.18.0.10,2001:db8::53").unwrap(),
            vec!["198.18.0.10:53".parse().unwrap(), "[2001:db8::53]:53".parse().unwrap()]
        );
        assert_eq!(
            parse_servers(" 192.0.2.1:5353 , [2001:db8::1]:5300,192.0.2.1:5353").unwrap(),
            vec!["192.0.2.1:5353".parse().unwrap(), "[2001:db8::1]:5300".parse().unwrap()]
        );
        assert_eq!(parse_servers(",,"), Err(ServerListError::Empty));
        assert_eq!(parse_servers(""), Err(ServerListError::Empty));
        assert_eq!(parse_servers("8.8.8.8,dns.example"), Err(ServerListError::NotAnAddress("dns.example".into())));
        assert_eq!(parse_servers("300.1.1.1"), Err(ServerListError::NotAnAddress("300.1.1.1".into())));
        assert_eq!(parse_servers("192.0.2.1:0"), Err(ServerListError::PortZero("192.0.2.1:0".into())));
        assert_eq!(parse_servers("192.0.2.1:99999"), Err(ServerListError::NotAnAddress("192.0.2.1:99999".into())));
        let msg = parse_servers("nope").unwrap_err().to_string();
        assert!(msg.contains("\"nope\"") && msg.contains("not an IP address"), "{msg}");
    }

    #[test]
    fn ipv4_first_unless_ipv6_is_preferred() {
        let found = [ip("fd00::1"), ip("192.0.2.2"), ip("fd00::2"), ip("192.0.2.1"), ip("192.0.2.2")];
        assert_eq!(order_addresses(found, false), vec![ip("192.0.2.2"), ip("192.0.2.1"), ip("fd00::1"), ip("fd00::2")]);
        assert_eq!(order_addresses(found, true), vec![ip("fd00::1"), ip("fd00::2"), ip("192.0.2.2"), ip("192.0.2.1")]);
        assert!(order_addresses([], false).is_empty());
    }

    #[test]
    fn address_lists_are_bounded() {
        let many = (0..5000u32).map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        let kept = order_addresses(many, false);
        assert_eq!(kept.len(), MAX_ADDRESSES);
        assert_eq!(kept[0], ip("10.0.0.0"));
    }

    #[test]
    fn first_address_or_all_of_its_family() {
        let addrs = [ip("192.0.2.1"), ip("192.0.2.2"), ip("fd00::1")];
        assert_eq!(split_addresses(&addrs, false), (vec![ip("192.0.2.1")], vec![ip("192.0.2.2"), ip("fd00::1")]));
        assert_eq!(split_addresses(&addrs, true), (vec![ip("192.0.2.1"), ip("192.0.2.2")], vec![ip("fd00::1")]));
        // A name with IPv6 addresses only (and no -6): they are what there is.
        let v6 = [ip("fd00::1"), ip("fd00::2")];
        assert_eq!(split_addresses(&v6, true), (v6.to_vec(), vec![]));
        assert_eq!(split_addresses(&[], true), (vec![], vec![]));
    }

    #[test]
    fn hostile_names_are_cleaned_and_bounded() {
        assert_eq!(clean_name("h10.lab.test.").as_deref(), Some("h10.lab.test"));
        assert_eq!(clean_name("h10.lab.test").as_deref(), Some("h10.lab.test"));
        assert_eq!(clean_name("").as_deref(), None);
        assert_eq!(clean_name(".").as_deref(), None);
        assert_eq!(clean_name("198.18.0.10").as_deref(), None);
        assert_eq!(clean_name("fd00::10").as_deref(), None);
        let evil = clean_name("a\x1b[2J\n.example").unwrap();
        assert!(!evil.chars().any(char::is_control), "{evil:?}");
        assert!(evil.contains("\\x1b"), "{evil:?}");
        let long = "x".repeat(10_000);
        assert_eq!(clean_name(&long).unwrap().chars().count(), MAX_NAME_LEN);
    }

    #[tokio::test]
    async fn hosts_file_names_resolve_without_a_server() {
        // localhost comes from /etc/hosts (hickory) or getaddrinfo (system); no packet leaves.
        for system in [false, true] {
            let opts = NameOptions { system, servers: vec!["127.0.0.1:9".parse().unwrap()], ..NameOptions::default() };
            let r = Resolver::new(&opts).unwrap();
            assert_eq!(r.is_system(), system);
            let addrs = r.lookup("localhost", false).await.unwrap();
            assert!(addrs.iter().all(|a| a.is_loopback()) && !addrs.is_empty(), "{addrs:?}");
            assert!(addrs[0].is_ipv4() || addrs.iter().all(|a| a.is_ipv6()), "{addrs:?}");
        }
    }

    /// A DNS server on loopback answering every query with `answers` (type, RDATA) records.
    fn fake_server(answers: Vec<(u16, Vec<u8>)>) -> SocketAddr {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let q = &buf[..n];
                // The question: QNAME labels, then QTYPE and QCLASS.
                let mut end = 12;
                while end < n && q[end] != 0 {
                    end += 1 + q[end] as usize;
                }
                let end = end + 5;
                if end > n {
                    continue;
                }
                let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
                let matching: Vec<&(u16, Vec<u8>)> = answers.iter().filter(|(t, _)| *t == qtype).collect();
                let mut r = Vec::new();
                r.extend_from_slice(&q[..2]);
                r.extend_from_slice(&[0x81, 0x80, 0, 1]);
                r.extend_from_slice(&(matching.len() as u16).to_be_bytes());
                r.extend_from_slice(&[0, 0, 0, 0]);
                r.extend_from_slice(&q[12..end]);
                for (t, data) in matching {
                    r.extend_from_slice(&[0xc0, 0x0c]);
                    r.extend_from_slice(&t.to_be_bytes());
                    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                    r.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    r.extend_from_slice(data);
                }
                let _ = sock.send_to(&r, peer);
            }
        });
        addr
    }

    fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in labels {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v
    }

    #[tokio::test]
    async fn answers_of_a_dns_server_are_used_and_cleaned() {
        let server = fake_server(vec![
            (1, vec![192, 0, 2, 7]),
            (1, vec![192, 0, 2, 8]),
            (28, "fd00::7".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec()),
            (12, wire_name(&[b"evil\x1b[2J\x07", b"example"])),
        ]);
        let r = Resolver::new(&NameOptions { servers: vec![server], ..NameOptions::default() }).unwrap();
        let addrs = r.lookup("multi.example.", false).await.unwrap();
        assert_eq!(addrs.len(), 3, "{addrs:?}");
        assert!(addrs[..2].contains(&ip("192.0.2.7")) && addrs[..2].contains(&ip("192.0.2.8")), "{addrs:?}");
        assert_eq!(addrs[2], ip("fd00::7"));
        let v6first = r.lookup("multi.example.", true).await.unwrap();
        assert_eq!(v6first[0], ip("fd00::7"));
        let name = r.reverse(ip("192.0.2.7")).await.unwrap();
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.starts_with("evil") && name.ends_with(".example"), "{name:?}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_bound() {
        // A server on loopback that never answers: the lookup ends at the timeout, as an error.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = sock.local_addr().unwrap();
        let opts = NameOptions { servers: vec![server], timeout: Duration::from_millis(300), ..NameOptions::default() };
        let r = Resolver::new(&opts).unwrap();
        let t = std::time::Instant::now();
        let e = r.lookup("nothing-here.rustmap-test.", false).await.unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(matches!(e, LookupError::Timeout | LookupError::Failed(_)), "{e:?}");
        assert_eq!(r.reverse(ip("192.0.2.1")).await, None);
    }
}
