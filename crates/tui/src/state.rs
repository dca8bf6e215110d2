//! The TUI's model of a scan: [`ScanView`] folds [`ScanEvent`]s into what the panels show (the
//! hosts found up, in the order found, each with its ports, services and OS; the counts of hosts
//! that were down; progress; a bounded event log), and [`App`] adds what the user steers (the
//! selected host, the help panel). Pure: no terminal, no clock — the loop passes the elapsed time
//! in — so every rule here is unit-tested with plain event sequences.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, ScanEvent, ServiceInfo};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Lines kept in the event log by default: enough to scroll back a screenful many times over,
/// little enough that a /16 sweep's log stays a few hundred kilobytes.
pub const DEFAULT_LOG_LINES: usize = 1000;

/// Where the scan is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No event yet.
    Starting,
    /// `ScanStarted` seen.
    Running,
    /// Cancelled (`q`, a signal): the cut-short hosts are being reported.
    Stopping,
    /// `ScanFinished` seen: `completed`, `cancelled` or `failed`, as the event said.
    Finished(String),
}

/// Where a listed host is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPhase {
    /// Found up; its ports are being scanned.
    Scanning,
    /// Its `HostDone` came.
    Done,
    /// Done, but `--host-timeout` cut it short.
    TimedOut,
}

/// One port of a host as the port panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRow {
    /// Protocol.
    pub protocol: Protocol,
    /// Number.
    pub port: u16,
    /// State.
    pub state: PortState,
    /// Service name (`ssh`, `ssl/http`), when known.
    pub service: String,
    /// Product, version and extra information (`-sV`), when known.
    pub version: String,
}

/// A host that was found up.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// Its address.
    pub addr: IpAddr,
    /// Its first name, when it has one.
    pub name: Option<String>,
    /// Scanning or done.
    pub phase: HostPhase,
    /// Ports listed individually: the open-ish ones while the scan runs (closed and filtered
    /// ones are only counted, so that a host with 65535 closed ports costs three counters), then
    /// the ones its `HostDone` shows individually.
    pub ports: BTreeMap<(Protocol, u16), PortRow>,
    /// Ports found open (`open` only).
    pub open: u64,
    /// Ports found closed (listed or not).
    pub closed: u64,
    /// Ports found filtered or in another state not listed while scanning.
    pub filtered: u64,
    /// The best OS guess, with its accuracy (`Linux 5.x (96%)`).
    pub os: Option<String>,
}

impl HostView {
    fn new(addr: IpAddr) -> HostView {
        HostView {
            addr,
            name: None,
            phase: HostPhase::Scanning,
            ports: BTreeMap::new(),
            open: 0,
            closed: 0,
            filtered: 0,
            os: None,
        }
    }

    /// Count a port once its state is known, and list it if it is worth a row.
    fn add_port(&mut self, p: &PortResult) {
        let key = (p.protocol, p.port);
        if let Some(old) = self.ports.get(&key) {
            // The same port again (a second scan type on it): count it once, by its last state.
            self.uncount(old.state);
        }
        self.count(p.state);
        if listed_while_scanning(p.state) {
            let row = self.ports.entry(key).or_insert_with(|| PortRow {
                protocol: p.protocol,
                port: p.port,
                state: p.state,
                service: String::new(),
                version: String::new(),
            });
            row.state = p.state;
            if let Some(s) = &p.service {
                set_service(row, s);
            }
        }
    }

    fn count(&mut self, s: PortState) {
        match s {
            PortState::Open => self.open += 1,
            PortState::Closed => self.closed += 1,
            _ => self.filtered += 1,
        }
    }

    fn uncount(&mut self, s: PortState) {
        let c = match s {
            PortState::Open => &mut self.open,
            PortState::Closed => &mut self.closed,
            _ => &mut self.filtered,
        };
        *c = c.saturating_sub(1);
    }

