//! Matching rules and what a match reports: a rule's version bounds (CPE 2.3 range semantics),
//! the words for a range, the summary of a description, the back-port flag, and which
//! (vendor, product, version) keys a detected service is looked up by.

use crate::cpe;
use crate::version::{compare, leading_token};
use crate::ServiceQuery;
use std::cmp::Ordering;

/// One match rule: a vulnerable CPE name with optional version bounds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Rule {
    /// `a`, `o` or `h`.
    pub part: String,
    /// Lower-case vendor.
    pub vendor: String,
    /// Lower-case product.
    pub product: String,
    /// An exact version, or `*` for a range (or every version when no bound is set).
    pub version: String,
    /// `versionStartIncluding` (`>=`).
    pub start_incl: Option<String>,
    /// `versionStartExcluding` (`>`).
    pub start_excl: Option<String>,
    /// `versionEndIncluding` (`<=`).
    pub end_incl: Option<String>,
    /// `versionEndExcluding` (`<`).
    pub end_excl: Option<String>,
}

impl Rule {
    /// Whether the rule has any bound.
    fn bounded(&self) -> bool {
        self.start_incl.is_some() || self.start_excl.is_some() || self.end_incl.is_some() || self.end_excl.is_some()
    }

    /// Whether `version` (a known version) is inside the rule: an exact version matches only
    /// itself; `*` matches within every bound given, or every version without bounds.
    pub fn matches(&self, version: &str) -> bool {
        if self.version != "*" {
            return compare(version, &self.version) == Ordering::Equal;
        }
        let ok = |b: &Option<String>, f: fn(Ordering) -> bool| b.as_deref().is_none_or(|b| f(compare(version, b)));
        ok(&self.start_incl, |o| o != Ordering::Less)
            && ok(&self.start_excl, |o| o == Ordering::Greater)
            && ok(&self.end_incl, |o| o != Ordering::Greater)
            && ok(&self.end_excl, |o| o == Ordering::Less)
    }

    /// The rule's bounds in words: `>= 8.5p1, < 9.8p1`, `= 3.0.3`, `all versions`.
    pub fn range_words(&self) -> String {
        if self.version != "*" {
            return format!("= {}", self.version);
        }
        if !self.bounded() {
            return "all versions".into();
        }
        let mut w = Vec::new();
        if let Some(v) = &self.start_incl {
            w.push(format!(">= {v}"));
        }
        if let Some(v) = &self.start_excl {
            w.push(format!("> {v}"));
        }
        if let Some(v) = &self.end_incl {
            w.push(format!("<= {v}"));
        }
        if let Some(v) = &self.end_excl {
            w.push(format!("< {v}"));
        }
        w.join(", ")
    }
}

/// The longest summary, in characters.
const SUMMARY_MAX: usize = 200;

/// A description's summary: whitespace collapsed, cut after the first sentence end (`.`, `!` or
/// `?` followed by a space or the end) within 200 characters, else the first 200 characters
/// and `…`.
pub(crate) fn summary(description: &str) -> String {
    let text = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate().take(SUMMARY_MAX) {
        if matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| *n == ' ') {
            return chars[..=i].iter().collect();
        }
    }
    if chars.len() <= SUMMARY_MAX {
        return text;
    }
    let mut s: String = chars[..SUMMARY_MAX].iter().collect();
    s.push('…');
    s
}

/// Whether a detected version string carries a distribution's package revision, so that the
/// distribution may have back-ported a fix without changing the upstream version.
///
/// True when the string (case-insensitively) names a distribution (`debian`, `ubuntu`,
/// `raspbian`, `centos`, `red hat`, `redhat`, `rhel`, `fedora`, `suse`, `alpine`, `amazon`), or
/// carries a Debian revision (`deb` then a digit: `+deb12u10`), an Enterprise Linux one (`el`
/// then a digit after `.` or `_`: `.el9`), `+dfsg`, a `~`, or a `-` followed by a digit right after
/// the upstream version (`1.22.1-9`).
pub(crate) fn backport(version: &str) -> bool {
    let l = version.to_ascii_lowercase();
    const NAMES: &[&str] =
        &["debian", "ubuntu", "raspbian", "centos", "red hat", "redhat", "rhel", "fedora", "suse", "alpine", "amazon"];
    if NAMES.iter().any(|n| l.contains(n)) || l.contains('~') || l.contains("+dfsg") {
        return true;
    }
    let b = l.as_bytes();
    let digit_at = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    for (i, _) in l.match_indices("deb") {
        if digit_at(i + 3) {
            return true;
        }
    }
    for (i, _) in l.match_indices("el") {
        if i > 0 && matches!(b[i - 1], b'.' | b'_') && digit_at(i + 2) {
            return true;
        }
    }
    let first = l.split_whitespace().next().unwrap_or("");
    if let Some(tok) = leading_token(first) {
        if let Some(pos) = first.find(tok) {
            let rest = &first.as_bytes()[pos + tok.len()..];
            if rest.first() == Some(&b'-') && rest.get(1).is_some_and(|c| c.is_ascii_digit()) {
                return true;
            }
        }
    }
    false
}

/// One key a service is looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// What the result's `matched` says: the CPE as given, or `product version`.
    pub matched: String,
    /// `a`, `o` or `h`.
    pub part: String,
    /// Lower-case vendor.
    pub vendor: String,
    /// Lower-case product.
    pub product: String,
    /// The version the rules are checked against (`None`: no rule can match).
    pub version: Option<String>,
}

