//! TLS in service detection: finding TLS on a port, the facts of its handshake, and sessions to
//! run probes through.
//!
//! Two TLS stacks, each for what it can do:
//! - **Our own ClientHello** ([`rustmap_wire::tls`]) offers TLS 1.0–1.3 and legacy suites, so every
//!   TLS server answers it — including those that speak only TLS 1.0 or SSL 3.0, which no modern
//!   library will talk to. Its answer gives the ServerHello facts, JA3S/JA4S and, up to TLS 1.2,
//!   the certificate chain (sent in the clear). [`hello_on`] does this; it never finishes the
//!   handshake.
//! - **rustls** (ring provider) opens real TLS 1.2/1.3 sessions: one offering ALPN (`h2`,
//!   `http/1.1`) for the negotiated version, cipher, ALPN and the chain (encrypted in TLS 1.3),
//!   and one per probe, without ALPN so that the server speaks its default protocol, for the
//!   probes run inside TLS. Its certificate verifier accepts any certificate: a scanner reports
//!   certificates, it does not trust them.
//!
//! Bounds: the hello's answer is read up to [`rustmap_wire::tls::MAX_FLIGHT`] bytes and within
//! the probe's deadline; sessions are opened within the connect plus answer timeouts; the chain
//! is cut to [`rustmap_wire::tls::MAX_CERTS`] certificates.

use crate::cert;
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustmap_model::TlsInfo;
use rustmap_wire::tls::{self as wire, Flight, ServerHello};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What our own ClientHello got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloAnswer {
    /// A TLS (or SSL 3.0) server: its clear flight, possibly cut short by the deadline.
    Tls(Flight),
    /// An SSL 2.0 server.
    Sslv2(wire::Sslv2Hello),
    /// Bytes that are not TLS (a banner, an HTTP error), or nothing at all.
    NotTls,
}

impl HelloAnswer {
    /// Does the port speak TLS (or SSL)?
    pub fn is_tls(&self) -> bool {
        !matches!(self, HelloAnswer::NotTls)
    }
}

/// Read a server's answer to our ClientHello on `stream` until its clear flight is complete,
/// the deadline passes, or it is not TLS.
pub async fn hello_on<S>(stream: &mut S, deadline: Instant) -> HelloAnswer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let hello = wire::client_hello(rand_bytes(), None);
    if timeout_at(deadline, stream.write_all(&hello)).await.map_or(true, |r| r.is_err()) {
        return HelloAnswer::NotTls;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut last: Option<Flight> = None;
    loop {
        let n = match timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break, // deadline, close or reset: judge what we have
        };
        let room = wire::MAX_FLIGHT + 5 * 8 - buf.len();
        buf.extend_from_slice(&chunk[..n.min(room)]);
        if let Some(h) = wire::sslv2_server_hello(&buf) {
            return HelloAnswer::Sslv2(h);
        }
        match wire::parse_flight(&buf) {
            Ok(f) if f.complete => return HelloAnswer::Tls(f),
            Ok(f) => last = Some(f),
            // Not TLS; or TLS that went wrong part-way (keep what was read before the fault).
            Err(_) => return last.filter(|f| f.hello.is_some()).map_or(HelloAnswer::NotTls, HelloAnswer::Tls),
        }
        if buf.len() >= wire::MAX_FLIGHT {
            break;
        }
    }
    // Deadline or close: a flight with a ServerHello (or an alert) is still TLS.
    match last {
        Some(f) if f.hello.is_some() || f.alert.is_some() => HelloAnswer::Tls(f),
        _ => HelloAnswer::NotTls,
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut r = [0u8; 32];
    // ring's system random; a failure leaves a fixed random, which is still a valid hello.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r);
    r
}

