#!/usr/bin/env python3
"""Peers that misbehave on purpose, for the RustMap lab's hostile host (h16, tests/lab/lab.sh).

One asyncio process serves several listeners, each given as KIND:PORT (IPv4, 0.0.0.0):

  spoof     portspoof-like: every TCP port of the host that has no real listener is redirected
            here (iptables REDIRECT in the host's namespace); the original port
            (SO_ORIGINAL_DST) picks one of FAKE_BANNERS: fake service banners full of terminal
            escapes, NUL and other C0 bytes, XML/HTML metacharacters, invalid UTF-8 and lines of
            64 KiB. After the banner, one more hostile answer to whatever the peer sends, then close.
  drip      zero-window tarpit: a receive buffer of the kernel's minimum and a clamped window,
            never reads (the peer's sends stall on a zero window), drips one byte a second.
  sshbig    an SSH identification string of 1 MiB (no line end until the very end), then holds.
  bomb      HTTP: every request gets a gzip decompression bomb (Content-Encoding: gzip, about
            1 MiB on the wire, 1 GiB once inflated).
  redirect  HTTP: every request gets a 301 to the next URL (/r/1, /r/2, ...) or to itself, forever.
  tls       TLS (--cert chain file, ~1 MiB of certificates, --key), HTTP bomb inside.
  dns       DNS over UDP and TCP on the port: every answer's names are compression-pointer loops.

Bounded everywhere: at most MAX_CONN connections at once per listener (over that: closed at
once), every connection ends after at most HOLD seconds (drip: DRIP_SECONDS), reads are capped
in bytes, nothing is queued without bound. Runs in the foreground until SIGTERM/SIGINT.
Standard library only.
"""

import argparse
import asyncio
import signal
import socket
import ssl
import struct
import sys
import time
import zlib

MAX_CONN = 512
HOLD = 20.0
DRIP_SECONDS = 300.0
READ_LIMIT = 16384
SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h

ESC = b"\x1b"
LONG = b"A" * 65536

# Fake banners, picked by the port a peer connected to. Each carries bytes no output may show raw.
FAKE_BANNERS = [
    b"SSH-2.0-OpenSSH_7.4\x1b[2J\x1b]0;PWNED\x07 <script>alert(1)</script>\x00\r\n",
    b"220 \x1b[31;5mmail.example\x1b[0m ESMTP Postfix \x00\x01\x02 <b>&amp;</b> ]]>\r\n",
    b"HTTP/1.1 200 OK\r\nServer: Apache/2.4.1 \x1b]8;;http://x/\x07link\x1b]8;;\x07\x00\r\n"
    b"Content-Type: text/html\r\n\r\n<html><title>\x1b[2J\x00T\xff\xfeitle</title></html>",
    b"+OK POP3 ready \x1b[6n\x00\x1b[?1049h <pop3@host&\"'>\r\n",
    b"* OK [CAPABILITY IMAP4rev1] \x1bP+q544e\x1b\\ \x0b\x0c\x08\x7f ready\r\n",
    b"220 FTP server (vsFTPd 3.0.3) " + LONG + b"\r\n",
    b"\x00\x00\x00\x1b\x0a\x35\x2e\x37\x2e\x32\x39\x00\x1b[2J mysql <x>\x00",
    b"RFB 003.008\n\x1b]52;c;cHduZWQ=\x07",
    b"\xff\xfb\x01\xff\xfb\x03\x1b[2J\x1b[HUser Access Verification\r\n\r\nUsername: ",
    b"-ERR unknown command '\x1b[31m<redis>\x1b[0m' \x00&#0;\r\n",
    b"\x1b[2J" * 4096 + b"\r\n",
    b"\x00" * 8192,
    b"\x1b[1mlines\x1b[0m <&>\r\n" + b"\r\n".join(b"l" + LONG[:4096] for _ in range(16)),
    b"\xef\xbb\xbf\xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 bad utf-8 \xe2\x80\xae RTL override\r\n",
    b"SSH-1.99-Cisco-1.25\x00\x1b[2J\r\nProtocol mismatch.\x1b]0;x\x07\n",
]


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} hostile_server: {msg}", file=sys.stderr, flush=True)


