//! Certificate description (`rustmap_detect::cert::describe`, x509-parser underneath): any bytes
//! a server sends as a certificate give `None` or a description whose every text field is clean
//! (no control characters reach an output).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(c) = rustmap_detect::cert::describe(data) {
        let mut texts: Vec<String> = Vec::new();
        for (k, v) in c.subject.iter().chain(c.issuer.iter()) {
            texts.push(k.clone());
            texts.push(v.clone());
        }
        texts.extend(c.sans.iter().cloned());
        texts.push(c.signature_algorithm.clone());
        texts.push(c.key_type.clone());
        for t in texts {
            assert!(!t.chars().any(char::is_control), "{t:?}");
        }
    }
});
