//! The only place RustMap touches raw networking: privilege checks, interfaces, the routing table,
//! the neighbour (ARP) table, and the sockets that send hand-made packets (raw IP with the header
//! included, AF_PACKET frames) and capture replies (AF_PACKET, cooked).
//!
//! It is also the only crate with `unsafe` code: binding and reading `sockaddr_ll` addresses and
//! setting packet-socket options that no safe wrapper offers. Each block states why it is sound.
//! Everything here is synchronous; the engine runs it on its own threads.

pub mod capture;
pub mod iface;
pub mod neigh;
pub mod privilege;
pub mod raw;
pub mod route;

use std::io;
use std::net::IpAddr;
use thiserror::Error;

/// Errors of this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NetioError {
    /// No route to the address.
    #[error("no route to {0}")]
    NoRoute(IpAddr),
    /// A raw socket could not be opened for lack of privileges.
    #[error(
        "raw sockets need CAP_NET_RAW: run as root, or give the binary the capabilities once: {} \
         (docs/install.md)",
        crate::privilege::GRANT_COMMAND
    )]
    NotPrivileged,
    /// Some other system error.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: io::Error,
    },
}

impl NetioError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> NetioError {
        if matches!(source.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
            return NetioError::NotPrivileged;
        }
        NetioError::Io { context: context.into(), source }
    }
}
