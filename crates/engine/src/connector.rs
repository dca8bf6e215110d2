//! Connect probes on dedicated threads, each with its own epoll loop.
//!
//! Kernel work dominates a connect scan: socket, connect, readiness, error read, close — and on a
//! local network the target's own stack answering in our softirq. A general-purpose async
//! runtime adds an epoll registration *and* deregistration per socket and cross-thread wake-ups
//! per event; here each worker owns an epoll instance, registers each socket once (closing it
//! removes it), and reports outcomes in batches. Per probe that is five syscalls: socket,
//! connect, epoll_ctl, getsockopt, close. One worker per core spreads the kernel work.
//!
//! Workers take jobs from a channel, wake on an eventfd when jobs arrive while they sleep, and
//! time probes out from a deadline heap. Results go back on a tokio channel to the scheduler.

use crate::connect::{classify_error, new_socket, Outcome};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use socket2::Socket;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One connect attempt to make. `meta` comes back untouched with the outcome.
#[derive(Debug, Clone, Copy)]
pub struct ConnectJob<M> {
    /// Where to connect.
    pub addr: SocketAddr,
    /// How long to wait for the handshake.
    pub timeout: Duration,
    /// Ask for ICMP details (IP_RECVERR).
    pub recverr: bool,
    /// Caller's bookkeeping.
    pub meta: M,
}

/// The outcome of a [`ConnectJob`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectDone<M> {
    /// The job's `meta`.
    pub meta: M,
    /// What happened.
    pub outcome: Outcome,
}

struct Worker<M> {
    jobs: std_mpsc::Sender<ConnectJob<M>>,
    wake: Arc<EventFd>,
    sleeping: Arc<AtomicBool>,
}

/// A set of connect worker threads.
pub struct Connector<M: Send + 'static> {
    workers: Vec<Worker<M>>,
    next: usize,
}

const WAKE_TOKEN: u64 = u64::MAX;

struct Slot<M> {
    sock: Socket,
    start: Instant,
    meta: M,
    gen: u32,
}

impl<M: Send + Copy + 'static> Connector<M> {
    /// Start `threads` workers reporting to `results`. Fails only if no thread could be started.
    pub fn new(threads: usize, results: mpsc::UnboundedSender<ConnectDone<M>>) -> std::io::Result<Connector<M>> {
        let mut workers = Vec::new();
        let mut last_err = None;
        for i in 0..threads.max(1) {
            match Self::start(i, results.clone()) {
                Ok(w) => workers.push(w),
                Err(e) => last_err = Some(e),
            }
        }
        if workers.is_empty() {
            return Err(last_err.unwrap_or_else(|| std::io::Error::other("no connect worker")));
        }
        Ok(Connector { workers, next: 0 })
    }

    fn start(i: usize, results: mpsc::UnboundedSender<ConnectDone<M>>) -> std::io::Result<Worker<M>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = Arc::new(EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
        epoll.add(wake.as_ref(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE_TOKEN))?;
        let sleeping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std_mpsc::channel::<ConnectJob<M>>();
        let (w, s) = (wake.clone(), sleeping.clone());
        std::thread::Builder::new()
            .name(format!("rustmap-connect-{i}"))
            .spawn(move || worker_loop(epoll, rx, w, s, results))?;
        Ok(Worker { jobs: tx, wake, sleeping })
    }

    /// Number of worker threads by default: one per core.
    pub fn default_threads() -> usize {
        if let Some(n) = std::env::var("RUSTMAP_PROBE_THREADS").ok().and_then(|v| v.parse().ok()) {
            return n;
        }
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }

    /// Queue a job on the next worker.
    pub fn submit(&mut self, job: ConnectJob<M>) {
        for _ in 0..self.workers.len() {
            self.next = (self.next + 1) % self.workers.len();
            let w = &self.workers[self.next];
            if w.jobs.send(job).is_ok() {
                if w.sleeping.swap(false, Ordering::AcqRel) {
                    let _ = w.wake.write(1);
                }
                return;
            }
        }
    }
}

impl<M: Send + 'static> Drop for Connector<M> {
    fn drop(&mut self) {
        // Closing the job channels ends the workers; wake any that sleep.
        let workers = std::mem::take(&mut self.workers);
        for w in workers {
            let wake = w.wake.clone();
            drop(w.jobs);
            let _ = wake.write(1);
        }
    }
}

/// A worker's sockets in flight.
struct InFlight<M> {
    epoll: Epoll,
    slots: Vec<Option<Slot<M>>>,
    free: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    gen: u32,
    results: mpsc::UnboundedSender<ConnectDone<M>>,
}

impl<M: Copy> InFlight<M> {
    /// Start a job; returns false when nobody listens for results any more.
    fn start(&mut self, job: ConnectJob<M>) -> bool {
        let start = Instant::now();
        let sock = match begin(&job) {
            Ok(sock) => sock,
            Err(outcome) => return self.results.send(ConnectDone { meta: job.meta, outcome }).is_ok(),
        };
        let idx = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        if self.epoll.add(&sock, EpollEvent::new(EpollFlags::EPOLLOUT, idx as u64)).is_err() {
            self.free.push(idx);
            return self.results.send(ConnectDone { meta: job.meta, outcome: Outcome::LocalPressure }).is_ok();
        }
        self.gen = self.gen.wrapping_add(1);
        self.deadlines.push(Reverse((start + job.timeout, idx, self.gen)));
        self.slots[idx] = Some(Slot { sock, start, meta: job.meta, gen: self.gen });
        true
    }

