//! Tests over a series of answers: how the initial sequence numbers advance, which kind of
//! counter fills the IP identification field, and what clock drives the TCP timestamps.
//!
//! All of it is arithmetic on at most a few dozen samples; the inputs are bounded by the caller
//! (six SYNs, a few resets, a few echoes, the port scan's SYN-ACKs capped in
//! [`crate::fingerprint`]).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the initial sequence numbers of consecutive SYN-ACKs advance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IsnStats {
    /// Greatest common divisor of the increments (1 for random ISNs; 64000 for stacks that add a
    /// constant).
    pub gcd: u32,
    /// Mean increment per second.
    pub rate: f64,
    /// Standard deviation of the per-second increments, divided by the GCD when it exceeds 9:
    /// how hard the next ISN is to guess.
    pub spread: f64,
}

impl IsnStats {
    /// `log2(rate)` rounded down, 0 for rates below 1/s: the bucket the database compares.
    pub fn rate_log2(&self) -> i64 {
        log2_floor(self.rate)
    }

    /// `log2(spread)` rounded down: the predictability bucket (0 = trivially predictable, ≥ 20
    /// = random 32-bit numbers).
    pub fn spread_log2(&self) -> i64 {
        log2_floor(self.spread)
    }

    /// A difficulty index for people, as normal output prints it: 8 × log2(spread + 1),
    /// rounded (0 for a constant increment, about 256 for random 32-bit numbers).
    pub fn difficulty(&self) -> u64 {
        let s = if self.spread.is_finite() { self.spread.max(0.0) } else { 0.0 };
        (8.0 * (s + 1.0).log2()).round() as u64
    }
}

fn log2_floor(x: f64) -> i64 {
    if x.is_finite() && x >= 1.0 {
        x.log2().floor() as i64
    } else {
        0
    }
}

/// The difference between two 32-bit sequence numbers, taking the shorter way round the circle.
fn seq_gap(a: u32, b: u32) -> u32 {
    let d = b.wrapping_sub(a);
    d.min(a.wrapping_sub(b))
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// ISN statistics from `(time sent, ISN)` pairs in the order sent. `None` with fewer than three
/// answers (two increments are the least that say anything about their spread).
pub fn isn_stats(samples: &[(Duration, u32)]) -> Option<IsnStats> {
    if samples.len() < 3 {
        return None;
    }
    let mut g = 0u32;
    let mut rates = Vec::with_capacity(samples.len());
    for w in samples.windows(2) {
        let d = seq_gap(w[0].1, w[1].1);
        g = gcd(g, d);
        // Probes are sent ≥ 1 ms apart; a zero interval (clock not advancing) counts as 1 ms.
        let dt = w[1].0.saturating_sub(w[0].0).as_secs_f64().max(0.001);
        rates.push(f64::from(d) / dt);
    }
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let var = rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    let mut spread = var.sqrt();
    if g > 9 {
        spread /= f64::from(g);
    }
    Some(IsnStats { gcd: g, rate: mean, spread })
}

/// What fills the IP identification field of a series of packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpIdClass {
    /// Always zero (Linux for packets with DF set).
    Zero,
    /// The same non-zero value every time.
    Fixed,
    /// A counter that goes up by small steps (one per packet the host sends).
    Incremental,
    /// A counter kept in host byte order on a little-endian machine: steps of 256 on the wire.
    IncrementalLe,
    /// Increasing, by larger steps than one counter per host would take (a busy global counter
    /// or random increments).
    RandomIncrements,
    /// Random values.
    Random,
}

impl IpIdClass {
    /// The word the database and the outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            IpIdClass::Zero => "zero",
            IpIdClass::Fixed => "fixed",
            IpIdClass::Incremental => "incremental",
            IpIdClass::IncrementalLe => "incremental-le",
            IpIdClass::RandomIncrements => "random-increments",
            IpIdClass::Random => "random",
        }
    }

    /// How normal output, grepable output and XML describe it, in nmap's words ("IP ID Sequence
    /// Generation: …"), which tools that read nmap's output key on.
    pub fn describe(self) -> &'static str {
        match self {
            IpIdClass::Zero => "All zeros",
            IpIdClass::Fixed => "Duplicated ipid (!)",
            IpIdClass::Incremental => "Incremental",
            IpIdClass::IncrementalLe => "Broken little-endian incremental",
            IpIdClass::RandomIncrements => "Random positive increments",
            IpIdClass::Random => "Randomized",
        }
    }
}

/// The class of a series of IP IDs in the order received. `None` with fewer than two.
pub fn ipid_class(ids: &[u16]) -> Option<IpIdClass> {
    if ids.len() < 2 {
        return None;
    }
    if ids.iter().all(|i| *i == 0) {
        return Some(IpIdClass::Zero);
    }
    let diffs: Vec<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    if diffs.iter().all(|d| *d == 0) {
        return Some(IpIdClass::Fixed);
    }
    // A step of 20000 or more (either way round the 16-bit circle) is no counter.
    if diffs.iter().any(|d| *d >= 20_000) {
        return Some(IpIdClass::Random);
    }
    if diffs.iter().all(|d| *d % 256 == 0 && *d <= 5120) {
        return Some(IpIdClass::IncrementalLe);
    }
    // One probe answered per step, plus what else the host sends meanwhile on a quiet network.
    if diffs.iter().all(|d| *d <= 10) {
        return Some(IpIdClass::Incremental);
    }
    Some(IpIdClass::RandomIncrements)
}

