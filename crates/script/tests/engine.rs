//! The engine end to end against real daemons on 127.0.0.1: the built-in scripts, an NSE-style
//! script written from the NSE API documentation, many scripts in flight, the target rule, and
//! script arguments. Tests send packets only to 127.0.0.0/8.

use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ScriptScope, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Limits, Outcome, Script, ScriptArgs, ScriptError, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn host(ports: &[u16], service: Option<&str>) -> HostResult {
    let mut h = HostResult::new(LOCAL, HostStatus::Up, Reason::SynAck);
    for &p in ports {
        let mut port = PortResult::new(Protocol::Tcp, p, PortState::Open, Reason::SynAck, 0);
        port.service = service.map(|s| ServiceInfo { name: s.into(), ..ServiceInfo::default() });
        h.ports.push(port);
    }
    h
}

fn ctx(args: &str) -> Context {
    Context { targets: Targets::new([LOCAL]), args: ScriptArgs::parse(args).unwrap(), ..Context::default() }
}

fn limits() -> Limits {
    Limits { timeout: Duration::from_secs(10), ..Limits::default() }
}

/// A server that sends `greeting` to every connection.
async fn banner_server(greeting: &'static [u8]) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(greeting).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    port
}

/// A tiny HTTP server: `/` answers `root` (or redirects to `redirect`), other paths 404.
async fn http_server(root: &'static str, redirect: Option<&'static str>) -> u16 {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&got).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = match (path.as_str(), redirect) {
                    ("/", Some(to)) => format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n"),
                    ("/", None) | ("/landing", _) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{root}",
                        root.len()
                    ),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn only(outcomes: &[Outcome], id: &str) -> Outcome {
    let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.id == id).collect();
    assert_eq!(mine.len(), 1, "{outcomes:?}");
    mine[0].clone()
}

#[tokio::test]
async fn builtin_catalog_and_selection() {
    let mut c = Catalog::builtin().unwrap();
    let ids = |v: Vec<Script>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(c.select("default").unwrap()),
        vec![
            "http-title",
            "ssl-cert",
            "ssh-hostkey",
            "ftp-anon",
            "rtsp-methods",
            "mongodb-info",
            "snmp-sysdescr",
            "snmp-info",
            "snmp-interfaces",
            "ntp-info",
            "sip-methods",
            "nbstat",
            "ldap-rootdse",
            "dns-nsid",
            "dns-recursion",
            "dns-service-discovery",
            "smb-protocols",
            "smb-security-mode",
            "smb2-time",
            "smb-os-discovery",
            "rdp-ntlm-info",
            "mysql-info",
            "vnc-info",
            "imap-ntlm-info"
        ]
    );
    assert_eq!(
        ids(c.select("default or safe").unwrap()),
        vec![
            "banner",
            "http-title",
            "ssl-cert",
            "ssh-hostkey",
            "http-server-header",
            "http-methods",
            "http-robots",
            "http-security-headers",
            "http-favicon-hash",
            "http-cors",
            "smtp-commands",
            "pop3-capabilities",
            "imap-capabilities",
            "redis-info",
            "memcached-info",
            "postgresql-info",
            "ftp-anon",
            "mqtt-version",
            "mqtt-subscribe",
            "docker-version",
            "docker-containers",
            "rtsp-methods",
            "mongodb-info",
            "pptp-version",
            "snmp-sysdescr",
            "snmp-info",
            "snmp-interfaces",
            "ntp-info",
            "sip-methods",
            "nbstat",
            "ldap-rootdse",
            "ldap-search",
            "dns-nsid",
            "dns-recursion",
            "dns-service-discovery",
            "smb-protocols",
            "smb-security-mode",
            "smb2-time",
            "smb-os-discovery",
            "rdp-ntlm-info",
            "rdp-enum-encryption",
            "mysql-info",
            "vnc-info",
            "telnet-banner",
            "imap-ntlm-info",
            "py-http-title",
            "py-http-headers-full",
            "py-ssh-version",
            "py-ldap-info"
        ]
    );
    assert_eq!(
        ids(c.select("http-* and not http-slowloris").unwrap()),
        vec![
            "http-title",
            "http-server-header",
            "http-methods",
            "http-robots",
            "http-security-headers",
            "http-favicon-hash",
            "http-open-redirect",
            "http-cors"
        ]
    );
    assert_eq!(ids(c.select("vuln").unwrap()), vec!["http-open-redirect"]);
    assert_eq!(
        ids(c
            .select("default and not (ss?-* or snmp-* or n* or dns-* or ldap-* or smb* or rdp-* or mysql-* or vnc-* or imap-*)")
            .unwrap()),
        vec!["http-title", "ftp-anon", "rtsp-methods", "mongodb-info", "sip-methods"]
    );
    // `not intrusive`: every built-in but the five that are (nmap's use of the word: they send
    // what a service may log as an attack or that costs it work).
    let not_intrusive = ids(c.select("not intrusive").unwrap());
    let intrusive = ["ssl-enum-ciphers", "http-open-redirect", "sip-enum-users", "dns-zone-transfer", "ntp-monlist"];
    let everything = ids(c.select("all").unwrap());
    assert_eq!(
        not_intrusive,
        everything.iter().filter(|id| !intrusive.contains(&id.as_str())).cloned().collect::<Vec<_>>()
    );
    assert_eq!(not_intrusive.len() + intrusive.len(), everything.len());
    assert_eq!(ids(c.select("banner,http-title.nse").unwrap()), vec!["banner", "http-title"]);
    assert!(c.select("no-such-script").is_err());
    let title = c.get("http-title").unwrap();
    assert!(title.rules.portrule && !title.rules.hostrule);
    assert_eq!(title.categories, vec!["default", "discovery", "safe"]);
    assert!(title.help().contains("title"));
}

