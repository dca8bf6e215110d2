//! QUIC Version Negotiation parser: never panics; what it returns is bounded and consistent with
//! the input (IDs inside the buffer, versions a whole multiple of four bytes, none reserved).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::quic::{is_reserved, version_name, VersionNegotiation, MAX_VERSIONS};

fuzz_target!(|data: &[u8]| {
    if let Ok(vn) = VersionNegotiation::parse(data) {
        assert!(vn.dcid.len() + vn.scid.len() + 7 <= data.len());
        assert!(vn.versions.len() <= MAX_VERSIONS);
        for v in &vn.versions {
            assert!(!is_reserved(*v));
            assert!(!version_name(*v).is_empty());
        }
    }
});
