//! The agent registry: one key per agent in the [`AGENTS_BUCKET`](crate::nats::AGENTS_BUCKET)
//! key-value bucket, refreshed every few seconds by the agent itself. An agent that dies stops
//! refreshing and its key expires with the bucket's age limit, so the keys are the agents alive.

use crate::DistError;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often an agent refreshes its entry (well inside [`AGENT_TTL`](crate::nats::AGENT_TTL)).
pub const REFRESH_EVERY: Duration = Duration::from_secs(4);

/// An agent, as it registers itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name (`--agent-name`; the host name and process id by default).
    pub name: String,
    /// `--agent-tags`.
    pub tags: Vec<String>,
    /// Shards it scans at once.
    pub concurrency: usize,
    /// The shards it is scanning, as `scan/shard`.
    pub scanning: Vec<String>,
    /// Shards it has finished since it started.
    pub shards_done: u64,
    /// When it started (Unix seconds).
    pub started_unix: i64,
    /// Its RustMap version.
    pub version: String,
}

/// A key-value key for an agent name: the name's letters, digits, `-` and `_`, others as `_`.
pub fn key_of(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Write (or refresh) an agent's entry.
pub async fn put(store: &kv::Store, info: &AgentInfo) -> Result<(), DistError> {
    let body = serde_json::to_vec(info).map_err(|e| DistError::js("agent entry", e))?;
    store.put(key_of(&info.name), body.into()).await.map_err(|e| DistError::js("the agent registry", e))?;
    Ok(())
}

/// Remove an agent's entry (a clean stop).
pub async fn remove(store: &kv::Store, name: &str) {
    let _ = store.purge(key_of(name)).await;
}

/// The agents alive, by name. An entry that does not parse is left out.
pub async fn alive(store: &kv::Store) -> Result<Vec<AgentInfo>, DistError> {
    let mut keys = store.keys().await.map_err(|e| DistError::js("the agent registry", e))?;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        match k {
            Ok(k) => names.push(k),
            Err(e) => return Err(DistError::js("the agent registry", e)),
        }
        if names.len() > 10_000 {
            break;
        }
    }
    let mut out = Vec::new();
    for k in names {
        if let Ok(Some(v)) = store.get(&k).await {
            if let Ok(info) = serde_json::from_slice::<AgentInfo>(&v) {
                out.push(info);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
