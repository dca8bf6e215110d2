//! The configuration files: defaults a user always wants, read before every scan.
//!
//! Three files, each optional, later ones overriding earlier ones key by key:
//! `/etc/rustmap/config.toml` (the system's), `~/.rustmap/config.toml` (the user's), and the file
//! the `RUSTMAP_CONFIG` environment variable names (which must exist when it is set). A front-end
//! then applies a profile over them, and its own options over that:
//!
//! ```text
//! built-in defaults → system file → user file → $RUSTMAP_CONFIG → --profile → flags
//! ```
//!
//! A file holds tables (format in `docs/config.md`):
//! - `[scan]`: a partial [`ScanConfig`], exactly as a profile is (`[scan.timing] template = 4`),
//!   except `targets`, `target_files` and `args`, which belong to one scan, not to every scan;
//! - `[history]`: `db`, the history database's path (`~/` is the home directory);
//! - `[api]`: `key_file`, a file holding the API server's key (`rustmap --api` without
//!   `--api-key`), so the key is not on a command line for every process list to show;
//! - `[geoip]`: `dir`, the directory of the GeoIP databases `--geoip` reads (`~/` is the home
//!   directory): the same as `[scan.geoip] dir`.
//!
//! Unknown keys are errors too. Every error names the file, line and column.

use crate::ScanConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The system-wide configuration file.
pub const SYSTEM_FILE: &str = "/etc/rustmap/config.toml";

/// The environment variable naming one more configuration file, read last.
pub const ENV_VAR: &str = "RUSTMAP_CONFIG";

/// Why the configuration files could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// Not valid TOML, a key this format does not have, or a value of the wrong type.
    #[error("config file {}: line {line}, column {column}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where (1-based).
        line: usize,
        /// Where (1-based).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The files' settings, or a profile over them, do not make a scan configuration together.
    #[error("config files {files}: {message}")]
    Combined {
        /// The files read, comma-separated.
        files: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read (or, named by `RUSTMAP_CONFIG`, does not exist).
    #[error("config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Where the configuration files are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPaths {
    /// The system's file; skipped when absent.
    pub system: Option<PathBuf>,
    /// The user's file; skipped when absent.
    pub user: Option<PathBuf>,
    /// The file of `RUSTMAP_CONFIG`: an error when absent.
    pub env: Option<PathBuf>,
}

impl ConfigPaths {
    /// The standard places: [`SYSTEM_FILE`], `$HOME/.rustmap/config.toml`
    /// (`%APPDATA%\rustmap\config.toml` on Windows), and `$RUSTMAP_CONFIG` if set and not empty.
    pub fn standard() -> ConfigPaths {
        let user = if cfg!(windows) {
            std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("rustmap").join("config.toml"))
        } else {
            std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".rustmap").join("config.toml"))
        };
        let env = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()).map(PathBuf::from);
        ConfigPaths { system: (!cfg!(windows)).then(|| PathBuf::from(SYSTEM_FILE)), user, env }
    }
}

/// What the configuration files say, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// The `[scan]` keys given, merged (later files win); applied over [`ScanConfig::default`].
    scan: toml::Table,
    /// `[history] db`, with `~/` expanded.
    pub history_db: Option<PathBuf>,
    /// `[api] key_file`, with `~/` expanded.
    pub api_key_file: Option<PathBuf>,
    /// The files that were read, in order.
    pub files: Vec<PathBuf>,
    /// Optional files that exist but could not be read (permission denied, as for a user's HOME
    /// seen from another account), with why: skipped, for the front-end to warn about.
    pub skipped: Vec<(PathBuf, String)>,
}

/// One file's shape, for checking it with positions (the merge itself works on TOML tables).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    scan: Option<ScanConfig>,
    #[serde(default)]
    history: Option<HistoryTable>,
    #[serde(default)]
    api: Option<ApiTable>,
    #[serde(default)]
    geoip: Option<GeoipTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryTable {
    db: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiTable {
    key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoipTable {
    dir: Option<PathBuf>,
}

/// `[scan]` keys that describe one scan, not defaults for all.
const PER_SCAN: [&str; 3] = ["targets", "target_files", "args"];

/// Read the files of `paths` (those that exist) and merge them.
pub fn load(paths: &ConfigPaths) -> Result<Settings, SettingsError> {
    let mut settings = Settings::default();
    let optional = [&paths.system, &paths.user].into_iter().flatten().map(|p| (p, false));
    for (path, required) in optional.chain(paths.env.iter().map(|p| (p, true))) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !required => {
                settings.skipped.push((path.clone(), e.to_string()));
                continue;
            }
            Err(source) => return Err(SettingsError::Io { path: path.clone(), source }),
        };
        settings.apply(path, &text)?;
    }
    Ok(settings)
}

