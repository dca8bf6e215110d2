//! CSV output (`-oC`): one row per port of every listed host, and one row with empty port columns
//! for a listed host without any shown port, after a header row:
//!
//! ```text
//! host,hostname,status,protocol,port,state,reason,service,product,version,extrainfo,tunnel,cpe,tls_version,cert_subject,vulnerabilities,geoip,cloud,os,os_cpe
//! 198.18.0.10,h10.lab.test,up,tcp,22,open,syn-ack,ssh,OpenSSH,9.2p1 Debian 2+deb12u3,protocol 2.0,,cpe:/a:openbsd:openssh:9.2p1,,,CVE-2023-38408 9.8 CVE-2024-6387 8.1,,,Linux 4.10 - 6.x (100%),cpe:/o:linux:linux_kernel:4 cpe:/o:linux:linux_kernel:5 cpe:/o:linux:linux_kernel:6
//! ```
//!
//! `vulnerabilities` (`--vuln-check`) lists the port's CVEs as `ID SCORE` pairs, highest first,
//! space-separated; `geoip` (`--geoip`) is the host's place on one line
//! (`FR, France; Paris (48.8566, 2.3522); Europe/Paris; AS64500 Lab Net`); `cloud` (`--cloud`) the
//! instance's one-line summary; `os` (`-O`) the host's best OS guess with its accuracy, and
//! `os_cpe` that guess's CPE names, space-separated.
//!
//! Quoting follows RFC 4180 (the `csv` crate). Ports folded into nmap's "Not shown" counts are
//! not rows (as in every other format; `--open` shows only open ports). `cpe` joins several CPEs
//! with a space.
//!
//! **Spreadsheet formula injection**: a cell that starts with `=`, `+`, `-`, `@`, a tab or a
//! carriage return would be run as a formula by Excel or LibreOffice when the file is opened
//! (`=cmd|' /C calc'!A0` in a banner). Such cells get a leading `'`, as OWASP's CSV injection
//! advice says; no other change is made to the text (after the sanitizing every format does).

use crate::common::{cleaned_host, host_listed, Options};
use crate::{Control, Sink, SinkError};
use rustmap_model::{CertInfo, HostResult, ScanEvent};
use std::io::Write;

/// The header row.
pub const HEADER: [&str; COLUMNS] = [
    "host",
    "hostname",
    "status",
    "protocol",
    "port",
    "state",
    "reason",
    "service",
    "product",
    "version",
    "extrainfo",
    "tunnel",
    "cpe",
    "tls_version",
    "cert_subject",
    "vulnerabilities",
    "geoip",
    "cloud",
    "os",
    "os_cpe",
];

/// Columns per row.
const COLUMNS: usize = 20;

/// Writes CSV rows as hosts finish.
pub struct CsvWriter<W: Write + Send> {
    out: csv::Writer<W>,
    opts: Options,
}

impl<W: Write + Send> CsvWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W, opts: Options) -> CsvWriter<W> {
        CsvWriter { out: csv::Writer::from_writer(out), opts }
    }
}

/// A cell safe to open in a spreadsheet: formula characters at its start are neutralised.
pub fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

fn csv_err(e: csv::Error) -> SinkError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => SinkError::Io(e),
        other => SinkError::Other(format!("CSV: {other:?}")),
    }
}

fn rows(h: &HostResult) -> Vec<[String; COLUMNS]> {
    let name = h.display_name().unwrap_or_default().to_string();
    let geo = h.geoip.as_ref().map(crate::common::geo_line).unwrap_or_default();
    let cloud = h.cloud.as_ref().map(|c| c.summary()).unwrap_or_default();
    let (os, os_cpe) = (crate::common::os_line(h), crate::common::os_cpe(h));
    let base = |i: usize| -> String {
        match i {
            0 => h.addr.to_string(),
            1 => name.clone(),
            _ => h.status.as_str().to_string(),
        }
    };
    if h.ports.is_empty() {
        let mut r: [String; COLUMNS] = Default::default();
        for (i, c) in r.iter_mut().enumerate().take(3) {
            *c = base(i);
        }
        r[COLUMNS - 4] = geo;
        r[COLUMNS - 3] = cloud;
        r[COLUMNS - 2] = os;
        r[COLUMNS - 1] = os_cpe;
        return vec![r];
    }
    h.ports
        .iter()
        .map(|p| {
            let s = p.service.as_ref();
            let opt = |f: fn(&rustmap_model::ServiceInfo) -> Option<&String>| -> String {
                s.and_then(f).cloned().unwrap_or_default()
            };
            [
                base(0),
                base(1),
                base(2),
                p.protocol.as_str().to_string(),
                p.port.to_string(),
                p.state.as_str().to_string(),
                p.reason.as_str().to_string(),
                s.map(|s| s.name.clone()).unwrap_or_default(),
                opt(|s| s.product.as_ref()),
                opt(|s| s.version.as_ref()),
                opt(|s| s.extrainfo.as_ref()),
                opt(|s| s.tunnel.as_ref()),
                s.map(|s| s.cpe.join(" ")).unwrap_or_default(),
                p.tls.as_ref().map(|t| t.version.clone()).unwrap_or_default(),
                p.tls
                    .as_ref()
                    .and_then(|t| t.certs.first())
                    .map(|c| CertInfo::name_line(&c.subject))
                    .unwrap_or_default(),
                p.vulnerabilities.iter().map(|v| format!("{} {}", v.id, v.cvss)).collect::<Vec<_>>().join(" "),
                geo.clone(),
                cloud.clone(),
                os.clone(),
                os_cpe.clone(),
            ]
        })
        .collect()
}

impl<W: Write + Send> Sink for CsvWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(_) => self.out.write_record(HEADER).map_err(csv_err)?,
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => {
                for row in rows(&cleaned_host(h, &self.opts)) {
                    self.out.write_record(row.iter().map(|c| cell(c))).map_err(csv_err)?;
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
    use super::cell;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=cmd|' /C calc'!A0", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(bad).starts_with('\''), "{bad:?}");
        }
        for good in ["OpenSSH", "9.2p1", "", "a=b", "1-2"] {
            assert_eq!(cell(good), good);
        }
    }
}
