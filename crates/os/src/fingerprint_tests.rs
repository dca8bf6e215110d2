//! Fingerprints of recorded answers: a Linux host (kernel 6.18, as tcpdump showed its answers on
//! loopback) and an lwIP-like stack, then their ranks in the built-in database.

use super::*;
use crate::db::Database;
use crate::observe::{EchoProbe, EchoReply, TcpOpt, TcpSent, UnreachReply};
use crate::score::rank;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn linux_synack(i: u64, isn: u32, tsval: u32) -> TcpProbe {
    TcpProbe {
        sent: TcpSent { at: ms(100 * i), seq: 1000 + i as u32, ack: 0 },
        reply: Some(TcpReply {
            at: ms(100 * i + 1),
            ttl: 63,
            df: true,
            ip_id: 0,
            flags: flags::SYN | flags::ACK,
            window: 65160,
            seq: isn,
            ack: 1001 + i as u32,
            options: linux_layout(i, tsval),
            ..TcpReply::default()
        }),
    }
}

/// Linux's answer layout to each of the six SYNs (the third offers no SACK, the sixth no window
/// scale; Linux always sends its MSS).
fn linux_layout(i: u64, tsval: u32) -> Vec<TcpOpt> {
    let ts = TcpOpt::Timestamp { val: tsval, ecr: 1 };
    match i {
        2 => vec![TcpOpt::Mss(1460), TcpOpt::Nop, TcpOpt::Nop, ts, TcpOpt::Nop, TcpOpt::WindowScale(7)],
        5 => vec![TcpOpt::Mss(1460), TcpOpt::SackPermitted, ts],
        _ => vec![TcpOpt::Mss(1460), TcpOpt::SackPermitted, ts, TcpOpt::Nop, TcpOpt::WindowScale(7)],
    }
}

fn linux(ts_offsets: bool) -> Observations {
    let isns = [0x8f1e_2a01u32, 0x1c44_9e3b, 0xe0a1_5570, 0x4b3c_0d12, 0xa5f0_7c9e, 0x2d88_e4c1];
    let up_ms = 5 * 86_400 * 1000u32;
    let offsets = [0x3a00_0000u32, 0x9100_0000, 0x0200_0000, 0xc700_0000, 0x5500_0000, 0xe100_0000];
    let seq = (0..6)
        .map(|i| {
            let ts = up_ms + 100 * i as u32 + if ts_offsets { offsets[i] } else { 0 };
            linux_synack(i as u64, isns[i], ts)
        })
        .collect();
    let rst = |n: u64, seq: u32, ack: u32| TcpProbe {
        sent: TcpSent { at: ms(700 + n), seq, ack },
        reply: Some(TcpReply {
            at: ms(701 + n),
            ttl: 63,
            df: true,
            flags: flags::RST | flags::ACK,
            seq: 0,
            ack: seq.wrapping_add(1),
            ..TcpReply::default()
        }),
    };
    let ack_rst = |seq: u32, ack: u32| TcpProbe {
        sent: TcpSent { at: ms(750), seq, ack },
        reply: Some(TcpReply { at: ms(751), ttl: 63, df: true, flags: flags::RST, seq: ack, ..TcpReply::default() }),
    };
    Observations {
        seq,
        ecn: Some(TcpProbe {
            sent: TcpSent::default(),
            reply: Some(TcpReply {
                ttl: 63,
                df: true,
                flags: flags::SYN | flags::ACK | flags::ECE,
                window: 64240,
                options: vec![
                    TcpOpt::Mss(1460),
                    TcpOpt::Nop,
                    TcpOpt::Nop,
                    TcpOpt::SackPermitted,
                    TcpOpt::Nop,
                    TcpOpt::WindowScale(7),
                ],
                ..TcpReply::default()
            }),
        }),
        // T2, T3 dropped; T4 and T6 (ACK) reset with our ACK number as sequence number.
        t: [
            Some(TcpProbe { sent: TcpSent::default(), reply: None }),
            Some(TcpProbe { sent: TcpSent::default(), reply: None }),
            Some(ack_rst(3000, 77)),
            Some(rst(0, 5000, 0)),
            Some(ack_rst(6000, 99)),
            Some(rst(2, 7000, 0)),
        ],
        u1: Some(Some(UnreachReply {
            ttl: 63,
            df: false,
            ip_id: 0x1234,
            code: 3,
            ip_len: 356,
            quoted_len_ok: true,
            quoted_id_ok: true,
            quoted_csum_ok: true,
            quoted_data_ok: true,
        })),
        echo: vec![
            // Linux echoes the request's code.
            EchoProbe {
                code: 9,
                df: true,
                reply: Some(EchoReply { at: ms(260), ttl: 63, df: false, ip_id: 0x2001, code: 9 }),
            },
            EchoProbe {
                code: 0,
                df: false,
                reply: Some(EchoReply { at: ms(320), ttl: 63, df: false, ip_id: 0x2002, code: 0 }),
            },
        ],
        icmp_ts: Some(true),
        ..Observations::default()
    }
}

