//! SCTP: the chunk walk is bounded; parse -> emit -> parse of the first chunk must agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_wire::sctp;

fuzz_target!(|data: &[u8]| {
    assert!(sctp::ChunkIter::new(data).count() <= sctp::MAX_CHUNKS + 1);
    if let Ok(p) = sctp::Packet::new_checked(data) {
        let _ = p.verify_checksum();
        for c in p.chunks() {
            c.expect("chunks were validated");
        }
        if let Ok(r) = sctp::Repr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out).expect("emit");
            let p2 = sctp::Packet::new_checked(&out[..]).expect("re-parse");
            assert!(p2.verify_checksum());
            assert_eq!(sctp::Repr::parse(&p2).expect("repr"), r);
        }
    }
});
