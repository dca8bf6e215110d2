//! Port expressions (`-p`, `--exclude-ports`) and RustMap's ranked port table.
//!
//! The table is RustMap's own data file, `data/ports.tsv` (format in `docs/port-ranking.md`):
//! `proto<TAB>port<TAB>name<TAB>tier`, ordered most common first within each protocol. It gives
//! the default top-1000 list, `-F`, `--top-ports N`, service-name lookups for `-p http`, and the
//! SERVICE column of the outputs. A broken line is reported with its number, never a panic.

use rustmap_model::Protocol;
use std::collections::HashMap;
use std::sync::OnceLock;
use thiserror::Error;

/// The compiled-in port table source.
pub const BUILTIN_PORTS_TSV: &str = include_str!("../data/ports.tsv");

/// Version of the compiled-in port table (`data/ports.tsv`), shown by `rustmap -V`. Bump it with
/// every change to that file.
pub const BUILTIN_PORTS_VERSION: u32 = 1;

/// An error in a port table file.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{origin}:{line}: {message}")]
pub struct PortTableError {
    /// File name or `<builtin>`.
    pub origin: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Errors in a port expression.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortSpecError {
    /// A number outside 1–65535 (or not a number).
    #[error("invalid port {0:?} (ports are 1-65535)")]
    BadPort(String),
    /// A reversed or malformed range.
    #[error("invalid port range {0:?}")]
    BadRange(String),
    /// A service name the port table does not know.
    #[error("unknown service name {0:?} in port list")]
    UnknownService(String),
    /// Nothing left to scan.
    #[error("port list {0:?} selects no ports")]
    Empty(String),
}

#[derive(Debug, Clone)]
struct Entry {
    port: u16,
    name: String,
}

/// The ranked port table: most common ports first, per protocol, with their service names.
#[derive(Debug, Clone, Default)]
pub struct PortTable {
    ranked: HashMap<Protocol, Vec<Entry>>,
    names: HashMap<(Protocol, u16), usize>,
}

impl PortTable {
    /// The compiled-in table (parsed once).
    pub fn builtin() -> &'static PortTable {
        static TABLE: OnceLock<PortTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The built-in file is checked by a unit test; a broken build would still scan, just without names.
            PortTable::parse("<builtin>", BUILTIN_PORTS_TSV).unwrap_or_default()
        })
    }

    /// Parse a table in the `ports.tsv` format.
    pub fn parse(origin: &str, text: &str) -> Result<PortTable, PortTableError> {
        let mut table = PortTable::default();
        let mut last_tier: HashMap<Protocol, u8> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| PortTableError { origin: origin.to_string(), line: i + 1, message };
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [proto, port, name, tier] = fields[..] else {
                return Err(err(format!("expected 4 tab-separated fields, found {}", fields.len())));
            };
            let proto = match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                other => return Err(err(format!("unknown protocol {other:?}"))),
            };
            let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(|| err(format!("bad port {port:?}")))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(err(format!("bad service name {name:?}")));
            }
            let tier: u8 =
                tier.parse().ok().filter(|t| (1..=9).contains(t)).ok_or_else(|| err(format!("bad tier {tier:?}")))?;
            let prev = last_tier.entry(proto).or_insert(1);
            if tier < *prev {
                return Err(err(format!("tier {tier} after tier {prev}: tiers must not decrease down the file")));
            }
            *prev = tier;
            let list = table.ranked.entry(proto).or_default();
            if table.names.insert((proto, port), list.len()).is_some() {
                return Err(err(format!("duplicate entry for {port}/{}", proto.as_str())));
            }
            list.push(Entry { port, name: name.to_string() });
        }
        Ok(table)
    }

    /// The `n` most common ports of a protocol, in rank order.
    pub fn top(&self, proto: Protocol, n: usize) -> Vec<u16> {
        self.ranked.get(&proto).map(|v| v.iter().take(n).map(|e| e.port).collect()).unwrap_or_default()
    }

    /// Number of ranked ports of a protocol.
    pub fn len(&self, proto: Protocol) -> usize {
        self.ranked.get(&proto).map_or(0, Vec::len)
    }

    /// True when the table has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The service name of a port, if the table knows it.
    pub fn service_name(&self, proto: Protocol, port: u16) -> Option<&str> {
        let idx = *self.names.get(&(proto, port))?;
        self.ranked.get(&proto).and_then(|v| v.get(idx)).map(|e| e.name.as_str())
    }

    /// Ports whose service name matches `pattern` (`*` and `?` wildcards), for a protocol.
    pub fn ports_named(&self, proto: Protocol, pattern: &str) -> Vec<u16> {
        self.ranked
            .get(&proto)
            .map(|v| v.iter().filter(|e| glob(pattern, &e.name)).map(|e| e.port).collect())
            .unwrap_or_default()
    }
}