/// JA3S of a ServerHello: the input string and its MD5, hex.
pub fn ja3s(h: &ServerHello) -> (String, String) {
    let exts: Vec<String> = h.extensions.iter().map(u16::to_string).collect();
    let s = format!("{},{},{}", h.legacy_version, h.cipher, exts.join("-"));
    let digest = Md5::digest(s.as_bytes());
    (s, digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// JA4S of a ServerHello (FoxIO's JA4+ suite): `t` + version + extension count + first and last
/// character of the chosen ALPN, the cipher in hex, and the first 12 hex digits of the SHA-256 of
/// the extension list (hex, comma-separated, in the order sent).
pub fn ja4s(h: &ServerHello) -> String {
    let version = match h.version {
        wire::version::TLS13 => "13",
        wire::version::TLS12 => "12",
        wire::version::TLS11 => "11",
        wire::version::TLS10 => "10",
        wire::version::SSL3 => "s3",
        wire::version::SSL2 => "s2",
        _ => "00",
    };
    let alpn = match h.alpn.as_deref() {
        Some([first, .., last]) if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() => {
            format!("{}{}", *first as char, *last as char)
        }
        Some([only]) if only.is_ascii_alphanumeric() => format!("{0}{0}", *only as char),
        _ => "00".to_string(),
    };
    let exts: Vec<String> = h.extensions.iter().map(|e| format!("{e:04x}")).collect();
    let hash = if exts.is_empty() {
        "000000000000".to_string()
    } else {
        let d = ring::digest::digest(&ring::digest::SHA256, exts.join(",").as_bytes());
        d.as_ref().iter().take(6).map(|b| format!("{b:02x}")).collect()
    };
    format!("t{version}{:02}{alpn}_{:04x}_{hash}", h.extensions.len().min(99), h.cipher)
}

/// A cipher suite's IANA name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), or `0xC02F` for a suite
/// not named here. Named: every suite our ClientHello offers (a server may pick no other) and
/// those rustls negotiates.
pub fn cipher_name(id: u16) -> String {
    let name = match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        _ => return format!("0x{id:04X}"),
    };
    name.to_string()
}

// ------------------------------------------------------------------------------- rustls

/// Accepts every certificate and signature: we scan, we do not authenticate. (The handshake's
/// key exchange still happens; only the trust decisions are skipped.) Also used by the QUIC
/// handshake ([`crate::quic`]).
#[derive(Debug)]
pub(crate) struct AcceptAny(pub(crate) Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn config(alpn: bool) -> Option<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    if alpn {
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    // No session resumption across ports or hosts: each connection stands on its own.
    c.resumption = rustls::client::Resumption::disabled();
    Some(Arc::new(c))
}

/// The two client configurations, built once.
fn connector(alpn: bool) -> Option<TlsConnector> {
    static WITH_ALPN: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
    static PLAIN: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
    let cell = if alpn { &WITH_ALPN } else { &PLAIN };
    cell.get_or_init(|| config(alpn)).clone().map(TlsConnector::from)
}

/// Open a rustls session over `tcp` within `within`. `alpn` offers `h2` and `http/1.1`.
pub async fn session(tcp: TcpStream, target: SocketAddr, alpn: bool, within: Duration) -> Option<TlsStream<TcpStream>> {
    let name = ServerName::IpAddress(target.ip().into());
    timeout(within, connector(alpn)?.connect(name, tcp)).await.ok()?.ok()
}

/// What a rustls session negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFacts {
    /// Protocol version (`TLSv1.3`).
    pub version: String,
    /// Cipher suite, IANA name.
    pub cipher: String,
    /// ALPN protocol, if any.
    pub alpn: Option<String>,
    /// DER certificates, leaf first.
    pub certs: Vec<Vec<u8>>,
}

/// The facts of an open session.
pub fn facts(s: &TlsStream<TcpStream>) -> SessionFacts {
    let c = s.get_ref().1;
    let version = match c.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    };
    SessionFacts {
        version: version.to_string(),
        cipher: c.negotiated_cipher_suite().map(|s| cipher_name(u16::from(s.suite()))).unwrap_or_default(),
        alpn: c.alpn_protocol().map(|p| cert::clean(&String::from_utf8_lossy(p))),
        certs: c
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .take(wire::MAX_CERTS)
            .map(|d| d.as_ref().to_vec())
            .collect(),
    }
}

