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

use std::time::Duration;

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
        }
    }
}

impl Timing {
    /// Whether probes are paced (`--scan-delay`, `--max-rate`) rather than sent as the window allows.
    pub fn paced(&self) -> bool {
        !self.scan_delay.is_zero() || self.max_rate.is_some()
    }

    /// The wait before the next paced probe: `--scan-delay`, or a random value up to
    /// `--max-scan-delay` (jitter), and never less than `--max-rate` allows.
    pub fn pacing_gap(&self) -> Duration {
        use rand::Rng;
        let mut gap = self.scan_delay;
        if let Some(max) = self.max_scan_delay.filter(|m| *m > self.scan_delay) {
            gap = rand::rng().random_range(self.scan_delay..=max);
        }
        if let Some(rate) = self.max_rate.filter(|r| *r > 0.0) {
            gap = gap.max(Duration::from_secs_f64(1.0 / rate));
        }
        gap
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
