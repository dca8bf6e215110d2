//! [`ScanRequest`]: a scan described by the guide's flat fields — `targets`, `ports`,
//! `scan_type`, `service_detection`, `timing`, `profile`, ... — as the REST API's request body
//! and the Python bindings' keyword arguments spell it, turned into a [`ScanConfig`].
//!
//! The request only translates: a profile is laid down first, then a whole `config` object when
//! one is given, then the flat fields on top. The result is checked by [`crate::validate()`] like
//! any other configuration, so a bad value gets the same [`ConfigError`] (naming the field)
//! whichever front-end it came through. Fields that only this translation knows (`scan_type`'s
//! spellings, `timing`'s) are checked here, with the same error type.

use crate::profile;
use crate::validate::{ConfigError, ConfigErrorKind};
use rustmap_model::{ScanConfig, ScanType};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One value or a list of them (`"targets": "10.0.0.1"` or `["10.0.0.1", "10.0.0.2"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A timing template as a number (`4`), nmap's flag (`"T4"`) or its name (`"aggressive"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TimingValue {
    /// 0 to 5.
    Level(i64),
    /// `"T4"`, `"4"` or `"aggressive"`.
    Name(String),
}

/// A scan in the guide's flat words. Every field is optional but `targets` (or a `config` or
/// `profile` that names targets); unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanRequest {
    /// What to scan: addresses, CIDR blocks, ranges, names.
    pub targets: Option<OneOrMany>,
    /// Ports, as `-p` takes them (`"22,80,U:53"`, `"1-1000"`, `"-"`).
    pub ports: Option<String>,
    /// The most common N ports (`--top-ports`).
    pub top_ports: Option<usize>,
    /// Scan types: nmap's letters (`"S"`, `"SU"`, `"T"`), names (`"syn"`, `"connect"`,
    /// `"udp"`), or a list of either.
    pub scan_type: Option<OneOrMany>,
    /// Service and version detection (`-sV`).
    pub service_detection: Option<bool>,
    /// OS detection (`-O`).
    pub os_detection: Option<bool>,
    /// Timing template (`-T0`..`-T5`).
    pub timing: Option<TimingValue>,
    /// Skip host discovery (`-Pn`).
    pub skip_discovery: Option<bool>,
    /// Targets to leave out (`--exclude`).
    pub exclude: Option<OneOrMany>,
    /// Packets per second, at most (`--max-rate`).
    pub max_rate: Option<f64>,
    /// Packets per second, at least (`--min-rate`).
    pub min_rate: Option<f64>,
    /// Only open ports in the results (`--open`).
    pub open_only: Option<bool>,
    /// Scripts to run (`--script`): names, categories, globs, `and`/`or`/`not`; `"default"` is
    /// `-sC`.
    pub scripts: Option<String>,
    /// Arguments for the scripts (`--script-args`).
    pub script_args: Option<String>,
    /// Known vulnerabilities of the services found (`--vuln-check`; turns on `-sV`).
    pub vuln_check: Option<bool>,
    /// Only CVEs with a CVSS score at least this (`--vuln-min-cvss`; turns on `vuln_check`).
    pub vuln_min_cvss: Option<f64>,
    /// Country, city, location and AS of every host (`--geoip`), from the server's GeoIP databases.
    pub geoip: Option<bool>,
    /// A built-in or saved profile, laid down first.
    pub profile: Option<String>,
    /// A whole [`ScanConfig`], for everything the flat fields do not name.
    pub config: Option<ScanConfig>,
    /// Run the scan on the agents of the server's NATS cluster (`rustmap --api --nats URL`)
    /// instead of the server itself. Not part of the configuration: the front-end decides.
    pub distributed: Option<bool>,
}

fn invalid(field: &'static str, value: impl Into<String>, message: impl Into<String>) -> ConfigError {
    crate::validate::invalid(field, value, message)
}

/// Scan types from one `scan_type` word: a run of nmap letters or a name.
fn scan_types_of(word: &str) -> Result<Vec<ScanType>, ConfigError> {
    let named = match word.to_ascii_lowercase().as_str() {
        "syn" => Some(ScanType::Syn),
        "connect" | "tcp" => Some(ScanType::Connect),
        "ack" => Some(ScanType::Ack),
        "window" => Some(ScanType::Window),
        "maimon" => Some(ScanType::Maimon),
        "fin" => Some(ScanType::Fin),
        "null" => Some(ScanType::Null),
        "xmas" => Some(ScanType::Xmas),
        "udp" => Some(ScanType::Udp),
        "sctp" | "sctp_init" | "init" => Some(ScanType::SctpInit),
        "sctp_cookie_echo" | "cookie_echo" => Some(ScanType::SctpCookieEcho),
        _ => None,
    };
    if let Some(t) = named {
        return Ok(vec![t]);
    }
    // nmap's letters, with or without the leading "s": "S", "sS", "SU".
    let letters = word.strip_prefix('s').filter(|rest| !rest.is_empty()).unwrap_or(word);
    if letters.is_empty() {
        return Err(invalid(
            "scan_type",
            word,
            "scan_type is empty: give a letter (S, T, U, ...) or a name (syn, ...)",
        ));
    }
    letters
        .chars()
        .map(|c| {
            ScanType::from_letter(c).ok_or_else(|| {
                invalid(
                    "scan_type",
                    word,
                    format!(
                        "scan_type {word:?}: unknown scan type; give nmap's letters (S, T, A, W, M, F, N, X, U, Y, Z) \
                         or a name (syn, connect, ack, window, maimon, fin, null, xmas, udp, sctp)"
                    ),
                )
            })
        })
        .collect()
}

