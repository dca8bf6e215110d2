//! The probing driver: runs a port's [`Plan`](crate::plan::Plan) over real sockets with tokio and
//! turns the answers into a service. Thin by design: which probes, how long and what an answer
//! means are decided in [`crate::plan`] and [`crate::matcher`].
//!
//! Every probe has its own connection (TCP) or socket (UDP), so probes of one port run in
//! parallel; a hard match ends the port at once and drops the other probes' connections. Every
//! read is bounded in bytes ([`MAX_RESPONSE`]) and time, and the number of sockets open at once is
//! bounded for the whole detector (a semaphore), so memory per port and in total is capped.

use crate::db::{ProbeDb, Transport};
use crate::fingerprint::{fingerprint, MAX_SHOWN};
use crate::matcher::{match_response, probe_knows, Identified, MAX_RESPONSE};
use crate::pace::Pacer;
use crate::plan::{plan, Timeouts};
use crate::quic::{probe_quic, quic_service, quic_suits};
use rustmap_model::{ServiceInfo, ServiceMethod};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at, Instant};

/// How long the QUIC probes wait for answers on a fast network (plus two RTTs).
const QUIC_WAIT: Duration = Duration::from_millis(1500);

/// Default for [`DetectOptions::per_port`].
pub const PER_PORT: usize = 16;

/// Settings of a detector.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// 0–9: probes rarer than this are not sent unless made for the port (`--version-intensity`).
    pub intensity: u8,
    /// Probes of one port in flight at once. The default holds the whole second wave at the
    /// default intensity, so a silent port costs one wait, not two (a plan test checks this).
    pub per_port: usize,
    /// Sockets open at once for the whole detector.
    pub max_sockets: usize,
    /// Source address to bind probes to (`-S`), if any.
    pub bind: Option<IpAddr>,
    /// Give up on a port after this long, whatever is still in flight.
    pub port_budget: Duration,
    /// Probe UDP ports for QUIC (`--no-quic` turns it off).
    pub quic: bool,
    /// At most this many probes per second over the whole detector (`--max-rate`).
    pub max_rate: Option<f64>,
    /// At least this long between two probes to one host (`--scan-delay`).
    pub host_delay: Duration,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            intensity: 7,
            per_port: PER_PORT,
            max_sockets: 256,
            bind: None,
            port_budget: Duration::from_secs(20),
            quic: true,
            max_rate: None,
            host_delay: Duration::ZERO,
        }
    }
}

/// What detection found on one port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortOutcome {
    /// The service, when a rule matched (or the port is tcpwrapped).
    pub service: Option<ServiceInfo>,
    /// Some probe got an answer (for UDP: the port is open, not open|filtered).
    pub answered: bool,
    /// A UDP probe got ICMP port unreachable.
    pub refused: bool,
    /// Answers came but no rule identified them: their fingerprint
    /// ([`crate::fingerprint`]), for the user to report.
    pub fingerprint: Option<String>,
}

/// Runs probes against ports. Cheap to share (`Arc`) across hosts.
#[derive(Debug)]
pub struct Detector {
    db: Arc<ProbeDb>,
    opts: DetectOptions,
    sockets: Arc<Semaphore>,
    pacer: Arc<Pacer>,
}

/// How one probe ended.
#[derive(Debug)]
struct Report {
    index: usize,
    found: Option<Identified>,
    bytes: usize,
    /// The first bytes of the answer, for the fingerprint of an unidentified service.
    head: Vec<u8>,
    /// The connection closed (or was reset) with no data, this soon after it opened.
    quiet_close: Option<Duration>,
    refused: bool,
}

impl Report {
    fn empty(index: usize) -> Report {
        Report { index, found: None, bytes: 0, head: Vec::new(), quiet_close: None, refused: false }
    }
}

