//! The fuzz target's seeds (`fuzz/seeds/distrib_messages`) are real messages: each decodes as
//! what it stands for, so the fuzzer starts from inputs that reach deep into the aggregator.

use rustmap_distrib::merge::Aggregate;
use rustmap_distrib::proto::{self, Manifest, ResultMsg, ShardMsg};
use std::path::PathBuf;

fn seed(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/distrib_messages").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_fuzz_seeds_are_real_messages() {
    let shard: ShardMsg = proto::decode_versioned("shard", &seed("shard.json")).unwrap();
    assert_eq!((shard.index, shard.group), (3, 1));
    rustmap::shard::validate_for_cluster(&shard.config).unwrap();
    let m: Manifest = proto::decode_versioned("manifest", &seed("manifest.json")).unwrap();
    assert_eq!(m.shards, 256);
    assert_eq!(proto::max_deliveries_advisory(&seed("advisory.json")), Some((42, 5)));
    let subject = String::from_utf8(seed("subject.txt")).unwrap();
    assert_eq!(proto::shard_of_subject(&subject, "01M98BBG5B3TSP56TJ41HRQMAZ"), Some(17));
    let lines = seed("results.jsonl");
    let records: Vec<ResultMsg> =
        lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| proto::decode("result", l).unwrap()).collect();
    assert_eq!(records.len(), 6);
    // Three port groups: the first host is whole after groups 0 and 1 only with its third.
    let mut agg = Aggregate::new(4, 3);
    let mut whole = 0;
    for r in records {
        if let ResultMsg::Host { group, host, .. } = r {
            whole += usize::from(agg.host(group, *host).is_some());
        }
    }
    assert_eq!(whole, 0);
    assert_eq!(agg.flush().len(), 2);
}
