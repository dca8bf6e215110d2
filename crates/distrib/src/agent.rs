//! `rustmap --agent`: pull shards from the work queue, scan each with the local engine, publish
//! what it finds, ack. Many agents share one durable pull consumer, so a shard goes to one agent
//! at a time; each agent takes at most its own concurrency of shards at once.
//!
//! Delivery: a shard's hosts are published with message ids (a redelivered shard's duplicates
//! are dropped by the results stream), then its `done` record, then the shard is acked. An agent
//! that dies before the ack loses nothing: the shard goes to another agent after the ack wait.
//! Long shards send progress acks every third of the ack wait so that they are not redelivered
//! while still being scanned.
//!
//! Stopping: [`run`]'s `drain` token stops taking shards and lets those in hand finish (SIGTERM);
//! its `abort` token cancels them and gives them back to the queue at once (a second signal).

use crate::nats::{self, NatsOptions, AGENTS_CONSUMER};
use crate::proto::{self, ResultMsg, ShardMsg};
use crate::registry::{self, AgentInfo};
use crate::DistError;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use rustmap::{ScanEvent, Scanner, StartOptions};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Publish acks an agent waits for at once before publishing more.
const ACKS_IN_FLIGHT: usize = 256;

/// How an agent runs.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The server.
    pub nats: NatsOptions,
    /// Its name in the registry and in results.
    pub name: String,
    /// `--agent-tags`.
    pub tags: Vec<String>,
    /// Shards scanned at once.
    pub concurrency: usize,
    /// A cap on every shard's packet rate (`--max-rate` given to the agent): the lower of it and
    /// the scan's own.
    pub max_rate: Option<f64>,
    /// The shard consumer's ack wait: a shard not acked (or kept alive) for this long is given
    /// to another agent. Applies when this agent creates the consumer.
    pub ack_wait: Duration,
    /// Deliveries of a shard before it is given up. Applies when this agent creates the consumer.
    pub max_deliver: i64,
}

/// What an agent reports as it goes (it never prints: the front-end does).
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// Connected and registered.
    Ready {
        /// The agent's name.
        name: String,
    },
    /// A shard was taken.
    ShardStarted {
        /// The scan.
        scan: String,
        /// The shard.
        shard: u32,
        /// Its delivery count (1: first delivery).
        delivered: i64,
    },
    /// A shard was done and acked.
    ShardDone {
        /// The scan.
        scan: String,
        /// The shard.
        shard: u32,
        /// Hosts published.
        hosts: u64,
        /// Seconds it took.
        secs: f64,
    },
    /// A shard failed here (given back to the queue, or given up on its last delivery).
    ShardFailed {
        /// The scan.
        scan: String,
        /// The shard.
        shard: u32,
        /// Why.
        error: String,
    },
    /// Something went wrong that did not stop the agent (a fetch that failed).
    Problem(String),
    /// Stopping: no new shards are taken.
    Draining,
}

/// The report callback.
pub type Report = Arc<dyn Fn(AgentEvent) + Send + Sync>;

/// The shard consumer every agent shares (created with `ack_wait` and `max_deliver` by the
/// first process that needs it).
pub async fn shard_consumer(
    shards: &jetstream::stream::Stream,
    ack_wait: Duration,
    max_deliver: i64,
) -> Result<jetstream::consumer::Consumer<pull::Config>, DistError> {
    shards
        .get_or_create_consumer(
            AGENTS_CONSUMER,
            pull::Config {
                durable_name: Some(AGENTS_CONSUMER.into()),
                filter_subject: "rustmap.shard.>".into(),
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                max_deliver,
                max_ack_pending: 10_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DistError::js("the shard consumer", e))
}

/// Run an agent until `drain` (finish the shards in hand, then stop) or `abort` (give them back).
/// Returns the number of shards it finished.
pub async fn run(
    opts: AgentOptions,
    drain: CancellationToken,
    abort: CancellationToken,
    report: Report,
) -> Result<u64, DistError> {
    let client = opts.nats.connect().await?;
    let cluster = nats::cluster(client).await?;
    let consumer = shard_consumer(&cluster.shards, opts.ack_wait, opts.max_deliver).await?;
    // The consumer's own settings hold (the first process that made it chose them): keepalives
    // and the last-delivery test follow them, not this agent's flags.
    let mut opts = opts;
    opts.ack_wait = consumer.cached_info().config.ack_wait;
    opts.max_deliver = consumer.cached_info().config.max_deliver;
    let info = Arc::new(Mutex::new(AgentInfo {
        name: opts.name.clone(),
        tags: opts.tags.clone(),
        concurrency: opts.concurrency,
        started_unix: unix_now(),
        version: rustmap::VERSION.to_string(),
        ..Default::default()
    }));
    registry::put(&cluster.agents, &snapshot(&info)).await?;
    report(AgentEvent::Ready { name: opts.name.clone() });
    // The registry entry lives as long as the agent refreshes it.
    let refresher = {
        let (store, info, report) = (cluster.agents.clone(), Arc::clone(&info), Arc::clone(&report));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(registry::REFRESH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = registry::put(&store, &snapshot(&info)).await {
                    report(AgentEvent::Problem(e.to_string()));
                }
            }
        })
    };
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let opts = Arc::new(opts);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = drain.cancelled() => break,
        };
        let fetched = tokio::select! {
            f = fetch_one(&consumer) => f,
            _ = drain.cancelled() => break,
        };
        let msg = match fetched {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                report(AgentEvent::Problem(e));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let ctx = Shard {
            js: cluster.js.clone(),
            opts: Arc::clone(&opts),
            info: Arc::clone(&info),
            report: Arc::clone(&report),
            abort: abort.clone(),
        };
        tasks.spawn(async move {
            ctx.handle(msg).await;
            drop(permit);
        });
    }
    report(AgentEvent::Draining);
    while tasks.join_next().await.is_some() {}
    refresher.abort();
    registry::remove(&cluster.agents, &opts.name).await;
    let done = info.lock().map(|i| i.shards_done).unwrap_or(0);
    Ok(done)
}

