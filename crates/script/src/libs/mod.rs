//! The libraries scripts `require`, under NSE's names: `nmap` (sockets, registry, clock),
//! `base64`, `json`, `ipOps` and `openssl` (digests) are Rust; `stdnse`, `shortport`, `http`,
//! `comm`, `ssh2`, `url`, `tab`, `strbuf`, `match`, `ntlm` and `smb`
//! are Lua sources in `src/lua/`, written here from the NSE API documentation. `require` is the
//! sandbox's only way to load code by name: anything but these and the standard tables is
//! [`ScriptError::Forbidden`].

mod codec;
mod ipops;
pub(crate) mod nmap;
mod openssl;
mod registry;

pub use registry::{Plain, Registry};

use crate::args::{ArgValue, ScriptArgs};
use crate::error::ScriptError;
use crate::sandbox::{Abort, Sandbox};
use mlua::{Lua, Table, Value};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The addresses scripts may connect to: the scan's targets, by address and by the names the
/// user gave for them. Nothing else is reachable, and names are never resolved from a script.
///
/// Shared: clones see the same set, so a scan can add each host as it reaches the scripts
/// stage (a scan's target list may be a /8, too large to hold up front).
#[derive(Debug, Clone, Default)]
pub struct Targets(Arc<std::sync::RwLock<TargetSet>>);

#[derive(Debug, Default)]
struct TargetSet {
    addrs: HashSet<IpAddr>,
    names: HashMap<String, IpAddr>,
}

impl Targets {
    /// Targets from addresses.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Targets {
        let set = TargetSet { addrs: addrs.into_iter().collect(), names: HashMap::new() };
        Targets(Arc::new(std::sync::RwLock::new(set)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, TargetSet> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TargetSet> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a target by address.
    pub fn add(&self, addr: IpAddr) {
        self.write().addrs.insert(addr);
    }

    /// Adds a target known by name (the name the user typed, or its reverse-DNS name).
    pub fn add_name(&self, name: &str, addr: IpAddr) {
        let mut set = self.write();
        set.addrs.insert(addr);
        set.names.insert(name.to_ascii_lowercase(), addr);
    }

    /// Whether `addr` is a target.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.read().addrs.contains(&addr)
    }

    /// The target named `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<IpAddr> {
        self.read().names.get(&name.to_ascii_lowercase()).copied()
    }

    /// The target `text` names (an address or a target's name), or `None`: the one check every
    /// kind of script's connect goes through. No DNS: a name that is not a target's could
    /// resolve anywhere.
    pub fn resolve(&self, text: &str) -> Option<IpAddr> {
        let addr = text.parse::<IpAddr>().ok().or_else(|| self.by_name(text))?;
        self.contains(addr).then_some(addr)
    }

    /// Whether any target is IPv6.
    pub fn any_v6(&self) -> bool {
        self.read().addrs.iter().any(IpAddr::is_ipv6)
    }
}

/// What the libraries of one script run know of the scan.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Where the script may connect.
    pub targets: Targets,
    /// `--script-args`.
    pub args: ScriptArgs,
    /// `-v` level.
    pub verbosity: u8,
    /// `-d` level.
    pub debugging: u8,
    /// `--script-trace`: record socket traffic in each run's trace.
    pub trace: bool,
    /// `nmap.registry`, shared by the scan's scripts.
    pub registry: Registry,
    /// Each host's `host.registry`, shared by the scripts that run on that host.
    pub host_registries: Arc<Mutex<HashMap<IpAddr, Registry>>>,
    /// Canned replies instead of the network, for fuzzing the libraries' and scripts' parsers
    /// (`fuzz/fuzz_targets/script_replies.rs`). No front-end sets it.
    pub replay: Option<Replay>,
}

/// The peer's side of every connection a run makes, read in order from one queue: a connect
/// (TCP, TLS or UDP) succeeds without touching the network, sends are swallowed, and each read
/// returns the next reply (at most the read's size; the rest stays queued); an empty queue is
/// the peer closing. The target rule still applies to the connect.
#[derive(Debug, Clone, Default)]
pub struct Replay(Arc<Mutex<std::collections::VecDeque<Vec<u8>>>>);

impl Replay {
    /// A queue holding `replies`.
    pub fn new(replies: impl IntoIterator<Item = Vec<u8>>) -> Replay {
        Replay(Arc::new(Mutex::new(replies.into_iter().collect())))
    }

    /// Up to `buf.len()` bytes of the next reply; 0 when none is left.
    pub(crate) fn read(&self, buf: &mut [u8]) -> usize {
        let mut queue = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut reply) = queue.pop_front() else { return 0 };
        let n = reply.len().min(buf.len());
        buf[..n].copy_from_slice(&reply[..n]);
        if n < reply.len() {
            queue.push_front(reply.split_off(n));
        }
        n
    }
}

impl Context {
    /// The registry of `addr`'s host table.
    pub fn host_registry(&self, addr: IpAddr) -> Registry {
        self.host_registries.lock().unwrap_or_else(|p| p.into_inner()).entry(addr).or_default().clone()
    }
}

