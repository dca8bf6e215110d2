//! Python (`py-*`) scripts, run out of process. Each run (a script's rule and, if the rule
//! says so, its action, for one host or port) gets a fresh worker: the interpreter found at run
//! time (`RUSTMAP_PYTHON`, else `python3` on `PATH`) started as `python -I -S -B -c <runner>`
//! with an empty environment, `/` as its directory, and rlimits set on it with prlimit(2)
//! before it is handed any script code: CPU time, address space, open files, file size 0,
//! processes 0, no core dumps. The runner (`runner.py`, RustMap's own code) installs an audit
//! hook that refuses sockets, processes, file writes and reads outside the interpreter's
//! library before the script runs. The worker has no network of its own: sockets are requests
//! over its pipes (line-delimited JSON), which `rpc` serves with the same target check as the
//! Lua sockets. The [`Pool`] bounds how many workers live at once; a run that outlives its
//! wall-clock limit is killed.
//!
//! A fresh process per run (not a reused worker) keeps runs isolated the way a fresh Lua
//! state does: nothing a script changes in its interpreter can reach the next script. It
//! costs one interpreter start (20–40 ms with `-S`) per run. The protocol and what the sandbox
//! does and does not guarantee are in docs/python-scripts.md.

pub mod meta;
mod rpc;

use crate::error::ScriptError;
use crate::libs::Context;
use crate::sandbox::Limits;
use rustix::process::{prlimit, Pid, Resource, Rlimit};
use rustmap_model::{HostResult, PortResult, ScriptResult};
use serde_json::{json, Value};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{OnceCell, Semaphore};

/// The runner every worker executes (passed with `-c`).
const RUNNER: &str = include_str!("runner.py");

/// Longest protocol line accepted from a worker (a longer one is `OutputTooLarge` with this
/// limit; the script's own output limit is checked by the runner and again by the renderer).
const MAX_LINE: usize = 4 * 1024 * 1024;
/// Most stderr kept from a worker (for the message when it dies).
const MAX_STDERR: usize = 8 * 1024;
/// Exit status the runner uses after a refused operation.
const EXIT_FORBIDDEN: i32 = 3;
/// Exit status the runner uses when it ran out of memory outside the script.
const EXIT_MEMORY: i32 = 4;
/// SIGXCPU: the soft CPU-time limit.
const SIGXCPU: i32 = 24;
/// SIGKILL: the hard CPU-time limit (one second after the soft one).
const SIGKILL: i32 = 9;

/// How Python workers are started and limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyConfig {
    /// The interpreter; `None`: `RUSTMAP_PYTHON`, else `python3` on `PATH`.
    pub interpreter: Option<PathBuf>,
    /// Most workers alive at once.
    pub workers: usize,
    /// Address space of a worker (RLIMIT_AS), bytes.
    pub memory_bytes: u64,
    /// CPU time of a worker (RLIMIT_CPU), seconds; `None`: the run's wall-clock timeout.
    pub cpu_seconds: Option<u64>,
    /// Open files of a worker (RLIMIT_NOFILE).
    pub open_files: u64,
}

impl Default for PyConfig {
    fn default() -> Self {
        PyConfig { interpreter: None, workers: 8, memory_bytes: 512 * 1024 * 1024, cpu_seconds: None, open_files: 64 }
    }
}

/// The workers of one engine: a bound on how many live at once, and the interpreter, looked
/// up once.
#[derive(Debug)]
pub struct Pool {
    config: PyConfig,
    slots: Semaphore,
    interpreter: OnceCell<Result<PathBuf, String>>,
}

impl Pool {
    /// A pool with `config`.
    pub fn new(config: PyConfig) -> Pool {
        let slots = Semaphore::new(config.workers.max(1));
        Pool { config, slots, interpreter: OnceCell::new() }
    }

    /// The address-space limit of each worker.
    pub fn memory_bytes(&self) -> u64 {
        self.config.memory_bytes
    }

    /// The interpreter workers run, or why there is none ([`ScriptError::NoInterpreter`]
    /// naming `script`).
    pub async fn interpreter(&self, script: &str) -> Result<PathBuf, ScriptError> {
        let found = self.interpreter.get_or_init(|| find(self.config.interpreter.clone())).await;
        found.clone().map_err(|reason| ScriptError::NoInterpreter { script: script.to_string(), reason })
    }
}

/// `python3` on `PATH`.
fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("python3")).find(|p| p.is_file())
}

