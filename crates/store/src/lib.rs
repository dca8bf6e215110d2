//! Scan history in SQLite (the embedded default: no server). Every scan is stored as it runs by
//! [`StoreSink`], a sink of the event stream; [`Store`] reads the history back and [`diff`]
//! compares two stored scans.
//!
//! - The database is one file (`~/.rustmap/rustmap.db` by default, `--db PATH`), in WAL mode
//!   with a busy timeout, so several RustMap processes can write to it at once.
//! - The schema is versioned by `PRAGMA user_version` ([`SCHEMA_VERSION`]); older databases are
//!   migrated in a transaction, a newer one is refused untouched ([`StoreError::TooNew`]). Read
//!   only ([`Store::open_read_only`]), an older database is read as it is, not migrated.
//! - A file that is not a SQLite database, or a damaged one, is refused before anything is
//!   written to it ([`StoreError::NotADatabase`]).
//!
//! Tables (version 3, see `schema.rs`): `scans` (id, times, status, command line, targets, config,
//! totals, the process running it; `seq`, the integer the other tables name it by), `hosts` (one
//! row per finished up host: status, reason, names, the whole host as JSON), `ports` (one row per
//! listed port of an up host: state, reason, service, product, version) and `down_hosts`
//! (finished down hosts, packed many to a row).
//! Together they are a scan's checkpoint: [`Store::claim`] turns them into a
//! [`Checkpoint`](rustmap_model::Checkpoint) to resume from, and [`FinishedHosts`] reads the
//! finished hosts back.

mod diff;
mod knowledge;
mod owner;
mod resume;
mod scans;
mod schema;
mod sink;

pub use diff::{diff, HostChange, PortChange, ScanDiff};
pub use knowledge::PastHost;
pub use resume::FinishedHosts;
pub use scans::ScanRecord;
pub use sink::{targets_key, StoreHealth, StoreSink};

use rusqlite::{params, Connection, OptionalExtension};
use rustmap_model::{HostResult, ScriptResult, ScriptScope};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Version of the database schema this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The page size of a new database.
const PAGE_SIZE: i64 = 16384;

/// The size of the write-ahead log at which a writer copies it into the database.
const WAL_CHECKPOINT: i64 = 4 << 20;

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file exists but is not a SQLite database (or is damaged); it was not touched.
    #[error("{0} is not a RustMap database (not SQLite, or damaged); it was left untouched")]
    NotADatabase(PathBuf),
    /// The database was written by a newer RustMap.
    #[error("{path} has schema version {found}, newer than this RustMap understands ({SCHEMA_VERSION}); it was left untouched")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
    },
    /// No stored scan has this id or id prefix.
    #[error("no stored scan matches {0:?} (rustmap --history lists them)")]
    UnknownScan(String),
    /// Several stored scans start with this prefix.
    #[error("{0:?} matches several stored scans; give more of the id")]
    Ambiguous(String),
    /// The directory of the database could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An older database could not be migrated; it was left as it was.
    #[error("{path} cannot be upgraded to schema {to}: {why}; it was left as it was")]
    Migration {
        /// The file.
        path: PathBuf,
        /// The version it was being migrated to.
        to: i64,
        /// Why.
        why: String,
    },
    /// The scan ran to its end: there is nothing to resume.
    #[error("scan {0} is completed: there is nothing to resume")]
    Completed(String),
    /// The scan is still running in a live process.
    #[error("scan {id} is still running (process {pid}); stop it first, or wait for it")]
    StillRunning {
        /// The scan.
        id: String,
        /// The process running it.
        pid: i64,
    },
    /// The scan cannot be resumed (no configuration stored, or one this build cannot read).
    #[error("scan {id} cannot be resumed: {why}")]
    NotResumable {
        /// The scan.
        id: String,
        /// Why.
        why: String,
    },
    /// SQLite failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("stored data: {0}")]
    Json(#[from] serde_json::Error),
}

