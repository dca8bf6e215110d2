//! A script as the engine knows it: its source and the fields NSE scripts declare at top level
//! (`description`, `categories`, `author`, `license`, `dependencies`, the four rules and
//! `action`), read by running the script's chunk once in a sandbox; and the [`Catalog`] of
//! scripts to choose from — the built-ins embedded in the binary, `~/.rustmap/scripts/`, and
//! files or directories named on the command line — with `--script` selection over it.
//! Python (`py-*.py`) and WASM (`*.wasm`, `*.wat`) scripts are [`Script`]s too, with their
//! [`Kind`]; their fields are read without running them (see [`crate::python::meta`] and
//! the `wasm` module).

use crate::error::ScriptError;
use crate::libs::{self, Context};
use crate::sandbox::{Limits, Sandbox};
use crate::selection::{split_list, Expr, SelectError, Selectable};
use mlua::{Table, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a script came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in RustMap.
    Builtin,
    /// A file.
    File(PathBuf),
}

/// What a script is written in, which decides how the engine runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// NSE-style Lua 5.4, run in the in-process sandbox.
    Lua,
    /// Python 3 (`py-*.py`), run in a limited worker process.
    Python,
    /// A WebAssembly module (`*.wasm`, or `*.wat` text), run by wasmi (feature `wasm`).
    Wasm,
}

/// A WASM script's module, in the binary format.
#[derive(Clone, PartialEq, Eq)]
pub struct WasmCode(pub Arc<[u8]>);

impl std::fmt::Debug for WasmCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WasmCode({} bytes)", self.0.len())
    }
}

/// Which rules a script defines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Runs once before the hosts.
    pub prerule: bool,
    /// Runs per host.
    pub hostrule: bool,
    /// Runs per port.
    pub portrule: bool,
    /// Runs once after the hosts.
    pub postrule: bool,
}

impl Rules {
    /// The rules a script defines, by `defined(name)`; a script needs `action` and at least one
    /// rule, whatever its kind.
    fn defined(id: &str, defined: impl Fn(&str) -> bool) -> Result<Rules, ScriptError> {
        if !defined("action") {
            return Err(ScriptError::Load { message: format!("{id}: no action function") });
        }
        let rules = Rules {
            prerule: defined("prerule"),
            hostrule: defined("hostrule"),
            portrule: defined("portrule"),
            postrule: defined("postrule"),
        };
        if rules == Rules::default() {
            return Err(ScriptError::Load { message: format!("{id}: no rule function") });
        }
        Ok(rules)
    }
}

/// One script.
#[derive(Debug, Clone)]
pub struct Script {
    /// Its name: the file name without `.nse` (`http-title`).
    pub id: String,
    /// Where it came from.
    pub origin: Origin,
    /// Its Lua source.
    pub source: Arc<str>,
    /// `description`.
    pub description: String,
    /// `categories`.
    pub categories: Vec<String>,
    /// `author` (a string or a list in NSE).
    pub author: Vec<String>,
    /// `license`.
    pub license: String,
    /// `dependencies`: scripts that must run first when selected too.
    pub dependencies: Vec<String>,
    /// Its rules.
    pub rules: Rules,
    /// What it is written in.
    pub kind: Kind,
    /// The module of a WASM script (`source` is then empty).
    pub wasm: Option<WasmCode>,
}

