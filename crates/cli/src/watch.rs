//! `--watch`: scan again every `--interval` seconds until stopped. Each iteration is a stored
//! scan; each is compared with the one before through the store's diff (new hosts, hosts gone,
//! port states, services), and what changed is printed, posted to `--webhook` and handed to
//! `--on-change` — both in tasks of their own, so a slow receiver never delays the next scan.
//! Ctrl-C (or SIGTERM) stops the loop: a scan in progress is stored as interrupted.

use crate::flags::Flags;
use crate::history;
use crate::UsageError;
use anyhow::{anyhow, Context, Result};
use rustmap::{ScanConfig, Scanner, StartOptions};
use rustmap_store::{diff, ScanDiff, Store};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a webhook POST may take, each try.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of a webhook POST, with a doubling pause between them (1 s, 2 s).
const WEBHOOK_TRIES: u32 = 3;
/// How long the `--on-change` command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the end of the loop waits for notifications still under way.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What `--watch` was asked to do.
pub struct Watch {
    interval: Duration,
    webhook: Option<String>,
    on_change: Option<String>,
}

impl Watch {
    /// The watch settings of the command line, checked; `None` without `--watch`. The options
    /// of watch mode without `--watch`, a bad interval or a webhook that is not an http(s) URL
    /// are usage errors.
    pub fn from_flags(f: &Flags) -> Result<Option<Watch>> {
        let usage = |m: String| anyhow::Error::new(UsageError(m));
        if !f.watch {
            for (given, flag) in [
                (f.interval.is_some(), "--interval"),
                (f.webhook.is_some(), "--webhook"),
                (f.on_change.is_some(), "--on-change"),
            ] {
                if given {
                    return Err(usage(format!("{flag} belongs to watch mode: add --watch")));
                }
            }
            return Ok(None);
        }
        if f.no_db {
            return Err(usage(
                "--watch compares each scan with the stored one before: it cannot run with --no-db".into(),
            ));
        }
        let interval = match &f.interval {
            None => Duration::from_secs(300),
            Some(s) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&v) => Duration::from_secs_f64(v),
                _ => return Err(usage(format!("--interval takes seconds (0 to 31536000), not {s:?}"))),
            },
        };
        if let Some(url) = &f.webhook {
            check_url(url).map_err(|m| usage(format!("--webhook {url:?}: {m}")))?;
        }
        Ok(Some(Watch { interval, webhook: f.webhook.clone(), on_change: f.on_change.clone() }))
    }
}

/// A webhook must be an absolute http or https URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("only http:// and https:// URLs are supported".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(())
}

/// What a webhook receives, and what `RUSTMAP_CHANGES_JSON` holds.
#[derive(Serialize)]
struct Notice<'a> {
    /// A line of text, for receivers that show text (a Slack incoming webhook shows this).
    text: String,
    scan_id: &'a str,
    previous_scan_id: &'a str,
    iteration: u64,
    targets: &'a [String],
    changes: &'a ScanDiff,
}

/// Run the watch loop over `config` until Ctrl-C. Exit code 0 when stopped by the user, 1 when
/// a scan failed.
pub async fn run(config: ScanConfig, f: &Flags, w: Watch) -> ExitCode {
    let stop = CancellationToken::new();
    // The same Ctrl-C / SIGTERM handling as a single scan; here it ends the loop.
    crate::cancel_on_signal(stop.clone());
    let mut pending: JoinSet<()> = JoinSet::new();
    let code = match watch_loop(&config, f, &w, &stop, &mut pending).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rustmap: {e:#}");
            ExitCode::from(1)
        }
    };
    // Notifications still under way get a little time to finish.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while pending.join_next().await.is_some() {} }).await;
    code
}

