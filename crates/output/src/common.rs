//! Helpers shared by the formats: display options, time strings, host summaries, and the text of
//! the TLS script blocks (normal output's `| ssl-cert: ...` lines, XML's `output` attributes).

use chrono::{DateTime, Local, TimeZone};
use rustmap_model::{
    neutralize, CertInfo, HostResult, HostStatus, PortResult, PortState, ScanStats, ScriptResult, ScriptScope, TlsInfo,
    TraceProbe, TraceProtocol,
};

/// The host's distance in hops: where its trace reached it (the last hop is the host), else as
/// OS detection measured it from the TTL of its answers.
pub(crate) fn distance(h: &HostResult) -> Option<u8> {
    h.trace
        .last()
        .filter(|last| last.addr == Some(h.addr))
        .map(|last| last.ttl)
        .or_else(|| h.os_info.as_ref().and_then(|i| i.distance))
}

/// What a trace probed, in nmap's words: `port 80/tcp`, `port 53/udp`, `proto 1/icmp` (IPv6:
/// `proto 58/ipv6-icmp`).
pub(crate) fn trace_using(p: &TraceProbe) -> String {
    match (p.protocol, p.port) {
        (TraceProtocol::Icmp, _) | (_, None) if p.source.is_some_and(|s| s.is_ipv6()) => "proto 58/ipv6-icmp".into(),
        (TraceProtocol::Icmp, _) | (_, None) => "proto 1/icmp".to_string(),
        (proto, Some(port)) => format!("port {port}/{}", proto.as_str()),
    }
}

/// nmap's TRACEROUTE table of a host, line by line (empty without a trace): the title
/// (`TRACEROUTE (using port 22/tcp)`), `HOP RTT ADDRESS`, a line per hop (`name (address)`), a
/// run of silent hops on one line (`3   ... 5`). Names are sanitized.
pub(crate) fn traceroute_lines(h: &HostResult) -> Vec<String> {
    if h.trace.is_empty() {
        return Vec::new();
    }
    let mut out = vec![match &h.trace_probe {
        Some(p) => format!("TRACEROUTE (using {})", trace_using(p)),
        None => "TRACEROUTE".to_string(),
    }];
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut i = 0;
    while i < h.trace.len() {
        let hop = &h.trace[i];
        let Some(addr) = hop.addr else {
            let mut j = i;
            while h.trace.get(j + 1).is_some_and(|n| n.addr.is_none()) {
                j += 1;
            }
            let rtt = if j > i { format!("... {}", h.trace[j].ttl) } else { "...".to_string() };
            rows.push([hop.ttl.to_string(), rtt, String::new()]);
            i = j + 1;
            continue;
        };
        let rtt = hop.rtt_us.map_or("--".to_string(), |us| format!("{:.2} ms", us as f64 / 1000.0));
        let name = match &hop.hostname {
            Some(n) => format!("{} ({addr})", neutralize(n)),
            None => addr.to_string(),
        };
        rows.push([hop.ttl.to_string(), rtt, name]);
        i += 1;
    }
    let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(3) + 1;
    let w1 = rows.iter().filter(|r| !r[2].is_empty()).map(|r| r[1].len()).max().unwrap_or(0).max(3) + 1;
    out.push(format!("{:w0$}{:w1$}ADDRESS", "HOP", "RTT"));
    for [hop, rtt, addr] in rows {
        if addr.is_empty() {
            out.push(format!("{hop:w0$}{rtt}"));
        } else {
            out.push(format!("{hop:w0$}{rtt:w1$}{addr}"));
        }
    }
    out
}

/// Options that change what every format shows.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show only open (and possibly open) ports, and only hosts that have one (`--open`).
    pub open_only: bool,
    /// Show why each port has its state (`--reason`); implied by `-vv`... only for normal output.
    pub reason: bool,
    /// Verbosity (`-v` count).
    pub verbosity: u8,
}

/// Ports worth showing under `--open`.
pub(crate) fn is_openish(s: PortState) -> bool {
    matches!(s, PortState::Open | PortState::OpenFiltered)
}

