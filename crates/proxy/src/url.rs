//! Proxy URLs as `--proxy` takes them: `socks5://[USER:PASS@]HOST:PORT` (names of targets
//! resolved here, as without a proxy) and `socks5h://...` (names of targets handed to the proxy
//! unresolved). The user name and password may be percent-encoded (`%40` for `@`, `%3A` for
//! `:`); each is 1 to 255 bytes, as RFC 1929 allows. The port is required: a proxy has no
//! well-known port worth guessing.
//!
//! A parsed URL never shows its password: [`ProxyUrl`]'s `Display` and `Debug` print `***` in
//! its place, so a URL can go into output headers and logs as it is.

use std::fmt;
use std::net::IpAddr;
use thiserror::Error;

/// What is wrong with a proxy URL. Each message names the bad part and shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UrlError {
    /// No `scheme://` at all.
    #[error("expected socks5://[USER:PASS@]HOST:PORT or socks5h://..., not {0:?}")]
    NoScheme(String),
    /// A scheme other than `socks5` / `socks5h`.
    #[error("unsupported proxy scheme {0:?}: use socks5:// or socks5h:// (remote name resolution)")]
    Scheme(String),
    /// Nothing between `://` (or `@`) and the port.
    #[error("the proxy URL has no host (expected socks5://HOST:PORT)")]
    MissingHost,
    /// A host that is neither an address nor a host name.
    #[error("invalid proxy host {0:?}")]
    BadHost(String),
    /// No `:PORT` after the host.
    #[error("the proxy URL has no port: give one, as in socks5://{0}:1080")]
    MissingPort(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid proxy port {0:?} (a number from 1 to 65535)")]
    BadPort(String),
    /// User name or password missing, empty, too long, or badly percent-encoded.
    #[error("invalid proxy credentials: {0}")]
    Credentials(&'static str),
    /// Something after `HOST:PORT` (a path, a query).
    #[error("unexpected {0:?} after the proxy's HOST:PORT")]
    Trailing(String),
}

/// A user name and password for the proxy (RFC 1929). `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Credentials, each part 1 to 255 bytes.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Result<Credentials, UrlError> {
        let (user, password) = (user.into(), password.into());
        if user.is_empty() || password.is_empty() {
            return Err(UrlError::Credentials("give both a user name and a password: socks5://USER:PASS@HOST:PORT"));
        }
        if user.len() > 255 || password.len() > 255 {
            return Err(UrlError::Credentials("the user name and the password are at most 255 bytes each"));
        }
        Ok(Credentials { user, password })
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"***").finish()
    }
}

/// A checked proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `socks5h://`: target names go to the proxy unresolved.
    pub remote_dns: bool,
    /// The proxy's host: an address or a name (IPv6 without its brackets).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// User name and password, if the URL has them.
    pub credentials: Option<Credentials>,
}

impl ProxyUrl {
    /// Parse `socks5://[USER:PASS@]HOST:PORT` or `socks5h://...` (a trailing `/` is allowed).
    pub fn parse(text: &str) -> Result<ProxyUrl, UrlError> {
        let t = text.trim();
        let Some((scheme, rest)) = t.split_once("://") else { return Err(UrlError::NoScheme(t.to_string())) };
        let remote_dns = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => false,
            "socks5h" => true,
            _ => return Err(UrlError::Scheme(scheme.to_string())),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // The last `@` ends the user information, so a password may hold an unencoded `@`.
        let (userinfo, hostport) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        if let Some(i) = hostport.find(['/', '?', '#']) {
            return Err(UrlError::Trailing(hostport[i..].to_string()));
        }
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let Some((user, password)) = u.split_once(':') else {
                    return Err(UrlError::Credentials(
                        "give both a user name and a password: socks5://USER:PASS@HOST:PORT",
                    ));
                };
                Some(Credentials::new(percent_decode(user)?, percent_decode(password)?)?)
            }
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(ProxyUrl { remote_dns, host, port, credentials })
    }

    /// The URL's scheme: `socks5` or `socks5h`.
    pub fn scheme(&self) -> &'static str {
        if self.remote_dns {
            "socks5h"
        } else {
            "socks5"
        }
    }

    /// `HOST:PORT` (`[V6]:PORT`), for messages.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL with `***` for the password.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme())?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:***@", percent_encode(c.user()))?;
        }
        f.write_str(&self.endpoint())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self})")
    }
}

