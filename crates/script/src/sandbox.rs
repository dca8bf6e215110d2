//! The sandbox every script runs in: a Lua 5.4 state with only the safe standard libraries,
//! a memory limit, an instruction budget and a wall-clock deadline that `pcall` cannot swallow,
//! stubs that turn the unsafe parts of Lua (`os.execute`, `io`, `require` of anything but
//! RustMap's libraries, binary chunks, `string.dump`) into typed [`ScriptError::Forbidden`]
//! stops, and a step-counted rehearsal ([`crate::pattern`]) that refuses costly Lua patterns.
//!
//! How a stop is made to stick: the first stop is recorded in an [`Abort`] cell shared with the
//! instruction hook. From then on the hook raises an error at every check (every
//! [`HOOK_EVERY`] instructions), and the prelude's `pcall`, `xpcall` and `coroutine.resume`
//! raise again whenever they catch an error while the cell is set. So a script that wraps an
//! infinite loop in `pcall` still unwinds to the top, where [`Sandbox::call`] reports the
//! recorded error rather than whatever Lua says. Each script run gets its own state, dropped
//! afterwards, so nothing of a stopped script survives it.

use crate::error::ScriptError;
use crate::pattern;
use mlua::{
    FromLuaMulti, Function, HookTriggers, IntoLuaMulti, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often (in VM instructions) the hook checks the budget and the deadline.
pub const HOOK_EVERY: u32 = 1000;

/// Every this many checks (50 000 instructions) a busy script yields to the runtime, so that
/// other scripts, timers and I/O get their turn.
const YIELD_EVERY: u64 = 50;

/// Named registry table of the threads the engine drives (the one [`Sandbox::call`] runs and
/// those of `stdnse.new_thread`): only they yield for fairness (a yield in a coroutine the
/// script made would return early from its `resume`).
const DRIVEN: &str = "rustmap.driven";

/// Marks `thread` as driven by the engine (allowed to yield for fairness).
pub(crate) fn mark_driven(lua: &Lua, thread: &mlua::Thread) -> mlua::Result<()> {
    let driven: Table = match lua.named_registry_value::<Option<Table>>(DRIVEN)? {
        Some(t) => t,
        None => {
            let t = lua.create_table()?;
            lua.set_named_registry_value(DRIVEN, &t)?;
            t
        }
    };
    driven.raw_set(thread.clone(), true)
}

/// Tasks driving a run's `stdnse.new_thread` threads, aborted when the run's sandbox goes.
#[derive(Debug, Default)]
pub(crate) struct Workers(pub(crate) Mutex<Vec<tokio::task::AbortHandle>>);

/// The limits of one script run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory the Lua state may hold, in bytes.
    pub memory_bytes: usize,
    /// Lua VM instructions the run may execute (rules, action and libraries' Lua code).
    pub instructions: u64,
    /// Wall-clock time for the whole run (`--script-timeout`).
    pub timeout: Duration,
    /// Largest output, in bytes of rendered text.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 32 * 1024 * 1024,
            instructions: 200_000_000,
            timeout: Duration::from_secs(30),
            output_bytes: 64 * 1024,
        }
    }
}

/// The first reason the sandbox stopped a script; later ones are ignored. Setting it also wakes
/// [`Sandbox::call`], so a script waiting on I/O is stopped at once when one of its threads is.
#[derive(Debug, Clone, Default)]
pub struct Abort(Arc<Mutex<Option<ScriptError>>>, Arc<tokio::sync::Notify>);

