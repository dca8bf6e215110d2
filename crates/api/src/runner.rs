//! The scans this server runs: admission (one start per second per target, at most
//! [`MAX_CONCURRENT_SCANS`] at once, a bounded queue for requests that ask to wait), each scan's
//! session driven to its end with the store as a sink, and its event stream fanned out to any
//! number of WebSocket clients.
//!
//! A client that connects mid-scan first gets the events so far (a bounded backlog: progress
//! ticks are left out of it), then the live ones. A client too slow for the live stream misses
//! events (it is told how many) rather than slowing the scan: the store, a sink of the session,
//! never misses any.

use crate::auth::Key;
use crate::error::ApiError;
use crate::{ApiOptions, MAX_CONCURRENT_SCANS, MAX_QUEUED_SCANS};
use rustmap::{ScanEvent, ScanPlan, Scanner, StartOptions};
use rustmap_store::{Store, StoreHealth, StoreSink};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events kept for clients that connect mid-scan.
const BACKLOG: usize = 20_000;

/// Live events buffered per WebSocket client before it starts missing some.
const LIVE_BUFFER: usize = 4096;

/// Scans that failed to start, remembered for `GET /api/scans/{id}` (they are not in the store).
const FAILED_KEPT: usize = 100;

/// The minimum time between two starts of a scan of the same target (the guide's limit).
pub(crate) const PER_TARGET: Duration = Duration::from_secs(1);

/// Where a live scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a free slot.
    Queued,
    /// Scanning.
    Running,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Running => "running",
        }
    }
}

/// The events of one scan, as clients see them.
pub(crate) struct Feed {
    pub(crate) phase: Phase,
    pub(crate) backlog: Vec<Arc<ScanEvent>>,
    pub(crate) truncated: bool,
    /// `None` once the scan's stream ended: subscribers then drain and close.
    tx: Option<broadcast::Sender<Arc<ScanEvent>>>,
}

/// What a client joining a scan gets.
pub(crate) struct Subscription {
    /// The events so far (progress left out).
    pub(crate) backlog: Vec<Arc<ScanEvent>>,
    /// Whether the backlog reached its bound and stopped growing.
    pub(crate) truncated: bool,
    /// The events to come; `None` when the stream has ended.
    pub(crate) live: Option<broadcast::Receiver<Arc<ScanEvent>>>,
}

/// A scan started by this server and not yet ended.
pub(crate) struct Live {
    pub(crate) id: String,
    pub(crate) targets: Vec<String>,
    pub(crate) created: i64,
    pub(crate) cancel: CancellationToken,
    feed: Mutex<Feed>,
}

impl Live {
    pub(crate) fn feed(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The events so far and a receiver of the ones to come.
    pub(crate) fn subscribe(&self) -> Subscription {
        let f = self.feed();
        Subscription {
            backlog: f.backlog.clone(),
            truncated: f.truncated,
            live: f.tx.as_ref().map(broadcast::Sender::subscribe),
        }
    }

    fn push(&self, ev: ScanEvent) {
        let ev = Arc::new(ev);
        let mut f = self.feed();
        if !matches!(*ev, ScanEvent::Progress { .. }) {
            if f.backlog.len() < BACKLOG {
                f.backlog.push(Arc::clone(&ev));
            } else {
                f.truncated = true;
            }
        }
        if let Some(tx) = &f.tx {
            // No receiver is not an error: nobody is watching.
            let _ = tx.send(ev);
        }
    }
}

/// The server's state, shared by every handler.
pub(crate) struct State {
    pub(crate) options: ApiOptions,
    pub(crate) key: Option<Key>,
    pub(crate) shutdown: CancellationToken,
    live: Mutex<HashMap<String, Arc<Live>>>,
    failed: Mutex<Vec<(String, String)>>,
    recent: Mutex<HashMap<String, Instant>>,
    slots: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    tasks: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a new scan is admitted.
pub(crate) enum Admission {
    /// A slot is free: it runs now.
    Now(OwnedSemaphorePermit),
    /// It waits for one.
    Queue,
}

impl State {
    pub(crate) fn new(options: ApiOptions) -> State {
        State {
            key: options.api_key.as_deref().map(Key::new),
            options,
            shutdown: CancellationToken::new(),
            live: Mutex::default(),
            failed: Mutex::default(),
            recent: Mutex::default(),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_SCANS)),
            queued: Arc::new(AtomicUsize::new(0)),
            tasks: TaskTracker::new(),
        }
    }

