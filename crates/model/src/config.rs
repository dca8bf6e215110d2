//! [`ScanConfig`]: what a user asked a scan to do, as plain serde data, before any check.
//!
//! Every front-end builds one: the CLI from its flags, a profile from TOML, the API from a JSON
//! body, Python from keyword arguments, a distributed agent from a shard. The facade
//! (`rustmap::validate`, `rustmap::Scanner::start`) is the one place that checks it, so an invalid
//! value gets the same typed error whichever way it came in. This crate only owns the shape.
//!
//! Values keep the user's spellings where nmap users have one: ports as `-p` expressions
//! (`"22,80,U:53"`), discovery probes as nmap's letters (`"PS22,80"`), times as `"500ms"`, `"30s"`
//! or a bare number of milliseconds. Unknown fields are refused, so a typo in a profile or a
//! request body is an error rather than a silently ignored option. The document is versioned by
//! [`CONFIG_VERSION`].

use crate::ScanType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Version of the [`ScanConfig`] document. Bumped when a field changes meaning or disappears.
pub const CONFIG_VERSION: u32 = 1;

/// A whole scan, as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Document version ([`CONFIG_VERSION`]); a newer one is refused.
    pub version: u32,
    /// What to scan: addresses, CIDR blocks, nmap octet ranges, host names.
    pub targets: Vec<String>,
    /// Files of targets (`-iL`; `-` is standard input).
    pub target_files: Vec<PathBuf>,
    /// Targets to leave out (`--exclude`), each a comma-separated list.
    pub exclude: Vec<String>,
    /// Files of targets to leave out (`--excludefile`).
    pub exclude_files: Vec<PathBuf>,
    /// Port scan types; empty means nmap's default (SYN with raw-socket privilege, else connect).
    pub scan_types: Vec<ScanType>,
    /// Scan ports (the default), discovery only (`-sn`), or list targets only (`-sL`).
    pub mode: ScanMode,
    /// Which ports.
    pub ports: PortsConfig,
    /// Host discovery.
    pub discovery: DiscoveryConfig,
    /// Timing and rates.
    pub timing: TimingConfig,
    /// Service and version detection (`-sV`).
    pub service: ServiceConfig,
    /// OS detection (`-O`).
    pub os: OsConfig,
    /// Name resolution, forward and reverse.
    pub names: NamesConfig,
    /// Interface and source address.
    pub origin: OriginConfig,
    /// Evasion options of raw probes (`-D`, `-f`, `-g`, `--data-*`, ...).
    pub evasion: EvasionConfig,
    /// Outputs wanted.
    pub output: OutputConfig,
    /// Traceroute, topology graphs and path-MTU discovery.
    pub path: PathConfig,
    /// NSE-style scripts (`--script`, `-sC`).
    pub scripts: ScriptsConfig,
    /// Known vulnerabilities of the services found (`--vuln-check`).
    pub vuln: VulnConfig,
    /// Where the hosts are (`--geoip`).
    pub geoip: GeoipConfig,
    /// Cloud instances as targets (`--cloud`).
    pub cloud: crate::CloudConfig,
    /// The command line as typed, for output headers (front-ends without one leave it empty).
    pub args: String,
}

impl Default for ScanConfig {
    fn default() -> ScanConfig {
        ScanConfig {
            version: CONFIG_VERSION,
            targets: Vec::new(),
            target_files: Vec::new(),
            exclude: Vec::new(),
            exclude_files: Vec::new(),
            scan_types: Vec::new(),
            mode: ScanMode::Ports,
            ports: PortsConfig::default(),
            discovery: DiscoveryConfig::default(),
            timing: TimingConfig::default(),
            service: ServiceConfig::default(),
            os: OsConfig::default(),
            names: NamesConfig::default(),
            origin: OriginConfig::default(),
            evasion: EvasionConfig::default(),
            output: OutputConfig::default(),
            path: PathConfig::default(),
            scripts: ScriptsConfig::default(),
            vuln: VulnConfig::default(),
            geoip: GeoipConfig::default(),
            cloud: crate::CloudConfig::default(),
            args: String::new(),
        }
    }
}

