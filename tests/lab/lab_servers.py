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

Protocol fixtures, for services Debian packages no daemon of (see FIXTURES below): each
answers a well-formed request of its protocol with the bytes its specification gives (and
the product/version the ground truth declares), and closes on anything else:
  mongodb (OP_MSG buildInfo), elasticsearch (GET /), docker (Engine API over HTTP),
  kubernetes (kubectl proxy: GET /, /version), mssql (TDS PRELOGIN), oracle (TNS CONNECT),
  amqp (0-9-1 protocol header), jdwp (handshake, VirtualMachine.Version), rtsp (OPTIONS),
  nfs (ONC RPC NULL calls for program 100003).

UDP kind (given as ntp:PORT, IPv4 and IPv6 like the others):
  ntp    an old ntpd, as reference implementations before 4.2.7 answered: NTPv4 client
         requests (mode 3) with a server answer (stratum 2), mode 6 READVAR with its system
         variables, and mode 7 MON_GETLIST_1 ("monlist") with the client list MONLIST below,
         six entries a packet. The answers go to the asking address only.

Every listener is dual-stack ([::] with IPV6_V6ONLY=0), so it answers on the host's
IPv4 and IPv6 addresses. Connections per listener are capped; everything is bounded
in time. Runs in the foreground until SIGTERM/SIGINT.
"""

import argparse
import json
import signal
import socket
import struct
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
    b"]]> =cmd|' /C calc'!A0 a=b|c\\d "  # CDATA end, a spreadsheet formula, CEF/LEEF separators
    b"bad-utf8:\xff\xfe\xc3\x28\xe2\x82 "
    b"\r\n"
)

STOP = threading.Event()

# The ntp fixture's monitor list (ntp-monlist's truth): address, port, mode, version, count,
# seconds since the last packet. Data inside answers only: nothing is ever sent to these.
MONLIST = [
    ("198.18.0.2", 123, 3, 4, 1204, 12),
    ("198.18.0.10", 123, 4, 4, 77, 64),
    ("198.18.1.2", 40123, 3, 3, 9, 300),
    ("198.18.2.10", 123, 3, 4, 3120, 2),
    ("198.19.7.7", 5353, 6, 2, 1, 4000),
    ("198.19.7.8", 123, 7, 2, 15, 3600),
    ("198.18.0.13", 123, 3, 4, 8, 30),
]
NTP_VARS = b'version="ntpd 4.2.6p5@1.2349-o", processor="x86_64", system="Linux/5.10.0", leap=0, stratum=2, precision=-23, refid=198.18.0.1'
NTP_UNIX = 2208988800


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


# ------------------------------------------------------------------------------ protocol fixtures
# What each fixture announces; tests/lab/ground-truth.json repeats these (per port, "announces").
FIXTURES = {
    "mongodb": ("MongoDB", "7.0.5"),
    "elasticsearch": ("Elasticsearch", "8.11.1"),
    "docker": ("Docker", "24.0.7"),
    "kubernetes": ("Kubernetes", "1.28.4"),
    "mssql": ("Microsoft SQL Server 2019", "15.0.2000"),
    "oracle": ("Oracle TNS listener", "19"),
    "amqp": ("RabbitMQ", "3.12.12"),
    "jdwp": ("Java Debug Wire Protocol", "17.0"),
    "rtsp": ("LIVE555 Streaming Media", "2023.01.19"),
    "nfs": ("NFS", "3-4"),
}


def recv_exact(conn, n, limit=65536):
    """Read exactly n bytes (n bounded by limit), or None if the peer stops first."""
    if n > limit:
        return None
    buf = b""
    while len(buf) < n:
        data = conn.recv(n - len(buf))
        if not data:
            return None
        buf += data
    return buf


def recv_http(conn):
    """Read one HTTP/RTSP request head (bounded); return its first line's words."""
    buf = b""
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
        data = conn.recv(4096)
        if not data or len(buf) > 65536:
            return None
        buf += data
    return buf.split(b"\r\n", 1)[0].split(b" ")


