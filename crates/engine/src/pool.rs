//! A pool of probe threads. Kernel work dominates a connect scan (socket, connect, epoll
//! registration, close — and, on a local network, the target's own stack answering in our
//! softirq), so probes must run on every core. A shared multi-threaded runtime spends much of
//! that on one epoll instance contended by every thread; instead each pool thread runs its own
//! single-threaded runtime with its own epoll, and probes are dealt to the threads in turn.

use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A probe, ready to run; it reports its result itself.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Worker threads that run probe futures.
pub struct ProbePool {
    workers: Vec<mpsc::UnboundedSender<Job>>,
    next: usize,
}

impl ProbePool {
    /// Start `threads` workers (at least one). Falls back to running jobs on the caller's runtime
    /// when a thread cannot be started.
    pub fn new(threads: usize) -> ProbePool {
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let started = std::thread::Builder::new().name(format!("rustmap-probe-{i}")).spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                rt.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        tokio::spawn(job);
                    }
                });
            });
            if started.is_ok() {
                workers.push(tx);
            }
        }
        ProbePool { workers, next: 0 }
    }

    /// Number of threads used by default: one per core.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    /// Run a job on the next worker.
    pub fn spawn(&mut self, job: Job) {
        let mut job = Some(job);
        for _ in 0..self.workers.len() {
            self.next = (self.next + 1) % self.workers.len();
            match self.workers[self.next].send(job.take().expect("job present")) {
                Ok(()) => return,
                Err(mpsc::error::SendError(j)) => job = Some(j),
            }
        }
        if let Some(j) = job {
            tokio::spawn(j);
        }
    }
}
