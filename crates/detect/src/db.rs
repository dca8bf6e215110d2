//! The probe database: RustMap's own line-oriented format (specified in `docs/service-probes.md`),
//! its parser, and the in-memory shapes the engine works from.
//!
//! A database is a list of probes; each probe owns the match rules that read its responses. The
//! parser reports every bad line with the file name and line number ([`DbError`]) and never
//! panics: a `--probe-db` file is user input. Regexes are compiled here with size limits, so that
//! matching later is linear in the response length and bounded in memory.

use crate::template::Template;
use regex::bytes::{Regex, RegexBuilder};
use std::fmt;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// The probe database shipped inside the binary.
const BUILTIN: &str = include_str!("../data/probes.rmp");

/// Compiled-program size limit per rule: generous for a banner rule, small enough that a hostile
/// `--probe-db` cannot ask for gigabytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache per rule; past it the regex crate falls back to a slower, still linear, engine.
const REGEX_DFA_LIMIT: usize = 1 << 20;
/// Nesting limit of a pattern (the parser's recursion).
const REGEX_NEST_LIMIT: u32 = 64;
/// Longest accepted probe payload.
pub const MAX_PAYLOAD: usize = 4096;
/// Shortest and longest accepted `wait`.
const MIN_WAIT: Duration = Duration::from_millis(100);
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The transport a probe is sent over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP connection.
    Tcp,
    /// UDP datagrams.
    Udp,
}

/// A place in a database file, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File name as given (`<builtin>` for the embedded database).
    pub file: String,
    /// Line number, from 1.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One bad line of a database.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}: {message}")]
pub struct DbError {
    /// Where.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in one database file (the parser does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read probe database {file}: {message}")]
    Io {
        /// File name.
        file: String,
        /// The system's message.
        message: String,
    },
    /// The file has bad lines.
    #[error("{}", fmt_errors(.0))]
    Syntax(Vec<DbError>),
}

fn fmt_errors(errors: &[DbError]) -> String {
    const SHOWN: usize = 20;
    let mut s: Vec<String> = errors.iter().take(SHOWN).map(|e| e.to_string()).collect();
    if errors.len() > SHOWN {
        s.push(format!("... and {} more errors", errors.len() - SHOWN));
    }
    s.join("\n")
}

/// Inclusive port ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    /// Does the set hold `port`?
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port))
    }

    fn parse(s: &str) -> Result<PortSet, String> {
        let mut v = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (item, item),
            };
            let p = |x: &str| x.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| format!("bad port {x:?}"));
            let (lo, hi) = (p(lo)?, p(hi)?);
            if lo > hi {
                return Err(format!("bad port range {item:?}"));
            }
            v.push((lo, hi));
        }
        if v.is_empty() {
            return Err("empty port list".into());
        }
        Ok(PortSet(v))
    }
}

/// What a match rule fills in, each a template over the pattern's capture groups.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    /// Product name.
    pub product: Option<Template>,
    /// Version.
    pub version: Option<Template>,
    /// Extra information (nmap's `extrainfo`).
    pub info: Option<Template>,
    /// Host name the service announces.
    pub hostname: Option<Template>,
    /// Operating system.
    pub os: Option<Template>,
    /// Device type.
    pub device: Option<Template>,
    /// CPE names (`cpe:/a:vendor:product:version`).
    pub cpe: Vec<Template>,
}

/// An answer written beside a rule (`example`), with the version the rule must report for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The answer's bytes.
    pub bytes: Vec<u8>,
    /// The version the rule reports for them; `None`: the rule must report no version.
    pub version: Option<String>,
    /// Where the example is written.
    pub origin: Origin,
}

/// A rule that reads one probe's responses.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Service name reported when the rule matches.
    pub service: String,
    /// A soft match names the service only and lets probing go on, narrowed to that service.
    pub soft: bool,
    /// The pattern (bytes; unicode off unless asked for with `(?u)`).
    pub regex: Regex,
    /// `tunnel ssl`: the service was seen through (or asking for) TLS.
    pub tunnel_ssl: bool,
    /// What to report.
    pub templates: Templates,
    /// Answers the rule is written for (checked by the database test, never sent or matched
    /// during a scan).
    pub examples: Vec<Example>,
    /// Where the rule is written.
    pub origin: Origin,
}

