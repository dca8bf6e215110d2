//! `rustmap --distribute`: publish a scan's shards and aggregate what the agents find into a
//! [`Remote`] that a local session consumes, so that every output, the history and the event
//! stream are those of a local scan.
//!
//! State lives in JetStream, not in this process: the manifest (configuration, permutation key)
//! in the scans bucket, the shards in the work queue, the results in the results stream. A
//! scheduler that is stopped or killed is restarted with `--resume ID`: it reads the scan's
//! results again from the start (aggregation is idempotent), publishes the shards that are
//! neither done nor still queued, and goes on.
//!
//! A shard no agent finishes within the consumer's deliveries (agents that died on it, or a
//! scan that fails everywhere) is given up: the work queue's max-deliveries advisory names it,
//! this scheduler records it as failed in the results stream and removes it from the queue,
//! and the scan reports it in a warning instead of waiting forever.

use crate::agent::shard_consumer;
use crate::merge::{Aggregate, ShardState};
use crate::nats::{self, Cluster, NatsOptions, AGENTS_CONSUMER, SHARDS_STREAM};
use crate::proto::{self, Manifest, ResultMsg, ShardMsg, PROTO_VERSION};
use crate::registry::{self, AgentInfo};
use crate::DistError;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures_util::StreamExt;
use rustmap::shard::ShardSet;
use rustmap::{Remote, RemoteEvent, ScanEvent};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;

/// How a distributed scan is run.
#[derive(Debug, Clone)]
pub struct DistributeOptions {
    /// The server.
    pub nats: NatsOptions,
    /// `--shard-hosts`: the most hosts a shard has.
    pub hosts_per_shard: Option<usize>,
    /// The shard consumer's ack wait (when this process creates it).
    pub ack_wait: Duration,
    /// Deliveries of a shard before it is given up (when this process creates the consumer).
    pub max_deliver: i64,
    /// The only addresses the scan may send to (the API server's `--api-allow`).
    pub allow: Option<rustmap::AllowList>,
    /// Remove the scan's queued shards when its session stops before the end (a front-end that
    /// cannot take the scan up again, like the API); else they wait for `--resume`.
    pub purge_on_cancel: bool,
}

/// A distributed scan under way.
#[derive(Debug)]
pub struct Distributed {
    /// The scan's id (the session must use it).
    pub scan_id: String,
    /// The aggregated results, for [`rustmap::StartOptions::remote`].
    pub remote: Remote,
    /// Shards of the scan.
    pub shards: u32,
    /// The most hosts in a shard.
    pub hosts_per_shard: usize,
    /// Port groups (each host is scanned in this many shards).
    pub groups: u32,
    /// The agents alive when it started.
    pub agents: Vec<AgentInfo>,
}

/// The manifest of a distributed scan, for `--resume`: its configuration is what the scan runs.
pub async fn manifest(nats: &NatsOptions, scan_id: &str) -> Result<Manifest, DistError> {
    if !proto::valid_scan_id(scan_id) {
        return Err(DistError::Config(format!("{scan_id:?}: not a scan id")));
    }
    let cluster = nats::cluster(nats.connect().await?).await?;
    let bytes = cluster
        .scans
        .get(scan_id)
        .await
        .map_err(|e| DistError::js("the scans bucket", e))?
        .ok_or_else(|| DistError::UnknownScan(scan_id.to_string()))?;
    proto::decode_versioned("manifest", &bytes).map_err(DistError::Config)
}

/// Take the queued shards of scan `scan_id` out of the work queue (a front-end that cannot
/// take a stopped scan up again).
pub async fn purge(nats: &NatsOptions, scan_id: &str) -> Result<(), DistError> {
    if !proto::valid_scan_id(scan_id) {
        return Err(DistError::Config(format!("{scan_id:?}: not a scan id")));
    }
    let cluster = nats::cluster(nats.connect().await?).await?;
    cluster
        .shards
        .purge()
        .filter(format!("rustmap.shard.{scan_id}.>"))
        .await
        .map(drop)
        .map_err(|e| DistError::js("the shard stream", e))
}