#[tokio::test]
async fn scripts_from_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my-check.nse"),
        "description = 'mine'\ncategories = {'safe'}\nhostrule = function() return true end\naction = function() return 'hi' end\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.txt"), "not a script").unwrap();
    let mut c = Catalog::builtin().unwrap();
    let chosen = c.select(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].id, "my-check");
    let file = dir.path().join("my-check.nse");
    assert_eq!(c.select(file.to_str().unwrap()).unwrap()[0].id, "my-check");
    // Once loaded it is selectable by name and category.
    assert!(c.select("my-check").is_ok());
}

#[tokio::test]
async fn banner_reads_a_real_daemon() {
    let port = banner_server(b"SSH-2.0-RustMapTest_1.0\r\n").await;
    let scripts = Catalog::builtin().unwrap().select("banner").unwrap();
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[port], None)).await;
    let o = only(&out, "banner");
    assert_eq!(o.scope, ScriptScope::Port { addr: LOCAL, protocol: Protocol::Tcp, port });
    assert_eq!(o.result.unwrap().unwrap().output, "SSH-2.0-RustMapTest_1.0");
}

#[tokio::test]
async fn http_title_reads_a_real_page_and_follows_a_local_redirect() {
    let port = http_server("<html><head><title>RustMap Lab\n Page</title></head></html>", None).await;
    let scripts = Catalog::builtin().unwrap().select("http-title").unwrap();
    let engine = Engine::new(scripts.clone(), ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[port], Some("http"))).await;
    let r = only(&out, "http-title").result.unwrap().unwrap();
    assert_eq!(r.output, "RustMap Lab Page");
    assert_eq!(r.elements, vec![("title".to_string(), "RustMap Lab Page".to_string())]);

    let port = http_server("<title>Landed</title>", Some("/landing")).await;
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[port], Some("http"))).await;
    let r = only(&out, "http-title").result.unwrap().unwrap();
    assert_eq!(r.output, "Landed\nRequested resource was /landing");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let port = http_server("<title>x</title>", Some("http://192.0.2.1/")).await;
    let scripts = Catalog::builtin().unwrap().select("http-title").unwrap();
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[port], Some("http"))).await;
    let r = only(&out, "http-title").result.unwrap().unwrap();
    assert_eq!(r.output, "Site doesn't have a title.");
}

/// Written against the NSE API documentation (shortport.http, http.get, stdnse.output_table),
/// the way a user's script would be.
const NSE_STYLE: &str = r#"
local http = require "http"
local shortport = require "shortport"
local stdnse = require "stdnse"

description = [[Reports the page title and the server header.]]
author = "test"
license = "Same as RustMap"
categories = {"safe", "discovery"}

portrule = shortport.http

