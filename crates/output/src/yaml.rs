//! YAML output (`-oY`): the JSON document's content (see [`crate::json`]) as one YAML document,
//! streamed: the header at the start, each host as an item of `hosts` when it finishes, then
//! `warnings` and `stats`.
//!
//! ```yaml
//! scanner: rustmap
//! schema_version: 2
//! scan_id: 01JEXAMPLE0000000000000000
//! version: 0.1.0
//! args: rustmap -oY - 198.18.0.10
//! start: 1795000000
//! scans:
//!   - scan_type: syn
//!     protocol: tcp
//!     count: 1000
//!     ports: 1,3-4,...
//! hosts:
//!   - addr: 198.18.0.10
//!     status: up
//!     ports:
//!       - protocol: tcp
//!         port: 22
//!         state: open
//!         service: { name: ssh, product: OpenSSH, ... }
//! warnings: []
//! stats: { hosts_up: 1, ..., outcome: { status: completed } }
//! ```
//!
//! Every value is written by a YAML serializer (serde-saphyr), which quotes any string that could
//! be read as something else: a banner cannot inject a tag (`!!python/object`), an anchor or
//! alias (`&a`, `*a`), a comment, a key or a new document. Strings are sanitized first (no control
//! characters), as in every format. Hosts are listed as JSON lists them (up hosts; down hosts
//! with `-v`); the `hosts: []` of a scan that found none is written at the end.

use crate::common::{cleaned_host, host_listed, Options, ScanScripts};
use crate::json::scan_head;
use crate::{Control, Sink, SinkError};
use rustmap_model::{neutralize, ScanEvent};
use serde::Serialize;
use std::io::{self, Write};

/// Writes YAML as events arrive.
pub struct YamlWriter<W: Write + Send> {
    out: W,
    opts: Options,
    hosts_written: u64,
    warnings: Vec<String>,
    /// Pre- and postrule script results, written after the hosts.
    scripts: ScanScripts,
}

impl<W: Write + Send> YamlWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W, opts: Options) -> YamlWriter<W> {
        YamlWriter { out, opts, hosts_written: 0, warnings: Vec::new(), scripts: ScanScripts::default() }
    }
}

fn to_yaml<T: Serialize>(v: &T) -> io::Result<String> {
    serde_saphyr::to_string(v).map_err(|e| io::Error::other(format!("YAML: {e}")))
}

/// Write `value` as an item of a block sequence, indented under its key.
fn write_item<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    let text = to_yaml(value)?;
    for (i, line) in text.lines().enumerate() {
        let lead = if i == 0 { "  - " } else { "    " };
        writeln!(out, "{lead}{line}")?;
    }
    Ok(())
}

impl<W: Write + Send> Sink for YamlWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.out.write_all(to_yaml(&scan_head(info))?.as_bytes())?;
            }
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => {
                if self.hosts_written == 0 {
                    writeln!(self.out, "hosts:")?;
                }
                self.hosts_written += 1;
                write_item(&mut self.out, &cleaned_host(h, &self.opts))?;
            }
            ScanEvent::Warning { message } => self.warnings.push(neutralize(message).into_owned()),
            ScanEvent::ScriptOutput { scope, result } => self.scripts.add(scope, result),
            ScanEvent::ScanFinished(stats) => {
                if self.hosts_written == 0 {
                    writeln!(self.out, "hosts: []")?;
                }
                let mut tail = serde_json::Map::new();
                for (key, list) in self.scripts.lists() {
                    tail.insert(key.into(), serde_json::to_value(list).map_err(io::Error::other)?);
                }
                tail.insert("warnings".into(), serde_json::json!(self.warnings));
                tail.insert("stats".into(), serde_json::to_value(stats).map_err(io::Error::other)?);
                self.out.write_all(to_yaml(&tail)?.as_bytes())?;
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
