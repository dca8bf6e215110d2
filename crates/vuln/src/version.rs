//! Software version comparison: the one ordering every range check of this crate uses.
//!
//! A version string is cut into runs of ASCII digits and runs of ASCII letters; any other
//! character (`.`, `-`, `_`, `+`, `~`, spaces, anything else) only ends a run. Runs are then
//! compared left to right:
//!
//! - two digit runs compare as numbers (leading zeros ignored, any length: no overflow);
//! - two letter runs compare case-insensitively; a *pre-release* word sorts before any other
//!   letters, and pre-release words rank `dev` < `alpha`/`a` < `beta`/`b` < `milestone`/`m` <
//!   `pre`/`preview` < `rc`;
//! - a pre-release word sorts before a number and before the end of the version
//!   (`1.0rc1 < 1.0`, `1.0rc1 < 1.0.1`);
//! - any other letter run sorts after the end of the version but before a number
//!   (`9.8 < 9.8p1 < 9.8.1`, `1.1.1 < 1.1.1a`);
//! - a missing numeric part equals zero (`2.4 == 2.4.0`).
//!
//! The words `alpha`, `beta`, `dev`, `pre`, `preview`, `rc` and `milestone` are always
//! pre-release; the single letters `a`, `b` and `m` only when a number comes right before and
//! right after them (`1.0b2`, `9.0.0.M1`), so that OpenSSL's `1.1.1a` stays a later release.

use std::cmp::Ordering;

/// One run of a version string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part<'a> {
    /// Digits, leading zeros stripped (`""` is zero).
    Num(&'a str),
    /// A pre-release word, by rank.
    Pre(u8),
    /// Any other letters (lower-cased when compared).
    Word(&'a str),
}

/// The rank of a pre-release word, if it is one.
fn pre_rank(word: &str, num_before: bool, num_after: bool) -> Option<u8> {
    let w = word.to_ascii_lowercase();
    match w.as_str() {
        "dev" => Some(0),
        "alpha" => Some(1),
        "beta" => Some(2),
        "milestone" => Some(3),
        "pre" | "preview" => Some(4),
        "rc" => Some(5),
        "a" if num_before && num_after => Some(1),
        "b" if num_before && num_after => Some(2),
        "m" if num_before && num_after => Some(3),
        _ => None,
    }
}

/// The runs of `v`, with whether each run is digits and whether it touches the previous run.
fn runs(v: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || c.is_ascii_alphabetic() {
            let digit = c.is_ascii_digit();
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit() == digit)
                && (b[i].is_ascii_digit() || b[i].is_ascii_alphabetic())
            {
                i += 1;
            }
            // Both ends are ASCII positions, so the slice is on char boundaries.
            out.push((&v[start..i], digit));
        } else {
            i += 1;
        }
    }
    out
}

/// The parts of `v`, with pre-release words recognised.
fn parts(v: &str) -> Vec<Part<'_>> {
    let r = runs(v);
    let mut out = Vec::with_capacity(r.len());
    for (k, &(text, digit)) in r.iter().enumerate() {
        if digit {
            out.push(Part::Num(text.trim_start_matches('0')));
        } else {
            let before = k > 0 && r[k - 1].1;
            let after = r.get(k + 1).is_some_and(|n| n.1);
            match pre_rank(text, before, after) {
                Some(rank) => out.push(Part::Pre(rank)),
                None => out.push(Part::Word(text)),
            }
        }
    }
    out
}

