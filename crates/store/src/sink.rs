//! [`StoreSink`]: the store as a sink of the event stream. It writes as results arrive, on a
//! writer thread of its own: the scan's row at `ScanStarted` (status `running`), finished hosts in
//! batched transactions (every [`BATCH`] hosts, and at each of the pipeline's ticks, four times a
//! second), and the scan's end at `ScanFinished`. A crash loses at most the last batch, and the
//! scan's row says `running` with the id of a process that is gone: the scan can be resumed from
//! what was written.
//!
//! The sink hands finished hosts to the writer a few dozen at a time (and all it holds at each
//! tick, at `Stopping` and at the end), not one by one: on a sweep that finishes tens of thousands
//! of hosts a second, waking the writer thread for every host cost more CPU than writing it.
//!
//! The writer's connection does not checkpoint when it closes (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
//! copying the write-ahead log's last pages (up to the 4 MiB at which the store checkpoints) into
//! the database and syncing both took 10-250 ms at the end of every scan, on the scan's wall time.
//! The log stays beside the database (`rustmap.db-wal`; every reader reads through it) until the
//! next checkpoint: the next scan's, or any program's that closes the database last, as the
//! sqlite3 shell does. Nothing committed is lost by a killed process either way; on a power cut,
//! `--db-sync normal` may lose the transactions since the last checkpoint, as it always could
//! (docs/history.md § Durability), and `full` syncs every commit.
//!
//! Down hosts are written too, packed many to a row (see `schema.rs`): they are part of the
//! checkpoint, so that a resumed sweep does not probe the silent addresses again.
//!
//! A resumed scan keeps its id: its `ScanStarted` finds the scan's row and marks it running again
//! (counting the resume), and the hosts the checkpoint already holds, which the resumed scan
//! delivers again for its outputs, are not written twice ([`StoreSink::skipping`]).
//!
//! A store that fails (a full disk, a read-only file) never fails the scan: the sink stops
//! writing, keeps the first error in its [`StoreHealth`], and the front-end warns once that the
//! history was not saved.

use crate::{owner, resume, Store};
use rusqlite::config::DbConfig;
use rusqlite::params;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rustmap_model::{
    AddrSet, Control, HostResult, HostStatus, PortState, Reason, ScanConfig, ScanEvent, ScanOutcome, ScanStats,
    ScriptScope, Sink, SinkError,
};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Hosts written per transaction at most.
pub const BATCH: usize = 512;

/// Down hosts written per transaction at most (they are a few bytes each).
const DOWN_BATCH: usize = 8192;

/// Up hosts the sink hands the writer thread at a time: a sweep finishes tens of thousands of
/// hosts a second, and waking the writer for each would cost more than writing it.
const HANDOFF: usize = 64;

/// Down hosts handed over at a time.
const DOWN_HANDOFF: usize = 1024;

/// Messages queued for the writer thread before the scan waits for it (about 8,192 up hosts).
const QUEUE: usize = 128;

/// What became of the history: shared with the front-end, which reads it after the scan.
#[derive(Debug, Default, Clone)]
pub struct StoreHealth {
    /// The scan's id, once its row was written.
    pub scan_id: Option<String>,
    /// The first error; after it nothing more was written.
    pub error: Option<String>,
}

/// What the sink hands its writer thread.
enum Msg {
    Start {
        id: String,
        start: i64,
        args: String,
        targets: String,
        config: Option<String>,
    },
    Hosts(Vec<HostResult>),
    Down(Vec<(IpAddr, Reason)>),
    Flush,
    /// A pre- or postrule script's result (`phase` "pre" or "post"), as JSON.
    Script {
        phase: &'static str,
        result: String,
    },
    Finish(ScanStats),
}

