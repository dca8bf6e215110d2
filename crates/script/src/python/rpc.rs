//! The parent's half of the worker protocol: the sockets a Python script asks for (every
//! connect checked against the scan's targets, exactly as the Lua `nmap` sockets are), NSE-like
//! `host` / `port` dictionaries for the job, and the script's returned value turned into a
//! [`ScriptResult`]. Bytes travel as JSON strings of Latin-1 characters (one character per
//! byte), so no base64 is needed on either side.

use crate::error::ScriptError;
use crate::libs::nmap::Conn;
use crate::libs::Context;
use crate::render::{self, Node};
use rustmap_model::{HostResult, HostnameKind, PortResult, ScriptResult};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Most sockets a run may have open at once.
const MAX_SOCKETS: usize = 16;
/// Most bytes one `recv` returns.
const MAX_RECV: usize = 1024 * 1024;
/// Longest socket timeout a script may ask for.
const MAX_TIMEOUT: f64 = 300.0;
/// Deepest result tree accepted from a worker.
const MAX_DEPTH: usize = 16;

/// A run's open sockets.
pub(crate) struct Sockets {
    conns: HashMap<u64, Conn>,
    next: u64,
}

/// What the parent does with one request.
pub(crate) enum Reply {
    /// Answer the worker with this.
    Answer(Value),
    /// Stop the run with this error (the worker is killed: a stop cannot be caught).
    Stop(ScriptError),
}

fn fail(msg: &str) -> Reply {
    Reply::Answer(json!({"ok": false, "error": msg}))
}

fn timeout_of(msg: &Value) -> Duration {
    let secs = msg.get("timeout").and_then(Value::as_f64).unwrap_or(10.0);
    let secs = if secs.is_finite() { secs.clamp(0.0, MAX_TIMEOUT) } else { 10.0 };
    Duration::from_secs_f64(secs)
}

/// Bytes from a string of Latin-1 characters; `None` if a character is above U+00FF.
fn bytes_of(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&b| char::from(b)).collect()
}

impl Sockets {
    pub(crate) fn new() -> Sockets {
        Sockets { conns: HashMap::new(), next: 1 }
    }

    /// Handles one socket request (`connect`, `send`, `recv`, `close`).
    pub(crate) async fn handle(&mut self, ctx: &Context, op: &str, msg: &Value, trace: &mut Vec<String>) -> Reply {
        let sock = msg.get("sock").and_then(Value::as_u64).unwrap_or(0);
        match op {
            "connect" => self.connect(ctx, msg, trace).await,
            "send" => {
                let Some(data) = msg.get("data").and_then(Value::as_str).and_then(bytes_of) else {
                    return fail("ERROR: data must be bytes");
                };
                let Some(conn) = self.conns.get_mut(&sock) else { return fail("ERROR: not connected") };
                if ctx.trace {
                    trace.push(format!("PY SEND {} bytes", data.len()));
                }
                match tokio::time::timeout(timeout_of(msg), conn.write_all(&data)).await {
                    Ok(Ok(())) => Reply::Answer(json!({"ok": true})),
                    Ok(Err(_)) => fail("ERROR: connection reset"),
                    Err(_) => fail("TIMEOUT"),
                }
            }
            "recv" => {
                let max = msg.get("max").and_then(Value::as_u64).unwrap_or(65536).clamp(1, MAX_RECV as u64);
                let Some(conn) = self.conns.get_mut(&sock) else { return fail("ERROR: not connected") };
                let mut buf = vec![0u8; max as usize];
                match tokio::time::timeout(timeout_of(msg), conn.read(&mut buf)).await {
                    Ok(Ok(0)) => fail("EOF"),
                    Ok(Ok(n)) => {
                        if ctx.trace {
                            trace.push(format!("PY RECV {n} bytes"));
                        }
                        Reply::Answer(json!({"ok": true, "data": latin1(&buf[..n])}))
                    }
                    Ok(Err(_)) => fail("ERROR: connection reset"),
                    Err(_) => fail("TIMEOUT"),
                }
            }
            "close" => {
                self.conns.remove(&sock);
                Reply::Answer(json!({"ok": true}))
            }
            other => {
                Reply::Stop(ScriptError::Runtime { message: format!("worker protocol: unknown request {other:?}") })
            }
        }
    }

