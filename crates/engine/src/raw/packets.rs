//! Building probe packets: each scan type's TCP flags and the packet of every probe.

use super::*;

/// The TCP flags each scan type sends.
pub(super) fn scan_flags(scan: ScanType) -> Option<Flags> {
    Some(match scan {
        ScanType::Syn => Flags::SYN,
        ScanType::Fin => Flags::FIN,
        ScanType::Null => Flags::empty(),
        ScanType::Xmas => Flags::FIN | Flags::PSH | Flags::URG,
        ScanType::Ack | ScanType::Window => Flags::ACK,
        ScanType::Maimon => Flags::FIN | Flags::ACK,
        _ => return None,
    })
}

impl RawScan {
    /// Build the packet for one probe into `buf`; its length, or `None` if it cannot be built.
    /// (`rng` draws the IP ID's random bits.)
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        &self,
        buf: &mut [u8],
        h: &Host,
        pk: Pk,
        cookies: &Cookies,
        local: Local,
        tryno: u8,
        disc: Option<DiscProbe>,
        eth: Option<([u8; 6], [u8; 6])>,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        let dst = h.core.target.addr;
        let (sport, icmp_id) = (local.sport, local.icmp_id);
        let c = cookies.of(dst, pk);
        let mss = [TcpOption::MaxSegmentSize(1460)];
        let tcp = |dport: u16, flags: Flags| L4::Tcp {
            sport,
            dport,
            seq: c,
            ack: if flags.contains(Flags::ACK) { c } else { 0 },
            flags,
            window: 1024,
            options: if flags.contains(Flags::SYN) { &mss } else { &[] },
        };
        let l4 = match pk {
            Pk::Port(s, port) => match self.scans.get(usize::from(s))?.0 {
                ScanType::Udp => L4::Udp { sport: local.udp_sport, dport: port, payload: payloads::for_port(port) },
                ScanType::SctpInit => L4::SctpInit { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                ScanType::SctpCookieEcho => L4::SctpCookieEcho { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                tcp_type => tcp(port, scan_flags(tcp_type)?),
            },
            Pk::Disc(_) => match disc? {
                DiscProbe::Ping(Ping::Echo) => {
                    L4::IcmpEcho { v6: dst.is_ipv6(), id: icmp_id, seq: c as u16, payload: &[] }
                }
                DiscProbe::Ping(Ping::Timestamp) => L4::IcmpTimestamp { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Mask) => L4::IcmpMask { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Syn(p)) => tcp(p, Flags::SYN),
                DiscProbe::Ping(Ping::Ack(p)) => tcp(p, Flags::ACK),
                DiscProbe::Ping(Ping::Udp(p)) => {
                    L4::Udp { sport: local.udp_sport, dport: p, payload: payloads::for_port(p) }
                }
                DiscProbe::Ping(Ping::Sctp(p)) => L4::SctpInit { sport, dport: p, tag: cookies.sctp_tag(dst, pk) },
                // Sent by their own tasks, never built here.
                DiscProbe::Ping(Ping::Http(_) | Ping::Https(_)) => return None,
                DiscProbe::Arp => {
                    let (IpAddr::V4(me), IpAddr::V4(them)) = (h.src, dst) else { return None };
                    return wp::emit_arp_request(h.link.as_ref()?.mac, me, them, buf).ok();
                }
                DiscProbe::Nd => {
                    let IpAddr::V6(them) = dst else { return None };
                    let mac = h.link.as_ref()?.mac;
                    let (group, group_mac) = wp::solicited_node(them);
                    let l4 = L4::NeighborSolicit { target: them, source_lladdr: mac };
                    let p = IpProbe { src: h.src, dst: IpAddr::V6(group), ttl: 255, ip_id: 0, l4 };
                    return wp::emit_frame(mac, group_mac, &p, buf).ok();
                }
            },
        };
        // The IP ID carries the try number, for debugging captures; it is not used for matching.
        let ip_id = (rng.random::<u16>() & 0xfff0) | u16::from(tryno & 0xf);
        let p = IpProbe { src: h.src, dst, ttl: 64, ip_id, l4 };
        match eth {
            Some((src, dst)) => wp::emit_frame(src, dst, &p, buf).ok(),
            None => wp::emit_ip(&p, buf).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tcp_scan_type_has_flags() {
        assert_eq!(scan_flags(ScanType::Syn), Some(Flags::SYN));
        assert_eq!(scan_flags(ScanType::Xmas), Some(Flags::FIN | Flags::PSH | Flags::URG));
        assert_eq!(scan_flags(ScanType::Maimon), Some(Flags::FIN | Flags::ACK));
        assert_eq!(scan_flags(ScanType::Null), Some(Flags::empty()));
        assert_eq!(scan_flags(ScanType::Udp), None);
        assert_eq!(scan_flags(ScanType::Connect), None);
    }
}