impl Detector {
    /// A detector over `db`.
    pub fn new(db: ProbeDb, opts: DetectOptions) -> Detector {
        let sockets = Arc::new(Semaphore::new(opts.max_sockets.max(1)));
        let pacer = Arc::new(Pacer::new(opts.max_rate, opts.host_delay));
        Detector { db: Arc::new(db), opts, sockets, pacer }
    }

    /// The database in use.
    pub fn db(&self) -> &ProbeDb {
        &self.db
    }

    /// Identify the service on `target`. `srtt` is the host's smoothed RTT from the port scan.
    pub async fn detect(&self, target: SocketAddr, transport: Transport, srtt: Option<Duration>) -> PortOutcome {
        let quic = self.opts.quic && transport == Transport::Udp && quic_suits(target.port(), self.opts.intensity);
        if !quic {
            return self.probe_port(target, transport, srtt).await;
        }
        // QUIC runs beside the port's UDP probes; a QUIC answer names the service.
        let wait = Timeouts::new(srtt).answer(QUIC_WAIT);
        let quic = async {
            self.pacer.wait(target.ip()).await;
            let _permit = self.sockets.acquire().await.ok()?;
            probe_quic(target, self.opts.bind, wait).await
        };
        let (mut out, found) = tokio::join!(self.probe_port(target, transport, srtt), quic);
        if let Some(q) = found {
            out.answered = true;
            out.refused = false;
            out.service = Some(ServiceInfo { quic: Some(q.clone()), ..quic_service(&q) });
        }
        out
    }

