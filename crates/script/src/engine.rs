//! Running selected scripts: for each script and each host (hostrule) or port (portrule), a
//! fresh sandbox loads the script, evaluates its rule against NSE's host and port tables, and
//! runs its action as a coroutine on tokio — many at once, bounded by a semaphore — so a script
//! waiting on the network yields its thread to the others. A failed or stopped script gives a
//! typed error in its [`Outcome`]; the others go on.
//!
//! Python and WASM scripts go through the same runs, slots, levels and outcomes; only the
//! run itself differs (`python::run` in a worker process, `wasm::run` on a blocking
//! thread).

use crate::error::ScriptError;
use crate::libs::{self, Context};
use crate::python::{self, PyConfig};
use crate::render;
use crate::sandbox::{Limits, Sandbox};
use crate::script::{Kind, Script};
use crate::tables::{host_table, port_table};
use mlua::{Function, MultiValue, Value};
use rustmap_model::{HostResult, PortResult, PortState, ScanEvent, ScriptResult, ScriptScope};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// One script run's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Where it ran.
    pub scope: ScriptScope,
    /// The script's name.
    pub id: String,
    /// Its output (`None` when the action returned nothing), or why it has none.
    pub result: Result<Option<ScriptResult>, ScriptError>,
    /// What it printed or logged (at the scan's `-v`/`-d` levels), and its socket traffic under
    /// `--script-trace`.
    pub trace: Vec<String>,
    /// Port states and versions the script changed (`nmap.set_port_state`,
    /// `nmap.set_port_version`), for the scan to apply to its result; only after an action that
    /// succeeded.
    pub changes: Vec<libs::PortChange>,
}

impl Outcome {
    /// The event the scan's stream carries for this outcome: the output, or — when
    /// `show_errors` (nmap shows failures at `-d`) — a line naming the error's kind. `None` when
    /// the action returned nothing, or it failed and errors are not shown.
    pub fn into_event(self, show_errors: bool) -> Option<ScanEvent> {
        let result = match self.result {
            Ok(Some(result)) => result,
            Ok(None) => return None,
            Err(e) if show_errors => ScriptResult {
                id: self.id,
                output: format!("ERROR: Script execution failed ({}: {e})", e.kind()),
                elements: Vec::new(),
                table: Vec::new(),
            },
            Err(_) => return None,
        };
        Some(ScanEvent::ScriptOutput { scope: self.scope, result })
    }
}

/// Runs scripts against hosts.
#[derive(Debug, Clone)]
pub struct Engine {
    scripts: Arc<Vec<Script>>,
    ctx: Arc<Context>,
    limits: Limits,
    /// Each script's runlevel (1 + the highest runlevel of its selected dependencies); a level
    /// starts on a host only when the one before has finished there, as in NSE.
    levels: Arc<Vec<usize>>,
    /// Runs in flight asked for, before the memory cap.
    concurrency: usize,
    in_flight: usize,
    slots: Arc<Semaphore>,
    /// Python workers (started only when a Python script runs).
    python: Arc<python::Pool>,
}

/// Scripts in flight at once by default (nmap runs up to about this many threads too).
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Memory all script states together may hold by default: runs in flight are capped at this
/// divided by the per-run limit, so the process stays within it whatever the scripts do.
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pre,
    Host,
    Port,
    Post,
}

impl Phase {
    fn rule(self) -> &'static str {
        match self {
            Phase::Pre => "prerule",
            Phase::Host => "hostrule",
            Phase::Port => "portrule",
            Phase::Post => "postrule",
        }
    }
}

impl Engine {
    /// An engine for `scripts` with the scan's context and per-run limits.
    /// At most `concurrency` runs are in flight, fewer if [`DEFAULT_MEMORY_BUDGET`] requires.
    pub fn new(scripts: Vec<Script>, ctx: Context, limits: Limits, concurrency: usize) -> Engine {
        let levels = runlevels(&scripts);
        let mut engine = Engine {
            scripts: Arc::new(scripts),
            ctx: Arc::new(ctx),
            limits,
            levels: Arc::new(levels),
            concurrency,
            in_flight: 1,
            slots: Arc::new(Semaphore::new(1)),
            python: Arc::new(python::Pool::new(PyConfig::default())),
        };
        engine.set_in_flight(concurrency, DEFAULT_MEMORY_BUDGET);
        engine
    }

    /// Caps the memory of all script states together at `bytes`.
    pub fn with_memory_budget(mut self, bytes: usize) -> Engine {
        self.set_in_flight(self.concurrency, bytes);
        self
    }

