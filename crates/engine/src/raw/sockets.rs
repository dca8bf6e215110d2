//! The raw engine's side of the operating system: the raw IP sender, the capture socket, the
//! reserved source ports, and [`System`], the machine's [`Topology`] read from the kernel's
//! routing and neighbour tables (how a host's probes leave: raw IP, or Ethernet frames on a link
//! to a known next hop).

use super::*;

/// The sockets of one raw scan. Opened before the scan starts so that a missing privilege is an
/// error up front, not a scan with no results.
pub struct RawSockets {
    pub(super) sender: RawIpSender,
    pub(super) capture: Capture,
    pub(super) sport: u16,
    pub(super) udp_sport: u16,
    /// Holds `sport` (TCP) for the duration of the scan.
    pub(super) _reserve: Option<Socket>,
    /// Holds `udp_sport`, so the kernel neither answers our UDP replies with port-unreachable
    /// nor gives the port to anyone else. What it receives is never read (its buffer is tiny).
    pub(super) _udp_reserve: Option<Socket>,
}

impl RawSockets {
    /// Open the raw sender, the capture socket, and reserve a source port (`source_port` with
    /// `-g`, else one the kernel picks). With `-e`, both are bound to that interface; with `-S`,
    /// answers to that address are captured too.
    pub fn open(origin: &Origin, source_port: Option<u16>) -> Result<RawSockets, RawScanError> {
        let (sender, capture) = open_sender_and_capture(origin)?;
        let (reserve, sport, udp_reserve, udp_sport) = match source_port {
            // A port the user chose (`-g 53`) is held if we can bind it. If a local service
            // already has it, or binding below 1024 is not allowed, probes still leave from it:
            // the answers are read from the capture either way.
            Some(p) => (bind_port(Type::STREAM, p).ok(), p, bind_port(Type::DGRAM, p).ok(), p),
            None => {
                let (r, sport) = reserve_port(Type::STREAM)?;
                let (u, udp_sport) = reserve_port(Type::DGRAM)?;
                (Some(r), sport, Some(u), udp_sport)
            }
        };
        if let Some(u) = &udp_reserve {
            let _ = u.set_recv_buffer_size(1);
        }
        Ok(RawSockets { sender, capture, sport, udp_sport, _reserve: reserve, _udp_reserve: udp_reserve })
    }
}

/// The raw IP sender and the capture socket of a raw stage (the port scan, the trace stage):
/// with `-e` both bound to that interface; the capture filtered to our addresses and `-S`'s.
pub(crate) fn open_sender_and_capture(origin: &Origin) -> Result<(RawIpSender, Capture), RawScanError> {
    let sender = RawIpSender::new()?;
    let ifindex = match &origin.interface {
        Some(name) => {
            let iface = rustmap_netio::iface::by_name(name)
                .ok_or_else(|| RawScanError::Interface(name.clone(), "no such interface".into()))?;
            sender.bind_device(name).map_err(|e| RawScanError::Interface(name.clone(), e.to_string()))?;
            Some(iface.index)
        }
        None => None,
    };
    let capture = Capture::open(ifindex)?;
    let mut ours: Vec<IpAddr> = rustmap_netio::iface::list().into_iter().flat_map(|i| i.addrs).collect();
    ours.extend(origin.source);
    // A filter is an optimisation (fewer copies to user space); without one we still check
    // every packet ourselves.
    let _ = capture.filter_to(&ours);
    Ok((sender, capture))
}

/// Bind a socket of this type to `port` on every address (dual-stack when the host has IPv6).
fn bind_port(ty: Type, port: u16) -> std::io::Result<Socket> {
    Socket::new(Domain::IPV6, ty, None)
        .and_then(|s| {
            s.set_only_v6(false)?;
            s.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
            Ok(s)
        })
        .or_else(|_| {
            let s = Socket::new(Domain::IPV4, ty, None)?;
            s.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            Ok(s)
        })
}

/// Bind a socket of this type to a free port on every address (dual-stack when the host has
/// IPv6), so the kernel gives that port to nobody else while the scan uses it as its source.
pub(crate) fn reserve_port(ty: Type) -> Result<(Socket, u16), RawScanError> {
    let sock = bind_port(ty, 0).map_err(RawScanError::SourcePort)?;
    let port = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .ok_or_else(|| RawScanError::SourcePort(std::io::Error::other("no local port")))?;
    Ok((sock, port))
}

/// The kernel's neighbour table as last read, reread at most once a second when a next hop is
/// missing from it (the kernel may have resolved it since).
pub(super) struct NeighCache {
    pub(super) table: Neighbours,
    pub(super) read: Instant,
}

impl NeighCache {
    pub(super) fn get(&mut self, ip: std::net::Ipv4Addr, ifname: &str) -> Option<[u8; 6]> {
        if let Some(mac) = self.table.get(ip, ifname) {
            return Some(mac);
        }
        if self.read.elapsed() >= Duration::from_secs(1) {
            self.table = Neighbours::load();
            self.read = Instant::now();
        }
        self.table.get(ip, ifname)
    }
}

/// The machine's view of this host's network ([`Topology`]): source addresses and links from
/// the routing table, next hops from the neighbour table, and the link-layer senders (ARP, ND
/// and Ethernet frames), one per interface, opened when first needed.
pub(super) struct System {
    origin: Origin,
    routes: RouteTable,
    neigh: NeighCache,
    pub(super) links: HashMap<u32, Option<LinkSender>>,
}

impl System {
    /// Read the routing and neighbour tables once, at the start of a scan.
    pub(super) fn load(origin: Origin) -> System {
        System {
            origin,
            routes: RouteTable::load(),
            neigh: NeighCache { table: Neighbours::load(), read: Instant::now() },
            links: HashMap::new(),
        }
    }
}

impl Topology for System {
    fn source_for(&self, addr: IpAddr) -> Option<IpAddr> {
        self.origin.source_for(addr)
    }

    fn on_link(&self, addr: IpAddr) -> Option<Link> {
        self.routes.on_link(addr, self.origin.interface.as_deref())
    }

    /// Probes leave as Ethernet frames when the target is reached over an Ethernet-like link
    /// (directly or through a gateway) whose next hop's hardware address is known — learned from
    /// the host's own replies, or in the kernel's neighbour table — and an AF_PACKET socket can
    /// be opened there; else through the raw IP socket. Frames skip the kernel's per-packet route
    /// and neighbour lookups, and go out many per system call.
    fn hop(&mut self, addr: IpAddr, learned: Option<[u8; 6]>) -> Hop {
        let Some((link, next)) = self.routes.egress(addr, self.origin.interface.as_deref()) else { return Hop::Ip };
        let learned = if next == addr { learned } else { None };
        let mac = learned.or_else(|| match next {
            IpAddr::V4(v4) => self.neigh.get(v4, &link.ifname),
            IpAddr::V6(_) => None,
        });
        let Some(dst) = mac else { return Hop::Ip };
        if self.links.entry(link.ifindex).or_insert_with(|| LinkSender::new(link.ifindex).ok()).is_none() {
            return Hop::Ip;
        }
        Hop::Frame { ifindex: link.ifindex, src: link.mac, dst }
    }
}
