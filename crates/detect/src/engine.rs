//! The probing driver: runs a port's [`Plan`] over real sockets with tokio and
//! turns the answers into a service. Thin by design: which probes, how long and what an answer
//! means are decided in [`crate::plan`] and [`crate::matcher`].
//!
//! Every probe has its own connection (TCP) or socket (UDP), so probes of one port run in
//! parallel; a hard match ends the port at once and drops the other probes' connections. Every
//! read is bounded in bytes ([`MAX_RESPONSE`]) and time, and the number of sockets open at once is
//! bounded for the whole detector (a semaphore), so memory per port and in total is capped.
//!
//! TLS: beside a TCP port's first wave runs our own ClientHello ([`crate::tls`]). A plain match
//! that ends the port wins as before — unless it only says "TLS here" (a rule with `tunnel ssl`),
//! which is held until the hello answers. When the hello finds TLS, the plain probes are dropped,
//! a session records what the server negotiates and its chain, and the port is probed again with
//! every probe inside TLS ([`crate::plan::plan_tls`]), each in a session of its own, as nmap
//! reruns its probes through SSL. The result carries the tunnel (`ssl/http`) and a
//! [`TlsInfo`]. A server rustls cannot talk to (TLS 1.0/1.1, SSL 3.0 only) is still reported:
//! `ssl`, with the facts of our own handshake.

