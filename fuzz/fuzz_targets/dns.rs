//! DNS: any bytes as a DNS message (what a hostile name server answers: compression loops and
//! pointers past the end, 128 questions, truncated records) through hickory-proto, the parser
//! under RustMap's resolver, then every name and PTR target through `dns::clean_name` as the
//! reverse lookups use it. The same bytes as text drive `dns::parse_servers` (`--dns-servers`).
//! Names shown must be bounded and free of control characters.
#![no_main]
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use libfuzzer_sys::fuzz_target;
use rustmap::dns;

fn check(raw: &str) {
    if let Some(name) = dns::clean_name(raw) {
        assert!(name.chars().count() <= dns::MAX_NAME_LEN);
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::from_vec(data) {
        for q in msg.queries.iter() {
            check(&q.name().to_string());
        }
        for r in msg.answers.iter().chain(msg.authorities.iter()).chain(msg.additionals.iter()) {
            check(&r.name.to_string());
            if let RData::PTR(ptr) = &r.data {
                check(&ptr.0.to_string());
            }
        }
        // What parsed must encode again (hickory's own round trip).
        let _ = msg.to_vec();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
        if let Ok(servers) = dns::parse_servers(text) {
            assert!(!servers.is_empty());
            assert!(servers.iter().all(|s| s.port() != 0));
        }
    }
});
