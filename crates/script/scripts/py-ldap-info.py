# py-ldap-info: summarises an LDAP server from its root DSE, in Python.
# Written for RustMap from RFC 4511 (LDAPv3, section 4.5: Search), RFC 4512 (section 5.1: the
# root DSE) and ITU-T X.690 (BER); not derived from any nmap script.
import rustmap

description = """
Reads the root DSE with an anonymous base search (no bind) and summarises the server: its
vendor and version where it names them, the directory product guessed from the root DSE's
object classes and attributes (OpenLDAP, Active Directory, 389 Directory Server, ...), the
naming contexts, the LDAP versions and SASL mechanisms it supports, and how many controls,
extensions and features it announces. BER is decoded here, bounded: at most 1 MiB read,
lengths checked against the bytes received.

Script arguments: py-ldap-info.timeout (seconds, default 8).
"""
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = ["discovery", "safe"]


def portrule(host, port):
    return port.get("number") in (389, 3268) or port.get("service") in ("ldap", "globalcatLDAP")


MAX_MESSAGE = 1024 * 1024
ATTRS = ["namingContexts", "supportedLDAPVersion", "supportedSASLMechanisms", "supportedControl",
         "supportedExtension", "supportedFeatures", "vendorName", "vendorVersion", "objectClass",
         "defaultNamingContext", "dnsHostName", "rootDomainNamingContext", "structuralObjectClass",
         "configContext", "nsslapd-versionstring"]


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def integer(tag, n):
    return tlv(tag, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big"))


def octets(s):
    return tlv(0x04, s.encode() if isinstance(s, str) else s)


def decode(data, pos):
    """One TLV at pos: (tag, body, next) or None when the bytes are not there or malformed."""
    if pos + 2 > len(data):
        return None
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n >= 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > len(data):
            return None
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        return None
    return tag, data[pos:pos + n], pos + n


def children(body, limit=1000):
    out, pos = [], 0
    while pos < len(body) and len(out) < limit:
        d = decode(body, pos)
        if d is None:
            return None
        out.append((d[0], d[1]))
        pos = d[2]
    return out


def text(raw):
    return "".join(c if " " <= c <= "~" else "?" for c in raw.decode("utf-8", "replace"))[:256]


def search_rootdse(s):
    attrs = b"".join(octets(a) for a in ATTRS)
    req = tlv(0x63, octets("") + integer(0x0A, 0) + integer(0x0A, 0) + integer(0x02, 1) + integer(0x02, 10)
              + tlv(0x01, b"\x00") + tlv(0x87, b"objectClass") + tlv(0x30, attrs))
    s.send(tlv(0x30, integer(0x02, 1) + req))
    buf, entry = b"", None
    for _ in range(64):
        d = decode(buf, 0)
        while d is None:
            if len(buf) > MAX_MESSAGE:
                return entry
            chunk = s.recv(65536)
            if not chunk:
                return entry
            buf += chunk
            d = decode(buf, 0)
        tag, body, nxt = d
        buf = buf[nxt:]
        parts = children(body, 3) if tag == 0x30 else None
        if not parts or len(parts) < 2:
            return entry
        op_tag, op = parts[1]
        if op_tag == 0x64 and entry is None:
            fields = children(op, 2)
            if not fields or len(fields) != 2:
                return None
            entry = {}
            for _, attr in children(fields[1][1]) or []:
                pair = children(attr, 2)
                if pair and len(pair) == 2:
                    values = [text(v) for _, v in (children(pair[1][1], 200) or [])]
                    entry[text(pair[0][1])] = values
        elif op_tag == 0x65:
            return entry
    return entry


def product(e):
    classes = {c.lower() for c in e.get("objectClass", []) + e.get("structuralObjectClass", [])}
    if "openldaprootdse" in classes:
        return "OpenLDAP"
    if "rootDomainNamingContext" in e or "dnsHostName" in e:
        return "Microsoft Active Directory"
    if "nsslapd-versionstring" in e or any("389" in v or "Fedora" in v for v in e.get("vendorName", [])):
        return "389 Directory Server"
    vendor = e.get("vendorName", [None])[0]
    return vendor or "unknown"


def action(host, port):
    timeout = float(rustmap.args("py-ldap-info.timeout", "8"))
    try:
        with rustmap.Socket(timeout) as s:
            s.connect(host, port)
            entry = search_rootdse(s)
    except rustmap.SocketError:
        return None
    if not entry:
        return None
    out = {"product": product(entry)}
    for key, name in (("vendorName", "vendor"), ("vendorVersion", "vendor version")):
        if entry.get(key):
            out[name] = entry[key][0]
    if entry.get("namingContexts"):
        out["naming contexts"] = ", ".join(entry["namingContexts"])
    if entry.get("supportedLDAPVersion"):
        out["LDAP versions"] = ", ".join(entry["supportedLDAPVersion"])
    if entry.get("supportedSASLMechanisms"):
        out["SASL mechanisms"] = ", ".join(entry["supportedSASLMechanisms"])
    for key, name in (("supportedControl", "controls"), ("supportedExtension", "extensions"),
                      ("supportedFeatures", "features")):
        out[name] = str(len(entry.get(key, [])))
    return out