const LUA_LIBS: &[(&str, &str)] = &[
    ("stdnse", include_str!("../lua/stdnse.lua")),
    ("shortport", include_str!("../lua/shortport.lua")),
    ("http", include_str!("../lua/http.lua")),
    ("url", include_str!("../lua/url.lua")),
    ("tab", include_str!("../lua/tab.lua")),
    ("strbuf", include_str!("../lua/strbuf.lua")),
    ("match", include_str!("../lua/match.lua")),
    ("comm", include_str!("../lua/comm.lua")),
    ("ssh2", include_str!("../lua/ssh2.lua")),
    ("sslcert", include_str!("../lua/sslcert.lua")),
    ("mqtt", include_str!("../lua/mqtt.lua")),
    ("ber", include_str!("../lua/ber.lua")),
    ("snmp", include_str!("../lua/snmp.lua")),
    ("sip", include_str!("../lua/sip.lua")),
    ("ldap", include_str!("../lua/ldap.lua")),
    ("dns", include_str!("../lua/dns.lua")),
    ("ntlm", include_str!("../lua/ntlm.lua")),
    ("smb", include_str!("../lua/smb.lua")),
];

const LOADED: &str = "rustmap.loaded";

/// Most `stdnse.new_thread` threads one run may start.
const MAX_THREADS: usize = 64;

/// Copies the run's `nmap.registry` back to the scan's (if the run loaded `nmap`).
pub fn store_registry(lua: &Lua, ctx: &Context) {
    let Ok(loaded) = lua.named_registry_value::<Table>(LOADED) else { return };
    let Ok(Some(nmap)) = loaded.get::<Option<Table>>("nmap") else { return };
    if let Ok(Some(reg)) = nmap.get::<Option<Table>>("registry") {
        ctx.registry.store(&reg, "args");
    }
}

/// A change a script made to a port with `nmap.set_port_state` / `nmap.set_port_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChange {
    /// The port's protocol, as the script's port table named it (`tcp`, `udp`, `sctp`).
    pub protocol: String,
    /// The port.
    pub port: u16,
    /// A new state (`open`, `closed`, ...), as the script spelt it.
    pub state: Option<String>,
    /// New version fields, by NSE's names (`name`, `product`, `version`, `extrainfo`,
    /// `hostname`, `ostype`, `devicetype`, `service_tunnel`).
    pub version: Vec<(String, String)>,
}

/// Most port changes read from one run, and the longest field kept.
const MAX_CHANGES: usize = 64;
const MAX_FIELD: usize = 256;

/// The port changes the run recorded (if it loaded `nmap`), bounded and sanitized.
pub fn port_changes(lua: &Lua) -> Vec<PortChange> {
    let Ok(loaded) = lua.named_registry_value::<Table>(LOADED) else { return Vec::new() };
    let Ok(Some(nmap)) = loaded.get::<Option<Table>>("nmap") else { return Vec::new() };
    let Ok(Some(list)) = nmap.get::<Option<Table>>("__rm_port_changes") else { return Vec::new() };
    let text = |t: &Table, key: &str| -> Option<String> {
        let s = t.get::<Option<mlua::String>>(key).ok().flatten()?;
        let bytes = s.as_bytes();
        let cut = &bytes[..bytes.len().min(MAX_FIELD)];
        Some(crate::render::sanitize(&String::from_utf8_lossy(cut)))
    };
    let mut out = Vec::new();
    for entry in list.sequence_values::<Table>().take(MAX_CHANGES).flatten() {
        let (Some(port), Some(protocol)) =
            (entry.get::<Option<u16>>("number").ok().flatten(), text(&entry, "protocol"))
        else {
            continue;
        };
        let mut version = Vec::new();
        if let Ok(Some(v)) = entry.get::<Option<Table>>("version") {
            for key in ["name", "product", "version", "extrainfo", "hostname", "ostype", "devicetype", "service_tunnel"]
            {
                if let Some(value) = text(&v, key) {
                    version.push((key.to_string(), value));
                }
            }
        }
        out.push(PortChange { protocol, port, state: text(&entry, "state"), version });
    }
    out
}

/// Installs `require` (and through it every library) in `sandbox`.
pub fn install(sandbox: &Sandbox, ctx: Arc<Context>) -> mlua::Result<()> {
    let lua = sandbox.lua();
    lua.set_named_registry_value(LOADED, lua.create_table()?)?;
    let abort = sandbox.abort().clone();
    let require = lua.create_function(move |lua, name: String| -> mlua::Result<Table> {
        let loaded: Table = lua.named_registry_value(LOADED)?;
        if let Some(m) = loaded.get::<Option<Table>>(name.as_str())? {
            return Ok(m);
        }
        let m = build(lua, &name, &ctx, &abort)?;
        loaded.set(name.as_str(), &m)?;
        Ok(m)
    })?;
    lua.globals().set("require", require)
}