impl ScanConfig {
    /// A configuration for these targets with defaults everywhere else.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(targets: I) -> ScanConfig {
        ScanConfig { targets: targets.into_iter().map(Into::into).collect(), ..ScanConfig::default() }
    }

    /// The fields set here that make a scan read or write the machine's files (target and
    /// exclude lists, probe databases, output files, the topology file, script argument files,
    /// script selections naming files), and `cloud`, which uses the machine's cloud credentials,
    /// by their JSON paths. The API refuses a scan that sets any (a remote client may not reach
    /// the server's files or accounts); the fuzz targets clear the inputs
    /// ([`ScanConfig::clear_input_files`]).
    pub fn file_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |set: bool, field: &'static str| {
            if set {
                out.push(field);
            }
        };
        add(!self.target_files.is_empty(), "target_files");
        add(!self.exclude_files.is_empty(), "exclude_files");
        add(!self.service.probe_db.is_empty(), "service.probe_db");
        add(self.os.db.is_some(), "os.db");
        add(!self.output.files.is_empty() || self.output.all_base.is_some(), "output.files");
        add(self.path.topology.is_some() || self.path.topology_output.is_some(), "path.topology");
        add(self.scripts.args_file.is_some(), "scripts.args_file");
        add(self.scripts.select.as_deref().is_some_and(selects_files), "scripts.select");
        add(self.vuln.db.is_some(), "vuln.db");
        add(self.geoip.dir.is_some(), "geoip.dir");
        // Not a file, but the same kind of thing: the machine's own cloud credentials.
        add(self.cloud.enabled(), "cloud");
        out
    }

    /// Clears the fields of [`ScanConfig::file_fields`] that read files (all but the outputs):
    /// what is left validates without opening any file.
    pub fn clear_input_files(&mut self) {
        self.target_files.clear();
        self.exclude_files.clear();
        self.service.probe_db.clear();
        self.os.db = None;
        self.scripts.args_file = None;
        if self.scripts.select.as_deref().is_some_and(selects_files) {
            self.scripts.select = None;
        }
        self.vuln.db = None;
        self.geoip.dir = None;
        self.cloud.providers.clear();
    }
}

/// Whether a `--script` selection names a file or directory as well as names, categories and
/// expressions: an item with a path separator or a dot (`x.nse`, `x.lua`, `x.py`, `x.wasm`), or
/// one that exists as a path.
fn selects_files(select: &str) -> bool {
    select.split(',').map(str::trim).any(|item| item.contains(['/', '\\', '.']) || std::path::Path::new(item).exists())
}

/// What kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanMode {
    /// Discovery, then the port scan.
    #[default]
    Ports,
    /// Discovery only (`-sn`).
    Ping,
    /// List the targets and their names, send nothing (`-sL`).
    List,
}

/// Which ports, as `-p`, `-F`, `--top-ports`, `--exclude-ports`, `-r` say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortsConfig {
    /// A `-p` expression: `22,80,100-200`, `1-65535`, `T:22,U:53`, service names and globs.
    pub spec: Option<String>,
    /// The N most common ports (`--top-ports`).
    pub top: Option<usize>,
    /// The 100 most common ports (`-F`).
    pub fast: bool,
    /// Ports to leave out, same syntax as `spec`.
    pub exclude: Option<String>,
    /// Ascending order instead of random (`-r`).
    pub sequential: bool,
    /// Ports to scan first, before the others (same syntax as `spec`; those not in the scan's
    /// list are ignored). `--predict-ports` fills it with the ports past scans found open on
    /// these hosts and their neighbours.
    pub first: Option<String>,
}

/// Host discovery, as the `-P` options say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// Treat every host as up (`-Pn`).
    pub skip: bool,
    /// Probes in nmap's spelling without the dash: `PE`, `PP`, `PM`, `PR`, `PS22,80`, `PA`,
    /// `PU53`, `PY`, `PH8080`, `PHT443`. Empty: the default probes.
    pub probes: Vec<String>,
    /// No ARP or neighbour discovery on directly connected links (`--disable-arp-ping`).
    pub disable_arp: bool,
}

/// A time as the user wrote it: `"500ms"`, `"30s"`, `"5m"`, `"1h"`, or a number of milliseconds
/// (a bare number in a string is milliseconds too). Checked by the facade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TimeRepr", into = "String")]
pub struct TimeValue(pub String);

