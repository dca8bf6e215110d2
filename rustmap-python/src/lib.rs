//! `rustmap._rustmap`, the native half of RustMap's Python bindings: it turns keyword arguments
//! into a checked [`rustmap::ScanConfig`] ([`config`]), runs scans as sessions on one shared tokio
//! runtime ([`session`]), expands target lists ([`targets`]) and maps the library's errors to the
//! Python exceptions of `rustmap.errors` ([`errors`]).
//!
//! Everything crosses the boundary as JSON text in the library's own serde shapes (the shapes
//! `rustmap -oJ` writes): the pure-Python package `rustmap` wraps it in result and event
//! objects. One serialization per event or result is far cheaper than the network time of a
//! scan, and it keeps the Python objects, `to_dict()` and the CLI's JSON the same by construction.

#![forbid(unsafe_code)]

mod config;
mod errors;
mod session;
mod targets;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::OnceLock;

/// The native module. Its functions are private to the `rustmap` package, which documents them.
#[pymodule]
fn _rustmap(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(config::build_config, m)?)?;
    m.add_function(wrap_pyfunction!(config::config_fields, m)?)?;
    m.add_function(wrap_pyfunction!(targets::parse_targets, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_class::<session::Session>()?;
    Ok(())
}

/// RustMap's version (the library this module was built from).
#[pyfunction]
fn version() -> &'static str {
    rustmap::VERSION
}

/// The runtime that Python's threads wait on (timeouts on a scan's end and events), made on
/// first use; scans run on threads of their own ([`session`]). Its thread never calls into
/// Python: awaitables are built on the Python side (the package's own thread pool waits on
/// blocking, GIL-free calls), because a thread the interpreter does not know of, completing an
/// asyncio future, can be caught by interpreter shutdown half-way through the call, which
/// crashes the process on exit.
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let made = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("rustmap-wait")
            .build()
            .map_err(|e| e.to_string())
    });
    made.as_ref().map_err(|e| PyRuntimeError::new_err(format!("cannot start RustMap's runtime: {e}")))
}
