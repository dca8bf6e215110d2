//! TLS as a scanner sees it, without I/O and without cryptography.
//!
//! - [`client_hello`]: the one TLS message a scanner must write itself, built byte by byte (RFC
//!   8446 §4.1.2, RFC 5246 §7.4.1.2) so that it offers what servers of every age answer: TLS 1.3
//!   down to 1.0 through `supported_versions`, an X25519 key share (so a TLS 1.3 server sends a
//!   real ServerHello, not a HelloRetryRequest), ECDHE, DHE and RSA key exchange, GCM, ChaCha, CBC,
//!   3DES and RC4 suites. A TLS library cannot do this: rustls, for one, never speaks TLS 1.0/1.1.
//! - [`parse_flight`]: what the server sends back in the clear — records, reassembled handshake
//!   messages, the ServerHello (version, cipher, compression, extensions in order, ALPN), the
//!   certificate chain (TLS ≤ 1.2, where it travels unencrypted), alerts — and
//!   [`sslv2_server_hello`], a recogniser for SSL 2.0 answers.
//!
//! Everything read is hostile. Lengths are checked before they are used, a record may be at most
//! [`MAX_RECORD`] bytes, the handshake bytes kept at most [`MAX_FLIGHT`], the certificates at most
//! [`MAX_CERTS`]: malformed input gives a [`TlsError`], never a panic or an unbounded loop.

use thiserror::Error;

/// Record content types.
pub mod content_type {
    /// ChangeCipherSpec (TLS 1.3 servers send one for middlebox compatibility).
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    /// An alert (the server speaks TLS but refuses our offer).
    pub const ALERT: u8 = 21;
    /// A handshake message (ServerHello, HelloRetryRequest).
    pub const HANDSHAKE: u8 = 22;
    /// Application data (encrypted: nothing for us to read).
    pub const APPLICATION_DATA: u8 = 23;
}

/// Handshake message types read here.
pub mod handshake_type {
    /// ServerHello (and TLS 1.3's HelloRetryRequest, which has the same shape).
    pub const SERVER_HELLO: u8 = 2;
    /// Certificate.
    pub const CERTIFICATE: u8 = 11;
    /// ServerHelloDone: the end of a TLS ≤ 1.2 server's first flight.
    pub const SERVER_HELLO_DONE: u8 = 14;
}

/// Protocol versions on the wire.
pub mod version {
    /// SSL 2.0 (as an SSLv2 SERVER-HELLO says it).
    pub const SSL2: u16 = 0x0002;
    /// SSL 3.0.
    pub const SSL3: u16 = 0x0300;
    /// TLS 1.0.
    pub const TLS10: u16 = 0x0301;
    /// TLS 1.1.
    pub const TLS11: u16 = 0x0302;
    /// TLS 1.2.
    pub const TLS12: u16 = 0x0303;
    /// TLS 1.3.
    pub const TLS13: u16 = 0x0304;
}

/// Extension types this module reads.
pub mod extension {
    /// application_layer_protocol_negotiation (RFC 7301).
    pub const ALPN: u16 = 16;
    /// supported_versions (RFC 8446): a TLS 1.3 ServerHello's real version.
    pub const SUPPORTED_VERSIONS: u16 = 43;
}

/// The longest record accepted: 2^14 bytes of plaintext plus the 2048 bytes of expansion RFC
/// 5246 §6.2.3 allows a ciphertext.
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// The most handshake bytes kept from one server flight (certificate chains are rarely past 8 KiB).
pub const MAX_FLIGHT: usize = 64 * 1024;
/// The most certificates kept from one Certificate message.
pub const MAX_CERTS: usize = 16;

/// The random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The name of a protocol version as nmap and OpenSSL write it (`TLSv1.2`), if it is one.
pub fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        version::SSL2 => "SSLv2",
        version::SSL3 => "SSLv3",
        version::TLS10 => "TLSv1.0",
        version::TLS11 => "TLSv1.1",
        version::TLS12 => "TLSv1.2",
        version::TLS13 => "TLSv1.3",
        _ => return None,
    })
}

