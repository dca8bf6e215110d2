//! RustMap as a library: describe a scan as a [`ScanConfig`], start it with [`Scanner::start`],
//! and consume the [`ScanHandle`]: its id, its live event stream, cancel, wait for the result.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rustmap::{ScanConfig, Scanner};
//! let mut config = ScanConfig::new(["127.0.0.1"]);
//! config.ports.spec = Some("22,80,443".into());
//! let mut scan = Scanner::start(config)?;
//! let mut events = scan.events().expect("taken once");
//! while let Some(ev) = events.next().await {
//!     println!("{}", serde_json::to_string(&ev)?);
//! }
//! let result = scan.wait().await?;
//! println!("{} hosts up", result.hosts.len());
//! # Ok(()) }
//! ```
//!
//! - [`validate()`]: the one place a configuration is checked ([`ConfigError`] names the field).
//! - [`session`]: [`Scanner`], [`ScanHandle`], [`EventStream`] and the slow-consumer policy.
//! - `pipeline`: targets → engine → enrichment (port names, `-sV`, traceroute and path MTU,
//!   reverse DNS) → sinks.
//! - [`dns`]: forward and reverse name resolution.
//! - [`profile`] and [`settings`]: scan profiles, and the configuration files of defaults.
//!
//! Runnable: `examples/two_scans.rs` starts two scans at once and prints their events as they
//! stream.

#![forbid(unsafe_code)]

mod cloud;
pub mod dns;
mod enrich;
mod evasion;
mod events;
mod osdetect;
pub mod osentry;
mod oshints;
mod pipeline;
pub mod profile;
pub mod remote;
pub mod request;
mod scripts;
pub mod selftest;
pub mod session;
pub mod settings;
pub mod shard;
mod sinks;
mod trace;
pub mod validate;

pub use dns::NameOptions;
pub use remote::{Remote, RemoteEvent};
pub use request::{AllowList, ScanRequest};
pub use rustmap_model::config::{self, ReverseDns};
pub use rustmap_model::{AddrSet, Checkpoint, Control, ScanConfig, ScanEvent, ScanResult, Sink, SinkError};
pub use scripts::script_help;
pub use session::{new_scan_id, EventStream, Resume, ScanError, ScanHandle, Scanner, StartError, StartOptions};
pub use validate::{validate, ConfigError, ConfigErrorKind};

/// Whether this process may send raw packets (CAP_NET_RAW), as the kernel sees it.
pub use rustmap_netio::privilege;

pub use rustmap_engine::origin::Origin;

pub use rustmap_detect::{DetectOptions, LoadError as ProbeDbError, ProbeDb};
pub use rustmap_engine::discovery::{DiscoveryPlan, Ping};
pub use rustmap_engine::{Timing, TimingTemplate};

/// The network of an address as learned timing groups them: its /24, or its /64 for IPv6.
pub fn timing_network_of(a: IpAddr) -> IpAddr {
    rustmap_engine::timing::network_of(a)
}

use rustmap_model::config::OutputFormat;
use rustmap_model::ScanType;
use rustmap_targets::{PortList, TargetList};
use std::net::IpAddr;
use std::time::Duration;

/// How often sinks are ticked while a scan runs: a live status line redraws at most this often.
pub const TICK_EVERY: Duration = Duration::from_millis(250);

/// The `scan_started` header of a stored scan, rebuilt from its configuration, for outputs
/// written after the fact (the API's export of a past scan): the scan types and port lists come
/// from checking the configuration again; a configuration that no longer checks (say, a SYN scan
/// replayed without raw-socket privilege) gives a header without them.
pub fn stored_scan_info(config: Option<&ScanConfig>, scan_id: &str, start_unix: i64) -> rustmap_model::ScanInfo {
    let plan = config.and_then(|c| validate(c).ok());
    let scans = plan
        .as_ref()
        .map(|p| {
            let (types, _) = pipeline::engine_kind(p);
            types
                .iter()
                .map(|t| rustmap_model::ScanPorts { scan_type: *t, ports: p.ports.get(t.protocol()).to_vec() })
                .collect()
        })
        .unwrap_or_default();
    rustmap_model::ScanInfo {
        schema_version: rustmap_model::EVENT_SCHEMA_VERSION,
        scan_id: scan_id.to_string(),
        config: config.map(|c| Box::new(c.clone())),
        version: VERSION.to_string(),
        args: config.map(|c| c.args.clone()).unwrap_or_default(),
        start_unix,
        scans,
        verbosity: config.map_or(0, |c| c.output.verbosity),
        debugging: config.map_or(0, |c| c.output.debugging),
        service_scan: plan.as_ref().is_some_and(|p| p.version_detection.is_some()),
    }
}