fn timing_of(t: &TimingValue) -> Result<u8, ConfigError> {
    let bad = |v: String| {
        invalid(
            "timing",
            v.clone(),
            format!("timing {v}: give 0 to 5, T0 to T5, or paranoid, sneaky, polite, normal, aggressive or insane"),
        )
    };
    match t {
        TimingValue::Level(n) => u8::try_from(*n).ok().filter(|n| *n <= 5).ok_or_else(|| bad(n.to_string())),
        TimingValue::Name(s) => {
            let lower = s.to_ascii_lowercase();
            let digits = lower.strip_prefix('t').unwrap_or(&lower);
            let names = ["paranoid", "sneaky", "polite", "normal", "aggressive", "insane"];
            if let Some(i) = names.iter().position(|n| *n == lower) {
                return Ok(i as u8);
            }
            digits.parse::<u8>().ok().filter(|n| *n <= 5).ok_or_else(|| bad(format!("{s:?}")))
        }
    }
}

impl ScanRequest {
    /// The configuration this request asks for, before [`crate::validate()`], with notes for the
    /// user (what a profile asks for that this build cannot do yet: the scan runs without it, as
    /// on the command line). `profiles` is the directory of saved profiles (`None`: built-in
    /// profiles only).
    pub fn into_config(self, profiles: Option<&Path>) -> Result<(ScanConfig, Vec<String>), ConfigError> {
        let mut notes = Vec::new();
        let mut c = match (&self.profile, self.config) {
            (Some(name), config) => {
                let p = profile::load(name, profiles).map_err(|e| ConfigError {
                    field: "profile",
                    value: name.clone(),
                    kind: ConfigErrorKind::Invalid,
                    message: e.to_string(),
                })?;
                for what in &p.unsupported {
                    notes.push(format!("profile {name}: {what} is not supported yet; the scan runs without it"));
                }
                match config {
                    // A whole configuration replaces the profile's; the profile names a base
                    // only for the flat fields.
                    Some(c) => c,
                    None => p.config,
                }
            }
            (None, Some(c)) => c,
            (None, None) => ScanConfig::default(),
        };
        if let Some(t) = self.targets {
            c.targets = t.into_vec();
        }
        if let Some(p) = self.ports {
            c.ports.spec = Some(p);
        }
        if let Some(n) = self.top_ports {
            c.ports.top = Some(n);
        }
        if let Some(st) = self.scan_type {
            let mut types = Vec::new();
            for w in st.into_vec() {
                for t in scan_types_of(w.trim())? {
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            c.scan_types = types;
        }
        if let Some(v) = self.service_detection {
            c.service.enabled = v;
        }
        if let Some(v) = self.os_detection {
            c.os.enabled = v;
        }
        if let Some(t) = &self.timing {
            c.timing.template = Some(timing_of(t)?);
        }
        if let Some(v) = self.skip_discovery {
            c.discovery.skip = v;
        }
        if let Some(e) = self.exclude {
            c.exclude = e.into_vec();
        }
        if self.max_rate.is_some() {
            c.timing.max_rate = self.max_rate;
        }
        if self.min_rate.is_some() {
            c.timing.min_rate = self.min_rate;
        }
        if let Some(v) = self.open_only {
            c.output.open_only = v;
        }
        if self.scripts.is_some() {
            c.scripts.select = self.scripts;
        }
        if self.script_args.is_some() {
            c.scripts.args = self.script_args;
        }
        if let Some(v) = self.vuln_check {
            c.vuln.check = v;
        }
        if let Some(n) = self.vuln_min_cvss {
            c.vuln.check = true;
            c.vuln.min_cvss = Some(n);
        }
        if let Some(v) = self.geoip {
            c.geoip.enabled = v;
        }
        Ok((c, notes))
    }
}

/// The only addresses a scan may send to (`rustmap --api --api-allow CIDR,...`), given as
/// addresses, CIDR blocks or nmap ranges, never names. Set in
/// [`StartOptions::allow`](crate::StartOptions::allow), it is applied to every address the scan
/// would probe, after names are resolved: a target, a resolved name or a block around one that
/// falls outside is left out with a warning.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    set: rustmap_targets::ExcludeSet,
    text: String,
}

impl AllowList {
    /// Parse a comma-separated list; a name or a bad expression is an error naming it.
    pub fn parse(list: &str) -> Result<AllowList, ConfigError> {
        let set = rustmap_targets::ExcludeSet::parse_list(list)
            .map_err(|e| invalid("allow", list, format!("allow-list {list:?}: {e}")))?;
        if let Some(name) = set.names().next() {
            return Err(invalid(
                "allow",
                name,
                format!("allow-list: {name:?} is a name; give addresses, CIDR blocks or ranges"),
            ));
        }
        if set.is_empty() {
            return Err(invalid("allow", list, "allow-list is empty"));
        }
        Ok(AllowList { set, text: list.to_string() })
    }

