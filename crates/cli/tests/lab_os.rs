//! OS detection (`-O`, `-A`) in the namespace lab (`tests/lab/lab.sh up`): the Linux hosts h10
//! (one hop) and h20 (behind two routers, `tcp_timestamps=2`; its sysctls varied and restored
//! by one test), the smoltcp host h17, the lwIP host h18, the firewalled h11 (no closed port)
//! and the closed-only h13; and the capture tool (`--os-entry`) on a real capture.
//!
//! The scanner runs inside the lab's scanner namespace (no route out), as root, with `--no-db`.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{host, in_lab, json_scan, lab, prefix, rustmap};
use serde_json::Value;
use std::time::{Duration, Instant};

const H10: &str = "198.18.0.10";
const H11: &str = "198.18.0.11";
const H13: &str = "198.18.0.13";
const H14: &str = "198.18.0.14";
const H17: &str = "198.18.0.17";
const H18: &str = "198.18.0.18";
const H20: &str = "198.18.2.10";

fn best(h: &Value) -> (String, u64, String) {
    let m = &h["os"][0];
    (
        m["name"].as_str().unwrap_or("").to_string(),
        m["accuracy"].as_u64().unwrap_or(0),
        m["classes"][0]["family"].as_str().unwrap_or("").to_string(),
    )
}

fn machine_uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn linux_hosts_direct_and_behind_two_routers() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("os.xml");
    let gnmap = dir.path().join("os.gnmap");
    let v =
        json_scan(&["-O", "-p", "22,80,1", "--oX", xml.to_str().unwrap(), "--oG", gnmap.to_str().unwrap(), H10, H20]);
    for (addr, hops) in [(H10, 1), (H20, 3)] {
        let h = host(&v, addr);
        let (name, accuracy, family) = best(h);
        assert_eq!(family, "Linux", "{addr}: {name}");
        assert!(accuracy >= 85, "{addr}: {name} {accuracy}%");
        let info = &h["os_info"];
        assert_eq!(info["distance"], hops, "{addr}: {info}");
        assert_eq!(info["exact"], true, "{addr}");
        let used: Vec<(String, u64)> = info["ports_used"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["state"].as_str().unwrap().to_string(), p["port"].as_u64().unwrap()))
            .collect();
        assert!(used.contains(&("open".into(), 22)) || used.contains(&("open".into(), 80)), "{used:?}");
        assert!(used.contains(&("closed".into(), 1)), "{used:?}");
        assert_eq!(info["ipid_sequence"]["class"], "All zeros");
    }
    // h20 sends timestamps without per-connection offsets: its uptime is the machine's.
    let up = host(&v, H20)["os_info"]["uptime_s"].as_f64().expect("h20's uptime");
    let real = machine_uptime();
    assert!((up - real).abs() <= real * 0.1, "uptime {up} s, machine {real} s");
    assert!(host(&v, H20)["os_info"]["last_boot_unix"].is_i64());
    // h10 has Linux's default (random offsets): no uptime rather than a wrong one.
    assert!(host(&v, H10)["os_info"].get("uptime_s").is_none(), "{}", host(&v, H10)["os_info"]);

    // Grepable: nmap's OS, Seq Index and IP ID Seq fields on each host's ports line.
    let g = std::fs::read_to_string(&gnmap).unwrap();
    for addr in [H10, H20] {
        let line = g.lines().find(|l| l.starts_with(&format!("Host: {addr} ")) && l.contains("Ports:")).unwrap();
        assert!(line.contains("\tOS: Linux 4.10 - 6.x\tSeq Index: "), "{line}");
        assert!(line.ends_with("\tIP ID Seq: All zeros"), "{line}");
    }

    // XML: nmap's elements, valid against nmap's DTD.
    let text = std::fs::read_to_string(&xml).unwrap();
    for needle in [
        "<os>",
        "<portused state=\"open\" proto=\"tcp\"",
        "<osmatch name=\"Linux",
        "<osclass type=\"general purpose\" vendor=\"Linux\" osfamily=\"Linux\"",
        "<cpe>cpe:/o:linux:linux_kernel",
        "<uptime seconds=",
        "<distance value=\"3\"/>",
        "<tcpsequence index=",
        "<ipidsequence class=\"All zeros\"",
        "<tcptssequence class=\"1000HZ\"",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let v = std::process::Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(v.status.success(), "xmllint: {}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn normal_output_reads_as_nmaps() {
    let Some(_lab) = lab() else { return };
    let o = rustmap(&["--no-db", "--no-progress", "-O", "-v", "-p", "22,1", H20]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "Device type: general purpose",
        "Running: Linux 4.X|5.X|6.X",
        "OS CPE: cpe:/o:linux:linux_kernel:4",
        "OS details: Linux",
        "Uptime guess: ",
        "Network Distance: 3 hops",
        "TCP Sequence Prediction: Difficulty=",
        "IP ID Sequence Generation: All zeros",
    ] {
        assert!(out.contains(needle), "{needle} not in\n{out}");
    }
}

#[test]
fn hosts_without_an_open_or_a_closed_port_warn_and_finish() {
    let Some(_lab) = lab() else { return };
    let t0 = Instant::now();
    // h11 drops everything but 22 and 80 (no closed port); h13 has nothing open.
    let v = json_scan(&["-O", "-p", "22,80,1,2", H11, H13]);
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    for addr in [H11, H13] {
        let info = &host(&v, addr)["os_info"];
        let warnings = info["warnings"].as_array().unwrap_or_else(|| panic!("{addr}: {info}"));
        assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("no open and closed TCP port")), "{addr}: {info}");
        // Whatever is guessed is Linux, and never called a match.
        assert_eq!(info["exact"], false, "{addr}");
        for m in host(&v, addr)["os"].as_array().into_iter().flatten() {
            assert_eq!(m["classes"][0]["family"], "Linux", "{addr}: {m}");
        }
    }
    // --osscan-limit leaves them out altogether.
    let v = json_scan(&["-O", "--osscan-limit", "-p", "22,80,1,2", H11, H13]);
    for addr in [H11, H13] {
        assert!(host(&v, addr).get("os_info").is_none(), "{addr}");
    }
}

