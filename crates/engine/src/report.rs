//! What both engines know about a host and how it leaves them: the targets they are handed, the
//! per-port records they keep, the events announcing a host and its ports as soon as each is known
//! (`News`), the final `HostDone` with the ports folded as nmap folds them ([`collapse`]), run
//! totals, and progress. Written once here, used by the connect and the raw engine alike.

use crate::timing::{RttEstimator, Timing};
use rustmap_model::{
    ExtraPorts, HostResult, HostStatus, Hostname, PassiveSegment, PortResult, PortState, Protocol, Reason, ReasonCount,
    ScanEvent,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A host to scan, names already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanTarget {
    /// Its address.
    pub addr: IpAddr,
    /// Names known for it (the one the user typed, if any).
    pub hostnames: Vec<Hostname>,
}

/// Totals of an engine run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineTotals {
    /// Hosts found up.
    pub hosts_up: u64,
    /// Hosts found down.
    pub hosts_down: u64,
    /// Probes sent, retries included.
    pub probes_sent: u64,
    /// Hosts listed without being probed (`-sL`): neither up nor down.
    pub hosts_listed: u64,
}

/// Seconds since the Unix epoch (the one clock reading of wall time the results carry).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Fold a host's per-port results into shown ports and `extraports`, as nmap does: open ports are
/// always shown, any other state with more than `threshold` ports becomes a count.
pub fn collapse(mut results: Vec<PortRecord>, threshold: usize) -> (Vec<PortResult>, Vec<ExtraPorts>) {
    // nmap's order: protocol by protocol (TCP, UDP, SCTP), ports ascending.
    results.sort_unstable_by_key(|r| (r.0, r.1));
    let mut counts: HashMap<PortState, usize> = HashMap::new();
    for r in &results {
        *counts.entry(r.2).or_default() += 1;
    }
    let folded = |s: PortState| s != PortState::Open && counts.get(&s).copied().unwrap_or(0) > threshold;
    let mut shown = Vec::new();
    let mut extra: Vec<ExtraPorts> = Vec::new();
    let mut by_reason: HashMap<(PortState, Reason, Protocol), Vec<u16>> = HashMap::new();
    for (protocol, port, state, reason, reason_ttl) in results {
        if folded(state) {
            by_reason.entry((state, reason, protocol)).or_default().push(port);
        } else {
            shown.push(PortResult::new(protocol, port, state, reason, reason_ttl));
        }
    }
    for state in PortState::ALL {
        if !folded(state) {
            continue;
        }
        let mut reasons: Vec<ReasonCount> = by_reason
            .iter()
            .filter(|((s, _, _), _)| *s == state)
            .map(|((_, reason, protocol), ports)| ReasonCount {
                reason: *reason,
                protocol: *protocol,
                count: u32::try_from(ports.len()).unwrap_or(u32::MAX),
                ports: rustmap_model::port_ranges(ports),
            })
            .collect();
        reasons.sort_by(|a, b| a.protocol.cmp(&b.protocol).then(b.count.cmp(&a.count)).then(a.reason.cmp(&b.reason)));
        let count = reasons.iter().map(|r| r.count).sum();
        extra.push(ExtraPorts { state, count, reasons });
    }
    (shown, extra)
}

/// Scan progress as a fraction, when the number of hosts is known: finished hosts plus the share
/// of ports sent for each host in flight.
pub(crate) fn progress_fraction(
    hosts_hint: Option<u64>,
    hosts_done: u64,
    sent_per_host: impl Iterator<Item = usize>,
    ports: usize,
) -> Option<f64> {
    let n = hosts_hint.filter(|&n| n > 0)?;
    let partial: f64 = sent_per_host.map(|s| if ports == 0 { 0.0 } else { s as f64 / ports as f64 }).sum();
    Some(((hosts_done as f64 + partial) / n as f64).min(1.0))
}

/// A port result as the engines keep it: protocol, port, state, reason, reason TTL.
pub(crate) type PortRecord = (Protocol, u16, PortState, Reason, u8);

/// What of a host has been announced so far, so that each fact leaves as an event once and as
/// soon as it is known: `HostUp` when the host is found up (or admitted with `-Pn`), then one
/// `PortFound` per port as its state is decided — all before the host's `HostDone`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct News {
    up_announced: bool,
    ports_reported: usize,
}

