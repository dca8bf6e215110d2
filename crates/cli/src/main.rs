//! The `rustmap` command. Thin: parse flags into a [`rustmap::ScanConfig`], start the scan with
//! [`rustmap::Scanner`] (which checks the configuration and writes the outputs it asks for),
//! cancel it on Ctrl-C, and map the outcome to an exit code (0 done, 1 runtime failure, 2 bad
//! usage).

#![forbid(unsafe_code)]

mod api;
mod argv;
mod config;
mod distrib;
mod flags;
mod generate;
mod history;
mod predict;
mod profiles;
mod resume;
mod selftest;
mod tui;
mod vuln;
mod watch;

use clap::FromArgMatches;
use rustmap::{Resume, Scanner, StartError, StartOptions};
use rustmap_model::Checkpoint;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

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
    if let Some(flag) = os_entry_extra(&matches) {
        eprintln!("rustmap: --os-entry reads captured fingerprints and scans nothing: {flag} does not apply");
        return ExitCode::from(2);
    }
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
    if let Err(code) = tui::check(&parsed) {
        return code;
    }
    if let Some(spec) = &parsed.script_help {
        return match rustmap::script_help(spec) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rustmap: {e}");
                ExitCode::from(2)
            }
        };
    }
    let settings = match profiles::settings(&mut parsed) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(message) = vuln::check_flags(&parsed) {
        eprintln!("rustmap: {message}");
        return ExitCode::from(2);
    }
    if !parsed.os_entry.is_empty() {
        return os_entry(&parsed);
    }
    if parsed.self_test {
        return selftest::run(&parsed);
    }
    if parsed.api {
        return api::run(&parsed, &settings);
    }
    if let Err(code) = distrib::check(&parsed) {
        return code;
    }
    if parsed.agent {
        return distrib::agent(&parsed);
    }
    if parsed.agents {
        return distrib::list(&parsed);
    }
    if parsed.history {
        return history::history(&parsed);
    }
    if let Some(pair) = parsed.diff_scans.clone() {
        return history::diff_scans(&parsed, &pair);
    }
    if parsed.list_profiles {
        return profiles::list();
    }
    if parsed.vuln_update {
        let code = vuln::update(&parsed);
        // With targets, the scan follows a finished update (`--vuln-update --vuln-check HOST`).
        if code != ExitCode::SUCCESS || (parsed.targets.is_empty() && parsed.input_list.is_empty()) {
            return code;
        }
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
    let mut resumed = None;
    let (mut config, checkpoint) = if let (Some(given), true) = (parsed.resume.clone(), parsed.distribute) {
        match distrib::manifest(&parsed, &given) {
            Ok(m) => {
                let mut config = m.config.clone();
                config.output.progress &= !parsed.no_progress;
                eprintln!("rustmap: taking up distributed scan {}", m.scan_id);
                resumed = Some(m);
                (config, None)
            }
            Err(code) => return code,
        }
    } else if let Some(given) = parsed.resume.clone() {
        match resume::claim(&matches, &parsed, &given) {
            Ok(c) => {
                // The stored configuration, as it was; only the live status line follows this run.
                let mut config = c.config.clone();
                config.output.progress &= !parsed.no_progress;
                (config, Some(c))
            }
            Err(code) => return code,
        }
    } else {
        match config::build(parsed, args_line, base) {
            Ok(c) => (c, None),
            Err(e) => {
                eprintln!("rustmap: {e:#}");
                return ExitCode::from(2);
            }
        }
    };
    if config.output.diff && store_flags.no_db {
        eprintln!("rustmap: note: the profile's diff needs the stored history: off with --no-db");
        config.output.diff = false;
    }
    if store_flags.tui {
        if let Err(code) = tui::prepare(&mut config) {
            return code;
        }
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
        None => runtime.block_on(run(config, store_flags, checkpoint, resumed)),
    }
}

/// Which signal stopped the scan (0: none), for the exit code and the resume hint.
static SIGNAL: AtomicU8 = AtomicU8::new(0);

/// The first SIGINT (Ctrl-C) or SIGTERM: its number, 2 or 15; `None` if Ctrl-C cannot be
/// listened for.
pub(crate) async fn termination() -> Option<u8> {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.ok().map(|_| 2),
        _ = term => Some(15),
    }
}

/// Cancel the scan on SIGINT (Ctrl-C) or SIGTERM: it ends as `interrupted`, results so far kept.
fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        let Some(which) = termination().await else { return };
        SIGNAL.store(which, Ordering::SeqCst);
        token.cancel();
    });
}