async fn watch_loop(
    config: &ScanConfig,
    f: &Flags,
    w: &Watch,
    stop: &CancellationToken,
    pending: &mut JoinSet<()>,
) -> Result<()> {
    let path = history::db_path(f).context("--watch needs the history database (HOME is not set: give --db PATH)")?;
    let mut previous: Option<String> = None;
    for iteration in 1u64.. {
        let plan = rustmap::validate(config)?;
        let Some((sink, health)) = history::attach(f, None)? else {
            return Err(anyhow!("--watch: the history database cannot be written, so scans cannot be compared"));
        };
        let sinks: Vec<Box<dyn rustmap::Sink>> = vec![Box::new(sink)];
        let options = StartOptions { totals_only: true, sinks, ..StartOptions::default() };
        let scan = Scanner::start_plan(plan, options).map_err(|e| anyhow!("scan failed: {e}"))?;
        let token = scan.cancel_token();
        let stopper = stop.clone();
        let relay = tokio::spawn(async move {
            stopper.cancelled().await;
            token.cancel();
        });
        let result = scan.wait().await;
        relay.abort();
        let result = result.map_err(|e| anyhow!("scan failed: {e}"))?;
        let h = health.lock().map(|h| h.clone()).unwrap_or_default();
        let id = match (h.scan_id, h.error) {
            (Some(id), None) => id,
            (_, Some(e)) => return Err(anyhow!("--watch: scan history not saved: {e}")),
            (None, None) => return Err(anyhow!("--watch: the scan was not stored")),
        };
        if stop.is_cancelled() {
            eprintln!("rustmap: watch stopped at iteration {iteration}; scan {id} is stored as interrupted (rustmap --resume {id} finishes it)");
            return Ok(());
        }
        match &previous {
            None => {
                let up = result.stats.as_ref().map_or(0, |s| s.hosts_up);
                println!("[watch] iteration {iteration}: scan {id}: baseline, {up} host(s) up");
            }
            Some(prev) => {
                let store = Store::open_read_only(&path)?;
                let d = diff(&store, prev, &id)?;
                report(iteration, &id, prev, &d, config, w, pending);
            }
        }
        previous = Some(id);
        tokio::select! {
            _ = stop.cancelled() => {
                eprintln!("rustmap: watch stopped after iteration {iteration}");
                return Ok(());
            }
            _ = tokio::time::sleep(w.interval) => {}
        }
    }
    Ok(())
}

/// Print what changed (one line when nothing did), and notify.
fn report(
    iteration: u64,
    id: &str,
    prev: &str,
    d: &ScanDiff,
    config: &ScanConfig,
    w: &Watch,
    pending: &mut JoinSet<()>,
) {
    if d.is_empty() {
        println!("[watch] iteration {iteration}: scan {id}: no changes");
        return;
    }
    let count = d.hosts_new.len() + d.hosts_gone.len() + d.changed.iter().map(|h| h.ports.len().max(1)).sum::<usize>();
    println!("[watch] iteration {iteration}: scan {id}: {count} change(s)");
    // Stored text came sanitized, but the terminal is not to trust it.
    let text = d.to_text();
    for line in text.lines().skip(1) {
        println!("{}", rustmap_model::sanitize(line));
    }
    let targets = &config.targets;
    let headline = format!(
        "RustMap watch: {count} change(s) on {} (iteration {iteration}, scan {id})\n{}",
        targets.join(" "),
        text.lines().skip(1).collect::<Vec<_>>().join("\n")
    );
    let notice = Notice { text: headline, scan_id: id, previous_scan_id: prev, iteration, targets, changes: d };
    let json = serde_json::to_string(&notice).unwrap_or_default();
    if let Some(url) = w.webhook.clone() {
        let body = json.clone();
        pending.spawn(async move {
            let outcome = tokio::task::spawn_blocking(move || post(&url, &body)).await;
            match outcome {
                Ok(Ok(status)) => eprintln!("rustmap: webhook: iteration {iteration} delivered (HTTP {status})"),
                Ok(Err(e)) => eprintln!("rustmap: warning: webhook: iteration {iteration} not delivered: {e}"),
                Err(e) => eprintln!("rustmap: warning: webhook: {e}"),
            }
        });
    }
    if let Some(cmd) = w.on_change.clone() {
        let (id, prev) = (id.to_string(), prev.to_string());
        pending.spawn(async move {
            match run_command(&cmd, &json, &id, &prev, iteration).await {
                Ok(status) => eprintln!("rustmap: on-change command (iteration {iteration}) {status}"),
                Err(e) => eprintln!("rustmap: warning: on-change command (iteration {iteration}): {e}"),
            }
        });
    }
}

