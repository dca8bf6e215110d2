//! The raw engine's state: what a probe is for, a host in flight and its lifecycle fields, the
//! discovery plans, the outgoing batch, and the small rules over them (a host found up, its probe
//! timeout, its UDP send gap).

use super::*;

/// What a probe is for: a port of one of the scans (by index into [`RawScan::scans`]), or one
/// of the discovery probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Pk {
    Port(u8, u16),
    Disc(u8),
}

/// A discovery probe of the raw engine: an IP-level ping, or ARP / neighbour solicitation on a
/// directly connected link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DiscProbe {
    Ping(Ping),
    Arp,
    Nd,
}

/// Our end of every probe, which answers must match: the TCP/SCTP and the UDP source ports (held
/// by the sockets for the scan), and the ICMP identifier.
#[derive(Debug, Clone, Copy)]
pub(super) struct Local {
    pub(super) sport: u16,
    pub(super) udp_sport: u16,
    pub(super) icmp_id: u16,
}

/// What the engine knows about the network as a whole: the congestion window, and the round
/// trips of every host (for hosts that have not answered yet).
pub(super) struct NetState {
    pub(super) window: Window,
    pub(super) global_rtt: RttEstimator,
}

/// Which discovery probes a host gets (an index into [`Plans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlanKind {
    V4,
    V6,
    Arp,
    Nd,
}

/// The discovery probe lists of one scan, built once from its [`DiscoveryPlan`].
pub(super) struct Plans {
    pub(super) v4: Vec<DiscProbe>,
    pub(super) v6: Vec<DiscProbe>,
    pub(super) link_layer: bool,
}

impl Plans {
    pub(super) fn new(plan: &DiscoveryPlan) -> Plans {
        let ip = |v6: bool| plan.raw_pings(v6).into_iter().map(DiscProbe::Ping).collect();
        Plans { v4: ip(false), v6: ip(true), link_layer: plan.link_layer }
    }

    pub(super) fn of(&self, kind: PlanKind) -> &[DiscProbe] {
        match kind {
            PlanKind::V4 => &self.v4,
            PlanKind::V6 => &self.v6,
            PlanKind::Arp => &[DiscProbe::Arp],
            PlanKind::Nd => &[DiscProbe::Nd],
        }
    }
}

/// How a host's probes leave: not decided yet, through the raw IP socket (the kernel routes and
/// resolves the next hop), or as whole Ethernet frames on a link to a known next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hop {
    Unresolved,
    Ip,
    Frame { ifindex: u32, src: [u8; 6], dst: [u8; 6] },
}

/// Which socket a packet of the outgoing batch goes through: all packets of one batch share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    Ip { v6: bool },
    Link(u32),
}

/// Probes built and waiting to go out together with one `sendmmsg`: the packets, which socket
/// they take, and for each probe, its host, probe and try, and the number of packets built up
/// to its last. A probe is one packet, or several with decoys or fragments; packets of a probe
/// that do not fit the batch wait in `spill` and go out one by one after it. Probes count as in
/// flight from the moment they are built; the send decides whether they stay so or go back to
/// their host's retries.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) batch: Batch,
    pub(super) spill: Vec<(Option<IpAddr>, Vec<u8>)>,
    pub(super) channel: Option<Channel>,
    pub(super) meta: Vec<(u64, Pk, u8)>,
    pub(super) ends: Vec<usize>,
}

impl Outbox {
    /// Empty it for the next batch.
    pub(super) fn clear(&mut self) {
        self.batch.clear();
        self.spill.clear();
        self.meta.clear();
        self.ends.clear();
        self.channel = None;
    }

    /// Packets built, in the batch and past it.
    pub(super) fn packets(&self) -> usize {
        self.batch.len() + self.spill.len()
    }

    /// Add one packet of the probe being built: into the batch while it has room, else into
    /// the spill. Returns whether `write` built one.
    pub(super) fn push_packet(&mut self, dst: Option<IpAddr>, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        if !self.batch.is_full() {
            return self.batch.push_with(dst, write);
        }
        let mut slot = vec![0u8; rustmap_netio::raw::SLOT];
        match write(&mut slot) {
            Some(n) if n <= slot.len() => {
                slot.truncate(n);
                self.spill.push((dst, slot));
                true
            }
            _ => false,
        }
    }

    /// The probe whose packets were just added is complete.
    pub(super) fn commit(&mut self, probe: (u64, Pk, u8)) {
        self.meta.push(probe);
        self.ends.push(self.packets());
    }

