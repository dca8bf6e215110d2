//! nmap's XML format (`-oX`), so that ndiff, Metasploit's importer, xsltproc with nmap.xsl and every
//! other nmap XML consumer can read RustMap's results.
//!
//! The document follows nmap's DTD (`xmloutputversion` 1.05). The DTD only allows
//! `scanner="nmap"`, so that is what the root element says; RustMap identifies itself in the
//! leading comment and in `args`. Hosts are written as they finish; only hosts that are up are
//! written (down hosts are counted in `<runstats>`), as nmap does without `-v`.
//! Text from the network is sanitized (control characters become `\xNN`) and then entity-escaped.
//! Script results are `<script id output>` with `<elem key>` children: under `<port>`, in
//! `<hostscript>`, and in `<prescript>` / `<postscript>` as those scripts finish.

use crate::common::{ctime, done_summary, host_listed, is_openish, ssl_cert_lines, tls_info_lines, Options};
use crate::{format_ranges, Control, Sink, SinkError};
use quick_xml::escape::escape;
use rustmap_model::{
    neutralize, CertInfo, HostResult, HostStatus, HostnameKind, ScanEvent, ScriptScope, ServiceInfo, TlsInfo,
};
use std::io::{self, Write};
use std::net::IpAddr;

/// Sanitize then entity-escape a value for an attribute.
fn attr(s: &str) -> String {
    escape(neutralize(s).as_ref()).into_owned()
}

/// `<service>` with the version fields that are known and its `<cpe>` children. The DTD allows
/// only `ssl` as a tunnel, so nothing else is written there.
fn write_service(o: &mut impl Write, s: &ServiceInfo) -> io::Result<()> {
    write!(o, "<service name=\"{}\"", attr(&s.name))?;
    for (key, value) in [
        ("product", &s.product),
        ("version", &s.version),
        ("extrainfo", &s.extrainfo),
        ("hostname", &s.hostname),
        ("ostype", &s.ostype),
        ("devicetype", &s.devicetype),
    ] {
        if let Some(v) = value {
            write!(o, " {key}=\"{}\"", attr(v))?;
        }
    }
    if s.tunnel.as_deref() == Some("ssl") {
        write!(o, " tunnel=\"ssl\"")?;
    }
    write!(o, " method=\"{}\" conf=\"{}\"", s.method.as_str(), s.conf.min(10))?;
    if let Some(fp) = &s.fingerprint {
        write!(o, " servicefp=\"{}\"", attr(fp))?;
    }
    if s.cpe.is_empty() {
        return write!(o, "/>");
    }
    write!(o, ">")?;
    for c in &s.cpe {
        write!(o, "<cpe>{}</cpe>", attr(c))?;
    }
    write!(o, "</service>")
}

/// Script output lines (already sanitized) as one attribute value: each line escaped, joined by a
/// character reference for the newline (a raw newline in an attribute is read back as a blank).
fn output_attr(lines: &[String]) -> String {
    lines.iter().map(|l| escape(l.as_str()).into_owned()).collect::<Vec<_>>().join("&#xa;")
}

fn elem(o: &mut impl Write, key: &str, value: &str) -> io::Result<()> {
    write!(o, "<elem key=\"{}\">{}</elem>", attr(key), attr(value))
}

fn name_table(o: &mut impl Write, key: &str, name: &[(String, String)]) -> io::Result<()> {
    write!(o, "<table key=\"{key}\">")?;
    for (k, v) in name {
        elem(o, k, v)?;
    }
    write!(o, "</table>")
}

/// One certificate's structured data, in the shape of nmap's ssl-cert script.
fn cert_body(o: &mut impl Write, c: &CertInfo) -> io::Result<()> {
    name_table(o, "subject", &c.subject)?;
    name_table(o, "issuer", &c.issuer)?;
    write!(o, "<table key=\"pubkey\">")?;
    elem(o, "type", &c.key_type)?;
    elem(o, "bits", &c.key_bits.to_string())?;
    if let Some(curve) = &c.key_curve {
        elem(o, "ecdhparams.curve_params.ec_curve_type", curve)?;
    }
    write!(o, "</table>")?;
    if !c.sans.is_empty() {
        write!(o, "<table key=\"extensions\"><table>")?;
        elem(o, "name", "X509v3 Subject Alternative Name")?;
        elem(o, "value", &c.sans.join(", "))?;
        write!(o, "</table></table>")?;
    }
    elem(o, "sig_algo", &c.signature_algorithm)?;
    write!(o, "<table key=\"validity\">")?;
    elem(o, "notBefore", &c.not_before)?;
    elem(o, "notAfter", &c.not_after)?;
    write!(o, "</table>")?;
    elem(o, "self_signed", if c.self_signed { "true" } else { "false" })?;
    elem(o, "sha256", &c.sha256)?;
    elem(o, "serial", &c.serial)
}

