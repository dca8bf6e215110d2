//! [`Evasion`]: what the evasion options ask of raw probes — decoy sources (`-D`), IP
//! fragments (`-f`, `-ff`, `--mtu`), a fixed source port (`-g`), a custom payload
//! (`--data-hex`, `--data-string`, `--data-length`), the TTL (`--ttl`), a spoofed source MAC
//! (`--spoof-mac`), wrong transport checksums (`--badsum`) and IPv4 options (`--ip-options`).
//!
//! This is the engine's checked form: the facade (`rustmap::validate`) parses the user's
//! spellings, refuses combinations that make no sense (decoys with a connect scan), resolves
//! `RND:N` and places `ME`. The raw engine applies it when it builds a probe; the default
//! value changes nothing, and the engine then takes its one-packet-per-probe fast path.

use std::net::IpAddr;

/// Evasion options of one raw scan. `Default` is a plain scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evasion {
    /// The sources every IP probe is sent from, in this order: decoy addresses and, once, the
    /// scanner's own (`None`, nmap's `ME`). Empty: our own address only. A decoy of the other
    /// address family than a target is not used for it.
    pub decoys: Vec<Option<IpAddr>>,
    /// Cut every IP probe into fragments whose IP payload is at most this many bytes (a
    /// multiple of 8).
    pub fragment: Option<u16>,
    /// Source port of TCP, UDP and SCTP probes, instead of one the kernel picks.
    pub source_port: Option<u16>,
    /// Payload of UDP probes (instead of the per-port protocol payloads), TCP probes and ICMP
    /// echo requests.
    pub payload: Option<Vec<u8>>,
    /// IPv4 TTL / IPv6 hop limit of probes (default 64).
    pub ttl: Option<u8>,
    /// Source hardware address of probes sent as Ethernet frames.
    pub spoof_mac: Option<[u8; 6]>,
    /// Make every probe's transport checksum wrong.
    pub badsum: bool,
    /// IPv4 options added to every IPv4 probe (at most 40 bytes).
    pub ip_options: Vec<u8>,
}

impl Evasion {
    /// Does one probe become more than one packet (decoys or fragments)?
    pub fn multi_packet(&self) -> bool {
        self.decoys.len() > 1 || self.fragment.is_some()
    }

    /// Is `addr` one of the decoys (answers to it are not ours)?
    pub fn is_decoy(&self, addr: IpAddr) -> bool {
        self.decoys.contains(&Some(addr))
    }

    /// The sources of a probe to a target of this family, in sending order (`None`: ours).
    pub fn sources(&self, v6: bool) -> impl Iterator<Item = Option<IpAddr>> + '_ {
        let all: &[Option<IpAddr>] = if self.decoys.is_empty() { &[None] } else { &self.decoys };
        all.iter().copied().filter(move |d| d.is_none_or(|a| a.is_ipv6() == v6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_keep_the_order_and_the_family() {
        let a: IpAddr = "198.18.0.200".parse().unwrap();
        let b: IpAddr = "fd00:18::200".parse().unwrap();
        let c: IpAddr = "198.18.0.201".parse().unwrap();
        let e = Evasion { decoys: vec![Some(a), Some(b), None, Some(c)], ..Evasion::default() };
        assert_eq!(e.sources(false).collect::<Vec<_>>(), vec![Some(a), None, Some(c)]);
        assert_eq!(e.sources(true).collect::<Vec<_>>(), vec![Some(b), None]);
        assert!(e.is_decoy(a) && !e.is_decoy("198.18.0.2".parse().unwrap()));
        assert!(e.multi_packet());
        let plain = Evasion::default();
        assert_eq!(plain.sources(false).collect::<Vec<_>>(), vec![None]);
        assert!(!plain.multi_packet());
    }
}
