//! OS detection's inputs: an answer packet read by the OS stage's parser, then the fingerprint
//! derived from it (as every probe's answer, at hostile times) and ranked; or a database file;
//! or a capture `--os-entry` reads (a report or a printed fingerprint), merged into an entry.
//! Answer packets are also read as a SYN-ACK the port scan kept (the passive tests).
//! The first byte picks which. Nothing may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_engine::os::add_passive;
use rustmap_engine::os::packets::{parse, Answer, Ports};
use rustmap_model::PassiveSegment;
use rustmap_os::capture::{self, EntryInfo};
use rustmap_os::db::Class;
use rustmap_os::observe::{Burst, EchoProbe, Observations, TcpProbe, TcpSent, UnreachReply};
use rustmap_os::{rank, Database, Fingerprint};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn builtin() -> &'static Database {
    static DB: OnceLock<Database> = OnceLock::new();
    DB.get_or_init(|| Database::builtin().expect("the built-in database loads"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 3 == 3 {
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(caps) = capture::read(text, "fuzz") {
                let class = Class {
                    vendor: "V".into(),
                    family: "F".into(),
                    generation: None,
                    device_type: "specialized".into(),
                    cpe: Vec::new(),
                };
                let info = EntryInfo { id: "fuzz".into(), name: "Fuzz".into(), class, source: String::new() };
                if let Ok(e) = capture::entry(&caps, info) {
                    let db = Database::with_entries(vec![e], "made").expect("a made entry loads");
                    let _ = db.to_json();
                }
            }
        }
        return;
    }
    if mode & 1 == 1 {
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(db) = Database::from_json(text, "fuzz") {
                let again = Database::from_json(&db.to_json(), "again").expect("a loaded database round-trips");
                assert_eq!(again.entries(), db.entries());
                let _ = rank(&db, &Fingerprint::default(), 8);
            }
        }
        return;
    }
    // Ports the seeds' packets are addressed to (see fuzz/seeds/os_answers).
    let ports = Ports { tcp: std::array::from_fn(|i| 40_000 + i as u16), udp: 41_000, icmp_id: 0x7777 };
    let at = Duration::from_micros(u64::from(mode) * 997);
    // The same bytes also as a packet the port scan kept for the passive tests, 2 s before the
    // probes' clock starts.
    let mut o = Observations::default();
    let started = Instant::now();
    let kept = PassiveSegment::new(started.checked_sub(Duration::from_secs(2)).unwrap_or(started), rest);
    add_passive(&mut o, started, &[kept]);
    let answer = parse(&ports, rest, at);
    match answer {
        None => {}
        Some(Answer::Tcp { reply, .. }) => {
            for i in 0..6u64 {
                let mut r = reply.clone();
                r.at = at * i as u32;
                r.seq = r.seq.wrapping_mul(i as u32 + 1);
                o.seq.push(TcpProbe {
                    sent: TcpSent { at: Duration::from_millis(100 * i), seq: 1, ack: 2 },
                    reply: Some(r),
                });
            }
            o.ecn = Some(TcpProbe { sent: TcpSent::default(), reply: Some(reply.clone()) });
            o.t = std::array::from_fn(|_| Some(TcpProbe { sent: TcpSent::default(), reply: Some(reply.clone()) }));
            o.passive.push(reply);
        }
        Some(Answer::Echo { reply, .. }) => {
            o.echo = vec![
                EchoProbe { code: 9, df: true, reply: Some(reply.clone()) },
                EchoProbe { code: 0, df: false, reply: Some(reply) },
            ];
        }
        Some(Answer::IcmpTs { .. }) => o.icmp_ts = Some(true),
        Some(Answer::Unreach { reply, .. }) => o.u1 = Some(Some(reply)),
        Some(Answer::Burst { .. }) => {
            o.u1 = Some(Some(UnreachReply::default()));
            o.burst = Burst { sent: mode % 9, answered: mode / 9 % 10 };
        }
    }
    let fp = Fingerprint::from_observations(&o);
    let _ = fp.tests_json();
    let _ = rank(builtin(), &fp, 8);
});
