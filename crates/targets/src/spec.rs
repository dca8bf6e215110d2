//! One target expression and its lazy expansion.
//!
//! Accepted forms (nmap's):
//! - an IPv4 or IPv6 address;
//! - CIDR: `192.0.2.0/24`, `2001:db8::/120` (every address of the block, network and broadcast
//!   included, as nmap does);
//! - IPv4 octet ranges: each octet is `*`, a number, a range `a-b` (`-b` and `a-` allowed) or a
//!   comma list of those: `10.0.0.1-50`, `10.0-2.1,3.5-9`;
//! - a host name (returned as-is for the caller to resolve).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// Why a target expression was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetSpecError {
    /// The expression is empty.
    #[error("empty target")]
    Empty,
    /// A prefix length out of range for the address family.
    #[error("invalid prefix length in {spec:?}: /{prefix} (max /{max})")]
    BadPrefix {
        /// The whole expression.
        spec: String,
        /// The prefix given.
        prefix: String,
        /// The family's maximum.
        max: u8,
    },
    /// An octet or octet range that is not 0–255 or is reversed.
    #[error("invalid IPv4 octet {octet:?} in {spec:?}")]
    BadOctet {
        /// The whole expression.
        spec: String,
        /// The offending part.
        octet: String,
    },
    /// Something that is neither an address, a range nor a valid host name.
    #[error("invalid target {0:?}")]
    Invalid(String),
}

/// A parsed target expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A single address.
    Addr(IpAddr),
    /// An IPv4 block, as inclusive first/last addresses.
    V4Block {
        /// First address.
        first: u32,
        /// Last address.
        last: u32,
    },
    /// An IPv6 block, as inclusive first/last addresses.
    V6Block {
        /// First address.
        first: u128,
        /// Last address.
        last: u128,
    },
    /// IPv4 octet ranges: the allowed values of each octet, ascending.
    V4Octets(Box<[Vec<u8>; 4]>),
    /// A host name, optionally with a prefix length to apply to its address.
    Name {
        /// The name.
        name: String,
        /// `/N` given after it.
        prefix: Option<u8>,
    },
}

fn is_ipv4_rangeish(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b',' | b'*'))
        && s.bytes().filter(|&b| b == b'.').count() == 3
}

/// `10.0.0.x` or `10.0.0.1x`: three numeric labels and a fourth is a mistyped address, not a name.
fn looks_like_bad_ipv4(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() == 4
        && labels[..3]
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b',' | b'*')))
}

fn valid_hostname(s: &str) -> bool {
    // No top-level domain is numeric, so `host.123` is a typo too.
    let tld_ok = s.rsplit('.').next().is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    tld_ok
        && !looks_like_bad_ipv4(s)
        && !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && !s.starts_with('.')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && s.split('.').all(|label| label.len() <= 63)
        && !s.contains("..")
}

