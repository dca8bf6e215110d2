//! Scan profiles: named, partial [`ScanConfig`]s that a front-end starts from before applying the
//! user's own settings over them. The user guide's seven are built in; others are TOML files in
//! the profiles directory (`~/.rustmap/profiles/NAME.toml`, `%APPDATA%\rustmap\profiles\` on
//! Windows), written by `--save-profile`. A profile file is a serialized `ScanConfig` holding
//! only what differs from the defaults, so the format is the one `docs/config.md` documents.
//!
//! Parts of a built-in profile that a build cannot honour are listed in
//! [`Profile::unsupported`]: the front-end says so when the profile is used, and scans without
//! them. Every built-in profile's parts are built now, so the list is empty for all seven.

use crate::ScanConfig;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A named starting configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Its name (`quick`, `my-audit`).
    pub name: String,
    /// One line on what it is for.
    pub description: String,
    /// The settings it makes; everything else is the default.
    pub config: ScanConfig,
    /// What the profile asks for that this build cannot do yet: the scan runs without it.
    pub unsupported: Vec<&'static str>,
    /// The file it was read from; `None` for a built-in one.
    pub path: Option<PathBuf>,
}

/// Why a profile could not be found, read or saved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// No built-in profile and no file of that name.
    #[error("unknown profile {name:?}; available: {available}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The profiles there are, comma-separated.
        available: String,
    },
    /// The file is not valid TOML, or not a scan configuration.
    #[error("profile file {}: line {line}, column {column}: {message}", path.display())]
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
    /// Reading or writing the file failed.
    #[error("profile file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A name that cannot be a file name of the profiles directory.
    #[error("invalid profile name {0:?}: use letters, digits, '-' and '_' (1 to 64 of them)")]
    BadName(String),
    /// Saving under the name of a built-in profile.
    #[error("{0:?} is a built-in profile: save yours under another name")]
    Builtin(String),
    /// No home directory to keep profiles in.
    #[error("no profiles directory: neither HOME nor APPDATA is set")]
    NoDirectory,
}

/// The built-in profiles' names, in the guide's order.
pub const BUILTIN: [&str; 7] =
    ["quick", "network-discovery", "web-audit", "full-audit", "stealth", "iot-scan", "aggressive"];

/// A built-in profile, by name.
pub fn builtin(name: &str) -> Option<Profile> {
    let mut c = ScanConfig::default();
    let unsupported = Vec::new();
    let description = match name {
        "quick" => {
            c.ports.top = Some(100);
            c.timing.template = Some(4);
            "Top 100 ports, T4 timing"
        }
        "network-discovery" => {
            c.ports.top = Some(100);
            "Host discovery + top 100 ports, no service detection"
        }
        "web-audit" => {
            c.ports.spec = Some("80,443,8080,8443,8000,3000,5000".into());
            c.service.enabled = true;
            c.scripts.select = Some("default".into());
            "HTTP/HTTPS ports (80, 443, 8080, 8443, 8000, 3000, 5000) with service detection and scripts"
        }
        "full-audit" => {
            c.ports.spec = Some("1-65535".into());
            c.service.enabled = true;
            c.timing.template = Some(4);
            c.output.diff = true;
            c.scripts.select = Some("default".into());
            // OS detection sends raw packets: like nmap's -O, the profile then needs root.
            c.os.enabled = true;
            "All 65535 ports, service + OS detection, scripts, T4 timing, diff enabled"
        }
        "stealth" => {
            c.timing.template = Some(1);
            // Randomized port order is the default (`ports.sequential` false): nothing to set.
            c.timing.max_hostgroup = Some(1);
            // Both shape raw packets: as with nmap, the profile needs root (or CAP_NET_RAW).
            c.evasion.source_port = Some(53);
            c.evasion.fragment = 1;
            "T1 timing, randomized ports, source port 53, IP fragmentation, max 1 host at a time"
        }
        "iot-scan" => {
            c.ports.spec = Some("22,23,80,443,554,1883,5683,8080,8443,8883,9100,49152".into());
            "IoT device ports (22, 23, 80, 443, 554, 1883, 5683, 8080, 8443, 8883, 9100, 49152)"
        }
        "aggressive" => {
            c.service.enabled = true;
            c.timing.template = Some(4);
            // Traceroute sends raw packets: like nmap's -A, the profile then needs root.
            c.path.traceroute = true;
            c.scripts.select = Some("default".into());
            c.os.enabled = true;
            "Service + OS detection, scripts, traceroute, T4 timing"
        }
        _ => return None,
    };
    Some(Profile { name: name.into(), description: description.into(), config: c, unsupported, path: None })
}

/// The directory of saved profiles: `~/.rustmap/profiles` (`%APPDATA%\rustmap\profiles`).
pub fn default_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("rustmap").join("profiles"))
    } else {
        std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".rustmap").join("profiles"))
    }
}

/// Is this a name a profile may have (it becomes a file name)?
fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.into()))
    }
}