    /// The host's final result replaces what its events built: it is the authority (it has the
    /// names from reverse DNS, and its ports after `--open` and nmap's folding).
    fn finish(&mut self, h: &HostResult) {
        self.phase = if h.timed_out { HostPhase::TimedOut } else { HostPhase::Done };
        if let Some(n) = h.hostnames.first() {
            self.name = Some(clean(&n.name));
        }
        self.ports.clear();
        self.open = 0;
        self.closed = 0;
        self.filtered = 0;
        for p in &h.ports {
            self.count(p.state);
            let mut row = PortRow {
                protocol: p.protocol,
                port: p.port,
                state: p.state,
                service: String::new(),
                version: String::new(),
            };
            if let Some(s) = &p.service {
                set_service(&mut row, s);
            }
            self.ports.insert((p.protocol, p.port), row);
        }
        for x in &h.extraports {
            let c = match x.state {
                PortState::Open => &mut self.open,
                PortState::Closed => &mut self.closed,
                _ => &mut self.filtered,
            };
            *c += u64::from(x.count);
        }
        if let Some(best) = h.os.first() {
            self.os = Some(format!("{} ({}%)", clean(&best.name), best.accuracy));
        }
    }
}

/// Open-ish ports get a row as soon as they are found; closed and filtered ones, the bulk of any
/// scan, are counted only until the host's `HostDone` says which are shown.
fn listed_while_scanning(s: PortState) -> bool {
    matches!(s, PortState::Open | PortState::OpenFiltered | PortState::Unfiltered)
}

fn set_service(row: &mut PortRow, s: &ServiceInfo) {
    row.service = clean(&s.display_name());
    row.version = clean(&s.version_line());
}

/// Text from the network or the command line, without control characters: one stray escape
/// sequence would repaint the user's terminal (the detector and the engine sanitize already;
/// this is the last line before the screen).
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// Time since the scan started, when the line was added.
    pub at: Duration,
    /// The text.
    pub text: String,
    /// A warning or a failure (drawn highlighted).
    pub warn: bool,
}

/// The scan as the panels show it, folded from its events.
#[derive(Debug, Clone)]
pub struct ScanView {
    /// The scan's id (from `ScanStarted`).
    pub scan_id: String,
    /// The command line it runs.
    pub args: String,
    /// Where it is.
    pub phase: Phase,
    /// Hosts found up, in the order found.
    pub hosts: Vec<HostView>,
    index: HashMap<IpAddr, usize>,
    /// Hosts reported down (counted, never listed: a /16 sweep has tens of thousands).
    pub hosts_down: u64,
    /// Hosts finished, up or down.
    pub hosts_done: u64,
    /// Hosts being scanned right now.
    pub hosts_active: u64,
    /// Probes sent, replies received.
    pub probes_sent: u64,
    /// Replies received.
    pub replies: u64,
    /// Estimated fraction done, when the engine can tell.
    pub fraction: Option<f64>,
    /// Time since the scan started (the loop's clock until `ScanFinished`, then the scan's own).
    pub elapsed: Duration,
    /// The event log, oldest first, at most `log_cap` lines.
    pub log: VecDeque<LogLine>,
    log_cap: usize,
    /// Last tenth of progress logged, so the log gets one line per 10 %, not one per event.
    logged_tenth: u8,
}

impl Default for ScanView {
    fn default() -> Self {
        ScanView::new(DEFAULT_LOG_LINES)
    }
}

impl ScanView {
    /// An empty view whose log keeps the last `log_cap` lines (at least one).
    pub fn new(log_cap: usize) -> ScanView {
        ScanView {
            scan_id: String::new(),
            args: String::new(),
            phase: Phase::Starting,
            hosts: Vec::new(),
            index: HashMap::new(),
            hosts_down: 0,
            hosts_done: 0,
            hosts_active: 0,
            probes_sent: 0,
            replies: 0,
            fraction: None,
            elapsed: Duration::ZERO,
            log: VecDeque::new(),
            log_cap: log_cap.max(1),
            logged_tenth: 0,
        }
    }

