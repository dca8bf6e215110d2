//! `Session`: one running scan, as the Python package drives it. It is started at construction,
//! on a thread of its own, and offers its end (`wait_blocking`), its events (when started for
//! streaming: `next_events_blocking`) and `cancel`.
//!
//! Every wait releases the GIL and takes a timeout, so that the Python side waits in short
//! slices and checks for signals in between: that is how Ctrl-C reaches a synchronous scan
//! (`rustmap.scan` cancels it and re-raises `KeyboardInterrupt`). The asyncio functions make the
//! same calls from a thread pool of the package (see `crate::runtime` for why no tokio thread
//! touches Python). A session dropped while its scan runs cancels the scan, so a forgotten stream
//! never scans on in the background.

use crate::errors;
use crate::runtime;
use pyo3::prelude::*;
use rustmap::{EventStream, ScanConfig, Scanner, StartError, StartOptions};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

/// How a scan ended: its result as JSON, or why it failed.
type Outcome = Result<String, String>;

/// What a scan's thread reports once it has tried to start the scan.
enum Started {
    /// The scan runs: its id, and its events when it was started for streaming.
    Running(String, Option<EventStream>),
    /// It could not start.
    Failed(StartError),
    /// Its runtime could not be made.
    NoRuntime(String),
}

/// A running scan.
#[pyclass(module = "rustmap._rustmap", frozen)]
pub(crate) struct Session {
    id: String,
    cancel: CancellationToken,
    events: Arc<Mutex<Option<EventStream>>>,
    done: watch::Receiver<Option<Arc<Outcome>>>,
}

/// Wait for the scan's end; `None` if `limit` passed first.
async fn outcome(mut done: watch::Receiver<Option<Arc<Outcome>>>, limit: Duration) -> Option<Arc<Outcome>> {
    let ended = async {
        match done.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            // The scan's thread is gone without an outcome (it panicked): say so rather than
            // leave the caller waiting for ever.
            Err(_) => Some(Arc::new(Err("the scan's thread ended without a result".to_string()))),
        }
    };
    tokio::time::timeout(limit, ended).await.ok().flatten()
}

fn into_py(py: Python<'_>, outcome: &Outcome) -> PyResult<String> {
    match outcome {
        Ok(json) => Ok(json.clone()),
        Err(message) => Err(errors::scan_error(py, message)),
    }
}

#[pymethods]
impl Session {
    /// Start the scan `config_json` describes (a configuration `build_config` returned). With
    /// `stream`, its events are kept for `next_events_blocking`; without, they are not buffered at all.
    #[new]
    #[pyo3(signature = (config_json, stream = false))]
    fn new(py: Python<'_>, config_json: &str, stream: bool) -> PyResult<Session> {
        let config: ScanConfig = serde_json::from_str(config_json)
            .map_err(|e| errors::invalid(py, "config", "", &format!("not a scan configuration: {e}")))?;
        let cancel = CancellationToken::new();
        let options = StartOptions { cancel: Some(cancel.clone()), ..StartOptions::default() };
        // Once per process, as the rustmap command does at start: a connect scan holds a
        // descriptor per probe in flight.
        static FD_LIMIT: Once = Once::new();
        FD_LIMIT.call_once(|| {
            rustmap::raise_fd_limit();
        });
        let (started_tx, started_rx) = std_mpsc::channel();
        let (tx, done) = watch::channel(None);
        // Each scan runs as the CLI runs its one: on a thread of its own with a single-threaded
        // runtime, which spares a packet-heavy scan the wake-ups across worker threads of a
        // shared runtime (BENCHMARKS.md § Python bindings). Any number can run at once.
        let spawned = std::thread::Builder::new().name("rustmap-scan".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Started::NoRuntime(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                // Starting opens sockets and may check a proxy, here rather than in Python's
                // thread, which waits without the GIL.
                let mut handle = match Scanner::start_with(config, options) {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = started_tx.send(Started::Failed(e));
                        return;
                    }
                };
                let events = if stream { handle.events() } else { None };
                let _ = started_tx.send(Started::Running(handle.id().to_string(), events));
                let outcome = match handle.wait().await {
                    Ok(result) => serde_json::to_string(&result).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(Some(Arc::new(outcome)));
            });
        });
        if let Err(e) = spawned {
            return Err(errors::scan_error(py, &format!("cannot start a scan thread: {e}")));
        }
        match py.detach(move || started_rx.recv()) {
            Ok(Started::Running(id, events)) => Ok(Session { id, cancel, events: Arc::new(Mutex::new(events)), done }),
            Ok(Started::Failed(e)) => Err(errors::start_error(py, &e)),
            Ok(Started::NoRuntime(e)) => Err(errors::scan_error(py, &format!("cannot start a scan's runtime: {e}"))),
            Err(_) => Err(errors::scan_error(py, "the scan's thread ended before the scan started")),
        }
    }

    /// The scan's id (a ULID, as in its `scan_started` event).
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// Ask the scan to stop; it ends with `scan_finished` (outcome `cancelled`) and keeps what
    /// it found.
    fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether the scan was asked to stop.
    #[getter]
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the scan has ended.
    #[getter]
    fn finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// The scan's result as JSON once it has ended, waiting at most `timeout` seconds (`None`
    /// if it is still running then). Releases the GIL while waiting.
    fn wait_blocking(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<String>> {
        let limit = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let done = self.done.clone();
        let rt = runtime()?;
        let got = py.detach(|| rt.block_on(outcome(done, limit)));
        got.map(|o| into_py(py, &o)).transpose()
    }

    /// The next events as JSON, waiting at most `timeout` seconds for the first and taking at
    /// most `max` (at least one) of those already waiting: `(events, ended)`, where `ended` says
    /// the stream is over (the scan's last event was read). Nothing in time gives
    /// `([], False)`. Releases the GIL while waiting.
    fn next_events_blocking(&self, py: Python<'_>, timeout: f64, max: usize) -> PyResult<(Vec<String>, bool)> {
        let limit = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let events = self.events.clone();
        let rt = runtime()?;
        Ok(py.detach(|| {
            rt.block_on(async {
                let mut guard = events.lock().await;
                let Some(stream) = guard.as_mut() else { return (Vec::new(), true) };
                let first = match tokio::time::timeout(limit, stream.next()).await {
                    Err(_) => return (Vec::new(), false),
                    Ok(None) => return (Vec::new(), true),
                    Ok(Some(ev)) => ev,
                };
                let mut out = Vec::new();
                out.extend(serde_json::to_string(&first).ok());
                while out.len() < max.max(1) {
                    match stream.try_next() {
                        Some(ev) => out.extend(serde_json::to_string(&ev).ok()),
                        None => break,
                    }
                }
                (out, false)
            })
        }))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Nobody can read this scan's results any more.
        if self.done.borrow().is_none() {
            self.cancel.cancel();
        }
    }
}
