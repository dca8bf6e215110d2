//! Resuming a stored scan: [`Store::claim`] reads a scan's checkpoint (its configuration and the
//! hosts it finished) and marks the scan as run by this process; [`FinishedHosts`] reads the
//! finished hosts back, so that the resumed scan's outputs hold every host, as an uninterrupted
//! scan's would.
//!
//! A scan is resumable when its status is `interrupted` or `failed`, or `running` while the
//! process recorded as running it is gone (killed). A `completed` scan, or one still running in
//! a live process, is refused with an error naming it.

use crate::{owner, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rustmap_model::{AddrSet, Checkpoint, HostResult, HostStatus, Reason, ScanConfig};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Rows read at a time when reading finished hosts back.
const PAGE: usize = 512;

/// Pack down hosts' addresses into a `down_hosts.addrs` blob: a family byte (4 or 6), then the
/// address's bytes.
pub(crate) fn pack(addrs: &[IpAddr], out: &mut Vec<u8>) {
    for a in addrs {
        match a {
            IpAddr::V4(v4) => {
                out.push(4);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.push(6);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
}

/// Read a `down_hosts.addrs` blob back. A damaged blob is an error, never a panic.
pub(crate) fn unpack(mut blob: &[u8]) -> Result<Vec<IpAddr>, StoreError> {
    let damaged = || StoreError::NotResumable { id: String::new(), why: "a stored down-host list is damaged".into() };
    let mut out = Vec::with_capacity(blob.len() / 5);
    while let Some((&family, rest)) = blob.split_first() {
        let (n, make): (usize, fn(&[u8]) -> IpAddr) = match family {
            4 => (4, |b| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            6 => (16, |b| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(o))
            }),
            _ => return Err(damaged()),
        };
        let Some(bytes) = rest.get(..n) else { return Err(damaged()) };
        out.push(make(bytes));
        blob = &rest[n..];
    }
    Ok(out)
}

/// The reason stored as text, back as a [`Reason`] (nmap's spelling is its serde name).
fn reason_of(text: &str) -> Result<Reason, StoreError> {
    Ok(serde_json::from_value(serde_json::Value::String(text.to_string()))?)
}

impl Store {
    /// Read the checkpoint of the scan that `given` names (a whole id or a unique prefix),
    /// without changing anything.
    pub fn checkpoint(&self, given: &str) -> Result<Checkpoint, StoreError> {
        let id = self.resolve(given)?;
        checkpoint_of(&self.conn, &id)
    }

    /// Take the scan that `given` names over for resuming: check it is resumable, mark it
    /// `running` by this process (so a second `--resume` of it is refused while this one runs),
    /// and return its checkpoint. Done in one write transaction, so two processes cannot both
    /// claim it.
    ///
    /// The scan's open ports are counted again from its rows, which the resumed scan adds to: a
    /// scan killed under schema 2 had them counted only at its end.
    pub fn claim(&mut self, given: &str) -> Result<Checkpoint, StoreError> {
        let id = self.resolve(given)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let checkpoint = checkpoint_of(&tx, &id)?;
        let (pid, tag) = owner::me();
        tx.execute(
            "UPDATE scans SET status = 'running', pid = ?2, owner = ?3,
             open_ports = (SELECT count(*) FROM ports WHERE scan = scans.seq AND state = 'open') WHERE id = ?1",
            params![id, pid, tag],
        )?;
        tx.commit()?;
        Ok(checkpoint)
    }
}

/// A scan's row as resuming reads it: seq, status, configuration, process id and owner tag.
type ScanRow = (i64, String, Option<String>, Option<i64>, Option<String>);

fn checkpoint_of(conn: &Connection, id: &str) -> Result<Checkpoint, StoreError> {
    let row: Option<ScanRow> = conn
        .query_row("SELECT seq, status, config, pid, owner FROM scans WHERE id = ?1", params![id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((scan, status, config, pid, tag)) = row else { return Err(StoreError::UnknownScan(id.to_string())) };
    match status.as_str() {
        "completed" => return Err(StoreError::Completed(id.to_string())),
        "running" => {
            if let Some(pid) = pid.filter(|&p| owner::alive(p, tag.as_deref())) {
                return Err(StoreError::StillRunning { id: id.to_string(), pid });
            }
        }
        _ => {}
    }
    let not_resumable = |why: String| StoreError::NotResumable { id: id.to_string(), why };
    let config = config.ok_or_else(|| not_resumable("its configuration was not stored".into()))?;
    let config: ScanConfig = serde_json::from_str(&config)
        .map_err(|e| not_resumable(format!("its stored configuration cannot be read by this build ({e})")))?;
    let mut done = AddrSet::new();
    let mut st = conn.prepare("SELECT addr FROM hosts WHERE scan = ?1")?;
    let addrs: Vec<String> = st.query_map(params![scan], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let parsed: Result<Vec<IpAddr>, _> = addrs.iter().map(|a| a.parse::<IpAddr>()).collect();
    done.extend(parsed.map_err(|_| not_resumable("a stored host address is damaged".into()))?);
    let mut st = conn.prepare("SELECT addrs FROM down_hosts WHERE scan = ?1")?;
    let mut rows = st.query(params![scan])?;
    while let Some(r) = rows.next()? {
        let blob: Vec<u8> = r.get(0)?;
        done.extend(unpack(&blob).map_err(|_| not_resumable("a stored down-host list is damaged".into()))?);
    }
    Ok(Checkpoint { scan_id: id.to_string(), config, done })
}

/// The finished hosts of a stored scan, read back page by page on a connection of their own (up
/// hosts whole, as stored; down hosts with their address and reason): what a resumed scan
/// delivers to its outputs before scanning the rest. An iterator, so a sweep's hosts are never
/// all in memory at once.
pub struct FinishedHosts {
    store: Store,
    /// The scan's `seq`.
    scan: i64,
    /// Up hosts: the last address read (pages go in address order).
    up_after: Option<String>,
    /// Down hosts: the last row read.
    down_after: i64,
    up_done: bool,
    down_done: bool,
    buf: VecDeque<HostResult>,
}

impl FinishedHosts {
    /// Open the database at `path` read-only to read the finished hosts of scan `scan_id` (none
    /// if there is no such scan).
    pub fn open(path: &Path, scan_id: &str) -> Result<FinishedHosts, StoreError> {
        let store = Store::open_read_only(path)?;
        let scan: Option<i64> =
            store.conn.query_row("SELECT seq FROM scans WHERE id = ?1", params![scan_id], |r| r.get(0)).optional()?;
        Ok(FinishedHosts {
            store,
            scan: scan.unwrap_or(0),
            up_after: None,
            down_after: 0,
            up_done: scan.is_none(),
            down_done: scan.is_none(),
            buf: VecDeque::new(),
        })
    }

    fn fill(&mut self) -> Result<(), StoreError> {
        if !self.up_done {
            let mut st = self.store.conn.prepare_cached(
                "SELECT addr, result FROM hosts WHERE scan = ?1 AND addr > ?2 ORDER BY addr LIMIT ?3",
            )?;
            let rows: Vec<(String, String)> = st
                .query_map(params![self.scan, self.up_after.as_deref().unwrap_or(""), PAGE as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            self.up_done = rows.len() < PAGE;
            self.up_after = rows.last().map(|r| r.0.clone()).or(self.up_after.take());
            for (_, json) in rows {
                self.buf.push_back(serde_json::from_str(&json)?);
            }
            if !self.buf.is_empty() {
                return Ok(());
            }
        }
        if !self.down_done {
            let mut st = self.store.conn.prepare_cached(
                "SELECT rowid, reason, addrs FROM down_hosts WHERE scan = ?1 AND rowid > ?2 ORDER BY rowid LIMIT 16",
            )?;
            let rows: Vec<(i64, String, Vec<u8>)> = st
                .query_map(params![self.scan, self.down_after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            self.down_done = rows.len() < 16;
            for (rowid, reason, blob) in rows {
                self.down_after = rowid;
                let reason = reason_of(&reason)?;
                for a in unpack(&blob)? {
                    self.buf.push_back(HostResult::new(a, HostStatus::Down, reason));
                }
            }
        }
        Ok(())
    }
}

impl Iterator for FinishedHosts {
    type Item = Result<HostResult, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.buf.is_empty() && !(self.up_done && self.down_done) {
            if let Err(e) = self.fill() {
                // One error, then the end: a damaged row stops the replay rather than skipping it.
                self.up_done = true;
                self.down_done = true;
                return Some(Err(e));
            }
        }
        self.buf.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_addresses_round_trip_and_damage_is_an_error() {
        let addrs: Vec<IpAddr> = ["198.18.0.1", "fd00::1", "10.0.0.255"].iter().map(|s| s.parse().unwrap()).collect();
        let mut blob = Vec::new();
        pack(&addrs, &mut blob);
        assert_eq!(blob.len(), 5 + 17 + 5);
        assert_eq!(unpack(&blob).unwrap(), addrs);
        assert!(unpack(&blob[..blob.len() - 1]).is_err(), "truncated");
        assert!(unpack(&[9, 1, 2, 3, 4]).is_err(), "unknown family");
        assert!(unpack(&[]).unwrap().is_empty());
    }
}
