//! The database schema and its migrations, one step per version, each in a transaction of its
//! own that first reads the version again: two processes opening an old database at once migrate
//! it once (the second waits on the first's write lock, then finds nothing left to do). A step
//! that fails rolls back whole: the file stays at the version it had.
//!
//! - Version 1: `scans`, `hosts` (finished up hosts, the whole host as JSON), `ports`.
//! - Version 2 (resume): `scans.pid` and `scans.owner` (the process running the scan, to tell a
//!   scan that is running from one whose process was killed), `scans.resumes` (how many times it
//!   was resumed), and `down_hosts`: the finished down hosts, which version 1 only counted. They
//!   are packed many to a row (one row per written batch and reason, the addresses as a blob of 5
//!   bytes per IPv4 host, 17 per IPv6 host), so that a sweep of 65,536 silent addresses adds a few
//!   hundred kilobytes and about a hundred rows, not 65,536 rows.
//! - Version 3 (cheaper writes, for sweeps that store tens of thousands of hosts a second): rows
//!   name their scan by `scans.seq`, an integer, instead of repeating its 26-character id in every
//!   row and every index entry (`hosts.scan`, `ports.scan`, `down_hosts.scan`); `ports` is a
//!   `WITHOUT ROWID` table, whose primary key is the table itself (one B-tree to write, not two),
//!   and `scans.open_ports` is counted as hosts are written rather than at the scan's end. The
//!   step copies every row into the new tables and checks that none was left behind before it
//!   drops the old ones.
//!
//! A new database (no tables yet) gets the current schema at once, in one transaction.
//!
//! The `FOREIGN KEY` clauses say how the tables refer to each other; the store does not have
//! SQLite enforce them (`PRAGMA foreign_keys=OFF`: each check is an index lookup per row written),
//! it writes a host's ports with their host, in one transaction, and deletes nothing.

use crate::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};
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

/// The tables of version 3, the current schema, their names followed by `suffix` (the migration
/// from version 2 builds them beside the old ones; their references name the final tables).
fn v3_tables(suffix: &str) -> String {
    format!(
        "CREATE TABLE scans{suffix} (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, started INTEGER NOT NULL, ended INTEGER,
            status TEXT NOT NULL, args TEXT NOT NULL, targets TEXT NOT NULL, config TEXT,
            hosts_up INTEGER NOT NULL DEFAULT 0, hosts_down INTEGER NOT NULL DEFAULT 0,
            hosts_total INTEGER NOT NULL DEFAULT 0, open_ports INTEGER NOT NULL DEFAULT 0,
            elapsed REAL, error TEXT, pid INTEGER, owner TEXT, resumes INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE hosts{suffix} (
            scan INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE, addr TEXT NOT NULL,
            status TEXT NOT NULL, reason TEXT NOT NULL, hostnames TEXT NOT NULL, mac TEXT,
            result TEXT NOT NULL, PRIMARY KEY (scan, addr));
        CREATE TABLE ports{suffix} (
            scan INTEGER NOT NULL, addr TEXT NOT NULL, proto TEXT NOT NULL, port INTEGER NOT NULL,
            state TEXT NOT NULL, reason TEXT NOT NULL, service TEXT, product TEXT, version TEXT,
            PRIMARY KEY (scan, addr, proto, port),
            FOREIGN KEY (scan, addr) REFERENCES hosts(scan, addr) ON DELETE CASCADE) WITHOUT ROWID;
        CREATE TABLE down_hosts{suffix} (
            scan INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
            reason TEXT NOT NULL, addrs BLOB NOT NULL);"
    )
}

/// The indexes of version 3, once its tables have their names.
const V3_INDEXES: &str = "
    CREATE INDEX scans_by_targets ON scans(targets, started);
    CREATE INDEX down_hosts_by_scan ON down_hosts(scan);
";

/// Version 4: the results of a scan's pre- and postrule scripts (host and port scripts are in
/// their host's `result`), one row each, in the order they came.
const V4: &str = "
    CREATE TABLE scan_scripts (
        scan INTEGER NOT NULL REFERENCES scans(seq) ON DELETE CASCADE,
        phase TEXT NOT NULL, result TEXT NOT NULL);
    CREATE INDEX scan_scripts_by_scan ON scan_scripts(scan);
";

/// Version 3, first half: the new tables filled from the old ones. Scans keep their order,
/// down-host rows their row ids (resuming reads them back in that order).
const V3_COPY: &str = "
    INSERT INTO scans_v3 (id, started, ended, status, args, targets, config, hosts_up, hosts_down,
            hosts_total, open_ports, elapsed, error, pid, owner, resumes)
        SELECT id, started, ended, status, args, targets, config, hosts_up, hosts_down,
            hosts_total, open_ports, elapsed, error, pid, owner, resumes
        FROM scans ORDER BY started, id;
    INSERT INTO hosts_v3 (scan, addr, status, reason, hostnames, mac, result)
        SELECT s.seq, h.addr, h.status, h.reason, h.hostnames, h.mac, h.result
        FROM hosts h JOIN scans_v3 s ON s.id = h.scan_id ORDER BY h.rowid;
    INSERT INTO ports_v3 (scan, addr, proto, port, state, reason, service, product, version)
        SELECT s.seq, p.addr, p.proto, p.port, p.state, p.reason, p.service, p.product, p.version
        FROM ports p JOIN scans_v3 s ON s.id = p.scan_id;
    INSERT INTO down_hosts_v3 (rowid, scan, reason, addrs)
        SELECT d.rowid, s.seq, d.reason, d.addrs FROM down_hosts d JOIN scans_v3 s ON s.id = d.scan_id;
