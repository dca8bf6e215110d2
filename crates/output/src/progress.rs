//! The scan's status while it runs, on stderr: one live status line redrawn in place when stderr
//! is a terminal, and nmap's periodic `--stats-every` lines.
//!
//! Live line (only when stderr is a terminal and stdout is not a pipe; redrawn with `\r` + clear-to-end-of-line, at most four times a
//! second, first drawn one second into the scan so short scans never flash it):
//! ```text
//! 0:00:12 elapsed | 45.2% done, ETA 0:00:15 | 3 hosts done (2 up) | 12034 probes | 8000 replies | 1043 probes/s
//! ```
//! Fields that do not fit the terminal's width are dropped from the right, so the line never
//! wraps (a wrapped line could not be erased with one `\r`).
//!
//! `--stats-every` lines (terminal or not), in nmap's words so that tools scraping them still match:
//! ```text
//! Stats: 0:00:12 elapsed; 3 hosts completed (2 up), 1 undergoing SYN Stealth Scan
//! SYN Stealth Scan Timing: About 45.20% done; ETC: 14:03 (0:00:15 remaining)
//! ```
//! The "undergoing" count is the engine's number of hosts in progress, from its progress reports
//! (left out before the first one arrives). The second line needs the engine's estimate
//! of the fraction done, which exists only when the number of targets is known up front.
//!
//! Only numbers and the scan type's name are ever printed: nothing that came from the network.
//!
//! Interleaving: this sink must come *before* every other sink that writes to the terminal. It
//! erases its line on every event except `Progress` (the only event no format writes anything
//! for), so when the next sink prints a host report or a warning the line is already gone; it is
//! drawn again on the next `Progress` event or [`Sink::tick`]. It is erased for good at
//! `ScanFinished`, in [`Sink::finish`], and when dropped (a scan that fails half-way).
//!
//! Time is a parameter ([`ProgressSink::event_at`], [`ProgressSink::tick_at`]), so tests drive the
//! sink with made-up instants; the [`Sink`] methods pass `Instant::now()`.

use crate::common::local_time;
use crate::{Control, Sink, SinkError};
use rustmap_model::{HostStatus, ScanEvent};
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// The live line is redrawn at most this often.
pub const REDRAW_EVERY: Duration = Duration::from_millis(250);

/// The live line first appears this far into a scan, so that short scans never flash it.
pub const FIRST_DRAW_AFTER: Duration = Duration::from_secs(1);

/// Erase the current terminal line: carriage return, then clear to end of line (ECMA-48 EL 0).
const ERASE: &str = "\r\x1b[K";

/// Width assumed when the terminal cannot tell its own.
const DEFAULT_WIDTH: usize = 80;

/// What the status output should show.
#[derive(Debug, Clone, Default)]
pub struct ProgressOptions {
    /// Keep a live status line (honoured only when the output is a terminal).
    pub live: bool,
    /// Print nmap's `Stats:` lines this often.
    pub stats_every: Option<Duration>,
}

/// Where the terminal width comes from.
#[derive(Debug, Clone, Copy)]
enum Width {
    /// Asked of stderr at every redraw, so a resized window is followed.
    Stderr,
    /// A fixed number of columns.
    Fixed(usize),
}

/// What the sink knows about the scan, from the events so far.
#[derive(Debug, Default)]
struct ScanState {
    /// Monotonic start (when `ScanStarted` arrived).
    started: Option<Instant>,
    /// Wall-clock start from `ScanStarted`, for the ETC time of day.
    start_unix: i64,
    /// "Connect Scan", "SYN Stealth Scan", ...
    scan_name: &'static str,
    /// Hosts finished, as the engine counts them.
    engine_hosts_done: u64,
    /// `HostDone` events seen.
    hosts_done: u64,
    /// ... of which up.
    hosts_up: u64,
    /// A `Progress` event has come: the probe counts below are the engine's, not zeros.
    progress_seen: bool,
    probes_sent: u64,
    replies: u64,
    /// The engine's estimate of the fraction done, and when it was made.
    fraction: Option<(f64, Instant)>,
    /// Probes per second over the last progress interval.
    rate: Option<f64>,
    /// The previous (time, probes sent) sample, for the rate.
    sample: Option<(Instant, u64)>,
    /// `ScanFinished` seen: nothing more is drawn.
    finished: bool,
    /// Hosts in progress, from the last `Progress` event.
    hosts_active: Option<u64>,
}