/// Two digit runs (leading zeros already stripped) as numbers.
fn cmp_num(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Compare two version strings as software versions (see the module docs). Never panics, on
/// any input.
pub fn compare(a: &str, b: &str) -> Ordering {
    let pa = parts(a);
    let pb = parts(b);
    let n = pa.len().max(pb.len());
    for i in 0..n {
        let o = match (pa.get(i), pb.get(i)) {
            (Some(x), Some(y)) => cmp_part(*x, *y),
            (Some(x), None) => cmp_end(*x),
            (None, Some(y)) => cmp_end(*y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A part against the end of the other version.
fn cmp_end(x: Part<'_>) -> Ordering {
    match x {
        Part::Num(d) => cmp_num(d, ""),
        Part::Pre(_) => Ordering::Less,
        Part::Word(_) => Ordering::Greater,
    }
}

/// Two parts at the same position.
fn cmp_part(x: Part<'_>, y: Part<'_>) -> Ordering {
    use Part::*;
    match (x, y) {
        (Num(a), Num(b)) => cmp_num(a, b),
        (Pre(a), Pre(b)) => a.cmp(&b),
        (Word(a), Word(b)) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
        (Pre(_), _) => Ordering::Less,
        (_, Pre(_)) => Ordering::Greater,
        (Word(_), Num(_)) => Ordering::Less,
        (Num(_), Word(_)) => Ordering::Greater,
    }
}

/// The leading version token of a detected version string: `9.2p1` of `9.2p1 Debian 2+deb12u10`,
/// `1.22.1` of `1.22.1-9`, `10.11.6` of `10.11.6-MariaDB-0+deb12u1`, `2.0.0-rc1` of `2.0.0-rc1`.
///
/// The token is what comes before the first space, `+`, `~`, `(`, `,` or `;`, without a leading
/// `N:` epoch, cut at the first `-` that is not followed by a pre-release word. It must start
/// with a digit, else there is no version.
pub fn leading_token(v: &str) -> Option<&str> {
    let v = v.trim();
    let end = v.find(|c: char| c.is_whitespace() || matches!(c, '+' | '~' | '(' | ',' | ';')).unwrap_or(v.len());
    let mut t = &v[..end];
    if let Some((epoch, rest)) = t.split_once(':') {
        if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) {
            t = rest;
        }
    }
    let mut cut = t.len();
    let mut search = 0;
    while let Some(pos) = t[search..].find('-') {
        let at = search + pos;
        let rest = &t[at + 1..];
        let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        if pre_rank(&word, false, false).is_none() {
            cut = at;
            break;
        }
        search = at + 1;
    }
    let t = &t[..cut];
    t.starts_with(|c: char| c.is_ascii_digit()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(a: &str, b: &str) -> Ordering {
        let o = compare(a, b);
        assert_eq!(compare(b, a), o.reverse(), "antisymmetry of {a} / {b}");
        o
    }

    #[test]
    fn numbers_compare_numerically() {
        assert_eq!(c("1.10", "1.9"), Greater);
        assert_eq!(c("2.4.49", "2.4.50"), Less);
        assert_eq!(c("10.11.6", "10.11.6"), Equal);
        assert_eq!(c("2016.74", "2016.7"), Greater);
    }

    #[test]
    fn missing_trailing_parts_are_zero() {
        assert_eq!(c("2.4", "2.4.0"), Equal);
        assert_eq!(c("2.4", "2.4.0.0"), Equal);
        assert_eq!(c("2.4", "2.4.1"), Less);
        assert_eq!(c("", "0"), Equal);
    }

    #[test]
    fn leading_zeros_do_not_count() {
        assert_eq!(c("2.4.010", "2.4.10"), Equal);
        assert_eq!(c("1.01", "1.1"), Equal);
        assert_eq!(c("1.002", "1.10"), Less);
    }

    #[test]
    fn openssh_portable_suffixes_sort_after_the_release() {
        assert_eq!(c("9.8", "9.8p1"), Less);
        assert_eq!(c("9.8p1", "9.8p2"), Less);
        assert_eq!(c("9.2p1", "9.3p2"), Less);
        assert_eq!(c("9.3p1", "9.3p2"), Less);
        assert_eq!(c("9.3p2", "9.3p2"), Equal);
        assert_eq!(c("8.5p1", "8.5"), Greater);
        assert_eq!(c("9.8p1", "9.8.1"), Less);
        assert_eq!(c("9.10p1", "9.9p2"), Greater);
    }

    #[test]
    fn openssl_letters_sort_after_the_release() {
        assert_eq!(c("1.1.1", "1.1.1a"), Less);
        assert_eq!(c("1.1.1a", "1.1.1b"), Less);
        assert_eq!(c("1.0.2k", "1.0.2za"), Less);
        assert_eq!(c("1.3.5b", "1.3.5"), Greater);
        assert_eq!(c("1.3.5b", "1.3.6"), Less);
    }

    #[test]
    fn pre_releases_sort_before_the_release() {
        assert_eq!(c("1.0rc1", "1.0"), Less);
        assert_eq!(c("1.0rc1", "1.0rc2"), Less);
        assert_eq!(c("1.0-rc1", "1.0.0"), Less);
        assert_eq!(c("1.0alpha", "1.0beta"), Less);
        assert_eq!(c("1.0b2", "1.0rc1"), Less);
        assert_eq!(c("1.0a1", "1.0b1"), Less);
        assert_eq!(c("1.0dev", "1.0alpha1"), Less);
        assert_eq!(c("9.0.0.M1", "9.0.0"), Less);
        assert_eq!(c("9.0.0.M1", "8.5.99"), Greater);
        assert_eq!(c("9.11.0a1", "9.11.0rc3"), Less);
        assert_eq!(c("2.6.0-RC1", "2.6.0"), Less);
        assert_eq!(c("1.0RC1", "1.0rc1"), Equal);
    }

    #[test]
    fn bind_patch_levels() {
        assert_eq!(c("9.9.9-P3", "9.9.9"), Greater);
        assert_eq!(c("9.9.9-P2", "9.9.9-P3"), Less);
        assert_eq!(c("9.10.4-P3", "9.10.4-P8"), Less);
    }

    #[test]
    fn garbage_never_panics() {
        for (a, b) in [
            ("", ""),
            ("...", "--"),
            ("é.ü", "1"),
            ("99999999999999999999999999999999999", "1"),
            ("a", "b"),
            ("\u{0}\u{ffff}", "1.0"),
            ("1..2", "1.2"),
            ("ÿ1ÿ", "1"),
        ] {
            let _ = compare(a, b);
            let _ = leading_token(a);
        }
        assert_eq!(c("99999999999999999999999999999999999", "1"), Greater);
        assert_eq!(c("1..2", "1.2"), Equal);
    }

    #[test]
    fn leading_tokens() {
        assert_eq!(leading_token("9.2p1 Debian 2+deb12u10"), Some("9.2p1"));
        assert_eq!(leading_token("1.22.1-9"), Some("1.22.1"));
        assert_eq!(leading_token("10.11.6-MariaDB-0+deb12u1"), Some("10.11.6"));
        assert_eq!(leading_token("2.0.0-rc1"), Some("2.0.0-rc1"));
        assert_eq!(leading_token("1:9.2p1-2"), Some("9.2p1"));
        assert_eq!(leading_token("3.0.3"), Some("3.0.3"));
        assert_eq!(leading_token("2.4.6 (CentOS)"), Some("2.4.6"));
        assert_eq!(leading_token("unknown"), None);
        assert_eq!(leading_token(""), None);
        assert_eq!(leading_token("  7.0.15  "), Some("7.0.15"));
    }
}
