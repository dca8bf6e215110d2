//! `--predict-ports` and learned timing: what past scans stored is used to answer sooner.
//!
//! - Ports: the ports past scans found open on these targets (by address, or by the name the
//!   user gave), then those open on other hosts of their /24 (IPv6: /64), go into
//!   `ports.first`, which the scan probes before the others (every host, in that order). The
//!   scan reports how soon its first open port came (`first_open_port` event; a note on stderr).
//! - Timing: each host's round-trip estimate starts from its own past round trip, or else from
//!   the largest of its network's (`rustmap::StartOptions::learned_rtt`), unless
//!   `--initial-rtt-timeout` says where to start.
//!
//! Only the newest [`SCANS`] stored scans are read, and at most [`MAX_TARGETS`] targets are
//! looked up, so the cost stays bounded whatever the history or target list.

use crate::flags::Flags;
use crate::history::db_path;
use rustmap::{ScanEvent, ScanPlan, Sink, SinkError};
use rustmap_model::{Control, Protocol};
use rustmap_store::Store;
use rustmap_targets::TargetItem;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// Stored scans read, newest first.
pub const SCANS: usize = 50;

/// Targets looked up at most (the rest of a larger list gets the predictions of these).
pub const MAX_TARGETS: usize = 1 << 20;

/// What the history predicts for a scan.
#[derive(Debug, Default)]
pub struct Prediction {
    /// `ports.first`, as a `-p` expression, if any port was predicted.
    pub first: Option<String>,
    /// Past round trips, per host.
    pub learned_rtt: Vec<(IpAddr, Duration)>,
    /// What to tell the user before the scan.
    pub note: String,
}

fn network(a: IpAddr) -> IpAddr {
    rustmap::timing_network_of(a)
}

fn expr(ports: &[(Protocol, u16)]) -> String {
    let mut out = Vec::new();
    for (proto, letter) in [(Protocol::Tcp, "T"), (Protocol::Udp, "U"), (Protocol::Sctp, "S")] {
        let these: Vec<String> = ports.iter().filter(|p| p.0 == proto).map(|p| p.1.to_string()).collect();
        if !these.is_empty() {
            out.push(format!("{letter}:{}", these.join(",")));
        }
    }
    out.join(",")
}

/// Read the history and predict for `plan`. No history yet: nothing predicted, said so.
pub fn predict(f: &Flags, plan: &ScanPlan) -> anyhow::Result<Prediction> {
    let Some(path) = db_path(f).filter(|p| p.exists()) else {
        return Ok(Prediction {
            note: "--predict-ports: no scan history yet; scanning as usual".into(),
            ..Default::default()
        });
    };
    let store = Store::open_read_only(&path)?;
    let past = store.past_hosts(SCANS)?;
    // The targets: addresses, their networks, and the names the user typed.
    let (mut addrs, mut nets, mut names) = (HashSet::new(), HashSet::new(), HashSet::new());
    for item in plan.targets().iter().take(MAX_TARGETS).flatten() {
        match item {
            TargetItem::Addr(ip) => {
                addrs.insert(ip);
                nets.insert(network(ip));
            }
            TargetItem::Name { name, .. } => {
                names.insert(name.to_ascii_lowercase());
            }
        }
    }
    let mut own: BTreeMap<(Protocol, u16), u32> = BTreeMap::new();
    let mut near: BTreeMap<(Protocol, u16), u32> = BTreeMap::new();
    let mut learned_rtt = Vec::new();
    for h in &past {
        if let Some(us) = h.srtt_us {
            learned_rtt.push((h.addr, Duration::from_micros(us)));
        }
        let is_target = addrs.contains(&h.addr) || h.names.iter().any(|n| names.contains(&n.to_ascii_lowercase()));
        let into = if is_target {
            &mut own
        } else if nets.contains(&network(h.addr)) {
            &mut near
        } else {
            continue;
        };
        for &(proto, port, seen) in &h.open {
            *into.entry((proto, port)).or_default() += seen;
        }
    }
    near.retain(|k, _| !own.contains_key(k));
    let mut ranked: Vec<((Protocol, u16), u32)> = own.clone().into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut more: Vec<((Protocol, u16), u32)> = near.clone().into_iter().collect();
    more.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let ports: Vec<(Protocol, u16)> = ranked.iter().chain(more.iter()).map(|p| p.0).collect();
    if plan.config().timing.initial_rtt_timeout.is_some() {
        learned_rtt.clear();
    }
    let note = if ports.is_empty() {
        format!("--predict-ports: no open port of these hosts or their networks in the last {SCANS} scans")
    } else {
        format!(
            "--predict-ports: scanning first {} port(s) seen open on these hosts and {} more seen on their networks in past scans",
            own.len(),
            near.len()
        )
    };
    Ok(Prediction { first: (!ports.is_empty()).then(|| expr(&ports)), learned_rtt, note })
}

/// `--fast-discovery`: the hosts stored up by a scan that started within `max_age` (of the
/// newest [`SCANS`] scans), and what to tell the user.
pub fn seen_up(f: &Flags, max_age: Duration) -> anyhow::Result<(Vec<IpAddr>, String)> {
    let Some(path) = db_path(f).filter(|p| p.exists()) else {
        return Ok((Vec::new(), "--fast-discovery: no scan history yet; discovering as usual".into()));
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let since = i64::try_from(now.saturating_sub(max_age.as_secs())).unwrap_or(i64::MAX);
    let past = Store::open_read_only(&path)?.past_hosts(SCANS)?;
    let up: Vec<IpAddr> = past.into_iter().filter(|h| h.last_up >= since).map(|h| h.addr).collect();
    let note =
        format!("--fast-discovery: {} host(s) seen up in the last {} s skip discovery", up.len(), max_age.as_secs());
    Ok((up, note))
}

/// Prints, on stderr, how soon the scan found its first open port.
pub struct FirstOpenNote;

impl Sink for FirstOpenNote {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        if let ScanEvent::FirstOpenPort { addr, protocol, port, after_secs } = ev {
            eprintln!("rustmap: first open port {port}/{protocol} on {addr} after {after_secs:.3} s");
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
