//! `rustmap --tui`: an interactive terminal front-end for one running scan, built with ratatui
//! on crossterm.
//!
//! It is a consumer of the scan's event stream like every other front-end: [`run`] takes the
//! [`EventStream`] of a started scan ([`rustmap::ScanHandle::events`]) and shows, live:
//!
//! 1. the host list: hosts found up, in the order found, with status, port counts and OS;
//! 2. the port detail: ports and services of the selected host;
//! 3. the event log: scan events, progress and timing (the last [`DEFAULT_LOG_LINES`] lines).
//!
//! Keys: arrows or `j`/`k` move the selection, `h` toggles the help panel, `q` (or Ctrl-C)
//! quits, cancelling the scan if it still runs. It redraws at 10 frames a second.
//!
//! Modules: [`state`] folds events into what is shown (pure), [`ui`] draws it (pure, tested with
//! ratatui's `TestBackend`), `term` owns the terminal (raw mode, alternate screen, the panic
//! hook that restores them, the loop).

#![forbid(unsafe_code)]

pub mod state;
mod term;
pub mod ui;

use rustmap::EventStream;
use std::io::IsTerminal;
use thiserror::Error;

pub use state::{App, ScanView, DEFAULT_LOG_LINES};

/// Why the TUI could not run or stopped early.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TuiError {
    /// Standard output is not a terminal (a pipe, a file): there is no screen to draw on.
    #[error("--tui needs a terminal: standard output is not one")]
    NotATerminal,
    /// The terminal could not be set up, read or drawn on.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// A panic (in the TUI or elsewhere in the process) ended it; the terminal was restored.
    #[error("the TUI stopped on a panic (the terminal was restored)")]
    Panicked,
}

/// How the TUI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The user quit; `scan_running`: the scan had not finished, so it was cancelled.
    Quit {
        /// The scan was still running (and was cancelled).
        scan_running: bool,
    },
    /// The scan was cancelled by someone else (a signal, a sink that asked to stop).
    CancelledElsewhere,
}

/// Settings of [`run`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Frames drawn a second.
    pub fps: u32,
    /// Lines the event log keeps.
    pub log_lines: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { fps: 10, log_lines: DEFAULT_LOG_LINES }
    }
}

/// Check, before anything starts, that there is a terminal to draw on.
pub fn check_terminal() -> Result<(), TuiError> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(TuiError::NotATerminal)
    }
}

/// Show the scan whose events these are until the user quits (or the scan is cancelled from
/// elsewhere). `cancel` is called if the user quits while the scan still runs. The terminal is
/// restored before this returns, whatever happened. Must be called within a tokio runtime: the
/// terminal loop runs on its blocking thread pool.
pub async fn run(
    events: EventStream,
    cancel: impl FnOnce() + Send + 'static,
    options: Options,
) -> Result<Exit, TuiError> {
    check_terminal()?;
    // The terminal thread reads the stream itself, without ever waiting on it: no task and no
    // second channel between the scan and the screen (each would cost the scan time per event).
    let ui = tokio::task::spawn_blocking(move || term::run(events, Box::new(cancel), options)).await;
    match ui {
        Ok(r) => r,
        Err(_) => Err(TuiError::Panicked),
    }
}
