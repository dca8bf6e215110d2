//! TCP: options must iterate without error after the check; parse -> emit -> parse must agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::tcp;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    for o in tcp::OptionsIter::new(data) {
        let _ = o;
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        for o in p.option_iter() {
            o.expect("options were validated");
        }
        let r = tcp::Repr::parse(&p).expect("repr of a checked segment");
        for (s, d) in [
            (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ] {
            let _ = p.verify_checksum(s, d);
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, s, d).expect("emit");
            let p2 = tcp::Packet::new_checked(&out[..]).expect("re-parse");
            assert!(p2.verify_checksum(s, d));
            assert_eq!(tcp::Repr::parse(&p2).expect("repr"), r);
        }
    }
});
