//! The pipeline's OS detection stage (`-O`): for each finished host that is up, after service
//! detection (whose OS hints it uses) and before the trace stage. The engine's [`OsProber`]
//! sends the probes; `rustmap-os` derives the fingerprint and ranks the database's entries; this
//! side picks the ports, folds guesses and measurements into the host and returns its `OsMatch`
//! event.

use crate::validate::{conflict, invalid, privilege_err, ConfigError};
use rustmap_engine::os::{OsProber, OsRequest};
use rustmap_engine::trace::port_in;
use rustmap_model::config::ScanMode;
use rustmap_model::{
    HostResult, HostStatus, OsGuess, OsInfo, OsPortUsed, PortState, Protocol, ScanConfig, ScanEvent, SequenceInfo,
};
use rustmap_os::observe::Hint;
use rustmap_os::sequence::TsClock;
use rustmap_os::{rank, Database, Fingerprint, Observations};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Accuracy from which the best entry is reported as the host's OS (`OS details`), not a guess.
pub const EXACT: u8 = 95;
/// Accuracy from which entries are shown as guesses without `--osscan-guess`.
pub const CLOSE: u8 = 88;
/// Accuracy from which entries are shown as guesses with `--osscan-guess`.
pub const GUESS: u8 = 50;
/// Guesses kept per host.
pub const MAX_GUESSES: usize = 8;

/// What `-O` and its options asked for, checked.
#[derive(Debug, Clone)]
pub struct OsPlan {
    /// The fingerprint database.
    pub db: Arc<Database>,
    /// Only hosts with an open and a closed TCP port (`--osscan-limit`).
    pub limit: bool,
    /// Show less likely guesses too (`--osscan-guess`).
    pub guess: bool,
    /// Rounds of probes per host (`--max-os-tries`).
    pub tries: u8,
    /// No probes: guesses from the port scan's SYN-ACKs alone (`--passive-os`).
    pub passive_only: bool,
}

/// `-O`, `--osscan-limit`, `--osscan-guess`, `--max-os-tries` and `--os-db`. The options need
/// `-O`; `-O` needs raw sockets and a port scan, and cannot go through a proxy.
pub(crate) fn os_plan(c: &ScanConfig, raw: bool, syn: bool) -> Result<Option<OsPlan>, ConfigError> {
    let o = &c.os;
    if !o.enabled && !o.passive {
        let given = [
            (o.limit, "os.limit", "--osscan-limit"),
            (o.guess, "os.guess", "--osscan-guess"),
            (o.max_tries.is_some(), "os.max_tries", "--max-os-tries"),
            (o.db.is_some(), "os.db", "--os-db"),
        ];
        if let Some((_, field, flag)) = given.into_iter().find(|g| g.0) {
            return Err(conflict(field, format!("{flag} only applies with -O (or -A, --passive-os)")));
        }
        return Ok(None);
    }
    if o.passive {
        return passive_plan(c, raw, syn);
    }
    match c.mode {
        ScanMode::List => return Err(conflict("os.enabled", "-sL sends nothing: -O cannot be combined with it")),
        ScanMode::Ping => {
            let m = "-O needs a port scan (it probes an open and a closed port the scan found): drop -sn";
            return Err(conflict("os.enabled", m));
        }
        _ => {}
    }
    if c.origin.proxy.is_some() {
        let m = "-O sends raw packets from this machine's own address, which --proxy is there to hide; \
                 only -sT and -sV go through a proxy";
        return Err(conflict("os.enabled", m));
    }
    if !raw {
        let m = if c.origin.privileged == Some(false) {
            "-O sends raw packets, which --unprivileged rules out".to_string()
        } else {
            format!(
                "-O sends raw packets and needs root or CAP_NET_RAW; to run it without sudo, give the binary the \
                 capabilities once: {} (docs/install.md)",
                crate::privilege::GRANT_COMMAND
            )
        };
        return Err(privilege_err("os.enabled", "-O", m));
    }
    let tries = o.max_tries.unwrap_or(2);
    if !(1..=20).contains(&tries) {
        return Err(invalid("os.max_tries", tries.to_string(), format!("--max-os-tries {tries}: give 1 to 20")));
    }
    Ok(Some(OsPlan { db: Arc::new(load_db(c)?), limit: o.limit, guess: o.guess, tries, passive_only: false }))
}