/// Built-in scripts, written for RustMap.
const BUILTINS: &[(&str, &str)] = &[
    ("banner", include_str!("../scripts/banner.nse")),
    ("http-title", include_str!("../scripts/http-title.nse")),
    ("ssl-cert", include_str!("../scripts/ssl-cert.nse")),
    ("ssh-hostkey", include_str!("../scripts/ssh-hostkey.nse")),
    ("http-server-header", include_str!("../scripts/http-server-header.nse")),
    ("http-methods", include_str!("../scripts/http-methods.nse")),
    ("http-robots", include_str!("../scripts/http-robots.nse")),
    ("http-security-headers", include_str!("../scripts/http-security-headers.nse")),
    ("http-favicon-hash", include_str!("../scripts/http-favicon-hash.nse")),
    ("http-open-redirect", include_str!("../scripts/http-open-redirect.nse")),
    ("http-cors", include_str!("../scripts/http-cors.nse")),
    ("smtp-commands", include_str!("../scripts/smtp-commands.nse")),
    ("pop3-capabilities", include_str!("../scripts/pop3-capabilities.nse")),
    ("imap-capabilities", include_str!("../scripts/imap-capabilities.nse")),
    ("redis-info", include_str!("../scripts/redis-info.nse")),
    ("memcached-info", include_str!("../scripts/memcached-info.nse")),
    ("postgresql-info", include_str!("../scripts/postgresql-info.nse")),
    ("ftp-anon", include_str!("../scripts/ftp-anon.nse")),
    ("mqtt-version", include_str!("../scripts/mqtt-version.nse")),
    ("mqtt-subscribe", include_str!("../scripts/mqtt-subscribe.nse")),
    ("docker-version", include_str!("../scripts/docker-version.nse")),
    ("docker-containers", include_str!("../scripts/docker-containers.nse")),
    ("rtsp-methods", include_str!("../scripts/rtsp-methods.nse")),
    ("mongodb-info", include_str!("../scripts/mongodb-info.nse")),
    ("pptp-version", include_str!("../scripts/pptp-version.nse")),
    ("snmp-sysdescr", include_str!("../scripts/snmp-sysdescr.nse")),
    ("snmp-info", include_str!("../scripts/snmp-info.nse")),
    ("snmp-interfaces", include_str!("../scripts/snmp-interfaces.nse")),
    ("ntp-info", include_str!("../scripts/ntp-info.nse")),
    ("sip-methods", include_str!("../scripts/sip-methods.nse")),
    ("sip-enum-users", include_str!("../scripts/sip-enum-users.nse")),
    ("nbstat", include_str!("../scripts/nbstat.nse")),
    ("ldap-rootdse", include_str!("../scripts/ldap-rootdse.nse")),
    ("ldap-search", include_str!("../scripts/ldap-search.nse")),
    ("dns-nsid", include_str!("../scripts/dns-nsid.nse")),
    ("dns-recursion", include_str!("../scripts/dns-recursion.nse")),
    ("dns-zone-transfer", include_str!("../scripts/dns-zone-transfer.nse")),
    ("dns-service-discovery", include_str!("../scripts/dns-service-discovery.nse")),
    ("ssl-enum-ciphers", include_str!("../scripts/ssl-enum-ciphers.nse")),
    ("smb-protocols", include_str!("../scripts/smb-protocols.nse")),
    ("smb-security-mode", include_str!("../scripts/smb-security-mode.nse")),
    ("smb2-time", include_str!("../scripts/smb2-time.nse")),
    ("smb-os-discovery", include_str!("../scripts/smb-os-discovery.nse")),
    ("rdp-ntlm-info", include_str!("../scripts/rdp-ntlm-info.nse")),
    ("rdp-enum-encryption", include_str!("../scripts/rdp-enum-encryption.nse")),
    ("mysql-info", include_str!("../scripts/mysql-info.nse")),
    ("vnc-info", include_str!("../scripts/vnc-info.nse")),
    ("telnet-banner", include_str!("../scripts/telnet-banner.nse")),
    ("imap-ntlm-info", include_str!("../scripts/imap-ntlm-info.nse")),
    ("ntp-monlist", include_str!("../scripts/ntp-monlist.nse")),
];

/// Built-in Python scripts, written for RustMap.
const PY_BUILTINS: &[(&str, &str)] = &[
    ("py-http-title", include_str!("../scripts/py-http-title.py")),
    ("py-http-headers-full", include_str!("../scripts/py-http-headers-full.py")),
    ("py-ssh-version", include_str!("../scripts/py-ssh-version.py")),
    ("py-ldap-info", include_str!("../scripts/py-ldap-info.py")),
];

/// Largest script file read from disk.
const MAX_SOURCE: u64 = 1024 * 1024;

