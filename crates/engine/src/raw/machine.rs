//! The raw scan as a state machine with no I/O of its own, in the manner of smoltcp's
//! `Interface::poll`: every call takes the time it is, packets come in as bytes
//! ([`Machine::on_frame`]), probes go out as packets the machine builds into an [`Outbox`]
//! ([`Machine::poll_transmit`]), randomness is the generator it was given, and what it learns
//! leaves as events ([`Machine::poll_event`]). It never reads a clock, opens a socket or
//! sleeps; it says when it next wants to be called ([`Machine::poll_at`]).
//!
//! The driver (the blocking thread in [`super`]) owns the sockets and the clock and loops:
//! admit targets, [`Machine::tick`], send what [`Machine::poll_transmit`] builds and report the
//! outcome, run the HTTP pings [`Machine::poll_app`] asks for, wait until [`Machine::poll_at`]
//! or a packet, feed what arrived. The simulated-network tests (`sim.rs`) drive the same machine
//! on a simulated clock with simulated hosts.
//!
//! What the machine must know of the network besides packets (source addresses, directly
//! connected links, next hops) it asks through [`Topology`].

use super::*;
use rand::rngs::StdRng;

/// What the machine must know of the network around it besides packets. The driver answers
/// from the kernel's routing and neighbour tables ([`System`]); a simulation as it likes.
pub(super) trait Topology {
    /// The source address for probes to `addr` (`None`: no route; the host cannot be probed).
    fn source_for(&self, addr: IpAddr) -> Option<IpAddr>;
    /// The directly connected link `addr` is on, if any (ARP or ND find it up there).
    fn on_link(&self, addr: IpAddr) -> Option<Link>;
    /// How probes to `addr` leave, given the hardware address learned from its answers.
    fn hop(&mut self, addr: IpAddr, learned: Option<[u8; 6]>) -> Hop;
}

/// An application-level ping (HTTP or HTTPS discovery) the driver runs, and reports back with
/// [`Machine::on_app_done`].
pub(super) struct AppPing {
    pub(super) id: u64,
    pub(super) pk: Pk,
    pub(super) tryno: u8,
    pub(super) addr: SocketAddr,
    pub(super) https: bool,
    pub(super) timeout: Duration,
}

/// Most probes one round sends before the machine looks at timeouts and answers again.
const BURST: usize = 256;
/// How often hosts are swept: their news announced, the finished ones reported and dropped.
/// (A port waits at most one sweep to be announced.)
const SWEEP_EVERY: Duration = Duration::from_millis(2);
/// How often a progress event goes out.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One raw scan's whole state: the hosts in flight with their outstanding probes and timers,
/// the congestion window and pacer, the counters, and the events not yet taken.
pub(super) struct Machine {
    pub(super) scan: RawScan,
    pub(super) plans: Plans,
    /// Per scan of the run, its ports in the order they are probed.
    orders: Vec<Vec<u16>>,
    total_ports: usize,
    has_udp: bool,
    pub(super) cookies: Cookies,
    pub(super) local: Local,
    pub(super) rng: StdRng,
    pub(super) net: NetState,
    pub(super) hosts: FxHashMap<u64, Host>,
    pub(super) by_addr: FxHashMap<IpAddr, u64>,
    /// Host ids in round-robin order for picking probes.
    ring: VecDeque<u64>,
    clock: Timeouts,
    next_id: u64,
    /// No more targets will come.
    closed: bool,
    in_flight: usize,
    /// Discovery probes among them, which have their own limit (`Timing::room`).
    disc_in_flight: usize,
    totals: EngineTotals,
    replies: u64,
    hosts_done: u64,
    started: Instant,
    pacer: Pacer,
    /// The send queue was full: no sending before this.
    pause_until: Instant,
    last_progress: Instant,
    last_sweep: Instant,
    max_hosts: usize,
    events: VecDeque<ScanEvent>,
    news: Vec<ScanEvent>,
    apps: VecDeque<AppPing>,
    /// This round (since the last [`Machine::tick`]): probes allowed in flight, probes sent,
    /// whether the send queue pushed back, and a probe picked for the next batch.
    allowed: usize,
    burst: usize,
    pressure: bool,
    carry: Option<(u64, Pk, u8)>,
    /// `--spoof-mac` could not apply to a probe (sent as raw IP), and the user was told.
    spoof_warned: bool,
}

