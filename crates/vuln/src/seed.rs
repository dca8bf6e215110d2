//! The bundled seed rules (`data/seed.json`, embedded in the binary): their format, parsing
//! and validation.
//!
//! ```json
//! {
//!   "format": 1,
//!   "seed_version": 3,
//!   "cves": [
//!     {
//!       "id": "CVE-2023-38408",
//!       "cvss": 9.8,
//!       "cvss_version": "3.1",
//!       "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
//!       "published": "2023-07-20",
//!       "summary": "The PKCS#11 feature in ssh-agent ... .",
//!       "kev": { "date_added": "2021-11-03" },
//!       "rules": [
//!         { "vendor": "openbsd", "product": "openssh", "end_excluding": "9.3p2" }
//!       ]
//!     }
//!   ]
//! }
//! ```
//!
//! `format` is the layout's version (1); `seed_version` grows whenever the content changes, and
//! a database imports the seed again when the bundled `seed_version` is newer than the one it
//! recorded. In each rule `part` defaults to `a`, `version` (an exact version) to `*`, and the
//! bounds `start_including`, `start_excluding`, `end_including`, `end_excluding` are optional;
//! an exact version and bounds do not mix. `kev` (optional) takes `date_added` and optionally
//! `due_date`. Unknown fields are errors, so a typo cannot silently drop a bound.

use crate::db::CveRecord;
use crate::matching::Rule;
use crate::{CvssScore, KevInfo, VulnError};
use serde::Deserialize;

/// The seed, as bundled.
const SEED_JSON: &str = include_str!("../data/seed.json");