";

/// Version 3, second half, once every row was found copied: the old tables go, the new ones take
/// their names.
const V3_SWAP: &str = "
    DROP TABLE down_hosts;
    DROP TABLE ports;
    DROP TABLE hosts;
    DROP TABLE scans;
    ALTER TABLE scans_v3 RENAME TO scans;
    ALTER TABLE hosts_v3 RENAME TO hosts;
    ALTER TABLE ports_v3 RENAME TO ports;
    ALTER TABLE down_hosts_v3 RENAME TO down_hosts;
";

fn v3(tx: &Transaction, path: &Path) -> Result<(), StoreError> {
    tx.execute_batch(&v3_tables("_v3"))?;
    tx.execute_batch(V3_COPY)?;
    for table in ["scans", "hosts", "ports", "down_hosts"] {
        let count = |t: &str| tx.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0));
        let (old, new) = (count(table)?, count(&format!("{table}_v3"))?);
        if old != new {
            return Err(StoreError::Migration {
                path: path.to_path_buf(),
                to: 3,
                why: format!("{} of the {old} rows of `{table}` name no stored scan", old - new),
            });
        }
    }
    tx.execute_batch(V3_SWAP)?;
    tx.execute_batch(V3_INDEXES)?;
    Ok(())
}

/// One migration step: the SQL of a version, or a function for a step that checks its work.
enum Step {
    Sql(&'static str),
    Code(fn(&Transaction, &Path) -> Result<(), StoreError>),
}

/// Bring the database to [`crate::SCHEMA_VERSION`]: a new one (no tables) at once, an older one
/// one version at a time. The connection must not enforce foreign keys (version 3 drops tables
/// that others refer to).
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if now == 0 && tables == 0 {
        tx.execute_batch(&v3_tables(""))?;
        tx.execute_batch(V3_INDEXES)?;
        tx.execute_batch(V4)?;
        tx.execute_batch(&format!("PRAGMA user_version = {};", crate::SCHEMA_VERSION))?;
    }
    tx.commit()?;
    let steps: [(i64, Step); 4] = [(1, Step::Sql(V1)), (2, Step::Sql(V2)), (3, Step::Code(v3)), (4, Step::Sql(V4))];
    for (to, step) in steps {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > crate::SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: path.to_path_buf(), found: now });
        }
        if now < to {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql)?,
                Step::Code(f) => f(&tx, path)?,
            }
            tx.execute_batch(&format!("PRAGMA user_version = {to};"))?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// Make an older database read as the current one on a read-only connection, which must not
/// migrate it: temporary views (in the connection's own `temp` schema, never in the file) of the
/// current tables' shape over the old tables, which they hide. `seq` is then the old `scans`
/// row id, stable for as long as the connection reads.
pub(crate) fn views_of_older(conn: &Connection, version: i64) -> Result<(), StoreError> {
    if !(1..crate::SCHEMA_VERSION).contains(&version) {
        return Ok(());
    }
    // Before version 4 no scan stored script results.
    conn.execute_batch(
        "CREATE TEMP VIEW scan_scripts AS SELECT NULL AS rowid, NULL AS scan, NULL AS phase, NULL AS result WHERE 0;",
    )?;
    if version == 3 {
        return Ok(());
    }
    let process = if version >= 2 { "pid, owner, resumes" } else { "NULL AS pid, NULL AS owner, 0 AS resumes" };
    conn.execute_batch(&format!(
        "CREATE TEMP VIEW scans AS SELECT rowid AS seq, id, started, ended, status, args, targets, config,
             hosts_up, hosts_down, hosts_total, open_ports, elapsed, error, {process} FROM main.scans;
         CREATE TEMP VIEW hosts AS SELECT s.rowid AS scan, h.addr, h.status, h.reason, h.hostnames, h.mac, h.result
             FROM main.hosts h JOIN main.scans s ON s.id = h.scan_id;
         CREATE TEMP VIEW ports AS SELECT s.rowid AS scan, p.addr, p.proto, p.port, p.state, p.reason, p.service,
             p.product, p.version FROM main.ports p JOIN main.scans s ON s.id = p.scan_id;"
    ))?;
    if version >= 2 {
        conn.execute_batch(
            "CREATE TEMP VIEW down_hosts AS SELECT d.rowid AS rowid, s.rowid AS scan, d.reason, d.addrs
                 FROM main.down_hosts d JOIN main.scans s ON s.id = d.scan_id;",
        )?;
    } else {
        conn.execute_batch(
            "CREATE TEMP VIEW down_hosts AS SELECT NULL AS rowid, NULL AS scan, NULL AS reason, NULL AS addrs WHERE 0;",
        )?;
    }
    Ok(())
}
