//! Checking the evasion options of a [`ScanConfig`] and turning them into the engine's
//! [`Evasion`]: decoy lists (`-D a,ME,RND:3`), fragment sizes (`-f`, `-ff`, `--mtu`), the
//! payload options (`--data-hex`, `--data-string`, `--data-length`), `--ttl`, `--spoof-mac`,
//! `--badsum`, `--ip-options` and `-g`. Every one of them shapes raw packets, so a scan whose
//! packets are the kernel's (a connect scan, an unprivileged ping scan, a list scan) refuses
//! them rather than ignore them.

use crate::validate::{conflict, invalid, ConfigError};
use rand::Rng;
use rustmap_engine::Evasion;
use rustmap_model::config::ScanMode;
use rustmap_model::{ScanConfig, ScanType};
use std::net::{IpAddr, Ipv4Addr};

/// The most decoys one scan takes (each probe is sent once per decoy).
pub const MAX_DECOYS: usize = 128;
/// The IPv4 options field holds at most 40 bytes.
const MAX_IP_OPTIONS: usize = 40;
/// The largest custom payload: a probe must still fit one Ethernet frame unfragmented.
pub const MAX_DATA: usize = 1400;

/// The evasion options set in `c`, spelled as the user types them (for messages).
fn options_set(c: &ScanConfig) -> Vec<&'static str> {
    let e = &c.evasion;
    let mut set = Vec::new();
    let mut flag = |on: bool, name: &'static str| {
        if on {
            set.push(name);
        }
    };
    flag(e.decoys.is_some(), "-D");
    flag(e.fragment > 0, "-f");
    flag(e.mtu.is_some(), "--mtu");
    flag(e.source_port.is_some(), "-g");
    flag(e.data_hex.is_some(), "--data-hex");
    flag(e.data_string.is_some(), "--data-string");
    flag(e.data_length.is_some(), "--data-length");
    flag(e.ttl.is_some(), "--ttl");
    flag(e.spoof_mac.is_some(), "--spoof-mac");
    flag(e.badsum, "--badsum");
    flag(e.ip_options.is_some(), "--ip-options");
    set
}

/// Check the evasion options against the scan they go with (`types`, whether raw sockets may
/// be used) and build the engine's form. `rng` draws random decoys, payloads and MACs.
pub(crate) fn evasion(
    c: &ScanConfig,
    types: &[ScanType],
    raw: bool,
    rng: &mut impl Rng,
) -> Result<Evasion, ConfigError> {
    let e = &c.evasion;
    let set = options_set(c);
    if let Some(first) = set.first() {
        let why = if c.mode == ScanMode::List {
            Some("-sL sends nothing")
        } else if types.contains(&ScanType::Connect) {
            Some("a connect scan's packets are built by the kernel; use a raw scan such as -sS or -sU (root)")
        } else if !raw {
            Some("it shapes raw packets, which need root or CAP_NET_RAW")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(conflict("evasion", format!("{first} cannot be used here: {why}")));
        }
    }
    let mut out = Evasion {
        source_port: e.source_port,
        badsum: e.badsum,
        fragment: fragment(e.fragment, e.mtu)?,
        payload: payload(c, rng)?,
        ..Evasion::default()
    };
    if let Some(t) = e.ttl {
        out.ttl = Some(
            u8::try_from(t)
                .map_err(|_| invalid("evasion.ttl", t.to_string(), format!("--ttl {t}: must be 0 to 255")))?,
        );
    }
    if let Some(d) = &e.decoys {
        out.decoys = decoys(d, rng)?;
    }
    if let Some(m) = &e.spoof_mac {
        if c.origin.send_ip {
            return Err(conflict(
                "evasion.spoof_mac",
                "--spoof-mac needs Ethernet frames; --send-ip sends raw IP packets",
            ));
        }
        out.spoof_mac = Some(spoof_mac(m, rng)?);
    }
    if let Some(o) = &e.ip_options {
        out.ip_options = ip_options(o)?;
    }
    Ok(out)
}

fn fragment(f: u8, mtu: Option<u16>) -> Result<Option<u16>, ConfigError> {
    if let Some(m) = mtu {
        if m == 0 || !m.is_multiple_of(8) || m > 1480 {
            return Err(invalid(
                "evasion.mtu",
                m.to_string(),
                format!("--mtu {m}: the fragment size must be a multiple of 8 from 8 to 1480"),
            ));
        }
        return Ok(Some(m));
    }
    Ok(match f {
        0 => None,
        1 => Some(8),
        _ => Some(16),
    })
}