    /// May the scan send to `ip`?
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.set.contains(ip)
    }
}

impl std::fmt::Display for AllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<ScanConfig, ConfigError> {
        serde_json::from_str::<ScanRequest>(json).unwrap().into_config(None).map(|(c, _)| c)
    }

    #[test]
    fn the_guides_and_the_prds_bodies_translate() {
        let c = req(r#"{"targets": ["192.0.2.0/24"], "scan_type": "S", "service_detection": true}"#).unwrap();
        assert_eq!(
            (c.targets, c.scan_types, c.service.enabled),
            (vec!["192.0.2.0/24".into()], vec![ScanType::Syn], true)
        );
        let c =
            req(r#"{"targets": ["192.0.2.1"], "ports": "1-1000", "scan_type": "syn", "profile": "quick"}"#).unwrap();
        assert_eq!(c.ports.spec.as_deref(), Some("1-1000"));
        assert_eq!(c.scan_types, vec![ScanType::Syn]);
        assert_eq!(c.timing.template, Some(4), "the quick profile's T4 stays under the flat fields");
        let c = req(r#"{"targets": "192.0.2.1", "scan_type": ["sS", "U"], "timing": "T2"}"#).unwrap();
        assert_eq!((c.scan_types, c.timing.template), (vec![ScanType::Syn, ScanType::Udp], Some(2)));
        let c = req(r#"{"targets": "192.0.2.1", "scan_type": "SU", "timing": "insane"}"#).unwrap();
        assert_eq!((c.scan_types, c.timing.template), (vec![ScanType::Syn, ScanType::Udp], Some(5)));
        let c = req(r#"{"config": {"targets": ["192.0.2.9"], "ports": {"spec": "22"}}, "timing": 3}"#).unwrap();
        assert_eq!(
            (c.targets[0].as_str(), c.ports.spec.as_deref(), c.timing.template),
            ("192.0.2.9", Some("22"), Some(3))
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (json, field) in [
            (r#"{"targets": "x", "scan_type": "Q"}"#, "scan_type"),
            (r#"{"targets": "x", "scan_type": ""}"#, "scan_type"),
            (r#"{"targets": "x", "timing": 9}"#, "timing"),
            (r#"{"targets": "x", "timing": "fast"}"#, "timing"),
            (r#"{"targets": "x", "profile": "nope"}"#, "profile"),
        ] {
            let e = req(json).unwrap_err();
            assert_eq!(e.field, field, "{json}: {e}");
        }
        assert!(serde_json::from_str::<ScanRequest>(r#"{"target": "x"}"#).is_err(), "unknown fields are refused");
        // The profile's OS detection is built: it is set, and nothing is noted as left out.
        let (c, notes) = serde_json::from_str::<ScanRequest>(r#"{"targets": "x", "profile": "full-audit"}"#)
            .unwrap()
            .into_config(None)
            .unwrap();
        assert!(c.os.enabled && notes.is_empty(), "{notes:?}");
        assert!(req(r#"{"targets": "x", "os_detection": true}"#).unwrap().os.enabled);
    }

    #[test]
    fn allow_lists_hold_blocks_and_refuse_names() {
        let a = AllowList::parse("127.0.0.0/8,::1,198.18.0.1-5").unwrap();
        assert!(a.contains("127.9.9.9".parse().unwrap()));
        assert!(a.contains("198.18.0.5".parse().unwrap()));
        assert!(!a.contains("198.18.0.6".parse().unwrap()));
        assert!(!a.contains("10.0.0.1".parse().unwrap()));
        assert_eq!(AllowList::parse("127.0.0.1,example.com").unwrap_err().value, "example.com");
        assert!(AllowList::parse("").is_err());
        assert!(AllowList::parse("10.0.0.0/99").is_err());
    }
}
