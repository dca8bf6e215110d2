//! `--vuln-update`: downloading the NVD CVE API 2.0 (full, then incremental by
//! `lastModStartDate`/`lastModEndDate` windows of at most 120 days) and the CISA KEV catalog
//! into the database, with rate limits, retries, cancellation and resume.

use crate::db::VulnDb;
use crate::nvd;
use crate::VulnError;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The NVD CVE API 2.0 endpoint.
pub const DEFAULT_NVD_URL: &str = "https://services.nvd.nist.gov/rest/json/cves/2.0";
/// The CISA Known Exploited Vulnerabilities catalog.
pub const DEFAULT_KEV_URL: &str = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json";

/// CVEs asked for per NVD page (the API's maximum).
const PAGE_SIZE: u64 = 2000;
/// The largest response body read.
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// The most pages read in one window.
const MAX_PAGES_PER_WINDOW: u64 = 2000;
/// The longest span one NVD query may cover.
const MAX_WINDOW_DAYS: i64 = 120;
/// The rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(30);
/// The longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The first back-off without `Retry-After`; it doubles up to `MAX_RETRY_AFTER`.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// How often a wait looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);
/// NVD timestamps.
const NVD_TIME: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// How `update` reaches the feeds.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// The NVD CVE API 2.0 endpoint (default [`DEFAULT_NVD_URL`]).
    pub nvd_url: String,
    /// The CISA KEV catalog (default [`DEFAULT_KEV_URL`]).
    pub kev_url: String,
    /// An NVD API key, sent as the `apiKey` header; it raises the rate limit from 5 to 50
    /// requests per 30 s.
    pub api_key: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Per page, for HTTP 429/503 and connection errors.
    pub max_retries: u32,
    /// Set it to stop between pages (and during waits): the database stays consistent and the
    /// next update resumes.
    pub cancel: Arc<AtomicBool>,
}

impl Default for UpdateOptions {
    fn default() -> UpdateOptions {
        UpdateOptions {
            nvd_url: DEFAULT_NVD_URL.into(),
            kev_url: DEFAULT_KEV_URL.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            max_retries: 5,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl UpdateOptions {
    /// The defaults, with `RUSTMAP_NVD_URL`, `RUSTMAP_KEV_URL` and `NVD_API_KEY` over them when set
    /// and not empty.
    pub fn from_env() -> UpdateOptions {
        let var = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut o = UpdateOptions::default();
        if let Some(u) = var("RUSTMAP_NVD_URL") {
            o.nvd_url = u;
        }
        if let Some(u) = var("RUSTMAP_KEV_URL") {
            o.kev_url = u;
        }
        o.api_key = var("NVD_API_KEY");
        o
    }
}

/// Where an update is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateProgress {
    /// `nvd` or `kev`.
    pub stage: &'static str,
    /// CVEs (or KEV entries) read so far in the current window.
    pub done: u64,
    /// How many there are, when known.
    pub total: Option<u64>,
}

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateSummary {
    /// NVD pages imported.
    pub pages: u32,
    /// CVE ids that were not in the database.
    pub cves_new: u64,
    /// CVE ids whose record changed (`lastModified`, or a seed record replaced, or rejected).
    pub cves_changed: u64,
    /// KEV entries that were not in the database.
    pub kev_new: u64,
    /// KEV entries in the catalog.
    pub kev_total: u64,
    /// This run continued an interrupted one.
    pub resumed: bool,
}

/// Where an NVD pass stands; saved with every committed page.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    /// A full download (no date window).
    full: bool,
    /// The current window's start (incremental passes).
    window_start: Option<String>,
    /// The pass's end: when it began; recorded as the last update when it finishes.
    end: String,
    /// The next `startIndex` in the current window.
    next_index: u64,
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format(NVD_TIME).to_string()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, NVD_TIME).ok().map(|n| n.and_utc())
}

