//! `--script` expressions: which scripts of a catalog run. Grammar, after nmap's: the argument
//! is a comma-separated list; each item is a file, a directory, or a boolean expression of
//! words joined by `and`, `or`, `not` and parentheses. A word matches a script by its name
//! (with or without `.nse`), by one of its categories, by a shell-style glob on its name
//! (`http-*`, `ssh-?ostkey`), or `all`. Files and directories are resolved by the catalog before
//! the expressions are evaluated; this module owns only the expression language.

/// A parsed boolean expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A name, category, glob or `all`.
    Word(String),
    /// Negation.
    Not(Box<Expr>),
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
}

/// A malformed expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --script expression {expr:?}: {what}")]
pub struct SelectError {
    /// The expression.
    pub expr: String,
    /// What went wrong.
    pub what: String,
}

/// What a word is matched against.
pub trait Selectable {
    /// The script's name (`http-title`).
    fn id(&self) -> &str;
    /// Its categories.
    fn categories(&self) -> &[String];
}

/// Deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 64;

impl Expr {
    /// Parses one item of the `--script` list.
    pub fn parse(text: &str) -> Result<Expr, SelectError> {
        let tokens = tokenize(text);
        let err = |what: &str| SelectError { expr: text.to_string(), what: what.to_string() };
        if tokens.is_empty() {
            return Err(err("empty"));
        }
        let mut p = ExprParser { t: &tokens, i: 0 };
        let e = p.or(0).map_err(err)?;
        if p.i != tokens.len() {
            return Err(err("unexpected text after the expression"));
        }
        Ok(e)
    }

    /// Whether `script` matches.
    pub fn matches(&self, script: &dyn Selectable) -> bool {
        match self {
            Expr::Word(w) => word_matches(w, script),
            Expr::Not(e) => !e.matches(script),
            Expr::And(a, b) => a.matches(script) && b.matches(script),
            Expr::Or(a, b) => a.matches(script) || b.matches(script),
        }
    }

    /// The words in the expression, to report ones that match nothing.
    pub fn words(&self) -> Vec<&str> {
        match self {
            Expr::Word(w) => vec![w.as_str()],
            Expr::Not(e) => e.words(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.words();
                v.extend(b.words());
                v
            }
        }
    }
}

/// Whether one word matches a script.
pub fn word_matches(word: &str, script: &dyn Selectable) -> bool {
    let word = word.to_ascii_lowercase();
    let word = word.strip_suffix(".nse").unwrap_or(&word);
    if word == "all" || script.id().eq_ignore_ascii_case(word) {
        return true;
    }
    if script.categories().iter().any(|c| c.eq_ignore_ascii_case(word)) {
        return true;
    }
    (word.contains('*') || word.contains('?')) && glob(word.as_bytes(), script.id().to_ascii_lowercase().as_bytes())
}

/// Splits a `--script` argument at top-level commas (not inside parentheses).
pub fn split_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// `*` and `?` glob, iterative with one backtrack point (linear in practice, never exponential).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Word(String),
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(match word.to_ascii_lowercase().as_str() {
                "and" => Tok::And,
                "or" => Tok::Or,
                "not" => Tok::Not,
                _ => Tok::Word(word.clone()),
            });
            word.clear();
        }
    };
    for c in text.chars() {
        match c {
            '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(if c == '(' { Tok::Open } else { Tok::Close });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

struct ExprParser<'a> {
    t: &'a [Tok],
    i: usize,
}

impl ExprParser<'_> {
    fn or(&mut self, depth: usize) -> Result<Expr, &'static str> {
        let mut left = self.and(depth)?;
        while self.t.get(self.i) == Some(&Tok::Or) {
            self.i += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, &'static str> {
        let mut left = self.not(depth)?;
        while self.t.get(self.i) == Some(&Tok::And) {
            self.i += 1;
            left = Expr::And(Box::new(left), Box::new(self.not(depth)?));
        }
        Ok(left)
    }

    fn not(&mut self, depth: usize) -> Result<Expr, &'static str> {
        if depth > MAX_DEPTH {
            return Err("too deeply nested");
        }
        match self.t.get(self.i) {
            Some(Tok::Not) => {
                self.i += 1;
                Ok(Expr::Not(Box::new(self.not(depth + 1)?)))
            }
            Some(Tok::Open) => {
                self.i += 1;
                let e = self.or(depth + 1)?;
                if self.t.get(self.i) != Some(&Tok::Close) {
                    return Err("missing `)`");
                }
                self.i += 1;
                Ok(e)
            }
            Some(Tok::Word(w)) => {
                self.i += 1;
                Ok(Expr::Word(w.clone()))
            }
            _ => Err("expected a name, category or `(`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S(&'static str, Vec<String>);
    impl Selectable for S {
        fn id(&self) -> &str {
            self.0
        }
        fn categories(&self) -> &[String] {
            &self.1
        }
    }

    fn s(id: &'static str, cats: &[&str]) -> S {
        S(id, cats.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn nmap_examples() {
        let title = s("http-title", &["default", "discovery", "safe"]);
        let slow = s("http-slowloris", &["dos", "intrusive"]);
        let banner = s("banner", &["discovery", "safe"]);
        let e = Expr::parse("http-* and not http-slowloris").unwrap();
        assert!(e.matches(&title) && !e.matches(&slow) && !e.matches(&banner));
        let e = Expr::parse("default or safe").unwrap();
        assert!(e.matches(&title) && e.matches(&banner) && !e.matches(&slow));
        let e = Expr::parse("(default or safe) and not http-*").unwrap();
        assert!(e.matches(&banner) && !e.matches(&title));
        assert!(Expr::parse("all").unwrap().matches(&slow));
        assert!(Expr::parse("banner.nse").unwrap().matches(&banner));
        assert!(Expr::parse("NOT intrusive").unwrap().matches(&banner));
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in ["", "a and", "(a or b", "a b", "and", ")", &"(".repeat(500)] {
            assert!(Expr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn list_splits_at_top_level_commas() {
        assert_eq!(split_list("banner, (a or b),c"), vec!["banner", "(a or b)", "c"]);
    }

    #[test]
    fn globs() {
        assert!(glob(b"http-*", b"http-title"));
        assert!(glob(b"*-title", b"http-title"));
        assert!(glob(b"ssh-?ostkey", b"ssh-hostkey"));
        assert!(!glob(b"http-*", b"ssh-hostkey"));
        assert!(!glob(b"*a*a*a*a*b", &[b'a'; 10][..]));
    }

    #[test]
    fn random_input_never_panics() {
        // A small deterministic generator: no dependency, same cases every run.
        let alphabet: &[u8] = b"() andortn*?,-";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut s = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..(x % 24) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
            }
            let _ = Expr::parse(&s);
        }
    }
}
