//! The OS detection stage (`-O`), after the port scan: the active probes of each finished host
//! that is up, and what they saw, as `rustmap_os::Observations`.
//!
//! It runs beside the scan engines as the trace stage does: the pipeline hands it each finished
//! host ([`OsProber::probe`]) with an open and a closed port the scan found, and gets the
//! observations back; `rustmap-os` turns them into a fingerprint and matches it.
//!
//! Design: a state machine with no I/O (`machine.rs`) and a driver on one blocking thread that
//! owns the clock and the sockets (a raw IP sender and an AF_PACKET capture). The probes
//! (`packets.rs`) are IPv4; IPv6 hosts are not sent to (the pipeline warns).

use crate::origin::Origin;
use crate::raw::sockets::{open_sender_and_capture, reserve_port};
use crate::raw::RawScanError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustmap_model::PassiveSegment;
use rustmap_netio::capture::{Capture, RecvBatch};
use rustmap_netio::raw::RawIpSender;
use rustmap_os::observe::TcpReply;
use rustmap_os::Observations;
use socket2::{Socket, Type};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

mod machine;
pub mod packets;
#[cfg(test)]
mod sim;

use machine::{Config, Machine, Target};
use packets::Ports;

/// One host to probe.
#[derive(Debug, Clone, Copy)]
pub struct OsRequest {
    /// The host (IPv4).
    pub addr: Ipv4Addr,
    /// An open TCP port the scan found.
    pub open: Option<u16>,
    /// A closed TCP port the scan found.
    pub closed: Option<u16>,
    /// A closed UDP port the scan found; `None` sends the UDP probe to a high port that is
    /// seldom open.
    pub closed_udp: Option<u16>,
    /// The scan's smoothed round trip to it.
    pub srtt: Option<Duration>,
}

/// Add the port scan's SYN-ACKs of a host (`passive`, kept by the raw engine) to what its probes
/// saw (`obs`, whose times count from `started`) as the passive evidence, on one clock: from the
/// earliest of them all. Packets that do not parse as IPv4 or IPv6 TCP are left out.
pub fn add_passive(obs: &mut Observations, started: Instant, passive: &[PassiveSegment]) {
    let replies: Vec<(Instant, TcpReply)> =
        passive.iter().filter_map(|s| packets::passive_reply(&s.packet).map(|r| (s.at, r))).collect();
    let Some(base) = replies.iter().map(|r| r.0).min().map(|b| b.min(started)) else { return };
    obs.shift(started.saturating_duration_since(base));
    obs.passive.extend(replies.into_iter().map(|(at, r)| TcpReply { at: at.saturating_duration_since(base), ..r }));
}

/// The UDP port probed when the scan found no closed UDP port.
pub const DEFAULT_CLOSED_UDP: u16 = 40_125;

/// The stage's sockets, opened before the scan starts (a missing privilege is an error up
/// front): the raw IP sender, the capture socket and the reserved source ports.
pub struct OsSockets {
    sender: RawIpSender,
    capture: Capture,
    ports: Ports,
    _reserved: Vec<Socket>,
}

impl OsSockets {
    /// Open the sockets (with `-e`, bound to that interface). Fails without CAP_NET_RAW.
    pub fn open(origin: &Origin) -> Result<OsSockets, RawScanError> {
        let (sender, capture) = open_sender_and_capture(origin)?;
        let mut reserved = Vec::with_capacity(14);
        let mut tcp = [0u16; 13];
        for p in &mut tcp {
            let (s, port) = reserve_port(Type::STREAM)?;
            reserved.push(s);
            *p = port;
        }
        let (u, udp) = reserve_port(Type::DGRAM)?;
        let _ = u.set_recv_buffer_size(1);
        reserved.push(u);
        let ports = Ports { tcp, udp, icmp_id: rand::rng().random() };
        Ok(OsSockets { sender, capture, ports, _reserved: reserved })
    }
}

type Job = (OsRequest, oneshot::Sender<(Observations, Instant)>);

