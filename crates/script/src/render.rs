//! A script's return values turned into a [`ScriptResult`]: nmap's rules for what an action
//! returns (nothing, a string, a table, or a table and a string) and how a table reads as text
//! (`key: value` lines, two spaces per level, an `output_table`'s keys in the order the script
//! set them). Text is sanitized (control bytes escaped) and bounded.

use crate::error::ScriptError;
use mlua::{MultiValue, Table, Value};
use rustmap_model::{ScriptEntry, ScriptResult, ScriptValue};

/// Deepest table rendered.
const MAX_DEPTH: usize = 16;

/// Structured output: an ordered tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A value.
    Leaf(String),
    /// Entries with or without keys.
    Table(Vec<(Option<String>, Node)>),
}

/// Turns an action's return values into a result, or `None` when it returned nothing.
pub fn result(id: &str, values: &MultiValue, limit: usize) -> Result<Option<ScriptResult>, ScriptError> {
    let first = values.front().cloned().unwrap_or(Value::Nil);
    let second = values.get(1).cloned().unwrap_or(Value::Nil);
    let too_large = ScriptError::OutputTooLarge { limit };
    // Nothing larger than the limit is copied out of Lua: the Rust side has no memory limit.
    for v in [&first, &second] {
        if let Value::String(s) = v {
            if s.as_bytes().len() > limit {
                return Err(too_large);
            }
        }
    }
    let (text, elements, table) = match &first {
        Value::Nil => return Ok(None),
        Value::Table(t) => {
            let mut budget = limit;
            let node = to_node_within(&Value::Table(t.clone()), 0, &mut budget).ok_or(too_large.clone())?;
            let (elements, table) = match &node {
                Node::Table(_) => (flatten(&node), tree(&node)),
                Node::Leaf(_) => (Vec::new(), Vec::new()),
            };
            let text = match &second {
                Value::String(s) => s.to_string_lossy(),
                _ => text_of(&node),
            };
            (text, elements, table)
        }
        other => (leaf(other), Vec::new(), Vec::new()),
    };
    let text = sanitize(&text);
    let size = text.len() + elements.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if size > limit {
        return Err(ScriptError::OutputTooLarge { limit });
    }
    Ok(Some(ScriptResult { id: id.to_string(), output: text, elements, table }))
}

/// A result from text or a tree built outside Lua (Python and WASM scripts): the same text
/// form, elements, sanitizing and size limit as a Lua action's return values.
pub(crate) fn from_parts(
    id: &str,
    text: Option<String>,
    node: Option<Node>,
    limit: usize,
) -> Result<Option<ScriptResult>, ScriptError> {
    let (text, elements, table) = match (text, node) {
        (text, Some(node @ Node::Table(_))) => {
            let (elements, table) = (flatten(&node), tree(&node));
            (text.unwrap_or_else(|| text_of(&node)), elements, table)
        }
        (Some(text), _) => (text, Vec::new(), Vec::new()),
        (None, Some(Node::Leaf(s))) => (s, Vec::new(), Vec::new()),
        (None, None) => return Ok(None),
    };
    let text = sanitize(&text);
    let size = text.len() + elements.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if size > limit {
        return Err(ScriptError::OutputTooLarge { limit });
    }
    Ok(Some(ScriptResult { id: id.to_string(), output: text, elements, table }))
}

fn leaf(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".into(),
        other => other.type_name().to_string(),
    }
}

fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::Integer(_) => None,
        other => Some(leaf(other)),
    }
}

