//! Whether this process may send raw packets. Read from the kernel's view of our capabilities
//! (`CapEff` in `/proc/self/status`, bit 13 = CAP_NET_RAW) rather than from the user id, so that a
//! binary given `cap_net_raw` by setcap counts as privileged and root without it does not.

/// Bit of CAP_NET_RAW in the capability sets.
const CAP_NET_RAW: u32 = 13;

/// Parse the effective capability mask out of a `/proc/<pid>/status` text.
pub fn cap_eff_from_status(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// True when raw sockets may be opened.
pub fn has_raw_socket_privilege() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_eff_from_status(&s))
        .is_some_and(|caps| caps & (1 << CAP_NET_RAW) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let s = "Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t0000000000002000\n";
        assert_eq!(cap_eff_from_status(s), Some(0x2000));
        assert!(cap_eff_from_status(s).unwrap() & (1 << CAP_NET_RAW) != 0);
        assert_eq!(cap_eff_from_status("CapEff:\tzz\n"), None);
    }
}