impl TargetSpec {
    /// Parse one expression. Whitespace around it is ignored.
    pub fn parse(input: &str) -> Result<TargetSpec, TargetSpecError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(TargetSpecError::Empty);
        }
        let (base, prefix) = match s.split_once('/') {
            Some((b, p)) => (b, Some(p)),
            None => (s, None),
        };
        let bad_prefix =
            |max: u8| TargetSpecError::BadPrefix { spec: s.to_string(), prefix: prefix.unwrap_or("").to_string(), max };
        if let Ok(v6) = base.parse::<Ipv6Addr>() {
            let Some(p) = prefix else { return Ok(TargetSpec::Addr(IpAddr::V6(v6))) };
            let p: u8 = p.parse().map_err(|_| bad_prefix(128))?;
            if p > 128 {
                return Err(bad_prefix(128));
            }
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - u32::from(p)) };
            let first = u128::from(v6) & mask;
            return Ok(TargetSpec::V6Block { first, last: first | !mask });
        }
        if let Ok(v4) = base.parse::<Ipv4Addr>() {
            let Some(p) = prefix else { return Ok(TargetSpec::Addr(IpAddr::V4(v4))) };
            let p: u8 = p.parse().map_err(|_| bad_prefix(32))?;
            if p > 32 {
                return Err(bad_prefix(32));
            }
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - u32::from(p)) };
            let first = u32::from(v4) & mask;
            return Ok(TargetSpec::V4Block { first, last: first | !mask });
        }
        if is_ipv4_rangeish(base) {
            if prefix.is_some() {
                return Err(TargetSpecError::Invalid(s.to_string()));
            }
            return parse_octets(s).map(|o| TargetSpec::V4Octets(Box::new(o)));
        }
        // Anything made of digits and dots only but not a valid address (e.g. `1.2.3`, `1.2.3.256`)
        // is a typo, not a host name.
        if base.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b',' | b'*' | b':')) {
            return Err(TargetSpecError::Invalid(s.to_string()));
        }
        if !valid_hostname(base) {
            return Err(TargetSpecError::Invalid(s.to_string()));
        }
        let prefix = match prefix {
            None => None,
            Some(p) => Some(p.parse::<u8>().ok().filter(|&p| p <= 128).ok_or_else(|| bad_prefix(128))?),
        };
        Ok(TargetSpec::Name { name: base.to_string(), prefix })
    }

    /// Number of addresses the expression stands for (1 for a name), saturating.
    pub fn len(&self) -> u128 {
        match self {
            TargetSpec::Addr(_) | TargetSpec::Name { .. } => 1,
            TargetSpec::V4Block { first, last } => u128::from(last - first) + 1,
            TargetSpec::V6Block { first, last } => (last - first).saturating_add(1),
            TargetSpec::V4Octets(o) => o.iter().map(|v| v.len() as u128).product(),
        }
    }

    /// Always false: every valid expression names at least one target.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Does the expression cover this address? Names never match (resolve them first).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (TargetSpec::Addr(a), ip) => *a == ip,
            (TargetSpec::V4Block { first, last }, IpAddr::V4(v4)) => (*first..=*last).contains(&u32::from(v4)),
            (TargetSpec::V6Block { first, last }, IpAddr::V6(v6)) => (*first..=*last).contains(&u128::from(v6)),
            (TargetSpec::V4Octets(o), IpAddr::V4(v4)) => {
                v4.octets().iter().zip(o.iter()).all(|(b, allowed)| allowed.binary_search(b).is_ok())
            }
            _ => false,
        }
    }

    /// Expand lazily into addresses. Names yield nothing here; see [`TargetSpec::Name`].
    pub fn addrs(&self) -> SpecAddrs {
        SpecAddrs { spec: self.clone(), next: Some(0), idx: [0; 4] }
    }
}

fn parse_octets(s: &str) -> Result<[Vec<u8>; 4], TargetSpecError> {
    let bad = |part: &str| TargetSpecError::BadOctet { spec: s.to_string(), octet: part.to_string() };
    let parts: Vec<&str> = s.split('.').collect();
    let mut out: [Vec<u8>; 4] = Default::default();
    for (slot, part) in out.iter_mut().zip(parts.iter()) {
        let mut seen = [false; 256];
        for item in part.split(',') {
            let (lo, hi) = if item == "*" {
                (0u16, 255u16)
            } else if let Some((a, b)) = item.split_once('-') {
                let lo = if a.is_empty() { 0 } else { a.parse::<u16>().map_err(|_| bad(part))? };
                let hi = if b.is_empty() { 255 } else { b.parse::<u16>().map_err(|_| bad(part))? };
                (lo, hi)
            } else {
                let v = item.parse::<u16>().map_err(|_| bad(part))?;
                (v, v)
            };
            if lo > hi || hi > 255 {
                return Err(bad(part));
            }
            for v in lo..=hi {
                seen[usize::from(v)] = true;
            }
        }
        *slot = (0..=255u8).filter(|&v| seen[usize::from(v)]).collect();
        if slot.is_empty() {
            return Err(bad(part));
        }
    }
    Ok(out)
}

/// Lazy iterator over the addresses of a [`TargetSpec`]; O(1) memory whatever the size.
#[derive(Debug, Clone)]
pub struct SpecAddrs {
    spec: TargetSpec,
    /// Offset of the next address in a block, `None` once exhausted.
    next: Option<u128>,
    /// Per-octet indices for octet ranges.
    idx: [usize; 4],
}