/// The lookup keys of a service from its CPEs. A CPE without a version takes the leading
/// version token of the detected version, for applications (`a`) only: an operating-system CPE
/// (`cpe:/o:linux:linux_kernel`) next to an application's version is not that system's version.
pub(crate) fn cpe_keys(svc: &ServiceQuery<'_>) -> Vec<Key> {
    let fallback = svc.version.and_then(leading_token);
    let mut keys = Vec::new();
    for raw in svc.cpes {
        let Some(c) = cpe::parse(raw) else { continue };
        let version = match c.version {
            Some(v) => leading_token(&v).map(str::to_string).or(Some(v)),
            None if c.part == "a" => fallback.map(str::to_string),
            None => None,
        };
        keys.push(Key { matched: raw.clone(), part: c.part, vendor: c.vendor, product: c.product, version });
    }
    keys
}

/// The product name as a CPE product: lower-cased, spaces as `_` (`Net-SNMP` → `net-snmp`,
/// `Apache Tomcat` → `apache_tomcat`).
pub(crate) fn product_key(product: &str) -> String {
    product.trim().to_ascii_lowercase().split_whitespace().collect::<Vec<_>>().join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(si: Option<&str>, se: Option<&str>, ei: Option<&str>, ee: Option<&str>) -> Rule {
        Rule {
            part: "a".into(),
            vendor: "v".into(),
            product: "p".into(),
            version: "*".into(),
            start_incl: si.map(Into::into),
            start_excl: se.map(Into::into),
            end_incl: ei.map(Into::into),
            end_excl: ee.map(Into::into),
        }
    }

    #[test]
    fn each_bound_at_its_edge() {
        let r = range(Some("8.5p1"), None, None, Some("9.8p1"));
        assert!(!r.matches("8.5"));
        assert!(r.matches("8.5p1"));
        assert!(r.matches("9.2p1"));
        assert!(r.matches("9.8"));
        assert!(!r.matches("9.8p1"));
        let r = range(None, Some("2.0"), Some("3.0"), None);
        assert!(!r.matches("2.0"));
        assert!(!r.matches("2.0.0"));
        assert!(r.matches("2.0.1"));
        assert!(r.matches("3.0"));
        assert!(r.matches("3.0.0"));
        assert!(!r.matches("3.0.1"));
        assert_eq!(r.range_words(), "> 2.0, <= 3.0");
        assert_eq!(range(Some("8.5p1"), None, None, Some("9.8p1")).range_words(), ">= 8.5p1, < 9.8p1");
    }

    #[test]
    fn exact_and_unbounded_rules() {
        let mut r = range(None, None, None, None);
        assert!(r.matches("0.1"));
        assert_eq!(r.range_words(), "all versions");
        r.version = "3.0.3".into();
        assert!(r.matches("3.0.3"));
        assert!(!r.matches("3.0.2"));
        assert!(!r.matches("3.0.4"));
        assert_eq!(r.range_words(), "= 3.0.3");
    }

    #[test]
    fn summaries() {
        assert_eq!(summary("One. Two."), "One.");
        assert_eq!(summary("Apache 2.4.49 is bad.\nReally."), "Apache 2.4.49 is bad.");
        assert_eq!(summary("No end"), "No end");
        let long = "x".repeat(250);
        let s = summary(&long);
        assert_eq!(s.chars().count(), 201);
        assert!(s.ends_with('…'));
        let late = format!("{} end.", "y ".repeat(120));
        assert!(summary(&late).ends_with('…'));
    }

    #[test]
    fn distribution_versions_are_backports() {
        for v in [
            "9.2p1 Debian 2+deb12u10",
            "8.9p1 Ubuntu 3ubuntu0.10",
            "1.22.1-9",
            "2.4.6-97.el7",
            "1.1.1k-7.el8_6",
            "7.4p1 Raspbian-10+deb9u7",
            "2.3.4+dfsg",
            "1.2~rc1",
            "10.11.6-MariaDB-0+deb12u1",
            "8.0p1 Red Hat",
        ] {
            assert!(backport(v), "{v}");
        }
        for v in ["9.2p1", "3.0.3", "7.0.15", "2.0.0-rc1", "1.3.5b", "2.4.62 (Unix)", "release"] {
            assert!(!backport(v), "{v}");
        }
    }

    #[test]
    fn keys_from_cpes() {
        let cpes = vec!["cpe:/a:openbsd:openssh:9.2p1".to_string(), "cpe:/o:linux:linux_kernel".to_string()];
        let svc = ServiceQuery { product: Some("OpenSSH"), version: Some("9.2p1 Debian 2+deb12u10"), cpes: &cpes };
        let k = cpe_keys(&svc);
        assert_eq!(k[0].version.as_deref(), Some("9.2p1"));
        assert_eq!(k[1].version, None);
        let cpes = vec!["cpe:/a:dovecot:dovecot".to_string()];
        let svc = ServiceQuery { product: Some("Dovecot imapd"), version: Some("2.3.19.1"), cpes: &cpes };
        assert_eq!(cpe_keys(&svc)[0].version.as_deref(), Some("2.3.19.1"));
        assert_eq!(product_key(" Apache  Tomcat "), "apache_tomcat");
    }
}
