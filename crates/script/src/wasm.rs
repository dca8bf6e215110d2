//! WASM scripts (feature `wasm`): a WebAssembly module run by wasmi, with fuel metering (the
//! run's instruction budget) and a memory limit (the run's memory limit), on a blocking thread
//! under the run's wall-clock timeout. The module's only way out is the import set below
//! (module `rustmap`): sockets to the scan's targets (the same [`crate::Targets`] check as Lua
//! and Python scripts, and a non-target stops the run), its output, script arguments and a log.
//! There is no WASI: no files, clock, environment or randomness.
//!
//! The ABI (also in docs/wasm-scripts.md). Pointers and lengths are `i32` into the exported
//! `memory`. Every rule and the action is exported as `(port: i32, proto: i32) -> i32`, with
//! `port` the port number and `proto` 6 (tcp), 17 (udp), 132 (sctp), both 0 outside a port.
//! A rule returns non-zero to run the action; the action returns 0 (anything else is a runtime
//! error). Imports, all in module `rustmap`:
//!
//! | import | signature | does |
//! |---|---|---|
//! | `host_ip` | `(buf, cap) -> len` | the host's address as text |
//! | `service` | `(buf, cap) -> len` | the port's service name (`""` when unknown) |
//! | `arg` | `(key, key_len, buf, cap) -> len` | a `--script-args` value (`key`, then `<id>.key`), -1 if absent |
//! | `connect` | `(addr, addr_len, port) -> handle` | TCP connect to a target (address or name) |
//! | `send` | `(handle, buf, len) -> sent` | writes all of `buf` |
//! | `recv` | `(handle, buf, cap, timeout_ms) -> n` | reads once: n > 0 bytes, 0 at end of stream |
//! | `close` | `(handle) -> 0` | closes |
//! | `output` | `(buf, len)` | appends to the script's text output |
//! | `field` | `(key, key_len, val, val_len)` | appends a `key: value` element (structured output, in order) |
//! | `log` | `(buf, len)` | a line for the run's trace |
//!
//! Functions returning a length return the full length even when it is larger than `cap` (and
//! then write nothing), so a script can retry with a larger buffer. Negative returns are errors:
//! [`ERR_GENERIC`], [`ERR_TIMEOUT`], [`ERR_REFUSED`], [`ERR_HANDLE`], [`ERR_MEMORY`],
//! [`ERR_LIMIT`]. Stops that a script must not survive are traps: a connect to a non-target
//! ([`ScriptError::NotATarget`]), output over the limit ([`ScriptError::OutputTooLarge`]),
//! fuel exhausted ([`ScriptError::InstructionBudget`]), memory or tables grown past the limit
//! ([`ScriptError::MemoryLimit`]).
//!
//! Metadata: a custom section named `rustmap` holding a JSON object with `description`,
//! `categories`, `author`, `license`, `dependencies`; rules are the exports present.

use crate::error::ScriptError;
use crate::libs::Context;
use crate::render::{self, Node};
use crate::sandbox::Limits;
use crate::script::{Kind, Origin, Rules, Script, WasmCode};
use rustmap_model::{HostResult, PortResult, Protocol, ScriptResult};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmi::{Caller, Config, Engine, Extern, Linker, Module, ResourceLimiter, Store, TrapCode};
use wasmi_core::LimiterError;

/// A failure that is not one of the others.
pub const ERR_GENERIC: i32 = -1;
/// The operation timed out.
pub const ERR_TIMEOUT: i32 = -2;
/// The connection was refused (or reset).
pub const ERR_REFUSED: i32 = -3;
/// No such socket handle.
pub const ERR_HANDLE: i32 = -4;
/// A pointer or length outside the module's memory.
pub const ERR_MEMORY: i32 = -5;
/// Too many sockets, or a buffer larger than a call may move.
pub const ERR_LIMIT: i32 = -6;

/// Most sockets open at once.
const MAX_SOCKETS: usize = 16;
/// Most bytes one call copies in or out of the module.
const MAX_COPY: usize = 1024 * 1024;
/// Largest metadata section read.
const MAX_META: usize = 64 * 1024;
/// Most table elements a module may have.
const MAX_TABLE: usize = 100_000;