class Slots:
    """A per-listener connection cap that never queues: over the cap a connection is closed."""

    def __init__(self, n):
        self.free = n
        self.refused = 0

    def take(self):
        if self.free <= 0:
            self.refused += 1
            return False
        self.free -= 1
        return True

    def give(self):
        self.free += 1


async def close(writer):
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (OSError, asyncio.TimeoutError, ssl.SSLError):
        pass


async def send(writer, data):
    writer.write(data)
    await asyncio.wait_for(writer.drain(), HOLD)


async def read_request(reader, limit=READ_LIMIT, timeout=5.0):
    """Read up to an empty line (an HTTP head) or `limit` bytes, for at most `timeout` s."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        data = await asyncio.wait_for(reader.read(limit - len(buf)), left)
        if not data:
            break
        buf += data
    return buf


# ----------------------------------------------------------------------------------------- spoof
def original_port(writer):
    sock = writer.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        return struct.unpack_from("!H", raw, 2)[0]
    except OSError:
        return sock.getsockname()[1]


async def serve_spoof(reader, writer):
    port = original_port(writer)
    banner = FAKE_BANNERS[port % len(FAKE_BANNERS)]
    await send(writer, banner)
    got = await read_request(reader, timeout=3.0)
    if got:
        await send(writer, FAKE_BANNERS[(port + 7) % len(FAKE_BANNERS)])


# ------------------------------------------------------------------------------------------ drip
async def serve_drip(reader, writer):
    writer.transport.pause_reading()  # never read: the window the peer sees closes
    drip = b"\x1b[5mRUSTMAP-DRIP\x00\r\n"
    deadline = time.monotonic() + DRIP_SECONDS
    i = 0
    while time.monotonic() < deadline:
        writer.write(drip[i % len(drip):i % len(drip) + 1])
        i += 1
        await asyncio.sleep(1.0)
        if writer.is_closing():
            break


def drip_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum (inherited by accepts)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, 1)
    s.bind(("0.0.0.0", port))
    s.listen(128)
    s.setblocking(False)
    return s


# ---------------------------------------------------------------------------------------- sshbig
SSH_BIG = b"SSH-2.0-" + (b"\x1b[2J\x00<ssh>&" + b"B" * 1000) * 1040 + b"\r\n"


async def serve_sshbig(reader, writer):
    await send(writer, SSH_BIG)
    await read_request(reader, timeout=HOLD)


# ------------------------------------------------------------------------------------------ http
def make_bomb(total=1 << 30, chunk=1 << 24):
    """gzip of `total` zero bytes, built from one compressed chunk repeated (a full flush resets
    the compressor, so identical chunks compress to identical bytes)."""
    zeros = bytes(chunk)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(total // chunk):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * (total // chunk) + tail + struct.pack("<II", crc, total & 0xFFFFFFFF)


BOMB = b""


async def serve_bomb(reader, writer):
    req = await read_request(reader)
    if not req:
        return
    head = (
        "HTTP/1.1 200 OK\r\nServer: hostile\x1b[2J\r\nContent-Type: text/html\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(BOMB)}\r\nConnection: close\r\n\r\n"
    ).encode()
    await send(writer, head if req.startswith(b"HEAD ") else head + BOMB)


async def serve_redirect(reader, writer):
    req = await read_request(reader)
    if not req:
        return
    path = req.split(b" ", 2)[1] if req.count(b" ") >= 2 else b"/"
    n = 0
    if path.startswith(b"/r/") and path[3:].isdigit() and len(path) < 24:
        n = int(path[3:])
    target = b"/r/%d" % (n + 1) if n % 2 == 0 else path  # to the next URL, or to itself
    await send(writer, b"HTTP/1.1 301 Moved Permanently\r\nLocation: " + target +
               b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


# ------------------------------------------------------------------------------------------- dns
def dns_answer(query):
    """An answer to `query` whose names loop: the answer's owner name is a pointer to itself,
    a CNAME target points at the answer's owner, and the question is a two-pointer cycle."""
    if len(query) < 12:
        return None
    qid = query[:2]
    hdr = qid + b"\x81\x80" + struct.pack("!HHHH", 1, 3, 0, 0)
    # question at 12: a pointer to offset 14, which points back to 12
    q = b"\xc0\x0e\xc0\x0c" + b"\x00\x01\x00\x01"
    # answer 1 at 20: owner is a pointer to itself
    a1 = b"\xc0\x14" + b"\x00\x01\x00\x01" + struct.pack("!IH", 60, 4) + bytes([198, 18, 0, 16])
    # answer 2 at 36: label "x" then a pointer back to its own start; CNAME data is the same loop
    a2_off = 12 + len(q) + len(a1)
    a2 = b"\x01x" + struct.pack("!H", 0xC000 | a2_off) + b"\x00\x05\x00\x01" + struct.pack("!IH", 60, 2) + \
        struct.pack("!H", 0xC000 | a2_off)
    # answer 3: a pointer past the end of the message
    a3 = b"\xc0\xff" + b"\x00\x10\x00\x01" + struct.pack("!IH", 60, 6) + b"\x05\x1b[2J\x00"
    return hdr + q + a1 + a2 + a3


