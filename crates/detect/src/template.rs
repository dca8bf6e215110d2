//! Templates of match rules: literal text with capture-group references, rendered into the
//! product, version and other fields of a detected service.
//!
//! Syntax: `$1`..`$9` (or `${1}`) is a capture group; `${2/_/.}` is group 2 with every `_`
//! replaced by `.`; `${3:be}` / `${3:le}` is group 3 (1 to 8 bytes) read as an unsigned big- or
//! little-endian integer and written in decimal (binary protocols carry versions as numbers);
//! `$$` is a dollar sign. Rendering is where bytes from the network turn into
//! text, so it is also where they are made safe: invalid UTF-8 and control characters are dropped,
//! runs of blanks are folded to one space, and the result is cut to [`MAX_FIELD`] characters.

use std::fmt;

/// Longest rendered field, in characters.
pub const MAX_FIELD: usize = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Group {
        index: usize,
        from: String,
        to: String,
    },
    /// A binary integer written in decimal.
    Number {
        index: usize,
        big_endian: bool,
    },
}

/// The longest group `:be` / `:le` reads (a `u64`).
const MAX_NUMBER_BYTES: usize = 8;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Why a template is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// Parse `text`; `groups` is how many capture groups the rule's pattern has.
    pub fn parse(text: &str, groups: usize) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        let check = |i: usize| {
            if i == 0 || i > groups {
                Err(TemplateError(format!("${i} refers to a capture group the pattern does not have ({groups})")))
            } else {
                Ok(i)
            }
        };
        while let Some(c) = chars.next() {
            if c != '$' {
                lit.push(c);
                continue;
            }
            match chars.next() {
                Some('$') => lit.push('$'),
                Some(d @ '0'..='9') => {
                    let index = check(d as usize - '0' as usize)?;
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Group { index, from: String::new(), to: String::new() });
                }
                Some('{') => {
                    let mut body = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => body.push(ch),
                            None => return Err(TemplateError("unclosed ${".into())),
                        }
                    }
                    if let Some((num, conv)) = body.split_once(':') {
                        let index =
                            check(num.parse().map_err(|_| TemplateError(format!("bad group number in ${{{body}}}")))?)?;
                        let big_endian = match conv {
                            "be" => true,
                            "le" => false,
                            _ => return Err(TemplateError(format!("unknown conversion :{conv} (want :be or :le)"))),
                        };
                        if !lit.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut lit)));
                        }
                        parts.push(Part::Number { index, big_endian });
                        continue;
                    }
                    let mut it = body.splitn(3, '/');
                    let num = it.next().unwrap_or("");
                    let index =
                        check(num.parse().map_err(|_| TemplateError(format!("bad group number in ${{{body}}}")))?)?;
                    let (from, to) = match (it.next(), it.next()) {
                        (None, _) => (String::new(), String::new()),
                        (Some(f), Some(t)) if !f.is_empty() => (f.to_string(), t.to_string()),
                        _ => return Err(TemplateError(format!("want ${{N/from/to}}, got ${{{body}}}"))),
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Group { index, from, to });
                }
                _ => return Err(TemplateError("a lone $ (write $$ for a dollar sign)".into())),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template { parts })
    }

    /// The capture groups this template writes as text (`$N`, `${N/a/b}`); groups read as
    /// binary numbers (`${N:be}`) are not among them: a number is always shaped like a version.
    pub fn text_groups(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Group { index, .. } => Some(*index),
            _ => None,
        })
    }

    /// Render with the capture groups of a match (`groups[0]` is the whole match). Returns `None`
    /// when the result is empty, so an optional group that did not take part leaves the field out.
    pub fn render(&self, groups: &[Option<&[u8]>]) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Group { index, from, to } => {
                    let bytes = groups.get(*index).copied().flatten().unwrap_or(b"");
                    let text = String::from_utf8_lossy(bytes);
                    if from.is_empty() {
                        out.push_str(&text);
                    } else {
                        out.push_str(&text.replace(from.as_str(), to));
                    }
                }
                Part::Number { index, big_endian } => {
                    let bytes = groups.get(*index).copied().flatten().unwrap_or(b"");
                    // A group too long (or empty) for a number renders nothing rather than a wrong one.
                    if (1..=MAX_NUMBER_BYTES).contains(&bytes.len()) {
                        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
                        let n = if *big_endian { bytes.iter().fold(0, fold) } else { bytes.iter().rev().fold(0, fold) };
                        out.push_str(&n.to_string());
                    }
                }
            }
            // Never hold more than a few fields' worth, whatever a group captured.
            if out.len() > MAX_FIELD * 8 {
                break;
            }
        }
        clean(&out)
    }
}

