//! Service and version detection (`-sV`): RustMap's own probe database, the rules that read
//! answers, and a driver that probes a port's service in parallel.
//!
//! - [`db`]: the database format (documented in `docs/service-probes.md`), its parser with
//!   file-and-line errors, and the embedded database (`data/probes.rmp`).
//! - [`template`]: rendering a rule's product/version/... templates from capture groups, and
//!   cleaning network bytes on the way.
//! - [`matcher`]: one answer against the rules that read it (pure, bounded).
//! - [`plan`]: which probes a port gets, in which waves, with which timeouts (pure).
//! - [`engine`]: the tokio driver over TCP connections and UDP sockets.
//! - [`tls`]: finding TLS on a port with our own ClientHello (any version, JA3S/JA4S), and rustls
//!   sessions to run probes inside TLS.
//! - [`version`]: the precision rule, what a captured token must look like to be a version.
//! - [`cert`]: X.509 certificates to [`rustmap_model::CertInfo`].
//!
//! Nothing here prints; results come back as [`rustmap_model::ServiceInfo`].

#![forbid(unsafe_code)]

pub mod cert;
pub mod db;
pub mod engine;
pub mod fingerprint;
pub mod matcher;
pub mod pace;
pub mod plan;
pub mod quic;
pub mod template;
pub mod tls;
pub mod version;

pub use db::{DbError, LoadError, ProbeDb, Transport};
pub use engine::{DetectOptions, Detector, PortOutcome};
