//! GeoIP lookups against MaxMind DB files built here with an independent writer (`mmdb-writer`).

use mmdb_writer::Writer;
use rustmap_geoip::fixture::{write_databases, Place};
use rustmap_geoip::{summary, GeoDb, GeoError};
use std::path::Path;

fn write_dbs(dir: &Path, kind: &str, nets: &[&str]) {
    let paris = Place {
        city: "Paris".into(),
        country_code: "FR".into(),
        country: "France".into(),
        latitude: 48.8566,
        longitude: 2.3522,
        time_zone: "Europe/Paris".into(),
        asn: 64500,
        as_org: "Lab Net".into(),
    };
    write_databases(dir, kind, nets, &paris).unwrap();
}

#[test]
fn a_database_built_for_the_lab_range_places_lab_hosts() {
    let dir = tempfile::tempdir().unwrap();
    write_dbs(dir.path(), "RustMap-Lab", &["198.18.0.0/15", "fd00::/8"]);
    let db = GeoDb::discover(Some(dir.path())).unwrap();
    assert_eq!(db.files().len(), 2);
    let g = db.lookup("198.18.0.10".parse().unwrap()).0.expect("a record");
    assert_eq!(g.special.as_deref(), Some("benchmarking"));
    assert_eq!(g.country_code.as_deref(), Some("FR"));
    assert_eq!(g.country.as_deref(), Some("France"));
    assert_eq!(g.city.as_deref(), Some("Paris"));
    assert_eq!(g.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(g.asn, Some(64500));
    assert_eq!(g.as_org.as_deref(), Some("Lab Net"));
    assert!((g.latitude.unwrap() - 48.8566).abs() < 1e-9);
    assert_eq!(summary(&g), "benchmarking address; FR, France; Paris (48.8566, 2.3522); Europe/Paris; AS64500 Lab Net");
    let g6 = db.lookup("fd00::10".parse().unwrap()).0.expect("an IPv6 record");
    assert_eq!(g6.asn, Some(64500));
    // Outside the database's networks: a public address is simply unknown.
    let (none, errors) = db.lookup("8.8.8.8".parse().unwrap());
    assert!(none.is_none() && errors.is_empty());
}

#[test]
fn maxminds_own_databases_are_not_asked_about_special_addresses() {
    let dir = tempfile::tempdir().unwrap();
    // Even a (made-up) GeoLite2 file with data for the range: it is not asked.
    write_dbs(dir.path(), "GeoLite2", &["198.18.0.0/15", "81.2.69.0/24"]);
    let db = GeoDb::discover(Some(dir.path())).unwrap();
    let g = db.lookup("198.18.0.10".parse().unwrap()).0.expect("marked special");
    assert_eq!(g.special.as_deref(), Some("benchmarking"));
    assert!(g.is_empty(), "{g:?}");
    assert_eq!(summary(&g), "benchmarking address; not looked up");
    let public = db.lookup("81.2.69.160".parse().unwrap()).0.expect("a public record");
    assert_eq!(public.special, None);
    assert_eq!(public.country_code.as_deref(), Some("FR"));
}

#[test]
fn missing_and_corrupt_databases_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = GeoDb::discover(Some(dir.path())).unwrap_err();
    assert!(matches!(e, GeoError::NotFound { .. }));
    let text = e.to_string();
    assert!(text.contains("GeoLite2-City.mmdb") && text.contains(&dir.path().display().to_string()), "{text}");

    std::fs::write(dir.path().join("GeoLite2-City.mmdb"), b"not a database at all").unwrap();
    let e = GeoDb::discover(Some(dir.path())).unwrap_err().to_string();
    assert!(e.contains("GeoLite2-City.mmdb") && e.contains("not a MaxMind DB"), "{e}");

    // A valid file cut short: refused at open or at lookup, never a panic.
    let good = tempfile::tempdir().unwrap();
    write_dbs(good.path(), "RustMap-Lab", &["198.18.0.0/15"]);
    let bytes = std::fs::read(good.path().join("GeoLite2-City.mmdb")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 20, 100] {
        std::fs::write(dir.path().join("GeoLite2-City.mmdb"), &bytes[..cut]).unwrap();
        if let Ok(db) = GeoDb::discover(Some(dir.path())) {
            let _ = db.lookup("198.18.0.10".parse().unwrap());
        }
    }
}

#[test]
fn narrow_as_numbers_are_read_and_a_bad_record_loses_only_its_own_fields() {
    use mmdb_writer::Value;
    let dir = tempfile::tempdir().unwrap();
    write_dbs(dir.path(), "RustMap-Lab", &["198.18.0.0/15"]);
    // Other writers store a small AS number as a 16-bit integer; one network has a text one.
    let mut a = Writer::new("Other-ASN");
    a.insert_value(
        "198.18.0.0/16".parse::<ipnet::IpNet>().unwrap(),
        Value::map([
            ("autonomous_system_number", Value::U16(64512)),
            ("autonomous_system_organization", Value::from("Lab")),
        ]),
    )
    .unwrap();
    a.insert_value(
        "198.19.0.0/16".parse::<ipnet::IpNet>().unwrap(),
        Value::map([("autonomous_system_number", Value::from("AS64512"))]),
    )
    .unwrap();
    std::fs::write(dir.path().join("GeoLite2-ASN.mmdb"), a.to_bytes().unwrap()).unwrap();
    let db = GeoDb::discover(Some(dir.path())).unwrap();
    let (g, errors) = db.lookup("198.18.0.10".parse().unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(g.unwrap().asn, Some(64512));
    let (g, errors) = db.lookup("198.19.0.10".parse().unwrap());
    let g = g.expect("the City record still counts");
    assert_eq!((g.city.as_deref(), g.asn), (Some("Paris"), None));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("GeoLite2-ASN.mmdb") && errors[0].to_string().contains("198.19.0.10"));
}
