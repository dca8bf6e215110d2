//! The enrichment stage: what the scan adds to a finished host from local databases, after
//! detection and scripts — the known vulnerabilities of each detected service version
//! (`--vuln-check`, `rustmap-vuln`) and where the host is (`--geoip`, `rustmap-geoip`).
//!
//! [`enrich_plan`] checks the `vuln` and `geoip` sections and opens the databases, so a missing
//! or damaged database is an error before any packet. At run time [`EnrichStage::run_host`]
//! fills `PortResult::vulnerabilities` and `HostResult::geoip`, and adds the same findings as
//! script blocks (`vulners` on each port, `geoip` on the host), which every output format
//! already shows; the structured fields are what JSON, the store and the API read. The cloud
//! instance of a `--cloud` address is attached the same way ([`attach_cloud`]).

use crate::validate::{conflict, invalid, ConfigError};
use rustmap_geoip::GeoDb;
use rustmap_model::config::ScanMode;
use rustmap_model::{
    CloudInstance, CvssScore, GeoInfo, HostResult, HostStatus, PortState, ScanConfig, ScanEvent, ScriptEntry,
    ScriptResult, ScriptScope, ScriptValue, Vulnerability,
};
use rustmap_vuln::{ServiceQuery, VulnDb};
use std::sync::Arc;

/// The databases of a scan's enrichment, opened.
#[derive(Clone)]
pub(crate) struct EnrichPlan {
    vuln: Option<(Arc<VulnDb>, Option<CvssScore>)>,
    geoip: Option<Arc<GeoDb>>,
}

impl std::fmt::Debug for EnrichPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichPlan")
            .field("vuln", &self.vuln.as_ref().map(|(_, min)| min))
            .field("geoip", &self.geoip)
            .finish()
    }
}

/// Whether `--vuln-check` is on: it turns on service detection (versions are what it matches),
/// as the guide's `rustmap --vuln-check target` expects.
pub(crate) fn wants_versions(c: &ScanConfig) -> bool {
    c.vuln.check && c.mode == ScanMode::Ports
}

/// Check the `vuln` and `geoip` sections and open their databases. `None` when neither is asked for.
pub(crate) fn enrich_plan(c: &ScanConfig) -> Result<Option<EnrichPlan>, ConfigError> {
    // `min_cvss`, `db` and `dir` alone are defaults (a config file's) for when the feature is on.
    let (v, g) = (&c.vuln, &c.geoip);
    let vuln = if v.check {
        if c.mode != ScanMode::Ports {
            return Err(conflict(
                "vuln.check",
                "--vuln-check matches the versions -sV finds on open ports: it cannot be combined with -sn or -sL",
            ));
        }
        let min = match v.min_cvss {
            None => None,
            Some(n) => Some(CvssScore::from_f64(n).ok_or_else(|| {
                invalid("vuln.min_cvss", n.to_string(), format!("--vuln-min-cvss {n}: a CVSS score is 0 to 10"))
            })?),
        };
        let path = v.db.clone().or_else(VulnDb::default_path);
        let db = VulnDb::open_for_check(path.as_deref()).map_err(|e| {
            invalid("vuln.db", path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), e.to_string())
        })?;
        Some((Arc::new(db), min))
    } else {
        None
    };
    let geoip = if g.enabled {
        let db = GeoDb::discover(g.dir.as_deref()).map_err(|e| {
            invalid("geoip.dir", g.dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), e.to_string())
        })?;
        Some(Arc::new(db))
    } else {
        None
    };
    Ok((vuln.is_some() || geoip.is_some()).then_some(EnrichPlan { vuln, geoip }))
}

/// The stage at run time.
pub(crate) struct EnrichStage {
    plan: EnrichPlan,
}

impl EnrichStage {
    pub(crate) fn new(plan: &EnrichPlan) -> EnrichStage {
        EnrichStage { plan: plan.clone() }
    }

    /// Whether `h` gets anything from this stage.
    pub(crate) fn wants(&self, h: &HostResult) -> bool {
        h.status != HostStatus::Down
    }

    /// Enrich `h` and return the events to deliver before its `HostDone`: the script blocks and
    /// a warning for each database error (a damaged record does not stop the scan).
    pub(crate) async fn run_host(&self, h: &mut HostResult) -> Vec<ScanEvent> {
        let mut events = Vec::new();
        if let Some((db, min)) = &self.plan.vuln {
            let (db, min, ports) = (Arc::clone(db), *min, h.ports.clone());
            let found = tokio::task::spawn_blocking(move || check_ports(&db, min, &ports)).await;
            match found {
                Ok(Ok(per_port)) => {
                    for (i, vulns) in per_port {
                        let p = &mut h.ports[i];
                        let result = vulners_block(&vulns);
                        p.vulnerabilities = vulns;
                        p.scripts.push(result.clone());
                        let scope = ScriptScope::Port { addr: h.addr, protocol: p.protocol, port: p.port };
                        events.push(ScanEvent::ScriptOutput { scope, result });
                    }
                }
                Ok(Err(e)) => events.push(ScanEvent::Warning { message: format!("--vuln-check {}: {e}", h.addr) }),
                Err(e) => events.push(ScanEvent::Warning { message: format!("--vuln-check {}: {e}", h.addr) }),
            }
        }
        if let Some(db) = &self.plan.geoip {
            let (found, errors) = db.lookup(h.addr);
            events.extend(errors.into_iter().map(|e| ScanEvent::Warning { message: format!("--geoip: {e}") }));
            if let Some(g) = found {
                let result = geoip_block(&g);
                h.geoip = Some(g);
                h.scripts.push(result.clone());
                events.push(ScanEvent::ScriptOutput { scope: ScriptScope::Host { addr: h.addr }, result });
            }
        }
        events
    }
}

