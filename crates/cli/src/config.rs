//! Second stage of flag handling: turn parsed flags into a [`ScanConfig`]. This is a mapping
//! only: what a flag means for the scan, and whether values and combinations are valid, is
//! decided by the library (`rustmap::validate`), the same for every front-end. The few errors
//! here are about how flags are spelled (`-s` letters, `-T` names).

use crate::flags::Flags;
use crate::UsageError;
use rustmap::config::{OutputFile, OutputFormat, ReverseDns, ScanMode, TimeValue, TopologyFormat};
use rustmap::{ScanConfig, TimingTemplate};
use rustmap_model::{CloudAddresses, CloudProvider, ScanType};

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// `--stats-every` takes bare numbers as seconds, as nmap does (the guide's other times are
/// milliseconds): `10` becomes `10s` before the library reads it.
fn stats_every(s: &str) -> TimeValue {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        TimeValue(format!("{t}s"))
    } else {
        TimeValue(t.to_string())
    }
}

/// The `-s` groups: scan types, `-sV`, and the `-sn`/`-sL` modes.
/// Given on the command line, they replace the base's (a profile's) scan types and mode.
fn scan_letters(f: &Flags, c: &mut ScanConfig) -> anyhow::Result<()> {
    if f.scan.is_empty() && !f.sctp_cookie_echo {
        return Ok(());
    }
    c.scan_types.clear();
    let mut mode = ScanMode::Ports;
    for group in &f.scan {
        if group == "n" || group == "L" {
            let m = if group == "n" { ScanMode::Ping } else { ScanMode::List };
            if mode != ScanMode::Ports && mode != m {
                return Err(usage("-sn and -sL cannot be combined"));
            }
            mode = m;
            continue;
        }
        for ch in group.chars() {
            match ScanType::from_letter(ch) {
                Some(t) => c.scan_types.push(t),
                None if "nL".contains(ch) => {
                    return Err(usage(format!("-s{ch} stands alone (as -s{ch}), not inside -s{group}")))
                }
                None if ch == 'V' => c.service.enabled = true,
                // -sC: the default scripts (with --script too, both; see `build`).
                None if ch == 'C' => c.scripts.select = Some("default".into()),
                // Letters of other features (-sO, -sI) that are not built yet.
                None if "OI".contains(ch) => return Err(usage(format!("not yet supported: -s{ch}"))),
                None => return Err(usage(format!("invalid scan type letter {ch:?} in -s{group}"))),
            }
        }
    }
    if f.sctp_cookie_echo {
        c.scan_types.push(ScanType::SctpCookieEcho);
    }
    c.mode = mode;
    Ok(())
}