    /// Whether `ScanFinished` came.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Finished(_))
    }

    /// Move the clock (ignored once the scan has finished: its own elapsed time stands).
    pub fn tick(&mut self, elapsed: Duration) {
        if !self.finished() {
            self.elapsed = elapsed;
        }
    }

    /// Add a line to the log, dropping the oldest past the cap.
    pub fn log_line(&mut self, text: impl Into<String>, warn: bool) {
        if self.log.len() >= self.log_cap {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { at: self.elapsed, text: text.into(), warn });
    }

    fn host(&mut self, addr: IpAddr) -> &mut HostView {
        let i = *self.index.entry(addr).or_insert_with(|| {
            self.hosts.push(HostView::new(addr));
            self.hosts.len() - 1
        });
        &mut self.hosts[i]
    }

    /// Fold one event.
    pub fn apply(&mut self, ev: &ScanEvent) {
        match ev {
            ScanEvent::ScanStarted(info) => {
                self.scan_id = info.scan_id.clone();
                self.args = clean(&info.args);
                self.phase = Phase::Running;
                let ports: usize = info.scans.iter().map(|s| s.ports.len()).sum();
                let line = format!("scan {} started: {} port(s) per host; {}", info.scan_id, ports, self.args);
                self.log_line(line, false);
            }
            ScanEvent::HostUp { addr, reason, .. } => {
                let addr = *addr;
                self.host(addr);
                self.log_line(format!("{addr} is up ({})", reason.as_str()), false);
            }
            ScanEvent::PortFound { addr, port } => {
                let addr = *addr;
                self.host(addr).add_port(port);
                // Open ports only: closed ones are the bulk of a scan and would flood the log.
                if port.state == PortState::Open {
                    self.log_line(format!("{addr}: {}/{} open", port.port, port.protocol.as_str()), false);
                }
            }
            ScanEvent::ServiceFound { addr, protocol, port, service, .. } => {
                let (addr, protocol, port) = (*addr, *protocol, *port);
                let h = self.host(addr);
                let row = h.ports.entry((protocol, port)).or_insert_with(|| PortRow {
                    protocol,
                    port,
                    state: PortState::Open,
                    service: String::new(),
                    version: String::new(),
                });
                set_service(row, service);
                let text = format!("{addr}: {port}/{} {} {}", protocol.as_str(), row.service, row.version);
                self.log_line(text.trim_end().to_string(), false);
            }
            ScanEvent::OsMatch { addr, matches } => {
                if let Some(best) = matches.first() {
                    let os = format!("{} ({}%)", clean(&best.name), best.accuracy);
                    let addr = *addr;
                    self.host(addr).os = Some(os.clone());
                    self.log_line(format!("{addr}: OS {os}"), false);
                }
            }
            ScanEvent::HostDone(h) => {
                self.hosts_done += 1;
                let listed = self.index.contains_key(&h.addr);
                if h.status == HostStatus::Up || listed {
                    let host = self.host(h.addr);
                    host.finish(h);
                    let line = format!(
                        "{} done: {} open, {} closed, {} filtered{}",
                        h.addr,
                        host.open,
                        host.closed,
                        host.filtered,
                        if h.timed_out { " (host timeout)" } else { "" }
                    );
                    self.log_line(line, h.timed_out);
                } else {
                    self.hosts_down += 1;
                }
            }
            ScanEvent::Progress { hosts_done, probes_sent, replies, fraction, hosts_active } => {
                self.probes_sent = *probes_sent;
                self.replies = *replies;
                self.hosts_active = *hosts_active;
                self.hosts_done = self.hosts_done.max(*hosts_done);
                if let Some(f) = fraction {
                    let f = f.clamp(0.0, 1.0);
                    self.fraction = Some(f);
                    let tenth = (f * 10.0).floor() as u8;
                    if tenth > self.logged_tenth && tenth < 10 {
                        self.logged_tenth = tenth;
                        let line = format!(
                            "{}% done: {} host(s) finished, {} probe(s) sent, {} repl{}",
                            u32::from(tenth) * 10,
                            self.hosts_done,
                            probes_sent,
                            replies,
                            if *replies == 1 { "y" } else { "ies" }
                        );
                        self.log_line(line, false);
                    }
                }
            }
            ScanEvent::Warning { message } => self.log_line(format!("warning: {}", clean(message)), true),
            ScanEvent::FirstOpenPort { addr, protocol, port, after_secs } => {
                let line = format!("first open port: {addr} {port}/{} after {after_secs:.2} s", protocol.as_str());
                self.log_line(line, false);
            }
            ScanEvent::TraceHop { addr, hop } => {
                let line = format!("{addr}: hop {} {}", hop.ttl, hop.addr.map(|a| a.to_string()).unwrap_or("*".into()));
                self.log_line(line, false);
            }
            ScanEvent::ScriptOutput { .. } => {}
            ScanEvent::Stopping => {
                self.phase = Phase::Stopping;
                self.log_line("stopping: the results so far are kept", true);
            }
            ScanEvent::ScanFinished(stats) => {
                self.elapsed = Duration::from_secs_f64(stats.elapsed_secs.max(0.0));
                self.hosts_active = 0;
                if stats.completed {
                    self.fraction = Some(1.0);
                }
                let outcome = stats.outcome.as_str().to_string();
                let failed = match &stats.outcome {
                    rustmap_model::ScanOutcome::Failed { error } => format!(": {}", clean(error)),
                    _ => String::new(),
                };
                let line = format!(
                    "scan {outcome}{failed} in {:.2} s: {} host(s) up, {} down, {} in all",
                    stats.elapsed_secs, stats.hosts_up, stats.hosts_down, stats.hosts_total
                );
                self.log_line(line, !failed.is_empty());
                self.phase = Phase::Finished(outcome);
            }
            // Events of a later schema version: nothing to show.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more than a redraw.
    None,
    /// Leave (cancelling the scan if it still runs).
    Quit,
}

/// A key, as far as the TUI cares (the terminal layer maps crossterm's keys onto these, so this
/// module stays free of any terminal library).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Up arrow or `k`.
    Up,
    /// Down arrow or `j`.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home or `g`.
    First,
    /// End or `G`.
    Last,
    /// `h` or `?`.
    Help,
    /// Escape: closes the help panel.
    Escape,
    /// `q` or Ctrl-C.
    Quit,
}