/// Minimal wildcard match (`*`, `?`) for service names. Iterative, with one backtrack point (the
/// last `*`): at most pattern × name steps, however many stars a hostile pattern has (a recursive
/// matcher took exponential time on `*t****...`; found by the `port_spec`/`scan_config` fuzz targets).
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Names are short; a longer pattern matches nothing.
    if p.len() > 64 {
        return false;
    }
    let (mut i, mut j) = (0, 0);
    // After a `*`: where the pattern resumes and how much of the name the star has taken.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if p.get(i) == Some(&b'*') {
            star = Some((i + 1, j));
            i += 1;
        } else if p.get(i).is_some_and(|&c| c == b'?' || c == n[j]) {
            i += 1;
            j += 1;
        } else if let Some((resume, taken)) = star {
            // Let the last star take one more byte and retry from there.
            star = Some((resume, taken + 1));
            i = resume;
            j = taken + 1;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Ports to scan per protocol, ascending and de-duplicated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortList {
    /// TCP ports.
    pub tcp: Vec<u16>,
    /// UDP ports.
    pub udp: Vec<u16>,
    /// SCTP ports.
    pub sctp: Vec<u16>,
}

impl PortList {
    /// The list of one protocol.
    pub fn get(&self, proto: Protocol) -> &[u16] {
        match proto {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
            Protocol::Sctp => &self.sctp,
        }
    }

    fn get_mut(&mut self, proto: Protocol) -> &mut Vec<u16> {
        match proto {
            Protocol::Tcp => &mut self.tcp,
            Protocol::Udp => &mut self.udp,
            Protocol::Sctp => &mut self.sctp,
        }
    }

    fn normalize(&mut self) {
        for v in [&mut self.tcp, &mut self.udp, &mut self.sctp] {
            v.sort_unstable();
            v.dedup();
        }
    }

    /// Parse an nmap port expression for the given protocols. Items without a `T:`/`U:`/`S:`
    /// prefix apply to every protocol in `protocols`; prefixed items apply to theirs only.
    pub fn parse(expr: &str, protocols: &[Protocol], table: &PortTable) -> Result<PortList, PortSpecError> {
        let mut out = PortList::default();
        let mut current: Option<Protocol> = None;
        for raw in expr.split(',') {
            let mut item = raw.trim();
            if item.is_empty() {
                continue;
            }
            for (prefix, proto) in [("T:", Protocol::Tcp), ("U:", Protocol::Udp), ("S:", Protocol::Sctp)] {
                if let Some(rest) = item.strip_prefix(prefix).or_else(|| item.strip_prefix(&prefix.to_lowercase())) {
                    current = Some(proto);
                    item = rest;
                }
            }
            let targets: Vec<Protocol> = match current {
                Some(p) => vec![p],
                None => protocols.to_vec(),
            };
            if item.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'-') {
                let (lo, hi) = parse_range(item)?;
                for p in &targets {
                    out.get_mut(*p).extend(lo..=hi);
                }
            } else {
                let mut found = false;
                for p in &targets {
                    let ports = table.ports_named(*p, item);
                    found |= !ports.is_empty();
                    out.get_mut(*p).extend(ports);
                }
                if !found {
                    return Err(PortSpecError::UnknownService(item.to_string()));
                }
            }
        }
        out.normalize();
        Ok(out)
    }

    /// The `n` most common ports of each protocol.
    pub fn top(n: usize, protocols: &[Protocol], table: &PortTable) -> PortList {
        let mut out = PortList::default();
        for p in protocols {
            *out.get_mut(*p) = table.top(*p, n);
        }
        out.normalize();
        out
    }

    /// Remove every port that is in `other`.
    pub fn remove(&mut self, other: &PortList) {
        for p in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            let drop = other.get(p);
            self.get_mut(p).retain(|x| drop.binary_search(x).is_err());
        }
    }

    /// Total number of ports over all protocols.
    pub fn total(&self) -> usize {
        self.tcp.len() + self.udp.len() + self.sctp.len()
    }
}

fn parse_port(s: &str) -> Result<u16, PortSpecError> {
    s.parse::<u32>()
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| PortSpecError::BadPort(s.to_string()))
}

fn parse_range(item: &str) -> Result<(u16, u16), PortSpecError> {
    match item.split_once('-') {
        None => {
            let p = parse_port(item)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { 1 } else { parse_port(a)? };
            let hi = if b.is_empty() { 65535 } else { parse_port(b)? };
            if lo > hi {
                return Err(PortSpecError::BadRange(item.to_string()));
            }
            Ok((lo, hi))
        }
    }
}