/// A table's entries in order: an output_table's recorded order; otherwise the array part,
/// then the other keys sorted (nmap leaves that order unspecified; sorting keeps it stable).
fn entries(t: &Table) -> Vec<(Value, Value)> {
    if let Some(order) = t.metatable().and_then(|m| m.raw_get::<Option<Table>>("__rm_order").ok().flatten()) {
        return order
            .sequence_values::<Value>()
            .filter_map(Result::ok)
            .filter_map(|k| t.raw_get::<Value>(k.clone()).ok().filter(|v| !v.is_nil()).map(|v| (k, v)))
            .collect();
    }
    let len = t.raw_len();
    let mut out: Vec<(Value, Value)> =
        (1..=len).filter_map(|i| t.raw_get::<Value>(i).ok().map(|v| (Value::Integer(i as i64), v))).collect();
    let mut rest: Vec<(Value, Value)> = t
        .pairs::<Value, Value>()
        .filter_map(Result::ok)
        .filter(|(k, _)| !matches!(k, Value::Integer(i) if *i >= 1 && (*i as usize) <= len))
        .collect();
    rest.sort_by_key(|(k, _)| leaf(k));
    out.extend(rest);
    out
}

/// Converts a Lua value to a tree, cutting at 16 levels (which also ends cycles).
pub fn to_node(v: &Value, depth: usize) -> Node {
    let mut unlimited = usize::MAX;
    to_node_within(v, depth, &mut unlimited).unwrap_or(Node::Leaf("...".into()))
}

/// [`to_node`] spending at most `budget` bytes of text (keys, values, and a few per entry);
/// `None` once it is spent.
fn to_node_within(v: &Value, depth: usize, budget: &mut usize) -> Option<Node> {
    Some(match v {
        Value::Table(t) if depth < MAX_DEPTH => {
            let mut out = Vec::new();
            for (k, v) in entries(t) {
                let key = key_text(&k);
                *budget = budget.checked_sub(key.as_ref().map_or(0, String::len) + 4)?;
                out.push((key, to_node_within(&v, depth + 1, budget)?));
            }
            Node::Table(out)
        }
        Value::Table(_) => Node::Leaf("...".into()),
        other => {
            let text = leaf(other);
            *budget = budget.checked_sub(text.len())?;
            Node::Leaf(text)
        }
    })
}

/// nmap's text form of a table: a leading newline, then `key: value` lines indented two
/// spaces per level.
pub fn text_of(node: &Node) -> String {
    let mut lines = Vec::new();
    fn walk(node: &Node, indent: usize, lines: &mut Vec<String>) {
        if let Node::Table(entries) = node {
            for (k, v) in entries {
                let pad = "  ".repeat(indent);
                let prefix = match k {
                    Some(k) => format!("{pad}{k}: "),
                    None => pad,
                };
                match v {
                    Node::Leaf(s) => lines.push(format!("{prefix}{s}")),
                    Node::Table(_) => {
                        lines.push(prefix.trim_end().to_string() + if k.is_some() { " " } else { "" });
                        walk(v, indent + 1, lines);
                    }
                }
            }
        }
    }
    walk(node, 1, &mut lines);
    format!("\n{}", lines.join("\n"))
}

/// Flat key/value pairs for the model's `elements` (nested keys joined by `.`, unkeyed
/// entries by their position).
fn flatten(node: &Node) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(node: &Node, path: &str, out: &mut Vec<(String, String)>) {
        if let Node::Table(entries) = node {
            for (i, (k, v)) in entries.iter().enumerate() {
                let key = k.as_deref().map_or_else(|| (i + 1).to_string(), sanitize);
                let full = if path.is_empty() { key } else { format!("{path}.{key}") };
                match v {
                    Node::Leaf(s) => out.push((full, sanitize(s))),
                    Node::Table(_) => walk(v, &full, out),
                }
            }
        }
    }
    walk(node, "", &mut out);
    out
}

/// The tree for the model's `table` (XML's nested `<table>` and `<elem>`), keys and texts
/// sanitized.
fn tree(node: &Node) -> Vec<ScriptEntry> {
    let Node::Table(entries) = node else { return Vec::new() };
    entries
        .iter()
        .map(|(k, v)| ScriptEntry {
            key: k.as_deref().map(sanitize),
            value: match v {
                Node::Leaf(s) => ScriptValue::Text(sanitize(s)),
                Node::Table(_) => ScriptValue::Table(tree(v)),
            },
        })
        .collect()
}

/// Escapes control characters other than newline and tab, as nmap does in script output.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\x{:02X}", c as u32 & 0xff));
        } else {
            out.push(c);
        }
    }
    out
}