/// The interpreter to use: checks that it runs and is Python 3.8 or later (audit hooks), and
/// returns the real executable (`sys.executable`), so that a wrapper such as a pyenv shim,
/// which needs its environment and forks, is not what the limited worker starts.
async fn find(configured: Option<PathBuf>) -> Result<PathBuf, String> {
    let env = std::env::var_os("RUSTMAP_PYTHON").filter(|v| !v.is_empty()).map(PathBuf::from);
    let (candidate, named) = match (configured, env) {
        (Some(p), _) => (p.clone(), format!("the configured interpreter {}", p.display())),
        (None, Some(p)) => (p.clone(), format!("RUSTMAP_PYTHON={}", p.display())),
        (None, None) => match on_path() {
            Some(p) => (p, "python3 on PATH".to_string()),
            None => return Err("no python3 found on PATH (set RUSTMAP_PYTHON)".into()),
        },
    };
    let probe = "import sys; print(sys.executable); print(sys.version_info >= (3, 8))";
    let mut cmd = Command::new(&candidate);
    cmd.args(["-I", "-S", "-c", probe]).stdin(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(20), cmd.output()).await {
        Err(_) => return Err(format!("{named} did not answer within 20 s (set RUSTMAP_PYTHON)")),
        Ok(Err(e)) => return Err(format!("{named} cannot be run: {e} (set RUSTMAP_PYTHON to a Python 3)")),
        Ok(Ok(out)) => out,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let exe = lines.next().unwrap_or("").trim().to_string();
    if !out.status.success() || lines.next() != Some("True") {
        return Err(format!("{named} is not Python 3.8 or later (set RUSTMAP_PYTHON)"));
    }
    Ok(if exe.is_empty() || !Path::new(&exe).is_file() { candidate } else { PathBuf::from(exe) })
}

/// One run's request to a worker.
pub(crate) struct Job<'a> {
    pub(crate) script: &'a crate::script::Script,
    pub(crate) ctx: Arc<Context>,
    pub(crate) limits: Limits,
    /// `prerule`, `hostrule`, `portrule` or `postrule`.
    pub(crate) phase: &'static str,
    pub(crate) host: Option<&'a HostResult>,
    pub(crate) port: Option<&'a PortResult>,
    /// The worker's address-space limit (for the error a `MemoryError` becomes).
    pub(crate) memory: u64,
}

/// What a run gave: `Ok(None)` when the rule declined, `Ok(Some(result))` when the action ran.
pub(crate) type RunResult = Result<Option<Result<Option<ScriptResult>, ScriptError>>, ScriptError>;

/// Runs `job` in a fresh worker; returns its result and its trace.
pub(crate) async fn run(pool: &Pool, job: Job<'_>) -> (RunResult, Vec<String>) {
    let mut trace = Vec::new();
    // `portrule = rustmap.is_http` is decided here: a port it declines costs no process (and
    // no interpreter is needed for it).
    if let (Some(port), "portrule") = (job.port, job.phase) {
        if meta::read(&job.script.source).portrule_is_http && !is_http(port) {
            return (Ok(None), trace);
        }
    }
    let interpreter = match pool.interpreter(&job.script.id).await {
        Ok(p) => p,
        Err(e) => return (Err(e), trace),
    };
    let Ok(_slot) = pool.slots.acquire().await else {
        return (Err(ScriptError::Runtime { message: "worker pool closed".into() }), trace);
    };
    let timeout = job.limits.timeout;
    let ran = tokio::time::timeout(timeout, converse(&pool.config, &interpreter, &job, &mut trace)).await;
    // On timeout the conversation's future is dropped, and with it the child (kill_on_drop).
    let ran = ran.unwrap_or(Err(ScriptError::Timeout { after: timeout }));
    (ran, trace)
}

/// Service names `rustmap.is_http` accepts (the runner's `_HTTP_SERVICES`).
const HTTP_SERVICES: &[&str] = &["http", "https", "http-alt", "http-proxy", "https-alt"];
/// Port numbers `rustmap.is_http` accepts (the runner's `_HTTP_PORTS`).
const HTTP_PORTS: &[u16] = &[80, 443, 631, 7080, 8008, 8080, 8088, 8443, 8880, 8888];

/// `rustmap.is_http(host, port)`, as the runner computes it.
fn is_http(port: &PortResult) -> bool {
    port.service.as_ref().is_some_and(|s| HTTP_SERVICES.contains(&s.name.as_str())) || HTTP_PORTS.contains(&port.port)
}

