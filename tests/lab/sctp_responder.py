#!/usr/bin/env python3
"""A user-space SCTP responder for the RustMap network lab (tests/lab/lab.sh).

The lab's kernels have no SCTP module, so nothing in the lab can listen on SCTP. This program
plays the part of an SCTP stack that has endpoints on a few ports, enough for port scans
(nmap -sY INIT scans, -sZ COOKIE-ECHO scans) to see open and closed ports:

    sctp_responder.py --open 2905,3868 [--ignore-ports 5000,5001] [--max-log 200]

It opens raw sockets for IP protocol 132 (IPv4 and IPv6) in the network namespace it runs in.
While such a socket is open, the kernel hands every SCTP packet addressed to this host to it
and no longer answers SCTP with ICMP protocol unreachable (ICMPv6 parameter problem).
For every received packet addressed to one of this host's unicast addresses, from a unicast
address, with a good CRC32c checksum (RFC 9260 section 6.8, appendix A):

  INIT to an --open port           INIT-ACK: verification tag = the INIT's Initiate Tag, our own
                                   random Initiate Tag and initial TSN, a_rwnd, stream counts and
                                   a State Cookie (HMAC-signed, so the responder keeps no state);
                                   unrecognised INIT parameters whose type asks for it are
                                   reported back (Unrecognized Parameter).
  INIT to any other port           ABORT, T bit clear, verification tag = the INIT's Initiate Tag
                                   (RFC 9260 section 8.4 rule 3, "out of the blue" packets).
  COOKIE-ECHO to an --open port    with a cookie this process issued (right tag, ports, addresses,
                                   younger than 60 s): COOKIE-ACK. Any other cookie: silently
                                   dropped, as a real stack drops an invalid cookie.
  COOKIE-ECHO to any other port    ABORT, T bit set, verification tag reflected from the packet
                                   (section 8.4 rule 8).
  anything to an --ignore-ports    nothing (the port looks filtered).
  anything else                    ignored: ABORT, SHUTDOWN-COMPLETE, other chunk types, INIT
                                   bundled with other chunks or with a non-zero verification tag,
                                   Initiate Tag 0, bad checksums, truncated or malformed packets.

Every reply is a single packet no larger than the packet it answers plus ~100 bytes, and never
an INIT or COOKIE-ECHO, so two responders can never keep each other talking. Replies leave
through the same raw sockets (the kernel builds the IP header) from the address the packet was
sent to. One line per reply goes to stderr, at most --max-log lines, then only a count; a
summary line is printed on exit. Python 3 standard library only; written from RFC 9260 (which
obsoletes RFC 4960). Runs in the foreground until SIGTERM/SIGINT, or --max-seconds.
"""

import argparse
import errno
import hashlib
import hmac
import ipaddress
import os
import select
import signal
import socket
import struct
import sys
import time

IPPROTO_SCTP = 132
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python 3.11 does not export it
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
MAX_PACKET = 65535

# Chunk types (RFC 9260 section 3.2)
DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT = 0, 1, 2, 3, 4, 5, 6
SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ECHO, COOKIE_ACK = 7, 8, 9, 10, 11
SHUTDOWN_COMPLETE = 14
CHUNK_NAMES = {INIT: "INIT", INIT_ACK: "INIT-ACK", ABORT: "ABORT", COOKIE_ECHO: "COOKIE-ECHO",
               COOKIE_ACK: "COOKIE-ACK"}

# INIT / INIT-ACK parameter types (section 3.3.2, 3.3.3)
P_IPV4, P_IPV6, P_STATE_COOKIE, P_UNRECOGNIZED, P_COOKIE_PRESERVATIVE = 5, 6, 7, 8, 9
P_HOST_NAME, P_SUPPORTED_ADDR_TYPES = 11, 12
KNOWN_INIT_PARAMS = {P_IPV4, P_IPV6, P_COOKIE_PRESERVATIVE, P_HOST_NAME, P_SUPPORTED_ADDR_TYPES}

