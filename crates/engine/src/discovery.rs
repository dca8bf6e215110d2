//! Host discovery: which probes decide that a host is up (nmap's `-P*` options and the user
//! guide's `--PH`/`--PHT`), and the application-level pings that both engines share.
//!
//! - [`Ping`] is one discovery probe; [`DiscoveryPlan`] is the user's choice of them plus the
//!   ARP/neighbour-discovery policy for directly connected links.
//! - The raw engine sends the packet probes itself (ICMP, TCP, UDP, SCTP, ARP, ND); the connect
//!   engine turns TCP pings into `connect()` calls, as nmap does without privileges.
//! - [`app_ping`] is the HTTP (`HEAD /`) and HTTPS (TLS ClientHello) ping: a TCP connection plus
//!   one request, no privileges needed. Any answer proves the host up — a refusal, a handshake,
//!   and, best, an HTTP or TLS reply (which a transparent proxy accepting every connection
//!   cannot fake for a dead address as easily as a handshake).

use crate::origin::Origin;
use rustmap_model::Reason;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One discovery probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ping {
    /// ICMP echo request (`-PE`).
    Echo,
    /// ICMP timestamp request (`-PP`, IPv4 only).
    Timestamp,
    /// ICMP address-mask request (`-PM`, IPv4 only).
    Mask,
    /// TCP SYN to a port (`-PS`); a `connect()` without privileges.
    Syn(u16),
    /// TCP ACK to a port (`-PA`); a `connect()` without privileges.
    Ack(u16),
    /// UDP datagram to a port (`-PU`).
    Udp(u16),
    /// SCTP INIT to a port (`-PY`).
    Sctp(u16),
    /// HTTP HEAD request over TCP (`--PH`).
    Http(u16),
    /// TLS ClientHello over TCP (`--PHT`).
    Https(u16),
}

impl Ping {
    /// Does this probe need raw sockets?
    pub fn needs_raw(self) -> bool {
        matches!(self, Ping::Echo | Ping::Timestamp | Ping::Mask | Ping::Udp(_) | Ping::Sctp(_))
    }

    /// Can this probe go to an address of this family?
    pub fn suits(self, v6: bool) -> bool {
        !(v6 && matches!(self, Ping::Timestamp | Ping::Mask))
    }

    /// nmap's spelling of this probe (`-PE`, `-PS22`).
    pub fn flag(self) -> String {
        match self {
            Ping::Echo => "-PE".into(),
            Ping::Timestamp => "-PP".into(),
            Ping::Mask => "-PM".into(),
            Ping::Syn(p) => format!("-PS{p}"),
            Ping::Ack(p) => format!("-PA{p}"),
            Ping::Udp(p) => format!("-PU{p}"),
            Ping::Sctp(p) => format!("-PY{p}"),
            Ping::Http(p) => format!("-PH{p}"),
            Ping::Https(p) => format!("-PHT{p}"),
        }
    }

    /// The port it goes to (none for the ICMP probes).
    pub fn port(self) -> Option<u16> {
        match self {
            Ping::Syn(p) | Ping::Ack(p) | Ping::Udp(p) | Ping::Sctp(p) | Ping::Http(p) | Ping::Https(p) => Some(p),
            Ping::Echo | Ping::Timestamp | Ping::Mask => None,
        }
    }

    /// Is this an application-level ping ([`app_ping`])?
    pub fn is_app(self) -> bool {
        matches!(self, Ping::Http(_) | Ping::Https(_))
    }
}

/// What decides that a host is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryPlan {
    /// The probes, in the order they are sent. Empty means: the default of the engine.
    pub pings: Vec<Ping>,
    /// Use ARP (IPv4) or neighbour discovery (IPv6) for hosts on directly connected links, in
    /// place of the other probes (nmap's rule; `--disable-arp-ping` turns it off).
    pub link_layer: bool,
}

impl Default for DiscoveryPlan {
    fn default() -> DiscoveryPlan {
        DiscoveryPlan { pings: Vec::new(), link_layer: true }
    }
}

impl DiscoveryPlan {
    /// nmap's privileged default: ICMP echo, SYN to 443, ACK to 80, ICMP timestamp.
    pub const RAW_DEFAULT: [Ping; 4] = [Ping::Echo, Ping::Syn(443), Ping::Ack(80), Ping::Timestamp];
    /// The unprivileged default: `connect()` to 80 and 443.
    pub const CONNECT_DEFAULT: [Ping; 2] = [Ping::Syn(80), Ping::Syn(443)];

    /// The probes for one target of the raw engine, without the link-layer ones.
    pub fn raw_pings(&self, v6: bool) -> Vec<Ping> {
        let base: &[Ping] = if self.pings.is_empty() { &Self::RAW_DEFAULT } else { &self.pings };
        base.iter().copied().filter(|p| p.suits(v6)).collect()
    }

    /// The probes of the connect engine.
    pub fn connect_pings(&self) -> Vec<Ping> {
        if self.pings.is_empty() {
            Self::CONNECT_DEFAULT.to_vec()
        } else {
            self.pings.clone()
        }
    }
}

/// What an application-level ping found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// The host answered: it is up, for this reason, after this long.
    Up(Reason, Duration),
    /// A router or the host said the path is closed (host-unreach, admin-prohibited, ...).
    Blocked(Reason),
    /// Nothing in time.
    Silent,
}

