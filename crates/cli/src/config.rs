//! Second stage of flag handling: turn checked flags into a scan request and output sinks.
//! Everything that can be wrong with the user's input is found here, before a packet is sent.

use crate::flags::Flags;
use crate::UsageError;
use anyhow::{anyhow, bail, Context, Result};
use rustmap::{NameOptions, ReverseDns, ScanRequest, Sink, Timing, TimingTemplate};
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

/// What kind of run the `-s` letters ask for besides port scan types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Discovery, then ports (the default).
    Ports,
    /// `-sn`: discovery only.
    PingOnly,
    /// `-sL`: list targets, send nothing.
    List,
}

fn scan_types(f: &Flags) -> Result<(Vec<ScanType>, Mode)> {
    let mut types = Vec::new();
    let mut mode = Mode::Ports;
    for group in &f.scan {
        if group == "n" || group == "L" {
            let m = if group == "n" { Mode::PingOnly } else { Mode::List };
            if mode != Mode::Ports && mode != m {
                bail!(usage("-sn and -sL cannot be combined"));
            }
            mode = m;
            continue;
        }
        for c in group.chars() {
            match ScanType::from_letter(c) {
                Some(t) => types.push(t),
                None if "nL".contains(c) => {
                    bail!(usage(format!("-s{c} stands alone (as -s{c}), not inside -s{group}")))
                }
                // Version detection is not a scan type: see `version_detection`.
                None if c == 'V' => {}
                // Letters of other features (-sC, -sO, -sI) that are not built yet.
                None if "COI".contains(c) => bail!(usage(format!("not yet supported: -s{c}"))),
                None => bail!(usage(format!("invalid scan type letter {c:?} in -s{group}"))),
            }
        }
    }
    if f.sctp_cookie_echo {
        types.push(ScanType::SctpCookieEcho);
    }
    if mode != Mode::Ports {
        let flag = if mode == Mode::PingOnly { "-sn" } else { "-sL" };
        if !types.is_empty() {
            bail!(usage(format!("{flag} does not scan ports: it cannot be combined with a port scan type")));
        }
        if f.ports.is_some() || f.fast || f.top_ports.is_some() || f.exclude_ports.is_some() {
            bail!(usage(format!("{flag} does not scan ports: -p, -F, --top-ports and --exclude-ports do not apply")));
        }
        return Ok((types, mode));
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
    Ok((types, mode))
}

/// A discovery option's port list (`22,80`, `1000-1010`); `default` when none is given.
fn ping_ports(flag: &str, list: &str, default: u16) -> Result<Vec<u16>> {
    if list.is_empty() {
        return Ok(vec![default]);
    }
    let mut out = Vec::new();
    for item in list.split(',') {
        let bad = || usage(format!("invalid port {item:?} in -{flag}{list} (e.g. -{flag}22,80 or -{flag}1000-1010)"));
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
            None => {
                let p = item.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The `-P` options: skip discovery (`-Pn`), or the probes to use.
fn discovery_plan(f: &Flags, raw: bool) -> Result<(bool, rustmap::DiscoveryPlan)> {
    use rustmap::Ping;
    let mut skip = false;
    let mut arp_asked = false;
    let mut pings: Vec<Ping> = Vec::new();
    for p in &f.ping {
        let kind: String = p.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let list = &p[kind.len()..];
        let needs_raw = |what: &str| -> Result<()> {
            if raw {
                Ok(())
            } else {
                Err(usage(format!(
                    "-P{kind} ({what}) sends raw packets and needs root or CAP_NET_RAW; \
                     without privileges use -PS, -PA, -PH or -PHT"
                )))
            }
        };
        let no_list = || -> Result<()> {
            if list.is_empty() {
                Ok(())
            } else {
                Err(usage(format!("-P{kind} takes no port list (got -P{p})")))
            }
        };
        let add = |pings: &mut Vec<Ping>, new: Vec<Ping>| {
            for n in new {
                if !pings.contains(&n) {
                    pings.push(n);
                }
            }
        };
        match kind.as_str() {
            "n" | "N" => {
                no_list()?;
                skip = true;
            }
            "E" => {
                no_list()?;
                needs_raw("ICMP echo")?;
                add(&mut pings, vec![Ping::Echo]);
            }
            "P" => {
                no_list()?;
                needs_raw("ICMP timestamp")?;
                add(&mut pings, vec![Ping::Timestamp]);
            }
            "M" => {
                no_list()?;
                needs_raw("ICMP address mask")?;
                add(&mut pings, vec![Ping::Mask]);
            }
            "R" => {
                no_list()?;
                needs_raw("ARP")?;
                arp_asked = true;
            }
            "S" => add(&mut pings, ping_ports("PS", list, 443)?.into_iter().map(Ping::Syn).collect()),
            "A" => add(&mut pings, ping_ports("PA", list, 80)?.into_iter().map(Ping::Ack).collect()),
            "U" => {
                needs_raw("UDP")?;
                add(&mut pings, ping_ports("PU", list, 40125)?.into_iter().map(Ping::Udp).collect())
            }
            "Y" => {
                needs_raw("SCTP INIT")?;
                add(&mut pings, ping_ports("PY", list, 80)?.into_iter().map(Ping::Sctp).collect())
            }
            "H" => add(&mut pings, ping_ports("PH", list, 80)?.into_iter().map(Ping::Http).collect()),
            "HT" => add(&mut pings, ping_ports("PHT", list, 443)?.into_iter().map(Ping::Https).collect()),
            "O" => bail!(usage("not yet supported: -PO (IP protocol ping)")),
            _ => bail!(usage(format!("invalid host discovery option -P{p}"))),
        }
    }
    if arp_asked && f.disable_arp_ping {
        bail!(usage("-PR and --disable-arp-ping contradict each other"));
    }
    // Probes are told apart by a one-byte index in their cookies.
    if pings.len() > 255 {
        bail!(usage(format!("{} discovery probes per host is too many (at most 255)", pings.len())));
    }
    // -PR alone: ARP where it applies, nmap's default probes for hosts beyond the local links.
    Ok((skip, rustmap::DiscoveryPlan { pings, link_layer: !f.disable_arp_ping }))
}

/// `--dns-servers`, `--resolve-timeout`, `--resolve-all`, `--system-dns`.
fn name_options(f: &Flags) -> Result<NameOptions> {
    let mut dns = NameOptions { system: f.system_dns, resolve_all: f.resolve_all, ..NameOptions::default() };
    if let Some(list) = &f.dns_servers {
        if f.system_dns {
            bail!(usage(
                "--dns-servers cannot be combined with --system-dns (the system resolver asks the system's servers)"
            ));
        }
        dns.servers = rustmap::dns::parse_servers(list).map_err(|e| usage(format!("--dns-servers: {e}")))?;
    }
    if let Some(t) = &f.resolve_timeout {
        dns.timeout = parse_time("--resolve-timeout", t)?;
        if dns.timeout.is_zero() {
            bail!(usage("--resolve-timeout must be greater than 0"));
        }
    }
    Ok(dns)
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
    } else if f.no_quic {
        Some("--no-quic")
    } else if f.ja4s {
        Some("--ja4s")
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
    let options = rustmap::DetectOptions { intensity, quic: !f.no_quic, ja4s: f.ja4s, ..Default::default() };
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
    let (types, mode) = scan_types(&f)?;
    let version = version_detection(&f)?;
    if version.is_some() && mode != Mode::Ports {
        bail!(usage("-sV probes open ports: it cannot be combined with -sn or -sL"));
    }
    let raw_allowed = rustmap::privilege::has_raw_socket_privilege();
    let (skip_discovery, discovery) = discovery_plan(&f, raw_allowed)?;
    if mode == Mode::List && (!f.ping.is_empty() || f.disable_arp_ping) {
        bail!(usage("-sL sends nothing: host discovery options do not apply"));
    }
    // A connect scan (and an unprivileged ping scan) cannot send raw discovery probes.
    let connect_only = types.contains(&ScanType::Connect) || (mode == Mode::PingOnly && !raw_allowed);
    if connect_only {
        if let Some(p) = discovery.pings.iter().find(|p| p.needs_raw()) {
            bail!(usage(format!(
                "{} needs a raw-packet scan (-sS, as root); with -sT use -PS, -PA, -PH or -PHT",
                p.flag()
            )))
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
    if mode == Mode::Ports && protos.iter().all(|p| ports.get(*p).is_empty()) {
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
    if f.send_ip && mode == Mode::Ports && request.scan_types.iter().all(|t| *t == ScanType::Connect) {
        bail!(usage("--send-ip: a connect scan's packets are the kernel's; it applies to raw scans (-sS, -sU, ...)"));
    }
    request.send_ip = f.send_ip;
    request.timing = timing;
    request.skip_discovery = skip_discovery;
    request.discovery = discovery;
    request.port_scan = mode == Mode::Ports;
    request.list_only = mode == Mode::List;
    request.randomize_ports = !f.sequential;
    request.reverse_dns = if f.no_dns {
        ReverseDns::Never
    } else if f.always_dns || mode == Mode::List {
        ReverseDns::Always
    } else {
        ReverseDns::UpHosts
    };
    request.ipv6 = f.ipv6;
    request.dns = name_options(&f)?;
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

    fn flags(args: &[&str]) -> Flags {
        use clap::FromArgMatches;
        let m = crate::flags::command().try_get_matches_from(std::iter::once("rustmap").chain(args.iter().copied()));
        Flags::from_arg_matches(&m.unwrap()).unwrap()
    }

    #[test]
    fn name_resolution_flags() {
        let d = name_options(&flags(&["127.0.0.1"])).unwrap();
        assert_eq!(d, NameOptions::default());
        assert_eq!(d.timeout, Duration::from_millis(5000));
        let d = name_options(&flags(&[
            "--dns-servers",
            "198.18.0.10,fd00:18::10,[fd00::1]:5353",
            "--resolve-timeout",
            "1500",
            "--resolve-all",
            "x",
        ]))
        .unwrap();
        let want: Vec<std::net::SocketAddr> =
            ["198.18.0.10:53", "[fd00:18::10]:53", "[fd00::1]:5353"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(d.servers, want);
        assert_eq!(d.timeout, Duration::from_millis(1500));
        assert!(d.resolve_all && !d.system);
        let d = name_options(&flags(&["--system-dns", "--resolve-timeout", "2s", "x"])).unwrap();
        assert!(d.system && d.servers.is_empty());
        assert_eq!(d.timeout, Duration::from_secs(2));
        for (args, needle) in [
            (&["--dns-servers", "8.8.8.8,bogus", "x"][..], "bogus"),
            (&["--dns-servers", "8.8.8.8", "--system-dns", "x"][..], "--system-dns"),
            (&["--resolve-timeout", "0ms", "x"][..], "--resolve-timeout"),
        ] {
            let e = name_options(&flags(args)).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{args:?}");
            assert!(e.to_string().contains(needle), "{args:?}: {e}");
        }
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