/// Writes a scan into the store as it runs. The SQLite work happens on a writer thread of its own,
/// so the scan's pipeline only queues the finished hosts, a few dozen at a time and at each
/// [`tick`](Sink::tick) (the queue is bounded: a writer that falls far behind slows the scan
/// rather than losing hosts).
pub struct StoreSink {
    tx: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
    /// Finished hosts not handed over yet.
    hosts: Vec<HostResult>,
    down: Vec<(IpAddr, Reason)>,
    /// Hosts the store holds already (a resumed scan's checkpoint): not written again.
    skip: AddrSet,
    /// The scan is stopping: the hosts reported from now on were cut short.
    stopping: bool,
}

impl StoreSink {
    /// A sink writing into `store`; `health` tells the caller how it went.
    pub fn new(mut store: Store, health: Arc<Mutex<StoreHealth>>) -> StoreSink {
        // The scan's end does not wait for a checkpoint (module documentation); should SQLite
        // refuse the setting, closing checkpoints as it always did.
        let _ = store.conn().set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        let (tx, rx) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("rustmap-store".into())
            .spawn(move || {
                Writer {
                    store: Some(store),
                    health,
                    scan_id: String::new(),
                    scan: 0,
                    pending: Vec::new(),
                    down: Vec::new(),
                }
                .run(rx)
            })
            .ok();
        StoreSink {
            tx: writer.as_ref().map(|_| tx),
            writer,
            hosts: Vec::new(),
            down: Vec::new(),
            skip: AddrSet::new(),
            stopping: false,
        }
    }

    /// Leave out the hosts of `done`: a resumed scan's checkpoint, already stored.
    pub fn skipping(mut self, done: AddrSet) -> StoreSink {
        self.skip = done;
        self
    }

    fn send(&mut self, m: Msg) {
        if let Some(tx) = &self.tx {
            if tx.send(m).is_err() {
                self.tx = None;
            }
        }
    }

    /// Hand the finished hosts gathered so far to the writer.
    fn hand_over(&mut self) {
        if !self.hosts.is_empty() {
            let hosts = std::mem::replace(&mut self.hosts, Vec::with_capacity(HANDOFF));
            self.send(Msg::Hosts(hosts));
        }
        if !self.down.is_empty() {
            let down = std::mem::take(&mut self.down);
            self.send(Msg::Down(down));
        }
    }

