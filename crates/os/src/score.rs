//! Weighted fuzzy matching of a fingerprint against the database.
//!
//! For each entry, every test both the fingerprint and the entry have is compared; its weight
//! counts as matched when the entry admits the value. Each service hint counts its weight
//! (`hint_weight` when it has none; all hints together at most [`MAX_HINT_WEIGHT`]), matched
//! when one of the entry's classes has the hint's family. Then
//!
//! ```text
//! agreement = matched weight / compared weight
//! coverage  = compared weight / max(weight of the entry's tests and hints, MIN_EVIDENCE)
//! accuracy  = 100 × agreement × (0.75 + 0.25 × coverage)
//! ```
//!
//! so an entry that agrees on everything it was compared on scores 100 only when all it
//! expects could be checked, and on enough evidence ([`MIN_EVIDENCE`]): sparse fingerprints
//! (passive evidence alone) and entries that say little top out lower. A probe that got no
//! answer, or could not be sent (no open port), lowers the coverage; a probe that was never
//! meant to be sent does not: when the fingerprint is passive evidence alone (`--passive-os`,
//! IPv6 hosts), only the weight of the fingerprint's own tests counts of the entry's, so an entry
//! that expects much ranks by what it was compared on, above a thin entry that merely agrees.
//! Entries compared on no test of the stack itself are left out, whatever the hints say.

use crate::db::{Database, Entry, Expect};
use crate::fingerprint::{Fingerprint, Value};
use crate::observe::Hint;
use rustmap_model::{OsClass, OsGuess};

/// The compared weight below which no entry reaches full accuracy (the TTL and two option
/// layouts, say).
pub const MIN_EVIDENCE: u32 = 60;

/// The most weight all service hints together carry, so that many ports saying the same never
/// outweigh the stack's own answers.
pub const MAX_HINT_WEIGHT: u32 = 45;

/// The prefix of the passive tests (the port scan's SYN-ACKs): a fingerprint of those alone is
/// scored on them alone.
pub const PASSIVE_PREFIX: &str = "passive.";

/// The most service hints counted (one per port is already plenty).
pub const MAX_HINTS: usize = 32;

/// How one entry fared.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    /// The entry.
    pub entry: &'a Entry,
    /// 0-100.
    pub accuracy: u8,
    /// Tests that agreed.
    pub matched: Vec<&'a str>,
    /// Tests that did not: name, what the entry expects, what was seen.
    pub mismatched: Vec<(&'a str, &'a Expect, Value)>,
    /// Weight compared.
    pub compared: u32,
}

/// The entries that compare with `fp`, best first (ties: more compared weight first, then id),
/// at most `limit`.
pub fn rank<'a>(db: &'a Database, fp: &Fingerprint, limit: usize) -> Vec<Match<'a>> {
    let hint_w = |h: &Hint| if h.weight == 0 { db.hint_weight() } else { h.weight.min(100) };
    let passive_only = fp.tests.keys().all(|k| k.starts_with(PASSIVE_PREFIX));
    let mut out: Vec<Match<'a>> = db
        .entries()
        .iter()
        .filter_map(|e| {
            let mut m = Match { entry: e, accuracy: 0, matched: Vec::new(), mismatched: Vec::new(), compared: 0 };
            let mut entry_weight = 0u32;
            let fp_weight: u32 =
                if passive_only { fp.tests.keys().map(|name| db.weight(e, name)).sum() } else { u32::MAX };
            let mut matched = 0u32;
            for (name, exp) in &e.tests {
                let w = db.weight(e, name);
                entry_weight += w;
                let Some(v) = fp.get(name) else { continue };
                m.compared += w;
                if exp.admits(v) {
                    matched += w;
                    m.matched.push(name);
                } else {
                    m.mismatched.push((name, exp, v.clone()));
                }
            }
            // Entries compared on no test of the stack itself are left out: a banner alone
            // says nothing of the stack.
            if m.compared == 0 {
                return None;
            }
            let mut hint_budget = MAX_HINT_WEIGHT;
            let mut hints_weight = 0u32;
            for h in fp.hints.iter().take(MAX_HINTS) {
                let w = hint_w(h).min(hint_budget);
                hint_budget -= w;
                hints_weight += w;
                m.compared += w;
                if e.classes.iter().any(|c| c.family.eq_ignore_ascii_case(&h.family)) {
                    matched += w;
                }
            }
            let agreement = f64::from(matched) / f64::from(m.compared);
            let expected = entry_weight.min(fp_weight) + hints_weight;
            let coverage = (f64::from(m.compared) / f64::from(expected.max(MIN_EVIDENCE))).min(1.0);
            let acc = 100.0 * agreement * (0.75 + 0.25 * coverage);
            m.accuracy = acc.round().clamp(0.0, 100.0) as u8;
            Some(m)
        })
        .collect();
    out.sort_by(|a, b| b.accuracy.cmp(&a.accuracy).then(b.compared.cmp(&a.compared)).then(a.entry.id.cmp(&b.entry.id)));
    out.truncate(limit);
    out
}