async fn run(
    mut config: rustmap::ScanConfig,
    f: flags::Flags,
    checkpoint: Option<Checkpoint>,
    resumed: Option<rustmap_distrib::proto::Manifest>,
) -> ExitCode {
    // Checked first, so that a bad value is reported before the database is even opened. A
    // distributed scan's privileges are the agents' to have.
    let checked = if f.distribute { rustmap::shard::validate_for_cluster(&config) } else { rustmap::validate(&config) };
    let mut plan = match checked {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rustmap: {e}");
            return ExitCode::from(2);
        }
    };
    let mut learned_rtt = Vec::new();
    let mut seen_up = Vec::new();
    if f.fast_discovery {
        let age = f.fast_discovery_max_age.as_deref().unwrap_or("24h");
        let max_age = match rustmap::validate::parse_time("fast_discovery_max_age", "--fast-discovery-max-age", age) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rustmap: {e}");
                return ExitCode::from(2);
            }
        };
        match predict::seen_up(&f, max_age) {
            Ok((up, note)) => {
                eprintln!("rustmap: {note}");
                seen_up = up;
            }
            Err(e) => {
                eprintln!("rustmap: --fast-discovery: cannot read the scan history: {e:#}");
                return ExitCode::from(1);
            }
        }
    }
    if f.predict_ports {
        match predict::predict(&f, &plan) {
            Ok(p) => {
                eprintln!("rustmap: {}", p.note);
                learned_rtt = p.learned_rtt;
                if p.first.is_some() {
                    config.ports.first = p.first;
                    plan = match rustmap::validate(&config) {
                        Ok(p) => p,
                        Err(e) => {
                            eprintln!("rustmap: {e}");
                            return ExitCode::from(2);
                        }
                    };
                }
            }
            Err(e) => {
                eprintln!("rustmap: --predict-ports: cannot read the scan history: {e:#}");
                return ExitCode::from(1);
            }
        }
    }
    // A distributed scan: the agents scan, this process aggregates (published before the
    // history is opened, so that a cluster without agents leaves no stored scan behind).
    let distributed = if f.distribute {
        match distrib::start(&f, &plan, resumed.as_ref()).await {
            Ok(d) => Some(d),
            Err(code) => return code,
        }
    } else {
        None
    };
    // Taking up a distributed scan: the hosts its history holds already are not written twice.
    let skip = match (&distributed, &resumed) {
        (Some(d), Some(_)) => history::stored_hosts(&f, &d.scan_id),
        _ => checkpoint.as_ref().map(|c| c.done.clone()),
    };
    let (store, health) = match history::attach(&f, skip) {
        Ok(Some((sink, health))) => (Some(sink), Some(health)),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            return ExitCode::from(1);
        }
    };
    // Every host is written as it finishes: no need to hold them all until the end.
    let mut sinks: Vec<Box<dyn rustmap::Sink>> =
        store.into_iter().map(|s| Box::new(s) as Box<dyn rustmap::Sink>).collect();
    // The TUI's event log shows the first open port itself: nothing may print under it.
    if f.predict_ports && !f.tui {
        sinks.push(Box::new(predict::FirstOpenNote));
    }
    let resume = match checkpoint {
        None => None,
        Some(c) => {
            let path = history::db_path(&f).unwrap_or_default();
            match rustmap_store::FinishedHosts::open(&path, &c.scan_id) {
                Ok(hosts) => Some(Resume {
                    scan_id: c.scan_id,
                    done: c.done,
                    finished: Box::new(hosts.map(|h| h.map_err(|e| e.to_string()))),
                }),
                Err(e) => {
                    eprintln!("rustmap: cannot read the finished hosts of scan {}: {e}", c.scan_id);
                    return ExitCode::from(1);
                }
            }
        }
    };
    let (remote, scan_id) = match distributed {
        Some(d) => (Some(d.remote), Some(d.scan_id)),
        None => (None, None),
    };
    let options = StartOptions {
        totals_only: true,
        sinks,
        resume,
        learned_rtt,
        seen_up,
        remote,
        scan_id,
        ..StartOptions::default()
    };
    let mut scan = match Scanner::start_plan(plan, options) {
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
    cancel_on_signal(scan.cancel_token());
    let session_id = scan.id().to_string();
    let tui_failed = if f.tui { tui::show(&mut scan).await } else { None };
    let outcome = scan.wait().await;
    let stored =
        health.as_ref().and_then(|h| h.lock().ok().and_then(|h| h.scan_id.clone().filter(|_| h.error.is_none())));
    let after = history::after_scan(&f, &config, health);
    if let Some(code) = tui_failed {
        return code;
    }
    let signal = SIGNAL.load(Ordering::SeqCst);
    if signal != 0 && f.distribute {
        let id = session_id;
        eprintln!(
            "rustmap: distributed scan {id} interrupted; its shards stay queued; take it up with: {}",
            distrib::resume_command(&f, &id)
        );
        return ExitCode::from(128 + signal);
    }
    if signal != 0 {
        match stored {
            Some(id) => eprintln!("rustmap: scan {id} interrupted; resume it with: {}", resume::command(&f, &id)),
            None => eprintln!("rustmap: scan interrupted (not stored, so it cannot be resumed)"),
        }
        // As shells report a process ended by a signal: 128 + its number.
        return ExitCode::from(128 + signal);
    }
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

/// With `--os-entry`, the first option given that is not one of its own (shown as typed), so that
/// no scan or output option is silently ignored.
fn os_entry_extra(m: &clap::ArgMatches) -> Option<String> {
    if !m.contains_id("os_entry") || m.get_many::<std::path::PathBuf>("os_entry").is_none() {
        return None;
    }
    let own = |id: &str| id.starts_with("os_entry") || id == "no_db";
    let cmd = flags::command();
    m.ids()
        .map(|id| id.as_str())
        .filter(|id| !own(id) && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .find_map(|id| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id)?;
            Some(match (arg.get_long(), arg.get_short()) {
                (Some(l), _) => format!("--{l}"),
                (None, Some(c)) => format!("-{c}"),
                (None, None) => "a target".to_string(),
            })
        })
}

/// `--os-entry`: print the database file with the captured entry (nothing is scanned).
fn os_entry(f: &flags::Flags) -> ExitCode {
    if !f.targets.is_empty() || !f.input_list.is_empty() {
        eprintln!("rustmap: --os-entry reads captured fingerprints and scans nothing: give no targets");
        return ExitCode::from(2);
    }
    let req = rustmap::osentry::OsEntryRequest {
        files: f.os_entry.clone(),
        hosts: f.os_entry_host.clone(),
        id: f.os_entry_id.clone(),
        name: f.os_entry_name.clone(),
        class: f.os_entry_class.clone(),
        cpe: f.os_entry_cpe.clone(),
    };
    match rustmap::osentry::os_entry(&req) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rustmap: --os-entry: {e}");
            ExitCode::from(2)
        }
    }
}
