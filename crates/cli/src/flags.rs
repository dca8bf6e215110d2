//! Every command-line flag, defined once with its help text. Parsing here only checks what the
//! user typed; [`crate::config`] turns the result into a scan request.
//!
//! Flags of the user guide that this build cannot honour yet are defined too (so `--help` shows
//! the whole product) but are rejected with "not yet supported: FLAG" and exit code 2 — never
//! silently ignored.

use clap::{Arg, ArgAction, ArgMatches, Command, Parser};
use std::path::PathBuf;

/// RustMap: a fast, nmap-compatible network scanner.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "rustmap",
    version,
    about = "RustMap: a fast, nmap-compatible network scanner",
    after_help = "Spellings: nmap's (-sT, -Pn, -oX FILE, -p-, -T4) and the user guide's (-s T, --sT, --Pn, --oX FILE) are both accepted.\nTime values are milliseconds unless a unit is given (ms, s, m, h): --host-timeout 30000 or --host-timeout 30s; --stats-every alone takes bare numbers as seconds, as nmap does.\nA live status line is kept on stderr when it is a terminal and stdout is not a pipe (--no-progress turns it off).",
    disable_version_flag = true
)]
pub struct Flags {
    /// Targets: addresses, CIDR blocks (10.0.0.0/24, fd00::/120), octet ranges (10.0.0.1-50, 10.0-2.1,3.5-9), host names.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Scan type letters, combinable: T connect, S SYN, U UDP, F FIN, N NULL, X Xmas, A ACK, W Window, M Maimon, Z/Y SCTP INIT; V service/version detection (-sV, -s SV); C scripts (-sC: --script default); n (no port scan), L (list).
    #[arg(short = 's', value_name = "TYPES", action = ArgAction::Append, help_heading = "Scan types")]
    pub scan: Vec<String>,
    /// Send and listen on this interface only (nmap's -e).
    #[arg(short = 'e', long = "interface", value_name = "IFACE", help_heading = "Scan types")]
    pub interface: Option<String>,
    /// Send probes from this source address (nmap's -S); answers to it must reach this machine.
    #[arg(short = 'S', long = "source-address", value_name = "ADDR", help_heading = "Scan types")]
    pub source_address: Option<String>,
    /// Raw scans: send every probe through the kernel's IP layer (a raw IP socket), never as an
    /// Ethernet frame (nmap's --send-ip). By default probes are frames where the next hop's
    /// hardware address is known.
    #[arg(long = "send-ip", help_heading = "Scan types")]
    pub send_ip: bool,
    /// SCTP COOKIE-ECHO scan (nmap's -sZ; the letter Z is the guide's SCTP INIT scan).
    #[arg(long = "sctp-cookie-echo", help_heading = "Scan types")]
    pub sctp_cookie_echo: bool,

    /// Ports: 22,80,100-200, -p- (all), T:/U:/S: prefixes, service names (http, ssh*).
    #[arg(short = 'p', value_name = "PORTS", allow_hyphen_values = true, help_heading = "Ports")]
    pub ports: Option<String>,
    /// Fast mode: the 100 most common ports.
    #[arg(short = 'F', help_heading = "Ports")]
    pub fast: bool,
    /// Scan the N most common ports.
    #[arg(long = "top-ports", value_name = "N", help_heading = "Ports")]
    pub top_ports: Option<usize>,
    /// Ports to leave out (same syntax as -p).
    #[arg(long = "exclude-ports", value_name = "PORTS", help_heading = "Ports")]
    pub exclude_ports: Option<String>,
    /// Scan ports in ascending order (default: random order).
    #[arg(short = 'r', help_heading = "Ports")]
    pub sequential: bool,
    /// Scan ports in random order (the default).
    #[arg(long = "randomize-ports", help_heading = "Ports", conflicts_with = "sequential")]
    pub randomize_ports: bool,

    /// Read targets from FILE (- for standard input).
    #[arg(long = "iL", value_name = "FILE", action = ArgAction::Append, help_heading = "Targets")]
    pub input_list: Vec<PathBuf>,
    /// Exclude these targets (comma-separated).
    #[arg(long = "exclude", value_name = "HOSTS", action = ArgAction::Append, help_heading = "Targets")]
    pub exclude: Vec<String>,
    /// Exclude the targets listed in FILE.
    #[arg(long = "excludefile", value_name = "FILE", action = ArgAction::Append, help_heading = "Targets")]
    pub exclude_file: Vec<PathBuf>,
    /// Never do reverse DNS resolution.
    #[arg(short = 'n', help_heading = "Targets", conflicts_with = "always_dns")]
    pub no_dns: bool,
    /// Always do reverse DNS resolution, even for hosts that are down.
    #[arg(short = 'R', help_heading = "Targets")]
    pub always_dns: bool,
    /// Prefer IPv6 addresses when resolving names.
    #[arg(short = '6', help_heading = "Targets")]
    pub ipv6: bool,

