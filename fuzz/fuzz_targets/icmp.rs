//! ICMPv4 and ICMPv6 (and UDP): parse -> emit -> parse must agree; quotes must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::{icmpv4, icmpv6, udp};
use std::net::{IpAddr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = icmpv4::Packet::new_checked(data) {
        let _ = (p.quoted(), p.verify_checksum());
        let r = icmpv4::Repr::parse(&p).expect("repr");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).expect("emit");
        let p2 = icmpv4::Packet::new_checked(&out[..]).expect("re-parse");
        assert!(p2.verify_checksum());
        assert_eq!(icmpv4::Repr::parse(&p2).expect("repr"), r);
    }
    let (s, d) = (Ipv6Addr::LOCALHOST, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    if let Ok(p) = icmpv6::Packet::new_checked(data) {
        let _ = (p.quoted(), p.target_addr(), p.lladdr_option(1), p.lladdr_option(2));
        let r = icmpv6::Repr::parse(&p).expect("repr");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, s, d).expect("emit");
        let p2 = icmpv6::Packet::new_checked(&out[..]).expect("re-parse");
        assert!(p2.verify_checksum(s, d));
        assert_eq!(icmpv6::Repr::parse(&p2).expect("repr"), r);
    }
    if let Ok(p) = udp::Packet::new_checked(data) {
        let r = udp::Repr::parse(&p).expect("repr");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out, IpAddr::V6(s), IpAddr::V6(d)).expect("emit");
        let p2 = udp::Packet::new_checked(&out[..]).expect("re-parse");
        assert!(p2.verify_checksum(IpAddr::V6(s), IpAddr::V6(d)));
        assert_eq!(udp::Repr::parse(&p2).expect("repr"), r);
    }
});
