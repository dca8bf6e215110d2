//! The `nmap` library: NSE sockets (TCP through tokio, connecting only to the scan's targets),
//! the registry, the clock, verbosity and debugging levels, and `new_try`.
//!
//! `connect(host, port, "udp")` opens a connected UDP socket: `send` sends one datagram and
//! `receive` returns one (an ICMP port unreachable shows as `"ERROR: connection refused"`).
//! `connect(host, port, "ssl")` and `reconnect_ssl()` open TLS through rustmap-detect's rustls
//! client (any certificate accepted: we scan, we do not authenticate), and
//! `get_ssl_certificate()` describes the peer's leaf certificate as NSE's certificate table.
//!
//! Socket methods follow NSE's convention: they return `true[, result]` on success and
//! `false, message` on failure (`"TIMEOUT"`, `"EOF"`, `"ERROR: ..."`), never raise — except
//! for a connect to an address that is not a target, which stops the script with
//! [`ScriptError::NotATarget`]: that is a sandbox rule, not a network condition.

use super::Context;
use crate::error::ScriptError;
use crate::sandbox::Abort;
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;

/// A socket's connection: plain TCP, TLS over it, or connected UDP (also used by the Python
/// workers' sockets).
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Udp(UdpSocket),
    /// Canned replies ([`Context::replay`]), to the peer at this address.
    Replay(super::Replay, SocketAddr),
}

impl Conn {
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Udp(s) => s.recv(buf).await,
            Conn::Replay(r, _) => Ok(r.read(buf)),
        }
    }

    pub(crate) async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(buf).await,
            Conn::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Conn::Udp(s) => s.send(buf).await.map(|_| ()),
            Conn::Replay(..) => Ok(()),
        }
    }

    /// Local and peer address.
    fn addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        match self {
            Conn::Plain(s) => Ok((s.local_addr()?, s.peer_addr()?)),
            Conn::Tls(s) => Ok((s.get_ref().0.local_addr()?, s.get_ref().0.peer_addr()?)),
            Conn::Udp(s) => Ok((s.local_addr()?, s.peer_addr()?)),
            Conn::Replay(_, peer) => {
                let local = if peer.is_ipv4() {
                    IpAddr::from([127, 0, 0, 1])
                } else {
                    IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
                };
                Ok((SocketAddr::new(local, 49152), *peer))
            }
        }
    }

    /// Bytes one read asks for: a whole datagram on UDP.
    fn chunk_len(&self) -> usize {
        match self {
            Conn::Udp(_) => UDP_CHUNK,
            _ => CHUNK,
        }
    }
}

/// Opens a UDP socket connected to `target` (the kernel then drops datagrams from elsewhere).
async fn udp_to(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr =
        if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    Ok(socket)
}

/// NSE's default socket timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes one receive call buffers, whatever it was asked for.
const MAX_RECEIVE: usize = 1024 * 1024;
/// Size of one read from the network.
const CHUNK: usize = 16 * 1024;
/// The largest UDP datagram.
const UDP_CHUNK: usize = 65_536;

/// An NSE socket.
pub(crate) struct Socket {
    ctx: Arc<Context>,
    abort: Abort,
    stream: Option<Conn>,
    /// The peer's certificates (DER, leaf first) once TLS is up.
    certs: Vec<Vec<u8>>,
    timeout: Duration,
    /// Bytes read past what the last receive returned (receive_lines keeps whole reads).
    pending: Vec<u8>,
}

/// Where `connect` was pointed: a host table (its `ip`), an address or a target's name.
fn resolve(ctx: &Context, abort: &Abort, host: &Value) -> mlua::Result<IpAddr> {
    let text = match host {
        Value::Table(t) => t.get::<String>("ip")?,
        Value::String(s) => s.to_str()?.to_string(),
        _ => return Err(mlua::Error::runtime("connect: host must be a host table or a string")),
    };
    match ctx.targets.resolve(&text) {
        Some(ip) => Ok(ip),
        None => {
            abort.set(ScriptError::NotATarget { addr: text.clone() });
            Err(mlua::Error::runtime(format!("not a scan target: {text}")))
        }
    }
}

