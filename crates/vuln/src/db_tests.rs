//! Tests of `check` against the bundled seed and against hand-made records.

use super::*;
use crate::matching::Rule;

fn q<'a>(product: Option<&'a str>, version: Option<&'a str>, cpes: &'a [String]) -> ServiceQuery<'a> {
    ServiceQuery { product, version, cpes }
}

fn ids(v: &[Vulnerability]) -> Vec<&str> {
    v.iter().map(|v| v.id.as_str()).collect()
}

fn cpes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn openssh_of_debian_12() {
    let db = VulnDb::seed_only().unwrap();
    let c = cpes(&["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]);
    let v = db.check(&q(Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u10"), &c), None).unwrap();
    let got = ids(&v);
    for want in ["CVE-2023-38408", "CVE-2023-28531", "CVE-2024-6387", "CVE-2023-48795", "CVE-2023-51385"] {
        assert!(got.contains(&want), "{want} missing from {got:?}");
    }
    for not in ["CVE-2021-41617", "CVE-2018-15473", "CVE-2016-20012"] {
        assert!(!got.contains(&not), "{not} should not match 9.2p1");
    }
    // Highest first, ties by id.
    assert_eq!(&got[..2], &["CVE-2023-28531", "CVE-2023-38408"]);
    assert!(v.windows(2).all(|w| w[0].cvss > w[1].cvss || (w[0].cvss == w[1].cvss && w[0].id < w[1].id)));
    let first = &v[1];
    assert_eq!(first.cvss.to_string(), "9.8");
    assert_eq!(first.severity, "critical");
    assert_eq!(first.matched, "cpe:/a:openbsd:openssh:9.2p1");
    assert_eq!(first.range, "< 9.3p2");
    assert!(first.backport);
    assert_eq!(first.source, "seed");
    assert_eq!(first.published.as_deref(), Some("2023-07-20"));
    let regre = v.iter().find(|v| v.id == "CVE-2024-6387").unwrap();
    assert_eq!(regre.range, ">= 8.5p1, < 9.8p1");
}

#[test]
fn lab_services_have_findings() {
    let db = VulnDb::seed_only().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("vsftpd", "3.0.3", "cpe:/a:vsftpd:vsftpd:3.0.3", "CVE-2021-30047"),
        ("Redis key-value store", "7.0.15", "cpe:/a:redislabs:redis:7.0.15", "CVE-2025-21605"),
        ("nginx", "1.22.1", "cpe:/a:igor_sysoev:nginx:1.22.1", "CVE-2023-44487"),
        ("Dovecot imapd", "2.3.19.1", "cpe:/a:dovecot:dovecot", "CVE-2022-30550"),
        ("Mosquitto", "2.0.11", "cpe:/a:eclipse:mosquitto:2.0.11", "CVE-2021-34434"),
        ("Net-SNMP", "5.9.3", "cpe:/a:net-snmp:net-snmp", "CVE-2022-44792"),
        ("Postfix smtpd", "3.7.11", "cpe:/a:postfix:postfix", "CVE-2023-51764"),
    ];
    for (product, version, cpe, want) in cases {
        let c = cpes(&[cpe]);
        let v = db.check(&q(Some(product), Some(version), &c), None).unwrap();
        assert!(ids(&v).contains(want), "{product} {version}: {:?}", ids(&v));
        assert!(v.iter().all(|v| !v.backport), "{product} {version} is an upstream version");
    }
    // Fixed versions do not match.
    let c = cpes(&["cpe:/a:thekelleys:dnsmasq:2.90"]);
    assert!(db.check(&q(Some("dnsmasq"), Some("2.90"), &c), None).unwrap().is_empty());
    let c = cpes(&["cpe:/a:redislabs:redis:7.0.15"]);
    let v = db.check(&q(Some("Redis"), Some("7.0.15"), &c), None).unwrap();
    assert!(!ids(&v).contains(&"CVE-2023-41056") && !ids(&v).contains(&"CVE-2022-24834"));
    let c = cpes(&["cpe:/a:redislabs:redis:7.0.11"]);
    let v = db.check(&q(Some("Redis"), Some("7.0.11"), &c), None).unwrap();
    assert!(ids(&v).contains(&"CVE-2022-24834") && ids(&v).contains(&"CVE-2023-41056"));
}

#[test]
fn exact_versions_and_kev() {
    let db = VulnDb::seed_only().unwrap();
    let c = cpes(&["cpe:/a:vsftpd:vsftpd:2.3.4"]);
    let v = db.check(&q(Some("vsftpd"), Some("2.3.4"), &c), None).unwrap();
    assert_eq!(v[0].id, "CVE-2011-2523");
    assert_eq!(v[0].range, "= 2.3.4");
    let c = cpes(&["cpe:/a:apache:http_server:2.4.50"]);
    let v = db.check(&q(Some("Apache httpd"), Some("2.4.50"), &c), None).unwrap();
    let k = v.iter().find(|v| v.id == "CVE-2021-42013").unwrap();
    assert_eq!(k.kev.as_ref().map(|k| k.date_added.as_str()), Some("2021-11-03"));
    assert!(!ids(&v).contains(&"CVE-2021-41773"));
}

#[test]
fn min_cvss_filters() {
    let db = VulnDb::seed_only().unwrap();
    let c = cpes(&["cpe:/a:openbsd:openssh:9.2p1"]);
    let v = db.check(&q(None, None, &c), CvssScore::from_f64(9.0)).unwrap();
    assert_eq!(ids(&v), ["CVE-2023-28531", "CVE-2023-38408"]);
    let v = db.check(&q(None, None, &c), CvssScore::from_f64(9.9)).unwrap();
    assert!(v.is_empty());
}

#[test]
fn unknown_versions_never_match() {
    let db = VulnDb::seed_only().unwrap();
    let c = cpes(&["cpe:/a:openbsd:openssh"]);
    assert!(db.check(&q(Some("OpenSSH"), None, &c), None).unwrap().is_empty());
    assert!(db.check(&q(Some("OpenSSH"), Some("unknown"), &c), None).unwrap().is_empty());
    assert!(db.check(&q(Some("OpenSSH"), None, &[]), None).unwrap().is_empty());
    // An OS CPE does not take the application's version.
    let c = cpes(&["cpe:/o:linux:linux_kernel"]);
    assert!(db.check(&q(None, Some("2.4.49"), &c), None).unwrap().is_empty());
}

#[test]
fn product_name_fallback() {
    let db = VulnDb::seed_only().unwrap();
    let v = db.check(&q(Some("OpenSSH"), Some("9.2p1 Debian 2+deb12u10"), &[]), None).unwrap();
    assert!(ids(&v).contains(&"CVE-2023-38408"));
    assert_eq!(v[0].matched, "OpenSSH 9.2p1 Debian 2+deb12u10");
    assert!(v[0].backport);
    // nginx has two vendors in the rules, but they are aliases: still one product.
    let v = db.check(&q(Some("nginx"), Some("1.22.1"), &[]), None).unwrap();
    assert!(ids(&v).contains(&"CVE-2023-44487"));
    assert!(db.check(&q(Some("No Such Thing"), Some("1.0"), &[]), None).unwrap().is_empty());
}

fn record(id: &str, score: u8, rules: Vec<Rule>) -> CveRecord {
    CveRecord {
        id: id.into(),
        description: format!("{id} description. Second sentence."),
        cvss: Some((CvssScore::from_tenths(score), "3.1".into(), None)),
        cvss_v4: None,
        published: Some("2099-01-01T00:00:00.000".into()),
        last_modified: Some("2099-01-02T00:00:00.000".into()),
        rules,
    }
}

fn rule(vendor: &str, product: &str, version: &str) -> Rule {
    Rule {
        part: "a".into(),
        vendor: vendor.into(),
        product: product.into(),
        version: version.into(),
        ..Rule::default()
    }
}

#[test]
fn aliases_dedupe_and_nvd_records() {
    let db = VulnDb::seed_only().unwrap();
    let mut a = rule("f5", "nginx", "*");
    a.end_excl = Some("2.0".into());
    let mut b = rule("nginx", "nginx", "*");
    b.start_incl = Some("1.0".into());
    let entries = vec![
        NvdEntry::Record(record("CVE-2099-0001", 50, vec![a.clone(), b])),
        NvdEntry::Record(record("CVE-2099-0002", 50, vec![rule("igor_sysoev", "nginx", "1.22.1")])),
        NvdEntry::Record(record("CVE-2099-0003", 20, vec![rule("nginx", "nginx", "*")])),
    ];
    assert_eq!(db.apply_nvd_page(&entries, "{}").unwrap(), (3, 0));
    assert_eq!(db.apply_nvd_page(&entries, "{}").unwrap(), (0, 0));
    let c = cpes(&["cpe:/a:igor_sysoev:nginx:1.22.1", "cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*"]);
    let v = db.check(&q(Some("nginx"), Some("1.22.1"), &c), None).unwrap();
    let mine: Vec<&Vulnerability> = v.iter().filter(|v| v.id.starts_with("CVE-2099")).collect();
    assert_eq!(
        mine.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0003"]
    );
    assert_eq!(mine[0].matched, "cpe:/a:igor_sysoev:nginx:1.22.1");
    assert_eq!(mine[0].summary, "CVE-2099-0001 description.");
    assert_eq!(mine[0].source, "nvd");
    assert_eq!(mine[0].published.as_deref(), Some("2099-01-01"));
    assert_eq!(mine[2].range, "all versions");
    assert_eq!(mine[2].severity, "low");

    // An NVD record replaces the seed's record of the same id, rules included.
    let before = db.stats().unwrap();
    let e = vec![NvdEntry::Record(record("CVE-2023-38408", 99, vec![rule("openbsd", "openssh", "1.0")]))];
    assert_eq!(db.apply_nvd_page(&e, "{}").unwrap(), (0, 1));
    let c = cpes(&["cpe:/a:openbsd:openssh:9.2p1"]);
    let v = db.check(&q(None, None, &c), None).unwrap();
    assert!(!ids(&v).contains(&"CVE-2023-38408"));
    assert_eq!(db.stats().unwrap().cves, before.cves);
    // Rejected ids are removed.
    assert_eq!(db.apply_nvd_page(&[NvdEntry::Rejected("CVE-2099-0003".into())], "{}").unwrap(), (0, 1));
    assert_eq!(db.stats().unwrap().cves, before.cves - 1);
}

#[test]
fn files_are_private_and_seed_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("vuln.db");
    let db = VulnDb::open(&path).unwrap();
    let s = db.stats().unwrap();
    assert!(s.cves >= 40 && s.rules >= s.cves && s.kev >= 3);
    assert_eq!(s.last_update, None);
    assert!(s.seed_version >= 1);
    drop(db);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }
    let db = VulnDb::open_for_check(Some(&path)).unwrap();
    assert_eq!(db.stats().unwrap(), s);
    // A scan never creates the file.
    let missing = dir.path().join("missing.db");
    let db = VulnDb::open_for_check(Some(&missing)).unwrap();
    assert_eq!(db.stats().unwrap().cves, s.cves);
    assert!(!missing.exists());
}

#[test]
fn errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(&path, b"this is not sqlite, not at all, definitely not a database file").unwrap();
    let e = VulnDb::open(&path).unwrap_err().to_string();
    assert!(e.contains("not-a-db"), "{e}");
}