action = function(host, port)
  local resp = http.get(host, port, "/")
  if not resp.status then
    return stdnse.format_output(false, "no response")
  end
  local out = stdnse.output_table()
  out.title = string.match(resp.body, "<title>(.-)</title>")
  out.status = resp.status
  out.server = resp.header["server"] or "unknown"
  return out
end
"#;

#[tokio::test]
async fn an_nse_style_script_runs_unmodified() {
    let port = http_server("<html><title>Lab Title</title></html>", None).await;
    let script = Script::parse("page-info", NSE_STYLE, rustmap_script::script::Origin::Builtin).unwrap();
    let engine = Engine::new(vec![script], ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[port], Some("http"))).await;
    let r = only(&out, "page-info").result.unwrap().unwrap();
    assert_eq!(r.output, "\n  title: Lab Title\n  status: 200\n  server: unknown");
    let keys: Vec<&str> = r.elements.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["title", "status", "server"]);
}

const CONNECT_ELSEWHERE: &str = r#"
local nmap = require "nmap"
categories = {"safe"}
hostrule = function() return true end
action = function(host)
  local s = nmap.new_socket()
  local ok = pcall(s.connect, s, "127.0.0.2", 80)
  return "went on"
end
"#;

const HELLO: &str = "categories = {'safe'}\nhostrule = function() return true end\naction = function(host) return 'hello ' .. host.ip end\n";

#[tokio::test]
async fn a_connect_to_a_non_target_is_stopped_and_the_next_script_runs() {
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![
        Script::parse("elsewhere", CONNECT_ELSEWHERE, origin()).unwrap(),
        Script::parse("by-name", &CONNECT_ELSEWHERE.replace("127.0.0.2", "localhost"), origin()).unwrap(),
        Script::parse("hello", HELLO, origin()).unwrap(),
    ];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    assert!(matches!(only(&out, "elsewhere").result, Err(ScriptError::NotATarget { addr }) if addr == "127.0.0.2"));
    assert!(matches!(only(&out, "by-name").result, Err(ScriptError::NotATarget { addr }) if addr == "localhost"));
    assert_eq!(only(&out, "hello").result.unwrap().unwrap().output, "hello 127.0.0.1");
}

#[tokio::test]
async fn many_scripts_are_in_flight_at_once() {
    const SLEEPY: &str = "local stdnse = require 'stdnse'\ncategories = {'safe'}\nportrule = function() return true end\naction = function(h, p) stdnse.sleep(0.5) return tostring(p.number) end\n";
    let script = Script::parse("sleepy", SLEEPY, rustmap_script::script::Origin::Builtin).unwrap();
    let ports: Vec<u16> = (1000..1040).collect();
    let engine = Engine::new(vec![script], ctx(""), limits(), 64);
    let start = Instant::now();
    let out = engine.run_host(&host(&ports, None)).await;
    assert_eq!(out.len(), 40);
    assert!(out.iter().all(|o| o.result.is_ok()));
    // Forty half-second sleeps in well under forty half-seconds: they overlapped.
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

/// More ports than runs in flight: runs wait for a slot before they are spawned (a host open on
/// every port held one waiting task per script and port: gigabytes), and none is lost.
#[tokio::test]
async fn a_host_with_more_ports_than_slots_gets_every_run() {
    const ECHO: &str = "categories = {'safe'}\nportrule = function(h, p) return p.number % 2 == 0 end\naction = function(h, p) return tostring(p.number) end\n";
    let script = Script::parse("echo", ECHO, rustmap_script::script::Origin::Builtin).unwrap();
    let ports: Vec<u16> = (1..=600).collect();
    let engine = Engine::new(vec![script], ctx(""), limits(), 8);
    assert_eq!(engine.in_flight(), 8);
    let out = engine.run_host(&host(&ports, None)).await;
    let mut got: Vec<u16> =
        out.iter().map(|o| o.result.as_ref().unwrap().as_ref().unwrap().output.parse().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=300).map(|i| i * 2).collect::<Vec<u16>>());
}

