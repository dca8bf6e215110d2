//! Second stage of flag handling: turn checked flags into a scan request and output sinks.
//! Everything that can be wrong with the user's input is found here, before a packet is sent.

use crate::flags::Flags;
use crate::UsageError;
use anyhow::{anyhow, bail, Context, Result};
use rustmap::{ReverseDns, ScanRequest, Sink, Timing, TimingTemplate};
use rustmap_model::{Protocol, ScanType};
use rustmap_output::progress::{ProgressOptions, ProgressSink};
use rustmap_output::{grepable::GrepableWriter, json::JsonWriter, normal::NormalWriter, xml::XmlWriter, Options};
use rustmap_targets::{ExcludeSet, PortList, PortTable, TargetList};
use std::fs::File;
use std::io::{BufWriter, LineWriter, Write};
use std::time::Duration;

/// What `main` runs.
pub struct Plan {
    /// The scan.
    pub request: ScanRequest,
    /// Where results go.
    pub sinks: Vec<Box<dyn Sink>>,
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// Parse a time value: bare numbers are milliseconds (the user guide's unit); `ms`, `s`, `m`, `h`
/// suffixes are accepted.
pub fn parse_time(flag: &str, s: &str) -> Result<Duration> {
    parse_time_bare(flag, s, 1.0, "500, 500ms, 30s, 5m")
}

/// Parse a time value whose bare numbers are seconds, for nmap's flags that the user guide does
/// not list (`--stats-every 10` means ten seconds to every nmap user, not ten milliseconds).
pub fn parse_seconds(flag: &str, s: &str) -> Result<Duration> {
    parse_time_bare(flag, s, 1000.0, "10, 10s, 500ms, 1m")
}

/// The one time parser: `bare_ms` is how many milliseconds a number without a unit stands for.
fn parse_time_bare(flag: &str, s: &str, bare_ms: f64, examples: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (s, bare_ms)
    };
    let v: f64 = num.parse().map_err(|_| usage(format!("invalid time {s:?} for {flag} (e.g. {examples})")))?;
    if !v.is_finite() || v < 0.0 || v * mult > 1e12 {
        return Err(usage(format!("invalid time {s:?} for {flag}")));
    }
    Ok(Duration::from_secs_f64(v * mult / 1000.0))
}

fn scan_types(f: &Flags) -> Result<Vec<ScanType>> {
    let mut types = Vec::new();
    for group in &f.scan {
        for c in group.chars() {
            match ScanType::from_letter(c) {
                Some(t) => types.push(t),
                // Version detection is not a scan type: see `version_detection`.
                None if c == 'V' => {}
                // Letters of other features (-sC, -sn, -sL, -sO, -sI) that are not built yet.
                None if "CnLOI".contains(c) => bail!(usage(format!("not yet supported: -s{c}"))),
                None => bail!(usage(format!("invalid scan type letter {c:?} in -s{group}"))),
            }
        }
    }
    if f.sctp_cookie_echo {
        types.push(ScanType::SctpCookieEcho);
    }
    let mut seen = Vec::new();
    types.retain(|t| {
        let new = !seen.contains(t);
        seen.push(*t);
        new
    });
    let raw = rustmap::privilege::has_raw_socket_privilege();
    if types.is_empty() {
        // nmap's rule: SYN scan when we may send raw packets, connect scan otherwise.
        types.push(if raw { ScanType::Syn } else { ScanType::Connect });
    }
    let spell = |t: ScanType| match t {
        ScanType::SctpCookieEcho => "--sctp-cookie-echo".to_string(),
        t => format!("-s{}", t.letter()),
    };
    for proto in [Protocol::Tcp, Protocol::Sctp] {
        let of: Vec<String> = types.iter().filter(|t| t.protocol() == proto).map(|t| spell(*t)).collect();
        if of.len() > 1 {
            bail!(usage(format!(
                "only one {} scan type may be given per scan (as in nmap), not {}",
                proto.as_str().to_uppercase(),
                of.join(" and ")
            )))
        }
    }
    if types.contains(&ScanType::Connect) && types.len() > 1 {
        bail!(usage(
            "not yet supported: -sT combined with -sU or an SCTP scan; use -sS instead of -sT (needs root or CAP_NET_RAW)"
                .to_string()
        ))
    }
    if let Some(t) = types.iter().find(|t| **t != ScanType::Connect) {
        if !raw {
            bail!(usage(format!(
                "{} sends raw packets and needs root or CAP_NET_RAW (sudo setcap cap_net_raw+ep rustmap); \
                 use -sT to scan TCP without privileges",
                spell(*t)
            )))
        }
    }
    Ok(types)
}

