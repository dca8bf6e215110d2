//! Distributed RustMap scans on NATS JetStream: no protocol of our own, a proven message engine.
//!
//! - [`scheduler`]: `rustmap --distribute` cuts a scan into shards
//!   ([`rustmap::shard::ShardSet`]), publishes them to a work-queue stream, and aggregates what
//!   the agents publish into a [`rustmap::Remote`], so that the scan's outputs, history and event
//!   stream are a local scan's.
//! - [`agent`]: `rustmap --agent` pulls shards from the work queue (a durable pull consumer
//!   shared by every agent), scans each with the local engine, publishes its hosts to the
//!   results stream with message ids (a redelivered shard's results are de-duplicated), keeps
//!   long shards alive with progress acks, and acks when done.
//! - [`registry`]: who is alive and what each agent scans, in a key-value bucket whose entries
//!   expire when an agent stops refreshing them.
//! - [`merge`]: the aggregator's state: hosts de-duplicated and their port groups merged.
//!
//! Delivery is at least once (a shard whose agent died is delivered again after its ack wait)
//! and aggregation is idempotent (a host is taken once per port group, whoever sent it).

#![forbid(unsafe_code)]

pub mod agent;
mod error;
pub mod merge;
pub mod nats;
pub mod proto;
pub mod registry;
pub mod scheduler;

pub use error::DistError;
pub use nats::NatsOptions;