impl Script {
    /// Reads a script's fields by running its chunk once (with the libraries available, as
    /// scripts `require` them at top level) under small limits.
    pub fn parse(id: &str, source: &str, origin: Origin) -> Result<Script, ScriptError> {
        let limits = Limits { instructions: 10_000_000, ..Limits::default() };
        let sandbox = Sandbox::new(limits)?;
        libs::install(&sandbox, Arc::new(Context::default())).map_err(|e| sandbox.classify(&e))?;
        let chunk = sandbox.load(source, id)?;
        sandbox.lua().globals().set("SCRIPT_NAME", id).map_err(|e| sandbox.classify(&e))?;
        chunk.call::<()>(()).map_err(|e| sandbox.classify(&e))?;
        let g = sandbox.lua().globals();
        let rules = Rules::defined(id, |name| matches!(g.get::<Value>(name), Ok(Value::Function(_))))?;
        Ok(Script {
            id: id.to_string(),
            origin,
            source: source.into(),
            description: g.get::<Option<String>>("description").ok().flatten().unwrap_or_default(),
            categories: strings(&g, "categories"),
            author: strings(&g, "author"),
            license: g.get::<Option<String>>("license").ok().flatten().unwrap_or_default(),
            dependencies: strings(&g, "dependencies"),
            rules,
            kind: Kind::Lua,
            wasm: None,
        })
    }

    /// A Python script's fields, read statically ([`crate::python::meta`]): no interpreter is
    /// needed to list or select Python scripts.
    pub fn parse_python(id: &str, source: &str, origin: Origin) -> Result<Script, ScriptError> {
        let meta = crate::python::meta::read(source);
        let rules = Rules::defined(id, |name| meta.functions.iter().any(|f| f == name))?;
        Ok(Script {
            id: id.to_string(),
            origin,
            source: source.into(),
            description: meta.description,
            categories: meta.categories,
            author: meta.author,
            license: meta.license,
            dependencies: meta.dependencies,
            rules,
            kind: Kind::Python,
            wasm: None,
        })
    }

    /// Reads a script file: `name.nse` or `name.lua` (Lua), `name.py` (Python), `name.wasm`
    /// or `name.wat` (WASM, with the `wasm` feature).
    pub fn from_file(path: &Path) -> Result<Script, ScriptError> {
        let load = |message: String| ScriptError::Load { message };
        let meta = std::fs::metadata(path).map_err(|e| load(format!("{}: {e}", path.display())))?;
        if meta.len() > MAX_SOURCE {
            return Err(load(format!("{}: larger than {MAX_SOURCE} bytes", path.display())));
        }
        let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or("script");
        let origin = Origin::File(path.to_path_buf());
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "wasm" || ext == "wat" {
            let bytes = std::fs::read(path).map_err(|e| load(format!("{}: {e}", path.display())))?;
            return Script::parse_wasm(id, &bytes, origin);
        }
        let source = std::fs::read_to_string(path).map_err(|e| load(format!("{}: {e}", path.display())))?;
        if ext == "py" {
            return Script::parse_python(id, &source, origin);
        }
        Script::parse(id, &source, origin)
    }

    /// A WASM script from its module (binary, or the text format): validated, with its fields
    /// from the module's `rustmap` custom section and its rules from its exports.
    #[cfg(feature = "wasm")]
    pub fn parse_wasm(id: &str, bytes: &[u8], origin: Origin) -> Result<Script, ScriptError> {
        crate::wasm::parse(id, bytes, origin)
    }

    /// Without the `wasm` feature a WASM script cannot load; the error says so.
    #[cfg(not(feature = "wasm"))]
    pub fn parse_wasm(id: &str, _bytes: &[u8], _origin: Origin) -> Result<Script, ScriptError> {
        Err(ScriptError::Load { message: format!("{id}: WASM scripts need RustMap built with the `wasm` feature") })
    }

    /// `--script-help` text for this script.
    pub fn help(&self) -> String {
        let mut origin = match &self.origin {
            Origin::Builtin => "built-in".to_string(),
            Origin::File(p) => p.display().to_string(),
        };
        match self.kind {
            Kind::Lua => {}
            Kind::Python => origin.push_str(" (Python)"),
            Kind::Wasm => origin.push_str(" (WASM)"),
        }
        format!(
            "{}\nCategories: {}\n{}\n  {}\n",
            self.id,
            self.categories.join(" "),
            origin,
            self.description.trim().replace('\n', "\n  ")
        )
    }
}

