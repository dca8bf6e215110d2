//! `--script-args` and `--script-args-file`: nmap's `k=v,k2={a,b},k3={x=1,y={2}}` syntax parsed
//! into an ordered tree, which the Lua side sees as `nmap.registry.args` and through
//! `stdnse.get_script_args`.
//!
//! Grammar (as nmap documents it): a comma-separated list of `key=value` or bare `value`
//! entries; a value is a table `{...}` of the same list, a double- or single-quoted string, or
//! bare text up to the next `,`, `}` or `=`. Whitespace around entries is dropped. A file holds
//! the same entries, one or more per line (newlines act as commas).

/// One argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// Text.
    Str(String),
    /// A table: entries with and without keys, in the order given.
    Table(Vec<(Option<String>, ArgValue)>),
}

/// The parsed arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptArgs {
    /// Top-level entries in order.
    pub entries: Vec<(Option<String>, ArgValue)>,
}

/// A malformed `--script-args` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --script-args at byte {at}: {what}")]
pub struct ArgsError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected.
    pub what: &'static str,
}

/// Deepest table nesting accepted: the input is the user's, but a file may be generated.
const MAX_DEPTH: usize = 32;

impl ScriptArgs {
    /// Parses `--script-args` text.
    pub fn parse(text: &str) -> Result<ScriptArgs, ArgsError> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let entries = p.list(0, None)?;
        p.ws();
        if p.i < p.s.len() {
            return Err(ArgsError { at: p.i, what: "end of arguments" });
        }
        Ok(ScriptArgs { entries })
    }

    /// Parses a `--script-args-file`'s text (lines act as commas; `#` starts a comment line).
    pub fn parse_file(text: &str) -> Result<ScriptArgs, ArgsError> {
        let joined: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        ScriptArgs::parse(&joined.join(","))
    }

    /// Adds `other`'s entries after these (`--script-args` after `--script-args-file`).
    pub fn extend(&mut self, other: ScriptArgs) {
        self.entries.extend(other.entries);
    }

    /// The value of key `key` (the last one given wins, as in nmap).
    pub fn get(&self, key: &str) -> Option<&ArgValue> {
        self.entries.iter().rev().find(|(k, _)| k.as_deref() == Some(key)).map(|(_, v)| v)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Entries up to `close` (or the end of input when `None`).
    fn list(&mut self, depth: usize, close: Option<u8>) -> Result<Vec<(Option<String>, ArgValue)>, ArgsError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                None if close.is_none() => return Ok(out),
                None => return Err(ArgsError { at: self.i, what: "`}`" }),
                Some(c) if Some(c) == close => return Ok(out),
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let first = self.value(depth)?;
            self.ws();
            if self.peek() == Some(b'=') {
                self.i += 1;
                let key = match first {
                    ArgValue::Str(k) => k,
                    ArgValue::Table(_) => return Err(ArgsError { at: self.i, what: "a key before `=`" }),
                };
                self.ws();
                let value = self.value(depth)?;
                out.push((Some(key), value));
            } else {
                out.push((None, first));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if Some(c) == close => {}
                None if close.is_none() => {}
                _ => return Err(ArgsError { at: self.i, what: "`,`" }),
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<ArgValue, ArgsError> {
        match self.peek() {
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(ArgsError { at: self.i, what: "less nesting" });
                }
                self.i += 1;
                let entries = self.list(depth + 1, Some(b'}'))?;
                self.i += 1; // the `}` list() stopped at
                Ok(ArgValue::Table(entries))
            }
            Some(q @ (b'"' | b'\'')) => {
                self.i += 1;
                let mut text = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err(ArgsError { at: self.i, what: "a closing quote" }),
                        Some(b'\\') if self.s.get(self.i + 1).is_some() => {
                            text.push(self.s[self.i + 1]);
                            self.i += 2;
                        }
                        Some(c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(c) => {
                            text.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(ArgValue::Str(String::from_utf8_lossy(&text).into_owned()))
            }
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b'}' | b'=' | b'{') {
                        break;
                    }
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).trim().to_string();
                Ok(ArgValue::Str(text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ArgValue {
        ArgValue::Str(x.into())
    }

    #[test]
    fn keys_values_and_tables() {
        let a = ScriptArgs::parse("user=admin, pass = \"a,b\", list={a,b}, t={x=1,y={2}}").unwrap();
        assert_eq!(a.get("user"), Some(&s("admin")));
        assert_eq!(a.get("pass"), Some(&s("a,b")));
        assert_eq!(a.get("list"), Some(&ArgValue::Table(vec![(None, s("a")), (None, s("b"))])));
        assert_eq!(
            a.get("t"),
            Some(&ArgValue::Table(vec![
                (Some("x".into()), s("1")),
                (Some("y".into()), ArgValue::Table(vec![(None, s("2"))]))
            ]))
        );
    }

    #[test]
    fn script_prefixed_keys_and_last_wins() {
        let a = ScriptArgs::parse("http.useragent=x,http-title.url=/a,http-title.url=/b").unwrap();
        assert_eq!(a.get("http-title.url"), Some(&s("/b")));
        assert_eq!(a.get("http.useragent"), Some(&s("x")));
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        assert!(ScriptArgs::parse("a={b").is_err());
        assert!(ScriptArgs::parse("a=\"open").is_err());
        assert!(ScriptArgs::parse("a=b}").is_err());
        assert!(ScriptArgs::parse(&"{".repeat(100)).is_err());
        assert_eq!(ScriptArgs::parse("").unwrap().entries.len(), 0);
    }

    #[test]
    fn file_lines_act_as_commas() {
        let a = ScriptArgs::parse_file("# comment\nuser=root\n\npass=toor\n").unwrap();
        assert_eq!(a.get("pass"), Some(&s("toor")));
        assert_eq!(a.entries.len(), 2);
    }

    #[test]
    fn random_input_never_panics() {
        // A small deterministic generator: no dependency, same cases every run.
        let alphabet: &[u8] = b"{}=,\"\' ab\\";
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
            let _ = ScriptArgs::parse(&s);
        }
    }
}