/// Sets the worker's limits. Called before the job (the script's code) is written to it.
fn limit(child: &Child, config: &PyConfig, limits: &Limits) -> std::io::Result<()> {
    let pid = child.id().and_then(|id| Pid::from_raw(id as i32)).ok_or(std::io::ErrorKind::NotFound)?;
    let cpu = config.cpu_seconds.unwrap_or_else(|| limits.timeout.as_secs().max(1));
    let set = |resource, soft: u64, hard: u64| {
        prlimit(Some(pid), resource, Rlimit { current: Some(soft), maximum: Some(hard) }).map(|_| ())
    };
    set(Resource::Cpu, cpu, cpu + 1)?;
    set(Resource::As, config.memory_bytes, config.memory_bytes)?;
    set(Resource::Nofile, config.open_files, config.open_files)?;
    set(Resource::Fsize, 0, 0)?;
    set(Resource::Core, 0, 0)?;
    // Counts every process of the user (and is ignored for root): with 0 the worker cannot
    // fork or start threads, whoever it runs as.
    set(Resource::Nproc, 0, 0)?;
    Ok(())
}

async fn converse(config: &PyConfig, interpreter: &Path, job: &Job<'_>, trace: &mut Vec<String>) -> RunResult {
    let worker_error = |what: String| ScriptError::Runtime { message: format!("Python worker: {what}") };
    let mut cmd = Command::new(interpreter);
    cmd.args(["-I", "-S", "-B", "-c", RUNNER])
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| ScriptError::NoInterpreter {
        script: job.script.id.clone(),
        reason: format!("{} cannot be run: {e}", interpreter.display()),
    })?;
    if let Err(e) = limit(&child, config, &job.limits) {
        return Err(worker_error(format!("cannot set its limits: {e}")));
    }
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(worker_error("no pipes".into()));
    };
    let stderr_task = tokio::spawn(drain(stderr));
    let global = matches!(job.phase, "prerule" | "postrule");
    let request = json!({
        "op": "run",
        "script": job.script.id,
        "source": &*job.script.source,
        "phase": job.phase,
        "host": job.host.filter(|_| !global).map(rpc::host_json),
        "port": job.port.map(rpc::port_json),
        "args": args_json(&job.ctx),
        "max_output": job.limits.output_bytes,
    });
    let mut out = BufReader::new(stdout);
    let mut sockets = rpc::Sockets::new();
    let mut pending = Some(request);
    loop {
        if let Some(reply) = pending.take() {
            let mut line = reply.to_string().into_bytes();
            line.push(b'\n');
            // A failed write means the worker is gone; the read below says why.
            let _ = stdin.write_all(&line).await;
        }
        let msg = match read_line(&mut out).await? {
            Some(line) => line,
            None => return Err(died(&mut child, stderr_task, config, &job.limits).await),
        };
        let msg: Value = serde_json::from_slice(&msg).map_err(|_| worker_error("malformed message".into()))?;
        match handle(msg, job, &mut sockets, trace).await {
            Step::Reply(v) => pending = Some(v),
            Step::Quiet => {}
            Step::Done(r) => return r,
        }
    }
}

/// What one message from the worker leads to.
enum Step {
    /// Answer it.
    Reply(Value),
    /// Nothing to answer (a log line).
    Quiet,
    /// The run is over.
    Done(RunResult),
}

async fn handle(msg: Value, job: &Job<'_>, sockets: &mut rpc::Sockets, trace: &mut Vec<String>) -> Step {
    let op = msg.get("op").and_then(Value::as_str).unwrap_or("");
    let text = |key: &str| msg.get(key).and_then(Value::as_str).unwrap_or("").chars().take(2048).collect::<String>();
    match op {
        "log" => {
            if trace.len() < crate::sandbox::Trace::MAX_LINES {
                let line: String = text("line").chars().take(crate::sandbox::Trace::MAX_LINE).collect();
                trace.push(crate::render::sanitize(&line));
            }
            Step::Quiet
        }
        "done" if msg.get("ran").and_then(Value::as_bool) == Some(false) => Step::Done(Ok(None)),
        "done" => {
            let result = msg.get("result").unwrap_or(&Value::Null);
            Step::Done(Ok(Some(rpc::result(&job.script.id, result, job.limits.output_bytes))))
        }
        "forbidden" => Step::Done(Err(ScriptError::Forbidden { what: text("what") })),
        "error" => {
            let message = text("message");
            let e = match text("kind").as_str() {
                "memory-limit" => ScriptError::MemoryLimit { limit: job_memory(job) },
                "stack-overflow" => ScriptError::StackOverflow,
                "output-too-large" => ScriptError::OutputTooLarge { limit: job.limits.output_bytes },
                "load" => ScriptError::Load { message },
                _ => ScriptError::Runtime { message },
            };
            // A script's own error is its outcome; a load error means it never ran.
            match e {
                ScriptError::Load { .. } => Step::Done(Err(e)),
                e => Step::Done(Ok(Some(Err(e)))),
            }
        }
        _ => {
            let mut lines = Vec::new();
            let reply = sockets.handle(&job.ctx, op, &msg, &mut lines).await;
            for l in lines {
                if trace.len() < crate::sandbox::Trace::MAX_LINES {
                    trace.push(l);
                }
            }
            match reply {
                rpc::Reply::Answer(v) => Step::Reply(v),
                rpc::Reply::Stop(e) => Step::Done(Err(e)),
            }
        }
    }
}