/// Does this host get printed at all?
pub(crate) fn host_shown(h: &HostResult, opts: &Options) -> bool {
    !opts.open_only || h.ports.iter().any(|p| is_openish(p.state))
}

/// Whether a finished host is written at all, in every format: hosts up as [`host_shown`] says;
/// down hosts only with `-v` and without `--open`, as nmap does; `-sL`'s hosts (status unknown)
/// always.
pub(crate) fn host_listed(h: &HostResult, opts: &Options) -> bool {
    match h.status {
        HostStatus::Up => host_shown(h, opts),
        HostStatus::Down => opts.verbosity > 0 && !opts.open_only,
        HostStatus::Unknown => true,
    }
}

/// A copy of `h` as the data formats (JSON, YAML, CSV, CEF, LEEF) write it: only open ports
/// under `--open`, and every string that came from the network or the user sanitized (no control
/// characters), whatever the detector already did. Each format then escapes for its own syntax.
pub(crate) fn cleaned_host(h: &HostResult, opts: &Options) -> HostResult {
    let clean = |v: &mut String| *v = neutralize(v).into_owned();
    let mut h = h.clone();
    if opts.open_only {
        h.ports.retain(|p| is_openish(p.state));
    }
    for n in &mut h.hostnames {
        clean(&mut n.name);
    }
    if let Some(m) = h.mac.as_mut() {
        clean(m);
    }
    h.ports.iter_mut().for_each(clean_port);
    h.scripts.iter_mut().for_each(clean_script);
    for o in &mut h.os {
        clean(&mut o.name);
    }
    for t in &mut h.trace {
        t.hostname.iter_mut().for_each(clean);
    }
    if let Some(g) = h.geoip.as_mut() {
        [&mut g.special, &mut g.country_code, &mut g.country, &mut g.city, &mut g.timezone, &mut g.as_org]
            .into_iter()
            .flatten()
            .for_each(clean);
    }
    h
}

/// A port's strings sanitized, as [`cleaned_host`] does for each port of a host.
pub(crate) fn clean_port(p: &mut PortResult) {
    let clean = |v: &mut String| *v = neutralize(v).into_owned();
    if let Some(s) = p.service.as_mut() {
        for v in [&mut s.product, &mut s.version, &mut s.extrainfo, &mut s.hostname, &mut s.ostype, &mut s.devicetype]
            .into_iter()
            .flatten()
        {
            clean(v);
        }
        // The fingerprint is not: it is RustMap's own escaped format (RMFP1, no control byte
        // by construction), and a second pass would double its backslashes.
        if let Some(v) = s.tunnel.as_mut() {
            clean(v);
        }
        clean(&mut s.name);
        s.cpe.iter_mut().for_each(clean);
        if let Some(q) = s.quic.as_mut() {
            q.versions.iter_mut().for_each(clean);
            q.alpn.iter_mut().for_each(clean);
        }
    }
    // CVE records come from a feed fetched over the network: as untrusted as a banner.
    for v in &mut p.vulnerabilities {
        for t in [&mut v.id, &mut v.cvss_version, &mut v.severity, &mut v.summary, &mut v.matched, &mut v.range] {
            clean(t);
        }
        [&mut v.vector, &mut v.vector_v4, &mut v.published].into_iter().flatten().for_each(clean);
        if let Some(k) = v.kev.as_mut() {
            clean(&mut k.date_added);
            k.due_date.iter_mut().for_each(clean);
        }
    }
    if let Some(t) = p.tls.as_mut() {
        for v in [&mut t.version, &mut t.cipher, &mut t.ja3s, &mut t.ja3s_string] {
            clean(v);
        }
        for v in [&mut t.alpn, &mut t.ja4s].into_iter().flatten() {
            clean(v);
        }
        for c in &mut t.certs {
            for (k, v) in c.subject.iter_mut().chain(c.issuer.iter_mut()) {
                clean(k);
                clean(v);
            }
            for v in c.sans.iter_mut().chain([
                &mut c.not_before,
                &mut c.not_after,
                &mut c.key_type,
                &mut c.signature_algorithm,
                &mut c.sha256,
                &mut c.serial,
            ]) {
                clean(v);
            }
            c.key_curve.iter_mut().for_each(clean);
        }
    }
    p.scripts.iter_mut().for_each(clean_script);
}

