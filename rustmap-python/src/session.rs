//! `Session`: one running scan, as the Python package drives it. It is started at construction
//! on the shared runtime and offers its end (`wait_blocking`), its events (when started for
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
use rustmap::{EventStream, ScanConfig, ScanHandle, Scanner, StartOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

/// How a scan ended: its result as JSON, or why it failed.
type Outcome = Result<String, String>;

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
    // An error means the sender is gone without an outcome, which the waiting task never does.
    let ended = async { done.wait_for(Option::is_some).await.ok().and_then(|v| v.clone()) };
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
        // Starting opens sockets and may check a proxy: without the GIL, on the runtime.
        let rt = runtime()?;
        let started = py.detach(|| {
            let _guard = rt.enter();
            Scanner::start_with(config, options)
        });
        let mut handle: ScanHandle = started.map_err(|e| errors::start_error(py, &e))?;
        let events = if stream { handle.events() } else { None };
        let id = handle.id().to_string();
        let (tx, done) = watch::channel(None);
        rt.spawn(async move {
            let outcome = match handle.wait().await {
                Ok(result) => serde_json::to_string(&result).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(Some(Arc::new(outcome)));
        });
        Ok(Session { id, cancel, events: Arc::new(Mutex::new(events)), done })
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
