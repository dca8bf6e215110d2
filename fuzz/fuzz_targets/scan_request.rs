//! The API's request body and the Python bindings' keyword arguments: `ScanRequest` JSON (the
//! guide's flat fields: `targets`, `scan_type` letters or names, `timing` as a number, `T4` or a
//! name, `profile`, a nested `config`, ...) through `into_config` (built-in profiles only: no
//! directory, so no file is read) and `rustmap::validate`. Every failure is a `ConfigError`
//! naming a field, never a panic. The fields that name files or interfaces are cleared before
//! validation: a fuzz target reads no file and looks at no interface.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap::ScanRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ScanRequest>(data) else { return };
    match request.into_config(None) {
        Ok((mut c, _notes)) => {
            c.clear_input_files();
            c.origin.interface = None;
            c.origin.source = None;
            if let Err(e) = rustmap::validate(&c) {
                assert!(!e.field.is_empty(), "{e}");
            }
        }
        Err(e) => assert!(!e.field.is_empty() && !e.message.is_empty(), "{e}"),
    }
});