fn port_number(port: &Value) -> mlua::Result<u16> {
    match port {
        Value::Table(t) => t.get::<u16>("number"),
        Value::Integer(n) => u16::try_from(*n).map_err(|_| mlua::Error::runtime("connect: bad port")),
        Value::Number(n) if n.fract() == 0.0 && (0.0..=65535.0).contains(n) => Ok(*n as u16),
        Value::String(s) => s.to_str()?.parse().map_err(|_| mlua::Error::runtime("connect: bad port")),
        _ => Err(mlua::Error::runtime("connect: port must be a port table or a number")),
    }
}

/// Records socket traffic in the run's trace under `--script-trace`.
fn trace(lua: &Lua, ctx: &Context, what: &str, data: Option<&[u8]>) {
    if !ctx.trace {
        return;
    }
    if let Some(t) = lua.app_data_ref::<crate::sandbox::Trace>() {
        match data {
            Some(d) => {
                let shown = String::from_utf8_lossy(&d[..d.len().min(80)]).into_owned();
                t.push(&format!("NSOCK {what} {} bytes: {shown:?}", d.len()));
            }
            None => t.push(&format!("NSOCK {what}")),
        }
    }
}

fn fail(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Boolean(false), Value::String(lua.create_string(msg)?)]))
}

fn ok_with(lua: &Lua, data: &[u8]) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Boolean(true), Value::String(lua.create_string(data)?)]))
}

impl Socket {
    /// Reads until `done(buffer)` holds, the peer closes, or the timeout passes.
    async fn fill(&mut self, done: impl Fn(&[u8]) -> bool) -> Result<Vec<u8>, &'static str> {
        let deadline = Instant::now() + self.timeout;
        let stream = self.stream.as_mut().ok_or("ERROR: not connected")?;
        let mut buf = std::mem::take(&mut self.pending);
        let mut chunk = vec![0u8; stream.chunk_len()];
        while !done(&buf) && buf.len() < MAX_RECEIVE {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut chunk)).await {
                Err(_) if buf.is_empty() => return Err("TIMEOUT"),
                Err(_) => break,
                Ok(Ok(0)) if buf.is_empty() => return Err("EOF"),
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) if buf.is_empty() => return Err(io_failure(&e)),
                Ok(Err(_)) => break,
            }
        }
        Ok(buf)
    }
}

impl Socket {
    /// Reads once into `pending`, by `deadline`.
    async fn read_chunk(&mut self, deadline: Instant) -> Result<(), &'static str> {
        let stream = self.stream.as_mut().ok_or("ERROR: not connected")?;
        let mut chunk = vec![0u8; stream.chunk_len()];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => Err("TIMEOUT"),
            Ok(Ok(0)) => Err("EOF"),
            Ok(Ok(n)) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(io_failure(&e)),
        }
    }
}

/// NSE's message for a failed read: a refused UDP datagram (ICMP port unreachable) or a reset.
fn io_failure(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        "ERROR: connection refused"
    } else {
        "ERROR: connection reset"
    }
}