/// The results of pre- and postrule scripts, which the data formats write after the hosts as
/// `prescript` and `postscript` (the names of nmap's XML elements).
#[derive(Debug, Default)]
pub(crate) struct ScanScripts {
    pre: Vec<ScriptResult>,
    post: Vec<ScriptResult>,
}

impl ScanScripts {
    pub(crate) fn add(&mut self, scope: &ScriptScope, result: &ScriptResult) {
        let list = match scope {
            ScriptScope::Pre => &mut self.pre,
            ScriptScope::Post => &mut self.post,
            _ => return,
        };
        let mut r = result.clone();
        clean_script(&mut r);
        list.push(r);
    }

    /// The non-empty lists, with their keys.
    pub(crate) fn lists(&self) -> impl Iterator<Item = (&'static str, &Vec<ScriptResult>)> {
        [("prescript", &self.pre), ("postscript", &self.post)].into_iter().filter(|(_, l)| !l.is_empty())
    }
}

/// A script's result sanitized, keeping the line breaks of its output (JSON, YAML and HTML show
/// them as such; the line-based formats do not write script output).
fn clean_script(sc: &mut ScriptResult) {
    let lines = |v: &str| v.split('\n').map(|l| neutralize(l).into_owned()).collect::<Vec<_>>().join("\n");
    sc.id = neutralize(&sc.id).into_owned();
    sc.output = lines(&sc.output);
    for (k, v) in &mut sc.elements {
        *k = neutralize(k).into_owned();
        *v = lines(v);
    }
}

pub(crate) fn local_time(unix: i64) -> DateTime<Local> {
    Local.timestamp_opt(unix, 0).single().unwrap_or_else(Local::now)
}

/// ctime-like time string nmap uses in XML and grepable output: `Sat Nov 21 14:23:00 2026`.
pub(crate) fn ctime(unix: i64) -> String {
    local_time(unix).format("%a %b %e %H:%M:%S %Y").to_string()
}

/// `1 IP address (1 host up) scanned in 0.52 seconds`.
pub(crate) fn done_summary(stats: &ScanStats) -> String {
    let n = stats.hosts_total;
    format!(
        "{} IP address{} ({} host{} up) scanned in {:.2} seconds",
        n,
        if n == 1 { "" } else { "es" },
        stats.hosts_up,
        if stats.hosts_up == 1 { "" } else { "s" },
        stats.elapsed_secs
    )
}

/// Write ports as a compact range list: `[1,2,3,5]` → `1-3,5` (the model's one definition).
pub use rustmap_model::port_ranges as format_ranges;

/// The lines of nmap's `ssl-cert` script for a port's leaf certificate, sanitized:
/// `Subject: commonName=h10.lab.test/organizationName=RustMap Lab`, `Issuer: ...`, the key, the
/// signature algorithm, the validity and the SHA-256 fingerprint.
pub(crate) fn ssl_cert_lines(tls: &TlsInfo) -> Vec<String> {
    let Some(c) = tls.certs.first() else { return Vec::new() };
    let mut v = vec![format!("Subject: {}", neutralize(&CertInfo::name_line(&c.subject)))];
    if !c.sans.is_empty() {
        let sans: Vec<String> = c.sans.iter().map(|s| neutralize(s).into_owned()).collect();
        v.push(format!("Subject Alternative Name: {}", sans.join(", ")));
    }
    v.push(format!("Issuer: {}", neutralize(&CertInfo::name_line(&c.issuer))));
    v.push(format!("Public Key type: {}", neutralize(&c.key_type)));
    v.push(format!("Public Key bits: {}", c.key_bits));
    v.push(format!("Signature Algorithm: {}", neutralize(&c.signature_algorithm)));
    v.push(format!("Not valid before: {}", neutralize(&c.not_before)));
    v.push(format!("Not valid after:  {}", neutralize(&c.not_after)));
    v.push(format!("Self-signed: {}", if c.self_signed { "yes" } else { "no" }));
    v.push(format!("SHA-256: {}", neutralize(&c.sha256)));
    v
}

