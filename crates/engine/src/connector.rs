//! Connect probes on dedicated threads, each with its own epoll loop.
//!
//! Kernel work dominates a connect scan: on a local network the target's own stack answers in
//! our softirq, inside our `connect` call. Everything else is overhead to cut:
//!
//! - **Sockets are reused.** A non-blocking connect that was refused leaves a clean, unconnected
//!   socket once its error has been read, and Linux lets such a socket connect again. Each worker
//!   keeps its sockets registered in its epoll set (edge-triggered, once) and reuses them while
//!   their attempts end in a refusal, so a closed port costs two syscalls — `connect` to start,
//!   `connect` again to read the outcome — instead of socket, connect, epoll_ctl, getsockopt and
//!   close. Sockets that connected, saw an ICMP error or timed out are closed, not reused.
//! - **Outcomes travel in batches**: one channel send (one scheduler wake-up) per loop turn.
//! - **Naps**: with probes in flight a worker gathers completions in 100 µs naps instead of
//!   waking once per event.
//!
//! Workers take jobs from a channel, wake on an eventfd when jobs arrive while they sleep, and
//! time probes out from a deadline heap. One worker per core spreads the kernel work.

use crate::connect::{classify_error, new_socket, Outcome};
use crate::origin::Origin;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use rustmap_model::Reason;
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

/// A socket owned by a worker, registered once in its epoll set (token = slot index) and reused
/// for connect after connect while its attempts end in a plain refusal.
struct Slot<M> {
    sock: Socket,
    /// Address family and IP_RECVERR setting: a socket only serves jobs that want the same.
    key: SockKey,
    /// The attempt in flight, if any.
    job: Option<Attempt<M>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SockKey {
    v6: bool,
    recverr: bool,
}

impl SockKey {
    fn index(self) -> usize {
        usize::from(self.v6) * 2 + usize::from(self.recverr)
    }
}

struct Attempt<M> {
    addr: SocketAddr,
    start: Instant,
    meta: M,
    gen: u32,
}

impl<M: Send + Copy + 'static> Connector<M> {
    /// Start `threads` workers reporting to `results`. Fails only if no thread could be started.
    pub fn new(threads: usize, results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>) -> std::io::Result<Connector<M>> {
        Self::with_origin(threads, results, Origin::default())
    }

    /// As [`Connector::new`], with sockets bound to an interface and source address (`-e`, `-S`).
    pub fn with_origin(
        threads: usize,
        results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
        origin: Origin,
    ) -> std::io::Result<Connector<M>> {
        let mut workers = Vec::new();
        let mut last_err = None;
        let origin = Arc::new(origin);
        for i in 0..threads.max(1) {
            match Self::start(i, results.clone(), origin.clone()) {
                Ok(w) => workers.push(w),
                Err(e) => last_err = Some(e),
            }
        }
        if workers.is_empty() {
            return Err(last_err.unwrap_or_else(|| std::io::Error::other("no connect worker")));
        }
        Ok(Connector { workers, next: 0 })
    }

