//! GeoIP databases for tests of this crate and of front-ends (cargo feature `fixture`): a City
//! and an ASN file in MaxMind's layout, written with `mmdb-writer` (an independent implementation
//! of the format) for the networks given, all with the same place.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What every network of the databases says.
#[derive(Debug, Clone)]
pub struct Place {
    /// City name (English).
    pub city: String,
    /// ISO country code.
    pub country_code: String,
    /// Country name (English).
    pub country: String,
    /// Latitude in degrees.
    pub latitude: f64,
    /// Longitude in degrees.
    pub longitude: f64,
    /// IANA time zone.
    pub time_zone: String,
    /// AS number.
    pub asn: u32,
    /// AS organization.
    pub as_org: String,
}

#[derive(Serialize)]
struct Names {
    names: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Country {
    iso_code: String,
    names: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
    time_zone: String,
}

#[derive(Serialize)]
struct City {
    city: Names,
    country: Country,
    location: Location,
}

#[derive(Serialize)]
struct Asn {
    autonomous_system_number: u32,
    autonomous_system_organization: String,
}

fn en(s: &str) -> BTreeMap<String, String> {
    [("en".to_string(), s.to_string())].into()
}

/// Write `GeoLite2-City.mmdb` and `GeoLite2-ASN.mmdb` into `dir`, typed `{kind}-City` and
/// `{kind}-ASN` (`GeoLite2` makes them look like MaxMind's own; anything else is a database built
/// for one's own networks), with `place` for every network of `nets` (`198.18.0.0/15`).
pub fn write_databases(dir: &Path, kind: &str, nets: &[&str], place: &Place) -> Result<(), String> {
    let mut city = mmdb_writer::Writer::new(format!("{kind}-City"));
    let mut asn = mmdb_writer::Writer::new(format!("{kind}-ASN"));
    let rec = City {
        city: Names { names: en(&place.city) },
        country: Country { iso_code: place.country_code.clone(), names: en(&place.country) },
        location: Location { latitude: place.latitude, longitude: place.longitude, time_zone: place.time_zone.clone() },
    };
    let as_rec = Asn { autonomous_system_number: place.asn, autonomous_system_organization: place.as_org.clone() };
    for n in nets {
        let net: ipnet::IpNet = n.parse().map_err(|e| format!("{n}: {e}"))?;
        city.insert(net, &rec).map_err(|e| e.to_string())?;
        asn.insert(net, &as_rec).map_err(|e| e.to_string())?;
    }
    std::fs::write(dir.join("GeoLite2-City.mmdb"), city.to_bytes().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("GeoLite2-ASN.mmdb"), asn.to_bytes().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(())
}
