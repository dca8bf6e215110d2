//! Ethernet (with VLAN tag) and ARP: parse -> emit -> parse must agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::{arp, ethernet};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let r = ethernet::Repr::parse(&f).expect("repr");
        let mut out = vec![0u8; r.header_len()];
        r.emit(&mut out).expect("emit");
        let f2 = ethernet::Frame::new_checked(&out[..]).expect("re-parse");
        assert_eq!(ethernet::Repr::parse(&f2).expect("repr"), r);
        if let Ok(a) = arp::Packet::new_checked(f.payload()) {
            let r = arp::Repr::parse(&a).expect("repr");
            let mut out = [0u8; arp::PACKET_LEN];
            r.emit(&mut out).expect("emit");
            assert_eq!(arp::Repr::parse(&arp::Packet::new_checked(&out[..]).expect("re-parse")).expect("repr"), r);
        }
    }
    let _ = arp::Packet::new_checked(data);
});