#[test]
fn aggressive_is_sv_o_sc_and_traceroute() {
    let Some(_lab) = lab() else { return };
    let v = json_scan(&["-A", "-p", "22,80,1", H20]);
    let h = host(&v, H20);
    assert_eq!(best(h).2, "Linux");
    assert!(!h["trace"].as_array().unwrap().is_empty(), "traceroute ran");
    let ssh = h["ports"].as_array().unwrap().iter().find(|p| p["port"] == 22).unwrap();
    assert_eq!(ssh["service"]["product"], "OpenSSH", "{ssh}");
    let http = h["ports"].as_array().unwrap().iter().find(|p| p["port"] == 80).unwrap();
    assert!(http["scripts"].as_array().is_some_and(|s| s.iter().any(|s| s["id"] == "http-title")), "{http}");
}

#[test]
fn a_bad_os_database_is_refused_before_anything_is_sent() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bad-os.json");
    std::fs::write(&db, "{\"format\":\"rustmap-os-db\",\"version\":1,\"entries\":[{\"id\":\"x y\"}]}").unwrap();
    let out = dir.path().join("out.xml");
    let o =
        rustmap(&["--no-db", "-O", "--os-db", db.to_str().unwrap(), "-p", "22", "--oX", out.to_str().unwrap(), H10]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad-os.json"), "{err}");
    assert!(!out.exists(), "no output file for a refused scan");
}

