//! The routing table, read from `/proc/net/route` and `/proc/net/ipv6_route`, and the source
//! address the kernel would pick (asked with a connected UDP socket, which sends nothing).
//! Policy routing (`ip rule`) is not consulted: the main table decides, as for most scanners.

use crate::{iface, NetioError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// How to reach a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Outgoing interface name.
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
    /// Our address on that path.
    pub src: IpAddr,
    /// The next hop, when it is not the destination itself.
    pub gateway: Option<IpAddr>,
    /// Interface MTU.
    pub mtu: u32,
    /// Interface hardware address (none on loopback and tunnels).
    pub mac: Option<[u8; 6]>,
    /// The path is the loopback interface.
    pub loopback: bool,
}

impl Route {
    /// The address whose link-layer address we need: the gateway, else the destination.
    pub fn next_hop(&self, dst: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(dst)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    ifname: String,
    dst: IpAddr,
    prefix: u8,
    gateway: Option<IpAddr>,
    metric: u32,
}

const RTF_UP: u32 = 0x1;

/// Parse `/proc/net/route`. Addresses there are written as the native-endian value of a
/// network-order `u32`.
fn parse_v4(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dst), Some(gw), Some(flags), Some(mask)) = (hex(f[1]), hex(f[2]), hex(f[3]), hex(f[7])) else {
            continue;
        };
        if flags & RTF_UP == 0 {
            continue;
        }
        let metric = f[6].parse().unwrap_or(0);
        let gw = Ipv4Addr::from(gw.to_ne_bytes());
        out.push(Entry {
            ifname: f[0].to_string(),
            dst: IpAddr::V4(Ipv4Addr::from(dst.to_ne_bytes())),
            prefix: u32::from_be_bytes(mask.to_ne_bytes()).count_ones() as u8,
            gateway: (!gw.is_unspecified()).then_some(IpAddr::V4(gw)),
            metric,
        });
    }
    out
}

/// Parse `/proc/net/ipv6_route`: dst, dst-prefix, src, src-prefix, next hop, metric, refcnt, use, flags, ifname.
fn parse_v6(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from);
        let (Some(dst), Ok(prefix), Some(gw), Ok(metric), Ok(flags)) = (
            addr(f[0]),
            u8::from_str_radix(f[1], 16),
            addr(f[4]),
            u32::from_str_radix(f[5], 16),
            u32::from_str_radix(f[8], 16),
        ) else {
            continue;
        };
        if flags & RTF_UP == 0 || prefix > 128 {
            continue;
        }
        out.push(Entry {
            ifname: f[9].to_string(),
            dst: IpAddr::V6(dst),
            prefix,
            gateway: (!gw.is_unspecified()).then_some(IpAddr::V6(gw)),
            metric,
        });
    }
    out
}

fn matches(e: &Entry, dst: IpAddr) -> bool {
    match (e.dst, dst) {
        (IpAddr::V4(net), IpAddr::V4(a)) => {
            let mask = if e.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(e.prefix.min(32))) };
            u32::from(net) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(a)) => {
            let mask = if e.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(e.prefix.min(128))) };
            u128::from(net) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Longest-prefix match, lowest metric among equals.
fn best(entries: &[Entry], dst: IpAddr) -> Option<&Entry> {
    entries.iter().filter(|e| matches(e, dst)).max_by(|a, b| a.prefix.cmp(&b.prefix).then(b.metric.cmp(&a.metric)))
}

/// The source address the kernel picks for `dst`. A UDP `connect` only consults the routing
/// table; nothing is sent.
pub fn source_for(dst: IpAddr) -> Result<IpAddr, NetioError> {
    let bind: SocketAddr = if dst.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!())
    } else {
        "[::]:0".parse().unwrap_or_else(|_| unreachable!())
    };
    let sock = UdpSocket::bind(bind).map_err(|e| NetioError::io("binding a UDP socket", e))?;
    sock.connect(SocketAddr::new(dst, 9)).map_err(|_| NetioError::NoRoute(dst))?;
    sock.local_addr().map(|a| a.ip()).map_err(|e| NetioError::io("reading the source address", e))
}

/// How to reach `dst`: interface, source address, gateway.
pub fn lookup(dst: IpAddr) -> Result<Route, NetioError> {
    let src = source_for(dst)?;
    let text = std::fs::read_to_string(if dst.is_ipv4() { "/proc/net/route" } else { "/proc/net/ipv6_route" })
        .map_err(|e| NetioError::io("reading the routing table", e))?;
    let entries = if dst.is_ipv4() { parse_v4(&text) } else { parse_v6(&text) };
    // Our own addresses and 127/8 go through loopback, which /proc/net/route does not list.
    let own = dst.is_loopback() || dst == src;
    let (ifname, gateway) = if own {
        (iface::loopback_name(), None)
    } else {
        let e = best(&entries, dst).ok_or(NetioError::NoRoute(dst))?;
        (e.ifname.clone(), e.gateway)
    };
    let info = iface::by_name(&ifname).ok_or(NetioError::NoRoute(dst))?;
    Ok(Route { ifname, ifindex: info.index, src, gateway, mtu: info.mtu, mac: info.mac, loopback: info.loopback })
}

/// A destination's directly connected link: the interface it is reached on without a gateway,
/// and our hardware address there. ARP and neighbour discovery work only on such links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub ifname: String,
    /// Interface index.
    pub ifindex: u32,
    /// Our hardware address on it.
    pub mac: [u8; 6],
}

/// A snapshot of the routing tables and interfaces, read once, for looking up many destinations
/// without reading `/proc` for each (a sweep of a /16 asks 65536 times).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    v4: Vec<Entry>,
    v6: Vec<Entry>,
    ifaces: Vec<iface::Interface>,
}