/// The agents alive on the server.
pub async fn agents(nats: &NatsOptions) -> Result<Vec<AgentInfo>, DistError> {
    let cluster = nats::cluster(nats.connect().await?).await?;
    registry::alive(&cluster.agents).await
}

/// Start (or, with `resumed`, take up again) the distributed scan of `plan` as `scan_id`.
pub async fn start(
    opts: &DistributeOptions,
    plan: &rustmap::ScanPlan,
    scan_id: String,
    resumed: Option<&Manifest>,
) -> Result<Distributed, DistError> {
    if !proto::valid_scan_id(&scan_id) {
        return Err(DistError::Config(format!("{scan_id:?}: not a scan id")));
    }
    // Cut first: a scan that cannot be distributed is refused before the server is asked.
    let (key, hosts) = match resumed {
        Some(m) => (m.key, Some(m.hosts_per_shard)),
        None => (rand::random::<u64>(), opts.hosts_per_shard),
    };
    let mut set = ShardSet::new(plan, key, hosts).map_err(|e| DistError::Config(e.to_string()))?;
    if let Some(allow) = &opts.allow {
        set.restrict(allow).map_err(|e| DistError::Config(e.to_string()))?;
    }
    let client = opts.nats.connect().await?;
    let cluster = nats::cluster(client.clone()).await?;
    let agents = registry::alive(&cluster.agents).await?;
    if agents.is_empty() {
        return Err(DistError::NoAgent(opts.nats.url.clone()));
    }
    match resumed {
        Some(m)
            if m.shards != set.len()
                || m.groups != set.groups()
                || (m.targets_fnv != 0 && m.targets_fnv != set.fingerprint()) =>
        {
            return Err(DistError::Config(format!(
                "scan {scan_id}: its targets changed since it started ({} shards then, {} now, or other addresses); \
                 start a new scan",
                m.shards,
                set.len()
            )))
        }
        Some(_) => {}
        None => {
            let manifest = Manifest {
                v: PROTO_VERSION,
                scan_id: scan_id.clone(),
                config: plan.config().clone(),
                key,
                hosts_per_shard: set.hosts_per_shard(),
                shards: set.len(),
                groups: set.groups(),
                targets_fnv: set.fingerprint(),
                created_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
            };
            let body = serde_json::to_vec(&manifest).map_err(|e| DistError::js("manifest", e))?;
            cluster.scans.create(&scan_id, body.into()).await.map_err(|e| DistError::js("the scans bucket", e))?;
        }
    }
    // The consumer exists before any shard is published, so that its max-deliveries advisories
    // are ours to hear.
    shard_consumer(&cluster.shards, opts.ack_wait, opts.max_deliver).await?;
    let advisory = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{SHARDS_STREAM}.{AGENTS_CONSUMER}");
    let advisories = client.subscribe(advisory).await.map_err(|e| DistError::js("advisories", e))?;
    let consumer = cluster
        .results
        .create_consumer(pull::OrderedConfig {
            filter_subject: proto::result_subject(&scan_id),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| DistError::js("the results consumer", e))?;
    let results = consumer.messages().await.map_err(|e| DistError::js("the results consumer", e))?;
    let (tx, rx) = mpsc::channel(4096);
    let (shards, hosts_per_shard, groups) = (set.len(), set.hosts_per_shard(), set.groups());
    let agg = Aggregator {
        cluster,
        scan_id: scan_id.clone(),
        aggregate: Aggregate::new(set.len(), set.groups()),
        set,
        tx,
        resumed: resumed.is_some(),
        purge_on_cancel: opts.purge_on_cancel,
        consumed: 0,
        candidates: None,
        idle_ticks: 0,
        no_agent_since: None,
        warned_no_agent: false,
    };
    // What was stored before this process started is read before any shard is published.
    let replay_until = agg.last_result().await.map_err(DistError::JetStream)?;
    tokio::spawn(agg.run(replay_until, results, advisories));
    Ok(Distributed { scan_id, remote: Remote { events: rx }, shards, hosts_per_shard, groups, agents })
}

/// The aggregator task's state.
struct Aggregator {
    cluster: Cluster,
    scan_id: String,
    set: ShardSet,
    aggregate: Aggregate,
    tx: mpsc::Sender<RemoteEvent>,
    resumed: bool,
    purge_on_cancel: bool,
    /// The stream sequence of the last result read.
    consumed: u64,
    /// A resumed scan's shards found neither done nor queued, to publish once the results
    /// stored meanwhile are read.
    candidates: Option<Vec<u32>>,
    /// Ticks in a row the shard consumer had nothing pending and nothing in flight.
    idle_ticks: u32,
    no_agent_since: Option<std::time::Instant>,
    warned_no_agent: bool,
}

/// Stop: the session is gone (cancelled), or the scan failed.
struct Gone;

impl Aggregator {
    async fn run(mut self, mut replay_until: u64, mut results: pull::Ordered, mut advisories: async_nats::Subscriber) {
        let mut published = false;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        // Ticks are two seconds apart even after a slow one (the stall check counts them).
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.aggregate.finished() {
            if !published && self.consumed >= replay_until {
                match self.publish_shards().await {
                    Err(Gone) => return,
                    Ok(Some(more)) => replay_until = more,
                    Ok(None) => published = true,
                }
            }
            tokio::select! {
                m = results.next() => {
                    let m = match m {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => {
                            let _ = self.tx.send(RemoteEvent::Failed(format!("reading the results stream: {e}"))).await;
                            return;
                        }
                        None => {
                            let _ = self.tx.send(RemoteEvent::Failed("the results stream ended".into())).await;
                            return;
                        }
                    };
                    if let Ok(info) = m.info() {
                        self.consumed = self.consumed.max(info.stream_sequence);
                    }
                    if self.take(&m.payload).await.is_err() {
                        return;
                    }
                }
                Some(a) = advisories.next() => self.given_up(&a.payload).await,
                _ = tick.tick() => {
                    if self.tick(published).await.is_err() {
                        return;
                    }
                }
                _ = self.tx.closed() => {
                    if self.purge_on_cancel {
                        self.purge().await;
                    }
                    return;
                }
            }
        }
        for h in self.aggregate.flush() {
            if self.tx.send(RemoteEvent::Event(ScanEvent::HostDone(h))).await.is_err() {
                return;
            }
        }
        let _ = self.progress().await;
        // Nothing of this scan is left queued (a shard given up whose message could not be
        // removed would otherwise be scanned for nothing).
        self.purge().await;
        let _ = self.tx.send(RemoteEvent::Finished).await;
    }

    async fn purge(&self) {
        let _ = self.cluster.shards.purge().filter(format!("rustmap.shard.{}.>", self.scan_id)).await;
    }

    /// The stream sequence of this scan's last stored result (0: none yet).
    async fn last_result(&self) -> Result<u64, String> {
        let subject = proto::result_subject(&self.scan_id);
        match self.cluster.results.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => Ok(m.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(format!("reading the results stream: {e}")),
        }
    }

    /// Whether shard `index` is still in the work queue: its stream sequence if it is.
    async fn queued(&self, index: u32) -> Result<Option<u64>, String> {
        let subject = proto::shard_subject(&self.scan_id, index);
        match self.cluster.shards.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => Ok(Some(m.sequence)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(format!("reading the work queue: {e}")),
        }
    }

    /// Publish the shards not done yet. On a resumed scan, only those no longer queued, and
    /// only once every result stored after they were found missing is read (a shard that was
    /// done and acked meanwhile is then known done): `Some(seq)` asks to be called again once
    /// the results up to `seq` are in.
    async fn publish_shards(&mut self) -> Result<Option<u64>, Gone> {
        let todo: Vec<u32> = match self.candidates.take() {
            Some(c) => c,
            None => {
                let pending = (0..self.set.len()).filter(|i| self.aggregate.state(*i) == Some(ShardState::Pending));
                if !self.resumed {
                    pending.collect()
                } else {
                    let mut missing = Vec::new();
                    for index in pending.collect::<Vec<_>>() {
                        match self.queued(index).await {
                            Ok(Some(_)) => {}
                            Ok(None) => missing.push(index),
                            Err(e) => return self.fail(e).await,
                        }
                    }
                    let last = match self.last_result().await {
                        Ok(l) => l,
                        Err(e) => return self.fail(e).await,
                    };
                    if last > self.consumed {
                        self.candidates = Some(missing);
                        return Ok(Some(last));
                    }
                    missing
                }
            }
        };
        let mut acks: VecDeque<(u32, PublishAckFuture)> = VecDeque::new();
        for index in todo {
            if self.aggregate.state(index) != Some(ShardState::Pending) {
                continue;
            }
            let subject = proto::shard_subject(&self.scan_id, index);
            let Some(shard) = self.set.shard(index) else { continue };
            let msg = ShardMsg {
                v: PROTO_VERSION,
                scan_id: self.scan_id.clone(),
                index,
                group: shard.group,
                config: shard.config,
            };
            let body = match serde_json::to_vec(&msg) {
                Ok(b) => b,
                Err(e) => return self.fail(format!("shard {index}: {e}")).await,
            };
            let publish = PublishMessage::build().payload(body.into()).message_id(format!("{}.{index}", self.scan_id));
            match self.cluster.js.send_publish(subject, publish).await {
                Ok(ack) => acks.push_back((index, ack)),
                Err(e) => return self.fail(format!("cannot publish shard {index}: {e}")).await,
            }
            if acks.len() >= 256 {
                if let Some((i, ack)) = acks.pop_front() {
                    if let Err(e) = ack.await {
                        return self.fail(format!("shard {i} not stored: {e}")).await;
                    }
                }
            }
        }
        for (i, ack) in acks {
            if let Err(e) = ack.await {
                return self.fail(format!("shard {i} not stored: {e}")).await;
            }
        }
        Ok(None)
    }

    async fn fail<T>(&self, error: String) -> Result<T, Gone> {
        let _ = self.tx.send(RemoteEvent::Failed(error)).await;
        Err(Gone)
    }

    async fn send(&self, ev: ScanEvent) -> Result<(), Gone> {
        self.tx.send(RemoteEvent::Event(ev)).await.map_err(|_| Gone)
    }

    /// One record of the results stream.
    async fn take(&mut self, payload: &[u8]) -> Result<(), Gone> {
        let msg: ResultMsg = match proto::decode("result", payload) {
            Ok(m) => m,
            Err(e) => {
                let message = rustmap_model::sanitize(&e).into_owned();
                return if self.aggregate.new_warning(&message) {
                    self.send(ScanEvent::Warning { message }).await
                } else {
                    Ok(())
                };
            }
        };
        match msg {
            ResultMsg::Host { group, host, .. } => {
                if let Some(h) = self.aggregate.host(group, *host) {
                    self.send(ScanEvent::HostDone(h)).await?;
                }
            }
            ResultMsg::Warning { message, .. } => {
                let message = rustmap_model::sanitize(&message).into_owned();
                if self.aggregate.new_warning(&message) {
                    self.send(ScanEvent::Warning { message }).await?;
                }
            }
            ResultMsg::Done { shard, .. } => {
                if self.aggregate.end_shard(shard, ShardState::Done) {
                    self.progress().await?;
                }
            }
            ResultMsg::Failed { shard, agent, error } => {
                if self.aggregate.end_shard(shard, ShardState::Failed) {
                    let hosts = self.set.shard_targets(shard);
                    let message = rustmap_model::sanitize(&format!(
                        "shard {shard} of {} ({hosts} targets) failed ({}: {error}); its hosts may be missing \
                         from the results",
                        self.set.len(),
                        agent
                    ))
                    .into_owned();
                    self.send(ScanEvent::Warning { message }).await?;
                    self.progress().await?;
                }
            }
        }
        Ok(())
    }

    async fn progress(&self) -> Result<(), Gone> {
        let (ended, all) = self.aggregate.progress();
        self.send(ScanEvent::Progress {
            hosts_done: self.aggregate.hosts_done(),
            probes_sent: 0,
            replies: 0,
            fraction: Some(if all == 0 { 1.0 } else { ended as f64 / all as f64 }),
            hosts_active: 0,
        })
        .await
    }

    /// A max-deliveries advisory: if the shard is ours, record it as failed and take it out of
    /// the queue.
    async fn given_up(&mut self, payload: &[u8]) {
        let Some((seq, deliveries)) = proto::max_deliveries_advisory(payload) else { return };
        let Ok(m) = self.cluster.shards.get_raw_message(seq).await else { return };
        let Some(index) = proto::shard_of_subject(m.subject.as_str(), &self.scan_id) else { return };
        let why = format!("no agent finished it in {deliveries} deliveries (agents died on it or timed out)");
        self.record_failed(index, why, Some(seq)).await;
    }

    /// Record shard `index` as failed in the results stream (where this scan, or a resumed one,
    /// reads it), then take its message (`queued`) out of the work queue.
    async fn record_failed(&self, index: u32, error: String, queued: Option<u64>) {
        let failed = ResultMsg::Failed { shard: index, agent: "scheduler".into(), error };
        let Ok(body) = serde_json::to_vec(&failed) else { return };
        let publish = PublishMessage::build().payload(body.into()).message_id(failed.message_id(&self.scan_id));
        if let Ok(ack) = self.cluster.js.send_publish(proto::result_subject(&self.scan_id), publish).await {
            if let (Ok(_), Some(seq)) = (ack.await, queued) {
                let _ = self.cluster.shards.delete_message(seq).await;
            }
        }
    }

    /// A scan whose shards can no longer end: the work queue has nothing pending and nothing in
    /// flight for three ticks, every result is read, and some shard is neither done nor failed.
    /// Such a shard is still queued after its last delivery (its advisory was missed: this
    /// process was not running, or could not read the message) or is gone from the queue
    /// without a record (a process that died between the two). Either way it is given up, so
    /// that the scan ends.
    async fn stalled(&mut self) {
        let Ok(info) = self.cluster.shards.consumer_info(AGENTS_CONSUMER).await else { return };
        if info.num_pending > 0 || info.num_ack_pending > 0 {
            self.idle_ticks = 0;
            return;
        }
        self.idle_ticks += 1;
        if self.idle_ticks < 3 || !matches!(self.last_result().await, Ok(last) if last <= self.consumed) {
            return;
        }
        self.idle_ticks = 0;
        for index in 0..self.set.len() {
            if self.aggregate.state(index) != Some(ShardState::Pending) {
                continue;
            }
            let (why, queued) = match self.queued(index).await {
                Ok(Some(seq)) => ("no agent finished it (it reached the work queue's delivery limit)", Some(seq)),
                Ok(None) => ("lost: neither done nor in the work queue", None),
                Err(_) => return,
            };
            self.record_failed(index, why.to_string(), queued).await;
        }
    }

    /// Every few seconds: progress, shards that can no longer end, and a warning when no agent
    /// is alive.
    async fn tick(&mut self, published: bool) -> Result<(), Gone> {
        self.progress().await?;
        if published {
            self.stalled().await;
        }
        let alive = registry::alive(&self.cluster.agents).await.map(|a| !a.is_empty()).unwrap_or(true);
        match (alive, self.no_agent_since) {
            (true, _) => {
                self.no_agent_since = None;
                self.warned_no_agent = false;
            }
            (false, None) => self.no_agent_since = Some(std::time::Instant::now()),
            (false, Some(since)) if since.elapsed() >= Duration::from_secs(20) && !self.warned_no_agent => {
                self.warned_no_agent = true;
                let (ended, all) = self.aggregate.progress();
                let message = format!(
                    "no RustMap agent is alive: {} of {all} shards wait in the queue for one (start an agent, or \
                     stop and resume this scan later)",
                    all - ended
                );
                self.send(ScanEvent::Warning { message }).await?;
            }
            (false, Some(_)) => {}
        }
        Ok(())
    }
}