#[derive(Deserialize)]
#[serde(untagged)]
enum TimeRepr {
    Millis(f64),
    Text(String),
}

impl From<TimeRepr> for TimeValue {
    fn from(r: TimeRepr) -> TimeValue {
        match r {
            TimeRepr::Millis(n) => TimeValue(n.to_string()),
            TimeRepr::Text(s) => TimeValue(s),
        }
    }
}

impl From<TimeValue> for String {
    fn from(t: TimeValue) -> String {
        t.0
    }
}

impl From<&str> for TimeValue {
    fn from(s: &str) -> TimeValue {
        TimeValue(s.to_string())
    }
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Timing, as `-T` and the timing flags say. Unset fields take the template's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingConfig {
    /// Timing template 0-5 (`-T`); 3 (normal) when unset.
    pub template: Option<u8>,
    /// Fixed probe timeout (`--timeout`).
    pub timeout: Option<TimeValue>,
    /// Retransmissions per probe (`--max-retries`).
    pub max_retries: Option<u32>,
    /// Probes in flight at most (`--max-parallelism`).
    pub max_parallelism: Option<usize>,
    /// Probes in flight at least (`--min-parallelism`).
    pub min_parallelism: Option<usize>,
    /// Give up on a host after this long (`--host-timeout`; 0 = never).
    pub host_timeout: Option<TimeValue>,
    /// Initial probe timeout (`--initial-rtt-timeout`).
    pub initial_rtt_timeout: Option<TimeValue>,
    /// Lower bound of the adaptive timeout (`--min-rtt-timeout`).
    pub min_rtt_timeout: Option<TimeValue>,
    /// Upper bound of the adaptive timeout (`--max-rtt-timeout`).
    pub max_rtt_timeout: Option<TimeValue>,
    /// Probes per second at least (`--min-rate`).
    pub min_rate: Option<f64>,
    /// Probes per second at most (`--max-rate`).
    pub max_rate: Option<f64>,
    /// Least time between probes (`--scan-delay`).
    pub scan_delay: Option<TimeValue>,
    /// Most time between probes (`--max-scan-delay`).
    pub max_scan_delay: Option<TimeValue>,
    /// Hosts scanned at once, at least (`--min-hostgroup`).
    pub min_hostgroup: Option<usize>,
    /// Hosts scanned at once, at most (`--max-hostgroup`).
    pub max_hostgroup: Option<usize>,
    /// Adapt timeouts and window to measured round trips (`--no-adaptive` turns it off).
    pub adaptive: bool,
}

impl Default for TimingConfig {
    fn default() -> TimingConfig {
        TimingConfig {
            template: None,
            timeout: None,
            max_retries: None,
            max_parallelism: None,
            min_parallelism: None,
            host_timeout: None,
            initial_rtt_timeout: None,
            min_rtt_timeout: None,
            max_rtt_timeout: None,
            min_rate: None,
            max_rate: None,
            scan_delay: None,
            max_scan_delay: None,
            min_hostgroup: None,
            max_hostgroup: None,
            adaptive: true,
        }
    }
}

/// Service and version detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Run detection on open ports (`-sV`).
    pub enabled: bool,
    /// Probe intensity 0-9 (`--version-intensity`; 7 when unset).
    pub intensity: Option<u8>,
    /// Intensity 2 (`--version-light`).
    pub light: bool,
    /// Intensity 9 (`--version-all`).
    pub all: bool,
    /// More probe database files (`--probe-db`).
    pub probe_db: Vec<PathBuf>,
    /// QUIC probes on UDP ports (`--no-quic` turns them off).
    pub quic: bool,
    /// JA4S fingerprints of TLS ports (`--ja4s`; FoxIO's licence, so opt-in).
    pub ja4s: bool,
}

impl Default for ServiceConfig {
    fn default() -> ServiceConfig {
        ServiceConfig {
            enabled: false,
            intensity: None,
            light: false,
            all: false,
            probe_db: Vec::new(),
            quic: true,
            ja4s: false,
        }
    }
}

