#!/usr/bin/env python3
"""Writes the seeds of the `script_replies` fuzz target: one file per built-in Lua script (some
have two), each a plausible run of replies as the protocol's documentation describes them.

    python3 fuzz/seeds/script_replies.py      # rewrites fuzz/seeds/script_replies/

Format (fuzz_targets/script_replies.rs): the script's name, a newline, the port
(`number/protocol/service[/tunnel]`), a newline, then the replies separated by SEP. The Lua VM
is C code the fuzzer does not instrument, so these seeds are what its mutations start from:
each should carry a script past its first checks.
"""
import os
import struct

SEP = b"\x00<>\x00"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "script_replies")


def ber(tag, body):
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def ber_int(v):
    return ber(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def ber_oid(text):
    parts = [int(p) for p in text.split(".")]
    out = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.insert(0, 0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(chunk)
    return ber(0x06, out)


def seq(*items):
    return ber(0x30, b"".join(items))


def snmp_response(varbinds, reqid=1):
    vbs = seq(*(seq(ber_oid(o), v) for o, v in varbinds))
    pdu = ber(0xA2, ber_int(reqid) + ber_int(0) + ber_int(0) + vbs)
    return seq(ber_int(1), ber(0x04, b"public"), pdu)


def http(status="200 OK", headers=(), body=b""):
    head = f"HTTP/1.1 {status}\r\n".encode()
    for k, v in list(headers) + [("Content-Length", str(len(body)))]:
        head += f"{k}: {v}\r\n".encode()
    return head + b"\r\n" + body


def dns_reply(qname, qtype, answers, qid=0x1234, flags=0x8580, additional=b"", arcount=0):
    def name(n):
        return b"".join(bytes([len(p)]) + p.encode() for p in n.split(".") if p) + b"\x00"

    q = name(qname) + struct.pack(">HH", qtype, 1)
    rrs = b""
    for rtype, rdata in answers:
        rrs += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(rdata)) + rdata
    return struct.pack(">HHHHHH", qid, flags, 1, len(answers), 0, arcount) + q + rrs + additional


def nbss(frame):
    return struct.pack(">I", len(frame)) + frame


def smb2_header(command, status=0, session=0):
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, status, command, 1, 1, 0, 0, 0xFEFF, 0, session)
            + b"\x00" * 16)


def ntlm_challenge():
    target = "LAB".encode("utf-16-le")
    info = b""
    for av, text in [(2, "LAB"), (1, "H14"), (4, "lab.test"), (3, "h14.lab.test"), (5, "lab.test")]:
        v = text.encode("utf-16-le")
        info += struct.pack("<HH", av, len(v)) + v
    info += struct.pack("<HHQ", 7, 8, 133_000_000_000_000_000) + struct.pack("<HH", 0, 0)
    off = 56
    msg = (b"NTLMSSP\x00" + struct.pack("<I", 2) + struct.pack("<HHI", len(target), len(target), off)
           + struct.pack("<I", 0xE2898215) + b"\x01\x23\x45\x67\x89\xab\xcd\xef" + b"\x00" * 8
           + struct.pack("<HHI", len(info), len(info), off + len(target)) + bytes([10, 0, 0x63, 0x45, 0, 0, 0, 15]))
    return msg + target + info


def smb2_negotiate():
    body = struct.pack("<HHHH16sIIIIQQHHI", 65, 1, 0x0311, 2, b"G" * 16, 0x7F, 65536, 65536, 65536,
                       133_000_000_000_000_000, 0, 128, 0, 0)
    return nbss(smb2_header(0) + body)


def smb2_session_setup():
    blob = ntlm_challenge()
    body = struct.pack("<HHHH", 9, 0, 72, len(blob)) + blob
    return nbss(smb2_header(1, status=0xC0000016, session=0x1000) + body)


def ldap_entry(msgid, dn, attrs):
    al = seq(*(seq(ber(0x04, k.encode()), ber(0x31, b"".join(ber(0x04, v.encode()) for v in vs)))
              for k, vs in attrs))
    return seq(ber_int(msgid), ber(0x64, ber(0x04, dn.encode()) + al))


def ldap_done(msgid):
    return seq(ber_int(msgid), ber(0x65, ber(0x0A, b"\x00") + ber(0x04, b"") + ber(0x04, b"")))


def mqtt_connack(code=0):
    return bytes([0x20, 2, 0, code])


def mysql_handshake():
    body = (b"\x0a" + b"10.11.6-MariaDB-0+deb12u1\x00" + struct.pack("<I", 42) + b"abcdefgh\x00"
            + struct.pack("<HBHH", 0xF7FE, 8, 2, 0x81BF) + bytes([21]) + b"\x00" * 10 + b"ijklmnopqrst\x00"
            + b"mysql_native_password\x00")
    return struct.pack("<I", len(body))[:3] + b"\x00" + body