/// Put together what the hello and (if one opened) a session found. `with_ja4s`: compute JA4S
/// (`--ja4s`).
pub fn tls_info(answer: &HelloAnswer, session: Option<&SessionFacts>, with_ja4s: bool) -> TlsInfo {
    let mut info = TlsInfo { session: session.is_some(), ..Default::default() };
    let mut chain: Vec<Vec<u8>> = Vec::new();
    match answer {
        HelloAnswer::Tls(f) => {
            if let Some(h) = &f.hello {
                info.version = wire::version_name(h.version).map_or(format!("0x{:04X}", h.version), str::to_string);
                info.cipher = cipher_name(h.cipher);
                info.alpn = h.alpn.as_deref().map(|p| cert::clean(&String::from_utf8_lossy(p)));
                (info.ja3s_string, info.ja3s) = ja3s(h);
                if with_ja4s {
                    info.ja4s = Some(ja4s(h));
                }
            } else if f.record_version == wire::version::SSL3 {
                // Only an alert. Its record version is no negotiation (TLS servers write 1.0 or
                // 1.2 there alike), except that an SSL 3.0 header marks an SSL 3.0 server.
                info.version = "SSLv3".into();
            }
            chain = f.certificates.clone();
        }
        HelloAnswer::Sslv2(h) => {
            info.version = "SSLv2".into();
            chain.extend(h.certificate.clone());
        }
        HelloAnswer::NotTls => {}
    }
    if let Some(s) = session {
        // What the session negotiated with a modern client is the better answer to "what does
        // this server speak"; the chain too (TLS 1.3 sends it encrypted, so only the session has it).
        info.version = s.version.clone();
        info.cipher = s.cipher.clone();
        info.alpn = s.alpn.clone();
        if !s.certs.is_empty() {
            chain = s.certs.clone();
        }
    }
    info.certs = chain.iter().filter_map(|d| cert::describe(d)).collect();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: u16, cipher: u16, extensions: Vec<u16>, alpn: Option<&[u8]>) -> ServerHello {
        ServerHello {
            legacy_version: version.min(0x0303),
            version,
            cipher,
            compression: 0,
            extensions,
            alpn: alpn.map(<[u8]>::to_vec),
            hello_retry: false,
        }
    }

    #[test]
    fn ja3s_string_and_digest() {
        let h = hello(0x0303, 0xc02f, vec![0xff01, 0x0010, 0x0017, 0x000b], Some(b"http/1.1"));
        let (s, d) = ja3s(&h);
        assert_eq!(s, "771,49199,65281-16-23-11");
        // MD5 of that string, computed independently (`printf %s ... | md5sum`).
        assert_eq!(d, "9bc2aa36e5735d9bce0cf9f6e5a17a09");
        let h = hello(0x0301, 0x002f, vec![], None);
        assert_eq!(ja3s(&h).0, "769,47,");
    }

    #[test]
    fn ja4s_format() {
        let h = hello(0x0304, 0x1302, vec![0x002b, 0x0033], None);
        let j = ja4s(&h);
        // SHA-256("002b,0033"), first 12 hex digits, computed independently (sha256sum).
        assert_eq!(j, "t130200_1302_a56c5b993250");
        let h = hello(0x0303, 0xc02f, vec![0xff01, 0x0010], Some(b"http/1.1"));
        assert!(ja4s(&h).starts_with("t1202h1_c02f_"), "{}", ja4s(&h));
        let h = hello(0x0300, 0x000a, vec![], None);
        assert_eq!(ja4s(&h), "ts30000_000a_000000000000");
    }

    #[test]
    fn cipher_names() {
        assert_eq!(cipher_name(0x1302), "TLS_AES_256_GCM_SHA384");
        assert_eq!(cipher_name(0xc02f), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(cipher_name(0x002f), "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(cipher_name(0xfefe), "0xFEFE");
    }

    #[test]
    fn facts_from_a_legacy_hello_alone() {
        let f = Flight {
            record_version: 0x0301,
            hello: Some(hello(0x0301, 0xc013, vec![0xff01, 0x000b], None)),
            certificates: vec![b"not a certificate".to_vec()],
            alert: None,
            complete: true,
        };
        let i = tls_info(&HelloAnswer::Tls(f), None, false);
        assert_eq!((i.version.as_str(), i.cipher.as_str()), ("TLSv1.0", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
        assert_eq!(i.ja3s_string, "769,49171,65281-11");
        assert!(i.ja4s.is_none() && !i.session);
        assert!(i.certs.is_empty(), "garbage is left out of the chain");
        let alert = Flight {
            record_version: 0x0300,
            alert: Some(wire::Alert { level: 2, description: 40 }),
            complete: true,
            ..Default::default()
        };
        assert_eq!(tls_info(&HelloAnswer::Tls(alert.clone()), None, true).version, "SSLv3");
        let alert = Flight { record_version: 0x0301, ..alert };
        assert_eq!(tls_info(&HelloAnswer::Tls(alert), None, true).version, "", "an alert's header says no version");
    }
}
