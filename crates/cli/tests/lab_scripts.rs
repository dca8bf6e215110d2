//! Scripts against the namespace lab's real daemons (`tests/lab/lab.sh up`): `-sC` on the
//! services host checked against what the lab itself holds (its SSH host keys, its TLS
//! certificate, its page title) and against `nmap -sC` on the same ports; an NSE-style script
//! written from the NSE documentation, run unmodified; and scripts confined to the scan's
//! targets inside the lab.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out of the lab.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{in_lab, lab, lab_dir, lab_home, run_ok, rustmap};
use std::process::Command;

const H10: &str = "198.18.0.10";
const TITLE: &str = "RustMap lab h10.lab.test";

/// `ssh-keygen -l -E md5` of each of the lab host's public keys: (bits, bare hex, type).
fn lab_ssh_keys() -> Vec<(String, String, String)> {
    let dir = lab_dir().join("h10").join("ssh");
    let mut keys = Vec::new();
    for t in ["ecdsa", "ed25519", "rsa"] {
        let pubkey = dir.join(format!("ssh_host_{t}_key.pub"));
        let o = Command::new("ssh-keygen").args(["-l", "-E", "md5", "-f"]).arg(&pubkey).output().unwrap();
        let line = String::from_utf8_lossy(&o.stdout).into_owned();
        // "256 MD5:1e:69:... root@h10.lab.test (ECDSA)"
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 4, "ssh-keygen on {}: {line}", pubkey.display());
        let hex = f[1].trim_start_matches("MD5:").replace(':', "");
        keys.push((f[0].to_string(), hex, f[f.len() - 1].trim_matches(['(', ')']).to_string()));
    }
    keys
}

/// SHA-256 of the lab's TLS certificate as `openssl x509 -fingerprint` gives it, in nmap's
/// layout (groups of four lowercase hex digits).
fn lab_cert_sha256() -> String {
    let crt = lab_dir().join("h10").join("tls.crt");
    let o =
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&crt).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_lowercase();
    let hex: String = text.split('=').nth(1).unwrap_or("").trim().replace(':', "");
    assert_eq!(hex.len(), 64, "openssl on {}: {text}", crt.display());
    hex.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

#[test]
fn default_scripts_on_the_services_host_agree_with_the_lab_and_nmap() {
    let Some(_lab) = lab() else { return };
    let ports = "22,80,443,8443";
    let out = run_ok(&["-sT", "-sV", "-sC", "-n", "--no-db", "-p", ports, H10]);
    // ssh-hostkey: every key the daemon holds, fingerprints as ssh-keygen computes them.
    for (bits, hex, kind) in lab_ssh_keys() {
        let line = format!("{bits} {hex} ({kind})");
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    // http-title on plain and TLS ports, ssl-cert with the certificate's own fingerprint.
    assert!(out.contains("80/tcp   open  http     nginx"), "{out}");
    assert_eq!(out.matches(&format!("|_http-title: {TITLE}")).count(), 3, "{out}");
    assert_eq!(out.matches("| ssl-cert: Subject: commonName=h10.lab.test/organizationName=RustMap Lab").count(), 2);
    let sha = lab_cert_sha256();
    assert_eq!(out.matches(&format!("|_SHA-256: {sha}")).count(), 2, "want {sha} in:\n{out}");

    // nmap -sC on the same ports: the same title and the same fingerprints for the keys it
    // reports (nmap asks for ssh-rsa, which current OpenSSH refuses: it shows no RSA key).
    let o = in_lab("nmap", &["-sT", "-sV", "-sC", "-n", "-p", ports, H10]);
    let nmap = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "nmap: {nmap}{}", String::from_utf8_lossy(&o.stderr));
    assert!(nmap.contains(&format!("|_http-title: {TITLE}")), "{nmap}");
    // nmap's ssh-hostkey sometimes loses a key exchange to sshd's connection throttling
    // (MaxStartups): every key it does report must be one of ours, and it reports at least one.
    let ours: Vec<String> = lab_ssh_keys().into_iter().map(|(b, h, k)| format!("{b} {h} ({k})")).collect();
    let theirs: Vec<&str> = nmap
        .lines()
        .filter(|l| l.starts_with('|') && l.trim_end().ends_with(')') && l.contains(" ("))
        .filter_map(|l| l.get(1..).map(|x| x.trim_start_matches(['_', ' '])))
        .filter(|l| l.split(' ').nth(1).is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())))
        .collect();
    assert!(!theirs.is_empty(), "nmap's ssh-hostkey reported no key:\n{nmap}");
    for key in &theirs {
        assert!(ours.iter().any(|o| o == key.trim_end()), "nmap's key {key:?} is not one of ours {ours:?}:\n{out}");
    }
    assert!(nmap.contains("ssl-cert: Subject: commonName=h10.lab.test/organizationName=RustMap Lab"), "{nmap}");
}

