//! Sending hand-made packets.
//!
//! - [`RawIpSender`]: raw IP sockets with the header included. The kernel still routes the packet
//!   and resolves the next hop, so this works on every path (loopback, tunnels, routers).
//! - [`LinkSender`]: an AF_PACKET socket bound to one interface, sending whole Ethernet frames —
//!   the fast path when the next hop's hardware address is known (no routing or neighbour lookup
//!   per packet in the kernel).
//!
//! Both send one packet ([`RawIpSender::send`], [`LinkSender::send`]) or a [`Batch`] of up to
//! [`BATCH`] with one `sendmmsg` call ([`RawIpSender::send_batch`], [`LinkSender::send_batch`]):
//! at scan rates the system call, not the packet, is what costs.

use crate::NetioError;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// Most packets one [`Batch`] holds, and one `sendmmsg` call sends.
pub const BATCH: usize = 64;
/// Room for one packet of a batch: a full Ethernet frame.
pub const SLOT: usize = 1518;

/// Packets waiting to be sent together: each in a slot of its own, with the address it goes to
/// (raw IP sockets need one per packet; an AF_PACKET socket bound to an interface ignores it).
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    lens: Vec<usize>,
    dsts: Vec<Option<SockAddr>>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch { buf: vec![0; BATCH * SLOT], lens: Vec::with_capacity(BATCH), dsts: Vec::with_capacity(BATCH) }
    }
}

impl Batch {
    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Is the batch empty?
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Is there no room for another packet?
    pub fn is_full(&self) -> bool {
        self.lens.len() >= BATCH
    }

    /// Add a packet written by `write` into a slot of [`SLOT`] bytes; `write` returns its length,
    /// or `None` to add nothing. `dst` is the IP destination (raw IP sockets), or `None` (frames).
    /// Returns whether a packet was added (not when the batch is full).
    pub fn push_with(&mut self, dst: Option<IpAddr>, write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let i = self.lens.len();
        if i >= BATCH {
            return false;
        }
        let slot = &mut self.buf[i * SLOT..(i + 1) * SLOT];
        match write(slot) {
            Some(n) if n <= SLOT => {
                self.lens.push(n);
                self.dsts.push(dst.map(|a| SockAddr::from(SocketAddr::new(a, 0))));
                true
            }
            _ => false,
        }
    }

    /// The `i`th packet.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.buf[i * SLOT..i * SLOT + self.lens[i]]
    }

    /// Keep only the first `n` packets.
    pub fn truncate(&mut self, n: usize) {
        self.lens.truncate(n);
        self.dsts.truncate(n);
    }

    /// Empty the batch.
    pub fn clear(&mut self) {
        self.lens.clear();
        self.dsts.clear();
    }
}

/// Send `batch[from..]` with one `sendmmsg`. Returns how many went out (at least one), or the
/// error of the first packet, which did not.
fn sendmmsg(fd: RawFd, batch: &Batch, from: usize) -> io::Result<usize> {
    let n = batch.len().saturating_sub(from).min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: iovec and mmsghdr are plain old data, zeroed is a valid value. Every pointer placed
    // in them points into `batch` (packet bytes, destination addresses) or into `iov`, all of
    // which outlive the call and are not moved during it; lengths are the exact sizes of what
    // they point at. The kernel only reads the packets and addresses, and writes msg_len.
    let sent = unsafe {
        let mut iov: [libc::iovec; BATCH] = std::mem::zeroed();
        let mut msgs: [libc::mmsghdr; BATCH] = std::mem::zeroed();
        for k in 0..n {
            let i = from + k;
            let p = batch.packet(i);
            iov[k] = libc::iovec { iov_base: p.as_ptr().cast_mut().cast(), iov_len: p.len() };
            let h = &mut msgs[k].msg_hdr;
            h.msg_iov = &mut iov[k];
            h.msg_iovlen = 1;
            if let Some(a) = &batch.dsts[i] {
                h.msg_name = a.as_ptr().cast_mut().cast();
                h.msg_namelen = a.len();
            }
        }
        libc::sendmmsg(fd, msgs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT)
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

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

    /// Send `batch[from..]`, all of one address family (`v6`), with one system call. Returns how
    /// many were sent (at least one); an error is the first unsent packet's. `WouldBlock` and
    /// `ENOBUFS` mean the queue is full.
    pub fn send_batch(&self, v6: bool, batch: &Batch, from: usize) -> io::Result<usize> {
        let sock = if v6 { self.v6.as_ref() } else { self.v4.as_ref() }
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))?;
        sendmmsg(sock.as_raw_fd(), batch, from)
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

    /// Send the frames `batch[from..]` with one system call. Returns how many were sent (at
    /// least one); an error is the first unsent frame's.
    pub fn send_batch(&self, batch: &Batch, from: usize) -> io::Result<usize> {
        sendmmsg(self.sock.as_raw_fd(), batch, from)
    }
}
