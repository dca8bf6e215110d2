//! NSE's `host` and `port` tables, built from RustMap's results, with the fields NSE documents:
//! `host.ip`, `host.name`, `host.targetname`, `host.os`, `host.mac_addr`, `host.times`,
//! `host.registry`; `port.number`, `port.protocol`, `port.state`, `port.reason`,
//! `port.service` and `port.version` (`name`, `name_confidence`, `product`, `version`,
//! `extrainfo`, `hostname`, `ostype`, `devicetype`, `service_tunnel`, `service_fp`, `cpe`).
//! Not yet filled: `host.interface`, `host.bin_ip`, `host.directly_connected` (the scan does
//! not record them on the result).

use mlua::{Lua, Table};
use rustmap_model::{HostResult, HostnameKind, PortResult};

/// The `host` table for `h`.
pub fn host_table(lua: &Lua, h: &HostResult) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("ip", h.addr.to_string())?;
    let ptr = h.hostnames.iter().find(|n| n.kind == HostnameKind::Ptr).map(|n| n.name.clone());
    t.set("name", ptr.unwrap_or_default())?;
    if let Some(user) = h.hostnames.iter().find(|n| n.kind == HostnameKind::User) {
        t.set("targetname", user.name.as_str())?;
    }
    if let Some(mac) = &h.mac {
        t.set("mac_addr", mac.as_str())?;
    }
    let os = lua.create_table()?;
    for (i, guess) in h.os.iter().enumerate() {
        let g = lua.create_table()?;
        g.set("name", guess.name.as_str())?;
        g.set("accuracy", guess.accuracy)?;
        os.set(i + 1, g)?;
    }
    t.set("os", os)?;
    let times = lua.create_table()?;
    if let Some(srtt) = h.srtt_us {
        times.set("srtt", srtt as f64 / 1e6)?;
        times.set("timeout", (srtt as f64 * 4.0 / 1e6).max(1.0))?;
    }
    t.set("times", times)?;
    t.set("registry", lua.create_table()?)?;
    // The scanned ports' states, for nmap.get_port_state (hostrules ask it whether a port is
    // open): "445/tcp" -> "open". Private to the libraries, hence the prefix.
    let states = lua.create_table()?;
    for p in &h.ports {
        states.set(format!("{}/{}", p.port, p.protocol.as_str()), p.state.as_str())?;
    }
    t.set("__rm_ports", states)?;
    Ok(t)
}

/// The `port` table for `p`.
pub fn port_table(lua: &Lua, p: &PortResult) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("number", p.port)?;
    t.set("protocol", p.protocol.as_str())?;
    t.set("state", p.state.as_str())?;
    t.set("reason", p.reason.as_str())?;
    t.set("reason_ttl", p.reason_ttl)?;
    let version = lua.create_table()?;
    if let Some(s) = &p.service {
        t.set("service", s.name.as_str())?;
        version.set("name", s.name.as_str())?;
        version.set("name_confidence", s.conf)?;
        version
            .set("service_dtype", if s.method == rustmap_model::ServiceMethod::Probed { "probed" } else { "table" })?;
        for (key, value) in [
            ("product", &s.product),
            ("version", &s.version),
            ("extrainfo", &s.extrainfo),
            ("hostname", &s.hostname),
            ("ostype", &s.ostype),
            ("devicetype", &s.devicetype),
            ("service_tunnel", &s.tunnel),
            ("service_fp", &s.fingerprint),
        ] {
            if let Some(v) = value {
                version.set(key, v.as_str())?;
            }
        }
        let cpe = lua.create_table()?;
        for (i, c) in s.cpe.iter().enumerate() {
            cpe.set(i + 1, c.as_str())?;
        }
        version.set("cpe", cpe)?;
    }
    if p.tls.is_some() && version.get::<Option<String>>("service_tunnel")?.is_none() {
        version.set("service_tunnel", "ssl")?;
    }
    t.set("version", version)?;
    Ok(t)
}
