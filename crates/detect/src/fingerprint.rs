//! Fingerprints of services no rule identified: what each probe got back, in a compact text
//! form a user can paste into a report (or turn into a rule, docs/service-probes.md).
//!
//! Format (`RustMap service fingerprint`, version 1), one line:
//!
//! ```text
//! RMFP1;port=8888/tcp;rustmap=0.1.0;r(null,23,"220 hello\x0d\x0a");r(http-get,17,"HTTP/1.0 400 ...")
//! ```
//!
//! Each `r(PROBE,LENGTH,"BYTES")` is a probe's name, how many bytes came back, and the first
//! [`MAX_SHOWN`] of them: printable ASCII as itself (`"` and `\` escaped with `\`), every other byte
//! (and the markup characters `< > & '`) as `\xHH`. The whole line is at most [`MAX_LEN`] characters; it holds nothing but printable
//! ASCII, so it is safe in every output format.

/// Bytes of one answer shown.
pub const MAX_SHOWN: usize = 256;

/// Longest fingerprint line.
pub const MAX_LEN: usize = 4096;

/// Build the fingerprint of `port`/`proto` from `(probe name, answer)` pairs, in probe order.
/// An answer equal to an earlier one (a banner every probe's connection gets) is left out.
/// `None` when no probe got data.
pub fn fingerprint(port: u16, proto: &str, answers: &[(&str, &[u8])]) -> Option<String> {
    if answers.iter().all(|(_, a)| a.is_empty()) {
        return None;
    }
    let mut out = format!("RMFP1;port={port}/{proto};rustmap={}", env!("CARGO_PKG_VERSION"));
    for (k, (name, data)) in answers.iter().enumerate() {
        if data.is_empty() || answers[..k].iter().any(|(_, earlier)| earlier == data) {
            continue;
        }
        let mut part = format!(";r({},{},\"", clean_name(name), data.len());
        for &b in data.iter().take(MAX_SHOWN) {
            match b {
                b'"' | b'\\' => {
                    part.push('\\');
                    part.push(char::from(b));
                }
                // Markup characters too: a fingerprint may be pasted into a web form or page.
                b'<' | b'>' | b'&' | b'\'' => part.push_str(&format!("\\x{b:02x}")),
                0x20..=0x7e => part.push(char::from(b)),
                _ => part.push_str(&format!("\\x{b:02x}")),
            }
        }
        part.push_str("\")");
        if out.len() + part.len() > MAX_LEN {
            break;
        }
        out.push_str(&part);
    }
    Some(out)
}

/// Probe names come from a database file, maybe a user's: keep them to their documented charset.
fn clean_name(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_./".contains(*c)).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bounds() {
        let fp = fingerprint(
            8888,
            "tcp",
            &[("null", b"220 \"hi\"\\\r\n\x1b[2J"), ("http-get", b""), ("x\ny", b"\xff<a>"), ("again", b"\xff<a>")],
        )
        .unwrap();
        assert_eq!(
            fp,
            format!(
                "RMFP1;port=8888/tcp;rustmap={};r(null,15,\"220 \\\"hi\\\"\\\\\\x0d\\x0a\\x1b[2J\");r(xy,4,\"\\xff\\x3ca\\x3e\")",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(fp.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert_eq!(fingerprint(1, "udp", &[("null", b"")]), None);
        let bigs: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 100_000]).collect();
        let many: Vec<(&str, &[u8])> = bigs.iter().map(|b| ("p", &b[..])).collect();
        let fp = fingerprint(1, "tcp", &many).unwrap();
        assert!(fp.len() <= MAX_LEN);
        assert!(fp.contains("r(p,100000,\""));
    }
}