impl ScanState {
    fn elapsed(&self, now: Instant) -> Duration {
        self.started.map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    fn hosts_completed(&self) -> u64 {
        // HostDone events can trail the engine's count (reverse DNS runs in between); the engine's
        // count can trail the events by up to a progress interval. The larger is the fresher.
        self.hosts_done.max(self.engine_hosts_done)
    }

    /// The estimated end as a monotonic instant, from the engine's latest estimate: the time per
    /// unit of progress so far, applied to what is left. Counts down between estimates.
    fn eta_at(&self) -> Option<Instant> {
        let (f, at) = self.fraction?;
        let start = self.started?;
        if f <= 0.0 {
            return None;
        }
        let spent = at.saturating_duration_since(start).as_secs_f64();
        let left = spent * (1.0 - f.min(1.0)) / f;
        // An estimate of more than a year is no estimate (a tiny fraction early on).
        (left < 366.0 * 86_400.0).then(|| at + Duration::from_secs_f64(left))
    }

    fn on_progress(&mut self, now: Instant, hosts_done: u64, probes_sent: u64, replies: u64, fraction: Option<f64>) {
        self.progress_seen = true;
        self.engine_hosts_done = hosts_done;
        self.replies = replies;
        self.fraction = fraction.filter(|f| f.is_finite()).map(|f| (f.clamp(0.0, 1.0), now));
        let (t0, p0) = self.sample.or(self.started.map(|s| (s, 0))).unwrap_or((now, 0));
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        // A sample closer than a tenth of a second to the last one says little about the rate.
        if dt >= 0.1 {
            self.rate = Some(probes_sent.saturating_sub(p0) as f64 / dt);
            self.sample = Some((now, probes_sent));
        }
        self.probes_sent = probes_sent;
    }
}

/// `h:mm:ss`, hours unpadded, as nmap writes durations.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Time left until `end`, to the nearest second (truncating would say "0:00:00 remaining" for the
/// last second of a scan that is still running).
fn remaining(end: Instant, now: Instant) -> Duration {
    Duration::from_secs(end.saturating_duration_since(now).as_secs_f64().round() as u64)
}

fn rate_text(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1} probes/s")
    } else {
        format!("{r:.0} probes/s")
    }
}

/// The live status line, at most `width` characters: fields that do not fit are dropped from the
/// right (the first is cut instead if even it does not fit).
fn live_line(st: &ScanState, now: Instant, width: usize) -> String {
    let mut fields = vec![format!("{} elapsed", clock(st.elapsed(now)))];
    if let Some((f, _)) = st.fraction {
        match st.eta_at() {
            Some(end) => fields.push(format!("{:.1}% done, ETA {}", f * 100.0, clock(remaining(end, now)))),
            None => fields.push(format!("{:.1}% done", f * 100.0)),
        }
    }
    fields.push(format!("{} hosts done ({} up)", st.hosts_completed(), st.hosts_up));
    if st.progress_seen {
        fields.push(format!("{} probes", st.probes_sent));
        fields.push(format!("{} replies", st.replies));
    }
    if let Some(r) = st.rate {
        fields.push(rate_text(r));
    }
    let mut line = String::new();
    for f in fields {
        let sep = if line.is_empty() { "" } else { " | " };
        if line.len() + sep.len() + f.len() > width {
            break;
        }
        line.push_str(sep);
        line.push_str(&f);
    }
    if line.is_empty() {
        // Everything above is ASCII, so cutting at a byte count is cutting at a character count.
        line = clock(st.elapsed(now));
        line.truncate(width);
    }
    line
}

