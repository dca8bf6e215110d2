//! Reading the two feeds: NVD CVE API 2.0 pages into CVE records with match rules, and the CISA
//! KEV catalog into (CVE id, dates). Pure: no I/O; every error is a message for the caller to
//! wrap with the URL and page.
//!
//! From each NVD CVE the importer keeps the English description, one CVSS metric (v3.1, else
//! v3.0, else v4.0, else v2; within a version the `Primary` one, else the first), `published`,
//! `lastModified`, and one rule per `vulnerable: true` `cpeMatch` of every node that is not
//! negated. AND configurations (a vulnerable application *running on* some platform) are thus
//! flattened to their vulnerable parts: the platform condition is dropped, which errs towards
//! reporting. Criteria whose version is `-` (not applicable) give no rule. A CVE whose
//! `vulnStatus` is `Rejected` is removed from the database. Unknown fields are ignored.

use crate::cpe;
use crate::db::{CveRecord, NvdEntry};
use crate::matching::Rule;
use crate::seed::valid_cve_id;
use crate::{CvssScore, KevInfo};
use serde::Deserialize;

/// At most this many rules are kept per CVE (a few CVEs list thousands of CPEs).
const MAX_RULES_PER_CVE: usize = 10_000;
/// At most this many KEV entries are read.
const MAX_KEV: usize = 500_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    total_results: u64,
    #[serde(default)]
    results_per_page: u64,
    vulnerabilities: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    cve: Cve,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve {
    id: String,
    #[serde(default)]
    published: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    #[serde(default)]
    vuln_status: Option<String>,
    #[serde(default)]
    descriptions: Vec<Description>,
    #[serde(default)]
    metrics: Option<Metrics>,
    #[serde(default)]
    configurations: Option<Vec<Configuration>>,
}

