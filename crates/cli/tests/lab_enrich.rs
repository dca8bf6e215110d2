//! `--vuln-check`, `--vuln-update` and `--geoip` end to end: scans of the lab's real daemons
//! (`tests/lab/lab.sh`), a CVE database updated from a loopback NVD/KEV server, and GeoIP
//! databases built here for the lab's range.

mod common;

use common::{host, json_scan, lab, rustmap, script_text};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The port's CVE ids, in order.
fn cve_ids(port: &Value) -> Vec<String> {
    port["vulnerabilities"]
        .as_array()
        .map(|a| a.iter().map(|v| v["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn port(h: &Value, n: u64) -> &Value {
    h["ports"].as_array().unwrap().iter().find(|p| p["port"] == n).unwrap_or_else(|| panic!("no port {n} in {h}"))
}

#[test]
fn vuln_check_lists_cves_of_the_lab_services_versions_with_scores() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    // No database file there: the bundled seed rules alone, whatever the lab HOME holds.
    let db = dir.path().join("none.db");
    let db = db.to_str().unwrap();
    let v = json_scan(&["-sT", "-p", "21,22,6379", "--vuln-check", "--vuln-db", db, "198.18.0.10"]);
    let h = host(&v, "198.18.0.10");
    let ssh = port(h, 22);
    let version = ssh["service"]["version"].as_str().unwrap();
    assert!(version.starts_with("9.2p1"), "{ssh}");
    let ids = cve_ids(ssh);
    // OpenSSH 9.2p1: fixed in 9.3p2 (CVE-2023-38408, 9.8) and 9.8p1 (CVE-2024-6387).
    for want in ["CVE-2023-38408", "CVE-2024-6387"] {
        assert!(ids.iter().any(|i| i == want), "{want} missing from {ids:?}");
    }
    let scores: Vec<f64> =
        ssh["vulnerabilities"].as_array().unwrap().iter().map(|v| v["cvss"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "highest first: {scores:?}");
    assert!(scores.iter().all(|s| (0.0..=10.0).contains(s)));
    let list = ssh["vulnerabilities"].as_array().unwrap();
    let first = list.iter().find(|v| v["id"] == "CVE-2023-38408").unwrap();
    assert_eq!(first["cvss"].as_f64(), Some(9.8));
    assert_eq!(first["severity"], "critical");
    assert_eq!(list[0]["cvss"].as_f64(), Some(9.8), "highest first");
    // Debian's package carries fixes the upstream version number does not show.
    assert_eq!(first["backport"], true, "{first}");
    assert!(!cve_ids(port(h, 21)).is_empty(), "vsftpd 3.0.3 has known CVEs: {}", port(h, 21));
    assert!(!cve_ids(port(h, 6379)).is_empty(), "redis 7.0.15 has known CVEs: {}", port(h, 6379));

    // --vuln-min-cvss 9: only those scoring 9 or more; normal output shows the vulners block.
    let o = rustmap(&["-sT", "-p", "21,22,6379", "--vuln-min-cvss", "9", "--vuln-db", db, "--no-db", "198.18.0.10"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let block = script_text(&out, "vulners");
    assert!(block.contains("cpe:/a:openbsd:openssh:9.2p1") && block.contains("CVE-2023-38408"), "{block}");
    assert!(!block.contains("CVE-2024-6387"), "8.1 is under 9: {block}");
    assert!(block.contains("back-port"), "{block}");
    let v = json_scan(&["-sT", "-p", "21,22,6379", "--vuln-min-cvss", "9", "--vuln-db", db, "198.18.0.10"]);
    let all: Vec<f64> = host(&v, "198.18.0.10")["ports"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["vulnerabilities"].as_array().cloned().unwrap_or_default())
        .map(|v| v["cvss"].as_f64().unwrap())
        .collect();
    assert!(!all.is_empty() && all.iter().all(|s| *s >= 9.0), "{all:?}");

    // The history keeps them with the host.
    let hist = dir.path().join("history.db");
    let o =
        rustmap(&["-sT", "-p", "22", "--vuln-check", "--vuln-db", db, "--db", hist.to_str().unwrap(), "198.18.0.10"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stored = stored_host(&hist);
    assert!(cve_ids(&stored["ports"][0]).contains(&"CVE-2023-38408".to_string()), "{stored}");
}

/// The one host of the one scan stored in history database `db`.
fn stored_host(db: &Path) -> Value {
    let c = rusqlite::Connection::open(db).unwrap();
    let json: String = c.query_row("SELECT result FROM hosts", [], |r| r.get(0)).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn vuln_update_from_a_loopback_feed_is_idempotent_and_used_by_scans() {
    let server = rustmap_vuln::fixture::FixtureServer::start(rustmap_vuln::fixture::FixtureOptions {
        page_size: 2,
        cves: 5,
        fail_first_with_429: true,
        fail_once_with_503: false,
    })
    .expect("fixture server on 127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vuln.db");
    let update = || {
        Command::new(env!("CARGO_BIN_EXE_rustmap"))
            .args(["--vuln-update", "--vuln-db", db.to_str().unwrap()])
            .args(["--vuln-nvd-url", &server.nvd_url, "--vuln-kev-url", &server.kev_url])
            .env("HOME", dir.path())
            .env_remove("NVD_API_KEY")
            .output()
            .unwrap()
    };
    let first = update();
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(first.status.success(), "{text}{}", String::from_utf8_lossy(&first.stderr));
    assert!(text.contains("5 CVEs new"), "{text}");
    let again = update();
    let text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{text}");
    assert!(text.contains("0 CVEs new, 0 changed; KEV: 0 new"), "{text}");

    // A bad URL is a clear error naming it; the database is left as it was.
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(["--vuln-update", "--vuln-db", db.to_str().unwrap(), "--vuln-nvd-url", "http://127.0.0.1:9/nvd"])
        .args(["--vuln-kev-url", &server.kev_url])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
    let after = update();
    assert!(String::from_utf8_lossy(&after.stdout).contains("0 CVEs new"));

    // The fixture's OpenSSH CVE now shows on the lab's OpenSSH.
    let Some(_lab) = lab() else { return };
    let v = json_scan(&["-sT", "-p", "22", "--vuln-check", "--vuln-db", db.to_str().unwrap(), "198.18.0.10"]);
    let ids = cve_ids(port(host(&v, "198.18.0.10"), 22));
    assert!(ids.iter().any(|i| i.starts_with("CVE-2099-")), "{ids:?}");
    assert!(ids.iter().any(|i| i == "CVE-2023-38408"), "the seed rules stay: {ids:?}");
}

#[test]
fn vuln_flags_are_checked() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rustmap")).args(args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run(&["--vuln-min-cvss", "11", "-p", "1", "127.0.0.1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--vuln-min-cvss") && err.contains("11"), "{err}");
    let (code, err) = run(&["--vuln-min-cvss", "high", "-p", "1", "127.0.0.1"]);
    assert!(code == Some(2) && err.contains("high"), "{err}");
    let (code, err) = run(&["--vuln-db", "/tmp/x.db", "-p", "1", "127.0.0.1"]);
    assert!(code == Some(2) && err.contains("--vuln-db needs"), "{err}");
    let (code, err) = run(&["--vuln-check", "-sn", "127.0.0.1"]);
    assert!(code == Some(2) && err.contains("-sn"), "{err}");
    // A file that is not a CVE database: named, refused, and left untouched.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, b"not sqlite at all, not sqlite at all, not sqlite at all, not sqlite!").unwrap();
    let (code, err) = run(&["--vuln-check", "--vuln-db", bad.to_str().unwrap(), "-p", "1", "127.0.0.1"]);
    assert!(code == Some(2) && err.contains("bad.db"), "{err}");
    assert_eq!(std::fs::read(&bad).unwrap().len(), 68);
}

/// City and ASN databases for the lab's ranges (a database built for one's own networks).
fn lab_geoip(dir: &Path) {
    let lyon = rustmap_geoip::fixture::Place {
        city: "Lyon".into(),
        country_code: "FR".into(),
        country: "France".into(),
        latitude: 45.764,
        longitude: 4.8357,
        time_zone: "Europe/Paris".into(),
        asn: 64512,
        as_org: "RustMap Lab".into(),
    };
    rustmap_geoip::fixture::write_databases(dir, "RustMap-Lab", &["198.18.0.0/15", "fd00::/8"], &lyon).unwrap();
}

#[test]
fn geoip_puts_country_city_and_asn_on_lab_hosts_in_xml_and_json() {
    let Some(_lab) = lab() else { return };
    let dir = tempfile::tempdir().unwrap();
    lab_geoip(dir.path());
    let d = dir.path().to_str().unwrap();
    let v = json_scan(&["-sT", "-p", "22", "--geoip-db", d, "198.18.0.10", "fd00:18::10"]);
    for addr in ["198.18.0.10", "fd00:18::10"] {
        let g = &host(&v, addr)["geoip"];
        assert_eq!(g["country_code"], "FR", "{addr}: {g}");
        assert_eq!(g["country"], "France");
        assert_eq!(g["city"], "Lyon");
        assert_eq!(g["asn"], 64512);
        assert_eq!(g["as_org"], "RustMap Lab");
        assert_eq!(g["timezone"], "Europe/Paris");
        assert!((g["latitude"].as_f64().unwrap() - 45.764).abs() < 1e-6);
    }
    assert_eq!(host(&v, "198.18.0.10")["geoip"]["special"], "benchmarking");
    assert_eq!(host(&v, "fd00:18::10")["geoip"]["special"], "unique-local");

    let xml = dir.path().join("scan.xml");
    let o = rustmap(&[
        "-sT",
        "-p",
        "22",
        "--geoip",
        "--geoip-db",
        d,
        "--no-db",
        "--oX",
        xml.to_str().unwrap(),
        "198.18.0.10",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&xml).unwrap();
    for want in [
        "<hostscript><script id=\"geoip\"",
        "<elem key=\"country_code\">FR</elem>",
        "<elem key=\"city\">Lyon</elem>",
        "<elem key=\"asn\">64512</elem>",
        "<elem key=\"as_org\">RustMap Lab</elem>",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    let valid =
        Command::new("xmllint").args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"]).arg(&xml).output().unwrap();
    assert!(valid.status.success(), "{}", String::from_utf8_lossy(&valid.stderr));
    let normal = String::from_utf8_lossy(&o.stdout);
    assert!(normal.contains("FR, France; Lyon (45.7640, 4.8357); Europe/Paris; AS64512 RustMap Lab"), "{normal}");

    // A ping scan too, and the history keeps the place with the host.
    let hist = dir.path().join("history.db");
    let o = rustmap(&["-sn", "--geoip-db", d, "--db", hist.to_str().unwrap(), "198.18.0.13"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stored_host(&hist)["geoip"]["city"], "Lyon");
}

#[test]
fn geoip_without_a_database_names_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(["--geoip", "-p", "1", "127.0.0.1"])
        .env("HOME", dir.path())
        .env("RUSTMAP_GEOIP_DIR", dir.path().join("geo"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("GeoLite2-City.mmdb") && err.contains(&dir.path().join("geo").display().to_string()), "{err}");
    assert!(err.contains(".rustmap/geoip"), "{err}");
    // A damaged file is named.
    let geo = dir.path().join("geo");
    std::fs::create_dir_all(&geo).unwrap();
    std::fs::write(geo.join("GeoLite2-City.mmdb"), b"garbage").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rustmap"))
        .args(["--geoip-db", geo.to_str().unwrap(), "-p", "1", "127.0.0.1"])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() == Some(2) && err.contains("GeoLite2-City.mmdb") && err.contains("not a MaxMind DB"),
        "{err}"
    );
}

#[test]
fn self_test_names_the_geoip_files_geoip_would_use() {
    let home = tempfile::tempdir().unwrap();
    let geo = home.path().join("geo");
    std::fs::create_dir_all(&geo).unwrap();
    let check = |dir: Option<&Path>| -> (String, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rustmap"));
        c.args(["--self-test", "--no-db", "--oJ", "-"]).env("HOME", home.path()).current_dir(home.path());
        match dir {
            Some(d) => c.env("RUSTMAP_GEOIP_DIR", d),
            None => c.env_remove("RUSTMAP_GEOIP_DIR"),
        };
        let o = c.output().unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let g = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "GeoIP databases").unwrap().clone();
        (g["status"].as_str().unwrap().to_string(), g["detail"].as_str().unwrap().to_string())
    };
    let (status, detail) = check(None);
    assert_eq!(status, "WARN", "{detail}");
    assert!(detail.contains("no GeoIP database found"), "{detail}");
    lab_geoip(&geo);
    let (status, detail) = check(Some(&geo));
    assert_eq!(status, "PASS", "{detail}");
    assert!(detail.contains(&geo.join("GeoLite2-City.mmdb").display().to_string()), "{detail}");
}
