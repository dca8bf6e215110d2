//! nmap's grepable format (`-oG`): one `Host:` line per host, tab-separated fields.
//!
//! ```text
//! # RustMap 0.1.0 scan initiated Sat Nov 21 14:23:00 2026 as: rustmap -oG - 198.18.0.10
//! Host: 198.18.0.10 ()<TAB>Status: Up
//! Host: 198.18.0.10 ()<TAB>Ports: 22/open/tcp//ssh///, 80/open/tcp//http///<TAB>Ignored State: closed (998)
//! Host: 198.18.0.10 ()<TAB>Ports: 22/open/tcp//ssh//OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0)/   (with -sV)
//! ...<TAB>Ignored State: closed (998)<TAB>OS: Linux 4.10 - 6.x<TAB>Seq Index: 259<TAB>IP ID Seq: All zeros   (with -O)
//! # RustMap done at Sat Nov 21 14:23:01 2026 -- 1 IP address (1 host up) scanned in 0.52 seconds
//! ```
//! (`<TAB>` stands for a tab character.) With `--cloud` the status line ends with
//! `<TAB>Cloud: aws i-0abc (web-1) us-east-1a running t3.micro env=prod`. A port entry is `port/state/protocol/owner/service/rpc-info/version/`. Field text is sanitized
//! and `/`, `,` and tabs are replaced so that the line stays splittable.

use crate::common::{ctime, done_summary, host_listed, is_openish, Options};
use crate::{Control, Sink, SinkError};
use rustmap_model::{neutralize, HostResult, HostStatus, ScanEvent};
use std::io::{self, Write};

fn field(s: &str) -> String {
    neutralize(s).replace('/', "|").replace(',', ";").replace('\t', " ")
}

/// Writer of the grepable format.
pub struct GrepableWriter<W: Write + Send> {
    out: W,
    opts: Options,
    /// The scan has a port phase (not `-sn` / `-sL`).
    port_scan: bool,
}

impl<W: Write + Send> GrepableWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, opts: Options) -> Self {
        GrepableWriter { out, opts, port_scan: true }
    }

    fn write_host(&mut self, h: &HostResult) -> io::Result<()> {
        let name = h.display_name().map(field).unwrap_or_default();
        let status = match h.status {
            HostStatus::Up => "Up",
            HostStatus::Down => "Down",
            HostStatus::Unknown => "Unknown",
        };
        // --cloud: the instance as one more field of the status line (field parsers skip keys
        // they do not know).
        let cloud = h.cloud.as_ref().map(|c| format!("\tCloud: {}", field(&c.summary()))).unwrap_or_default();
        writeln!(self.out, "Host: {} ({name})\tStatus: {status}{cloud}", h.addr)?;
        if h.status != HostStatus::Up || !self.port_scan {
            return Ok(());
        }
        let ports: Vec<String> = h
            .ports
            .iter()
            .filter(|p| !self.opts.open_only || is_openish(p.state))
            .map(|p| {
                let svc = p.service.as_ref().map(|s| field(&s.display_name())).unwrap_or_default();
                let version = p.service.as_ref().map(|s| field(&s.version_line())).unwrap_or_default();
                format!("{}/{}/{}//{svc}//{version}/", p.port, p.state, p.protocol)
            })
            .collect();
        let mut line = format!("Host: {} ({name})\tPorts: {}", h.addr, ports.join(", "));
        // nmap names only the largest folded state.
        if let Some(e) = h.extraports.iter().max_by_key(|e| e.count) {
            line.push_str(&format!("\tIgnored State: {} ({})", e.state, e.count));
        }
        // -O, as nmap: the names of an exact match (not guesses), the ISN difficulty and the IP
        // ID class.
        if h.os_info.as_ref().is_some_and(|i| i.exact) && !h.os.is_empty() {
            let names: Vec<String> = h.os.iter().map(|g| field(&g.name)).collect();
            line.push_str(&format!("\tOS: {}", names.join("|")));
        }
        if let Some(info) = &h.os_info {
            if let Some(i) = info.tcp_sequence.as_ref().and_then(|t| t.index) {
                line.push_str(&format!("\tSeq Index: {i}"));
            }
            if let Some(c) = &info.ipid_sequence {
                line.push_str(&format!("\tIP ID Seq: {}", field(&c.class)));
            }
        }
        writeln!(self.out, "{line}")
    }
}

impl<W: Write + Send> Sink for GrepableWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.port_scan = !info.scans.is_empty();
                writeln!(
                    self.out,
                    "# RustMap {} scan initiated {} as: {}",
                    info.version,
                    ctime(info.start_unix),
                    neutralize(&info.args)
                )?;
                for s in &info.scans {
                    writeln!(
                        self.out,
                        "# Ports scanned: {}({};{})",
                        s.scan_type.xml_name().to_uppercase(),
                        s.ports.len(),
                        crate::format_ranges(&s.ports)
                    )?;
                }
            }
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => self.write_host(h)?,
            ScanEvent::ScanFinished(stats) => {
                writeln!(self.out, "# RustMap done at {} -- {}", ctime(stats.end_unix), done_summary(stats))?;
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