    /// Report and release a slot.
    fn complete(&mut self, idx: usize, outcome: Outcome) -> bool {
        let Some(slot) = self.slots.get_mut(idx).and_then(Option::take) else { return true };
        self.free.push(idx);
        // Dropping the socket closes it, which also removes it from the epoll set.
        self.results.send(ConnectDone { meta: slot.meta, outcome }).is_ok()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Time out every probe whose deadline has passed.
    fn expire(&mut self, now: Instant) -> bool {
        while let Some(Reverse((d, idx, g))) = self.deadlines.peek().copied() {
            if d > now {
                break;
            }
            self.deadlines.pop();
            let live = self.slots.get(idx).and_then(Option::as_ref).is_some_and(|s| s.gen == g);
            if live && !self.complete(idx, Outcome::Timeout) {
                return false;
            }
        }
        true
    }
}

fn worker_loop<M: Copy>(
    epoll: Epoll,
    jobs: std_mpsc::Receiver<ConnectJob<M>>,
    wake: Arc<EventFd>,
    sleeping: Arc<AtomicBool>,
    results: mpsc::UnboundedSender<ConnectDone<M>>,
) {
    let mut fl = InFlight { epoll, slots: Vec::new(), free: Vec::new(), deadlines: BinaryHeap::new(), gen: 0, results };
    let mut events = vec![EpollEvent::empty(); 1024];
    loop {
        // Take every queued job.
        loop {
            match jobs.try_recv() {
                Ok(job) => {
                    if !fl.start(job) {
                        return;
                    }
                }
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        }
        // With probes in flight, gather completions in short naps instead of waking per event:
        // on a LAN a refusal comes back in tens of microseconds, and one wake-up per probe (plus
        // the scheduler's eventfd write to end the sleep) would double the syscalls of a scan.
        // The nap is far below any probe timeout, so it only delays results, never changes them.
        if fl.slots.len() > fl.free.len() {
            let n = fl.epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0);
            if n < COALESCE_MIN_EVENTS {
                std::thread::sleep(COALESCE_NAP);
            }
            let n = if n == 0 { fl.epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0) } else { n };
            if !handle_events(&mut fl, &events[..n], &wake) || !fl.expire(Instant::now()) {
                return;
            }
            continue;
        }
        // Announce that we are about to sleep, then look once more: a job queued between the drain
        // and the flag was sent without a wake-up.
        sleeping.store(true, Ordering::Release);
        let timeout = match jobs.try_recv() {
            Ok(job) => {
                sleeping.store(false, Ordering::Release);
                if !fl.start(job) {
                    return;
                }
                continue;
            }
            Err(std_mpsc::TryRecvError::Disconnected) => return,
            // Round up so that a deadline a fraction of a millisecond away does not spin.
            Err(std_mpsc::TryRecvError::Empty) => match fl.next_deadline() {
                Some(d) => {
                    EpollTimeout::try_from(d.saturating_duration_since(Instant::now()) + Duration::from_micros(999))
                        .unwrap_or(EpollTimeout::MAX)
                }
                None => EpollTimeout::NONE,
            },
        };
        let n = fl.epoll.wait(&mut events, timeout).unwrap_or(0);
        sleeping.store(false, Ordering::Release);
        if !handle_events(&mut fl, &events[..n], &wake) || !fl.expire(Instant::now()) {
            return;
        }
    }
}

/// Fewer ready sockets than this after a look: nap before the next look.
const COALESCE_MIN_EVENTS: usize = 16;
/// How long to nap while probes are in flight.
const COALESCE_NAP: Duration = Duration::from_micros(100);

/// Complete every socket that became ready; false when nobody listens for results any more.
fn handle_events<M: Copy>(fl: &mut InFlight<M>, events: &[EpollEvent], wake: &EventFd) -> bool {
    for ev in events {
        let token = ev.data();
        if token == WAKE_TOKEN {
            let _ = wake.read();
            continue;
        }
        let idx = token as usize;
        let outcome = match fl.slots.get(idx).and_then(Option::as_ref) {
            Some(slot) => finish(slot),
            None => continue,
        };
        // `None`: spurious wake-up, keep waiting.
        if let Some(outcome) = outcome {
            if !fl.complete(idx, outcome) {
                return false;
            }
        }
    }
    true
}

/// Start a connect. `Err` carries an outcome known at once (refused on loopback, no route, ...).
fn begin<M>(job: &ConnectJob<M>) -> Result<Socket, Outcome> {
    let start = Instant::now();
    let sock = new_socket(job.addr, job.recverr).map_err(|e| classify_error(&e, None, start.elapsed()))?;
    match sock.connect(&job.addr.into()) {
        Ok(()) => {
            let _ = sock.set_linger(Some(Duration::ZERO));
            Err(Outcome::Open(start.elapsed()))
        }
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        Err(e) => Err(classify_error(&e, Some(sock.as_raw_fd()), start.elapsed())),
    }
}

/// The socket became writable or failed: what happened? `None` for a spurious wake-up.
fn finish<M>(slot: &Slot<M>) -> Option<Outcome> {
    let elapsed = slot.start.elapsed();
    match slot.sock.take_error() {
        Ok(Some(e)) | Err(e) => return Some(classify_error(&e, Some(slot.sock.as_raw_fd()), elapsed)),
        Ok(None) => {}
    }
    match slot.sock.peer_addr() {
        Ok(_) => {
            // Close with RST: no TIME_WAIT on our side, and the service sees a reset.
            let _ = slot.sock.set_linger(Some(Duration::ZERO));
            Some(Outcome::Open(elapsed))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => None,
        Err(e) => Some(classify_error(&e, Some(slot.sock.as_raw_fd()), elapsed)),
    }
}
