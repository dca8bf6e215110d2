//! The aggregator's state, without I/O: which shards are done, and each host put together from
//! the port groups it was scanned in, taken once whatever was delivered twice.
//!
//! A host comes once per port group (a shard scans a block of hosts on one group of ports).
//! With one group it is passed on as it comes; with several it is held until every group is in
//! (or the scan ends, [`Aggregate::flush`]), its ports merged.

use rustmap_model::{ExtraPorts, HostResult, HostStatus};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

/// A shard's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Not done yet.
    Pending,
    /// Done: every host of it came.
    Done,
    /// Given up: its hosts may be missing.
    Failed,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Aggregate {
    groups: u32,
    shards: Vec<ShardState>,
    ended: usize,
    partial: HashMap<IpAddr, (HostResult, BTreeSet<u32>)>,
    delivered: HashSet<IpAddr>,
    warnings: HashSet<String>,
}

impl Aggregate {
    /// For a scan of `shards` shards over `groups` port groups.
    pub fn new(shards: u32, groups: u32) -> Aggregate {
        Aggregate {
            groups: groups.max(1),
            shards: vec![ShardState::Pending; shards as usize],
            ended: 0,
            partial: HashMap::new(),
            delivered: HashSet::new(),
            warnings: HashSet::new(),
        }
    }

    /// A host of port group `group`: the whole host when it is complete (now or never again for
    /// this address), `None` when it is held or was taken before.
    pub fn host(&mut self, group: u32, host: HostResult) -> Option<HostResult> {
        if self.delivered.contains(&host.addr) || group >= self.groups {
            return None;
        }
        if self.groups == 1 {
            self.delivered.insert(host.addr);
            return Some(host);
        }
        let addr = host.addr;
        let entry = self.partial.entry(addr);
        let (held, seen) = match entry {
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut seen = BTreeSet::new();
                seen.insert(group);
                v.insert((host, seen));
                return None;
            }
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        };
        if !seen.insert(group) {
            return None;
        }
        merge(held, host);
        if seen.len() as u32 == self.groups {
            let (h, _) = self.partial.remove(&addr)?;
            self.delivered.insert(addr);
            return Some(h);
        }
        None
    }

    /// Shard `index` ended as `state`; false if it had ended before or is not one of the scan's.
    pub fn end_shard(&mut self, index: u32, state: ShardState) -> bool {
        match self.shards.get_mut(index as usize) {
            Some(s) if *s == ShardState::Pending && state != ShardState::Pending => {
                *s = state;
                self.ended += 1;
                true
            }
            _ => false,
        }
    }

    /// A shard's state.
    pub fn state(&self, index: u32) -> Option<ShardState> {
        self.shards.get(index as usize).copied()
    }

    /// Whether every shard ended.
    pub fn finished(&self) -> bool {
        self.ended == self.shards.len()
    }

    /// Shards ended, of all.
    pub fn progress(&self) -> (usize, usize) {
        (self.ended, self.shards.len())
    }

    /// Hosts passed on so far.
    pub fn hosts_done(&self) -> u64 {
        self.delivered.len() as u64
    }

    /// Whether a warning is new (the same text from a redelivered shard is shown once).
    pub fn new_warning(&mut self, text: &str) -> bool {
        self.warnings.len() < 10_000 && self.warnings.insert(text.to_string())
    }

    /// The hosts still held (some port group of theirs is missing: its shard failed), merged
    /// from what came, in address order.
    pub fn flush(&mut self) -> Vec<HostResult> {
        let mut left: Vec<HostResult> = self.partial.drain().map(|(_, (h, _))| h).collect();
        left.sort_by_key(|h| h.addr);
        for h in &left {
            self.delivered.insert(h.addr);
        }
        left
    }
}

