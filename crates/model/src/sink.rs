//! The consumer side of the event stream: [`Sink`], what a sink may answer ([`Control`]) and how
//! it fails ([`SinkError`]). Every output format, the store, the TUI, the API's WebSocket and the
//! Python stream implement this one trait, so none of them depends on another's crate.

use crate::ScanEvent;
use std::io;
use thiserror::Error;

/// What a sink wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Continue,
    /// Stop the scan: the same path as Ctrl-C or a cancel call.
    Stop,
}

/// Why a sink could not take an event. A failing sink fails the scan: results that cannot be
/// written are not silently dropped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing failed (a full disk, a closed pipe).
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
    /// Anything else, said in words (a store's own error, a closed connection).
    #[error("{0}")]
    Other(String),
}

/// A consumer of scan events. Called in the order events happen, from one task, never
/// concurrently; a slow sink slows the scan (backpressure), so sinks that may lag (a network
/// peer) should buffer or drop progress on their own side.
pub trait Sink: Send {
    /// Take one event.
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError>;
    /// Time passed. Called a few times a second while a scan runs, between events, for sinks
    /// that show something that changes with time alone (a clock, an ETA); time passing is not
    /// an event of the scan, so it does not travel in the stream. The default does nothing.
    fn tick(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// The stream ended: flush.
    fn finish(&mut self) -> Result<(), SinkError>;
}