/// The vulnerabilities of each open port with a detected version: (index in `ports`, CVEs).
fn check_ports(
    db: &VulnDb,
    min: Option<CvssScore>,
    ports: &[rustmap_model::PortResult],
) -> Result<Vec<(usize, Vec<Vulnerability>)>, rustmap_vuln::VulnError> {
    let mut out = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let Some(s) = p.service.as_ref().filter(|_| p.state == PortState::Open) else { continue };
        if s.version.is_none() && !s.cpe.iter().any(|c| c.split(':').nth(4).is_some_and(|v| !v.is_empty())) {
            continue;
        }
        let q = ServiceQuery { product: s.product.as_deref(), version: s.version.as_deref(), cpes: &s.cpe };
        let vulns = db.check(&q, min)?;
        if !vulns.is_empty() {
            out.push((i, vulns));
        }
    }
    Ok(out)
}

fn text(key: &str, value: impl Into<String>) -> ScriptEntry {
    ScriptEntry { key: Some(key.to_string()), value: ScriptValue::Text(value.into()) }
}

/// A port's CVEs as nmap's `vulners` script shows them: grouped by what matched (the CPE), one
/// line per CVE with its score, and KEV and back-port notes.
pub(crate) fn vulners_block(vulns: &[Vulnerability]) -> ScriptResult {
    let mut groups: Vec<(&str, Vec<&Vulnerability>)> = Vec::new();
    for v in vulns {
        match groups.iter_mut().find(|(m, _)| *m == v.matched) {
            Some((_, list)) => list.push(v),
            None => groups.push((&v.matched, vec![v])),
        }
    }
    let mut output = String::new();
    let mut table = Vec::new();
    for (matched, list) in groups {
        output.push_str(&format!("\n  {matched}:"));
        let mut rows = Vec::new();
        for v in &list {
            let kev = v.kev.as_ref().map(|k| format!("  KEV since {}", k.date_added)).unwrap_or_default();
            output.push_str(&format!(
                "\n    {:<16} {:>4}  {:<8}  {}{kev}",
                v.id,
                v.cvss.to_string(),
                v.severity,
                v.range
            ));
            let mut row = vec![
                text("id", &v.id),
                text("type", "cve"),
                text("cvss", v.cvss.to_string()),
                text("severity", &v.severity),
                text("range", &v.range),
                text("is_kev", v.kev.is_some().to_string()),
            ];
            if let Some(k) = &v.kev {
                row.push(text("kev_date_added", &k.date_added));
            }
            if let Some(s4) = v.cvss_v4 {
                row.push(text("cvss_v4", s4.to_string()));
            }
            if v.backport {
                row.push(text("backport", "true"));
            }
            rows.push(ScriptEntry { key: None, value: ScriptValue::Table(row) });
        }
        if list.iter().any(|v| v.backport) {
            output
                .push_str("\n    note: version-based match; the distribution's package may carry the fix (back-port)");
        }
        table.push(ScriptEntry { key: Some(matched.to_string()), value: ScriptValue::Table(rows) });
    }
    ScriptResult { id: "vulners".into(), output, elements: flatten(&table, ""), table }
}

/// A host's place as a `geoip` script block.
pub(crate) fn geoip_block(g: &GeoInfo) -> ScriptResult {
    let mut table = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            table.push(text(k, v));
        }
    };
    add("special", g.special.clone());
    add("country_code", g.country_code.clone());
    add("country", g.country.clone());
    add("city", g.city.clone());
    add("latitude", g.latitude.map(|v| format!("{v:.4}")));
    add("longitude", g.longitude.map(|v| format!("{v:.4}")));
    add("timezone", g.timezone.clone());
    add("asn", g.asn.map(|n| n.to_string()));
    add("as_org", g.as_org.clone());
    let output = rustmap_geoip::summary(g);
    ScriptResult { id: "geoip".into(), output, elements: flatten(&table, ""), table }
}

/// `--cloud`: the instance an address belongs to goes on its host's result, as data and as a
/// `cloud-instance` host script block (what the XML, normal and HTML outputs show).
pub(crate) fn attach_cloud(h: &mut HostResult, i: &CloudInstance) {
    let mut table = vec![text("provider", i.provider.to_string()), text("id", i.id.clone())];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            table.push(text(k, v));
        }
    };
    add("name", i.name.clone());
    add("region", Some(i.region.clone()));
    add("zone", i.zone.clone());
    add("state", Some(i.state.clone()));
    add("instance_type", i.instance_type.clone());
    let ips =
        |l: &[std::net::IpAddr]| (!l.is_empty()).then(|| l.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","));
    add("public_ips", ips(&i.public_ips));
    add("private_ips", ips(&i.private_ips));
    if !i.tags.is_empty() {
        let tags = i.tags.iter().map(|(k, v)| text(k, v.clone())).collect();
        table.push(ScriptEntry { key: Some("tags".into()), value: ScriptValue::Table(tags) });
    }
    let result =
        ScriptResult { id: "cloud-instance".into(), output: i.summary(), elements: flatten(&table, ""), table };
    h.scripts.retain(|s| s.id != "cloud-instance");
    h.scripts.insert(0, result);
    h.cloud = Some(Box::new(i.clone()));
}

/// The `elements` view of a table: nested keys joined by `.`, unkeyed items numbered from 1.
fn flatten(entries: &[ScriptEntry], prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    for e in entries {
        let key = match &e.key {
            Some(k) => k.clone(),
            None => {
                n += 1;
                n.to_string()
            }
        };
        let full = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
        match &e.value {
            ScriptValue::Text(t) => out.push((full, t.clone())),
            ScriptValue::Table(t) => out.extend(flatten(t, &full)),
        }
    }
    out
}