/// OS detection.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OsConfig {
    /// Probe each host that is up and match its answers (`-O`).
    pub enabled: bool,
    /// Only hosts with an open and a closed TCP port (`--osscan-limit`).
    pub limit: bool,
    /// Show guesses even when no entry matches well (`--osscan-guess`, `--fuzzy`).
    pub guess: bool,
    /// Rounds of probes per host when answers were lost (`--max-os-tries`; 2 when unset).
    pub max_tries: Option<u8>,
    /// A fingerprint database of RustMap's format to use instead of the built-in one
    /// (`--os-db`).
    pub db: Option<PathBuf>,
    /// Guess from the SYN-ACKs the raw port scan received, sending no OS probes
    /// (`--passive-os`); with or without `enabled`.
    pub passive: bool,
}

/// When to look up the names of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReverseDns {
    /// Never (`-n`).
    Never,
    /// For hosts that are up (the default).
    #[default]
    UpHosts,
    /// For every host (`-R`).
    Always,
}

/// Name resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamesConfig {
    /// Reverse lookups.
    pub reverse: ReverseDns,
    /// Prefer IPv6 addresses for names (`-6`).
    pub ipv6: bool,
    /// DNS servers to ask (`--dns-servers`), each `ADDR`, `ADDR:PORT` or `[V6]:PORT`.
    pub servers: Vec<String>,
    /// Bound of one lookup (`--resolve-timeout`; 5 s when unset).
    pub timeout: Option<TimeValue>,
    /// Scan every address of a name (`--resolve-all`).
    pub resolve_all: bool,
    /// Use the operating system's resolver (`--system-dns`).
    pub system: bool,
}

/// Where probes leave from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OriginConfig {
    /// Interface (`-e`).
    pub interface: Option<String>,
    /// Source address (`-S`).
    pub source: Option<String>,
    /// Raw probes through the raw IP socket only (`--send-ip`).
    pub send_ip: bool,
    /// Whether raw sockets may be used: `true` assumes they may (nmap's `--privileged`), `false`
    /// acts as if they may not (`--unprivileged`: connect scan, unprivileged discovery). Unset,
    /// the process's own capabilities decide (CAP_NET_RAW, not the user id).
    pub privileged: Option<bool>,
    /// SOCKS5 proxy for the connect scan and service detection (`--proxy`):
    /// `socks5://[USER:PASS@]HOST:PORT`, or `socks5h://...` to have the proxy resolve target
    /// names. Checked by the facade; kept with `***` for the password in a scan's stored and
    /// reported configuration.
    pub proxy: Option<String>,
}

/// Evasion options, as nmap spells them. They apply to raw probes only; with a connect scan
/// they are refused. Checked by the facade.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvasionConfig {
    /// Decoys (`-D`): comma-separated addresses, `ME` for our own place in the order, `RND` or
    /// `RND:N` for random addresses.
    pub decoys: Option<String>,
    /// Fragment probes (`-f`): 1 cuts them into 8-byte pieces, 2 (`-ff`) into 16.
    pub fragment: u8,
    /// Fragment size in bytes (`--mtu`), a multiple of 8; overrides `fragment`.
    pub mtu: Option<u16>,
    /// Source port of probes (`-g`, `--source-port`).
    pub source_port: Option<u16>,
    /// Scan the targets in random order, in groups of up to 16384 (`--randomize-hosts`).
    pub randomize_hosts: bool,
    /// Payload as hex (`--data-hex deadbeef`, `0x…` and `\x…` spellings too).
    pub data_hex: Option<String>,
    /// Payload as text (`--data-string`).
    pub data_string: Option<String>,
    /// Payload of this many random bytes (`--data-length`).
    pub data_length: Option<usize>,
    /// IP TTL / hop limit of probes (`--ttl`, 0–255).
    pub ttl: Option<u16>,
    /// Source MAC of Ethernet frames (`--spoof-mac`): a MAC, a prefix of one, or `0` for random.
    pub spoof_mac: Option<String>,
    /// Wrong transport checksums (`--badsum`).
    pub badsum: bool,
    /// IPv4 options (`--ip-options`): `R`, `T`, `U`, `L addr…`, `S addr…`, or `\x..` hex.
    pub ip_options: Option<String>,
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// nmap's normal layout (`-oN`).
    Normal,
    /// nmap's XML (`-oX`).
    Xml,
    /// RustMap's JSON document (`-oJ`).
    Json,
    /// nmap's grepable lines (`-oG`).
    Grepable,
    /// The JSON document as YAML (`-oY`).
    Yaml,
    /// One row per host and port (`-oC`).
    Csv,
    /// ArcSight Common Event Format lines (`-oCEF`).
    Cef,
    /// QRadar LEEF 2.0 lines (`-oLEEF`).
    Leef,
    /// The event stream, one JSON object per line (`--oJ-lines`).
    JsonLines,
    /// A self-contained HTML report (`-oH`).
    Html,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// Its format.
    pub format: OutputFormat,
    /// Its path; `-` is standard output.
    pub path: String,
}

