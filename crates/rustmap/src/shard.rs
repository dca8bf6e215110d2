//! Splitting one scan into shards for distributed agents: targets × ports, cut into pieces small
//! enough to redo when an agent dies, in a keyed random order so that no agent sweeps one network
//! in address order.
//!
//! The targets are enumerated once (exclusions applied, names left for the agent to resolve) and
//! the ports are cut into groups of at most [`PORTS_PER_GROUP`]. Shard `i` is host block
//! `i / groups` crossed with port group `i % groups`; a host block is a range of a keyed
//! permutation of the target list ([`Permutation`]), so each shard's hosts are spread over the
//! whole range and the same key gives the same shards (a restarted scheduler republishes exactly
//! what it published before).
//!
//! Each shard is a whole [`ScanConfig`]: the scan's own with its targets and ports replaced and
//! its outputs removed (an agent writes nothing; its results travel as events).

use crate::ScanPlan;
use rustmap_model::{Protocol, ScanConfig};
use rustmap_targets::TargetItem;
use std::net::IpAddr;
use thiserror::Error;

/// The most ports one shard scans on each of its hosts.
pub const PORTS_PER_GROUP: usize = 4096;
/// About how many probes (hosts × ports) one shard is given, when the hosts per shard are not set.
pub const PROBES_PER_SHARD: usize = 65_536;
/// The most hosts one shard is given, when not set: small enough to redo quickly.
pub const MAX_HOSTS_PER_SHARD: usize = 256;
/// The most targets a distributed scan enumerates (they are held in memory by the scheduler).
pub const MAX_TARGETS: usize = 1 << 22;

/// Why a scan cannot be split.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A target file could not be read.
    #[error("{0}")]
    Targets(String),
    /// Nothing to scan.
    #[error("no targets to distribute")]
    NoTargets,
    /// More targets than [`MAX_TARGETS`].
    #[error("more than {MAX_TARGETS} targets: too many for one distributed scan; split it into several")]
    TooMany,
    /// What the configuration asks for cannot be distributed.
    #[error("{0}")]
    Unsupported(String),
}

/// One piece of a distributed scan.
#[derive(Debug, Clone)]
pub struct Shard {
    /// Its index, `0..ShardSet::len()`.
    pub index: u32,
    /// Its port group, `0..ShardSet::groups()`.
    pub group: u32,
    /// The scan an agent runs: the scan's configuration for this shard's hosts and ports.
    pub config: ScanConfig,
}

/// A scan cut into shards: see the module documentation.
#[derive(Debug, Clone)]
pub struct ShardSet {
    items: Vec<String>,
    perm: Permutation,
    groups: Vec<String>,
    hosts_per_shard: usize,
    base: ScanConfig,
    /// `--excludefile` entries, for shards with names.
    names_exclude: Vec<String>,
}