use crate::db::{ProbeDb, Transport};
use crate::fingerprint::{fingerprint, MAX_SHOWN};
use crate::matcher::{match_response, probe_knows, Identified, MAX_RESPONSE};
use crate::pace::Pacer;
use crate::plan::{plan, plan_tls, Plan, Timeouts};
use crate::quic::{probe_quic, quic_service, quic_suits};
use crate::tls::{self, HelloAnswer};
use rustmap_model::{ServiceInfo, ServiceMethod, TlsInfo};
use rustmap_proxy::{Dialer, Socks5};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
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
    /// Probes of one port in flight at once.
    pub per_port: usize,
    /// Sockets open at once for the whole detector.
    pub max_sockets: usize,
    /// Source address to bind probes to (`-S`), if any.
    pub bind: Option<IpAddr>,
    /// Give up on a port after this long, whatever is still in flight.
    pub port_budget: Duration,
    /// Compute JA4S for TLS ports (`--ja4s`; off by default, see docs/usage.md).
    pub ja4s: bool,
    /// Probe UDP ports for QUIC (`--no-quic` turns it off).
    pub quic: bool,
    /// At most this many probes per second over the whole detector (`--max-rate`).
    pub max_rate: Option<f64>,
    /// At least this long between two probes to one host (`--scan-delay`).
    pub host_delay: Duration,
    /// Open every TCP connection through this SOCKS5 proxy (`--proxy`); UDP ports are then
    /// not probed at all (a proxy's CONNECT carries TCP only).
    pub proxy: Option<Arc<Socks5>>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            intensity: 7,
            per_port: PER_PORT,
            max_sockets: 256,
            bind: None,
            port_budget: Duration::from_secs(20),
            ja4s: false,
            quic: true,
            max_rate: None,
            host_delay: Duration::ZERO,
            proxy: None,
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
    /// The port speaks TLS: what its handshake and certificates say.
    pub tls: Option<TlsInfo>,
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

    /// How this detector's TCP connections are opened: through the proxy, or directly.
    fn dialer(&self) -> Dialer {
        match &self.opts.proxy {
            Some(p) => Dialer::through(Arc::clone(p)),
            None => Dialer::direct(self.opts.bind),
        }
    }

    /// Identify the service on `target`. `srtt` is the host's smoothed RTT from the port scan.
    ///
    /// TCP ports also get our own TLS ClientHello, in the first wave beside the banner grab
    /// (TLS on any port must be found). If it finds TLS, plain probing stops and the port is
    /// probed again inside TLS sessions; see [`crate::tls`].
    ///
    /// UDP ports QUIC suits also get the QUIC probes ([`crate::quic`]) beside their own; a QUIC
    /// answer names the service.
    pub async fn detect(&self, target: SocketAddr, transport: Transport, srtt: Option<Duration>) -> PortOutcome {
        if transport == Transport::Udp && self.opts.proxy.is_some() {
            return PortOutcome::default();
        }
        let quic = self.opts.quic && transport == Transport::Udp && quic_suits(target.port(), self.opts.intensity);
        if !quic {
            return self.probe_port(target, transport, srtt).await;
        }
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
            out.fingerprint = None;
            out.service = Some(ServiceInfo { quic: Some(q.clone()), ..quic_service(&q) });
        }
        out
    }

    /// The probe database's probes (and, for TCP, the TLS hello) against one port.
    async fn probe_port(&self, target: SocketAddr, transport: Transport, srtt: Option<Duration>) -> PortOutcome {
        let t = Timeouts::new(srtt);
        let intensity = self.opts.intensity.min(9);
        let deadline = Instant::now() + self.opts.port_budget;
        let p = plan(&self.db, transport, target.port(), intensity);
        // The hello is as cheap as the least rare probe: sent everywhere from intensity 1, and
        // at intensity 0 to ports a TLS probe is made for.
        let hello = transport == Transport::Tcp && (intensity >= 1 || tls_port(&self.db, target.port()));
        match self.waves(target, transport, t, deadline, p, Layer::Plain, hello).await {
            End::Done(out) => *out,
            End::Tls(tls) => self.detect_in_tls(target, t, deadline, tls.0, tls.1).await,
        }
    }

    /// Probe a port found to speak TLS: the handshake's facts, then the probes inside TLS.
    async fn detect_in_tls(
        &self,
        target: SocketAddr,
        t: Timeouts,
        deadline: Instant,
        answer: HelloAnswer,
        held: Option<Identified>,
    ) -> PortOutcome {
        let mut out = PortOutcome { answered: true, ..Default::default() };
        let dialer = self.dialer();
        let sockets = Arc::clone(&self.sockets);
        // One session offering ALPN, for what a modern client negotiates and the chain.
        let facts = timeout_at(deadline, async move {
            let _permit = sockets.acquire_owned().await.ok()?;
            let tcp = dialer.connect(target, t.connect()).await.ok()?;
            let s = tls::session(tcp, target, true, t.answer(HELLO_WAIT)).await?;
            Some(tls::facts(&s))
        })
        .await
        .ok()
        .flatten();
        let info = tls::tls_info(&answer, facts.as_ref(), self.opts.ja4s);
        let inner = if facts.is_some() {
            let p = plan_tls(&self.db, target.port(), self.opts.intensity.min(9));
            match self.waves(target, Transport::Tcp, t, deadline, p, Layer::Tls, false).await {
                End::Done(o) => {
                    out.fingerprint = o.fingerprint;
                    o.service.filter(|s| s.name != "ssl")
                }
                End::Tls(..) => None,
            }
        } else {
            None
        };
        if inner.is_some() {
            out.fingerprint = None;
        }
        out.service = Some(match (inner, held) {
            (Some(s), _) => s,
            // A plain-text answer that told of TLS (nginx's "plain HTTP to an HTTPS port").
            (None, Some(h)) => h.into_service(),
            // TLS, and nothing more known: the handshake's version says what kind of server.
            (None, None) => ServiceInfo {
                name: "ssl".into(),
                method: ServiceMethod::Probed,
                conf: 10,
                extrainfo: (!info.session && !info.version.is_empty()).then(|| info.version.clone()),
                ..Default::default()
            },
        });
        out.tls = Some(info);
        out
    }

    /// Run a plan's two waves on one layer; with `hello`, our TLS ClientHello runs beside them.
    #[allow(clippy::too_many_arguments)]
    async fn waves(
        &self,
        target: SocketAddr,
        transport: Transport,
        t: Timeouts,
        deadline: Instant,
        p: Plan,
        layer: Layer,
        hello: bool,
    ) -> End {
        let grace_at = Instant::now() + t.grace();
        // Probes made for this port (not the banner grab): a hard match that names no version
        // waits for those still in flight, since one of them may name it (http-get on a
        // Kubernetes port finds the API server, GET /version its version).
        let specific: Vec<usize> = p.first.iter().copied().filter(|i| !self.db.probes()[*i].is_null()).collect();
        let mut specific_left = specific.len();
        let mut best: Option<Identified> = None;
        // What unidentified answers looked like (probe index, first bytes), for the fingerprint.
        let mut heads: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut pending: VecDeque<usize> = p.first.into();
        let mut later: Option<Vec<usize>> = Some(p.rest);
        let mut set: JoinSet<Done> = JoinSet::new();
        let mut soft: Option<Identified> = None;
        // A match that says "TLS here", kept while the hello that would tell more is in flight.
        let mut held: Option<Identified> = None;
        let mut hello_pending = hello;
        let mut wrapped = false;
        let mut out = PortOutcome::default();
        let per_port = self.opts.per_port.max(1);
        if hello {
            set.spawn(self.run_hello(target, t));
        }
        loop {
            while set.len() < per_port + usize::from(hello_pending) {
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
                set.spawn(self.run_probe(i, target, t, layer));
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
                    let r = match done {
                        Some(Ok(Done::Probe(r))) => r,
                        Some(Ok(Done::Hello(answer))) => {
                            hello_pending = false;
                            if answer.is_tls() {
                                set.abort_all();
                                return End::Tls(Box::new((answer, held)));
                            }
                            if let Some(h) = held.take() {
                                out.service = Some(h.into_service());
                                return End::Done(Box::new(out));
                            }
                            continue;
                        }
                        _ => continue,
                    };
                    out.answered |= r.bytes > 0;
                    out.refused |= r.refused;
                    if r.refused {
                        // ICMP port unreachable: nothing listens; no point in more probes.
                        break;
                    }
                    if let Some(d) = r.quiet_close {
                        wrapped |= layer == Layer::Plain
                            && self.db.probes()[r.index].is_null()
                            && d <= t.wrapped_window();
                    }
                    if specific.contains(&r.index) {
                        specific_left -= 1;
                    }
                    if r.found.is_none() && !r.head.is_empty() {
                        heads.push((r.index, r.head));
                    }
                    match r.found {
                        Some(mut f) if !f.soft => {
                            if layer == Layer::Tls {
                                f.tunnel_ssl = true;
                            } else if f.tunnel_ssl && hello_pending {
                                held = Some(f);
                                continue;
                            }
                            if f.version.is_some() || (specific_left == 0 && best.is_none()) {
                                out.service = Some(f.into_service());
                                return End::Done(Box::new(out));
                            }
                            best.get_or_insert(f);
                        }
                        Some(mut f) => {
                            f.tunnel_ssl |= layer == Layer::Tls;
                            soft.get_or_insert(f);
                        }
                        None => {}
                    }
                    if specific_left == 0 {
                        if let Some(b) = best.take() {
                            out.service = Some(b.into_service());
                            return End::Done(Box::new(out));
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
        if held.is_none() && best.is_none() && soft.is_none() {
            // Answers but no rule: a fingerprint for the user to report, in probe order.
            heads.sort_by_key(|(i, _)| *i);
            let probes = self.db.probes();
            let answers: Vec<(&str, &[u8])> = heads.iter().map(|(i, h)| (probes[*i].name.as_str(), &h[..])).collect();
            let proto = if transport == Transport::Tcp { "tcp" } else { "udp" };
            out.fingerprint = fingerprint(target.port(), proto, &answers);
        }
        out.service = match (held, best.or(soft)) {
            (Some(h), _) => Some(h.into_service()),
            (None, Some(s)) => Some(s.into_service()),
            (None, None) if wrapped && !out.answered && transport == Transport::Tcp => Some(ServiceInfo {
                name: "tcpwrapped".into(),
                method: ServiceMethod::Probed,
                conf: 8,
                ..Default::default()
            }),
            (None, None) => None,
        };
        End::Done(Box::new(out))
    }

    fn run_hello(&self, target: SocketAddr, t: Timeouts) -> impl std::future::Future<Output = Done> + Send + 'static {
        let sockets = Arc::clone(&self.sockets);
        let pacer = Arc::clone(&self.pacer);
        let dialer = self.dialer();
        async move {
            pacer.wait(target.ip()).await;
            let Ok(_permit) = sockets.acquire_owned().await else { return Done::Hello(HelloAnswer::NotTls) };
            let Ok(mut stream) = dialer.connect(target, t.connect()).await else {
                return Done::Hello(HelloAnswer::NotTls);
            };
            let deadline = Instant::now() + t.answer(HELLO_WAIT);
            Done::Hello(tls::hello_on(&mut stream, deadline).await)
        }
    }

    fn run_probe(
        &self,
        index: usize,
        target: SocketAddr,
        t: Timeouts,
        layer: Layer,
    ) -> impl std::future::Future<Output = Done> + Send + 'static {
        let db = Arc::clone(&self.db);
        let sockets = Arc::clone(&self.sockets);
        let pacer = Arc::clone(&self.pacer);
        let bind = self.opts.bind;
        let dialer = self.dialer();
        async move {
            // Paced before taking a socket: a probe waiting for its slot holds nothing.
            pacer.wait(target.ip()).await;
            let Ok(_permit) = sockets.acquire_owned().await else { return Done::Probe(Report::empty(index)) };
            Done::Probe(match (db.probes()[index].transport, layer) {
                (Transport::Tcp, Layer::Plain) => tcp_probe(&db, index, target, &dialer, t).await,
                (Transport::Tcp, Layer::Tls) => tls_probe(&db, index, target, &dialer, t).await,
                (Transport::Udp, _) => udp_probe(&db, index, target, bind, t).await,
            })
        }
    }
}

/// How long our ClientHello waits for the server's flight on a fast network (RTTs are added).
const HELLO_WAIT: Duration = Duration::from_secs(2);

/// Which side of TLS probes run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// Straight over TCP (or UDP).
    Plain,
    /// Inside a rustls session.
    Tls,
}

