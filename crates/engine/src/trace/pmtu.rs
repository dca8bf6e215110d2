//! One host's path-MTU search (IPv4): probes with the don't-fragment flag, one size at a time.
//! Pure state, driven by the [`Machine`](super::machine::Machine).
//!
//! The first probe is as large as the outgoing interface allows. An answer from the host means
//! that size gets through. A router's "fragmentation needed" (ICMP 3/4) gives the next hop's MTU
//! (RFC 1191): the next probe is exactly that size. A router that gives no MTU (an old one), or
//! one that drops the probe in silence (a black hole), leaves a bounded binary search between
//! the largest size known to pass and the smallest known not to. When the very first probe goes
//! unanswered, a bare probe (headers only) checks that the host answers this probe at all; if it
//! does not, the MTU is unknown.

/// The smallest MTU an IPv4 path may have (RFC 791).
pub const MIN_MTU: u32 = 68;
/// Most probes one search sends (retries included): a binary search over 68-65535 needs 16.
pub const MAX_PROBES: u8 = 24;

/// A path-MTU search.
#[derive(Debug, Clone)]
pub struct MtuSearch {
    /// Largest size known to get through (0: none yet).
    lo: u32,
    /// Largest size that may get through.
    hi: u32,
    /// The bare probe's size.
    bare: u32,
    /// Size to probe next, when no probe is out.
    next: Option<u32>,
    /// Size of the probe in flight.
    out: Option<u32>,
    /// Tries of the size in flight.
    tries: u8,
    /// Probes sent.
    sent: u8,
    /// The bare probe was sent (the host answers at all?).
    bare_tried: bool,
    /// The result, once known: the MTU, or `None` when it cannot be found.
    result: Option<Option<u32>>,
}

impl MtuSearch {
    /// A search over a path whose first link has MTU `link_mtu`, with probes of at least `bare`
    /// bytes.
    pub fn new(link_mtu: u32, bare: u32) -> MtuSearch {
        let hi = link_mtu.clamp(bare.max(MIN_MTU), 65535);
        MtuSearch { lo: 0, hi, bare, next: Some(hi), out: None, tries: 0, sent: 0, bare_tried: false, result: None }
    }

    /// The size to probe now, if one is due. [`MtuSearch::sent`] must follow.
    pub fn next(&self) -> Option<u32> {
        if self.result.is_some() || self.out.is_some() {
            return None;
        }
        self.next
    }

    /// A probe of `size` went out. Returns its try number (1 for the first).
    pub fn sent(&mut self, size: u32) -> u8 {
        self.out = Some(size);
        self.next = None;
        self.tries = self.tries.saturating_add(1);
        self.sent = self.sent.saturating_add(1);
        if size == self.bare {
            self.bare_tried = true;
        }
        self.tries
    }

    fn finish(&mut self, r: Option<u32>) {
        self.result = Some(r);
        self.next = None;
        self.out = None;
    }

    /// The next step of the search between `lo` and `hi`.
    fn step(&mut self) {
        self.out = None;
        if self.lo >= self.hi {
            self.finish(Some(self.lo));
        } else if self.sent >= MAX_PROBES {
            self.finish((self.lo > 0).then_some(self.lo));
        } else if self.lo == 0 {
            // Nothing known to pass yet: does the host answer a bare probe at all?
            if self.bare_tried {
                self.finish(None);
            } else {
                self.next = Some(self.bare);
            }
        } else {
            self.next = Some(self.lo + (self.hi - self.lo).div_ceil(2));
        }
        self.tries = 0;
    }

    /// The host answered the probe of `size`: that size gets through.
    pub fn on_reply(&mut self, size: u32) {
        if self.out != Some(size) {
            return;
        }
        self.lo = self.lo.max(size);
        self.step();
    }

    /// A router said the probe of `size` is too big for its next hop, whose MTU is `mtu` (0 or
    /// nonsense when it did not say).
    pub fn on_too_big(&mut self, size: u32, mtu: u32) {
        if self.out != Some(size) {
            return;
        }
        if (MIN_MTU..size).contains(&mtu) {
            self.hi = mtu.max(self.lo);
            self.out = None;
            self.tries = 0;
            if self.hi <= self.lo || self.hi < self.bare {
                self.finish(Some(self.lo.max(self.hi)));
            } else if self.sent >= MAX_PROBES {
                self.finish((self.lo > 0).then_some(self.lo));
            } else {
                self.next = Some(self.hi);
            }
        } else {
            self.hi = size.saturating_sub(1).max(self.lo);
            self.step();
        }
    }

    /// The probe of `size` went unanswered; `retry` says whether it gets another try.
    pub fn on_timeout(&mut self, size: u32, retry: bool) {
        if self.out != Some(size) {
            return;
        }
        if retry && self.sent < MAX_PROBES {
            self.out = None;
            self.next = Some(size);
            return;
        }
        if size > self.bare {
            self.hi = size.saturating_sub(1).max(self.lo);
        }
        self.step();
    }

    /// The search is over: `Some(mtu)`, or `Some(None)` when it could not be found.
    pub fn result(&self) -> Option<Option<u32>> {
        self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path: sizes up to `mtu` pass; larger ones get "fragmentation needed" with `says`
    /// (None: dropped in silence). The host answers unless `deaf`.
    fn run(link: u32, mtu: u32, says: Option<u32>, deaf: bool) -> (Option<u32>, u8) {
        let mut s = MtuSearch::new(link, 40);
        let mut probes = 0;
        while let Some(size) = s.next() {
            s.sent(size);
            probes += 1;
            assert!(probes <= MAX_PROBES, "bounded");
            if size <= mtu && !deaf {
                s.on_reply(size);
            } else if size > mtu && says.is_some() {
                s.on_too_big(size, says.unwrap_or(0));
            } else {
                let retry = s.tries < 2;
                s.on_timeout(size, retry);
            }
        }
        (s.result().expect("finished"), probes)
    }

    #[test]
    fn a_router_that_gives_the_mtu_ends_it_in_two_probes() {
        assert_eq!(run(1500, 1400, Some(1400), false), (Some(1400), 2));
        assert_eq!(run(1500, 1500, None, false), (Some(1500), 1));
    }

    #[test]
    fn silent_or_vague_routers_get_a_binary_search() {
        let (mtu, probes) = run(1500, 1400, None, false);
        assert_eq!(mtu, Some(1400));
        assert!(probes <= MAX_PROBES);
        assert_eq!(run(1500, 1280, Some(0), false).0, Some(1280), "a router that gives no MTU");
        assert_eq!(run(1500, 1492, Some(9000), false).0, Some(1492), "a nonsense MTU");
    }

    #[test]
    fn a_host_that_never_answers_has_no_mtu() {
        assert_eq!(run(1500, 1500, None, true).0, None);
    }
}
