//! `--resume ID`: take up a stored scan where it stopped. The store gives the scan's checkpoint
//! (its configuration and the hosts it finished) and marks the scan as run by this process; the
//! scan then runs again with its own configuration, keeping its id, delivering the finished hosts
//! to its outputs first and scanning only the others (`rustmap::Resume`).
//!
//! Exit codes: 2 when the id is unknown or ambiguous, or names a scan that cannot be resumed
//! (completed, still running, read from standard input); 1 when the database cannot be opened.

use crate::flags::Flags;
use crate::history::{db_path, db_sync};
use clap::parser::ValueSource;
use clap::ArgMatches;
use rustmap_model::Checkpoint;
use rustmap_store::{Store, StoreError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags that may go with `--resume`: everything else is the stored scan's to say.
const ALLOWED: &[&str] = &["resume", "db", "db_sync", "no_progress"];

/// Check the command line of a resume and claim the scan. `Err` is the exit code, the message
/// printed.
pub fn claim(m: &ArgMatches, f: &Flags, given: &str) -> Result<Checkpoint, ExitCode> {
    // Arguments only: the derive's group of all flags is among the ids too.
    let cmd = crate::flags::command();
    let extra: Vec<String> = cmd
        .get_arguments()
        .filter(|a| {
            let id = a.get_id().as_str();
            !ALLOWED.contains(&id) && m.value_source(id) == Some(ValueSource::CommandLine)
        })
        .map(|a| match (a.get_long(), a.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(c)) => format!("-{c}"),
            (None, None) => "targets".to_string(),
        })
        .collect();
    if !extra.is_empty() {
        eprintln!(
            "rustmap: --resume continues a scan with the configuration it was started with; only --db, --db-sync and \
             --no-progress can be given with it (not {})",
            extra.join(", ")
        );
        return Err(ExitCode::from(2));
    }
    let Some(path) = db_path(f) else {
        eprintln!("rustmap: --resume needs the history database: give --db PATH (HOME is not set)");
        return Err(ExitCode::from(2));
    };
    if !path.exists() {
        eprintln!("rustmap: no stored scan matches {given:?}: {} does not exist", path.display());
        return Err(ExitCode::from(2));
    }
    let fail = |e: StoreError| {
        eprintln!("rustmap: {e}");
        let code = match e {
            StoreError::UnknownScan(_)
            | StoreError::Ambiguous(_)
            | StoreError::Completed(_)
            | StoreError::StillRunning { .. }
            | StoreError::NotResumable { .. } => 2,
            _ => 1,
        };
        ExitCode::from(code)
    };
    let mut store = Store::open_with(&path, db_sync(f)).map_err(fail)?;
    // Read first, claim after the checks: a scan refused here stays as it was.
    let seen = store.checkpoint(given).map_err(fail)?;
    if seen.config.target_files.iter().any(|p| p == &PathBuf::from("-")) {
        eprintln!("rustmap: scan {} read its targets from standard input, which cannot be read again", seen.scan_id);
        return Err(ExitCode::from(2));
    }
    let checkpoint = store.claim(&seen.scan_id).map_err(fail)?;
    eprintln!(
        "rustmap: resuming scan {}: {} finished host{} will not be scanned again",
        checkpoint.scan_id,
        checkpoint.done.len(),
        if checkpoint.done.len() == 1 { "" } else { "s" }
    );
    Ok(checkpoint)
}

/// The command that resumes scan `id`, for the message printed when a scan is interrupted.
pub fn command(f: &Flags, id: &str) -> String {
    let mut cmd = format!("rustmap --resume {id}");
    if let Some(db) = &f.db {
        let db = db.display().to_string();
        if db.contains(|c: char| c.is_whitespace() || c == '\'') {
            cmd.push_str(&format!(" --db '{}'", db.replace('\'', "'\\''")));
        } else {
            cmd.push_str(&format!(" --db {db}"));
        }
    }
    cmd
}
