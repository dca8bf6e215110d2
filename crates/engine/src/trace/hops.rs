//! One host's traceroute: which TTLs to probe, in what order, and what the answers make of its
//! path. Pure state, driven by the [`Machine`](super::machine::Machine); no clock, no I/O.
//!
//! The search starts at the host's distance as the TTL of its answers suggests (`start`) and
//! counts *down*, as nmap does, so that a path whose upper hops match a trace already known can
//! stop early and take the lower hops from it (hop reuse, decided by the machine, which sees
//! every host). It first sends TTLs `start` and `start - 1` together; once `start - 1` is
//! answered without matching a known hop, the TTLs below go out in parallel, up to
//! [`WINDOW`] in flight. When `start` turns out to be short of the target (a router or silence
//! answers there), TTLs above it go out in parallel too, until the target answers, a router says
//! it is unreachable, [`MAX_TTL`] is reached, or [`SILENT_GIVE_UP`] hops in a row stay silent.
//! Without a distance hint the search starts at TTL 1 and only counts up, as classic traceroute.

use std::net::IpAddr;
use std::time::Duration;

/// The highest TTL probed.
pub const MAX_TTL: u8 = 30;
/// Probes one host may have in flight.
pub const WINDOW: usize = 8;
/// Consecutive silent hops, counting up, after which the search stops (the target or a
/// firewall before it drops the probes).
pub const SILENT_GIVE_UP: u8 = 5;

/// Who answered a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A router: time exceeded.
    Router,
    /// The target itself: the probe reached it.
    Target,
    /// A router that says the target is unreachable: the end of the path we can see.
    Unreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not sent yet.
    Idle,
    /// A probe is out.
    InFlight,
    /// Timed out; another try is due.
    Retry,
    /// No answer after every try.
    Silent,
    /// Answered.
    Heard { addr: IpAddr, rtt: Duration, answer: Answer },
}

impl Slot {
    fn resolved(self) -> bool {
        matches!(self, Slot::Silent | Slot::Heard { .. })
    }
}

/// One hop of a finished search: its TTL, and who answered (nobody: a silent hop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Its distance.
    pub ttl: u8,
    /// The address that answered and the round trip.
    pub heard: Option<(IpAddr, Duration)>,
}

/// The search for one host's path.
#[derive(Debug, Clone)]
pub struct HopSearch {
    slots: Vec<Slot>,
    /// The first TTL probed.
    start: u8,
    /// Lowest TTL the target answered at.
    reached: Option<u8>,
    /// A router said unreachable at this TTL: nothing above it is probed.
    wall: Option<u8>,
    /// TTLs below this come from another host's trace (hop reuse); 1 when none do.
    floor: u8,
    /// TTLs below `start - 1` may be sent.
    down_open: bool,
    /// Next TTL to send counting up, once the search goes up (0: it does not).
    up_next: u8,
    /// Counting up stopped (silence, or [`MAX_TTL`]).
    up_stopped: bool,
    in_flight: usize,
    tries: Vec<u8>,
}

impl HopSearch {
    /// A search starting at `distance` (the host's distance as its answers suggest), or
    /// counting up from TTL 1 without one.
    pub fn new(distance: Option<u8>) -> HopSearch {
        let slots = vec![Slot::Idle; usize::from(MAX_TTL) + 1];
        let tries = vec![0; usize::from(MAX_TTL) + 1];
        match distance {
            Some(d) => {
                let start = d.clamp(1, MAX_TTL);
                HopSearch {
                    slots,
                    tries,
                    start,
                    reached: None,
                    wall: None,
                    floor: 1,
                    down_open: start <= 2,
                    up_next: 0,
                    up_stopped: false,
                    in_flight: 0,
                }
            }
            None => HopSearch {
                slots,
                tries,
                start: 1,
                reached: None,
                wall: None,
                floor: 1,
                down_open: true,
                up_next: 2,
                up_stopped: false,
                in_flight: 0,
            },
        }
    }

    fn slot(&self, ttl: u8) -> Slot {
        self.slots.get(usize::from(ttl)).copied().unwrap_or(Slot::Silent)
    }

    fn set(&mut self, ttl: u8, s: Slot) {
        if let Some(x) = self.slots.get_mut(usize::from(ttl)) {
            *x = s;
        }
    }

    /// The highest TTL that still matters: the target's, the unreachable router's, else
    /// [`MAX_TTL`].
    fn ceiling(&self) -> u8 {
        self.reached.or(self.wall).unwrap_or(MAX_TTL)
    }