/// One script's `<script id output>` with its structured output nested as nmap does
/// (`<table key>` around `<elem key>`; items of a list have no key), or as flat `<elem key>`
/// for a result that carries no tree.
fn write_script(o: &mut impl Write, sc: &rustmap_model::ScriptResult) -> io::Result<()> {
    // Split first: neutralizing escapes newlines too.
    let lines: Vec<String> = sc.output.split('\n').map(|l| neutralize(l).into_owned()).collect();
    write!(o, "<script id=\"{}\" output=\"{}\">", attr(&sc.id), output_attr(&lines))?;
    if sc.table.is_empty() {
        for (k, v) in &sc.elements {
            elem(o, k, v)?;
        }
    } else {
        write_entries(o, &sc.table)?;
    }
    write!(o, "</script>")
}

fn write_entries(o: &mut impl Write, entries: &[rustmap_model::ScriptEntry]) -> io::Result<()> {
    use rustmap_model::ScriptValue;
    for e in entries {
        let key = e.key.as_deref().map(|k| format!(" key=\"{}\"", attr(k))).unwrap_or_default();
        match &e.value {
            ScriptValue::Text(v) => {
                let lines: Vec<String> = v.split('\n').map(|l| neutralize(l).into_owned()).collect();
                write!(o, "<elem{key}>{}</elem>", output_attr(&lines))?;
            }
            ScriptValue::Table(inner) => {
                write!(o, "<table{key}>")?;
                write_entries(o, inner)?;
                write!(o, "</table>")?;
            }
        }
    }
    Ok(())
}

/// `<script id="ssl-cert">` (the leaf, as nmap's script) and `<script id="tls-info">` (the
/// handshake, fingerprints and whole chain). Both fit the DTD's `script (#PCDATA|table|elem)*`.
fn write_tls(o: &mut impl Write, tls: &TlsInfo, script_ran: bool) -> io::Result<()> {
    if let Some(leaf) = tls.certs.first().filter(|_| !script_ran) {
        write!(o, "<script id=\"ssl-cert\" output=\"{}\">", output_attr(&ssl_cert_lines(tls)))?;
        cert_body(o, leaf)?;
        write!(o, "</script>")?;
    }
    write!(o, "<script id=\"tls-info\" output=\"{}\">", output_attr(&tls_info_lines(tls)))?;
    elem(o, "version", &tls.version)?;
    elem(o, "cipher", &tls.cipher)?;
    if let Some(a) = &tls.alpn {
        elem(o, "alpn", a)?;
    }
    elem(o, "session", if tls.session { "true" } else { "false" })?;
    if !tls.ja3s.is_empty() {
        elem(o, "ja3s", &tls.ja3s)?;
        elem(o, "ja3s_string", &tls.ja3s_string)?;
    }
    if let Some(j) = &tls.ja4s {
        elem(o, "ja4s", j)?;
    }
    if !tls.certs.is_empty() {
        write!(o, "<table key=\"chain\">")?;
        for c in &tls.certs {
            write!(o, "<table>")?;
            cert_body(o, c)?;
            write!(o, "</table>")?;
        }
        write!(o, "</table>")?;
    }
    write!(o, "</script>")
}

