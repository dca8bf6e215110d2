//! `ipOps`: address helpers under NSE's documented names (`isPrivate`, `ip_to_str`,
//! `str_to_ip`, `compare_ip`, `expand_ip`, `ip_in_range` / `ipInRange`, `todword`,
//! `fromdword`), in Rust over `std::net` so that hostile text only ever gives `nil, message`.

use mlua::{Lua, MultiValue, Table, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn fail(lua: &Lua, msg: &str) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_vec(vec![Value::Nil, Value::String(lua.create_string(msg)?)]))
}

fn parse(s: &str) -> Option<IpAddr> {
    s.trim().trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// Whether `ip` is in `range`: `a.b.c.d/n`, `a-b` or a single address.
fn in_range(ip: IpAddr, range: &str) -> Option<bool> {
    if let Some((base, bits)) = range.split_once('/') {
        let base = parse(base)?;
        let bits: u32 = bits.trim().parse().ok()?;
        return match (ip, base) {
            (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                Some(u32::from(a) & mask == u32::from(b) & mask)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                Some(u128::from(a) & mask == u128::from(b) & mask)
            }
            _ => Some(false),
        };
    }
    if let Some((lo, hi)) = range.split_once('-') {
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        return Some(lo <= ip && ip <= hi && lo.is_ipv4() == ip.is_ipv4());
    }
    Some(parse(range)? == ip)
}

pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set(
        "isPrivate",
        lua.create_function(|lua, s: String| match parse(&s) {
            Some(ip) => Ok(MultiValue::from_vec(vec![Value::Boolean(is_private(ip))])),
            None => fail(lua, "invalid address"),
        })?,
    )?;
    m.set(
        "ip_to_str",
        lua.create_function(|lua, s: String| match parse(&s) {
            Some(IpAddr::V4(v4)) => Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(v4.octets())?)])),
            Some(IpAddr::V6(v6)) => Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(v6.octets())?)])),
            None => fail(lua, "invalid address"),
        })?,
    )?;
    m.set(
        "str_to_ip",
        lua.create_function(|lua, s: mlua::String| {
            let b = s.as_bytes();
            let ip = match b.len() {
                4 => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
                16 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&b);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
                _ => return fail(lua, "need 4 or 16 bytes"),
            };
            Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(ip.to_string())?)]))
        })?,
    )?;
    m.set(
        "compare_ip",
        lua.create_function(|lua, (a, op, b): (String, String, String)| {
            let (Some(a), Some(b)) = (parse(&a), parse(&b)) else { return fail(lua, "invalid address") };
            let r = match op.as_str() {
                "eq" => a == b,
                "ge" => a >= b,
                "le" => a <= b,
                "gt" => a > b,
                "lt" => a < b,
                _ => return fail(lua, "invalid operator"),
            };
            Ok(MultiValue::from_vec(vec![Value::Boolean(r)]))
        })?,
    )?;
    m.set(
        "expand_ip",
        lua.create_function(|lua, s: String| match parse(&s) {
            Some(IpAddr::V4(v4)) => Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(v4.to_string())?)])),
            Some(IpAddr::V6(v6)) => {
                let full: Vec<String> = v6.segments().iter().map(|x| format!("{x:04x}")).collect();
                Ok(MultiValue::from_vec(vec![Value::String(lua.create_string(full.join(":"))?)]))
            }
            None => fail(lua, "invalid address"),
        })?,
    )?;
    let in_range_fn = lua.create_function(|lua, (ip, range): (String, String)| {
        match parse(&ip).and_then(|ip| in_range(ip, &range)) {
            Some(r) => Ok(MultiValue::from_vec(vec![Value::Boolean(r)])),
            None => fail(lua, "invalid address or range"),
        }
    })?;
    m.set("ip_in_range", in_range_fn.clone())?;
    m.set("ipInRange", in_range_fn)?;
    m.set(
        "todword",
        lua.create_function(|lua, s: String| match parse(&s) {
            Some(IpAddr::V4(v4)) => Ok(MultiValue::from_vec(vec![Value::Integer(i64::from(u32::from(v4)))])),
            _ => fail(lua, "invalid IPv4 address"),
        })?,
    )?;
    m.set(
        "fromdword",
        lua.create_function(|_, n: i64| Ok(Ipv4Addr::from(n.clamp(0, i64::from(u32::MAX)) as u32).to_string()))?,
    )?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_private() {
        let ip = |s: &str| parse(s).unwrap();
        assert_eq!(in_range(ip("10.1.2.3"), "10.0.0.0/8"), Some(true));
        assert_eq!(in_range(ip("11.1.2.3"), "10.0.0.0/8"), Some(false));
        assert_eq!(in_range(ip("10.0.0.5"), "10.0.0.1-10.0.0.9"), Some(true));
        assert_eq!(in_range(ip("2001:db8::1"), "2001:db8::/32"), Some(true));
        assert_eq!(in_range(ip("10.0.0.1"), "garbage/99"), None);
        assert!(is_private(ip("192.168.1.1")) && is_private(ip("fe80::1")) && !is_private(ip("8.8.8.8")));
    }
}
