//! The SOCKS5 protocol's messages (RFC 1928, and RFC 1929 for user name and password), as bytes
//! in and bytes out: no I/O here, so every message is checked by unit tests both ways. The
//! driver in [`crate::client`] moves them over a socket.
//!
//! Everything read from the proxy is untrusted: each answer has a fixed length or a length
//! prefix of one byte, so no read is ever larger than 257 bytes, and an unknown version,
//! method, address type or reply code is an error value, never a panic.

use std::fmt;
use std::net::SocketAddr;

/// The protocol version byte.
pub(crate) const VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_PASSWORD: u8 = 0x02;
const METHOD_REFUSED: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_NAME: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// Where a CONNECT goes: an address, or a host name the proxy resolves (`socks5h://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address and port.
    Addr(SocketAddr),
    /// A host name (1 to 255 bytes) and port.
    Name(String, u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

/// The authentication method the proxy chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// No authentication.
    None,
    /// User name and password (RFC 1929).
    Password,
}

/// What was wrong with the proxy's answer to the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GreetingError {
    /// Not a SOCKS5 answer: its first byte.
    NotSocks5(u8),
    /// 0xFF: none of the methods offered is acceptable.
    NoAcceptableMethod,
    /// A method that was not offered.
    Unexpected(u8),
}

/// The greeting: the methods offered. With credentials both "none" and "user name/password"
/// are offered (the proxy picks), as curl does.
pub(crate) fn greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![VERSION, 2, METHOD_NONE, METHOD_PASSWORD]
    } else {
        vec![VERSION, 1, METHOD_NONE]
    }
}

/// The proxy's choice of method (two bytes).
pub(crate) fn method_choice(answer: [u8; 2], offered_password: bool) -> Result<Method, GreetingError> {
    if answer[0] != VERSION {
        return Err(GreetingError::NotSocks5(answer[0]));
    }
    match answer[1] {
        METHOD_NONE => Ok(Method::None),
        METHOD_PASSWORD if offered_password => Ok(Method::Password),
        METHOD_REFUSED => Err(GreetingError::NoAcceptableMethod),
        m => Err(GreetingError::Unexpected(m)),
    }
}

/// The RFC 1929 request. Both parts are 1 to 255 bytes ([`crate::Credentials::new`] checks).
pub(crate) fn password_request(user: &str, password: &str) -> Vec<u8> {
    let (u, p) = (user.as_bytes(), password.as_bytes());
    let mut out = Vec::with_capacity(3 + u.len() + p.len());
    out.push(1);
    out.push(u8::try_from(u.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&u[..u.len().min(255)]);
    out.push(u8::try_from(p.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&p[..p.len().min(255)]);
    out
}

/// The RFC 1929 answer: `Err(status)` unless the status is 0. Its version byte is not judged:
/// some proxies answer 5 instead of 1, and the status says all there is to say.
pub(crate) fn password_status(answer: [u8; 2]) -> Result<(), u8> {
    if answer[1] == 0 {
        Ok(())
    } else {
        Err(answer[1])
    }
}

/// A CONNECT request. A name longer than 255 bytes is cut (names are checked before).
pub(crate) fn connect_request(target: &Target) -> Vec<u8> {
    let mut out = vec![VERSION, CMD_CONNECT, 0];
    let port = match target {
        Target::Addr(SocketAddr::V4(a)) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Addr(SocketAddr::V6(a)) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Name(name, port) => {
            let n = &name.as_bytes()[..name.len().min(255)];
            out.push(ATYP_NAME);
            out.push(n.len() as u8);
            out.extend_from_slice(n);
            *port
        }
    };
    out.extend_from_slice(&port.to_be_bytes());
    out
}

/// A proxy's answer to CONNECT other than success: what it says of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// 1: general SOCKS server failure.
    GeneralFailure,
    /// 2: connection not allowed by the proxy's rules.
    NotAllowed,
    /// 3: network unreachable.
    NetworkUnreachable,
    /// 4: host unreachable.
    HostUnreachable,
    /// 5: connection refused (the target answered with a reset).
    ConnectionRefused,
    /// 6: TTL expired.
    TtlExpired,
    /// 7: the proxy does not do CONNECT.
    CommandNotSupported,
    /// 8: the proxy does not take this kind of address (IPv6, or host names).
    AddressTypeNotSupported,
    /// Any other code.
    Other(u8),
}

impl Reply {
    fn from_code(code: u8) -> Reply {
        match code {
            1 => Reply::GeneralFailure,
            2 => Reply::NotAllowed,
            3 => Reply::NetworkUnreachable,
            4 => Reply::HostUnreachable,
            5 => Reply::ConnectionRefused,
            6 => Reply::TtlExpired,
            7 => Reply::CommandNotSupported,
            8 => Reply::AddressTypeNotSupported,
            c => Reply::Other(c),
        }
    }

    /// The reply's code on the wire.
    pub fn code(self) -> u8 {
        match self {
            Reply::GeneralFailure => 1,
            Reply::NotAllowed => 2,
            Reply::NetworkUnreachable => 3,
            Reply::HostUnreachable => 4,
            Reply::ConnectionRefused => 5,
            Reply::TtlExpired => 6,
            Reply::CommandNotSupported => 7,
            Reply::AddressTypeNotSupported => 8,
            Reply::Other(c) => c,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Reply::GeneralFailure => "general SOCKS server failure",
            Reply::NotAllowed => "connection not allowed by ruleset",
            Reply::NetworkUnreachable => "network unreachable",
            Reply::HostUnreachable => "host unreachable",
            Reply::ConnectionRefused => "connection refused",
            Reply::TtlExpired => "TTL expired",
            Reply::CommandNotSupported => "command not supported",
            Reply::AddressTypeNotSupported => "address type not supported",
            Reply::Other(_) => "unknown reply",
        };
        write!(f, "{what} (SOCKS reply {})", self.code())
    }
}

/// The first four bytes of the answer to CONNECT, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyHead {
    /// Success; this many bytes of bound address and port follow (for a name: its length byte
    /// comes first, see [`ReplyHead::NameFollows`]).
    Granted(usize),
    /// Success with a bound host name: one length byte, then that many bytes and the port.
    NameFollows,
    /// The proxy refused.
    Refused(Reply),
}

