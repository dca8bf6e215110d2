//! Timing: templates (`-T0`..`-T5`), per-host round-trip estimation, and the congestion window.
//!
//! | template | scan delay | max retries | initial window | initial / min / max RTT timeout |
//! |---|---|---|---|---|
//! | T0 paranoid   | 5 min  | 10 | 1  | 5 min / 100 ms / 10 s |
//! | T1 sneaky     | 15 s   | 10 | 1  | 15 s / 100 ms / 10 s |
//! | T2 polite     | 400 ms | 10 | 2  | 1 s / 100 ms / 10 s |
//! | T3 normal     | 0      | 6  | 4  | 1 s / 100 ms / 10 s |
//! | T4 aggressive | 0      | 3  | 8  | 500 ms / 100 ms / 1250 ms |
//! | T5 insane     | 0      | 2  | 16 | 250 ms / 50 ms / 300 ms |
//!
//! Delays, retries and initial windows are the user guide's; RTT timeouts follow nmap's templates
//! so that `-T4` means what nmap users expect. T0–T2 send one probe at a time (the window never
//! grows past the template's) because their whole point is to be slow.
//!
//! The per-probe timeout is `srtt + 4 * rttvar` (Jacobson/Karels, as TCP and nmap), clamped to the
//! template's bounds. The window grows on every answer (slow start, then additive) and halves when
//! a *retransmission* is answered — the one sign of loss a scanner can trust, because a dropped
//! first probe on a firewalled port looks just like a filtered port.
//!
//! [`Pacer`] spaces probes: `--max-rate` is a [`TokenBucket`] (at each wake-up the engine sends
//! the burst that is due, so the rate holds whatever the timer granularity), `--scan-delay` one
//! probe per gap (random up to `--max-scan-delay`). Both take the time, and the pacer the
//! randomness, as arguments, so they can be driven by a simulated clock.

use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What past scans taught about hosts (the front-end fills it from the scan history; empty
/// otherwise):
///
/// - round trips (learned timing): a host's estimator starts from its own past round trip, or
///   else from the largest one of its network (its /24, or /64 for IPv6), instead of from
///   nothing, so its first probes time out after a few round trips rather than after the
///   template's initial timeout;
/// - hosts seen up recently (`--fast-discovery`): they start up, reason `seen-up`, without
///   discovery probes (the facade sends those that then answer nothing through discovery).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learned {
    hosts: Arc<HashMap<IpAddr, Duration>>,
    networks: Arc<HashMap<IpAddr, Duration>>,
    up: Arc<HashSet<IpAddr>>,
}

/// The network an address is in, for learned timing: its /24, or its /64.
pub fn network_of(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
    }
}

impl Learned {
    /// From past hosts' round trips and the hosts seen up recently.
    pub fn new(rtts: impl IntoIterator<Item = (IpAddr, Duration)>, up: impl IntoIterator<Item = IpAddr>) -> Learned {
        let mut hosts = HashMap::new();
        let mut networks: HashMap<IpAddr, Duration> = HashMap::new();
        for (addr, rtt) in rtts {
            hosts.insert(addr, rtt);
            let n = networks.entry(network_of(addr)).or_insert(rtt);
            *n = (*n).max(rtt);
        }
        Learned { hosts: Arc::new(hosts), networks: Arc::new(networks), up: Arc::new(up.into_iter().collect()) }
    }

    /// The round trip to start `addr` from, if past scans measured it or its network.
    pub fn rtt(&self, addr: IpAddr) -> Option<Duration> {
        self.hosts.get(&addr).or_else(|| self.networks.get(&network_of(addr))).copied()
    }

    /// Whether `addr` was seen up recently enough to skip its discovery.
    pub fn seen_up(&self, addr: IpAddr) -> bool {
        self.up.contains(&addr)
    }

    /// The same, without the hosts seen up (their discovery is not skipped).
    pub fn without_up(&self) -> Learned {
        Learned { up: Arc::default(), ..self.clone() }
    }

    /// Whether nothing was learned.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.up.is_empty()
    }
}

