//! The crate's one error type.

use thiserror::Error;

/// Why a distributed scan or an agent could not go on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DistError {
    /// The NATS server could not be reached or refused us.
    #[error("NATS server {url}: {message}")]
    Connect {
        /// The server's URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A JetStream call failed (streams, consumers, key-value buckets, publishing).
    #[error("JetStream: {0}")]
    JetStream(String),
    /// No agent is registered as alive.
    #[error("no RustMap agent is alive on {0}: start one with `rustmap --agent --nats {0}`")]
    NoAgent(String),
    /// The scan cannot be distributed as configured.
    #[error("{0}")]
    Config(String),
    /// `--resume` of a distributed scan the cluster does not know.
    #[error("no distributed scan {0} on this NATS server (its manifest is gone or it never existed)")]
    UnknownScan(String),
    /// A local file (credentials, keys) could not be read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl DistError {
    pub(crate) fn js(context: &str, e: impl std::fmt::Display) -> DistError {
        DistError::JetStream(format!("{context}: {e}"))
    }
}