/// `--passive-os`: the raw SYN scan's SYN-ACKs are the evidence (`syn`: the scan has one), so it
/// needs one (not `-sL`, `-sn`, a connect scan or a proxy) and takes no probe rounds.
fn passive_plan(c: &ScanConfig, raw: bool, syn: bool) -> Result<Option<OsPlan>, ConfigError> {
    let o = &c.os;
    let field = "os.passive";
    let why = match c.mode {
        ScanMode::List => Some("-sL sends nothing: --passive-os has no SYN-ACK to read"),
        ScanMode::Ping => Some("--passive-os reads the port scan's SYN-ACKs: drop -sn"),
        _ if c.origin.proxy.is_some() => {
            Some("--passive-os reads the raw port scan's SYN-ACKs; through --proxy the scan is a connect scan")
        }
        _ => None,
    };
    if let Some(m) = why {
        return Err(conflict(field, m));
    }
    if let Some(t) = o.max_tries {
        return Err(conflict(
            "os.max_tries",
            format!("--max-os-tries {t} counts -O's probe rounds; --passive-os sends none"),
        ));
    }
    if !raw {
        let m = "--passive-os reads the SYN-ACKs of a raw SYN scan (-sS), which needs root or CAP_NET_RAW; a connect \
                 scan (-sT) sees no packet headers";
        return Err(privilege_err(field, "--passive-os", m.to_string()));
    }
    if !syn {
        let m = "--passive-os reads the SYN-ACKs of a SYN scan: add -sS (-sF, -sN, -sX, -sA, -sW, -sM and -sU get \
                 no SYN-ACK)";
        return Err(conflict(field, m));
    }
    Ok(Some(OsPlan { db: Arc::new(load_db(c)?), limit: o.limit, guess: o.guess, tries: 0, passive_only: true }))
}

/// The built-in fingerprint database, or `--os-db`'s.
fn load_db(c: &ScanConfig) -> Result<Database, ConfigError> {
    match &c.os.db {
        None => Database::builtin(),
        Some(path) => {
            let shown = path.display().to_string();
            let bad = |m: String| invalid("os.db", shown.clone(), m);
            let limit = rustmap_os::db::MAX_BYTES as u64;
            let text = crate::osentry::read_bounded(path, limit).map_err(|m| bad(format!("--os-db {shown}: {m}")))?;
            Database::from_json(&text, &shown)
        }
    }
    .map_err(|e| invalid("os.db", "", format!("OS database: {e}")))
}

/// Hosts the stage probes at once (each gets about 48 packets a second for half a second): one
/// with `-T0` to `-T2` or a `--scan-delay`, as many as `--max-rate` allows, else 32.
pub(crate) fn parallel_hosts(t: &rustmap_engine::Timing) -> usize {
    use rustmap_engine::TimingTemplate as T;
    if matches!(t.template, T::Paranoid | T::Sneaky | T::Polite) || !t.scan_delay.is_zero() {
        return 1;
    }
    match t.max_rate {
        Some(r) if r.is_finite() => ((r / 48.0).floor() as usize).clamp(1, 32),
        _ => 32,
    }
}

/// The stage: the prober (none with `--passive-os`) and the plan.
pub(crate) struct OsStage {
    prober: Option<OsProber>,
    plan: OsPlan,
    families: Vec<String>,
}

impl OsStage {
    pub(crate) fn new(prober: Option<OsProber>, plan: OsPlan) -> OsStage {
        let mut families: Vec<String> =
            plan.db.entries().iter().flat_map(|e| e.classes.iter().map(|c| c.family.to_ascii_lowercase())).collect();
        families.sort();
        families.dedup();
        OsStage { prober, plan, families }
    }

    /// Does this host go through the stage?
    pub(crate) fn wants(&self, h: &HostResult) -> bool {
        h.status == HostStatus::Up
            && (!self.plan.limit
                || (port_in(h, Protocol::Tcp, PortState::Open).is_some()
                    && port_in(h, Protocol::Tcp, PortState::Closed).is_some()))
    }

