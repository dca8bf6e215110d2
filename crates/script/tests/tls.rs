//! TLS sockets, https and the ssl-cert script against a local rustls server (the test
//! certificate of crates/detect/testdata), on 127.0.0.1 only.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An HTTPS server answering every request with a titled page.
async fn https_server() -> u16 {
    let cert = CertificateDer::from_pem_slice(include_bytes!("../../detect/testdata/server.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../../detect/testdata/server.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else { return };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<title>Secure Lab</title>";
                let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn host(port: u16) -> HostResult {
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
    p.service = Some(ServiceInfo { name: "https".into(), ..ServiceInfo::default() });
    h.ports.push(p);
    h
}

#[tokio::test]
async fn http_title_and_ssl_cert_over_tls() {
    let port = https_server().await;
    let scripts = Catalog::builtin().unwrap().select("http-title,ssl-cert").unwrap();
    let ctx = Context { targets: Targets::new([LOCAL]), ..Context::default() };
    let limits = Limits { timeout: Duration::from_secs(10), ..Limits::default() };
    let out = Engine::new(scripts, ctx, limits, 8).run_host(&host(port)).await;
    let get = |id: &str| out.iter().find(|o| o.id == id).unwrap().result.clone().unwrap().unwrap();
    assert_eq!(get("http-title").output, "Secure Lab");
    let cert = get("ssl-cert");
    assert!(
        cert.output.starts_with("Subject: commonName=tls.test.invalid/organizationName=RustMap Test"),
        "{}",
        cert.output
    );
    assert!(cert.output.contains("SHA-256: "), "{}", cert.output);
    assert!(
        cert.elements.iter().any(|(k, v)| k == "subject.commonName" && v == "tls.test.invalid"),
        "{:?}",
        cert.elements
    );
    assert!(cert.elements.iter().any(|(k, v)| k == "pem" && v.starts_with("-----BEGIN CERTIFICATE-----")));
}

/// A mail or file server that speaks its protocol's greeting and STARTTLS command in plain text,
/// then TLS with the test certificate: `greeting` first, `reply` to the `trigger` command, any
/// other line answered with `other`.
async fn starttls_server(
    greeting: &'static str,
    trigger: &'static str,
    reply: &'static str,
    other: &'static str,
) -> u16 {
    let cert = CertificateDer::from_pem_slice(include_bytes!("../../detect/testdata/server.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("../../detect/testdata/server.key")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = s.write_all(greeting.as_bytes()).await;
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                // At most 64 commands, each at most 1 KiB: a bounded conversation.
                for _ in 0..64 {
                    line.clear();
                    while !line.ends_with(b"\n") && line.len() < 1024 {
                        match s.read(&mut byte).await {
                            Ok(1) => line.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&line).to_ascii_uppercase();
                    if text.contains(trigger) {
                        let _ = s.write_all(reply.as_bytes()).await;
                        let _ = acceptor.accept(s).await;
                        return;
                    }
                    let _ = s.write_all(other.as_bytes()).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn ssl_cert_upgrades_smtp_pop3_imap_and_ftp_with_starttls() {
    let cases = [
        (
            "smtp",
            starttls_server("220 mail ESMTP\r\n", "STARTTLS", "220 go ahead\r\n", "250-mail\r\n250 STARTTLS\r\n").await,
        ),
        ("pop3", starttls_server("+OK ready\r\n", "STLS", "+OK begin TLS\r\n", "-ERR\r\n").await),
        ("imap", starttls_server("* OK ready\r\n", "STARTTLS", "a001 OK begin\r\n", "* BAD\r\n").await),
        ("ftp", starttls_server("220 ftp ready\r\n", "AUTH TLS", "234 AUTH TLS ok\r\n", "500 what\r\n").await),
    ];
    for (service, port) in cases {
        let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
        let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
        p.service = Some(ServiceInfo { name: service.into(), ..ServiceInfo::default() });
        h.ports.push(p);
        let scripts = Catalog::builtin().unwrap().select("ssl-cert").unwrap();
        let ctx = Context { targets: Targets::new([LOCAL]), ..Context::default() };
        let limits = Limits { timeout: Duration::from_secs(10), ..Limits::default() };
        let out = Engine::new(scripts, ctx, limits, 8).run_host(&h).await;
        assert_eq!(out.len(), 1, "{service}: {out:?}");
        let cert = out[0].result.clone().unwrap().unwrap();
        assert!(cert.output.starts_with("Subject: commonName=tls.test.invalid"), "{service}: {}", cert.output);
    }
    // A server that refuses STARTTLS: no output, no error.
    let port = starttls_server("220 mail ESMTP\r\n", "NEVER", "", "502 not here\r\n").await;
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
    p.service = Some(ServiceInfo { name: "smtp".into(), ..ServiceInfo::default() });
    h.ports.push(p);
    let scripts = Catalog::builtin().unwrap().select("ssl-cert").unwrap();
    let ctx = Context { targets: Targets::new([LOCAL]), ..Context::default() };
    let out = Engine::new(scripts, ctx, Limits::default(), 8).run_host(&h).await;
    assert!(out.iter().all(|o| matches!(o.result, Ok(None))), "{out:?}");
}