def http_answer(status, headers, body):
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def serve_mongodb(conn, host):
    # MongoDB wire protocol: 16-byte header (length, requestID, responseTo, opCode), OP_MSG = 2013.
    head = recv_exact(conn, 16)
    if head is None:
        return
    length, req_id, _to, opcode = struct.unpack("<iiii", head)
    body = recv_exact(conn, length - 16) if 16 < length <= 65536 else None
    if body is None or opcode != 2013 or b"buildInfo" not in body and b"buildinfo" not in body:
        return

    def bson_str(k, v):
        return b"\x02" + k.encode() + b"\x00" + struct.pack("<i", len(v) + 1) + v.encode() + b"\x00"

    elems = (bson_str("version", FIXTURES["mongodb"][1]) + bson_str("gitVersion", "0" * 40)
             + b"\x04versionArray\x00" + bson_array_ints([7, 0, 5, 0])
             + b"\x01ok\x00" + struct.pack("<d", 1.0))
    doc = struct.pack("<i", len(elems) + 5) + elems + b"\x00"
    msg = struct.pack("<I", 0) + b"\x00" + doc
    conn.sendall(struct.pack("<iiii", 16 + len(msg), 1, req_id, 2013) + msg)


def bson_array_ints(values):
    elems = b"".join(b"\x10" + str(i).encode() + b"\x00" + struct.pack("<i", v) for i, v in enumerate(values))
    return struct.pack("<i", len(elems) + 5) + elems + b"\x00"


ES_ROOT = """{
  "name" : "%s",
  "cluster_name" : "rustmap-lab",
  "cluster_uuid" : "rUsTmApLaBcLuStErUuId0",
  "version" : {
    "number" : "%s",
    "build_flavor" : "default",
    "build_type" : "deb",
    "lucene_version" : "9.8.0",
    "minimum_wire_compatibility_version" : "7.17.0",
    "minimum_index_compatibility_version" : "7.0.0"
  },
  "tagline" : "You Know, for Search"
}
"""


def serve_elasticsearch(conn, host):
    req = recv_http(conn)
    if not req or len(req) < 2:
        return
    headers = [("X-elastic-product", "Elasticsearch"), ("content-type", "application/json")]
    if req[1] == b"/":
        body = (ES_ROOT % (host.split(".")[0], FIXTURES["elasticsearch"][1])).encode()
        conn.sendall(http_answer("200 OK", headers, body))
    else:
        conn.sendall(http_answer("404 Not Found", headers, b'{"error":"no handler found","status":404}'))