#[test]
fn linux_tests_are_derived() {
    let fp = Fingerprint::from_observations(&linux(true));
    let s = |v: &str| Some(Value::Str(v.into()));
    assert_eq!(fp.get("ttl"), Some(&Value::Int(64)));
    assert_eq!(fp.distance, Some(2));
    assert_eq!(fp.get("seq1.opts").cloned(), s("mss,sack,ts,nop,ws"));
    assert_eq!(fp.get("seq.ws"), Some(&Value::Int(7)));
    assert_eq!(fp.get("ipid.open").cloned(), s("zero"));
    assert_eq!(fp.get("ipid.closed").cloned(), s("zero"));
    assert_eq!(fp.get("ipid.icmp").cloned(), s("incremental"));
    assert_eq!(fp.get("ts").cloned(), s("unrelated"));
    assert_eq!(fp.uptime_s, None, "per-connection offsets: no uptime");
    assert_eq!(fp.get("t5.flags").cloned(), s("AR"));
    assert_eq!((fp.get("t5.ack").cloned(), fp.get("t5.seq").cloned()), (s("seq+1"), s("zero")));
    assert_eq!(fp.get("t2.reply"), Some(&Value::Bool(false)), "T2 was sent, not answered");
    assert_eq!(fp.get("t6.seq").cloned(), s("ack"));
    assert_eq!(fp.get("ecn.ece"), Some(&Value::Bool(true)));
    assert_eq!(fp.get("echo.df").cloned(), s("none"));
    assert_eq!(fp.get("echo.code").cloned(), s("echo"));
    assert_eq!(fp.get("u1.iplen"), Some(&Value::Int(356)));
    assert!(matches!(fp.get("isn.spread"), Some(Value::Int(v)) if *v >= 20));
    // Every test set is a known one of the right kind.
    for (k, v) in &fp.tests {
        assert!(test_def(k).is_some_and(|d| d.kind.admits(v)), "{k} = {v:?}");
    }
}

#[test]
fn linux_without_timestamp_offsets_gives_uptime() {
    let fp = Fingerprint::from_observations(&linux(false));
    assert_eq!(fp.get("ts"), Some(&Value::Str("ticking".into())));
    assert_eq!(fp.get("ts.hz"), Some(&Value::Int(1000)));
    let up = fp.uptime_s.unwrap();
    assert!((up as i64 - 5 * 86_400).abs() <= 1, "{up}");
    assert_eq!(fp.skew_ppm, None, "0.5 s of samples are too few for a skew");
}

#[test]
fn linux_ranks_first_in_the_builtin_database() {
    let db = Database::builtin().unwrap();
    for offsets in [true, false] {
        let fp = Fingerprint::from_observations(&linux(offsets));
        let r = rank(&db, &fp, 3);
        assert_eq!(
            r[0].entry.id,
            "linux-4.10-6",
            "{:?}",
            r.iter().map(|m| (&m.entry.id, m.accuracy)).collect::<Vec<_>>()
        );
        assert!(r[0].accuracy >= 85, "{}", r[0].accuracy);
        assert!(r[0].mismatched.is_empty(), "{:?}", r[0].mismatched);
        assert!(r.get(1).is_none_or(|m| m.accuracy + 20 <= r[0].accuracy));
    }
}

#[test]
fn an_lwip_like_stack_is_not_linux() {
    // Only MSS, TTL 255, ISNs from a counter.
    let seq = (0..6)
        .map(|i| TcpProbe {
            sent: TcpSent { at: ms(100 * i), seq: 1, ack: 0 },
            reply: Some(TcpReply {
                at: ms(100 * i + 1),
                ttl: 255,
                ip_id: 10 + i as u16,
                flags: flags::SYN | flags::ACK,
                window: 2144,
                seq: 6510 + 1000 * i as u32,
                options: vec![TcpOpt::Mss(536)],
                ..TcpReply::default()
            }),
        })
        .collect();
    let o = Observations { seq, ..Observations::default() };
    let fp = Fingerprint::from_observations(&o);
    assert_eq!(fp.get("ts"), Some(&Value::Str("none".into())));
    assert_eq!(fp.get("ipid.open"), Some(&Value::Str("incremental".into())));
    assert_eq!(fp.get("seq.ws"), Some(&Value::Int(-1)));
    assert_eq!(fp.distance, Some(1));
    let db = Database::builtin().unwrap();
    let r = rank(&db, &fp, 3);
    assert_eq!(r[0].entry.id, "lwip-2", "{:?}", r.iter().map(|m| (&m.entry.id, m.accuracy)).collect::<Vec<_>>());
}