impl RouteTable {
    /// Read the tables now. Unreadable tables give an empty snapshot (nothing is on-link).
    pub fn load() -> RouteTable {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        RouteTable {
            v4: parse_v4(&read("/proc/net/route")),
            v6: parse_v6(&read("/proc/net/ipv6_route")),
            ifaces: iface::list(),
        }
    }

    /// The link `dst` is directly on, if any: reached without a gateway, over an interface that
    /// is up, has a hardware address and is not loopback, and `dst` is not our own address.
    /// With `only` (`-e`), that interface or nothing.
    pub fn on_link(&self, dst: IpAddr, only: Option<&str>) -> Option<Link> {
        match self.link_route(dst, only)? {
            (link, None) => Some(link),
            (_, Some(_)) => None,
        }
    }

    /// The Ethernet-like link `dst` leaves on, directly or through a gateway, and the next hop
    /// on it whose hardware address a frame to `dst` needs. `None` for our own addresses,
    /// loopback, links without hardware addresses (tunnels), and, with `only` (`-e`), routes
    /// through other interfaces.
    pub fn egress(&self, dst: IpAddr, only: Option<&str>) -> Option<(Link, IpAddr)> {
        let (link, gateway) = self.link_route(dst, only)?;
        Some((link, gateway.unwrap_or(dst)))
    }

    /// The Ethernet-like link `dst` leaves on and the route's gateway, if any: the one lookup
    /// behind [`RouteTable::on_link`] and [`RouteTable::egress`].
    fn link_route(&self, dst: IpAddr, only: Option<&str>) -> Option<(Link, Option<IpAddr>)> {
        if dst.is_loopback() || dst.is_multicast() || dst.is_unspecified() {
            return None;
        }
        if self.ifaces.iter().any(|i| i.addrs.contains(&dst)) {
            return None;
        }
        let entries = if dst.is_ipv4() { &self.v4 } else { &self.v6 };
        let e = best(entries, dst)?;
        if only.is_some_and(|o| o != e.ifname) {
            return None;
        }
        let i = self.ifaces.iter().find(|i| i.name == e.ifname)?;
        if i.loopback || !i.up {
            return None;
        }
        let link = Link { ifname: i.name.clone(), ifindex: i.index, mac: i.mac.filter(|m| *m != [0; 6])? };
        Some((link, e.gateway))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth1\t000012C6\t010012C6\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
down0\t000212C6\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    fn v4_table_longest_prefix() {
        let e = parse_v4(V4);
        assert_eq!(e.len(), 3, "the route that is not up is skipped");
        let r = best(&e, "192.0.2.77".parse().unwrap()).unwrap();
        assert_eq!((r.ifname.as_str(), r.prefix, r.gateway), ("eth0", 24, None));
        let r = best(&e, "198.18.2.10".parse().unwrap()).unwrap();
        assert_eq!(r.ifname, "eth1");
        assert_eq!(r.gateway, Some("198.18.0.1".parse().unwrap()));
        let r = best(&e, "203.0.113.9".parse().unwrap()).unwrap();
        assert_eq!((r.prefix, r.gateway), (0, Some("192.0.2.1".parse().unwrap())));
    }

    #[test]
    fn v6_table() {
        let t = "fd000018000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
fd000018000200000000000000000000 40 00000000000000000000000000000000 00 fd000018000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        let e = parse_v6(t);
        assert_eq!(e.len(), 2);
        let r = best(&e, "fd00:18:2::10".parse().unwrap()).unwrap();
        assert_eq!(r.gateway, Some("fd00:18::1".parse().unwrap()));
        assert!(best(&e, "fd00:19::1".parse().unwrap()).is_none());
    }

    #[test]
    fn snapshot_on_link() {
        let t = RouteTable {
            v4: parse_v4(V4),
            v6: Vec::new(),
            ifaces: vec![iface::Interface {
                name: "eth0".into(),
                index: 2,
                mac: Some([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
                addrs: vec!["192.0.2.5".parse().unwrap()],
                loopback: false,
                up: true,
            }],
        };
        let l = t.on_link("192.0.2.77".parse().unwrap(), None).unwrap();
        assert_eq!((l.ifname.as_str(), l.ifindex, l.mac), ("eth0", 2, [2, 0, 0, 0, 0, 1]));
        assert_eq!(t.on_link("192.0.2.77".parse().unwrap(), Some("eth1")), None, "-e names another interface");
        assert_eq!(t.on_link("192.0.2.5".parse().unwrap(), None), None, "our own address");
        assert_eq!(t.on_link("8.8.8.8".parse().unwrap(), None), None, "behind the default gateway");
        assert_eq!(t.on_link("198.18.5.5".parse().unwrap(), None), None, "eth1 is not in the snapshot");
        let (l, hop) = t.egress("8.8.8.8".parse().unwrap(), None).unwrap();
        assert_eq!((l.ifindex, hop), (2, "192.0.2.1".parse().unwrap()), "frames go to the gateway");
        let (_, hop) = t.egress("192.0.2.77".parse().unwrap(), None).unwrap();
        assert_eq!(hop, "192.0.2.77".parse::<IpAddr>().unwrap(), "on the link: the host itself");
        assert_eq!(t.egress("192.0.2.5".parse().unwrap(), None), None, "our own address");
        assert_eq!(t.egress("8.8.8.8".parse().unwrap(), Some("eth1")), None);
    }

    #[test]
    fn loopback_route() {
        let r = lookup("127.0.0.1".parse().unwrap()).unwrap();
        assert!(r.loopback, "{r:?}");
        assert_eq!(r.src, "127.0.0.1".parse::<IpAddr>().unwrap());
    }
}
