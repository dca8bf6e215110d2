//! Port expressions (`-p`, `--exclude-ports`: lists, ranges, `-`, `T:`/`U:`/`S:`, service names
//! and globs) against the built-in table, and the `ports.tsv` table format itself. Any text
//! parses or fails with a typed error; what parses holds sorted, unique, ports.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_model::Protocol;
use rustmap_targets::ports::{PortList, PortTable};

const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let table = PortTable::builtin();
    for protos in [&ALL[..], &ALL[..1]] {
        if let Ok(list) = PortList::parse(text, protos, table) {
            for p in ALL {
                let ports = list.get(p);
                assert!(ports.windows(2).all(|w| w[0] < w[1]), "{text:?}: not sorted and unique");
            }
            let mut rest = list.clone();
            rest.remove(&list);
            assert_eq!(rest.total(), 0);
        }
    }
    if let Ok(t) = PortTable::parse("fuzz.tsv", text) {
        for p in ALL {
            let _ = (t.top(p, 10), t.ports_named(p, "http*"));
        }
    }
});
