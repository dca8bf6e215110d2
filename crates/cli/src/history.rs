//! `--history`, `--diff-scans`, `--diff` and the store attached to a scan: the front-end side of
//! `rustmap-store` (which does the work). Exit codes follow ndiff's for comparisons: 0 equal,
//! 1 different; 2 for an unknown or ambiguous scan id.

use crate::flags::Flags;
use anyhow::{anyhow, Context, Result};
use rustmap_model::AddrSet;
use rustmap_store::{default_path, diff, targets_key, DbSync, Store, StoreError, StoreHealth, StoreSink};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The database this run uses: `--db PATH`, else the default.
pub fn db_path(f: &Flags) -> Option<PathBuf> {
    f.db.clone().or_else(default_path)
}

/// `--db-sync`, as the store takes it (clap has checked the spelling).
pub fn db_sync(f: &Flags) -> DbSync {
    f.db_sync.as_deref().and_then(|s| s.parse().ok()).unwrap_or_default()
}

fn json_out(f: &Flags) -> bool {
    f.out_json.as_deref() == Some("-")
}

fn code_of(e: &StoreError) -> u8 {
    match e {
        StoreError::UnknownScan(_) | StoreError::Ambiguous(_) => 2,
        _ => 1,
    }
}

fn open_for_reading(f: &Flags) -> Result<Store, (u8, String)> {
    let path = db_path(f).ok_or((2, "no history database: give --db PATH (HOME is not set)".to_string()))?;
    if !path.exists() {
        return Err((1, format!("no scan history yet: {} does not exist", path.display())));
    }
    Store::open_read_only(&path).map_err(|e| (code_of(&e), e.to_string()))
}

/// Seconds since the epoch as `2026-12-06 10:23` (UTC).
fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// `--history`: the stored scans, newest first.
pub fn history(f: &Flags) -> ExitCode {
    let store = match open_for_reading(f) {
        Ok(s) => s,
        Err((code, msg)) => {
            eprintln!("rustmap: {msg}");
            return ExitCode::from(code);
        }
    };
    let scans = match store.history(1000) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rustmap: {e}");
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let written = if json_out(f) {
        serde_json::to_writer_pretty(&mut out, &scans).map_err(std::io::Error::from).and_then(|_| writeln!(out))
    } else {
        (|| {
            writeln!(
                out,
                "{:<26}  {:<16}  {:<11}  {:>8}  {:>10}  {:>9}  TARGETS",
                "ID", "DATE (UTC)", "STATUS", "HOSTS UP", "OPEN PORTS", "DURATION"
            )?;
            for s in &scans {
                let dur = s.elapsed_secs.map(|e| format!("{e:.2}s")).unwrap_or_else(|| "-".into());
                let targets = rustmap_model::sanitize(&s.targets);
                writeln!(
                    out,
                    "{:<26}  {:<16}  {:<11}  {:>8}  {:>10}  {:>9}  {targets}",
                    s.id,
                    when(s.started),
                    s.status,
                    s.hosts_up,
                    s.open_ports,
                    dur
                )?;
            }
            Ok(())
        })()
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        // `rustmap --history | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustmap: writing the history: {e}");
            ExitCode::from(1)
        }
    }
}

