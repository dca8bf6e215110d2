//! Scan sessions: [`Scanner::start`] checks a [`ScanConfig`], opens what the scan needs, and
//! returns a [`ScanHandle`] with the scan's id, its live [`EventStream`], a way to cancel it and
//! a way to wait for its [`ScanResult`].
//!
//! Every front-end drives scans through this: the CLI, the API server (up to ten at once), the
//! Python bindings, watch mode, distributed agents. A session changes no process-wide state, so
//! any number can run in one process, each on its own tasks.
//!
//! Cancelling is one path whoever asks: [`ScanHandle::cancel`], a clone of
//! [`ScanHandle::cancel_token`] (Ctrl-C in the CLI), a sink answering
//! [`Control::Stop`](rustmap_model::Control::Stop). A cancelled scan still ends with `ScanFinished` (outcome
//! `cancelled`), and its results so far are kept.

use crate::pipeline::{self, Hub};
use crate::sinks;
use crate::validate::{validate, ConfigError};
use crate::ScanPlan;
use rustmap_engine::os::OsSockets;
use rustmap_engine::raw::{RawScanError, RawSockets};
use rustmap_engine::trace::TraceSockets;
use rustmap_model::{AddrSet, HostResult, ScanConfig, ScanEvent, ScanOutcome, ScanResult, Sink, SinkError};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events buffered for a stream consumer before the scan waits for it.
pub const EVENT_BUFFER: usize = 1024;

pub(crate) type EventTx = mpsc::Sender<ScanEvent>;

/// Why a scan could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid (a usage error: exit code 2 in the CLI).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The raw sockets could not be opened (privileges, kernel support, `-e`).
    #[error("{0}")]
    Raw(#[from] RawScanError),
    /// The proxy of `--proxy` failed its check: unreachable, not SOCKS5, or it refused the
    /// authentication. Nothing was sent to any target.
    #[error("{0}")]
    Proxy(#[from] rustmap_proxy::ProxyError),
    /// An output file could not be created.
    #[error("cannot open output file {path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not called from within a tokio runtime.
    #[error("a scan must be started from within a tokio runtime")]
    NoRuntime,
}

/// Why a scan that started did not complete. Its `ScanFinished` event said so too, and the
/// results found until then were delivered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The engine failed or panicked.
    #[error("{0}")]
    Engine(String),
    /// A sink could not take the results (an output file could not be written).
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Options of [`Scanner::start_with`].
#[derive(Default)]
pub struct StartOptions {
    /// Sinks to feed besides the outputs the configuration asks for. They get every event, in
    /// order, before the event stream does; a slow sink slows the scan.
    pub sinks: Vec<Box<dyn Sink>>,
    /// A cancellation token to stop the scan with (a fresh one if `None`).
    pub cancel: Option<CancellationToken>,
    /// Fold only the scan's header, warnings and totals into the [`ScanResult`] that
    /// [`ScanHandle::wait`] returns, not its hosts: for front-ends that write every host as it
    /// finishes (the CLI) and would otherwise hold a whole sweep in memory for nothing.
    pub totals_only: bool,
    /// Take up a scan that stopped before its end (`rustmap --resume`), instead of starting a
    /// new one. The plan must be that scan's configuration.
    pub resume: Option<Resume>,
    /// Round trips measured by past scans, per host (learned timing): each host's timeouts
    /// start from its own, or from the largest of its /24 (/64), instead of the template's
    /// initial timeout.
    pub learned_rtt: Vec<(std::net::IpAddr, std::time::Duration)>,
    /// Hosts seen up recently (`--fast-discovery`): scanned without discovery probes; those
    /// that then answer no probe at all go through discovery after all, in a second pass.
    pub seen_up: Vec<std::net::IpAddr>,
    /// The only addresses the scan may send to (the API server's `--api-allow`): any other
    /// address, however it came (a target, a resolved name), is left out with a warning.
    pub allow: Option<crate::request::AllowList>,
    /// The new scan's id, made beforehand with [`new_scan_id`] (a front-end that must name a
    /// scan before it starts, like a queued API scan); a fresh one if `None`. Ignored when
    /// resuming, which keeps the stopped scan's id.
    pub scan_id: Option<String>,
    /// The hosts come from elsewhere (a distributed scan's agents) instead of this process's
    /// engine: nothing is sent from here, and the scan ends when the source does.
    pub remote: Option<crate::remote::Remote>,
}

/// A new scan id: a ULID (26 characters, sortable by creation time).
pub fn new_scan_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A stopped scan to take up again: its id, which the resumed scan keeps, the hosts it finished
/// (a [`Checkpoint`](rustmap_model::Checkpoint)'s `done`), and their results.
///
/// The resumed scan first delivers the finished hosts' results as `host_done` events, so that
/// its outputs and [`ScanHandle::wait`]'s result hold every host as an uninterrupted scan's
/// would, then scans the targets that are not in `done`. Its totals count both. A sink that holds
/// the finished hosts already (the store that gave the checkpoint) skips them itself.
pub struct Resume {
    /// The scan's id.
    pub scan_id: String,
    /// Hosts not to scan again.
    pub done: AddrSet,
    /// Their results, read as they are delivered (an error fails the scan: a host would be
    /// missing from its outputs).
    pub finished: Box<dyn Iterator<Item = Result<HostResult, String>> + Send>,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume").field("scan_id", &self.scan_id).field("done", &self.done.len()).finish()
    }
}