# Error causes (section 3.3.10)
CAUSE_INVALID_MANDATORY_PARAM, CAUSE_UNRESOLVABLE_ADDRESS = 7, 5

# What this "stack" advertises
OUR_A_RWND = 106496
OUR_STREAMS = 10
COOKIE_LIFE = 60            # seconds, RFC 9260 Valid.Cookie.Life
MAX_REPORTED_PARAMS = 512   # bytes of Unrecognized Parameter we echo back at most


# ------------------------------------------------------------------------------------ CRC32c
def _crc32c_table():
    """Castagnoli polynomial 0x1EDC6F41, bit-reflected (0x82F63B78), one entry per byte value."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_checksum(packet):
    """The checksum of an SCTP packet, computed with its checksum field taken as zero.
    On the wire it is stored least significant byte first (RFC 9260 appendix A)."""
    return crc32c(packet[:8] + b"\0\0\0\0" + packet[12:])


def checksum_ok(packet):
    return len(packet) >= 12 and struct.unpack_from("<I", packet, 8)[0] == sctp_checksum(packet)


def finish(header_and_chunks):
    """Fill in the checksum of a packet whose checksum field is zero."""
    pkt = bytearray(header_and_chunks)
    struct.pack_into("<I", pkt, 8, crc32c(pkt))
    return bytes(pkt)


# ------------------------------------------------------------------------------- parsing
def pad4(n):
    return (n + 3) & ~3


def parse_chunks(packet):
    """[(type, flags, value)] of an SCTP packet, or None if any chunk header is malformed.
    A final chunk may omit its padding; a chunk length below 4 or past the end is malformed."""
    chunks = []
    off = 12
    end = len(packet)
    while off < end:
        if end - off < 4:
            return None
        ctype, flags, length = struct.unpack_from("!BBH", packet, off)
        if length < 4 or off + length > end:
            return None
        chunks.append((ctype, flags, packet[off + 4:off + length]))
        off += pad4(length)
    return chunks


def parse_params(body):
    """[(type, full TLV bytes, value)] of a parameter list, or None if malformed."""
    params = []
    off = 0
    end = len(body)
    while off < end:
        if end - off < 4:
            return None
        ptype, length = struct.unpack_from("!HH", body, off)
        if length < 4 or off + length > end:
            return None
        params.append((ptype, body[off:off + length], body[off + 4:off + length]))
        off += pad4(length)
    return params


def tlv(ptype, value):
    """A parameter / error cause / chunk-like TLV with 4-byte padding."""
    raw = struct.pack("!HH", ptype, 4 + len(value)) + value
    return raw + b"\0" * (pad4(len(raw)) - len(raw))


def chunk(ctype, flags, value):
    raw = struct.pack("!BBH", ctype, flags, 4 + len(value)) + value
    return raw + b"\0" * (pad4(len(raw)) - len(raw))


def packet(sport, dport, vtag, *chunks):
    return finish(struct.pack("!HHII", sport, dport, vtag, 0) + b"".join(chunks))


# --------------------------------------------------------------------------------- cookie
COOKIE_FMT = "!BBHIIIIIIHHHH16s16s"  # version, family, 0, time, our tag, peer tag, our TSN,
COOKIE_BODY = struct.calcsize(COOKIE_FMT)  # peer TSN, peer a_rwnd, peer port, our port, OS, MIS,
COOKIE_MAC = 16                            # peer address, local address; then a MAC
COOKIE_VERSION = 1


def addr16(addr):
    ip = ipaddress.ip_address(addr)
    return ip.packed.rjust(16, b"\0")


class Cookies:
    def __init__(self):
        self.key = os.urandom(32)

    def _mac(self, body):
        return hmac.new(self.key, body, hashlib.sha256).digest()[:COOKIE_MAC]

    def make(self, family, our_tag, peer_tag, our_tsn, peer_tsn, peer_rwnd, peer_port, our_port,
             os_, mis, peer_addr, local_addr):
        body = struct.pack(COOKIE_FMT, COOKIE_VERSION, family, 0, int(time.time()) & 0xFFFFFFFF,
                           our_tag, peer_tag, our_tsn, peer_tsn, peer_rwnd, peer_port, our_port, os_,
                           mis, addr16(peer_addr), addr16(local_addr))
        return body + self._mac(body)

    def check(self, cookie, vtag, peer_port, our_port, peer_addr, local_addr):
        """The peer's Initiate Tag if `cookie` is one we issued for this very packet, else None."""
        if len(cookie) != COOKIE_BODY + COOKIE_MAC:
            return None
        body, mac = cookie[:COOKIE_BODY], cookie[COOKIE_BODY:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        (ver, _fam, _z, stamp, our_tag, peer_tag, _our_tsn, _peer_tsn, _rwnd, c_peer_port, c_our_port,
         _os, _mis, c_peer, c_local) = struct.unpack(COOKIE_FMT, body)
        age = (int(time.time()) - stamp) & 0xFFFFFFFF
        if ver != COOKIE_VERSION or age > COOKIE_LIFE:
            return None
        if (our_tag, c_peer_port, c_our_port) != (vtag, peer_port, our_port):
            return None
        if c_peer != addr16(peer_addr) or c_local != addr16(local_addr):
            return None
        return peer_tag


def rand32(nonzero=False):
    while True:
        v = struct.unpack("!I", os.urandom(4))[0]
        if v or not nonzero:
            return v


# ------------------------------------------------------------------------------ responder
class Responder:
    def __init__(self, open_ports, ignore_ports, max_log):
        self.open = frozenset(open_ports)
        self.ignore = frozenset(ignore_ports)
        self.max_log = max_log
        self.logged = 0
        self.cookies = Cookies()
        self.stats = {"received": 0, "bad_checksum": 0, "malformed": 0, "not_for_us": 0,
                      "ignored": 0, "replies": 0, "send_errors": 0, "errors": 0}
        self._local = {}   # (family, addr, ifindex) -> (verdict, time): is addr one of ours?
        self._peer = {}    # (family, addr, ifindex) -> (verdict, time): may we answer addr?

    # ---------------------------------------------------------------- address checks
    def _cached(self, cache, key, compute):
        now = time.monotonic()
        hit = cache.get(key)
        if hit and now - hit[1] < 10.0:
            return hit[0]
        if len(cache) > 4096:
            cache.clear()
        verdict = compute()
        cache[key] = (verdict, now)
        return verdict

    @staticmethod
    def _route_source(family, addr, ifindex):
        """The source address the kernel picks for `addr` (a UDP connect sends nothing), or None
        when there is no usable route (this includes broadcast addresses: EACCES)."""
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                scope = ifindex if ipaddress.ip_address(addr).is_link_local else 0
                s.connect((addr, 9, 0, scope))
            else:
                s.connect((addr, 9))
            return s.getsockname()[0].split("%", 1)[0]
        except OSError:
            return None
        finally:
            s.close()

    @staticmethod
    def _bindable(family, addr, ifindex):
        """True if a socket can bind to addr: a local, broadcast or multicast address."""
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                scope = ifindex if ipaddress.ip_address(addr).is_link_local else 0
                s.bind((addr, 0, 0, scope))
            else:
                s.bind((addr, 0))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def is_local(self, family, addr, ifindex):
        """True if addr is a unicast address of this host (a packet to the subnet broadcast or a
        multicast group also reaches raw sockets: RFC 9260 8.4 rule 1 says leave those alone).
        Local: bind() accepts it; not broadcast: a connect() to it is not refused (EACCES)."""
        def compute():
            ip = ipaddress.ip_address(addr)
            if ip.is_multicast or ip.is_unspecified or addr == "255.255.255.255":
                return False
            return self._bindable(family, addr, ifindex) and self._route_source(family, addr, ifindex) is not None
        return self._cached(self._local, (family, addr, ifindex), compute)

    def is_unicast_peer(self, family, addr, ifindex):
        def compute():
            ip = ipaddress.ip_address(addr)
            if ip.is_multicast or ip.is_unspecified or addr == "255.255.255.255":
                return False
            return self._route_source(family, addr, ifindex) is not None
        return self._cached(self._peer, (family, addr, ifindex), compute)

    # ---------------------------------------------------------------- logging
    def log(self, msg):
        if self.logged < self.max_log:
            print(f"{time.strftime('%H:%M:%S')} sctp_responder: {msg}", file=sys.stderr, flush=True)
        elif self.logged == self.max_log:
            print(f"{time.strftime('%H:%M:%S')} sctp_responder: --max-log {self.max_log} lines reached; "
                  "further replies are only counted", file=sys.stderr, flush=True)
        self.logged += 1

    # ---------------------------------------------------------------- the state machine (none)
    def handle(self, family, pkt, src, dst, ifindex):
        """Return the reply packet (SCTP header + chunks, checksum set) for one received SCTP
        packet, or None."""
        if len(pkt) < 16:  # common header + at least one chunk header
            self.stats["malformed"] += 1
            return None
        if not checksum_ok(pkt):
            self.stats["bad_checksum"] += 1
            return None
        if not (self.is_local(family, dst, ifindex) and self.is_unicast_peer(family, src, ifindex)):
            self.stats["not_for_us"] += 1
            return None
        sport, dport, vtag = struct.unpack_from("!HHI", pkt)
        chunks = parse_chunks(pkt)
        if not chunks or sport == 0 or dport == 0:
            self.stats["malformed"] += 1
            return None
        if dport in self.ignore:
            self.stats["ignored"] += 1
            return None
        ctype, _flags, value = chunks[0]
        if ctype == INIT:
            return self.on_init(family, chunks, src, dst, sport, dport, vtag, value)
        if ctype == COOKIE_ECHO:
            return self.on_cookie_echo(src, dst, sport, dport, vtag, value)
        # ABORT, SHUTDOWN-COMPLETE, INIT-ACK, COOKIE-ACK, DATA, ...: nothing (see the docstring)
        self.stats["ignored"] += 1
        return None

    def on_init(self, family, chunks, src, dst, sport, dport, vtag, value):
        # An INIT travels alone with verification tag 0 (RFC 9260 6.10, 8.5.1); discard otherwise.
        if len(chunks) != 1 or vtag != 0 or len(value) < 16:
            self.stats["malformed"] += 1
            return None
        peer_tag, peer_rwnd, peer_os, peer_mis, peer_tsn = struct.unpack_from("!IIHHI", value)
        if peer_tag == 0:  # section 3.3.2: silently discard
            self.stats["malformed"] += 1
            return None
        params = parse_params(value[16:])
        if params is None:
            self.stats["malformed"] += 1
            return None
        if dport not in self.open:
            # out of the blue (8.4 rule 3): ABORT, T bit clear, tag = the INIT's Initiate Tag
            return self.reply(src, dport, sport, peer_tag, chunk(ABORT, 0, b""), "INIT", "ABORT")
        if peer_os == 0 or peer_mis == 0:
            # section 3.3.2: discard, SHOULD answer with an ABORT (Invalid Mandatory Parameter)
            cause = struct.pack("!HH", CAUSE_INVALID_MANDATORY_PARAM, 4)
            return self.reply(src, dport, sport, peer_tag, chunk(ABORT, 0, cause), "INIT(0 streams)", "ABORT")
        unrecognized = []
        reported = 0
        for ptype, raw, _pval in params:
            if ptype == P_HOST_NAME:
                # section 5.1.2: an INIT must not carry a Host Name Address; answer with an ABORT
                cause = tlv(CAUSE_UNRESOLVABLE_ADDRESS, raw[:MAX_REPORTED_PARAMS])
                return self.reply(src, dport, sport, peer_tag, chunk(ABORT, 0, cause), "INIT(host name)", "ABORT")
            if ptype in KNOWN_INIT_PARAMS:
                continue
            # section 3.2.1: the two high bits of an unknown type say what to do
            action = ptype >> 14
            if action & 1 and reported + len(raw) + 4 <= MAX_REPORTED_PARAMS:
                unrecognized.append(tlv(P_UNRECOGNIZED, raw))
                reported += len(raw) + 4
            if not action & 2:
                break  # 00 / 01: stop processing parameters
        our_tag, our_tsn = rand32(nonzero=True), rand32()
        our_os = min(OUR_STREAMS, peer_mis)
        cookie = self.cookies.make(4 if family == socket.AF_INET else 6, our_tag, peer_tag, our_tsn,
                                   peer_tsn, peer_rwnd, sport, dport, our_os, OUR_STREAMS, src, dst)
        body = struct.pack("!IIHHI", our_tag, OUR_A_RWND, our_os, OUR_STREAMS, our_tsn)
        body += tlv(P_STATE_COOKIE, cookie) + b"".join(unrecognized)
        return self.reply(src, dport, sport, peer_tag, chunk(INIT_ACK, 0, body), "INIT", "INIT-ACK")

    def on_cookie_echo(self, src, dst, sport, dport, vtag, cookie):
        if dport in self.open:
            peer_tag = self.cookies.check(cookie, vtag, sport, dport, src, dst)
            if peer_tag is None:
                self.stats["ignored"] += 1  # not a cookie of ours: a real stack drops it silently
                return None
            return self.reply(src, dport, sport, peer_tag, chunk(COOKIE_ACK, 0, b""), "COOKIE-ECHO", "COOKIE-ACK")
        # out of the blue (8.4 rule 8): ABORT with the T bit set, the packet's tag reflected
        return self.reply(src, dport, sport, vtag, chunk(ABORT, 1, b""), "COOKIE-ECHO", "ABORT(T)")

    def reply(self, peer, our_port, peer_port, vtag, chunk_bytes, got, sent):
        self.stats["replies"] += 1
        self.log(f"{got} from [{peer}]:{peer_port} to port {our_port}: {sent} vtag=0x{vtag:08x}")
        return packet(our_port, peer_port, vtag, chunk_bytes)


# --------------------------------------------------------------------------- socket glue
def open_sockets():
    socks = {}
    errors = []
    try:
        s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)
        s4.setblocking(False)
        socks[socket.AF_INET] = s4
    except OSError as e:
        errors.append(f"IPv4: {e}")
    try:
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_SCTP)
        s6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        s6.setblocking(False)
        socks[socket.AF_INET6] = s6
    except OSError as e:
        errors.append(f"IPv6: {e}")
    return socks, errors