impl ShardSet {
    /// Cut `plan` with `key` (the scan's random permutation key). `hosts_per_shard`: the most
    /// hosts a shard has (a default from the port count when `None`).
    pub fn new(plan: &ScanPlan, key: u64, hosts_per_shard: Option<usize>) -> Result<ShardSet, ShardError> {
        let config = plan.config();
        if plan.cloud.is_some() {
            return Err(ShardError::Unsupported(
                "--cloud with --distribute: not yet supported (the scheduler would need the cloud credentials)".into(),
            ));
        }
        let mut items = Vec::new();
        for item in plan.targets().iter() {
            let item = item.map_err(|e| ShardError::Targets(e.to_string()))?;
            if items.len() >= MAX_TARGETS {
                return Err(ShardError::TooMany);
            }
            items.push(match item {
                TargetItem::Addr(ip) => ip.to_string(),
                TargetItem::Name { name, prefix: None } => name,
                TargetItem::Name { name, prefix: Some(p) } => format!("{name}/{p}"),
            });
        }
        if items.is_empty() {
            return Err(ShardError::NoTargets);
        }
        let groups = if plan.list_only || !plan.port_scan { vec![String::new()] } else { port_groups(plan) };
        let per_group = plan.ports.total().div_ceil(groups.len()).max(1);
        let hosts_per_shard =
            hosts_per_shard.unwrap_or_else(|| (PROBES_PER_SHARD / per_group).clamp(1, MAX_HOSTS_PER_SHARD)).max(1);
        let mut base = config.clone();
        base.target_files.clear();
        // The exclusion files, inline in the shards that hold names: the agents exclude what
        // the names they resolve give (addresses were filtered here already).
        let mut names_exclude = Vec::new();
        for path in std::mem::take(&mut base.exclude_files) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ShardError::Targets(format!("--excludefile {}: {e}", path.display())))?;
            let items: Vec<&str> =
                text.lines().flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace()).collect();
            if !items.is_empty() {
                names_exclude.push(items.join(","));
            }
        }
        base.ports.top = None;
        base.ports.fast = false;
        base.ports.exclude = None;
        base.ports.first = None;
        base.output.files.clear();
        base.output.all_base = None;
        base.output.append = false;
        base.output.interactive = false;
        base.output.progress = false;
        base.output.stats_every = None;
        base.output.diff = false;
        base.path.topology = None;
        base.path.topology_output = None;
        base.cloud = Default::default();
        no_local_files(&base)?;
        let perm = Permutation::new(items.len() as u64, key);
        Ok(ShardSet { items, perm, groups, hosts_per_shard, base, names_exclude })
    }

    /// Keep only targets inside `allow` (the API server's `--api-allow`): addresses outside it
    /// are left out, and a name is refused, since its agent would resolve it where the
    /// allow-list cannot follow. Returns how many addresses were left out.
    pub fn restrict(&mut self, allow: &crate::AllowList) -> Result<usize, ShardError> {
        if let Some(name) = self.items.iter().find(|t| !is_address(t)) {
            return Err(ShardError::Unsupported(format!(
                "target {}: a distributed scan under an allow-list takes addresses only (agents would resolve names)",
                rustmap_model::sanitize(name)
            )));
        }
        let before = self.items.len();
        self.items.retain(|t| t.parse::<IpAddr>().is_ok_and(|ip| allow.contains(ip)));
        if self.items.is_empty() {
            return Err(ShardError::NoTargets);
        }
        self.perm = Permutation::new(self.items.len() as u64, self.perm.key);
        Ok(before - self.items.len())
    }

    /// How many shards.
    pub fn len(&self) -> u32 {
        let blocks = self.items.len().div_ceil(self.hosts_per_shard);
        u32::try_from(blocks * self.groups.len()).unwrap_or(u32::MAX)
    }

    /// True when there is no shard (never: a set has at least one target).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many port groups: each host is in this many shards.
    pub fn groups(&self) -> u32 {
        self.groups.len() as u32
    }

    /// How many targets (addresses and names) were enumerated.
    pub fn targets(&self) -> usize {
        self.items.len()
    }

    /// The most hosts in a shard.
    pub fn hosts_per_shard(&self) -> usize {
        self.hosts_per_shard
    }

    /// How many targets shard `index` has (0 past the end).
    pub fn shard_targets(&self, index: u32) -> usize {
        if index >= self.len() {
            return 0;
        }
        let start = index as usize / self.groups.len() * self.hosts_per_shard;
        self.items.len().min(start + self.hosts_per_shard) - start
    }

    /// A fingerprint of the target list (FNV-1a over the targets in order): the same scan
    /// cut again gives the same one.
    pub fn fingerprint(&self) -> u64 {
        self.items.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, t| {
            t.bytes().chain([b'\n']).fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
        })
    }

    /// Shard `index` (`None` past the end).
    pub fn shard(&self, index: u32) -> Option<Shard> {
        if index >= self.len() {
            return None;
        }
        let groups = self.groups.len();
        let (block, group) = (index as usize / groups, index as usize % groups);
        let start = block * self.hosts_per_shard;
        let end = (start + self.hosts_per_shard).min(self.items.len());
        let mut config = self.base.clone();
        config.targets = (start..end).map(|j| self.items[self.perm.apply(j as u64) as usize].clone()).collect();
        if config.targets.iter().any(|t| !is_address(t)) {
            config.exclude.extend(self.names_exclude.iter().cloned());
        }
        if !self.groups[group].is_empty() {
            config.ports.spec = Some(self.groups[group].clone());
        }
        Some(Shard { index, group: group as u32, config })
    }
}

/// [`validate()`](crate::validate()) for a scan that agents will run: raw-socket privileges are
/// checked on each agent, not here, so the scan is checked as if this machine had them (unless
/// `--privileged` or `--unprivileged` says otherwise); the configuration the agents get is the
/// one given.
pub fn validate_for_cluster(c: &ScanConfig) -> Result<ScanPlan, crate::ConfigError> {
    let mut assumed = c.clone();
    assumed.origin.privileged = Some(c.origin.privileged.unwrap_or(true));
    let mut plan = crate::validate(&assumed)?;
    plan.config.origin.privileged = c.origin.privileged;
    Ok(plan)
}

