//! The library's errors as Python exceptions. The exception classes live in the pure-Python
//! module `rustmap.errors` (so they have real constructors, attributes and docstrings); this
//! module builds instances of them:
//!
//! | Rust | Python |
//! |---|---|
//! | [`ConfigError`] of kind `Unsupported` | `UnsupportedError` |
//! | [`ConfigError`] of kind `Privilege` | `PrivilegeError` |
//! | [`ConfigError`] on `targets` / `exclude` | `TargetError` |
//! | any other [`ConfigError`] | `ConfigError` |
//! | an unknown keyword argument | `UnknownOptionError` |
//! | [`StartError`] (sockets, proxy, files), [`rustmap::ScanError`] | `ScanError` |

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rustmap::{ConfigError, ConfigErrorKind, StartError};

/// The exception class `name` of `rustmap.errors`, instantiated with `args`; if that module
/// cannot be imported (the native module loaded alone), a built-in exception with the message.
fn raise(py: Python<'_>, name: &str, message: &str, field: &str, value: &str, kind: &str) -> PyErr {
    let made = py.import("rustmap.errors").and_then(|m| m.getattr(name)).and_then(|cls| {
        let args = (message, field, value, kind);
        cls.call1(args)
    });
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) if name == "ScanError" => PyRuntimeError::new_err(message.to_string()),
        Err(_) => PyValueError::new_err(message.to_string()),
    }
}

/// The kind's name as `ConfigError.kind` holds it.
fn kind_name(kind: ConfigErrorKind) -> &'static str {
    match kind {
        ConfigErrorKind::Invalid => "invalid",
        ConfigErrorKind::Conflict => "conflict",
        ConfigErrorKind::Missing => "missing",
        ConfigErrorKind::Privilege => "privilege",
        ConfigErrorKind::Unsupported => "unsupported",
        // The kinds are non-exhaustive: a new one is still a configuration error.
        _ => "invalid",
    }
}

/// A [`ConfigError`] as the most specific Python exception.
pub(crate) fn config_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    let class = match e.kind {
        ConfigErrorKind::Unsupported => "UnsupportedError",
        ConfigErrorKind::Privilege => "PrivilegeError",
        _ if is_target_field(e.field) => "TargetError",
        _ => "ConfigError",
    };
    raise(py, class, &e.message, e.field, &e.value, kind_name(e.kind))
}

fn is_target_field(field: &str) -> bool {
    matches!(field, "targets" | "exclude" | "target_files" | "exclude_files")
}

/// A configuration error this crate finds itself (a value of the wrong type, a bad target).
pub(crate) fn invalid(py: Python<'_>, field: &str, value: &str, message: &str) -> PyErr {
    let class = if is_target_field(field) { "TargetError" } else { "ConfigError" };
    raise(py, class, message, field, value, "invalid")
}

/// Keyword arguments that name no option.
pub(crate) fn unknown_options(py: Python<'_>, names: &[String], known: &[String]) -> PyErr {
    let list = names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let message = format!("unknown option(s) {list}; the options are: {}", known.join(", "));
    raise(py, "UnknownOptionError", &message, &names.join(","), "", "unknown")
}

/// A scan that could not start.
pub(crate) fn start_error(py: Python<'_>, e: &StartError) -> PyErr {
    match e {
        StartError::Config(c) => config_error(py, c),
        other => raise(py, "ScanError", &other.to_string(), "", "", "start"),
    }
}

/// A scan that started and failed.
pub(crate) fn scan_error(py: Python<'_>, message: &str) -> PyErr {
    raise(py, "ScanError", message, "", "", "failed")
}
