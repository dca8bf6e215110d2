//! Output formats. Each format is a [`Sink`] of the scan event stream and writes as events
//! arrive (hosts are written when they finish), so a sweep of a /16 needs no more memory than a
//! single host. Every string that came from the network or the user is passed through
//! [`rustmap_model::sanitize`] before it reaches a writer, then escaped for the format's syntax.
//!
//! - [`normal`]: nmap's human layout (stdout and `-oN`).
//! - [`xml`]: nmap's XML (`-oX`), valid against nmap's DTD, readable by ndiff.
//! - [`json`]: one JSON object per scan (`-oJ`); its schema is documented in that module.
//! - [`grepable`]: nmap's grepable lines (`-oG`).
//! - [`progress`]: the status while a scan runs (a live line on a terminal, `--stats-every`), on
//!   stderr.

#![forbid(unsafe_code)]

pub mod grepable;
pub mod json;
pub mod normal;
pub mod progress;
pub mod xml;

mod common;

pub use common::{format_ranges, Options};

use rustmap_model::ScanEvent;
use std::io;

/// What a sink wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Stop the scan (cancel).
    Stop,
}

/// A consumer of scan events.
pub trait Sink: Send {
    /// Take one event.
    fn event(&mut self, ev: &ScanEvent) -> io::Result<Control>;
    /// Time passed. Called a few times a second while a scan runs, between events, for sinks
    /// that show something that changes with time alone (a clock, an ETA); time passing is not
    /// an event of the scan, so it does not travel in the stream. The default does nothing.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The stream ended: flush.
    fn finish(&mut self) -> io::Result<()>;
}
