//! RustMap's known-vulnerability database (`--vuln-check`, `--vuln-update`): CVEs matched to the
//! product versions service detection found, from a bundled seed and from the NVD, flagged when
//! CISA lists them as known exploited.
//!
//! # Use
//!
//! ```no_run
//! use rustmap_vuln::{ServiceQuery, VulnDb};
//! let db = VulnDb::open_for_check(VulnDb::default_path().as_deref())?;
//! let cpes = vec!["cpe:/a:openbsd:openssh:9.2p1".to_string()];
//! let svc = ServiceQuery { product: Some("OpenSSH"), version: Some("9.2p1 Debian 2+deb12u10"), cpes: &cpes };
//! for v in db.check(&svc, None)? {
//!     println!("{} {} {} ({})", v.id, v.cvss, v.summary, v.range);
//! }
//! # Ok::<(), rustmap_vuln::VulnError>(())
//! ```
//!
//! # Database
//!
//! One SQLite file, by default `$RUSTMAP_VULN_DB` or `$HOME/.rustmap/vuln.db` (directory 0700,
//! file 0600). A scan never creates it: without the file it checks against the bundled seed
//! held in memory. Schema version 2 (version 1, without the v4.0 columns, is migrated on open):
//!
//! | table | columns |
//! |---|---|
//! | `cve` | `id` (key), `description`, `cvss_tenths` (98 = 9.8), `cvss_version`, `cvss_vector`, `cvss4_tenths`, `cvss4_vector` (a v4.0 score beside a v3 one), `published`, `last_modified`, `source` (`seed` or `nvd`) |
//! | `rule` | `cve_id`, `part`, `vendor`, `product`, `version` (exact, or `*`), `start_incl`, `start_excl`, `end_incl`, `end_excl`; indexed by (`vendor`, `product`) and by `cve_id` |
//! | `kev` | `cve_id` (key), `date_added`, `due_date` |
//! | `meta` | `key`/`value`: `schema_version`, `seed_version`, `last_update` (the start time of the last finished NVD pass), `cursor` (JSON: where an unfinished pass stands) |
//!
//! The score kept is CVSS v3.1, else v3.0, else v4.0, else v2 (a CVE without any is reported as
//! 0.0, version `none`); a v4.0 score is kept beside a v3 one as well. An NVD record replaces a seed record of the same id, rules included;
//! a newer bundled seed (its `seed_version` above the recorded one) replaces the seed records
//! but never an NVD one. Every write is one transaction, so a crash leaves the database as it
//! was before that write.
//!
//! # Seed
//!
//! `data/seed.json`, embedded in the binary: a few dozen well-known CVEs of the services RustMap
//! detects (OpenSSH, Apache httpd, nginx, vsftpd, ProFTPD, Samba, Exim, dnsmasq, Dovecot,
//! Postfix, MariaDB, Redis, OpenLDAP, Tomcat, lighttpd, Mosquitto, memcached, Net-SNMP, BIND,
//! Dropbear), with the NVD's affected ranges and CVSS base scores. Its format is described in
//! the `seed` module source and in `docs/vuln.md`.
//!
//! # Matching
//!
//! - Each CPE of the service (CPE 2.2 `cpe:/a:vendor:product:version` or CPE 2.3
//!   `cpe:2.3:a:vendor:product:version:update:...`, a version's update appended: `9.3` + `p1`)
//!   gives a (part, vendor, product, version) key. An application CPE without a version takes
//!   the leading version token of the detected version (`9.2p1` of `9.2p1 Debian 2+deb12u10`;
//!   see [`version::leading_token`]); an operating-system CPE never does.
//! - Without any application CPE, the product name lower-cased with spaces as `_` is looked up
//!   among rule products, and used only when exactly one (vendor, product), up to aliases, has it.
//! - Vendor aliases (nmap's names against the NVD's) are a small table: see [`cpe::ALIASES`].
//! - A rule with an exact version matches that version only (compared with
//!   [`version::compare`], so `2.4` = `2.4.0`); a `*` rule matches within its bounds:
//!   `versionStartIncluding` `>=`, `versionStartExcluding` `>`, `versionEndIncluding` `<=`,
//!   `versionEndExcluding` `<`, or every version without bounds. A rule never matches a service
//!   whose version is unknown.
//! - Results: one per CVE id, highest CVSS first, ties by id; `matched` is the CPE as given (or
//!   `product version`), `range` the rule's bounds in words, `summary` the description's first
//!   sentence within 200 characters, `backport` true when the detected version carries a
//!   distribution package revision (see the rule in `docs/vuln.md`): the distribution may have
//!   fixed the flaw without changing the upstream version, so the finding must be checked
//!   against its security tracker.
//!
//! # Update
//!
//! [`update`] reads the NVD CVE API 2.0 (`startIndex`, `resultsPerPage=2000`): fully the first
//! time, then from the last finished pass's start time to now, in `lastModStartDate` /
//! `lastModEndDate` windows of at most 120 days. Each page is committed together with the resume
//! cursor; a cancelled or failed run is continued by the next one (`resumed`), and only a
//! finished pass records its time. Without an API key at most 5 requests go out in any 30 s, with
//! one 50. HTTP 429 and 503 are retried after `Retry-After` (at most 60 s) or a back-off of 2 s
//! doubling, at most `max_retries` times per page; other non-2xx statuses fail at once. Bodies
//! are read up to 64 MiB, a query to 2000 pages. Then the CISA KEV catalog replaces the `kev`
//! table in one transaction. A record identical to the stored one (same `lastModified`) counts as
//! nothing, so a second update against an unchanged feed reports no change.