/// A timing template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimingTemplate {
    /// `-T0`.
    Paranoid = 0,
    /// `-T1`.
    Sneaky = 1,
    /// `-T2`.
    Polite = 2,
    /// `-T3` (default).
    Normal = 3,
    /// `-T4`.
    Aggressive = 4,
    /// `-T5`.
    Insane = 5,
}

impl TimingTemplate {
    /// From the number after `-T`.
    pub fn from_level(level: u8) -> Option<TimingTemplate> {
        Some(match level {
            0 => TimingTemplate::Paranoid,
            1 => TimingTemplate::Sneaky,
            2 => TimingTemplate::Polite,
            3 => TimingTemplate::Normal,
            4 => TimingTemplate::Aggressive,
            5 => TimingTemplate::Insane,
            _ => return None,
        })
    }

    /// From a number or nmap's names (`paranoid`, `sneaky`, `polite`, `normal`, `aggressive`, `insane`).
    pub fn parse(s: &str) -> Option<TimingTemplate> {
        if let Ok(n) = s.parse::<u8>() {
            return TimingTemplate::from_level(n);
        }
        Some(match s.to_ascii_lowercase().as_str() {
            "paranoid" => TimingTemplate::Paranoid,
            "sneaky" => TimingTemplate::Sneaky,
            "polite" => TimingTemplate::Polite,
            "normal" => TimingTemplate::Normal,
            "aggressive" => TimingTemplate::Aggressive,
            "insane" => TimingTemplate::Insane,
            _ => return None,
        })
    }
}

/// Every timing knob of a scan. Start from [`Timing::template`], then apply user overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// The template this started from.
    pub template: TimingTemplate,
    /// Timeout of a probe before any RTT has been measured.
    pub initial_rtt_timeout: Duration,
    /// Lower bound of the adaptive timeout.
    pub min_rtt_timeout: Duration,
    /// Upper bound of the adaptive timeout.
    pub max_rtt_timeout: Duration,
    /// A fixed per-probe timeout that replaces the adaptive one (`--timeout`).
    pub fixed_timeout: Option<Duration>,
    /// Retransmissions allowed per probe.
    pub max_retries: u32,
    /// Initial congestion window (probes in flight).
    pub initial_cwnd: usize,
    /// Hard cap on probes in flight (`--max-parallelism`, else the descriptor budget).
    pub max_parallelism: usize,
    /// Floor on probes in flight (`--min-parallelism`).
    pub min_parallelism: usize,
    /// Minimum wait between two probes (`--scan-delay`).
    pub scan_delay: Duration,
    /// When set with `scan_delay`, each wait is random in `[scan_delay, max_scan_delay]`.
    pub max_scan_delay: Option<Duration>,
    /// Probes per second at most (`--max-rate`).
    pub max_rate: Option<f64>,
    /// Probes per second at least (`--min-rate`): the window is ignored while we are slower.
    pub min_rate: Option<f64>,
    /// Give up on a host after this long (`--host-timeout`); results so far are kept.
    pub host_timeout: Option<Duration>,
    /// Hosts scanned at once, at most.
    pub max_hostgroup: usize,
    /// Hosts scanned at once, at least (when that many remain).
    pub min_hostgroup: usize,
    /// Disable RTT adaptation and window growth (`--no-adaptive`): fixed timeout, fixed window.
    pub adaptive: bool,
    /// What past scans taught: round trips to start hosts from, hosts seen up recently.
    pub learned: Learned,
}