impl Abort {
    /// Records `err` unless a stop is already recorded.
    pub fn set(&self, err: ScriptError) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(err);
            self.1.notify_waiters();
        }
    }

    /// Returns once a stop is recorded.
    async fn stopped(&self) {
        loop {
            let notified = self.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// The recorded stop, if any.
    pub fn get(&self) -> Option<ScriptError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}

/// Lines a run leaves for `--script-trace` and debugging: `print`, `stdnse.debug`/`verbose`,
/// and socket traffic when tracing. Bounded: past [`Trace::MAX_LINES`] lines, one note says
/// how many more there were.
#[derive(Debug, Clone, Default)]
pub struct Trace(Arc<Mutex<(Vec<String>, usize)>>);

impl Trace {
    /// Most lines kept per run.
    pub const MAX_LINES: usize = 500;
    /// Longest line kept.
    pub const MAX_LINE: usize = 512;

    /// Adds a line (cut to [`Trace::MAX_LINE`] characters, control bytes escaped).
    pub fn push(&self, line: &str) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if t.0.len() < Self::MAX_LINES {
            let cut: String = line.chars().take(Self::MAX_LINE).collect();
            t.0.push(crate::render::sanitize(&cut));
        } else {
            t.1 += 1;
        }
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        let t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = t.0.clone();
        if t.1 > 0 {
            lines.push(format!("({} more lines not kept)", t.1));
        }
        lines
    }
}