fn build(lua: &Lua, name: &str, ctx: &Arc<Context>, abort: &Abort) -> mlua::Result<Table> {
    match name {
        "string" | "table" | "math" | "coroutine" | "utf8" => lua.globals().get(name),
        "nmap" => {
            let m = nmap::module(lua, ctx, abort, args_table(lua, &ctx.args.entries, 0)?)?;
            lua.load(include_str!("../lua/nmap.lua"))
                .set_name("=nmap")
                .set_mode(mlua::ChunkMode::Text)
                .call::<()>(&m)?;
            Ok(m)
        }
        "base64" => codec::base64(lua),
        "json" => codec::json(lua),
        "ipOps" => ipops::module(lua),
        "openssl" => openssl::module(lua),
        "stdnse" => lua_module(lua, name, core(lua, ctx)?),
        _ => match LUA_LIBS.iter().find(|(n, _)| *n == name) {
            Some(_) => lua_module(lua, name, Value::Nil),
            None => {
                let what = format!("require \"{name}\"");
                abort.set(ScriptError::Forbidden { what: what.clone() });
                Err(mlua::Error::runtime(format!("forbidden: {what}")))
            }
        },
    }
}

fn lua_module(lua: &Lua, name: &str, arg: impl mlua::IntoLuaMulti) -> mlua::Result<Table> {
    let source = LUA_LIBS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).unwrap_or("return {}");
    lua.load(source).set_name(format!("={name}")).set_mode(mlua::ChunkMode::Text).call(arg)
}

/// Primitives stdnse's Lua builds on.
fn core(lua: &Lua, ctx: &Context) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "sleep",
        lua.create_async_function(|_, secs: f64| async move {
            let secs = if secs.is_finite() { secs.clamp(0.0, 3600.0) } else { 0.0 };
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            Ok(())
        })?,
    )?;
    // stdnse.new_thread: the function runs as its own coroutine, driven by a tokio task next to
    // the script's, under the same sandbox (budget, hook, abort); aborted when the run ends.
    t.set(
        "new_thread",
        lua.create_function(|lua, (f, args): (mlua::Function, mlua::MultiValue)| {
            let workers = lua.app_data_ref::<crate::sandbox::Workers>();
            let Some(workers) = workers else { return Err(mlua::Error::runtime("no workers")) };
            let mut handles = workers.0.lock().unwrap_or_else(|p| p.into_inner());
            if handles.len() >= MAX_THREADS {
                return Err(mlua::Error::runtime(format!("more than {MAX_THREADS} threads")));
            }
            let thread = lua.create_thread(f)?;
            crate::sandbox::mark_driven(lua, &thread)?;
            let future = thread.clone().into_async::<()>(args)?;
            let errors = lua.create_table()?;
            let slot = errors.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = future.await {
                    let _ = slot.raw_set("error", e.to_string());
                }
            });
            handles.push(task.abort_handle());
            let info = lua.create_function(move |lua, ()| {
                let t = lua.create_table()?;
                t.set("error", errors.raw_get::<Value>("error")?)?;
                Ok(t)
            })?;
            Ok((thread, info))
        })?,
    )?;
    // Condition variables: a wait ends on a signal or after 100 ms (a spurious wakeup, which
    // condition-variable users must allow for), so a signal sent just before a wait is never
    // fatal.
    let notifies: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Notify>>>> = Arc::default();
    let n = notifies.clone();
    t.set(
        "cv_wait",
        lua.create_async_function(move |_, id: i64| {
            let notify = n.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone();
            async move {
                let _ = tokio::time::timeout(Duration::from_millis(100), notify.notified()).await;
                Ok(())
            }
        })?,
    )?;
    t.set(
        "cv_signal",
        lua.create_function(move |_, id: i64| {
            if let Some(notify) = notifies.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                notify.notify_waiters();
            }
            Ok(())
        })?,
    )?;
    // Debug and verbose messages go to the run's trace when their level is on (-d, -v).
    let (verbosity, debugging) = (ctx.verbosity, ctx.debugging);
    t.set(
        "log",
        lua.create_function(move |lua, (kind, level, msg): (String, i64, String)| {
            let on = if kind == "debug" { level <= i64::from(debugging) } else { level <= i64::from(verbosity) };
            if on {
                if let Some(t) = lua.app_data_ref::<crate::sandbox::Trace>() {
                    t.push(&format!("[{kind}{level}] {msg}"));
                }
            }
            Ok(())
        })?,
    )?;
    Ok(t)
}

/// `--script-args` as the Lua table `nmap.registry.args`.
fn args_table(lua: &Lua, entries: &[(Option<String>, ArgValue)], depth: usize) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let mut next = 1i64;
    for (key, value) in entries {
        let v = match value {
            ArgValue::Str(s) => Value::String(lua.create_string(s)?),
            ArgValue::Table(inner) if depth < 32 => Value::Table(args_table(lua, inner, depth + 1)?),
            ArgValue::Table(_) => Value::Nil,
        };
        match key {
            Some(k) => t.set(k.as_str(), v)?,
            None => {
                t.set(next, v)?;
                next += 1;
            }
        }
    }
    Ok(t)
}