fn snapshot(info: &Mutex<AgentInfo>) -> AgentInfo {
    info.lock().map(|i| i.clone()).unwrap_or_default()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// One shard, or none within a short wait.
async fn fetch_one(
    consumer: &jetstream::consumer::Consumer<pull::Config>,
) -> Result<Option<jetstream::Message>, String> {
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .map_err(|e| format!("cannot fetch a shard: {e}"))?;
    match batch.next().await {
        None => Ok(None),
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(e)) => Err(format!("cannot fetch a shard: {e}")),
    }
}

/// What handling one shard needs.
struct Shard {
    js: jetstream::Context,
    opts: Arc<AgentOptions>,
    info: Arc<Mutex<AgentInfo>>,
    report: Report,
    abort: CancellationToken,
}

/// How a shard's scan ended here.
enum Ending {
    Done {
        hosts: u64,
    },
    Failed(String),
    /// Never to be scanned, by any agent.
    Refused(String),
    Aborted,
}

impl Shard {
    async fn handle(&self, msg: jetstream::Message) {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        // The subject names the scan and the shard; a body that says otherwise is not scanned.
        let named = msg.subject.as_str().strip_prefix("rustmap.shard.").and_then(|rest| {
            let (scan, index) = rest.rsplit_once('.')?;
            Some((scan.to_string(), index.parse::<u32>().ok()?)).filter(|(s, _)| proto::valid_scan_id(s))
        });
        let Some((scan, index)) = named else {
            (self.report)(AgentEvent::Problem(format!("{}: not a shard subject; dropped", msg.subject)));
            let _ = msg.ack_with(AckKind::Term).await;
            return;
        };
        let tag = format!("{scan}/{index}");
        let shard = match proto::decode_versioned::<ShardMsg>("shard", &msg.payload) {
            Ok(s) if s.scan_id == scan && s.index == index => s,
            Ok(_) => {
                let e = "the shard's body names another scan or shard than its subject".to_string();
                return self.give_back(&msg, &tag, scan, index, true, e).await;
            }
            // Nobody can scan it (a newer RustMap's, or garbage): reported, never redelivered.
            Err(e) => return self.give_back(&msg, &tag, scan, index, true, e).await,
        };
        self.set_scanning(&tag, true, false);
        (self.report)(AgentEvent::ShardStarted { scan: scan.clone(), shard: index, delivered });
        let started = Instant::now();
        let ending = self.scan(&msg, shard).await;
        let subject = proto::result_subject(&scan);
        match ending {
            Ending::Done { hosts } => {
                let done = ResultMsg::Done {
                    shard: index,
                    agent: self.opts.name.clone(),
                    hosts,
                    elapsed_secs: started.elapsed().as_secs_f64(),
                };
                match self.publish_now(&subject, &scan, &done).await {
                    Ok(()) => {
                        let _ = msg.double_ack().await;
                        self.set_scanning(&tag, false, true);
                        (self.report)(AgentEvent::ShardDone {
                            scan,
                            shard: index,
                            hosts,
                            secs: started.elapsed().as_secs_f64(),
                        });
                    }
                    Err(e) => self.give_back(&msg, &tag, scan, index, self.last(delivered), e).await,
                }
            }
            Ending::Failed(e) => self.give_back(&msg, &tag, scan, index, self.last(delivered), e).await,
            Ending::Refused(e) => self.give_back(&msg, &tag, scan, index, true, e).await,
            Ending::Aborted => {
                let _ = msg.ack_with(AckKind::Nak(None)).await;
                self.set_scanning(&tag, false, false);
            }
        }
    }

