//! Every built-in script against hostile servers on 127.0.0.1: random bytes, endless
//! continuation lines, huge headers and bodies, absurd length prefixes, and silence. A script
//! may report nothing or something bounded; it may not fail (a runtime error, the memory or
//! instruction limits, oversized output). Tests send packets only to 127.0.0.0/8.

mod common;
use common::noise;
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
    "mysql",
    "vnc",
    "telnet",
];

/// The services of the SMB host scripts (through `smbport`) and the RDP port scripts: their
/// own test, with SMB- and RDP-shaped payloads besides the others.
const SMB_RDP: &[&str] = &["microsoft-ds", "ms-wbt-server"];

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

/// A session-service frame (direct TCP) around `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// An SMB2 response header: `command`, `status`.
fn smb2_header(command: u16, status: u32) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&status.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&[0; 50]);
    h
}

/// An NTLMSSP CHALLENGE whose fields point far outside it, and target info with absurd AV
/// lengths and a flood of pairs.
fn hostile_challenge() -> Vec<u8> {
    let mut c = b"NTLMSSP\0".to_vec();
    c.extend_from_slice(&2u32.to_le_bytes());
    c.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); // target name
    c.extend_from_slice(&0xffff_ffffu32.to_le_bytes()); // every flag
    c.extend_from_slice(&[0x41; 16]); // challenge, reserved
    let info_off = 56u32;
    let mut info = Vec::new();
    for i in 0..5000u16 {
        info.extend_from_slice(&(1 + i % 9).to_le_bytes());
        info.extend_from_slice(&4u16.to_le_bytes());
        info.extend_from_slice(&[0x1b, 0, 0xd8, 0xd8]);
    }
    info.extend_from_slice(&[3, 0, 0xff, 0xff]); // a pair longer than what is left
    c.extend_from_slice(&(info.len().min(0xffff) as u16).to_le_bytes());
    c.extend_from_slice(&0xffffu16.to_le_bytes());
    c.extend_from_slice(&info_off.to_le_bytes());
    c.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff]); // version
    c.extend_from_slice(&info);
    c
}

/// SMB answers: an absurd frame length, an SMB2 NEGOTIATE response with a security buffer
/// pointing past its end and an absurd clock, followed by a SESSION_SETUP response carrying
/// the hostile NTLM challenge; SMB1 answers with byte counts past the end.
fn smb_payloads() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
    v.push(("smb-frame-length", [&[0u8, 0xff, 0xff, 0xff][..], &noise(4096, 13)].concat()));
    let mut neg = smb2_header(0, 0);
    neg.extend_from_slice(&65u16.to_le_bytes());
    neg.extend_from_slice(&0xffffu16.to_le_bytes()); // security mode
    neg.extend_from_slice(&0x0311u16.to_le_bytes());
    neg.extend_from_slice(&0xffffu16.to_le_bytes());
    neg.extend_from_slice(&[0x42; 32]); // guid, capabilities, max sizes
    neg.extend_from_slice(&[0xff; 16]); // system time, start time
    neg.extend_from_slice(&0xfff0u16.to_le_bytes());
    neg.extend_from_slice(&0xffffu16.to_le_bytes());
    neg.extend_from_slice(&[0xff; 4]);
    let mut setup = smb2_header(1, 0xc000_0016);
    let ch = [&[0x60, 0x82, 0xff, 0xff][..], &hostile_challenge()].concat();
    setup.extend_from_slice(&9u16.to_le_bytes());
    setup.extend_from_slice(&0u16.to_le_bytes());
    setup.extend_from_slice(&72u16.to_le_bytes());
    setup.extend_from_slice(&(ch.len().min(0xffff) as u16).to_le_bytes());
    setup.extend_from_slice(&ch);
    v.push(("smb2", [frame(&neg), frame(&setup)].concat()));
    // SMB1: a negotiate response (17 words) and a session setup response (255 words), both
    // claiming 65535 bytes of strings, then endless UTF-16 without a terminator.
    let mut n1 = b"\xffSMB\x72".to_vec();
    n1.extend_from_slice(&[0, 0, 0, 0, 0x98]);
    n1.extend_from_slice(&0xc001u16.to_le_bytes());
    n1.extend_from_slice(&[0; 20]);
    n1.push(17);
    n1.extend_from_slice(&[0, 0, 0x0f]);
    n1.extend_from_slice(&[0xff; 16]); // max mpx, vcs, buffer, raw size, session key
    n1.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]); // no extended security: names follow
    n1.extend_from_slice(&[0xff; 11]); // time, zone, challenge length 255
    n1.extend_from_slice(&0xffffu16.to_le_bytes());
    n1.extend_from_slice(&b"A\0".repeat(3000));
    let mut s1 = b"\xffSMB\x73".to_vec();
    s1.extend_from_slice(&[0, 0, 0, 0, 0x98]);
    s1.extend_from_slice(&0xc001u16.to_le_bytes());
    s1.extend_from_slice(&[0; 20]);
    s1.push(255);
    s1.extend_from_slice(&[0x41; 510]);
    s1.extend_from_slice(&0xffffu16.to_le_bytes());
    s1.extend_from_slice(&b"\x1b\0".repeat(3000));
    v.push(("smb1", [frame(&n1), frame(&s1)].concat()));
    v
}

