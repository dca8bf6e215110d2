//! Replies: which probe a captured packet answers (by its cookie), and what that settles.

use super::*;

impl RawScan {
    /// Does a TCP segment echo cookie `c` as an answer to our probe must? With a payload
    /// (`--data-*`), a reset acknowledges the data too: `c + 1 + len` (a SYN/ACK only `c + 1`).
    fn echoes(&self, c: u32, seq: u32, ack: u32, flags: Flags) -> bool {
        let len = self.evasion.payload.as_ref().map_or(0, |p| p.len() as u32);
        tcp_echoes(c, seq, ack, flags) || (len > 0 && tcp_echoes(c, seq, ack.wrapping_sub(len), flags))
    }

    /// Fold one reply into its host. Returns how many outstanding probes it settled (`None` if
    /// it was not an answer to us).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_reply(
        &self,
        reply: &wp::Reply,
        src_mac: Option<[u8; 6]>,
        hosts: &mut FxHashMap<u64, Host>,
        by_addr: &FxHashMap<IpAddr, u64>,
        cookies: &Cookies,
        local: Local,
        net: &mut NetState,
        plans: &Plans,
        now: Instant,
    ) -> Option<(bool, usize)> {
        let (sport, icmp_id) = (local.sport, local.icmp_id);
        // The discovery probes of the host at `addr`, to find which one a reply answers.
        let plan_of = |addr: IpAddr| -> &[DiscProbe] {
            match by_addr.get(&addr).and_then(|id| hosts.get(id)) {
                Some(h) => plans.of(h.plan),
                None => &[],
            }
        };
        let disc_where = |addr: IpAddr, f: &dyn Fn(usize, DiscProbe) -> bool| -> Option<Pk> {
            plan_of(addr).iter().enumerate().position(|(i, d)| f(i, *d)).map(|i| Pk::Disc(i as u8))
        };
        // Which probe does it answer, and what does it say?
        let (target, pk, what): (IpAddr, Pk, Reply) = match &reply.body {
            ReplyBody::Tcp { sport: from, dport, seq, ack, flags, window: win } => {
                if *dport != sport {
                    return None;
                }
                let addr = reply.src;
                let tcp = self.scan_of(Protocol::Tcp).map(|s| Pk::Port(s, *from));
                let pk = if let Some(pk) = tcp.filter(|pk| self.echoes(cookies.of(addr, *pk), *seq, *ack, *flags)) {
                    pk
                } else {
                    disc_where(addr, &|i, d| {
                        matches!(d, DiscProbe::Ping(Ping::Syn(p) | Ping::Ack(p)) if p == *from)
                            && self.echoes(cookies.of(addr, Pk::Disc(i as u8)), *seq, *ack, *flags)
                    })?
                };
                let what = if flags.contains(Flags::RST) {
                    Reply::Rst { window: *win }
                } else if flags.contains(Flags::SYN | Flags::ACK) {
                    Reply::SynAck
                } else {
                    return None;
                };
                (addr, pk, what)
            }
            ReplyBody::Udp { sport: from, dport, .. } => {
                if *dport != local.udp_sport {
                    return None;
                }
                let addr = reply.src;
                let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Udp(*from)));
                let pk = match disc {
                    Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                    _ => Pk::Port(self.scan_of(Protocol::Udp)?, *from),
                };
                (addr, pk, Reply::Udp)
            }
            ReplyBody::Sctp { sport: from, dport, vtag, first_chunk, .. } => {
                if *dport != sport {
                    return None;
                }
                let addr = reply.src;
                let port_pk = self.scan_of(Protocol::Sctp).map(|s| Pk::Port(s, *from));
                let pk = match port_pk.filter(|pk| *vtag == cookies.sctp_tag(addr, *pk)) {
                    Some(pk) => pk,
                    None => disc_where(addr, &|i, d| {
                        d == DiscProbe::Ping(Ping::Sctp(*from)) && *vtag == cookies.sctp_tag(addr, Pk::Disc(i as u8))
                    })?,
                };
                let what = match first_chunk {
                    2 => Reply::SctpInitAck,
                    6 => Reply::SctpAbort,
                    _ => return None,
                };
                (addr, pk, what)
            }
            ReplyBody::IcmpEcho { id, seq }
            | ReplyBody::IcmpTimestampReply { id, seq }
            | ReplyBody::IcmpMaskReply { id, seq } => {
                if *id != icmp_id {
                    return None;
                }
                let addr = reply.src;
                let (want, what) = match reply.body {
                    ReplyBody::IcmpEcho { .. } => (Ping::Echo, Reply::EchoReply),
                    ReplyBody::IcmpTimestampReply { .. } => (Ping::Timestamp, Reply::TimestampReply),
                    _ => (Ping::Mask, Reply::MaskReply),
                };
                // The sequence number carries the cookie's low bits.
                let pk = disc_where(addr, &|i, d| {
                    d == DiscProbe::Ping(want) && *seq == cookies.of(addr, Pk::Disc(i as u8)) as u16
                })?;
                (addr, pk, what)
            }
            ReplyBody::NeighborAdvert { target, lladdr } => {
                let addr = IpAddr::V6(*target);
                let pk = disc_where(addr, &|_, d| d == DiscProbe::Nd)?;
                if let Some(h) = by_addr.get(&addr).and_then(|id| hosts.get_mut(id)) {
                    h.mac = lladdr.or(src_mac);
                }
                (addr, pk, Reply::NeighborAdvert)
            }
            ReplyBody::IcmpError { v6, icmp_type, code, quoted } => {
                let reason = icmp_reason(*v6, *icmp_type, *code)?;
                let addr = quoted.dst;
                let pk = match quoted.proto {
                    6 if quoted.sport == sport => {
                        let c = quoted.tcp_seq?;
                        let tcp = self.scan_of(Protocol::Tcp).map(|s| Pk::Port(s, quoted.dport));
                        if let Some(pk) = tcp.filter(|pk| c == cookies.of(addr, *pk)) {
                            pk
                        } else {
                            disc_where(addr, &|i, d| {
                                matches!(d, DiscProbe::Ping(Ping::Syn(_) | Ping::Ack(_)))
                                    && cookies.of(addr, Pk::Disc(i as u8)) == c
                            })?
                        }
                    }
                    17 if quoted.sport == local.udp_sport => {
                        let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Udp(quoted.dport)));
                        match disc {
                            Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                            _ => Pk::Port(self.scan_of(Protocol::Udp)?, quoted.dport),
                        }
                    }
                    132 if quoted.sport == sport => {
                        let port_pk = self.scan_of(Protocol::Sctp).map(|s| Pk::Port(s, quoted.dport));
                        let disc = disc_where(addr, &|_, d| d == DiscProbe::Ping(Ping::Sctp(quoted.dport)));
                        let pk = match disc {
                            Some(pk) if self.in_discovery(hosts, by_addr, addr) => pk,
                            _ => port_pk?,
                        };
                        // An INIT's common header carries tag 0 (its tag is in the chunk); a
                        // COOKIE-ECHO's carries our cookie.
                        match quoted.sctp_vtag {
                            Some(v) if v != 0 && v != cookies.sctp_tag(addr, pk) => return None,
                            _ => pk,
                        }
                    }
                    1 | 58 if quoted.icmp_id == Some(icmp_id) => {
                        let s = quoted.icmp_seq?;
                        disc_where(addr, &|i, d| {
                            matches!(d, DiscProbe::Ping(Ping::Echo | Ping::Timestamp | Ping::Mask))
                                && cookies.of(addr, Pk::Disc(i as u8)) as u16 == s
                        })?
                    }
                    _ => return None,
                };
                // An error sent by the target itself proves it is there (port or protocol
                // unreachable); one from a router on the way does not.
                let what = Reply::Icmp(if reply.src == addr { reason } else { router_reason(reason) });
                (addr, pk, what)
            }
            _ => return None,
        };
        let id = *by_addr.get(&target)?;
        let h = hosts.get_mut(&id)?;
        if h.link.is_some() && h.mac.is_none() && reply.src == target {
            h.mac = src_mac;
        }
        self.settle(h, pk, what, reply.ttl, net, now)
    }

    /// Is the host at `addr` still in discovery? (A UDP or SCTP answer from a port that is both
    /// a discovery probe and a scanned port belongs to whichever phase the host is in.)
    pub(super) fn in_discovery(
        &self,
        hosts: &FxHashMap<u64, Host>,
        by_addr: &FxHashMap<IpAddr, u64>,
        addr: IpAddr,
    ) -> bool {
        by_addr.get(&addr).and_then(|id| hosts.get(id)).is_some_and(|h| !h.core.is_up())
    }

    /// An ARP frame (its ARP packet): a reply from a host we asked for settles its ARP probe.
    pub(super) fn on_arp(
        &self,
        packet: &[u8],
        hosts: &mut FxHashMap<u64, Host>,
        by_addr: &FxHashMap<IpAddr, u64>,
        plans: &Plans,
        net: &mut NetState,
        now: Instant,
    ) -> Option<(bool, usize)> {
        let arp = rustmap_wire::arp::Packet::new_checked(packet).ok()?;
        if arp.operation() != rustmap_wire::arp::Operation::Reply {
            return None;
        }
        let addr = IpAddr::V4(arp.sender_ip());
        let h = by_addr.get(&addr).and_then(|id| hosts.get_mut(id))?;
        let i = plans.of(h.plan).iter().position(|d| *d == DiscProbe::Arp)?;
        h.mac = Some(arp.sender_hw_addr());
        self.settle(h, Pk::Disc(i as u8), Reply::Arp, 0, net, now)
    }

    /// Settle the outstanding probe `pk` of `h` with `what`, arrived at `now`.
    pub(super) fn settle(
        &self,
        h: &mut Host,
        pk: Pk,
        what: Reply,
        ttl: u8,
        net: &mut NetState,
        now: Instant,
    ) -> Option<(bool, usize)> {
        let (sent, tryno) = h.outstanding.remove(&pk)?;
        if tryno == 0 {
            h.core.rtt.sample(now.saturating_duration_since(sent));
            net.global_rtt.sample(now.saturating_duration_since(sent));
        }
        net.window.on_reply();
        if tryno > 0 {
            net.window.on_loss();
            h.core.max_successful_try = h.core.max_successful_try.max(tryno);
        }
        match pk {
            Pk::Disc(_) => {
                if h.core.is_up() {
                    return Some((matches!(pk, Pk::Disc(_)), 1));
                }
                match probe::host_up(what, false) {
                    Some(reason) => return Some((true, 1 + mark_up(h, reason, ttl))),
                    None => {
                        if let Reply::Icmp(r) = what {
                            h.core.note_negative(r, true);
                        }
                    }
                }
            }
            Pk::Port(s, port) => {
                if !h.core.is_up() {
                    return Some((matches!(pk, Pk::Disc(_)), 1));
                }
                let scan = self.scans[usize::from(s)].0;
                let proto = scan.protocol();
                if scan == ScanType::Udp && what == Reply::Icmp(Reason::PortUnreach) {
                    h.udp_unreach = true;
                }
                match probe::verdict(scan, what) {
                    Some((state, reason)) => h.core.results.push((proto, port, state, reason, ttl)),
                    // An answer that means nothing for this scan type (a SYN/ACK to a FIN):
                    // treat the port as unanswered rather than guess.
                    None => h.core.results.push((proto, port, probe::silence(scan), Reason::NoResponse, 0)),
                }
            }
        }
        Some((matches!(pk, Pk::Disc(_)), 1))
    }
}

/// An ICMP error from a router on the way: the path is blocked, the host's own state unknown.
/// Port- and protocol-unreachable only make sense from the target itself.
pub(super) fn router_reason(r: Reason) -> Reason {
    match r {
        Reason::PortUnreach | Reason::ProtoUnreach | Reason::ParamProblem => Reason::HostUnreach,
        other => other,
    }
}