impl News {
    /// Push the events for what is new: `up` is `Some((reason, ttl, mac))` once the host is up
    /// (nothing about a host still in discovery is news), `results` its port results so far.
    pub fn flush(
        &mut self,
        addr: IpAddr,
        up: Option<(Reason, u8, Option<[u8; 6]>)>,
        results: &[PortRecord],
        out: &mut Vec<ScanEvent>,
    ) {
        let Some((reason, reason_ttl, mac)) = up else { return };
        if !self.up_announced {
            self.up_announced = true;
            out.push(ScanEvent::HostUp { addr, reason, reason_ttl, mac: mac.map(mac_string) });
        }
        for &(protocol, port, state, reason, reason_ttl) in results.get(self.ports_reported..).unwrap_or_default() {
            let port = PortResult::new(protocol, port, state, reason, reason_ttl);
            out.push(ScanEvent::PortFound { addr, port });
        }
        self.ports_reported = results.len();
    }
}

/// A hardware address as nmap writes it (`AA:BB:CC:DD:EE:FF`).
fn mac_string(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Where a host is in its life: in discovery, or up with its ports being scanned. It starts in
/// one of them (up at once with `-Pn`), goes up at most once, and ends when its engine turns it
/// into its report ([`HostCore::into_report`] consumes it), so no state comes after the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// Probed to learn whether it is up; the most telling negative answer so far.
    Discovery { negative: Option<Reason> },
    /// Up for this reason (and the TTL of the answer that said so): its ports are scanned.
    Up { reason: Reason, ttl: u8 },
}

/// What both engines keep about a host in flight: its life, its port results, its round trips,
/// what was announced of it. Each engine adds its own probe bookkeeping around it.
#[derive(Debug)]
pub(crate) struct HostCore {
    pub target: ScanTarget,
    pub start_unix: i64,
    /// When `--host-timeout` gives up on it.
    pub deadline: Option<Instant>,
    pub life: Life,
    pub results: Vec<PortRecord>,
    pub rtt: RttEstimator,
    /// The highest try that was ever answered: retries are allowed one beyond (nmap's rule).
    pub max_successful_try: u8,
    /// SYN-ACKs kept for OS detection's passive tests (raw scans with `-O` only).
    pub passive: Vec<PassiveSegment>,
    news: News,
}

impl HostCore {
    /// A host entering the scan at `now`: up at once (`-Pn`, reason user-set; or seen up by a
    /// recent scan, reason seen-up, with `--fast-discovery`) or in discovery.
    pub fn new(target: ScanTarget, timing: &Timing, up: bool, now: Instant) -> HostCore {
        // Learned timing: the host's (or its network's) round trip of past scans, if known.
        let learned = timing.learned.rtt(target.addr);
        let life = if up {
            Life::Up { reason: Reason::UserSet, ttl: 0 }
        } else if timing.learned.seen_up(target.addr) {
            Life::Up { reason: Reason::SeenUp, ttl: 0 }
        } else {
            Life::Discovery { negative: None }
        };
        HostCore {
            target,
            start_unix: unix_now(),
            deadline: timing.host_timeout.filter(|d| !d.is_zero()).map(|d| now + d),
            life,
            results: Vec::new(),
            rtt: learned.map(RttEstimator::learned).unwrap_or_default(),
            max_successful_try: 0,
            passive: Vec::new(),
            news: News::default(),
        }
    }

    /// Is it up (past discovery)?
    pub fn is_up(&self) -> bool {
        matches!(self.life, Life::Up { .. })
    }

    /// Discovery found it up, for this reason. Returns whether that is news (it was not up yet).
    pub fn mark_up(&mut self, reason: Reason, ttl: u8) -> bool {
        if self.is_up() {
            return false;
        }
        self.life = Life::Up { reason, ttl };
        true
    }

    /// A discovery probe came to nothing, for `reason`: kept as the reason the host is down if
    /// `replace` or if there is none yet. Nothing once the host is up.
    pub fn note_negative(&mut self, reason: Reason, replace: bool) {
        if let Life::Discovery { negative } = &mut self.life {
            if replace || negative.is_none() {
                *negative = Some(reason);
            }
        }
    }

    /// Tries a probe of this host gets: one more than ever paid off, at most the template's.
    pub fn allowed_tries(&self, timing: &Timing) -> u8 {
        let cap = u8::try_from(timing.max_retries).unwrap_or(u8::MAX);
        cap.min(self.max_successful_try.saturating_add(1))
    }

    /// Push the events of what this host learned since the last call (its hardware address,
    /// if known, goes with `HostUp`).
    pub fn flush_news(&mut self, mac: Option<[u8; 6]>, out: &mut Vec<ScanEvent>) {
        let up = match self.life {
            Life::Up { reason, ttl } => Some((reason, ttl, mac)),
            Life::Discovery { .. } => None,
        };
        self.news.flush(self.target.addr, up, &self.results, out);
    }

