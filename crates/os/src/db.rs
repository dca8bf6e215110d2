//! RustMap's OS fingerprint database: its format, its checks and the built-in copy.
//!
//! The format is JSON, versioned (docs/os-detection.md specifies it):
//!
//! ```json
//! { "format": "rustmap-os-db", "version": 1, "hint_weight": 15,
//!   "weights": { "ttl": 20 },
//!   "entries": [ { "id": "linux-4-6", "name": "Linux 4.x - 6.x",
//!     "classes": [ { "vendor": "Linux", "family": "Linux", "generation": "6.X",
//!                    "device_type": "general purpose", "cpe": ["cpe:/o:linux:linux_kernel:6"] } ],
//!     "source": "lab: Debian 13, kernel 6.12, default sysctls",
//!     "tests": { "ttl": 64, "seq1.win": [65160, 64240], "isn.spread": { "min": 20 } },
//!     "weights": { "seq.ws": 4 } } ] }
//! ```
//!
//! A test's expectation is a value (equal), a list (any of), or `{"min", "max"}` (an inclusive
//! range of numbers). `weights` at the top override the default weight of a test for every entry;
//! an entry's `weights` override them for that entry. Loading checks everything a matcher relies
//! on — known test names, values of the test's kind, unique ids, weights in 1..=100, sizes — and
//! names the entry and test of the first problem.

use crate::fingerprint::{test_def, Fingerprint, Kind, Value};
use rustmap_model::OsClass;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The built-in database's text.
const BUILTIN: &str = include_str!("../data/os-db.json");

/// The format name in every database file.
pub const FORMAT: &str = "rustmap-os-db";
/// The format version this code reads.
pub const VERSION: u32 = 1;
/// The largest database file read (bytes).
pub const MAX_BYTES: usize = 8 << 20;
/// The most entries a database may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// The most values an any-of expectation lists.
pub const MAX_ANY_OF: usize = 64;
/// The longest string in a name, class field or CPE.
const MAX_TEXT: usize = 256;
/// The longest `source` note.
const MAX_SOURCE: usize = 1024;

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// Not JSON, or not the database's shape.
    #[error("{origin}: line {line}, column {column}: {message}")]
    Json {
        /// The file (or "built-in").
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde said.
        message: String,
    },
    /// The file as a whole is wrong (format, version, size).
    #[error("{origin}: {what}")]
    Format {
        /// The file.
        origin: String,
        /// What is wrong.
        what: String,
    },
    /// One entry is wrong.
    #[error("{origin}: entry {id:?}: {what}")]
    Entry {
        /// The file.
        origin: String,
        /// The entry's id (or its index when it has none).
        id: String,
        /// What is wrong.
        what: String,
    },
}

/// What an entry expects of a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expect {
    /// Exactly this value.
    Is(Value),
    /// Any of these values.
    AnyOf(Vec<Value>),
    /// A number in this inclusive range (either bound may be left out).
    Range(Range),
}

impl std::fmt::Display for Expect {
    /// `64`, `a|b|c`, `14480..65535` (`..9`, `20..` with one bound).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Is(v) => write!(f, "{v}"),
            Expect::AnyOf(list) => {
                let words: Vec<String> = list.iter().map(Value::to_string).collect();
                write!(f, "{}", words.join("|"))
            }
            Expect::Range(r) => {
                let b = |x: Option<i64>| x.map(|v| v.to_string()).unwrap_or_default();
                write!(f, "{}..{}", b(r.min), b(r.max))
            }
        }
    }
}

/// An inclusive range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lowest value admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Highest value admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

impl Expect {
    /// Whether `v` meets the expectation.
    pub fn admits(&self, v: &Value) -> bool {
        match self {
            Expect::Is(e) => e == v,
            Expect::AnyOf(list) => list.contains(v),
            Expect::Range(r) => match v {
                Value::Int(i) => r.min.is_none_or(|m| *i >= m) && r.max.is_none_or(|m| *i <= m),
                _ => false,
            },
        }
    }
}

/// One class of an entry (nmap's `<osclass>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    /// Vendor ("Linux", "Microsoft", "lwIP").
    pub vendor: String,
    /// Family ("Linux", "Windows", "embedded").
    pub family: String,
    /// Generation ("6.X"), when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Device type ("general purpose", "router", "specialized").
    pub device_type: String,
    /// CPE names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpe: Vec<String>,
}

impl From<&Class> for OsClass {
    fn from(c: &Class) -> OsClass {
        OsClass {
            vendor: c.vendor.clone(),
            family: c.family.clone(),
            generation: c.generation.clone(),
            device_type: c.device_type.clone(),
            cpe: c.cpe.clone(),
        }
    }
}

/// One fingerprint entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Unique id (letters, digits, `-`, `.`, `_`).
    pub id: String,
    /// What people call it ("Linux 4.x - 6.x").
    pub name: String,
    /// Its classes.
    pub classes: Vec<Class>,
    /// Where the expectations come from (a lab capture, a document).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Test name → expectation.
    pub tests: BTreeMap<String, Expect>,
    /// Test name → weight for this entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
}

