//! ssh-hostkey against a fake SSH server on 127.0.0.1 that answers the key exchange with a
//! fixed ED25519 or RSA host key (RFC 4253 framing, unencrypted as the exchange is then).

use md5::Digest;
use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason};
use rustmap_script::{Catalog, Context, Engine, Limits, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn string(b: &[u8]) -> Vec<u8> {
    [&(b.len() as u32).to_be_bytes()[..], b].concat()
}

fn packet(payload: &[u8]) -> Vec<u8> {
    let mut padding = 8 - (payload.len() + 5) % 8;
    if padding < 4 {
        padding += 8;
    }
    let len = (payload.len() + padding + 1) as u32;
    [&len.to_be_bytes()[..], &[padding as u8], payload, &vec![0u8; padding]].concat()
}

fn ed25519_blob() -> Vec<u8> {
    [string(b"ssh-ed25519"), string(&[0x11; 32])].concat()
}

fn rsa_blob() -> Vec<u8> {
    let mut n = vec![0x00, 0xC3];
    n.extend(vec![0x5A; 255]);
    [string(b"ssh-rsa"), string(&[0x01, 0x00, 0x01]), string(&n)].concat()
}

async fn fake_sshd() -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"a banner line first\r\nSSH-2.0-FakeSSH_1.0\r\n").await;
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                // Wait for the client's KEXINIT and KEX_ECDH_INIT (the latter ends in 32 key bytes).
                while got.len() < 300 && tokio::time::Instant::now() < deadline {
                    match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                }
                let has = |needle: &[u8]| got.windows(needle.len()).any(|w| w == needle);
                let blob = if has(b"ssh-ed25519") {
                    ed25519_blob()
                } else if has(b"ssh-rsa") {
                    rsa_blob()
                } else {
                    return; // no key of the type asked for
                };
                let mut kexinit = vec![20u8];
                kexinit.extend([0u8; 16]);
                for list in [
                    "curve25519-sha256",
                    "ssh-ed25519,ssh-rsa",
                    "aes128-ctr",
                    "aes128-ctr",
                    "hmac-sha2-256",
                    "hmac-sha2-256",
                    "none",
                    "none",
                    "",
                    "",
                ] {
                    kexinit.extend(string(list.as_bytes()));
                }
                kexinit.extend([0, 0, 0, 0, 0]);
                let reply = [&[31u8][..], &string(&blob), &string(&[0x22; 32]), &string(b"signature")].concat();
                let _ = s.write_all(&[packet(&kexinit), packet(&reply)].concat()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    port
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn ssh_hostkey_reports_each_key_type() {
    let port = fake_sshd().await;
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
    p.service = Some(rustmap_model::ServiceInfo { name: "ssh".into(), ..Default::default() });
    h.ports.push(p);
    let scripts = Catalog::builtin().unwrap().select("ssh-hostkey").unwrap();
    let ctx = Context { targets: Targets::new([LOCAL]), ..Context::default() };
    let limits = Limits { timeout: Duration::from_secs(20), ..Limits::default() };
    let out = Engine::new(scripts, ctx, limits, 8).run_host(&h).await;
    let r = out[0].result.clone().unwrap().unwrap();
    let ed = hex(&md5::Md5::digest(ed25519_blob()));
    let rsa = hex(&md5::Md5::digest(rsa_blob()));
    assert_eq!(r.output, format!("\n  256 {ed} (ED25519)\n  2048 {rsa} (RSA)"));
    assert!(r.elements.iter().any(|(k, v)| k == "1.type" && v == "ssh-ed25519"), "{:?}", r.elements);
    assert!(r.elements.iter().any(|(k, v)| k == "2.bits" && v == "2048"), "{:?}", r.elements);
}

/// Against a real OpenSSH on 127.0.0.1: `RUSTMAP_SSHD_PORT=N cargo test -p rustmap-script --test
/// ssh -- --ignored`, compared by eye with `ssh-keygen -l -E md5 -f KEY.pub`.
#[tokio::test]
#[ignore = "needs an sshd on 127.0.0.1:$RUSTMAP_SSHD_PORT"]
async fn ssh_hostkey_against_a_real_sshd() {
    let port: u16 = std::env::var("RUSTMAP_SSHD_PORT").unwrap().parse().unwrap();
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    h.ports.push(PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0));
    let mut scripts = Catalog::builtin().unwrap().select("ssh-hostkey").unwrap();
    // The port is not 22 and carries no service name here: run the action regardless.
    scripts[0].source = scripts[0]
        .source
        .replace("portrule = shortport.port_or_service(22, \"ssh\")", "portrule = function() return true end")
        .into();
    let ctx = Context { targets: Targets::new([LOCAL]), ..Context::default() };
    let out = Engine::new(scripts, ctx, Limits::default(), 8).run_host(&h).await;
    let r = out[0].result.clone().unwrap().unwrap();
    println!("{}", r.output);
    assert_eq!(r.output.trim_start().lines().count(), 3, "{}", r.output);
}