/// Why bytes from a server are not a readable TLS flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The first bytes are not a TLS record header.
    #[error("not a TLS record")]
    NotTls,
    /// A record longer than [`MAX_RECORD`].
    #[error("record of {0} bytes is longer than TLS allows")]
    RecordTooLong(usize),
    /// More handshake bytes than [`MAX_FLIGHT`].
    #[error("server flight longer than {MAX_FLIGHT} bytes")]
    FlightTooLong,
    /// A length field inside a message points past its end.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

// ------------------------------------------------------------------------------- ClientHello

/// Cipher suites offered, most wanted first: TLS 1.3's three; ECDHE with GCM, ChaCha20 and CBC;
/// DHE; RSA key exchange with GCM and CBC; then 3DES and RC4, which only servers with nothing
/// newer choose — offered so that such servers still answer and can be identified.
const SUITES: [u16; 34] = [
    0x1301, 0x1302, 0x1303, // TLS 1.3
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, // ECDHE AEAD
    0xc009, 0xc013, 0xc00a, 0xc014, 0xc023, 0xc027, 0xc024, 0xc028, // ECDHE CBC
    0x009e, 0x009f, 0xccaa, 0x0033, 0x0039, 0x0067, 0x006b, // DHE
    0x009c, 0x009d, 0x002f, 0x0035, 0x003c, 0x003d, // RSA
    0xc012, 0x000a, // 3DES
    0x0005, 0x0004, // RC4
];

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append extension `ty` with body `body` (bodies here are built by us, all far below 64 KiB).
fn ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    push16(out, ty);
    push16(out, body.len() as u16);
    out.extend_from_slice(body);
}

