//! The `rustmap` command. Thin: parse flags into a [`rustmap::ScanConfig`], start the scan with
//! [`rustmap::Scanner`] (which checks the configuration and writes the outputs it asks for),
//! cancel it on Ctrl-C, and map the outcome to an exit code (0 done, 1 runtime failure, 2 bad
//! usage).

#![forbid(unsafe_code)]

mod argv;
mod config;
mod flags;
mod generate;
mod history;
mod profiles;
mod watch;

use clap::FromArgMatches;
use rustmap::{Scanner, StartError, StartOptions};
use std::process::ExitCode;

/// A usage error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args_line = std::iter::once("rustmap".to_string())
        .chain(raw.iter().map(|a| {
            if a.contains(char::is_whitespace) || a.is_empty() {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ");
    let normalized = argv::normalize(raw);
    let matches = match flags::command().try_get_matches_from(std::iter::once("rustmap".to_string()).chain(normalized))
    {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(flag) = flags::unsupported_present(&matches) {
        eprintln!("rustmap: not yet supported: {flag}");
        return ExitCode::from(2);
    }
    let mut parsed = match flags::Flags::from_arg_matches(&matches) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    if let Some(code) = generate::early_exit(&parsed) {
        return code;
    }
    let settings = match profiles::settings(&mut parsed) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if parsed.history {
        return history::history(&parsed);
    }
    if let Some(pair) = parsed.diff_scans.clone() {
        return history::diff_scans(&parsed, &pair);
    }
    if parsed.list_profiles {
        return profiles::list();
    }
    if parsed.diff && parsed.no_db {
        eprintln!("rustmap: --diff compares with the stored history: it cannot be combined with --no-db");
        return ExitCode::from(2);
    }
    let base = match profiles::base(&parsed, &settings) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let store_flags = parsed.clone();
    let (save_as, no_targets) =
        (parsed.save_profile.clone(), parsed.targets.is_empty() && parsed.input_list.is_empty());
    let mut config = match config::build(parsed, args_line, base) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            return ExitCode::from(2);
        }
    };
    if config.output.diff && store_flags.no_db {
        eprintln!("rustmap: note: the profile's diff needs the stored history: off with --no-db");
        config.output.diff = false;
    }
    let watch = match watch::Watch::from_flags(&store_flags) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = save_as {
        if let Err(code) = profiles::save(&name, &config) {
            return code;
        }
        if no_targets {
            return ExitCode::SUCCESS;
        }
    }
    // Process-wide, so the binary's call: a connect scan wants a descriptor per probe in flight.
    rustmap::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rustmap: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match watch {
        Some(w) => runtime.block_on(async {
            // Checked before the first scan, so a bad value is a usage error.
            if let Err(e) = rustmap::validate(&config) {
                eprintln!("rustmap: {e}");
                return ExitCode::from(2);
            }
            // Each iteration prints what changed, not the whole scan; output files, if any,
            // hold the latest scan.
            config.output.interactive = false;
            config.output.progress = false;
            watch::run(config, &store_flags, w).await
        }),
        None => runtime.block_on(run(config, store_flags)),
    }
}

async fn run(config: rustmap::ScanConfig, f: flags::Flags) -> ExitCode {
    // Checked first, so that a bad value is reported before the database is even opened.
    let plan = match rustmap::validate(&config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rustmap: {e}");
            return ExitCode::from(2);
        }
    };
    let (store, health) = match history::attach(&f) {
        Ok(Some((sink, health))) => (Some(sink), Some(health)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            return ExitCode::from(1);
        }
    };
    // Every host is written as it finishes: no need to hold them all until the end.
    let sinks: Vec<Box<dyn rustmap::Sink>> = store.into_iter().map(|s| Box::new(s) as Box<dyn rustmap::Sink>).collect();
    let options = StartOptions { totals_only: true, sinks, ..StartOptions::default() };
    let scan = match Scanner::start_plan(plan, options) {
        Ok(s) => s,
        Err(StartError::Config(e)) => {
            eprintln!("rustmap: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("rustmap: scan failed: {e}");
            return ExitCode::from(1);
        }
    };
    let on_signal = scan.cancel_token();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let outcome = scan.wait().await;
    let after = history::after_scan(&f, &config, health);
    match (outcome, after) {
        (Err(e), _) => {
            eprintln!("rustmap: scan failed: {e}");
            ExitCode::from(1)
        }
        (Ok(_), Ok(code)) => code,
        (Ok(_), Err(e)) => {
            eprintln!("rustmap: {e:#}");
            ExitCode::from(1)
        }
    }
}