/// Map the flags onto a configuration, over `base` (a profile's settings, or the defaults):
/// what the command line gives replaces the base's value, what it does not give keeps it.
pub fn build(f: Flags, args_line: String, base: ScanConfig) -> anyhow::Result<ScanConfig> {
    let mut c = ScanConfig { args: args_line, ..base };
    scan_letters(&f, &mut c)?;
    c.targets.extend(f.targets);
    c.target_files.extend(f.input_list);
    c.exclude.extend(f.exclude);
    c.exclude_files.extend(f.exclude_file);

    // One port selection: any of -p, -F, --top-ports replaces the base's.
    if f.ports.is_some() || f.fast || f.top_ports.is_some() {
        c.ports.spec = f.ports;
        c.ports.fast = f.fast;
        c.ports.top = f.top_ports;
    }
    set(&mut c.ports.exclude, f.exclude_ports);
    c.ports.sequential |= f.sequential;
    if f.randomize_ports {
        c.ports.sequential = false;
    }

    if !f.ping.is_empty() {
        c.discovery.skip = false;
        c.discovery.probes.clear();
    }
    for p in &f.ping {
        match p.as_str() {
            "n" | "N" => c.discovery.skip = true,
            p => c.discovery.probes.push(format!("P{p}")),
        }
    }
    c.discovery.disable_arp |= f.disable_arp_ping;

    let t = &mut c.timing;
    if let Some(s) = &f.timing {
        t.template = Some(match s.parse::<u8>() {
            Ok(n) => n,
            Err(_) => TimingTemplate::parse(s)
                .map(|t| t as u8)
                .ok_or_else(|| usage(format!("invalid timing template -T{s} (use 0-5)")))?,
        });
    }
    let tv = |v: Option<String>| v.map(TimeValue);
    set(&mut t.timeout, tv(f.timeout));
    set(&mut t.max_retries, f.max_retries);
    set(&mut t.max_parallelism, f.max_parallelism);
    set(&mut t.min_parallelism, f.min_parallelism);
    set(&mut t.host_timeout, tv(f.host_timeout));
    set(&mut t.initial_rtt_timeout, tv(f.initial_rtt_timeout));
    set(&mut t.min_rtt_timeout, tv(f.min_rtt_timeout));
    set(&mut t.max_rtt_timeout, tv(f.max_rtt_timeout));
    set(&mut t.min_rate, f.min_rate);
    set(&mut t.max_rate, f.max_rate);
    set(&mut t.scan_delay, tv(f.scan_delay));
    set(&mut t.max_scan_delay, tv(f.max_scan_delay));
    set(&mut t.min_hostgroup, f.min_hostgroup);
    set(&mut t.max_hostgroup, f.max_hostgroup);
    if f.no_adaptive {
        t.adaptive = false;
    }

    let s = &mut c.service;
    // Only the spelling is checked here (a number); its range is the library's to judge.
    if let Some(v) = &f.version_intensity {
        s.intensity = Some(v.parse::<u8>().map_err(|_| usage(format!("--version-intensity must be 0-9, not {v:?}")))?);
    }
    s.light |= f.version_light;
    s.all |= f.version_all;
    s.probe_db.extend(f.probe_db);
    if f.no_quic {
        s.quic = false;
    }
    s.ja4s |= f.ja4s;

    let n = &mut c.names;
    if f.no_dns {
        n.reverse = ReverseDns::Never;
    } else if f.always_dns {
        n.reverse = ReverseDns::Always;
    }
    n.ipv6 |= f.ipv6;
    if let Some(l) = f.dns_servers {
        n.servers = l.split(',').map(|s| s.trim().to_string()).collect();
    }
    set(&mut n.timeout, tv(f.resolve_timeout));
    n.resolve_all |= f.resolve_all;
    n.system |= f.system_dns;

    set(&mut c.origin.interface, f.interface);
    set(&mut c.origin.source, f.source_address);
    set(&mut c.origin.proxy, f.proxy);
    c.origin.send_ip |= f.send_ip;
    let e = &mut c.evasion;
    set(&mut e.decoys, f.decoys);
    if f.fragment > 0 {
        e.fragment = f.fragment;
    }
    set(&mut e.mtu, f.mtu);
    set(&mut e.source_port, f.source_port);
    e.randomize_hosts |= f.randomize_hosts;
    set(&mut e.data_hex, f.data_hex);
    set(&mut e.data_string, f.data_string);
    set(&mut e.data_length, f.data_length);
    set(&mut e.ttl, f.ttl);
    set(&mut e.spoof_mac, f.spoof_mac);
    e.badsum |= f.badsum;
    set(&mut e.ip_options, f.ip_options);
    if f.privileged || f.unprivileged {
        c.origin.privileged = Some(f.privileged);
    }

    let o = &mut c.os;
    o.enabled |= f.os_detection || f.aggressive;
    o.limit |= f.osscan_limit;
    o.guess |= f.osscan_guess;
    set(&mut o.max_tries, f.max_os_tries);
    set(&mut o.db, f.os_db);
    o.passive |= f.passive_os;

    let p = &mut c.path;
    p.traceroute |= f.traceroute || f.aggressive;
    if let Some(t) = &f.topology {
        p.topology = Some(TopologyFormat::parse(t).ok_or_else(|| usage(format!("invalid --topology {t:?}")))?);
    }
    set(&mut p.topology_output, f.topology_output);
    p.mtu_discovery |= f.mtu_discovery;

    let sc = &mut c.scripts;
    // -A: -sV -O -sC --traceroute.
    if f.aggressive {
        c.service.enabled = true;
        if f.script.is_empty() {
            sc.select = Some(match sc.select.take() {
                Some(s) if s != "default" => format!("default,{s}"),
                _ => "default".into(),
            });
        }
    }
    if !f.script.is_empty() {
        let given = f.script.join(",");
        let with_default = f.aggressive || f.scan.iter().any(|g| g.contains('C'));
        sc.select = Some(if with_default { format!("default,{given}") } else { given });
    }
    if !f.script_args.is_empty() {
        sc.args = Some(f.script_args.join(","));
    }
    set(&mut sc.args_file, f.script_args_file);
    set(&mut sc.timeout, f.script_timeout.map(TimeValue));
    sc.trace |= f.script_trace;

    let v = &mut c.vuln;
    // "Only report CVEs with CVSS >= N" asks for the check.
    v.check |= f.vuln_check || f.vuln_min_cvss.is_some();
    if let Some(n) = &f.vuln_min_cvss {
        let score = n.trim().parse::<f64>().ok().filter(|s| (0.0..=10.0).contains(s));
        v.min_cvss =
            Some(score.ok_or_else(|| usage(format!("invalid --vuln-min-cvss {n:?}: a CVSS score from 0 to 10")))?);
    }
    set(&mut v.db, f.vuln_db);
    c.geoip.enabled |= f.geoip || f.geoip_db.is_some();
    set(&mut c.geoip.dir, f.geoip_db);
    for name in f.cloud.iter().filter(|n| !n.is_empty()) {
        let p = CloudProvider::from_name(name.trim())
            .ok_or_else(|| usage(format!("--cloud {name:?}: unknown provider (aws, azure or gcp)")))?;
        if !c.cloud.providers.contains(&p) {
            c.cloud.providers.push(p);
        }
    }
    c.cloud.running_only |= f.cloud_running_only;
    c.cloud.regions.extend(f.cloud_regions.into_iter().filter(|r| !r.is_empty()));
    c.cloud.tags.extend(f.cloud_tag);
    if f.cloud_public_only {
        c.cloud.addresses = CloudAddresses::PublicOnly;
    } else if f.cloud_private_only {
        c.cloud.addresses = CloudAddresses::PrivateOnly;
    }

    let o = &mut c.output;
    for (format, path) in [
        (OutputFormat::Normal, f.out_normal),
        (OutputFormat::Xml, f.out_xml),
        (OutputFormat::Json, f.out_json),
        (OutputFormat::Grepable, f.out_grepable),
        (OutputFormat::Yaml, f.out_yaml),
        (OutputFormat::Csv, f.out_csv),
        (OutputFormat::Cef, f.out_cef),
        (OutputFormat::Leef, f.out_leef),
        (OutputFormat::JsonLines, f.out_json_lines),
        (OutputFormat::Html, f.out_html),
    ] {
        if let Some(path) = path {
            o.files.push(OutputFile { format, path });
        }
    }
    set(&mut o.all_base, f.out_all);
    o.append |= f.append_output;
    // How this front-end presents the scan is its own, never a profile's.
    o.interactive = true;
    o.progress = !f.no_progress;
    set(&mut o.stats_every, f.stats_every.as_deref().map(stats_every));
    o.open_only |= f.open;
    o.reason |= f.reason;
    if f.verbose > 0 {
        o.verbosity = f.verbose;
    }
    if f.debug > 0 {
        o.debugging = f.debug;
    }
    o.diff |= f.diff;
    Ok(c)
}

