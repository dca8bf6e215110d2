//! SIEM formats: ArcSight's Common Event Format (`-oCEF`) and QRadar's Log Event Extended Format
//! 2.0 (`-oLEEF`), one line per event, written as hosts finish.
//!
//! Events (the same in both formats):
//!
//! | id | name | severity | when |
//! |---|---|---|---|
//! | `host-up` | Host up | 1 | a host is up (with its reason and number of open ports) |
//! | `host-down` | Host down | 1 | a down host, only with `-v` (as the other formats list them) |
//! | `port-open` | Open port | 3 | each open (or open\|filtered) port, with its service |
//! | `vulnerability` | Known vulnerability | the CVSS score, rounded (0–10) | each CVE `--vuln-check` found on a port |
//!
//! A vulnerability event carries the port's fields and `cs5Label=cve cs5=CVE-…`,
//! `cfp1Label=cvss cfp1=9.8`, `cs6Label=kev cs6=true|false`. With `--geoip`, `host-up` carries
//! `dlat`, `dlong` (CEF's destination latitude and longitude), `cs5Label=geo cs5=` the one-line
//! place (`FR, France; Paris …; AS64500 Lab Net`) and `cn2Label=asn cn2=` the AS number. With
//! `--cloud`, `host-up` carries `cs6Label=cloud cs6=` the instance's one-line summary
//! (`aws i-0abc (web-1) us-east-1a running t3.micro env=prod`). With `-O`, `host-up` carries
//! `cs2Label=os cs2=` the best OS guess with its accuracy (`Linux 4.10 - 6.x (100%)`) and
//! `cs3Label=osCpe cs3=` its CPE names, space-separated.
//!
//! CEF (`CEF:0|RustMap|RustMap|VERSION|ID|NAME|SEVERITY|EXTENSION`):
//!
//! ```text
//! CEF:0|RustMap|RustMap|0.1.0|port-open|Open port|3|rt=1795000001000 dst=198.18.0.10 dhost=h10.lab.test dpt=22 proto=TCP app=ssh cs1Label=product cs1=OpenSSH cs2Label=version cs2=9.2p1 cs3Label=reason cs3=syn-ack cs4Label=scanId cs4=01J...
//! ```
//!
//! Header fields escape `\` and `|` with a backslash; extension values escape `\` and `=`, and a
//! newline or carriage return would be written `\n` / `\r` (the CEF specification's rules).
//!
//! LEEF 2.0 (`LEEF:2.0|RustMap|RustMap|VERSION|ID|x09|ATTRIBUTES`), attributes separated by a
//! tab, declared in the header as `x09`:
//!
//! ```text
//! LEEF:2.0|RustMap|RustMap|0.1.0|port-open|x09|devTime=Nov 21 2026 14:23:00<TAB>devTimeFormat=MMM dd yyyy HH:mm:ss<TAB>dst=198.18.0.10<TAB>dstPort=22<TAB>proto=TCP<TAB>sev=3<TAB>cat=port-open<TAB>app=ssh<TAB>...
//! ```
//!
//! LEEF has no escape for its delimiter: every value is sanitized first (a tab from the network
//! becomes the text `\x09`, as in every format), so a value can never contain one; `|` in the
//! header is escaped with a backslash. In both formats no value carries a raw control character.

use crate::common::{cleaned_host, host_listed, is_openish, Options};
use crate::{Control, Sink, SinkError};
use chrono::{TimeZone, Utc};
use rustmap_model::{HostResult, HostStatus, ScanEvent};
use std::io::Write;

/// One SIEM event: id, name, severity, when (the host's end, Unix seconds) and its fields (CEF
/// keys; LEEF renames a few).
struct Event {
    id: &'static str,
    name: &'static str,
    severity: u8,
    time: i64,
    fields: Vec<(&'static str, String)>,
}

fn events_of(h: &HostResult, scan_id: &str) -> Vec<Event> {
    let name = h.display_name().unwrap_or_default().to_string();
    let time = h.end_unix.max(0);
    let mut base = vec![("dst", h.addr.to_string())];
    if !name.is_empty() {
        base.push(("dhost", name));
    }
    let mut out = Vec::new();
    let open: Vec<_> = h.ports.iter().filter(|p| is_openish(p.state)).collect();
    let (id, title) = match h.status {
        HostStatus::Down => ("host-down", "Host down"),
        _ => ("host-up", "Host up"),
    };
    let mut fields = base.clone();
    fields.extend([
        ("cs1Label", "reason".to_string()),
        ("cs1", h.reason.as_str().to_string()),
        ("cn1Label", "openPorts".to_string()),
        ("cn1", open.len().to_string()),
        ("cs4Label", "scanId".to_string()),
        ("cs4", scan_id.to_string()),
    ]);
    if let Some(mac) = &h.mac {
        fields.push(("dmac", mac.clone()));
    }
    if let Some(g) = &h.geoip {
        fields.extend(g.latitude.map(|v| ("dlat", format!("{v:.4}"))));
        fields.extend(g.longitude.map(|v| ("dlong", format!("{v:.4}"))));
        fields.extend([("cs5Label", "geo".to_string()), ("cs5", crate::common::geo_line(g))]);
        if let Some(n) = g.asn {
            fields.extend([("cn2Label", "asn".to_string()), ("cn2", n.to_string())]);
        }
    }
    if let Some(c) = &h.cloud {
        fields.extend([("cs6Label", "cloud".to_string()), ("cs6", c.summary())]);
    }
    if !h.os.is_empty() {
        fields.extend([("cs2Label", "os".to_string()), ("cs2", crate::common::os_line(h))]);
        let cpe = crate::common::os_cpe(h);
        if !cpe.is_empty() {
            fields.extend([("cs3Label", "osCpe".to_string()), ("cs3", cpe)]);
        }
    }
    out.push(Event { id, name: title, severity: 1, time, fields });
    for p in open {
        let mut fields = base.clone();
        fields.push(("dpt", p.port.to_string()));
        fields.push(("proto", p.protocol.as_str().to_uppercase()));
        if let Some(s) = &p.service {
            fields.push(("app", s.display_name()));
            if let Some(v) = &s.product {
                fields.extend([("cs1Label", "product".to_string()), ("cs1", v.clone())]);
            }
            if let Some(v) = &s.version {
                fields.extend([("cs2Label", "version".to_string()), ("cs2", v.clone())]);
            }
        }
        fields.extend([
            ("cs3Label", "reason".to_string()),
            ("cs3", p.reason.as_str().to_string()),
            ("cs4Label", "scanId".to_string()),
            ("cs4", scan_id.to_string()),
        ]);
        out.push(Event { id: "port-open", name: "Open port", severity: 3, time, fields: fields.clone() });
        for v in &p.vulnerabilities {
            let mut f = fields.clone();
            f.retain(|(k, _)| !k.starts_with("cs3"));
            f.extend([
                ("cs5Label", "cve".to_string()),
                ("cs5", v.id.clone()),
                ("cfp1Label", "cvss".to_string()),
                ("cfp1", v.cvss.to_string()),
                ("cs6Label", "kev".to_string()),
                ("cs6", v.kev.is_some().to_string()),
            ]);
            let severity = (v.cvss.tenths().saturating_add(5) / 10).min(10);
            out.push(Event { id: "vulnerability", name: "Known vulnerability", severity, time, fields: f });
        }
    }
    out
}

/// CEF header field: `\` and `|` escaped.
pub fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// CEF extension value: `\` and `=` escaped, line breaks written as `\n` and `\r`.
pub fn cef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_cef_value(&mut out, s);
    out
}