/// What was wrong with the head of a CONNECT answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not version 5: the byte.
    NotSocks5(u8),
    /// An address type RFC 1928 does not define.
    AddressType(u8),
}

/// Judge the first four bytes of the answer to CONNECT: version, reply, reserved, address type.
pub(crate) fn reply_head(head: [u8; 4]) -> Result<ReplyHead, HeadError> {
    if head[0] != VERSION {
        return Err(HeadError::NotSocks5(head[0]));
    }
    if head[1] != 0 {
        return Ok(ReplyHead::Refused(Reply::from_code(head[1])));
    }
    match head[3] {
        ATYP_V4 => Ok(ReplyHead::Granted(4 + 2)),
        ATYP_V6 => Ok(ReplyHead::Granted(16 + 2)),
        ATYP_NAME => Ok(ReplyHead::NameFollows),
        t => Err(HeadError::AddressType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_and_method_choice() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
        assert_eq!(method_choice([5, 0], false), Ok(Method::None));
        assert_eq!(method_choice([5, 0], true), Ok(Method::None));
        assert_eq!(method_choice([5, 2], true), Ok(Method::Password));
        // Password chosen though only "none" was offered.
        assert_eq!(method_choice([5, 2], false), Err(GreetingError::Unexpected(2)));
        assert_eq!(method_choice([5, 0xff], true), Err(GreetingError::NoAcceptableMethod));
        assert_eq!(method_choice([5, 1], true), Err(GreetingError::Unexpected(1)));
        // An HTTP server's first bytes, a SOCKS4 answer.
        assert_eq!(method_choice([b'H', b'T'], false), Err(GreetingError::NotSocks5(b'H')));
        assert_eq!(method_choice([0, 0x5a], false), Err(GreetingError::NotSocks5(0)));
    }

    #[test]
    fn password_messages() {
        assert_eq!(password_request("bob", "pw"), [1, 3, b'b', b'o', b'b', 2, b'p', b'w']);
        let long = "u".repeat(255);
        let r = password_request(&long, "p");
        assert_eq!((r[1], r.len()), (255, 1 + 1 + 255 + 1 + 1));
        assert_eq!(password_status([1, 0]), Ok(()));
        assert_eq!(password_status([5, 0]), Ok(()));
        assert_eq!(password_status([1, 1]), Err(1));
        assert_eq!(password_status([1, 0xff]), Err(0xff));
    }

    #[test]
    fn connect_requests() {
        let v4 = Target::Addr("198.18.0.10:80".parse().unwrap());
        assert_eq!(connect_request(&v4), [5, 1, 0, 1, 198, 18, 0, 10, 0, 80]);
        let v6 = Target::Addr("[fd00:18::10]:443".parse().unwrap());
        let r = connect_request(&v6);
        assert_eq!(&r[..4], &[5, 1, 0, 4]);
        assert_eq!(&r[4..20], &"fd00:18::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(&r[20..], &[1, 187]);
        let name = Target::Name("h10.lab.test".into(), 8080);
        let r = connect_request(&name);
        assert_eq!(&r[..5], &[5, 1, 0, 3, 12]);
        assert_eq!(&r[5..17], b"h10.lab.test");
        assert_eq!(&r[17..], &[0x1f, 0x90]);
    }

    #[test]
    fn reply_heads() {
        assert_eq!(reply_head([5, 0, 0, 1]), Ok(ReplyHead::Granted(6)));
        assert_eq!(reply_head([5, 0, 0, 4]), Ok(ReplyHead::Granted(18)));
        assert_eq!(reply_head([5, 0, 0, 3]), Ok(ReplyHead::NameFollows));
        assert_eq!(reply_head([5, 0, 0, 9]), Err(HeadError::AddressType(9)));
        assert_eq!(reply_head([4, 0x5a, 0, 0]), Err(HeadError::NotSocks5(4)));
        let refused: Vec<Reply> = (1..=9)
            .map(|c| match reply_head([5, c, 0, 1]) {
                Ok(ReplyHead::Refused(r)) => r,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            refused,
            [
                Reply::GeneralFailure,
                Reply::NotAllowed,
                Reply::NetworkUnreachable,
                Reply::HostUnreachable,
                Reply::ConnectionRefused,
                Reply::TtlExpired,
                Reply::CommandNotSupported,
                Reply::AddressTypeNotSupported,
                Reply::Other(9)
            ]
        );
        for r in refused {
            assert_eq!(Reply::from_code(r.code()), r);
        }
        assert_eq!(Reply::ConnectionRefused.to_string(), "connection refused (SOCKS reply 5)");
    }
}