impl UserData for Socket {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method_mut(
            "connect",
            |lua, mut this, (host, port, proto): (Value, Value, Option<String>)| async move {
                let ip = resolve(&this.ctx, &this.abort, &host)?;
                let port = port_number(&port)?;
                if let Some(replay) = this.ctx.replay.clone() {
                    if !matches!(proto.as_deref().unwrap_or("tcp"), "tcp" | "ssl" | "udp") {
                        return fail(&lua, "ERROR: protocol not supported");
                    }
                    this.pending.clear();
                    this.certs.clear();
                    this.stream = Some(Conn::Replay(replay, SocketAddr::new(ip, port)));
                    return Ok(MultiValue::from_vec(vec![Value::Boolean(true)]));
                }
                let ssl = match proto.as_deref().unwrap_or("tcp") {
                    "tcp" => false,
                    "ssl" => true,
                    "udp" => {
                        let target = SocketAddr::new(ip, port);
                        trace(&lua, &this.ctx, &format!("CONNECT {target} udp"), None);
                        this.pending.clear();
                        this.certs.clear();
                        return match udp_to(target).await {
                            Ok(udp) => {
                                this.stream = Some(Conn::Udp(udp));
                                Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
                            }
                            Err(e) => fail(&lua, &format!("ERROR: {e}")),
                        };
                    }
                    other => return fail(&lua, &format!("ERROR: protocol {other} not supported")),
                };
                let timeout = this.timeout;
                let target = SocketAddr::new(ip, port);
                trace(&lua, &this.ctx, &format!("CONNECT {target} {}", if ssl { "ssl" } else { "tcp" }), None);
                let tcp = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
                    Err(_) => return fail(&lua, "TIMEOUT"),
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        return fail(&lua, "ERROR: connection refused")
                    }
                    Ok(Err(e)) => return fail(&lua, &format!("ERROR: {e}")),
                    Ok(Ok(tcp)) => tcp,
                };
                this.pending.clear();
                this.certs.clear();
                if ssl {
                    match rustmap_detect::tls::session(tcp, target, false, timeout).await {
                        Some(tls) => {
                            this.certs = rustmap_detect::tls::facts(&tls).certs;
                            this.stream = Some(Conn::Tls(Box::new(tls)));
                        }
                        None => return fail(&lua, "ERROR: TLS handshake failed"),
                    }
                } else {
                    this.stream = Some(Conn::Plain(tcp));
                }
                Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
            },
        );
        methods.add_async_method_mut("reconnect_ssl", |lua, mut this, ()| async move {
            let timeout = this.timeout;
            let tcp = match this.stream.take() {
                Some(Conn::Plain(tcp)) => tcp,
                Some(tls @ Conn::Tls(_)) => {
                    this.stream = Some(tls);
                    return fail(&lua, "ERROR: already TLS");
                }
                Some(udp @ Conn::Udp(_)) => {
                    this.stream = Some(udp);
                    return fail(&lua, "ERROR: TLS over UDP is not supported");
                }
                // Replayed replies stand for the plaintext inside the TLS session.
                Some(replay @ Conn::Replay(..)) => {
                    this.stream = Some(replay);
                    return Ok(MultiValue::from_vec(vec![Value::Boolean(true)]));
                }
                None => return fail(&lua, "ERROR: not connected"),
            };
            let Ok(target) = tcp.peer_addr() else { return fail(&lua, "ERROR: not connected") };
            this.pending.clear();
            match rustmap_detect::tls::session(tcp, target, false, timeout).await {
                Some(tls) => {
                    this.certs = rustmap_detect::tls::facts(&tls).certs;
                    this.stream = Some(Conn::Tls(Box::new(tls)));
                    Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
                }
                None => fail(&lua, "ERROR: TLS handshake failed"),
            }
        });
        methods.add_method("get_ssl_certificate", |lua, this, ()| match this.certs.first() {
            Some(der) => Ok(Value::Table(cert_table(lua, der)?)),
            None => Ok(Value::Nil),
        });
        methods.add_async_method_mut("send", |lua, mut this, data: mlua::String| async move {
            let timeout = this.timeout;
            let bytes = data.as_bytes().to_vec();
            trace(&lua, &this.ctx, "SEND", Some(&bytes));
            let Some(stream) = this.stream.as_mut() else { return fail(&lua, "ERROR: not connected") };
            match tokio::time::timeout(timeout, stream.write_all(&bytes)).await {
                Err(_) => fail(&lua, "TIMEOUT"),
                Ok(Err(e)) => fail(&lua, &format!("ERROR: {e}")),
                Ok(Ok(())) => Ok(MultiValue::from_vec(vec![Value::Boolean(true)])),
            }
        });
        methods.add_async_method_mut("receive", |lua, mut this, ()| async move {
            match this.fill(|b| !b.is_empty()).await {
                Ok(data) => {
                    trace(&lua, &this.ctx, "RECV", Some(&data));
                    ok_with(&lua, &data)
                }
                Err(e) => fail(&lua, e),
            }
        });
        methods.add_async_method_mut("receive_bytes", |lua, mut this, n: usize| async move {
            let n = n.max(1);
            match this.fill(|b| b.len() >= n).await {
                Ok(data) => {
                    trace(&lua, &this.ctx, "RECV", Some(&data));
                    ok_with(&lua, &data)
                }
                Err(e) => fail(&lua, e),
            }
        });
        methods.add_async_method_mut("receive_lines", |lua, mut this, n: usize| async move {
            let n = n.max(1);
            match this.fill(|b| b.iter().filter(|&&c| c == b'\n').count() >= n).await {
                Ok(data) => {
                    trace(&lua, &this.ctx, "RECV", Some(&data));
                    ok_with(&lua, &data)
                }
                Err(e) => fail(&lua, e),
            }
        });
        methods.add_async_method_mut("receive_buf", |lua, mut this, (delim, keep): (Value, Option<bool>)| async move {
            // NSE's delimiter: a Lua pattern (plain text is a pattern without magic
            // characters) or a function of the buffer returning start and end.
            let finder = match &delim {
                Value::String(p) if p.as_bytes().is_empty() => return fail(&lua, "ERROR: empty delimiter"),
                Value::String(_) => {
                    let string: Table = lua.globals().get("string")?;
                    string.get::<mlua::Function>("find")?
                }
                Value::Function(f) => f.clone(),
                _ => return fail(&lua, "ERROR: delimiter must be a pattern or a function"),
            };
            let pattern = matches!(delim, Value::String(_));
            let deadline = Instant::now() + this.timeout;
            loop {
                if !this.pending.is_empty() {
                    let buf = lua.create_string(&this.pending)?;
                    let (start, end): (Option<i64>, Option<i64>) =
                        if pattern { finder.call((buf, delim.clone()))? } else { finder.call(buf)? };
                    if let (Some(start), Some(end)) = (start, end) {
                        let len = this.pending.len() as i64;
                        let end = end.clamp(0, len) as usize;
                        let start = (start - 1).clamp(0, end as i64) as usize;
                        let rest = this.pending.split_off(end);
                        let mut data = std::mem::replace(&mut this.pending, rest);
                        if !keep.unwrap_or(false) {
                            data.truncate(start);
                        }
                        trace(&lua, &this.ctx, "RECV", Some(&data));
                        return ok_with(&lua, &data);
                    }
                    if this.pending.len() >= MAX_RECEIVE {
                        let data = std::mem::take(&mut this.pending);
                        trace(&lua, &this.ctx, "RECV", Some(&data));
                        return ok_with(&lua, &data);
                    }
                }
                match this.read_chunk(deadline).await {
                    Ok(()) => {}
                    Err("EOF") if !this.pending.is_empty() => {
                        let data = std::mem::take(&mut this.pending);
                        trace(&lua, &this.ctx, "RECV", Some(&data));
                        return ok_with(&lua, &data);
                    }
                    Err(e) => return fail(&lua, e),
                }
            }
        });
        methods.add_method_mut("set_timeout", |_, this, ms: i64| {
            this.timeout = Duration::from_millis(ms.clamp(1, 3_600_000) as u64);
            Ok(())
        });
        methods.add_method_mut("close", |lua, this, ()| {
            if this.stream.take().is_none() {
                return fail(lua, "ERROR: not connected");
            }
            Ok(MultiValue::from_vec(vec![Value::Boolean(true)]))
        });
        methods.add_method("get_info", |lua, this, ()| {
            let Some(stream) = this.stream.as_ref() else { return fail(lua, "ERROR: not connected") };
            let Ok((l, r)) = stream.addrs() else {
                return fail(lua, "ERROR: no addresses");
            };
            Ok(MultiValue::from_vec(vec![
                Value::Boolean(true),
                Value::String(lua.create_string(l.ip().to_string())?),
                Value::Integer(l.port().into()),
                Value::String(lua.create_string(r.ip().to_string())?),
                Value::Integer(r.port().into()),
            ]))
        });
    }
}

