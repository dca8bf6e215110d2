//! `--self-test`: runs the library's eight checks (`rustmap::selftest`), adding its own of the
//! history database, and prints them (`--oJ -`: as JSON). Exit code 1 when any check fails.

use crate::flags::Flags;
use crate::history;
use rustmap::selftest::{self, Check, Status};
use std::process::ExitCode;

const NAME: &str = "Scan database";

/// The seventh check: can the history database be opened (or created)?
fn database(f: &Flags) -> Check {
    if f.no_db {
        return Check::warn(
            NAME,
            "history is off (--no-db)",
            "leave out --no-db to keep scans for --history and --diff",
        );
    }
    let Some(path) = history::db_path(f) else {
        return Check::fail(NAME, "no database path: HOME is not set", "set HOME or give --db PATH");
    };
    if path.exists() {
        return match rustmap_store::Store::open_read_only(&path).and_then(|s| s.history(usize::MAX)) {
            Ok(scans) => Check::pass(NAME, format!("{} opens ({} scans stored)", path.display(), scans.len())),
            Err(e) => Check::fail(NAME, format!("{}: {e}", path.display()), "move the file aside or give --db PATH"),
        };
    }
    // Not there yet: the first scan creates it, if its directory can be made and written.
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let mut existing = dir.as_path();
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    let probe = existing.join(format!(".rustmap-self-test-{}", std::process::id()));
    let writable = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    if writable {
        Check::pass(NAME, format!("{} will be created by the first scan", path.display()))
    } else {
        Check::fail(
            NAME,
            format!("{} cannot be created: {} is not writable", path.display(), existing.display()),
            "give --db PATH in a writable directory, or --no-db",
        )
    }
}

/// Run the checks and print them.
pub fn run(f: &Flags) -> ExitCode {
    let db = database(f);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rustmap: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let checks = runtime.block_on(selftest::run(db));
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let (pass, warn, fail) = (count(Status::Pass), count(Status::Warn), count(Status::Fail));
    if f.out_json.as_deref() == Some("-") {
        let doc = serde_json::json!({ "checks": checks, "passed": pass, "warnings": warn, "failed": fail });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("RustMap {} self-test", env!("CARGO_PKG_VERSION"));
        for c in &checks {
            println!("[{}] {}: {}", c.status.as_str(), c.name, c.detail);
            if !c.hint.is_empty() {
                println!("       hint: {}", c.hint);
            }
        }
        println!("{} checks: {pass} passed, {warn} warnings, {fail} failed", checks.len());
    }
    ExitCode::from(u8::from(fail > 0))
}
