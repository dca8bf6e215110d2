//! The trace stage, after the port scan: `--traceroute` (the routers on the way to each host)
//! and `--mtu-discovery` (each IPv4 host's path MTU), with raw packets.
//!
//! It runs beside the scan engines, not inside them: the pipeline hands it each finished host
//! ([`Tracer::trace`]) and gets the hops and the MTU back before the host's `HostDone`.
//!
//! - **Probe**: as nmap, a TCP SYN to a port the scan found open, else to a closed one, else UDP
//!   to a closed port, else an ICMP (ICMPv6) echo request ([`choose_probe`]). Every probe of a
//!   trace has the same addresses, protocol and ports, so routers that balance load by flow send
//!   them all the same way; what tells them apart is a 16-bit token in a field every answer
//!   echoes (see `packets.rs`).
//! - **Order**: from the host's distance (the TTL of its answers, [`distance_from_ttl`]) down,
//!   several TTLs in parallel, and up when the target is farther (see `hops.rs`).
//! - **Hop reuse**: a hop already seen at the same TTL on the way to another host means the way
//!   there is the same (nmap's assumption): the hops below are taken from that trace, not probed
//!   again. Hosts behind the same routers cost two or three probes each.
//! - **Path MTU** (IPv4): don't-fragment probes and the next-hop MTU of ICMP "fragmentation
//!   needed", with a bounded binary search when routers are silent (see `pmtu.rs`).
//!
//! Design: a state machine with no I/O (`machine.rs`) and a driver on one blocking thread that
//! owns the clock and the sockets (a raw IP sender and an AF_PACKET capture, as the raw engine's
//! `run_blocking`). `sim.rs` drives the real machine on a simulated network.

use crate::origin::Origin;
use crate::raw::sockets::{open_sender_and_capture, reserve_port};
use crate::raw::RawScanError;
use crate::timing::Timing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustmap_model::{HostResult, PortState, Protocol, TraceHop, TraceProbe};
use rustmap_netio::capture::{Capture, RecvBatch};
use rustmap_netio::raw::RawIpSender;
use socket2::{Socket, Type};
use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

mod hops;
mod machine;
mod packets;
mod pmtu;
#[cfg(test)]
mod sim;

use machine::{Config, Machine, PathInfo};

/// How a host is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// TCP SYN to this port.
    TcpSyn {
        /// The port.
        port: u16,
    },
    /// UDP to this (closed) port.
    Udp {
        /// The port.
        port: u16,
    },
    /// ICMP echo request (ICMPv6 for IPv6).
    Echo,
}

/// One host to trace.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// The host.
    pub addr: IpAddr,
    /// How to probe it.
    pub probe: ProbeKind,
    /// Its distance in hops, as the TTL of its answers suggests.
    pub distance: Option<u8>,
    /// Its smoothed round trip, as the scan measured it.
    pub srtt: Option<Duration>,
    /// Find its hops.
    pub traceroute: bool,
    /// Find its path MTU (IPv4 only; ignored for IPv6).
    pub mtu: bool,
}

/// What was found about one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOutcome {
    /// Its hops, TTL 1 first (names not looked up). Empty without `traceroute`.
    pub hops: Vec<TraceHop>,
    /// How it was probed.
    pub probe: TraceProbe,
    /// Its path MTU, when asked for and found.
    pub path_mtu: Option<u32>,
}

/// nmap's choice of traceroute probe for a host: TCP SYN to an open TCP port, else to a closed
/// one, else UDP to a closed UDP port, else ICMP echo. Ports folded into `extraports` count.
pub fn choose_probe(h: &HostResult) -> ProbeKind {
    let find = |proto: Protocol, state: PortState| port_in(h, proto, state);
    if let Some(port) = find(Protocol::Tcp, PortState::Open) {
        return ProbeKind::TcpSyn { port };
    }
    if let Some(port) = find(Protocol::Tcp, PortState::Closed) {
        return ProbeKind::TcpSyn { port };
    }
    if let Some(port) = find(Protocol::Udp, PortState::Closed) {
        return ProbeKind::Udp { port };
    }
    ProbeKind::Echo
}

