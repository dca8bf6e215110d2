//! A host's fingerprint: the tests derived from its [`Observations`], as a flat map from test
//! name to value, plus the figures the outputs print (distance, uptime, sequence classes).
//!
//! Test names are `group.field`; [`TESTS`] lists each with the kind of its value and its
//! default weight, and docs/os-detection.md says what each measures. A test that could not be
//! run (probe not sent, no answer to compare) is absent, and absent tests count neither for nor
//! against an entry. "No answer" to a probe that was sent is a value (`t5.reply = false`).

use crate::observe::{flags, Hint, Observations, TcpProbe, TcpReply};
use crate::sequence::{self, IpIdClass, IsnStats, TsClock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A test's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A yes/no test.
    Bool(bool),
    /// A number.
    Int(i64),
    /// A word or a layout.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s}"),
        }
    }
}

/// The kind of value a test has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`Value::Bool`].
    Bool,
    /// [`Value::Int`].
    Int,
    /// [`Value::Str`].
    Str,
}

impl Kind {
    /// Whether `v` is of this kind.
    pub fn admits(self, v: &Value) -> bool {
        matches!((self, v), (Kind::Bool, Value::Bool(_)) | (Kind::Int, Value::Int(_)) | (Kind::Str, Value::Str(_)))
    }
}

/// A test the fingerprint may hold: its name, kind and default weight.
#[derive(Debug, Clone, Copy)]
pub struct TestDef {
    /// `group.field`.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its weight when the database does not set one.
    pub weight: u32,
}

const fn t(name: &'static str, kind: Kind, weight: u32) -> TestDef {
    TestDef { name, kind, weight }
}

use Kind::{Bool as B, Int as I, Str as S};

/// Every test, with its default weight. Option layouts and the initial TTL weigh most: they are
/// what differs most between stacks and least between configurations of one stack.
pub const TESTS: &[TestDef] = &[
    t("ttl", I, 20),
    t("seq1.opts", S, 10),
    t("seq2.opts", S, 10),
    t("seq3.opts", S, 10),
    t("seq4.opts", S, 10),
    t("seq5.opts", S, 10),
    t("seq6.opts", S, 10),
    t("seq1.win", I, 5),
    t("seq2.win", I, 5),
    t("seq3.win", I, 5),
    t("seq4.win", I, 5),
    t("seq5.win", I, 5),
    t("seq6.win", I, 5),
    t("seq.df", B, 5),
    t("seq.mss", I, 2),
    t("seq.ws", I, 8),
    t("isn.gcd", I, 5),
    t("isn.rate", I, 5),
    t("isn.spread", I, 5),
    t("ipid.open", S, 8),
    t("ipid.closed", S, 8),
    t("ipid.icmp", S, 5),
    t("ipid.shared", B, 3),
    t("ts", S, 10),
    t("ts.hz", I, 10),
    t("ecn.reply", B, 3),
    t("ecn.ece", B, 8),
    t("ecn.cwr", B, 3),
    t("ecn.win", I, 3),
    t("ecn.opts", S, 5),
    t("t2.reply", B, 5),
    t("t2.flags", S, 5),
    t("t2.win", I, 3),
    t("t2.df", B, 2),
    t("t2.ack", S, 3),
    t("t2.seq", S, 3),
    t("t2.data", B, 2),
    t("t2.opts", S, 2),
    t("t3.reply", B, 5),
    t("t3.flags", S, 5),
    t("t3.win", I, 3),
    t("t3.df", B, 2),
    t("t3.ack", S, 3),
    t("t3.seq", S, 3),
    t("t3.data", B, 2),
    t("t3.opts", S, 2),
    t("t4.reply", B, 5),
    t("t4.flags", S, 5),
    t("t4.win", I, 3),
    t("t4.df", B, 2),
    t("t4.ack", S, 3),
    t("t4.seq", S, 3),
    t("t4.data", B, 2),
    t("t4.opts", S, 2),
    t("t5.reply", B, 5),
    t("t5.flags", S, 5),
    t("t5.win", I, 3),
    t("t5.df", B, 2),
    t("t5.ack", S, 3),
    t("t5.seq", S, 3),
    t("t5.data", B, 2),
    t("t5.opts", S, 2),
    t("t6.reply", B, 5),
    t("t6.flags", S, 5),
    t("t6.win", I, 3),
    t("t6.df", B, 2),
    t("t6.ack", S, 3),
    t("t6.seq", S, 3),
    t("t6.data", B, 2),
    t("t6.opts", S, 2),
    t("t7.reply", B, 5),
    t("t7.flags", S, 5),
    t("t7.win", I, 3),
    t("t7.df", B, 2),
    t("t7.ack", S, 3),
    t("t7.seq", S, 3),
    t("t7.data", B, 2),
    t("t7.opts", S, 2),
    t("u1.reply", B, 5),
    t("u1.df", B, 3),
    t("u1.iplen", I, 5),
    t("u1.code", I, 2),
    t("u1.quoted_len_ok", B, 2),
    t("u1.quoted_id_ok", B, 2),
    t("u1.quoted_csum_ok", B, 2),
    t("u1.quoted_data_ok", B, 2),
    t("u1.burst", I, 8),
    t("echo.reply", B, 3),
    t("echo.df", S, 5),
    t("echo.code", S, 4),
    t("icmp_ts.reply", B, 5),
    t("passive.ttl", I, 10),
    t("passive.win", I, 5),
    t("passive.opts", S, 10),
    t("passive.df", B, 3),
];