    fn start(
        i: usize,
        results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
        origin: Arc<Origin>,
    ) -> std::io::Result<Worker<M>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = Arc::new(EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?);
        epoll.add(wake.as_ref(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE_TOKEN))?;
        let sleeping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std_mpsc::channel::<ConnectJob<M>>();
        let (w, s) = (wake.clone(), sleeping.clone());
        std::thread::Builder::new()
            .name(format!("rustmap-connect-{i}"))
            .spawn(move || worker_loop(epoll, rx, w, s, results, origin))?;
        Ok(Worker { jobs: tx, wake, sleeping })
    }

    /// Number of worker threads by default: one per core.
    pub fn default_threads() -> usize {
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

/// A worker's sockets: in flight, idle (ready for another connect), and the deadline heap.
struct InFlight<M> {
    epoll: Epoll,
    slots: Vec<Option<Slot<M>>>,
    /// Slot indices without a socket.
    free: Vec<usize>,
    /// Slot indices whose socket is idle and reusable, per [`SockKey::index`].
    idle: [Vec<usize>; 4],
    /// Attempts in flight.
    busy: usize,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    gen: u32,
    results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
    /// Outcomes not yet handed to the scheduler: sent as one batch per loop turn, so the
    /// scheduler wakes once per batch rather than once per probe.
    pending: Vec<ConnectDone<M>>,
    /// Interface and source address for new sockets.
    origin: Arc<Origin>,
}

/// How an attempt ended, as far as its socket is concerned.
enum After {
    /// Keep the socket for the next attempt (it is unconnected again).
    Reuse,
    /// Close it (open port, ICMP error, timeout: anything that may leave state behind).
    Close,
}

impl<M: Copy> InFlight<M> {
    fn new(epoll: Epoll, results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>, origin: Arc<Origin>) -> Self {
        InFlight {
            origin,
            epoll,
            slots: Vec::new(),
            free: Vec::new(),
            idle: Default::default(),
            busy: 0,
            deadlines: BinaryHeap::new(),
            gen: 0,
            results,
            pending: Vec::new(),
        }
    }

    /// A slot with an idle socket of the right kind: reused, or new and registered.
    fn acquire(&mut self, key: SockKey, addr: SocketAddr) -> Result<usize, Outcome> {
        if let Some(idx) = self.idle[key.index()].pop() {
            return Ok(idx);
        }
        let start = Instant::now();
        let sock =
            new_socket(addr, key.recverr, &self.origin).map_err(|e| classify_error(&e, None, start.elapsed()))?;
        let idx = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        // Edge-triggered: an idle socket is unconnected, which polls as "hung up"; level
        // triggering would report it forever. Each state change of an attempt wakes us once.
        let flags = EpollFlags::EPOLLOUT | EpollFlags::EPOLLET;
        if self.epoll.add(&sock, EpollEvent::new(flags, idx as u64)).is_err() {
            self.free.push(idx);
            return Err(Outcome::LocalPressure);
        }
        self.slots[idx] = Some(Slot { sock, key, job: None });
        Ok(idx)
    }

    /// Start a job. Outcomes known at once (refused on the spot, no route) are queued directly.
    fn start(&mut self, job: ConnectJob<M>) {
        let key = SockKey { v6: job.addr.is_ipv6(), recverr: job.recverr };
        let idx = match self.acquire(key, job.addr) {
            Ok(idx) => idx,
            Err(outcome) => {
                self.pending.push(ConnectDone { meta: job.meta, outcome });
                return;
            }
        };
        let Some(slot) = self.slots[idx].as_mut() else { return };
        let start = Instant::now();
        let step = match slot.sock.connect(&job.addr.into()) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
            other => Some(conclude(&slot.sock, key, other, start.elapsed())),
        };
        match step {
            Some((outcome, after)) => {
                self.pending.push(ConnectDone { meta: job.meta, outcome });
                self.release(idx, after);
            }
            None => {
                self.gen = self.gen.wrapping_add(1);
                self.deadlines.push(Reverse((start + job.timeout, idx, self.gen)));
                slot.job = Some(Attempt { addr: job.addr, start, meta: job.meta, gen: self.gen });
                self.busy += 1;
            }
        }
    }

    /// The slot's socket woke: ask the kernel how the attempt went (a second `connect` to the same
    /// address reports it, and after a failure leaves the socket ready for reuse).
    fn poll_slot(&mut self, idx: usize) {
        if let Some((outcome, after)) = self.settled(idx) {
            self.finish(idx, outcome, after);
        }
    }

    /// How the slot's attempt went, as the kernel has it now; `None` while it is still in
    /// progress (or the slot has no attempt).
    fn settled(&self, idx: usize) -> Option<(Outcome, After)> {
        let slot = self.slots.get(idx).and_then(Option::as_ref)?;
        let job = slot.job.as_ref()?;
        let mut r = slot.sock.connect(&job.addr.into());
        if matches!(r.as_ref().map_err(|e| e.raw_os_error()), Err(Some(libc::EALREADY | libc::EINPROGRESS))) {
            // Still in progress as far as `connect` can tell. An ICMP error that arrived while
            // the socket was busy in our own `connect` call is only a "soft" error (the SYN stays
            // pending for its retransmission), which `connect` does not report but SO_ERROR does.
            match slot.sock.take_error() {
                Ok(Some(e)) | Err(e) => r = Err(e),
                Ok(None) => return None, // a wake-up for some other reason
            }
        }
        Some(conclude(&slot.sock, slot.key, r, job.start.elapsed()))
    }

    /// Report the slot's attempt and release the slot.
    fn finish(&mut self, idx: usize, outcome: Outcome, after: After) {
        let Some(job) = self.slots.get_mut(idx).and_then(Option::as_mut).and_then(|s| s.job.take()) else {
            return;
        };
        self.busy -= 1;
        self.pending.push(ConnectDone { meta: job.meta, outcome });
        self.release(idx, after);
    }

    fn release(&mut self, idx: usize, after: After) {
        match after {
            After::Reuse => {
                if let Some(slot) = self.slots[idx].as_ref() {
                    self.idle[slot.key.index()].push(idx);
                }
            }
            After::Close => {
                // Dropping the socket closes it, which also removes it from the epoll set.
                self.slots[idx] = None;
                self.free.push(idx);
            }
        }
    }

    /// Hand the outcomes gathered so far to the scheduler; false when nobody listens any more.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(64));
        self.results.send(batch).is_ok()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Time out every probe whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((d, idx, g))) = self.deadlines.peek().copied() {
            if d > now {
                break;
            }
            self.deadlines.pop();
            let live =
                self.slots.get(idx).and_then(Option::as_ref).and_then(|s| s.job.as_ref()).is_some_and(|j| j.gen == g);
            if live {
                // Ask the kernel first: an attempt may have ended without its wake-up having
                // been read yet (more sockets ready than one `epoll_wait` returns, or a thread
                // that was not scheduled for longer than the timeout). A connection that was
                // made is open, whatever the clock says; an ICMP error the kernel kept as a soft
                // error is that error. Only an attempt still in progress timed out.
                let (outcome, after) = self.settled(idx).unwrap_or((Outcome::Timeout, After::Close));
                // A timed-out attempt's socket is closed: reusing it could carry a late error
                // into the next attempt.
                let after = if matches!(outcome, Outcome::Timeout) { After::Close } else { after };
                self.finish(idx, outcome, after);
            }
        }
    }
}