/// NSE's certificate table: `pem`, `subject` and `issuer` (by attribute name), `validity`
/// (`notBefore`, `notAfter`), `pubkey` (`type`, `bits`), `sig_algorithm`, `serial`,
/// `extensions` (the subject alternative names), and `digest(self, "sha256")`.
fn cert_table(lua: &Lua, der: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    let b64 = super::codec::b64_encode(der);
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    t.set("pem", pem)?;
    let Some(info) = rustmap_detect::cert::describe(der) else { return Ok(t) };
    for (field, name) in [("subject", &info.subject), ("issuer", &info.issuer)] {
        let n = lua.create_table()?;
        for (k, v) in name {
            n.set(k.as_str(), v.as_str())?;
        }
        t.set(field, n)?;
    }
    let validity = lua.create_table()?;
    validity.set("notBefore", info.not_before.as_str())?;
    validity.set("notAfter", info.not_after.as_str())?;
    t.set("validity", validity)?;
    let pubkey = lua.create_table()?;
    pubkey.set("type", info.key_type.as_str())?;
    pubkey.set("bits", info.key_bits)?;
    t.set("pubkey", pubkey)?;
    t.set("sig_algorithm", info.signature_algorithm.as_str())?;
    t.set("serial", info.serial.as_str())?;
    let extensions = lua.create_table()?;
    if !info.sans.is_empty() {
        let san = lua.create_table()?;
        san.set("name", "X509v3 Subject Alternative Name")?;
        san.set("value", info.sans.join(", "))?;
        extensions.set(1, san)?;
    }
    t.set("extensions", extensions)?;
    let hex: String = info.sha256.chars().filter(char::is_ascii_hexdigit).collect();
    let sha256: Vec<u8> =
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
    t.set(
        "digest",
        lua.create_function(move |lua, (_, algo): (Value, String)| match algo.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(Value::String(lua.create_string(&sha256)?)),
            _ => Ok(Value::Nil),
        })?,
    )?;
    Ok(t)
}

