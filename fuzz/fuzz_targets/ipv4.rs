//! IPv4: parse -> emit -> parse must agree; the lenient quoted parser must not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::ipv4;

fuzz_target!(|data: &[u8]| {
    let _ = ipv4::parse_quoted(data);
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (p.options(), p.payload(), p.verify_checksum());
        let r = ipv4::Repr::parse(&p).expect("repr of a checked packet");
        let mut out = vec![0u8; r.header_len() + r.payload_len];
        r.emit(&mut out).expect("emit");
        out[20..].copy_from_slice(p.payload());
        let p2 = ipv4::Packet::new_checked(&out[..]).expect("re-parse");
        assert!(p2.verify_checksum());
        assert_eq!(ipv4::Repr::parse(&p2).expect("repr"), r);
    }
});