#[test]
fn lwip_smoltcp_and_linux_are_told_apart_ten_times_out_of_ten() {
    let Some(_lab) = lab() else { return };
    // (address, name prefix of the best match, its family, vendors and families never guessed for it)
    let want: [(&str, &str, &str, &[&str]); 3] = [
        (H10, "Linux", "Linux", &["embedded"]),
        (H17, "smoltcp", "embedded", &["Linux", "lwIP"]),
        (H18, "lwIP", "embedded", &["Linux", "smoltcp"]),
    ];
    for run in 1..=10 {
        let v = json_scan(&["-O", "-p", "22,80,79", H10, H17, H18]);
        for (addr, prefix, family, never) in want {
            let h = host(&v, addr);
            let (name, acc, fam) = best(h);
            assert!(name.starts_with(prefix) && fam == family && acc >= 85, "run {run}: {addr} {name} {acc}% {h}");
            let others: Vec<&str> = h["os"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|m| [m["classes"][0]["family"].as_str(), m["classes"][0]["vendor"].as_str()])
                .flatten()
                .collect();
            assert!(never.iter().all(|n| !others.contains(n)), "run {run}: {addr} also guessed one of {never:?}: {h}");
            // The ICMP rate-limit burst: the user-space stacks answer all eight; Linux's per-peer
            // bucket (six tokens, one a second, U1 took one) at most six — and where the last
            // run drained it, U1 goes unanswered and the test is left out.
            let fp: Value = serde_json::from_str(h["os_info"]["fingerprint"].as_str().unwrap()).unwrap();
            match (addr, fp["u1.burst"].as_i64()) {
                (H10, burst) => assert!(burst.is_none_or(|b| b <= 6), "run {run}: h10 burst {burst:?}"),
                (_, burst) => assert_eq!(burst, Some(8), "run {run}: {addr}"),
            }
        }
    }
}

/// The SYN scan's SYN-ACKs are the passive tests: each stack's own TTL, DF bit and options to
/// the port scan's MSS-only SYN, as its SYN-ACK had them on the wire (tshark on h18's side
/// checks lwIP's); a connect scan sees no headers, and has none.
#[test]
fn the_syn_scans_syn_acks_are_the_passive_tests() {
    let Some(_lab) = lab() else { return };
    let mut cap = common::Capture::start("h18");
    let v = json_scan(&["-O", "-sS", "-p", "22,80,79", H10, H17, H18]);
    let synacks = "ip.src == 198.18.0.18 && tcp.flags.syn == 1 && tcp.flags.ack == 1";
    let wire = cap.fields(synacks, &["ip.ttl", "ip.flags.df", "tcp.window_size_value"]);
    for (addr, ttl, df) in [(H10, 64, true), (H17, 64, true), (H18, 255, false)] {
        let h = host(&v, addr);
        let fp: Value = serde_json::from_str(h["os_info"]["fingerprint"].as_str().unwrap()).unwrap();
        assert_eq!(fp["passive.ttl"], ttl, "{addr}: {fp}");
        assert_eq!(fp["passive.df"], df, "{addr}: {fp}");
        assert_eq!(fp["passive.opts"], "mss", "{addr}: {fp}");
        if addr == H18 {
            let first = wire.first().unwrap_or_else(|| panic!("no SYN-ACK seen on h18: {wire:?}"));
            assert_eq!(first, &["255", "0", &fp["passive.win"].to_string()], "{fp}");
        }
    }
    let v = json_scan(&["-O", "-sT", "-p", "22,80,79", H10]);
    let fp: Value = serde_json::from_str(host(&v, H10)["os_info"]["fingerprint"].as_str().unwrap()).unwrap();
    assert!(fp.get("passive.ttl").is_none(), "a connect scan has no SYN-ACK to keep: {fp}");
}

