//! QUIC detection on UDP ports: which QUIC versions a server speaks and which application
//! protocol (ALPN: `h3`, `doq`, ...) it agrees to.
//!
//! Two probes run side by side, each bounded in time:
//! - a Version Negotiation probe ([`rustmap_wire::quic`]): one datagram with a reserved version;
//!   any QUIC server answers with the versions it supports, without creating state. The answer
//!   must echo our connection IDs, so a stray datagram is not taken for one.
//! - a QUIC v1 handshake with [`quinn`] (over rustls), offering the common ALPN values, to learn
//!   the one the server picks. We scan, we do not authenticate: any certificate is accepted.
//!
//! Either answer proves QUIC. Nothing read from the network is trusted beyond its parsed,
//! bounded form.

use crate::engine::local_for;
use crate::tls::AcceptAny;
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use rustmap_model::{QuicInfo, ServiceInfo, ServiceMethod};
use rustmap_wire::quic::{version_name, version_probe, VersionNegotiation};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// UDP ports QUIC is probed on at any intensity: HTTPS and its alternates, DNS over QUIC.
pub const QUIC_PORTS: [u16; 8] = [443, 784, 853, 4433, 4443, 8443, 8853, 9443];

/// From this `--version-intensity` on, every open or open|filtered UDP port gets the QUIC probes.
pub const QUIC_ANY_PORT_INTENSITY: u8 = 8;

/// ALPN values offered in the handshake, most common first.
const ALPN: [&[u8]; 6] = [b"h3", b"h3-29", b"doq", b"hq-interop", b"hq-29", b"smb"];

/// Whether the QUIC probes suit `port` at `intensity`.
pub fn quic_suits(port: u16, intensity: u8) -> bool {
    QUIC_PORTS.contains(&port) || intensity >= QUIC_ANY_PORT_INTENSITY
}

/// Probe `target` for QUIC within `wait`. `None` when nothing QUIC answered.
pub async fn probe_quic(target: SocketAddr, bind: Option<IpAddr>, wait: Duration) -> Option<QuicInfo> {
    let vn = version_negotiation(target, bind, wait);
    let hs = handshake(target, bind, wait);
    tokio::pin!(vn, hs);
    let (versions, alpn) = tokio::select! {
        v = &mut vn => match v {
            // ICMP port unreachable: nothing listens; do not wait for the handshake to time out.
            Vn::Refused => return None,
            Vn::Versions(v) => (Some(v), hs.await),
            Vn::Silent => (None, hs.await),
        },
        a = &mut hs => match vn.await {
            Vn::Versions(v) => (Some(v), a),
            Vn::Refused | Vn::Silent => (None, a),
        },
    };
    let handshook = alpn.is_some();
    if versions.is_none() && !handshook {
        return None;
    }
    let mut versions = versions.unwrap_or_default();
    if handshook && versions.is_empty() {
        // The handshake was QUIC v1 (quinn's version); the server did not list its versions.
        versions.push("1".into());
    }
    Some(QuicInfo { versions, alpn: alpn.flatten() })
}

/// The service for a QUIC finding: name `quic`, what was learnt in `extrainfo`.
pub fn quic_service(q: &QuicInfo) -> ServiceInfo {
    let mut info = Vec::new();
    if let Some(a) = &q.alpn {
        info.push(format!("ALPN {a}"));
    }
    if !q.versions.is_empty() {
        info.push(format!("versions {}", q.versions.join(", ")));
    }
    ServiceInfo {
        name: "quic".into(),
        method: ServiceMethod::Probed,
        conf: 10,
        extrainfo: (!info.is_empty()).then(|| info.join("; ")),
        ..Default::default()
    }
}

/// How the Version Negotiation probe ended.
enum Vn {
    /// The server's versions, by name.
    Versions(Vec<String>),
    /// ICMP port unreachable.
    Refused,
    /// No valid answer in time (or no socket).
    Silent,
}

/// The Version Negotiation probe.
async fn version_negotiation(target: SocketAddr, bind: Option<IpAddr>, wait: Duration) -> Vn {
    let Ok(sock) = UdpSocket::bind(local_for(target, bind)).await else { return Vn::Silent };
    if sock.connect(target).await.is_err() {
        return Vn::Silent;
    }
    let dcid: [u8; 8] = rand::random();
    let scid: [u8; 8] = rand::random();
    let probe = version_probe(rand::random(), &dcid, &scid);
    let mut buf = vec![0u8; 2048];
    // Two sends, the second halfway through: one lost datagram does not hide the server.
    for _ in 0..2 {
        if sock.send(&probe).await.is_err() {
            return Vn::Silent;
        }
        let until = tokio::time::Instant::now() + wait / 2;
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Vn::Refused,
                Ok(Err(_)) => return Vn::Silent,
                Ok(Ok(n)) => {
                    if let Ok(vn) = VersionNegotiation::parse(&buf[..n]) {
                        // It must echo our IDs (RFC 8999 §6), or it is not an answer to us.
                        if vn.dcid == scid && vn.scid == dcid {
                            return Vn::Versions(vn.versions.iter().map(|&v| version_name(v)).collect());
                        }
                    }
                }
            }
        }
    }
    Vn::Silent
}

