//! The SQLite database: its schema and migrations, opening (file, file-or-seed, seed only), the
//! seed import, `check` (matching a service against the rules) and `stats`, and the writes the
//! updater commits (one NVD page with the resume cursor, the end of a pass, the KEV table).

use crate::cpe;
use crate::matching::{backport, cpe_keys, product_key, summary, Key, Rule};
use crate::seed;
use crate::version::leading_token;
use crate::{CvssScore, DbStats, KevInfo, ServiceQuery, VulnError, Vulnerability};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The schema version this code writes.
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// Schema version 2 (see the crate docs; version 1 lacked the CVSS v4.0 columns).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cve (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    cvss_tenths INTEGER,
    cvss_version TEXT,
    cvss_vector TEXT,
    cvss4_tenths INTEGER,
    cvss4_vector TEXT,
    published TEXT,
    last_modified TEXT,
    source TEXT NOT NULL CHECK (source IN ('seed', 'nvd'))
);
CREATE TABLE IF NOT EXISTS rule (
    cve_id TEXT NOT NULL REFERENCES cve(id) ON DELETE CASCADE,
    part TEXT NOT NULL,
    vendor TEXT NOT NULL,
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    start_incl TEXT,
    start_excl TEXT,
    end_incl TEXT,
    end_excl TEXT
);
CREATE INDEX IF NOT EXISTS rule_vendor_product ON rule (vendor, product);
CREATE INDEX IF NOT EXISTS rule_cve ON rule (cve_id);
CREATE TABLE IF NOT EXISTS kev (
    cve_id TEXT PRIMARY KEY,
    date_added TEXT NOT NULL,
    due_date TEXT
);
";

/// A CVE with its rules, as the seed or the NVD gives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CveRecord {
    /// `CVE-2023-38408`.
    pub id: String,
    /// The English description (the seed's summary).
    pub description: String,
    /// Score, CVSS version, vector.
    pub cvss: Option<(CvssScore, String, Option<String>)>,
    /// The CVSS v4.0 score and vector, when the record has one besides `cvss`.
    pub cvss_v4: Option<(CvssScore, Option<String>)>,
    /// `2023-07-20` (the NVD's full timestamp is kept as given).
    pub published: Option<String>,
    /// The NVD's `lastModified` (`None` for the seed).
    pub last_modified: Option<String>,
    /// The match rules.
    pub rules: Vec<Rule>,
}

/// What one NVD page says about one CVE.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NvdEntry {
    /// A record to store.
    Record(CveRecord),
    /// A rejected id, to remove.
    Rejected(String),
}

/// The known-vulnerability database: SQLite behind a mutex, so one handle serves every scan
/// thread (`Send + Sync`).
pub struct VulnDb {
    conn: Mutex<Connection>,
    label: String,
}

impl std::fmt::Debug for VulnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnDb").field("path", &self.label).finish_non_exhaustive()
    }
}

