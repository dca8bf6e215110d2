//! Keyword arguments → a checked [`ScanConfig`].
//!
//! The words are the library's [`ScanRequest`] (the guide's flat fields, the same as the REST
//! API's request body) plus every top-level field of [`ScanConfig`] itself (`discovery={...}`,
//! `names={...}`, `scan_types=[...]`, ...), so that nothing the library can do is out of reach
//! from Python. A flat field wins over the section of the same name when its value is not a
//! dict (`ports="22"` is the flat `-p`, `ports={"spec": "22"}` the section). The result goes
//! through [`rustmap::validate`], so a bad value raises the same error, naming the same field,
//! as on the command line or through the API.

use crate::errors;
use pyo3::prelude::*;
use rustmap::{ScanConfig, ScanRequest};
use serde_json::{Map, Value};

/// The flat fields of [`ScanRequest`], in the guide's order.
const REQUEST_FIELDS: [&str; 19] = [
    "targets",
    "ports",
    "top_ports",
    "scan_type",
    "service_detection",
    "os_detection",
    "timing",
    "skip_discovery",
    "exclude",
    "max_rate",
    "min_rate",
    "open_only",
    "scripts",
    "script_args",
    "vuln_check",
    "vuln_min_cvss",
    "geoip",
    "profile",
    "config",
];

/// The top-level fields of [`ScanConfig`], read off its serialized default so that a field
/// added to the library is accepted here without a change.
fn section_fields() -> Vec<String> {
    match serde_json::to_value(ScanConfig::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every keyword `ScanConfig(...)` accepts, sorted.
#[pyfunction]
pub(crate) fn config_fields() -> Vec<String> {
    let mut all: Vec<String> = REQUEST_FIELDS.iter().map(|s| s.to_string()).collect();
    for f in section_fields() {
        if !all.contains(&f) {
            all.push(f);
        }
    }
    all.sort();
    all
}

/// `ports=22` or `ports=[22, "80-90"]` as the `-p` text they mean.
fn ports_text(v: Value) -> Value {
    let word = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match &v {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(items) => match items.iter().map(word).collect::<Option<Vec<_>>>() {
            Some(words) => Value::String(words.join(",")),
            None => v,
        },
        _ => v,
    }
}

/// The serde message without its "at line 1 column 9" tail, which means nothing to a caller
/// who wrote keyword arguments.
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Build and check the configuration that keyword arguments (a JSON object) describe. Returns
/// the configuration as JSON and the notes for the user (what a profile asks for that this
/// build cannot do yet). Raises the `rustmap.errors` exceptions.
#[pyfunction]
pub(crate) fn build_config(py: Python<'_>, kwargs_json: &str) -> PyResult<(String, Vec<String>)> {
    let kwargs: Map<String, Value> = serde_json::from_str(kwargs_json)
        .map_err(|e| errors::invalid(py, "", "", &format!("options are not a JSON object: {}", serde_message(&e))))?;
    let sections = section_fields();
    let mut request = Map::new();
    let mut config = Map::new();
    let mut unknown = Vec::new();
    for (key, value) in kwargs {
        let flat = REQUEST_FIELDS.contains(&key.as_str());
        let section = sections.contains(&key);
        if flat && !(section && value.is_object()) {
            let value = if key == "ports" { ports_text(value) } else { value };
            // One field at a time first, so that a value of the wrong type names its field.
            let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
            if let Err(e) = serde_json::from_value::<ScanRequest>(one) {
                return Err(errors::invalid(py, &key, &value.to_string(), &format!("{key}: {}", serde_message(&e))));
            }
            request.insert(key, value);
        } else if section {
            let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
            if let Err(e) = serde_json::from_value::<ScanConfig>(one) {
                return Err(errors::invalid(py, &key, &value.to_string(), &format!("{key}: {}", serde_message(&e))));
            }
            config.insert(key, value);
        } else {
            unknown.push(key);
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        return Err(errors::unknown_options(py, &unknown, &config_fields()));
    }
    // What the caller said about the terminal, before defaults are laid over it.
    let output = config.get("output").and_then(Value::as_object);
    let asked = |k: &str| output.is_some_and(|o| o.contains_key(k));
    let (keep_interactive, keep_progress) = (asked("interactive"), asked("progress"));
    if !config.is_empty() {
        // Sections given as keywords go into the request's whole `config`, on top of one given
        // as `config=` itself.
        let mut whole = match request.remove("config") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        whole.extend(config);
        request.insert("config".into(), Value::Object(whole));
    }
    let request: ScanRequest = serde_json::from_value(Value::Object(request))
        .map_err(|e| errors::invalid(py, "config", "", &format!("config: {}", serde_message(&e))))?;
    let profiles = rustmap::profile::default_dir();
    let (mut c, notes) = request.into_config(profiles.as_deref()).map_err(|e| errors::config_error(py, &e))?;
    // A library prints nothing unless asked to.
    if !keep_interactive {
        c.output.interactive = false;
    }
    if !keep_progress {
        c.output.progress = false;
    }
    if c.args.is_empty() {
        c.args = format!("rustmap (python) {}", c.targets.join(" "));
    }
    // Checking sends nothing but reads files (target files, probe databases): without the GIL.
    let checked = py.detach(|| rustmap::validate(&c).map(|_| ()));
    checked.map_err(|e| errors::config_error(py, &e))?;
    let text = serde_json::to_string(&c).map_err(|e| errors::invalid(py, "", "", &e.to_string()))?;
    Ok((text, notes))
}