/// `-sV` (in any `-s` group) and its knobs; the probe database is loaded here so that a bad
/// `--probe-db` line is a usage error before anything is sent.
fn version_detection(f: &Flags) -> Result<Option<rustmap::VersionDetection>> {
    let asked = f.scan.iter().any(|g| g.contains('V'));
    let intensity = match &f.version_intensity {
        Some(v) => Some(
            v.parse::<u8>()
                .ok()
                .filter(|n| *n <= 9)
                .ok_or_else(|| usage(format!("--version-intensity must be 0-9, not {v:?}")))?,
        ),
        None => None,
    };
    let knob = if f.version_light {
        Some("--version-light")
    } else if f.version_all {
        Some("--version-all")
    } else if intensity.is_some() {
        Some("--version-intensity")
    } else if !f.probe_db.is_empty() {
        Some("--probe-db")
    } else {
        None
    };
    if !asked {
        if let Some(k) = knob {
            bail!(usage(format!("{k} needs -sV (service detection)")));
        }
        return Ok(None);
    }
    if (f.version_light || f.version_all) && intensity.is_some() {
        bail!(usage("--version-intensity cannot be combined with --version-light or --version-all"));
    }
    let mut db = rustmap::ProbeDb::builtin();
    for path in &f.probe_db {
        let more = rustmap::ProbeDb::load(path).map_err(|e| usage(format!("--probe-db: {e}")))?;
        db.merge(more);
    }
    let intensity = if f.version_light {
        2
    } else if f.version_all {
        9
    } else {
        intensity.unwrap_or(7)
    };
    let options = rustmap::DetectOptions { intensity, ..Default::default() };
    Ok(Some(rustmap::VersionDetection { db, options }))
}

