//! The check over the whole built-in database (issue 27, the precision rule): every rule is run
//! against the answers written beside it (`example` lines in `data/probes.rmp`), and against
//! version-less variants of them, where each token the rule reads a version from is removed or
//! replaced by a word, a host name or an address. The examples must yield exactly the version
//! they name (and be identified by their own rule, not shadowed by an earlier one); the variants
//! must never yield a version or a CPE version, whichever rule reads them.

use rustmap_detect::db::{Example, Probe, Rule};
use rustmap_detect::matcher::{apply_rule, match_response, Identified};
use rustmap_detect::version::{cpe_version, is_version_token};
use rustmap_detect::{ProbeDb, Transport};

/// What a banner carries where a version would be, when it carries none.
const NOT_VERSIONS: [&[u8]; 6] = [b"", b"Server", b"ready", b"h10.lab.test", b"[198.18.0.10]", b"198.18.0.10"];

fn db() -> ProbeDb {
    ProbeDb::builtin()
}

/// Every rule with the index of its probe.
fn rules(db: &ProbeDb) -> Vec<(usize, &Probe, &Rule)> {
    db.probes().iter().enumerate().flat_map(|(i, p)| p.rules.iter().map(move |r| (i, p, r))).collect()
}

/// Can the rule report a version (its own `version`, or a CPE with a captured part)?
fn reports_version(rule: &Rule) -> bool {
    let t = &rule.templates;
    t.version.is_some() || t.cpe.iter().any(|c| c.text_groups().next().is_some())
}

fn where_(rule: &Rule, ex: &Example) -> String {
    format!(
        "rule at {} ({}), example at {}: {:?}",
        rule.origin,
        rule.service,
        ex.origin,
        String::from_utf8_lossy(&ex.bytes)
    )
}

fn no_version(found: &Option<Identified>) -> Result<(), String> {
    let Some(m) = found else { return Ok(()) };
    if let Some(v) = &m.version {
        return Err(format!("version {v:?} ({} {:?})", m.service, m.product));
    }
    if let Some(c) = m.cpe.iter().find(|c| cpe_version(c).is_some()) {
        return Err(format!("CPE {c:?}"));
    }
    Ok(())
}

#[test]
fn every_rule_has_an_example() {
    let d = db();
    let missing: Vec<String> = rules(&d)
        .into_iter()
        .filter(|(_, _, r)| r.examples.is_empty())
        .map(|(_, p, r)| format!("{} (probe {}, {})", r.origin, p.name, r.service))
        .collect();
    assert!(missing.is_empty(), "rules without an example:\n{}", missing.join("\n"));
}

#[test]
fn every_rule_that_reports_a_version_has_an_example_with_one() {
    let d = db();
    let missing: Vec<String> = rules(&d)
        .into_iter()
        .filter(|(_, _, r)| reports_version(r) && !r.examples.iter().any(|e| e.version.is_some()))
        .map(|(_, p, r)| format!("{} (probe {}, {})", r.origin, p.name, r.service))
        .collect();
    assert!(missing.is_empty(), "rules without an example that names a version:\n{}", missing.join("\n"));
}