pub mod cpe;
mod db;
#[cfg(feature = "fixture")]
pub mod fixture;
mod matching;
mod nvd;
mod seed;
mod update;
pub mod version;

pub use db::VulnDb;
pub use rustmap_model::{CvssScore, KevInfo, Vulnerability};
pub use update::{update, UpdateOptions, UpdateProgress, UpdateSummary, DEFAULT_KEV_URL, DEFAULT_NVD_URL};

/// Parse one NVD CVE API 2.0 page as [`update`] does, without a database: the CVE ids it
/// carries (rejected ones included), or why it is not a page. For the fuzz target and for
/// checking a mirror's pages.
pub fn parse_nvd_page(body: &[u8]) -> Result<Vec<String>, String> {
    let page = nvd::parse_page(body)?;
    Ok(page
        .entries
        .iter()
        .map(|e| match e {
            db::NvdEntry::Record(r) => r.id.clone(),
            db::NvdEntry::Rejected(id) => id.clone(),
        })
        .collect())
}

/// Parse a CISA KEV catalog as [`update`] does: the CVE ids it flags, or why it is not one.
pub fn parse_kev_catalog(body: &[u8]) -> Result<Vec<String>, String> {
    Ok(nvd::parse_kev(body)?.into_iter().map(|(id, _)| id).collect())
}

/// What service detection found on a port.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceQuery<'a> {
    /// The product name (`OpenSSH`).
    pub product: Option<&'a str>,
    /// The whole version string as detected (`9.2p1 Debian 2+deb12u10`).
    pub version: Option<&'a str>,
    /// CPE 2.2 URIs as nmap writes them (`cpe:/a:openbsd:openssh:9.2p1`); CPE 2.3 formatted
    /// strings (`cpe:2.3:a:...`) are accepted too.
    pub cpes: &'a [String],
}

/// Counts for `--vuln-update`'s summary and the self-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStats {
    /// CVEs stored.
    pub cves: u64,
    /// Match rules stored.
    pub rules: u64,
    /// KEV entries stored.
    pub kev: u64,
    /// When the last finished NVD pass began (`2026-12-01T00:00:00.000Z`), if any.
    pub last_update: Option<String>,
    /// The seed version imported.
    pub seed_version: u32,
}

/// Everything that can go wrong opening, checking or updating the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VulnError {
    /// SQLite failed.
    #[error("vulnerability database {path}: {source}")]
    Db {
        /// The database path (or `:memory:`).
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Creating the database's directory or file failed.
    #[error("vulnerability database {path}: {source}")]
    Io {
        /// The database path.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The database holds something this build cannot use.
    #[error("vulnerability database {path}: {message}")]
    Corrupt {
        /// The database path (or `:memory:`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The bundled seed is invalid (a build defect: the seed's test catches it).
    #[error("bundled vulnerability seed: {0}")]
    Seed(String),
    /// A request failed (connection, timeout, body, retries exhausted).
    #[error("{url} (page {page}): {message}")]
    Http {
        /// The URL.
        url: String,
        /// The NVD page number in this run (1-based; 0 for the KEV catalog).
        page: u32,
        /// What failed.
        message: String,
    },
    /// The server answered with a status that is not retried.
    #[error("{url} (page {page}): HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The NVD page number in this run (1-based; 0 for the KEV catalog).
        page: u32,
        /// The HTTP status.
        status: u16,
    },
    /// A response was not what the feed's format says.
    #[error("{url} (page {page}): malformed response: {message}")]
    Malformed {
        /// The URL.
        url: String,
        /// The NVD page number in this run (1-based; 0 for the KEV catalog).
        page: u32,
        /// What is wrong.
        message: String,
    },
    /// The update was cancelled; what was committed stays, and the next update resumes.
    #[error("vulnerability update cancelled; the next update resumes where it stopped")]
    Cancelled,
}
