//! Fingerprints of unknown services (`detect::fingerprint`): hostile answers to every probe
//! (banners with escapes, markup, quotes, NULs) give one clean line, bounded, without control
//! characters, that names every answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_detect::fingerprint::{fingerprint, MAX_LEN};

fuzz_target!(|data: &[u8]| {
    // Split the input into up to four answers at 0xff bytes; the first part names the probe.
    let mut parts = data.split(|&b| b == 0xff);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let answers: Vec<&[u8]> = parts.take(4).collect();
    let named: Vec<(&str, &[u8])> = answers.iter().map(|a| (name.as_str(), *a)).collect();
    if let Some(fp) = fingerprint(443, "tcp", &named) {
        assert!(fp.len() <= MAX_LEN, "{} bytes", fp.len());
        assert!(fp.bytes().all(|b| (0x20..0x7f).contains(&b)), "{fp:?}");
        assert!(fp.starts_with("RMFP1;port=443/tcp;"));
        assert!(!fp.contains('<') && !fp.contains('>'), "{fp:?}");
    } else {
        assert!(named.iter().all(|(_, a)| a.is_empty()));
    }
});