impl Timing {
    /// The knobs of a template.
    pub fn template(t: TimingTemplate) -> Timing {
        let ms = Duration::from_millis;
        let (delay, retries, cwnd, init, min, max) = match t {
            TimingTemplate::Paranoid => (ms(300_000), 10, 1, ms(300_000), ms(100), ms(10_000)),
            TimingTemplate::Sneaky => (ms(15_000), 10, 1, ms(15_000), ms(100), ms(10_000)),
            TimingTemplate::Polite => (ms(400), 10, 2, ms(1000), ms(100), ms(10_000)),
            TimingTemplate::Normal => (ms(0), 6, 4, ms(1000), ms(100), ms(10_000)),
            TimingTemplate::Aggressive => (ms(0), 3, 8, ms(500), ms(100), ms(1250)),
            TimingTemplate::Insane => (ms(0), 2, 16, ms(250), ms(50), ms(300)),
        };
        let slow = t <= TimingTemplate::Polite;
        Timing {
            template: t,
            initial_rtt_timeout: init,
            min_rtt_timeout: min,
            max_rtt_timeout: max,
            fixed_timeout: None,
            max_retries: retries,
            initial_cwnd: cwnd,
            max_parallelism: if slow { cwnd } else { 5000 },
            min_parallelism: 1,
            scan_delay: delay,
            max_scan_delay: None,
            max_rate: None,
            min_rate: None,
            host_timeout: None,
            max_hostgroup: if slow { 1 } else { 1024 },
            min_hostgroup: 1,
            adaptive: true,
            learned: Learned::default(),
        }
    }
}

impl Timing {
    /// Whether probes are paced (`--scan-delay`, `--max-rate`) rather than sent as the window allows.
    pub fn paced(&self) -> bool {
        !self.scan_delay.is_zero() || self.max_rate.is_some()
    }

    /// Which kinds of probe may go out now, given `allowed` (from [`Timing::allowed_in_flight`])
    /// and the probes in flight, `disc` of them discovery probes: (port probes, discovery
    /// probes). Discovery probes have a limit of their own (`--max-parallelism`, at most 4096)
    /// apart from the congestion window: most addresses of a sweep never answer, and their
    /// silence is not congestion. Paced scans (`--scan-delay`, `--max-rate`) keep one rule for all.
    pub fn room(&self, allowed: usize, in_flight: usize, disc: usize) -> (bool, bool) {
        let ports = in_flight.saturating_sub(disc) < allowed;
        let discovery = if self.paced() { ports } else { disc < self.max_parallelism.clamp(1, 4096) };
        (ports, discovery)
    }

    /// Probes allowed in flight: the window's, or more while the scan is behind `--min-rate`.
    pub fn allowed_in_flight(&self, window: &Window, sent: u64, elapsed: Duration) -> usize {
        let allowed = window.allowed();
        match self.min_rate {
            Some(rate) if (sent as f64) < rate * elapsed.as_secs_f64() => self.max_parallelism.max(allowed),
            _ => allowed,
        }
    }
}

/// How long a late wake-up may be before a token bucket loses rate: its depth is one token plus
/// this much worth of tokens. Timers here fire with millisecond granularity, a few late.
const BUCKET_SLACK: Duration = Duration::from_millis(5);

/// Tokens are counted in floating point: a token short by less than this (rounding) is whole.
const TOKEN_EPSILON: f64 = 1e-6;

/// A token bucket: `rate` tokens a second, at most `depth` saved up. One token is one probe.
///
/// An engine asks at each wake-up how many probes are due and sends them all, so a wake-up that
/// comes late sends a bigger burst instead of losing rate. The depth bounds that burst: one token
/// plus 5 ms worth (`BUCKET_SLACK`), so a scan that could not send for a while (a full window)
/// does not make up for it later with a flood.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Seconds per token.
    interval: f64,
    depth: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `rate` tokens per second (a positive, finite rate; anything else is treated as
    /// one token per hour), holding one token at `now`.
    pub fn new(rate: f64, now: Instant) -> TokenBucket {
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 / 3600.0 };
        let depth = 1.0 + rate * BUCKET_SLACK.as_secs_f64();
        TokenBucket { interval: 1.0 / rate, depth, tokens: 1.0, last: now }
    }

    fn refill(&mut self, now: Instant) {
        // A clock that went backwards (it cannot with `Instant`, but a simulation may) adds nothing.
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        if dt > 0.0 {
            self.tokens = (self.tokens + dt / self.interval).min(self.depth);
            self.last = now;
        }
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        (self.tokens + TOKEN_EPSILON).floor() as u64
    }

    /// Take one token if one is available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens + TOKEN_EPSILON >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Give back a token taken for a probe that did not go out after all.
    pub fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.depth);
    }

    /// When the next whole token is available (the last refill time if one already is).
    /// Rounded up to the nanosecond, so that at that instant the token is there.
    pub fn next_token_at(&self) -> Instant {
        if self.tokens + TOKEN_EPSILON >= 1.0 {
            return self.last;
        }
        let nanos = ((1.0 - self.tokens) * self.interval * 1e9).ceil().max(1.0);
        self.last + Duration::from_nanos(nanos as u64)
    }
}