/// The engine every WASM run shares: fuel metering on.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::default();
        config.consume_fuel(true);
        Engine::new(&config)
    })
}

fn load_error(id: &str, what: impl std::fmt::Display) -> ScriptError {
    ScriptError::Load { message: format!("{id}: {what}") }
}

/// A WASM script from its bytes: the binary format, or the text format (compiled here).
pub(crate) fn parse(id: &str, bytes: &[u8], origin: Origin) -> Result<Script, ScriptError> {
    let binary = if bytes.starts_with(b"\0asm") {
        bytes.to_vec()
    } else {
        wat::parse_bytes(bytes).map_err(|e| load_error(id, e))?.into_owned()
    };
    let module = Module::new(engine(), &binary).map_err(|e| load_error(id, e))?;
    let exported: Vec<String> = module
        .exports()
        .filter(|e| matches!(e.ty(), wasmi::ExternType::Func(_)))
        .map(|e| e.name().to_string())
        .collect();
    let has = |name: &str| exported.iter().any(|e| e == name);
    if !has("action") {
        return Err(load_error(id, "no action export"));
    }
    let rules = Rules {
        prerule: has("prerule"),
        hostrule: has("hostrule"),
        portrule: has("portrule"),
        postrule: has("postrule"),
    };
    if rules == Rules::default() {
        return Err(load_error(id, "no rule export"));
    }
    let meta = module
        .custom_sections()
        .find(|s| s.name() == "rustmap")
        .map(|s| s.data())
        .filter(|d| d.len() <= MAX_META)
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(d).ok())
        .unwrap_or(serde_json::Value::Null);
    let text = |key: &str| meta.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let list = |key: &str| -> Vec<String> {
        match meta.get(key) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    Ok(Script {
        id: id.to_string(),
        origin,
        source: "".into(),
        description: text("description"),
        categories: list("categories"),
        author: list("author"),
        license: text("license"),
        dependencies: list("dependencies"),
        rules,
        kind: Kind::Wasm,
        wasm: Some(WasmCode(binary.into())),
    })
}

/// One run's request.
pub(crate) struct Job {
    pub(crate) script: Script,
    pub(crate) ctx: Arc<Context>,
    pub(crate) limits: Limits,
    /// The export to call first: `prerule`, `hostrule`, `portrule` or `postrule`.
    pub(crate) rule: &'static str,
    pub(crate) host: Option<Arc<HostResult>>,
    pub(crate) port: Option<PortResult>,
}

/// What a run gave (`Ok(None)`: the rule declined) and its trace.
pub(crate) type Ran = (Result<Option<Result<Option<ScriptResult>, ScriptError>>, ScriptError>, Vec<String>);

/// A run's state, the store's data: what the imports work with and the first stop.
struct State {
    ctx: Arc<Context>,
    id: String,
    memory_limit: usize,
    output_limit: usize,
    deadline: Instant,
    host_ip: String,
    service: String,
    conns: HashMap<i32, TcpStream>,
    next: i32,
    output: Vec<u8>,
    fields: Vec<(Option<String>, Node)>,
    /// Bytes of output and fields so far.
    out_size: usize,
    trace: Vec<String>,
    /// The first stop (a trap the script caused by its own rule-breaking).
    stop: Option<ScriptError>,
}

impl State {
    fn stop(&mut self, err: ScriptError) -> wasmi::Error {
        let text = err.to_string();
        self.stop.get_or_insert(err);
        wasmi::Error::new(text)
    }
}

