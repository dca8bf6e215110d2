//! A scan's remaining work, as data: [`Checkpoint`] is the scan's configuration plus the set of
//! hosts already finished ([`AddrSet`]). Resuming a scan means running its configuration again
//! with those hosts left out; the store builds one from what it holds (`rustmap --resume ID`), and
//! a distributed shard can carry one as it is (serde, with the set as compact address ranges).
//!
//! Hosts that were being scanned when the scan stopped are not in the set: they are scanned again
//! from the start, so a host's result never mixes two runs.

use crate::ScanConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// What is left of a scan: its configuration and the hosts it need not scan again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The scan's id; a resumed scan keeps it.
    pub scan_id: String,
    /// The configuration the scan runs with, as it was first asked for.
    pub config: ScanConfig,
    /// Hosts finished (up or down): not scanned again.
    pub done: AddrSet,
}

/// A set of addresses kept as sorted, merged ranges: a sweep's finished hosts are mostly runs of
/// consecutive addresses, so a /16 of them is a handful of ranges, in memory and in JSON
/// (`["198.18.0.0-198.18.255.255", "fd00::1"]`).
///
/// IPv4 addresses are kept as their IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) so that one ordered
/// key space holds both families; an IPv6 target spelled as a mapped address is therefore the same
/// host as its IPv4 address, which it is on the wire too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet {
    /// Inclusive ranges, sorted, neither overlapping nor touching.
    ranges: Vec<(u128, u128)>,
}

fn key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn addr(k: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl AddrSet {
    /// An empty set.
    pub fn new() -> AddrSet {
        AddrSet::default()
    }

    /// Whether `a` is in the set.
    pub fn contains(&self, a: IpAddr) -> bool {
        let k = key(a);
        // The first range ending at or after k is the only one that can hold it.
        let i = self.ranges.partition_point(|&(_, hi)| hi < k);
        self.ranges.get(i).is_some_and(|&(lo, _)| lo <= k)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many addresses the set holds (saturating: an IPv6 range can hold more than `u64`).
    pub fn len(&self) -> u64 {
        self.ranges.iter().fold(0u64, |n, &(lo, hi)| n.saturating_add(u64::try_from(hi - lo + 1).unwrap_or(u64::MAX)))
    }

    /// The ranges, as first and last address of each.
    pub fn ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        self.ranges.iter().map(|&(lo, hi)| (addr(lo), addr(hi)))
    }

    /// Add the addresses of `more` (any order, duplicates allowed).
    pub fn extend<I: IntoIterator<Item = IpAddr>>(&mut self, more: I) {
        let mut keys: Vec<u128> = more.into_iter().map(key).collect();
        if keys.is_empty() {
            return;
        }
        keys.sort_unstable();
        keys.dedup();
        let mut add: Vec<(u128, u128)> = Vec::new();
        for k in keys {
            match add.last_mut() {
                Some((_, hi)) if hi.checked_add(1) == Some(k) => *hi = k,
                _ => add.push((k, k)),
            }
        }
        self.merge(add);
    }

    /// Add an inclusive range of addresses (of one family); a reversed range is refused.
    pub fn insert_range(&mut self, first: IpAddr, last: IpAddr) -> Result<(), AddrSetError> {
        let (lo, hi) = (key(first), key(last));
        if lo > hi || first.is_ipv4() != last.is_ipv4() {
            return Err(AddrSetError(format!("{first}-{last}")));
        }
        self.merge(vec![(lo, hi)]);
        Ok(())
    }

    /// Merge sorted, disjoint ranges into the set.
    fn merge(&mut self, add: Vec<(u128, u128)>) {
        let mut all: Vec<(u128, u128)> = Vec::with_capacity(self.ranges.len() + add.len());
        let (mut a, mut b) = (std::mem::take(&mut self.ranges).into_iter().peekable(), add.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            let Some((lo, hi)) = next else { break };
            match all.last_mut() {
                // Overlapping or adjacent: one range.
                Some((_, last)) if lo <= last.saturating_add(1) => *last = (*last).max(hi),
                _ => all.push((lo, hi)),
            }
        }
        self.ranges = all;
    }
}

impl FromIterator<IpAddr> for AddrSet {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> AddrSet {
        let mut s = AddrSet::new();
        s.extend(iter);
        s
    }
}

/// A range of an [`AddrSet`] that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address range {0:?} (expected ADDR or FIRST-LAST, same family, FIRST <= LAST)")]
pub struct AddrSetError(pub String);

impl fmt::Display for AddrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.ranges().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for AddrSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let items: Vec<String> =
            self.ranges().map(|(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect();
        items.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AddrSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AddrSet, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        let mut set = AddrSet::new();
        for item in items {
            let bad = || serde::de::Error::custom(AddrSetError(item.clone()));
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?),
                None => {
                    let a: IpAddr = item.trim().parse().map_err(|_| bad())?;
                    (a, a)
                }
            };
            set.insert_range(lo, hi).map_err(|_| bad())?;
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn consecutive_addresses_become_one_range() {
        let set: AddrSet = (0..=255u8).rev().map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 0, i))).collect();
        assert_eq!(set.ranges.len(), 1);
        assert_eq!(set.len(), 256);
        assert!(set.contains(ip("198.18.0.0")) && set.contains(ip("198.18.0.255")));
        assert!(!set.contains(ip("198.18.1.0")) && !set.contains(ip("198.17.255.255")));
        assert_eq!(set.to_string(), "198.18.0.0-198.18.0.255");
    }

    #[test]
    fn merging_keeps_ranges_disjoint_and_sorted() {
        let mut set: AddrSet = ["10.0.0.5", "10.0.0.1", "fd00::1", "10.0.0.3"].iter().map(|s| ip(s)).collect();
        assert_eq!(set.to_string(), "10.0.0.1,10.0.0.3,10.0.0.5,fd00::1");
        set.extend([ip("10.0.0.2"), ip("10.0.0.4"), ip("10.0.0.4")]);
        assert_eq!(set.to_string(), "10.0.0.1-10.0.0.5,fd00::1");
        set.insert_range(ip("fd00::2"), ip("fd00::ffff")).unwrap();
        assert_eq!(set.to_string(), "10.0.0.1-10.0.0.5,fd00::1-fd00::ffff");
        assert!(set.insert_range(ip("10.0.0.9"), ip("10.0.0.8")).is_err());
        assert!(set.insert_range(ip("10.0.0.9"), ip("fd00::8")).is_err());
        assert!(!set.contains(ip("fd00::1:0")) && set.contains(ip("fd00::abcd")));
    }

    #[test]
    fn checkpoint_round_trips_as_json_and_refuses_bad_ranges() {
        let c = Checkpoint {
            scan_id: "01ABC".into(),
            config: ScanConfig::new(["198.18.0.0/24"]),
            done: ["198.18.0.1", "198.18.0.2", "fd00::9"].iter().map(|s| ip(s)).collect(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""done":["198.18.0.1-198.18.0.2","fd00::9"]"#), "{json}");
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), c);
        for bad in [r#"["10.0.0.9-10.0.0.1"]"#, r#"["nope"]"#, r#"["10.0.0.1-fd00::1"]"#] {
            let e = serde_json::from_str::<AddrSet>(bad).unwrap_err();
            assert!(e.to_string().contains("invalid address range"), "{bad}: {e}");
        }
    }
}