/// One stored scan, as `--history` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanSummary {
    /// The scan's id (ULID).
    pub id: String,
    /// Start, seconds since the Unix epoch.
    pub started: i64,
    /// End, when it ended.
    pub ended: Option<i64>,
    /// `running`, `completed`, `interrupted` or `failed`.
    pub status: String,
    /// The targets as given.
    pub targets: String,
    /// The command line.
    pub args: String,
    /// Hosts found up.
    pub hosts_up: i64,
    /// Open ports found.
    pub open_ports: i64,
    /// Wall time in seconds, when it ended.
    pub elapsed_secs: Option<f64>,
}

/// How hard SQLite works to keep committed transactions across a crash (`--db-sync`), as its
/// `PRAGMA synchronous`. In WAL mode a killed process never loses a commit with any of them; they
/// differ on a power cut or an operating-system crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbSync {
    /// No fsync at all: fastest; a power cut may lose recent scans, or damage the file.
    Off,
    /// fsync at WAL checkpoints (the default): a power cut may lose the last transactions, never
    /// the file's consistency.
    #[default]
    Normal,
    /// fsync at every commit: a power cut loses nothing that was committed.
    Full,
}

impl DbSync {
    fn pragma(self) -> &'static str {
        match self {
            DbSync::Off => "OFF",
            DbSync::Normal => "NORMAL",
            DbSync::Full => "FULL",
        }
    }
}

impl std::str::FromStr for DbSync {
    type Err = String;

    fn from_str(s: &str) -> Result<DbSync, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(DbSync::Off),
            "normal" => Ok(DbSync::Normal),
            "full" => Ok(DbSync::Full),
            _ => Err(format!("--db-sync must be off, normal or full, not {s:?}")),
        }
    }
}

/// The scan history database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The default database: `~/.rustmap/rustmap.db` (`%APPDATA%\rustmap\rustmap.db` on Windows).
pub fn default_path() -> Option<PathBuf> {
    if cfg!(windows) {
        std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join("rustmap").join("rustmap.db"))
    } else {
        std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".rustmap").join("rustmap.db"))
    }
}