/// nmap's `--stats-every` lines (one, or two when the fraction done is known), newline-terminated.
fn stats_lines(st: &ScanState, now: Instant) -> String {
    let name = st.scan_name;
    // "hosts completed" is not made singular: these are nmap's exact words, which scripts match.
    let undergoing = st.hosts_active.map_or(String::new(), |n| format!("{n} "));
    let mut out = format!(
        "Stats: {} elapsed; {} hosts completed ({} up), {undergoing}undergoing {name}\n",
        clock(st.elapsed(now)),
        st.hosts_completed(),
        st.hosts_up
    );
    if let (Some((f, _)), Some(end), Some(start)) = (st.fraction, st.eta_at(), st.started) {
        let left = remaining(end, now);
        let end_unix = st.start_unix.saturating_add(end.saturating_duration_since(start).as_secs() as i64);
        out.push_str(&format!(
            "{name} Timing: About {:.2}% done; ETC: {} ({} remaining)\n",
            f * 100.0,
            local_time(end_unix).format("%H:%M"),
            clock(left)
        ));
    }
    out
}

/// The status sink: the live line and the `--stats-every` lines. See the module docs.
pub struct ProgressSink<W: Write + Send> {
    out: W,
    live: bool,
    stats_every: Option<Duration>,
    width: Width,
    st: ScanState,
    /// The live line is on screen.
    drawn: bool,
    last_draw: Option<Instant>,
    next_stats: Option<Instant>,
    /// A write failed: status output is advisory, so the scan goes on without it.
    broken: bool,
}

impl<W: Write + Send> ProgressSink<W> {
    /// A sink writing to `out`. The live line is drawn only if asked for *and* `out_is_terminal`:
    /// a file or a pipe gets no control sequences, only the `Stats:` lines if those are asked for.
    pub fn new(out: W, out_is_terminal: bool, opts: ProgressOptions) -> Self {
        ProgressSink {
            out,
            live: opts.live && out_is_terminal,
            stats_every: opts.stats_every.filter(|d| !d.is_zero()),
            width: Width::Fixed(DEFAULT_WIDTH),
            st: ScanState::default(),
            drawn: false,
            last_draw: None,
            next_stats: None,
            broken: false,
        }
    }

    /// Use a fixed terminal width (in columns) instead of asking stderr.
    pub fn with_width(mut self, columns: usize) -> Self {
        self.width = Width::Fixed(columns);
        self
    }

    /// Will this sink ever print anything?
    pub fn is_silent(&self) -> bool {
        !self.live && self.stats_every.is_none()
    }

    /// Take one event that arrived at `now`.
    pub fn event_at(&mut self, ev: &ScanEvent, now: Instant) {
        match ev {
            ScanEvent::Progress { hosts_done, probes_sent, replies, fraction, hosts_active } => {
                self.st.hosts_active = Some(*hosts_active);
                self.st.on_progress(now, *hosts_done, *probes_sent, *replies, *fraction);
                self.refresh(now);
                return;
            }
            ScanEvent::ScanStarted(info) => {
                self.st.started = Some(now);
                self.st.start_unix = info.start_unix;
                self.st.scan_name = info.scans.first().map_or("Scan", |s| s.scan_type.display_name());
                self.next_stats = self.stats_every.map(|d| now + d);
            }
            ScanEvent::HostDone(h) => {
                self.st.hosts_done += 1;
                if h.status == HostStatus::Up {
                    self.st.hosts_up += 1;
                }
            }
            ScanEvent::ScanFinished(_) => self.st.finished = true,
            _ => {}
        }
        // Another sink may print for this event: get out of its way.
        self.erase();
    }

    /// Time passed with no event: redraw the clock, print due `Stats:` lines.
    pub fn tick_at(&mut self, now: Instant) {
        self.refresh(now);
    }