impl ResourceLimiter for State {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool, LimiterError> {
        if desired > self.memory_limit {
            // A trap rather than a failed grow (-1): the limit is a stop, as for Lua scripts.
            self.stop.get_or_insert(ScriptError::MemoryLimit { limit: self.memory_limit });
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool, LimiterError> {
        if desired > MAX_TABLE {
            self.stop.get_or_insert(ScriptError::MemoryLimit { limit: self.memory_limit });
            return Err(LimiterError::ResourceLimiterDeniedAllocation);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// `len` bytes at `ptr` of the caller's memory; `None` if out of bounds or too large.
fn read(caller: &Caller<'_, State>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let (ptr, len) = (usize::try_from(ptr).ok()?, usize::try_from(len).ok()?);
    if len > MAX_COPY {
        return None;
    }
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else { return None };
    let mut buf = vec![0u8; len];
    memory.read(caller, ptr, &mut buf).ok()?;
    Some(buf)
}

/// Writes `data` at `buf` if it fits in `cap`; returns its length, or an error code.
fn write(caller: &mut Caller<'_, State>, buf: i32, cap: i32, data: &[u8]) -> i32 {
    let Ok(len) = i32::try_from(data.len()) else { return ERR_LIMIT };
    if len > cap {
        return len;
    }
    let (Ok(ptr), Some(Extern::Memory(memory))) = (usize::try_from(buf), caller.get_export("memory")) else {
        return ERR_MEMORY;
    };
    match memory.write(caller, ptr, data) {
        Ok(()) => len,
        Err(_) => ERR_MEMORY,
    }
}

/// Time left before the run's deadline, at most `cap`, and at least a millisecond (a zero
/// timeout means "none" to std's sockets).
fn left(state: &State, cap: Duration) -> Duration {
    state.deadline.saturating_duration_since(Instant::now()).min(cap).max(Duration::from_millis(1))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn charge_output(state: &mut State, n: usize) -> Result<(), wasmi::Error> {
    state.out_size = state.out_size.saturating_add(n);
    if state.out_size > state.output_limit {
        let limit = state.output_limit;
        return Err(state.stop(ScriptError::OutputTooLarge { limit }));
    }
    Ok(())
}

/// The `rustmap` import set.
fn linker() -> Result<Linker<State>, wasmi::Error> {
    let mut l = Linker::<State>::new(engine());
    l.func_wrap("rustmap", "host_ip", |mut c: Caller<'_, State>, buf: i32, cap: i32| -> i32 {
        let ip = c.data().host_ip.clone();
        write(&mut c, buf, cap, ip.as_bytes())
    })?;
    l.func_wrap("rustmap", "service", |mut c: Caller<'_, State>, buf: i32, cap: i32| -> i32 {
        let s = c.data().service.clone();
        write(&mut c, buf, cap, s.as_bytes())
    })?;
    l.func_wrap("rustmap", "arg", |mut c: Caller<'_, State>, key: i32, key_len: i32, buf: i32, cap: i32| -> i32 {
        let Some(key) = read(&c, key, key_len) else { return ERR_MEMORY };
        let key = text(&key);
        let scoped = format!("{}.{key}", c.data().id);
        let value = c.data().ctx.args.entries.iter().find_map(|(k, v)| match (k, v) {
            (Some(k), crate::args::ArgValue::Str(s)) if *k == key || *k == scoped => Some(s.clone()),
            _ => None,
        });
        match value {
            Some(v) => write(&mut c, buf, cap, v.as_bytes()),
            None => -1,
        }
    })?;
    l.func_wrap(
        "rustmap",
        "connect",
        |mut c: Caller<'_, State>, addr: i32, len: i32, port: i32| -> Result<i32, wasmi::Error> {
            let Some(addr) = read(&c, addr, len.min(256)) else { return Ok(ERR_MEMORY) };
            let addr = text(&addr);
            let Some(ip) = c.data().ctx.targets.resolve(&addr) else {
                return Err(c.data_mut().stop(ScriptError::NotATarget { addr }));
            };
            let Ok(port) = u16::try_from(port) else { return Ok(ERR_GENERIC) };
            if c.data().conns.len() >= MAX_SOCKETS {
                return Ok(ERR_LIMIT);
            }
            let target = SocketAddr::new(ip, port);
            if c.data().ctx.trace {
                c.data_mut().trace.push(format!("WASM CONNECT {target}"));
            }
            let timeout = left(c.data(), Duration::from_secs(30));
            let stream = match TcpStream::connect_timeout(&target, timeout) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(ERR_TIMEOUT),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(ERR_REFUSED),
                Err(_) => return Ok(ERR_GENERIC),
            };
            let state = c.data_mut();
            let handle = state.next;
            state.next = state.next.saturating_add(1);
            state.conns.insert(handle, stream);
            Ok(handle)
        },
    )?;
    l.func_wrap("rustmap", "send", |c: Caller<'_, State>, h: i32, buf: i32, len: i32| -> i32 {
        let Some(data) = read(&c, buf, len) else { return ERR_MEMORY };
        let timeout = left(c.data(), Duration::from_secs(30));
        let mut c = c;
        let Some(stream) = c.data_mut().conns.get_mut(&h) else { return ERR_HANDLE };
        if stream.set_write_timeout(Some(timeout)).is_err() {
            return ERR_GENERIC;
        }
        match stream.write_all(&data) {
            Ok(()) => data.len() as i32,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => ERR_TIMEOUT,
            Err(_) => ERR_REFUSED,
        }
    })?;
    l.func_wrap("rustmap", "recv", |mut c: Caller<'_, State>, h: i32, buf: i32, cap: i32, timeout_ms: i32| -> i32 {
        let Ok(cap) = usize::try_from(cap) else { return ERR_MEMORY };
        let mut data = vec![0u8; cap.min(MAX_COPY)];
        let wanted = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0).max(1));
        let timeout = left(c.data(), wanted);
        let Some(stream) = c.data_mut().conns.get_mut(&h) else { return ERR_HANDLE };
        if stream.set_read_timeout(Some(timeout)).is_err() {
            return ERR_GENERIC;
        }
        let n = match stream.read(&mut data) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return ERR_TIMEOUT
            }
            Err(_) => return ERR_REFUSED,
        };
        if c.data().ctx.trace {
            c.data_mut().trace.push(format!("WASM RECV {n} bytes"));
        }
        write(&mut c, buf, i32::try_from(n).unwrap_or(0), &data[..n])
    })?;
    l.func_wrap("rustmap", "close", |mut c: Caller<'_, State>, h: i32| -> i32 {
        match c.data_mut().conns.remove(&h) {
            Some(_) => 0,
            None => ERR_HANDLE,
        }
    })?;
    l.func_wrap("rustmap", "output", |mut c: Caller<'_, State>, buf: i32, len: i32| -> Result<(), wasmi::Error> {
        let Some(data) = read(&c, buf, len) else {
            return Err(wasmi::Error::new("output: pointer outside memory"));
        };
        charge_output(c.data_mut(), data.len())?;
        c.data_mut().output.extend_from_slice(&data);
        Ok(())
    })?;
    l.func_wrap(
        "rustmap",
        "field",
        |mut c: Caller<'_, State>, k: i32, kl: i32, v: i32, vl: i32| -> Result<(), wasmi::Error> {
            let (Some(key), Some(value)) = (read(&c, k, kl), read(&c, v, vl)) else {
                return Err(wasmi::Error::new("field: pointer outside memory"));
            };
            charge_output(c.data_mut(), key.len() + value.len())?;
            c.data_mut().fields.push((Some(text(&key)), Node::Leaf(text(&value))));
            Ok(())
        },
    )?;
    l.func_wrap("rustmap", "log", |mut c: Caller<'_, State>, buf: i32, len: i32| {
        if let Some(data) = read(&c, buf, len.min(512)) {
            let trace = &mut c.data_mut().trace;
            if trace.len() < crate::sandbox::Trace::MAX_LINES {
                trace.push(render::sanitize(&text(&data)));
            }
        }
    })?;
    Ok(l)
}

