//! The capture tool's logic: turns fingerprints that `-O` printed or saved into a database entry
//! (`rustmap --os-entry FILE`, docs/os-detection.md § Adding an entry).
//!
//! It reads what RustMap writes, never anything else: a JSON scan report (`-oJ`, each host's
//! `os_info.fingerprint`), or one fingerprint as the normal output prints it (a JSON object of
//! tests, wrapped at 80 columns). Several captures of one stack — runs with different sysctls,
//! several hosts — merge into one entry: a test on which they agree expects that value, a test on
//! which they differ expects any of the values seen. The result is a whole database file with that
//! one entry, checked as `--os-db` checks files, so it can be tried at once and then merged by
//! hand into a database.

use crate::db::{Class, Database, DbError, Entry, Expect, Range, MAX_ANY_OF};
use crate::fingerprint::{test_def, Value};
use std::collections::BTreeMap;

/// The most fingerprints merged into one entry.
pub const MAX_CAPTURES: usize = 4096;

/// One fingerprint read from a file: the host it came from (when the file names one) and its tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The host's address, from a scan report; `None` for a bare fingerprint.
    pub host: Option<String>,
    /// Test name → value.
    pub tests: BTreeMap<String, Value>,
}

/// Why captures could not be read or merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The text is neither a RustMap JSON report nor a fingerprint.
    #[error("{origin}: {what}")]
    Unreadable {
        /// The file.
        origin: String,
        /// What is wrong.
        what: String,
    },
    /// The resulting entry fails the database's checks (a bad id, class or CPE).
    #[error(transparent)]
    Entry(#[from] DbError),
}

/// The fingerprints in `text` (a `-oJ` report or one printed fingerprint); `origin` names the file
/// in errors. Hosts without a fingerprint are skipped; a file with none is an error.
pub fn read(text: &str, origin: &str) -> Result<Vec<Capture>, CaptureError> {
    let bad = |what: String| CaptureError::Unreadable { origin: origin.into(), what };
    let doc: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        // The normal output wraps the fingerprint at 80 columns, inside strings too: its line
        // breaks are never part of the JSON, so a copied block parses once they are removed.
        Err(first) => serde_json::from_str(&text.replace(['\r', '\n'], ""))
            .map_err(|_| bad(format!("not JSON ({first}): expected a RustMap -oJ report or a fingerprint")))?,
    };
    let mut out = Vec::new();
    if let Some(hosts) = doc.get("hosts").and_then(|h| h.as_array()) {
        for h in hosts {
            let Some(fp) = h.pointer("/os_info/fingerprint").and_then(|f| f.as_str()) else { continue };
            let host = h.get("addr").and_then(|a| a.as_str()).map(str::to_string);
            let parsed: serde_json::Value = serde_json::from_str(fp).map_err(|e| {
                bad(format!("host {}: its fingerprint is not JSON: {e}", host.as_deref().unwrap_or("?")))
            })?;
            let tests = tests_of(&parsed).map_err(|w| bad(format!("host {}: {w}", host.as_deref().unwrap_or("?"))))?;
            out.push(Capture { host, tests });
        }
        if out.is_empty() {
            return Err(bad("no host in this report has an OS fingerprint (was it a -O scan?)".into()));
        }
    } else {
        out.push(Capture { host: None, tests: tests_of(&doc).map_err(bad)? });
    }
    if out.len() > MAX_CAPTURES {
        return Err(bad(format!("{} fingerprints, more than the {MAX_CAPTURES} merged at once", out.len())));
    }
    Ok(out)
}

/// The tests of a fingerprint as RustMap writes it (`os_info.fingerprint`: one JSON object), each
/// a known test with a value of its kind.
pub fn tests_from_json(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    tests_of(&v)
}

/// A fingerprint's tests, each a known test with a value of its kind.
fn tests_of(v: &serde_json::Value) -> Result<BTreeMap<String, Value>, String> {
    let obj = v.as_object().ok_or("expected a JSON object of tests (\"ttl\": 64, ...)")?;
    let mut tests = BTreeMap::new();
    for (name, raw) in obj {
        let def = test_def(name).ok_or_else(|| format!("unknown test {name:?}"))?;
        let value: Value =
            serde_json::from_value(raw.clone()).map_err(|_| format!("test {name:?}: {raw} is not a value"))?;
        if !def.kind.admits(&value) {
            return Err(format!("test {name:?}: {raw} is not a value of its kind"));
        }
        tests.insert(name.clone(), value);
    }
    if tests.is_empty() {
        return Err("a fingerprint with no tests".into());
    }
    Ok(tests)
}