/// RustMap's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The versions of the data compiled into this build, one `(name, description)` per data set:
/// the probe database and the port table, each with its version, its size and a fingerprint of
/// its text (FNV-1a, so two builds can be told apart even if a version was not bumped).
pub fn data_versions() -> Vec<(&'static str, String)> {
    let fnv = |text: &str| text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let db = ProbeDb::builtin();
    let rules: usize = db.probes().iter().map(|p| p.rules.len()).sum();
    let table = rustmap_targets::PortTable::builtin();
    let (tcp, udp, sctp) = (
        table.len(rustmap_model::Protocol::Tcp),
        table.len(rustmap_model::Protocol::Udp),
        table.len(rustmap_model::Protocol::Sctp),
    );
    vec![
        (
            "probe database",
            format!(
                "{} ({} probes, {rules} rules; fnv {:08x})",
                rustmap_detect::db::BUILTIN_VERSION,
                db.probes().len(),
                fnv(rustmap_detect::db::BUILTIN_TEXT)
            ),
        ),
        (
            "port table",
            format!(
                "{} ({tcp} tcp, {udp} udp, {sctp} sctp ports; fnv {:08x})",
                rustmap_targets::ports::BUILTIN_PORTS_VERSION,
                fnv(rustmap_targets::ports::BUILTIN_PORTS_TSV)
            ),
        ),
    ]
}

/// Is this one of this machine's own addresses (a connect scan can only bind to those)?
pub fn is_local_address(addr: IpAddr) -> bool {
    rustmap_netio::iface::list().iter().any(|i| i.addrs.contains(&addr))
}

/// Does this machine have a network interface of this name (for checking `-e` up front)?
pub fn interface_exists(name: &str) -> bool {
    rustmap_netio::iface::by_name(name).is_some()
}

/// Raise this process's open-file limit to its hard limit, once, at program start: a connect
/// scan holds a descriptor per probe in flight. A process-wide change, so it is the binary's to
/// make (the library only reads the limit). Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    rustmap_engine::limits::raise_nofile_limit()
}

/// What `-sV` runs with.
#[derive(Debug, Clone)]
pub struct VersionDetection {
    /// The probes (the embedded database, plus any `--probe-db` files merged in).
    pub db: ProbeDb,
    /// Intensity and limits.
    pub options: DetectOptions,
}

/// A checked configuration, ready to run: what [`validate()`] returns and
/// [`Scanner::start_plan`] takes. Built only by [`validate()`], so it is always consistent.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    config: ScanConfig,
    targets: TargetList,
    ports: PortList,
    /// Ports scanned before the others (`ports.first`), each in the scan's list.
    first_ports: PortList,
    scan_types: Vec<ScanType>,
    timing: Timing,
    skip_discovery: bool,
    discovery: DiscoveryPlan,
    port_scan: bool,
    list_only: bool,
    randomize_ports: bool,
    reverse_dns: ReverseDns,
    ipv6: bool,
    dns: NameOptions,
    origin: Origin,
    send_ip: bool,
    /// Decoys, fragments and the other evasion options of raw probes.
    evasion: rustmap_engine::Evasion,
    /// Shuffle the targets in groups (`--randomize-hosts`).
    randomize_hosts: bool,
    /// Raw sockets may be used (the capabilities, or `--privileged` / `--unprivileged`).
    raw: bool,
    version_detection: Option<VersionDetection>,
    files: Vec<(OutputFormat, String)>,
    stats_every: Option<Duration>,
    /// `--proxy`, checked.
    proxy: Option<rustmap_proxy::ProxyUrl>,
    /// The proxy, resolved and checked by [`Scanner::start_plan`].
    socks: Option<std::sync::Arc<rustmap_proxy::Socks5>>,
    /// Things the user should know about how the scan will run, delivered as warnings after
    /// `ScanStarted` (what `--proxy` changes).
    notices: Vec<String>,
    /// The only addresses the scan may send to ([`StartOptions::allow`]); set at start.
    allow: Option<request::AllowList>,
    /// `--traceroute`, `--topology`, `--mtu-discovery`.
    path: trace::PathPlan,
    /// `-O`: the database and options, checked.
    os: Option<osdetect::OsPlan>,
    /// `--script`, `-sC`: the selected scripts, loaded.
    scripts: Option<scripts::ScriptPlan>,
    /// `--vuln-check`, `--geoip`: their databases, opened.
    enrich: Option<enrich::EnrichPlan>,
    /// `--cloud`: the providers to ask when the scan starts, and their filters, checked.
    cloud: Option<rustmap_model::CloudConfig>,
    /// The instances `--cloud` found, by address (filled in when the scan starts).
    cloud_instances: std::sync::Arc<cloud::CloudMap>,
}

impl ScanPlan {
    /// The configuration as it was given.
    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// The scan types that will run (nmap's default filled in).
    pub fn scan_types(&self) -> &[ScanType] {
        &self.scan_types
    }

    /// The timing the engine will use.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The targets, as they will be streamed to the engine.
    pub fn targets(&self) -> &TargetList {
        &self.targets
    }
}