    /// Probe `h`, match its fingerprint, fold guesses and measurements into it, and return its
    /// `OsMatch` event (none when nothing matched, or the stage stopped).
    pub(crate) async fn run(&self, h: &mut HostResult, now_unix: i64) -> Vec<ScanEvent> {
        let open = port_in(h, Protocol::Tcp, PortState::Open);
        let closed = port_in(h, Protocol::Tcp, PortState::Closed);
        let closed_udp = port_in(h, Protocol::Udp, PortState::Closed);
        let mut info = OsInfo::default();
        if open.is_none() || closed.is_none() {
            info.warnings.push(
                "OS detection results may be unreliable: the scan found no open and closed TCP port to probe"
                    .to_string(),
            );
        }
        // The port scan's SYN-ACKs (raw scans keep them with -O): the passive tests, and all the
        // evidence there is with --passive-os and for IPv6 hosts (not probed).
        let passive = std::mem::take(&mut h.passive);
        let probe = match (h.addr, &self.prober) {
            (IpAddr::V4(addr), Some(prober)) => Some((addr, prober)),
            _ => None,
        };
        let probed = probe.is_some();
        let (mut obs, started) = match probe {
            Some((addr, prober)) => {
                let req = OsRequest { addr, open, closed, closed_udp, srtt: h.srtt_us.map(Duration::from_micros) };
                let Some(probed) = prober.probe(req).await else { return Vec::new() };
                probed
            }
            None => {
                info.warnings.clear();
                let m = match (h.addr.is_ipv6(), passive.is_empty()) {
                    (true, true) => {
                        "OS detection probes IPv4 hosts only; this IPv6 host was not probed, and the port \
                                     scan kept no SYN-ACK of it to guess from"
                    }
                    (true, false) => {
                        "OS detection probes IPv4 hosts only: this IPv6 host's guesses come from the port \
                                      scan's SYN-ACKs alone"
                    }
                    (false, true) => {
                        "OS detection (--passive-os): the port scan received no SYN-ACK from this host \
                                      (no open TCP port) to guess from"
                    }
                    (false, false) => "OS detection (--passive-os): guesses from the port scan's SYN-ACKs alone",
                };
                info.warnings.push(m.to_string());
                if passive.is_empty() {
                    h.os_info = Some(Box::new(info));
                    return Vec::new();
                }
                (Observations::default(), std::time::Instant::now())
            }
        };
        rustmap_engine::os::add_passive(&mut obs, started, &passive);
        obs.hints = self.hints(h);
        let fp = Fingerprint::from_observations(&obs);
        for (state, proto, port) in [
            (PortState::Open, Protocol::Tcp, open),
            (PortState::Closed, Protocol::Tcp, closed.filter(|_| probed)),
            (
                PortState::Closed,
                Protocol::Udp,
                obs.u1.as_ref().and(Some(closed_udp.unwrap_or(rustmap_engine::os::DEFAULT_CLOSED_UDP))),
            ),
        ] {
            if let Some(port) = port {
                info.ports_used.push(OsPortUsed { state, protocol: proto, port });
            }
        }
        let guesses = self.judge(&fp, &mut info);
        info.distance = fp.distance;
        info.uptime_s = fp.uptime_s;
        info.last_boot_unix = fp.uptime_s.and_then(|u| i64::try_from(u).ok()).map(|u| now_unix - u);
        info.clock_skew_ppm = fp.skew_ppm.filter(|p| p.is_finite()).map(|p| p.round() as i64);
        info.tcp_sequence = fp.isn.map(|s| {
            let values = obs.seq.iter().filter_map(|p| p.reply.as_ref()).map(|r| format!("{:X}", r.seq)).collect();
            SequenceInfo { class: difficulty_words(s.spread_log2()).into(), index: Some(s.difficulty()), values }
        });
        info.ipid_sequence = fp.ipid.map(|c| SequenceInfo {
            class: c.describe().into(),
            index: None,
            values: obs.seq.iter().filter_map(|p| p.reply.as_ref()).map(|r| format!("{:X}", r.ip_id)).collect(),
        });
        info.tcp_ts_sequence = fp.ts.map(|c| SequenceInfo {
            class: match c {
                TsClock::Zero => "zero timestamp".into(),
                TsClock::Unrelated => "random offsets".into(),
                TsClock::Ticking { hz, .. } => format!("{hz}HZ"),
            },
            index: None,
            values: obs
                .seq
                .iter()
                .filter_map(|p| p.reply.as_ref()?.timestamp())
                .map(|(v, _)| format!("{v:X}"))
                .collect(),
        });
        if fp.tests.get("ts").is_some_and(|v| v == &rustmap_os::Value::Str("none".into())) {
            info.tcp_ts_sequence =
                Some(SequenceInfo { class: "none returned (unsupported)".into(), index: None, values: Vec::new() });
        }
        // Kept for every host (reports carry it, `--os-entry` reads it); the normal output and
        // the XML show it only without an exact match, as nmap does.
        if !fp.tests.is_empty() {
            info.fingerprint = Some(fp.tests_json());
        }
        if fp.tests.is_empty() {
            info.warnings.push("OS detection: the host answered none of the OS probes".to_string());
        }
        h.os = guesses.clone();
        h.os_info = Some(Box::new(info));
        if guesses.is_empty() {
            return Vec::new();
        }
        vec![ScanEvent::OsMatch { addr: h.addr, matches: guesses }]
    }