/// Line and column (1-based) of a byte offset.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Settings {
    /// Check one file's text and merge it over what is here.
    pub fn apply(&mut self, path: &Path, text: &str) -> Result<(), SettingsError> {
        let malformed = |at: usize, message: String| {
            let (line, column) = position(text, at);
            SettingsError::Malformed { path: path.to_path_buf(), line, column, message }
        };
        let doc: FileDoc =
            toml::from_str(text).map_err(|e| malformed(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| malformed(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        let span_of = |table: &str, key: &str| key_offset(text, table, key).unwrap_or(0);
        if let Some(toml::Value::Table(scan)) = table.remove("scan") {
            if let Some(key) = PER_SCAN.iter().find(|k| scan.contains_key(**k)) {
                return Err(malformed(
                    span_of("scan", key),
                    format!("[scan] {key}: belongs on the command line, not in a config file of defaults"),
                ));
            }
            merge_scan(&mut self.scan, scan);
        }
        if let Some(db) = doc.history.and_then(|h| h.db) {
            self.history_db = Some(expand_home(db));
        }
        if let Some(dir) = doc.geoip.and_then(|g| g.dir) {
            let dir = expand_home(dir).to_string_lossy().into_owned();
            let mut geoip = toml::Table::new();
            geoip.insert("dir".into(), toml::Value::String(dir));
            let mut scan = toml::Table::new();
            scan.insert("geoip".into(), toml::Value::Table(geoip));
            merge_scan(&mut self.scan, scan);
        }
        if let Some(file) = doc.api.and_then(|a| a.key_file) {
            self.api_key_file = Some(expand_home(file));
        }
        // `doc.scan` was read only to check the keys against ScanConfig with positions; the
        // merge works on the table, which knows which keys were given.
        let _ = doc.scan;
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// The `[scan]` settings over the defaults, with `profile`'s settings (a built-in or saved
    /// profile: what it sets that differs from the defaults) applied over them.
    pub fn base(&self, profile: Option<&ScanConfig>) -> Result<ScanConfig, SettingsError> {
        let mut table = self.scan.clone();
        if let Some(p) = profile {
            let mut ours = crate::profile::settings_table(p);
            ours.remove("version");
            merge_scan(&mut table, ours);
        }
        // Each file's [scan] was checked as a ScanConfig, and a pruned profile is one, so the
        // merge is one too; should that ever not hold, say so rather than drop the settings.
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| SettingsError::Combined {
            files: self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
            message: e.message().to_string(),
        })
    }
}

/// The keys of `[scan.ports]` that together choose the ports: a layer that sets any of them
/// replaces the whole choice below it (as `-p`, `-F` and `--top-ports` replace a profile's), so a
/// file's `top = 50` under a profile's `spec` is not a conflict.
const PORT_CHOICE: [&str; 3] = ["spec", "top", "fast"];

/// Merge one layer's `[scan]` table over `base`'s.
fn merge_scan(base: &mut toml::Table, over: toml::Table) {
    let chooses = |t: &toml::Table| {
        t.get("ports").and_then(|p| p.as_table()).is_some_and(|p| PORT_CHOICE.iter().any(|k| p.contains_key(*k)))
    };
    if chooses(&over) {
        if let Some(toml::Value::Table(ports)) = base.get_mut("ports") {
            ports.retain(|k, _| !PORT_CHOICE.contains(&k));
        }
    }
    merge(base, over);
}

/// Merge `over` into `base`: tables key by key (recursively), other values replaced whole.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Where `[table] key` starts in `text` (for errors about a key serde accepted).
fn key_offset(text: &str, table: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let (_, value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let toml::de::DeValue::Table(t) = value.get_ref() else { return None };
    let (k, _) = t.iter().find(|(k, _)| k.get_ref() == key)?;
    Some(k.span().start)
}

/// `~/x` is `$HOME/x`.
fn expand_home(p: PathBuf) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn later_files_win_key_by_key_and_profiles_then_apply() {
        let d = tempfile::tempdir().unwrap();
        let system = write(
            d.path(),
            "system.toml",
            "[scan.timing]\ntemplate = 2\nmax_retries = 3\n[scan.output]\nreason = true\n[history]\ndb = \"/var/x.db\"\n",
        );
        let user = write(d.path(), "user.toml", "[scan.timing]\ntemplate = 4\n[scan.ports]\ntop = 50\n");
        let env = write(d.path(), "env.toml", "[history]\ndb = \"/tmp/env.db\"\n[scan.names]\nreverse = \"never\"\n");
        let paths = ConfigPaths { system: Some(system.clone()), user: Some(user.clone()), env: Some(env.clone()) };
        let s = load(&paths).unwrap();
        assert_eq!(s.files, [system, user, env]);
        assert_eq!(s.history_db.as_deref(), Some(Path::new("/tmp/env.db")));
        let c = s.base(None).unwrap();
        assert_eq!((c.timing.template, c.timing.max_retries), (Some(4), Some(3)));
        assert!(c.output.reason);
        assert_eq!(c.ports.top, Some(50));
        assert_eq!(c.names.reverse, crate::ReverseDns::Never);
        // A profile goes over the files: it replaces what it sets, keeps what it does not.
        let quick = crate::profile::builtin("quick").unwrap().config;
        let c = s.base(Some(&quick)).unwrap();
        assert_eq!((c.ports.top, c.timing.template, c.timing.max_retries), (Some(100), Some(4), Some(3)));
        // The port choice is one setting: the profile's -p replaces the file's --top-ports.
        let iot = crate::profile::builtin("iot-scan").unwrap().config;
        let c = s.base(Some(&iot)).unwrap();
        assert!(c.ports.spec.is_some() && c.ports.top.is_none(), "{:?}", c.ports);
        let mut with_target = c.clone();
        with_target.targets = vec!["127.0.0.1".into()];
        crate::validate(&with_target).unwrap();
        // No files: the defaults.
        let none = ConfigPaths { system: Some(d.path().join("absent.toml")), user: None, env: None };
        assert_eq!(load(&none).unwrap().base(None).unwrap(), ScanConfig::default());
    }

    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../../docs/config.md");
        let section = &doc[doc.find("## Configuration files").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let mut s = Settings::default();
        s.apply(Path::new("docs/config.md"), example).unwrap();
        let c = s.base(None).unwrap();
        assert_eq!((c.timing.template, c.timing.max_retries), (Some(4), Some(3)));
        assert!(c.output.reason && c.output.open_only && c.output.files.len() == 1);
        assert_eq!(c.origin.privileged, Some(false));
        assert!(s.history_db.is_some_and(|p| p.ends_with("scans/rustmap.db")));
    }

    #[test]
    fn the_api_key_file_is_read_as_a_path() {
        let mut s = Settings::default();
        s.apply(Path::new("a.toml"), "[api]\nkey_file = \"/etc/rustmap/api.key\"\n").unwrap();
        assert_eq!(s.api_key_file.as_deref(), Some(Path::new("/etc/rustmap/api.key")));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        let check = |text: &str, line: usize, needle: &str| {
            let p = write(d.path(), "c.toml", text);
            let e = load(&ConfigPaths { system: None, user: Some(p), env: None }).unwrap_err();
            let SettingsError::Malformed { line: l, ref message, .. } = e else { panic!("{e}") };
            assert_eq!(l, line, "{e}");
            assert!(message.contains(needle) && e.to_string().contains("c.toml: line"), "{e}");
        };
        check("[scan.timing]\ntemplate = 4\ntempo = 3\n", 3, "tempo");
        check("[scan.timing]\ntemplate = \"fast\"\n", 2, "");
        check("[scan]\ntargets = [\"10.0.0.1\"]\n", 2, "belongs on the command line");
        check("[history]\ndb = \"x\"\n\n[geoip]\ndirectory = \"/usr/share/GeoIP\"\n", 5, "unknown field");
        check("[api]\nport = 1\n", 2, "unknown field");
        check("[colours]\n", 1, "colours");
        check("[scan\n", 1, "");
        // RUSTMAP_CONFIG's file must exist; the others may be absent.
        let e = load(&ConfigPaths { system: None, user: None, env: Some(d.path().join("nope.toml")) }).unwrap_err();
        assert!(matches!(e, SettingsError::Io { .. }) && e.to_string().contains("nope.toml"), "{e}");
    }
}
