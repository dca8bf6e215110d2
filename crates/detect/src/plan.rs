//! Which probes a port gets, in which order, and how long each may take: pure functions of the
//! database, the port, the intensity and the measured round-trip time.
//!
//! Probes come in two waves. The first holds the banner grab (`null`) and every probe made for
//! this port (its `ports` list names it), whatever the intensity. The second holds the other
//! probes whose rarity is at most the intensity, rarest last; it starts after a short grace time
//! if the first wave has not identified the service, not after the first wave's full timeouts.
//! Within a wave, probes run in parallel, each on its own connection or socket.

use crate::db::{ProbeDb, Transport};
use std::time::Duration;

/// The probes for one port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Sent at once.
    pub first: Vec<usize>,
    /// Sent after the grace time (or as soon as the first wave is over).
    pub rest: Vec<usize>,
}

/// Choose the plain probes for `port` at `intensity` (0–9). Probes marked `tls` are left out:
/// they run inside TLS, once the port is found to speak it ([`plan_tls`]).
pub fn plan(db: &ProbeDb, transport: Transport, port: u16, intensity: u8) -> Plan {
    let mut p = Plan::default();
    for (i, probe) in db.probes().iter().enumerate() {
        if probe.transport != transport || probe.tls {
            continue;
        }
        if probe.is_null() || probe.ports.contains(port) {
            p.first.push(i);
        } else if probe.rarity <= intensity {
            p.rest.push(i);
        }
    }
    // Stable: equal rarities keep the database's order.
    p.rest.sort_by_key(|i| db.probes()[*i].rarity);
    p
}

/// Choose the probes run inside TLS on `port`: every TCP probe, marked `tls` or not (a service
/// behind TLS answers its ordinary probes), in the same two waves as [`plan`]. A plain probe is
/// left out when a `tls` probe sends the same bytes and reads its answers through `fallback`
/// (`https-get` and `http-get`): one request, not two.
pub fn plan_tls(db: &ProbeDb, port: u16, intensity: u8) -> Plan {
    let probes = db.probes();
    let mut p = Plan::default();
    for (i, probe) in probes.iter().enumerate() {
        if probe.transport != Transport::Tcp {
            continue;
        }
        let covered = !probe.tls
            && probes.iter().any(|q| {
                q.tls && q.transport == Transport::Tcp && q.payload == probe.payload && q.fallback.contains(&probe.name)
            });
        if covered {
            continue;
        }
        if probe.is_null() || probe.ports.contains(port) {
            p.first.push(i);
        } else if probe.rarity <= intensity {
            p.rest.push(i);
        }
    }
    p.rest.sort_by_key(|i| probes[*i].rarity);
    p
}

/// Timeouts derived from the smoothed RTT of the host, as the port scan measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    rtt: Duration,
}

/// RTT assumed when the port scan measured none.
const DEFAULT_RTT: Duration = Duration::from_millis(50);

impl Timeouts {
    /// From the host's smoothed RTT, if known. Absurd values are clamped.
    pub fn new(srtt: Option<Duration>) -> Timeouts {
        Timeouts { rtt: srtt.unwrap_or(DEFAULT_RTT).min(Duration::from_secs(2)) }
    }

    /// Connecting to a port already found open: a round trip and change.
    pub fn connect(&self) -> Duration {
        (self.rtt * 4 + Duration::from_millis(1000)).min(Duration::from_secs(6))
    }

    /// How long a probe waits for its answer: the database's wait (server think time) plus the
    /// network's round trips.
    pub fn answer(&self, wait: Duration) -> Duration {
        wait + self.rtt * 2
    }

    /// When the second wave starts if the first has not identified the service.
    pub fn grace(&self) -> Duration {
        Duration::from_millis(600) + self.rtt * 2
    }

    /// After a match, how long to go on reading in case more of the answer is on its way (a
    /// version string in a second segment).
    pub fn settle(&self) -> Duration {
        (self.rtt * 2 + Duration::from_millis(50)).min(Duration::from_millis(500))
    }