/// Outputs wanted, and how much they show.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Files to write.
    pub files: Vec<OutputFile>,
    /// `-oA BASE`: `BASE.nmap`, `.xml`, `.json`, `.gnmap`, `.yaml` and `.csv`.
    pub all_base: Option<String>,
    /// Append to output files instead of replacing them (`--append-output`).
    pub append: bool,
    /// Normal output on standard output unless a file is `-` (what a terminal user wants; off
    /// for the API and Python).
    pub interactive: bool,
    /// A live status line on stderr when it is a terminal.
    pub progress: bool,
    /// nmap's `Stats:` lines on stderr every so often (`--stats-every`).
    pub stats_every: Option<TimeValue>,
    /// Only open (or possibly open) ports (`--open`).
    pub open_only: bool,
    /// The reason for each state (`--reason`).
    pub reason: bool,
    /// `-v` count.
    pub verbosity: u8,
    /// `-d` count.
    pub debugging: u8,
    /// After the scan, compare it with the last completed scan of the same targets (`--diff`).
    /// Front-ends that keep a history act on it; the scan itself does not change.
    pub diff: bool,
}

/// A topology graph's format (`--topology`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyFormat {
    /// Graphviz DOT.
    Dot,
    /// GraphML (Gephi, yEd, Cytoscape).
    Graphml,
    /// RustMap's JSON graph (docs/usage.md § Network topology).
    Json,
}

impl TopologyFormat {
    /// The format named `s` (`dot`, `graphml`, `json`; any case).
    pub fn parse(s: &str) -> Option<TopologyFormat> {
        match s.to_ascii_lowercase().as_str() {
            "dot" | "gv" => Some(TopologyFormat::Dot),
            "graphml" => Some(TopologyFormat::Graphml),
            "json" => Some(TopologyFormat::Json),
            _ => None,
        }
    }
}

/// The way to each host: traceroute, the topology graph drawn from it, and the path MTU.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PathConfig {
    /// Trace the route to every host that is up (`--traceroute`).
    pub traceroute: bool,
    /// Draw the traced routes as a graph (`--topology`; implies `traceroute`).
    pub topology: Option<TopologyFormat>,
    /// Where the graph goes (`--topology-output`; `-` or unset: standard output).
    pub topology_output: Option<String>,
    /// Find the path MTU of every IPv4 host that is up (`--mtu-discovery`).
    pub mtu_discovery: bool,
}

/// Scripts to run on the hosts and ports found, as `--script`, `-sC` and the `--script-*` flags
/// say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptsConfig {
    /// Which scripts: a `--script` expression of names, categories, globs, script files and
    /// directories, with `and`, `or`, `not` and parentheses (`"default or safe"`,
    /// `"http-* and not http-slowloris"`). `-sC` is `"default"`. Unset: no scripts.
    pub select: Option<String>,
    /// Arguments for the scripts (`--script-args`): `k=v,k2={a,b},k3={x=1}`.
    pub args: Option<String>,
    /// A file of more arguments (`--script-args-file`), one `k=v` per line or comma-separated.
    pub args_file: Option<PathBuf>,
    /// The longest one script run may take (`--script-timeout`); 30 s when unset.
    pub timeout: Option<TimeValue>,
    /// Record each script's socket traffic and show it (`--script-trace`).
    pub trace: bool,
}

/// Vulnerability checking of the services found, as `--vuln-check`, `--vuln-min-cvss` and
/// `--vuln-db` say. It needs service detection (`-sV`): versions are what it matches.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VulnConfig {
    /// Look up the CVEs of each detected service version (`--vuln-check`).
    pub check: bool,
    /// Keep only CVEs with a CVSS base score at least this (`--vuln-min-cvss`, 0 to 10).
    pub min_cvss: Option<f64>,
    /// The CVE database (`--vuln-db`); unset: `$RUSTMAP_VULN_DB`, else `~/.rustmap/vuln.db`, else
    /// the bundled seed rules alone.
    pub db: Option<PathBuf>,
}