def ntp_reply():
    return bytes([0x24, 2, 6, 0xE9]) + struct.pack(">II", 0, 0x1F) + b"\xc6\x12\x00\x01" + b"\xe9\x00\x00\x00" * 8


def nbstat_reply():
    names = [b"H14            \x00", b"LAB            \x00", b"H14            \x20"]
    rdata = bytes([len(names)]) + b"".join(n + b"\x04\x00" for n in names) + b"\x02\x42\xc6\x12\x00\x0e" + b"\x00" * 40
    q = b"\x20" + b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" + b"\x00"
    return struct.pack(">HHHHHH", 0x4242, 0x8400, 0, 1, 0, 0) + q + struct.pack(">HHIH", 0x21, 1, 0, len(rdata)) + rdata


def rdp_confirm(protocol=2):
    neg = struct.pack("<BBHI", 2, 0, 8, protocol)
    x224 = bytes([6 + len(neg), 0xD0, 0, 0, 0x12, 0x34, 0]) + neg
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


def bson_doc(pairs):
    body = b""
    for k, v in pairs:
        if isinstance(v, str):
            b = v.encode() + b"\x00"
            body += b"\x02" + k.encode() + b"\x00" + struct.pack("<i", len(b)) + b
        else:
            body += b"\x10" + k.encode() + b"\x00" + struct.pack("<i", v)
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def mongo_reply(doc):
    body = struct.pack("<IB", 0, 0) + doc
    return struct.pack("<iiii", 16 + len(body), 2, 1, 2013) + body


def pptp_reply():
    body = struct.pack(">HHIHH", 156, 1, 0x1A2B3C4D, 2, 0) + struct.pack(">HBBIIHH", 0x0100, 1, 0, 1, 1, 1, 1)
    return body + b"h14".ljust(64, b"\x00") + b"linux".ljust(64, b"\x00")


