//! Connect probes through a SOCKS5 proxy (`--proxy`): each probe is a tokio task that opens a
//! connection to the proxy, authenticates, asks it to CONNECT to the target port and turns the
//! proxy's answer into the same [`Outcome`] a direct connect gives, reported to the connect
//! scheduler as the epoll [`Connector`](crate::connector::Connector) reports its own.
//!
//! What the proxy's answer means for the port (as a direct connect would see it):
//!
//! | proxy's answer | outcome | port |
//! |---|---|---|
//! | 0 granted | open | open, `syn-ack` |
//! | 5 connection refused | refused | closed, `conn-refused` |
//! | 3 network unreachable | unreachable | filtered, `net-unreach` |
//! | 4 host unreachable | unreachable | filtered, `host-unreach` |
//! | 6 TTL expired | unreachable | filtered, `time-exceeded` |
//! | 2 not allowed by its rules | unreachable | filtered, `admin-prohibited` |
//! | 1 general failure, other codes | unreachable | filtered, `unknown` |
//! | no answer in the probe's time | timeout | retried, then filtered, `no-response` |
//!
//! Failures of the proxy itself are not port states: it cannot be reached, stops speaking
//! SOCKS5, refuses our credentials, or cannot CONNECT at all (replies 7 and 8). They end the scan
//! through the `fatal` channel, so a dead proxy never shows as "every port filtered". This
//! machine's own shortage (descriptors, local ports) is pressure as for direct probes: the probe
//! is tried again later. A proxy that closes connections during the greeting (overloaded) is
//! pressure too, up to [`MAX_CLOSED_IN_A_ROW`] times in a row.

use crate::connect::{is_local_pressure, Outcome};
use crate::connector::{ConnectDone, ConnectJob};
use rustmap_model::Reason;
use rustmap_proxy::{ConnectError, ProxyError, Reply, Socks5, Stage, Tunnel};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Greetings closed by the proxy in a row before the proxy counts as failed.
pub const MAX_CLOSED_IN_A_ROW: u32 = 64;

/// Runs connect probes through a proxy, one task each.
pub(crate) struct ProxyProber<M> {
    proxy: Arc<Socks5>,
    results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
    fatal: mpsc::UnboundedSender<ProxyError>,
    closed_in_a_row: Arc<AtomicU32>,
}

impl<M: Send + Copy + 'static> ProxyProber<M> {
    pub(crate) fn new(
        proxy: Arc<Socks5>,
        results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
        fatal: mpsc::UnboundedSender<ProxyError>,
    ) -> ProxyProber<M> {
        ProxyProber { proxy, results, fatal, closed_in_a_row: Arc::new(AtomicU32::new(0)) }
    }

    /// Start a probe; its outcome comes back on `results`, or the proxy's failure on `fatal`.
    pub(crate) fn submit(&self, job: ConnectJob<M>) {
        let (proxy, results, fatal) = (Arc::clone(&self.proxy), self.results.clone(), self.fatal.clone());
        let closed = Arc::clone(&self.closed_in_a_row);
        tokio::spawn(async move {
            let r = proxy.connect(job.addr, job.timeout).await;
            if !matches!(r, Err(ConnectError::Proxy(_))) {
                closed.store(0, Ordering::Relaxed);
            }
            let outcome = match classify(r) {
                Ok(o) => o,
                Err(e @ ProxyError::Closed { stage: Stage::Greeting | Stage::Auth, .. }) => {
                    if closed.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_CLOSED_IN_A_ROW {
                        let _ = fatal.send(e);
                    }
                    Outcome::LocalPressure
                }
                Err(e) => {
                    let _ = fatal.send(e);
                    return;
                }
            };
            let _ = results.send(vec![ConnectDone { meta: job.meta, outcome }]);
        });
    }
}