/// Download the NVD and the KEV catalog into `db` (see the crate docs): the first run fully,
/// later runs from the last successful update, continuing an interrupted run when there is one.
pub fn update(
    db: &VulnDb,
    opts: &UpdateOptions,
    progress: &mut dyn FnMut(&UpdateProgress),
) -> Result<UpdateSummary, VulnError> {
    let mut http = Http::new(opts);
    let mut summary = UpdateSummary::default();
    let corrupt = |m: &str| VulnError::Corrupt { path: db.label().to_string(), message: m.to_string() };
    let mut cur = match db.meta("cursor")? {
        Some(j) => {
            summary.resumed = true;
            serde_json::from_str::<Cursor>(&j).map_err(|_| corrupt("the resume cursor is unreadable"))?
        }
        None => {
            let end = fmt_time(Utc::now());
            match db.meta("last_update")? {
                None => Cursor { full: true, window_start: None, end, next_index: 0 },
                Some(lu) => Cursor { full: false, window_start: Some(lu), end, next_index: 0 },
            }
        }
    };
    let end = parse_time(&cur.end).ok_or_else(|| corrupt("the resume cursor's time is unreadable"))?;
    'windows: loop {
        let window = match (&cur.window_start, cur.full) {
            (_, true) | (None, _) => None,
            (Some(ws), false) => {
                let ws = parse_time(ws).ok_or_else(|| corrupt("the last update time is unreadable"))?;
                if ws >= end {
                    break 'windows;
                }
                Some((ws, (ws + chrono::Duration::days(MAX_WINDOW_DAYS)).min(end)))
            }
        };
        let mut pages_here = 0u64;
        loop {
            if opts.cancel.load(Ordering::Relaxed) {
                return Err(VulnError::Cancelled);
            }
            let page_no = summary.pages + 1;
            let url = page_url(&opts.nvd_url, cur.next_index, window);
            let body = http.get(&url, page_no)?;
            let page = nvd::parse_page(&body).map_err(|message| VulnError::Malformed {
                url: url.clone(),
                page: page_no,
                message,
            })?;
            pages_here += 1;
            if page.total / page.per_page.max(1) > MAX_PAGES_PER_WINDOW || pages_here > MAX_PAGES_PER_WINDOW {
                return Err(VulnError::Malformed {
                    url,
                    page: page_no,
                    message: format!("more than {MAX_PAGES_PER_WINDOW} pages in one query"),
                });
            }
            let got = page.entries.len() as u64;
            let next = cur.next_index.saturating_add(got);
            let window_done = got == 0 || next >= page.total;
            let mut after = cur.clone();
            if window_done {
                // A finished full pass continues as an (empty) incremental one, so that a crash
                // before the pass is recorded does not start the download again.
                after.next_index = 0;
                after.full = false;
                after.window_start = Some(window.map_or_else(|| after.end.clone(), |(_, we)| fmt_time(we)));
            } else {
                after.next_index = next;
            }
            let json = serde_json::to_string(&after).map_err(|e| corrupt(&e.to_string()))?;
            let (new, changed) = db.apply_nvd_page(&page.entries, &json)?;
            summary.pages += 1;
            summary.cves_new += new;
            summary.cves_changed += changed;
            progress(&UpdateProgress { stage: "nvd", done: next.min(page.total), total: Some(page.total) });
            cur = after;
            if window_done {
                break;
            }
        }
        match window {
            Some((_, we)) if we < end => continue,
            _ => break,
        }
    }
    db.finish_nvd(&cur.end)?;

    if opts.cancel.load(Ordering::Relaxed) {
        return Err(VulnError::Cancelled);
    }
    let body = http.get(&opts.kev_url, 0)?;
    let kev = nvd::parse_kev(&body).map_err(|message| VulnError::Malformed {
        url: opts.kev_url.clone(),
        page: 0,
        message,
    })?;
    summary.kev_total = kev.len() as u64;
    summary.kev_new = db.replace_kev(&kev)?;
    progress(&UpdateProgress { stage: "kev", done: summary.kev_total, total: Some(summary.kev_total) });
    Ok(summary)
}

/// The URL of one NVD page.
fn page_url(base: &str, start: u64, window: Option<(DateTime<Utc>, DateTime<Utc>)>) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut u = format!("{base}{sep}startIndex={start}&resultsPerPage={PAGE_SIZE}");
    if let Some((s, e)) = window {
        u.push_str(&format!("&lastModStartDate={}&lastModEndDate={}", fmt_time(s), fmt_time(e)));
    }
    u
}

/// Whether a URL's host is a loopback address (no proxy is used for those).
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The HTTP side: one agent, the rate limiter, retries.
struct Http {
    agent: ureq::Agent,
    direct: ureq::Agent,
    api_key: Option<String>,
    sent: VecDeque<Instant>,
    limit: usize,
    max_retries: u32,
    cancel: Arc<AtomicBool>,
}

impl Http {
    fn new(opts: &UpdateOptions) -> Http {
        let build = |direct: bool| -> ureq::Agent {
            let mut b = ureq::Agent::config_builder()
                .timeout_global(Some(opts.timeout))
                .http_status_as_error(false)
                .max_redirects(5)
                .user_agent(concat!("rustmap/", env!("CARGO_PKG_VERSION")));
            if direct {
                b = b.proxy(None);
            }
            b.build().into()
        };
        Http {
            agent: build(false),
            direct: build(true),
            api_key: opts.api_key.clone(),
            sent: VecDeque::new(),
            limit: if opts.api_key.is_some() { 50 } else { 5 },
            max_retries: opts.max_retries,
            cancel: opts.cancel.clone(),
        }
    }