    /// The end of the host's life: its report.
    pub fn into_report(self, timed_out: bool, mac: Option<[u8; 6]>) -> HostReport {
        let (up, reason, reason_ttl) = match self.life {
            Life::Up { reason, ttl } => (true, reason, ttl),
            Life::Discovery { negative } => (false, negative.unwrap_or(Reason::NoResponse), 0),
        };
        HostReport {
            target: self.target,
            start_unix: self.start_unix,
            up,
            reason,
            reason_ttl,
            srtt_us: self.rtt.srtt_us(),
            results: self.results,
            timed_out,
            mac,
            passive: self.passive,
            news: self.news,
        }
    }
}

/// What a scheduler knows about a host when it is done with it.
pub(crate) struct HostReport {
    pub target: ScanTarget,
    pub start_unix: i64,
    pub up: bool,
    pub reason: Reason,
    pub reason_ttl: u8,
    pub srtt_us: Option<u64>,
    pub results: Vec<PortRecord>,
    pub timed_out: bool,
    /// Hardware address, when learned on a directly connected link.
    pub mac: Option<[u8; 6]>,
    /// SYN-ACKs kept for OS detection.
    pub passive: Vec<PassiveSegment>,
    /// What of it was announced already.
    pub news: News,
}

impl HostReport {
    /// The host's last events: `HostUp` and `PortFound` for whatever was not announced yet (up
    /// hosts only), then its `HostDone`, with the ports folded as nmap folds them. Counts the
    /// host in `totals`.
    pub fn into_events(mut self, collapse_threshold: usize, totals: &mut EngineTotals) -> Vec<ScanEvent> {
        let mut events = Vec::new();
        let up = self.up.then_some((self.reason, self.reason_ttl, self.mac));
        self.news.flush(self.target.addr, up, &self.results, &mut events);
        let (ports, extraports) =
            if self.up { collapse(self.results, collapse_threshold) } else { (Vec::new(), Vec::new()) };
        if self.up {
            totals.hosts_up += 1;
        } else {
            totals.hosts_down += 1;
        }
        events.push(ScanEvent::HostDone(HostResult {
            addr: self.target.addr,
            hostnames: self.target.hostnames,
            mac: self.mac.map(mac_string),
            status: if self.up { HostStatus::Up } else { HostStatus::Down },
            reason: self.reason,
            reason_ttl: self.reason_ttl,
            start_unix: self.start_unix,
            end_unix: unix_now(),
            srtt_us: self.srtt_us,
            ports,
            extraports,
            timed_out: self.timed_out,
            os: Vec::new(),
            os_info: None,
            scripts: Vec::new(),
            trace: Vec::new(),
            trace_probe: None,
            path_mtu: None,
            geoip: None,
            cloud: None,
            passive: self.passive,
        }));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_folds_big_non_open_states() {
        let tcp = Protocol::Tcp;
        let mut r: Vec<(Protocol, u16, PortState, Reason, u8)> =
            (1..=100).map(|p| (tcp, p, PortState::Closed, Reason::ConnRefused, 0)).collect();
        r.push((tcp, 22, PortState::Open, Reason::SynAck, 0));
        r.retain(|x| !(x.1 == 22 && x.2 == PortState::Closed));
        r.push((tcp, 200, PortState::Filtered, Reason::NoResponse, 0));
        let (shown, extra) = collapse(r, 25);
        assert_eq!(shown.iter().map(|p| p.port).collect::<Vec<_>>(), [22, 200]);
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].count, 99);
        assert_eq!(extra[0].reasons[0].ports, "1-21,23-100");
    }

    #[test]
    fn collapse_keeps_protocols_apart() {
        let mut r: Vec<(Protocol, u16, PortState, Reason, u8)> = Vec::new();
        for p in 1..=30 {
            r.push((Protocol::Udp, p, PortState::Closed, Reason::PortUnreach, 64));
            r.push((Protocol::Tcp, p, PortState::Closed, Reason::Reset, 64));
        }
        r.push((Protocol::Udp, 53, PortState::Open, Reason::UdpResponse, 64));
        r.push((Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64));
        let (shown, extra) = collapse(r, 25);
        let listed: Vec<(Protocol, u16)> = shown.iter().map(|p| (p.protocol, p.port)).collect();
        assert_eq!(listed, [(Protocol::Tcp, 22), (Protocol::Udp, 53)], "TCP first, as nmap lists them");
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].count, 60);
        let per: Vec<(Protocol, Reason, u32)> =
            extra[0].reasons.iter().map(|r| (r.protocol, r.reason, r.count)).collect();
        assert_eq!(per, [(Protocol::Tcp, Reason::Reset, 30), (Protocol::Udp, Reason::PortUnreach, 30)]);
    }
}
