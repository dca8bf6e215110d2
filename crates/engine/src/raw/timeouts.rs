//! When the raw engine's probes time out: one heap entry per host with probes out.

use super::*;

impl RawScan {
    /// Probe `pk` (try `tryno`, sent at `sent`) of `h` went unanswered until `now`: retry it, or
    /// conclude (its port's silent state, or the host's discovery came to nothing).
    pub(super) fn on_silence(&self, h: &mut Host, pk: Pk, tryno: u8, sent: Instant, now: Instant, net: &mut NetState) {
        let timing = &self.timing;
        // Silence from an address that never answered says nothing about congestion: most
        // addresses of a sweep are simply empty.
        if !matches!(pk, Pk::Disc(_)) {
            net.window.on_silence();
        }
        // A host that answers closed UDP ports but not this one is probably rate limiting its
        // ICMP. If this probe already went out at the current send gap, the gap is too short:
        // double it. While the gap is still below its cap the retry is free (the try was spent
        // finding the host's pace, not probing the port); after that the full retry budget
        // applies.
        let rate_limited = self.is_udp(pk) && h.udp_unreach;
        if rate_limited && h.udp_grown.is_none_or(|g| sent >= g) {
            grow_udp_gap(h, timing, now);
        }
        let tries = if rate_limited {
            u8::try_from(timing.max_retries).unwrap_or(u8::MAX)
        } else {
            h.core.allowed_tries(timing)
        };
        if matches!(pk, Pk::Disc(_)) && h.core.is_up() {
            // A discovery probe is moot once the host is known to be up.
        } else if rate_limited && h.udp_gap < udp_gap_cap(timing) {
            h.retries.push_back((pk, tryno));
        } else if tryno < tries {
            h.retries.push_back((pk, tryno + 1));
        } else {
            match pk {
                Pk::Port(s, port) if h.core.is_up() => {
                    let scan = self.scans[usize::from(s)].0;
                    h.core.results.push((scan.protocol(), port, probe::silence(scan), Reason::NoResponse, 0))
                }
                Pk::Disc(_) => h.core.note_negative(Reason::NoResponse, false),
                _ => {}
            }
        }
    }
}

/// When probes time out. Each host keeps its probes in send order ([`Host::sent`]); only the
/// oldest of each host is scheduled here, so the heaps hold one entry per host with probes out,
/// not one per probe, and a probe costs a push and a pop on a deque. Hosts that have answered
/// are due at their oldest probe's send time plus their own timeout. Hosts that have not answered
/// yet wait for the scan-wide timeout as it stands when they are checked, so the first answers
/// of a sweep shorten the wait for every silent address already probed.
#[derive(Default)]
pub(super) struct Timeouts {
    /// (deadline, host) of hosts with a measured round trip.
    pub(super) due: BinaryHeap<Reverse<(Instant, u64)>>,
    /// (oldest probe's send time, host) of hosts without one.
    pub(super) fresh: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timeouts {
    /// Probe `pk` (try `tryno`) of host `id` went out at `at`.
    pub(super) fn sent(&mut self, h: &mut Host, id: u64, at: Instant, pk: Pk, tryno: u8, timing: &Timing) {
        h.sent.push_back((at, pk, tryno));
        if h.sent.len() == 1 {
            self.schedule(h, id, timing);
        }
    }

    /// Schedule `h`'s oldest probe, if it has one out.
    pub(super) fn schedule(&mut self, h: &Host, id: u64, timing: &Timing) {
        let Some(&(sent, ..)) = h.sent.front() else { return };
        if h.core.rtt.srtt_us().is_some() {
            self.due.push(Reverse((sent + h.core.rtt.timeout(timing), id)));
        } else {
            self.fresh.push(Reverse((sent, id)));
        }
    }

    /// The earliest time a probe may be due.
    pub(super) fn next_deadline(&self, global_wait: Duration) -> Option<Instant> {
        let a = self.due.peek().map(|Reverse((at, _))| *at);
        let b = self.fresh.peek().map(|Reverse((sent, _))| *sent + global_wait);
        a.into_iter().chain(b).min()
    }

    /// The next probe still outstanding whose time is up at `now`: its host, probe and try.
    pub(super) fn next_overdue(
        &mut self,
        hosts: &mut FxHashMap<u64, Host>,
        global_wait: Duration,
        timing: &Timing,
        now: Instant,
    ) -> Option<(u64, Pk, u8)> {
        loop {
            let a = self.due.peek().map(|Reverse((at, id))| (*at, *id));
            let b = self.fresh.peek().map(|Reverse((sent, id))| (*sent + global_wait, *id));
            let (at, id, fresh) = match (a, b) {
                (Some(a), Some(b)) if b.0 < a.0 => (b.0, b.1, true),
                (Some(a), _) => (a.0, a.1, false),
                (None, Some(b)) => (b.0, b.1, true),
                (None, None) => return None,
            };
            if at > now {
                return None;
            }
            if fresh {
                self.fresh.pop();
            } else {
                self.due.pop();
            }
            // A host that has finished leaves its entry behind; it is dropped here.
            let Some(h) = hosts.get_mut(&id) else { continue };
            let wait = if h.core.rtt.srtt_us().is_some() { h.core.rtt.timeout(timing) } else { global_wait };
            let mut found = None;
            while let Some(&(sent, pk, tryno)) = h.sent.front() {
                if sent + wait > now {
                    break;
                }
                h.sent.pop_front();
                if h.outstanding.get(&pk).map(|o| o.1) == Some(tryno) {
                    found = Some((id, pk, tryno));
                    break;
                }
            }
            self.schedule(h, id, timing);
            if found.is_some() {
                return found;
            }
        }
    }
}
