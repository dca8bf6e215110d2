//! `base64` and `json`, in Rust: both parse untrusted text, so they are written with bounded
//! depth and without panics. JSON parsing and generation go through serde_json.

use mlua::{Lua, Table, Value};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Deepest JSON nesting converted either way.
const MAX_DEPTH: usize = 64;
/// Most bytes (strings, keys, a few per value) `json.generate` copies out of Lua.
const MAX_GENERATE: usize = 8 * 1024 * 1024;

/// Standard base64 with padding.
pub(crate) fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64, skipping characters outside the alphabet (as NSE's decoder tolerates).
pub(crate) fn b64_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

pub(crate) fn base64(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("enc", lua.create_function(|_, s: mlua::String| Ok(b64_encode(&s.as_bytes())))?)?;
    m.set("dec", lua.create_function(|lua, s: mlua::String| lua.create_string(b64_decode(&s.as_bytes())))?)?;
    Ok(m)
}

pub(crate) fn json(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    let null = lua.create_table()?;
    m.set("NULL", &null)?;
    let n = null.clone();
    m.set(
        "parse",
        lua.create_function(move |lua, s: mlua::String| {
            match serde_json::from_slice::<serde_json::Value>(&s.as_bytes()) {
                Ok(v) => Ok((true, to_lua(lua, &v, &n, 0)?)),
                Err(e) => Ok((false, Value::String(lua.create_string(e.to_string())?))),
            }
        })?,
    )?;
    m.set(
        "generate",
        lua.create_function(move |_, v: Value| {
            let mut budget = MAX_GENERATE;
            let json = from_lua(&v, &null, 0, &mut budget)?;
            Ok(json.to_string())
        })?,
    )?;
    Ok(m)
}

fn to_lua(lua: &Lua, v: &serde_json::Value, null: &Table, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("json: nested too deeply"));
    }
    Ok(match v {
        serde_json::Value::Null => Value::Table(null.clone()),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(a) => {
            let t = lua.create_table()?;
            for (i, x) in a.iter().enumerate() {
                t.set(i + 1, to_lua(lua, x, null, depth + 1)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(o) => {
            let t = lua.create_table()?;
            for (k, x) in o {
                t.set(k.as_str(), to_lua(lua, x, null, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}

fn from_lua(v: &Value, null: &Table, depth: usize, budget: &mut usize) -> mlua::Result<serde_json::Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("json: nested too deeply (or a cycle)"));
    }
    let cost = match v {
        Value::String(s) => s.as_bytes().len() + 2,
        _ => 8,
    };
    *budget = budget.checked_sub(cost).ok_or_else(|| mlua::Error::runtime("json: value too large"))?;
    Ok(match v {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n).map(serde_json::Value::Number).unwrap_or_default(),
        Value::String(s) => serde_json::Value::String(s.to_string_lossy()),
        Value::Table(t) if t == null => serde_json::Value::Null,
        Value::Table(t) => {
            let len = t.raw_len();
            let count = t.pairs::<Value, Value>().count();
            if len > 0 && count == len {
                let mut a = Vec::with_capacity(len);
                for i in 1..=len {
                    a.push(from_lua(&t.raw_get::<Value>(i)?, null, depth + 1, budget)?);
                }
                serde_json::Value::Array(a)
            } else {
                let mut o = serde_json::Map::new();
                for pair in t.pairs::<Value, Value>() {
                    let (k, x) = pair?;
                    let key = match &k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => continue,
                    };
                    *budget =
                        budget.checked_sub(key.len()).ok_or_else(|| mlua::Error::runtime("json: value too large"))?;
                    o.insert(key, from_lua(&x, null, depth + 1, budget)?);
                }
                serde_json::Value::Object(o)
            }
        }
        _ => return Err(mlua::Error::runtime("json: cannot encode this value")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0, 255, 128]] {
            assert_eq!(b64_decode(b64_encode(s).as_bytes()), s);
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
    }
}