    /// A banner connection closed sooner than this without a byte is "tcpwrapped".
    pub fn wrapped_window(&self) -> Duration {
        Duration::from_millis(2000) + self.rtt * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(db: &ProbeDb, v: &[usize]) -> Vec<String> {
        v.iter().map(|i| db.probes()[*i].name.clone()).collect()
    }

    #[test]
    fn port_fit_first_then_rarity() {
        let db = ProbeDb::builtin();
        let p = plan(&db, Transport::Tcp, 6379, 7);
        assert_eq!(names(&db, &p.first), ["null", "redis-info"]);
        assert!(names(&db, &p.rest).contains(&"http-get".to_string()));
        assert!(!names(&db, &p.rest).contains(&"https-get".to_string()), "TLS probes run only inside TLS");
        let rar: Vec<u8> = p.rest.iter().map(|i| db.probes()[*i].rarity).collect();
        assert!(rar.windows(2).all(|w| w[0] <= w[1]), "{rar:?}");
    }

    #[test]
    fn inside_tls_every_tcp_probe_once() {
        let db = ProbeDb::builtin();
        let p = plan_tls(&db, 443, 7);
        assert_eq!(names(&db, &p.first), ["null", "https-get"]);
        let rest = names(&db, &p.rest);
        assert!(!rest.contains(&"http-get".to_string()), "same request as https-get: {rest:?}");
        assert!(rest.contains(&"redis-info".to_string()), "{rest:?}");
        let p = plan_tls(&db, 6379, 7);
        assert_eq!(names(&db, &p.first), ["null", "redis-info"]);
        assert!(names(&db, &p.rest).contains(&"https-get".to_string()));
        assert!(p.first.iter().chain(&p.rest).all(|i| db.probes()[*i].transport == Transport::Tcp));
    }

    #[test]
    fn intensity_limits_the_second_wave_only() {
        let db = ProbeDb::builtin();
        let p0 = plan(&db, Transport::Tcp, 5432, 0);
        assert_eq!(names(&db, &p0.first), ["null", "postgres-startup"]);
        assert!(p0.rest.is_empty());
        let light = plan(&db, Transport::Tcp, 2222, 2);
        assert!(light.rest.iter().all(|i| db.probes()[*i].rarity <= 2));
        let all = plan(&db, Transport::Tcp, 2222, 9);
        assert!(all.rest.len() > light.rest.len());
    }

    #[test]
    fn udp_has_no_banner_grab() {
        let db = ProbeDb::builtin();
        let p = plan(&db, Transport::Udp, 161, 7);
        assert_eq!(names(&db, &p.first), ["snmp-v2c-public"]);
        assert!(p.rest.iter().all(|i| db.probes()[*i].transport == Transport::Udp));
    }

    #[test]
    fn silent_port_budget_at_lan_rtt() {
        // A port that never answers costs the grace time plus the slowest second-wave wait, or the
        // banner wait, whichever is longer: under 3 s on a LAN.
        let db = ProbeDb::builtin();
        let t = Timeouts::new(Some(Duration::from_micros(200)));
        let p = plan(&db, Transport::Tcp, 2222, 7);
        let first = p.first.iter().map(|i| t.answer(db.probes()[*i].wait)).max().unwrap();
        let second = p.rest.iter().map(|i| t.answer(db.probes()[*i].wait)).max().unwrap();
        let total = first.max(t.grace() + second) + t.connect().min(Duration::from_millis(5));
        assert!(total <= Duration::from_secs(3), "{total:?}");
        // ...which holds only while the whole second wave is in flight at once.
        for port in [2222, 1, 65000] {
            let p = plan(&db, Transport::Tcp, port, 7);
            assert!(p.first.len() + p.rest.len() <= crate::engine::PER_PORT, "port {port}: {p:?}");
        }
    }
}
