//! The ScanConfig JSON body (what the API and the Python bindings hand over, and `--resume`
//! reads back): `serde_json::from_slice::<ScanConfig>` then `rustmap::validate`, which checks
//! every field (targets, ports, timing, discovery probes, evasion options, outputs) and returns a
//! plan or a `ConfigError` naming the field; what parsed serializes and parses back. The fields
//! that name files or interfaces are cleared first: a fuzz target reads no file and looks at no
//! interface.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap::ScanConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(mut c) = serde_json::from_slice::<ScanConfig>(data) else { return };
    c.clear_input_files();
    c.origin.interface = None;
    c.origin.source = None;
    match rustmap::validate(&c) {
        Ok(_plan) => {}
        Err(e) => assert!(!e.field.is_empty(), "{e}"),
    }
    // What parsed serializes and parses back (a stored configuration can be read again). Not
    // byte for byte: serde_json's default float parser may read a float back one ulp off
    // (`"max_rate": 123e90` -> 1.2299999999999999e92; seed float-roundtrip).
    let json = serde_json::to_vec(&c).expect("serialize");
    let back: ScanConfig = serde_json::from_slice(&json).expect("re-parse");
    let mut same = back.clone();
    same.timing = c.timing.clone();
    assert_eq!(same, c, "everything but the timing's floats comes back the same");
});