    /// Wait for the writer to commit everything gathered and queued.
    fn close(&mut self) {
        self.hand_over();
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// The writer thread's state: it owns the connection.
struct Writer {
    store: Option<Store>,
    health: Arc<Mutex<StoreHealth>>,
    scan_id: String,
    /// The scan's `scans.seq`, by which its rows name it.
    scan: i64,
    pending: Vec<HostResult>,
    down: Vec<(IpAddr, Reason)>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Msg::Hosts(mut hosts)) => {
                    self.pending.append(&mut hosts);
                    if self.pending.len() >= BATCH {
                        self.flush();
                    }
                }
                Ok(Msg::Down(mut down)) => {
                    self.down.append(&mut down);
                    if self.down.len() >= DOWN_BATCH {
                        self.flush();
                    }
                }
                Ok(Msg::Start { id, start, args, targets, config }) => {
                    let (pid, tag) = owner::me();
                    let mut seq = 0;
                    self.write(|store, _, _| {
                        // A resumed scan finds its row: running again, by this process.
                        seq = store.conn().query_row(
                            "INSERT INTO scans (id, started, status, args, targets, config, pid, owner)
                             VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7)
                             ON CONFLICT (id) DO UPDATE SET status = 'running', ended = NULL, error = NULL,
                                 pid = excluded.pid, owner = excluded.owner, resumes = resumes + 1
                             RETURNING seq",
                            params![id, start, args, targets, config, pid, tag],
                            |r| r.get(0),
                        )?;
                        Ok(())
                    });
                    (self.scan_id, self.scan) = (id, seq);
                    if self.store.is_some() {
                        if let Ok(mut h) = self.health.lock() {
                            h.scan_id = Some(self.scan_id.clone());
                        }
                    }
                }
                Ok(Msg::Flush) | Err(RecvTimeoutError::Timeout) => self.flush(),
                Ok(Msg::Script { phase, result }) => self.write(|store, scan, _| {
                    store.conn().execute(
                        "INSERT INTO scan_scripts (scan, phase, result) VALUES (?1, ?2, ?3)",
                        params![scan, phase, result],
                    )?;
                    Ok(())
                }),
                Ok(Msg::Finish(stats)) => {
                    self.flush();
                    self.finish(&stats);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    /// Run `f` on the store (with the scan's `seq`); on error record it once and stop writing.
    fn write(&mut self, f: impl FnOnce(&mut Store, i64, &mut Vec<HostResult>) -> Result<(), crate::StoreError>) {
        let Some(store) = self.store.as_mut() else { return };
        if let Err(e) = f(store, self.scan, &mut self.pending) {
            if let Ok(mut h) = self.health.lock() {
                h.error.get_or_insert(e.to_string());
            }
            self.store = None;
            self.pending.clear();
            self.down.clear();
        }
    }

    /// Write the finished hosts queued, up and down, in one transaction, with the count of open
    /// ports they add to the scan's.
    fn flush(&mut self) {
        if self.pending.is_empty() && self.down.is_empty() {
            return;
        }
        // Down hosts, grouped by reason, one packed row per reason.
        let mut packed: BTreeMap<&'static str, Vec<IpAddr>> = BTreeMap::new();
        for (addr, reason) in self.down.drain(..) {
            packed.entry(reason.as_str()).or_default().push(addr);
        }
        self.write(|store, scan, pending| {
            let tx = store.conn().transaction()?;
            {
                let mut down = tx.prepare_cached("INSERT INTO down_hosts (scan, reason, addrs) VALUES (?1, ?2, ?3)")?;
                let mut blob = Vec::new();
                for (reason, addrs) in &packed {
                    blob.clear();
                    resume::pack(addrs, &mut blob);
                    down.execute(params![scan, reason, blob])?;
                }
                let mut host = tx.prepare_cached(
                    "INSERT INTO hosts (scan, addr, status, reason, hostnames, mac, result)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (scan, addr) DO NOTHING",
                )?;
                let mut port = tx.prepare_cached(
                    "INSERT OR REPLACE INTO ports (scan, addr, proto, port, state, reason, service, product, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                // Buffers reused from host to host.
                let (mut addr, mut json) = (String::new(), Vec::with_capacity(1024));
                let mut open = 0i64;
                for h in pending.iter() {
                    addr.clear();
                    let _ = write!(addr, "{}", h.addr);
                    json.clear();
                    serde_json::to_writer(&mut json, h)?;
                    // serde_json writes UTF-8: bound as text as it is.
                    let result = ToSqlOutput::Borrowed(ValueRef::Text(&json));
                    let listed;
                    let names = if h.hostnames.is_empty() {
                        "[]"
                    } else {
                        listed =
                            serde_json::to_string(&h.hostnames.iter().map(|n| n.name.as_str()).collect::<Vec<_>>())?;
                        listed.as_str()
                    };
                    let row = params![scan, addr, h.status.as_str(), h.reason.as_str(), names, h.mac, result];
                    if host.execute(row)? == 0 {
                        // The same address twice in one scan (a target given twice): the last
                        // result replaces the first, ports included.
                        open -= tx.query_row(
                            "SELECT count(*) FROM ports WHERE scan = ?1 AND addr = ?2 AND state = 'open'",
                            params![scan, addr],
                            |r| r.get::<_, i64>(0),
                        )?;
                        tx.execute("DELETE FROM ports WHERE scan = ?1 AND addr = ?2", params![scan, addr])?;
                        tx.execute(
                            "UPDATE hosts SET status = ?3, reason = ?4, hostnames = ?5, mac = ?6, result = ?7
                             WHERE scan = ?1 AND addr = ?2",
                            row,
                        )?;
                    }
                    for p in &h.ports {
                        let s = p.service.as_ref();
                        port.execute(params![
                            scan,
                            addr,
                            p.protocol.as_str(),
                            p.port,
                            p.state.as_str(),
                            p.reason.as_str(),
                            s.map(|s| s.display_name()),
                            s.and_then(|s| s.product.as_deref()),
                            s.and_then(|s| s.version.as_deref())
                        ])?;
                        open += i64::from(p.state == PortState::Open);
                    }
                }
                if open != 0 {
                    tx.execute("UPDATE scans SET open_ports = open_ports + ?2 WHERE seq = ?1", params![scan, open])?;
                }
            }
            tx.commit()?;
            pending.clear();
            Ok(())
        });
    }

    fn finish(&mut self, s: &ScanStats) {
        let (status, error) = match &s.outcome {
            ScanOutcome::Completed => ("completed", None),
            ScanOutcome::Cancelled => ("interrupted", None),
            ScanOutcome::Failed { error } => ("failed", Some(error.clone())),
        };
        self.write(|store, scan, _| {
            // Open ports were counted as the hosts were written (a resumed scan's partly before).
            store.conn().execute(
                "UPDATE scans SET ended = ?2, status = ?3, hosts_up = ?4, hosts_down = ?5, hosts_total = ?6,
                 elapsed = ?7, error = ?8, pid = NULL, owner = NULL WHERE seq = ?1",
                params![
                    scan,
                    s.end_unix,
                    status,
                    s.hosts_up as i64,
                    s.hosts_down as i64,
                    s.hosts_total as i64,
                    s.elapsed_secs,
                    error
                ],
            )?;
            Ok(())
        });
    }
}

/// The key under which a scan's targets are stored, and `--diff` finds the previous scan of the
/// same targets: the targets as given, then `-iL FILE` for each target file.
pub fn targets_key(c: &ScanConfig) -> String {
    let files = c.target_files.iter().map(|f| format!("-iL {}", f.display()));
    c.targets.iter().cloned().chain(files).collect::<Vec<_>>().join(" ")
}

impl Sink for StoreSink {
    fn event(&mut self, ev: &ScanEvent) -> Result<Control, SinkError> {
        match ev {
            ScanEvent::ScanStarted(info) => self.send(Msg::Start {
                id: info.scan_id.clone(),
                start: info.start_unix,
                args: info.args.clone(),
                targets: info.config.as_deref().map(targets_key).unwrap_or_default(),
                config: info.config.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            }),
            // Hosts cut short by a cancel are not finished: storing them would make a resumed
            // scan take their partial results as final. They are scanned again on resume.
            // The hosts finished before it are written at once.
            ScanEvent::Stopping => {
                self.stopping = true;
                self.hand_over();
                self.send(Msg::Flush);
            }
            ScanEvent::HostDone(_) if self.stopping => {}
            ScanEvent::HostDone(h) if self.skip.contains(h.addr) => {}
            // Down hosts are packed many to a row: a sweep of a /16 would otherwise store 65,000
            // rows saying nothing.
            ScanEvent::HostDone(h) if h.status == HostStatus::Down => {
                self.down.push((h.addr, h.reason));
                if self.down.len() >= DOWN_HANDOFF {
                    self.hand_over();
                }
            }
            ScanEvent::HostDone(h) => {
                self.hosts.push(h.clone());
                if self.hosts.len() >= HANDOFF {
                    self.hand_over();
                }
            }
            // Pre- and postrule results; host and port scripts travel inside their host.
            ScanEvent::ScriptOutput { scope, result } if !self.stopping => {
                let phase = match scope {
                    ScriptScope::Pre => "pre",
                    ScriptScope::Post => "post",
                    _ => return Ok(Control::Continue),
                };
                if let Ok(result) = serde_json::to_string(result) {
                    self.send(Msg::Script { phase, result });
                }
            }
            ScanEvent::ScanFinished(stats) => {
                self.hand_over();
                self.send(Msg::Finish(stats.clone()));
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> Result<(), SinkError> {
        self.hand_over();
        self.send(Msg::Flush);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.close();
        Ok(())
    }
}

impl Drop for StoreSink {
    fn drop(&mut self) {
        self.close();
    }
}