/// Fold `from` (the same host, other ports) into `into`.
pub fn merge(into: &mut HostResult, from: HostResult) {
    if from.status == HostStatus::Up && into.status != HostStatus::Up {
        into.status = from.status;
        into.reason = from.reason;
        into.reason_ttl = from.reason_ttl;
    }
    for n in from.hostnames {
        if !into.hostnames.contains(&n) {
            into.hostnames.push(n);
        }
    }
    into.mac = into.mac.take().or(from.mac);
    into.start_unix = into.start_unix.min(from.start_unix);
    into.end_unix = into.end_unix.max(from.end_unix);
    into.srtt_us = into.srtt_us.or(from.srtt_us);
    for p in from.ports {
        if !into.ports.iter().any(|q| q.protocol == p.protocol && q.port == p.port) {
            into.ports.push(p);
        }
    }
    into.ports.sort_by_key(|p| (p.protocol, p.port));
    for e in from.extraports {
        merge_extra(&mut into.extraports, e);
    }
    into.timed_out |= from.timed_out;
    if into.os.is_empty() {
        into.os = from.os;
    }
    for s in from.scripts {
        if !into.scripts.iter().any(|t| t.id == s.id) {
            into.scripts.push(s);
        }
    }
    if into.trace.is_empty() {
        into.trace = from.trace;
        into.trace_probe = from.trace_probe;
    }
    into.path_mtu = into.path_mtu.or(from.path_mtu);
    into.geoip = into.geoip.take().or(from.geoip);
    into.cloud = into.cloud.take().or(from.cloud);
}

fn merge_extra(into: &mut Vec<ExtraPorts>, e: ExtraPorts) {
    match into.iter_mut().find(|x| x.state == e.state) {
        None => into.push(e),
        Some(x) => {
            x.count += e.count;
            for r in e.reasons {
                match x.reasons.iter_mut().find(|q| q.reason == r.reason && q.protocol == r.protocol) {
                    Some(q) => {
                        q.count += r.count;
                        if !r.ports.is_empty() {
                            if !q.ports.is_empty() {
                                q.ports.push(',');
                            }
                            q.ports.push_str(&r.ports);
                        }
                    }
                    None => x.reasons.push(r),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::{PortResult, PortState, Protocol, Reason, ReasonCount};

    fn host(addr: &str, up: bool, ports: &[u16]) -> HostResult {
        let status = if up { HostStatus::Up } else { HostStatus::Down };
        let mut h = HostResult::new(addr.parse().unwrap(), status, Reason::SynAck);
        for p in ports {
            h.ports.push(PortResult::new(Protocol::Tcp, *p, PortState::Open, Reason::SynAck, 64));
        }
        h
    }

    #[test]
    fn one_group_hosts_pass_once() {
        let mut a = Aggregate::new(2, 1);
        assert!(a.host(0, host("198.18.0.1", true, &[80])).is_some());
        assert!(a.host(0, host("198.18.0.1", true, &[80])).is_none(), "a redelivered shard's host");
        assert!(a.end_shard(0, ShardState::Done));
        assert!(!a.end_shard(0, ShardState::Done));
        assert!(!a.end_shard(7, ShardState::Done), "not a shard of this scan");
        assert!(!a.finished());
        assert!(a.end_shard(1, ShardState::Failed));
        assert!(a.finished());
        assert_eq!(a.hosts_done(), 1);
    }

    #[test]
    fn a_host_of_three_groups_comes_whole() {
        let mut a = Aggregate::new(3, 3);
        assert!(a.host(0, host("198.18.0.1", false, &[])).is_none());
        assert!(a.host(2, host("198.18.0.1", true, &[9000])).is_none());
        assert!(a.host(2, host("198.18.0.1", true, &[9000])).is_none(), "twice");
        let h = a.host(1, host("198.18.0.1", true, &[22, 80])).expect("complete");
        assert_eq!(h.status, HostStatus::Up, "up in one group: up");
        assert_eq!(h.ports.iter().map(|p| p.port).collect::<Vec<_>>(), vec![22, 80, 9000]);
        assert!(a.host(0, host("198.18.0.1", true, &[1])).is_none(), "taken before");
        // A host whose third group never comes is flushed at the end.
        assert!(a.host(0, host("198.18.0.2", true, &[22])).is_none());
        let left = a.flush();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].ports.len(), 1);
        assert!(a.flush().is_empty());
    }

    #[test]
    fn extraports_add_up() {
        let mut a = host("198.18.0.1", true, &[]);
        let mut b = host("198.18.0.1", true, &[]);
        let ex = |n| ExtraPorts {
            state: PortState::Closed,
            count: n,
            reasons: vec![ReasonCount {
                reason: Reason::Reset,
                protocol: Protocol::Tcp,
                count: n,
                ports: String::new(),
            }],
        };
        a.extraports.push(ex(10));
        b.extraports.push(ex(5));
        merge(&mut a, b);
        assert_eq!(a.extraports[0].count, 15);
        assert_eq!(a.extraports[0].reasons[0].count, 15);
    }
}
