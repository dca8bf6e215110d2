//! Whether this process may send raw packets. Read from the kernel's view of our capabilities
//! (`CapEff` in `/proc/self/status`, bit 13 = CAP_NET_RAW) rather than from the user id, so that a
//! binary given `cap_net_raw` by setcap counts as privileged and root without it does not.
//!
//! RustMap needs CAP_NET_RAW only (raw IP and AF_PACKET sockets, binding to an interface).
//! CAP_NET_ADMIN is part of the documented grant, as nmap documents it, so that a later feature
//! needing it (larger socket buffers past the sysctl limits, promiscuous capture) does not need
//! a second `setcap`; it is reported but not required.

/// Bit of CAP_NET_ADMIN in the capability sets.
const CAP_NET_ADMIN: u32 = 12;
/// Bit of CAP_NET_RAW in the capability sets.
const CAP_NET_RAW: u32 = 13;

/// The command that lets an unprivileged user run raw scans, for messages and documentation.
pub const GRANT_COMMAND: &str = "sudo setcap cap_net_raw,cap_net_admin+eip \"$(command -v rustmap)\"";

/// The network capabilities this process has in its effective set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetCapabilities {
    /// CAP_NET_RAW: raw and packet sockets (what raw scans need).
    pub net_raw: bool,
    /// CAP_NET_ADMIN: interface and socket administration (not needed today).
    pub net_admin: bool,
}

impl NetCapabilities {
    /// Read from a capability mask (`CapEff`).
    pub fn from_mask(mask: u64) -> NetCapabilities {
        NetCapabilities { net_raw: mask & (1 << CAP_NET_RAW) != 0, net_admin: mask & (1 << CAP_NET_ADMIN) != 0 }
    }
}

/// Parse the effective capability mask out of a `/proc/<pid>/status` text.
pub fn cap_eff_from_status(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// This process's network capabilities (none when they cannot be read, e.g. without `/proc`).
pub fn capabilities() -> NetCapabilities {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff_from_status(&s))
        .map(NetCapabilities::from_mask)
        .unwrap_or_default()
}

/// True when raw sockets may be opened.
pub fn has_raw_socket_privilege() -> bool {
    capabilities().net_raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let s = "Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t0000000000002000\n";
        assert_eq!(cap_eff_from_status(s), Some(0x2000));
        assert_eq!(NetCapabilities::from_mask(0x2000), NetCapabilities { net_raw: true, net_admin: false });
        assert_eq!(cap_eff_from_status("CapEff:\tzz\n"), None);
    }

    #[test]
    fn setcap_grant_is_both_bits() {
        // What `setcap cap_net_raw,cap_net_admin+eip` gives an exec'd process: bits 12 and 13.
        assert_eq!(NetCapabilities::from_mask(0x3000), NetCapabilities { net_raw: true, net_admin: true });
        // Root's full set includes them; an empty set has neither.
        assert!(NetCapabilities::from_mask(0x1ff_ffff_ffff).net_raw);
        assert_eq!(NetCapabilities::from_mask(0), NetCapabilities::default());
    }
}
