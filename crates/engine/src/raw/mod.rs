//! Raw-packet scans: the TCP scans SYN (`-sS`), FIN (`-sF`), NULL (`-sN`), Xmas (`-sX`), ACK
//! (`-sA`), Window (`-sW`) and Maimon (`-sM`), the UDP scan (`-sU`), and the SCTP INIT (`-sY`,
//! the guide's `-s Z`) and COOKIE-ECHO scans, over IPv4 and IPv6, with raw-packet host discovery
//! (ICMP echo, TCP SYN to 443, TCP ACK to 80, ICMP timestamp: nmap's privileged default minus
//! ARP). One run may combine one TCP type, UDP and one SCTP type (`-sS -sU`, `-s SU`): every
//! host's probes of all of them share one window and one set of timers.
//!
//! Design: the scan is a state machine with no I/O (`raw/machine.rs`): hosts, their outstanding
//! probes, RTT estimators, the congestion window and the pacer, driven by calls that carry the
//! time, the packets that arrived and the random source it was given, and answering with the
//! packets to send, the events learned and when to call it next. A thin driver on one blocking
//! thread (`run_blocking` here) owns the clock and the sockets: it sends the machine's
//! packets through a raw IP socket (or as Ethernet frames) and feeds it the replies read from an
//! AF_PACKET capture socket, so there are no locks and no per-packet task. The simulated-network
//! tests drive the same machine on a simulated clock.
//!
//! - **Validation without a probe table.** Every probe's sequence number (and acknowledgement
//!   number, when the ACK flag is set) is a keyed hash of the target address, port and probe
//!   kind. A reply is ours only if it echoes that cookie the way TCP must (SYN/ACK and RST acknowledge
//!   `cookie + 1`; a RST to a probe that carried an ACK has `seq == cookie`), and an ICMP error
//!   only if the TCP header it quotes carries it. Spoofed or stray packets are ignored. SCTP
//!   probes carry the cookie as their initiate tag (INIT) or verification tag (COOKIE-ECHO),
//!   which every answer must echo. UDP has no field a reply must echo, so a UDP answer counts
//!   only when it comes from a probed port to our reserved source port while that probe is out.
//! - **UDP payloads** come from RustMap's own table ([`crate::payloads`]), so DNS, SNMP, NTP and
//!   friends answer and show as open rather than open|filtered.
//! - **ICMP rate limits.** Hosts answer closed UDP ports with ICMP port-unreachable, and most
//!   kernels send about one per second after a short burst. Once a host has answered a closed
//!   port, a UDP probe to it that was sent at the current send gap and still went unanswered
//!   doubles that gap (from 50 ms up to `--max-scan-delay`, 1 s by default), as nmap slows down,
//!   and retries spent finding that pace do not count against `--max-retries`. So closed ports
//!   are not reported open|filtered just because their answers were suppressed.
//! - **Outstanding probes** are kept per host, bounded by the congestion window and the per-host
//!   parallelism, so memory follows what is in flight, not the size of the target range. Hosts
//!   stream in from a bounded channel and leave as soon as they are finished.
//! - **Timing** is the connect scan's: RTT-based timeouts (Karn: only first tries are sampled),
//!   retries only as often as retries have paid off on that host, and the scan ends when the
//!   last probe's own timeout expires.
//! - The kernel answers the targets' SYN/ACKs with a RST (it has no socket for them), which is
//!   what a half-open scan wants. Our source port is held by a bound socket for the whole scan,
//!   so no local connection can be given the same port and see our replies.

use crate::discovery::{app_ping, DiscoveryPlan, Ping, PingOutcome};
use crate::origin::Origin;
use crate::payloads;
use crate::probe::icmp_reason;
use crate::probe::{self, Reply};
use crate::report::{progress_fraction, EngineTotals, HostCore, Life, ScanTarget};
use crate::timing::{Pacer, RttEstimator, Timing, Window};
use crate::Emitter;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;
use rustmap_model::{PassiveSegment, Protocol, Reason, ScanEvent, ScanType};
use rustmap_netio::capture::Capture;
use rustmap_netio::capture::RecvBatch;
use rustmap_netio::neigh::Neighbours;
use rustmap_netio::raw::{Batch, LinkSender, RawIpSender};
use rustmap_netio::route::{Link, RouteTable};
use rustmap_netio::NetioError;
use rustmap_wire::probe::{self as wp, IpProbe, ReplyBody, L4};
use rustmap_wire::tcp::{Flags, TcpOption};
use rustmap_wire::{ethernet, mangle};
use socket2::{Domain, Socket, Type};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;

mod cookies;
mod machine;
mod packets;
mod replies;
pub(crate) mod sockets;
mod state;
mod timeouts;

#[cfg(test)]
mod sim;

use cookies::*;
use machine::*;
pub use sockets::RawSockets;
use sockets::*;
use state::*;
use timeouts::*;