/// Spaces the probes of one engine: free, one probe per `--scan-delay` gap (jittered up to
/// `--max-scan-delay`, and never shorter than `--max-rate` allows), or a token bucket for
/// `--max-rate` alone.
#[derive(Debug, Clone)]
pub enum Pacer {
    /// No pacing: the window alone decides.
    Free,
    /// One probe per gap.
    Gap {
        /// Least wait between two probes.
        min: Duration,
        /// Largest wait (jitter), if above `min`.
        max: Option<Duration>,
        /// No wait below one over `--max-rate`.
        rate: Option<f64>,
        /// When the next probe may go.
        next: Instant,
    },
    /// `--max-rate` as a token bucket.
    Bucket(TokenBucket),
}

impl Pacer {
    /// The pacer for these timing knobs, starting at `now`.
    pub fn new(timing: &Timing, now: Instant) -> Pacer {
        let rate = timing.max_rate.filter(|r| r.is_finite() && *r > 0.0);
        if !timing.scan_delay.is_zero() {
            let max = timing.max_scan_delay.filter(|m| *m > timing.scan_delay);
            return Pacer::Gap { min: timing.scan_delay, max, rate, next: now };
        }
        match rate {
            Some(r) => Pacer::Bucket(TokenBucket::new(r, now)),
            None => Pacer::Free,
        }
    }

    /// Whether this pacer never makes anyone wait.
    pub fn is_free(&self) -> bool {
        matches!(self, Pacer::Free)
    }

    /// May a probe go at `now`? (Asking does not use the slot up: [`Pacer::on_sent`] does.)
    pub fn ready(&mut self, now: Instant) -> bool {
        match self {
            Pacer::Free => true,
            Pacer::Gap { next, .. } => now >= *next,
            Pacer::Bucket(b) => b.available(now) >= 1,
        }
    }

    /// A probe went at `now`: take its token, or start the next gap (drawing its jitter from `rng`).
    pub fn on_sent(&mut self, now: Instant, rng: &mut impl Rng) {
        match self {
            Pacer::Free => {}
            Pacer::Gap { min, max, rate, next } => {
                let mut gap = match max {
                    Some(m) => rng.random_range(*min..=*m),
                    None => *min,
                };
                if let Some(r) = rate {
                    gap = gap.max(Duration::from_secs_f64(1.0 / *r));
                }
                *next = now + gap;
            }
            Pacer::Bucket(b) => {
                b.try_take(now);
            }
        }
    }

    /// A probe counted by [`Pacer::on_sent`] did not go out (the send queue was full).
    pub fn refund(&mut self) {
        match self {
            Pacer::Bucket(b) => b.refund(),
            // One probe per gap: the retry simply waits for the next gap.
            Pacer::Free | Pacer::Gap { .. } => {}
        }
    }

    /// When a probe may next go, if that is after `now` (`None`: now, or never held back).
    pub fn wait_until(&self, now: Instant) -> Option<Instant> {
        let at = match self {
            Pacer::Free => return None,
            Pacer::Gap { next, .. } => *next,
            Pacer::Bucket(b) => b.next_token_at(),
        };
        (at > now).then_some(at)
    }
}

impl Default for Timing {
    fn default() -> Timing {
        Timing::template(TimingTemplate::Normal)
    }
}

/// Smoothed round-trip time of one host (RFC 6298 arithmetic, in microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct RttEstimator {
    srtt_us: Option<f64>,
    rttvar_us: f64,
}

