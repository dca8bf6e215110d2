//! The SOCKS5 client: [`Socks5`] talks to one proxy. [`Socks5::check`] is the up-front check
//! (TCP connect, greeting, authentication, nothing more), [`Socks5::connect`] opens one
//! connection to a target through the proxy and says what the proxy answered.
//!
//! Every step is bounded in time: reaching the proxy, its greeting and authentication share one
//! deadline ([`Socks5::HANDSHAKE_TIMEOUT`] unless set otherwise), and the answer to CONNECT has
//! the caller's (a probe's timeout). Errors say which step failed and never show the password.
//!
//! With `socks5h://`, target names are not resolved here: the pipeline gives each name a
//! placeholder address ([`Socks5::placeholder`]) that the scan carries as the host's address,
//! and a CONNECT to a placeholder names the host instead ([`Target::Name`]). Placeholders come
//! from 0.0.0.0/8 ("this network", never a real destination), in the order names are met.

use crate::socks5::{self, GreetingError, HeadError, Method, Reply, ReplyHead, Target};
use crate::ProxyUrl;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// A step of talking to the proxy, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the TCP connection to the proxy.
    Connect,
    /// The greeting (choice of authentication method).
    Greeting,
    /// User name and password.
    Auth,
    /// The CONNECT request and its answer.
    Request,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "the connection to it",
            Stage::Greeting => "the greeting",
            Stage::Auth => "authentication",
            Stage::Request => "the CONNECT request",
        })
    }
}

/// The proxy itself failed: it cannot be reached, does not speak SOCKS5, or refused us. For a
/// scan this is fatal, never a port state.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy's host name does not resolve.
    #[error("cannot resolve the SOCKS5 proxy's host {host:?}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The TCP connection to the proxy failed (refused, no route).
    #[error("SOCKS5 proxy {proxy} is unreachable: {source}")]
    Unreachable {
        /// `HOST:PORT`.
        proxy: String,
        /// The connect error.
        source: io::Error,
    },
    /// The proxy did not answer in time.
    #[error("SOCKS5 proxy {proxy} did not answer within {} s ({stage})", within.as_secs_f64())]
    Timeout {
        /// `HOST:PORT`.
        proxy: String,
        /// Where it went silent.
        stage: Stage,
        /// The time allowed.
        within: Duration,
    },
    /// The proxy closed the connection (or reset it) before answering.
    #[error("SOCKS5 proxy {proxy} closed the connection during {stage}")]
    Closed {
        /// `HOST:PORT`.
        proxy: String,
        /// During which step.
        stage: Stage,
    },
    /// Another I/O error on the connection to the proxy.
    #[error("SOCKS5 proxy {proxy}: {source} during {stage}")]
    Io {
        /// `HOST:PORT`.
        proxy: String,
        /// During which step.
        stage: Stage,
        /// The error.
        source: io::Error,
    },
    /// What answered is not a SOCKS5 proxy.
    #[error("{proxy} is not a SOCKS5 proxy (its answer began with byte {byte:#04x})")]
    NotSocks5 {
        /// `HOST:PORT`.
        proxy: String,
        /// The first byte of its answer.
        byte: u8,
    },
    /// The proxy wants authentication and the URL has no credentials.
    #[error(
        "SOCKS5 proxy {proxy} refused to serve without authentication: give a user name and password \
         (socks5://USER:PASS@{proxy})"
    )]
    AuthRequired {
        /// `HOST:PORT`.
        proxy: String,
    },
    /// The proxy accepts neither of the methods offered (no authentication, user name/password).
    #[error("SOCKS5 proxy {proxy} accepts neither user name/password nor no authentication")]
    MethodRefused {
        /// `HOST:PORT`.
        proxy: String,
    },
    /// The proxy chose a method that was not offered.
    #[error("SOCKS5 proxy {proxy} chose authentication method {method:#04x}, which RustMap did not offer")]
    UnexpectedMethod {
        /// `HOST:PORT`.
        proxy: String,
        /// The method.
        method: u8,
    },
    /// User name or password refused.
    #[error("SOCKS5 proxy {proxy}: authentication failed for user {user:?} (wrong user name or password?)")]
    AuthFailed {
        /// `HOST:PORT`.
        proxy: String,
        /// The user name tried.
        user: String,
        /// The proxy's status byte.
        status: u8,
    },
    /// An answer that breaks the protocol.
    #[error("SOCKS5 proxy {proxy}: malformed answer during {stage}: {what}")]
    Protocol {
        /// `HOST:PORT`.
        proxy: String,
        /// During which step.
        stage: Stage,
        /// What was wrong.
        what: String,
    },
    /// The proxy does not do what every scan needs of it (CONNECT, or this kind of address).
    #[error("SOCKS5 proxy {proxy} cannot be used for this scan: it answered {reply} to a CONNECT to {target}")]
    Unsupported {
        /// `HOST:PORT`.
        proxy: String,
        /// Its answer.
        reply: Reply,
        /// The target asked for.
        target: String,
    },
}