/// The seed layout version this code reads.
const SEED_FORMAT: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    format: u32,
    seed_version: u32,
    cves: Vec<SeedCve>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedCve {
    id: String,
    cvss: f64,
    cvss_version: String,
    vector: Option<String>,
    published: String,
    summary: String,
    #[serde(default)]
    kev: Option<SeedKev>,
    rules: Vec<SeedRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedKev {
    date_added: String,
    #[serde(default)]
    due_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRule {
    #[serde(default)]
    part: Option<String>,
    vendor: String,
    product: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    start_including: Option<String>,
    #[serde(default)]
    start_excluding: Option<String>,
    #[serde(default)]
    end_including: Option<String>,
    #[serde(default)]
    end_excluding: Option<String>,
}

/// The parsed, validated seed.
pub(crate) struct Seed {
    /// The content's version.
    pub version: u32,
    /// Its CVEs with their rules.
    pub cves: Vec<CveRecord>,
    /// KEV entries the seed knows of: (CVE id, entry).
    pub kev: Vec<(String, KevInfo)>,
}

/// Whether `id` looks like a CVE id: `CVE-YYYY-NNNN` with four or more digits at the end.
pub(crate) fn valid_cve_id(id: &str) -> bool {
    let mut p = id.split('-');
    matches!((p.next(), p.next(), p.next(), p.next()), (Some("CVE"), Some(y), Some(n), None)
        if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit())
        && (4..=12).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `d` is a `YYYY-MM-DD` date.
fn valid_date(d: &str) -> bool {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
}

/// A version bound: not empty, starts with a digit.
fn valid_bound(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit()) && !v.contains(char::is_whitespace)
}

/// Parse and check a seed document.
pub(crate) fn parse(text: &str) -> Result<Seed, VulnError> {
    let err = |m: String| VulnError::Seed(m);
    let f: SeedFile = serde_json::from_str(text).map_err(|e| err(format!("not a seed document: {e}")))?;
    if f.format != SEED_FORMAT {
        return Err(err(format!("seed format {} (this build reads {SEED_FORMAT})", f.format)));
    }
    let mut cves = Vec::with_capacity(f.cves.len());
    let mut kev = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for c in f.cves {
        let at = |m: &str| err(format!("{}: {m}", c.id));
        if !valid_cve_id(&c.id) {
            return Err(at("not a CVE id"));
        }
        if !seen.insert(c.id.clone()) {
            return Err(at("listed twice"));
        }
        let score = CvssScore::from_f64(c.cvss).ok_or_else(|| at("CVSS score not within 0 to 10"))?;
        if !matches!(c.cvss_version.as_str(), "2.0" | "3.0" | "3.1" | "4.0") {
            return Err(at("cvss_version is not 2.0, 3.0, 3.1 or 4.0"));
        }
        if let Some(v) = &c.vector {
            if c.cvss_version.starts_with('3') && !v.starts_with(&format!("CVSS:{}/", c.cvss_version)) {
                return Err(at("vector does not match cvss_version"));
            }
        }
        if !valid_date(&c.published) {
            return Err(at("published is not YYYY-MM-DD"));
        }
        if c.summary.trim().is_empty() {
            return Err(at("empty summary"));
        }
        if c.rules.is_empty() {
            return Err(at("no rules"));
        }
        let mut rules = Vec::with_capacity(c.rules.len());
        for r in c.rules {
            let part = r.part.unwrap_or_else(|| "a".into());
            if !matches!(part.as_str(), "a" | "o" | "h") || r.vendor.is_empty() || r.product.is_empty() {
                return Err(at("rule without part a/o/h, vendor or product"));
            }
            let bounds = [&r.start_including, &r.start_excluding, &r.end_including, &r.end_excluding];
            if bounds.iter().any(|b| b.as_deref().is_some_and(|b| !valid_bound(b))) {
                return Err(at("a version bound is not a version"));
            }
            let bounded = bounds.iter().any(|b| b.is_some());
            if r.version.is_some() && bounded {
                return Err(at("a rule has both an exact version and bounds"));
            }
            if r.version.as_deref().is_some_and(|v| !valid_bound(v)) {
                return Err(at("exact version is not a version"));
            }
            if r.start_including.is_some() && r.start_excluding.is_some()
                || r.end_including.is_some() && r.end_excluding.is_some()
            {
                return Err(at("a rule has two lower or two upper bounds"));
            }
            rules.push(Rule {
                part,
                vendor: r.vendor.to_ascii_lowercase(),
                product: r.product.to_ascii_lowercase(),
                version: r.version.unwrap_or_else(|| "*".into()),
                start_incl: r.start_including,
                start_excl: r.start_excluding,
                end_incl: r.end_including,
                end_excl: r.end_excluding,
            });
        }
        if let Some(k) = c.kev {
            if !valid_date(&k.date_added) || k.due_date.as_deref().is_some_and(|d| !valid_date(d)) {
                return Err(at("KEV dates are not YYYY-MM-DD"));
            }
            kev.push((c.id.clone(), KevInfo { date_added: k.date_added, due_date: k.due_date }));
        }
        cves.push(CveRecord {
            id: c.id,
            description: c.summary,
            cvss: Some((score, c.cvss_version, c.vector)),
            cvss_v4: None,
            published: Some(c.published),
            last_modified: None,
            rules,
        });
    }
    Ok(Seed { version: f.seed_version, cves, kev })
}

/// The bundled seed.
pub(crate) fn bundled() -> Result<Seed, VulnError> {
    parse(SEED_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::compare;
    use std::cmp::Ordering;

    #[test]
    fn cve_ids() {
        assert!(valid_cve_id("CVE-2023-38408"));
        assert!(valid_cve_id("CVE-2021-1234567"));
        for bad in ["CVE-23-1234", "CVE-2023-123", "cve-2023-1234", "CVE-2023-1234-1", "CVE-2023-12a4", ""] {
            assert!(!valid_cve_id(bad), "{bad}");
        }
    }

    #[test]
    fn bad_seeds_are_errors() {
        let ok = r#"{"format":1,"seed_version":1,"cves":[{"id":"CVE-2000-0001","cvss":5.0,"cvss_version":"3.1",
            "vector":null,"published":"2000-01-01","summary":"x.","rules":[{"vendor":"v","product":"p"}]}]}"#;
        assert!(parse(ok).is_ok());
        for (from, to) in [
            ("\"cvss\":5.0", "\"cvss\":11.0"),
            ("CVE-2000-0001", "CVE-2000-01"),
            ("{\"vendor\":\"v\",\"product\":\"p\"}", ""),
            ("\"product\":\"p\"", "\"product\":\"p\",\"end_exluding\":\"1\""),
            ("\"product\":\"p\"", "\"product\":\"p\",\"end_excluding\":\"x\""),
            ("\"product\":\"p\"", "\"product\":\"p\",\"version\":\"1\",\"end_excluding\":\"2\""),
            ("2000-01-01", "2000-13-01"),
            ("\"format\":1", "\"format\":2"),
        ] {
            assert!(parse(&ok.replace(from, to)).is_err(), "{to}");
        }
    }

    /// The CVSS v3.x base score of a vector (the FIRST specification's formula), to check the
    /// seed's scores against its vectors.
    fn cvss3_base(vector: &str) -> Option<f64> {
        let mut m = std::collections::HashMap::new();
        for kv in vector.split('/').skip(1) {
            let (k, v) = kv.split_once(':')?;
            m.insert(k, v);
        }
        let changed = *m.get("S")? == "C";
        let av = match *m.get("AV")? {
            "N" => 0.85,
            "A" => 0.62,
            "L" => 0.55,
            "P" => 0.2,
            _ => return None,
        };
        let ac = match *m.get("AC")? {
            "L" => 0.77,
            "H" => 0.44,
            _ => return None,
        };
        let pr = match (*m.get("PR")?, changed) {
            ("N", _) => 0.85,
            ("L", false) => 0.62,
            ("L", true) => 0.68,
            ("H", false) => 0.27,
            ("H", true) => 0.5,
            _ => return None,
        };
        let ui = match *m.get("UI")? {
            "N" => 0.85,
            "R" => 0.62,
            _ => return None,
        };
        let cia = |k: &str| match m.get(k).copied() {
            Some("H") => Some(0.56),
            Some("L") => Some(0.22),
            Some("N") => Some(0.0),
            _ => None,
        };
        let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
        let impact = if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15) } else { 6.42 * iss };
        let expl = 8.22 * av * ac * pr * ui;
        let roundup = |x: f64| {
            let i = (x * 100_000.0).round() as i64;
            if i % 10_000 == 0 {
                i as f64 / 100_000.0
            } else {
                ((i / 10_000) + 1) as f64 / 10.0
            }
        };
        if impact <= 0.0 {
            return Some(0.0);
        }
        Some(if changed { roundup((1.08 * (impact + expl)).min(10.0)) } else { roundup((impact + expl).min(10.0)) })
    }

    #[test]
    fn the_bundled_seed_is_valid() {
        let seed = bundled().unwrap();
        assert!(seed.version >= 1);
        assert!(seed.cves.len() >= 40, "{}", seed.cves.len());
        for c in &seed.cves {
            let (score, version, vector) = c.cvss.clone().unwrap();
            assert!(score.tenths() <= 100);
            assert!(!c.rules.is_empty(), "{}", c.id);
            if let (Some(v), true) = (&vector, version.starts_with('3')) {
                let computed = cvss3_base(v).unwrap_or_else(|| panic!("{}: vector {v}", c.id));
                assert_eq!(CvssScore::from_f64(computed), Some(score), "{}: {v} gives {computed}", c.id);
            }
            for r in &c.rules {
                let lows = [&r.start_incl, &r.start_excl];
                let highs = [&r.end_incl, &r.end_excl];
                for lo in lows.iter().filter_map(|b| b.as_deref()) {
                    for hi in highs.iter().filter_map(|b| b.as_deref()) {
                        assert_eq!(compare(lo, hi), Ordering::Less, "{}: {lo} .. {hi}", c.id);
                    }
                }
                for b in lows.iter().chain(highs.iter()).filter_map(|b| b.as_deref()) {
                    assert_eq!(compare(b, b), Ordering::Equal);
                }
                if r.version != "*" {
                    assert!(r.matches(&r.version));
                }
            }
        }
        assert!(seed.cves.iter().any(|c| c.cvss.as_ref().is_some_and(|s| s.0.tenths() >= 90)));
    }
}