/// The error a failed call means: the recorded stop first, then the trap's kind.
fn classify(state: &mut State, e: &wasmi::Error, budget: u64) -> ScriptError {
    if let Some(stop) = state.stop.take() {
        return stop;
    }
    match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => ScriptError::InstructionBudget { budget },
        Some(TrapCode::StackOverflow) => ScriptError::StackOverflow,
        Some(TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory) => {
            ScriptError::MemoryLimit { limit: state.memory_limit }
        }
        Some(code) => ScriptError::Runtime { message: format!("trap: {code}") },
        None => ScriptError::Runtime { message: e.to_string().chars().take(512).collect() },
    }
}

fn proto_number(p: Protocol) -> i32 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        _ => 132,
    }
}

/// Runs `job` on a blocking thread (wasmi is synchronous and the imports block on sockets)
/// under the wall-clock limit. A run past its deadline is abandoned: its thread still ends by
/// itself, when its fuel runs out or its next import call finds the deadline passed.
pub(crate) async fn run(job: Job) -> Ran {
    let after = job.limits.timeout;
    let task = tokio::task::spawn_blocking(move || run_blocking(job));
    match tokio::time::timeout(after, task).await {
        Ok(Ok(ran)) => ran,
        Ok(Err(_)) => (Err(ScriptError::Runtime { message: "WASM run panicked".into() }), Vec::new()),
        Err(_) => (Err(ScriptError::Timeout { after }), Vec::new()),
    }
}

