//! RustMap's scripting engine: NSE-compatible Lua 5.4 scripts run in a sandbox, with libraries
//! written here under NSE's names, script selection (`--script` expressions), script arguments,
//! and the built-in scripts.
//!
//! The sandbox ([`sandbox`]) comes first: every script run gets a fresh Lua state with limits
//! that a script cannot escape, and every way it can end is a [`ScriptError`]. The
//! [`Catalog`] holds the scripts and answers `--script`; the [`Engine`] runs them against hosts.
//!
//! Besides Lua, scripts can be Python (`py-*.py`, [`python`]: worker processes under rlimits,
//! sockets only through RustMap) and, with the `wasm` feature, WebAssembly (`wasm`: wasmi with
//! fuel and memory limits). Every kind has the same rules, results, limits and errors.
#![forbid(unsafe_code)]

pub mod args;
pub mod engine;
pub mod error;
pub mod libs;
pub mod pattern;
pub mod python;
pub mod render;
pub mod sandbox;
pub mod script;
pub mod selection;
pub mod tables;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use args::ScriptArgs;
pub use engine::{Engine, Outcome};
pub use error::ScriptError;
pub use libs::{Context, PortChange, Replay, Targets};
pub use python::PyConfig;
pub use sandbox::{Limits, Sandbox};
pub use script::{Catalog, Kind, Script};