fn job_memory(job: &Job<'_>) -> usize {
    usize::try_from(job.memory).unwrap_or(usize::MAX)
}

/// Why a worker ended without finishing the protocol, from its exit status and stderr.
async fn died(
    child: &mut Child,
    stderr: tokio::task::JoinHandle<String>,
    config: &PyConfig,
    limits: &Limits,
) -> ScriptError {
    let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.start_kill();
            return ScriptError::Runtime { message: "Python worker closed its pipe and did not exit".into() };
        }
    };
    let cpu = config.cpu_seconds.unwrap_or_else(|| limits.timeout.as_secs().max(1));
    match (status.code(), status.signal()) {
        (_, Some(SIGXCPU | SIGKILL)) => ScriptError::CpuLimit { seconds: cpu },
        (Some(EXIT_FORBIDDEN), _) => ScriptError::Forbidden { what: "an operation the guard refuses".into() },
        (Some(EXIT_MEMORY), _) => {
            ScriptError::MemoryLimit { limit: usize::try_from(config.memory_bytes).unwrap_or(usize::MAX) }
        }
        _ => {
            let err = stderr.await.unwrap_or_default();
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
            ScriptError::Runtime { message: format!("Python worker exited ({status}): {last}") }
        }
    }
}

/// Reads a worker's stderr to its end, keeping the first [`MAX_STDERR`] bytes.
async fn drain(mut stderr: tokio::process::ChildStderr) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_STDERR.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// One protocol line (without its newline); `None` at end of stream. A line longer than
/// [`MAX_LINE`] is an error: the worker is not allowed to make the parent buffer without end.
async fn read_line(out: &mut BufReader<tokio::process::ChildStdout>) -> Result<Option<Vec<u8>>, ScriptError> {
    let mut line = Vec::new();
    loop {
        let buf = out.fill_buf().await.map_err(|e| ScriptError::Runtime { message: format!("Python worker: {e}") })?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..end]);
            out.consume(end + 1);
            return Ok(Some(line));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        out.consume(n);
        if line.len() > MAX_LINE {
            return Err(ScriptError::OutputTooLarge { limit: MAX_LINE });
        }
    }
}

/// `--script-args` as a flat dictionary (`key` → string, tables as lists or dictionaries).
fn args_json(ctx: &Context) -> Value {
    fn value(v: &crate::args::ArgValue, depth: usize) -> Value {
        match v {
            crate::args::ArgValue::Str(s) => json!(s),
            crate::args::ArgValue::Table(entries) if depth < 32 => {
                if entries.iter().all(|(k, _)| k.is_none()) {
                    Value::Array(entries.iter().map(|(_, v)| value(v, depth + 1)).collect())
                } else {
                    let mut m = serde_json::Map::new();
                    for (i, (k, v)) in entries.iter().enumerate() {
                        m.insert(k.clone().unwrap_or_else(|| (i + 1).to_string()), value(v, depth + 1));
                    }
                    Value::Object(m)
                }
            }
            crate::args::ArgValue::Table(_) => Value::Null,
        }
    }
    let mut m = serde_json::Map::new();
    for (k, v) in &ctx.args.entries {
        if let Some(k) = k {
            m.insert(k.clone(), value(v, 0));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rust copy of `rustmap.is_http` must accept what the runner's does.
    #[test]
    fn is_http_matches_the_runner() {
        let line = |name: &str| RUNNER.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
        let services = line("_HTTP_SERVICES = ");
        let ports = line("_HTTP_PORTS = ");
        let quoted: Vec<String> = HTTP_SERVICES.iter().map(|s| format!("\"{s}\"")).collect();
        assert_eq!(services, format!("_HTTP_SERVICES = {{{}}}", quoted.join(", ")));
        let numbers: Vec<String> = HTTP_PORTS.iter().map(u16::to_string).collect();
        assert_eq!(ports, format!("_HTTP_PORTS = {{{}}}", numbers.join(", ")));
    }
}
