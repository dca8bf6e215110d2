//! `ssl-enum-ciphers` (issue 18's 54th script) against the namespace lab's TLS servers
//! (`tests/lab/lab.sh up`): nginx on h10:443 (nginx 1.22's default protocols with OpenSSL 3:
//! TLS 1.2 only), stunnel on h10:9443 (its defaults: TLS 1.2 and 1.3) and on h10:10443 (TLS 1.0
//! only, security level 0). Per TLS version, the suites RustMap finds
//! must be exactly the ones nmap's ssl-enum-ciphers finds, and the versions must be the ones
//! the servers are configured for.
//!
//! The scanner runs inside the lab's scanner namespace, which has no route out of the lab.
//! Without the lab these tests skip with a reason — except under `CI=true`, where they fail.

mod common;

use common::{in_lab, lab, lab_dir, run_ok};
use std::collections::{BTreeMap, BTreeSet};

const H10: &str = "198.18.0.10";

/// Version label -> suite names, from either scanner's normal output of ssl-enum-ciphers.
fn suites_by_version(out: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in out.lines() {
        let l = line.trim_start_matches(['|', '_']);
        let t = l.trim();
        if l.starts_with("   TLSv") || l.starts_with("   SSLv") {
            current = Some(t.trim_end_matches(':').trim().to_string());
        } else if let Some(v) = &current {
            if t.starts_with("TLS_") {
                // nmap 7.93 writes TLS 1.3 suites as TLS_AKE_WITH_<cipher>; IANA's names (ours)
                // are TLS_<cipher>.
                let name = t.split([' ', '(']).next().unwrap().replace("TLS_AKE_WITH_", "TLS_");
                map.entry(v.clone()).or_default().insert(name);
            }
        }
        if line.starts_with("|_") {
            current = None;
        }
    }
    map
}

fn block(out: &str) -> String {
    let start = out.find("| ssl-enum-ciphers:").unwrap_or_else(|| panic!("no ssl-enum-ciphers in:\n{out}"));
    let rest = &out[start..];
    let end = rest.find("\n|_").map(|i| rest[i + 1..].find('\n').map_or(rest.len(), |j| i + 1 + j)).unwrap();
    rest[..end].to_string()
}

#[test]
fn ssl_enum_ciphers_finds_the_suites_nmap_finds_per_version() {
    let Some(_lab) = lab() else { return };
    for (port, versions) in [("443", vec!["TLSv1.2"]), ("9443", vec!["TLSv1.2", "TLSv1.3"]), ("10443", vec!["TLSv1.0"])]
    {
        let ours = run_ok(&["-sT", "-sV", "-n", "--no-db", "-p", port, "--script", "ssl-enum-ciphers", H10]);
        let ours_block = block(&ours);
        let o = in_lab("nmap", &["-sT", "-sV", "-n", "-p", port, "--script", "ssl-enum-ciphers", H10]);
        let nmap = String::from_utf8_lossy(&o.stdout).into_owned();
        let (a, b) = (suites_by_version(&ours_block), suites_by_version(&nmap));
        assert_eq!(a, b, "port {port}: ours\n{ours_block}\nnmap\n{nmap}");
        assert_eq!(a.keys().collect::<Vec<_>>(), versions, "{ours_block}");
        if port == "10443" {
            // stunnel.conf: sslVersionMin = sslVersionMax = TLSv1
            let conf = std::fs::read_to_string(lab_dir().join("h10/tls/stunnel.conf")).unwrap();
            assert!(conf.contains("sslVersionMax = TLSv1\n"));
            assert!(ours_block.contains("deprecated protocol version (RFC 8996)"), "{ours_block}");
            assert!(ours_block.contains("least strength: C"), "{ours_block}");
        } else {
            assert!(ours_block.contains("least strength: B"), "RSA key transport is offered: {ours_block}");
        }
        for s in a.get("TLSv1.3").into_iter().flatten() {
            assert!(ours_block.contains(&format!("{s} - A")), "{ours_block}");
        }
    }
}
