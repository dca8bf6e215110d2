//! The output sinks a configuration asks for: files in each format, normal output on standard
//! output for interactive use, and the status line on stderr. Built once the plan is checked, so
//! that a bad value never creates or truncates a file.

use crate::session::StartError;
use crate::ScanPlan;
use rustmap_model::config::OutputFormat;
use rustmap_model::Sink;
use rustmap_output::csv::CsvWriter;
use rustmap_output::html::HtmlWriter;
use rustmap_output::jsonl::JsonLinesWriter;
use rustmap_output::progress::{ProgressOptions, ProgressSink};
use rustmap_output::siem::SiemWriter;
use rustmap_output::topology::TopologyWriter;
use rustmap_output::yaml::YamlWriter;
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options};
use std::fs::File;
use std::io::{BufWriter, LineWriter, Write};

fn open_out(path: &str, append: bool) -> Result<Box<dyn Write + Send>, StartError> {
    if path == "-" {
        return Ok(Box::new(LineWriter::new(std::io::stdout())));
    }
    let file =
        if append { std::fs::OpenOptions::new().create(true).append(true).open(path) } else { File::create(path) }
            .map_err(|source| StartError::Output { path: path.to_string(), source })?;
    Ok(Box::new(BufWriter::new(file)))
}

/// Check that every output file of `plan` can be written, without truncating any (one that did
/// not exist is removed again): for scans that open their files later (`--cloud`).
pub(crate) fn check_files(plan: &ScanPlan) -> Result<(), StartError> {
    for (_, path) in plan.files.iter().filter(|(_, p)| p != "-") {
        let existed = std::path::Path::new(path).exists();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| StartError::Output { path: path.to_string(), source })?;
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// The sinks of `plan`'s outputs, in delivery order.
pub(crate) fn for_plan(plan: &ScanPlan) -> Result<Vec<Box<dyn Sink>>, StartError> {
    let o = &plan.config.output;
    let opts = Options { open_only: o.open_only, reason: o.reason || o.verbosity >= 2, verbosity: o.verbosity };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if o.progress || plan.stats_every.is_some() {
        // Status goes to stderr, not to stdout as in nmap, so that `-oX -` / `-oJ -` stay valid
        // documents. It comes first: it erases its live line before any other sink prints.
        let progress = ProgressSink::stderr(ProgressOptions { live: o.progress, stats_every: plan.stats_every });
        if !progress.is_silent() {
            sinks.push(Box::new(progress));
        }
    }
    // As nmap: when an output file is "-", it replaces the interactive output on stdout; so
    // does a topology graph without a file of its own.
    let graph_on_stdout = matches!(plan.path.topology, Some((_, None)));
    if o.interactive && !plan.files.iter().any(|(_, p)| p == "-") && !graph_on_stdout {
        sinks.push(Box::new(NormalWriter::new(LineWriter::new(std::io::stdout()), opts.clone())));
    }
    for (format, path) in &plan.files {
        let w = open_out(path, o.append)?;
        let sink: Box<dyn Sink> = match format {
            OutputFormat::Normal => Box::new(NormalWriter::new(w, opts.clone())),
            OutputFormat::Xml => Box::new(XmlWriter::new(w, opts.clone())),
            OutputFormat::Json => Box::new(JsonWriter::new(w, opts.clone())),
            OutputFormat::Grepable => Box::new(GrepableWriter::new(w, opts.clone())),
            OutputFormat::Yaml => Box::new(YamlWriter::new(w, opts.clone())),
            OutputFormat::Csv => Box::new(CsvWriter::new(w, opts.clone())),
            OutputFormat::Cef => Box::new(SiemWriter::cef(w, opts.clone())),
            OutputFormat::Leef => Box::new(SiemWriter::leef(w, opts.clone())),
            OutputFormat::JsonLines => Box::new(JsonLinesWriter::new(w, opts.clone())),
            OutputFormat::Html => Box::new(HtmlWriter::new(w, opts.clone())),
        };
        sinks.push(sink);
    }
    match &plan.path.topology {
        Some((format, Some(path))) => sinks.push(Box::new(
            TopologyWriter::file(*format, std::path::Path::new(path))
                .map_err(|source| StartError::Output { path: path.clone(), source })?,
        )),
        Some((format, None)) => sinks.push(Box::new(TopologyWriter::stdout(*format))),
        None => {}
    }
    Ok(sinks)
}