/// What a task of a port's probing reports.
#[derive(Debug)]
enum Done {
    Probe(Report),
    Hello(HelloAnswer),
}

/// How the plain waves ended.
#[derive(Debug)]
enum End {
    /// Found (or not) without TLS.
    Done(Box<PortOutcome>),
    /// The port speaks TLS: our hello's answer, and a plain match that said so, if one came.
    Tls(Box<(HelloAnswer, Option<Identified>)>),
}

/// Is some TLS probe made for `port`?
fn tls_port(db: &ProbeDb, port: u16) -> bool {
    db.probes().iter().any(|p| p.tls && p.transport == Transport::Tcp && p.ports.contains(port))
}

async fn tcp_probe(db: &ProbeDb, index: usize, target: SocketAddr, dialer: &Dialer, t: Timeouts) -> Report {
    let Ok(stream) = dialer.connect(target, t.connect()).await else { return Report::empty(index) };
    exchange(db, index, stream, t).await
}

/// A probe inside a TLS session of its own (no ALPN: the server's default protocol answers).
async fn tls_probe(db: &ProbeDb, index: usize, target: SocketAddr, dialer: &Dialer, t: Timeouts) -> Report {
    let Ok(tcp) = dialer.connect(target, t.connect()).await else { return Report::empty(index) };
    let Some(stream) = tls::session(tcp, target, false, t.answer(HELLO_WAIT)).await else {
        return Report::empty(index);
    };
    exchange(db, index, stream, t).await
}

