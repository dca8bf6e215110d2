//! What distributed agents and schedulers read from NATS (`rustmap-distrib`): shards, result
//! records, manifests, max-deliveries advisories and work-queue subjects. Any bytes give a
//! message or an error, never a panic; host records fed to the aggregator never give a host
//! twice.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_distrib::merge::{Aggregate, ShardState};
use rustmap_distrib::proto::{self, Manifest, ResultMsg, ShardMsg};

fuzz_target!(|data: &[u8]| {
    let _ = proto::decode_versioned::<ShardMsg>("shard", data);
    let _ = proto::decode_versioned::<Manifest>("manifest", data);
    let _ = proto::max_deliveries_advisory(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = proto::shard_of_subject(s, "01M98BBG5B3TSP56TJ41HRQMAZ");
        let _ = proto::valid_scan_id(s);
    }
    // The input as a stream of result records, one per line, into a 4-shard, 3-group scan.
    let mut agg = Aggregate::new(4, 3);
    let mut seen = std::collections::HashSet::new();
    for line in data.split(|b| *b == b'\n') {
        let Ok(m) = proto::decode::<ResultMsg>("result", line) else { continue };
        let _ = m.message_id("scan");
        match m {
            ResultMsg::Host { group, host, .. } => {
                if let Some(h) = agg.host(group, *host) {
                    assert!(seen.insert(h.addr), "{} twice", h.addr);
                }
            }
            ResultMsg::Done { shard, .. } => {
                agg.end_shard(shard, ShardState::Done);
            }
            ResultMsg::Failed { shard, .. } => {
                agg.end_shard(shard, ShardState::Failed);
            }
            ResultMsg::Warning { message, .. } => {
                agg.new_warning(&message);
            }
        }
    }
    for h in agg.flush() {
        assert!(seen.insert(h.addr), "{} twice", h.addr);
    }
});