fn payload(c: &ScanConfig, rng: &mut impl Rng) -> Result<Option<Vec<u8>>, ConfigError> {
    let e = &c.evasion;
    let given = [e.data_hex.is_some(), e.data_string.is_some(), e.data_length.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(conflict("evasion.data", "--data-hex, --data-string and --data-length are alternatives: give one"));
    }
    let data = if let Some(h) = &e.data_hex {
        Some(hex(h)?)
    } else if let Some(s) = &e.data_string {
        Some(s.as_bytes().to_vec())
    } else {
        e.data_length.map(|n| (0..n.min(MAX_DATA + 1)).map(|_| rng.random::<u8>()).collect())
    };
    match data {
        Some(d) if d.len() > MAX_DATA => {
            let (field, flag) = if e.data_hex.is_some() {
                ("evasion.data_hex", "--data-hex")
            } else if e.data_string.is_some() {
                ("evasion.data_string", "--data-string")
            } else {
                ("evasion.data_length", "--data-length")
            };
            let n = e.data_length.unwrap_or(d.len());
            Err(invalid(
                field,
                n.to_string(),
                format!("{flag}: {n} bytes is more than the {MAX_DATA} a probe can carry"),
            ))
        }
        d => Ok(d),
    }
}

/// Hex bytes as nmap takes them: `deadbeef`, `0xdeadbeef`, `\xde\xad\xbe\xef`.
fn hex(s: &str) -> Result<Vec<u8>, ConfigError> {
    let bad = |why: &str| invalid("evasion.data_hex", s, format!("--data-hex {s:?}: {why}"));
    let t = s.trim();
    let digits: String = if t.contains("\\x") {
        t.split("\\x").collect()
    } else {
        t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t).to_string()
    };
    if digits.is_empty() {
        return Err(bad("no bytes given"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(bad("an odd number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2).unwrap_or("zz"), 16).map_err(|_| bad("not hex")))
        .collect()
}

/// Is `a` a random decoy worth using: a unicast address outside the private, shared, loopback,
/// link-local, documentation, benchmarking, multicast and reserved blocks.
fn usable_random(a: Ipv4Addr) -> bool {
    let [o1, o2, ..] = a.octets();
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || a.is_unspecified()
        || o1 == 0
        || o1 >= 240
        || (o1 == 100 && (64..128).contains(&o2))
        || (o1 == 198 && (18..20).contains(&o2))
        || (o1 == 192 && o2 == 0))
}

/// A decoy list: addresses, `ME` at most once (placed at random when absent), `RND` and
/// `RND:N` for random ones.
fn decoys(s: &str, rng: &mut impl Rng) -> Result<Vec<Option<IpAddr>>, ConfigError> {
    let bad = |v: &str, why: String| invalid("evasion.decoys", v, format!("-D {s}: {why}"));
    let mut out: Vec<Option<IpAddr>> = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.eq_ignore_ascii_case("ME") {
            if out.contains(&None) {
                return Err(bad(item, "ME is given twice".into()));
            }
            out.push(None);
        } else if let Some(rest) = item.get(..3).filter(|p| p.eq_ignore_ascii_case("RND")).map(|_| &item[3..]) {
            // (`get`: a multi-byte character in the first three bytes is no RND, and no panic.)
            let n: usize = match rest {
                "" => 1,
                rest => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=MAX_DECOYS).contains(n))
                    .ok_or_else(|| bad(item, format!("{item:?}: use RND or RND:N with N from 1 to {MAX_DECOYS}")))?,
            };
            for _ in 0..n {
                let a = loop {
                    let a = Ipv4Addr::from(rng.random::<u32>());
                    if usable_random(a) {
                        break a;
                    }
                };
                out.push(Some(IpAddr::V4(a)));
            }
        } else {
            let a: IpAddr =
                item.parse().map_err(|_| bad(item, format!("{item:?} is not an IP address, ME or RND[:N]")))?;
            if a.is_unspecified() || a.is_multicast() {
                return Err(bad(item, format!("{item} cannot be a source address")));
            }
            out.push(Some(a));
        }
        if out.len() > MAX_DECOYS + 1 {
            return Err(bad(item, format!("more than {MAX_DECOYS} decoys")));
        }
    }
    if !out.contains(&None) {
        // nmap's rule: without ME, our own place in the order is random.
        let at = rng.random_range(0..=out.len());
        out.insert(at, None);
    }
    Ok(out)
}

