//! Checking a [`ScanConfig`] and turning it into a [`ScanPlan`]: the one place where what a user
//! asked for is judged, whichever front-end it came from (CLI flags, a TOML profile, an API body,
//! Python keyword arguments, a distributed shard).
//!
//! Everything that can be wrong with the input is found here, before a file is created or a
//! packet sent: a [`ConfigError`] names the field, the bad value and what to do. Its message
//! spells the option as nmap users type it (`--max-rate`), because that is what every front-end
//! documents; the `field` is the config's own path (`timing.max_rate`) for programs.

use crate::dns::{self, NameOptions};
use crate::{privilege, Origin, ScanPlan, VersionDetection};
use rustmap_detect::{DetectOptions, ProbeDb};
use rustmap_engine::discovery::{DiscoveryPlan, Ping};
use rustmap_engine::{Timing, TimingTemplate};
use rustmap_model::config::{OutputFormat, ReverseDns, ScanMode, TimeValue};
use rustmap_model::{Protocol, ScanConfig, ScanType, CONFIG_VERSION};
use rustmap_proxy::ProxyUrl;
use rustmap_targets::{ExcludeSet, PortList, PortTable, TargetList};
use std::time::Duration;
use thiserror::Error;

/// What is wrong with a configuration: the field, the value and the reason. The same input gives
/// the same error from every front-end.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The field of [`ScanConfig`] at fault, as a path (`timing.max_rate`, `ports.spec`).
    pub field: &'static str,
    /// The value given (empty when the fault is a missing value or a combination).
    pub value: String,
    /// What kind of fault.
    pub kind: ConfigErrorKind,
    /// The whole message, naming the option as nmap users spell it.
    pub message: String,
}

/// Kinds of [`ConfigError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A value that does not parse or is out of range.
    Invalid,
    /// Two options that cannot go together.
    Conflict,
    /// Something needed is missing (no targets, no ports left).
    Missing,
    /// The option needs raw-socket privileges this process does not have.
    Privilege,
    /// Recognized but not built yet.
    Unsupported,
}

pub(crate) fn invalid(field: &'static str, value: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field, value: value.into(), kind: ConfigErrorKind::Invalid, message: message.into() }
}

pub(crate) fn conflict(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, value: String::new(), kind: ConfigErrorKind::Conflict, message: message.into() }
}

fn missing(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, value: String::new(), kind: ConfigErrorKind::Missing, message: message.into() }
}

pub(crate) fn privilege_err(field: &'static str, value: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field, value: value.into(), kind: ConfigErrorKind::Privilege, message: message.into() }
}

fn unsupported(field: &'static str, value: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field, value: value.into(), kind: ConfigErrorKind::Unsupported, message: message.into() }
}

/// Parse a time value: bare numbers are milliseconds (the user guide's unit); `ms`, `s`, `m`, `h`
/// suffixes are accepted. `flag` names the option in the error.
pub fn parse_time(field: &'static str, flag: &str, s: &str) -> Result<Duration, ConfigError> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .parse()
        .map_err(|_| invalid(field, s, format!("invalid time {t:?} for {flag} (e.g. 500, 500ms, 30s, 5m)")))?;
    if !v.is_finite() || v < 0.0 || v * mult > 1e12 {
        return Err(invalid(field, s, format!("invalid time {t:?} for {flag}")));
    }
    Ok(Duration::from_secs_f64(v * mult / 1000.0))
}

fn time(field: &'static str, flag: &str, v: &Option<TimeValue>) -> Result<Option<Duration>, ConfigError> {
    v.as_ref().map(|t| parse_time(field, flag, &t.0)).transpose()
}

/// The spelling of a scan type's option.
fn spell(t: ScanType) -> String {
    match t {
        ScanType::SctpCookieEcho => "--sctp-cookie-echo".to_string(),
        t => format!("-s{}", t.letter()),
    }
}