/// Builds the `nmap` table.
pub(crate) fn module(lua: &Lua, ctx: &Arc<Context>, abort: &Abort, args: Table) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    let (c, a) = (ctx.clone(), abort.clone());
    m.set(
        "new_socket",
        lua.create_function(move |_, _: MultiValue| {
            Ok(Socket {
                ctx: c.clone(),
                abort: a.clone(),
                stream: None,
                certs: Vec::new(),
                timeout: DEFAULT_TIMEOUT,
                pending: Vec::new(),
            })
        })?,
    )?;
    let registry = lua.create_table()?;
    ctx.registry.fill(lua, &registry)?;
    registry.set("args", args)?;
    m.set("registry", registry)?;
    let start = Instant::now();
    m.set("clock", lua.create_function(move |_, ()| Ok(start.elapsed().as_secs_f64()))?)?;
    m.set("clock_ms", lua.create_function(move |_, ()| Ok(start.elapsed().as_millis() as f64))?)?;
    let (v, d) = (ctx.verbosity, ctx.debugging);
    m.set("verbosity", lua.create_function(move |_, ()| Ok(v))?)?;
    m.set("debugging", lua.create_function(move |_, ()| Ok(d))?)?;
    let family = if ctx.targets.any_v6() { "inet6" } else { "inet" };
    m.set("address_family", lua.create_function(move |_, ()| Ok(family))?)?;
    m.set("is_privileged", lua.create_function(|_, ()| Ok(false))?)?;
    Ok(m)
}
