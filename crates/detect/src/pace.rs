//! Pacing of detection probes: `--max-rate` (probes per second over the whole detector) and
//! `--scan-delay` (least time between two probes to one host). A probe is one TCP connection or
//! one UDP probe (with its one resend); the QUIC probes count as one.
//!
//! Slots are handed out in order under a mutex and then slept for outside it, so waiting probes
//! hold no socket and no lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Hosts whose next slot is remembered; past this the oldest entries are forgotten (their slots
/// are long past anyway), so memory stays bounded on huge scans.
const MAX_HOSTS: usize = 4096;

/// Hands out send times.
#[derive(Debug, Default)]
pub struct Pacer {
    /// Gap between any two probes (`1 / --max-rate`).
    global_gap: Duration,
    /// Gap between two probes to one host (`--scan-delay`).
    host_gap: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_any: Option<Instant>,
    next_host: HashMap<IpAddr, Instant>,
}

impl Pacer {
    /// A pacer for at most `max_rate` probes per second overall (`None`: unlimited) and at least
    /// `host_gap` between two probes to one host.
    pub fn new(max_rate: Option<f64>, host_gap: Duration) -> Pacer {
        let global_gap = match max_rate {
            Some(r) if r.is_finite() && r > 0.0 => Duration::from_secs_f64((1.0 / r).min(3600.0)),
            _ => Duration::ZERO,
        };
        Pacer { global_gap, host_gap, state: Mutex::default() }
    }

    /// Whether this pacer ever makes anyone wait.
    pub fn is_free(&self) -> bool {
        self.global_gap.is_zero() && self.host_gap.is_zero()
    }

    /// Wait for the next slot for a probe to `host`.
    pub async fn wait(&self, host: IpAddr) {
        if self.is_free() {
            return;
        }
        let at = {
            let Ok(mut st) = self.state.lock() else { return };
            let now = Instant::now();
            let mut at = now;
            if !self.global_gap.is_zero() {
                at = at.max(st.next_any.unwrap_or(now));
            }
            if !self.host_gap.is_zero() {
                at = at.max(st.next_host.get(&host).copied().unwrap_or(now));
                if st.next_host.len() >= MAX_HOSTS {
                    st.next_host.retain(|_, t| *t > now);
                }
                st.next_host.insert(host, at + self.host_gap);
            }
            if !self.global_gap.is_zero() {
                st.next_any = Some(at + self.global_gap);
            }
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the real clock (millisecond timers, late wake-ups): slots are handed out on a fixed
    /// schedule, so lateness does not add up and `--max-rate` holds within a few percent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn max_rate_holds_on_the_real_clock() {
        let p = std::sync::Arc::new(Pacer::new(Some(2000.0), Duration::ZERO));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let p = p.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        p.wait(IpAddr::from([198, 18, 0, i])).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 800 probes at 2,000 a second: 0.4 s. Never faster than the maximum; slower only by what
        // a loaded machine's late wake-ups cost (a schedule that let lateness add up would be
        // far slower: 800 late wake-ups). The exact figure is a benchmark's, not a test's.
        let rate = 800.0 / t0.elapsed().as_secs_f64();
        assert!(rate <= 2000.0 * 1.05, "faster than --max-rate: {rate}/s");
        assert!(rate >= 2000.0 * 0.5, "{rate}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_and_host_gap_space_the_probes() {
        let a: IpAddr = "198.18.0.10".parse().unwrap();
        let b: IpAddr = "198.18.0.11".parse().unwrap();
        // 10 probes per second: the 5th probe goes 400 ms after the first.
        let p = Pacer::new(Some(10.0), Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..5 {
            p.wait(a).await;
        }
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
        // 1 s between probes to one host, none between hosts.
        let p = Pacer::new(None, Duration::from_secs(1));
        let t0 = Instant::now();
        p.wait(a).await;
        p.wait(b).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        p.wait(a).await;
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        assert!(Pacer::new(None, Duration::ZERO).is_free());
        assert!(Pacer::new(Some(f64::NAN), Duration::ZERO).is_free());
    }
}