/// A shard may not name files: what is left of them once the outputs and target lists are taken
/// out would be read on each agent's machine, from files it does not have.
fn no_local_files(shard: &ScanConfig) -> Result<(), ShardError> {
    let files = shard.file_fields();
    if files.is_empty() {
        return Ok(());
    }
    Err(ShardError::Unsupported(format!(
        "{} with --distribute: not yet supported (the agents would read files of their own machines)",
        files.join(", ")
    )))
}

/// The plan's ports as `-p` expressions, at most [`PORTS_PER_GROUP`] ports each, in groups of
/// nearly equal size.
fn port_groups(plan: &ScanPlan) -> Vec<String> {
    let all: Vec<(Protocol, u16)> = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
        .into_iter()
        .flat_map(|p| plan.ports.get(p).iter().map(move |port| (p, *port)))
        .collect();
    if all.is_empty() {
        return vec![String::new()];
    }
    let n = all.len().div_ceil(PORTS_PER_GROUP);
    let size = all.len().div_ceil(n);
    all.chunks(size).map(port_expression).collect()
}

/// `(protocol, port)` pairs, ascending within each protocol, as a `-p` expression with
/// `T:`/`U:`/`S:` prefixes and ranges.
pub(crate) fn port_expression(ports: &[(Protocol, u16)]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut current = None;
    while i < ports.len() {
        let (proto, lo) = ports[i];
        let mut hi = lo;
        while i + 1 < ports.len() && ports[i + 1].0 == proto && u32::from(ports[i + 1].1) == u32::from(hi) + 1 {
            i += 1;
            hi = ports[i].1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if current != Some(proto) {
            out.push_str(match proto {
                Protocol::Tcp => "T:",
                Protocol::Udp => "U:",
                Protocol::Sctp => "S:",
            });
            current = Some(proto);
        }
        if lo == hi {
            out.push_str(&lo.to_string());
        } else {
            out.push_str(&format!("{lo}-{hi}"));
        }
        i += 1;
    }
    out
}

/// A keyed permutation of `0..n`: a four-round Feistel network over the smallest even power of
/// two at least `n`, walked until it lands inside `0..n` (cycle walking keeps it a bijection).
#[derive(Debug, Clone, Copy)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    key: u64,
}

impl Permutation {
    /// The permutation of `0..n` for `key`.
    pub fn new(n: u64, key: u64) -> Permutation {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        Permutation { n, half_bits, key }
    }

    /// Where `i` goes (`i < n`; with n = 0 there is nothing to permute and `i` is returned).
    pub fn apply(&self, i: u64) -> u64 {
        if self.n == 0 {
            return i;
        }
        // Cycle walking: the Feistel network is a bijection of a domain under 4n, and the cycle
        // through `i` comes back to `i` itself, so a value below n is always met (a few steps
        // on average).
        let mut x = self.round_trip(i);
        while x >= self.n {
            x = self.round_trip(x);
        }
        x
    }

    fn round_trip(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for round in 0..4u64 {
            let f = mix(right ^ self.key.rotate_left(round as u32 * 16) ^ round) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }
}

/// splitmix64's finaliser: a cheap, well-mixed round function.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether `target` (one of a shard's targets) is a plain address rather than a name.
pub fn is_address(target: &str) -> bool {
    target.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permutation_is_a_bijection_and_depends_on_the_key() {
        for n in [1u64, 2, 3, 7, 100, 255, 256, 1000, 65_536] {
            let p = Permutation::new(n, 42);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.apply(i);
                assert!(j < n, "{n}: {i} -> {j}");
                assert!(!seen[j as usize], "{n}: {j} twice");
                seen[j as usize] = true;
            }
        }
        let (a, b) = (Permutation::new(1000, 1), Permutation::new(1000, 2));
        assert_ne!((0..20).map(|i| a.apply(i)).collect::<Vec<_>>(), (0..20).map(|i| b.apply(i)).collect::<Vec<_>>());
        // Not the identity: the first block is spread over the range.
        let first: Vec<u64> = (0..256).map(|i| Permutation::new(65_536, 7).apply(i)).collect();
        assert!(first.iter().any(|&j| j > 10_000), "{first:?}");
    }

    #[test]
    fn port_expressions_compress_ranges_and_name_protocols() {
        let ports = [(Protocol::Tcp, 22), (Protocol::Tcp, 80), (Protocol::Tcp, 81), (Protocol::Tcp, 82)];
        assert_eq!(port_expression(&ports), "T:22,80-82");
        let ports = [(Protocol::Tcp, 65535), (Protocol::Udp, 53), (Protocol::Sctp, 1), (Protocol::Sctp, 2)];
        assert_eq!(port_expression(&ports), "T:65535,U:53,S:1-2");
    }