/// The scan types to run (nmap's default when none is given), checked for combinations.
/// Through a proxy the default is the connect scan, and raw scan types are refused.
fn scan_types(c: &ScanConfig, raw: bool, proxied: bool) -> Result<Vec<ScanType>, ConfigError> {
    let mut types: Vec<ScanType> = Vec::new();
    for t in &c.scan_types {
        if !types.contains(t) {
            types.push(*t);
        }
    }
    if proxied {
        if let Some(t) = types.iter().find(|t| **t != ScanType::Connect) {
            return Err(conflict(
                "scan_types",
                format!(
                    "{} cannot go through --proxy: its raw packets would bypass the proxy and reveal this machine's own \
                     address to the targets; only -sT (connect) and -sV go through a SOCKS5 proxy",
                    spell(*t)
                ),
            ));
        }
        if c.mode == ScanMode::Ping {
            return Err(conflict(
                "mode",
                "-sn cannot go through --proxy: host discovery probes go straight to the targets, bypassing the \
                 proxy; with --proxy every target is treated as up (as -Pn) and only -sT and -sV go through it",
            ));
        }
    }
    if c.mode != ScanMode::Ports {
        let flag = if c.mode == ScanMode::Ping { "-sn" } else { "-sL" };
        if !types.is_empty() {
            return Err(conflict(
                "scan_types",
                format!("{flag} does not scan ports: it cannot be combined with a port scan type"),
            ));
        }
        let p = &c.ports;
        if p.spec.is_some() || p.fast || p.top.is_some() || p.exclude.is_some() {
            return Err(conflict(
                "ports",
                format!("{flag} does not scan ports: -p, -F, --top-ports and --exclude-ports do not apply"),
            ));
        }
        return Ok(types);
    }
    if types.is_empty() {
        // nmap's rule: SYN scan when we may send raw packets, connect scan otherwise (and
        // always through a proxy).
        types.push(if raw && !proxied { ScanType::Syn } else { ScanType::Connect });
    }
    for proto in [Protocol::Tcp, Protocol::Sctp] {
        let of: Vec<String> = types.iter().filter(|t| t.protocol() == proto).map(|t| spell(*t)).collect();
        if of.len() > 1 {
            return Err(conflict(
                "scan_types",
                format!(
                    "only one {} scan type may be given per scan (as in nmap), not {}",
                    proto.as_str().to_uppercase(),
                    of.join(" and ")
                ),
            ));
        }
    }
    if types.contains(&ScanType::Connect) && types.len() > 1 {
        return Err(unsupported(
            "scan_types",
            "",
            "not yet supported: -sT combined with -sU or an SCTP scan; use -sS instead of -sT (needs root or CAP_NET_RAW)",
        ));
    }
    if let Some(t) = types.iter().find(|t| **t != ScanType::Connect) {
        if !raw {
            let t = spell(*t);
            let message = if c.origin.privileged == Some(false) {
                format!("{t} sends raw packets, which --unprivileged rules out; drop --unprivileged or use -sT")
            } else {
                format!(
                    "{t} sends raw packets and needs root or CAP_NET_RAW; to scan without sudo, give the binary \
                     the capabilities once: {} (docs/install.md); or use -sT to scan TCP without privileges",
                    privilege::GRANT_COMMAND
                )
            };
            return Err(privilege_err("scan_types", t, message));
        }
    }
    Ok(types)
}