#[test]
fn an_nse_style_script_runs_unmodified_against_the_lab() {
    let Some(_lab) = lab() else { return };
    // Written from the NSE API documentation (shortport.http, http.get, stdnse.output_table).
    let script = lab_home().join("lab-page-title.nse");
    std::fs::write(
        &script,
        r#"
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[Reports the title of a web server's root page.]]
author = "RustMap tests"
license = "Same as RustMap"
categories = {"safe", "discovery"}

portrule = shortport.http

action = function(host, port)
  local response = http.get(host, port, "/")
  if not response or not response.body then
    return nil
  end
  local title = string.match(response.body, "<[Tt][Ii][Tt][Ll][Ee][^>]*>([^<]*)</[Tt][Ii][Tt][Ll][Ee]>")
  local output = stdnse.output_table()
  output.title = title
  output.status = response.status
  return output
end
"#,
    )
    .unwrap();
    let out = run_ok(&["-sT", "-sV", "-n", "--no-db", "-p", "80,8080,443", "--script", script.to_str().unwrap(), H10]);
    assert_eq!(out.matches("| lab-page-title: ").count(), 3, "{out}");
    assert_eq!(out.matches(&format!("|   title: {TITLE}")).count(), 3, "{out}");
    assert_eq!(out.matches("|_  status: 200").count(), 3, "{out}");
}

#[test]
fn scripts_reach_only_the_scans_targets_in_the_lab() {
    let Some(_lab) = lab() else { return };
    // h11 (198.18.0.11) is up in the lab, but not a target of this scan: the script may not
    // reach it; the target itself it may.
    let script = lab_home().join("lab-reach.nse");
    std::fs::write(
        &script,
        r#"
local nmap = require "nmap"
description = [[Connects to the target, then to another lab host.]]
categories = {"safe"}
portrule = function(host, port) return port.number == 22 end
action = function(host, port)
  local s = nmap.new_socket()
  local ok = s:connect(host, port)
  local banner = ok and select(2, s:receive_lines(1)) or "no banner"
  s:close()
  local t = nmap.new_socket()
  t:connect("198.18.0.11", 22)
  return "reached another host with " .. banner
end
"#,
    )
    .unwrap();
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "22", "--script", script.to_str().unwrap(), "-d", H10]);
    assert!(out.contains("|_lab-reach: ERROR: Script execution failed (not-a-target"), "{out}");
    assert!(!out.contains("reached another host"), "{out}");
}

#[test]
fn banner_reads_real_daemons_and_hostile_bytes_stay_escaped() {
    let Some(_lab) = lab() else { return };
    // vsftpd's greeting on h10, redis (which says nothing first) shows nothing.
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "21,6379", "--script", "banner", H10]);
    assert!(out.contains("|_banner: 220 (vsFTPd 3.0.3)"), "{out}");
    assert_eq!(out.matches("banner:").count(), 1, "{out}");
    // h12:2223 sends terminal escapes, NULs, markup and invalid UTF-8: escaped in every format.
    let o = rustmap(&[
        "-sT",
        "-n",
        "--no-db",
        "-p",
        "2223",
        "--script",
        "banner",
        "--script-timeout",
        "8s",
        "-oX",
        "-",
        "198.18.0.12",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let xml = &o.stdout;
    assert!(String::from_utf8_lossy(xml).contains("<script id=\"banner\""), "{}", String::from_utf8_lossy(xml));
    assert!(
        !xml.iter().any(|b| *b == 0x1b || *b == 0 || *b == 0x07),
        "raw control bytes in {}",
        String::from_utf8_lossy(xml)
    );
    assert!(std::str::from_utf8(xml).is_ok(), "invalid UTF-8 reached the output");
}

#[test]
fn py_http_title_reads_the_labs_pages() {
    let Some(_lab) = lab() else { return };
    let out = run_ok(&["-sT", "-sV", "-n", "--no-db", "-p", "80,443", "--script", "py-http-title", H10]);
    assert_eq!(out.matches(&format!("|_  title: {TITLE}")).count(), 2, "{out}");
}

/// The WASM example (crates/script/wasm/wasm-banner.wat) against the lab's daemons: run by
/// `cargo test -p rustmap-cli --features wasm --test lab_scripts` (tests/run-all.sh does).
#[cfg(feature = "wasm")]
#[test]
fn the_wasm_example_reads_the_labs_banners() {
    let Some(_lab) = lab() else { return };
    let wat = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../script/wasm/wasm-banner.wat");
    let out = run_ok(&["-sT", "-n", "--no-db", "-p", "21,22", "--script", wat.to_str().unwrap(), H10]);
    assert!(out.contains("|_wasm-banner: 220 (vsFTPd 3.0.3)"), "{out}");
    assert!(out.contains("|_wasm-banner: SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"), "{out}");
}