    /// Starts Python workers as `config` says (interpreter, pool size, rlimits).
    pub fn with_python(mut self, config: PyConfig) -> Engine {
        self.python = Arc::new(python::Pool::new(config));
        self
    }

    /// How many runs may be in flight at once.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn set_in_flight(&mut self, concurrency: usize, budget: usize) {
        let by_memory = budget / self.limits.memory_bytes.max(1);
        self.in_flight = concurrency.min(by_memory).max(1);
        self.slots = Arc::new(Semaphore::new(self.in_flight));
    }

    /// The distinct runlevels, ascending.
    fn level_order(&self) -> Vec<usize> {
        let mut v = self.levels.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Runs every hostrule and portrule script against `host`; outcomes in completion order.
    /// Runs whose rule declined are left out.
    pub async fn run_host(&self, host: &HostResult) -> Vec<Outcome> {
        let host = Arc::new(host.clone());
        let mut out = Vec::new();
        for level in self.level_order() {
            let mut set = JoinSet::new();
            for (script, _) in self.scripts.iter().zip(self.levels.iter()).filter(|(_, l)| **l == level) {
                if script.rules.hostrule {
                    self.spawn_bounded(&mut set, &mut out, script, &host, None, Phase::Host).await;
                }
                if script.rules.portrule {
                    // As in NSE: portrules see the ports that may talk back, not closed or
                    // filtered ones (a fresh state per port is not free).
                    let ports: Vec<&PortResult> = host.ports.iter().filter(|p| scriptable(p.state)).collect();
                    let wanted = match script.kind {
                        Kind::Lua if ports.len() > 1 => {
                            screen_ports(script, &self.ctx, self.limits, &host, &ports).await
                        }
                        _ => None,
                    };
                    for (i, port) in ports.into_iter().enumerate() {
                        if wanted.as_ref().is_none_or(|w| w[i]) {
                            self.spawn_bounded(&mut set, &mut out, script, &host, Some(port.clone()), Phase::Port)
                                .await;
                        }
                    }
                }
            }
            out.extend(join_all(set).await);
        }
        out
    }

    /// Runs every prerule script (before any host is scanned).
    pub async fn run_pre(&self) -> Vec<Outcome> {
        self.run_global(Phase::Pre).await
    }

    /// Runs every postrule script (after every host).
    pub async fn run_post(&self) -> Vec<Outcome> {
        self.run_global(Phase::Post).await
    }

    async fn run_global(&self, phase: Phase) -> Vec<Outcome> {
        // Pre- and postrules get no host; an empty placeholder keeps one code path.
        let nobody = Arc::new(HostResult::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            rustmap_model::HostStatus::Up,
            rustmap_model::Reason::UserSet,
        ));
        let mut out = Vec::new();
        for level in self.level_order() {
            let mut set = JoinSet::new();
            for (script, _) in self.scripts.iter().zip(self.levels.iter()).filter(|(_, l)| **l == level) {
                let wanted = if phase == Phase::Pre { script.rules.prerule } else { script.rules.postrule };
                if wanted {
                    self.spawn(&mut set, script.clone(), nobody.clone(), None, phase);
                }
            }
            out.extend(join_all(set).await);
        }
        out
    }

    /// [`Engine::spawn`] once a run slot is free: a host with thousands of open ports then holds
    /// at most the runs in flight plus the finished ones, not a waiting task per (script, port)
    /// (each a whole future; tens of kilobytes in a debug build). Finished runs are collected
    /// into `out` on the way.
    async fn spawn_bounded(
        &self,
        set: &mut JoinSet<Option<Outcome>>,
        out: &mut Vec<Outcome>,
        script: &Script,
        host: &Arc<HostResult>,
        port: Option<PortResult>,
        phase: Phase,
    ) {
        while set.len() >= self.in_flight {
            match set.join_next().await {
                Some(Ok(Some(outcome))) => out.push(outcome),
                Some(_) => {}
                None => break,
            }
        }
        self.spawn(set, script.clone(), host.clone(), port, phase);
    }

    fn spawn(
        &self,
        set: &mut JoinSet<Option<Outcome>>,
        script: Script,
        host: Arc<HostResult>,
        port: Option<PortResult>,
        phase: Phase,
    ) {
        let (ctx, limits, slots) = (self.ctx.clone(), self.limits, self.slots.clone());
        let pool = self.python.clone();
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            let scope = match (&port, phase) {
                (_, Phase::Pre) => ScriptScope::Pre,
                (_, Phase::Post) => ScriptScope::Post,
                (Some(p), _) => ScriptScope::Port { addr: host.addr, protocol: p.protocol, port: p.port },
                (None, _) => ScriptScope::Host { addr: host.addr },
            };
            let global = matches!(phase, Phase::Pre | Phase::Post);
            let mut changes = Vec::new();
            let (ran, trace) = match script.kind {
                Kind::Lua => {
                    let (ran, trace, made) = run_lua(&script, ctx, limits, phase, &host, port.as_ref()).await;
                    changes = made;
                    (ran, trace)
                }
                Kind::Python => {
                    let job = python::Job {
                        script: &script,
                        ctx,
                        limits,
                        phase: phase.rule(),
                        host: (!global).then_some(&*host),
                        port: port.as_ref(),
                        memory: pool.memory_bytes(),
                    };
                    python::run(&pool, job).await
                }
                Kind::Wasm => run_wasm(&script, ctx, limits, phase.rule(), &host, port.as_ref(), global).await,
            };
            match ran {
                Ok(None) => None,
                Ok(Some(result)) => Some(Outcome { scope, id: script.id.clone(), result, trace, changes }),
                Err(e) => Some(Outcome { scope, id: script.id.clone(), result: Err(e), trace, changes: Vec::new() }),
            }
        });
    }
}