impl Entry {
    /// An entry that expects exactly what `fp` shows (one capture; [`crate::capture`] merges
    /// several read from files).
    pub fn from_fingerprint(fp: &Fingerprint, id: &str, name: &str, classes: Vec<Class>, source: &str) -> Entry {
        Entry {
            id: id.into(),
            name: name.into(),
            classes,
            source: source.into(),
            tests: fp.tests.iter().map(|(k, v)| (k.clone(), Expect::Is(v.clone()))).collect(),
            weights: BTreeMap::new(),
        }
    }
}

/// The file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    version: u32,
    #[serde(default = "default_hint_weight")]
    hint_weight: u32,
    #[serde(default)]
    weights: BTreeMap<String, u32>,
    entries: Vec<Entry>,
}

fn default_hint_weight() -> u32 {
    15
}

/// A checked database.
#[derive(Debug, Clone)]
pub struct Database {
    entries: Vec<Entry>,
    weights: BTreeMap<String, u32>,
    hint_weight: u32,
}

impl Database {
    /// The database built into RustMap.
    pub fn builtin() -> Result<Database, DbError> {
        Database::from_json(BUILTIN, "built-in OS database")
    }

    /// Parse and check a database; `origin` names it in errors (a path).
    pub fn from_json(text: &str, origin: &str) -> Result<Database, DbError> {
        let fmt_err = |what: String| DbError::Format { origin: origin.into(), what };
        if text.len() > MAX_BYTES {
            return Err(fmt_err(format!("{} bytes, more than the {MAX_BYTES} allowed", text.len())));
        }
        let file: File = serde_json::from_str(text).map_err(|e| DbError::Json {
            origin: origin.into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if file.format != FORMAT {
            return Err(fmt_err(format!("format {:?}, expected {FORMAT:?}", file.format)));
        }
        if file.version != VERSION {
            return Err(fmt_err(format!("version {}, this RustMap reads version {VERSION}", file.version)));
        }
        if file.entries.len() > MAX_ENTRIES {
            return Err(fmt_err(format!("{} entries, more than the {MAX_ENTRIES} allowed", file.entries.len())));
        }
        if !(1..=100).contains(&file.hint_weight) {
            return Err(fmt_err(format!("hint_weight {} is not in 1..=100", file.hint_weight)));
        }
        check_weights(&file.weights).map_err(fmt_err)?;
        let mut ids = HashSet::new();
        for (i, e) in file.entries.iter().enumerate() {
            let bad = |what: String| DbError::Entry {
                origin: origin.into(),
                id: if e.id.is_empty() { format!("#{}", i + 1) } else { e.id.clone() },
                what,
            };
            check_entry(e).map_err(bad)?;
            if !ids.insert(e.id.as_str()) {
                return Err(bad("id used twice".into()));
            }
        }
        Ok(Database { entries: file.entries, weights: file.weights, hint_weight: file.hint_weight })
    }

    /// A database of `entries` with the default weights, checked as a file would be.
    pub fn with_entries(entries: Vec<Entry>, origin: &str) -> Result<Database, DbError> {
        let file = File {
            format: FORMAT.into(),
            version: VERSION,
            hint_weight: default_hint_weight(),
            weights: BTreeMap::new(),
            entries,
        };
        let text =
            serde_json::to_string(&file).map_err(|e| DbError::Format { origin: origin.into(), what: e.to_string() })?;
        Database::from_json(&text, origin)
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The weight of `test` in `entry`.
    pub fn weight(&self, entry: &Entry, test: &str) -> u32 {
        entry
            .weights
            .get(test)
            .or_else(|| self.weights.get(test))
            .copied()
            .or_else(|| test_def(test).map(|d| d.weight))
            .unwrap_or(0)
    }

    /// The weight of one service hint.
    pub fn hint_weight(&self) -> u32 {
        self.hint_weight
    }

    /// The database as JSON text (what `from_json` reads back).
    pub fn to_json(&self) -> String {
        let file = File {
            format: FORMAT.into(),
            version: VERSION,
            hint_weight: self.hint_weight,
            weights: self.weights.clone(),
            entries: self.entries.clone(),
        };
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }
}

fn check_weights(w: &BTreeMap<String, u32>) -> Result<(), String> {
    for (name, v) in w {
        if test_def(name).is_none() {
            return Err(format!("weight for unknown test {name:?}"));
        }
        if !(1..=100).contains(v) {
            return Err(format!("weight {v} of {name:?} is not in 1..=100"));
        }
    }
    Ok(())
}

fn check_text(what: &str, s: &str, may_be_empty: bool) -> Result<(), String> {
    check_len(what, s, may_be_empty, MAX_TEXT)
}

fn check_len(what: &str, s: &str, may_be_empty: bool, max: usize) -> Result<(), String> {
    if (!may_be_empty && s.trim().is_empty()) || s.len() > max || s.chars().any(char::is_control) {
        return Err(format!("{what} {s:?} must be 1 to {max} printable characters"));
    }
    Ok(())
}

fn check_entry(e: &Entry) -> Result<(), String> {
    if e.id.is_empty()
        || e.id.len() > 64
        || !e.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err("id must be 1 to 64 letters, digits, '-', '.' or '_'".into());
    }
    check_text("name", &e.name, false)?;
    check_len("source", &e.source, true, MAX_SOURCE)?;
    if e.classes.is_empty() || e.classes.len() > 16 {
        return Err("needs 1 to 16 classes".into());
    }
    for c in &e.classes {
        check_text("vendor", &c.vendor, false)?;
        check_text("family", &c.family, false)?;
        check_text("device_type", &c.device_type, false)?;
        if let Some(g) = &c.generation {
            check_text("generation", g, false)?;
        }
        for cpe in &c.cpe {
            check_text("cpe", cpe, false)?;
            if !cpe.starts_with("cpe:/") {
                return Err(format!("cpe {cpe:?} does not start with \"cpe:/\""));
            }
        }
    }
    if e.tests.is_empty() {
        return Err("has no tests".into());
    }
    for (name, exp) in &e.tests {
        let def = test_def(name).ok_or_else(|| format!("unknown test {name:?}"))?;
        let kinds_ok = match exp {
            Expect::Is(v) => def.kind.admits(v),
            Expect::AnyOf(list) => {
                !list.is_empty() && list.len() <= MAX_ANY_OF && list.iter().all(|v| def.kind.admits(v))
            }
            Expect::Range(r) => {
                def.kind == Kind::Int && (r.min.is_some() || r.max.is_some()) && r.min <= r.max.or(r.min)
            }
        };
        if !kinds_ok {
            return Err(format!("test {name:?}: {} is not a valid expectation for it", serde_json::json!(exp)));
        }
    }
    check_weights(&e.weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"format":"rustmap-os-db","version":1,"entries":[
        {"id":"a","name":"A","classes":[{"vendor":"V","family":"F","device_type":"general purpose"}],
         "tests":{"ttl":64,"seq1.win":[1,2],"isn.spread":{"min":20}}}]}"#;

    #[test]
    fn builtin_loads_and_round_trips() {
        let db = Database::builtin().unwrap();
        assert!(db.entries().len() >= 5);
        let again = Database::from_json(&db.to_json(), "copy").unwrap();
        assert_eq!(again.entries(), db.entries());
    }

    #[test]
    fn expectations() {
        let db = Database::from_json(ONE, "t").unwrap();
        let e = &db.entries()[0];
        assert!(e.tests["ttl"].admits(&Value::Int(64)));
        assert!(!e.tests["ttl"].admits(&Value::Int(128)));
        assert!(e.tests["seq1.win"].admits(&Value::Int(2)));
        assert!(e.tests["isn.spread"].admits(&Value::Int(31)));
        assert!(!e.tests["isn.spread"].admits(&Value::Int(3)));
        assert_eq!(db.weight(e, "ttl"), 20);
        let shown: Vec<String> = ["ttl", "seq1.win", "isn.spread"].iter().map(|t| e.tests[*t].to_string()).collect();
        assert_eq!(shown, ["64", "1|2", "20.."]);
    }

    fn err(text: &str) -> String {
        Database::from_json(text, "my.json").unwrap_err().to_string()
    }

    #[test]
    fn bad_files_are_named_errors() {
        assert!(err("{").starts_with("my.json: line 1"), "{}", err("{"));
        assert!(err(&ONE.replace("rustmap-os-db", "x")).contains("format \"x\""));
        assert!(err(&ONE.replace("\"version\":1", "\"version\":2")).contains("version 2"));
        let e = err(&ONE.replace("\"ttl\":64", "\"ttl\":\"64\""));
        assert!(e.contains("entry \"a\"") && e.contains("\"ttl\""), "{e}");
        let e = err(&ONE.replace("\"ttl\":64", "\"tll\":64"));
        assert!(e.contains("unknown test \"tll\""), "{e}");
        let e = err(&ONE.replace("{\"min\":20}", "{\"min\":20,\"max\":3}"));
        assert!(e.contains("isn.spread"), "{e}");
        let e = err(&ONE.replace("\"id\":\"a\"", "\"id\":\"a b\""));
        assert!(e.contains("id must be"), "{e}");
        let dup = ONE.replace("\"entries\":[", "\"entries\":[{\"id\":\"a\",\"name\":\"B\",\"classes\":[{\"vendor\":\"V\",\"family\":\"F\",\"device_type\":\"d\"}],\"tests\":{\"ttl\":1}},");
        assert!(err(&dup).contains("id used twice"), "{}", err(&dup));
        let w = ONE.replace("\"entries\"", "\"weights\":{\"ttl\":0},\"entries\"");
        assert!(err(&w).contains("weight 0"), "{}", err(&w));
        let cpe = ONE.replace("\"device_type\"", "\"cpe\":[\"linux\"],\"device_type\"");
        assert!(err(&cpe).contains("cpe \"linux\""), "{}", err(&cpe));
        let big = " ".repeat(MAX_BYTES + 1);
        assert!(err(&big).contains("more than"));
    }
}