/// A value the command line gave replaces the base's.
fn set<T>(slot: &mut Option<T>, given: Option<T>) {
    if given.is_some() {
        *slot = given;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> anyhow::Result<ScanConfig> {
        use clap::FromArgMatches;
        let argv = crate::argv::normalize(args.iter().map(|s| s.to_string()).collect());
        let m = crate::flags::command().try_get_matches_from(std::iter::once("rustmap".to_string()).chain(argv));
        build(Flags::from_arg_matches(&m.unwrap()).unwrap(), String::new(), ScanConfig::default())
    }

    #[test]
    fn flags_map_onto_the_config() {
        let c = config(&[
            "-sS",
            "-sU",
            "-sV",
            "-p-",
            "-T4",
            "--max-rate",
            "500",
            "-Pn",
            "-PS22,80",
            "--oX",
            "out.xml",
            "-n",
            "--stats-every",
            "10",
            "--host-timeout",
            "30s",
            "10.0.0.1",
        ])
        .unwrap();
        assert_eq!(c.scan_types, vec![ScanType::Syn, ScanType::Udp]);
        assert!(c.service.enabled);
        assert_eq!(c.ports.spec.as_deref(), Some("1-65535"));
        assert_eq!(c.timing.template, Some(4));
        assert_eq!(c.timing.max_rate, Some(500.0));
        assert!(c.discovery.skip);
        assert_eq!(c.discovery.probes, vec!["PS22,80".to_string()]);
        assert_eq!(c.output.files, vec![OutputFile { format: OutputFormat::Xml, path: "out.xml".into() }]);
        assert_eq!(c.names.reverse, ReverseDns::Never);
        assert_eq!(c.output.stats_every, Some(TimeValue("10s".into())));
        assert_eq!(c.timing.host_timeout, Some(TimeValue("30s".into())));
        assert_eq!(c.targets, vec!["10.0.0.1".to_string()]);
    }

    #[test]
    fn the_guides_spellings_give_the_same_config() {
        let nmap = config(&["-sT", "-Pn", "-sV", "-oX", "x.xml", "-T", "aggressive", "h"]).unwrap();
        let guide = config(&["--sT", "--Pn", "--sV", "--oX", "x.xml", "-T4", "h"]).unwrap();
        assert_eq!(nmap, guide);
        let grouped = config(&["-s", "TV", "--Pn", "--oX", "x.xml", "-T4", "h"]).unwrap();
        assert_eq!(grouped, guide);
    }

    #[test]
    fn spelling_errors_stay_here() {
        for (args, needle) in [
            (&["-sn", "-sL", "x"][..], "-sn and -sL"),
            (&["-s", "Sn", "x"][..], "stands alone"),
            (&["-sQ", "x"][..], "invalid scan type letter"),
            (&["-sO", "x"][..], "not yet supported: -sO"),
            (&["-Tfast", "x"][..], "invalid timing template"),
        ] {
            let e = config(args).unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some() && e.to_string().contains(needle), "{args:?}: {e}");
        }
    }
}
