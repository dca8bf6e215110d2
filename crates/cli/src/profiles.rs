//! `--profile`, `--list-profiles`, `--save-profile`: the front-end side of
//! [`rustmap::profile`] (which defines, reads and writes profiles), and of the configuration
//! files ([`rustmap::settings`]). Files, then a profile, make the base the command line's own
//! flags are applied over.

use crate::flags::Flags;
use rustmap::profile::{self, Profile};
use rustmap::settings::Settings;
use rustmap::ScanConfig;
use std::process::ExitCode;

/// The configuration files (docs/config.md § Configuration files), read once per run. A bad one
/// is a usage error naming file and line; an unreadable optional one is skipped with a warning.
/// Their `[history] db` becomes `--db` unless `--db` or `--no-db` was given.
pub fn settings(f: &mut Flags) -> Result<Settings, ExitCode> {
    let settings = rustmap::settings::load(&rustmap::settings::ConfigPaths::standard()).map_err(|e| {
        eprintln!("rustmap: {e}");
        ExitCode::from(2)
    })?;
    for (path, why) in &settings.skipped {
        eprintln!("rustmap: warning: config file {}: {why}; skipped", path.display());
    }
    if f.db.is_none() && !f.no_db {
        f.db = settings.history_db.clone();
    }
    Ok(settings)
}

/// The configuration the flags start from: the configuration files' settings with the
/// `--profile`'s over them (docs/config.md § Configuration files). Parts of the profile this
/// build cannot do yet are named on stderr. An unknown or unreadable profile is a usage error
/// (exit code 2).
pub fn base(f: &Flags, settings: &Settings) -> Result<ScanConfig, ExitCode> {
    let combined = |config: Option<&ScanConfig>| {
        settings.base(config).map_err(|e| {
            eprintln!("rustmap: {e}");
            ExitCode::from(2)
        })
    };
    let Some(name) = &f.profile else { return combined(None) };
    match profile::load(name, profile::default_dir().as_deref()) {
        Ok(p) => {
            for part in &p.unsupported {
                eprintln!("rustmap: note: profile {}: {part} is not supported yet; scanning without it", p.name);
            }
            combined(Some(&p.config))
        }
        Err(e) => {
            eprintln!("rustmap: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `--save-profile NAME`: this command line's settings into the profiles directory.
pub fn save(name: &str, config: &ScanConfig) -> Result<(), ExitCode> {
    let Some(dir) = profile::default_dir() else {
        eprintln!("rustmap: {}", profile::ProfileError::NoDirectory);
        return Err(ExitCode::from(1));
    };
    match profile::save(name, config, &dir) {
        Ok(path) => {
            eprintln!("rustmap: saved profile {name} to {}", path.display());
            Ok(())
        }
        Err(e @ (profile::ProfileError::BadName(_) | profile::ProfileError::Builtin(_))) => {
            eprintln!("rustmap: {e}");
            Err(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("rustmap: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// `--list-profiles`: each profile's name, description and what it sets. A saved profile that
/// cannot be read is listed with the reason (exit code 1 then, after the whole list).
pub fn list() -> ExitCode {
    let mut bad = false;
    for p in profile::list(profile::default_dir().as_deref()) {
        match p {
            Ok(p) => print_profile(&p),
            Err(e) => {
                bad = true;
                println!("(unreadable) {e}\n");
            }
        }
    }
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_profile(p: &Profile) {
    println!("{}", p.name);
    println!("  {}", p.description);
    let sets = profile::summary(&p.config);
    println!("  sets: {}", if sets.is_empty() { "nothing (the defaults)" } else { &sets });
    if !p.unsupported.is_empty() {
        println!("  not supported yet (the scan runs without): {}", p.unsupported.join(", "));
    }
    println!();
}