impl ProxyError {
    /// The operating system's error number, if the failure was one (to tell this machine's own
    /// shortage of descriptors or ports from a failing proxy).
    pub fn os_error(&self) -> Option<i32> {
        match self {
            ProxyError::Unreachable { source, .. } | ProxyError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Why a connection through the proxy did not open.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The proxy itself failed (see [`ProxyError`]).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// The proxy answered the CONNECT with a failure: what it says of the target.
    #[error("the proxy answered {reply}")]
    Refused {
        /// Its answer.
        reply: Reply,
        /// From the request to the answer.
        rtt: Duration,
    },
    /// No answer to the CONNECT in the time allowed.
    #[error("no answer from the proxy to the CONNECT in time")]
    Timeout,
}

/// A connection to a target through the proxy: after the handshake, a plain byte stream.
#[derive(Debug)]
pub struct Tunnel {
    /// The stream (to the proxy, relaying to the target).
    pub stream: TcpStream,
    /// From sending the CONNECT to the proxy's "granted": the round trip a probe measures.
    pub rtt: Duration,
}

/// Placeholder addresses of target names (`socks5h://`).
#[derive(Debug, Default)]
struct Names {
    by_name: HashMap<String, Ipv4Addr>,
    by_addr: HashMap<Ipv4Addr, String>,
}

/// The most placeholders: 0.0.0.1 to 0.255.255.254.
const MAX_PLACEHOLDERS: u32 = (1 << 24) - 2;

/// A SOCKS5 proxy, ready to use. Cheap to share (`Arc`) between the scan and detection.
pub struct Socks5 {
    url: ProxyUrl,
    addr: SocketAddr,
    handshake_timeout: Duration,
    names: Mutex<Names>,
}

impl fmt::Debug for Socks5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL's Display hides the password.
        f.debug_struct("Socks5").field("url", &self.url.to_string()).field("addr", &self.addr).finish()
    }
}

impl Socks5 {
    /// Bound of reaching the proxy, its greeting and authentication, together.
    pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

    /// A proxy at `addr` (the URL's host, resolved).
    pub fn new(url: ProxyUrl, addr: SocketAddr) -> Socks5 {
        Socks5 { url, addr, handshake_timeout: Self::HANDSHAKE_TIMEOUT, names: Mutex::default() }
    }