    async fn connect(&mut self, ctx: &Context, msg: &Value, trace: &mut Vec<String>) -> Reply {
        let host = msg.get("host").and_then(Value::as_str).unwrap_or("");
        // The sandbox's rule, as for Lua scripts: only the scan's targets, and no DNS.
        let Some(ip) = ctx.targets.resolve(host) else {
            return Reply::Stop(ScriptError::NotATarget { addr: host.chars().take(256).collect() });
        };
        let Some(port) = msg.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()) else {
            return fail("ERROR: bad port");
        };
        if self.conns.len() >= MAX_SOCKETS {
            return fail("ERROR: too many open sockets");
        }
        let ssl = msg.get("ssl").and_then(Value::as_bool).unwrap_or(false);
        let timeout = timeout_of(msg);
        let target = SocketAddr::new(ip, port);
        if ctx.trace {
            trace.push(format!("PY CONNECT {target} {}", if ssl { "ssl" } else { "tcp" }));
        }
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
            Err(_) => return fail("TIMEOUT"),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return fail("ERROR: connection refused")
            }
            Ok(Err(e)) => return fail(&format!("ERROR: {e}")),
            Ok(Ok(tcp)) => tcp,
        };
        let conn = if ssl {
            match rustmap_detect::tls::session(tcp, target, false, timeout).await {
                Some(tls) => Conn::Tls(Box::new(tls)),
                None => return fail("ERROR: TLS handshake failed"),
            }
        } else {
            Conn::Plain(tcp)
        };
        let id = self.next;
        self.next += 1;
        self.conns.insert(id, conn);
        Reply::Answer(json!({"ok": true, "sock": id}))
    }
}

/// NSE's `host` table as a dictionary.
pub(crate) fn host_json(h: &HostResult) -> Value {
    let mut m = Map::new();
    m.insert("ip".into(), json!(h.addr.to_string()));
    let ptr = h.hostnames.iter().find(|n| n.kind == HostnameKind::Ptr).map(|n| n.name.clone());
    m.insert("name".into(), json!(ptr.unwrap_or_default()));
    if let Some(user) = h.hostnames.iter().find(|n| n.kind == HostnameKind::User) {
        m.insert("targetname".into(), json!(user.name));
    }
    if let Some(mac) = &h.mac {
        m.insert("mac_addr".into(), json!(mac));
    }
    let os: Vec<Value> = h.os.iter().map(|g| json!({"name": g.name, "accuracy": g.accuracy})).collect();
    m.insert("os".into(), Value::Array(os));
    Value::Object(m)
}

/// NSE's `port` table as a dictionary.
pub(crate) fn port_json(p: &PortResult) -> Value {
    let mut version = Map::new();
    if let Some(s) = &p.service {
        version.insert("name".into(), json!(s.name));
        version.insert("name_confidence".into(), json!(s.conf));
        for (key, value) in [
            ("product", &s.product),
            ("version", &s.version),
            ("extrainfo", &s.extrainfo),
            ("hostname", &s.hostname),
            ("ostype", &s.ostype),
            ("devicetype", &s.devicetype),
            ("service_tunnel", &s.tunnel),
        ] {
            if let Some(v) = value {
                version.insert(key.into(), json!(v));
            }
        }
        version.insert("cpe".into(), json!(s.cpe));
    }
    if p.tls.is_some() && !version.contains_key("service_tunnel") {
        version.insert("service_tunnel".into(), json!("ssl"));
    }
    json!({
        "number": p.port,
        "protocol": p.protocol.as_str(),
        "state": p.state.as_str(),
        "reason": p.reason.as_str(),
        "service": p.service.as_ref().map(|s| s.name.clone()),
        "version": Value::Object(version),
    })
}

/// The tree of a worker's `{"table": [[key or null, value], ...]}` (values strings or tables).
fn node(v: &Value, depth: usize) -> Option<Node> {
    match v {
        Value::String(s) => Some(Node::Leaf(s.clone())),
        Value::Object(m) if depth < MAX_DEPTH => {
            let entries = m.get("table")?.as_array()?;
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let pair = e.as_array()?;
                let key = pair.first()?.as_str().map(str::to_string);
                out.push((key, node(pair.get(1)?, depth + 1)?));
            }
            Some(Node::Table(out))
        }
        _ => None,
    }
}

/// The script's output from the worker's `done` message.
pub(crate) fn result(id: &str, v: &Value, limit: usize) -> Result<Option<ScriptResult>, ScriptError> {
    let malformed = || ScriptError::Runtime { message: "worker protocol: malformed result".into() };
    match v {
        Value::Null => Ok(None),
        Value::Object(m) if m.contains_key("text") => {
            let text = m.get("text").and_then(Value::as_str).ok_or_else(malformed)?;
            render::from_parts(id, Some(text.to_string()), None, limit)
        }
        other => render::from_parts(id, None, Some(node(other, 0).ok_or_else(malformed)?), limit),
    }
}