    /// The probe database's probes against one port.
    async fn probe_port(&self, target: SocketAddr, transport: Transport, srtt: Option<Duration>) -> PortOutcome {
        let t = Timeouts::new(srtt);
        let p = plan(&self.db, transport, target.port(), self.opts.intensity.min(9));
        let started = Instant::now();
        let deadline = started + self.opts.port_budget;
        let grace_at = started + t.grace();
        // Probes made for this port (not the banner grab): a hard match that names no version
        // waits for those still in flight, since one of them may name it (http-get on a
        // Kubernetes port finds the API server, GET /version its version).
        let specific: Vec<usize> = p.first.iter().copied().filter(|i| !self.db.probes()[*i].is_null()).collect();
        let mut specific_left = specific.len();
        let mut best: Option<Identified> = None;
        let mut pending: VecDeque<usize> = p.first.into();
        let mut later: Option<Vec<usize>> = Some(p.rest);
        let mut set: JoinSet<Report> = JoinSet::new();
        let mut soft: Option<Identified> = None;
        let mut wrapped = false;
        let mut out = PortOutcome::default();
        // What unidentified answers looked like (probe index, first bytes), for the fingerprint.
        let mut heads: Vec<(usize, Vec<u8>)> = Vec::new();
        let per_port = self.opts.per_port.max(1);
        loop {
            while set.len() < per_port {
                let Some(i) = pending.pop_front() else { break };
                if let Some(s) = &soft {
                    // Soft match: only probes that can say more about that service are worth it.
                    if !probe_knows(&self.db, i, &s.service) {
                        if specific.contains(&i) {
                            specific_left -= 1;
                        }
                        continue;
                    }
                }
                set.spawn(self.run_probe(i, target, t));
            }
            if set.is_empty() {
                if best.is_some() {
                    break;
                }
                match later.take() {
                    // A quietly closing banner connection and no data anywhere: stop, it is wrapped.
                    Some(_) if wrapped && !out.answered => break,
                    Some(rest) if !rest.is_empty() => {
                        pending.extend(rest);
                        continue;
                    }
                    _ => break,
                }
            }
            tokio::select! {
                done = set.join_next() => {
                    let Some(Ok(r)) = done else { continue };
                    out.answered |= r.bytes > 0;
                    out.refused |= r.refused;
                    if r.refused {
                        // ICMP port unreachable: nothing listens; no point in more probes.
                        break;
                    }
                    if let Some(d) = r.quiet_close {
                        wrapped |= self.db.probes()[r.index].is_null() && d <= t.wrapped_window();
                    }
                    if specific.contains(&r.index) {
                        specific_left -= 1;
                    }
                    match r.found {
                        Some(f) if !f.soft && (f.version.is_some() || (specific_left == 0 && best.is_none())) => {
                            out.service = Some(f.into_service());
                            return out;
                        }
                        Some(f) if !f.soft => {
                            best.get_or_insert(f);
                        }
                        Some(f) => {
                            soft.get_or_insert(f);
                        }
                        None => {}
                    }
                    if !r.head.is_empty() {
                        heads.push((r.index, r.head));
                    }
                    if specific_left == 0 {
                        if let Some(b) = best.take() {
                            out.service = Some(b.into_service());
                            return out;
                        }
                    }
                }
                _ = tokio::time::sleep_until(grace_at), if later.is_some() => {
                    if let Some(rest) = later.take() {
                        // A hard match is in hand: the second wave would not improve on it.
                        if best.is_none() && (!wrapped || out.answered) {
                            pending.extend(rest);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        set.abort_all();
        if soft.is_none() && best.is_none() {
            // Answers but no rule: a fingerprint for the user to report, in probe order.
            heads.sort_by_key(|(i, _)| *i);
            let probes = self.db.probes();
            let answers: Vec<(&str, &[u8])> = heads.iter().map(|(i, h)| (probes[*i].name.as_str(), &h[..])).collect();
            let proto = if transport == Transport::Tcp { "tcp" } else { "udp" };
            out.fingerprint = fingerprint(target.port(), proto, &answers);
        }
        out.service = match best.or(soft) {
            Some(s) => Some(s.into_service()),
            None if wrapped && !out.answered && transport == Transport::Tcp => Some(ServiceInfo {
                name: "tcpwrapped".into(),
                method: ServiceMethod::Probed,
                conf: 8,
                ..Default::default()
            }),
            None => None,
        };
        out
    }

    fn run_probe(
        &self,
        index: usize,
        target: SocketAddr,
        t: Timeouts,
    ) -> impl std::future::Future<Output = Report> + Send + 'static {
        let db = Arc::clone(&self.db);
        let sockets = Arc::clone(&self.sockets);
        let pacer = Arc::clone(&self.pacer);
        let bind = self.opts.bind;
        async move {
            // Paced before taking a socket: a probe waiting for its slot holds nothing.
            pacer.wait(target.ip()).await;
            let Ok(_permit) = sockets.acquire_owned().await else { return Report::empty(index) };
            match db.probes()[index].transport {
                Transport::Tcp => tcp_probe(&db, index, target, bind, t).await,
                Transport::Udp => udp_probe(&db, index, target, bind, t).await,
            }
        }
    }
}

async fn connect(target: SocketAddr, bind: Option<IpAddr>, within: Duration) -> Option<TcpStream> {
    let sock = if target.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.ok()?;
    if let Some(addr) = bind.filter(|a| a.is_ipv4() == target.is_ipv4()) {
        sock.bind(SocketAddr::new(addr, 0)).ok()?;
    }
    timeout(within, sock.connect(target)).await.ok()?.ok()
}

async fn tcp_probe(db: &ProbeDb, index: usize, target: SocketAddr, bind: Option<IpAddr>, t: Timeouts) -> Report {
    let probe = &db.probes()[index];
    let mut report = Report::empty(index);
    let Some(mut stream) = connect(target, bind, t.connect()).await else { return report };
    let opened = Instant::now();
    if !probe.payload.is_empty() && timeout(t.answer(probe.wait), stream.write_all(&probe.payload)).await.is_err() {
        return report;
    }
    let deadline = opened + t.answer(probe.wait);
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let mut settle_until: Option<Instant> = None;
    loop {
        let until = settle_until.map_or(deadline, |s| s.min(deadline));
        let n = match timeout_at(until, stream.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                if buf.is_empty() {
                    report.quiet_close = Some(opened.elapsed());
                }
                break;
            }
            Ok(Ok(n)) => n,
        };
        let room = MAX_RESPONSE - buf.len();
        buf.extend_from_slice(&chunk[..n.min(room)]);
        if buf.len() >= MAX_RESPONSE {
            break;
        }
        if settle_until.is_none() {
            if let Some(f) = match_response(db, index, &buf) {
                if !f.soft {
                    // Matched: read a little longer in case the rest of the answer (a version in a
                    // later segment) is on its way, then match the whole.
                    settle_until = Some(Instant::now() + t.settle());
                }
            }
        }
    }
    report.bytes = buf.len();
    report.found = match_response(db, index, &buf);
    buf.truncate(MAX_SHOWN);
    report.head = buf;
    report
}

async fn udp_probe(db: &ProbeDb, index: usize, target: SocketAddr, bind: Option<IpAddr>, t: Timeouts) -> Report {
    let probe = &db.probes()[index];
    let mut report = Report::empty(index);
    let local = match bind.filter(|a| a.is_ipv4() == target.is_ipv4()) {
        Some(a) => SocketAddr::new(a, 0),
        None if target.is_ipv4() => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        None => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let Ok(sock) = UdpSocket::bind(local).await else { return report };
    // Connected, so that the kernel hands us ICMP port unreachable as ECONNREFUSED.
    if sock.connect(target).await.is_err() {
        return report;
    }
    let wait = t.answer(probe.wait);
    let mut buf = vec![0u8; MAX_RESPONSE];
    // Two sends, the second halfway through the wait: one lost datagram does not hide a service.
    for attempt in 0..2 {
        if sock.send(&probe.payload).await.is_err() {
            return report;
        }
        match timeout(wait / 2, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                report.bytes = n;
                report.found = match_response(db, index, &buf[..n]);
                report.head = buf[..n.min(MAX_SHOWN)].to_vec();
                return report;
            }
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                report.refused = true;
                return report;
            }
            Ok(Err(_)) if attempt == 1 => return report,
            Ok(Err(_)) | Err(_) => {}
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn detector(intensity: u8) -> Detector {
        Detector::new(ProbeDb::builtin(), DetectOptions { intensity, ..Default::default() })
    }

    /// A loopback server that runs `serve` for each connection.
    async fn server<F, Fut>(serve: F) -> SocketAddr
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let serve = Arc::new(serve);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let serve = Arc::clone(&serve);
                tokio::spawn(async move { serve(s).await });
            }
        });
        addr
    }