#[derive(Deserialize)]
struct Description {
    #[serde(default)]
    lang: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    #[serde(default)]
    cvss_metric_v31: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v30: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v40: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v2: Vec<Metric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metric {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    cvss_data: CvssData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CvssData {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    vector_string: Option<String>,
    base_score: f64,
}

#[derive(Deserialize)]
struct Configuration {
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    #[serde(default)]
    negate: Option<bool>,
    #[serde(default)]
    cpe_match: Vec<CpeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpeMatch {
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    version_start_including: Option<String>,
    #[serde(default)]
    version_start_excluding: Option<String>,
    #[serde(default)]
    version_end_including: Option<String>,
    #[serde(default)]
    version_end_excluding: Option<String>,
}

/// One parsed NVD page.
#[derive(Debug)]
pub(crate) struct NvdPage {
    /// `totalResults`.
    pub total: u64,
    /// `resultsPerPage` as the server says.
    pub per_page: u64,
    /// The CVEs, in order.
    pub entries: Vec<NvdEntry>,
}

/// Parse one NVD CVE API 2.0 page.
pub(crate) fn parse_page(body: &[u8]) -> Result<NvdPage, String> {
    let page: Page = serde_json::from_slice(body).map_err(|e| format!("not an NVD CVE API 2.0 page: {e}"))?;
    let mut entries = Vec::with_capacity(page.vulnerabilities.len());
    for item in page.vulnerabilities {
        entries.push(entry(item.cve)?);
    }
    Ok(NvdPage { total: page.total_results, per_page: page.results_per_page, entries })
}

/// The metric to keep from one list: the `Primary` one, else the first with a valid score.
fn pick(list: &[Metric], default_version: &str) -> Option<(CvssScore, String, Option<String>)> {
    let primary = list.iter().filter(|m| m.kind.as_deref() == Some("Primary"));
    let others = list.iter().filter(|m| m.kind.as_deref() != Some("Primary"));
    primary.chain(others).find_map(|m| {
        let s = CvssScore::from_f64(m.cvss_data.base_score)?;
        let v = m.cvss_data.version.clone().filter(|v| !v.is_empty()).unwrap_or_else(|| default_version.into());
        Some((s, v, m.cvss_data.vector_string.clone()))
    })
}

fn entry(c: Cve) -> Result<NvdEntry, String> {
    if !valid_cve_id(&c.id) {
        return Err(format!("{:?} is not a CVE id", c.id.chars().take(40).collect::<String>()));
    }
    if c.vuln_status.as_deref() == Some("Rejected") {
        return Ok(NvdEntry::Rejected(c.id));
    }
    let description = c
        .descriptions
        .iter()
        .find(|d| d.lang == "en")
        .or_else(|| c.descriptions.first())
        .map(|d| d.value.clone())
        .unwrap_or_default();
    let m = c.metrics.unwrap_or_default();
    let v3 = pick(&m.cvss_metric_v31, "3.1").or_else(|| pick(&m.cvss_metric_v30, "3.0"));
    let v4 = pick(&m.cvss_metric_v40, "4.0");
    // The v3 score leads (it is what most tooling and --vuln-min-cvss expect); a v4 score is
    // kept beside it, or leads when it is the only modern one.
    let (cvss, cvss_v4) = match (v3, v4) {
        (Some(v3), Some((s, _, vec))) => (Some(v3), Some((s, vec))),
        (Some(v3), None) => (Some(v3), None),
        (None, Some(v4)) => (Some(v4), None),
        (None, None) => (pick(&m.cvss_metric_v2, "2.0"), None),
    };
    let mut rules: Vec<Rule> = Vec::new();
    for node in c.configurations.iter().flatten().flat_map(|cfg| cfg.nodes.iter()) {
        if node.negate == Some(true) {
            continue;
        }
        for m in node.cpe_match.iter().filter(|m| m.vulnerable) {
            if let Some(r) = rule(m) {
                if rules.len() < MAX_RULES_PER_CVE && !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    Ok(NvdEntry::Record(CveRecord {
        id: c.id,
        description,
        cvss,
        cvss_v4,
        published: c.published,
        last_modified: c.last_modified,
        rules,
    }))
}

/// One rule from one `cpeMatch`; `None` for criteria that cannot match a version.
fn rule(m: &CpeMatch) -> Option<Rule> {
    let raw_version = m.criteria.strip_prefix("cpe:2.3:")?.split(':').nth(3)?;
    if raw_version == "-" {
        return None;
    }
    let c = cpe::parse(&m.criteria)?;
    let clean = |b: &Option<String>| b.clone().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let exact = c.version.is_some();
    Some(Rule {
        part: c.part,
        vendor: c.vendor,
        product: c.product,
        version: c.version.unwrap_or_else(|| "*".into()),
        start_incl: if exact { None } else { clean(&m.version_start_including) },
        start_excl: if exact { None } else { clean(&m.version_start_excluding) },
        end_incl: if exact { None } else { clean(&m.version_end_including) },
        end_excl: if exact { None } else { clean(&m.version_end_excluding) },
    })
}

#[derive(Deserialize)]
struct KevCatalog {
    vulnerabilities: Vec<KevItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KevItem {
    #[serde(rename = "cveID")]
    cve_id: String,
    date_added: String,
    #[serde(default)]
    due_date: Option<String>,
}

/// Parse the CISA KEV catalog: (CVE id, dates), entries with a bad id skipped.
pub(crate) fn parse_kev(body: &[u8]) -> Result<Vec<(String, KevInfo)>, String> {
    let cat: KevCatalog = serde_json::from_slice(body).map_err(|e| format!("not a CISA KEV catalog: {e}"))?;
    if cat.vulnerabilities.len() > MAX_KEV {
        return Err(format!("{} entries (at most {MAX_KEV} are read)", cat.vulnerabilities.len()));
    }
    Ok(cat
        .vulnerabilities
        .into_iter()
        .filter(|k| valid_cve_id(&k.cve_id))
        .map(|k| (k.cve_id, KevInfo { date_added: k.date_added, due_date: k.due_date.filter(|d| !d.is_empty()) }))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"resultsPerPage":2,"startIndex":0,"totalResults":2,"format":"NVD_CVE","vulnerabilities":[
      {"cve":{"id":"CVE-2099-0001","published":"2099-01-01T00:00:00.000","lastModified":"2099-01-02T00:00:00.000",
        "vulnStatus":"Analyzed","descriptions":[{"lang":"es","value":"Hola."},{"lang":"en","value":"Hello. More."}],
        "metrics":{"cvssMetricV31":[{"source":"x","type":"Secondary","cvssData":{"version":"3.1","vectorString":"V2","baseScore":5.0}},
                                    {"source":"nvd","type":"Primary","cvssData":{"version":"3.1","vectorString":"V1","baseScore":9.8}}],
                   "cvssMetricV40":[{"type":"Secondary","cvssData":{"version":"4.0","vectorString":"CVSS:4.0/AV:N","baseScore":9.3}}],
                   "cvssMetricV2":[{"type":"Primary","cvssData":{"version":"2.0","baseScore":10.0}}]},
        "configurations":[{"operator":"AND","nodes":[
          {"operator":"OR","negate":false,"cpeMatch":[
            {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*","versionStartIncluding":"8.5p1","versionEndExcluding":"9.8p1","matchCriteriaId":"X"},
            {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*"},
            {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:-:*:*:*:*:*:*:*"}]},
          {"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":false,"criteria":"cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*"}]},
          {"operator":"OR","negate":true,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:x:y:*:*:*:*:*:*:*:*"}]}]}]}},
      {"cve":{"id":"CVE-2099-0002","vulnStatus":"Rejected","descriptions":[]}}]}"#;

    #[test]
    fn pages_become_records() {
        let p = parse_page(PAGE.as_bytes()).unwrap();
        assert_eq!((p.total, p.per_page, p.entries.len()), (2, 2, 2));
        let NvdEntry::Record(r) = &p.entries[0] else { panic!("not a record") };
        assert_eq!(r.description, "Hello. More.");
        assert_eq!(r.cvss, Some((CvssScore::from_tenths(98), "3.1".into(), Some("V1".into()))));
        assert_eq!(r.cvss_v4, Some((CvssScore::from_tenths(93), Some("CVSS:4.0/AV:N".into()))), "v4 kept beside v3");
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[0].start_incl.as_deref(), Some("8.5p1"));
        assert_eq!(r.rules[1].version, "9.3p1");
        assert_eq!(p.entries[1], NvdEntry::Rejected("CVE-2099-0002".into()));
    }

    #[test]
    fn malformed_pages_are_errors() {
        for bad in
            ["", "{", "[]", r#"{"totalResults":1}"#, r#"{"totalResults":1,"vulnerabilities":[{"cve":{"id":"X"}}]}"#]
        {
            assert!(parse_page(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn kev_catalogs() {
        let k = parse_kev(
            br#"{"catalogVersion":"1","count":2,"vulnerabilities":[{"cveID":"CVE-2021-41773","dateAdded":"2021-11-03","dueDate":"2021-11-17","x":1},{"cveID":"bad","dateAdded":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].1.due_date.as_deref(), Some("2021-11-17"));
        assert!(parse_kev(b"{}").is_err());
    }
}
