//! X.509 certificates a server sent, turned into [`CertInfo`]: names, alternative names,
//! validity, key, signature algorithm, self-signedness and fingerprint.
//!
//! A certificate is hostile input like any other network bytes: it is parsed by `x509-parser`
//! (a DER parser with no unsafe code), every string is cleaned of control characters and cut to
//! [`MAX_TEXT`] characters, and at most [`MAX_NAMES`] attributes or alternative names are kept.
//! A certificate that does not parse is left out of the chain rather than failing the port.

use rustmap_model::CertInfo;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// Longest string kept from a certificate field, in characters.
pub const MAX_TEXT: usize = 256;
/// Most name attributes (and, separately, alternative names) kept per certificate.
pub const MAX_NAMES: usize = 32;

/// Keep printable characters only, fold blanks, cut to [`MAX_TEXT`].
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT));
    for c in s.chars().filter(|c| !c.is_control()).take(MAX_TEXT) {
        out.push(c);
    }
    out.trim().to_string()
}

/// Attribute types by OID, with the long names nmap's ssl-cert (and OpenSSL) write.
fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "commonName",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "countryName",
        "2.5.4.7" => "localityName",
        "2.5.4.8" => "stateOrProvinceName",
        "2.5.4.9" => "streetAddress",
        "2.5.4.10" => "organizationName",
        "2.5.4.11" => "organizationalUnitName",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "givenName",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "domainComponent",
        "0.9.2342.19200300.100.1.1" => "userId",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionCountryName",
        "2.5.4.15" => "businessCategory",
        _ => return None,
    })
}

/// Signature algorithms by OID, OpenSSL's names.
fn signature_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return None,
    })
}

/// Named curves by OID, OpenSSL's names.
fn curve_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => "prime256v1",
        "1.3.132.0.34" => "secp384r1",
        "1.3.132.0.35" => "secp521r1",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "prime192v1",
        "1.3.132.0.33" => "secp224r1",
        _ => return None,
    })
}

fn curve_bits(name: &str) -> u32 {
    match name {
        "prime256v1" | "secp256k1" => 256,
        "secp384r1" => 384,
        "secp521r1" => 521,
        "prime192v1" => 192,
        "secp224r1" => 224,
        _ => 0,
    }
}

fn name_attrs(name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for attr in name.iter_rdn().flat_map(|rdn| rdn.iter()).take(MAX_NAMES) {
        let oid = attr.attr_type().to_id_string();
        let key = attribute_name(&oid).map_or(oid, str::to_string);
        // PrintableString, UTF8String, IA5String as text; BMPString and the rest as lossy bytes.
        let value = match attr.as_str() {
            Ok(s) => clean(s),
            Err(_) => clean(&String::from_utf8_lossy(attr.as_slice())),
        };
        out.push((key, value));
    }
    out
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return Vec::new() };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) => Some(format!("DNS:{}", clean(s))),
            GeneralName::RFC822Name(s) => Some(format!("email:{}", clean(s))),
            GeneralName::URI(s) => Some(format!("URI:{}", clean(s))),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(format!("IP Address:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    Some(format!("IP Address:{}", std::net::Ipv6Addr::from(a)))
                }
                _ => None,
            },
            _ => None,
        })
        .take(MAX_NAMES)
        .collect()
}

fn iso8601(t: &ASN1Time) -> String {
    chrono::DateTime::from_timestamp(t.timestamp(), 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Describe one DER certificate; `None` if it does not parse.
pub fn describe(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.to_id_string();
    let (key_type, mut key_bits, mut key_curve) = match key_oid.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => ("rsa".to_string(), 0, None),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .map(|o| curve_name(&o).map_or(o, str::to_string));
            ("ec".to_string(), 0, curve)
        }
        "1.2.840.10040.4.1" => ("dsa".to_string(), 0, None),
        "1.3.101.112" => ("ed25519".to_string(), 256, None),
        "1.3.101.113" => ("ed448".to_string(), 456, None),
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => ("dh".to_string(), 0, None),
        other => (other.to_string(), 0, None),
    };
    if key_bits == 0 {
        key_bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => rsa.key_size() as u32,
            // The point's length gives the field size; the curve's name is more exact.
            Ok(PublicKey::EC(ec)) => {
                key_curve.as_deref().map(curve_bits).filter(|b| *b > 0).unwrap_or(ec.key_size() as u32)
            }
            Ok(k) => k.key_size() as u32,
            Err(_) => 0,
        };
    }
    if let Some(c) = key_curve.as_mut() {
        *c = clean(c);
    }
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let signature_algorithm = signature_name(&sig_oid).map_or(sig_oid, str::to_string);
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    // Issuer equal to subject is only a claim; the signature checking out under the
    // certificate's own key is what makes it self-signed (ring does the arithmetic).
    let self_signed = same_name && cert.verify_signature(None).is_ok();
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    Some(CertInfo {
        subject: name_attrs(cert.subject()),
        issuer: name_attrs(cert.issuer()),
        sans: sans(&cert),
        not_before: iso8601(&cert.validity().not_before),
        not_after: iso8601(&cert.validity().not_after),
        key_type,
        key_bits,
        key_curve,
        signature_algorithm,
        self_signed,
        sha256,
        serial: hex(cert.raw_serial()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate made once for this test with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 -nodes
    ///  -subj "/O=RustMap Test/CN=test.invalid" -addext "subjectAltName=DNS:test.invalid,IP:192.0.2.1"`.
    const EC_SELF_SIGNED: &str = include_str!("../testdata/ec-selfsigned.pem");

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        decode_base64(&b64)
    }

    fn decode_base64(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(val).collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut n = 0u32;
            for (i, v) in chunk.iter().enumerate() {
                n |= u32::from(*v) << (18 - 6 * i);
            }
            for i in 0..chunk.len().saturating_sub(1) {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    #[test]
    fn self_signed_ec_certificate() {
        let der = pem_to_der(EC_SELF_SIGNED);
        let c = describe(&der).expect("parses");
        assert_eq!(CertInfo::name_line(&c.subject), "commonName=test.invalid/organizationName=RustMap Test");
        assert_eq!(c.issuer, c.subject);
        assert_eq!(c.sans, ["DNS:test.invalid", "IP Address:192.0.2.1"]);
        assert_eq!((c.key_type.as_str(), c.key_bits, c.key_curve.as_deref()), ("ec", 256, Some("prime256v1")));
        assert_eq!(c.signature_algorithm, "ecdsa-with-SHA256");
        assert!(c.self_signed);
        assert_eq!(c.sha256.len(), 64);
        assert!(c.not_before < c.not_after && c.not_before.len() == 19, "{} {}", c.not_before, c.not_after);
        // One flipped bit in the signature: same names, but no longer self-signed.
        let mut bad = der.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        let b = describe(&bad).expect("still parses");
        assert_eq!(b.subject, c.subject);
        assert!(!b.self_signed);
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(describe(b"").is_none());
        assert!(describe(b"\x30\x82\xff\xff").is_none());
        let der = pem_to_der(EC_SELF_SIGNED);
        for n in [1, 10, der.len() / 2, der.len() - 1] {
            assert!(describe(&der[..n]).is_none(), "{n}");
        }
    }

    #[test]
    fn strings_are_cleaned() {
        assert_eq!(clean("a\x1b[31mb\r\n\0c"), "a[31mbc");
        assert_eq!(clean(&"x".repeat(1000)).len(), MAX_TEXT);
    }
}