/// Errors that stop a raw scan before it starts.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RawScanError {
    /// Raw sockets could not be opened (privileges, missing kernel support).
    #[error(transparent)]
    Netio(#[from] NetioError),
    /// This scan type is not a raw scan (the connect scan has its own engine).
    #[error("{0:?} is not a raw scan type")]
    NotRaw(ScanType),
    /// Two scan types of one protocol (as in nmap, one TCP type and one SCTP type per scan).
    #[error("two {0} scan types in one scan")]
    TwoOfAKind(Protocol),
    /// Reserving our source port failed.
    #[error("reserving a source port: {0}")]
    SourcePort(std::io::Error),
    /// `-e` named an interface this machine does not have, or one we cannot bind to.
    #[error("interface {0}: {1}")]
    Interface(String, String),
    /// The scan's thread panicked (a bug): its results are lost, and the scan must not be
    /// reported as completed.
    #[error("the raw scan engine crashed: {0}")]
    Panicked(String),
}

/// Configuration of a raw scan.
#[derive(Debug, Clone)]
pub struct RawScan {
    /// The scans and their ports: at most one TCP type (SYN, FIN, NULL, Xmas, ACK, Window,
    /// Maimon), UDP, and at most one SCTP type (INIT, COOKIE-ECHO).
    pub scans: Vec<(ScanType, Vec<u16>)>,
    /// Scan ports in random order (nmap's default) rather than ascending (`-r`).
    pub randomize: bool,
    /// Timing knobs.
    pub timing: Timing,
    /// Skip discovery and treat every host as up (`-Pn`).
    pub skip_discovery: bool,
    /// Which probes find hosts up (ignored with `skip_discovery`).
    pub discovery: DiscoveryPlan,
    /// Non-open states with more ports than this are folded into `extraports` (nmap: 25).
    pub collapse_threshold: usize,
    /// Number of hosts expected, for progress estimates only.
    pub hosts_hint: Option<u64>,
    /// Interface and source address (`-e`, `-S`).
    pub origin: Origin,
    /// Send every probe through the raw IP socket (`--send-ip`), never as an Ethernet frame.
    pub send_ip: bool,
    /// Decoys, fragments, payload and the other evasion options (default: none).
    pub evasion: crate::Evasion,
    /// Keep each host's first SYN-ACKs whole for OS detection's passive tests (`-O`).
    pub passive_os: bool,
}

/// What a failed engine thread said: its panic message, if it was a string.
fn join_error_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "its thread was cancelled".into();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl RawScan {
    /// Scan the targets received on `targets` until the channel closes or the emitter is
    /// cancelled, on a blocking thread of its own.
    pub async fn run(
        self,
        sockets: RawSockets,
        targets: mpsc::Receiver<ScanTarget>,
        emitter: Emitter,
    ) -> Result<EngineTotals, RawScanError> {
        let mut seen: Vec<Protocol> = Vec::new();
        for (scan, _) in &self.scans {
            if *scan == ScanType::Connect {
                return Err(RawScanError::NotRaw(*scan));
            }
            if seen.contains(&scan.protocol()) {
                return Err(RawScanError::TwoOfAKind(scan.protocol()));
            }
            seen.push(scan.protocol());
        }
        let rt = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || self.run_blocking(sockets, targets, emitter, rt));
        job.await.map_err(|e| RawScanError::Panicked(join_error_message(e)))
    }

    /// The driver: the machine's clock, sockets and runtime. Admits targets as the machine
    /// takes them, ticks it, sends what it builds, runs its HTTP pings, waits for the next
    /// timer or packet, and feeds it what arrived, until every target is done or the scan is
    /// cancelled.
    fn run_blocking(
        self,
        io: RawSockets,
        mut targets: mpsc::Receiver<ScanTarget>,
        emitter: Emitter,
        rt: tokio::runtime::Handle,
    ) -> EngineTotals {
        let mut sys = System::load(self.origin.clone());
        let origin = self.origin.clone();
        // HTTP/HTTPS pings run as tasks on the runtime and report here.
        let (app_tx, app_rx) = std::sync::mpsc::channel::<AppDone>();
        let rng = StdRng::from_rng(&mut rand::rng());
        let mut m = Machine::new(self, io.sport, io.udp_sport, rng, Instant::now());
        let mut outbox = Outbox::default();
        let mut rx = RecvBatch::default();
        let emit = |m: &mut Machine| {
            while let Some(ev) = m.poll_event() {
                emitter.emit_blocking(ev);
            }
        };
        loop {
            if emitter.is_cancelled() {
                break;
            }
            // Admit hosts; with nothing in flight and nobody active, wait for the next one.
            while m.wants_hosts() {
                let t = if m.is_idle() {
                    targets.blocking_recv().ok_or(mpsc::error::TryRecvError::Disconnected)
                } else {
                    targets.try_recv()
                };
                match t {
                    Ok(t) => m.admit(t, Instant::now(), &sys),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => m.end_of_targets(),
                }
            }
            m.tick(Instant::now());
            emit(&mut m);
            if m.is_finished() {
                break;
            }
            // Send in batches: each goes out with one `sendmmsg` (one clock reading serves it).
            while m.poll_transmit(Instant::now(), &mut sys, &mut outbox) {
                send(&mut m, &io, &mut sys.links, &mut outbox);
            }
            while let Some(p) = m.poll_app() {
                let (tx, origin) = (app_tx.clone(), origin.clone());
                rt.spawn(async move {
                    let out = app_ping(p.addr, p.https, p.timeout, &origin).await;
                    let _ = tx.send((p.id, p.pk, p.tryno, out));
                });
            }
            // Wait for replies until the machine's next timer, bounded so cancellation and new
            // hosts are seen. Rounded up: a wait cut short would wake before the time it waits for.
            let now = Instant::now();
            let wake = m.poll_at(now).map_or(now + MAX_WAIT, |at| at.min(now + MAX_WAIT));
            let wait = wake.saturating_duration_since(now);
            let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(io.capture.as_fd(), nix::poll::PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            while let Ok(done) = app_rx.try_recv() {
                m.on_app_done(done);
            }
            // Drain what arrived, a batch per system call, before the next tick times probes
            // out: an answer left in the buffer would count as silence (and on a last try, as a
            // filtered port). Bounded by what the capture buffer holds, so a flood of packets
            // cannot starve sending for longer than one buffer's worth.
            for _ in 0..MAX_DRAIN_BATCHES {
                if !matches!(io.capture.recv_batch(&mut rx), Ok(n) if n > 0) {
                    break;
                }
                // One clock reading per batch: its answers arrived within microseconds.
                let now = Instant::now();
                for k in 0..rx.len() {
                    let Some((f, frame)) = rx.get(k) else { break };
                    m.on_frame(f.ethertype, f.src_mac, frame, now);
                }
            }
        }
        if emitter.is_cancelled() {
            // Report what we have for hosts still in progress.
            m.cancel();
            emit(&mut m);
        }
        // Replies lost in our own receive buffer look like silence from the network: say so, for
        // a port shown filtered may then be a lost answer.
        if let Ok(n @ 1..) = io.capture.take_dropped() {
            emitter.emit_blocking(ScanEvent::Warning { message: capture_drop_warning(n) });
        }
        m.totals()
    }
}