#[tokio::test]
async fn script_args_reach_get_script_args() {
    const ARGS: &str = r#"
local stdnse = require "stdnse"
categories = {"safe"}
hostrule = function() return true end
action = function()
  local a, b, list = stdnse.get_script_args(SCRIPT_NAME .. ".user", "pass", "list")
  return string.format("%s %s %s,%s", a, b, list[1], list[2])
end
"#;
    let script = Script::parse("argy", ARGS, rustmap_script::script::Origin::Builtin).unwrap();
    let engine = Engine::new(vec![script], ctx("argy.user=admin,pass=s3cret,list={a,b}"), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    assert_eq!(only(&out, "argy").result.unwrap().unwrap().output, "admin s3cret a,b");
}

#[tokio::test]
async fn oversized_output_is_a_typed_error() {
    const BIG: &str = "categories = {'safe'}\nhostrule = function() return true end\naction = function() return string.rep('x', 100000) end\n";
    // A wide table too: it is refused while being read, before it is all copied out of Lua.
    const WIDE: &str = "local stdnse = require 'stdnse'\ncategories = {'safe'}\nhostrule = function() return true end\naction = function() local t = stdnse.output_table() for i = 1, 50000 do t['k' .. i] = 'value' .. i end return t end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![Script::parse("big", BIG, origin()).unwrap(), Script::parse("wide", WIDE, origin()).unwrap()];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    assert!(matches!(only(&out, "big").result, Err(ScriptError::OutputTooLarge { .. })));
    let wide = only(&out, "wide").result;
    assert!(matches!(wide, Err(ScriptError::OutputTooLarge { .. })), "{wide:?}");
}

#[tokio::test]
async fn prerule_and_postrule_scripts_run_without_a_host() {
    const PRE: &str = "categories = {'safe'}\nprerule = function() return true end\naction = function(...) return SCRIPT_TYPE .. ' ' .. select('#', ...) end\n";
    const POST: &str =
        "categories = {'safe'}\npostrule = function() return true end\naction = function() return SCRIPT_TYPE end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![Script::parse("pre", PRE, origin()).unwrap(), Script::parse("post", POST, origin()).unwrap()];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let pre = engine.run_pre().await;
    assert_eq!(pre.len(), 1);
    assert_eq!(pre[0].scope, ScriptScope::Pre);
    assert_eq!(pre[0].result.clone().unwrap().unwrap().output, "prerule 0");
    let post = engine.run_post().await;
    assert_eq!(post[0].scope, ScriptScope::Post);
    assert_eq!(post[0].result.clone().unwrap().unwrap().output, "postrule");
    // Neither runs per host.
    assert!(engine.run_host(&host(&[80], None)).await.is_empty());
}

#[tokio::test]
async fn a_dependency_runs_before_its_dependent() {
    const SLOW: &str = "local stdnse = require 'stdnse'\ncategories = {'safe'}\nhostrule = function() return true end\naction = function() stdnse.sleep(0.3) return 'slow' end\n";
    const AFTER: &str = "categories = {'safe'}\ndependencies = {'slow'}\nhostrule = function() return true end\naction = function() return 'after' end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    // Listed dependent first: the order comes from the dependencies, not the list.
    let scripts =
        vec![Script::parse("after", AFTER, origin()).unwrap(), Script::parse("slow", SLOW, origin()).unwrap()];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    let ids: Vec<&str> = out.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, vec!["slow", "after"]);
}

#[tokio::test]
async fn runs_in_flight_are_capped_by_the_memory_budget() {
    let engine = Engine::new(Vec::new(), ctx(""), limits(), 64);
    assert_eq!(engine.in_flight(), 32); // 1 GiB / 32 MiB
    let engine = engine.with_memory_budget(128 * 1024 * 1024);
    assert_eq!(engine.in_flight(), 4);
    assert_eq!(engine.with_memory_budget(usize::MAX).in_flight(), 64);
    let engine = Engine::new(Vec::new(), ctx(""), limits(), 64).with_memory_budget(1);
    assert_eq!(engine.in_flight(), 1);
}