/// The first port of `proto` in `state` the scan found on `h`: shown individually, else the
/// first of those folded into `extraports` (the OS stage picks its ports the same way).
pub fn port_in(h: &HostResult, proto: Protocol, state: PortState) -> Option<u16> {
    h.ports.iter().find(|p| p.protocol == proto && p.state == state).map(|p| p.port).or_else(|| {
        h.extraports
            .iter()
            .filter(|e| e.state == state)
            .flat_map(|e| e.reasons.iter())
            .filter(|r| r.protocol == proto)
            .find_map(|r| first_port(&r.ports))
    })
}

/// The first port of a compact list (`"1-20,25"` → 1).
fn first_port(list: &str) -> Option<u16> {
    list.split([',', '-']).next()?.trim().parse().ok().filter(|p| *p > 0)
}

/// The distance in hops of a host whose answers arrive with this TTL: the difference from the
/// nearest usual initial TTL at or above it (32, 64, 128, 255), plus one. `None` for 0.
pub fn distance_from_ttl(ttl: u8) -> Option<u8> {
    if ttl == 0 {
        return None;
    }
    let initial = [32u16, 64, 128, 255].into_iter().find(|i| *i >= u16::from(ttl)).unwrap_or(255);
    u8::try_from(initial - u16::from(ttl) + 1).ok()
}

/// The trace stage's sockets, opened before the scan starts (a missing privilege is an error up
/// front): the raw IP sender, the capture socket, and the reserved source ports.
pub struct TraceSockets {
    sender: RawIpSender,
    capture: Capture,
    tcp_sport: u16,
    udp_sport: u16,
    _tcp_reserve: Socket,
    _udp_reserve: Socket,
}

impl TraceSockets {
    /// Open the sockets (with `-e`, bound to that interface). Fails without CAP_NET_RAW.
    pub fn open(origin: &Origin) -> Result<TraceSockets, RawScanError> {
        let (sender, capture) = open_sender_and_capture(origin)?;
        let (tcp_reserve, tcp_sport) = reserve_port(Type::STREAM)?;
        let (udp_reserve, udp_sport) = reserve_port(Type::DGRAM)?;
        let _ = udp_reserve.set_recv_buffer_size(1);
        Ok(TraceSockets { sender, capture, tcp_sport, udp_sport, _tcp_reserve: tcp_reserve, _udp_reserve: udp_reserve })
    }
}

type Job = (TraceRequest, oneshot::Sender<TraceOutcome>);

/// The running trace stage: hand it hosts, get their outcomes. Its thread ends when the
/// tracer is dropped (after the hosts in progress) or the scan is cancelled.
pub struct Tracer {
    jobs: std_mpsc::Sender<Job>,
}

impl Tracer {
    /// Start the stage's thread over `sockets`. `timing` gives the pacing and timeout bounds,
    /// `origin` the source address (`-S`, `-e`).
    pub fn start(sockets: TraceSockets, timing: Timing, origin: Origin, cancel: CancellationToken) -> Tracer {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let mut seed = rand::rng();
        let stamp = packets::Stamp {
            tcp_sport: sockets.tcp_sport,
            udp_sport: sockets.udp_sport,
            salt: seed.random(),
            echo_id: seed.random(),
        };
        let cfg = Config { stamp, tries: if timing.max_retries == 0 { 1 } else { 2 }, in_flight: 256, timing };
        let rng = StdRng::from_rng(&mut seed);
        let _ = std::thread::Builder::new()
            .name("rustmap-trace".into())
            .spawn(move || drive(sockets, cfg, rng, origin, rx, cancel));
        Tracer { jobs: tx }
    }

    /// Trace one host. `None` when the stage stopped (the scan was cancelled).
    pub async fn trace(&self, req: TraceRequest) -> Option<TraceOutcome> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send((req, tx)).ok()?;
        rx.await.ok()
    }
}

/// The longest the driver sleeps without looking at cancellation and new hosts.
const MAX_WAIT: Duration = Duration::from_millis(20);