/// Port states whose ports get portrules.
fn scriptable(state: PortState) -> bool {
    matches!(state, PortState::Open | PortState::OpenFiltered | PortState::Unfiltered)
}

/// What one run gave, whatever its kind, and its trace.
type Ran = (RunResult, Vec<String>);

/// `Ok(None)` when the rule declined, `Ok(Some(result))` when the action ran.
type RunResult = Result<Option<Result<Option<ScriptResult>, ScriptError>>, ScriptError>;

#[cfg(feature = "wasm")]
async fn run_wasm(
    script: &Script,
    ctx: Arc<Context>,
    limits: Limits,
    rule: &'static str,
    host: &Arc<HostResult>,
    port: Option<&PortResult>,
    global: bool,
) -> Ran {
    let job = crate::wasm::Job {
        script: script.clone(),
        ctx,
        limits,
        rule,
        host: (!global).then(|| host.clone()),
        port: port.cloned(),
    };
    crate::wasm::run(job).await
}

#[cfg(not(feature = "wasm"))]
async fn run_wasm(
    script: &Script,
    _ctx: Arc<Context>,
    _limits: Limits,
    _rule: &'static str,
    _host: &Arc<HostResult>,
    _port: Option<&PortResult>,
    _global: bool,
) -> Ran {
    let message = format!("{}: WASM scripts need RustMap built with the `wasm` feature", script.id);
    (Err(ScriptError::Load { message }), Vec::new())
}

/// One Lua run in a fresh sandbox.
async fn run_lua(
    script: &Script,
    ctx: Arc<Context>,
    limits: Limits,
    phase: Phase,
    host: &HostResult,
    port: Option<&PortResult>,
) -> (RunResult, Vec<String>, Vec<libs::PortChange>) {
    let sandbox = match Sandbox::new(limits) {
        Ok(s) => s,
        Err(e) => return (Err(e), Vec::new(), Vec::new()),
    };
    let ran = run_one(&sandbox, script, ctx, limits, phase, host, port).await;
    let trace = sandbox.trace();
    let changes = match &ran {
        Ok(Some(Ok(_))) => libs::port_changes(sandbox.lua()),
        _ => Vec::new(),
    };
    (ran, trace, changes)
}

/// Which of `ports` a Lua script's portrule takes, asked in one sandbox: a fresh state per
/// (script, port) only for the ports it takes, instead of one per port to hear "no" (loading a
/// script and its libraries costs about a millisecond; the 24 default scripts on a host with 19
/// open ports made 456 states where about 40 ran an action). Each run asks its rule again in its own state,
/// so the answer here only filters. `None` (then every port gets its run, as before) when the
/// script or a rule fails here: the run reports that error.
async fn screen_ports(
    script: &Script,
    ctx: &Arc<Context>,
    limits: Limits,
    host: &HostResult,
    ports: &[&PortResult],
) -> Option<Vec<bool>> {
    let sandbox = Sandbox::new(limits).ok()?;
    libs::install(&sandbox, ctx.clone()).ok()?;
    let lua = sandbox.lua();
    let g = lua.globals();
    g.set("SCRIPT_NAME", script.id.as_str()).ok()?;
    g.set("SCRIPT_TYPE", Phase::Port.rule()).ok()?;
    let chunk = sandbox.load(&script.source, &script.id).ok()?;
    sandbox.call::<()>(&chunk, ()).await.ok()?;
    let rule: Function = g.get(Phase::Port.rule()).ok()?;
    let lua_host = host_table(lua, host).ok()?;
    let registry = lua_host.get::<mlua::Table>("registry").ok()?;
    ctx.host_registry(host.addr).fill(lua, &registry).ok()?;
    let mut wanted = Vec::with_capacity(ports.len());
    for port in ports {
        let lua_port = port_table(lua, port).ok()?;
        let answer: Value = sandbox.call(&rule, (lua_host.clone(), lua_port)).await.ok()?;
        wanted.push(!matches!(answer, Value::Nil | Value::Boolean(false)));
    }
    Some(wanted)
}

