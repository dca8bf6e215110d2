# py-ssh-version: reports an SSH server's identification string, parsed.
# Written for RustMap from RFC 4253 (section 4.2, protocol version exchange); not derived from
# any nmap script.
import rustmap

description = """
Connects to an SSH server, sends RustMap's own identification line and reads the server's
(RFC 4253 section 4.2: "SSH-protoversion-softwareversion SP comments"), skipping the text
lines a server may send before it, and reports the protocol version, the software and
version, and the comments (distributions put their package revision there). SSH protocol
1.99 means the server speaks both 1 and 2. Nothing else is exchanged.

Script arguments: none.
"""
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = ["discovery", "safe"]


def portrule(host, port):
    return port.get("number") == 22 or port.get("service") == "ssh"


MAX_LINES = 20
MAX_LINE = 255  # RFC 4253: the identification line is at most 255 characters


def printable(raw):
    text = "".join(c if " " <= c <= "~" else "?" for c in raw.decode("latin-1"))
    return text[:MAX_LINE]


def action(host, port):
    buf = b""
    try:
        with rustmap.Socket(8.0) as s:
            s.connect(host, port)
            s.send("SSH-2.0-RustMap_script\r\n")
            for _ in range(MAX_LINES):
                while b"\n" not in buf and len(buf) < 4096:
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    buf += chunk
                line, _, buf = buf.partition(b"\n")
                line = line.rstrip(b"\r")
                if line.startswith(b"SSH-"):
                    break
                if not buf and not line:
                    return None
            else:
                return None
    except rustmap.SocketError:
        return None
    if not line.startswith(b"SSH-"):
        return None
    ident = printable(line)
    head, _, comments = ident.partition(" ")
    parts = head.split("-", 2)
    if len(parts) < 3:
        return None
    out = {"protocol": parts[1], "software": parts[2]}
    if comments:
        out["comments"] = comments
    if parts[1] == "1.99":
        out["note"] = "speaks SSH protocols 1 and 2"
    out["identification"] = ident
    return out
