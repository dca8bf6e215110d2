//! Scans whose hosts are scanned elsewhere: a [`Remote`] stands in for the session's engine (a
//! distributed scan's aggregator hands over what its agents found), and everything after it is
//! a local scan's: the same header, sinks, history, event stream and `ScanFinished`.
//!
//! The source is trusted to give each host once, whole (the aggregator de-duplicates and merges
//! the pieces of a host scanned in several shards); this module only delivers and counts.

use crate::pipeline::{finish, scan_info, Hub};
use crate::ScanPlan;
use rustmap_engine::connect::EngineTotals;
use rustmap_model::{HostStatus, ScanEvent, ScanOutcome};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a remote source says.
// Nearly every value is an `Event`: boxing it would cost an allocation per host to save space
// only in the rare `Failed`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RemoteEvent {
    /// An event to deliver as the scan's own (`HostDone`, `Warning`, `Progress`, ...).
    /// `ScanStarted`, `Stopping` and `ScanFinished` are the session's and are ignored.
    Event(ScanEvent),
    /// The remote scan is complete; nothing more comes.
    Finished,
    /// The remote scan failed; nothing more comes.
    Failed(String),
}

/// Where a session's hosts come from instead of its own engine
/// ([`StartOptions::remote`](crate::StartOptions::remote)). The source ends the scan with
/// [`RemoteEvent::Finished`] or [`RemoteEvent::Failed`]; a channel closed without either (the
/// source's task died) fails the scan, so that missing hosts never look like a complete scan.
#[derive(Debug)]
pub struct Remote {
    /// The events, in the order to deliver them.
    pub events: mpsc::Receiver<RemoteEvent>,
}

/// Run a scan fed by `remote` to its end.
pub(crate) async fn run(
    plan: Arc<ScanPlan>,
    scan_id: String,
    hub: &mut Hub,
    cancel: CancellationToken,
    mut remote: Remote,
) -> ScanOutcome {
    let started = Instant::now();
    hub.deliver(ScanEvent::ScanStarted(scan_info(&plan, scan_id))).await;
    for message in &plan.notices {
        hub.deliver(ScanEvent::Warning { message: message.clone() }).await;
    }
    let mut totals = EngineTotals::default();
    let outcome = loop {
        let next = tokio::select! {
            next = remote.events.recv() => next,
            _ = cancel.cancelled() => break ScanOutcome::Cancelled,
        };
        match next {
            None => {
                break ScanOutcome::Failed { error: "the source of the scan's hosts stopped before its end".into() }
            }
            Some(RemoteEvent::Finished) => break ScanOutcome::Completed,
            Some(RemoteEvent::Failed(error)) => break ScanOutcome::Failed { error },
            Some(RemoteEvent::Event(ScanEvent::ScanStarted(_) | ScanEvent::ScanFinished(_) | ScanEvent::Stopping)) => {}
            Some(RemoteEvent::Event(ev)) => {
                if let ScanEvent::HostDone(h) = &ev {
                    match h.status {
                        HostStatus::Up => totals.hosts_up += 1,
                        HostStatus::Down => totals.hosts_down += 1,
                        HostStatus::Unknown => totals.hosts_listed += 1,
                    }
                }
                hub.deliver(ev).await;
            }
        }
    };
    let outcome = match (&hub.sink_error, outcome) {
        (Some(e), _) => ScanOutcome::Failed { error: e.to_string() },
        (None, o) => o,
    };
    finish(hub, started, totals, outcome).await
}