#[tokio::test]
async fn outcomes_become_script_output_events() {
    use rustmap_model::ScanEvent;
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![
        Script::parse("hello", HELLO, origin()).unwrap(),
        Script::parse(
            "boom",
            "categories={'safe'}\nhostrule=function() return true end\naction=function() error('x') end",
            origin(),
        )
        .unwrap(),
    ];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    let events: Vec<ScanEvent> = out.iter().cloned().filter_map(|o| o.into_event(false)).collect();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], ScanEvent::ScriptOutput { scope: ScriptScope::Host { .. }, result } if result.output == "hello 127.0.0.1")
    );
    let events: Vec<ScanEvent> = out.into_iter().filter_map(|o| o.into_event(true)).collect();
    assert!(events.iter().any(|e| matches!(e, ScanEvent::ScriptOutput { result, .. } if result.id == "boom" && result.output.starts_with("ERROR: Script execution failed (runtime"))));
    // The model's reducer files them where they belong.
    let mut h = host(&[], None);
    for e in &events {
        if let ScanEvent::ScriptOutput { result, .. } = e {
            h.scripts.push(result.clone());
        }
    }
    assert_eq!(h.scripts.len(), 2);
}

#[tokio::test]
async fn the_registry_carries_data_to_dependent_scripts() {
    const PRODUCER: &str = "local nmap = require 'nmap'\ncategories = {'safe'}\nhostrule = function() return true end\naction = function(host) nmap.registry.found = {ip = host.ip, n = 3, f = function() end} return nil end\n";
    const CONSUMER: &str = "local nmap = require 'nmap'\ncategories = {'safe'}\ndependencies = {'producer'}\nhostrule = function() return true end\naction = function() local f = nmap.registry.found return f.ip .. ' ' .. f.n .. ' ' .. tostring(f.f) end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![
        Script::parse("consumer", CONSUMER, origin()).unwrap(),
        Script::parse("producer", PRODUCER, origin()).unwrap(),
    ];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    // Functions stay behind; plain data crosses.
    assert_eq!(only(&out, "consumer").result.unwrap().unwrap().output, "127.0.0.1 3 nil");
}

#[tokio::test]
async fn host_registry_is_shared_per_host() {
    const W: &str = "categories = {'safe'}\nhostrule = function() return true end\naction = function(host) if host.ip == '127.0.0.1' then host.registry.seen = 'yes' end return nil end\n";
    const R: &str = "categories = {'safe'}\ndependencies = {'w'}\nhostrule = function() return true end\naction = function(host) return tostring(host.registry.seen) end\n";
    let origin = || rustmap_script::script::Origin::Builtin;
    let scripts = vec![Script::parse("w", W, origin()).unwrap(), Script::parse("r", R, origin()).unwrap()];
    let engine = Engine::new(scripts, ctx(""), limits(), 8);
    assert_eq!(only(&engine.run_host(&host(&[], None)).await, "r").result.unwrap().unwrap().output, "yes");
    // Another host of the same scan has its own registry.
    let mut other = host(&[], None);
    other.addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));
    assert_eq!(only(&engine.run_host(&other).await, "r").result.unwrap().unwrap().output, "nil");
}

/// Against a real web server on 127.0.0.1 (`python3 -m http.server`, HTTP/1.0, body read to
/// close): `RUSTMAP_HTTP_PORT=N cargo test -p rustmap-script --test engine -- --ignored`.
#[tokio::test]
#[ignore = "needs a web server on 127.0.0.1:$RUSTMAP_HTTP_PORT serving a titled index.html"]
async fn http_title_against_a_real_web_server() {
    let port: u16 = std::env::var("RUSTMAP_HTTP_PORT").unwrap().parse().unwrap();
    let scripts = Catalog::builtin().unwrap().select("http-title").unwrap();
    let out = Engine::new(scripts, ctx(""), limits(), 8).run_host(&host(&[port], Some("http"))).await;
    let r = only(&out, "http-title").result.unwrap().unwrap();
    println!("{}", r.output);
    assert!(!r.output.is_empty());
}