/// What the new entry is called and classed as.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its class.
    pub class: Class,
    /// Where the captures came from.
    pub source: String,
}

/// One entry admitting every capture: agreed tests expect their value, the others any value seen
/// (a test missing from a capture was not measured there and adds nothing). Checked as the
/// database checks entries.
pub fn entry(captures: &[Capture], info: EntryInfo) -> Result<Entry, CaptureError> {
    let mut seen: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for c in captures {
        for (name, v) in &c.tests {
            let vals = seen.entry(name).or_default();
            if !vals.contains(&v) {
                vals.push(v);
            }
        }
    }
    let tests = seen
        .into_iter()
        .map(|(name, mut vals)| {
            let ints: Vec<i64> =
                vals.iter().filter_map(|v| if let Value::Int(i) = v { Some(*i) } else { None }).collect();
            let exp = match vals.as_slice() {
                [one] => Expect::Is((*one).clone()),
                // More numbers than an any-of list may hold (a database caps them at 64): their range.
                _ if vals.len() > MAX_ANY_OF && ints.len() == vals.len() => {
                    Expect::Range(Range { min: ints.iter().min().copied(), max: ints.iter().max().copied() })
                }
                _ => {
                    vals.sort();
                    Expect::AnyOf(vals.into_iter().cloned().collect())
                }
            };
            (name.to_string(), exp)
        })
        .collect();
    let e = Entry {
        id: info.id,
        name: info.name,
        classes: vec![info.class],
        source: info.source,
        tests,
        weights: BTreeMap::new(),
    };
    Database::with_entries(vec![e.clone()], "the new entry")?;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> EntryInfo {
        EntryInfo {
            id: "lab-x".into(),
            name: "X".into(),
            class: Class {
                vendor: "V".into(),
                family: "F".into(),
                generation: None,
                device_type: "specialized".into(),
                cpe: vec![],
            },
            source: "lab".into(),
        }
    }

    #[test]
    fn reads_a_report_and_a_wrapped_printed_fingerprint() {
        let report = r#"{"hosts":[{"addr":"198.18.0.18","os_info":{"fingerprint":"{\"ttl\":255,\"seq1.opts\":\"mss\"}"}},
            {"addr":"198.18.0.99"}]}"#;
        let got = read(report, "r.json").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].host.as_deref(), Some("198.18.0.18"));
        assert_eq!(got[0].tests["ttl"], Value::Int(255));
        let printed = "{\"seq1.opts\":\"mss,n\nop,ws\",\"ttl\":6\n4}\n";
        let got = read(printed, "p.txt").unwrap();
        assert_eq!(got[0].tests["seq1.opts"], Value::Str("mss,nop,ws".into()));
        assert_eq!(got[0].tests["ttl"], Value::Int(64));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = |t: &str| read(t, "f").unwrap_err().to_string();
        assert!(e("nonsense").contains("not JSON"), "{}", e("nonsense"));
        assert!(e(r#"{"tll":64}"#).contains("unknown test \"tll\""));
        assert!(e(r#"{"ttl":"64"}"#).contains("\"ttl\""));
        assert!(e(r#"{"hosts":[{"addr":"a"}]}"#).contains("no host"));
        assert!(e("[1]").contains("JSON object"));
        assert!(e("{}").contains("no tests"));
    }

    #[test]
    fn captures_merge_into_one_checked_entry() {
        let a = read(r#"{"ttl":64,"seq1.win":65160,"ts":"ticking"}"#, "a").unwrap();
        let b = read(r#"{"ttl":64,"seq1.win":64240}"#, "b").unwrap();
        let all: Vec<Capture> = a.into_iter().chain(b).collect();
        let e = entry(&all, info()).unwrap();
        assert_eq!(e.tests["ttl"], Expect::Is(Value::Int(64)));
        assert_eq!(e.tests["seq1.win"], Expect::AnyOf(vec![Value::Int(64240), Value::Int(65160)]));
        assert_eq!(e.tests["ts"], Expect::Is(Value::Str("ticking".into())));
        // More distinct numbers than an any-of list holds: a range instead
        let many: Vec<Capture> =
            (0..100).map(|i| read(&format!("{{\"isn.rate\":{}}}", 10 + i), "n").unwrap().remove(0)).collect();
        let e = entry(&many, info()).unwrap();
        assert_eq!(e.tests["isn.rate"], Expect::Range(Range { min: Some(10), max: Some(109) }));
        let mut bad = info();
        bad.id = "has space".into();
        assert!(entry(&all, bad).unwrap_err().to_string().contains("id must be"));
    }
}