/// RDP answers: a Connection Confirm selecting CredSSP followed by noise (no TLS), and one
/// selecting Standard RDP Security followed by an MCS Connect Response whose server data
/// blocks have absurd lengths.
fn rdp_payloads() -> Vec<(&'static str, Vec<u8>)> {
    let cc = |selected: u8| vec![3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, selected, 0, 0, 0];
    let hybrid = [cc(2), noise(2048, 17)].concat();
    let mut blocks = Vec::new();
    blocks.extend_from_slice(&[0x01, 0x0c, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00]);
    blocks.extend_from_slice(&[0x02, 0x0c, 0xff, 0xff, 0x02, 0, 0, 0, 0x07, 0, 0, 0]);
    for _ in 0..2000 {
        blocks.extend_from_slice(&[0x01, 0x0c, 0x04, 0x00]);
    }
    let mut mcs = vec![0x02, 0xf0, 0x80, 0x7f, 0x66, 0x82, 0xff, 0xff];
    mcs.extend_from_slice(&blocks);
    let len = (4 + mcs.len()) as u16;
    let tpkt = [&[3u8, 0][..], &len.to_be_bytes(), &mcs].concat();
    vec![("rdp-hybrid", hybrid), ("rdp-mcs", [cc(0), tpkt].concat())]
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
    survive(payloads(), SERVICES, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smb_and_rdp_scripts_survive_hostile_servers() {
    let all = [payloads(), smb_payloads(), rdp_payloads()].concat();
    survive(all, SMB_RDP, 40).await;
}

/// Engines running at once, shared by this file's tests (they run in parallel): each script's
/// 60 s limit then measures its own work on two cores, not a queue behind dozens of others.
static SLOTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(8)));

/// Runs every built-in whose rule takes the port against each payload under each service
/// name; fails on any script error or oversized output.
async fn survive(payloads: Vec<(&'static str, Vec<u8>)>, services: &'static [&'static str], min_runs: usize) {
    let scripts = Catalog::builtin().unwrap().select("all").unwrap();
    let mut failures = Vec::new();
    let mut runs = 0;
    // Every (payload, service) pair, at most 8 at once (SLOTS): each engine runs the scripts
    // whose rule takes the port.
    let mut tasks = tokio::task::JoinSet::new();
    let slots = SLOTS.clone();
    for (name, payload) in payloads {
        let port = hostile_server(payload).await;
        for service in services {
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
                // The SMB host scripts take the hostile port for SMB's (smbport).
                let args = if *service == "microsoft-ds" {
                    format!("mqtt-subscribe.wait=1,dns-zone-transfer.domain=lab.test,smbport={port}")
                } else {
                    "mqtt-subscribe.wait=1,dns-zone-transfer.domain=lab.test".to_string()
                };
                let ctx = Context {
                    targets: Targets::new([LOCAL]),
                    args: ScriptArgs::parse(&args).unwrap(),
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
    assert!(runs > min_runs, "only {runs} runs");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
