//! `Session`: one running scan, as the Python package drives it. It is started at construction
//! on the shared runtime and offers its end (`wait`, blocking or awaitable), its events (when
//! started for streaming) and `cancel`.
//!
//! Blocking calls release the GIL and take a timeout, so that the Python side waits in short
//! slices and checks for signals in between: that is how Ctrl-C reaches a synchronous scan
//! (`rustmap.scan` cancels it and re-raises `KeyboardInterrupt`). A session dropped while its
//! scan runs cancels the scan, so a forgotten stream never scans on in the background.

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
async fn outcome(mut done: watch::Receiver<Option<Arc<Outcome>>>, limit: Option<Duration>) -> Option<Arc<Outcome>> {
    let ended = async {
        // An error here means the sender is gone without an outcome, which the task never does.
        done.wait_for(Option::is_some).await.ok().and_then(|v| v.clone())
    };
    match limit {
        Some(d) => tokio::time::timeout(d, ended).await.ok().flatten(),
        None => ended.await,
    }
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
    /// `stream`, its events are kept for `next_event`; without, they are not buffered at all.
    #[new]
    #[pyo3(signature = (config_json, stream = false))]
    fn new(py: Python<'_>, config_json: &str, stream: bool) -> PyResult<Session> {
        let config: ScanConfig = serde_json::from_str(config_json)
            .map_err(|e| errors::invalid(py, "config", "", &format!("not a scan configuration: {e}")))?;
        let cancel = CancellationToken::new();
        let options = StartOptions { cancel: Some(cancel.clone()), ..StartOptions::default() };
        // Starting opens sockets and may check a proxy: without the GIL, on the runtime.
        let started = py.detach(|| {
            let _guard = runtime().enter();
            Scanner::start_with(config, options)
        });
        let mut handle: ScanHandle = started.map_err(|e| errors::start_error(py, &e))?;
        let events = if stream { handle.events() } else { None };
        let id = handle.id().to_string();
        let (tx, done) = watch::channel(None);
        runtime().spawn(async move {
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
        let got = py.detach(|| runtime().block_on(outcome(done, Some(limit))));
        got.map(|o| into_py(py, &o)).transpose()
    }

    /// An awaitable of the scan's result as JSON.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let done = self.done.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let got = outcome(done, None).await;
            Python::attach(|py| match got {
                Some(o) => into_py(py, &o),
                None => Err(errors::scan_error(py, "the scan ended without a result")),
            })
        })
    }

    /// The next event as JSON, waiting at most `timeout` seconds: `(True, None)` when none came
    /// in time, `(False, None)` after the last event. Releases the GIL while waiting.
    fn next_event_blocking(&self, py: Python<'_>, timeout: f64) -> (bool, Option<String>) {
        let limit = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        let events = self.events.clone();
        py.detach(|| {
            runtime().block_on(async {
                let mut guard = events.lock().await;
                let Some(stream) = guard.as_mut() else { return (false, None) };
                match tokio::time::timeout(limit, stream.next()).await {
                    Err(_) => (true, None),
                    Ok(ev) => (false, ev.and_then(|e| serde_json::to_string(&e).ok())),
                }
            })
        })
    }

    /// An awaitable of the next event as JSON (`None` after the last one).
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let events = self.events.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut guard = events.lock().await;
            let ev = match guard.as_mut() {
                Some(stream) => stream.next().await,
                None => None,
            };
            Ok(ev.and_then(|e| serde_json::to_string(&e).ok()))
        })
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
