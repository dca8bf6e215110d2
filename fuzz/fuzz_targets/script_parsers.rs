//! The scripting engine's parsers of user and network text: `--script-args` and
//! `--script-args-file` (`ScriptArgs`), `--script` expressions (`selection::Expr`), the Python
//! scripts' metadata reader (`python::meta::read`, run on any `py-*.py` file), and the Lua
//! pattern rehearsal (`pattern::check`, run before every `string.find/match/gmatch/gsub` a
//! script makes on network data: it must end, bounded by its step limit, on any pattern and
//! subject). No Lua state is created: these run in Rust before or around the sandbox.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_script::pattern::{self, Kind};
use rustmap_script::selection::Expr;
use rustmap_script::ScriptArgs;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(args) = ScriptArgs::parse(&text) {
        // What parsed can be looked up by any of its keys.
        for (key, _) in args.entries.iter().take(8) {
            if let Some(k) = key {
                assert!(args.get(k).is_some(), "{k:?}");
            }
        }
    }
    let _ = ScriptArgs::parse_file(&text);
    if let Ok(expr) = Expr::parse(&text) {
        let _ = expr.words();
    }
    let meta = rustmap_script::python::meta::read(&text);
    let _ = format!("{meta:?}");
    // Pattern and subject, split at the first NUL: every kind, from the start and from the end.
    if let Some(i) = data.iter().position(|b| *b == 0) {
        let (pat, subject) = (&data[..i], &data[i + 1..]);
        for kind in [Kind::Find, Kind::Gmatch, Kind::Gsub] {
            let _ = pattern::check(subject, pat, 1, kind, Some(64));
            let _ = pattern::check(subject, pat, -3, kind, None);
        }
    }
});