/// One probe: what to send, where it fits, how long to wait, and the rules for its answers.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Unique name (per transport).
    pub name: String,
    /// TCP or UDP.
    pub transport: Transport,
    /// Bytes sent; empty for a TCP probe that only listens (the banner grab, "null").
    pub payload: Vec<u8>,
    /// Ports this probe is made for: tried first there, whatever the intensity.
    pub ports: PortSet,
    /// 1 (common, always worth trying) to 9 (exotic).
    pub rarity: u8,
    /// Send inside TLS (the TLS engine of a later version runs these; plain probing skips them).
    pub tls: bool,
    /// Longest time to wait for an answer on a fast network (the engine adds RTT on top).
    pub wait: Duration,
    /// Names of other probes whose rules also read this probe's answers.
    pub fallback: Vec<String>,
    /// Rules, in the order they are tried.
    pub rules: Vec<Rule>,
    /// Where the probe is written.
    pub origin: Origin,
}

impl Probe {
    /// A probe that sends nothing and reads what the service says first.
    pub fn is_null(&self) -> bool {
        self.payload.is_empty() && self.transport == Transport::Tcp
    }
}

/// Version of the embedded database (`data/probes.rmp`), shown by `rustmap -V`. Bump it with
/// every change to that file, so that a bug report names the rules that were in use.
pub const BUILTIN_VERSION: u32 = 2;

/// The embedded database's text (for fingerprints of what a build carries).
pub const BUILTIN_TEXT: &str = BUILTIN;

/// A set of probes, in the order they were read.
#[derive(Debug, Clone, Default)]
pub struct ProbeDb {
    probes: Vec<Probe>,
}

impl ProbeDb {
    /// The embedded database.
    pub fn builtin() -> ProbeDb {
        // The embedded file is checked by a unit test; should it ever be broken, detection is
        // empty rather than the program dead.
        ProbeDb::parse("<builtin>", BUILTIN).unwrap_or_default()
    }

    /// Read a database file.
    pub fn load(path: &Path) -> Result<ProbeDb, LoadError> {
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| LoadError::Io { file: file.clone(), message: e.to_string() })?;
        ProbeDb::parse(&file, &text)
    }

    /// Add the probes of `other`. A probe with the name (and transport) of one already here adds
    /// its rules to it and, where given, replaces its settings; new probes are appended.
    pub fn merge(&mut self, other: ProbeDb) {
        for p in other.probes {
            match self.probes.iter_mut().find(|q| q.name == p.name && q.transport == p.transport) {
                Some(q) => {
                    let mut rules = std::mem::take(&mut q.rules);
                    // The user's rules come first: they are more specific than ours.
                    let mut merged = p.rules.clone();
                    merged.append(&mut rules);
                    *q = Probe { rules: merged, ..p };
                }
                None => self.probes.push(p),
            }
        }
    }

    /// Every probe.
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// The probe of this name and transport.
    pub fn index_of(&self, transport: Transport, name: &str) -> Option<usize> {
        self.probes.iter().position(|p| p.transport == transport && p.name == name)
    }

    /// Parse a database from text; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<ProbeDb, LoadError> {
        let mut p = Parser { file, errors: Vec::new(), probes: Vec::new(), current: Current::None };
        for (i, raw) in text.lines().enumerate() {
            p.line(i + 1, raw);
        }
        p.close();
        p.check_fallbacks();
        if p.errors.is_empty() {
            Ok(ProbeDb { probes: p.probes })
        } else {
            Err(LoadError::Syntax(p.errors))
        }
    }
}

/// A rule being read: its attributes arrive on the following lines.
struct RuleDraft {
    service: String,
    soft: bool,
    pattern: Option<(String, usize)>,
    flags: String,
    tunnel_ssl: bool,
    fields: Vec<(String, String, usize)>,
    examples: Vec<Example>,
    origin: Origin,
}

enum Current {
    None,
    Probe,
    Rule(RuleDraft),
    /// After a statement that failed: its attribute lines are skipped quietly.
    Broken,
}

struct Parser<'a> {
    file: &'a str,
    errors: Vec<DbError>,
    probes: Vec<Probe>,
    current: Current,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'/')
}

