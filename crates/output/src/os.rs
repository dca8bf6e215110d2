//! The OS detection section of a host (`-O`) in normal output and XML, as nmap lays them out.
//!
//! Normal output: `Device type`, `Running` (`Running (JUST GUESSING)` with accuracies when no
//! entry matched exactly), `OS CPE`, `OS details` or `Aggressive OS guesses` with `No exact OS
//! matches for host`, the probes' warnings, then with `-v` `Uptime guess`, `TCP Sequence
//! Prediction` and `IP ID Sequence Generation`; the fingerprint in RustMap's format when nothing
//! matched exactly. `Network Distance` is written with the way to the host (`normal.rs`).
//!
//! XML: `<os>` with `<portused>`, `<osmatch name accuracy line>` and its `<osclass>` elements
//! (`<cpe>` inside), `<osfingerprint>`; then `<uptime>`, `<tcpsequence>`, `<ipidsequence>`,
//! `<tcptssequence>` — the elements and attributes nmap's DTD names.

use crate::common::ctime;
use rustmap_model::{neutralize, HostResult, OsGuess};
use std::io::{self, Write};

/// "Linux 4.X|5.X" for each vendor family among the guesses, in order of first appearance.
fn running(guesses: &[&OsGuess], with_accuracy: bool) -> String {
    let mut groups: Vec<(String, Vec<String>, u8)> = Vec::new();
    for g in guesses {
        for c in &g.classes {
            let name = if c.vendor == c.family { c.family.clone() } else { format!("{} {}", c.vendor, c.family) };
            let k = match groups.iter().position(|x| x.0 == name) {
                Some(k) => k,
                None => {
                    groups.push((name, Vec::new(), g.accuracy));
                    groups.len() - 1
                }
            };
            if let Some(gen) = &c.generation {
                if !groups[k].1.contains(gen) {
                    groups[k].1.push(gen.clone());
                }
            }
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(name, gens, acc)| {
            let mut s = name.clone();
            if !gens.is_empty() {
                s = format!("{s} {}", gens.join("|"));
            }
            if with_accuracy {
                s = format!("{s} ({acc}%)");
            }
            s
        })
        .collect();
    neutralize(&parts.join(", ")).into_owned()
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    for i in items {
        if !v.contains(&i) {
            v.push(i);
        }
    }
    v
}

/// The uptime in nmap's words: `7.123 days (since Mon Nov 30 14:00:00 2026)`.
fn uptime_words(seconds: u64, last_boot: Option<i64>) -> String {
    let days = seconds as f64 / 86_400.0;
    match last_boot {
        Some(b) => format!("{days:.3} days (since {})", ctime(b)),
        None => format!("{days:.3} days"),
    }
}

/// The OS lines of normal output (nothing without `-O`).
pub(crate) fn normal_lines(h: &HostResult, verbosity: u8) -> Vec<String> {
    let Some(info) = &h.os_info else { return Vec::new() };
    let mut out = Vec::new();
    for w in &info.warnings {
        out.push(format!("Warning: {}", neutralize(w)));
    }
    let guesses: Vec<&OsGuess> = h.os.iter().collect();
    if !guesses.is_empty() {
        let devices = distinct(guesses.iter().flat_map(|g| g.classes.iter().map(|c| c.device_type.as_str())));
        if !devices.is_empty() {
            out.push(format!("Device type: {}", neutralize(&devices.join("|"))));
        }
        if info.exact {
            out.push(format!("Running: {}", running(&guesses, false)));
        } else {
            out.push(format!("Running (JUST GUESSING): {}", running(&guesses, true)));
        }
        let cpes =
            distinct(guesses.iter().flat_map(|g| g.classes.iter().flat_map(|c| c.cpe.iter().map(String::as_str))));
        if !cpes.is_empty() {
            out.push(format!("OS CPE: {}", neutralize(&cpes.join(" "))));
        }
        if info.exact {
            let names = distinct(guesses.iter().map(|g| g.name.as_str()));
            out.push(format!("OS details: {}", neutralize(&names.join(", "))));
        } else {
            let list: Vec<String> =
                guesses.iter().map(|g| format!("{} ({}%)", neutralize(&g.name), g.accuracy)).collect();
            out.push(format!("Aggressive OS guesses: {}", list.join(", ")));
        }
    }
    if !info.exact {
        out.push(if guesses.is_empty() {
            "No OS matches for host".to_string()
        } else {
            "No exact OS matches for host (test conditions non-ideal).".to_string()
        });
    }
    if let (Some(fp), false) = (&info.fingerprint, info.exact) {
        out.push("OS fingerprint (RustMap's format; an entry's \"tests\", docs/os-detection.md):".to_string());
        let clean = neutralize(fp);
        let chars: Vec<char> = clean.chars().collect();
        out.extend(chars.chunks(80).map(|c| c.iter().collect::<String>()));
    }
    if verbosity > 0 {
        if let Some(s) = info.uptime_s {
            out.push(format!("Uptime guess: {}", uptime_words(s, info.last_boot_unix)));
        }
        if let Some(t) = &info.tcp_sequence {
            out.push(format!(
                "TCP Sequence Prediction: Difficulty={} ({})",
                t.index.unwrap_or(0),
                neutralize(&t.class)
            ));
        }
        if let Some(i) = &info.ipid_sequence {
            out.push(format!("IP ID Sequence Generation: {}", neutralize(&i.class)));
        }
    }
    out
}

fn attr(s: &str) -> String {
    quick_xml::escape::escape(neutralize(s).as_ref()).into_owned()
}

/// `<os>`, `<uptime>`, `<tcpsequence>`, `<ipidsequence>`, `<tcptssequence>` (nothing without
/// `-O`).
pub(crate) fn write_xml(o: &mut impl Write, h: &HostResult) -> io::Result<()> {
    let Some(info) = &h.os_info else { return Ok(()) };
    writeln!(o, "<os>")?;
    for p in &info.ports_used {
        writeln!(
            o,
            "<portused state=\"{}\" proto=\"{}\" portid=\"{}\"/>",
            p.state.as_str(),
            p.protocol.as_str(),
            p.port
        )?;
    }
    for (line, g) in h.os.iter().enumerate() {
        writeln!(o, "<osmatch name=\"{}\" accuracy=\"{}\" line=\"{}\">", attr(&g.name), g.accuracy, line + 1)?;
        for c in &g.classes {
            write!(
                o,
                "<osclass type=\"{}\" vendor=\"{}\" osfamily=\"{}\"",
                attr(&c.device_type),
                attr(&c.vendor),
                attr(&c.family)
            )?;
            if let Some(gen) = &c.generation {
                write!(o, " osgen=\"{}\"", attr(gen))?;
            }
            write!(o, " accuracy=\"{}\">", g.accuracy)?;
            for cpe in &c.cpe {
                write!(o, "<cpe>{}</cpe>", attr(cpe))?;
            }
            writeln!(o, "</osclass>")?;
        }
        writeln!(o, "</osmatch>")?;
    }
    if let Some(fp) = &info.fingerprint {
        writeln!(o, "<osfingerprint fingerprint=\"{}\"/>", attr(fp))?;
    }
    writeln!(o, "</os>")?;
    if let Some(s) = info.uptime_s {
        write!(o, "<uptime seconds=\"{s}\"")?;
        if let Some(b) = info.last_boot_unix {
            write!(o, " lastboot=\"{}\"", attr(&ctime(b)))?;
        }
        writeln!(o, "/>")?;
    }
    if let Some(t) = &info.tcp_sequence {
        writeln!(
            o,
            "<tcpsequence index=\"{}\" difficulty=\"{}\" values=\"{}\"/>",
            t.index.unwrap_or(0),
            attr(&t.class),
            attr(&t.values.join(","))
        )?;
    }
    if let Some(i) = &info.ipid_sequence {
        writeln!(o, "<ipidsequence class=\"{}\" values=\"{}\"/>", attr(&i.class), attr(&i.values.join(",")))?;
    }
    if let Some(t) = &info.tcp_ts_sequence {
        write!(o, "<tcptssequence class=\"{}\"", attr(&t.class))?;
        if !t.values.is_empty() {
            write!(o, " values=\"{}\"", attr(&t.values.join(",")))?;
        }
        writeln!(o, "/>")?;
    }
    Ok(())
}
