//! [`Dialer`]: the one way RustMap's TCP connections for service detection (and, later, scripts)
//! are opened: straight to the target (bound to `-S`'s address if given), or through the SOCKS5
//! proxy of `--proxy`. Code that talks to a service asks a `Dialer` for its stream and never
//! needs to know which.
//!
//! The connect scan itself does not use it: it needs the proxy's exact answer to classify a port
//! (see `rustmap_engine::proxied`), and opens its direct connections on its own epoll threads.

use crate::{ConnectError, Reply, Socks5};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Opens TCP connections to targets, directly or through a proxy.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    bind: Option<IpAddr>,
    proxy: Option<Arc<Socks5>>,
}

impl Dialer {
    /// Straight to targets, from `bind` when it is of the target's family.
    pub fn direct(bind: Option<IpAddr>) -> Dialer {
        Dialer { bind, proxy: None }
    }

    /// Through `proxy`.
    pub fn through(proxy: Arc<Socks5>) -> Dialer {
        Dialer { bind: None, proxy: Some(proxy) }
    }

    /// The proxy connections go through, if any.
    pub fn proxy(&self) -> Option<&Arc<Socks5>> {
        self.proxy.as_ref()
    }

    /// A connection to `target`, or why not, within `within` (through a proxy: reaching the
    /// proxy has its own bound, `within` is for the proxy's answer). A proxy's refusal comes
    /// back as `ConnectionRefused`, no answer in time as `TimedOut`.
    pub async fn connect(&self, target: SocketAddr, within: Duration) -> io::Result<TcpStream> {
        match &self.proxy {
            None => {
                let sock = if target.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }?;
                if let Some(addr) = self.bind.filter(|a| a.is_ipv4() == target.is_ipv4()) {
                    sock.bind(SocketAddr::new(addr, 0))?;
                }
                match tokio::time::timeout(within, sock.connect(target)).await {
                    Ok(r) => r,
                    Err(_) => Err(io::ErrorKind::TimedOut.into()),
                }
            }
            Some(p) => match p.connect(target, within).await {
                Ok(t) => Ok(t.stream),
                Err(ConnectError::Refused { reply: Reply::ConnectionRefused, .. }) => {
                    Err(io::ErrorKind::ConnectionRefused.into())
                }
                Err(ConnectError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
                Err(e) => Err(io::Error::other(e)),
            },
        }
    }
}
