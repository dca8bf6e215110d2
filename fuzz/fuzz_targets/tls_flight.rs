//! The TLS server-flight parser (records, ServerHello, Certificate, alerts) and the SSL 2.0
//! recogniser must never panic, and what they accept must be self-consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::tls;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = tls::parse_flight(data) {
        assert!(f.certificates.len() <= tls::MAX_CERTS);
        assert!(f.certificates.iter().map(Vec::len).sum::<usize>() <= data.len());
        // Parsing a prefix never fails where the whole succeeded (bytes arrive in pieces).
        let _ = tls::parse_flight(&data[..data.len() / 2]);
    }
    if let Some(h) = tls::sslv2_server_hello(data) {
        assert_eq!(h.version, tls::version::SSL2);
    }
});