/// The running stage: hand it hosts, get their observations. Its thread ends when the prober
/// is dropped (after the hosts in progress) or the scan is cancelled.
pub struct OsProber {
    jobs: std_mpsc::Sender<Job>,
}

impl OsProber {
    /// Start the stage's thread. `tries` is `--max-os-tries`, `parallel` the hosts probed at once
    /// (the scan's pacing decides it); `origin` gives the source address.
    pub fn start(
        sockets: OsSockets,
        tries: u8,
        parallel: usize,
        origin: Origin,
        cancel: CancellationToken,
    ) -> OsProber {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let cfg = Config { ports: sockets.ports, tries: tries.max(1), parallel: parallel.max(1) };
        let rng = StdRng::from_rng(&mut rand::rng());
        let _ = std::thread::Builder::new()
            .name("rustmap-os".into())
            .spawn(move || drive(sockets, cfg, rng, origin, rx, cancel));
        OsProber { jobs: tx }
    }

    /// Probe one host; its observations count time from the instant returned with them. `None`
    /// when the stage stopped (the scan was cancelled).
    pub async fn probe(&self, req: OsRequest) -> Option<(Observations, Instant)> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send((req, tx)).ok()?;
        rx.await.ok()
    }
}

/// The longest the driver sleeps without looking at cancellation and new hosts.
const MAX_WAIT: Duration = Duration::from_millis(10);

fn source_for(addr: Ipv4Addr, origin: &Origin) -> Option<Ipv4Addr> {
    let ip = IpAddr::V4(addr);
    let src = origin.source_for(ip).or_else(|| rustmap_netio::route::lookup(ip).ok().map(|r| r.src))?;
    match src {
        IpAddr::V4(s) => Some(s),
        IpAddr::V6(_) => None,
    }
}

fn drive(
    io: OsSockets,
    cfg: Config,
    rng: StdRng,
    origin: Origin,
    jobs: std_mpsc::Receiver<Job>,
    cancel: CancellationToken,
) {
    let mut m = Machine::new(cfg, rng);
    let mut waiting: std::collections::HashMap<u64, oneshot::Sender<(Observations, Instant)>> = Default::default();
    let mut next_id: u64 = 0;
    let mut buf = vec![0u8; packets::MAX_LEN];
    let mut rx = RecvBatch::default();
    let mut open = true;
    while !cancel.is_cancelled() {
        loop {
            match crate::stage::next_job(&jobs, m.is_idle() && open) {
                Ok((req, reply)) => {
                    // No way there: an empty answer, at once.
                    let Some(src) = source_for(req.addr, &origin) else {
                        let _ = reply.send((Observations::default(), Instant::now()));
                        continue;
                    };
                    next_id += 1;
                    waiting.insert(next_id, reply);
                    let target = Target {
                        addr: req.addr,
                        src,
                        open: req.open,
                        closed: req.closed,
                        closed_udp: req.closed_udp.unwrap_or(DEFAULT_CLOSED_UDP),
                        srtt: req.srtt,
                    };
                    m.admit(next_id, target);
                    continue;
                }
                Err(std_mpsc::TryRecvError::Empty) => {}
                Err(std_mpsc::TryRecvError::Disconnected) => open = false,
            }
            break;
        }
        if !open && m.is_idle() {
            return;
        }
        m.tick(Instant::now());
        while let Some(t) = m.poll_transmit(Instant::now(), &mut buf) {
            // A failed send is an unanswered probe: the tests see it as such.
            let _ = io.sender.send(&buf[..t.len], IpAddr::V4(t.dst));
        }
        while let Some((id, obs, started)) = m.poll_done() {
            if let Some(reply) = waiting.remove(&id) {
                let _ = reply.send((obs, started));
            }
        }
        let now = Instant::now();
        let wake = m.poll_at().map_or(now + MAX_WAIT, |at| at.min(now + MAX_WAIT));
        crate::stage::wait_and_read(&io.capture, &mut rx, wake, |frame, at| m.on_packet(frame, at));
    }
}