/// Turn the result of a `connect` call that did not say "in progress" into an outcome, and say
/// whether the socket can serve another attempt.
fn conclude(sock: &Socket, key: SockKey, r: std::io::Result<()>, elapsed: Duration) -> (Outcome, After) {
    // EISCONN: the kernel had already marked the socket connected; that is success too.
    let r = r.or_else(|e| if e.raw_os_error() == Some(libc::EISCONN) { Ok(()) } else { Err(e) });
    match r {
        Ok(()) => {
            // Close with RST: no TIME_WAIT on our side, and the service sees a reset.
            let _ = sock.set_linger(Some(Duration::ZERO));
            (Outcome::Open(elapsed), After::Close)
        }
        // A refusal leaves the socket unconnected and clean (the kernel disconnected it when it
        // reported the error). With IP_RECVERR the error queue may hold an entry: do not reuse.
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) && !key.recverr => {
            (Outcome::Refused(elapsed, Reason::ConnRefused), After::Reuse)
        }
        Err(e) => (classify_error(&e, Some(sock.as_raw_fd()), elapsed), After::Close),
    }
}

fn worker_loop<M: Copy>(
    epoll: Epoll,
    jobs: std_mpsc::Receiver<ConnectJob<M>>,
    wake: Arc<EventFd>,
    sleeping: Arc<AtomicBool>,
    results: mpsc::UnboundedSender<Vec<ConnectDone<M>>>,
    origin: Arc<Origin>,
) {
    let mut fl = InFlight::new(epoll, results, origin);
    let mut events = vec![EpollEvent::empty(); 1024];
    loop {
        // Take every queued job.
        loop {
            match jobs.try_recv() {
                Ok(job) => fl.start(job),
                Err(std_mpsc::TryRecvError::Empty) => break,
                Err(std_mpsc::TryRecvError::Disconnected) => return,
            }
        }
        // With probes in flight, gather completions in short naps instead of waking per event:
        // on a LAN a refusal comes back in tens of microseconds, and one wake-up per probe (plus
        // the scheduler's eventfd write to end the sleep) would double the syscalls of a scan.
        // The nap is far below any probe timeout, so it only delays results, never changes them.
        if fl.busy > 0 {
            let n = fl.epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0);
            if n < COALESCE_MIN_EVENTS {
                std::thread::sleep(COALESCE_NAP);
            }
            let n = if n == 0 { fl.epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0) } else { n };
            handle_events(&mut fl, &events[..n], &wake);
            fl.expire(Instant::now());
            if !fl.flush() {
                return;
            }
            continue;
        }
        if !fl.flush() {
            return;
        }
        // Announce that we are about to sleep, then look once more: a job queued between the drain
        // and the flag was sent without a wake-up.
        sleeping.store(true, Ordering::Release);
        let timeout = match jobs.try_recv() {
            Ok(job) => {
                sleeping.store(false, Ordering::Release);
                fl.start(job);
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
        handle_events(&mut fl, &events[..n], &wake);
        fl.expire(Instant::now());
        if !fl.flush() {
            return;
        }
    }
}