    /// The proxy of `url`, its host resolved by the operating system (a blocking call).
    pub fn resolve(url: ProxyUrl) -> Result<Socks5, ProxyError> {
        let addr = match url.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, url.port),
            Err(_) => (url.host.as_str(), url.port)
                .to_socket_addrs()
                .map_err(|e| ProxyError::Resolve { host: url.host.clone(), reason: e.to_string() })?
                .next()
                .ok_or_else(|| ProxyError::Resolve { host: url.host.clone(), reason: "no address".into() })?,
        };
        Ok(Socks5::new(url, addr))
    }

    /// Resolve the proxy and [`check`](Socks5::check) it, blocking the calling thread (at most
    /// the name lookup plus [`Socks5::HANDSHAKE_TIMEOUT`]). Runs on a thread of its own, so it
    /// may be called from inside an async runtime that must not be entered again.
    pub fn open_blocking(url: ProxyUrl) -> Result<Arc<Socks5>, ProxyError> {
        let endpoint = url.endpoint();
        let io = |source: io::Error| ProxyError::Io { proxy: endpoint.clone(), stage: Stage::Connect, source };
        let worker = std::thread::Builder::new()
            .name("rustmap-proxy-check".into())
            .spawn(move || -> Result<Socks5, ProxyError> {
                let proxy = Socks5::resolve(url)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| ProxyError::Io { proxy: proxy.url.endpoint(), stage: Stage::Connect, source })?;
                rt.block_on(proxy.check())?;
                Ok(proxy)
            })
            .map_err(io)?;
        match worker.join() {
            Ok(r) => r.map(Arc::new),
            Err(_) => Err(io(io::Error::other("the proxy check panicked"))),
        }
    }

    /// The same proxy with another bound for reaching it, its greeting and authentication.
    pub fn with_handshake_timeout(mut self, within: Duration) -> Socks5 {
        self.handshake_timeout = within;
        self
    }

    /// Its URL (`Display` hides the password).
    pub fn url(&self) -> &ProxyUrl {
        &self.url
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Target names go to the proxy unresolved (`socks5h://`).
    pub fn remote_dns(&self) -> bool {
        self.url.remote_dns
    }

    /// `HOST:PORT` of the proxy as the URL gave it, for messages.
    fn endpoint(&self) -> String {
        self.url.endpoint()
    }

    /// Connect to the proxy and go through the greeting and authentication, then hang up:
    /// proves the proxy is there, speaks SOCKS5 and takes our credentials, without asking it
    /// to connect anywhere.
    pub async fn check(&self) -> Result<(), ProxyError> {
        self.handshake().await.map(drop)
    }

    /// Open a connection to `target` through the proxy. A placeholder address
    /// ([`Socks5::placeholder`]) is sent as its host name. `within` bounds the wait for the
    /// proxy's answer to the CONNECT (reaching the proxy has its own bound).
    pub async fn connect(&self, target: SocketAddr, within: Duration) -> Result<Tunnel, ConnectError> {
        let t = match self.name_of(target.ip()) {
            Some(name) => Target::Name(name, target.port()),
            None => Target::Addr(target),
        };
        self.connect_to(&t, within).await
    }

    /// [`Socks5::connect`] to an address or a name.
    pub async fn connect_to(&self, target: &Target, within: Duration) -> Result<Tunnel, ConnectError> {
        let mut s = self.handshake().await?;
        let start = Instant::now();
        let deadline = start + within;
        let timed_out = |e: ProxyError| match e {
            ProxyError::Timeout { .. } => ConnectError::Timeout,
            e => ConnectError::Proxy(e),
        };
        self.send(&mut s, &socks5::connect_request(target), Stage::Request, deadline).await.map_err(timed_out)?;
        let mut head = [0u8; 4];
        self.recv(&mut s, &mut head, Stage::Request, deadline).await.map_err(timed_out)?;
        let rtt = start.elapsed();
        let rest = match socks5::reply_head(head) {
            Ok(ReplyHead::Refused(reply @ (Reply::CommandNotSupported | Reply::AddressTypeNotSupported))) => {
                return Err(ConnectError::Proxy(ProxyError::Unsupported {
                    proxy: self.endpoint(),
                    reply,
                    target: target.to_string(),
                }))
            }
            Ok(ReplyHead::Refused(reply)) => return Err(ConnectError::Refused { reply, rtt }),
            Ok(ReplyHead::Granted(n)) => n,
            Ok(ReplyHead::NameFollows) => {
                let mut len = [0u8; 1];
                self.recv(&mut s, &mut len, Stage::Request, Instant::now() + self.handshake_timeout).await?;
                usize::from(len[0]) + 2
            }
            Err(HeadError::NotSocks5(byte)) => {
                return Err(ConnectError::Proxy(ProxyError::NotSocks5 { proxy: self.endpoint(), byte }))
            }
            Err(HeadError::AddressType(t)) => {
                return Err(ConnectError::Proxy(ProxyError::Protocol {
                    proxy: self.endpoint(),
                    stage: Stage::Request,
                    what: format!("unknown address type {t}"),
                }))
            }
        };
        // The bound address and port: read and dropped, so that what follows is the target's.
        let mut bound = [0u8; 257];
        self.recv(&mut s, &mut bound[..rest], Stage::Request, Instant::now() + self.handshake_timeout).await?;
        Ok(Tunnel { stream: s, rtt })
    }

    /// A placeholder address for a target name (`socks5h://`): the same name always gets the
    /// same one. `None` for a name longer than SOCKS5 carries (255 bytes), or when all 2^24 - 2
    /// placeholders are taken.
    pub fn placeholder(&self, name: &str) -> Option<IpAddr> {
        if name.is_empty() || name.len() > 255 {
            return None;
        }
        let key = name.to_ascii_lowercase();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = names.by_name.get(&key) {
            return Some(IpAddr::V4(*a));
        }
        let n = u32::try_from(names.by_name.len()).ok()?.checked_add(1).filter(|n| *n <= MAX_PLACEHOLDERS)?;
        let addr = Ipv4Addr::from(n);
        names.by_name.insert(key, addr);
        names.by_addr.insert(addr, name.to_string());
        Some(IpAddr::V4(addr))
    }

    /// The name a placeholder address stands for.
    pub fn name_of(&self, addr: IpAddr) -> Option<String> {
        let IpAddr::V4(a) = addr else { return None };
        if a.octets()[0] != 0 {
            return None;
        }
        self.names.lock().unwrap_or_else(|e| e.into_inner()).by_addr.get(&a).cloned()
    }

    /// Is this a placeholder address handed out by [`Socks5::placeholder`]?
    pub fn is_placeholder(&self, addr: IpAddr) -> bool {
        self.name_of(addr).is_some()
    }

    /// Reach the proxy, greet it, authenticate: a stream ready for a request.
    async fn handshake(&self) -> Result<TcpStream, ProxyError> {
        let deadline = Instant::now() + self.handshake_timeout;
        let mut s = match timeout_at(deadline, TcpStream::connect(self.addr)).await {
            Err(_) => {
                return Err(ProxyError::Timeout {
                    proxy: self.endpoint(),
                    stage: Stage::Connect,
                    within: self.handshake_timeout,
                })
            }
            Ok(Err(source)) => return Err(ProxyError::Unreachable { proxy: self.endpoint(), source }),
            Ok(Ok(s)) => s,
        };
        let _ = s.set_nodelay(true);
        let creds = self.url.credentials.as_ref();
        self.send(&mut s, &socks5::greeting(creds.is_some()), Stage::Greeting, deadline).await?;
        let mut choice = [0u8; 2];
        self.recv(&mut s, &mut choice, Stage::Greeting, deadline).await?;
        let proxy = self.endpoint();
        let method = socks5::method_choice(choice, creds.is_some()).map_err(|e| match e {
            GreetingError::NotSocks5(byte) => ProxyError::NotSocks5 { proxy, byte },
            GreetingError::NoAcceptableMethod if creds.is_some() => ProxyError::MethodRefused { proxy },
            GreetingError::NoAcceptableMethod => ProxyError::AuthRequired { proxy },
            GreetingError::Unexpected(method) => ProxyError::UnexpectedMethod { proxy, method },
        })?;
        if let (Method::Password, Some(c)) = (method, creds) {
            self.send(&mut s, &socks5::password_request(c.user(), c.password()), Stage::Auth, deadline).await?;
            let mut status = [0u8; 2];
            self.recv(&mut s, &mut status, Stage::Auth, deadline).await?;
            socks5::password_status(status).map_err(|status| ProxyError::AuthFailed {
                proxy: self.endpoint(),
                user: c.user().to_string(),
                status,
            })?;
        }
        Ok(s)
    }

    async fn send(&self, s: &mut TcpStream, bytes: &[u8], stage: Stage, deadline: Instant) -> Result<(), ProxyError> {
        match timeout_at(deadline, s.write_all(bytes)).await {
            Err(_) => Err(self.timeout(stage)),
            Ok(Err(e)) => Err(self.io_error(e, stage)),
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn recv(&self, s: &mut TcpStream, buf: &mut [u8], stage: Stage, deadline: Instant) -> Result<(), ProxyError> {
        match timeout_at(deadline, s.read_exact(buf)).await {
            Err(_) => Err(self.timeout(stage)),
            Ok(Err(e)) => Err(self.io_error(e, stage)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    fn timeout(&self, stage: Stage) -> ProxyError {
        ProxyError::Timeout { proxy: self.endpoint(), stage, within: self.handshake_timeout }
    }

    fn io_error(&self, e: io::Error, stage: Stage) -> ProxyError {
        use io::ErrorKind::*;
        match e.kind() {
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
                ProxyError::Closed { proxy: self.endpoint(), stage }
            }
            _ => ProxyError::Io { proxy: self.endpoint(), stage, source: e },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// How the test proxy behaves.
    #[derive(Clone)]
    enum Script {
        /// No authentication; CONNECT answered with this reply code (0: granted, and the
        /// connection then relays an "OK\n" from the "target").
        NoAuth(u8),
        /// User name and password required; these are right.
        Password(&'static str, &'static str),
        /// No method acceptable.
        Refuse,
        /// Not SOCKS at all.
        Http,
        /// Accepts and never answers.
        Silent,
        /// Answers the greeting, then grants with a bound host name.
        NamedBound,
    }

    /// A one-file SOCKS5 server for the tests; returns its address and the requests it saw.
    async fn proxy(script: Script) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else { return };
                let (script, log) = (script.clone(), Arc::clone(&log));
                tokio::spawn(async move {
                    let mut head = [0u8; 2];
                    if s.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    let mut methods = vec![0u8; usize::from(head[1])];
                    let _ = s.read_exact(&mut methods).await;
                    match &script {
                        Script::Refuse => return drop(s.write_all(&[5, 0xff]).await),
                        Script::Http => return drop(s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await),
                        Script::Silent => return tokio::time::sleep(Duration::from_secs(60)).await,
                        Script::Password(user, pass) => {
                            if !methods.contains(&2) {
                                return drop(s.write_all(&[5, 0xff]).await);
                            }
                            let _ = s.write_all(&[5, 2]).await;
                            let mut b = [0u8; 513];
                            let _ = s.read_exact(&mut b[..2]).await;
                            let ulen = usize::from(b[1]);
                            let _ = s.read_exact(&mut b[..ulen + 1]).await;
                            let u = String::from_utf8_lossy(&b[..ulen]).into_owned();
                            let plen = usize::from(b[ulen]);
                            let _ = s.read_exact(&mut b[..plen]).await;
                            let p = String::from_utf8_lossy(&b[..plen]).into_owned();
                            let ok = u == *user && p == *pass;
                            let _ = s.write_all(&[1, if ok { 0 } else { 1 }]).await;
                            if !ok {
                                return;
                            }
                        }
                        Script::NoAuth(_) | Script::NamedBound => {
                            let _ = s.write_all(&[5, 0]).await;
                        }
                    }
                    let mut req = [0u8; 4];
                    if s.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    let mut whole = req.to_vec();
                    let len = match req[3] {
                        1 => 6,
                        4 => 18,
                        _ => {
                            let mut n = [0u8; 1];
                            let _ = s.read_exact(&mut n).await;
                            whole.push(n[0]);
                            usize::from(n[0]) + 2
                        }
                    };
                    let mut rest = vec![0u8; len];
                    let _ = s.read_exact(&mut rest).await;
                    whole.extend(rest);
                    log.lock().unwrap().push(whole);
                    let code = if let Script::NoAuth(c) = script { c } else { 0 };
                    if let Script::NamedBound = script {
                        let _ = s.write_all(&[5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 80, b'O', b'K', b'\n']).await;
                    } else {
                        let _ = s.write_all(&[5, code, 0, 1, 127, 0, 0, 1, 0x04, 0x38]).await;
                        if code == 0 {
                            let _ = s.write_all(b"OK\n").await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                });
            }
        });
        (addr, seen)
    }

    fn socks(url: &str, addr: SocketAddr) -> Socks5 {
        Socks5::new(ProxyUrl::parse(url).unwrap(), addr)
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn check_and_connect_without_auth() {
        let (addr, seen) = proxy(Script::NoAuth(0)).await;
        let p = socks(&format!("socks5://{addr}"), addr);
        p.check().await.unwrap();
        let mut t = p.connect("198.18.0.10:80".parse().unwrap(), T).await.unwrap();
        let mut line = [0u8; 3];
        t.stream.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"OK\n", "the bound address was consumed, the target's bytes follow");
        assert_eq!(seen.lock().unwrap()[0], [5, 1, 0, 1, 198, 18, 0, 10, 0, 80]);
    }

    #[tokio::test]
    async fn refusals_are_reported_as_the_proxy_said() {
        for (code, want) in [(5, Reply::ConnectionRefused), (4, Reply::HostUnreachable), (1, Reply::GeneralFailure)] {
            let (addr, _) = proxy(Script::NoAuth(code)).await;
            let p = socks(&format!("socks5://{addr}"), addr);
            match p.connect("198.18.0.10:81".parse().unwrap(), T).await {
                Err(ConnectError::Refused { reply, .. }) => assert_eq!(reply, want),
                other => panic!("{other:?}"),
            }
        }
        // A proxy that cannot CONNECT at all is the proxy's failure, not the target's.
        let (addr, _) = proxy(Script::NoAuth(7)).await;
        let p = socks(&format!("socks5://{addr}"), addr);
        let e = p.connect("198.18.0.10:81".parse().unwrap(), T).await.unwrap_err();
        assert!(matches!(e, ConnectError::Proxy(ProxyError::Unsupported { .. })), "{e:?}");
    }

    #[tokio::test]
    async fn password_right_wrong_and_missing() {
        let (addr, _) = proxy(Script::Password("alice", "s3cret")).await;
        socks(&format!("socks5://alice:s3cret@{addr}"), addr).check().await.unwrap();
        let e = socks(&format!("socks5://alice:nope@{addr}"), addr).check().await.unwrap_err();
        assert!(matches!(e, ProxyError::AuthFailed { status: 1, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("alice") && !msg.contains("nope"), "{msg}");
        let e = socks(&format!("socks5://{addr}"), addr).check().await.unwrap_err();
        assert!(matches!(e, ProxyError::AuthRequired { .. }), "{e:?}");
        assert!(e.to_string().contains("USER:PASS"), "{e}");
    }

    #[tokio::test]
    async fn proxies_that_are_not_usable() {
        let (addr, _) = proxy(Script::Refuse).await;
        let e = socks(&format!("socks5://u:p@{addr}"), addr).check().await.unwrap_err();
        assert!(matches!(e, ProxyError::MethodRefused { .. }), "{e:?}");
        let (addr, _) = proxy(Script::Http).await;
        let e = socks(&format!("socks5://{addr}"), addr).check().await.unwrap_err();
        assert!(matches!(e, ProxyError::NotSocks5 { byte: b'H', .. }), "{e:?}");
        // Nothing listening.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = socks(&format!("socks5://{gone}"), gone).check().await.unwrap_err();
        assert!(matches!(e, ProxyError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains(&gone.to_string()), "{e}");
        // Silent: bounded by the handshake timeout.
        let (addr, _) = proxy(Script::Silent).await;
        let p = socks(&format!("socks5://{addr}"), addr).with_handshake_timeout(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let e = p.check().await.unwrap_err();
        assert!(matches!(e, ProxyError::Timeout { stage: Stage::Greeting, .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn names_go_to_the_proxy_through_placeholders() {
        let (addr, seen) = proxy(Script::NamedBound).await;
        let p = socks(&format!("socks5h://{addr}"), addr);
        let a = p.placeholder("h10.lab.test").unwrap();
        assert_eq!(a, "0.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.placeholder("H10.lab.test"), Some(a), "one placeholder per name");
        assert_eq!(p.placeholder("h11.lab.test"), Some("0.0.0.2".parse().unwrap()));
        assert!(p.is_placeholder(a) && !p.is_placeholder("0.0.0.3".parse().unwrap()));
        assert_eq!(p.placeholder(&"x".repeat(256)), None);
        let mut t = p.connect(SocketAddr::new(a, 22), T).await.unwrap();
        let mut line = [0u8; 3];
        t.stream.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"OK\n");
        let req = seen.lock().unwrap()[0].clone();
        assert_eq!(&req[..5], &[5, 1, 0, 3, 12]);
        assert_eq!(&req[5..17], b"h10.lab.test");
        assert_eq!(&req[17..], &[0, 22]);
    }

    #[tokio::test]
    async fn open_blocking_checks_before_returning() {
        let (addr, _) = proxy(Script::Password("alice", "s3cret")).await;
        let ok = ProxyUrl::parse(&format!("socks5://alice:s3cret@localhost:{}", addr.port())).unwrap();
        let bad = ProxyUrl::parse(&format!("socks5://alice:x@{addr}")).unwrap();
        // Blocking calls, off this runtime's thread (the test proxy runs on it).
        let (ok, bad) =
            tokio::task::spawn_blocking(move || (Socks5::open_blocking(ok), Socks5::open_blocking(bad))).await.unwrap();
        let p = ok.unwrap();
        assert_eq!(p.addr().port(), addr.port());
        assert!(format!("{p:?}").contains("***"));
        assert!(matches!(bad, Err(ProxyError::AuthFailed { .. })));
    }
}