/// A QUIC v1 handshake: `Some(alpn)` if the server completed it (or refused only our ALPN
/// offer, which still proves a QUIC v1 server), `None` otherwise.
async fn handshake(target: SocketAddr, bind: Option<IpAddr>, wait: Duration) -> Option<Option<String>> {
    let config = client_config(wait)?;
    let endpoint = quinn::Endpoint::client(local_for(target, bind)).ok()?;
    // The address as server name: rustls then sends no SNI, and any certificate is accepted.
    let connecting = endpoint.connect_with(config, target, &target.ip().to_string()).ok()?;
    let result = match timeout(wait, connecting).await {
        Ok(Ok(conn)) => {
            let alpn = conn
                .handshake_data()
                .and_then(|d| d.downcast::<HandshakeData>().ok())
                .and_then(|d| d.protocol)
                .map(|p| String::from_utf8_lossy(&p).chars().filter(|c| !c.is_control()).take(32).collect());
            conn.close(0u32.into(), b"");
            Some(alpn)
        }
        // A CONNECTION_CLOSE (a TLS alert such as no_application_protocol, or any other) came
        // from a QUIC v1 server that could read our Initial: QUIC, ALPN unknown.
        Ok(Err(quinn::ConnectionError::ConnectionClosed(_)))
        | Ok(Err(quinn::ConnectionError::ApplicationClosed(_))) => Some(None),
        _ => None,
    };
    // Do not wait for the peer's acknowledgement of our close: the scan moves on.
    endpoint.close(0u32.into(), b"");
    result
}

fn client_config(wait: Duration) -> Option<quinn::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = ALPN.iter().map(|a| a.to_vec()).collect();
    let crypto = QuicClientConfig::try_from(tls).ok()?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(quinn::IdleTimeout::try_from(wait).ok());
    config.transport_config(Arc::new(transport));
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_service_text() {
        assert!(quic_suits(443, 0) && quic_suits(853, 7));
        assert!(!quic_suits(53, 7) && quic_suits(53, 8));
        let s = quic_service(&QuicInfo { versions: vec!["1".into(), "2".into()], alpn: Some("h3".into()) });
        assert_eq!(s.name, "quic");
        assert_eq!(s.extrainfo.as_deref(), Some("ALPN h3; versions 1, 2"));
        let s = quic_service(&QuicInfo { versions: vec!["1".into()], alpn: None });
        assert_eq!(s.extrainfo.as_deref(), Some("versions 1"));
    }

    #[tokio::test]
    async fn a_version_negotiation_answer_is_read_and_a_stray_one_is_not() {
        // A loopback responder that answers with a Version Negotiation, echoing the IDs
        // correctly (first datagram) or not (second responder).
        async fn responder(echo: bool) -> SocketAddr {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = sock.local_addr().unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                for _ in 0..4 {
                    let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
                    let p = &buf[..n];
                    let dlen = usize::from(p[5]);
                    let dcid = p[6..6 + dlen].to_vec();
                    let slen = usize::from(p[6 + dlen]);
                    let scid = p[7 + dlen..7 + dlen + slen].to_vec();
                    let (d, s) = if echo { (scid, dcid) } else { (vec![1; 8], vec![2; 8]) };
                    let mut out = vec![0x80, 0, 0, 0, 0, d.len() as u8];
                    out.extend_from_slice(&d);
                    out.push(s.len() as u8);
                    out.extend_from_slice(&s);
                    out.extend_from_slice(&1u32.to_be_bytes());
                    out.extend_from_slice(&0xff00_001du32.to_be_bytes());
                    let _ = sock.send_to(&out, from).await;
                }
            });
            addr
        }
        let good = responder(true).await;
        let q = probe_quic(good, None, Duration::from_millis(400)).await.unwrap();
        assert_eq!(q.versions, ["1", "draft-29"]);
        assert_eq!(q.alpn, None);
        let stray = responder(false).await;
        assert_eq!(probe_quic(stray, None, Duration::from_millis(400)).await, None);
    }

    #[tokio::test]
    async fn closed_udp_port_is_not_quic_and_costs_little() {
        let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let started = std::time::Instant::now();
        assert_eq!(probe_quic(closed, None, Duration::from_secs(2)).await, None);
        // The ICMP refusal ends it at once, without waiting for the handshake to time out.
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
