//! Network interfaces: names, indexes, hardware addresses, MTUs, addresses.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};
use std::net::IpAddr;

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name (`eth0`).
    pub name: String,
    /// Kernel index.
    pub index: u32,
    /// Hardware address, if it has one.
    pub mac: Option<[u8; 6]>,
    /// MTU (1500 if unknown).
    pub mtu: u32,
    /// IP addresses.
    pub addrs: Vec<IpAddr>,
    /// Loopback interface.
    pub loopback: bool,
    /// Administratively up.
    pub up: bool,
}

fn mtu_of(name: &str) -> u32 {
    // Names come from the kernel; refuse anything that could walk out of /sys/class/net.
    if name.contains('/') || name.contains("..") {
        return 1500;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1500)
}

/// Every interface of this network namespace.
pub fn list() -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    let Ok(addrs) = getifaddrs() else { return out };
    for a in addrs {
        let idx = match out.iter().position(|i| i.name == a.interface_name) {
            Some(i) => i,
            None => {
                out.push(Interface {
                    name: a.interface_name.clone(),
                    index: if_nametoindex(a.interface_name.as_str()).unwrap_or(0),
                    mac: None,
                    mtu: mtu_of(&a.interface_name),
                    addrs: Vec::new(),
                    loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
                    up: a.flags.contains(InterfaceFlags::IFF_UP),
                });
                out.len() - 1
            }
        };
        let Some(addr) = a.address else { continue };
        if let Some(link) = addr.as_link_addr() {
            if let Some(mac) = link.addr() {
                if mac != [0; 6] {
                    out[idx].mac = Some(mac);
                }
            }
        } else if let Some(v4) = addr.as_sockaddr_in() {
            out[idx].addrs.push(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            out[idx].addrs.push(IpAddr::V6(v6.ip()));
        }
    }
    out
}

/// One interface by name.
pub fn by_name(name: &str) -> Option<Interface> {
    list().into_iter().find(|i| i.name == name)
}

/// The loopback interface's name (`lo` on Linux).
pub fn loopback_name() -> String {
    list().into_iter().find(|i| i.loopback).map(|i| i.name).unwrap_or_else(|| "lo".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_listed() {
        let lo = super::list().into_iter().find(|i| i.loopback).expect("a loopback interface");
        assert!(lo.index > 0);
        assert!(lo.addrs.iter().any(|a| a.is_loopback()), "{lo:?}");
        assert!(lo.mtu >= 1280);
    }
}
