//! JSON lines (`--oJ-lines`): the event stream itself, one JSON object per line as the scan runs,
//! for piping into `jq`, a log shipper or another program. Each line is one [`ScanEvent`] in the
//! documented event schema (docs/architecture.md § The events: `{"event": "port_found", ...}`).
//! Lines are flushed four times a second (at each tick of the scan) and at the end, so a reader
//! sees a port within a quarter of a second of its decision without a system call per line on a
//! sweep (on standard output, line by line).
//!
//! Strings are sanitized as in every format (the JSON encoder then escapes quotes and the rest);
//! `progress` events are left out (they are for status displays), and `--open` drops ports that
//! are not open and hosts without one from `port_found` and `host_done` lines.

use crate::common::{clean_port, cleaned_host, host_listed, is_openish, Options};
use crate::{Control, Sink, SinkError};
use rustmap_model::{neutralize, PortResult, PortState, Reason, ScanEvent};
use std::io::Write;

/// Writes one line per event.
pub struct JsonLinesWriter<W: Write + Send> {
    out: W,
    opts: Options,
}

impl<W: Write + Send> JsonLinesWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W, opts: Options) -> JsonLinesWriter<W> {
        JsonLinesWriter { out, opts }
    }
}

impl<W: Write + Send> Sink for JsonLinesWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        let line = match ev {
            ScanEvent::Progress { .. } => return Ok(Control::Continue),
            ScanEvent::PortFound { port, .. } if self.opts.open_only && !is_openish(port.state) => {
                return Ok(Control::Continue)
            }
            ScanEvent::HostDone(h) if !host_listed(h, &self.opts) => return Ok(Control::Continue),
            ScanEvent::HostDone(h) => ScanEvent::HostDone(cleaned_host(h, &self.opts)),
            ScanEvent::PortFound { addr, port } => {
                let mut port = port.clone();
                clean_port(&mut port);
                ScanEvent::PortFound { addr: *addr, port }
            }
            ScanEvent::ServiceFound { addr, protocol, port, service, tls } => {
                let mut p = PortResult::new(*protocol, *port, PortState::Open, Reason::Unknown, 0);
                p.service = Some(service.clone());
                p.tls = tls.clone();
                clean_port(&mut p);
                ScanEvent::ServiceFound {
                    addr: *addr,
                    protocol: *protocol,
                    port: *port,
                    service: p.service.unwrap_or_default(),
                    tls: p.tls,
                }
            }
            ScanEvent::ScanStarted(info) => {
                let mut info = info.clone();
                info.args = neutralize(&info.args).into_owned();
                ScanEvent::ScanStarted(info)
            }
            ScanEvent::Warning { message } => ScanEvent::Warning { message: neutralize(message).into_owned() },
            other => other.clone(),
        };
        serde_json::to_writer(&mut self.out, &line).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
