//! `openssl`: the digests and random bytes NSE scripts take from it (`md5`, `sha1`, `sha256`,
//! `digest(name, data)`, `rand_bytes`), computed with md-5 and ring. No ciphers here.

use md5::Digest;
use mlua::{Lua, Table, Value};

/// Most random bytes one call returns.
const MAX_RAND: usize = 1 << 16;

fn digest(name: &str, data: &[u8]) -> Option<Vec<u8>> {
    match name.to_ascii_lowercase().as_str() {
        "md5" => Some(md5::Md5::digest(data).to_vec()),
        "sha1" => Some(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()),
        "sha256" => Some(ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()),
        "sha512" => Some(ring::digest::digest(&ring::digest::SHA512, data).as_ref().to_vec()),
        _ => None,
    }
}

pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    for name in ["md5", "sha1", "sha256", "sha512"] {
        m.set(
            name,
            lua.create_function(move |lua, data: mlua::String| {
                lua.create_string(digest(name, &data.as_bytes()).unwrap_or_default())
            })?,
        )?;
    }
    m.set(
        "digest",
        lua.create_function(|lua, (name, data): (String, mlua::String)| match digest(&name, &data.as_bytes()) {
            Some(d) => Ok(Value::String(lua.create_string(d)?)),
            None => Ok(Value::Nil),
        })?,
    )?;
    m.set(
        "rand_bytes",
        lua.create_function(|lua, n: usize| {
            let mut buf = vec![0u8; n.min(MAX_RAND)];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
                .map_err(|_| mlua::Error::runtime("no randomness"))?;
            lua.create_string(buf)
        })?,
    )?;
    Ok(m)
}