/// What the kernel says of the way to `addr`.
fn path_to(addr: IpAddr, origin: &Origin) -> Option<PathInfo> {
    let route = rustmap_netio::route::lookup(addr).ok();
    let src = origin.source_for(addr).or(route.as_ref().map(|r| r.src))?;
    Some(PathInfo {
        src,
        link_mtu: route.as_ref().map_or(1500, |r| r.mtu),
        local: route.as_ref().is_some_and(|r| r.loopback),
    })
}

/// The driver: admits hosts, sends what the machine builds, feeds it what arrives, and hands
/// back what it finishes, until the tracer is dropped or the scan is cancelled.
fn drive(
    io: TraceSockets,
    cfg: Config,
    rng: StdRng,
    origin: Origin,
    jobs: std_mpsc::Receiver<Job>,
    cancel: CancellationToken,
) {
    let mut m = Machine::new(cfg, rng, Instant::now());
    let mut waiting: std::collections::HashMap<u64, oneshot::Sender<TraceOutcome>> = Default::default();
    let mut next_id: u64 = 0;
    let mut buf = vec![0u8; rustmap_wire::hop::MAX_PROBE_LEN];
    let mut rx = RecvBatch::default();
    let mut open = true;
    while !cancel.is_cancelled() {
        loop {
            match crate::stage::next_job(&jobs, m.is_idle() && open) {
                Ok((req, reply)) => {
                    next_id += 1;
                    waiting.insert(next_id, reply);
                    m.admit(next_id, &req, path_to(req.addr, &origin));
                    if !m.is_idle() {
                        continue;
                    }
                }
                Err(std_mpsc::TryRecvError::Empty) => {}
                Err(std_mpsc::TryRecvError::Disconnected) => open = false,
            }
            break;
        }
        if !open && m.is_idle() {
            return;
        }
        let now = Instant::now();
        m.tick(now);
        while let Some(t) = m.poll_transmit(Instant::now(), &mut buf) {
            if io.sender.send(&buf[..t.len], t.dst).is_err() {
                m.on_send_failed(t.token);
            }
        }
        while let Some((id, out)) = m.poll_done() {
            if let Some(reply) = waiting.remove(&id) {
                let _ = reply.send(out);
            }
        }
        let now = Instant::now();
        let wake = m.poll_at(now).map_or(now + MAX_WAIT, |at| at.min(now + MAX_WAIT));
        crate::stage::wait_and_read(&io.capture, &mut rx, wake, |frame, at| m.on_packet(frame, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustmap_model::{ExtraPorts, HostStatus, PortResult, Reason, ReasonCount};

    #[test]
    fn distances_from_ttls() {
        assert_eq!(distance_from_ttl(64), Some(1));
        assert_eq!(distance_from_ttl(62), Some(3));
        assert_eq!(distance_from_ttl(128), Some(1));
        assert_eq!(distance_from_ttl(120), Some(9));
        assert_eq!(distance_from_ttl(250), Some(6));
        assert_eq!(distance_from_ttl(0), None);
    }

    #[test]
    fn probes_are_chosen_as_nmap_does() {
        let mut h = HostResult::new("198.18.0.10".parse().unwrap(), HostStatus::Up, Reason::SynAck);
        assert_eq!(choose_probe(&h), ProbeKind::Echo);
        h.extraports.push(ExtraPorts {
            state: PortState::Closed,
            count: 20,
            reasons: vec![ReasonCount {
                reason: Reason::PortUnreach,
                protocol: Protocol::Udp,
                count: 20,
                ports: "7-26".into(),
            }],
        });
        assert_eq!(choose_probe(&h), ProbeKind::Udp { port: 7 });
        h.ports.push(PortResult::new(Protocol::Tcp, 113, PortState::Closed, Reason::Reset, 64));
        assert_eq!(choose_probe(&h), ProbeKind::TcpSyn { port: 113 });
        h.ports.push(PortResult::new(Protocol::Tcp, 22, PortState::Open, Reason::SynAck, 64));
        assert_eq!(choose_probe(&h), ProbeKind::TcpSyn { port: 22 });
    }
}