    fn refresh(&mut self, now: Instant) {
        if self.broken || self.st.finished || self.st.started.is_none() {
            return;
        }
        let mut text = String::new();
        if let (Some(at), Some(every)) = (self.next_stats, self.stats_every) {
            if now >= at {
                if self.drawn {
                    text.push_str(ERASE);
                    self.drawn = false;
                }
                text.push_str(&stats_lines(&self.st, now));
                // One line per due time; after a stall, the next one interval from now (no burst).
                let next = at + every;
                self.next_stats = Some(if next <= now { now + every } else { next });
            }
        }
        let due = self.live
            && self.st.elapsed(now) >= FIRST_DRAW_AFTER
            // Redrawing right after our own Stats lines is not counted against the rate: the line
            // was erased for them and should come back at once.
            && (!self.drawn || self.last_draw.is_none_or(|t| now.saturating_duration_since(t) >= REDRAW_EVERY));
        if due {
            let width = match self.width {
                Width::Fixed(w) => w,
                Width::Stderr => terminal_size::terminal_size_of(io::stderr())
                    .map_or(DEFAULT_WIDTH, |(terminal_size::Width(w), _)| usize::from(w)),
            };
            // One column spare: writing the last column makes some terminals wrap early.
            text.push_str(ERASE);
            text.push_str(&live_line(&self.st, now, width.saturating_sub(1).max(1)));
            self.drawn = true;
            self.last_draw = Some(now);
        }
        self.write(&text);
    }

    fn erase(&mut self) {
        if self.drawn {
            self.drawn = false;
            self.write(ERASE);
        }
    }

    fn write(&mut self, text: &str) {
        if text.is_empty() || self.broken {
            return;
        }
        if self.out.write_all(text.as_bytes()).and_then(|()| self.out.flush()).is_err() {
            self.broken = true;
            self.drawn = false;
        }
    }
}

impl ProgressSink<io::Stderr> {
    /// The sink on this process's stderr, its width followed as the window is resized. The live
    /// line is drawn only if stderr is a terminal and stdout is not a pipe: `rustmap ... | less`
    /// has another process writing our results to the same terminal whenever it likes, which no
    /// erasing on our side can keep apart from the line. (`> file` keeps the line.)
    pub fn stderr(opts: ProgressOptions) -> Self {
        let err = io::stderr();
        let terminal = err.is_terminal() && !stdout_is_pipe();
        let mut sink = ProgressSink::new(err, terminal, opts);
        sink.width = Width::Stderr;
        sink
    }
}

/// Is stdout a pipe or a socket (read by another process), rather than a terminal or a file?
#[cfg(unix)]
fn stdout_is_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    // fstat through a duplicate of the descriptor: safe code, and closing the duplicate leaves
    // stdout alone.
    let Ok(fd) = io::stdout().as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

#[cfg(not(unix))]
fn stdout_is_pipe() -> bool {
    false
}

impl<W: Write + Send> Sink for ProgressSink<W> {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        self.event_at(ev, Instant::now());
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        self.tick_at(Instant::now());
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.erase();
        Ok(())
    }
}