def receive4(sock):
    """(sctp bytes, src, dst, ifindex) from an IPv4 raw socket (which delivers the IP header)."""
    data, _anc, flags, _addr = sock.recvmsg(MAX_PACKET)
    if flags & socket.MSG_TRUNC or len(data) < 20:
        return None
    ver_ihl, _tos, total = struct.unpack_from("!BBH", data)
    ihl = (ver_ihl & 0x0F) * 4
    if ver_ihl >> 4 != 4 or ihl < 20 or total < ihl or total > len(data) or data[9] != IPPROTO_SCTP:
        return None
    src = socket.inet_ntop(socket.AF_INET, data[12:16])
    dst = socket.inet_ntop(socket.AF_INET, data[16:20])
    return data[ihl:total], src, dst, 0


def receive6(sock):
    """(sctp bytes, src, dst, ifindex) from an IPv6 raw socket (payload only; the destination
    address and interface come from IPV6_PKTINFO)."""
    data, anc, flags, addr = sock.recvmsg(MAX_PACKET, socket.CMSG_SPACE(20))
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        return None
    dst, ifindex = None, 0
    for level, ctype, cdata in anc:
        if level == socket.IPPROTO_IPV6 and ctype == IPV6_PKTINFO and len(cdata) >= 20:
            dst = socket.inet_ntop(socket.AF_INET6, cdata[:16])
            ifindex = struct.unpack_from("=I", cdata, 16)[0]
    if dst is None:
        return None
    return data, addr[0].split("%", 1)[0], dst, ifindex