#[tokio::test]
async fn trace_keeps_prints_debug_at_its_level_and_socket_traffic() {
    let port = banner_server(b"HELLO\r\n").await;
    const TALKY: &str = "local nmap = require 'nmap'\nlocal stdnse = require 'stdnse'\ncategories = {'safe'}\nportrule = function() return true end\naction = function(host, port)\n  print('printed', 1)\n  stdnse.debug1('debug %s', 'one')\n  stdnse.debug(3, 'too deep')\n  local s = nmap.new_socket() s:connect(host, port) s:send('hi') s:receive() s:close()\n  return 'done'\nend\n";
    let script = Script::parse("talky", TALKY, rustmap_script::script::Origin::Builtin).unwrap();
    let ctx = Context { debugging: 1, trace: true, ..ctx("") };
    let out = Engine::new(vec![script], ctx, limits(), 8).run_host(&host(&[port], None)).await;
    let t = &only(&out, "talky").trace;
    assert_eq!(t[0], "printed\t1");
    assert_eq!(t[1], "[debug1] debug one");
    assert!(t.iter().all(|l| !l.contains("too deep")), "{t:?}");
    assert!(t[2].starts_with("NSOCK CONNECT 127.0.0.1:"), "{t:?}");
    assert!(t.iter().any(|l| l == "NSOCK SEND 2 bytes: \"hi\""), "{t:?}");
    assert!(t.iter().any(|l| l.starts_with("NSOCK RECV 7 bytes: \"HELLO\\r\\n\"")), "{t:?}");
}

const THREADS: &str = r#"
local nmap = require "nmap"
local stdnse = require "stdnse"
categories = {"safe"}
hostrule = function() return true end
action = function()
  local done, threads = 0, {}
  local condvar = nmap.condvar(threads)
  local mutex = nmap.mutex(threads)
  local function worker(n)
    stdnse.sleep(0.3)
    mutex "lock"
    done = done + n
    mutex "done"
    condvar "signal"
  end
  for i = 1, 5 do threads[stdnse.new_thread(worker, i)] = true end
  repeat
    for t in pairs(threads) do
      if coroutine.status(t) == "dead" then threads[t] = nil end
    end
    if next(threads) then condvar "wait" end
  until next(threads) == nil
  return tostring(done)
end
"#;