/// Outcomes of a set of runs, in completion order (a run that panicked is dropped: the
/// sandbox returns errors, so that would be a bug in the engine, not a script's doing).
async fn join_all(mut set: JoinSet<Option<Outcome>>) -> Vec<Outcome> {
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(outcome)) = joined {
            out.push(outcome);
        }
    }
    out
}

/// Each script's runlevel: 1 + the highest runlevel of the dependencies that are selected too.
/// A dependency cycle is cut where it closes (depth bounded by the number of scripts).
fn runlevels(scripts: &[Script]) -> Vec<usize> {
    fn level(scripts: &[Script], i: usize, depth: usize) -> usize {
        if depth > scripts.len() {
            return 1;
        }
        scripts[i]
            .dependencies
            .iter()
            .filter_map(|d| scripts.iter().position(|s| &s.id == d))
            .map(|j| level(scripts, j, depth + 1) + 1)
            .max()
            .unwrap_or(1)
    }
    (0..scripts.len()).map(|i| level(scripts, i, 0)).collect()
}

/// One run: `Ok(None)` when the rule declined, `Ok(Some(result))` when the action ran.
async fn run_one(
    sandbox: &Sandbox,
    script: &Script,
    ctx: Arc<Context>,
    limits: Limits,
    phase: Phase,
    host: &HostResult,
    port: Option<&PortResult>,
) -> Result<Option<Result<Option<ScriptResult>, ScriptError>>, ScriptError> {
    libs::install(sandbox, ctx.clone()).map_err(|e| sandbox.classify(&e))?;
    let lua = sandbox.lua();
    let g = lua.globals();
    let set_globals = || -> mlua::Result<()> {
        g.set("SCRIPT_NAME", script.id.as_str())?;
        g.set("SCRIPT_TYPE", phase.rule())?;
        Ok(())
    };
    set_globals().map_err(|e| sandbox.classify(&e))?;
    let chunk = sandbox.load(&script.source, &script.id)?;
    sandbox.call::<()>(&chunk, ()).await?;
    let global = matches!(phase, Phase::Pre | Phase::Post);
    let lua_host = host_table(lua, host).map_err(|e| sandbox.classify(&e))?;
    let host_registry = (!global).then(|| ctx.host_registry(host.addr));
    if let Some(reg) = &host_registry {
        let filled = lua_host.get::<mlua::Table>("registry").and_then(|t| reg.fill(lua, &t));
        filled.map_err(|e| sandbox.classify(&e))?;
    }
    let lua_port = match port {
        Some(p) => Some(port_table(lua, p).map_err(|e| sandbox.classify(&e))?),
        None => None,
    };
    let rule: Function = g.get(phase.rule()).map_err(|e| sandbox.classify(&e))?;
    let args = || -> MultiValue {
        if global {
            return MultiValue::new();
        }
        let mut v = vec![Value::Table(lua_host.clone())];
        if let Some(p) = &lua_port {
            v.push(Value::Table(p.clone()));
        }
        MultiValue::from_vec(v)
    };
    let wanted: Value = sandbox.call(&rule, args()).await?;
    if matches!(wanted, Value::Nil | Value::Boolean(false)) {
        return Ok(None);
    }
    let action: Function = g.get("action").map_err(|e| sandbox.classify(&e))?;
    let outcome = match sandbox.call::<MultiValue>(&action, args()).await {
        Ok(values) => {
            // What the script left in nmap.registry is for the scripts after it.
            libs::store_registry(lua, &ctx);
            if let (Some(reg), Ok(t)) = (&host_registry, lua_host.get::<mlua::Table>("registry")) {
                reg.store(&t, "");
            }
            render::result(&script.id, &values, limits.output_bytes)
        }
        Err(e) => Err(e),
    };
    Ok(Some(outcome))
}