    /// The `k`th packet built.
    #[cfg(test)]
    pub(super) fn packet(&self, k: usize) -> &[u8] {
        match k.checked_sub(self.batch.len()) {
            None => self.batch.packet(k),
            Some(s) => &self.spill[s].1,
        }
    }

    /// Drop packets added after the first `n` (a probe that could not be built whole).
    pub(super) fn truncate(&mut self, n: usize) {
        let b = self.batch.len();
        if n < b {
            self.batch.truncate(n);
        }
        self.spill.truncate(n.saturating_sub(b));
    }
}

/// An application-level ping's outcome, back from its task: host id, probe, try, outcome.
pub(super) type AppDone = (u64, Pk, u8, PingOutcome);

pub(super) struct Host {
    /// Its life (discovery, then up), results and round trips: kept as the connect engine does.
    pub(super) core: HostCore,
    pub(super) src: IpAddr,
    /// Discovery: the next of its discovery probes to send.
    pub(super) disc_next: usize,
    /// Its discovery probes, and the link it is directly on (ARP/ND go out there as frames).
    pub(super) plan: PlanKind,
    pub(super) link: Option<Link>,
    /// Its hardware address, learned from a reply on its link.
    pub(super) mac: Option<[u8; 6]>,
    /// How its port probes leave (decided at the first one).
    pub(super) hop: Hop,
    /// Its probes in the order they went out, for timing them out (entries of probes that were
    /// answered since are skipped when they come up).
    pub(super) sent: VecDeque<(Instant, Pk, u8)>,
    /// Per scan: where in the port order this host starts, and how many ports it has sent.
    pub(super) cursors: Vec<(usize, usize)>,
    /// The scan whose turn it is next (round-robin between the scans of a combined run).
    pub(super) turn: usize,
    pub(super) retries: VecDeque<(Pk, u8)>,
    /// Probes in flight: when each went out and which try it was.
    pub(super) outstanding: FxHashMap<Pk, (Instant, u8)>,
    /// UDP send gap for this host (grows when its ICMP answers are rate limited), the earliest
    /// time for its next UDP probe, and when the gap last grew.
    pub(super) udp_gap: Duration,
    pub(super) udp_next: Instant,
    pub(super) udp_grown: Option<Instant>,
    /// The host has answered a UDP probe with port-unreachable: its silences may be rate limiting.
    pub(super) udp_unreach: bool,
}

impl Host {
    /// Push the events of what this host learned since the last call.
    pub(super) fn flush_news(&mut self, out: &mut Vec<ScanEvent>) {
        self.core.flush_news(self.mac, out);
    }
}

/// Discovery is over for `h`: it is up, for this reason. Its other discovery probes are moot:
/// they are forgotten (so the host need not wait for their timeouts). Returns how many were
/// still in flight.
pub(super) fn mark_up(h: &mut Host, reason: Reason, ttl: u8) -> usize {
    h.core.mark_up(reason, ttl);
    h.retries.retain(|r| !matches!(r.0, Pk::Disc(_)));
    let before = h.outstanding.len();
    h.outstanding.retain(|pk, _| !matches!(pk, Pk::Disc(_)));
    before - h.outstanding.len()
}

/// A probe's timeout: from the host's own round trips once it has answered, else from every
/// host's so far (nmap's group timing), else the initial timeout. So the empty addresses of a
/// sweep cost a few round trips of the live ones, not a second each.
pub(super) fn probe_timeout(h: &Host, global: &RttEstimator, timing: &Timing) -> Duration {
    if h.core.rtt.srtt_us().is_some() {
        h.core.rtt.timeout(timing)
    } else {
        global.timeout(timing)
    }
}

/// The longest UDP send gap: `--max-scan-delay`, else one second (what it takes a Linux host's
/// ICMP limiter to grant its next answer).
pub(super) fn udp_gap_cap(timing: &Timing) -> Duration {
    timing.max_scan_delay.unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(1))
}

/// A UDP probe sent at the host's current gap went unanswered by a host that answers closed
/// ports: the gap is too short for its ICMP rate limit. Double it (from 50 ms, up to the cap),
/// nmap's remedy. Only probes sent after the last change count, so one burst of silences
/// doubles the gap once.
pub(super) fn grow_udp_gap(h: &mut Host, timing: &Timing, now: Instant) {
    h.udp_gap = (h.udp_gap * 2).max(Duration::from_millis(50)).min(udp_gap_cap(timing));
    h.udp_grown = Some(now);
}