impl Machine {
    /// A machine for `scan`, whose TCP/SCTP and UDP probes leave from `sport` and `udp_sport`,
    /// drawing every random choice (port order, cookie key, ICMP id, IP ids, jitter) from `rng`,
    /// starting at `now`.
    pub(super) fn new(scan: RawScan, sport: u16, udp_sport: u16, mut rng: StdRng, now: Instant) -> Machine {
        let plans = Plans::new(&scan.discovery);
        let cookies = Cookies::new(&mut rng);
        let local = Local { sport, udp_sport, icmp_id: rng.random() };
        let orders: Vec<Vec<u16>> = scan
            .scans
            .iter()
            .map(|(_, ports)| {
                let mut o = ports.clone();
                if scan.randomize {
                    o.shuffle(&mut rng);
                }
                o
            })
            .collect();
        let timing = &scan.timing;
        Machine {
            total_ports: orders.iter().map(Vec::len).sum(),
            has_udp: scan.scan_of(Protocol::Udp).is_some(),
            net: NetState { window: Window::new(timing), global_rtt: RttEstimator::default() },
            pacer: Pacer::new(timing, now),
            max_hosts: timing.max_hostgroup.max(timing.min_hostgroup).max(1),
            plans,
            orders,
            cookies,
            local,
            rng,
            hosts: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            ring: VecDeque::new(),
            clock: Timeouts::default(),
            next_id: 0,
            closed: false,
            in_flight: 0,
            disc_in_flight: 0,
            totals: EngineTotals::default(),
            replies: 0,
            hosts_done: 0,
            started: now,
            pause_until: now,
            last_progress: now,
            last_sweep: now,
            events: VecDeque::new(),
            news: Vec::new(),
            apps: VecDeque::new(),
            allowed: 0,
            burst: 0,
            pressure: false,
            carry: None,
            spoof_warned: false,
            scan,
        }
    }

    /// Would it take another host now? (Hosts in flight are bounded by `--max-hostgroup`.)
    pub(super) fn wants_hosts(&self) -> bool {
        !self.closed && self.hosts.len() < self.max_hosts
    }

    /// Nothing in flight and no host active: only a new target can give it work.
    pub(super) fn is_idle(&self) -> bool {
        self.hosts.is_empty() && self.in_flight == 0
    }

    /// No more targets will come.
    pub(super) fn end_of_targets(&mut self) {
        self.closed = true;
    }

    /// Every target has come and gone.
    pub(super) fn is_finished(&self) -> bool {
        self.closed && self.hosts.is_empty()
    }