/// Write ports as a compact range list: `[1,2,3,5]` → `1-3,5` (the model's one definition).
pub use rustmap_model::port_ranges as compress_ranges;

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "# test\ntcp\t80\thttp\t1\ntcp\t443\thttps\t1\ntcp\t8080\thttp-proxy\t2\nudp\t53\tdomain\t1\ntcp\t22\tssh\t2\n";

    #[test]
    fn glob_matches_stars_and_question_marks() {
        for (p, n) in
            [("http*", "http-alt"), ("*sql*", "mysql"), ("h?tp", "http"), ("*", ""), ("a*b*c", "aXbYc"), ("**", "x")]
        {
            assert!(glob(p, n), "{p} should match {n}");
        }
        for (p, n) in [("ssh", "sshd"), ("h?tp", "htp"), ("a*b*c", "aXbY"), ("*x", "xy"), ("", "a")] {
            assert!(!glob(p, n), "{p} should not match {n}");
        }
    }

    /// Regression (fuzz target `scan_config`, `-p "*t********************:****,40"`): the
    /// recursive matcher took exponential time in the number of stars.
    #[test]
    fn glob_with_many_stars_is_linear() {
        let start = std::time::Instant::now();
        let pattern = format!("*t{}:{}", "*".repeat(20), "*".repeat(4));
        assert!(!glob(&pattern, &"t".repeat(40)));
        let _ = PortList::parse("*t********************:****,40", &[Protocol::Tcp], PortTable::builtin());
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
    }

    fn sample() -> PortTable {
        PortTable::parse("sample", SAMPLE).unwrap()
    }

    #[test]
    fn ranges_lists_and_prefixes() {
        let t = sample();
        let tcp = [Protocol::Tcp];
        assert_eq!(PortList::parse("22,80,100-103", &tcp, &t).unwrap().tcp, [22, 80, 100, 101, 102, 103]);
        assert_eq!(PortList::parse("-", &tcp, &t).unwrap().tcp.len(), 65535);
        assert_eq!(PortList::parse("-3", &tcp, &t).unwrap().tcp, [1, 2, 3]);
        assert_eq!(PortList::parse("65534-", &tcp, &t).unwrap().tcp, [65534, 65535]);
        let both = [Protocol::Tcp, Protocol::Udp];
        let l = PortList::parse("U:53,111,T:21-22,8080", &both, &t).unwrap();
        assert_eq!(l.udp, [53, 111]);
        assert_eq!(l.tcp, [21, 22, 8080]);
        // As in nmap, an item before any prefix applies to every scanned protocol.
        let l = PortList::parse("7,S:9", &[Protocol::Tcp, Protocol::Sctp], &t).unwrap();
        assert_eq!((l.tcp, l.sctp), (vec![7], vec![7, 9]));
    }

    #[test]
    fn service_names_and_globs() {
        let t = sample();
        assert_eq!(PortList::parse("https,ssh", &[Protocol::Tcp], &t).unwrap().tcp, [22, 443]);
        assert_eq!(PortList::parse("http*", &[Protocol::Tcp], &t).unwrap().tcp, [80, 443, 8080]);
        assert_eq!(
            PortList::parse("nosuch", &[Protocol::Tcp], &t).unwrap_err(),
            PortSpecError::UnknownService("nosuch".into())
        );
    }

    #[test]
    fn bad_ports_are_named() {
        let t = sample();
        let e = PortList::parse("70000", &[Protocol::Tcp], &t).unwrap_err();
        assert!(e.to_string().contains("70000"));
        assert!(PortList::parse("0", &[Protocol::Tcp], &t).is_err());
        assert!(PortList::parse("90-80", &[Protocol::Tcp], &t).is_err());
        assert!(PortList::parse("1-2-3", &[Protocol::Tcp], &t).is_err());
    }

    #[test]
    fn top_and_exclusion() {
        let t = sample();
        let mut l = PortList::top(2, &[Protocol::Tcp], &t);
        assert_eq!(l.tcp, [80, 443]);
        l.remove(&PortList::parse("443", &[Protocol::Tcp], &t).unwrap());
        assert_eq!(l.tcp, [80]);
        assert_eq!(t.service_name(Protocol::Udp, 53), Some("domain"));
        assert_eq!(t.service_name(Protocol::Tcp, 53), None);
    }

    #[test]
    fn table_errors_name_the_line() {
        let e = PortTable::parse("f", "tcp\t80\thttp\t1\ntcp\t99999\tx\t1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(PortTable::parse("f", "tcp\t80\thttp\n").is_err());
        assert!(PortTable::parse("f", "tcp\t80\tHTTP\t1\n").is_err());
        assert!(PortTable::parse("f", "tcp\t80\thttp\t1\ntcp\t80\thttp\t1\n").is_err());
        assert!(PortTable::parse("f", "tcp\t80\thttp\t3\ntcp\t81\tx\t2\n").is_err());
        assert!(PortTable::parse("f", "icmp\t80\thttp\t1\n").is_err());
    }

    #[test]
    fn builtin_table_is_valid_and_big_enough() {
        let t = PortTable::parse("<builtin>", BUILTIN_PORTS_TSV).unwrap();
        assert!(t.len(Protocol::Tcp) >= 1000, "tcp entries: {}", t.len(Protocol::Tcp));
        assert!(t.len(Protocol::Udp) >= 100);
        assert_eq!(t.service_name(Protocol::Tcp, 22), Some("ssh"));
        assert_eq!(t.service_name(Protocol::Tcp, 80), Some("http"));
        let top = t.top(Protocol::Tcp, 1000);
        assert_eq!(top.len(), 1000);
        assert!(top.contains(&443) && top.contains(&3389) && top.contains(&6379));
    }

    #[test]
    fn compress() {
        assert_eq!(compress_ranges(&[1, 2, 3, 5, 7, 8, 65535]), "1-3,5,7-8,65535");
        assert_eq!(compress_ranges(&[]), "");
    }
}