/// The warning for `n` replies dropped by the capture socket's full buffer.
fn capture_drop_warning(n: u32) -> String {
    format!(
        "{n} packets arrived faster than they were read and were dropped by the capture buffer: \
         ports without an answer may be shown filtered; --max-rate or a slower -T template avoids it"
    )
}

/// The longest the driver sleeps without looking at cancellation and new targets.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// Batches read from the capture socket per wake-up, at most: 32,768 frames, more than its
/// 16 MiB buffer holds of the small answers a scan gets.
const MAX_DRAIN_BATCHES: usize = 512;

/// Send the outbox through its socket, a `sendmmsg` at a time (then the packets that did not
/// fit the batch, one by one), and tell the machine which probes left: a probe has left when
/// its last packet has.
fn send(m: &mut Machine, io: &RawSockets, links: &mut HashMap<u32, Option<LinkSender>>, outbox: &mut Outbox) {
    let total = outbox.packets();
    let (mut i, mut done) = (0, 0);
    while i < total {
        let result = match outbox.channel {
            Some(Channel::Ip { v6 }) if i < outbox.batch.len() => io.sender.send_batch(v6, &outbox.batch, i),
            Some(Channel::Ip { .. }) => match &outbox.spill[i - outbox.batch.len()] {
                (Some(dst), p) => io.sender.send(p, *dst).map(|()| 1),
                (None, _) => Ok(1),
            },
            Some(Channel::Link(ifindex)) => match links.entry(ifindex).or_insert_with(|| LinkSender::new(ifindex).ok())
            {
                Some(s) if i < outbox.batch.len() => s.send_batch(&outbox.batch, i),
                Some(s) => s.send(&outbox.spill[i - outbox.batch.len()].1).map(|()| 1),
                None => Err(std::io::Error::other("no link-layer sender")),
            },
            None => Ok(total - i),
        };
        let went = match result {
            Ok(n) => n.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::ENOBUFS) => {
                m.on_send_blocked(&outbox.meta[done..], Instant::now());
                break;
            }
            // Unroutable from here (e.g. EHOSTUNREACH from a neighbour miss): it counts as a
            // probe that got no answer.
            Err(_) => 1,
        };
        i = (i + went).min(total);
        let left = done + outbox.ends[done..].iter().take_while(|&&end| end <= i).count();
        m.on_transmitted(&outbox.meta[done..left], Instant::now());
        done = left;
    }
    outbox.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_crashed_engine_thread_is_an_error_with_its_message() {
        let crashed = tokio::task::spawn_blocking(|| -> EngineTotals { panic!("boom at probe 7") }).await;
        assert_eq!(join_error_message(crashed.unwrap_err()), "boom at probe 7");
        let owned = tokio::task::spawn_blocking(|| -> EngineTotals { panic!("{}", String::from("owned")) }).await;
        assert_eq!(join_error_message(owned.unwrap_err()), "owned");
        let err = RawScanError::Panicked("boom".into());
        assert_eq!(err.to_string(), "the raw scan engine crashed: boom");
    }
}