/// Make rendered text safe and tidy: no controls, no replacement characters, blanks folded, cut.
pub fn clean(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut count = 0;
    let mut blank = false;
    for c in s.chars() {
        if c.is_control() || c == char::REPLACEMENT_CHARACTER || c.is_whitespace() {
            // Whitespace and dropped bytes separate words; they never join them.
            blank = true;
            continue;
        }
        if blank && !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        blank = false;
        if count >= MAX_FIELD {
            break;
        }
        out.push(c);
        count += 1;
    }
    let out = out.trim().to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g<'a>(v: &[Option<&'a str>]) -> Vec<Option<&'a [u8]>> {
        v.iter().map(|s| s.map(str::as_bytes)).collect()
    }

    #[test]
    fn groups_are_substituted() {
        let t = Template::parse("OpenSSH $2 (protocol ${1})", 2).unwrap();
        assert_eq!(t.render(&g(&[Some("x"), Some("2.0"), Some("9.2p1")])).unwrap(), "OpenSSH 9.2p1 (protocol 2.0)");
    }

    #[test]
    fn replacement_and_dollar() {
        let t = Template::parse("${1/-/ } costs $$5", 1).unwrap();
        assert_eq!(t.render(&g(&[None, Some("Debian-2+deb12u3")])).unwrap(), "Debian 2+deb12u3 costs $5");
    }

    #[test]
    fn missing_group_leaves_field_out() {
        let t = Template::parse("$1", 1).unwrap();
        assert_eq!(t.render(&g(&[Some("whole"), None])), None);
        let t = Template::parse("v$1", 1).unwrap();
        assert_eq!(t.render(&g(&[Some("whole"), None])).unwrap(), "v");
    }

    #[test]
    fn binary_numbers_in_decimal() {
        let t = Template::parse("${1:be}.${2:le} r${3:be}", 3).unwrap();
        let groups: Vec<Option<&[u8]>> =
            vec![None, Some(b"\x0f"), Some(b"\xd0\x07"), Some(b"\xff\xff\xff\xff\xff\xff\xff\xff")];
        assert_eq!(t.render(&groups).unwrap(), "15.2000 r18446744073709551615");
        // Nine bytes do not fit: the number is left out, not wrapped.
        let nine: &[u8] = &[1; 9];
        assert_eq!(Template::parse("${1:le}", 1).unwrap().render(&[None, Some(nine)]), None);
        assert!(Template::parse("${1:hex}", 1).is_err());
        assert!(Template::parse("${2:be}", 1).is_err());
    }

    #[test]
    fn bad_templates() {
        assert!(Template::parse("$2", 1).is_err());
        assert!(Template::parse("$0", 1).is_err());
        assert!(Template::parse("${1", 1).is_err());
        assert!(Template::parse("${1/x}", 1).is_err());
        assert!(Template::parse("${a}", 1).is_err());
        assert!(Template::parse("50$", 1).is_err());
    }

    #[test]
    fn network_bytes_are_cleaned_and_cut() {
        let t = Template::parse("$1", 1).unwrap();
        let hostile: &[u8] = b"\x1b[2J\x1b]0;pwn\x07 a\x00b \xff\xfe <x>\r\n";
        let out = t.render(&[None, Some(hostile)]).unwrap();
        assert!(!out.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER), "{out:?}");
        assert_eq!(out, "[2J ]0;pwn a b <x>");
        let long = "x".repeat(10_000);
        assert_eq!(t.render(&[None, Some(long.as_bytes())]).unwrap().chars().count(), MAX_FIELD);
    }
}
