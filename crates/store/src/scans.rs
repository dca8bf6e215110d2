//! Stored scans one at a time, as the API server shows and manages them: [`Store::scan`] reads one
//! scan's row (times, status, totals, configuration), [`Store::list`] lists them filtered by status,
//! [`Store::delete`] removes a scan with its hosts and ports, and [`Store::mark_orphans`] marks the
//! scans of killed processes interrupted (a server restarted after a crash).
//!
//! Ids are taken whole here, never as prefixes: a remote client names a scan by the id it was
//! given, and a prefix that happens to match another scan must not delete it.

use crate::{owner, Store, StoreError};
use rusqlite::{params, OptionalExtension, Row};
use rustmap_model::ScanConfig;
use serde::Serialize;

/// One stored scan, with its totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanRecord {
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
    /// The command line (empty for scans started through the API).
    pub args: String,
    /// Hosts found up.
    pub hosts_up: i64,
    /// Hosts found down.
    pub hosts_down: i64,
    /// Hosts scanned.
    pub hosts_total: i64,
    /// Open ports found.
    pub open_ports: i64,
    /// Wall time in seconds, when it ended.
    pub elapsed_secs: Option<f64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The configuration it ran with, when stored and readable by this build.
    #[serde(skip)]
    pub config: Option<ScanConfig>,
}

const COLUMNS: &str =
    "id, started, ended, status, targets, args, hosts_up, hosts_down, hosts_total, open_ports, elapsed, error, config";

fn record(r: &Row<'_>) -> rusqlite::Result<ScanRecord> {
    let config: Option<String> = r.get(12)?;
    Ok(ScanRecord {
        id: r.get(0)?,
        started: r.get(1)?,
        ended: r.get(2)?,
        status: r.get(3)?,
        targets: r.get(4)?,
        args: r.get(5)?,
        hosts_up: r.get(6)?,
        hosts_down: r.get(7)?,
        hosts_total: r.get(8)?,
        open_ports: r.get(9)?,
        elapsed_secs: r.get(10)?,
        error: r.get(11)?,
        // A configuration this build cannot read (a newer version's) is shown without it.
        config: config.and_then(|c| serde_json::from_str(&c).ok()),
    })
}

impl Store {
    /// The stored scan with exactly this id.
    pub fn scan(&self, id: &str) -> Result<ScanRecord, StoreError> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM scans WHERE id = ?1"), params![id], record)
            .optional()?
            .ok_or_else(|| StoreError::UnknownScan(id.to_string()))
    }

    /// Stored scans, newest first, at most `limit`, only those of `status` when given.
    pub fn list(&self, status: Option<&str>, limit: usize) -> Result<Vec<ScanRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM scans WHERE ?1 IS NULL OR status = ?1 ORDER BY started DESC, id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![status, limit], record)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Mark `interrupted` every scan whose row says `running` but whose process is gone (killed,
    /// a power cut), and return their ids. Such a scan is resumable either way
    /// (`rustmap --resume`); the mark makes lists tell the truth. Scans of live processes are
    /// left alone.
    pub fn mark_orphans(&mut self) -> Result<Vec<String>, StoreError> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let running: Vec<(String, Option<i64>, Option<String>)> = {
            let mut st = tx.prepare("SELECT id, pid, owner FROM scans WHERE status = 'running'")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut marked = Vec::new();
        for (id, pid, tag) in running {
            if pid.is_some_and(|p| owner::alive(p, tag.as_deref())) {
                continue;
            }
            tx.execute(
                "UPDATE scans SET status = 'interrupted', pid = NULL, owner = NULL,
                 error = 'the process running it stopped before the scan ended',
                 open_ports = (SELECT count(*) FROM ports WHERE scan = scans.seq AND state = 'open')
                 WHERE id = ?1",
                params![id],
            )?;
            marked.push(id);
        }
        tx.commit()?;
        Ok(marked)
    }

    /// Delete a stored scan, its hosts, ports and down hosts, in one transaction: either all of
    /// it goes or nothing does. An unknown id is [`StoreError::UnknownScan`].
    pub fn delete(&mut self, id: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let seq: Option<i64> =
            tx.query_row("SELECT seq FROM scans WHERE id = ?1", params![id], |r| r.get(0)).optional()?;
        let Some(seq) = seq else { return Err(StoreError::UnknownScan(id.to_string())) };
        // Foreign keys are not enforced (see schema.rs), so the cascade is spelled out.
        tx.execute("DELETE FROM ports WHERE scan = ?1", params![seq])?;
        tx.execute("DELETE FROM hosts WHERE scan = ?1", params![seq])?;
        tx.execute("DELETE FROM down_hosts WHERE scan = ?1", params![seq])?;
        tx.execute("DELETE FROM scan_scripts WHERE scan = ?1", params![seq])?;
        tx.execute("DELETE FROM scans WHERE seq = ?1", params![seq])?;
        tx.commit()?;
        Ok(())
    }
}
