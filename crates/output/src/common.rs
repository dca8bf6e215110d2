//! Helpers shared by the formats: display options, time strings, host summaries.

use chrono::{DateTime, Local, TimeZone};
use rustmap_model::{HostResult, HostStatus, PortState, ScanStats};

/// Options that change what every format shows.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Show only open (and possibly open) ports, and only hosts that have one (`--open`).
    pub open_only: bool,
    /// Show why each port has its state (`--reason`); implied by `-vv`... only for normal output.
    pub reason: bool,
    /// Verbosity (`-v` count).
    pub verbosity: u8,
}

/// Ports worth showing under `--open`.
pub(crate) fn is_openish(s: PortState) -> bool {
    matches!(s, PortState::Open | PortState::OpenFiltered)
}

/// Does this host get printed at all?
pub(crate) fn host_shown(h: &HostResult, opts: &Options) -> bool {
    !opts.open_only || h.ports.iter().any(|p| is_openish(p.state))
}

/// Whether a host goes into the XML and JSON outputs: hosts up (and `-sL`'s unknown ones) as
/// [`host_shown`] says; down hosts only with `-v` and without `--open`, as nmap does.
pub(crate) fn host_listed(h: &HostResult, opts: &Options) -> bool {
    match h.status {
        HostStatus::Down => opts.verbosity > 0 && !opts.open_only,
        _ => host_shown(h, opts),
    }
}

pub(crate) fn local_time(unix: i64) -> DateTime<Local> {
    Local.timestamp_opt(unix, 0).single().unwrap_or_else(Local::now)
}

/// ctime-like time string nmap uses in XML and grepable output: `Sat Nov 21 14:23:00 2026`.
pub(crate) fn ctime(unix: i64) -> String {
    local_time(unix).format("%a %b %e %H:%M:%S %Y").to_string()
}

/// `1 IP address (1 host up) scanned in 0.52 seconds`.
pub(crate) fn done_summary(stats: &ScanStats) -> String {
    let n = stats.hosts_total;
    format!(
        "{} IP address{} ({} host{} up) scanned in {:.2} seconds",
        n,
        if n == 1 { "" } else { "es" },
        stats.hosts_up,
        if stats.hosts_up == 1 { "" } else { "s" },
        stats.elapsed_secs
    )
}

/// Write ports as a compact range list: `[1,2,3,5]` → `1-3,5`.
pub fn format_ranges(ports: &[u16]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut i = 0;
    while i < ports.len() {
        let start = ports[i];
        let mut end = start;
        while i + 1 < ports.len() && u32::from(ports[i + 1]) == u32::from(end) + 1 {
            end = ports[i + 1];
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = if start == end { write!(out, "{start}") } else { write!(out, "{start}-{end}") };
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(format_ranges(&[1, 2, 3, 5, 65534, 65535]), "1-3,5,65534-65535");
    }

    #[test]
    fn summary_plurals() {
        let s =
            ScanStats { end_unix: 0, elapsed_secs: 1.234, hosts_up: 1, hosts_down: 0, hosts_total: 1, completed: true };
        assert_eq!(done_summary(&s), "1 IP address (1 host up) scanned in 1.23 seconds");
        let s = ScanStats { hosts_up: 2, hosts_total: 256, ..s };
        assert_eq!(done_summary(&s), "256 IP addresses (2 hosts up) scanned in 1.23 seconds");
    }
}