fn split_host_port(s: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else { return Err(UrlError::BadHost(s.to_string())) };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadHost(host.to_string()));
        }
        match after.strip_prefix(':') {
            Some(p) => (host, p),
            None if after.is_empty() => return Err(UrlError::MissingPort(format!("[{host}]"))),
            None => return Err(UrlError::Trailing(after.to_string())),
        }
    } else {
        match s.rsplit_once(':') {
            // More than one colon without brackets: an IPv6 address missing them.
            Some((h, _)) if h.contains(':') => {
                return Err(UrlError::BadHost(format!("{s} (write IPv6 as [ADDR]:PORT)")))
            }
            Some((h, p)) => (h, p),
            None if s.is_empty() => return Err(UrlError::MissingHost),
            None => return Err(UrlError::MissingPort(s.to_string())),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(UrlError::BadHost(host.to_string()));
    }
    if port.is_empty() {
        return Err(UrlError::MissingPort(host.to_string()));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => return Err(UrlError::BadPort(port.to_string())),
    };
    Ok((host.to_string(), port))
}

/// Letters, digits, `-`, `_` and dots, at most 253 bytes, no empty label.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn percent_decode(s: &str) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                return Err(UrlError::Credentials("a % must be followed by two hex digits (%40 for @, %3A for :)"));
            };
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Credentials("percent-encoded bytes that are not UTF-8"))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let u = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!((u.remote_dns, u.host.as_str(), u.port, u.credentials.is_none()), (false, "127.0.0.1", 1080, true));
        let u = ProxyUrl::parse("SOCKS5H://proxy.example.com:9050/").unwrap();
        assert!(u.remote_dns);
        assert_eq!(u.host, "proxy.example.com");
        let u = ProxyUrl::parse("socks5://[::1]:1080").unwrap();
        assert_eq!((u.host.as_str(), u.endpoint()), ("::1", "[::1]:1080".to_string()));
        let u = ProxyUrl::parse("socks5://alice:s3cr%40t:x@localhost:1080").unwrap();
        let c = u.credentials.as_ref().unwrap();
        assert_eq!((c.user(), c.password()), ("alice", "s3cr@t:x"));
        // An unencoded @ in the password: the last @ ends the user information.
        let u = ProxyUrl::parse("socks5://bob:p@ss@10.0.0.1:1080").unwrap();
        assert_eq!(u.credentials.unwrap().password(), "p@ss");
    }

    #[test]
    fn the_password_is_never_shown() {
        let u = ProxyUrl::parse("socks5h://al%20ice:hunter2@127.0.0.1:1080").unwrap();
        assert_eq!(u.to_string(), "socks5h://al%20ice:***@127.0.0.1:1080");
        let dbg = format!("{u:?} {:?}", u.credentials);
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn bad_urls_name_the_bad_part() {
        let cases: &[(&str, UrlError)] = &[
            ("127.0.0.1:1080", UrlError::NoScheme("127.0.0.1:1080".into())),
            ("http://127.0.0.1:8080", UrlError::Scheme("http".into())),
            ("socks4://127.0.0.1:1080", UrlError::Scheme("socks4".into())),
            ("socks5://127.0.0.1", UrlError::MissingPort("127.0.0.1".into())),
            ("socks5://127.0.0.1:", UrlError::MissingPort("127.0.0.1".into())),
            ("socks5://[::1]", UrlError::MissingPort("[::1]".into())),
            ("socks5://127.0.0.1:socks", UrlError::BadPort("socks".into())),
            ("socks5://127.0.0.1:0", UrlError::BadPort("0".into())),
            ("socks5://127.0.0.1:70000", UrlError::BadPort("70000".into())),
            ("socks5://127.0.0.1:+80", UrlError::BadPort("+80".into())),
            ("socks5://:1080", UrlError::MissingHost),
            ("socks5://", UrlError::MissingHost),
            ("socks5://bad host:1080", UrlError::BadHost("bad host".into())),
            ("socks5://[nope]:1080", UrlError::BadHost("nope".into())),
            ("socks5://127.0.0.1:1080/path", UrlError::Trailing("/path".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&ProxyUrl::parse(text).unwrap_err(), want, "{text}");
        }
        for text in
            ["socks5://alice@h:1", "socks5://:pw@h:1", "socks5://a:@h:1", "socks5://a:%4@h:1", "socks5://a:%zz@h:1"]
        {
            assert!(matches!(ProxyUrl::parse(text), Err(UrlError::Credentials(_))), "{text}");
        }
        let long = "x".repeat(256);
        assert!(matches!(ProxyUrl::parse(&format!("socks5://{long}:pw@h:1")), Err(UrlError::Credentials(_))));
        let e = ProxyUrl::parse("socks5://127.0.0.1").unwrap_err().to_string();
        assert!(e.contains("socks5://127.0.0.1:1080"), "{e}");
        assert!(ProxyUrl::parse("socks5://::1:1080").unwrap_err().to_string().contains("[ADDR]:PORT"));
    }
}
