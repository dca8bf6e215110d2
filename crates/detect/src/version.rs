//! The precision rule: what a captured token must look like to be reported as a version.
//!
//! A rule's `version` (and the version part of its CPE names) may only come from text its
//! pattern captured explicitly *and* that is shaped like a version. Words (`Server`), host names
//! (`h10.lab.test`) and addresses (`[198.18.0.10]`, `198.18.0.10`) never are: a vulnerability
//! matcher reads a CPE version as a fact, so a made-up one is worse than none. The shape, in full
//! (also in `docs/service-probes.md` § The precision rule):
//!
//! 1. 1 to [`MAX_VERSION_TOKEN`] characters, each an ASCII letter or digit or one of `. - _ + ~`
//!    (no blank, bracket, parenthesis, slash, colon or `@`);
//! 2. starting with a digit, or with `v`/`V`/`r`/`R` followed by a digit (`v1.2`, `R2`);
//! 3. not an IPv4 address (four dot-separated decimal numbers of at most 255: `198.18.0.10`);
//! 4. not a host name: at most one dot-separated label made of letters only (`1.0.beta` and
//!    `26.1.3.Final` are versions, `10.lab.test` is a name).
//!
//! So `3.0.3`, `9.2p1`, `1.3.8rc2`, `2.4.57-1ubuntu2`, `2+deb12u3`, `9.18.19-1~deb12u1-Debian`,
//! `v1.28.4` and `R2` are versions; `Server`, `for_Windows_8.1`, `h10.lab.test`, `[198.18.0.10]`
//! and `198.18.0.10` are not.

/// The longest token accepted as a version, in characters.
pub const MAX_VERSION_TOKEN: usize = 40;

/// Is `token` (one capture group's text) shaped like a version? See the module documentation.
pub fn is_version_token(token: &str) -> bool {
    let b = token.as_bytes();
    if b.is_empty() || b.len() > MAX_VERSION_TOKEN {
        return false;
    }
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || b".-_+~".contains(c)) {
        return false;
    }
    let digit_at = usize::from(matches!(b[0], b'v' | b'V' | b'r' | b'R'));
    if !b.get(digit_at).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    !is_ipv4(token)
        && token.split('.').filter(|l| !l.is_empty() && l.bytes().all(|c| c.is_ascii_alphabetic())).count() < 2
}

/// Is `s` exactly a dotted-quad IPv4 address?
fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
        && parts.iter().all(|p| p.parse::<u16>().is_ok_and(|n| n <= 255))
}

/// Cut a CPE name (`cpe:/a:vendor:product:version:...`) to its vendor and product, dropping the
/// version and everything after it.
pub fn cpe_without_version(cpe: &str) -> &str {
    match cpe.match_indices(':').nth(3) {
        Some((i, _)) => &cpe[..i],
        None => cpe,
    }
}

/// The version part of a CPE name, if it has one.
pub fn cpe_version(cpe: &str) -> Option<&str> {
    cpe.split(':').nth(4).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_real_rules_capture_are_accepted() {
        for v in [
            "3.0.3",
            "1.3.8",
            "1.3.8rc2",
            "9.2p1",
            "8.9p1",
            "2+deb12u3",
            "3ubuntu0.10",
            "2.4.57-1ubuntu2",
            "9.18.19-1~deb12u1-Debian",
            "10.11.6",
            "v1.28.4",
            "R2",
            "r10",
            "7.0.15",
            "19.0.0.0.0",
            "10.0.17763.1",
            "26.1.3.Final",
            "1.0.beta",
            "2022",
            "24.0.7",
        ] {
            assert!(is_version_token(v), "{v:?} should be a version");
        }
    }

    #[test]
    fn words_names_and_addresses_are_not_versions() {
        for v in [
            "",
            "Server",
            "server",
            "ready",
            "for_Windows_8.1",
            "h10.lab.test",
            "10.lab.test",
            "3com.example.org",
            "[198.18.0.10]",
            "198.18.0.10",
            "[::ffff:198.18.0.10]",
            "::1",
            "2001:db8::1",
            "(Debian)",
            "1.2 beta",
            "v",
            "version",
            "Rev",
            "1/2",
            "1.2\r",
            &"1".repeat(MAX_VERSION_TOKEN + 1),
        ] {
            assert!(!is_version_token(v), "{v:?} should not be a version");
        }
    }

    #[test]
    fn cpe_parts() {
        assert_eq!(cpe_without_version("cpe:/a:proftpd:proftpd:Server"), "cpe:/a:proftpd:proftpd");
        assert_eq!(cpe_without_version("cpe:/a:x:y:1.0:beta"), "cpe:/a:x:y");
        assert_eq!(cpe_without_version("cpe:/o:linux:linux_kernel"), "cpe:/o:linux:linux_kernel");
        assert_eq!(cpe_version("cpe:/a:proftpd:proftpd:1.3.8"), Some("1.3.8"));
        assert_eq!(cpe_version("cpe:/a:proftpd:proftpd"), None);
    }
}
