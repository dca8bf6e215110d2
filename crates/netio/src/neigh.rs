//! Link-layer addresses of next hops, from the kernel's neighbour table (`/proc/net/arp`).
//! On a miss the kernel is asked to resolve the address by sending it one empty UDP datagram
//! (to the discard port) through an ordinary socket, which makes the kernel ARP for it; the table
//! is then polled, bounded in time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// ATF_COM: the entry is complete.
const ATF_COM: u32 = 0x2;

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The complete entries of a `/proc/net/arp` text: address, interface, hardware address.
fn complete_entries(text: &str) -> impl Iterator<Item = (Ipv4Addr, &str, [u8; 6])> {
    text.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 {
            return None;
        }
        let flags = u32::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap_or(0);
        if flags & ATF_COM == 0 {
            return None;
        }
        let mac = parse_mac(f[3]).filter(|m| *m != [0; 6])?;
        Some((f[0].parse().ok()?, f[5], mac))
    })
}

/// Find `ip` on `ifname` in a `/proc/net/arp` text.
pub fn parse_arp(text: &str, ip: Ipv4Addr, ifname: &str) -> Option<[u8; 6]> {
    complete_entries(text).find(|(a, i, _)| *a == ip && *i == ifname).map(|(_, _, m)| m)
}

/// A snapshot of the kernel's IPv4 neighbour table, for looking up the next hops of many
/// destinations without reading `/proc` for each.
#[derive(Debug, Default, Clone)]
pub struct Neighbours {
    entries: HashMap<(Ipv4Addr, String), [u8; 6]>,
}

impl Neighbours {
    /// Read the table now (empty if it cannot be read).
    pub fn load() -> Neighbours {
        Neighbours::parse(&std::fs::read_to_string("/proc/net/arp").unwrap_or_default())
    }

    /// The complete entries of a `/proc/net/arp` text.
    pub fn parse(text: &str) -> Neighbours {
        Neighbours { entries: complete_entries(text).map(|(a, i, m)| ((a, i.to_string()), m)).collect() }
    }

    /// The hardware address of `ip` on `ifname`, if the snapshot has it.
    pub fn get(&self, ip: Ipv4Addr, ifname: &str) -> Option<[u8; 6]> {
        self.entries.get(&(ip, ifname.to_string())).copied()
    }
}

/// The hardware address of an IPv4 neighbour, if the kernel knows it.
pub fn arp_lookup(ip: Ipv4Addr, ifname: &str) -> Option<[u8; 6]> {
    parse_arp(&std::fs::read_to_string("/proc/net/arp").ok()?, ip, ifname)
}

/// The hardware address of an IPv4 next hop, resolving it through the kernel if needed.
pub fn resolve_v4(ip: Ipv4Addr, ifname: &str, timeout: Duration) -> Option<[u8; 6]> {
    if let Some(mac) = arp_lookup(ip, ifname) {
        return Some(mac);
    }
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    let _ = sock.send_to(&[], SocketAddr::new(IpAddr::V4(ip), 9));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        if let Some(mac) = arp_lookup(ip, ifname) {
            return Some(mac);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_entries_only() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
198.18.0.10      0x1         0x2         fe:dd:e3:65:82:3f     *        eth0\n\
198.18.0.20      0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(parse_arp(t, "198.18.0.10".parse().unwrap(), "eth0"), Some([0xfe, 0xdd, 0xe3, 0x65, 0x82, 0x3f]));
        assert_eq!(parse_arp(t, "198.18.0.10".parse().unwrap(), "eth1"), None);
        assert_eq!(parse_arp(t, "198.18.0.20".parse().unwrap(), "eth0"), None);
        let n = Neighbours::parse(t);
        assert_eq!(n.get("198.18.0.10".parse().unwrap(), "eth0"), Some([0xfe, 0xdd, 0xe3, 0x65, 0x82, 0x3f]));
        assert_eq!(n.get("198.18.0.20".parse().unwrap(), "eth0"), None, "incomplete");
        assert_eq!(n.get("198.18.0.10".parse().unwrap(), "eth1"), None);
        assert_eq!(parse_mac("fe:dd:e3:65:82"), None);
        assert_eq!(parse_mac("fe:dd:e3:65:82:3f:00"), None);
    }
}
