//! The ScanConfig JSON body (what the API and the Python bindings hand over, and `--resume`
//! reads back): `serde_json::from_slice::<ScanConfig>` then `rustmap::validate`, which checks
//! every field (targets, ports, timing, discovery probes, evasion options, outputs) and returns a
//! plan or a `ConfigError` naming the field. The fields that name files or interfaces are
//! cleared first: a fuzz target reads no file and looks at no interface.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap::ScanConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(mut c) = serde_json::from_slice::<ScanConfig>(data) else { return };
    c.target_files.clear();
    c.exclude_files.clear();
    c.service.probe_db.clear();
    c.origin.interface = None;
    c.origin.source = None;
    match rustmap::validate(&c) {
        Ok(_plan) => {}
        Err(e) => assert!(!e.field.is_empty(), "{e}"),
    }
    // What parsed serializes and parses back to the same configuration.
    let json = serde_json::to_vec(&c).expect("serialize");
    let back: ScanConfig = serde_json::from_slice(&json).expect("re-parse");
    assert_eq!(serde_json::to_vec(&back).expect("serialize"), json);
});
