//! Saved profiles (`~/.rustmap/profiles/NAME.toml` → ScanConfig, `profile::parse`) and the
//! configuration files of defaults (`config.toml`, `Settings::apply`): any text loads or fails
//! with an error naming the file, line and column, never a panic. What loads goes through
//! `validate` (with the fields that name files or interfaces cleared: a fuzz target reads no
//! file and looks at no interface), which returns a plan or a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap::profile;
use rustmap::settings::{Settings, SettingsError};
use rustmap::ScanConfig;
use std::path::{Path, PathBuf};

/// Drop what would make `validate` read files or the machine's interfaces.
fn offline(c: &mut ScanConfig) {
    c.clear_input_files();
    c.origin.interface = None;
    c.origin.source = None;
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match profile::parse("fuzz", text, PathBuf::from("fuzz.toml")) {
        Ok(p) => {
            let mut c = p.config;
            let _ = (profile::summary(&c), profile::to_toml(&c));
            offline(&mut c);
            let _ = rustmap::validate(&c);
        }
        Err(e) => assert!(e.to_string().contains("fuzz.toml"), "{e}"),
    }
    let mut s = Settings::default();
    match s.apply(Path::new("config.toml"), text) {
        Ok(()) => {
            if let Ok(mut c) = s.base(None) {
                offline(&mut c);
                let _ = rustmap::validate(&c);
            }
        }
        Err(e) => {
            if let SettingsError::Malformed { line, .. } = &e {
                assert!(*line >= 1 && *line <= text.lines().count().max(1) + 1, "{e}");
            }
        }
    }
});