/// The outcome of a probe through the proxy, or the proxy's own failure.
pub(crate) fn classify(r: Result<Tunnel, ConnectError>) -> Result<Outcome, ProxyError> {
    Ok(match r {
        // The stream is dropped here: the proxy closes its connection to the target.
        Ok(t) => Outcome::Open(t.rtt),
        Err(ConnectError::Refused { reply, rtt }) => match reply {
            Reply::ConnectionRefused => Outcome::Refused(rtt, Reason::ConnRefused),
            Reply::NetworkUnreachable => Outcome::Unreachable(Reason::NetUnreach),
            Reply::HostUnreachable => Outcome::Unreachable(Reason::HostUnreach),
            Reply::TtlExpired => Outcome::Unreachable(Reason::TimeExceeded),
            Reply::NotAllowed => Outcome::Unreachable(Reason::AdminProhibited),
            _ => Outcome::Unreachable(Reason::Unknown),
        },
        Err(ConnectError::Timeout) => Outcome::Timeout,
        // The proxy went away after we asked: that one target's connection failed.
        Err(ConnectError::Proxy(ProxyError::Closed { stage: Stage::Request, .. })) => {
            Outcome::Unreachable(Reason::Unknown)
        }
        Err(ConnectError::Proxy(e)) if e.os_error().is_some_and(is_local_pressure) => Outcome::LocalPressure,
        Err(ConnectError::Proxy(e)) => return Err(e),
        Err(e) => {
            return Err(ProxyError::Protocol { proxy: String::new(), stage: Stage::Request, what: e.to_string() })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::Duration;

    fn refused(reply: Reply) -> Result<Tunnel, ConnectError> {
        Err(ConnectError::Refused { reply, rtt: Duration::from_millis(3) })
    }

    #[test]
    fn the_proxys_answers_become_port_outcomes() {
        let ms3 = Duration::from_millis(3);
        let cases = [
            (Reply::ConnectionRefused, Outcome::Refused(ms3, Reason::ConnRefused)),
            (Reply::NetworkUnreachable, Outcome::Unreachable(Reason::NetUnreach)),
            (Reply::HostUnreachable, Outcome::Unreachable(Reason::HostUnreach)),
            (Reply::TtlExpired, Outcome::Unreachable(Reason::TimeExceeded)),
            (Reply::NotAllowed, Outcome::Unreachable(Reason::AdminProhibited)),
            (Reply::GeneralFailure, Outcome::Unreachable(Reason::Unknown)),
            (Reply::Other(42), Outcome::Unreachable(Reason::Unknown)),
        ];
        for (reply, want) in cases {
            assert_eq!(classify(refused(reply)).unwrap(), want, "{reply:?}");
        }
        assert_eq!(classify(Err(ConnectError::Timeout)).unwrap(), Outcome::Timeout);
    }

    #[test]
    fn failures_of_the_proxy_are_not_port_states() {
        let p = || "127.0.0.1:1080".to_string();
        let down = ConnectError::Proxy(ProxyError::Unreachable {
            proxy: p(),
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        });
        assert!(matches!(classify(Err(down)), Err(ProxyError::Unreachable { .. })));
        let auth = ConnectError::Proxy(ProxyError::AuthFailed { proxy: p(), user: "u".into(), status: 1 });
        assert!(classify(Err(auth)).is_err());
        let unsupported = ConnectError::Proxy(ProxyError::Unsupported {
            proxy: p(),
            reply: Reply::AddressTypeNotSupported,
            target: "[::1]:80".into(),
        });
        assert!(classify(Err(unsupported)).is_err());
        // This machine out of descriptors: try again later, as for direct probes.
        let emfile = ConnectError::Proxy(ProxyError::Unreachable {
            proxy: p(),
            source: io::Error::from_raw_os_error(libc::EMFILE),
        });
        assert_eq!(classify(Err(emfile)).unwrap(), Outcome::LocalPressure);
        let closed = ConnectError::Proxy(ProxyError::Closed { proxy: p(), stage: Stage::Request });
        assert_eq!(classify(Err(closed)).unwrap(), Outcome::Unreachable(Reason::Unknown));
    }
}
