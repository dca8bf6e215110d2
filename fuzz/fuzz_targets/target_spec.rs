//! Target specifications (`rustmap` arguments, `--exclude`, the lines of `-iL` files): IPv4/IPv6
//! addresses, CIDR, nmap octet ranges and host names. Any text parses or fails with a typed
//! error; a parsed spec's first addresses are inside it and its size is consistent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_targets::list::{ExcludeSet, TargetList};
use rustmap_targets::spec::TargetSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = TargetSpec::parse(text) {
        let mut n: u128 = 0;
        for a in spec.addrs().take(64) {
            assert!(spec.contains(a), "{text:?}: {a} not in its own spec");
            n += 1;
        }
        assert!(n <= spec.len());
        assert_eq!(spec.is_empty(), spec.len() == 0);
    }
    if let Ok(ex) = ExcludeSet::parse_list(text) {
        let _ = ex.contains(std::net::Ipv4Addr::new(192, 0, 2, 1).into());
    }
    let mut list = TargetList::new();
    if list.add_reader("fuzz.lst", text.as_bytes()).is_ok() {
        let _ = list.len_hint();
        for t in list.iter().take(64) {
            let _ = t;
        }
    }
});