    /// The next TTL to probe, if one may go out now. [`HopSearch::sent`] must follow.
    pub fn next(&self) -> Option<u8> {
        if self.in_flight >= WINDOW {
            return None;
        }
        let ceiling = self.ceiling();
        // Retries first, highest first.
        if let Some(t) = (self.floor..=ceiling).rev().find(|t| self.slot(*t) == Slot::Retry) {
            return Some(t);
        }
        // The first pair: `start`, then `start - 1`.
        for t in [self.start, self.start.saturating_sub(1)] {
            if t >= self.floor.max(1) && t <= ceiling && self.slot(t) == Slot::Idle {
                return Some(t);
            }
        }
        if self.down_open {
            let top = self.start.saturating_sub(2).min(ceiling);
            if let Some(t) = (self.floor.max(1)..=top).rev().find(|t| self.slot(*t) == Slot::Idle) {
                return Some(t);
            }
        }
        if self.up_next > 0 && !self.up_stopped && self.reached.is_none() && self.wall.is_none() {
            let t = self.up_next;
            if t <= MAX_TTL && self.slot(t) == Slot::Idle {
                return Some(t);
            }
        }
        None
    }

    /// A probe for `ttl` went out. Returns its try number (1 for the first).
    pub fn sent(&mut self, ttl: u8) -> u8 {
        self.set(ttl, Slot::InFlight);
        self.in_flight += 1;
        if ttl == self.up_next {
            self.up_next = ttl.saturating_add(1);
        }
        let tries = self.tries.get_mut(usize::from(ttl));
        tries.map_or(1, |n| {
            *n = n.saturating_add(1);
            *n
        })
    }

    /// The probe for `ttl` is no longer awaited (answered, timed out or abandoned).
    fn landed(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Counting up: open it when `ttl` (at or above the start) turned out short of the target.
    fn maybe_go_up(&mut self, ttl: u8) {
        if ttl >= self.start && self.reached.is_none() && self.up_next == 0 {
            self.up_next = self.start.saturating_add(1);
        }
    }

    /// Going up, `SILENT_GIVE_UP` silent hops in a row above the last answer end the search.
    fn check_silence(&mut self) {
        if self.up_next == 0 {
            return;
        }
        let highest_heard = (1..=MAX_TTL).rev().find(|t| matches!(self.slot(*t), Slot::Heard { .. })).unwrap_or(0);
        let silent_above = (highest_heard + 1..=MAX_TTL).take_while(|t| self.slot(*t) == Slot::Silent).count();
        if silent_above >= usize::from(SILENT_GIVE_UP) || self.up_next > MAX_TTL {
            self.up_stopped = true;
        }
    }

    /// The probe for `ttl` was answered by `addr` after `rtt`.
    pub fn on_answer(&mut self, ttl: u8, addr: IpAddr, rtt: Duration, answer: Answer) {
        self.landed();
        self.set(ttl, Slot::Heard { addr, rtt, answer });
        if ttl == self.start.saturating_sub(1) {
            // The pair's lower probe landed: unless the machine finds its hop in another trace
            // (and calls `reuse_below`), the TTLs below go out.
            self.down_open = true;
        }
        match answer {
            Answer::Target => {
                self.reached = Some(self.reached.map_or(ttl, |r| r.min(ttl)));
            }
            Answer::Unreachable => {
                self.wall = Some(self.wall.map_or(ttl, |w| w.min(ttl)));
            }
            Answer::Router => self.maybe_go_up(ttl),
        }
        self.check_silence();
    }

    /// The probe for `ttl` timed out; `retry` says whether it gets another try.
    pub fn on_timeout(&mut self, ttl: u8, retry: bool) {
        self.landed();
        self.set(ttl, if retry { Slot::Retry } else { Slot::Silent });
        if ttl == self.start.saturating_sub(1) {
            // A silent hop matches no known one: the TTLs below need not wait for its retry.
            self.down_open = true;
        }
        if !retry {
            self.maybe_go_up(ttl);
            self.check_silence();
        }
    }

    /// Hops below `ttl` will come from another trace: those probes are no longer wanted.
    /// Returns the TTLs whose probes were in flight (the machine forgets them).
    pub fn reuse_below(&mut self, ttl: u8) -> Vec<u8> {
        let mut dropped = Vec::new();
        for t in 1..ttl.min(MAX_TTL + 1) {
            if self.slot(t) == Slot::InFlight {
                dropped.push(t);
                self.landed();
            }
            if !self.slot(t).resolved() {
                self.set(t, Slot::Idle);
            }
        }
        self.floor = self.floor.max(ttl);
        dropped
    }

    /// TTLs below this come from another trace.
    pub fn floor(&self) -> u8 {
        self.floor
    }

    /// Nothing in flight and nothing more to send.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0 && self.next().is_none()
    }