/// GeoIP enrichment, as `--geoip` and `--geoip-db` say.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoipConfig {
    /// Add country, city, location, time zone and AS to every host up (`--geoip`).
    pub enabled: bool,
    /// The directory of the MaxMind DB files (`--geoip-db`); unset: `$RUSTMAP_GEOIP_DIR`,
    /// `~/.rustmap/geoip/`, the current directory.
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fields_name_what_touches_the_machines_files() {
        let mut c = ScanConfig::new(["198.18.0.10"]);
        c.scripts.select = Some("default or (safe and not http-*)".into());
        assert!(c.file_fields().is_empty());
        c.target_files.push("hosts.txt".into());
        c.service.probe_db.push("extra.rmp".into());
        c.os.db = Some("os.json".into());
        c.output.all_base = Some("scan".into());
        c.scripts.args_file = Some("args.txt".into());
        c.scripts.select = Some("default, ./mine/".into());
        assert_eq!(
            c.file_fields(),
            ["target_files", "service.probe_db", "os.db", "output.files", "scripts.args_file", "scripts.select"]
        );
        c.clear_input_files();
        // The outputs stay (they are written, not read); the selection lost its path.
        assert_eq!(c.file_fields(), ["output.files"]);
        assert_eq!(c.scripts.select, None);
        for named in ["http-title.nse", "x.lua", "C:\\x", "a/b"] {
            let c =
                ScanConfig { scripts: ScriptsConfig { select: Some(named.into()), ..Default::default() }, ..c.clone() };
            assert_eq!(c.file_fields().last(), Some(&"scripts.select"), "{named}");
        }
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let mut c = ScanConfig::new(["198.18.0.10"]);
        c.timing.host_timeout = Some("30s".into());
        c.ports.spec = Some("22,80".into());
        let json = serde_json::to_string(&c).unwrap();
        let back: ScanConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // A minimal body: everything else defaults.
        let min: ScanConfig = serde_json::from_str(r#"{"targets": ["10.0.0.1"]}"#).unwrap();
        assert_eq!(min, ScanConfig::new(["10.0.0.1"]));
        assert!(min.timing.adaptive && min.service.quic);
    }

    #[test]
    fn times_accept_numbers_and_text() {
        let t: TimingConfig = serde_json::from_str(r#"{"timeout": 1500, "host_timeout": "2m"}"#).unwrap();
        assert_eq!(t.timeout, Some(TimeValue("1500".into())));
        assert_eq!(t.host_timeout, Some(TimeValue("2m".into())));
    }

    #[test]
    fn toml_round_trip_as_profiles_will_store_it() {
        let mut c = ScanConfig::new(["198.18.0.0/24"]);
        c.scan_types = vec![ScanType::Syn, ScanType::Udp];
        c.ports.top = Some(100);
        c.timing.template = Some(4);
        c.timing.max_rate = Some(5000.0);
        c.timing.host_timeout = Some("30s".into());
        c.service.enabled = true;
        c.discovery.probes = vec!["PS22,80".into()];
        c.output.files = vec![OutputFile { format: OutputFormat::Xml, path: "out.xml".into() }];
        let text = toml::to_string(&c).unwrap();
        let back: ScanConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c, "{text}");
        // A hand-written profile: a few keys, the rest defaults.
        let p: ScanConfig = toml::from_str(
            "scan_types = [\"syn\"]\n[ports]\ntop = 1000\n[timing]\ntemplate = 4\nhost_timeout = 30000\n",
        )
        .unwrap();
        assert_eq!(p.timing.host_timeout, Some(TimeValue("30000".into())));
        assert!(toml::from_str::<ScanConfig>("[timing]\ntempo = 4\n").is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<ScanConfig>(r#"{"targets": [], "prots": "80"}"#).unwrap_err();
        assert!(e.to_string().contains("prots"), "{e}");
        let e = serde_json::from_str::<ScanConfig>(r#"{"timing": {"max_rtae": 5}}"#).unwrap_err();
        assert!(e.to_string().contains("max_rtae"), "{e}");
    }
}