/// The TCP timestamp clock of a host.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TsClock {
    /// Every timestamp was zero.
    Zero,
    /// The values do not follow one clock (per-connection random offsets, as Linux's default
    /// `tcp_timestamps=1`): no rate, no uptime.
    Unrelated,
    /// One clock.
    Ticking {
        /// Its nominal rate in Hz (the measured rate snapped to a usual one when within 15 %).
        hz: u32,
        /// The measured rate in Hz.
        measured: f64,
        /// The last value seen.
        last: u32,
    },
}

/// The usual timestamp clock rates.
const USUAL_HZ: [u32; 9] = [2, 10, 100, 128, 200, 250, 512, 1000, 1024];

/// The timestamp clock from `(time received, TSval)` pairs. `None` with fewer than two samples
/// or when they span less than 50 ms (too short to tell a rate).
pub fn ts_clock(samples: &[(Duration, u32)]) -> Option<TsClock> {
    if samples.len() < 2 {
        return None;
    }
    if samples.iter().all(|s| s.1 == 0) {
        return Some(TsClock::Zero);
    }
    let first = samples.first()?;
    let last = samples.last()?;
    let span = last.0.saturating_sub(first.0).as_secs_f64();
    if span < 0.05 {
        return None;
    }
    let fit = fit_rate(samples);
    // Each step must agree with the overall rate: unrelated clocks give steps of random size and
    // sign. Steps are short (~100 ms), so a slow clock's ±1 tick and the network's jitter are
    // allowed for.
    let plausible = fit.is_finite() && fit > 0.5 && fit < 100_000.0;
    let consistent = plausible
        && samples.windows(2).all(|w| {
            let dt = w[1].0.saturating_sub(w[0].0).as_secs_f64();
            let ticks = f64::from(w[1].1.wrapping_sub(w[0].1) as i32);
            let expected = fit * dt;
            (ticks - expected).abs() <= 2.0 + 0.25 * expected.abs() + fit * 0.01
        });
    if !consistent {
        return Some(TsClock::Unrelated);
    }
    let hz = USUAL_HZ
        .iter()
        .copied()
        .find(|h| (fit / f64::from(*h) - 1.0).abs() <= 0.15)
        .unwrap_or_else(|| fit.round().clamp(1.0, 100_000.0) as u32);
    Some(TsClock::Ticking { hz, measured: fit, last: last.1 })
}

/// Least-squares slope of TSval over time (ticks per second), unwrapping 32-bit wraps between
/// neighbours.
fn fit_rate(samples: &[(Duration, u32)]) -> f64 {
    let Some(first) = samples.first() else { return f64::NAN };
    let mut acc = 0f64;
    let mut prev = first.1;
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .map(|(t, v)| {
            acc += f64::from(v.wrapping_sub(prev) as i32);
            prev = *v;
            (t.saturating_sub(first.0).as_secs_f64(), acc)
        })
        .collect();
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        f64::NAN
    } else {
        sxy / sxx
    }
}

/// What the timestamp clock says of the host's uptime, in seconds: its last value over its rate,
/// when the clock is one clock, ticks at a usual rate, and the result is under ten years. (A
/// clock with a random offset per boot or per connection reads as some other time; stacks that
/// start the clock at boot, as Linux with `tcp_timestamps=2`, give the real uptime, modulo the
/// 32-bit wrap.)
pub fn uptime(clock: &TsClock) -> Option<u64> {
    match clock {
        TsClock::Ticking { hz, last, .. } if USUAL_HZ.contains(hz) && *last > 0 => {
            let secs = u64::from(*last) / u64::from(*hz);
            (secs < 10 * 365 * 86_400).then_some(secs)
        }
        _ => None,
    }
}

