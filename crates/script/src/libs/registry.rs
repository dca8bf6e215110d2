//! `nmap.registry` shared between the scripts of a scan. Each run has its own Lua state, so the
//! registry lives here as plain data: copied into the run's `nmap.registry` when the library
//! loads, and its top-level keys copied back when the run ends (last writer wins per key). Only
//! plain values cross (booleans, numbers, strings, tables of them); functions and userdata stay
//! behind. Copies are bounded in depth, entries and bytes, so one script cannot bloat every
//! later run.

use mlua::{Lua, Table, Value};
use std::sync::{Arc, Mutex};

const MAX_DEPTH: usize = 16;
const MAX_ENTRIES: usize = 10_000;
const MAX_BYTES: usize = 1024 * 1024;

/// A plain value.
#[derive(Debug, Clone, PartialEq)]
pub enum Plain {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Num(f64),
    /// A string (bytes).
    Str(Vec<u8>),
    /// A table.
    Table(Vec<(Plain, Plain)>),
}

/// The scan's registry.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<Vec<(String, Plain)>>>);

struct Budget {
    entries: usize,
    bytes: usize,
}

impl Registry {
    /// Fills `t` with the registry's entries.
    pub fn fill(&self, lua: &Lua, t: &Table) -> mlua::Result<()> {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (k, v) in &entries {
            t.raw_set(k.as_str(), to_lua(lua, v)?)?;
        }
        Ok(())
    }

    /// Copies the top-level string keys of `t` back (except `skip`).
    pub fn store(&self, t: &Table, skip: &str) {
        let mut budget = Budget { entries: 0, bytes: 0 };
        let mut out = Vec::new();
        for (k, v) in t.pairs::<Value, Value>().filter_map(Result::ok) {
            let Value::String(k) = k else { continue };
            let key = k.to_string_lossy();
            if key == skip {
                continue;
            }
            if let Some(v) = from_lua(&v, 0, &mut budget) {
                out.push((key, v));
            }
        }
        let mut shared = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in out {
            match shared.iter_mut().find(|(sk, _)| *sk == k) {
                Some(slot) => slot.1 = v,
                None => shared.push((k, v)),
            }
        }
    }
}

fn to_lua(lua: &Lua, v: &Plain) -> mlua::Result<Value> {
    Ok(match v {
        Plain::Bool(b) => Value::Boolean(*b),
        Plain::Int(i) => Value::Integer(*i),
        Plain::Num(n) => Value::Number(*n),
        Plain::Str(s) => Value::String(lua.create_string(s)?),
        Plain::Table(entries) => {
            let t = lua.create_table()?;
            for (k, v) in entries {
                t.raw_set(to_lua(lua, k)?, to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

fn from_lua(v: &Value, depth: usize, budget: &mut Budget) -> Option<Plain> {
    budget.entries += 1;
    if budget.entries > MAX_ENTRIES || budget.bytes > MAX_BYTES || depth > MAX_DEPTH {
        return None;
    }
    Some(match v {
        Value::Boolean(b) => Plain::Bool(*b),
        Value::Integer(i) => Plain::Int(*i),
        Value::Number(n) => Plain::Num(*n),
        Value::String(s) => {
            let bytes = s.as_bytes().to_vec();
            budget.bytes += bytes.len();
            Plain::Str(bytes)
        }
        Value::Table(t) => {
            let mut entries = Vec::new();
            for (k, v) in t.pairs::<Value, Value>().filter_map(Result::ok) {
                if let (Some(k), Some(v)) = (from_lua(&k, depth + 1, budget), from_lua(&v, depth + 1, budget)) {
                    entries.push((k, v));
                }
            }
            Plain::Table(entries)
        }
        _ => return None,
    })
}