    pub(crate) fn live(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.live).get(id).cloned()
    }

    pub(crate) fn all_live(&self) -> Vec<Arc<Live>> {
        let mut v: Vec<_> = lock(&self.live).values().cloned().collect();
        v.sort_by(|a, b| b.id.cmp(&a.id));
        v
    }

    pub(crate) fn failed(&self, id: &str) -> Option<String> {
        lock(&self.failed).iter().find(|(i, _)| i == id).map(|(_, e)| e.clone())
    }

    /// Admit a scan of `targets`: the per-target limit first, then a slot or a place in the
    /// queue. Nothing is recorded unless the scan is admitted.
    pub(crate) fn admit(&self, targets: &[String], queue: bool) -> Result<Admission, ApiError> {
        let now = Instant::now();
        let keys: Vec<String> = targets.iter().map(|t| t.trim().to_ascii_lowercase()).collect();
        let mut recent = lock(&self.recent);
        recent.retain(|_, at| now.duration_since(*at) < PER_TARGET);
        if let Some((key, at)) = keys.iter().find_map(|k| recent.get(k).map(|at| (k, *at))) {
            let wait = PER_TARGET.saturating_sub(now.duration_since(at));
            return Err(ApiError::too_many(
                format!("a scan of {key} started less than a second ago: one scan per second per target"),
                wait.as_secs_f64().ceil().max(1.0) as u64,
            )
            .with_field("targets"));
        }
        let admission = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Admission::Now(permit),
            Err(_) if queue => {
                let taken = self
                    .queued
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < MAX_QUEUED_SCANS).then_some(n + 1));
                if taken.is_err() {
                    return Err(ApiError::too_many(
                        format!("{MAX_CONCURRENT_SCANS} scans are running and {MAX_QUEUED_SCANS} are waiting"),
                        5,
                    ));
                }
                Admission::Queue
            }
            Err(_) => {
                return Err(ApiError::too_many(
                    format!(
                    "{MAX_CONCURRENT_SCANS} scans are running, the most at once; try again later, or add ?queue=true \
                         to wait for a free slot"
                ),
                    5,
                ))
            }
        };
        for k in keys {
            recent.insert(k, now);
        }
        Ok(admission)
    }

    /// Start driving an admitted scan; returns its id and phase.
    pub(crate) fn launch(self: &Arc<Self>, plan: ScanPlan, admission: Admission, distributed: bool) -> (String, Phase) {
        let id = rustmap::new_scan_id();
        let phase = if matches!(admission, Admission::Now(_)) { Phase::Running } else { Phase::Queued };
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        let live = Arc::new(Live {
            id: id.clone(),
            targets: plan.config().targets.clone(),
            created: unix_now(),
            cancel: self.shutdown.child_token(),
            feed: Mutex::new(Feed { phase, backlog: Vec::new(), truncated: false, tx: Some(tx) }),
        });
        lock(&self.live).insert(id.clone(), Arc::clone(&live));
        let state = Arc::clone(self);
        self.tasks.spawn(async move {
            let outcome = state.drive(&live, plan, admission, distributed).await;
            if let Err(e) = outcome {
                let mut failed = lock(&state.failed);
                if failed.len() >= FAILED_KEPT {
                    failed.remove(0);
                }
                failed.push((live.id.clone(), e));
            }
            live.feed().tx = None;
            lock(&state.live).remove(&live.id);
        });
        (id, phase)
    }

    /// Wait for a slot if queued, run the scan with the store as a sink, fan its events out.
    async fn drive(&self, live: &Live, plan: ScanPlan, admission: Admission, distributed: bool) -> Result<(), String> {
        let _permit = match admission {
            Admission::Now(p) => p,
            Admission::Queue => {
                let acquired = tokio::select! {
                    p = Arc::clone(&self.slots).acquire_owned() => p.ok(),
                    _ = live.cancel.cancelled() => None,
                };
                self.queued.fetch_sub(1, Ordering::SeqCst);
                match acquired {
                    Some(p) => p,
                    None => return Err("stopped while queued, before it started".into()),
                }
            }
        };
        live.feed().phase = Phase::Running;
        let db = self.options.db.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&db))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("scan history: {e}"))?;
        // On the cluster: the shards are published before the scan is stored, so that a cluster
        // without agents fails the scan with the reason and stores nothing.
        let remote = match (&self.options.distribute, distributed) {
            (Some(d), true) => Some(
                rustmap_distrib::scheduler::start(d, &plan, live.id.clone(), None)
                    .await
                    .map_err(|e| format!("the distributed scan could not start: {e}"))?
                    .remote,
            ),
            _ => None,
        };
        let health = Arc::new(Mutex::new(StoreHealth::default()));
        let options = StartOptions {
            remote,
            sinks: vec![Box::new(StoreSink::new(store, health))],
            cancel: Some(live.cancel.clone()),
            totals_only: true,
            allow: self.options.allow.clone(),
            scan_id: Some(live.id.clone()),
            ..StartOptions::default()
        };
        // Starting may block (a SOCKS5 proxy is greeted before the scan, up to its timeout): off
        // the async workers' hands.
        let mut handle = tokio::task::spawn_blocking(move || Scanner::start_plan(plan, options))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the scan could not start: {e}"))?;
        if let Some(mut events) = handle.events() {
            while let Some(ev) = events.next().await {
                live.push(ev);
            }
        }
        let outcome = handle.wait().await.map(drop).map_err(|e| e.to_string());
        // A distributed scan that did not complete leaves nothing queued: the API cannot take
        // it up again.
        if let (Some(d), true) = (&self.options.distribute, distributed) {
            if outcome.is_err() || live.cancel.is_cancelled() {
                let _ = rustmap_distrib::scheduler::purge(&d.nats, &live.id).await;
            }
        }
        outcome
    }

    /// Cancel every scan (queued ones never start) and wait until each has ended and is stored.
    pub(crate) async fn stop_all(&self) {
        for l in self.all_live() {
            l.cancel.cancel();
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