/// The profile `name`: a built-in one, else `NAME.toml` in `dir`.
pub fn load(name: &str, dir: Option<&Path>) -> Result<Profile, ProfileError> {
    if let Some(p) = builtin(name) {
        return Ok(p);
    }
    let unknown = || ProfileError::Unknown { name: name.into(), available: available(dir).join(", ") };
    if check_name(name).is_err() {
        return Err(unknown());
    }
    let Some(dir) = dir else { return Err(unknown()) };
    let path = dir.join(format!("{name}.toml"));
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(name, &text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(unknown()),
        Err(source) => Err(ProfileError::Io { path, source }),
    }
}

/// A profile file's text, read from `path`.
pub fn parse(name: &str, text: &str, path: PathBuf) -> Result<Profile, ProfileError> {
    let config: ScanConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ProfileError::Malformed { path: path.clone(), line, column, message: e.message().to_string() }
    })?;
    let description = format!("saved profile ({})", path.display());
    Ok(Profile { name: name.into(), description, config, unsupported: Vec::new(), path: Some(path) })
}

/// The names of every profile: the built-in ones, then the saved ones in `dir`, sorted.
pub fn available(dir: Option<&Path>) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
    names.extend(saved_names(dir));
    names
}

fn saved_names(dir: Option<&Path>) -> Vec<String> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".toml").map(str::to_string))
        .filter(|n| check_name(n).is_ok() && !BUILTIN.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// Every profile with how it reads: the built-in ones, then each saved one (or why it cannot be
/// read, so one bad file does not hide the others).
pub fn list(dir: Option<&Path>) -> Vec<Result<Profile, ProfileError>> {
    let mut all: Vec<Result<Profile, ProfileError>> = BUILTIN.iter().filter_map(|n| builtin(n)).map(Ok).collect();
    all.extend(saved_names(dir).iter().map(|n| load(n, dir)));
    all
}

/// The settings of `config` worth keeping in a profile: everything but what to scan (targets,
/// target files), where results go (output files, the topology graph's file), how a front-end presents the scan
/// (interactive output, the status line) and the command line.
pub fn settings_of(config: &ScanConfig) -> ScanConfig {
    let mut c = config.clone();
    let defaults = rustmap_model::config::OutputConfig::default();
    c.targets.clear();
    c.target_files.clear();
    c.output.files.clear();
    c.output.all_base = None;
    c.path.topology_output = None;
    c.output.interactive = defaults.interactive;
    c.output.progress = defaults.progress;
    c.args.clear();
    c
}

/// The settings of `config` that differ from the defaults, as a TOML table: what a profile sets.
pub fn settings_table(config: &ScanConfig) -> toml::Table {
    let ours = toml::Table::try_from(settings_of(config)).unwrap_or_default();
    let defaults = toml::Table::try_from(ScanConfig::default()).unwrap_or_default();
    prune(ours, &defaults)
}

/// A profile file's text for `config`: the settings that differ from the defaults, as TOML.
pub fn to_toml(config: &ScanConfig) -> String {
    let mut kept = settings_table(config);
    // The version always goes in: a file is read by the version that wrote it, or a newer one.
    kept.insert("version".into(), toml::Value::Integer(i64::from(rustmap_model::config::CONFIG_VERSION)));
    toml::to_string(&kept).unwrap_or_default()
}

/// `table` without the entries equal to `defaults`' (recursively).
fn prune(table: toml::Table, defaults: &toml::Table) -> toml::Table {
    let mut out = toml::Table::new();
    for (k, v) in table {
        match (v, defaults.get(&k)) {
            (toml::Value::Table(t), Some(toml::Value::Table(d))) => {
                let t = prune(t, d);
                if !t.is_empty() {
                    out.insert(k, toml::Value::Table(t));
                }
            }
            (v, Some(d)) if &v == d => {}
            (v, _) => {
                out.insert(k, v);
            }
        }
    }
    out
}

/// What `config` sets, in one line (`ports.top = 100, timing.template = 4`): the entries of its
/// profile file.
pub fn summary(config: &ScanConfig) -> String {
    let ours = toml::Table::try_from(settings_of(config)).unwrap_or_default();
    let defaults = toml::Table::try_from(ScanConfig::default()).unwrap_or_default();
    let mut parts = Vec::new();
    flatten("", &prune(ours, &defaults), &mut parts);
    parts.join(", ")
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            v => out.push(format!("{key} = {v}")),
        }
    }
}

/// Save `config`'s settings as the profile `name` in `dir` (created if need be). The file is
/// written whole or not at all: a temporary file renamed over the old one.
pub fn save(name: &str, config: &ScanConfig, dir: &Path) -> Result<PathBuf, ProfileError> {
    check_name(name)?;
    if BUILTIN.contains(&name) {
        return Err(ProfileError::Builtin(name.into()));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProfileError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(format!("{name}.toml"));
    let tmp = dir.join(format!(".{name}.toml.{}", std::process::id()));
    let text =
        format!("# RustMap scan profile {name:?}: a ScanConfig's settings (docs/config.md)\n{}", to_toml(config));
    // A temporary file of an earlier process with our pid (killed midway) is stale.
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, text.as_bytes()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ProfileError::Io { path: path.clone(), source: e }
    })?;
    Ok(path)
}

