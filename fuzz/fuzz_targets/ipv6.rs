//! IPv6: parse -> emit -> parse must agree, including the extension-header walk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::ipv6;

fuzz_target!(|data: &[u8]| {
    let _ = ipv6::parse_quoted(data);
    if let Some((&nh, rest)) = data.split_first() {
        let _ = ipv6::walk_extension_headers(nh, rest);
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let walk = p.upper_layer();
        let r = ipv6::Repr::parse(&p).expect("repr of a checked packet");
        let mut out = vec![0u8; r.header_len() + r.payload_len];
        r.emit(&mut out).expect("emit");
        out[40..].copy_from_slice(p.payload());
        let p2 = ipv6::Packet::new_checked(&out[..]).expect("re-parse");
        assert_eq!(ipv6::Repr::parse(&p2).expect("repr"), r);
        assert_eq!(p2.upper_layer(), walk);
    }
});