/// A Lua state prepared for one script run.
pub struct Sandbox {
    lua: Lua,
    abort: Abort,
    limits: Limits,
    deadline: Instant,
    /// Instructions used so far (and pattern steps, which cost as much).
    used: Arc<AtomicU64>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A fresh state with the safe libraries, the stubs and the limits; the deadline starts now.
    pub fn new(limits: Limits) -> Result<Sandbox, ScriptError> {
        let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::new()).map_err(setup_error)?;
        let abort = Abort::default();
        lua.set_app_data(Trace::default());
        lua.set_app_data(Workers::default());
        let sandbox = Sandbox {
            lua,
            abort,
            limits,
            deadline: Instant::now() + limits.timeout,
            used: Arc::new(AtomicU64::new(0)),
        };
        sandbox.install_stubs().map_err(setup_error)?;
        sandbox.lua.set_memory_limit(limits.memory_bytes).map_err(setup_error)?;
        sandbox.install_hook().map_err(setup_error)?;
        Ok(sandbox)
    }

    /// The Lua state, for the libraries to register themselves.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The stop cell, for library functions that stop a script (a connect to a non-target).
    pub fn abort(&self) -> &Abort {
        &self.abort
    }

    /// What the run left for the trace.
    pub fn trace(&self) -> Vec<String> {
        self.lua.app_data_ref::<Trace>().map(|t| t.lines()).unwrap_or_default()
    }

    /// The run's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A function that records `what` as forbidden and raises, for stubs.
    pub fn forbidden(&self, what: &str) -> mlua::Result<Function> {
        let abort = self.abort.clone();
        let what = what.to_string();
        self.lua.create_function(move |_, _: MultiValue| -> mlua::Result<()> {
            abort.set(ScriptError::Forbidden { what: what.clone() });
            Err(mlua::Error::runtime(format!("forbidden: {what}")))
        })
    }

    /// Compiles `source` as a text chunk named `name` (binary chunks are refused).
    pub fn load(&self, source: &str, name: &str) -> Result<Function, ScriptError> {
        if source.as_bytes().first() == Some(&0x1b) {
            return Err(ScriptError::Forbidden { what: "loading a binary chunk".into() });
        }
        self.lua
            .load(source)
            .set_name(format!("@{name}"))
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| ScriptError::Load { message: lua_message(&e) })
    }

    /// Runs `f` as a coroutine on the current tokio runtime, under the deadline; a stop
    /// recorded by the sandbox wins over whatever Lua returned.
    pub async fn call<R: FromLuaMulti>(&self, f: &Function, args: impl IntoLuaMulti) -> Result<R, ScriptError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        // Our own thread, recorded so the hook knows which thread may yield for fairness.
        let thread = self.lua.create_thread(f.clone()).map_err(|e| self.classify(&e))?;
        mark_driven(&self.lua, &thread).map_err(|e| self.classify(&e))?;
        let future = thread.into_async::<R>(args).map_err(|e| self.classify(&e))?;
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(remaining, future) => outcome,
            () = self.abort.stopped() => return Err(self.abort.get().unwrap_or(ScriptError::Timeout { after: self.limits.timeout })),
        };
        if let Some(stop) = self.abort.get() {
            return Err(stop);
        }
        match outcome {
            Err(_) => {
                self.abort.set(ScriptError::Timeout { after: self.limits.timeout });
                Err(ScriptError::Timeout { after: self.limits.timeout })
            }
            Ok(result) => result.map_err(|e| self.classify(&e)),
        }
    }

    /// Turns a Lua error into a typed one.
    pub fn classify(&self, err: &mlua::Error) -> ScriptError {
        if let Some(stop) = self.abort.get() {
            return stop;
        }
        classify(err, self.limits)
    }

    fn install_stubs(&self) -> mlua::Result<()> {
        let lua = &self.lua;
        let g = lua.globals();
        for name in ["dofile", "loadfile", "require"] {
            g.set(name, self.forbidden(name)?)?;
        }
        // Libraries never print: a script's `print` goes to the run's trace.
        g.set(
            "print",
            lua.create_function(|lua, args: MultiValue| {
                let line: Vec<String> =
                    args.iter().map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_string())).collect();
                if let Some(t) = lua.app_data_ref::<Trace>() {
                    t.push(&line.join("\t"));
                }
                Ok(())
            })?,
        )?;
        for name in ["io", "package", "debug"] {
            g.set(name, self.forbidden_table(name)?)?;
        }
        let os: Table = g.get("os")?;
        for name in ["execute", "exit", "remove", "rename", "tmpname", "getenv", "setlocale"] {
            os.set(name, self.forbidden(&format!("os.{name}"))?)?;
        }
        let string: Table = g.get("string")?;
        string.set("dump", self.forbidden("string.dump")?)?;

        let abort = self.abort.clone();
        let limits = self.limits;
        let check_abort = lua.create_function(move |_, err: Value| -> mlua::Result<()> {
            // The memory error's object is this string; treat it as a stop, not as a value.
            if let Value::String(s) = &err {
                if s.as_bytes().as_ref() == b"not enough memory" {
                    abort.set(ScriptError::MemoryLimit { limit: limits.memory_bytes });
                }
            }
            if let Value::Error(e) = &err {
                if matches!(classify(e, limits), ScriptError::MemoryLimit { .. }) {
                    abort.set(ScriptError::MemoryLimit { limit: limits.memory_bytes });
                }
            }
            if abort.is_set() {
                return Err(mlua::Error::runtime("script stopped by the sandbox"));
            }
            Ok(())
        })?;
        let abort = self.abort.clone();
        let used = Arc::clone(&self.used);
        let deadline = self.deadline;
        let guard = lua.create_function(
            move |_, (kind, s, p, init, n): (String, Value, Value, Value, Value)| -> mlua::Result<()> {
                let (Some(s), Some(p)) = (text(&s), text(&p)) else { return Ok(()) };
                let kind = match kind.as_str() {
                    "gmatch" => pattern::Kind::Gmatch,
                    "gsub" => pattern::Kind::Gsub,
                    _ => pattern::Kind::Find,
                };
                let init = integer(&init).unwrap_or(1);
                match pattern::check(&s, &p, init, kind, integer(&n)) {
                    Ok(steps) => {
                        // The C call will take as many steps again: charge them like instructions.
                        let now_used = used.fetch_add(2 * steps, Ordering::Relaxed) + 2 * steps;
                        if now_used > limits.instructions {
                            abort.set(ScriptError::InstructionBudget { budget: limits.instructions });
                        } else if Instant::now() >= deadline {
                            abort.set(ScriptError::Timeout { after: limits.timeout });
                        }
                        if abort.is_set() {
                            return Err(mlua::Error::runtime("script stopped by the sandbox"));
                        }
                        Ok(())
                    }
                    Err(pattern::TooCostly) => {
                        let what = format!("a pattern needing more than {} steps", pattern::STEP_LIMIT);
                        abort.set(ScriptError::Forbidden { what: what.clone() });
                        Err(mlua::Error::runtime(what))
                    }
                }
            },
        )?;
        let abort = self.abort.clone();
        let forbid = lua.create_function(move |_, what: String| -> mlua::Result<()> {
            let what: String = what.chars().take(200).collect();
            abort.set(ScriptError::Forbidden { what: what.clone() });
            Err(mlua::Error::runtime(format!("forbidden: {what}")))
        })?;
        lua.load(include_str!("lua/prelude.lua")).set_name("=prelude").set_mode(mlua::ChunkMode::Text).call::<()>((
            forbid,
            check_abort,
            guard,
        ))
    }

    /// A table any use of which is forbidden (`io.open`, `package.loadlib`).
    fn forbidden_table(&self, name: &str) -> mlua::Result<Table> {
        let table = self.lua.create_table()?;
        let meta = self.lua.create_table()?;
        let abort = self.abort.clone();
        let name = name.to_string();
        meta.set(
            "__index",
            self.lua.create_function(move |_, (_, key): (Value, Value)| -> mlua::Result<Value> {
                let key = key.to_string().unwrap_or_default();
                let what = format!("{name}.{key}");
                abort.set(ScriptError::Forbidden { what: what.clone() });
                Err(mlua::Error::runtime(format!("forbidden: {what}")))
            })?,
        )?;
        table.set_metatable(Some(meta))?;
        Ok(table)
    }

    fn install_hook(&self) -> mlua::Result<()> {
        let abort = self.abort.clone();
        let used = Arc::clone(&self.used);
        let limits = self.limits;
        let deadline = self.deadline;
        self.lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |lua, _| {
            let now_used = used.fetch_add(u64::from(HOOK_EVERY), Ordering::Relaxed) + u64::from(HOOK_EVERY);
            if !abort.is_set() {
                if now_used > limits.instructions {
                    abort.set(ScriptError::InstructionBudget { budget: limits.instructions });
                } else if Instant::now() >= deadline {
                    abort.set(ScriptError::Timeout { after: limits.timeout });
                }
            }
            // Once stopped, every check raises again: a pcall that caught the first error
            // meets the next one a thousand instructions later.
            if abort.is_set() {
                return Err(mlua::Error::runtime("script stopped by the sandbox"));
            }
            // mlua yields only where Lua can (not inside C calls such as a sort comparator);
            // the async driver sees a yield without a value as "not ready, poll again".
            if (now_used / u64::from(HOOK_EVERY)).is_multiple_of(YIELD_EVERY) {
                let driven: Option<Table> = lua.named_registry_value(DRIVEN).ok().flatten();
                if driven.is_some_and(|d| d.raw_get::<bool>(lua.current_thread()).unwrap_or(false)) {
                    return Ok(VmState::Yield);
                }
            }
            Ok(VmState::Continue)
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Threads a script started end with it.
        if let Some(workers) = self.lua.app_data_ref::<Workers>() {
            for handle in workers.0.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
                handle.abort();
            }
        }
    }
}