impl RttEstimator {
    /// An estimator that starts from a round trip measured before (learned timing), as if it
    /// were this scan's first sample: the variance is half of it, as RFC 6298 sets it then.
    pub fn learned(rtt: Duration) -> RttEstimator {
        let r = rtt.as_secs_f64() * 1e6;
        RttEstimator { srtt_us: Some(r), rttvar_us: r / 2.0 }
    }

    /// Take one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64() * 1e6;
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2.0;
            }
            Some(s) => {
                self.rttvar_us = 0.75 * self.rttvar_us + 0.25 * (s - r).abs();
                self.srtt_us = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    /// Smoothed RTT in microseconds, if any sample was taken.
    pub fn srtt_us(&self) -> Option<u64> {
        self.srtt_us.map(|s| s.round() as u64)
    }

    /// The probe timeout this host deserves under `timing`.
    pub fn timeout(&self, timing: &Timing) -> Duration {
        if let Some(t) = timing.fixed_timeout {
            return t;
        }
        match self.srtt_us {
            Some(s) if timing.adaptive => {
                let t = Duration::from_secs_f64((s + 4.0 * self.rttvar_us).max(0.0) / 1e6);
                t.clamp(timing.min_rtt_timeout, timing.max_rtt_timeout.max(timing.min_rtt_timeout))
            }
            _ => timing.initial_rtt_timeout,
        }
    }
}

/// The congestion window: how many probes may be in flight.
#[derive(Debug, Clone)]
pub struct Window {
    cwnd: f64,
    ssthresh: f64,
    min: f64,
    max: f64,
    adaptive: bool,
}

impl Window {
    /// A window for these timing knobs.
    pub fn new(timing: &Timing) -> Window {
        let max = timing.max_parallelism.max(1) as f64;
        let min = (timing.min_parallelism.max(1) as f64).min(max);
        let start = (timing.initial_cwnd as f64).clamp(min, max);
        Window { cwnd: start, ssthresh: max, min, max, adaptive: timing.adaptive }
    }

    /// Probes allowed in flight now.
    pub fn allowed(&self) -> usize {
        self.cwnd.floor() as usize
    }

    /// An answer arrived.
    pub fn on_reply(&mut self) {
        if !self.adaptive {
            return;
        }
        let inc = if self.cwnd < self.ssthresh { 1.0 } else { 1.0 / self.cwnd.max(1.0) * 4.0 };
        self.cwnd = (self.cwnd + inc).min(self.max);
    }

    /// A probe went unanswered. That is no loss signal (dead hosts and firewalls are silent by
    /// nature), and the probe left our queue, so in slow start it counts like an answer; past
    /// slow start it does not grow the window.
    pub fn on_silence(&mut self) {
        if !self.adaptive {
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd = (self.cwnd + 1.0).min(self.max);
        }
    }

    /// A retransmission was answered: the first copy was lost. Halve.
    pub fn on_loss(&mut self) {
        if !self.adaptive {
            return;
        }
        self.ssthresh = (self.cwnd / 2.0).max(self.min);
        self.cwnd = self.ssthresh;
    }

