//! The traceroute / path-MTU reply parser must never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::hop;

fuzz_target!(|data: &[u8]| {
    let _ = hop::parse_hop_reply(data);
});
