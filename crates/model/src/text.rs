//! Making network-supplied text safe to show: banners, hostnames and anything else read off the wire
//! may carry terminal escapes, NULs or invalid UTF-8. Every output format passes such text through
//! [`sanitize`] (and then applies its own syntax escaping, e.g. XML entities).

use std::borrow::Cow;

/// True for characters that must never reach a terminal or a file raw: C0 controls (except none:
/// even tab and newline are escaped, since they break line-oriented formats), DEL and C1 controls.
fn is_unsafe(c: char) -> bool {
    c.is_control()
}

/// Escape control characters as `\xNN` (or `\u{NNNN}` above 0xFF) and backslashes as `\\`.
/// Text without such characters is returned borrowed.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// Escape control characters only, as [`sanitize`] does, leaving backslashes alone: what the
/// output formats apply to every string, so that text already sanitized where it was read (a
/// banner: `\\` for a backslash, `\x1b` for an escape) passes through unchanged instead of
/// having its backslashes doubled, while text that never was still has no raw control character.
pub fn neutralize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push(c);
        } else {
            push_char(&mut out, c);
        }
    }
    Cow::Owned(out)
}

fn push_char(out: &mut String, c: char) {
    use std::fmt::Write;
    if c == '\\' {
        out.push_str("\\\\");
    } else if is_unsafe(c) {
        let v = c as u32;
        if v <= 0xff {
            let _ = write!(out, "\\x{v:02x}");
        } else {
            let _ = write!(out, "\\u{{{v:04x}}}");
        }
    } else {
        out.push(c);
    }
}

/// Decode bytes read from the network: valid UTF-8 runs are kept (sanitized), every invalid byte is
/// written as `\xNN`.
pub fn sanitize_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            use std::fmt::Write;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Write ascending ports as a compact range list, as nmap writes them: `[1,2,3,5]` → `1-3,5`.
/// The one definition: `<scaninfo services=...>`, extraports, grepable and JSON all use it.
pub fn port_ranges(ports: &[u16]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && u32::from(ports[i + 1]) == u32::from(end) + 1 {
            end = ports[i + 1];
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = if start == end { write!(out, "{start}") } else { write!(out, "{start}-{end}") };
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(port_ranges(&[1, 2, 3, 5, 7, 8, 65534, 65535]), "1-3,5,7-8,65534-65535");
        assert_eq!(port_ranges(&[]), "");
        assert_eq!(port_ranges(&[9]), "9");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(sanitize("OpenSSH_9.2p1 Debian"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        let hostile = "\x1b[2J\x1b]0;pwned\x07name\0\r\n\u{9b}x";
        let clean = sanitize(hostile);
        assert!(!clean.chars().any(|c| c.is_control()), "{clean:?}");
        assert_eq!(clean, "\\x1b[2J\\x1b]0;pwned\\x07name\\x00\\x0d\\x0a\\x9bx");
    }

    #[test]
    fn invalid_utf8_is_hex_escaped() {
        assert_eq!(sanitize_bytes(b"ok\xff\xfe\x1b!"), "ok\\xff\\xfe\\x1b!");
        assert_eq!(sanitize_bytes("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn backslash_is_escaped_so_output_is_unambiguous() {
        assert_eq!(sanitize("a\\x1b"), "a\\\\x1b");
    }

    #[test]
    fn neutralize_escapes_controls_but_not_backslashes_so_sanitized_text_is_unchanged() {
        let raw = "a\\b\x1bc\u{7f}";
        let once = sanitize(raw).into_owned();
        assert_eq!(once, "a\\\\b\\x1bc\\x7f");
        assert_eq!(neutralize(&once), once, "already sanitized: unchanged");
        assert_eq!(neutralize(raw), "a\\b\\x1bc\\x7f", "raw controls escaped, the backslash kept");
        assert!(matches!(neutralize("plain"), Cow::Borrowed(_)));
    }
}