/// The whole TUI state: the scan and what the user steers.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The scan.
    pub scan: ScanView,
    /// Index of the selected host in `scan.hosts`.
    pub selected: usize,
    /// First host row shown (kept by the renderer so the selection stays in view).
    pub offset: usize,
    /// Whether the help panel is up.
    pub show_help: bool,
}

/// Rows a page key moves.
const PAGE: usize = 10;

impl App {
    /// A fresh state whose log keeps `log_cap` lines.
    pub fn new(log_cap: usize) -> App {
        App { scan: ScanView::new(log_cap), ..App::default() }
    }

    /// The selected host, if any host is up yet.
    pub fn selected_host(&self) -> Option<&HostView> {
        self.scan.hosts.get(self.selected)
    }

    /// Act on a key.
    pub fn on_key(&mut self, key: Key) -> Action {
        let last = self.scan.hosts.len().saturating_sub(1);
        match key {
            Key::Up => self.selected = self.selected.saturating_sub(1),
            Key::Down => self.selected = (self.selected + 1).min(last),
            Key::PageUp => self.selected = self.selected.saturating_sub(PAGE),
            Key::PageDown => self.selected = (self.selected + PAGE).min(last),
            Key::First => self.selected = 0,
            Key::Last => self.selected = last,
            Key::Help => self.show_help = !self.show_help,
            Key::Escape => self.show_help = false,
            Key::Quit => return Action::Quit,
        }
        Action::None
    }
}