fn run_blocking(job: Job) -> Ran {
    let Some(WasmCode(binary)) = &job.script.wasm else {
        return (Err(load_error(&job.script.id, "no module")), Vec::new());
    };
    let id = job.script.id.clone();
    let module = match Module::new(engine(), &binary[..]) {
        Ok(m) => m,
        Err(e) => return (Err(load_error(&id, e)), Vec::new()),
    };
    let state = State {
        ctx: job.ctx.clone(),
        id: id.clone(),
        memory_limit: job.limits.memory_bytes,
        output_limit: job.limits.output_bytes,
        deadline: Instant::now() + job.limits.timeout,
        host_ip: job.host.as_ref().map(|h| h.addr.to_string()).unwrap_or_default(),
        service: job.port.as_ref().and_then(|p| p.service.as_ref()).map(|s| s.name.clone()).unwrap_or_default(),
        conns: HashMap::new(),
        next: 1,
        output: Vec::new(),
        fields: Vec::new(),
        out_size: 0,
        trace: Vec::new(),
        stop: None,
    };
    let mut store = Store::new(engine(), state);
    store.limiter(|s| s as &mut dyn ResourceLimiter);
    let budget = job.limits.instructions;
    if let Err(e) = store.set_fuel(budget) {
        return (Err(ScriptError::Runtime { message: e.to_string() }), Vec::new());
    }
    let ran = (|| {
        let linker = linker().map_err(|e| ScriptError::Runtime { message: e.to_string() })?;
        let instance = match linker.instantiate_and_start(&mut store, &module) {
            Ok(i) => i,
            Err(e) if store.data().stop.is_some() || e.as_trap_code().is_some() => {
                return Err(classify(store.data_mut(), &e, budget))
            }
            Err(e) => return Err(load_error(&id, e)),
        };
        let args = job.port.as_ref().map(|p| (i32::from(p.port), proto_number(p.protocol))).unwrap_or((0, 0));
        let typed = |name: &str| {
            instance
                .get_typed_func::<(i32, i32), i32>(&store, name)
                .map_err(|_| load_error(&id, format!("{name} must be exported as (i32, i32) -> i32")))
        };
        let (rule, action) = (typed(job.rule)?, typed("action")?);
        match rule.call(&mut store, args) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(classify(store.data_mut(), &e, budget)),
        }
        let outcome = match action.call(&mut store, args) {
            Ok(0) => {
                let s = store.data_mut();
                let text = (!s.output.is_empty()).then(|| text(&s.output));
                let node = (!s.fields.is_empty()).then(|| Node::Table(std::mem::take(&mut s.fields)));
                render::from_parts(&id, text, node, job.limits.output_bytes)
            }
            Ok(code) => Err(ScriptError::Runtime { message: format!("action returned {code}") }),
            Err(e) => Err(classify(store.data_mut(), &e, budget)),
        };
        Ok(Some(outcome))
    })();
    let trace = std::mem::take(&mut store.data_mut().trace);
    (ran, trace)
}
