//! RustMap's SOCKS5 client (`--proxy`).
//!
//! - [`url`]: `socks5://[USER:PASS@]HOST:PORT` and `socks5h://` parsed and checked
//!   ([`ProxyUrl`], [`UrlError`]); the password never shows in `Display` or `Debug`.
//! - `socks5`: the protocol's messages (RFC 1928, RFC 1929) as pure functions over bytes.
//! - [`client`]: [`Socks5`], one proxy: the up-front [`check`](Socks5::check), CONNECT through
//!   it with the proxy's answer ([`ConnectError`], [`Reply`]), placeholder addresses for target
//!   names the proxy resolves (`socks5h://`).
//! - [`dial`]: [`Dialer`], how detection opens its TCP connections, with or without a proxy.
//!
//! Why not a SOCKS crate: the scan needs to authenticate without asking the proxy to connect
//! anywhere (the up-front check), to tell every step's failure apart (the proxy is down, it
//! wants a password, the password is wrong: each fails the scan; the target refused: the port is
//! closed), and to survive any bytes a proxy sends. `tokio-socks` 0.5 authenticates only as part
//! of a request; `fast-socks5` 1.0 panics on a reply code it does not know. The protocol is a few
//! fixed-size messages, kept here as pure functions with byte-level tests.

#![forbid(unsafe_code)]

pub mod client;
pub mod dial;
mod socks5;
pub mod url;

pub use client::{ConnectError, ProxyError, Socks5, Stage, Tunnel};
pub use dial::Dialer;
pub use socks5::{Reply, Target};
pub use url::{Credentials, ProxyUrl, UrlError};
