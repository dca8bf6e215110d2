//! `--tui`: the interactive terminal front-end (crate `rustmap-tui`) in place of the normal
//! output. The scan is the CLI's usual one — same configuration, same history store, same output
//! files — only what is drawn on the terminal changes. Everything that would write to the
//! terminal during the scan is refused (a usage error naming it) or turned off, since it would
//! scribble over the screen.
//!
//! Built without the `tui` feature (`--no-default-features`), `--tui` is refused with a message
//! saying so.

use crate::flags::Flags;
use rustmap::ScanConfig;
use std::process::ExitCode;

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rustmap: {msg}");
    ExitCode::from(2)
}

/// The flags that make no sense with `--tui`, as the user typed them.
fn conflicts(f: &Flags) -> Vec<String> {
    let mut found = Vec::new();
    let modes = [
        (f.watch, "--watch"),
        (f.stats_every.is_some(), "--stats-every"),
        (f.self_test, "--self-test"),
        (f.history, "--history"),
        (f.diff_scans.is_some(), "--diff-scans"),
        (f.list_profiles, "--list-profiles"),
    ];
    found.extend(modes.iter().filter(|(on, _)| *on).map(|(_, name)| name.to_string()));
    let outputs = [
        (&f.out_normal, "--oN"),
        (&f.out_xml, "--oX"),
        (&f.out_json, "--oJ"),
        (&f.out_grepable, "--oG"),
        (&f.out_yaml, "--oY"),
        (&f.out_csv, "--oC"),
        (&f.out_cef, "--oCEF"),
        (&f.out_leef, "--oLEEF"),
        (&f.out_html, "--oH"),
        (&f.out_json_lines, "--oJ-lines"),
        (&f.topology_output, "--topology-output"),
    ];
    found.extend(outputs.iter().filter(|(p, _)| p.as_deref() == Some("-")).map(|(_, name)| format!("{name} -")));
    if f.topology.is_some() && f.topology_output.is_none() {
        found.push("--topology without --topology-output (the graph goes to standard output)".into());
    }
    found
}

/// Before anything else runs: is `--tui` possible here? `Err` is the exit code, the message
/// printed.
pub fn check(f: &Flags) -> Result<(), ExitCode> {
    if !f.tui {
        return Ok(());
    }
    if !cfg!(feature = "tui") {
        return Err(usage("--tui: this build of rustmap has no TUI (it was built without the `tui` feature)"));
    }
    let found = conflicts(f);
    if !found.is_empty() {
        return Err(usage(format_args!(
            "--tui draws the scan on the terminal: it cannot be combined with {}",
            found.join(", ")
        )));
    }
    #[cfg(feature = "tui")]
    if let Err(e) = rustmap_tui::check_terminal() {
        return Err(usage(format_args!("{e} (write the results to a file with -oN/-oX/-oJ FILE, without --tui)")));
    }
    Ok(())
}

/// The scan's configuration for the TUI: no normal output on stdout, no status line on stderr
/// (the TUI shows both); a profile's output to `-` is refused as the flag would be.
pub fn prepare(config: &mut ScanConfig) -> Result<(), ExitCode> {
    if let Some(o) = config.output.files.iter().find(|o| o.path == "-") {
        return Err(usage(format_args!(
            "--tui draws the scan on the terminal: it cannot be combined with the profile's {:?} output to standard \
             output (-)",
            o.format
        )));
    }
    config.output.interactive = false;
    config.output.progress = false;
    Ok(())
}

/// Show the running scan until the user quits. `Some(code)` when the TUI itself failed (the scan
/// is cancelled; the caller still waits for it so that its results are stored). A quit while the
/// scan runs cancels it and is reported as Ctrl-C is.
#[cfg(feature = "tui")]
pub async fn show(scan: &mut rustmap::ScanHandle) -> Option<ExitCode> {
    let events = scan.events()?;
    let token = scan.cancel_token();
    match rustmap_tui::run(events, move || token.cancel(), rustmap_tui::Options::default()).await {
        Ok(rustmap_tui::Exit::Quit { scan_running: true }) => {
            // As Ctrl-C: the scan ends `interrupted` in the history, and the exit code is 130.
            crate::SIGNAL.store(2, std::sync::atomic::Ordering::SeqCst);
            None
        }
        Ok(_) => None,
        Err(e) => {
            scan.cancel();
            eprintln!("rustmap: --tui: {e}");
            Some(ExitCode::from(1))
        }
    }
}

/// Without the feature [`check`] refused `--tui` before any scan started.
#[cfg(not(feature = "tui"))]
pub async fn show(_scan: &mut rustmap::ScanHandle) -> Option<ExitCode> {
    None
}