    /// Rank the database against `fp` (its tests and hints): the guesses to report, with the
    /// best entry's agreement and the hints folded into `info`.
    fn judge(&self, fp: &Fingerprint, info: &mut OsInfo) -> Vec<OsGuess> {
        let ranked = rank(&self.plan.db, fp, MAX_GUESSES);
        // From the port scan's SYN-ACKs alone (--passive-os, IPv6 hosts) no entry can be sure:
        // every guess is shown, as with --osscan-guess.
        let passive_only = fp.tests.keys().all(|k| k.starts_with(rustmap_os::score::PASSIVE_PREFIX));
        let floor = if self.plan.guess || passive_only { GUESS } else { CLOSE };
        let best = ranked.first().map_or(0, |m| m.accuracy);
        info.exact = best >= EXACT;
        let guesses: Vec<_> = ranked
            .iter()
            .filter(|m| if info.exact { m.accuracy == best } else { m.accuracy >= floor })
            .map(|m| m.to_guess())
            .collect();
        info.best_agreed = ranked.first().and_then(|m| u32::try_from(m.matched.len()).ok());
        info.best_differs = ranked
            .first()
            .map(|m| {
                m.mismatched
                    .iter()
                    .map(|(name, expected, seen)| format!("{name}: expected {expected}, seen {seen}"))
                    .collect()
            })
            .unwrap_or_default();
        info.hints = crate::oshints::describe(&fp.hints);
        guesses
    }

    /// After the scripts: score `h` again when they added hints (`smb-os-discovery`,
    /// `http-server-header`), from the fingerprint the probes left in its `os_info`. `None` when
    /// nothing changed; else the host's new `OsMatch` events (none when nothing matches now).
    pub(crate) fn rescore(&self, h: &mut HostResult) -> Option<Vec<ScanEvent>> {
        let hints = self.hints(h);
        let info = h.os_info.as_deref_mut()?;
        if crate::oshints::describe(&hints) == info.hints {
            return None;
        }
        let tests = rustmap_os::capture::tests_from_json(info.fingerprint.as_deref()?).ok()?;
        let fp = Fingerprint { tests, hints, ..Fingerprint::default() };
        let guesses = self.judge(&fp, info);
        h.os = guesses.clone();
        Some(if guesses.is_empty() { Vec::new() } else { vec![ScanEvent::OsMatch { addr: h.addr, matches: guesses }] })
    }

    /// What the host's services and scripts say about its OS ([`crate::oshints`]), for
    /// families the database knows.
    fn hints(&self, h: &HostResult) -> Vec<Hint> {
        crate::oshints::hints(h, &self.families)
    }
}