    fn plan(args: &[&str], ports: &str) -> ScanPlan {
        let mut c = ScanConfig::new(args.iter().copied());
        c.scan_types = vec![rustmap_model::ScanType::Connect];
        c.ports.spec = Some(ports.into());
        crate::validate(&c).unwrap()
    }

    #[test]
    fn shards_cover_every_target_and_port_once() {
        let p = plan(&["198.18.0.0/22", "lab.example"], "1-10000");
        let set = ShardSet::new(&p, 99, Some(100)).unwrap();
        assert_eq!(set.targets(), 1025);
        assert_eq!(set.groups(), 3, "10000 ports in groups of at most 4096");
        assert_eq!(set.len(), 11 * 3);
        let mut pairs = std::collections::HashMap::<String, usize>::new();
        let mut port_total = 0;
        for i in 0..set.len() {
            let s = set.shard(i).unwrap();
            assert_eq!(s.group, i % 3);
            assert!(s.config.output.files.is_empty());
            let sub = crate::validate(&s.config).unwrap();
            if s.index < 3 {
                port_total += sub.ports.total();
            }
            for t in &s.config.targets {
                *pairs.entry(t.clone()).or_default() += 1;
            }
        }
        assert_eq!(port_total, 10_000);
        assert_eq!(pairs.len(), 1025);
        assert!(pairs.values().all(|&n| n == 3), "each target once per port group");
        assert!(set.shard(set.len()).is_none());
        assert_eq!((0..set.len()).map(|i| set.shard_targets(i)).sum::<usize>(), 1025 * 3);
        assert_eq!(set.shard_targets(set.len() - 1), 25);
        // The same key, the same shards.
        let again = ShardSet::new(&p, 99, Some(100)).unwrap();
        assert_eq!(again.shard(5).unwrap().config.targets, set.shard(5).unwrap().config.targets);
        assert_eq!(again.fingerprint(), set.fingerprint());
        let other = ShardSet::new(&plan(&["198.18.0.0/22", "lab2.example"], "1-10000"), 99, Some(100)).unwrap();
        assert_ne!(other.fingerprint(), set.fingerprint());
    }

    #[test]
    fn exclusion_files_travel_inline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ex.txt");
        std::fs::write(&file, "# lab\n198.18.0.3 198.18.0.4\n\n198.18.0.8/30 # a block\n").unwrap();
        let mut c = ScanConfig::new(["198.18.0.0/28", "lab.example"]);
        c.scan_types = vec![rustmap_model::ScanType::Connect];
        c.ports.spec = Some("80".into());
        c.exclude_files = vec![file];
        let set = ShardSet::new(&crate::validate(&c).unwrap(), 1, Some(4)).unwrap();
        assert_eq!(set.targets(), 11, "16 minus the 6 excluded, and the name");
        let shards: Vec<ScanConfig> = (0..set.len()).map(|i| set.shard(i).unwrap().config).collect();
        assert!(shards.iter().all(|s| s.exclude_files.is_empty()));
        for s in &shards {
            let with_name = s.targets.iter().any(|t| t == "lab.example");
            let inline = s.exclude == vec!["198.18.0.3,198.18.0.4,198.18.0.8/30".to_string()];
            assert_eq!(with_name, inline, "{:?}: the list only where a name is", s.targets);
        }
    }

    #[test]
    fn shards_that_name_local_files_are_refused() {
        let mut c = ScanConfig::new(["198.18.0.10"]);
        assert!(no_local_files(&c).is_ok());
        c.geoip.dir = Some("/srv/geoip".into());
        c.service.probe_db = vec!["/srv/probes.txt".into()];
        let e = no_local_files(&c).unwrap_err().to_string();
        assert!(e.starts_with("service.probe_db, geoip.dir with --distribute: not yet supported"), "{e}");
    }

    #[test]
    fn a_one_port_sweep_gets_small_shards() {
        let p = plan(&["198.19.0.0/16"], "80");
        let set = ShardSet::new(&p, 1, None).unwrap();
        assert_eq!((set.groups(), set.hosts_per_shard(), set.len()), (1, MAX_HOSTS_PER_SHARD, 256));
        let s = set.shard(0).unwrap();
        assert_eq!(s.config.ports.spec.as_deref(), Some("T:80"));
        assert!(s.config.targets.iter().all(|t| is_address(t)));
    }
}
