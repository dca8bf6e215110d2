//! What a Python script declares, read without running it: top-level assignments of string
//! literals (`description`, `author`, `license`) and lists of string literals (`categories`,
//! `dependencies`, `author`), and which of `prerule`, `hostrule`, `portrule`, `postrule` and
//! `action` are defined at top level (`def name(` or `name = ...`). Reading it statically means
//! the catalog (listing, `--script` selection by category, `--script-help`) works on a machine
//! without Python, and a script's metadata costs no process. Anything cleverer (computed
//! strings, a list built in a loop) is not seen: the convention is documented in
//! docs/python-scripts.md.

/// A Python script's declared fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `description`.
    pub description: String,
    /// `categories`.
    pub categories: Vec<String>,
    /// `author`.
    pub author: Vec<String>,
    /// `license`.
    pub license: String,
    /// `dependencies`.
    pub dependencies: Vec<String>,
    /// Names of the rule and action functions defined at top level.
    pub functions: Vec<String>,
    /// `portrule = rustmap.is_http`: a rule RustMap evaluates itself, without a worker.
    pub portrule_is_http: bool,
}

/// Values of one top-level assignment: the string literals it contains.
fn literals(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'#' {
            // A comment runs to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c != b'"' && c != b'\'' {
            i += 1;
            continue;
        }
        let triple = b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c;
        let q = if triple { 3 } else { 1 };
        i += q;
        let mut s = Vec::new();
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                match b[i + 1] {
                    b'n' => s.push(b'\n'),
                    b't' => s.push(b'\t'),
                    b'\n' => {}
                    other => s.push(other),
                }
                i += 2;
                continue;
            }
            if b[i] == c && (!triple || (b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c)) {
                i += q;
                break;
            }
            if !triple && b[i] == b'\n' {
                break;
            }
            s.push(b[i]);
            i += 1;
        }
        out.push(String::from_utf8_lossy(&s).into_owned());
    }
    out
}

/// The text of the assignment starting at `start` (after `=`): up to the end of the line, or
/// of the bracket or triple-quoted string it opens.
fn value_text(src: &str, start: usize) -> &str {
    let b = src.as_bytes();
    let mut depth = 0i32;
    let mut i = start;
    let mut quote: Option<(u8, bool)> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some((q, triple)) => {
                if c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q && (!triple || (b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q)) {
                    i += if triple { 3 } else { 1 };
                    quote = None;
                    continue;
                }
            }
            None => match c {
                b'"' | b'\'' => {
                    let triple = b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c;
                    quote = Some((c, triple));
                    i += if triple { 3 } else { 1 };
                    continue;
                }
                b'[' | b'(' | b'{' => depth += 1,
                b']' | b')' | b'}' => depth -= 1,
                b'\n' if depth <= 0 => break,
                _ => {}
            },
        }
        i += 1;
    }
    // Escapes skip two bytes, which can land inside a multi-byte character.
    let mut end = i.min(src.len());
    while !src.is_char_boundary(end) {
        end += 1;
    }
    &src[start..end]
}

/// Reads `source`'s declared fields.
pub fn read(source: &str) -> Meta {
    let mut meta = Meta::default();
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let at = offset;
        offset += line.len();
        // Only top-level statements: an indented line belongs to a block.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("def ").or_else(|| line.strip_prefix("async def ")) {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            meta.functions.push(name);
            continue;
        }
        let name: String = line.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = line[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('=') || after.starts_with("==") {
            continue;
        }
        let eq = at + line.find('=').unwrap_or(0) + 1;
        let values = literals(value_text(source, eq));
        let first = values.first().cloned().unwrap_or_default();
        match name.as_str() {
            "description" => meta.description = first,
            "license" => meta.license = first,
            "categories" => meta.categories = values,
            "dependencies" => meta.dependencies = values,
            "author" => meta.author = values,
            "portrule" => {
                meta.portrule_is_http = value_text(source, eq).trim() == "rustmap.is_http";
                meta.functions.push(name);
            }
            "prerule" | "hostrule" | "postrule" | "action" => meta.functions.push(name),
            _ => {}
        }
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_convention() {
        let m = read(concat!(
            "import rustmap\n",
            "description = \"\"\"\nTwo\nlines \"quoted\"\n\"\"\"\n",
            "categories = [\"default\",\n  'safe',  # comment 'x'\n]\n",
            "author = 'me'\n",
            "portrule = rustmap.is_http\n",
            "def action(host, port):\n    categories = ['no']\n    return 'x'\n",
        ));
        assert_eq!(m.description, "\nTwo\nlines \"quoted\"\n");
        assert_eq!(m.categories, vec!["default", "safe"]);
        assert_eq!(m.author, vec!["me"]);
        assert_eq!(m.functions, vec!["portrule", "action"]);
        assert!(m.portrule_is_http);
        assert!(!read("portrule = lambda h, p: rustmap.is_http(h, p)\n").portrule_is_http);
    }

    #[test]
    fn hostile_text_never_panics() {
        for s in ["description = '", "categories = [\"a", "x=\"\"\"", "= 1", "def", "é = 'ü'\n", "a='\\"] {
            let _ = read(s);
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..40 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                s.push(['=', '\'', '"', '[', ']', '\n', ' ', 'a', '\\', '#', 'é'][(seed >> 33) as usize % 11]);
            }
            let _ = read(&s);
        }
    }
}