/// Writes a new file only its owner can read: a profile may hold a proxy's password or
/// credentials in script arguments.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_built_ins_set_what_the_guide_says() {
        let all: Vec<Profile> = BUILTIN.iter().map(|n| builtin(n).unwrap()).collect();
        assert_eq!(all.len(), 7);
        let quick = &all[0].config;
        assert_eq!((quick.ports.top, quick.timing.template), (Some(100), Some(4)));
        assert!(quick.ports.spec.is_none() && !quick.service.enabled);
        let nd = &all[1].config;
        assert_eq!((nd.ports.top, nd.service.enabled, nd.discovery.skip), (Some(100), false, false));
        let web = &all[2];
        assert_eq!(web.config.ports.spec.as_deref(), Some("80,443,8080,8443,8000,3000,5000"));
        assert!(web.config.service.enabled);
        assert!(web.unsupported.is_empty());
        assert_eq!(web.config.scripts.select.as_deref(), Some("default"));
        let full = &all[3];
        assert_eq!(full.config.ports.spec.as_deref(), Some("1-65535"));
        assert!(full.config.service.enabled && full.config.output.diff);
        assert_eq!(full.config.timing.template, Some(4));
        assert!(full.unsupported.is_empty() && full.config.os.enabled);
        assert_eq!(full.config.scripts.select.as_deref(), Some("default"));
        let stealth = &all[4];
        assert_eq!((stealth.config.timing.template, stealth.config.timing.max_hostgroup), (Some(1), Some(1)));
        assert!(!stealth.config.ports.sequential, "randomized ports");
        assert_eq!((stealth.config.evasion.source_port, stealth.config.evasion.fragment), (Some(53), 1));
        assert!(stealth.unsupported.is_empty());
        let iot = &all[5].config;
        assert_eq!(iot.ports.spec.as_deref(), Some("22,23,80,443,554,1883,5683,8080,8443,8883,9100,49152"));
        let aggressive = &all[6];
        assert!(aggressive.config.service.enabled && aggressive.config.timing.template == Some(4));
        assert!(aggressive.unsupported.is_empty() && aggressive.config.os.enabled);
        assert_eq!(aggressive.config.scripts.select.as_deref(), Some("default"));
        assert!(aggressive.config.path.traceroute);
        // Every one is a valid configuration once it has a target.
        for p in &all {
            let mut c = p.config.clone();
            c.targets = vec!["127.0.0.1".into()];
            // As root would (the stealth profile shapes raw packets).
            c.origin.privileged = Some(true);
            crate::validate(&c).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
    }

    #[test]
    fn save_then_load_round_trips_the_settings_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ScanConfig::new(["198.18.0.10"]);
        c.timing.template = Some(4);
        c.service.enabled = true;
        c.ports.spec = Some("22,80".into());
        c.output.files = vec![rustmap_model::config::OutputFile {
            format: rustmap_model::config::OutputFormat::Xml,
            path: "x.xml".into(),
        }];
        c.args = "rustmap -T4 ...".into();
        let path = save("my-audit", &c, dir.path()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("198.18.0.10") && !text.contains("x.xml"), "{text}");
        let p = load("my-audit", Some(dir.path())).unwrap();
        assert_eq!(p.config, settings_of(&c));
        assert_eq!(summary(&p.config), "ports.spec = \"22,80\", service.enabled = true, timing.template = 4");
        assert_eq!(available(Some(dir.path())).last().map(String::as_str), Some("my-audit"));
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Only the owner may read it (a proxy password can be in it), also when saved again.
        #[cfg(unix)]
        for _ in 0..2 {
            use std::os::unix::fs::PermissionsExt;
            let path = save("my-audit", &c, dir.path()).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_names_files_and_unknown_profiles_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let c = ScanConfig::default();
        assert!(matches!(save("../evil", &c, dir.path()), Err(ProfileError::BadName(_))));
        assert!(matches!(save("quick", &c, dir.path()), Err(ProfileError::Builtin(_))));
        let e = load("nope", Some(dir.path())).unwrap_err();
        assert!(
            e.to_string().contains("unknown profile \"nope\"") && e.to_string().contains("quick, network-discovery")
        );
        std::fs::write(dir.path().join("broken.toml"), "[ports]\ntop = 100\n[timing]\ntempo = 4\n").unwrap();
        let e = load("broken", Some(dir.path())).unwrap_err();
        let ProfileError::Malformed { line, ref message, .. } = e else { panic!("{e}") };
        assert_eq!(line, 4, "{e}");
        assert!(message.contains("tempo"), "{e}");
        assert!(e.to_string().contains("broken.toml: line 4, column 1"), "{e}");
        std::fs::write(dir.path().join("syntax.toml"), "[ports\n").unwrap();
        assert!(matches!(load("syntax", Some(dir.path())), Err(ProfileError::Malformed { line: 1, .. })));
        // Listing shows the good ones and the reason for each bad one.
        let listed = list(Some(dir.path()));
        assert_eq!(listed.len(), 9);
        assert_eq!(listed.iter().filter(|p| p.is_err()).count(), 2);
    }
}