impl Match<'_> {
    /// The match as the event stream carries it.
    pub fn to_guess(&self) -> OsGuess {
        OsGuess {
            name: self.entry.name.clone(),
            accuracy: self.accuracy,
            classes: self.entry.classes.iter().map(OsClass::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = r#"{"format":"rustmap-os-db","version":1,"hint_weight":10,"weights":{"seq1.opts":40},"entries":[
        {"id":"lin","name":"Lin","classes":[{"vendor":"L","family":"Linux","device_type":"general purpose"}],
         "tests":{"ttl":64,"seq1.opts":"mss,sack,ts,nop,ws","seq1.win":{"min":64000,"max":65535}}},
        {"id":"win","name":"Win","classes":[{"vendor":"M","family":"Windows","device_type":"general purpose"}],
         "tests":{"ttl":128,"seq1.opts":"mss,nop,ws,nop,nop,sack","seq1.win":[64240,65535]}},
        {"id":"icmp-only","name":"I","classes":[{"vendor":"X","family":"X","device_type":"router"}],
         "tests":{"echo.code":"echo"}}]}"#;

    fn fp(tests: &[(&str, Value)]) -> Fingerprint {
        Fingerprint { tests: tests.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), ..Default::default() }
    }

    /// What the front-ends call an exact match (rustmap's `EXACT`): sparse evidence stays below.
    const EXACT_FLOOR: u8 = 95;

    #[test]
    fn exact_match_scores_100_and_others_less() {
        let db = Database::from_json(DB, "t").unwrap();
        let f = fp(&[
            ("ttl", Value::Int(64)),
            ("seq1.opts", Value::Str("mss,sack,ts,nop,ws".into())),
            ("seq1.win", Value::Int(65160)),
        ]);
        let r = rank(&db, &f, 10);
        assert_eq!(r.len(), 2, "the ICMP-only entry compares on nothing");
        assert_eq!((r[0].entry.id.as_str(), r[0].accuracy), ("lin", 100));
        // Less evidence than MIN_EVIDENCE: agreement alone does not make 100.
        let few = rank(&db, &fp(&[("ttl", Value::Int(64)), ("seq1.win", Value::Int(65160))]), 1);
        assert_eq!((few[0].entry.id.as_str(), few[0].accuracy), ("lin", 85));
        assert_eq!(r[1].entry.id, "win");
        assert!(r[1].accuracy < 30, "{}", r[1].accuracy);
        assert_eq!(r[1].mismatched.len(), 3);
        assert_eq!(r[0].to_guess().classes[0].family, "Linux");
    }

    #[test]
    fn partial_evidence_lowers_accuracy_and_hints_count() {
        let db = Database::from_json(DB, "t").unwrap();
        let mut f = fp(&[("ttl", Value::Int(64))]);
        let only_ttl = rank(&db, &f, 1)[0].accuracy;
        assert!((75..100).contains(&only_ttl), "{only_ttl}");
        f.hints.push(Hint { source: "ssh 22/tcp".into(), family: "linux".into(), weight: 0 });
        let with_hint = rank(&db, &f, 1)[0].accuracy;
        assert!(with_hint > only_ttl, "{with_hint} > {only_ttl}");
        // A hint against the active evidence lowers the match.
        f.hints[0].family = "Windows".into();
        assert!(rank(&db, &f, 1)[0].accuracy < only_ttl);
        assert!(rank(&db, &fp(&[]), 5).is_empty());
        // Hints alone compare no entry: nothing is guessed from banners.
        let mut banners = fp(&[]);
        banners.hints = vec![Hint { source: "22/tcp".into(), family: "Linux".into(), weight: 0 }; 40];
        assert!(rank(&db, &banners, 5).is_empty());
    }

    /// Against a sparse fingerprint (the port scan's SYN-ACKs alone), an entry that expects much
    /// and agrees on more of it ranks above a thin entry that agrees on less; a rich fingerprint
    /// still holds a thin entry to what it could not check.
    #[test]
    fn a_sparse_fingerprint_ranks_by_what_was_compared() {
        let db = Database::from_json(
            r#"{"format":"rustmap-os-db","version":1,"entries":[
            {"id":"rich","name":"Rich","classes":[{"vendor":"R","family":"R","device_type":"general purpose"}],
             "tests":{"passive.ttl":64,"passive.df":true,"passive.win":{"min":14480,"max":65535},"ttl":64,
                      "seq1.opts":"mss,sack,ts,nop,ws","seq2.opts":"mss,sack,ts,nop,ws","seq3.opts":"mss,nop,nop,ts,nop,ws",
                      "seq4.opts":"mss,sack,ts,nop,ws","seq5.opts":"mss,sack,ts,nop,ws","seq6.opts":"mss,sack,ts",
                      "ecn.opts":"mss,nop,nop,sack,nop,ws","t5.flags":"AR","t6.flags":"R","t7.flags":"AR","ts":"ticking",
                      "ts.hz":1000,"ipid.open":"zero","u1.burst":{"max":6},"u1.reply":true,"echo.code":"echo"}},
            {"id":"thin","name":"Thin","classes":[{"vendor":"T","family":"T","device_type":"general purpose"}],
             "tests":{"passive.ttl":64}}]}"#,
            "t",
        )
        .unwrap();
        let passive = fp(&[
            ("passive.ttl", Value::Int(64)),
            ("passive.df", Value::Bool(true)),
            ("passive.win", Value::Int(64240)),
        ]);
        let r = rank(&db, &passive, 2);
        assert_eq!(r[0].entry.id, "rich", "{:?}", r.iter().map(|m| (&m.entry.id, m.accuracy)).collect::<Vec<_>>());
        assert!(r[0].accuracy > r[1].accuracy && r[0].accuracy < EXACT_FLOOR);
        // With a probe's answer among them, what the entry expects and was not seen counts again:
        // the same agreement, less coverage.
        let mut probed = passive.clone();
        probed.tests.insert("ttl".into(), Value::Int(64));
        let r2 = rank(&db, &probed, 2);
        let rich = r2.iter().find(|m| m.entry.id == "rich").unwrap();
        assert!(rich.accuracy < r[0].accuracy, "{} vs {}", rich.accuracy, r[0].accuracy);
    }
}