/// The way to the host, as nmap writes it: `<distance>` when the trace reached the host, the
/// path MTU as the host script `path-mtu` (nmap's script of that name says `PMTU == 1400`), and
/// `<trace port= proto=>` with a `<hop>` per hop that answered (silent hops are left out, as
/// nmap does; their TTLs are missing from the sequence).
fn write_path(o: &mut impl Write, h: &HostResult) -> io::Result<()> {
    if let Some(d) = crate::common::distance(h) {
        writeln!(o, "<distance value=\"{d}\"/>")?;
    }
    if let Some(mtu) = h.path_mtu {
        writeln!(
            o,
            "<hostscript><script id=\"path-mtu\" output=\"PMTU == {mtu}\"><elem key=\"pmtu\">{mtu}</elem></script></hostscript>"
        )?;
    }
    if h.trace.is_empty() {
        return Ok(());
    }
    match &h.trace_probe {
        Some(p) => {
            write!(o, "<trace")?;
            if let Some(port) = p.port {
                write!(o, " port=\"{port}\"")?;
            }
            writeln!(o, " proto=\"{}\">", p.protocol.as_str())?;
        }
        None => writeln!(o, "<trace>")?,
    }
    for hop in &h.trace {
        let Some(addr) = hop.addr else { continue };
        write!(o, "<hop ttl=\"{}\" ipaddr=\"{addr}\"", hop.ttl)?;
        match hop.rtt_us {
            Some(us) => write!(o, " rtt=\"{:.2}\"", us as f64 / 1000.0)?,
            None => write!(o, " rtt=\"--\"")?,
        }
        if let Some(name) = &hop.hostname {
            write!(o, " host=\"{}\"", attr(name))?;
        }
        writeln!(o, "/>")?;
    }
    writeln!(o, "</trace>")
}

/// Writer of the XML format.
pub struct XmlWriter<W: Write + Send> {
    out: W,
    opts: Options,
    started: bool,
    /// The scan has a port phase (not `-sn` / `-sL`).
    port_scan: bool,
}

impl<W: Write + Send> XmlWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W, opts: Options) -> Self {
        XmlWriter { out, opts, started: false, port_scan: true }
    }

    fn write_host(&mut self, h: &HostResult) -> io::Result<()> {
        let o = &mut self.out;
        write!(o, "<host starttime=\"{}\" endtime=\"{}\"", h.start_unix, h.end_unix)?;
        if h.timed_out {
            write!(o, " timedout=\"true\"")?;
        }
        writeln!(o, ">")?;
        writeln!(
            o,
            "<status state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"/>",
            h.status.as_str(),
            h.reason,
            h.reason_ttl
        )?;
        let family = match h.addr {
            IpAddr::V4(_) => "ipv4",
            IpAddr::V6(_) => "ipv6",
        };
        writeln!(o, "<address addr=\"{}\" addrtype=\"{family}\"/>", h.addr)?;
        if let Some(mac) = &h.mac {
            writeln!(o, "<address addr=\"{}\" addrtype=\"mac\"/>", attr(mac))?;
        }
        if h.hostnames.is_empty() {
            writeln!(o, "<hostnames>\n</hostnames>")?;
        } else {
            writeln!(o, "<hostnames>")?;
            for n in &h.hostnames {
                let kind = match n.kind {
                    HostnameKind::User => "user",
                    HostnameKind::Ptr => "PTR",
                };
                writeln!(o, "<hostname name=\"{}\" type=\"{kind}\"/>", attr(&n.name))?;
            }
            writeln!(o, "</hostnames>")?;
        }
        if h.status == HostStatus::Up && self.port_scan {
            writeln!(o, "<ports>")?;
            for e in &h.extraports {
                writeln!(o, "<extraports state=\"{}\" count=\"{}\">", e.state, e.count)?;
                for r in &e.reasons {
                    writeln!(
                        o,
                        "<extrareasons reason=\"{}\" count=\"{}\" proto=\"{}\" ports=\"{}\"/>",
                        r.reason, r.count, r.protocol, r.ports
                    )?;
                }
                writeln!(o, "</extraports>")?;
            }
            // Under --open, non-open shown ports are folded into extraports-like counts.
            if self.opts.open_only {
                for state in rustmap_model::PortState::ALL {
                    let hidden: Vec<u16> =
                        h.ports.iter().filter(|p| p.state == state && !is_openish(p.state)).map(|p| p.port).collect();
                    if !hidden.is_empty() {
                        writeln!(o, "<extraports state=\"{state}\" count=\"{}\">", hidden.len())?;
                        writeln!(o, "</extraports>")?;
                    }
                }
            }
            for p in h.ports.iter().filter(|p| !self.opts.open_only || is_openish(p.state)) {
                write!(
                    o,
                    "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"/>",
                    p.protocol, p.port, p.state, p.reason, p.reason_ttl
                )?;
                if let Some(s) = &p.service {
                    write_service(o, s)?;
                }
                if let Some(t) = &p.tls {
                    // When the ssl-cert script ran, its element stands for the certificate.
                    write_tls(o, t, p.scripts.iter().any(|sc| sc.id == "ssl-cert"))?;
                }
                for sc in &p.scripts {
                    write_script(o, sc)?;
                }
                writeln!(o, "</port>")?;
            }
            writeln!(o, "</ports>")?;
        }
        crate::os::write_xml(o, h)?;
        if !h.scripts.is_empty() {
            write!(o, "<hostscript>")?;
            for sc in &h.scripts {
                write_script(o, sc)?;
            }
            writeln!(o, "</hostscript>")?;
        }
        write_path(o, h)?;
        if h.status == HostStatus::Up {
            let srtt = h.srtt_us.unwrap_or(0);
            writeln!(o, "<times srtt=\"{srtt}\" rttvar=\"{}\" to=\"{}\"/>", srtt / 2, (srtt * 3).max(100_000))?;
        }
        writeln!(o, "</host>")
    }
}

