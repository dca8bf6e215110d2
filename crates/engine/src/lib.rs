//! The scan engine: decides what to send when, and turns answers (or their absence) into port and
//! host states. It never prints; everything it learns leaves as [`ScanEvent`]s through an
//! [`Emitter`], and a consumer may cancel it through the same handle.
//!
//! - [`timing`]: timing templates (`-T0`..`-T5`), RTT estimation, the congestion window, and
//!   the pacer (`--max-rate` token bucket, `--scan-delay`).
//! - [`connect`]: the TCP connect scan (`-sT`), with connect-based host discovery.
//! - [`connector`]: the connect probes themselves, on one epoll thread per core.
//! - [`proxied`]: connect probes through a SOCKS5 proxy (`--proxy`), and what its answers mean.
//! - [`discovery`]: host discovery probes (`-P*`), the plan that picks them, HTTP/HTTPS pings.
//! - [`evasion`]: what the evasion options (`-D`, `-f`, `-g`, `--data-*`, ...) ask of raw probes.
//! - [`raw`]: the raw-packet TCP scans (SYN, FIN, NULL, Xmas, ACK, Window, Maimon) and their
//!   raw-packet host discovery.
//! - [`probe`]: what a reply means for a port under each scan type (nmap's state table).
//! - [`report`]: host and port bookkeeping both engines share: announcing hosts and ports as
//!   soon as they are known, folding a finished host's ports, totals and progress.
//! - [`trace`]: the stage after the port scan: `--traceroute` and `--mtu-discovery`.
//! - [`os`]: the OS detection stage (`-O`): the active probes of each finished host.
//! - [`limits`]: the open-file budget a scan sizes its window from (read only), and raising the
//!   limit, which a program does once at start.

#![forbid(unsafe_code)]

pub mod connect;
pub mod connector;
pub mod discovery;
pub mod evasion;
pub mod limits;
pub mod origin;
pub mod os;
pub mod payloads;
pub mod probe;
pub mod proxied;
pub mod raw;
pub mod report;
mod stage;
pub mod timing;
pub mod trace;

pub use connect::{ConnectScan, EngineError, ScanTarget};
pub use evasion::Evasion;
pub use raw::RawScan;
pub use timing::{Timing, TimingTemplate};

use rustmap_model::ScanEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the engine sends its events, and how a consumer asks it to stop.
#[derive(Debug, Clone)]
pub struct Emitter {
    tx: mpsc::Sender<ScanEvent>,
    cancel: CancellationToken,
}

impl Emitter {
    /// A new emitter over a channel; the receiving side reads the events.
    pub fn new(tx: mpsc::Sender<ScanEvent>, cancel: CancellationToken) -> Emitter {
        Emitter { tx, cancel }
    }

    /// Send one event. If every receiver is gone the scan is cancelled: nobody is listening.
    pub async fn emit(&self, ev: ScanEvent) {
        if self.tx.send(ev).await.is_err() {
            self.cancel.cancel();
        }
    }

    /// Send one event from a blocking thread (never from async code: it would block the runtime).
    pub fn emit_blocking(&self, ev: ScanEvent) {
        if self.tx.blocking_send(ev).is_err() {
            self.cancel.cancel();
        }
    }

    /// The cancellation token shared with consumers.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Has a consumer asked to stop?
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