/// Starts scans.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scanner;

impl Scanner {
    /// Check `config` and start the scan it describes on the current tokio runtime. Output files
    /// are created only once everything has been checked and the sockets are open, so a bad
    /// value never truncates an existing file. With a proxy (`origin.proxy`), the proxy is
    /// checked first (reached, greeted, authenticated), blocking this thread for up to
    /// `Socks5::HANDSHAKE_TIMEOUT` plus the lookup of its name.
    pub fn start(config: ScanConfig) -> Result<ScanHandle, StartError> {
        Scanner::start_with(config, StartOptions::default())
    }

    /// [`Scanner::start`] with more sinks and a cancellation token of the caller's.
    pub fn start_with(config: ScanConfig, options: StartOptions) -> Result<ScanHandle, StartError> {
        let plan = validate(&config)?;
        Scanner::start_plan(plan, options)
    }

    /// Start a plan that [`validate()`] returned.
    pub fn start_plan(mut plan: ScanPlan, mut options: StartOptions) -> Result<ScanHandle, StartError> {
        if !options.learned_rtt.is_empty() || !options.seen_up.is_empty() {
            plan.timing.learned = rustmap_engine::timing::Learned::new(
                std::mem::take(&mut options.learned_rtt),
                std::mem::take(&mut options.seen_up),
            );
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        plan.allow = options.allow.take();
        // A remote scan sends nothing from here: no proxy to greet, no sockets to open.
        if let Some(remote) = options.remote.take() {
            return Scanner::start_remote(plan, options, remote, runtime);
        }
        // The proxy first: greeting and authentication, so that a proxy that is down or refuses
        // us fails the scan before anything is written or sent (-sL sends nothing: no check).
        if let Some(url) = plan.proxy.clone() {
            plan.socks = Some(if plan.list_only {
                Arc::new(rustmap_proxy::Socks5::new(url, (std::net::Ipv4Addr::UNSPECIFIED, 0).into()))
            } else {
                rustmap_proxy::Socks5::open_blocking(url)?
            });
        }
        let (_, connect) = pipeline::engine_kind(&plan);
        // Raw sockets first: without privileges the scan fails before anything is written.
        let raw = if connect || plan.list_only {
            None
        } else {
            Some(RawSockets::open(&plan.origin, plan.evasion.source_port)?)
        };
        let trace = if plan.path.probes() { Some(TraceSockets::open(&plan.origin)?) } else { None };
        // --passive-os sends nothing of its own.
        let os = match &plan.os {
            Some(p) if !p.passive_only => Some(OsSockets::open(&plan.origin)?),
            _ => None,
        };
        // --cloud: the providers are asked first, in the scan's task; the output files are only
        // checked here and opened once the inventory is in, so that a failure leaves them as they
        // were.
        let files = if plan.cloud.is_some() {
            sinks::check_files(&plan)?;
            None
        } else {
            Some(sinks::for_plan(&plan)?)
        };
        let extra = options.sinks;
        let resume = options.resume;
        let id = resume.as_ref().map(|r| r.scan_id.clone()).or(options.scan_id).unwrap_or_else(new_scan_id);
        let cancel = options.cancel.unwrap_or_default();
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let scan_id = id.clone();
        let token = cancel.clone();
        let totals_only = options.totals_only;
        let task = runtime.spawn(async move {
            let (plan, mut all) = match files {
                Some(files) => (plan, files),
                None => {
                    let plan = match crate::cloud::expand(plan, &token).await {
                        Ok(Some(p)) => p,
                        Ok(None) => return Err(ScanError::Engine("cancelled while asking the cloud providers".into())),
                        Err(e) => return Err(ScanError::Engine(e)),
                    };
                    let files = sinks::for_plan(&plan).map_err(|e| ScanError::Engine(e.to_string()))?;
                    (plan, files)
                }
            };
            all.extend(extra);
            let mut hub = Hub::new(all, Some(tx), token.clone(), !totals_only);
            let plan = Arc::new(plan);
            let outcome = pipeline::run(plan, scan_id, (raw, trace, os), &mut hub, token, resume).await;
            ended(outcome, &mut hub)
        });
        Ok(ScanHandle { id, events: Some(EventStream { rx }), cancel, task })
    }

    /// [`Scanner::start_plan`] for a scan fed by a [`Remote`](crate::remote::Remote): no
    /// sockets, no proxy, only the outputs.
    fn start_remote(
        plan: ScanPlan,
        options: StartOptions,
        remote: crate::remote::Remote,
        runtime: tokio::runtime::Handle,
    ) -> Result<ScanHandle, StartError> {
        let mut all = sinks::for_plan(&plan)?;
        all.extend(options.sinks);
        let id = options.scan_id.unwrap_or_else(new_scan_id);
        let cancel = options.cancel.unwrap_or_default();
        let fold_hosts = !options.totals_only;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let (scan_id, token) = (id.clone(), cancel.clone());
        let task = runtime.spawn(async move {
            let mut hub = Hub::new(all, Some(tx), token.clone(), fold_hosts);
            let outcome = crate::remote::run(Arc::new(plan), scan_id, &mut hub, token, remote).await;
            ended(outcome, &mut hub)
        });
        Ok(ScanHandle { id, events: Some(EventStream { rx }), cancel, task })
    }
}

/// What [`ScanHandle::wait`] gives for a scan that ended as `outcome`: a sink's failure first.
fn ended(outcome: ScanOutcome, hub: &mut Hub) -> Result<ScanResult, ScanError> {
    let result = std::mem::take(&mut hub.result);
    match (outcome, hub.sink_error.take()) {
        (_, Some(e)) => Err(ScanError::Sink(e)),
        (ScanOutcome::Failed { error }, None) => Err(ScanError::Engine(error)),
        _ => Ok(result),
    }
}

/// A running scan.
///
/// Take its events with [`ScanHandle::events`] and read them, or call [`ScanHandle::wait`]: the
/// stream is bounded ([`EVENT_BUFFER`]), and while it is held unread the scan waits for its
/// reader (result events are never dropped). `wait` lets go of a stream nobody took.
#[derive(Debug)]
pub struct ScanHandle {
    id: String,
    events: Option<EventStream>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<ScanResult, ScanError>>,
}

impl ScanHandle {
    /// The scan's id: a ULID, the same as in its `ScanStarted` event.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scan's events, from `ScanStarted` to `ScanFinished`. Can be taken once.
    pub fn events(&mut self) -> Option<EventStream> {
        self.events.take()
    }

    /// Ask the scan to stop. It ends with `ScanFinished` (outcome `cancelled`).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// The token that cancels this scan, to hand to whatever else may stop it (a signal handler).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Whether the scan has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Wait for the end of the scan: its folded result when it completed or was cancelled, the
    /// reason when it failed.
    pub async fn wait(mut self) -> Result<ScanResult, ScanError> {
        drop(self.events.take());
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(ScanError::Engine(format!("the scan task failed: {e}"))),
        }
    }
}

/// A scan's live events, in order. A [`futures_core::Stream`]; [`EventStream::next`] reads one
/// without further imports.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<ScanEvent>,
}

impl EventStream {
    /// The next event, or `None` after `ScanFinished`.
    pub async fn next(&mut self) -> Option<ScanEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting, without waiting (for polling front-ends).
    pub fn try_next(&mut self) -> Option<ScanEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for EventStream {
    type Item = ScanEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ScanEvent>> {
        self.rx.poll_recv(cx)
    }
}