impl<W: Write + Send> Drop for ProgressSink<W> {
    fn drop(&mut self) {
        // A scan that fails half-way drops its sinks before the error is printed: leave no line.
        self.erase();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::{HostResult, Reason, ScanInfo, ScanPorts, ScanStats, ScanType};

    const START_UNIX: i64 = 1_795_000_000;

    fn started(scan_type: ScanType) -> ScanEvent {
        ScanEvent::ScanStarted(ScanInfo {
            schema_version: 1,
            version: "0.1.0".into(),
            args: "rustmap".into(),
            start_unix: START_UNIX,
            scans: vec![ScanPorts { scan_type, ports: vec![22, 80] }],
            verbosity: 0,
            debugging: 0,
            service_scan: false,
            scan_id: String::new(),
            config: None,
        })
    }

    fn progress(hosts_done: u64, probes_sent: u64, replies: u64, fraction: Option<f64>) -> ScanEvent {
        ScanEvent::Progress { hosts_done, probes_sent, replies, fraction, hosts_active: 1 }
    }

    fn host_done(last: u8, up: bool) -> ScanEvent {
        ScanEvent::HostDone(HostResult {
            addr: std::net::IpAddr::from([127, 0, 0, last]),
            hostnames: vec![],
            mac: None,
            status: if up { HostStatus::Up } else { HostStatus::Down },
            reason: if up { Reason::SynAck } else { Reason::NoResponse },
            reason_ttl: 0,
            start_unix: START_UNIX,
            end_unix: START_UNIX,
            srtt_us: None,
            ports: vec![],
            extraports: vec![],
            timed_out: false,
            os: Vec::new(),
            os_info: None,
            scripts: Vec::new(),
            trace: Vec::new(),
            trace_probe: None,
            path_mtu: None,
            geoip: None,
            cloud: None,
            passive: Vec::new(),
        })
    }

    fn finished() -> ScanEvent {
        ScanEvent::ScanFinished(ScanStats {
            end_unix: START_UNIX + 10,
            elapsed_secs: 10.0,
            hosts_up: 1,
            hosts_down: 0,
            hosts_total: 1,
            completed: true,
            outcome: Default::default(),
        })
    }

    fn sink(terminal: bool, live: bool, stats_every: Option<Duration>) -> ProgressSink<Vec<u8>> {
        ProgressSink::new(Vec::new(), terminal, ProgressOptions { live, stats_every }).with_width(200)
    }

    fn text(s: &ProgressSink<Vec<u8>>) -> String {
        String::from_utf8(s.out.clone()).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The lines drawn so far: the text after each erase that is not followed by another erase.
    fn draws(out: &str) -> Vec<&str> {
        out.split(ERASE).skip(1).filter(|s| !s.is_empty()).collect()
    }

    #[test]
    fn live_line_shows_every_number() {
        let t0 = Instant::now();
        let mut st = ScanState { started: Some(t0), scan_name: "Connect Scan", ..Default::default() };
        st.hosts_done = 3;
        st.hosts_up = 2;
        st.on_progress(t0 + ms(2000), 3, 2000, 1500, Some(0.25));
        // At 2 s a quarter is done: 6 s to go, 5 s of them after the 3 s mark.
        let line = live_line(&st, t0 + ms(3000), 200);
        assert_eq!(
            line,
            "0:00:03 elapsed | 25.0% done, ETA 0:00:05 | 3 hosts done (2 up) | 2000 probes | 1500 replies | 1000 probes/s"
        );
    }

    #[test]
    fn live_line_without_an_estimate_or_a_rate() {
        let t0 = Instant::now();
        let mut st = ScanState { started: Some(t0), ..Default::default() };
        // Before the engine's first report its counts are unknown, not zero.
        assert_eq!(live_line(&st, t0 + ms(3_725_000), 200), "1:02:05 elapsed | 0 hosts done (0 up)");
        // A report too close to the start for a rate: counts, no rate.
        st.on_progress(t0 + ms(50), 0, 7, 3, None);
        assert_eq!(live_line(&st, t0 + ms(1000), 200), "0:00:01 elapsed | 0 hosts done (0 up) | 7 probes | 3 replies");
    }

    #[test]
    fn live_line_drops_fields_that_do_not_fit() {
        let t0 = Instant::now();
        let mut st = ScanState { started: Some(t0), ..Default::default() };
        st.on_progress(t0 + ms(1000), 0, 500, 400, Some(0.5));
        let full = live_line(&st, t0 + ms(1000), 500);
        for width in [10, 20, 40, 79] {
            let line = live_line(&st, t0 + ms(1000), width);
            assert!(line.len() <= width, "{width}: {line:?}");
            assert!(full.starts_with(&line), "only whole fields from the left: {line:?}");
            assert!(!line.ends_with(" |") && !line.ends_with(' '), "{line:?}");
        }
        assert_eq!(
            live_line(&st, t0 + ms(1000), 79),
            "0:00:01 elapsed | 50.0% done, ETA 0:00:01 | 0 hosts done (0 up) | 500 probes"
        );
        assert_eq!(live_line(&st, t0 + ms(1000), 4), "0:00");
    }

    #[test]
    fn slow_rates_keep_a_decimal() {
        assert_eq!(rate_text(0.5), "0.5 probes/s");
        assert_eq!(rate_text(1043.4), "1043 probes/s");
    }

    #[test]
    fn redraws_at_most_four_times_a_second() {
        let t0 = Instant::now();
        let mut s = sink(true, true, None);
        s.event_at(&started(ScanType::Syn), t0);
        // Progress every 50 ms and ticks in between, for 5 s.
        for i in 1..=100u64 {
            s.event_at(&progress(0, i * 10, i * 5, Some(i as f64 / 200.0)), t0 + ms(i * 50));
            s.tick_at(t0 + ms(i * 50 + 25));
        }
        let out = text(&s);
        let drawn = draws(&out);
        // Nothing before 1 s; then one draw per 250 ms from 1.0 s to 5.0 s inclusive: 17.
        assert_eq!(drawn.len(), 17, "{out:?}");
        assert!(drawn[0].starts_with("0:00:01 elapsed"), "{}", drawn[0]);
        assert!(drawn.iter().all(|d| !d.contains('\n')), "one line, never a newline: {out:?}");
        // Every redraw starts at column 0 and clears what was there.
        assert_eq!(out.matches(ERASE).count(), 17);
        assert!(out.starts_with(ERASE));
    }

    #[test]
    fn erases_before_any_other_output_and_at_the_end() {
        let t0 = Instant::now();
        let mut s = sink(true, true, None);
        s.event_at(&started(ScanType::Connect), t0);
        s.event_at(&progress(0, 100, 50, None), t0 + ms(1000));
        assert!(text(&s).ends_with("50 replies | 100 probes/s"), "{:?}", text(&s));
        // A host finishes: the normal output will print its report, so the line goes first.
        s.event_at(&host_done(1, true), t0 + ms(1100));
        assert!(text(&s).ends_with(ERASE), "{:?}", text(&s));
        let len = s.out.len();
        // A second event with nothing on screen writes nothing.
        s.event_at(&ScanEvent::Warning { message: "w".into() }, t0 + ms(1150));
        assert_eq!(s.out.len(), len);
        // Back on the next tick, even within 250 ms of the last draw (the line was gone).
        s.tick_at(t0 + ms(1200));
        assert!(text(&s).ends_with("1 hosts done (1 up) | 100 probes | 50 replies | 100 probes/s"), "{:?}", text(&s));
        s.event_at(&finished(), t0 + ms(1300));
        assert!(text(&s).ends_with(ERASE));
        let len = s.out.len();
        // Nothing more after the end, whatever arrives.
        s.tick_at(t0 + ms(5000));
        s.event_at(&progress(1, 100, 50, None), t0 + ms(6000));
        Sink::finish(&mut s).unwrap();
        assert_eq!(s.out.len(), len);
    }

    #[test]
    fn dropping_a_drawn_sink_erases_the_line() {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let t0 = Instant::now();
        let mut s = ProgressSink::new(Shared(buf.clone()), true, ProgressOptions { live: true, stats_every: None });
        s.event_at(&started(ScanType::Connect), t0);
        s.tick_at(t0 + ms(1500));
        assert!(!buf.lock().unwrap().ends_with(ERASE.as_bytes()));
        drop(s);
        assert!(buf.lock().unwrap().ends_with(ERASE.as_bytes()));
    }

    #[test]
    fn not_a_terminal_means_no_live_line_at_all() {
        let t0 = Instant::now();
        let mut s = sink(false, true, None);
        assert!(s.is_silent());
        s.event_at(&started(ScanType::Syn), t0);
        for i in 1..=40u64 {
            s.event_at(&progress(i / 10, i * 100, i * 50, Some(i as f64 / 50.0)), t0 + ms(i * 250));
            s.tick_at(t0 + ms(i * 250 + 100));
            if i % 10 == 0 {
                s.event_at(&host_done(i as u8, true), t0 + ms(i * 250 + 200));
            }
        }
        s.event_at(&finished(), t0 + ms(11_000));
        Sink::finish(&mut s).unwrap();
        assert!(s.out.is_empty(), "{:?}", text(&s));
    }

    #[test]
    fn stats_lines_in_nmaps_words_at_the_interval() {
        let t0 = Instant::now();
        // Not a terminal: the Stats lines still come, with no control sequences.
        let mut s = sink(false, true, Some(Duration::from_secs(8)));
        s.event_at(&started(ScanType::Syn), t0);
        for sec in 1..=20u64 {
            if sec == 4 {
                s.event_at(&host_done(1, true), t0 + ms(sec * 1000 - 500));
                s.event_at(&host_done(2, false), t0 + ms(sec * 1000 - 400));
                s.event_at(&host_done(3, true), t0 + ms(sec * 1000 - 300));
            }
            // A 32 s scan, steadily: sixteenths are exact in binary, so the estimates are too.
            let f = sec as f64 / 32.0;
            s.event_at(&progress(3, sec * 100, sec * 60, Some(f)), t0 + ms(sec * 1000));
            s.tick_at(t0 + ms(sec * 1000 + 500));
        }
        let out = text(&s);
        assert!(!out.contains('\r') && !out.contains('\x1b'), "{out:?}");
        let etc = local_time(START_UNIX + 32).format("%H:%M").to_string();
        let want = format!(
            "Stats: 0:00:08 elapsed; 3 hosts completed (2 up), 1 undergoing SYN Stealth Scan\n\
             SYN Stealth Scan Timing: About 25.00% done; ETC: {etc} (0:00:24 remaining)\n\
             Stats: 0:00:16 elapsed; 3 hosts completed (2 up), 1 undergoing SYN Stealth Scan\n\
             SYN Stealth Scan Timing: About 50.00% done; ETC: {etc} (0:00:16 remaining)\n"
        );
        assert_eq!(out, want);
    }

    #[test]
    fn stats_without_an_estimate_is_one_line_and_a_stall_does_not_burst() {
        let t0 = Instant::now();
        let mut s = sink(false, false, Some(Duration::from_secs(1)));
        s.event_at(&started(ScanType::Connect), t0);
        s.tick_at(t0 + ms(500));
        assert!(s.out.is_empty());
        // Nothing for ten seconds, then a tick: one line, not ten.
        s.tick_at(t0 + ms(10_200));
        assert_eq!(text(&s), "Stats: 0:00:10 elapsed; 0 hosts completed (0 up), undergoing Connect Scan\n");
        s.tick_at(t0 + ms(10_900));
        assert_eq!(text(&s).lines().count(), 1);
        s.tick_at(t0 + ms(11_200));
        assert_eq!(text(&s).lines().count(), 2);
    }

    #[test]
    fn stats_lines_erase_the_live_line_and_bring_it_back() {
        let t0 = Instant::now();
        let mut s = sink(true, true, Some(Duration::from_secs(2)));
        s.event_at(&started(ScanType::Fin), t0);
        s.event_at(&progress(0, 100, 10, None), t0 + ms(1000));
        s.event_at(&progress(0, 200, 20, None), t0 + ms(2000));
        let out = text(&s);
        // Line at 1 s; at 2 s: erase, the Stats line, the line again.
        let want = format!(
            "{ERASE}0:00:01 elapsed | 0 hosts done (0 up) | 100 probes | 10 replies | 100 probes/s\
             {ERASE}Stats: 0:00:02 elapsed; 0 hosts completed (0 up), 1 undergoing FIN Scan\n\
             {ERASE}0:00:02 elapsed | 0 hosts done (0 up) | 200 probes | 20 replies | 100 probes/s"
        );
        assert_eq!(out, want);
    }

    #[test]
    fn a_failing_terminal_does_not_stop_the_scan() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut s = ProgressSink::new(Broken, true, ProgressOptions { live: true, stats_every: Some(ms(500)) });
        assert_eq!(s.event(&started(ScanType::Connect)).unwrap(), Control::Continue);
        let t0 = Instant::now();
        s.tick_at(t0 + ms(2000));
        assert!(s.broken);
        assert_eq!(s.event(&finished()).unwrap(), Control::Continue);
        s.finish().unwrap();
    }

    #[test]
    fn clock_is_nmaps() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00:00");
        assert_eq!(clock(Duration::from_secs(75)), "0:01:15");
        assert_eq!(clock(Duration::from_secs(36_000 + 61)), "10:01:01");
    }
}
