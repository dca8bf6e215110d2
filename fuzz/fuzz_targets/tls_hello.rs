//! ServerHello bodies (`tls::ServerHello::parse`: versions, cipher, extensions, ALPN) and what
//! `-sV` derives from them: the JA3S and JA4S fingerprints and the cipher's name. Never a panic;
//! the fingerprints are plain ASCII.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_detect::tls::{cipher_name, ja3s, ja4s};
use rustmap_wire::tls::ServerHello;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = ServerHello::parse(data) {
        let (text, hash) = ja3s(&h);
        assert!(text.is_ascii() && hash.len() == 32, "{text} {hash}");
        let j4 = ja4s(&h);
        assert!(j4.is_ascii() && !j4.chars().any(|c| c.is_ascii_control()), "{j4:?}");
        let name = cipher_name(h.cipher);
        assert!(!name.chars().any(char::is_control));
    }
});
