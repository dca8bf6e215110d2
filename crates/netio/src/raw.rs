//! Sending hand-made packets.
//!
//! - [`RawIpSender`]: raw IP sockets with the header included. The kernel still routes the packet
//!   and resolves the next hop, so this works on every path (loopback, tunnels, routers).
//! - [`LinkSender`]: an AF_PACKET socket bound to one interface, sending whole Ethernet frames —
//!   the fast path when the next hop's hardware address is known (no routing or neighbour lookup
//!   per packet in the kernel).

use crate::NetioError;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

/// Raw IPv4/IPv6 sockets whose packets carry our own IP header.
#[derive(Debug)]
pub struct RawIpSender {
    v4: Option<Socket>,
    v6: Option<Socket>,
}

fn raw_socket(domain: Domain) -> io::Result<Socket> {
    let s = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(Protocol::from(libc::IPPROTO_RAW)))?;
    if domain == Domain::IPV6 {
        s.set_header_included_v6(true)?;
    } else {
        s.set_header_included_v4(true)?;
    }
    // Bursts of probes are larger than the default buffer.
    let _ = s.set_send_buffer_size(4 << 20);
    Ok(s)
}

impl RawIpSender {
    /// Open the sockets. Fails with [`NetioError::NotPrivileged`] without CAP_NET_RAW. IPv6 is
    /// optional (a host without IPv6 still scans IPv4).
    pub fn new() -> Result<RawIpSender, NetioError> {
        let v4 = raw_socket(Domain::IPV4).map_err(|e| NetioError::io("opening a raw IPv4 socket", e))?;
        let v6 = raw_socket(Domain::IPV6).ok();
        Ok(RawIpSender { v4: Some(v4), v6 })
    }

    /// Send only through interface `name` (`-e`): routing then only considers routes through it.
    pub fn bind_device(&self, name: &str) -> io::Result<()> {
        for s in [&self.v4, &self.v6].into_iter().flatten() {
            s.bind_device(Some(name.as_bytes()))?;
        }
        Ok(())
    }

    /// Send one complete IP packet (header included) to `dst`. `WouldBlock`/`ENOBUFS` mean the
    /// queue is full: the caller should back off and retry.
    pub fn send(&self, packet: &[u8], dst: IpAddr) -> io::Result<()> {
        let sock = match dst {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
        // Raw sockets take port 0 in the destination address.
        sock.send_to(packet, &SockAddr::from(SocketAddr::new(dst, 0))).map(|_| ())
    }
}

/// Bind an AF_PACKET socket to one interface and protocol.
pub(crate) fn bind_packet(sock: &Socket, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; zeroed is a valid value. We pass its exact size, and
    // the kernel only reads it during the call.
    let rc = unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol.to_be();
        sll.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An AF_PACKET socket sending whole Ethernet frames on one interface.
#[derive(Debug)]
pub struct LinkSender {
    sock: Socket,
}

impl LinkSender {
    /// Open a sender on interface `ifindex`.
    pub fn new(ifindex: u32) -> Result<LinkSender, NetioError> {
        let sock = Socket::new(Domain::PACKET, Type::RAW.nonblocking().cloexec(), None)
            .map_err(|e| NetioError::io("opening an AF_PACKET socket", e))?;
        // Protocol 0: this socket only sends; it receives nothing.
        bind_packet(&sock, ifindex, 0).map_err(|e| NetioError::io("binding the AF_PACKET socket", e))?;
        let _ = sock.set_send_buffer_size(4 << 20);
        Ok(LinkSender { sock })
    }

    /// Send one frame (Ethernet header included).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }
}