    /// A shard that failed here: back to the queue, or given up (`last`: its last delivery, or
    /// one no agent can scan), recorded as failed in the results first.
    async fn give_back(&self, msg: &jetstream::Message, tag: &str, scan: String, shard: u32, last: bool, e: String) {
        if last {
            let failed = ResultMsg::Failed { shard, agent: self.opts.name.clone(), error: e.clone() };
            // Given up only once the scheduler can know it; else it stays for another try.
            let kind = match self.publish_now(&proto::result_subject(&scan), &scan, &failed).await {
                Ok(()) => AckKind::Term,
                Err(_) => AckKind::Nak(Some(Duration::from_secs(2))),
            };
            let _ = msg.ack_with(kind).await;
        } else {
            let _ = msg.ack_with(AckKind::Nak(Some(Duration::from_secs(2)))).await;
        }
        self.set_scanning(tag, false, false);
        (self.report)(AgentEvent::ShardFailed { scan, shard, error: e });
    }

    /// Whether delivery `delivered` is the shard's last (never, with unlimited deliveries).
    fn last(&self, delivered: i64) -> bool {
        self.opts.max_deliver > 0 && delivered >= self.opts.max_deliver
    }

    fn set_scanning(&self, tag: &str, on: bool, done: bool) {
        if let Ok(mut i) = self.info.lock() {
            i.scanning.retain(|t| t != tag);
            if on {
                i.scanning.push(tag.to_string());
            }
            if done {
                i.shards_done += 1;
            }
        }
    }

    /// Scan the shard, publishing its hosts and warnings as they come.
    async fn scan(&self, msg: &jetstream::Message, shard: ShardMsg) -> Ending {
        let mut config = shard.config;
        // A scheduler never sends these (it refuses such scans); anyone else who can publish
        // shards must not make this machine read or write its files.
        let files = config.file_fields();
        if !files.is_empty() {
            return Ending::Refused(format!(
                "the shard asks for files of this machine ({}): refused",
                files.join(", ")
            ));
        }
        if let Some(cap) = self.opts.max_rate {
            config.timing.max_rate = Some(config.timing.max_rate.map_or(cap, |r| r.min(cap)));
        }
        let cancel = self.abort.child_token();
        let options = StartOptions { totals_only: true, cancel: Some(cancel.clone()), ..StartOptions::default() };
        let mut handle = match Scanner::start_with(config, options) {
            Ok(h) => h,
            Err(e) => return Ending::Failed(format!("cannot start the scan: {e}")),
        };
        let Some(mut events) = handle.events() else { return Ending::Failed("no event stream".into()) };
        let subject = proto::result_subject(&shard.scan_id);
        let mut acks: VecDeque<PublishAckFuture> = VecDeque::new();
        let ack_wait = self.opts.ack_wait.max(Duration::from_secs(3));
        let mut keepalive = tokio::time::interval(ack_wait / 3);
        keepalive.tick().await;
        let mut hosts = 0u64;
        let mut failure = None;
        loop {
            let ev = tokio::select! {
                ev = events.next() => ev,
                _ = keepalive.tick() => {
                    let _ = msg.ack_with(AckKind::Progress).await;
                    continue;
                }
            };
            let Some(ev) = ev else { break };
            let out = match ev {
                ScanEvent::HostDone(h) => {
                    hosts += 1;
                    ResultMsg::Host {
                        shard: shard.index,
                        group: shard.group,
                        agent: self.opts.name.clone(),
                        host: Box::new(h),
                    }
                }
                ScanEvent::Warning { message } => {
                    ResultMsg::Warning { shard: shard.index, agent: self.opts.name.clone(), message }
                }
                _ => continue,
            };
            if failure.is_some() {
                continue;
            }
            match self.publish(&subject, &shard.scan_id, &out).await {
                Ok(ack) => acks.push_back(ack),
                Err(e) => {
                    failure = Some(e);
                    cancel.cancel();
                    continue;
                }
            }
            if acks.len() >= ACKS_IN_FLIGHT {
                if let Some(Err(e)) = match acks.pop_front() {
                    Some(a) => Some(a.await),
                    None => None,
                } {
                    failure = Some(format!("results not stored: {e}"));
                    cancel.cancel();
                }
            }
        }
        let outcome = handle.wait().await;
        for ack in acks {
            if let Err(e) = ack.await {
                failure.get_or_insert(format!("results not stored: {e}"));
            }
        }
        if self.abort.is_cancelled() {
            return Ending::Aborted;
        }
        match (failure, outcome) {
            (Some(e), _) => Ending::Failed(e),
            (None, Err(e)) => Ending::Failed(format!("scan failed: {e}")),
            (None, Ok(_)) => Ending::Done { hosts },
        }
    }

    async fn publish(&self, subject: &str, scan: &str, m: &ResultMsg) -> Result<PublishAckFuture, String> {
        let body = serde_json::to_vec(m).map_err(|e| e.to_string())?;
        let publish = PublishMessage::build().payload(body.into()).message_id(m.message_id(scan));
        self.js.send_publish(subject.to_string(), publish).await.map_err(|e| format!("cannot publish results: {e}"))
    }

    async fn publish_now(&self, subject: &str, scan: &str, m: &ResultMsg) -> Result<(), String> {
        self.publish(subject, scan, m).await?.await.map(|_| ()).map_err(|e| format!("results not stored: {e}"))
    }
}
