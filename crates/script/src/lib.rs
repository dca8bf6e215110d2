//! RustMap's scripting engine: NSE-compatible Lua 5.4 scripts run in a sandbox, with libraries
//! written here under NSE's names, script selection (`--script` expressions), script arguments,
//! and the built-in scripts.
//!
//! The sandbox ([`sandbox`]) comes first: every script run gets a fresh Lua state with limits
//! that a script cannot escape, and every way it can end is a [`ScriptError`].
#![forbid(unsafe_code)]

pub mod args;
pub mod error;
pub mod sandbox;
pub mod selection;

pub use error::ScriptError;
pub use sandbox::{Limits, Sandbox};