    /// Take a target in at `now`. A target already in flight is ignored; one with no route is
    /// reported down at once, with a warning.
    pub(super) fn admit(&mut self, target: ScanTarget, now: Instant, topo: &dyn Topology) {
        let addr = target.addr;
        if self.by_addr.contains_key(&addr) {
            return;
        }
        let Some(src) = topo.source_for(addr) else {
            // No source address for it (no route, or a broadcast address): nothing can be
            // sent, so it is down, and counted as such.
            let message = format!("no route to {addr}: host not probed");
            self.events.push_back(ScanEvent::Warning { message });
            let report = HostCore::new(target, &self.scan.timing, false, now).into_report(false, None);
            self.events.extend(report.into_events(self.scan.collapse_threshold, &mut self.totals));
            return;
        };
        let skip = self.scan.skip_discovery;
        // On a directly connected link, ARP (or neighbour discovery) replaces the other probes,
        // as in nmap: nothing answers more surely, and a firewall does not filter it.
        let link = topo.on_link(addr);
        let plan = match (&link, self.plans.link_layer && !skip, addr.is_ipv6()) {
            (Some(_), true, false) => PlanKind::Arp,
            (Some(_), true, true) => PlanKind::Nd,
            (_, _, false) => PlanKind::V4,
            (_, _, true) => PlanKind::V6,
        };
        let randomize = self.scan.randomize;
        let rng = &mut self.rng;
        let cursors = self
            .orders
            .iter()
            .map(|o| (if o.is_empty() || !randomize { 0 } else { rng.random_range(0..o.len()) }, 0))
            .collect();
        let host = Host {
            core: HostCore::new(target, &self.scan.timing, skip, now),
            src,
            disc_next: 0,
            plan,
            link,
            mac: None,
            hop: if self.scan.send_ip { Hop::Ip } else { Hop::Unresolved },
            sent: VecDeque::new(),
            cursors,
            turn: 0,
            retries: VecDeque::new(),
            outstanding: FxHashMap::default(),
            udp_gap: Duration::ZERO,
            udp_next: now,
            udp_grown: None,
            udp_unreach: false,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.hosts.insert(id, host);
        self.by_addr.insert(addr, id);
        self.ring.push_back(id);
    }

    /// Bring the machine up to `now`: probes whose time is up are retried or concluded, hosts'
    /// news becomes events and finished hosts leave, progress is reported, and a new round of
    /// sending begins.
    pub(super) fn tick(&mut self, now: Instant) {
        if let Some((id, pk, tryno)) = self.carry.take() {
            // Picked last round but not built: back to the front of its host's queue.
            if let Some(h) = self.hosts.get_mut(&id) {
                h.retries.push_front((pk, tryno));
            }
        }
        let timing = &self.scan.timing;
        let global_wait = self.net.global_rtt.timeout(timing);
        while let Some((id, pk, tryno)) = self.clock.next_overdue(&mut self.hosts, global_wait, timing, now) {
            let Some(h) = self.hosts.get_mut(&id) else { continue };
            let sent = h.outstanding.remove(&pk).map_or(now, |o| o.0);
            self.in_flight = self.in_flight.saturating_sub(1);
            if matches!(pk, Pk::Disc(_)) {
                self.disc_in_flight = self.disc_in_flight.saturating_sub(1);
            }
            self.scan.on_silence(h, pk, tryno, sent, now, &mut self.net);
        }
        // A sweep over every host is cheap at this rate.
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY || self.closed {
            self.last_sweep = now;
            self.sweep(now);
        }
        if now.saturating_duration_since(self.last_progress) >= PROGRESS_EVERY {
            self.last_progress = now;
            let fraction = progress_fraction(
                self.scan.hosts_hint,
                self.hosts_done,
                self.hosts.values().map(|h| h.cursors.iter().map(|c| c.1).sum()),
                self.total_ports,
            );
            self.events.push_back(ScanEvent::Progress {
                hosts_done: self.hosts_done,
                probes_sent: self.totals.probes_sent,
                replies: self.replies,
                fraction,
                hosts_active: self.hosts.len() as u64,
            });
        }
        let elapsed = now.saturating_duration_since(self.started);
        self.allowed = self.scan.timing.allowed_in_flight(&self.net.window, self.totals.probes_sent, elapsed);
        self.burst = 0;
        self.pressure = false;
    }

    /// What hosts learned leaves as events, and finished hosts leave with their report.
    fn sweep(&mut self, now: Instant) {
        for h in self.hosts.values_mut() {
            h.flush_news(&mut self.news);
        }
        self.events.extend(self.news.drain(..));
        let finished: Vec<u64> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.core.deadline.is_some_and(|d| now >= d) || self.scan.host_complete(h, &self.plans))
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            if let Some(h) = self.hosts.remove(&id) {
                self.ring.retain(|x| *x != id);
                self.by_addr.remove(&h.core.target.addr);
                self.in_flight = self.in_flight.saturating_sub(h.outstanding.len());
                let discs = h.outstanding.keys().filter(|pk| matches!(pk, Pk::Disc(_))).count();
                self.disc_in_flight = self.disc_in_flight.saturating_sub(discs);
                let timed_out = !self.scan.host_complete(&h, &self.plans);
                self.finish_host(h, timed_out);
                self.hosts_done += 1;
            }
        }
    }

    fn finish_host(&mut self, h: Host, timed_out: bool) {
        let report = h.core.into_report(timed_out, h.mac);
        self.events.extend(report.into_events(self.scan.collapse_threshold, &mut self.totals));
    }

    /// Build the next batch of probes into `outbox` (empty on entry): as many as the window,
    /// the pacer and this round's burst allow, all for one socket. Returns whether there is
    /// anything to send. The driver sends it and reports with [`Machine::on_transmitted`] or
    /// [`Machine::on_send_blocked`], then clears it. Probes count as in flight from here.
    pub(super) fn poll_transmit(&mut self, now: Instant, topo: &mut dyn Topology, outbox: &mut Outbox) -> bool {
        if self.pressure || self.burst >= BURST || now < self.pause_until || !self.pacer.ready(now) {
            return false;
        }
        // With `--max-rate`, every probe that is due goes out in this burst.
        while self.burst < BURST && !outbox.batch.is_full() && self.pacer.ready(now) {
            let picked = match self.carry.take() {
                Some(p) => Some(p),
                None => {
                    let (ports_ok, disc_ok) = self.scan.timing.room(self.allowed, self.in_flight, self.disc_in_flight);
                    if !ports_ok && !disc_ok {
                        None
                    } else {
                        let (hosts, ring, orders, plans) = (&mut self.hosts, &mut self.ring, &self.orders, &self.plans);
                        self.scan.next_probe(hosts, ring, orders, plans, now, ports_ok, disc_ok)
                    }
                }
            };
            let Some((id, pk, tryno)) = picked else { break };
            let Some(h) = self.hosts.get_mut(&id) else { continue };
            let disc = match pk {
                Pk::Disc(i) => self.plans.of(h.plan).get(usize::from(i)).copied(),
                Pk::Port(..) => None,
            };
            if let Some(DiscProbe::Ping(p @ (Ping::Http(port) | Ping::Https(port)))) = disc {
                // An application-level ping: the driver runs it, with its own time bound.
                let timeout = probe_timeout(h, &self.net.global_rtt, &self.scan.timing);
                let addr = SocketAddr::new(h.core.target.addr, port);
                self.apps.push_back(AppPing { id, pk, tryno, addr, https: matches!(p, Ping::Https(_)), timeout });
                h.outstanding.insert(pk, (now, tryno));
                self.in_flight += 1;
                self.disc_in_flight += 1;
                self.totals.probes_sent += 1;
                self.pacer.on_sent(now, &mut self.rng);
                self.burst += 1;
                continue;
            }
            // Which socket: ARP and ND are frames on the host's link; port probes are frames
            // when the next hop's address is known, else raw IP; pings raw IP.
            let link_frame = matches!(disc, Some(DiscProbe::Arp | DiscProbe::Nd));
            if h.core.is_up() && h.hop == Hop::Unresolved {
                h.hop = topo.hop(h.core.target.addr, h.mac);
            }
            let (channel, eth) = match (link_frame, h.hop, h.link.as_ref()) {
                (true, _, Some(l)) => (Channel::Link(l.ifindex), None),
                (true, _, None) => continue,
                (false, Hop::Frame { ifindex, src, dst }, _) => {
                    (Channel::Link(ifindex), Some((self.scan.evasion.spoof_mac.unwrap_or(src), dst)))
                }
                _ => (Channel::Ip { v6: h.core.target.addr.is_ipv6() }, None),
            };
            if self.scan.evasion.spoof_mac.is_some() && eth.is_none() && !link_frame && !self.spoof_warned {
                self.spoof_warned = true;
                let message = format!(
                    "--spoof-mac: probes to {} leave as raw IP packets (the next hop's hardware address is not known yet), so they carry this machine's MAC",
                    h.core.target.addr
                );
                self.events.push_back(ScanEvent::Warning { message });
            }
            if outbox.channel.is_some_and(|c| c != channel) && !outbox.meta.is_empty() {
                self.carry = Some((id, pk, tryno));
                break;
            }
            let dst = matches!(channel, Channel::Ip { .. }).then_some(h.core.target.addr);
            let (scan, cookies, local, rng) = (&self.scan, &self.cookies, self.local, &mut self.rng);
            let own = h.src;
            let built = if scan.evasion.multi_packet() && !link_frame {
                let ident6 = rng.random();
                scan.emit(outbox, dst, own, eth.is_some(), ident6, |buf, src| {
                    scan.build(buf, src, h, pk, cookies, local, tryno, disc, eth, rng)
                })
            } else {
                outbox.push_packet(dst, |buf| scan.build(buf, own, h, pk, cookies, local, tryno, disc, eth, rng))
            };
            if !built {
                continue;
            }
            outbox.channel = Some(channel);
            outbox.commit((id, pk, tryno));
            // In flight from now on; the send confirms it (with its real send time) or takes it
            // back.
            if self.scan.is_udp(pk) {
                h.udp_next = now + h.udp_gap;
            }
            h.outstanding.insert(pk, (now, tryno));
            self.in_flight += 1;
            if matches!(pk, Pk::Disc(_)) {
                self.disc_in_flight += 1;
            }
            self.totals.probes_sent += 1;
            self.pacer.on_sent(now, &mut self.rng);
            self.burst += 1;
        }
        !outbox.meta.is_empty()
    }

    /// These probes of the outbox left at `at`: their timers start.
    pub(super) fn on_transmitted(&mut self, sent: &[(u64, Pk, u8)], at: Instant) {
        for &(id, pk, tryno) in sent {
            let Some(h) = self.hosts.get_mut(&id) else { continue };
            // Its real send time, for the round trip (the entry exists since it was built).
            if let Some(o) = h.outstanding.get_mut(&pk) {
                o.0 = at;
            }
            self.clock.sent(h, id, at, pk, tryno, &self.scan.timing);
        }
    }

    /// The send queue was full at `now`: these probes of the outbox did not leave. They go back,
    /// in order, to be sent again shortly, and the window takes note.
    pub(super) fn on_send_blocked(&mut self, unsent: &[(u64, Pk, u8)], now: Instant) {
        for &(id, pk, tryno) in unsent.iter().rev() {
            let Some(h) = self.hosts.get_mut(&id) else { continue };
            if h.outstanding.remove(&pk).is_some() {
                self.in_flight = self.in_flight.saturating_sub(1);
                if matches!(pk, Pk::Disc(_)) {
                    self.disc_in_flight = self.disc_in_flight.saturating_sub(1);
                }
                self.totals.probes_sent = self.totals.probes_sent.saturating_sub(1);
                self.pacer.refund();
            }
            h.retries.push_front((pk, tryno));
        }
        self.pause_until = now + Duration::from_millis(1);
        self.net.window.on_local_pressure(self.in_flight + 1);
        self.pressure = true;
    }

    /// The next application-level ping to run.
    pub(super) fn poll_app(&mut self) -> Option<AppPing> {
        self.apps.pop_front()
    }

    /// An application-level ping finished.
    pub(super) fn on_app_done(&mut self, (id, pk, tryno, out): AppDone) {
        let Some(h) = self.hosts.get_mut(&id) else { return };
        if h.outstanding.remove(&pk).is_none() {
            return;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        self.disc_in_flight = self.disc_in_flight.saturating_sub(1);
        if h.core.is_up() {
            return;
        }
        match out {
            PingOutcome::Up(reason, rtt) => {
                self.replies += 1;
                if tryno == 0 {
                    h.core.rtt.sample(rtt);
                }
                self.net.window.on_reply();
                let moot = mark_up(h, reason, 0);
                self.in_flight = self.in_flight.saturating_sub(moot);
                self.disc_in_flight = self.disc_in_flight.saturating_sub(moot);
            }
            PingOutcome::Blocked(reason) => {
                self.replies += 1;
                h.core.note_negative(reason, true);
            }
            PingOutcome::Silent if tryno < h.core.allowed_tries(&self.scan.timing) => {
                h.retries.push_back((pk, tryno + 1));
            }
            PingOutcome::Silent => h.core.note_negative(Reason::NoResponse, false),
        }
    }

    /// A frame captured at `now` (its payload after the link header, of this ethertype, from
    /// this hardware address when known). Returns whether it answered a probe of ours.
    pub(super) fn on_frame(&mut self, ethertype: u16, src_mac: Option<[u8; 6]>, frame: &[u8], now: Instant) -> bool {
        if ethertype == 0x0806 {
            let (hosts, by_addr, plans, net) = (&mut self.hosts, &self.by_addr, &self.plans, &mut self.net);
            let Some((_, n)) = self.scan.on_arp(frame, hosts, by_addr, plans, net, now) else { return false };
            self.settled(true, n);
            return true;
        }
        if ethertype != 0x0800 && ethertype != 0x86dd {
            return false;
        }
        let Ok(reply) = wp::parse_reply(frame) else { return false };
        let ours = self.on_packet(&reply, src_mac, now);
        if ours && self.scan.passive_os {
            self.keep_passive(&reply, frame, now);
        }
        ours
    }

    /// OS detection's passive evidence: a host's first SYN-ACKs (answers of ours), kept whole.
    fn keep_passive(&mut self, reply: &wp::Reply, frame: &[u8], now: Instant) {
        let ReplyBody::Tcp { flags, .. } = reply.body else { return };
        if !flags.contains(Flags::SYN | Flags::ACK) {
            return;
        }
        let Some(h) = self.by_addr.get(&reply.src).and_then(|id| self.hosts.get_mut(id)) else { return };
        if h.core.passive.len() < PassiveSegment::PER_HOST {
            h.core.passive.push(PassiveSegment::new(now, frame));
        }
    }

    /// A parsed IP packet arrived at `now`. Returns whether it answered a probe of ours.
    pub(super) fn on_packet(&mut self, reply: &wp::Reply, src_mac: Option<[u8; 6]>, now: Instant) -> bool {
        // Answers to our decoys, should they pass by, are not ours.
        if self.scan.evasion.is_decoy(reply.dst) {
            return false;
        }
        let (hosts, by_addr, cookies, net, plans) =
            (&mut self.hosts, &self.by_addr, &self.cookies, &mut self.net, &self.plans);
        match self.scan.on_reply(reply, src_mac, hosts, by_addr, cookies, self.local, net, plans, now) {
            Some((disc, n)) => {
                self.settled(disc, n);
                true
            }
            None => false,
        }
    }

    /// An answer settled `n` outstanding probes (discovery probes if `disc`).
    fn settled(&mut self, disc: bool, n: usize) {
        self.in_flight = self.in_flight.saturating_sub(n);
        if disc {
            self.disc_in_flight = self.disc_in_flight.saturating_sub(n);
        }
        self.replies += 1;
    }

    /// When the machine next wants to be called: `now` while it has more to send this round,
    /// else its next timer (a probe's timeout, the pacer's next slot, a UDP send gap opening, a
    /// sweep of hosts with nothing else pending). `None`: nothing will happen until a packet or
    /// a target comes.
    pub(super) fn poll_at(&self, now: Instant) -> Option<Instant> {
        let timing = &self.scan.timing;
        let (ports_ok, disc_ok) = timing.room(self.allowed, self.in_flight, self.disc_in_flight);
        if (ports_ok || disc_ok) && self.burst > 0 && !self.pressure {
            return Some(now);
        }
        let mut wake = self.clock.next_deadline(self.net.global_rtt.timeout(timing));
        if let Some(t) = self.pacer.wait_until(now) {
            wake = earliest(wake, t.max(self.pause_until));
        }
        if self.pause_until > now {
            wake = earliest(wake, self.pause_until);
        }
        if self.has_udp {
            // A host whose UDP probes wait for their gap wants a wake-up when it opens.
            for h in self.hosts.values() {
                if h.udp_gap > Duration::ZERO && h.udp_next > now {
                    wake = earliest(wake, h.udp_next);
                }
            }
        }
        if wake.is_none() && !self.hosts.is_empty() {
            // Nothing out and nothing to wait for: hosts may have finished, which the next
            // sweep reports.
            wake = Some(self.last_sweep + SWEEP_EVERY);
        }
        wake
    }

    /// The next event, oldest first.
    pub(super) fn poll_event(&mut self) -> Option<ScanEvent> {
        self.events.pop_front()
    }

    /// The scan was cancelled: hosts found up so far are reported with what they have.
    pub(super) fn cancel(&mut self) {
        let hosts: Vec<Host> = self.hosts.drain().map(|(_, h)| h).collect();
        self.ring.clear();
        self.by_addr.clear();
        for h in hosts {
            if h.core.is_up() {
                self.finish_host(h, true);
            }
        }
    }

    /// The run's totals.
    pub(super) fn totals(&self) -> EngineTotals {
        self.totals
    }
}

