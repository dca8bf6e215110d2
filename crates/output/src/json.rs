//! JSON output (`-oJ`): one object per scan, streamed (hosts are written as they finish).
//!
//! Schema (version 2, see `schema_version`; version 2 added `scan_id`, the scan's ULID, and the
//! `outcome` of `stats`):
//! ```json
//! {
//!   "scanner": "rustmap", "schema_version": 2, "scan_id": "01JEXAMPLE0000000000000000", "version": "0.1.0",
//!   "args": "rustmap -oJ - 198.18.0.10", "start": 1795000000,
//!   "scans": [ { "scan_type": "connect", "protocol": "tcp", "count": 1000, "ports": "1,3-4,..." } ],
//!   "hosts": [ {
//!       "addr": "198.18.0.10", "hostnames": [ { "name": "h10.lab.test", "kind": "PTR" } ],
//!       "status": "up", "reason": "syn-ack", "reason_ttl": 0,
//!       "start_unix": 1795000000, "end_unix": 1795000001, "srtt_us": 120, "timed_out": false,
//!       "ports": [ { "protocol": "tcp", "port": 22, "state": "open", "reason": "syn-ack", "reason_ttl": 0,
//!                   "service": { "name": "ssh", "method": "probed", "conf": 10, "product": "OpenSSH",
//!                                "version": "9.2p1 Debian 2+deb12u3", "extrainfo": "protocol 2.0", "ostype": "Linux",
//!                                "cpe": [ "cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel" ] } } ],
//!       "extraports": [ { "state": "closed", "count": 985,
//!                         "reasons": [ { "reason": "conn-refused", "protocol": "tcp", "count": 985, "ports": "1-20,..." } ] } ]
//!   } ],
//!   "warnings": [ "..." ],
//!   "stats": { "end_unix": 1795000001, "elapsed_secs": 0.52, "hosts_up": 1, "hosts_down": 0,
//!              "hosts_total": 1, "completed": true, "outcome": { "status": "completed" } }
//! }
//! ```
//! A service's `product`, `version`, `extrainfo`, `hostname`, `ostype`, `devicetype`, `tunnel`
//! (`"ssl"`) and `cpe` are present only when service detection (`-sV`) found them; without `-sV`
//! the name comes from the port table (`"method": "table"`).
//!
//! A port where `-sV` found TLS also has a `tls` object (absent elsewhere):
//! ```json
//! "tls": { "version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "alpn": "http/1.1",
//!          "ja3s": "15af977ce25de452b96affa2addb1036", "ja3s_string": "771,4866,43-51",
//!          "ja4s": "t130200_1302_a56c5b993250", "session": true,
//!          "certs": [ { "subject": [["commonName", "h10.lab.test"], ["organizationName", "RustMap Lab"]],
//!                       "issuer": [["commonName", "RustMap Lab CA"]],
//!                       "sans": ["DNS:h10.lab.test", "IP Address:198.18.0.10"],
//!                       "not_before": "2026-11-21T22:00:00", "not_after": "2026-12-21T22:00:00",
//!                       "key_type": "rsa", "key_bits": 2048, "signature_algorithm": "sha256WithRSAEncryption",
//!                       "self_signed": false, "sha256": "3f0a...", "serial": "4e1c..." } ] }
//! ```
//! `version` and `cipher` are what a modern (TLS 1.2/1.3) session negotiated when one could be
//! opened (`session: true`), else what the server answered RustMap's own ClientHello, which also
//! offers TLS 1.0/1.1 and legacy suites (`session: false`: a TLS 1.0-only server, say); both are
//! empty when the server answered with a TLS alert only. `alpn`
//! is present when the server chose a protocol; `ja4s` only with `--ja4s`; `certs` is the chain
//! as sent, leaf first (`key_curve` is added for EC keys). Subject and issuer are lists of
//! `[attribute, value]` pairs in certificate order, attributes by OpenSSL's long names or as
//! dotted OIDs. Dates are UTC, ISO 8601.
//! Only hosts that are up are listed; `stats` counts the others. States and reasons use nmap's
//! spellings (`open|filtered`, `conn-refused`, ...). Strings are sanitized: no control characters.

use crate::common::ScanScripts;
use crate::common::{cleaned_host, host_listed, Options};
use crate::{format_ranges, Control, Sink, SinkError};
use rustmap_model::{neutralize, ScanEvent, EVENT_SCHEMA_VERSION};
use serde_json::json;
use std::io::Write;

/// Writer of the JSON format.
pub struct JsonWriter<W: Write + Send> {
    out: W,
    opts: Options,
    hosts_written: u64,
    warnings: Vec<String>,
    /// Pre- and postrule script results, written after the hosts.
    scripts: ScanScripts,
}

impl<W: Write + Send> JsonWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, opts: Options) -> Self {
        JsonWriter { out, opts, hosts_written: 0, warnings: Vec::new(), scripts: ScanScripts::default() }
    }
}

/// The scan's header fields, shared by JSON and YAML: scanner, schema version, scan id, version,
/// the command line (sanitized), start time and the scan types with their ports.
pub(crate) fn scan_head(info: &rustmap_model::ScanInfo) -> serde_json::Value {
    let scans: Vec<_> = info
        .scans
        .iter()
        .map(|s| {
            json!({
                "scan_type": s.scan_type.xml_name(),
                "protocol": s.scan_type.protocol(),
                "count": s.ports.len(),
                "ports": format_ranges(&s.ports),
            })
        })
        .collect();
    json!({
        "scanner": "rustmap",
        "schema_version": EVENT_SCHEMA_VERSION,
        "scan_id": info.scan_id,
        "version": info.version,
        "args": neutralize(&info.args),
        "start": info.start_unix,
        "scans": scans,
    })
}

impl<W: Write + Send> Sink for JsonWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                let head = scan_head(info);
                let head = serde_json::to_string(&head).map_err(std::io::Error::from)?;
                // Re-open the object to stream the hosts array into it.
                write!(self.out, "{},\"hosts\":[", head.trim_end_matches('}'))?;
            }
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => {
                let h = cleaned_host(h, &self.opts);
                if self.hosts_written > 0 {
                    write!(self.out, ",")?;
                }
                self.hosts_written += 1;
                serde_json::to_writer(&mut self.out, &h).map_err(std::io::Error::from)?;
            }
            ScanEvent::Warning { message } => self.warnings.push(neutralize(message).into_owned()),
            ScanEvent::ScriptOutput { scope, result } => self.scripts.add(scope, result),
            ScanEvent::ScanFinished(stats) => {
                write!(self.out, "]")?;
                for (key, list) in self.scripts.lists() {
                    write!(self.out, ",\"{key}\":")?;
                    serde_json::to_writer(&mut self.out, list).map_err(std::io::Error::from)?;
                }
                write!(self.out, ",\"warnings\":")?;
                serde_json::to_writer(&mut self.out, &self.warnings).map_err(std::io::Error::from)?;
                write!(self.out, ",\"stats\":")?;
                serde_json::to_writer(&mut self.out, stats).map_err(std::io::Error::from)?;
                writeln!(self.out, "}}")?;
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
