//! Output formats. Each format is a [`Sink`] of the scan event stream and writes as events
//! arrive (hosts are written when they finish), so a sweep of a /16 needs no more memory than a
//! single host. Every string that came from the network or the user is passed through
//! [`rustmap_model::sanitize`] before it reaches a writer, then escaped for the format's syntax.
//!
//! - [`normal`]: nmap's human layout (stdout and `-oN`).
//! - [`xml`]: nmap's XML (`-oX`), valid against nmap's DTD, readable by ndiff.
//! - [`json`]: one JSON object per scan (`-oJ`); its schema is documented in that module.
//! - [`grepable`]: nmap's grepable lines (`-oG`).
//! - [`yaml`]: the JSON document as YAML (`-oY`).
//! - [`csv`]: one row per host and port (`-oC`), safe to open in a spreadsheet.
//! - [`siem`]: ArcSight CEF (`-oCEF`) and QRadar LEEF 2.0 (`-oLEEF`) lines.
//! - [`jsonl`]: the event stream as JSON lines (`--oJ-lines`), for piping.
//! - [`html`]: a self-contained HTML report (`-oH`), written from the whole scan at its end.
//! - [`topology`]: the traced routes as a graph (`--topology dot|graphml|json`), written at the
//!   end of the scan.
//! - [`progress`]: the status while a scan runs (a live line on a terminal, `--stats-every`), on
//!   stderr.

#![forbid(unsafe_code)]

pub mod csv;
pub mod grepable;
pub mod html;
pub mod json;
pub mod jsonl;
pub mod normal;
pub mod progress;
pub mod siem;
pub mod topology;
pub mod xml;
pub mod yaml;

mod common;
mod os;

pub use common::{format_ranges, Options};

/// The sink trait and its answers live in `rustmap-model`, so the store, the API and every other
/// consumer implement it without depending on this crate; re-exported here for convenience.
pub use rustmap_model::{Control, Sink, SinkError};
