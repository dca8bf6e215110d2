//! OS fingerprinting without I/O: what a host's answers to the OS probes say about its TCP/IP
//! stack, RustMap's own fingerprint database, and the weighted matcher that ranks its entries.
//!
//! - [`observe`]: the answers as the probe stage saw them ([`Observations`]), one plain value per
//!   field a test looks at. Filled by the engine's OS stage (active probes); the passive part
//!   (the port scan's own SYN-ACKs) has its tests but no source yet.
//! - [`sequence`]: the tests over a series of answers: ISN increments, the IP ID sequence class,
//!   the TCP timestamp clock (→ uptime) and the clock skew.
//! - [`fingerprint`]: turns observations into a [`Fingerprint`], a flat map from test name to
//!   value (the names are listed in [`fingerprint::TESTS`] and in docs/os-detection.md).
//! - [`db`]: the database format (versioned JSON, `data/os-db.json` is the built-in one) and its
//!   checks. Every entry is written here from documented stack behaviour or from stacks run in
//!   the lab; none comes from another scanner's database.
//! - [`capture`]: the capture tool's logic (`rustmap --os-entry`): fingerprints read from a
//!   RustMap report or from the normal output, merged into one checked entry.
//! - [`score`]: fuzzy weighted matching → accuracy per entry, which tests agreed and which not.
//!
//! Everything read here came off the network or from a user's file: no function panics on any
//! input, every count is bounded.

#![forbid(unsafe_code)]

pub mod capture;
pub mod db;
pub mod fingerprint;
pub mod observe;
pub mod score;
pub mod sequence;

pub use db::{Database, DbError, Entry};
pub use fingerprint::{Fingerprint, Value};
pub use observe::Observations;
pub use score::{rank, Match};
