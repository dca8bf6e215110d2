//! Private and special-use addresses (the IANA special-purpose registries, RFC 6890 and later):
//! which kind an address is, so that GeoIP output says "private" rather than "not found".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 special-use blocks: (network, prefix length, kind). Longest prefixes need no care here:
/// no two blocks overlap.
const V4: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "this-network"),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "shared"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "ietf-protocol"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 88, 99, 0], 24, "6to4-relay"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

/// IPv6 special-use blocks: (network, prefix length, kind).
const V6: &[(u128, u8, &str)] = &[
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96, "nat64"),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "discard"),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32, "documentation"),
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23, "ietf-protocol"),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique-local"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast"),
];

fn v4(a: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(a);
    if bits == u32::MAX {
        return Some("broadcast");
    }
    V4.iter()
        .find(|(net, len, _)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
            bits & mask == u32::from_be_bytes(*net) & mask
        })
        .map(|(_, _, kind)| *kind)
}

fn v6(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_loopback() {
        return Some("loopback");
    }
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v) = a.to_ipv4_mapped() {
        return v4(v);
    }
    let bits = u128::from(a);
    V6.iter()
        .find(|(net, len, _)| {
            let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
            bits & mask == net & mask
        })
        .map(|(_, _, kind)| *kind)
}

/// The kind of a private or special-use address (`private`, `loopback`, `benchmarking`,
/// `documentation`, `unique-local`...), `None` for an ordinary public address.
pub fn special_use(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => v6(a),
    }
}

#[cfg(test)]
mod tests {
    use super::special_use;

    #[test]
    fn special_blocks_are_named_and_public_ones_are_not() {
        let kind = |s: &str| special_use(s.parse().unwrap());
        assert_eq!(kind("10.1.2.3"), Some("private"));
        assert_eq!(kind("172.31.255.255"), Some("private"));
        assert_eq!(kind("172.32.0.1"), None);
        assert_eq!(kind("198.18.0.10"), Some("benchmarking"));
        assert_eq!(kind("198.19.255.255"), Some("benchmarking"));
        assert_eq!(kind("198.20.0.1"), None);
        assert_eq!(kind("127.0.0.1"), Some("loopback"));
        assert_eq!(kind("255.255.255.255"), Some("broadcast"));
        assert_eq!(kind("8.8.8.8"), None);
        assert_eq!(kind("::1"), Some("loopback"));
        assert_eq!(kind("fd00::10"), Some("unique-local"));
        assert_eq!(kind("fe80::1"), Some("link-local"));
        assert_eq!(kind("2001:db8::1"), Some("documentation"));
        assert_eq!(kind("::ffff:192.168.1.1"), Some("private"));
        assert_eq!(kind("2a00:1450::1"), None);
    }
}