    /// The machine ran out of something (descriptors, ports, buffers): shrink to what was in flight.
    pub fn on_local_pressure(&mut self, in_flight: usize) {
        let target = (in_flight as f64 / 2.0).max(self.min);
        self.cwnd = self.cwnd.min(target);
        self.ssthresh = self.cwnd;
        self.max = self.max.min((in_flight as f64).max(self.min));
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn learned_rtt_starts_a_host_from_its_own_or_its_networks_round_trip() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let ms = Duration::from_millis;
        let learned = Learned::new(
            [(ip("198.18.0.10"), ms(2)), (ip("198.18.0.11"), ms(8)), (ip("fd00::1"), ms(4))],
            [ip("198.18.0.10")],
        );
        assert_eq!(learned.rtt(ip("198.18.0.10")), Some(ms(2)));
        assert_eq!(learned.rtt(ip("198.18.0.77")), Some(ms(8)), "the largest of its /24");
        assert_eq!(learned.rtt(ip("198.18.1.10")), None);
        assert_eq!(learned.rtt(ip("fd00::ffff:1")), Some(ms(4)), "its /64");
        assert!(learned.seen_up(ip("198.18.0.10")) && !learned.seen_up(ip("198.18.0.11")));
        assert!(!learned.without_up().seen_up(ip("198.18.0.10")));
        assert_eq!(learned.without_up().rtt(ip("198.18.0.10")), Some(ms(2)));
        assert_eq!(network_of(ip("fd00:0:0:1::5")), ip("fd00:0:0:1::"));
        // A learned start: the first timeout is three round trips (RFC 6298's first sample),
        // within the template's bounds, instead of the template's initial timeout.
        let t = Timing::default();
        assert_eq!(RttEstimator::default().timeout(&t), t.initial_rtt_timeout);
        assert_eq!(RttEstimator::learned(ms(50)).timeout(&t), ms(150));
        assert_eq!(RttEstimator::learned(ms(2)).timeout(&t), t.min_rtt_timeout);
    }

    #[test]
    fn discovery_has_room_of_its_own() {
        let t = Timing::default();
        // The window is full of port probes: discovery probes may still go out, not the reverse.
        assert_eq!(t.room(10, 10, 0), (false, true));
        assert_eq!(t.room(10, 4105, 4096), (true, false));
        assert_eq!(t.room(10, 12, 3), (true, true));
        // Paced scans keep one rule.
        let paced = Timing { max_rate: Some(100.0), ..Timing::default() };
        assert_eq!(paced.room(10, 10, 0), (false, false));
    }

    use super::*;

    #[test]
    fn templates_match_the_guide_table() {
        let t = |n| Timing::template(TimingTemplate::from_level(n).unwrap());
        assert_eq!(t(0).scan_delay, Duration::from_secs(300));
        assert_eq!(t(1).scan_delay, Duration::from_secs(15));
        assert_eq!(t(2).scan_delay, Duration::from_millis(400));
        assert_eq!([t(0).max_retries, t(3).max_retries, t(4).max_retries, t(5).max_retries], [10, 6, 3, 2]);
        assert_eq!([t(0).initial_cwnd, t(2).initial_cwnd, t(3).initial_cwnd, t(5).initial_cwnd], [1, 2, 4, 16]);
        assert!(TimingTemplate::from_level(6).is_none());
        assert_eq!(TimingTemplate::parse("aggressive"), Some(TimingTemplate::Aggressive));
    }

    #[test]
    fn rtt_timeout_adapts_and_is_clamped() {
        let timing = Timing::template(TimingTemplate::Aggressive);
        let mut e = RttEstimator::default();
        assert_eq!(e.timeout(&timing), Duration::from_millis(500));
        for _ in 0..20 {
            e.sample(Duration::from_micros(200));
        }
        assert_eq!(e.timeout(&timing), Duration::from_millis(100), "clamped to min");
        for _ in 0..50 {
            e.sample(Duration::from_secs(3));
        }
        assert_eq!(e.timeout(&timing), Duration::from_millis(1250), "clamped to max");
        let mut fixed = timing.clone();
        fixed.fixed_timeout = Some(Duration::from_millis(777));
        assert_eq!(e.timeout(&fixed), Duration::from_millis(777));
    }

    #[test]
    fn window_grows_halves_and_respects_caps() {
        let mut timing = Timing::template(TimingTemplate::Normal);
        timing.max_parallelism = 100;
        let mut w = Window::new(&timing);
        assert_eq!(w.allowed(), 4);
        for _ in 0..10 {
            w.on_reply();
        }
        assert_eq!(w.allowed(), 14);
        w.on_loss();
        assert_eq!(w.allowed(), 7);
        for _ in 0..10_000 {
            w.on_reply();
        }
        assert_eq!(w.allowed(), 100);
        w.on_local_pressure(40);
        assert!(w.allowed() <= 20);
        for _ in 0..10_000 {
            w.on_reply();
        }
        assert!(w.allowed() <= 40, "never again above what the machine could hold");
    }