# What the Docker fixture lists at /containers/json (the Engine API's fields, a subset).
DOCKER_CONTAINERS = [
    {"Id": "8dfafdbc3a40" + "0" * 52, "Names": ["/lab-web"], "Image": "nginx:1.25", "ImageID": "sha256:" + "1" * 64,
     "Command": "nginx -g 'daemon off;'", "Created": 1704067200, "State": "running", "Status": "Up 3 hours",
     "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}]},
    {"Id": "3c2b1a09f8e7" + "0" * 52, "Names": ["/lab-db"], "Image": "postgres:16", "ImageID": "sha256:" + "2" * 64,
     "Command": "docker-entrypoint.sh postgres", "Created": 1704067100, "State": "exited",
     "Status": "Exited (0) 2 hours ago", "Ports": []},
]


def serve_docker(conn, host):
    req = recv_http(conn)
    if not req or len(req) < 2:
        return
    v = FIXTURES["docker"][1]
    headers = [("Api-Version", "1.43"), ("Content-Type", "application/json"), ("Docker-Experimental", "false"),
               ("Ostype", "linux"), ("Server", f"Docker/{v} (linux)")]
    if req[1] in (b"/version", b"/v1.43/version"):
        body = ('{"Platform":{"Name":"Docker Engine - Community"},"Version":"%s","ApiVersion":"1.43",'
                '"MinAPIVersion":"1.12","GitCommit":"311b9ff","GoVersion":"go1.20.10","Os":"linux",'
                '"Arch":"amd64","KernelVersion":"6.1.0"}\n' % v).encode()
        conn.sendall(http_answer("200 OK", headers, body))
    elif req[1].split(b"?")[0] in (b"/containers/json", b"/v1.43/containers/json"):
        # docker-containers' lab test compares its output with DOCKER_CONTAINERS
        conn.sendall(http_answer("200 OK", headers, json.dumps(DOCKER_CONTAINERS).encode()))
    elif req[1] == b"/_ping":
        conn.sendall(http_answer("200 OK", headers[:-2] + [("Content-Type", "text/plain")], b"OK"))
    else:
        conn.sendall(http_answer("404 Not Found", headers, b'{"message":"page not found"}\n'))


def serve_kubernetes(conn, host):
    # kubectl proxy in front of an API server: plain HTTP, the API server's answers.
    req = recv_http(conn)
    if not req or len(req) < 2:
        return
    headers = [("Audit-Id", "6f1c1e9e-0000-4000-8000-000000000001"), ("Cache-Control", "no-cache, private"),
               ("Content-Type", "application/json"),
               ("X-Kubernetes-Pf-Flowschema-Uid", "8f3a7c52-0000-4000-8000-000000000002"),
               ("X-Kubernetes-Pf-Prioritylevel-Uid", "2c6d8e11-0000-4000-8000-000000000003")]
    major, minor, _patch = FIXTURES["kubernetes"][1].split(".")
    if req[1] == b"/version":
        body = ('{\n  "major": "%s",\n  "minor": "%s",\n  "gitVersion": "v%s",\n  "gitCommit": "bae2c62678db2b5053817bc97181fcc2e8388103",\n'
                '  "gitTreeState": "clean",\n  "buildDate": "2023-11-15T16:48:54Z",\n  "goVersion": "go1.20.11",\n'
                '  "compiler": "gc",\n  "platform": "linux/amd64"\n}' % (major, minor, FIXTURES["kubernetes"][1])).encode()
        conn.sendall(http_answer("200 OK", headers, body))
    elif req[1] == b"/":
        paths = ["/api", "/api/v1", "/apis", "/apis/", "/healthz", "/livez", "/metrics", "/openapi/v2", "/readyz", "/version"]
        body = ('{\n  "paths": [\n' + ",\n".join(f'    "{p}"' for p in paths) + "\n  ]\n}").encode()
        conn.sendall(http_answer("200 OK", headers, body))
    else:
        conn.sendall(http_answer("404 Not Found", headers, b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}'))


def serve_mssql(conn, host):
    # MS-TDS: 8-byte header (type, status, length, spid, packet id, window); PRELOGIN is type 0x12.
    head = recv_exact(conn, 8)
    if head is None or head[0] != 0x12:
        return
    length = struct.unpack(">H", head[2:4])[0]
    if length < 8 or recv_exact(conn, length - 8) is None:
        return
    major, minor, build = (int(x) for x in FIXTURES["mssql"][1].split("."))
    opts = [(0, struct.pack(">BBHH", major, minor, build, 5)), (1, b"\x02"), (2, b"\x00"), (3, b""), (4, b"\x00")]
    off = len(opts) * 5 + 1
    table, data = b"", b""
    for token, value in opts:
        table += struct.pack(">BHH", token, off + len(data), len(value))
        data += value
    payload = table + b"\xff" + data
    conn.sendall(struct.pack(">BBHHBB", 0x04, 0x01, 8 + len(payload), 0, 1, 0) + payload)


def serve_oracle(conn, host):
    # TNS: 8-byte header (length, checksum, type, reserved, header checksum); CONNECT is type 1.
    # A listener with remote administration off refuses commands (REFUSE, type 4) with its VSNNUM.
    head = recv_exact(conn, 8)
    if head is None or head[4] != 1:
        return
    length = struct.unpack(">H", head[:2])[0]
    if length < 8 or recv_exact(conn, length - 8) is None:
        return
    vsnnum = int(FIXTURES["oracle"][1]) << 24
    data = ("(DESCRIPTION=(TMP=)(VSNNUM=%d)(ERR=1189)(ERROR_STACK=(ERROR=(CODE=1189)(EMFI=4))))" % vsnnum).encode()
    body = b"\x22\x00" + struct.pack(">H", len(data)) + data
    conn.sendall(struct.pack(">HHBBH", 8 + len(body), 0, 4, 0, 0) + body)


def serve_amqp(conn, host):
    head = recv_exact(conn, 8)
    if head is None or not head.startswith(b"AMQP"):
        return
    if head != b"AMQP\x00\x00\x09\x01":
        conn.sendall(b"AMQP\x00\x00\x09\x01")  # AMQP 0-9-1 §4.2.2: say which version we speak, close
        return

    def longstr(v):
        return struct.pack(">I", len(v)) + v.encode()

    product, version = FIXTURES["amqp"]
    table = b"".join(bytes([len(k)]) + k.encode() + b"S" + longstr(v) for k, v in
                     (("cluster_name", "rabbit@" + host.split(".")[0]), ("platform", "Erlang/OTP 25.3"),
                      ("product", product), ("version", version)))
    method = struct.pack(">HHBB", 10, 10, 0, 9) + struct.pack(">I", len(table)) + table
    method += longstr("AMQPLAIN PLAIN") + longstr("en_US")
    conn.sendall(struct.pack(">BHI", 1, 0, len(method)) + method + b"\xce")
    recv_exact(conn, 1)  # wait for the client's Start-Ok (or its going away)


def serve_jdwp(conn, host):
    if recv_exact(conn, 14) != b"JDWP-Handshake":
        return
    conn.sendall(b"JDWP-Handshake")
    conn.settimeout(10.0)
    for _ in range(16):
        head = recv_exact(conn, 11)
        if head is None:
            return
        length, pid, _flags, cmdset, cmd = struct.unpack(">IIBBB", head)
        if length < 11 or recv_exact(conn, length - 11) is None:
            return
        if (cmdset, cmd) == (1, 1):  # VirtualMachine.Version
            jvm, vm, jdwp = "17.0.9", "OpenJDK 64-Bit Server VM", FIXTURES["jdwp"][1]

            def jstr(v):
                return struct.pack(">I", len(v)) + v.encode()

            desc = (f"Java Debug Wire Protocol (Reference Implementation) version {jdwp}\n"
                    f"JVM Debug Interface version {jdwp}\nJVM version {jvm} ({vm}, mixed mode, sharing)")
            data = jstr(desc) + struct.pack(">ii", 17, 0) + jstr(jvm) + jstr(vm)
            conn.sendall(struct.pack(">IIBH", 11 + len(data), pid, 0x80, 0) + data)
        else:
            conn.sendall(struct.pack(">IIBH", 11, pid, 0x80, 99))  # NOT_IMPLEMENTED


def serve_rtsp(conn, host):
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        if not data or len(head) > 65536:
            return
        head += data
    lines = head.split(b"\r\n")
    req = lines[0].split(b" ")
    if len(req) < 3 or not req[2].startswith(b"RTSP/1.0"):
        return
    # CSeq is echoed in the response (RFC 2326 §12.17)
    cseq = next((ln.split(b":", 1)[1].strip() for ln in lines if ln.lower().startswith(b"cseq:")), b"0")
    server = "LIVE555 Streaming Media v" + FIXTURES["rtsp"][1]
    if req[0] == b"OPTIONS":
        conn.sendall(b"RTSP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\nDate: Mon, Jan 01 2024 00:00:00 GMT\r\n"
                     b"Public: OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER\r\n"
                     b"Server: " + server.encode() + b"\r\n\r\n")
    else:
        conn.sendall(b"RTSP/1.0 404 Stream Not Found\r\nCSeq: " + cseq + b"\r\nServer: " + server.encode() + b"\r\n\r\n")


def serve_nfs(conn, host):
    # ONC RPC over TCP (RFC 5531 §11): record mark, then the call; NFS is program 100003.
    low, high = (int(x) for x in FIXTURES["nfs"][1].split("-"))
    for _ in range(16):
        mark = recv_exact(conn, 4)
        if mark is None:
            return
        size = struct.unpack(">I", mark)[0] & 0x7FFFFFFF
        call = recv_exact(conn, size)
        if call is None or size < 40:
            return
        xid, mtype, rpcvers, prog, vers, proc = struct.unpack(">6I", call[:24])
        if mtype != 0:
            return
        reply = struct.pack(">IIIII", xid, 1, 0, 0, 0)  # REPLY, MSG_ACCEPTED, AUTH_NONE verifier
        if rpcvers != 2:
            reply = struct.pack(">IIIIII", xid, 1, 1, 0, 2, 2)  # MSG_DENIED, RPC_MISMATCH 2-2
        elif prog != 100003:
            reply += struct.pack(">I", 1)  # PROG_UNAVAIL
        elif not low <= vers <= high:
            reply += struct.pack(">III", 2, low, high)  # PROG_MISMATCH
        elif proc != 0:
            reply += struct.pack(">I", 3)  # PROC_UNAVAIL
        else:
            reply += struct.pack(">I", 0)  # SUCCESS (NULL returns nothing)
        conn.sendall(struct.pack(">I", 0x80000000 | len(reply)) + reply)


FIXTURE_SERVERS = {
    "mongodb": serve_mongodb, "elasticsearch": serve_elasticsearch, "docker": serve_docker,
    "kubernetes": serve_kubernetes, "mssql": serve_mssql, "oracle": serve_oracle, "amqp": serve_amqp,
    "jdwp": serve_jdwp, "rtsp": serve_rtsp, "nfs": serve_nfs,
}


def ntp_answer(req):
    """The fixture's answers to one NTP datagram: a list of datagrams (possibly empty)."""
    if len(req) < 4:
        return []
    mode = req[0] & 7
    if mode == 3 and len(req) >= 48:
        now = time.time() + NTP_UNIX
        secs, frac = int(now), int((now % 1) * 2**32)
        # LI 0, VN as asked, mode 4; stratum 2, poll 6, precision -23; refid 198.18.0.1
        vn = (req[0] >> 3) & 7
        head = struct.pack(">BBbbII4s", (vn << 3) | 4, 2, 6, -23, 0x100, 0x200, bytes([198, 18, 0, 1]))
        return [head + struct.pack(">II", secs - 60, 0) + req[40:48] + struct.pack(">IIII", secs, frac, secs, frac)]
    if mode == 6 and len(req) >= 12 and req[1] & 0x1F == 2:
        seq = req[2:4]
        data = NTP_VARS + b"\x00" * ((4 - len(NTP_VARS) % 4) % 4)
        return [bytes([0x16, 0x82]) + seq + struct.pack(">HHHH", 0x0615, 0, 0, len(NTP_VARS)) + data]
    if mode == 7 and req[3] == 42 and req[2] in (2, 3):
        items = []
        for addr, port, m, v, count, ago in MONLIST:
            # monlist_1 entry (72 bytes): avgint, lsint, restr, count, addr, daddr, flags,
            # port, mode, version, then the IPv6 fields (v6_flag, unused, addr6, daddr6) zero
            items.append(struct.pack(">IIII", ago, ago, 0, count) + socket.inet_aton(addr)
                         + socket.inet_aton("198.18.0.12") + struct.pack(">IHBB", 0, port, m, v) + b"\x00" * 40)
        out = []
        for i in range(0, len(items), 6):
            chunk = items[i:i + 6]
            more = 0x40 if i + 6 < len(items) else 0
            head = bytes([0x80 | more | (req[0] & 0x38) | 7, i // 6, req[2], 42])
            out.append(head + struct.pack(">HH", len(chunk), 72) + b"".join(chunk))
        return out
    return []


def udp_listener(kind, port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.settimeout(0.5)
    log(f"{kind} listening on [::]:{port}/udp (dual-stack)")

    def loop():
        while not STOP.is_set():
            try:
                req, peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                break
            for answer in ntp_answer(req):
                try:
                    sock.sendto(answer, peer)
                except OSError:
                    pass
        sock.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


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
        elif kind in FIXTURE_SERVERS:
            conn.settimeout(10.0)
            FIXTURE_SERVERS[kind](conn, host)
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

    kinds = {"smtp", "pop3", "imap", "irc", "http", "tarpit", "hostile", "ntp"} | set(FIXTURE_SERVERS)
    specs = []
    for item in args.listen:
        kind, _, port = item.partition(":")
        if kind not in kinds or not port.isdigit() or not 0 < int(port) < 65536:
            ap.error(f"bad listener {item!r}; want KIND:PORT with KIND in {sorted(kinds)}")
        specs.append((kind, int(port)))

    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    threads = [udp_listener(kind, port) if kind == "ntp" else listener(kind, port, args.host) for kind, port in specs]
    while not STOP.is_set():
        STOP.wait(1.0)
    for t in threads:
        t.join(timeout=2.0)
    log("stopped")


if __name__ == "__main__":
    main()