    /// Sleep `d`, looking at the cancel flag every 100 ms.
    fn sleep(&self, d: Duration) -> Result<(), VulnError> {
        let until = Instant::now() + d;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(VulnError::Cancelled);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(CANCEL_POLL));
        }
    }

    /// Wait until one more request fits in the rolling window, and count it.
    fn pace(&mut self) -> Result<(), VulnError> {
        while let Some(wait) = admit(&mut self.sent, self.limit, Instant::now()) {
            self.sleep(wait.min(CANCEL_POLL))?;
        }
        Ok(())
    }

    /// GET `url` (page `page` of the pass, for errors): the body.
    fn get(&mut self, url: &str, page: u32) -> Result<Vec<u8>, VulnError> {
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0u32;
        loop {
            self.pace()?;
            let agent = if loopback(url) { &self.direct } else { &self.agent };
            let mut req = agent.get(url);
            if let Some(k) = &self.api_key {
                req = req.header("apiKey", k);
            }
            let (wait, why) = match req.call() {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        return resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| {
                            VulnError::Http { url: url.into(), page, message: format!("reading the response: {e}") }
                        });
                    }
                    if status != 429 && status != 503 {
                        return Err(VulnError::Status { url: url.into(), page, status });
                    }
                    let after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                    (after, format!("HTTP {status}"))
                }
                // A name that does not resolve, a refused connection or a bad URL is how the
                // server is set up, not a passing fault: retrying would only make the user wait.
                Err(e) if permanent(&e) => {
                    return Err(VulnError::Http { url: url.into(), page, message: e.to_string() });
                }
                Err(e) => (None, e.to_string()),
            };
            tries += 1;
            if tries > self.max_retries {
                return Err(VulnError::Http {
                    url: url.into(),
                    page,
                    message: format!("{why} (gave up after {} retries)", self.max_retries),
                });
            }
            let wait = wait.unwrap_or_else(|| {
                let w = backoff;
                backoff = (backoff * 2).min(MAX_RETRY_AFTER);
                w
            });
            self.sleep(wait)?;
        }
    }
}

/// The rate limit: `None` when one more request may go at `now` (and it is counted in `sent`),
/// else how long until the oldest request of the window leaves it.
fn admit(sent: &mut VecDeque<Instant>, limit: usize, now: Instant) -> Option<Duration> {
    while sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= RATE_WINDOW) {
        sent.pop_front();
    }
    if sent.len() < limit {
        sent.push_back(now);
        return None;
    }
    let oldest = sent.front().copied().unwrap_or(now);
    Some((oldest + RATE_WINDOW).saturating_duration_since(now))
}

/// An error no retry can fix.
fn permanent(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::HostNotFound | ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_5_requests_in_30_s_without_a_key_and_50_with_one() {
        for limit in [5usize, 50] {
            let t0 = Instant::now();
            let mut sent = VecDeque::new();
            for i in 0..limit {
                assert_eq!(admit(&mut sent, limit, t0 + Duration::from_millis(i as u64)), None, "request {i}");
            }
            // The next one waits until the first leaves the window, then goes.
            let t = t0 + Duration::from_secs(1);
            assert_eq!(admit(&mut sent, limit, t), Some(Duration::from_secs(29)));
            assert_eq!(admit(&mut sent, limit, t0 + RATE_WINDOW), None);
            assert_eq!(sent.len(), limit);
        }
    }

    #[test]
    fn page_urls() {
        let s = parse_time("2026-01-01T00:00:00.000Z").unwrap();
        let e = parse_time("2026-03-01T12:30:00.000Z").unwrap();
        assert_eq!(
            page_url("http://h/x", 4000, Some((s, e))),
            "http://h/x?startIndex=4000&resultsPerPage=2000&lastModStartDate=2026-01-01T00:00:00.000Z&lastModEndDate=2026-03-01T12:30:00.000Z"
        );
        assert_eq!(page_url("http://h/x?a=b", 0, None), "http://h/x?a=b&startIndex=0&resultsPerPage=2000");
    }

    #[test]
    fn loopback_hosts() {
        assert!(loopback("http://127.0.0.1:8080/x"));
        assert!(loopback("http://localhost/x"));
        assert!(loopback("http://[::1]:9/"));
        assert!(!loopback("https://services.nvd.nist.gov/rest/json/cves/2.0"));
        assert!(!loopback("https://127.0.0.1.evil.example@example.com/"));
        assert!(!loopback("http://127.0.0.1.evil.example/"));
    }

    #[test]
    fn cancel_interrupts_waits_quickly() {
        let opts = UpdateOptions::default();
        let http = Http::new(&opts);
        opts.cancel.store(true, Ordering::Relaxed);
        let t = Instant::now();
        assert!(matches!(http.sleep(Duration::from_secs(30)), Err(VulnError::Cancelled)));
        assert!(t.elapsed() < Duration::from_millis(150));
    }
}