    /// Drive a pacer as an engine does, on a simulated clock whose timer fires at millisecond
    /// granularity (rounded up) and up to `late_us` late: at each wake-up send every probe that
    /// is due, then sleep until the next one. Returns the probes sent in `secs` seconds.
    fn simulate(timing: &Timing, secs: f64, late_us: u64) -> u64 {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(secs);
        let mut pacer = Pacer::new(timing, t0);
        let mut now = t0;
        let mut sent = 0;
        while now < end {
            while pacer.ready(now) {
                pacer.on_sent(now, &mut rng);
                sent += 1;
            }
            let at = pacer.wait_until(now).expect("a paced scan waits");
            let wait_us = at.duration_since(now).as_micros() as u64;
            let wait_ms = wait_us.div_ceil(1000).max(1);
            now += Duration::from_millis(wait_ms) + Duration::from_micros(rng.random_range(0..=late_us));
        }
        sent
    }

    #[test]
    fn max_rate_is_achieved_within_a_few_percent_despite_a_coarse_late_timer() {
        for (rate, secs) in [(10.0, 60.0), (1000.0, 5.0), (10_000.0, 2.0), (100_000.0, 1.0), (1_000_000.0, 0.2)] {
            let timing = Timing { max_rate: Some(rate), ..Timing::default() };
            for late_us in [0, 2000] {
                let sent = simulate(&timing, secs, late_us) as f64;
                let achieved = sent / secs;
                assert!((achieved / rate - 1.0).abs() < 0.02, "rate {rate}, late {late_us} us: achieved {achieved}");
            }
        }
    }

    #[test]
    fn token_bucket_bursts_are_bounded_by_its_depth() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100_000.0, t0);
        // Idle for a second: at most one token plus 5 ms worth are saved up, not 100,000.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.available(later), 501);
        let mut n = 0;
        while b.try_take(later) {
            n += 1;
        }
        assert_eq!(n, 501);
        assert_eq!(b.next_token_at(), later + Duration::from_micros(10));
        b.refund();
        assert!(b.try_take(later));
        // Slow rates still hold one whole token.
        let mut slow = TokenBucket::new(0.5, t0);
        assert!(slow.try_take(t0));
        assert!(!slow.try_take(t0 + Duration::from_millis(1999)));
        assert!(slow.try_take(t0 + Duration::from_secs(2)));
        // Nonsense rates do not divide by zero.
        assert_eq!(TokenBucket::new(f64::NAN, t0).available(t0 + Duration::from_secs(60)), 1);
    }

    #[test]
    fn scan_delay_sends_one_probe_per_gap_with_jitter() {
        let fixed = Timing { scan_delay: Duration::from_millis(100), ..Timing::default() };
        // One probe per 100 ms (+ up to 1 ms of timer rounding per probe).
        let sent = simulate(&fixed, 10.0, 0);
        assert!((95..=101).contains(&sent), "{sent}");
        let jitter = Timing { max_scan_delay: Some(Duration::from_millis(300)), ..fixed.clone() };
        // Gaps uniform in [100, 300] ms: 200 ms on average.
        let sent = simulate(&jitter, 60.0, 0);
        assert!((270..=330).contains(&sent), "{sent}");
        // --max-rate below the delay's rate: the rate wins.
        let both = Timing { max_rate: Some(2.0), ..fixed };
        let sent = simulate(&both, 10.0, 0);
        assert!((19..=21).contains(&sent), "{sent}");
        let mut free = Pacer::new(&Timing::default(), Instant::now());
        assert!(free.is_free() && free.ready(Instant::now()) && free.wait_until(Instant::now()).is_none());
    }

    #[test]
    fn non_adaptive_window_is_fixed() {
        let mut timing = Timing::template(TimingTemplate::Normal);
        timing.adaptive = false;
        let mut w = Window::new(&timing);
        w.on_reply();
        w.on_loss();
        assert_eq!(w.allowed(), 4);
    }
}
