//! What travels over NATS, as JSON: shards, results, manifests, and their subjects and message
//! ids. Every message read is checked: a malformed one is reported, never trusted.

use rustmap_model::{HostResult, ScanConfig};
use serde::{Deserialize, Serialize};

/// The version of these messages; a process refuses a newer one.
pub const PROTO_VERSION: u32 = 1;

/// The subject of shard `index` of `scan`.
pub fn shard_subject(scan: &str, index: u32) -> String {
    format!("rustmap.shard.{scan}.{index}")
}

/// The subject of `scan`'s results.
pub fn result_subject(scan: &str) -> String {
    format!("rustmap.result.{scan}")
}

/// Whether `id` is safe in a subject token (scan ids are ULIDs; `--resume` takes what is typed).
pub fn valid_scan_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The shard index of a work-queue subject, if the subject is one of `scan`'s shards.
pub fn shard_of_subject(subject: &str, scan: &str) -> Option<u32> {
    subject.strip_prefix("rustmap.shard.")?.strip_prefix(scan)?.strip_prefix('.')?.parse().ok()
}

/// A JetStream max-deliveries advisory: the stream sequence of the message given up, and its
/// delivery count. `None` for anything else.
pub fn max_deliveries_advisory(payload: &[u8]) -> Option<(u64, u64)> {
    #[derive(Deserialize)]
    struct Advisory {
        stream_seq: u64,
        #[serde(default)]
        deliveries: u64,
    }
    serde_json::from_slice::<Advisory>(payload).ok().map(|a| (a.stream_seq, a.deliveries))
}

/// One shard, as published to the work queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardMsg {
    /// [`PROTO_VERSION`].
    pub v: u32,
    /// The distributed scan.
    pub scan_id: String,
    /// The shard's index.
    pub index: u32,
    /// Its port group.
    pub group: u32,
    /// The scan to run.
    pub config: ScanConfig,
}

/// What an agent (or the scheduler, for a shard no agent finished) publishes about a shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultMsg {
    /// A host the shard finished.
    Host {
        /// The shard.
        shard: u32,
        /// Its port group.
        group: u32,
        /// The agent.
        agent: String,
        /// The host, with the shard's ports.
        host: Box<HostResult>,
    },
    /// A warning of the shard's scan.
    Warning {
        /// The shard.
        shard: u32,
        /// The agent.
        agent: String,
        /// The message.
        message: String,
    },
    /// The shard is done: every host of it was published before this.
    Done {
        /// The shard.
        shard: u32,
        /// The agent.
        agent: String,
        /// Hosts it published.
        hosts: u64,
        /// How long the scan took.
        elapsed_secs: f64,
    },
    /// The shard will not be done: its hosts are missing from the results.
    Failed {
        /// The shard.
        shard: u32,
        /// Who gave up (an agent, or `scheduler` when the work queue did).
        agent: String,
        /// Why.
        error: String,
    },
}

impl ResultMsg {
    /// The message id that de-duplicates it in the results stream: a redelivered shard's
    /// results carry the same ids as the first delivery's.
    pub fn message_id(&self, scan: &str) -> String {
        match self {
            ResultMsg::Host { shard, host, .. } => format!("{scan}.{shard}.h.{}", host.addr),
            // By its text: a redelivered shard's same warning is dropped, a new one is not.
            ResultMsg::Warning { shard, message, .. } => format!("{scan}.{shard}.w.{:016x}", fnv(message.as_bytes())),
            ResultMsg::Done { shard, .. } => format!("{scan}.{shard}.done"),
            ResultMsg::Failed { shard, .. } => format!("{scan}.{shard}.failed"),
        }
    }
}

/// FNV-1a, 64 bits: a short, stable fingerprint of bytes (message ids, target lists).
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A distributed scan as the cluster keeps it: what a restarted scheduler needs to go on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`PROTO_VERSION`].
    pub v: u32,
    /// The scan's id.
    pub scan_id: String,
    /// The whole scan's configuration, outputs included.
    pub config: ScanConfig,
    /// The permutation key of its shards.
    pub key: u64,
    /// Hosts per shard.
    pub hosts_per_shard: usize,
    /// Shards.
    pub shards: u32,
    /// Port groups.
    pub groups: u32,
    /// A fingerprint of its target list ([`ShardSet::fingerprint`](rustmap::shard::ShardSet::fingerprint)):
    /// a resumed scan whose targets changed is refused.
    #[serde(default)]
    pub targets_fnv: u64,
    /// When it was created (Unix seconds).
    pub created_unix: i64,
}

/// Parse `bytes` as a `T`.
pub fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("malformed {what}: {e}"))
}

/// Parse `bytes` as a versioned `T`: one of a newer RustMap is refused with a message that says
/// so (its fields may mean something this version does not do).
pub fn decode_versioned<T: for<'de> Deserialize<'de> + Versioned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    let t: T = decode(what, bytes)?;
    if t.version() > PROTO_VERSION {
        return Err(format!(
            "{what} of a newer RustMap (message version {} > {PROTO_VERSION}): upgrade this one",
            t.version()
        ));
    }
    Ok(t)
}

/// Messages with a version field.
pub trait Versioned {
    /// The message's version.
    fn version(&self) -> u32;
}

impl Versioned for ShardMsg {
    fn version(&self) -> u32 {
        self.v
    }
}

impl Versioned for Manifest {
    fn version(&self) -> u32 {
        self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_advisories_are_read_strictly() {
        assert_eq!(shard_of_subject("rustmap.shard.01ABC.7", "01ABC"), Some(7));
        assert_eq!(shard_of_subject("rustmap.shard.01ABCD.7", "01ABC"), None, "another scan");
        assert_eq!(shard_of_subject("rustmap.shard.01ABC.x", "01ABC"), None);
        let a = br#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","stream_seq":42,"deliveries":5}"#;
        assert_eq!(max_deliveries_advisory(a), Some((42, 5)));
        assert_eq!(max_deliveries_advisory(b"{}"), None);
        assert!(valid_scan_id("01M98BBG5B3TSP56TJ41HRQMAZ"));
        assert!(!valid_scan_id("a.b") && !valid_scan_id("*") && !valid_scan_id(""));
    }

    #[test]
    fn newer_messages_are_refused() {
        let m = Manifest {
            v: PROTO_VERSION + 1,
            scan_id: "X".into(),
            config: ScanConfig::default(),
            key: 1,
            hosts_per_shard: 1,
            shards: 1,
            groups: 1,
            targets_fnv: 0,
            created_unix: 0,
        };
        let e = decode_versioned::<Manifest>("manifest", &serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(e.contains("newer RustMap"), "{e}");
        assert!(decode_versioned::<ShardMsg>("shard", b"{").unwrap_err().starts_with("malformed shard"));
    }
}
