# py-http-headers-full: reports every response header of a web server's page, in order.
# Written for RustMap from RFC 9112 (HTTP/1.1 message syntax); not derived from nmap's
# http-headers script.
import rustmap

description = """
Sends HEAD (or GET, with py-http-headers-full.method=GET) for the root page (or the path in
py-http-headers-full.url) and reports the status line and every response header exactly as
the server sent them, in order, duplicates included (what a dictionary of headers would
merge). Lines are cut at 512 characters, the list at 100 headers and the head at 64 KiB.

Script arguments: py-http-headers-full.url (default "/"), py-http-headers-full.method
(HEAD or GET, default HEAD).
"""
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = ["discovery", "safe"]

portrule = rustmap.is_http

MAX_HEAD = 64 * 1024
MAX_LINE = 512
MAX_HEADERS = 100


def printable(raw):
    text = "".join(c if " " <= c <= "~" else "?" for c in raw.decode("latin-1"))
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "..."


def action(host, port):
    path = str(rustmap.args("url", "/"))
    method = "GET" if str(rustmap.args("method", "HEAD")).upper() == "GET" else "HEAD"
    tls = port.get("service") == "https" or port.get("version", {}).get("service_tunnel") == "ssl"
    name = host.get("targetname") or host.get("ip")
    data = b""
    try:
        with rustmap.Socket(10.0) as s:
            s.connect(host, port, ssl=tls)
            s.send(f"{method} {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: RustMap\r\nConnection: close\r\n\r\n")
            while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
                chunk = s.recv()
                if not chunk:
                    break
                data += chunk
    except rustmap.SocketError:
        if not data:
            return None
    head = data[:MAX_HEAD].split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/"):
        return None
    headers = [printable(line) for line in lines[1 : MAX_HEADERS + 1] if line]
    out = {"status": printable(lines[0]), "headers": headers}
    if len(lines) - 1 > MAX_HEADERS:
        out["cut"] = f"{len(lines) - 1 - MAX_HEADERS} more headers not shown"
    return out
