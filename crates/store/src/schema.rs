//! The database schema and its migrations, one step per version, each in a transaction of its
//! own that first reads the version again: two processes opening an old database at once migrate
//! it once (the second waits on the first's write lock, then finds nothing left to do).
//!
//! - Version 1: `scans`, `hosts` (finished up hosts, the whole host as JSON), `ports`.
//! - Version 2 (resume): `scans.pid` and `scans.owner` (the process running the scan, to tell a
//!   scan that is running from one whose process was killed), `scans.resumes` (how many times it
//!   was resumed), and `down_hosts`: the finished down hosts, which version 1 only counted. They
//!   are packed many to a row (one row per written batch and reason, the addresses as a blob of 5
//!   bytes per IPv4 host, 17 per IPv6 host), so that a sweep of 65,536 silent addresses adds a few
//!   hundred kilobytes and about a hundred rows, not 65,536 rows.

use crate::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

const V1: &str = "
    CREATE TABLE IF NOT EXISTS scans (
        id TEXT PRIMARY KEY, started INTEGER NOT NULL, ended INTEGER,
        status TEXT NOT NULL, args TEXT NOT NULL, targets TEXT NOT NULL, config TEXT,
        hosts_up INTEGER NOT NULL DEFAULT 0, hosts_down INTEGER NOT NULL DEFAULT 0,
        hosts_total INTEGER NOT NULL DEFAULT 0, open_ports INTEGER NOT NULL DEFAULT 0,
        elapsed REAL, error TEXT);
    CREATE TABLE IF NOT EXISTS hosts (
        scan_id TEXT NOT NULL REFERENCES scans(id) ON DELETE CASCADE, addr TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT NOT NULL, hostnames TEXT NOT NULL, mac TEXT,
        result TEXT NOT NULL, PRIMARY KEY (scan_id, addr));
    CREATE TABLE IF NOT EXISTS ports (
        scan_id TEXT NOT NULL, addr TEXT NOT NULL, proto TEXT NOT NULL, port INTEGER NOT NULL,
        state TEXT NOT NULL, reason TEXT NOT NULL, service TEXT, product TEXT, version TEXT,
        PRIMARY KEY (scan_id, addr, proto, port),
        FOREIGN KEY (scan_id, addr) REFERENCES hosts(scan_id, addr) ON DELETE CASCADE);
    CREATE INDEX IF NOT EXISTS scans_by_targets ON scans(targets, started);
";

const V2: &str = "
    ALTER TABLE scans ADD COLUMN pid INTEGER;
    ALTER TABLE scans ADD COLUMN owner TEXT;
    ALTER TABLE scans ADD COLUMN resumes INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE down_hosts (
        scan_id TEXT NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        reason TEXT NOT NULL, addrs BLOB NOT NULL);
    CREATE INDEX down_hosts_by_scan ON down_hosts(scan_id);
";

/// Bring the database to [`crate::SCHEMA_VERSION`], one version at a time.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let steps: [(i64, &str); 2] = [(1, V1), (2, V2)];
    for (to, sql) in steps {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > crate::SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found: now });
        }
        if now < to {
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {to};"))?;
        }
        tx.commit()?;
    }
    Ok(())
}
