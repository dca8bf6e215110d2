//! What enrichment adds to a scan's findings after the hosts are scanned: known vulnerabilities of
//! the services found (`--vuln-check`) and where an address is (`--geoip`).
//!
//! The shapes live here so that every output format, the store and the API know them; the
//! `rustmap-vuln` and `rustmap-geoip` crates fill them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CVSS base score, kept in tenths (`98` is 9.8) so that results stay `Eq` and scores compare
/// exactly; written and read as a number (`9.8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CvssScore(u8);

impl CvssScore {
    /// The score of `tenths` tenths, capped at 10.0.
    pub fn from_tenths(tenths: u8) -> CvssScore {
        CvssScore(tenths.min(100))
    }

    /// The score nearest to `score`, if it is a CVSS score (0.0 to 10.0).
    pub fn from_f64(score: f64) -> Option<CvssScore> {
        (score.is_finite() && (0.0..=10.0).contains(&score)).then(|| CvssScore((score * 10.0).round() as u8))
    }

    /// The score in tenths.
    pub fn tenths(self) -> u8 {
        self.0
    }

    /// The score as a number.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// The CVSS v3 qualitative rating of this score: `none`, `low`, `medium`, `high`, `critical`.
    pub fn severity(self) -> &'static str {
        match self.0 {
            0 => "none",
            1..=39 => "low",
            40..=69 => "medium",
            70..=89 => "high",
            _ => "critical",
        }
    }
}

impl std::fmt::Display for CvssScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

impl Serialize for CvssScore {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for CvssScore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CvssScore, D::Error> {
        let v = f64::deserialize(d)?;
        CvssScore::from_f64(v).ok_or_else(|| serde::de::Error::custom(format!("not a CVSS score (0 to 10): {v}")))
    }
}

/// A CISA Known Exploited Vulnerabilities catalog entry's dates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KevInfo {
    /// When CISA added it (`2021-11-03`).
    pub date_added: String,
    /// When US federal agencies must have remediated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
}

/// A known vulnerability of the service on a port (`--vuln-check`), matched by version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// The CVE id (`CVE-2023-38408`).
    pub id: String,
    /// CVSS base score (v3.x if known, else v4.0, else v2): what `--vuln-min-cvss` and the order use.
    pub cvss: CvssScore,
    /// The CVSS version the score is from (`3.1`, `4.0`, `2.0`).
    pub cvss_version: String,
    /// The CVSS vector (`CVSS:3.1/AV:N/AC:L/...`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
    /// The CVSS v4.0 base score too, where the record has one besides the v3 score above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_v4: Option<CvssScore>,
    /// The CVSS v4.0 vector (`CVSS:4.0/AV:N/...`), with `cvss_v4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_v4: Option<String>,
    /// The qualitative rating (`critical`, `high`, `medium`, `low`, `none`).
    pub severity: String,
    /// The first sentence or so of its description.
    pub summary: String,
    /// When it was published (`2023-07-20`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Its CISA KEV entry, when it is known to be exploited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<KevInfo>,
    /// What matched: the service's CPE (`cpe:/a:openbsd:openssh:9.2p1`).
    pub matched: String,
    /// The version range the rule names (`< 9.3p2`, `>= 8.5p1, < 9.8p1`).
    pub range: String,
    /// The match rests on the version number alone and the version carries a distribution's
    /// package revision (`9.2p1 Debian 2+deb12u3`): the distribution may have back-ported the fix.
    pub backport: bool,
    /// Where the rule came from: `seed` (bundled) or `nvd`.
    pub source: String,
}

/// Where an address is, from MaxMind-format (GeoLite2 City and ASN) databases (`--geoip`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GeoInfo {
    /// The address is private or special-use (`private`, `loopback`, `benchmarking`, ...): such
    /// addresses are not in public databases, and are looked up only in a database built for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special: Option<String>,
    /// ISO 3166 country code (`FR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    /// Country name, in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City name, in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Latitude in degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude in degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    /// IANA time zone (`Europe/Paris`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Autonomous system organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
}

impl GeoInfo {
    /// Nothing is known beyond, perhaps, that the address is special.
    pub fn is_empty(&self) -> bool {
        self.country_code.is_none()
            && self.country.is_none()
            && self.city.is_none()
            && self.latitude.is_none()
            && self.longitude.is_none()
            && self.timezone.is_none()
            && self.asn.is_none()
            && self.as_org.is_none()
    }

    /// The one-line summary of normal output and of the `geoip` script block:
    /// `FR, France; Paris (48.8566, 2.3522); Europe/Paris; AS64500 Lab Net`.
    pub fn summary(&self) -> String {
        let g = self;
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = &g.special {
            parts.push(format!("{s} address"));
        }
        match (&g.country_code, &g.country) {
            (Some(code), Some(name)) => parts.push(format!("{code}, {name}")),
            (Some(v), None) | (None, Some(v)) => parts.push(v.clone()),
            (None, None) => {}
        }
        let place = match (&g.city, g.latitude.zip(g.longitude)) {
            (Some(c), Some((la, lo))) => Some(format!("{c} ({la:.4}, {lo:.4})")),
            (Some(c), None) => Some(c.clone()),
            (None, Some((la, lo))) => Some(format!("({la:.4}, {lo:.4})")),
            (None, None) => None,
        };
        parts.extend(place);
        parts.extend(g.timezone.clone());
        match (g.asn, &g.as_org) {
            (Some(n), Some(o)) => parts.push(format!("AS{n} {o}")),
            (Some(n), None) => parts.push(format!("AS{n}")),
            (None, Some(o)) => parts.push(o.clone()),
            (None, None) => {}
        }
        if g.special.is_some() && g.is_empty() {
            parts.push("not looked up".into());
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::CvssScore;

    #[test]
    fn scores_round_trip_as_numbers() {
        let s = CvssScore::from_f64(9.8).unwrap();
        assert_eq!(s.tenths(), 98);
        assert_eq!(serde_json::to_string(&s).unwrap(), "9.8");
        assert_eq!(serde_json::from_str::<CvssScore>("7.45").unwrap().tenths(), 75);
        assert!(serde_json::from_str::<CvssScore>("10.5").is_err());
        assert!(CvssScore::from_f64(f64::NAN).is_none());
        assert_eq!(s.to_string(), "9.8");
        assert_eq!(CvssScore::from_tenths(100).to_string(), "10.0");
        assert_eq!(s.severity(), "critical");
        assert_eq!(CvssScore::from_tenths(70).severity(), "high");
        assert_eq!(CvssScore::from_tenths(39).severity(), "low");
    }
}
