//! The `rustmap` command. Thin: parse flags, build a [`rustmap::ScanRequest`], attach the output
//! sinks, run, map the outcome to an exit code (0 done, 1 runtime failure, 2 bad usage).

#![forbid(unsafe_code)]

mod argv;
mod config;
mod flags;

use anyhow::Context;
use clap::FromArgMatches;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// A usage error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args_line = std::iter::once("rustmap".to_string())
        .chain(raw.iter().map(|a| {
            if a.contains(char::is_whitespace) || a.is_empty() {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }))
        .collect::<Vec<_>>()
        .join(" ");
    let normalized = argv::normalize(raw);
    let matches = match flags::command().try_get_matches_from(std::iter::once("rustmap".to_string()).chain(normalized))
    {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(flag) = flags::unsupported_present(&matches) {
        eprintln!("rustmap: not yet supported: {flag}");
        return ExitCode::from(2);
    }
    let parsed = match flags::Flags::from_arg_matches(&matches) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    let plan = match config::build(parsed, args_line) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            return ExitCode::from(if e.downcast_ref::<UsageError>().is_some() { 2 } else { 1 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rustmap: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(plan)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            ExitCode::from(if e.downcast_ref::<UsageError>().is_some() { 2 } else { 1 })
        }
    }
}

async fn run(plan: config::Plan) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    rustmap::run(plan.request, plan.sinks, cancel).await.context("scan failed")?;
    Ok(())
}