def send(sock, family, pkt, peer, local, ifindex):
    """Send from `local` (the address the packet we answer was sent to) to `peer`."""
    if family == socket.AF_INET:
        info = struct.pack("=i4s4s", 0, socket.inet_pton(socket.AF_INET, local), b"\0" * 4)
        sock.sendmsg([pkt], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, (peer, 0))
    else:
        link_local = ipaddress.ip_address(peer).is_link_local
        info = socket.inet_pton(socket.AF_INET6, local) + struct.pack("=I", ifindex if link_local else 0)
        sock.sendmsg([pkt], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, info)], 0,
                     (peer, 0, 0, ifindex if link_local else 0))


def port_list(text):
    ports = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise argparse.ArgumentTypeError(f"bad port list {text!r}")
        lo, hi = int(lo), int(hi or lo)
        if not 0 < lo <= hi < 65536:
            raise argparse.ArgumentTypeError(f"bad port range {part!r}")
        ports.update(range(lo, hi + 1))
    return ports


def self_test():
    """Known answers: the CRC32c check value and RFC 3720's 32 zero bytes."""
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"\0" * 32) == 0x8A9136AA
    assert crc32c(bytes(range(32))) == 0x46DD794E


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--open", type=port_list, required=True, metavar="PORTS",
                    help="SCTP ports with an 'endpoint' (INIT-ACK), e.g. 2905,3868")
    ap.add_argument("--ignore-ports", type=port_list, default=set(), metavar="PORTS",
                    help="ports whose packets get no answer at all (they look filtered)")
    ap.add_argument("--max-log", type=int, default=200, metavar="N", help="log at most N replies (default 200)")
    ap.add_argument("--max-seconds", type=float, default=86400.0, metavar="S",
                    help="exit after S seconds (default one day)")
    args = ap.parse_args()
    self_test()

    socks, errors = open_sockets()
    for e in errors:
        print(f"sctp_responder: cannot open a raw SCTP socket: {e}", file=sys.stderr, flush=True)
    if not socks:
        return 1
    resp = Responder(args.open, args.ignore_ports, max(0, args.max_log))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    fams = "+".join("IPv4" if f == socket.AF_INET else "IPv6" for f in socks)
    print(f"sctp_responder: ready ({fams} raw protocol 132), open {sorted(resp.open)}"
          + (f", ignoring {sorted(resp.ignore)}" if resp.ignore else ""), file=sys.stderr, flush=True)

    by_fd = {s.fileno(): (fam, s) for fam, s in socks.items()}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < deadline:
        try:
            events = poller.poll(500)
        except InterruptedError:
            continue
        for fd, _ev in events:
            fam, sock = by_fd[fd]
            for _ in range(256):  # drain what is queued, a bounded batch at a time
                try:
                    got = receive4(sock) if fam == socket.AF_INET else receive6(sock)
                except BlockingIOError:
                    break
                except OSError:
                    resp.stats["errors"] += 1
                    break
                resp.stats["received"] += 1
                if got is None:
                    resp.stats["malformed"] += 1
                    continue
                pkt, src, dst, ifindex = got
                try:
                    out = resp.handle(fam, pkt, src, dst, ifindex)
                except Exception as e:  # one hostile packet must never stop the responder
                    resp.stats["errors"] += 1
                    if resp.stats["errors"] <= 20:
                        print(f"sctp_responder: error on a packet from {src}: {e!r}", file=sys.stderr, flush=True)
                    continue
                if out is None:
                    continue
                try:
                    send(sock, fam, out, src, dst, ifindex)
                except Exception as e:  # EPERM, ENETUNREACH, ...: count, never die
                    resp.stats["send_errors"] += 1
                    if resp.stats["send_errors"] <= 20:
                        why = errno.errorcode.get(e.errno, e) if isinstance(e, OSError) else repr(e)
                        print(f"sctp_responder: send to {src} failed: {why}", file=sys.stderr, flush=True)
    print("sctp_responder: stopped; " + ", ".join(f"{k} {v}" for k, v in resp.stats.items()),
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