/// Send probe `index` on an open stream and read its answer (bounded in bytes and time).
async fn exchange<S>(db: &ProbeDb, index: usize, mut stream: S, t: Timeouts) -> Report
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let probe = &db.probes()[index];
    let mut report = Report::empty(index);
    let opened = Instant::now();
    if !probe.payload.is_empty() && timeout(t.answer(probe.wait), stream.write_all(&probe.payload)).await.is_err() {
        return report;
    }
    // A TLS stream buffers writes until flushed.
    if timeout(t.answer(probe.wait), stream.flush()).await.is_err() {
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

/// The local address a UDP socket towards `target` binds to: `-S`'s address when it is of the
/// target's family, else the unspecified address of that family (any port).
pub(crate) fn local_for(target: SocketAddr, bind: Option<IpAddr>) -> SocketAddr {
    match bind.filter(|a| a.is_ipv4() == target.is_ipv4()) {
        Some(a) => SocketAddr::new(a, 0),
        None if target.is_ipv4() => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        None => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

async fn udp_probe(db: &ProbeDb, index: usize, target: SocketAddr, bind: Option<IpAddr>, t: Timeouts) -> Report {
    let probe = &db.probes()[index];
    let mut report = Report::empty(index);
    let Ok(sock) = UdpSocket::bind(local_for(target, bind)).await else { return report };
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
    use tokio::net::{TcpListener, TcpStream};

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
        assert!(out.tls.is_none());
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

    /// A TLS server (rustls, the test certificate in testdata/) that runs `serve` inside TLS.
    async fn tls_server<F, Fut>(serve: F) -> SocketAddr
    where
        F: Fn(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = CertificateDer::from_pem_slice(include_bytes!("../testdata/server.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../testdata/server.key")).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let serve = Arc::new(serve);
        server(move |s| {
            let acceptor = acceptor.clone();
            let serve = Arc::clone(&serve);
            async move {
                if let Ok(Ok(tls)) = timeout(Duration::from_secs(3), acceptor.accept(s)).await {
                    serve(tls).await;
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn http_inside_tls_on_an_odd_port() {
        let addr = tls_server(|mut s| async move {
            let mut buf = [0u8; 256];
            if let Ok(n) = s.read(&mut buf).await {
                if buf[..n].starts_with(b"GET / HTTP/1.0") {
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nServer: nginx/1.22.1\r\n\r\n<title>x</title>").await;
                    let _ = s.shutdown().await;
                }
            }
        })
        .await;
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.display_name().as_str(), s.product.as_deref()), ("ssl/http", Some("nginx")));
        let tls = out.tls.unwrap();
        assert_eq!(tls.version, "TLSv1.3");
        assert!(tls.session);
        assert!(tls.cipher.starts_with("TLS_"), "{}", tls.cipher);
        assert_eq!(tls.ja3s.len(), 32);
        assert!(tls.ja4s.is_none(), "JA4S only when asked");
        assert_eq!(tls.certs.len(), 1);
        let c = &tls.certs[0];
        assert_eq!(
            rustmap_model::CertInfo::name_line(&c.subject),
            "commonName=tls.test.invalid/organizationName=RustMap Test"
        );
        assert_eq!(c.sans, ["DNS:tls.test.invalid"]);
        assert!(c.self_signed);
        assert_eq!((c.key_type.as_str(), c.key_bits), ("ec", 256));
    }

    #[tokio::test]
    async fn banner_inside_tls_and_ja4s_when_asked() {
        let addr = tls_server(|mut s| async move {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").await;
            let _ = s.flush().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        let d = Detector::new(ProbeDb::builtin(), DetectOptions { ja4s: true, ..Default::default() });
        let out = d.detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.name.as_str(), s.tunnel.as_deref()), ("ssh", Some("ssl")));
        let j = out.tls.unwrap().ja4s.unwrap();
        assert!(j.starts_with("t13"), "{j}");
    }

    /// A server that speaks only TLS 1.0: it answers our hello (which offers 1.0) with a TLS 1.0
    /// ServerHello, its certificate and ServerHelloDone, and a hello without TLS 1.0 (rustls's)
    /// with a protocol_version alert.
    #[tokio::test]
    async fn tls10_only_server_is_still_identified() {
        fn rec(payload: &[u8]) -> Vec<u8> {
            let mut r = vec![22, 3, 1];
            r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            r.extend_from_slice(payload);
            r
        }
        fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
            let mut m = vec![ty];
            m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            m.extend_from_slice(body);
            m
        }
        let addr = server(|mut s| async move {
            let mut buf = vec![0u8; 4096];
            let Ok(n) = s.read(&mut buf).await else { return };
            let offers_tls10 =
                buf[..n].windows(2).any(|w| w == [8, 3]) && buf[..n].windows(4).any(|w| w == [3, 2, 3, 1]);
            if !offers_tls10 {
                let _ = s.write_all(&[21, 3, 1, 0, 2, 2, 70]).await;
                return;
            }
            let der = pem_der(include_str!("../testdata/server.pem"));
            let mut hello = vec![3, 1];
            hello.extend_from_slice(&[9; 32]);
            hello.extend_from_slice(&[0, 0xc0, 0x13, 0, 0, 5, 0xff, 0x01, 0, 1, 0]);
            let mut list = (der.len() as u32).to_be_bytes()[1..].to_vec();
            list.extend_from_slice(&der);
            let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
            body.extend_from_slice(&list);
            let mut flight = msg(2, &hello);
            flight.extend(msg(11, &body));
            flight.extend(msg(14, &[]));
            let _ = s.write_all(&rec(&flight)).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        })
        .await;
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        let s = out.service.unwrap();
        assert_eq!((s.name.as_str(), s.extrainfo.as_deref(), s.tunnel.as_deref()), ("ssl", Some("TLSv1.0"), None));
        let tls = out.tls.unwrap();
        assert_eq!((tls.version.as_str(), tls.cipher.as_str()), ("TLSv1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
        assert_eq!(tls.ja3s_string, "769,49171,65281");
        assert!(!tls.session);
        assert_eq!(tls.certs.len(), 1);
        assert_eq!(
            tls.certs[0].subject,
            [("organizationName".into(), "RustMap Test".into()), ("commonName".into(), "tls.test.invalid".into())]
        );
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().as_ref().to_vec()
    }

    #[tokio::test]
    async fn plain_services_have_no_tls() {
        let addr = server(|mut s| async move {
            let mut buf = [0u8; 512];
            // Answers anything, our ClientHello included, with plain text.
            if s.read(&mut buf).await.is_ok() {
                let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\nServer: nginx/1.22.1\r\n\r\n").await;
            }
        })
        .await;
        let out = detector(7).detect(addr, Transport::Tcp, Some(Duration::from_micros(100))).await;
        assert_eq!(out.service.unwrap().display_name(), "http");
        assert!(out.tls.is_none());
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
        // 1.3 s at 10/s: at most 14 connections, and at most 6 in any half second. (Gaps between
        // two accepts are not checked one by one: on a loaded machine the accepting task may
        // take two spaced connections from its backlog at once.)
        assert!(at.len() <= 14, "{at:?}");
        for (i, t) in at.iter().enumerate() {
            let within = at[i..].iter().take_while(|u| **u - *t < Duration::from_millis(500)).count();
            assert!(within <= 6, "{within} connections within 500 ms of {t:?}: {at:?}");
        }
    }
}