/// Longest answer read from a pinged service: enough for a status line or a record header.
const APP_READ_MAX: usize = 512;

/// HTTP or HTTPS ping of `addr`: connect within `timeout`, send `HEAD /` or a ClientHello, and
/// wait up to `timeout` again for the first bytes of the answer. Bounded in time and memory;
/// what the peer sends is only classified, never kept.
pub async fn app_ping(addr: SocketAddr, tls: bool, timeout: Duration, origin: &Origin) -> PingOutcome {
    let started = Instant::now();
    let socket = match if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() } {
        Ok(s) => s,
        Err(_) => return PingOutcome::Silent,
    };
    if let Some(name) = &origin.interface {
        let _ = socket.bind_device(Some(name.as_bytes()));
    }
    if let Some(src) = origin.bind_for(addr.ip()) {
        let _ = socket.bind(SocketAddr::new(src, 0));
    }
    let mut stream = match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Err(_) => return PingOutcome::Silent,
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return match e.raw_os_error() {
                Some(libc::ECONNREFUSED) => PingOutcome::Up(Reason::ConnRefused, started.elapsed()),
                Some(libc::EHOSTUNREACH) => PingOutcome::Blocked(Reason::HostUnreach),
                Some(libc::ENETUNREACH) => PingOutcome::Blocked(Reason::NetUnreach),
                Some(libc::EACCES) | Some(libc::EPERM) => PingOutcome::Blocked(Reason::AdminProhibited),
                _ => PingOutcome::Silent,
            }
        }
    };
    let rtt = started.elapsed();
    let request = if tls {
        rustmap_wire::tls::client_hello(rand::random(), None)
    } else {
        let host = match addr.ip() {
            IpAddr::V6(a) => format!("[{a}]"),
            IpAddr::V4(a) => a.to_string(),
        };
        format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: RustMap\r\nConnection: close\r\n\r\n").into_bytes()
    };
    let mut buf = [0u8; APP_READ_MAX];
    let exchange = async {
        stream.write_all(&request).await?;
        let mut got = 0;
        // A few bytes suffice to classify; read until we have them or the peer stops.
        while got < 8 {
            let n = stream.read(&mut buf[got..]).await?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok::<usize, std::io::Error>(got)
    };
    let got = tokio::time::timeout(timeout.max(Duration::from_millis(200)), exchange).await;
    let answer = match got {
        Ok(Ok(n)) => &buf[..n],
        _ => &buf[..0],
    };
    let reason = if !tls && answer.starts_with(b"HTTP/") {
        Reason::HttpResponse
    } else if tls && rustmap_wire::tls::looks_like_record(answer) {
        Reason::TlsResponse
    } else {
        // The handshake alone proves someone holds that address.
        Reason::SynAck
    };
    PingOutcome::Up(reason, rtt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn defaults_and_families() {
        let plan = DiscoveryPlan::default();
        assert_eq!(plan.raw_pings(false), DiscoveryPlan::RAW_DEFAULT);
        assert_eq!(plan.raw_pings(true), [Ping::Echo, Ping::Syn(443), Ping::Ack(80)], "no ICMPv4-only probes");
        assert_eq!(plan.connect_pings(), [Ping::Syn(80), Ping::Syn(443)]);
        let custom = DiscoveryPlan { pings: vec![Ping::Mask, Ping::Udp(53)], link_layer: false };
        assert_eq!(custom.raw_pings(true), [Ping::Udp(53)]);
        assert!(Ping::Udp(1).needs_raw() && !Ping::Syn(1).needs_raw() && !Ping::Http(80).needs_raw());
    }

    #[tokio::test]
    async fn http_ping_reads_a_status_line() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 256];
            let n = s.read(&mut req).await.unwrap();
            assert!(req[..n].starts_with(b"HEAD / HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        });
        let out = app_ping(addr, false, Duration::from_secs(2), &Origin::default()).await;
        assert!(matches!(out, PingOutcome::Up(Reason::HttpResponse, _)), "{out:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn tls_ping_knows_a_record_from_a_banner() {
        for (reply, want) in [
            (&[22u8, 3, 3, 0, 4, 2, 0, 0, 0][..], Reason::TlsResponse),
            (&b"SSH-2.0-OpenSSH_9.2\r\n"[..], Reason::SynAck),
        ] {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut hello = [0u8; 512];
                let n = s.read(&mut hello).await.unwrap();
                assert_eq!(hello[0], 22, "a handshake record");
                assert!(n > 40);
                s.write_all(reply).await.unwrap();
            });
            let out = app_ping(addr, true, Duration::from_secs(2), &Origin::default()).await;
            assert!(matches!(out, PingOutcome::Up(r, _) if r == want), "{out:?}");
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn refused_is_up_and_bounded_silence_is_not() {
        // A port nobody listens on: refused, which proves the host is there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let out = app_ping(addr, false, Duration::from_secs(2), &Origin::default()).await;
        assert!(matches!(out, PingOutcome::Up(Reason::ConnRefused, _)), "{out:?}");
        // A listener that accepts and never answers: up (handshake), within the time bound.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let keep = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(s);
        });
        let t = Instant::now();
        let out = app_ping(addr, false, Duration::from_millis(300), &Origin::default()).await;
        assert!(matches!(out, PingOutcome::Up(Reason::SynAck, _)), "{out:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        keep.abort();
    }
}
