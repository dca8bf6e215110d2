//! `rustmap --api`: check the server's flags, then run [`rustmap_api`] until SIGINT or SIGTERM,
//! which stop the running scans (stored as interrupted) before the process exits.

use crate::flags::Flags;
use crate::history;
use rustmap_api::{ApiOptions, ServeError};
use std::net::SocketAddr;
use std::process::ExitCode;

/// Where the API listens when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The key: `--api-key`, else the configuration files' `[api] key_file`.
fn key(f: &Flags, settings: &rustmap::settings::Settings) -> Result<Option<String>, String> {
    if f.api_key.is_some() {
        return Ok(f.api_key.clone());
    }
    let Some(path) = &settings.api_key_file else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("[api] key_file {}: cannot read the API key: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("[api] key_file {}: the file is empty", path.display()));
    }
    Ok(Some(key.to_string()))
}

fn options(f: &Flags, settings: &rustmap::settings::Settings) -> Result<ApiOptions, String> {
    if !f.targets.is_empty() || !f.input_list.is_empty() {
        return Err("--api takes no targets: scans are started with POST /api/scans".into());
    }
    if f.no_db {
        return Err("--api keeps every scan in the history database: it cannot be combined with --no-db".into());
    }
    let text = f.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = text
        .parse()
        .map_err(|_| format!("--listen {text:?}: give an address and a port, such as 127.0.0.1:8080 or [::1]:8080"))?;
    let allow = match f.api_allow.as_deref() {
        Some(list) => Some(rustmap::AllowList::parse(list).map_err(|e| format!("--api-allow: {e}"))?),
        None => None,
    };
    let db = history::db_path(f).ok_or("no home directory for the history database: give --db PATH")?;
    let distribute = crate::distrib::api_options(f, allow.clone())?;
    Ok(ApiOptions {
        listen,
        api_key: key(f, settings)?,
        allow,
        distribute,
        db,
        profiles: rustmap::profile::default_dir(),
        vuln_db: f.vuln_db.clone(),
        nvd_url: f.vuln_nvd_url.clone(),
        kev_url: f.vuln_kev_url.clone(),
    })
}

/// Run the server; the exit code is 2 for bad flags, 1 when it cannot serve.
pub fn run(f: &Flags, settings: &rustmap::settings::Settings) -> ExitCode {
    let options = match options(f, settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rustmap: {e}");
            return ExitCode::from(2);
        }
    };
    rustmap::raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rustmap: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let server = match rustmap_api::Server::bind(options.clone()).await {
            Ok(s) => s,
            Err(e @ (ServeError::NeedsKey(_) | ServeError::EmptyKey)) => {
                eprintln!("rustmap: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("rustmap: {e}");
                return ExitCode::from(1);
            }
        };
        for id in server.orphans() {
            eprintln!("rustmap: scan {id} was left running by a process that is gone: marked interrupted (rustmap --resume {id})");
        }
        let addr = server.local_addr().map_or(options.listen, |a| a);
        let auth = if options.api_key.is_some() { "Bearer token required" } else { "no authentication, loopback only" };
        eprintln!("rustmap: API listening on http://{addr} ({auth}); history {}", options.db.display());
        eprintln!("rustmap: OpenAPI document at http://{addr}/api/openapi.json, docs at http://{addr}/api/docs");
        match server.run(shutdown_signal()).await {
            Ok(()) => {
                eprintln!("rustmap: API stopped; running scans were stopped and stored as interrupted");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rustmap: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn shutdown_signal() {
    if crate::termination().await.is_none() {
        // No Ctrl-C handler could be installed: serve until killed.
        std::future::pending::<()>().await;
    }
}
