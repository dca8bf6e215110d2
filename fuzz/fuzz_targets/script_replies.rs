//! The built-in Lua scripts and the libraries they parse the network with (`http`, `snmp`,
//! `ldap`, `ber`, `dns`, `smb`, `ntlm`, `sip`, `mqtt`, `ssh2`, `comm`, ...) reading hostile
//! replies. The sockets of the run replay the input's replies instead of touching the network
//! (`Context::replay`), so one input is one whole script run, through the engine's rules, the
//! sandbox and the output renderer, as in a scan.
//!
//! Input: the script's name on the first line; the port on the second (`161/udp/snmp`,
//! `443/tcp/https/ssl`: number, protocol, service, an optional tunnel); then the replies, in
//! the order the script's reads take them, separated by [`SEP`]. Seeds: `seeds/script_replies/`,
//! written by `seeds/script_replies.py` from each protocol's documentation.
//!
//! Every outcome must be an output or nothing: a script that raises on a reply, runs out of
//! memory or instructions, overflows the stack or writes an output over the limit is a finding,
//! as it is for `crates/script/tests/hostile_builtins.rs` against live hostile servers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_model::{HostResult, HostStatus, PortResult, PortState, Protocol, Reason, ServiceInfo};
use rustmap_script::{Catalog, Context, Engine, Kind, Limits, Replay, ScriptArgs, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Duration;

/// Between two replies.
const SEP: &[u8] = b"\x00<>\x00";
/// Most replies one input holds.
const MAX_REPLIES: usize = 64;
const TARGET: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().expect("the built-in scripts load"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // Paused time: a script's stdnse.sleep or a socket timeout costs no wall time.
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap())
}

fn line(data: &[u8]) -> Option<(&str, &[u8])> {
    let end = data.iter().position(|b| *b == b'\n')?;
    Some((std::str::from_utf8(&data[..end]).ok()?, &data[end + 1..]))
}

fn port(spec: &str) -> Option<PortResult> {
    let mut parts = spec.split('/');
    let number: u16 = parts.next()?.parse().ok()?;
    let protocol = match parts.next()? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    let mut p = PortResult::new(protocol, number, PortState::Open, Reason::SynAck, 0);
    if let Some(name) = parts.next().filter(|n| !n.is_empty()) {
        let tunnel = parts.next().filter(|t| !t.is_empty()).map(str::to_string);
        p.service = Some(ServiceInfo { name: name.into(), tunnel, ..ServiceInfo::default() });
    }
    Some(p)
}

fn split(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < MAX_REPLIES {
        match body.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                out.push(body[..i].to_vec());
                body = &body[i + SEP.len()..];
            }
            None => {
                out.push(body.to_vec());
                break;
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((id, rest)) = line(data) else { return };
    let Some((spec, body)) = line(rest) else { return };
    let Some(script) = catalog().get(id).filter(|s| s.kind == Kind::Lua) else { return };
    let Some(port) = port(spec) else { return };
    let mut host = HostResult::new(TARGET, HostStatus::Up, Reason::SynAck);
    host.ports.push(port);
    let ctx = Context {
        targets: Targets::new([TARGET]),
        // The SMB host scripts go to 445 unless told; mqtt-subscribe waits for publishes.
        args: ScriptArgs::parse("mqtt-subscribe.wait=1,dns-zone-transfer.domain=lab.test").unwrap(),
        replay: Some(Replay::new(split(body))),
        ..Context::default()
    };
    // The default limits but a shorter clock: the replies are all there at once.
    let limits = Limits { timeout: Duration::from_secs(20), ..Limits::default() };
    let engine = Engine::new(vec![script.clone()], ctx, limits, 1);
    for outcome in runtime().block_on(engine.run_host(&host)) {
        if let Err(e) = &outcome.result {
            panic!("{}: {} ({})", outcome.id, e, e.kind());
        }
    }
});
