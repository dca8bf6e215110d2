//! Building probe packets: each scan type's TCP flags and the packet of every probe, with the
//! evasion options applied (payload, TTL, IPv4 options, bad checksums; decoys and fragments
//! make one probe several packets, see [`RawScan::emit`]).

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
    /// Build the packet for one probe from source `src` into `buf`; its length, or `None` if it
    /// cannot be built. (`rng` draws the IP ID's random bits.)
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        &self,
        buf: &mut [u8],
        src: IpAddr,
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
        let data = self.evasion.payload.as_deref();
        let tcp = |dport: u16, flags: Flags| L4::Tcp {
            sport,
            dport,
            seq: c,
            ack: if flags.contains(Flags::ACK) { c } else { 0 },
            flags,
            window: 1024,
            options: if flags.contains(Flags::SYN) { &mss } else { &[] },
            payload: data.unwrap_or(&[]),
        };
        let l4 = match pk {
            Pk::Port(s, port) => match self.scans.get(usize::from(s))?.0 {
                ScanType::Udp => L4::Udp {
                    sport: local.udp_sport,
                    dport: port,
                    payload: data.unwrap_or_else(|| payloads::for_port(port)),
                },
                ScanType::SctpInit => L4::SctpInit { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                ScanType::SctpCookieEcho => L4::SctpCookieEcho { sport, dport: port, tag: cookies.sctp_tag(dst, pk) },
                tcp_type => tcp(port, scan_flags(tcp_type)?),
            },
            Pk::Disc(_) => match disc? {
                DiscProbe::Ping(Ping::Echo) => {
                    L4::IcmpEcho { v6: dst.is_ipv6(), id: icmp_id, seq: c as u16, payload: data.unwrap_or(&[]) }
                }
                DiscProbe::Ping(Ping::Timestamp) => L4::IcmpTimestamp { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Mask) => L4::IcmpMask { id: icmp_id, seq: c as u16 },
                DiscProbe::Ping(Ping::Syn(p)) => tcp(p, Flags::SYN),
                DiscProbe::Ping(Ping::Ack(p)) => tcp(p, Flags::ACK),
                DiscProbe::Ping(Ping::Udp(p)) => {
                    L4::Udp { sport: local.udp_sport, dport: p, payload: data.unwrap_or_else(|| payloads::for_port(p)) }
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
        let p = IpProbe { src, dst, ttl: self.evasion.ttl.unwrap_or(64), ip_id, l4 };
        let (at, mut n) = match eth {
            Some((src, dst)) => (ethernet::HEADER_LEN, wp::emit_frame(src, dst, &p, buf).ok()?),
            None => (0, wp::emit_ip(&p, buf).ok()?),
        };
        if !self.evasion.ip_options.is_empty() && dst.is_ipv4() {
            n = at + mangle::insert_ipv4_options(buf.get_mut(at..)?, n - at, &self.evasion.ip_options).ok()?;
        }
        if self.evasion.badsum {
            mangle::corrupt_checksum(buf.get_mut(at..n)?).ok()?;
        }
        Some(n)
    }

    /// Build one probe into `outbox` with the evasion options that make it several packets:
    /// one copy from each decoy source and our own, in the configured order, each cut into
    /// fragments with `-f`/`--mtu`. `build` writes the whole packet from a given source (an
    /// Ethernet frame when `framed`). Returns whether every packet was built; if not, none
    /// stays in the outbox.
    pub(super) fn emit(
        &self,
        outbox: &mut Outbox,
        dst: Option<IpAddr>,
        own: IpAddr,
        framed: bool,
        ident6: u32,
        mut build: impl FnMut(&mut [u8], IpAddr) -> Option<usize>,
    ) -> bool {
        let before = outbox.packets();
        let at = if framed { ethernet::HEADER_LEN } else { 0 };
        let mut whole = [0u8; rustmap_netio::raw::SLOT];
        for src in self.evasion.sources(own.is_ipv6()) {
            let Some(n) = build(&mut whole, src.unwrap_or(own)) else {
                outbox.truncate(before);
                return false;
            };
            let (head, ip) = whole.split_at(at);
            let ip = &ip[..n - at];
            let Some(size) = self.evasion.fragment.map(usize::from) else {
                let copied = outbox.push_packet(dst, |buf| {
                    buf.get_mut(..n)?.copy_from_slice(&whole[..n]);
                    Some(n)
                });
                if !copied {
                    outbox.truncate(before);
                    return false;
                }
                continue;
            };
            let count = mangle::fragment_count(ip, size).unwrap_or(1);
            for k in 0..count {
                let ok = outbox.push_packet(dst, |buf| {
                    buf.get_mut(..at)?.copy_from_slice(head);
                    mangle::write_fragment(ip, size, k, ident6, buf.get_mut(at..)?).ok().map(|len| at + len)
                });
                if !ok {
                    outbox.truncate(before);
                    return false;
                }
            }
        }
        outbox.packets() > before
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