/// The lines of RustMap's `tls-info` script: what the handshake negotiated, the fingerprints and
/// the rest of the chain.
pub(crate) fn tls_info_lines(tls: &TlsInfo) -> Vec<String> {
    let mut first = [tls.version.as_str(), tls.cipher.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| neutralize(s).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if first.is_empty() {
        first.push_str("TLS (the server answered with an alert only)");
    }
    if let Some(a) = &tls.alpn {
        first.push_str(&format!(", ALPN {}", neutralize(a)));
    }
    if !tls.session {
        first.push_str(" (handshake only: no TLS 1.2+ session possible)");
    }
    let mut v = vec![first];
    if !tls.ja3s.is_empty() {
        v.push(format!("JA3S: {} ({})", neutralize(&tls.ja3s), neutralize(&tls.ja3s_string)));
    }
    if let Some(j) = &tls.ja4s {
        v.push(format!("JA4S: {}", neutralize(j)));
    }
    for (i, c) in tls.certs.iter().enumerate().skip(1) {
        v.push(format!(
            "Chain {i}: Subject: {}; Issuer: {}{}",
            neutralize(&CertInfo::name_line(&c.subject)),
            neutralize(&CertInfo::name_line(&c.issuer)),
            if c.self_signed { "; self-signed" } else { "" }
        ));
    }
    v
}

/// One script's output as nmap's normal format shows it: `| id: first line`, `| more`, and the
/// last line behind `|_` (a one-line output is just `|_id: line`). Text is neutralized again:
/// it came from the network through a script.
pub(crate) fn script_lines(sc: &rustmap_model::ScriptResult) -> Vec<String> {
    // Split first: neutralizing escapes newlines too.
    let lines: Vec<String> = sc.output.split('\n').map(|l| rustmap_model::neutralize(l).into_owned()).collect();
    let n = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(k, line)| {
            let bar = if k + 1 == n { "|_" } else { "| " };
            if k == 0 {
                format!("{bar}{}: {line}", rustmap_model::neutralize(&sc.id))
            } else {
                format!("{bar}{line}")
            }
        })
        .collect()
}

/// The host's best OS guess on one line, `NAME (ACCURACY%)`, for the one-line formats (CSV,
/// SIEM); empty without one.
pub(crate) fn os_line(h: &HostResult) -> String {
    h.os.first().map(|g| format!("{} ({}%)", g.name, g.accuracy)).unwrap_or_default()
}

/// The CPE names of the host's best OS guess, space-separated; empty without one.
pub(crate) fn os_cpe(h: &HostResult) -> String {
    h.os.first()
        .map(|g| g.classes.iter().flat_map(|c| c.cpe.iter().cloned()).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A host's place on one line (`--geoip`), sanitized.
pub(crate) fn geo_line(g: &rustmap_model::GeoInfo) -> String {
    neutralize(&g.summary()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(format_ranges(&[1, 2, 3, 5, 65534, 65535]), "1-3,5,65534-65535");
    }

    #[test]
    fn summary_plurals() {
        let s = ScanStats {
            end_unix: 0,
            elapsed_secs: 1.234,
            hosts_up: 1,
            hosts_down: 0,
            hosts_total: 1,
            completed: true,
            outcome: Default::default(),
        };
        assert_eq!(done_summary(&s), "1 IP address (1 host up) scanned in 1.23 seconds");
        let s = ScanStats { hosts_up: 2, hosts_total: 256, ..s };
        assert_eq!(done_summary(&s), "256 IP addresses (2 hosts up) scanned in 1.23 seconds");
    }
}
