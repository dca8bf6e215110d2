//! `rustmap-lab-stack`: a lab host whose TCP/IP stack is [smoltcp], in user space, on a TAP
//! device. The lab's other hosts all run the Linux kernel's stack; this one gives OS detection
//! (`-O`) a stack that is not Linux (docs/lab.md, "h17, the smoltcp host").
//!
//! ```text
//! rustmap-lab-stack --tap TAP --addr IPV4/LEN --mac MAC [--gw IPV4] [--tcp PORT,PORT...]
//! ```
//!
//! What answers is smoltcp's [`Interface`] and its sockets, nothing of this program's own:
//! ARP and ICMP echo by the interface; for every port given with `--tcp`, a pool of
//! [`POOL_SIZE`] listening TCP sockets (each listens again once it is closed, so many SYNs from
//! different source ports each get a SYN-ACK); a connection that sends data gets one short HTTP
//! answer and is closed. Every other TCP port gets smoltcp's RST, every UDP port its ICMP port
//! unreachable, every other IP protocol its ICMP protocol unreachable.
//!
//! It only attaches to a TAP device that already exists in its network namespace (lab.sh creates
//! `tap0` inside the host's namespace): it never creates an interface, though smoltcp would.
//!
//! The program runs until it is killed (SIGTERM). Bad arguments: a message on stderr and exit
//! status 2; no such TAP device, it cannot be opened, or waiting on it fails: exit status 1.

#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

/// Listening sockets kept per TCP port.
const POOL_SIZE: usize = 16;
/// At most this many TCP ports (so at most `MAX_PORTS * POOL_SIZE` sockets).
const MAX_PORTS: usize = 64;
/// Receive buffer of each socket (the window it advertises).
const RX_BUFFER: usize = 8192;
/// Send buffer of each socket.
const TX_BUFFER: usize = 2048;
/// A connection the peer has sent nothing on for this long is aborted, so that no pool socket
/// stays taken by a peer that went away.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// What a connection that sends anything gets, before the socket closes it.
const ANSWER: &[u8] = b"HTTP/1.0 200 OK\r\n\r\nsmoltcp lab host\r\n";
/// The longest interface name the kernel takes (IFNAMSIZ less the terminating NUL).
const MAX_IFNAME: usize = 15;

/// Usage text, printed with `--help` and after an argument error.
const USAGE: &str = "usage: rustmap-lab-stack --tap TAP --addr IPV4/LEN --mac MAC [--gw IPV4] [--tcp PORT,PORT...]

  --tap NAME       existing TAP device to attach to (never created here)
  --addr A.B.C.D/N the host's IPv4 address and prefix length
  --mac MAC        the host's Ethernet address (unicast), e.g. 02:52:4d:00:00:11
  --gw A.B.C.D     default gateway (optional)
  --tcp LIST       TCP ports to listen on, comma separated (optional; at most 64)

Runs until killed. Exit status: 2 bad arguments, 1 the TAP device is missing or cannot be used.";

/// The command line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    /// Name of the TAP device.
    tap: String,
    /// The host's IPv4 address.
    addr: Ipv4Addr,
    /// Prefix length of the host's subnet.
    prefix_len: u8,
    /// The host's Ethernet address.
    mac: [u8; 6],
    /// Default gateway, if any.
    gateway: Option<Ipv4Addr>,
    /// TCP ports with listening sockets, in the order given, no duplicates.
    tcp_ports: Vec<u16>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    /// Run the host.
    Run(Options),
    /// Print the usage and exit successfully.
    Help,
}

/// Parses the arguments (without the program name). `--name value` and `--name=value` are
/// both accepted; every option may be given once.
fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut tap = None;
    let mut addr = None;
    let mut mac = None;
    let mut gateway = None;
    let mut tcp_ports = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        if !matches!(name.as_str(), "--tap" | "--addr" | "--mac" | "--gw" | "--tcp") {
            return Err(format!("unknown argument '{arg}'"));
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        let duplicate = match name.as_str() {
            "--tap" => tap.replace(parse_ifname(&value)?).is_some(),
            "--addr" => addr.replace(parse_cidr(&value)?).is_some(),
            "--mac" => mac.replace(parse_mac(&value)?).is_some(),
            "--gw" => gateway.replace(parse_ipv4(&value, "--gw")?).is_some(),
            _ => tcp_ports.replace(parse_ports(&value)?).is_some(),
        };
        if duplicate {
            return Err(format!("{name} given twice"));
        }
    }
    let tap = tap.ok_or("--tap is required")?;
    let (addr, prefix_len) = addr.ok_or("--addr is required")?;
    let mac = mac.ok_or("--mac is required")?;
    Ok(Command::Run(Options { tap, addr, prefix_len, mac, gateway, tcp_ports: tcp_ports.unwrap_or_default() }))
}