/// A complete TLS record holding a ClientHello. `random` fills the hello's random, its session
/// id and its X25519 key share (any 32 bytes are a usable X25519 public key, and we never finish
/// the key exchange); `server_name`, if given (and a plausible DNS name of at most 253 bytes), is
/// sent as SNI. ALPN offers `h2` and `http/1.1`, so that a TLS ≤ 1.2 server's choice shows in its
/// ServerHello.
pub fn client_hello(random: [u8; 32], server_name: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(320);
    push16(&mut body, version::TLS12); // legacy_version: TLS 1.2; 1.3 goes in supported_versions
    body.extend_from_slice(&random);
    // A 32-byte legacy session id, as TLS 1.3 clients send for middlebox compatibility.
    body.push(32);
    body.extend_from_slice(&random);
    push16(&mut body, (SUITES.len() * 2) as u16);
    for s in SUITES {
        push16(&mut body, s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut exts = Vec::with_capacity(192);
    if let Some(name) = server_name.filter(|n| {
        !n.is_empty() && n.len() <= 253 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    }) {
        let mut sni = Vec::with_capacity(name.len() + 5);
        push16(&mut sni, (name.len() + 3) as u16);
        sni.push(0); // host_name
        push16(&mut sni, name.len() as u16);
        sni.extend_from_slice(name.as_bytes());
        ext(&mut exts, 0x0000, &sni);
    }
    // supported_groups: x25519, secp256r1, secp384r1, ffdhe2048.
    ext(&mut exts, 0x000a, &[0, 8, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x01, 0x00]);
    // ec_point_formats: uncompressed.
    ext(&mut exts, 0x000b, &[1, 0]);
    // signature_algorithms: ECDSA, RSA-PSS, RSA PKCS#1 (SHA-256/384/512), Ed25519, then SHA-1.
    let sigs: [u16; 12] =
        [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807, 0x0203, 0x0201, 0x0202];
    let mut sa = Vec::with_capacity(26);
    push16(&mut sa, (sigs.len() * 2) as u16);
    for s in sigs {
        push16(&mut sa, s);
    }
    ext(&mut exts, 0x000d, &sa);
    // ALPN: h2, http/1.1.
    ext(&mut exts, extension::ALPN, b"\x00\x0c\x02h2\x08http/1.1");
    // extended_master_secret, session_ticket, renegotiation_info: empty, as browsers send them;
    // servers echo them, which makes the server's extension list (JA3S) say more.
    ext(&mut exts, 0x0017, &[]);
    ext(&mut exts, 0x0023, &[]);
    ext(&mut exts, 0xff01, &[0]);
    // supported_versions: TLS 1.3 down to 1.0. A server picks the highest it has.
    ext(&mut exts, extension::SUPPORTED_VERSIONS, &[8, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01]);
    // psk_key_exchange_modes: psk_dhe_ke (some TLS 1.3 servers want the extension present).
    ext(&mut exts, 0x002d, &[1, 1]);
    // key_share: one X25519 share.
    let mut ks = Vec::with_capacity(38);
    push16(&mut ks, 36);
    push16(&mut ks, 0x001d);
    push16(&mut ks, 32);
    ks.extend_from_slice(&random);
    ext(&mut exts, 0x0033, &ks);
    push16(&mut body, exts.len() as u16);
    body.extend_from_slice(&exts);

    let mut hs = Vec::with_capacity(body.len() + 4);
    hs.push(1); // client_hello
    let n = body.len() as u32;
    hs.extend_from_slice(&n.to_be_bytes()[1..]);
    hs.extend_from_slice(&body);

    let mut rec = Vec::with_capacity(hs.len() + 5);
    rec.push(content_type::HANDSHAKE);
    push16(&mut rec, version::TLS10); // record version: TLS 1.0, what servers of every age accept
    push16(&mut rec, hs.len() as u16);
    rec.extend_from_slice(&hs);
    rec
}

/// Do these first bytes from a server look like a TLS (or SSL 3.0) record: a handshake or alert
/// content type followed by a 3.x version?
pub fn looks_like_record(b: &[u8]) -> bool {
    matches!(b, [t, 3, 0..=4, ..] if *t == content_type::HANDSHAKE || *t == content_type::ALERT)
}

// ------------------------------------------------------------------------------- reading

/// A bounds-checked cursor over a message: every read says what it was reading when it ran out.
struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if n > self.b.len() {
            return Err(TlsError::Malformed(self.what));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, TlsError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, TlsError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Result<usize, TlsError> {
        let b = self.take(3)?;
        Ok((usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

/// A ServerHello (or HelloRetryRequest), as far as a scanner cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The hello's own version field (`0x0303` for TLS 1.2 and 1.3 alike): what JA3S hashes.
    pub legacy_version: u16,
    /// The negotiated version: `supported_versions` if the server sent it, else the field above.
    pub version: u16,
    /// The chosen cipher suite.
    pub cipher: u16,
    /// The chosen compression method (0: none).
    pub compression: u8,
    /// Extension types in the order the server sent them.
    pub extensions: Vec<u16>,
    /// The protocol chosen by ALPN, when the server says it here (TLS ≤ 1.2).
    pub alpn: Option<Vec<u8>>,
    /// This is a TLS 1.3 HelloRetryRequest, not a real ServerHello.
    pub hello_retry: bool,
}

impl ServerHello {
    /// Parse a ServerHello body (the handshake message without its 4-byte header).
    pub fn parse(body: &[u8]) -> Result<ServerHello, TlsError> {
        let mut r = Reader::new(body, "ServerHello");
        let legacy_version = r.u16()?;
        let random = r.take(32)?;
        let sid_len = usize::from(r.u8()?);
        if sid_len > 32 {
            return Err(TlsError::Malformed("ServerHello session id"));
        }
        r.take(sid_len)?;
        let cipher = r.u16()?;
        let compression = r.u8()?;
        let mut hello = ServerHello {
            legacy_version,
            version: legacy_version,
            cipher,
            compression,
            extensions: Vec::new(),
            alpn: None,
            hello_retry: random == HRR_RANDOM,
        };
        // SSL 3.0 and early TLS servers may end the hello here: no extensions at all.
        if r.is_empty() {
            return Ok(hello);
        }
        let ext_len = usize::from(r.u16()?);
        let mut exts = Reader::new(r.take(ext_len)?, "ServerHello extensions");
        while !exts.is_empty() {
            let ty = exts.u16()?;
            let len = usize::from(exts.u16()?);
            let data = exts.take(len)?;
            // An extension list is at most 64 KiB / 4 entries: bounded by the length check above.
            hello.extensions.push(ty);
            match ty {
                extension::SUPPORTED_VERSIONS => {
                    let mut d = Reader::new(data, "supported_versions");
                    hello.version = d.u16()?;
                }
                extension::ALPN => {
                    let mut d = Reader::new(data, "ALPN");
                    let list = d.u16()?;
                    let mut l = Reader::new(d.take(usize::from(list))?, "ALPN");
                    let n = usize::from(l.u8()?);
                    hello.alpn = Some(l.take(n)?.to_vec());
                }
                _ => {}
            }
        }
        Ok(hello)
    }
}

/// A TLS alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// 1 warning, 2 fatal.
    pub level: u8,
    /// The alert (40 handshake_failure, 70 protocol_version, ...).
    pub description: u8,
}

/// What a server sent in the clear in answer to a ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flight {
    /// The version of the first record header (what an SSL 3.0 server shows even in an alert).
    pub record_version: u16,
    /// The ServerHello, once read.
    pub hello: Option<ServerHello>,
    /// DER certificates from a Certificate message, leaf first (TLS ≤ 1.2 only: TLS 1.3
    /// encrypts it).
    pub certificates: Vec<Vec<u8>>,
    /// An alert, if the server sent one.
    pub alert: Option<Alert>,
    /// Nothing more in the clear will follow: ServerHelloDone, a TLS 1.3 ServerHello, an alert
    /// or an encrypted record was seen. `false` means "read more, then parse again".
    pub complete: bool,
}

/// Parse the bytes a server sent so far in answer to our ClientHello. Parse again from the start
/// when more arrive (a flight is at most [`MAX_FLIGHT`] bytes, so that stays cheap). A record or
/// handshake message cut short by the end of `bytes` is not an error: `complete` stays `false`.
pub fn parse_flight(bytes: &[u8]) -> Result<Flight, TlsError> {
    let mut flight = Flight::default();
    let mut hs: Vec<u8> = Vec::new();
    let mut rest = bytes;
    let mut first = true;
    while rest.len() >= 5 && !flight.complete {
        let (ty, ver, len) =
            (rest[0], u16::from_be_bytes([rest[1], rest[2]]), usize::from(u16::from_be_bytes([rest[3], rest[4]])));
        if first {
            if !looks_like_record(rest) {
                return Err(TlsError::NotTls);
            }
            flight.record_version = ver;
            first = false;
        }
        if len > MAX_RECORD {
            return Err(TlsError::RecordTooLong(len));
        }
        if rest.len() < 5 + len {
            break; // the rest of the record is still on its way
        }
        let payload = &rest[5..5 + len];
        rest = &rest[5 + len..];
        match ty {
            content_type::HANDSHAKE => {
                if hs.len() + payload.len() > MAX_FLIGHT {
                    return Err(TlsError::FlightTooLong);
                }
                hs.extend_from_slice(payload);
                read_messages(&mut hs, &mut flight)?;
            }
            content_type::ALERT => {
                let mut r = Reader::new(payload, "alert");
                flight.alert = Some(Alert { level: r.u8()?, description: r.u8()? });
                flight.complete = true;
            }
            // Encrypted from here on (or a protocol we do not read): nothing more in the clear.
            _ => flight.complete = true,
        }
    }
    if first && !bytes.is_empty() && !looks_like_record_prefix(bytes) {
        return Err(TlsError::NotTls);
    }
    Ok(flight)
}

/// Could these (fewer than 5) bytes still become a TLS record header?
fn looks_like_record_prefix(b: &[u8]) -> bool {
    match b {
        [t, ..] if !matches!(*t, content_type::HANDSHAKE | content_type::ALERT) => false,
        [_, v, ..] if *v != 3 => false,
        [_, _, minor, ..] => *minor <= 4,
        _ => true,
    }
}

/// Consume the complete handshake messages at the front of `hs` into `flight`.
fn read_messages(hs: &mut Vec<u8>, flight: &mut Flight) -> Result<(), TlsError> {
    let mut used = 0;
    while hs.len() - used >= 4 && !flight.complete {
        let m = &hs[used..];
        let ty = m[0];
        let len = (usize::from(m[1]) << 16) | (usize::from(m[2]) << 8) | usize::from(m[3]);
        if len > MAX_FLIGHT {
            return Err(TlsError::FlightTooLong);
        }
        if m.len() < 4 + len {
            break; // continued in the next record
        }
        let body = &m[4..4 + len];
        match ty {
            handshake_type::SERVER_HELLO => {
                let hello = ServerHello::parse(body)?;
                // TLS 1.3 (and a HelloRetryRequest) encrypt everything after the hello.
                flight.complete = hello.version == version::TLS13 || hello.hello_retry;
                flight.hello = Some(hello);
            }
            handshake_type::CERTIFICATE if flight.certificates.is_empty() => {
                flight.certificates = parse_certificate_list(body)?;
            }
            handshake_type::SERVER_HELLO_DONE => flight.complete = true,
            _ => {}
        }
        used += 4 + len;
    }
    hs.drain(..used);
    Ok(())
}

/// The DER certificates of a TLS ≤ 1.2 Certificate message body, at most [`MAX_CERTS`].
pub fn parse_certificate_list(body: &[u8]) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut r = Reader::new(body, "Certificate");
    let total = r.u24()?;
    let mut list = Reader::new(r.take(total)?, "Certificate list");
    let mut certs = Vec::new();
    while !list.is_empty() && certs.len() < MAX_CERTS {
        let n = list.u24()?;
        certs.push(list.take(n)?.to_vec());
    }
    Ok(certs)
}

/// What an SSL 2.0 SERVER-HELLO says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sslv2Hello {
    /// The server's version field (2 for SSL 2.0).
    pub version: u16,
    /// The server's certificate (DER), if it sent one.
    pub certificate: Option<Vec<u8>>,
    /// Number of cipher specs the server offers.
    pub cipher_specs: usize,
}

/// Recognise an SSL 2.0 SERVER-HELLO (a 2-byte record header with the high bit set, message type
/// 4), the answer of a server that speaks nothing newer.
pub fn sslv2_server_hello(b: &[u8]) -> Option<Sslv2Hello> {
    let [h0, h1, rest @ ..] = b else { return None };
    if h0 & 0x80 == 0 {
        return None;
    }
    let len = (usize::from(h0 & 0x7f) << 8) | usize::from(*h1);
    let mut r = Reader::new(rest.get(..len)?, "SSLv2 SERVER-HELLO");
    if r.u8().ok()? != 4 {
        return None;
    }
    let _session_id_hit = r.u8().ok()?;
    let _cert_type = r.u8().ok()?;
    let version = r.u16().ok()?;
    if version != version::SSL2 {
        return None;
    }
    let cert_len = usize::from(r.u16().ok()?);
    let specs_len = usize::from(r.u16().ok()?);
    let _conn_id_len = r.u16().ok()?;
    let cert = r.take(cert_len).ok()?;
    if specs_len % 3 != 0 || r.take(specs_len).is_err() {
        return None;
    }
    Some(Sslv2Hello { version, certificate: (!cert.is_empty()).then(|| cert.to_vec()), cipher_specs: specs_len / 3 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lengths_are_consistent() {
        let r = client_hello([7; 32], Some("h10.lab.test"));
        assert_eq!(r[0], 22);
        let rec_len = usize::from(u16::from_be_bytes([r[3], r[4]]));
        assert_eq!(rec_len + 5, r.len());
        assert_eq!(r[5], 1, "client_hello");
        let hs_len = (usize::from(r[6]) << 16) | (usize::from(r[7]) << 8) | usize::from(r[8]);
        assert_eq!(hs_len + 4, rec_len);
        // version, random, session id
        assert_eq!(&r[9..11], &[3, 3]);
        assert_eq!(r[43], 32);
        let suites_at = 44 + 32;
        let n = usize::from(u16::from_be_bytes([r[suites_at], r[suites_at + 1]]));
        assert_eq!(n, SUITES.len() * 2);
        let comp = suites_at + 2 + n;
        assert_eq!(&r[comp..comp + 2], &[1, 0]);
        let ext_len = usize::from(u16::from_be_bytes([r[comp + 2], r[comp + 3]]));
        assert_eq!(comp + 4 + ext_len, r.len());
        // Walk the extensions: each length fits, and the ones we rely on are there.
        let mut at = comp + 4;
        let mut types = Vec::new();
        while at < r.len() {
            let ty = u16::from_be_bytes([r[at], r[at + 1]]);
            let len = usize::from(u16::from_be_bytes([r[at + 2], r[at + 3]]));
            types.push(ty);
            at += 4 + len;
        }
        assert_eq!(at, r.len());
        for want in [0, 10, 13, 16, 43, 51] {
            assert!(types.contains(&want), "{want} in {types:?}");
        }
        // The SNI extension carries the name; TLS 1.0 is offered.
        let name = b"h10.lab.test";
        assert!(r.windows(name.len()).any(|w| w == name));
        assert!(r.windows(9).any(|w| w == [8, 3, 4, 3, 3, 3, 2, 3, 1]));
    }

    #[test]
    fn implausible_names_are_not_sent() {
        let with = client_hello([1; 32], Some("bad\x1b[31mname"));
        let without = client_hello([1; 32], None);
        assert_eq!(with, without);
    }

    #[test]
    fn record_detection() {
        assert!(looks_like_record(&[22, 3, 3, 0, 90]));
        assert!(looks_like_record(&[21, 3, 1, 0, 2, 2, 40]));
        assert!(looks_like_record(&[22, 3, 0]));
        assert!(!looks_like_record(b"HTTP/1.1 400 Bad Request"));
        assert!(!looks_like_record(b"SSH-2.0-OpenSSH"));
        assert!(!looks_like_record(&[22, 3]));
        assert!(!looks_like_record(&[]));
    }

    /// Wrap handshake messages in one record.
    fn record(ty: u8, ver: u16, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ty];
        r.extend_from_slice(&ver.to_be_bytes());
        r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn message(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![ty];
        m.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    /// A TLS 1.2 ServerHello by hand: ECDHE-RSA-AES128-GCM-SHA256, renegotiation_info, ALPN
    /// http/1.1, extended_master_secret, ec_point_formats.
    fn hello12() -> Vec<u8> {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[0x11; 32]);
        b.push(0); // no session id
        b.extend_from_slice(&[0xc0, 0x2f, 0x00]);
        let exts: &[u8] = &[
            0xff, 0x01, 0x00, 0x01, 0x00, // renegotiation_info
            0x00, 0x10, 0x00, 0x0b, 0x00, 0x09, 0x08, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1', // ALPN
            0x00, 0x17, 0x00, 0x00, // extended_master_secret
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats
        ];
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(exts);
        message(2, &b)
    }

    #[test]
    fn tls12_flight_with_two_certificates_split_across_records() {
        let certs: &[&[u8]] = &[b"\x30\x03leaf", b"\x30\x02ca"];
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        let mut hs = hello12();
        hs.extend(message(11, &body));
        hs.extend(message(14, &[]));
        // Split the handshake bytes over two records, in the middle of the Certificate message.
        let cut = hs.len() - 9;
        let mut bytes = record(22, 0x0303, &hs[..cut]);
        bytes.extend(record(22, 0x0303, &hs[cut..]));

        // Arriving a byte at a time: never an error, complete only at the end.
        for n in 0..bytes.len() {
            let f = parse_flight(&bytes[..n]).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert!(!f.complete, "{n}");
        }
        let f = parse_flight(&bytes).unwrap();
        assert!(f.complete);
        let h = f.hello.unwrap();
        assert_eq!((h.legacy_version, h.version, h.cipher, h.compression), (0x0303, 0x0303, 0xc02f, 0));
        assert_eq!(h.extensions, [0xff01, 16, 23, 11]);
        assert_eq!(h.alpn.as_deref(), Some(&b"http/1.1"[..]));
        assert!(!h.hello_retry);
        assert_eq!(f.certificates, [b"\x30\x03leaf".to_vec(), b"\x30\x02ca".to_vec()]);
    }

    #[test]
    fn tls13_hello_ends_the_clear_part() {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[0x22; 32]);
        b.push(32);
        b.extend_from_slice(&[0x33; 32]);
        b.extend_from_slice(&[0x13, 0x02, 0x00]);
        let exts: &[u8] = &[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x00];
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(exts);
        let mut bytes = record(22, 0x0303, &message(2, &b));
        bytes.extend(record(20, 0x0303, &[1]));
        bytes.extend(record(23, 0x0303, &[0xaa; 40]));
        let f = parse_flight(&bytes).unwrap();
        assert!(f.complete);
        let h = f.hello.unwrap();
        assert_eq!((h.legacy_version, h.version, h.cipher), (0x0303, 0x0304, 0x1302));
        assert_eq!(h.extensions, [43, 51]);
        assert!(f.certificates.is_empty());
    }

    #[test]
    fn hello_retry_request_is_recognised() {
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&HRR_RANDOM);
        b.extend_from_slice(&[0, 0x13, 0x01, 0x00, 0x00, 0x06, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
        let f = parse_flight(&record(22, 0x0303, &message(2, &b))).unwrap();
        assert!(f.complete && f.hello.unwrap().hello_retry);
    }

    #[test]
    fn ssl3_hello_without_extensions() {
        let mut b = vec![0x03, 0x00];
        b.extend_from_slice(&[0x44; 32]);
        b.extend_from_slice(&[0, 0x00, 0x0a, 0x00]);
        let mut bytes = record(22, 0x0300, &message(2, &b));
        bytes.extend(record(22, 0x0300, &message(14, &[])));
        let f = parse_flight(&bytes).unwrap();
        assert_eq!(f.record_version, 0x0300);
        let h = f.hello.unwrap();
        assert_eq!((h.version, h.cipher), (0x0300, 0x000a));
        assert!(h.extensions.is_empty());
        assert_eq!(version_name(h.version), Some("SSLv3"));
    }

    #[test]
    fn alert_is_a_complete_answer() {
        let f = parse_flight(&[21, 3, 1, 0, 2, 2, 70]).unwrap();
        assert!(f.complete && f.hello.is_none());
        assert_eq!(f.alert, Some(Alert { level: 2, description: 70 }));
        assert_eq!(f.record_version, 0x0301);
    }

    #[test]
    fn hostile_flights_are_errors_not_panics() {
        assert_eq!(parse_flight(b"SSH-2.0-OpenSSH_9.2\r\n"), Err(TlsError::NotTls));
        assert_eq!(parse_flight(b"HTTP/1.1 400"), Err(TlsError::NotTls));
        assert_eq!(parse_flight(b"H"), Err(TlsError::NotTls));
        assert_eq!(parse_flight(&[22, 3]).map(|f| f.complete), Ok(false));
        assert_eq!(parse_flight(&[22, 3, 3, 0xff, 0xff]), Err(TlsError::RecordTooLong(0xffff)));
        // A ServerHello whose extension length points past its end.
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[0; 32]);
        b.extend_from_slice(&[0, 0xc0, 0x2f, 0x00, 0x00, 0x40]);
        assert!(matches!(parse_flight(&record(22, 0x0303, &message(2, &b))), Err(TlsError::Malformed(_))));
        // A session id longer than 32.
        let mut b = vec![0x03, 0x03];
        b.extend_from_slice(&[0; 32]);
        b.push(200);
        assert!(matches!(parse_flight(&record(22, 0x0303, &message(2, &b))), Err(TlsError::Malformed(_))));
        // A certificate list whose inner length is past the list.
        let body = [0, 0, 4, 0, 0, 9, 1];
        assert!(parse_certificate_list(&body).is_err());
        // A handshake message announcing 16 MiB: refused before anything is buffered for it.
        let bytes = record(22, 0x0303, &[11, 0xff, 0xff, 0xff]);
        assert_eq!(parse_flight(&bytes), Err(TlsError::FlightTooLong));
        // Endless empty records are consumed without end-of-data confusion.
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend(record(22, 0x0303, &[]));
        }
        assert_eq!(parse_flight(&bytes).map(|f| f.complete), Ok(false));
    }

    #[test]
    fn sslv2_server_hello_is_recognised() {
        // SERVER-HELLO: no session hit, X.509 cert type, version 2, a 3-byte "certificate", one
        // cipher spec, a 16-byte connection id.
        let mut m = vec![4, 0, 1, 0x00, 0x02, 0x00, 0x03, 0x00, 0x03, 0x00, 0x10];
        m.extend_from_slice(b"\x30\x01\x00");
        m.extend_from_slice(&[0x01, 0x00, 0x80]);
        m.extend_from_slice(&[0x5a; 16]);
        let mut b = vec![0x80 | (m.len() >> 8) as u8, m.len() as u8];
        b.extend_from_slice(&m);
        let h = sslv2_server_hello(&b).unwrap();
        assert_eq!((h.version, h.cipher_specs), (2, 1));
        assert_eq!(h.certificate.as_deref(), Some(&b"\x30\x01\x00"[..]));
        assert_eq!(version_name(h.version), Some("SSLv2"));
        assert!(sslv2_server_hello(&b[..b.len() - 1]).is_none());
        assert!(sslv2_server_hello(b"\x15\x03\x01\x00\x02\x02\x28").is_none());
    }
}
