//! Capturing replies: an AF_PACKET socket in cooked mode (`SOCK_DGRAM`, so every frame starts at
//! its network header whatever the link type), non-blocking, ignoring what we send ourselves, with
//! an optional kernel BPF filter so that only packets addressed to us are copied to user space.
//! Frames are read up to [`RECV_BATCH`] per system call, with `recvmmsg`
//! ([`Capture::recv_batch`]).

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

/// Most frames one [`Capture::recv_batch`] call reads.
pub const RECV_BATCH: usize = 64;
/// Bytes kept of each frame read in a batch: more than any reply the scanner parses needs
/// (headers, and the quoted headers of ICMP errors), and a whole frame of a 1500-byte MTU.
const RECV_SLOT: usize = 1536;
/// Bytes asked for the capture socket's receive buffer: a few tens of thousands of small replies.
const CAPTURE_BUFFER: libc::c_int = 16 << 20;

/// Buffers for [`Capture::recv_batch`]: [`RECV_BATCH`] frames and their link-layer addresses.
#[derive(Debug)]
pub struct RecvBatch {
    buf: Vec<u8>,
    frames: Vec<Frame>,
}

impl Default for RecvBatch {
    fn default() -> RecvBatch {
        RecvBatch { buf: vec![0; RECV_BATCH * RECV_SLOT], frames: Vec::with_capacity(RECV_BATCH) }
    }
}

impl RecvBatch {
    /// Frames read by the last call.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Did the last call read nothing?
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The `i`th frame read by the last call, and its network-layer packet.
    pub fn get(&self, i: usize) -> Option<(Frame, &[u8])> {
        let f = *self.frames.get(i)?;
        Some((f, &self.buf[i * RECV_SLOT..i * RECV_SLOT + f.len]))
    }
}