fn setup_error(e: mlua::Error) -> ScriptError {
    ScriptError::Load { message: format!("sandbox setup: {e}") }
}

/// Maps a Lua error to a typed one, looking through callback wrappers.
fn classify(err: &mlua::Error, limits: Limits) -> ScriptError {
    match err {
        mlua::Error::MemoryError(_) => ScriptError::MemoryLimit { limit: limits.memory_bytes },
        mlua::Error::SyntaxError { message, .. } => ScriptError::Load { message: message.clone() },
        mlua::Error::CallbackError { cause, .. } => classify(cause, limits),
        mlua::Error::WithContext { cause, .. } => classify(cause, limits),
        mlua::Error::ExternalError(e) => match e.downcast_ref::<ScriptError>() {
            Some(se) => se.clone(),
            None => ScriptError::Runtime { message: short(&e.to_string()) },
        },
        mlua::Error::StackError => ScriptError::StackOverflow,
        other => {
            let message = lua_message(other);
            if message.contains("stack overflow") {
                ScriptError::StackOverflow
            } else if message.contains("not enough memory") {
                ScriptError::MemoryLimit { limit: limits.memory_bytes }
            } else {
                ScriptError::Runtime { message }
            }
        }
    }
}

/// Lua's message without the traceback, cut to a length fit for output.
fn lua_message(err: &mlua::Error) -> String {
    short(&err.to_string())
}

fn short(message: &str) -> String {
    let head = message.split("\nstack traceback:").next().unwrap_or(message).trim();
    head.chars().take(512).collect()
}

/// A string argument as Lua would coerce it (numbers become text); `None` for other types.
fn text(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.is_finite() => Some(*n as i64),
        _ => None,
    }
}