/// A discovery option's port list (`22,80`, `1000-1010`); `default` when none is given.
fn ping_ports(kind: &str, list: &str, default: u16) -> Result<Vec<u16>, ConfigError> {
    if list.is_empty() {
        return Ok(vec![default]);
    }
    let mut out = Vec::new();
    for item in list.split(',') {
        let bad = || {
            invalid(
                "discovery.probes",
                format!("P{kind}{list}"),
                format!("invalid port {item:?} in -P{kind}{list} (e.g. -P{kind}22,80 or -P{kind}1000-1010)"),
            )
        };
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
fn discovery_plan(c: &ScanConfig, raw: bool) -> Result<(bool, DiscoveryPlan), ConfigError> {
    let mut skip = c.discovery.skip;
    let mut arp_asked = false;
    let mut pings: Vec<Ping> = Vec::new();
    for given in &c.discovery.probes {
        let p = given.trim_start_matches('-');
        let p = p.strip_prefix('P').unwrap_or(p);
        let kind: String = p.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let list = &p[kind.len()..];
        let needs_raw = |what: &str| -> Result<(), ConfigError> {
            if raw {
                Ok(())
            } else {
                Err(privilege_err(
                    "discovery.probes",
                    given.clone(),
                    format!(
                        "-P{kind} ({what}) sends raw packets and needs root or CAP_NET_RAW ({}); \
                         without privileges use -PS, -PA, -PH or -PHT",
                        privilege::GRANT_COMMAND
                    ),
                ))
            }
        };
        let no_list = || -> Result<(), ConfigError> {
            if list.is_empty() {
                Ok(())
            } else {
                Err(invalid("discovery.probes", given.clone(), format!("-P{kind} takes no port list (got -P{p})")))
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
            "S" => add(&mut pings, ping_ports("S", list, 443)?.into_iter().map(Ping::Syn).collect()),
            "A" => add(&mut pings, ping_ports("A", list, 80)?.into_iter().map(Ping::Ack).collect()),
            "U" => {
                needs_raw("UDP")?;
                add(&mut pings, ping_ports("U", list, 40125)?.into_iter().map(Ping::Udp).collect())
            }
            "Y" => {
                needs_raw("SCTP INIT")?;
                add(&mut pings, ping_ports("Y", list, 80)?.into_iter().map(Ping::Sctp).collect())
            }
            "H" => add(&mut pings, ping_ports("H", list, 80)?.into_iter().map(Ping::Http).collect()),
            "HT" => add(&mut pings, ping_ports("HT", list, 443)?.into_iter().map(Ping::Https).collect()),
            "O" => {
                return Err(unsupported("discovery.probes", given.clone(), "not yet supported: -PO (IP protocol ping)"))
            }
            _ => {
                return Err(invalid("discovery.probes", given.clone(), format!("invalid host discovery option -P{p}")))
            }
        }
    }
    if arp_asked && c.discovery.disable_arp {
        return Err(conflict("discovery.disable_arp", "-PR and --disable-arp-ping contradict each other"));
    }
    // Probes are told apart by a one-byte index in their cookies.
    if pings.len() > 255 {
        return Err(invalid(
            "discovery.probes",
            pings.len().to_string(),
            format!("{} discovery probes per host is too many (at most 255)", pings.len()),
        ));
    }
    // -PR alone: ARP where it applies, nmap's default probes for hosts beyond the local links.
    Ok((skip, DiscoveryPlan { pings, link_layer: !c.discovery.disable_arp }))
}

/// Probes in flight at most through a proxy, unless `--max-parallelism` says otherwise: each is
/// a connection to the proxy, which serves other clients too.
pub const PROXY_PARALLELISM: usize = 64;

/// `--proxy`'s URL with `***` for a password, as best it can be found in text that does not
/// parse (for the error's `value`).
fn redact_proxy_text(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.to_string() };
    match (text.rfind('@'), text[start..].find(':').map(|i| i + start)) {
        (Some(at), Some(colon)) if colon < at => format!("{}:***{}", &text[..colon], &text[at..]),
        _ => text.to_string(),
    }
}

/// `--proxy`: the URL, checked, and what it rules out besides raw scans (see [`scan_types`]).
fn proxy(c: &ScanConfig) -> Result<Option<ProxyUrl>, ConfigError> {
    let Some(text) = &c.origin.proxy else { return Ok(None) };
    let url =
        ProxyUrl::parse(text).map_err(|e| invalid("origin.proxy", redact_proxy_text(text), format!("--proxy: {e}")))?;
    if let Some(p) = c.discovery.probes.iter().find(|p| !matches!(p.trim_start_matches('-'), "Pn" | "PN" | "n" | "N")) {
        let p = p.trim_start_matches('-');
        return Err(conflict(
            "discovery.probes",
            format!(
                "-{p} cannot go through --proxy: host discovery probes go straight to the targets, bypassing the \
                 proxy; with --proxy every target is treated as up (as -Pn)"
            ),
        ));
    }
    if c.origin.interface.is_some() || c.origin.source.is_some() {
        let (field, flag) =
            if c.origin.interface.is_some() { ("origin.interface", "-e") } else { ("origin.source", "-S") };
        return Err(conflict(
            field,
            format!("{flag} cannot be combined with --proxy: the scan's connections go to the proxy, as the system routes them"),
        ));
    }
    Ok(Some(url))
}

/// Name resolution options.
fn name_options(c: &ScanConfig) -> Result<NameOptions, ConfigError> {
    let n = &c.names;
    let mut dns = NameOptions { system: n.system, resolve_all: n.resolve_all, ..NameOptions::default() };
    if !n.servers.is_empty() {
        if n.system {
            return Err(conflict(
                "names.servers",
                "--dns-servers cannot be combined with --system-dns (the system resolver asks the system's servers)",
            ));
        }
        let list = n.servers.join(",");
        dns.servers = dns::parse_servers(&list)
            .map_err(|e| invalid("names.servers", list.clone(), format!("--dns-servers: {e}")))?;
    }
    if let Some(t) = time("names.timeout", "--resolve-timeout", &n.timeout)? {
        if t.is_zero() {
            return Err(invalid(
                "names.timeout",
                n.timeout.clone().map(|t| t.0).unwrap_or_default(),
                "--resolve-timeout must be greater than 0",
            ));
        }
        dns.timeout = t;
    }
    Ok(dns)
}

/// `-sV` and its knobs; the probe database is loaded here so that a bad `--probe-db` line is an
/// error before anything is sent.
fn version_detection(c: &ScanConfig) -> Result<Option<VersionDetection>, ConfigError> {
    let s = &c.service;
    if let Some(i) = s.intensity.filter(|i| *i > 9) {
        return Err(invalid(
            "service.intensity",
            i.to_string(),
            format!("--version-intensity must be 0-9, not \"{i}\""),
        ));
    }
    let knob = if s.light {
        Some("--version-light")
    } else if s.all {
        Some("--version-all")
    } else if s.intensity.is_some() {
        Some("--version-intensity")
    } else if !s.probe_db.is_empty() {
        Some("--probe-db")
    } else if !s.quic {
        Some("--no-quic")
    } else if s.ja4s {
        Some("--ja4s")
    } else {
        None
    };
    if !s.enabled && !crate::enrich::wants_versions(c) {
        if let Some(k) = knob {
            return Err(conflict("service.enabled", format!("{k} needs -sV (service detection)")));
        }
        return Ok(None);
    }
    if c.mode != ScanMode::Ports {
        return Err(conflict("service.enabled", "-sV probes open ports: it cannot be combined with -sn or -sL"));
    }
    if s.light && s.all {
        return Err(conflict("service.light", "--version-light cannot be combined with --version-all"));
    }
    if (s.light || s.all) && s.intensity.is_some() {
        return Err(conflict(
            "service.intensity",
            "--version-intensity cannot be combined with --version-light or --version-all",
        ));
    }
    let mut db = ProbeDb::builtin();
    for path in &s.probe_db {
        let more = ProbeDb::load(path)
            .map_err(|e| invalid("service.probe_db", path.display().to_string(), format!("--probe-db: {e}")))?;
        db.merge(more);
    }
    let intensity = if s.light {
        2
    } else if s.all {
        9
    } else {
        s.intensity.unwrap_or(7)
    };
    let options = DetectOptions { intensity, quic: s.quic, ja4s: s.ja4s, ..Default::default() };
    Ok(Some(VersionDetection { db, options }))
}

/// Targets and exclusions (files are read here, so an unreadable one is an error up front).
fn targets(c: &ScanConfig) -> Result<TargetList, ConfigError> {
    let mut targets = TargetList::new();
    for t in &c.targets {
        targets.add_args(std::slice::from_ref(t)).map_err(|e| invalid("targets", t.clone(), e.to_string()))?;
    }
    for path in &c.target_files {
        targets.add_input_file(path).map_err(|e| invalid("target_files", path.display().to_string(), e.to_string()))?;
    }
    let mut exclude = ExcludeSet::default();
    for e in &c.exclude {
        exclude.extend(
            ExcludeSet::parse_list(e).map_err(|err| invalid("exclude", e.clone(), format!("--exclude: {err}")))?,
        );
    }
    for path in &c.exclude_files {
        exclude.extend(
            ExcludeSet::read_file(path)
                .map_err(|e| invalid("exclude_files", path.display().to_string(), e.to_string()))?,
        );
    }
    targets.set_exclude(exclude);
    if targets.is_empty() && !c.cloud.enabled() {
        return Err(missing("targets", "no targets given (try: rustmap 127.0.0.1, or rustmap --help)"));
    }
    Ok(targets)
}

/// The port lists of the protocols being scanned: `-p` items without a `T:`/`U:`/`S:` prefix
/// apply to every one of them, as in nmap.
fn ports(c: &ScanConfig, types: &[ScanType]) -> Result<PortList, ConfigError> {
    let table = PortTable::builtin();
    let mut protos: Vec<Protocol> = Vec::new();
    for t in types {
        if !protos.contains(&t.protocol()) {
            protos.push(t.protocol());
        }
    }
    let p = &c.ports;
    if p.spec.is_some() && (p.fast || p.top.is_some()) {
        return Err(conflict("ports.spec", "-p cannot be combined with -F or --top-ports"));
    }
    let mut ports = match (&p.spec, p.top, p.fast) {
        (Some(s), _, _) => {
            PortList::parse(s, &protos, table).map_err(|e| invalid("ports.spec", s.clone(), format!("-p: {e}")))?
        }
        (None, Some(0), _) => return Err(invalid("ports.top", "0", "--top-ports must be at least 1")),
        (None, Some(n), _) => PortList::top(n, &protos, table),
        (None, None, true) => PortList::top(100, &protos, table),
        (None, None, false) => PortList::top(1000, &protos, table),
    };
    if let Some(x) = &p.exclude {
        let drop = PortList::parse(x, &[Protocol::Tcp, Protocol::Udp, Protocol::Sctp], table)
            .map_err(|e| invalid("ports.exclude", x.clone(), format!("--exclude-ports: {e}")))?;
        ports.remove(&drop);
    }
    if c.mode == ScanMode::Ports && protos.iter().all(|p| ports.get(*p).is_empty()) {
        return Err(missing("ports", "no ports left to scan"));
    }
    Ok(ports)
}

/// `ports.first`: the ports to scan before the others, kept only where the scan has them.
fn first_ports(c: &ScanConfig, types: &[ScanType], ports: &PortList) -> Result<PortList, ConfigError> {
    let Some(f) = &c.ports.first else { return Ok(PortList::default()) };
    let all = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];
    let first = PortList::parse(f, &all, PortTable::builtin())
        .map_err(|e| invalid("ports.first", f.clone(), format!("ports to scan first: {e}")))?;
    let scanned: Vec<Protocol> = types.iter().map(|t| t.protocol()).collect();
    let keep = |proto: Protocol| -> Vec<u16> {
        if !scanned.contains(&proto) {
            return Vec::new();
        }
        first.get(proto).iter().copied().filter(|p| ports.get(proto).binary_search(p).is_ok()).collect()
    };
    Ok(PortList { tcp: keep(Protocol::Tcp), udp: keep(Protocol::Udp), sctp: keep(Protocol::Sctp) })
}

/// Timing: the template, then each knob over it.
fn timing(c: &ScanConfig) -> Result<Timing, ConfigError> {
    let t = &c.timing;
    let template = match t.template {
        None => TimingTemplate::Normal,
        Some(n) => TimingTemplate::from_level(n).ok_or_else(|| {
            invalid("timing.template", n.to_string(), format!("invalid timing template -T{n} (use 0-5)"))
        })?,
    };
    let mut timing = Timing::template(template);
    if let Some(d) = time("timing.timeout", "--timeout", &t.timeout)? {
        if d.is_zero() {
            return Err(invalid("timing.timeout", "0", "--timeout must be greater than 0"));
        }
        timing.fixed_timeout = Some(d);
    }
    if let Some(d) = time("timing.initial_rtt_timeout", "--initial-rtt-timeout", &t.initial_rtt_timeout)? {
        timing.initial_rtt_timeout = d;
    }
    if let Some(d) = time("timing.min_rtt_timeout", "--min-rtt-timeout", &t.min_rtt_timeout)? {
        timing.min_rtt_timeout = d;
    }
    if let Some(d) = time("timing.max_rtt_timeout", "--max-rtt-timeout", &t.max_rtt_timeout)? {
        timing.max_rtt_timeout = d;
    }
    if timing.min_rtt_timeout > timing.max_rtt_timeout {
        return Err(conflict("timing.min_rtt_timeout", "--min-rtt-timeout is larger than --max-rtt-timeout"));
    }
    if let Some(d) = time("timing.host_timeout", "--host-timeout", &t.host_timeout)? {
        timing.host_timeout = if d.is_zero() { None } else { Some(d) };
    }
    if let Some(d) = time("timing.scan_delay", "--scan-delay", &t.scan_delay)? {
        timing.scan_delay = d;
    }
    if let Some(d) = time("timing.max_scan_delay", "--max-scan-delay", &t.max_scan_delay)? {
        if d < timing.scan_delay {
            // nmap's meaning: a cap on the delay.
            timing.scan_delay = d;
        }
        timing.max_scan_delay = Some(d);
    }
    if let Some(n) = t.max_retries {
        timing.max_retries = n;
    }
    if let Some(n) = t.max_parallelism {
        if n == 0 {
            return Err(invalid("timing.max_parallelism", "0", "--max-parallelism must be at least 1"));
        }
        timing.max_parallelism = n;
    }
    if let Some(n) = t.min_parallelism {
        timing.min_parallelism = n.max(1);
        timing.max_parallelism = timing.max_parallelism.max(timing.min_parallelism);
    }
    for (field, flag, v) in
        [("timing.min_rate", "--min-rate", t.min_rate), ("timing.max_rate", "--max-rate", t.max_rate)]
    {
        if let Some(r) = v {
            if !(r.is_finite() && r > 0.0) {
                return Err(invalid(field, r.to_string(), format!("{flag} must be a positive number, not {r}")));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (t.min_rate, t.max_rate) {
        if lo > hi {
            return Err(conflict("timing.min_rate", "--min-rate is larger than --max-rate"));
        }
    }
    timing.min_rate = t.min_rate;
    timing.max_rate = t.max_rate;
    if let Some(n) = t.max_hostgroup {
        timing.max_hostgroup = n.max(1);
    }
    if let Some(n) = t.min_hostgroup {
        timing.min_hostgroup = n.max(1);
        if t.max_hostgroup.is_some_and(|m| m < n) {
            return Err(conflict("timing.min_hostgroup", "--min-hostgroup is larger than --max-hostgroup"));
        }
        timing.max_hostgroup = timing.max_hostgroup.max(n);
    }
    timing.adaptive = t.adaptive;
    Ok(timing)
}

/// Output files: `-` at most once, `-oA` expanded, `--stats-every` checked.
/// Output files (format and path) and the `--stats-every` interval.
type Outputs = (Vec<(OutputFormat, String)>, Option<Duration>);

fn outputs(c: &ScanConfig) -> Result<Outputs, ConfigError> {
    let o = &c.output;
    let mut files: Vec<(OutputFormat, String)> = o.files.iter().map(|f| (f.format, f.path.clone())).collect();
    if let Some(base) = &o.all_base {
        if base == "-" || base.is_empty() {
            return Err(invalid("output.all_base", base.clone(), "--oA needs a base file name, not -"));
        }
        for (format, ext) in [
            (OutputFormat::Normal, "nmap"),
            (OutputFormat::Xml, "xml"),
            (OutputFormat::Json, "json"),
            (OutputFormat::Grepable, "gnmap"),
            (OutputFormat::Yaml, "yaml"),
            (OutputFormat::Csv, "csv"),
        ] {
            files.push((format, format!("{base}.{ext}")));
        }
    }
    if files.iter().any(|(_, p)| p.is_empty()) {
        return Err(missing("output.files", "an output file needs a path (or - for standard output)"));
    }
    if files.iter().filter(|(_, p)| p == "-").count() > 1 {
        return Err(conflict("output.files", "only one output may go to standard output (-)"));
    }
    let stats_every = time("output.stats_every", "--stats-every", &o.stats_every)?;
    if stats_every.is_some_and(|d| d.is_zero()) {
        return Err(invalid("output.stats_every", "0", "--stats-every must be greater than 0"));
    }
    Ok((files, stats_every))
}

/// Check a configuration and build the plan it describes. Reads the files it names (target
/// lists, exclusions, probe databases) and looks at this machine (privileges, interfaces), but
/// creates nothing and sends nothing.
pub fn validate(c: &ScanConfig) -> Result<ScanPlan, ConfigError> {
    if c.version > CONFIG_VERSION {
        return Err(invalid(
            "version",
            c.version.to_string(),
            format!("configuration version {} is newer than this RustMap understands ({CONFIG_VERSION})", c.version),
        ));
    }
    // --privileged / --unprivileged override what the process's capabilities say (as in nmap).
    let raw = c.origin.privileged.unwrap_or_else(privilege::has_raw_socket_privilege);
    let proxy = proxy(c)?;
    let types = scan_types(c, raw, proxy.is_some())?;
    let version = version_detection(c)?;
    let (skip_discovery, discovery) = discovery_plan(c, raw)?;
    let mut notices = Vec::new();
    if proxy.is_some() && c.mode == ScanMode::Ports && !skip_discovery {
        notices.push(
            "--proxy: host discovery skipped, every target is treated as up (as -Pn): discovery probes would not go \
             through the proxy"
                .to_string(),
        );
    }
    if proxy.is_some() && version.is_some() {
        notices.push("--proxy: -sV probes TCP ports only; UDP and QUIC probes do not go through a SOCKS5 proxy".into());
    }
    if c.mode == ScanMode::List && (!c.discovery.probes.is_empty() || c.discovery.disable_arp) {
        return Err(conflict("discovery.probes", "-sL sends nothing: host discovery options do not apply"));
    }
    // A connect scan (and an unprivileged ping scan) cannot send raw discovery probes.
    let connect_only = types.contains(&ScanType::Connect) || (c.mode == ScanMode::Ping && !raw);
    if connect_only {
        if let Some(p) = discovery.pings.iter().find(|p| p.needs_raw()) {
            return Err(conflict(
                "discovery.probes",
                format!("{} needs a raw-packet scan (-sS, as root); with -sT use -PS, -PA, -PH or -PHT", p.flag()),
            ));
        }
    }
    let cloud = crate::cloud::cloud_plan(c)?;
    let targets = targets(c)?;
    let ports = ports(c, &types)?;
    let first_ports = first_ports(c, &types, &ports)?;
    let mut timing = timing(c)?;
    if proxy.is_some() && c.timing.max_parallelism.is_none() {
        timing.max_parallelism = timing.max_parallelism.min(PROXY_PARALLELISM).max(timing.min_parallelism);
    }
    let (files, stats_every) = outputs(c)?;

    // -e and -S: checked here so a typo is an error, not a scan with no results.
    if let Some(name) = &c.origin.interface {
        if !crate::interface_exists(name) {
            return Err(invalid("origin.interface", name.clone(), format!("-e {name}: no such interface")));
        }
    }
    let source = match &c.origin.source {
        Some(s) => Some(
            s.parse::<std::net::IpAddr>()
                .map_err(|_| invalid("origin.source", s.clone(), format!("-S {s}: not an IP address")))?,
        ),
        None => None,
    };
    if let Some(s) = source {
        // Raw scans may spoof (answers then go elsewhere, as with nmap's -S); the kernel binds a
        // connect scan's sockets only to addresses it has.
        if types.contains(&ScanType::Connect) && !crate::is_local_address(s) {
            return Err(invalid(
                "origin.source",
                s.to_string(),
                format!("-S {s}: not an address of this machine (a connect scan can only use its own)"),
            ));
        }
    }
    if c.origin.send_ip && c.mode == ScanMode::Ports && types.iter().all(|t| *t == ScanType::Connect) {
        return Err(conflict(
            "origin.send_ip",
            "--send-ip: a connect scan's packets are the kernel's; it applies to raw scans (-sS, -sU, ...)",
        ));
    }
    let reverse_dns = match c.names.reverse {
        // socks5h://: names stay with the proxy; no reverse lookups either, unless -R asks.
        ReverseDns::UpHosts if proxy.as_ref().is_some_and(|p| p.remote_dns) => ReverseDns::Never,
        // -sL looks up every name: it is all that it does.
        _ if c.mode == ScanMode::List && c.names.reverse != ReverseDns::Never => ReverseDns::Always,
        r => r,
    };
    let dns = name_options(c)?;
    let evasion = crate::evasion::evasion(c, &types, raw && !connect_only, &mut rand::rng())?;
    // The configuration as reported and stored: the proxy's password is never written anywhere.
    let mut shown = c.clone();
    if let (Some(url), Some(text)) = (&proxy, &c.origin.proxy) {
        shown.args = shown.args.replace(text.as_str(), &url.to_string());
        shown.origin.proxy = Some(url.to_string());
    }
    let path = crate::trace::path_plan(c, raw, &files)?;
    let os = crate::osdetect::os_plan(c, raw, types.contains(&ScanType::Syn))?;
    let shaping = rustmap_model::config::EvasionConfig { randomize_hosts: false, ..c.evasion.clone() };
    if os.as_ref().is_some_and(|p| !p.passive_only) && shaping != Default::default() {
        notices.push(
            "-O sends its probes as they are: the evasion options (-D, -f, --mtu, -g, --data-*, --ttl, --spoof-mac, \
             --badsum, --ip-options) shape the port scan's probes only"
                .into(),
        );
    }
    let scripts = crate::scripts::script_plan(c)?;
    notices.extend(scripts.iter().flat_map(|s| s.notices.iter().cloned()));
    let enrich = crate::enrich::enrich_plan(c)?;
    Ok(ScanPlan {
        config: shown,
        targets,
        ports,
        first_ports,
        scan_types: types,
        timing,
        skip_discovery: skip_discovery || proxy.is_some(),
        discovery,
        port_scan: c.mode == ScanMode::Ports,
        list_only: c.mode == ScanMode::List,
        randomize_ports: !c.ports.sequential,
        reverse_dns,
        ipv6: c.names.ipv6,
        dns,
        origin: Origin { interface: c.origin.interface.clone(), source },
        send_ip: c.origin.send_ip,
        evasion,
        randomize_hosts: c.evasion.randomize_hosts,
        raw,
        version_detection: version,
        files,
        stats_every,
        proxy,
        socks: None,
        notices,
        allow: None,
        path,
        os,
        scripts,
        enrich,
        cloud,
        cloud_instances: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let p = |s| parse_time("x", "--x", s);
        assert_eq!(p("500").unwrap(), Duration::from_millis(500));
        assert_eq!(p("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(p("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(p("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(p("1.5s").unwrap(), Duration::from_millis(1500));
        let e = p("soon").unwrap_err();
        assert_eq!((e.field, e.value.as_str(), e.kind), ("x", "soon", ConfigErrorKind::Invalid));
        assert!(p("-1").is_err());
    }

    fn config(f: impl FnOnce(&mut ScanConfig)) -> ScanConfig {
        let mut c = ScanConfig::new(["127.0.0.1"]);
        c.scan_types = vec![ScanType::Connect];
        f(&mut c);
        c
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let cases: Vec<(ScanConfig, &str, &str, &str)> = vec![
            (config(|c| c.ports.spec = Some("70000".into())), "ports.spec", "70000", "-p: "),
            (config(|c| c.timing.max_rate = Some(-5.0)), "timing.max_rate", "-5", "--max-rate"),
            (config(|c| c.timing.host_timeout = Some("soon".into())), "timing.host_timeout", "soon", "--host-timeout"),
            (config(|c| c.timing.template = Some(7)), "timing.template", "7", "-T7"),
            (config(|c| c.service.intensity = Some(12)), "service.intensity", "12", "0-9"),
            (config(|c| c.targets = vec!["10.0.0.0/33".into()]), "targets", "10.0.0.0/33", "/33"),
            (config(|c| c.discovery.probes = vec!["PS99999".into()]), "discovery.probes", "PS99999", "99999"),
            (config(|c| c.origin.source = Some("nope".into())), "origin.source", "nope", "-S nope"),
            (config(|c| c.ports.first = Some("22,99999".into())), "ports.first", "22,99999", "scan first"),
            (config(|c| c.names.servers = vec!["bogus".into()]), "names.servers", "bogus", "bogus"),
        ];
        for (c, field, value, needle) in cases {
            let e = validate(&c).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.value.contains(value), "{field}: value {:?}", e.value);
            assert!(e.message.contains(needle), "{field}: {e}");
        }
    }

    #[test]
    fn combinations_and_missing_values() {
        let e = validate(&config(|c| c.targets.clear())).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Missing);
        let e = validate(&config(|c| {
            c.ports.spec = Some("80".into());
            c.ports.fast = true;
        }))
        .unwrap_err();
        assert_eq!((e.field, e.kind), ("ports.spec", ConfigErrorKind::Conflict));
        let e = validate(&config(|c| c.service.light = true)).unwrap_err();
        assert!(e.message.contains("needs -sV"), "{e}");
        let e = validate(&config(|c| c.version = CONFIG_VERSION + 1)).unwrap_err();
        assert_eq!(e.field, "version");
        let e = validate(&config(|c| {
            c.output.files = vec![
                rustmap_model::config::OutputFile { format: OutputFormat::Xml, path: "-".into() },
                rustmap_model::config::OutputFile { format: OutputFormat::Json, path: "-".into() },
            ]
        }))
        .unwrap_err();
        assert_eq!(e.field, "output.files");
    }

    #[test]
    fn a_good_config_becomes_a_plan() {
        let plan = validate(&config(|c| {
            c.ports.spec = Some("22,80,443".into());
            c.timing.template = Some(4);
            c.timing.max_rate = Some(500.0);
            c.output.all_base = Some("/tmp/base".into());
        }))
        .unwrap();
        assert_eq!(plan.ports.tcp.len(), 3);
        assert_eq!(plan.timing.max_rate, Some(500.0));
        assert_eq!(plan.files.len(), 6);
        assert_eq!(plan.scan_types, vec![ScanType::Connect]);
    }

    #[test]
    fn ports_first_keeps_only_ports_the_scan_has() {
        let mut c = ScanConfig::new(["127.0.0.1"]);
        c.scan_types = vec![ScanType::Connect];
        c.ports.spec = Some("20-30,80".into());
        c.ports.first = Some("T:22,80,443,U:53".into());
        let plan = validate(&c).unwrap();
        assert_eq!(plan.first_ports.tcp, vec![22, 80]);
        assert!(plan.first_ports.udp.is_empty(), "no UDP scan");
    }

    #[test]
    fn proxy_urls_are_checked_and_their_errors_name_the_value() {
        for (url, needle) in [
            ("http://127.0.0.1:8080", "unsupported proxy scheme \"http\""),
            ("socks5://127.0.0.1", "no port"),
            ("socks5://127.0.0.1:port", "invalid proxy port \"port\""),
            ("socks5://127.0.0.1:0", "invalid proxy port \"0\""),
            ("127.0.0.1:1080", "expected socks5://"),
            ("socks5://alice@127.0.0.1:1080", "credentials"),
        ] {
            let e = validate(&config(|c| c.origin.proxy = Some(url.into()))).unwrap_err();
            assert_eq!((e.field, e.kind), ("origin.proxy", ConfigErrorKind::Invalid), "{url}: {e}");
            assert!(e.message.starts_with("--proxy: ") && e.message.contains(needle), "{url}: {e}");
        }
        // The password does not come back in the error's value.
        let e = validate(&config(|c| c.origin.proxy = Some("socks5://alice:hunter2@127.0.0.1:x".into()))).unwrap_err();
        assert_eq!(e.value, "socks5://alice:***@127.0.0.1:x");
        assert!(!e.message.contains("hunter2"), "{e}");
    }

    fn proxied(f: impl FnOnce(&mut ScanConfig)) -> ScanConfig {
        config(|c| {
            c.scan_types.clear();
            c.origin.proxy = Some("socks5://127.0.0.1:1080".into());
            f(c);
        })
    }

    #[test]
    fn a_proxy_means_a_connect_scan_without_discovery() {
        // As root too: the default is the connect scan, not SYN.
        let plan = validate(&proxied(|c| c.origin.privileged = Some(true))).unwrap();
        assert_eq!(plan.scan_types, [ScanType::Connect]);
        assert!(plan.skip_discovery, "discovery probes would bypass the proxy: -Pn implied");
        assert!(plan.notices.iter().any(|n| n.contains("as -Pn")), "{:?}", plan.notices);
        assert_eq!(plan.timing.max_parallelism, PROXY_PARALLELISM);
        // No notice when the user said -Pn; -sV says what it leaves out.
        let plan = validate(&proxied(|c| {
            c.discovery.skip = true;
            c.service.enabled = true;
            c.timing.max_parallelism = Some(500);
        }))
        .unwrap();
        assert!(!plan.notices.iter().any(|n| n.contains("as -Pn")), "{:?}", plan.notices);
        assert!(plan.notices.iter().any(|n| n.contains("UDP and QUIC")), "{:?}", plan.notices);
        assert_eq!(plan.timing.max_parallelism, 500, "--max-parallelism is the user's");
        // -sL sends nothing: allowed.
        validate(&proxied(|c| c.mode = ScanMode::List)).unwrap();
    }

    #[test]
    fn raw_probes_with_a_proxy_are_refused_naming_why() {
        for t in [ScanType::Syn, ScanType::Udp, ScanType::Ack, ScanType::Fin, ScanType::SctpInit] {
            let e = validate(&proxied(|c| {
                c.scan_types = vec![t];
                c.origin.privileged = Some(true);
            }))
            .unwrap_err();
            assert_eq!((e.field, e.kind), ("scan_types", ConfigErrorKind::Conflict), "{t:?}");
            assert!(e.message.contains("bypass the proxy") && e.message.contains("only -sT"), "{e}");
        }
        let e = validate(&proxied(|c| c.mode = ScanMode::Ping)).unwrap_err();
        assert_eq!((e.field, e.kind), ("mode", ConfigErrorKind::Conflict), "{e}");
        for probe in ["PE", "PS22", "PR", "PH"] {
            let e = validate(&proxied(|c| c.discovery.probes = vec![probe.into()])).unwrap_err();
            assert_eq!(e.field, "discovery.probes", "{probe}: {e}");
            assert!(e.message.contains(&format!("-{probe} cannot go through --proxy")), "{e}");
        }
        validate(&proxied(|c| c.discovery.probes = vec!["Pn".into()])).unwrap();
        let e = validate(&proxied(|c| c.origin.source = Some("127.0.0.1".into()))).unwrap_err();
        assert_eq!(e.field, "origin.source");
        let e = validate(&proxied(|c| c.origin.interface = Some("lo".into()))).unwrap_err();
        assert_eq!(e.field, "origin.interface");
        // Traceroute, MTU discovery and the evasion options send raw packets too.
        for (set, field) in [
            (&(|c: &mut ScanConfig| c.path.traceroute = true) as &dyn Fn(&mut ScanConfig), "path.traceroute"),
            (&|c: &mut ScanConfig| c.path.mtu_discovery = true, "path.mtu_discovery"),
            (&|c: &mut ScanConfig| c.evasion.decoys = Some("198.18.0.201".into()), "evasion"),
        ] {
            let e = validate(&proxied(|c| {
                c.origin.privileged = Some(true);
                set(c);
            }))
            .unwrap_err();
            assert_eq!((e.field, e.kind), (field, ConfigErrorKind::Conflict), "{e}");
        }
    }

    #[test]
    fn the_proxy_password_is_not_in_the_reported_config() {
        let url = "socks5://alice:hunter2@127.0.0.1:1080";
        let plan = validate(&proxied(|c| {
            c.origin.proxy = Some(url.into());
            c.args = format!("rustmap --proxy {url} -p 22 127.0.0.1");
        }))
        .unwrap();
        let shown = serde_json::to_string(plan.config()).unwrap();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(plan.config().origin.proxy.as_deref(), Some("socks5://alice:***@127.0.0.1:1080"));
        assert_eq!(plan.config().args, "rustmap --proxy socks5://alice:***@127.0.0.1:1080 -p 22 127.0.0.1");
        // The plan still has the real credentials to use.
        assert_eq!(plan.proxy.as_ref().and_then(|p| p.credentials.as_ref()).map(|c| c.password()), Some("hunter2"));
    }

    #[test]
    fn socks5h_keeps_names_off_local_dns() {
        let plan = validate(&proxied(|c| c.origin.proxy = Some("socks5h://127.0.0.1:1080".into()))).unwrap();
        assert_eq!(plan.reverse_dns, ReverseDns::Never);
        let plan = validate(&proxied(|c| {
            c.origin.proxy = Some("socks5h://127.0.0.1:1080".into());
            c.names.reverse = ReverseDns::Always;
        }))
        .unwrap();
        assert_eq!(plan.reverse_dns, ReverseDns::Always, "-R still asks");
        let plan = validate(&proxied(|_| {})).unwrap();
        assert_eq!(plan.reverse_dns, ReverseDns::UpHosts, "socks5://: names resolved here, as without a proxy");
    }

    #[test]
    fn privileged_and_unprivileged_override_the_capabilities() {
        // Whatever this process has: --privileged means SYN by default, --unprivileged connect.
        let assumed = |p: bool| {
            config(|c| {
                c.scan_types.clear();
                c.origin.privileged = Some(p);
            })
        };
        let plan = validate(&assumed(true)).unwrap();
        assert!(plan.raw && plan.scan_types == [ScanType::Syn]);
        let plan = validate(&assumed(false)).unwrap();
        assert!(!plan.raw && plan.scan_types == [ScanType::Connect]);
        let e = validate(&config(|c| {
            c.scan_types = vec![ScanType::Udp];
            c.origin.privileged = Some(false);
        }))
        .unwrap_err();
        assert_eq!((e.kind, e.value.as_str()), (ConfigErrorKind::Privilege, "-sU"));
        assert!(e.message.contains("--unprivileged"), "{e}");
    }
}