impl Parser<'_> {
    fn origin(&self, line: usize) -> Origin {
        Origin { file: self.file.to_string(), line }
    }

    fn err(&mut self, line: usize, message: impl Into<String>) {
        self.errors.push(DbError { origin: self.origin(line), message: message.into() });
    }

    fn line(&mut self, n: usize, raw: &str) {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return;
        }
        let indented = raw.starts_with(' ') || raw.starts_with('\t');
        let (word, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (trimmed, ""),
        };
        if indented {
            self.attribute(n, word, rest);
        } else {
            self.close();
            self.statement(n, word, rest);
        }
    }

    fn statement(&mut self, n: usize, word: &str, rest: &str) {
        self.current = Current::Broken;
        match word {
            "probe" => {
                let mut it = rest.split_whitespace();
                let transport = match it.next() {
                    Some("tcp") => Transport::Tcp,
                    Some("udp") => Transport::Udp,
                    other => return self.err(n, format!("probe: transport must be tcp or udp, not {other:?}")),
                };
                let Some(name) = it.next().filter(|s| is_name(s)) else {
                    return self.err(n, "probe: needs a name (letters, digits, - _ . /)");
                };
                if it.next().is_some() {
                    return self.err(n, "probe: too many words (want: probe tcp|udp NAME)");
                }
                if self.probes.iter().any(|p| p.name == name && p.transport == transport) {
                    return self.err(n, format!("probe {name} is defined twice"));
                }
                self.probes.push(Probe {
                    name: name.to_string(),
                    transport,
                    payload: Vec::new(),
                    ports: PortSet::default(),
                    rarity: 5,
                    tls: false,
                    wait: Duration::from_secs(2),
                    fallback: Vec::new(),
                    rules: Vec::new(),
                    origin: self.origin(n),
                });
                self.current = Current::Probe;
            }
            "match" | "softmatch" => {
                if self.probes.is_empty() {
                    return self.err(n, format!("{word} before any probe (a rule belongs to the probe above it)"));
                }
                let mut it = rest.split_whitespace();
                let Some(service) = it.next().filter(|s| is_name(s)) else {
                    return self.err(n, format!("{word}: needs a service name"));
                };
                if it.next().is_some() {
                    return self.err(n, format!("{word}: too many words (the pattern goes on its own `pattern` line)"));
                }
                self.current = Current::Rule(RuleDraft {
                    service: service.to_string(),
                    soft: word == "softmatch",
                    pattern: None,
                    flags: String::new(),
                    tunnel_ssl: false,
                    fields: Vec::new(),
                    examples: Vec::new(),
                    origin: self.origin(n),
                });
            }
            other => self.err(n, format!("unknown statement {other:?} (want probe, match or softmatch)")),
        }
    }

    fn attribute(&mut self, n: usize, key: &str, value: &str) {
        match &mut self.current {
            Current::None => self.err(n, "indented line outside a probe or rule"),
            Current::Broken => {}
            Current::Probe => {
                if let Err(e) = self.probe_attribute(key, value) {
                    self.err(n, e);
                }
            }
            Current::Rule(draft) => {
                let result = match key {
                    "pattern" if draft.pattern.is_some() => Err("pattern given twice".to_string()),
                    "pattern" if value.is_empty() => Err("empty pattern".to_string()),
                    "pattern" => {
                        draft.pattern = Some((value.to_string(), n));
                        Ok(())
                    }
                    "flags" => {
                        if let Some(bad) = value.chars().find(|c| !"ism".contains(*c)) {
                            Err(format!("unknown flag {bad:?} (flags are i, s, m)"))
                        } else {
                            draft.flags = value.to_string();
                            Ok(())
                        }
                    }
                    "tunnel" if value == "ssl" => {
                        draft.tunnel_ssl = true;
                        Ok(())
                    }
                    "tunnel" => Err(format!("tunnel must be ssl, not {value:?}")),
                    "example" => match take_quoted(value, "example") {
                        Ok((_, version)) if draft.soft && !version.is_empty() => {
                            Err("example: a softmatch reports no version".to_string())
                        }
                        Ok((bytes, version)) => {
                            let origin = Origin { file: self.file.to_string(), line: n };
                            let version = (!version.is_empty()).then(|| version.to_string());
                            draft.examples.push(Example { bytes, version, origin });
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    "product" | "version" | "info" | "hostname" | "os" | "device" | "cpe" if draft.soft => {
                        Err(format!("{key}: a softmatch names the service only"))
                    }
                    "product" | "version" | "info" | "hostname" | "os" | "device" | "cpe" => {
                        if draft.fields.iter().any(|(k, _, _)| k == key) && key != "cpe" {
                            Err(format!("{key} given twice"))
                        } else if value.is_empty() {
                            Err(format!("{key}: empty value"))
                        } else {
                            draft.fields.push((key.to_string(), value.to_string(), n));
                            Ok(())
                        }
                    }
                    other => Err(format!("unknown rule attribute {other:?}")),
                };
                if let Err(e) = result {
                    self.err(n, e);
                }
            }
        }
    }

    fn probe_attribute(&mut self, key: &str, value: &str) -> Result<(), String> {
        let Some(probe) = self.probes.last_mut() else { return Err("no probe".into()) };
        match key {
            "send" => {
                let (bytes, rest) = take_quoted(value, "send")?;
                if !rest.is_empty() {
                    return Err(format!("send: text after the closing quote: {rest:?}"));
                }
                if probe.payload.len() + bytes.len() > MAX_PAYLOAD {
                    return Err(format!("payload longer than {MAX_PAYLOAD} bytes"));
                }
                probe.payload.extend_from_slice(&bytes);
            }
            "ports" => probe.ports = PortSet::parse(value)?,
            "rarity" => {
                probe.rarity = value
                    .parse()
                    .ok()
                    .filter(|r| (1..=9).contains(r))
                    .ok_or_else(|| format!("rarity must be 1-9, not {value:?}"))?
            }
            "wait" => {
                let d = parse_duration(value)?;
                if !(MIN_WAIT..=MAX_WAIT).contains(&d) {
                    return Err(format!("wait must be between {MIN_WAIT:?} and {MAX_WAIT:?}"));
                }
                probe.wait = d;
            }
            "tls" if value.is_empty() || value == "yes" => probe.tls = true,
            "tls" if value == "no" => probe.tls = false,
            "tls" => return Err(format!("tls takes no value, yes or no, not {value:?}")),
            "fallback" => {
                for name in value.split(',').map(str::trim) {
                    if !is_name(name) {
                        return Err(format!("fallback: bad probe name {name:?}"));
                    }
                    probe.fallback.push(name.to_string());
                }
            }
            other => return Err(format!("unknown probe attribute {other:?}")),
        }
        Ok(())
    }

    /// Finish the statement being read (a rule is compiled once all its lines are in).
    fn close(&mut self) {
        let cur = std::mem::replace(&mut self.current, Current::None);
        if let Current::Rule(d) = cur {
            let line = d.origin.line;
            match compile_rule(d) {
                Ok(rule) => {
                    if let Some(p) = self.probes.last_mut() {
                        p.rules.push(rule);
                    }
                }
                Err(errors) => {
                    for (l, e) in errors {
                        self.err(l.unwrap_or(line), e);
                    }
                }
            }
        }
    }

    fn check_fallbacks(&mut self) {
        let mut bad = Vec::new();
        for p in &self.probes {
            if p.transport == Transport::Udp && p.payload.is_empty() {
                bad.push((p.origin.line, format!("udp probe {} has nothing to send", p.name)));
            }
            for f in &p.fallback {
                if !self.probes.iter().any(|q| &q.name == f && q.transport == p.transport) {
                    bad.push((
                        p.origin.line,
                        format!("probe {}: fallback {f} is not a probe of the same transport", p.name),
                    ));
                }
            }
        }
        for (l, m) in bad {
            self.err(l, m);
        }
    }
}

type LineErrors = Vec<(Option<usize>, String)>;

fn compile_rule(d: RuleDraft) -> Result<Rule, LineErrors> {
    let Some((pattern, pattern_line)) = d.pattern else {
        return Err(vec![(
            None,
            format!("{} {}: no pattern line", if d.soft { "softmatch" } else { "match" }, d.service),
        )]);
    };
    let regex = RegexBuilder::new(&pattern)
        .unicode(false)
        .case_insensitive(d.flags.contains('i'))
        .dot_matches_new_line(d.flags.contains('s'))
        .multi_line(d.flags.contains('m'))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| {
            // The regex crate's message spans lines; one line per error reads better in a list.
            let msg = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            vec![(Some(pattern_line), format!("bad pattern: {msg}"))]
        })?;
    let groups = regex.captures_len().saturating_sub(1);
    let mut t = Templates::default();
    let mut errors = Vec::new();
    for (key, value, line) in d.fields {
        match Template::parse(&value, groups) {
            Ok(tpl) => match key.as_str() {
                "product" => t.product = Some(tpl),
                "version" => t.version = Some(tpl),
                "info" => t.info = Some(tpl),
                "hostname" => t.hostname = Some(tpl),
                "os" => t.os = Some(tpl),
                "device" => t.device = Some(tpl),
                _ => t.cpe.push(tpl),
            },
            Err(e) => errors.push((Some(line), format!("{key}: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Rule {
        service: d.service,
        soft: d.soft,
        regex,
        tunnel_ssl: d.tunnel_ssl,
        templates: t,
        examples: d.examples,
        origin: d.origin,
    })
}

/// `"GET / HTTP/1.0\r\n\r\n" rest`: a double-quoted string with `\r \n \t \0 \\ \" \xHH`
/// escapes at the start of `s`, and the trimmed text after its closing quote. `key` names the
/// attribute in messages.
fn take_quoted<'a>(s: &'a str, key: &str) -> Result<(Vec<u8>, &'a str), String> {
    let inner = s.strip_prefix('"').ok_or_else(|| format!("{key}: the bytes must be a double-quoted string"))?;
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.bytes().enumerate();
    while let Some((i, b)) = it.next() {
        if b == b'"' {
            return Ok((out, inner[i + 1..].trim()));
        }
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next().map(|(_, c)| c) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'"') => out.push(b'"'),
            Some(b'x') => {
                let hex = [it.next().map(|(_, c)| c), it.next().map(|(_, c)| c)];
                let digits: Option<Vec<u8>> =
                    hex.iter().map(|d| d.and_then(|d| (d as char).to_digit(16).map(|v| v as u8))).collect();
                match digits {
                    Some(d) => out.push(d[0] * 16 + d[1]),
                    None => return Err(format!("{key}: \\x needs two hex digits")),
                }
            }
            Some(other) => return Err(format!("{key}: unknown escape \\{}", other as char)),
            None => return Err(format!("{key}: string ends with a lone backslash")),
        }
    }
    Err(format!("{key}: no closing quote"))
}