#[test]
fn passive_evidence_alone() {
    let mut o = Observations::default();
    o.passive.push(TcpReply {
        ttl: 120,
        df: true,
        flags: flags::SYN | flags::ACK,
        window: 64240,
        options: vec![TcpOpt::Mss(1460)],
        ..TcpReply::default()
    });
    let fp = Fingerprint::from_observations(&o);
    assert_eq!(fp.get("passive.ttl"), Some(&Value::Int(128)));
    assert_eq!(fp.distance, Some(9));
    assert_eq!(fp.get("ttl"), None);
    let db = Database::builtin().unwrap();
    assert_eq!(rank(&db, &fp, 1)[0].entry.id, "windows-10-11");
    // Over IPv6 there is no DF bit: that test is left out, the others stay.
    o.passive[0].v6 = true;
    let fp6 = Fingerprint::from_observations(&o);
    assert_eq!(fp6.get("passive.df"), None);
    assert_eq!(fp.get("passive.df"), Some(&Value::Bool(true)));
    assert_eq!(fp6.get("passive.ttl"), Some(&Value::Int(128)));
}

#[test]
fn nothing_observed_is_an_empty_fingerprint() {
    let fp = Fingerprint::from_observations(&Observations::default());
    assert!(fp.tests.is_empty());
    assert_eq!((fp.distance, fp.uptime_s, fp.ipid), (None, None, None));
    let db = Database::builtin().unwrap();
    assert!(rank(&db, &fp, 5).is_empty());
}

#[test]
fn captured_fingerprint_becomes_an_entry_that_matches_it() {
    let fp = Fingerprint::from_observations(&linux(false));
    let class = crate::db::Class {
        vendor: "Linux".into(),
        family: "Linux".into(),
        generation: Some("6.X".into()),
        device_type: "general purpose".into(),
        cpe: vec!["cpe:/o:linux:linux_kernel:6".into()],
    };
    let e = crate::db::Entry::from_fingerprint(&fp, "lab-h1", "Linux lab host", vec![class], "lab capture");
    let text =
        format!(r#"{{"format":"rustmap-os-db","version":1,"entries":[{}]}}"#, serde_json::to_string(&e).unwrap());
    let db = Database::from_json(&text, "captured").unwrap();
    let r = rank(&db, &fp, 1);
    assert_eq!(r[0].accuracy, 100);
}

#[test]
fn one_counter_for_tcp_and_icmp_is_seen_in_arrival_order() {
    // SYN-ACKs every 100 ms and the echoes between them, all from one counter.
    let seq: Vec<TcpProbe> = (0..6u16)
        .map(|i| TcpProbe {
            sent: TcpSent { at: ms(100 * u64::from(i)), ..TcpSent::default() },
            reply: Some(TcpReply {
                at: ms(100 * u64::from(i) + 1),
                ttl: 64,
                ip_id: [1000, 1001, 1002, 1004, 1006, 1007][usize::from(i)],
                flags: flags::SYN | flags::ACK,
                seq: 7_000 * u32::from(i),
                ..TcpReply::default()
            }),
        })
        .collect();
    let echo = |at: u64, id: u16| EchoProbe {
        code: 0,
        df: false,
        reply: Some(EchoReply { at: ms(at), ttl: 64, df: false, ip_id: id, code: 0 }),
    };
    let o = Observations { seq, echo: vec![echo(261, 1003), echo(321, 1005)], ..Observations::default() };
    let fp = Fingerprint::from_observations(&o);
    assert_eq!(fp.get("ipid.shared"), Some(&Value::Bool(true)));
    // Counters of their own: the echoes' IDs are far from the SYN-ACKs'.
    let mut o2 = o.clone();
    o2.echo = vec![echo(261, 30_003), echo(321, 30_004)];
    assert_eq!(Fingerprint::from_observations(&o2).get("ipid.shared"), Some(&Value::Bool(false)));
}