/// Fewer ready sockets than this after a look: nap before the next look.
const COALESCE_MIN_EVENTS: usize = 16;
/// How long to nap while probes are in flight.
const COALESCE_NAP: Duration = Duration::from_micros(100);

/// Look at every socket that woke.
fn handle_events<M: Copy>(fl: &mut InFlight<M>, events: &[EpollEvent], wake: &EventFd) {
    for ev in events {
        let token = ev.data();
        if token == WAKE_TOKEN {
            let _ = wake.read();
            continue;
        }
        fl.poll_slot(token as usize);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A listening loopback port (its listener, to keep it open) and one nothing listens on.
    pub(crate) fn open_and_closed() -> (TcpListener, SocketAddr, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let gone = TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = gone.local_addr().unwrap();
        drop(gone);
        (l, open, closed)
    }

    /// A worker that was not scheduled past a probe's deadline (its wake-ups unread) reports what
    /// the kernel did in the meantime: the connection made is open, the refusal refused; not
    /// "no answer" (which a port scan shows as filtered).
    #[test]
    fn an_attempt_settled_before_its_unread_wake_up_is_not_a_timeout() {
        let (_l, open, closed) = open_and_closed();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
        let mut fl = InFlight::new(epoll, tx, Arc::new(Origin::default()));
        let t = Duration::from_millis(1);
        fl.start(ConnectJob { addr: open, timeout: t, recverr: false, meta: 1u8 });
        fl.start(ConnectJob { addr: closed, timeout: t, recverr: false, meta: 2u8 });
        // Loopback completes both at once (or during `connect` itself): past the deadlines,
        // nothing read from epoll.
        std::thread::sleep(Duration::from_millis(50));
        fl.expire(Instant::now());
        assert!(fl.flush());
        let mut got = rx.try_recv().unwrap();
        got.sort_by_key(|d| d.meta);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(got[0].outcome, Outcome::Open(_)), "{:?}", got[0]);
        assert!(matches!(got[1].outcome, Outcome::Refused(_, Reason::ConnRefused)), "{:?}", got[1]);
        assert_eq!(fl.busy, 0);
    }
}
