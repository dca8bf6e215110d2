//! Built-in scripts against small scripted servers on 127.0.0.1, for the answers the lab's
//! daemons do not give (the lab's vsftpd allows anonymous logins; here one refuses them).
//! Tests send packets only to 127.0.0.0/8.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, ScriptArgs, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An FTP server that greets, asks anonymous for a password, then refuses it (530). Returns
/// the port and the commands it received.
async fn refusing_ftp() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220-Welcome\r\n220 Private FTP, no anonymous access\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    log.lock().unwrap().push(line.clone());
                    let reply: &[u8] = match line.split(' ').next().unwrap_or("") {
                        "USER" => b"331 Please specify the password.\r\n",
                        "PASS" => b"530 Login incorrect.\r\n",
                        "QUIT" => b"221 Goodbye.\r\n",
                        _ => b"530 Please login with USER and PASS.\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn ftp_anon_reports_nothing_when_anonymous_is_refused() {
    let (port, seen) = refusing_ftp().await;
    let scripts = Catalog::builtin().unwrap().select("ftp-anon").unwrap();
    let ctx = Context { targets: Targets::new([LOCAL]), args: ScriptArgs::default(), ..Context::default() };
    let engine = Engine::new(scripts, ctx, Limits { timeout: Duration::from_secs(10), ..Limits::default() }, 4);
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    let mut p = PortResult::new(Protocol::Tcp, port, PortState::Open, Reason::SynAck, 0);
    p.service = Some(ServiceInfo { name: "ftp".into(), ..ServiceInfo::default() });
    h.ports.push(p);
    let out = engine.run_host(&h).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0].result, Ok(None)), "{out:?}");
    // It tried the anonymous login (a multi-line greeting read whole), and left politely (the
    // server task may still be reading the last line).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["USER anonymous", "PASS rustmap@example.com", "QUIT"]);
}