#[cfg(test)]
fn unquote(s: &str) -> Result<Vec<u8>, String> {
    match take_quoted(s, "send")? {
        (bytes, "") => Ok(bytes),
        (_, rest) => Err(format!("text after the closing quote: {rest:?}")),
    }
}

/// `1500ms`, `2s`, `2.5s`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("wait needs a unit (ms or s): {s:?}"));
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("bad duration {s:?}"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(usize, String)> {
        match ProbeDb::parse("t.rmp", text) {
            Ok(_) => Vec::new(),
            Err(LoadError::Syntax(e)) => e.into_iter().map(|e| (e.origin.line, e.message)).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn builtin_database_parses() {
        let db = ProbeDb::parse("<builtin>", BUILTIN).unwrap_or_else(|e| panic!("{e}"));
        assert!(db.probes().len() >= 8);
        assert!(db.probes().iter().any(|p| p.is_null()));
        let rules: usize = db.probes().iter().map(|p| p.rules.len()).sum();
        assert!(rules >= 30, "{rules} rules");
    }

    #[test]
    fn good_probe_and_rules() {
        let text = "# comment\n\nprobe tcp web\n  send \"GET / HTTP/1.0\\r\\n\\r\\n\"\n  ports 80, 8000-8010\n  rarity 2\n  wait 1500ms\n\nmatch http\n  pattern ^HTTP/1\\.[01] \\d+.*\\r\\nServer: nginx/([\\d.]+)\n  flags is\n  product nginx\n  version $1\n  cpe cpe:/a:f5:nginx:$1\nsoftmatch http\n  pattern ^HTTP/\n";
        let db = ProbeDb::parse("t.rmp", text).unwrap();
        let p = &db.probes()[0];
        assert_eq!(p.name, "web");
        assert_eq!(p.payload, b"GET / HTTP/1.0\r\n\r\n");
        assert!(p.ports.contains(8005) && p.ports.contains(80) && !p.ports.contains(81));
        assert_eq!((p.rarity, p.wait), (2, Duration::from_millis(1500)));
        assert_eq!(p.rules.len(), 2);
        assert!(!p.rules[0].soft && p.rules[1].soft);
        assert_eq!(p.rules[0].origin.line, 9);
        assert_eq!(p.rules[0].templates.cpe.len(), 1);
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let text = "probe tcp a\n  rarity 12\n  send \"x\\q\"\n  colour blue\nprobe sctp b\n  rarity 1\nmatch ssh\n  pattern ^SSH-(\n  product $3\nfrobnicate\n";
        let e = errors(text);
        let lines: Vec<usize> = e.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 8, 10], "{e:?}");
        assert!(e[0].1.contains("rarity"));
        assert!(e[1].1.contains("escape"));
        assert!(e[2].1.contains("colour"));
        assert!(e[3].1.contains("transport"));
        assert!(e[4].1.contains("bad pattern"));
        assert!(e[5].1.contains("frobnicate"));
    }

    #[test]
    fn template_group_out_of_range_names_its_line() {
        let e = errors("probe tcp a\nmatch x\n  pattern ^a(b)\n  product p\n  version $2\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 5);
        assert!(e[0].1.contains("$2"), "{e:?}");
    }

    #[test]
    fn rule_without_pattern_and_rule_before_probe() {
        let e = errors("match x\n  pattern a\nprobe tcp a\nmatch y\n  product p\n");
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 4], "{e:?}");
    }

    #[test]
    fn duplicate_probe_unknown_fallback_and_empty_udp() {
        let e = errors("probe tcp a\n  fallback nosuch\nprobe tcp a\nprobe udp u\n");
        let msgs: Vec<&str> = e.iter().map(|x| x.1.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("twice")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("nosuch")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("nothing to send")), "{msgs:?}");
    }

    #[test]
    fn oversized_pattern_is_an_error_not_an_allocation() {
        let e = errors("probe tcp a\nmatch x\n  pattern (?:a{1000}){1000}\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].1.contains("bad pattern"), "{e:?}");
    }

    #[test]
    fn payload_escapes() {
        assert_eq!(unquote(r#""a\x00\xff\"\\b""#).unwrap(), b"a\x00\xff\"\\b");
        assert!(unquote("no quotes").is_err());
        assert!(unquote(r#""\x4""#).is_err());
        assert!(unquote(r#""a"b""#).is_err());
        assert!(unquote("\"").is_err());
    }

    #[test]
    fn examples_carry_bytes_and_the_expected_version() {
        let text = "probe tcp null\nmatch ftp\n  pattern ^220 X (\\d\\S*)\n  version $1\n  example \"220 X 1.2 \\\"q\\\"\\r\\n\"  1.2 beta \n  example \"220 X\\r\\n\"\n";
        let db = ProbeDb::parse("t.rmp", text).unwrap();
        let ex = &db.probes()[0].rules[0].examples;
        assert_eq!(ex.len(), 2);
        assert_eq!((ex[0].bytes.as_slice(), ex[0].version.as_deref()), (&b"220 X 1.2 \"q\"\r\n"[..], Some("1.2 beta")));
        assert_eq!((ex[1].bytes.as_slice(), ex[1].version.as_deref(), ex[1].origin.line), (&b"220 X\r\n"[..], None, 6));
        let e = errors("probe tcp null\nmatch ftp\n  pattern ^220\n  example no quotes\nsoftmatch ftp\n  pattern ^2\n  example \"2\" 1.0\nprobe tcp b\n  send \"x\" y\n");
        assert_eq!(e.iter().map(|x| x.0).collect::<Vec<_>>(), vec![4, 7, 9], "{e:?}");
    }

    #[test]
    fn merge_puts_user_rules_first() {
        let mut a = ProbeDb::parse("a", "probe tcp null\nmatch ssh\n  pattern ^SSH-\n").unwrap();
        let b = ProbeDb::parse("b", "probe tcp null\nmatch mine\n  pattern ^SSH-2\nprobe tcp other\n  send \"x\"\n")
            .unwrap();
        a.merge(b);
        assert_eq!(a.probes().len(), 2);
        let names: Vec<&str> = a.probes()[0].rules.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(names, ["mine", "ssh"]);
    }
}