/// The definition of the test called `name`.
pub fn test_def(name: &str) -> Option<&'static TestDef> {
    TESTS.iter().find(|d| d.name == name)
}

/// The usual initial TTLs, in the order a received TTL is rounded up to them.
const INITIAL_TTLS: [u16; 4] = [32, 64, 128, 255];

/// The initial TTL a received TTL most likely started from: the nearest usual one at or above.
pub fn initial_ttl(ttl: u8) -> u8 {
    INITIAL_TTLS.iter().copied().find(|i| *i >= u16::from(ttl)).and_then(|i| u8::try_from(i).ok()).unwrap_or(255)
}

/// The most SYN-ACKs of the port scan looked at (the passive tests use the first; clock skew
/// uses their timestamps).
pub const MAX_PASSIVE: usize = 64;

/// A host's fingerprint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Test name → value.
    pub tests: BTreeMap<String, Value>,
    /// Hints from services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<Hint>,
    /// Hops to the host, from the TTL of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u8>,
    /// How its ISNs advance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isn: Option<IsnStats>,
    /// Its IP ID class (open port's answers, else closed port's, else ICMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipid: Option<IpIdClass>,
    /// Its timestamp clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<TsClock>,
    /// Its uptime in seconds, when the timestamp clock tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Its clock skew in ppm, when samples span long enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_ppm: Option<f64>,
}

/// The shortest span of timestamp samples a clock skew is computed over.
pub const SKEW_MIN_SPAN: Duration = Duration::from_secs(10);