#[test]
fn every_rule_yields_exactly_the_versions_of_its_examples() {
    let d = db();
    let mut bad = Vec::new();
    let mut checked = 0;
    for (index, _, rule) in rules(&d) {
        for ex in &rule.examples {
            checked += 1;
            let Some(own) = apply_rule(rule, &ex.bytes) else {
                bad.push(format!("{}: the rule does not match", where_(rule, ex)));
                continue;
            };
            if own.version != ex.version {
                bad.push(format!("{}: version {:?}, want {:?}", where_(rule, ex), own.version, ex.version));
            }
            for c in &own.cpe {
                match cpe_version(c) {
                    Some(_) if ex.version.is_none() => {
                        bad.push(format!("{}: CPE {c:?} has a version", where_(rule, ex)))
                    }
                    Some(v) if !is_version_token(v) => bad.push(format!("{}: CPE version {v:?}", where_(rule, ex))),
                    _ => {}
                }
            }
            // The rule itself identifies the example: no earlier rule of its probe shadows it.
            let first = match_response(&d, index, &ex.bytes);
            if first.as_ref() != Some(&own) {
                bad.push(format!("{}: identified as {first:?} by an earlier rule", where_(rule, ex)));
            }
        }
    }
    assert!(checked > 0);
    assert!(bad.is_empty(), "{} of {checked} examples are wrong:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn version_less_variants_never_yield_a_version() {
    let d = db();
    let mut bad = Vec::new();
    let mut variants = 0;
    for (index, _, rule) in rules(&d) {
        let t = &rule.templates;
        let mut groups: Vec<usize> = t.version.iter().chain(&t.cpe).flat_map(|x| x.text_groups()).collect();
        groups.sort_unstable();
        groups.dedup();
        for ex in rule.examples.iter().filter(|e| e.version.is_some()) {
            let Some(caps) = rule.regex.captures(&ex.bytes) else { continue };
            // Every token the version is read from goes at once: what is left carries no version.
            let mut spans: Vec<(usize, usize)> =
                groups.iter().filter_map(|&g| caps.get(g)).map(|m| (m.start(), m.end())).collect();
            spans.sort_unstable();
            spans.dedup();
            if spans.is_empty() {
                // A version the rule states (`9.6 or later`) or reads as a binary number (`${1:be}`):
                // no token to take away.
                continue;
            }
            for word in NOT_VERSIONS {
                let mut variant = Vec::new();
                let mut at = 0;
                for &(start, end) in &spans {
                    if start < at {
                        continue; // nested in a group already replaced
                    }
                    variant.extend_from_slice(&ex.bytes[at..start]);
                    variant.extend_from_slice(word);
                    at = end;
                }
                variant.extend_from_slice(&ex.bytes[at..]);
                variants += 1;
                if let Err(e) = no_version(&match_response(&d, index, &variant)) {
                    bad.push(format!("{}: as {:?} gives {e}", where_(rule, ex), String::from_utf8_lossy(word)));
                }
            }
        }
    }
    assert!(variants > 0);
    assert!(bad.is_empty(), "{} of {variants} version-less variants yield a version:\n{}", bad.len(), bad.join("\n"));
}

/// The bug of issue 27: ProFTPD's default greeting named "Server" as its version.
#[test]
fn proftpd_default_greeting_has_no_version() {
    let d = db();
    let null = d.index_of(Transport::Tcp, "null").unwrap();
    let m = match_response(&d, null, b"220 ProFTPD Server (Debian) [198.18.0.10]\r\n").unwrap();
    assert_eq!((m.service.as_str(), m.product.as_deref(), m.version.as_deref()), ("ftp", Some("ProFTPD"), None));
    assert_eq!(m.cpe, ["cpe:/a:proftpd:proftpd"]);
    let m = match_response(&d, null, b"220 ProFTPD 1.3.8 Server (Debian) [198.18.0.10]\r\n").unwrap();
    assert_eq!((m.product.as_deref(), m.version.as_deref()), (Some("ProFTPD"), Some("1.3.8")));
    assert_eq!(m.cpe, ["cpe:/a:proftpd:proftpd:1.3.8"]);
}

/// The guard holds for any rule, also a `--probe-db` one that captures too much.
#[test]
fn a_careless_user_rule_cannot_report_a_word_as_version() {
    let text = "probe tcp null\nmatch ftp\n  pattern ^220 Acme FTP (\\S+) (\\S+)\n  product Acme FTP\n  version $1\n  info $2\n  cpe cpe:/a:acme:ftp:$1\n";
    let d = ProbeDb::parse("mine.rmp", text).unwrap();
    let m = match_response(&d, 0, b"220 Acme FTP [198.18.0.10] ready\r\n").unwrap();
    assert_eq!((m.product.as_deref(), m.version, m.info.as_deref()), (Some("Acme FTP"), None, Some("ready")));
    assert_eq!(m.cpe, ["cpe:/a:acme:ftp"]);
    let m = match_response(&d, 0, b"220 Acme FTP 2.1.4 ready\r\n").unwrap();
    assert_eq!((m.version.as_deref(), m.cpe[0].as_str()), (Some("2.1.4"), "cpe:/a:acme:ftp:2.1.4"));
}
