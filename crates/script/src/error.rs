//! The typed errors a script run can end with. Every way a script is stopped — by the sandbox,
//! by a limit or by its own fault — is one variant here, so that outputs and tests can tell them
//! apart instead of matching message text.

use std::time::Duration;

/// Why a script did not produce output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script's Lua state asked for more memory than its limit.
    #[error("memory limit of {limit} bytes exceeded")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The script ran more Lua instructions than its budget.
    #[error("instruction budget of {budget} exceeded")]
    InstructionBudget {
        /// The budget in VM instructions.
        budget: u64,
    },
    /// The script ran longer than `--script-timeout`.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The wall-clock limit.
        after: Duration,
    },
    /// The script tried something the sandbox does not offer (`os.execute`, `io.open`, binary
    /// chunks, an unknown module).
    #[error("forbidden: {what}")]
    Forbidden {
        /// What was attempted.
        what: String,
    },
    /// The script tried to reach an address that is not one of the scan's targets.
    #[error("not a scan target: {addr}")]
    NotATarget {
        /// The address (or name) it tried.
        addr: String,
    },
    /// The script's output was larger than the output limit.
    #[error("output larger than {limit} bytes")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The script recursed deeper than Lua's stack allows.
    #[error("stack overflow")]
    StackOverflow,
    /// The script's source could not be loaded (syntax error, missing `action`).
    #[error("cannot load script: {message}")]
    Load {
        /// Lua's message.
        message: String,
    },
    /// A Python script's worker used up its CPU-time limit (RLIMIT_CPU).
    #[error("CPU time limit of {seconds} s exceeded")]
    CpuLimit {
        /// The limit in seconds.
        seconds: u64,
    },
    /// The script needs an interpreter that is not there (Python 3 for `py-*` scripts).
    #[error("{script} needs Python 3: {reason}")]
    NoInterpreter {
        /// The script's name.
        script: String,
        /// What was looked for, and what to do (`set RUSTMAP_PYTHON`).
        reason: String,
    },
    /// The script raised an error of its own.
    #[error("runtime error: {message}")]
    Runtime {
        /// Lua's message, with its traceback cut off.
        message: String,
    },
}

impl ScriptError {
    /// A short stable name for the error's kind (`memory-limit`), as outputs print it.
    pub fn kind(&self) -> &'static str {
        match self {
            ScriptError::MemoryLimit { .. } => "memory-limit",
            ScriptError::InstructionBudget { .. } => "instruction-budget",
            ScriptError::Timeout { .. } => "timeout",
            ScriptError::Forbidden { .. } => "forbidden",
            ScriptError::NotATarget { .. } => "not-a-target",
            ScriptError::OutputTooLarge { .. } => "output-too-large",
            ScriptError::StackOverflow => "stack-overflow",
            ScriptError::Load { .. } => "load",
            ScriptError::Runtime { .. } => "runtime",
            ScriptError::CpuLimit { .. } => "cpu-limit",
            ScriptError::NoInterpreter { .. } => "no-interpreter",
        }
    }
}
