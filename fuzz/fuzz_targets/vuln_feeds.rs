//! The CVE database's inputs from outside (`rustmap-vuln`): NVD CVE API 2.0 pages and the CISA
//! KEV catalog as `--vuln-update` parses them, CPE names and version strings as detection and
//! feeds give them, and a check of the bundled seed rules with hostile service fields. Pages
//! parse or fail with a message, never panic; ids are CVE-shaped; version comparison is a total
//! order (antisymmetric); a check's results are sorted and clean.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_vuln::{version, ServiceQuery, VulnDb};
use std::cmp::Ordering;
use std::sync::OnceLock;

static SEED: OnceLock<VulnDb> = OnceLock::new();

fn cve_shaped(id: &str) -> bool {
    id.strip_prefix("CVE-").is_some_and(|rest| {
        rest.split_once('-').is_some_and(|(y, n)| {
            y.len() == 4
                && y.bytes().all(|b| b.is_ascii_digit())
                && n.len() >= 4
                && n.bytes().all(|b| b.is_ascii_digit())
        })
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(ids) = rustmap_vuln::parse_nvd_page(data) {
        assert!(ids.iter().all(|i| cve_shaped(i)), "{ids:?}");
    }
    if let Ok(ids) = rustmap_vuln::parse_kev_catalog(data) {
        assert!(ids.iter().all(|i| cve_shaped(i)), "{ids:?}");
    }
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (a, b, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let ab = version::compare(a, b);
    assert_eq!(ab, version::compare(b, a).reverse(), "{a:?} vs {b:?}");
    assert_eq!(version::compare(a, a), Ordering::Equal);
    let _ = rustmap_vuln::cpe::parse(a);
    let db = SEED.get_or_init(|| VulnDb::seed_only().expect("the bundled seed loads"));
    let cpes = vec![rest.to_string(), format!("cpe:/a:openbsd:openssh:{b}")];
    let q = ServiceQuery { product: Some(a), version: Some(b), cpes: &cpes };
    if let Ok(found) = db.check(&q, None) {
        assert!(found.windows(2).all(|w| w[0].cvss >= w[1].cvss), "highest first");
    }
});