impl Fingerprint {
    /// The fingerprint of these observations.
    pub fn from_observations(o: &Observations) -> Fingerprint {
        let mut fp = Fingerprint { hints: o.hints.clone(), ..Fingerprint::default() };
        let passive = &o.passive[..o.passive.len().min(MAX_PASSIVE)];

        // The TCP answers' TTL when there are any (some stacks start ICMP from another one),
        // else the ICMP answers'.
        let tcp = o.seq.iter().chain(o.ecn.iter()).chain(o.t.iter().flatten()).filter_map(|p| p.reply.as_ref());
        let icmp =
            o.u1.iter().flatten().map(|u| u.ttl).chain(o.echo.iter().filter_map(|e| e.reply.as_ref()).map(|r| r.ttl));
        if let Some(ttl) = tcp.map(|r| r.ttl).max().or_else(|| icmp.max()) {
            let init = initial_ttl(ttl);
            fp.set("ttl", Value::Int(i64::from(init)));
            fp.distance = Some(init - ttl + 1);
        }

        fp.seq_tests(&o.seq);
        fp.ipid_tests(o);
        fp.ts_tests(&o.seq, passive);

        if let Some(p) = &o.ecn {
            fp.set("ecn.reply", Value::Bool(p.reply.is_some()));
            if let Some(r) = &p.reply {
                fp.set("ecn.ece", Value::Bool(r.flags & flags::ECE != 0));
                fp.set("ecn.cwr", Value::Bool(r.flags & flags::CWR != 0));
                fp.set("ecn.win", Value::Int(i64::from(r.window)));
                fp.set("ecn.opts", Value::Str(r.option_layout()));
            }
        }
        for (i, p) in o.t.iter().enumerate() {
            if let Some(p) = p {
                fp.odd_probe_tests(i + 2, p);
            }
        }
        // The rate-limit burst, out of eight: only where U1 was answered (a port that answers
        // nothing says nothing of a limit).
        if matches!(o.u1, Some(Some(_))) && o.burst.sent > 0 {
            let answered = u32::from(o.burst.answered.min(o.burst.sent));
            fp.set("u1.burst", Value::Int(i64::from(answered * 8 / u32::from(o.burst.sent))));
        }
        if let Some(u) = &o.u1 {
            fp.set("u1.reply", Value::Bool(u.is_some()));
            if let Some(u) = u {
                fp.set("u1.df", Value::Bool(u.df));
                fp.set("u1.iplen", Value::Int(i64::from(u.ip_len)));
                fp.set("u1.code", Value::Int(i64::from(u.code)));
                fp.set("u1.quoted_len_ok", Value::Bool(u.quoted_len_ok));
                fp.set("u1.quoted_id_ok", Value::Bool(u.quoted_id_ok));
                fp.set("u1.quoted_csum_ok", Value::Bool(u.quoted_csum_ok));
                fp.set("u1.quoted_data_ok", Value::Bool(u.quoted_data_ok));
            }
        }
        if !o.echo.is_empty() {
            let answered: Vec<_> = o.echo.iter().filter_map(|e| e.reply.as_ref().map(|r| (e, r))).collect();
            fp.set("echo.reply", Value::Bool(answered.len() == o.echo.len()));
            if answered.len() == o.echo.len() {
                let df = if answered.iter().all(|(_, r)| !r.df) {
                    "none"
                } else if answered.iter().all(|(_, r)| r.df) {
                    "set"
                } else if answered.iter().all(|(e, r)| e.df == r.df) {
                    "echo"
                } else {
                    "other"
                };
                fp.set("echo.df", Value::Str(df.into()));
                let code = if answered.iter().all(|(_, r)| r.code == 0) {
                    "zero"
                } else if answered.iter().all(|(e, r)| e.code == r.code) {
                    "echo"
                } else {
                    "other"
                };
                fp.set("echo.code", Value::Str(code.into()));
            }
        }
        if let Some(answered) = o.icmp_ts {
            fp.set("icmp_ts.reply", Value::Bool(answered));
        }
        if let Some(r) = passive.iter().find(|r| r.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK) {
            fp.set("passive.ttl", Value::Int(i64::from(initial_ttl(r.ttl))));
            fp.set("passive.win", Value::Int(i64::from(r.window)));
            fp.set("passive.opts", Value::Str(r.option_layout()));
            if !r.v6 {
                fp.set("passive.df", Value::Bool(r.df));
            }
            if fp.distance.is_none() {
                fp.distance = Some(initial_ttl(r.ttl) - r.ttl + 1);
            }
        }
        fp
    }

    fn set(&mut self, name: &str, v: Value) {
        debug_assert!(test_def(name).is_some_and(|d| d.kind.admits(&v)), "{name} = {v:?}");
        self.tests.insert(name.to_string(), v);
    }

    /// The tests as one line of JSON: what an entry's `tests` object holds, so a fingerprint
    /// that matched nothing can be pasted into a database entry as it is.
    pub fn tests_json(&self) -> String {
        serde_json::to_string(&self.tests).unwrap_or_default()
    }

