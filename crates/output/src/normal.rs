//! nmap's "normal" human-readable layout, for the terminal and `-oN`.
//!
//! ```text
//! Starting RustMap 0.1.0 at 2026-11-21 14:23 UTC
//! RustMap scan report for h10.lab.test (198.18.0.10)
//! Host is up (0.00012s latency).
//! Not shown: 985 closed tcp ports (conn-refused)
//! PORT     STATE SERVICE
//! 22/tcp   open  ssh
//!
//! RustMap done: 1 IP address (1 host up) scanned in 0.52 seconds
//! ```
//!
//! With `--traceroute` a TRACEROUTE table follows each host (`HOP RTT ADDRESS`, as nmap's), with
//! `--mtu-discovery` a `Path MTU: N` line.
//!
//! Script results follow nmap's layout: `| id: first line` ... `|_last line` under their port,
//! a "Host script results:" block after the ports, and "Pre-scan" / "Post-scan script results:"
//! as those scripts finish.
//!
//! With `--reason` a REASON column and "received REASON" are added; with `-v`, open ports are
//! announced as they are found and down hosts are listed. Hosts are written as they finish.

use crate::common::{
    done_summary, host_listed, is_openish, local_time, script_lines, ssl_cert_lines, tls_info_lines, Options,
};
use crate::{Control, Sink, SinkError};
use rustmap_model::{
    neutralize, HostResult, HostStatus, HostnameKind, PortResult, PortState, ScanEvent, ScriptScope, ServiceMethod,
};
use std::io::{self, Write};

/// Writer of the normal format.
pub struct NormalWriter<W: Write + Send> {
    out: W,
    opts: Options,
    hosts_shown: u64,
    /// The scan has a port phase (not `-sn` / `-sL`).
    port_scan: bool,
    /// -sV ran: VERSION column and "?" on guessed names.
    service_scan: bool,
    /// The pre- or post-scan heading last written, so it is written once per run of results.
    script_heading: Option<ScriptScope>,
}

