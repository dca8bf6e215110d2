//! Where probes leave from: nmap's `-e IFACE` (send and listen on one interface) and `-S ADDR`
//! (use this source address). Shared by the connect and raw engines.

use std::net::IpAddr;

/// The user's choice of interface and source address; both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// Interface name (`-e`).
    pub interface: Option<String>,
    /// Source address (`-S`).
    pub source: Option<IpAddr>,
}

impl Origin {
    /// The source address for probes to `dst`: `-S` when it is of `dst`'s family, else the first
    /// address of that family on the `-e` interface, else what the routing table picks. `None`
    /// when there is no route.
    pub fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        if let Some(s) = self.source.filter(|s| s.is_ipv4() == dst.is_ipv4()) {
            return Some(s);
        }
        if let Some(name) = &self.interface {
            let iface = rustmap_netio::iface::by_name(name)?;
            // IPv6 link-local addresses need a scope; prefer a global one when there is one.
            let mut of_family: Vec<IpAddr> =
                iface.addrs.iter().copied().filter(|a| a.is_ipv4() == dst.is_ipv4()).collect();
            of_family.sort_by_key(|a| matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80));
            return of_family.first().copied();
        }
        rustmap_netio::route::source_for(dst).ok()
    }

    /// The source address to bind a connect socket to, if the user chose one of `dst`'s family.
    pub fn bind_for(&self, dst: IpAddr) -> Option<IpAddr> {
        if self.source.is_some() || self.interface.is_some() {
            self.source_for(dst)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_follows_the_family_of_the_target() {
        let o = Origin { interface: None, source: Some("192.0.2.7".parse().unwrap()) };
        assert_eq!(o.source_for("127.0.0.1".parse().unwrap()), Some("192.0.2.7".parse().unwrap()));
        // An IPv6 target cannot use an IPv4 source: the route decides.
        assert_ne!(o.source_for("::1".parse().unwrap()), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(Origin::default().bind_for("127.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn interface_gives_its_own_address() {
        let lo = rustmap_netio::iface::loopback_name();
        let o = Origin { interface: Some(lo), source: None };
        assert_eq!(o.source_for("127.0.0.1".parse().unwrap()), Some("127.0.0.1".parse().unwrap()));
        let none = Origin { interface: Some("no-such-if0".into()), source: None };
        assert_eq!(none.source_for("127.0.0.1".parse().unwrap()), None);
    }
}
