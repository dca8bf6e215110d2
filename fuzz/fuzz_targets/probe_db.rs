//! Probe database parser: any text either loads or fails with a line-numbered error; never a
//! panic, never an unbounded compile (the regex size limits hold).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_detect::ProbeDb;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match ProbeDb::parse("fuzz.rmp", text) {
        Ok(db) => {
            // Whatever loaded must also be usable by the matcher.
            for i in 0..db.probes().len() {
                let _ = rustmap_detect::matcher::match_response(&db, i, b"SSH-2.0-x\r\n");
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.rmp:"), "{e}"),
    }
});
