//! A stored scan as events again — `scan_started` (rebuilt from its configuration), a
//! `host_done` per stored host, `scan_finished` from its totals — written by the CLI's own output
//! writers into memory (`GET /api/scans/{id}/export`) or sent to a WebSocket client that asks for
//! the events of a scan that has ended.

use crate::error::ApiError;
use crate::MAX_EXPORT_BYTES;
use axum::http::StatusCode;
use rustmap_model::{HostResult, ScanEvent, ScanOutcome, ScanStats, ScriptResult, ScriptScope, Sink};
use rustmap_output::csv::CsvWriter;
use rustmap_output::grepable::GrepableWriter;
use rustmap_output::html::HtmlWriter;
use rustmap_output::json::JsonWriter;
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::normal::NormalWriter;
use rustmap_output::siem::SiemWriter;
use rustmap_output::xml::XmlWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::Options;
use rustmap_store::ScanRecord;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The formats an export can take: `(name, content type)`.
pub(crate) const FORMATS: &[(&str, &str)] = &[
    ("json", "application/json"),
    ("xml", "application/xml"),
    ("grepable", "text/plain; charset=utf-8"),
    ("normal", "text/plain; charset=utf-8"),
    ("yaml", "application/yaml"),
    ("csv", "text/csv; charset=utf-8"),
    ("cef", "text/plain; charset=utf-8"),
    ("leef", "text/plain; charset=utf-8"),
    ("jsonl", "application/x-ndjson"),
    ("html", "text/html; charset=utf-8"),
];

/// The events of a stored scan, in the order a live scan sends them.
pub(crate) fn events(
    record: &ScanRecord,
    hosts: Vec<HostResult>,
    scripts: Vec<(ScriptScope, ScriptResult)>,
) -> impl Iterator<Item = ScanEvent> {
    let info = rustmap::stored_scan_info(record.config.as_ref(), &record.id, record.started);
    let outcome = match record.status.as_str() {
        "completed" => ScanOutcome::Completed,
        "failed" => ScanOutcome::Failed { error: record.error.clone().unwrap_or_default() },
        _ => ScanOutcome::Cancelled,
    };
    let stats = ScanStats {
        end_unix: record.ended.unwrap_or(record.started),
        elapsed_secs: record.elapsed_secs.unwrap_or(0.0),
        hosts_up: u64::try_from(record.hosts_up).unwrap_or(0),
        hosts_down: u64::try_from(record.hosts_down).unwrap_or(0),
        hosts_total: u64::try_from(record.hosts_total).unwrap_or(0),
        completed: outcome == ScanOutcome::Completed,
        outcome,
    };
    let (pre, post): (Vec<_>, Vec<_>) = scripts.into_iter().partition(|(scope, _)| *scope == ScriptScope::Pre);
    let script = |(scope, result)| ScanEvent::ScriptOutput { scope, result };
    std::iter::once(ScanEvent::ScanStarted(info))
        .chain(pre.into_iter().map(script))
        .chain(hosts.into_iter().map(ScanEvent::HostDone))
        .chain(post.into_iter().map(script))
        .chain(std::iter::once(ScanEvent::ScanFinished(stats)))
}

/// A writer into shared memory that refuses to grow past [`MAX_EXPORT_BYTES`].
#[derive(Clone, Default)]
struct Capped(Arc<Mutex<Vec<u8>>>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?;
        if v.len() + buf.len() > MAX_EXPORT_BYTES {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "export too large"));
        }
        v.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The content type of a format name, or a 400 listing the formats.
pub(crate) fn content_type(format: &str) -> Result<&'static str, ApiError> {
    FORMATS.iter().find(|(n, _)| *n == format).map(|(_, t)| *t).ok_or_else(|| {
        let names: Vec<&str> = FORMATS.iter().map(|(n, _)| *n).collect();
        ApiError::bad_request(format!("format {format:?}: give one of {}", names.join(", "))).with_field("format")
    })
}

/// Write a stored scan in `format` (a name of [`FORMATS`]).
pub(crate) fn render(
    format: &str,
    record: &ScanRecord,
    hosts: Vec<HostResult>,
    scripts: Vec<(ScriptScope, ScriptResult)>,
) -> Result<Vec<u8>, ApiError> {
    content_type(format)?;
    let out = Capped::default();
    let w = out.clone();
    let opts = Options::default();
    let mut sink: Box<dyn Sink> = match format {
        "json" => Box::new(JsonWriter::new(w, opts)),
        "xml" => Box::new(XmlWriter::new(w, opts)),
        "grepable" => Box::new(GrepableWriter::new(w, opts)),
        "normal" => Box::new(NormalWriter::new(w, opts)),
        "yaml" => Box::new(YamlWriter::new(w, opts)),
        "csv" => Box::new(CsvWriter::new(w, opts)),
        "cef" => Box::new(SiemWriter::cef(w, opts)),
        "leef" => Box::new(SiemWriter::leef(w, opts)),
        "jsonl" => Box::new(JsonLinesWriter::new(w, opts)),
        _ => Box::new(HtmlWriter::new(w, opts)),
    };
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the export is larger than {} MiB; use the CLI's outputs for a scan this size",
                MAX_EXPORT_BYTES >> 20
            ),
        )
    };
    for ev in events(record, hosts, scripts) {
        sink.event(&ev).map_err(|_| too_large())?;
    }
    sink.finish().map_err(|_| too_large())?;
    drop(sink);
    let bytes = std::mem::take(&mut *out.0.lock().map_err(|_| ApiError::internal("export buffer poisoned"))?);
    Ok(bytes)
}