/// The earlier of a timer that may be set and one that is.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl RawScan {
    /// The index of the scan of a protocol, if this run has one.
    pub(super) fn scan_of(&self, proto: Protocol) -> Option<u8> {
        self.scans.iter().position(|(t, _)| t.protocol() == proto).map(|i| i as u8)
    }

    pub(super) fn is_udp(&self, pk: Pk) -> bool {
        matches!(pk, Pk::Port(s, _) if self.scans.get(usize::from(s)).is_some_and(|(t, _)| *t == ScanType::Udp))
    }

    /// Has `h` nothing left to send, retry or wait for?
    pub(super) fn host_complete(&self, h: &Host, plans: &Plans) -> bool {
        let more = match h.core.life {
            Life::Discovery { .. } => h.disc_next < plans.of(h.plan).len(),
            Life::Up { .. } => h.cursors.iter().zip(&self.scans).any(|(c, (_, ports))| c.1 < ports.len()),
        };
        !more && h.retries.is_empty() && h.outstanding.is_empty()
    }

    /// Pick the next probe round-robin over hosts: retries first, then fresh probes, taking the
    /// scans of a combined run in turn. UDP probes wait for their host's send gap.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn next_probe(
        &self,
        hosts: &mut FxHashMap<u64, Host>,
        ring: &mut VecDeque<u64>,
        orders: &[Vec<u16>],
        plans: &Plans,
        now: Instant,
        ports_ok: bool,
        disc_ok: bool,
    ) -> Option<(u64, Pk, u8)> {
        let timing = &self.timing;
        for _ in 0..ring.len() {
            let id = ring.pop_front()?;
            ring.push_back(id);
            let Some(h) = hosts.get_mut(&id) else { continue };
            if h.outstanding.len() >= timing.max_parallelism {
                continue;
            }
            // A host's probes are all discovery probes until it is up, all port probes after.
            if (!h.core.is_up() && !disc_ok) || (h.core.is_up() && !ports_ok) {
                continue;
            }
            // (Discovery retries never stay queued past discovery: the host's first answer
            // drops them, and later timeouts do not queue them.)
            let udp_open = now >= h.udp_next;
            if let Some(i) = h.retries.iter().position(|(pk, _)| udp_open || !self.is_udp(*pk)) {
                if let Some((pk, tryno)) = h.retries.remove(i) {
                    return Some((id, pk, tryno));
                }
            }
            match h.core.life {
                Life::Discovery { .. } if h.disc_next < plans.of(h.plan).len() => {
                    h.disc_next += 1;
                    return Some((id, Pk::Disc((h.disc_next - 1) as u8), 0));
                }
                Life::Up { .. } => {
                    let n = orders.len();
                    for k in 0..n {
                        let s = (h.turn + k) % n;
                        let order = &orders[s];
                        let (offset, next) = h.cursors[s];
                        if next >= order.len() || (!udp_open && self.scans[s].0 == ScanType::Udp) {
                            continue;
                        }
                        h.cursors[s].1 += 1;
                        h.turn = s + 1;
                        return Some((id, Pk::Port(s as u8, order[(offset + next) % order.len()]), 0));
                    }
                }
                _ => {}
            }
        }
        None
    }
}