fn open_out(path: &str) -> Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(LineWriter::new(std::io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot open output file {path}"))?;
    Ok(Box::new(BufWriter::new(file)))
}

/// Build the plan.
pub fn build(f: Flags, args_line: String) -> Result<Plan> {
    let types = scan_types(&f)?;
    let version = version_detection(&f)?;

    let mut skip_discovery = false;
    for p in &f.ping {
        match p.as_str() {
            "n" | "N" => skip_discovery = true,
            other => {
                let probe: String = other.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
                if ["E", "P", "M", "S", "A", "U", "Y", "R", "H", "HT", "O"].contains(&probe.as_str()) {
                    bail!(usage(format!("not yet supported: -P{probe}")));
                }
                bail!(usage(format!("invalid host discovery option -P{other}")));
            }
        }
    }

    // Targets.
    let mut targets = TargetList::new();
    targets.add_args(&f.targets).map_err(|e| usage(e.to_string()))?;
    for path in &f.input_list {
        targets.add_input_file(path).map_err(|e| usage(e.to_string()))?;
    }
    let mut exclude = ExcludeSet::default();
    for e in &f.exclude {
        exclude.extend(ExcludeSet::parse_list(e).map_err(|e| usage(format!("--exclude: {e}")))?);
    }
    for path in &f.exclude_file {
        exclude.extend(ExcludeSet::read_file(path).map_err(|e| usage(e.to_string()))?);
    }
    targets.set_exclude(exclude);
    if targets.is_empty() {
        bail!(usage("no targets given (try: rustmap 127.0.0.1, or rustmap --help)"));
    }

    // Ports.
    let table = PortTable::builtin();
    // Port lists for the protocols being scanned: -p items without a T:/U:/S: prefix apply to
    // every one of them, as in nmap.
    let mut protos: Vec<Protocol> = Vec::new();
    for t in &types {
        if !protos.contains(&t.protocol()) {
            protos.push(t.protocol());
        }
    }
    if f.ports.is_some() && (f.fast || f.top_ports.is_some()) {
        bail!(usage("-p cannot be combined with -F or --top-ports"));
    }
    let mut ports = match (&f.ports, f.top_ports, f.fast) {
        (Some(p), _, _) => PortList::parse(p, &protos, table).map_err(|e| usage(format!("-p: {e}")))?,
        (None, Some(0), _) => bail!(usage("--top-ports must be at least 1")),
        (None, Some(n), _) => PortList::top(n, &protos, table),
        (None, None, true) => PortList::top(100, &protos, table),
        (None, None, false) => PortList::top(1000, &protos, table),
    };
    if let Some(x) = &f.exclude_ports {
        let drop = PortList::parse(x, &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp], table)
            .map_err(|e| usage(format!("--exclude-ports: {e}")))?;
        ports.remove(&drop);
    }
    if protos.iter().all(|p| ports.get(*p).is_empty()) {
        bail!(usage("no ports left to scan"));
    }

    // Timing.
    let template = match &f.timing {
        None => TimingTemplate::Normal,
        Some(t) => TimingTemplate::parse(t).ok_or_else(|| usage(format!("invalid timing template -T{t} (use 0-5)")))?,
    };
    let mut timing = Timing::template(template);
    let t = |flag: &str, v: &Option<String>| v.as_deref().map(|s| parse_time(flag, s)).transpose();
    if let Some(d) = t("--timeout", &f.timeout)? {
        if d.is_zero() {
            bail!(usage("--timeout must be greater than 0"));
        }
        timing.fixed_timeout = Some(d);
    }
    if let Some(d) = t("--initial-rtt-timeout", &f.initial_rtt_timeout)? {
        timing.initial_rtt_timeout = d;
    }
    if let Some(d) = t("--min-rtt-timeout", &f.min_rtt_timeout)? {
        timing.min_rtt_timeout = d;
    }
    if let Some(d) = t("--max-rtt-timeout", &f.max_rtt_timeout)? {
        timing.max_rtt_timeout = d;
    }
    if timing.min_rtt_timeout > timing.max_rtt_timeout {
        bail!(usage("--min-rtt-timeout is larger than --max-rtt-timeout"));
    }
    if let Some(d) = t("--host-timeout", &f.host_timeout)? {
        timing.host_timeout = if d.is_zero() { None } else { Some(d) };
    }
    if let Some(d) = t("--scan-delay", &f.scan_delay)? {
        timing.scan_delay = d;
    }
    if let Some(d) = t("--max-scan-delay", &f.max_scan_delay)? {
        if d < timing.scan_delay {
            // nmap's meaning: a cap on the delay.
            timing.scan_delay = d;
        }
        timing.max_scan_delay = Some(d);
    }
    if let Some(n) = f.max_retries {
        timing.max_retries = n;
    }
    if let Some(n) = f.max_parallelism {
        if n == 0 {
            bail!(usage("--max-parallelism must be at least 1"));
        }
        timing.max_parallelism = n;
    }
    if let Some(n) = f.min_parallelism {
        timing.min_parallelism = n.max(1);
        timing.max_parallelism = timing.max_parallelism.max(timing.min_parallelism);
    }
    for (flag, v) in [("--min-rate", f.min_rate), ("--max-rate", f.max_rate)] {
        if let Some(r) = v {
            if !(r.is_finite() && r > 0.0) {
                bail!(usage(format!("{flag} must be a positive number")));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (f.min_rate, f.max_rate) {
        if lo > hi {
            bail!(usage("--min-rate is larger than --max-rate"));
        }
    }
    timing.min_rate = f.min_rate;
    timing.max_rate = f.max_rate;
    if let Some(n) = f.max_hostgroup {
        timing.max_hostgroup = n.max(1);
    }
    if let Some(n) = f.min_hostgroup {
        timing.min_hostgroup = n.max(1);
        if f.max_hostgroup.is_some_and(|m| m < n) {
            bail!(usage("--min-hostgroup is larger than --max-hostgroup"));
        }
        timing.max_hostgroup = timing.max_hostgroup.max(n);
    }
    timing.adaptive = !f.no_adaptive;

    // Outputs.
    let opts = Options { open_only: f.open, reason: f.reason || f.verbose >= 2, verbosity: f.verbose };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let stats_every = f.stats_every.as_deref().map(|s| parse_seconds("--stats-every", s)).transpose()?;
    if stats_every.is_some_and(|d| d.is_zero()) {
        bail!(usage("--stats-every must be greater than 0"));
    }
    // Status goes to stderr, not to stdout as in nmap, so that `-oX -` / `-oJ -` stay valid documents.
    // It comes first: it erases its live line before any other sink prints to the terminal.
    let progress = ProgressSink::stderr(ProgressOptions { live: !f.no_progress, stats_every });
    if !progress.is_silent() {
        sinks.push(Box::new(progress));
    }
    let mut files: Vec<(&str, String)> = Vec::new();
    for (kind, v) in [("N", &f.out_normal), ("X", &f.out_xml), ("J", &f.out_json), ("G", &f.out_grepable)] {
        if let Some(p) = v {
            files.push((kind, p.clone()));
        }
    }
    if let Some(base) = &f.out_all {
        if base == "-" {
            bail!(usage("--oA needs a base file name, not -"));
        }
        for (kind, ext) in [("N", "nmap"), ("X", "xml"), ("J", "json"), ("G", "gnmap")] {
            files.push((kind, format!("{base}.{ext}")));
        }
    }
    if files.iter().filter(|(_, p)| p == "-").count() > 1 {
        bail!(usage("only one output may go to standard output (-)"));
    }
    // As nmap: when an output file is "-", it replaces the interactive output on stdout.
    if !files.iter().any(|(_, p)| p == "-") {
        sinks.push(Box::new(NormalWriter::new(LineWriter::new(std::io::stdout()), opts.clone())));
    }
    for (kind, path) in files {
        let w = open_out(&path).map_err(|e| anyhow!("{e:#}"))?;
        let sink: Box<dyn Sink> = match kind {
            "N" => Box::new(NormalWriter::new(w, opts.clone())),
            "X" => Box::new(XmlWriter::new(w, opts.clone())),
            "J" => Box::new(JsonWriter::new(w, opts.clone())),
            _ => Box::new(GrepableWriter::new(w, opts.clone())),
        };
        sinks.push(sink);
    }

    let mut request = ScanRequest::new(targets);
    request.ports = ports;
    request.scan_types = types;
    // -e and -S: checked here so a typo is a usage error, not a scan with no results.
    if let Some(name) = &f.interface {
        if !rustmap::interface_exists(name) {
            bail!(usage(format!("-e {name}: no such interface")));
        }
    }
    let source = match &f.source_address {
        Some(s) => Some(s.parse::<std::net::IpAddr>().map_err(|_| usage(format!("-S {s}: not an IP address")))?),
        None => None,
    };
    if let Some(s) = source {
        // Raw scans may spoof (answers then go elsewhere, as with nmap's -S); the kernel binds a
        // connect scan's sockets only to addresses it has.
        if request.scan_types.contains(&ScanType::Connect) && !rustmap::is_local_address(s) {
            bail!(usage(format!("-S {s}: not an address of this machine (a connect scan can only use its own)")));
        }
    }
    request.origin = rustmap::Origin { interface: f.interface.clone(), source };
    request.timing = timing;
    request.skip_discovery = skip_discovery;
    request.randomize_ports = !f.sequential;
    request.reverse_dns = if f.no_dns {
        ReverseDns::Never
    } else if f.always_dns {
        ReverseDns::Always
    } else {
        ReverseDns::UpHosts
    };
    request.ipv6 = f.ipv6;
    request.args = args_line;
    request.verbosity = f.verbose;
    request.debugging = f.debug;
    request.version_detection = version;
    Ok(Plan { request, sinks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("x", "500").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_time("x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_time("x", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_time("x", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_time("x", "1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_time("x", "soon").is_err());
        assert!(parse_time("x", "-1").is_err());
    }

    #[test]
    fn stats_every_takes_bare_seconds() {
        assert_eq!(parse_seconds("x", "10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_seconds("x", "0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_seconds("x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_seconds("x", "1m").unwrap(), Duration::from_secs(60));
        let e = parse_seconds("--stats-every", "often").unwrap_err().to_string();
        assert!(e.contains("--stats-every") && e.contains("10s"), "{e}");
    }
}