/// A network interface name: 1 to 15 bytes of letters, digits, `-`, `_` and `.`.
fn parse_ifname(s: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if s.is_empty() || s.len() > MAX_IFNAME || !s.chars().all(ok_char) || s == "." || s == ".." {
        return Err(format!("--tap: bad interface name '{s}' (1-{MAX_IFNAME} letters, digits, '-', '_', '.')"));
    }
    Ok(s.to_string())
}

/// A unicast IPv4 address (not unspecified, broadcast or multicast).
fn parse_ipv4(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    let a: Ipv4Addr = s.parse().map_err(|_| format!("{what}: '{s}' is not an IPv4 address"))?;
    if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
        return Err(format!("{what}: {a} is not a unicast address"));
    }
    Ok(a)
}

/// `A.B.C.D/N`, with N from 1 to 32.
fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, n) = s.split_once('/').ok_or_else(|| format!("--addr: '{s}' is not ADDRESS/PREFIX-LENGTH"))?;
    let addr = parse_ipv4(a, "--addr")?;
    let len: u8 = n.parse().map_err(|_| format!("--addr: bad prefix length '{n}'"))?;
    if !(1..=32).contains(&len) {
        return Err(format!("--addr: prefix length {len} is not 1-32"));
    }
    Ok((addr, len))
}

/// Six hexadecimal octets separated by `:` (or `-`), a unicast address.
fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("--mac: '{s}' is not an Ethernet address like 02:52:4d:00:00:11");
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for octet in mac.iter_mut() {
        let p = parts.next().ok_or_else(bad)?;
        if p.is_empty() || p.len() > 2 {
            return Err(bad());
        }
        *octet = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    if !EthernetAddress(mac).is_unicast() || mac == [0; 6] {
        return Err(format!("--mac: {s} is not a unicast address"));
    }
    Ok(mac)
}

/// A comma-separated list of TCP ports (1-65535), no duplicates, at most [`MAX_PORTS`].
fn parse_ports(s: &str) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for p in s.split(',') {
        let port: u16 = p.trim().parse().map_err(|_| format!("--tcp: bad port '{p}'"))?;
        if port == 0 {
            return Err("--tcp: port 0".to_string());
        }
        if ports.contains(&port) {
            return Err(format!("--tcp: port {port} given twice"));
        }
        if ports.len() == MAX_PORTS {
            return Err(format!("--tcp: more than {MAX_PORTS} ports"));
        }
        ports.push(port);
    }
    Ok(ports)
}

/// A seed for smoltcp's generator (initial sequence numbers, ephemeral ports), different at
/// every start: the clock's nanoseconds mixed with the process id.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().wrapping_mul(1_000_000_007) ^ u64::from(d.subsec_nanos()));
    // splitmix64's finaliser: every input bit reaches every output bit
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One socket of a port's pool.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The port it listens on.
    port: u16,
    /// The socket in the [`SocketSet`].
    handle: SocketHandle,
}

/// Adds [`POOL_SIZE`] TCP sockets for every port to `sockets`, not yet listening (the first
/// [`tend`] makes them listen).
fn make_pools(sockets: &mut SocketSet<'_>, ports: &[u16]) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(ports.len() * POOL_SIZE);
    for &port in ports {
        for _ in 0..POOL_SIZE {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; RX_BUFFER]),
                tcp::SocketBuffer::new(vec![0; TX_BUFFER]),
            );
            socket.set_timeout(Some(IDLE_TIMEOUT));
            slots.push(Slot { port, handle: sockets.add(socket) });
        }
    }
    slots
}