#[tokio::test]
async fn new_thread_workers_run_alongside_and_join_through_a_condition_variable() {
    let script = Script::parse("threads", THREADS, rustmap_script::script::Origin::Builtin).unwrap();
    let start = Instant::now();
    let out = Engine::new(vec![script], ctx(""), limits(), 8).run_host(&host(&[], None)).await;
    assert_eq!(only(&out, "threads").result.unwrap().unwrap().output, "15");
    // Five 0.3 s sleeps side by side.
    assert!(start.elapsed() < Duration::from_millis(1200), "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_runaway_worker_stops_the_whole_run() {
    let runaway = THREADS.replace("stdnse.sleep(0.3)", "while true do end");
    let script = Script::parse("runaway", &runaway, rustmap_script::script::Origin::Builtin).unwrap();
    let limits = Limits { instructions: 5_000_000, ..limits() };
    let out = Engine::new(vec![script], ctx(""), limits, 8).run_host(&host(&[], None)).await;
    assert!(matches!(only(&out, "runaway").result, Err(ScriptError::InstructionBudget { .. })), "{out:?}");
    let elsewhere = THREADS.replace("stdnse.sleep(0.3)", "nmap.new_socket():connect('192.0.2.1', 80)");
    let script = Script::parse("elsewhere", &elsewhere, rustmap_script::script::Origin::Builtin).unwrap();
    let out = Engine::new(vec![script], ctx(""), limits, 8).run_host(&host(&[], None)).await;
    assert!(matches!(only(&out, "elsewhere").result, Err(ScriptError::NotATarget { .. })), "{out:?}");
}

#[tokio::test]
async fn a_stopped_worker_wakes_a_script_waiting_on_the_network() {
    // The main thread waits 5 s on a silent socket; its worker breaks a rule after 0.1 s.
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                drop(s);
            });
        }
    });
    let source = format!(
        "local nmap = require 'nmap'\nlocal stdnse = require 'stdnse'\ncategories = {{'safe'}}\nhostrule = function() return true end\naction = function(host)\n  stdnse.new_thread(function() stdnse.sleep(0.1) os.execute('x') end)\n  local s = nmap.new_socket() s:set_timeout(5000) s:connect(host, {port}) s:receive()\n  return 'too late'\nend\n"
    );
    let script = Script::parse("waker", &source, rustmap_script::script::Origin::Builtin).unwrap();
    let start = Instant::now();
    let out = Engine::new(vec![script], ctx(""), limits(), 8).run_host(&host(&[], None)).await;
    assert!(matches!(only(&out, "waker").result, Err(ScriptError::Forbidden { .. })), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[tokio::test]
async fn ntlm_library_reads_the_specifications_challenge() {
    // MS-NLMP 4.2.4.3: the example CHALLENGE_MESSAGE (target "Server" in domain "Domain",
    // version 6.0.6000, NTLM revision 15), behind 3 bytes of a wrapper; the NEGOTIATE builder's
    // signature and type; a FILETIME (100 ns since 1601) of 2000-01-01; a truncated message.
    const NTLM: &str = r#"
local ntlm = require "ntlm"
local stdnse = require "stdnse"
categories = {"safe"}
hostrule = function() return true end
action = function()
  local hex = "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef0000000000000000"
    .. "240024004400000006007017000000 0f"
    .. "530065007200760065007200"
    .. "02000c0044006f006d00610069006e00"
    .. "01000c0053006500720076006500720000000000"
  local msg = stdnse.fromhex((hex:gsub(" ", "")))
  local c = ntlm.parse_challenge("\48\130\1" .. msg)
  local neg = ntlm.negotiate()
  -- 2000-01-01T00:00:00Z as a FILETIME: (946684800 + 11644473600) * 10^7.
  local t = ntlm.format_time(ntlm.filetime_to_unix((946684800 + 11644473600) * 10000000))
  return table.concat({ c.target_name, c.netbios_domain, c.netbios_computer, c.version,
    tostring(c.ntlm_revision), tostring(c.dns_computer), neg:sub(1, 8) == "NTLMSSP\0" and "neg" or "?",
    tostring(string.unpack("<I4", neg, 9)), t, tostring(ntlm.parse_challenge("NTLMSSP\0\2\0\0\0")) }, "|")
end
"#;
    let script = Script::parse("ntlm-check", NTLM, rustmap_script::script::Origin::Builtin).unwrap();
    let engine = Engine::new(vec![script], ctx(""), limits(), 8);
    let out = engine.run_host(&host(&[], None)).await;
    assert_eq!(
        only(&out, "ntlm-check").result.unwrap().unwrap().output,
        "Server|Domain|Server|6.0.6000|15|nil|neg|1|2000-01-01T00:00:00|nil"
    );
}

/// A context whose sockets read `replies` instead of the network (what the script_replies
/// fuzz target runs on).
fn replay_ctx(replies: Vec<Vec<u8>>) -> Context {
    Context { replay: Some(rustmap_script::Replay::new(replies)), ..ctx("") }
}

#[tokio::test]
async fn replayed_replies_stand_for_the_peer() {
    let body = "<html><title>Replayed page</title></html>";
    // Split mid-header: the http library reads until the whole answer is there.
    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes();
    let (a, b) = reply.split_at(20);
    let scripts = Catalog::builtin().unwrap().select("http-title").unwrap();
    let engine = Engine::new(scripts, replay_ctx(vec![a.to_vec(), b.to_vec()]), limits(), 8);
    let out = engine.run_host(&host(&[80], Some("http"))).await;
    assert_eq!(only(&out, "http-title").result.unwrap().unwrap().output, "Replayed page");
    // Nothing left to read is the peer closing: the script reports nothing, and no error.
    let scripts = Catalog::builtin().unwrap().select("http-title").unwrap();
    let engine = Engine::new(scripts, replay_ctx(Vec::new()), limits(), 8);
    let out = engine.run_host(&host(&[80], Some("http"))).await;
    assert!(out.iter().all(|o| o.result.is_ok()), "{out:?}");
}

#[tokio::test]
async fn mongodb_info_ignores_a_value_cut_off_by_its_document() {
    // Found by the script_replies fuzz target: an int32 element whose value runs past the
    // message made string.unpack raise. The document: length 9, type 0x10, name "a", 2 bytes.
    let doc = [9u8, 0, 0, 0, 0x10, b'a', 0, 1, 0];
    let mut msg = Vec::new();
    msg.extend_from_slice(&(16 + 5 + doc.len() as i32).to_le_bytes());
    msg.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
    msg.extend_from_slice(&2013i32.to_le_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0, 0]);
    msg.extend_from_slice(&doc);
    let scripts = Catalog::builtin().unwrap().select("mongodb-info").unwrap();
    let engine = Engine::new(scripts, replay_ctx(vec![msg]), limits(), 8);
    let out = engine.run_host(&host(&[27017], Some("mongodb"))).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0].result, Ok(None)), "{out:?}");
}
