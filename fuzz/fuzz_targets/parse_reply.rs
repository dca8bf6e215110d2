//! The probe layer's reply parser and checksum check must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::probe;

fuzz_target!(|data: &[u8]| {
    let _ = probe::parse_reply(data);
    let _ = probe::checksums_ok(data);
});