impl VulnDb {
    /// `$RUSTMAP_VULN_DB` if set, else `$HOME/.rustmap/vuln.db` (`None` when `HOME` is unset).
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("RUSTMAP_VULN_DB").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
        Some(PathBuf::from(home).join(".rustmap").join("vuln.db"))
    }

    /// Open or create the database file (parent directory created 0700, file 0600), migrate the
    /// schema, and import the bundled seed rules when the bundled seed's version is newer than
    /// the one recorded in the database. Errors name the path.
    pub fn open(path: &Path) -> Result<VulnDb, VulnError> {
        let label = path.display().to_string();
        let io = |source| VulnError::Io { path: label.clone(), source };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(parent).map_err(io)?;
        }
        if !path.exists() {
            let mut o = std::fs::OpenOptions::new();
            o.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path).map_err(io)?;
        }
        let conn = Connection::open(path).map_err(|source| VulnError::Db { path: label.clone(), source })?;
        VulnDb::init(conn, label)
    }

    /// For scans: the file if it exists (opened as [`VulnDb::open`] does), else an in-memory
    /// database holding only the bundled seed — a scan never creates files.
    pub fn open_for_check(path: Option<&Path>) -> Result<VulnDb, VulnError> {
        match path {
            Some(p) if p.exists() => VulnDb::open(p),
            _ => VulnDb::seed_only(),
        }
    }

    /// An in-memory database with the bundled seed only.
    pub fn seed_only() -> Result<VulnDb, VulnError> {
        let label = ":memory:".to_string();
        let conn = Connection::open_in_memory().map_err(|source| VulnError::Db { path: label.clone(), source })?;
        VulnDb::init(conn, label)
    }

    fn init(conn: Connection, label: String) -> Result<VulnDb, VulnError> {
        let db = VulnDb { conn: Mutex::new(conn), label };
        db.with(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.pragma_update(None, "foreign_keys", true)?;
            Ok(())
        })?;
        db.migrate()?;
        db.import_seed()?;
        Ok(db)
    }

    /// The path (or `:memory:`) errors name.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves SQLite consistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the connection, errors naming the database.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, VulnError> {
        let mut c = self.lock();
        f(&mut c).map_err(|source| VulnError::Db { path: self.label.clone(), source })
    }

    fn corrupt(&self, message: impl Into<String>) -> VulnError {
        VulnError::Corrupt { path: self.label.clone(), message: message.into() }
    }

    fn migrate(&self) -> Result<(), VulnError> {
        let found = self.with(|c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")?;
            get_meta(c, "schema_version")
        })?;
        match found.map(|v| v.parse::<u32>()) {
            None => self.with(|c| {
                let tx = c.transaction()?;
                tx.execute_batch(SCHEMA)?;
                set_meta(&tx, "schema_version", &SCHEMA_VERSION.to_string())?;
                tx.commit()
            }),
            Some(Ok(v)) if v == SCHEMA_VERSION => Ok(()),
            // Version 1 lacked the CVSS v4.0 columns: added, empty until the next update.
            Some(Ok(1)) => self.with(|c| {
                let tx = c.transaction()?;
                tx.execute_batch(
                    "ALTER TABLE cve ADD COLUMN cvss4_tenths INTEGER; ALTER TABLE cve ADD COLUMN cvss4_vector TEXT;",
                )?;
                set_meta(&tx, "schema_version", &SCHEMA_VERSION.to_string())?;
                tx.commit()
            }),
            Some(Ok(v)) if v > SCHEMA_VERSION => Err(self.corrupt(format!(
                "schema version {v} was written by a newer RustMap (this one knows {SCHEMA_VERSION})"
            ))),
            Some(Ok(v)) => Err(self.corrupt(format!("unknown schema version {v}"))),
            Some(Err(_)) => Err(self.corrupt("the schema version is not a number")),
        }
    }

    fn import_seed(&self) -> Result<(), VulnError> {
        let seed = seed::bundled()?;
        let recorded = self.with(|c| get_meta(c, "seed_version"))?.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        if seed.version <= recorded {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            let ids: std::collections::HashSet<&str> = seed.cves.iter().map(|c| c.id.as_str()).collect();
            let stale: Vec<String> = {
                let mut s = tx.prepare("SELECT id FROM cve WHERE source = 'seed'")?;
                let rows = s.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
                    .into_iter()
                    .filter(|id| !ids.contains(id.as_str()))
                    .collect()
            };
            for id in stale {
                delete_cve(&tx, &id)?;
            }
            for rec in &seed.cves {
                let source: Option<String> =
                    tx.query_row("SELECT source FROM cve WHERE id = ?1", [&rec.id], |r| r.get(0)).optional()?;
                if source.as_deref() != Some("nvd") {
                    write_cve(&tx, rec, "seed")?;
                }
            }
            for (id, k) in &seed.kev {
                tx.execute(
                    "INSERT OR IGNORE INTO kev (cve_id, date_added, due_date) VALUES (?1, ?2, ?3)",
                    params![id, k.date_added, k.due_date],
                )?;
            }
            set_meta(&tx, "seed_version", &seed.version.to_string())?;
            tx.commit()
        })
    }

    /// The known vulnerabilities of one service, highest CVSS first (ties by CVE id), one per CVE
    /// id, only those `>= min_cvss` when given. See the crate docs for the matching rules.
    pub fn check(&self, svc: &ServiceQuery<'_>, min_cvss: Option<CvssScore>) -> Result<Vec<Vulnerability>, VulnError> {
        let mut keys = cpe_keys(svc);
        if !keys.iter().any(|k| k.part == "a") {
            if let Some(k) = self.product_fallback(svc)? {
                keys.push(k);
            }
        }
        let mut found: BTreeMap<String, Vulnerability> = BTreeMap::new();
        for key in &keys {
            let Some(version) = key.version.as_deref() else { continue };
            let bp = svc.version.is_some_and(backport) || backport(version);
            for (vendor, product) in cpe::aliases(&key.vendor, &key.product) {
                for (rule, v) in self.rules_of(&vendor, &product)? {
                    if rule.part != key.part || found.contains_key(&v.id) || !rule.matches(version) {
                        continue;
                    }
                    let mut v = v;
                    v.matched = key.matched.clone();
                    v.range = rule.range_words();
                    v.backport = bp;
                    found.insert(v.id.clone(), v);
                }
            }
        }
        let mut out: Vec<Vulnerability> =
            found.into_values().filter(|v| min_cvss.is_none_or(|m| v.cvss >= m)).collect();
        out.sort_by(|a, b| b.cvss.cmp(&a.cvss).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The key of a service without an application CPE: its product name against rule products,
    /// when exactly one (vendor, product), up to aliases, has that product name.
    fn product_fallback(&self, svc: &ServiceQuery<'_>) -> Result<Option<Key>, VulnError> {
        let Some(name) = svc.product.map(product_key).filter(|p| !p.is_empty()) else { return Ok(None) };
        let vendors = self.with(|c| {
            let mut s = c.prepare("SELECT DISTINCT vendor FROM rule WHERE product = ?1 AND part = 'a' LIMIT 16")?;
            let rows = s.query_map([&name], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })?;
        let Some(first) = vendors.first() else { return Ok(None) };
        let group = cpe::aliases(first, &name);
        if !vendors.iter().all(|v| group.iter().any(|(gv, gp)| gv == v && *gp == name)) {
            return Ok(None);
        }
        let product = svc.product.unwrap_or_default().trim();
        let matched = match svc.version.map(str::trim).filter(|v| !v.is_empty()) {
            Some(v) => format!("{product} {v}"),
            None => product.to_string(),
        };
        let version = svc.version.and_then(leading_token).map(str::to_string);
        Ok(Some(Key { matched, part: "a".into(), vendor: first.clone(), product: name, version }))
    }

    /// The rules of one (vendor, product), each with its CVE as a `Vulnerability` whose
    /// `matched`, `range` and `backport` are still to be filled.
    fn rules_of(&self, vendor: &str, product: &str) -> Result<Vec<(Rule, Vulnerability)>, VulnError> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT r.part, r.version, r.start_incl, r.start_excl, r.end_incl, r.end_excl,
                        c.id, c.description, c.cvss_tenths, c.cvss_version, c.cvss_vector, c.published, c.source,
                        k.date_added, k.due_date, c.cvss4_tenths, c.cvss4_vector
                 FROM rule r JOIN cve c ON c.id = r.cve_id LEFT JOIN kev k ON k.cve_id = c.id
                 WHERE r.vendor = ?1 AND r.product = ?2",
            )?;
            let rows = s.query_map([vendor, product], |r| {
                let rule = Rule {
                    part: r.get(0)?,
                    vendor: vendor.to_string(),
                    product: product.to_string(),
                    version: r.get(1)?,
                    start_incl: r.get(2)?,
                    start_excl: r.get(3)?,
                    end_incl: r.get(4)?,
                    end_excl: r.get(5)?,
                };
                let tenths: Option<i64> = r.get(8)?;
                let cvss = CvssScore::from_tenths(u8::try_from(tenths.unwrap_or(0).clamp(0, 100)).unwrap_or(0));
                let cvss_version: Option<String> = r.get(9)?;
                let description: String = r.get(7)?;
                let published: Option<String> = r.get(11)?;
                let date_added: Option<String> = r.get(13)?;
                let v = Vulnerability {
                    id: r.get(6)?,
                    cvss,
                    cvss_version: match (tenths, cvss_version) {
                        (Some(_), Some(v)) => v,
                        _ => "none".into(),
                    },
                    vector: r.get(10)?,
                    cvss_v4: r
                        .get::<_, Option<i64>>(15)?
                        .map(|t| CvssScore::from_tenths(u8::try_from(t.clamp(0, 100)).unwrap_or(0))),
                    vector_v4: r.get(16)?,
                    severity: cvss.severity().to_string(),
                    summary: summary(&description),
                    published: published.map(|p| p.chars().take(10).collect()),
                    kev: date_added.map(|date_added| KevInfo { date_added, due_date: r.get(14).ok().flatten() }),
                    matched: String::new(),
                    range: String::new(),
                    backport: false,
                    source: r.get(12)?,
                };
                Ok((rule, v))
            })?;
            rows.collect()
        })
    }

    /// Counts for `--vuln-update`'s summary and the self-test.
    pub fn stats(&self) -> Result<DbStats, VulnError> {
        let (cves, rules, kev, last_update, seed_version) = self.with(|c| {
            let count = |t: &str| c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get::<_, i64>(0));
            Ok((
                count("cve")?,
                count("rule")?,
                count("kev")?,
                get_meta(c, "last_update")?,
                get_meta(c, "seed_version")?,
            ))
        })?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(DbStats {
            cves: n(cves),
            rules: n(rules),
            kev: n(kev),
            last_update,
            seed_version: seed_version.and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }

    /// A meta value.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, VulnError> {
        self.with(|c| get_meta(c, key))
    }

    /// Store one NVD page and the resume cursor in one transaction: (new ids, changed ids).
    pub(crate) fn apply_nvd_page(&self, entries: &[NvdEntry], cursor: &str) -> Result<(u64, u64), VulnError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (mut new, mut changed) = (0, 0);
            for e in entries {
                let id = match e {
                    NvdEntry::Record(r) => &r.id,
                    NvdEntry::Rejected(id) => id,
                };
                let existing: Option<(String, Option<String>)> = tx
                    .query_row("SELECT source, last_modified FROM cve WHERE id = ?1", [id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                match (e, existing) {
                    (NvdEntry::Rejected(_), None) => {}
                    (NvdEntry::Rejected(id), Some(_)) => {
                        delete_cve(&tx, id)?;
                        changed += 1;
                    }
                    (NvdEntry::Record(r), None) => {
                        write_cve(&tx, r, "nvd")?;
                        new += 1;
                    }
                    (NvdEntry::Record(r), Some((source, lm))) => {
                        if source == "nvd" && lm == r.last_modified {
                            continue;
                        }
                        write_cve(&tx, r, "nvd")?;
                        changed += 1;
                    }
                }
            }
            set_meta(&tx, "cursor", cursor)?;
            tx.commit()?;
            Ok((new, changed))
        })
    }

    /// The end of a full NVD pass: record its time, forget the cursor.
    pub(crate) fn finish_nvd(&self, last_update: &str) -> Result<(), VulnError> {
        self.with(|c| {
            let tx = c.transaction()?;
            set_meta(&tx, "last_update", last_update)?;
            tx.execute("DELETE FROM meta WHERE key = 'cursor'", [])?;
            tx.commit()
        })
    }

    /// Replace the KEV table in one transaction: the number of ids that were not in it.
    pub(crate) fn replace_kev(&self, entries: &[(String, KevInfo)]) -> Result<u64, VulnError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let mut new = 0;
            let old: std::collections::HashSet<String> = {
                let mut s = tx.prepare("SELECT cve_id FROM kev")?;
                let rows = s.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            tx.execute("DELETE FROM kev", [])?;
            for (id, k) in entries {
                let n = tx.execute(
                    "INSERT OR IGNORE INTO kev (cve_id, date_added, due_date) VALUES (?1, ?2, ?3)",
                    params![id, k.date_added, k.due_date],
                )?;
                if n == 1 && !old.contains(id) {
                    new += 1;
                }
            }
            tx.commit()?;
            Ok(new)
        })
    }
}