fn push_cef_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// LEEF value: nothing may break the tab-separated attribute list or the line.
pub fn leef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_leef_value(&mut out, s);
    out
}

fn push_leef_value(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// Which of the two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Cef,
    Leef,
}

/// Writes CEF or LEEF lines as hosts finish.
pub struct SiemWriter<W: Write + Send> {
    out: W,
    opts: Options,
    flavor: Flavor,
    version: String,
    scan_id: String,
    /// The line being written (reused).
    line: String,
    /// The last `devTime` written, by its second: a sweep's hosts share few seconds.
    dev_time: (i64, String),
}

impl<W: Write + Send> SiemWriter<W> {
    fn with(out: W, opts: Options, flavor: Flavor) -> SiemWriter<W> {
        SiemWriter {
            out,
            opts,
            flavor,
            version: String::new(),
            scan_id: String::new(),
            line: String::new(),
            dev_time: (0, String::new()),
        }
    }

    /// A CEF writer to `out`.
    pub fn cef(out: W, opts: Options) -> SiemWriter<W> {
        SiemWriter::with(out, opts, Flavor::Cef)
    }

    /// A LEEF 2.0 writer to `out`.
    pub fn leef(out: W, opts: Options) -> SiemWriter<W> {
        SiemWriter::with(out, opts, Flavor::Leef)
    }

    fn write(&mut self, e: &Event) -> std::io::Result<()> {
        use std::fmt::Write as _;
        // One line buffer reused for every event: a sweep writes a line per host.
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.flavor {
            Flavor::Cef => {
                let _ = write!(
                    line,
                    "CEF:0|RustMap|RustMap|{}|{}|{}|{}|",
                    cef_header(&self.version),
                    cef_header(e.id),
                    cef_header(e.name),
                    e.severity
                );
                let _ = write!(line, "rt={}", e.time * 1000);
                for (k, v) in &e.fields {
                    line.push(' ');
                    line.push_str(k);
                    line.push('=');
                    push_cef_value(&mut line, v);
                }
            }
            Flavor::Leef => {
                let _ =
                    write!(line, "LEEF:2.0|RustMap|RustMap|{}|{}|x09|", cef_header(&self.version), cef_header(e.id));
                if self.dev_time.0 != e.time || self.dev_time.1.is_empty() {
                    let t = Utc.timestamp_opt(e.time, 0).single().unwrap_or_default();
                    self.dev_time = (e.time, t.format("%b %d %Y %H:%M:%S").to_string());
                }
                let _ = write!(line, "devTime={}\tdevTimeFormat=MMM dd yyyy HH:mm:ss\t", self.dev_time.1);
                for (k, v) in &e.fields {
                    let key = match *k {
                        "dpt" => "dstPort",
                        "dhost" => "dstHost",
                        "dmac" => "dstMAC",
                        k => k,
                    };
                    line.push_str(key);
                    line.push('=');
                    push_leef_value(&mut line, v);
                    line.push('\t');
                }
                let _ = write!(line, "sev={}\tcat={}", e.severity, e.id);
            }
        }
        line.push('\n');
        let r = self.out.write_all(line.as_bytes());
        self.line = line;
        r
    }
}

impl<W: Write + Send> Sink for SiemWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.version = rustmap_model::neutralize(&info.version).into_owned();
                self.scan_id = rustmap_model::neutralize(&info.scan_id).into_owned();
            }
            ScanEvent::HostDone(h) if h.status != HostStatus::Unknown && host_listed(h, &self.opts) => {
                let h = cleaned_host(h, &self.opts);
                for e in events_of(&h, &self.scan_id) {
                    self.write(&e)?;
                }
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escaping() {
        assert_eq!(cef_header("a|b\\c"), "a\\|b\\\\c");
        assert_eq!(cef_value("x=1\\y\nz\r"), "x\\=1\\\\y\\nz\\r");
        assert_eq!(leef_value("a\tb\nc"), "a b c");
    }
}
