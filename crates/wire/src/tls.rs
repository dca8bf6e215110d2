//! The one TLS message a scanner must write itself: a ClientHello, built byte by byte (RFC 8446
//! §4.1.2, RFC 5246 §7.4.1.2) so that it can offer what old and new servers both answer — TLS
//! 1.3 and 1.2 through `supported_versions`, classic RSA and ECDHE suites for servers that know
//! nothing newer. Also the check whether bytes read back look like a TLS record. No I/O.

/// Record content types a server answers a ClientHello with.
pub mod content_type {
    /// An alert (the server speaks TLS but refuses our offer).
    pub const ALERT: u8 = 21;
    /// A handshake message (ServerHello, HelloRetryRequest).
    pub const HANDSHAKE: u8 = 22;
}

/// Cipher suites offered: TLS 1.3's three, then ECDHE-GCM/ChaCha, then RSA key exchange and
/// CBC suites for old servers.
const SUITES: [u16; 16] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
    0x0035, 0x000a,
];

fn push16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append extension `ty` with body `body`.
fn ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    push16(out, ty);
    push16(out, body.len() as u16);
    out.extend_from_slice(body);
}

/// A complete TLS record holding a ClientHello. `random` fills the hello's random and session
/// id; `server_name`, if given (and a plausible DNS name of at most 253 bytes), is sent as SNI.
pub fn client_hello(random: [u8; 32], server_name: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    push16(&mut body, 0x0303); // legacy_version: TLS 1.2
    body.extend_from_slice(&random);
    // A 32-byte legacy session id, as TLS 1.3 clients send for middlebox compatibility.
    body.push(32);
    body.extend_from_slice(&random);
    push16(&mut body, (SUITES.len() * 2) as u16);
    for s in SUITES {
        push16(&mut body, s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null only

    let mut exts = Vec::with_capacity(128);
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
    // supported_groups: x25519, secp256r1, secp384r1.
    ext(&mut exts, 0x000a, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    // ec_point_formats: uncompressed.
    ext(&mut exts, 0x000b, &[1, 0]);
    // signature_algorithms: ECDSA P-256, RSA-PSS, RSA PKCS#1 (SHA-256/384/512), RSA SHA-1.
    let sigs: [u16; 9] = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201];
    let mut sa = Vec::with_capacity(20);
    push16(&mut sa, (sigs.len() * 2) as u16);
    for s in sigs {
        push16(&mut sa, s);
    }
    ext(&mut exts, 0x000d, &sa);
    // supported_versions: TLS 1.3, 1.2. With no key_share a 1.3 server answers with a
    // HelloRetryRequest, which is still a handshake record.
    ext(&mut exts, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]);
    push16(&mut body, exts.len() as u16);
    body.extend_from_slice(&exts);

    let mut hs = Vec::with_capacity(body.len() + 4);
    hs.push(1); // client_hello
    let n = body.len() as u32;
    hs.extend_from_slice(&n.to_be_bytes()[1..]);
    hs.extend_from_slice(&body);

    let mut rec = Vec::with_capacity(hs.len() + 5);
    rec.push(content_type::HANDSHAKE);
    push16(&mut rec, 0x0301); // record version: TLS 1.0, what servers of every age accept
    push16(&mut rec, hs.len() as u16);
    rec.extend_from_slice(&hs);
    rec
}

/// Do these first bytes from a server look like a TLS (or SSL 3.0) record: a handshake or alert
/// content type followed by a 3.x version?
pub fn looks_like_record(b: &[u8]) -> bool {
    matches!(b, [t, 3, 0..=4, ..] if *t == content_type::HANDSHAKE || *t == content_type::ALERT)
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
        // The SNI extension carries the name.
        let name = b"h10.lab.test";
        assert!(r.windows(name.len()).any(|w| w == name));
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
}