    /// Ask these DNS servers (comma-separated IPv4/IPv6 addresses, each optionally with :PORT, an IPv6 address then in brackets) instead of those of /etc/resolv.conf, for target names and reverse lookups.
    #[arg(long = "dns-servers", value_name = "ADDRS", help_heading = "Name resolution")]
    pub dns_servers: Option<String>,
    /// Bound of one name lookup, forward or reverse (default 5000 ms).
    #[arg(long = "resolve-timeout", value_name = "TIME", help_heading = "Name resolution")]
    pub resolve_timeout: Option<String>,
    /// Scan every address a target name resolves to (of the chosen family: IPv4, or IPv6 with -6), each as a host of its own, not just the first.
    #[arg(long = "resolve-all", help_heading = "Name resolution")]
    pub resolve_all: bool,
    /// Use the operating system's resolver (getaddrinfo/getnameinfo) instead of RustMap's own DNS resolver.
    #[arg(long = "system-dns", help_heading = "Name resolution")]
    pub system_dns: bool,

    /// SOCKS5 proxy for connect scans and -sV (the help text says how).
    #[arg(
        long = "proxy",
        value_name = "URL",
        help_heading = "Networking",
        help = "Send the connect scan (-sT, the default with a proxy) and -sV through this SOCKS5 proxy: socks5://[USER:PASS@]HOST:PORT, or socks5h://... to have the proxy resolve target names. Raw scan types and discovery probes are refused with it (they would bypass the proxy); every target is treated as up (-Pn)."
    )]
    pub proxy: Option<String>,

    /// Host discovery: -Pn (treat all hosts as up); -PE echo, -PP timestamp, -PM address mask, -PR ARP; -PS SYN (443), -PA ACK (80), -PU UDP (40125), -PY SCTP (80), -PH HTTP (80), -PHT HTTPS (443), each with an optional port list (-PS22,80). -sn: discovery only; -sL: list targets.
    #[arg(short = 'P', value_name = "PROBE", action = ArgAction::Append, help_heading = "Host discovery")]
    pub ping: Vec<String>,

    /// Do not use ARP or IPv6 neighbour discovery for hosts on directly connected links.
    #[arg(long = "disable-arp-ping", help_heading = "Host discovery")]
    pub disable_arp_ping: bool,

    /// Timing template 0-5 (paranoid, sneaky, polite, normal, aggressive, insane).
    #[arg(short = 'T', value_name = "0-5", help_heading = "Timing")]
    pub timing: Option<String>,
    /// Fixed per-probe (connection) timeout, replacing the adaptive one.
    #[arg(long = "timeout", value_name = "TIME", help_heading = "Timing")]
    pub timeout: Option<String>,
    /// Retransmissions per probe, at most.
    #[arg(long = "max-retries", value_name = "N", help_heading = "Timing")]
    pub max_retries: Option<u32>,
    /// Probes in flight, at most.
    #[arg(long = "max-parallelism", value_name = "N", help_heading = "Timing")]
    pub max_parallelism: Option<usize>,
    /// Probes in flight, at least.
    #[arg(long = "min-parallelism", value_name = "N", help_heading = "Timing")]
    pub min_parallelism: Option<usize>,
    /// Give up on a host after this long (0 = never); results so far are kept.
    #[arg(long = "host-timeout", value_name = "TIME", help_heading = "Timing")]
    pub host_timeout: Option<String>,
    /// Initial probe timeout.
    #[arg(long = "initial-rtt-timeout", value_name = "TIME", help_heading = "Timing")]
    pub initial_rtt_timeout: Option<String>,
    /// Lower bound of the adaptive probe timeout.
    #[arg(long = "min-rtt-timeout", value_name = "TIME", help_heading = "Timing")]
    pub min_rtt_timeout: Option<String>,
    /// Upper bound of the adaptive probe timeout.
    #[arg(long = "max-rtt-timeout", value_name = "TIME", help_heading = "Timing")]
    pub max_rtt_timeout: Option<String>,
    /// Send at least this many probes per second.
    #[arg(long = "min-rate", value_name = "PPS", help_heading = "Timing")]
    pub min_rate: Option<f64>,
    /// Send at most this many probes per second.
    #[arg(long = "max-rate", value_name = "PPS", help_heading = "Timing")]
    pub max_rate: Option<f64>,
    /// Wait at least this long between probes.
    #[arg(long = "scan-delay", value_name = "TIME", help_heading = "Timing")]
    pub scan_delay: Option<String>,
    /// With --scan-delay: wait a random time between the two.
    #[arg(long = "max-scan-delay", value_name = "TIME", help_heading = "Timing")]
    pub max_scan_delay: Option<String>,
    /// Scan at least this many hosts at once.
    #[arg(long = "min-hostgroup", value_name = "N", help_heading = "Timing")]
    pub min_hostgroup: Option<usize>,
    /// Scan at most this many hosts at once.
    #[arg(long = "max-hostgroup", value_name = "N", help_heading = "Timing")]
    pub max_hostgroup: Option<usize>,
    /// Fixed timeouts and window: no adaptation to measured round trips.
    #[arg(long = "no-adaptive", help_heading = "Timing")]
    pub no_adaptive: bool,

    /// Probe intensity for -sV, 0 (only the banner and probes made for the port) to 9 (every probe); default 7.
    #[arg(long = "version-intensity", value_name = "0-9", help_heading = "Service detection (-sV)")]
    pub version_intensity: Option<String>,
    /// -sV with intensity 2: quicker, finds the common services.
    #[arg(long = "version-light", help_heading = "Service detection (-sV)", conflicts_with = "version_all")]
    pub version_light: bool,
    /// -sV with intensity 9: every probe.
    #[arg(long = "version-all", help_heading = "Service detection (-sV)")]
    pub version_all: bool,
    /// Load more probes and match rules from FILE (RustMap's format, docs/service-probes.md); repeatable.
    #[arg(long = "probe-db", value_name = "FILE", action = ArgAction::Append, help_heading = "Service detection (-sV)")]
    pub probe_db: Vec<PathBuf>,
    /// Do not probe UDP ports for QUIC (version negotiation and an HTTP/3 handshake) during -sV.
    #[arg(long = "no-quic", help_heading = "Service detection (-sV)")]
    pub no_quic: bool,
    /// Also compute the JA4S fingerprint of TLS ports. Off by default: JA4S is under FoxIO's JA4+
    /// licence (not an open-source licence), so it is opt-in; JA3S is always computed.
    #[arg(long = "ja4s", help_heading = "Service detection (-sV)")]
    pub ja4s: bool,

    /// Detect the OS of every host that is up (needs root or CAP_NET_RAW): timed SYNs, an ECN SYN, odd TCP segments to an open and a closed port, UDP to a closed port and ICMP, matched against RustMap's fingerprint database (docs/os-detection.md).
    #[arg(short = 'O', long = "os-detection", help_heading = "OS detection")]
    pub os_detection: bool,
    /// Probe only hosts with an open and a closed TCP port, where results are reliable.
    #[arg(long = "osscan-limit", help_heading = "OS detection")]
    pub osscan_limit: bool,
    /// Show less likely OS guesses too (from 50 % instead of 88 %).
    #[arg(long = "osscan-guess", visible_alias = "fuzzy", help_heading = "OS detection")]
    pub osscan_guess: bool,
    /// Rounds of OS probes per host when answers were lost, 1-20 (default 2).
    #[arg(long = "max-os-tries", value_name = "N", help_heading = "OS detection")]
    pub max_os_tries: Option<u8>,
    /// Guess the OS from the SYN-ACKs the port scan itself received (TTL, DF, window, options), sending no OS probes: needs a SYN scan (-sS, the default as root). Weaker than -O: guesses from 50 %, a family more than a version. Replaces -O's probes when both are given.
    #[arg(long = "passive-os", help_heading = "OS detection")]
    pub passive_os: bool,
    /// Use this OS fingerprint database (RustMap's JSON format) instead of the built-in one.
    #[arg(long = "os-db", value_name = "FILE", help_heading = "OS detection")]
    pub os_db: Option<PathBuf>,
    /// Turn OS fingerprints captured with -O (a -oJ report, or a fingerprint copied from the normal output) into a database entry: prints a database file with that one entry, for --os-db. Several files, or several hosts, merge: tests that differ expect any value seen. Scans nothing.
    #[arg(long = "os-entry", value_name = "FILE", action = clap::ArgAction::Append, help_heading = "OS detection")]
    pub os_entry: Vec<PathBuf>,
    /// With --os-entry: take only this host's fingerprint from the reports (repeatable).
    #[arg(long = "os-entry-host", value_name = "ADDR", action = clap::ArgAction::Append, requires = "os_entry", help_heading = "OS detection")]
    pub os_entry_host: Vec<String>,
    /// With --os-entry: the entry's name ("lwIP 2.1").
    #[arg(long = "os-entry-name", value_name = "NAME", requires = "os_entry", help_heading = "OS detection")]
    pub os_entry_name: Option<String>,
    /// With --os-entry: its class, 'VENDOR|FAMILY|GENERATION|DEVICE TYPE' (GENERATION may be empty).
    #[arg(long = "os-entry-class", value_name = "CLASS", requires = "os_entry", help_heading = "OS detection")]
    pub os_entry_class: Option<String>,
    /// With --os-entry: a CPE name for the class (repeatable).
    #[arg(long = "os-entry-cpe", value_name = "CPE", action = clap::ArgAction::Append, requires = "os_entry", help_heading = "OS detection")]
    pub os_entry_cpe: Vec<String>,
    /// With --os-entry: the entry's id (default: made from its name).
    #[arg(long = "os-entry-id", value_name = "ID", requires = "os_entry", help_heading = "OS detection")]
    pub os_entry_id: Option<String>,
    /// Aggressive: -sV -O -sC --traceroute, as nmap's -A (needs root or CAP_NET_RAW).
    #[arg(short = 'A', long = "aggressive", help_heading = "OS detection")]
    pub aggressive: bool,

    /// Trace the route to every host that is up, after the port scan (needs root or CAP_NET_RAW): TCP SYN to an open (else closed) port, else UDP to a closed port, else ICMP echo; hops probed in parallel, hops shared with other hosts reused, names by reverse DNS.
    #[arg(long = "traceroute", help_heading = "Traceroute, topology, path MTU")]
    pub traceroute: bool,
    /// Draw the traced routes as a graph (implies --traceroute): dot (Graphviz), graphml (Gephi, yEd, Cytoscape) or json. Written to --topology-output, else to standard output in place of the normal output.
    #[arg(long = "topology", value_name = "FORMAT", value_parser = ["dot", "graphml", "json"], ignore_case = true, help_heading = "Traceroute, topology, path MTU")]
    pub topology: Option<String>,
    /// Write the topology graph to FILE, replaced whole at the end of the scan (- for standard output). Without --topology the format comes from the extension: .dot/.gv, .graphml, .json.
    #[arg(long = "topology-output", value_name = "FILE", help_heading = "Traceroute, topology, path MTU")]
    pub topology_output: Option<String>,
    /// Find the path MTU of every IPv4 host that is up, with don't-fragment probes and ICMP "fragmentation needed" (needs root or CAP_NET_RAW).
    #[arg(long = "mtu-discovery", help_heading = "Traceroute, topology, path MTU")]
    pub mtu_discovery: bool,

    /// Run scripts on the hosts and ports found: names, categories (default, safe, discovery, vuln, auth, intrusive), globs (http-*), script files or directories, combined with and / or / not and parentheses ("default or safe", "http-* and not http-slowloris"); a comma-separated list. -sC is --script default.
    #[arg(long = "script", value_name = "SCRIPTS", action = ArgAction::Append, help_heading = "Scripts")]
    pub script: Vec<String>,
    /// Arguments for the scripts: k=v,k2={a,b},script.k=v (a script reads "name.k" or "k").
    #[arg(long = "script-args", value_name = "ARGS", action = ArgAction::Append, help_heading = "Scripts")]
    pub script_args: Vec<String>,
    /// Read script arguments from FILE (k=v entries, one or more per line; # starts a comment line); --script-args come after them.
    #[arg(long = "script-args-file", value_name = "FILE", help_heading = "Scripts")]
    pub script_args_file: Option<PathBuf>,
    /// Show what the selected scripts do (name, categories, where each comes from, description; arguments are in its description) and exit.
    #[arg(long = "script-help", value_name = "SCRIPTS", help_heading = "Scripts")]
    pub script_help: Option<String>,
    /// Stop a script run that takes longer than TIME (500ms, 30s, 5m; a bare number is milliseconds). Default 30s.
    #[arg(long = "script-timeout", value_name = "TIME", help_heading = "Scripts")]
    pub script_timeout: Option<String>,
    /// Show the scripts' socket traffic (connects, sends, receives) and their debug lines, on standard error.
    #[arg(long = "script-trace", help_heading = "Scripts")]
    pub script_trace: bool,

    /// Look up the known vulnerabilities (CVEs) of every service version -sV finds, in the local CVE database (bundled seed rules, plus what --vuln-update fetched). Turns on -sV: versions are what it matches.
    #[arg(long = "vuln-check", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_check: bool,
    /// Keep only CVEs whose CVSS base score is at least N (0 to 10, e.g. 7.0). Turns on --vuln-check.
    #[arg(long = "vuln-min-cvss", value_name = "N", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_min_cvss: Option<String>,
    /// Update the local CVE database from the NVD CVE API 2.0 (incremental after the first run; NVD_API_KEY raises the rate limit) and the CISA KEV catalog; then exit, or scan the targets given.
    #[arg(long = "vuln-update", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_update: bool,
    /// The CVE database file (default: $RUSTMAP_VULN_DB, else ~/.rustmap/vuln.db).
    #[arg(long = "vuln-db", value_name = "FILE", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_db: Option<PathBuf>,
    /// Base URL of the NVD CVE API 2.0 for --vuln-update (a mirror; default: $RUSTMAP_NVD_URL, else the NVD's).
    #[arg(long = "vuln-nvd-url", value_name = "URL", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_nvd_url: Option<String>,
    /// URL of the CISA KEV JSON feed for --vuln-update (default: $RUSTMAP_KEV_URL, else CISA's).
    #[arg(long = "vuln-kev-url", value_name = "URL", help_heading = "Vulnerabilities and GeoIP")]
    pub vuln_kev_url: Option<String>,
    /// Add country, city, latitude/longitude, time zone and AS number/organization to every host, from MaxMind GeoLite2 City and ASN databases.
    #[arg(long = "geoip", help_heading = "Vulnerabilities and GeoIP")]
    pub geoip: bool,
    /// The directory of the GeoLite2-City.mmdb and GeoLite2-ASN.mmdb files (default: $RUSTMAP_GEOIP_DIR, ~/.rustmap/geoip/, the current directory). Implies --geoip.
    #[arg(long = "geoip-db", value_name = "DIR", help_heading = "Vulnerabilities and GeoIP")]
    pub geoip_db: Option<PathBuf>,

    /// Scan the instances of a cloud account: aws, azure or gcp (comma-separated or repeated). Their addresses become targets, and each host's result names its instance (id, name, region, state, type, tags). AWS needs a build with the cloud feature (docs/cloud.md).
    #[arg(long = "cloud", value_name = "PROVIDER", action = ArgAction::Append, value_delimiter = ',', help_heading = "Cloud")]
    pub cloud: Vec<String>,
    /// Only instances that are running.
    #[arg(long = "cloud-running-only", help_heading = "Cloud")]
    pub cloud_running_only: bool,
    /// Only these regions (AWS, GCP) or locations (Azure), comma-separated (default: every region enabled for the account).
    #[arg(long = "cloud-regions", value_name = "R1,R2", action = ArgAction::Append, value_delimiter = ',', help_heading = "Cloud")]
    pub cloud_regions: Vec<String>,
    /// Only instances with this tag (GCP: label); repeat for more, all must match.
    #[arg(long = "cloud-tag", value_name = "KEY=VALUE", action = ArgAction::Append, help_heading = "Cloud")]
    pub cloud_tag: Vec<String>,
    /// Scan only the instances' public addresses.
    #[arg(long = "cloud-public-only", conflicts_with = "cloud_private_only", help_heading = "Cloud")]
    pub cloud_public_only: bool,
    /// Scan only the instances' private addresses.
    #[arg(long = "cloud-private-only", help_heading = "Cloud")]
    pub cloud_private_only: bool,

    /// Decoys: send every raw probe also from these addresses, in this order (ME: our own place; RND or RND:N: random addresses). Example: -D 10.0.0.1,ME,10.0.0.3.
    #[arg(short = 'D', long = "decoys", value_name = "DECOY,ME,...", help_heading = "Evasion")]
    pub decoys: Option<String>,
    /// Fragment raw probes into 8-byte IP fragments (-ff: 16 bytes).
    #[arg(short = 'f', long = "fragment", action = ArgAction::Count, help_heading = "Evasion")]
    pub fragment: u8,
    /// Fragment raw probes into pieces of N bytes of IP payload (a multiple of 8).
    #[arg(long = "mtu", value_name = "N", help_heading = "Evasion")]
    pub mtu: Option<u16>,
    /// Send raw probes from this source port (e.g. 53).
    #[arg(short = 'g', long = "source-port", value_name = "PORT", help_heading = "Evasion")]
    pub source_port: Option<u16>,
    /// Scan the targets in random order (shuffled in groups of up to 16384).
    #[arg(long = "randomize-hosts", help_heading = "Evasion")]
    pub randomize_hosts: bool,
    /// Payload of raw probes as hex (deadbeef, 0xdeadbeef or \xde\xad): UDP (instead of protocol payloads), TCP and ICMP echo.
    #[arg(long = "data-hex", value_name = "HEX", help_heading = "Evasion")]
    pub data_hex: Option<String>,
    /// Payload of raw probes as text.
    #[arg(long = "data-string", value_name = "TEXT", help_heading = "Evasion")]
    pub data_string: Option<String>,
    /// Payload of raw probes: N random bytes (up to 1400).
    #[arg(long = "data-length", value_name = "N", help_heading = "Evasion")]
    pub data_length: Option<usize>,
    /// IP TTL (IPv6 hop limit) of raw probes, 0-255.
    #[arg(long = "ttl", value_name = "N", help_heading = "Evasion")]
    pub ttl: Option<u16>,
    /// Source MAC of probes sent as Ethernet frames: a MAC, a hex prefix of one, or 0 for random.
    #[arg(long = "spoof-mac", value_name = "MAC", help_heading = "Evasion")]
    pub spoof_mac: Option<String>,
    /// Send raw probes with a wrong TCP/UDP/SCTP/ICMP checksum (only a middlebox that does not check answers).
    #[arg(long = "badsum", help_heading = "Evasion")]
    pub badsum: bool,
    /// IPv4 options of raw probes: R (record route), T / U (timestamps), L or S followed by hops (source route), or \x.. hex bytes.
    #[arg(long = "ip-options", value_name = "OPTS", help_heading = "Evasion")]
    pub ip_options: Option<String>,

    /// Check whether this machine can scan (privileges, capture, raw sockets, interfaces, DNS, loopback, the history database, GeoIP) and exit: 1 if a check fails. With --oJ -: JSON.
    #[arg(long = "self-test", help_heading = "Diagnostics")]
    pub self_test: bool,

    /// Normal output to FILE (- for stdout).
    #[arg(long = "oN", value_name = "FILE", help_heading = "Output")]
    pub out_normal: Option<String>,
    /// XML output (nmap's format) to FILE.
    #[arg(long = "oX", value_name = "FILE", help_heading = "Output")]
    pub out_xml: Option<String>,
    /// JSON output to FILE.
    #[arg(long = "oJ", value_name = "FILE", help_heading = "Output")]
    pub out_json: Option<String>,
    /// Grepable output to FILE.
    #[arg(long = "oG", value_name = "FILE", help_heading = "Output")]
    pub out_grepable: Option<String>,
    /// YAML output (the JSON document's content) to FILE.
    #[arg(long = "oY", value_name = "FILE", help_heading = "Output")]
    pub out_yaml: Option<String>,
    /// CSV output to FILE: one row per host and port, safe to open in a spreadsheet.
    #[arg(long = "oC", value_name = "FILE", help_heading = "Output")]
    pub out_csv: Option<String>,
    /// ArcSight Common Event Format (CEF) lines to FILE: a host-up event per host, a port-open event per open port.
    #[arg(long = "oCEF", value_name = "FILE", help_heading = "Output")]
    pub out_cef: Option<String>,
    /// IBM QRadar LEEF 2.0 lines to FILE (the same events as --oCEF).
    #[arg(long = "oLEEF", value_name = "FILE", help_heading = "Output")]
    pub out_leef: Option<String>,
    /// A self-contained HTML report to FILE: summary, charts, a filterable and sortable host table, per-host detail.
    #[arg(long = "oH", value_name = "FILE", help_heading = "Output")]
    pub out_html: Option<String>,
    /// The live event stream as JSON lines to FILE (one event per line as the scan runs; - for stdout), for piping.
    #[arg(long = "oJ-lines", value_name = "FILE", help_heading = "Output")]
    pub out_json_lines: Option<String>,
    /// Normal, XML, JSON, grepable, YAML and CSV output to BASE.nmap, .xml, .json, .gnmap, .yaml, .csv.
    #[arg(long = "oA", value_name = "BASE", help_heading = "Output")]
    pub out_all: Option<String>,
    /// Append to the output files instead of replacing them.
    #[arg(long = "append-output", help_heading = "Output")]
    pub append_output: bool,
    /// Show only open (or possibly open) ports.
    #[arg(long = "open", help_heading = "Output")]
    pub open: bool,
    /// Show the reason for each port's state.
    #[arg(long = "reason", help_heading = "Output")]
    pub reason: bool,
    /// More output (-vv for even more).
    #[arg(short = 'v', action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,
    /// Debugging output (-dd for more).
    #[arg(short = 'd', action = ArgAction::Count, help_heading = "Output")]
    pub debug: u8,
    /// Print nmap's status lines ("Stats: ... elapsed; ...", "... About 45.20% done; ETC: ...") every TIME, on stderr. A bare number is seconds here, as in nmap.
    #[arg(long = "stats-every", value_name = "TIME", help_heading = "Output")]
    pub stats_every: Option<String>,
    /// No live status line on stderr (it is drawn only when stderr is a terminal and stdout is not a pipe).
    #[arg(long = "no-progress", help_heading = "Output")]
    pub no_progress: bool,
    /// Interactive TUI instead of the normal output: host list, port detail and event log of the
    /// running scan (j/k or arrows move, h help, q quits and cancels a running scan). Needs a
    /// terminal on stdout; output files (-oX FILE...) and the history are written as usual.
    #[arg(long = "tui", help_heading = "Output")]
    pub tui: bool,
    /// Scan history database (default ~/.rustmap/rustmap.db); every scan is stored in it as it runs.
    #[arg(long = "db", value_name = "PATH", help_heading = "History")]
    pub db: Option<std::path::PathBuf>,
    /// Do not store this scan in the history database.
    #[arg(long = "no-db", help_heading = "History", conflicts_with = "db")]
    pub no_db: bool,
    /// List the stored scans, newest first (with --oJ -: as JSON), and exit.
    #[arg(long = "history", help_heading = "History")]
    pub history: bool,
    /// After the scan, compare it with the last completed scan of the same targets (exit code 1 when they differ).
    #[arg(long = "diff", help_heading = "History")]
    pub diff: bool,
    /// Compare two stored scans, by id or unique id prefix (A,B; exit code 0 when equal, 1 when different), and exit.
    #[arg(long = "diff-scans", value_name = "A,B", help_heading = "History")]
    pub diff_scans: Option<String>,
    /// Use the scan history: scan first the ports past scans found open on these hosts (then on their /24 or /64), and start each host's timeouts from its past round trips (learned timing). Prints how soon the first open port came.
    #[arg(long = "predict-ports", help_heading = "History", conflicts_with = "no_db")]
    pub predict_ports: bool,
    /// Use the scan history: hosts found up by a scan within --fast-discovery-max-age are port-scanned at once, without discovery probes; one that then answers no probe at all goes through discovery after all.
    #[arg(long = "fast-discovery", help_heading = "History", conflicts_with = "no_db")]
    pub fast_discovery: bool,
    /// How recent a scan must be for --fast-discovery to trust it (default 24h; ms, s, m, h).
    #[arg(long = "fast-discovery-max-age", value_name = "TIME", help_heading = "History", requires = "fast_discovery")]
    pub fast_discovery_max_age: Option<String>,
    /// Resume a stored scan that was interrupted or killed (by id or unique id prefix), with its own configuration: the hosts it finished are not scanned again, and its outputs end as an uninterrupted scan's would. Only --db, --db-sync and --no-progress may be given with it.
    #[arg(long = "resume", value_name = "ID", help_heading = "History")]
    pub resume: Option<String>,
    /// How hard the history database guards against power cuts: off, normal (the default: a killed scan never loses what was written; a power cut may lose the last few seconds) or full (fsync at every commit: a power cut loses nothing written).
    #[arg(long = "db-sync", value_name = "MODE", help_heading = "History", value_parser = ["off", "normal", "full"], ignore_case = true)]
    pub db_sync: Option<String>,

    /// Start from a scan profile: a built-in one (see --list-profiles) or one saved with
    /// --save-profile. Flags given with it override its settings.
    #[arg(long = "profile", value_name = "NAME", help_heading = "Profiles")]
    pub profile: Option<String>,
    /// List the scan profiles, built-in and saved, with what each sets, and exit.
    #[arg(long = "list-profiles", help_heading = "Profiles")]
    pub list_profiles: bool,
    /// Save this command line's settings (not its targets or output files) as a profile
    /// (~/.rustmap/profiles/NAME.toml); with targets, the scan then runs.
    #[arg(long = "save-profile", value_name = "NAME", help_heading = "Profiles")]
    pub save_profile: Option<String>,

    /// Run the REST + WebSocket API server (docs/api.md) until Ctrl-C; scans are started with POST /api/scans.
    #[arg(long = "api", help_heading = "API server")]
    pub api: bool,
    /// Address and port the API listens on (default 127.0.0.1:8080). Without --api-key only loopback is allowed.
    #[arg(long = "listen", value_name = "ADDR:PORT", help_heading = "API server", requires = "api")]
    pub listen: Option<String>,
    /// The Bearer token API clients must send (Authorization: Bearer TOKEN; ?token= for WebSocket clients).
    #[arg(long = "api-key", value_name = "TOKEN", help_heading = "API server", requires = "api")]
    pub api_key: Option<String>,
    /// Addresses API scans may send to, and nothing else: addresses, CIDR blocks or ranges, comma-separated.
    #[arg(long = "api-allow", value_name = "CIDR,...", help_heading = "API server", requires = "api")]
    pub api_allow: Option<String>,

    /// Run as a distributed-scan agent (docs/distributed.md): take shards from the NATS JetStream work queue of --nats, scan them, publish the results, until SIGTERM (finish the shards in hand) or a second SIGTERM (give them back).
    #[arg(long = "agent", help_heading = "Distributed scanning", conflicts_with = "distribute", requires = "nats")]
    pub agent: bool,
    /// Run this scan on the agents of --nats instead of this machine: its targets × ports are cut into shards, and the agents' results feed this scan's outputs and history. `--distribute --resume ID` takes up a distributed scan whose scheduler stopped.
    #[arg(long = "distribute", help_heading = "Distributed scanning", requires = "nats")]
    pub distribute: bool,
    /// List the agents alive on --nats (name, tags, what each scans) and exit.
    #[arg(long = "agents", help_heading = "Distributed scanning", requires = "nats")]
    pub agents: bool,
    /// The NATS server with JetStream: nats://HOST:PORT (tls:// for TLS), several comma-separated.
    #[arg(long = "nats", value_name = "URL", help_heading = "Distributed scanning")]
    pub nats: Option<String>,
    /// This agent's name in the registry and the results (default: host name and process id).
    #[arg(long = "agent-name", value_name = "NAME", help_heading = "Distributed scanning", requires = "agent")]
    pub agent_name: Option<String>,
    /// Labels this agent registers with (comma-separated), shown by --agents.
    #[arg(long = "agent-tags", value_name = "TAG,...", action = ArgAction::Append, value_delimiter = ',', help_heading = "Distributed scanning", requires = "agent")]
    pub agent_tags: Vec<String>,
    /// Shards this agent scans at once (default 1).
    #[arg(long = "agent-concurrency", value_name = "N", help_heading = "Distributed scanning", requires = "agent")]
    pub agent_concurrency: Option<usize>,
    /// The most hosts in one shard (default: about 65536 probes a shard, at most 256 hosts).
    #[arg(long = "shard-hosts", value_name = "N", help_heading = "Distributed scanning", requires = "distribute")]
    pub shard_hosts: Option<usize>,
    /// How long a shard may go without a sign of life from its agent before it is given to another (default 30s; set when the work queue is first created).
    #[arg(long = "shard-ack-wait", value_name = "TIME", help_heading = "Distributed scanning")]
    pub shard_ack_wait: Option<String>,
    /// Deliveries of a shard before it is reported as failed (default 5; set when the work queue is first created).
    #[arg(long = "shard-max-deliver", value_name = "N", help_heading = "Distributed scanning")]
    pub shard_max_deliver: Option<i64>,
    /// NATS token authentication (or RUSTMAP_NATS_TOKEN).
    #[arg(long = "nats-token", value_name = "TOKEN", help_heading = "Distributed scanning")]
    pub nats_token: Option<String>,
    /// NATS user (with --nats-password, or RUSTMAP_NATS_PASSWORD).
    #[arg(long = "nats-user", value_name = "USER", help_heading = "Distributed scanning")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long = "nats-password", value_name = "PASSWORD", help_heading = "Distributed scanning")]
    pub nats_password: Option<String>,
    /// NATS nkey authentication: a file holding the user's nkey seed.
    #[arg(long = "nats-nkey", value_name = "FILE", help_heading = "Distributed scanning")]
    pub nats_nkey: Option<PathBuf>,
    /// NATS decentralized authentication: a .creds file (user JWT and nkey seed).
    #[arg(long = "nats-creds", value_name = "FILE", help_heading = "Distributed scanning")]
    pub nats_creds: Option<PathBuf>,
    /// Require TLS to the NATS server.
    #[arg(long = "nats-tls", help_heading = "Distributed scanning")]
    pub nats_tls: bool,
    /// CA certificates (PEM) to trust for the NATS server.
    #[arg(long = "nats-tls-ca", value_name = "FILE", help_heading = "Distributed scanning")]
    pub nats_tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for the NATS server, with --nats-tls-key.
    #[arg(
        long = "nats-tls-cert",
        value_name = "FILE",
        help_heading = "Distributed scanning",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long = "nats-tls-key",
        value_name = "FILE",
        help_heading = "Distributed scanning",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,

    /// Scan again and again (every --interval seconds) until stopped, reporting what changed
    /// between one scan and the next. Each scan is stored in the history.
    #[arg(long = "watch", help_heading = "Watch mode")]
    pub watch: bool,
    /// Seconds between the end of one watch scan and the start of the next (default 300).
    #[arg(long = "interval", value_name = "SECONDS", help_heading = "Watch mode")]
    pub interval: Option<String>,
    /// POST each change report (JSON, with a "text" field Slack shows) to this http(s) URL.
    #[arg(long = "webhook", value_name = "URL", help_heading = "Watch mode")]
    pub webhook: Option<String>,
    /// Run this shell command on each change, with RUSTMAP_CHANGES_JSON, RUSTMAP_SCAN_ID and
    /// RUSTMAP_ITERATION in its environment.
    #[arg(long = "on-change", value_name = "COMMAND", help_heading = "Watch mode")]
    pub on_change: Option<String>,

    /// Assume raw sockets may be used (nmap's --privileged), whatever the capabilities say.
    #[arg(long = "privileged", help_heading = "Privileges", conflicts_with = "unprivileged")]
    pub privileged: bool,
    /// Act as if raw sockets may not be used (nmap's --unprivileged): connect scan, unprivileged
    /// host discovery, even as root.
    #[arg(long = "unprivileged", help_heading = "Privileges")]
    pub unprivileged: bool,

    /// Print the version, the enabled features and the versions of the built-in data.
    // Not clap's Version action: main prints `generate::long_version`, which parses the probe
    // database to count its rules — work for -V only, not for every run.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// Write the man page (man) or a shell completion script (bash, zsh, fish) to stdout, and
    /// exit. For packagers: generated from these definitions, so they never drift from --help.
    #[arg(long = "generate", value_name = "WHAT", hide = true, value_parser = ["man", "bash", "zsh", "fish"])]
    pub generate: Option<String>,
}

