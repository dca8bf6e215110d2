//! The OS detection section of a host (`-O`) in normal output and XML, as nmap lays them out.
//!
//! Normal output: `Device type`, `Running` (`Running (JUST GUESSING)` with accuracies when no
//! entry matched exactly), `OS CPE`, `OS details` or `Aggressive OS guesses` with `No exact OS
//! matches for host`, the probes' warnings, the fingerprint in RustMap's format when nothing
//! matched exactly, then `Uptime guess` (`-v`), `Network Distance`, and with `-v` `TCP Sequence
//! Prediction`, `IP ID Sequence Generation` and which tests the best guess agreed on.
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
    if let (true, Some(s)) = (verbosity > 0, info.uptime_s) {
        out.push(format!("Uptime guess: {}", uptime_words(s, info.last_boot_unix)));
    }
    // Here, as nmap places it (the way section leaves it out when OS detection ran).
    if let Some(d) = crate::common::distance(h) {
        out.push(format!("Network Distance: {d} hop{}", if d == 1 { "" } else { "s" }));
    }
    if verbosity > 0 {
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
    // -v: which tests the best guess agreed on and which it did not.
    if let (true, Some(agreed), Some(best)) = (verbosity > 0, info.best_agreed, guesses.first()) {
        let differs = if info.best_differs.is_empty() {
            "none differ".to_string()
        } else {
            format!("differ: {}", neutralize(&info.best_differs.join("; ")))
        };
        out.push(format!("OS match tests ({}): {agreed} agree, {differs}", neutralize(&best.name)));
    }
    // -v: what the services and scripts said, as scored beside the tests.
    if verbosity > 0 && !info.hints.is_empty() {
        out.push(format!("OS hints: {}", neutralize(&info.hints.join("; "))));
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
    if let (Some(fp), false) = (&info.fingerprint, info.exact) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::{HostStatus, OsClass, OsInfo, Reason, SequenceInfo};

    fn class(vendor: &str, family: &str, gen: &str, cpe: &str) -> OsClass {
        OsClass {
            vendor: vendor.into(),
            family: family.into(),
            generation: Some(gen.into()),
            device_type: "general purpose".into(),
            cpe: vec![cpe.into()],
        }
    }

    fn host(exact: bool) -> HostResult {
        let mut h = HostResult::new("198.18.0.10".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        h.os = vec![
            OsGuess {
                name: "Linux 4.10 - 6.x".into(),
                accuracy: if exact { 98 } else { 91 },
                classes: vec![
                    class("Linux", "Linux", "5.X", "cpe:/o:linux:linux_kernel:5"),
                    class("Linux", "Linux", "6.X", "cpe:/o:linux:linux_kernel:6"),
                ],
            },
            OsGuess {
                name: "FreeBSD 13.x - 14.x".into(),
                accuracy: 89,
                classes: vec![class("FreeBSD", "FreeBSD", "13.X", "cpe:/o:freebsd:freebsd:13")],
            },
        ];
        if exact {
            h.os.truncate(1);
        }
        h.os_info = Some(Box::new(OsInfo {
            exact,
            distance: Some(3),
            uptime_s: Some(86_400 * 2),
            last_boot_unix: Some(1_700_000_000),
            tcp_sequence: Some(SequenceInfo {
                class: "Good luck!".into(),
                index: Some(259),
                values: vec!["1A".into()],
            }),
            ipid_sequence: Some(SequenceInfo { class: "All zeros".into(), index: None, values: vec!["0".into()] }),
            fingerprint: (!exact).then(|| "{\"ttl\":64}".to_string()),
            best_agreed: Some(70),
            best_differs: if exact { vec![] } else { vec!["ecn.ece: expected true, seen false".into()] },
            hints: if exact { vec!["22/tcp service: Linux".into()] } else { vec![] },
            ..OsInfo::default()
        }));
        h
    }

    #[test]
    fn an_exact_match_reads_as_nmaps() {
        let lines = normal_lines(&host(true), 1);
        assert_eq!(lines[0], "Device type: general purpose");
        assert_eq!(lines[1], "Running: Linux 5.X|6.X");
        assert_eq!(lines[2], "OS CPE: cpe:/o:linux:linux_kernel:5 cpe:/o:linux:linux_kernel:6");
        assert_eq!(lines[3], "OS details: Linux 4.10 - 6.x");
        assert!(lines[4].starts_with("Uptime guess: 2.000 days (since "), "{}", lines[4]);
        assert_eq!(lines[5], "Network Distance: 3 hops");
        assert_eq!(lines[6], "TCP Sequence Prediction: Difficulty=259 (Good luck!)");
        assert_eq!(lines[7], "IP ID Sequence Generation: All zeros");
        assert_eq!(lines[8], "OS match tests (Linux 4.10 - 6.x): 70 agree, none differ");
        assert_eq!(lines[9], "OS hints: 22/tcp service: Linux");
        assert_eq!(lines.len(), 10);
        // Without -v, no uptime or sequences.
        assert_eq!(normal_lines(&host(true), 0).len(), 5);
    }

    #[test]
    fn guesses_say_so_and_show_the_fingerprint() {
        let lines = normal_lines(&host(false), 0);
        assert_eq!(lines[1], "Running (JUST GUESSING): Linux 5.X|6.X (91%), FreeBSD 13.X (89%)");
        assert_eq!(lines[3], "Aggressive OS guesses: Linux 4.10 - 6.x (91%), FreeBSD 13.x - 14.x (89%)");
        assert_eq!(lines[4], "No exact OS matches for host (test conditions non-ideal).");
        assert_eq!(lines[lines.len() - 2], "{\"ttl\":64}");
        assert_eq!(lines.last().map(String::as_str), Some("Network Distance: 3 hops"));
        let v = normal_lines(&host(false), 1);
        assert_eq!(
            v.last().map(String::as_str),
            Some("OS match tests (Linux 4.10 - 6.x): 70 agree, differ: ecn.ece: expected true, seen false")
        );
    }

    #[test]
    fn xml_elements_and_escaping() {
        let mut h = host(false);
        h.os[0].name = "Linux <6> & \"co\"".into();
        let mut out = Vec::new();
        write_xml(&mut out, &h).unwrap();
        let x = String::from_utf8(out).unwrap();
        assert!(
            x.contains("<osmatch name=\"Linux &lt;6&gt; &amp; &quot;co&quot;\" accuracy=\"91\" line=\"1\">"),
            "{x}"
        );
        assert!(x.contains("<osclass type=\"general purpose\" vendor=\"Linux\" osfamily=\"Linux\" osgen=\"5.X\" accuracy=\"91\"><cpe>cpe:/o:linux:linux_kernel:5</cpe></osclass>"), "{x}");
        assert!(x.contains("<osfingerprint fingerprint=\"{&quot;ttl&quot;:64}\"/>"), "{x}");
        assert!(x.contains("<uptime seconds=\"172800\" lastboot=\""), "{x}");
        assert!(x.contains("<tcpsequence index=\"259\" difficulty=\"Good luck!\" values=\"1A\"/>"), "{x}");
        assert!(x.contains("<ipidsequence class=\"All zeros\" values=\"0\"/>"), "{x}");
        // No -O: nothing.
        let mut out = Vec::new();
        write_xml(&mut out, &HostResult::new("198.18.0.1".parse().unwrap(), HostStatus::Up, Reason::SynAck)).unwrap();
        assert!(out.is_empty());
    }
}