/// Looks after every pool socket once: a closed one listens again; whatever a connection
/// received is read and dropped; a connection that sent anything gets [`ANSWER`] and is
/// closed; one whose peer closed without sending is closed. Returns how many sockets could
/// not listen (only at start-up, e.g. a port given twice, can that happen).
fn tend(sockets: &mut SocketSet<'_>, slots: &[Slot]) -> usize {
    let mut failed = 0;
    for slot in slots {
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        match socket.state() {
            tcp::State::Closed => {
                if socket.listen(slot.port).is_err() {
                    failed += 1;
                }
            }
            tcp::State::Established | tcp::State::CloseWait => {
                let mut got = 0;
                while socket.can_recv() {
                    match socket.recv(|data| (data.len(), data.len())) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got += n,
                    }
                }
                if got > 0 && socket.can_send() {
                    // the buffer is empty (nothing was sent yet) and larger than the answer
                    let _ = socket.send_slice(ANSWER);
                    socket.close();
                } else if socket.state() == tcp::State::CloseWait {
                    socket.close();
                }
            }
            _ => {
                // closing: drop whatever still arrives, so the window never shuts
                while socket.can_recv() {
                    match socket.recv(|data| (data.len(), data.len())) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    failed
}

/// Whether a network interface called `name` exists in this process's network namespace
/// (`/proc/self/net/dev` lists that namespace's interfaces, whatever /sys shows).
fn interface_exists(name: &str) -> Result<bool, String> {
    let dev = std::fs::read_to_string("/proc/self/net/dev").map_err(|e| format!("/proc/self/net/dev: {e}"))?;
    Ok(dev.lines().filter_map(|line| line.split_once(':')).any(|(ifname, _)| ifname.trim() == name))
}

/// Sets the host up on the TAP device and serves until killed (or until waiting on the
/// device fails: the error is returned).
fn run(opts: &Options) -> Result<(), String> {
    // TunTapInterface::new would create a missing device: refuse instead, so that no interface
    // is ever born outside the namespace that was meant for it
    if !interface_exists(&opts.tap)? {
        return Err(format!(
            "no interface {} in this network namespace (create it first: ip tuntap add dev {} mode tap)",
            opts.tap, opts.tap
        ));
    }
    let mut device =
        TunTapInterface::new(&opts.tap, Medium::Ethernet).map_err(|e| format!("TAP device {}: {e}", opts.tap))?;
    let fd = device.as_raw_fd();

    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(opts.mac)));
    config.random_seed = random_seed();
    let mut iface = Interface::new(config, &mut device, Instant::now());
    let cidr = IpCidr::Ipv4(Ipv4Cidr::new(opts.addr, opts.prefix_len));
    let mut added = true;
    iface.update_ip_addrs(|addrs| added = addrs.push(cidr).is_ok());
    if !added {
        return Err(format!("cannot add address {cidr}"));
    }
    if let Some(gw) = opts.gateway {
        iface.routes_mut().add_default_ipv4_route(gw).map_err(|_| format!("cannot add default route via {gw}"))?;
    }

    let mut sockets = SocketSet::new(Vec::new());
    let slots = make_pools(&mut sockets, &opts.tcp_ports);
    let failed = tend(&mut sockets, &slots);
    if failed > 0 {
        return Err(format!("{failed} sockets cannot listen"));
    }
    let mac = opts.mac.map(|o| format!("{o:02x}")).join(":");
    eprintln!(
        "rustmap-lab-stack: smoltcp on {} ({mac}), {}/{}{}",
        opts.tap,
        opts.addr,
        opts.prefix_len,
        opts.gateway.map(|g| format!(", default route via {g}")).unwrap_or_default()
    );
    for port in &opts.tcp_ports {
        // lab.sh waits for these lines (its wait_listening)
        eprintln!("rustmap-lab-stack: listening tcp/{port} ({POOL_SIZE} sockets)");
    }

    loop {
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        tend(&mut sockets, &slots);
        let delay = iface.poll_delay(Instant::now(), &sockets);
        match wait(fd, delay) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("waiting on {}: {e}", opts.tap)),
        }
    }
}

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Run(opts)) => match run(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rustmap-lab-stack: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("rustmap-lab-stack: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_lab_command_line_parses() {
        let got =
            parse_args(args("--tap tap0 --addr 198.18.0.17/24 --gw 198.18.0.1 --mac 02:52:4d:00:00:11 --tcp 80,8080"));
        let want = Options {
            tap: "tap0".into(),
            addr: Ipv4Addr::new(198, 18, 0, 17),
            prefix_len: 24,
            mac: [0x02, 0x52, 0x4d, 0, 0, 0x11],
            gateway: Some(Ipv4Addr::new(198, 18, 0, 1)),
            tcp_ports: vec![80, 8080],
        };
        assert_eq!(got, Ok(Command::Run(want.clone())));
        let inline =
            parse_args(args("--tap=tap0 --addr=198.18.0.17/24 --gw=198.18.0.1 --mac=02-52-4D-00-00-11 --tcp=80,8080"));
        assert_eq!(inline, Ok(Command::Run(want)));
    }

    #[test]
    fn optional_arguments_may_be_left_out() {
        let Ok(Command::Run(o)) = parse_args(args("--tap t --addr 198.18.0.1/15 --mac 02:00:00:00:00:01")) else {
            panic!("not parsed")
        };
        assert_eq!((o.gateway, o.tcp_ports), (None, vec![]));
        assert_eq!(parse_args(args("--help")), Ok(Command::Help));
        assert_eq!(parse_args(args("--tap t -h")), Ok(Command::Help));
    }

    #[test]
    fn bad_arguments_are_refused() {
        let base = "--tap tap0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00:11";
        for extra in [
            "--tcp 0",
            "--tcp 80,80",
            "--tcp 65536",
            "--tcp 80,",
            "--tcp",
            "--gw 198.18.0.255.1",
            "--gw 224.0.0.1",
            "--bogus 1",
            "tap0",
            "--tap tap1",
        ] {
            assert!(parse_args(args(&format!("{base} {extra}"))).is_err(), "{extra}");
        }
        for line in [
            "",
            "--addr 198.18.0.17/24 --mac 02:52:4d:00:00:11",
            "--tap tap0 --mac 02:52:4d:00:00:11",
            "--tap tap0 --addr 198.18.0.17/24",
            "--tap tap0 --addr 198.18.0.17 --mac 02:52:4d:00:00:11",
            "--tap tap0 --addr 198.18.0.17/33 --mac 02:52:4d:00:00:11",
            "--tap tap0 --addr 198.18.0.17/0 --mac 02:52:4d:00:00:11",
            "--tap tap0 --addr 0.0.0.0/24 --mac 02:52:4d:00:00:11",
            "--tap tap0 --addr 198.18.0.17/24 --mac 03:52:4d:00:00:11",
            "--tap tap0 --addr 198.18.0.17/24 --mac ff:ff:ff:ff:ff:ff",
            "--tap tap0 --addr 198.18.0.17/24 --mac 00:00:00:00:00:00",
            "--tap tap0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00",
            "--tap tap0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00:11:22",
            "--tap tap0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00:1g",
            "--tap tap0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00:111",
            "--tap a-name-too-long0 --addr 198.18.0.17/24 --mac 02:52:4d:00:00:11",
            "--tap ../x --addr 198.18.0.17/24 --mac 02:52:4d:00:00:11",
        ] {
            assert!(parse_args(args(line)).is_err(), "{line}");
        }
        let many: Vec<String> = (1..=65).map(|p| p.to_string()).collect();
        assert!(parse_ports(&many.join(",")).is_err());
        assert_eq!(parse_ports(&many[..64].join(",")).map(|p| p.len()), Ok(64));
    }

    #[test]
    fn pools_listen_and_listen_again_once_closed() {
        let mut sockets = SocketSet::new(Vec::new());
        let slots = make_pools(&mut sockets, &[80, 8080]);
        assert_eq!(slots.len(), 2 * POOL_SIZE);
        assert_eq!(tend(&mut sockets, &slots), 0);
        for s in &slots {
            let socket = sockets.get_mut::<tcp::Socket>(s.handle);
            assert_eq!(socket.state(), tcp::State::Listen);
            assert_eq!(socket.listen_endpoint().port, s.port);
            socket.abort();
            assert_eq!(socket.state(), tcp::State::Closed);
        }
        assert_eq!(tend(&mut sockets, &slots), 0);
        assert!(slots.iter().all(|s| sockets.get_mut::<tcp::Socket>(s.handle).state() == tcp::State::Listen));
    }

    #[test]
    fn interfaces_are_looked_up_in_this_namespace() {
        // (run() itself is not called here: on a root test machine a bug in the check would
        // create an interface in the machine's own namespace)
        assert_eq!(interface_exists("lo"), Ok(true));
        assert_eq!(interface_exists("rmnosuchif0"), Ok(false));
        assert_eq!(interface_exists("l"), Ok(false));
    }

    #[test]
    fn seeds_differ() {
        // the clock moves between two calls on any machine this runs on (nanoseconds)
        let a = random_seed();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert_ne!(a, random_seed());
    }
}
