//! Every built-in script against hostile servers on 127.0.0.1: random bytes, endless
//! continuation lines, huge headers and bodies, absurd length prefixes, and silence. A script
//! may report nothing or something bounded; it may not fail (a runtime error, the memory or
//! instruction limits, oversized output). Tests send packets only to 127.0.0.0/8.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, ScriptArgs, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The service names the built-ins' port rules look for.
const SERVICES: &[&str] = &[
    "http",
    "smtp",
    "pop3",
    "imap",
    "redis",
    "memcache",
    "postgresql",
    "ftp",
    "mqtt",
    "docker",
    "rtsp",
    "mongodb",
    "pptp",
    "ssh",
    "ldap",
    "domain",
    "https",
];

/// Deterministic noise (an LCG), `n` bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// What each hostile server sends as soon as a client connects (then it reads a little and
/// closes).
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![("noise", noise(256 * 1024, 7)), ("silence", Vec::new())];
    // Endless continuation lines for the line protocols (SMTP, FTP), CAPA lists, IMAP.
    let mut lines = Vec::new();
    for i in 0..20_000 {
        lines.extend_from_slice(format!("220-{i} {}\r\n", "x".repeat(40)).as_bytes());
    }
    v.push(("continuations", lines));
    let mut ok_lines = b"+OK\r\n* OK hi\r\n".to_vec();
    for _ in 0..20_000 {
        ok_lines.extend_from_slice(b"* CAPABILITY AAAA BBBB CCCC DDDD EEEE FFFF GGGG\r\nSTAT a b\r\n");
    }
    v.push(("capabilities", ok_lines));
    // HTTP with huge and repeated headers and a robots-like body.
    let mut http = b"HTTP/1.1 200 OK\r\n".to_vec();
    http.extend_from_slice(format!("Server: {}\r\n", "S\x1b[31m".repeat(20_000)).as_bytes());
    http.extend_from_slice(format!("Allow: {}\r\n", "GET, PUT, X-Y, ".repeat(20_000)).as_bytes());
    http.extend_from_slice(format!("Access-Control-Allow-Origin: {}\r\n", "*".repeat(100_000)).as_bytes());
    for i in 0..2_000 {
        http.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(300)).as_bytes());
    }
    let mut body = Vec::new();
    for i in 0..3_000 {
        body.extend_from_slice(format!("Disallow: /{i}/{}\n", "p".repeat(300)).as_bytes());
    }
    http.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    http.extend_from_slice(&body);
    v.push(("http", http));
    // Redirects to the canary everywhere, with an enormous Location.
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://rustmap-redirect-check.example/{}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(60_000)
    );
    v.push(("redirect", redirect.into_bytes()));
    // Absurd length prefixes: RESP, MongoDB, PostgreSQL, MQTT, PPTP.
    v.push(("resp", b"$999999999999\r\nredis_version:1\r\n".to_vec()));
    let mut mongo = 0x7fff_ffffi32.to_le_bytes().to_vec();
    mongo.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x07, 0, 0]);
    mongo.extend_from_slice(&noise(4096, 3));
    v.push(("mongodb", mongo));
    let mut mongo_doc = Vec::new();
    let doc: Vec<u8> =
        [&[0xff, 0xff, 0xff, 0x7f][..], &[0x03, b'a', 0], &[0xff, 0xff, 0xff, 0x7f], &noise(64, 9)].concat();
    let msg_len = (16 + 5 + doc.len()) as i32;
    mongo_doc.extend_from_slice(&msg_len.to_le_bytes());
    mongo_doc.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0x07, 0, 0, 0, 0, 0, 0, 0]);
    mongo_doc.extend_from_slice(&doc);
    v.push(("bson", mongo_doc));
    v.push(("postgres", [b"N".as_slice(), b"R\xff\xff\xff\xff", &noise(1024, 5)].concat()));
    let mut mqtt = vec![0x20, 0x02, 0x00, 0x00];
    for _ in 0..1000 {
        mqtt.extend_from_slice(&[0x30, 0xff, 0xff, 0xff, 0x7f]);
        mqtt.extend_from_slice(&[0x31, 0x05, 0xff, 0xff, b'a', b'b', b'c']);
    }
    v.push(("mqtt", mqtt));
    let mut pptp = vec![0x00, 0x9c, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x02];
    pptp.extend_from_slice(&noise(146, 11));
    v.push(("pptp", pptp));
    // BER with absurd lengths (LDAP), then an LDAP message whose entry claims 2^31 bytes.
    let mut ldap = vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01];
    ldap.extend_from_slice(&[0x30, 0x0c, 0x02, 0x01, 0x01, 0x64, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x04, 0x00, 0x30]);
    ldap.extend_from_slice(&noise(2048, 13));
    v.push(("ldap", ldap));
    // DNS over TCP: a 65535-byte length prefix then a header claiming 65535 records, and a
    // compression pointer that points at itself.
    let mut dns = vec![0xff, 0xff, 0x12, 0x34, 0x84, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    dns.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x06, 0x00, 0x01]);
    dns.extend_from_slice(&noise(4096, 17));
    v.push(("dns", dns));
    v
}

/// A server that writes `payload` to each connection, reads for a moment, then closes.
async fn hostile_server(payload: Vec<u8>) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let payload = std::sync::Arc::new(payload);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let payload = payload.clone();
            tokio::spawn(async move {
                let _ = s.write_all(&payload).await;
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
                let _ = s.write_all(&payload[..payload.len().min(64)]).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtins_survive_hostile_servers() {
    let scripts = Catalog::builtin().unwrap().select("all").unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    // Every (payload, service) pair at once: each engine runs the scripts whose rule takes
    // the port.
    let mut tasks = tokio::task::JoinSet::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(24));
    for (name, payload) in payloads() {
        let port = hostile_server(payload).await;
        for service in SERVICES {
            let scripts = scripts.clone();
            let slots = slots.clone();
            tasks.spawn(async move {
                // A bounded number of engines at once: each script's 60 s limit then measures
                // its own work, not a queue behind hundreds of others on two cores.
                let _slot = slots.acquire_owned().await.unwrap();
                let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
                let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
                p.service = Some(ServiceInfo { name: (*service).into(), ..ServiceInfo::default() });
                h.ports.push(p);
                let ctx = Context {
                    targets: Targets::new([LOCAL]),
                    args: ScriptArgs::parse("mqtt-subscribe.wait=1,dns-zone-transfer.domain=lab.test").unwrap(),
                    ..Context::default()
                };
                let limits = Limits { timeout: Duration::from_secs(60), ..Limits::default() };
                let engine = Engine::new(scripts, ctx, limits, 32);
                (name, *service, engine.run_host(&h).await)
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        let (name, service, outcomes) = done.unwrap();
        for o in outcomes {
            runs += 1;
            match &o.result {
                Ok(Some(r)) if r.output.len() > 64 * 1024 => {
                    failures.push(format!("{name}/{service}: {} too long", o.id))
                }
                Ok(_) => {}
                // No Python on this machine: py-* scripts cannot run; that is not theirs.
                Err(e) if e.kind() == "no-interpreter" => {}
                Err(e) => failures.push(format!("{name}/{service}: {} failed: {e}", o.id)),
            }
        }
    }
    assert!(runs > 100, "only {runs} runs");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