impl<W: Write + Send> Sink for XmlWriter<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.started = true;
                self.port_scan = !info.scans.is_empty();
                let o = &mut self.out;
                let when = ctime(info.start_unix);
                writeln!(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
                writeln!(o, "<!DOCTYPE nmaprun>")?;
                writeln!(o, "<?xml-stylesheet href=\"file:///usr/share/nmap/nmap.xsl\" type=\"text/xsl\"?>")?;
                // A comment must not contain "--": the command line is written with those doubled dashes broken up.
                writeln!(
                    o,
                    "<!-- RustMap {} scan initiated {when} as: {} -->",
                    info.version,
                    attr(&info.args).replace("--", "- -")
                )?;
                writeln!(
                    o,
                    "<nmaprun scanner=\"nmap\" args=\"{}\" start=\"{}\" startstr=\"{when}\" version=\"{}\" xmloutputversion=\"1.05\">",
                    attr(&info.args),
                    info.start_unix,
                    attr(&info.version)
                )?;
                for s in &info.scans {
                    writeln!(
                        o,
                        "<scaninfo type=\"{}\" protocol=\"{}\" numservices=\"{}\" services=\"{}\"/>",
                        s.scan_type.xml_name(),
                        s.scan_type.protocol(),
                        s.ports.len(),
                        format_ranges(&s.ports)
                    )?;
                }
                writeln!(o, "<verbose level=\"{}\"/>", info.verbosity)?;
                writeln!(o, "<debugging level=\"{}\"/>", info.debugging)?;
            }
            ScanEvent::HostDone(h) if host_listed(h, &self.opts) => self.write_host(h)?,
            // Pre- and postrule scripts as they finish: nmap's <prescript> before the hosts,
            // <postscript> after them.
            ScanEvent::ScriptOutput { scope: scope @ (ScriptScope::Pre | ScriptScope::Post), result } => {
                let tag = if *scope == ScriptScope::Pre { "prescript" } else { "postscript" };
                write!(self.out, "<{tag}>")?;
                write_script(&mut self.out, result)?;
                writeln!(self.out, "</{tag}>")?;
            }
            ScanEvent::ScanFinished(stats) => {
                let o = &mut self.out;
                let when = ctime(stats.end_unix);
                let summary = format!("RustMap done at {when}; {}", done_summary(stats));
                writeln!(
                    o,
                    "<runstats><finished time=\"{}\" timestr=\"{when}\" summary=\"{}\" elapsed=\"{:.2}\" exit=\"{}\"/>",
                    stats.end_unix,
                    attr(&summary),
                    stats.elapsed_secs,
                    if stats.completed { "success" } else { "error" }
                )?;
                writeln!(
                    o,
                    "<hosts up=\"{}\" down=\"{}\" total=\"{}\"/>",
                    stats.hosts_up, stats.hosts_down, stats.hosts_total
                )?;
                writeln!(o, "</runstats>")?;
                writeln!(o, "</nmaprun>")?;
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}