impl<W: Write + Send> NormalWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, opts: Options) -> Self {
        NormalWriter { out, opts, hosts_shown: 0, port_scan: true, service_scan: false, script_heading: None }
    }

    fn write_host(&mut self, h: &HostResult) -> io::Result<()> {
        let o = &mut self.out;
        let addr = h.addr.to_string();
        match h.display_name() {
            Some(name) => writeln!(o, "RustMap scan report for {} ({addr})", neutralize(name))?,
            None => writeln!(o, "RustMap scan report for {addr}")?,
        }
        if h.status == HostStatus::Unknown {
            // -sL: the address and its name are all there is, and the cloud instance it
            // belongs to (`--cloud ... -sL`, a dry run: what would be scanned).
            if let Some(c) = &h.cloud {
                writeln!(o, "Cloud instance: {}", neutralize(&c.summary()))?;
            }
            return Ok(());
        }
        if h.status == HostStatus::Down {
            writeln!(o, "Host is down, received {}.", h.reason)?;
            return writeln!(o);
        }
        let mut up = String::from("Host is up");
        if self.opts.reason {
            up.push_str(&format!(", received {}", h.reason));
        }
        if let Some(us) = h.srtt_us {
            up.push_str(&format!(" ({}s latency)", sig2(us as f64 / 1e6)));
        }
        writeln!(o, "{up}.")?;
        let user = h.hostnames.iter().find(|n| n.kind == HostnameKind::User);
        let ptr = h.hostnames.iter().find(|n| n.kind == HostnameKind::Ptr);
        if let (Some(u), Some(p)) = (user, ptr) {
            if !u.name.eq_ignore_ascii_case(&p.name) {
                writeln!(o, "rDNS record for {addr}: {}", neutralize(&p.name))?;
            }
        }
        if h.timed_out {
            writeln!(o, "Host timed out (--host-timeout): the results below are partial.")?;
        }
        if !self.port_scan {
            if let Some(mac) = &h.mac {
                writeln!(o, "MAC Address: {} (Unknown)", neutralize(mac))?;
            }
            return write_path(o, h);
        }
        let shown: Vec<&PortResult> = h.ports.iter().filter(|p| !self.opts.open_only || is_openish(p.state)).collect();
        // Everything not in the table, by state, for the "Not shown" line.
        // nmap's wording splits each folded state by protocol: "Not shown: 997 closed tcp ports
        // (reset), 996 closed udp ports (port-unreach)".
        let mut hidden: Vec<(String, u64, String)> = Vec::new();
        for e in &h.extraports {
            let mut protos: Vec<rustmap_model::Protocol> = Vec::new();
            for r in &e.reasons {
                if !protos.contains(&r.protocol) {
                    protos.push(r.protocol);
                }
            }
            if protos.is_empty() {
                hidden.push((format!("{} tcp", e.state), u64::from(e.count), String::new()));
            }
            for proto in protos {
                let of: Vec<_> = e.reasons.iter().filter(|r| r.protocol == proto).collect();
                let reasons: Vec<String> = of
                    .iter()
                    .map(|r| if of.len() == 1 { r.reason.to_string() } else { format!("{} {}", r.count, r.reason) })
                    .collect();
                let count: u64 = of.iter().map(|r| u64::from(r.count)).sum();
                hidden.push((format!("{} {proto}", e.state), count, reasons.join(", ")));
            }
        }
        if self.opts.open_only {
            let mut by_state: Vec<(String, u64)> = Vec::new();
            for p in h.ports.iter().filter(|p| !is_openish(p.state)) {
                let key = format!("{} {}", p.state, p.protocol);
                match by_state.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += 1,
                    None => by_state.push((key, 1)),
                }
            }
            hidden.extend(by_state.into_iter().map(|(k, n)| (k, n, String::new())));
        }
        let total = h.ports_scanned();
        if shown.is_empty() {
            writeln!(
                o,
                "All {total} scanned ports on {} are in ignored states.",
                h.display_name().map_or(addr.clone(), |n| format!("{} ({addr})", neutralize(n)))
            )?;
        }
        if !hidden.is_empty() {
            let parts: Vec<String> = hidden
                .iter()
                .map(|(state, n, reasons)| {
                    if reasons.is_empty() {
                        format!("{n} {state} port{}", if *n == 1 { "" } else { "s" })
                    } else {
                        format!("{n} {state} port{} ({reasons})", if *n == 1 { "" } else { "s" })
                    }
                })
                .collect();
            writeln!(o, "Not shown: {}", parts.join(", "))?;
        }
        if !shown.is_empty() {
            // nmap's layout: a VERSION column whenever service detection ran (or found something).
            let versions = self.service_scan
                || shown.iter().any(|p| p.service.as_ref().is_some_and(|s| s.method == ServiceMethod::Probed));
            let cells: Vec<[String; 5]> = shown
                .iter()
                .map(|p| {
                    let mut service = p
                        .service
                        .as_ref()
                        .map_or("unknown".to_string(), |s| neutralize(&s.display_name()).into_owned());
                    // nmap's "?": detection ran on this open port but the name is only the port
                    // table's guess.
                    if self.service_scan
                        && p.state == PortState::Open
                        && p.service.as_ref().is_some_and(|s| s.method == ServiceMethod::Table)
                    {
                        service.push('?');
                    }
                    let reason = if p.reason_ttl > 0 {
                        format!("{} ttl {}", p.reason, p.reason_ttl)
                    } else {
                        p.reason.to_string()
                    };
                    let version =
                        p.service.as_ref().map(|s| neutralize(&s.version_line()).into_owned()).unwrap_or_default();
                    [format!("{}/{}", p.port, p.protocol), p.state.to_string(), service, reason, version]
                })
                .collect();
            // Columns: PORT STATE SERVICE [REASON] [VERSION]; every column but the last padded to
            // its widest cell plus one space.
            let mut cols: Vec<(&str, usize)> = vec![("PORT", 0), ("STATE", 1), ("SERVICE", 2)];
            if self.opts.reason {
                cols.push(("REASON", 3));
            }
            if versions {
                cols.push(("VERSION", 4));
            }
            // Column widths once: measured per line, a table of 65535 ports took hours.
            let widths: Vec<usize> = cols
                .iter()
                .map(|(title, i)| cells.iter().map(|c| c[*i].chars().count()).max().unwrap_or(0).max(title.len()) + 1)
                .collect();
            let render = |cell: &dyn Fn(usize) -> String| {
                let mut line = String::new();
                for (k, (_, i)) in cols.iter().enumerate() {
                    let text = cell(*i);
                    if k + 1 == cols.len() {
                        line.push_str(&text);
                    } else {
                        let width = widths[k];
                        line.push_str(&format!("{text:width$}"));
                    }
                }
                line.trim_end().to_string()
            };
            writeln!(o, "{}", render(&|i| cols.iter().find(|c| c.1 == i).map_or("", |c| c.0).to_string()))?;
            for (c, p) in cells.iter().zip(&shown) {
                writeln!(o, "{}", render(&|i| c[i].clone()))?;
                // TLS facts as nmap's script output under the port: `| id: first`, `| more`,
                // `|_last`.
                if let Some(tls) = &p.tls {
                    for (id, lines) in [("ssl-cert", ssl_cert_lines(tls)), ("tls-info", tls_info_lines(tls))] {
                        // The ssl-cert script ran here: its output, not the same facts twice.
                        if p.scripts.iter().any(|sc| sc.id == id) {
                            continue;
                        }
                        let n = lines.len();
                        for (k, line) in lines.iter().enumerate() {
                            let bar = if k + 1 == n { "|_" } else { "| " };
                            if k == 0 {
                                writeln!(o, "{bar}{id}: {line}")?;
                            } else {
                                writeln!(o, "{bar}{line}")?;
                            }
                        }
                    }
                }
                for sc in &p.scripts {
                    for line in script_lines(sc) {
                        writeln!(o, "{line}")?;
                    }
                }
            }
            if let Some(info) = service_info(&shown) {
                writeln!(o, "{info}")?;
            }
            // nmap's appeal for unknown services, with RustMap's own fingerprint format.
            let fps: Vec<&str> = shown.iter().filter_map(|p| p.service.as_ref()?.fingerprint.as_deref()).collect();
            if !fps.is_empty() {
                let n = fps.len();
                writeln!(
                    o,
                    "{n} service{} unrecognized despite returning data. If you know the service/version, please \
                     report the following fingerprint{} with it (RustMap's format: docs/service-probes.md):",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "" } else { "s" }
                )?;
                for fp in fps {
                    writeln!(o, "==============NEXT SERVICE FINGERPRINT (SUBMIT INDIVIDUALLY)==============")?;
                    // Wrapped at 80 columns as nmap does; the text is printable ASCII already,
                    // sanitized again because a user's probe file could say anything.
                    let clean = neutralize(fp);
                    let chars: Vec<char> = clean.chars().collect();
                    for line in chars.chunks(80) {
                        writeln!(o, "{}", line.iter().collect::<String>())?;
                    }
                }
            }
        }
        if let Some(mac) = &h.mac {
            writeln!(o, "MAC Address: {} (Unknown)", neutralize(mac))?;
        }
        for line in crate::os::normal_lines(h, self.opts.verbosity) {
            writeln!(o, "{line}")?;
        }
        if !h.scripts.is_empty() {
            writeln!(o, "\nHost script results:")?;
            for sc in &h.scripts {
                for line in script_lines(sc) {
                    writeln!(o, "{line}")?;
                }
            }
        }
        write_path(o, h)?;
        writeln!(o)
    }
}