/// Print the difference between two stored scans; exit 0 when equal, 1 when different. On
/// stderr, as text, when the scan's own output already holds stdout (`-oJ -` and the like), so
/// that stdout stays one document.
fn print_diff(f: &Flags, store: &Store, from: &str, to: &str, to_stderr: bool) -> ExitCode {
    match diff(store, from, to) {
        Ok(d) => {
            let text = if json_out(f) && !to_stderr {
                serde_json::to_string_pretty(&d).unwrap_or_default() + "\n"
            } else {
                // Line by line: what was stored came sanitized, but the terminal is not to trust it.
                d.to_text().lines().map(|l| rustmap_model::sanitize(l).into_owned() + "\n").collect()
            };
            if to_stderr {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            ExitCode::from(u8::from(!d.is_empty()))
        }
        Err(e) => {
            eprintln!("rustmap: {e}");
            ExitCode::from(code_of(&e))
        }
    }
}

/// `--diff-scans A,B`.
pub fn diff_scans(f: &Flags, pair: &str) -> ExitCode {
    let Some((a, b)) = pair.split_once(',').filter(|(a, b)| !a.is_empty() && !b.is_empty()) else {
        eprintln!("rustmap: --diff-scans takes two scan ids separated by a comma (A,B), not {pair:?}");
        return ExitCode::from(2);
    };
    let store = match open_for_reading(f) {
        Ok(s) => s,
        Err((code, msg)) => {
            eprintln!("rustmap: {msg}");
            return ExitCode::from(code);
        }
    };
    let ids = (store.resolve(a.trim()), store.resolve(b.trim()));
    match ids {
        (Ok(a), Ok(b)) => print_diff(f, &store, &a, &b, false),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("rustmap: {e}");
            ExitCode::from(code_of(&e))
        }
    }
}

/// The store to attach to a scan, with its health. A database that is not ours (not SQLite, a
/// newer schema) stops the run before anything is scanned; any other failure to open it (a
/// read-only directory, a full disk) only loses the history, with a warning. A resumed scan's
/// finished hosts (`skip`) are in the store already and are not written again.
pub fn attach(f: &Flags, skip: Option<AddrSet>) -> Result<Option<(StoreSink, Arc<Mutex<StoreHealth>>)>> {
    if f.no_db {
        return Ok(None);
    }
    let Some(path) = db_path(f) else {
        eprintln!("rustmap: warning: scan history not saved: HOME is not set (give --db PATH, or --no-db)");
        return Ok(None);
    };
    match Store::open_with(&path, db_sync(f)) {
        Ok(store) => {
            let health = Arc::new(Mutex::new(StoreHealth::default()));
            let sink = StoreSink::new(store, Arc::clone(&health)).skipping(skip.unwrap_or_default());
            Ok(Some((sink, health)))
        }
        Err(e @ (StoreError::NotADatabase(_) | StoreError::TooNew { .. })) => Err(anyhow!(e)),
        Err(e) => {
            eprintln!("rustmap: warning: scan history not saved: {e}");
            Ok(None)
        }
    }
}

/// After a scan: warn if the history was not saved; with `--diff`, compare with the previous
/// completed scan of the same targets.
pub fn after_scan(
    f: &Flags,
    config: &rustmap::ScanConfig,
    health: Option<Arc<Mutex<StoreHealth>>>,
) -> Result<ExitCode> {
    let h = health.as_ref().and_then(|h| h.lock().ok().map(|h| h.clone())).unwrap_or_default();
    if let Some(e) = &h.error {
        eprintln!("rustmap: warning: scan history not saved: {e}");
    }
    if !config.output.diff {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = h.scan_id.filter(|_| h.error.is_none()) else {
        return Err(anyhow!("--diff: this scan was not stored, so there is nothing to compare"));
    };
    let path = db_path(f).context("--diff needs the history database")?;
    let store = Store::open_read_only(&path)?;
    // A format written to stdout (`-oX -`, `-oJ -`...) keeps it to itself.
    let stdout_taken = config.output.files.iter().any(|o| o.path == "-");
    match store.last_completed(&targets_key(config), Some(&id))? {
        Some(prev) => Ok(print_diff(f, &store, &prev, &id, stdout_taken)),
        None => {
            let line = format!("No earlier completed scan of these targets to compare with (this scan is {id}).");
            if stdout_taken {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The hosts the history already holds for scan `id` (a distributed scan taken up again), if
/// the history has it; the scan's row is claimed for this run.
pub fn stored_hosts(f: &Flags, id: &str) -> Option<rustmap::AddrSet> {
    let path = db_path(f).filter(|p| p.exists() && !f.no_db)?;
    let mut store = Store::open_with(&path, db_sync(f)).ok()?;
    store.claim(id).ok().map(|c| c.done)
}