/// A flag of the user guide that this build does not implement yet.
pub struct Unsupported {
    /// Long name, without dashes.
    pub name: &'static str,
    /// Does it take a value?
    pub takes_value: bool,
    /// One-word short form, if any.
    pub short: Option<char>,
}

const fn u(name: &'static str, takes_value: bool) -> Unsupported {
    Unsupported { name, takes_value, short: None }
}

/// Guide flags not built yet. Each is accepted by the parser only to be refused with a clear message.
pub const UNSUPPORTED: &[Unsupported] = &[u("oS", true), u("oM", true), u("iR", true)];

/// The full command: derived flags plus the not-yet-supported ones.
pub fn command() -> Command {
    use clap::CommandFactory;
    let mut cmd = Flags::command();
    for f in UNSUPPORTED {
        let mut arg = Arg::new(f.name)
            .long(f.name)
            .help_heading("Not yet supported (refused with an error)")
            .help(format!("[not yet supported] --{}", f.name));
        if let Some(c) = f.short {
            arg = arg.short(c).help(format!("[not yet supported] -{c}"));
        }
        arg = if f.takes_value {
            arg.value_name("VALUE").action(ArgAction::Append).allow_hyphen_values(true)
        } else {
            arg.action(ArgAction::Count)
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

/// The first not-yet-supported flag present, spelled as the user would type it.
pub fn unsupported_present(m: &ArgMatches) -> Option<String> {
    for f in UNSUPPORTED {
        let present = if f.takes_value {
            m.contains_id(f.name) && m.get_many::<String>(f.name).is_some()
        } else {
            m.get_count(f.name) > 0
        };
        if present {
            return Some(match f.short {
                Some(c) => format!("-{c}"),
                None => format!("--{}", f.name),
            });
        }
    }
    None
}