/// `--spoof-mac`: `0` (random), a whole MAC (`:`/`-` separated or not), or a prefix of one
/// (the rest random).
fn spoof_mac(s: &str, rng: &mut impl Rng) -> Result<[u8; 6], ConfigError> {
    let digits: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    let bad = || {
        invalid(
            "evasion.spoof_mac",
            s,
            format!("--spoof-mac {s:?}: give a MAC address (02:11:22:33:44:55), a hex prefix of one, or 0 for random (vendor names are not supported)"),
        )
    };
    if digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_hexdigit()) || digits.is_empty() {
        return Err(bad());
    }
    let mut mac: [u8; 6] = rng.random();
    if digits == "0" {
        // Random, locally administered and unicast.
        mac[0] = (mac[0] & 0xfc) | 0x02;
        return Ok(mac);
    }
    if !digits.len().is_multiple_of(2) {
        return Err(bad());
    }
    for (i, byte) in mac.iter_mut().enumerate().take(digits.len() / 2) {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 {
        return Err(invalid(
            "evasion.spoof_mac",
            s,
            format!("--spoof-mac {s}: a multicast address cannot be a source"),
        ));
    }
    Ok(mac)
}

/// `--ip-options`: `R` (record route), `T` (timestamps), `U` (timestamps and addresses),
/// `L addr…` / `S addr…` (loose / strict source route), or raw bytes as `\x..` hex.
fn ip_options(s: &str) -> Result<Vec<u8>, ConfigError> {
    let bad = |why: &str| invalid("evasion.ip_options", s, format!("--ip-options {s:?}: {why}"));
    let t = s.trim();
    let bytes = match t.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["R"] => {
            // Room for 9 addresses: the most the 40-byte options field holds.
            let mut o = vec![7, 39, 4];
            o.resize(39, 0);
            o
        }
        ["T"] | ["U"] => {
            let (len, flag) = if t == "T" { (40u8, 0u8) } else { (36, 1) };
            let mut o = vec![68, len, 5, flag];
            o.resize(usize::from(len), 0);
            o
        }
        [kind @ ("L" | "S"), hops @ ..] if !hops.is_empty() => {
            if hops.len() > 9 {
                return Err(bad("at most 9 hops fit"));
            }
            let mut o = vec![if *kind == "L" { 131 } else { 137 }, (3 + 4 * hops.len()) as u8, 4];
            for h in hops {
                let a: Ipv4Addr = h.parse().map_err(|_| bad("a route hop is not an IPv4 address"))?;
                o.extend_from_slice(&a.octets());
            }
            o
        }
        _ if t.starts_with("\\x") => hex(t).map_err(|_| bad("not hex bytes"))?,
        _ => return Err(bad("use R, T, U, L <hops>, S <hops> or \\x.. hex bytes")),
    };
    if bytes.len() > MAX_IP_OPTIONS {
        return Err(bad("IPv4 options are at most 40 bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cfg(f: impl FnOnce(&mut ScanConfig)) -> ScanConfig {
        let mut c = ScanConfig::new(["198.18.0.10"]);
        f(&mut c);
        c
    }

    fn check(c: &ScanConfig) -> Result<Evasion, ConfigError> {
        evasion(c, &[ScanType::Syn], true, &mut StdRng::seed_from_u64(3))
    }

    #[test]
    fn decoy_lists() {
        let mut rng = StdRng::seed_from_u64(1);
        let a: IpAddr = "198.18.0.201".parse().unwrap();
        let b: IpAddr = "fd00::9".parse().unwrap();
        assert_eq!(decoys("198.18.0.201,ME,fd00::9", &mut rng).unwrap(), vec![Some(a), None, Some(b)]);
        let d = decoys("RND:5", &mut rng).unwrap();
        assert_eq!(d.len(), 6);
        assert_eq!(d.iter().filter(|x| x.is_none()).count(), 1);
        for x in d.into_iter().flatten() {
            let IpAddr::V4(v4) = x else { panic!() };
            assert!(usable_random(v4), "{v4}");
        }
        assert_eq!(decoys("rnd,me", &mut rng).unwrap().len(), 2);
        for (bad, names) in [
            ("ME,ME", "twice"),
            ("RND:0", "RND:N"),
            ("RND:x", "RND:N"),
            ("RND:129", "RND:N"),
            ("decoy.example", "not an IP address"),
            ("0.0.0.0", "cannot be a source"),
            // Found by the `profile` fuzz target: a multi-byte character across the first
            // three bytes once panicked the RND check (slicing inside a character).
            ("ME\u{536}ND:3", "not an IP address"),
            ("\u{536}x", "not an IP address"),
        ] {
            let e = decoys(bad, &mut rng).unwrap_err();
            assert!(e.message.contains(names), "{bad}: {}", e.message);
            assert_eq!(e.field, "evasion.decoys");
        }
    }

    #[test]
    fn payloads_hex_and_lengths() {
        assert_eq!(hex("deadbeef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(hex("0xDEAD").unwrap(), [0xde, 0xad]);
        assert_eq!(hex("\\xde\\xad").unwrap(), [0xde, 0xad]);
        for bad in ["", "abc", "zz", "0x"] {
            assert!(hex(bad).is_err(), "{bad}");
        }
        let e = check(&cfg(|c| c.evasion.data_length = Some(5000))).unwrap_err();
        assert!(e.message.contains("--data-length: 5000 bytes"), "{}", e.message);
        let p = check(&cfg(|c| c.evasion.data_length = Some(32))).unwrap().payload.unwrap();
        assert_eq!(p.len(), 32);
        let p = check(&cfg(|c| c.evasion.data_string = Some("HELLO".into()))).unwrap().payload;
        assert_eq!(p.as_deref(), Some(&b"HELLO"[..]));
        let both = cfg(|c| {
            c.evasion.data_string = Some("x".into());
            c.evasion.data_hex = Some("00".into());
        });
        assert!(check(&both).unwrap_err().message.contains("alternatives"));
    }

    #[test]
    fn fragments_ttl_and_macs() {
        assert_eq!(check(&cfg(|c| c.evasion.fragment = 1)).unwrap().fragment, Some(8));
        assert_eq!(check(&cfg(|c| c.evasion.fragment = 2)).unwrap().fragment, Some(16));
        assert_eq!(check(&cfg(|c| c.evasion.mtu = Some(24))).unwrap().fragment, Some(24));
        let e = check(&cfg(|c| c.evasion.mtu = Some(30))).unwrap_err();
        assert!(e.message.contains("--mtu 30") && e.message.contains("multiple of 8"), "{}", e.message);
        let e = check(&cfg(|c| c.evasion.ttl = Some(300))).unwrap_err();
        assert!(e.message.contains("--ttl 300"), "{}", e.message);
        let mut rng = StdRng::seed_from_u64(2);
        assert_eq!(spoof_mac("02:11:22:33:44:55", &mut rng).unwrap(), [2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(spoof_mac("021122334455", &mut rng).unwrap(), [2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(spoof_mac("02:11:22", &mut rng).unwrap()[..3], [2, 0x11, 0x22]);
        let r = spoof_mac("0", &mut rng).unwrap();
        assert_eq!(r[0] & 3, 2, "random MACs are local and unicast");
        for bad in ["Apple", "01:00:5e:00:00:01", "0211223344556677", "1"] {
            assert!(spoof_mac(bad, &mut rng).is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_option_spellings() {
        assert_eq!(ip_options("R").unwrap().len(), 39);
        assert_eq!(ip_options("T").unwrap()[..4], [68, 40, 5, 0]);
        assert_eq!(ip_options("U").unwrap()[..4], [68, 36, 5, 1]);
        assert_eq!(ip_options("L 198.18.0.1 198.18.1.2").unwrap(), [131, 11, 4, 198, 18, 0, 1, 198, 18, 1, 2]);
        assert_eq!(ip_options("\\x01\\x01").unwrap(), [1, 1]);
        for bad in ["X", "L", "L 1.2.3", "S a b", "\\xzz"] {
            let e = ip_options(bad).unwrap_err();
            assert!(e.message.contains("--ip-options"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn connect_and_list_scans_refuse_evasion() {
        let c = cfg(|c| c.evasion.decoys = Some("198.18.0.201,ME".into()));
        let e = evasion(&c, &[ScanType::Connect], true, &mut StdRng::seed_from_u64(1)).unwrap_err();
        assert!(e.message.starts_with("-D cannot be used here: a connect scan"), "{}", e.message);
        let c = cfg(|c| c.evasion.fragment = 1);
        let e = evasion(&c, &[ScanType::Syn], false, &mut StdRng::seed_from_u64(1)).unwrap_err();
        assert!(e.message.contains("-f cannot be used here") && e.message.contains("CAP_NET_RAW"), "{}", e.message);
        let c = cfg(|c| {
            c.mode = ScanMode::List;
            c.evasion.badsum = true;
        });
        assert!(evasion(&c, &[], true, &mut StdRng::seed_from_u64(1)).unwrap_err().message.contains("-sL"));
        // Nothing set: fine with any scan.
        assert_eq!(
            evasion(&cfg(|_| {}), &[ScanType::Connect], false, &mut StdRng::seed_from_u64(1)).unwrap(),
            Evasion::default()
        );
    }
}