class DnsUdp(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        ans = dns_answer(data[:512])
        if ans:
            self.transport.sendto(ans, addr)


async def serve_dns_tcp(reader, writer):
    for _ in range(8):
        head = await asyncio.wait_for(reader.readexactly(2), 5.0)
        (n,) = struct.unpack("!H", head)
        query = await asyncio.wait_for(reader.readexactly(n), 5.0)
        ans = dns_answer(query)
        if not ans:
            return
        await send(writer, struct.pack("!H", len(ans)) + ans)


# ------------------------------------------------------------------------------------------ main
HANDLERS = {
    "spoof": serve_spoof,
    "drip": serve_drip,
    "sshbig": serve_sshbig,
    "bomb": serve_bomb,
    "redirect": serve_redirect,
    "tls": serve_bomb,
    "dns": serve_dns_tcp,
}


def wrap(kind, handler, slots, limit):
    async def run(reader, writer):
        if not slots.take():
            writer.transport.abort()
            return
        try:
            await asyncio.wait_for(handler(reader, writer), limit)
        except (OSError, EOFError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            slots.give()
            await close(writer)
    return run


async def main_async(args, specs):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = []
    tls_ctx = None
    for kind, port in specs:
        slots = Slots(MAX_CONN)
        limit = DRIP_SECONDS + 5 if kind == "drip" else HOLD
        handler = wrap(kind, HANDLERS[kind], slots, limit)
        if kind == "tls":
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_ctx.load_cert_chain(args.cert, args.key)
            servers.append(await asyncio.start_server(handler, "0.0.0.0", port, ssl=tls_ctx,
                                                      ssl_handshake_timeout=10.0, backlog=256))
        elif kind == "drip":
            servers.append(await asyncio.start_server(handler, sock=drip_socket(port)))
        else:
            servers.append(await asyncio.start_server(handler, "0.0.0.0", port, backlog=1024,
                                                      reuse_address=True))
        if kind == "dns":
            await loop.create_datagram_endpoint(DnsUdp, local_addr=("0.0.0.0", port))
        log(f"{kind} listening on 0.0.0.0:{port}")
    await stop.wait()
    for s in servers:
        s.close()
    log("stopped")


def main():
    global BOMB
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert", help="certificate chain (PEM) for tls")
    ap.add_argument("--key", help="private key (PEM) for tls")
    ap.add_argument("listen", nargs="+", metavar="KIND:PORT")
    args = ap.parse_args()
    specs = []
    for item in args.listen:
        kind, _, port = item.partition(":")
        if kind not in HANDLERS or not port.isdigit() or not 0 < int(port) < 65536:
            ap.error(f"bad listener {item!r}; want KIND:PORT with KIND in {sorted(HANDLERS)}")
        specs.append((kind, int(port)))
    if any(k == "tls" for k, _ in specs) and not (args.cert and args.key):
        ap.error("tls needs --cert and --key")
    if any(k in ("bomb", "tls") for k, _ in specs):
        BOMB = make_bomb()
        log(f"gzip bomb: {len(BOMB)} bytes on the wire, {1 << 30} inflated")
    asyncio.run(main_async(args, specs))


if __name__ == "__main__":
    main()