#[test]
fn handles_are_send_and_sync() {
    fn f<T: Send + Sync>() {}
    f::<VulnDb>();
}

#[test]
fn cvss_v4_scores_are_kept_beside_v3() {
    let db = VulnDb::seed_only().unwrap();
    let mut r = record("CVE-2099-0044", 75, vec![rule("openbsd", "openssh", "9.2p1")]);
    r.cvss_v4 = Some((CvssScore::from_tenths(87), Some("CVSS:4.0/AV:N/AC:L".into())));
    db.apply_nvd_page(&[NvdEntry::Record(r)], "{}").unwrap();
    let c = cpes(&["cpe:/a:openbsd:openssh:9.2p1"]);
    let v = db.check(&q(Some("OpenSSH"), Some("9.2p1"), &c), None).unwrap();
    let found = v.iter().find(|v| v.id == "CVE-2099-0044").unwrap();
    assert_eq!((found.cvss.tenths(), found.cvss_v4.map(|s| s.tenths())), (75, Some(87)));
    assert_eq!(found.vector_v4.as_deref(), Some("CVSS:4.0/AV:N/AC:L"));
}

#[test]
fn a_version_1_database_gains_the_v4_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    drop(VulnDb::open(&path).unwrap());
    // Make it what the first schema wrote: no v4 columns, version 1.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "ALTER TABLE cve DROP COLUMN cvss4_tenths; ALTER TABLE cve DROP COLUMN cvss4_vector;
             UPDATE meta SET value = '1' WHERE key = 'schema_version';",
        )
        .unwrap();
    }
    let db = VulnDb::open(&path).unwrap();
    let c = cpes(&["cpe:/a:openbsd:openssh:9.2p1"]);
    assert!(!db.check(&q(Some("OpenSSH"), Some("9.2p1"), &c), None).unwrap().is_empty());
    drop(db);
    let c = Connection::open(&path).unwrap();
    let v: String = c.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "2");
}