/// The host's clock skew against ours in parts per million (positive: its clock runs fast),
/// from a timestamp clock that ticks at a usual rate, measured over at least `min_span` — short
/// spans measure network jitter, not skew.
pub fn clock_skew_ppm(samples: &[(Duration, u32)], min_span: Duration) -> Option<f64> {
    let clock = ts_clock(samples)?;
    let TsClock::Ticking { hz, measured, .. } = clock else { return None };
    let span = samples.last()?.0.saturating_sub(samples.first()?.0);
    if span < min_span || samples.len() < 4 || !USUAL_HZ.contains(&hz) {
        return None;
    }
    Some((measured / f64::from(hz) - 1.0) * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn isn_of_a_constant_increment_stack() {
        // 64000 per probe, probes 100 ms apart: gcd 64000, no spread.
        let s: Vec<(Duration, u32)> = (0..6).map(|i| (ms(100 * i), 1_000u32.wrapping_add(64_000 * i as u32))).collect();
        let st = isn_stats(&s).unwrap();
        assert_eq!(st.gcd, 64_000);
        assert!((st.rate - 640_000.0).abs() < 1.0, "{}", st.rate);
        assert_eq!(st.spread_log2(), 0);
        assert_eq!(st.rate_log2(), 19);
    }

    #[test]
    fn isn_of_random_numbers_is_hard_to_predict() {
        let isns = [0x1234_5678u32, 0x9abc_def0, 0x0fed_cba9, 0x7654_3210, 0xdead_beef, 0x0bad_f00d];
        let s: Vec<(Duration, u32)> = isns.iter().enumerate().map(|(i, v)| (ms(100 * i as u64), *v)).collect();
        let st = isn_stats(&s).unwrap();
        assert!(st.gcd < 10, "gcd {}", st.gcd);
        assert!(st.spread_log2() >= 28, "spread {}", st.spread_log2());
        assert!(isn_stats(&s[..2]).is_none());
    }

    #[test]
    fn isn_wraps_take_the_short_way() {
        let s = [(ms(0), u32::MAX - 10), (ms(100), 5), (ms(200), 21)];
        let st = isn_stats(&s).unwrap();
        assert_eq!(st.gcd, 16);
    }

    #[test]
    fn ip_id_classes() {
        assert_eq!(ipid_class(&[0, 0, 0]), Some(IpIdClass::Zero));
        assert_eq!(ipid_class(&[7, 7, 7]), Some(IpIdClass::Fixed));
        assert_eq!(ipid_class(&[100, 101, 103, 104]), Some(IpIdClass::Incremental));
        assert_eq!(ipid_class(&[65534, 65535, 0, 1]), Some(IpIdClass::Incremental));
        assert_eq!(ipid_class(&[0x0100, 0x0200, 0x0400]), Some(IpIdClass::IncrementalLe));
        assert_eq!(ipid_class(&[100, 700, 1500, 1900]), Some(IpIdClass::RandomIncrements));
        assert_eq!(ipid_class(&[100, 40_000, 7, 20_000]), Some(IpIdClass::Random));
        assert_eq!(ipid_class(&[1]), None);
    }

    #[test]
    fn a_millisecond_clock_gives_rate_and_uptime() {
        // Up 3 days; answers 100 ms apart with up to 3 ms of jitter.
        let base = 3 * 86_400 * 1000u32;
        let jitter = [0u64, 2, 1, 3, 0, 2];
        let s: Vec<(Duration, u32)> =
            (0..6).map(|i| (ms(100 * i + jitter[i as usize]), base + 100 * i as u32)).collect();
        let c = ts_clock(&s).unwrap();
        let TsClock::Ticking { hz, .. } = c else { panic!("{c:?}") };
        assert_eq!(hz, 1000);
        let up = uptime(&c).unwrap();
        assert!((up as i64 - 3 * 86_400).abs() <= 1, "{up}");
    }

    #[test]
    fn a_slow_clock_with_rounding() {
        // 100 Hz: 10 ticks per 100 ms, ±1 tick of rounding.
        let vals = [500u32, 510, 519, 530, 540, 549];
        let s: Vec<(Duration, u32)> = vals.iter().enumerate().map(|(i, v)| (ms(100 * i as u64), *v)).collect();
        assert!(matches!(ts_clock(&s), Some(TsClock::Ticking { hz: 100, .. })), "{:?}", ts_clock(&s));
    }

    #[test]
    fn per_connection_offsets_are_no_clock() {
        let vals = [2_394_905_345u32, 4_191_350_695, 865_829_799, 1_000_000, 3_000_000_000, 77];
        let s: Vec<(Duration, u32)> = vals.iter().enumerate().map(|(i, v)| (ms(100 * i as u64), *v)).collect();
        let c = ts_clock(&s).unwrap();
        assert_eq!(c, TsClock::Unrelated);
        assert_eq!(uptime(&c), None);
        assert_eq!(ts_clock(&[(ms(0), 0), (ms(100), 0)]), Some(TsClock::Zero));
        assert_eq!(ts_clock(&[(ms(0), 5)]), None);
    }

    #[test]
    fn skew_over_a_long_span() {
        // A 1000 Hz clock running 200 ppm fast, sampled every 2 s for 20 s.
        let s: Vec<(Duration, u32)> =
            (0..11).map(|i| (Duration::from_secs(2 * i), 10_000 + (2000.4 * i as f64) as u32)).collect();
        let ppm = clock_skew_ppm(&s, Duration::from_secs(10)).unwrap();
        assert!((ppm - 200.0).abs() < 5.0, "{ppm}");
        assert_eq!(clock_skew_ppm(&s[..3], Duration::from_secs(10)), None);
    }

    #[test]
    fn wraps_in_the_timestamp_clock() {
        let s = [(ms(0), u32::MAX - 99), (ms(100), 0), (ms(200), 100)];
        assert!(matches!(ts_clock(&s), Some(TsClock::Ticking { hz: 1000, last: 100, .. })));
    }
}