    /// The hops this search found itself, TTL 1 (or the floor) up to the target, the router
    /// that said unreachable, or the last hop that answered. Empty when nothing answered.
    pub fn hops(&self) -> Vec<Hop> {
        let last = match (self.reached, self.wall) {
            (Some(r), _) => r,
            (None, Some(w)) => w,
            (None, None) => (1..=MAX_TTL).rev().find(|t| matches!(self.slot(*t), Slot::Heard { .. })).unwrap_or(0),
        };
        (self.floor..=last)
            .map(|ttl| Hop {
                ttl,
                heard: match self.slot(ttl) {
                    Slot::Heard { addr, rtt, .. } => Some((addr, rtt)),
                    _ => None,
                },
            })
            .collect()
    }

    /// Did the probes reach the target?
    #[cfg(test)]
    pub fn reached(&self) -> Option<u8> {
        self.reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, last])
    }

    const MS: Duration = Duration::from_millis(1);

    /// Drive a search against a fixed path: `path[ttl - 1]` answers TTL `ttl` (None: silent);
    /// beyond the path the target answers. Returns the TTLs in the order they were sent.
    fn walk(s: &mut HopSearch, path: &[Option<IpAddr>], target: IpAddr) -> Vec<u8> {
        let mut order = Vec::new();
        for _ in 0..200 {
            let mut batch = Vec::new();
            while let Some(t) = s.next() {
                s.sent(t);
                batch.push(t);
            }
            if batch.is_empty() {
                break;
            }
            order.extend(&batch);
            for t in batch {
                match path.get(usize::from(t) - 1) {
                    Some(Some(r)) => s.on_answer(t, *r, MS, Answer::Router),
                    Some(None) => s.on_timeout(t, false),
                    None => s.on_answer(t, target, MS, Answer::Target),
                }
            }
        }
        assert!(s.is_done());
        order
    }

    #[test]
    fn an_exact_guess_probes_the_pair_then_the_rest() {
        let mut s = HopSearch::new(Some(3));
        let order = walk(&mut s, &[Some(a(1)), Some(a(2))], a(10));
        assert_eq!(order, [3, 2, 1]);
        let hops = s.hops();
        assert_eq!(
            hops.iter().map(|h| h.heard.map(|x| x.0)).collect::<Vec<_>>(),
            [Some(a(1)), Some(a(2)), Some(a(10))]
        );
        assert_eq!(s.reached(), Some(3));
    }

    #[test]
    fn a_short_guess_goes_up_and_a_long_one_comes_down() {
        let path = [Some(a(1)), Some(a(2)), Some(a(3)), Some(a(4))];
        let mut s = HopSearch::new(Some(2));
        walk(&mut s, &path, a(10));
        assert_eq!(s.reached(), Some(5));
        assert_eq!(s.hops().len(), 5);
        let mut s = HopSearch::new(Some(9));
        walk(&mut s, &path, a(10));
        assert_eq!(s.reached(), Some(5));
        assert_eq!(s.hops().last().unwrap().heard.unwrap().0, a(10));
    }

    #[test]
    fn silence_ends_the_climb_and_trailing_silence_is_dropped() {
        let mut path = vec![Some(a(1)), None, Some(a(3))];
        path.extend(std::iter::repeat_n(None, 40));
        let mut s = HopSearch::new(None);
        let order = walk(&mut s, &path, a(10));
        assert!(order.len() <= 3 + usize::from(SILENT_GIVE_UP) + WINDOW, "{order:?}");
        assert_eq!(s.reached(), None);
        let hops = s.hops();
        assert_eq!(hops.len(), 3, "up to the last hop that answered");
        assert_eq!(hops[1].heard, None);
    }

    #[test]
    fn reuse_cuts_the_search_short() {
        let mut s = HopSearch::new(Some(5));
        assert_eq!(s.next(), Some(5));
        s.sent(5);
        assert_eq!(s.next(), Some(4));
        s.sent(4);
        assert_eq!(s.next(), None, "the lower TTLs wait for the pair");
        s.on_answer(5, a(10), MS, Answer::Target);
        s.on_answer(4, a(4), MS, Answer::Router);
        // The machine found a(4) at TTL 4 in another trace.
        assert!(s.reuse_below(4).is_empty());
        assert!(s.is_done());
        assert_eq!(s.hops().iter().map(|h| h.ttl).collect::<Vec<_>>(), [4, 5]);
    }

    #[test]
    fn an_unreachable_router_is_the_end() {
        let mut s = HopSearch::new(Some(4));
        s.sent(4);
        s.sent(3);
        s.on_answer(4, a(9), MS, Answer::Unreachable);
        s.on_answer(3, a(3), MS, Answer::Router);
        while let Some(t) = s.next() {
            s.sent(t);
            s.on_answer(t, a(t), MS, Answer::Router);
        }
        assert!(s.is_done());
        assert_eq!(s.hops().len(), 4);
    }
}