fn strings(g: &Table, name: &str) -> Vec<String> {
    match g.get::<Value>(name) {
        Ok(Value::String(s)) => vec![s.to_string_lossy()],
        Ok(Value::Table(t)) => t.sequence_values::<String>().filter_map(Result::ok).collect(),
        _ => Vec::new(),
    }
}

impl Selectable for Script {
    fn id(&self) -> &str {
        &self.id
    }
    fn categories(&self) -> &[String] {
        &self.categories
    }
}

/// The scripts `--script` can choose from.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    scripts: Vec<Script>,
}

impl Catalog {
    /// The built-in scripts.
    pub fn builtin() -> Result<Catalog, ScriptError> {
        let mut c = Catalog::default();
        for (id, source) in BUILTINS {
            c.add(Script::parse(id, source, Origin::Builtin)?);
        }
        for (id, source) in PY_BUILTINS {
            c.add(Script::parse_python(id, source, Origin::Builtin)?);
        }
        Ok(c)
    }

    /// Adds a script, replacing one of the same name (a user's script overrides a built-in).
    pub fn add(&mut self, script: Script) {
        self.scripts.retain(|s| s.id != script.id);
        self.scripts.push(script);
    }

    /// Adds every `*.nse`, `*.lua`, `py-*.py`, `*.wasm` and `*.wat` file of `dir`; returns the
    /// files that failed to load. (Python files need the `py-` prefix so that helper modules
    /// next to the scripts are not taken for scripts.)
    pub fn add_dir(&mut self, dir: &Path) -> Vec<ScriptError> {
        let mut failures = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else { return failures };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let script = matches!(ext, "nse" | "lua" | "wasm" | "wat") || (ext == "py" && name.starts_with("py-"));
            if path.is_file() && script {
                match Script::from_file(&path) {
                    Ok(s) => self.add(s),
                    Err(e) => failures.push(e),
                }
            }
        }
        failures
    }

    /// The user's script directory, `~/.rustmap/scripts/`.
    pub fn user_dir() -> Option<PathBuf> {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustmap").join("scripts"))
    }

    /// Every script.
    pub fn scripts(&self) -> &[Script] {
        &self.scripts
    }

    /// The script named `id`.
    pub fn get(&self, id: &str) -> Option<&Script> {
        self.scripts.iter().find(|s| s.id == id)
    }

    /// The scripts a `--script` argument selects (`-sC` is `default`). Items that name files or
    /// directories load them first. An item that matches nothing is an error, as in nmap.
    pub fn select(&mut self, spec: &str) -> Result<Vec<Script>, SelectError> {
        let mut chosen: Vec<Script> = Vec::new();
        let push = |chosen: &mut Vec<Script>, s: &Script| {
            if !chosen.iter().any(|c| c.id == s.id) {
                chosen.push(s.clone());
            }
        };
        for item in split_list(spec) {
            let path = Path::new(&item);
            if path.is_dir() {
                let mut sub = Catalog::default();
                let failures = sub.add_dir(path);
                if let Some(e) = failures.into_iter().next() {
                    return Err(SelectError { expr: item.clone(), what: e.to_string() });
                }
                for s in sub.scripts {
                    push(&mut chosen, &s);
                    self.add(s);
                }
                continue;
            }
            if path.is_file() {
                let s = Script::from_file(path).map_err(|e| SelectError { expr: item.clone(), what: e.to_string() })?;
                push(&mut chosen, &s);
                self.add(s);
                continue;
            }
            let expr = Expr::parse(&item)?;
            // As in nmap, an item that selects nothing is a mistake worth stopping for; a word
            // that matches nothing inside a larger expression (`not http-slowloris`) is not.
            let matched: Vec<&Script> = self.scripts.iter().filter(|s| expr.matches(*s)).collect();
            if matched.is_empty() {
                return Err(SelectError {
                    expr: item.clone(),
                    what: "did not match a category, script name, file or directory".into(),
                });
            }
            for s in matched {
                push(&mut chosen, s);
            }
        }
        Ok(chosen)
    }
}
