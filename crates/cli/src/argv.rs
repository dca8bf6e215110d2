//! The argv pre-pass: nmap and the user guide spell options in ways clap does not parse by itself
//! (single-dash long options such as `-oX`, `-iL`, `-Pn`; the guide's `--sV`, `--PS 22,80`).
//! This pass rewrites them into one canonical spelling before clap sees them, so that each flag
//! still has exactly one definition.

/// Output-format options that take a file name (`-oX FILE`, `--oX FILE`).
pub const OUTPUT_FLAGS: &[&str] =
    &["oN", "oX", "oJ", "oG", "oA", "oY", "oC", "oH", "oCEF", "oLEEF", "oS", "oM", "oJ-lines"];

/// Discovery probes whose port list may follow as a separate argument in the guide's spelling.
const PING_WITH_PORTS: &[&str] = &["PS", "PA", "PU", "PY", "PH", "PHT"];

fn is_port_list(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
}

/// Rewrite an argument vector (without the program name).
pub fn normalize(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it.by_ref());
            break;
        }
        // `-oX`/`--oX` (and `--oX=FILE`).
        let bare = a.trim_start_matches('-');
        let dashes = a.len() - bare.len();
        if (1..=2).contains(&dashes) {
            let (name, value) = match bare.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (bare, None),
            };
            if OUTPUT_FLAGS.contains(&name) || name == "iL" || name == "iR" {
                out.push(format!("--{name}"));
                if let Some(v) = value {
                    out.push(v.to_string());
                }
                continue;
            }
            // `--sV`, `--sn`, `--sT`: the guide's spelling of nmap's `-sV`.
            if dashes == 2
                && name.len() >= 2
                && name.starts_with('s')
                && name[1..].bytes().all(|b| b.is_ascii_alphabetic())
                && value.is_none()
                && name.len() <= 4
            {
                out.push(format!("-{name}"));
                continue;
            }
            // `--Pn`, `--PE`, `--PS 22,80`, `--PS22`: the guide's spellings of nmap's `-Pn`, `-PS22,80`.
            let b = name.as_bytes();
            if dashes == 2 && b.len() >= 2 && b[0] == b'P' && (b[1].is_ascii_uppercase() || name == "Pn") {
                let mut spelled = format!("-{name}");
                if let Some(v) = value {
                    spelled.push_str(v);
                } else if PING_WITH_PORTS.contains(&name) && it.peek().is_some_and(|next| is_port_list(next)) {
                    spelled.push_str(&it.next().unwrap_or_default());
                }
                out.push(spelled);
                continue;
            }
        }
        // `-p-` means every port.
        if a == "-p-" {
            out.push("-p1-65535".to_string());
            continue;
        }
        if a == "-p" && it.peek().is_some_and(|n| n == "-") {
            it.next();
            out.push("-p1-65535".to_string());
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(s: &str) -> Vec<String> {
        normalize(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn nmap_single_dash_longs() {
        assert_eq!(n("-oX out.xml -oN - -iL list.txt"), ["--oX", "out.xml", "--oN", "-", "--iL", "list.txt"]);
        assert_eq!(n("--oJ=r.json"), ["--oJ", "r.json"]);
    }

    #[test]
    fn guide_spellings() {
        assert_eq!(n("--sV --sT --Pn"), ["-sV", "-sT", "-Pn"]);
        assert_eq!(n("--PS 22,80 --PA 443 target"), ["-PS22,80", "-PA443", "target"]);
        assert_eq!(n("--PE target"), ["-PE", "target"]);
        assert_eq!(n("--PHT 443,8443 t"), ["-PHT443,8443", "t"]);
    }

    #[test]
    fn nmap_spellings_pass_through() {
        assert_eq!(n("-sS -sU -Pn -PS22,80 -T4 -vv"), ["-sS", "-sU", "-Pn", "-PS22,80", "-T4", "-vv"]);
        assert_eq!(n("-p- x"), ["-p1-65535", "x"]);
        assert_eq!(n("-p - x"), ["-p1-65535", "x"]);
        assert_eq!(n("-s SU x"), ["-s", "SU", "x"]);
        assert_eq!(n("--top-ports 10 --open --reason"), ["--top-ports", "10", "--open", "--reason"]);
    }
}