/// Read one meta value.
fn get_meta(c: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

/// Write one meta value.
fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(drop)
}

/// Remove one CVE and its rules.
fn delete_cve(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM rule WHERE cve_id = ?1", [id])?;
    tx.execute("DELETE FROM cve WHERE id = ?1", [id])?;
    Ok(())
}

/// Insert or replace one CVE and all its rules.
fn write_cve(tx: &Transaction<'_>, r: &CveRecord, source: &str) -> rusqlite::Result<()> {
    delete_cve(tx, &r.id)?;
    let (tenths, version, vector) = match &r.cvss {
        Some((s, v, vec)) => (Some(i64::from(s.tenths())), Some(v.as_str()), vec.as_deref()),
        None => (None, None, None),
    };
    let (tenths4, vector4) = match &r.cvss_v4 {
        Some((s, vec)) => (Some(i64::from(s.tenths())), vec.as_deref()),
        None => (None, None),
    };
    tx.execute(
        "INSERT INTO cve (id, description, cvss_tenths, cvss_version, cvss_vector, cvss4_tenths, cvss4_vector,
                          published, last_modified, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![r.id, r.description, tenths, version, vector, tenths4, vector4, r.published, r.last_modified, source],
    )?;
    let mut s = tx.prepare_cached(
        "INSERT INTO rule (cve_id, part, vendor, product, version, start_incl, start_excl, end_incl, end_excl)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for rule in &r.rules {
        s.execute(params![
            r.id,
            rule.part,
            rule.vendor,
            rule.product,
            rule.version,
            rule.start_incl,
            rule.start_excl,
            rule.end_incl,
            rule.end_excl
        ])?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