/// `--passive-os`: guesses from the SYN scan's SYN-ACKs alone, no OS probe on the wire (tshark
/// on h10 sees only the port scan's SYNs); lwIP from its TTL of 255 and DF clear, Linux's family
/// first for h10, never an exact match. An IPv6 host under `-O` gets the same passive guesses.
#[test]
fn passive_os_guesses_from_the_syn_scan_alone() {
    let Some(_lab) = lab() else { return };
    let mut cap = common::Capture::start("h10");
    let v = json_scan(&["-n", "--passive-os", "-p", "22,80,79", H10, H17, H18]);
    let from_us =
        cap.fields("ip.dst == 198.18.0.10", &["ip.proto", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset"]);
    // The port scan's SYNs, and the kernel's resets to the SYN-ACKs: no ICMP, UDP or odd segment.
    assert!(!from_us.is_empty());
    for f in &from_us {
        let syn = f[0] == "6" && f[1] == "1" && f[2] == "0";
        let rst = f[0] == "6" && f[3] == "1";
        assert!(syn || rst, "a packet that is not the port scan's: {f:?} in {from_us:?}");
    }
    let syns = from_us.iter().filter(|f| f[1] == "1").count();
    assert!((3..=6).contains(&syns), "three ports, a retry at most each: {syns}");
    for (addr, family) in [(H10, "Linux"), (H18, "embedded")] {
        let h = host(&v, addr);
        let (name, acc, fam) = best(h);
        assert_eq!(fam, family, "{addr}: {name} {acc}% {h}");
        assert!((50..95).contains(&acc), "{addr}: {name} {acc}%");
        assert_eq!(h["os_info"]["exact"], false, "{addr}");
        let warnings = h["os_info"]["warnings"].to_string();
        assert!(warnings.contains("--passive-os"), "{warnings}");
        assert_eq!(h["os_info"]["ports_used"].as_array().unwrap().len(), 1, "the open port only: {h}");
    }
    assert!(best(host(&v, H18)).0.starts_with("lwIP"));

    let v = json_scan(&["-n", "-O", "-sS", "-p", "22,80,9", "fd00:18::10"]);
    let h = host(&v, "fd00:18::10");
    let warnings = h["os_info"]["warnings"].to_string();
    assert!(warnings.contains("SYN-ACKs alone"), "{warnings}");
    let fp: Value = serde_json::from_str(h["os_info"]["fingerprint"].as_str().unwrap()).unwrap();
    assert_eq!(fp["passive.ttl"], 64, "{fp}");
    assert!(fp.get("passive.df").is_none(), "IPv6 has no DF bit: {fp}");
    assert_eq!(best(h).2, "Linux", "{h}");
}

/// What `--passive-os` cannot work with is refused, naming why, before anything is sent.
#[test]
fn passive_os_without_a_syn_scan_is_refused() {
    let Some(_lab) = lab() else { return };
    for (args, says) in [
        (&["--passive-os", "-sT", "-p", "22", H10][..], "-sS"),
        (&["--passive-os", "-sS", "--max-os-tries", "3", "-p", "22", H10][..], "--max-os-tries 3"),
        (&["--passive-os", "-sn", H10][..], "-sn"),
    ] {
        let o = rustmap(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says) && o.stdout.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn a_capture_becomes_an_entry_that_matches_its_host() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("h18.json");
    let o = rustmap(&["--no-db", "-O", "-p", "80,1", "-oJ", report.to_str().unwrap(), H18, H10]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The printed fingerprint of a host no entry matches (h18 against a database of only h10's
    // entry) is the tool's other input: copied from the normal output as it stands.
    let linux_only = dir.path().join("linux-only.json");
    let e = rustmap(&[
        "--os-entry",
        report.to_str().unwrap(),
        "--os-entry-host",
        H10,
        "--os-entry-name",
        "Lab Linux",
        "--os-entry-class",
        "Linux|Linux|6.X|general purpose",
    ]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    std::fs::write(&linux_only, &e.stdout).unwrap();
    let o = rustmap(&["--no-db", "-O", "--os-db", linux_only.to_str().unwrap(), "-p", "80,1", H18]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("No OS matches for host"), "{text}");
    let printed: String = text
        .lines()
        .skip_while(|l| !l.starts_with("OS fingerprint"))
        .skip(1)
        .take_while(|l| !l.starts_with("Network Distance"))
        .collect::<Vec<_>>()
        .join("\n");
    let fp_file = dir.path().join("printed.txt");
    std::fs::write(&fp_file, &printed).unwrap();
    for input in [&report, &fp_file] {
        let mut args = vec!["--os-entry", input.to_str().unwrap()];
        if input == &report {
            args.extend(["--os-entry-host", H18]);
        }
        args.extend(["--os-entry-name", "Captured lwIP", "--os-entry-class", "lwIP|embedded|2.X|specialized"]);
        let e = rustmap(&args);
        assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
        let db = dir.path().join("captured.json");
        std::fs::write(&db, &e.stdout).unwrap();
        let v = json_scan(&["-O", "--os-db", db.to_str().unwrap(), "-p", "80,1", H18, H10]);
        let (name, acc, _) = best(host(&v, H18));
        assert!(name == "Captured lwIP" && acc >= 90, "{input:?}: {name} {acc}%");
        assert!(host(&v, H10)["os"].as_array().is_none_or(|m| m.is_empty()), "h10 matched the lwIP capture: {v}");
    }
    // A file that is no capture is named, with a non-zero exit and nothing on stdout
    let e =
        rustmap(&["--os-entry", linux_only.to_str().unwrap(), "--os-entry-name", "x", "--os-entry-class", "a|b||c"]);
    assert!(!e.status.success() && e.stdout.is_empty());
    assert!(String::from_utf8_lossy(&e.stderr).contains("linux-only.json"), "{}", String::from_utf8_lossy(&e.stderr));
}

#[test]
fn service_and_script_hints_are_scored_and_listed() {
    let Some(_lab) = lab() else { return };
    // h14's Samba announces "Windows 6.1 (Samba 4.17.12-Debian)": a Linux hint, never Windows;
    // h10's OpenSSH banner says Debian. The script runs after the probes: the host is scored again.
    let v = json_scan(&["-O", "-sV", "-p", "445,1,22", "--script", "smb-os-discovery", H14, H10]);
    let hints = |h: &Value| -> Vec<String> {
        h["os_info"]["hints"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let h14 = host(&v, H14);
    assert!(h14["scripts"].to_string().contains("Samba"), "{h14}");
    assert_eq!(hints(h14), ["smb-os-discovery: Linux"], "{h14}");
    let (name, acc, family) = best(h14);
    assert!(family == "Linux" && acc >= 95, "{name} {acc}%");
    let h10 = host(&v, H10);
    assert!(hints(h10).contains(&"22/tcp service: Linux".to_string()), "{h10}");
    // -v lists them
    let o = rustmap(&["--no-db", "-v", "-O", "-p", "445,1", "--script", "smb-os-discovery", H14]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("OS hints: smb-os-discovery: Linux"), "{text}");
}

/// Sets sysctls in h20's namespace, and puts the lab's values back when dropped (pass or fail).
struct H20Sysctls;

impl H20Sysctls {
    const LAB: [&'static str; 6] = [
        "net.ipv4.tcp_sack=1",
        "net.ipv4.tcp_window_scaling=1",
        "net.ipv4.tcp_timestamps=2",
        "net.ipv4.tcp_syncookies=1",
        "net.ipv4.tcp_ecn=2",
        "net.ipv4.ip_default_ttl=64",
    ];

    fn set(values: &[&str]) {
        let ns = format!("{}-h20", prefix());
        let mut args = vec!["netns", "exec", ns.as_str(), "sysctl", "-qw"];
        args.extend(values);
        let o = std::process::Command::new("ip").args(&args).output().unwrap();
        assert!(o.status.success(), "sysctl {values:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for H20Sysctls {
    fn drop(&mut self) {
        H20Sysctls::set(&H20Sysctls::LAB);
    }
}

#[test]
fn linux_stays_linux_under_other_sysctls() {
    let Some(_lab) = lab() else { return };
    let _restore = H20Sysctls;
    // Each turns off or changes what a Linux host's answers carry.
    let variants: [&[&str]; 7] = [
        &["net.ipv4.tcp_sack=0"],
        &["net.ipv4.tcp_window_scaling=0"],
        &["net.ipv4.tcp_timestamps=0"],
        &["net.ipv4.tcp_ecn=0"],
        &["net.ipv4.tcp_syncookies=2", "net.ipv4.tcp_timestamps=0"],
        &["net.ipv4.tcp_sack=0", "net.ipv4.tcp_window_scaling=0", "net.ipv4.tcp_timestamps=0"],
        &["net.ipv4.ip_default_ttl=128"],
    ];
    for variant in variants {
        H20Sysctls::set(&H20Sysctls::LAB);
        H20Sysctls::set(variant);
        let v = json_scan(&["-O", "-p", "22,1", H20]);
        let h = host(&v, H20);
        let (name, acc, family) = best(h);
        assert!(family == "Linux" && acc >= 85, "{variant:?}: {name} {acc}% {}", h["os_info"]);
        // Hops are still counted from the initial TTL the answers show (128 here for the last).
        assert_eq!(h["os_info"]["distance"], 3, "{variant:?}");
    }
    // in_lab is the scanner's namespace: the variants never touched it.
    let o = in_lab("sysctl", &["-n", "net.ipv4.tcp_sack"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "1");
}