impl Store {
    /// Open (or create) the database at `path`, migrating an older schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, DbSync::Normal)
    }

    /// [`Store::open`] with the durability asked for (`--db-sync`).
    pub fn open_with(path: &Path, sync: DbSync) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(path)?;
        // Before the first query: another process may be creating the schema or switching the
        // file to WAL right now, and without a busy handler SQLite says "database is locked" at
        // once instead of waiting (seen with four scans starting on one new file).
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut store = Store { conn, path: path.to_path_buf() };
        store.check_and_migrate(sync)?;
        Ok(store)
    }

    /// Open the database read-only (history, diffs, what past scans know): nothing is created or
    /// migrated. An older database reads as the current one through temporary views.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let store = Store { conn, path: path.to_path_buf() };
        let version = store.version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: store.path, found: version });
        }
        store.conn.busy_timeout(BUSY_TIMEOUT)?;
        schema::views_of_older(&store.conn, version)?;
        Ok(store)
    }

    /// The schema version, after checking that the file is a database at all: SQLite reads the
    /// header only on the first query, and a file that is not a database fails there, unchanged.
    fn version(&self) -> Result<i64, StoreError> {
        let not_db = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::NotADatabase(self.path.clone())
            }
            _ => StoreError::Sql(e),
        };
        self.conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(not_db)?;
        let v: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(not_db)?;
        if v == 0 {
            // A database of something else (tables but no version of ours) is not ours either.
            let foreign: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT IN ('scans','hosts','ports','down_hosts','scan_scripts')",
                    [],
                    |r| r.get(0),
                )
                .map_err(not_db)?;
            if foreign > 0 {
                return Err(StoreError::NotADatabase(self.path.clone()));
            }
        }
        Ok(v)
    }

    fn check_and_migrate(&mut self, sync: DbSync) -> Result<(), StoreError> {
        let version = self.version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found: version });
        }
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // A new database gets 16 KiB pages: a sweep writes a few hundred bytes per host, and with
        // four times fewer pages to fill, log and copy it costs about 15 % less CPU than with
        // SQLite's 4 KiB (BENCHMARKS.md § Storing cost). An existing database keeps its pages.
        self.conn.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE};"))?;
        // The durability asked for, from the first write on (a new file's switch to WAL included).
        // The store keeps its rows' references itself (see `schema.rs`); SQLite checking them
        // would cost an index lookup per row written.
        self.conn.execute_batch(&format!("PRAGMA synchronous={}; PRAGMA foreign_keys=OFF;", sync.pragma()))?;
        // WAL: readers never wait for the writer, and a crash loses at most the last transaction.
        self.conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        // Checkpoint when the log reaches 4 MiB, whatever the page size (SQLite's default is 1000
        // pages: 4 MB of 4 KiB pages).
        let page: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        self.conn.query_row(
            &format!("PRAGMA wal_autocheckpoint={}", WAL_CHECKPOINT / page.max(512)),
            [],
            |_| Ok(()),
        )?;
        if version < SCHEMA_VERSION {
            schema::migrate(&mut self.conn, &self.path)?;
        }
        Ok(())
    }

    /// The path of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Stored scans, newest first, at most `limit`.
    pub fn history(&self, limit: usize) -> Result<Vec<ScanSummary>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, started, ended, status, targets, args, hosts_up, open_ports, elapsed FROM scans
             ORDER BY started DESC, id DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(ScanSummary {
                id: r.get(0)?,
                started: r.get(1)?,
                ended: r.get(2)?,
                status: r.get(3)?,
                targets: r.get(4)?,
                args: r.get(5)?,
                hosts_up: r.get(6)?,
                open_ports: r.get(7)?,
                elapsed_secs: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The id of the stored scan that `given` names: a whole id or a unique prefix.
    pub fn resolve(&self, given: &str) -> Result<String, StoreError> {
        let pattern = format!("{}%", given.replace(['%', '_'], ""));
        let mut st = self.conn.prepare("SELECT id FROM scans WHERE id LIKE ?1 ORDER BY id LIMIT 2")?;
        let ids: Vec<String> = st.query_map(params![pattern], |r| r.get(0))?.collect::<Result<_, _>>()?;
        match (given.is_empty(), ids.len()) {
            (false, 1) => Ok(ids[0].clone()),
            (false, 2..) => Err(StoreError::Ambiguous(given.to_string())),
            _ => Err(StoreError::UnknownScan(given.to_string())),
        }
    }

    /// The newest completed scan of exactly these targets, other than `except`.
    pub fn last_completed(&self, targets: &str, except: Option<&str>) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id FROM scans WHERE targets = ?1 AND status = 'completed' AND id != ?2
                 ORDER BY started DESC, id DESC LIMIT 1",
                params![targets, except.unwrap_or("")],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The finished hosts of a stored scan, in address order.
    pub fn hosts(&self, scan_id: &str) -> Result<Vec<HostResult>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT result FROM hosts WHERE scan = (SELECT seq FROM scans WHERE id = ?1) ORDER BY addr")?;
        let rows: Vec<String> = st.query_map(params![scan_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows.iter().map(|j| serde_json::from_str(j).map_err(StoreError::from)).collect()
    }

    /// The pre- and postrule script results of a stored scan, in the order they came (host and
    /// port scripts are in [`hosts`](Store::hosts)).
    pub fn scan_scripts(&self, scan_id: &str) -> Result<Vec<(ScriptScope, ScriptResult)>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT phase, result FROM scan_scripts WHERE scan = (SELECT seq FROM scans WHERE id = ?1) ORDER BY rowid",
        )?;
        let rows: Vec<(String, String)> =
            st.query_map(params![scan_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        rows.iter()
            .map(|(phase, j)| {
                let scope = if phase == "pre" { ScriptScope::Pre } else { ScriptScope::Post };
                Ok((scope, serde_json::from_str(j)?))
            })
            .collect()
    }
}