/// POST `body` to `url`: each try bounded in time, retried with a doubling pause, no redirect
/// followed (a receiver that moved must be given its new address). The HTTP status on success.
fn post(url: &str, body: &str) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("rustmap/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..WEBHOOK_TRIES {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(1 << (attempt - 1)));
        }
        match agent.post(url).header("Content-Type", "application/json").send(body) {
            Ok(r) if r.status().is_success() => return Ok(r.status().as_u16()),
            Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("{last} (after {WEBHOOK_TRIES} tries)"))
}

/// Run the user's `--on-change` command through the shell, the changes and ids in its
/// environment only (data read from the network never becomes part of the command line).
/// How it ended, in words.
async fn run_command(cmd: &str, json: &str, id: &str, prev: &str, iteration: u64) -> Result<String, String> {
    let mut c = if cfg!(windows) {
        let mut c = tokio::process::Command::new("cmd");
        c.arg("/C").arg(cmd);
        c
    } else {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        c
    };
    c.env("RUSTMAP_CHANGES_JSON", json)
        .env("RUSTMAP_SCAN_ID", id)
        .env("RUSTMAP_PREVIOUS_SCAN_ID", prev)
        .env("RUSTMAP_ITERATION", iteration.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = c.spawn().map_err(|e| format!("cannot start it: {e}"))?;
    match tokio::time::timeout(COMMAND_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => Ok(match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was ended by a signal".into(),
        }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("killed after {} s", COMMAND_TIMEOUT.as_secs()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_must_be_http_with_a_host() {
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("/relative").is_err());
    }

    /// A one-shot HTTP server on loopback: answers each request with `response`, counts them.
    fn server(addr: &str, response: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind(addr).unwrap();
        let at = l.local_addr().unwrap().to_string();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&hits);
        std::thread::spawn(move || {
            // Bounded: at most a few connections, each read once.
            for mut c in l.incoming().take(3).flatten() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let _ = c.write_all(response.as_bytes());
            }
        });
        (at, hits)
    }

    #[test]
    fn a_webhook_is_posted_and_redirects_are_never_followed() {
        let (ok, hits) = server("127.0.0.1:0", "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        assert_eq!(post(&format!("http://{ok}/hook"), "{}"), Ok(204));
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A receiver that redirects elsewhere: the other address is never contacted.
        let (elsewhere, other_hits) = server("127.0.0.2:0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let redirect: &'static str = Box::leak(
            format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{elsewhere}/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_boxed_str(),
        );
        let (moved, moved_hits) = server("127.0.0.1:0", redirect);
        let e = post(&format!("http://{moved}/hook"), "{}").unwrap_err();
        assert!(e.contains("after 3 tries"), "{e}");
        assert_eq!(moved_hits.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(other_hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect was followed");
    }

    #[tokio::test]
    async fn data_reaches_the_command_only_through_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let pwned = dir.path().join("pwned");
        let out = dir.path().join("out");
        // What a hostile banner could put into the changes: shell syntax of every kind.
        let hostile = format!("{{\"banner\":\"$(touch {0}) `touch {0}`; touch {0} ' \\\" \"}}", pwned.display());
        let cmd = format!(
            "printf '%s|%s|%s' \"$RUSTMAP_CHANGES_JSON\" \"$RUSTMAP_SCAN_ID\" \"$RUSTMAP_ITERATION\" > {}",
            out.display()
        );
        let ended = run_command(&cmd, &hostile, "01ABC", "01ABB", 7).await.unwrap();
        assert_eq!(ended, "exited with status 0");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{hostile}|01ABC|7"));
        assert!(!pwned.exists(), "the data was run as a command");
        let failed = run_command("exit 3", "{}", "a", "b", 1).await.unwrap();
        assert_eq!(failed, "exited with status 3");
    }
}