impl Iterator for SpecAddrs {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let off = self.next?;
        match &self.spec {
            TargetSpec::Addr(a) => {
                self.next = None;
                Some(*a)
            }
            TargetSpec::Name { .. } => {
                self.next = None;
                None
            }
            TargetSpec::V4Block { first, last } => {
                let a = u128::from(*first) + off;
                self.next = if a >= u128::from(*last) { None } else { Some(off + 1) };
                u32::try_from(a).ok().map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            }
            TargetSpec::V6Block { first, last } => {
                let a = first + off;
                self.next = if a >= *last { None } else { Some(off + 1) };
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            }
            TargetSpec::V4Octets(o) => {
                let addr = Ipv4Addr::new(o[0][self.idx[0]], o[1][self.idx[1]], o[2][self.idx[2]], o[3][self.idx[3]]);
                // Odometer increment, last octet fastest.
                let mut i = 3;
                loop {
                    self.idx[i] += 1;
                    if self.idx[i] < o[i].len() {
                        break;
                    }
                    self.idx[i] = 0;
                    if i == 0 {
                        self.next = None;
                        break;
                    }
                    i -= 1;
                }
                Some(IpAddr::V4(addr))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Vec<String> {
        TargetSpec::parse(s).unwrap().addrs().map(|a| a.to_string()).collect()
    }

    #[test]
    fn single_addresses() {
        assert_eq!(all("192.0.2.7"), ["192.0.2.7"]);
        assert_eq!(all("2001:db8::1"), ["2001:db8::1"]);
    }

    #[test]
    fn cidr_v4_covers_whole_block() {
        let v = all("192.0.2.9/30");
        assert_eq!(v, ["192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11"]);
        assert_eq!(TargetSpec::parse("10.0.0.0/8").unwrap().len(), 1 << 24);
        assert_eq!(all("0.0.0.0/32"), ["0.0.0.0"]);
        assert_eq!(TargetSpec::parse("0.0.0.0/0").unwrap().len(), 1u128 << 32);
        let last: Vec<_> = TargetSpec::parse("255.255.255.254/31").unwrap().addrs().collect();
        assert_eq!(last.len(), 2);
    }

    #[test]
    fn cidr_v6() {
        assert_eq!(all("2001:db8::/126"), ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]);
        let big = TargetSpec::parse("2001:db8::/64").unwrap();
        assert_eq!(big.len(), 1u128 << 64);
        assert_eq!(big.addrs().take(3).count(), 3);
        assert_eq!(TargetSpec::parse("::/0").unwrap().len(), u128::MAX);
    }

    #[test]
    fn octet_ranges() {
        assert_eq!(all("10.0.0.1-3"), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            all("10.0-1.1,3.5-6"),
            ["10.0.1.5", "10.0.1.6", "10.0.3.5", "10.0.3.6", "10.1.1.5", "10.1.1.6", "10.1.3.5", "10.1.3.6"]
        );
        assert_eq!(TargetSpec::parse("10.*.0.-1").unwrap().len(), 512);
        assert_eq!(TargetSpec::parse("10.0.0.250-").unwrap().len(), 6);
    }

    #[test]
    fn contains_matches_expansion() {
        let s = TargetSpec::parse("10.0-2.1,3.5-9").unwrap();
        assert!(s.contains("10.1.3.7".parse().unwrap()));
        assert!(!s.contains("10.1.2.7".parse().unwrap()));
        let c = TargetSpec::parse("198.18.0.0/22").unwrap();
        assert!(c.contains("198.18.3.255".parse().unwrap()));
        assert!(!c.contains("198.18.4.0".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
    }

    #[test]
    fn bad_input_is_rejected_with_the_value() {
        let e = TargetSpec::parse("10.0.0.0/33").unwrap_err();
        assert!(e.to_string().contains("/33"), "{e}");
        assert!(matches!(TargetSpec::parse("::1/129"), Err(TargetSpecError::BadPrefix { .. })));
        assert!(matches!(TargetSpec::parse("10.0.0.256"), Err(TargetSpecError::BadOctet { .. })));
        assert!(matches!(TargetSpec::parse("10.0.0.9-3"), Err(TargetSpecError::BadOctet { .. })));
        assert!(TargetSpec::parse("1.2.3").is_err());
        assert!(TargetSpec::parse("1.2.3.4.5").is_err());
        assert!(TargetSpec::parse("bad host!").is_err());
        assert!(TargetSpec::parse("").is_err());
        assert!(TargetSpec::parse("10.0.0.x").is_err());
        assert!(TargetSpec::parse("10.0.0.1/abc").is_err());
    }

    #[test]
    fn names_pass_through() {
        assert_eq!(
            TargetSpec::parse("scanme.example.org").unwrap(),
            TargetSpec::Name { name: "scanme.example.org".into(), prefix: None }
        );
        assert_eq!(
            TargetSpec::parse("localhost/30").unwrap(),
            TargetSpec::Name { name: "localhost".into(), prefix: Some(30) }
        );
    }
}