/// The way to the host: its distance, path MTU (`--mtu-discovery`) and nmap's TRACEROUTE table
/// (`--traceroute`), a run of silent hops on one line (`3   ... 5`).
fn write_path(o: &mut impl Write, h: &HostResult) -> io::Result<()> {
    // With -O the distance is among the OS lines (os.rs), as nmap places it.
    if let (Some(d), None) = (crate::common::distance(h), &h.os_info) {
        writeln!(o, "Network Distance: {d} hop{}", if d == 1 { "" } else { "s" })?;
    }
    if let Some(mtu) = h.path_mtu {
        writeln!(o, "Path MTU: {mtu}")?;
    }
    let lines = crate::common::traceroute_lines(h);
    if !lines.is_empty() {
        writeln!(o)?;
        for l in lines {
            writeln!(o, "{l}")?;
        }
    }
    Ok(())
}

/// nmap's "Service Info: Host: x; OS: Linux; CPE: cpe:/o:linux:linux_kernel" line, from what
/// detection found on the host's ports (distinct values, in port order).
fn service_info(ports: &[&PortResult]) -> Option<String> {
    fn push(v: &mut Vec<String>, s: &str) {
        if !v.iter().any(|x| x == s) {
            v.push(s.to_string());
        }
    }
    let (mut hosts, mut oss, mut devices, mut cpes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in ports.iter().filter_map(|p| p.service.as_ref()) {
        if let Some(h) = &s.hostname {
            push(&mut hosts, &neutralize(h));
        }
        if let Some(os) = &s.ostype {
            push(&mut oss, &neutralize(os));
        }
        if let Some(d) = &s.devicetype {
            push(&mut devices, &neutralize(d));
        }
        for c in s.cpe.iter().filter(|c| c.starts_with("cpe:/o:")) {
            push(&mut cpes, &neutralize(c));
        }
    }
    let mut parts = Vec::new();
    for (one, many, v) in [("Host", "Hosts", &hosts), ("OS", "OSs", &oss), ("Device", "Devices", &devices)] {
        if !v.is_empty() {
            parts.push(format!("{}: {}", if v.len() == 1 { one } else { many }, v.join(", ")));
        }
    }
    if !cpes.is_empty() {
        parts.push(format!("CPE: {}", cpes.join(", ")));
    }
    (!parts.is_empty()).then(|| format!("Service Info: {}", parts.join("; ")))
}

/// A number with two significant digits, as nmap prints latencies (`0.00012`, `0.021`, `1.2`).
fn sig2(x: f64) -> String {
    if x <= 0.0 || !x.is_finite() {
        return "0.0".to_string();
    }
    let decimals = (1 - x.log10().floor() as i32).max(1) as usize;
    format!("{x:.decimals$}")
}

impl<W: Write + Send> Sink for NormalWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.port_scan = !info.scans.is_empty();
                self.service_scan = info.service_scan;
                let t = local_time(info.start_unix);
                writeln!(self.out, "Starting RustMap {} at {}", info.version, t.format("%Y-%m-%d %H:%M %z"))?;
            }
            ScanEvent::PortFound { addr, port } if self.opts.verbosity > 0 && is_openish(port.state) => {
                writeln!(self.out, "Discovered {} port {}/{} on {addr}", port.state, port.port, port.protocol)?;
            }
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => {
                self.hosts_shown += 1;
                self.write_host(h)?;
            }
            ScanEvent::Warning { message } => writeln!(self.out, "Warning: {}", neutralize(message))?,
            // Pre- and postrule scripts, as they finish, under nmap's headings.
            ScanEvent::ScriptOutput { scope: scope @ (ScriptScope::Pre | ScriptScope::Post), result } => {
                let heading = if *scope == ScriptScope::Pre { "Pre-scan" } else { "Post-scan" };
                if self.script_heading != Some(*scope) {
                    writeln!(self.out, "{heading} script results:")?;
                    self.script_heading = Some(*scope);
                }
                for line in script_lines(result) {
                    writeln!(self.out, "{line}")?;
                }
            }
            ScanEvent::ScanFinished(stats) => {
                if stats.hosts_up == 0 && stats.hosts_total == 1 && stats.completed {
                    writeln!(
                        self.out,
                        "Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn"
                    )?;
                }
                if !stats.completed {
                    writeln!(self.out, "Scan interrupted: results above are partial.")?;
                }
                writeln!(self.out, "RustMap done: {}", done_summary(stats))?;
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

    /// A host open on every port (a portspoof-like responder): the port table is laid out in
    /// linear time (its column widths were measured again for every line: hours for 65535 ports).
    #[test]
    fn a_table_of_every_port_is_written_quickly() {
        use rustmap_model::{HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
        let mut h = HostResult::new("198.18.0.16".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        for port in 1..=u16::MAX {
            let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 64);
            p.service = Some(ServiceInfo { name: "unknown".into(), ..Default::default() });
            h.ports.push(p);
        }
        let start = std::time::Instant::now();
        let mut w = NormalWriter::new(Vec::new(), Options::default());
        w.write_host(&h).unwrap();
        let text = String::from_utf8(w.out).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
        assert_eq!(text.lines().filter(|l| l.contains("/tcp ")).count(), 65535);
        assert!(text.contains("\n65535/tcp open  unknown\n"), "{}", &text[text.len() - 200..]);
    }

    #[test]
    fn latency_has_two_significant_digits() {
        assert_eq!(sig2(0.000123), "0.00012");
        assert_eq!(sig2(0.0213), "0.021");
        assert_eq!(sig2(1.234), "1.2");
        assert_eq!(sig2(0.0), "0.0");
    }
}