/// A frame read into a batch slot: `n` bytes (at most the slot), and its link-layer address.
fn frame_of(n: usize, sll: &libc::sockaddr_ll) -> Frame {
    let src_mac = (sll.sll_halen == 6).then(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&sll.sll_addr[..6]);
        m
    });
    Frame {
        len: n.min(RECV_SLOT),
        ethertype: u16::from_be(sll.sll_protocol),
        ifindex: u32::try_from(sll.sll_ifindex).unwrap_or(0),
        src_mac,
    }
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
        // A scan's replies come in bursts (a window of thousands of RSTs) while the engine may be
        // busy sending; what overflows the buffer is lost and costs a retransmission, or a port
        // shown filtered when every try's answer is lost. `SO_RCVBUFFORCE` (CAP_NET_ADMIN) passes
        // `net.core.rmem_max`, which is 208 KiB on a default system; unprivileged, as much as
        // that allows.
        let size: libc::c_int = CAPTURE_BUFFER;
        // SAFETY: as above, a c_int that lives across the call, with its size.
        let forced = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            let _ = sock.set_recv_buffer_size(CAPTURE_BUFFER as usize);
        }
        Ok(Capture { sock })
    }

    /// Frames the kernel dropped because the receive buffer was full, since the last call (the
    /// kernel resets its count on each reading).
    pub fn take_dropped(&self) -> io::Result<u32> {
        let mut stats = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` live across the call; the kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stats.tp_drops)
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

    /// Read up to [`RECV_BATCH`] waiting frames with one `recvmmsg`, without waiting. Returns how
    /// many were read (0 when nothing is waiting); they are in `batch` until the next call.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.frames.clear();
        // SAFETY: iovec, mmsghdr and sockaddr_ll are plain old data; zeroed is a valid value.
        // Every pointer placed in the headers points into `batch.buf` (disjoint RECV_SLOT-sized
        // slots), `iov` or `sll`, all of which outlive the call and do not move during it; each
        // length is the exact size of what it points at, so the kernel writes within bounds.
        let n = unsafe {
            let mut iov: [libc::iovec; RECV_BATCH] = std::mem::zeroed();
            let mut sll: [libc::sockaddr_ll; RECV_BATCH] = std::mem::zeroed();
            let mut msgs: [libc::mmsghdr; RECV_BATCH] = std::mem::zeroed();
            let base = batch.buf.as_mut_ptr();
            for k in 0..RECV_BATCH {
                iov[k] = libc::iovec { iov_base: base.add(k * RECV_SLOT).cast(), iov_len: RECV_SLOT };
                let h = &mut msgs[k].msg_hdr;
                h.msg_iov = &mut iov[k];
                h.msg_iovlen = 1;
                h.msg_name = (&mut sll[k] as *mut libc::sockaddr_ll).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            }
            let n = libc::recvmmsg(
                self.sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            for k in 0..usize::try_from(n).unwrap_or(0) {
                batch.frames.push(frame_of(msgs[k].msg_len as usize, &sll[k]));
            }
            n
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
        }
        Ok(batch.frames.len())
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

    /// Needs CAP_NET_RAW: without it, skipped with a note, except under `CI=true`, which fails.
    pub(crate) fn privileged() -> bool {
        if crate::privilege::has_raw_socket_privilege() {
            return true;
        }
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI runs as root with CAP_NET_RAW");
        eprintln!("SKIP: needs CAP_NET_RAW");
        false
    }

    /// Several datagrams sent by raw IP `sendmmsg` arrive at a real UDP socket, and the capture
    /// socket, filtered to 127.0.0.1, reads them back with `recvmmsg`.
    #[test]
    fn batches_both_ways_on_loopback() {
        use crate::raw::{Batch, RawIpSender};
        use rustmap_wire::probe::{emit_ip, IpProbe, L4};
        if !privileged() {
            return;
        }
        let lo = crate::iface::list().into_iter().find(|i| i.loopback).unwrap();
        let cap = Capture::open(Some(lo.index)).unwrap();
        cap.filter_to(&["127.0.0.1".parse().unwrap()]).unwrap();
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let dport = rx.local_addr().unwrap().port();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let mut batch = Batch::default();
        let payloads: Vec<String> = (0..5).map(|i| format!("rustmap-batch-{i}")).collect();
        for p in &payloads {
            let l4 = L4::Udp { sport: 40000, dport, payload: p.as_bytes() };
            let probe = IpProbe { src: ip, dst: ip, ttl: 64, ip_id: 1, l4 };
            assert!(batch.push_with(Some(ip), |buf| emit_ip(&probe, buf).ok()));
        }
        assert_eq!(batch.len(), 5);
        let sender = RawIpSender::new().unwrap();
        let mut sent = 0;
        while sent < batch.len() {
            sent += sender.send_batch(false, &batch, sent).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for _ in 0..5 {
            let n = rx.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got.sort();
        assert_eq!(got, payloads, "every datagram of the batch arrives once");
        let mut rb = RecvBatch::default();
        let mut seen = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while seen < 5 && std::time::Instant::now() < deadline {
            if cap.recv_batch(&mut rb).unwrap() == 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for i in 0..rb.len() {
                let (f, pkt) = rb.get(i).unwrap();
                if f.ethertype == 0x0800 && pkt.windows(14).any(|w| w == b"rustmap-batch-") {
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 5, "the capture reads the batch back");
    }

    /// With CAP_NET_ADMIN the buffer passes `net.core.rmem_max`; what overflows it is counted,
    /// and the count starts again from zero once read.
    #[test]
    fn a_big_buffer_and_its_overflow_counted() {
        if !privileged() {
            return;
        }
        let lo = crate::iface::list().into_iter().find(|i| i.loopback).unwrap();
        let cap = Capture::open(Some(lo.index)).unwrap();
        cap.filter_to(&["127.0.0.1".parse().unwrap()]).unwrap();
        // The kernel reports twice what was asked (its bookkeeping overhead).
        assert!(cap.sock.recv_buffer_size().unwrap() >= CAPTURE_BUFFER as usize, "forced past rmem_max");
        let _ = cap.take_dropped().unwrap();
        // Unread, 16 MiB of buffer holds some tens of thousands of small frames: 200,000
        // datagrams (two frames each on loopback: in and out) overflow it, in well under a second.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        for _ in 0..200_000 {
            let _ = tx.send(b"x");
        }
        let dropped = cap.take_dropped().unwrap();
        assert!(dropped > 0, "an unread capture overflows and says so");
        // Emptied, the buffer drops nothing more: the count read now is zero.
        let mut rb = RecvBatch::default();
        for _ in 0..100_000 {
            if cap.recv_batch(&mut rb).unwrap() == 0 {
                break;
            }
        }
        let _ = cap.take_dropped().unwrap();
        assert_eq!(cap.take_dropped().unwrap(), 0, "the count starts again from zero");
    }
}