    /// The value of a test.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.tests.get(name)
    }

    fn seq_tests(&mut self, seq: &[TcpProbe]) {
        let synack = |r: &&TcpReply| r.flags & (flags::SYN | flags::ACK) == flags::SYN | flags::ACK;
        for (i, p) in seq.iter().take(6).enumerate() {
            if let Some(r) = p.reply.as_ref().filter(synack) {
                self.set(&format!("seq{}.opts", i + 1), Value::Str(r.option_layout()));
                self.set(&format!("seq{}.win", i + 1), Value::Int(i64::from(r.window)));
            }
        }
        let answers: Vec<(&TcpProbe, &TcpReply)> =
            seq.iter().filter_map(|p| p.reply.as_ref().filter(synack).map(|r| (p, r))).collect();
        if let Some((_, r)) = answers.first() {
            self.set("seq.df", Value::Bool(r.df));
            if let Some(m) = r.mss() {
                self.set("seq.mss", Value::Int(i64::from(m)));
            }
            // -1: the probe offered a window scale and the answer had none.
            self.set("seq.ws", Value::Int(r.window_scale().map_or(-1, i64::from)));
        }
        let isns: Vec<(Duration, u32)> = answers.iter().map(|(p, r)| (p.sent.at, r.seq)).collect();
        if let Some(st) = sequence::isn_stats(&isns) {
            self.set("isn.gcd", Value::Int(i64::from(st.gcd)));
            self.set("isn.rate", Value::Int(st.rate_log2()));
            self.set("isn.spread", Value::Int(st.spread_log2()));
            self.isn = Some(st);
        }
    }

    fn ipid_tests(&mut self, o: &Observations) {
        let open: Vec<(Duration, u16)> =
            o.seq.iter().filter_map(|p| p.reply.as_ref()).map(|r| (r.at, r.ip_id)).collect();
        // Resets from the closed port (T5-T7): the stack's answer without a socket.
        let closed: Vec<(Duration, u16)> = o.t[3..]
            .iter()
            .flatten()
            .filter_map(|p| p.reply.as_ref())
            .filter(|r| r.flags & flags::RST != 0)
            .map(|r| (r.at, r.ip_id))
            .collect();
        let ids = |v: &[(Duration, u16)]| v.iter().map(|x| x.1).collect::<Vec<u16>>();
        let c_open = sequence::ipid_class(&ids(&open));
        let c_closed = sequence::ipid_class(&ids(&closed));
        let icmp_at: Vec<(Duration, u16)> =
            o.echo.iter().filter_map(|e| e.reply.as_ref()).map(|r| (r.at, r.ip_id)).collect();
        let c_icmp = sequence::ipid_class(&ids(&icmp_at));
        for (name, c) in [("ipid.open", c_open), ("ipid.closed", c_closed), ("ipid.icmp", c_icmp)] {
            if let Some(c) = c {
                self.set(name, Value::Str(c.as_str().into()));
            }
        }
        // One counter for TCP and ICMP: the SYN-ACKs' and the echo replies' IDs, merged in the
        // order they arrived, still count up by small steps.
        if c_open == Some(IpIdClass::Incremental) && c_icmp == Some(IpIdClass::Incremental) {
            let mut all: Vec<(Duration, u16)> = open.iter().chain(icmp_at.iter()).copied().collect();
            all.sort_by_key(|x| x.0);
            let shared = sequence::ipid_class(&ids(&all)) == Some(IpIdClass::Incremental);
            self.set("ipid.shared", Value::Bool(shared));
        }
        self.ipid = c_open.or(c_closed).or(c_icmp);
    }

    fn ts_tests(&mut self, seq: &[TcpProbe], passive: &[TcpReply]) {
        let answers: Vec<&TcpReply> = seq.iter().filter_map(|p| p.reply.as_ref()).collect();
        if answers.is_empty() {
            return;
        }
        let samples: Vec<(Duration, u32)> = answers.iter().filter_map(|r| r.timestamp().map(|t| (r.at, t.0))).collect();
        if samples.is_empty() {
            self.set("ts", Value::Str("none".into()));
            return;
        }
        let Some(clock) = sequence::ts_clock(&samples) else { return };
        match clock {
            TsClock::Zero => self.set("ts", Value::Str("zero".into())),
            TsClock::Unrelated => self.set("ts", Value::Str("unrelated".into())),
            TsClock::Ticking { hz, .. } => {
                self.set("ts", Value::Str("ticking".into()));
                self.set("ts.hz", Value::Int(i64::from(hz)));
                self.uptime_s = sequence::uptime(&clock);
                // The port scan's SYN-ACKs came earlier: with them the samples span the scan.
                let mut all: Vec<(Duration, u32)> =
                    passive.iter().filter_map(|r| r.timestamp().map(|t| (r.at, t.0))).collect();
                all.extend(samples.iter().copied());
                all.sort_by_key(|s| s.0);
                self.skew_ppm = sequence::clock_skew_ppm(&all, SKEW_MIN_SPAN);
            }
        }
        self.ts = Some(clock);
    }

    fn odd_probe_tests(&mut self, n: usize, p: &TcpProbe) {
        let k = |f: &str| format!("t{n}.{f}");
        self.set(&k("reply"), Value::Bool(p.reply.is_some()));
        let Some(r) = &p.reply else { return };
        self.set(&k("flags"), Value::Str(r.flag_letters()));
        self.set(&k("win"), Value::Int(i64::from(r.window)));
        self.set(&k("df"), Value::Bool(r.df));
        let ack = relation(r.ack, p.sent.seq, "seq");
        let seq = relation(r.seq, p.sent.ack, "ack");
        self.set(&k("ack"), Value::Str(ack));
        self.set(&k("seq"), Value::Str(seq));
        self.set(&k("data"), Value::Bool(r.payload_len > 0));
        self.set(&k("opts"), Value::Str(r.option_layout()));
    }
}

/// How an answer's number relates to one of ours: `zero`, `<ours>`, `<ours>+1`, `other`.
fn relation(theirs: u32, ours: u32, name: &str) -> String {
    if theirs == 0 {
        "zero".into()
    } else if theirs == ours {
        name.into()
    } else if theirs == ours.wrapping_add(1) {
        format!("{name}+1")
    } else {
        "other".into()
    }
}

#[cfg(test)]
#[path = "fingerprint_tests.rs"]
mod tests;
