//! The built-in rules against hostile answers: every probe's rules over arbitrary bytes, no panic,
//! and every field that comes out is clean text (no control bytes reach an output).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_detect::{matcher::match_response, ProbeDb};
use std::sync::OnceLock;

static DB: OnceLock<ProbeDb> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let db = DB.get_or_init(ProbeDb::builtin);
    for i in 0..db.probes().len() {
        if let Some(found) = match_response(db, i, data) {
            let s = found.into_service();
            for f in [&s.product, &s.version, &s.extrainfo, &s.hostname, &s.ostype, &s.devicetype].into_iter().flatten()
            {
                assert!(!f.chars().any(char::is_control), "{f:?}");
            }
        }
    }
});