/// Words for how hard the ISNs are to predict, from the spread's log2.
fn difficulty_words(log2_spread: i64) -> &'static str {
    match log2_spread {
        i64::MIN..=2 => "Trivial joke",
        3..=7 => "Easy",
        8..=12 => "Medium",
        13..=17 => "Formidable",
        18..=22 => "Worthy challenge",
        _ => "Good luck!",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ConfigErrorKind;
    use rustmap_model::{ExtraPorts, PortResult, Reason, ReasonCount};

    #[test]
    fn ports_are_found_shown_or_folded() {
        let mut h = HostResult::new("198.18.0.10".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        assert_eq!(port_in(&h, Protocol::Tcp, PortState::Open), None);
        h.ports.push(PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64));
        h.extraports.push(ExtraPorts {
            state: PortState::Closed,
            count: 998,
            reasons: vec![ReasonCount {
                reason: Reason::Reset,
                protocol: Protocol::Tcp,
                count: 998,
                ports: "1-21,23-999".into(),
            }],
        });
        assert_eq!(port_in(&h, Protocol::Tcp, PortState::Open), Some(22));
        assert_eq!(port_in(&h, Protocol::Tcp, PortState::Closed), Some(1));
        assert_eq!(port_in(&h, Protocol::Udp, PortState::Closed), None);
    }

    fn cfg(args: impl FnOnce(&mut ScanConfig)) -> ScanConfig {
        let mut c = ScanConfig { targets: vec!["127.0.0.1".into()], ..ScanConfig::default() };
        args(&mut c);
        c
    }

    /// A plan for a scan that has a SYN scan.
    fn os_plan_of(c: &ScanConfig, raw: bool) -> Result<Option<OsPlan>, ConfigError> {
        os_plan(c, raw, true)
    }

    #[test]
    fn passive_plans_need_a_raw_syn_scan_and_take_no_tries() {
        let passive = |c: &mut ScanConfig| c.os.passive = true;
        let p = os_plan_of(&cfg(passive), true).unwrap().unwrap();
        assert!(p.passive_only);
        // -O and --passive-os: the passive guess replaces the probes.
        let p = os_plan_of(&cfg(|c| (c.os.enabled, c.os.passive) = (true, true)), true).unwrap().unwrap();
        assert!(p.passive_only);
        let e = os_plan_of(&cfg(passive), false).unwrap_err();
        assert_eq!((e.field, e.kind), ("os.passive", ConfigErrorKind::Privilege));
        let e = os_plan(&cfg(passive), true, false).unwrap_err();
        assert!(e.message.contains("-sS"), "{e}");
        let e = os_plan_of(&cfg(|c| (c.os.passive, c.os.max_tries) = (true, Some(3))), true).unwrap_err();
        assert_eq!((e.field, e.kind), ("os.max_tries", ConfigErrorKind::Conflict));
        let e = os_plan_of(&cfg(|c| (c.os.passive, c.mode) = (true, ScanMode::List)), true).unwrap_err();
        assert!(e.message.contains("-sL"), "{e}");
        let p = os_plan_of(&cfg(|c| (c.os.passive, c.os.guess) = (true, true)), true).unwrap().unwrap();
        assert!(p.guess && p.passive_only);
    }

    #[test]
    fn plans_are_checked() {
        assert!(os_plan_of(&cfg(|_| {}), true).unwrap().is_none());
        let e = os_plan_of(&cfg(|c| c.os.guess = true), true).unwrap_err();
        assert_eq!((e.field, e.kind), ("os.guess", ConfigErrorKind::Conflict));
        let e = os_plan_of(&cfg(|c| c.os.enabled = true), false).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Privilege);
        let e = os_plan_of(&cfg(|c| (c.os.enabled, c.mode) = (true, ScanMode::Ping)), true).unwrap_err();
        assert!(e.message.contains("-sn"), "{e}");
        let e = os_plan_of(&cfg(|c| (c.os.enabled, c.os.max_tries) = (true, Some(0))), true).unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("os.max_tries", "0"));
        let p = os_plan_of(&cfg(|c| c.os.enabled = true), true).unwrap().unwrap();
        assert_eq!(p.tries, 2);
        assert!(!p.db.entries().is_empty());
    }

    #[test]
    fn a_bad_database_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("os.json");
        std::fs::write(&f, r#"{"format":"rustmap-os-db","version":1,"entries":[{"id":"x"}]}"#).unwrap();
        let e = os_plan_of(&cfg(|c| (c.os.enabled, c.os.db) = (true, Some(f.clone()))), true).unwrap_err();
        assert_eq!(e.field, "os.db");
        assert!(e.message.contains("os.json"), "{e}");
        let e = os_plan_of(&cfg(|c| (c.os.enabled, c.os.db) = (true, Some("/dev/zero".into()))), true).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        let missing = dir.path().join("nope.json");
        let e = os_plan_of(&cfg(|c| (c.os.enabled, c.os.db) = (true, Some(missing))), true).unwrap_err();
        assert!(e.message.contains("nope.json"), "{e}");
    }
}
