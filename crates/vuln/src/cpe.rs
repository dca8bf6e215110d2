//! CPE names: parsing CPE 2.2 URIs (`cpe:/a:openbsd:openssh:9.2p1`, as nmap and service
//! detection write them) and CPE 2.3 formatted strings (`cpe:2.3:a:openbsd:openssh:9.3:p1:*:...`,
//! as the NVD writes them), and the small table of vendor aliases between the two worlds.

/// The parts of a CPE name this crate matches on, lower-cased and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpe {
    /// `a` (application), `o` (operating system) or `h` (hardware).
    pub part: String,
    /// The vendor (`openbsd`).
    pub vendor: String,
    /// The product (`openssh`).
    pub product: String,
    /// The version with its update appended when there is one (`9.3` + `p1` = `9.3p1`); `None`
    /// when the CPE names no version (empty, `*` or `-`).
    pub version: Option<String>,
}

/// Decode a CPE 2.2 URI component's `%xx` escapes (anything else is kept as written).
fn decode_uri(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split a CPE 2.3 formatted string at unescaped `:` and drop the `\` escapes.
fn split_fs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A version component that names a version (not empty, `*`, `-` or `ANY`/`NA`).
fn named(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s != "*" && s != "-").then_some(s)
}

/// Parse a CPE 2.2 URI or a CPE 2.3 formatted string. `None` when it is neither, or has no
/// vendor or product.
pub fn parse(s: &str) -> Option<Cpe> {
    let s = s.trim();
    let fields: Vec<String> = if let Some(rest) = s.strip_prefix("cpe:2.3:") {
        split_fs(rest)
    } else if let Some(rest) = s.strip_prefix("cpe:/") {
        rest.split(':').map(decode_uri).collect()
    } else {
        return None;
    };
    let get = |i: usize| fields.get(i).map(|f| f.to_ascii_lowercase());
    let part = get(0)?;
    let vendor = get(1)?;
    let product = get(2)?;
    if !matches!(part.as_str(), "a" | "o" | "h") || named(&vendor).is_none() || named(&product).is_none() {
        return None;
    }
    let version = fields.get(3).and_then(|v| named(v)).map(|v| {
        let mut v = v.to_string();
        if let Some(u) = fields.get(4).and_then(|u| named(u)) {
            v.push_str(u);
        }
        v
    });
    Some(Cpe { part, vendor, product, version })
}

/// Groups of (vendor, product) names that mean the same software: nmap-style CPEs (left) and
/// the NVD (right) do not always agree. Every member of a group matches the rules of all others.
///
/// Kept small on purpose; each line is a real disagreement between nmap's service probes and the
/// NVD's CPE dictionary (vendor renames, product renames).
pub const ALIASES: &[&[(&str, &str)]] = &[
    // nginx: nmap says igor_sysoev, the NVD moved from nginx to f5.
    &[("igor_sysoev", "nginx"), ("f5", "nginx"), ("nginx", "nginx")],
    // Redis: redislabs in older NVD entries and nmap, redis in newer ones.
    &[("redislabs", "redis"), ("redis", "redis")],
    // MySQL: Sun-era and Oracle-era vendor names.
    &[("mysql", "mysql"), ("oracle", "mysql")],
    // Dropbear: nmap's name and the NVD's.
    &[("matt_johnston", "dropbear_ssh_server"), ("dropbear_ssh_project", "dropbear_ssh")],
    // RabbitMQ: nmap's name, Pivotal-era and VMware-era NVD names.
    &[("vmware", "rabbitmq"), ("pivotal_software", "rabbitmq_server"), ("vmware", "rabbitmq_server")],
    // vsftpd: nmap says vsftpd, the NVD used beasts and now vsftpd_project.
    &[("vsftpd", "vsftpd"), ("beasts", "vsftpd"), ("vsftpd_project", "vsftpd")],
    // Mosquitto: moved to Eclipse from its own vendor name.
    &[("eclipse", "mosquitto"), ("mosquitto", "mosquitto")],
    // Tomcat and Apache HTTP Server are `apache`; PostgreSQL has used two names.
    &[("postgresql", "postgresql"), ("postgresql_global_development_group", "postgresql")],
];

/// Every (vendor, product) that means the same software as `vendor`/`product`, itself first.
pub fn aliases(vendor: &str, product: &str) -> Vec<(String, String)> {
    let mut out = vec![(vendor.to_string(), product.to_string())];
    for group in ALIASES {
        if group.iter().any(|&(v, p)| v == vendor && p == product) {
            for &(v, p) in group.iter() {
                if !(v == vendor && p == product) {
                    out.push((v.to_string(), p.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpe22_uris() {
        let c = parse("cpe:/a:openbsd:openssh:9.2p1").unwrap();
        assert_eq!((c.part.as_str(), c.vendor.as_str(), c.product.as_str()), ("a", "openbsd", "openssh"));
        assert_eq!(c.version.as_deref(), Some("9.2p1"));
        assert_eq!(parse("cpe:/o:linux:linux_kernel").unwrap().version, None);
        assert_eq!(parse("cpe:/a:Igor_Sysoev:NGINX:1.22.1").unwrap().vendor, "igor_sysoev");
        assert_eq!(parse("cpe:/a:x:y:1.0%7e2").unwrap().version.as_deref(), Some("1.0~2"));
        assert_eq!(parse("cpe:/a:x:y:1.0%").unwrap().version.as_deref(), Some("1.0%"));
        assert_eq!(parse("cpe:/a:x:y:7.4:p1").unwrap().version.as_deref(), Some("7.4p1"));
    }

    #[test]
    fn cpe23_strings() {
        let c = parse("cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*").unwrap();
        assert_eq!(c.version.as_deref(), Some("9.3p1"));
        let c = parse("cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*").unwrap();
        assert_eq!(c.version, None);
        let c = parse("cpe:2.3:a:net-snmp:net-snmp:5.9.3:-:*:*:*:*:*:*").unwrap();
        assert_eq!(c.version.as_deref(), Some("5.9.3"));
        let c = parse(r"cpe:2.3:a:foo\:bar:baz:1\.0:*:*:*:*:*:*:*").unwrap();
        assert_eq!((c.vendor.as_str(), c.version.as_deref()), ("foo:bar", Some("1.0")));
    }

    #[test]
    fn not_cpes() {
        for s in ["", "cpe:", "cpe:/", "cpe:/a", "cpe:/a:x", "cpe:/z:x:y", "cpe:2.3:a:*:x", "http://x", "cpe:/a::y"] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn alias_groups() {
        let a = aliases("igor_sysoev", "nginx");
        assert_eq!(a.len(), 3);
        assert!(a.contains(&("f5".into(), "nginx".into())));
        assert_eq!(aliases("openbsd", "openssh"), vec![("openbsd".into(), "openssh".into())]);
        assert!(aliases("vsftpd", "vsftpd").contains(&("vsftpd_project".into(), "vsftpd".into())));
    }
}
