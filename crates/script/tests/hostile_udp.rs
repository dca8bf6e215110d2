//! The UDP built-ins (SNMP, NTP, SIP, NetBIOS) against hostile UDP servers on 127.0.0.1:
//! noise, empty datagrams, absurd BER lengths, answers that copy the request's id around
//! garbage, SNMP walks that never advance, floods of provisional SIP answers. A script may
//! report nothing or something bounded; it may not fail or run long. Tests send packets only
//! to 127.0.0.0/8.

mod common;
use common::noise;
use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, ScriptArgs, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The hostile answers to one request, by mode.
fn answers(mode: &str, req: &[u8]) -> Vec<Vec<u8>> {
    let id = req.get(..2).unwrap_or(&[0, 0]).to_vec();
    match mode {
        "noise" => vec![noise(1400, req.len() as u32)],
        "empty" => vec![Vec::new(), Vec::new()],
        // The request with its PDU tag turned into a response: an SNMP answer whose varbind
        // is the OID asked for (a walk that never advances), NULL values.
        "echo" => vec![req.iter().map(|&b| if b == 0xa0 || b == 0xa1 { 0xa2 } else { b }).collect()],
        "ber-bomb" => {
            let mut v = vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x84, 0xff, 0xff, 0xff, 0xff];
            v.extend(noise(64, 3));
            vec![v]
        }
        // The request's first two bytes (a NetBIOS/DNS transaction id) then a node status
        // answer claiming 255 names in a few bytes.
        "nbstat-overflow" => {
            let mut v = id;
            v.extend([0x84, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x20]);
            v.extend([b'C'; 32]);
            v.extend([0, 0, 0x21, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, b'A', b'B']);
            vec![v]
        }
        // A DNS answer with the request's id: the question's name is a pointer to itself, and
        // every count is 65535.
        "dns-loop" => {
            let mut v = id;
            v.extend([0x81, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x0c, 0, 12, 0, 1]);
            v.extend(noise(512, 21));
            vec![v]
        }
        // The request sent back with the answer flag and an answer count of 3 over its own
        // bytes (records that run past the end).
        "dns-echo" => {
            let mut v = req.to_vec();
            if v.len() > 7 {
                v[2] |= 0x80;
                v[7] = 3;
            }
            vec![v]
        }
        // ntpd private mode answers claiming 4095 items of 4095 bytes, the "more" bit always
        // set, sent 200 times.
        "monlist-flood" => (0..200u32)
            .map(|i| {
                let mut v = vec![0xd7, (i % 128) as u8, 3, 42, 0x0f, 0xff, 0x0f, 0xff];
                v.extend(noise(72, i));
                v
            })
            .collect(),
        "sip-provisional" => {
            (0..200).map(|i| format!("SIP/2.0 100 Trying {i}\r\nVia: x\r\n\r\n").into_bytes()).collect()
        }
        "sip-huge" => {
            let mut v = b"SIP/2.0 200 OK\r\n".to_vec();
            for i in 0..3000 {
                v.extend(format!("Allow: M{i}\x1b[31m\r\n").as_bytes());
            }
            v.truncate(65_000);
            vec![v]
        }
        // An NTP-sized answer of noise with the mode bits of a server answer.
        "ntp-noise" => {
            let mut v = noise(48, 5);
            v[0] = 0x24;
            vec![v]
        }
        _ => unreachable!(),
    }
}

const MODES: &[&str] = &[
    "noise",
    "empty",
    "echo",
    "ber-bomb",
    "nbstat-overflow",
    "dns-loop",
    "dns-echo",
    "sip-provisional",
    "sip-huge",
    "ntp-noise",
    "monlist-flood",
];

/// A UDP server on `port` (0: any) answering the n-th datagram by `modes[n % len]`.
async fn hostile_udp(modes: &'static [&'static str], port: u16) -> std::io::Result<u16> {
    let s = UdpSocket::bind((LOCAL, port)).await?;
    let port = s.local_addr()?.port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut count = 0usize;
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let mode = modes[count % modes.len()];
            count += 1;
            for a in answers(mode, &buf[..n]) {
                let _ = s.send_to(&a, peer).await;
            }
        }
    });
    Ok(port)
}

async fn run(port: u16, service: &str, scripts: Vec<rustmap_script::Script>) -> Vec<rustmap_script::Outcome> {
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Udp, port, PortState::OpenFiltered, Reason::NoResponse, 0);
    p.service = Some(ServiceInfo { name: service.into(), ..ServiceInfo::default() });
    h.ports.push(p);
    let ctx = Context {
        targets: Targets::new([LOCAL]),
        args: ScriptArgs::parse("sip-enum-users.users={a,b,c},snmp-sysdescr.timeout=500,snmp-interfaces.timeout=500,snmp-info.timeout=500,ntp-info.timeout=500,sip-methods.timeout=500,sip-enum-users.timeout=500,nbstat.timeout=500,dns-nsid.timeout=500,dns-recursion.timeout=500,dns-service-discovery.timeout=500,dns-service-discovery.domain=lab.test,ntp-monlist.timeout=500").unwrap(),
        ..Context::default()
    };
    let limits = Limits { timeout: Duration::from_secs(60), ..Limits::default() };
    Engine::new(scripts, ctx, limits, 32).run_host(&h).await
}

fn check(label: &str, outcomes: &[rustmap_script::Outcome], failures: &mut Vec<String>) -> usize {
    for o in outcomes {
        match &o.result {
            Ok(Some(r)) if r.output.len() > 64 * 1024 => failures.push(format!("{label}: {} too long", o.id)),
            Ok(_) => {}
            Err(e) => failures.push(format!("{label}: {} failed: {e}", o.id)),
        }
    }
    outcomes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_builtins_survive_hostile_servers() {
    let mut catalog = Catalog::builtin().unwrap();
    let scripts = catalog
        .select("snmp-*,ntp-info,ntp-monlist,sip-methods,sip-enum-users,dns-nsid,dns-recursion,dns-service-discovery")
        .unwrap();
    assert_eq!(scripts.len(), 10);
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut tasks = tokio::task::JoinSet::new();
    for mode in MODES {
        let port = hostile_udp(std::slice::from_ref(mode), 0).await.unwrap();
        for service in ["snmp", "ntp", "sip", "domain"] {
            let scripts = scripts.clone();
            tasks.spawn(async move { (*mode, service, run(port, service, scripts).await) });
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (mode, service, outcomes) = done.unwrap();
        runs += check(&format!("{mode}/{service}"), &outcomes, &mut failures);
    }
    assert!(runs >= MODES.len() * 4, "only {runs} runs");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    // Timeouts of 500 ms, at most a few tries each, all at once: well under the limits.
    assert!(start.elapsed() < Duration::from_secs(45), "took {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nbstat_survives_hostile_node_status_answers() {
    // nbstat always asks port 137, which only root may bind.
    let nbstat = Catalog::builtin().unwrap().select("nbstat").unwrap();
    const NB_MODES: &[&str] = &["nbstat-overflow", "noise", "empty", "echo"];
    let port = match hostile_udp(NB_MODES, 137).await {
        Ok(p) => p,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIP: cannot bind 127.0.0.1:137 ({e}); needs root");
            return;
        }
        Err(e) => panic!("bind 127.0.0.1:137 under CI: {e}"),
    };
    let mut failures = Vec::new();
    // One run per mode (the server takes them in turn, one per request).
    for mode in NB_MODES {
        let outcomes = run(port, "netbios-ns", nbstat.clone()).await;
        assert_eq!(outcomes.len(), 1, "nbstat's hostrule did not take 137/udp");
        check(mode, &outcomes, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