SEEDS = {
    "banner": ("22/tcp/ssh", [b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"]),
    "http-title": ("80/tcp/http", [http(headers=[("Content-Type", "text/html")], body=b"<html><head><title>Lab &amp; page</title></head></html>")]),
    "http-title/redirect": ("80/tcp/http", [http("301 Moved Permanently", [("Location", "/landing")]), http(body=b"<title>x</title>")]),
    "http-server-header": ("80/tcp/http", [http(headers=[("Server", "nginx/1.22.1")])]),
    "http-methods": ("80/tcp/http", [http(headers=[("Allow", "GET, HEAD, POST, OPTIONS, TRACE")])] * 3),
    "http-robots": ("80/tcp/http", [http(body=b"User-agent: *\nDisallow: /admin/\nDisallow: /private\n")]),
    "http-security-headers": ("443/tcp/https/ssl", [http(headers=[("Strict-Transport-Security", "max-age=31536000"), ("X-Frame-Options", "DENY"), ("Content-Security-Policy", "default-src 'self'")])]),
    "http-favicon-hash": ("80/tcp/http", [http(headers=[("Content-Type", "image/x-icon")], body=b"\x00\x00\x01\x00\x01\x00" + b"\x10" * 64)]),
    "http-open-redirect": ("80/tcp/http", [http(), http("302 Found", [("Location", "http://example.com/")])] * 3),
    "http-cors": ("80/tcp/http", [http(headers=[("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, POST")])] * 2),
    "docker-version": ("2375/tcp/docker", [http(headers=[("Content-Type", "application/json")], body=b'{"Version":"20.10.24","ApiVersion":"1.41","Os":"linux","Arch":"amd64","KernelVersion":"6.1.0","GoVersion":"go1.19"}')]),
    "docker-containers": ("2375/tcp/docker", [http(headers=[("Content-Type", "application/json")], body=b'[{"Id":"abc","Names":["/web"],"Image":"nginx","State":"running","Status":"Up 2 hours","Ports":[{"PrivatePort":80,"Type":"tcp"}]}]')]),
    "smtp-commands": ("25/tcp/smtp", [b"220 h14.lab.test ESMTP Postfix\r\n", b"250-h14.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n", b"221 2.0.0 Bye\r\n"]),
    "pop3-capabilities": ("110/tcp/pop3", [b"+OK Dovecot ready.\r\n", b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"]),
    "imap-capabilities": ("143/tcp/imap", [b"* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] Dovecot ready.\r\n", b"* CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE IDLE STARTTLS AUTH=PLAIN\r\na001 OK done\r\n"]),
    "imap-ntlm-info": ("143/tcp/imap", [b"* OK Dovecot ready.\r\n", b"+ " + __import__("base64").b64encode(ntlm_challenge()) + b"\r\n"]),
    "redis-info": ("6379/tcp/redis", [b"$120\r\n# Server\r\nredis_version:7.0.15\r\nos:Linux 6.1.0 x86_64\r\narch_bits:64\r\nprocess_id:12\r\nuptime_in_seconds:3600\r\nrole:master\r\n\r\n"]),
    "memcached-info": ("11211/tcp/memcached", [b"STAT pid 12\r\nSTAT uptime 3600\r\nSTAT version 1.6.18\r\nSTAT curr_connections 2\r\nEND\r\n"]),
    "postgresql-info": ("5432/tcp/postgresql", [b"E\x00\x00\x00\x60SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry for host\x00Fauth.c\x00L543\x00RClientAuthentication\x00\x00"]),
    "ftp-anon": ("21/tcp/ftp", [b"220 (vsFTPd 3.0.3)\r\n", b"331 Please specify the password.\r\n", b"230 Login successful.\r\n", b"227 Entering Passive Mode (127,0,0,1,195,80).\r\n", b"150 Here comes the directory listing.\r\n", b"-rw-r--r--    1 0        0              12 Jan 01 00:00 readme.txt\r\n", b"226 Directory send OK.\r\n"]),
    "mqtt-version": ("1883/tcp/mqtt", [mqtt_connack(0), mqtt_connack(0), mqtt_connack(0)]),
    "mqtt-subscribe": ("1883/tcp/mqtt", [mqtt_connack(0), bytes([0x90, 3, 0, 1, 0]), bytes([0x31, 14, 0, 5]) + b"a/b/c" + b"hello"]),
    "rtsp-methods": ("554/tcp/rtsp", [b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\nServer: GStreamer RTSP server\r\n\r\n"]),
    "mongodb-info": ("27017/tcp/mongodb", [mongo_reply(bson_doc([("ismaster", 1), ("maxWireVersion", 17), ("version", "6.0.4")])), mongo_reply(bson_doc([("version", "6.0.4"), ("gitVersion", "44ff"), ("ok", 1)]))]),
    "pptp-version": ("1723/tcp/pptp", [pptp_reply()]),
    "snmp-sysdescr": ("161/udp/snmp", [snmp_response([("1.3.6.1.2.1.1.1.0", ber(0x04, b"Linux h12 6.1.0 x86_64")), ("1.3.6.1.2.1.1.3.0", ber(0x43, (360000).to_bytes(3, "big")))])]),
    "snmp-info": ("161/udp/snmp", [b"0\x81\x9a\x02\x01\x03" + seq(ber_int(1), ber(0x04, b"\x00\x00\x00"), ber(0x04, b"\x04"), ber_int(3)) + ber(0x04, seq(ber(0x04, b"\x80\x00\x1f\x88\x80\xab\xcd"), ber_int(5), ber_int(3600))), snmp_response([("1.3.6.1.2.1.1.1.0", ber(0x04, b"Linux"))])]),
    "snmp-interfaces": ("161/udp/snmp", [snmp_response([("1.3.6.1.2.1.2.2.1.%d.1" % c, v)]) for c, v in [(1, ber_int(1)), (2, ber(0x04, b"eth0")), (3, ber_int(6)), (4, ber_int(1500)), (5, ber(0x42, b"\x3b\x9a\xca\x00")), (6, ber(0x04, b"\x02\x42\xc6\x12\x00\x0c")), (7, ber_int(1)), (8, ber_int(1)), (9, ber_int(2))]]),
    "ntp-info": ("123/udp/ntp", [ntp_reply(), bytes([0x16, 0x82, 0, 1, 0, 0, 0, 0, 0, 0, 0, 40]) + b"version=\"ntpd 4.2.8\", system=\"Linux\", stratum=2"]),
    "ntp-monlist": ("123/udp/ntp", [bytes([0x97, 0, 3, 42, 0, 2, 0, 72]) + (struct.pack(">IIIIIIII", 1, 2, 3, 0xC6120002, 0xC612000C, 0, 123, 0x04030201) + b"\x00" * 40) * 2]),
    "sip-methods": ("5060/udp/sip", [b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nCSeq: 1 OPTIONS\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER\r\nServer: kamailio (5.6.3)\r\nContent-Length: 0\r\n\r\n"]),
    "sip-enum-users": ("5060/udp/sip", [b"SIP/2.0 401 Unauthorized\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"lab\", nonce=\"x\"\r\nContent-Length: 0\r\n\r\n", b"SIP/2.0 404 Not Found\r\nCSeq: 2 REGISTER\r\nContent-Length: 0\r\n\r\n"] * 4),
    "nbstat": ("137/udp/netbios-ns", [nbstat_reply()]),
    "ldap-rootdse": ("389/tcp/ldap", [ldap_entry(1, "", [("namingContexts", ["dc=lab,dc=test"]), ("supportedLDAPVersion", ["3"]), ("vendorName", ["OpenLDAP"])]) + ldap_done(1)]),
    "ldap-search": ("389/tcp/ldap", [seq(ber_int(1), ber(0x61, ber(0x0A, b"\x00") + ber(0x04, b"") + ber(0x04, b""))), ldap_entry(2, "", [("namingContexts", ["dc=lab,dc=test"])]) + ldap_done(2), ldap_entry(3, "uid=alice,ou=people,dc=lab,dc=test", [("cn", ["Alice"]), ("mail", ["alice@lab.test"])]) + ldap_done(3)]),
    "dns-nsid": ("53/udp/domain", [dns_reply("", 6, [], additional=b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x0b\x00\x03\x00\x07dns-h10", arcount=1), dns_reply("id.server", 16, [(16, b"\x03h10")]), dns_reply("version.bind", 16, [(16, b"\x0fdnsmasq-2.89")])]),
    "dns-recursion": ("53/udp/domain", [dns_reply("www.wikipedia.org", 1, [(1, bytes([198, 18, 0, 9]))], flags=0x8180)]),
    "dns-zone-transfer": ("53/tcp/domain", [(lambda m: struct.pack(">H", len(m)) + m)(dns_reply("lab.test", 252, [(6, b"\x02ns\xc0\x0c\x0ahostmaster\xc0\x0c" + struct.pack(">IIIII", 1, 3600, 600, 86400, 300)), (1, bytes([198, 18, 0, 10])), (6, b"\x02ns\xc0\x0c\x0ahostmaster\xc0\x0c" + struct.pack(">IIIII", 1, 3600, 600, 86400, 300))]))]),
    "dns-service-discovery": ("53/udp/domain", [dns_reply("_services._dns-sd._udp.sd.test", 12, [(12, b"\x05_http\x04_tcp\x02sd\x04test\x00")]), dns_reply("_http._tcp.sd.test", 12, [(12, b"\x03web\x05_http\x04_tcp\x02sd\x04test\x00")]), dns_reply("web._http._tcp.sd.test", 33, [(33, struct.pack(">HHH", 0, 0, 80) + b"\x03web\x02sd\x04test\x00"), (16, b"\x07path=/x")])]),
    "smb-protocols": ("445/tcp/microsoft-ds", [smb2_negotiate()] * 6),
    "smb-security-mode": ("445/tcp/microsoft-ds", [smb2_negotiate()] * 2),
    "smb2-time": ("445/tcp/microsoft-ds", [smb2_negotiate()]),
    "smb-os-discovery": ("445/tcp/microsoft-ds", [smb2_negotiate(), smb2_session_setup()]),
    "rdp-ntlm-info": ("3389/tcp/ms-wbt-server", [rdp_confirm(2), b"\x30\x82\x01\x00" + ntlm_challenge()]),
    "rdp-enum-encryption": ("3389/tcp/ms-wbt-server", [rdp_confirm(p) for p in (0, 1, 2, 8)]),
    "mysql-info": ("3306/tcp/mysql", [mysql_handshake()]),
    "vnc-info": ("5900/tcp/vnc", [b"RFB 003.008\n", b"\x02\x02\x10"]),
    "telnet-banner": ("23/tcp/telnet", [b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23", b"Debian GNU/Linux 12\r\nh14 login: "]),
    "ssh-hostkey": ("22/tcp/ssh", [b"SSH-2.0-OpenSSH_9.2p1\r\n", struct.pack(">IB", 12, 10) + b"\x14" + b"\x00" * 16 + b"\x00" * 4]),
    "ssl-enum-ciphers": ("443/tcp/https", [b"\x16\x03\x03\x00\x31\x02\x00\x00\x2d\x03\x03" + b"R" * 32 + b"\x00\xc0\x2f\x00\x00\x05\xff\x01\x00\x01\x00", b"\x15\x03\x03\x00\x02\x02\x28"]),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))
    for key, (port, replies) in SEEDS.items():
        script = key.split("/")[0]
        data = script.encode() + b"\n" + port.encode() + b"\n" + SEP.join(replies)
        with open(os.path.join(OUT, key.replace("/", "-")), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