    #[tokio::test]
    async fn banner_service_is_found_by_the_null_probe() {
        let addr = server(|mut s| async move {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let started = Instant::now();
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.name.as_str(), s.product.as_deref()), ("ssh", Some("OpenSSH")));
        assert_eq!(s.method, ServiceMethod::Probed);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn client_first_service_is_found_by_a_second_wave_probe() {
        // A memcached-like server on a port no probe is made for: the second wave finds it.
        let addr = server(|mut s| async move {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf).await {
                if buf[..n].starts_with(b"version") {
                    let _ = s.write_all(b"VERSION 1.6.18\r\n").await;
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.name.as_str(), s.version.as_deref()), ("memcached", Some("1.6.18")));
        // At intensity 0 only the banner grab and port-specific probes run: nothing is found.
        let out = detector(0).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        assert_eq!(out.service, None);
    }

    #[tokio::test]
    async fn silent_port_costs_under_three_seconds() {
        let addr = server(|s| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(s);
        })
        .await;
        let started = Instant::now();
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        assert_eq!(out.service, None);
        assert!(!out.answered);
        let took = started.elapsed();
        assert!(took <= Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test]
    async fn accept_then_close_is_tcpwrapped() {
        let addr = server(|s| async move { drop(s) }).await;
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        assert_eq!(out.service.unwrap().name, "tcpwrapped");
    }

    #[tokio::test]
    async fn version_in_a_later_segment_is_waited_for() {
        // MQTT: CONNACK first, the retained version message a moment later.
        let addr = server(|mut s| async move {
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"\x20\x02\x00\x00").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ =
                s.write_all(b"\x90\x03\x00\x01\x00\x31\x2d\x00\x13$SYS/broker/versionmosquitto version 2.0.11").await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let target = SocketAddr::new(addr.ip(), addr.port());
        // The port is not 1883, so the MQTT probe runs in the second wave; the result is the same.
        let out = detector(7).detect(target, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.name.as_str(), s.version.as_deref()), ("mqtt", Some("2.0.11")));
    }

    #[tokio::test]
    async fn a_versioned_answer_of_a_port_probe_beats_an_earlier_bare_one() {
        // Two probes made for the port: "quick" is answered at once, without a version; "slow"
        // 150 ms later, with one. The slow one's answer wins; a port whose probes all give bare
        // answers still ends as soon as they are in.
        let addr = server(|mut s| async move {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf).await {
                if buf[..n].starts_with(b"quick") {
                    let _ = s.write_all(b"SVC\r\n").await;
                } else if buf[..n].starts_with(b"slow") {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let _ = s.write_all(b"SVC 2.5\r\n").await;
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let port = addr.port();
        let db = |slow: &str| {
            let text = format!(
                "probe tcp quick\n  send \"quick\"\n  ports {port}\n  wait 2s\nmatch svc\n  pattern ^SVC (\\S+)\\r\n  version $1\nmatch svc\n  pattern ^SVC\\r\n\nprobe tcp slow\n  send \"{slow}\"\n  ports {port}\n  wait 2s\n  fallback quick\n"
            );
            ProbeDb::parse("t", &text).unwrap()
        };
        let d = Detector::new(db("slow"), DetectOptions::default());
        let s = d.detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await.service.unwrap();
        assert_eq!((s.name.as_str(), s.version.as_deref()), ("svc", Some("2.5")));
        // "nothing" gets no answer: the bare match stands once that probe has given up (2 s),
        // without a second wave.
        let started = Instant::now();
        let d = Detector::new(db("nothing"), DetectOptions::default());
        let s = d.detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await.service.unwrap();
        assert_eq!((s.name.as_str(), s.version), ("svc", None));
        assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn udp_answer_and_udp_refusal() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                if buf[..n].ends_with(b"version\r\n") {
                    let _ = sock.send_to(b"\x00\x01\x00\x00\x00\x01\x00\x00VERSION 1.6.21\r\n", from).await;
                }
            }
        });
        let out = detector(7).detect(addr, Transport::Udp, Some(Duration::from_micros(100))).await;
        assert!(out.answered);
        assert_eq!(out.service.unwrap().version.as_deref(), Some("1.6.21"));
        // A port nothing listens on: ICMP port unreachable ends detection at once.
        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let started = Instant::now();
        let out = detector(7).detect(closed, Transport::Udp, Some(Duration::from_micros(100))).await;
        assert!(out.refused && out.service.is_none());
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn max_rate_paces_the_probes() {
        // A silent port at intensity 9 gets every TCP probe; at 10 probes per second the
        // connections arrive spaced, whatever the per-port parallelism.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                let _ = tx.send(Instant::now());
                held.push(s);
            }
        });
        let opts = DetectOptions { intensity: 9, max_rate: Some(10.0), ..Default::default() };
        let det = Detector::new(ProbeDb::builtin(), opts);
        let started = Instant::now();
        let _ =
            timeout(Duration::from_millis(1300), det.detect(addr, Transport::Tcp, Some(Duration::from_micros(100))))
                .await;
        let mut at = Vec::new();
        while let Ok(t) = rx.try_recv() {
            at.push(t.duration_since(started));
        }
        assert!(at.len() >= 3, "{at:?}");
        // 1.3 s at 10/s: at most 14 connections, and no two closer than the 100 ms gap allows.
        assert!(at.len() <= 14, "{at:?}");
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_millis(80), "{at:?}");
        }
    }
}
