//! [`StoreSink`]: the store as a sink of the event stream. It writes as results arrive, on a
//! writer thread of its own: the scan's row at `ScanStarted` (status `running`), finished hosts in
//! batched transactions (every [`BATCH`] hosts, and at least four times a second), and the scan's
//! end at `ScanFinished`. A crash loses at most the last batch, and the scan's row says `running`.
//!
//! A store that fails (a full disk, a read-only file) never fails the scan: the sink stops
//! writing, keeps the first error in its [`StoreHealth`], and the front-end warns once that the
//! history was not saved.

use crate::Store;
use rusqlite::params;
use rustmap_model::{
    Control, HostResult, HostStatus, PortState, ScanConfig, ScanEvent, ScanOutcome, ScanStats, Sink, SinkError,
};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Hosts written per transaction at most.
pub const BATCH: usize = 512;

/// Messages queued for the writer thread before the scan waits for it.
const QUEUE: usize = 8192;

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
    Start { id: String, start: i64, args: String, targets: String, config: Option<String> },
    Host(Box<HostResult>),
    Flush,
    Finish { stats: ScanStats, open_ports: i64 },
}

/// Writes a scan into the store as it runs. The SQLite work happens on a writer thread of its own,
/// so the scan's pipeline only queues each finished host (the queue is bounded: a writer that
/// falls far behind slows the scan rather than losing hosts).
pub struct StoreSink {
    tx: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
    open_ports: i64,
}

impl StoreSink {
    /// A sink writing into `store`; `health` tells the caller how it went.
    pub fn new(store: Store, health: Arc<Mutex<StoreHealth>>) -> StoreSink {
        let (tx, rx) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("rustmap-store".into())
            .spawn(move || Writer { store: Some(store), health, scan_id: String::new(), pending: Vec::new() }.run(rx))
            .ok();
        StoreSink { tx: writer.as_ref().map(|_| tx), writer, open_ports: 0 }
    }

    fn send(&mut self, m: Msg) {
        if let Some(tx) = &self.tx {
            if tx.send(m).is_err() {
                self.tx = None;
            }
        }
    }

    /// Wait for the writer to commit everything queued.
    fn close(&mut self) {
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
    pending: Vec<HostResult>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Msg::Host(h)) => {
                    self.pending.push(*h);
                    if self.pending.len() >= BATCH {
                        self.flush();
                    }
                }
                Ok(Msg::Start { id, start, args, targets, config }) => {
                    self.scan_id = id;
                    self.write(|store, id, _| {
                        store.conn().execute(
                            "INSERT INTO scans (id, started, status, args, targets, config)
                             VALUES (?1, ?2, 'running', ?3, ?4, ?5)",
                            params![id, start, args, targets, config],
                        )?;
                        Ok(())
                    });
                    if self.store.is_some() {
                        if let Ok(mut h) = self.health.lock() {
                            h.scan_id = Some(self.scan_id.clone());
                        }
                    }
                }
                Ok(Msg::Flush) | Err(RecvTimeoutError::Timeout) => self.flush(),
                Ok(Msg::Finish { stats, open_ports }) => {
                    self.flush();
                    self.finish(&stats, open_ports);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    /// Run `f` on the store; on error record it once and stop writing.
    fn write(&mut self, f: impl FnOnce(&mut Store, &str, &mut Vec<HostResult>) -> Result<(), crate::StoreError>) {
        let Some(store) = self.store.as_mut() else { return };
        if let Err(e) = f(store, &self.scan_id, &mut self.pending) {
            if let Ok(mut h) = self.health.lock() {
                h.error.get_or_insert(e.to_string());
            }
            self.store = None;
            self.pending.clear();
        }
    }
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.write(|store, id, pending| {
            let tx = store.conn().transaction()?;
            {
                let mut host = tx.prepare_cached(
                    "INSERT OR REPLACE INTO hosts (scan_id, addr, status, reason, hostnames, mac, result)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let mut port = tx.prepare_cached(
                    "INSERT OR REPLACE INTO ports (scan_id, addr, proto, port, state, reason, service, product, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                for h in pending.iter() {
                    let addr = h.addr.to_string();
                    let names: Vec<&str> = h.hostnames.iter().map(|n| n.name.as_str()).collect();
                    host.execute(params![
                        id,
                        addr,
                        h.status.as_str(),
                        h.reason.as_str(),
                        serde_json::to_string(&names)?,
                        h.mac,
                        serde_json::to_string(h)?
                    ])?;
                    for p in &h.ports {
                        let s = p.service.as_ref();
                        port.execute(params![
                            id,
                            addr,
                            p.protocol.as_str(),
                            p.port,
                            p.state.as_str(),
                            p.reason.as_str(),
                            s.map(|s| s.display_name()),
                            s.and_then(|s| s.product.clone()),
                            s.and_then(|s| s.version.clone())
                        ])?;
                    }
                }
            }
            tx.commit()?;
            pending.clear();
            Ok(())
        });
    }

    fn finish(&mut self, s: &ScanStats, open: i64) {
        let (status, error) = match &s.outcome {
            ScanOutcome::Completed => ("completed", None),
            ScanOutcome::Cancelled => ("interrupted", None),
            ScanOutcome::Failed { error } => ("failed", Some(error.clone())),
        };
        self.write(|store, id, _| {
            store.conn().execute(
                "UPDATE scans SET ended = ?2, status = ?3, hosts_up = ?4, hosts_down = ?5, hosts_total = ?6,
                 open_ports = ?7, elapsed = ?8, error = ?9 WHERE id = ?1",
                params![
                    id,
                    s.end_unix,
                    status,
                    s.hosts_up as i64,
                    s.hosts_down as i64,
                    s.hosts_total as i64,
                    open,
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
            // Down hosts are counted in the scan's row, not stored one by one: a sweep of a /16
            // would otherwise store 65,000 rows saying nothing.
            ScanEvent::HostDone(h) if h.status != HostStatus::Down => {
                self.open_ports += h.ports.iter().filter(|p| p.state == PortState::Open).count() as i64;
                self.send(Msg::Host(Box::new(h.clone())));
            }
            ScanEvent::ScanFinished(stats) => {
                let open_ports = self.open_ports;
                self.send(Msg::Finish { stats: stats.clone(), open_ports });
            }
            _ => {}
        }
        Ok(Control::Continue)
    }

    fn tick(&mut self) -> Result<(), SinkError> {
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
