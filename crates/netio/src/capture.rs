//! Capturing replies: an AF_PACKET socket in cooked mode (`SOCK_DGRAM`, so every frame starts at
//! its network header whatever the link type), non-blocking, ignoring what we send ourselves, with
//! an optional kernel BPF filter so that only packets addressed to us are copied to user space.

use crate::raw::bind_packet;
use crate::NetioError;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const ETH_P_ARP: u32 = 0x0806;
/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): don't copy our own transmissions to this socket.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// Ancillary BPF load of the frame's protocol (ethertype).
const SKF_AD_PROTOCOL: u32 = 0;
const SKF_AD_OFF: u32 = (-0x1000i32) as u32;

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Bytes written into the buffer (the network-layer packet).
    pub len: usize,
    /// Its ethertype (0x0800 IPv4, 0x86dd IPv6, 0x0806 ARP).
    pub ethertype: u16,
    /// Interface it arrived on.
    pub ifindex: u32,
    /// Sender's hardware address, when the link has one.
    pub src_mac: Option<[u8; 6]>,
}

/// A capture socket.
#[derive(Debug)]
pub struct Capture {
    sock: Socket,
}

impl Capture {
    /// Capture on one interface (`Some(index)`) or all of them (`None`).
    pub fn open(ifindex: Option<u32>) -> Result<Capture, NetioError> {
        let sock =
            Socket::new(Domain::PACKET, Type::DGRAM.nonblocking().cloexec(), Some(i32::from(ETH_P_ALL.to_be()).into()))
                .map_err(|e| NetioError::io("opening a capture socket", e))?;
        bind_packet(&sock, ifindex.unwrap_or(0), ETH_P_ALL)
            .map_err(|e| NetioError::io("binding the capture socket", e))?;
        let one: libc::c_int = 1;
        // SAFETY: the option value is a c_int that lives across the call; its size is passed.
        // Failure (kernels before 4.20) only means we also see our own packets, which the engine
        // ignores anyway because they do not match any expected reply.
        let _ = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let _ = sock.set_recv_buffer_size(16 << 20);
        Ok(Capture { sock })
    }

    /// Only let through ARP, IPv6, and IPv4 packets addressed to one of `addrs`.
    pub fn filter_to(&self, addrs: &[IpAddr]) -> io::Result<()> {
        let v4: Vec<u32> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(u32::from(*v4)),
                IpAddr::V6(_) => None,
            })
            .take(16)
            .collect();
        let mut prog: Vec<libc::sock_filter> = Vec::new();
        let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
        let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter { code: code as u16, jt, jf, k };
        let n = v4.len() as u8;
        // Layout: [0] ld ethertype, [1] v6? → accept, [2] arp? → accept, [3] v4? else drop,
        // [4] ld daddr, [5..5+n) daddr == a_i? → accept, [5+n] drop, [6+n] accept.
        // Jump offsets count from the instruction after the jump.
        prog.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL));
        prog.push(jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, ETH_P_IPV6, 4 + n, 0));
        prog.push(jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, ETH_P_ARP, 3 + n, 0));
        prog.push(jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, ETH_P_IP, 0, n + 1));
        // IPv4 destination address at offset 16.
        prog.push(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 16));
        for (i, a) in v4.iter().enumerate() {
            let to_accept = (n - 1 - i as u8) + 1;
            prog.push(jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, *a, to_accept, 0));
        }
        prog.push(stmt(libc::BPF_RET | libc::BPF_K, 0));
        prog.push(stmt(libc::BPF_RET | libc::BPF_K, 0x40000));
        self.attach(&prog)
    }

    fn attach(&self, prog: &[libc::sock_filter]) -> io::Result<()> {
        let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_ptr().cast_mut() };
        // SAFETY: fprog points at `prog`, which outlives the call; the kernel copies the program.
        let rc = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Read one frame into `buf` (its network-layer packet). `Ok(None)` when nothing is waiting.
    /// Frames longer than `buf` are truncated to it.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Frame>> {
        // SAFETY: sockaddr_ll is plain old data (zeroed is valid); buf and sll outlive the call and
        // their exact sizes are passed; the kernel writes at most those sizes.
        let (n, sll) = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = libc::recvfrom(
                self.sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut sll as *mut libc::sockaddr_ll).cast::<libc::sockaddr>(),
                &mut len,
            );
            (n, sll)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        let src_mac = (sll.sll_halen == 6).then(|| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&sll.sll_addr[..6]);
            m
        });
        Ok(Some(Frame {
            len: (n as usize).min(buf.len()),
            ethertype: u16::from_be(sll.sll_protocol),
            ifindex: u32::try_from(sll.sll_ifindex).unwrap_or(0),
            src_mac,
        }))
    }
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs CAP_NET_RAW; skipped (with a note) without it.
    #[test]
    fn loopback_capture_sees_a_udp_datagram_to_us() {
        if !crate::privilege::has_raw_socket_privilege() {
            eprintln!("SKIP: needs CAP_NET_RAW");
            return;
        }
        let lo = crate::iface::list().into_iter().find(|i| i.loopback).unwrap();
        let cap = Capture::open(Some(lo.index)).unwrap();
        cap.filter_to(&["127.0.0.1".parse().unwrap()]).unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"rustmap-capture-test", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 2048];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut seen = false;
        while std::time::Instant::now() < deadline && !seen {
            if let Some(f) = cap.recv(&mut buf).unwrap() {
                seen = f.ethertype == 0x0800 && buf[..f.len].windows(20).any(|w| w == b"rustmap-capture-test");
            } else {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        assert!(seen, "datagram not captured");
    }
}
