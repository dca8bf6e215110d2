//! `--vuln-update`: fetch the NVD and KEV feeds into the local CVE database, with a progress
//! line on standard error; Ctrl-C stops between pages and leaves the database consistent (the
//! next run resumes). Also the checks of the `--vuln-*` flags that only the command line has.

use crate::flags::Flags;
use rustmap_vuln::{UpdateOptions, UpdateProgress, VulnDb};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags that mean nothing without another: a usage error, never silently unused.
pub fn check_flags(f: &Flags) -> Result<(), String> {
    if f.vuln_db.is_some() && !(f.vuln_check || f.vuln_update || f.vuln_min_cvss.is_some() || f.api) {
        return Err("--vuln-db needs --vuln-check or --vuln-update".into());
    }
    if (f.vuln_nvd_url.is_some() || f.vuln_kev_url.is_some()) && !(f.vuln_update || f.api) {
        return Err("--vuln-nvd-url and --vuln-kev-url are for --vuln-update (or --api)".into());
    }
    Ok(())
}

/// The progress line: redrawn in place on a terminal, a line every 10 s otherwise.
struct Progress {
    tty: bool,
    last: Option<Instant>,
}

impl Progress {
    fn show(&mut self, p: &UpdateProgress) {
        let due = self.tty || self.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if !due {
            return;
        }
        self.last = Some(Instant::now());
        let what = if p.stage == "kev" { "CISA KEV catalog" } else { "NVD CVEs" };
        let line = match p.total {
            Some(t) if t > 0 => {
                let pct = (p.done.min(t) * 100) / t;
                let filled = (pct / 5) as usize;
                format!("{what}: [{}{}] {}/{} ({pct}%)", "#".repeat(filled), "-".repeat(20 - filled), p.done, t)
            }
            _ => format!("{what}: {}", p.done),
        };
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn end(&self) {
        if self.tty && self.last.is_some() {
            eprintln!();
        }
    }
}

/// Run the update; the exit code is 0 when it finished, 1 when it failed or was interrupted.
pub fn update(f: &Flags) -> ExitCode {
    let Some(path) = f.vuln_db.clone().or_else(VulnDb::default_path) else {
        eprintln!("rustmap: --vuln-update: no database path (HOME is unset): give --vuln-db FILE");
        return ExitCode::from(2);
    };
    let db = match VulnDb::open(&path) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("rustmap: --vuln-update: {e}");
            return ExitCode::from(1);
        }
    };
    let mut opts = UpdateOptions::from_env();
    if let Some(u) = &f.vuln_nvd_url {
        opts.nvd_url = u.clone();
    }
    if let Some(u) = &f.vuln_kev_url {
        opts.kev_url = u.clone();
    }
    let cancel = Arc::new(AtomicBool::new(false));
    opts.cancel = Arc::clone(&cancel);
    // Ctrl-C or SIGTERM: stop between pages; the committed pages stay and the next run resumes.
    let stop = Arc::clone(&cancel);
    let signals = std::thread::Builder::new().name("vuln-signals".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let sig = rt.block_on(crate::termination())?;
        stop.store(true, Ordering::Relaxed);
        Some(sig)
    });
    eprintln!("rustmap: updating {} from {} and {}", path.display(), opts.nvd_url, opts.kev_url);
    let mut progress = Progress { tty: std::io::stderr().is_terminal(), last: None };
    let result = rustmap_vuln::update(&db, &opts, &mut |p| progress.show(p));
    progress.end();
    drop(signals);
    match result {
        Ok(s) if !cancel.load(Ordering::Relaxed) => {
            let stats = db.stats().ok();
            println!(
                "CVE database {}: {} pages fetched{}; {} CVEs new, {} changed; KEV: {} new, {} in all{}",
                path.display(),
                s.pages,
                if s.resumed { " (resumed an interrupted update)" } else { "" },
                s.cves_new,
                s.cves_changed,
                s.kev_new,
                s.kev_total,
                stats
                    .map(|st| format!("; {} CVEs, {} match rules in the database", st.cves, st.rules))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("rustmap: --vuln-update interrupted: the pages fetched are kept; run it again to resume");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("rustmap: --vuln-update: {e}");
            ExitCode::from(1)
        }
    }
}
