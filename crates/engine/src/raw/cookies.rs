//! Probe cookies: every probe carries a keyed hash of its target, port and kind, which a reply
//! must echo to count.

use super::*;
use std::hash::{Hash, Hasher};

/// Keyed cookies for probes: SipHash-1-3 under a secret key drawn from the scan's random
/// source, so a simulation with a fixed seed sees the same cookies every run while nobody off
/// the path can forge an answer.
pub(super) struct Cookies {
    pub(super) key: (u64, u64),
}

impl Cookies {
    /// Cookies under a key drawn from `rng`.
    pub(super) fn new(rng: &mut impl Rng) -> Cookies {
        Cookies { key: (rng.random(), rng.random()) }
    }

    pub(super) fn of(&self, addr: IpAddr, pk: Pk) -> u32 {
        // Packed into two integers (the family bit keeps a v4 address apart from the v6 address
        // with the same low bits): two hasher writes instead of one per field.
        let (a, v6) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 0u64),
            IpAddr::V6(a) => (u128::from(a), 1u64 << 40),
        };
        let k = v6
            | match pk {
                Pk::Port(s, port) => (u64::from(s) << 16) | u64::from(port),
                Pk::Disc(i) => (1 << 32) | u64::from(i),
            };
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.key.0, self.key.1);
        (a, k).hash(&mut h);
        h.finish() as u32
    }

    /// The cookie as an SCTP tag: an initiate tag must not be zero (RFC 9260 §3.3.2).
    pub(super) fn sctp_tag(&self, addr: IpAddr, pk: Pk) -> u32 {
        self.of(addr, pk).max(1)
    }
}

/// Does a TCP reply echo `c` the way a reply to our probe must?
pub(super) fn tcp_echoes(c: u32, seq: u32, ack: u32, flags: Flags) -> bool {
    ack == c.wrapping_add(1) || ack == c || (flags.contains(Flags::RST) && seq == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_echo_rules() {
        let c = 0x1234_5678u32;
        // SYN/ACK and RST to a SYN acknowledge cookie + 1.
        assert!(tcp_echoes(c, 999, c + 1, Flags::SYN | Flags::ACK));
        assert!(tcp_echoes(c, 0, c + 1, Flags::RST | Flags::ACK));
        // A RST to a probe that carried an ACK takes its sequence number from our ack.
        assert!(tcp_echoes(c, c, 0, Flags::RST));
        // NULL probe: nothing consumed, ack == cookie.
        assert!(tcp_echoes(c, 0, c, Flags::RST | Flags::ACK));
        // Anything else is somebody else's.
        assert!(!tcp_echoes(c, 7, c + 2, Flags::RST | Flags::ACK));
        assert!(!tcp_echoes(c, c, 5, Flags::SYN | Flags::ACK));
    }

    #[test]
    fn cookies_differ_by_port_and_kind() {
        let k = Cookies::new(&mut rand::rng());
        let a: IpAddr = "198.18.0.10".parse().unwrap();
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(0, 81)));
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(1, 80)), "TCP 80 and UDP 80 differ");
        assert_ne!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Disc(2)));
        assert_eq!(k.of(a, Pk::Port(0, 80)), k.of(a, Pk::Port(0, 80)));
        assert_ne!(k.sctp_tag(a, Pk::Port(2, 9)), 0);
    }
}
