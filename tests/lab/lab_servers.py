#!/usr/bin/env python3
"""Small TCP servers for the RustMap network lab (tests/lab/lab.sh).

One process serves several listeners, each given as KIND:PORT, for example

    lab_servers.py --host h10.lab.test smtp:25 pop3:110 imap:143 irc:6667

Kinds:
  smtp, pop3, imap, irc  send an honest banner ("RustMapLab"), then answer every line
                         with a generic reply until QUIT or 60 s of idle time.
  http                   a minimal HTTP/1.0 server (one response per connection).
  tarpit                 accept, then drip one byte every 3 s; each connection is
                         closed after at most 10 minutes.
  hostile                send a banner full of terminal escapes, NUL bytes, markup
                         and invalid UTF-8, keep the connection open for 30 s, close.

Every listener is dual-stack ([::] with IPV6_V6ONLY=0), so it answers on the host's
IPv4 and IPv6 addresses. Connections per listener are capped; everything is bounded
in time. Runs in the foreground until SIGTERM/SIGINT.
"""

import argparse
import signal
import socket
import sys
import threading
import time

MAX_CONN_PER_LISTENER = 64
IDLE_TIMEOUT = 60.0
TARPIT_INTERVAL = 3.0
TARPIT_MAX_SECONDS = 600.0
HOSTILE_HOLD_SECONDS = 30.0

HOSTILE_BANNER = (
    b"\x1b[2J\x1b[H"  # clear screen, cursor home
    b"\x1b]0;RUSTMAP-LAB-PWNED\x07"  # OSC: set terminal title, BEL-terminated
    b"\x1b[31;5mred blinking\x1b[0m "
    b"NUL:\x00\x00 "
    b"<script>alert('rustmap-lab')</script> "
    b"<b onmouseover=alert(1)>x</b> &amp; "
    b"bad-utf8:\xff\xfe\xc3\x28\xe2\x82 "
    b"\r\n"
)

STOP = threading.Event()


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} lab_servers: {msg}", file=sys.stderr, flush=True)


def line_service(kind, host):
    """Return (banner, reply(line) -> (bytes, close?))."""
    if kind == "smtp":
        banner = f"220 {host} ESMTP RustMapLab-smtpd 1.0 ready\r\n"

        def reply(line):
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"QUIT":
                return b"221 2.0.0 Bye\r\n", True
            if verb in (b"EHLO", b"HELO"):
                return f"250-{host} greets you\r\n250 HELP\r\n".encode(), False
            return b"502 5.5.2 Command not implemented\r\n", False

    elif kind == "pop3":
        banner = "+OK RustMapLab POP3 server ready\r\n"

        def reply(line):
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"QUIT":
                return b"+OK bye\r\n", True
            if verb == b"CAPA":
                return b"+OK\r\nUSER\r\n.\r\n", False
            return b"-ERR unknown command\r\n", False

    elif kind == "imap":
        banner = "* OK [CAPABILITY IMAP4rev1] RustMapLab IMAP server ready\r\n"

        def reply(line):
            parts = line.split(b" ", 2)
            tag = parts[0] if parts and parts[0] else b"*"
            verb = parts[1].upper() if len(parts) > 1 else b""
            if verb == b"LOGOUT":
                return b"* BYE\r\n" + tag + b" OK LOGOUT completed\r\n", True
            if verb == b"CAPABILITY":
                return b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK CAPABILITY completed\r\n", False
            return tag + b" BAD unknown command\r\n", False

    elif kind == "irc":
        banner = f":{host} NOTICE * :*** Looking up your hostname...\r\n"

        def reply(line):
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"QUIT":
                return b"ERROR :Closing link\r\n", True
            if verb == b"PING":
                return b"PONG " + line[5:] + b"\r\n", False
            return f":{host} 421 * :Unknown command\r\n".encode(), False

    else:
        raise ValueError(kind)
    return banner.encode(), reply


def serve_lines(conn, kind, host):
    banner, reply = line_service(kind, host)
    conn.sendall(banner)
    conn.settimeout(IDLE_TIMEOUT)
    buf = b""
    while not STOP.is_set():
        data = conn.recv(4096)
        if not data:
            return
        buf += data
        if len(buf) > 65536:
            return
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out, close = reply(line.rstrip(b"\r"))
            conn.sendall(out)
            if close:
                return


def serve_http(conn, host):
    conn.settimeout(10.0)
    buf = b""
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf and len(buf) < 65536:
        data = conn.recv(4096)
        if not data:
            break
        buf += data
    body = f"<html><head><title>RustMap lab {host}</title></head><body>lab</body></html>\n".encode()
    head = (
        "HTTP/1.0 200 OK\r\n"
        "Server: RustMapLab-httpd/1.0\r\n"
        "Content-Type: text/html\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    first = buf.split(b"\r\n", 1)[0]
    conn.sendall(head if first.startswith(b"HEAD ") else head + body)


def serve_tarpit(conn):
    drip = b"RUSTMAP-LAB-TARPIT\r\n"
    deadline = time.monotonic() + TARPIT_MAX_SECONDS
    i = 0
    while not STOP.is_set() and time.monotonic() < deadline:
        conn.sendall(drip[i % len(drip):i % len(drip) + 1])
        i += 1
        if STOP.wait(TARPIT_INTERVAL):
            return


def serve_hostile(conn):
    conn.sendall(HOSTILE_BANNER)
    STOP.wait(HOSTILE_HOLD_SECONDS)


def handle(conn, peer, kind, host, slots):
    try:
        if kind in ("smtp", "pop3", "imap", "irc"):
            serve_lines(conn, kind, host)
        elif kind == "http":
            serve_http(conn, host)
        elif kind == "tarpit":
            serve_tarpit(conn)
        elif kind == "hostile":
            serve_hostile(conn)
    except OSError:
        pass
    finally:
        try:
            conn.close()
        finally:
            slots.release()


def listener(kind, port, host):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.listen(64)
    sock.settimeout(0.5)
    slots = threading.BoundedSemaphore(MAX_CONN_PER_LISTENER)
    log(f"{kind} listening on [::]:{port} (dual-stack)")

    def loop():
        while not STOP.is_set():
            try:
                conn, peer = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if STOP.is_set():
                    break
                time.sleep(0.1)
                continue
            if not slots.acquire(blocking=False):
                conn.close()  # over the cap: drop, never queue unboundedly
                continue
            conn.settimeout(None)
            threading.Thread(target=handle, args=(conn, peer, kind, host, slots), daemon=True).start()
        sock.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="lab.test", help="host name used in banners")
    ap.add_argument("listen", nargs="+", metavar="KIND:PORT")
    args = ap.parse_args()

    kinds = {"smtp", "pop3", "imap", "irc", "http", "tarpit", "hostile"}
    specs = []
    for item in args.listen:
        kind, _, port = item.partition(":")
        if kind not in kinds or not port.isdigit() or not 0 < int(port) < 65536:
            ap.error(f"bad listener {item!r}; want KIND:PORT with KIND in {sorted(kinds)}")
        specs.append((kind, int(port)))

    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    threads = [listener(kind, port, args.host) for kind, port in specs]
    while not STOP.is_set():
        STOP.wait(1.0)
    for t in threads:
        t.join(timeout=2.0)
    log("stopped")


if __name__ == "__main__":
    main()
